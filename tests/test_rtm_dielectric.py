"""Dielectric models: SCIENCE.md section 1 reference values, derivatives, registry and bad input."""

import numpy as np
import pytest

from smda.model.dielectric import DIELECTRIC_MODELS, permittivity

MV_MIRONOV = np.array([0.02, 0.05, 0.10, 0.20, 0.30, 0.40])
REF_MIRONOV = {
    0.2: [2.811 + 0.152j, 3.556 + 0.249j, 5.083 + 0.455j, 9.936 + 1.106j, 16.397 + 2.024j, 24.469 + 3.210j],
    0.3: [2.649 + 0.137j, 3.326 + 0.234j, 4.624 + 0.434j, 8.985 + 1.087j, 15.169 + 2.054j, 22.963 + 3.316j],
}
MV_DOBSON = np.array([0.05, 0.10, 0.20, 0.30])
REF_DOBSON = {
    "dobson": [4.236 + 0.324j, 6.289 + 0.563j, 11.324 + 1.062j, 17.444 + 1.616j],
    "dobson_peplinski_sigma": [4.236 + 0.332j, 6.289 + 0.577j, 11.324 + 1.083j, 17.444 + 1.644j],
    "peplinski": [4.191 + 0.332j, 6.552 + 0.577j, 12.343 + 1.083j, 19.381 + 1.644j],
}


def _close(a, b, tol):
    np.testing.assert_allclose(np.real(a), np.real(b), atol=tol)
    np.testing.assert_allclose(np.imag(a), np.imag(b), atol=tol)


@pytest.mark.parametrize("clay", [0.2, 0.3])
def test_mironov_reference(clay):
    eps = permittivity(MV_MIRONOV, clay, freq_hz=1.4e9)
    _close(eps, REF_MIRONOV[clay], 0.01)  # acceptance tolerance
    _close(eps, REF_MIRONOV[clay], 0.0011)  # table is given to 3 decimals


def test_mironov_at_smap_frequency():
    eps = permittivity(0.1, 0.2, freq_hz=1.41e9)
    _close(eps, 5.083 + 0.456j, 0.001)


@pytest.mark.parametrize("model", sorted(REF_DOBSON))
def test_dobson_peplinski_reference(model):
    eps = permittivity(MV_DOBSON, 0.2, 0.4, 1.3, 298.15, model=model, freq_hz=1.4e9)
    _close(eps, REF_DOBSON[model], 0.0011)


@pytest.mark.parametrize("model", sorted(DIELECTRIC_MODELS))
def test_monotone_in_moisture(model):
    mv = np.linspace(0.0, 0.5, 51)
    eps = permittivity(mv, 0.2, 0.4, 1.3, 293.15, model=model)
    assert np.all(np.diff(eps.real) >= 0)
    assert np.all(eps.real > 1.0) and np.all(eps.imag >= 0)


def test_dobson_floor_at_dry_end():
    eps = permittivity(np.array([0.0, 0.0005, 0.001]), 0.2, 0.4, 1.3, 298.15, model="dobson")
    assert eps[0] == eps[1] == eps[2]


def test_unknown_model_lists_valid_names():
    valid = "mironov, dobson, dobson_peplinski_sigma, peplinski"
    with pytest.raises(ValueError, match=f"unknown dielectric model .topp.; valid: {valid}"):
        DIELECTRIC_MODELS["topp"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="mv"):
        permittivity(-0.01, 0.2)
    with pytest.raises(ValueError, match="mv"):
        permittivity(np.nan, 0.2)
    with pytest.raises(ValueError, match="clay"):
        permittivity(0.2, 1.5)
    with pytest.raises(ValueError, match="needs sand"):
        permittivity(0.2, 0.2, model="dobson")
    with pytest.raises(ValueError, match="sand"):
        permittivity(0.2, 0.7, 0.5, 1.3, 290.0, model="dobson")

"""Pedotransfer reference values (SCIENCE.md section 3) and the state container."""

import numpy as np
import pytest

from smda.model import soil
from smda.model.state import VARIABLES, State, water_storage


def test_isba_reference_values():
    v = soil.isba_pedotransfer(0.4, 0.2)
    ref = {"wsat": 0.45111, "wwilt": 0.16607, "wfc": 0.25378, "b": 6.2410, "c1sat": 1.9648,
           "c2ref": 0.79281, "c3": 0.23416, "a": 0.14572, "p": 6.08, "cgsat": 3.7911e-6}
    for name, value in ref.items():
        assert float(v[name]) == pytest.approx(value, rel=5e-5), name


def test_cosby_reference_values():
    v = soil.cosby(0.4, 0.2)
    assert float(v["b"]) == pytest.approx(6.12, rel=1e-6)
    assert float(v["psi_s_m"]) == pytest.approx(0.2582, rel=2e-4)
    assert float(v["ks_m_s"]) == pytest.approx(4.212e-6, rel=2e-4)  # 4.212e-4 cm/s
    assert float(v["theta_s"]) == pytest.approx(0.4408, rel=1e-6)


def test_soil_parameters_per_cell_and_overrides():
    p = soil.soil_parameters([0.9, 0.4, 0.1], [0.05, 0.2, 0.6], d2_m=1.5, wsat=[0.40, 0.45, 0.50])
    assert p.n_cells == 3
    assert np.allclose(p.d2_m, 1.5)
    assert np.allclose(p.wsat, [0.40, 0.45, 0.50])
    assert p.wfc[1] == pytest.approx(0.25378, rel=5e-5)
    # clay holds more water than sand at field capacity
    assert p.wfc[2] > p.wfc[1] > p.wfc[0]
    assert np.all(p.wres < p.wwilt) and np.all(p.wwilt < p.wfc) and np.all(p.wfc < p.wsat)
    assert p.subset([0, 2]).n_cells == 2
    assert p.packed.shape == (len(soil.PARAMETER_NAMES), 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"sand": [1.2], "clay": [0.1]}, "sand"),
    ({"sand": [0.6], "clay": [0.6]}, "exceed"),
    ({"sand": [0.4, 0.3], "clay": [0.2]}, "equal shape"),
    ({"sand": [0.4], "clay": [np.nan]}, "clay"),
    ({"sand": [0.4], "clay": [0.2], "porosity": 0.4}, "unknown"),
    ({"sand": [0.4], "clay": [0.2], "wfc": 0.5}, "wfc < wsat"),
    ({"sand": [0.4], "clay": [0.2], "d1_m": [0.05, 0.05]}, "d1_m"),
])
def test_soil_parameters_bad_input(kwargs, match):
    kw = dict(kwargs)
    with pytest.raises(ValueError, match=match):
        soil.soil_parameters(kw.pop("sand"), kw.pop("clay"), **kw)


def test_state_layout_views_and_restart_dict():
    p = soil.soil_parameters([0.4, 0.8], [0.2, 0.05])
    st = State.initial(2, 3, p, sm=0.3, t=290.0, swe=[0.0, 5.0])
    assert st.data.shape == (2, len(VARIABLES), 3) and st.data.flags.c_contiguous
    assert np.all(st.swe[1] == 5.0)
    # sm 0.3 clipped to the sand's porosity? (0.8 sand: wsat = 0.4079 > 0.3, so unchanged)
    assert np.all(st.sm_rootzone == 0.3)
    view = st.filter_view(["sm_surface", "sm_rootzone"])
    assert view.shape == (2, 2, 3) and np.shares_memory(view, st.data)
    view[:, 1, :] += 0.01
    assert np.allclose(st.sm_rootzone, 0.31)
    with pytest.raises(ValueError, match="consecutive"):
        st.filter_view(["sm_surface", "t_skin"])
    g = st.gather(["sm_surface", "t_skin"])
    assert g.shape == (2, 2, 3) and not np.shares_memory(g, st.data)
    g[:, 1, :] = 300.0
    st.scatter(["sm_surface", "t_skin"], g)
    assert np.all(st.t_skin == 300.0)
    d = st.to_dict()
    st2 = State.from_dict(d)
    assert np.array_equal(st2.data, st.data)
    with pytest.raises(ValueError, match="misses"):
        State.from_dict({k: v for k, v in d.items() if k != "swe"})
    with pytest.raises(ValueError, match="unknown"):
        st.gather(["soil_moisture"])
    w = water_storage(st, p)
    assert np.allclose(w[0], 1000.0 * 1.0 * 0.31)
    assert np.allclose(w[1], 1000.0 * 1.0 * 0.31 + 5.0)


def test_state_clip_to_bounds_per_cell():
    p = soil.soil_parameters([0.9, 0.1], [0.05, 0.5])
    st = State.initial(2, 4, p, sm=0.3)
    st.sm_rootzone[...] = 0.9
    st.sm_surface[...] = -0.1
    st.swe[...] = -1.0
    st.clip_to_bounds(p)
    assert np.allclose(st.sm_rootzone, p.wsat[:, None])
    assert np.allclose(st.sm_surface, p.wres[:, None])
    assert np.all(st.swe == 0.0)
    with pytest.raises(ValueError, match="n_cells"):
        State.initial(3, 4, p)
    with pytest.raises(ValueError, match="broadcast"):
        State.initial(2, 4, p, sm=np.zeros(3))

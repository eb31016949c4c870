"""Namelist loading: defaults, every class of error with its key path and line, overrides, CLI exit codes."""

import subprocess
import sys

import pytest

from smda.run.info import keys_markdown
from smda.run.namelist import NamelistError, dump, load
from tests.conftest import DEFAULT_NAMELIST, REPO


def write(tmp_path, text):
    p = tmp_path / "case.yaml"
    p.write_text(text)
    return p


def problems(path, overrides=()):
    with pytest.raises(NamelistError) as exc:
        load(path, overrides)
    return exc.value.problems


def test_default_loads_and_resolves():
    nl = load(DEFAULT_NAMELIST)
    assert nl.name == "osse_default" and nl.assimilation.filter == "letkf"
    assert nl.output.dir.is_absolute()
    assert nl.output.dir.parent.parent == REPO  # relative to the namelist's folder
    text = dump(nl)
    assert "loc_radius_km: 40.0" in text and "perturbations:" in text


def test_all_errors_reported_at_once_with_lines(tmp_path):
    p = write(tmp_path, "name: x\ndomain:\n  centre: [41, -5]\n  colour: red\nmodel:\n  ensemble_size: many\n"
                        "assimilation:\n  filter: kalman\n  loc_radius_km: -3\n")
    msgs = problems(p)
    assert len(msgs) == 4
    assert any("line 4: domain.colour: unknown key" in m and "centre" in m for m in msgs)
    assert any("line 6: model.ensemble_size: expected an integer" in m for m in msgs)
    assert any("line 8: assimilation.filter" in m and "letkf" in m for m in msgs)
    assert any("line 9: assimilation.loc_radius_km" in m and "range" in m for m in msgs)


def test_impossible_combinations(tmp_path):
    msgs = problems(write(tmp_path, "domain:\n  centre: [41, -5]\ntime:\n  start: 2019-05-02T00:00\n"
                                    "  end: 2019-05-01T00:00\nobservations:\n  source: none\n"))
    assert any("time.end" in m and "not after start" in m for m in msgs)
    assert any("assimilation.filter" in m and "needs observations" in m for m in msgs)
    msgs = problems(write(tmp_path, "domain:\n  centre: [41, -5]\n  bbox: [40, 41, -6, -5]\n"))
    assert any("exactly one of bbox or centre" in m for m in msgs)
    msgs = problems(write(tmp_path, "domain:\n  centre: [41, -5]\nobservations:\n  source: smap_l2_sm_p\n"))
    assert any("observations.paths" in m for m in msgs)
    msgs = problems(write(tmp_path, "domain:\n  centre: [41, -5]\nforcing:\n  perturbations:\n    scales_km: [9, 20]\n"
                                    "    scale_fractions: [0.5]\n"))
    assert any("line 6: forcing.perturbations.scale_fractions" in m and "one fraction per scales_km" in m for m in msgs)
    msgs = problems(write(tmp_path, "domain:\n  centre: [41, -5]\nforcing:\n  perturbations:\n    scales_km: [9, 20]\n"
                                    "    scale_fractions: [0.5, 0.5]\n"))
    assert any("forcing.perturbations.scale_fractions" in m and "sum must be < 1" in m for m in msgs)


def test_wrong_types_and_shapes(tmp_path):
    msgs = problems(write(tmp_path, "domain:\n  centre: [41]\ntime:\n  dt_s: fast\noutput:\n  figures: 3\n"))
    assert any("domain.centre: expected 2 values" in m for m in msgs)
    assert any("time.dt_s: expected a number" in m for m in msgs)
    assert any("output.figures: expected true or false" in m for m in msgs)
    msgs = problems(write(tmp_path, "- a\n- b\n"))
    assert "mapping" in msgs[0]
    msgs = problems(write(tmp_path, "domain: {centre: [41, -5]\n"))
    assert "not valid YAML" in msgs[0]
    msgs = problems(tmp_path / "missing.yaml")
    assert "file not found" in msgs[0]


def test_overrides(tmp_path):
    nl = load(DEFAULT_NAMELIST, ["assimilation.filter=enkf", "model.ensemble_size=8"])
    assert nl.assimilation.filter == "enkf" and nl.model.ensemble_size == 8
    msgs = problems(DEFAULT_NAMELIST, ["model.ensemble_size=0"])
    assert msgs == ["--set: model.ensemble_size: 0 is outside the allowed range [1, 1024]"]
    with pytest.raises(NamelistError, match="KEY.PATH=VALUE"):
        load(DEFAULT_NAMELIST, ["model.ensemble_size"])


def test_readme_documents_every_key():
    readme = (REPO / "namelists" / "README.md").read_text()
    assert keys_markdown() == readme, "namelists/README.md is stale: regenerate it with `make docs`"


@pytest.mark.parametrize(
    "args, code",
    [(["info", str(DEFAULT_NAMELIST)], 0), (["info", "missing.yaml"], 2),
     (["info", str(DEFAULT_NAMELIST), "--set", "time.dt_s=7"], 2), (["frobnicate"], 2), (["--version"], 0)],
)
def test_cli_exit_codes(args, code):
    r = subprocess.run([sys.executable, "-m", "smda.run.cli", *args], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == code, r.stderr
    if code == 0 and args[0] == "info":
        assert "36 km pixels: 3 x 3" in r.stdout and "memory estimate" in r.stdout
    if args[-1] == "time.dt_s=7":
        assert "time.dt_s" in r.stderr

"""The command line as users meet it: every namelist gap is exit 2 naming the key, logging levels, the
relative-path rule, ``smda init``, and serial runs without an MPI library."""

import logging
import os
import subprocess
import sys

import pytest

from smda.run import cli
from smda.run.namelist import load
from smda.run.templates import init, templates
from tests.conftest import DEFAULT_NAMELIST

GAPS = [  # (--set overrides, key named in the error)
    (["time.end=12345"], "time.end"),
    (["time.end=2019-13-45"], "time.end"),
    (["forcing.openloop_precip_bias=1e30"], "forcing.openloop_precip_bias"),
    ([f"seed={2**63}"], "seed"),
    (["domain.size_km=[.inf, 36]"], "domain.size_km"),
    (["domain.size_km=[.nan, 36]"], "domain.size_km"),
    (["domain.centre=[41.0, 400.0]"], "domain.centre"),
    (["domain.centre=[84.0, 0.0]", "domain.size_km=[3000, 3000]"], "domain.size_km"),
    (["observations.polarizations=[]"], "polarizations"),
    (["observations.orbits=[]"], "orbits"),
    (["observations.min_inside_fraction=0"], "min_inside_fraction"),
    (["assimilation.update=[]"], "assimilation.update"),
    (["name=../../x"], "name"),
    (["forcing.source=site", "forcing.paths=[no_such_station.csv]", "domain.landscape=synthetic"], "forcing.paths"),
    (["forcing.source=site", "forcing.paths=[../README.md]"], "domain.parameters"),  # a real case needs parameters
    (["domain.parameters=no_such_parameters.nc"], "domain.parameters"),
]


def run_cli(caplog, *args):
    caplog.clear()
    code = cli.main([str(a) for a in args])
    return code, caplog.text


@pytest.mark.parametrize("sets, key", GAPS, ids=[g[1] + ":" + g[0][-1] for g in GAPS])
def test_namelist_gap_is_exit_2_naming_the_key(caplog, sets, key):
    args = [a for s in sets for a in ("--set", s)]
    code, err = run_cli(caplog, "info", DEFAULT_NAMELIST, *args)
    assert code == 2, err
    assert key in err, err
    assert "Traceback" not in err


def test_bad_set_is_reported_against_its_own_key(caplog):
    code, err = run_cli(caplog, "info", DEFAULT_NAMELIST, "--set", "time.end=2019-06-31")
    assert code == 2 and "--set: time.end" in err and "time.start" not in err


def test_duplicate_yaml_keys_refused_with_both_lines(tmp_path, caplog):
    p = tmp_path / "dup.yaml"
    p.write_text("name: a\ndomain:\n  centre: [41.35, -5.40]\n  centre: [40.0, -5.0]\n")
    code, err = run_cli(caplog, "info", p)
    assert code == 2 and "line 4: domain.centre: duplicate key (first on line 3)" in err


def test_stop_after_days_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", str(DEFAULT_NAMELIST), "--stop-after-days", "-1"])
    assert exc.value.code == 2 and "--stop-after-days" in capsys.readouterr().err


@pytest.mark.parametrize("flags, ours, theirs", [([], logging.INFO, logging.WARNING), (["-q"], logging.WARNING, logging.WARNING),
                                                 (["-v"], logging.DEBUG, logging.WARNING),
                                                 (["-vv"], logging.DEBUG, logging.INFO)])
def test_verbosity(caplog, flags, ours, theirs):
    assert run_cli(caplog, "info", DEFAULT_NAMELIST, *flags)[0] == 0
    assert logging.getLogger("smda").getEffectiveLevel() == ours
    for lib in ("numba", "ismn", "matplotlib"):
        assert logging.getLogger(lib).getEffectiveLevel() == theirs


def test_paths_on_the_command_line_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nl = load(DEFAULT_NAMELIST, ["output.dir=here"])
    assert nl.output.dir == tmp_path / "here"
    assert load(DEFAULT_NAMELIST).output.dir == (DEFAULT_NAMELIST.parent / "../out/osse_default").resolve()


def test_init_writes_a_runnable_case(tmp_path, caplog, monkeypatch):
    assert {"osse_default", "site", "smap_tb", "smos_sm"} <= set(templates())
    path = init("spain", "osse_default", parent=tmp_path)
    nl = load(path, check_inputs=True)
    assert path == tmp_path / "spain" / "spain.yaml" and nl.name == "spain" and nl.output.dir == tmp_path / "spain" / "out"
    assert path.read_text().startswith("# The default twin experiment")  # the comments are kept
    code, err = run_cli(caplog, "init", tmp_path / "spain", "--template", "osse_default")
    assert code == 2 and "case name" in err  # a path is not a case name
    monkeypatch.chdir(tmp_path)
    assert run_cli(caplog, "init", "spain")[0] == 1  # the folder exists
    assert run_cli(caplog, "init", "alaska", "--template", "nothing")[0] == 2
    code, err = run_cli(caplog, "init", "alaska", "--template", "smap_tb")
    assert code == 0 and (tmp_path / "alaska" / "alaska.yaml").exists()
    assert "edit observations.paths" in err  # the template's product sample is not beside the new case


def test_serial_run_without_mpi(tmp_path):
    """No MPI library: ``smda run`` runs serially; started as one of several ranks it stops with a message."""
    fake = tmp_path / "fake"
    (fake / "mpi4py").mkdir(parents=True)
    (fake / "mpi4py" / "__init__.py").write_text("raise ImportError('libmpi.so.12: cannot open shared object file')\n")
    env = {**os.environ, "PYTHONPATH": str(fake), "NUMBA_NUM_THREADS": "1"}
    for k in cli.LAUNCHER_SIZE:
        env.pop(k, None)
    args = [sys.executable, "-m", "smda.run.cli", "run", str(DEFAULT_NAMELIST), "--set", "time.end=2019-05-04T00:00",
            "--set", "domain.size_km=[36, 36]", "--set", "model.ensemble_size=4", "--set", f"output.dir={tmp_path / 'out'}",
            "--set", "output.figures=false", "--set", "comparison.methods=[]"]
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "a serial run" in r.stderr and (tmp_path / "out" / "osse_default_analysis.nc").exists()
    r = subprocess.run(args, capture_output=True, text=True, env={**env, "PMI_SIZE": "2"}, cwd=tmp_path, timeout=600)
    assert r.returncode == 1 and "smda[mpi]" in r.stderr and "Traceback" not in r.stderr

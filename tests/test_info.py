"""`smda info`'s per-rank memory estimate: its terms scale with members, cells and ranks as the arrays do."""

from pathlib import Path

import pytest

from smda.run.cli import main
from smda.run.info import BASELINE_MIB, MiB, analysis_times, memory_estimate
from smda.run.namelist import load

DEFAULT_NAMELIST = Path(__file__).resolve().parent.parent / "namelists" / "osse_default.yaml"
SMALL = ["domain.size_km=[72, 72]", "time.end=2019-05-04T00:00"]  # 2 x 2 pixels, all land
OPEN_LOOP = ["observations.source=none", "assimilation.filter=none"]  # one ensemble, no truth, no cycles


def estimate(*sets, ranks=1):
    return memory_estimate(load(DEFAULT_NAMELIST, [*SMALL, *sets]), ranks)


def test_state_and_model_arrays_double_with_members():
    small, large = estimate(*OPEN_LOOP, "model.ensemble_size=8")[0], estimate(*OPEN_LOOP, "model.ensemble_size=16")[0]
    assert small.cells == large.cells == 72 * 72
    assert small.state == 72 * 72 * 6 * 8 * 8  # cells x variables x members x 8 B
    assert large.state == 2 * small.state
    # per member: flags and perturbation factors (and the lattice); per cell: base forcing, ensemble-mean fluxes
    per_member = 72 * 72 * (2 + 3 * 8)  # B per member: flags, factors of precip and sw_down, offset of lw_down
    assert 8 * per_member < large.model - small.model < 1.3 * 8 * per_member  # + the lattice, about 20 % here
    assert large.baseline == small.baseline == BASELINE_MIB * MiB
    assert large.static == small.static  # per cell, not per member


def test_twin_experiment_holds_truth_open_loop_and_analysis():
    e = estimate("model.ensemble_size=8")[0]
    assert e.state == 72 * 72 * 6 * 8 * (1 + 8 + 8)
    no_filter = estimate("model.ensemble_size=8", "assimilation.filter=none")[0]
    assert no_filter.state == 72 * 72 * 6 * 8 * (1 + 8)
    # the filter's copy of the updated variables and the kept background TB come on top of the equivalents
    assert e.work > no_filter.work > 0
    assert estimate(*OPEN_LOOP)[0].work == 0  # no observations: no analysis cycle


def test_work_arrays_scale_with_members_and_updated_variables():
    one, two = (estimate("model.ensemble_size=8", "assimilation.filter=none", f"model.ensemble_size={n}")[0]
                for n in (8, 16))
    assert two.work == 2 * one.work  # (n, N) TB and footprint fields
    # the filter's copy of the updated variables (freed before the analysis equivalents) and the LETKF weight
    # lattice count when they exceed the 4 (n, N) TB fields: with 4 variables by the lattice, with 1 not at all
    u = 72 * 72 * 24 * 8
    a, b = (estimate(f"assimilation.update=[{v}]")[0] for v in ("sm_surface", "sm_surface, sm_rootzone, t_skin, t_deep"))
    lattice = b.work - a.work  # 72 km at 9 km spacing: about 9 x 9 points of 24 x 24 weights
    assert 80 * 24 * 24 * 8 <= lattice <= 100 * 24 * 24 * 8 and a.work - estimate("assimilation.filter=none")[0].work < u


def test_ranks_split_the_state_and_the_checkpoint_needs_no_global_state():
    one = estimate("model.ensemble_size=8")
    rank0, rank1 = estimate("model.ensemble_size=8", ranks=2)
    assert len(one) == 1 and (rank0.rank, rank1.rank) == (0, 1)
    assert rank0.cells == rank1.cells == one[0].cells // 2
    assert rank0.state == rank1.state == one[0].state // 2
    # rank 0 receives one other rank's part of one array at a time: less than the global state
    assert rank1.phases["checkpoint"] < rank0.phases["checkpoint"] < one[0].state
    assert "end of run" not in rank1.phases  # the skill table and figures are rank 0's
    assert rank0.peak > rank1.peak


def test_analysis_times_follow_the_overpasses():
    short = analysis_times(load(DEFAULT_NAMELIST, SMALL))
    longer = analysis_times(load(DEFAULT_NAMELIST, [*SMALL, "time.end=2019-05-17T00:00"]))
    assert 1 <= short < longer <= 16 * 2  # at most an am and a pm overpass a day over a 72 km domain


def test_cli_prints_the_table_for_several_ranks(capsys):
    assert main(["info", str(DEFAULT_NAMELIST), "--set", "domain.size_km=[72, 72]", "--ranks", "2"]) == 0
    out = capsys.readouterr().out
    assert "memory estimate" in out and "| rank 0 | rank 1 |" in out and "ensemble states" in out
    with pytest.raises(SystemExit) as exc:
        main(["info", str(DEFAULT_NAMELIST), "--ranks", "0"])
    assert exc.value.code == 2
    assert main(["info", str(DEFAULT_NAMELIST), "--set", "domain.size_km=[72, 72]", "--ranks", "5"]) == 1  # 4 pixels

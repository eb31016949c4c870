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


def test_work_arrays_are_field_blocks_or_the_filter_copy():
    # the model equivalents' footprint field is evaluated a block of whole pixels at a time: beyond a block the
    # open loop's cycle grows with the cells only by the 1 km TB statistics (4 float64 a cell), not with N
    def at(km, *sets):
        return memory_estimate(load(DEFAULT_NAMELIST, [f"domain.size_km=[{km}, {km}]", "model.ensemble_size=32", *sets]))[0]

    small, large = at(216, "assimilation.filter=none"), at(432, "assimilation.filter=none")
    assert large.work - small.work == 4 * 8 * (large.cells - small.cells)
    assert large.work < 0.3 * large.cells * 32 * 8 * (2 + 2 + 1)  # the whole field and TB would be 5 (n, N) arrays
    # with a filter on a large domain: the copy of the updated variables with their bounds, and the LETKF lattice
    one, four = (at(432, f"assimilation.update=[{v}]") for v in ("sm_surface", "sm_surface, sm_rootzone, t_skin, t_deep"))
    assert four.work - one.work == 3 * (large.cells * 32 * 8 + 2 * large.cells * 8)
    lattice = one.work - at(432, "assimilation.update=[sm_surface]", "assimilation.weight_interpolation=false").work
    assert 49 * 49 * 32 * 32 * 8 <= lattice <= 52 * 52 * 32 * 32 * 8  # 432 km at 9 km: about 50 x 50 points of N x N


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

"""``smda info``: the resolved namelist, the domain and a per-rank memory estimate.

The memory estimate (:func:`memory_estimate`) models what one MPI rank of ``smda run`` holds, term by
term, from the namelist and the domain decomposition (:mod:`smda.run.decomp`):

- **baseline**: the interpreter, numpy/numba/xarray/pandas/netCDF4/mpi4py, the smda modules and the
  numba kernels loaded from their cache (:data:`BASELINE_MIB`, the measured peak of a 36 x 36 km,
  2-member run, whose arrays are negligible; ``benchmarks/scale.py`` measures it again);
- **ensemble states**: ``n x 6 x members x 8`` bytes for the truth (1 member), the open loop and the
  analysis ensemble (N members each), ``n`` the rank's land cells (:class:`smda.model.state.State`);
- **model arrays**: the step diagnostics of every run (:class:`smda.model.lsm.Fluxes`: 2 uint8 flags per
  cell and member, 10 flux and 6 state ensemble means per cell), the base forcing (7 x n float64), the
  per-member factors / offsets of the perturbed forcing (n_perturbed x n x N float64) and the
  forcing-perturbation lattice;
- **static**: per-cell parameters and coordinates, the soil table, the vegetation of the day, daily flux
  sums, the rain of the last day, footprint weights, plus domain-wide index arrays on every rank;
- **work arrays** of an analysis cycle (on top of the above, then freed): the model equivalents' footprint
  field, evaluated a block of whole pixels at a time (:mod:`smda.run.aggregate`, ``BLOCK_BYTES``): the
  block ((2 angles + [SM]) x N + 4 float64 a cell), the RTM's TB H and V of its cells at each angle and a
  temporary of their statistics, plus the 1 km TB mean and spread at the output angle (4 x n float64); or the
  filter's copy of the updated variables (len(update) x n x N, freed before the analysis equivalents) with
  their bounds and the LETKF weight lattice (lattice points x N x N); the background means and spreads kept
  for the record;
- **outputs**: the largest of (a) an analysis record: the record's fields on every rank, the exchange's
  send and receive buffers and the rank's share of the grid's tiles (float32, :mod:`smda.run.chunks`), and
  on a file's owner one field's compressed chunks (at most 4 B per domain cell), (b) the checkpoint: rank 0
  receives one other rank's part of one array at a time into a buffer and hashes it in place (no rank holds
  the global state), (c) rank 0's end of run (twin experiments): the skill
  accumulators (per cell and product, 12 float64: :class:`smda.run.metrics.SkillAccumulator`) and one
  time slice of every product with its anomaly temporaries: independent of the run length.

The peak of a rank is baseline + states + model arrays + static + the larger of work and outputs (they
do not overlap in time). Per cell-member (the rank's land cells x the members of every run it holds: truth 1,
open loop N, analysis N) the states are 48 B; for a twin experiment with N = 32 the model arrays add about
21 B, the static fields 12 B, then at most one of: the analysis cycle 11 B, the checkpoint 28 B (a byte copy of
a state block for its checksum) or the end of run; for small domains the baseline dominates. Not modelled:
allocator fragmentation (arrays under 32 MiB may stay mapped after being freed) and the one-off setup
(domain-wide latitude/longitude while building the experiment). Measured by ``benchmarks/scale.py`` (432 x 432
km, 32 members, LETKF, 1 rank, 2 days): the estimate is 0.97 of the peak RSS (the checkpoint) and 1.01 of the
analysis cycle's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smda.run.namelist import Namelist, dump
from smda.run.schema import describe
from smda.variables import VARIABLES

MiB = 2**20
# peak RSS of a 36 x 36 km, 2-member, 3-day run (every kernel called once, the comparison methods' libraries
# imported at the end): 372-392 MiB (benchmarks/scale.py's baseline case)
BASELINE_MIB = 385.0
FIGURES_MIB = 45.0  # matplotlib, imported by rank 0 at the end of a run with output.figures
F8 = 8  # bytes of a float64 / int64
# float64 / int64 values held per local land cell besides the ensembles: cells, gidx, x, y, lat, lon (6), static
# fields (7), tau-omega h, omega, b, q and bulk density (5), vegetation of the day (4), pixel of each cell (1)
_PER_CELL_VALUES = 6 + 7 + 5 + 4 + 1
# float64 per cell and product: running moments of product and truth and of their within-pixel anomalies
# (2 x 6: n, 2 means, 3 deviation sums) and of the difference, its pixel-mean and within-pixel parts (3 x 3)
_SKILL_ACCUMULATOR = 21
_SKILL_SLICE = 8  # (y, x) float64 per product at one time: product, truth, anomalies, masks, pairs


_KEYS_HEADER = """# Namelist keys

A case study is one YAML file. Unknown keys, wrong types, values out of range and impossible
combinations are errors naming the file, line and key path; all are reported at once, and so are input
files that do not exist (`smda run` and `smda info` check them before any work). A relative path written in
a namelist is relative to the namelist's folder; `--set KEY.PATH=VALUE` overrides any key from the command
line, and a relative path given there (or to `--restart`, `--insitu`) is relative to the current folder.
`smda info case.yaml` prints the resolved namelist. This file is generated by `make docs`
(`smda info --keys`) from the declarations in `run/namelist.py` and the registry `smda/variables.py`.

"""


_OUTPUTS_HEADER = """
## Output variables

Data variables of the netCDF outputs, from the variable registry `smda/variables.py`. A file holds
`<name>` or `<name>_<run>_<statistic>`: run is background, analysis, openloop or truth; statistic is
mean (ensemble mean) or spread (ensemble standard deviation, which carries no standard_name).

"""


def keys_markdown() -> str:
    """namelists/README.md: a Markdown table of every namelist key, then one of the output variables."""
    rows = [_KEYS_HEADER + "| key | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for name, tp, default, unit, doc in describe(Namelist):
        rows.append(f"| `{name}` | {tp} | `{default}` | {unit} | {doc} |")
    rows += [_OUTPUTS_HEADER + "| name | units | standard_name | long_name |", "|---|---|---|---|"]
    for v in VARIABLES.values():
        if v.output:
            rows.append(f"| `{v.name}` | {v.units} | {v.standard_name} | {v.long_name} |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------ memory estimate
@dataclass(frozen=True)
class RankMemory:
    """Estimated resident memory (bytes) of one rank of ``smda run``, by term (see the module docstring).

    ``work`` (the analysis cycle) and ``phases`` (output phase -> bytes: "analysis record", "checkpoint" and
    on rank 0 of a twin experiment "end of run") are transient, on top of the resident terms, one at a time.
    """

    rank: int
    cells: int
    baseline: int
    state: int
    model: int
    static: int
    work: int
    phases: dict

    @property
    def outputs_phase(self) -> str:
        return max(self.phases, key=self.phases.get)

    @property
    def outputs(self) -> int:
        return self.phases[self.outputs_phase]

    @property
    def peak(self) -> int:
        return self.baseline + self.state + self.model + self.static + max(self.work, self.outputs)

    @property
    def peak_phase(self) -> str:
        return "analysis cycle" if self.work >= self.outputs else self.outputs_phase


def memory_estimate(nl: Namelist, n_ranks: int = 1, domain=None) -> list[RankMemory]:
    """Peak memory of rank 0 and (with several ranks) of the other rank with the most land cells, for
    ``smda run`` of ``nl`` on ``n_ranks`` ranks (decomposition of :mod:`smda.run.decomp`)."""
    from smda.run.decomp import decompose
    from smda.run.setup import make_domain

    dom = make_domain(nl) if domain is None else domain
    dec = decompose(dom, n_ranks)
    land = np.flatnonzero(dom.land.ravel())
    counts = np.bincount(dec.rank_of_pixel[dec.pixel[land]], minlength=n_ranks)
    ranks = [0] + ([int(np.argmax(counts[1:])) + 1] if n_ranks > 1 else [])
    records = analysis_times(nl, dom) if nl.twin else 0
    return [_rank_memory(nl, dom, dec.cells(r), r, n_ranks, records) for r in ranks]


def analysis_times(nl: Namelist, domain=None) -> int:
    """Analysis times of a twin experiment: model steps ending just after an overpass of an observed pixel
    of any synthetic source."""
    from smda.assimilation.observations.synthetic import RevisitPattern, overpasses
    from smda.model.grid import GRIDS
    from smda.run.setup import make_domain

    domain = make_domain(nl) if domain is None else domain
    dt = np.timedelta64(int(nl.time.dt_s), "s")
    n_steps = int((nl.end - nl.start) / dt)
    steps = set()
    for o in (o for o in nl.observations if o.source == "synthetic"):
        g = GRIDS[o.grid]
        _, rows, cols, _ = domain.overlap(g.name)
        rc = np.unique(np.stack([rows, cols], axis=1), axis=0)
        lon = g.latlon(rc[:, 0], rc[:, 1])[1]
        pattern = RevisitPattern(cycle_days=o.revisit_cycle_days, am_days=o.revisit_am_days, pm_days=o.revisit_pm_days)
        for day in np.arange(nl.start.astype("datetime64[D]") - 1, nl.end.astype("datetime64[D]") + 1):
            for orbit in o.orbits:
                covered, when = overpasses(lon, day, orbit, pattern)
                k = np.ceil((when[covered] - nl.start) / dt).astype(np.int64)  # the step whose end follows it
                steps.update(k[(k >= 1) & (k <= n_steps)].tolist())
    return len(steps)


def _span(v: np.ndarray, spacing: float) -> int:
    """Points of a lattice anchored to 0 with ``spacing`` around the values ``v`` (as the kernels lay them)."""
    return int(np.floor(v.max() / spacing)) - int(np.floor(v.min() / spacing)) + 2


def _rank_memory(nl: Namelist, dom, cells: np.ndarray, rank: int, n_ranks: int, records: int) -> RankMemory:
    from smda.forcing.perturb import PerturbationSettings, lattice_spacing_m
    from smda.model.grid import GRIDS, M01, NEST
    from smda.model.lsm import FLAGS, FLUXES, FORCING
    from smda.model.soil import PARAMETER_NAMES
    from smda.model.state import VARIABLES as STATE_VARIABLES
    from smda.run.aggregate import BLOCK_BYTES
    from smda.run.driver import FLUX_OUT, STATE_OUT
    from smda.run.runs import DAILY_STATE

    a = nl.assimilation
    n, N = int(cells.size), nl.model.ensemble_size
    twin, observed, filtered = nl.twin, nl.observed, a.filter != "none"
    members = [1] * twin + [N] + [N] * filtered  # truth, open loop, analysis
    steps_per_day = int(round(86400.0 / nl.time.dt_s))
    r, c = np.divmod(cells, dom.ncols)
    x, y = dom.x[c], dom.y[r]
    u = n * N * F8  # one (n, N) float64 field

    state = n * len(STATE_VARIABLES) * sum(members) * F8
    model = n * len(FLAGS) * sum(members) + n * (len(FLUXES) + len(STATE_VARIABLES)) * F8 * len(members)
    model += len(FORCING) * n * F8
    p = nl.forcing.perturbations
    n_pert = sum(s > 0 for s in (p.precip_std, p.sw_std, p.lw_std_Wm2, p.t_air_std_K))
    if p.enabled and n_pert and n:  # per-member values; AR(1) lattice: white noise (with halo), convolution, innovation, state
        model += n_pert * u
        for length in (p.length_km, *p.scales_km):
            h = lattice_spacing_m(PerturbationSettings().lattice_cells, length)
            halo = 2 * max(1, math.ceil(PerturbationSettings().kernel_radius * length * 1000 / math.sqrt(2) / h))
            nr, nc = _span(M01.y0 - y, h), _span(x - M01.x0, h)
            model += F8 * N * n_pert * ((nr + halo) * (nc + halo) + (nr + halo) * nc + 2 * nr * nc)

    weights = 0  # footprint operators of every source: a cycle's and a twin source's own pixels'
    for o in (o for o in nl.observations if o.source != "none"):
        n_pol = len(o.polarizations) if o.kind == "tb" else 1
        per_obs = 1.0  # footprint weights per cell and observation row: a box holds each cell once
        if o.footprint == "gauss":  # a Gaussian footprint searched to 2 FOV around each pixel centre
            per_obs = math.pi * (2 * o.fov_km) ** 2 / (GRIDS[o.grid].cell_m / 1000.0) ** 2
        weights += int(2 * F8 * per_obs * n * (n_pol + (o.source == "synthetic")))
    per_cell = _PER_CELL_VALUES + len(PARAMETER_NAMES) + steps_per_day + len(members) * (len(FLUX_OUT) + len(DAILY_STATE))
    static = n * per_cell * F8 + weights + dom.n_cells * (F8 + 2) + dom.n_land * F8  # + decomposition, cell order

    # analysis cycle: footprint field blocks, 1 km TB statistics, background statistics, the filter's copy with
    # its bounds, LETKF weights
    work, kept = 0, 0
    if observed:
        tb = [o for o in nl.observations if o.source != "none" and o.kind == "tb"]
        n_ang = len({o.angle_deg for o in tb} | {nl.observations[0].angle_deg})  # observed angles, output angle
        k = (2 * n_ang + any(o.kind == "sm" for o in nl.observations if o.source != "none")) * N + 4
        pixel = NEST["M36"] ** 2  # blocks are whole 36 km pixels: the fewest making BLOCK_BYTES
        rows = min(n, pixel * max(1, math.ceil(BLOCK_BYTES / (F8 * k * pixel))))
        # a block of the field, its TB H and V at each angle from the RTM, one (rows, N) temporary of their statistics
        equivalents = rows * (k + (2 * n_ang + 1) * N) * F8 + 4 * n * F8
        if filtered:
            kept = 2 * (len(STATE_OUT) + 2) * n * F8  # background means and spreads, kept for the record
            lattice = 0
            if a.filter == "letkf" and a.weight_interpolation and n:
                s = a.analysis_spacing_km * 1000.0
                lattice = _span(x, s) * _span(y, s) * N * N * F8
            copy = len(a.update) * (u + 2 * n * F8)  # the updated variables and their bounds
            work = kept + max(equivalents, copy + lattice)  # the filter's copy is freed before HX_a
        else:
            work = equivalents

    # outputs: (a) the largest record: its fields, their exchange (send and receive float32) and the rank's tiles
    runs = len(members)
    fields = len(STATE_OUT) * runs + filtered * (2 * (len(STATE_OUT) + 2) + len(STATE_OUT) + 4)
    fields = max(fields if observed else 0, len(FLUX_OUT) * (1 + filtered))
    record = kept + fields * n * F8 + fields * (2 * n + dom.n_cells // n_ranks) * 4
    if rank == 0:  # the owner of a file (rank 0 holds the last ones dealt): one field's compressed chunks
        record += dom.n_cells * 4
    # (b) the checkpoint, array by array and rank by rank: contiguous copies of the (transposed) daily sums
    # and rain ring; on rank 0 a receive buffer of one other rank's part (hashed in place)
    state_part = max(n * len(STATE_VARIABLES) * m * F8 for m in members)
    copies = runs * n * len(FLUX_OUT) * F8 + n * steps_per_day * F8
    checkpoint = copies + (state_part if rank == 0 and n_ranks > 1 else 0)
    phases = {"analysis record": record, "checkpoint": checkpoint}
    # (c) rank 0 at the end of a twin experiment: skill accumulators and one time slice of every product
    if rank == 0 and twin and records:
        products = runs + 2 + len(nl.comparison.methods)  # truth, open loop, analysis, satellite, oracle, methods
        phases["end of run"] = ((_SKILL_ACCUMULATOR + _SKILL_SLICE) * products * dom.n_cells * F8
                                + nl.output.figures * int(FIGURES_MIB * MiB))
    return RankMemory(rank=rank, cells=n, baseline=int(BASELINE_MIB * MiB), state=state, model=model, static=static,
                      work=work, phases=phases)


def memory_table(estimates: list[RankMemory], nl: Namelist, n_ranks: int) -> str:
    """The per-rank estimate as a Markdown table (MiB), then a one-line summary."""
    N = nl.model.ensemble_size
    runs = ", ".join(f"{name} {m}" for name, m in (("truth", 1), ("open loop", N), ("analysis", N))
                     if (name != "truth" or nl.twin)
                     and (name != "analysis" or nl.assimilation.filter != "none"))
    head = [f"rank {e.rank}" for e in estimates]
    rows = [("land cells", [f"{e.cells}" for e in estimates])]
    for label, attr in (("baseline: Python, libraries, compiled kernels", "baseline"),
                        (f"ensemble states ({runs} members)", "state"),
                        ("fluxes, flags, forcing, perturbations", "model"),
                        ("static fields, footprint weights, index arrays", "static"),
                        ("work arrays: analysis cycle (TB, footprint fields, filter)", "work")):
        rows.append((label, [f"{getattr(e, attr) / MiB:.0f}" for e in estimates]))
    rows.append(("outputs: largest of record / checkpoint / end of run",
                 [f"{e.outputs / MiB:.0f} ({e.outputs_phase})" for e in estimates]))
    rows.append(("**peak** (resident + larger of work, outputs)",
                 [f"**{e.peak / MiB:.0f}** ({e.peak_phase})" for e in estimates]))
    lines = [f"# memory estimate per rank (MiB; {n_ranks} rank{'s' * (n_ranks > 1)}, `--ranks N`; "
             "terms: smda.run.info)", "| term | " + " | ".join(head) + " |", "|---" + "|---:" * len(head) + "|"]
    lines += [f"| {label} | " + " | ".join(vals) + " |" for label, vals in rows]
    busiest = max(estimates, key=lambda e: e.peak)
    total = estimates[0].peak + (n_ranks - 1) * (estimates[-1].peak if n_ranks > 1 else 0)
    lines.append(f"memory estimate: {busiest.peak / MiB:.0f} MiB on the busiest rank (rank {busiest.rank}), "
                 f"about {total / MiB:.0f} MiB for all {n_ranks} rank{'s' * (n_ranks > 1)} together")
    return "\n".join(lines)


def info(nl: Namelist, *, keys: bool = False, ranks: int = 1) -> None:
    """Print the resolved namelist, the domain, the memory estimate for ``ranks`` MPI ranks, the observations."""
    if keys:
        print(keys_markdown(), end="")
        return
    from smda.run.setup import make_domain

    dom = make_domain(nl)
    s = dom.summary()
    steps = int((nl.end - nl.start) / np.timedelta64(int(nl.time.dt_s), "s"))
    print("# resolved namelist")
    print(dump(nl), end="")
    print("# domain")
    print(f"1 km cells: {s['size_1km'][0]} x {s['size_1km'][1]} = {s['cells']} ({s['land_cells']} land)")
    print(f"36 km pixels: {s['pixels_36km'][0]} x {s['pixels_36km'][1]}; upper-left 1 km row/col {s['ul_row_col_1km']}")
    print(f"lat {s['lat_range'][0]:.4f} .. {s['lat_range'][1]:.4f}, lon {s['lon_range'][0]:.4f} .. {s['lon_range'][1]:.4f}")
    print(f"time steps: {steps} of {nl.time.dt_s:g} s")
    for o in nl.observations:
        if o.source == "synthetic":
            days = steps * nl.time.dt_s / 86400.0
            visits = sum(len(o.revisit_am_days if orbit == "am" else o.revisit_pm_days) for orbit in o.orbits)
            pixels = len(np.unique(np.stack(dom.overlap(o.grid)[1:3], axis=1), axis=0))
            n_obs = int(days * visits / o.revisit_cycle_days) * pixels * (len(o.polarizations) if o.kind == "tb" else 1)
            print(f"observations {o.label}: about {n_obs} synthetic {o.kind} values ({pixels} {o.grid} pixels, "
                  f"{'/'.join(o.orbits)} overpasses on {visits} of {o.revisit_cycle_days} days)")
        elif o.source != "none":
            print(f"observations {o.label}: {o.source} from {len(o.paths)} path pattern(s)")
    if nl.twin:
        print(f"analysis times: {analysis_times(nl, dom)}")
    print(memory_table(memory_estimate(nl, ranks, dom), nl, ranks))

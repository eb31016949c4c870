"""The ``smda`` command line: init, run, validate, downscale, info, parameters.

Exit codes: 0 success, 2 usage or namelist error (the message names the file, line and key; a missing
input file named by the namelist is one), 1 runtime failure (unreadable input, unwritable output,
numerical failure), 75 stopped by SIGTERM or SIGUSR1 after writing a checkpoint (sysexits EX_TEMPFAIL:
resubmit with --restart).

Logging: INFO from smda by default, ``-q`` warnings only, ``-v`` smda's debug messages, ``-vv`` also the
INFO messages of third-party libraries (numba, ismn, ...: otherwise kept at WARNING), ``-vvv`` everything.
Ranks other than 0 log warnings and errors only. Paths: see :data:`smda.run.schema.PATH_RULE`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from smda import __version__

log = logging.getLogger("smda")
# environment variables that MPI launchers (MPICH/Hydra, Open MPI, Slurm's PMI) set to the number of ranks
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")

EPILOG = """examples:
  smda init mycase --template osse_default && smda run mycase/mycase.yaml
  smda run namelists/osse_default.yaml
  mpiexec -n 64 smda run case.yaml
  smda run case.yaml --restart out/restart/case_2019-06-01T00.nc
  smda validate case.yaml --insitu path/to/ismn_data
  smda downscale case.yaml --method dispatch
  smda info case.yaml --set model.ensemble_size=32 --ranks 64
  smda parameters case.yaml --sand sand.tif --clay clay.tif --landcover mcd12q1.tif --elevation srtm.tif \
      --ndvi ndvi_monthly.nc -o params.nc
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="smda", description="1 km soil moisture from coarse SMAP/SMOS observations by ensemble data assimilation.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"smda {__version__}")
    talk = argparse.ArgumentParser(add_help=False)
    verbosity = talk.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0,
                           help="more logging: -v smda's debug messages, -vv also other libraries' (see smda.run.cli)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    common = argparse.ArgumentParser(add_help=False, parents=[talk])
    common.add_argument("namelist", help="YAML case study (see namelists/README.md)")
    common.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a namelist key, e.g. --set assimilation.filter=enkf (repeatable); "
                        "a relative path given here is relative to the current folder")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    n = sub.add_parser("init", parents=[talk], help="write a ready case folder from a shipped template",
                       description="Copy a template namelist into a new folder NAME, as NAME/NAME.yaml.")
    n.add_argument("name", nargs="?", help="case name and folder (letters, digits, '.', '_', '-')")
    n.add_argument("--template", default="osse_default", help="template to start from (default: osse_default)")
    n.add_argument("--list", action="store_true", help="list the templates and exit")
    r = sub.add_parser("run", parents=[common], help="run a case: truth/ensemble, analysis cycles, outputs",
                       description="Run the experiment the namelist describes (under mpiexec for several ranks).")
    r.add_argument("--restart", metavar="FILE", help="continue from a checkpoint written by an earlier run")
    r.add_argument("--stop-after-days", type=_positive_float, metavar="DAYS",
                   help="stop (with a checkpoint) after this many simulated days, e.g. to split a long job")
    v = sub.add_parser("validate", parents=[common], help="compare a run's products with in situ stations",
                       description="Metrics tables and figures of every product of a run against in situ data.")
    v.add_argument("--insitu", metavar="PATH", help="ISMN folder or zip, or CSV station file (default: validation.insitu)")
    d = sub.add_parser("downscale", parents=[common], help="run only the comparison downscaling operators",
                       description="Apply DISPATCH / empirical downscaling to the case's coarse observations.")
    d.add_argument("--method", action="append", choices=("dispatch", "empirical", "random_forest"),
                   help="comparison operator (repeatable; default: comparison.methods of the namelist)")
    i = sub.add_parser("info", parents=[common], help="print the resolved namelist, domain size and memory estimate",
                       description="Print the resolved namelist (every default filled in), the domain and a memory estimate.")
    i.add_argument("--keys", action="store_true", help="print the documentation of every namelist key (Markdown)")
    i.add_argument("--ranks", type=_positive_int, default=1, metavar="N",
                   help="MPI ranks of the run the memory estimate is for (per rank; default 1)")
    a = sub.add_parser("parameters", parents=[common], help="build the static 1 km fields (domain.parameters) from rasters",
                       description="Reproject soil, land-cover, elevation and NDVI rasters (GeoTIFF or netCDF, any CRS; "
                       "FILE:VARIABLE picks a netCDF variable) onto the domain's EASE-Grid 2.0 1 km cells and write "
                       "the parameter file (see smda.run.parameters for units and methods).")
    a.add_argument("--sand", required=True, metavar="FILE", help="sand content (default units g/kg, SoilGrids)")
    a.add_argument("--clay", required=True, metavar="FILE", help="clay content (default units g/kg, SoilGrids)")
    a.add_argument("--landcover", required=True, metavar="FILE", help="IGBP classes 1-17 (MODIS MCD12Q1 LC_Type1)")
    a.add_argument("--elevation", required=True, metavar="FILE", help="elevation in m (SRTM, GMTED)")
    a.add_argument("--ndvi", required=True, nargs="+", metavar="FILE", help="NDVI climatology: its layers through the year")
    a.add_argument("--ndvi-doy", nargs="+", type=float, metavar="DOY", help="day of year of each NDVI layer")
    a.add_argument("--organic-carbon", metavar="FILE", help="soil organic carbon (default units dg/kg, SoilGrids soc)")
    a.add_argument("--bulk-density", metavar="FILE", help="bulk density (default units cg/cm3, SoilGrids bdod)")
    a.add_argument("--soil-class", metavar="FILE", help="soil classes, for soil_class entries of --overrides")
    a.add_argument("--overrides", metavar="YAML", help="per-class porosity, b, psi_sat_m, k_sat_ms (igbp, soil_class)")
    a.add_argument("--units", action="append", default=[], metavar="NAME=UNIT", help="units of an input, e.g. sand=%%")
    a.add_argument("-o", "--output", metavar="FILE", help="parameter file to write (default: domain.parameters)")
    a.add_argument("--force", action="store_true", help="replace an existing output file")
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _setup_logging(args, rank=0):
    """smda at INFO (-q WARNING, -v DEBUG); other libraries at WARNING (-vv INFO, -vvv DEBUG); ISO 8601 times."""
    ours = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose >= 1 else logging.INFO)
    theirs = {0: logging.WARNING, 1: logging.WARNING, 2: logging.INFO}.get(args.verbose, logging.DEBUG)
    if rank != 0:
        ours, theirs = max(ours, logging.WARNING), max(theirs, logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(theirs)
    logging.getLogger("smda").setLevel(ours)


def _world():
    """MPI.COMM_WORLD, or None for a serial run where mpi4py or its MPI library is missing."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:
        launched = [v for v in LAUNCHER_SIZE if int(os.environ.get(v, "1") or 1) > 1]
        if launched:
            raise SystemExit(f"smda: started as one of several MPI ranks ({launched[0]}={os.environ[launched[0]]}) "
                             f"but mpi4py cannot be used ({exc}); install smda[mpi] (system MPI) or smda[mpich]") from None
        return None
    return MPI.COMM_WORLD


def _abort_others(comm):
    """A failure on one rank stops the whole job instead of hanging the others."""
    if comm is not None and comm.size > 1:
        comm.Abort(1)


def main(argv=None) -> int:
    t0 = time.perf_counter()
    args = _parser().parse_args(argv)  # argparse exits with 2 on usage errors
    comm = _world() if args.command == "run" else None
    _setup_logging(args, comm.rank if comm is not None else 0)
    ranks = "" if comm is None else f" on {comm.size} MPI rank(s)"
    if args.command != "init":
        log.info("smda %s %s %s%s", __version__, args.command, args.namelist, ranks)
    if args.command == "run" and comm is None:
        log.info("mpi4py or its MPI library is not available: a serial run")
    from smda.run.namelist import NamelistError, load

    try:
        if args.command == "init":
            from smda.run.templates import init, listing

            if args.list or args.name is None:
                print(listing())
                return 0 if args.list else 2
            init(args.name, args.template)
            return 0
        if args.command == "parameters":
            from smda.run.parameters import command

            command(args)
            return 0
        nl = load(args.namelist, args.set, check_inputs=args.command in ("run", "info"))
        if args.command == "info":
            from smda.run.info import info

            info(nl, keys=args.keys, ranks=args.ranks)
        elif args.command == "run":
            from smda import jit
            from smda.run.driver import run

            if not jit.cache_is_warm() and (comm is None or comm.rank == 0):
                log.info("compiling the numerical kernels (first run after an install or an update: 1-3 min; "
                         "later runs load them from the cache)")
            drv = run(nl, comm=comm, restart=args.restart, stop_after_days=args.stop_after_days)
            if drv.signalled:
                from smda.run.guard import EXIT_STOPPED

                return EXIT_STOPPED
        elif args.command == "validate":
            from smda.run.validate import main as validate_main

            validate_main(nl, insitu=args.insitu)  # nothing validated: NothingValidated (a ValueError), exit 1
        elif args.command == "downscale":
            from smda.run.driver import downscale

            downscale(nl, methods=args.method)
    except NamelistError as exc:
        log.error("%s", exc)
        return 2
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        _abort_others(comm)
        return 1
    except Exception:  # a bug: show where, and never leave the other ranks waiting in a collective
        log.exception("unexpected failure")
        _abort_others(comm)
        return 1
    log.debug("done in %.2f s", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``smda`` command line: run, validate, downscale, info.

Exit codes: 0 success, 2 usage or namelist error (the message names the file, line and key),
1 runtime failure (missing input file, unwritable output, numerical failure), 75 stopped by SIGTERM or
SIGUSR1 after writing a checkpoint (sysexits EX_TEMPFAIL: resubmit with --restart).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from smda import __version__

log = logging.getLogger("smda")

EPILOG = """examples:
  smda run namelists/osse_default.yaml
  mpiexec -n 64 smda run case.yaml
  smda run case.yaml --restart out/restart/case_2019-06-01T00.nc
  smda validate case.yaml --insitu path/to/ismn_data
  smda downscale case.yaml --method dispatch
  smda info case.yaml --set model.ensemble_size=32 --ranks 64
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="smda", description="1 km soil moisture from coarse SMAP/SMOS observations by ensemble data assimilation.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"smda {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("namelist", help="YAML case study (see namelists/README.md)")
    common.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a namelist key, e.g. --set assimilation.filter=enkf (repeatable)")
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    r = sub.add_parser("run", parents=[common], help="run a case: truth/ensemble, analysis cycles, outputs",
                       description="Run the experiment the namelist describes (under mpiexec for several ranks).")
    r.add_argument("--restart", metavar="FILE", help="continue from a checkpoint written by an earlier run")
    r.add_argument("--stop-after-days", type=float, metavar="DAYS",
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
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _setup_logging(args, rank=0):
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose < 2 else logging.DEBUG)
    if rank != 0:
        level = max(level, logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def _abort_others(comm):
    """A failure on one rank stops the whole job instead of hanging the others."""
    if comm is not None and comm.size > 1:
        comm.Abort(1)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # argparse exits with 2 on usage errors
    from smda.run.namelist import NamelistError, load

    comm = None
    if args.command == "run":
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    _setup_logging(args, comm.rank if comm is not None else 0)
    t0 = time.perf_counter()
    try:
        nl = load(args.namelist, args.set)
        if args.command == "info":
            from smda.run.info import info

            info(nl, keys=args.keys, ranks=args.ranks)
        elif args.command == "run":
            from smda.run.driver import run

            drv = run(nl, comm=comm, restart=args.restart, stop_after_days=args.stop_after_days)
            if drv.signalled:
                from smda.run.guard import EXIT_STOPPED

                return EXIT_STOPPED
        elif args.command == "validate":
            from smda.run.validate import main as validate_main

            validate_main(nl, insitu=args.insitu)
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

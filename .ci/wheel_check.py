"""Install check of what users install (``make wheel-check``).

Builds the sdist, builds the wheel from the sdist (as ``pip install smda`` does from an index that has
only the sdist), installs the wheel into a fresh venv outside the repository and, from a temporary
directory, imports ``smda``, writes a case folder with ``smda init`` from the installed templates, runs
it (a short twin experiment) with the installed ``smda`` command and validates its products against the
synthetic stations it wrote.

Offline once ``make`` has installed the dependencies: the build uses this environment's setuptools
and wheel (``--no-build-isolation``), and the fresh venv has no packages of its own but a ``.pth``
file that appends this environment's site-packages. A directory added by a ``.pth`` line does not
have its own ``.pth`` files run, so the editable install of this checkout stays invisible there.
"""

import csv
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOMS = ("model", "forcing", "assimilation", "run")
# ten days of the default twin experiment on one 36 km pixel: five analysis times, under a minute
# with the numba compilation of a fresh install
CASE = ["--set", "time.end=2019-05-11T00:00", "--set", "model.ensemble_size=4", "--set", "domain.size_km=[36, 36]",
        "--set", "validation.min_samples=3"]


def step(what, cmd, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"wheel-check: {what} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    print(f"wheel-check: {what} ({time.perf_counter() - t0:.1f} s)")
    return r.stdout


def sources():
    """Every module of the smda namespace, as its path in the repository (package folders only)."""
    pkgs = [REPO / "smda"] + [p.parent for room in ROOMS for p in (REPO / room).rglob("__init__.py")]
    return sorted({f.relative_to(REPO) for d in pkgs for f in d.glob("*.py")})


def check_sdist(sdist):
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.removeprefix(f"{top}/") for n in tar.getnames()}
    wanted = [str(f) for f in sources()] + ["tests/conftest.py", "namelists/osse_default.yaml", "namelists/README.md"]
    missing = [f for f in wanted if f not in names]
    if missing:
        sys.exit(f"wheel-check: the sdist lacks {missing}")


def check_wheel(wheel, dist_info):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    stray = sorted(n for n in names if n.split("/")[0] not in ("smda", dist_info))
    wanted = {str(f) if f.parts[0] == "smda" else f"smda/{f}" for f in sources()}
    wanted |= {f"smda/{f.relative_to(REPO)}" for f in (REPO / "namelists").glob("*.yaml")}  # smda init's templates
    missing = sorted(wanted - names)
    if stray or missing:
        sys.exit(f"wheel-check: the wheel installs {stray} outside smda/ and lacks {missing}")


def main():
    with tempfile.TemporaryDirectory(prefix="smda-wheel-check-") as tmp:
        tmp = Path(tmp)
        dist, venv, work = tmp / "dist", tmp / "venv", tmp / "work"
        work.mkdir()
        step("sdist", [sys.executable, "-c", "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
                       dist], cwd=REPO)
        (sdist,) = dist.glob("*.tar.gz")
        check_sdist(sdist)
        step("wheel from the sdist", [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                                      "--no-build-isolation", "-w", dist, sdist], cwd=tmp)
        (wheel,) = dist.glob("*.whl")
        dist_info = sdist.name.removesuffix(".tar.gz") + ".dist-info"
        check_wheel(wheel, dist_info)

        step("fresh venv", [sys.executable, "-m", "venv", "--without-pip", venv])
        python = venv / "bin" / "python"
        site = Path(step("its site-packages", [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
        deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
        (site / "smda-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
        step(f"install {wheel.name}", [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                                       "--no-index", wheel])
        top_level = sorted(p.name for p in site.iterdir())
        if top_level != sorted(["smda", dist_info, "smda-dependencies.pth"]):
            sys.exit(f"wheel-check: site-packages holds {top_level}, expected smda and its metadata only")

        # from outside the repository, with nothing of it on the path; the mpich wheel's libmpi is found
        # under this environment's prefix (mpi4py looks under the running interpreter's prefix)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "lib"), env.get("LD_LIBRARY_PATH")]))
        run = {"cwd": work, "env": env}
        where = step("import smda", [python, "-c", "import smda; print(smda.__version__, smda.__file__)"], **run).split()
        if not Path(where[1]).is_relative_to(site):
            sys.exit(f"wheel-check: smda was imported from {where[1]}, not from the fresh venv")
        print(f"wheel-check: smda {where[0]} from {where[1]}")
        smda = venv / "bin" / "smda"
        step("smda init twin", [smda, "init", "twin", "--template", "osse_default"], **run)
        out = work / "twin" / "out"
        case = [work / "twin" / "twin.yaml", *CASE, "-q"]
        step("smda run (twin experiment, 10 days, 36 km)", [smda, "run", *case], **run)
        for f in ("twin_skill.csv", "products/analysis.nc", "products/dispatch.nc", "synthetic_stations.csv"):
            if not (out / f).is_file():
                sys.exit(f"wheel-check: smda run wrote no {f}")
        step("smda validate", [smda, "validate", *case, "--insitu", out / "synthetic_stations.csv"], **run)
        with open(out / "validation" / "validation_metrics.csv") as f:
            overall = {r["product"]: r for r in csv.DictReader(f) if r["level"] == "overall" and r["season"] == "all"}
        if not ({"analysis", "truth"} <= set(overall) and float(overall["truth"]["ubrmsd"]) < 1e-6):
            sys.exit(f"wheel-check: unexpected validation of the twin experiment: {overall}")
    print("wheel-check: passed")


if __name__ == "__main__":
    main()

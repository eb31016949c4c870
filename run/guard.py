"""Fail early, fail safe: the guards around a (cluster) run's outputs.

- ``check_output_dir``: before the time loop, the output folder exists, is writable and has room.
- ``OutputLock`` / ``acquire_lock``: one run at a time writes into an output folder (rank 0 holds the lock).
- ``temporary_path``: a per-run temporary name beside a file, for write-then-rename.
- ``StopRequest`` / ``EXIT_STOPPED``: a scheduler's stop signal becomes a checkpoint at the next step
  boundary and exit code 75.
- ``describe_write_error`` / ``writing``: disk full, quota, permission and read-only errors said plainly.
- ``default_restart_every_days``: the checkpoint interval when the namelist leaves it at 0.

The communicator is passed in; with None (or one rank) everything is serial.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_STOPPED = 75  # sysexits EX_TEMPFAIL, "try again later": stopped by a signal after writing a checkpoint
LOCK_NAME = ".smda.lock"
DEFAULT_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGUSR1") if hasattr(signal, n))
SHORT_RUN_DAYS = 28.0  # runs up to this long keep only the final restart by default
DEFAULT_RESTART_EVERY_DAYS = 7.0  # the checkpoint interval of longer runs by default
_LOW_SPACE = 64 * 2**20  # below this much free space an unexplained write error is probably a full disk

_CAUSES = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}
if hasattr(errno, "EDQUOT"):
    _CAUSES[errno.EDQUOT] = "disk quota exceeded"


class OutputError(OSError):
    """An output folder or file cannot be used; the message names the path and the cause.

    A subclass of OSError because it stands for one (disk full, permission denied, a folder in use): code
    that handles OSError, and the CLI (exit code 1), handle it unchanged. ``errno`` is the cause's, when
    known; ``path`` is the file or folder concerned.
    """

    def __init__(self, message: str, *, err: int | None = None, path=None):
        super().__init__(message)
        self.errno = err
        self.path = None if path is None else Path(path)


# ---------------------------------------------------------------------------------------------- helpers
def _human(n: float) -> str:
    """A byte count in binary units: 1.5 GiB."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    x, i = float(n), 0
    while abs(x) >= 1024 and i < len(units) - 1:
        x, i = x / 1024, i + 1
    return f"{int(n)} bytes" if i == 0 else f"{x:.1f} {units[i]}"


def _host() -> str:
    """This host's name, safe in a file name."""
    return re.sub(r"[^\w.-]", "_", socket.gethostname()) or "localhost"


def _cause(exc: OSError) -> str:
    return _CAUSES.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__


def _on_root(comm, fn, *args):
    """``fn(*args)`` on rank 0 only; a failure there is raised on every rank (as OutputError elsewhere)."""
    if comm is None or comm.Get_size() == 1:
        return fn(*args)
    result = failure = message = None
    if comm.Get_rank() == 0:
        try:
            result = fn(*args)
        except Exception as exc:  # broadcast before raising, so that no rank waits in a collective
            failure, message = exc, str(exc) if isinstance(exc, OutputError) else f"{type(exc).__name__}: {exc}"
    message = comm.bcast(message, root=0)
    if failure is not None:
        raise failure
    if message is not None:
        raise OutputError(message)
    return result


# ---------------------------------------------------------------------------------------------- the folder
def check_output_dir(path: Path, need_bytes: int, comm=None) -> None:
    """Create the output folder (with parents) and check that the run can write ``need_bytes`` into it.

    Raises OutputError naming the folder and the cause: it is a file, a part of its path is a file, it
    cannot be created, it is on a read-only file system, a probe file cannot be written, or the free space
    is below ``need_bytes`` (user quotas are not seen here: ``writing`` names them when hit). With a
    communicator rank 0 checks and every rank raises the same error (collective).
    """
    _on_root(comm, _check_output_dir, Path(path), int(need_bytes))


def _check_output_dir(path: Path, need_bytes: int) -> None:
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is a file, not a folder", err=errno.ENOTDIR, path=path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        cause = f"{blocker} is a file, not a folder" if blocker is not None else _cause(exc)
        raise OutputError(f"cannot create output folder {path}: {cause}", err=exc.errno, path=path) from exc
    if hasattr(os, "statvfs") and os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1):
        raise OutputError(f"output folder {path} is on a read-only file system", err=errno.EROFS, path=path)
    probe = path / f".smda-probe.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    created = False
    try:
        with open(probe, "xb") as f:  # x: O_CREAT | O_EXCL, a name no one else uses
            created = True
            f.write(b"smda\n")
        probe.unlink()
    except OSError as exc:
        if created:
            with suppress(OSError):
                probe.unlink()
        raise OutputError(f"output folder {path} is not writable: {_cause(exc)}", err=exc.errno, path=path) from exc
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise OutputError(f"not enough free space for the outputs in {path}: {_human(free)} free, "
                          f"{_human(need_bytes)} needed", err=errno.ENOSPC, path=path)
    log.debug("output folder %s: writable, %s free, %s needed", path, _human(free), _human(need_bytes))


# ---------------------------------------------------------------------------------------------- the lock
def _alive(pid) -> bool:
    """Whether process ``pid`` exists on this host (a pid that is not a positive int counts as alive)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_lock(path: Path) -> dict | None:
    """A lock's content; None when there is no lock, {} when it stays unreadable (written just now, or broken)."""
    for attempt in range(5):
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # another run may be between creating and writing it
            info = None
        if isinstance(info, dict):
            return info
        time.sleep(0.05 * (attempt + 1))
    return {}


def _slurm_job() -> dict:
    """This run's Slurm job id and restart count (a requeued job keeps its id), {} outside Slurm."""
    job, restart = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_RESTART_COUNT", "0")
    return {"job": job, "restart": int(restart) if restart.isdigit() else 0} if job else {}


def _stale_reason(info: dict) -> str | None:
    """Why the run that left a lock has certainly ended, or None when it may still run."""
    job = _slurm_job()
    if job and info.get("job") == job["job"] and isinstance(info.get("restart"), int) and info["restart"] < job["restart"]:
        return f"Slurm job {job['job']} has been requeued since"
    if info.get("host") == _host() and not _alive(info.get("pid")):
        return f"process {info.get('pid')} on this host has ended"
    return None


def _set_aside(path: Path, stale: dict) -> None:
    """Remove a stale lock such that two runs replacing it at once cannot remove each other's new lock."""
    aside = path.with_name(f"{path.name}.{_host()}.{os.getpid()}.stale")
    try:
        os.replace(path, aside)  # atomic: a given file is moved aside by one run only
    except FileNotFoundError:
        return
    if _read_lock(aside) != stale:  # another run replaced it first and this is its live lock: put it back
        os.replace(aside, path)
    aside.unlink(missing_ok=True)


class OutputLock:
    """``<dir>/.smda.lock``: one run at a time writes into an output folder.

    The lock file is created atomically (O_CREAT | O_EXCL) and holds the host, pid, start time, case name
    and Slurm job of its run. A lock whose run has certainly ended (same host and that pid is gone, or the
    same Slurm job requeued since) is replaced with a warning; any other is refused with OutputError. A
    reused pid makes a stale lock look alive: the message says how to remove it. With a communicator,
    rank 0 holds the lock, ``acquire`` is collective and every rank raises the same error; ``release`` is
    not collective (safe in error paths) and removes the file only if it is still this run's.
    Use as a context manager, or ``acquire()`` / ``release()``.
    """

    def __init__(self, dir: Path, case_name: str, comm=None):
        self.path = Path(dir) / LOCK_NAME
        self.case_name = case_name
        self.comm = comm
        self.held = False
        self._mine: dict | None = None  # the content this process wrote (rank 0)

    def acquire(self) -> OutputLock:
        """Take the lock (idempotent); raises OutputError when another run holds it."""
        if not self.held:
            _on_root(self.comm, self._take)
            self.held = True
        return self

    def release(self) -> None:
        """Remove the lock file if it is still this run's; otherwise leave it and warn."""
        mine, self._mine, self.held = self._mine, None, False
        if mine is None or mine["pid"] != os.getpid():  # not rank 0, or a forked child
            return
        if _read_lock(self.path) == mine:
            self.path.unlink(missing_ok=True)
        else:
            log.warning("lock %s is no longer this run's (replaced or removed); left as it is", self.path)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _take(self) -> None:
        mine = {"host": _host(), "pid": os.getpid(), "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                "case": self.case_name}
        mine.update(_slurm_job())
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = _read_lock(self.path)
                if other is None:  # removed meanwhile: try again
                    continue
                reason = _stale_reason(other)
                if reason is None:
                    raise OutputError(self._in_use(other), err=errno.EBUSY, path=self.path) from None
                _set_aside(self.path, other)
                log.warning("replaced the stale lock %s of case %r (pid %s on %s, started %s): %s", self.path,
                            other.get("case"), other.get("pid"), other.get("host"), other.get("started"), reason)
                continue
            except OSError as exc:
                raise describe_write_error(self.path, exc) from exc
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps(mine) + "\n")
            except OSError as exc:
                self.path.unlink(missing_ok=True)
                raise describe_write_error(self.path, exc) from exc
            self._mine = mine
            return
        raise OutputError(f"could not take the lock {self.path}: other runs keep replacing it", path=self.path)

    def _in_use(self, other: dict) -> str:
        if not other:
            return (f"output folder {self.path.parent} is locked by {self.path}, which cannot be read; if no other "
                    f"run writes into this folder, remove it (rm {self.path}) and start again")
        host, pid = other.get("host"), other.get("pid")
        job = f", Slurm job {other['job']}" if other.get("job") else ""
        msg = (f"output folder {self.path.parent} is in use by another run: case {other.get('case')!r} on host "
               f"{host}, pid {pid}{job}, started {other.get('started')} (lock {self.path}). Wait for it to end "
               f"or choose another output.dir.")
        if host == _host():
            return msg + f" Process {pid} is running on this host; if it is not an smda run, remove the lock (rm {self.path})."
        check = f"squeue -j {other['job']}" if other.get("job") else f"ssh {host} ps -p {pid}"
        return msg + f" If that run has ended (check with `{check}`), remove the stale lock: rm {self.path}"


def acquire_lock(dir: Path, case_name: str, comm=None) -> OutputLock:
    """Take the output folder's lock on rank 0 (collective); every rank raises the same OutputError if refused."""
    return OutputLock(dir, case_name, comm).acquire()


# ---------------------------------------------------------------------------------------------- files
def temporary_path(path: Path) -> Path:
    """A temporary name beside ``path`` for write-then-rename, unique per run: ``.<name>.<host>.<pid>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.tmp")


def describe_write_error(path, exc: OSError) -> OutputError:
    """An OutputError naming ``path`` and the cause of ``exc`` (disk full, quota, permission, read-only, ...)."""
    if isinstance(exc, OutputError):
        return exc
    cause = _cause(exc)
    if exc.errno not in _CAUSES:  # e.g. "NetCDF: HDF error": say when the disk is (nearly) full
        with suppress(OSError):
            free = shutil.disk_usage(Path(path).parent).free
            if free < _LOW_SPACE:
                cause += f" (only {_human(free)} free there: the disk is probably full)"
    return OutputError(f"cannot write {path}: {cause}", err=exc.errno, path=path)


@contextmanager
def writing(path):
    """Turn an OSError raised inside (and netCDF's "NetCDF: ..." RuntimeError) into ``describe_write_error``'s
    OutputError for ``path``, chained to the original."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise describe_write_error(path, exc) from exc
    except RuntimeError as exc:  # netCDF4 reports failed writes (a full disk among them) this way
        if not str(exc).startswith("NetCDF:"):
            raise
        raise describe_write_error(path, OSError(None, str(exc))) from exc


# ---------------------------------------------------------------------------------------------- stopping
class StopRequest:
    """A stop signal (Slurm: SIGTERM at the time limit, or ``--signal=USR1@120``), acted on at a step boundary.

    ``install()`` (or ``with StopRequest() as stop:``) replaces the handlers of ``signals``; the handler only
    records the signal number. Every rank calls ``requested(comm)`` at the same step boundaries; it is True
    on all ranks once any rank got a signal, and the driver then writes a checkpoint and the CLI exits with
    EXIT_STOPPED. While installed, SIGTERM no longer ends the process by itself. ``uninstall()`` (or leaving
    the ``with`` block) restores the previous handlers. Install from the main thread (Python's rule).
    """

    def __init__(self):
        self.received = 0  # the last signal number this process got, 0 for none
        self._previous: dict = {}
        self._reported = False

    def _handler(self, signum, frame) -> None:
        self.received = signum  # nothing else: no I/O, no locks

    def install(self, signals=DEFAULT_STOP_SIGNALS) -> StopRequest:
        for s in signals:
            if s not in self._previous:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def uninstall(self) -> None:
        while self._previous:
            s, handler = self._previous.popitem()
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def __enter__(self) -> StopRequest:
        return self.install() if not self._previous else self

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def requested(self, comm=None) -> bool:
        """Whether any rank got a stop signal (collective with a communicator: call it on every rank)."""
        got = self.received
        if comm is not None and comm.Get_size() > 1:
            from mpi4py import MPI

            got = comm.allreduce(got, op=MPI.MAX)
        if got and not self._reported and (comm is None or comm.Get_rank() == 0):
            log.warning("stop requested by %s: stopping at this step", signal.Signals(got).name)
        self._reported = self._reported or bool(got)
        return bool(got)


# ---------------------------------------------------------------------------------------------- checkpoints
def default_restart_every_days(run_days: float, restart_every_days: float) -> float:
    """The checkpoint interval in days (0: only the final restart).

    The namelist value when it is > 0. When it is 0 (the default), runs of at most 28 days keep only the
    final restart and longer runs checkpoint every 7 days: a job killed by its time limit or a failed node
    then loses at most a week of simulation, and a checkpoint is small (it holds only the state), so
    writing one a week costs little.
    """
    if restart_every_days < 0:
        raise ValueError(f"restart_every_days must be >= 0, got {restart_every_days}")
    if restart_every_days > 0:
        return float(restart_every_days)
    return 0.0 if run_days <= SHORT_RUN_DAYS else DEFAULT_RESTART_EVERY_DAYS

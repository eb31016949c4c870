"""smda.run.guard: output folder checks, the output lock, temporary names, stop signals, write errors."""

import errno
import json
import logging
import os
import signal
import subprocess
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from smda.run import guard
from smda.run.guard import (
    EXIT_STOPPED,
    LOCK_NAME,
    OutputError,
    OutputLock,
    StopRequest,
    acquire_lock,
    check_output_dir,
    default_restart_every_days,
    describe_write_error,
    temporary_path,
    writing,
)
from tests.test_driver import mpi_python


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def write_lock(folder: Path, **info) -> Path:
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"started": "2024-01-01T00:00:00+00:00", "case": "old", **info}))
    return path


# ------------------------------------------------------------------------------------------ the folder
def test_creates_missing_folder_and_leaves_nothing(tmp_path):
    out = tmp_path / "a" / "b"
    check_output_dir(out, 1)
    assert out.is_dir() and not any(out.iterdir())


def test_folder_that_is_a_file(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file") as e:
        check_output_dir(f, 0)
    assert str(f) in str(e.value)


def test_path_under_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError) as e:
        check_output_dir(f / "out" / "deeper", 0)
    assert f"{f} is a file" in str(e.value) and str(f / "out" / "deeper") in str(e.value)


def test_not_enough_space(tmp_path):
    with pytest.raises(OutputError, match=r"PiB needed") as e:
        check_output_dir(tmp_path, 10**18)
    assert str(tmp_path) in str(e.value) and " free, " in str(e.value) and e.value.errno == errno.ENOSPC


def test_read_only_mount(tmp_path, monkeypatch):
    if not hasattr(os, "statvfs"):
        pytest.skip("no os.statvfs")
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_flag=os.ST_RDONLY))
    with pytest.raises(OutputError, match="read-only file system"):
        check_output_dir(tmp_path, 0)


def test_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits; the read-only mount and folder-is-a-file tests cover the refusal")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable: permission denied"):
            check_output_dir(tmp_path, 0)
    finally:
        tmp_path.chmod(0o700)


# ------------------------------------------------------------------------------------------ the lock
def test_lock_twice_refused(tmp_path):
    with OutputLock(tmp_path, "first") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(OutputError) as e:
            OutputLock(tmp_path, "second").acquire()
        msg = str(e.value)
        assert guard._host() in msg and f"pid {os.getpid()}" in msg and str(lock.path) in msg and "'first'" in msg
    assert not lock.path.exists()


def test_stale_lock_replaced(tmp_path, caplog):
    pid = dead_pid()
    write_lock(tmp_path, host=guard._host(), pid=pid)
    with caplog.at_level(logging.WARNING, logger="smda.run.guard"):
        lock = acquire_lock(tmp_path, "new")
    assert f"pid {pid}" in caplog.text and "stale" in caplog.text
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]  # nothing set aside is left
    lock.release()
    assert not lock.path.exists()


def test_lock_of_another_host_refused_with_hint(tmp_path):
    path = write_lock(tmp_path, host="node-elsewhere-7", pid=1)
    with pytest.raises(OutputError) as e:
        acquire_lock(tmp_path, "new")
    msg = str(e.value)
    assert "node-elsewhere-7" in msg and "pid 1" in msg and "ssh node-elsewhere-7 ps -p 1" in msg and f"rm {path}" in msg
    assert json.loads(path.read_text())["host"] == "node-elsewhere-7"


def test_requeued_slurm_job_replaces_its_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    write_lock(tmp_path, host="node-elsewhere-7", pid=1, job="4242", restart=1)  # another step of this job
    with pytest.raises(OutputError, match="squeue -j 4242"):
        acquire_lock(tmp_path, "new")
    write_lock(tmp_path, host="node-elsewhere-7", pid=1, job="4242", restart=0)  # before the requeue
    with acquire_lock(tmp_path, "new") as lock:
        assert json.loads(lock.path.read_text())["restart"] == 1


def test_release_removes_only_our_lock(tmp_path, caplog):
    lock = acquire_lock(tmp_path, "mine")
    other = write_lock(tmp_path, host="node-elsewhere-7", pid=1)
    with caplog.at_level(logging.WARNING, logger="smda.run.guard"):
        lock.release()
    assert other.exists() and "no longer this run's" in caplog.text


def test_unreadable_lock_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(guard.time, "sleep", lambda s: None)
    (tmp_path / LOCK_NAME).write_text("")
    with pytest.raises(OutputError, match="cannot be read"):
        acquire_lock(tmp_path, "new")


# ------------------------------------------------------------------------------------------ files and errors
def test_temporary_path_unique_per_run(tmp_path, monkeypatch):
    target = tmp_path / "x_analysis.nc"
    monkeypatch.setattr(os, "getpid", lambda: 1111)
    a = temporary_path(target)
    monkeypatch.setattr(os, "getpid", lambda: 2222)
    b = temporary_path(target)
    assert a != b and a.parent == b.parent == tmp_path
    assert a.name.startswith(".x_analysis.nc.") and a.name.endswith(".1111.tmp") and guard._host() in a.name


@pytest.mark.parametrize("code, cause", [(errno.ENOSPC, "disk full (no space left on device)"),
                                         (getattr(errno, "EDQUOT", errno.ENOSPC), "disk quota exceeded"),
                                         (errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"),
                                         (errno.EIO, os.strerror(errno.EIO))])
def test_describe_write_error(tmp_path, code, cause):
    if code == errno.ENOSPC and "quota" in cause:
        pytest.skip("this platform has no EDQUOT errno")
    path = tmp_path / "x_daily.nc"
    exc = describe_write_error(path, OSError(code, os.strerror(code), str(temporary_path(path))))
    assert isinstance(exc, OSError) and exc.errno == code and exc.path == path
    assert str(exc).startswith(f"cannot write {path}: {cause}")


def test_writing_converts_and_chains(tmp_path):
    path = tmp_path / "x_daily.nc"
    original = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match="disk full") as e:
        with writing(path):
            raise original
    assert e.value.__cause__ is original and str(path) in str(e.value)
    with pytest.raises(OutputError, match="NetCDF: HDF error"):
        with writing(path):
            raise RuntimeError("NetCDF: HDF error")
    with pytest.raises(RuntimeError, match="unrelated"):
        with writing(path):
            raise RuntimeError("unrelated")


# ------------------------------------------------------------------------------------------ stopping
def test_stop_signal_recorded_and_handlers_restored():
    before = {s: signal.getsignal(s) for s in guard.DEFAULT_STOP_SIGNALS}
    with StopRequest() as stop:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.requested() and stop.received == signal.SIGUSR1
    assert {s: signal.getsignal(s) for s in guard.DEFAULT_STOP_SIGNALS} == before
    assert EXIT_STOPPED == 75


@pytest.mark.parametrize("run_days, every, expected", [(10, 0, 0), (28, 0, 0), (28.5, 0, 7), (365, 0, 7), (10, 3, 3),
                                                       (365, 30, 30)])
def test_default_restart_every_days(run_days, every, expected):
    assert default_restart_every_days(run_days, every) == expected


def test_default_restart_every_days_negative():
    with pytest.raises(ValueError):
        default_restart_every_days(100, -1)


# ------------------------------------------------------------------------------------------ two ranks
SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from mpi4py import MPI
    from smda.run.guard import OutputError, StopRequest, acquire_lock, check_output_dir

    comm, folder = MPI.COMM_WORLD, Path(sys.argv[1])
    seen = {}
    try:
        acquire_lock(folder, "second", comm)
    except OutputError as exc:
        seen["lock"] = str(exc)
    try:
        check_output_dir(folder / ".smda.lock" / "out", 0, comm)
    except OutputError as exc:
        seen["notdir"] = str(exc)
    with StopRequest() as stop:
        seen["quiet"] = stop.requested(comm)
        if comm.Get_rank() == 1:
            os.kill(os.getpid(), signal.SIGUSR1)
        seen["stop"] = stop.requested(comm)
    everyone = comm.gather(seen, root=0)
    if comm.Get_rank() == 0:
        print(json.dumps(everyone))
""")


@pytest.mark.mpi
def test_two_ranks_raise_the_same_error_and_agree_on_stop(tmp_path):
    script = tmp_path / "guard_mpi.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out, "first"):  # held by this live process
        r = mpi_python(script, out, timeout=120)
    ranks = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(ranks) == 2 and ranks[0] == ranks[1]  # the same errors and answers on both ranks
    assert f"pid {os.getpid()}" in ranks[0]["lock"] and "is a file" in ranks[0]["notdir"]
    assert not ranks[0]["quiet"] and ranks[0]["stop"]  # rank 1's signal stops rank 0 too

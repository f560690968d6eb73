"""Interruptions from outside: SIGTERM, a killed batch parent, Dask workers in another folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safety_fixtures import TRACK, assert_refused, snapshot, write_study

import LinGuinELib
from LinGuinELib.cli.main import main

TESTING = Path(__file__).resolve().parent
CODE = Path(LinGuinELib.__file__).resolve().parents[1]  # the checkout under test, for child processes
CLI = "import sys, slow_fixtures; from LinGuinELib.cli.main import main; sys.exit(main(sys.argv[1:]))"
SLOW = ["--registration", "test-shift", "--segmentation", "test-slow"]


def _env(tmp_path: Path, slow_s: float = 1.0) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(CODE), str(TESTING)]),
            "LINGUINE_TEST_STARTED": str(tmp_path / "started"), "LINGUINE_TEST_SLOW_S": str(slow_s)}


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "tracking never started"
        time.sleep(0.05)


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_keeps_the_previous_out_and_says_so(tmp_path, capsys):
    study = write_study(tmp_path / "S")
    out = tmp_path / "out"
    assert main(["-q", "track", str(study), "--out", str(out), *TRACK]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", CLI, "-q", "track", str(study), "--out", str(out), *SLOW],
                            env=_env(tmp_path, 2.0), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "started", proc)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    (tmp_path / "started").unlink()
    assert snapshot(tmp_path) == before  # previous OUT intact, no partial folder left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_batch_workers_die_with_their_parent(tmp_path, sig):
    ds = tmp_path / "ds"
    for k in range(3):
        write_study(ds / f"p{k}", f"P{k}")
    cmd = [sys.executable, "-m", "LinGuinELib.cli.main", "-q", "batch", str(ds), "--out", str(tmp_path / "out"),
           "--workers", "2", "--plugin", "slow_fixtures", *SLOW]
    proc = subprocess.Popen(cmd, env=_env(tmp_path, 3.0), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "started", proc)
    workers = _children(proc.pid)
    assert workers, "no worker process found"
    proc.send_signal(sig)
    err = proc.communicate(timeout=30)[1]
    deadline = time.time() + 4  # a study takes 9 s here: workers must not finish theirs
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "worker processes outlived the batch"
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err, err


def test_dask_workers_get_absolute_paths(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    ds = tmp_path / "ds"
    write_study(ds / "a", "P_A")
    (tmp_path / "worker_home").mkdir()
    (tmp_path / "user_home").mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(CODE), str(TESTING)]))
    monkeypatch.chdir(tmp_path / "worker_home")  # the workers' working folder
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        monkeypatch.chdir(tmp_path / "user_home")
        code = main(["-q", "batch", "../ds", "--out", "rel_out", "--scheduler", cluster.scheduler_address,
                     "--plugin", "engine_fixtures", *TRACK])
    assert code == 0
    assert (tmp_path / "user_home" / "rel_out" / "P_A" / "run.json").is_file()
    assert not list((tmp_path / "worker_home").iterdir())


def test_something_else_answering_at_the_scheduler_address_writes_nothing(tmp_path, capsys):
    """A port that accepts connections but is no Dask scheduler: one line, exit 1, no OUT."""
    pytest.importorskip("distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def answer_garbage():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"\xff" * 64)

    threading.Thread(target=answer_garbage, daemon=True).start()
    ds = tmp_path / "ds"
    write_study(ds / "a", "P_A")
    try:
        assert_refused(capsys, tmp_path, "batch", ds, "--out", tmp_path / "out", "--scheduler",
                       f"tcp://127.0.0.1:{server.getsockname()[1]}", *TRACK, words=("scheduler",), code=1)
    finally:
        stop.set()
        server.close()

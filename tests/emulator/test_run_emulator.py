"""`make run-emulator` (python -m eventmgmt.emulator.stack) on its fixed ingest port, and stopped by
SIGTERM as a service manager or a CI runner stops it: every process it started (the Pub/Sub fake,
each functions-framework and its gunicorn workers, in their own sessions) is gone afterwards
(issue 14: they used to be left running)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port

ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (by parent pid, read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_every_process_the_emulator_started(tmp_path: Path) -> None:
    if not shutil.which("go") or not Path("/usr/share/gocode/src/cloud.google.com/go/pubsub/pstest").exists():
        pytest.skip("Go and Debian's golang-google-cloud-dev are needed to build pstest (make debs installs them)")
    port, board = free_port(), free_port()
    env = {
        **os.environ,
        "EVENTMGMT_HOME": str(tmp_path / "home"),
        "EVENTMGMT_EMULATOR_PORT": str(port),
        "EVENTMGMT_EMULATOR_DASHBOARD_PORT": str(board),
    }
    env.pop("EVENTMGMT_PROMETHEUS_URL", None)
    log = (tmp_path / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventmgmt.emulator.stack"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while f"ingest at http://127.0.0.1:{port}/ingest" not in (tmp_path / "stack.log").read_text():
            assert proc.poll() is None, (tmp_path / "stack.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the emulator did not start within 120 s"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/ingest/stats", timeout=10).status_code in (200, 404, 405)
        # the dashboard-only server on its fixed port, named in the start-up line
        assert f"dashboard at http://127.0.0.1:{board}/" in (tmp_path / "stack.log").read_text()
        health = httpx.get(f"http://127.0.0.1:{board}/healthz", timeout=10).json()
        assert health["mode"] == "dashboard-only"
        started = descendants(proc.pid)
        assert len(started) >= 9, f"expected the fake and the functions, found {len(started)} processes"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0 or proc.returncode is not None
        deadline = time.monotonic() + 15
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted(p for p in started if alive(p))
        assert not left, f"left running after SIGTERM: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in descendants(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**os.environ, "EVENTMGMT_HOME": str(tmp_path / "home"), "EVENTMGMT_EMULATOR_PORT": str(port)}
        run = subprocess.run(
            [sys.executable, "-m", "eventmgmt.emulator.stack"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode != 0
    assert f"port {port} is taken" in run.stderr and "EVENTMGMT_EMULATOR_PORT" in run.stderr


def test_a_taken_dashboard_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "EVENTMGMT_HOME": str(tmp_path / "home"),
            "EVENTMGMT_EMULATOR_PORT": str(free_port()),
            "EVENTMGMT_EMULATOR_DASHBOARD_PORT": str(port),
        }
        run = subprocess.run(
            [sys.executable, "-m", "eventmgmt.emulator.stack"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode != 0
    assert f"port {port} is taken" in run.stderr and "EVENTMGMT_EMULATOR_DASHBOARD_PORT" in run.stderr

"""Start `eventmgmt serve` as a real process on a free loopback port, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .incidents import BACKFILL_TOKEN

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).parent / "eventmgmt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def serve(home: Path, env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Yields the base URL once /healthz answers; kills the server afterwards."""
    with serve_process(home, env, timeout) as (url, _proc):
        yield url


@contextmanager
def serve_process(
    home: Path, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`serve`, yielding the process too (its pid for memory figures, or to kill it)."""
    port = free_port()
    full_env = {**os.environ, "EVENTMGMT_HOME": str(home), "EVENTMGMT_BACKFILL_TOKEN": BACKFILL_TOKEN, **(env or {})}
    log = (home / "serve.log").open("a") if home.exists() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [str(EXE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"eventmgmt serve exited with {proc.returncode}; see {home / 'serve.log'}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("eventmgmt serve did not answer /healthz")
            time.sleep(0.2)
        yield url, proc
    finally:
        stop(proc)

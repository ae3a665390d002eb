"""Issue 13 audit: idle and half-open connections cannot shut the server off. With waitress's
defaults (100 connections, each kept up to 120 s) 99 idle or 120 half-open loopback connections made
/healthz time out; a real `eventmgmt serve` holding 150 of them still answers it at once."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

import httpx

from tests.support.serve import serve

IDLE = 100  # connected, nothing sent
HALF_OPEN = 50  # a request begun and never finished


def test_150_idle_and_half_open_connections_leave_healthz_answering(tmp_path) -> None:
    with serve(tmp_path) as url, ExitStack() as held:
        port = int(url.rsplit(":", 1)[1])
        for i in range(IDLE + HALF_OPEN):
            conn = held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            if i >= IDLE:
                conn.sendall(b"POST /ingest/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.5)  # NOTE: the server has taken (or refused to take) every one of them
        started = time.monotonic()
        r = httpx.get(url + "/healthz", timeout=5)
        assert r.status_code == 200
        assert time.monotonic() - started < 3


def test_a_stop_stuck_past_its_deadline_ends_the_process(monkeypatch) -> None:
    """The backstop behind the drain: a request thread or a lock stuck after SIGTERM cannot keep the
    process alive past the drain deadline and its grace."""
    from eventmgmt.runtime import serving

    exited: list[tuple[int, float]] = []
    monkeypatch.setattr(serving.os, "_exit", lambda code: exited.append((code, time.monotonic())))
    deadline = time.monotonic() + 0.3
    serving._exit_by(deadline)
    time.sleep(1.0)
    assert len(exited) == 1 and exited[0][0] != 0 and deadline <= exited[0][1] < deadline + 0.5

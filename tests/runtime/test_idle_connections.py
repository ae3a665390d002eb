"""Idle connections must not shut the server out (runtime/serving.py WAITRESS): waitress's own
default, 100 connections, let a hundred idle or half-open clients (a load balancer's pool, a
crashed sender's sockets) refuse everyone else, the kubelet's /healthz probe included, and the pod
was restarted by its own probe. Checked on a real `eventmgmt serve`, on loopback."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.serve import serve_process

IDLE = 150  # NOTE: past waitress's default connection_limit (100), well under ours (1,000)


def test_a_crowd_of_idle_connections_does_not_shut_out_probes_or_webhooks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with serve_process(home) as (url, _proc):
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(IDLE)]
        try:
            # NOTE: a fresh client each time, so every request needs a new connection accepted
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            alert = {
                "status": "firing",
                "labels": {
                    "alertname": "TritonHighErrorRate",
                    "severity": "critical",
                    "pod": "triton-bert-7f9c6d8b4-x2kq9",
                },
                "startsAt": datetime.now(UTC).isoformat(),
            }
            r = httpx.post(
                url + "/ingest/alertmanager",
                content=json.dumps({"version": "4", "alerts": [alert]}),
                headers={"Content-Type": "application/json"},
                timeout=5,
            )
            assert r.status_code == 202 and r.json()["accepted"] == 1
        finally:
            for s in idle:
                s.close()


def test_an_idle_connection_is_closed_after_the_channel_timeout(tmp_path: Path) -> None:
    """A sender that opens a connection and goes quiet (or died half-way) holds a socket only until
    `channel_timeout` (30 s), checked every `cleanup_interval` (10 s): closed within 40 s."""
    from eventmgmt.runtime.serving import WAITRESS

    limit = WAITRESS["channel_timeout"] + WAITRESS["cleanup_interval"]
    home = tmp_path / "home"
    home.mkdir()
    with serve_process(home) as (url, _proc):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=limit + 10) as idle:
            opened = time.monotonic()
            assert idle.recv(1) == b""  # NOTE: the server's close; a timeout here raises instead
            waited = time.monotonic() - opened
    assert WAITRESS["channel_timeout"] - 1 <= waited <= limit + 2, waited

"""Sustained load on ingest over loopback: bounded request loops from several clients for a fixed time;
every accepted event is stored exactly once once the queue has drained, nothing is rejected, the
server stays responsive."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from eventmgmt.store.tables import EventRow
from tests.support.incidents import wait_drained
from tests.support.serve import serve

SECONDS = 8.0
CLIENTS = 4


# Live traffic: alerts start now, as Alertmanager would send them (old start times would make every
# incident stale on arrival, which is the late-delivery test's business, not this one's).
T0 = datetime.now(UTC).replace(microsecond=0)


def hook(client: int, n: int) -> dict:
    start = (T0 + timedelta(milliseconds=10 * n)).isoformat().replace("+00:00", "Z")
    return {
        "version": "4",
        "status": "firing",
        "receiver": "load",
        "alerts": [
            {
                "status": "firing",
                "startsAt": start,
                "fingerprint": f"c{client}n{n}a{i}",
                "labels": {
                    "alertname": "TritonHighErrorRate",
                    "severity": "critical",
                    "namespace": "inference",
                    "model": f"m{client}",
                    "pod": f"triton-m{client}-68kxfnbbb2-wbq4{'bcdfg'[i]}",
                },
            }
            for i in range(5)
        ],
    }


def test_sustained_load(tmp_path):
    accepted: list[int] = []
    errors: list[str] = []
    with serve(tmp_path) as url:
        sent = [0] * CLIENTS

        def run(client: int) -> None:
            # NOTE: a client that dies (a timeout, a refused connection) is an error the test sees,
            # not a thread that quietly stops sending.
            try:
                n = 0
                deadline = time.monotonic() + SECONDS
                with httpx.Client(base_url=url, timeout=30) as http:
                    while time.monotonic() < deadline:
                        r = http.post("/ingest/alertmanager", json=hook(client, n))
                        if r.status_code != 202:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                        else:
                            accepted.append(r.json()["accepted"])
                        n += 1
                        sent[client] = n
            except BaseException as err:
                errors.append(f"client {client} died: {type(err).__name__}: {err}")

        threads = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 60)
        elapsed = time.monotonic() - t0
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        with httpx.Client(base_url=url, timeout=30) as http:
            # NOTE: accepting outpaces correlating (one transaction per 5-alert delivery) many times
            # over; the backlog drains behind.
            wait_drained(http, timeout=300)
        drained = time.monotonic() - t0
        engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        with Session(engine) as s:
            stored = s.scalar(select(func.count()).select_from(EventRow))
        engine.dispose()
    assert errors == []
    assert all(n > 0 for n in sent), sent
    assert stored == sum(accepted) > 0
    (tmp_path / "figures.json").write_text(
        json.dumps(
            {
                "requests": len(accepted),
                "events": sum(accepted),
                "accepted_events_per_s": round(sum(accepted) / elapsed, 1),
                "drained_events_per_s": round(sum(accepted) / drained, 1),
            }
        )
    )

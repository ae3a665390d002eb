"""Acceptance is durable and fast, against a real `eventmgmt serve`:
- killed with SIGKILL right after its last 202, with accepted deliveries not yet correlated, and
  restarted on the same home: every accepted event id is stored exactly once;
- one Alertmanager webhook of 20,000 alerts is answered inside Alertmanager's shortest deadline
  (10 s), and once correlation behind it is done, the server's memory comes back near where it was."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.incidents import wait_drained
from tests.support.procmem import tree_kb
from tests.support.serve import serve, serve_process
from tests.support.storm import storm, storm_alert, webhook

CLIENTS = 4


def rss_mb(pid: int) -> float:
    """VmRSS of the server and of the correlating process it started."""
    kb = tree_kb(pid, "VmRSS")
    assert kb is not None, "no VmRSS"
    return kb / 1024


def test_kill_9_after_202_loses_nothing(tmp_path: Path) -> None:
    hooks = storm(6000, 100, datetime.now(UTC))
    accepted: list[str] = []
    lock = threading.Lock()
    with serve_process(tmp_path) as (url, proc):

        def send(mine: list[dict]) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                for h in mine:
                    r = http.post("/ingest/alertmanager", json=h)
                    assert r.status_code == 202, r.text
                    with lock:
                        accepted.extend(r.json()["ids"])

        threads = [threading.Thread(target=send, args=(hooks[c::CLIENTS],)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        proc.send_signal(signal.SIGKILL)  # right after the last 202
        proc.wait(10)
    assert len(accepted) == len(set(accepted)) == 6000
    with sqlite3.connect(tmp_path / "queue.db") as db:
        left = db.execute("SELECT COUNT(*), COALESCE(SUM(events), 0) FROM deliveries").fetchone()
    assert left[0] > 0, "everything was correlated before the kill: the test proved nothing"

    with serve(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as http:
        queue = wait_drained(http, timeout=120)
    with sqlite3.connect(tmp_path / "state.db") as db:
        ids = [r[0] for r in db.execute("SELECT id FROM events")]
    assert queue["backlog_events"] == 0 and queue["dead_letters"] == 0
    assert len(ids) == len(set(ids)) and set(ids) == set(accepted)
    figures = {"accepted": len(accepted), "queued_at_kill": {"deliveries": left[0], "events": left[1]}}
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print("kill -9 after 202:", json.dumps(figures))


# NOTE: what correlation keeps of 20,000 firing alerts (their fingerprints, the pods' topology, the
# archive's recent ids) is about 18 MB of objects; the bound leaves room for the heap they pin.
# Before the page caches were released after a burst, the process stayed about 98 MiB up.
KEPT_AFTER_BURST_MIB = 80


def test_a_20000_alert_webhook_is_answered_inside_10_s(tmp_path: Path) -> None:
    """Answered once queued; correlated behind the answer in parts of 1,000 events. Memory is read
    10 s after the answer, and again once everything is correlated and archived."""
    t0 = datetime.now(UTC)
    body = json.dumps(webhook([storm_alert(i, t0) for i in range(20000)]), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    with serve_process(tmp_path) as (url, proc), httpx.Client(base_url=url, timeout=60) as http:
        warm = webhook([storm_alert(i, t0) for i in range(100)])
        assert http.post("/ingest/alertmanager", json=warm).status_code == 202
        wait_drained(http)
        baseline = rss_mb(proc.pid)
        start = time.perf_counter()
        r = http.post("/ingest/alertmanager", content=body, headers=headers)
        answered = time.perf_counter() - start
        assert r.status_code == 202, r.text[:300]
        assert r.json()["accepted"] == 20000
        time.sleep(10)
        at_10s = rss_mb(proc.pid)
        drained = wait_drained(http, timeout=300)  # NOTE: everything accepted is correlated
        time.sleep(3)  # NOTE: the archive runs once correlation is idle, then memory is given back
        settled = rss_mb(proc.pid)
        queue = http.get("/api/queue").json()
        metrics = http.get("/metrics").text
    figures = {
        "body_mb": round(len(body) / 1e6, 2),
        "answered_s": round(answered, 2),
        "rss_mb": {"baseline": round(baseline), "answer_plus_10s": round(at_10s), "drained": round(settled)},
        "backlog_after_drain": queue["backlog_events"],
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print("20,000-alert webhook:", json.dumps(figures))
    assert answered < 10.0, figures
    assert drained["backlog_events"] == 0 and queue["dead_letters"] == 0
    # NOTE: the queue cuts the delivery into rows of at most 1,000 events, correlated one after the
    # other: about 400 MB stayed resident when the whole delivery was one row.
    assert at_10s < baseline + 150, f"memory far above its baseline 10 s after a 20,000-alert delivery: {figures}"
    assert settled < baseline + KEPT_AFTER_BURST_MIB, f"memory not back near its baseline once drained: {figures}"
    # NOTE: what an operator sees of it: the release counted, and the process's own RSS
    released = [line for line in metrics.splitlines() if line.startswith("eventmgmt_memory_releases_total ")]
    assert released and float(released[0].split()[1]) >= 1, released
    assert "process_resident_memory_bytes " in metrics

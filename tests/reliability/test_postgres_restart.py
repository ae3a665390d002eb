"""PostgreSQL stopped (immediate shutdown, as a crash or failover looks to clients) and restarted while
captures are being posted: ingest keeps answering 202 (accepted deliveries wait in the local durable
queue, whose drainer retries until the store is back; a sender would retry a 5xx as Alertmanager
does), and at the end every event is stored once, every incident paged once, and the incidents are
the ones replay finds. Runs on a private server, never the machine's shared one."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from eventmgmt.config import default_config
from eventmgmt.replay import run_replay
from eventmgmt.store.tables import EventRow
from tests.support.httpsink import http_sink
from tests.support.incidents import (
    SCENARIOS,
    fetch_incidents,
    load_captures,
    post_capture,
    replayed_partition,
    served_partition,
    wait_drained,
    wait_for_pages,
)
from tests.support.pg import private_server
from tests.support.serve import free_port, serve

OUTAGE_SECONDS = 4.0


def send_all(url: str, caps: list[dict], log: dict[str, list]) -> None:
    """Each capture until it is accepted: retry on 5xx and connection errors with a short backoff."""
    with httpx.Client(base_url=url, timeout=30) as http:
        for cap in caps:
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = post_capture(http, cap)
                except httpx.TransportError as err:
                    log["transport"].append(str(err))
                else:
                    if r.status_code == 202:
                        log["accepted"].append(cap["id"])
                        break
                    log["refused"].append((r.status_code, r.headers.get("content-type"), r.text))
                    if r.status_code < 500:
                        raise AssertionError(f"{cap['id']}: {r.status_code} {r.text}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cap['id']} not accepted within 60 s")
                time.sleep(0.2)


def test_postgres_restart_during_processing(tmp_path: Path) -> None:
    if not (SCENARIOS / "public-1" / "captures.jsonl").exists():
        pytest.skip("scenario captures not present")
    caps = load_captures("public-1")
    log: dict[str, list] = {"accepted": [], "refused": [], "transport": []}
    with private_server(free_port()) as pg, http_sink() as sink:
        env = {
            "EVENTMGMT_DATABASE_URL": pg.url,
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
        }
        with serve(tmp_path, env) as url:
            sender = threading.Thread(target=send_all, args=(url, caps, log))
            sender.start()
            while len(log["accepted"]) < len(caps) // 3 and sender.is_alive():
                time.sleep(0.05)
            pg.stop("immediate")
            time.sleep(OUTAGE_SECONDS)
            pg.start()
            sender.join(300)
            assert not sender.is_alive()
            with httpx.Client(base_url=url, timeout=30) as http:
                queue = wait_drained(http, timeout=120)
                _, details = fetch_incidents(http)
            pages = wait_for_pages(sink, {d["id"] for d in details if d["kind"] == "incident"}, timeout=60)
        engine = create_engine(pg.url)
        with Session(engine) as s:
            stored = s.scalar(select(func.count()).select_from(EventRow))
        engine.dispose()

    # the outage was met by the drainer, not by the senders: accepting does not need the state store
    served_log = (tmp_path / "serve.log").read_text()
    assert "correlation unavailable; the batch stays queued" in served_log, "the outage never reached the drainer"
    assert log["refused"] == [] and len(log["accepted"]) == len(caps)
    assert queue["dead_letters"] == 0

    result = run_replay(str(SCENARIOS / "public-1" / "captures.jsonl"), default_config(), None)
    assert served_partition(details) == replayed_partition(result.incidents)
    assert len(details) == result.incident_count
    classes = result.header()["events_by_class"]
    assert stored == classes["alert"] + classes["change"] + classes["info"]
    assert sorted(pages) == sorted({d["id"] for d in details if d["kind"] == "incident"})

    figures = {
        "captures": len(caps),
        "events_stored": stored,
        "refused_503": len(log["refused"]),
        "drain_retries": served_log.count("correlation unavailable"),
        "connection_errors": len(log["transport"]),
        "outage_seconds": OUTAGE_SECONDS,
        "incidents": len(details),
        "pages": len(pages),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print("postgres restart:", json.dumps(figures))

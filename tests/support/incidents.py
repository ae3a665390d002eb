"""Comparing the incidents a served runtime found with the ones replay finds for the same captures."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def partition(incidents: Iterable[dict], key: Callable[[dict], Iterable[str]]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for inc in incidents:
        for ref in key(inc):
            groups[inc["id"]].add(ref)
    return {frozenset(g) for g in groups.values()}


def served_partition(details: list[dict]) -> set[frozenset[str]]:
    return partition(details, lambda inc: [f"{e['origin']['capture']}#{e['origin']['index']}" for e in inc["events"]])


def replayed_partition(incidents: Iterable[dict]) -> set[frozenset[str]]:
    return partition(incidents, lambda inc: [f"{e['capture']}#{e['index']}" for e in inc["events"]])


def load_captures(name: str) -> list[dict[str, Any]]:
    path = SCENARIOS / name / "captures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# NOTE: dating a delivery (X-Received-At) is a backfill sender's privilege; test servers started by
# tests/support/serve.py and the dashboard fixtures hold this token.
BACKFILL_TOKEN = "test-backfill-token"


def capture_headers(cap: dict[str, Any]) -> dict[str, str]:
    """Headers that post a capture as the backfill sender: its own id and receipt time."""
    return {
        "X-Capture-Id": cap["id"],
        "X-Received-At": cap["received_at"],
        "Authorization": f"Bearer {BACKFILL_TOKEN}",
    }


def post_capture(http: httpx.Client, cap: dict[str, Any]) -> httpx.Response:
    return http.post(f"/ingest/{cap['source']}", json=cap["body"], headers=capture_headers(cap))


def wait(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Whether `cond()` came true within `timeout` seconds (polled every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def wait_drained(http: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until everything the server accepted so far is correlated (ingest answers 202 once a
    delivery is queued; correlation runs behind it). `http` is an httpx client or Flask's test
    client, both with the server as base. Returns the queue's state."""
    deadline = time.monotonic() + timeout
    while True:
        # NOTE: 10 s at a time, well inside any client timeout
        r = http.get(f"/api/queue?wait={min(10.0, max(0.1, deadline - time.monotonic())):.1f}")
        body = r.json() if callable(r.json) else r.json
        assert r.status_code == 200, body
        if body["last_drained_seq"] >= body["last_accepted_seq"]:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not drain within {timeout} s: {body}")


def fetch_incidents(http: httpx.Client, limit: int = 50) -> tuple[list[dict], list[dict]]:
    """Every incident through the paged list API (`limit` a page), and each one's detail, once
    everything accepted so far has been correlated."""
    wait_drained(http)
    listed = list_incidents(http, limit)
    return listed, [http.get(f"/api/incidents/{inc['id']}").json() for inc in listed]


def list_incidents(http: httpx.Client, limit: int = 50) -> list[dict]:
    """Every incident the list API shows (merged ones are left out), through its pages."""
    listed: list[dict] = []
    cursor = None
    while True:
        page = http.get("/api/incidents", params={"limit": limit, **({"cursor": cursor} if cursor else {})}).json()
        listed += page["incidents"]
        cursor = page["next"]
        if not cursor:
            return listed


def wait_for_pages(sink, want: set[str], timeout: float = 20.0, quiet: float = 3.0) -> list[str]:
    """The PagerDuty trigger dedup keys the sink received, once every wanted one has arrived and
    then no request came for `quiet` seconds: a late duplicate page is seen, not cut off."""
    deadline = time.monotonic() + timeout

    def triggers() -> list[str]:
        return [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]

    while time.monotonic() < deadline and not set(triggers()) >= want:
        time.sleep(0.2)
    seen, last_change = len(sink.bodies("/v2/enqueue")), time.monotonic()
    while time.monotonic() - last_change < quiet and time.monotonic() < deadline + quiet:
        time.sleep(0.2)
        now = len(sink.bodies("/v2/enqueue"))
        if now != seen:
            seen, last_change = now, time.monotonic()
    return triggers()

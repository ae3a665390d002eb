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


def fetch_incidents(http: httpx.Client, limit: int = 50) -> tuple[list[dict], list[dict]]:
    """Every incident through the paged list API (`limit` a page), and each one's detail."""
    listed: list[dict] = []
    cursor = None
    while True:
        page = http.get("/api/incidents", params={"limit": limit, **({"cursor": cursor} if cursor else {})}).json()
        listed += page["incidents"]
        cursor = page["next"]
        if not cursor:
            break
    return listed, [http.get(f"/api/incidents/{inc['id']}").json() for inc in listed]


def wait_for_pages(sink, want: set[str], timeout: float = 20.0) -> list[str]:
    """The PagerDuty trigger dedup keys the sink received, once every wanted one has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        triggers = [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]
        if set(triggers) >= want:
            time.sleep(0.5)
            break
        time.sleep(0.2)
    return [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]

"""`eventmgmt serve` (what `make run` starts) as a real process: captures posted over HTTP become the
same incidents replay finds, visible through the read API."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from eventmgmt.config import default_config
from eventmgmt.replay import run_replay
from tests.support.httpsink import http_sink
from tests.support.serve import serve

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def partition(incidents: list[dict], key) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for inc in incidents:
        for ref in key(inc):
            groups[inc["id"]].add(ref)
    return {frozenset(g) for g in groups.values()}


def test_posted_captures_become_the_incidents_replay_finds(tmp_path: Path) -> None:
    captures = SCENARIOS / "public-1" / "captures.jsonl"
    if not captures.exists():
        pytest.skip(f"scenario captures not present at {captures}")
    caps = [json.loads(line) for line in captures.read_text().splitlines()]
    with http_sink() as sink:
        pd_env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k", "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        details, listed, oom, pages = run_server(tmp_path, caps, pd_env, sink)
    live = partition(details, lambda inc: [f"{e['origin']['capture']}#{e['origin']['index']}" for e in inc["events"]])
    result = run_replay(str(captures), default_config(), None)
    replayed = partition(result.incidents, lambda inc: [f"{e['capture']}#{e['index']}" for e in inc["events"]])
    assert live == replayed
    assert len(listed) == len({i["id"] for i in listed}) == result.incident_count
    roots = {d["root_cause"]["origin"]["capture"] for d in details}
    assert roots == {i["root_cause"]["capture"] for i in result.incidents}
    assert oom and all(e["kind"] == "pod_oom" for e in oom)
    # every incident paged exactly once (the change records were not paged at all)
    assert sorted(pages) == sorted({d["id"] for d in details if d["kind"] == "incident"})


def wait_for_pages(sink, want: set[str], timeout: float = 20.0) -> list[str]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        triggers = [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]
        if set(triggers) >= want:
            time.sleep(0.5)
            break
        time.sleep(0.2)
    return [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]


def run_server(tmp_path: Path, caps: list[dict], env: dict[str, str], sink):
    with serve(tmp_path, env) as url, httpx.Client(base_url=url, timeout=30) as http:
        for cap in caps:
            r = http.post(
                f"/ingest/{cap['source']}",
                json=cap["body"],
                headers={"X-Capture-Id": cap["id"], "X-Received-At": cap["received_at"]},
            )
            assert r.status_code == 202, r.text
        # a retried webhook changes nothing
        again = http.post(
            f"/ingest/{caps[69]['source']}",
            json=caps[69]["body"],
            headers={"X-Capture-Id": caps[69]["id"], "X-Received-At": caps[69]["received_at"]},
        )
        assert again.status_code == 202
        listed, cursor = [], None
        while True:
            page = http.get("/api/incidents", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
            listed += page["incidents"]
            cursor = page["next"]
            if not cursor:
                break
        details = [http.get(f"/api/incidents/{inc['id']}").json() for inc in listed]
        assert http.get("/api/incidents/nope").status_code == 404
        oom = http.get("/api/events", params={"kind": "pod_oom", "limit": 500}).json()["events"]
        pages = wait_for_pages(sink, {d["id"] for d in details if d["kind"] == "incident"})
    return details, listed, oom, pages

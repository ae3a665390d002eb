"""`eventmgmt serve` (what `make run` starts) as a real process: captures posted over HTTP become the
same incidents replay finds, visible through the read API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from eventmgmt.config import default_config
from eventmgmt.replay import run_replay
from tests.support.httpsink import http_sink
from tests.support.incidents import (
    SCENARIOS,
    fetch_incidents,
    post_capture,
    replayed_partition,
    served_partition,
    wait_for_pages,
)
from tests.support.serve import serve


def test_posted_captures_become_the_incidents_replay_finds(tmp_path: Path) -> None:
    captures = SCENARIOS / "public-1" / "captures.jsonl"
    if not captures.exists():
        pytest.skip(f"scenario captures not present at {captures}")
    caps = [json.loads(line) for line in captures.read_text().splitlines()]
    with http_sink() as sink:
        pd_env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k", "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        details, listed, oom, pages = run_server(tmp_path, caps, pd_env, sink)
    result = run_replay(str(captures), default_config(), None)
    assert served_partition(details) == replayed_partition(result.incidents)
    assert len(listed) == len({i["id"] for i in listed}) == result.incident_count
    roots = {d["root_cause"]["origin"]["capture"] for d in details}
    assert roots == {i["root_cause"]["capture"] for i in result.incidents}
    assert oom and all(e["kind"] == "pod_oom" for e in oom)
    # every incident paged exactly once (the change records were not paged at all)
    assert sorted(pages) == sorted({d["id"] for d in details if d["kind"] == "incident"})


def run_server(tmp_path: Path, caps: list[dict], env: dict[str, str], sink):
    with serve(tmp_path, env) as url, httpx.Client(base_url=url, timeout=30) as http:
        for cap in caps:
            r = post_capture(http, cap)
            assert r.status_code == 202, r.text
        assert post_capture(http, caps[69]).status_code == 202  # a retried webhook changes nothing
        listed, details = fetch_incidents(http, limit=7)
        assert http.get("/api/incidents/nope").status_code == 404
        oom = http.get("/api/events", params={"kind": "pod_oom", "limit": 500}).json()["events"]
        pages = wait_for_pages(sink, {d["id"] for d in details if d["kind"] == "incident"})
    return details, listed, oom, pages

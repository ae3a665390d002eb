"""The served path yields exactly replay's incidents, member for member, whatever the wall clock:
captures days old posted as a live sender posts them (no dated headers, one request per capture,
as fast as the server takes them), and the fleet outages of public-3 among them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from eventmgmt.config import default_config
from eventmgmt.replay import run_replay
from tests.support.incidents import SCENARIOS, fetch_incidents, replayed_partition, served_partition
from tests.support.serve import serve


@pytest.mark.parametrize("name", ["public-1", "public-3"])
def test_live_posting_of_old_captures_gives_replays_incidents(tmp_path: Path, name: str) -> None:
    captures = SCENARIOS / name / "captures.jsonl"
    if not captures.exists():
        pytest.skip(f"scenario captures not present at {captures}")
    caps = [json.loads(line) for line in captures.read_text().splitlines()]
    with serve(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        for cap in caps:
            # NOTE: only the capture id (so members can be compared); receipt is the server's now.
            r = http.post(f"/ingest/{cap['source']}", json=cap["body"], headers={"X-Capture-Id": cap["id"]})
            assert r.status_code == 202, r.text
        _, details = fetch_incidents(http)
    replayed = run_replay(str(captures), default_config(), None).incidents
    assert served_partition(details) == replayed_partition(replayed)
    assert {d["root_cause"]["origin"]["capture"] for d in details} == {i["root_cause"]["capture"] for i in replayed}

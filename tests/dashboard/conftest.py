from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.incidents import BACKFILL_TOKEN, capture_headers, wait_drained

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def post_captures(client, name: str = "public-1", headers: dict | None = None) -> list[dict]:
    path = SCENARIOS / name / "captures.jsonl"
    if not path.exists():
        pytest.skip(f"scenario captures not present at {path}")
    caps = [json.loads(line) for line in path.read_text().splitlines()]
    for cap in caps:
        r = client.post(
            f"/ingest/{cap['source']}",
            json=cap["body"],
            headers={**capture_headers(cap), **(headers or {})},
        )
        assert r.status_code == 202, r.json
    wait_drained(client)
    return caps


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.delenv("EVENTMGMT_INGEST_TOKEN", raising=False)
    rt = build_runtime(Settings(home=tmp_path, backfill_token=BACKFILL_TOKEN))
    yield rt
    rt.stop()


@pytest.fixture
def loaded(runtime):
    """The public-1 scenario replayed into the embedded runtime through its HTTP API."""
    app = create_app(runtime)
    client = app.test_client()
    post_captures(client)
    return runtime, client

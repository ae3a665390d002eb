"""Issue 13, finding 5: what one delivery may make us store is bounded. More records than the bound
is a 413 naming the bound, and nothing of it is queued; a record with too many labels, a label of
megabytes or a pod name of a megabyte is kept, cut down with a marker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from eventmgmt.sources.limits import DROPPED, RESOURCE_CHARS, TRUNCATED
from eventmgmt.store.tables import EventRow
from tests.support.incidents import wait_drained

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
HOST = {"Host": "127.0.0.1"}


def alert(i: int, **labels: str) -> dict:
    return {
        "status": "firing",
        "startsAt": NOW,
        "fingerprint": f"fp{i}",
        "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "pod": f"p{i}", **labels},
    }


@pytest.fixture
def client(tmp_path: Path):
    rt = build_runtime(Settings(home=tmp_path, max_records=10, max_labels=20, max_label_chars=100))
    yield create_app(rt).test_client(), rt
    rt.stop()


def stored(rt) -> list[dict]:
    with Session(rt.engine) as s:
        return [r.data for r in s.scalars(select(EventRow))]


def test_more_records_than_the_bound_is_a_413_and_nothing_is_queued(client) -> None:
    http, rt = client
    r = http.post("/ingest/alertmanager", json={"alerts": [alert(i) for i in range(11)]}, headers=HOST)
    assert r.status_code == 413 and r.json["field"] == "body"
    assert "11 records" in r.json["error"] and "EVENTMGMT_MAX_RECORDS" in r.json["error"]
    assert rt.queue.stats()["last_accepted_seq"] == 0
    ok = http.post("/ingest/alertmanager", json={"alerts": [alert(i) for i in range(10)]}, headers=HOST)
    assert ok.status_code == 202 and ok.json["accepted"] == 10


def test_labels_and_names_over_their_bounds_are_cut_with_a_marker(client) -> None:
    http, rt = client
    many = {f"extra_{i:03d}": "x" for i in range(200)}
    huge = alert(1, model="bert", trace="t" * 50_000, **many)
    huge["labels"]["pod"] = "p" * 1_000_000
    r = http.post("/ingest/alertmanager", json={"alerts": [huge, alert(2)]}, headers=HOST)
    assert r.status_code == 202 and r.json["accepted"] == 2, r.json
    wait_drained(http)
    (ev,) = (e for e in stored(rt) if e["fingerprint"] == "am:fp1")
    labels = ev["labels"]
    # NOTE: the labels correlation reads stay, whatever else was dropped
    assert labels["alertname"] == "TritonHighErrorRate" and labels["model"] == "bert"
    assert int(labels[DROPPED]) == len(huge["labels"]) - 20
    assert len(labels) <= 20 + 2
    assert all(len(v) <= 100 + 40 for v in labels.values()), {k: len(v) for k, v in labels.items()}
    assert labels["pod"].startswith("p" * 100) and "characters)" in labels["pod"]
    assert "pod" in labels[TRUNCATED]
    assert len(ev["resources"]["pod"]) <= RESOURCE_CHARS and ev["resources"]["pod"].endswith("characters)")
    incidents = http.get("/api/incidents", headers=HOST).json["incidents"]
    assert incidents and all(len(i["title"]) < 2000 for i in incidents)

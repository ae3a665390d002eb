"""A delivery's events correlated together, in one transaction, and store cost that does not grow with
the size of the incident an event joins."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from eventmgmt import stages
from eventmgmt.config import default_config
from eventmgmt.correlate.sqlrepo import SqlRepo
from eventmgmt.stages import CorrelateStage
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.tables import EventRow, IncidentFingerprintRow, IncidentRow
from eventmgmt.transport import RecordingPublisher

from .helpers import at, ev

POD = "triton-bert-large-r9w2fh26mf-6n65v"
NODE = "gpu-node-7"


def storm():
    """One problem seen as five events, and one unrelated alert."""
    return [
        ev("pod_oom", 0, pod=POD, node=NODE, model="bert-large", source="k8s-event"),
        ev("triton_crash", 0.2, pod=POD, node=NODE, model="bert-large", source="log"),
        ev("model_unavailable", 0.5, pod=POD, model="bert-large"),
        ev("high_error_rate", 1, model="bert-large"),
        ev("high_error_rate", 1.5, pod=POD, model="bert-large", name="again"),
        ev("gpu_xid_error", 2, node="gpu-node-2"),
    ]


def engine_at(path):
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    return engine


def stored(engine) -> tuple[dict[str, str | None], dict[str, tuple[str, int]]]:
    with Session(engine) as s:
        events = {r.id: r.incident_id for r in s.scalars(select(EventRow))}
        incidents = {r.id: (r.root_kind, r.member_count) for r in s.scalars(select(IncidentRow))}
    return events, incidents


def test_batch_is_all_or_nothing_and_its_retry_matches_one_by_one(tmp_path, monkeypatch):
    events = storm()
    batch_engine = engine_at(tmp_path / "batch.db")
    pub = RecordingPublisher()
    stage = CorrelateStage(default_config(), pub, lambda: at(3), engine=batch_engine)

    calls = {"n": 0}
    real = SqlRepo.record_event

    def flaky(self, e, incident_id):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk went away")
        real(self, e, incident_id)

    monkeypatch.setattr(SqlRepo, "record_event", flaky)
    with pytest.raises(OSError):
        stage.process_many(events)
    assert stored(batch_engine) == ({}, {})  # the three events before the failure were rolled back too
    assert pub.messages == {}  # nothing published for a batch that was not stored

    monkeypatch.setattr(SqlRepo, "record_event", real)
    stage.process_many(events)  # the redelivered batch
    stage.process_many(events)  # and once more: all duplicates now
    batch = stored(batch_engine)

    single_engine = engine_at(tmp_path / "single.db")
    single = CorrelateStage(default_config(), RecordingPublisher(), lambda: at(3), engine=single_engine)
    for e in events:
        single.process(e)
    assert batch == stored(single_engine)
    ids, incidents = batch
    assert len(ids) == len(events)
    assert sorted(incidents.values()) == [("gpu_xid_error", 1), ("pod_oom", 5)]


def test_a_webhook_is_correlated_in_one_transaction(tmp_path, monkeypatch):
    from eventmgmt.runtime.app import build_runtime, create_app
    from eventmgmt.settings import Settings

    opened = []
    real = stages.locked_session

    def counting(engine):
        opened.append(engine)
        return real(engine)

    monkeypatch.setattr(stages, "locked_session", counting)
    rt = build_runtime(Settings(home=tmp_path))
    client = create_app(rt).test_client()
    alerts = [
        {
            "status": "firing",
            "startsAt": "2026-11-07T08:00:00Z",
            "fingerprint": f"f{i}",
            "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "model": "bert", "pod": f"p{i}"},
        }
        for i in range(20)
    ]
    r = client.post("/ingest/alertmanager", json={"version": "4", "status": "firing", "alerts": alerts})
    rt.stop()
    assert r.status_code == 202 and r.json["accepted"] == 20
    assert len(opened) == 1
    assert len(stored(rt.engine)[0]) == 20


def test_store_work_per_event_does_not_grow_with_the_incident(tmp_path):
    """A storm of distinct alerts all joining one incident: the statements each event costs stay the
    same from the 10th alert to the 300th (it used to read every fingerprint back on each save)."""
    engine = engine_at(tmp_path / "s.db")
    stage = CorrelateStage(default_config(), RecordingPublisher(), lambda: at(0), engine=engine)
    statements = {"n": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def count(*_args):  # type: ignore[no-untyped-def]
        statements["n"] += 1

    cost = {}
    for i in range(300):
        before = statements["n"]
        stage.process(ev("high_error_rate", i / 100, model="bert-large", fp=f"fp-{i}", name=f"a{i}"))
        cost[i] = statements["n"] - before
    assert cost[299] <= cost[10]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == 1
        owners = set(s.scalars(select(IncidentFingerprintRow.incident_id)))
        assert s.scalar(select(func.count()).select_from(IncidentFingerprintRow)) == 300
    assert len(owners) == 1

"""The embedded runtime's durable queue, in process: 202 means queued, correlation runs behind it and
can be waited for; past the backlog bound ingest answers 503; a poison delivery is set aside, a
transient fault is waited out; handing a batch on twice (a crash before its removal) stores nothing
twice."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from eventmgmt.enrich import stage as enrich_stage
from eventmgmt.runtime.app import Runtime, build_runtime, create_app
from eventmgmt.runtime.durable_queue import DurableQueue
from eventmgmt.settings import Settings
from eventmgmt.store.tables import EventRow, IncidentRow
from eventmgmt.transport import Outgoing
from tests.support.incidents import wait_drained

NOW = datetime.now(UTC).replace(microsecond=0)


def hook(*pods: str, model: str = "bert") -> dict:
    alerts = [
        {
            "status": "firing",
            "startsAt": NOW.isoformat().replace("+00:00", "Z"),
            "fingerprint": f"fp-{model}-{pod}",
            "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "model": model, "pod": pod},
        }
        for pod in pods
    ]
    return {"version": "4", "status": "firing", "alerts": alerts}


def stored(rt: Runtime) -> list[str]:
    with Session(rt.engine) as s:
        return list(s.scalars(select(EventRow.id)))


def restart_drainer(rt: Runtime, **kw: float) -> None:
    from eventmgmt.runtime.drain import Drainer

    rt.drainer.close()
    rt.drainer = Drainer(rt.queue, rt.publisher.publish_many, **kw).start()  # type: ignore[arg-type]


@pytest.fixture
def rt(tmp_path: Path):
    runtime = build_runtime(Settings(home=tmp_path, max_backlog=5))
    yield runtime
    runtime.stop()


def test_202_means_queued_and_the_api_waits_for_correlation(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()  # correlation stopped: what is accepted waits in the queue
    r = client.post("/ingest/alertmanager", json=hook("p1", "p2"))
    assert r.status_code == 202 and r.json["accepted"] == 2
    assert stored(rt) == []
    q = client.get("/api/queue").json
    assert q["backlog_events"] == 2 and q["backlog_deliveries"] == 1
    assert q["last_accepted_seq"] == q["last_drained_seq"] + 1
    assert client.get("/healthz").json["backlog"] == 2
    restart_drainer(rt)
    q = wait_drained(client, timeout=30)
    assert q["backlog_events"] == 0 and q["last_drained_seq"] == q["last_accepted_seq"]
    assert sorted(stored(rt)) == sorted(r.json["ids"])
    assert client.get("/healthz").json["backlog"] == 0


def test_past_the_backlog_bound_ingest_answers_503_with_retry_after(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()
    assert client.post("/ingest/alertmanager", json=hook(*[f"p{i}" for i in range(6)])).status_code == 202
    refused = client.post("/ingest/alertmanager", json=hook("p9"))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.json["retryable"] is True and refused.json["backlog"] == 6 and refused.json["max_backlog"] == 5
    assert "waiting for correlation" in refused.json["error"]
    assert client.get("/api/queue").json["refused"] == 1
    restart_drainer(rt)
    wait_drained(client, timeout=30)
    assert client.post("/ingest/alertmanager", json=hook("p9")).status_code == 202


def test_deliveries_arriving_together_cannot_take_the_backlog_past_its_bound(rt: Runtime) -> None:
    """The bound is checked as each delivery is appended, not only before its body is read: of
    deliveries read at the same time, those that would pass the bound are refused (503)."""
    import threading

    client = create_app(rt).test_client()
    rt.drainer.close()
    assert client.post("/ingest/alertmanager", json=hook("a1", "a2", "a3")).status_code == 202
    partial = client.post("/ingest/alertmanager", json=hook("b1", "b2", "b3"))  # 3 + 3 > 5
    assert partial.status_code == 503 and partial.headers["Retry-After"] == "5"
    assert partial.json["backlog"] == 3 and partial.json["max_backlog"] == 5
    assert client.post("/ingest/alertmanager", json=hook("c1", "c2")).status_code == 202  # exactly 5

    restart_drainer(rt)
    wait_drained(client, timeout=30)
    rt.drainer.close()
    statuses: list[int] = []
    start = threading.Barrier(4)

    def post(n: int) -> None:
        start.wait()
        statuses.append(
            create_app(rt)
            .test_client()
            .post("/ingest/alertmanager", json=hook(f"d{n}-1", f"d{n}-2", f"d{n}-3"))
            .status_code
        )

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [202, 503, 503, 503]
    assert rt.queue.backlog == 3


def test_a_delivery_larger_than_the_bound_is_taken_when_nothing_waits(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()
    assert client.post("/ingest/alertmanager", json=hook(*[f"p{i}" for i in range(8)])).status_code == 202
    assert rt.queue.backlog == 8


def test_a_poison_delivery_is_set_aside_and_the_queue_goes_on(rt: Runtime, monkeypatch) -> None:
    real = enrich_stage.enrich

    def buggy(ev, *args, **kwargs):  # type: ignore[no-untyped-def]
        if ev.resources.pod == "poison":
            raise ValueError("a bug this event meets")
        return real(ev, *args, **kwargs)

    monkeypatch.setattr(enrich_stage, "enrich", buggy)
    client = create_app(rt).test_client()
    rt.drainer.close()
    good1 = client.post("/ingest/alertmanager", json=hook("p1"))
    bad = client.post("/ingest/alertmanager", json=hook("poison", "p2"))
    good2 = client.post("/ingest/alertmanager", json=hook("p3", model="llama"))
    assert {good1.status_code, bad.status_code, good2.status_code} == {202}
    restart_drainer(rt, backoff=0.01)  # the three deliveries are one batch for the drainer
    q = wait_drained(client, timeout=30)
    assert q["dead_letters"] == 1 and q["backlog_events"] == 0
    assert sorted(stored(rt)) == sorted(good1.json["ids"] + good2.json["ids"])
    (dead,) = client.get("/api/queue/dead-letters").json["dead_letters"]
    assert dead["events"] == 2 and dead["attempts"] == 5 and "a bug this event meets" in dead["error"]
    # the delivery is kept, whole, for review
    with sqlite3.connect(rt.settings.queue_path) as db:
        assert db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] == 1


def test_a_transient_store_fault_is_waited_out_not_dead_lettered(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()
    failures = {"left": 3}
    handler = rt.publisher.publish_many

    def flaky(topic, messages):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return handler(topic, messages)

    r = client.post("/ingest/alertmanager", json=hook("p1", "p2"))
    from eventmgmt.runtime.drain import Drainer

    rt.drainer = Drainer(rt.queue, flaky, backoff=0.01).start()
    q = wait_drained(client, timeout=30)
    assert failures["left"] == 0 and q["dead_letters"] == 0
    assert sorted(stored(rt)) == sorted(r.json["ids"])


def test_a_batch_handed_on_twice_stores_nothing_twice(tmp_path: Path) -> None:
    """A crash after correlation committed and before the queue removed the batch: the restarted
    runtime hands the same deliveries on again, and correlation recognises every event id."""
    rt = build_runtime(Settings(home=tmp_path))
    client = create_app(rt).test_client()
    rt.drainer.close()
    ids = []
    for i in range(4):
        r = client.post("/ingest/alertmanager", json=hook(f"p{i}a", f"p{i}b", model=f"m{i % 2}"))
        ids += r.json["ids"]
    again = client.post("/ingest/alertmanager", json=hook("p0a", "p0b", model="m0"))  # a retried webhook
    assert again.status_code == 202
    batch = rt.queue.take(1000)
    assert len(batch) == 5
    for d in batch:  # handed on as the drainer does: correlated and committed, and then the
        rt.publisher.publish_many(d.topic, d.messages)  # process dies before removing them
    first = incidents(rt)
    rt.stop()
    rt = build_runtime(Settings(home=tmp_path))
    try:
        client = create_app(rt).test_client()
        assert wait_drained(client, timeout=30)["dead_letters"] == 0
        assert sorted(stored(rt)) == sorted(ids)
        assert incidents(rt) == first
    finally:
        rt.stop()


def incidents(rt: Runtime) -> dict[str, int]:
    with Session(rt.engine) as s:
        rows = s.execute(
            select(EventRow.incident_id, func.count())
            .where(EventRow.incident_id.is_not(None))
            .group_by(EventRow.incident_id)
        ).all()
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == len(rows)
    return {str(k): int(v) for k, v in rows}


def test_a_large_delivery_is_one_transaction_of_bounded_parts(tmp_path: Path) -> None:
    from eventmgmt.runtime.durable_queue import DurableQueue
    from eventmgmt.transport import Outgoing

    q = DurableQueue(tmp_path / "queue.db", part_events=1000)
    last = q.append("events-raw", [Outgoing({"n": i}, {"event_id": str(i)}) for i in range(2500)])
    assert q.stats()["backlog_deliveries"] == 1 and q.backlog == 2500 and last == 3
    parts = q.take(1000)
    assert [(p.seq, p.delivery, p.events) for p in parts] == [(1, 1, 1000)]
    q.remove(parts[0].seq)
    q.close()
    q = DurableQueue(tmp_path / "queue.db", part_events=1000)  # reopened: the counters come back
    assert q.backlog == 1500 and q.stats()["last_drained_seq"] == 1 and q.stats()["last_accepted_seq"] == 3
    assert [m.payload["n"] for p in q.take(5000) for m in p.messages] == list(range(1000, 2500))
    q.close()


def test_an_incident_opened_and_resolved_within_the_backlog_is_still_paged(tmp_path: Path, monkeypatch) -> None:
    """A backlog's deliveries are correlated together, but a transaction ends before an event late
    enough to resolve an incident it opened: otherwise the incident would be announced once, already
    resolved, and never paged."""
    from tests.support.httpsink import http_sink

    def alert(model: str, minutes: int, status: str = "firing") -> dict:
        at = (NOW - timedelta(hours=1) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        labels = {"alertname": "TritonModelUnavailable", "severity": "critical", "model": model}
        a = {"status": status, "startsAt": at, "fingerprint": f"fp-{model}", "labels": labels}
        if status == "resolved":
            a.update(startsAt=(NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"), endsAt=at)
        return {"version": "4", "status": status, "alerts": [a]}

    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path))
        try:
            client = create_app(rt).test_client()
            rt.drainer.close()  # correlation is behind: the three deliveries wait in the queue
            for h in (alert("bert", 0), alert("bert", 1, "resolved"), alert("llama", 20)):
                assert client.post("/ingest/alertmanager", json=h).status_code == 202
            restart_drainer(rt)
            wait_drained(client, timeout=30)
            rt.route_worker.drain(30)
        finally:
            rt.stop()
        sent = [(b["dedup_key"], b["event_action"]) for b in sink.bodies("/v2/enqueue")]
    by_incident: dict[str, list[str]] = {}
    for key, action in sent:
        by_incident.setdefault(key, []).append(action)
    assert list(by_incident.values()) == [["trigger", "resolve"], ["trigger"]], sent


def test_an_empty_delivery_writes_nothing_and_keeps_the_sequence(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.db")
    seq = q.append("events-raw", [Outgoing({"events": [{"id": "x"}]}, {}, None)])
    assert q.append_encoded("events-raw", []) == seq and q.append("events-raw", []) == seq
    assert q.stats()["last_accepted_seq"] == seq and not q.wait_drained(0.05)


def test_an_append_never_waits_for_the_drain_side(tmp_path: Path) -> None:
    """Ingest's appends have their own connection: a request does not wait behind the drain's
    reading, its removals' commits or its checkpoints (the drain side is held busy here)."""
    import threading

    q = DurableQueue(tmp_path / "q.db")
    done = threading.Event()
    with q._read:  # the drain, in the middle of a take or a checkpoint
        t = threading.Thread(target=lambda: (q.append("events-raw", [Outgoing({"id": "a"}, {}, None)]), done.set()))
        t.start()
        assert done.wait(5), "an append waited for the drain's connection"
    t.join(5)
    assert [d.events for d in q.take(10)] == [1]


def test_the_wal_is_checkpointed_by_the_drain_and_stays_small(tmp_path: Path) -> None:
    """Twice the WAL's size in 25 KB deliveries, taken and removed as they come: the drain
    checkpoints, so the WAL is written again from its start instead of growing (appends never
    checkpoint below about 40 MB)."""
    from eventmgmt.runtime.durable_queue import WAL_RESERVE_BYTES

    q = DurableQueue(tmp_path / "q.db")
    wal = tmp_path / "q.db-wal"
    reserved = wal.stat().st_size
    assert reserved >= WAL_RESERVE_BYTES  # grown once, at open
    body = {"alerts": [{"labels": {"pod": f"triton-{i}", "text": "x" * 200}} for i in range(100)]}
    n = 2 * reserved // 25_000
    for _ in range(n):
        q.append("events-raw", [Outgoing(body, {}, None)])
        q.remove(q.take(1000)[-1].seq)
    assert wal.stat().st_size <= reserved * 1.1
    assert q.backlog == 0 and q.stats()["last_drained_seq"] == n


def test_the_archive_follows_once_correlation_is_idle(rt: Runtime) -> None:
    """Correlated messages are archived behind the drain, without anyone flushing: once the queue is
    empty, each accepted alert is in the archive within a few seconds."""
    import time

    from eventmgmt.archive.writer import read_partition

    client = create_app(rt).test_client()
    r = client.post("/ingest/alertmanager", json=hook("p1", "p2", "p3"))
    assert r.status_code == 202
    wait_drained(client, timeout=30)
    deadline = time.monotonic() + 10
    found: set[str] = set()
    while time.monotonic() < deadline and found != set(r.json["ids"]):
        time.sleep(0.1)
        alerts = rt.settings.archive + "/hot/alert"
        found = {rec["id"] for rec in read_partition(alerts)} if Path(alerts).exists() else set()
    assert found == set(r.json["ids"])


def test_queue_sync_is_full_unless_told_and_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    def synchronous(q: DurableQueue) -> int:
        return int(q._db.execute("PRAGMA synchronous").fetchone()[0])

    assert synchronous(DurableQueue(tmp_path / "a.db")) == 2  # FULL
    assert synchronous(DurableQueue(tmp_path / "b.db", sync="normal")) == 1
    assert Settings(home=tmp_path).queue_sync == "full"
    with pytest.raises(ValueError, match="queue sync 'off'"):
        DurableQueue(tmp_path / "c.db", sync="off")

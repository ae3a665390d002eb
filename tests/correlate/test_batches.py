"""A delivery's events correlated together, in one transaction, and store cost that does not grow with
the size of the incident an event joins."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from eventmgmt.classify import classify, filter_reason
from eventmgmt.clock import EventClock
from eventmgmt.config import default_config
from eventmgmt.correlate import sqlrepo as stages
from eventmgmt.correlate.sqlrepo import SqlRepo
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.correlate.state import Incident
from eventmgmt.enrich.stage import EnrichStage
from eventmgmt.model import Event
from eventmgmt.replay import read_captures, run_replay
from eventmgmt.sources import ParseContext, parse
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.tables import EventRow, IncidentFingerprintRow, IncidentKeyRow, IncidentRow
from eventmgmt.timeutil import parse_ts
from eventmgmt.transport import InProcessPublisher, RecordingPublisher
from eventmgmt.transport.messages import decode_batch
from tests.support.incidents import replayed_partition

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


def incident_of(iid: str, e: Event, t: float) -> Incident:
    """An incident of one event, holding its resource keys, opened at `t`."""
    inc = Incident(id=iid, opened_at=at(t), last_seen=at(t))
    inc.add(e)
    inc.note_keys(e.resources.keys())
    return inc


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

    def counting(engine, *scope):
        opened.append(engine)
        return real(engine, *scope)

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
    assert rt.queue.wait_drained(30)
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


SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def enriched_stream(captures: Path) -> list[Event]:
    """The events correlate receives for a capture file, in order (what ingest and enrich hand on)."""
    config = default_config()
    publisher = InProcessPublisher()
    out: list[Event] = []
    publisher.subscribe("events-raw", "enrich", EnrichStage(config, publisher).handle)
    publisher.subscribe("events-enriched", "collect", lambda ce: out.extend(decode_batch(ce)))
    for _, cap in read_captures(captures.read_text().splitlines()):
        received = parse_ts(cap["received_at"])
        assert received is not None
        for e in parse(cap["source"], cap["body"], ParseContext(cap["id"], received)):
            e = classify(e, config)
            if filter_reason(e, config) is None:
                publisher.publish("events-raw", e.to_json(), {"event_id": e.id})
    return out


def sql_partition(engine) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    with Session(engine) as s:
        for r in s.scalars(select(EventRow).where(EventRow.incident_id.is_not(None))):
            groups[r.incident_id].add(f"{r.capture}#{r.idx}")
        live = set(s.scalars(select(IncidentRow.id).where(IncidentRow.status != "merged")))
    assert live == groups.keys()  # no incident without events, no events in a merged-away incident
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("name", ["public-1", "public-2"])
def test_scenarios_correlated_in_batches_on_sql_match_replay(name, tmp_path):
    """Whole scenarios through the SQL store in deliveries of 1, 7 and 64 events (merges, reopenings,
    retirements and fingerprints changing hands inside one transaction): the same incidents as replay."""
    captures = SCENARIOS / name / "captures.jsonl"
    if not captures.exists():
        pytest.skip(f"scenario captures not present at {captures}")
    expected = replayed_partition(run_replay(str(captures), default_config(), None).incidents)
    stream = enriched_stream(captures)
    for size in (1, 7, 64):
        engine = engine_at(tmp_path / f"b{size}.db")
        clock = EventClock()
        stage = CorrelateStage(default_config(), RecordingPublisher(), clock, engine=engine)
        for i in range(0, len(stream), size):
            stage.process_many(stream[i : i + size])
            if size == 7:
                # NOTE: as another instance or a restart would: every incident read back from the
                # store (flat state rebuilt from its member events), none from this process's cache.
                stage.cache.clear()
        stage.tick(clock.watermark)
        assert sql_partition(engine) == expected, f"deliveries of {size}"
        engine.dispose()


def test_what_a_transaction_retires_or_takes_over_is_gone_from_its_lookups(tmp_path):
    """The repository answers lookups from what the transaction read and wrote: an incident retired
    (or merged away) earlier in the same delivery must no longer be found by its keys or fingerprints,
    and a fingerprint that changed hands points at its new incident."""

    engine = engine_at(tmp_path / "r.db")
    cfg = default_config()
    first = ev("high_error_rate", 0, model="bert-large", pod=POD, fp="fp-a")
    second = ev("high_error_rate", 1, model="bert-large", pod=POD, fp="fp-a", name="later")
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([first, second])
        old = incident_of("inc-old", first, 0)
        repo.save(old, at(5))
        assert [i.id for i in repo.by_keys(first.resources.keys())] == ["inc-old"]
        assert repo.by_fingerprint("fp-a") is old
        repo.retire(old)
        assert repo.by_keys(first.resources.keys()) == []
        assert repo.by_fingerprint("fp-a") is None
        new = incident_of("inc-new", second, 1)
        repo.save(new, at(6))
        assert repo.by_fingerprint("fp-a") is new
        repo.finish()
    with Session(engine) as s:
        assert {r.fingerprint: r.incident_id for r in s.scalars(select(IncidentFingerprintRow))} == {"fp-a": "inc-new"}
        rows = {r.id: (r.live, r.member_count, r.version) for r in s.scalars(select(IncidentRow))}
    assert rows == {"inc-old": (False, 1, 0), "inc-new": (True, 1, 0)}


def test_a_stored_fingerprint_row_follows_its_new_incident_or_goes_with_the_last(tmp_path):
    """A fingerprint row stored by one transaction and taken over in the next points at its new
    incident once written; taken over by an incident that is itself retired, it is gone (rows are
    read as plain values and only their changes written: this is what `finish` must not lose)."""

    engine = engine_at(tmp_path / "r.db")
    cfg = default_config()
    first = ev("high_error_rate", 0, model="bert-large", pod=POD, fp="fp-a")
    second = ev("high_error_rate", 1, model="bert-large", pod=POD, fp="fp-a", name="later")
    third = ev("high_error_rate", 2, model="bert-large", pod=POD, fp="fp-a", name="last")

    def owners() -> dict[str, str]:
        with Session(engine) as s:
            return {r.fingerprint: r.incident_id for r in s.scalars(select(IncidentFingerprintRow))}

    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([first])
        repo.save(incident_of("inc-old", first, 0), at(5))
        repo.finish()
    assert owners() == {"fp-a": "inc-old"}
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([second])
        old = repo.by_fingerprint("fp-a")
        assert old is not None and old.id == "inc-old"
        repo.retire(old)
        repo.save(incident_of("inc-new", second, 1), at(6))
        repo.finish()
    assert owners() == {"fp-a": "inc-new"}
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([third])
        new = repo.by_fingerprint("fp-a")
        assert new is not None and new.id == "inc-new"
        repo.retire(new)
        last = incident_of("inc-last", third, 2)
        repo.save(last, at(7))
        assert repo.by_fingerprint("fp-a") is last
        repo.retire(last)
        assert repo.by_fingerprint("fp-a") is None
        repo.finish()
    assert owners() == {}


def test_an_incident_found_by_a_key_the_batch_did_not_name_is_loaded(tmp_path):
    """`by_keys` for a key no event of the batch named (an incident's new key, asked later in the
    transaction) reads the incidents holding it then, stored in an earlier transaction."""

    engine = engine_at(tmp_path / "r.db")
    cfg = default_config()
    first = ev("high_error_rate", 0, model="bert-large", pod=POD, fp="fp-a")
    other = ev("high_error_rate", 1, model="resnet", pod="triton-resnet-0", fp="fp-b")
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([first])
        repo.save(incident_of("inc-a", first, 0), at(5))
        repo.finish()
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([other])
        found = repo.by_keys(first.resources.keys())
        assert [i.id for i in found] == ["inc-a"]
        assert found[0].opened_at == at(0)
        assert repo.get("inc-a") is found[0]


def test_a_fragment_written_by_a_lifecycle_query_then_folded_away_leaves_no_row(tmp_path):
    """A lifecycle query flushes what the transaction wrote so far: a fragment opened in it, stored
    so, then folded away before commit must still leave no incident row (nobody was told of it)."""

    engine = engine_at(tmp_path / "r.db")
    cfg = default_config()
    crash = ev("triton_crash", 0, pod=POD, fp="fp-a")
    error = ev("high_error_rate", 1, model="bert-large", pod=POD, fp="fp-b")
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, cfg.chains, cfg.response)
        repo.prefetch([crash, error])
        frag = incident_of("inc-frag", crash, 0)
        repo.save(frag, at(1))
        assert [i.id for i in repo.due(at(2))] == ["inc-frag"]  # NOTE: flushes the fragment's row
        keep = incident_of("inc-keep", error, 1)
        repo.save(keep, at(9))
        keep.absorb(frag)
        frag.merged_into = keep.id
        repo.merge_away(frag)
        repo.finish()
    with Session(engine) as s:
        rows = {r.id: (r.live, r.status) for r in s.scalars(select(IncidentRow))}
    assert rows == {"inc-keep": (True, "open")}


def test_fragments_folded_away_in_their_own_delivery_leave_no_index_rows(tmp_path):
    """Each pod's crash loop opens a fragment that its model's error rate folds away within the same
    delivery: the incident left holds every fingerprint and key row, and no statement is spent
    deleting index rows the fragments never had."""
    engine = engine_at(tmp_path / "f.db")
    stage = CorrelateStage(default_config(), RecordingPublisher(), lambda: at(0), engine=engine)
    batch = []
    for p in range(10):
        pod = f"triton-bert-large-r9w2fh26mf-{p:05d}"
        batch.append(ev("triton_crash", p / 10, pod=pod, node=f"gpu-node-{p}", fp=f"crash-{p}", name=f"c{p}"))
        batch.append(ev("high_error_rate", p / 10 + 0.05, pod=pod, model="bert-large", fp=f"err-{p}", name=f"e{p}"))
    deletes = {"n": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        deletes["n"] += statement.lstrip().upper().startswith("DELETE")

    stage.correlate(batch)
    with Session(engine) as s:
        incidents = {r.id: r.status for r in s.scalars(select(IncidentRow))}
        fps = {r.fingerprint: r.incident_id for r in s.scalars(select(IncidentFingerprintRow))}
        key_owners = set(s.scalars(select(IncidentKeyRow.incident_id)))
    assert list(incidents.values()) == ["open"]
    (survivor,) = incidents
    assert fps == {f"{k}-{p}": survivor for p in range(10) for k in ("crash", "err")}
    assert key_owners == {survivor}
    assert deletes["n"] == 0

"""A live incident in the SQL store holds its aggregates, not its members (they are event rows): its
snapshot, title and root cause read the same as when every member is held, including after it takes
over another incident."""

from __future__ import annotations

from eventmgmt.config import default_config
from eventmgmt.correlate.aggregates import Aggregates
from eventmgmt.correlate.state import Incident, Member
from tests.correlate.helpers import at, ev

CFG = default_config()


def members(n: int, model: str, node_every: int = 3) -> list:
    kinds = ("pod_oom", "triton_crash", "high_error_rate", "model_unavailable")
    return [
        ev(kinds[i % 4], i * 0.1, pod=f"triton-{model}-7f9c6d8b4-x{i:04d}", node=f"gpu-{i % node_every}", model=model)
        for i in range(n)
    ]


def test_merged_aggregates_equal_the_aggregates_of_every_member() -> None:
    a, b = members(40, "bert"), members(30, "gpt", node_every=5)
    one = Aggregates.of([Member.of(e) for e in a + b])
    merged = Aggregates.of([Member.of(e) for e in a])
    merged.merge(Aggregates.of([Member.of(e) for e in b]))
    assert merged.kinds == one.kinds and merged.alerts == one.alerts and merged.severity == one.severity
    assert {k: m.event_id for k, m in merged.first.items()} == {k: m.event_id for k, m in one.first.items()}
    assert merged.listed() == one.listed() and merged.counts() == one.counts()
    assert merged.node_times == one.node_times and merged.pod_members == one.pod_members


def incident(iid: str, events: list, keep: bool) -> Incident:
    inc = Incident(id=iid, opened_at=events[0].occurred_at, last_seen=events[0].occurred_at)
    for e in events:
        inc.add(e)
        inc.note_keys(e.resources.keys())
    if not keep:
        inc.drop_members()
    return inc


def test_an_incident_without_its_members_reads_as_one_with_them() -> None:
    a, b = members(40, "bert"), members(30, "bert", node_every=5)[::-1]
    held, flat = incident("inc-a", a, keep=True), incident("inc-a", a[:10], keep=False)
    for e in a[10:]:
        flat.add(e)
    held.absorb(incident("inc-b", b, keep=True))
    flat.absorb(incident("inc-b", b, keep=False))
    assert flat.members == [] and len(held.members) == 70
    snap_held = held.snapshot(CFG.chains, CFG.response)
    snap_flat = flat.snapshot(CFG.chains, CFG.response)
    assert snap_flat == snap_held and snap_flat.member_count == 70
    assert flat.root(CFG.chains).event_id == held.root(CFG.chains).event_id
    assert at(0) == flat.opened_at


def test_the_sql_store_holds_no_members_and_rebuilds_none(tmp_path) -> None:
    from sqlalchemy.orm import Session

    from eventmgmt.correlate.sqlrepo import SqlRepo
    from eventmgmt.store import ensure_schema, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    ensure_schema(engine)
    events = members(12, "bert")
    with Session(engine) as s, s.begin():
        repo = SqlRepo(s, CFG.chains, CFG.response)
        repo.prefetch(events)
        inc = incident("inc-a", events, keep=True)
        for e in events:
            repo.record_event(e, inc.id)
        repo.save(inc, at(30), inc.snapshot(CFG.chains, CFG.response))
        assert inc.members == [] and inc.size == 12
        repo.finish()
    with Session(engine) as s:
        again = SqlRepo(s, CFG.chains, CFG.response).get("inc-a")
        assert again is not None and again.members == [] and again.size == 12
        assert again.snapshot(CFG.chains, CFG.response).member_count == 12

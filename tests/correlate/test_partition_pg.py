"""Correlation partitioned by cluster on PostgreSQL: deliveries of different clusters hold different
locks and run in parallel; one cluster's stay serialised; a delivery with an event naming no cluster,
the lifecycle tick and dashboard actions hold the whole store. Several instances working through two
clusters' traffic at once never split an incident nor join across clusters."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import event, select, text

from eventmgmt.clock import StreamClock
from eventmgmt.config import default_config
from eventmgmt.correlate.sqlrepo import locked_session
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.model import Event, Resources
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.tables import EventRow
from eventmgmt.transport import RecordingPublisher
from tests.support.pg import pg_schema, run_instances

from .helpers import at, ev

CLUSTERS = ("prod-eu", "prod-us")
INCIDENTS = 6


def _held_while(url: str, first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
    """Whether a transaction locking `second` gets its lock while one locking `first` is open."""
    engine = make_engine(url)
    release, got = threading.Event(), threading.Event()

    def hold() -> None:
        with locked_session(engine, first):
            release.wait(10)

    def try_second() -> None:
        with locked_session(engine, second):
            got.set()

    holder = threading.Thread(target=hold)
    holder.start()
    threading.Event().wait(0.3)
    other = threading.Thread(target=try_second)
    other.start()
    passed = got.wait(1.5)
    release.set()
    holder.join(10)
    other.join(10)
    engine.dispose()
    return passed


def test_locks_partition_by_cluster():
    with pg_schema() as url:
        eu, us = frozenset({"prod-eu"}), frozenset({"prod-us"})
        assert _held_while(url, eu, us)  # two clusters: in parallel
        assert not _held_while(url, eu, eu)  # one cluster: serialised
        assert not _held_while(url, eu, None)  # the whole store waits for any cluster
        assert not _held_while(url, None, us)  # and every cluster waits for the whole store


def in_cluster(e: Event, cluster: str) -> Event:
    """`e` in `cluster`: its id and fingerprint too, as Alertmanager's (which hash the `cluster`
    label) and ingest's (which add EVENTMGMT_CLUSTER) are."""
    return e.model_copy(
        update={
            "id": f"{cluster}:{e.id}",
            "fingerprint": f"{e.fingerprint}@{cluster}",
            "resources": Resources(**{**e.resources.__dict__, "cluster": cluster}),
        }
    )


def workload() -> list[Event]:
    """The same INCIDENTS OOM cascades (same pod, node and model names) in each cluster."""
    events = []
    for cluster in CLUSTERS:
        for i in range(INCIDENTS):
            pod = f"triton-m{i}-68kxfnbbb2-wbq4{'bcdfghjklm'[i % 10]}"
            node, model = f"node-{i}", f"m{i}"
            t = i * 0.1
            events += [
                in_cluster(ev("triton_crash", t, pod=pod, node=node, source="k8s-event", name=f"crash{i}"), cluster),
                in_cluster(ev("pod_oom", t + 0.1, pod=pod, name=f"oom{i}"), cluster),
                in_cluster(ev("model_unavailable", t + 0.2, pod=pod, model=model, name=f"unavail{i}"), cluster),
                in_cluster(ev("high_error_rate", t + 0.3, pod=pod, model=model, name=f"err{i}"), cluster),
            ]
    return events


def worker(url: str, deliveries: list[list[dict]], barrier) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    stage = CorrelateStage(default_config(), RecordingPublisher(), clock=lambda: at(10), engine=engine)
    barrier.wait()
    for d in deliveries:
        stage.process_many([Event.from_json(p) for p in d])
    engine.dispose()


def test_instances_on_two_clusters_never_split_nor_join_across():
    events = workload()
    with pg_schema() as url:
        engine = make_engine(url)
        ensure_schema(engine)
        # NOTE: deliveries of one cluster each (as Pub/Sub's ordering key per cluster delivers them),
        # every one twice (at least once), spread at random over three instances
        deliveries = [[e.to_json() for e in events[i : i + 2]] for i in range(0, len(events), 2)] * 2
        random.Random(3).shuffle(deliveries)
        shares = [deliveries[i::3] for i in range(3)]
        engine.dispose()
        rows, incidents = run_instances(url, worker, shares)
    assert len(rows) == len(events) and all(r.incident_id for r in rows)
    clusters_of = {}
    for r in rows:
        clusters_of.setdefault(r.incident_id, set()).add(r.data["resources"]["cluster"])
    assert all(len(c) == 1 for c in clusters_of.values()), clusters_of
    assert len(incidents) == INCIDENTS * len(CLUSTERS)
    assert sorted(Counter(r.incident_id for r in rows).values()) == [4] * (INCIDENTS * len(CLUSTERS))


def test_an_instance_reads_each_of_another_clusters_incidents_once():
    """Names recur across clusters (`workload`), and so do the resource keys made of them: a
    delivery of one cluster finds the other's incidents among its candidates. The instance holding
    it reads each of them once, to learn its cluster (from its snapshot, not decoding it), not again
    at each delivery after their own instance changed them (decoded with their members, that made
    two instances slower than one)."""
    events = workload()
    by_cluster = {c: [e for e in events if e.resources.cluster == c] for c in CLUSTERS}
    with pg_schema() as url:
        engines = {c: make_engine(url) for c in CLUSTERS}
        ensure_schema(engines[CLUSTERS[0]])
        reads: dict[str, Counter[str]] = {c: Counter() for c in CLUSTERS}
        decoded: dict[str, Counter[str]] = {c: Counter() for c in CLUSTERS}
        for c, engine in engines.items():

            def count(conn, cursor, statement, params, context, many, c=c):  # type: ignore[no-untyped-def]
                if "FROM incidents" in statement and ("incidents.state" in statement or "snapshot" in statement):
                    reads[c].update(params["values"])
                if "incidents.state" in statement:
                    decoded[c].update(params["values"])

            event.listen(engine, "before_cursor_execute", count)
        stages = {
            c: CorrelateStage(default_config(), RecordingPublisher(), clock=lambda: at(10), engine=engines[c])
            for c in CLUSTERS
        }
        # NOTE: a cascade's four events over four deliveries, the clusters' taking turns: each
        # delivery of one cluster follows a change to the other's incidents
        for step in range(4):
            for c in CLUSTERS:
                stages[c].process_many(by_cluster[c][step::4])
        with engines[CLUSTERS[0]].connect() as conn:
            cluster_of = {
                r.incident_id: r.data["resources"]["cluster"] for r in conn.execute(select(EventRow)) if r.incident_id
            }
        for engine in engines.values():
            engine.dispose()
    assert len(set(cluster_of.values())) == 2 and len(set(cluster_of)) == INCIDENTS * len(CLUSTERS)
    for c in CLUSTERS:
        assert reads[c], f"{c}'s instance never met the other cluster's incidents: the test proves nothing"
        assert {cluster_of[i] for i in reads[c]} <= set(CLUSTERS) - {c}
        assert max(reads[c].values()) == 1, reads[c]
        assert not set(decoded[c]) & set(reads[c]), "another cluster's incident was decoded to learn its cluster"


def test_another_clusters_due_incidents_are_read_once():
    """An instance whose events run ahead finds the other cluster's incidents due before their own
    instance does, at each of its transactions: it reads each once, to learn its cluster, and leaves
    it to that instance. Different names in each cluster here, so only the lifecycle's query meets
    the other cluster's incidents."""
    eu, us = CLUSTERS
    late = timedelta(hours=8)  # NOTE: a firing incident goes stale after 6 hours
    # NOTE: each delivery of the ahead cluster later than the last (five minutes), so each asks
    # again what fell due
    ahead = [
        e.model_copy(
            update={
                "occurred_at": e.occurred_at + late + timedelta(minutes=5 * (n % 4)),
                "received_at": e.received_at + late + timedelta(minutes=5 * (n % 4)),
                "resources": Resources(
                    **{
                        **e.resources.__dict__,
                        "pod": f"eu-{e.resources.pod}",
                        "node": f"eu-{e.resources.node}",
                        "model": f"eu-{e.resources.model}",
                    }
                ),
            }
        )
        for n, e in enumerate(e for e in workload() if e.resources.cluster == eu)
    ]
    behind = [e for e in workload() if e.resources.cluster == us]
    with pg_schema() as url:
        engines = {c: make_engine(url) for c in CLUSTERS}
        ensure_schema(engines[eu])
        reads: Counter[str] = Counter()

        def count(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
            if "FROM incidents" in statement and ("incidents.state" in statement or "snapshot" in statement):
                reads.update(params["values"])

        event.listen(engines[eu], "before_cursor_execute", count)
        # NOTE: each on the event stream's clock, as the correlate function is
        wall = lambda: at(24 * 60)  # noqa: E731
        stages = {
            c: CorrelateStage(default_config(), RecordingPublisher(), clock=StreamClock(wall), engine=engines[c])
            for c in CLUSTERS
        }
        stages[us].process_many(behind[0::4])
        for step in range(1, 4):
            stages[eu].process_many(ahead[step - 1 :: 4])
            stages[us].process_many(behind[step::4])  # each of its incidents changes again
        stages[eu].process_many(ahead[3::4])
        with engines[us].connect() as conn:
            theirs = {r.incident_id for r in conn.execute(select(EventRow)) if r.data["resources"]["cluster"] == us}
            states = dict(conn.execute(text("SELECT id, status FROM incidents")).all())
        for engine in engines.values():
            engine.dispose()
    assert theirs and set(reads) <= theirs, "the ahead instance read its own incidents back: the test proves nothing"
    assert reads, "the other cluster's incidents never fell due for the ahead instance: the test proves nothing"
    assert max(reads.values()) == 1, reads
    assert [states[i] for i in sorted(theirs)] == ["open"] * INCIDENTS  # left to their own instance


def test_the_clusters_learned_of_other_instances_incidents_stay_bounded(monkeypatch):
    """Other instances retire their incidents, not this one: what it learned of them is dropped
    past a bound, and learned again if met again."""
    from eventmgmt.correlate import sqlrepo

    monkeypatch.setattr(sqlrepo, "_LEARNED_MAX", 3)
    cache = sqlrepo.IncidentCache()
    for i in range(3):
        cache.learn(f"inc-{i}", ["prod-us"])
    assert cache.elsewhere("inc-0", frozenset({"prod-eu"})) and not cache.elsewhere("inc-0", frozenset({"prod-us"}))
    cache.learn("inc-3", ["prod-us"])
    assert not cache.known("inc-0") and cache.known("inc-3")
    cache.learn("inc-4", [])  # an incident of no cluster: any transaction may join it
    assert not cache.elsewhere("inc-4", frozenset({"prod-eu"}))

"""Several correlate processes on one PostgreSQL: no incident split in two, no update lost."""

from __future__ import annotations

import random
from collections import Counter

from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.transport import RecordingPublisher
from tests.support.pg import pg_schema, run_instances

from .helpers import at, ev

WORKERS = 4
INCIDENTS = 12


def workload():
    """INCIDENTS independent OOM cascades, each on its own pod and node, all within a few minutes."""
    events = []
    for i in range(INCIDENTS):
        pod = f"triton-m{i}-68kxfnbbb2-wbq4{'bcdfghjklm'[i % 10]}"
        node, model = f"node-{i}", f"m{i}"
        t = i * 0.1
        events += [
            ev("triton_crash", t, pod=pod, node=node, source="k8s-event", name=f"crash{i}"),
            ev("pod_oom", t + 0.1, pod=pod, name=f"oom{i}"),
            ev("model_unavailable", t + 0.2, pod=pod, model=model, name=f"unavail{i}"),
            ev("high_error_rate", t + 0.3, pod=pod, model=model, name=f"err{i}"),
            ev("high_error_rate", t + 0.4, model=model, name=f"errm{i}", fp=f"fp-errm{i}"),
        ]
    return events


def worker(url: str, payloads: list[dict], barrier) -> None:
    from eventmgmt.model import Event

    engine = make_engine(url)
    stage = CorrelateStage(default_config(), RecordingPublisher(), clock=lambda: at(10), engine=engine)
    barrier.wait()
    for p in payloads:
        stage.process(Event.from_json(p))
    engine.dispose()


def test_parallel_workers_never_split_or_lose():
    events = workload()
    with pg_schema() as url:
        engine = make_engine(url)
        ensure_schema(engine)
        # every event delivered twice (at-least-once), spread at random over the workers
        deliveries = [e.to_json() for e in events] * 2
        random.Random(7).shuffle(deliveries)
        shares = [deliveries[i::WORKERS] for i in range(WORKERS)]
        engine.dispose()
        rows, incidents = run_instances(url, worker, shares)
    assert len(rows) == len(events)  # each event stored once despite two deliveries
    assert all(r.incident_id for r in rows)
    by_incident = Counter(r.incident_id for r in rows)
    assert len(incidents) == INCIDENTS, sorted(by_incident.values())
    assert sorted(by_incident.values()) == [5] * INCIDENTS
    for inc in incidents:
        assert inc.member_count == 5 and "members" not in inc.state  # members are event rows (flat state)
        assert inc.snapshot["member_count"] == 5

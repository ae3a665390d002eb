"""Correlate instances on PostgreSQL, partitioned by cluster: two clusters' storms (each PODS pods
of MODELS models crash-looping and erroring, in deliveries of 100 events, as correlate takes them
from Pub/Sub) correlated by one instance, then by two (one per cluster, as Pub/Sub's ordering key
per cluster hands them out), each on a fresh schema of the machine's PostgreSQL. Reports the wall
time of each (from the moment every instance is ready to the last commit) and the speed-up.

    .venv/bin/python -m benchmarks.scaleout_bench [--pods N] [--models M] [--order alertname] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = ("gke-eu", "gke-us")


def deliveries(cluster: str, pods: int, models: int, order: str = "pod") -> list[list[dict[str, Any]]]:
    """The storm as correlate receives it: parsed, classified and enriched, 100 events a delivery;
    pod by pod, or every crash loop first as Alertmanager grouping by alertname sends it."""
    from benchmarks.common import webhook
    from benchmarks.storm_bench import in_alertmanager_order, storm
    from eventmgmt.classify import admit
    from eventmgmt.config import default_config
    from eventmgmt.enrich import TopologyGraph, enrich
    from eventmgmt.sources import ParseContext, parse_delivery

    config = default_config()
    graph = TopologyGraph()
    alerts = storm(models, pods, 8, datetime(2026, 11, 7, 8, tzinfo=UTC))
    for a in alerts:
        # NOTE: Alertmanager's fingerprint hashes every label, the cluster's too: let the parser
        # derive it from the labels
        a["labels"]["cluster"] = cluster
        a.pop("fingerprint", None)
    if order == "alertname":
        in_alertmanager_order(alerts)
    out = []
    for i in range(0, len(alerts), 100):
        ctx = ParseContext(f"{cluster}-{i}", datetime(2026, 11, 7, 8, 2, tzinfo=UTC), check_text=False)
        kept, _ = admit(parse_delivery("alertmanager", webhook(alerts[i : i + 100]), ctx).events, config)
        out.append([enrich(e, config, graph).to_json() for e in kept])
    return out


def instance(url: str, work: list[list[dict[str, Any]]], ready: Any, go: Any, done: Any) -> None:
    from eventmgmt.clock import StreamClock
    from eventmgmt.config import default_config
    from eventmgmt.correlate.stage import CorrelateStage
    from eventmgmt.model import Event
    from eventmgmt.store import make_engine
    from eventmgmt.transport import RecordingPublisher

    engine = make_engine(url)
    # NOTE: the correlate function's clock. A wall clock three weeks ahead of the storm resolved each
    # incident at the next event's tick (and made correlation end a transaction after every opening).
    stage = CorrelateStage(default_config(), RecordingPublisher(), clock=StreamClock(), engine=engine)
    batches = [[Event.from_json(p) for p in d] for d in work]
    ready.release()
    go.wait()
    for b in batches:
        stage.correlate(b)
    done.put(time.perf_counter())
    engine.dispose()


def run(work: list[list[list[dict[str, Any]]]]) -> float:
    from eventmgmt.store import ensure_schema, make_engine
    from tests.support.pg import pg_schema

    ctx = mp.get_context("spawn")
    with pg_schema() as url:
        engine = make_engine(url)
        ensure_schema(engine)
        engine.dispose()
        ready, go, done = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=instance, args=(url, w, ready, go, done)) for w in work]
        for p in procs:
            p.start()
        for _ in procs:
            if not ready.acquire(timeout=300):
                raise SystemExit(f"an instance did not start: exit codes {[p.exitcode for p in procs]}")
        start = time.perf_counter()
        go.set()
        ends = [done.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(60)
    return max(ends) - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pods", type=int, default=2000, help="pods per cluster (two alerts each; 2,000: about 3-6 s a run)"
    )
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--order", choices=["pod", "alertname"], default="pod", help="as storm_bench's --order")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-scaleout.json"))
    args = ap.parse_args()
    per_cluster = [deliveries(c, args.pods, args.models, args.order) for c in CLUSTERS]
    # NOTE: one instance takes the two clusters' deliveries interleaved, as they arrive
    interleaved = [d for pair in zip(*per_cluster, strict=True) for d in pair]
    one = run([interleaved])
    # NOTE: the same instance taking one cluster's storm, then the other's: what interleaving costs
    one_apart = run([per_cluster[0] + per_cluster[1]])
    two = run(per_cluster)
    events = sum(len(d) for d in interleaved)
    out = {
        "machine": f"{platform.machine()} Python {platform.python_version()}, {mp.cpu_count()} cores, PostgreSQL on the same machine",
        "date": datetime.now(UTC).date().isoformat(),
        "order": args.order,
        "events": events,
        "deliveries": len(interleaved),
        "one_instance_s": round(one, 2),
        "one_instance_clusters_one_after_the_other_s": round(one_apart, 2),
        "two_instances_s": round(two, 2),
        "one_instance_events_per_s": round(events / one, 1),
        "two_instances_events_per_s": round(events / two, 1),
        "speedup": round(one / two, 2),
        "speedup_over_clusters_one_after_the_other": round(one_apart / two, 2),
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

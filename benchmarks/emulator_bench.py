"""End-to-end throughput and ingest-to-incident latency on the emulator stack (pstest, one process per
function, the push bridge): captures posted to the ingest function; latency is from the POST to the
event's CorrelatedMessage (with its incident) appearing on events-correlated.

    .venv/bin/python -m benchmarks.emulator_bench [--captures N]
    .venv/bin/python -m benchmarks.emulator_bench --storm PODS [--models M]

`--storm` posts a storm instead (benchmarks.storm_bench's shape: every pod crash-looping and erroring,
100 alerts a webhook) and reports how fast the stack takes it and drains it (until every
subscription has been idle for 2 s, those 2 s not counted), when the bridge acknowledged its last
message (the drain without the idle detection's own lag), and each subscription's messages and
pushes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from eventmgmt.emulator.bridge import subscriber_client
from eventmgmt.emulator.stack import Stack
from tests.support.incidents import BACKFILL_TOKEN, capture_headers

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT.parent / "shared" / "scenarios" / "public-1" / "captures.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=638)
    ap.add_argument("--out", default=None, help="default docs/bench-emulator.json (storm: bench-emulator-storm.json)")
    ap.add_argument("--storm", type=int, default=0, help="pods of a storm (two alerts each) instead of captures")
    ap.add_argument("--models", type=int, default=20)
    args = ap.parse_args()
    if args.storm:
        storm_main(args)
        return
    args.out = args.out or str(ROOT / "docs" / "bench-emulator.json")
    caps = [json.loads(x) for x in CAPTURES.read_text().splitlines()][: args.captures]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(home=Path(tmp), extra_env={"EVENTMGMT_BACKFILL_TOKEN": BACKFILL_TOKEN}).start()
        try:
            sub = subscriber_client()  # NOTE: a pull of correlated batches passes gRPC's 4 MiB default
            path = sub.subscription_path(stack.project, "bench")
            sub.create_subscription(
                request={
                    "name": path,
                    "topic": f"projects/{stack.project}/topics/events-correlated",
                    "ack_deadline_seconds": 60,
                }
            )
            seen: dict[str, float] = {}
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    resp = sub.pull(request={"subscription": path, "max_messages": 500}, timeout=5)
                    now = time.perf_counter()
                    ids = []
                    for m in resp.received_messages:
                        ids.append(m.ack_id)
                        body = json.loads(m.message.data)
                        # NOTE: a correlate transaction's messages travel as one batch message
                        for cm in body["messages"] if "messages" in body and "event" not in body else [body]:
                            if cm.get("incident_id"):
                                seen.setdefault(cm["event"]["id"], now)
                    if ids:
                        sub.acknowledge(request={"subscription": path, "ack_ids": ids})

            t = threading.Thread(target=watch, daemon=True)
            t.start()
            posted: dict[str, float] = {}
            t0 = time.perf_counter()
            with httpx.Client(base_url=stack.url("ingest"), timeout=60) as http:
                for cap in caps:
                    sent = time.perf_counter()
                    r = http.post(
                        f"/ingest/{cap['source']}",
                        json=cap["body"],
                        headers=capture_headers(cap),
                    )
                    for eid in r.json()["ids"]:
                        posted[eid] = sent
            post_s = time.perf_counter() - t0
            stack.wait_idle(quiet=2.0, timeout=600)
            total_s = time.perf_counter() - t0 - 2.0
            stop.set()
            lat = sorted(seen[e] - posted[e] for e in posted if e in seen)
        finally:
            stack.stop()
    out = {
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "captures": len(caps),
        "events_published": len(posted),
        "events_in_incidents": len(lat),
        "ingest_seconds": round(post_s, 2),
        "end_to_end_seconds": round(total_s, 2),
        "events_per_second": round(len(posted) / total_s, 1),
        "latency_ms": {
            "p50": round(statistics.median(lat) * 1000, 1),
            "p99": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1),
            "max": round(lat[-1] * 1000, 1),
        },
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


def storm_main(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    from benchmarks.common import webhook
    from benchmarks.storm_bench import storm

    alerts = storm(args.models, args.storm, 8, datetime.now(UTC))
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(home=Path(tmp)).start()
        try:
            t0 = time.perf_counter()
            with httpx.Client(base_url=stack.url("ingest"), timeout=60) as http:
                for i in range(0, len(alerts), 100):
                    r = http.post("/ingest/alertmanager", json=webhook(alerts[i : i + 100]))
                    r.raise_for_status()
            accepted_s = time.perf_counter() - t0
            stack.wait_idle(quiet=2.0, timeout=600)
            drained_s = time.perf_counter() - t0 - 2.0
            assert stack.bridge is not None
            stats = {s.rsplit("/", 1)[-1]: st for s, st in stack.bridge.stats.items()}
        finally:
            stack.stop()
    last_s = max(st.last_delivered for st in stats.values()) - t0
    out = {
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "alerts": len(alerts),
        "alerts_per_request": 100,
        "accepted_seconds": round(accepted_s, 2),
        "accepted_alerts_per_s": round(len(alerts) / accepted_s, 1),
        "drained_seconds": round(drained_s, 2),
        "drained_alerts_per_s": round(len(alerts) / drained_s, 1),
        "last_acknowledged_seconds": round(last_s, 2),
        "pushes": {
            name: {"messages": st.delivered, "pushes": st.pushes, "batches_failed": st.batches_failed}
            for name, st in stats.items()
        },
    }
    Path(args.out or ROOT / "docs" / "bench-emulator-storm.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

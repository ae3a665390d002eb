"""Dashboard and read API with 10,000 incidents and 1,000,000 events in the store (SQLite, the real
tables and indexes): the time of each page and API answer.

    .venv/bin/python -m benchmarks.dashboard_bench [--events N] [--incidents N]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from eventmgmt.store.tables import EventRow, IncidentKeyRow, IncidentRow

ROOT = Path(__file__).resolve().parents[1]
KINDS = [
    "pod_oom",
    "triton_crash",
    "model_unavailable",
    "high_error_rate",
    "node_drain",
    "pod_lifecycle",
    "log",
    "scaling",
    "gpu_high_util",
    "high_queue_depth",
]
SEV = [("critical", 4), ("high", 3), ("medium", 2), ("low", 1)]


def load(engine, n_incidents: int, n_events: int, rng: random.Random) -> None:
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    span = timedelta(days=30).total_seconds()
    incidents = []
    for i in range(n_incidents):
        opened = t0 + timedelta(seconds=rng.random() * span)
        sev, rank = rng.choice(SEV)
        status = "open" if i % 20 == 0 else "resolved"
        iid = f"inc-{i:012d}"
        snap = {
            "id": iid,
            "version": 3,
            "kind": "incident",
            "title": f"pod_oom → high_error_rate: model-{i % 40}",
            "chain": "pod_oom",
            "root_kind": "pod_oom",
            "severity": sev,
            "status": status,
            "opened_at": opened.isoformat(),
            "updated_at": opened.isoformat(),
            "resolved_at": None,
            "root_cause": {
                "id": f"ev-{i}",
                "kind": "pod_oom",
                "cls": "alert",
                "status": "firing",
                "occurred_at": opened.isoformat(),
                "summary": "Killed process (tritonserver)",
                "origin": None,
            },
            "changes": [],
            "member_count": 100,
            "firing": 0,
            "resources": {"models": [f"model-{i % 40}"], "nodes": [f"node-{i % 300}"]},
            "action": "Raise the memory limit",
            "runbook": "https://runbooks.example.com/k8s/pod-oom",
            "acknowledged_by": None,
            "merged_into": None,
        }
        incidents.append(
            {
                "id": iid,
                "version": 3,
                "kind": "incident",
                "status": status,
                "severity": sev,
                "severity_rank": rank,
                "title": snap["title"],
                "root_kind": "pod_oom",
                "opened_at": opened,
                "updated_at": opened,
                "resolved_at": None,
                "member_count": 100,
                "firing": 0,
                "live": status == "open",
                "due_at": None,
                "snapshot": snap,
                "state": {},
                "board_rank": 0 if status == "open" else 1,
            }
        )
    with engine.begin() as c:
        c.execute(insert(IncidentRow), incidents)
        c.execute(
            insert(IncidentKeyRow),
            [{"key": f"pod:inference/p{i}", "incident_id": r["id"]} for i, r in enumerate(incidents) if r["live"]],
        )
    batch = []
    with engine.begin() as c:
        for n in range(n_events):
            when = t0 + timedelta(seconds=n / n_events * span)
            kind = KINDS[n % len(KINDS)]
            cls = "info" if kind in ("pod_lifecycle", "log", "scaling") else "alert"
            inc = f"inc-{rng.randrange(n_incidents):012d}" if cls == "alert" else None
            eid = f"ev:{n:09d}"
            data = {
                "id": eid,
                "kind": kind,
                "class": cls,
                "severity": "info",
                "status": "firing",
                "source": "k8s-event",
                "occurred_at": when.isoformat(),
                "summary": f"event {n} about pod p{n % 5000}",
                "resources": {"pod": f"p{n % 5000}", "node": f"node-{n % 300}"},
            }
            batch.append(
                {
                    "id": eid,
                    "fingerprint": f"fp{n % 9000}",
                    "source": "k8s-event",
                    "kind": kind,
                    "cls": cls,
                    "severity": "info",
                    "status": "firing",
                    "occurred_at": when,
                    "received_at": when,
                    "incident_id": inc,
                    "summary": data["summary"],
                    "namespace": "inference",
                    "node": f"node-{n % 300}",
                    "pod": f"p{n % 5000}",
                    "model": f"model-{n % 40}",
                    "capture": None,
                    "idx": None,
                    "suppressed": False,
                    "data": data,
                }
            )
            if len(batch) == 20_000:
                c.execute(insert(EventRow), batch)
                batch = []
        if batch:
            c.execute(insert(EventRow), batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--incidents", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-dashboard.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rt = build_runtime(Settings(home=Path(tmp)))
        t0 = time.perf_counter()
        load(rt.engine, args.incidents, args.events, random.Random(1))
        load_s = time.perf_counter() - t0
        client = create_app(rt).test_client()
        some = client.get("/api/incidents?limit=1").json["incidents"][0]["id"]
        cursor = client.get("/api/events?limit=100").json["next"]
        targets = {
            "board /": "/",
            "board page 100 /?cursor=5000": "/?cursor=5000",
            "incident page": f"/incidents/{some}",
            "GET /api/incidents": "/api/incidents",
            "GET /api/incidents/{id}": f"/api/incidents/{some}",
            "GET /api/events (newest)": "/api/events",
            "GET /api/events next page": f"/api/events?cursor={cursor}",
            "GET /api/events?kind=pod_oom": "/api/events?kind=pod_oom",
            "GET /api/events?pod=p42": "/api/events?pod=p42",
            "GET /api/events?incident=...": f"/api/events?incident={some}",
            "GET /api/events?q=pod p4242 (text)": "/api/events?q=pod%20p4242",
            "events page ?node=node-7": "/events?node=node-7",
            "noise (24 h)": "/noise",
            "maintenance": "/maintenance",
        }
        rows = []
        for name, path in targets.items():
            times = []
            for _ in range(5):
                s = time.perf_counter()
                r = client.get(path)
                times.append(time.perf_counter() - s)
                assert r.status_code == 200, (path, r.status_code)
            times.sort()
            rows.append({"what": name, "median_ms": round(times[2] * 1000, 1), "max_ms": round(times[-1] * 1000, 1)})
        rt.stop()
    out = {
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "incidents": args.incidents,
        "events": args.events,
        "load_seconds": round(load_s, 1),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['what']:40} {r['median_ms']:>9} ms  (max {r['max_ms']})")


if __name__ == "__main__":
    main()

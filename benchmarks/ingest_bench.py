"""Embedded ingest under a burst, in one run: the same 2,000 Alertmanager alerts (webhooks of 20, one
distinct alert each, 50 models) through the whole chain with each webhook correlated in one
transaction (batched, the default) and one event per transaction (the earlier path), plus the SQL
statements each costs. In-process (Flask's test client), so HTTP does not blur the comparison.

    .venv/bin/python -m benchmarks.ingest_bench [--alerts N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.common import machine, webhook
from benchmarks.side_by_side_bench import alert
from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def run(webhooks: list[dict[str, Any]], batches: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        rt = build_runtime(Settings(home=Path(tmp)))
        rt.publisher.batches = batches
        client = create_app(rt).test_client()
        statements = {"n": 0}

        @event.listens_for(rt.engine, "before_cursor_execute")
        def count(*_args: Any) -> None:
            statements["n"] += 1

        alerts = sum(len(w["alerts"]) for w in webhooks)
        t0 = time.perf_counter()
        for hook in webhooks:
            r = client.post("/ingest/alertmanager", json=hook)
            assert r.status_code == 202, r.data
        # NOTE: ingest answers once a delivery is queued; the figure is for the whole chain.
        assert rt.queue.wait_drained(600)
        elapsed = time.perf_counter() - t0
        rt.stop()
        rt.engine.dispose()
    return {
        "alerts_per_s": round(alerts / elapsed, 1),
        "ms_per_webhook": round(1000 * elapsed / len(webhooks), 2),
        "statements_per_alert": round(statements["n"] / alerts, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-ingest.json"))
    args = ap.parse_args()
    starts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alerts = [dict(alert(i, starts), status="firing") for i in range(args.alerts)]
    webhooks = [webhook(alerts[i : i + args.batch]) for i in range(0, len(alerts), args.batch)]
    per_event = run(webhooks, batches=False)
    batched = run(webhooks, batches=True)
    result = {
        "machine": machine(),
        "alerts": args.alerts,
        "alerts_per_webhook": args.batch,
        "per_event_transaction": per_event,
        "one_transaction_per_webhook": batched,
        "speedup": round(batched["alerts_per_s"] / per_event["alerts_per_s"], 2),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""The same alert stream, in one run, to real Alertmanager (Debian package, POST /api/v2/alerts) and
to our ingest (embedded runtime): accepted alerts per second for both, and the latency from receipt
to a grouped notification (Alertmanager's webhook; our PagerDuty-style page) on a loopback sink.

    .venv/bin/python -m benchmarks.side_by_side_bench [--alerts N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.common import machine, webhook
from tests.support.httpsink import http_sink
from tests.support.procs import alertmanager
from tests.support.serve import serve

ROOT = Path(__file__).resolve().parents[1]


def alert(i: int, starts: str) -> dict:
    labels = {
        "alertname": "TritonHighErrorRate",
        "severity": "critical",
        "namespace": "inference",
        "model": f"m{i % 50}",
        "pod": f"triton-m{i % 50}-68kxfnbbb2-wbq4{'bcdfghjklm'[i % 10]}",
        "replica": str(i),
    }
    return {"labels": labels, "annotations": {"summary": "error rate above 1%"}, "startsAt": starts}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args()
    starts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alerts = [alert(i, starts) for i in range(args.alerts)]
    batches = [alerts[i : i + args.batch] for i in range(0, len(alerts), args.batch)]
    with tempfile.TemporaryDirectory() as tmp, http_sink() as sink:
        tmpd = Path(tmp)
        (tmpd / "home").mkdir()
        env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k", "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        with alertmanager(tmpd / "am", sink.url + "/am-webhook") as am, serve(tmpd / "home", env) as ours:
            # Alertmanager: its own API
            t0 = time.perf_counter()
            with httpx.Client(timeout=60) as http:
                for b in batches:
                    http.post(am + "/api/v2/alerts", json=b).raise_for_status()
            am_s = time.perf_counter() - t0
            _wait(lambda: sink.bodies("/am-webhook"), t0)
            first_am = (sink.first("/am-webhook") or float("nan")) - t0
            # ours: the same alerts as Alertmanager's webhook would carry them
            t1 = time.perf_counter()
            with httpx.Client(timeout=60) as http:
                for b in batches:
                    hook = webhook(
                        [
                            dict(a, status="firing", fingerprint=f"{hash(a['labels']['replica']) & 0xFFFFFFFF:x}")
                            for a in b
                        ]
                    )
                    http.post(ours + "/ingest/alertmanager", json=hook).raise_for_status()
            ours_s = time.perf_counter() - t1
            _wait(lambda: sink.bodies("/v2/enqueue"), t1)
            first_ours = (sink.first("/v2/enqueue") or float("nan")) - t1
            time.sleep(3)
            am_groups, pages = len(sink.bodies("/am-webhook")), len(sink.bodies("/v2/enqueue"))
    out = {
        "machine": machine(),
        "alerts": args.alerts,
        "batch": args.batch,
        "alertmanager_alerts_per_s": round(args.alerts / am_s),
        "ours_alerts_per_s": round(args.alerts / ours_s),
        "throughput_ratio_ours_over_alertmanager": round(am_s / ours_s, 3),
        "alertmanager_first_notification_s": round(first_am, 3),
        "ours_first_page_s": round(first_ours, 3),
        "alertmanager_notifications": am_groups,
        "ours_pages": pages,
        "note": "Alertmanager with group_by ['...'], group_wait 1s; ours correlates the 2,000 alerts into incidents per model",
    }
    (ROOT / "docs" / "bench-side-by-side.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


def _wait(got, since: float, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got():
            return time.perf_counter() - since
        time.sleep(0.02)
    return float("nan")


if __name__ == "__main__":
    main()

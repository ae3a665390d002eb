"""Accept-to-incident and accept-to-page latency, p50/p99, at rest and under a storm, against
`eventmgmt serve` on loopback (PagerDuty a loopback sink).

- **At rest**: WEBHOOKS webhooks of one alert each, every one a new problem (its own model), each
  sent once the one before is correlated and the server has been idle IDLE seconds.
- **Under a storm**: `storm_bench`'s storm (PODS pods of MODELS models, two alerts each, webhooks of
  BATCH) sent back to back; a second connection reads GET /api/queue every POLL seconds meanwhile
  (its sequence numbers say which webhooks are correlated; those reads cost the server a little, so
  the storm's own acceptance figures are `storm_bench`'s, not these).

For each webhook: *accept-to-incident* runs from its 202 arriving at the client to the moment its
delivery is correlated (committed and handed to route and archive: GET /api/queue?wait at rest, the
polled sequence under the storm); *accept-to-page* to the first PagerDuty trigger for an incident
one of its alerts belongs to (0 when that came before the 202). Both, first with the default group
wait (10 s: a first page waits that long after route first sees its incident, as Alertmanager's
group_wait does, docs/route.md) and then with EVENTMGMT_GROUP_WAIT_SECONDS=0, which shows what the
pipeline itself takes.

    .venv/bin/python -m benchmarks.latency_bench [--webhooks N] [--pods N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import calibration_ms, machine, webhook
from benchmarks.storm_bench import (
    Sent,
    am_alert,
    dumps,
    first_pages,
    incident_of_alert,
    ms,
    page_latencies,
    pd_env,
    post_all,
    settle,
    storm_requests,
    triggers,
    warm_up,
)
from tests.support.httpsink import Sink, http_sink
from tests.support.incidents import wait_drained
from tests.support.serve import serve_process

ROOT = Path(__file__).resolve().parents[1]


def lone_alert(i: int) -> dict[str, Any]:
    """A new problem: one model's error rate on one pod."""
    labels = {
        "alertname": "TritonHighErrorRate",
        "severity": "critical",
        "namespace": "triton",
        "pod": f"triton-rest-{i:03d}-7c9f-00000",
        "node": f"gpu-rest-{i:03d}",
        "model": f"rest-{i:03d}",
    }
    return am_alert(labels, "error rate above 5%", datetime.now(UTC) - timedelta(seconds=30))


def to_page(sink: Sink, http: httpx.Client, sent: list[Sent], chunks: list[list[dict[str, Any]]]) -> list[float]:
    """Per webhook, its 202 to the first trigger of an incident one of its alerts belongs to."""
    to_first, _, _ = page_latencies(first_pages(triggers(sink)), incident_of_alert(http), sent, chunks)
    return to_first


def settle_pages(sink: Sink, wanted: int, wait: float) -> None:
    settle(lambda: len(triggers(sink)), 2.0, time.perf_counter() + wait + 30, ready=lambda n: n >= wanted)


def at_rest(args: argparse.Namespace, home: Path, sink: Sink, env: dict[str, str]) -> dict[str, Any]:
    chunks = [[lone_alert(i)] for i in range(args.webhooks)]
    sent, to_incident = [], []
    with serve_process(home, {**pd_env(sink), **env}) as (url, _), httpx.Client(base_url=url, timeout=70) as http:
        warm_up(url)
        for chunk in chunks:
            time.sleep(args.idle)
            (s,) = post_all(url + "/ingest/alertmanager", [(dumps(webhook(chunk)), 1)], float("inf"), 60)
            wait_drained(http)
            to_incident.append(time.perf_counter() - s.end)
            sent.append(s)
        settle_pages(sink, len(chunks), float(env.get("EVENTMGMT_GROUP_WAIT_SECONDS", 10)))
        pages = to_page(sink, http, sent, chunks)
    return {"webhooks": len(sent), "accept_to_incident_ms": ms(to_incident), "accept_to_page_ms": ms(pages)}


def under_storm(args: argparse.Namespace, home: Path, sink: Sink, env: dict[str, str]) -> dict[str, Any]:
    alerts, chunks, _, bodies = storm_requests(args)
    seen: list[tuple[float, int]] = []
    done = threading.Event()
    with serve_process(home, {**pd_env(sink), **env}) as (url, _), httpx.Client(base_url=url, timeout=70) as http:
        warm_up(url)
        base = http.get("/api/queue").json()["last_accepted_seq"]

        def poll() -> None:
            with httpx.Client(base_url=url, timeout=10) as own:
                while not done.is_set():
                    drained = own.get("/api/queue").json()["last_drained_seq"]
                    seen.append((time.perf_counter(), drained))
                    time.sleep(args.poll)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        sent = post_all(url + "/ingest/alertmanager", bodies, float("inf"), 60)
        wait_drained(http)
        time.sleep(2 * args.poll)
        done.set()
        poller.join()
        settle_pages(sink, args.models, float(env.get("EVENTMGMT_GROUP_WAIT_SECONDS", 10)))
        pages = to_page(sink, http, sent, chunks)
    # NOTE: one queue row per webhook of up to 1,000 alerts, numbered in the order they were accepted
    to_incident = [next(t for t, d in seen if d >= base + i + 1) - s.end for i, s in enumerate(sent)]
    return {
        "alerts": len(alerts),
        "webhooks": len(sent),
        "statuses": sorted({s.status for s in sent}),
        "accept_to_incident_ms": ms([max(0.0, x) for x in to_incident]),
        "accept_to_page_ms": ms(pages),
        "polls": len(seen),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webhooks", type=int, default=20, help="webhooks at rest")
    ap.add_argument("--idle", type=float, default=0.3, help="seconds idle before each webhook at rest")
    ap.add_argument("--pods", type=int, default=2000, help="storm pods (two alerts each)")
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--pods-per-node", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--poll", type=float, default=0.01, help="seconds between reads of the queue in the storm")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-latency.json"))
    args = ap.parse_args(argv)
    result: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).date().isoformat(),
        "command": " ".join(["python -m benchmarks.latency_bench", *argv]),
        "calibration_ms_at_start": calibration_ms(),
    }
    for name, env in (("group_wait_default", {}), ("group_wait_0", {"EVENTMGMT_GROUP_WAIT_SECONDS": "0"})):
        for phase, run in (("at_rest", at_rest), ("under_storm", under_storm)):
            with tempfile.TemporaryDirectory(prefix="latency-bench-") as tmp, http_sink() as sink:
                result[f"{phase}_{name}"] = run(args, Path(tmp), sink, env)
            print(f"{phase} {name}: {json.dumps(result[f'{phase}_{name}'])}", flush=True)
    result["calibration_ms_at_end"] = calibration_ms()
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

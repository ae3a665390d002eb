"""Acceptance by `eventmgmt serve` (a real process over loopback): how fast a storm is taken and how
long until it is correlated, and one very large webhook's answer time and memory.

- storm: 4,000 alerts in webhooks of 100, one client posting one after another (pods of 20 models
  crash-looping and erroring, each alert distinct): accepted alerts/s, p50/p99 per webhook, and the
  time from the first request until the queue is drained (every accepted event correlated).
- big: one webhook of 20,000 alerts (about 4.5 MB) to a fresh server: the answer's time, and the
  server's VmRSS before, at its peak, 10 s after the answer and 10 s after the drain.

    .venv/bin/python -m benchmarks.accept_bench [--alerts N] [--per N] [--big N] [--out FILE]

Against code without the queue (no `/api/queue`), "drained" is the last answer: it correlated inside
the request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.serve import serve_process
from tests.support.storm import storm_alert, webhook

ROOT = Path(__file__).resolve().parents[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Sampler:
    """VmRSS of a process every 20 ms, on its own thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def wait_drained(http: httpx.Client, timeout: float = 600.0) -> str:
    """ "drained" once the queue is empty, "no queue" if this server has none (it correlates in the
    request), "timeout" if it did not drain in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = http.get("/api/queue")
        if r.status_code == 404:
            return "no queue"
        if r.json()["backlog_events"] == 0:
            return "drained"
        time.sleep(0.05)
    return "timeout"


def storm(home: Path, n: int, per: int) -> dict[str, Any]:
    t0 = datetime.now(UTC)
    alerts = [storm_alert(i, t0) for i in range(n)]
    hooks = [webhook(alerts[i : i + per]) for i in range(0, n, per)]
    times = []
    with serve_process(home) as (url, _proc), httpx.Client(base_url=url, timeout=600) as http:
        start = time.perf_counter()
        for hook in hooks:
            w0 = time.perf_counter()
            r = http.post("/ingest/alertmanager", json=hook)
            times.append(time.perf_counter() - w0)
            assert r.status_code == 202, r.text
        accepted_s = time.perf_counter() - start
        assert wait_drained(http) != "timeout"
        drained_s = time.perf_counter() - start
        incidents = len(http.get("/api/incidents", params={"limit": 1000}).json()["incidents"])
    times.sort()
    return {
        "alerts": n,
        "per_webhook": per,
        "accepted_alerts_per_s": round(n / accepted_s, 1),
        "accept_s": round(accepted_s, 3),
        "webhook_p50_ms": round(1000 * statistics.median(times), 1),
        "webhook_p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "drained_s": round(drained_s, 3),
        "drained_alerts_per_s": round(n / drained_s, 1),
        "incidents": incidents,
    }


def big(home: Path, n: int, timeout: float = 600.0, drain_timeout: float = 1800.0) -> dict[str, Any]:
    t0 = datetime.now(UTC)
    body = json.dumps(webhook([storm_alert(i, t0) for i in range(n)]), separators=(",", ":")).encode()
    warm = json.dumps(webhook([storm_alert(i, t0 - timedelta(hours=2)) for i in range(100)])).encode()
    env = {"EVENTMGMT_MAX_BODY_BYTES": str(64 * 1024 * 1024)}
    headers = {"Content-Type": "application/json"}
    with serve_process(home, env) as (url, proc), httpx.Client(base_url=url, timeout=600) as http:
        assert http.post("/ingest/alertmanager", content=warm, headers=headers).status_code == 202
        wait_drained(http)
        time.sleep(1)
        baseline = rss_kb(proc.pid)
        sampler = Sampler(proc.pid)
        w0 = time.perf_counter()
        try:
            r = http.post("/ingest/alertmanager", content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return {
                "alerts": n,
                "body_mb": round(len(body) / 1e6, 2),
                "answer_s": f"no answer in {timeout:.0f} s",
                "rss_mb": {"baseline": round(baseline / 1024, 1), "peak": round(sampler.stop() / 1024, 1)},
            }
        answer_s = time.perf_counter() - w0
        assert r.status_code == 202, r.text[:300]
        at_answer = rss_kb(proc.pid)
        time.sleep(10)
        after_answer = rss_kb(proc.pid)
        peak_by_answer = sampler.peak
        drain = wait_drained(http, drain_timeout)
        drained_s = time.perf_counter() - w0
        time.sleep(10)
        after_drain = rss_kb(proc.pid)
        peak = sampler.stop()
    drained: float | str = round(drained_s, 3) if drain == "drained" else round(answer_s, 3)
    if drain == "timeout":
        drained = f"not drained in {drain_timeout:.0f} s"
    return {
        "alerts": n,
        "body_mb": round(len(body) / 1e6, 2),
        "answer_s": round(answer_s, 3),
        "drained_s": drained,
        "rss_mb": {
            "baseline": round(baseline / 1024, 1),
            "peak_until_answer_plus_10s": round(peak_by_answer / 1024, 1),
            "at_answer": round(at_answer / 1024, 1),
            "answer_plus_10s": round(after_answer / 1024, 1),
            "peak": round(peak / 1024, 1),
            "drained_plus_10s": round(after_drain / 1024, 1),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=4000)
    ap.add_argument("--per", type=int, default=100)
    ap.add_argument("--big", type=int, default=20000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-accept.json"))
    args = ap.parse_args()
    out: dict[str, Any] = {
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "storm").mkdir()
        out["storm"] = storm(Path(tmp) / "storm", args.alerts, args.per)
        print(json.dumps(out["storm"]), flush=True)
        if args.big:
            (Path(tmp) / "big").mkdir()
            out["big"] = big(Path(tmp) / "big", args.big)
            print(json.dumps(out["big"]), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Pages across a crash or a stop: a burst of Alertmanager webhooks (100 incidents, one model each)
into a real `eventmgmt serve`, interrupted by `kill -9`, SIGTERM or SIGINT after a given time; then
the server is started again on the same home. Counts the incidents stored, the incidents PagerDuty
(a local sink) was told of before and after the restart, and the triggers sent twice.

    .venv/bin/python -m benchmarks.pages_probe [--signal KILL|TERM|INT] [--at 1.5] [--after 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.httpsink import Sink, http_sink
from tests.support.serve import EXE, ROOT, free_port


def webhook(i: int, incidents: int, alerts: int, starts: str) -> dict[str, Any]:
    """Webhook `i` carries `alerts` firing alerts of model m{i % incidents}, each its own fingerprint."""
    k = i % incidents
    labels = {"alertname": "TritonHighErrorRate", "severity": "critical", "namespace": "inference"}
    return {
        "version": "4",
        "status": "firing",
        "receiver": "probe",
        "alerts": [
            {
                "status": "firing",
                "startsAt": starts,
                "fingerprint": f"k{k}w{i}a{j}",
                "labels": {**labels, "model": f"m{k}", "pod": f"triton-m{k}-68kxfnbbb2-wbq4b", "replica": str(j)},
            }
            for j in range(alerts)
        ],
    }


def start(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (home / "serve.log").open("a")
    proc = subprocess.Popen(
        [str(EXE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "EVENTMGMT_HOME": str(home), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError("eventmgmt serve did not answer")


def burst(url: str, hooks: list[dict[str, Any]], clients: int, accepted: list[int]) -> list[threading.Thread]:
    def run(part: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for hook in part:
                try:
                    if http.post("/ingest/alertmanager", json=hook).status_code == 202:
                        accepted.append(1)
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=run, args=(hooks[c::clients],), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    return threads


def triggers(sink: Sink) -> list[str]:
    return [b["dedup_key"] for b in list(sink.bodies("/v2/enqueue")) if b.get("event_action") == "trigger"]


def stored(url: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(url + "/api/incidents", params=params, timeout=10).json()
        ids |= {i["id"] for i in page["incidents"] if i.get("kind", "incident") == "incident"}
        cursor = page.get("next")
        if not cursor:
            return ids


def probe(
    sig: str, at: float, after: float, webhooks: int, incidents: int, alerts: int, clients: int
) -> dict[str, Any]:
    starts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    hooks = [webhook(i, incidents, alerts, starts) for i in range(webhooks)]
    with tempfile.TemporaryDirectory() as tmp, http_sink() as sink:
        home = Path(tmp)
        env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k", "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        proc, url = start(home, env)
        accepted: list[int] = []
        threads = burst(url, hooks, clients, accepted)
        time.sleep(at)
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        try:
            rc: int | None = proc.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
            proc.kill()
            proc.wait()
        exit_s = time.monotonic() - t0
        for t in threads:
            t.join(10)
        before = triggers(sink)
        proc, url = start(home, env)
        restarted = time.monotonic()
        time.sleep(after)
        ids = stored(url)
        after_restart = triggers(sink)
        proc.terminate()
        proc.wait(30)
        late = [t - restarted for p, t in sink.times if p == "/v2/enqueue"]
    told = Counter(after_restart)
    return {
        "signal": sig,
        "at_s": at,
        "webhooks_accepted": len(accepted),
        "exit_s": round(exit_s, 2),
        "exit_code": rc,
        "stored": len(ids),
        "paged_before_restart": len(set(before) & ids),
        "never_paged": len(ids - set(told)),
        "paged_twice": sum(1 for n in told.values() if n > 1),
        "last_page_after_restart_s": round(max(late), 2) if late else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--signal", default="KILL", choices=["KILL", "TERM", "INT"])
    ap.add_argument("--at", type=float, nargs="+", default=[1.5])
    ap.add_argument("--after", type=float, default=20.0)
    ap.add_argument("--webhooks", type=int, default=500)
    ap.add_argument("--incidents", type=int, default=100)
    ap.add_argument("--alerts", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    for at in args.at:
        print(
            json.dumps(probe(args.signal, at, args.after, args.webhooks, args.incidents, args.alerts, args.clients)),
            flush=True,
        )


if __name__ == "__main__":
    main()

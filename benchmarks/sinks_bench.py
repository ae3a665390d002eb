"""Route notifications per second to a loopback PagerDuty-like sink (SQLite ledger), and archive
records per second to a local folder (gzip JSON Lines through fsspec).

    .venv/bin/python -m benchmarks.sinks_bench
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import httpx

from eventmgmt.archive import Archiver
from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.route.retry import Retrier
from eventmgmt.route.router import Router, default_routing
from eventmgmt.store import ensure_schema, make_engine
from tests.correlate.helpers import at, ev
from tests.support.httpsink import http_sink

ROOT = Path(__file__).resolve().parents[1]


def messages(n: int) -> list:
    corr = Correlator(default_config(), MemoryRepo())
    out = []
    for i in range(n):
        e = ev("high_error_rate", i * 0.01, pod=f"triton-m{i}-68kxfnbbb2-wbq4j", model=f"m{i}", fp=f"fp{i}")
        out += corr.process(e, e.received_at).messages
    return out


def main() -> None:
    msgs = messages(300)
    with tempfile.TemporaryDirectory() as tmp, http_sink() as sink:
        engine = make_engine(f"sqlite:///{tmp}/r.db")
        ensure_schema(engine)
        env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k", "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        router = Router(default_routing(env), engine, httpx.Client(), lambda: at(0), "http://d", Retrier(), env)
        t0 = time.perf_counter()
        for m in msgs:
            router.route(m)
        route_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for m in msgs:  # redelivery of everything: ledger hits only
            router.route(m)
        redeliver_s = time.perf_counter() - t0
        pages = len(sink.bodies("/v2/enqueue"))
        arch = Archiver(f"{tmp}/archive", batch=200)
        big = messages(6000)
        t0 = time.perf_counter()
        for m in big:
            arch.add(m)
        arch.flush()
        archive_s = time.perf_counter() - t0
        arch1 = Archiver(f"{tmp}/archive1", batch=1)
        t0 = time.perf_counter()
        for m in msgs:
            arch1.add(m)
        archive1_s = time.perf_counter() - t0
    out = {
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "route_notifications_per_s": round(pages / route_s, 1),
        "route_redelivery_checks_per_s": round(len(msgs) / redeliver_s, 1),
        "pages_sent": pages,
        "archive_messages_per_s_batch_200": round(len(big) / archive_s),
        "archive_messages_per_s_batch_1": round(len(msgs) / archive1_s),
    }
    (ROOT / "docs" / "bench-sinks.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Ingest parse throughput per format: parse + classify + filter, one process, one core.

.venv/bin/python -m benchmarks.parse_bench
"""

from __future__ import annotations

import json
import platform
import time
from collections import defaultdict
from pathlib import Path

from eventmgmt.classify import classify, filter_reason
from eventmgmt.config import default_config
from eventmgmt.sources import ParseContext, parse
from eventmgmt.timeutil import parse_ts

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT.parent / "shared" / "scenarios"
PAYLOADS = ROOT / "tests" / "ingest" / "payloads"


def samples() -> dict[str, list[tuple[object, int]]]:
    by_source: dict[str, list[tuple[object, int]]] = defaultdict(list)
    for name in ("public-1", "public-2"):
        for line in (SCENARIOS / name / "captures.jsonl").read_text().splitlines():
            cap = json.loads(line)
            by_source[cap["source"]].append((cap["body"], 0))
    by_source["cloudevent"].append((json.loads((PAYLOADS / "cloudevent_structured.json").read_text()), 0))
    return by_source


def main() -> None:
    cfg = default_config()
    ctx = ParseContext("bench", parse_ts("2026-11-20T10:00:00Z"))
    rows = []
    for source, bodies in sorted(samples().items()):
        n_events = 0
        t0 = time.perf_counter()
        rounds = 0
        while time.perf_counter() - t0 < 2.0:
            for body, _ in bodies:
                for ev in parse(source, body, ctx):
                    ev = classify(ev, cfg)
                    filter_reason(ev, cfg)
                    n_events += 1
            rounds += 1
        dt = time.perf_counter() - t0
        rows.append(
            {"source": source, "events": n_events, "seconds": round(dt, 2), "events_per_s": round(n_events / dt)}
        )
    out = {"machine": f"{platform.machine()} Python {platform.python_version()}", "rows": rows}
    (ROOT / "docs" / "bench-parse.json").write_text(json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['source']:14} {r['events_per_s']:>8} events/s")


if __name__ == "__main__":
    main()

"""The storm's drain alone, in this process: what correlating an accepted storm costs, without HTTP,
a second process or the scheduling of either.

`storm_bench`'s storm (PODS pods of MODELS models crash-looping, then their models erroring: 2 x PODS
alerts in Alertmanager webhooks of BATCH) is accepted by the embedded runtime's ingest with its drain
stopped, so the whole storm waits in the durable queue; then the drain's own `step` takes it in this
thread, as the correlating process's drain thread would (build, enrich, correlate on SQLite, hand on
to route with a PagerDuty receiver on a loopback sink, and to archive). Measured per round, on a
fresh home each: alerts/s by the wall clock and by this process's CPU time, the correlation
transactions, the incidents. The served storm's "correlated alerts/s" (`storm_bench`) is this plus
HTTP, the hand-over between processes, and whatever else the machine runs; this one moves less with
the machine, so it is the one to compare two versions of the code with (alternate them: PYTHONPATH
at a worktree of each).

    .venv/bin/python -m benchmarks.drain_bench [--pods N] [--rounds N] [--database postgresql] [--out PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from benchmarks.common import calibration_ms, machine
from benchmarks.storm_bench import pd_env, storm_requests
from eventmgmt.runtime.app import build_runtime
from eventmgmt.runtime.build_ahead import BuildAhead
from eventmgmt.runtime.drain import Drainer
from eventmgmt.settings import DATABASE_URL, Settings
from eventmgmt.store.tables import IncidentRow
from tests.support.httpsink import http_sink
from tests.support.pg import pg_schema

ROOT = Path(__file__).resolve().parents[1]
JSON = {"content-type": "application/json"}


def drain_round(
    bodies: list[tuple[bytes, int]], alerts: int, home: Path, env: dict[str, str], build_process: bool = False
) -> dict[str, Any]:
    os.environ.update(env)
    rt = build_runtime(Settings(home=home))
    try:
        drainer = rt.drainer
        if not isinstance(drainer, Drainer):
            raise SystemExit("the embedded runtime has no drain of its own here")
        drainer.close()  # NOTE: the thread stops; its `step` is ours to call
        if build_process:
            # NOTE: as the correlating process of `serve` has it (EVENTMGMT_BUILD_PROCESS)
            drainer.ahead = BuildAhead(rt.settings.queue_path, rt.config, rt.ingest.limits).start()
            if not drainer.ahead.wait_ready(30):
                raise SystemExit("the build process did not start")
        for body, _ in bodies:
            answer = rt.ingest.handle("alertmanager", JSON, body)
            if answer.status != 202:
                raise SystemExit(f"ingest answered {answer.status}: {answer.body!r}")
        # NOTE: as the correlating process sets its collector before it drains
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
        steps = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        while drainer.step():
            steps += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ahead = drainer.ahead
        built_ahead = ahead.ahead_rows if isinstance(ahead, BuildAhead) else 0
        with Session(rt.engine) as s:
            incidents = s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.status == "open"))
    finally:
        rt.stop()
        gc.unfreeze()
    return {
        "alerts": alerts,
        "seconds": round(wall, 3),
        "alerts_per_s": round(alerts / wall, 1),
        "alerts_per_cpu_s": round(alerts / cpu, 1),
        "transactions": steps,
        "open_incidents": incidents,
        "rows_built_ahead": built_ahead,
    }


@contextmanager
def state(database: str) -> Iterator[dict[str, str]]:
    """The environment that puts correlation's state in `database`. NOTE: on PostgreSQL the CPU
    time per alert is this process's alone; the server's is not counted."""
    if database == "sqlite":
        os.environ.pop(DATABASE_URL, None)
        yield {}
        return
    with pg_schema() as url:
        try:
            yield {DATABASE_URL: url}
        finally:
            os.environ.pop(DATABASE_URL, None)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=2000, help="storm pods (two alerts each)")
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--pods-per-node", type=int, default=8)
    ap.add_argument("--order", choices=["pod", "alertname"], default="pod", help="as storm_bench's --order")
    ap.add_argument("--batch", type=int, default=100, help="alerts per webhook")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--build-process",
        choices=("on", "off", "both"),
        default="both",
        help="build queued webhooks in a process of their own (as `serve` does), in the drain, or both in turns",
    )
    ap.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where correlation keeps its state: the home's SQLite file, or a fresh schema of the machine's PostgreSQL each round",
    )
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-drain.json"))
    args = ap.parse_args(argv)
    alerts, _, _, bodies = storm_requests(args)
    rounds = []
    result: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).date().isoformat(),
        "command": " ".join(["python -m benchmarks.drain_bench", *argv]),
        "database": args.database,
        "calibration_ms_at_start": calibration_ms(),
    }
    # NOTE: a first small drain pays the lazy imports and the statements' first compilation, as
    # storm_bench's warm-up alert does for a fresh `serve`
    with tempfile.TemporaryDirectory(prefix="drain-bench-") as home, http_sink() as sink, state(args.database) as db:
        drain_round(bodies[:2], sum(n for _, n in bodies[:2]), Path(home), pd_env(sink) | db)
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.build_process]
    for _ in range(args.rounds):
        for build_process in modes:
            with (
                tempfile.TemporaryDirectory(prefix="drain-bench-") as home,
                http_sink() as sink,
                state(args.database) as db,
            ):
                calibration = calibration_ms()
                found = drain_round(bodies, len(alerts), Path(home), pd_env(sink) | db, build_process)
                rounds.append({**found, "build_process": build_process, "calibration_ms": calibration})
            print(json.dumps(rounds[-1]), flush=True)
    result |= {"rounds": rounds, "calibration_ms_at_end": calibration_ms()}
    for build_process in modes:
        mine = [r for r in rounds if r["build_process"] == build_process]
        rates = [r["alerts_per_s"] for r in mine]
        result["build_process" if build_process else "drain_builds"] = {
            "alerts_per_s_median": statistics.median(rates),
            "alerts_per_s_range": [min(rates), max(rates)],
            "alerts_per_cpu_s_median": statistics.median(r["alerts_per_cpu_s"] for r in mine),
        }
        print(f"{'build process' if build_process else 'drain builds'}: median {statistics.median(rates)} alerts/s")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

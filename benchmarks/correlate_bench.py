"""Correlation benchmarks: replay throughput and memory at 1x/10x/100x the public scenarios, and the
per-event correlation cost as open incidents grow to 10,000 (memory and SQLite repositories).

    .venv/bin/python -m benchmarks.correlate_bench [--quick]

Ratios within one run matter; absolute figures depend on the (shared, noisy) machine."""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT.parent / "shared" / "scenarios"


def _models(records: list[dict]) -> set[str]:
    found: set[str] = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "model" and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(records)
    return found


def _rename(x: object, tag: str, models: set[str]) -> object:
    """Every node, pod, model and source identity of a capture moved to copy `tag`."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if k in ("fingerprint", "uid", "auditID", "pod_id", "docker_id") and isinstance(v, str):
                out[k] = f"{tag}{v}"
            else:
                out[k] = _rename(v, tag, models)
        return out
    if isinstance(x, list):
        return [_rename(v, tag, models) for v in x]
    if isinstance(x, str):
        x = x.replace("gke-inference-prod-gpu-pool-", f"gke-inference-prod-gpu-pool-{tag}")
        x = x.replace("triton-", f"triton{tag}-")
        for m in models:
            x = x.replace(f"'{m}'", f"'{tag}{m}'").replace(f" {m}:", f" {tag}{m}:")
            if x == m:
                x = f"{tag}{m}"
        return x
    return x


def scaled_captures(copies: int) -> Iterator[str]:
    """`copies` copies of both public scenarios, each copy on its own renamed nodes, pods and models,
    interleaved on the same timeline: more concurrent incidents, not a longer day. Streams."""
    base: list[dict] = []
    for name in ("public-2", "public-1"):  # chronological: 2026-11-04, then 2026-11-07
        base += [json.loads(line) for line in (SCENARIOS / name / "captures.jsonl").read_text().splitlines()]
    models = _models(base)
    for cap in base:
        yield json.dumps(cap)
        for c in range(1, copies):
            tag = f"x{c}"
            yield json.dumps(dict(cap, id=f"{tag}{cap['id']}", body=_rename(cap["body"], tag, models)))


def replay_child(copies: int) -> dict:
    """Runs in a fresh process so its peak RSS is its own; replays from a file, streaming."""
    from eventmgmt.config import default_config
    from eventmgmt.replay import run_replay

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "captures.jsonl"
        with path.open("w") as f:
            n = 0
            for line in scaled_captures(copies):
                f.write(line + "\n")
                n += 1
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        result = run_replay(str(path), default_config(), str(Path(tmp) / "report.json"))
        dt = time.perf_counter() - t0
    return {
        "copies": copies,
        "captures": n,
        "events": result.events,
        "incidents": result.incident_count,
        "seconds": round(dt, 3),
        "events_per_s": round(result.events / dt),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_replay_mb": round(rss_before, 1),
    }


def replay_scaling(scales: list[int]) -> list[dict]:
    rows = []
    for copies in scales:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.correlate_bench", "--child", str(copies)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def open_incident_cost(sizes: list[int], probes: int, sql: bool) -> list[dict]:
    """Per-event cost with N open (firing) incidents already live, four pods to a node (so the
    incidents sharing a key with each event stay the same while the total grows)."""
    from eventmgmt.config import default_config
    from eventmgmt.correlate.engine import Correlator
    from eventmgmt.correlate.repo import MemoryRepo
    from eventmgmt.correlate.sqlrepo import SqlRepo, locked_session
    from eventmgmt.model import Event, EventClass, Origin, Resources, Severity, Status
    from eventmgmt.store import ensure_schema, make_engine
    from tests.correlate.helpers import T0

    cfg = default_config()

    def alert(i: int, kind: str, minute: float, tag: str) -> Event:
        pod = f"triton-m{i}-68kxfnbbb2-{tag}"
        return Event(
            id=f"bench:{tag}:{i}:{kind}",
            fingerprint=f"fp:{tag}:{i}:{kind}",
            source="alertmanager",
            signal=kind,
            kind=kind,
            cls=EventClass.alert,
            severity=Severity.high,
            status=Status.firing,
            occurred_at=T0 + timedelta(minutes=minute),
            received_at=T0 + timedelta(minutes=minute),
            resources=Resources(namespace="inference", pod=pod, node=f"node-{i // 4}", model=f"m{i}"),
            origin=Origin(capture=f"b{i}"),
        )

    rows = []
    for n in sizes:
        now = T0 + timedelta(minutes=5)
        if sql:
            tmp = tempfile.mkdtemp()
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            ensure_schema(engine)
            with locked_session(engine) as s:
                repo = SqlRepo(s, cfg.chains, cfg.response)
                corr = Correlator(cfg, repo)
                for i in range(n):
                    corr.process(alert(i, "pod_oom", 0, "bbbbb"), now)
                repo.finish()  # NOTE: events and index rows are written here
            t0 = time.perf_counter()
            for j in range(probes):
                with locked_session(engine) as s:
                    repo = SqlRepo(s, cfg.chains, cfg.response)
                    corr = Correlator(cfg, repo)
                    # half join a live incident, half open a new one
                    i = j % n if j % 2 == 0 else n + j
                    corr.process(alert(i, "model_unavailable", 1, "bbbbb"), now)
                    repo.finish()
            dt = time.perf_counter() - t0
            engine.dispose()
        else:
            corr = Correlator(cfg, MemoryRepo())
            for i in range(n):
                corr.process(alert(i, "pod_oom", 0, "bbbbb"), now)
            t0 = time.perf_counter()
            for j in range(probes):
                i = j % n if j % 2 == 0 else n + j
                corr.process(alert(i, "model_unavailable", 1, "bbbbb"), now)
            dt = time.perf_counter() - t0
        rows.append(
            {"open_incidents": n, "repo": "sqlite" if sql else "memory", "us_per_event": round(dt / probes * 1e6, 1)}
        )
    base = rows[0]["us_per_event"]
    for r in rows:
        r["ratio_vs_smallest"] = round(r["us_per_event"] / base, 2)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench-correlate.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(replay_child(args.child)))
        return
    scales = [1, 10] if args.quick else [1, 10, 100]
    results = {
        "machine": f"{platform.machine()} {platform.python_version()} {platform.node()}",
        "replay": replay_scaling(scales),
        "open_incidents_memory": open_incident_cost([10, 100, 1000, 10000], 2000, sql=False),
        "open_incidents_sqlite": open_incident_cost([10, 1000, 10000], 300, sql=True),
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

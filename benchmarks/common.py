"""Small pieces the benchmarks share: the Alertmanager webhook envelope, percentiles, and the memory
of a process read from /proc (Linux)."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from tests.support.procmem import tree_kb


def machine() -> str:
    return f"{platform.machine()} Python {platform.python_version()}"


def calibration_ms(repeat: int = 3) -> float:
    """Milliseconds this machine takes, now, for a fixed piece of the work we do (JSON both ways,
    SHA-256, ISO times, dicts): the best of `repeat`. These machines are shared and their speed
    drifts by 2x over hours; a figure read against the calibration taken beside it compares across
    runs and sessions, where the figure alone does not."""
    doc = {"labels": {"alertname": "KubePodCrashLooping", "pod": "triton-0", "node": "gpu-0"}, "startsAt": ""}
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(20_000):
            doc["startsAt"] = f"2026-11-28T08:{i % 60:02d}:00Z"
            text = json.dumps(doc, sort_keys=True)
            hashlib.sha256(json.loads(text)["labels"]["pod"].encode() + text.encode()).hexdigest()
            datetime.fromisoformat(doc["startsAt"])
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def webhook(alerts: list[dict[str, Any]], receiver: str = "bench") -> dict[str, Any]:
    """The body Alertmanager's webhook receiver (version 4) posts for one group of `alerts`."""
    return {
        "version": "4",
        "status": "firing",
        "receiver": receiver,
        "groupKey": "{}:{}",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@contextmanager
def rss_samples(pid: int, every: float = 0.1) -> Iterator[list[tuple[float, int]]]:
    """Samples VmRSS of `pid` and its children every `every` seconds on a thread: (time.perf_counter(), kB)."""
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            kb = tree_kb(pid, "VmRSS")
            if kb is not None:
                samples.append((time.perf_counter(), kb))
            stop.wait(every)

    thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(5)

"""Small pieces the benchmarks share: the Alertmanager webhook envelope, percentiles, and the memory
of a process read from /proc (Linux)."""

from __future__ import annotations

import math
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.procmem import tree_kb


def machine() -> str:
    return f"{platform.machine()} Python {platform.python_version()}"


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

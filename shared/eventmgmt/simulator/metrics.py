"""Triton's and DCGM exporter's metric names and labels, driven by a scenario.

Values are a pure function of the scenario and of time since it started (counters integrate their
rates), so a test knows what Prometheus will see."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class Scenario:
    success_rate: float  # requests/s completed, per model
    failure_rate: float  # requests/s failed, per model
    pending: float  # requests waiting in the queue
    queue_us_per_request: float
    gpu_util: float  # 0..1
    gpu_memory_fraction: float
    xid_errors: int = 0
    ready: bool = True


SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(50.0, 0.0, 1, 800, 0.55, 0.45),
    "error_spike": Scenario(40.0, 5.0, 2, 1_500, 0.60, 0.45),
    "queue_buildup": Scenario(45.0, 0.0, 180, 250_000, 0.85, 0.60),
    "gpu_saturation": Scenario(45.0, 0.0, 40, 40_000, 0.99, 0.97),
    "model_unavailable": Scenario(0.0, 30.0, 0, 0, 0.02, 0.10, xid_errors=0, ready=False),
}


@dataclass(frozen=True)
class Target:
    model: str
    version: str = "1"
    gpu_uuid: str = "GPU-5d7c6a1e-0000-4000-8000-000000000001"
    gpu_index: str = "0"
    hostname: str = "gpu-node-1"
    pod: str = "triton-0"
    namespace: str = "inference"


def _counter(name: str, doc: str) -> Metric:
    # NOTE: Triton names its counters without the `_total` suffix prometheus_client adds to counter
    # families; samples keep Triton's exact names (only the TYPE comment line carries `_total`).
    return Metric(name, doc, "counter")


class TritonSimulator(Collector):
    def __init__(
        self, targets: list[Target], scenario: str = "healthy", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.targets = targets
        self.clock = clock
        self._lock = threading.Lock()
        self._totals = {t.model: [0.0, 0.0, 0.0] for t in targets}  # success, failure, queue_us
        self._since = clock()
        self._scenario = SCENARIOS[scenario]
        self.scenario_name = scenario

    def set_scenario(self, name: str) -> None:
        if name not in SCENARIOS:
            raise KeyError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
        with self._lock:
            self._advance()
            self._scenario = SCENARIOS[name]
            self.scenario_name = name

    def _advance(self) -> None:
        now = self.clock()
        dt, self._since = now - self._since, now
        s = self._scenario
        for totals in self._totals.values():
            totals[0] += s.success_rate * dt
            totals[1] += s.failure_rate * dt
            totals[2] += s.queue_us_per_request * s.success_rate * dt

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._advance()
            s = self._scenario
            totals = {k: list(v) for k, v in self._totals.items()}
        mv = ["model", "version"]
        success = _counter("nv_inference_request_success", "Number of successful inference requests")
        failure = _counter("nv_inference_request_failure", "Number of failed inference requests")
        count = _counter("nv_inference_count", "Number of inferences performed")
        queue = _counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds")
        pending = GaugeMetricFamily(
            "nv_inference_pending_request_count", "Instantaneous number of pending requests", labels=mv
        )
        util = GaugeMetricFamily("nv_gpu_utilization", "GPU utilization rate [0.0 - 1.0)", labels=["gpu_uuid"])
        mem_used = GaugeMetricFamily("nv_gpu_memory_used_bytes", "GPU used memory, in bytes", labels=["gpu_uuid"])
        mem_total = GaugeMetricFamily("nv_gpu_memory_total_bytes", "GPU total memory, in bytes", labels=["gpu_uuid"])
        dcgm_labels = ["gpu", "UUID", "device", "modelName", "Hostname", "container", "namespace", "pod"]
        dcgm_util = GaugeMetricFamily("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=dcgm_labels)
        dcgm_fb = GaugeMetricFamily("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=dcgm_labels)
        dcgm_xid = GaugeMetricFamily(
            "DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", labels=dcgm_labels
        )
        total_bytes = 80 * 1024**3
        for t in self.targets:
            ok, bad, queued = totals[t.model]
            for fam, value in ((success, ok), (failure, bad), (count, ok), (queue, queued)):
                fam.add_sample(fam.name, {"model": t.model, "version": t.version}, value)
            pending.add_metric([t.model, t.version], s.pending)
            util.add_metric([t.gpu_uuid], s.gpu_util)
            mem_used.add_metric([t.gpu_uuid], s.gpu_memory_fraction * total_bytes)
            mem_total.add_metric([t.gpu_uuid], total_bytes)
            dl = [
                t.gpu_index,
                t.gpu_uuid,
                f"nvidia{t.gpu_index}",
                "NVIDIA A100-SXM4-80GB",
                t.hostname,
                "triton",
                t.namespace,
                t.pod,
            ]
            dcgm_util.add_metric(dl, round(s.gpu_util * 100))
            dcgm_fb.add_metric(dl, round(s.gpu_memory_fraction * 81920))
            dcgm_xid.add_metric(dl, s.xid_errors)
        yield from (success, failure, count, queue, pending, util, mem_used, mem_total, dcgm_util, dcgm_fb, dcgm_xid)

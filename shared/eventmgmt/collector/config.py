"""Collector configuration: PromQL threshold rules with `for` durations (the `collector:` section)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..config import Duration

# Label sets: how a Triton series is kept apart (Prometheus adds pod and namespace when scraping).
BY_MODEL = "model, version, pod, namespace"
BY_GPU = "gpu_uuid, UUID, gpu, Hostname, pod, namespace"


class Rule(BaseModel):
    """An alert the collector evaluates: `expr` returns the series in breach (a PromQL comparison)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="signal name of the events, e.g. TritonHighErrorRate")
    expr: str
    for_: Duration = Field(default=timedelta(0), alias="for")
    severity: str = "warning"
    summary: str = ""


DEFAULT_RULES = [
    Rule(
        name="TritonHighErrorRate",
        severity="critical",
        summary="Triton failures above 0.01/s",
        expr=f"sum by ({BY_MODEL}) (rate(nv_inference_request_failure[5m])) > 0.01",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="TritonHighQueueDepth",
        severity="warning",
        summary="requests pending in Triton's queue",
        expr=f"sum by ({BY_MODEL}) (nv_inference_pending_request_count) > 100",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="TritonHighQueueDuration",
        severity="warning",
        summary="mean queue time above 100 ms",
        expr=f"sum by ({BY_MODEL}) (rate(nv_inference_queue_duration_us[5m])) / "
        f"clamp_min(sum by ({BY_MODEL}) (rate(nv_inference_request_success[5m])), 1e-9) > 100000",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="GPUHighUtilization",
        severity="warning",
        summary="GPU utilisation above 95%",
        expr="max by (gpu, UUID, Hostname, pod, namespace) (DCGM_FI_DEV_GPU_UTIL) > 95",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="TritonGPUHighUtilization",
        severity="warning",
        summary="Triton reports GPU utilisation above 95%",
        expr="max by (gpu_uuid, pod, namespace) (nv_gpu_utilization) > 0.95",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="GPUMemoryHigh",
        severity="warning",
        summary="GPU memory above 95%",
        expr="max by (gpu_uuid, pod, namespace) (nv_gpu_memory_used_bytes / nv_gpu_memory_total_bytes) > 0.95",
        **{"for": timedelta(minutes=5)},
    ),
    Rule(
        name="DCGMXidError",
        severity="critical",
        summary="GPU XID error reported",
        expr="max by (gpu, UUID, Hostname, pod, namespace) (DCGM_FI_DEV_XID_ERRORS) > 0",
    ),
]


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=lambda: list(DEFAULT_RULES))
    kubernetes: bool = True
    namespaces: list[str] = Field(default_factory=list, description="empty: all namespaces")


def collector_config(section: Any) -> CollectorConfig:
    return CollectorConfig.model_validate(section or {})

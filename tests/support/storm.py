"""A storm as Alertmanager sends it: pods of 20 models crash-looping and erroring, one distinct alert
each, grouped into webhooks (used by tests/reliability and benchmarks/accept_bench.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

MODELS = 20


def storm_alert(i: int, t0: datetime) -> dict[str, Any]:
    """Alert i of a storm: model i % 20, pod i // 40 of it, crash-looping or erroring in turn."""
    model = f"resnet{i % MODELS:02d}"
    pod = f"triton-{model}-7f9c6d{(i // (2 * MODELS)) % 1000:03d}-x{(i // (2 * MODELS)) % 7}q"
    crash = (i // MODELS) % 2 == 0
    labels = {
        "alertname": "KubePodCrashLooping" if crash else "TritonHighErrorRate",
        "severity": "critical",
        "namespace": "inference",
        "model": model,
        "pod": pod,
    }
    starts = (t0 + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "restarting" if crash else "errors above 5%"},
        "startsAt": starts,
        "fingerprint": f"{i:016x}",
    }


def webhook(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "eventmgmt", "groupKey": "{}:{}", "alerts": alerts}


def storm(n: int, per: int, t0: datetime) -> list[dict[str, Any]]:
    """n alerts in webhooks of `per`."""
    alerts = [storm_alert(i, t0) for i in range(n)]
    return [webhook(alerts[i : i + per]) for i in range(0, n, per)]

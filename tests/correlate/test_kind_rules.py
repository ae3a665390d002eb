"""Default kind rules recognise the standard signals beyond the ones in the public captures."""

from __future__ import annotations

import pytest

from eventmgmt.classify import classify
from eventmgmt.config import default_config
from eventmgmt.model import Event

from .helpers import at

CASES = [
    # (source, signal, labels, summary) -> (kind, class)
    (("alertmanager", "KubePodOOMKilled", {}, ""), ("pod_oom", "alert")),
    (("alertmanager", "ContainerOOMKilled", {}, ""), ("pod_oom", "alert")),
    (("alertmanager", "TritonModelNotReady", {}, ""), ("model_unavailable", "alert")),
    (("alertmanager", "TritonInferenceErrorRateHigh", {}, ""), ("high_error_rate", "alert")),
    (("alertmanager", "TritonRequestFailures", {}, ""), ("high_error_rate", "alert")),
    (("alertmanager", "TritonQueueDurationHigh", {}, ""), ("high_queue_depth", "alert")),
    (("alertmanager", "DCGMGPUUtilizationHigh", {}, ""), ("gpu_high_util", "alert")),
    (("alertmanager", "GPUXidErrors", {}, ""), ("gpu_xid_error", "alert")),
    (("alertmanager", "KubeNodeUnreachable", {}, ""), ("node_not_ready", "alert")),
    (("alertmanager", "KubeStatefulSetReplicasMismatch", {}, ""), ("reduced_capacity", "alert")),
    (("alertmanager", "Watchdog", {}, ""), ("watchdog", "info")),
    (("alertmanager", "SomeTeamSpecificAlert", {"severity": "critical"}, ""), ("some_team_specific_alert", "alert")),
    (("k8s-event", "BackOff", {"object_kind": "Pod", "type": "Warning"}, ""), ("pod_crash_loop", "alert")),
    (("k8s-event", "Unhealthy", {"object_kind": "Pod", "type": "Warning"}, ""), ("pod_not_ready", "alert")),
    (("k8s-event", "SystemOOM", {"object_kind": "Node", "type": "Warning"}, ""), ("pod_oom", "alert")),
    (("k8s-event", "NodeNotReady", {"object_kind": "Node", "type": "Normal"}, ""), ("node_not_ready", "alert")),
    (("k8s-event", "Scheduled", {"object_kind": "Pod", "type": "Normal"}, ""), ("pod_lifecycle", "info")),
    (("k8s-event", "Killing", {"object_kind": "Pod", "type": "Normal"}, ""), ("pod_stop", "change")),
    (("k8s-audit", "NodeCordon", {"code": "200", "user": "alice"}, ""), ("node_drain", "change")),
    (("k8s-audit", "NodeCordon", {"code": "403", "user": "alice"}, ""), ("audit", "info")),
    (("k8s-audit", "DeploymentScale", {"code": "200", "user": "bob"}, ""), ("deployment_scale", "change")),
    (
        ("k8s-audit", "DeploymentScale", {"code": "200", "user": "system:serviceaccount:kube-system:hpa"}, ""),
        ("scaling", "info"),
    ),
    (
        ("log", "triton", {"level": "error"}, "failed to load 'bert' version 1: Internal"),
        ("model_load_failed", "alert"),
    ),
    (("log", "triton", {"level": "info"}, "successfully loaded 'bert'"), ("model_loaded", "info")),
    (("log", "triton", {"level": "fatal"}, "segfault"), ("process_crash", "alert")),
]


@pytest.mark.parametrize(("given", "want"), CASES, ids=[f"{c[0][0]}:{c[0][1]}" for c in CASES])
def test_default_kind_rules(given, want):
    source, signal, labels, summary = given
    e = Event(
        id="x",
        fingerprint="f",
        source=source,
        signal=signal,
        labels=labels,
        summary=summary,
        occurred_at=at(0),
        received_at=at(0),
    )
    got = classify(e, default_config())
    assert (got.kind, got.cls.value) == want

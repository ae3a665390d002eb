"""Kubernetes Warning events open an incident only once they persist (issue 12), like Alertmanager's
`for`: one readiness-probe failure during start-up, or a FailedScheduling for a volume bound a second
later, pages nobody; the same event repeated (its `count`) or lasting (first to last seen) does. They
still join an incident at once. Run through replay: parse, classify, correlate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventmgmt.config import ConfigError, default_config, parse_config
from eventmgmt.replay import replay

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def k8s_event(
    reason: str,
    pod: str,
    *,
    count: int = 1,
    first: float = 0.0,
    last: float = 0.0,
    message: str = "",
    uid: str | None = None,
    kind: str = "Pod",
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{pod}.{reason}", "namespace": "inference", "uid": uid or f"uid-{pod}-{reason}"},
        "involvedObject": {"kind": kind, "name": pod, "namespace": "inference"},
        "reason": reason,
        "message": message or reason,
        "type": "Warning",
        "count": count,
        "firstTimestamp": iso(T0 + timedelta(seconds=first)),
        "lastTimestamp": iso(T0 + timedelta(seconds=last)),
        "source": {"component": "kubelet", "host": "gpu-node-1"},
    }


def alert(name: str, pod: str, at: float, model: str = "llama") -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": name,
                    "severity": "critical",
                    "pod": pod,
                    "model": model,
                    "namespace": "inference",
                },
                "startsAt": iso(T0 + timedelta(seconds=at)),
                "fingerprint": f"fp-{name}-{pod}",
            }
        ],
    }


def capture(i: int, source: str, body: dict[str, Any], at: float) -> str:
    received = iso(T0 + timedelta(seconds=at + 1))
    return json.dumps({"id": f"c{i:04d}", "received_at": received, "source": source, "body": body})


def incidents(lines: list[str], config: Any = None) -> list[dict[str, Any]]:
    return [i for i in replay(lines, config or default_config()).incidents if i["kind"] == "incident"]


READINESS = "Readiness probe failed: Get http://10.0.0.5:8000/v2/health/ready: connection refused"


def test_one_readiness_probe_failure_during_start_up_opens_nothing() -> None:
    lines = [capture(0, "k8s-event", k8s_event("Unhealthy", "triton-llama-0", message=READINESS), 0)]
    assert incidents(lines) == []


def test_a_failed_scheduling_resolved_a_second_later_opens_nothing() -> None:
    msg = "0/8 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    lines = [capture(0, "k8s-event", k8s_event("FailedScheduling", "triton-llama-0", message=msg), 0)]
    assert incidents(lines) == []


@pytest.mark.parametrize(
    ("count", "first", "last"),
    [
        (3, 0.0, 20.0),  # failed three probes in a row: the default failureThreshold
        (2, 0.0, 90.0),  # still failing a minute and a half after the first failure
    ],
)
def test_a_warning_that_persists_opens_an_incident(count: int, first: float, last: float) -> None:
    ev = k8s_event("Unhealthy", "triton-llama-0", count=count, first=first, last=last, message=READINESS)
    (inc,) = incidents([capture(0, "k8s-event", ev, last)])
    assert inc["events"] == [{"capture": "c0000", "index": 0}]


def test_repeats_of_one_event_open_the_incident_when_the_count_gets_there() -> None:
    """The event exporter sends the same Event again each time its count goes up."""
    lines = [
        capture(
            i, "k8s-event", k8s_event("Unhealthy", "triton-llama-0", count=n, last=10.0 * i, message=READINESS), 10 * i
        )
        for i, n in enumerate((1, 2, 3))
    ]
    (inc,) = incidents(lines)
    assert {"capture": "c0002", "index": 0} in inc["events"]
    assert inc["root_cause"] == {"capture": "c0002", "index": 0}


def test_a_single_warning_still_joins_an_open_incident_at_once() -> None:
    lines = [
        capture(0, "alertmanager", alert("TritonModelUnavailable", "triton-llama-0", 0), 0),
        capture(1, "k8s-event", k8s_event("Unhealthy", "triton-llama-0", first=5, last=5, message=READINESS), 5),
    ]
    (inc,) = incidents(lines)
    assert {"capture": "c0001", "index": 0} in inc["events"]


def test_the_rule_is_configurable_per_kind() -> None:
    config = parse_config(
        {
            "correlation": {
                "persistence": [{"kind": "pod_unschedulable", "count": 1}, {"kind": "pod_not_ready", "count": 5}]
            }
        }
    )
    sched = capture(0, "k8s-event", k8s_event("FailedScheduling", "triton-llama-0"), 0)
    assert len(incidents([sched], config)) == 1  # NOTE: count 1 is enough for this kind now
    probe = capture(0, "k8s-event", k8s_event("Unhealthy", "triton-llama-1", count=3, last=20, message=READINESS), 20)
    assert incidents([probe], config) == []  # NOTE: 3 of 5, and no `for` given: not yet


def test_other_warnings_open_at_once_as_before() -> None:
    """A node going NotReady, an OOM kill: facts, not probes; no persistence rule by default."""
    lines = [
        capture(0, "k8s-event", k8s_event("OOMKilling", "triton-llama-0", message="Memory cgroup out of memory"), 0)
    ]
    assert len(incidents(lines)) == 1


def test_a_rule_without_count_or_for_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"correlation": {"persistence": [{"kind": "pod_not_ready"}]}})
    assert "correlation.persistence.0" in str(err.value) and "`count` or `for`" in str(err.value)

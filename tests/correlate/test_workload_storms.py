"""Storms of pods whose alerts name no model: the workload their names give (a DaemonSet's, a Job's:
`generateName`'s suffix) groups the pods that failed together into one incident and one page, as
a Deployment's or StatefulSet's pods are; pods of one workload failing apart, or two workloads
failing together, stay apart. Replayed end to end (parse, classify, enrich, correlate, route with
the product's group wait)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventmgmt.config import default_config
from eventmgmt.replay import replay

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _alert(pod: str, node: str, starts: datetime, rng: random.Random, alertname: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": alertname,
            "cluster": "prod",
            "namespace": "inference",
            "pod": pod,
            "node": node,
            "container": "server",
            "severity": "critical",
            "job": "kube-state-metrics",
        },
        "annotations": {"summary": f"Pod inference/{pod} is crash looping"},
        "startsAt": _iso(starts),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{rng.getrandbits(64):016x}",
    }


def _pods(owner: str, n: int, rng: random.Random) -> list[str]:
    return [f"{owner}-{''.join(rng.choice(ALPHABET) for _ in range(5))}" for _ in range(n)]


def _captures(alerts: list[dict[str, Any]], received: datetime, batch: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{received:%H%M%S}-{i:05d}",
            "received_at": _iso(received + timedelta(seconds=i // batch)),
            "source": "alertmanager",
            "body": {
                "receiver": "events",
                "status": "firing",
                "alerts": alerts[i : i + batch],
                "groupLabels": {"namespace": "inference"},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093",
                "version": "4",
                "groupKey": '{}:{namespace="inference"}',
                "truncatedAlerts": 0,
            },
        }
        for i in range(0, len(alerts), batch)
    ]


def _storm(
    owner: str, pods: int, start: datetime, rng: random.Random, alertname: str = "KubePodCrashLooping"
) -> list[dict[str, Any]]:
    """`pods` pods of `owner`, four to a node, beginning to fail within 40 s of `start`."""
    return [
        _alert(p, f"gpu-{owner}-{i // 4:03d}", start + timedelta(seconds=rng.uniform(0, 40)), rng, alertname)
        for i, p in enumerate(_pods(owner, pods, rng))
    ]


def _replay(captures: list[dict[str, Any]]) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EVENTMGMT_GROUP_WAIT_SECONDS", raising=False)  # NOTE: the product's group wait
        return replay([json.dumps(c) for c in captures], default_config())


def _pods_by_incident(result: Any, captures: list[dict[str, Any]]) -> list[set[str]]:
    pod_of = {f"{c['id']}#{i}": a["labels"]["pod"] for c in captures for i, a in enumerate(c["body"]["alerts"])}
    return [{pod_of[f"{e['capture']}#{e['index']}"] for e in inc["events"]} for inc in result.incidents]


@pytest.mark.parametrize("owner", ["gpu-agent", "nightly-eval-28312345"], ids=["daemonset", "cronjob"])
def test_a_storm_of_one_generated_workload_is_one_incident_and_one_page(owner: str) -> None:
    rng = random.Random(5)
    alerts = _storm(owner, 200, T0, rng)
    captures = _captures(alerts, T0 + timedelta(minutes=1))
    result = _replay(captures)
    groups = _pods_by_incident(result, captures)
    assert len(groups) == 1 and len(groups[0]) == 200, [len(g) for g in groups]
    assert result.pages == 1


def test_one_workloads_pods_failing_an_hour_apart_are_two_incidents() -> None:
    rng = random.Random(6)
    first = _storm("gpu-agent", 20, T0, rng)
    later = _storm("gpu-agent", 20, T0 + timedelta(hours=1), rng)
    captures = _captures(first, T0 + timedelta(minutes=1)) + _captures(later, T0 + timedelta(hours=1, minutes=1))
    groups = _pods_by_incident(_replay(captures), captures)
    first_pods = {a["labels"]["pod"] for a in first}
    assert sorted(len(g) for g in groups) == [20, 20]
    assert first_pods in groups


def test_two_workloads_failing_together_in_one_namespace_are_two_incidents() -> None:
    rng = random.Random(7)
    agents = _storm("gpu-agent", 40, T0, rng)
    jobs = _storm("batch-embed", 40, T0, rng, alertname="KubePodNotReady")
    alerts = sorted(agents + jobs, key=lambda a: a["startsAt"])
    captures = _captures(alerts, T0 + timedelta(minutes=1))
    groups = _pods_by_incident(_replay(captures), captures)
    assert sorted(len(g) for g in groups) == [40, 40]
    assert {p for g in groups for p in g if p.startswith("gpu-agent")} in groups


def test_an_exporters_alerts_about_nodes_beginning_together_stay_apart() -> None:
    """Alerts about nodes carry the node-exporter pod that was scraped: its DaemonSet is no workload
    of theirs, so three nodes' disks filling at once are three incidents, as before."""
    rng = random.Random(8)
    alerts = []
    for i in range(3):
        a = _alert(f"node-exporter-{''.join(rng.choice(ALPHABET) for _ in range(5))}", f"gpu-node-{i}", T0, rng, "X")
        a["labels"].update(alertname="NodeFilesystemAlmostOutOfSpace", namespace="monitoring", job="node-exporter")
        alerts.append(a)
    captures = _captures(alerts, T0 + timedelta(minutes=1))
    assert sorted(len(g) for g in _pods_by_incident(_replay(captures), captures)) == [1, 1, 1]

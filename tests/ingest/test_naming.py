"""The workload a pod's name says it belongs to: a Deployment's pods carry its ReplicaSet's hash and
a random suffix, a StatefulSet's an ordinal, a DaemonSet's, Job's or CronJob's the random suffix of
`generateName`; names a person chose, and hashes, name none."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService
from eventmgmt.naming import deployment_of_pod
from eventmgmt.sources.alertmanager import resources_of
from eventmgmt.transport import RecordingPublisher

PAYLOADS = Path(__file__).parent / "payloads"


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("triton-bert-large-7f9c6d8b4-x2kq9", "triton-bert-large"),
        ("triton-llama-3-8b-0", "triton-llama-3-8b"),  # StatefulSet ordinal 0
        ("phi3-mini-37", "phi3-mini"),
        ("vllm-worker-120", "vllm-worker"),
        ("node-exporter-x2kq9", "node-exporter"),  # DaemonSet: no hash, generateName's suffix
        ("batch-embed-4k7zq", "batch-embed"),  # Job
        ("nightly-eval-28312345-x2kq9", "nightly-eval"),  # CronJob: <cronjob>-<minute>-<suffix>
        ("llama-raycluster-worker-gpu-x2kq9", "llama-raycluster-worker-gpu"),  # KubeRay worker
        ("gpu-agent-24567", "gpu-agent"),
        ("api-front", None),  # a person's name: vowels are not in the suffix's alphabet
        ("triton-a1b2c", None),
        ("triton-bert-0042", None),
        ("triton-0a3f9c", None),
        ("triton-01", None),  # not an ordinal: ordinals have no leading zero
        ("inference", None),
        (None, None),
    ],
)
def test_the_workload_of_a_pod(pod: str | None, workload: str | None) -> None:
    assert deployment_of_pod(pod) == workload


@pytest.mark.parametrize(
    ("label", "value"),
    [("deployment", "triton"), ("statefulset", "vllm"), ("daemonset", "dcgm-exporter"), ("job_name", "embed")],
)
def test_an_alert_naming_its_workload_names_the_deployment_resource(label: str, value: str) -> None:
    labels = {"alertname": "X", "namespace": "ml", "pod": "a-person-chose-this", label: value}
    assert resources_of(labels).deployment == value
    # NOTE: `job` is Prometheus' scrape job, not the pod's owner; `workload` is as often a category
    assert resources_of({"alertname": "X", "job": "kube-state-metrics"}).deployment is None
    assert resources_of({"alertname": "X", "pod": "a-person-chose-this", "workload": "inference"}).deployment is None


@pytest.mark.parametrize(
    ("kind", "name", "workload"),
    [
        ("DaemonSet", "dcgm-exporter", "dcgm-exporter"),
        ("StatefulSet", "vllm", "vllm"),
        ("Job", "embed-backfill", "embed-backfill"),
        ("Job", "nightly-eval-28312345", "nightly-eval"),  # a CronJob's run: as its pods' names say
        ("Pod", "dcgm-exporter-x2kq9", "dcgm-exporter"),
        ("Node", "gpu-node-7", None),
    ],
)
def test_a_kubernetes_event_about_a_workload_names_it(kind: str, name: str, workload: str | None) -> None:
    event = json.loads((PAYLOADS / "k8s_core_event.json").read_text())
    event["involvedObject"] = {"kind": kind, "namespace": "serving", "name": name, "uid": "aa", "apiVersion": "v1"}
    event.update(reason="FailedCreate", message="Error creating: pods is forbidden")
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: datetime(2026, 11, 20, 10, 1, tzinfo=UTC))
    assert svc.handle("k8s-event", {"content-type": "application/json"}, json.dumps(event).encode()).status == 202
    (ev,) = pub.events("events-raw")
    assert ev["resources"].get("deployment") == workload


@pytest.mark.parametrize(
    "scraped",
    [
        {"job": "node-exporter", "pod": "node-exporter-x2kq9"},
        {"job": "node-exporter", "service": "prom-node-exporter", "pod": "prom-node-exporter-x2kq9"},
        {"job": "nvidia-dcgm-exporter", "pod": "nvidia-dcgm-exporter-b7wzq"},
    ],
)
def test_an_exporters_own_pod_names_no_workload(scraped: dict[str, str]) -> None:
    """The pod Prometheus scraped (an exporter's, on an alert about its node or GPU) is not the
    alert's subject: its DaemonSet would join every node's alerts."""
    assert resources_of({"alertname": "NodeFilesystemAlmostOutOfSpace", **scraped}).deployment is None
    # the workload the GPU serves (DCGM's exported_pod) still names its own
    workload = {**scraped, "exported_pod": "batch-embed-4k7zq"}
    assert resources_of({"alertname": "DCGM_FI_DEV_XID_ERRORS", **workload}).deployment == "batch-embed"

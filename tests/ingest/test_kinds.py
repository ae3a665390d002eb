"""Kinds name what is known (issue 12): a crash loop is Triton's only when the alert, the container
or its image says so; always-firing heartbeats are routine; ingress 5xx-rate alerts are error
rates. Built from real senders' payloads (tests/ingest/payloads/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventmgmt.config import default_config, parse_config
from eventmgmt.ingest import IngestService
from eventmgmt.transport import RecordingPublisher

PAYLOADS = Path(__file__).parent / "payloads"
NOW = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)


def kinds(name: str, config=None, source: str | None = None, body: bytes | None = None) -> list[dict]:
    pub = RecordingPublisher()
    svc = IngestService(config or default_config(), pub, lambda: NOW)
    resp = svc.handle(source, {"content-type": "application/json"}, body or (PAYLOADS / name).read_bytes())
    assert resp.status == 202, resp.body
    return pub.events("events-raw")


def test_crash_loop_of_a_workload_that_is_not_triton_is_a_pod_crash_loop():
    (alert,) = kinds("alertmanager_kubernetes_mixin_message.json")
    assert (alert["kind"], alert["class"], alert["resources"]["container"]) == (
        "pod_crash_loop",
        "alert",
        "oom-example",
    )
    (event,) = kinds("k8s_core_event_backoff_other.json")
    assert (event["kind"], event["resources"]["container"]) == ("pod_crash_loop", "oom-example")


def test_crash_loop_of_a_triton_container_is_a_triton_crash():
    hook = json.loads((PAYLOADS / "alertmanager_kubernetes_mixin_message.json").read_text())
    hook["alerts"][0]["labels"].update(container="triton", pod="triton-llama-7c9d8f6b5d-x2x4z")
    (alert,) = kinds("", body=json.dumps(hook).encode())
    assert alert["kind"] == "triton_crash"
    core = json.loads((PAYLOADS / "k8s_core_event.json").read_text())  # BackOff, spec.containers{triton}
    assert [e["kind"] for e in kinds("", body=json.dumps(core).encode())] == ["triton_crash"]
    # kubelet names the container only in the message when the event has no fieldPath
    del core["involvedObject"]["fieldPath"]
    core["message"] = "Back-off restarting failed container triton in pod triton-llama-7c9d8f6b5d-x2x4z_serving(aa)"
    (ev,) = kinds("", body=json.dumps(core).encode())
    assert (ev["kind"], ev["resources"]["container"]) == ("triton_crash", "triton")


def test_image_pull_back_off_is_not_a_crash():
    (event,) = kinds("k8s_core_event_backoff_pull.json")
    assert (event["kind"], event["class"]) == ("pod_not_ready", "alert")


def test_fatal_log_line_is_triton_only_in_a_triton_container():
    line = {"log": "F1120 10:00:00.000000 1 backend.cc:12] Check failed: ptr != nullptr", "stream": "stderr"}
    triton = {**line, "kubernetes": {"pod_name": "triton-llama-7c9d8f6b5d-x2x4z", "container_name": "triton"}}
    image = {
        **line,
        "kubernetes": {
            "pod_name": "infer-0",
            "container_name": "server",
            "container_image": "nvcr.io/nvidia/tritonserver:24.10-py3",
        },
    }
    other = {**line, "kubernetes": {"pod_name": "tokenizer-0", "container_name": "tokenizer"}}
    got = [e["kind"] for e in kinds("", source="log", body=json.dumps([triton, image, other]).encode())]
    assert got == ["triton_crash", "triton_crash", "process_crash"]


def test_heartbeat_alerts_are_routine_and_users_add_their_own_names():
    got = [(e["signal"], e["kind"], e["class"]) for e in kinds("alertmanager_heartbeat.json")]
    assert got[:2] == [("Heartbeat", "watchdog", "info"), ("DeadMansSwitch", "watchdog", "info")]
    assert got[2][1:] == ("pipeline_alive", "alert")  # not a usual name: it pages until listed
    mine = parse_config({"heartbeats": ["PipelineAlive"]})
    assert [(e["kind"], e["class"]) for e in kinds("alertmanager_heartbeat.json", mine)][2] == ("watchdog", "info")


def test_a_dead_mans_switch_named_with_a_prefix_is_a_heartbeat_whatever_its_severity():
    """The rule collections' always-firing `PrometheusAlertmanagerE2eDeadManSwitch` (`vector(1)`,
    labelled severity critical) is a dead man's switch: logged and watched, never a critical page."""
    (alert,) = kinds("alertmanager_e2e_dead_man_switch.json")
    assert (alert["kind"], alert["class"], alert["severity"]) == ("watchdog", "info", "info")


def test_ingress_5xx_rate_alert_families_are_high_error_rate():
    got = {
        e["signal"]: (e["kind"], e["resources"]["namespace"]) for e in kinds("alertmanager_ingress_error_rates.json")
    }
    assert got == {
        "NginxHighHttp5xxErrorRate": ("high_error_rate", "serving"),
        "triton-llama-5xx-rate": ("high_error_rate", "ingress"),
        "TraefikHighHttp5xxErrorRateService": ("high_error_rate", "traefik"),
        "HaproxyHighHttp5xxErrorRateBackend": ("high_error_rate", None),
        "prod-inference-http-error-500": ("high_error_rate", None),
        "prod-inference-502-503": ("high_error_rate", None),
        # a 4xx rate is the clients being refused, not the service failing: no error-rate page
        "NginxHighHttp4xxErrorRate": ("client_error_rate", "serving"),
    }


@pytest.mark.parametrize("kind", ["pod_crash_loop", "process_crash", "client_error_rate"])
def test_new_alert_kinds_have_a_response_row(kind):
    row = default_config().response[kind]
    assert row.action and row.severity


@pytest.mark.parametrize("kind", ["pod_crash_loop", "process_crash"])
def test_new_crash_kinds_stand_where_triton_crash_stands_in_every_chain(kind):
    for chain in default_config().chains:
        steps = [set(step) for step in chain.steps]
        assert any("triton_crash" in s for s in steps) == any(kind in s for s in steps), chain.name
        for s in steps:
            assert ("triton_crash" in s) == (kind in s), chain.name

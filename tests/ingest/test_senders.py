"""Real senders' payloads, built from each sender's documented format (tests/ingest/payloads/): each
is accepted and read as the sender meant it (issue 12). An upstream format change shows up here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService
from eventmgmt.transport import RecordingPublisher

PAYLOADS = Path(__file__).parent / "payloads"
NOW = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)


def ingest(name: str, source: str | None = None, headers: dict | None = None, body: bytes | None = None):
    """Post a payload file through the ingest service; the answer and the published events."""
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: NOW)
    resp = svc.handle(source, headers or {"content-type": "application/json"}, body or (PAYLOADS / name).read_bytes())
    assert resp.status == 202, resp.body
    assert not resp.body.get("rejected"), resp.body
    return resp.body, pub.events("events-raw")


# --- Alertmanager -------------------------------------------------------------------------------


def test_kubernetes_mixin_message_annotation_is_the_summary_and_every_annotation_is_kept():
    _, (ev,) = ingest("alertmanager_kubernetes_mixin_message.json")
    assert (
        ev["summary"] == "Pod default/oom-example-5d9c6f7b8d-kq2lm (oom-example) is restarting 1.05 times / 5 minutes."
    )
    assert ev["labels"]["annotation_message"] == ev["summary"]
    assert ev["labels"]["annotation_runbook_url"].endswith("#alert-name-kubepodcrashlooping")
    assert ev["labels"]["generator_url"].startswith("https://rancher.example.com/")
    assert ev["runbook"] == ev["labels"]["annotation_runbook_url"]


def test_runbook_annotation_is_the_alerts_own_runbook():
    _, (ev,) = ingest("alertmanager_runbook_annotation.json")
    assert ev["runbook"] == "https://docs/runbooks/triton-errors"
    assert ev["labels"]["annotation_runbook"] == "https://docs/runbooks/triton-errors"
    assert ev["labels"]["annotation_dashboard"] == "https://grafana.example.com/d/triton"
    assert ev["labels"]["generator_url"].startswith("http://prometheus.monitoring:9090/graph")


def test_alert_without_its_own_status_falls_back_to_endsat_and_the_group():
    _, events = ingest("alertmanager_trimmed_no_status.json")
    assert [(e["resources"]["model"], e["status"]) for e in events] == [("llama", "firing"), ("bert", "resolved")]
    assert events[1]["occurred_at"] == "2026-11-20T09:55:00Z"
    hook = json.loads((PAYLOADS / "alertmanager_trimmed_no_status.json").read_text())
    hook["status"] = "resolved"
    _, events = ingest("", "alertmanager", body=json.dumps(hook).encode())
    assert [e["status"] for e in events] == ["resolved", "resolved"]


def test_trimmed_alertmanager_payload_is_detected_on_plain_ingest():
    """A relay that keeps only `alerts` (no version, groupKey, receiver or status) is still told apart
    on POST /ingest by its alerts' `labels`."""
    hook = json.loads((PAYLOADS / "alertmanager_trimmed_no_status.json").read_text())
    trimmed = {"alerts": hook["alerts"]}
    body, events = ingest("", None, body=json.dumps(trimmed).encode())
    assert body["source"] == "alertmanager"
    assert [(e["resources"]["model"], e["status"]) for e in events] == [("llama", "firing"), ("bert", "resolved")]


def test_dcgm_exporter_alert_names_the_gpu_and_the_workload_not_the_exporter():
    _, (xid, mem) = ingest("alertmanager_dcgm_exporter.json")
    for ev in (xid, mem):
        r = ev["resources"]
        assert r["pod"] == "triton-llama-7c9d8f6b5d-x2x4z" and r["namespace"] == "serving", r
        assert r["container"] == "triton" and r["deployment"] == "triton-llama", r
        assert r["node"] == "gpu-node-7" and r["gpu"] == "GPU-3b9a5e1c-7d2f-4a8b-9c0e-1f2a3b4c5d6e", r
        assert r["model"] is None  # `modelName` is the GPU's model, not an inference model
    assert (xid["kind"], xid["class"], xid["severity"]) == ("gpu_xid_error", "alert", "critical")
    assert (mem["kind"], mem["class"]) == ("gpu_memory_high", "alert")


# --- CloudEvents ---------------------------------------------------------------------------------


def http_fixture(name: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of a raw HTTP request fixture (headers, a blank line, the body)."""
    head, _, body = (PAYLOADS / name).read_bytes().partition(b"\n\n")
    headers = dict(line.split(": ", 1) for line in head.decode().splitlines())
    return headers, body


def test_cloudevents_batch_mode_each_event_its_own():
    body, events = ingest("cloudevent_batch.json", headers={"content-type": "application/cloudevents-batch+json"})
    assert body["source"] == "cloudevent" and body["accepted"] == 2
    assert [(e["kind"], e["class"], e["origin"]["index"]) for e in events] == [
        ("com_example_deploy_finished", "change", 0),
        ("model_unavailable", "alert", 1),
    ]
    assert events[1]["resources"]["model"] == "llama"
    batch = json.loads((PAYLOADS / "cloudevent_batch.json").read_text())
    # detected without the batch media type too; an empty batch is allowed by the spec
    assert ingest("", None, body=json.dumps(batch).encode())[0]["accepted"] == 2
    assert ingest("", None, {"content-type": "application/cloudevents-batch+json"}, b"[]")[0]["accepted"] == 0


def test_cloudevents_batch_bad_event_refused_alone():
    batch = json.loads((PAYLOADS / "cloudevent_batch.json").read_text())
    del batch[0]["id"]
    pub = RecordingPublisher()
    resp = IngestService(default_config(), pub, lambda: NOW).handle(
        None, {"content-type": "application/cloudevents-batch+json"}, json.dumps(batch).encode()
    )
    assert resp.status == 202 and resp.body["accepted"] == 1
    assert resp.body["rejected"] == [{"index": 0, "field": "body[0].id", "error": "body[0].id: Field required"}]


def test_binary_cloudevent_with_xml_data_is_kept_with_its_data_as_text(tmp_path):
    from eventmgmt.ingest.recorder import Recorder
    from eventmgmt.sources import ParseContext, parse

    headers, raw = http_fixture("cloudevent_binary_xml.http")
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: NOW, recorder=Recorder(str(tmp_path / "rec.jsonl")))
    resp = svc.handle(None, headers, raw)
    assert resp.status == 202 and resp.body["source"] == "cloudevent", resp.body
    (ev,) = pub.events("events-raw")
    assert ev["labels"]["data"] == raw.decode() and raw.startswith(b'<much wow="xml"/>')
    assert ev["labels"]["datacontenttype"] == "application/xml; charset=utf-8"
    assert ev["signal"] == "com.example.someevent" and ev["occurred_at"] == "2018-04-05T03:56:24Z"
    # recorded in structured mode, so a replay of the capture reads the same event
    (cap,) = (json.loads(line) for line in (tmp_path / "rec.jsonl").read_text().splitlines())
    (again,) = parse(cap["source"], cap["body"], ParseContext(cap["id"], NOW))
    assert again.id == ev["id"] and again.labels["data"] == raw.decode()


def test_binary_cloudevent_without_data_or_with_binary_data():
    headers, _ = http_fixture("cloudevent_binary_xml.http")
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: NOW)
    assert svc.handle(None, {k: v for k, v in headers.items() if k != "Content-Type"}, b"").status == 202
    octets = {**headers, "Content-Type": "application/octet-stream", "ce-id": "2"}
    assert svc.handle(None, octets, b"\xff\xfe\x00\x01").status == 202
    assert pub.events("events-raw")[1]["labels"]["data_base64"] == "true"


# --- Fluent Bit ----------------------------------------------------------------------------------


def test_fluentbit_systemd_input_records_are_read_from_message():
    body, (triton, kubelet, router) = ingest("fluentbit_systemd_kubernetes.json", "log")
    assert body["accepted"] == 3
    assert (triton["kind"], triton["severity"], triton["resources"]["model"]) == ("model_load_failed", "high", "llama")
    assert (
        triton["resources"]["pod"] == "triton-llama-7c9d8f6b5d-x2x4z" and triton["labels"]["unit"] == "docker.service"
    )
    assert triton["occurred_at"] == "2026-11-20T10:00:00.500000Z"
    # kubelet's own journal: no Kubernetes metadata, the node from _HOSTNAME
    assert kubelet["resources"]["node"] == "ip-10-0-1-17" and kubelet["labels"]["identifier"] == "kubelet"
    assert kubelet["summary"].startswith('Error syncing pod, skipping err="failed to \\"StartContainer\\"')
    # Docker's journald driver: pod, namespace and container from CONTAINER_NAME; level from PRIORITY
    r = router["resources"]
    assert (r["pod"], r["namespace"], r["container"], r["node"]) == (
        "router-5d8f7c9b4-abcde",
        "serving",
        "router",
        "ip-10-0-1-18",
    )
    assert (
        router["labels"]["level"] == "warning" and router["summary"] == "upstream triton-llama returned 503, retrying"
    )
    # and found by /ingest without naming the source
    assert ingest("fluentbit_systemd_kubernetes.json")[0]["source"] == "log"


def test_fluentbit_systemd_record_without_text_is_refused_alone():
    records = json.loads((PAYLOADS / "fluentbit_systemd_kubernetes.json").read_text())
    del records[1]["MESSAGE"]
    pub = RecordingPublisher()
    resp = IngestService(default_config(), pub, lambda: NOW).handle("log", {}, json.dumps(records).encode())
    assert resp.status == 202 and resp.body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in resp.body["rejected"]] == [(1, "body[1].log")]


def test_fluentbit_json_lines_and_json_stream_formats():
    lines = (PAYLOADS / "fluentbit_json_lines.ndjson").read_bytes()
    body, events = ingest("", "log", {"content-type": "application/x-ndjson"}, lines)
    assert [e["kind"] for e in events] == ["model_load_failed", "log"] and body["accepted"] == 2
    stream = b"".join(line.strip() for line in lines.splitlines())  # json_stream: objects back to back
    assert ingest("", None, {"content-type": "application/json"}, stream)[1][0]["id"] == events[0]["id"]
    pub = RecordingPublisher()
    resp = IngestService(default_config(), pub, lambda: NOW).handle(
        "log", {"content-type": "application/x-ndjson"}, lines + b'{"log": "cut short\n'
    )
    assert resp.status == 202 and [r["index"] for r in resp.body["rejected"]] == [2]


# --- Triton's log lines (through Fluent Bit) -----------------------------------------------------


def test_triton_log_formats_are_read():
    """Triton's default and --log-format=ISO8601 lines, with messages JSON-escaped (24.06 on) or not,
    a multi-line table entry, and tritonserver's exit line (docs/protocol/extension_logging.md)."""
    _, events = ingest("triton_log_formats.json", "log")
    want = [
        ("model_loaded", "info", "llama", "loading: llama:3"),
        ("model_load_failed", "error", "llama", "failed to load 'llama' version 3: Internal"),
        ("model_load_failed", "error", "llama", "failed to load 'llama' version 3: Internal"),
        ("model_load_failed", "error", "bert", "failed to poll model 'bert': model not foun"),
        ("model_load_failed", "error", "whisper", "Poll failed for model directory 'whisper':"),
        ("log", "info", None, "\n+--------+---------+--------------------"),
        ("triton_crash", "fatal", None, "error: creating server: Internal - failed"),
        ("model_unloaded", "info", "resnet50", "successfully unloaded 'resnet50' version 1"),
    ]
    got = [(e["kind"], e["labels"]["level"], e["resources"]["model"], e["summary"]) for e in events]
    assert len(got) == len(want)
    for g, (kind, level, model, start) in zip(got, want, strict=True):
        assert g[:3] == (kind, level, model) and g[3].startswith(start), (g, start)
    assert events[1]["occurred_at"] == "2026-11-20T10:00:01Z" and events[1]["labels"]["file"] == "model_lifecycle.cc"
    assert events[4]["labels"]["file"] == "model_repository_manager.cc"
    assert (events[6]["class"], events[6]["resources"]["pod"]) == ("alert", "triton-llama-7c9d8f6b5d-x2x4z")
    # a quoted and an unquoted line of the same failure are the same problem
    assert events[1]["fingerprint"] == events[2]["fingerprint"]


# --- Kubernetes audit records, as the API server's webhook backend posts them ------------------


def test_kubectl_cordon_drain_scale_and_uncordon_audit_records():
    body, events = ingest("k8s_audit_kubectl.json", "k8s-audit")
    assert body["filtered"] == {"audit-not-complete": 1}  # the cordon's RequestReceived stage
    got = [(e["origin"]["index"], e["kind"], e["class"]) for e in events]
    assert got == [
        (1, "node_drain", "change"),  # kubectl cordon
        (2, "pod_eviction", "change"),  # kubectl drain's eviction
        (3, "audit", "info"),  # eviction refused by a PodDisruptionBudget (429)
        (4, "deployment_scale", "change"),  # kubectl scale --replicas=4
        (5, "scaling", "info"),  # the HorizontalPodAutoscaler
        (6, "audit", "info"),  # kubectl drain --dry-run=server changed nothing
        (7, "node_uncordon", "change"),  # kubectl uncordon
    ]
    cordon, evict, _, scale, hpa, dry, _ = events
    assert cordon["resources"]["node"] == "gpu-node-7" and cordon["labels"]["user"] == "alice@example.com"
    assert cordon["occurred_at"] == "2026-11-20T10:00:00.118950Z"
    assert (evict["resources"]["pod"], evict["resources"]["deployment"]) == (
        "triton-llama-7c9d8f6b5d-x2x4z",
        "triton-llama",
    )
    assert scale["labels"]["replicas"] == "4" and scale["summary"].endswith("to 4 replicas -> 200")
    assert hpa["labels"]["replicas"] == "5"
    assert dry["labels"]["dry_run"] == "true" and dry["resources"]["node"] == "gpu-node-8"


def test_cordon_by_json_patch():
    lst = json.loads((PAYLOADS / "k8s_audit_kubectl.json").read_text())
    item = lst["items"][1]
    item["requestObject"] = [{"op": "replace", "path": "/spec/unschedulable", "value": True}]
    lst["items"] = [item]
    _, (ev,) = ingest("", "k8s-audit", body=json.dumps(lst).encode())
    assert (ev["signal"], ev["kind"]) == ("NodeCordon", "node_drain")


# --- core/v1 events, as kubernetes-event-exporter posts them ------------------------------------


def test_node_not_schedulable_oom_killing_and_evicted_events():
    _, (unsched,) = ingest("k8s_core_event_node_not_schedulable.json", "k8s-event")
    assert (unsched["kind"], unsched["class"], unsched["resources"]["node"]) == ("node_drain", "change", "gpu-node-7")
    _, (oom,) = ingest("k8s_core_event_oomkilling.json", "k8s-event")
    assert (oom["kind"], oom["class"], oom["resources"]["node"]) == ("pod_oom", "alert", "gpu-node-7")
    assert "Killed process 4242 (tritonserver)" in oom["summary"]
    _, (evicted,) = ingest("k8s_core_event_evicted.json", "k8s-event")
    r = evicted["resources"]
    assert (evicted["kind"], evicted["class"]) == ("pod_eviction", "alert")
    assert (r["pod"], r["deployment"], r["node"]) == ("triton-llama-7c9d8f6b5d-x2x4z", "triton-llama", "gpu-node-7")
    assert r["container"] == "triton"  # named in the eviction manager's message


def test_event_recorded_through_events_k8s_io_reads_its_series_and_event_time():
    """The scheduler records through events.k8s.io: its core/v1 view has `eventTime` (first seen) and
    `series` (count, last seen) and no firstTimestamp, lastTimestamp or count. How often and how
    long it was seen decide whether the Warning persists; each update of the series is its own event."""
    _, (ev,) = ingest("k8s_core_event_series.json", "k8s-event")
    assert (ev["kind"], ev["resources"]["pod"]) == ("pod_unschedulable", "triton-llama-7c9d8f6b5d-q9z8x")
    assert ev["labels"]["count"] == "7" and ev["labels"]["first_seen"] == "2026-11-20T09:50:00.412345+00:00"
    assert ev["occurred_at"] == "2026-11-20T10:00:30.100000Z"
    first = json.loads((PAYLOADS / "k8s_core_event_series.json").read_text())
    del first["series"]  # as first recorded: no series yet
    _, (once,) = ingest("", "k8s-event", body=json.dumps(first).encode())
    assert "count" not in once["labels"] and once["occurred_at"] == "2026-11-20T09:50:00.412345Z"
    assert once["id"] != ev["id"]


def test_triton_iso8601_line_with_an_impossible_time_keeps_the_record_time():
    rec = {"log": "2026-13-40T10:00:00Z E 1 model_lifecycle.cc:654] \"failed to load 'm'\"", "date": 1795168800.5}
    _, (ev,) = ingest("", "log", body=json.dumps([rec]).encode())
    assert (ev["kind"], ev["occurred_at"]) == ("model_load_failed", "2026-11-20T10:00:00.500000Z")

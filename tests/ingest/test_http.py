"""The ingest endpoints through Flask: realistic payloads of each format, and bad input of each kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService, create_ingest_blueprint
from eventmgmt.transport import RecordingPublisher

PAYLOADS = Path(__file__).parent / "payloads"
NOW = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def make(token: str | None = None, max_body: int = 64 * 1024, record: Path | None = None, backfill: str | None = None):
    from eventmgmt.ingest.recorder import Recorder

    pub = RecordingPublisher()
    svc = IngestService(
        default_config(),
        pub,
        lambda: NOW,
        token=token,
        backfill_token=backfill,
        max_body_bytes=max_body,
        recorder=Recorder(str(record)) if record else None,
    )
    app = Flask(__name__)
    app.register_blueprint(create_ingest_blueprint(svc))
    return app.test_client(), pub, svc


def events(pub: RecordingPublisher) -> list[dict]:
    return pub.events("events-raw")


@pytest.mark.parametrize(
    ("name", "path", "want"),
    [
        (
            "alertmanager_firing_resolved.json",
            "/ingest/alertmanager",
            [("high_error_rate", "alert", "firing"), ("high_error_rate", "alert", "resolved")],
        ),
        (
            "alertmanager_firing_resolved.json",
            "/ingest",
            [("high_error_rate", "alert", "firing"), ("high_error_rate", "alert", "resolved")],
        ),
        ("k8s_core_event.json", "/ingest/k8s-event", [("triton_crash", "alert", "firing")]),
        ("k8s_event_exporter.json", "/ingest", [("node_not_ready", "alert", "firing")]),
        ("k8s_events_v1.json", "/ingest", [("pod_oom", "alert", "firing")]),
        (
            "k8s_audit.json",
            "/ingest/k8s-audit",
            [
                ("node_drain", "change", "firing"),
                ("node_uncordon", "change", "firing"),
                ("pod_eviction", "change", "firing"),
                ("deployment_change", "change", "firing"),
            ],
        ),
        ("fluentbit_array.json", "/ingest/log", [("model_load_failed", "alert", "firing"), ("log", "info", "firing")]),
        ("cloudevent_structured.json", "/ingest", [("com_example_deploy_finished", "change", "firing")]),
    ],
)
def test_formats(name, path, want):
    client, pub, svc = make()
    ctype = "application/cloudevents+json" if name.startswith("cloudevent") else "application/json"
    r = client.post(path, data=payload(name), headers={"content-type": ctype})
    assert r.status_code == 202, r.json
    got = [(e["kind"], e["class"], e["status"]) for e in events(pub)]
    assert got == want
    assert r.json["accepted"] == len(want) and r.json["ids"] == [e["id"] for e in events(pub)]


def test_resources_and_times_of_each_format():
    client, pub, _ = make()
    client.post("/ingest", data=payload("k8s_core_event.json"), content_type="application/json")
    client.post("/ingest", data=payload("fluentbit_array.json"), content_type="application/json")
    client.post("/ingest", data=payload("k8s_events_v1.json"), content_type="application/json")
    backoff, load_failed, _app, oom = events(pub)
    assert backoff["resources"]["node"] == "ip-10-0-1-17" and backoff["resources"]["container"] == "triton"
    assert backoff["resources"]["deployment"] == "triton-llama"
    assert load_failed["resources"]["model"] == "llama" and load_failed["occurred_at"] == "2026-11-20T10:00:00.500000Z"
    assert load_failed["severity"] == "high" and "out of memory" in load_failed["summary"]
    assert oom["resources"]["node"] == "ip-10-0-1-17" and oom["occurred_at"].startswith("2026-11-20T10:00:05")


def test_filtered_lines_are_counted_not_published():
    client, pub, svc = make()
    r = client.post("/ingest/log", data=payload("fluentbit_array.json"), content_type="application/json")
    assert r.json["filtered"] == {"triton-per-request": 1}
    assert client.get("/ingest/stats").json["filtered"] == {"triton-per-request": 1}
    client2, pub2, _ = make()
    r = client2.post("/ingest/k8s-audit", data=payload("k8s_audit.json"), content_type="application/json")
    assert r.json["filtered"] == {"audit-read": 1}


def test_cloudevent_binary_mode():
    client, pub, _ = make()
    r = client.post(
        "/ingest",
        data=json.dumps(
            {
                "summary": "model llama unavailable",
                "pod": "triton-llama-7c9d8f6b5d-x2x4z",
                "namespace": "serving",
                "model": "llama",
                "labels": {"class": "alert"},
            }
        ),
        headers={
            "ce-specversion": "1.0",
            "ce-id": "x1",
            "ce-source": "//probe",
            "ce-type": "TritonModelUnavailable",
            "content-type": "application/json",
        },
    )
    assert r.status_code == 202, r.json
    (ev,) = events(pub)
    assert (ev["kind"], ev["class"], ev["resources"]["model"]) == ("model_unavailable", "alert", "llama")


def test_retried_webhook_yields_identical_ids(tmp_path):
    client, pub, _ = make(record=tmp_path / "rec.jsonl")
    first = client.post(
        "/ingest", data=payload("alertmanager_firing_resolved.json"), content_type="application/json"
    ).json
    again = client.post(
        "/ingest", data=payload("alertmanager_firing_resolved.json"), content_type="application/json"
    ).json
    assert first["ids"] == again["ids"] and first["capture"] == again["capture"]
    lines = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["source"] == "alertmanager" and lines[0]["body"]["alerts"]


def test_capture_headers_set_origin_and_receipt():
    client, pub, _ = make(backfill="bf")
    r = client.post(
        "/ingest/k8s-event",
        data=payload("k8s_core_event.json"),
        content_type="application/json",
        headers={"X-Capture-Id": "c42", "X-Received-At": "2026-11-20T10:00:32Z", "Authorization": "Bearer bf"},
    )
    (ev,) = events(pub)
    assert ev["origin"] == {"capture": "c42", "index": 0} and ev["received_at"] == "2026-11-20T10:00:32Z"
    assert r.json["capture"] == "c42"


BAD = [
    # (description, path, body, headers, status, field, words in the message)
    ("malformed json", "/ingest/alertmanager", b'{"alerts": [', {}, 400, "body", "malformed JSON"),
    ("empty body", "/ingest", b"", {}, 400, "body", "empty"),
    ("not an object", "/ingest/alertmanager", b"[1, 2]", {}, 400, "body", "JSON object"),
    (
        "missing field",
        "/ingest/alertmanager",
        b'{"version": "4", "alerts": [{"status": "firing", "labels": {}}]}',
        {},
        400,
        "body.alerts.0.startsAt",
        "Field required",
    ),
    ("wrong type", "/ingest/alertmanager", b'{"version": "4", "alerts": "many"}', {}, 400, "body.alerts", "list"),
    (
        "bad enum",
        "/ingest/alertmanager",
        b'{"alerts": [{"status": "burning", "labels": {}, "startsAt": "2026-11-20T10:00:00Z"}]}',
        {},
        400,
        "body.alerts.0.status",
        "firing",
    ),
    (
        "bad timestamp",
        "/ingest/alertmanager",
        b'{"alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]}',
        {},
        400,
        "body.alerts.0.startsAt",
        "yesterday",
    ),
    ("no alerts", "/ingest/alertmanager", b'{"version": "4", "alerts": []}', {}, 400, "body.alerts", "at least 1"),
    (
        "audit wrong apiVersion",
        "/ingest/k8s-audit",
        b'{"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": []}',
        {},
        400,
        "body.apiVersion",
        "audit.k8s.io/v1",
    ),
    ("log without text", "/ingest/log", b'[{"kubernetes": {"pod_name": "p"}}]', {}, 400, "body[0].log", "log"),
    (
        "cloudevent binary missing id",
        "/ingest/cloudevent",
        b"{}",
        {"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t"},
        400,
        "ce-id",
        "ce-id",
    ),
    ("unknown source", "/ingest/nagios", b"{}", {}, 404, "source", "nagios"),
    ("undetectable", "/ingest", b'{"hello": "world"}', {}, 422, "body", "cannot tell"),
    (
        "unsupported content type",
        "/ingest",
        b"<xml/>",
        {"content-type": "application/xml"},
        415,
        "Content-Type",
        "application/xml",
    ),
    (
        "received-at without backfill token",
        "/ingest/k8s-event",
        b"{}",
        {"X-Received-At": "soon"},
        403,
        "X-Received-At",
        "backfill",
    ),
]


@pytest.mark.parametrize(("desc", "path", "body", "headers", "status", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_its_status_and_names_the_problem(desc, path, body, headers, status, field, words):
    client, pub, svc = make()
    h = {"content-type": "application/json", **headers}
    r = client.post(path, data=body, headers=h)
    assert r.status_code == status, r.json
    assert r.json["field"] == field and words in r.json["error"], r.json
    assert pub.messages == {}  # nothing published for a rejected delivery


def test_oversized_body_is_413_and_nothing_published():
    client, pub, _ = make(max_body=1024)
    big = json.dumps([{"log": "x" * 2000, "kubernetes": {}}]).encode()
    r = client.post("/ingest/log", data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["field"] == "body" and "1024" in r.json["error"]
    assert pub.messages == {}


@pytest.mark.parametrize(
    ("auth", "words"),
    [
        (None, "missing bearer token"),
        ("Bearer wrong", "invalid bearer token"),
        ("Basic c2VjcmV0", "missing bearer token"),
    ],
)
def test_token_is_required_when_configured(auth, words):
    client, pub, _ = make(token="s3cret")
    headers = {"Authorization": auth} if auth else {}
    r = client.post("/ingest", data=payload("k8s_core_event.json"), content_type="application/json", headers=headers)
    assert r.status_code == 401 and words in r.json["error"] and r.json["field"] == "Authorization"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert pub.messages == {}
    ok = client.post(
        "/ingest",
        data=payload("k8s_core_event.json"),
        content_type="application/json",
        headers={"Authorization": "Bearer s3cret"},
    )
    assert ok.status_code == 202


def test_publish_failure_answers_503_so_the_sender_retries(caplog):
    class Flaky:
        def __init__(self):
            self.down = True
            self.rec = RecordingPublisher()

        def publish(self, *a, **k):
            if self.down:
                raise ConnectionError("pubsub down")
            return self.rec.publish(*a, **k)

    pub = Flaky()
    svc = IngestService(default_config(), pub, lambda: NOW)
    body = payload("k8s_core_event.json")
    resp = svc.handle(None, {"content-type": "application/json"}, body)
    assert resp.status == 503 and resp.body["retryable"] is True and resp.headers["Retry-After"]
    assert "pubsub down" in caplog.text
    assert svc.stats()["rejected"] == {"503": 1}
    pub.down = False
    again = svc.handle(None, {"content-type": "application/json"}, body)
    assert again.status == 202
    assert [m["id"] for m in pub.rec.events("events-raw")] == again.body["ids"]

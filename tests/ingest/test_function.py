"""functions/ingest/main.py through functions-framework's HTTP path."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import functions_framework

from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService
from eventmgmt.transport import RecordingPublisher

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = Path(__file__).parent / "payloads"


def client(pub: RecordingPublisher, token: str | None = None):
    app = functions_framework.create_app("ingest", str(ROOT / "functions/ingest/main.py"), "http")
    svc = IngestService(default_config(), pub, lambda: datetime(2026, 11, 20, tzinfo=UTC), token=token)
    # NOTE: functions-framework registers the loaded source as sys.modules["main"]; the handler looks
    # its service up there on each call, so the test swaps in one with a recording publisher.
    sys.modules["main"].service = lambda: svc
    return app.test_client()


def test_ingest_function_publishes_and_answers_202():
    pub = RecordingPublisher()
    c = client(pub)
    r = c.post(
        "/ingest/alertmanager",
        data=(PAYLOADS / "alertmanager_firing_resolved.json").read_bytes(),
        content_type="application/json",
    )
    assert r.status_code == 202 and r.json["accepted"] == 2
    assert len(pub.events("events-raw")) == 2
    r = c.post("/", data=(PAYLOADS / "k8s_core_event.json").read_bytes(), content_type="application/json")
    assert r.status_code == 202 and r.json["source"] == "k8s-event"
    assert c.get("/ingest/stats").json["accepted"] == {"alertmanager": 2, "k8s-event": 1}


def test_ingest_function_rejects_without_token_and_wrong_method():
    pub = RecordingPublisher()
    c = client(pub, token="t")
    r = c.post("/ingest", data=b"{}", content_type="application/json")
    assert r.status_code == 401 and r.json["field"] == "Authorization"
    assert c.put("/ingest", data=b"{}").status_code == 405
    assert pub.messages == {}

"""The enrich and correlate functions through functions-framework's HTTP path with real CloudEvents."""

from __future__ import annotations

import sys
from pathlib import Path

import functions_framework
from cloudevents.conversion import to_binary

from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.enrich.stage import EnrichStage
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.transport import RecordingPublisher, encode_message, to_cloudevent
from eventmgmt.transport.publisher import dumps

from .helpers import at, ev

ROOT = Path(__file__).resolve().parents[2]


def post(client, topic: str, payload: dict, mid: str = "1"):
    ce = to_cloudevent("p", topic, f"{topic}-sub", encode_message(dumps(payload), {}, mid))
    headers, body = to_binary(ce)
    return client.post("/", headers=headers, data=body)


def app_with(name: str, stage):
    """The function's app, with its lazily-built stage replaced (functions-framework registers the
    loaded source as sys.modules["main"]; the handler looks `stage` up there at call time)."""
    app = functions_framework.create_app(name, str(ROOT / "functions" / name / "main.py"), "cloudevent")
    sys.modules["main"].stage = lambda: stage
    return app.test_client()


def test_enrich_then_correlate_through_http(tmp_path):
    pub = RecordingPublisher()
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    ensure_schema(engine)
    enrich = app_with("enrich", EnrichStage(default_config(), pub))
    correlate = app_with("correlate", CorrelateStage(default_config(), pub, lambda: at(5), engine=engine))

    e = ev("model_load_failed", 0, pod="triton-bert-large-r9w2fh26mf-6n65v", model="bert-large", source="log")
    assert post(enrich, "events-raw", e.to_json()).status_code == 200
    enriched = pub.events("events-enriched")[0]
    assert enriched["severity"] == "critical" and enriched["runbook"]
    for _ in range(2):  # redelivery is a no-op for the incident
        assert post(correlate, "events-enriched", enriched).status_code == 200
    msgs = pub.correlated()
    assert msgs[0]["action"] == "opened" and msgs[1]["action"] is None
    assert msgs[0]["incident_id"] == msgs[1]["incident_id"]
    assert msgs[1]["incident"]["version"] == msgs[0]["incident"]["version"]


def test_bad_envelope_is_acknowledged_not_retried():
    pub = RecordingPublisher()
    correlate = app_with("correlate", CorrelateStage(default_config(), pub, lambda: at(0)))
    resp = post(correlate, "events-enriched", {"not": "an event"})
    assert resp.status_code == 200  # poison: acknowledged and logged, never redelivered forever
    assert pub.messages == {}


def test_transient_failure_answers_500_so_pubsub_redelivers(tmp_path):
    class Down:
        def publish(self, *a, **k):
            raise ConnectionError("pubsub unavailable")

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    ensure_schema(engine)
    correlate = app_with("correlate", CorrelateStage(default_config(), Down(), lambda: at(0), engine=engine))
    e = ev("high_error_rate", 0, pod="triton-bert-large-r9w2fh26mf-6n65v")
    assert post(correlate, "events-enriched", e.to_json()).status_code == 500

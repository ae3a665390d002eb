"""Partial acceptance: a bad record is refused alone, with its index and reason; the good records of
the same delivery are kept; a delivery with no good record gets the 4xx of its problem; bad text or
an out-of-range value is a 4xx for its record, never a 5xx for the delivery (issue 12, issue 13
finding 3)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService
from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from eventmgmt.transport import RecordingPublisher
from tests.support.incidents import wait_drained

PAYLOADS = Path(__file__).parent / "payloads"
NOW = datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
JSON = {"content-type": "application/json"}


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


def post(source: str | None, body, headers=JSON):
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: NOW)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = svc.handle(source, headers, raw)
    return resp, pub.events("events-raw"), svc


def with_surrogate(obj) -> bytes:
    """JSON text with a lone surrogate escape where the placeholder SURROGATE stands (json.dumps
    cannot write one from a Python string)."""
    return json.dumps(obj).replace("SURROGATE", "\\ud800").encode()


def test_alertmanager_bad_alerts_are_refused_alone():
    hook = load("alertmanager_firing_resolved.json")
    good = hook["alerts"][0]
    no_labels = {k: v for k, v in good.items() if k != "labels"}
    unrepresentable = {**good, "fingerprint": "f3", "startsAt": "9999-12-31T23:59:59-01:00"}
    hook["alerts"] = [good, no_labels, hook["alerts"][1], "not an alert", unrepresentable]
    resp, published, svc = post("alertmanager", hook)
    assert resp.status == 202, resp.body
    assert resp.body["accepted"] == 2 and [e["origin"]["index"] for e in published] == [0, 2]
    rejected = {r["index"]: r for r in resp.body["rejected"]}
    assert set(rejected) == {1, 3, 4}
    assert rejected[1]["field"] == "body.alerts.1.labels" and "required" in rejected[1]["error"]
    assert rejected[3]["field"] == "body.alerts.3" and "JSON object" in rejected[3]["error"]
    assert rejected[4]["field"] == "body.alerts.4.startsAt" and "out of range" in rejected[4]["error"]
    assert svc.stats()["rejected_records"] == {"alertmanager": 3} and svc.stats()["rejected"] == {}


def test_lone_surrogate_in_summary_or_pod_is_refused_per_alert():
    hook = load("alertmanager_firing_resolved.json")
    good = hook["alerts"][0]
    bad_summary = copy.deepcopy(good)
    bad_summary["annotations"]["summary"] = "error SURROGATE rate"
    bad_summary["fingerprint"] = "f1"
    bad_pod = copy.deepcopy(good)
    bad_pod["labels"]["pod"] = "triton-SURROGATE"
    bad_pod["fingerprint"] = "f2"
    hook["alerts"] = [bad_summary, good, bad_pod]
    resp, published, _ = post("alertmanager", with_surrogate(hook))
    assert resp.status == 202 and resp.body["accepted"] == 1, resp.body
    assert [(r["index"], r["field"]) for r in resp.body["rejected"]] == [
        (0, "body.alerts.0.annotations.summary"),
        (2, "body.alerts.2.labels.pod"),
    ]
    assert all("lone surrogate" in r["error"] for r in resp.body["rejected"])
    assert published[0]["origin"]["index"] == 1


def test_no_good_record_is_4xx_naming_each_problem():
    hook = load("alertmanager_firing_resolved.json")
    hook["alerts"] = [{"status": "firing", "labels": {}}, {**hook["alerts"][0], "startsAt": "yesterday"}]
    resp, published, svc = post("alertmanager", hook)
    assert resp.status == 400 and published == []
    assert resp.body["field"] == "body.alerts.0.startsAt" and "required" in resp.body["error"]
    assert [r["index"] for r in resp.body["rejected"]] == [0, 1]
    assert svc.stats()["rejected"] == {"400": 1}


def test_audit_eventlist_bad_item_refused_alone():
    lst = load("k8s_audit.json")
    lst["items"].insert(1, {"kind": "Event", "stage": "ResponseComplete", "verb": "patch"})
    resp, published, _ = post("k8s-audit", lst)
    assert resp.status == 202, resp.body
    assert resp.body["rejected"] == [
        {"index": 1, "field": "body.items.1.auditID", "error": "body.items.1.auditID: Field required"}
    ]
    assert [e["origin"]["index"] for e in published] == [0, 2, 3, 4]


def test_fluentbit_array_bad_record_refused_alone():
    records = load("fluentbit_array.json")
    records.insert(1, {"kubernetes": {"pod_name": "p"}, "stream": "stdout"})
    records.append({**records[0], "date": -1e18})
    resp, published, _ = post("log", records)
    assert resp.status == 202, resp.body
    assert [(r["index"], r["field"]) for r in resp.body["rejected"]] == [(1, "body[1].log"), (4, "body[4].date")]
    assert [e["origin"]["index"] for e in published] == [0, 2]  # index 3 is filtered (per-request line)


def test_kubernetes_eventlist_items_each_their_own_record():
    one = load("k8s_events_v1.json")
    bad = {**one, "regarding": "ip-10-0-1-17"}
    resp, published, _ = post(None, {"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": [one, bad]})
    assert resp.status == 202 and resp.body["source"] == "k8s-event-v1", resp.body
    assert [r["field"] for r in resp.body["rejected"]] == ["body.items.1.regarding"]
    assert [e["kind"] for e in published] == ["pod_oom"]


@pytest.mark.parametrize(
    ("source", "mutate", "field"),
    [
        ("k8s-event", lambda b: b["metadata"].update(name="SURROGATE"), "body.metadata.name"),
        ("cloudevent", lambda b: b.update(subject="a\x00b"), "body.subject"),
        ("k8s-event", lambda b: b.update(lastTimestamp="2026-11-20T10:00:31-99:00"), "body.lastTimestamp"),
    ],
)
def test_single_record_sources_refuse_bad_text_and_values_with_4xx(source, mutate, field):
    body = load("k8s_core_event.json" if source == "k8s-event" else "cloudevent_structured.json")
    mutate(body)
    resp, published, _ = post(source, with_surrogate(body))
    assert 400 <= resp.status < 500 and resp.body["field"] == field, resp.body
    assert published == []


def test_embedded_runtime_stores_the_good_alerts_of_a_poisoned_webhook(tmp_path, monkeypatch):
    """The probes of issue 13 finding 3 against the real store: one alert dated 9999 (clamped and
    kept), lone surrogates in a summary and in a pod name (refused alone); no 5xx."""
    monkeypatch.delenv("EVENTMGMT_INGEST_TOKEN", raising=False)
    rt = build_runtime(Settings(home=tmp_path))
    try:
        client = create_app(rt).test_client()
        good = {
            "status": "firing",
            "labels": {"alertname": "TritonHighErrorRate", "namespace": "serving", "pod": "triton-a-7c9d8f6b5d-x2x4z"},
            "annotations": {"summary": "error rate above 1%"},
            "startsAt": "2026-11-20T10:00:00Z",
            "fingerprint": "aaaa000000000001",
        }
        far = {**good, "startsAt": "9999-12-31T23:59:59Z", "fingerprint": "aaaa000000000002"}
        surrogate_summary = {**good, "annotations": {"summary": "rate SURROGATE"}, "fingerprint": "aaaa000000000003"}
        surrogate_pod = {**good, "labels": {**good["labels"], "pod": "SURROGATE"}, "fingerprint": "aaaa000000000004"}
        hook = {
            "version": "4",
            "status": "firing",
            "receiver": "r",
            "alerts": [good, far, surrogate_summary, surrogate_pod],
        }
        r = client.post("/ingest/alertmanager", data=with_surrogate(hook), headers=JSON)
        assert r.status_code == 202, r.json
        assert r.json["accepted"] == 2 and [x["index"] for x in r.json["rejected"]] == [2, 3]
        wait_drained(client)  # NOTE: 202 means queued; correlation stores it behind the answer
        stored = client.get("/api/events?limit=10").json
        rows = stored["events"] if isinstance(stored, dict) else stored
        assert {e["id"] for e in rows} == set(r.json["ids"])
        clamped = [e for e in rows if e["labels"].get("time_clamped")]
        assert len(clamped) == 1 and clamped[0]["labels"]["time_clamped"].startswith("9999-12-31")
    finally:
        rt.stop()


def test_surrogate_encoded_in_utf8_bytes_is_refused_like_an_escaped_one():
    """json.loads decodes bytes with surrogatepass: ED A0 80 in a body is a lone surrogate too."""
    hook = load("alertmanager_firing_resolved.json")
    hook["alerts"][1]["annotations"] = {"summary": "RAW"}
    raw = json.dumps(hook).encode().replace(b"RAW", b"bad \xed\xa0\x80 text")
    resp, published, _ = post("alertmanager", raw)
    assert resp.status == 202 and resp.body["accepted"] == 1, resp.body
    assert [(r["index"], r["field"]) for r in resp.body["rejected"]] == [(1, "body.alerts.1.annotations.summary")]


def test_surrogate_made_by_unquoting_a_log_line_is_refused_not_a_5xx():
    """Triton JSON-escapes its messages; an escaped lone surrogate inside the line only becomes one
    when the parser unquotes it, so the raw record is clean and the event is what is checked."""
    line = "E1120 10:00:00.000000 1 model_lifecycle.cc:654] \"failed to load 'm\\ud800'\""
    records = [{"log": line, "kubernetes": {"pod_name": "p"}}, {"log": "fine", "kubernetes": {"pod_name": "p"}}]
    resp, published, _ = post("log", records)
    assert resp.status == 202 and resp.body["accepted"] == 1, resp.body
    assert resp.body["rejected"][0]["index"] == 0 and "lone surrogate" in resp.body["rejected"][0]["error"]


def test_json_nested_deeper_than_the_decoder_allows_is_400_not_500():
    resp, published, _ = post("log", b"[" * 100_000 + b"]" * 100_000)
    assert resp.status == 400 and resp.body["field"] == "body" and "nested" in resp.body["error"], resp.body
    deep_in_record = b'[{"log": "a", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b'}, {"log": "b"}]'
    assert post("log", deep_in_record)[0].status == 400

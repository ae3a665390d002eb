"""`GET /metrics` tells Prometheus what eventmgmt is doing: what it accepted, filtered and refused,
its correlation backlog, the incidents open, and the pages each receiver got or still waits for.
Parsed with prometheus_client's own parser, so the exposition format is checked too."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.httpsink import http_sink
from tests.support.incidents import wait_drained

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_follow_what_happened(tmp_path, monkeypatch) -> None:
    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path))
        try:
            http = create_app(rt).test_client()
            before = http.get("/metrics")
            assert before.status_code == 200 and before.content_type.startswith("text/plain; version=0.0.4")
            alerts = [
                {
                    "status": "firing",
                    "startsAt": NOW,
                    "fingerprint": f"f{i}",
                    "labels": {
                        "alertname": "TritonModelUnavailable",
                        "severity": "critical",
                        "model": "bert",
                        "pod": f"p{i}",
                    },
                }
                for i in range(3)
            ]
            assert http.post("/ingest/alertmanager", json={"alerts": alerts}).status_code == 202
            assert http.post("/ingest/alertmanager", data=b"{", content_type="application/json").status_code == 400
            wait_drained(http)
            rt.route_worker.drain(30)
            got = samples(http.get("/metrics").get_data(as_text=True))
        finally:
            rt.stop()
    assert got[("eventmgmt_events_accepted_total", (("source", "alertmanager"),))] == 3
    assert got[("eventmgmt_deliveries_rejected_total", (("status", "400"),))] == 1
    assert got[("eventmgmt_queue_backlog_events", ())] == 0
    assert got[("eventmgmt_incidents", (("severity", "critical"), ("status", "open")))] == 1
    assert (
        got[("eventmgmt_notifications_sent_total", (("receiver", "pagerduty"),))]
        == len(sink.bodies("/v2/enqueue"))
        == 1
    )
    assert got[("eventmgmt_receiver_down", (("receiver", "pagerduty"),))] == 0
    assert ("eventmgmt_build_info", (("version", "0.1.0"),)) in got
    assert got[("eventmgmt_memory_releases_total", ())] == 0  # NOTE: 3 events: no burst to give back
    # NOTE: in one process there is no build process: the drain built the webhook's one row
    assert got[("eventmgmt_queued_rows_built_total", (("by", "drain"),))] == 1
    assert got[("eventmgmt_queued_rows_built_total", (("by", "build_process"),))] == 0
    assert got[("eventmgmt_build_process_restarts_total", ())] == 0
    # NOTE: the process's own figures, as any Prometheus client exports them
    assert got[("process_resident_memory_bytes", ())] > 10 * 1024 * 1024
    assert got[("process_open_fds", ())] > 0
    assert any(name == "python_gc_collections_total" for name, _ in got)


def test_readiness_says_what_is_not_ready(tmp_path) -> None:
    rt = build_runtime(Settings(home=tmp_path, max_backlog=1))
    try:
        http = create_app(rt).test_client()
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json["ready"] is True and ready.json["version"]
        rt.drainer.close()  # NOTE: correlation stopped: deliveries would only pile up
        alerts = [{"status": "firing", "startsAt": NOW, "labels": {"alertname": "X", "pod": f"p{i}"}} for i in range(2)]
        assert http.post("/ingest/alertmanager", json={"alerts": alerts}).status_code == 202
        down = http.get("/readyz")
        assert down.status_code == 503 and down.json["ready"] is False
        assert any("correlation not running" in p for p in down.json["problems"])
        assert any("backlog" in p for p in down.json["problems"])
    finally:
        rt.stop()


def test_an_unreachable_state_store_degrades_readiness_without_taking_the_replica_away(tmp_path, monkeypatch) -> None:
    """Deliveries are accepted into the local queue whatever the state store does, so a store outage
    is reported (`degraded`) with 200: a readiness failure would take the only replica out of its
    Service and turn the outage into refused webhooks."""
    from sqlalchemy.exc import OperationalError

    rt = build_runtime(Settings(home=tmp_path))
    try:
        http = create_app(rt).test_client()

        def down(*_a, **_k):
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

        monkeypatch.setattr(rt.engine, "connect", down)
        r = http.get("/readyz")
        assert r.status_code == 200 and r.json["ready"] is True
        assert [p.split(":")[0] for p in r.json["degraded"]] == ["state store"]
        alerts = [{"status": "firing", "startsAt": NOW, "labels": {"alertname": "X", "pod": "p"}}]
        assert http.post("/ingest/alertmanager", json={"alerts": alerts}).status_code == 202
    finally:
        monkeypatch.undo()
        rt.stop()

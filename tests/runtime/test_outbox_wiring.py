"""The embedded runtime's ticker flushes the route outbox: a page due while PagerDuty was down is
sent once it is back, without any new event arriving."""

from __future__ import annotations

from datetime import UTC, datetime

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.httpsink import http_sink
from tests.support.incidents import wait


def test_ticker_delivers_what_waited_in_the_outbox(tmp_path, monkeypatch):
    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path))
        router = rt.router
        client = create_app(rt).test_client()
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        hook = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "startsAt": now,
                    "fingerprint": "f1",
                    "labels": {"alertname": "TritonModelUnavailable", "severity": "critical", "model": "bert"},
                }
            ],
        }
        sink.down = True
        try:
            assert client.post("/ingest/alertmanager", json=hook).status_code == 202
            assert wait(lambda: bool(router.outbox()))
            assert sink.taken == [] and len(sink.requests) >= 1
            sink.down = False
            rt.start_ticker(every=0.2)
            assert wait(lambda: not router.outbox())
        finally:
            rt.stop()
        assert [b["event_action"] for b in sink.taken_bodies("/v2/enqueue")] == ["trigger"]


def test_board_and_api_show_a_receiver_that_is_down(tmp_path, monkeypatch):
    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path))
        client = create_app(rt).test_client()
        try:
            assert client.get("/api/outbox").json == {"receivers_down": [], "pending": []}
            assert "is not taking notifications" not in client.get("/").get_data(as_text=True)
            sink.down = True
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            labels = {"alertname": "TritonModelUnavailable", "severity": "critical", "model": "bert"}
            hook = {
                "version": "4",
                "alerts": [{"status": "firing", "startsAt": now, "fingerprint": "f", "labels": labels}],
            }
            assert client.post("/ingest/alertmanager", json=hook).status_code == 202
            assert wait(lambda: bool(client.get("/api/outbox").json["pending"]))
            (down,) = client.get("/api/outbox").json["receivers_down"]
            assert down["receiver"] == "pagerduty" and down["waiting"] == 1 and "503" in down["last_error"]
            board = client.get("/").get_data(as_text=True)
            assert "pagerduty is not taking notifications" in board and "1 waiting" in board
        finally:
            rt.stop()

"""No sender moves the server's clock: a dated delivery needs the backfill token and may not be dated
ahead of server time, and absurd event timestamps are clamped to receipt time, never a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from flask import Flask

from eventmgmt.clock import MAX_SKEW, StreamClock
from eventmgmt.config import default_config
from eventmgmt.ingest import IngestService, create_ingest_blueprint
from eventmgmt.timeutil import parse_ts
from eventmgmt.transport import RecordingPublisher
from tests.support.incidents import wait_drained
from tests.support.serve import serve

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def alert(starts: str, pod: str = "p1", summary: str = "errors") -> dict:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "startsAt": starts,
                "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "model": "bert", "pod": pod},
                "annotations": {"summary": summary},
            }
        ],
    }


def make(backfill: str | None = None) -> tuple[object, RecordingPublisher]:
    pub = RecordingPublisher()
    svc = IngestService(default_config(), pub, lambda: NOW, token="ingest", backfill_token=backfill)
    app = Flask(__name__)
    app.register_blueprint(create_ingest_blueprint(svc))
    return app.test_client(), pub


@pytest.mark.parametrize(
    ("backfill", "bearer", "dated", "status"),
    [
        (None, "ingest", "2027-01-01T00:00:00Z", 403),  # no backfill sender configured
        (None, "ingest", "2001-01-01T00:00:00Z", 403),
        ("bf", "ingest", "2026-11-01T00:00:00Z", 403),  # an ordinary sender may not date deliveries
        ("bf", "bf", "2027-01-01T00:00:00Z", 400),  # the backfill sender may not date ahead of now
        ("bf", "bf", "9999-12-31T23:59:59Z", 400),
        ("bf", "bf", "1969-12-31T23:59:59Z", 400),
        ("bf", "bf", "2026-11-01T00:00:00Z", 202),  # a real backfill
    ],
)
def test_only_a_backfill_sender_dates_a_delivery_and_never_ahead(backfill, bearer, dated, status):
    client, pub = make(backfill)
    r = client.post(
        "/ingest/alertmanager",
        json=alert("2026-10-31T23:59:00Z"),
        headers={"X-Received-At": dated, "Authorization": f"Bearer {bearer}"},
    )
    assert r.status_code == status, r.json
    if status != 202:
        assert r.json["field"] == "X-Received-At" and pub.messages == {}
    else:
        (msg,) = pub.events("events-raw")
        assert msg["received_at"] == "2026-11-01T00:00:00Z"


def test_the_backfill_token_also_authorises_the_delivery():
    client, _ = make("bf")
    assert (
        client.post(
            "/ingest/alertmanager", json=alert("2026-11-27T11:59:00Z"), headers={"Authorization": "Bearer bf"}
        ).status_code
        == 202
    )
    assert (
        client.post(
            "/ingest/alertmanager", json=alert("2026-11-27T11:59:00Z"), headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )


@pytest.mark.parametrize("starts", ["9999-12-31T23:59:59Z", "2027-06-01T00:00:00Z", "1960-01-01T00:00:00Z"])
def test_absurd_event_times_are_clamped_to_receipt_and_flagged(starts):
    client, pub = make()
    r = client.post("/ingest/alertmanager", json=alert(starts), headers={"Authorization": "Bearer ingest"})
    assert r.status_code == 202, r.json
    (msg,) = pub.events("events-raw")
    assert parse_ts(msg["occurred_at"]) == NOW and parse_ts(msg["started_at"]) == NOW
    assert msg["labels"]["time_clamped"].startswith(starts[:4].lstrip("0") or "0")


def test_stream_clock_never_runs_ahead_of_the_wall_clock_nor_back():
    wall = {"t": NOW}
    c = StreamClock(wall=lambda: wall["t"])
    c.observe(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))  # used to overflow
    assert c() <= NOW + MAX_SKEW
    c.observe(NOW - timedelta(days=3))
    assert c() >= NOW  # never backwards
    wall["t"] = NOW + timedelta(hours=1)
    c.observe(NOW + timedelta(hours=5))
    assert c() <= wall["t"] + MAX_SKEW


def test_a_dated_request_to_the_real_server_moves_nothing(tmp_path):
    """Against `eventmgmt serve`: a forged date is refused, a 9999 alert is taken with its time
    clamped, and correlation's clock (as /healthz reports it) stays at the wall clock."""
    with serve(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        now = datetime.now(UTC)
        ok = http.post("/ingest/alertmanager", json=alert(now.isoformat(), pod="p-live"))
        assert ok.status_code == 202, ok.text
        forged = http.post(
            "/ingest/alertmanager",
            json=alert(now.isoformat(), pod="p2"),
            headers={"X-Received-At": "2027-06-01T00:00:00Z"},
        )
        assert forged.status_code == 403 and forged.json()["field"] == "X-Received-At"
        far = http.post("/ingest/alertmanager", json=alert("9999-12-31T23:59:59Z", pod="p3"))
        assert far.status_code == 202, far.text
        wait_drained(http)
        as_of = parse_ts(http.get("/healthz").json()["clock"])
        assert as_of is not None and as_of <= datetime.now(UTC) + MAX_SKEW
        board = http.get("/api/incidents")
        assert board.status_code == 200
        assert all(i["status"] == "open" for i in board.json()["incidents"])

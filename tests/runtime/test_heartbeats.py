"""A heartbeat that stops is the one problem nothing else pages for: eventmgmt opens a critical
`heartbeat_silent` incident when the Watchdog has not arrived for the timeout, and clears it when the
Watchdog is back (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.runtime.heartbeats import DEFAULT_TIMEOUT, KIND, timeout_of
from eventmgmt.settings import Settings
from eventmgmt.timeutil import iso
from tests.support.incidents import BACKFILL_TOKEN, wait_drained

WATCHDOG = {
    "alerts": [
        {
            "status": "firing",
            "startsAt": "2026-11-27T00:00:00Z",
            "fingerprint": "wd1",
            "labels": {"alertname": "Watchdog", "severity": "none", "cluster": "prod-eu"},
        }
    ]
}


def test_a_silent_heartbeat_opens_a_critical_incident_and_its_return_clears_it(tmp_path) -> None:
    rt = build_runtime(Settings(home=tmp_path, backfill_token=BACKFILL_TOKEN))
    assert rt.heartbeats is not None
    try:
        http = create_app(rt).test_client()
        now = datetime.now(UTC)
        # NOTE: the last heartbeat arrived 11 minutes ago (a backfill sender may date a delivery)
        dated = {
            "Authorization": f"Bearer {BACKFILL_TOKEN}",
            "X-Received-At": iso(now - DEFAULT_TIMEOUT - timedelta(minutes=1)),
        }
        assert http.post("/ingest/alertmanager", json=WATCHDOG, headers=dated).status_code == 202
        wait_drained(http)
        assert http.get("/api/incidents").json["incidents"] == []  # a heartbeat alone pages nobody
        assert rt.heartbeats.check(now - timedelta(minutes=5)) == []
        fired = rt.heartbeats.check(now)
        assert [(e.kind, e.status.value) for e in fired] == [(KIND, "firing")]
        assert rt.heartbeats.check(now + timedelta(minutes=1)) == []  # once per silence
        wait_drained(http)
        (inc,) = http.get("/api/incidents").json["incidents"]
        assert inc["root_kind"] == KIND and inc["severity"] == "critical" and inc["firing"] == 1
        assert "Watchdog" in inc["root_cause"]["summary"]
        # NOTE: Alertmanager sends the same alert again: the heartbeat is back
        assert http.post("/ingest/alertmanager", json=WATCHDOG).status_code == 202
        wait_drained(http)  # NOTE: a queued delivery's heartbeat is seen once its events are built
        back = rt.heartbeats.check(datetime.now(UTC))
        assert [(e.kind, e.status.value) for e in back] == [(KIND, "resolved")]
        wait_drained(http)
        (after,) = http.get("/api/incidents").json["incidents"]
        assert after["id"] == inc["id"] and after["firing"] == 0
    finally:
        rt.stop()


def test_the_timeout_is_configurable() -> None:
    assert timeout_of(["MyHeartbeat"]) == DEFAULT_TIMEOUT
    assert timeout_of({"names": ["MyHeartbeat"], "timeout_minutes": 3}) == timedelta(minutes=3)

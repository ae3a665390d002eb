"""Issue 13 audit: `limit` on /api/outbox, /api/queue/dead-letters and the dashboard's /events is
checked as on the other reads (a bad one is a 400 JSON error naming it, never silently ignored), and
a good one is honoured."""

from __future__ import annotations

import pytest

from tests.security.test_errors import is_json_error

PATHS = ["/api/outbox", "/api/queue/dead-letters", "/events"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "1e3", "%00"])
def test_a_bad_limit_is_a_400_naming_it(client, path, value):
    r = client.get(f"{path}?limit={value}")
    assert is_json_error(r, 400, "limit"), (r.status_code, r.data[:200])


@pytest.mark.parametrize("path", PATHS)
def test_a_good_or_absent_limit_is_taken(client, path):
    for query in ("", "?limit=1", "?limit=100000"):
        assert client.get(path + query).status_code == 200, query


def test_events_page_honours_limit(loaded):
    rows = loaded.get("/events?limit=7").get_data(as_text=True).count("<tr")
    full = loaded.get("/events").get_data(as_text=True).count("<tr")
    assert rows < full and full - rows == 100 - 7


def test_outbox_honours_limit(loaded, runtime):
    router = runtime.router
    ids = [i["id"] for i in loaded.get("/api/incidents").json["incidents"]][:10]
    now = runtime.clock()
    for snap in router.incidents.snapshots(ids):
        for receiver in ("pagerduty", "slack", "change"):
            router.ledger.enqueue(receiver, snap, "triggered", "down", now, now)
    assert len(loaded.get("/api/outbox").json["pending"]) == 3 * len(ids) >= 3
    assert len(loaded.get("/api/outbox?limit=1").json["pending"]) == 1

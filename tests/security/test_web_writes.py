"""Without a token, no web page can act (issue 13, finding 6): writes must come from the server's own
origin, in JSON, with the dashboard's CSRF token when a browser sends them; a Host that is not ours
is refused (DNS rebinding); every answer carries frame and content security headers; reads can
require a token."""

from __future__ import annotations

import base64
import json
import re

import pytest

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.security.conftest import alerts
from tests.support.incidents import wait_drained

EVIL = "https://evil.example"
WINDOW = {"name": "all", "start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z", "node": "n1"}


def open_incident(client) -> str:
    r = client.post("/ingest/alertmanager", json=alerts(1))
    assert r.status_code == 202, r.json
    wait_drained(client)
    return client.get("/api/incidents").json["incidents"][0]["id"]


def status(client, incident_id: str) -> str:
    return client.get(f"/api/incidents/{incident_id}").json["status"]


def csrf(client) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True))
    assert found
    return found.group(1)


@pytest.mark.parametrize(
    ("headers", "data", "field"),
    [
        # a cross-site <form method=post> (what resolved an incident before)
        ({"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}, "by=evil", "Origin"),
        ({"Origin": EVIL, "Content-Type": "multipart/form-data; boundary=x"}, "--x--", "Origin"),
        # a no-cors fetch
        ({"Origin": EVIL, "Content-Type": "text/plain"}, '{"by": "evil"}', "Origin"),
        ({"Origin": EVIL, "Content-Type": "application/json"}, "{}", "Origin"),
        ({"Origin": "null", "Content-Type": "application/json"}, "{}", "Origin"),
        # an older browser that sends only a Referer, or only Fetch Metadata
        ({"Referer": EVIL + "/page", "Content-Type": "application/json"}, "{}", "Origin"),
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, "{}", "Sec-Fetch-Site"),
        ({"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, "{}", "Sec-Fetch-Site"),
        # our own origin, but content a form could send: refused as a type
        ({"Origin": "http://localhost", "Content-Type": "text/plain"}, "{}", "Content-Type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "by=x", "Content-Type"),
        # our own origin without the pages' CSRF token
        ({"Origin": "http://localhost", "Content-Type": "application/json"}, "{}", "X-CSRF-Token"),
    ],
)
def test_cross_site_writes_are_refused(client, headers, data, field):
    incident_id = open_incident(client)
    for action in ("resolve", "ack"):
        r = client.post(f"/api/incidents/{incident_id}/{action}", data=data, headers=headers)
        assert r.status_code in (403, 415) and r.json["field"] == field, (action, r.status_code, r.json)
    assert status(client, incident_id) == "open"
    r = client.post("/api/maintenance", data=data, headers=headers)
    assert r.status_code in (403, 415) and r.json["field"] == field
    assert client.get("/api/maintenance").json == []


def test_a_no_cors_fetch_cannot_open_an_incident(client):
    body = json.dumps(alerts(1))
    for headers in ({"Origin": EVIL}, {"Origin": EVIL, "Content-Type": "text/plain"}, {"Sec-Fetch-Site": "cross-site"}):
        r = client.post("/ingest/alertmanager", data=body, headers=headers)
        assert r.status_code in (403, 415), (headers, r.status_code)
    assert client.get("/api/incidents").json["incidents"] == []
    # senders with no browser in the way keep working, with or without a content type
    assert client.post("/ingest/alertmanager", data=body).status_code == 202
    assert len(client.get("/api/incidents").json["incidents"]) == 1


def test_the_dashboard_itself_and_non_browser_clients_still_write(client):
    incident_id = open_incident(client)
    same_origin = {"Origin": "http://localhost", "X-CSRF-Token": csrf(client), "Sec-Fetch-Site": "same-origin"}
    r = client.post(f"/api/incidents/{incident_id}/ack", json={"by": "alice"}, headers=same_origin)
    assert r.status_code == 200 and r.json["acknowledged_by"] == "alice"
    r = client.post(f"/api/incidents/{incident_id}/resolve", json={})  # curl, the CLI: no Origin
    assert r.status_code == 200 and r.json["status"] == "resolved"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_host_that_is_not_ours_is_refused(client, method):
    """DNS rebinding: evil.example resolves to 127.0.0.1, so the browser's request is same-origin for
    the attacker's page; only the Host header tells."""
    host = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
    if method == "GET":
        r = client.get("/api/incidents", headers=host)
    else:
        r = client.post("/api/maintenance", json={**WINDOW, "end": "2099-01-01T00:00:00Z"}, headers=host)
    assert r.status_code == 421 and r.json["field"] == "Host"
    for ours in ("127.0.0.1:8080", "[::1]:8080", "localhost", "app.localhost:8080", "10.0.0.5"):
        assert client.get("/api/incidents", headers={"Host": ours}).status_code == 200, ours
    assert client.get("/api/maintenance").json == []


def test_allowed_hosts_the_bound_name_and_token_holders_pass_the_host_check(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTMGMT_ALLOWED_HOSTS", "events.corp, .svc.cluster.local")
    monkeypatch.setenv("EVENTMGMT_INGEST_TOKEN", "s3cret")
    rt = build_runtime(Settings(home=tmp_path))
    try:
        client = create_app(rt, host="eventmgmt.internal").test_client()
        for host in ("events.corp", "eventmgmt.monitoring.svc.cluster.local:8080", "eventmgmt.internal:8080"):
            assert client.get("/api/incidents", headers={"Host": host}).status_code == 200, host
        assert client.get("/api/incidents", headers={"Host": "evil.example"}).status_code == 421
        token = {"Host": "anything.example", "Authorization": "Bearer s3cret"}
        assert client.post("/ingest/alertmanager", json=alerts(1), headers=token).status_code == 202
    finally:
        rt.stop()


@pytest.mark.parametrize("path", ["/", "/api/incidents", "/api/nope", "/static/dashboard/app.js", "/healthz"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_refused_writes_carry_them_too(client):
    r = client.post("/api/maintenance", data="x=1", headers={"Origin": EVIL})
    assert r.status_code == 403 and r.headers["X-Frame-Options"] == "DENY"


def test_reads_can_require_a_token(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTMGMT_READ_TOKEN", "r3ad")
    monkeypatch.setenv("EVENTMGMT_INGEST_TOKEN", "wr1te")
    rt = build_runtime(Settings(home=tmp_path))
    try:
        client = create_app(rt).test_client()
        for path in ("/api/incidents", "/api/events", "/", "/noise", "/api/maintenance", "/ingest/stats"):
            r = client.get(path)
            assert r.status_code == 401 and r.json["field"] == "Authorization", path
            assert any(v.startswith("Basic") for v in r.headers.getlist("WWW-Authenticate")), path
        assert client.get("/healthz").status_code == 200
        assert client.get("/static/dashboard/app.css").status_code == 200
        basic = "Basic " + base64.b64encode(b"anyone:r3ad").decode()
        for auth in ("Bearer r3ad", "Bearer wr1te", basic):
            assert client.get("/api/incidents", headers={"Authorization": auth}).status_code == 200, auth
        assert client.get("/api/incidents", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # the read token reads; it does not write
        r = client.post("/api/maintenance", json=WINDOW, headers={"Authorization": "Bearer r3ad"})
        assert r.status_code == 401
    finally:
        rt.stop()

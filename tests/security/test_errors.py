"""No 500 page, ever (issue 13, finding 4): a body nested 100,000 deep and every bad read parameter
is a 400 JSON error naming what is wrong; unknown API routes are JSON 404s; an unexpected exception
is a JSON 500."""

from __future__ import annotations

import pytest

from tests.support.serve import serve

NESTED = b"[" * 100_000 + b"]" * 100_000


def is_json_error(r, status: int, field: str | None = None) -> bool:
    return (
        r.status_code == status
        and r.mimetype == "application/json"
        and "error" in r.json
        and (field is None or r.json.get("field") == field)
    )


@pytest.mark.parametrize("path", ["/ingest", "/ingest/alertmanager", "/api/maintenance"])
def test_a_body_nested_100000_deep_is_a_400(client, path):
    r = client.post(path, data=NESTED, content_type="application/json")
    assert is_json_error(r, 400, "body"), (r.status_code, r.data[:200])


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/events?cursor=garbage", "cursor"),
        ("/api/events?cursor=9999-99-99|x", "cursor"),
        ("/api/incidents?cursor=garbage", "cursor"),
        ("/api/incidents?cursor=-5", "cursor"),
        ("/api/incidents?cursor=99999999999999999999999", "cursor"),
        ("/?cursor=garbage", "cursor"),
        ("/events?cursor=garbage", "cursor"),
        ("/api/events?since=9999-12-31T23:59:59-01:00", "since"),
        ("/api/events?since=yesterday", "since"),
        ("/noise?hours=abc", "hours"),
        ("/noise?hours=1e9", "hours"),
        ("/noise?hours=0", "hours"),
        ("/noise?hours=100000000000000000000", "hours"),
        ("/api/events?limit=0", "limit"),
        ("/api/events?limit=-1", "limit"),
        ("/api/incidents?limit=0", "limit"),
        ("/api/incidents?limit=lots", "limit"),
    ],
)
def test_bad_read_parameters_are_a_400_naming_them(loaded, path, field):
    r = loaded.get(path)
    assert is_json_error(r, 400, field), (path, r.status_code, r.data[:200])


def test_limits_are_honoured_and_large_ones_capped(loaded):
    assert len(loaded.get("/api/events?limit=1").json["events"]) == 1
    assert len(loaded.get("/api/events").json["events"]) == 100
    assert len(loaded.get("/api/events?limit=100000").json["events"]) == 120  # capped at 500, documented
    first = loaded.get("/api/incidents?limit=1").json
    assert len(first["incidents"]) == 1 and first["next"] == "1"
    assert loaded.get(f"/api/incidents?limit=1&cursor={first['next']}").status_code == 200


def test_a_maintenance_repeat_too_long_for_a_timedelta_is_a_400(client):
    body = {
        "name": "w",
        "start": "2026-11-07T08:00:00Z",
        "end": "2026-11-07T09:00:00Z",
        "every": "99999999999999d",
        "node": "n1",
    }
    r = client.post("/api/maintenance", json=body)
    assert is_json_error(r, 400, "every"), (r.status_code, r.data[:200])
    assert "too long" in r.json["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nope", 404),
        ("POST", "/api/nope/x", 404),
        ("GET", "/api/incidents/x/y/z", 404),
        ("DELETE", "/api/incidents", 405),
        ("GET", "/api/incidents/no-such-id", 404),
    ],
)
def test_unknown_api_routes_answer_json(client, method, path, status):
    r = client.open(path, method=method, json={} if method != "GET" else None)
    assert is_json_error(r, status), (r.status_code, r.data[:200])


@pytest.mark.parametrize(("method", "path", "status"), [("DELETE", "/api/incidents", 405), ("POST", "/api/nope", 404)])
def test_a_route_that_does_not_exist_says_so_whatever_the_body(client, method, path, status):
    """Without a JSON body the answer is still the route's 404 or 405, not the write guard's 415."""
    r = client.open(path, method=method)
    assert is_json_error(r, status), (r.status_code, r.data[:200])


def test_an_unexpected_exception_is_a_json_500(runtime, monkeypatch):
    from eventmgmt.runtime import app as app_module
    from eventmgmt.store import queries

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(queries, "list_incidents", broken)
    client = app_module.create_app(runtime).test_client()
    r = client.get("/api/incidents")
    assert is_json_error(r, 500) and "ref" in r.json and "a bug" not in r.json["error"]
    r = client.get("/")
    assert is_json_error(r, 500)


def test_on_the_real_server(tmp_path):
    """The same probes against `eventmgmt serve` (waitress): JSON, never an HTML page."""
    import httpx

    with serve(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/ingest", content=NESTED, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["field"] == "body"
        for path in ("/api/events?cursor=garbage", "/?cursor=garbage", "/noise?hours=1e9", "/api/nope"):
            r = http.get(path)
            assert r.status_code in (400, 404) and r.headers["content-type"].startswith("application/json"), path

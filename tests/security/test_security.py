"""Security checks: writes refuse requests without the token, no secret reaches the logs, payload
and header limits hold on the real server."""

from __future__ import annotations

import logging

import httpx

from eventmgmt.route.retry import Retrier
from eventmgmt.route.router import Router, default_routing
from eventmgmt.store import ensure_schema, make_engine
from tests.route.test_router import story
from tests.support.httpsink import http_sink
from tests.support.serve import serve

TOKEN = "s3cret-token-value"
KEY = "R0UTING-KEY-SECRET"


def test_write_endpoints_refuse_without_the_token_on_the_real_server(tmp_path):
    with serve(tmp_path, {"EVENTMGMT_INGEST_TOKEN": TOKEN, "EVENTMGMT_MAX_BODY_BYTES": "65536"}) as url:
        writes = [
            ("/ingest", {"alerts": []}),
            ("/ingest/alertmanager", {}),
            ("/api/incidents/x/ack", {}),
            ("/api/incidents/x/resolve", {}),
            ("/api/maintenance", {}),
            ("/api/maintenance/x/end", {}),
        ]
        for path, body in writes:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
                r = httpx.post(url + path, json=body, headers=headers)
                assert r.status_code == 401, (path, headers, r.status_code)
                assert r.json()["field"] == "Authorization"
        ok = httpx.post(url + "/api/incidents/x/ack", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 404  # authorised; the incident just does not exist
        # payload limit, before parsing
        big = b'{"alerts": [' + b'{"x": 1},' * 20000 + b"{}]}"
        r = httpx.post(
            url + "/ingest/alertmanager",
            content=big,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        # header limit: waitress refuses oversized request headers
        r = httpx.post(
            url + "/ingest", content=b"{}", headers={"X-Big": "a" * 300_000, "Authorization": f"Bearer {TOKEN}"}
        )
        assert r.status_code in (400, 413, 431)
    log = (tmp_path / "serve.log").read_text()
    assert TOKEN not in log


def test_no_secret_in_route_logs(tmp_path, caplog):
    with http_sink() as sink:
        env = {"EVENTMGMT_PAGERDUTY_ROUTING_KEY": KEY, "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue"}
        engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
        ensure_schema(engine)
        router = Router(
            default_routing(env),
            engine,
            httpx.Client(),
            lambda: None,
            "http://d",  # type: ignore[arg-type,return-value]
            Retrier(max_attempts=2, sleep=lambda s: None),
            env,
        )
        sink.answer("/v2/enqueue", 400, {"status": "invalid event", "message": "Event object is invalid"})
        with caplog.at_level(logging.DEBUG):
            router.route(story()[0][-1])
    assert "invalid event" in caplog.text  # the failure is reported...
    assert KEY not in caplog.text  # ...without the routing key

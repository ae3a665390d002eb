"""Deliveries are answered ahead of Flask (runtime/ingest_route.py) with Flask's checks and answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from waitress.server import create_server

from eventmgmt.runtime.app import Runtime, build_runtime, create_app
from eventmgmt.runtime.guard import SECURITY_HEADERS
from eventmgmt.runtime.ingest_route import source_of
from eventmgmt.runtime.serving import WAITRESS
from eventmgmt.settings import Settings


def hook(*pods: str) -> dict:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "namespace": "triton", "pod": p},
                "startsAt": "2026-11-28T08:00:00Z",
            }
            for p in pods
        ],
    }


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(home=tmp_path))
    yield runtime
    runtime.stop()


@pytest.mark.parametrize(
    ("method", "path", "source"),
    [
        ("POST", "/ingest", ""),
        ("POST", "/ingest/alertmanager", "alertmanager"),
        ("POST", "/ingest/", None),
        ("POST", "/ingest/a/b", None),
        ("POST", "/ingestion", None),
        ("POST", "/api/ingest", None),
        ("GET", "/ingest/alertmanager", None),
        ("PUT", "/ingest", None),
    ],
)
def test_only_deliveries_take_the_route(method: str, path: str, source: str | None) -> None:
    assert source_of(method, path) == source


def test_a_delivery_never_reaches_flask(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(rt)

    def no_flask(self: Flask) -> None:
        raise AssertionError("Flask dispatched a delivery")

    monkeypatch.setattr(Flask, "full_dispatch_request", no_flask)
    r = app.test_client().post("/ingest/alertmanager", json=hook("p1", "p2"))
    assert r.status_code == 202, r.text
    assert r.json["accepted"] == 2 and r.json["queued"] is True and len(r.json["ids"]) == 2
    assert r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Content-Length"]) == len(r.data)
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value


def test_other_requests_under_ingest_are_flasks(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    assert client.get("/ingest/stats").status_code == 200
    wrong_method = client.get("/ingest/alertmanager")
    assert wrong_method.status_code == 405 and wrong_method.json["field"] == "method"
    assert "POST" in wrong_method.headers["Allow"]
    nested = client.post("/ingest/alertmanager/extra", json=hook("p1"))
    assert nested.status_code == 404 and nested.json["field"] == "path"


def test_the_guard_runs_first(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    foreign_host = client.post("/ingest/alertmanager", json=hook("p1"), headers={"Host": "evil.example"})
    assert foreign_host.status_code == 421 and foreign_host.json["field"] == "Host"
    foreign_page = client.post("/ingest/alertmanager", json=hook("p1"), headers={"Origin": "http://evil.example"})
    assert foreign_page.status_code == 403 and foreign_page.json["field"] == "Origin"
    form = client.post("/ingest/alertmanager", data="a=1", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and form.json["field"] == "Content-Type"
    assert foreign_page.headers["X-Frame-Options"] == "DENY"
    assert rt.ingest.stats()["accepted"] == {}


def test_a_chunked_body_is_read_to_its_end_over_http(rt: Runtime) -> None:
    """Over real HTTP (waitress, as `serve` runs it): a body sent in chunks, without Content-Length."""
    server = create_server(create_app(rt, "127.0.0.1"), host="127.0.0.1", port=0, **WAITRESS)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    body = json.dumps(hook("p1", "p2", "p3")).encode()
    try:
        url = f"http://127.0.0.1:{server.effective_port}/ingest/alertmanager"  # type: ignore[union-attr]
        pieces = iter([body[:10], body[10:50], body[50:]])
        r = httpx.post(url, content=pieces, headers={"Content-Type": "application/json"}, timeout=10)
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 3
        whole = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert whole.status_code == 202 and whole.json()["ids"] == r.json()["ids"]
    finally:
        server.close()
        thread.join(5)


def test_an_oversized_body_is_refused_unread(tmp_path: Path) -> None:
    runtime = build_runtime(Settings(home=tmp_path, max_body_bytes=1000))
    try:
        r = create_app(runtime).test_client().post("/ingest/alertmanager", json=hook(*[f"p{i}" for i in range(50)]))
        assert r.status_code == 413 and r.json["field"] == "body"
    finally:
        runtime.stop()


def test_an_unexpected_failure_is_a_json_500_with_a_logged_reference(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(rt.ingest, "handle", broken)
    r = create_app(rt).test_client().post("/ingest/alertmanager", json=hook("p1"))
    assert r.status_code == 500
    assert r.json["ref"] in r.json["error"]
    assert any(r.json["ref"] in rec.getMessage() for rec in caplog.records)
    assert "KeyError" not in r.text and "Traceback" not in r.text


def test_the_status_line_names_the_status(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    unknown = client.post("/ingest/nosuchsource", json=hook("p1"))
    assert unknown.status == "404 Not Found" and unknown.json["error"]
    assert client.post("/ingest/alertmanager", json=hook("p1")).status == "202 Accepted"

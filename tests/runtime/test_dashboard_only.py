"""`eventmgmt serve --dashboard-only` (issue 14): the board, the read API and ack/resolve against a
state store another process fills; no ingest, drain, ticker or route; acks published to
events-correlated on the deployment's transport."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from eventmgmt.cli import build_parser
from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.runtime.dashboard_only import build_dashboard_runtime, create_dashboard_app, publisher_of
from eventmgmt.settings import Settings
from eventmgmt.store.tables import IncidentRow
from eventmgmt.transport import InProcessPublisher
from eventmgmt.transport.pipeline import CORRELATED
from eventmgmt.transport.publisher import RecordingPublisher
from tests.support.incidents import BACKFILL_TOKEN, SCENARIOS, capture_headers, load_captures, wait_drained

BACKGROUND = ("eventmgmt-drain", "eventmgmt-ticker", "eventmgmt-route", "eventmgmt-collector", "eventmgmt-retention")


@pytest.fixture
def filled(tmp_path, monkeypatch):
    """A state store the full runtime filled with the public-1 scenario, then stopped."""
    if not (SCENARIOS / "public-1" / "captures.jsonl").exists():
        pytest.skip("scenario captures not present")
    monkeypatch.delenv("EVENTMGMT_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("EVENTMGMT_TRANSPORT", raising=False)
    rt = build_runtime(Settings(home=tmp_path / "serve", backfill_token=BACKFILL_TOKEN, database_url=_url(tmp_path)))
    try:
        client = create_app(rt).test_client()
        for cap in load_captures("public-1"):
            assert (
                client.post(f"/ingest/{cap['source']}", json=cap["body"], headers=capture_headers(cap)).status_code
                == 202
            )
        wait_drained(client)
    finally:
        rt.stop()
    return _url(tmp_path)


def _url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_serves_the_board_and_the_api_without_ingest_or_background_threads(tmp_path, filled):
    before = {t.name for t in threading.enumerate()}
    rt = build_dashboard_runtime(Settings(home=tmp_path / "board", database_url=filled), publisher=RecordingPublisher())
    try:
        client = create_dashboard_app(rt).test_client()
        started = {t.name for t in threading.enumerate()} - before
        assert not [n for n in started if n.startswith(BACKGROUND)], started
        assert not [t.name for t in threading.enumerate() if t.name.startswith(BACKGROUND)]
        incidents = client.get("/api/incidents?limit=100").json["incidents"]
        assert incidents
        first = incidents[0]["id"]
        for path in (
            "/",
            f"/incidents/{first}",
            "/maintenance",
            "/events",
            "/noise",
            "/api/events",
            "/api/maintenance",
        ):
            assert client.get(path).status_code == 200, path
        assert client.get(f"/api/incidents/{first}").json["id"] == first
        assert client.get("/healthz").json["mode"] == "dashboard-only"
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").get_data(as_text=True)
        assert "eventmgmt_incidents" in metrics and "eventmgmt_queue_backlog_events" not in metrics
        for path in ("/ingest/alertmanager", "/ingest/loki"):
            assert client.post(path, json={"alerts": []}).status_code == 404, path
        assert client.get("/api/queue").status_code == 404
    finally:
        rt.stop()


def test_an_ack_changes_the_store_and_is_published_to_events_correlated(tmp_path, filled):
    published = RecordingPublisher()
    rt = build_dashboard_runtime(Settings(home=tmp_path / "board", database_url=filled), publisher=published)
    try:
        client = create_dashboard_app(rt).test_client()
        inc = next(i for i in client.get("/api/incidents?limit=100").json["incidents"] if i["status"] == "open")
        r = client.post(f"/api/incidents/{inc['id']}/ack", json={"by": "alice"})
        assert r.status_code == 200 and r.json["status"] == "acknowledged"
        with Session(rt.engine) as s:
            row = s.get(IncidentRow, inc["id"])
            assert row is not None and row.status == "acknowledged"
        told = published.correlated()
        assert [m["incident"]["id"] for m in told] == [inc["id"]]
        assert told[0]["incident"]["status"] == "acknowledged"
        assert told[0]["incident"]["acknowledged_by"] == "alice"
        assert list(published.messages) == [CORRELATED]
        r = client.post(f"/api/incidents/{inc['id']}/resolve", json={})
        assert r.status_code == 200 and published.correlated()[-1]["incident"]["status"] == "resolved"
    finally:
        rt.stop()


def test_the_publisher_follows_the_transport(tmp_path, monkeypatch):
    assert isinstance(publisher_of(Settings(home=tmp_path, transport="inprocess")), InProcessPublisher)
    calls = []
    monkeypatch.setattr("eventmgmt.wiring.publisher_for", lambda s: calls.append(s) or RecordingPublisher())
    assert isinstance(publisher_of(Settings(home=tmp_path, transport="pubsub")), RecordingPublisher) and calls


def test_the_cli_flag():
    args = build_parser().parse_args(["serve", "--dashboard-only", "--port", "8091"])
    assert args.dashboard_only and args.port == 8091
    assert not build_parser().parse_args(["serve"]).dashboard_only


def test_who_was_told_is_read_from_the_route_functions_ledger_in_the_same_database(tmp_path, filled):
    """The route function records what it told each receiver in the deployment's database; the
    dashboard-only page and API read it there (issue 14: the incident page's notification history)."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine

    from eventmgmt.route.ledger import LedgerRow

    rt = build_dashboard_runtime(Settings(home=tmp_path / "board", database_url=filled), publisher=RecordingPublisher())
    try:
        client = create_dashboard_app(rt).test_client()
        first = client.get("/api/incidents?limit=1").json["incidents"][0]["id"]
        assert client.get(f"/api/incidents/{first}").json["notifications"] == []
        with Session(create_engine(filled)) as s, s.begin():
            s.add(
                LedgerRow(
                    receiver="pagerduty",
                    incident_id=first,
                    state="triggered",
                    version=3,
                    sent=1,
                    updated_at=datetime.now(UTC),
                )
            )
        told = client.get(f"/api/incidents/{first}").json["notifications"]
        assert [(n["receiver"], n["state"], n["sent"]) for n in told] == [("pagerduty", "triggered", 1)]
        assert "pagerduty" in client.get(f"/incidents/{first}").get_data(as_text=True)
    finally:
        rt.stop()

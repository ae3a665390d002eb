"""An event's row keeps the event as JSON (`events.data`), encoded once by pydantic's serializer and
written as is (store.db.JsonText): read back, on SQLite and on PostgreSQL, it is the event itself,
non-ASCII text included, and a JSON column given a plain dict still gets that dict encoded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.model import Event
from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from eventmgmt.store.db import JsonText, json_serializer
from eventmgmt.store.tables import EventRow
from tests.support.incidents import wait_drained
from tests.support.pg import pg_schema

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with pg_schema() as url:
        yield url


def test_the_stored_event_is_the_event(tmp_path: Path, database_url: str | None) -> None:
    alert = {
        "status": "firing",
        "startsAt": NOW,
        "fingerprint": "fp-1",
        "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "pod": "triton-bert-7f9c6d8b4-x2kq9"},
        "annotations": {"summary": "Fehlerrate über 5 % — модель bert", "runbook_url": "https://runbooks/ε"},
    }
    rt = build_runtime(Settings(home=tmp_path, database_url=database_url))
    try:
        http = create_app(rt).test_client()
        r = http.post("/ingest/alertmanager", json={"alerts": [alert]})
        assert r.status_code == 202, r.json
        assert wait_drained(http)["dead_letters"] == 0
        with Session(rt.engine) as s:
            row = s.scalars(select(EventRow)).one()
        assert isinstance(row.data, dict)
        ev = Event.from_json(row.data)
        assert ev.id == r.json["ids"][0] and ev.summary == alert["annotations"]["summary"]
        assert ev.to_json() == row.data  # NOTE: what was written is exactly the event's JSON
        assert ev.runbook == "https://runbooks/ε"
    finally:
        rt.stop()


def test_a_plain_value_is_encoded_and_encoded_text_is_kept() -> None:
    assert json_serializer({"a": [1, "ü"]}) == '{"a": [1, "\\u00fc"]}'
    assert json_serializer(JsonText('{"a":1}')) == '{"a":1}'
    assert type(json_serializer(JsonText("{}"))) is str

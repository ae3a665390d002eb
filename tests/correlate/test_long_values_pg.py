"""What a sender names freely (an alert's name, its fingerprint, a capture id) can be longer than the
store's columns; on PostgreSQL, which enforces their lengths, such an event must still be stored and
correlated, not make its whole delivery fail again and again until it is set aside."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from eventmgmt.store.tables import EventRow
from tests.support.incidents import wait_drained
from tests.support.pg import pg_schema

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def test_long_names_fingerprints_and_capture_ids_are_stored_on_postgresql(tmp_path) -> None:
    long_name = "TritonModel" + "VeryLong" * 40  # unmatched: its kind is made from its name
    alerts = [
        {
            "status": "firing",
            "startsAt": NOW,
            "fingerprint": "f" * 300,
            "labels": {"alertname": long_name, "severity": "critical", "pod": "triton-bert-7f9c6d8b4-x2kq9"},
        },
        {
            "status": "firing",
            "startsAt": NOW,
            "fingerprint": "g" * 300,
            "labels": {"alertname": long_name + "Other", "severity": "critical", "pod": "triton-gpt-7f9c6d8b4-x2kq9"},
        },
    ]
    with pg_schema() as url:
        rt = build_runtime(Settings(home=tmp_path, database_url=url))
        try:
            http = create_app(rt).test_client()
            r = http.post("/ingest/alertmanager", json={"alerts": alerts}, headers={"X-Capture-Id": "c" * 300})
            assert r.status_code == 202, r.json
            q = wait_drained(http)
            assert q["dead_letters"] == 0
            with Session(rt.engine) as s:
                rows = s.scalars(select(EventRow)).all()
            assert sorted(row.id for row in rows) == sorted(r.json["ids"])
            kinds = {row.kind for row in rows}
            assert len(kinds) == 2 and all(len(k) <= 64 for k in kinds)  # two names, two kinds
            assert all(len(row.fingerprint) <= 80 and len(row.capture or "") <= 80 for row in rows)
            assert all(row.incident_id for row in rows)
        finally:
            rt.stop()


def test_a_kind_rule_longer_than_the_store_takes_is_refused_at_load() -> None:
    import pytest
    from pydantic import ValidationError

    from eventmgmt.config import KindRule

    with pytest.raises(ValidationError, match="at most 64 characters"):
        KindRule.model_validate({"kind": "k" * 65, "class": "alert", "when": {"signal": "x"}})

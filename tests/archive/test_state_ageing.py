"""The state store ages out on the archive's policy; live incidents keep their events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.archive import age_out_state, retention_config
from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.tables import EventRow, IncidentRow
from eventmgmt.transport import RecordingPublisher
from tests.correlate.helpers import at, ev

POLICY = retention_config(default_config().section("retention"))


def test_age_out_state(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    ensure_schema(engine)
    clock = {"now": at(0)}
    stage = CorrelateStage(default_config(), RecordingPublisher(), lambda: clock["now"], engine=engine)
    old = ev("high_error_rate", 0, pod="triton-a-68kxfnbbb2-wbq4j", fp="old")
    stage.process(old)
    stage.process(ev("high_error_rate", 1, pod="triton-a-68kxfnbbb2-wbq4j", fp="old", status="resolved"))
    stage.tick(at(60 * 24))  # resolved a day later, retired after the reopen window
    stage.tick(at(60 * 25))
    clock["now"] = at(60 * 24 * 100)
    recent = ev("high_error_rate", 60 * 24 * 100, pod="triton-b-68kxfnbbb2-wbq4j", fp="new")
    stage.process(recent)
    log_line = ev("model_load_failed", 60 * 24 * 40, pod="triton-c-68kxfnbbb2-wbq4j", source="log", fp="log")
    stage.process(log_line.model_copy(update={"received_at": at(60 * 24 * 100)}))
    now = at(60 * 24 * 100) + timedelta(minutes=1)
    dry = age_out_state(engine, POLICY, now, dry_run=True)
    assert dry["events:alert"] == 2 and dry["incidents"] == 1
    counts = age_out_state(engine, POLICY, now)
    assert counts == dry
    with Session(engine) as s:
        left = {r.id for r in s.scalars(select(EventRow))}
        incidents = [r.id for r in s.scalars(select(IncidentRow))]
    # alerts older than 90 days went; the 60-day-old log line stays (logs: a year); live incidents stay
    assert left == {recent.id, log_line.id}
    assert len(incidents) == 2

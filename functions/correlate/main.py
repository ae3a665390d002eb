"""Correlate function: events-enriched -> events-correlated (Eventarc Pub/Sub trigger).

State lives in the database (Cloud SQL PostgreSQL in production): any number of instances may run
at once; each event is one transaction under a lock, so none splits an incident."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request

from eventmgmt.clock import StreamClock
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.emulator.push import handle_push, warm_start
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, engine_for, publisher_for


@lru_cache(maxsize=1)
def stage() -> CorrelateStage:
    settings = Settings()
    # NOTE: a stream clock is the wall clock for live traffic; for captures posted with their own
    # receipt times (a backfill) it keeps incidents on the captures' timeline.
    return CorrelateStage(
        config_for(settings), publisher_for(settings), StreamClock(), engine=engine_for(settings.db_url)
    )


@functions_framework.cloud_event
def correlate(event: CloudEvent) -> None:
    stage().handle(event)


@functions_framework.http
def correlate_batch(request: Request) -> Any:
    """Several messages a push (the emulator's bridge, eventmgmt/emulator/push.py), in order: their
    events are correlated as one delivery, in as few transactions as announcing allows (see
    CorrelateStage.correlate); 200 once all are committed and announced."""
    return handle_push(request.mimetype, request.headers, request.get_data(), stage().handle_batch)


@functions_framework.http
def correlate_tick(request):  # type: ignore[no-untyped-def]
    """Scheduled (Cloud Scheduler): resolve incidents that went quiet when no event arrives."""
    messages = stage().tick()
    return {"resolved": sum(1 for m in messages if m.action is not None)}, 200


warm_start(stage)

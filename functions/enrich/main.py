"""Enrich function: events-raw -> events-enriched (Eventarc Pub/Sub trigger)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request

from eventmgmt.emulator.push import handle_push, warm_start
from eventmgmt.enrich.stage import EnrichStage
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, publisher_for


@lru_cache(maxsize=1)
def stage() -> EnrichStage:
    # NOTE: built on first use and kept for the instance's life, so the learned topology survives
    # between invocations on a warm instance.
    settings = Settings()
    return EnrichStage(config_for(settings), publisher_for(settings))


@functions_framework.cloud_event
def enrich(event: CloudEvent) -> None:
    stage().handle(event)


@functions_framework.http
def enrich_batch(request: Request) -> Any:
    """Several messages a push (the emulator's bridge, eventmgmt/emulator/push.py), enriched and
    passed on together: one publish for all of them; 200 once all are."""
    return handle_push(request.mimetype, request.headers, request.get_data(), stage().handle_batch)


warm_start(stage)

"""Route function: events-correlated -> PagerDuty, Slack, webhooks, change management (Eventarc trigger)."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request

from eventmgmt.clock import utcnow
from eventmgmt.emulator.push import handle_push, warm_start
from eventmgmt.route import Router
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, engine_for


@lru_cache(maxsize=1)
def router() -> Router:
    settings = Settings()
    return Router.from_settings(settings, config_for(settings), engine_for(settings.db_url), utcnow)


@functions_framework.cloud_event
def route(event: CloudEvent) -> None:
    # NOTE: a receiver that stays down gets its state through the outbox (route_flush), so the
    # message is acknowledged; only a store failure raises (500), and Pub/Sub redelivers. The ledger
    # makes any redelivery send only what was not sent.
    router().handle(event)


def _route_all(events: list[CloudEvent]) -> None:
    for event in events:
        router().handle(event)


@functions_framework.http
def route_batch(request: Request) -> Any:
    """Several messages a push (the emulator's bridge, eventmgmt/emulator/push.py), routed in order;
    200 once all are (a redelivery of any of them sends only what was not sent)."""
    return handle_push(request.mimetype, request.headers, request.get_data(), _route_all)


@functions_framework.http
def route_flush(request):  # type: ignore[no-untyped-def]
    """Scheduled (Cloud Scheduler): retry the states receivers were down for, then send what the
    state store says is owed and the ledger says was never told (a message dead-lettered)."""
    counts = router().flush()
    caught_up = router().catch_up()
    if caught_up["sent"]:
        logging.getLogger("eventmgmt.route").warning(json.dumps({"severity": "WARNING", "caught_up": caught_up}))
    return counts, 200


warm_start(router)

"""Route function: events-correlated -> PagerDuty, Slack, webhooks, change management (Eventarc trigger)."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import functions_framework
from cloudevents.http import CloudEvent

from eventmgmt.clock import utcnow
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


@functions_framework.http
def route_flush(request):  # type: ignore[no-untyped-def]
    """Scheduled (Cloud Scheduler): retry the states receivers were down for, then send what the
    state store says is owed and the ledger says was never told (a message dead-lettered)."""
    counts = router().flush()
    caught_up = router().catch_up()
    if caught_up["sent"]:
        logging.getLogger("eventmgmt.route").warning(json.dumps({"severity": "WARNING", "caught_up": caught_up}))
    return counts, 200

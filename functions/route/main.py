"""Route function: events-correlated -> PagerDuty, Slack, webhooks, change management (Eventarc trigger)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import functions_framework
from cloudevents.http import CloudEvent

from eventmgmt.route import Router
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, engine_for


def _now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def router() -> Router:
    settings = Settings()
    return Router.from_settings(settings, config_for(settings), engine_for(settings.db_url), _now)


@functions_framework.cloud_event
def route(event: CloudEvent) -> None:
    # NOTE: a receiver that stays down gets its state through the outbox (route_flush), so the
    # message is acknowledged; only a store failure raises (500), and Pub/Sub redelivers. The ledger
    # makes any redelivery send only what was not sent.
    router().handle(event)


@functions_framework.http
def route_flush(request):  # type: ignore[no-untyped-def]
    """Scheduled (Cloud Scheduler): retry the states receivers were down for."""
    return router().flush(), 200

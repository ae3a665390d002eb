"""Telling one receiver one state: its endpoint, the request its integration builds, the send under
the retry policy, and the report of a failure. Knows nothing of the ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from .. import settings as env
from ..incident import IncidentSnapshot
from ..logjson import log_json
from .config import Receiver, RoutingConfig
from .retry import DeliveryError, Retrier
from .sinks import Request, pagerduty, slack, webhook

log = logging.getLogger("eventmgmt.route")

# The variables each type of receiver reads its URL and key from, unless it names its own.
DEFAULT_VARIABLES: dict[str, tuple[str, str | None]] = {
    "pagerduty": (env.PAGERDUTY_URL, env.PAGERDUTY_ROUTING_KEY),
    "slack": (env.SLACK_WEBHOOK_URL, None),
    "webhook": (env.WEBHOOK_URL, None),
    "change": (env.CHANGE_WEBHOOK_URL, None),
}


@dataclass(frozen=True)
class Endpoint:
    url: str
    key: str
    url_variable: str  # named when the URL is missing


def endpoint(receiver: Receiver, variables: Mapping[str, str]) -> Endpoint:
    url_var, key_var = DEFAULT_VARIABLES[receiver.type]
    url_var = receiver.url_env or url_var
    return Endpoint(variables.get(url_var, ""), variables.get(receiver.key_env or key_var or "", ""), url_var)


def variable_names(routing: RoutingConfig) -> Iterable[str]:
    """The variables a routing configuration's receivers name for their URLs and keys."""
    return [name for r in routing.receivers for name in (r.url_env, r.key_env) if name]


def request(receiver: Receiver, at: Endpoint, snap: IncidentSnapshot, state: str, dashboard: str) -> Request:
    if receiver.type == "pagerduty":
        return pagerduty.request(snap, state, at.key, at.url, dashboard)
    if not at.url:
        raise DeliveryError(f"{receiver.name}: no URL configured (${at.url_variable})", None, False)
    if receiver.type == "slack":
        return slack.request(snap, state, at.url, dashboard)
    return webhook.request(snap, state, at.url, dashboard)


class Notifier:
    def __init__(
        self, client: httpx.Client, endpoints: Mapping[str, Endpoint], dashboard_url: str, retrier: Retrier
    ) -> None:
        self.client = client
        self.endpoints = endpoints
        self.dashboard_url = dashboard_url
        self.retrier = retrier

    def send(self, receiver: Receiver, snap: IncidentSnapshot, state: str, retrier: Retrier | None = None) -> None:
        """Raises DeliveryError when the receiver did not take it (`retryable` says whether it may)."""
        req = request(receiver, self.endpoints[receiver.name], snap, state, self.dashboard_url)
        (retrier or self.retrier).send(
            lambda: self.client.post(req.url, json=req.body, headers=req.headers), f"{receiver.name} {state} {snap.id}"
        )

    def close(self) -> None:
        self.client.close()


def log_failure(receiver: str, incident_id: str, state: str, err: DeliveryError) -> None:
    log_json(
        log,
        "ERROR",
        str(err),
        stage="route",
        receiver=receiver,
        incident=incident_id,
        state=state,
        status=err.status,
        retryable=err.retryable,
    )


def log_sent(receiver: str, snap: IncidentSnapshot, state: str) -> None:
    """One line per state a receiver was told: who was paged, for what, when (the log's timestamp)."""
    log_json(
        log,
        "INFO",
        f"{receiver}: {state} {snap.id}",
        stage="route",
        receiver=receiver,
        incident=snap.id,
        state=state,
        incident_severity=snap.severity.value,
        title=snap.title[:200],
    )

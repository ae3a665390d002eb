"""The messages stages exchange, decoded and encoded: canonical events on events-raw and
events-enriched, correlated messages on events-correlated. Route and archive need only this."""

from __future__ import annotations

import json
import logging

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from ..errors import InputError
from ..incident import CorrelatedMessage
from ..model import Event
from .envelope import decode
from .publisher import Outgoing, Publisher, publish_all

log = logging.getLogger("eventmgmt")


def decode_event(ce: CloudEvent) -> Event:
    payload, _ = decode(ce)
    try:
        return Event.from_json(payload)
    except ValidationError as err:
        raise InputError(
            f"message is not a canonical event: {err.errors()[0]['msg']}", field="data.message.data"
        ) from None


def decode_events(stage: str, ces: list[CloudEvent]) -> list[Event]:
    """The canonical events among `ces`; the malformed ones are logged as poison and skipped."""
    events = []
    for ce in ces:
        try:
            events.append(decode_event(ce))
        except InputError as err:
            poison(stage, err, ce)
    return events


def poison(stage: str, err: InputError, ce: CloudEvent) -> None:
    """Bad input is acknowledged (retrying cannot fix it) and logged for the dead-letter review."""
    log.error(
        json.dumps({"severity": "ERROR", "stage": stage, "message": err.message, "field": err.field, "ce_id": ce["id"]})
    )


def decode_correlated(ce: CloudEvent, stage: str) -> CorrelatedMessage | None:
    """The CorrelatedMessage in a messagePublished CloudEvent; None (logged as poison) if malformed."""
    try:
        payload, _ = decode(ce)
        return CorrelatedMessage.model_validate(payload)
    except InputError as err:
        poison(stage, err, ce)
    except ValidationError as err:
        msg = f"message is not a correlated message: {err.errors()[0]['msg']}"
        poison(stage, InputError(msg, field="data.message.data"), ce)
    return None


def publish_events(publisher: Publisher, topic: str, events: list[Event], attrs: dict[str, str] | None = None) -> None:
    """Canonical events as one batch, each under its cluster's ordering key."""
    out = [
        Outgoing(ev.to_json(), {"event_id": ev.id, "kind": ev.kind, **(attrs or {})}, ev.ordering_key) for ev in events
    ]
    publish_all(publisher, topic, out)


def publish_messages(publisher: Publisher, messages: list[CorrelatedMessage]) -> None:
    out = []
    for m in messages:
        attrs = {"event_id": m.event.id, "class": m.event.cls.value}
        if m.incident_id:
            attrs["incident_id"] = m.incident_id
        if m.action:
            attrs["action"] = m.action.value
        # NOTE: one ordering key per incident keeps its snapshots in version order where the
        # transport honours ordering; consumers still drop stale versions.
        out.append(Outgoing(m.to_json(), attrs, m.incident_id))
    publish_all(publisher, "events-correlated", out)

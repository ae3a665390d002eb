"""The messages stages exchange, decoded and encoded: canonical events on events-raw and
events-enriched, correlated messages on events-correlated. Route and archive need only this."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from ..errors import InputError
from ..incident import CorrelatedMessage
from ..logjson import log_json
from ..model import Event
from .envelope import decode
from .pipeline import CORRELATED
from .publisher import EncodedMessage, Outgoing, Publisher, batch_items, publish_all

log = logging.getLogger("eventmgmt")


# NOTE: a batch message holds at most this many events: Pub/Sub takes messages up to 10 MB, and
# an event is about 1-2 KB on the wire.
BATCH_EVENTS = 1000


def decode_event(ce: CloudEvent) -> Event:
    """The one canonical event of a message (a batch of one, or a bare event)."""
    events = decode_batch(ce)
    if len(events) != 1:
        raise InputError(f"expected one event, the message holds {len(events)}", field="data.message.data")
    return events[0]


def decode_batch(ce: CloudEvent) -> list[Event]:
    """The canonical events of a message: `{"events": [...]}` (a delivery's events, in order) or one
    bare event (what earlier versions published)."""
    payload, _ = decode(ce)
    if isinstance(payload, dict) and not isinstance(payload.get("events", []), list):
        raise InputError("message `events` is not a list", field="data.message.data.events")
    items = batch_items(payload)
    try:
        return [Event.from_json(item) for item in items]
    except ValidationError as err:
        raise InputError(
            f"message is not a canonical event: {err.errors()[0]['msg']}", field="data.message.data"
        ) from None


def decode_events(stage: str, ces: list[CloudEvent]) -> list[Event]:
    """The canonical events of `ces`, in order; a malformed message is logged as poison and skipped."""
    events = []
    for ce in ces:
        try:
            events.extend(decode_batch(ce))
        except InputError as err:
            poison(stage, err, ce)
    return events


def poison(stage: str, err: InputError, ce: CloudEvent) -> None:
    """Bad input is acknowledged (retrying cannot fix it) and logged for the dead-letter review."""
    log_json(log, "ERROR", err.message, stage=stage, field=err.field, ce_id=ce["id"])


def decode_correlated(ce: CloudEvent, stage: str) -> list[CorrelatedMessage]:
    """The CorrelatedMessages in a messagePublished CloudEvent: a batch (`{"messages": [...]}`, one
    correlate transaction's, see correlated_messages) or one bare message (what earlier versions
    published). Nothing (logged as poison) if malformed."""
    try:
        payload, _ = decode(ce)
        if isinstance(payload, dict) and "messages" in payload and "event" not in payload:
            items = payload["messages"]
            if not isinstance(items, list):
                raise InputError("message `messages` is not a list", field="data.message.data.messages")
            return [CorrelatedMessage.model_validate(item) for item in items]
        return [CorrelatedMessage.model_validate(payload)]
    except InputError as err:
        poison(stage, err, ce)
    except ValidationError as err:
        msg = f"message is not a correlated message: {err.errors()[0]['msg']}"
        poison(stage, InputError(msg, field="data.message.data"), ce)
    return []


def publish_events(publisher: Publisher, topic: str, events: list[Event], attrs: dict[str, str] | None = None) -> None:
    """A delivery's events as few messages as possible: one per cluster (its ordering key) and up
    to BATCH_EVENTS events, in order. One Pub/Sub message, one push to the next function, one
    correlate transaction per delivery, instead of one each per event. A publisher that can hand
    the events on as they are (in-process) gets them so."""
    if not events:
        return
    direct = getattr(publisher, "publish_objects", None)
    if direct is not None:
        direct(topic, events, lambda: event_messages(events, attrs), lambda: event_messages_text(events, attrs))
        return
    publish_all(publisher, topic, event_messages(events, attrs))


def event_messages(events: list[Event], attrs: dict[str, str] | None = None) -> list[Outgoing]:
    """The batch messages of `events` (see publish_events)."""
    return [Outgoing({"events": [ev.to_json() for ev in part]}, head, key) for key, part, head in _parts(events, attrs)]


def event_messages_text(events: list[Event], attrs: dict[str, str] | None = None) -> list[EncodedMessage]:
    """`event_messages` as JSON text, each event encoded once, by pydantic's serializer (the same
    JSON as `json.dumps(ev.to_json())`, in a third of the time)."""
    out = []
    for key, part, head in _parts(events, attrs):
        text = '{"events":[' + ",".join(ev.model_dump_json(by_alias=True) for ev in part) + "]}"
        out.append(EncodedMessage(text, head, key, len(part)))
    return out


def _parts(events: list[Event], attrs: dict[str, str] | None) -> Iterator[tuple[str, list[Event], dict[str, str]]]:
    by_key: dict[str, list[Event]] = {}
    for ev in events:
        by_key.setdefault(ev.ordering_key, []).append(ev)
    for key, evs in by_key.items():
        for i in range(0, len(evs), BATCH_EVENTS):
            part = evs[i : i + BATCH_EVENTS]
            yield key, part, {"event_id": part[0].id, "kind": part[0].kind, "events": str(len(part)), **(attrs or {})}


def publish_messages(publisher: Publisher, messages: list[CorrelatedMessage]) -> None:
    if not messages:
        return
    direct = getattr(publisher, "publish_objects", None)
    if direct is not None:
        direct(CORRELATED, messages, lambda: correlated_messages(messages))
        return
    publish_all(publisher, CORRELATED, correlated_messages(messages))


def correlated_messages(messages: list[CorrelatedMessage]) -> list[Outgoing]:
    """One correlate transaction's messages as few Pub/Sub messages as possible: one per cluster
    (ordering key), up to BATCH_EVENTS each, in order. Route and archive get one push per
    delivery, not one per event: on the emulator a 100-alert webhook was 100 HTTP pushes to each.
    Consumers drop stale snapshot versions, so order across clusters does not matter."""
    by_key: dict[str, list[CorrelatedMessage]] = {}
    for m in messages:
        by_key.setdefault(m.event.ordering_key, []).append(m)
    out = []
    for key, ms in by_key.items():
        for i in range(0, len(ms), BATCH_EVENTS):
            part = ms[i : i + BATCH_EVENTS]
            attrs = {"event_id": part[0].event.id, "messages": str(len(part))}
            incidents = {m.incident_id for m in part if m.incident_id}
            if len(incidents) == 1:
                attrs["incident_id"] = next(iter(incidents))
            out.append(Outgoing({"messages": [m.to_json() for m in part]}, attrs, key))
    return out

"""The enrich and correlate stages as CloudEvent handlers: decode, call the library, publish."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from cloudevents.http import CloudEvent
from pydantic import ValidationError
from sqlalchemy import Engine

from .config import Config, MaintenanceWindow
from .correlate.engine import Correlator
from .correlate.repo import MemoryRepo
from .correlate.sqlrepo import SqlRepo, locked_session
from .enrich import TopologyGraph, enrich
from .errors import InputError
from .incident import CorrelatedMessage
from .model import Event
from .transport import Outgoing, Publisher, decode, publish_all

log = logging.getLogger("eventmgmt")
Clock = Callable[[], datetime]


def decode_event(ce: CloudEvent) -> Event:
    payload, _ = decode(ce)
    try:
        return Event.from_json(payload)
    except ValidationError as err:
        raise InputError(
            f"message is not a canonical event: {err.errors()[0]['msg']}", field="data.message.data"
        ) from None


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


class EnrichStage:
    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        graph: TopologyGraph | None = None,
        windows: Callable[[], list[MaintenanceWindow]] | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.graph = graph or TopologyGraph()
        self.windows = windows

    def handle(self, ce: CloudEvent) -> None:
        self.handle_batch([ce])

    def handle_batch(self, ces: list[CloudEvent]) -> None:
        """Messages published together (one webhook) are enriched and passed on together."""
        events = _decode_all("enrich", ces)
        windows = self.windows() if self.windows and events else None
        out = []
        for ev in events:
            enriched = enrich(ev, self.config, self.graph, windows)
            attrs = {"event_id": enriched.id, "kind": enriched.kind}
            out.append(Outgoing(enriched.to_json(), attrs, enriched.ordering_key))
        publish_all(self.publisher, "events-enriched", out)


def _decode_all(stage: str, ces: list[CloudEvent]) -> list[Event]:
    events = []
    for ce in ces:
        try:
            events.append(decode_event(ce))
        except InputError as err:
            poison(stage, err, ce)
    return events


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


class CorrelateStage:
    """Correlates against a MemoryRepo (replay, tests) or, given an engine, the SQL store."""

    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        clock: Clock,
        *,
        engine: Engine | None = None,
        repo: MemoryRepo | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.engine = engine
        self.memory = repo if repo is not None else (None if engine is not None else MemoryRepo())

    def handle(self, ce: CloudEvent) -> None:
        self.handle_batch([ce])

    def handle_batch(self, ces: list[CloudEvent]) -> None:
        events = _decode_all("correlate", ces)
        if events:
            self.process_many(events)

    def process(self, ev: Event) -> list[CorrelatedMessage]:
        return self.process_many([ev])

    def process_many(self, events: list[Event]) -> list[CorrelatedMessage]:
        """Events in arrival order, in one transaction: a webhook's alerts cost one lock, one commit
        and one read of the incidents they share. All or nothing: if one fails, none is stored and
        the whole delivery is retried (ids are stable, so nothing is counted twice)."""
        messages: list[CorrelatedMessage] = []
        if self.memory is not None:
            correlator = Correlator(self.config, self.memory)
            for ev in events:
                messages.extend(correlator.process(ev, self._now(ev)).messages)
        else:
            assert self.engine is not None
            with locked_session(self.engine) as session:
                repo = SqlRepo(session, self.config.chains, self.config.response)
                repo.prefetch(events)
                correlator = Correlator(self.config, repo)
                for ev in events:
                    messages.extend(correlator.process(ev, self._now(ev)).messages)
        # NOTE: publish after commit: a crash in between redelivers the events, which are then
        # duplicates for correlate, so the messages are lost only if publishing itself keeps failing.
        publish_messages(self.publisher, messages)
        return messages

    def _now(self, ev: Event) -> datetime:
        observe = getattr(self.clock, "observe", None)
        if observe is not None:
            observe(ev.received_at)
        return max(self.clock(), ev.received_at)

    def tick(self, now: datetime | None = None) -> list[CorrelatedMessage]:
        at = now or self.clock()
        if self.memory is not None:
            messages = Correlator(self.config, self.memory).tick(at)
        else:
            assert self.engine is not None
            with locked_session(self.engine) as session:
                repo = SqlRepo(session, self.config.chains, self.config.response)
                messages = Correlator(self.config, repo).tick(at)
        publish_messages(self.publisher, messages)
        return messages

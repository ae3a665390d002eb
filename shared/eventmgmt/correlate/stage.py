"""The correlate stage as a CloudEvent handler: decode, correlate in one transaction, publish."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.http import CloudEvent

from ..config import Config
from ..incident import CorrelatedMessage, IncidentAction, IncidentStatus
from ..logjson import log_json
from ..model import Event
from ..transport import Publisher
from ..transport.messages import decode_events, publish_messages
from .coalesce import coalesce
from .engine import Correlator
from .repo import MemoryRepo

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .sqlrepo import SqlRepo

Clock = Callable[[], datetime]
log = logging.getLogger("eventmgmt.correlate")

# NOTE: a checkpoint costs an attribute read when ingest is idle; one per event bounds the wait.
CHECKPOINT_EVENTS = 1


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
        # NOTE: the SQL store is imported only when used: replay and tests on the memory repository
        # start without SQLAlchemy (a fifth of a second of the replay command's time).
        self.cache: Any = None
        if engine is not None:
            from .sqlrepo import IncidentCache

            self.cache = IncidentCache()
        # NOTE: called every CHECKPOINT_EVENTS events of a delivery; embedded, it steps aside while
        # ingest takes a delivery (runtime/priority.py). It must not touch correlation state.
        self.checkpoint: Callable[[], None] | None = None

    def handle(self, ce: CloudEvent) -> None:
        self.handle_batch([ce])

    def handle_batch(self, ces: list[CloudEvent]) -> None:
        events = decode_events("correlate", ces)
        if events:
            self.process_many(events)

    def process(self, ev: Event) -> list[CorrelatedMessage]:
        return self.process_many([ev])

    def process_many(self, events: list[Event]) -> list[CorrelatedMessage]:
        """Correlate a delivery (see `correlate`), then publish what it did."""
        messages = self.correlate(events)
        if self.checkpoint is not None:
            self.checkpoint()  # NOTE: between the commit and announcing it (route, archive)
        _log_lifecycle(messages)
        # NOTE: publish after commit: a crash in between redelivers the events, which are then
        # duplicates for correlate, so the messages are lost only if publishing itself keeps failing.
        publish_messages(self.publisher, messages)
        return messages

    def correlate(self, events: list[Event]) -> list[CorrelatedMessage]:
        """Events in arrival order, in as few transactions as announcing them allows: a webhook's
        alerts (or a backlog of webhooks) cost one lock, one commit and one read of the incidents
        they share. All or nothing per transaction: if one fails, none of its events is stored and
        the batch is retried (ids are stable, so nothing is counted twice).

        NOTE: each transaction announces an incident once, as it stands at its end (coalesce.py), and
        route pages from that. An incident opened in a transaction must therefore not also resolve in
        it, or it would never be paged: a transaction ends before the first event whose time could
        resolve an incident it opened (see `_Openings`)."""
        if self.memory is None:
            return self._correlate_sql(events)
        messages: list[CorrelatedMessage] = []
        i = 0
        while i < len(events):
            correlator = Correlator(self.config, self.memory, lazy=True)
            part, i = self._correlate_part(correlator, events, i)
            messages.extend(coalesce(part, correlator.snapshot, correlator.merged_into))
        return messages

    def _correlate_part(
        self, correlator: Correlator, events: list[Event], start: int
    ) -> tuple[list[CorrelatedMessage], int]:
        """Correlates events from `start` on, up to the first that must go in a new transaction;
        returns their messages and where the next transaction starts."""
        openings = _Openings(self.config)
        messages: list[CorrelatedMessage] = []
        i = start
        while i < len(events):
            ev = events[i]
            if self.checkpoint is not None and not (i - start) % CHECKPOINT_EVENTS:
                self.checkpoint()
            now = self._now(ev)
            if i > start and openings.may_resolve_by(now):
                break
            out = correlator.process(ev, now).messages
            openings.saw(out)
            messages.extend(out)
            i += 1
        return messages, i

    @contextmanager
    def _transaction(self, scope: frozenset[str] | None = None) -> Iterator[SqlRepo]:
        """One locked SQL transaction over a repository sharing this process's incident cache: what
        it leaves is remembered after commit; a failure empties the cache (objects changed by a
        transaction that did not commit)."""
        assert self.engine is not None
        from .sqlrepo import SqlRepo, locked_session, remember

        try:
            with locked_session(self.engine, scope) as session:
                repo = SqlRepo(session, self.config.chains, self.config.response, self.cache, scope)
                yield repo
                repo.finish()  # NOTE: idempotent: a caller may finish first to read what it wrote
        except BaseException:
            self.cache.clear()
            raise
        remember(self.cache, repo)

    def _correlate_sql(self, events: list[Event]) -> list[CorrelatedMessage]:
        # NOTE: partitioned by cluster on PostgreSQL only, where instances run in parallel; SQLite has
        # one writer, and its transactions hold the whole store as before.
        assert self.engine is not None
        scope = _clusters_of(events) if self.engine.dialect.name == "postgresql" else None
        messages: list[CorrelatedMessage] = []
        i = 0
        while i < len(events):
            with self._transaction(scope) as repo:
                repo.prefetch(events[i:])
                correlator = Correlator(self.config, repo, lazy=True)
                # NOTE: nothing is written until the end of the transaction: each changed incident is
                # serialised once, not at every query an event's lookups make.
                with repo.s.no_autoflush:
                    part, i = self._correlate_part(correlator, events, i)
                repo.finish()
                messages.extend(coalesce(part, correlator.snapshot, correlator.merged_into))
        return messages

    def set_status(self, incident_id: str, status: IncidentStatus, by: str, now: datetime) -> CorrelatedMessage:
        """An operator's acknowledgement or resolution, in a correlation transaction, then announced."""
        from .actions import set_status

        if self.memory is not None:
            msg = set_status(Correlator(self.config, self.memory), incident_id, status, by, now)
        else:
            with self._transaction() as repo:
                msg = set_status(Correlator(self.config, repo), incident_id, status, by, now)
        publish_messages(self.publisher, [msg])
        return msg

    def _now(self, ev: Event) -> datetime:
        """Event time: the latest event time seen so far, this event's included. Never the arrival
        time, so the same events in the same order make the same incidents however they arrive."""
        observe = getattr(self.clock, "observe", None)
        if observe is not None:
            return observe(ev.occurred_at)
        return max(self.clock(), ev.occurred_at)

    def tick(self, now: datetime | None = None) -> list[CorrelatedMessage]:
        """Resolve what went quiet by `now` (the clock's time by default). Retiring, which decides
        what later events can still join, follows event time alone (the clock's watermark)."""
        at = now or self.clock()
        settle = min(at, getattr(self.clock, "watermark", None) or at)
        if self.memory is not None:
            messages = Correlator(self.config, self.memory).tick(at, settle)
        else:
            with self._transaction() as repo:
                messages = Correlator(self.config, repo).tick(at, settle)
        publish_messages(self.publisher, messages)
        return messages


class _Openings:
    """The earliest event time at which an incident opened (or reopened) in this transaction could
    resolve: its opening event's time plus the shortest lifecycle period. Resolution needs an event
    time at least that late, so until one arrives the transaction may go on."""

    def __init__(self, config: Config) -> None:
        c = config.correlation
        self.period = min(c.quiet_period, c.stale_after)
        self.earliest: datetime | None = None

    def saw(self, messages: list[CorrelatedMessage]) -> None:
        for m in messages:
            if m.action in _OPENING and (self.earliest is None or m.event.occurred_at < self.earliest):
                self.earliest = m.event.occurred_at

    def may_resolve_by(self, now: datetime) -> bool:
        return self.earliest is not None and now >= self.earliest + self.period


_OPENING = (IncidentAction.opened, IncidentAction.reopened)


def _clusters_of(events: list[Event]) -> frozenset[str] | None:
    """The clusters a delivery touches, or None when an event names none (it may join any
    cluster's incident, so the transaction must hold them all)."""
    clusters = {ev.resources.cluster for ev in events}
    return None if None in clusters or not clusters else frozenset(c for c in clusters if c)


_LOGGED = ("opened", "reopened", "resolved", "merged")


def _log_lifecycle(messages: list[CorrelatedMessage]) -> None:
    """One line per incident opened, reopened, resolved or merged (after commit)."""
    if not log.isEnabledFor(logging.INFO):
        return
    for m in messages:
        if m.action is None or m.action.value not in _LOGGED or m.incident_id is None:
            continue
        fields: dict[str, Any] = {"stage": "correlate", "incident": m.incident_id, "action": m.action.value}
        if m.incident is not None:
            fields.update(incident_severity=m.incident.severity.value, title=m.incident.title[:200])
            if m.incident.merged_into:
                fields["merged_into"] = m.incident.merged_into
        log_json(log, "INFO", f"incident {m.action.value}: {m.incident_id}", **fields)

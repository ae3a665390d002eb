"""The one thread that takes accepted deliveries off the durable queue, in order, several at a time
(at most `max_events` events), and hands each on as it would have gone on in the request (enrich,
then correlate in one transaction); rows are removed only once handled.

Retry intent, decided here: a transient fault (the state store unreachable or locked) is retried
with backoff for as long as it lasts, and the backlog grows meanwhile (ingest refuses past its
bound). Any other exception is a bug in what the batch met: the batch is retried one row (a
delivery, or a part of a large one) at a time, and a row that still fails after `max_attempts` is
moved to the dead-letter table, logged, and the queue goes on. A crash between correlation's commit
and the removal hands the batch on again after restart; correlation recognises the event ids it
already stored, so nothing is stored or counted twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..ingest.queued import DELIVERIES, BuiltPart
from ..logjson import Severity, log_json
from ..model import Event
from ..transport import InProcessPublisher, Outgoing
from ..transport.publisher import batch_items
from .durable_queue import Delivery, DurableQueue
from .memory import TRIM_AFTER_EVENTS, trim
from .operator_changes import OPERATOR_CHANGES

log = logging.getLogger("eventmgmt")

TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, PoolTimeout)

Handler = Callable[[str, Sequence[Outgoing]], object]


class Ahead(Protocol):
    """What builds a batch's queued deliveries before the drain hands it on (build_ahead.py)."""

    def prepare(self, batch: list[Delivery]) -> list[Delivery]: ...
    def forget(self, through: int) -> None: ...
    def close(self) -> None: ...
    @property
    def counts(self) -> tuple[int, int, int]: ...


class Drainer:
    def __init__(
        self,
        queue: DurableQueue,
        handler: Handler,
        *,
        max_events: int = 1000,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        merge_deliveries: bool = False,
        checkpoint: Callable[[], None] | None = None,
        release: Callable[[], None] = trim,
        ahead: Ahead | None = None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.max_events = max_events
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        # NOTE: consecutive deliveries of a topic handed on as one batch: in a storm, a backlog of
        # webhooks is correlated in a few transactions instead of one each (a third less CPU), while
        # correlation still ends a transaction before an incident it opened could resolve, so every
        # incident is announced open before it resolves (correlate/stage.py).
        self.merge_deliveries = merge_deliveries
        # NOTE: called before each delivery is handed on: where the drain steps aside for ingest
        # (runtime/priority.py).
        self.checkpoint = checkpoint
        # NOTE: called once the queue is empty after TRIM_AFTER_EVENTS events: gives back the
        # page caches and freed heap a burst left (runtime/memory.py).
        self.release = release
        self.releases = 0  # NOTE: read by /metrics
        # NOTE: builds queued deliveries in another process while the batch before is correlated
        self.ahead = ahead
        self._stop = threading.Event()
        # NOTE: after a batch fails for a reason other than a transient fault, the rows up to this
        # sequence number are taken one at a time, so only the poison one is set aside.
        self._one_by_one_through = 0
        self._attempts = 0
        self._since_trim = 0
        self._handled = 0  # the last row of the batch in hand that went through
        self._built_here = 0  # NOTE: without a build process, the queued webhook rows built here
        self._thread = threading.Thread(target=self._run, name="eventmgmt-drain", daemon=True)

    def start(self) -> Drainer:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def draining(self) -> bool:
        return self.alive

    @property
    def restarts(self) -> int:
        return 0  # NOTE: a thread is not started again; the correlating process is

    @property
    def build_counts(self) -> tuple[int, int, int]:
        """Rows built by the build process, rows built here, its restarts (all 0 without one)."""
        return self.ahead.counts if self.ahead is not None else (0, self._built_here, 0)

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the batch in hand; what is left stays queued for the next start."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.ahead is not None:
            self.ahead.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.step():
                    self.queue.wait_for_work(0.5)
            except Exception:
                log.exception("drain step failed")
                self._stop.wait(self.max_backoff)

    def step(self) -> bool:
        """Take one batch and handle it; False when the queue was empty."""
        batch = self.queue.take(self.max_events)
        if not batch:
            return False
        if batch[0].seq <= self._one_by_one_through:
            batch = batch[:1]
        self._handled = 0
        try:
            if self.ahead is not None:
                batch = self.ahead.prepare(batch)
            self._handle(batch)
        except Exception as err:
            # NOTE: the rows handed on before the failure are done: removed, never handed on again.
            if self._handled:
                self._remove(self._handled)
                self._attempts = 0
            rest = [d for d in batch if d.seq > self._handled]
            if isinstance(err, TRANSIENT):
                self._attempts += 1
                delay = min(self.max_backoff, self.backoff * 2 ** min(self._attempts - 1, 16))
                _log("WARNING", "correlation unavailable; the batch stays queued", rest, err, retry_in=delay)
                self._stop.wait(delay)
            else:
                self._failed(rest if self.merge_deliveries else rest[:1], err)
            return True
        self._attempts = 0
        if self._handled:
            self._remove(self._handled)
        if self.ahead is None:
            self._built_here += sum(1 for d in batch if d.topic == DELIVERIES and d.seq <= self._handled)
        self._since_trim += sum(d.events for d in batch if d.seq <= self._handled)
        if self._since_trim >= TRIM_AFTER_EVENTS and self.queue.backlog == 0:
            self.release()
            self.releases += 1
            self._since_trim = 0
        return True

    def _remove(self, through: int) -> None:
        self.queue.remove(through)
        if self.ahead is not None:
            self.ahead.forget(through)

    def _handle(self, batch: list[Delivery]) -> None:
        """Each row goes on as one batch (one correlation transaction), as the delivery would have
        gone on in the request; with `merge_deliveries`, consecutive rows of a topic go together."""
        if not self.merge_deliveries:
            for d in batch:
                if self._stop.is_set():
                    return
                if self.checkpoint is not None:
                    self.checkpoint()
                self.handler(d.topic, d.messages)
                self._handled = d.seq
            return
        i = 0
        while i < len(batch):
            j = i
            while j < len(batch) and batch[j].topic == batch[i].topic:
                j += 1
            self.handler(batch[i].topic, [m for d in batch[i:j] for m in d.messages])
            self._handled = batch[j - 1].seq
            i = j

    def _failed(self, batch: list[Delivery], err: Exception) -> None:
        if len(batch) > 1:
            _log("WARNING", "batch failed; retrying its deliveries one at a time", batch, err)
            self._one_by_one_through = batch[-1].seq
            self._attempts = 0
            return
        self._attempts += 1
        if self._attempts < self.max_attempts:
            delay = min(self.max_backoff, self.backoff * 2 ** (self._attempts - 1))
            _log("WARNING", "delivery failed; retrying", batch, err, attempt=self._attempts, retry_in=delay)
            self._stop.wait(delay)
            return
        _log("ERROR", "delivery moved to the dead-letter table", batch, err, attempts=self._attempts)
        self.queue.dead_letter(batch[0], self._attempts, f"{type(err).__name__}: {err}")
        if self.ahead is not None:
            self.ahead.forget(batch[0].seq)
        self._attempts = 0


def hand_on(publisher: InProcessPublisher, topic: str, messages: Sequence[Outgoing]) -> None:
    """A queued delivery's messages, handed to the stages as the events they carry (validated once
    here, not encoded and decoded again between stages); a row that does not hold canonical events
    goes on as messages, so the stage that takes it logs it as poison, as Pub/Sub would deliver it.
    A delivery queued as received goes to its builder (see build_runtime) as the payloads it holds."""
    if topic == DELIVERIES:
        publisher.publish_objects(topic, [m.payload for m in messages], lambda: [_as_queued(m) for m in messages])
        return
    if topic == OPERATOR_CHANGES:
        publisher.publish_many(topic, messages)  # NOTE: correlated messages, not events (operator_changes.py)
        return
    try:
        events = [Event.from_json(item) for m in messages for item in batch_items(m.payload)]
    except (ValidationError, TypeError, ValueError):
        publisher.publish_many(topic, messages)
        return
    publisher.publish_objects(topic, events, lambda: messages)


def _as_queued(m: Outgoing) -> Outgoing:
    """A message as queued, where the drain had built it already (build_ahead.py)."""
    built: Any = m.payload
    return Outgoing(built.payload, m.attributes, m.ordering_key) if isinstance(built, BuiltPart) else m


def _log(severity: Severity, message: str, batch: list[Delivery], err: BaseException, **extra: Any) -> None:
    log_json(
        log,
        severity,
        message,
        exc_info=err if severity == "ERROR" else None,
        rows=[batch[0].seq, batch[-1].seq],
        deliveries=[batch[0].delivery, batch[-1].delivery],
        events=sum(d.events for d in batch),
        error=f"{type(err).__name__}: {str(err)[:300]}",
        **extra,
    )

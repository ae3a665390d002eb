"""The archive stage: every correlated event and incident change, into the archive."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import date
from typing import Any

from cloudevents.http import CloudEvent

from ..config import Config
from ..incident import CorrelatedMessage
from ..settings import Settings
from ..transport.messages import decode_correlated
from .writer import ArchiveWriter, records

log = logging.getLogger("eventmgmt.archive")


class Archiver:
    """Buffers up to `batch` records; `flush()` writes them. The archive function flushes after each
    message (nothing is acknowledged before it is stored); the embedded runtime batches, trading the
    last few seconds of archive on a crash (the state store still holds them) for fewer objects.

    With `defer_up_to`, `add_many` only keeps the messages (up to that many; past it, it archives
    them all in the caller's thread) and `flush()` archives them: the embedded drain hands a storm's
    messages over at no cost and the runtime flushes once correlation is idle (runtime/app.py), so
    records, JSON and gzip (a sixth of the drain's time in a storm, measured) come after the storm's
    incidents, not between them."""

    def __init__(self, root: str, batch: int = 1, dedup: int = 100_000, defer_up_to: int = 0) -> None:
        self.writer = ArchiveWriter(root)
        self.batch = batch
        self.defer_up_to = defer_up_to
        self._buffer: list[tuple[str, date, str, dict[str, Any]]] = []
        self._deferred: list[CorrelatedMessage] = []
        self._deferred_since = 0.0  # time.monotonic() of the oldest message deferred
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._dedup = dedup
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, config: Config, batch: int = 200, defer_up_to: int = 0) -> Archiver:
        return cls(settings.archive, batch=batch, defer_up_to=defer_up_to)

    def handle(self, ce: CloudEvent) -> None:
        self.add_many(decode_correlated(ce, "archive"))

    def add_many(self, messages: list[CorrelatedMessage]) -> None:
        if self.defer_up_to:
            with self._lock:
                if not self._deferred:
                    self._deferred_since = time.monotonic()
                self._deferred.extend(messages)
                if len(self._deferred) < self.defer_up_to:
                    return
                messages, self._deferred = self._deferred, []
        for msg in messages:
            self.add(msg)

    @property
    def deferred(self) -> tuple[int, float]:
        """How many messages wait to be archived, and for how many seconds the oldest has."""
        with self._lock:
            n = len(self._deferred)
            return n, (time.monotonic() - self._deferred_since) if n else 0.0

    def add(self, msg: CorrelatedMessage, flush: bool = True) -> None:
        with self._lock:
            for row in records(msg):
                rid = f"{row[0]}:{row[2]}"
                if rid in self._recent:
                    continue  # NOTE: a redelivery seen recently: already stored or buffered
                self._recent[rid] = None
                if len(self._recent) > self._dedup:
                    self._recent.popitem(last=False)
                self._buffer.append(row)
            full = len(self._buffer) >= self.batch
        if full and flush:
            self._write_buffer()

    def flush(self) -> list[str]:
        """Archive what was deferred and write what is buffered; the objects written."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
        written = []
        for i in range(0, len(deferred), self.batch):
            for msg in deferred[i : i + self.batch]:
                self.add(msg, flush=False)
            written += self._write_buffer()
        return written + self._write_buffer()

    def _write_buffer(self) -> list[str]:
        with self._lock:
            rows, self._buffer = self._buffer, []
        return self.writer.write(rows) if rows else []

    def close(self) -> None:
        self.flush()

"""The archive stage: every correlated event and incident change, into the archive."""

from __future__ import annotations

import logging
import threading
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
    last few seconds of archive on a crash (the state store still holds them) for fewer objects."""

    def __init__(self, root: str, batch: int = 1, dedup: int = 100_000) -> None:
        self.writer = ArchiveWriter(root)
        self.batch = batch
        self._buffer: list[tuple[str, date, str, dict[str, Any]]] = []
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._dedup = dedup
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, config: Config, batch: int = 200) -> Archiver:
        return cls(settings.archive, batch=batch)

    def handle(self, ce: CloudEvent) -> None:
        self.add_many(decode_correlated(ce, "archive"))

    def add_many(self, messages: list[CorrelatedMessage]) -> None:
        for msg in messages:
            self.add(msg)

    def add(self, msg: CorrelatedMessage) -> None:
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
        if full:
            self.flush()

    def flush(self) -> list[str]:
        with self._lock:
            rows, self._buffer = self._buffer, []
        return self.writer.write(rows) if rows else []

    def close(self) -> None:
        self.flush()

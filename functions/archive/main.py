"""Archive function: events-correlated -> gzip JSON Lines in the archive bucket (Eventarc trigger)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from functools import lru_cache
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request

from eventmgmt.archive.writer import ArchiveWriter, records
from eventmgmt.emulator.push import handle_push, warm_start
from eventmgmt.incident import CorrelatedMessage
from eventmgmt.settings import Settings
from eventmgmt.transport.messages import decode_correlated


class MessageArchive:
    """Each Pub/Sub message is stored before the function returns, as its own objects (one per record
    type and day, named by the hash of its record ids), so Pub/Sub only drops a message once it is in
    the archive, and a redelivery rewrites the same objects instead of adding duplicates. A storage
    error raises and the message is redelivered.

    NOTE: one write per message, not one per correlated message in it: a correlate transaction's
    messages travel as one Pub/Sub message (up to 1,000), which was that many objects. Records seen
    recently (a correlated message announced again) are skipped, but only once they are stored."""

    def __init__(self, root: str, dedup: int = 100_000) -> None:
        self.writer = ArchiveWriter(root)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._writing: set[str] = set()
        self._dedup = dedup
        self._lock = threading.Lock()

    def handle(self, ce: CloudEvent) -> None:
        self.store(decode_correlated(ce, "archive"))

    def store(self, messages: list[CorrelatedMessage]) -> list[str]:
        fresh: dict[str, tuple[str, date, str, dict[str, Any]]] = {}
        with self._lock:
            for m in messages:
                for row in records(m):
                    rid = f"{row[0]}:{row[2]}"
                    if rid not in self._recent and rid not in self._writing:
                        fresh.setdefault(rid, row)
            # NOTE: claimed while written, so a push running alongside with the same record (an
            # event announced in two messages) skips it; if this write fails, this message is
            # redelivered and writes it then.
            self._writing.update(fresh)
        try:
            paths = self.writer.write(fresh.values()) if fresh else []
        finally:
            with self._lock:
                self._writing.difference_update(fresh)
        with self._lock:
            for rid in fresh:
                self._recent[rid] = None
            while len(self._recent) > self._dedup:
                self._recent.popitem(last=False)
        return paths


@lru_cache(maxsize=1)
def archiver() -> MessageArchive:
    return MessageArchive(Settings().archive)


@functions_framework.cloud_event
def archive(event: CloudEvent) -> None:
    archiver().handle(event)


def _archive_all(events: list[CloudEvent]) -> None:
    for event in events:
        archiver().handle(event)


@functions_framework.http
def archive_batch(request: Request) -> Any:
    """Several messages a push (the emulator's bridge, eventmgmt/emulator/push.py), each stored as
    `archive` stores it; 200 once all are."""
    return handle_push(request.mimetype, request.headers, request.get_data(), _archive_all)


warm_start(archiver)

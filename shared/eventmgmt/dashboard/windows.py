"""Maintenance windows added at run time (dashboard, CLI), stored beside the correlation state."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Float, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..config import MaintenanceWindow
from ..errors import InputError
from ..logjson import log_json
from ..matcher import Match
from ..store.db import Base, reader
from ..timeutil import iso

log = logging.getLogger("eventmgmt")


class WindowRow(Base):
    __tablename__ = "maintenance_windows"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    every_seconds: Mapped[float | None] = mapped_column(Float)
    match: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(120))


# NOTE: the flags live beside the matcher in its JSON column (no schema migration); rows stored
# before them have none and are read as they were added.
FLAGS_KEY = "_window"


def _utc(dt: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were stored in UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def when_json(m: Match) -> dict[str, Any]:
    return m.model_dump(exclude_defaults=True, mode="json", by_alias=True)


def to_window(row: WindowRow) -> MaintenanceWindow:
    match = dict(row.match or {})
    flags = match.pop(FLAGS_KEY, None)
    when = Match.model_validate(match)
    if not isinstance(flags, dict):
        flags = {"match_all": when.matches_everything(), "force": True}
    return MaintenanceWindow(
        name=row.name,
        start=_utc(row.start),
        end=_utc(row.end),
        every=timedelta(seconds=row.every_seconds) if row.every_seconds else None,
        when=when,
        match_all=bool(flags.get("match_all")),
        force=bool(flags.get("force")),
    )


def row_json(row: WindowRow) -> dict[str, Any]:
    """A stored window as the dashboard lists it and the audit trail records it."""
    match = dict(row.match or {})
    flags = match.pop(FLAGS_KEY, None) or {}
    return {
        "name": row.name,
        "start": iso(_utc(row.start)),
        "end": iso(_utc(row.end)),
        "every_seconds": row.every_seconds,
        "match": match,
        "match_all": bool(flags.get("match_all")),
        "force": bool(flags.get("force")),
        "created_by": row.created_by,
    }


def list_windows(engine: Engine) -> list[MaintenanceWindow]:
    """The stored windows enrich applies; one whose patterns are unsafe (stored before they were
    checked) is left out and logged, never run."""
    out = []
    with Session(reader(engine)) as s:
        for row in s.scalars(select(WindowRow).order_by(WindowRow.start)):
            try:
                w = to_window(row)
                problem = w.unsafe_pattern()
            except ValueError as err:
                problem = str(err)[:300]
            if problem:
                log_json(log, "ERROR", "maintenance window not applied", name=row.name, error=problem)
                continue
            out.append(w)
    return out


def list_rows(engine: Engine) -> list[dict[str, Any]]:
    with Session(reader(engine)) as s:
        return [row_json(r) for r in s.scalars(select(WindowRow).order_by(WindowRow.start))]


def add_window(engine: Engine, w: MaintenanceWindow, by: str, *, replace: bool = False) -> dict[str, Any] | None:
    """Stores `w`; a window of the same name is a 409 unless `replace`. Returns the replaced one."""
    match = {**when_json(w.when), FLAGS_KEY: {"match_all": w.match_all, "force": w.force}}
    row = WindowRow(
        name=w.name,
        start=w.start,
        end=w.end,
        every_seconds=w.every.total_seconds() if w.every else None,
        match=match,
        created_by=by,
    )
    try:
        with Session(engine) as s, s.begin():
            old = s.get(WindowRow, w.name)
            before = row_json(old) if old is not None else None
            if old is None:
                s.add(row)
            elif replace:
                s.merge(row)
            else:
                raise InputError(
                    f"a maintenance window named {w.name!r} exists; say `replace: true` to replace it", "name", 409
                )
    except IntegrityError:
        raise InputError(f"a maintenance window named {w.name!r} was just added", "name", 409) from None
    return before


def end_window(engine: Engine, name: str) -> dict[str, Any] | None:
    """Ends a window now (a recurring one stops recurring): it is deleted; the audit trail in the
    archive keeps its history. Returns the window ended, None if there was none."""
    with Session(engine) as s, s.begin():
        row = s.get(WindowRow, name)
        if row is None:
            return None
        ended = row_json(row)
        s.delete(row)
        return ended


class WindowProvider:
    """The stored windows for enrich, re-read at most every `ttl` seconds (not once per event)."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._cached: list[MaintenanceWindow] = []
        self._at = -1e9
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._at = -1e9

    def __call__(self) -> list[MaintenanceWindow]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._cached = list_windows(self.engine)
                self._at = time.monotonic()
            return self._cached

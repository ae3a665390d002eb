"""Maintenance windows added at run time (dashboard, CLI), stored beside the correlation state."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Float, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..config import MaintenanceWindow
from ..matcher import Match
from ..store.db import Base


class WindowRow(Base):
    __tablename__ = "maintenance_windows"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    every_seconds: Mapped[float | None] = mapped_column(Float)
    match: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(120))


def to_window(row: WindowRow) -> MaintenanceWindow:
    from datetime import timedelta

    return MaintenanceWindow(
        name=row.name,
        start=row.start,
        end=row.end,
        every=timedelta(seconds=row.every_seconds) if row.every_seconds else None,
        when=Match.model_validate(row.match or {}),
    )


def list_windows(engine: Engine) -> list[MaintenanceWindow]:
    with Session(engine) as s:
        return [to_window(r) for r in s.scalars(select(WindowRow).order_by(WindowRow.start))]


def add_window(engine: Engine, w: MaintenanceWindow, match: dict[str, Any], by: str | None) -> None:
    with Session(engine) as s, s.begin():
        s.merge(
            WindowRow(
                name=w.name,
                start=w.start,
                end=w.end,
                every_seconds=w.every.total_seconds() if w.every else None,
                match=match,
                created_by=by,
            )
        )


def end_window(engine: Engine, name: str, now: datetime) -> bool:
    """Ends a window now (a recurring one stops recurring): it is deleted; history stays in the archive."""
    with Session(engine) as s, s.begin():
        row = s.get(WindowRow, name)
        if row is None:
            return False
        s.delete(row)
        return True


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

"""Maintenance windows: one-off or recurring, matched per event."""

from __future__ import annotations

from datetime import datetime

from ..config import MaintenanceWindow
from ..model import Event
from ..regexguard import MATCH_CLIP


def window_bounds(w: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of `w` that contains `at`, if any."""
    start, end = w.start, w.end
    if start.tzinfo is None:
        start, end = start.replace(tzinfo=at.tzinfo), end.replace(tzinfo=at.tzinfo)
    if w.every is not None and at >= start:
        periods = (at - start) // w.every
        start, end = start + periods * w.every, end + periods * w.every
    return (start, end) if start <= at < end else None


def active_window(windows: list[MaintenanceWindow], ev: Event, at: datetime) -> tuple[str, datetime] | None:
    """(name, end) of the first window suppressing `ev` at time `at`."""
    for w in windows:
        bounds = window_bounds(w, at)
        # NOTE: guarded patterns are at worst quadratic; clipping values bounds them (Kubernetes
        # names are at most 253 characters, so no real match is lost).
        if bounds and w.when.matches(ev, clip=MATCH_CLIP):
            return w.name, bounds[1]
    return None

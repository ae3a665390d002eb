"""Read parameters of the API and the dashboard, checked before they reach a query: a bad one is a
400 naming it, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..errors import InputError
from ..store.queries import MAX_LIMIT, parse_event_cursor
from ..timeutil import parse_ts

MAX_OFFSET = 10**9 - 1
MAX_HOURS = 168


def limit(args: Mapping[str, str], default: int = 100) -> int:
    """1 or more; above MAX_LIMIT the page is MAX_LIMIT long (follow `next` for the rest)."""
    raw = (args.get("limit") or "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise InputError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw[:40]!r}", "limit") from None
    if n < 1:
        raise InputError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {n}", "limit")
    return min(n, MAX_LIMIT)


def offset_cursor(args: Mapping[str, str]) -> int:
    """The incident list's cursor: the offset from the previous page's `next`."""
    raw = (args.get("cursor") or "").strip()
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_OFFSET)):
        raise InputError(
            f"cursor must be the `next` of a previous page (0 to {MAX_OFFSET}), got {raw[:40]!r}", "cursor"
        )
    return int(raw)


def event_cursor(args: Mapping[str, str]) -> str | None:
    """The event list's cursor `<occurred_at>|<id>`, checked here so the query cannot fail on it."""
    raw = args.get("cursor") or None
    if raw is not None:
        try:
            parse_event_cursor(raw)
        except (ValueError, OverflowError):
            raise InputError(f"cursor must be the `next` of a previous page, got {raw[:60]!r}", "cursor") from None
    return raw


def since(args: Mapping[str, str]) -> datetime | None:
    raw = args.get("since") or None
    if raw is None:
        return None
    try:
        return parse_ts(raw)
    except (ValueError, OverflowError):
        raise InputError(f"since must be an RFC 3339 timestamp, got {raw[:60]!r}", "since") from None


def hours(args: Mapping[str, str], default: int = 24) -> int:
    raw = (args.get("hours") or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_HOURS):
        raise InputError(f"hours must be an integer from 1 to {MAX_HOURS}, got {raw[:40]!r}", "hours")
    return int(raw)

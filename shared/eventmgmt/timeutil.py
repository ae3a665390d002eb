"""Timestamp parsing shared by the wire formats."""

from __future__ import annotations

from datetime import UTC, datetime

_ZERO_YEAR = 1
# Go's zero time as Alertmanager and client-go write it (every firing alert's endsAt).
_GO_ZERO = frozenset({"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00+00:00"})


def parse_ts(value: str | float | int | datetime | None) -> datetime | None:
    """RFC 3339 / ISO 8601 (any fraction length, Z or offset) or epoch seconds; None for Go's zero time."""
    if value is None or value == "":
        return None
    if value in _GO_ZERO:
        return None  # NOTE: read as a time below, it is None too; this is only quicker
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(float(value), tz=UTC)
    else:
        try:
            # NOTE: Python 3.11 reads RFC 3339 with Z and any fraction itself: the common case, in C.
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = _normalised(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if dt.year <= _ZERO_YEAR:
        return None
    # NOTE: RFC 3339 with Z or +00:00 is read as UTC already (every alert's startsAt, twice an alert)
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


def _normalised(value: str) -> datetime:
    """Forms Python does not read itself (surrounding space, a lowercase z, more digits than it
    takes in some versions)."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # NOTE: Kubernetes MicroTime and Go print up to 9 fractional digits; Python takes 6.
    if "." in text:
        head, _, rest = text.partition(".")
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        text = f"{head}.{(frac + '000000')[:6]}{rest[i:]}"
    return datetime.fromisoformat(text)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")

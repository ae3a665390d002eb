"""What every wire-format parser shares: its context, the draft-event builder, and the per-record
loop that refuses one bad record without losing its neighbours."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..clock import sane
from ..errors import InputError, from_validation
from ..model import Event, Origin, Resources, Status, stable_hash
from ..timeutil import parse_ts
from .limits import DEFAULT, Limits, bound_labels, bound_resources, bound_signal


@dataclass(frozen=True)
class ParseContext:
    """Facts about the delivery, not the payload: which capture it is and when it arrived."""

    capture_id: str
    received_at: datetime
    cluster: str | None = None
    # NOTE: False when the caller saw the delivery's raw JSON and it has no \u0000 or surrogate
    # escape, so no record can hold such text and the walk of every record is skipped.
    check_text: bool = True
    limits: Limits = DEFAULT
    # NOTE: the index of the first record when the records are a slice of a larger delivery (a
    # queued part of one), so every event keeps its place in the delivery as it was received.
    first_index: int = 0


# NOTE: a NUL or a lone surrogate reaches a JSON string only as a \u escape, or as a surrogate encoded
# in UTF-8 bytes (json.loads decodes with surrogatepass), or in a UTF-16/32 body (NUL bytes), or (in
# text already decoded) as the character itself. A delivery with none of these needs no walk of its
# records for them: the common case, at full speed.
_BAD_TEXT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\xed[\xa0-\xbf]|\x00")
_BAD_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|[\x00\ud800-\udfff]")


def may_hold_bad_text(raw: bytes | str) -> bool:
    """Whether JSON `raw` may decode to a string with a NUL or a lone surrogate (ParseContext.check_text)."""
    # NOTE: each marker looked for on its own first (a byte search, several times faster than the
    # pattern over a storm webhook); the pattern only where one is present.
    if isinstance(raw, bytes):
        if b"\\u" not in raw and b"\xed" not in raw and b"\x00" not in raw:
            return False
        return _BAD_TEXT_BYTES.search(raw) is not None
    if raw.isascii() and "\\u" not in raw and "\x00" not in raw:
        return False
    return _BAD_TEXT.search(raw) is not None


@dataclass(frozen=True)
class Rejection:
    """One refused record of a delivery: its position, the field at fault and why."""

    index: int
    field: str
    error: str
    status: int = 400

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.error}


@dataclass
class Parsed:
    """What a delivery yielded: the events of its good records and the refusal of each bad one."""

    events: list[Event] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class Checked:
    """What a delivery would yield, known without building its events: the ids of the good records'
    events, the index of each good record, and the refusal of each bad one."""

    ids: list[str] = field(default_factory=list)
    good: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def validate[M](model: type[M] | TypeAdapter[M], body: Any, prefix: str = "body") -> M:
    """`body` as `model` (a pydantic model, or an adapter of a TypedDict); InputError naming the first
    field at fault."""
    if not isinstance(body, dict):
        raise InputError(f"{prefix}: expected a JSON object, got {type(body).__name__}", field=prefix)
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        assert issubclass(model, BaseModel)
        return model.model_validate(body)
    except ValidationError as err:
        raise from_validation(err, prefix) from None


def timestamp(value: str | float | None, where: str, name: str | None = None) -> datetime | None:
    """parse_ts, with an unparseable or unrepresentable time (year 10000, epoch 1e18, NaN) refused
    as InputError naming its field (`where`, or its member `name`: named only on a refusal, so a
    storm's good timestamps build no field paths)."""
    try:
        return parse_ts(value)
    except (ValueError, TypeError, OverflowError, OSError) as err:
        field = where if name is None else f"{where}.{name}"
        raise InputError(f"{field}: {err}", field=field) from None


def check_text(value: Any, prefix: str) -> None:
    """InputError naming the first string (key or value) that cannot be stored as UTF-8 text: a lone
    surrogate (`\\ud800`, valid JSON but not Unicode) or a NUL character (PostgreSQL refuses it).
    Walked without recursion, so a deep record cannot exhaust the stack."""
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, str):
            _check_str(v, where)
        elif isinstance(v, dict):
            for k, x in v.items():
                _check_str(k, f"{where} (a key)")
                stack.append((x, f"{where}.{k}"))
        elif isinstance(v, list):
            stack.extend((x, f"{where}.{i}") for i, x in enumerate(v))


def _storable(ev: Event) -> bool:
    """Whether every text an event carries on can be encoded as UTF-8 and stored: no lone surrogate,
    no NUL. One join and one encode, in C: cheap enough for every event."""
    parts = [ev.summary, ev.signal, ev.fingerprint, ev.runbook or ""]
    parts.extend(ev.labels)
    parts.extend(ev.labels.values())
    parts.extend(v for v in ev.resources.__dict__.values() if v)
    text = "\x1f".join(parts)
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_str(s: str, where: str) -> None:
    # NOTE: the pure-ASCII fast path keeps this check off the profile for ordinary traffic.
    if s.isascii() and "\x00" not in s:
        return
    for ch in s:
        if "\ud800" <= ch <= "\udfff":
            raise InputError(
                f"{where}: lone surrogate {ch.encode('unicode_escape').decode()} is not valid Unicode text",
                field=where,
            )
        if ch == "\x00":
            raise InputError(f"{where}: NUL character (\\u0000) is not allowed in text", field=where)


def limit_records(records: Sequence[Any], ctx: ParseContext) -> None:
    if len(records) > ctx.limits.max_records:
        raise InputError(
            f"the delivery holds {len(records):,} records; at most {ctx.limits.max_records:,} are taken in one "
            "(EVENTMGMT_MAX_RECORDS): send it in parts",
            "body",
            413,
        )


def _refusal(err: Exception, i: int, where: str) -> Rejection:
    if isinstance(err, InputError):
        return Rejection(i, err.field or where, err.message, err.status)
    # NOTE: timestamps and numbers are converted after validation (datetime raises OSError for
    # epoch seconds beyond the platform's time_t); their errors are still bad input.
    return Rejection(i, where, f"{where}: {err}")


BAD_INPUT = (InputError, ValueError, TypeError, OverflowError, OSError)


def _good_records[R](
    records: Sequence[Any],
    ctx: ParseContext,
    prefix: Callable[[int], str],
    one: Callable[[Any, int, str], R],
    rejected: list[Rejection],
) -> Iterator[tuple[int, R]]:
    """(index, `one(record, index, field prefix)`) of each good record; a record that is bad input
    (wrong shape, text that is not Unicode or has a NUL, a timestamp or number out of range) is
    refused alone, into `rejected`."""
    limit_records(records, ctx)
    for i, raw in enumerate(records, ctx.first_index):
        where = prefix(i)
        try:
            if ctx.check_text:
                check_text(raw, where)
            yield i, one(raw, i, where)
        except BAD_INPUT as err:
            rejected.append(_refusal(err, i, where))


def each_record(
    records: Sequence[Any],
    ctx: ParseContext,
    prefix: Callable[[int], str],
    one: Callable[[Any, int, str], list[Event]],
) -> Parsed:
    """The events of each good record (`one(record, index, field prefix)`), each bad one refused."""

    def storable(raw: Any, i: int, where: str) -> list[Event]:
        events = one(raw, i, where)
        if not all(_storable(ev) for ev in events):
            # NOTE: text made bad by decoding (a JSON-escaped surrogate inside a log line).
            raise InputError(f"{where}: text with a lone surrogate or NUL character cannot be stored", field=where)
        return events

    out = Parsed()
    for _, events in _good_records(records, ctx, prefix, storable, out.rejected):
        out.events.extend(events)
    return out


def check_records(
    records: Sequence[Any],
    ctx: ParseContext,
    prefix: Callable[[int], str],
    one: Callable[[Any, int, str], list[str]],
) -> Checked:
    """`each_record` for a source's check: `one` runs every check that can refuse a record and
    returns the ids of the events the record would yield."""
    out = Checked()
    for i, ids in _good_records(records, ctx, prefix, one, out.rejected):
        out.ids.extend(ids)
        out.good.append(i)
    return out


def event_id(ctx: ParseContext, source: str, identity: tuple[Any, ...], cluster: str | None) -> str:
    """The id of the event of `identity`, whose resources name `cluster` (see draft)."""
    if ctx.cluster and cluster == ctx.cluster:
        identity = (*identity, ctx.cluster)
    return f"{source}:{stable_hash(source, *identity, length=24)}"


def draft(
    ctx: ParseContext,
    index: int,
    *,
    source: str,
    identity: tuple[Any, ...],
    fingerprint: str,
    signal: str,
    occurred_at: datetime | None,
    resources: Resources,
    labels: dict[str, str],
    summary: str,
    status: Status = Status.firing,
    started_at: datetime | None = None,
    runbook: str | None = None,
) -> Event:
    """An unclassified event; `identity` is the source's own notion of one fact, so a retried
    delivery of the same fact gets the same id. An absurd event time (far future, before 1970) is
    replaced by the receipt time and flagged in `time_clamped`, so it cannot poison the delivery."""
    occurred, clamped = sane(occurred_at, ctx.received_at)
    # NOTE: the cluster is this ingest's own (EVENTMGMT_CLUSTER), not necessarily in the payload:
    # the same alert (same labels, same fingerprint) in two clusters is two facts and two alerts.
    eid = event_id(ctx, source, identity, resources.cluster)
    if ctx.cluster and resources.cluster == ctx.cluster:
        fingerprint = f"{fingerprint}@{ctx.cluster}"
    labels = bound_labels(labels, ctx.limits)
    signal, labels = bound_signal(signal, labels)
    resources = bound_resources(resources)
    if clamped:
        labels = {**labels, "time_clamped": occurred_at.isoformat() if occurred_at else ""}
    return Event(
        id=eid,
        fingerprint=fingerprint,
        source=source,
        signal=signal,
        status=status,
        occurred_at=occurred,
        received_at=ctx.received_at,
        resources=resources,
        labels=labels,
        summary=summary[:2000],
        origin=Origin(capture=ctx.capture_id, index=index),
        started_at=started_at,
        runbook=runbook,
    )

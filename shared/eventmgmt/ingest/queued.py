"""A delivery queued as received, checked but not yet parsed: ingest answers a storm webhook once its
records are checked and the delivery is durably queued, and its events are built behind the answer,
by the drain, exactly as ingest would have built them (same capture, receipt time and record
indexes), so the served path still yields what replay yields.

NOTE: building, classifying and encoding each event cost about four fifths of the accept path;
Alertmanager itself takes alerts into memory and processes them behind its answer."""

from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..classify import admit
from ..config import Config
from ..errors import InputError
from ..model import Event
from ..sources import CHECKERS, Checked, ParseContext, Rejection, parse_delivery
from ..sources.limits import Limits
from ..transport.publisher import EncodedMessage

# The durable queue's topic for such deliveries (events-raw rows hold built events).
DELIVERIES = "deliveries"
# NOTE: at most this many records a queued row: a 20,000-alert webhook is 20 rows, built and
# correlated one after the other, so the drain never holds a whole storm's events at once.
PART_RECORDS = 1000


def delivery_messages(
    source: str,
    body: dict[str, Any],
    ctx: ParseContext,
    checked: Checked,
    raw: bytes | None = None,
    part: int = PART_RECORDS,
) -> list[EncodedMessage]:
    """The queued messages of a checked delivery: its records in parts of at most `part`, each with
    the facts parsing needs and the indexes already refused (answered to the sender). A refused
    record is queued as null (parsing refuses it again, and nothing of it can harm the drain); a
    delivery of one part with nothing refused is queued as its `raw` JSON text, not encoded again."""
    field = CHECKERS[source].records
    records = body[field]
    attrs = {"source": source, "capture": ctx.capture_id}
    if raw is not None and len(records) <= part and not checked.rejected:
        text = _text(raw)
        if text is not None:
            head = json.dumps(_facts(source, ctx, 0, []), separators=(",", ":"))
            return [EncodedMessage(head[:-1] + ',"body":' + text + "}", attrs, None, len(checked.good))]
    refused = {r.index for r in checked.rejected}
    out = []
    for lo in range(0, len(records), part):
        hi = min(lo + part, len(records))
        good = bisect.bisect_left(checked.good, hi) - bisect.bisect_left(checked.good, lo)
        if not good:
            continue
        gone = [i for i in range(lo, hi) if i in refused]
        kept = [None if i in refused else records[i] for i in range(lo, hi)] if gone else records[lo:hi]
        row = {**_facts(source, ctx, lo, gone), "body": {**body, field: kept}}
        out.append(EncodedMessage(json.dumps(row, separators=(",", ":")), attrs, None, good))
    return out


def _facts(source: str, ctx: ParseContext, first_index: int, refused: list[int]) -> dict[str, Any]:
    return {
        "source": source,
        "capture": ctx.capture_id,
        "received_at": ctx.received_at.isoformat(),
        "cluster": ctx.cluster,
        "check_text": ctx.check_text,
        "first_index": first_index,
        "refused": refused,
    }


def _text(raw: bytes) -> str | None:
    """`raw` as text to embed, if it is the JSON object as read: UTF-8 without a byte order mark (a
    UTF-16 body, a BOM, surrogates encoded in UTF-8 are not: those deliveries are encoded again)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # NOTE: a NUL is never in JSON text, but is valid UTF-8: a UTF-16-LE or UTF-32-LE body without
    # a byte order mark (json.loads detects those) decodes to "{\x00..." here.
    if "\x00" in text:
        return None
    return text if text.lstrip(" \t\n\r").startswith("{") else None


@dataclass(frozen=True)
class QueuedDelivery:
    """A queued part as the drain reads it back."""

    source: str
    body: Any
    ctx: ParseContext
    refused: frozenset[int]


def read_delivery(payload: Any, limits: Limits) -> QueuedDelivery:
    """The part a queued message holds; InputError if it is not one (a poison row)."""
    try:
        ctx = ParseContext(
            str(payload["capture"]),
            datetime.fromisoformat(payload["received_at"]),
            payload["cluster"],
            check_text=bool(payload["check_text"]),
            limits=limits,
            first_index=int(payload["first_index"]),
        )
        return QueuedDelivery(str(payload["source"]), payload["body"], ctx, frozenset(payload["refused"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"queued delivery is malformed: {type(err).__name__}: {err}", field="body") from None


@dataclass(frozen=True)
class BuiltPart:
    """A queued part's events, built, classified and filtered, with what the drain still counts and
    reports of it (ingest/service.py `take_built`). `payload` is the queued message it came from."""

    payload: Any
    source: str
    capture: str
    received_at: datetime
    kept: list[Event]
    dropped: Counter[str]
    # NOTE: records the check let through and parsing refused: the sender was told they were accepted
    late: list[Rejection]


def build_part(payload: Any, limits: Limits, config: Config) -> BuiltPart:
    """The events of a queued part as `IngestService.handle` would have built them: a pure function
    of the payload, so the drain or a process of its own (runtime/build_ahead.py) may build it."""
    part = read_delivery(payload, limits)
    parsed = parse_delivery(part.source, part.body, part.ctx)
    late = [r for r in parsed.rejected if r.index not in part.refused]
    kept, dropped = admit(parsed.events, config)
    return BuiltPart(payload, part.source, part.ctx.capture_id, part.ctx.received_at, kept, dropped, late)

"""The ingest step, independent of any HTTP framework: bytes and headers in, status and JSON out."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import auth, jsontext
from ..classify import admit
from ..clock import EPOCH, MAX_SKEW
from ..config import Config
from ..errors import BacklogFull, InputError
from ..logjson import log_json
from ..model import Event
from ..settings import BACKFILL_TOKEN, Settings
from ..sources import Checked, ParseContext, Parsed, Rejection, check_delivery, detect, parse_delivery
from ..sources.base import may_hold_bad_text
from ..sources.cloudevent import from_binary
from ..sources.limits import DEFAULT as DEFAULT_LIMITS
from ..sources.limits import Limits
from ..timeutil import iso, parse_ts
from ..transport import Publisher
from ..transport.messages import publish_events
from ..transport.pipeline import RAW
from ..transport.publisher import EncodedMessage
from .queued import BuiltPart, build_part, delivery_messages
from .recorder import Recorder

log = logging.getLogger("eventmgmt.ingest")

_JSON_TYPES = ("application/json", "application/cloudevents+json", "text/json")
# One JSON value a line: Fluent Bit's http output with `Format json_lines` sends application/x-ndjson.
_JSON_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines")


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Delivery:
    """A delivery read: its source, its payload, its parse context, and what its check or parse found."""

    source: str
    payload: Any
    ctx: ParseContext
    checked: Checked | None
    parsed: Parsed

    @property
    def good(self) -> int:
        """How many of its records are good."""
        return len(self.checked.ids) if self.checked is not None else len(self.parsed.events)


class IngestService:
    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        clock: Callable[[], datetime],
        *,
        token: str | None = None,
        backfill_token: str | None = None,
        max_body_bytes: int = 5 * 1024 * 1024,
        recorder: Recorder | None = None,
        cluster: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        on_accepted: Callable[[list[Event], datetime], None] | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.token = token
        self.backfill_token = backfill_token
        self.max_body_bytes = max_body_bytes
        self.recorder = recorder
        self.cluster = cluster
        self.limits = limits
        # NOTE: told of each delivery's accepted events once they are queued (the heartbeat watch)
        self.on_accepted = on_accepted
        # NOTE: a publisher that stores deliveries as received (the embedded durable queue) takes a
        # checked delivery whole, and its events are built behind the answer (`expand`).
        self._queue_deliveries: Callable[[list[EncodedMessage]], object] | None = getattr(
            publisher, "append_deliveries", None
        )
        self._lock = threading.Lock()
        self.filtered: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.rejected_records: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Settings, config: Config, publisher: Publisher, clock: Callable[[], datetime]
    ) -> IngestService:
        recorder = Recorder(settings.record_path) if settings.record_path else None
        return cls(
            config,
            publisher,
            clock,
            token=settings.ingest_token,
            backfill_token=settings.backfill_token,
            max_body_bytes=settings.max_body_bytes,
            recorder=recorder,
            cluster=settings.cluster,
            limits=Limits(settings.max_records, settings.max_labels, settings.max_label_chars),
        )

    # --- checks ---------------------------------------------------------------------------------
    def authorize(self, headers: Mapping[str, str]) -> None:
        # NOTE: without a token webhook senders are not limited to loopback (the remote address is
        # not known here); the backfill token authorises a delivery too.
        auth.authorize(headers, "", self.token, also={"backfill": self.backfill_token}, open_without_token=True)

    def _decode(self, headers: Mapping[str, str], body: bytes) -> Any:
        if len(body) > self.max_body_bytes:
            raise InputError(f"body of {len(body)} bytes exceeds the limit of {self.max_body_bytes}", "body", 413)
        ctype = (_get(headers, "content-type") or "").split(";")[0].strip().lower()
        json_type = not ctype or ctype in _JSON_TYPES or ctype.endswith("+json")
        if _get(headers, "ce-specversion") is not None and (not json_type or not body.strip()):
            # NOTE: a binary-mode CloudEvent's body is its data, in any media type (XML, text,
            # protobuf), or nothing at all; the parser keeps it as text.
            return body
        if not json_type and ctype not in _JSON_LINES_TYPES:
            raise InputError(f"unsupported content type {ctype!r}; send application/json", "Content-Type", 415)
        if not body.strip():
            raise InputError("empty body: expected a JSON payload", "body")
        try:
            if ctype in _JSON_LINES_TYPES:
                return _json_lines(body.decode("utf-8"))
            return jsontext.loads(body)
        except UnicodeDecodeError:
            raise InputError("body is not UTF-8 JSON", "body") from None
        except RecursionError:
            # NOTE: Python's JSON decoder recurses per nesting level; a body nested deeper than the
            # interpreter allows is bad input, not our fault.
            raise InputError("JSON nested too deeply", "body") from None
        except ValueError as err:
            stream = _json_stream(body.decode("utf-8", errors="replace"))
            if stream is not None:
                return stream
            raise InputError(f"malformed JSON: {err}", "body") from None

    # --- the request ----------------------------------------------------------------------------
    def handle(self, source: str | None, headers: Mapping[str, str], body: bytes) -> Response:
        """One webhook delivery. Every accepted event is published (or its delivery queued) before
        the answer; a publishing failure answers 503, so the sender retries (ids are deterministic,
        so the retry cannot duplicate what was already published). A bad record is refused alone:
        the answer is 202 for the good ones and lists each refused record's index and reason; only a
        delivery with no good record at all gets the 4xx of its first problem."""
        try:
            d = self._read(source, headers, body)
        except InputError as err:
            return self._refuse(err.status, err.to_json(), source)
        if d.parsed.rejected:
            refused = self._refuse_records(d)
            if refused is not None:
                return refused
        handed = self._queue(d, body) if d.checked is not None else self._publish(d)
        if isinstance(handed, Response):
            return handed
        if self.recorder is not None:
            self.recorder.record(d.ctx.capture_id, d.ctx.received_at, d.source, d.payload)
        ids, dropped = handed
        answer: dict[str, Any] = {"accepted": len(ids), "filtered": dict(dropped)}
        if d.checked is not None:
            # NOTE: its events are built and filtered behind the answer; /ingest/stats and /metrics
            # count what the filters drop.
            answer = {"accepted": len(ids), "queued": True}
        rejected = [r.to_json() for r in d.parsed.rejected]
        answer.update(rejected=rejected, ids=ids, source=d.source, capture=d.ctx.capture_id)
        return Response(202, answer)

    def _read(self, source: str | None, headers: Mapping[str, str], body: bytes) -> _Delivery:
        """The delivery authorised, decoded, its source told, and checked (a source with a check,
        when deliveries are queued) or parsed; InputError when it cannot be taken at all."""
        self.authorize(headers)
        payload = self._decode(headers, body)
        src = source or detect(payload, headers)
        if src == "cloudevent" and _get(headers, "ce-specversion") is not None:
            # NOTE: binary mode becomes the structured event here, so what is recorded replays.
            payload = from_binary(headers, payload)
        received = self._received_at(headers)
        capture_id = _get(headers, "x-capture-id") or _capture_of(headers, body)
        ctx = ParseContext(capture_id, received, self.cluster, check_text=may_hold_bad_text(body), limits=self.limits)
        checked = check_delivery(src, payload, ctx) if self._queue_deliveries is not None else None
        parsed = parse_delivery(src, payload, ctx) if checked is None else Parsed(rejected=checked.rejected)
        return _Delivery(src, payload, ctx, checked, parsed)

    def _refuse_records(self, d: _Delivery) -> Response | None:
        """Count and log the delivery's refused records; the answer when no record is good."""
        rejected = d.parsed.rejected
        with self._lock:
            self.rejected_records[d.source] += len(rejected)
        self._log_rejected(d.source, d.ctx.capture_id, rejected, d.good)
        if d.good:
            return None
        first = rejected[0]
        answer: dict[str, Any] = {
            "error": first.error,
            "field": first.field,
            "rejected": [r.to_json() for r in rejected],
        }
        return self._refuse(first.status, answer, d.source)

    def _queue(self, d: _Delivery, body: bytes) -> tuple[list[str], Counter[str]] | Response:
        """A checked delivery stored as received: the ids of its events (built behind the answer), or
        the 503 when it could not be stored."""
        assert d.checked is not None and self._queue_deliveries is not None
        try:
            self._queue_deliveries(delivery_messages(d.source, d.payload, d.ctx, d.checked, body))
        except BacklogFull as full:
            return self._backlog_full(full, d.source)
        except Exception as err:
            return self._unavailable(err, d.good, d.source, d.ctx.capture_id)
        return d.checked.ids, Counter[str]()

    def _publish(self, d: _Delivery) -> tuple[list[str], Counter[str]] | Response:
        """The delivery's events classified, filtered and published here (the cloud path, and sources
        without a check): the ids published and what the filters dropped, or the 503."""
        kept, dropped = admit(d.parsed.events, self.config)
        try:
            # NOTE: one batch per delivery: the whole webhook is correlated in one transaction.
            publish_events(self.publisher, RAW, kept, {"source": d.source})
        except BacklogFull as full:
            return self._backlog_full(full, d.source)
        except Exception as err:
            return self._unavailable(err, len(kept), d.source, d.ctx.capture_id)
        self._accepted(d.source, kept, dropped, d.ctx.received_at)
        return [ev.id for ev in kept], dropped

    def expand(self, payload: Any) -> list[Event]:
        """The events of a queued delivery part (ingest/queued.py), built, classified and filtered
        as `handle` would have: the drain hands them on to enrichment."""
        return self.take_built(build_part(payload, self.limits, self.config))

    def take_built(self, built: BuiltPart) -> list[Event]:
        """A built part's events, counted as accepted (and as filtered) here, where it is handed on,
        whichever process built it."""
        if built.late:
            # NOTE: a check that let through what its parser refuses is our bug; the sender was told
            # the record was accepted, so say so loudly.
            with self._lock:
                self.rejected_records[built.source] += len(built.late)
            log_json(
                log,
                "ERROR",
                "records accepted by ingest could not be parsed",
                source=built.source,
                capture=built.capture,
                refused=len(built.late),
                first=built.late[0].to_json(),
            )
        self._accepted(built.source, built.kept, built.dropped, built.received_at)
        return built.kept

    def _accepted(self, src: str, kept: list[Event], dropped: Counter[str], received: datetime) -> None:
        if self.on_accepted is not None:
            self.on_accepted(kept, received)
        with self._lock:
            self.filtered.update(dropped)
            self.accepted[src] += len(kept)

    def _unavailable(self, err: Exception, events: int, src: str, capture_id: str) -> Response:
        """The events could not be stored or handed on: 503, and the sender keeps the delivery and
        retries (ids are deterministic, so what got through before the failure is recognised as a
        duplicate on the retry)."""
        with self._lock:
            self.rejected["503"] += 1
        log_json(
            log,
            "ERROR",
            "ingest could not hand events on",
            error=f"{type(err).__name__}: {str(err)[:300]}",
            events=events,
            source=src,
            capture=capture_id,
        )
        retry = {"error": "events could not be stored or forwarded; retry the delivery", "retryable": True}
        return Response(503, retry, {"Retry-After": "5"})

    def _backlog_full(self, full: BacklogFull, source: str) -> Response:
        """Refused whole because the backlog is at its bound: the sender retries after a while."""
        with self._lock:
            self.rejected["503"] += 1
        log_json(log, "WARNING", "delivery refused: backlog at its bound", source=source, **full.to_json())
        return Response(503, full.to_json(), {"Retry-After": "5"})

    def _refuse(self, status: int, answer: dict[str, Any], source: str | None) -> Response:
        """A refused delivery: counted by status, logged, answered with the problem named."""
        with self._lock:
            self.rejected[str(status)] += 1
        log_json(
            log,
            "WARNING",
            "ingest rejected",
            level=logging.INFO,
            status=status,
            error=answer.get("error"),
            field=answer.get("field"),
            source=source,
        )
        headers = {"WWW-Authenticate": 'Bearer realm="eventmgmt"'} if status == 401 else {}
        return Response(status, answer, headers)

    def _log_rejected(self, source: str, capture: str, rejected: list[Rejection], accepted: int) -> None:
        log_json(
            log,
            "WARNING",
            "ingest refused records",
            level=logging.INFO,
            source=source,
            capture=capture,
            refused=len(rejected),
            kept=accepted,
            first=rejected[0].to_json(),
        )

    def _received_at(self, headers: Mapping[str, str]) -> datetime:
        """Server time; or, for a backfill sender only, the time the delivery was first received,
        never ahead of server time (a forged date must not resolve or break anything)."""
        now = self.clock()
        given = _get(headers, "x-received-at")
        if not given:
            return now
        bearer = _bearer(headers)
        if not self.backfill_token or bearer is None or not _same(bearer, self.backfill_token):
            raise InputError(
                "X-Received-At is honoured only for a sender holding the backfill token "
                f"(`Authorization: Bearer <{BACKFILL_TOKEN}>`); send the delivery without it",
                "X-Received-At",
                403,
            )
        try:
            when = parse_ts(given)
        except (ValueError, OverflowError):
            when = None
        if when is None:
            raise InputError(f"X-Received-At {given!r} is not an RFC 3339 timestamp", "X-Received-At")
        if when < EPOCH or when > now + MAX_SKEW:
            raise InputError(
                f"X-Received-At {given!r} is before 1970 or ahead of the server clock ({iso(now)})", "X-Received-At"
            )
        return when

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "accepted": dict(self.accepted),
                "filtered": dict(self.filtered),
                "rejected": dict(self.rejected),
                "rejected_records": dict(self.rejected_records),
                "as_of": iso(self.clock()),
            }


def _json_lines(text: str) -> list[Any]:
    """Each non-blank line's JSON value; a line that is not JSON stays a string, so its record alone
    is refused."""
    out: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            try:
                out.append(jsontext.loads(line))
            except (ValueError, RecursionError):
                out.append(line)
    return out


def _json_stream(text: str) -> list[Any] | None:
    """JSON objects written back to back (Fluent Bit's `Format json_stream`), or None if `text` is not
    that."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            break
        try:
            value, i = decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        out.append(value)
    return out if len(out) > 1 else None


_bearer = auth.bearer
_same = auth.same


def _capture_of(headers: Mapping[str, str], body: bytes) -> str:
    """A delivery's capture id when the sender gives none: a digest of what it sent. A binary-mode
    CloudEvent's attributes are headers, so two events with one body (a text message sent twice,
    under two ids) are two captures."""
    digest = hashlib.sha256(body)
    ce = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("ce-"))
    if ce:
        digest.update(json.dumps(ce).encode())
    return "h-" + digest.hexdigest()[:16]


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
    return value

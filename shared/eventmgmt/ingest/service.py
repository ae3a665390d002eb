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

from .. import auth
from ..classify import classify, filter_reason
from ..clock import EPOCH, MAX_SKEW
from ..config import Config
from ..errors import InputError
from ..settings import BACKFILL_TOKEN, Settings
from ..sources import ParseContext, detect, parse
from ..timeutil import iso, parse_ts
from ..transport import Outgoing, Publisher, publish_all
from .recorder import Recorder

log = logging.getLogger("eventmgmt.ingest")

_JSON_TYPES = ("application/json", "application/cloudevents+json", "text/json")


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(err: InputError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="eventmgmt"'} if err.status == 401 else {}
    return Response(err.status, err.to_json(), headers)


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
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.token = token
        self.backfill_token = backfill_token
        self.max_body_bytes = max_body_bytes
        self.recorder = recorder
        self.cluster = cluster
        self._lock = threading.Lock()
        self.filtered: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

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
        if ctype and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
            raise InputError(f"unsupported content type {ctype!r}; send application/json", "Content-Type", 415)
        if not body.strip():
            raise InputError("empty body: expected a JSON payload", "body")
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            raise InputError("body is not UTF-8 JSON", "body") from None
        except ValueError as err:
            raise InputError(f"malformed JSON: {err}", "body") from None

    # --- the request ----------------------------------------------------------------------------
    def handle(self, source: str | None, headers: Mapping[str, str], body: bytes) -> Response:
        """One webhook delivery. Every accepted event is published before the answer; a publishing
        failure raises, so the caller answers 5xx and the sender retries (ids are deterministic, so
        the retry cannot duplicate what was already published)."""
        try:
            self.authorize(headers)
            payload = self._decode(headers, body)
            src = source or detect(payload, headers)
            received = self._received_at(headers)
            capture_id = _get(headers, "x-capture-id") or "h-" + hashlib.sha256(body).hexdigest()[:16]
            events = parse(src, payload, ParseContext(capture_id, received, self.cluster), headers)
        except InputError as err:
            with self._lock:
                self.rejected[str(err.status)] += 1
            log.info(
                json.dumps(
                    {
                        "severity": "WARNING",
                        "message": "ingest rejected",
                        "status": err.status,
                        "error": err.message,
                        "field": err.field,
                        "source": source,
                    }
                )
            )
            return _error(err)
        ids: list[str] = []
        out: list[Outgoing] = []
        dropped: Counter[str] = Counter()
        for ev in events:
            ev = classify(ev, self.config)
            reason = filter_reason(ev, self.config)
            if reason is not None:
                dropped[reason] += 1
                continue
            attrs = {"event_id": ev.id, "kind": ev.kind, "class": ev.cls.value, "source": src}
            out.append(Outgoing(ev.to_json(), attrs, ev.ordering_key))
            ids.append(ev.id)
        try:
            # NOTE: one batch per delivery: the whole webhook is correlated in one transaction.
            publish_all(self.publisher, "events-raw", out)
        except Exception as err:
            # NOTE: the sender keeps the delivery and retries on 5xx; ids are deterministic, so what
            # got through before the failure is recognised as a duplicate on the retry.
            with self._lock:
                self.rejected["503"] += 1
            log.error(
                json.dumps(
                    {
                        "severity": "ERROR",
                        "message": "ingest could not hand events on",
                        "error": f"{type(err).__name__}: {str(err)[:300]}",
                        "events": len(out),
                        "source": src,
                        "capture": capture_id,
                    }
                )
            )
            answer = {"error": "events could not be stored or forwarded; retry the delivery", "retryable": True}
            return Response(503, answer, {"Retry-After": "5"})
        if self.recorder is not None:
            self.recorder.record(capture_id, received, src, payload)
        with self._lock:
            self.filtered.update(dropped)
            self.accepted[src] += len(ids)
        return Response(
            202, {"accepted": len(ids), "filtered": dict(dropped), "ids": ids, "source": src, "capture": capture_id}
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
                "as_of": iso(self.clock()),
            }


_bearer = auth.bearer
_same = auth.same


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
    return value

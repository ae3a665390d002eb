"""Webhook deliveries (POST /ingest, POST /ingest/<source>) served in plain WSGI, ahead of Flask.

A storm is a stream of deliveries from one sender, one at a time, so each one's answer time is what
bounds how fast a storm is taken. Through Flask a 100-alert webhook paid about a fifth more than
the ingest work itself (request context, URL map, hooks, response object: 0.35-0.8 ms of 2-4 ms,
measured in process). Here a delivery gets the same checks, in the same order, with the same answers:
the guard (Host, Origin, content type), the backlog bound (503 before the body is read), the ingest
service, the security headers, a JSON answer to any failure, and memory handed back after a big
delivery. Every other request, and any path under /ingest that is not a delivery, goes to Flask."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from werkzeug.wsgi import get_content_length, get_input_stream

from ..errors import BacklogFull, InputError
from ..ingest.service import IngestService
from . import http_errors
from .guard import SECURITY_HEADERS, Asked, Guard
from .memory import trim

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PREFIX = "/ingest"
# NOTE: after a delivery this large, freed heap is handed back to the OS (glibc keeps it otherwise).
BIG_DELIVERY_BYTES = 1024 * 1024


def source_of(method: str, path: str) -> str | None:
    """ "" for POST /ingest, the source for POST /ingest/<source>, None for any other request."""
    if method != "POST" or not path.startswith(PREFIX):
        return None
    rest = path[len(PREFIX) :]
    if not rest:
        return ""
    if rest[0] != "/" or len(rest) == 1 or "/" in rest[1:]:
        return None
    return rest[1:]


class IngestRoute:
    """A WSGI app answering deliveries itself and handing everything else to `app`."""

    def __init__(
        self, service: IngestService, guard: Guard, backlog: Callable[[], BacklogFull | None], app: WSGIApp
    ) -> None:
        self.service = service
        self.guard = guard
        # NOTE: the refusal when the backlog is at its bound (and counts it), None otherwise
        self.backlog = backlog
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        source = source_of(str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", "")))
        if source is None:
            return self.app(environ, start_response)
        length = get_content_length(environ)
        try:
            status, body, headers = self._answer(environ, source)
        except Exception as err:  # NOTE: every failure is answered in JSON, as Flask's handlers do
            status, body, headers = http_errors.failure_answer(err, str(environ.get("PATH_INFO", "")))
        out = json.dumps(body, separators=(",", ":"), default=str).encode()
        start_response(_status_line(status), _headers(headers, len(out)))
        if length is not None and length >= BIG_DELIVERY_BYTES:
            trim()
        return [out]

    def _answer(self, environ: dict[str, Any], source: str) -> http_errors.Answer:
        asked = Asked.of_environ(environ)
        try:
            self.guard.check(asked)
        except InputError as err:
            return http_errors.input_answer(err)
        full = self.backlog()
        if full is not None:
            return 503, full.to_json(), {"Retry-After": "5"}
        body = _read(environ, self.service.max_body_bytes)
        resp = self.service.handle(source or None, asked.headers, body)
        return resp.status, resp.body, resp.headers


def _read(environ: dict[str, Any], max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes, as ingest/http.py's `read_body` reads them through Flask (which
    may hold the body already: functions-framework reads it first), here from the WSGI stream, which
    ends at Content-Length or at the end of a chunked body."""
    length = get_content_length(environ)
    if length is not None and length > max_bytes:
        return b"\0" * (max_bytes + 1)
    return bytes(get_input_stream(environ, max_content_length=None).read(max_bytes + 1))


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _headers(extra: dict[str, str], length: int) -> list[tuple[str, str]]:
    out = {"Content-Type": "application/json", "Content-Length": str(length), **SECURITY_HEADERS}
    out.update(extra)
    return list(out.items())

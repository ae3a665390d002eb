"""Every error the embedded runtime answers is JSON under /api/ and /ingest, and an unexpected
exception is a JSON 500 everywhere: never Flask's HTML page, never a traceback to the caller."""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from ..errors import InputError
from ..logjson import log_json

log = logging.getLogger("eventmgmt")

JSON_PREFIXES = ("/api/", "/ingest", "/healthz")


Answer = tuple[int, dict[str, Any], dict[str, str]]


def _json(answer: Answer) -> Any:
    status, body, headers = answer
    resp = jsonify(body)
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def input_answer(err: InputError) -> Answer:
    headers = {"WWW-Authenticate": 'Bearer realm="eventmgmt"'} if err.status == 401 else {}
    return err.status, err.to_json(), headers


def failure_answer(err: Exception, path: str) -> Answer:
    """The answer to an error a route raised (not a werkzeug HTTP error), whoever serves the route:
    the problem named when it is the caller's, 503 when the state store is down, else a 500 whose
    reference is logged with the traceback."""
    if isinstance(err, InputError):
        return input_answer(err)
    if isinstance(err, DBAPIError):
        log_json(log, "ERROR", "state store unavailable", error=str(err.orig)[:300])
        body = {"error": "the state store is unavailable; retry shortly", "retryable": True}
        return 503, body, {"Retry-After": "5"}
    if isinstance(err, RecursionError):
        # NOTE: json.loads recurses once per nesting level; a body nested thousands deep is the
        # caller's to fix, not our fault to retry.
        return 400, {"error": "the JSON body is nested too deeply", "field": "body"}, {}
    ref = uuid.uuid4().hex[:12]
    log_json(
        log,
        "ERROR",
        "unexpected error answering a request",
        ref=ref,
        path=path[:200],
        error=f"{type(err).__name__}: {str(err)[:300]}",
        traceback=traceback.format_exc()[-4000:],
    )
    return 500, {"error": f"internal error (logged as {ref}); retry, or report it if it persists", "ref": ref}, {}


def http_error(err: HTTPException) -> Any:
    """Werkzeug's 404, 405, 413 ... as JSON under the API prefixes; pages keep their HTML."""
    if not request.path.startswith(JSON_PREFIXES):
        return err
    body: dict[str, Any] = {"error": f"{err.code} {err.name}: {request.method} {request.path[:200]}"}
    if err.code == 404:
        body["field"] = "path"
    elif err.code == 405:
        body["field"] = "method"
    allowed = getattr(err, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if allowed else {}
    return _json((err.code or 500, body, headers))


def failure(err: Exception) -> Any:
    if isinstance(err, HTTPException):
        return http_error(err)
    return _json(failure_answer(err, request.path))


def install(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, failure)

"""Ingest function (HTTP): webhooks in, canonical events published to events-raw."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import functions_framework
from flask import Request

from eventmgmt.ingest import IngestService
from eventmgmt.ingest.http import to_flask
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, publisher_for


def _now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def service() -> IngestService:
    settings = Settings()
    return IngestService.from_settings(settings, config_for(settings), publisher_for(settings), _now)


@functions_framework.http
def ingest(request: Request) -> Any:
    svc = service()
    parts = [p for p in request.path.split("/") if p]
    if request.method == "GET" and parts[-1:] == ["stats"]:
        return svc.stats(), 200
    if request.method != "POST":
        return {"error": f"method {request.method} not allowed; POST a payload", "field": "method"}, 405
    # /ingest, /ingest/<source> or, behind a bare function URL, /<source>
    source = parts[-1] if parts and parts[-1] != "ingest" else None
    length = request.content_length
    body = b"\0" * (svc.max_body_bytes + 1) if length and length > svc.max_body_bytes else request.get_data()
    return to_flask(svc.handle(source, dict(request.headers), body))

"""Ingest function (HTTP): webhooks in, canonical events published to events-raw."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import functions_framework
from flask import Request

from eventmgmt.clock import utcnow
from eventmgmt.emulator.push import warm_start
from eventmgmt.ingest import IngestService
from eventmgmt.ingest.http import read_body, to_flask
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, publisher_for


@lru_cache(maxsize=1)
def service() -> IngestService:
    settings = Settings()
    return IngestService.from_settings(settings, config_for(settings), publisher_for(settings), utcnow)


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
    return to_flask(svc.handle(source, dict(request.headers), read_body(svc.max_body_bytes)))


warm_start(service)

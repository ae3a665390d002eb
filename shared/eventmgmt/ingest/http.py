"""The ingest endpoints as a Flask blueprint (the embedded runtime and the ingest function share it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from .service import IngestService, Response


def to_flask(resp: Response) -> Any:
    out = jsonify(resp.body)
    out.status_code = resp.status
    for k, v in resp.headers.items():
        out.headers[k] = v
    return out


def read_body(max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes: enough to tell an oversized body without reading all of it."""
    length = request.content_length
    if length is not None and length > max_bytes:
        return b"\0" * (max_bytes + 1)
    return request.stream.read(max_bytes + 1) if length is None else request.get_data(cache=False)


def create_ingest_blueprint(service: IngestService) -> Blueprint:
    bp = Blueprint("ingest", __name__)

    @bp.post("/ingest")
    def ingest_any() -> Any:
        return to_flask(service.handle(None, dict(request.headers), read_body(service.max_body_bytes)))

    @bp.post("/ingest/<source>")
    def ingest_source(source: str) -> Any:
        return to_flask(service.handle(source, dict(request.headers), read_body(service.max_body_bytes)))

    @bp.get("/ingest/stats")
    def stats() -> Any:
        return jsonify(service.stats())

    return bp

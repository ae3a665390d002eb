"""Ingest: parse, classify, filter and publish what webhooks post."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .service import IngestService, Response

if TYPE_CHECKING:
    from .http import create_ingest_blueprint


def __getattr__(name: str) -> Any:
    # NOTE: the Flask blueprint is imported when asked for: the correlating process builds an
    # IngestService but serves no HTTP, and Flask would cost it about 20 MiB.
    if name == "create_ingest_blueprint":
        from .http import create_ingest_blueprint

        return create_ingest_blueprint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IngestService", "Response", "create_ingest_blueprint"]

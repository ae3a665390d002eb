"""Ingest: parse, classify, filter and publish what webhooks post."""

from .http import create_ingest_blueprint
from .service import IngestService, Response

__all__ = ["IngestService", "Response", "create_ingest_blueprint"]

"""One JSON object per log line: Cloud Logging reads `severity` and `message` from it, so one place decides the shape."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

Severity = Literal["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]

# NOTE: Cloud Logging's NOTICE has no Python level; INFO is the one below WARNING that still shows.
_LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def log_json(
    logger: logging.Logger,
    severity: Severity,
    message: str,
    *,
    level: int | None = None,
    exc_info: BaseException | bool | None = None,
    **fields: Any,
) -> None:
    """Log `{"severity": severity, "message": message, **fields}` as one JSON line, at the Python
    level `severity` names unless `level` says otherwise."""
    # NOTE: `level` is for lines whose Python level is deliberately not their severity (ingest's
    # refusals are WARNING to Cloud Logging but logged at INFO), so handlers and filters keyed on
    # the Python level see them where they always have.
    at = _LEVELS[severity] if level is None else level
    if not logger.isEnabledFor(at):
        return  # NOTE: nobody will see the line, so it is not worth encoding.
    # NOTE: default=str so a datetime or other stray value in a field is written as text rather than
    # raising from a log call, which is often on an error path already.
    line = json.dumps({"severity": severity, "message": message, **fields}, default=str)
    # NOTE: stacklevel=2 keeps the record's file, line and function the caller's, as before the helper.
    logger.log(at, line, exc_info=exc_info, stacklevel=2)

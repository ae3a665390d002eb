"""Errors that carry an HTTP status and name the part of the input at fault."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class InputError(Exception):
    """Bad input: the caller must fix it; retrying the same request cannot succeed."""

    status = 400

    def __init__(self, message: str, field: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BacklogFull(Exception):
    """Accepting a delivery would take the events waiting for correlation past their bound: it is
    refused whole (503 with Retry-After), and its sender retries."""

    def __init__(self, backlog: int, bound: int) -> None:
        super().__init__(f"{backlog} accepted events are waiting for correlation (bound {bound}); retry later")
        self.backlog = backlog
        self.bound = bound

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self), "retryable": True, "backlog": self.backlog, "max_backlog": self.bound}


def from_validation(err: ValidationError, prefix: str = "") -> InputError:
    """The first pydantic error as an InputError naming its field path."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    return InputError(f"{field}: {first['msg']}" if field else first["msg"], field=field or None)

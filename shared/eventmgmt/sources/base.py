"""What every wire-format parser shares: its context and the draft-event builder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..clock import sane
from ..errors import InputError, from_validation
from ..model import Event, Origin, Resources, Status, stable_hash

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ParseContext:
    """Facts about the delivery, not the payload: which capture it is and when it arrived."""

    capture_id: str
    received_at: datetime
    cluster: str | None = None


def validate(model: type[M], body: Any, prefix: str = "body") -> M:
    if not isinstance(body, dict):
        raise InputError(f"{prefix}: expected a JSON object, got {type(body).__name__}", field=prefix)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise from_validation(err, prefix) from None


def draft(
    ctx: ParseContext,
    index: int,
    *,
    source: str,
    identity: tuple[Any, ...],
    fingerprint: str,
    signal: str,
    occurred_at: datetime | None,
    resources: Resources,
    labels: dict[str, str],
    summary: str,
    status: Status = Status.firing,
) -> Event:
    """An unclassified event; `identity` is the source's own notion of one fact, so a retried
    delivery of the same fact gets the same id. An absurd event time (far future, before 1970) is
    replaced by the receipt time and flagged in `time_clamped`, so it cannot poison the delivery."""
    occurred, clamped = sane(occurred_at, ctx.received_at)
    if clamped:
        labels = {**labels, "time_clamped": occurred_at.isoformat() if occurred_at else ""}
    return Event(
        id=f"{source}:{stable_hash(source, *identity, length=24)}",
        fingerprint=fingerprint,
        source=source,
        signal=signal,
        status=status,
        occurred_at=occurred,
        received_at=ctx.received_at,
        resources=resources,
        labels=labels,
        summary=summary[:2000],
        origin=Origin(capture=ctx.capture_id, index=index),
    )

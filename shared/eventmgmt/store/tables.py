"""Tables of the correlation state: events, incidents, and the live incidents' lookup indexes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    cls: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    incident_id: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text, default="")
    namespace: Mapped[str | None] = mapped_column(String(253))
    node: Mapped[str | None] = mapped_column(String(253))
    pod: Mapped[str | None] = mapped_column(String(253))
    model: Mapped[str | None] = mapped_column(String(253))
    capture: Mapped[str | None] = mapped_column(String(80))
    idx: Mapped[int | None] = mapped_column(Integer)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict] = mapped_column(JSON)

    # NOTE: every search filters on one column and shows newest first: (column, occurred_at) indexes
    # answer both from the index, with a million events as with a thousand.
    __table_args__ = (
        Index("ix_events_kind_time", "kind", "occurred_at"),
        Index("ix_events_cls_time", "cls", "occurred_at"),
        Index("ix_events_incident_time", "incident_id", "occurred_at"),
        Index("ix_events_pod_time", "pod", "occurred_at"),
        Index("ix_events_node_time", "node", "occurred_at"),
        Index("ix_events_model_time", "model", "occurred_at"),
    )


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    severity_rank: Mapped[int] = mapped_column(Integer)
    board_rank: Mapped[int] = mapped_column(Integer, default=0, doc="0 open or acknowledged, 1 resolved or merged")
    title: Mapped[str] = mapped_column(Text)
    root_kind: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    member_count: Mapped[int] = mapped_column(Integer)
    firing: Mapped[int] = mapped_column(Integer)
    live: Mapped[bool] = mapped_column(Boolean, index=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    snapshot: Mapped[dict] = mapped_column(JSON)
    state: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_incidents_board", "board_rank", "severity_rank", "opened_at", "id"),)


class IncidentKeyRow(Base):
    """Resource keys of live incidents: the correlation join index."""

    __tablename__ = "incident_keys"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class IncidentFingerprintRow(Base):
    """Which live incident holds each alert fingerprint."""

    __tablename__ = "incident_fingerprints"

    fingerprint: Mapped[str] = mapped_column(String(80), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), index=True)


class HeldEventRow(Base):
    """Alerts suppressed by a maintenance window that were still firing: evaluated when it ends."""

    __tablename__ = "held_events"

    fingerprint: Mapped[str] = mapped_column(String(80), primary_key=True)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    data: Mapped[dict] = mapped_column(JSON)


class PastIncidentRow(Base):
    """What a retired incident leaves for recurrence (correlate/state.py `PastIncident`), one row per
    lookup key (resource key or `fingerprint:<fp>`): a new episode within 24 hours of its resolution
    names it. Rows go once their incident resolved more than `RECURRENCE_KEEP` before the latest
    retirement, and with their incident (archive/retention.py)."""

    __tablename__ = "past_incident_keys"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    digest: Mapped[dict] = mapped_column(JSON)

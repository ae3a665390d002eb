"""What was sent to whom (the ledger) and what is still owed (the outbox): redelivery of the same
message never pages twice, and a receiver that is down is told later, never not at all.

One interface, `Ledger`, over the two databases; the router never asks which one it has. The
variants differ only in how a ledger row is held while its request is in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, CursorResult, DateTime, Engine, Integer, String, Text, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..incident import IncidentSnapshot
from ..store.db import Base, reader
from .decide import FINAL, NOTHING, first_owed


class LedgerRow(Base):
    """The last state each receiver was told about each incident."""

    __tablename__ = "route_ledger"

    receiver: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=NOTHING)
    version: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    def record(self, state: str, version: int) -> None:
        """The receiver is taken to know `state`; nothing had to be sent."""
        self.state, self.version = state, version

    def record_sent(self, state: str, version: int, at: datetime) -> None:
        self.record(state, version)
        self.sent, self.updated_at, self.last_error = self.sent + 1, at, None

    def record_refused(self, state: str, version: int, at: datetime, error: str) -> None:
        """Refused for good (a 4xx): reported, and never sent again."""
        self.record(state, version)
        self.updated_at, self.last_error = at, error[:1000]


class PendingRow(Base):
    """A state a receiver still has to be told, because it was down when it was due: kept until the
    receiver takes it, so an outage of any length delays pages but never drops them."""

    __tablename__ = "route_pending"

    receiver: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict] = mapped_column(JSON)
    # The first state that failed when the receiver had been told nothing yet: a trigger owed is sent
    # before a later resolve, so an incident that came and went during the outage is still recorded.
    owed: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class Ledger:
    """The ledger and outbox of one database. Subclasses say how a row is held (`hold`) and which
    INSERT skips a row that exists (`insert`); everything else is written once, here."""

    insert: Any

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reads = reader(engine)  # NOTE: one engine view for every read, not one built per read
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def hold(self, receiver: str, incident_id: str) -> AbstractContextManager[LedgerRow]:
        """The ledger row of (receiver, incident), created if new, held against every other sender
        until the block ends; what the block records on it is stored then, unless the block raises."""
        raise NotImplementedError

    # --- the ledger -----------------------------------------------------------------------------
    def _held_row(self, s: Session, receiver: str, incident_id: str) -> LedgerRow:
        query = select(LedgerRow).where(LedgerRow.receiver == receiver, LedgerRow.incident_id == incident_id)
        row = s.scalars(query.with_for_update()).one_or_none()
        if row is None:
            # NOTE: a pair never routed before: another instance may be creating its row too.
            values = {"receiver": receiver, "incident_id": incident_id, "state": NOTHING, "version": 0, "sent": 0}
            s.execute(self.insert(LedgerRow).values(**values).on_conflict_do_nothing())
            row = s.scalars(query.with_for_update()).one()
        return row

    def told(self, receiver: str, incident_id: str) -> str:
        """What `receiver` was told of the incident (NOTHING without a row): a read, no write."""
        with Session(self._reads) as s:
            state = s.scalar(
                select(LedgerRow.state).where(LedgerRow.receiver == receiver, LedgerRow.incident_id == incident_id)
            )
            return state if state is not None else NOTHING

    def _row_lock(self, receiver: str, incident_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((receiver, incident_id), threading.Lock())

    def unfinished(self) -> set[str]:
        """Incidents some receiver was told of (or claimed) and not yet told are over."""
        with Session(self._reads) as s:
            query = select(LedgerRow.incident_id).where(LedgerRow.state.not_in(FINAL)).distinct()
            return set(s.scalars(query))

    def rows(self) -> list[LedgerRow]:
        with Session(self._reads) as s:
            rows = list(s.scalars(select(LedgerRow).order_by(LedgerRow.incident_id, LedgerRow.receiver)))
            s.expunge_all()
            return rows

    def sent_by_receiver(self) -> dict[str, int]:
        """States ever sent, per receiver (for /metrics)."""
        with Session(self._reads) as s:
            rows = s.execute(select(LedgerRow.receiver, func.sum(LedgerRow.sent)).group_by(LedgerRow.receiver))
            return {receiver: int(total or 0) for receiver, total in rows}

    # --- the outbox -----------------------------------------------------------------------------
    def down(self) -> set[str]:
        """Receivers with anything in the outbox (one query, whatever the receivers)."""
        with Session(self._reads) as s:
            return set(s.scalars(select(PendingRow.receiver).distinct()))

    def enqueue(
        self, receiver: str, snap: IncidentSnapshot, state: str, error: str | None, now: datetime, due: datetime
    ) -> None:
        """Keep the newest state owed to `receiver` for this incident until it can be delivered."""
        with self._row_lock(receiver, snap.id), Session(self.engine) as s, s.begin():
            row = s.get(PendingRow, (receiver, snap.id), with_for_update=True)
            if row is None:
                told = s.get(LedgerRow, (receiver, snap.id))
                row = PendingRow(
                    receiver=receiver,
                    incident_id=snap.id,
                    state=state,
                    version=snap.version,
                    snapshot=snap.model_dump(mode="json"),
                    owed=first_owed(told is None or told.state == NOTHING, state),
                    attempts=1 if error else 0,
                    first_failed_at=now,
                    next_attempt_at=due,
                    last_error=error[:1000] if error else None,
                )
                s.add(row)
            elif snap.version >= row.version:
                row.state, row.version, row.snapshot = state, snap.version, snap.model_dump(mode="json")

    def due(self, at: datetime, limit: int) -> list[PendingRow]:
        """The outbox states due at `at`, oldest first."""
        with Session(self._reads) as s:
            query = select(PendingRow).where(PendingRow.next_attempt_at <= at)
            due = list(s.scalars(query.order_by(PendingRow.first_failed_at, PendingRow.incident_id).limit(limit)))
            s.expunge_all()
            return due

    def retry_later(self, row: PendingRow, due_after: Callable[[int], datetime], error: str) -> None:
        """Count a failed attempt; `due_after(attempts)` says when the next one is due."""
        with Session(self.engine) as s, s.begin():
            live = s.get(PendingRow, (row.receiver, row.incident_id))
            if live is not None:
                live.attempts += 1
                live.next_attempt_at = due_after(live.attempts)
                live.last_error = error[:1000]

    def done(self, row: PendingRow, now: datetime) -> None:
        """Remove the delivered state, unless a newer one was queued meanwhile (then it is due now)."""
        with Session(self.engine) as s, s.begin():
            stmt = delete(PendingRow).where(
                PendingRow.receiver == row.receiver,
                PendingRow.incident_id == row.incident_id,
                PendingRow.version == row.version,
                PendingRow.state == row.state,
            )
            # NOTE: SQLAlchemy 2.1 types Session.execute as Result; a DELETE gives a CursorResult (rowcount).
            gone = cast(CursorResult[Any], s.execute(stmt))
            if not gone.rowcount:
                live = s.get(PendingRow, (row.receiver, row.incident_id))
                if live is not None:
                    live.owed = None
                    live.next_attempt_at = now

    def pending(self) -> list[PendingRow]:
        with Session(self._reads) as s:
            rows = list(s.scalars(select(PendingRow).order_by(PendingRow.first_failed_at)))
            s.expunge_all()
            return rows


class SqliteLedger(Ledger):
    """One process owns the file: a lock per ledger row in the process, instead of the database's
    single write lock held across HTTP calls, which would stall correlation while a sink is slow."""

    insert = staticmethod(sqlite_insert)

    @contextmanager
    def hold(self, receiver: str, incident_id: str) -> Iterator[LedgerRow]:
        with self._row_lock(receiver, incident_id), Session(self.engine) as s:
            with s.begin():
                row = self._held_row(s, receiver, incident_id)
                s.expunge(row)
            before = _recorded(row)
            yield row
            if _recorded(row) != before:
                # NOTE: most messages change nothing a receiver is told (an alert joining an open
                # incident): those cost one read, not a write transaction.
                with s.begin():
                    s.merge(row)


class PostgresLedger(Ledger):
    """Instances share the database: the row stays locked (FOR UPDATE) while the request is in flight,
    so two instances handling the same incident cannot both send. A crash after sending and before
    commit resends on redelivery, which PagerDuty folds by dedup_key (Slack shows it twice)."""

    insert = staticmethod(pg_insert)

    @contextmanager
    def hold(self, receiver: str, incident_id: str) -> Iterator[LedgerRow]:
        with Session(self.engine) as s, s.begin():
            yield self._held_row(s, receiver, incident_id)


VARIANTS: dict[str, type[Ledger]] = {"sqlite": SqliteLedger, "postgresql": PostgresLedger}


def ledger_for(engine: Engine) -> Ledger:
    """The ledger of `engine`'s database: the one place that asks which database it is."""
    return VARIANTS[engine.dialect.name](engine)


def _recorded(row: LedgerRow) -> tuple[Any, ...]:
    return (row.state, row.version, row.sent, row.last_error, row.updated_at)


def as_dicts(rows: Iterable[LedgerRow]) -> list[dict[str, Any]]:
    return [
        {
            "receiver": r.receiver,
            "incident_id": r.incident_id,
            "state": r.state,
            "version": r.version,
            "sent": r.sent,
            "last_error": r.last_error,
        }
        for r in rows
    ]


def notifications(engine: Engine, incident_id: str) -> list[dict[str, Any]]:
    """Who was told of an incident, what, how often and when, and what is still owed to whom (a
    receiver that was down), from the ledger and outbox in `engine` (embedded on SQLite, route's own
    file): for the incident page and `GET /api/incidents/{id}`."""
    with Session(reader(engine)) as s:
        told = {r.receiver: r for r in s.scalars(select(LedgerRow).where(LedgerRow.incident_id == incident_id))}
        owed = {r.receiver: r for r in s.scalars(select(PendingRow).where(PendingRow.incident_id == incident_id))}
    out = []
    for receiver in sorted(set(told) | set(owed)):
        row, pending = told.get(receiver), owed.get(receiver)
        out.append(
            {
                "receiver": receiver,
                "state": row.state if row is not None else NOTHING,
                "version": row.version if row is not None else 0,
                "sent": row.sent if row is not None else 0,
                "last_sent_at": _iso(row.updated_at) if row is not None and row.sent else None,
                "error": (pending.last_error if pending is not None else None) or (row.last_error if row else None),
                "owed": pending.state if pending is not None else None,
                "attempts": pending.attempts if pending is not None else 0,
                "next_attempt_at": _iso(pending.next_attempt_at) if pending is not None else None,
            }
        )
    return out


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    # NOTE: SQLite hands timestamps back without their zone; they are stored in UTC
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")

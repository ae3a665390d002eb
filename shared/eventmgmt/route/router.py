"""The route stage: an incident's state, as each receiver should know it, sent at most once."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from cloudevents.http import CloudEvent
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .. import settings as env
from ..config import Config
from ..incident import CorrelatedMessage, IncidentSnapshot, IncidentStatus
from ..settings import Settings
from ..transport.messages import decode_correlated
from .config import Receiver, Route, RoutingConfig, routing_config
from .ledger import LedgerRow, PendingRow
from .match import receivers_for
from .retry import DeliveryError, Retrier
from .sinks import Request, pagerduty, slack, webhook

log = logging.getLogger("eventmgmt.route")

DEFAULT_ENV = {
    "pagerduty": (env.PAGERDUTY_URL, env.PAGERDUTY_ROUTING_KEY),
    "slack": (env.SLACK_WEBHOOK_URL, None),
    "webhook": (env.WEBHOOK_URL, None),
    "change": (env.CHANGE_WEBHOOK_URL, None),
}


def desired_state(snap: IncidentSnapshot, receiver: Receiver) -> str | None:
    """What `receiver` should know about `snap` now; None when it is not this receiver's business."""
    if receiver.type == "change":
        return "linked" if snap.changes else None
    if snap.kind != "incident":
        return None
    if snap.merged_into is not None or snap.status is IncidentStatus.resolved:
        return "resolved"
    if snap.status is IncidentStatus.acknowledged:
        return "acknowledged"
    return "triggered"


def default_routing(environ: dict[str, str] | None = None) -> RoutingConfig:
    """Without a `routing` section: every configured sink gets every incident (changes to the
    change-management webhook), from the URLs and keys in the environment."""
    environ = dict(os.environ) if environ is None else environ
    receivers, routes = [], []
    for kind, (url_env, key_env) in DEFAULT_ENV.items():
        if environ.get(key_env or url_env) or (kind == "pagerduty" and environ.get(env.PAGERDUTY_ROUTING_KEY)):
            receivers.append(Receiver(name=kind, type=kind, url_env=url_env, key_env=key_env))
            routes.append(Route(receiver=kind, **{"continue": True}))
    return RoutingConfig(receivers=receivers, routes=routes)


class Router:
    def __init__(
        self,
        routing: RoutingConfig,
        engine: Engine,
        client: httpx.Client,
        clock: Callable[[], datetime],
        dashboard_url: str,
        retrier: Retrier | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.routing = routing
        self.engine = engine
        self.client = client
        self.clock = clock
        self.dashboard_url = dashboard_url
        self.retrier = retrier or Retrier(
            max_attempts=routing.max_attempts, max_backoff_seconds=routing.max_backoff_seconds
        )
        self.environ = dict(os.environ) if environ is None else environ
        self.receivers = {r.name: r for r in routing.receivers}
        # NOTE: the outbox sweep tries once per due state and backs off between sweeps instead.
        self._once = Retrier(max_attempts=1)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, config: Config, engine: Engine, clock: Callable[[], datetime]) -> Router:
        section = config.section("routing")
        routing = routing_config(section) if section else default_routing()
        if engine.dialect.name == "sqlite" and not settings.database_url:
            # NOTE: embedded, the ledger gets its own SQLite file, so the route worker never waits for
            # the correlation database's single write lock while ingest is busy.
            from ..store import ensure_schema, make_engine

            engine = make_engine(f"sqlite:///{settings.home / 'route.db'}")
            ensure_schema(engine)
        return cls(routing, engine, httpx.Client(timeout=10.0), clock, settings.dashboard_url)

    def close(self) -> None:
        self.client.close()

    # --- entry points ---------------------------------------------------------------------------
    def handle(self, ce: CloudEvent) -> None:
        msg = decode_correlated(ce, "route")
        if msg is not None:
            self.route(msg)

    def route(self, msg: CorrelatedMessage) -> list[tuple[str, str]]:
        """Sends what each receiver has not been told yet; returns (receiver, state) sent. A receiver
        that stays down after the in-line retries gets the state through the outbox (`flush`); only a
        failure to record that raises, so Pub/Sub redelivers."""
        if msg.incident is None:
            if msg.event.cls.value == "info":
                log.debug("info event %s logged, no action", msg.event.id)
            return []
        sent = []
        owed = []
        for name in receivers_for(self.routing, msg.incident):
            state = desired_state(msg.incident, self.receivers[name])
            if state is not None:
                owed.append((self.receivers[name], state))
        down = self._down() if owed else set()
        for receiver, state in owed:
            name = receiver.name
            if name in down:
                # NOTE: the receiver is known to be down: queue behind its outbox at once rather than
                # spend the in-line retries on every message (and keep its states in order).
                self._enqueue(receiver, msg.incident, state, None)
                continue
            try:
                if self._deliver(receiver, msg.incident, state):
                    sent.append((name, state))
            except DeliveryError as err:
                self._log_failure(name, msg.incident.id, state, err)
                self._enqueue(receiver, msg.incident, state, str(err))
        return sent

    def _log_failure(self, receiver: str, incident_id: str, state: str, err: DeliveryError) -> None:
        log.error(
            json.dumps(
                {
                    "severity": "ERROR",
                    "stage": "route",
                    "receiver": receiver,
                    "incident": incident_id,
                    "state": state,
                    "status": err.status,
                    "retryable": err.retryable,
                    "message": str(err),
                }
            )
        )

    # --- the outbox -----------------------------------------------------------------------------
    def _down(self) -> set[str]:
        """Receivers with anything in the outbox (one query per message, whatever the receivers)."""
        with Session(self.engine) as s:
            return set(s.scalars(select(PendingRow.receiver).distinct()))

    def _enqueue(self, receiver: Receiver, snap: IncidentSnapshot, state: str, error: str | None) -> None:
        """Keep the newest state owed to `receiver` for this incident until it can be delivered."""
        now = self.clock()
        with self._row_lock(receiver.name, snap.id), Session(self.engine) as s, s.begin():
            row = s.get(PendingRow, (receiver.name, snap.id), with_for_update=self._pg)
            if row is None:
                sent = s.get(LedgerRow, (receiver.name, snap.id))
                told_nothing = sent is None or sent.state == "none"
                row = PendingRow(
                    receiver=receiver.name,
                    incident_id=snap.id,
                    state=state,
                    version=snap.version,
                    snapshot=snap.model_dump(mode="json"),
                    owed="triggered" if told_nothing and state == "triggered" else None,
                    attempts=1 if error else 0,
                    first_failed_at=now,
                    next_attempt_at=now + self._outbox_backoff(1),
                    last_error=error[:1000] if error else None,
                )
                s.add(row)
            elif snap.version >= row.version:
                row.state, row.version, row.snapshot = state, snap.version, snap.model_dump(mode="json")

    def _outbox_backoff(self, attempts: int) -> timedelta:
        seconds = min(self.retrier.base_seconds * 2 ** (attempts + 2), self.routing.outbox_max_backoff_seconds)
        return timedelta(seconds=seconds)

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def flush(self, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
        """Retry the outbox states that are due, oldest first (the runtime's ticker, or the scheduled
        `route_flush` function, calls this). A receiver that fails again is not tried further in this
        sweep. Returns how many states were delivered, are still pending, and were not sent (the
        receiver already knew them or newer, or refused them with a 4xx)."""
        at = now or self.clock()
        counts = {"delivered": 0, "pending": 0, "not_sent": 0}
        with Session(self.engine) as s:
            query = select(PendingRow).where(PendingRow.next_attempt_at <= at)
            due = list(s.scalars(query.order_by(PendingRow.first_failed_at, PendingRow.incident_id).limit(limit)))
            s.expunge_all()
        failing: set[str] = set()
        for row in due:
            receiver = self.receivers.get(row.receiver)
            if receiver is None or row.receiver in failing:
                counts["pending"] += 1
                continue
            snap = IncidentSnapshot.model_validate(row.snapshot)
            try:
                if row.owed:
                    self._deliver(receiver, snap, row.owed, self._once)
                delivered = self._deliver(receiver, snap, row.state, self._once)
            except DeliveryError as err:
                failing.add(row.receiver)
                counts["pending"] += 1
                self._retry_later(row, at, str(err))
                continue
            counts["delivered" if delivered or row.owed else "not_sent"] += 1
            self._done(row)
        return counts

    def _retry_later(self, row: PendingRow, at: datetime, error: str) -> None:
        with Session(self.engine) as s, s.begin():
            live = s.get(PendingRow, (row.receiver, row.incident_id))
            if live is not None:
                live.attempts += 1
                live.next_attempt_at = at + self._outbox_backoff(live.attempts)
                live.last_error = error[:1000]

    def _done(self, row: PendingRow) -> None:
        """Remove the delivered state, unless a newer one was queued meanwhile (then it is due now)."""
        with Session(self.engine) as s, s.begin():
            gone = s.execute(
                delete(PendingRow).where(
                    PendingRow.receiver == row.receiver,
                    PendingRow.incident_id == row.incident_id,
                    PendingRow.version == row.version,
                    PendingRow.state == row.state,
                )
            )
            if not gone.rowcount:
                live = s.get(PendingRow, (row.receiver, row.incident_id))
                if live is not None:
                    live.owed = None
                    live.next_attempt_at = self.clock()

    def receivers_down(self) -> list[dict[str, Any]]:
        """Per receiver with anything in its outbox: how many states wait, since when, the last error."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.outbox():
            entry = out.setdefault(
                r["receiver"],
                {"receiver": r["receiver"], "waiting": 0, "since": r["first_failed_at"], "last_error": None},
            )
            entry["waiting"] += 1
            entry["last_error"] = r["last_error"] or entry["last_error"]
        return list(out.values())

    def outbox(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(PendingRow).order_by(PendingRow.first_failed_at))
            return [
                {
                    "receiver": r.receiver,
                    "incident_id": r.incident_id,
                    "state": r.state,
                    "owed": r.owed,
                    "attempts": r.attempts,
                    "first_failed_at": r.first_failed_at.isoformat(),
                    "next_attempt_at": r.next_attempt_at.isoformat(),
                    "last_error": r.last_error,
                }
                for r in rows
            ]

    # --- one receiver ---------------------------------------------------------------------------
    def _claim(self, s: Session, receiver: str, incident_id: str) -> None:
        """The ledger row of a pair never routed before (another instance may be creating it too)."""
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        s.execute(
            insert(LedgerRow)
            .values(receiver=receiver, incident_id=incident_id, state="none", version=0, sent=0)
            .on_conflict_do_nothing()
        )

    def _deliver(self, receiver: Receiver, snap: IncidentSnapshot, state: str, retrier: Retrier | None = None) -> bool:
        """Send `state` unless the ledger says this receiver already knows it (or knows newer)."""
        if self.engine.dialect.name == "postgresql":
            # NOTE: the ledger row stays locked (FOR UPDATE) while the request is in flight, so two
            # instances handling the same incident cannot both send. A crash after sending and before
            # commit resends on redelivery, which PagerDuty folds by dedup_key (Slack shows it twice).
            with Session(self.engine) as s, s.begin():
                query = self._row(receiver.name, snap.id).with_for_update()
                row = s.scalars(query).one_or_none()
                if row is None:
                    self._claim(s, receiver.name, snap.id)
                    row = s.scalars(query).one()
                return self._decide_send_record(row, receiver, snap, state, retrier)
        # SQLite (one process): a process-local lock per ledger row instead of a database write lock
        # held across HTTP calls, which would stall correlation while a sink is slow.
        with self._row_lock(receiver.name, snap.id), Session(self.engine) as s:
            with s.begin():
                row = s.scalars(self._row(receiver.name, snap.id)).one_or_none()
                if row is None:
                    self._claim(s, receiver.name, snap.id)
                    row = s.scalars(self._row(receiver.name, snap.id)).one()
                s.expunge(row)
            before = _recorded(row)
            sent = self._decide_send_record(row, receiver, snap, state, retrier)
            if _recorded(row) != before:
                # NOTE: most messages change nothing a receiver is told (an alert joining an open
                # incident): those cost one read, not a write transaction.
                with s.begin():
                    s.merge(row)
            return sent

    @staticmethod
    def _row(receiver: str, incident_id: str) -> Any:
        return select(LedgerRow).where(LedgerRow.receiver == receiver, LedgerRow.incident_id == incident_id)

    def _row_lock(self, receiver: str, incident_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((receiver, incident_id), threading.Lock())

    def _decide_send_record(
        self, row: LedgerRow, receiver: Receiver, snap: IncidentSnapshot, state: str, retrier: Retrier | None
    ) -> bool:
        if snap.version < row.version or row.state == state:
            return False
        if row.state == "none" and state in ("resolved", "acknowledged") and receiver.type != "change":
            # nothing was ever sent for it: there is nothing to acknowledge or resolve
            row.state, row.version = state, snap.version
            return False
        req = self._request(receiver, snap, state)
        try:
            (retrier or self.retrier).send(
                lambda: self.client.post(req.url, json=req.body, headers=req.headers),
                f"{receiver.name} {state} {snap.id}",
            )
        except DeliveryError as err:
            if err.retryable:
                raise
            # NOTE: a 4xx will not heal by retrying: report it and record it, never resend this state
            log.error(
                json.dumps(
                    {
                        "severity": "ERROR",
                        "stage": "route",
                        "receiver": receiver.name,
                        "incident": snap.id,
                        "state": state,
                        "status": err.status,
                        "message": str(err),
                    }
                )
            )
            row.state, row.version = state, snap.version
            row.last_error, row.updated_at = str(err)[:1000], self.clock()
            return False
        row.state, row.version, row.sent = state, snap.version, row.sent + 1
        row.updated_at, row.last_error = self.clock(), None
        return True

    def _request(self, receiver: Receiver, snap: IncidentSnapshot, state: str) -> Request:
        url_env, key_env = DEFAULT_ENV[receiver.type]
        url = self.environ.get(receiver.url_env or url_env, "")
        if receiver.type == "pagerduty":
            key = self.environ.get(receiver.key_env or key_env or "", "")
            return pagerduty.request(snap, state, key, url, self.dashboard_url)
        if not url:
            raise DeliveryError(f"{receiver.name}: no URL configured (${receiver.url_env or url_env})", None, False)
        if receiver.type == "slack":
            return slack.request(snap, state, url, self.dashboard_url)
        return webhook.request(snap, state, url, self.dashboard_url)


def _recorded(row: LedgerRow) -> tuple[Any, ...]:
    return (row.state, row.version, row.sent, row.last_error, row.updated_at)


def ledger(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as s:
        return [
            {
                "receiver": r.receiver,
                "incident_id": r.incident_id,
                "state": r.state,
                "version": r.version,
                "sent": r.sent,
                "last_error": r.last_error,
            }
            for r in s.scalars(select(LedgerRow).order_by(LedgerRow.incident_id, LedgerRow.receiver))
        ]

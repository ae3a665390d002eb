"""The route stage: an incident's state, as each receiver should know it, sent at most once per state.

Routing (match.py) picks the receivers, `needs_send` (decide.py) decides, the notifier (notify.py)
sends, the ledger (ledger.py) remembers what each receiver was told and keeps what it is owed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from cloudevents.http import CloudEvent
from sqlalchemy import Engine

from ..config import Config
from ..incident import CorrelatedMessage, IncidentAction, IncidentSnapshot
from ..logjson import log_json
from ..settings import Settings
from ..transport.messages import decode_correlated
from .config import Receiver, Route, RoutingConfig, group_wait_of, routing_config
from .decide import (
    NOTHING,
    TRIGGERED,
    Decision,
    Told,
    desired_state,
    needs_owed_trigger,
    needs_send,
    owes_trigger_first,
)
from .ledger import Ledger, PendingRow, as_dicts, ledger_for, notifications
from .match import receivers_for
from .notify import DEFAULT_VARIABLES, Notifier, endpoint, log_failure, log_sent, variable_names
from .retry import DeliveryError, Retrier
from .stored import StoredIncidents

log = logging.getLogger("eventmgmt.route")

Decide = Callable[[Told, int, str, Receiver], Decision]


def default_routing(variables: Mapping[str, str] | None = None) -> RoutingConfig:
    """Without a `routing` section: every configured sink gets every incident (changes to the
    change-management webhook), from the URLs and keys in `variables` (default: the environment)."""
    variables = Settings().sink_variables() if variables is None else variables
    receivers, routes = [], []
    for kind, (url_var, key_var) in DEFAULT_VARIABLES.items():
        if variables.get(key_var or url_var):
            receivers.append(Receiver(name=kind, type=kind, url_env=url_var, key_env=key_var))
            routes.append(Route(receiver=kind, **{"continue": True}))
    return RoutingConfig(receivers=receivers, routes=routes)


def ignored_sink_variables(routing: RoutingConfig, variables: Mapping[str, str]) -> list[str]:
    """The default sinks' variables that are set but that no receiver of a `routing` section uses
    (a receiver that names no variable uses its type's, as `endpoint` reads them): with a section,
    only its receivers are paged, so a PagerDuty key set in the environment alone would page no one
    without a word."""
    used: set[str | None] = set()
    for r in routing.receivers:
        url_var, key_var = DEFAULT_VARIABLES[r.type]
        used.update((r.url_env or url_var, r.key_env or key_var))
    chosen = [key_var or url_var for url_var, key_var in DEFAULT_VARIABLES.values()]
    return [name for name in chosen if name in variables and name not in used]


class Router:
    def __init__(
        self,
        routing: RoutingConfig,
        engine: Engine,
        client: httpx.Client,
        clock: Callable[[], datetime],
        dashboard_url: str,
        retrier: Retrier | None = None,
        environ: Mapping[str, str] | None = None,
        incidents: StoredIncidents | None = None,
        group_wait: timedelta = timedelta(0),
    ) -> None:
        """`engine` holds the ledger; `environ` the receivers' URLs and keys by variable name
        (default: from Settings); `incidents`, the state store to catch up from; `group_wait`, how
        long after route first sees an incident its first page waits (`release_waiting` sends it)."""
        self.routing = routing
        self.engine = engine
        self.ledger: Ledger = ledger_for(engine)
        self.clock = clock
        self.retrier = retrier or Retrier(
            max_attempts=routing.max_attempts, max_backoff_seconds=routing.max_backoff_seconds
        )
        variables = Settings().sink_variables(variable_names(routing)) if environ is None else environ
        endpoints = {r.name: endpoint(r, variables) for r in routing.receivers}
        self.notifier = Notifier(client, endpoints, dashboard_url, self.retrier)
        self.receivers = {r.name: r for r in routing.receivers}
        self.incidents = incidents
        # NOTE: the outbox sweep tries once per due state and backs off between sweeps instead.
        self._once = Retrier(max_attempts=1)
        # Incident versions whose every receiver has been dealt with (told, queued, or nothing owed):
        # a catch-up reads the snapshots of the others only. Kept in memory, so a restart checks all.
        self._settled: dict[str, int] = {}
        self.group_wait = group_wait
        # Incidents whose first page waits for `group_wait`, and when it is due.
        self._due: dict[str, float] = {}  # NOTE: time.monotonic(), from when route first saw it
        # NOTE: with the receivers its first page waits for: until it is due, a later version of the
        # incident changes nothing they are owed (release_waiting reads the incident as it stands
        # then), so it is passed over without a look at the ledger or the outbox.
        self._waiting: dict[str, set[str]] = {}
        self._waiting_lock = threading.Lock()  # NOTE: the ticker's outbox flush meets the worker here
        self._stopping = False  # set by `release_all`: from then on no first page waits
        self._next_catch_up = 0.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        config: Config,
        engine: Engine,
        clock: Callable[[], datetime],
        hold_first_pages: bool = False,
        schema: bool = True,
    ) -> Router:
        section = config.section("routing")
        configured = settings.sink_variables()
        routing = routing_config(section) if section else default_routing(configured)
        ignored = ignored_sink_variables(routing, configured) if section else []
        if ignored:
            log_json(
                log,
                "WARNING",
                "receivers set in the environment are not paged: the routing section names only its own receivers; "
                "add a receiver with url_env/key_env naming these variables to page them",
                ignored=ignored,
                receivers=[r.name for r in routing.receivers],
            )
        from ..store import ensure_schema, make_engine

        ledger_engine = engine
        if not settings.database_url:
            # NOTE: embedded, the ledger gets its own SQLite file, so the route worker never waits for
            # the correlation database's single write lock while ingest is busy.
            ledger_engine = make_engine(f"sqlite:///{settings.home / 'route.db'}")
        if schema:
            ensure_schema(ledger_engine)  # NOTE: the ledger's tables registered when this module imported it
        variables = settings.sink_variables(variable_names(routing))
        client = httpx.Client(timeout=10.0)
        incidents = StoredIncidents(engine)
        wait = timedelta(seconds=group_wait_of(config, settings.group_wait_seconds))
        # NOTE: only where something comes back to send what waits (`periodic`: the embedded
        # runtime's route worker); the Cloud route function pages at once (group there upstream, in
        # Alertmanager).
        return cls(
            routing,
            ledger_engine,
            client,
            clock,
            settings.dashboard_url,
            None,
            variables,
            incidents,
            wait if hold_first_pages else timedelta(0),
        )

    def close(self) -> None:
        self.notifier.close()

    # --- entry points ---------------------------------------------------------------------------
    def handle(self, ce: CloudEvent | CorrelatedMessage) -> None:
        """Correlated messages, as a messagePublished CloudEvent (a batch) or (in-process) one as it is."""
        for msg in [ce] if isinstance(ce, CorrelatedMessage) else decode_correlated(ce, "route"):
            self.route(msg)

    def route(self, msg: CorrelatedMessage) -> list[tuple[str, str]]:
        """Sends what each receiver has not been told yet; returns (receiver, state) sent. A receiver
        that stays down after the in-line retries gets the state through the outbox (`flush`); only a
        failure to record that raises, so Pub/Sub redelivers."""
        if msg.incident is None:
            if msg.event.cls.value == "info":
                log.debug("info event %s logged, no action", msg.event.id)
            return []
        return self._tell_all(msg.incident, opened=msg.action is IncidentAction.opened)

    def catch_up(self) -> dict[str, int]:
        """Tell every receiver what the state store says it is owed and the ledger says it was not
        told: what a crash lost from the queue, or what a message that never arrived would have said.
        At start, then periodically. Returns how many incidents were looked at, and states sent."""
        if self.incidents is None or not self.receivers:
            return {"checked": 0, "sent": 0}
        versions = self.incidents.versions(also=self.ledger.unfinished())
        stale = [i for i, v in versions.items() if self._settled.get(i, -1) < v]
        sent = 0
        for snap in self.incidents.snapshots(stale):
            sent += len(self._tell_all(snap, catching_up=True))
        # NOTE: an incident neither live nor unfinished is over for every receiver: forget it.
        self._settled = {i: v for i, v in self._settled.items() if i in versions}
        return {"checked": len(stale), "sent": sent}

    def periodic(self, catch_up_every: float = 15.0) -> None:
        """The embedded route worker's tick (every second): first pages whose wait is over, and a
        catch-up every `catch_up_every` seconds."""
        self.release_waiting()
        if time.monotonic() >= self._next_catch_up:
            self._next_catch_up = time.monotonic() + catch_up_every
            self.catch_up()

    def release_waiting(self) -> int:
        """Tell receivers the incidents whose first page has waited `group_wait`, as they stand now
        in the state store: an incident folded into another meanwhile is resolved for a receiver told
        nothing, so it is never paged. Returns how many incidents were looked at."""
        if not self._waiting:
            return 0
        now = time.monotonic()
        with self._waiting_lock:
            due = [i for i in self._waiting if self._due[i] <= now]
            released = {i: self._waiting.pop(i) for i in due}
        if due and self.incidents is not None:
            for snap in self.incidents.snapshots(due):
                self._tell_all(snap, never_told=released.get(snap.id))
        with self._waiting_lock:
            for i in due:
                if i not in self._waiting:
                    self._due.pop(i, None)
        return len(due)

    def release_all(self, deadline: float | None = None) -> int:
        """Shutting down: every first page still waiting is sent at once, as its incident stands in
        the state store, and from now on none waits (a message routed during the drain pages at
        once). Stops starting new incidents at `deadline` (time.monotonic()); what is left is owed in
        the state store and paged after the next start. Returns how many incidents were held."""
        with self._waiting_lock:
            self._stopping = True
            held = sorted(self._waiting, key=lambda i: self._due.get(i, 0.0))
            self._waiting.clear()
        if held and self.incidents is not None:
            order = {i: n for n, i in enumerate(held)}
            for snap in sorted(self.incidents.snapshots(held), key=lambda s: order.get(s.id, 0)):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._tell_all(snap)
        return len(held)

    # --- every receiver of one snapshot ---------------------------------------------------------
    def _owed(self, snap: IncidentSnapshot) -> list[tuple[Receiver, str]]:
        owed = []
        for name in receivers_for(self.routing, snap):
            state = desired_state(snap, self.receivers[name])
            if state is not None:
                owed.append((self.receivers[name], state))
        return owed

    def _tell_all(
        self,
        snap: IncidentSnapshot,
        catching_up: bool = False,
        never_told: set[str] | None = None,
        opened: bool = False,
    ) -> list[tuple[str, str]]:
        """`never_told`: receivers whose first page of the incident waited until now (released);
        `opened`: correlation has just opened the incident, so no receiver was told of it."""
        sent = []
        owed = [
            (r, state)
            for r, state in self._owed(snap)
            if not self._first_page_waits(r, state, snap.id) and not self._first_sighting_waits(r, state, snap, opened)
        ]
        if snap.merged_into is not None:
            owed = self._unless_folded_unseen(snap.id, owed, never_told or set())
        down = self.ledger.down() if owed else set()
        for receiver, state in owed:
            steps: list[tuple[str, Decide]] = [(state, needs_send)]
            if catching_up and owes_trigger_first(state):
                steps.insert(0, (TRIGGERED, needs_owed_trigger))
            if self._tell(receiver, snap, steps, receiver.name in down):
                sent.append((receiver.name, state))
        with self._waiting_lock:
            waiting = snap.id in self._waiting
        if not waiting:
            # NOTE: a first page still waiting is not settled: a catch-up looks at it again.
            self._settled[snap.id] = max(snap.version, self._settled.get(snap.id, -1))
        return sent

    def _unless_folded_unseen(
        self, incident_id: str, owed: list[tuple[Receiver, str]], never_told: set[str]
    ) -> list[tuple[Receiver, str]]:
        """An incident folded into another while its first page waited: the receivers it waited for
        were told nothing, so they are owed nothing, and their wait ends here.

        NOTE: recording its resolution for them was a write transaction a fragment. A storm whose
        alerts come grouped by alertname (every pod's crash loop, then every error rate) folds away
        a fragment a pod; those writes were two thirds of such a drain, route beside correlation. A
        merged incident is not live, so no catch-up owes anyone its trigger later; an incident that
        resolved unseen is still recorded, so that a catch-up after a restart does not page it."""
        with self._waiting_lock:
            waiting = self._waiting.get(incident_id, set())
            unseen = never_told | waiting
            waiting -= {r.name for r, _ in owed}
            if incident_id in self._waiting and not waiting:
                del self._waiting[incident_id]
                self._due.pop(incident_id, None)
        return [(r, state) for r, state in owed if r.name not in unseen]

    def _tell(self, receiver: Receiver, snap: IncidentSnapshot, steps: list[tuple[str, Decide]], down: bool) -> bool:
        """Tell `receiver` each state in turn, as its decision says; what it cannot take now waits in
        its outbox. Returns whether the last state was sent."""
        if down:
            # NOTE: the receiver is known to be down: queue behind its outbox at once rather than
            # spend the in-line retries on every message (and keep its states in order).
            for state, _ in steps:
                self._enqueue(receiver, snap, state, None)
            return False
        sent = False
        for i, (state, decide) in enumerate(steps):
            try:
                sent = self._deliver(receiver, snap, state, decide=decide)
            except DeliveryError as err:
                log_failure(receiver.name, snap.id, state, err)
                for rest, _ in steps[i:]:
                    self._enqueue(receiver, snap, rest, str(err))
                return False
        return sent

    def _deliver(
        self, receiver: Receiver, snap: IncidentSnapshot, state: str, retrier: Retrier | None = None, *, decide: Decide
    ) -> bool:
        """Send `state` unless the ledger says this receiver already knows it (or knows newer)."""
        with self.ledger.hold(receiver.name, snap.id) as told:
            decision = decide(Told(told.state, told.version), snap.version, state, receiver)
            if decision is Decision.send and self._must_wait(told.state, state, snap, receiver):
                return False
            if decision is Decision.record:
                told.record(state, snap.version)
            if decision is not Decision.send:
                return False
            try:
                self.notifier.send(receiver, snap, state, retrier)
            except DeliveryError as err:
                if err.retryable:
                    raise
                # NOTE: a 4xx will not heal by retrying: report it and record it, never resend this state
                log_failure(receiver.name, snap.id, state, err)
                told.record_refused(state, snap.version, self.clock(), str(err))
                return False
            told.record_sent(state, snap.version, self.clock())
            log_sent(receiver.name, snap, state)
            return True

    def _first_page_waits(self, receiver: Receiver, state: str, incident_id: str) -> bool:
        """`receiver`'s first page of this incident is held (`_must_wait`) and not due yet: a
        trigger of a newer version needs nothing now. In a storm, every correlation transaction
        announces every incident again: this spares a ledger read and an outbox query each (route's
        thread was busy for about a sixth of a storm's drain beside it: docs/benchmarks.md, tenth
        pass)."""
        if state != TRIGGERED:
            return False
        with self._waiting_lock:
            if receiver.name not in self._waiting.get(incident_id, ()):
                return False
            return time.monotonic() < self._due[incident_id]

    def _first_sighting_waits(self, receiver: Receiver, state: str, snap: IncidentSnapshot, opened: bool) -> bool:
        """A trigger of an incident route sees for the first time, which `receiver` was told nothing
        of: its first page waits (`_must_wait`) after one read of the ledger, with nothing written.
        NOTE: holding the ledger row wrote it, a write transaction for each new incident: a storm
        whose alerts come grouped by alertname (every pod's crash loop, then every error rate)
        announces a fragment a pod, and route's thread spent most of such a drain on those writes,
        beside correlation. What `release_waiting` sends later goes the whole way, under the row's
        lock, so a page another thread sent meanwhile is not sent twice."""
        if not self.group_wait or state != TRIGGERED:
            return False
        with self._waiting_lock:
            if self._stopping or receiver.name in self._waiting.get(snap.id, ()):
                return False
            if snap.id in self._due and time.monotonic() >= self._due[snap.id]:
                return False  # NOTE: its wait is over (another receiver's): the whole way
        # NOTE: an incident correlation has just opened was never told to anyone (its id is new): not
        # even the read, which was most of route's time in such a storm.
        if not opened and self.ledger.told(receiver.name, snap.id) != NOTHING:
            return False
        return self._must_wait(NOTHING, state, snap, receiver)

    def _must_wait(self, told: str, state: str, snap: IncidentSnapshot, receiver: Receiver) -> bool:
        """A first page (a trigger to a receiver told nothing) waits until `group_wait` after route
        first saw the incident; the incident is remembered so that `release_waiting` sends it.

        NOTE: on arrival time, as Alertmanager's group_wait, not on event time: alerts arrive already
        minutes old (their `for`, Alertmanager's own group_wait), so an incident's event time says
        nothing about how long correlation has had to fold its fragments."""
        if not self.group_wait or state != TRIGGERED or told != NOTHING:
            return False
        now = time.monotonic()
        with self._waiting_lock:
            if self._stopping:
                return False
            due = self._due.setdefault(snap.id, now + self.group_wait.total_seconds())
            if now >= due:
                return False
            self._waiting.setdefault(snap.id, set()).add(receiver.name)
        return True

    # --- the outbox -----------------------------------------------------------------------------
    def _enqueue(self, receiver: Receiver, snap: IncidentSnapshot, state: str, error: str | None) -> None:
        now = self.clock()
        self.ledger.enqueue(receiver.name, snap, state, error, now, now + self._outbox_backoff(1))

    def _outbox_backoff(self, attempts: int) -> timedelta:
        seconds = min(self.retrier.base_seconds * 2 ** (attempts + 2), self.routing.outbox_max_backoff_seconds)
        return timedelta(seconds=seconds)

    def flush(self, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
        """Retry the outbox states that are due, oldest first (the runtime's ticker, or the scheduled
        `route_flush` function, calls this). A receiver that fails again is not tried further in this
        sweep. Returns how many states were delivered, are still pending, and were not sent (the
        receiver already knew them or newer, or refused them with a 4xx)."""
        at = now or self.clock()
        counts = {"delivered": 0, "pending": 0, "not_sent": 0}
        failing: set[str] = set()
        for row in self.ledger.due(at, limit):
            receiver = self.receivers.get(row.receiver)
            if receiver is None or row.receiver in failing:
                counts["pending"] += 1
                continue
            try:
                delivered = self._flush_one(receiver, row)
            except DeliveryError as err:
                failing.add(row.receiver)
                counts["pending"] += 1
                self.ledger.retry_later(row, lambda attempts: at + self._outbox_backoff(attempts), str(err))
                continue
            counts["delivered" if delivered or row.owed else "not_sent"] += 1
            self.ledger.done(row, self.clock())
        return counts

    def _flush_one(self, receiver: Receiver, row: PendingRow) -> bool:
        snap = IncidentSnapshot.model_validate(row.snapshot)
        if row.owed:
            self._deliver(receiver, snap, row.owed, self._once, decide=needs_send)
        return self._deliver(receiver, snap, row.state, self._once, decide=needs_send)

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
            for r in self.ledger.pending()
        ]


def told_of(ledger: Engine | None, incident_id: str) -> list[dict[str, Any]]:
    """Who route told of an incident and what it still owes, from the ledger in `ledger` (none
    where no ledger is reachable)."""
    return notifications(ledger, incident_id) if ledger is not None else []


def ledger(engine: Engine) -> list[dict[str, Any]]:
    """What each receiver was told of each incident (tests, operators)."""
    return as_dicts(ledger_for(engine).rows())

"""The embedded runtime: ingest, enrich, correlate (and route and archive when configured), chained
by the in-process publisher with the same envelopes Pub/Sub would carry. Ingest and the collector
append to a durable queue; one drainer thread hands it on to enrich and correlate.

`role` splits it in two for `serve` (runtime/correlation_process.py): "accept" is what answers HTTP
(ingest, the API, the dashboard, heartbeats, the collector), "correlate" what the drain feeds
(enrich, correlate, route, archive, retention), each in a process of its own; "all" is both in one
process (tests, and `serve` with EVENTMGMT_CORRELATE_PROCESS=0)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cloudevents.http import CloudEvent
from sqlalchemy import Engine

from ..clock import StreamClock, utcnow
from ..config import Config, load_config
from ..correlate.stage import CorrelateStage
from ..dashboard.windows import WindowProvider
from ..enrich.stage import EnrichStage
from ..errors import BacklogFull
from ..ingest.queued import DELIVERIES, BuiltPart
from ..ingest.service import IngestService
from ..settings import Settings
from ..store import ensure_schema, make_engine
from ..transport import InProcessPublisher
from ..transport.messages import decode, publish_events
from ..transport.pipeline import CORRELATED, ENRICHED, RAW
from .build_ahead import BuildAhead, usable_cores
from .drain import Drainer, hand_on
from .durable_queue import DurableQueue, QueuedPublisher
from .heartbeats import HeartbeatWatch, timeout_of
from .memory import release, trim
from .operator_changes import OPERATOR_CHANGES, OperatorChanges
from .priority import IngestPriority
from .queue_counters import SharedCounters
from .schedules import Every, retention_job
from .worker import BackgroundSubscriber

if TYPE_CHECKING:
    from flask import Flask

    from ..archive import Archiver
    from ..route import Router
    from .correlation_process import CorrelationProcess

log = logging.getLogger("eventmgmt")

Role = Literal["all", "accept", "correlate"]


class DrainHandle(Protocol):
    """What the API, the metrics and shutdown need of the drain: the thread here, or the process
    that correlates (runtime/correlation_process.py)."""

    @property
    def alive(self) -> bool: ...
    @property
    def releases(self) -> int: ...
    @property
    def draining(self) -> bool: ...
    @property
    def restarts(self) -> int: ...
    @property
    def build_counts(self) -> tuple[int, int, int]: ...
    def close(self, timeout: float = 30.0) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    config: Config
    engine: Engine
    publisher: InProcessPublisher
    correlate: CorrelateStage
    enrich: EnrichStage
    clock: Callable[[], datetime]
    windows: WindowProvider
    queue: DurableQueue
    # NOTE: what ingest and the collector publish to: events-raw is appended to `queue`, and the
    # drainer hands it on through `publisher`, which chains the stages.
    accept: QueuedPublisher
    # NOTE: the webhooks' service; the drainer builds the deliveries it queued as received.
    ingest: IngestService
    drainer: DrainHandle
    role: Role = "all"
    priority: IngestPriority = field(default_factory=IngestPriority)
    heartbeats: HeartbeatWatch | None = None
    # The optional stages, None where their package is not installed; the scheduled jobs, None when
    # off (the collector without Prometheus, retention with EVENTMGMT_RETENTION_EVERY=0).
    archive: Archiver | None = None
    router: Router | None = None
    # NOTE: the correlating process's: what an operator changed in the accepting process
    operator_changes: OperatorChanges | None = None
    route_worker: BackgroundSubscriber | None = None
    archive_job: Every | None = None
    collector: Every | None = None
    retention: Every | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def ledger(self) -> Engine | None:
        """Where route records what each receiver was told (embedded on SQLite, its own file)."""
        return self.router.ledger.engine if self.router is not None else None

    def start_ticker(self, every: float = 15.0) -> threading.Thread:
        """Resolves quiet incidents on wall-clock time even when no event arrives."""

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.tick()
                except Exception:
                    log.exception("tick failed")

        t = threading.Thread(target=loop, name="eventmgmt-ticker", daemon=True)
        t.start()
        return t

    def tick(self) -> None:
        # NOTE: resolve on quiet only when correlation has caught up: an event still queued may be
        # the one that keeps an incident open.
        if self.role != "accept" and self.queue.backlog == 0:
            self.correlate.tick(self.clock())
        if self.heartbeats is not None:
            self.heartbeats.check()
        if self.archive is not None:
            self.archive.flush()
        if self.router is not None and self.route_worker is not None:
            self.router.flush()

    def stop(self) -> None:
        """Stops producing first (collector, drain), then sends and stores what is in hand."""
        self._stop.set()
        for job in (self.collector, self.retention, self.archive_job):
            if job is not None:
                job.close()
        self.drainer.close()
        if self.route_worker is not None:
            self.route_worker.close()
        if self.router is not None:
            self.router.close()
        if self.archive is not None:
            self.archive.close()
        self.queue.close()


def build_runtime(
    settings: Settings | None = None,
    config: Config | None = None,
    clock: Callable[[], datetime] | None = None,
    *,
    role: Role = "all",
    counters: SharedCounters | None = None,
) -> Runtime:
    """`role` "accept" starts the correlating process itself; "correlate" is that process's, on the
    queue's `counters` the accepting process shares."""
    settings = settings or Settings()
    config = config or load_config(settings.config_path)
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    if role != "correlate":
        # NOTE: the correlating process starts on the schema its parent made: with the state store
        # down at its start, it waits in the drain's retries instead of failing to start.
        ensure_schema(engine)
    publisher = InProcessPublisher(project=settings.project)
    queue, process = _queue_of(settings, role, counters)
    clock = clock or (process.clock if process is not None else StreamClock())
    windows = WindowProvider(engine)
    enrich = EnrichStage(config, publisher, windows=windows)
    correlate = CorrelateStage(config, publisher, clock, engine=engine)
    accept = QueuedPublisher(publisher, queue, max_backlog=settings.max_backlog)
    # NOTE: receipt is stamped with the server's own clock; the stream clock only follows events.
    ingest = IngestService.from_settings(settings, config, accept, utcnow)
    priority = IngestPriority()
    drainer: DrainHandle
    if process is not None:
        # NOTE: what an operator's action here announces (an acknowledgement, a maintenance
        # window's change record) goes to route and archive in the correlating process.
        publisher.subscribe(CORRELATED, "correlating-process", process.forward_encoded, objects=process.forward)
        drainer = process
    else:
        ahead = _build_ahead(settings, config, ingest, counters) if role == "correlate" else None
        drainer = _drainer(engine, publisher, enrich, correlate, queue, ingest, priority, counters, ahead)
    rt = Runtime(settings, config, engine, publisher, correlate, enrich, clock, windows, queue, accept, ingest, drainer)
    rt.role, rt.priority = role, priority
    _attach_stages(rt)
    # NOTE: started last, so a backlog left by an earlier run meets every stage subscribed.
    if isinstance(drainer, Drainer):
        drainer.start()
    elif process is not None:
        process.start()
    return rt


def _queue_of(
    settings: Settings, role: Role, counters: SharedCounters | None
) -> tuple[DurableQueue, CorrelationProcess | None]:
    """The durable queue, and for the accepting role the correlating process that drains it (not
    started)."""
    if role != "accept":
        return DurableQueue(settings.queue_path, sync=settings.queue_sync, counters=counters), None
    from .correlation_process import CorrelationProcess, hold_home

    # NOTE: before the queue is counted: a correlating process left by a killed `serve` may still
    # be removing the delivery in hand.
    hold_home(settings.home)
    queue = DurableQueue(settings.queue_path, sync=settings.queue_sync)
    return queue, CorrelationProcess(settings, queue)


def _attach_stages(rt: Runtime) -> None:
    """Heartbeats and the collector where deliveries are accepted; route and archive where they are
    correlated (the accepting process only reads route's ledger)."""
    if rt.role != "correlate":
        # NOTE: on the server's own clock: a heartbeat is late by wall time, whatever its event time
        rt.heartbeats = HeartbeatWatch(rt.accept, timeout_of(rt.config.section("heartbeats")), utcnow)
        rt.ingest.on_accepted = rt.heartbeats.saw
        _attach_collector(rt)
    if rt.role == "accept":
        _attach_route_reader(rt)
        return
    _attach_archive(rt)
    _attach_route(rt)
    _attach_retention(rt)
    # NOTE: in one process too: changes an earlier `serve` queued for its correlating process
    rt.operator_changes = OperatorChanges(rt.publisher, before=rt.windows.invalidate)
    rt.publisher.subscribe(OPERATOR_CHANGES, "operator-changes", rt.operator_changes.handle_encoded)


def _drainer(
    engine: Engine,
    publisher: InProcessPublisher,
    enrich: EnrichStage,
    correlate: CorrelateStage,
    queue: DurableQueue,
    ingest: IngestService,
    priority: IngestPriority,
    counters: SharedCounters | None,
    ahead: BuildAhead | None = None,
) -> Drainer:
    """The stages the drain feeds, subscribed, and the drain (not started)."""
    publisher.subscribe(RAW, "enrich", enrich.handle, batch=enrich.handle_batch, objects=enrich.handle_events)
    publisher.subscribe(
        ENRICHED, "correlate", correlate.handle, batch=correlate.handle_batch, objects=correlate.process_many
    )
    correlate.checkpoint = priority.step_aside
    built = _DeliveryBuilder(ingest, publisher, priority.step_aside)
    publisher.subscribe(DELIVERIES, "ingest", built.handle, batch=built.handle_batch, objects=built.build)
    give_back = functools.partial(release, engine, queue.shrink_memory)

    def release_and_count() -> None:
        give_back()
        if counters is not None:
            counters.released()

    return Drainer(
        queue,
        functools.partial(hand_on, publisher),
        merge_deliveries=True,
        checkpoint=priority.step_aside,
        release=release_and_count,
        ahead=ahead,
    )


def _build_ahead(
    settings: Settings, config: Config, ingest: IngestService, counters: SharedCounters | None
) -> BuildAhead | None:
    """The build process of the correlating process, started, where it has a core to run on."""
    if not settings.build_process or usable_cores() < 2:
        return None
    report = counters.built if counters is not None else None
    return BuildAhead(settings.queue_path, config, ingest.limits, report=report).start()


class _DeliveryBuilder:
    """Builds the events of deliveries ingest queued as received and hands them to enrichment."""

    def __init__(
        self, ingest: IngestService, publisher: InProcessPublisher, checkpoint: Callable[[], None] | None = None
    ) -> None:
        self.ingest = ingest
        self.publisher = publisher
        # NOTE: building a delivery is a long stretch without one of correlation's checkpoints
        self.checkpoint = checkpoint or (lambda: None)

    def handle(self, ce: CloudEvent) -> None:
        self.handle_batch([ce])

    def handle_batch(self, ces: list[CloudEvent]) -> None:
        self.build([decode(ce)[0] for ce in ces])

    def build(self, payloads: list[Any]) -> None:
        events = []
        for p in payloads:
            # NOTE: a part the drain had built already (build_ahead.py) is only counted here
            events.extend(self.ingest.take_built(p) if isinstance(p, BuiltPart) else self.ingest.expand(p))
            self.checkpoint()
        publish_events(self.publisher, RAW, events)


def _attach_archive(rt: Runtime) -> None:
    try:
        from ..archive import Archiver
    except ImportError:
        return
    archive = Archiver.from_settings(rt.settings, rt.config, defer_up_to=ARCHIVE_DEFER_UP_TO)
    rt.publisher.subscribe(CORRELATED, "archive", archive.handle, objects=archive.add_many)
    rt.archive = archive

    def archive_when_idle() -> None:
        pending, age = archive.deferred
        idle = rt.queue.backlog == 0 and not rt.priority.busy
        if pending and (idle or age >= ARCHIVE_MAX_DELAY):
            archive.flush()
            if pending >= ARCHIVE_TRIM_AFTER and idle:
                trim()  # NOTE: the records, JSON and gzip buffers of a storm's archive

    rt.archive_job = Every("archive", archive_when_idle, ARCHIVE_POLL)


def _attach_route(rt: Runtime) -> None:
    try:
        from ..route import Router
    except ImportError:
        return
    router = Router.from_settings(
        rt.settings, rt.config, rt.engine, rt.clock, hold_first_pages=True, schema=rt.role != "correlate"
    )
    # NOTE: the worker's queue is memory only; what it held is owed in the state store, and the
    # worker catches up from there at start and every 15 s (a crash, a message dead-lettered).
    dead_letter = rt.settings.home / "dead-letter" / "route.jsonl"
    # NOTE: every second: first pages whose group wait is over; a catch-up every 15 s.
    worker = BackgroundSubscriber(
        "route", router.handle, dead_letter, periodic=router.periodic, every=1.0, checkpoint=rt.priority.step_aside
    )
    rt.publisher.subscribe(CORRELATED, "route", worker.handle, objects=worker.handle_many)
    rt.router, rt.route_worker = router, worker


def _attach_route_reader(rt: Runtime) -> None:
    """Who was told what and what waits for a receiver, for the API, the dashboard and /metrics of
    the accepting process; the correlating process's route worker does the telling."""
    try:
        from ..route import Router
    except ImportError:
        return
    rt.router = Router.from_settings(rt.settings, rt.config, rt.engine, rt.clock)


def _attach_collector(rt: Runtime) -> None:
    if not rt.settings.prometheus_url:
        return
    from ..collector import Collector

    collector = Collector.from_settings(rt.settings, rt.config, rt.accept, rt.clock)
    rt.collector = Every("collector", collector.run, rt.settings.collect_every)


def _attach_retention(rt: Runtime) -> None:
    if rt.settings.retention_every <= 0:
        return
    job = retention_job(rt.settings.archive, rt.engine, rt.config, utcnow)
    # NOTE: the first pass a minute after start, behind what start-up drains.
    rt.retention = Every("retention", job, rt.settings.retention_every, first=min(60.0, rt.settings.retention_every))


# NOTE: the drain hands correlated messages to the archive at no cost; they are archived once
# correlation is idle, or after ARCHIVE_MAX_DELAY seconds, or in the drain's own thread once this
# many wait (memory stays bounded in a storm of any length).
ARCHIVE_DEFER_UP_TO = 5000
ARCHIVE_TRIM_AFTER = 1000
ARCHIVE_MAX_DELAY = 5.0
ARCHIVE_POLL = 0.05


def _backlog_full(rt: Runtime) -> Callable[[], BacklogFull | None]:
    """Past the backlog bound, a delivery is refused before it is read (503, the sender retries)."""

    def full() -> BacklogFull | None:
        backlog, bound = rt.queue.backlog, rt.settings.max_backlog
        if bound <= 0 or backlog < bound:
            return None
        rt.queue.counters.refuse()
        return BacklogFull(backlog, bound)

    return full


def create_app(rt: Runtime, host: str | None = None) -> Flask:
    """The embedded runtime's routes; `host` is the address served (its name is a Host answered)."""
    # NOTE: imported here: the correlating process builds a runtime but serves no HTTP, and Flask,
    # werkzeug and jinja cost it about 20 MiB (runtime/correlation_process.py).
    from flask import Flask

    from . import api, guard, http_errors
    from .ingest_route import IngestRoute

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # NOTE: ingest enforces its own limit with a JSON 413.
    from ..ingest import create_ingest_blueprint

    app.register_blueprint(create_ingest_blueprint(rt.ingest))
    http_errors.install(app)
    guarding = guard.install(app, rt.settings, host)
    deliveries = IngestRoute(rt.ingest, guarding, _backlog_full(rt), app.wsgi_app)
    app.wsgi_app = rt.priority.wrap(deliveries)  # type: ignore[method-assign,assignment]

    api.register(app, rt)
    from ..dashboard import register as register_dashboard

    register_dashboard(app, rt)
    return app

"""The embedded runtime: ingest, enrich, correlate (and route and archive when configured) in one
process, chained by the in-process publisher with the same envelopes Pub/Sub would carry. Ingest
and the collector append to a durable queue; one drainer thread hands it on to enrich and correlate."""

from __future__ import annotations

import functools
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.http import CloudEvent
from flask import Flask, jsonify, request
from sqlalchemy import Engine

from ..clock import StreamClock, utcnow
from ..config import Config, load_config
from ..correlate.stage import CorrelateStage
from ..dashboard.windows import WindowProvider
from ..enrich.stage import EnrichStage
from ..errors import InputError
from ..ingest.queued import DELIVERIES
from ..ingest.service import IngestService
from ..logjson import log_json
from ..settings import Settings
from ..store import ensure_schema, make_engine
from ..timeutil import iso
from ..transport import InProcessPublisher
from ..transport.messages import decode, publish_events
from . import guard, http_errors, params, queries
from .drain import Drainer, hand_on
from .durable_queue import DurableQueue, QueuedPublisher
from .heartbeats import HeartbeatWatch, timeout_of
from .memory import trim
from .priority import IngestPriority
from .worker import BackgroundSubscriber

log = logging.getLogger("eventmgmt")


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
    drainer: Drainer
    priority: IngestPriority = field(default_factory=IngestPriority)
    heartbeats: HeartbeatWatch | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_ticker(self, every: float = 15.0) -> threading.Thread:
        """Resolves quiet incidents on wall-clock time even when no event arrives."""

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    # NOTE: resolve on quiet only when correlation has caught up: an event still
                    # queued may be the one that keeps an incident open.
                    if self.queue.backlog == 0:
                        self.correlate.tick(self.clock())
                    if self.heartbeats is not None:
                        self.heartbeats.check()
                    for ext in list(self.extras.values()):
                        flush = getattr(ext, "flush", None)
                        if callable(flush):
                            flush()
                except Exception:
                    log.exception("tick failed")

        t = threading.Thread(target=loop, name="eventmgmt-ticker", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()
        self.drainer.close()
        for ext in self.extras.values():
            close = getattr(ext, "close", None)
            if callable(close):
                close()
        self.queue.close()


def build_runtime(
    settings: Settings | None = None, config: Config | None = None, clock: Callable[[], datetime] | None = None
) -> Runtime:
    settings = settings or Settings()
    config = config or load_config(settings.config_path)
    clock = clock or StreamClock()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    ensure_schema(engine)
    publisher = InProcessPublisher(project=settings.project)
    windows = WindowProvider(engine)
    enrich = EnrichStage(config, publisher, windows=windows)
    correlate = CorrelateStage(config, publisher, clock, engine=engine)
    publisher.subscribe("events-raw", "enrich", enrich.handle, batch=enrich.handle_batch, objects=enrich.handle_events)
    publisher.subscribe(
        "events-enriched", "correlate", correlate.handle, batch=correlate.handle_batch, objects=correlate.process_many
    )
    queue = DurableQueue(settings.queue_path)
    accept = QueuedPublisher(publisher, queue)
    # NOTE: receipt is stamped with the server's own clock; the stream clock only follows events.
    ingest = IngestService.from_settings(settings, config, accept, utcnow)
    priority = IngestPriority()
    correlate.checkpoint = priority.step_aside
    built = _DeliveryBuilder(ingest, publisher, priority.step_aside)
    publisher.subscribe(DELIVERIES, "ingest", built.handle, batch=built.handle_batch, objects=built.build)
    drainer = Drainer(
        queue, functools.partial(hand_on, publisher), merge_deliveries=True, checkpoint=priority.step_aside
    )
    rt = Runtime(
        settings,
        config,
        engine,
        publisher,
        correlate,
        enrich,
        clock,
        windows,
        queue=queue,
        accept=accept,
        ingest=ingest,
        drainer=drainer,
        priority=priority,
    )
    # NOTE: on the server's own clock: a heartbeat is late by wall time, whatever its event time
    rt.heartbeats = HeartbeatWatch(rt.accept, timeout_of(config.section("heartbeats")), utcnow)
    ingest.on_accepted = rt.heartbeats.saw
    for name, attach in OPTIONAL_STAGES:
        ext = attach(rt)
        if ext is not None:
            rt.extras[name] = ext
    # NOTE: started last, so a backlog left by an earlier run meets every stage subscribed.
    drainer.start()
    return rt


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
            events.extend(self.ingest.expand(p))
            self.checkpoint()
        publish_events(self.publisher, "events-raw", events)


def _attach_archive(rt: Runtime) -> Any:
    try:
        from ..archive import Archiver
    except ImportError:
        return None
    archiver = Archiver.from_settings(rt.settings, rt.config)
    rt.publisher.subscribe("events-correlated", "archive", archiver.handle, objects=archiver.add_many)
    return archiver


def _attach_route(rt: Runtime) -> Any:
    try:
        from ..route import Router
    except ImportError:
        return None
    router = Router.from_settings(rt.settings, rt.config, rt.engine, rt.clock, hold_first_pages=True)
    # NOTE: the worker's queue is memory only; what it held is owed in the state store, and the
    # worker catches up from there at start and every 15 s (a crash, a message dead-lettered).
    dead_letter = rt.settings.home / "dead-letter" / "route.jsonl"
    # NOTE: every second: first pages whose group wait is over; a catch-up every 15 s.
    worker = BackgroundSubscriber(
        "route", router.handle, dead_letter, periodic=router.periodic, every=1.0, checkpoint=rt.priority.step_aside
    )
    rt.publisher.subscribe("events-correlated", "route", worker.handle, objects=worker.handle_many)
    rt.extras["route-worker"] = worker
    return router


class _ScheduledCollector:
    """Runs the collector every `every` seconds on its own thread when Prometheus is configured."""

    def __init__(self, collector: Any, every: float) -> None:
        self.collector = collector
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), name="eventmgmt-collector", daemon=True)
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.collector.run()
            except Exception:
                log.exception("collector run failed")

    def close(self) -> None:
        self._stop.set()


def _attach_collector(rt: Runtime) -> Any:
    if not rt.settings.prometheus_url:
        return None
    from ..collector import Collector

    collector = Collector.from_settings(rt.settings, rt.config, rt.accept, rt.clock)
    return _ScheduledCollector(collector, rt.settings.collect_every)


OPTIONAL_STAGES: list[tuple[str, Callable[[Runtime], Any]]] = [
    ("archive", _attach_archive),
    ("route", _attach_route),
    ("collector", _attach_collector),
]

# NOTE: after a delivery this large, freed heap is handed back to the OS (glibc keeps it otherwise).
BIG_DELIVERY_BYTES = 1024 * 1024


def _install_backpressure(app: Flask, rt: Runtime) -> None:
    """Past the backlog bound, refuse a delivery before reading it (503, the sender retries); after
    a big delivery, give freed memory back."""

    @app.before_request
    def backpressure() -> Any:
        if request.method != "POST" or not request.path.startswith("/ingest"):
            return None
        backlog, bound = rt.queue.backlog, rt.settings.max_backlog
        if bound <= 0 or backlog < bound:
            return None
        rt.queue.refused += 1
        resp = jsonify(
            {
                "error": f"{backlog} accepted events are waiting for correlation (bound {bound}); retry later",
                "retryable": True,
                "backlog": backlog,
                "max_backlog": bound,
            }
        )
        resp.status_code = 503
        resp.headers["Retry-After"] = "5"
        return resp

    @app.teardown_request
    def give_back_memory(_err: BaseException | None) -> None:
        if request.content_length and request.content_length >= BIG_DELIVERY_BYTES:
            trim()


def _register_queue_api(app: Flask, rt: Runtime) -> None:
    @app.get("/api/queue")
    def queue_state() -> Any:
        """The durable queue: backlog and sequence numbers. `?wait=S` first waits up to S seconds
        (at most 60) until everything accepted before this request has been correlated."""
        if request.args.get("wait"):
            try:
                wait = min(60.0, max(0.0, float(request.args["wait"])))
            except ValueError:
                raise InputError("wait must be a number of seconds", "wait") from None
            rt.queue.wait_drained(wait)
        return jsonify({**rt.queue.stats(), "max_backlog": rt.settings.max_backlog})

    @app.get("/api/queue/dead-letters")
    def queue_dead_letters() -> Any:
        return jsonify({"dead_letters": rt.queue.dead_letters()})


# (keyword of queries.list_events, query parameter of GET /api/events)
EVENT_FILTERS = [
    ("kind", "kind"),
    ("cls", "class"),
    ("q", "q"),
    ("pod", "pod"),
    ("node", "node"),
    ("model", "model"),
    ("incident", "incident"),
]


def _register_api(app: Flask, rt: Runtime) -> None:
    """The read API: GET /healthz, /metrics, /api/outbox, /api/incidents[/<id>], /api/events."""

    @app.get("/healthz")
    def healthz() -> Any:
        # NOTE: `clock` is correlation's stream clock: far behind the wall clock during a backfill,
        # never more than a minute ahead of it.
        queue = rt.queue.stats()
        return jsonify({"status": "ok", "clock": iso(rt.clock()), "backlog": queue["backlog_events"], "queue": queue})

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness (a Kubernetes readiness probe, a load balancer): 200 while deliveries can be
        taken and correlated: the state store answers, the correlation thread runs, the backlog is
        under its bound. 503 naming what is not, so traffic goes elsewhere meanwhile."""
        from sqlalchemy import text

        problems = []
        try:
            with rt.engine.connect() as c:
                c.execute(text("SELECT 1"))
        except Exception as err:  # NOTE: any failure to reach the store means not ready
            problems.append(f"state store: {type(err).__name__}")
        if not rt.drainer.alive:
            problems.append("correlation thread not running")
        bound = rt.settings.max_backlog
        if bound > 0 and rt.queue.backlog >= bound:
            problems.append(f"backlog {rt.queue.backlog} at its bound {bound}")
        from .. import __version__

        body = {"ready": not problems, "problems": problems, "version": __version__, "backlog": rt.queue.backlog}
        return jsonify(body), (503 if problems else 200)

    @app.get("/metrics")
    def metrics() -> Any:
        """Prometheus text exposition (runtime/metrics.py)."""
        from .metrics import CONTENT_TYPE, exposition

        return exposition(rt), 200, {"Content-Type": CONTENT_TYPE}

    @app.get("/api/outbox")
    def outbox() -> Any:
        """Notifications waiting for a receiver that is down (the route outbox)."""
        router = rt.extras.get("route")
        if router is None:
            return jsonify({"receivers_down": [], "pending": []})
        return jsonify({"receivers_down": router.receivers_down(), "pending": router.outbox()})

    @app.get("/api/incidents")
    def incidents() -> Any:
        args = request.args
        page = queries.list_incidents(
            rt.engine,
            status=args.get("status"),
            severity=args.get("severity"),
            limit=params.limit(args),
            offset=params.offset_cursor(args),
        )
        return jsonify(page)

    @app.get("/api/incidents/<incident_id>")
    def incident(incident_id: str) -> Any:
        found = queries.get_incident(rt.engine, incident_id)
        if found is None:
            raise InputError(f"no incident {incident_id[:200]!r}", "id", 404)
        from ..route.router import told_of

        found["notifications"] = told_of(rt.extras.get("route"), incident_id)
        return jsonify(found)

    @app.get("/api/events")
    def events() -> Any:
        args = request.args
        filters = {name: args.get(param) for name, param in EVENT_FILTERS}
        page = queries.list_events(
            rt.engine, **filters, since=params.since(args), limit=params.limit(args), before=params.event_cursor(args)
        )
        return jsonify(page)


def create_app(rt: Runtime, host: str | None = None) -> Flask:
    """The embedded runtime's routes; `host` is the address served (its name is a Host answered)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # NOTE: ingest enforces its own limit with a JSON 413.
    from ..ingest import create_ingest_blueprint

    app.register_blueprint(create_ingest_blueprint(rt.ingest))
    http_errors.install(app)
    guard.install(app, rt.settings, host)
    _install_backpressure(app, rt)
    app.wsgi_app = rt.priority.wrap(app.wsgi_app)  # type: ignore[method-assign,assignment]

    _register_api(app, rt)
    _register_queue_api(app, rt)
    from ..dashboard import register as register_dashboard

    register_dashboard(app, rt)
    return app


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    """Serve until SIGTERM or SIGINT; then stop taking requests (those in flight get up to 5 s), route
    what is queued within `drain_seconds` of the signal, and return. What route had not told a receiver
    by then is owed in the state store and sent after the next start."""
    from waitress.server import create_server

    # NOTE: request threads correlating a burst hold the GIL for long stretches; a shorter switch
    # interval lets the route worker send the first page while the burst is still being taken.
    sys.setswitchinterval(0.001)
    rt = build_runtime(settings)
    # NOTE: a storm webhook is tens to thousands of kilobytes; read in 256 KiB instead of waitress's
    # 8 KiB, the event loop passes over it (and the interpreter lock) a few times, not dozens: about
    # 10-25% more 100-alert webhooks a second (measured, alternating runs).
    server = create_server(
        create_app(rt, host), host=host, port=port, threads=8, recv_bytes=256 * 1024, ident="eventmgmt"
    )
    # NOTE: what start-up built (modules, schemas, mappers) lives as long as the process; frozen,
    # the collector's full passes skip it. Unfrozen, a full pass in a storm held the GIL 100-250 ms
    # (measured), stalling the request that triggered it and every other.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    rt.start_ticker()
    line = _started(rt, host, port)
    log_json(log, line.pop("severity"), line.pop("message"), **line)
    stopped = _stop_on_signals()
    try:
        server.run()  # NOTE: waitress ends its loop on the SystemExit the handler raises
    finally:
        server.close()
        _drain(rt, stopped.get("at", time.monotonic()) + rt.settings.drain_seconds)
        rt.stop()


def _started(rt: Runtime, host: str, port: int) -> dict[str, Any]:
    """The start-up line: where to look, who may write, who gets paged."""
    router = rt.extras.get("route")
    url = f"http://{host}:{port}"
    s = rt.settings
    return {
        "severity": "INFO",
        "message": f"eventmgmt serving on {url}: dashboard {url}/, webhooks {url}/ingest/<source>, metrics {url}/metrics",
        "home": str(s.home),
        "state": "PostgreSQL" if s.database_url else "SQLite",
        "writes": (
            "bearer token required"
            if s.ingest_token
            else "no token: webhooks from whoever reaches this port, dashboard actions from same-origin pages "
            "on this machine (set EVENTMGMT_INGEST_TOKEN)"
        ),
        "reads": "bearer token required" if s.read_token else "open",
        "receivers": sorted(router.receivers) if router is not None else [],
        "group_wait_s": router.group_wait.total_seconds() if router is not None else None,
        "max_backlog": s.max_backlog,
    }


def _stop_on_signals() -> dict[str, float]:
    """SIGTERM and SIGINT end `serve` once; a second signal acts as if none was handled."""
    stopped: dict[str, float] = {}

    def handler(signum: int, _frame: Any) -> None:
        stopped["at"] = time.monotonic()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log_json(log, "INFO", f"{signal.Signals(signum).name}: stopping")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopped


def _drain(rt: Runtime, deadline: float) -> None:
    # NOTE: correlation stops after the delivery in hand (what is still queued is durable and drained
    # after the next start), so route's drain sees every incident stored before the exit.
    rt.drainer.close(max(0.0, deadline - time.monotonic()))
    worker = rt.extras.get("route-worker")
    if worker is None:
        return
    started = time.monotonic()
    drained = worker.close(max(0.0, deadline - started))
    message = "route drained" if drained else "route not drained by the deadline: the rest is sent after the next start"
    log_json(log, "INFO", message, seconds=round(time.monotonic() - started, 2))

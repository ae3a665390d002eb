"""The embedded runtime: ingest, enrich, correlate (and route and archive when configured) in one
process, chained by the in-process publisher with the same envelopes Pub/Sub would carry. Ingest
and the collector append to a durable queue; one drainer thread hands it on to enrich and correlate."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from ..clock import StreamClock, utcnow
from ..config import Config, load_config
from ..correlate.stage import CorrelateStage
from ..dashboard.windows import WindowProvider
from ..enrich.stage import EnrichStage
from ..settings import Settings
from ..store import ensure_schema, make_engine
from ..timeutil import iso, parse_ts
from ..transport import InProcessPublisher
from . import queries
from .drain import Drainer
from .durable_queue import DurableQueue, QueuedPublisher
from .memory import trim
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
    drainer: Drainer
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
    publisher.subscribe("events-raw", "enrich", enrich.handle, batch=enrich.handle_batch)
    publisher.subscribe("events-enriched", "correlate", correlate.handle, batch=correlate.handle_batch)
    queue = DurableQueue(settings.queue_path)
    drainer = Drainer(queue, publisher.publish_many)
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
        accept=QueuedPublisher(publisher, queue),
        drainer=drainer,
    )
    for name, attach in OPTIONAL_STAGES:
        ext = attach(rt)
        if ext is not None:
            rt.extras[name] = ext
    # NOTE: started last, so a backlog left by an earlier run meets every stage subscribed.
    drainer.start()
    return rt


def _attach_archive(rt: Runtime) -> Any:
    try:
        from ..archive import Archiver
    except ImportError:
        return None
    archiver = Archiver.from_settings(rt.settings, rt.config)
    rt.publisher.subscribe("events-correlated", "archive", archiver.handle)
    return archiver


def _attach_route(rt: Runtime) -> Any:
    try:
        from ..route import Router
    except ImportError:
        return None
    router = Router.from_settings(rt.settings, rt.config, rt.engine, rt.clock)
    worker = BackgroundSubscriber("route", router.handle, rt.settings.home / "dead-letter" / "route.jsonl")
    rt.publisher.subscribe("events-correlated", "route", worker.handle)
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


def _error(status: int, message: str, field_name: str | None = None) -> Any:
    body: dict[str, Any] = {"error": message}
    if field_name:
        body["field"] = field_name
    return jsonify(body), status


def create_app(rt: Runtime) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # NOTE: ingest enforces its own limit with a JSON 413.
    from ..ingest import IngestService, create_ingest_blueprint

    # NOTE: receipt is stamped with the server's own clock; the stream clock only follows events.
    service = IngestService.from_settings(rt.settings, rt.config, rt.accept, utcnow)
    app.register_blueprint(create_ingest_blueprint(service))
    rt.extras["ingest"] = service

    @app.before_request
    def backpressure() -> Any:
        """Past the backlog bound, refuse a delivery before reading it; the sender retries."""
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

    @app.errorhandler(DBAPIError)
    def store_down(err: DBAPIError) -> Any:
        log.error(json.dumps({"severity": "ERROR", "message": "state store unavailable", "error": str(err.orig)[:300]}))
        resp = jsonify({"error": "the state store is unavailable; retry shortly", "retryable": True})
        resp.status_code = 503
        resp.headers["Retry-After"] = "5"
        return resp

    @app.get("/healthz")
    def healthz() -> Any:
        # NOTE: `clock` is correlation's stream clock: far behind the wall clock during a backfill,
        # never more than a minute ahead of it.
        queue = rt.queue.stats()
        return jsonify({"status": "ok", "clock": iso(rt.clock()), "backlog": queue["backlog_events"], "queue": queue})

    @app.get("/api/queue")
    def queue_state() -> Any:
        """The durable queue: backlog and sequence numbers. `?wait=S` first waits up to S seconds
        (at most 60) until everything accepted before this request has been correlated."""
        if request.args.get("wait"):
            try:
                wait = min(60.0, max(0.0, float(request.args["wait"])))
            except ValueError:
                return _error(400, "wait must be a number of seconds", "wait")
            rt.queue.wait_drained(wait)
        return jsonify({**rt.queue.stats(), "max_backlog": rt.settings.max_backlog})

    @app.get("/api/queue/dead-letters")
    def queue_dead_letters() -> Any:
        return jsonify({"dead_letters": rt.queue.dead_letters()})

    @app.get("/api/outbox")
    def outbox() -> Any:
        """Notifications waiting for a receiver that is down (the route outbox)."""
        router = rt.extras.get("route")
        if router is None:
            return jsonify({"receivers_down": [], "pending": []})
        return jsonify({"receivers_down": router.receivers_down(), "pending": router.outbox()})

    @app.get("/api/incidents")
    def incidents() -> Any:
        try:
            limit = int(request.args.get("limit", 100))
        except ValueError:
            return _error(400, "limit must be an integer", "limit")
        return jsonify(
            queries.list_incidents(
                rt.engine, status=request.args.get("status"), limit=limit, before=request.args.get("cursor")
            )
        )

    @app.get("/api/incidents/<incident_id>")
    def incident(incident_id: str) -> Any:
        found = queries.get_incident(rt.engine, incident_id)
        if found is None:
            return _error(404, f"no incident {incident_id!r}", "id")
        return jsonify(found)

    @app.get("/api/events")
    def events() -> Any:
        args = request.args
        since = None
        if args.get("since"):
            try:
                since = parse_ts(args["since"])
            except ValueError:
                return _error(400, "since must be an RFC 3339 timestamp", "since")
        try:
            limit = int(args.get("limit", 100))
        except ValueError:
            return _error(400, "limit must be an integer", "limit")
        return jsonify(
            queries.list_events(
                rt.engine,
                kind=args.get("kind"),
                cls=args.get("class"),
                q=args.get("q"),
                pod=args.get("pod"),
                node=args.get("node"),
                model=args.get("model"),
                incident=args.get("incident"),
                since=since,
                limit=limit,
                before=args.get("cursor"),
            )
        )

    from ..dashboard import register as register_dashboard

    register_dashboard(app, rt)
    for register in EXTRA_ROUTES:
        register(app, rt)
    return app


# Other packages (dashboard, operator API) add their routes here: each is called with (app, runtime).
EXTRA_ROUTES: list[Callable[[Flask, Runtime], None]] = []


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    from waitress import serve as waitress_serve

    # NOTE: request threads correlating a burst hold the GIL for long stretches; a shorter switch
    # interval lets the route worker send the first page while the burst is still being taken.
    sys.setswitchinterval(0.001)
    rt = build_runtime(settings)
    app = create_app(rt)
    rt.start_ticker()
    log.info(
        json.dumps(
            {"severity": "INFO", "message": f"eventmgmt serving on http://{host}:{port}", "home": str(rt.settings.home)}
        )
    )
    try:
        waitress_serve(app, host=host, port=port, threads=8, ident="eventmgmt")
    finally:
        rt.stop()

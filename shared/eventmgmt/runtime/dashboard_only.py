"""`eventmgmt serve --dashboard-only`: the dashboard, its write API (ack, resolve, maintenance) and
the read API against the state store of a deployment whose pipeline runs elsewhere (the functions on
Cloud Run, the emulator stack). No ingest route, durable queue, drain, ticker, route worker, archive,
collector or retention: nothing here correlates, pages or stores events. An acknowledgement or a
resolution goes through correlation's transaction (CorrelateStage.set_status) and is published to
events-correlated on the deployment's transport (EVENTMGMT_TRANSPORT=pubsub), where the route and
archive functions see it as they see any other correlated message."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from sqlalchemy import Engine

from ..clock import utcnow
from ..config import Config, load_config
from ..correlate.stage import CorrelateStage
from ..dashboard.windows import WindowProvider
from ..logjson import log_json
from ..settings import Settings
from ..store import ensure_schema, make_engine
from ..timeutil import iso
from ..transport import InProcessPublisher, Publisher
from . import api, guard, http_errors

log = logging.getLogger("eventmgmt")


class _NoIngest:
    """The dashboard's noise page reads ingest's filter counters; this process ingests nothing."""

    def stats(self) -> dict[str, dict[str, int]]:
        return {"filtered": {}, "accepted": {}, "rejected_records": {}, "rejected": {}}


@dataclass
class DashboardRuntime:
    """What the dashboard's views and the read API use of a Runtime; nothing that runs in the background."""

    settings: Settings
    config: Config
    engine: Engine
    publisher: Publisher
    correlate: CorrelateStage
    clock: Callable[[], datetime]
    windows: WindowProvider
    ingest: _NoIngest = field(default_factory=_NoIngest)
    # NOTE: route runs elsewhere: no outbox or receivers here (the views and /api/outbox take None).
    router: None = None
    # NOTE: the route function's ledger is in the deployment's database (Cloud SQL, the emulator's):
    # who was told is read there. Without EVENTMGMT_DATABASE_URL there is no such ledger to read.
    ledger: Engine | None = None

    def stop(self) -> None:
        self.engine.dispose()


def publisher_of(settings: Settings) -> Publisher:
    """Pub/Sub when EVENTMGMT_TRANSPORT=pubsub (the route and archive functions hear acks there);
    otherwise an in-process publisher nobody listens to: an ack changes the store and nothing else."""
    if settings.transport == "pubsub":
        from ..wiring import publisher_for

        return publisher_for(settings)
    return InProcessPublisher(project=settings.project)


def build_dashboard_runtime(
    settings: Settings | None = None,
    config: Config | None = None,
    publisher: Publisher | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DashboardRuntime:
    settings = settings or Settings()
    config = config or load_config(settings.config_path)
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    from ..route import ledger as _ledger  # noqa: F401  (its tables, so who was told can be read before route wrote)

    ensure_schema(engine)
    publisher = publisher if publisher is not None else publisher_of(settings)
    # NOTE: the wall clock: an operator acts now, whatever the last event's time.
    clock = clock or utcnow
    correlate = CorrelateStage(config, publisher, clock, engine=engine)
    rt = DashboardRuntime(settings, config, engine, publisher, correlate, clock, WindowProvider(engine))
    rt.ledger = engine if settings.database_url else None
    return rt


def create_dashboard_app(rt: DashboardRuntime, host: str | None = None) -> Flask:
    """The board, incident, events, noise and maintenance pages, their write API, and the read API."""
    app = Flask(__name__)
    http_errors.install(app)
    guard.install(app, rt.settings, host)
    api.register_reads(app, rt)
    _register_health(app, rt)
    from ..dashboard import register as register_dashboard

    register_dashboard(app, rt)
    return app


def _register_health(app: Flask, rt: DashboardRuntime) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok", "mode": "dashboard-only", "clock": iso(rt.clock())})

    @app.get("/readyz")
    def readyz() -> Any:
        """503 while the state store does not answer: without it there is nothing to show."""
        from .. import __version__

        problems = api.store_unreachable(rt)
        body = {"ready": not problems, "problems": problems, "mode": "dashboard-only", "version": __version__}
        return jsonify(body), (503 if problems else 200)

    @app.get("/metrics")
    def metrics() -> Any:
        """The incidents gauge and the build; ingest, queue and route figures are the functions'."""
        from .metrics import CONTENT_TYPE

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_DashboardCollector(rt.engine))
        return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE}


class _DashboardCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        from .metrics import build_info, incidents_gauge

        yield build_info()
        yield from incidents_gauge(self.engine)


def serve_dashboard(host: str, port: int, settings: Settings | None = None) -> None:
    """Serve until SIGTERM or SIGINT (requests in flight get up to 5 s); nothing to drain after."""
    from waitress.server import create_server

    from .serving import _stop_on_signals

    rt = build_dashboard_runtime(settings)
    server = create_server(create_dashboard_app(rt, host), host=host, port=port, threads=8, ident="eventmgmt")
    line = started_dashboard(rt, host, port)
    log_json(log, line.pop("severity"), line.pop("message"), **line)
    _stop_on_signals()
    try:
        server.run()  # NOTE: waitress ends its loop on the SystemExit the handler raises
    finally:
        server.close()
        rt.stop()


def started_dashboard(rt: DashboardRuntime, host: str, port: int) -> dict[str, Any]:
    url = f"http://{host}:{port}"
    s = rt.settings
    pubsub = s.transport == "pubsub"
    return {
        "severity": "INFO" if pubsub else "WARNING",
        "message": f"eventmgmt dashboard (dashboard-only) on {url}: dashboard {url}/, API {url}/api/incidents",
        "state": "PostgreSQL" if s.database_url else "SQLite",
        "acks": (
            f"published to events-correlated on Pub/Sub (project {s.project})"
            if pubsub
            else "stored only: no route hears them (set EVENTMGMT_TRANSPORT=pubsub)"
        ),
        "writes": "bearer token required" if s.ingest_token else "no token: same-origin pages on this machine",
        "reads": "bearer token required" if s.read_token else "open",
    }

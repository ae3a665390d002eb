"""The embedded runtime's read API: health and readiness, Prometheus metrics, incidents, events, the
route outbox and the durable queue. Writes are ingest's (ingest/http.py) and the dashboard's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify, request

from ..errors import InputError
from ..store import queries
from ..timeutil import iso
from . import params

if TYPE_CHECKING:
    from .app import Runtime
    from .dashboard_only import DashboardRuntime

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


def register(app: Flask, rt: Runtime) -> None:
    _register_health(app, rt)
    register_reads(app, rt)
    _register_queue(app, rt)


def _register_health(app: Flask, rt: Runtime) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        # NOTE: `clock` is correlation's stream clock: far behind the wall clock during a backfill,
        # never more than a minute ahead of it.
        queue = rt.queue.stats()
        return jsonify({"status": "ok", "clock": iso(rt.clock()), "backlog": queue["backlog_events"], "queue": queue})

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness (a Kubernetes readiness probe, a load balancer): 503 naming what keeps deliveries
        from being taken (the backlog at its bound, correlation gone for good), so traffic goes
        elsewhere meanwhile. An unreachable state store is reported as `degraded` with 200: accepted
        deliveries wait in the local durable queue and are correlated when it answers again, which
        is better than taking the only replica out of its Service; so is a correlating process
        being started (at start, or again after it died)."""
        from .. import __version__

        problems, degraded = not_ready(rt), store_unreachable(rt)
        if rt.drainer.alive and not rt.drainer.draining:
            degraded.append("correlating process starting; deliveries are queued meanwhile")
        body = {
            "ready": not problems,
            "problems": problems,
            "degraded": degraded,
            "version": __version__,
            "backlog": rt.queue.backlog,
        }
        return jsonify(body), (503 if problems else 200)

    @app.get("/metrics")
    def metrics() -> Any:
        """Prometheus text exposition (runtime/metrics.py)."""
        from .metrics import CONTENT_TYPE, exposition

        return exposition(rt), 200, {"Content-Type": CONTENT_TYPE}


def not_ready(rt: Runtime) -> list[str]:
    """What keeps the runtime from taking deliveries and correlating them, if anything."""
    problems = []
    if not rt.drainer.alive:
        problems.append("correlation not running")
    bound = rt.settings.max_backlog
    if bound > 0 and rt.queue.backlog >= bound:
        problems.append(f"backlog {rt.queue.backlog} at its bound {bound}")
    return problems


def store_unreachable(rt: Runtime | DashboardRuntime) -> list[str]:
    from sqlalchemy import text

    try:
        with rt.engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as err:  # NOTE: any failure to reach the store is reported
        return [f"state store: {type(err).__name__}; accepted deliveries wait in the queue"]
    return []


def register_reads(app: Flask, rt: Runtime | DashboardRuntime) -> None:
    """The outbox, incidents and events (serve's and the dashboard-only mode's)."""

    @app.get("/api/outbox")
    def outbox() -> Any:
        """Notifications waiting for a receiver that is down (the route outbox)."""
        n = params.limit(request.args)
        if rt.router is None:
            return jsonify({"receivers_down": [], "pending": []})
        return jsonify({"receivers_down": rt.router.receivers_down(), "pending": rt.router.outbox()[:n]})

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

        found["notifications"] = told_of(rt.ledger, incident_id)
        return jsonify(found)

    @app.get("/api/events")
    def events() -> Any:
        args = request.args
        filters = {name: args.get(param) for name, param in EVENT_FILTERS}
        page = queries.list_events(
            rt.engine, **filters, since=params.since(args), limit=params.limit(args), before=params.event_cursor(args)
        )
        return jsonify(page)


def _register_queue(app: Flask, rt: Runtime) -> None:
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
        return jsonify({"dead_letters": rt.queue.dead_letters(params.limit(request.args))})

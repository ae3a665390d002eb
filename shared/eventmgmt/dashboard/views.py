"""The dashboard: server-rendered pages for the on-call engineer, and the write API behind its buttons."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, abort, jsonify, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import auth
from ..errors import InputError
from ..incident import IncidentStatus
from ..runtime import params, queries
from ..store.tables import EventRow, IncidentRow
from ..timeutil import iso
from . import maintenance as maintenance_api
from . import svg
from .actions import set_status
from .maintenance import window_json
from .windows import WindowProvider, add_window, end_window, list_rows, when_json

REFRESH_SECONDS = 15


def _age(opened: str, now: datetime) -> str:
    try:
        delta = now - datetime.fromisoformat(opened.replace("Z", "+00:00"))
    except ValueError:
        return ""
    mins = int(delta.total_seconds() // 60)
    return (
        f"{mins // 1440} d"
        if mins >= 1440
        else f"{mins // 60} h {mins % 60} min"
        if mins >= 60
        else f"{max(mins, 0)} min"
    )


def clip(value: Any, n: int = 200) -> str:
    """At most `n` characters of `value` for display, with a marker saying how many were cut: a pod
    name of a megabyte is stored as sent but never shown whole."""
    text = "" if value is None else str(value)
    return text if len(text) <= n else f"{text[:n]}… (+{len(text) - n:,} characters)"


def create_dashboard(rt: Any) -> Blueprint:
    bp = Blueprint(
        "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/static/dashboard"
    )
    bp.add_app_template_filter(clip, "clip")

    def page(template: str, partial: str | None = None, **ctx: Any) -> Any:
        refresh = ctx.pop("refresh", None)
        if partial and request.headers.get("X-Partial"):
            return render_template(partial, refresh=refresh, **ctx)
        return render_template(template, refresh=refresh, **ctx)

    # --- authorisation of writes -------------------------------------------------------------------
    def authorize() -> str:
        """The caller of a write: "token" or "loopback" (auth.authorize); 401 otherwise."""
        return auth.authorize(dict(request.headers), request.remote_addr, rt.settings.ingest_token)

    def stated_name() -> str:
        """The name an operator gives for an acknowledgement (shown on the incident)."""
        body = request.get_json(silent=True)
        return str((body.get("by") if isinstance(body, dict) else None) or "dashboard")[:120]

    # --- pages ---------------------------------------------------------------------------------
    @bp.get("/")
    def board() -> Any:
        offset = params.offset_cursor(request.args)
        data = queries.list_incidents(rt.engine, limit=50, offset=offset)
        now = rt.clock()
        incidents = [dict(i, age=_age(i["opened_at"], now)) for i in data["incidents"]]
        with Session(rt.engine) as s:
            by_status = s.execute(
                select(IncidentRow.status, func.count())
                .where(IncidentRow.status != "merged")
                .group_by(IncidentRow.status)
            ).all()
            rows = {str(status): int(n) for status, n in by_status}
            critical = s.scalar(
                select(func.count())
                .select_from(IncidentRow)
                .where(IncidentRow.status == "open", IncidentRow.severity == "critical")
            )
        counts = {
            "open": rows.get("open", 0),
            "acknowledged": rows.get("acknowledged", 0),
            "resolved": rows.get("resolved", 0),
            "critical": critical or 0,
        }
        prev = max(0, offset - 50) if offset else None
        router = rt.extras.get("route")
        return page(
            "board.html",
            "board_body.html",
            nav="board",
            incidents=incidents,
            counts=counts,
            receivers_down=router.receivers_down() if router is not None else [],
            next=data["next"],
            prev=prev,
            total=data["total"],
            refresh=REFRESH_SECONDS,
        )

    @bp.get("/incidents/<incident_id>")
    def incident(incident_id: str) -> Any:
        found = queries.get_incident(rt.engine, incident_id)
        if found is None:
            abort(404)
        events = found.pop("events")
        counts: dict[str, int] = {}
        for e in events:
            counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        steps: list[list[str]] = next(
            (c.steps for c in rt.config.chains if c.name == found.get("chain")), [[k] for k in counts]
        )
        chain_svg = svg.chain_diagram(steps, counts, found["root_kind"])
        return page("incident.html", nav="board", inc=found, events=events, chain_svg=chain_svg)

    @bp.get("/noise")
    def noise() -> Any:
        hours = params.hours(request.args)
        with Session(rt.engine) as s:
            latest = s.scalar(select(func.max(EventRow.occurred_at))) or rt.clock()
            if latest.tzinfo is None:
                latest = latest.replace(tzinfo=rt.clock().tzinfo)
            since = latest - timedelta(hours=hours)
            bucket = 10 if hours <= 24 else 60
            ev_rows = s.execute(select(EventRow.occurred_at, EventRow.cls).where(EventRow.occurred_at >= since)).all()
            inc_rows = s.scalars(
                select(IncidentRow.opened_at).where(IncidentRow.opened_at >= since, IncidentRow.status != "merged")
            ).all()
            noisy = s.execute(
                select(EventRow.source, EventRow.kind, func.count().label("n"))
                .where(EventRow.occurred_at >= since)
                .group_by(EventRow.source, EventRow.kind)
                .order_by(func.count().desc())
                .limit(12)
            ).all()
        series: dict[str, dict[str, int]] = {}

        def key(t: datetime) -> str:
            t = t.replace(tzinfo=None)
            return t.replace(
                minute=(t.minute // bucket) * bucket if bucket < 60 else 0, second=0, microsecond=0
            ).strftime("%H:%M")

        for t, cls in ev_rows:
            b = series.setdefault(key(t), {})
            b["events"] = b.get("events", 0) + 1
            if cls == "alert":
                b["alerts"] = b.get("alerts", 0) + 1
        for t in inc_rows:
            b = series.setdefault(key(t), {})
            b["incidents"] = b.get("incidents", 0) + 1
        timeline = svg.bars(
            sorted(series.items()), [("events", "#a0aec0"), ("alerts", "#b3261e"), ("incidents", "#2b6cb0")]
        )
        ingest = rt.extras.get("ingest")
        filtered = ingest.stats()["filtered"] if ingest is not None else {}
        totals = {
            "events": len(ev_rows),
            "incidents": len(inc_rows),
            "filtered": sum(filtered.values()),
            "ratio": round(len(ev_rows) / max(1, len(inc_rows)), 1),
        }
        return page(
            "noise.html",
            nav="noise",
            hours=hours,
            until=latest.isoformat()[:16],
            bucket=bucket,
            totals=totals,
            timeline_svg=timeline,
            filtered_svg=svg.hbars(sorted(filtered.items(), key=lambda x: -x[1]), "#718096"),
            noisy_svg=svg.hbars([(f"{src} · {kind}", n) for src, kind, n in noisy]),
        )

    @bp.get("/events")
    def events() -> Any:
        args = request.args
        data = queries.list_events(
            rt.engine,
            kind=args.get("kind") or None,
            cls=args.get("class") or None,
            q=args.get("q") or None,
            pod=args.get("pod") or None,
            node=args.get("node") or None,
            model=args.get("model") or None,
            limit=100,
            before=params.event_cursor(args),
        )
        nxt = None
        if data["next"]:
            from urllib.parse import urlencode

            nxt = urlencode({**{k: v for k, v in args.items() if k != "cursor"}, "cursor": data["next"]})
        return page("events.html", nav="events", events=data["events"], args=args, next=nxt)

    @bp.get("/maintenance")
    def maintenance() -> Any:
        configured = [
            {
                "name": w.name,
                "start": iso(w.start),
                "end": iso(w.end),
                "every_seconds": w.every.total_seconds() if w.every else None,
                "match": when_json(w.when),
                "match_all": w.match_all,
                "origin": "configuration",
                "created_by": "",
            }
            for w in rt.config.maintenance
        ]
        rows = [*configured, *({**r, "origin": "dashboard"} for r in list_rows(rt.engine))]
        for r in rows:
            r["every"] = str(timedelta(seconds=r["every_seconds"])) if r["every_seconds"] else ""
        limit = rt.config.maintenance_limits.max_duration
        return page("maintenance.html", nav="maintenance", windows=rows, max_duration=limit)

    # --- writes --------------------------------------------------------------------------------
    @bp.post("/api/incidents/<incident_id>/ack")
    def ack(incident_id: str) -> Any:
        authorize()
        by = stated_name()
        msg = set_status(rt.engine, rt.config, rt.publisher, incident_id, IncidentStatus.acknowledged, by, rt.clock())
        return jsonify(msg.incident.model_dump(mode="json") if msg.incident else {})

    @bp.post("/api/incidents/<incident_id>/resolve")
    def resolve(incident_id: str) -> Any:
        authorize()
        by = stated_name()
        msg = set_status(rt.engine, rt.config, rt.publisher, incident_id, IncidentStatus.resolved, by, rt.clock())
        return jsonify(msg.incident.model_dump(mode="json") if msg.incident else {})

    @bp.get("/api/maintenance")
    def list_maintenance() -> Any:
        return jsonify([w.model_dump(mode="json") for w in [*rt.config.maintenance, *windows()]])

    @bp.post("/api/maintenance")
    def add_maintenance() -> Any:
        by = authorize()
        window, replace = maintenance_api.parse_window(request.get_json(silent=True), rt.config.maintenance_limits)
        if any(w.name == window.name for w in rt.config.maintenance):
            raise InputError(f"{window.name!r} is a configured window; change it in the configuration", "name", 409)
        before = add_window(rt.engine, window, by, replace=replace)
        windows.invalidate()
        action = "replaced" if before else "added"
        maintenance_api.record(rt.publisher, action, window_json(window, by), by, request.remote_addr, before)
        return jsonify(window.model_dump(mode="json")), 200 if before else 201

    # NOTE: `path:` so that a name with "/" (accepted before names were checked) can still be ended.
    @bp.post("/api/maintenance/<path:name>/end")
    def end_maintenance(name: str) -> Any:
        by = authorize()
        ended = end_window(rt.engine, name)
        if ended is None:
            raise InputError(f"no maintenance window {name[:120]!r} added at run time", field="name", status=404)
        windows.invalidate()
        maintenance_api.record(rt.publisher, "ended", ended, by, request.remote_addr)
        return jsonify({"ended": name})

    windows: WindowProvider = rt.windows
    return bp


def register(app: Flask, rt: Any) -> None:
    app.register_blueprint(create_dashboard(rt))

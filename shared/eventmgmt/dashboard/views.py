"""The dashboard: server-rendered pages for the on-call engineer (the write API behind its buttons is
in api.py). Views are plain functions; the runtime they read is the app's `eventmgmt` extension."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, current_app, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..runtime import params
from ..sources import limits
from ..store import queries
from ..store.db import reader
from ..store.tables import EventRow, IncidentRow
from ..timeutil import iso
from . import api, display, svg
from . import board as board_filters
from .windows import list_rows, when_json

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
    """At most `n` characters of `value` for display, with the marker ingest's bounds use too."""
    return limits.clip("" if value is None else str(value), n)


def link(value: Any) -> str | None:
    """`value` if it is an http(s) URL a page may link to; None otherwise (a sender's
    `javascript:` runbook must never become a live link)."""
    text = "" if value is None else str(value).strip()
    return text if text.lower().startswith(("https://", "http://")) else None


def runtime() -> Any:
    return current_app.extensions["eventmgmt"]


def page(template: str, partial: str | None = None, **ctx: Any) -> Any:
    refresh = ctx.pop("refresh", None)
    if partial and request.headers.get("X-Partial"):
        return render_template(partial, refresh=refresh, **ctx)
    return render_template(template, refresh=refresh, **ctx)


def _board_counts(engine: Any) -> dict[str, int]:
    with Session(reader(engine)) as s:
        by_status = s.execute(
            select(IncidentRow.status, func.count()).where(IncidentRow.status != "merged").group_by(IncidentRow.status)
        ).all()
        rows = {str(status): int(n) for status, n in by_status}
        critical = s.scalar(
            select(func.count())
            .select_from(IncidentRow)
            .where(IncidentRow.status == "open", IncidentRow.severity == "critical")
        )
    return {
        "open": rows.get("open", 0),
        "acknowledged": rows.get("acknowledged", 0),
        "resolved": rows.get("resolved", 0),
        "critical": critical or 0,
    }


def board() -> Any:
    rt = runtime()
    offset = params.offset_cursor(request.args)
    filters = board_filters.parse(request.args)
    data = board_filters.incidents(rt.engine, filters, limit=50, offset=offset)
    now = rt.clock()
    router = rt.router
    known = display.chain_vocabulary(rt.config.chains)
    shown = data["incidents"]
    nodes = display.short_names(n for i in shown for n in (i.get("resources") or {}).get("nodes") or [])
    return page(
        "board.html",
        "board_body.html",
        nav="board",
        incidents=[dict(i, age=_age(i["opened_at"], now), headline=display.headline(i, known)) for i in shown],
        short_nodes=nodes,
        counts=_board_counts(rt.engine),
        receivers_down=router.receivers_down() if router is not None else [],
        next=data["next"],
        prev=max(0, offset - 50) if offset else None,
        total=data["total"],
        refresh=REFRESH_SECONDS,
        # NOTE: kept in the paging links, the switches and the refresh, so a filtered board stays filtered
        f=filters,
        filters=filters.given,
        suggest=board_filters.suggestions(rt.engine, shown),
    )


def incident(incident_id: str) -> Any:
    rt = runtime()
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
    from ..route.router import told_of

    told = told_of(rt.ledger, incident_id)
    return page(
        "incident.html",
        nav="board",
        inc=found,
        events=events,
        chain_svg=chain_svg,
        told=told,
        headline=display.headline(found, display.chain_vocabulary(rt.config.chains)),
        short_nodes=display.short_names((found.get("resources") or {}).get("nodes") or []),
        alerts=display.alert_links(events),
    )


def _noise_rows(engine: Any, since: datetime) -> tuple[list[Any], list[Any], list[Any]]:
    """(event times and classes, incident openings, noisiest source and kind) since `since`."""
    with Session(reader(engine)) as s:
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
    return list(ev_rows), list(inc_rows), list(noisy)


def _timeline(ev_rows: list[Any], inc_rows: list[Any], bucket: int) -> str:
    """Events, alerts and incidents opened per `bucket` minutes, every bucket from the first to the
    last (an empty one is a gap on the axis, not skipped); labelled with the day when they span more
    than one."""
    step = timedelta(minutes=bucket)
    series: dict[datetime, dict[str, int]] = {}

    def key(t: datetime) -> datetime:
        t = t.replace(tzinfo=None)
        return t.replace(minute=t.minute - t.minute % bucket if bucket < 60 else 0, second=0, microsecond=0)

    for t, cls in ev_rows:
        b = series.setdefault(key(t), {})
        b["events"] = b.get("events", 0) + 1
        if cls == "alert":
            b["alerts"] = b.get("alerts", 0) + 1
    for t in inc_rows:
        b = series.setdefault(key(t), {})
        b["incidents"] = b.get("incidents", 0) + 1
    if series:
        first, last = min(series), max(series)
        while first < last:
            series.setdefault(first, {})
            first += step
    label = "%m-%d %H:%M" if series and max(series) - min(series) >= timedelta(days=1) else "%H:%M"
    return svg.bars(
        [(t.strftime(label), v) for t, v in sorted(series.items())],
        [("events", "#a0aec0"), ("alerts", "#b3261e"), ("incidents", "#2b6cb0")],
        width=1420,  # NOTE: the panel's width at 1480 px (main's widest): never stretched wider than drawn
    )


def noise() -> Any:
    rt = runtime()
    hours = params.hours(request.args)
    with Session(reader(rt.engine)) as s:
        latest = s.scalar(select(func.max(EventRow.occurred_at))) or rt.clock()
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=rt.clock().tzinfo)
    bucket = 10 if hours <= 24 else 60
    ev_rows, inc_rows, noisy = _noise_rows(rt.engine, latest - timedelta(hours=hours))
    filtered = rt.ingest.stats()["filtered"]
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
        timeline_svg=_timeline(ev_rows, inc_rows, bucket),
        filtered_svg=svg.hbars(sorted(filtered.items(), key=lambda x: -x[1]), "#718096"),
        noisy_svg=svg.hbars([(f"{src} · {kind}", n) for src, kind, n in noisy]),
    )


def events() -> Any:
    args = request.args
    data = queries.list_events(
        runtime().engine,
        kind=args.get("kind") or None,
        cls=args.get("class") or None,
        q=args.get("q") or None,
        pod=args.get("pod") or None,
        node=args.get("node") or None,
        model=args.get("model") or None,
        since=params.since(args),
        limit=params.limit(args),
        before=params.event_cursor(args),
    )
    nxt = None
    if data["next"]:
        nxt = urlencode({**{k: v for k, v in args.items() if k != "cursor"}, "cursor": data["next"]})
    return page("events.html", nav="events", events=data["events"], args=args, next=nxt)


def maintenance() -> Any:
    rt = runtime()
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
        r["every"] = _duration(r["every_seconds"]) if r["every_seconds"] else ""
    longest = _duration(rt.config.maintenance_limits.max_duration.total_seconds())
    return page("maintenance.html", nav="maintenance", windows=rows, max_duration=longest)


def _duration(seconds: float) -> str:
    """7 days, 36 hours, 90 minutes: the largest unit that says it whole (timedelta says "7 days, 0:00:00")."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


# (rule, view, methods): the endpoint of each is the view's name.
PAGES: list[tuple[str, Callable[..., Any], list[str]]] = [
    ("/", board, ["GET"]),
    ("/incidents/<incident_id>", incident, ["GET"]),
    ("/noise", noise, ["GET"]),
    ("/events", events, ["GET"]),
    ("/maintenance", maintenance, ["GET"]),
]


def create_dashboard(rt: Any) -> Blueprint:
    bp = Blueprint(
        "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/static/dashboard"
    )
    bp.add_app_template_filter(clip, "clip")
    bp.add_app_template_filter(link, "link")
    bp.add_app_template_filter(display.clip_words, "words")
    bp.add_app_template_filter(display.kind_words, "kind_words")
    bp.add_app_template_filter(display.kind_title, "kind_title")
    bp.add_app_template_filter(display.told_words, "told_words")
    bp.add_app_template_filter(display.match_pairs, "match_pairs")
    bp.record_once(lambda state: state.app.extensions.setdefault("eventmgmt", rt))
    for rule, view, methods in [*PAGES, *api.ROUTES]:
        bp.add_url_rule(rule, view.__name__, view, methods=methods)
    return bp


def register(app: Flask, rt: Any) -> None:
    app.register_blueprint(create_dashboard(rt))

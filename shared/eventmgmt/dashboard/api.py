"""The write API behind the dashboard's buttons (and `eventmgmt incidents|maintenance`): acknowledge
and resolve incidents, add and end maintenance windows. The guard in runtime/guard.py has already
refused what a browser could be tricked into sending; each write here needs the token or loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify, request

from .. import auth
from ..errors import InputError
from ..incident import IncidentStatus
from . import maintenance as maintenance_api
from .windows import add_window, end_window


def runtime() -> Any:
    return current_app.extensions["eventmgmt"]


def authorize() -> str:
    """The caller of a write: "token" or "loopback" (auth.authorize); 401 otherwise."""
    return auth.authorize(dict(request.headers), request.remote_addr, runtime().settings.ingest_token)


def stated_name() -> str:
    """The name an operator gives for an acknowledgement (shown on the incident)."""
    body = request.get_json(silent=True)
    return str((body.get("by") if isinstance(body, dict) else None) or "dashboard")[:120]


def _set_status(incident_id: str, status: IncidentStatus) -> Any:
    authorize()
    rt = runtime()
    msg = rt.correlate.set_status(incident_id, status, stated_name(), rt.clock())
    return jsonify(msg.incident.model_dump(mode="json") if msg.incident else {})


def ack(incident_id: str) -> Any:
    return _set_status(incident_id, IncidentStatus.acknowledged)


def resolve(incident_id: str) -> Any:
    return _set_status(incident_id, IncidentStatus.resolved)


def list_maintenance() -> Any:
    rt = runtime()
    return jsonify([w.model_dump(mode="json") for w in [*rt.config.maintenance, *rt.windows()]])


def add_maintenance() -> Any:
    by = authorize()
    rt = runtime()
    window, replace = maintenance_api.parse_window(request.get_json(silent=True), rt.config.maintenance_limits)
    if any(w.name == window.name for w in rt.config.maintenance):
        raise InputError(f"{window.name!r} is a configured window; change it in the configuration", "name", 409)
    before = add_window(rt.engine, window, by, replace=replace)
    rt.windows.invalidate()
    action = "replaced" if before else "added"
    maintenance_api.record(
        rt.publisher, action, maintenance_api.window_json(window, by), by, request.remote_addr, before
    )
    return jsonify(window.model_dump(mode="json")), 200 if before else 201


def end_maintenance(name: str) -> Any:
    by = authorize()
    rt = runtime()
    ended = end_window(rt.engine, name)
    if ended is None:
        raise InputError(f"no maintenance window {name[:120]!r} added at run time", field="name", status=404)
    rt.windows.invalidate()
    maintenance_api.record(rt.publisher, "ended", ended, by, request.remote_addr)
    return jsonify({"ended": name})


# (rule, view, methods): the endpoint of each is the view's name.
ROUTES: list[tuple[str, Callable[..., Any], list[str]]] = [
    ("/api/incidents/<incident_id>/ack", ack, ["POST"]),
    ("/api/incidents/<incident_id>/resolve", resolve, ["POST"]),
    ("/api/maintenance", list_maintenance, ["GET"]),
    ("/api/maintenance", add_maintenance, ["POST"]),
    # NOTE: `path:` so that a name with "/" (accepted before names were checked) can still be ended.
    ("/api/maintenance/<path:name>/end", end_maintenance, ["POST"]),
]

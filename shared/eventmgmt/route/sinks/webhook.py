"""Generic JSON webhook and the change-management webhook: the snapshot itself, with the state sent."""

from __future__ import annotations

from ...incident import IncidentSnapshot
from . import Request
from .common import details


def request(snap: IncidentSnapshot, state: str, url: str, dashboard: str) -> Request:
    body = {"state": state, "incident": snap.model_dump(mode="json"), "summary": details(snap, dashboard)}
    return Request(url, body, {"Content-Type": "application/json"})

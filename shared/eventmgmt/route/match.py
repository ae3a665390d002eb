"""Pure routing: which receivers an incident snapshot goes to. No I/O."""

from __future__ import annotations

from ..incident import IncidentSnapshot
from .config import Route, RoutingConfig


def _values(snap: IncidentSnapshot) -> dict[str, list[str]]:
    res = snap.resources
    return {
        "severity": [snap.severity.value],
        "kind": [snap.kind],
        "root_kind": [snap.root_kind],
        "namespace": res.get("namespaces", []),
        "model": res.get("models", []),
        "team": res.get("teams", []),
    }


def route_matches(route: Route, snap: IncidentSnapshot) -> bool:
    values = _values(snap)
    for name in ("severity", "kind", "root_kind", "namespace", "model", "team"):
        pat = getattr(route.match, name)
        if pat is not None and not any(pat.fullmatch(v) for v in values[name]):
            return False
    return route.min_severity is None or snap.severity.rank >= route.min_severity.rank


def receivers_for(cfg: RoutingConfig, snap: IncidentSnapshot) -> list[str]:
    """Receivers in route order; the default receiver when no route matches."""
    out: list[str] = []
    for route in cfg.routes:
        if route_matches(route, snap):
            if route.receiver not in out:
                out.append(route.receiver)
            if not route.continue_:
                break
    if not out and cfg.default_receiver:
        out.append(cfg.default_receiver)
    return out

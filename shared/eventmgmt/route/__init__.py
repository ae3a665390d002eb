"""Route: incidents to incident management, changes to change records, info to the log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .router import Router

__all__ = ["Router"]


def __getattr__(name: str) -> Any:
    # NOTE: lazy, so replay can use the pure decisions (decide.py) without loading HTTP and SQL.
    if name == "Router":
        from .router import Router

        return Router
    raise AttributeError(name)

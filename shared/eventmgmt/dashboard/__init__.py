"""The dashboard: what is broken, why, and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .views import register


def __getattr__(name: str) -> Any:
    # NOTE: the views (Flask, jinja) are imported when asked for: the correlating process reads
    # maintenance windows (dashboard/windows.py) but serves no pages.
    if name == "register":
        from .views import register

        return register
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["register"]

"""Route: incidents to incident management, changes to change records, info to the log."""

from .router import Router

__all__ = ["Router"]

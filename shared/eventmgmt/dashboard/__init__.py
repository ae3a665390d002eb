"""The dashboard: what is broken, why, and what to do."""

from .views import register

__all__ = ["register"]

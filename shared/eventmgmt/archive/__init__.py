"""Archive: correlated events and incident changes in fsspec storage, with retention tiers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .archiver import Archiver
    from .policy import RetentionConfig, retention_config
    from .retention import age_out_state, run_retention

# NOTE: loaded on first use, so `eventmgmt --help` (which registers the retention command) does not
# import SQLAlchemy, fsspec and pydantic models it does not need.
_WHERE = {
    "Archiver": ".archiver",
    "RetentionConfig": ".policy",
    "retention_config": ".policy",
    "age_out_state": ".retention",
    "run_retention": ".retention",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Archiver", "RetentionConfig", "age_out_state", "retention_config", "run_retention"]

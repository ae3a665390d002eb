"""Archive: correlated events and incident changes in fsspec storage, with retention tiers."""

from .archiver import Archiver
from .policy import RetentionConfig, retention_config
from .retention import age_out_state, run_retention

__all__ = ["Archiver", "RetentionConfig", "age_out_state", "retention_config", "run_retention"]

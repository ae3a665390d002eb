"""Builds what a deployed function needs from settings: configuration, publisher, store."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from .config import Config, load_config
from .settings import Settings
from .store import ensure_schema, make_engine
from .transport import Publisher


def publisher_for(settings: Settings) -> Publisher:
    """The Pub/Sub publisher when EVENTMGMT_TRANSPORT=pubsub; functions have no in-process peers."""
    if settings.transport == "pubsub":
        from .transport.pubsub import PubSubPublisher  # type: ignore[import-not-found,unused-ignore]

        return PubSubPublisher(settings.project)  # type: ignore[no-any-return,unused-ignore]
    raise RuntimeError(
        f"EVENTMGMT_TRANSPORT={settings.transport!r}: a deployed function publishes to Pub/Sub; "
        "set EVENTMGMT_TRANSPORT=pubsub (the in-process transport exists only inside `eventmgmt serve`)"
    )


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def config_for(settings: Settings) -> Config:
    return load_config(settings.config_path)

"""Archive function: events-correlated -> gzip JSON Lines in the archive bucket (Eventarc trigger)."""

from __future__ import annotations

from functools import lru_cache

import functions_framework
from cloudevents.http import CloudEvent

from eventmgmt.archive import Archiver
from eventmgmt.settings import Settings


@lru_cache(maxsize=1)
def archiver() -> Archiver:
    # NOTE: batch=1: each message is stored before the function returns, so Pub/Sub only drops a
    # message once it is in the archive; a storage error raises and the message is redelivered.
    return Archiver(Settings().archive, batch=1)


@functions_framework.cloud_event
def archive(event: CloudEvent) -> None:
    archiver().handle(event)

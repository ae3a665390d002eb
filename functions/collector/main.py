"""Collector (Cloud Scheduler -> HTTP): Triton and GPU metrics via Prometheus, state via the Kubernetes
API; publishes only state changes to events-raw."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import functions_framework
from flask import Request

from eventmgmt.clock import utcnow
from eventmgmt.collector import Collector
from eventmgmt.settings import Settings
from eventmgmt.wiring import config_for, publisher_for


@lru_cache(maxsize=1)
def collector() -> Collector:
    settings = Settings()
    return Collector.from_settings(settings, config_for(settings), publisher_for(settings), utcnow)


@functions_framework.http
def collect(request: Request) -> Any:
    # NOTE: an unreachable Prometheus or cluster is reported in the body and as a collector_error
    # event, with 200: the scheduler must not retry in a loop. Only a publish failure raises (500).
    result = collector().run()
    return {"events": len(result.events), "observed": result.observed, "errors": result.errors}, 200

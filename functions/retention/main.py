"""Retention job (Cloud Scheduler -> HTTP): move and delete archive partitions, age out state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import functions_framework
from flask import Request

from eventmgmt.archive import age_out_state, retention_config, run_retention
from eventmgmt.settings import Settings
from eventmgmt.timeutil import parse_ts
from eventmgmt.wiring import config_for, engine_for


@functions_framework.http
def retention(request: Request) -> Any:
    settings = Settings()
    policy = retention_config(config_for(settings).section("retention"))
    try:
        now = parse_ts(request.args.get("now")) if request.args.get("now") else datetime.now(UTC)
    except ValueError:
        return {"error": "now must be an RFC 3339 timestamp", "field": "now"}, 400
    assert now is not None
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    report = run_retention(settings.archive, policy, now, dry_run=dry_run)
    state = age_out_state(engine_for(settings.db_url), policy, now, dry_run=dry_run)
    return {**report.to_json(), "state": state}, 200

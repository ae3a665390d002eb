"""`eventmgmt retention run [--dry-run] [--now T] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("retention", help="archive retention")
    rsub = p.add_subparsers(dest="retention_command", required=True)
    run = rsub.add_parser("run", help="move and delete archive partitions (and age out state) as policy says")
    run.add_argument("--dry-run", action="store_true", help="report what would be done, change nothing")
    run.add_argument("--now", help="evaluate the policy at this time (RFC 3339), default: now")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument("--archive", help="archive root (default: $EVENTMGMT_ARCHIVE_URL or $EVENTMGMT_HOME/archive)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from ..settings import Settings
    from ..store import ensure_schema, make_engine
    from ..timeutil import parse_ts
    from .policy import retention_config
    from .retention import age_out_state, run_retention

    settings = Settings()
    try:
        config = load_config(settings.config_path)
        policy = retention_config(config.section("retention"))
        now = parse_ts(args.now) if args.now else datetime.now(UTC)
    except (ConfigError, ValueError) as err:
        print(f"eventmgmt retention: {err}", file=sys.stderr)
        return 2
    assert now is not None
    report = run_retention(args.archive or settings.archive, policy, now, dry_run=args.dry_run)
    engine = make_engine(settings.db_url)
    ensure_schema(engine)
    state = age_out_state(engine, policy, now, dry_run=args.dry_run)
    out = {**report.to_json(), "state": state}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        verb = "would move" if args.dry_run else "moved"
        print(
            f"{verb} {len(report.moved)} partitions, {'would delete' if args.dry_run else 'deleted'} "
            f"{len(report.deleted)}, held {len(report.held)}, kept {report.kept}; state: {state}"
        )
    return 0

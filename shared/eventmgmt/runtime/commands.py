"""`eventmgmt serve` and `eventmgmt replay`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the embedded runtime (ingest, correlate, API) on one port",
        description="Ingest, correlation, route, archive, the dashboard and the API in one process, until "
        "SIGTERM or SIGINT. State in EVENTMGMT_HOME (default ./.eventmgmt), or EVENTMGMT_DATABASE_URL.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)"
    )
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--dashboard-only",
        action="store_true",
        help="only the dashboard, its ack/resolve/maintenance API and the read API, against "
        "EVENTMGMT_DATABASE_URL: no ingest, correlation, ticker or route (acks go to events-correlated "
        "when EVENTMGMT_TRANSPORT=pubsub)",
    )
    p.set_defaults(func=_serve)

    r = sub.add_parser("replay", help="run captures through the whole chain on a simulated clock")
    r.add_argument("captures", help="capture file, one JSON capture per line")
    r.add_argument("--report", help="write the replay report (JSON) here")
    r.add_argument("--config", help="configuration YAML (defaults to EVENTMGMT_CONFIG, then built-in)")
    r.add_argument("--truth", help="truth file in the scenarios' format: print the scores")
    r.set_defaults(func=_replay)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # NOTE: one line per request to a receiver says nothing the route lines do not (sent / failed).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if getattr(args, "dashboard_only", False):
        from .dashboard_only import serve_dashboard

        serve_dashboard(args.host, args.port)
        return 0
    from .serving import serve

    serve(args.host, args.port)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from ..replay import run_replay
    from ..settings import Settings

    for what, path in (("capture file", args.captures), ("truth file", args.truth)):
        if path and not os.path.isfile(path):
            print(f"eventmgmt replay: {what} {path!r} not found", file=sys.stderr)
            return 2
    try:
        config = load_config(args.config or Settings().config_path)
    except ConfigError as err:
        print(f"eventmgmt replay: {err}", file=sys.stderr)
        return 2
    try:
        result = run_replay(args.captures, config, args.report)
    except (OSError, UnicodeDecodeError) as err:
        print(f"eventmgmt replay: {err}", file=sys.stderr)
        return 2
    head = result.header()
    print(
        json.dumps(
            {
                "events": head["events"],
                "events_by_class": head["events_by_class"],
                "incidents": result.incident_count,
                "pages": result.pages,
                "rejected": len(head["rejected"]),
            }
        )
    )
    for r in head["rejected"][:5]:
        where = f"line {r['line']}" + (f" (capture {r['capture']})" if r.get("capture") else "")
        print(f"eventmgmt replay: {where} skipped: {r['error'][:300]}", file=sys.stderr)
    if len(head["rejected"]) > 5:
        print(f"eventmgmt replay: {len(head['rejected']) - 5} more lines skipped (see the report)", file=sys.stderr)
    if args.truth:
        from ..scoring import score

        with open(args.truth) as f:
            truth = json.load(f)
        for k, v in score(truth, result.report()).items():
            print(f"{k:24} {v}")
    return 0

"""`eventmgmt incidents ...`, `eventmgmt maintenance ...` (over HTTP to a running server) and
`eventmgmt report` (an HTML report of a replay)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


def register(sub: Any) -> None:
    inc = sub.add_parser("incidents", help="list, show, acknowledge and resolve incidents on a running server")
    isub = inc.add_subparsers(dest="incidents_command", required=True)
    for name, help_ in (
        ("list", "list incidents, open first"),
        ("show", "one incident with its events"),
        ("ack", "acknowledge"),
        ("resolve", "resolve"),
    ):
        p = isub.add_parser(name, help=help_)
        _common(p)
        if name != "list":
            p.add_argument("id")
        if name == "list":
            p.add_argument("--status", choices=["open", "acknowledged", "resolved"])
            p.add_argument("--limit", type=int, default=50)
        if name == "ack":
            p.add_argument("--by", default=os.environ.get("USER", "cli"))
        p.set_defaults(func=_incidents)

    _register_maintenance(sub)

    rep = sub.add_parser("report", help="an HTML report of a replay (events per minute, incidents, noise reduction)")
    rep.add_argument("report", help="replay report JSON (eventmgmt replay --report)")
    rep.add_argument("--captures", required=True, help="the captures file that was replayed (for event times)")
    rep.add_argument("--html", required=True, help="write the HTML report here")
    rep.set_defaults(func=_report)


def _register_maintenance(sub: Any) -> None:
    mw = sub.add_parser("maintenance", help="list, add and end maintenance windows on a running server")
    msub = mw.add_subparsers(dest="maintenance_command", required=True)
    p = msub.add_parser("list")
    _common(p)
    p.set_defaults(func=_maintenance)
    p = msub.add_parser("add")
    _common(p)
    p.add_argument("--name", required=True)
    p.add_argument("--start", required=True, help="RFC 3339")
    p.add_argument("--end", required=True, help="RFC 3339")
    p.add_argument("--every", help="repeat period, e.g. 7d")
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="FIELD=REGEX",
        help="resource field to match (node, namespace, pod, model, deployment); repeatable",
    )
    p.add_argument("--match-all", action="store_true", help="no --match: silence every alert (must be said)")
    p.add_argument("--force", action="store_true", help="allow a window longer than the configured maximum")
    p.add_argument("--replace", action="store_true", help="replace a window of the same name")
    p.set_defaults(func=_maintenance)
    p = msub.add_parser("end")
    _common(p)
    p.add_argument("name")
    p.set_defaults(func=_maintenance)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("EVENTMGMT_URL", DEFAULT_URL), help="server base URL")
    p.add_argument("--json", action="store_true", help="print JSON")


def _client(args: argparse.Namespace) -> Any:
    import httpx

    token = os.environ.get("EVENTMGMT_INGEST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = args.url if "://" in args.url else f"http://{args.url}"  # NOTE: `--url localhost:8080` means http
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def _fail(resp: Any) -> int:
    try:
        body = resp.json()
        msg = body.get("error", resp.text)
    except ValueError:
        msg = resp.text
    print(f"eventmgmt: HTTP {resp.status_code}: {msg}", file=sys.stderr)
    return 1


def _incidents(args: argparse.Namespace) -> int:
    import httpx

    try:
        with _client(args) as http:
            cmd = args.incidents_command
            if cmd == "list":
                params: dict[str, Any] = {"limit": args.limit, **({"status": args.status} if args.status else {})}
                r = http.get("/api/incidents", params=params)
            elif cmd == "show":
                r = http.get(f"/api/incidents/{args.id}")
            else:
                verb = "ack" if cmd == "ack" else "resolve"
                r = http.post(f"/api/incidents/{args.id}/{verb}", json={"by": getattr(args, "by", "cli")})
    except httpx.HTTPError as err:
        print(f"eventmgmt: cannot reach {args.url}: {err}", file=sys.stderr)
        return 1
    if r.status_code >= 400:
        return _fail(r)
    data = r.json()
    if args.json:
        print(json.dumps(data, indent=1))
    elif cmd == "list":
        for i in data["incidents"]:
            print(f"{i['id']}  {i['severity']:<8} {i['status']:<12} {i['member_count']:>4}  {i['title']}")
        print(f"({len(data['incidents'])} of {data['total']})")
    elif cmd == "show":
        print(
            f"{data['title']}\n  {data['severity']} {data['status']}  root cause: {data['root_cause']['kind']}: "
            f"{data['root_cause']['summary']}\n  action: {data.get('action')}\n  runbook: {data.get('runbook')}"
        )
        for e in data["events"]:
            print(f"  {e['occurred_at'][:19]}  {e['class']:<6} {e['kind']:<20} {e['status']:<9} {e['summary'][:90]}")
    else:
        print(f"{data['id']} is now {data['status']}")
    return 0


def _maintenance(args: argparse.Namespace) -> int:
    import httpx

    try:
        with _client(args) as http:
            cmd = args.maintenance_command
            if cmd == "list":
                r = http.get("/api/maintenance")
            elif cmd == "add":
                body: dict[str, Any] = {"name": args.name, "start": args.start, "end": args.end}
                if args.every:
                    body["every"] = args.every
                resources = {}
                for m in args.match:
                    field, sep, regex = m.partition("=")
                    if not sep:
                        print(f"eventmgmt: --match wants FIELD=REGEX, got {m!r}", file=sys.stderr)
                        return 2
                    resources[field] = regex
                if resources:
                    body["match"] = {"resources": resources}
                body.update({k: True for k in ("match_all", "force", "replace") if getattr(args, k)})
                r = http.post("/api/maintenance", json=body)
            else:
                r = http.post(f"/api/maintenance/{args.name}/end", json={})
    except httpx.HTTPError as err:
        print(f"eventmgmt: cannot reach {args.url}: {err}", file=sys.stderr)
        return 1
    if r.status_code >= 400:
        return _fail(r)
    print(json.dumps(r.json(), indent=1))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import html_report

    try:
        with open(args.report) as f:
            report = json.load(f)
        with open(args.captures) as f:
            text = html_report(report, f)
        with open(args.html, "w") as out:
            out.write(text)
    except OSError as err:
        print(f"eventmgmt report: {err.strerror}: {err.filename}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"eventmgmt report: {args.report} is not a replay report (JSON): {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.html}")
    return 0

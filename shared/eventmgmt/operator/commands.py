"""`eventmgmt incidents ...`, `eventmgmt maintenance ...` (over HTTP to a running server) and
`eventmgmt report` (an HTML report of a replay)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..timeutil import iso, parse_ts

DEFAULT_URL = "http://127.0.0.1:8080"


def register(sub: Any) -> None:
    inc = sub.add_parser(
        "incidents",
        help="list, show, acknowledge and resolve incidents on a running server",
        description="List, show, acknowledge and resolve incidents on a running `eventmgmt serve`.",
    )
    isub = inc.add_subparsers(dest="incidents_command", required=True, metavar="COMMAND")
    for name, help_ in (
        ("list", "list incidents, open first"),
        ("show", "one incident with its events"),
        ("ack", "acknowledge an incident"),
        ("resolve", "resolve an incident"),
    ):
        p = isub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        _common(p)
        if name != "list":
            p.add_argument("id", help="incident id (see `eventmgmt incidents list`)")
        if name == "list":
            p.add_argument(
                "--status", choices=["open", "acknowledged", "resolved"], help="only incidents in this status"
            )
            p.add_argument("--limit", type=int, default=50, help="at most this many incidents (default: %(default)s)")
        if name == "ack":
            p.add_argument(
                "--by",
                default=os.environ.get("USER", "cli"),
                help="who acknowledges, shown on the incident (default: $USER, here %(default)s)",
            )
        p.set_defaults(func=_incidents)

    _register_maintenance(sub)

    rep = sub.add_parser(
        "report",
        help="an HTML report of a replay (events per minute, incidents, noise reduction)",
        description="Write an HTML report of a replay: events per minute, incidents, noise reduction.",
    )
    rep.add_argument("report", help="replay report JSON (eventmgmt replay --report)")
    rep.add_argument("--captures", required=True, help="the captures file that was replayed (for event times)")
    rep.add_argument("--html", required=True, help="write the HTML report here")
    rep.set_defaults(func=_report)


_ADD_EXAMPLE = """example:
  eventmgmt maintenance add --name node-upgrade \\
      --start 2026-11-07T08:00:00Z --end 2026-11-07T10:00:00Z --match 'node=gke-.*-efc6'"""


def _register_maintenance(sub: Any) -> None:
    mw = sub.add_parser(
        "maintenance",
        help="list, add and end maintenance windows on a running server",
        description="List, add and end maintenance windows on a running `eventmgmt serve`. While a window "
        "is active, the events it matches are recorded but do not page.",
    )
    msub = mw.add_subparsers(dest="maintenance_command", required=True, metavar="COMMAND")
    p = msub.add_parser(
        "list",
        help="list maintenance windows and whether each is active, scheduled or ended",
        description="List the maintenance windows (configured and added at run time), active first. Times are "
        "UTC; for a repeating window FROM and UNTIL are its current or next occurrence.",
    )
    _common(p)
    p.set_defaults(func=_maintenance)
    p = msub.add_parser(
        "add",
        help="add a maintenance window",
        description="Add a maintenance window: events matching every --match are not paged from --start\n"
        "until --end (and again each --every after that, when given).",
        epilog=_ADD_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--name", required=True, help="window name: letters, digits, '.', '_' or '-'")
    p.add_argument("--start", required=True, metavar="TIME", help="start, RFC 3339, e.g. 2026-11-07T08:00:00Z")
    p.add_argument("--end", required=True, metavar="TIME", help="end, RFC 3339, e.g. 2026-11-07T10:00:00Z")
    p.add_argument("--every", metavar="DURATION", help="repeat period: 90s, 15m, 1h30m, 7d, ... (default: no repeat)")
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="FIELD=REGEX",
        help="resource field and the regular expression its value must match in full (node, namespace, pod, "
        "container, deployment, model, version, gpu, cluster); repeatable, all must match",
    )
    p.add_argument("--match-all", action="store_true", help="silence every alert (required when no --match is given)")
    p.add_argument("--force", action="store_true", help="allow a window longer than the configured maximum")
    p.add_argument("--replace", action="store_true", help="replace a window of the same name")
    p.set_defaults(func=_maintenance)
    p = msub.add_parser(
        "end",
        help="end a maintenance window now",
        description="End a maintenance window added at run time, now (a repeating one stops repeating). "
        "Configured windows are changed in the configuration.",
    )
    _common(p)
    p.add_argument("name", help="name of the window (see `eventmgmt maintenance list`)")
    p.set_defaults(func=_maintenance)


def _common(p: argparse.ArgumentParser) -> None:
    env = os.environ.get("EVENTMGMT_URL")
    default = f"$EVENTMGMT_URL, here {env}" if env else f"{DEFAULT_URL}, or $EVENTMGMT_URL when set"
    p.add_argument(
        "--url",
        default=env or DEFAULT_URL,
        help=f"base URL of `eventmgmt serve` (default: {default.replace('%', '%%')})",
    )
    p.add_argument("--json", action="store_true", help="print the server's answer as JSON (for scripts)")


def _client(args: argparse.Namespace) -> Any:
    import httpx

    token = os.environ.get("EVENTMGMT_INGEST_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = args.url if "://" in args.url else f"http://{args.url}"  # NOTE: `--url localhost:8080` means http
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def _where(args: argparse.Namespace) -> str:
    """The command as typed, for messages: `eventmgmt maintenance end`."""
    group = args.command
    return f"eventmgmt {group} {getattr(args, f'{group}_command', '')}".rstrip()


# NOTE: the server's 400s can carry pydantic's multi-line text (a location line, then an indented
# "Value error, ... [type=..., input_value=...]" and a "For further information visit" URL).
_PYDANTIC_HEAD = re.compile(r"\s*\d+ validation errors? for \w+\s*$")
_PYDANTIC_TAIL = re.compile(r"\s*\[type=[^\]]*(\]|$).*$")


def one_line(message: str, limit: int = 300) -> str:
    """A server's error message as one readable line: pydantic's details reduced to what is wrong."""
    lines = [x for x in str(message).splitlines() if x.strip()]
    if not lines:
        return "(no message)"
    head, rest = lines[0], lines[1:]
    if _PYDANTIC_HEAD.search(head) and rest:
        head = _PYDANTIC_HEAD.sub("", head).rstrip(": ")
        parts, loc = [], ""
        for line in rest:
            text = line.strip()
            if text.startswith("For further information"):
                continue
            if not line.startswith(" "):
                loc = text
                continue
            text = _PYDANTIC_TAIL.sub("", text)
            for prefix in ("Value error, ", "Assertion failed, "):
                text = text.removeprefix(prefix)
            parts.append(f"{loc}: {text}" if loc and not text.startswith(loc) else text)
            loc = ""
        lines = [f"{head}: {'; '.join(parts)}" if head else "; ".join(parts)]
    text = " ".join(x.strip() for x in lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# NOTE: the server's messages name the API's fields; here they are the command's options.
_FLAGS = {f"`{k}: true`": f"--{k.replace('_', '-')}" for k in ("match_all", "force", "replace")}


def _fail(resp: Any, where: str = "eventmgmt") -> int:
    try:
        body = resp.json()
        msg = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        msg = None
    msg = one_line(msg or resp.text or resp.reason_phrase)
    for said, flag in _FLAGS.items():
        msg = msg.replace(said, flag)
    hint = ""
    if resp.status_code == 401:
        hint = " (set EVENTMGMT_INGEST_TOKEN to the server's token)"
    print(f"{where}: {msg} (HTTP {resp.status_code}){hint}", file=sys.stderr)
    return 1


def _answer(resp: Any, args: argparse.Namespace) -> tuple[Any, int | None]:
    """The JSON of a successful answer, or (None, exit status) once the problem is told."""
    if resp.status_code >= 400:
        return None, _fail(resp, _where(args))
    try:
        return resp.json(), None
    except ValueError:
        print(f"{_where(args)}: {args.url} did not answer with JSON; is it `eventmgmt serve`?", file=sys.stderr)
        return None, 1


def _unreachable(args: argparse.Namespace, err: Exception) -> int:
    print(f"{_where(args)}: cannot reach {args.url}: {one_line(str(err)) or type(err).__name__}", file=sys.stderr)
    return 1


def _call(args: argparse.Namespace, send: Callable[[Any], Any]) -> tuple[Any, Any] | int:
    """`send(client)` to the server: its JSON answer and the response, or the exit status after a
    one-line message (unreachable, an error answer, not JSON)."""
    import httpx

    try:
        with _client(args) as http:
            r = send(http)
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        return _unreachable(args, err)
    data, failed = _answer(r, args)
    return failed if failed is not None else (data, r)


def _incidents(args: argparse.Namespace) -> int:
    cmd = args.incidents_command

    def send(http: Any) -> Any:
        if cmd == "list":
            params: dict[str, Any] = {"limit": args.limit, **({"status": args.status} if args.status else {})}
            return http.get("/api/incidents", params=params)
        if cmd == "show":
            return http.get(f"/api/incidents/{args.id}")
        verb = "ack" if cmd == "ack" else "resolve"
        return http.post(f"/api/incidents/{args.id}/{verb}", json={"by": getattr(args, "by", "cli")})

    answered = _call(args, send)
    if isinstance(answered, int):
        return answered
    data, _ = answered
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
    cmd = args.maintenance_command
    body: dict[str, Any] = {}
    if cmd == "add":
        body = {"name": args.name, "start": args.start, "end": args.end}
        if args.every:
            body["every"] = args.every
        resources = {}
        for m in args.match:
            field, sep, regex = m.partition("=")
            if not sep or not field.strip():
                print(f"{_where(args)}: --match wants FIELD=REGEX, got {m!r}", file=sys.stderr)
                return 2
            resources[field.strip()] = regex
        if resources:
            body["match"] = {"resources": resources}
        body.update({k: True for k in ("match_all", "force", "replace") if getattr(args, k)})

    def send(http: Any) -> Any:
        if cmd == "list":
            return http.get("/api/maintenance")
        if cmd == "add":
            return http.post("/api/maintenance", json=body)
        return http.post(f"/api/maintenance/{args.name}/end", json={})

    answered = _call(args, send)
    if isinstance(answered, int):
        return answered
    data, r = answered
    if args.json:
        print(json.dumps(data, indent=1))
    elif cmd == "list":
        if not isinstance(data, list):
            print(f"{_where(args)}: unexpected answer from {args.url}", file=sys.stderr)
            return 1
        print("\n".join(window_table(data, datetime.now(UTC))))
    elif cmd == "add":
        verb = "replaced" if r.status_code == 200 else "added"
        print(f"{verb} {window_line(data if isinstance(data, dict) else {}, datetime.now(UTC))}")
    else:
        print(f"ended maintenance window {data.get('ended', args.name) if isinstance(data, dict) else args.name}")
    return 0


# --- human output of maintenance windows ------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    try:
        return parse_ts(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None


def _period(value: Any) -> timedelta | None:
    """`every` as the server sends it (ISO 8601, "P7D") or as seconds."""
    if value is None or value == "":
        return None
    from pydantic import TypeAdapter, ValidationError

    try:
        td = TypeAdapter(timedelta).validate_python(value)
    except ValidationError:
        return None
    return td if td > timedelta(0) else None


def span(td: timedelta) -> str:
    """A duration as on-call people say it: 2h, 1d12h, 45m, 90s → 1m30s."""
    seconds = int(td.total_seconds())
    if seconds <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


def matcher_text(window: dict[str, Any]) -> str:
    """A window's matcher as `key=value` pairs (resource fields as `--match` takes them)."""
    if window.get("match_all"):
        return "everything (match_all)"
    when = window.get("when") or window.get("match") or {}
    if not isinstance(when, dict):
        return str(when)
    pairs = []
    for key, value in when.items():
        if value is None or value == {} or value == "":
            continue
        name = "class" if key == "cls" else key
        if isinstance(value, dict):
            prefix = "" if name == "resources" else f"{name}."
            pairs += [f"{prefix}{k}={v}" for k, v in value.items()]
        else:
            pairs.append(f"{name}={value}")
    return " ".join(pairs) or "-"


def occurrence(
    start: datetime | None, end: datetime | None, every: timedelta | None, now: datetime
) -> tuple[str, datetime | None, datetime | None]:
    """(active | scheduled | ended, from, until) of a window at `now`: for a repeating one, the
    occurrence now or the next one."""
    if start is None or end is None:
        return "unknown", start, end
    if every is not None and now >= start:
        k = (now - start) // every
        start, end = start + k * every, end + k * every
        if now >= end:
            start, end = start + every, end + every
    if now < start:
        return "scheduled", start, end
    return ("active" if now < end else "ended"), start, end


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, no trailing blanks."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]


_ORDER = {"active": 0, "scheduled": 1, "ended": 2}


def window_table(windows: list[dict[str, Any]], now: datetime) -> list[str]:
    """`maintenance list` for people: active first, then scheduled, then ended."""
    if not windows:
        return ["no maintenance windows"]
    rows = []
    for w in windows:
        every = _period(w.get("every"))
        state, start, end = occurrence(_time(w.get("start")), _time(w.get("end")), every, now)
        rows.append(
            (
                _ORDER.get(state, 3),
                start or datetime.max.replace(tzinfo=UTC),
                [
                    str(w.get("name") or "-"),
                    iso(start) if start else str(w.get("start") or "-"),
                    iso(end) if end else str(w.get("end") or "-"),
                    state,
                    span(every) if every else "-",
                    matcher_text(w),
                    str(w.get("created_by") or "-"),
                ],
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    headers = ["NAME", "FROM", "UNTIL", "STATE", "EVERY", "MATCHER", "CREATED_BY"]
    cells = [r[2] for r in rows]
    if not any(c[4] != "-" for c in cells):
        headers.pop(4)
        cells = [c[:4] + c[5:] for c in cells]
    return table(headers, cells)


def window_line(w: dict[str, Any], now: datetime) -> str:
    """`maintenance window w1 (scheduled): 2026-11-07T08:00:00Z to 2026-11-07T10:00:00Z (2h), matching node=x`."""
    start, end, every = _time(w.get("start")), _time(w.get("end")), _period(w.get("every"))
    state, _, _ = occurrence(start, end, every, now)
    when = (
        f"{iso(start)} to {iso(end)} ({span(end - start)})" if start and end else f"{w.get('start')} to {w.get('end')}"
    )
    repeat = f", repeating every {span(every)}" if every else ""
    return f"maintenance window {w.get('name')} ({state}): {when}{repeat}, matching {matcher_text(w)}"


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

"""`eventmgmt retention run [--dry-run] [--now T] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "retention",
        help="archive retention",
        description="Archive retention: how long each type of record is kept, hot then cold.",
    )
    rsub = p.add_subparsers(dest="retention_command", required=True, metavar="COMMAND")
    run = rsub.add_parser(
        "run",
        help="move and delete archive partitions (and age out state) as policy says",
        description="Move archive partitions from the hot to the cold tier and delete them as the retention "
        "policy says (legal holds are kept), and delete events and incidents past their retention from the "
        "state store. --dry-run tells what would be done.",
    )
    run.add_argument("--dry-run", action="store_true", help="report what would be done, change nothing")
    run.add_argument("--now", metavar="TIME", help="evaluate the policy at this time (RFC 3339) (default: now)")
    run.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    run.add_argument("--archive", help="archive root (default: $EVENTMGMT_ARCHIVE_URL or $EVENTMGMT_HOME/archive)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

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
    root = args.archive or settings.archive
    try:
        # NOTE: listed first only to tell, per type, how many partitions are kept (the report counts them).
        listed = [] if args.json else _listing(root)
        report = run_retention(root, policy, now, dry_run=args.dry_run)
        engine = make_engine(settings.db_url)
        ensure_schema(engine)
        state = age_out_state(engine, policy, now, dry_run=args.dry_run)
    except (OSError, ValueError, ImportError, SQLAlchemyError) as err:
        text = " ".join(str(err).split())[:300] or type(err).__name__
        print(f"eventmgmt retention run: {text}", file=sys.stderr)
        return 1
    out = {**report.to_json(), "state": state}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print("\n".join(summary(out, policy, listed, root)))
    return 0


def _listing(root: str) -> list[str]:
    """Every partition under `root` as the report names them: `hot/log/dt=2026-01-01`."""
    from fsspec.core import url_to_fs

    from .retention import partitions

    fs, path = url_to_fs(root)
    return [f"{tier}/{type_}/dt={day.isoformat()}" for _, tier, type_, day in partitions(fs, path.rstrip("/"))]


def _days(td: timedelta) -> str:
    return f"{td.days}d" if td == timedelta(days=td.days) else str(td)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> list[str]:
    """The first `right` columns left-aligned, the rest (numbers) right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(
            c.ljust(w) if i < right else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in [headers, *rows]
    ]


def summary(report: dict[str, Any], policy: Any, listed: list[str], root: str) -> list[str]:
    """The retention report for people: per type, partitions deleted, moved, held and kept (with
    objects and bytes touched), then the state store's events and incidents deleted."""
    from .policy import TYPES

    dry = bool(report["dry_run"])
    at = datetime.fromisoformat(report["now"]).astimezone(UTC).replace(microsecond=0)
    now = at.isoformat().replace("+00:00", "Z")
    head = f"retention {'dry run' if dry else 'run'} at {now}" + (": nothing was changed" if dry else "")

    def of(labels: list[str], type_: str) -> int:
        return sum(1 for x in labels if x.split("/")[1] == type_)

    touched = set(report["moved"]) | set(report["deleted"]) | set(report["held"])
    kept_labels = [x for x in listed if x not in touched]
    rows, totals = [], [0] * 6
    for t in TYPES:
        rule = policy.policy(t)
        objects = sum(v for k, v in report["objects"].items() if k.split(":")[1] == t)
        size = sum(v for k, v in report["bytes"].items() if k.split(":")[1] == t)
        counts = [of(report["deleted"], t), of(report["moved"], t), of(report["held"], t), of(kept_labels, t)]
        counts += [objects, size]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        keep = f"hot {_days(rule.hot)}, delete after {_days(rule.delete_after)}"
        rows.append([t, keep, *(str(c) for c in counts[:5]), _size(size)])
    # NOTE: the report's own count of kept partitions is the total (the listing was taken just before).
    totals[3] = int(report["kept_partitions"])
    rows.append(["total", "", *(str(c) for c in totals[:5]), _size(totals[5])])
    deleted, moved = ("WOULD DELETE", "WOULD MOVE TO COLD") if dry else ("DELETED", "MOVED TO COLD")
    headers = ["TYPE", "POLICY", deleted, moved, "HELD", "KEPT", "OBJECTS", "SIZE"]
    lines = [
        head,
        "",
        f"archive {root}: partitions (one type's records of one day); objects and size of those "
        f"{'that would be ' if dry else ''}deleted or moved",
    ]
    lines += _table(headers, rows, right=2)
    if report["held"]:
        shown = report["held"][:10]
        more = f" and {len(report['held']) - len(shown)} more" if len(report["held"]) > len(shown) else ""
        lines.append(f"held (legal hold): {', '.join(shown)}{more}")
    state = report.get("state") or {}
    state_rows = [[t, str(state.get(f"events:{t}", 0))] for t in TYPES if f"events:{t}" in state]
    state_rows.append(["incident", str(state.get("incidents", 0))])
    lines += ["", "state store (events and resolved incidents past retention)"]
    lines += _table(["TYPE", deleted], state_rows)
    return lines

"""The retention job: moves hot partitions to cold and deletes what policy says, nothing else.

A partition holds one type's records of one day D. Every record in it is at least N days old from
D + 1 day + N days on; that instant is when it moves (N = hot) or is deleted (N = delete_after).
Safe to run twice or concurrently: every step is idempotent and tolerates the other run having
done it first; a move copies, then deletes the source, so a crash in between never loses data."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from fsspec.core import url_to_fs
from sqlalchemy import CursorResult, Engine, and_, delete, or_, select
from sqlalchemy.orm import Session

from .policy import TYPES, RetentionConfig

_PARTITION = re.compile(r"/(?P<tier>hot|cold)/(?P<type>[a-z]+)/dt=(?P<day>\d{4}-\d{2}-\d{2})$")
HOLD_MARKER = "_HOLD"


@dataclass
class RetentionReport:
    dry_run: bool
    now: datetime
    moved: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    kept: int = 0
    objects: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "moved": self.moved,
            "deleted": self.deleted,
            "held": self.held,
            "kept_partitions": self.kept,
            "objects": dict(self.objects),
            "bytes": dict(self.bytes),
        }


def due(day: date, days: timedelta, now: datetime) -> bool:
    """Whether every record of day `day` is at least `days` old at `now`."""
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    return now >= end_of_day + days


def partitions(fs: Any, root: str) -> list[tuple[str, str, str, date]]:
    out = []
    for tier in ("hot", "cold"):
        for type_ in TYPES:
            base = f"{root}/{tier}/{type_}"
            try:
                entries = fs.ls(base, detail=False)
            except FileNotFoundError:
                continue
            for p in entries:
                m = _PARTITION.search(p.rstrip("/"))
                if m:
                    out.append((p.rstrip("/"), tier, type_, date.fromisoformat(m.group("day"))))
    return sorted(out)


def _objects(fs: Any, path: str) -> list[tuple[str, int]]:
    try:
        return [(p, int(info.get("size") or 0)) for p, info in fs.find(path, detail=True).items()]
    except FileNotFoundError:
        return []


def run_retention(root: str, policy: RetentionConfig, now: datetime, dry_run: bool = False) -> RetentionReport:
    fs, root_path = url_to_fs(root)
    root_path = root_path.rstrip("/")
    report = RetentionReport(dry_run, now)
    for path, tier, type_, day in partitions(fs, root_path):
        rule = policy.policy(type_)
        label = f"{tier}/{type_}/dt={day.isoformat()}"
        if any(h.covers(type_, day) for h in policy.holds) or fs.exists(f"{path}/{HOLD_MARKER}"):
            report.held.append(label)
            continue
        if due(day, rule.delete_after, now):
            objs = _objects(fs, path)
            report.deleted.append(label)
            report.objects[f"deleted:{type_}:{tier}"] += len(objs)
            report.bytes[f"deleted:{type_}:{tier}"] += sum(size for _, size in objs)
            if not dry_run:
                for p, _ in objs:
                    _rm(fs, p)
                _rmdir(fs, path)
        elif tier == "hot" and due(day, rule.hot, now):
            objs = _objects(fs, path)
            target = f"{root_path}/cold/{type_}/dt={day.isoformat()}"
            report.moved.append(label)
            report.objects[f"moved:{type_}"] += len(objs)
            report.bytes[f"moved:{type_}"] += sum(size for _, size in objs)
            if not dry_run:
                fs.makedirs(target, exist_ok=True)
                for p, _ in objs:
                    dest = f"{target}/{p.rsplit('/', 1)[1]}"
                    try:
                        fs.copy(p, dest)
                    except FileNotFoundError:
                        continue  # NOTE: a concurrent run moved it already
                    _rm(fs, p)
                _rmdir(fs, path)
        else:
            report.kept += 1
    return report


def _rm(fs: Any, path: str) -> None:
    try:
        fs.rm(path)
    except FileNotFoundError:
        pass


def _rmdir(fs: Any, path: str) -> None:
    try:
        if not fs.find(path):
            fs.rm(path, recursive=True)
    except (FileNotFoundError, OSError):
        pass


def age_out_state(engine: Engine, policy: RetentionConfig, now: datetime, dry_run: bool = False) -> dict[str, int]:
    """The state store ages out on the same policy: events past their type's retention (unless their
    incident is still live) and incidents resolved longer ago than the incident retention, with what
    they left for recurrence (`past_incident_keys`; correlation forgets those itself about a day after
    their resolution)."""
    from ..store.tables import EventRow, IncidentRow

    type_filters = {
        "log": EventRow.source == "log",
        "audit": EventRow.source == "k8s-audit",
        "metric": and_(EventRow.source == "collector", EventRow.cls == "info"),
        "alert": and_(EventRow.cls == "alert", EventRow.source.not_in(["log", "k8s-audit"])),
        "change": and_(EventRow.cls == "change", EventRow.source.not_in(["log", "k8s-audit"])),
        "info": and_(EventRow.cls == "info", EventRow.source.not_in(["log", "k8s-audit", "collector"])),
    }
    counts: dict[str, int] = {}
    with Session(engine) as s, s.begin():
        live = select(IncidentRow.id).where(IncidentRow.live.is_(True))
        for type_, cond in type_filters.items():
            cutoff = now - policy.policy(type_).delete_after
            where = and_(
                cond,
                EventRow.occurred_at < cutoff,
                or_(EventRow.incident_id.is_(None), EventRow.incident_id.not_in(live)),
            )
            if dry_run:
                counts[f"events:{type_}"] = len(list(s.scalars(select(EventRow.id).where(where))))
            else:
                # NOTE: SQLAlchemy 2.1 types Session.execute as Result; a DELETE gives a CursorResult (rowcount).
                gone = cast(CursorResult[Any], s.execute(delete(EventRow).where(where)))
                counts[f"events:{type_}"] = gone.rowcount or 0
        cutoff = now - policy.policy("incident").delete_after
        where_inc = and_(IncidentRow.live.is_(False), IncidentRow.updated_at < cutoff)
        if dry_run:
            counts["incidents"] = len(list(s.scalars(select(IncidentRow.id).where(where_inc))))
        else:
            gone = cast(CursorResult[Any], s.execute(delete(IncidentRow).where(where_inc)))
            counts["incidents"] = gone.rowcount or 0
        counts["past_incidents"] = _age_out_past(s, cutoff, dry_run)
    return counts


def _age_out_past(s: Session, cutoff: datetime, dry_run: bool) -> int:
    """Recurrence digests of incidents resolved before `cutoff`, or whose incident is gone: a
    recurrence never names a deleted incident."""
    from ..store.tables import IncidentRow, PastIncidentRow

    where = or_(PastIncidentRow.resolved_at < cutoff, PastIncidentRow.incident_id.not_in(select(IncidentRow.id)))
    if dry_run:
        return len(list(s.scalars(select(PastIncidentRow.key).where(where))))
    gone = cast(CursorResult[Any], s.execute(delete(PastIncidentRow).where(where)))
    return gone.rowcount or 0

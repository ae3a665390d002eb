"""The incident repository on SQLAlchemy, used inside one transaction per event.

Concurrent correlate workers serialise on one lock per transaction (a PostgreSQL transaction-level
advisory lock; SQLite's BEGIN IMMEDIATE write lock): two events that belong together can never both
miss each other's incident, so an incident is never split in two and no update is lost. Each
transaction is a few indexed reads and writes, so the lock is held for milliseconds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ARRAY, Engine, String, Table, any_, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from ..config import Chain, Response
from ..incident import IncidentSnapshot
from ..model import Event, EventClass
from ..store.bulk import insert_rows
from ..store.db import JsonText
from ..store.tables import (
    EventRow,
    HeldEventRow,
    IncidentFingerprintRow,
    IncidentKeyRow,
    IncidentRow,
    PastIncidentRow,
)
from .repo import incident_id_for
from .state import RECURRENCE_KEEP, Incident, PastIncident, fingerprint_key

_LOCK_ID = 0x6576656E746D67  # "eventmg"
# Values per lookup (one bound parameter, below): bounds a statement's size for any webhook.
_IN_CHUNK = 5000

# NOTE: bulk statements of `finish` touch rows this session does not hold (or holds no longer):
# evaluating them against every object in the session cost more than the statements.
_NO_SYNC = {"synchronize_session": False}


class IncidentCache:
    """Live incidents as this process last committed them, by id with their version: a storm
    incident of thousands of members is not decoded again for every delivery. A row whose version
    differs (another instance changed it) is read again; a failed transaction empties the cache.

    It also keeps the clusters of other instances' incidents this process met but never loaded
    (`learn`), so a transaction holding other clusters passes them over without reading them."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, Incident]] = {}
        self._clusters: dict[str, frozenset[str]] = {}

    def get(self, incident_id: str, version: int) -> Incident | None:
        hit = self._items.get(incident_id)
        return hit[1] if hit is not None and hit[0] == version else None

    def known(self, incident_id: str) -> bool:
        return incident_id in self._items or incident_id in self._clusters

    def learn(self, incident_id: str, clusters: Iterable[str]) -> None:
        if len(self._clusters) >= _LEARNED_MAX:
            self._clusters.clear()  # NOTE: other instances retire their incidents; met again, read again
        self._clusters[incident_id] = frozenset(clusters)

    def elsewhere(self, incident_id: str, scope: frozenset[str]) -> bool:
        """Whether the incident, as this process last saw it at any version, belongs to clusters
        none of which is in `scope`. Once an incident names a cluster it names no other (nothing
        joins across clusters), so no event of `scope` can join it, nor a transaction holding
        `scope` resolve it."""
        hit = self._items.get(incident_id)
        clusters: Iterable[str] = (
            hit[1].agg.names.get("cluster", {}) if hit is not None else self._clusters.get(incident_id, frozenset())
        )
        return bool(clusters) and scope.isdisjoint(clusters)

    def committed(self, incidents: Iterable[Incident], retired: Iterable[str]) -> None:
        for inc in incidents:
            self._items[inc.id] = (inc.version, inc)
        for iid in retired:
            self._items.pop(iid, None)
            self._clusters.pop(iid, None)

    def clear(self) -> None:
        self._items.clear()
        self._clusters.clear()


# Other instances' incidents whose clusters a process remembers (about 200 bytes each).
_LEARNED_MAX = 100_000


@contextmanager
def locked_session(engine: Engine, clusters: frozenset[str] | None = None) -> Iterator[Session]:
    """A transaction holding correlation's lock. PostgreSQL: the whole store (exclusive), or, given
    `clusters`, those clusters only: the global lock shared plus one exclusive lock per cluster, in
    name order. Correlation never joins across clusters, so deliveries of different clusters run in
    parallel on several instances, while one cluster's stay serialised and a delivery with an event
    naming no cluster (it may join any cluster's incident), the lifecycle tick and dashboard actions
    still exclude everything. SQLite has one writer anyway."""
    # NOTE: the session ends with its transaction, so nothing reads its objects after the commit:
    # expiring each of them there (thousands in a storm's transaction) was a twentieth of its drain.
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            if clusters is None:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
            else:
                session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _LOCK_ID})
                for name in sorted(clusters):
                    session.execute(
                        text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _CLUSTER_LOCKS, "b": _lock_key(name)}
                    )
        yield session


# NOTE: the two-integer advisory lock space, apart from the one-bigint key above.
_CLUSTER_LOCKS = 0x65766D  # "evm"


def _lock_key(cluster: str) -> int:
    """A stable 32-bit signed key for a cluster name (two names sharing one only serialise)."""
    return int.from_bytes(hashlib.sha256(cluster.encode()).digest()[:4], "big", signed=True)


def event_values(ev: Event, incident_id: str | None) -> dict[str, Any]:
    """An event's row as column values (inserted in bulk: an ORM object per event costs more than
    correlating it)."""
    r = ev.resources
    return dict(
        id=ev.id,
        fingerprint=ev.fingerprint,
        source=ev.source,
        kind=ev.kind,
        cls=ev.cls.value,
        severity=ev.severity.value,
        status=ev.status.value,
        occurred_at=ev.occurred_at,
        received_at=ev.received_at,
        incident_id=incident_id,
        summary=ev.summary[:2000],
        namespace=r.namespace,
        node=r.node,
        pod=r.pod,
        model=r.model,
        capture=ev.origin.capture if ev.origin else None,
        idx=ev.origin.index if ev.origin else None,
        suppressed=ev.suppressed,
        data=JsonText(ev.model_dump_json(by_alias=True)),
    )


class SqlRepo:
    def __init__(
        self,
        session: Session,
        chains: list[Chain],
        response: Mapping[str, Response],
        shared: IncidentCache | None = None,
        scope: frozenset[str] | None = None,
    ) -> None:
        """`scope`: the clusters this transaction holds (None: all). Incidents and held events of
        other clusters, or of none, are left to a transaction that holds them."""
        self.s = session
        self.shared = shared
        self.scope = scope
        self.chains = chains
        self.response = response
        self._init_lookups()
        self._init_writes()

    def _init_lookups(self) -> None:
        """What this transaction has read, so each thing is read once."""
        self._cache: dict[str, Incident] = {}
        # What `prefetch` found absent, and the earliest lifecycle check and hold end in the store:
        # inside the locked transaction nothing else writes, so these save a query per event.
        self._absent_events: set[str] = set()
        self._absent_fps: set[str] = set()
        self._absent_incidents: set[str] = set()
        self._due = _Earliest()
        self._held = _Earliest()
        # The incident rows this transaction read or added, as plain values (not ORM objects: a
        # storm's drain in Alertmanager's order reads and writes thousands, and the unit of work cost
        # more than the statements), so looking one up again is a dict hit instead of a SELECT.
        self._rows: dict[str, _Row] = {}
        self._fprows: dict[str, _Fingerprint] = {}
        # Incidents whose fingerprint rows are all in `_fprows` (`_read_fingerprints_of_small`).
        self._fps_read: set[str] = set()
        # Which live incidents hold each resource key, for the keys looked up so far (kept current
        # by save and retire), so the events of a batch that share a pod or model ask once.
        self._by_key: dict[str, set[str]] = {}
        # Retired incidents found by each lookup key read so far (`past`); those retired in this
        # transaction are in `_past_new` until `finish` writes them.
        self._past: dict[str, list[PastIncident]] = {}

    def _init_writes(self) -> None:
        """What this transaction will write, buffered until flush or `finish`."""
        # Incidents saved since the last flush: their state and snapshot are serialised once, when
        # the session flushes, however many events of the batch changed them.
        self._dirty: dict[str, tuple[Incident, IncidentSnapshot | None]] = {}
        # The snapshot written at the last flush of each incident: the correlated message reuses it.
        self.built: dict[str, IncidentSnapshot] = {}
        # Events recorded in this transaction, and their rows and new key rows, written in bulk by
        # `finish` (a query would not see them before).
        self._recorded: dict[str, str | None] = {}
        self._members_here: dict[str, list[str]] = {}  # incident -> events recorded for it here
        self._event_values: dict[str, dict[str, Any]] = {}
        self._key_values: dict[str, list[dict[str, str]]] = {}
        # Incidents created here whose row is built at the next flush, with its live flag and due
        # time: a storm's one-pod fragment, folded away before then, never costs an ORM object.
        self._pending: dict[str, tuple[bool, datetime | None]] = {}
        # Incidents whose row this transaction created: folded away before commit, they leave nothing.
        self._created: set[str] = set()
        # Those folded away so: they never had index rows, so `finish` deletes none of theirs.
        self._vanished: set[str] = set()
        # Rows changed since the last flush, and rows to delete then (created here, then folded away).
        self._unflushed: dict[str, _Row] = {}
        self._deleted: list[str] = []
        # Index rows to drop and member events to move once the transaction's rows are flushed.
        self._retired: list[str] = []
        self._orphans: dict[str, _Fingerprint] = {}
        self._moved: list[tuple[str, str]] = []
        self.gone: list[str] = []  # every incident retired in this transaction
        self._past_new: dict[str, list[PastIncident]] = {}
        self._past_rows: list[dict[str, Any]] = []

    def prefetch(self, events: Iterable[Event]) -> None:
        """Read what a batch of events can touch in a few queries instead of several per event: which
        ids were seen, which fingerprints and resource keys live incidents hold, and those incidents."""
        events = list(events)
        ids = {e.id for e in events}
        self._absent_events = ids - set(_in(self.s, EventRow.id, EventRow.id, ids))
        fps = {e.fingerprint for e in events}
        for fp, incident_id in _in(self.s, _FP_COLUMNS, IncidentFingerprintRow.fingerprint, fps):
            self._fprows[fp] = _Fingerprint.stored_as(fp, incident_id)
        self._absent_fps = fps - self._fprows.keys()
        keys = {k for e in events for k in e.resources.keys()}
        self._index_keys(keys)
        # NOTE: what a recurrence may name, read with the rest (an event opening an incident asks).
        self._read_past(keys | {fingerprint_key(fp) for fp in fps})
        wanted = {r.incident_id for r in self._fprows.values()}
        wanted |= {i for k in keys for i in self._by_key[k]}
        wanted = self._held_here(wanted)
        new_ids = {incident_id_for(e) for e in events}
        rows = list(_in(self.s, _ROW_COLUMNS, IncidentRow.id, (wanted | new_ids) - self._cache.keys()))
        self._load(rows)
        self._absent_incidents = new_ids - {r[0] for r in rows}

    def _held_here(self, ids: set[str]) -> set[str]:
        """`ids` less the incidents of clusters this transaction does not hold: those the process
        cache knows, and those whose snapshots, read together, name such a cluster. Incidents this
        transaction has loaded already are kept.

        NOTE: model, namespace, node and pod names recur across clusters, and so do the resource
        keys made of them. Two correlate instances, one a cluster, each loaded the other's incidents
        as candidates, decoded with their members (another instance had changed them since): 60%
        more CPU in all than one instance doing both clusters' work (`scaleout_bench`). In a storm
        sent in Alertmanager's order the other cluster has a thousand one-pod fragments: reading
        each once, to learn its cluster, was a query a fragment."""
        if self.scope is None or self.shared is None or not ids:
            return ids
        shared, scope = self.shared, self.scope
        loaded = ids & self._cache.keys()
        ids = {i for i in ids - loaded if not shared.elsewhere(i, scope)}
        for incident_id, clusters in _in(
            self.s, _CLUSTER_COLUMNS, IncidentRow.id, [i for i in ids if not shared.known(i)]
        ):
            shared.learn(incident_id, clusters or ())
            if shared.elsewhere(incident_id, scope):
                ids.discard(incident_id)
        return ids | loaded

    def _index_keys(self, keys: Iterable[str]) -> None:
        unknown = {k for k in keys if k not in self._by_key}
        if not unknown:
            return
        for k in unknown:
            self._by_key[k] = set()
        # NOTE: (key, incident) pairs, not ORM rows: nothing changes them through the session, and a
        # storm's batch reads thousands of them.
        for key, incident_id in _in(
            self.s, (IncidentKeyRow.key, IncidentKeyRow.incident_id), IncidentKeyRow.key, unknown
        ):
            self._by_key[key].add(incident_id)

    def _read_past(self, keys: Iterable[str]) -> None:
        unknown = {k for k in keys if k not in self._past}
        if not unknown:
            return
        for k in unknown:
            self._past[k] = []
        for key, digest in _in(self.s, (PastIncidentRow.key, PastIncidentRow.digest), PastIncidentRow.key, unknown):
            self._past[key].append(PastIncident.from_json(digest))

    def past(self, keys: Iterable[str]) -> dict[str, list[PastIncident]]:
        keys = list(keys)
        self._read_past(keys)
        out = {k: self._past[k] + self._past_new.get(k, []) for k in keys}
        return {k: v for k, v in out.items() if v}

    def _remember(self, inc: Incident) -> None:
        """Keep what a recurrence needs of a retired incident: written by `finish`."""
        past = PastIncident.of(inc)
        if past is None:
            return
        digest = past.to_json()
        for k in PastIncident.index_keys(inc):
            self._past_new.setdefault(k, []).append(past)
            self._past_rows.append({"key": k, "incident_id": inc.id, "resolved_at": past.resolved_at, "digest": digest})

    def _write_past(self) -> None:
        """Insert the digests of incidents retired here; forget those resolved more than
        RECURRENCE_KEEP before the latest of them (the memory repository forgets alike)."""
        if not self._past_rows:
            return
        insert_rows(self.s.connection(), _table(PastIncidentRow), self._past_rows)
        cutoff = max(r["resolved_at"] for r in self._past_rows) - RECURRENCE_KEEP
        self.s.execute(delete(PastIncidentRow).where(PastIncidentRow.resolved_at < cutoff), execution_options=_NO_SYNC)
        for k, new in self._past_new.items():
            if k in self._past:
                self._past[k].extend(new)
        self._past_new, self._past_rows = {}, []

    def _load(self, found: Iterable[Any]) -> None:
        """Rows read as `_ROW_COLUMNS`: kept, and their incidents loaded, from the process's cache when
        it holds the row's version, else decoded from their states, read together in one query."""
        states = []
        for incident_id, version, live in found:
            if incident_id not in self._rows:
                self._rows[incident_id] = _Row(incident_id, stored=True)
            if incident_id in self._cache:
                continue
            cached = self.shared.get(incident_id, version) if self.shared is not None and live else None
            if cached is None:
                states.append(incident_id)
            else:
                self._cache[incident_id] = cached
        for incident_id, state in _in(self.s, _STATE_COLUMNS, IncidentRow.id, states):
            self._cache[incident_id] = self._decode(incident_id, state)

    def _decode(self, incident_id: str, state: dict[str, Any]) -> Incident:
        inc = Incident.from_json(state)
        if "members" not in state:
            inc.rebuild(Event.from_json(e.data) for e in member_events(self.s, incident_id))
        inc.drop_members()
        return inc

    def _row(self, incident_id: str) -> _Row | None:
        row = self._rows.get(incident_id)
        if row is None and incident_id in self._pending:
            return self._materialize(incident_id)
        if row is None and incident_id not in self._absent_incidents:
            self._load(self.s.execute(_ONE_ROW, {"id": incident_id}).all())
            row = self._rows.get(incident_id)
        return row

    def _materialize(self, incident_id: str) -> _Row:
        live, due = self._pending.pop(incident_id)
        row = self._rows[incident_id] = _Row(incident_id, stored=False)
        self._set(row, live=live, due_at=due)
        return row

    def _set(self, row: _Row, **columns: Any) -> None:
        """Columns of `row` to write at the next flush."""
        row.changed.update(columns)
        self._unflushed[row.id] = row

    def seen(self, event_id: str) -> bool:
        if event_id in self._recorded:
            return True
        if event_id in self._absent_events:
            return False
        return self.s.get(EventRow, event_id) is not None

    def incident_of(self, event_id: str) -> str | None:
        if event_id in self._recorded:
            return self._recorded[event_id]
        row = self.s.get(EventRow, event_id)
        return row.incident_id if row else None

    def record_event(self, ev: Event, incident_id: str | None) -> None:
        self._absent_events.discard(ev.id)
        self._recorded[ev.id] = incident_id
        self._event_values[ev.id] = event_values(ev, incident_id)
        if incident_id is not None:
            self._members_here.setdefault(incident_id, []).append(ev.id)

    def _fprow(self, fingerprint: str) -> _Fingerprint | None:
        if fingerprint in self._absent_fps:
            return None
        row = self._fprows.get(fingerprint)
        if row is None:
            stored = self.s.scalar(_FP_OWNER, {"fp": fingerprint})
            if stored is None:
                self._absent_fps.add(fingerprint)
            else:
                row = self._fprows[fingerprint] = _Fingerprint.stored_as(fingerprint, stored)
        return row

    def by_fingerprint(self, fingerprint: str) -> Incident | None:
        row = self._fprow(fingerprint)
        return self.get(row.incident_id) if row else None

    def by_keys(self, keys: Iterable[str]) -> list[Incident]:
        keys = list(keys)
        if not keys:
            return []
        self._index_keys(keys)
        ids = sorted(self._held_here(set().union(*(self._by_key[k] for k in keys))))
        missing = [i for i in ids if i not in self._cache]
        if missing:
            # one query for every incident not loaded yet in this transaction, not one each
            self._load(_in(self.s, _ROW_COLUMNS, IncidentRow.id, missing))
        out = [self._cache.get(i) for i in ids]
        return [i for i in out if i is not None]

    def get(self, incident_id: str) -> Incident | None:
        if incident_id not in self._cache:
            self._row(incident_id)
        return self._cache.get(incident_id)

    def save(self, inc: Incident, due: datetime | None, snap: IncidentSnapshot | None = None) -> None:
        inc.drop_members()  # NOTE: they are event rows here
        self._cache[inc.id] = inc
        self._due.lower(due)
        # NOTE: what the lifecycle queries read (live, due) is written now, or kept for the row built
        # at flush, which the queries flush first; state and snapshot at flush.
        row = None if inc.id in self._pending else self._row(inc.id)
        if row is None:
            self._pending[inc.id] = (True, due)
            self._absent_incidents.discard(inc.id)
            self._created.add(inc.id)
        else:
            self._set(row, live=True, due_at=due)
        self._dirty[inc.id] = (inc, snap)
        new_keys, new_fps = inc.fresh_keys, inc.fresh_fps
        inc.fresh_keys, inc.fresh_fps = set(), set()
        # NOTE: know who else holds a key before adding a row a query would not see until flushed.
        self._index_keys(new_keys)
        rows = self._key_values.setdefault(inc.id, [])
        for k in new_keys:
            rows.append({"key": k, "incident_id": inc.id})
            self._by_key[k].add(inc.id)
        for fp in new_fps:
            # NOTE: a fingerprint may still point at an older episode's incident: take it over.
            fprow = self._fprow(fp) or self._orphans.pop(fp, None)
            if fprow is None:
                fprow = _Fingerprint(fp, inc.id)  # inserted by `finish`, with the events
            else:
                fprow.incident_id = inc.id
            self._fprows[fp] = fprow
            self._absent_fps.discard(fp)

    def flush(self) -> None:
        """Everything changed so far to the database: incident rows in Core statements (grouped by the
        columns they change), then what the session holds (held events)."""
        for iid in list(self._pending):
            self._materialize(iid)
        for iid in list(self._dirty):
            self._write(iid)
        self._flush_rows()
        self.s.flush()

    def _flush_rows(self) -> None:
        conn = self.s.connection()
        for i in range(0, len(self._deleted), 500):
            conn.execute(delete(_table(IncidentRow)).where(_table(IncidentRow).c.id.in_(self._deleted[i : i + 500])))
        self._deleted = []
        fresh: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in self._unflushed.values():
            if row.stored:
                changed.setdefault(tuple(row.changed), []).append({"_id": row.id, **row.changed})
            else:
                fresh.setdefault(tuple(row.changed), []).append({"id": row.id, **row.changed})
            row.stored, row.changed = True, {}
        self._unflushed = {}
        for values in fresh.values():
            insert_rows(conn, _table(IncidentRow), values)
        for values in changed.values():
            conn.execute(_ROW_UPDATE, values)

    def _write(self, incident_id: str) -> None:
        inc, snap = self._dirty.pop(incident_id)
        if snap is None or snap.version != inc.version:
            snap = inc.snapshot(self.chains, self.response)
        row = self._row(incident_id)
        assert row is not None, incident_id
        self._set(
            row,
            version=inc.version,
            kind=snap.kind,
            status=snap.status.value,
            severity=snap.severity.value,
            severity_rank=snap.severity.rank,
            board_rank=0 if snap.status.value in ("open", "acknowledged") else 1,
            title=snap.title,
            root_kind=snap.root_kind,
            opened_at=inc.opened_at,
            updated_at=inc.last_seen,
            resolved_at=inc.resolved_at,
            member_count=inc.size,
            firing=inc.firing,
            # NOTE: encoded by pydantic, as JSON text (a third of the time of a dict encoded by json.dumps)
            snapshot=JsonText(snap.model_dump_json()),
            state=inc.to_json(flat=True),
        )
        self.built[incident_id] = snap

    def reschedule(self, inc: Incident, due: datetime | None) -> None:
        self._due.lower(due)
        if inc.id in self._pending:
            self._pending[inc.id] = (self._pending[inc.id][0], due)
            return
        row = self._row(inc.id)
        if row is not None:
            self._set(row, due_at=due)

    def due(self, now: datetime) -> list[Incident]:
        if not self._due.reached(now, self._earliest_due):
            return []
        self.flush()  # what this transaction rescheduled must be what the query sees
        found = self.s.execute(_DUE, {"now": now}).all()
        # NOTE: another cluster's incidents fall due by this instance's clock before their own
        # instance's, and stay due for it: not loaded again at each transaction
        mine = self._held_here({r[0] for r in found})
        found = [r for r in found if r[0] in mine]
        self._load(r for r in found if r[2])
        out = []
        for incident_id, _, live in found:
            inc = self._cache.get(incident_id) if live else None
            if inc is not None and not self._in_scope(inc.agg.names.get("cluster", ())):
                continue  # NOTE: left due, for a transaction holding its clusters
            row = self._rows.setdefault(incident_id, _Row(incident_id, stored=True))
            self._set(row, due_at=None)
            if inc is not None:
                out.append(inc)
        return out

    def _earliest_due(self) -> datetime | None:
        self.flush()  # NOTE: rows rescheduled in this transaction count
        return self.s.scalar(select(func.min(IncidentRow.due_at)))

    def _in_scope(self, clusters: Iterable[str]) -> bool:
        if self.scope is None:
            return True
        names = set(clusters)
        return bool(names) and names <= self.scope

    def retire(self, inc: Incident) -> None:
        self._drop(inc)
        self._remember(inc)

    def _drop(self, inc: Incident) -> None:
        """Forget `inc` in the live indexes (retired or merged away)."""
        row = None if inc.id in self._pending else self._row(inc.id)
        if inc.id in self._pending:
            self._pending[inc.id] = (False, None)
        if row is not None:
            self._set(row, live=False, due_at=None)
        # NOTE: its index rows go in `finish`, after this transaction's own rows are flushed; the
        # lookups below forget it now.
        self._retired.append(inc.id)
        for k in inc.keys:
            ids = self._by_key.get(k)
            if ids is not None:
                ids.discard(inc.id)
        held = inc.fingerprints.keys()
        unknown = [fp for fp in held if fp not in self._fprows and fp not in self._absent_fps]
        if unknown and inc.id not in self._fps_read:
            self._read_fingerprints_of_small()
        if inc.id not in self._fps_read:
            for fp, incident_id in _in(self.s, _FP_COLUMNS, IncidentFingerprintRow.fingerprint, unknown):
                self._fprows[fp] = _Fingerprint.stored_as(fp, incident_id)
        for fp in held:
            r = self._fprows.get(fp)
            if r is not None and r.incident_id == inc.id:
                # NOTE: kept aside, not deleted yet: an incident taking the fingerprint over later in
                # this transaction reuses the row (its key is the fingerprint).
                del self._fprows[fp]
                self._orphans[fp] = r
                self._absent_fps.add(fp)

    def _read_fingerprints_of_small(self) -> None:
        """The fingerprint rows of every small incident this transaction loaded, in one query.

        NOTE: a storm's alerts grouped by alertname (every crash loop, then every error rate) fold a
        pod's fragment, opened transactions before, away with each error-rate alert: asking for each
        fragment's rows as it went was a query a fragment, a sixth of such a drain. Only incidents
        of a few members are read so (a big one's rows are read only if it is folded away itself),
        so what a transaction reads stays bounded however big its incidents."""
        ids = [i for i, c in self._cache.items() if i not in self._fps_read and c.size <= _FEW_MEMBERS]
        self._fps_read.update(ids)
        for fp, incident_id in _in(self.s, _FP_COLUMNS, IncidentFingerprintRow.incident_id, ids):
            if fp not in self._fprows and fp not in self._absent_fps and fp not in self._orphans:
                self._fprows[fp] = _Fingerprint.stored_as(fp, incident_id)

    def finish(self) -> None:
        """End of the transaction's work: write everything, then drop what retired incidents held
        in the lookup indexes and move merged-away incidents' events to their new incident."""
        self.flush()
        # NOTE: Core inserts on the session's connection (COPY on PostgreSQL): the ORM's bulk path
        # costs more than the database for a storm's thousands of member rows.
        conn = self.s.connection()
        insert_rows(conn, _table(EventRow), list(self._event_values.values()))
        insert_rows(conn, _table(IncidentKeyRow), [k for rows in self._key_values.values() for k in rows])
        self._write_fingerprints()
        self._event_values, self._key_values = {}, {}
        self._write_past()
        self.gone.extend(self._retired)
        # NOTE: in a storm each webhook folds dozens of its own fragments away: asking for their
        # index rows was two statements a delivery that deleted nothing
        gone = [i for i in self._retired if i not in self._vanished]
        if gone:
            for i in range(0, len(gone), 500):
                part = gone[i : i + 500]
                for table in (IncidentKeyRow, IncidentFingerprintRow):
                    self.s.execute(delete(table).where(table.incident_id.in_(part)), execution_options=_NO_SYNC)
        final: dict[str, str] = {}
        for old, new in self._moved:
            final[old] = new
            for k, v in final.items():
                if v == old:
                    final[k] = new
        by_target: dict[str, list[str]] = {}
        for old, new in final.items():
            by_target.setdefault(new, []).append(old)
        for new, olds in by_target.items():
            for i in range(0, len(olds), 500):
                part = olds[i : i + 500]
                moves = update(EventRow).where(EventRow.incident_id.in_(part)).values(incident_id=new)
                self.s.execute(moves, execution_options=_NO_SYNC)
        self._retired, self._moved, self._orphans = [], [], {}
        # NOTE: what this transaction created is written now: folded away later, it leaves its rows
        self._created, self._vanished = set(), set()

    def _write_fingerprints(self) -> None:
        """Insert the fingerprint rows added here and point those taken over at their incident.

        NOTE: before the retired incidents' rows are deleted: a row taken over from one of them is
        kept. Plain rows, not ORM objects: a storm's drain in Alertmanager's order reads thousands of
        them and changes few."""
        fresh, moved = [], []
        for r in (*self._fprows.values(), *self._orphans.values()):
            if r.stored is None and r.incident_id in self._vanished:
                continue  # NOTE: held by a fragment folded away here, and taken over by none
            if r.stored is None:
                fresh.append({"fingerprint": r.fingerprint, "incident_id": r.incident_id})
            elif r.stored != r.incident_id:
                moved.append({"fp": r.fingerprint, "owner": r.incident_id})
            r.stored = r.incident_id
        insert_rows(self.s.connection(), _table(IncidentFingerprintRow), fresh)
        if moved:
            self.s.connection().execute(_FP_MOVE, moved)

    def hold(self, ev: Event, until: datetime) -> None:
        self._held.lower(until)
        self.s.merge(HeldEventRow(fingerprint=ev.fingerprint, until=until, data=ev.to_json()))

    def release(self, fingerprint: str) -> None:
        self.flush()  # a hold earlier in this transaction must be in the table to be released
        self.s.execute(delete(HeldEventRow).where(HeldEventRow.fingerprint == fingerprint))

    def held_due(self, now: datetime) -> list[Event]:
        if not self._held.reached(now, lambda: self.s.scalar(select(func.min(HeldEventRow.until)))):
            return []
        self.flush()
        rows = list(self.s.scalars(select(HeldEventRow).where(HeldEventRow.until <= now)))
        held = [(r, Event.from_json(r.data)) for r in rows]
        held = [(r, e) for r, e in held if self._in_scope([e.resources.cluster] if e.resources.cluster else [])]
        for r, _ in held:
            self.s.delete(r)
        return [e for _, e in held]

    def merge_away(self, inc: Incident) -> None:
        self.save(inc, None)
        if inc.merged_into and inc.id in self._created:
            self._dirty.pop(inc.id, None)  # NOTE: a fragment leaves no row (below): nothing to serialise
        else:
            self._write(inc.id)
        self._drop(inc)
        row = None if inc.merged_into and inc.id in self._pending else self._row(inc.id)
        if row is not None:
            self._set(row, status="merged", board_rank=1)
        if not inc.merged_into:
            return
        moved = self._members_here.pop(inc.id, [])
        for eid in moved:
            self._recorded[eid] = inc.merged_into
            self._event_values[eid]["incident_id"] = inc.merged_into
        self._members_here.setdefault(inc.merged_into, []).extend(moved)
        if inc.id in self._created:
            # NOTE: opened and folded away within this transaction (a pod's fragment in a storm):
            # nobody was told of it, so it leaves no row, no index rows and no events to move.
            self._key_values.pop(inc.id, None)
            if self._pending.pop(inc.id, None) is None:
                row = self._rows.pop(inc.id)
                self._unflushed.pop(inc.id, None)
                if row.stored:  # flushed by a lifecycle query earlier in the transaction
                    self._deleted.append(inc.id)
            self._cache.pop(inc.id, None)
            self._created.discard(inc.id)
            self._vanished.add(inc.id)
            return
        self._moved.append((inc.id, inc.merged_into))

    def new_id(self, ev: Event) -> str:
        return incident_id_for(ev)


# Incidents this small have their fingerprint rows read together when one is folded away.
_FEW_MEMBERS = 20


def _in(session: Session, what: Any, column: Any, values: Iterable[str]) -> Iterator[Any]:
    """`what` (rows, a column, or a tuple of columns: tuples of values) where `column` is in `values`,
    a bounded number of values at a time."""
    values = sorted(values)
    if not values:
        return
    dialect = session.get_bind().dialect.name
    # NOTE: by identity: a column's == builds SQL, and the classes and columns live as long as we do
    key = (tuple(map(id, what)) if isinstance(what, tuple) else id(what), id(column), dialect)
    query = _LOOKUPS.get(key)
    if query is None:
        query = _LOOKUPS[key] = _lookup(what, column, dialect)
    run: Callable[..., Iterable[Any]] = session.execute if isinstance(what, tuple) else session.scalars
    for i in range(0, len(values), _IN_CHUNK):
        part = values[i : i + _IN_CHUNK]
        yield from run(query, {"values": part if dialect == "postgresql" else json.dumps(part)})


_LOOKUPS: dict[tuple[Any, int, str], Any] = {}


def _lookup(what: Any, column: Any, dialect: str) -> Any:
    """The statement of `_in`: `column` among the values of one bound parameter, "values". An IN
    list of one parameter per value is rendered and bound value by value on every execution (about
    7% of a storm's drain in py-spy's samples: docs/benchmarks.md, tenth pass). One parameter keeps
    the statement the same, compiled once (and built once, here: building it costs more than
    running it): a JSON array read by json_each on SQLite, an array on PostgreSQL."""
    query: Any
    if isinstance(what, tuple):
        query = select(*what)
    else:
        query = select(what)
    if dialect == "postgresql":
        return query.where(column == any_(bindparam("values", type_=ARRAY(String))))
    values = func.json_each(bindparam("values", type_=String)).table_valued("value")
    return query.where(column.in_(select(values.c.value)))


def _table(row: type[Any]) -> Table:
    return cast(Table, row.__table__)


@dataclass(slots=True)
class _Row:
    """An incident's row as a transaction holds it: whether the table has it yet, and the columns to
    write at the next flush. (Its version and live flag, read with it, only decide how its incident
    is loaded.)"""

    id: str
    stored: bool
    changed: dict[str, Any] = field(default_factory=dict)


# NOTE: a row is read without its state (the process's cache holds most incidents at their row's
# version) and without its snapshot (written for the board and API, never read by correlation).
_ROW_COLUMNS = (IncidentRow.id, IncidentRow.version, IncidentRow.live)
_STATE_COLUMNS = (IncidentRow.id, IncidentRow.state)
# NOTE: an incident's clusters, as its snapshot lists them (one at most, well under the list's cap)
_CLUSTER_COLUMNS = (IncidentRow.id, IncidentRow.snapshot["resources"]["clusters"])
_ONE_ROW = select(*_ROW_COLUMNS).where(IncidentRow.id == bindparam("id"))
# NOTE: this and the earliest due time go by the due_at index alone (retiring clears due_at, so only
# live incidents have one); filtering on `live` in SQL made them scan every live incident.
_DUE = select(*_ROW_COLUMNS).where(IncidentRow.due_at <= bindparam("now")).order_by(IncidentRow.due_at)
# NOTE: the SET clause is each execution's keys but `_id` (Core's executemany form of an UPDATE)
_ROW_UPDATE = update(_table(IncidentRow)).where(_table(IncidentRow).c.id == bindparam("_id"))


@dataclass(slots=True)
class _Fingerprint:
    """A fingerprint row as this transaction holds it: the incident holding it now, and the one
    the table says (None: not in the table yet). `finish` writes the difference."""

    fingerprint: str
    incident_id: str
    stored: str | None = None

    @classmethod
    def stored_as(cls, fingerprint: str, incident_id: str) -> _Fingerprint:
        """A row as read from the table."""
        return cls(fingerprint, incident_id, incident_id)


_FP_COLUMNS = (IncidentFingerprintRow.fingerprint, IncidentFingerprintRow.incident_id)
_FP_OWNER = select(IncidentFingerprintRow.incident_id).where(IncidentFingerprintRow.fingerprint == bindparam("fp"))
_FP_MOVE = (
    update(_table(IncidentFingerprintRow))
    .where(_table(IncidentFingerprintRow).c.fingerprint == bindparam("fp"))
    .values(incident_id=bindparam("owner"))
)


class _Earliest:
    """The earliest due time in a table, read once per transaction and lowered as the transaction
    schedules earlier ones (nothing else writes under the lock), so a check before it costs no query."""

    def __init__(self) -> None:
        self.known = False
        self.at: datetime | None = None

    def lower(self, when: datetime | None) -> None:
        if when is not None and self.known and (self.at is None or when < self.at):
            self.at = when

    def reached(self, now: datetime, earliest: Callable[[], datetime | None]) -> bool:
        if not self.known:
            self.at, self.known = _utc(earliest()), True
        if self.at is None or now < self.at:
            return False
        self.known = False  # what is left after this check is read again next time
        return True


def _utc(when: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were stored in UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def member_events(session: Session, incident_id: str) -> list[EventRow]:
    return list(
        session.scalars(select(EventRow).where(EventRow.incident_id == incident_id).order_by(EventRow.occurred_at))
    )


def remember(shared: IncidentCache | None, repo: SqlRepo) -> None:
    """After commit: what this transaction left is what the store has."""
    if shared is not None:
        shared.committed((i for i in repo._cache.values() if i.id not in repo.gone), repo.gone)


__all__ = ["EventClass", "IncidentCache", "SqlRepo", "locked_session", "member_events", "remember"]

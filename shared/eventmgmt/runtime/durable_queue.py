"""The embedded runtime's durable queue: what ingest accepted and correlation has not yet taken.

One SQLite (WAL) table, one row per delivery (a delivery larger than `part_events` is cut into
parts, a row each, written in the same transaction): its events as one JSON blob, under a sequence
number that only grows. Ingest answers 202 once that transaction has committed; the drainer
(`drain.py`) takes rows in sequence order and removes them once correlated, so it never holds more
than a part of a huge delivery. A separate file from the state store, so accepting never waits for
correlation's write lock."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsontext
from ..errors import BacklogFull
from ..ingest.queued import DELIVERIES
from ..transport import Outgoing
from ..transport.pipeline import RAW
from ..transport.publisher import EncodedMessage, batch_items
from .queue_counters import Counters, LocalCounters, SharedCounters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery INTEGER NOT NULL,
    topic TEXT NOT NULL,
    events INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    delivery INTEGER NOT NULL,
    topic TEXT NOT NULL,
    events INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    body BLOB NOT NULL,
    failed_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL
);
"""


# NOTE: the drain checkpoints the WAL after removing this many rows, or once the queue is empty, off
# the request path; the WAL is then written again from its start, and a sync of blocks already
# allocated costs about half of one that grows the file (measured on this ext4: 0.13 vs 0.29 ms).
# An append checkpoints only past APPEND_CHECKPOINT_PAGES (about 40 MB), when nothing drains.
CHECKPOINT_ROWS = 50
APPEND_CHECKPOINT_PAGES = 10_000
WAL_RESERVE_BYTES = 4 * 1024 * 1024
# NOTE: SQLite's synchronous modes for appends (EVENTMGMT_QUEUE_SYNC): a 202 that survives a power
# cut, or one that survives the process (kill -9, the OOM killer) but not the machine.
SYNC_MODES = ("full", "normal")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Delivery:
    """One row: a delivery, or a part of a large one (`delivery` is the sequence of its first row)."""

    seq: int
    delivery: int
    topic: str
    messages: list[Outgoing]
    events: int  # as counted when it was appended (a delivery queued as received: its good records)


def event_count(m: Outgoing) -> int:
    return len(batch_items(m.payload))


class DurableQueue:
    """Appends (request threads) and the drain's takes and removals use a connection each, their
    writes serialised by one lock; counters are kept in memory so the backlog is known without a
    query (queue_counters.py). Given `counters` (SharedCounters), this is the correlating process's
    view of a queue another process appends to: it takes and removes, and never appends."""

    def __init__(
        self, path: Path, part_events: int = 1000, sync: str = "full", counters: SharedCounters | None = None
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"queue sync {sync!r}: expected one of {', '.join(SYNC_MODES)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.part_events = part_events
        # NOTE: two connections. Appends (ingest's request threads) have their own, synchronous=FULL
        # by default: the WAL is synced on every commit, so a 202 survives a power cut, not only a
        # killed process (one fsync per delivery, not per event). Taking, removing and
        # checkpointing (the drain thread) use the other, synchronous=NORMAL: a removal lost to a
        # power cut only hands its rows on again, which correlation recognises, and the WAL frames
        # it wrote are synced by the next append anyway. Before, both shared one connection and
        # one lock, and a request waited for the drain's removal, its fsync and its checkpoints
        # (60% of a storm request's time on a busy machine, measured with py-spy).
        self._db = self._connect(sync.upper(), autocheckpoint=APPEND_CHECKPOINT_PAGES)
        self._drain_db = self._connect("NORMAL", autocheckpoint=0)
        self._db.executescript(_SCHEMA)
        # NOTE: writes from both connections are serialised here rather than by SQLite's busy
        # handler, which sleeps at least a millisecond when it meets the other's write lock.
        self._write = threading.Lock()
        self._read = threading.Lock()  # the drain connection: one statement sequence at a time
        self._removed_since_checkpoint = 0
        self.takes_only = counters is not None
        self.counters: Counters = counters if counters is not None else self._count()
        if not self.takes_only:
            self._reserve_wal()

    def _count(self) -> LocalCounters:
        rows, events, drained = self.counted()
        found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'").fetchone()
        last = int(found[0]) if found else 0
        dead = int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
        return LocalCounters(rows, events, last, drained if drained is not None else last, dead)

    def counted(self) -> tuple[int, int, int | None]:
        """Rows and events in the table, and the sequence number before its oldest row (None when
        it is empty), as stored."""
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(events), 0), MIN(seq) FROM deliveries").fetchone()
        return int(row[0]), int(row[1]), (int(row[2]) - 1 if row[2] is not None else None)

    def share(self, ctx: Any = None) -> SharedCounters:
        """From now on, count in memory another process can read and update (it drains)."""
        with self._write:
            shared = SharedCounters(self.counters, ctx)
            self.counters = shared
        return shared

    def resync(self) -> None:
        """The draining process is gone: count the table again (appends wait meanwhile)."""
        counters = self.counters
        if not isinstance(counters, SharedCounters):
            return
        with self._write:
            rows, events, drained = self.counted()
            counters.resync(rows, events, drained if drained is not None else counters.last)

    @property
    def refused(self) -> int:
        return self.counters.refused

    def _reserve_wal(self) -> None:
        """Grow the WAL file past WAL_RESERVE_BYTES once (the reserve row's insert and delete each
        write about that much), then let it be written again from its start:
        an append then overwrites blocks the file already has, and its sync does not also commit a
        change of the file's size (measured: a storm webhook answered 15% sooner)."""
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size >= WAL_RESERVE_BYTES:
            return
        with self._write:
            self._db.execute("CREATE TABLE IF NOT EXISTS wal_reserve (b BLOB)")
            self._db.execute("INSERT INTO wal_reserve VALUES (zeroblob(?))", (WAL_RESERVE_BYTES,))
            self._db.execute("DELETE FROM wal_reserve")
        self._checkpoint()

    def _connect(self, synchronous: str, autocheckpoint: int) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        return db

    # --- accepting ------------------------------------------------------------------------------
    def append(self, topic: str, messages: Sequence[Outgoing], bound: int = 0) -> int:
        """One delivery, in one transaction; its last sequence number once committed (durable)."""
        return self.append_encoded(
            topic,
            [
                EncodedMessage(
                    json.dumps(m.payload, separators=(",", ":")), m.attributes, m.ordering_key, event_count(m)
                )
                for m in messages
            ],
            bound,
        )

    def append_encoded(self, topic: str, messages: Sequence[EncodedMessage], bound: int = 0) -> int:
        """`append`, for messages whose payloads are JSON text already (ingest encodes events once,
        straight from the models). Nothing to append (a delivery whose events were all filtered)
        writes nothing."""
        if self.takes_only:
            raise RuntimeError("this process drains the queue; another appends to it")
        if not messages:
            return self.counters.last
        parts = self._parts(messages)
        now = time.time()
        with self._write:
            # NOTE: checked here, under the lock appends take, so deliveries arriving together cannot
            # all pass the bound; a delivery larger than the bound is taken when nothing waits.
            incoming = sum(events for _, events in parts)
            backlog = self.counters.events
            if bound > 0 and backlog > 0 and backlog + incoming > bound:
                self.counters.refuse()
                raise BacklogFull(backlog, bound)
            # NOTE: sequence numbers are given here (appends are serialised by this lock, and removals
            # never touch the newest row's number), so a delivery's rows name their first row
            # without a second statement.
            first = self.counters.last + 1
            rows = [(first + i, first, topic, events, now, body) for i, (body, events) in enumerate(parts)]
            insert = (
                "INSERT INTO deliveries (seq, delivery, topic, events, accepted_at, body) VALUES (?, ?, ?, ?, ?, ?)"
            )
            if len(rows) == 1:
                self._db.execute(insert, rows[0])  # NOTE: in autocommit, one statement is one transaction
            else:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(insert, rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            seq = first + len(rows) - 1
            self.counters.appended(seq, len(parts), incoming)
        return seq

    def _parts(self, messages: Sequence[EncodedMessage]) -> list[tuple[str, int]]:
        """Row bodies, with their event counts.

        NOTE: a row holds whole messages up to `part_events` events (a message holds at most
        BATCH_EVENTS): a 20,000-alert webhook becomes 20 rows, correlated one after the other, so
        what correlation holds at once stays bounded whatever the size of one delivery."""
        chunks: list[list[EncodedMessage]] = [[]]
        size = 0
        for m in messages:
            if chunks[-1] and size + m.events > self.part_events:
                chunks.append([])
                size = 0
            chunks[-1].append(m)
            size += m.events
        return [
            (
                "["
                + ",".join(f"[{m.payload},{_compact(m.attributes)},{_compact(m.ordering_key)}]" for m in chunk)
                + "]",
                sum(m.events for m in chunk),
            )
            for chunk in chunks
        ]

    # --- draining -------------------------------------------------------------------------------
    def take(self, max_events: int) -> list[Delivery]:
        """The oldest rows, in order, up to `max_events` events (always at least one row). A row that
        is not the JSON this queue writes can never be handed on: it is set aside in the dead-letter
        table at once, so it cannot stop the drain."""
        out: list[Delivery] = []
        unreadable: list[tuple[int, int, str]] = []
        total = 0
        with self._read:
            rows = self._drain_db.execute("SELECT seq, delivery, topic, events, body FROM deliveries ORDER BY seq")
            try:
                for seq, delivery, topic, events, body in rows:
                    if out and total + events > max_events:
                        break
                    try:
                        messages = [Outgoing(p, a, k) for p, a, k in jsontext.loads(body)]
                    except (ValueError, TypeError, RecursionError) as err:
                        if out:
                            break  # NOTE: set aside once it is the oldest, so the drained mark stays true
                        unreadable.append((seq, events, f"unreadable row: {type(err).__name__}: {err}"))
                        continue
                    out.append(Delivery(seq, delivery, topic, messages, events))
                    total += events
            finally:
                rows.close()
            for seq, events, error in unreadable:
                self._move_to_dead_letters(seq, events, 0, error)
        return out

    def remove(self, through: int) -> None:
        """Every delivery up to and including sequence `through` was handled."""
        with self._read, self._write:
            db = self._drain_db
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(events), 0) FROM deliveries WHERE seq <= ?", (through,)
            ).fetchone()
            db.execute("DELETE FROM deliveries WHERE seq <= ?", (through,))
        self.counters.removed(int(row[0]), int(row[1]), through)
        self._removed_since_checkpoint += int(row[0])
        if self._removed_since_checkpoint >= CHECKPOINT_ROWS or self.counters.rows <= 0:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database (PASSIVE: appends go on meanwhile), so the WAL file
        is reused instead of growing."""
        with self._read:
            self._drain_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._removed_since_checkpoint = 0

    def dead_letter(self, delivery: Delivery, attempts: int, error: str) -> None:
        """Move one delivery out of the way, in one transaction, keeping it for review."""
        with self._read:
            self._move_to_dead_letters(delivery.seq, delivery.events, attempts, error)

    def _move_to_dead_letters(self, seq: int, events: int, attempts: int, error: str) -> None:
        db = self._drain_db
        with self._write:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO dead_letters SELECT seq, delivery, topic, events, accepted_at, body, "
                    "?, ?, ? FROM deliveries WHERE seq = ?",
                    (time.time(), attempts, error[:2000], seq),
                )
                gone = db.execute("DELETE FROM deliveries WHERE seq = ?", (seq,)).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self.counters.dead_lettered(gone)
        self.counters.removed(gone, events if gone else 0, seq)

    # --- waiting and reporting ------------------------------------------------------------------
    def wait_for_work(self, timeout: float) -> bool:
        return self.counters.wait_for_work(timeout)

    def wait_drained(self, timeout: float, through: int | None = None) -> bool:
        """Wait until every delivery accepted so far (or up to `through`) has left the queue."""
        return self.counters.wait_drained(through, timeout)

    @property
    def backlog(self) -> int:
        """Events accepted and not yet drained."""
        return self.counters.events

    def stats(self) -> dict[str, Any]:
        with self._read:
            first = self._drain_db.execute("SELECT accepted_at FROM deliveries ORDER BY seq LIMIT 1").fetchone()
            oldest = first[0] if first else None
            deliveries = self._drain_db.execute("SELECT COUNT(DISTINCT delivery) FROM deliveries").fetchone()[0]
            c = self.counters
            return {
                "backlog_events": c.events,
                "backlog_deliveries": int(deliveries),
                "last_accepted_seq": c.last,
                "last_drained_seq": c.drained,
                "oldest_age_s": round(max(0.0, time.time() - oldest), 3) if oldest is not None else 0.0,
                "dead_letters": c.dead,
                "refused": c.refused,
            }

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._read:
            rows = self._drain_db.execute(
                "SELECT seq, delivery, topic, events, failed_at, attempts, error FROM dead_letters ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("seq", "delivery", "topic", "events", "failed_at", "attempts", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def shrink_memory(self) -> None:
        """Free both connections' page caches (a storm's deliveries pass through them)."""
        with self._read:
            self._drain_db.execute("PRAGMA shrink_memory")
        with self._write:
            self._db.execute("PRAGMA shrink_memory")

    def close(self) -> None:
        with self._read, self._write:
            self._drain_db.close()
            self._db.close()


class QueuedPublisher:
    """A Publisher whose messages on the queued topics are appended to the durable queue (one row
    per `publish_many` call: one delivery) instead of being handed on; other topics pass through."""

    def __init__(
        self, inner: Any, queue: DurableQueue, topics: frozenset[str] = frozenset({RAW}), max_backlog: int = 0
    ) -> None:
        self.inner = inner
        self.queue = queue
        self.topics = topics
        # NOTE: past it an append raises BacklogFull (ingest answers 503 with Retry-After)
        self.max_backlog = max_backlog

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        attributes: dict[str, str] | None = None,
        ordering_key: str | None = None,
    ) -> str:
        return self.publish_many(topic, [Outgoing(payload, attributes or {}, ordering_key)])[0]

    def publish_objects(
        self,
        topic: str,
        objects: list[Any],
        encode: Callable[[], Sequence[Outgoing]],
        encode_text: Callable[[], Sequence[EncodedMessage]] | None = None,
    ) -> None:
        if topic not in self.topics:
            self.inner.publish_objects(topic, objects, encode)
        elif encode_text is not None:
            self.queue.append_encoded(topic, encode_text(), self.max_backlog)
        else:
            self.queue.append(topic, encode(), self.max_backlog)

    def append_deliveries(self, messages: Sequence[EncodedMessage]) -> int:
        """Deliveries checked by ingest and queued as received (ingest/queued.py)."""
        return self.queue.append_encoded(DELIVERIES, messages, self.max_backlog)

    def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        if topic not in self.topics:
            return list(self.inner.publish_many(topic, messages))
        seq = self.queue.append(topic, messages, self.max_backlog)
        return [f"q{seq}.{i}" for i in range(len(messages))]

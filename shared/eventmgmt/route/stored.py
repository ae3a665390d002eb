"""Incidents as the state store has them, which is what route catches up from: what a receiver is
owed never lives only in a queue. Reads only; correlate writes these rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ..incident import IncidentSnapshot
from ..store.db import reader
from ..store.tables import IncidentRow

CHUNK = 200


class StoredIncidents:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reads = reader(engine)

    def versions(self, also: Iterable[str] = ()) -> dict[str, int]:
        """The version of every live incident (open, or resolved within its reopen window) and of the
        incidents `also` names; incidents no longer stored are left out."""
        with Session(self._reads) as s:
            query = select(IncidentRow.id, IncidentRow.version)
            found: dict[str, int] = {i: v for i, v in s.execute(query.where(IncidentRow.live.is_(True)))}
            rest = sorted(set(also) - found.keys())
            for start in range(0, len(rest), CHUNK):
                chunk = rest[start : start + CHUNK]
                found.update({i: v for i, v in s.execute(query.where(IncidentRow.id.in_(chunk)))})
            return found

    def snapshots(self, ids: Iterable[str]) -> Iterator[IncidentSnapshot]:
        """The stored snapshots of `ids`, oldest incident first within each chunk read."""
        wanted = sorted(ids)
        for start in range(0, len(wanted), CHUNK):
            with Session(self._reads) as s:
                query = select(IncidentRow.snapshot).where(IncidentRow.id.in_(wanted[start : start + CHUNK]))
                rows = list(s.scalars(query.order_by(IncidentRow.opened_at, IncidentRow.id)))
            for snapshot in rows:
                yield IncidentSnapshot.model_validate(snapshot)

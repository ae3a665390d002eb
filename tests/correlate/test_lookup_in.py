"""Correlation's lookups by a set of values (`sqlrepo._in`): one bound parameter per statement (a JSON
array on SQLite, an array on PostgreSQL) must find exactly what an IN list of the values finds, on
both databases, past one statement's worth of values, for rows, one column and tuples of columns,
and for values JSON must escape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from eventmgmt.correlate import sqlrepo
from eventmgmt.store.tables import IncidentFingerprintRow, IncidentKeyRow
from tests.support.pg import state_engine

# NOTE: quotes, backslashes, JSON's own syntax, non-ASCII and astral characters, a comma
ODD = ['pod:ns/a"b', "pod:ns/a\\b", 'model:ns/["x"]', "node:gpu-é", "pod:ns/🙂", "pod:ns/a,b", "deployment:ns/ "]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with state_engine(request.param, tmp_path) as e:
        yield e


def _stored(engine: Engine, n: int) -> list[str]:
    keys = [f"pod:triton/p-{i:05d}" for i in range(n)] + ODD
    with Session(engine) as s, s.begin():
        s.add_all(IncidentKeyRow(key=k, incident_id=f"inc-{i % 7}") for i, k in enumerate(keys))
        s.add_all(IncidentFingerprintRow(fingerprint=k[-40:], incident_id=f"inc-{i % 7}") for i, k in enumerate(keys))
    return keys


def test_finds_exactly_the_stored_values_past_one_statement(engine) -> None:
    keys = _stored(engine, sqlrepo._IN_CHUNK + 300)
    asked = set(keys[::2]) | set(ODD) | {"pod:triton/never", 'x"', ""}
    with Session(engine) as s:
        pairs = set(sqlrepo._in(s, (IncidentKeyRow.key, IncidentKeyRow.incident_id), IncidentKeyRow.key, asked))
        ids = list(sqlrepo._in(s, IncidentKeyRow.incident_id, IncidentKeyRow.key, asked))
        rows = list(sqlrepo._in(s, IncidentFingerprintRow, IncidentFingerprintRow.fingerprint, ODD))
    want = {(k, f"inc-{i % 7}") for i, k in enumerate(keys) if k in asked}
    assert {(k, i) for k, i in pairs} == want
    assert sorted(ids) == sorted(i for _, i in want)
    assert sorted(r.fingerprint for r in rows) == sorted(k[-40:] for k in ODD)


def test_nothing_asked_runs_no_statement(engine) -> None:
    _stored(engine, 3)
    with Session(engine) as s:
        assert list(sqlrepo._in(s, IncidentKeyRow, IncidentKeyRow.key, [])) == []
        assert not s.in_transaction()  # NOTE: no query began one


def test_one_statement_per_shape_built_once(engine) -> None:
    """The statements are built once and reused (building one cost more than running it)."""
    _stored(engine, 3)
    with Session(engine) as s:
        list(sqlrepo._in(s, (IncidentKeyRow.key, IncidentKeyRow.incident_id), IncidentKeyRow.key, ODD))
        size = len(sqlrepo._LOOKUPS)
        found = list(sqlrepo._in(s, (IncidentKeyRow.key, IncidentKeyRow.incident_id), IncidentKeyRow.key, ODD[:2]))
    assert len(sqlrepo._LOOKUPS) == size
    assert sorted(k for k, _ in found) == sorted(ODD[:2])

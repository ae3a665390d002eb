"""A throwaway PostgreSQL schema on the machine's server (127.0.0.1:5432, trust auth, database test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_URL = os.environ.get("EVENTMGMT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """Yields a URL whose connections use a fresh schema; drops it afterwards. Skips without a server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as err:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {err.__class__.__name__}")
    try:
        yield schema_url(schema)
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

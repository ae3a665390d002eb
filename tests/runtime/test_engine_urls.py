"""Database URLs as operators write them."""

from __future__ import annotations

import pytest

from eventmgmt.store import make_engine


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_usual_spelling_of_a_postgresql_url_uses_psycopg(scheme: str) -> None:
    engine = make_engine(f"{scheme}://eventmgmt:secret@127.0.0.1:5432/test")
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert engine.url.database == "test" and engine.url.username == "eventmgmt"
    finally:
        engine.dispose()

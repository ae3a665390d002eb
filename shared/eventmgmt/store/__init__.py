"""State in SQLAlchemy: SQLite by default, PostgreSQL in production."""

from .db import Base, ensure_schema, make_engine, reader

__all__ = ["Base", "ensure_schema", "make_engine", "reader"]

"""The embedded runtime: every stage in one process, SQLite state, a local archive, one HTTP port."""

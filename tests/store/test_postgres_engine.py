"""What `make_engine` sets on PostgreSQL connections: the URL's own options kept, and a plan made
for each run of a statement (psycopg prepares a statement on its fifth run)."""

from __future__ import annotations

from sqlalchemy import bindparam, column, select, table, text

from eventmgmt.store import make_engine
from tests.support.pg import pg_schema


def test_the_urls_search_path_is_kept_beside_custom_plans():
    with pg_schema() as url:
        engine = make_engine(url)
        try:
            with engine.connect() as c:
                schema = url.rsplit("%3D", 1)[1]
                assert c.execute(text("SHOW search_path")).scalar() == schema
                assert c.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        finally:
            engine.dispose()


def test_a_lookup_run_many_times_is_planned_for_each_array():
    """NOTE: a generic plan, made while the table was small, scanned it for every run: each of a
    storm's key lookups read the whole index table."""
    with pg_schema() as url:
        engine = make_engine(url)
        try:
            with engine.begin() as c:
                c.execute(text("CREATE TABLE keys (key varchar(600) PRIMARY KEY, incident_id varchar(40))"))
            keys = table("keys", column("key"), column("incident_id"))
            lookup = select(keys.c.incident_id).where(keys.c.key == bindparam("k", expanding=False).any_())
            with engine.begin() as c:
                for n in range(12):
                    c.execute(text("INSERT INTO keys VALUES (:k, 'i')"), {"k": f"pod:{n}"})
                    assert c.execute(lookup, {"k": [f"pod:{n}", "pod:none"]}).all() == [("i",)]
                plans = c.execute(
                    text("SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements")
                ).one()
            assert plans[1] >= 12 - 5, plans  # the lookup was prepared, so the setting is what decides
            assert plans[0] == 0, plans
        finally:
            engine.dispose()

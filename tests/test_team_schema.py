"""Schema 10 (team work): an older project gains the adjudications and merge_conflicts tables on open, on each
back end."""

from __future__ import annotations

from sqlalchemy import inspect, select

from conftest import run_sql
from sp_realist import schema as S
from sp_realist.store import MIGRATIONS, Project, _migrate_to_10


def test_a_schema_7_project_gains_the_team_tables_and_keeps_its_data(new_location):
    from sp_realist.cmoc import add_cmoc

    path = new_location()
    with Project.create(path) as p:
        add_cmoc(p, "C1", context="Busy surgeries", outcome="Late starts")
    run_sql(path, *[f"DROP TABLE {t.name}" for t in reversed(S.TEAM_TABLES)],
            "UPDATE meta SET value='7' WHERE key='schema_version'")
    with Project.open(path) as p, p.connect() as conn:
        assert p.schema_version == S.SCHEMA_VERSION >= 10
        assert {"adjudications", "merge_conflicts"} <= set(inspect(conn).get_table_names())
        assert conn.execute(select(S.cmocs.c.key, S.cmocs.c.context)).all() == [("C1", "Busy surgeries")]


def test_migration_10_is_registered_and_skips_tables_that_exist(project):
    assert next(v for v, f in MIGRATIONS.items() if f is _migrate_to_10) == 9
    with project.begin() as conn:
        _migrate_to_10(conn)  # the tables exist already (0 -> 1 creates the current schema)
        assert "merge_conflicts" in inspect(conn).get_table_names()

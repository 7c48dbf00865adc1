"""Schema 8 on PostgreSQL 15: a schema-7 store (codes.name UNIQUE project-wide) migrates to names unique among
siblings (the constraint dropped, the expression index created), keeping every row.  Runs on the tests' throwaway
PostgreSQL cluster (tests/pg_cluster.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, inspect, select, text

from sp_realist import schema as S


@pytest.fixture
def pg_url(pg_fresh):
    """A new, empty database on this worker's cluster (dropped after the test)."""
    return pg_fresh.empty()


def test_a_version_7_store_on_postgresql_migrates_to_sibling_unique_names(pg_url):
    from sp_realist.coding import add_code
    from sp_realist.coding.codebook import codebook_tree
    from sp_realist.errors import SpRealistError
    from sp_realist.store import Project

    with Project.create(pg_url) as p:
        add_code(p, "Barriers")
        add_code(p, "other", parent="Barriers")
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # back to schema 7: UNIQUE (name) project-wide, no sibling index or excerpt columns
        conn.execute(text("DROP INDEX uq_codes_sibling_name"))
        conn.execute(text("ALTER TABLE codes ADD CONSTRAINT codes_name_key UNIQUE (name)"))
        conn.execute(text("ALTER TABLE excerpts DROP COLUMN guid"))
        conn.execute(text("ALTER TABLE excerpts DROP COLUMN dated"))
        conn.execute(text("UPDATE meta SET value='7' WHERE key='schema_version'"))
        before = conn.execute(select(S.codes).order_by(S.codes.c.id)).all()
    with Project.open(pg_url) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            assert conn.execute(select(S.codes).order_by(S.codes.c.id)).all() == before
            assert not [u for u in inspect(conn).get_unique_constraints("codes") if u["column_names"] == ["name"]]
            assert {"guid", "dated"} <= {c["name"] for c in inspect(conn).get_columns("excerpts")}
        add_code(p, "other")  # the same name at the top level is another code now
        assert list(codebook_tree(p)["path"]) == ["Barriers", "Barriers/other", "other"]
        with pytest.raises(SpRealistError, match="already exists at the top level"):
            add_code(p, "other")
        with pytest.raises(Exception), p.begin() as conn:  # the index itself refuses siblings of one name
            conn.execute(insert(S.codes).values(name="other", parent_id=None, ord=9, created_at="x"))
    engine.dispose()

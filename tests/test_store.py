"""The project store: creation, opening, migrations, transactions, discovery."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import insert, inspect, select

from sp_realist import schema as S
from sp_realist.errors import ProjectError, SpRealistError
from sp_realist.sources import Segment, SourceDraft, add_source, resolve_source
from sp_realist.store import Project, find_project

from conftest import column_names
from conftest import engine_for
from conftest import run_sql as downgrade


def test_create_and_reopen(new_location):
    path = new_location()
    Project.create(path).close()
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
    with pytest.raises(ProjectError, match="already exists|already holds an sp_realist project"):
        Project.create(path)


def _schema_shape(location) -> dict:
    """Everything a store's schema is made of, as the database's own catalogue has it: each table's DDL and
    each index's (SQLite), or each column, constraint and index definition (PostgreSQL)."""
    engine = engine_for(location)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return {name: sql for name, sql in conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
            shape = {}
            for table, column, kind, nullable, default in conn.exec_driver_sql(
                    "SELECT table_name, column_name, data_type || coalesce('(' || character_maximum_length || ')', "
                    "''), is_nullable, column_default FROM information_schema.columns "
                    "WHERE table_schema = current_schema()"):
                shape[f"{table}.{column}"] = (kind, nullable, default)
            for name, definition in conn.exec_driver_sql(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE connamespace = current_schema()::regnamespace"):
                shape[f"constraint {name}"] = definition
            for name, definition in conn.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"):
                shape[f"index {name}"] = definition
            for name, definition in conn.exec_driver_sql(
                    "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"):
                shape[f"trigger {name}"] = definition
            return shape
    finally:
        engine.dispose()


def test_a_new_project_has_the_schema_the_migrations_give(new_location):
    """``Project.create`` makes the current schema in one pass; a store brought up from version 0 by every
    migration in turn has exactly the same tables, columns, constraints, indexes and triggers, and the same
    version."""
    fresh, migrated = new_location(), new_location()
    Project.create(fresh).close()
    engine = engine_for(migrated)  # a version-0 store: the meta table alone, empty
    S.meta.create(engine)
    engine.dispose()
    with Project.open(migrated) as p:
        assert p.schema_version == S.SCHEMA_VERSION
    with Project.open(fresh) as p:
        assert p.schema_version == S.SCHEMA_VERSION
    assert _schema_shape(fresh) == _schema_shape(migrated)


def test_a_savepoint_undoes_only_its_own_writes_and_the_transaction_goes_on(project):
    """An error inside ``Project.savepoint`` -- a refusal raised in Python, or the database's own unique
    violation, which on PostgreSQL aborts the transaction until the savepoint is rolled back -- undoes what was
    written inside it; what came before and after in the same transaction is committed; savepoints nest."""
    meta = S.meta

    def keys() -> set[str]:
        with project.connect() as conn:
            return {k for (k,) in conn.execute(select(meta.c.key)) if k.startswith("t:")}

    with project.begin() as conn:
        conn.execute(insert(meta).values(key="t:before", value="1"))
        with pytest.raises(SpRealistError, match="refused"):
            with project.savepoint(conn):
                conn.execute(insert(meta).values(key="t:refused", value="1"))
                raise SpRealistError("refused")
        with pytest.raises(ProjectError, match="at the same moment"):
            with project.savepoint(conn):
                conn.execute(insert(meta).values(key="t:inside", value="1"))
                conn.execute(insert(meta).values(key="t:before", value="2"))  # the unique key again
        with project.savepoint(conn):
            conn.execute(insert(meta).values(key="t:outer", value="1"))
            with pytest.raises(SpRealistError):
                with project.savepoint(conn):
                    conn.execute(insert(meta).values(key="t:nested", value="1"))
                    raise SpRealistError("nested")
        conn.execute(insert(meta).values(key="t:after", value="1"))
    assert keys() == {"t:before", "t:outer", "t:after"}


def test_foreign_keys_are_enforced(project):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with project.begin() as conn:
            conn.execute(insert(S.segments).values(source_id=12345, ord=0, start=0, end=1))


@pytest.mark.sqlite_only  # SQLite's connection pragmas
def test_foreign_keys_and_wal_are_on(project):
    with project.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"


@pytest.mark.sqlite_only("an older project file; migrations on PostgreSQL are tested in test_store_postgres.py")
def test_migrates_an_old_store_on_open(tmp_path):
    # A version-0 file: an SQLite database with only an empty meta table.
    path = tmp_path / "old.sprealist"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key VARCHAR(100) PRIMARY KEY, value TEXT NOT NULL)")
    con.commit()
    con.close()
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            assert conn.execute(select(S.sources)).all() == []


def test_migrates_a_version_1_store_keeping_its_data(new_location):
    """Schema 1 had no sources.file_path: opening such a file adds the column (NULL for old
    sources, which ingest then matches by base name) and its index, and keeps every row."""
    path = new_location()
    with Project.create(path) as p, p.begin() as conn:
        text = "Interviewer: Hello.\nP1: Hi.\n"
        add_source(conn, SourceDraft(name="s1", kind="interview", text=text, checksum="abc", file_name="s1.txt",
                                     segments=[Segment(0, 20, kind="turn"), Segment(20, len(text), kind="turn")]))
    # strip schema 2 back to schema 1 (SQLite >= 3.35 drops columns)
    downgrade(path, "DROP INDEX ix_sources_file_path", "ALTER TABLE sources DROP COLUMN file_path",
              "UPDATE meta SET value='1' WHERE key='schema_version'")
    assert "file_path" not in column_names(path, "sources")
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            cols = {c["name"] for c in inspect(conn).get_columns("sources")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("sources")}
            row = conn.execute(select(S.sources)).mappings().one()
            n_segments = len(conn.execute(select(S.segments)).all())
    assert "file_path" in cols and "ix_sources_file_path" in indexes
    with Project.open(path) as p, p.connect() as conn:
        assert "orphans" in inspect(conn).get_table_names()  # schema 3
    assert (row["name"], row["file_name"], row["file_path"], row["checksum"]) == ("s1", "s1.txt", None, "abc")
    assert n_segments == 2
    # opening again is a no-op (already at the current version)
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION


def test_migrates_a_store_without_cmoc_ifthen_keeping_its_data(new_location):
    """The schema before cmocs.ifthen (a CMOC's own if/then wording) had no such column: opening such a
    file adds it, NULL for every CMOC (the template words them as before), and keeps every row.  The
    migration is found by its function, so the test survives renumbering."""
    from sp_realist.cmoc import add_cmoc, add_theory, edit_cmoc, ifthen_statements
    from sp_realist.store import MIGRATIONS, _migrate_to_5

    before_version = next(v for v, f in MIGRATIONS.items() if f is _migrate_to_5)
    path = new_location()
    with Project.create(path) as p:
        add_theory(p, "T1", "Referral")
        add_cmoc(p, "T1.1", theory="T1", context="Lack of induction", mechanism_response="Confusion",
                 outcome=["Communication issues", "No safety procedures"], status="complete", memo="S1 DK1")
        with p.connect() as conn:
            before = {r["key"]: dict(r) for r in conn.execute(select(S.cmocs)).mappings()}
            n_members = len(conn.execute(select(S.theory_cmocs)).all())
    # the older shape: cmocs without the ifthen column, meta at the version before the migration
    downgrade(path, "ALTER TABLE cmocs DROP COLUMN ifthen",
              f"UPDATE meta SET value='{before_version}' WHERE key='schema_version'")
    assert "ifthen" not in column_names(path, "cmocs")
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION > before_version
        with p.connect() as conn:
            after = {r["key"]: dict(r) for r in conn.execute(select(S.cmocs)).mappings()}
            assert len(conn.execute(select(S.theory_cmocs)).all()) == n_members
        assert after == before and after["T1.1"]["ifthen"] is None
        assert ifthen_statements(p)["statement"][0] == (
            "If there is lack of induction then this leads to confusion, resulting in communication issues and "
            "no safety procedures.")
        edit_cmoc(p, "T1.1", ifthen="Without an induction, link workers are confused.")
        assert ifthen_statements(p)["statement"][0] == "Without an induction, link workers are confused."
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION


def test_a_version_2_store_migrates_to_the_current_schema_with_cmoc_ifthen(new_location):
    """A version-2 file (before the orphans, summary-of-findings and ifthen changes): every later
    migration runs on open, creating what is missing, and the CMOCs keep their data."""
    from sp_realist.cmoc import add_cmoc

    path = new_location()
    with Project.create(path) as p:
        add_cmoc(p, "C1", context="Busy surgeries", outcome="Late starts")
    added_later = [S.orphans.name] + [t.name for t in S.FINDINGS_TABLES]  # schemas 3 and 4
    downgrade(path, *[f"DROP TABLE {t}" for t in reversed(added_later)], "ALTER TABLE cmocs DROP COLUMN ifthen",
              "UPDATE meta SET value='2' WHERE key='schema_version'")
    with Project.open(path) as p, p.connect() as conn:
        assert p.schema_version == S.SCHEMA_VERSION
        assert set(added_later) <= set(inspect(conn).get_table_names())
        row = conn.execute(select(S.cmocs)).mappings().one()
    assert (row["key"], row["context"], row["outcome"], row["ifthen"]) == ("C1", "Busy surgeries", "Late starts", None)


def test_migration_adding_cmoc_ifthen_skips_a_column_that_is_already_there(project):
    from sp_realist.store import _migrate_to_5

    with project.begin() as conn:
        _migrate_to_5(conn)
        assert [c["name"] for c in inspect(conn).get_columns("cmocs")].count("ifthen") == 1


def test_migration_to_2_skips_a_column_that_is_already_there(project):
    """Migration 0 -> 1 creates the current tables (file_path included): 1 -> 2 must not add it twice."""
    from sp_realist.store import MIGRATIONS

    with project.begin() as conn:
        MIGRATIONS[1](conn)
        assert [c["name"] for c in inspect(conn).get_columns("sources")].count("file_path") == 1


def test_refuses_newer_schema(project_target):
    path = project_target
    downgrade(path, "UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(ProjectError, match="newer sp_realist"):
        Project.open(path)


@pytest.mark.sqlite_only("project files in folders")
def test_refuses_non_project_files(tmp_path):
    bogus = tmp_path / "x.sprealist"
    bogus.write_text("hello")
    with pytest.raises(ProjectError, match="not an sp_realist project"):
        Project.open(bogus)
    with pytest.raises(ProjectError, match="No project file"):
        Project.open(tmp_path / "missing.sprealist")


def test_transaction_rolls_back_on_error(project):
    text = "Hello there."
    draft = SourceDraft(name="s1", kind="interview", text=text, segments=[Segment(0, len(text))], checksum="x")
    with pytest.raises(RuntimeError):
        with project.begin() as conn:
            add_source(conn, draft)
            raise RuntimeError("boom")
    with project.connect() as conn:
        assert conn.execute(select(S.sources)).all() == []


def test_add_source_checks_segments_tile_the_text(project):
    draft = SourceDraft(name="s", kind="diary", text="abcdef", segments=[Segment(0, 3)], checksum="x")
    with pytest.raises(SpRealistError, match="end at 3"):
        with project.begin() as conn:
            add_source(conn, draft)
    with project.connect() as conn:
        assert conn.execute(select(S.sources)).all() == []


def test_add_and_resolve_source(project):
    text = "What?\nA thing happened.\n"
    draft = SourceDraft(name="S1 DK1 entry 1", kind="diary", text=text, checksum="c",
                        segments=[Segment(0, 6, kind="heading"), Segment(6, len(text), section="What?")],
                        participant_code="S1 DK1", attributes={"site": "S1"})
    with project.begin() as conn:
        sid = add_source(conn, draft)
    with project.connect() as conn:
        row = resolve_source(conn, "S1 DK1 entry 1")
        assert row["id"] == sid
        assert resolve_source(conn, str(sid))["name"] == "S1 DK1 entry 1"
        segs = conn.execute(select(S.segments).order_by(S.segments.c.ord)).mappings().all()
        assert "".join(text[s["start"]:s["end"]] for s in segs) == text


def test_find_project(tmp_path, monkeypatch):
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    with pytest.raises(ProjectError, match="No project given"):
        find_project(None, cwd=tmp_path)
    (tmp_path / "one.sprealist").write_bytes(b"")
    assert find_project(None, cwd=tmp_path).endswith("one.sprealist")
    (tmp_path / "two.sprealist").write_bytes(b"")
    with pytest.raises(ProjectError, match="Several project files"):
        find_project(None, cwd=tmp_path)
    monkeypatch.setenv("SP_REALIST_PROJECT", "env.sprealist")
    assert find_project(None, cwd=tmp_path) == "env.sprealist"
    assert find_project("explicit.sprealist", cwd=tmp_path) == "explicit.sprealist"


def test_cli_init_and_info(runner, cli, tmp_path, new_location):
    path = new_location()
    r = runner.invoke(cli, ["init", str(path)])
    assert r.exit_code == 0, r.output
    assert "Created project" in r.stderr
    r = runner.invoke(cli, ["info", "-p", str(path), "--format", "json"])
    assert r.exit_code == 0
    assert '"schema_version"' in r.stdout
    r = runner.invoke(cli, ["init", str(path)])
    assert r.exit_code == 1
    assert ("already exists" in r.stderr or "already holds an sp_realist project" in r.stderr)
    assert "Traceback" not in r.output
    r = runner.invoke(cli, ["info", "--format", "nonsense", "-p", str(path)])
    assert r.exit_code == 2
    # an --output that cannot be written: one sentence naming it, exit 1, no traceback
    bad = tmp_path / "missing-folder" / "info.csv"
    for fmt in ("csv", "table"):
        r = runner.invoke(cli, ["info", "-p", str(path), "--format", fmt, "--output", str(bad)])
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert r.exit_code == 1 and f"Error: {bad}: No such file or directory" in " ".join(r.stderr.split())
        assert "Traceback" not in r.output and not r.stdout


@pytest.mark.sqlite_only("project files in folders")
def test_project_discovery_from_the_environment_and_the_folder(runner, cli, tmp_path, monkeypatch):
    """SP_REALIST_PROJECT, then the single *.sprealist in the current folder; --project wins over both."""
    one, two = tmp_path / "a" / "one.sprealist", tmp_path / "b" / "two.sprealist"
    one.parent.mkdir()
    two.parent.mkdir()
    for p in (one, two):
        assert runner.invoke(cli, ["init", str(p)]).exit_code == 0
    monkeypatch.chdir(one.parent)
    r = runner.invoke(cli, ["info", "--format", "json"], env={"SP_REALIST_PROJECT": None})
    assert r.exit_code == 0 and str(one) in r.stdout
    r = runner.invoke(cli, ["info", "--format", "json"], env={"SP_REALIST_PROJECT": str(two)})
    assert r.exit_code == 0 and str(two) in r.stdout
    r = runner.invoke(cli, ["info", "--format", "json", "-p", str(one)], env={"SP_REALIST_PROJECT": str(two)})
    assert r.exit_code == 0 and str(one) in r.stdout
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["info"], env={"SP_REALIST_PROJECT": None})
    assert r.exit_code == 1 and "SP_REALIST_PROJECT" in r.stderr and not r.stdout


def test_locate_quote():
    from sp_realist.sources import locate_quote

    text = "I wasn't told what clients\nI was seeing. Then more."
    assert locate_quote(text, "Then more") == (text.index("Then"), len(text) - 1)
    s, e = locate_quote(text, "told what clients I was seeing")
    assert text[s:e] == "told what clients\nI was seeing"
    with pytest.raises(SpRealistError, match="not in the text"):
        locate_quote(text, "absent words")
    with pytest.raises(SpRealistError, match="more than once"):
        locate_quote("ab ab", "ab")


def test_public_api_exports_the_workflow_functions():
    import sp_realist

    for name in sp_realist.__all__:
        assert callable(getattr(sp_realist, name)) or name == "__version__", name
    with pytest.raises(AttributeError):
        sp_realist.no_such_function  # noqa: B018


def _as_schema_7(path) -> None:
    """Turn a current project file back into schema 7's shape: ``codes.name`` UNIQUE project-wide (the
    table as schema 7 created it) and no sibling index; every row kept."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys=OFF")
    sql = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='codes'").fetchone()[0]
    assert "UNIQUE" not in sql
    con.execute("DROP INDEX uq_codes_sibling_name")
    con.execute("ALTER TABLE excerpts DROP COLUMN guid")
    con.execute("ALTER TABLE excerpts DROP COLUMN dated")
    assert "PRIMARY KEY (id), \n\tFOREIGN KEY(parent_id)" in sql
    con.execute(sql.replace("CREATE TABLE codes (", "CREATE TABLE codes7 (", 1).replace(  # as schema 7 wrote it
        "PRIMARY KEY (id), ", "PRIMARY KEY (id), \n\tUNIQUE (name), ", 1))
    con.execute("INSERT INTO codes7 SELECT * FROM codes")
    con.execute("DROP TABLE codes")
    con.execute("ALTER TABLE codes7 RENAME TO codes")
    con.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    con.commit()
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()


@pytest.mark.sqlite_only("an older project file; migrations on PostgreSQL are tested in test_store_postgres.py")
def test_a_version_7_store_migrates_to_sibling_unique_code_names_keeping_everything(tmp_path):
    """Schema 8 drops the project-wide UNIQUE on code names (SQLite rebuilds the table with foreign keys
    off, so no coding, rule, theme link or memo cascades away) and adds the sibling index; ids are kept."""
    from sp_realist.coding import add_code, add_coding, add_memo, add_rule, add_theme, list_codings
    from sp_realist.coding.codebook import codebook_tree
    from sp_realist.store import MIGRATIONS, _migrate_to_8

    assert next(v for v, f in MIGRATIONS.items() if f is _migrate_to_8) == 7
    path = tmp_path / "v7.sprealist"
    with Project.create(path) as p:
        with p.begin() as conn:
            add_source(conn, SourceDraft(name="s1", kind="diary", text="The forms were missing again.",
                                         checksum="c", segments=[Segment(0, 29, kind="paragraph")]))
        add_code(p, "Paperwork")
        add_code(p, "Forms", parent="Paperwork")
        add_coding(p, "Forms", "s1", span=(4, 9), coder="RA")
        add_rule(p, "Forms", "forms", keywords=["forms"])
        add_theme(p, "Admin", codes=["Paperwork"])
        add_memo(p, "Mostly GP forms.", on="code", target="Forms")
        with p.connect() as conn:
            before = {t.name: conn.execute(select(t)).all()
                      for t in (S.codes, S.codings, S.code_rules, S.theme_codes, S.memos)}
    _as_schema_7(path)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):  # schema 7 refuses a second "Forms" anywhere
        con.execute("INSERT INTO codes (name, parent_id, ord, created_at) VALUES ('Forms', NULL, 9, 'x')")
    con.close()
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            assert {t.name: conn.execute(select(t)).all()
                    for t in (S.codes, S.codings, S.code_rules, S.theme_codes, S.memos)} == before
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'uq_codes_sibling_name'").scalar()
            assert sql == "CREATE UNIQUE INDEX uq_codes_sibling_name ON codes (coalesce(parent_id, 0), name)"
            assert "UNIQUE" not in conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'codes'").scalar()
            assert {"guid", "dated"} <= {c["name"] for c in inspect(conn).get_columns("excerpts")}
        add_code(p, "Forms")  # the same name at the top level is now another code
        assert list(codebook_tree(p)["path"]) == ["Paperwork", "Paperwork/Forms", "Forms"]
        assert len(list_codings(p, code="Paperwork/Forms")) == 1
        with pytest.raises(Exception), p.begin() as conn:  # siblings still may not share a name
            conn.execute(insert(S.codes).values(name="Forms", parent_id=None, ord=5, created_at="x"))
    with Project.open(path) as p:  # opening again is a no-op
        assert p.schema_version == S.SCHEMA_VERSION


@pytest.mark.sqlite_only("an older project file; migrations on PostgreSQL are tested in test_store_postgres.py")
def test_migration_8_rolls_back_whole_and_leaves_foreign_keys_on(tmp_path, monkeypatch):
    """A failing upgrade changes nothing (DDL included: the SQLite upgrade runs in one explicit
    transaction) and the connection gets its foreign keys back."""
    import sp_realist.store as store
    from sp_realist.coding import add_code

    path = tmp_path / "v7.sprealist"
    with Project.create(path) as p:
        add_code(p, "Paperwork")
    _as_schema_7(path)

    def broken(conn):
        store._migrate_to_8(conn)
        raise ProjectError("stop after the rebuild")

    monkeypatch.setitem(store.MIGRATIONS, 7, broken)
    with pytest.raises(ProjectError, match="stop after"):
        Project.open(path)
    con = sqlite3.connect(path)
    assert "UNIQUE" in con.execute("SELECT sql FROM sqlite_master WHERE name='codes'").fetchone()[0]
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "7"
    assert con.execute("SELECT name FROM codes").fetchall() == [("Paperwork",)]
    assert con.execute("SELECT name FROM sqlite_master WHERE name LIKE '%rebuilt%'").fetchall() == []
    con.close()
    monkeypatch.undo()
    with Project.open(path) as p, p.connect() as conn:
        assert p.schema_version == S.SCHEMA_VERSION
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("per", [3, 4000])
def test_insert_rows_writes_many_rows_per_statement_and_skips_stored_keys(project, monkeypatch, per):
    """``store.insert_rows`` (SQLite: multi-row VALUES, at most 32,766 parameters; PostgreSQL: unnest of one
    array per column) stores every row once, chunk boundaries included, with NULLs, and with ``conflict``
    skips a row whose key is stored (another writer's) and says how many it inserted."""
    from sp_realist import store

    monkeypatch.setattr(store, "ROWS_PER_STATEMENT", per)
    with project.begin() as conn:
        sid = conn.execute(insert(S.sources).values(name="s", kind="interview", checksum="c", text="x" * 100,
                                                    created_at="t", ingest_order=1)).inserted_primary_key[0]
        cid = conn.execute(insert(S.codes).values(name="A", ord=1, created_at="t")).inserted_primary_key[0]
        cols = ("code_id", "source_id", "start", "end", "coder", "origin", "memo", "created_at")
        rows = [(cid, sid, i, i + 1, "ana", "manual", None if i % 2 else f"memo {i}", "t") for i in range(10)]
        assert store.insert_rows(conn, S.codings, cols, rows[:4]) == 4
        key = ("code_id", "source_id", "start", "end", "coder")
        assert store.insert_rows(conn, S.codings, cols, rows, conflict=key) == 6  # the first four are stored
    with project.connect() as conn:
        got = conn.execute(select(S.codings.c.start, S.codings.c.memo).order_by(S.codings.c.start)).all()
    assert got == [(i, None if i % 2 else f"memo {i}") for i in range(10)]

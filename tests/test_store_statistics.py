"""After bulk writes on PostgreSQL the written tables are analyzed (``Project.refresh_statistics``), so the next
query is planned for what they hold, not for empty tables (autovacuum gets to it only a minute or more later);
nothing is analyzed below ``ANALYZE_AFTER_ROWS`` rows, and nothing at all on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.store import ANALYZE_AFTER_ROWS, Project


def _analyzed(project: Project, table: str) -> bool:
    """Whether the database holds planner statistics for ``table`` (PostgreSQL's pg_stats; SQLite's
    sqlite_stat1, which only ANALYZE makes)."""
    with project.connect() as conn:
        if project.is_file:
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is None:
                return False
            return conn.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = ?", (table,)).first() is not None
        return conn.exec_driver_sql("SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = "
                                    "%(t)s", {"t": table}).first() is not None


def _no_autovacuum(project: Project, *tables: str) -> None:
    """Keep the server's own autovacuum off these tables, so only sp_realist can have analyzed them."""
    if not project.is_file:
        with project.begin() as conn:
            for table in tables:
                conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")


def _codings(project: Project, folder, n: int, first: int = 0) -> None:
    """``n`` codings of a new code, by bulk insert, on a new document ingested from ``folder``."""
    from sp_realist.coding import add_code
    from sp_realist.coding.codings import insert_coding_tuples
    from sp_realist.ingest import ingest_paths

    path = folder / f"doc{first}.txt"
    path.write_text("word " * (n + first + 1), encoding="utf-8")
    assert ingest_paths(project, [path], kind="document").ok
    with project.connect() as conn:
        sid = conn.execute(select(S.sources.c.id).where(S.sources.c.name == path.stem)).scalar_one()
    code = add_code(project, f"Code {first}")
    with project.begin() as conn:
        insert_coding_tuples(conn, [(code, sid, 5 * i, 5 * i + 4, "ann", None, None, None, None, None, None)
                                    for i in range(first, first + n)])


@pytest.mark.parametrize("rows", [ANALYZE_AFTER_ROWS - 1, ANALYZE_AFTER_ROWS])
def test_bulk_codings_are_analyzed_on_postgresql_from_the_threshold(project, backend, rows, tmp_path):
    _no_autovacuum(project, "codings")
    _codings(project, tmp_path, rows)
    assert not _analyzed(project, "codings")
    project.refresh_statistics()
    assert _analyzed(project, "codings") == (backend == "postgresql" and rows >= ANALYZE_AFTER_ROWS)
    with project.connect() as conn:  # the rows are all there either way
        assert len(conn.execute(select(S.codings.c.id)).all()) == rows


def test_rows_written_in_several_bulk_writes_add_up_and_close_refreshes(project_target, backend, tmp_path):
    half = ANALYZE_AFTER_ROWS // 2 + 1
    project = Project.open(project_target)
    _no_autovacuum(project, "codings")
    _codings(project, tmp_path, half)
    _codings(project, tmp_path, half, first=half)
    assert not _analyzed(project, "codings")
    project.close()  # refreshes what the project's bulk writes left due
    with Project.open(project_target) as again:
        assert _analyzed(again, "codings") == (backend == "postgresql")


def test_ingest_analyzes_the_segments_it_wrote(project, backend, tmp_path):
    from sp_realist.ingest import ingest_paths

    _no_autovacuum(project, "segments", "sources")
    turns = ANALYZE_AFTER_ROWS + 10
    path = tmp_path / "long.txt"
    path.write_text("".join(f"{'Interviewer' if i % 2 else 'S1 LW1'}: turn {i}.\n" for i in range(turns)),
                    encoding="utf-8")
    report = ingest_paths(project, [path])
    assert report.ok
    with project.connect() as conn:
        assert len(conn.execute(select(S.segments.c.id)).all()) == turns
    assert _analyzed(project, "segments") == (backend == "postgresql")


def test_an_analyze_the_server_refuses_fails_nothing(project, backend, tmp_path):
    """Statistics only help the planner: when the server refuses ANALYZE (here the table is not there under
    its name at that moment), the bulk write stands and the refresh is quiet; the count is spent, so closing
    does not try again."""
    _no_autovacuum(project, "codings")
    _codings(project, tmp_path, ANALYZE_AFTER_ROWS)
    with project.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE codings RENAME TO codings_aside")
    project.refresh_statistics()  # ANALYZE "codings" fails on PostgreSQL: no error
    with project.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE codings_aside RENAME TO codings")
    assert not _analyzed(project, "codings")
    with project.connect() as conn:
        assert len(conn.execute(select(S.codings.c.id)).all()) == ANALYZE_AFTER_ROWS
    project.refresh_statistics()  # nothing due any more
    assert not _analyzed(project, "codings")

"""Projects on a PostgreSQL server (a throwaway cluster, tests/pg_cluster.py): masked locations, ``init`` on a
database that holds a project, anonymise's clean-up (``VACUUM FULL``), ``build --into URL`` (the shipped corpus
gives the same outputs as the file build), and the fixture's own rule (skip locally, fail under CI=true)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from sqlalchemy import String, Text, create_engine, inspect, select, text

from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.report.study import build_study
from sp_realist.store import Project, display_location

HERE = Path(__file__).parent
MINI = HERE / "data" / "mini_study"
CORPUS = HERE.parent / "corpora" / "mind-cymru-2020"
SECRET = "Sup3r-s3cret"


def with_password(url: str) -> str:
    """The same URL with a password (the test cluster trusts its socket, so any password is accepted)."""
    return url.replace("sp_realist@", f"sp_realist:{SECRET}@", 1)


# -- locations never show a password ---------------------------------------------------------------------------

def test_display_location_drops_the_password():
    assert display_location("postgresql+psycopg://alice:pw@db.example.org:5432/evaluation") == \
        "postgresql+psycopg://alice@db.example.org:5432/evaluation"
    assert display_location("postgresql+psycopg://alice@host/db?password=pw&sslmode=require") == \
        "postgresql+psycopg://alice@host/db?sslmode=require"
    assert display_location("postgresql+psycopg://al%40ice:p%40ss@host/db") == "postgresql+psycopg://al%40ice@host/db"
    assert display_location("evaluation.sprealist") == "evaluation.sprealist"


def test_no_command_shows_the_password(runner, cli, pg_fresh, tmp_path):
    url = with_password(pg_fresh.empty())
    seen = []

    def run(*args, code=0):
        r = runner.invoke(cli, list(args))
        seen.append(r.stdout + r.stderr)
        assert r.exit_code == code, r.output
        assert "Traceback" not in r.stderr
        return r

    run("init", url)
    (tmp_path / "d.txt").write_text("What?\nThe front desk kept the forms.\n", encoding="utf-8")
    run("ingest", str(tmp_path / "d.txt"), "--kind", "diary", "--participant", "S1 DK1", "-p", url)
    info = run("info", "-p", url, "--format", "json")
    location = dict((row["item"], row["value"]) for row in json.loads(info.stdout))["location"]
    assert location.startswith("postgresql+psycopg://sp_realist@/")
    run("init", url, code=1)  # the database holds a project
    run("sources", "show", "no such source", "-p", url, code=1)
    run("anonymise", "--reverse", "--key", str(tmp_path / "missing.yaml"), "-p", url, code=1)
    run("export", "qdpx", str(tmp_path / "p.qdpx"), "-p", url)
    run("report", "--to", "md", str(tmp_path / "r.md"), "-p", url)
    for out in seen:
        assert SECRET not in out
    with zipfile.ZipFile(tmp_path / "p.qdpx") as z:
        qde = z.read("project.qde").decode("utf-8")
    assert SECRET not in qde and 'name="t_' in qde  # the project is named after its database
    assert SECRET not in (tmp_path / "r.md").read_text(encoding="utf-8")
    with Project.open(url) as p, p.connect() as conn:
        assert p.location == display_location(url) and SECRET not in repr(p)
        for table in S.metadata.sorted_tables:  # nothing stored the URL: audit log, settings, anything
            for row in conn.execute(select(table)):
                assert SECRET not in " ".join(map(str, row)), table.name


def test_a_server_that_refuses_is_one_sentence_without_the_password(runner, cli, pg_fresh):
    url = with_password(pg_fresh.empty()).replace("/t_", "/no_such_database_", 1)
    for args in (["info", "-p", url], ["init", url]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 1, r.output
        assert SECRET not in r.stderr and "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: postgresql+psycopg://sp_realist@/no_such_database_")
        assert "does not exist" in lines[0]


# -- init on a database that is not empty ----------------------------------------------------------------------

def test_init_on_a_database_holding_a_project_is_one_sentence(runner, cli, pg_fresh):
    url = pg_fresh.project()
    r = runner.invoke(cli, ["init", url])
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"Error: {display_location(url)} already holds an sp_realist project; open it with --project, or give an "
        "empty database to create a new one."]


def test_init_on_a_database_with_other_tables_is_refused(runner, cli, pg_fresh):
    url = pg_fresh.empty()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE payroll (id int)")
    engine.dispose()
    r = runner.invoke(cli, ["init", url])
    assert r.exit_code == 1 and "already has tables of its own" in r.stderr and "Traceback" not in r.stderr
    engine = create_engine(url)
    with engine.connect() as conn:  # nothing was added beside them
        assert inspect(conn).get_table_names() == ["payroll"]
    engine.dispose()


# -- anonymise leaves no original in the tables or their files -------------------------------------------------

NAME = "Gwendolyn Pryderi-Vaughan"
KEY = f"entries:\n  - {{original: {NAME}, replacement: S1 DK1, name_parts: true}}\n"


def text_columns():
    return [(t, c) for t in S.metadata.sorted_tables for c in t.columns if isinstance(c.type, (String, Text))]


def test_anonymise_on_postgres_leaves_no_original_in_any_table_or_table_file(runner, cli, pg_cluster, pg_fresh,
                                                                             tmp_path):
    url = pg_fresh.project()
    key = tmp_path / "key.yaml"
    key.write_text(KEY, encoding="utf-8")
    (tmp_path / "diary.txt").write_text(f"What?\n{NAME} rang the surgery twice about the forms.\n\nSo what?\n"
                                        f"{NAME} felt the referral had been lost.\n", encoding="utf-8")
    for args in (["ingest", str(tmp_path / "diary.txt"), "--kind", "diary", "--participant", "S1 DK1"],
                 ["memo", "add", f"Call {NAME} back on Monday"],
                 ["anonymise", "--key", str(key), "--irreversible"]):
        r = runner.invoke(cli, [*args, "-p", url])
        assert r.exit_code == 0, r.output
    engine = create_engine(url)
    surname = NAME.split()[-1]
    with engine.connect() as conn:
        for table, column in text_columns():  # every text column of every table
            hits = conn.execute(select(column).where(column.contains(surname))).all()
            assert hits == [], f"{table.name}.{column.name}"
        assert conn.execute(select(S.sources.c.text)).scalar_one().count("S1 DK1") == 2
        files = [r[0] for r in conn.execute(text(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') "
            "AND pg_relation_filepath(c.oid) IS NOT NULL"))]
        db_folder = conn.execute(text(
            "SELECT 'base/' || oid FROM pg_database WHERE datname = current_database()")).scalar_one()
    engine.dispose()
    assert files
    needle = surname.encode("utf-8")
    for rel in files:  # the table, TOAST and index files themselves, every segment
        for path in (pg_cluster.data / rel).parent.glob(Path(rel).name + "*"):
            assert needle not in path.read_bytes(), rel
    for path in (pg_cluster.data / db_folder).iterdir():  # nor any other file of the database (old ones are gone)
        if path.is_file():
            assert needle not in path.read_bytes(), path.name


def test_compact_rewrites_the_tables_outside_a_transaction(pg_fresh):
    """VACUUM FULL writes a table into a new file (a new filenode): its old row versions are gone with the old one."""
    def filenodes(p):
        with p.connect() as conn:
            return {t: conn.execute(text("SELECT pg_relation_filenode(:t)"), {"t": t}).scalar()
                    for t in ("meta", "sources", "memos")}

    with Project.open(pg_fresh.project()) as p:
        with p.begin() as conn:
            p._set_meta(conn, "note", "x" * 50)
            p._set_meta(conn, "note", "y" * 50)  # an old row version now lingers
        before = filenodes(p)
        p.compact(["meta"])  # only the named table
        after = filenodes(p)
        assert after["meta"] != before["meta"] and after["sources"] == before["sources"]
        p.compact()  # every project table
        assert all(filenodes(p)[t] != after[t] for t in after)


# -- build --into URL --------------------------------------------------------------------------------------------

def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".sprealist" not in p.name}


def ifthen_lines(runner, cli, project: str) -> str:
    r = runner.invoke(cli, ["ifthen", "-p", project, "--format", "csv"])
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "study.yaml").is_file(), reason="the Mind Cymru corpus is not in this checkout")
def test_the_shipped_corpus_built_into_postgres_gives_the_same_outputs(runner, cli, corpus_build, pg_fresh,
                                                                       tmp_path):
    url = pg_fresh.empty()
    out = tmp_path / "out"
    r = runner.invoke(cli, ["build", str(CORPUS), "--out", str(out), "--into", with_password(url)])
    assert r.exit_code == 0, r.output
    assert SECRET not in r.stderr
    assert f"Built{display_location(url)}" in "".join(r.stderr.split())  # the console wraps long lines anywhere
    assert not (out / "mind-cymru.sprealist").exists()  # the project is on the server
    on_file, on_server = outputs(corpus_build), outputs(out)
    assert on_server.keys() == on_file.keys()
    assert on_server["report.md"] == on_file["report.md"]
    tables = [k for k in on_file if k.startswith("tables/")]
    assert len(tables) > 20
    assert [k for k in tables if on_server[k] != on_file[k]] == []
    assert [k for k in on_file if k.endswith((".html", ".svg", ".graphml")) and on_server[k] != on_file[k]] == []
    assert ifthen_lines(runner, cli, url) == ifthen_lines(runner, cli, str(corpus_build / "mind-cymru.sprealist"))
    with Project.open(url) as p:
        assert p.get_setting("build")["outputs"] == sorted(on_file)


def public_tables(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        schemas = sorted(inspect(conn).get_schema_names())
    engine.dispose()
    assert not [s for s in schemas if s.startswith("sp_realist_building_")]  # no staging schema left
    return names


def test_build_into_postgres_rebuilds_and_refuses_what_it_did_not_make(runner, cli, pg_fresh, tmp_path):
    url = pg_fresh.empty()
    out = tmp_path / "out"
    for _ in range(2):  # the second build replaces the first
        r = runner.invoke(cli, ["build", str(MINI), "--out", str(out), "--into", url])
        assert r.exit_code == 0, r.output
    assert public_tables(url) == sorted(S.metadata.tables)
    with Project.open(url) as p, p.connect() as conn:
        assert [r[0] for r in conn.execute(select(S.theories.c.key).order_by(S.theories.c.key))] == ["T1", "T2"]
        assert conn.execute(select(S.audit_log.c.id).where(S.audit_log.c.action == "build.start")).all() != []
        # the digest triggers were made again where the tables are (their functions in the project's schema,
        # once each, searching it) and work
        names = ", ".join(f"'{f}'" for f in S.PG_DIGEST_FUNCTIONS.values())
        assert sorted(conn.exec_driver_sql(
            "SELECT f.proname, n.nspname, f.proconfig FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace "
            f"WHERE f.proname IN ({names})").all()) == sorted(
                (f, "public", ['search_path=public, pg_temp']) for f in S.PG_DIGEST_FUNCTIONS.values())
        first = conn.execute(select(S.codings.c.id, S.codings.c.source_id).order_by(S.codings.c.id)).first()
    from sp_realist.coding import digests
    from sp_realist.coding.retrieval import frequencies

    with Project.open(url) as p:
        frequencies(p)
        with p.connect() as conn:
            assert digests.complete(conn, "tallies")
        with p.begin() as conn:
            conn.execute(S.codings.delete().where(S.codings.c.id == first[0]))
        with p.connect() as conn:
            assert digests.stale_sources(conn, "tallies") == [first[1]]
    assert (out / "report.md").is_file() and not list(out.glob(".*"))
    other = pg_fresh.project()  # a project nobody built
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(tmp_path / "o2"), "--into", other])
    assert r.exit_code == 1 and "not made by 'sp-realist build'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o2").exists()
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(tmp_path / "o3"), "--into", str(tmp_path / "x.db")])
    assert r.exit_code == 1 and "not a database URL" in r.stderr
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(tmp_path / "o3"), "--into", "sqlite:///x.db"])
    assert r.exit_code == 1 and "needs a PostgreSQL database" in r.stderr
    assert not (tmp_path / "o3").exists()


@pytest.mark.parametrize("before", ["empty", "previous build"])
def test_a_failing_build_into_postgres_leaves_the_database_as_it_was(runner, cli, pg_fresh, tmp_path, before):
    url = pg_fresh.empty()
    if before == "previous build":
        build_study(MINI, tmp_path / "first", into=url)
    tables = public_tables(url)
    study = tmp_path / "study"
    import shutil

    shutil.copytree(MINI, study)
    (study / "templates").mkdir()
    (study / "templates" / "report.md.j2").write_text("{% for t in r.theories %}\n{{ t.key }\n{% endfor %}\n",
                                                      encoding="utf-8")  # fails after the project is made
    r = runner.invoke(cli, ["build", str(study), "--out", str(tmp_path / "out"), "--into", url])
    assert r.exit_code == 1 and "report.md.j2" in r.stderr and "Traceback" not in r.stderr
    assert public_tables(url) == tables
    assert not (tmp_path / "out").exists()
    if before == "previous build":
        with Project.open(url) as p, p.connect() as conn:
            assert p.get_setting("build")["outputs"]
            assert conn.execute(select(S.theories.c.key)).all() != []


def test_a_failure_while_moving_the_outputs_rolls_the_database_swap_back(pg_fresh, tmp_path, monkeypatch):
    from sp_realist.report import study as study_module

    url = pg_fresh.empty()

    def fail(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(study_module, "_install", fail)
    with pytest.raises(SpRealistError, match="No space left on device"):
        build_study(MINI, tmp_path / "out", into=url)
    assert public_tables(url) == []


# -- the fixture: skipped where PostgreSQL cannot run, a failure under CI=true ----------------------------------

PROBE = """
def test_needs_the_server(pg_cluster):
    assert pg_cluster.started
"""


@pytest.mark.parametrize("ci", ["", "true"])
def test_no_postgres_skips_locally_and_fails_in_ci(tmp_path, ci):
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    for name in ("conftest.py", "pg_cluster.py"):
        (tmp_path / name).write_bytes((HERE / name).read_bytes())
    env = dict(os.environ, CI=ci, SP_REALIST_PG_BINDIR=str(tmp_path / "no-such-folder"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-rsf", str(tmp_path / "test_probe.py")], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    if ci:
        assert done.returncode == 1, done.stdout
        assert "PostgreSQL cannot run and CI=true" in done.stdout and "1 error" in done.stdout
    else:
        assert done.returncode == 0, done.stdout
        assert "1 skipped" in done.stdout and "PostgreSQL cannot run here" in done.stdout

"""Shared fixtures: a fresh project in a temporary folder, a CLI runner, the corpus built once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sp_realist.store import Project


@pytest.fixture(autouse=True)
def _own_user_config(tmp_path_factory, monkeypatch):
    """Every test reads and writes its own per-user config folder (``sp-realist config``), never the real one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "test.sprealist"
    Project.create(path).close()
    return path


@pytest.fixture
def project(project_path):
    p = Project.open(project_path)
    yield p
    p.close()


@pytest.fixture
def runner():
    # Click >= 8.2 keeps stdout and stderr apart in results (result.stdout / result.stderr).
    return CliRunner()


@pytest.fixture
def cli():
    from sp_realist.cli import main

    return main


def _build_corpus(out) -> None:
    from sp_realist.cli import main

    corpus = Path(__file__).resolve().parents[1] / "corpora" / "mind-cymru-2020"
    result = CliRunner().invoke(main, ["build", str(corpus), "--out", str(out)])
    assert result.exit_code == 0, result.stderr or result.output


@pytest.fixture(scope="session")
def corpus_build(tmp_path_factory, request):
    """The shipped Mind Cymru corpus built once through the CLI (``sp-realist build``) for the whole
    session, shared by the pytest-xdist workers: the first one builds, the others wait for it.
    Tests must only read it."""
    if not hasattr(request.config, "workerinput"):  # not a pytest-xdist worker
        out = tmp_path_factory.mktemp("mind-cymru-build")
        _build_corpus(out)
        return out
    root = tmp_path_factory.getbasetemp().parent  # shared by this run's workers
    out, lock, done, failed = (root / "mind-cymru-build", root / "mind-cymru-build.lock",
                               root / "mind-cymru-build.done", root / "mind-cymru-build.failed")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another worker builds it
        deadline = time.monotonic() + 900
        while not done.exists():
            if failed.exists():
                pytest.fail(f"building the corpus failed in another worker: {failed.read_text(encoding='utf-8')}")
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for another worker to build the corpus")
            time.sleep(0.2)
        return out
    try:
        _build_corpus(out)
    except BaseException as exc:
        failed.write_text(str(exc) or type(exc).__name__, encoding="utf-8")
        raise
    done.write_text("ok", encoding="utf-8")
    return out


# --- project_target (pg-writes; SQLite-only stand-in) -------------------------------------------------------
# The pg-server branch provides the real `project_target`, parametrised over SQLite and a throwaway PostgreSQL
# server; on merge the lead keeps theirs and drops this block.  Until then: a fresh empty SQLite project, and,
# when SP_REALIST_TEST_PG_ADMIN_URL names a PostgreSQL server (its maintenance database, e.g.
# "postgresql+psycopg://nobody@/postgres?host=/var/tmp/pgw/sock"), also a fresh database on it per test.
_PG_ADMIN_URL = os.environ.get("SP_REALIST_TEST_PG_ADMIN_URL")


@pytest.fixture(params=["sqlite"] + (["postgresql"] if _PG_ADMIN_URL else []))
def project_target(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "t.sprealist"
        Project.create(path).close()
        yield str(path)
        return
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"spr_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(_PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    Project.create(url).close()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()

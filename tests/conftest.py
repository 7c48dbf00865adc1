"""Shared fixtures: a fresh project in a temporary folder, a CLI runner, the corpus built once."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sp_realist.store import Project


@pytest.fixture(autouse=True)
def _own_user_config(tmp_path_factory, monkeypatch):
    """Every test reads and writes its own per-user config folder (``sp-realist config``), never the real one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only(reason): a test that runs on SQLite only, with the reason: it "
                                       "is about the project *file* (paths, copying the file, VACUUM, an older "
                                       "file's migration), or its subject is not the store (drawing, page layout, "
                                       "template sandboxing, archive checks) and what it reads from the store is "
                                       "tested on both back ends elsewhere")


@pytest.fixture(autouse=True)
def _store_tests_run_on_both_backends(request, monkeypatch):
    """Issue 16's rule, enforced: a test that opens or creates a project file must run on both back ends (use
    ``backend`` or a fixture built on it: ``project``, ``project_path``, ``project_target``, ``new_location``,
    ``place``, ``new_project``, ``built_copy``) or say why not with ``@pytest.mark.sqlite_only(reason)``. Tests
    of PostgreSQL itself (the ``pg_*`` fixtures) may compare with a file. Projects made by module- or
    session-scoped fixtures are not seen here; the test's own opens are."""
    if ("backend" in request.fixturenames or request.node.get_closest_marker("sqlite_only")
            or {"pg_cluster", "pg_databases", "pg_fresh"} & set(request.fixturenames)):  # about PostgreSQL itself
        yield
        return
    opened: list[str] = []
    for name in ("open", "create"):
        real = getattr(Project, name).__func__

        def spy(cls, target, *args, _real=real, **kwargs):
            if "://" not in str(target):
                opened.append(str(target))
            return _real(cls, target, *args, **kwargs)

        monkeypatch.setattr(Project, name, classmethod(spy))
    yield
    if opened:
        pytest.fail(f"{request.node.nodeid} opens the project file {opened[0]} but runs on SQLite only: use the "
                    "`backend` fixtures (conftest.py) so it runs on PostgreSQL too, or mark it "
                    "@pytest.mark.sqlite_only(reason)", pytrace=False)


def pytest_generate_tests(metafunc):
    """Every test that uses a project (``backend``, ``project_target``, ``project_path``, ``project``) runs on
    both back ends, unless it is marked ``sqlite_only``."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only else list(BACKENDS), indirect=True)


def examples(backend: str, n: int) -> int:
    """How many generated examples a Hypothesis round trip draws on ``backend``: ``n`` on SQLite, a tenth (at
    least 2) on PostgreSQL, where every example makes its own databases (the suite's time budget); the explicit
    ``@example`` cases run on both. Use it on a property defined inside the test::

        def test_round_trip(backend, new_location):
            @settings(max_examples=examples(backend, 25), deadline=None)
            @given(doc=documents())
            def check(doc): ...
            check()
    """
    return n if backend == "sqlite" else max(2, n // 10)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def pg_cluster():
    """This worker's throwaway PostgreSQL cluster (see tests/pg_cluster.py), stopped at session end.
    Where PostgreSQL cannot run, tests that need it are skipped -- or fail when CI=true."""
    from pg_cluster import Cluster, PostgresUnavailable

    try:
        cluster = Cluster()
    except PostgresUnavailable as exc:
        if _in_ci():
            pytest.fail(f"PostgreSQL cannot run and CI=true: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_databases(pg_cluster):
    from pg_cluster import Databases

    dbs = Databases(pg_cluster)
    yield dbs
    dbs.close()


@pytest.fixture
def pg_fresh(pg_databases):
    """The databases this test makes; all dropped after it."""
    yield pg_databases
    pg_databases.drop_all()


@pytest.fixture
def backend(request):
    """``"sqlite"`` or ``"postgresql"`` (parametrised by pytest_generate_tests)."""
    return request.param


@pytest.fixture
def new_location(backend, tmp_path, request):
    """A factory: each call gives a new place where no project is yet -- a file path in the test's folder
    (SQLite) or the URL of a new, empty database (PostgreSQL); for ``init`` and ``Project.create``."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_fresh").empty
    counter = iter(range(1, 10_000))

    def make() -> str:
        n = next(counter)
        return str(tmp_path / ("project.sprealist" if n == 1 else f"project-{n}.sprealist"))

    return make


@pytest.fixture
def place(backend, tmp_path, request):
    """``place(name)``: where this test's project called ``name`` lives, not created yet -- ``tmp_path /
    "NAME.sprealist"`` as a str (SQLite) or a new, empty database's URL (PostgreSQL); the same for the same name."""
    made: dict[str, str] = {}

    def where(name: str) -> str:
        if name not in made:
            made[name] = (request.getfixturevalue("pg_fresh").empty() if backend == "postgresql"
                          else str(tmp_path / f"{name}.sprealist"))
        return made[name]

    return where


def engine_for(location):
    """A plain SQLAlchemy engine on a project's file or database (for tests that reshape a store)."""
    from sqlalchemy import create_engine

    location = str(location)
    return create_engine(location if "://" in location else f"sqlite:///{location}")


def run_sql(location, *statements: str) -> None:
    """Run SQL on a project, file or database, in one transaction (e.g. to give it an older schema's shape)."""
    engine = engine_for(location)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def column_names(location, table: str) -> list[str]:
    from sqlalchemy import inspect

    engine = engine_for(location)
    try:
        with engine.connect() as conn:
            return [c["name"] for c in inspect(conn).get_columns(table)]
    finally:
        engine.dispose()


def stored_bytes(location) -> bytes:
    """Every byte a project keeps on disk: the SQLite file with its -wal and -shm, or (PostgreSQL, after a
    ``CHECKPOINT`` so the files hold what the server has in memory) every file of the project's database folder
    in the cluster's data directory -- tables, TOAST tables, indexes, free-space maps. (The server's write-ahead
    log is not the project's; see docs/privacy.md.)"""
    location = str(location)
    if "://" not in location:
        return b"".join(p.read_bytes() for p in (Path(location), Path(f"{location}-wal"), Path(f"{location}-shm"))
                        if p.exists())
    engine = engine_for(location)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("CHECKPOINT")
            data = conn.exec_driver_sql("SHOW data_directory").scalar()
            oid = conn.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
    finally:
        engine.dispose()
    folder = Path(data) / "base" / str(oid)
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def project_exists(location) -> bool:
    """Whether a project is at ``location`` (a file, or a database holding the meta table)."""
    location = str(location)
    if "://" not in location:
        return Path(location).exists()
    from sqlalchemy import create_engine, inspect

    engine = create_engine(location)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def new_project(backend, tmp_path, request):
    """A factory: each call creates another fresh, empty project and gives its location (str)."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_fresh").project
    counter = iter(range(1, 10_000))

    def make() -> str:
        path = tmp_path / f"new-{next(counter)}.sprealist"
        Project.create(path).close()
        return str(path)

    return make


@pytest.fixture(scope="session")
def _originals():
    return {}


@pytest.fixture
def built_copy(backend, tmp_path, tmp_path_factory, request, _originals):
    """``built_copy(make)``: the location (str) of a fresh copy of the project that ``make(location)`` builds at
    an empty location; ``make`` runs once per session and back end, each call copies its project (a file copy on
    SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL). For tests that each need the same populated project."""
    def copy(make) -> str:
        key = (make, backend)
        if key not in _originals:
            if backend == "postgresql":
                _originals[key] = request.getfixturevalue("pg_databases").kept(make)
            else:
                path = str(tmp_path_factory.mktemp("original") / "original.sprealist")
                make(path)
                _originals[key] = path
        if backend == "postgresql":
            return request.getfixturevalue("pg_fresh").copy(_originals[key])
        target = tmp_path / f"copy-{len(list(tmp_path.glob('copy-*.sprealist'))) + 1}.sprealist"
        shutil.copyfile(_originals[key], target)
        return str(target)

    return copy


@pytest.fixture
def populated_path(built_copy):
    """A copy of the project ``report_data.populate`` fills (diaries, interviews, codes, themes, CMOCs,
    theories, appraisals), on each back end: its location. Built once per session and back end."""
    from report_data import populated_project

    return built_copy(populated_project)


@pytest.fixture
def populated(populated_path):
    """The same, open."""
    with Project.open(populated_path) as project:
        yield project


@pytest.fixture
def project_path(backend, tmp_path, request):
    """A fresh, empty project: its file (a Path, SQLite) or its URL (a str, PostgreSQL)."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_fresh").project()
    path = tmp_path / "test.sprealist"
    Project.create(path).close()
    return path


@pytest.fixture
def project_target(project_path):
    """A fresh, empty project's location as a str: a file path (SQLite) or a URL (PostgreSQL), e.g. for
    ``-p project_target`` on the command line."""
    return str(project_path)


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

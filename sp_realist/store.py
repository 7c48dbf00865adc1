"""The project store: one SQLite file by default, any SQLAlchemy URL later.

>>> from sp_realist.store import Project
>>> project = Project.create("evaluation.sprealist")        # doctest: +SKIP
>>> with project.begin() as conn:                             # doctest: +SKIP
...     conn.execute(...)

All multi-row writes go through :meth:`Project.begin`, one transaction that
commits on success and rolls back on any exception, so a failed command leaves
nothing half-written.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.schema import CreateColumn

from . import schema as S
from .errors import ProjectError

PROJECT_SUFFIX = ".sprealist"
ENV_PROJECT = "SP_REALIST_PROJECT"

# Namespace for deterministic GUIDs (REFI-QDA needs GUIDs; they must be stable
# across exports of an unchanged project).
GUID_NAMESPACE = uuid.UUID("6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b")


def now() -> str:
    """The current time as an ISO-8601 UTC string (seconds precision)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def stable_guid(*parts: Any) -> str:
    """A deterministic GUID built from ``parts`` (uuid5)."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def _is_url(target: str) -> bool:
    return "://" in target


def display_location(target: str | os.PathLike) -> str:
    """Where a project is, as every message, listing, report and export shows it: a file path as given, a
    database URL without its password (``postgresql+psycopg://alice@host/db``). The one place a location is
    masked; nothing shows a URL any other way."""
    target = str(target)
    if not _is_url(target):
        return target
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(target)
    except (ArgumentError, ValueError):
        return target.split("://", 1)[0] + "://(unreadable URL)"
    query = {k: v for k, v in url.query.items() if k.lower() not in ("password", "passfile", "sslpassword")}
    return url._replace(password=None).set(query=query).render_as_string(hide_password=False)


def _migrate_to_1(conn: Connection) -> None:
    # Creates the *current* tables, so later migrations must skip what is already there.
    S.metadata.create_all(conn)


def _add_column(conn: Connection, column) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a nullable column without a default, compiled for the dialect
    (SQLite and PostgreSQL both take it); nothing if the column is already there."""
    table = column.table
    if column.name not in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        spec = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD COLUMN {spec}"))


def _migrate_to_2(conn: Connection) -> None:
    """Schema 2: ``sources.file_path`` (the ingested file's absolute path) and its index.

    Existing sources keep ``file_path`` NULL; ingest then matches them by base
    name, as before.
    """
    _add_column(conn, S.sources.c.file_path)
    index = next(i for i in S.sources.indexes if i.name == "ix_sources_file_path")
    index.create(conn, checkfirst=True)


def _migrate_to_3(conn: Connection) -> None:
    """Schema 3: the ``orphans`` table (codings and excerpts a corrected transcript could not keep)."""
    S.orphans.create(conn, checkfirst=True)
    for index in S.orphans.indexes:
        index.create(conn, checkfirst=True)


def _migrate_to_4(conn: Connection) -> None:
    """Schema 4: the summary-of-findings tables (``sp_realist.cmoc.findings``), nothing else.

    Self-contained: creates only those tables, each if it does not exist yet (a store made by
    migration 0 -> 1 of this version already has them).
    """
    S.metadata.create_all(conn, tables=list(S.FINDINGS_TABLES), checkfirst=True)


def _migrate_to_5(conn: Connection) -> None:
    """Schema 5: ``cmocs.ifthen``, a CMOC's own if/then wording (NULL: the template words it)."""
    _add_column(conn, S.cmocs.c.ifthen)


def _migrate_to_6(conn: Connection) -> None:
    """Schema 6 (REFI-QDA kept whole): ``codes.codable``, ``codings.selection_guid`` and ``codings.dated``
    (NULL in existing rows: codable, no selection GUID, dated), and the ``users``, ``source_sets`` and
    ``source_set_members`` tables, each only if it is not there yet."""
    for column in (S.codes.c.codable, S.codings.c.selection_guid, S.codings.c.dated):
        _add_column(conn, column)
    S.metadata.create_all(conn, tables=list(S.EXCHANGE_TABLES), checkfirst=True)


def _migrate_to_7(conn: Connection) -> None:
    """Schema 7: ``memos.in_report`` (a theory memo marked for the report; NULL in existing rows: not marked)."""
    _add_column(conn, S.memos.c.in_report)


# MIGRATIONS[n] brings a store at version n to version n+1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {0: _migrate_to_1, 1: _migrate_to_2, 2: _migrate_to_3,
                                                       3: _migrate_to_4, 4: _migrate_to_5,
                                                       5: _migrate_to_6, 6: _migrate_to_7}


def _reason(exc: DatabaseError | OperationalError) -> str:
    """The driver's own message, first line, without a trailing full stop (no SQL, no parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


class Project:
    """An open project.  Use :meth:`create` or :meth:`open`, never the constructor."""

    def __init__(self, engine: Engine, location: str):
        self.engine = engine
        self.location = display_location(location)  # what messages show: never a password
        self.tables = S

    @property
    def is_file(self) -> bool:
        """True for a project file (SQLite), False for a project on a database server."""
        return self.engine.dialect.name == "sqlite"

    @property
    def name(self) -> str:
        """A short name: the project file's stem, or the database's name on a server."""
        if self.is_file:
            return Path(self.location).stem
        return self.engine.url.database or "project"

    # -- opening -----------------------------------------------------------
    @staticmethod
    def _engine_for(target: str) -> Engine:
        if _is_url(target):
            return create_engine(target, future=True)
        engine = create_engine(f"sqlite:///{target}", future=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised everywhere
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed: no overwritten name lingers
            cur.close()

        return engine

    @classmethod
    def create(cls, target: str | os.PathLike) -> "Project":
        """Create a new, empty project.  Refuses to overwrite an existing file."""
        target = str(target)
        if not _is_url(target):
            path = Path(target)
            if path.exists():
                raise ProjectError(f"{path} already exists; choose another name or open it with --project.")
            if not path.parent.exists():
                raise ProjectError(f"The folder {path.parent} does not exist; create it first.")
        engine = cls._engine_for(target)
        project = cls(engine, target)
        try:
            with project.begin() as conn:
                if _is_url(target):  # a database is made elsewhere; it must not hold anything yet
                    if inspect(conn).has_table("meta"):
                        raise ProjectError(f"{project.location} already holds an sp_realist project; open it with "
                                           "--project, or give an empty database to create a new one.")
                    if inspect(conn).get_table_names():
                        raise ProjectError(f"{project.location} already has tables of its own; give an empty "
                                           "database (or schema) to create a project in.")
                project._upgrade(conn)
                conn.execute(insert(S.meta).values(key="created_at", value=now()))
                conn.execute(insert(S.meta).values(key="project_id", value=str(uuid.uuid4())))
        except (DatabaseError, OperationalError) as exc:
            engine.dispose()
            raise ProjectError(f"{project.location}: the project could not be created: {_reason(exc)}.") from None
        except BaseException:
            engine.dispose()
            raise
        return project

    @classmethod
    def open(cls, target: str | os.PathLike) -> "Project":
        """Open an existing project, migrating its schema to the current version."""
        target = str(target)
        if not _is_url(target):
            path = Path(target)
            if not path.is_file():
                raise ProjectError(
                    f"No project file at {path}; create one with 'sp-realist init {path}'."
                )
            with open(path, "rb") as fh:
                head = fh.read(16)
            if head and not head.startswith(b"SQLite format 3"):
                raise ProjectError(f"{path} is not an sp_realist project file (not an SQLite database).")
        engine = cls._engine_for(target)
        project = cls(engine, target)
        try:
            with project.begin() as conn:
                if not inspect(conn).has_table("meta"):
                    raise ProjectError(f"{project.location} is not an sp_realist project (it has no meta table).")
                project._upgrade(conn)
        except (DatabaseError, OperationalError) as exc:
            engine.dispose()
            raise ProjectError(f"{project.location} could not be opened as a project: {_reason(exc)}.") from None
        except BaseException:
            engine.dispose()
            raise
        return project

    def close(self) -> None:
        self.engine.dispose()

    def discard(self) -> None:
        """Remove a project this process has just created and abandons (a failed import), then close it: the
        file with its WAL, or on a server every project table (the database itself stays, empty)."""
        if self.is_file:
            self.engine.dispose()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(self.location + suffix).unlink(missing_ok=True)
            return
        try:
            S.metadata.drop_all(self.engine)
        finally:
            self.engine.dispose()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self.location!r})"

    # -- schema versioning -------------------------------------------------
    def _version(self, conn: Connection) -> int:
        if not inspect(conn).has_table("meta"):
            return 0
        row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == "schema_version")).first()
        return int(row[0]) if row else 0

    def _upgrade(self, conn: Connection) -> None:
        version = self._version(conn)
        if version > S.SCHEMA_VERSION:
            raise ProjectError(
                f"{self.location} was written by a newer sp_realist (schema {version}); upgrade sp_realist to open it."
            )
        while version < S.SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
            self._set_meta(conn, "schema_version", str(version))

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return self._version(conn)

    # -- transactions and helpers -----------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction (commit on success, rollback on error)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection."""
        with self.engine.connect() as conn:
            yield conn

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        exists = conn.execute(select(S.meta.c.key).where(S.meta.c.key == key)).first()
        if exists:
            conn.execute(update(S.meta).where(S.meta.c.key == key).values(value=value))
        else:
            conn.execute(insert(S.meta).values(key=key, value=value))

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A project setting (JSON-decoded), stored in the meta table under ``setting:KEY``."""
        with self.connect() as conn:
            row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == f"setting:{key}")).first()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any, conn: Connection | None = None) -> None:
        if conn is None:
            with self.begin() as c:
                self._set_meta(c, f"setting:{key}", json.dumps(value))
        else:
            self._set_meta(conn, f"setting:{key}", json.dumps(value))

    def compact(self, tables: Iterable[str] | None = None) -> None:
        """Rewrite the store so overwritten data no longer lingers in it.

        SQLite keeps old page contents in free pages and in the write-ahead log;
        after anonymisation those would still hold the real names.  This
        checkpoints the WAL, VACUUMs and truncates the WAL (the whole file;
        ``tables`` is not needed).  PostgreSQL keeps old row versions in the
        table files until they are vacuumed: this runs ``VACUUM FULL`` on
        ``tables`` (default: every project table), which writes each table anew
        and removes its old files, then ``CHECKPOINT``. Both run outside a
        transaction, after the rewrite committed.
        """
        if self.engine.dialect.name == "postgresql":
            names = list(tables) if tables is not None else [t.name for t in S.metadata.sorted_tables]
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                present = set(inspect(conn).get_table_names())
                quoted = [conn.dialect.identifier_preparer.quote(n) for n in names if n in present]
                if quoted:
                    conn.exec_driver_sql(f"VACUUM FULL {', '.join(quoted)}")
                try:
                    conn.exec_driver_sql("CHECKPOINT")  # old files go at once, not at the next checkpoint
                except DatabaseError:  # only superusers (or pg_checkpoint members) may; the files go later
                    pass
            return
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def log(self, conn: Connection, action: str, target: str | None = None, actor: str | None = None, **detail) -> None:
        """Append to the audit log inside the caller's transaction."""
        conn.execute(
            insert(S.audit_log).values(
                at=now(), actor=actor, action=action, target=target,
                detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
            )
        )


def find_project(explicit: str | None = None, cwd: str | os.PathLike | None = None) -> str:
    """Resolve which project a command works on.

    Order: the explicit ``--project`` value, the ``SP_REALIST_PROJECT``
    environment variable, then the single ``*.sprealist`` file in the current
    directory.
    """
    if explicit:
        return explicit
    env = os.environ.get(ENV_PROJECT)
    if env:
        return env
    here = Path(cwd or os.getcwd())
    found = sorted(here.glob(f"*{PROJECT_SUFFIX}"))
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise ProjectError(
            f"No project given and no *{PROJECT_SUFFIX} file in {here}; pass --project PATH, set "
            f"{ENV_PROJECT}, or create one with 'sp-realist init NAME{PROJECT_SUFFIX}'."
        )
    names = ", ".join(p.name for p in found)
    raise ProjectError(f"Several project files in {here} ({names}); choose one with --project PATH.")


def open_project(explicit: str | None = None) -> Project:
    return Project.open(find_project(explicit))

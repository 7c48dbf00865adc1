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

import hashlib
import itertools
import json
import os
import uuid
import warnings
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, OperationalError, SAWarning
from sqlalchemy.schema import CreateColumn

from . import schema as S
from .errors import ProjectError

PROJECT_SUFFIX = ".sprealist"
ENV_PROJECT = "SP_REALIST_PROJECT"

# Namespace for deterministic GUIDs (REFI-QDA needs GUIDs; they must be stable
# across exports of an unchanged project).
GUID_NAMESPACE = uuid.UUID("6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b")
_NAMESPACE_BYTES = GUID_NAMESPACE.bytes


#: One statement object for every audit row (SQLAlchemy then reuses its compiled form without rebuilding it).
_INSERT_AUDIT = insert(S.audit_log)


def now() -> str:
    """The current time as an ISO-8601 UTC string (seconds precision)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def stable_guid(*parts: Any) -> str:
    """A deterministic GUID built from ``parts``: ``str(uuid.uuid5(GUID_NAMESPACE, "\\x1f".join(parts)))``,
    computed from the SHA-1 digest directly (an export makes one per selection and coding; building
    ``uuid.UUID`` objects cost more than the hashing)."""
    name = "\x1f".join(str(p) for p in parts)
    b = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _is_url(target: str) -> bool:
    return "://" in target


#: How long a writer waits for another writer's transaction to finish before giving up (seconds).
WRITE_WAIT_SECONDS = 300

# PostgreSQL: every write transaction first takes this transaction-scoped advisory lock (released at commit or
# rollback), so writers to one project database take turns as they do on SQLite (BEGIN IMMEDIATE).  A number
# of our own ("sp_realist" in ASCII, as a signed 64-bit integer).
_PG_WRITE_LOCK = int.from_bytes(b"sprealst", "big", signed=True)


def insert_ignoring(conn: Connection, table, index_elements: list[str]):
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` on ``table``, built by the connection's own dialect
    (SQLite or PostgreSQL): the database's unique constraint decides whether a row is new, so two writers
    adding the same row at once leave one row and no error.  Add ``.values(...)`` (or execute with parameter
    sets) as with :func:`sqlalchemy.insert`."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise ProjectError(f"sp_realist stores projects in SQLite or PostgreSQL, not {name}.")
    return dialect_insert(table).on_conflict_do_nothing(index_elements=index_elements)


_MAX_OF: dict[tuple[str, str], Any] = {}


def next_ordinal(conn: Connection, column, *where, start: int = 1) -> int:
    """The next free ordinal of ``column`` (``max + 1``, or ``start`` in an empty group) among rows matching
    ``where``.  Safe against other writers because every write transaction holds the project's write turn
    (:meth:`Project.begin`): nobody else can add a row between this read and the caller's insert."""
    from sqlalchemy import func

    key = (column.table.name, column.name)
    q = None if where else _MAX_OF.get(key)
    if q is None:
        q = select(func.max(column))
        for cond in where:
            q = q.where(cond)
        if not where:  # built once (ingest asks for every file; building costs more than SQLite's work)
            _MAX_OF[key] = q
    top = conn.execute(q).scalar()
    return start if top is None else top + 1


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


def _rebuild_sqlite_table(conn: Connection, table) -> None:
    """SQLite's procedure for a change ALTER TABLE cannot make (dropping a constraint): create the table as
    ``schema.py`` has it under a new name, copy every row (ids kept), drop the old one, rename the new one and
    create its indexes.  Runs only with foreign keys off (:meth:`Project._migrating`), so the DROP deletes no
    child row; the caller's ``PRAGMA foreign_key_check`` runs before the commit."""
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise ProjectError(f"{table.name}: the table can only be rebuilt with foreign keys off; this is a bug.")
    from sqlalchemy.schema import CreateTable

    prep = conn.dialect.identifier_preparer
    old, new = prep.format_table(table), prep.quote(f"_{table.name}_rebuilt")
    ddl = str(CreateTable(table).compile(dialect=conn.dialect)).strip()
    head = f"CREATE TABLE {old} ("
    if not ddl.startswith(head):  # pragma: no cover - SQLAlchemy's DDL shape
        raise ProjectError(f"{table.name}: unexpected table definition; this is a bug.")
    conn.exec_driver_sql(f"CREATE TABLE {new} (" + ddl[len(head):])
    have = {c["name"] for c in inspect(conn).get_columns(table.name)}
    cols = ", ".join(prep.quote(c.name) for c in table.columns if c.name in have)
    conn.exec_driver_sql(f"INSERT INTO {new} ({cols}) SELECT {cols} FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
    conn.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {old}")
    for index in table.indexes:
        if not _has_index(conn, table.name, index.name):
            index.create(conn)


def _migrate_to_8(conn: Connection) -> None:
    """Schema 8: code names unique among siblings only (``uq_codes_sibling_name`` on
    ``(coalesce(parent_id, 0), name)``), no longer project-wide; every code, id and coding is kept.

    The project-wide UNIQUE on ``codes.name`` is dropped: PostgreSQL drops the named constraint; SQLite, which
    cannot drop a constraint, rebuilds the table (:func:`_rebuild_sqlite_table`).  A store whose ``codes``
    table has no such constraint (made by migration 0 -> 1 of this version) only gets the index.

    Also ``excerpts.guid`` and ``excerpts.dated`` (an uncoded REFI-QDA selection's GUID and whether it had a
    time; NULL in existing rows: no GUID, dated)."""
    for column in (S.excerpts.c.guid, S.excerpts.c.dated):
        _add_column(conn, column)
    if conn.dialect.name == "sqlite":
        # the UNIQUE (name) of schema 7 is an automatic index of origin 'u' on that one column
        whole = [r[1] for r in conn.exec_driver_sql("PRAGMA index_list(codes)") if r[2] and r[3] == "u"
                 and [c[2] for c in conn.exec_driver_sql(f"PRAGMA index_info('{r[1]}')")] == ["name"]]
        if whole:
            _rebuild_sqlite_table(conn, S.codes)
            return
    with warnings.catch_warnings():  # SQLAlchemy does not reflect SQLite's expression indexes, and says so
        warnings.simplefilter("ignore", SAWarning)
        whole = [u for u in inspect(conn).get_unique_constraints(S.codes.name) if u["column_names"] == ["name"]]
    prep = conn.dialect.identifier_preparer
    for u in whole:
        conn.execute(text(f"ALTER TABLE {prep.format_table(S.codes)} DROP CONSTRAINT {prep.quote(u['name'])}"))
    index = next(i for i in S.codes.indexes if i.name == "uq_codes_sibling_name")
    if not _has_index(conn, S.codes.name, index.name):
        index.create(conn)


def _has_index(conn: Connection, table: str, name: str) -> bool:
    """Whether ``table`` has an index called ``name``, expression indexes included (SQLAlchemy does not
    reflect those on SQLite, so SQLite's own catalogue is asked there)."""
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                                    (name,)).first() is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        return name in {i["name"] for i in inspect(conn).get_indexes(table)}


def _migrate_to_9(conn: Connection) -> None:
    """Schema 9: the ``project_templates`` table (templates kept in the project; see
    :mod:`sp_realist.project_templates`).  A project's ``templates_dir`` setting is read into it when the
    project is opened (:meth:`Project.open`), where the folder can be found."""
    S.project_templates.create(conn, checkfirst=True)


def _migrate_to_10(conn: Connection) -> None:
    """Schema 10 (team work): the ``adjudications`` and ``merge_conflicts`` tables, each only if it is not
    there yet."""
    S.metadata.create_all(conn, tables=list(S.TEAM_TABLES), checkfirst=True)


def _migrate_to_11(conn: Connection) -> None:
    """Schema 11 (issue 14): the digests the matrices read (``source_digests``, ``coding_tallies``; filled by
    :mod:`sp_realist.coding.digests` when a query first needs them) and the triggers that clear a source's
    digest whenever its codings, segments or row change."""
    S.metadata.create_all(conn, tables=list(S.DIGEST_TABLES), checkfirst=True)
    S.create_digest_triggers(conn)


# MIGRATIONS[n] brings a store at version n to version n+1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {0: _migrate_to_1, 1: _migrate_to_2, 2: _migrate_to_3,
                                                       3: _migrate_to_4, 4: _migrate_to_5,
                                                       5: _migrate_to_6, 6: _migrate_to_7, 7: _migrate_to_8,
                                                       8: _migrate_to_9, 9: _migrate_to_10,
                                                       10: _migrate_to_11}


def _reason(exc: DatabaseError | OperationalError) -> str:
    """The driver's own message, first line, without a trailing full stop (no SQL, no parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


@contextmanager
def _released_on_failure(engine: Engine, what: str) -> Iterator[None]:
    """Create and open share this: if the block fails the engine is released, and a database error becomes one
    sentence, ``what`` followed by the driver's reason."""
    try:
        yield
    except (DatabaseError, OperationalError) as exc:
        engine.dispose()
        raise ProjectError(f"{what}: {_reason(exc)}.") from None
    except BaseException:
        engine.dispose()
        raise


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
            engine = create_engine(target, future=True)
            if engine.dialect.name == "postgresql":
                @event.listens_for(engine, "begin")
                def _pg_write_turn(conn):
                    if conn.get_execution_options().get("sp_realist_write"):
                        # one round trip (a team's server is across a network): SET LOCAL lock_timeout, then
                        # wait for the project's write turn
                        conn.exec_driver_sql(f"SELECT set_config('lock_timeout', '{WRITE_WAIT_SECONDS}s', true), "
                                             f"pg_advisory_xact_lock({_PG_WRITE_LOCK})")
            return engine
        # The driver's own transaction handling is switched off (isolation_level=None, below) so that SQLAlchemy's
        # "begin" event decides how each transaction starts: BEGIN IMMEDIATE for writes (the write lock is taken
        # first, so a writer never reads a state another writer is about to change, and waits up to
        # WRITE_WAIT_SECONDS for its turn instead of failing with "database is locked"), plain BEGIN for reads.
        engine = create_engine(f"sqlite:///{target}", future=True,
                               connect_args={"timeout": WRITE_WAIT_SECONDS})

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return  # VACUUM and friends run outside any transaction
            immediate = conn.get_execution_options().get("sp_realist_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised everywhere
            dbapi_conn.isolation_level = None  # SQLAlchemy's recipe: the "begin" event above emits BEGIN
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={WRITE_WAIT_SECONDS * 1000}")
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
        with _released_on_failure(engine, f"{project.location}: the project could not be created"):
            with project.begin() as conn:
                if _is_url(target):  # a database is made elsewhere; it must not hold anything yet
                    if inspect(conn).has_table("meta"):
                        raise ProjectError(f"{project.location} already holds an sp_realist project; open it with "
                                           "--project, or give an empty database to create a new one.")
                    if inspect(conn).get_table_names():
                        raise ProjectError(f"{project.location} already has tables of its own; give an empty "
                                           "database (or schema) to create a project in.")
                project._create_schema(conn)
                conn.execute(insert(S.meta).values(key="created_at", value=now()))
                conn.execute(insert(S.meta).values(key="project_id", value=str(uuid.uuid4())))
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
        with _released_on_failure(engine, f"{project.location} could not be opened as a project"):
            with project.connect() as conn:
                if not inspect(conn).has_table("meta"):
                    raise ProjectError(f"{project.location} is not an sp_realist project (it has no meta table).")
                current = project._version(conn)
            if current != S.SCHEMA_VERSION:
                with project._migrating() as conn:
                    project._upgrade(conn)
        from .project_templates import adopt_templates_dir

        adopt_templates_dir(project)  # a templates_dir folder (schema < 9) is read into the project
        return project

    def close(self) -> None:
        try:
            self.refresh_statistics()
        finally:
            self.engine.dispose()

    def refresh_statistics(self) -> None:
        """On PostgreSQL, ``ANALYZE`` the tables that bulk writes (:func:`insert_many`, the codings' bulk insert)
        have added at least :data:`ANALYZE_AFTER_ROWS` rows to since the last refresh, so the next query is
        planned for what the tables now hold: until the server's autovacuum gets to it (a minute or more),
        a query right after an ingest or import is planned for the empty tables -- ``frequencies`` on 100,000
        codings took 2.2 s instead of 0.55 s. The bulk operations (ingest, autocoding, QDPX import) call it
        when they finish, and :meth:`close` does. Nothing on SQLite, whose queries here are written for its
        planner without statistics. A login that does not own the tables gets a warning from the server and
        the tables are skipped, and a server that refuses ``ANALYZE`` (a read-only replica, a dropped
        connection) is left to its autovacuum: the statistics only help the planner, so nothing fails."""
        written = _BULK_ROWS.get(self.engine)
        if not written:
            return
        due = sorted(name for name, n in written.items() if n >= ANALYZE_AFTER_ROWS)
        for name in due:
            del written[name]
        if not due or self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect() as conn:
                prep = conn.dialect.identifier_preparer
                conn.exec_driver_sql("ANALYZE " + ", ".join(prep.quote(name) for name in due))
                conn.commit()
        except DBAPIError:
            pass

    def discard(self) -> None:
        """Remove a project this process has just created and abandons (a failed import), then close it: the
        file with its WAL, or on a server every project table (the database itself stays, empty)."""
        if self.is_file:
            self.engine.dispose()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(self.location + suffix).unlink(missing_ok=True)
            return
        try:
            with self.engine.begin() as conn:
                S.metadata.drop_all(conn)
                S.drop_digest_function(conn)
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

    def _create_schema(self, conn: Connection) -> None:
        """A new project's tables as ``schema.py`` has them now, at the current version, in one pass: the
        migrations bring an *older* store to this shape, so on a new one they would only inspect and skip
        (dozens of catalogue queries, each a round trip to a server). ``tests/test_store.py`` checks that
        both ways give the same schema."""
        S.metadata.create_all(conn, checkfirst=False)
        S.create_digest_triggers(conn)
        conn.execute(insert(S.meta).values(key="schema_version", value=str(S.SCHEMA_VERSION)))

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

    @contextmanager
    def _migrating(self) -> Iterator[Connection]:
        """The one transaction an upgrade runs in.  On SQLite it is a write turn (``BEGIN IMMEDIATE``, DDL inside it)
        and runs with foreign keys off, as SQLite's table-rebuild procedure requires (a dropped table must not
        cascade to its children); ``PRAGMA foreign_key_check`` must find nothing before the commit, and foreign
        keys are on again afterwards.  Other back ends use :meth:`begin`."""
        if self.engine.dialect.name != "sqlite":
            with self.begin() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            # outside any transaction: the driver opens none of its own (isolation_level None, see _engine_for)
            # and SQLAlchemy's has not begun yet
            dbapi.execute("PRAGMA foreign_keys=OFF")
            try:
                conn.execution_options(sp_realist_write=True)
                with conn.begin():  # BEGIN IMMEDIATE (the "begin" event): the write turn, DDL inside it too
                    yield conn
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise ProjectError(f"{self.location}: the schema upgrade left a broken reference in table "
                                           f"{broken[0]!r}; nothing was changed, report this as a bug.")
            finally:
                dbapi.execute("PRAGMA foreign_keys=ON")

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return self._version(conn)

    # -- transactions and helpers -----------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one write transaction (commit on success, rollback on error).

        Write transactions take turns: on SQLite the transaction starts with ``BEGIN IMMEDIATE`` (the file's
        write lock), on PostgreSQL it first takes the project's advisory lock; a writer waits for the one
        before it to commit.  Inside the turn, check-then-insert and ``max() + 1`` ordinals
        (:func:`next_ordinal`) cannot collide.  Unique constraints still decide in the end: a conflict that
        slips past a check (another program writing the database) is one sentence, not a traceback."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(sp_realist_write=True)
                with conn.begin():
                    yield conn
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            raise self._conflict() from None
        except OperationalError as exc:
            if "locked" not in str(exc.orig) and "lock timeout" not in str(exc.orig):
                raise
            raise ProjectError(f"{_safe_location(self.location)}: another writer kept the project busy for "
                               f"over {WRITE_WAIT_SECONDS} seconds; nothing was written, run the command again "
                               "when it has finished.") from None
        except DBAPIError as exc:  # a refusal by the login's role (a missing GRANT, row-level security)
            refused = _refused(exc)
            if refused is None:
                raise
            raise ProjectError(refused) from None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            refused = _refused(exc)
            if refused is None:
                raise
            raise ProjectError(refused) from None

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
        """Store a project setting (JSON-encoded).  Every string in it (narrative sections, report settings
        ...) is free text: a control character is refused as in any text column (:func:`schema.check_text`)."""
        _check_strings(value, f"project setting {key}")
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

    def _conflict(self) -> ProjectError:
        return ProjectError(f"{_safe_location(self.location)}: another change to the same record was saved "
                            "at the same moment, so nothing of this one was written; run the command again.")

    @contextmanager
    def savepoint(self, conn: Connection) -> Iterator[Connection]:
        """A savepoint inside the caller's write transaction (:meth:`begin`): an error raised inside rolls back
        what was written since it began, and the transaction goes on with what came before.  Lets one write
        turn hold several all-or-nothing steps (ingest: one per file).  A unique-constraint conflict is the
        one sentence :meth:`begin` gives."""
        # plain SAVEPOINT / RELEASE statements: SQLAlchemy's begin_nested() costs 54 us a savepoint against 15 us
        # (ingest takes one per file); the caller's begin() still owns the transaction
        name = f"sp_realist_{next(_SAVEPOINT_NUMBERS)}"
        conn.exec_driver_sql(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException as exc:
            try:
                conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
                conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
            except DBAPIError:
                pass  # the database ended the whole transaction (SQLite does after some errors): begin() rolls back
            if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
                raise self._conflict() from None
            raise
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")

    def log(self, conn: Connection, action: str, target: str | None = None, actor: str | None = None, **detail) -> None:
        """Append to the audit log inside the caller's transaction; ``actor`` defaults to who is working
        (:func:`sp_realist.identity.current_user`: the login on a server, else --coder, $SP_REALIST_CODER,
        the per-user setting, the login name).

        ``target`` is often built from joined names: one longer than the column holds is shortened (ending in
        "...", control characters shown as spaces); the user's data it names is never touched."""
        if not actor:
            from .identity import current_user

            actor = current_user(None, conn=conn)
        target = _log_text(target, S.audit_log.c.target)
        actor = _log_text(actor, S.audit_log.c.actor)
        conn.execute(_INSERT_AUDIT, {
            "at": now(), "actor": actor, "action": action, "target": target,
            "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
        })


def _check_strings(value: Any, field: str) -> None:
    """:func:`schema.check_text` on every string inside a JSON-like ``value`` (keys too), without a length limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            S.check_text(item, field, None)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _log_text(value: str | None, column) -> str | None:
    """``value`` made to fit an audit-log ``column``: control characters as spaces, cut to the limit."""
    if value is None:
        return None
    import re

    value = re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", " ", str(value))
    limit = column.type.limit
    return value if limit is None or len(value) <= limit else value[: limit - 3] + "..."


def _refused(exc: DBAPIError) -> str | None:
    """The sentence for a write or read PostgreSQL refused because of the login's role (SQLSTATE 42501:
    a missing GRANT, or a row-level-security policy), naming the role that may do it; None for any other
    error.  The roles and what each may change are in :mod:`sp_realist.team.roles`."""
    import re

    if getattr(exc.orig, "sqlstate", None) != "42501":
        return None
    reason = _reason(exc)
    found = re.search(r'(?:for table|policy for table) "?([A-Za-z0-9_]+)"?', reason)
    table = found.group(1) if found else None
    if "row-level security" in reason:
        what = {"codings": "codings", "memos": "memos"}.get(table, f"rows of {table}")
        return (f"your login may add or change only its own {what}; another person's need the analyst role "
                "(ask the project's owner: 'sp-realist team add NAME --role analyst').")
    from .team.roles import CODER_TABLES

    role = "owner" if table == "meta" else "coder" if table in CODER_TABLES else "analyst"
    what = "the project's settings" if table == "meta" else f"table {table}" if table else "this part of the project"
    return (f"your login may not change {what}; that needs the {role} role (ask the project's owner: "
            f"'sp-realist team add NAME --role {role}').")


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(orig)


def _safe_location(location: str) -> str:
    """A project location fit for a message (a URL without its password)."""
    if not _is_url(location):
        return location
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).render_as_string(hide_password=True).replace(":***@", "@")
    except Exception:  # pragma: no cover - a URL SQLAlchemy cannot parse never opened
        return "the project database"


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



_SAVEPOINT_NUMBERS = itertools.count(1)

#: Rows a table must have gained by bulk writes before :meth:`Project.refresh_statistics` analyzes it.
ANALYZE_AFTER_ROWS = 1000
#: engine -> table name -> rows bulk-written since the last refresh (kept per open project)
_BULK_ROWS: "weakref.WeakKeyDictionary[Engine, dict[str, int]]" = weakref.WeakKeyDictionary()


def note_bulk_rows(conn: Connection, table: str, n: int) -> None:
    """Record that ``n`` rows were bulk-inserted into ``table`` through ``conn`` (for
    :meth:`Project.refresh_statistics`). A transaction that rolls back leaves a count too, which at worst
    analyzes a table once more than needed."""
    written = _BULK_ROWS.setdefault(conn.engine, {})
    written[table] = written.get(table, 0) + n


def insert_many(conn: Connection, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``, many rows to a statement
    (:func:`insert_rows`): SQLAlchemy's per-row parameter processing costs more than the database's work for
    bulk rows.  Values must already be of the column's database type; text values are checked as bound
    values are (limits, control characters)."""
    if not rows:
        return
    # the text checks bind processing would make (schema.CheckedText), column by column: each distinct value
    # once (bulk rows repeat their coder, origin, kind ...), the first refused named in the order of the rows
    for i, name in enumerate(columns):
        S.check_column_values(table.c[name], (row[i] for row in rows))
    note_bulk_rows(conn, table.name, len(rows))
    insert_rows(conn, table, columns, rows)


_MULTI_SQL: dict[tuple, str] = {}
ROWS_PER_STATEMENT = 4000


def insert_rows(conn: Connection, table, columns: tuple[str, ...], rows: list[tuple],
                conflict: tuple[str, ...] | None = None) -> int:
    """Insert ``rows`` (tuples in ``columns`` order, values already of the columns' types, text already checked)
    with statements of up to :data:`ROWS_PER_STATEMENT` rows each; with ``conflict``, a row whose key is
    already stored is skipped (``ON CONFLICT (...) DO NOTHING``).  Returns how many were inserted.

    The digests' triggers (schema 11) make a statement per row expensive: SQLite runs a row trigger inside
    a statement cheaply (2 us a row) but sets it up anew for each execution of the statement, which is what
    ``executemany`` does per row (12 us a row: 300,000 codings 7.6 s against 3.9 s); PostgreSQL fires a
    statement trigger per execution (30,000 codings 0.93 s against 0.45 s).  So SQLite gets one
    ``INSERT ... VALUES (...), (...), ...`` per chunk (at most 32,766 parameters, SQLite's limit), and
    PostgreSQL one ``INSERT ... SELECT * FROM unnest(array, ...)`` (a column's values as one array)."""
    if not rows:
        return 0
    from itertools import chain

    prep = conn.dialect.identifier_preparer
    names = ", ".join(prep.quote(c) for c in columns)
    tail = f" ON CONFLICT ({', '.join(prep.quote(c) for c in conflict)}) DO NOTHING" if conflict else ""
    pg = conn.dialect.name == "postgresql"
    per = ROWS_PER_STATEMENT if pg else max(1, min(ROWS_PER_STATEMENT, 32766 // max(len(columns), 1)))
    inserted = 0
    for i, size in _chunks(len(rows), per, pg):
        chunk = rows[i:i + size]
        key = (conn.dialect.name, table.name, columns, conflict, 0 if pg else len(chunk))
        sql = _MULTI_SQL.get(key)
        if sql is None:
            if pg:
                arrays = ", ".join(f"%s::{table.c[c].type.compile(dialect=conn.dialect)}[]" for c in columns)
                sql = f"INSERT INTO {prep.format_table(table)} ({names}) SELECT * FROM unnest({arrays}){tail}"
            else:
                row = "(" + ", ".join(["?"] * len(columns)) + ")"
                sql = f"INSERT INTO {prep.format_table(table)} ({names}) VALUES " + ", ".join([row] * len(chunk)) + tail
            _MULTI_SQL[key] = sql
        params = tuple(list(col) for col in zip(*chunk)) if pg else tuple(chain.from_iterable(chunk))
        result = conn.exec_driver_sql(sql, params)
        inserted += result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(chunk)
    return inserted


def _chunks(n: int, per: int, any_size: bool):
    """``(start, size)`` of the statements that insert ``n`` rows, at most ``per`` each; unless ``any_size``,
    the sizes are ``per`` and powers of four (a file's 100 segments: 64 + 16 + 16 + 4), so that a handful of
    statements, each prepared once and kept in the driver's cache, serve every number of rows."""
    i = 0
    while i < n:
        left = n - i
        if any_size or left >= per:
            size = min(per, left)
        else:
            size = 4 ** ((left.bit_length() - 1) // 2)  # the largest power of four <= left
        yield i, size
        i += size

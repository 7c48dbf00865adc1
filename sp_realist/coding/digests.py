"""Digests: what the matrices count, kept per source in the project (issue 14).

Counting a million codings means reading a million rows and finding each one's speaker; most of the time
nothing has changed since the last count.  A source's **digest** holds what the matrices need from its
codings, already counted, and is kept until that source changes:

* **tallies** (table ``coding_tallies``): a row per code and participant with how many codings
  (rule-and-person duplicates counted once, :func:`sp_realist.coding.retrieval.drop_rule_duplicates`'s rule)
  and how many in all; frequencies, the framework matrix and the child-code hint of ``retrieve`` group these
  by anything that follows from a coding's code, source and participant (site, role, kind, attributes ...);
* **overlap** and **segment** (columns of ``source_digests``): the source's code x code co-occurrence counts,
  as :func:`sp_realist.coding.retrieval.overlap_pairs` and :func:`~sp_realist.coding.retrieval.segment_pairs`
  count them.

A digest is made the first time a query needs it (:func:`ensure`, in a short write turn of its own) and is
deleted, in the same transaction, by any INSERT, UPDATE or DELETE of its source's codings, segments or row:
triggers in the database do it (``schema.create_digest_triggers``), so no code path, other program or cascade
can leave an old count behind.  A store whose triggers are missing (a file edited by a program that dropped
them) has its digests read by no query; the next one that may write deletes them all and makes the triggers
again.  The next query recounts only the sources that changed.  Queries use the digests
only when they hold everything asked (:meth:`sp_realist.coding.sqlquery.CodingQuery.tallyable`; co-occurrence
without ``--where``), when the user sees every coding (no blind coding in force for them: a digest counts
everyone's), and when every source's digest is there in the query's own snapshot; otherwise they count the
codings themselves, as before.  A store the user may not write (a read-only file, a reader's login, another
writer busy) is counted directly too: making digests never waits for a writer.

This module owns ``source_digests`` and ``coding_tallies``: nothing else writes them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from .. import schema as S
from ..errors import ProjectError
from ..store import Project, insert_many
from ._common import fetch_rows

KINDS = ("tallies", "overlap", "segment")
CHUNK = 256  # sources counted at a time (an IN list; memory bounded by their codings)
BATCH = 50_000  # codings swept at a time while counting co-occurrence (whole sources; bounds the memory)
_TRIPLE = np.dtype("<i4")  # a pair blob: little-endian int32 triples (code a, code b, n)


def _missing(kind: str):
    d = S.source_digests
    if kind == "tallies":
        return d.c.tallied == False  # noqa: E712 (SQL, not Python)
    if kind in ("overlap", "segment"):
        return d.c[kind].is_(None)
    raise ValueError(f"no digest kind {kind!r}")


def _stale(kind: str):
    """SELECT of the ids of the sources whose ``kind`` digest is missing."""
    d, src = S.source_digests, S.sources
    return (select(src.c.id).select_from(src.outerjoin(d, d.c.source_id == src.c.id))
            .where(or_(d.c.source_id.is_(None), _missing(kind))))


def stale_sources(conn: Connection, kind: str) -> list[int]:
    """Ids of the sources whose ``kind`` digest is missing (never made, or deleted by a change)."""
    return [r[0] for r in conn.execute(_stale(kind).order_by(S.sources.c.id))]


def complete(conn: Connection, kind: str) -> bool:
    """Whether every source has its ``kind`` digest, as ``conn``'s snapshot sees the store."""
    return conn.execute(_stale(kind).limit(1)).first() is None


def sees_every_coding(project: Project) -> bool:
    """Whether the current user sees every coding (digests count everyone's): not while blind coding
    restricts them to their own (:func:`sp_realist.team.roles.coding_restriction`)."""
    from ..team.roles import coding_restriction

    return coding_restriction(project) is None


@contextmanager
def _write_turn_now(project: Project) -> Iterator[Connection | None]:
    """A write transaction if the project's write turn is free now (None if it is not): the digests are a
    convenience, so a query never waits for another writer to make them."""
    with project.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            dbapi = conn.connection.dbapi_connection
            dbapi.execute("PRAGMA busy_timeout=0")
            try:
                conn.execution_options(sp_realist_write=True)
                try:
                    trans = conn.begin()  # BEGIN IMMEDIATE: fails at once when another writer holds the file
                except OperationalError:
                    yield None
                    return
                with trans:
                    yield conn
            finally:
                from ..store import WRITE_WAIT_SECONDS

                dbapi.execute(f"PRAGMA busy_timeout={WRITE_WAIT_SECONDS * 1000}")
            return
        with conn.begin():
            from ..store import _PG_WRITE_LOCK

            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({_PG_WRITE_LOCK})").scalar()
            yield conn if got else None


def ensure(project: Project, kind: str) -> bool:
    """Make the ``kind`` digest of every source that lacks one; whether the digests may be read for ``kind``
    now (the user sees every coding and they are all there).  False, with nothing written, when the store
    cannot be written now: a read-only file or login, or another writer's turn."""
    if not sees_every_coding(project):
        return False
    try:
        with project.connect() as conn:
            if S.digest_triggers_present(conn) and not stale_sources(conn, kind):
                return True
        with _write_turn_now(project) as conn:
            if conn is None:
                return False
            if not S.digest_triggers_present(conn):
                # made or edited where the triggers were dropped: no digest in it can be trusted; they are all
                # counted again, and the triggers made again
                conn.execute(delete(S.source_digests))
                S.create_digest_triggers(conn)
            stale = stale_sources(conn, kind)  # again, inside the write turn
            for i in range(0, len(stale), CHUNK):
                fill(conn, kind, stale[i:i + CHUNK])
        return True
    except (OperationalError, ProgrammingError, IntegrityError, ProjectError):
        # not allowed to read or write them (a read-only file, a reader's role, a login granted its rights before
        # schema 11 until the owner runs 'team add' again, a row another program wrote first): the query counts
        # the codings itself
        return False


def _all_there(project: Project, kind: str) -> bool:
    """Whether the ``kind`` digests may be read now without making any: the user sees every coding, may read
    them, and every source has one."""
    if not sees_every_coding(project):
        return False
    try:
        with project.connect() as conn:
            return S.digest_triggers_present(conn) and complete(conn, kind)
    except (OperationalError, ProgrammingError, ProjectError):
        return False


@contextmanager
def reading(project: Project, kind: str, wanted: bool = True, make: bool = True) -> Iterator[tuple[Connection, bool]]:
    """A read connection, and whether the ``kind`` digests may be read in it (``wanted``, :func:`ensure` --
    or, without ``make``, only if they are all there already -- and complete in the connection's snapshot:
    a change committed after :func:`ensure` deletes a digest, and then the query counts the codings).  On
    PostgreSQL the read is REPEATABLE READ when digests are read, so that every statement of the query sees
    the digests it checked."""
    usable = wanted and (ensure(project, kind) if make else _all_there(project, kind))
    with project.connect() as conn:
        if usable and conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn, usable and complete(conn, kind)


def fill(conn: Connection, kind: str, source_ids: list[int]) -> None:
    """Count the ``kind`` digest of ``source_ids`` (inside the caller's write transaction)."""
    d = S.source_digests
    have = {r[0] for r in conn.execute(select(d.c.source_id).where(d.c.source_id.in_(source_ids)))}
    insert_many(conn, d, ("source_id", "tallied"), [(i, False) for i in source_ids if i not in have])
    if kind == "tallies":
        _fill_tallies(conn, source_ids)
    elif kind == "overlap":
        _store_pairs(conn, "overlap", source_ids, _overlap_by_source(conn, source_ids))
    elif kind == "segment":
        _store_pairs(conn, "segment", source_ids, _segment_by_source(conn, source_ids))
    else:
        raise ValueError(f"no digest kind {kind!r}")


def _fill_tallies(conn: Connection, source_ids: list[int]) -> None:
    from .sqlquery import CodingQuery, is_rule

    cq = CodingQuery(conn, None, None, source_ids=source_ids)
    t = cq.build("source_id", "code_id", "participant_id", "turn", "coding_id", "origin", dedupe=False).subquery("t")
    keys = [t.c.source_id, t.c.code_id, t.c.participant_id, t.c.turn]
    q = (select(*keys, func.sum(case((t.c.coding_id.in_(cq.duplicates()), 0), else_=1)), func.count(),
                func.sum(case((is_rule(t.c.origin), 1), else_=0)))
         .group_by(*keys))
    rows = [(s, c, p, turn, int(n), int(n_all), int(n_rule)) for s, c, p, turn, n, n_all, n_rule in fetch_rows(conn, q)]
    conn.execute(delete(S.coding_tallies).where(S.coding_tallies.c.source_id.in_(source_ids)))
    insert_many(conn, S.coding_tallies, ("source_id", "code_id", "participant_id", "turn", "n", "n_all", "n_rule"),
                rows)
    d = S.source_digests
    conn.execute(update(d).where(d.c.source_id.in_(source_ids)).values(tallied=True))


def _overlap_by_source(conn: Connection, source_ids: list[int]) -> dict[int, np.ndarray]:
    from .retrieval import source_batches, sweep_pairs
    from .sqlquery import CodingQuery

    out: dict[int, np.ndarray] = {}
    for arr in source_batches(conn, CodingQuery(conn, None, None, source_ids=source_ids), BATCH):
        src, a, b, n = sweep_pairs(arr)
        out.update(_split(src, np.stack([a, b, n], axis=1).astype(_TRIPLE)))
    return out


def _segment_by_source(conn: Connection, source_ids: list[int]) -> dict[int, np.ndarray]:
    from .retrieval import segment_batches
    from .sqlquery import CodingQuery

    out: dict[int, np.ndarray] = {}
    for src, a, b, n in segment_batches(conn, CodingQuery(conn, None, None, source_ids=source_ids), BATCH):
        half = a <= b  # the counts are symmetric: each pair is kept once (pairs() gives both ways)
        out.update(_split(src[half], np.stack([a[half], b[half], n[half]], axis=1).astype(_TRIPLE)))
    return out


def _split(src: np.ndarray, triples: np.ndarray) -> dict[int, np.ndarray]:
    """Rows of ``triples`` grouped by ``src`` (sorted)."""
    if not len(src):
        return {}
    cuts = np.flatnonzero(np.diff(src)) + 1
    starts = np.concatenate([[0], cuts])
    return {int(src[i]): part for i, part in zip(starts, np.split(triples, cuts))}


def _store_pairs(conn: Connection, kind: str, source_ids: list[int], pairs: dict[int, np.ndarray]) -> None:
    empty = np.empty((0, 3), dtype=np.int64)
    params = [{"sid": sid, "blob": encode(pairs.get(sid, empty))} for sid in source_ids]
    d = S.source_digests
    conn.execute(update(d).where(d.c.source_id == bindparam("sid")).values({kind: bindparam("blob")}), params)


def encode(triples: np.ndarray) -> bytes:
    """Rows (code a, code b, n) as a pair blob (ids and counts are 32-bit integers in the schema)."""
    return np.ascontiguousarray(triples, dtype=_TRIPLE).tobytes()


def decode(blob) -> np.ndarray:
    return np.frombuffer(bytes(blob), dtype=_TRIPLE).reshape(-1, 3)


def pairs(conn: Connection, kind: str, code_ids: list[int] | None, batch: int = 64) -> pd.DataFrame:
    """Columns ``a``, ``b``, ``n`` summed over every source's ``kind`` digest, codes in ``code_ids`` only:
    what :func:`~sp_realist.coding.retrieval.overlap_pairs` / ``segment_pairs`` give without filters.  The
    digests are read and added ``batch`` sources at a time (memory bounded by the codebook, not the corpus)."""
    from .retrieval import PairSums

    col = S.source_digests.c[kind]
    sums = PairSums.for_codebook(conn)
    wanted = np.asarray(sorted(code_ids), dtype=np.int64) if code_ids is not None else None
    result = conn.execute(select(col).where(col.is_not(None)))
    try:
        while True:
            chunk = result.fetchmany(batch)
            if not chunk:
                break
            parts = [decode(b) for (b,) in chunk if b]
            if not parts:
                continue
            triples = np.concatenate(parts).astype(np.int64)
            triples = triples[(triples[:, 0] < sums.m) & (triples[:, 1] < sums.m)]  # (a deleted code clears them)
            if wanted is not None:
                triples = triples[np.isin(triples[:, 0], wanted) & np.isin(triples[:, 1], wanted)]
            sums.add(triples[:, 0], triples[:, 1], triples[:, 2])
    finally:
        result.close()
    df = sums.frame()
    if kind == "segment":  # kept once per pair (a <= b): both ways, as segment_pairs counts them
        other = df[df["a"] != df["b"]]
        df = pd.concat([df, other.rename(columns={"a": "b", "b": "a"})[["a", "b", "n"]]], ignore_index=True)
    return df

"""Codings: a code on a character span of a source, with coder, origin, time and memo.

Spans are half-open ``[start, end)`` offsets into ``sources.text``.  A coding
is identified by (code, source, start, end, coder): adding the same one twice
is a no-op, so imports and autocoding are idempotent.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..sources import locate_excerpt, resolve_source
from ..store import Project, insert_many, insert_rows, note_bulk_rows, now
from ..identity import current_user
from ._common import UNITS, CodeTree, code_ids_for, dump_yaml, fetch_frame, read_yaml
from .units import SourceUnits, trim


def parse_span(value: str | tuple | list) -> tuple[int, int]:
    """``"120:388"`` or ``(120, 388)`` -> ``(120, 388)``."""
    from ..numbers import INT64_MAX, fits

    try:
        a, b = value.split(":") if isinstance(value, str) else value
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise SpRealistError(f"span {value!r} is not START:END (character offsets, e.g. 120:388).") from None
    if not (fits(a) and fits(b)):
        raise SpRealistError(f"span {a}:{b} is too large; offsets are whole numbers up to {INT64_MAX:,}.")
    return a, b


def existing_keys(conn: Connection, code_ids: list[int] | None = None, source_ids: list[int] | None = None,
                  coder: str | None = None) -> set[tuple[int, int, int, int, str]]:
    c = S.codings
    q = select(c.c.code_id, c.c.source_id, c.c.start, c.c.end, c.c.coder)
    if code_ids is not None:
        q = q.where(c.c.code_id.in_(code_ids))
    if source_ids is not None:
        q = q.where(c.c.source_id.in_(source_ids))
    if coder is not None:
        q = q.where(c.c.coder == coder)
    result = conn.execute(q)
    cursor = getattr(result, "cursor", None)
    rows = cursor.fetchall() if cursor is not None else [tuple(r) for r in result]
    result.close()
    return set(map(tuple, rows))


def insert_codings(conn: Connection, rows: list[dict], known: set | None = None, guids: bool = True) -> int:
    """Insert coding rows (dicts with code_id, source_id, start, end, coder, origin[, memo]), skipping any
    that already exist; returns how many were inserted.  The one writer of new ``codings`` rows.

    A row may also carry what an imported coding keeps from its file: ``guid``, ``created_at``,
    ``dated`` (False: the file gave no time) and ``selection_guid``.

    ``known`` may pass the keys already read in the same transaction's
    snapshot (by :func:`existing_keys`) to save reading them again.
    ``guids=False`` leaves ``guid`` empty (autocoding: REFI-QDA export derives
    the same stable GUID from the coding's key when it is empty).
    """
    if not rows:
        return 0
    return insert_coding_tuples(conn, [
        (r["code_id"], r["source_id"], r["start"], r["end"], r["coder"], r.get("origin"), r.get("memo"),
         r.get("guid"), r.get("created_at"), r.get("dated"), r.get("selection_guid")) for r in rows],
        known=known, guids=guids)


#: The columns of a coding tuple given to :func:`insert_coding_tuples`.
CODING_COLUMNS = ("code_id", "source_id", "start", "end", "coder", "origin", "memo", "guid", "created_at", "dated",
                  "selection_guid")


def insert_coding_tuples(conn: Connection, rows: list[tuple], known: set | None = None, guids: bool = True) -> int:
    """:func:`insert_codings` for rows given as tuples in :data:`CODING_COLUMNS` order (no dict per row:
    what a bulk import builds); an empty origin is ``manual``, an empty time now, an empty GUID the stable
    one (unless ``guids=False``).  Skips rows whose key (the first five) exists or repeats; returns how many
    were inserted."""
    if not rows:
        return 0
    if known is not None:
        seen = set(known)
    else:
        code_ids = sorted({r[0] for r in rows})
        source_ids = sorted({r[1] for r in rows})
        seen = existing_keys(conn, code_ids, source_ids if len(source_ids) < 500 else None)
    ts = now()
    cols = CODING_COLUMNS
    out = []
    c = S.codings.c
    for r in rows:
        key = r[:5]
        if key in seen:
            continue
        seen.add(key)
        out.append((*key, r[5] or "manual", r[6], r[7] or (coding_guid(*key) if guids else None), r[8] or ts,
                    r[9], r[10]))
    if not out:
        return 0
    # the bulk insert below bypasses the columns' own checks: the same checks here, each distinct value of a
    # text column once (bulk rows repeat their coder, origin and time), before anything is written
    for i, name in ((4, "coder"), (5, "origin"), (6, "memo"), (7, "guid"), (8, "created_at"), (10, "selection_guid")):
        S.check_column_values(c[name], (row[i] for row in out))
    # Many rows per INSERT (store.insert_rows).  The unique constraint decides: a coding another writer added
    # meanwhile is skipped (ON CONFLICT DO NOTHING).
    inserted = insert_rows(conn, S.codings, tuple(cols), out, conflict=("code_id", "source_id", "start", "end", "coder"))
    note_bulk_rows(conn, S.codings.name, inserted)
    return inserted


PLAIN_CODING_COLUMNS = ("code_id", "source_id", "start", "end", "coder", "origin", "created_at")


def insert_plain_codings(conn: Connection, rows: Iterable[tuple], batch: int = 5000, *,
                         code_ids: Iterable[int] | None = None) -> int:
    """Insert codings given as tuples ``(code_id, source_id, start, end, coder, origin, created_at)`` with
    no memo, GUID or selection (autocoding), skipping any whose key (the first five) is already stored;
    returns how many were inserted.  The rows must not repeat a key among themselves.

    The bulk path of :func:`insert_codings`: the tuples go to the database as they are, many to a statement
    (:func:`sp_realist.store.insert_many`), and are filtered only when a coding of these
    codes already exists (read in this transaction).  ``rows`` may be any iterable (a generator keeps
    only ``batch`` tuples in memory at a time) when ``code_ids`` names every code the rows hold."""
    if code_ids is None:
        rows = list(rows)
        if not rows:
            return 0
        code_ids = {r[0] for r in rows}
    seen = existing_keys(conn, sorted(code_ids), None, None)
    from itertools import islice

    n = 0
    rows = iter(rows)
    while chunk := list(islice(rows, batch)):
        if seen:
            chunk = [r for r in chunk if r[:5] not in seen]
        insert_many(conn, S.codings, PLAIN_CODING_COLUMNS, chunk)
        n += len(chunk)
    return n


def set_coding_memo(conn: Connection, coding_id: int, text: str) -> None:
    """Set a coding's own memo inside the caller's transaction."""
    conn.execute(update(S.codings).where(S.codings.c.id == coding_id).values(memo=text))


_GUID_NS = None


def coding_guid(code_id: int, source_id: int, start: int, end: int, coder: str) -> str:
    """``stable_guid("coding", code_id, source_id, start, end, coder)``, computed without uuid objects."""
    global _GUID_NS
    if _GUID_NS is None:
        from ..store import GUID_NAMESPACE

        _GUID_NS = GUID_NAMESPACE.bytes
    name = "\x1f".join(("coding", str(code_id), str(source_id), str(start), str(end), str(coder)))
    b = bytearray(hashlib.sha1(_GUID_NS + name.encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _spans_for(conn: Connection, src: dict, span=None, segment: int | None = None, match: str | None = None,
               unit: str = "match", section: str | None = None) -> list[tuple[int, int]]:
    text = src["text"]
    given = sum(x is not None for x in (span, segment, match, section))
    if given != 1:
        raise SpRealistError("code add: give exactly one of --span, --segment, --section or --match.")
    if unit not in UNITS:
        raise SpRealistError(f"unit {unit!r} is not one of {', '.join(UNITS)}.")
    if span is not None:
        start, end = parse_span(span)
        if not 0 <= start < end <= len(text):
            raise SpRealistError(f"source {src['name']!r}: span {start}:{end} is outside the text (0:{len(text)}); "
                                 "check the offsets.")
        spans = [(start, end)]
    elif segment is not None or section is not None:
        spec = {"source": src["id"]}
        spec["segment" if segment is not None else "section"] = segment if segment is not None else section
        _sid, start, end = locate_excerpt(conn, spec, f"source {src['name']!r}")
        spans = [trim(text, start, end)]  # the segment without its surrounding white space
        if section is not None and unit == "match":
            unit = "section"  # every paragraph of the section, not just its first
    else:
        try:
            rx = re.compile(match, re.IGNORECASE)
        except re.error as exc:
            raise SpRealistError(f"--match {match!r} is not a valid regular expression ({exc}); fix it.") from None
        spans = [(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]
        if not spans:
            raise SpRealistError(f"source {src['name']!r}: {match!r} does not occur; nothing was coded.")
    if unit == "match":
        return spans
    units = SourceUnits.load(conn, src["id"], text)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        u = units.expand(s, e, unit)
        if u[0] < u[1] and u not in out:
            out.append(u)
    return out


def add_coding(project: Project, code: str, source: str | int, span=None, segment: int | None = None,
               match: str | None = None, unit: str = "match", section: str | None = None,
               coder: str | None = None, memo: str | None = None, origin: str = "manual") -> pd.DataFrame:
    """Code a span, a segment (0-based), a section, or every regex match (expanded to ``unit``).

    Returns a DataFrame of the codings made (``new`` is False for ones that
    already existed).
    """
    coder = current_user(coder, project=project)
    with project.begin() as conn:
        tree = CodeTree.read(conn)
        crow = tree.resolve(code)
        label = tree.label(crow["id"])
        src = resolve_source(conn, source)
        spans = _spans_for(conn, src, span, segment, match, unit, section)
        before = existing_keys(conn, [crow["id"]], [src["id"]], coder)
        rows = [{"code_id": crow["id"], "source_id": src["id"], "start": s, "end": e, "coder": coder,
                 "origin": origin, "memo": memo} for s, e in spans]
        n = insert_codings(conn, rows)
        project.log(conn, "coding.add", label, actor=coder, source=src["name"], codings=n)
    return pd.DataFrame([{
        "code": label, "source": src["name"], "start": s, "end": e, "coder": coder,
        "new": (crow["id"], src["id"], s, e, coder) not in before, "text": src["text"][s:e],
    } for s, e in spans], columns=["code", "source", "start", "end", "coder", "new", "text"])


def _filtered(conn: Connection, code: str | None = None, source: str | int | None = None, coder: str | None = None,
              origin: str | None = None, span=None, children: bool = False, ids: list[int] | None = None):
    c = S.codings
    conds = []
    if code:
        conds.append(c.c.code_id.in_(code_ids_for(conn, [code], children)))
    if source is not None:
        conds.append(c.c.source_id == resolve_source(conn, source)["id"])
    if coder:
        conds.append(c.c.coder == coder)
    if origin:
        conds.append(c.c.origin.like(origin[:-1] + "%") if origin.endswith("*") else c.c.origin == origin)
    if span is not None:
        s, e = parse_span(span)
        conds.append(and_(c.c.start == s, c.c.end == e))
    if ids:
        conds.append(c.c.id.in_(ids))
    return and_(*conds) if conds else None


def remove_codings(project: Project, code: str | None = None, source: str | int | None = None,
                   coder: str | None = None, origin: str | None = None, span=None,
                   ids: list[int] | None = None, children: bool = False) -> int:
    """Remove the codings matching every filter given; refuses when no filter is given.

    ``origin`` may end in ``*`` (``rule:*`` removes every autocoding).
    Returns how many were removed.
    """
    if not any(x is not None and x != [] for x in (code, source, coder, origin, span, ids)):
        raise SpRealistError("code remove: give at least one of --code, --source, --coder, --origin, --span or --id.")
    with project.begin() as conn:
        cond = _filtered(conn, code, source, coder, origin, span, children, ids)
        ids_q = select(S.codings.c.id).where(cond)
        conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "coding", S.memos.c.target_id.in_(ids_q))))
        matched = conn.execute(select(func.count()).select_from(S.codings).where(cond)).scalar_one()
        n = conn.execute(delete(S.codings).where(cond)).rowcount
        if n < matched:  # on a server, row-level security let this login remove only its own codings
            raise SpRealistError(f"code remove: {matched - n} of the {matched} coding(s) are another person's, and "
                                 "removing those needs the analyst role; nothing was removed (add --coder with "
                                 "your login to remove only yours).")
        project.log(conn, "coding.remove", code, source=source, coder=coder, origin=origin, span=span, removed=n)
    return n


def list_codings(project: Project, code: str | None = None, source: str | int | None = None,
                 coder: str | None = None, origin: str | None = None, children: bool = False,
                 text: bool = True) -> pd.DataFrame:
    """Codings with code, source, span, coder, origin, time, memo (and the coded text)."""
    c = S.codings
    cols = ["id", "code", "source", "start", "end", "coder", "origin", "created_at", "memo"] + (["text"] if text else [])
    with project.connect() as conn:
        cond = _filtered(conn, code, source, coder, origin, None, children)
        q = (select(c.c.id, c.c.code_id.label("code"), S.sources.c.name.label("source"), c.c.start, c.c.end,
                    c.c.coder, c.c.origin, c.c.created_at, c.c.memo, c.c.source_id, c.c.dated)
             .select_from(c.join(S.codes, c.c.code_id == S.codes.c.id).join(S.sources, c.c.source_id == S.sources.c.id))
             .order_by(S.sources.c.ingest_order, c.c.start, c.c.end, S.codes.c.name, c.c.coder))
        if cond is not None:
            q = q.where(cond)
        from ..team.roles import coding_restriction

        only = coding_restriction(project)  # blind coding: a coder sees only their own codings
        if only is not None:
            q = q.where(c.c.coder == only)
        df = fetch_frame(conn, q, ["id", "code", "source", "start", "end", "coder", "origin", "created_at", "memo",
                                   "source_id", "dated"])
        # a coding imported without a time has none (the stored import time is not the coding's)
        df["created_at"] = [None if d is not None and not d else t for t, d in zip(df["created_at"].tolist(),
                                                                                   df["dated"].tolist())]
        labels = CodeTree.read(conn).labels()  # the name, or the path when another code has the same name
        df["code"] = [labels[i] for i in df["code"].tolist()]
        if text:
            sids = sorted(set(df["source_id"].tolist()))
            texts = dict(conn.execute(select(S.sources.c.id, S.sources.c.text).where(S.sources.c.id.in_(sids))).all())
            df["text"] = [texts[s][a:b] for s, a, b in zip(df["source_id"].tolist(), df["start"].tolist(),
                                                           df["end"].tolist())]
    return df[cols]


# --- codings.yaml -----------------------------------------------------------
def import_codings_yaml(project: Project, path: str | os.PathLike, coder: str | None = None) -> dict:
    """Import ``codings:`` from a YAML file (see docs/coding.md).

    Each entry has ``source``, ``code`` and one of ``quote``, ``span``,
    ``segment`` or ``section`` (located with :func:`sp_realist.sources.locate_excerpt`),
    optionally ``coder`` (default: :func:`sp_realist.identity.current_user` of ``coder``),
    ``unit`` (expand a quote to its sentence/segment/section), ``memo`` and
    ``origin`` (default ``manual``).  Every entry is checked before anything is
    written; codings already present are skipped.  Returns counts.
    """
    data = read_yaml(path, "codings")
    items = data.get("codings")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise SpRealistError(f"{path}: 'codings' must be a list.")
    default = current_user(coder, project=project)
    allowed = {"source", "code", "quote", "span", "segment", "section", "coder", "memo", "origin", "unit"}
    with project.begin() as conn:
        rows = []
        cache: dict[int, SourceUnits] = {}
        tree = CodeTree.read(conn)
        for i, item in enumerate(items):
            where = f"{path}: coding #{i + 1}"
            if not isinstance(item, dict):
                raise SpRealistError(f"{where} is not a mapping with source, code and quote.")
            unknown = set(item) - allowed
            if unknown:
                raise SpRealistError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"use {', '.join(sorted(allowed))}.")
            if not item.get("code"):
                raise SpRealistError(f"{where}: needs a 'code'.")
            try:
                crow = tree.resolve(str(item["code"]))
            except SpRealistError as exc:
                raise SpRealistError(f"{where}: {str(exc)[0].lower()}{str(exc)[1:]}") from None
            sid, start, end = locate_excerpt(conn, item, where)
            unit = item.get("unit", "match")
            if unit not in UNITS:
                raise SpRealistError(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}.")
            if unit != "match":
                if sid not in cache:
                    cache[sid] = SourceUnits.load(conn, sid)
                start, end = cache[sid].expand(start, end, unit)
            rows.append({"code_id": crow["id"], "source_id": sid, "start": start, "end": end,
                         "coder": str(item.get("coder") or default), "origin": str(item.get("origin") or "manual"),
                         "memo": item.get("memo")})
        n = insert_codings(conn, rows)
        project.log(conn, "codings.import", str(path), entries=len(rows), added=n)
    return {"entries": len(rows), "added": n, "skipped": len(rows) - n}


def export_codings_yaml(project: Project, path: str | os.PathLike | None = None, code: str | None = None,
                        coder: str | None = None, origin: str | None = None) -> str:
    """Codings as YAML, each located by ``quote`` when the text occurs once in
    its source, else by ``span``.  Re-importing the file gives the same codings."""
    df = list_codings(project, code=code, coder=coder, origin=origin)
    with project.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
    items = []
    for r in df.itertuples(index=False):
        item: dict[str, Any] = {"source": r.source, "code": r.code}
        full = texts[r.source]
        quote = r.text
        if quote.strip() == quote and quote and full.find(quote) == r.start and full.find(quote, r.start + 1) < 0:
            item["quote"] = quote
        else:
            item["span"] = [int(r.start), int(r.end)]
        item["coder"] = r.coder
        if r.origin != "manual":
            item["origin"] = r.origin
        if isinstance(r.memo, str) and r.memo:
            item["memo"] = r.memo
        items.append(item)
    text = dump_yaml({"codings": items})
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text

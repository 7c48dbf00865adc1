"""Themes and sub-themes (Braun & Clarke) that group codes.

A theme has a description and a phase: ``initial`` (initial codes),
``searching``, ``reviewing``, ``defining`` or ``named``.  The theme table
(:func:`theme_table`) gives each theme its codes, how many codings,
participants and sites support it, and N quotes chosen to spread across
participants and sites.  The reports call the same code
(:func:`theme_summaries_conn`), so they show the same codes, counts and quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..store import Project, next_ordinal, now, stable_guid
from ._common import PACK, PHASES, CodeTree, clean_name, code_children, code_labels, descendants_in, unpack_lists


def resolve_theme(conn: Connection, ref: str | int) -> dict:
    if isinstance(ref, int):
        from ..numbers import db_id

        row = (conn.execute(select(S.themes).where(S.themes.c.id == ref)).mappings().first()
               if db_id(ref) is not None else None)
    else:
        row = conn.execute(select(S.themes).where(S.themes.c.name == " ".join(str(ref).split()))).mappings().first()
    if row is None:
        hint = did_you_mean(ref, [r[0] for r in conn.execute(select(S.themes.c.name))], "see 'sp-realist theme list'.")
        raise NotFoundError(f"No theme named {str(ref)!r}; {hint}")
    return dict(row)


def _check_phase(phase: str | None, where: str) -> None:
    if phase is not None and phase not in PHASES:
        raise SpRealistError(f"{where}: phase {phase!r} is not one of {', '.join(PHASES)}.")


def _theme_descendants(conn: Connection, theme_id: int) -> list[int]:
    children: dict[int | None, list[int]] = {}
    for tid, pid in conn.execute(select(S.themes.c.id, S.themes.c.parent_id)):
        children.setdefault(pid, []).append(tid)
    out, stack = [], list(children.get(theme_id, []))
    while stack:
        t = stack.pop()
        out.append(t)
        stack.extend(children.get(t, []))
    return out


def _next_ord(conn: Connection, parent_id: int | None) -> int:
    cond = S.themes.c.parent_id.is_(None) if parent_id is None else S.themes.c.parent_id == parent_id
    return next_ordinal(conn, S.themes.c.ord, cond, start=0)


def add_theme(project: Project, name: str, description: str | None = None, phase: str = "initial",
              parent: str | None = None, codes: list[str] | None = None) -> int:
    """Add a theme (a sub-theme when ``parent`` is given) grouping ``codes``; return its id."""
    name = clean_name(name, "theme")
    _check_phase(phase, f"theme {name!r}")
    with project.begin() as conn:
        if conn.execute(select(S.themes.c.id).where(S.themes.c.name == name)).first():
            raise SpRealistError(f"theme {name!r}: already exists; use 'theme edit' to change it.")
        parent_id = resolve_theme(conn, parent)["id"] if parent else None
        tree = CodeTree.read(conn)
        code_ids = [tree.resolve(c)["id"] for c in codes or []]
        tid = conn.execute(insert(S.themes).values(
            name=name, parent_id=parent_id, description=description, phase=phase,
            ord=_next_ord(conn, parent_id), guid=stable_guid("theme", name), created_at=now())).inserted_primary_key[0]
        for cid in dict.fromkeys(code_ids):
            conn.execute(insert(S.theme_codes).values(theme_id=tid, code_id=cid))
        project.log(conn, "theme.add", name, phase=phase, parent=parent, codes=codes or [])
    return tid


def edit_theme(project: Project, name: str, new_name: str | None = None, description: str | None = None,
               phase: str | None = None, parent: str | None = None, top_level: bool = False) -> None:
    """Change a theme's name, description, phase or parent (``top_level`` moves it to the top)."""
    with project.begin() as conn:
        row = resolve_theme(conn, name)
        values: dict[str, Any] = {}
        if new_name is not None:
            new_name = clean_name(new_name, "theme")
            if new_name != row["name"] and conn.execute(select(S.themes.c.id).where(S.themes.c.name == new_name)).first():
                raise SpRealistError(f"theme {new_name!r}: already exists; choose another name.")
            values["name"] = new_name
        if description is not None:
            values["description"] = description or None
        if phase is not None:
            _check_phase(phase, f"theme {row['name']!r}")
            values["phase"] = phase
        if parent is not None:
            prow = resolve_theme(conn, parent)
            if prow["id"] == row["id"] or prow["id"] in _theme_descendants(conn, row["id"]):
                raise SpRealistError(f"theme {row['name']!r}: cannot go under {prow['name']!r}, which is itself or inside it.")
            values["parent_id"] = prow["id"]
        elif top_level:
            values["parent_id"] = None
        if not values:
            raise SpRealistError(f"theme {row['name']!r}: nothing to change; give --name, --description, --phase or --parent.")
        conn.execute(update(S.themes).where(S.themes.c.id == row["id"]).values(**values))
        project.log(conn, "theme.edit", row["name"], **{k: v for k, v in values.items()})


def assign_codes(project: Project, theme: str, codes: list[str], remove: bool = False) -> int:
    """Add ``codes`` to a theme (or remove them with ``remove``); return how many links changed."""
    with project.begin() as conn:
        row = resolve_theme(conn, theme)
        tree = CodeTree.read(conn)
        ids = [tree.resolve(c)["id"] for c in codes]
        have = {c for (c,) in conn.execute(select(S.theme_codes.c.code_id).where(S.theme_codes.c.theme_id == row["id"]))}
        n = 0
        for cid in dict.fromkeys(ids):
            if remove and cid in have:
                conn.execute(delete(S.theme_codes).where(and_(S.theme_codes.c.theme_id == row["id"],
                                                              S.theme_codes.c.code_id == cid)))
                n += 1
            elif not remove and cid not in have:
                conn.execute(insert(S.theme_codes).values(theme_id=row["id"], code_id=cid))
                n += 1
        project.log(conn, "theme.unassign" if remove else "theme.assign", row["name"], codes=codes)
    return n


def delete_theme(project: Project, name: str) -> None:
    """Delete a theme and its sub-themes (codes and codings are kept)."""
    with project.begin() as conn:
        row = resolve_theme(conn, name)
        ids = [row["id"]] + _theme_descendants(conn, row["id"])
        conn.execute(delete(S.theme_codes).where(S.theme_codes.c.theme_id.in_(ids)))
        conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "theme", S.memos.c.target_id.in_(ids))))
        for tid in reversed(ids):
            conn.execute(delete(S.themes).where(S.themes.c.id == tid))
        project.log(conn, "theme.delete", row["name"], themes=len(ids))


def _theme_rows(conn: Connection) -> list[tuple[dict, int, str | None]]:
    rows = [dict(r) for r in conn.execute(select(S.themes).order_by(S.themes.c.ord, S.themes.c.id)).mappings()]
    children: dict[int | None, list[dict]] = {}
    for r in rows:
        children.setdefault(r["parent_id"], []).append(r)
    names = {r["id"]: r["name"] for r in rows}
    out: list[tuple[dict, int, str | None]] = []

    def walk(pid, depth):
        for r in children.get(pid, []):
            out.append((r, depth, names.get(r["parent_id"])))
            walk(r["id"], depth + 1)

    walk(None, 0)
    return out


def _theme_code_names(conn: Connection) -> dict[int, list[str]]:
    """theme id -> its codes as listings show them (the name, or the path when another code has the name)."""
    labels = code_labels(conn)
    out: dict[int, list[str]] = {}
    for tid, cid in conn.execute(select(S.theme_codes.c.theme_id, S.codes.c.id)
                                 .select_from(S.theme_codes.join(S.codes, S.theme_codes.c.code_id == S.codes.c.id))
                                 .order_by(S.codes.c.ord, S.codes.c.id)):
        out.setdefault(tid, []).append(labels[cid])
    return out


def list_themes(project: Project) -> pd.DataFrame:
    """Themes in tree order: name, parent, depth, phase, description, codes."""
    with project.connect() as conn:
        rows = _theme_rows(conn)
        codes = _theme_code_names(conn)
    return pd.DataFrame([{"name": r["name"], "parent": parent, "depth": depth, "phase": r["phase"],
                          "description": r["description"], "codes": ", ".join(codes.get(r["id"], []))}
                         for r, depth, parent in rows],
                        columns=["name", "parent", "depth", "phase", "description", "codes"])


def themes_dict(conn: Connection) -> list[dict]:
    """Themes as the codebook YAML's ``themes:`` list (nested)."""
    rows = _theme_rows(conn)
    codes = _theme_code_names(conn)
    children: dict[int | None, list[dict]] = {}
    for r, _d, _p in rows:
        children.setdefault(r["parent_id"], []).append(r)

    def build(pid):
        out = []
        for r in children.get(pid, []):
            item: dict[str, Any] = {"name": r["name"], "phase": r["phase"]}
            if r["description"]:
                item["description"] = r["description"]
            item["codes"] = codes.get(r["id"], [])
            kids = build(r["id"])
            if kids:
                item["children"] = kids
            out.append(item)
        return out

    return build(None)


def insert_theme(conn: Connection, *, name: str, description: str | None = None, phase: str = "initial",
                 ord: int = 0, guid: str | None = None) -> int:
    """Insert one top-level theme inside the caller's transaction (the caller has checked the name)."""
    _check_phase(phase, name)
    return conn.execute(insert(S.themes).values(
        name=name, parent_id=None, description=description, phase=phase, ord=ord,
        guid=guid or stable_guid("theme", name), created_at=now())).inserted_primary_key[0]


def add_theme_codes(conn: Connection, theme_id: int, code_ids) -> int:
    """Add codes to a theme (those it already holds are skipped); returns how many were added."""
    have = {r[0] for r in conn.execute(select(S.theme_codes.c.code_id).where(S.theme_codes.c.theme_id == theme_id))}
    rows = [{"theme_id": theme_id, "code_id": cid} for cid in dict.fromkeys(code_ids) if cid not in have]
    if rows:
        conn.execute(insert(S.theme_codes), rows)
    return len(rows)


def _upsert_themes(conn: Connection, themes: list[dict], code_ids: dict[str, int]) -> tuple[int, int]:
    """Create or update themes from flattened YAML entries (validated by the caller)."""
    ids = {r["name"]: r["id"] for r in conn.execute(select(S.themes.c.name, S.themes.c.id)).mappings()}
    added = updated = 0
    for t in themes:
        values: dict[str, Any] = {}
        if t["has_description"]:
            values["description"] = t["description"]
        if t["phase"] is not None:
            values["phase"] = t["phase"]
        if t["name"] in ids:
            if values:
                conn.execute(update(S.themes).where(S.themes.c.id == ids[t["name"]]).values(**values))
            updated += 1
        else:
            ids[t["name"]] = conn.execute(insert(S.themes).values(
                name=t["name"], parent_id=None, ord=t["ord"], guid=stable_guid("theme", t["name"]),
                created_at=now(), **{"phase": "initial", **values})).inserted_primary_key[0]
            added += 1
    for t in themes:
        tid = ids[t["name"]]
        conn.execute(update(S.themes).where(S.themes.c.id == tid).values(
            parent_id=ids[t["parent"]] if t["parent"] is not None else None, ord=t["ord"]))
        if t["codes"] is not None:
            conn.execute(delete(S.theme_codes).where(S.theme_codes.c.theme_id == tid))
            for name in dict.fromkeys(t["codes"]):
                conn.execute(insert(S.theme_codes).values(theme_id=tid, code_id=code_ids[name]))
    return added, updated


# --- the theme table ----------------------------------------------------------
# One implementation serves `theme table` and the reports (sp_realist.report.model calls theme_summaries_conn):
# a theme's codes include their descendants (child codes, recursively), a theme without codes of its own draws
# on its sub-themes' codes, and quotes are chosen by one picker.
QUOTE_MIN, QUOTE_MAX = 40, 400  # preferred quote length in characters


@dataclass
class ThemeQuote:
    """A quote chosen for a theme: a coded span, never from an interviewer's turn."""

    text: str
    attribution: str  # who said it, "(S1 DK1)"
    participant: str | None
    site: str | None
    source: str
    source_id: int
    start: int
    end: int
    code: str
    coding_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "attribution": self.attribution, "participant": self.participant,
                "site": self.site, "source": self.source, "start": self.start, "end": self.end, "code": self.code,
                "coding_id": self.coding_id}


@dataclass
class ThemeSummary:
    """One theme with its codes (descendants included), its support and its chosen quotes."""

    theme_id: int
    name: str
    parent: str | None
    depth: int
    phase: str
    description: str | None
    codes: list[str]
    code_ids: list[int]
    codings: int  # distinct codings with the theme's codes (interviewer turns included)
    participants: int  # distinct speakers of those codings, interviewer turns left out
    sites: int
    sources: int
    quotes: list[ThemeQuote] = field(default_factory=list)


def _theme_code_ids(conn: Connection, rows: list[tuple[dict, int, str | None]]) -> dict[int, list[int]]:
    """Theme id -> its code ids: assigned codes and their descendants (depth first, as
    :func:`sp_realist.coding._common.descendants` gives them; the code tree read once); a theme without codes
    of its own draws on its sub-themes' codes."""
    children = code_children(conn)
    links: dict[int, list[int]] = {}
    for tid, cid in conn.execute(select(S.theme_codes.c.theme_id, S.theme_codes.c.code_id)
                                 .select_from(S.theme_codes.join(S.codes, S.theme_codes.c.code_id == S.codes.c.id))
                                 .order_by(S.codes.c.ord, S.codes.c.id)):
        links.setdefault(tid, []).append(cid)
    expanded: dict[int, list[int]] = {}
    for tid, cids in links.items():
        ids: list[int] = []
        for cid in cids:
            for x in [cid] + descendants_in(children, cid):
                if x not in ids:
                    ids.append(x)
        expanded[tid] = ids
    for r, _d, _p in rows:
        if not expanded.get(r["id"]):
            ids = []
            for sub in _theme_descendants(conn, r["id"]):
                ids.extend(x for x in expanded.get(sub, []) if x not in ids)
            expanded[r["id"]] = ids
    return expanded


# The theme table reads the codings of every theme's codes once (one query, filters in its WHERE clause),
# a batch at a time into integer arrays, attributes them on numpy (attribution.ParticipantAttributor), and
# counts and chooses quotes for each theme on those arrays; a quote candidate's text is read only when its
# length decides a choice (_Picker), and a chosen quote's text only for the chosen span.
READ_BATCH = 100_000  # codings fetched at a time
RESOLVE = 16  # candidates whose stripped length is read at a time


def theme_summaries_conn(conn: Connection, quotes_per_theme: int = 3,
                         filters: dict | None = None, tallied: bool = False) -> list[ThemeSummary]:
    """:func:`theme_summaries` inside the caller's connection (the reports use this).

    The codings of all the themes' codes are read once (:class:`_ThemeCodings`); each theme's counts are
    group counts on their integer columns and its quotes the greedy choice of :class:`_Picker`.  With
    ``tallied`` (every source's digest is in ``conn``'s snapshot: :func:`sp_realist.coding.digests.reading`)
    and filters the tallies hold, the counts come from the digests' tallies and the quotes from the first
    sources in source order that can decide them (:class:`_DigestThemes`): the same table."""
    from .sqlquery import CodingQuery

    rows = _theme_rows(conn)
    expanded = _theme_code_ids(conn, rows)
    names = code_labels(conn)
    all_ids = sorted({x for v in expanded.values() for x in v})
    codings: _ThemeCodings | _DigestThemes | None = None
    if all_ids and tallied and "attribution" not in (filters or {}) and \
            CodingQuery(conn, all_ids, filters or None, tallied=True).tallyable(["code_id"]):
        codings = _DigestThemes(conn, all_ids, filters, names)
    elif all_ids:
        codings = _ThemeCodings(conn, all_ids, filters, names)
    out: list[ThemeSummary] = []
    for r, depth, parent in rows:
        ids = expanded.get(r["id"], [])
        counts, quotes = (0, 0, 0, 0), []
        if ids and codings is not None:
            counts, quotes = codings.theme(ids, quotes_per_theme)
        out.append(ThemeSummary(theme_id=r["id"], name=r["name"], parent=parent, depth=depth, phase=r["phase"],
                                description=r["description"], codes=[names[i] for i in ids], code_ids=list(ids),
                                codings=counts[0], participants=counts[1], sites=counts[2], sources=counts[3],
                                quotes=quotes))
    return out


def _distinct(values: np.ndarray, size: int) -> int:
    """How many distinct values in ``values`` (integers 0 <= v < size)."""
    return int(np.count_nonzero(np.bincount(values, minlength=size))) if len(values) else 0


class _ThemeCodings:
    """Every coding of the themes' codes that the filters keep (interviewer turns included), as integer arrays
    in the order quotes are ranked: source order (ingest order, start, end), then code label, coder and id.

    Columns: ``code`` (position in the code list), ``source`` (position in the source list), ``start``,
    ``end``, ``coding_id``, ``rule`` (an autocoding), ``asked`` (in an interviewer's turn), ``who`` (the
    attribution, an index into ``who_names``), ``participant`` (id, -1 for none), ``site`` (an index into
    ``site_names``, whose 0 is no site) and ``span`` (the same source, start and end: the same span)."""

    def __init__(self, conn: Connection, ids: list[int], filters: dict | None, names: dict[int, str]):
        from itertools import chain

        from sqlalchemy import case

        from ..attribution import ParticipantAttributor
        from .sqlquery import CodingQuery, is_rule

        self.conn, self.names = conn, names
        filters = dict(filters or {})
        said = filters.pop("attribution", None)  # worded in Python: kept below, after the attribution
        coders = sorted(x for (x,) in conn.execute(select(S.codings.c.coder).distinct()))  # as Python orders them
        # Most of the codebook: read the table through rather than look each coding up by the code index
        # (SQLite has no statistics to tell; an expression on code_id keeps it from the index).
        scan = 4 * len(ids) >= len(names)
        t = CodingQuery(conn, None if scan else ids, filters or None).build(
            "coding_id", "code_id", "source_id", "start", "end", "coder", "origin", dedupe=False).subquery("t")
        rank = case({c: i for i, c in enumerate(coders)}, value=t.c.coder, else_=len(coders)) if coders else 0
        query = select(t.c.coding_id, t.c.code_id, t.c.source_id, t.c.start, t.c.end, rank,
                       case((is_rule(t.c.origin), 1), else_=0))
        if scan and len(ids) < len(names):  # (every code: no condition at all)
            query = query.where((t.c.code_id + 0).in_(ids))
        result = conn.execute(query)
        cursor = getattr(result, "cursor", None)
        fetch = cursor.fetchmany if cursor is not None else (lambda k: [tuple(r) for r in result.fetchmany(k)])
        parts: list[list[np.ndarray]] = [[] for _ in range(7)]
        while True:
            chunk = fetch(READ_BATCH)
            if not chunk:
                break
            block = np.fromiter(chain.from_iterable(chunk), dtype=np.int64, count=7 * len(chunk)).reshape(-1, 7)
            del chunk
            for k in range(7):  # ids and offsets are 32-bit integers in the schema
                parts[k].append(block[:, k].astype(np.int64 if k == 0 else np.int32))
            del block
        result.close()
        cid, code, src, start, end, coder, rule = (np.concatenate(p) if p else np.empty(0, dtype=np.int32)
                                                   for p in parts)
        del parts
        who, who_names, pid, asked = ParticipantAttributor(conn, pd.unique(src).tolist()) \
            .many_with_participants(src, start)
        if said is not None:
            wanted = {str(v) for v in (said if isinstance(said, (list, tuple, set)) else [said])}
            keep = np.array([x in wanted for x in who_names], dtype=bool)[who] if who_names else who.astype(bool)
            cid, code, src, start, end, coder, rule, pid, asked, who = (
                x[keep] for x in (cid, code, src, start, end, coder, rule, pid, asked, who))
        self.who_names = who_names
        self.people = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        # a coding's site (sqlquery.CodingQuery's rule): the source's site, else its speaker's, else the
        # source participant's; worded once per source and participant
        people_sites = dict(conn.execute(select(S.participants.c.id, S.participants.c.site)).all())
        source_sites = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                         .where(S.source_attributes.c.name == "site")).all())
        src_rows = conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.ingest_order,
                                       S.sources.c.participant_id).order_by(S.sources.c.id)).all()
        self.source_ids = np.array([r[0] for r in src_rows], dtype=np.int64)
        self.source_names = [r[1] for r in src_rows]
        source = np.searchsorted(self.source_ids, src).astype(np.int32)
        del src
        orders = [r[2] for r in src_rows]
        ingest = np.array(orders, dtype=np.int32)[source]
        pair, pairs = pd.factorize(source.astype(np.int64) * (int(pid.max(initial=0)) + 2) + pid + 1)
        site_index: dict = {None: 0}
        pair_site = []
        for key in pairs.tolist():
            k, p = divmod(key, int(pid.max(initial=0)) + 2)
            sid, _name, _order, owner = src_rows[k]
            value = next((v for v in (source_sites.get(sid), people_sites.get(p - 1), people_sites.get(owner))
                          if v is not None), None)
            pair_site.append(site_index.setdefault(value, len(site_index)))
        self.site_names = list(site_index)
        site = np.array(pair_site, dtype=np.int32)[pair]
        del pair
        self.code_ids = np.array(sorted(names), dtype=np.int64)
        label_rank = {label: r for r, label in enumerate(sorted(set(names.values())))}
        code_rank = np.array([label_rank[names[c]] for c in self.code_ids.tolist()], dtype=np.int64)
        code = np.searchsorted(self.code_ids, code).astype(np.int32)
        order = np.lexsort((cid, coder, code_rank[code].astype(np.int32), end, start, ingest))
        del coder
        # each column put in that order in turn (a copy of one at a time: memory stays bounded)
        self.code, code = code[order], None
        self.source, source = source[order], None
        self.start, start = start[order], None
        self.end, end = end[order], None
        self.coding_id, cid = cid[order], None
        self.rule, rule = rule[order].astype(bool), None
        self.asked, asked = asked[order], None
        self.who, who = who[order], None
        self.participant, pid = pid[order], None
        self.site, site = site[order], None
        ingest = ingest[order]
        del order
        n = len(ingest)
        new = np.ones(n, dtype=bool)
        new[1:] = (ingest[1:] != ingest[:-1]) | (self.start[1:] != self.start[:-1]) | (self.end[1:] != self.end[:-1])
        self.span = np.cumsum(new) - 1  # a run of the same place in source order
        del new, ingest
        if len(set(orders)) < len(orders):  # sources sharing an ingest order: their runs can interleave
            self.span = pd.factorize(self.span * len(orders) + self.source)[0]
        n_spans = int(self.span.max()) + 1 if n else 0
        self.used = np.zeros(n_spans, dtype=bool)  # quoted for an earlier theme (tree order)
        self.length = np.full(n_spans, -1, dtype=np.int64)  # stripped length, once read
        self.texts: dict[int, str] = {}  # span -> stripped text, once read

    def theme(self, ids: list[int], n: int) -> tuple[tuple[int, int, int, int], list[ThemeQuote]]:
        """(codings, participants, sites, sources) of the codings of ``ids`` and ``n`` quotes for them:
        interviewer turns count as codings but not as participants; a quote is a span outside them."""
        member = np.zeros(len(self.code_ids), dtype=bool)
        member[np.searchsorted(self.code_ids, np.asarray(ids, dtype=np.int64))] = True
        rows = np.flatnonzero(member[self.code])
        if not len(rows):
            return (0, 0, 0, 0), []
        speech = rows[~self.asked[rows]]
        sites = self.site[rows]
        counts = (len(rows), _distinct(self.who[speech], len(self.who_names)),
                  _distinct(sites[sites > 0], len(self.site_names)), _distinct(self.source[rows], len(self.source_ids)))
        _spans, first = np.unique(self.span[speech], return_index=True)
        cands = speech[np.sort(first)]  # each span once, shown by its first coding
        chosen = _Picker(self, cands).pick(n)
        return counts, [self.quote(i) for i in chosen]

    def read(self, spans: np.ndarray, rows: np.ndarray) -> None:
        """Read the text of ``spans`` (one coding row of each in ``rows``): their stripped length and text."""
        todo = [(int(s), int(r)) for s, r in zip(spans, rows) if int(s) not in self.texts]
        got = _span_texts(self.conn, [(int(self.source_ids[self.source[r]]), int(self.start[r]), int(self.end[r]))
                                      for _s, r in todo])
        for (s, _r), text in zip(todo, got):
            self.texts[s] = text
            self.length[s] = len(text)

    def quote(self, row: int) -> ThemeQuote:
        span = int(self.span[row])
        self.read(np.array([span]), np.array([row]))
        pid = int(self.participant[row])
        site = self.site_names[self.site[row]]
        return ThemeQuote(text=self.texts[span], attribution=f"({self.who_names[self.who[row]]})",
                          participant=self.people.get(pid) if pid >= 0 else None, site=site,
                          source=self.source_names[self.source[row]],
                          source_id=int(self.source_ids[self.source[row]]), start=int(self.start[row]),
                          end=int(self.end[row]), code=self.names[int(self.code_ids[self.code[row]])],
                          coding_id=int(self.coding_id[row]))


def _span_texts(conn: Connection, spans: list[tuple[int, int, int]]) -> list[str]:
    """The stripped text of each span (source id, start, end), 100 at a time in one statement that reads only
    those characters (a VALUES list of the spans joined to their sources; a UNION of a SELECT per span cost
    more to build than to run)."""
    from sqlalchemy import text as sql_text

    out: list[str] = []
    for i in range(0, len(spans), 100):
        part = spans[i:i + 100]
        rows = ", ".join(f"(:k{k}, :s{k}, :a{k}, :n{k})" for k in range(len(part)))
        params = {}
        for k, (sid, a, b) in enumerate(part):
            params.update({f"k{k}": k, f"s{k}": sid, f"a{k}": a + 1, f"n{k}": b - a})
        got = dict(conn.execute(sql_text(
            f"WITH spans (k, sid, a, n) AS (VALUES {rows}) "
            "SELECT spans.k, substr(sources.text, CAST(spans.a AS INTEGER), CAST(spans.n AS INTEGER)) "
            "FROM spans JOIN sources ON sources.id = CAST(spans.sid AS INTEGER)"),
            params).all())
        out.extend((got.get(k) or "").strip() for k in range(len(part)))
    return out


PAGE = 8  # ingest orders whose sources' codings the digest path reads first for a theme's quotes (then doubling)


class _DigestThemes:
    """The theme table read from the digests' tallies (:mod:`sp_realist.coding.digests`) where they hold the
    filters: the same counts and quotes as :class:`_ThemeCodings`, without reading every coding.

    **Counts**: a tally row is the codings of one code, source, participant and turn (the speaker label of the
    segment holding their start); its attribution, interviewer turn and site follow from those
    (:meth:`_who`), so each theme's codings, sources, sites and participants are sums and distinct counts
    over the tally rows of its codes.

    **Quotes**: :class:`_Picker`'s greedy choice, made on the candidates of the first sources in source order
    only: the codings of a page of sources (whole ingest orders, read once for every theme; pages double)
    are read and attributed as :class:`_ThemeCodings` reads them, and a step's choice is final when the best
    loaded candidate scores no higher than any candidate still unread could (a site or speaker the theme
    still lacks counts as free unless the tallies show every one of them quoted already; a rule's coding as
    a person's unless the theme has no person's coding): unread candidates come later in source order, which
    breaks ties.  Otherwise the next page is read, up to every source."""

    def __init__(self, conn: Connection, ids: list[int], filters: dict | None, names: dict[int, str]):
        from ..attribution import ParticipantAttributor
        from ._common import fetch_rows
        from .sqlquery import CodingQuery

        self.conn, self.names, self.ids, self.filters = conn, names, ids, dict(filters or {}) or None
        self.facts = ParticipantAttributor(conn, [])  # the sources' and participants' wording, no segments
        self.people = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        self.people_sites = dict(conn.execute(select(S.participants.c.id, S.participants.c.site)).all())
        self.source_sites = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                              .where(S.source_attributes.c.name == "site")).all())
        src_rows = conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.ingest_order,
                                       S.sources.c.participant_id)).all()
        self.source_names = {r[0]: r[1] for r in src_rows}
        self.ingest = {r[0]: r[2] for r in src_rows}
        self.owner = {r[0]: r[3] for r in src_rows}
        self.code_ids = np.array(sorted(names), dtype=np.int64)
        label_rank = {label: r for r, label in enumerate(sorted(set(names.values())))}
        self.code_rank = np.array([label_rank[names[c]] for c in self.code_ids.tolist()], dtype=np.int64)
        self.who_index: dict[str, int] = {}
        self.site_index: dict = {None: 0}
        from sqlalchemy import BigInteger, String, case, cast, func, literal

        # one row per (source, participant, turn): each code said there with its number of codings (one integer,
        # code id * PACK + n: both are 32-bit in the schema), and the codes a person coded there
        t = CodingQuery(conn, ids, self.filters, tallied=True).build(
            "code_id", "source_id", "participant_id", "turn", "n", "n_rule", dedupe=False).subquery("t")
        pid = func.coalesce(t.c.participant_id, -1)
        coded = cast(t.c.code_id * literal(PACK, BigInteger) + t.c.n, String)
        person = case((t.c.n > t.c.n_rule, cast(t.c.code_id, String)), else_=None)
        combos = fetch_rows(conn, select(t.c.source_id, pid, t.c.turn, func.aggregate_strings(coded, ","),
                                         func.aggregate_strings(person, ","))
                            .group_by(t.c.source_id, t.c.participant_id, t.c.turn))  # ix_coding_tallies_source
        self.c_src = np.array([r[0] for r in combos], dtype=np.int64)
        facts = [self._who(sid, None if p < 0 else p, turn) for sid, p, turn, _c, _p in combos]
        self.c_who = np.array([f[0] for f in facts], dtype=np.int64)
        self.c_asked = np.array([f[1] for f in facts], dtype=bool)
        self.c_site = np.array([f[2] for f in facts], dtype=np.int64)
        # which codes each combination has (any coding; a person's coding), and each code's codings
        self.c_codes = np.zeros((len(combos), len(self.code_ids)), dtype=bool)
        self.c_person = np.zeros((len(combos), len(self.code_ids)), dtype=bool)
        self.codings = np.zeros(len(self.code_ids), dtype=np.int64)
        for k, target in ((3, self.c_codes), (4, self.c_person)):
            row, values = unpack_lists([(i, r[k]) for i, r in enumerate(combos) if r[k]])
            code, n = np.divmod(values, PACK) if k == 3 else (values, None)
            col = np.searchsorted(self.code_ids, code)
            target[row, col] = True
            if n is not None:
                self.codings += np.bincount(col, weights=n, minlength=len(self.code_ids)).astype(np.int64)
        # pages: the sources with codings kept, whole ingest orders at a time, in source order
        orders: dict = {}
        for sid in sorted(set(self.c_src.tolist())):
            orders.setdefault(self.ingest[sid], []).append(sid)
        self.groups = [orders[k] for k in sorted(orders, key=lambda o: (o is None, o))]
        self.pages: list[dict[str, np.ndarray]] = []
        self.read_groups = 0
        self.used: set[tuple[int, int, int]] = set()  # spans quoted for an earlier theme (tree order)
        self.texts: dict[tuple[int, int, int], str] = {}
        self.sites: dict[tuple[int, int], int] = {}

    def _who(self, sid: int, pid: int | None, turn: str | None) -> tuple[int, bool, int]:
        """(attribution index, in an interviewer's turn, site index) of codings in source ``sid`` said by
        ``pid`` in a turn labelled ``turn`` (None: in no segment): what
        :meth:`sp_realist.attribution.ParticipantAttributor.many_with_participants` gives for them."""
        from ..sources import is_interviewer_label

        f = self.facts
        label = None if turn is None else f._segment_label(sid, (0, 0, turn or None, pid))
        who = label if label is not None else f._source_fallback(sid)
        asked = turn is not None and pid is None and is_interviewer_label(turn, f.interviewers)
        site = next((v for v in (self.source_sites.get(sid), self.people_sites.get(pid) if pid is not None else None,
                                 self.people_sites.get(self.owner.get(sid))) if v is not None), None)
        return (self.who_index.setdefault(who, len(self.who_index)), asked,
                self.site_index.setdefault(site, len(self.site_index)))

    def _site(self, sid: int, pid: int) -> int:
        """The site index of a coding in source ``sid`` said by ``pid`` (-1: nobody), worded once per pair."""
        key = (sid, pid)
        if key not in self.sites:
            self.sites[key] = self._who(sid, None if pid < 0 else pid, None)[2]
        return self.sites[key]

    def _load_page(self) -> bool:
        """Read the codings of the next page of sources (False when every source is read)."""
        from ._common import fetch_rows
        from .sqlquery import CodingQuery, is_rule

        if self.read_groups >= len(self.groups):
            return False
        size = PAGE * (2 ** len(self.pages))
        sids = [sid for g in self.groups[self.read_groups:self.read_groups + size] for sid in g]
        self.read_groups += size
        t = CodingQuery(self.conn, self.ids, self.filters, source_ids=sids).build(
            "coding_id", "code_id", "source_id", "start", "end", "coder", "origin", dedupe=False).subquery("t")
        rows = fetch_rows(self.conn, select(t.c.coding_id, t.c.code_id, t.c.source_id, t.c.start, t.c.end,
                                            t.c.coder, is_rule(t.c.origin)))
        cid = np.array([r[0] for r in rows], dtype=np.int64)
        code = np.searchsorted(self.code_ids, np.array([r[1] for r in rows], dtype=np.int64))
        src = np.array([r[2] for r in rows], dtype=np.int64)
        start = np.array([r[3] for r in rows], dtype=np.int64)
        end = np.array([r[4] for r in rows], dtype=np.int64)
        coders = [r[5] for r in rows]
        rule = np.array([bool(r[6]) for r in rows], dtype=bool)
        coder_rank = np.searchsorted(np.array(sorted(set(coders)), dtype=object), np.array(coders, dtype=object)) \
            if rows else cid
        ingest = np.array([self.ingest[s] for s in src.tolist()], dtype=np.int64)
        self.facts.load_segments(sids)
        who_local, who_names, pid, asked = self.facts.many_with_participants(src, start)
        who_map = np.array([self.who_index.setdefault(w, len(self.who_index)) for w in who_names], dtype=np.int64)
        who = who_map[who_local] if len(who_names) else np.zeros(len(rows), dtype=np.int64)
        site = np.array([self._site(s, p) for s, p in zip(src.tolist(), pid.tolist())], dtype=np.int64) \
            if rows else cid
        order = np.lexsort((cid, coder_rank, self.code_rank[code], end, start, ingest))
        self.pages.append({"cid": cid[order], "code": code[order], "src": src[order], "start": start[order],
                           "end": end[order], "rule": rule[order], "asked": asked[order], "who": who[order],
                           "pid": pid[order].astype(np.int64), "site": site[order]})
        return True

    def theme(self, ids: list[int], n: int) -> tuple[tuple[int, int, int, int], list[ThemeQuote]]:
        member = np.zeros(len(self.code_ids), dtype=bool)
        member[np.searchsorted(self.code_ids, np.asarray(ids, dtype=np.int64))] = True
        rows = np.flatnonzero(self.c_codes[:, member].any(axis=1))
        if not len(rows):
            return (0, 0, 0, 0), []
        speech = rows[~self.c_asked[rows]]
        sites = self.c_site[rows]
        counts = (int(self.codings[member].sum()),
                  len(np.unique(self.c_who[speech])), len(np.unique(sites[sites > 0])),
                  len(np.unique(self.c_src[rows])))
        theme_sites = set(self.c_site[speech].tolist())
        theme_whos = set(self.c_who[speech].tolist())
        no_person = not self.c_person[np.ix_(speech, np.flatnonzero(member))].any()
        return counts, self._pick(member, n, theme_sites, theme_whos, no_person)

    def _candidates(self, page: dict[str, np.ndarray], member: np.ndarray) -> dict[str, np.ndarray]:
        """The theme's candidates in ``page``: each span's first speech coding of the theme's codes."""
        rows = np.flatnonzero(member[page["code"]] & ~page["asked"])
        if len(rows):
            key = np.stack([page["src"][rows], page["start"][rows], page["end"][rows]], axis=1)
            _u, first = np.unique(key, axis=0, return_index=True)
            rows = rows[np.sort(first)]
        c = {k: v[rows] for k, v in page.items()}
        spans = list(zip(c["src"].tolist(), c["start"].tolist(), c["end"].tolist()))
        known = np.array([s in self.texts for s in spans], dtype=bool)
        length = np.array([len(self.texts[s]) if s in self.texts else -1 for s in spans], dtype=np.int64)
        width = c["end"] - c["start"]
        bad = np.where(known, (length < QUOTE_MIN) | (length > QUOTE_MAX), width < QUOTE_MIN)
        c["unknown"] = ~known & (width >= QUOTE_MIN)
        c["fixed"] = (np.array([s in self.used for s in spans], dtype=np.int64) * 16 + c["rule"] * 2
                      + bad.astype(np.int64))
        c["alive"] = np.ones(len(rows), dtype=bool)
        return c

    def _pick(self, member: np.ndarray, n: int, theme_sites: set, theme_whos: set, no_person: bool) -> list[ThemeQuote]:
        parts: list[dict[str, np.ndarray]] = []
        used_pages = 0
        site_used: set[int] = set()
        who_used: set[int] = set()
        chosen: list[tuple[int, int]] = []  # (part, row)
        while len(chosen) < n:
            while used_pages < len(self.pages):  # pages other themes have read already
                parts.append(self._candidates(self.pages[used_pages], member))
                used_pages += 1
            bound = 8 * theme_sites.issubset(site_used) + 4 * theme_whos.issubset(who_used) + 2 * no_person
            best = None  # (score, part, row)
            for i, c in enumerate(parts):
                idx = np.flatnonzero(c["alive"])
                if not len(idx):
                    continue
                score = (c["fixed"][idx] + 8 * np.isin(c["site"][idx], list(site_used))
                         + 4 * np.isin(c["who"][idx], list(who_used)))
                k = int(np.argmin(score))
                if best is None or score[k] < best[0]:
                    best = (int(score[k]), i, int(idx[k]), idx, score)
            if best is not None and parts[best[1]]["unknown"][best[2]]:
                low, i, _row, idx, score = best
                c = parts[i]
                ties = idx[(score == low) & c["unknown"][idx]][:RESOLVE]
                spans = list(zip(c["src"][ties].tolist(), c["start"][ties].tolist(), c["end"][ties].tolist()))
                missing = list(dict.fromkeys(s for s in spans if s not in self.texts))
                self.texts.update(zip(missing, _span_texts(self.conn, missing)))
                for t, span in zip(ties.tolist(), spans):
                    length = len(self.texts[span])
                    c["fixed"][t] += int(length < QUOTE_MIN or length > QUOTE_MAX)
                    c["unknown"][t] = False
                continue
            if best is not None and (best[0] <= bound or not self._more()):
                _s, i, row, _idx, _score = best
                c = parts[i]
                chosen.append((i, row))
                c["alive"] &= ~((c["src"] == c["src"][row]) & (c["start"] < c["end"][row])
                                & (c["start"][row] < c["end"]))
                site_used.add(int(c["site"][row]))
                who_used.add(int(c["who"][row]))
                continue
            if not self._load_page():
                if best is None:
                    break
        quotes = []
        for i, row in chosen:
            c = parts[i]
            span = (int(c["src"][row]), int(c["start"][row]), int(c["end"][row]))
            self.used.add(span)
            if span not in self.texts:
                self.texts[span] = _span_texts(self.conn, [span])[0]
            pid = int(c["pid"][row])
            site_name = next(v for v, k in self.site_index.items() if k == int(c["site"][row]))
            who_name = next(v for v, k in self.who_index.items() if k == int(c["who"][row]))
            quotes.append(ThemeQuote(text=self.texts[span], attribution=f"({who_name})",
                                     participant=self.people.get(pid) if pid >= 0 else None, site=site_name,
                                     source=self.source_names[span[0]], source_id=span[0], start=span[1],
                                     end=span[2], code=self.names[int(self.code_ids[c["code"][row]])],
                                     coding_id=int(c["cid"][row])))
        return quotes

    def _more(self) -> bool:
        """Whether pages are left to read."""
        return self.read_groups < len(self.groups)


class _Picker:
    """Greedy, deterministic choice of quotes among ``cands`` (rows of a :class:`_ThemeCodings`, one per
    span, in source order) spread across sites, then participants.

    Each step takes the candidate that (in order of priority) was not quoted for an earlier theme
    (``used``, updated with the choice), comes from a site not yet quoted, from a participant not yet quoted,
    was coded by a person (not a rule), has a readable length (QUOTE_MIN to QUOTE_MAX characters once
    stripped), and comes first in source order; spans that overlap a chosen quote are skipped.  Each step
    is one pass over numpy arrays.  A span shorter than QUOTE_MIN is too short whatever its text; any other
    span's length is read (RESOLVE at a time) only when it would win the step were its length readable."""

    def __init__(self, codings: _ThemeCodings, cands: np.ndarray):
        self.c, self.rows = codings, cands
        self.span = codings.span[cands]
        self.source, self.start, self.end = codings.source[cands], codings.start[cands], codings.end[cands]
        self.site, self.who = codings.site[cands], codings.who[cands]
        length = codings.length[self.span]
        self.unknown = (length < 0) & (self.end - self.start >= QUOTE_MIN)
        bad = np.where(length >= 0, (length < QUOTE_MIN) | (length > QUOTE_MAX), self.end - self.start < QUOTE_MIN)
        self.fixed = codings.used[self.span] * 16 + codings.rule[cands] * 2 + bad.astype(np.int64)

    def pick(self, n: int) -> list[int]:
        chosen: list[int] = []
        alive = np.ones(len(self.rows), dtype=bool)
        site_used = np.zeros(len(self.c.site_names), dtype=np.int64)
        who_used = np.zeros(len(self.c.who_names), dtype=np.int64)
        while len(chosen) < n and alive.any():
            idx = np.flatnonzero(alive)
            score = self.fixed[idx] + 8 * site_used[self.site[idx]] + 4 * who_used[self.who[idx]]
            k = int(np.argmin(score))  # the first of the lowest: source order breaks ties
            best = int(idx[k])
            if self.unknown[best]:  # its length decides: read it, and that of the next few scoring the same
                ties = idx[(score == score[k]) & self.unknown[idx]][:RESOLVE]
                self.c.read(self.span[ties], self.rows[ties])
                length = self.c.length[self.span[ties]]
                self.fixed[ties] += ((length < QUOTE_MIN) | (length > QUOTE_MAX)).astype(np.int64)
                self.unknown[ties] = False
                continue
            chosen.append(best)
            alive &= ~((self.source == self.source[best]) & (self.start < self.end[best])
                       & (self.start[best] < self.end))  # overlaps (itself too)
            site_used[self.site[best]] = 1
            who_used[self.who[best]] = 1
        self.c.used[self.span[chosen]] = True
        return [int(self.rows[i]) for i in chosen]


def theme_summaries(project: Project, quotes_per_theme: int = 3, filters: dict | None = None) -> list[ThemeSummary]:
    """Every theme (tree order) as a :class:`ThemeSummary`: its codes with their descendants, how many
    codings, participants, sites and sources support it, and ``quotes_per_theme`` quotes.

    Quotes are never from an interviewer's turn (:func:`sp_realist.sources.interviewer_spans`); they
    spread across sites, then participants, prefer manual codings and readable lengths, and avoid spans
    already quoted for an earlier theme.  The choice is deterministic.
    """
    from .digests import reading
    from .sqlquery import NOT_TALLIED

    wanted = not any(k in NOT_TALLIED for k in (filters or {}))
    with reading(project, "tallies", wanted=wanted) as (conn, tallied):
        return theme_summaries_conn(conn, quotes_per_theme, filters, tallied=tallied)


def theme_table(project: Project, quotes_per_theme: int = 3, filters: dict | None = None) -> pd.DataFrame:
    """One row per theme (tree order) with its codes, support and chosen quotes (:func:`theme_summaries`).

    Columns: ``theme``, ``parent``, ``depth``, ``phase``, ``description``,
    ``codes`` (names, including descendants of the assigned codes), ``codings``,
    ``participants``, ``sites`` (numbers supporting the theme; interviewer turns
    count as codings but not as participants) and ``quotes``: a list of dicts
    with ``text``, ``attribution`` ("(S1 DK1)"), ``participant``, ``site``,
    ``source``, ``start``, ``end``, ``code`` and ``coding_id``.  A theme with
    no codes of its own draws on its sub-themes' codes.  The reports show the
    same numbers and quotes.
    """
    out = [{"theme": t.name, "parent": t.parent, "depth": t.depth, "phase": t.phase, "description": t.description,
            "codes": ", ".join(t.codes), "codings": t.codings, "participants": t.participants, "sites": t.sites,
            "quotes": [q.as_dict() for q in t.quotes]}
           for t in theme_summaries(project, quotes_per_theme, filters)]
    return pd.DataFrame(out, columns=["theme", "parent", "depth", "phase", "description", "codes", "codings",
                                      "participants", "sites", "quotes"])


def theme_table_flat(table: pd.DataFrame) -> pd.DataFrame:
    """The theme table with its quotes as one text column (for tables, CSV and Markdown)."""
    flat = table.drop(columns=["quotes"]).copy()
    flat["quotes"] = ["\n".join(f"\u201c{q['text']}\u201d {q['attribution']}" for q in qs) for qs in table["quotes"]]
    return flat

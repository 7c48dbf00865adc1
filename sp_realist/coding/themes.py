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
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..sources import interviewer_speakers, is_interviewer_label
from ..store import Project, next_ordinal, now, stable_guid
from ._common import PHASES, CodeTree, clean_name, code_labels, descendants, fetch_rows


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


def _pick_quotes(cands: pd.DataFrame, n: int, used: set | None = None,
                 unseen: list[tuple] | None = None) -> list[dict] | None:
    """Greedy, deterministic choice of ``n`` quotes spread across sites, then participants.

    Each step takes the candidate that (in order of priority) was not quoted
    for an earlier theme (``used``: (source_id, start, end) spans, updated with
    the choice), comes from a site not yet quoted, from a participant not yet
    quoted, was coded by a person (not a rule), has a readable length (column
    ``_length``, else that of ``text`` stripped), and comes first in ``cands``
    (in source order); spans that overlap a chosen quote are skipped.  Each
    step is one pass over numpy arrays.

    ``unseen`` describes candidates left out of ``cands`` (a preselection, see
    :func:`_preselect`): one ``(site, attribution, base, key)`` per group of
    them, where every left-out candidate of the group scores at least ``base``
    before the site and participant terms and comes after ``key``
    (``(ingest_order, start, end)``) in source order.  When one of them could
    beat a step's choice, nothing is chosen and None is returned (``used``
    untouched): the caller asks again with more candidates.
    """
    chosen: list[dict] = []
    used = used if used is not None else set()
    if n <= 0 or not len(cands):
        return chosen
    c = cands.reset_index(drop=True)
    length = (c["_length"] if "_length" in c.columns else c["text"].map(lambda t: len(t.strip()))).to_numpy()
    sid, start, end = (c[k].to_numpy(dtype=np.int64) for k in ("source_id", "start", "end"))
    spans = pd.MultiIndex.from_arrays([sid, start, end])
    fixed = (spans.isin(list(used)) if used else np.zeros(len(c), dtype=bool)).astype(np.int64) * 16
    rule = c["rule"] if "rule" in c.columns else c["origin"].astype(str).str.startswith("rule:")
    fixed += rule.to_numpy(dtype=np.int64) * 2
    fixed += (~((length >= QUOTE_MIN) & (length <= QUOTE_MAX))).astype(np.int64)
    alive = np.ones(len(c), dtype=bool)
    used_sites: list = []
    used_people: list = []
    while len(chosen) < n and alive.any():
        score = fixed.copy()
        if used_sites:
            score += c["site"].isin(used_sites).to_numpy(dtype=np.int64) * 8
        if used_people:
            score += c["attribution"].isin(used_people).to_numpy(dtype=np.int64) * 4
        idx = np.flatnonzero(alive)
        best = int(idx[np.argmin(score[idx])])  # the first of the lowest: source order breaks ties
        if unseen and _unseen_may_win(unseen, int(score[best]), c.loc[best, ["ingest_order", "start", "end"]].tolist(),
                                      used_sites, used_people):
            return None
        row = c.iloc[best].to_dict()
        chosen.append(row)
        alive &= ~((sid == sid[best]) & (start < end[best]) & (start[best] < end))  # overlaps (itself too)
        used_sites.append(row["site"])
        used_people.append(row["attribution"])
    if unseen and len(chosen) < n:  # the candidates ran out: one left out could have been next
        return None
    used.update((c["source_id"], c["start"], c["end"]) for c in chosen)
    return chosen


def _unseen_may_win(unseen: list[tuple], score: int, key: list, used_sites: list, used_people: list) -> bool:
    """True when a left-out candidate (``unseen``, see :func:`_pick_quotes`) could score below ``score`` or
    equal it and come before ``key`` (``(ingest_order, start, end)`` of the step's choice)."""
    key = tuple(int(x) for x in key)
    for site, who, base, last in unseen:
        low = base + 8 * (site in used_sites) + 4 * (who in used_people)
        if low < score or (low == score and not last > key):
            return True
    return False


def _theme_code_ids(conn: Connection, rows: list[tuple[dict, int, str | None]]) -> dict[int, list[int]]:
    """Theme id -> its code ids: assigned codes and their descendants; a theme without codes of its own
    draws on its sub-themes' codes."""
    links: dict[int, list[int]] = {}
    for tid, cid in conn.execute(select(S.theme_codes.c.theme_id, S.theme_codes.c.code_id)
                                 .select_from(S.theme_codes.join(S.codes, S.theme_codes.c.code_id == S.codes.c.id))
                                 .order_by(S.codes.c.ord, S.codes.c.id)):
        links.setdefault(tid, []).append(cid)
    expanded: dict[int, list[int]] = {}
    for tid, cids in links.items():
        ids: list[int] = []
        for cid in cids:
            for x in [cid] + descendants(conn, cid):
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


def _theme_frame(conn: Connection, ids: list[int], filters: dict | None, batch: int = 100_000) -> pd.DataFrame:
    """The codings of ``ids`` that ``filters`` keep, with what the theme table needs, read a batch at a
    time into compact columns (ids and numbers; every repeated text one shared object): on a million
    codings a row of Python objects each would take a gigabyte."""
    from .retrieval import coding_frame
    from .sqlquery import CodingQuery
    from ..sources import SpanAttributor

    if filters and "attribution" in filters:  # worded in Python: the full frame, filtered after the query
        return coding_frame(conn, ids, filters=filters, extra=("turn_speaker",), attributes=False) \
            .assign(rule=lambda d: d["origin"].astype(str).str.startswith("rule:"))
    cols = ["coding_id", "code_id", "source_id", "start", "end", "participant_id", "site", "turn_speaker", "coder",
            "origin"]
    result = conn.execute(CodingQuery(conn, ids, filters).build(*cols, dedupe=False))
    cursor = getattr(result, "cursor", None)
    fetch = cursor.fetchmany if cursor is not None else (lambda n: [tuple(r) for r in result.fetchmany(n)])
    shared: dict = {}
    parts = []
    while True:
        chunk = fetch(batch)
        if not chunk:
            break
        df = pd.DataFrame(chunk, columns=cols)
        for k in ("site", "turn_speaker", "coder"):
            df[k] = pd.Series([shared.setdefault(x, x) for x in df[k]], index=df.index, dtype=object)
        df["rule"] = df["origin"].str.startswith("rule:").to_numpy(dtype=bool)
        parts.append(df.drop(columns="origin"))
    result.close()
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols[:-1] + ["rule"])
    src = S.sources
    srcs = {r[0]: (r[1], r[2]) for r in conn.execute(select(src.c.id, src.c.name, src.c.ingest_order))}
    codes = code_labels(conn)  # the name, or the path when another code has the same name
    people = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
    df["code"] = df["code_id"].map(codes)
    df["source"] = df["source_id"].map({k: v[0] for k, v in srcs.items()})
    df["ingest_order"] = df["source_id"].map({k: v[1] for k, v in srcs.items()})
    df["participant"] = pd.Series([people.get(x) if x == x and x is not None else None for x in df["participant_id"]],
                                  index=df.index, dtype=object)
    who = SpanAttributor(conn, df["source_id"].unique().tolist()) if len(df) else None
    df["attribution"] = pd.Series(who.many(df["source_id"].to_numpy(), df["start"].to_numpy()) if who else [],
                                  index=df.index, dtype=object)
    # sorted as the coding frame is (names by their rank: the same order, sorting integers)
    code_rank = {n: i for i, n in enumerate(sorted(set(codes.values())))}
    coder_rank = {n: i for i, n in enumerate(sorted(set(df["coder"].tolist())))}
    df["_code_rank"] = df["code"].map(code_rank)
    df["_coder_rank"] = df["coder"].map(coder_rank)
    return df.sort_values(["ingest_order", "start", "end", "_code_rank", "_coder_rank", "coding_id"]) \
        .reset_index(drop=True)


# Candidates for quotes are preselected in SQL (_preselect): within each group of spans that score alike
# but for rule or person, overlaps and earlier themes' quotes (same site, same speaker key, length class),
# the first PRESELECT + 1 in source order; _pick_quotes proves each choice against the groups cut short,
# and a theme whose choice it cannot prove is read again with PRESELECT_GROWTH times as many.
PRESELECT = 4
PRESELECT_GROWTH = 8


def theme_summaries_conn(conn: Connection, quotes_per_theme: int = 3,
                         filters: dict | None = None) -> list[ThemeSummary]:
    """:func:`theme_summaries` inside the caller's connection (the reports use this).

    Each theme's counts (a GROUP BY) and quote candidates (a window function) come from one query over its
    codings (:func:`_preselect`), so memory stays bounded however many codings support a theme; a filter
    on ``attribution`` (worded in Python) reads the codings instead (:func:`_summaries_from_frame`)."""
    rows = _theme_rows(conn)
    expanded = _theme_code_ids(conn, rows)
    if filters and "attribution" in filters:
        return _summaries_from_frame(conn, rows, expanded, quotes_per_theme, filters)
    names = code_labels(conn)
    ctx = _QuoteContext(conn, names)
    out: list[ThemeSummary] = []
    used: set = set()  # spans quoted for an earlier theme (tree order): used again only when nothing else is left
    for r, depth, parent in rows:
        ids = expanded.get(r["id"], [])
        counts, quotes = (0, 0, 0, 0), []
        if ids:
            limit: int | None = PRESELECT
            while True:
                groups, cands, unseen = _preselect(conn, ids, filters, limit, ctx)
                counts = _theme_counts(groups, ctx)
                picked = _pick_quotes(cands, quotes_per_theme, used, unseen) if counts[0] else []
                if picked is not None:
                    break
                limit = (limit + 1) * PRESELECT_GROWTH if limit < 100_000 else None
            quotes = [ctx.quote(q) for q in picked]
        out.append(ThemeSummary(theme_id=r["id"], name=r["name"], parent=parent, depth=depth, phase=r["phase"],
                                description=r["description"], codes=[names[i] for i in ids], code_ids=list(ids),
                                codings=counts[0], participants=counts[1], sites=counts[2], sources=counts[3],
                                quotes=quotes))
    return out


class _QuoteContext:
    """What the theme queries share: the speakers' attribution, the code labels and their order, the
    sources' names and texts (read when first needed), and the widest run of white space in any text."""

    def __init__(self, conn: Connection, names: dict[int, str]):
        self.conn = conn
        self.names = names
        label_rank = {label: rank for rank, label in enumerate(sorted(set(names.values())))}
        self.code_rank = {cid: label_rank[label] for cid, label in names.items()}
        self._who = None
        self.interviewers = interviewer_speakers(conn)
        self.texts: dict[int, str] = {}
        self.sources = {r[0]: r[1] for r in conn.execute(select(S.sources.c.id, S.sources.c.name))}
        self.people = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        # a coding's site (sqlquery.CodingQuery's rule): the source's site, else its speaker's, else the
        # source participant's
        self.people_sites = dict(conn.execute(select(S.participants.c.id, S.participants.c.site)).all())
        self.source_sites = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                              .where(S.source_attributes.c.name == "site")).all())
        self.source_people = dict(conn.execute(select(S.sources.c.id, S.sources.c.participant_id)).all())
        # a participant without a code is attributed by speaker or source: then group by source too
        self.by_source = any(not c for c in self.people.values())
        # the interviewer labels among the unmapped speakers (never quoted, counted as no participant)
        seg = S.segments
        self.asked = sorted(x for (x,) in conn.execute(select(seg.c.speaker).distinct().where(
            seg.c.participant_id.is_(None), seg.c.speaker.is_not(None))) if is_interviewer_label(x, self.interviewers))

    @cached_property
    def ws(self) -> int:
        """The most white space a span's ends can lose to strip() (the longest run in any text, read one
        text at a time): a span longer than QUOTE_MAX + 2 * ws is too long whatever its ends hold."""
        import re

        ws = 0
        runs, space = re.compile(r"\s\s+"), re.compile(r"\s")
        for (text,) in self.conn.execute(select(S.sources.c.text).execution_options(stream_results=True)):
            text = text or ""
            ws = max(ws, max((len(m) for m in runs.findall(text)), default=1 if space.search(text) else 0))
        return ws

    def site(self, source_id: int, participant_id: int | None) -> str | None:
        for site in (self.source_sites.get(source_id), self.people_sites.get(participant_id),
                     self.people_sites.get(self.source_people.get(source_id))):
            if site is not None:
                return site
        return None

    def who(self):
        """Who said what (:class:`sp_realist.sources.SpanAttributor`, read once, when first needed)."""
        if self._who is None:
            from ..sources import SpanAttributor

            self._who = SpanAttributor(self.conn)
        return self._who

    def text(self, source_ids) -> dict[int, str]:
        missing = sorted({int(x) for x in source_ids} - set(self.texts))
        for i in range(0, len(missing), 500):
            self.texts.update(self.conn.execute(select(S.sources.c.id, S.sources.c.text)
                                                .where(S.sources.c.id.in_(missing[i:i + 500]))).all())
        return self.texts

    def quote(self, q: dict) -> ThemeQuote:
        pid = q["participant_id"]
        participant = self.people.get(int(pid)) if pid is not None and pid == pid else None
        return ThemeQuote(text=self.texts[q["source_id"]][q["start"]:q["end"]].strip(),
                          attribution=f"({q['attribution']})", participant=participant,
                          site=None if pd.isna(q["site"]) else q["site"], source=self.sources[q["source_id"]],
                          source_id=int(q["source_id"]), start=int(q["start"]), end=int(q["end"]),
                          code=self.names[q["code_id"]], coding_id=int(q["coding_id"]))


_THEME_COLUMNS = ("coding_id", "code_id", "source_id", "start", "end", "participant_id", "site", "turn_speaker",
                  "origin", "coder", "kind", "ingest_order")


def _theme_counts(groups: list[tuple], ctx: _QuoteContext) -> tuple[int, int, int, int]:
    """(codings, participants, sites, sources) of a theme from its codings counted by source, participant and
    speaker of the turn (``(source_id, participant_id, turn_speaker, codings, first start)``, which together
    decide who said a coding and at which site): interviewer turns count as codings but not as participants;
    the participants are the distinct attributions of the rest, worded for each group's first coding."""
    if not groups:
        return 0, 0, 0, 0
    speech = [g for g in groups if g[2] is None or g[2] not in ctx.asked]
    people = set(ctx.who().many([g[0] for g in speech], [g[4] for g in speech])) if speech else set()
    sites = {ctx.site(g[0], g[1]) for g in groups} - {None}
    return sum(g[3] for g in groups), len(people), len(sites), len({g[0] for g in groups})


def _preselect(conn: Connection, ids: list[int], filters: dict | None, limit: int | None,
               ctx: _QuoteContext) -> tuple[list[tuple], pd.DataFrame, list[tuple]]:
    """A theme's codings counted for :func:`_theme_counts`, its quote candidates as :func:`_pick_quotes` takes
    them, and the groups cut short (``unseen``): one query, whose codings (a CTE, read once) are grouped for
    the counts and ranked for the candidates.

    Candidates are the spans coded outside interviewer turns, each shown by its first coding in source
    order, then by code label, coder and id (as the frame of every coding was sorted).  Spans are grouped
    by what their score is made of apart from rule or person: site, the speaker key (participant and
    source kind; else the source and the unmapped turn's speaker) and length class (shorter than
    QUOTE_MIN: too short; longer than QUOTE_MAX plus twice the widest run of white space in any text:
    too long; else decided on the stripped text).  Of each group, every coding of the first ``limit`` + 1
    spans in source order is read (all when ``limit`` is None): one window function (DENSE_RANK)."""
    from sqlalchemy import Integer, String, case, cast, func, literal, null, union_all

    from .sqlquery import CodingQuery, is_rule

    r = CodingQuery(conn, ids, filters).build(*_THEME_COLUMNS, dedupe=False).cte("r")
    raw = r.c.end - r.c.start
    length_class = case((raw < QUOTE_MIN, 0), (raw > QUOTE_MAX + 2 * ctx.ws, 2), else_=1)
    source_key = r.c.source_id if ctx.by_source else case(
        (and_(r.c.turn_speaker.is_(None), r.c.participant_id.is_not(None)), null()), else_=r.c.source_id)
    group = [r.c.site, r.c.participant_id, r.c.kind, source_key, r.c.turn_speaker, length_class]
    cols = [r.c[k] for k in _THEME_COLUMNS if k not in ("origin", "kind")]
    g = select(*cols, case((is_rule(r.c.origin), 1), else_=0).label("rule"), length_class.label("length_class"),
               func.dense_rank().over(partition_by=group, order_by=[r.c.ingest_order, r.c.start, r.c.end,
                                                                    r.c.source_id]).label("rank"))
    if ctx.asked:
        g = g.where(or_(r.c.turn_speaker.is_(None), r.c.turn_speaker.not_in(ctx.asked)))
    g = g.subquery("g")
    names = list(g.c.keys())
    cands = select(literal(1).label("part"), *[g.c[k] for k in names], cast(null(), Integer).label("n"))
    if limit is not None:
        cands = cands.where(g.c.rank <= limit + 1)
    keys = (r.c.source_id, r.c.participant_id, r.c.turn_speaker)
    typed = {"site": String, "turn_speaker": String, "coder": String}
    counted = {"source_id": r.c.source_id, "participant_id": r.c.participant_id, "turn_speaker": r.c.turn_speaker,
               "start": func.min(r.c.start)}
    groups = select(literal(0).label("part"),
                    *[counted[k] if k in counted else cast(null(), typed.get(k, Integer)) for k in names],
                    func.count().label("n")).group_by(*keys)
    rows = fetch_rows(conn, union_all(groups, cands))
    at = {k: i + 1 for i, k in enumerate(names)}
    counts = [(x[at["source_id"]], x[at["participant_id"]], x[at["turn_speaker"]], x[-1], x[at["start"]])
              for x in rows if x[0] == 0]
    df = pd.DataFrame([x[1:-1] for x in rows if x[0] == 1], columns=names)
    if not len(df):
        return counts, df, []
    df["_code_rank"] = df["code_id"].map(ctx.code_rank)
    coders = {n: k for k, n in enumerate(sorted(set(df["coder"].tolist())))}
    df["_coder_rank"] = df["coder"].map(coders)
    df = df.sort_values(["ingest_order", "start", "end", "_code_rank", "_coder_rank", "coding_id"]) \
        .drop_duplicates(["source_id", "start", "end"]).reset_index(drop=True)
    df["rule"] = df["rule"].astype(bool)
    df["attribution"] = pd.Series(ctx.who().many(df["source_id"].to_numpy(), df["start"].to_numpy()),
                                  index=df.index, dtype=object)
    texts = ctx.text(df["source_id"].unique().tolist())
    df["_length"] = np.fromiter((len(texts[s][a:b].strip()) for s, a, b in zip(df["source_id"], df["start"],
                                                                                 df["end"])),
                                dtype=np.int64, count=len(df))
    unseen = []
    if limit is not None:  # a left-out span of the group: a rule's or a person's, after the last one read
        for row in df[df["rank"] > limit].itertuples(index=False):
            unseen.append((row.site, row.attribution, int(row.length_class != 1),
                           (int(row.ingest_order), int(row.start), int(row.end))))
    return counts, df, unseen


def _summaries_from_frame(conn: Connection, rows, expanded, quotes_per_theme: int,
                          filters: dict | None) -> list[ThemeSummary]:
    """The theme summaries from the codings read into a frame (a filter on ``attribution`` needs them)."""
    all_ids = sorted({x for v in expanded.values() for x in v})
    # Filtered in SQL; the speaker of the turn each coding starts in comes along (interviewer turns are never
    # quoted and support no participant count), and the text only for the quotes chosen.
    frame = _theme_frame(conn, all_ids, filters) if all_ids else None
    texts: dict[int, str] = {}
    if frame is not None:
        speakers = interviewer_speakers(conn)
        asked = [x for x in frame["turn_speaker"].dropna().unique().tolist() if is_interviewer_label(x, speakers)]
        sids = sorted(frame["source_id"].unique().tolist())
        texts = dict(conn.execute(select(S.sources.c.id, S.sources.c.text).where(S.sources.c.id.in_(sids))).all())
        frame = frame.assign(_interviewer=frame["turn_speaker"].isin(asked).to_numpy(dtype=bool),
                             _length=np.fromiter((len(texts[s][a:b].strip()) for s, a, b in
                                                  zip(frame["source_id"], frame["start"], frame["end"])),
                                                 dtype=np.int64, count=len(frame)))
    names = code_labels(conn)
    out: list[ThemeSummary] = []
    used: set = set()  # spans quoted for an earlier theme (tree order): used again only when nothing else is left
    for r, depth, parent in rows:
        ids = expanded.get(r["id"], [])
        sub = frame[frame["code_id"].isin(ids)] if frame is not None and ids else None
        quotes: list[ThemeQuote] = []
        if sub is not None and len(sub):
            speech = sub[~sub["_interviewer"]]
            cands = speech.drop_duplicates(["source_id", "start", "end"])  # the frame is in source order
            quotes = [ThemeQuote(text=texts[q["source_id"]][q["start"]:q["end"]].strip(),
                                 attribution=f"({q['attribution']})",
                                 participant=None if pd.isna(q["participant"]) else q["participant"],
                                 site=None if pd.isna(q["site"]) else q["site"], source=q["source"],
                                 source_id=int(q["source_id"]), start=int(q["start"]), end=int(q["end"]),
                                 code=q["code"], coding_id=int(q["coding_id"]))
                      for q in _pick_quotes(cands, quotes_per_theme, used)]
            counts = (int(sub["coding_id"].nunique()), int(speech["attribution"].nunique()),
                      int(sub["site"].nunique()), int(sub["source_id"].nunique()))
        else:
            counts = (0, 0, 0, 0)
        out.append(ThemeSummary(theme_id=r["id"], name=r["name"], parent=parent, depth=depth, phase=r["phase"],
                                description=r["description"], codes=[names[i] for i in ids], code_ids=list(ids),
                                codings=counts[0], participants=counts[1], sites=counts[2], sources=counts[3],
                                quotes=quotes))
    return out


def theme_summaries(project: Project, quotes_per_theme: int = 3, filters: dict | None = None) -> list[ThemeSummary]:
    """Every theme (tree order) as a :class:`ThemeSummary`: its codes with their descendants, how many
    codings, participants, sites and sources support it, and ``quotes_per_theme`` quotes.

    Quotes are never from an interviewer's turn (:func:`sp_realist.sources.interviewer_spans`); they
    spread across sites, then participants, prefer manual codings and readable lengths, and avoid spans
    already quoted for an earlier theme.  The choice is deterministic.
    """
    with project.connect() as conn:
        return theme_summaries_conn(conn, quotes_per_theme, filters)


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

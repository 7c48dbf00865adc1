"""Retrieval and matrices: coded excerpts, frequencies, co-occurrence, framework matrix.

Every function returns a :class:`pandas.DataFrame`.  Each coding is described
by its code, source, coder, origin, the participant (by
:mod:`sp_realist.attribution`: the mapped speaker of the segment; none in a
turn of an unmapped speaker such as the interviewer; else, for diary
sections and paragraphs, the source's participant), its ``attribution``
(who said it, by :func:`sp_realist.sources.span_attributions`: the mapped
speaker's code, "Interviewer, S2 PM1 interview" for a speaker who is no
participant, else the source's participant, site or name), that
participant's role and site, the source's kind and date and every source and
participant attribute (``wave``, ``health_board`` ...).  ``filters`` selects
codings by any of these: ``{"site": "S1", "role": ["link worker", "manager"]}``.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..sources import SpanAttributor
from ..store import Project
from . import digests
from ._common import PACK, CodeTree, code_ids_for, descendants, fetch_frame, fetch_rows, labelled_code_rows, unpack_lists
from .codebook import _tree_order
from .sqlquery import NOT_TALLIED, PER_CODING, CodingQuery

BASE_COLUMNS = ["coding_id", "code_id", "code", "source_id", "source", "kind", "date", "start", "end", "coder",
                "origin", "memo", "participant", "role", "site", "attribution", "ingest_order"]
EXCERPT_COLUMNS = ["code", "source", "participant", "attribution", "site", "role", "kind", "start", "end", "coder",
                   "origin", "text", "memo", "coding_id"]


FRAME_COLUMNS = ["coding_id", "code_id", "code", "source_id", "start", "end", "coder", "origin", "memo", "source",
                 "kind", "date", "ingest_order", "participant", "role"]


def coding_frame(conn: Connection, code_ids: list[int] | None = None, text: bool = False,
                 filters: dict[str, Any] | None = None, dedupe: bool = False, extra: tuple[str, ...] = (),
                 attributes: bool = True) -> pd.DataFrame:
    """One row per coding with everything it can be filtered or grouped by (see module doc).

    ``filters`` select codings in the query (:class:`sp_realist.coding.sqlquery.CodingQuery`), and so
    does ``dedupe`` (:func:`drop_rule_duplicates`' rule); only ``attribution``, worded in Python, is
    filtered here.  The attribution and ``text`` are computed for the rows kept only.  ``extra``: more
    columns of the query (``turn_speaker``, ``seg_id`` ...); ``attributes=False`` leaves out the source and
    participant attribute columns (they still filter)."""
    filters = dict(filters or {})
    late = {"attribution": filters.pop("attribution")} if "attribution" in filters else {}
    cq = CodingQuery(conn, code_ids, filters)
    attrs = ((cq.p_attrs + cq.s_attrs) if attributes else []) + ([] if attributes and "site" in cq.s_attrs else ["site"])
    holder = [] if "seg_id" in extra else ["seg_id"]
    cols = FRAME_COLUMNS + attrs + list(extra) + holder
    df = fetch_frame(conn, cq.build(*cols, dedupe=dedupe and not late), cols)
    # Who said it: the mapped speaker's code, an unmapped speaker ("Interviewer, S2 PM1 interview"), else the
    # source's (span_attributions' rule, through its attributor, vectorised over the codings kept); the
    # attributor reads only the segments that hold them (the query found those)
    attributor = SpanAttributor(conn, df["source_id"].unique().tolist(),
                                segment_ids=df["seg_id"].dropna().astype("int64").unique().tolist()) \
        if len(df) else None
    df = df.drop(columns=holder)
    df["attribution"] = pd.Series(attributor.many(df["source_id"].to_numpy(), df["start"].to_numpy())
                                  if attributor else [], index=df.index, dtype="object")
    if late:
        df = apply_filters(df, late)
        if dedupe:
            df = drop_rule_duplicates(df)
    if text and len(df):
        sids = sorted(df["source_id"].unique().tolist())
        texts = dict(conn.execute(select(S.sources.c.id, S.sources.c.text).where(S.sources.c.id.in_(sids))).all())
        df["text"] = [texts[s][a:b] for s, a, b in zip(df["source_id"], df["start"], df["end"])]
    elif text:
        df["text"] = pd.Series([], dtype="object")
    df = df.sort_values(["ingest_order", "start", "end", "code", "coder", "coding_id"]).reset_index(drop=True)
    return df.astype({"start": "int64", "end": "int64"}) if len(df) else df


def apply_filters(df: pd.DataFrame, filters: dict[str, Any] | None) -> pd.DataFrame:
    """Keep rows whose column ``name`` equals the value (or one of the values) for every filter."""
    if not filters:
        return df
    for name, value in filters.items():
        if name not in df.columns:
            available = sorted(set(df.columns) - {"coding_id", "code_id", "source_id", "start", "end", "memo",
                                                   "text", "ingest_order"})
            raise SpRealistError(f"attribute {name!r}: codings have no attribute of that name; use one of {', '.join(available)}.")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        values = {str(v) for v in values}
        df = df[df[name].astype("string").isin(values).fillna(False).astype(bool)]
    return df


def drop_rule_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without autocodings (origin ``rule:NAME``) of words that a person (any other origin) also
    coded with the same code, nor a second rule's coding of the same words: such duplicates count once.

    The store keeps every coding; retrievals and matrices show the person's coding (its coder and
    origin), and a rule's coding only where no person coded exactly those words (same code, source,
    start and end) - then the first rule's (lowest coding id)."""
    if df.empty:
        return df
    rule = df["origin"].astype("string").str.startswith("rule:").fillna(False).to_numpy(dtype=bool)
    if not rule.any():
        return df
    key = ["code_id", "source_id", "start", "end"]
    person = df.loc[~rule, key].drop_duplicates()
    rules = df[rule].sort_values("coding_id", kind="stable").drop_duplicates(key)
    rules = rules.merge(person.assign(_person=True), on=key, how="left")
    keep_ids = set(rules.loc[rules["_person"].isna(), "coding_id"].tolist())
    return df[~rule | df["coding_id"].isin(keep_ids).to_numpy(dtype=bool)]


def _frame(project: Project, codes: Iterable[str] | None = None, children: bool = False,
           filters: dict | None = None, text: bool = False) -> tuple[pd.DataFrame, list[dict]]:
    """The codings selected (``filters`` first, so ``coder=autocode`` still shows a rule's codings),
    with rule-and-person duplicates counted once (:func:`drop_rule_duplicates`)."""
    with project.connect() as conn:
        ids = code_ids_for(conn, list(codes) if codes else None, children)
        df = coding_frame(conn, ids, text=text, filters=filters, dedupe=True)
        rows = labelled_code_rows(conn)
    return df, rows


def _counts(conn: Connection, ids: list[int] | None, filters: dict | None, keys: list[str], text: tuple = (),
            dedupe: bool = True, distinct: bool = False, tallied: bool = False) -> pd.DataFrame:
    """How many codings (column ``n``) have each combination of ``keys`` among the codings of ``ids``
    that ``filters`` keep: a GROUP BY in the database.  Grouping or filtering by ``attribution`` (worded
    in Python) groups :func:`coding_frame`'s rows instead.

    ``distinct``: only which combinations occur (no ``n``), a SELECT DISTINCT.  Rule-and-person
    duplicates then change nothing unless a key or filter is one that two such codings differ in
    (:data:`sp_realist.coding.sqlquery.PER_CODING`: each duplicate left out has a twin kept, of the same
    code and words, so of the same source, participant and attributes), and are not looked for."""
    keys = list(dict.fromkeys(keys))
    if "attribution" in keys or "attribution" in (filters or {}):
        df = coding_frame(conn, ids, filters=filters, dedupe=dedupe)
        df = df.assign(**{k: df[k].astype("string").astype(object).where(df[k].notna(), None) for k in text})
        if not len(df):
            return pd.DataFrame({k: [] for k in keys + ["n"]})
        return df.groupby(keys, dropna=False, sort=False).size().reset_index(name="n")
    if tallied:  # the digests' tallies hold what is asked: sum them (sp_realist.coding.digests)
        cq = CodingQuery(conn, ids, filters, tallied=True)
        if cq.tallyable(keys) and "code_id" in keys and "code" not in keys:
            groups, group, code, n = _speaker_matrix(conn, ids, filters, [k for k in keys if k != "code_id"],
                                                     text, dedupe)
            return _grouped(keys, groups, group, code, None if distinct else n)
        if cq.tallyable(keys):
            if distinct:
                return fetch_frame(conn, cq.build(*keys, dedupe=dedupe, text=tuple(text)).distinct(), keys)
            sub = cq.build(*keys, "n", dedupe=dedupe, text=tuple(text)).subquery("k")
            group = [sub.c[k] for k in keys]
            return fetch_frame(conn, select(*group, func.sum(sub.c.n).label("n")).group_by(*group), keys + ["n"])
    if distinct:
        dedupe = dedupe and any(k in PER_CODING for k in [*keys, *(filters or {})])
        return fetch_frame(conn, CodingQuery(conn, ids, filters).build(*keys, dedupe=dedupe, text=tuple(text))
                           .distinct(), keys)
    sub = CodingQuery(conn, ids, filters).build(*keys, dedupe=dedupe, text=tuple(text)).subquery("k")
    group = [sub.c[k] for k in keys]
    return fetch_frame(conn, select(*group, func.count().label("n")).group_by(*group), keys + ["n"])


def _speaker_matrix(conn: Connection, ids: list[int] | None, filters: dict | None, keys: list[str], text=(),
                    dedupe: bool = True) -> tuple[list[tuple], np.ndarray, np.ndarray, np.ndarray]:
    """The digests' tallies as groups x codes: ``(groups, group, code, n)``, ``groups`` the distinct values of
    ``keys`` (tuples) over the sources and participants the tallies have and ``filters`` keep, and for each
    (source and participant, code) tallied: its group's index, the code id and its codings (duplicates once
    with ``dedupe``).  ``keys`` (and the filters) must follow from a source and a participant
    (:meth:`CodingQuery.tallyable`): they are worded once per source and participant -- a few thousand
    rows -- and not once per tally, and the tallies come as one string of numbers per source and participant
    (``code id * 2**31 + n``: both are 32-bit in the schema), so that a million codings are counted from a
    few thousand rows read."""
    from sqlalchemy import BigInteger, String, cast, literal

    cq = CodingQuery(conn, ids, filters, tallied=True, speakers=True)
    groups: dict[tuple, int] = {}
    where: dict[tuple, int] = {}
    for row in fetch_rows(conn, cq.build("source_id", "participant_id", *keys, text=tuple(text))):
        where[(row[0], row[1])] = groups.setdefault(tuple(row[2:]), len(groups))
    t = S.coding_tallies
    coded = cast(t.c.code_id * literal(PACK, BigInteger) + (t.c.n if dedupe else t.c.n_all), String)
    q = select(t.c.source_id, t.c.participant_id, func.aggregate_strings(coded, ","))
    if cq.code_ids is not None:  # (a code filter is in cq.code_ids)
        q = q.where(t.c.code_id.in_(cq.code_ids))
    group, values = unpack_lists([(where[(s, p)], text_) for s, p, text_ in
                                  fetch_rows(conn, q.group_by(t.c.source_id, t.c.participant_id))
                                  if (s, p) in where and text_])
    code, n = np.divmod(values, PACK)
    return list(groups), group, code, n


def _grouped(keys: list[str], groups: list[tuple], group: np.ndarray, code: np.ndarray,
             n: np.ndarray | None) -> pd.DataFrame:
    """:func:`_counts`' frame from :func:`_speaker_matrix`: each (code, group) once, with ``n`` summed unless
    ``n`` is None (which combinations occur)."""
    others = [k for k in keys if k != "code_id"]
    size = max(len(groups), 1)
    key, inv = np.unique(code * size + group, return_inverse=True)
    codes, at = np.divmod(key, size)
    cols: dict[str, Any] = {}
    for k in keys:
        if k == "code_id":
            cols[k] = codes
        else:
            j = others.index(k)
            cols[k] = np.array([g[j] for g in groups] + [None], dtype=object)[at] if len(groups) else at
    if n is not None:
        cols["n"] = np.bincount(inv, weights=n, minlength=len(key)).astype(np.int64)
    return pd.DataFrame(cols, columns=keys + ([] if n is None else ["n"]))


def _code_totals(conn: Connection, ids: list[int] | None, filters: dict | None, tallied: bool) -> pd.DataFrame:
    """Per code: ``codings`` (duplicates once), distinct ``sources`` and distinct ``participants`` of the codings
    ``filters`` keep, in one GROUP BY (from the digests' tallies when ``tallied`` and they hold the filters)."""
    if tallied and CodingQuery(conn, ids, filters, tallied=True).tallyable(["code_id", "source_id", "participant_id"]):
        groups, group, code, n = _speaker_matrix(conn, ids, filters, ["source_id", "participant_id"])
        codes, pos = np.unique(code, return_inverse=True)
        src = np.unique(np.array([g[0] for g in groups], dtype=np.int64), return_inverse=True)[1]
        pids = np.array([-1 if g[1] is None else g[1] for g in groups], dtype=np.int64)
        person = np.unique(pids, return_inverse=True)[1]
        spoke = pids[group] >= 0  # said by a participant

        def distinct(of: np.ndarray, keep: np.ndarray) -> np.ndarray:
            """How many distinct values of ``of`` each code has (among the entries ``keep``)."""
            width = int(of.max(initial=0)) + 1
            pairs = np.unique(pos[keep] * width + of[keep])
            return np.bincount(pairs // width, minlength=len(codes))

        return pd.DataFrame({"code_id": codes, "codings": np.bincount(pos, weights=n, minlength=len(codes))
                             .astype(np.int64), "sources": distinct(src[group], np.ones(len(group), dtype=bool)),
                             "participants": distinct(person[group], spoke)})
    cq = CodingQuery(conn, ids, filters, tallied=tallied)
    if tallied and not cq.tallyable(["code_id", "source_id", "participant_id"]):
        cq = CodingQuery(conn, ids, filters)
    sub = cq.build("code_id", "source_id", "participant_id", *(["n"] if cq.tallied else [])).subquery("k")
    q = (select(sub.c.code_id, (func.sum(sub.c.n) if cq.tallied else func.count()).label("codings"),
                func.count(sub.c.source_id.distinct()), func.count(sub.c.participant_id.distinct()))
         .group_by(sub.c.code_id))
    return fetch_frame(conn, q, ["code_id", "codings", "sources", "participants"])


def _may_tally(filters: dict | None, *keys: str | None) -> bool:
    """Whether the digests' tallies may hold a count by ``keys`` under ``filters`` (not by anything two codings
    of one tally can differ in); :meth:`CodingQuery.tallyable` decides for good."""
    return not any(k in NOT_TALLIED for k in [*keys, *(filters or {})])


def _descendant_map(rows: list[dict]) -> dict[int, list[int]]:
    """Code id -> ids of its descendants (the code tree of ``rows``, as :func:`descendants` walks it)."""
    children: dict[int | None, list[int]] = {}
    for r in rows:
        children.setdefault(r["parent_id"], []).append(r["id"])
    out: dict[int, list[int]] = {}
    for r in rows:
        found, stack = [], list(children.get(r["id"], []))
        while stack:
            cid = stack.pop()
            found.append(cid)
            stack.extend(children.get(cid, []))
        out[r["id"]] = found
    return out


def _rolled(counts: pd.DataFrame, rows: list[dict], rollup: bool) -> pd.DataFrame:
    """``counts`` (per ``code_id``) with a ``code`` name column; with ``rollup`` each code's descendants'
    rows are repeated under it."""
    names = {r["id"]: r["name"] for r in rows}
    parts = [counts.assign(code=counts["code_id"].map(names))]
    if rollup and len(counts):
        for cid, sub in _descendant_map(rows).items():
            if sub:
                parts.append(counts[counts["code_id"].isin(sub)].assign(code=names[cid]))
    return pd.concat(parts, ignore_index=True)


def _blind_filter(project: Project, filters: dict[str, Any]) -> None:
    """Blind coding: a coder's listing holds only their own codings (:func:`sp_realist.team.roles.coding_restriction`)."""
    from ..team.roles import coding_restriction

    only = coding_restriction(project)
    if only is None:
        return
    if filters.get("coder") not in (None, only):
        raise SpRealistError(f"blind coding is on, so you see only your own codings ({only!r}), not "
                             f"{filters['coder']!r}'s; an analyst sees everyone's.")
    filters["coder"] = only


def coded_excerpts(project: Project, code: str | Iterable[str] | None = None, children: bool = False,
                   filters: dict[str, Any] | None = None, coder: str | None = None) -> pd.DataFrame:
    """The coded text for ``code`` (and its descendants with ``children``), in source order,
    with attribution like ``"(S1 DK1)"``; ``filters`` by any attribute (site, role, kind, wave, coder ...)."""
    codes = [code] if isinstance(code, str) else (list(code) if code else None)
    filters = dict(filters or {})
    if coder:
        filters["coder"] = coder
    _blind_filter(project, filters)
    df, _ = _frame(project, codes, children, filters, text=True)
    out = df.copy()
    out["attribution"] = "(" + out["attribution"].astype(str) + ")" if len(out) else out["attribution"]
    extra = [c for c in df.columns if c not in BASE_COLUMNS + ["text"]]
    return out[EXCERPT_COLUMNS + extra].reset_index(drop=True)


def own_and_descendant_codings(project: Project, codes: Iterable[str], filters: dict[str, Any] | None = None,
                               coder: str | None = None, parents_only: bool = False) -> pd.DataFrame:
    """For each code: how many codings it has itself (``own``) and how many its descendants have
    (``descendants``), under the same ``filters`` and ``coder`` as :func:`coded_excerpts`.
    ``parents_only`` leaves out (and does not count) codes without descendants."""
    filters = dict(filters or {})
    if coder:
        filters["coder"] = coder
    _blind_filter(project, filters)
    rows = []
    # the digests when they are there (a few codes' codings are quickly counted: not worth making them)
    with digests.reading(project, "tallies", wanted=_may_tally(filters), make=False) as (conn, tallied):
        tree = CodeTree.read(conn)
        for ref in codes:
            code = dict(tree.resolve(ref))
            code["name"] = tree.label(code["id"])
            ids = [code["id"]] + descendants(conn, code["id"])
            if parents_only and len(ids) == 1:
                continue
            counts = _counts(conn, ids, filters, ["code_id"], dedupe=False, tallied=tallied)
            own = int(counts.loc[counts["code_id"] == code["id"], "n"].sum())
            rows.append({"code": code["name"], "own": own, "descendants": int(counts["n"].sum()) - own})
    return pd.DataFrame(rows, columns=["code", "own", "descendants"])


def _code_order(rows: list[dict]) -> list[str]:
    return [r["name"] for r, _d, _p in _tree_order(rows)]


def _selected_order(project: Project, rows: list[dict], codes, children: bool) -> list[str]:
    """Names of the selected codes (all when ``codes`` is empty) in codebook tree order."""
    if not codes:
        return _code_order(rows)
    with project.connect() as conn:
        wanted = set(code_ids_for(conn, list(codes), children))
    return [r["name"] for r, _d, _p in _tree_order(rows) if r["id"] in wanted]


def frequencies(project: Project, by: str | None = None, codes: Iterable[str] | None = None, children: bool = False,
                filters: dict[str, Any] | None = None, measure: str = "codings", rollup: bool = False) -> pd.DataFrame:
    """How often each code is used.

    Without ``by``: one row per code with the number of codings, sources and
    participants.  With ``by`` (any attribute: site, role, kind, wave, coder,
    participant ...): codes x attribute values, counting ``measure``
    (``codings``, ``sources`` or ``participants``), plus a ``total`` column.
    ``rollup`` counts a code's descendants under it as well.  The counting is
    a GROUP BY in the database (see :func:`_counts`).
    """
    if measure not in ("codings", "sources", "participants"):
        raise SpRealistError(f"measure {measure!r} is not one of codings, sources, participants.")
    with digests.reading(project, "tallies", wanted=_may_tally(filters, by)) as (conn, tallied):
        ids = code_ids_for(conn, list(codes) if codes else None, children)
        rows = labelled_code_rows(conn)
        unit = {"codings": None, "sources": "source_id", "participants": "participant"}[measure]
        if by is None and not rollup and "attribution" not in (filters or {}):
            totals = _code_totals(conn, ids, filters, tallied)
        elif by is None:
            counts = _counts(conn, ids, filters, ["code_id", "source_id", "participant"], tallied=tallied)
        else:
            counts = _counts(conn, ids, filters, ["code_id", by] + ([unit] if unit else []), text=(by,),
                             distinct=unit is not None, tallied=tallied)
    order = _selected_order(project, rows, codes, children)
    if by is None and not rollup and "attribution" not in (filters or {}):
        names = {r["id"]: r["name"] for r in rows}
        totals = totals.assign(code=totals["code_id"].map(names)).set_index("code")
        out = pd.DataFrame({"code": order})
        for col in ("codings", "sources", "participants"):
            out[col] = out["code"].map(totals[col]).fillna(0).astype(int)
        return out
    df = _rolled(counts, rows, rollup)
    if by is None:
        g = df.groupby("code")
        out = pd.DataFrame({"code": order})
        out["codings"] = out["code"].map(g["n"].sum()).fillna(0).astype(int)
        out["sources"] = out["code"].map(g["source_id"].nunique()).fillna(0).astype(int)
        out["participants"] = out["code"].map(g["participant"].nunique()).fillna(0).astype(int)
        return out
    values = sorted(df[by].dropna().astype(str).unique().tolist())
    sub = df.assign(_by=df[by].astype("string").fillna("(none)"))
    count = (lambda g: g["n"].sum()) if unit is None else (lambda g: g[unit].nunique())
    counts = count(sub.groupby(["code", "_by"])).unstack(fill_value=0) if len(sub) else pd.DataFrame()
    cols = values + (["(none)"] if "(none)" in counts.columns else [])
    counts = counts.reindex(index=order, columns=cols, fill_value=0).fillna(0).astype(int)
    total = (count(sub.groupby("code")) if len(sub) else pd.Series(dtype="int64")).reindex(order).fillna(0).astype(int)
    out = counts.reset_index().rename(columns={"index": "code"})
    out.columns = ["code"] + cols
    out["total"] = total.values
    return out


def cooccurrence(project: Project, mode: str = "overlap", codes: Iterable[str] | None = None, children: bool = False,
                 filters: dict[str, Any] | None = None) -> pd.DataFrame:
    """A symmetric code x code matrix.

    ``overlap``: the number of pairs of codings, one of each code, whose spans
    overlap in the same source; the diagonal is each code's number of codings.
    ``segment``: the number of segments that both codes touch; the diagonal is
    the number of segments each code touches.  Pairs are joined and counted in
    the database (:func:`overlap_pairs`, :func:`segment_pairs`).
    """
    if mode not in ("overlap", "segment"):
        raise SpRealistError(f"co-occurrence mode {mode!r} is not overlap or segment.")
    with digests.reading(project, mode, wanted=not filters) as (conn, digested):
        ids = code_ids_for(conn, list(codes) if codes else None, children)
        rows = labelled_code_rows(conn)
        if digested:  # every source's counts kept in its digest: summed (sp_realist.coding.digests)
            pairs = digests.pairs(conn, mode, ids)
        else:
            pairs = (overlap_pairs if mode == "overlap" else segment_pairs)(conn, ids, filters)
    order = _selected_order(project, rows, codes, children)
    index = {r["id"]: order.index(r["name"]) for r in rows if r["name"] in order}
    n = len(order)
    mat = np.zeros((n, n), dtype=np.int64)
    pairs = pairs[pairs["a"].isin(index) & pairs["b"].isin(index)]
    if len(pairs):
        np.add.at(mat, (pairs["a"].map(index).to_numpy(), pairs["b"].map(index).to_numpy()),
                  pairs["n"].to_numpy(dtype=np.int64))
    if mode == "overlap":
        mat = mat + mat.T - np.diag(np.diag(mat))  # pairs were counted once each; the diagonal is per code
    out = pd.DataFrame(mat, columns=order)
    out.insert(0, "code", order)
    return out


def overlap_pairs(conn: Connection, ids: list[int] | None, filters: dict | None,
                  batch: int = 100_000) -> pd.DataFrame:
    """Columns ``a``, ``b``, ``n``: for codes a != b, how many pairs of codings (one of each) overlap in the
    same source, each pair counted once (under the code of the coding first in (start, end, id) order);
    for a == b, how many codings code a has.

    The codings (filtered and deduplicated by the query) are read in source order, a batch of whole
    sources at a time, and their overlapping pairs are swept on numpy arrays: a pair join in SQL reads a
    row per pair (5x slower on 1M codings), while the sweep's memory is bounded by the batch."""
    sums = PairSums.for_codebook(conn)
    for arr in source_batches(conn, CodingQuery(conn, ids, filters), batch):
        _src, a, b, n = sweep_pairs(arr)
        sums.add(a, b, n)
    return sums.frame()


class PairSums:
    """Adds up counts of code pairs (arrays ``a``, ``b``, ``n``) a batch at a time into one count per pair: a
    code x code array when the code ids are small (their largest is ``top``), else a dict of the pairs met."""

    def __init__(self, top: int):
        self.m = int(top) + 1
        self.dense = self.m * self.m <= 1 << 22
        self.acc = np.zeros(self.m * self.m if self.dense else 0, dtype=np.int64)
        self.found: dict[int, int] = {}

    @classmethod
    def for_codebook(cls, conn: Connection) -> "PairSums":
        return cls(conn.execute(select(func.max(S.codes.c.id))).scalar() or 0)

    def add(self, a: np.ndarray, b: np.ndarray, n: np.ndarray) -> None:
        key = np.asarray(a, dtype=np.int64) * self.m + np.asarray(b, dtype=np.int64)
        if self.dense:
            self.acc += np.bincount(key, weights=n, minlength=self.m * self.m).astype(np.int64)
            return
        keys, inv = np.unique(key, return_inverse=True)
        for k, c in zip(keys.tolist(), np.bincount(inv, weights=n).astype(np.int64).tolist()):
            self.found[k] = self.found.get(k, 0) + c

    def frame(self) -> pd.DataFrame:
        """Columns ``a``, ``b``, ``n``, one row per pair met, in (a, b) order."""
        if self.dense:
            keys = np.flatnonzero(self.acc)
            sums = self.acc[keys]
        else:
            keys = np.array(sorted(self.found), dtype=np.int64)
            sums = np.array([self.found[k] for k in keys.tolist()], dtype=np.int64)
        a, b = np.divmod(keys, self.m)
        return pd.DataFrame({"a": a.astype(np.int64), "b": b.astype(np.int64), "n": sums.astype(np.int64)})


def source_batches(conn: Connection, cq: CodingQuery, batch: int = 200_000):
    """The codings ``cq`` selects as int64 arrays of rows (source_id, start, end, coding_id, code_id), read in
    source order, each array holding whole sources (about ``batch`` rows)."""
    q = cq.build("source_id", "start", "end", "coding_id", "code_id").order_by("source_id", "start")
    result = conn.execute(q)
    cursor = getattr(result, "cursor", None)
    fetch = cursor.fetchmany if cursor is not None else (lambda n: [tuple(r) for r in result.fetchmany(n)])
    buf: list[tuple] = []
    try:
        while True:
            rows = fetch(batch)
            if not rows:
                if buf:
                    yield np.asarray(buf, dtype=np.int64)
                break
            buf.extend(rows)
            i = len(buf)  # the last source may go on in the next batch: keep it back
            while i > 0 and buf[i - 1][0] == buf[-1][0]:
                i -= 1
            if i:
                yield np.asarray(buf[:i], dtype=np.int64)
                buf = buf[i:]
    finally:
        result.close()


def sweep_pairs(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The overlapping pairs of rows (source_id, start, end, id, code_id) of whole sources, counted: arrays
    ``source``, ``a``, ``b``, ``n`` (sorted by source, a, b), for a < b the pairs of codings of codes a and b
    whose spans overlap, for a == b the codings of code a."""
    src, starts, ends, cid, code = arr.T
    order = np.lexsort((cid, ends, starts, src))
    src, starts, ends, code = src[order], starts[order], ends[order], code[order]
    big = int(ends.max()) + 1  # one sorted key across sources: a span never reaches the next source's block
    uniq, rank = np.unique(src, return_inverse=True)
    rank = rank.astype(np.int64)
    ks, ke = rank * big + starts, rank * big + ends
    hi = np.searchsorted(ks, ke, side="left")  # later codings j overlap i when start_j < end_i
    many = np.maximum(hi - np.arange(len(ks)) - 1, 0)
    parts = [(rank, code, code)]
    if many.any():
        ii = np.repeat(np.arange(len(ks)), many)
        jj = ii + 1 + (np.arange(many.sum()) - np.repeat(np.cumsum(many) - many, many))
        a, b = code[ii], code[jj]
        keep = a != b
        parts.append((rank[ii][keep], np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])))
    return _tally(uniq, parts)


def _tally(sources: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """Count the triples (source rank, code a, code b) of ``parts``: arrays ``source`` (from ``sources``),
    ``a``, ``b``, ``n``, sorted by source, a, b."""
    codes = np.unique(np.concatenate([np.concatenate([a, b]) for _r, a, b in parts])) if parts else \
        np.empty(0, dtype=np.int64)
    k = len(codes)  # codes as 0..k-1: keys stay small
    out_keys, out_n = [], []
    for r, a, b in parts:
        if not len(a):
            continue
        key = (r * k + np.searchsorted(codes, a)) * k + np.searchsorted(codes, b)
        if len(sources) * k * k <= 1 << 22:  # small: count every key in one array
            n = np.bincount(key, minlength=len(sources) * k * k)
            keys = np.flatnonzero(n)
            n = n[keys]
        else:
            keys, n = np.unique(key, return_counts=True)
        out_keys.append(keys)
        out_n.append(n)
    keys = np.concatenate(out_keys) if out_keys else np.empty(0, dtype=np.int64)
    n = np.concatenate(out_n) if out_n else np.empty(0, dtype=np.int64)
    if len(out_keys) > 1:  # the same key from two parts: add them up
        keys, inv = np.unique(keys, return_inverse=True)
        n = np.bincount(inv, weights=n, minlength=len(keys))
    r, rest = np.divmod(keys, k * k) if k else (keys, keys)
    a, b = np.divmod(rest, k) if k else (keys, keys)
    return sources[r], codes[a], codes[b], n.astype(np.int64)


def segment_pairs(conn: Connection, ids: list[int] | None, filters: dict | None,
                  source_ids: list[int] | None = None, by_source: bool = False,
                  batch: int = 50_000) -> pd.DataFrame:
    """Columns ``a``, ``b``, ``n``: how many segments codes a and b both touch (a == b: segments a touches);
    with ``by_source`` a ``source`` column first, counting each source's segments apart.

    A coding touches the non-empty segments from the one holding its start (the last starting at or
    before it) to the last starting before its end, where they reach past its start; a coding that starts
    before a source's first segment touches none.  The codings (filtered and deduplicated by the query) and
    the segments of their sources are read a batch of whole sources at a time and matched on numpy arrays
    (a segment join in SQL took 10 s on 1M codings)."""
    batches = segment_batches(conn, CodingQuery(conn, ids, filters, source_ids=source_ids), batch)
    if not by_source:
        sums = PairSums.for_codebook(conn)
        for _src, a, b, n in batches:
            sums.add(a, b, n)
        return sums.frame()
    found = [pd.DataFrame({"source": src, "a": a, "b": b, "n": n}) for src, a, b, n in batches]
    if not found:
        return pd.DataFrame({c: [] for c in ("source", "a", "b", "n")}, dtype="int64")
    return pd.concat(found, ignore_index=True)


def segment_batches(conn: Connection, cq: CodingQuery, batch: int = 200_000):
    """:func:`segment_pairs` by source for the codings ``cq`` selects, a batch of whole sources at a time:
    arrays ``source``, ``a``, ``b``, ``n`` sorted by source, a, b."""
    seg = S.segments
    for arr in source_batches(conn, cq, batch):
        srcs = np.unique(arr[:, 0])
        segs = fetch_rows(conn, select(seg.c.source_id, seg.c.start, seg.c.end)
                          .where(seg.c.source_id.in_(srcs.tolist()), seg.c.start < seg.c.end)
                          .order_by(seg.c.source_id, seg.c.start))
        if segs:
            yield _touching_pairs(arr, np.asarray(segs, dtype=np.int64))


def _touching_pairs(arr: np.ndarray, segs: np.ndarray):
    """(source, a, b, n) of :func:`segment_pairs` for codings ``arr`` (source_id, start, end, id, code_id) of
    whole sources and the non-empty segments ``segs`` (source_id, start, end) of those sources, sorted."""
    src, start, end, _cid, code = arr.T
    sources = np.unique(np.concatenate([src, segs[:, 0]]))
    big = int(max(end.max(), segs[:, 2].max())) + 1  # one sorted key across sources, as in sweep_pairs
    seg_rank = np.searchsorted(sources, segs[:, 0])
    seg_key = seg_rank * big + segs[:, 1]
    rank = np.searchsorted(sources, src)
    hold = np.searchsorted(seg_key, rank * big + start, side="right") - 1  # the segment holding the start
    last = np.searchsorted(seg_key, rank * big + end, side="left")  # segments starting before the end
    ok = (hold >= 0) & (seg_rank[np.maximum(hold, 0)] == rank)
    first = np.where(ok & (segs[np.maximum(hold, 0), 2] > start), hold, hold + 1)  # the holder may end before
    many = np.where(ok, np.maximum(last - first, 0), 0)
    which = np.repeat(first, many) + (np.arange(many.sum()) - np.repeat(np.cumsum(many) - many, many))
    coded = np.repeat(code, many)
    # each segment and code once, then every pair of codes on the same segment (both ways and each with itself)
    codes = np.unique(coded)
    touched = np.unique(which * max(len(codes), 1) + np.searchsorted(codes, coded))
    seg_of, code_of = np.divmod(touched, max(len(codes), 1))
    bounds = np.flatnonzero(np.diff(seg_of)) + 1
    group_start = np.concatenate([[0], bounds]) if len(seg_of) else np.empty(0, dtype=np.int64)
    size = np.diff(np.concatenate([group_start, [len(seg_of)]])) if len(seg_of) else group_start
    per = np.repeat(size, size)  # each touched (segment, code): how many codes its segment has
    first_of = np.repeat(group_start, size)
    ii = np.repeat(np.arange(len(seg_of)), per)
    jj = np.repeat(first_of, per) + (np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per))
    return _tally(sources, [(seg_rank[seg_of[ii]], codes[code_of[ii]], codes[code_of[jj]])])


def framework_matrix(project: Project, rows: str = "participant", codes: Iterable[str] | None = None,
                     children: bool = False, cells: str = "counts", filters: dict[str, Any] | None = None,
                     rollup: bool = False) -> pd.DataFrame:
    """The Framework Method matrix: one row per participant (or site, or any attribute), one column per code.

    ``cells="counts"`` gives numbers of codings; ``cells="excerpts"`` the coded
    text, one excerpt per line with its source.  ``rollup`` puts a code's
    descendants' codings in its column too.
    """
    rows_by = {"participants": "participant", "sites": "site"}.get(rows, rows)
    if cells not in ("counts", "excerpts"):
        raise SpRealistError(f"cells {cells!r} is not counts or excerpts.")
    if cells == "counts":  # counted in the database
        with digests.reading(project, "tallies", wanted=_may_tally(filters, rows_by)) as (conn, tallied):
            ids = code_ids_for(conn, list(codes) if codes else None, children)
            code_list = labelled_code_rows(conn)
            counts = _counts(conn, ids, filters, [rows_by, "code_id"], text=(rows_by,), tallied=tallied)
        order = _selected_order(project, code_list, codes, children)
        d = _rolled(counts, code_list, rollup)
        d = d.assign(_row=d[rows_by].astype("string").fillna("(none)"))
        labels = sorted(set(d["_row"].tolist()) - {"(none)"}) + (["(none)"] if "(none)" in set(d["_row"]) else [])
        mat = d.groupby(["_row", "code"])["n"].sum().unstack(fill_value=0) if len(d) else pd.DataFrame()
        mat = mat.reindex(index=labels, columns=order, fill_value=0).fillna(0).astype(int)
        out = mat.reset_index(drop=True)
        out.insert(0, rows_by, labels)
        return out
    df, code_list = _frame(project, codes, children, filters, text=True)
    if rows_by not in df.columns:
        apply_filters(df, {rows_by: []})  # raises the helpful error
    order = _selected_order(project, code_list, codes, children)
    if rollup and len(df):
        by_id = {r["id"]: r["name"] for r in code_list}
        df = pd.concat([df] + [df[df["code_id"].isin(sub)].assign(code=by_id[cid])
                               for cid, sub in _descendant_map(code_list).items() if sub], ignore_index=True)
    d = df.assign(_row=df[rows_by].astype("string").fillna("(none)")) if len(df) else df.assign(_row=[])
    labels = sorted(set(d["_row"].tolist()) - {"(none)"}) + (["(none)"] if "(none)" in set(d["_row"]) else [])
    d = d.sort_values(["ingest_order", "start", "end"], kind="stable").drop_duplicates(["_row", "code", "source_id", "start", "end"])
    d = d.assign(_cell=[f"{t.strip()} [{s}]" for t, s in zip(d["text"], d["source"])]) if len(d) else d.assign(_cell=[])
    mat = d.groupby(["_row", "code"])["_cell"].agg(lambda v: "\n".join(v)).unstack(fill_value="") if len(d) else pd.DataFrame()
    mat = mat.reindex(index=labels, columns=order, fill_value="").fillna("")
    out = mat.reset_index(drop=True)
    out.insert(0, rows_by, labels)
    return out

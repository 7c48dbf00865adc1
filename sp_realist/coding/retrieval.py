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
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..sources import SpanAttributor
from ..store import Project
from ._common import CodeTree, code_ids_for, descendants, fetch_frame, labelled_code_rows
from .codebook import _tree_order
from .sqlquery import PER_CODING, CodingQuery

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
    cols = FRAME_COLUMNS + attrs + list(extra)
    df = fetch_frame(conn, cq.build(*cols, dedupe=dedupe and not late), cols)
    # Who said it: the mapped speaker's code, an unmapped speaker ("Interviewer, S2 PM1 interview"), else the
    # source's (span_attributions' rule, through its attributor, vectorised over the codings kept).
    attributor = SpanAttributor(conn, df["source_id"].unique().tolist()) if len(df) else None
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
            dedupe: bool = True, distinct: bool = False) -> pd.DataFrame:
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
    if distinct:
        dedupe = dedupe and any(k in PER_CODING for k in [*keys, *(filters or {})])
        return fetch_frame(conn, CodingQuery(conn, ids, filters).build(*keys, dedupe=dedupe, text=tuple(text))
                           .distinct(), keys)
    sub = CodingQuery(conn, ids, filters).build(*keys, dedupe=dedupe, text=tuple(text)).subquery("k")
    group = [sub.c[k] for k in keys]
    return fetch_frame(conn, select(*group, func.count().label("n")).group_by(*group), keys + ["n"])


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
    with project.connect() as conn:
        tree = CodeTree.read(conn)
        for ref in codes:
            code = dict(tree.resolve(ref))
            code["name"] = tree.label(code["id"])
            ids = [code["id"]] + descendants(conn, code["id"])
            if parents_only and len(ids) == 1:
                continue
            counts = _counts(conn, ids, filters, ["code_id"], dedupe=False)
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
    with project.connect() as conn:
        ids = code_ids_for(conn, list(codes) if codes else None, children)
        rows = labelled_code_rows(conn)
        unit = {"codings": None, "sources": "source_id", "participants": "participant"}[measure]
        if by is None:
            counts = _counts(conn, ids, filters, ["code_id", "source_id", "participant"])
        else:
            counts = _counts(conn, ids, filters, ["code_id", by] + ([unit] if unit else []), text=(by,),
                             distinct=unit is not None)
    order = _selected_order(project, rows, codes, children)
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
    with project.connect() as conn:
        ids = code_ids_for(conn, list(codes) if codes else None, children)
        rows = labelled_code_rows(conn)
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


def _selected(conn: Connection, ids: list[int] | None, filters: dict | None, name: str, *cols: str):
    return CodingQuery(conn, ids, filters).build("coding_id", "code_id", "source_id", "start", "end", *cols).subquery(name)


def overlap_pairs(conn: Connection, ids: list[int] | None, filters: dict | None,
                  batch: int = 200_000) -> pd.DataFrame:
    """Columns ``a``, ``b``, ``n``: for codes a != b, how many pairs of codings (one of each) overlap in the
    same source, each pair counted once (under the code of the coding first in (start, end, id) order);
    for a == b, how many codings code a has.

    The codings (filtered and deduplicated by the query) are read in source order, a batch of whole
    sources at a time, and their overlapping pairs are swept on numpy arrays: a pair join in SQL reads a
    row per pair (5x slower on 1M codings), while the sweep's memory is bounded by the batch."""
    q = (CodingQuery(conn, ids, filters).build("source_id", "start", "end", "coding_id", "code_id")
         .order_by("source_id", "start"))
    result = conn.execute(q)
    cursor = getattr(result, "cursor", None)
    fetch = cursor.fetchmany if cursor is not None else (lambda n: [tuple(r) for r in result.fetchmany(n)])
    counts: dict[tuple[int, int], int] = {}
    buf: list[tuple] = []
    while True:
        rows = fetch(batch)
        if not rows:
            if buf:
                _sweep(np.asarray(buf, dtype=np.int64), counts)
            break
        buf.extend(rows)
        i = len(buf)  # the last source may go on in the next batch: keep it back
        while i > 0 and buf[i - 1][0] == buf[-1][0]:
            i -= 1
        if i:
            _sweep(np.asarray(buf[:i], dtype=np.int64), counts)
            buf = buf[i:]
    result.close()
    return pd.DataFrame([(a, b, n) for (a, b), n in counts.items()], columns=["a", "b", "n"])


def _sweep(arr: np.ndarray, counts: dict[tuple[int, int], int]) -> None:
    """Add the overlapping pairs (and each code's codings) of rows (source_id, start, end, id, code_id)
    of whole sources to ``counts``."""
    src, starts, ends, cid, code = arr.T
    order = np.lexsort((cid, ends, starts, src))
    src, starts, ends, code = src[order], starts[order], ends[order], code[order]
    big = int(ends.max()) + 1  # one sorted key across sources: a span never reaches the next source's block
    rank = np.unique(src, return_inverse=True)[1].astype(np.int64)
    ks, ke = rank * big + starts, rank * big + ends
    hi = np.searchsorted(ks, ke, side="left")  # later codings j overlap i when start_j < end_i
    many = np.maximum(hi - np.arange(len(ks)) - 1, 0)
    pairs = [(code, code)]
    if many.any():
        ii = np.repeat(np.arange(len(ks)), many)
        jj = ii + 1 + (np.arange(many.sum()) - np.repeat(np.cumsum(many) - many, many))
        a, b = code[ii], code[jj]
        keep = a != b
        pairs.append((np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])))
    m = int(code.max()) + 1
    for a, b in pairs:
        if not len(a):
            continue
        key = a * m + b
        if m * m <= 1 << 22:  # a small codebook: count every code pair in one array
            n = np.bincount(key, minlength=m * m)
            keys = np.flatnonzero(n)
            n = n[keys]
        else:
            keys, n = np.unique(key, return_counts=True)
        for k, c in zip(keys.tolist(), n.tolist()):
            counts[divmod(k, m)] = counts.get(divmod(k, m), 0) + c


def segment_pairs(conn: Connection, ids: list[int] | None, filters: dict | None) -> pd.DataFrame:
    """Columns ``a``, ``b``, ``n``: how many segments codes a and b both touch (a == b: segments a touches).

    A coding touches the non-empty segments from the one holding its start (the last starting at or
    before it) to the last starting before its end, where they reach past its start."""
    x = _selected(conn, ids, filters, "x", "seg_start")
    seg = S.segments.alias("s")
    # "+ 0" keeps SQLite from driving the join from the segments (a range of codings per segment): it
    # looks the few segments of each coding up on ix_segments_source instead.
    touched = (select(seg.c.id.label("seg"), x.c.code_id).distinct()
               .select_from(x.join(seg, and_(seg.c.source_id == x.c.source_id + 0, seg.c.start >= x.c.seg_start,
                                             seg.c.start < x.c.end + 0, seg.c.end > x.c.start,
                                             seg.c.start < seg.c.end)))).cte("touched")
    t1, t2 = touched.alias("t1"), touched.alias("t2")
    q = (select(t1.c.code_id.label("a"), t2.c.code_id.label("b"), func.count().label("n"))
         .select_from(t1.join(t2, t1.c.seg == t2.c.seg)).group_by(t1.c.code_id, t2.c.code_id))
    return fetch_frame(conn, q, ["a", "b", "n"])


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
        with project.connect() as conn:
            ids = code_ids_for(conn, list(codes) if codes else None, children)
            code_list = labelled_code_rows(conn)
            counts = _counts(conn, ids, filters, [rows_by, "code_id"], text=(rows_by,))
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

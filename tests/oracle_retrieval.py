"""The pandas implementation of the matrices before they were computed in SQL (issue 14), kept as the
reference oracle of tests/test_sql_queries.py: sp_realist.coding.retrieval must give the same frames.

Retrieval and matrices: coded excerpts, frequencies, co-occurrence, framework matrix.

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
from sqlalchemy import select
from sqlalchemy.engine import Connection

from sp_realist import schema as S
from sp_realist.attribution import ParticipantAttributor
from sp_realist.errors import SpRealistError
from sp_realist.store import Project
from sp_realist.coding._common import (CodeTree, code_ids_for, code_labels, descendants, fetch_frame,
                                       labelled_code_rows, rows_frame)
from sp_realist.coding.codebook import _tree_order

BASE_COLUMNS = ["coding_id", "code_id", "code", "source_id", "source", "kind", "date", "start", "end", "coder",
                "origin", "memo", "participant", "role", "site", "attribution", "ingest_order"]
EXCERPT_COLUMNS = ["code", "source", "participant", "attribution", "site", "role", "kind", "start", "end", "coder",
                   "origin", "text", "memo", "coding_id"]


def _attr_frame(conn: Connection, table, key: str) -> pd.DataFrame:
    rows = conn.execute(select(table.c[key], table.c.name, table.c.value)).all()
    if not rows:
        return pd.DataFrame({key: pd.Series([], dtype="int64")})
    df = rows_frame(rows, [key, "name", "value"])
    return df.pivot(index=key, columns="name", values="value").reset_index()


def coding_frame(conn: Connection, code_ids: list[int] | None = None, text: bool = False) -> pd.DataFrame:
    """One row per coding with everything it can be filtered or grouped by (see module doc)."""
    c, src = S.codings, S.sources
    cols = [c.c.id, c.c.code_id, c.c.source_id, c.c.start, c.c.end, c.c.coder, c.c.origin] + ([c.c.memo] if text else [])
    q = select(*cols)
    if code_ids is not None:
        q = q.where(c.c.code_id.in_(code_ids))
    df = fetch_frame(conn, q, ["coding_id", "code_id", "source_id", "start", "end", "coder", "origin"]
                     + (["memo"] if text else []))
    if not text:
        df["memo"] = None
    names = code_labels(conn)  # the name, or the path when another code has the same name
    df.insert(2, "code", df["code_id"].map(names))
    sources = fetch_frame(conn, select(src.c.id, src.c.name, src.c.kind, src.c.date, src.c.participant_id,
                                       src.c.ingest_order),
                          ["source_id", "source", "kind", "date", "source_participant_id", "ingest_order"])
    df = df.merge(sources, on="source_id", how="left")
    # Who said it (sp_realist.attribution's rule): the mapped speaker of the segment holding the coding's start;
    # nobody in an unmapped speaker's turn (interviewer, facilitator, carer); else the source's participant.
    attributor = ParticipantAttributor(conn, df["source_id"].unique().tolist())
    df["participant_id"] = pd.Series(attributor.participant_ids(df["source_id"].tolist(), df["start"].tolist()),
                                     index=df.index, dtype="object")
    p = S.participants
    parts = rows_frame(conn.execute(select(p.c.id, p.c.code, p.c.role, p.c.site)).all(),
                       ["participant_id", "participant", "role", "participant_site"])
    pattrs = _attr_frame(conn, S.participant_attributes, "participant_id")
    sattrs = _attr_frame(conn, S.source_attributes, "source_id")
    df["participant_id"] = df["participant_id"].astype("float64")
    parts["participant_id"] = parts["participant_id"].astype("float64")
    df = df.merge(parts, on="participant_id", how="left")
    if len(pattrs.columns) > 1:
        pattrs["participant_id"] = pattrs["participant_id"].astype("float64")
        pattrs = pattrs.rename(columns={k: k for k in pattrs.columns})
        clash = [k for k in pattrs.columns if k in df.columns and k != "participant_id"]
        df = df.merge(pattrs.drop(columns=clash), on="participant_id", how="left")
    if len(sattrs.columns) > 1:
        clash = [k for k in sattrs.columns if k in df.columns and k not in ("source_id", "site")]
        df = df.merge(sattrs.drop(columns=clash), on="source_id", how="left")
    # The source's site, else the speaker's, else (an unmapped speaker's turn) the source participant's.
    source_site = df["source_participant_id"].astype("float64").map(parts.set_index("participant_id")["participant_site"])
    site = df["participant_site"].where(df["participant_site"].notna(), source_site)
    if "site" in df.columns:
        df["site"] = df["site"].where(df["site"].notna(), site)
    else:
        df["site"] = site
    # Who said it: the mapped speaker's code, an unmapped speaker ("Interviewer, S2 PM1 interview"), else the source's.
    # (span_attributions' rule, through its attributor, vectorised over the codings)
    df["attribution"] = pd.Series(attributor.many(df["source_id"].to_numpy(), df["start"].to_numpy()),
                                  index=df.index, dtype="object")
    df = df.drop(columns=["participant_site", "source_participant_id", "participant_id"])
    if text and len(df):
        sids = sorted(df["source_id"].unique().tolist())
        texts = dict(conn.execute(select(src.c.id, src.c.text).where(src.c.id.in_(sids))).all())
        df["text"] = [texts[s][a:b] for s, a, b in zip(df["source_id"], df["start"], df["end"])]
    elif text:
        df["text"] = pd.Series([], dtype="object")
    df = df.sort_values(["ingest_order", "start", "end", "code", "coder"], kind="stable").reset_index(drop=True)
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
        df = coding_frame(conn, ids, text=text)
        rows = labelled_code_rows(conn)
    return drop_rule_duplicates(apply_filters(df, filters)), rows


def coded_excerpts(project: Project, code: str | Iterable[str] | None = None, children: bool = False,
                   filters: dict[str, Any] | None = None, coder: str | None = None) -> pd.DataFrame:
    """The coded text for ``code`` (and its descendants with ``children``), in source order,
    with attribution like ``"(S1 DK1)"``; ``filters`` by any attribute (site, role, kind, wave, coder ...)."""
    codes = [code] if isinstance(code, str) else (list(code) if code else None)
    filters = dict(filters or {})
    if coder:
        filters["coder"] = coder
    df, _ = _frame(project, codes, children, filters, text=True)
    out = df.copy()
    out["attribution"] = "(" + out["attribution"].astype(str) + ")" if len(out) else out["attribution"]
    extra = [c for c in df.columns if c not in BASE_COLUMNS + ["text"]]
    return out[EXCERPT_COLUMNS + extra].reset_index(drop=True)


def own_and_descendant_codings(project: Project, codes: Iterable[str], filters: dict[str, Any] | None = None,
                               coder: str | None = None) -> pd.DataFrame:
    """For each code: how many codings it has itself (``own``) and how many its descendants have
    (``descendants``), under the same ``filters`` and ``coder`` as :func:`coded_excerpts`."""
    filters = dict(filters or {})
    if coder:
        filters["coder"] = coder
    rows = []
    with project.connect() as conn:
        tree = CodeTree.read(conn)
        for ref in codes:
            code = dict(tree.resolve(ref))
            code["name"] = tree.label(code["id"])
            ids = [code["id"]] + descendants(conn, code["id"])
            df = apply_filters(coding_frame(conn, ids), filters)
            own = int((df["code_id"] == code["id"]).sum())
            rows.append({"code": code["name"], "own": own, "descendants": int(len(df)) - own})
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
    ``rollup`` counts a code's descendants under it as well.
    """
    if measure not in ("codings", "sources", "participants"):
        raise SpRealistError(f"measure {measure!r} is not one of codings, sources, participants.")
    df, rows = _frame(project, codes, children, filters)
    order = _selected_order(project, rows, codes, children)
    if rollup and len(df):
        by_id = {r["id"]: r for r in rows}
        parts = [df]
        with project.connect() as conn:
            for r in rows:
                sub = set(descendants(conn, r["id"]))
                if sub:
                    extra = df[df["code_id"].isin(sub)].copy()
                    extra["code"] = by_id[r["id"]]["name"]
                    parts.append(extra)
        df = pd.concat(parts, ignore_index=True).drop_duplicates(subset=["coding_id", "code"])
    unit_col = {"codings": "coding_id", "sources": "source_id", "participants": "participant"}[measure]
    if by is None:
        g = df.groupby("code")
        out = pd.DataFrame({"code": order})
        out["codings"] = out["code"].map(g["coding_id"].nunique()).fillna(0).astype(int)
        out["sources"] = out["code"].map(g["source_id"].nunique()).fillna(0).astype(int)
        out["participants"] = out["code"].map(g["participant"].nunique()).fillna(0).astype(int)
        return out
    if by not in df.columns:
        apply_filters(df, {by: []})  # raises the helpful error
    values = sorted(df[by].dropna().astype(str).unique().tolist())
    sub = df.assign(_by=df[by].astype("string").fillna("(none)"))
    counts = sub.groupby(["code", "_by"])[unit_col].nunique().unstack(fill_value=0)
    cols = values + (["(none)"] if "(none)" in counts.columns else [])
    counts = counts.reindex(index=order, columns=cols, fill_value=0).fillna(0).astype(int)
    total = sub.groupby("code")[unit_col].nunique().reindex(order).fillna(0).astype(int)
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
    the number of segments each code touches.
    """
    if mode not in ("overlap", "segment"):
        raise SpRealistError(f"co-occurrence mode {mode!r} is not overlap or segment.")
    df, rows = _frame(project, codes, children, filters)
    order = _selected_order(project, rows, codes, children)
    index = {n: i for i, n in enumerate(order)}
    n = len(order)
    mat = np.zeros((n, n), dtype=np.int64)
    if len(df):
        df = df[df["code"].isin(index)]
        c = df["code"].map(index).to_numpy(dtype=np.int64)
        src_rank = pd.factorize(df["source_id"])[0].astype(np.int64)
        starts = df["start"].to_numpy(dtype=np.int64)
        ends = df["end"].to_numpy(dtype=np.int64)
        # One sorted key across all sources: a span never reaches the next source's block.
        big = int(max(ends.max(initial=0), 1)) + 1
        if mode == "overlap":
            mat += np.bincount(c * n + c, minlength=n * n).reshape(n, n)
            order_ = np.lexsort((ends, starts, src_rank))
            ks = (src_rank * big + starts)[order_]
            ke = (src_rank * big + ends)[order_]
            cs = c[order_]
            # For i, the later codings j > i overlapping it are those with start_j < end_i.
            hi = np.searchsorted(ks, ke, side="left")
            counts = np.maximum(hi - np.arange(len(ks)) - 1, 0)
            if counts.any():
                ii = np.repeat(np.arange(len(ks)), counts)
                jj = ii + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
                a_, b_ = cs[ii], cs[jj]
                diff = a_ != b_
                pair = np.bincount(a_[diff] * n + b_[diff], minlength=n * n).reshape(n, n)
                mat += pair + pair.T
        else:
            from scipy.sparse import csr_matrix

            with project.connect() as conn:
                seg = S.segments
                segs = fetch_frame(conn, select(seg.c.source_id, seg.c.start, seg.c.end)
                                   .where(seg.c.start < seg.c.end)
                                   .where(seg.c.source_id.in_(sorted(df["source_id"].unique().tolist()))),
                                   ["source_id", "seg_start", "seg_end"])
            rank_of = {sid: r for r, sid in enumerate(pd.unique(df["source_id"]))}
            big = max(big, int(segs["seg_end"].max()) + 1 if len(segs) else 1)  # keys must cover segments too
            seg_rank = segs["source_id"].map(rank_of).to_numpy(dtype=np.int64)
            o = np.lexsort((segs["seg_start"].to_numpy(), seg_rank))
            seg_keys = (seg_rank * big + segs["seg_start"].to_numpy(dtype=np.int64))[o]
            seg_end_keys = (seg_rank * big + segs["seg_end"].to_numpy(dtype=np.int64))[o]
            k0 = src_rank * big + starts
            k1 = src_rank * big + ends
            first = np.searchsorted(seg_keys, k0, side="right") - 1
            last = np.searchsorted(seg_keys, k1, side="left") - 1  # segments starting before the end
            ok = (first >= 0) & (last >= first)
            first, last, cc = first[ok], last[ok], c[ok]
            counts = last - first + 1
            sidx = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
            crep = np.repeat(cc, counts)
            same_source = seg_end_keys[sidx] > np.repeat(k0[ok], counts)  # the segment really overlaps
            x = csr_matrix((np.ones(int(same_source.sum()), dtype=np.int64),
                            (sidx[same_source], crep[same_source])), shape=(len(seg_keys), n))
            x.data[:] = 1  # duplicates were summed: a segment counts once per code
            mat += (x.T @ x).toarray().astype(np.int64)
    out = pd.DataFrame(mat, columns=order)
    out.insert(0, "code", order)
    return out


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
    df, code_list = _frame(project, codes, children, filters, text=cells == "excerpts")
    if rows_by not in df.columns:
        apply_filters(df, {rows_by: []})
    order = _selected_order(project, code_list, codes, children)
    if rollup and len(df):
        with project.connect() as conn:
            parts = [df]
            for r in code_list:
                sub = set(descendants(conn, r["id"]))
                if sub:
                    parts.append(df[df["code_id"].isin(sub)].assign(code=r["name"]))
        df = pd.concat(parts, ignore_index=True)
    d = df.assign(_row=df[rows_by].astype("string").fillna("(none)")) if len(df) else df.assign(_row=[])
    labels = sorted(set(d["_row"].tolist()) - {"(none)"}) + (["(none)"] if "(none)" in set(d["_row"]) else [])
    if cells == "counts":
        mat = d.groupby(["_row", "code"])["coding_id"].nunique().unstack(fill_value=0) if len(d) else pd.DataFrame()
        mat = mat.reindex(index=labels, columns=order, fill_value=0).fillna(0).astype(int)
    else:
        d = d.sort_values(["ingest_order", "start", "end"], kind="stable").drop_duplicates(["_row", "code", "source_id", "start", "end"])
        d = d.assign(_cell=[f"{t.strip()} [{s}]" for t, s in zip(d["text"], d["source"])]) if len(d) else d.assign(_cell=[])
        mat = d.groupby(["_row", "code"])["_cell"].agg(lambda v: "\n".join(v)).unstack(fill_value="") if len(d) else pd.DataFrame()
        mat = mat.reindex(index=labels, columns=order, fill_value="").fillna("")
    out = mat.reset_index(drop=True)
    out.insert(0, rows_by, labels)
    return out


# --- the theme table's numbers and quotes, and saturation's evidence facts, as they were computed ----------
def pick_quotes(cands: pd.DataFrame, n: int, used: set | None = None) -> list[dict]:
    """The quote picker as it was (the library's preselects in SQL): a greedy, deterministic choice of
    ``n`` quotes spread across sites, then participants.

    Each step takes the candidate that (in order of priority) was not quoted
    for an earlier theme (``used``: (source_id, start, end) spans, updated with
    the choice), comes from a site not yet quoted, from a participant not yet
    quoted, was coded by a person (not a rule), has a readable length (column
    ``_length``, else that of ``text`` stripped), and comes first in ``cands``
    (in source order); spans that overlap a chosen quote are skipped.  Each
    step is one pass over numpy arrays.
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
    fixed += (~((length >= 40) & (length <= 400))).astype(np.int64)
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
        row = c.iloc[best].to_dict()
        chosen.append(row)
        alive &= ~((sid == sid[best]) & (start < end[best]) & (start[best] < end))  # overlaps (itself too)
        used_sites.append(row["site"])
        used_people.append(row["attribution"])
    used.update((c["source_id"], c["start"], c["end"]) for c in chosen)
    return chosen


def theme_summaries_conn(conn: Connection, quotes_per_theme: int = 3, filters: dict | None = None):
    from sp_realist.coding.themes import ThemeQuote, ThemeSummary, _theme_code_ids, _theme_rows
    from sp_realist.sources import interviewer_spans

    rows = _theme_rows(conn)
    expanded = _theme_code_ids(conn, rows)
    all_ids = sorted({x for v in expanded.values() for x in v})
    frame = apply_filters(coding_frame(conn, all_ids, text=True), filters) if all_ids else None
    if frame is not None:
        asked = interviewer_spans(conn, zip(frame["source_id"].tolist(), frame["start"].tolist()))
        frame = frame.assign(_interviewer=[k in asked for k in zip(frame["source_id"].tolist(),
                                                                      frame["start"].tolist())])
    names = code_labels(conn)
    out = []
    used: set = set()
    for r, depth, parent in rows:
        ids = expanded.get(r["id"], [])
        sub = frame[frame["code_id"].isin(ids)] if frame is not None and ids else None
        quotes = []
        if sub is not None and len(sub):
            speech = sub[~sub["_interviewer"]]
            cands = speech.sort_values(["ingest_order", "start", "end", "code"], kind="stable") \
                .drop_duplicates(["source_id", "start", "end"])
            quotes = [ThemeQuote(text=q["text"].strip(), attribution=f"({q['attribution']})",
                                 participant=None if pd.isna(q["participant"]) else q["participant"],
                                 site=None if pd.isna(q["site"]) else q["site"], source=q["source"],
                                 source_id=int(q["source_id"]), start=int(q["start"]), end=int(q["end"]),
                                 code=q["code"], coding_id=int(q["coding_id"]))
                      for q in pick_quotes(cands, quotes_per_theme, used)]
            counts = (int(sub["coding_id"].nunique()), int(speech["attribution"].nunique()),
                      int(sub["site"].nunique()), int(sub["source_id"].nunique()))
        else:
            counts = (0, 0, 0, 0)
        out.append(ThemeSummary(theme_id=r["id"], name=r["name"], parent=parent, depth=depth, phase=r["phase"],
                                description=r["description"], codes=[names[i] for i in ids], code_ids=list(ids),
                                codings=counts[0], participants=counts[1], sites=counts[2], sources=counts[3],
                                quotes=quotes))
    return out


FACT_COLUMNS = ["cmoc_id", "cmoc", "role", "component", "excerpt_id", "source_id", "source", "participant", "site"]


def evidence_facts(conn: Connection) -> pd.DataFrame:
    ev, ex, src = S.cmoc_evidence, S.excerpts, S.sources
    rows = [dict(r) for r in conn.execute(
        select(ev.c.cmoc_id, S.cmocs.c.key.label("cmoc"), ev.c.role, ev.c.component, ev.c.excerpt_id,
               ex.c.source_id, src.c.name.label("source"), ex.c.start,
               src.c.participant_id.label("source_participant"))
        .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id).join(src, src.c.id == ex.c.source_id)
                     .join(S.cmocs, S.cmocs.c.id == ev.c.cmoc_id)).order_by(ev.c.id)).mappings()]
    if not rows:
        return pd.DataFrame(columns=FACT_COLUMNS)
    who = ParticipantAttributor(conn, {r["source_id"] for r in rows})
    sites = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                              .where(S.source_attributes.c.name == "site")).all())
    p_sites = dict(conn.execute(select(S.participants.c.id, S.participants.c.site)).all())
    p_codes = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
    for r in rows:
        pid = who.participant_id(r["source_id"], r["start"])
        r["participant"] = p_codes.get(pid) if pid is not None else None
        r["site"] = sites.get(r["source_id"]) or p_sites.get(pid) or p_sites.get(r["source_participant"])
    return pd.DataFrame(rows)[FACT_COLUMNS]

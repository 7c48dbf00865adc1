"""Wong & Papoutsi's six-step appraisal of excerpts, per analyst, with history.

The steps (report appendix, "Data analysis processes"):

1. **relevance**: relevant / not_relevant / concept_box (not sure yet: revisit);
2. **trust**: high / moderate / low, with a ``trust_rationale``;
3. **interpretation**: context / mechanism_resource / mechanism_response /
   outcome / unclear;
4. **cmoc_judgement**: new / supports / refines / refutes, with the ``cmoc`` it
   concerns;
5. **theory** (which programme theory), ``theory_change`` (must it change?)
   and ``theory_note``;
6. **saturation_note**.

An excerpt is any span of a source (a coded span, a segment, a quote).  One
appraisal per excerpt and analyst; every edit first copies the previous row
into ``appraisal_history`` so earlier judgements are never lost.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError
from ..sources import span_attributions
from ..store import Project, now
from ._common import (
    CMOC_JUDGEMENTS,
    COMPONENTS,
    INTERPRETATIONS,
    Lookups,
    RELEVANCE,
    TRUST,
    check_choice,
    resolve_cmoc,
    resolve_excerpt,
    resolve_theory,
)

STEP_FIELDS = ("relevance", "trust", "trust_rationale", "interpretation", "cmoc_judgement", "cmoc", "theory",
               "theory_change", "theory_note", "saturation_note", "note")
_CHOICES = {"relevance": RELEVANCE, "trust": TRUST, "interpretation": INTERPRETATIONS,
            "cmoc_judgement": CMOC_JUDGEMENTS}
_SNAPSHOT_COLS = ("relevance", "trust", "trust_rationale", "interpretation", "cmoc_judgement", "cmoc_id",
                  "theory_id", "theory_change", "theory_note", "saturation_note", "note", "updated_at")

APPRAISAL_COLUMNS = ["excerpt_id", "source", "start", "end", "attribution", "analyst", "relevance", "trust",
                     "trust_rationale", "interpretation", "cmoc_judgement", "cmoc", "theory", "theory_change",
                     "theory_note", "saturation_note", "note", "updated_at", "text"]


def snapshot(conn: Connection, row: dict) -> str:
    """JSON of an appraisal row for its history, with the CMOC and theory keys (ids may later disappear)."""
    snap = {c: row[c] for c in _SNAPSHOT_COLS}
    snap["cmoc_key"] = conn.execute(select(S.cmocs.c.key).where(S.cmocs.c.id == row["cmoc_id"])).scalar() \
        if row["cmoc_id"] else None
    snap["theory_key"] = conn.execute(select(S.theories.c.key).where(S.theories.c.id == row["theory_id"])).scalar() \
        if row["theory_id"] else None
    return json.dumps(snap, sort_keys=True)


def _bool(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "1", "y"):
        return True
    if text in ("no", "false", "0", "n"):
        return False
    raise SpRealistError(f"{where}: theory_change {value!r} is not yes or no.")


def _values(lk: Lookups, steps: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate step values into appraisals columns.  "" clears a field; absent keys are left alone."""
    unknown = sorted(set(steps) - set(STEP_FIELDS))
    if unknown:
        raise SpRealistError(f"{where}: unknown appraisal field(s) {', '.join(unknown)}; use {', '.join(STEP_FIELDS)}.")
    out: dict[str, Any] = {}
    for k, v in steps.items():
        if k in _CHOICES:
            out[k] = check_choice(v, _CHOICES[k], k.replace("_", " "), where)
        elif k == "cmoc":
            out["cmoc_id"] = lk.cmoc(v)["id"] if v not in (None, "") else None
        elif k == "theory":
            out["theory_id"] = lk.theory(v)["id"] if v not in (None, "") else None
        elif k == "theory_change":
            out[k] = _bool(v, where)
        else:
            out[k] = None if v is None else (str(v).strip() or None)
    return out


def merge_values(current: dict | None, values: dict[str, Any], where: str) -> dict[str, Any]:
    """The appraisal's columns after applying ``values`` to ``current``; checks step 4 names a CMOC."""
    merged = {c: (current[c] if current else None) for c in _SNAPSHOT_COLS if c != "updated_at"}
    merged.update(values)
    if merged.get("cmoc_judgement") in ("supports", "refines", "refutes") and not merged.get("cmoc_id"):
        raise SpRealistError(f"{where}: a '{merged['cmoc_judgement']}' judgement needs the CMOC it concerns (cmoc).")
    return merged


def set_appraisal_conn(conn: Connection, excerpt: Any, analyst: str, *, link: bool = False,
                       where: str | None = None, lookups: Lookups | None = None, created_at: str | None = None,
                       updated_at: str | None = None, **steps: Any) -> dict:
    """Create or edit one appraisal (the one writer of ``appraisals`` rows).  ``created_at`` and
    ``updated_at`` keep an imported appraisal's times when it is created."""
    where = where or "appraisal"
    lk = lookups or Lookups(conn)
    if not analyst or not str(analyst).strip():
        raise SpRealistError(f"{where}: name the analyst.")
    excerpt_id = lk.excerpt(excerpt, where)
    values = _values(lk, steps, where)
    a = S.appraisals
    current = conn.execute(select(a).where(and_(a.c.excerpt_id == excerpt_id, a.c.analyst == analyst))).mappings().first()
    merged = merge_values(current, values, where)
    ts = now()
    if current is None:
        made = created_at or ts
        aid = conn.execute(insert(a).values(excerpt_id=excerpt_id, analyst=analyst, created_at=made,
                                            updated_at=updated_at or made, **merged)).inserted_primary_key[0]
        status, changed = "created", sorted(k for k, v in values.items() if v is not None)
    else:
        aid = current["id"]
        changed = sorted(k for k, v in values.items() if current[k] != v)
        if not changed:
            return {"appraisal_id": aid, "excerpt_id": excerpt_id, "status": "unchanged", "changed": []}
        conn.execute(insert(S.appraisal_history).values(
            appraisal_id=aid, at=ts, analyst=analyst, snapshot=snapshot(conn, current)))
        conn.execute(update(a).where(a.c.id == aid).values(updated_at=ts, **values))
        status = "updated"
    if link and merged.get("cmoc_judgement") in ("supports", "refutes", "new", "refines") and merged.get("cmoc_id"):
        from .cmocs import link_evidence_conn

        role = "refutes" if merged["cmoc_judgement"] == "refutes" else "supports"
        component = merged.get("interpretation") if merged.get("interpretation") in COMPONENTS else None
        key = conn.execute(select(S.cmocs.c.key).where(S.cmocs.c.id == merged["cmoc_id"])).scalar_one()
        link_evidence_conn(conn, key, excerpt_id, role=role, component=component, analyst=analyst, where=where,
                           lookups=lk)
    return {"appraisal_id": aid, "excerpt_id": excerpt_id, "status": status, "changed": changed}


def set_appraisal(project: Project, excerpt: Any, analyst: str, *, link: bool = False, **steps: Any) -> dict:
    """Create or edit ``analyst``'s appraisal of an excerpt.

    ``excerpt`` is an excerpt id or a reference (``{"source": ..., "quote": ...}``,
    ``span``, ``segment``, ``section`` or ``{"coding": id}``).  ``steps`` are
    any of :data:`STEP_FIELDS`; fields not given are kept, ``""`` clears one.
    With ``link=True`` a judgement about a CMOC also links the excerpt to it as
    evidence (``refutes`` -> refutes, otherwise supports; component from step 3).
    Returns ``{"appraisal_id", "excerpt_id", "status", "changed"}``.
    """
    with project.begin() as conn:
        result = set_appraisal_conn(conn, excerpt, analyst, link=link, **steps)
        if result["status"] != "unchanged":
            project.log(conn, f"appraisal.{result['status']}",
                        f"excerpt {result['excerpt_id']}", actor=analyst, changed=result["changed"])
    return result


def _excerpt_ids_for(conn: Connection, excerpt: Any) -> int:
    """Like resolve_excerpt but never creates: a reference to an unknown span is 'not appraised'."""
    from ..sources import locate_excerpt

    if isinstance(excerpt, dict) and excerpt.get("excerpt") is None and excerpt.get("coding") is None:
        sid, start, end = locate_excerpt(conn, excerpt, "appraisal")
        row = conn.execute(select(S.excerpts.c.id).where(and_(
            S.excerpts.c.source_id == sid, S.excerpts.c.start == start, S.excerpts.c.end == end))).first()
        if row is None:
            raise NotFoundError(f"appraisal: that span of {excerpt['source']!r} has not been appraised yet.")
        return row[0]
    return resolve_excerpt(conn, excerpt, "appraisal")


def _frame(conn: Connection, where=None) -> pd.DataFrame:
    a, ex, src = S.appraisals, S.excerpts, S.sources
    q = (select(a.c.excerpt_id, src.c.name.label("source"), src.c.id.label("source_id"), ex.c.start, ex.c.end,
                a.c.analyst, a.c.relevance, a.c.trust, a.c.trust_rationale, a.c.interpretation, a.c.cmoc_judgement,
                S.cmocs.c.key.label("cmoc"), S.theories.c.key.label("theory"), a.c.theory_change, a.c.theory_note,
                a.c.saturation_note, a.c.note, a.c.updated_at,
                func.substr(src.c.text, ex.c.start + 1, ex.c.end - ex.c.start).label("text"))
         .select_from(a.join(ex, ex.c.id == a.c.excerpt_id).join(src, src.c.id == ex.c.source_id)
                      .outerjoin(S.cmocs, S.cmocs.c.id == a.c.cmoc_id)
                      .outerjoin(S.theories, S.theories.c.id == a.c.theory_id))
         .order_by(src.c.ingest_order, ex.c.start, ex.c.end, a.c.analyst))
    if where is not None:
        q = q.where(where)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    attrib = span_attributions(conn, ((r["source_id"], r["start"]) for r in rows))
    for r in rows:
        r["attribution"] = attrib[(r["source_id"], r["start"])]
    return pd.DataFrame(rows, columns=APPRAISAL_COLUMNS + ["source_id"])[APPRAISAL_COLUMNS]


def list_appraisals(project: Project, analyst: str | None = None, cmoc: str | None = None,
                    theory: str | None = None, relevance: str | None = None) -> pd.DataFrame:
    """Appraisals with the excerpt's source, span, attribution and text; optionally filtered."""
    a = S.appraisals
    with project.connect() as conn:
        conds = []
        if analyst:
            conds.append(a.c.analyst == analyst)
        if cmoc:
            conds.append(a.c.cmoc_id == resolve_cmoc(conn, cmoc)["id"])
        if theory:
            conds.append(a.c.theory_id == resolve_theory(conn, theory)["id"])
        if relevance:
            conds.append(a.c.relevance == check_choice(relevance, RELEVANCE, "relevance", "filter"))
        return _frame(conn, and_(*conds) if conds else None)


def show_appraisal(project: Project, excerpt: Any) -> pd.DataFrame:
    """Every analyst's appraisal of one excerpt."""
    with project.connect() as conn:
        eid = _excerpt_ids_for(conn, excerpt)
        return _frame(conn, S.appraisals.c.excerpt_id == eid)


def appraisal_history(project: Project, excerpt: Any, analyst: str | None = None) -> pd.DataFrame:
    """Earlier versions of the appraisals of an excerpt, oldest first, then the current one.

    Columns: analyst, version, valid_from, replaced_at, then the step fields.
    """
    a, h = S.appraisals, S.appraisal_history
    with project.connect() as conn:
        eid = _excerpt_ids_for(conn, excerpt)
        q = select(a).where(a.c.excerpt_id == eid)
        if analyst:
            q = q.where(a.c.analyst == analyst)
        currents = conn.execute(q.order_by(a.c.analyst)).mappings().all()
        keys = {r[0]: r[1] for r in conn.execute(select(S.cmocs.c.id, S.cmocs.c.key))}
        tkeys = {r[0]: r[1] for r in conn.execute(select(S.theories.c.id, S.theories.c.key))}
        out = []
        for cur in currents:
            snaps = conn.execute(select(h).where(h.c.appraisal_id == cur["id"]).order_by(h.c.at, h.c.id)).mappings().all()
            versions = [(json.loads(s["snapshot"]), s["at"]) for s in snaps] + [(dict(cur), None)]
            valid_from = cur["created_at"]
            for i, (snap, replaced) in enumerate(versions, 1):
                row = {"analyst": cur["analyst"], "version": i, "valid_from": valid_from,
                       "replaced_at": replaced, "current": replaced is None}
                for f in _SNAPSHOT_COLS:
                    if f == "updated_at":
                        continue
                    if f == "cmoc_id":
                        row["cmoc"] = snap.get("cmoc_key") or keys.get(snap.get(f))
                    elif f == "theory_id":
                        row["theory"] = snap.get("theory_key") or tkeys.get(snap.get(f))
                    else:
                        row[f] = snap.get(f)
                out.append(row)
                valid_from = replaced
    cols = ["analyst", "version", "valid_from", "replaced_at", "current", "relevance", "trust", "trust_rationale",
            "interpretation", "cmoc_judgement", "cmoc", "theory", "theory_change", "theory_note", "saturation_note",
            "note"]
    return pd.DataFrame(out, columns=cols)


def _span_index(spans: dict[int, list[tuple[int, int]]]) -> dict[int, tuple[list[int], list[int]]]:
    """Per source: span starts (sorted) and the running maximum of their ends."""
    out = {}
    for sid, items in spans.items():
        items = sorted(items)
        starts, maxend, m = [], [], -1
        for a, b in items:
            m = max(m, b)
            starts.append(a)
            maxend.append(m)
        out[sid] = (starts, maxend)
    return out


def _overlaps(index, source_id: int, start: int, end: int) -> bool:
    """Does any indexed span of ``source_id`` overlap ``[start, end)``?"""
    import bisect

    if source_id not in index:
        return False
    starts, maxend = index[source_id]
    k = bisect.bisect_left(starts, end)  # spans starting before `end`
    return k > 0 and maxend[k - 1] > start


def appraisal_queue(project: Project, analyst: str | None = None, unit: str = "all",
                    source: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """What is still to appraise: segments and coded spans without an appraisal.

    ``unit`` is ``segment``, ``coding`` or ``all``.  An item counts as
    appraised when an appraised excerpt overlaps it (a quote inside a segment
    marks the segment as read); with ``analyst``, only that analyst's
    appraisals count.  Headings,
    preambles (diary form headers) and empty segments are skipped.  Rows are in ingest order of the sources.
    """
    unit = check_choice(unit, ("segment", "coding", "all"), "unit", "queue") or "all"
    from ..sources import resolve_source

    with project.connect() as conn:
        seg, cod, src = S.segments, S.codings, S.sources
        src_filter = None
        if source:
            src_filter = resolve_source(conn, source)["id"]
        a, ex = S.appraisals, S.excerpts
        aq = select(ex.c.source_id, ex.c.start, ex.c.end).select_from(a.join(ex, ex.c.id == a.c.excerpt_id))
        if analyst:
            aq = aq.where(a.c.analyst == analyst)
        done: dict[int, list[tuple[int, int]]] = {}
        for sid, a_start, a_end in conn.execute(aq):
            done.setdefault(sid, []).append((a_start, a_end))
        index = _span_index(done)
        texts = {}
        items = []
        if unit in ("segment", "all"):
            q = (select(seg.c.source_id, src.c.name, src.c.ingest_order, seg.c.ord, seg.c.start, seg.c.end,
                        seg.c.section, seg.c.speaker)
                 .select_from(seg.join(src, src.c.id == seg.c.source_id))
                 .where(seg.c.kind.not_in(["heading", "preamble"]))
                 .where(seg.c.end > seg.c.start))
            if src_filter:
                q = q.where(seg.c.source_id == src_filter)
            for r in conn.execute(q):
                items.append({"unit": "segment", "source_id": r.source_id, "source": r.name, "order": r.ingest_order,
                              "segment": r.ord, "code": None, "coding_id": None, "start": r.start, "end": r.end,
                              "where": r.section or r.speaker})
        if unit in ("coding", "all"):
            from ..coding._common import code_labels

            labels = code_labels(conn)  # the name, or the path when another code has the same name
            q = (select(cod.c.id, cod.c.source_id, src.c.name, src.c.ingest_order, cod.c.start, cod.c.end,
                        cod.c.code_id)
                 .select_from(cod.join(src, src.c.id == cod.c.source_id)))
            if src_filter:
                q = q.where(cod.c.source_id == src_filter)
            seen_spans: dict[tuple, dict] = {}
            for r in conn.execute(q.order_by(cod.c.id)):
                k = (r.source_id, r.start, r.end)
                if k in seen_spans:
                    seen_spans[k]["code"] += f"; {labels[r.code_id]}"
                    continue
                item = {"unit": "coding", "source_id": r.source_id, "source": r.name, "order": r.ingest_order,
                        "segment": None, "code": labels[r.code_id], "coding_id": r.id, "start": r.start, "end": r.end,
                        "where": None}
                seen_spans[k] = item
                items.append(item)
        items = [i for i in items if not _overlaps(index, i["source_id"], i["start"], i["end"])]
        items.sort(key=lambda i: (i["order"], i["start"], i["unit"] != "segment", i["end"]))
        if limit is not None:
            items = items[:limit]
        need = {i["source_id"] for i in items}
        if need:
            texts = dict(conn.execute(select(src.c.id, src.c.text).where(src.c.id.in_(need))).all())
    for i in items:
        t = " ".join(texts[i["source_id"]][i["start"]:i["end"]].split())
        i["text"] = t
    cols = ["unit", "source", "segment", "coding_id", "code", "where", "start", "end", "text"]
    df = pd.DataFrame(items, columns=cols + ["source_id", "order"])[cols]
    return df.astype({"segment": "Int64", "coding_id": "Int64"})


def concept_box(project: Project, analyst: str | None = None) -> pd.DataFrame:
    """Excerpts waiting in the concept box: relevance 'concept_box' or interpretation 'unclear'."""
    a = S.appraisals
    cond = (a.c.relevance == "concept_box") | (a.c.interpretation == "unclear")
    if analyst:
        cond = and_(cond, a.c.analyst == analyst)
    with project.connect() as conn:
        return _frame(conn, cond)


def appraisal_summary(project: Project) -> pd.DataFrame:
    """Counts of appraisals for each value of each step (tidy: step, value, appraisals, excerpts, analysts)."""
    a = S.appraisals
    rows = []
    with project.connect() as conn:
        total = conn.execute(select(func.count(), func.count(func.distinct(a.c.excerpt_id)),
                                    func.count(func.distinct(a.c.analyst)))).one()
        rows.append({"step": "total", "value": "appraisals", "appraisals": total[0], "excerpts": total[1],
                     "analysts": total[2]})
        for step, col in (("1 relevance", a.c.relevance), ("2 trust", a.c.trust),
                          ("3 interpretation", a.c.interpretation), ("4 cmoc_judgement", a.c.cmoc_judgement),
                          ("5 theory_change", a.c.theory_change)):
            for value, n, ne, na in conn.execute(
                    select(col, func.count(), func.count(func.distinct(a.c.excerpt_id)),
                           func.count(func.distinct(a.c.analyst))).group_by(col).order_by(col)):
                if step.startswith("5"):
                    value = {True: "yes", False: "no"}.get(value, value)
                rows.append({"step": step, "value": "(not recorded)" if value is None else str(value),
                             "appraisals": n, "excerpts": ne, "analysts": na})
        n_sat = conn.execute(select(func.count()).where(a.c.saturation_note.is_not(None))).scalar_one()
        rows.append({"step": "6 saturation_note", "value": "recorded", "appraisals": n_sat, "excerpts": None,
                     "analysts": None})
    df = pd.DataFrame(rows, columns=["step", "value", "appraisals", "excerpts", "analysts"])
    return df.astype({"appraisals": "Int64", "excerpts": "Int64", "analysts": "Int64"})

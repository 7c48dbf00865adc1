"""Anonymise sources with a pseudonym key, and reverse it.

:func:`anonymise` replaces every key entry in the selected sources' text and in
the fields that travel with a source (its name, file name and file path, segment speakers
and section titles, source attributes, memos on the source, coding memos).
Segments, codings and excerpts are moved with the text so they keep pointing
at the same words; a span that started or ended inside a replaced name covers
the whole replacement.

Reversal: what is needed to undo a run (the replaced originals, the exact old
positions of spans that had to move inside a name, the old field values) is
kept in ``anonymisation_records`` *encrypted* with the key
(:mod:`sp_realist.privacy.sealing`).  The project therefore never holds a real
name in the clear; the owner of the key can restore the text and every span
exactly with :func:`reverse`.  ``irreversible=True`` keeps no record at all.
After writing, the store is compacted so overwritten pages do not keep the
old text on disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..sources import resolve_source
from ..store import Project, now
from .detect import Detector, apply_matches
from .keyfile import Key, as_key
from .sealing import seal, unseal
from .spans import OffsetMap

HIDDEN = "[hidden]"
COLUMNS = ["source", "field", "start", "end", "new_start", "new_end", "original", "replacement", "entry"]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class AnonymiseResult:
    """What a run did (or, for a dry run, would do)."""

    replacements: pd.DataFrame
    key_sha256: str
    direction: str  # apply | reverse
    dry_run: bool
    sources: list[int] = field(default_factory=list)  # ids of the sources changed
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.replacements)


# --------------------------------------------------------------------------
# reading what travels with a source


def _select_sources(conn: Connection, refs: Sequence[str | int] | None) -> list[dict]:
    if refs:
        rows, seen = [], set()
        for ref in refs:
            row = resolve_source(conn, ref)
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(row)
        return rows
    return [dict(r) for r in conn.execute(select(S.sources).order_by(S.sources.c.ingest_order)).mappings()]


def _span_rows(conn: Connection, sid: int) -> dict[str, list[dict]]:
    seg, cod, exc = S.segments, S.codings, S.excerpts
    return {
        "segments": [dict(r) for r in conn.execute(
            select(seg.c.id, seg.c.start, seg.c.end).where(seg.c.source_id == sid).order_by(seg.c.ord)).mappings()],
        "codings": [dict(r) for r in conn.execute(
            select(cod.c.id, cod.c.start, cod.c.end, cod.c.code_id, cod.c.coder)
            .where(cod.c.source_id == sid)).mappings()],
        "excerpts": [dict(r) for r in conn.execute(
            select(exc.c.id, exc.c.start, exc.c.end).where(exc.c.source_id == sid)).mappings()],
    }


def _fields(conn: Connection, src: dict) -> list[tuple[str, dict, str, str, str]]:
    """Text fields that travel with a source: ``(table, pk, column, label, value)``."""
    sid = src["id"]
    out = [("sources", {"id": sid}, "name", "name", src["name"])]
    if src.get("file_name"):
        out.append(("sources", {"id": sid}, "file_name", "file_name", src["file_name"]))
    if src.get("file_path"):  # a folder or file name in the path can be a real name too
        out.append(("sources", {"id": sid}, "file_path", "file_path", src["file_path"]))
    for r in conn.execute(select(S.segments.c.id, S.segments.c.ord, S.segments.c.speaker, S.segments.c.section)
                          .where(S.segments.c.source_id == sid).order_by(S.segments.c.ord)).mappings():
        for col in ("speaker", "section"):
            if r[col]:
                out.append(("segments", {"id": r["id"]}, col, f"segment {r['ord']} {col}", r[col]))
    for r in conn.execute(select(S.source_attributes.c.name, S.source_attributes.c.value)
                          .where(S.source_attributes.c.source_id == sid)).mappings():
        if r["value"]:
            out.append(("source_attributes", {"source_id": sid, "name": r["name"]}, "value",
                        f"attribute {r['name']}", r["value"]))
    for r in conn.execute(select(S.memos.c.id, S.memos.c.title, S.memos.c.text).where(
            and_(S.memos.c.target_type == "source", S.memos.c.target_id == sid))).mappings():
        for col in ("title", "text"):
            if r[col]:
                out.append(("memos", {"id": r["id"]}, col, f"memo {r['id']} {col}", r[col]))
    for r in conn.execute(select(S.codings.c.id, S.codings.c.memo).where(
            and_(S.codings.c.source_id == sid, S.codings.c.memo.is_not(None)))).mappings():
        if r["memo"]:
            out.append(("codings", {"id": r["id"]}, "memo", f"coding {r['id']} memo", r["memo"]))
    return out


def _table(name: str):
    return S.metadata.tables[name]


def _where(table, pk: dict):
    return and_(*[table.c[k] == v for k, v in pk.items()])


# --------------------------------------------------------------------------
# planning (pure: nothing is written)


@dataclass
class _Plan:
    src: dict
    new_text: str
    text_edits: list[tuple[int, int, int, int, str, str, int]]  # s, e, ns, ne, original, replacement, entry
    spans: dict[str, list[tuple[int, int, int, int, int]]]  # table -> [(id, s, e, ns, ne)] (changed only)
    lossy: dict[str, dict[str, list[int]]]  # table -> id -> [s, e, ns, ne]
    fields: list[tuple[str, dict, str, str, str, str]]  # table, pk, column, label, old, new
    field_rows: list[dict]

    @property
    def count(self) -> int:
        return len(self.text_edits) + len(self.field_rows)


def _plan_spans(rows: dict[str, list[dict]], om: OffsetMap, where: str, kinds=("segments", "codings", "excerpts"),
                stored: dict | None = None):
    """New positions for every span row; checks the uniqueness rules still hold."""
    spans: dict[str, list] = {}
    lossy: dict[str, dict[str, list[int]]] = {}
    for kind in kinds:
        out, lost = [], {}
        back = (stored or {}).get(kind, {})
        for r in rows[kind]:
            s, e = r["start"], r["end"]
            rec = back.get(str(r["id"]))
            if rec is not None and [s, e] == rec[2:]:
                ns, ne = rec[0], rec[1]  # exact restore of a span that moved inside a name
            elif kind == "segments":
                ns, ne = om.boundary(s), om.boundary(e)
            else:
                ns, ne = om.start(s), om.end(e)
            if stored is None and (om.inside(s) or om.inside(e)):
                lost[str(r["id"])] = [s, e, ns, ne]
            r["new"] = (ns, ne)
            if (ns, ne) != (s, e):
                out.append((r["id"], s, e, ns, ne))
        spans[kind] = out
        if lost:
            lossy[kind] = lost
    seen: dict[tuple, int] = {}
    for r in rows["codings"]:
        k = (r["code_id"], r["coder"], *r["new"])
        if k in seen:
            raise SpRealistError(
                f"{where}: codings {seen[k]} and {r['id']} (same code and coder) would select the same span once "
                "the name they sit inside is replaced; delete or widen one of them first."
            )
        seen[k] = r["id"]
    seen = {}
    for r in rows["excerpts"]:
        if r["new"] in seen:
            raise SpRealistError(
                f"{where}: excerpts {seen[r['new']]} and {r['id']} would become the same span once the name they "
                "sit inside is replaced; merge them first."
            )
        seen[r["new"]] = r["id"]
    return spans, lossy


def _rows_frame(rows: list[dict], show_originals: bool) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("start", "end", "new_start", "new_end", "entry"):
        df[col] = df[col].astype("Int64")
    if not show_originals and len(df):
        df["original"] = HIDDEN
    return df


def _plan_apply(conn: Connection, key: Key, det: Detector, srcs: list[dict],
                progress: Callable[[int, int], None] | None, cache: dict) -> list[_Plan]:
    plans = []
    texts = (s["text"] for s in srcs)
    for i, (src, matches) in enumerate(zip(srcs, det.find_many(texts))):
        where = f"source {src['name']!r}" if not matches else f"source {src['id']}"
        text = src["text"]
        edits = [(m.start, m.end, key.entries[m.entry].replacement, m.entry) for m in matches]
        om = OffsetMap([(s, e, len(r)) for s, e, r, _ in edits])
        new_text = apply_matches(text, [(s, e, r) for s, e, r, _ in edits])
        text_edits = []
        for s, e, r, k in edits:
            ns = om.start(s)
            text_edits.append((s, e, ns, ns + len(r), text[s:e], r, k))
        rows = _span_rows(conn, src["id"])
        spans, lossy = _plan_spans(rows, om, where)
        fields, field_rows = [], []
        for table, pk, col, label, value in _fields(conn, src):
            fm = cache.get(value)
            if fm is None:
                fm = cache[value] = det.find(value)
            if not fm:
                continue
            reps = [(m.start, m.end, key.entries[m.entry].replacement) for m in fm]
            new = apply_matches(value, reps)
            fields.append((table, pk, col, label, value, new))
            fom = OffsetMap([(s, e, len(r)) for s, e, r in reps])
            for m, (s, e, r) in zip(fm, reps):
                field_rows.append({"field": label, "start": s, "end": e, "new_start": fom.start(s),
                                   "new_end": fom.start(s) + len(r), "original": value[s:e], "replacement": r,
                                   "entry": m.entry + 1})
        plans.append(_Plan(src, new_text, text_edits, spans, lossy, fields, field_rows))
        if progress:
            progress(i + 1, len(srcs))
    return plans


def _new_name(plan: _Plan) -> str:
    for table, _pk, col, _label, _old, new in plan.fields:
        if table == "sources" and col == "name":
            return new
    return plan.src["name"]


def _check_names(conn: Connection, plans: list[_Plan]) -> None:
    changed = {p.src["id"]: _new_name(p) for p in plans}
    others = {r[1]: r[0] for r in conn.execute(select(S.sources.c.id, S.sources.c.name))
              if r[0] not in changed}
    seen: dict[str, int] = {}
    for sid, name in changed.items():
        if name in others or name in seen:
            raise SpRealistError(
                f"source {sid}: once anonymised its name would be {name!r}, which another source already has; "
                "rename one of them first."
            )
        seen[name] = sid


#: Project-wide free text that can hold names: rewritten when the whole project is anonymised.
PROJECT_FIELDS = {
    "codes": ("name", "definition", "inclusion", "exclusion", "example"),
    "code_rules": ("spec",),
    "themes": ("name", "description"),
    "memos": ("title", "text"),  # those not attached to a source
    "cmocs": ("context", "mechanism_resource", "mechanism_response", "outcome", "memo", "ifthen"),
    "cmoc_evidence": ("note",),
    "cmoc_relations": ("note",),
    "theories": ("title", "description"),
    "theory_history": ("change", "reason"),
    "appraisals": ("trust_rationale", "theory_note", "saturation_note", "note"),
    "appraisal_history": ("snapshot",),
    "participants": ("role", "site"),
    "participant_attributes": ("value",),
    "audit_log": ("target", "detail"),
    # summary-of-findings tables (sp_realist.cmoc.findings); link targets are names of themes, codes ... rewritten
    # by the same key, so a link keeps pointing at its (renamed) target
    "finding_strands": ("name",),
    "evidence_items": ("kind", "citation", "note"),
    "finding_questions": ("text", "worked_well_heading", "could_improve_heading", "overall"),
    "finding_topics": ("name",),
    "findings": ("text",),
    "finding_links": ("target",),
}
JSON_FIELDS = {("code_rules", "spec"), ("appraisal_history", "snapshot"), ("audit_log", "detail")}


def _plan_project(conn: Connection, key: Key, det: Detector, cache: dict) -> tuple[list, list[dict]]:
    """Replacements in the project-wide text fields: ``(fields, listing rows)``."""
    fields, rows = [], []
    for name, cols in PROJECT_FIELDS.items():
        t = _table(name)
        pk = list(t.primary_key.columns)
        q = select(*pk, *[t.c[c] for c in cols])
        if name == "memos":
            q = q.where(t.c.target_type != "source")
        new_values: dict[str, list] = {c: [] for c in cols if t.c[c].unique}
        for row in conn.execute(q).mappings():
            ident = {c.name: row[c.name] for c in pk}
            label_id = ",".join(str(v) for v in ident.values())
            for col in cols:
                value = row[col]
                if not isinstance(value, str) or not value:
                    if col in new_values:
                        new_values[col].append(value)
                    continue
                fm = cache.get(value)
                if fm is None:
                    fm = cache[value] = det.find(value)
                new = value
                if fm:
                    reps = [(m.start, m.end, key.entries[m.entry].replacement) for m in fm]
                    new = apply_matches(value, reps)
                    label = f"{name} {label_id} {col}"
                    if (name, col) in JSON_FIELDS:
                        try:
                            json.loads(new)
                        except ValueError:
                            raise SpRealistError(
                                f"{label}: replacing names would break its JSON (a replacement contains a quote "
                                "or backslash); change that replacement."
                            ) from None
                    fields.append((name, ident, col, label, value, new))
                    fom = OffsetMap([(s, e, len(r)) for s, e, r in reps])
                    for m, (s, e, r) in zip(fm, reps):
                        rows.append({"source": "(project)", "field": label, "start": s, "end": e,
                                     "new_start": fom.start(s), "new_end": fom.start(s) + len(r),
                                     "original": value[s:e], "replacement": r, "entry": m.entry + 1})
                if col in new_values:
                    new_values[col].append(new)
        for col, values in new_values.items():
            present = [v for v in values if v is not None]
            if len(set(present)) != len(present):
                raise SpRealistError(
                    f"{name}.{col}: once names are replaced two rows would have the same {col}; rename one first."
                )
    return fields, rows


# --------------------------------------------------------------------------
# writing


def _write_spans(conn: Connection, spans: dict[str, list[tuple[int, int, int, int, int]]]) -> None:
    for kind, changed in spans.items():
        if not changed:
            continue
        t = _table(kind)
        stmt = update(t).where(t.c.id == bindparam("_id")).values(start=bindparam("_s"), end=bindparam("_e"))
        if kind != "segments":
            # Park the rows on unique negative spans first, so moving one onto
            # another's old place never trips the uniqueness constraint.
            conn.execute(stmt, [{"_id": i, "_s": -2 * i - 2, "_e": -2 * i - 1} for i, *_ in changed])
        conn.execute(stmt, [{"_id": i, "_s": ns, "_e": ne} for i, _s, _e, ns, ne in changed])


def _write_fields(conn: Connection, fields: list[tuple[str, dict, str, str]]) -> None:
    """``(table, pk, column, value)``: set each value."""
    for table, pk, col, value in fields:
        t = _table(table)
        conn.execute(update(t).where(_where(t, pk)).values({col: value}))


def _latest_records(conn: Connection, source_ids: list[int]) -> dict[int, dict]:
    r = S.anonymisation_records
    latest = (select(r.c.source_id, func.max(r.c.id).label("id")).where(r.c.source_id.in_(source_ids))
              .group_by(r.c.source_id).subquery())
    rows = conn.execute(select(r).join(latest, latest.c.id == r.c.id)).mappings().all()
    return {row["source_id"]: dict(row) for row in rows}


def anonymise(project: Project, key: Key | str, sources: Sequence[str | int] | None = None, *,
              dry_run: bool = False, show_originals: bool = False, irreversible: bool = False,
              project_text: bool | None = None,
              progress: Callable[[int, int], None] | None = None) -> AnonymiseResult:
    """Replace every key entry in the selected sources (all by default).

    ``project_text`` (default: when no ``sources`` are named) also rewrites the
    project-wide free text of :data:`PROJECT_FIELDS` (codebook, CMOCs,
    theories, appraisal notes, other memos, participants, the audit log).

    Returns every replacement (source, field, old and new position, original
    -- ``[hidden]`` unless ``show_originals`` -- replacement, key entry).  A dry
    run computes the same listing and changes nothing.
    """
    if project_text is None:
        project_text = not sources
    key = as_key(key)
    det = Detector(key)
    digest = key.sha256
    with (project.connect() if dry_run else project.begin()) as conn:
        srcs = _select_sources(conn, sources)
        cache: dict[str, list] = {}  # field values repeat (speakers, attributes): detect each once
        plans = _plan_apply(conn, key, det, srcs, progress, cache)
        pfields, prows = _plan_project(conn, key, det, cache) if project_text else ([], [])
        latest = _latest_records(conn, [p.src["id"] for p in plans])
        plans = [p for p in plans
                 if p.count or (p.src["id"] not in latest or latest[p.src["id"]]["key_sha256"] != digest)]
        _check_names(conn, plans)
        rows = []
        for p in plans:
            name = _new_name(p)
            for s, e, ns, ne, orig, rep, k in p.text_edits:
                rows.append({"source": name, "field": "text", "start": s, "end": e, "new_start": ns,
                             "new_end": ne, "original": orig, "replacement": rep, "entry": k + 1})
            rows.extend({"source": name, **r} for r in p.field_rows)
        rows.extend(prows)
        df = _rows_frame(rows, show_originals)
        result = AnonymiseResult(df, digest, "apply", dry_run, [p.src["id"] for p in plans if p.count])
        if dry_run:
            return result
        stamp = now()
        material = key.sealing_material
        run_id = conn.execute(insert(S.anonymisation_runs).values(
            key_sha256=digest, direction="apply", at=stamp, replacements=len(df),
            sources=json.dumps([p.src["id"] for p in plans]))).inserted_primary_key[0]
        records = []
        for p in plans:
            sid = p.src["id"]
            if p.text_edits:
                conn.execute(update(S.sources).where(S.sources.c.id == sid).values(text=p.new_text))
            _write_spans(conn, p.spans)
            _write_fields(conn, [(t, pk, c, new) for t, pk, c, _l, _old, new in p.fields])
            payload = None
            if not irreversible:
                payload = seal({
                    "v": 1,
                    "before_sha256": sha256_text(p.src["text"]),
                    "text": [[ns, ne, orig] for _s, _e, ns, ne, orig, _r, _k in p.text_edits],
                    "spans": p.lossy,
                    "fields": [[t, pk, c, old, new, label] for t, pk, c, label, old, new in p.fields],
                }, material)
            records.append(dict(run_id=run_id, source_id=sid, key_sha256=digest,
                                text_sha256=sha256_text(p.new_text), replacements=p.count, sealed=payload))
        if pfields:
            _write_fields(conn, [(t, pk, c, new) for t, pk, c, _l, _old, new in pfields])
            payload = None if irreversible else seal({
                "v": 1, "fields": [[t, pk, c, old, new, label] for t, pk, c, label, old, new in pfields],
            }, material)
            records.append(dict(run_id=run_id, source_id=None, key_sha256=digest, text_sha256=sha256_text(""),
                                replacements=len(prows), sealed=payload))
        if records:
            conn.execute(insert(S.anonymisation_records), records)
        project.log(conn, "anonymise", f"run {run_id}", key_sha256=digest, replacements=len(df),
                    sources=len(plans), irreversible=irreversible)
        result.run_id = run_id
    project.compact()
    return result


def _restore_fields(conn: Connection, sealed_fields: list, where: str) -> tuple[list, list[dict], list[str]]:
    """Old values to write back (only where the field still holds what anonymisation wrote)."""
    fields, rows, notes = [], [], []
    for table, pk, col, old, new, label in sealed_fields:
        t = _table(table)
        current = conn.execute(select(t.c[col]).where(_where(t, pk))).scalar_one_or_none()
        if current == new:
            fields.append((table, pk, col, old))
            rows.append({"field": label, "start": None, "end": None, "new_start": None, "new_end": None,
                         "original": old, "replacement": new, "entry": None})
        else:
            notes.append(f"{where}: {label} was edited (or deleted) after anonymisation; kept as it is.")
    return fields, rows, notes


def _opens(rec: dict, key: Key, digest: str, material: bytes) -> bool:
    """Whether ``key`` can undo the layer ``rec`` (same key, or a key with the same secret)."""
    if rec["key_sha256"] == digest:
        return True
    if key.secret is None or rec["sealed"] is None:
        return False
    try:
        unseal(rec["sealed"], material, "record")
    except SpRealistError:
        return False
    return True


def reverse(project: Project, key: Key | str, sources: Sequence[str | int] | None = None, *,
            dry_run: bool = False, show_originals: bool = False,
            progress: Callable[[int, int], None] | None = None) -> AnonymiseResult:
    """Undo the latest anonymisation layer of the selected sources (all anonymised ones by default).

    Restores the text, the moved fields and every segment, coding and excerpt
    exactly.  Codings added after anonymisation are mapped back too (a span
    touching a replacement covers the whole restored name).
    """
    key = as_key(key)
    digest = key.sha256
    material = key.sealing_material
    with (project.connect() if dry_run else project.begin()) as conn:
        if sources:
            srcs = _select_sources(conn, sources)
        else:
            ids = {r[0] for r in conn.execute(select(S.anonymisation_records.c.source_id))}
            srcs = [s for s in _select_sources(conn, None) if s["id"] in ids]
        latest = _latest_records(conn, [s["id"] for s in srcs])
        if not sources:
            # By default: the sources whose latest layer this key can undo (another key's layers are left).
            srcs = [s for s in srcs if _opens(latest[s["id"]], key, digest, material)]
        rows, work = [], []
        for i, src in enumerate(srcs):
            where = f"source {src['name']!r}"
            rec = latest.get(src["id"])
            if rec is None:
                raise SpRealistError(f"{where}: it has not been anonymised, so there is nothing to reverse.")
            if rec["sealed"] is None:
                raise SpRealistError(f"{where}: it was anonymised with --irreversible; it cannot be restored.")
            if sha256_text(src["text"]) != rec["text_sha256"]:
                raise SpRealistError(f"{where}: its text changed after anonymisation; it cannot be restored exactly.")
            if rec["key_sha256"] != digest and key.secret is None:
                raise SpRealistError(
                    f"{where}: it was anonymised with key {rec['key_sha256'][:12]}…, not this key "
                    f"({digest[:12]}…); use the key file that was applied."
                )
            payload = unseal(rec["sealed"], material, where)
            edits = [(ns, ne, orig) for ns, ne, orig in payload["text"]]
            text = src["text"]
            restored = apply_matches(text, edits)
            if sha256_text(restored) != payload["before_sha256"]:  # pragma: no cover - defensive
                raise SpRealistError(f"{where}: the reversal record does not restore the text; nothing was changed.")
            im = OffsetMap([(ns, ne, len(orig)) for ns, ne, orig in edits])
            span_rows = _span_rows(conn, src["id"])
            spans, _ = _plan_spans(span_rows, im, where, stored=payload["spans"])
            fields, frows, notes = _restore_fields(conn, payload["fields"], where)
            for ns, ne, orig in edits:
                rows.append({"source": src["name"], "field": "text", "start": ns, "end": ne,
                             "new_start": im.start(ns), "new_end": im.start(ns) + len(orig), "original": orig,
                             "replacement": text[ns:ne], "entry": None})
            rows.extend({"source": src["name"], **r} for r in frows)
            work.append((src, rec, restored, spans, fields, notes))
            if progress:
                progress(i + 1, len(srcs))
        proj = None
        if not sources:  # the project-wide text, when its latest layer is this key's
            r = S.anonymisation_records
            prec = conn.execute(select(r).where(r.c.source_id.is_(None)).order_by(r.c.id.desc())).mappings().first()
            if prec is not None and prec["sealed"] is not None and _opens(dict(prec), key, digest, material):
                payload = unseal(prec["sealed"], material, "project text")
                pfields, frows, pnotes = _restore_fields(conn, payload["fields"], "project text")
                rows.extend({"source": "(project)", **x} for x in frows)
                proj = (dict(prec), pfields, pnotes)
        if not work and proj is None:
            raise SpRealistError("No sources anonymised with this key to reverse; nothing was changed.")
        df = _rows_frame(rows, show_originals)
        changed = [w[0]["id"] for w in work if w[2] != w[0]["text"] or w[4]]  # as for apply: sources changed
        result = AnonymiseResult(df, digest, "reverse", dry_run, changed,
                                 notes=[n for w in work for n in w[5]] + (proj[2] if proj else []))
        new_names = {w[0]["id"]: old for w in work for (t, _pk, c, old) in w[4] if t == "sources" and c == "name"}
        others = {r[1] for r in conn.execute(select(S.sources.c.id, S.sources.c.name)) if r[0] not in new_names}
        if len(set(new_names.values())) != len(new_names) or set(new_names.values()) & others:
            raise SpRealistError("Restoring the source names would give two sources the same name; rename one first.")
        if dry_run:
            return result
        run_id = conn.execute(insert(S.anonymisation_runs).values(
            key_sha256=digest, direction="reverse", at=now(), replacements=len(df),
            sources=json.dumps([w[0]["id"] for w in work]))).inserted_primary_key[0]
        for src, rec, restored, spans, fields, _notes in work:
            if restored != src["text"]:
                conn.execute(update(S.sources).where(S.sources.c.id == src["id"]).values(text=restored))
            _write_spans(conn, spans)
            _write_fields(conn, fields)
            conn.execute(delete(S.anonymisation_records).where(S.anonymisation_records.c.id == rec["id"]))
        if proj is not None:
            _write_fields(conn, proj[1])
            conn.execute(delete(S.anonymisation_records).where(S.anonymisation_records.c.id == proj[0]["id"]))
        project.log(conn, "anonymise.reverse", f"run {run_id}", key_sha256=digest, sources=len(work))
        result.run_id = run_id
    return result


# --------------------------------------------------------------------------
# which key is applied (used by reports and exports)


def applied_keys(project: Project) -> list[str]:
    """Hashes of the keys whose anonymisation is currently in effect, latest first."""
    r = S.anonymisation_records
    with project.connect() as conn:
        rows = conn.execute(select(r.c.key_sha256, func.max(r.c.id).label("last"))
                            .group_by(r.c.key_sha256).order_by(func.max(r.c.id).desc())).all()
    return [row[0] for row in rows]


def project_key_required(project: Project) -> str | None:
    """The SHA-256 of the key applied most recently (still in effect), or None if none is."""
    keys = applied_keys(project)
    return keys[0] if keys else None


def check_key_matches(project: Project, key: Key | str) -> Key:
    """Raise unless ``key`` is a key whose anonymisation is in effect in ``project``; return the loaded key."""
    key = as_key(key)
    keys = applied_keys(project)
    if not keys:
        raise SpRealistError(
            f"{project.location}: no pseudonym key has been applied to this project; run "
            "'sp-realist anonymise --key KEY' first."
        )
    if key.sha256 not in keys:
        raise SpRealistError(
            f"{key.path or 'key'}: this is not the key applied to the project (its SHA-256 is {key.sha256[:12]}…, "
            f"the project's is {keys[0][:12]}…); pass the key file that was applied."
        )
    return key


def status_frame(project: Project) -> pd.DataFrame:
    """Per source: how many anonymisation layers are in effect, the latest key's hash, reversible or not."""
    r = S.anonymisation_records
    with project.connect() as conn:
        srcs = conn.execute(select(S.sources.c.id, S.sources.c.name).order_by(S.sources.c.ingest_order)).all()
        recs = conn.execute(select(r.c.source_id, r.c.id, r.c.key_sha256, r.c.replacements,
                                   r.c.sealed.is_not(None).label("reversible")).order_by(r.c.id)).all()
    by: dict[int, list] = {}
    for rec in recs:
        by.setdefault(rec[0], []).append(rec)
    rows = []
    for sid, name in srcs:
        layers = by.get(sid, [])
        last = layers[-1] if layers else None
        rows.append({"id": sid, "source": name, "anonymised": bool(layers), "layers": len(layers),
                     "replacements": sum(x[3] for x in layers), "key_sha256": last[2] if last else None,
                     "reversible": bool(last[4]) if last else None})
    return pd.DataFrame(rows, columns=["id", "source", "anonymised", "layers", "replacements", "key_sha256",
                                       "reversible"])


def runs_frame(project: Project) -> pd.DataFrame:
    """The history of anonymisation runs (key hashes only)."""
    r = S.anonymisation_runs
    with project.connect() as conn:
        rows = conn.execute(select(r.c.id, r.c.at, r.c.direction, r.c.key_sha256, r.c.replacements, r.c.sources)
                            .order_by(r.c.id)).mappings().all()
    df = pd.DataFrame([dict(x) for x in rows], columns=["id", "at", "direction", "key_sha256", "replacements", "sources"])
    df["sources"] = [len(json.loads(s or "[]")) for s in df["sources"]]
    return df

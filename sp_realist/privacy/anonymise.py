"""Anonymise sources with a pseudonym key, and reverse it.

:func:`anonymise` replaces every key entry in the selected sources' text and in
the fields that travel with a source (its name, file name and file path -- with the
replacement made safe for a file name, "S1-DK1" --, segment speakers and section titles,
source attributes, memos on the source, coding memos) and, for the whole project, in every
other text column of the schema (:func:`project_fields`: coders, authors, analysts, the audit
log, codes, themes, CMOCs, theories, settings...) except those :data:`EXEMPT` names.  JSON
columns are rewritten inside their strings.  The run also stores salted fingerprints of the
key's names (:mod:`sp_realist.privacy.guard`) so every later output can be checked without
the key.
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
from typing import TYPE_CHECKING, Callable, Sequence

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .. import schema as S
from ..errors import SpRealistError
from ..sources import resolve_source
from ..store import Project, now
from .detect import Detector, apply_matches
from .guard import applied_keys  # noqa: F401  (defined with the output check, which needs it at every start)
from .keyfile import Key, as_key
from .sealing import seal, unseal
from .spans import OffsetMap

if TYPE_CHECKING:
    import pandas as pd

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
    import pandas as pd

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
            reps = _value_edits(det, key, value, FILE_KINDS.get((table, col), "text"), cache)
            if not reps:
                continue
            new = apply_matches(value, [(s, e, r) for s, e, r, _k in reps])
            fields.append((table, pk, col, label, value, new))
            field_rows.extend(_listing(label, value, reps))
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


#: Columns that travel with a source (rewritten for the sources anonymised, see :func:`_fields`).  Memo
#: titles and texts are per source for memos on a source, project-wide for the others.
SOURCE_FIELDS = frozenset({
    ("sources", "name"), ("sources", "text"), ("sources", "file_name"), ("sources", "file_path"),
    ("segments", "speaker"), ("segments", "section"), ("source_attributes", "value"), ("codings", "memo"),
})

#: Text columns that are never rewritten, and why.  Every other String/Text column of the schema is
#: anonymised (:func:`project_fields` enumerates them from ``schema.metadata``), so a new text column is
#: covered unless it is added here; ``tests/test_privacy_columns.py`` fails on a column in neither place.
EXEMPT = {
    ("meta", "key"): "names of settings and bookkeeping entries, written by sp_realist",
    ("project_templates", "name"): "a template's file name, which templates include each other by (its text is "
                                   "anonymised)",
    ("sources", "kind"): "one of a fixed list",
    ("sources", "checksum"): "SHA-256 of the ingested file",
    ("sources", "date"): "an ISO date",
    ("sources", "file_format"): "a file type (txt, docx...)",
    ("source_attributes", "name"): "attribute names are labels (site, wave); their values are anonymised",
    ("participant_attributes", "name"): "attribute names are labels (role, site); their values are anonymised",
    ("segments", "kind"): "one of a fixed list",
    ("codes", "colour"): "a colour",
    ("code_rules", "kind"): "one of a fixed list",
    ("code_rules", "unit"): "one of a fixed list",
    ("memos", "target_type"): "one of a fixed list",
    ("themes", "phase"): "one of a fixed list",
    ("cmocs", "status"): "one of a fixed list",
    ("cmocs", "confidence"): "one of a fixed list",
    ("cmoc_evidence", "role"): "one of a fixed list",
    ("cmoc_evidence", "component"): "one of a fixed list",
    ("cmoc_relations", "kind"): "one of a fixed list",
    ("appraisals", "relevance"): "one of a fixed list",
    ("appraisals", "trust"): "one of a fixed list",
    ("appraisals", "interpretation"): "one of a fixed list",
    ("appraisals", "cmoc_judgement"): "one of a fixed list",
    ("audit_log", "action"): "an action name written by sp_realist (ingest, code.add...)",
    ("anonymisation_runs", "key_sha256"): "privacy bookkeeping: a key hash",
    ("anonymisation_runs", "direction"): "privacy bookkeeping: apply or reverse",
    ("anonymisation_runs", "sources"): "privacy bookkeeping: a JSON list of source ids",
    ("anonymisation_records", "key_sha256"): "privacy bookkeeping: a key hash",
    ("anonymisation_records", "text_sha256"): "privacy bookkeeping: a text hash",
    ("anonymisation_records", "sealed"): "privacy bookkeeping: the encrypted reversal record",
    ("findings", "part"): "one of a fixed list",
    ("finding_links", "target_type"): "one of a fixed list",
    ("orphans", "kind"): "one of a fixed list",
    ("codings", "selection_guid"): "a GUID kept from a REFI-QDA file",
    ("adjudications", "unit"): "one of a fixed list",
    ("adjudications", "decision"): "one of a fixed list",
    ("merge_conflicts", "kind"): "one of a fixed list",
    ("merge_conflicts", "field"): "a column name written by sp_realist",
    ("merge_conflicts", "status"): "one of a fixed list",
}

#: Columns holding JSON: names are replaced inside its strings (and keys) and the JSON written again.
JSON_FIELDS = frozenset({("code_rules", "spec"), ("appraisal_history", "snapshot"), ("audit_log", "detail"),
                         ("theories", "questions"), ("theory_history", "evidence"), ("orphans", "payload"),
                         ("merge_conflicts", "ours"), ("merge_conflicts", "theirs")})

#: How a file name or path is rewritten: the replacement made safe for a file name ("S1 DK1" -> "S1-DK1").
FILE_KINDS = {("sources", "file_name"): "file", ("sources", "file_path"): "path"}

#: meta entries that are bookkeeping, not user text (the output-check fingerprints among them).
META_SKIP = frozenset({"schema_version", "project_id", "created_at", "privacy:fingerprints"})


def exempt_reason(table: str, column) -> str | None:
    """Why ``table.column`` is not anonymised, or None if it is."""
    if (table, column.name) in EXEMPT:
        return EXEMPT[(table, column.name)]
    if S.is_timestamp(column):
        return "a timestamp"
    if column.name == "guid":
        return "a generated GUID"
    return None


def text_columns() -> list[tuple[str, str]]:
    """Every String/Text column of the schema, as ``(table, column)``."""
    return [(t.name, c.name) for t in S.metadata.sorted_tables for c in t.columns if S.is_text(c)]


def project_fields() -> dict[str, tuple[str, ...]]:
    """The project-wide columns :func:`anonymise` rewrites when the whole project is anonymised:
    every text column neither exempt nor travelling with a source (memo title and text: both)."""
    out: dict[str, list[str]] = {}
    for t in S.metadata.sorted_tables:
        for c in t.columns:
            if (t.name, c.name) not in set(text_columns()):
                continue
            if exempt_reason(t.name, c) is not None:
                continue
            if (t.name, c.name) in SOURCE_FIELDS and t.name != "memos":
                continue
            out.setdefault(t.name, []).append(c.name)
    return {k: tuple(v) for k, v in out.items()}


def file_safe(replacement: str) -> str:
    """A replacement as it appears in a file or folder name: "S1 DK1" -> "S1-DK1", "[GP 1]" -> "GP-1"."""
    import re

    return re.sub(r"[^\w.-]+", "-", replacement).strip("-.") or "anon"


def _value_edits(det: Detector, key: Key, value: str, kind: str, cache: dict) -> list[tuple[int, int, str, int]]:
    """``(start, end, replacement, entry)`` for every key entry in ``value``.

    ``kind`` "file": the replacement made safe for a file name; "path": the same, part by part (the
    separators are kept); "text": as it is.
    """
    import re

    def found(text: str):
        fm = cache.get(text)
        if fm is None:
            fm = cache[text] = det.find(text)
        return fm

    if kind == "path":
        out, pos = [], 0
        for part in re.split(r"([/\\])", value):
            if part and part not in ("/", "\\"):
                out.extend((pos + m.start, pos + m.end, file_safe(key.entries[m.entry].replacement), m.entry)
                           for m in found(part))
            pos += len(part)
        return out
    rep = file_safe if kind == "file" else (lambda r: r)
    return [(m.start, m.end, rep(key.entries[m.entry].replacement), m.entry) for m in found(value)]


def _listing(label: str, value: str, reps: list[tuple[int, int, str, int]]) -> list[dict]:
    fom = OffsetMap([(s, e, len(r)) for s, e, r, _k in reps])
    return [{"field": label, "start": s, "end": e, "new_start": fom.start(s), "new_end": fom.start(s) + len(r),
             "original": value[s:e], "replacement": r, "entry": k + 1} for s, e, r, k in reps]


def _json_edit(det: Detector, key: Key, value: str, label: str, cache: dict) -> tuple[str, list[dict]] | None:
    """Names replaced inside the strings (and keys) of a JSON value: the new JSON text and listing rows
    (``field`` is the label and the JSON path); None when nothing is found or ``value`` is not JSON."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    rows: list[dict] = []

    def text(v: str, path: str) -> str:
        reps = _value_edits(det, key, v, "text", cache)
        if not reps:
            return v
        rows.extend(_listing(f"{label} {path}", v, reps))
        return apply_matches(v, [(s, e, r) for s, e, r, _k in reps])

    def walk(v, path: str):
        if isinstance(v, str):
            return text(v, path)
        if isinstance(v, dict):
            return {text(k, f"{path} key"): walk(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, f"{path}[{i}]") for i, x in enumerate(v)]
        return v

    new = walk(data, "$")
    if not rows:
        return None
    return json.dumps(new, ensure_ascii=False), rows


def _is_json(table: str, col: str, row) -> bool:
    if (table, col) in JSON_FIELDS:
        return True
    return table == "meta" and str(row["key"]).startswith("setting:")


def _plan_project(conn: Connection, key: Key, det: Detector, cache: dict) -> tuple[list, list[dict]]:
    """Replacements in the project-wide text fields: ``(fields, listing rows)``."""
    fields, rows = [], []
    for name, cols in project_fields().items():
        t = _table(name)
        pk = list(t.primary_key.columns)
        extra = [t.c.target_type] if name == "memos" else []
        q = select(*pk, *extra, *[t.c[c] for c in cols if t.c[c] not in pk])
        if name == "meta":
            q = q.where(t.c.key.not_in(sorted(META_SKIP)))
        changes: dict[tuple, dict[str, str]] = {}
        for row in conn.execute(q).mappings():
            ident = {c.name: row[c.name] for c in pk}
            label_id = ",".join(str(v) for v in ident.values())
            for col in cols:
                if name == "memos" and col in ("title", "text") and row["target_type"] == "source":
                    continue  # memos on a source travel with it
                value = row[col]
                if not isinstance(value, str) or not value:
                    continue
                label = f"{name} {label_id} {col}"
                edited = _json_edit(det, key, value, label, cache) if _is_json(name, col, row) else None
                if edited is not None:
                    new, frows = edited
                else:
                    reps = _value_edits(det, key, value, "text", cache)
                    if not reps:
                        continue
                    new = apply_matches(value, [(s, e, r) for s, e, r, _k in reps])
                    frows = _listing(label, value, reps)
                fields.append((name, ident, col, label, value, new))
                changes.setdefault(tuple(ident.values()), {})[col] = new
                rows.extend({"source": "(project)", **r} for r in frows)
        if changes:
            _check_unique(conn, t, changes)
    return fields, rows


def _unique_sets(t) -> list[tuple[str, ...]]:
    from sqlalchemy import UniqueConstraint

    sets = [(c.name,) for c in t.columns if c.unique]
    sets += [tuple(c.name for c in con.columns) for con in t.constraints if isinstance(con, UniqueConstraint)]
    return sets


def _check_unique(conn: Connection, t, changes: dict[tuple, dict[str, str]]) -> None:
    """Refuse when replacing names would give two rows of ``t`` the same value of a unique column (or set)."""
    changed = {c for ch in changes.values() for c in ch}
    pk = [c.name for c in t.primary_key.columns]
    for cols in _unique_sets(t):
        if not changed & set(cols):
            continue
        seen: dict[tuple, tuple] = {}
        for row in conn.execute(select(*[t.c[c] for c in pk], *[t.c[c] for c in cols if c not in pk])).mappings():
            ident = tuple(row[c] for c in pk)
            new = changes.get(ident, {})
            value = tuple(new.get(c, row[c]) for c in cols)
            if None in value:
                continue
            if value in seen:
                a, b = (",".join(map(str, x)) for x in (seen[value], ident))
                raise SpRealistError(
                    f"{t.name} {a} and {b}: once names are replaced they would have the same "
                    f"{', '.join(cols)}; rename or merge one of them first."
                )
            seen[value] = ident


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
    project-wide text of :func:`project_fields` (codebook, CMOCs,
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
        try:
            run_id = _write_apply(project, conn, key, digest, plans, pfields, prows, df, irreversible)
        except IntegrityError as exc:
            raise SpRealistError(
                f"anonymise: replacing names would make two rows the same ({str(exc.orig).split(': ')[-1]}); "
                "rename or merge one of them first. Nothing was changed."
            ) from None
        result.run_id = run_id
    project.compact()
    return result


def _write_apply(project: Project, conn: Connection, key: Key, digest: str, plans: list[_Plan], pfields: list,
                 prows: list, df: pd.DataFrame, irreversible: bool) -> int:
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
    from .guard import record_fingerprints

    record_fingerprints(conn, key)  # so outputs can be checked without the key
    project.log(conn, "anonymise", f"run {run_id}", key_sha256=digest, replacements=len(df),
                sources=len(plans), irreversible=irreversible)
    return run_id


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
        if conn.execute(select(func.count()).select_from(S.anonymisation_records)).scalar_one() == 0:
            from .guard import clear_fingerprints

            clear_fingerprints(conn)  # nothing anonymised any more: outputs are no longer checked
        project.log(conn, "anonymise.reverse", f"run {run_id}", key_sha256=digest, sources=len(work))
        result.run_id = run_id
    project.compact()
    return result


# --------------------------------------------------------------------------
# which key is applied (used by reports and exports)


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
    import pandas as pd

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
    import pandas as pd

    r = S.anonymisation_runs
    with project.connect() as conn:
        rows = conn.execute(select(r.c.id, r.c.at, r.c.direction, r.c.key_sha256, r.c.replacements, r.c.sources)
                            .order_by(r.c.id)).mappings().all()
    df = pd.DataFrame([dict(x) for x in rows], columns=["id", "at", "direction", "key_sha256", "replacements", "sources"])
    df["sources"] = [len(json.loads(s or "[]")) for s in df["sources"]]
    return df

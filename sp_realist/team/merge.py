"""Merge another copy of a project into this one, and the conflicts it could not settle.

Two people who worked on copies of one project (or a colleague's REFI-QDA project imported to a temporary
project) are combined item by item, each through its own area's writer, in one transaction:

* **sources** are matched by checksum or identical text; a source only the other copy has is added (with its
  segments, attributes and participant); one whose text differs in the two copies (anonymised or corrected in
  one of them) is reported and nothing that points into it is merged;
* **participants** by code; **codes** by their path from the root (``Parent/Child``, from ``parent_id``), then
  by GUID or name for a code that sits elsewhere in the other copy (a *moved* code: a conflict); **themes** by
  name; **CMOCs** and **theories** by key; **excerpts** by source and span; **codings** by code, source, span
  and coder; **appraisals** by excerpt and analyst; **memos** by GUID, else target, title and text;
* an item only the other copy has is added; an identical item is not duplicated, so merging twice changes
  nothing; an item both have with a different value (a CMOC edited differently, a code moved, a theory
  retitled) is a **conflict**: this copy's value is kept and both values are stored in ``merge_conflicts``
  (this module is its one writer) until the analyst keeps ours or takes theirs
  (:func:`resolve_conflict`).  The same conflict is never recorded twice.

Not merged (they stay in the other copy): autocoding rules, source sets, the summary-of-findings tables,
narrative sections and settings, appraisal history of appraisals the other copy adds, and the audit log.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from sqlalchemy import and_, insert, select, update

from .. import schema as S
from ..errors import NotFoundError, SpRealistError
from ..identity import current_user
from ..store import Project, _is_url, now

ITEMS = ("sources", "participants", "codes", "themes", "excerpts", "codings", "memos", "cmocs", "relations",
         "evidence", "theories", "members", "history", "appraisals", "conflicts")
CODE_FIELDS = ("definition", "inclusion", "exclusion", "example", "colour")
CMOC_FIELDS = ("context", "mechanism_resource", "mechanism_response", "outcome", "status", "confidence", "memo",
               "ifthen")
THEORY_FIELDS = ("title", "description", "questions")
THEME_FIELDS = ("description", "phase", "parent")
APPRAISAL_FIELDS = ("relevance", "trust", "trust_rationale", "interpretation", "cmoc_judgement", "cmoc", "theory",
                    "theory_change", "theory_note", "saturation_note", "note")
MEMO_FIELDS = ("title", "text")
CONFLICT_COLUMNS = ["id", "kind", "key", "field", "ours", "theirs", "origin", "status", "created_at", "resolved_by",
                    "resolved_at"]


@dataclass
class MergeResult:
    """What a merge added (``counts``), the conflicts it recorded (``conflicts``) and notes on what it left."""

    origin: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in ITEMS})
    conflicts: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"item": k, "added": int(v)} for k, v in self.counts.items()], columns=["item", "added"])

    def conflict_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.conflicts, columns=["kind", "key", "field", "ours", "theirs"])


# -- reading the other copy ------------------------------------------------------------------------------
@contextmanager
def _other_copy(other: str, project: Project) -> Iterator[Project]:
    """The other copy opened read-only for us: a file is copied first (SQLite's backup, so its write-ahead
    log is included and the colleague's file is never migrated or locked); a URL is opened as it is."""
    other = str(other)
    if _is_url(other):
        with Project.open(other) as p:
            yield p
        return
    path = Path(other)
    if not path.is_file():
        raise SpRealistError(f"{path}: no such project file; give the other copy's .sprealist file or its URL.")
    if not _is_url(project.location) and path.resolve() == Path(project.location).resolve():
        raise SpRealistError(f"{path}: that is this project; give the other copy to merge.")
    with open(path, "rb") as fh:
        if not fh.read(16).startswith(b"SQLite format 3"):
            raise SpRealistError(f"{path} is not an sp_realist project file (not an SQLite database).")
    tmp = Path(tempfile.mkdtemp(prefix="sp-realist-merge-"))
    try:
        copy = tmp / "other.sprealist"
        src = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                dst.close()
        except sqlite3.DatabaseError as exc:
            raise SpRealistError(f"{path} could not be read as a project: {exc}.") from None
        finally:
            src.close()
        with Project.open(copy) as p:
            yield p
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rows(conn, table, order=None) -> list[dict]:
    q = select(table)
    if order is not None:
        q = q.order_by(*order)
    return [dict(r) for r in conn.execute(q).mappings()]


def _read(p: Project) -> dict[str, list[dict]]:
    with p.connect() as conn:
        return {t.name: _rows(conn, t, [c for c in t.primary_key.columns]) for t in (
            S.sources, S.segments, S.source_attributes, S.participants, S.participant_attributes, S.codes,
            S.codings, S.memos, S.themes, S.theme_codes, S.excerpts, S.cmocs, S.cmoc_relations, S.cmoc_evidence,
            S.theories, S.theory_cmocs, S.theory_history, S.appraisals)}


def code_paths(rows: list[dict]) -> dict[int, str]:
    """Each code's path from the root, ``Parent/Child``, computed from ``parent_id``."""
    by_id = {r["id"]: r for r in rows}
    out: dict[int, str] = {}

    def path(cid: int, seen: tuple = ()) -> str:
        if cid in out:
            return out[cid]
        r = by_id[cid]
        pid = r["parent_id"]
        p = r["name"] if pid is None or pid in seen or pid not in by_id else f"{path(pid, seen + (cid,))}/{r['name']}"
        out[cid] = p
        return p

    for cid in by_id:
        path(cid)
    return out


def _norm(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


# -- conflicts (the one writer of merge_conflicts) -----------------------------------------------------
def _record_conflict(conn, result: MergeResult, kind: str, key: str, field_: str, ours: Any, theirs: Any) -> None:
    o, t = json.dumps(ours, sort_keys=True, default=str), json.dumps(theirs, sort_keys=True, default=str)
    m = S.merge_conflicts.c
    if conn.execute(select(m.id).where(and_(m.kind == kind, m.key == key, m.field == field_, m.theirs == t))).first():
        return  # recorded by an earlier merge (open or already settled)
    conn.execute(insert(S.merge_conflicts).values(kind=kind, key=key, field=field_, ours=o, theirs=t,
                                                  origin=result.origin, status="open", created_at=now()))
    result.conflicts.append({"kind": kind, "key": key, "field": field_, "ours": ours, "theirs": theirs})
    result.counts["conflicts"] += 1


def _compare(conn, result, kind: str, key: str, ours: dict, theirs: dict, fields) -> None:
    for f in fields:
        if _norm(ours.get(f)) != _norm(theirs.get(f)):
            _record_conflict(conn, result, kind, key, f, ours.get(f), theirs.get(f))


def list_conflicts(project: Project, *, status: str | None = "open") -> pd.DataFrame:
    """Conflicts from merges (``status`` open, ours, theirs, or None for all), oldest first; ``ours`` and
    ``theirs`` are the two values as JSON."""
    m = S.merge_conflicts.c
    q = select(*[getattr(m, c) for c in CONFLICT_COLUMNS]).order_by(m.id)
    if status is not None:
        if status not in S.MERGE_CONFLICT_STATUSES:
            raise SpRealistError(f"conflicts: status {status!r} is not one of {', '.join(S.MERGE_CONFLICT_STATUSES)}.")
        q = q.where(m.status == status)
    with project.connect() as conn:
        rows = [tuple(r) for r in conn.execute(q)]
    return pd.DataFrame(rows, columns=CONFLICT_COLUMNS) if rows else pd.DataFrame(columns=CONFLICT_COLUMNS)


def resolve_conflict(project: Project, conflict_id: int, *, keep: str, actor: str | None = None) -> dict:
    """Settle one open conflict: ``keep="ours"`` leaves this copy as it is; ``keep="theirs"`` applies the
    other copy's value through its area's own function (and its audit-log entry), then marks it settled."""
    if keep not in ("ours", "theirs"):
        raise SpRealistError(f"conflicts resolve: keep {keep!r}; give ours or theirs.")
    m = S.merge_conflicts
    with project.connect() as conn:
        row = conn.execute(select(m).where(m.c.id == conflict_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"No conflict {conflict_id}; see 'sp-realist conflicts list'.")
    row = dict(row)
    if row["status"] != "open":
        raise SpRealistError(f"conflict {conflict_id} is already settled ({row['status']}).")
    who = current_user(actor, project=project)
    if keep == "theirs":
        _apply_theirs(project, row, json.loads(row["theirs"]) if row["theirs"] is not None else None, who)
    with project.begin() as conn:
        conn.execute(update(m).where(m.c.id == conflict_id).values(status=keep, resolved_by=who, resolved_at=now()))
        project.log(conn, "merge.resolve", f"{row['kind']} {row['key']} {row['field']}", actor=who, keep=keep,
                    conflict=conflict_id)
    row.update(status=keep)
    return row


def _apply_theirs(project: Project, row: dict, value: Any, actor: str | None) -> None:
    kind, key, fld = row["kind"], row["key"], row["field"]
    if kind == "code":
        from ..coding.codebook import edit_code, move_code

        if fld == "parent":
            move_code(project, key, value)
        else:
            edit_code(project, key, **{fld: value if value is not None else ""})
    elif kind == "cmoc":
        from ..cmoc.cmocs import edit_cmoc

        edit_cmoc(project, key, actor=actor, reason=f"merge conflict {row['id']}: took the other copy's value",
                  **{fld: value})
    elif kind == "theory":
        from ..cmoc.theories import edit_theory

        edit_theory(project, key, actor=actor, reason=f"merge conflict {row['id']}: took the other copy's value",
                    **{fld: value if value is not None else ""})
    elif kind == "theme":
        from ..coding.themes import edit_theme

        if fld == "parent":
            edit_theme(project, key, parent=value, top_level=value is None)
        else:
            edit_theme(project, key, **{fld: value if value is not None else ""})
    elif kind == "memo":
        from ..coding.memos import edit_memo

        edit_memo(project, int(key), **{fld: value if value is not None else ""})
    elif kind == "appraisal":
        from ..cmoc.appraisal import set_appraisal

        _, xid, analyst = key.split(" ", 2)
        set_appraisal(project, int(xid), analyst, **{fld: value})
    elif kind == "coding":
        from ..coding.codings import set_coding_memo

        with project.begin() as conn:
            set_coding_memo(conn, int(key), value or "")
            project.log(conn, "coding.memo", key, actor=actor)
    elif kind == "participant":
        from ..ingest.browse import edit_participant

        if fld.startswith("attribute:"):
            edit_participant(project, key, attributes={fld.split(":", 1)[1]: value})
        else:
            edit_participant(project, key, **{fld: value})
    elif kind == "source":
        from ..ingest.browse import set_source_attributes

        set_source_attributes(project, key, {fld.split(":", 1)[1]: value})
    else:  # pragma: no cover - kinds are written by this module only
        raise SpRealistError(f"conflict {row['id']}: kind {kind!r} cannot take the other copy's value.")


# -- the merge ----------------------------------------------------------------------------------------------
def merge_copy(project: Project, other: str, *, dry_run: bool = False, actor: str | None = None,
               label: str | None = None) -> MergeResult:
    """Bring another copy's sources, participants, codes, themes, excerpts, codings, memos, CMOCs, theories and
    appraisals into ``project`` in one transaction (``dry_run``: the same merge, rolled back).  ``label`` names
    the other copy in conflicts and the log (default: ``other`` itself)."""
    with _other_copy(other, project) as theirs_project:
        theirs = _read(theirs_project)
    result = MergeResult(origin=label or str(other), dry_run=dry_run)
    with project.connect() as conn:
        trans = conn.begin()
        try:
            _merge(conn, theirs, result)
            project.log(conn, "merge.dry_run" if dry_run else "merge", result.origin,
                        actor=current_user(actor, conn=conn), **{k: v for k, v in result.counts.items() if v})
            if dry_run:
                trans.rollback()
            else:
                trans.commit()
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
    return result


def _merge(conn, T: dict[str, list[dict]], result: MergeResult) -> None:
    from ..sources import Segment, SourceDraft, add_source, ensure_participant, set_attribute

    # participants
    pmap: dict[int, int] = {}
    ours_p = {r["code"]: r for r in _rows(conn, S.participants)}
    ours_pattrs: dict[int, dict] = {}
    for r in _rows(conn, S.participant_attributes):
        ours_pattrs.setdefault(r["participant_id"], {})[r["name"]] = r["value"]
    their_pattrs: dict[int, dict] = {}
    for r in T["participant_attributes"]:
        their_pattrs.setdefault(r["participant_id"], {})[r["name"]] = r["value"]
    for p in T["participants"]:
        mine = ours_p.get(p["code"])
        if mine is None:
            pid = ensure_participant(conn, p["code"], role=p["role"], site=p["site"])
            for name, value in their_pattrs.get(p["id"], {}).items():
                set_attribute(conn, "participant", pid, name, value)
            result.counts["participants"] += 1
        else:
            pid = mine["id"]
            _compare(conn, result, "participant", p["code"], mine, p, ("role", "site"))
            have = ours_pattrs.get(pid, {})
            for name, value in their_pattrs.get(p["id"], {}).items():
                if name not in have:
                    set_attribute(conn, "participant", pid, name, value)
                elif _norm(have[name]) != _norm(value):
                    _record_conflict(conn, result, "participant", p["code"], f"attribute:{name}", have[name], value)
        pmap[p["id"]] = pid

    # sources
    smap: dict[int, int] = {}
    ours_s = _rows(conn, S.sources)
    by_checksum: dict[str, list[dict]] = {}
    by_text: dict[str, dict] = {}
    for r in ours_s:
        by_checksum.setdefault(r["checksum"], []).append(r)
        by_text.setdefault(r["text"], r)
    names = {r["name"] for r in ours_s}
    segs: dict[int, list[dict]] = {}
    for r in T["segments"]:
        segs.setdefault(r["source_id"], []).append(r)
    sattrs: dict[int, dict] = {}
    for r in T["source_attributes"]:
        sattrs.setdefault(r["source_id"], {})[r["name"]] = r["value"]
    ours_sattrs: dict[int, dict] = {}
    for r in _rows(conn, S.source_attributes):
        ours_sattrs.setdefault(r["source_id"], {})[r["name"]] = r["value"]
    their_pcode = {p["id"]: p["code"] for p in T["participants"]}
    changed_text = 0
    for s in sorted(T["sources"], key=lambda r: r["ingest_order"]):
        same = next((r for r in by_checksum.get(s["checksum"], []) if r["text"] == s["text"]), None) \
            or by_text.get(s["text"])
        if same is not None:
            smap[s["id"]] = same["id"]
            have = ours_sattrs.get(same["id"], {})
            for name, value in sattrs.get(s["id"], {}).items():
                if name not in have:
                    set_attribute(conn, "source", same["id"], name, value)
                elif _norm(have[name]) != _norm(value):
                    _record_conflict(conn, result, "source", same["name"], f"attribute:{name}", have[name], value)
            continue
        if by_checksum.get(s["checksum"]):
            changed_text += 1  # the same file, a different text: anonymised or corrected in one copy
            continue
        name, n = s["name"], 2
        while name in names:
            name = f"{s['name']} ({n})"
            n += 1
        names.add(name)
        their_pc = {sg["participant_id"]: their_pcode.get(sg["participant_id"]) for sg in segs.get(s["id"], [])}
        draft = SourceDraft(
            name=name, kind=s["kind"], text=s["text"], checksum=s["checksum"], date=s["date"],
            file_name=s["file_name"], file_path=s["file_path"], file_format=s["file_format"],
            entry_index=s["entry_index"], participant_code=their_pcode.get(s["participant_id"]),
            attributes=dict(sattrs.get(s["id"], {})), guid=s["guid"], created_at=s["created_at"],
            segments=[Segment(sg["start"], sg["end"], kind=sg["kind"], speaker=sg["speaker"], section=sg["section"],
                              start_time=sg["start_time"], end_time=sg["end_time"],
                              participant_code=their_pc.get(sg["participant_id"]))
                      for sg in sorted(segs.get(s["id"], []), key=lambda r: r["ord"])])
        sid = add_source(conn, draft)
        smap[s["id"]] = sid
        by_text[s["text"]] = {"id": sid, "name": name, "text": s["text"]}
        result.counts["sources"] += 1
    if changed_text:
        result.notes.append(f"{changed_text} source(s) come from the same file but have a different text in the "
                            "other copy (anonymised or corrected in one of them); nothing that points into them "
                            "was merged")

    cmap = _merge_codes(conn, T, result)
    tmap = _merge_themes(conn, T, cmap, result)

    # excerpts
    from ..sources import get_or_create_excerpt

    xmap: dict[int, int] = {}
    have_x = {(r["source_id"], r["start"], r["end"]) for r in _rows(conn, S.excerpts)}
    for x in T["excerpts"]:
        sid = smap.get(x["source_id"])
        if sid is None:
            continue
        result.counts["excerpts"] += (sid, x["start"], x["end"]) not in have_x
        xmap[x["id"]] = get_or_create_excerpt(conn, sid, x["start"], x["end"])

    # codings
    from ..coding.codings import insert_codings, set_coding_memo

    c = S.codings.c
    ours_codings = {(r.code_id, r.source_id, r.start, r.end, r.coder): (r.id, r.memo) for r in conn.execute(
        select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder, c.memo))}
    rows, keys = [], {}
    for k in T["codings"]:
        cid, sid = cmap.get(k["code_id"]), smap.get(k["source_id"])
        if cid is None or sid is None:
            continue
        key = (cid, sid, k["start"], k["end"], k["coder"])
        keys[k["id"]] = key
        if key in ours_codings:
            mine = ours_codings[key][1]
            if _norm(mine) != _norm(k["memo"]):
                if _norm(mine) is None:
                    set_coding_memo(conn, ours_codings[key][0], k["memo"])
                else:
                    _record_conflict(conn, result, "coding", f"{ours_codings[key][0]}", "memo", mine, k["memo"])
            continue
        rows.append({f: k[f] for f in ("origin", "memo", "guid", "created_at", "dated", "selection_guid")}
                    | {"code_id": cid, "source_id": sid, "start": k["start"], "end": k["end"], "coder": k["coder"]})
    result.counts["codings"] += insert_codings(conn, rows, known=set(ours_codings))
    coding_ids = {}
    if keys:
        now_ids = {(r.code_id, r.source_id, r.start, r.end, r.coder): r.id for r in conn.execute(
            select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder))}
        coding_ids = {tid: now_ids[key] for tid, key in keys.items() if key in now_ids}

    kmap, thmap = _merge_realist(conn, T, xmap, result)
    _merge_appraisals(conn, T, xmap, result)
    _merge_memos(conn, T, {"code": cmap, "source": smap, "coding": coding_ids, "cmoc": kmap, "theory": thmap,
                           "participant": pmap, "theme": tmap}, result)


def _merge_codes(conn, T, result) -> dict[int, int]:
    from ..coding.codebook import insert_code

    ours = _rows(conn, S.codes)
    our_path = code_paths(ours)
    by_path = {p: cid for cid, p in our_path.items()}
    by_guid = {r["guid"]: r["id"] for r in ours if r["guid"]}
    by_name: dict[str, list[int]] = {}
    for r in ours:
        by_name.setdefault(r["name"], []).append(r["id"])
    our_rows = {r["id"]: r for r in ours}
    their_path = code_paths(T["codes"])
    cmap: dict[int, int] = {}
    for t in sorted(T["codes"], key=lambda r: (their_path[r["id"]].count("/"), r["ord"], r["id"])):
        tp = their_path[t["id"]]
        if tp in by_path:
            cid = by_path[tp]
            _compare(conn, result, "code", tp, our_rows[cid], t, CODE_FIELDS)
        else:
            cid = by_guid.get(t["guid"]) if t["guid"] else None
            if cid is None and S.codes.c.name.unique and len(by_name.get(t["name"], [])) == 1:
                # names are unique in the codebook: the same code, placed elsewhere in the other copy
                cid = by_name[t["name"]][0]
            if cid is not None:
                mine = our_path[cid]
                ours_parent = our_rows[cid]["parent_id"]
                theirs_parent = cmap.get(t["parent_id"]) if t["parent_id"] is not None else None
                if ours_parent != theirs_parent:  # moved (a code under a moved parent has not moved itself)
                    _record_conflict(conn, result, "code", mine, "parent",
                                     our_path[ours_parent] if ours_parent is not None else None,
                                     our_path[theirs_parent] if theirs_parent is not None else None)
                _compare(conn, result, "code", mine, our_rows[cid], t, CODE_FIELDS)
            else:
                pid = cmap.get(t["parent_id"]) if t["parent_id"] is not None else None
                fields = {f: t[f] for f in ("definition", "inclusion", "exclusion", "example", "colour")}
                cid = insert_code(conn, t["name"], pid, fields, guid=t["guid"], codable=t["codable"])
                row = dict(t, id=cid, parent_id=pid)
                our_rows[cid] = row
                by_name.setdefault(t["name"], []).append(cid)
                newp = f"{our_path[pid]}/{t['name']}" if pid is not None else t["name"]
                our_path[cid] = newp
                by_path[newp] = cid
                result.counts["codes"] += 1
        cmap[t["id"]] = cid
    return cmap


def _merge_themes(conn, T, cmap, result) -> dict[int, int]:
    from ..coding.themes import add_theme_codes, insert_theme

    ours = {r["name"]: r for r in _rows(conn, S.themes)}
    our_names = {r["id"]: r["name"] for r in ours.values()}
    their_names = {r["id"]: r["name"] for r in T["themes"]}
    tmap: dict[int, int] = {}
    for t in T["themes"]:
        their = dict(t, parent=their_names.get(t["parent_id"]))
        mine = ours.get(t["name"])
        if mine is None:
            tid = insert_theme(conn, name=t["name"], description=t["description"], phase=t["phase"], ord=t["ord"],
                               guid=t["guid"])
            result.counts["themes"] += 1
            if their["parent"] is not None:  # the writer adds top-level themes: the place is the analyst's call
                _record_conflict(conn, result, "theme", t["name"], "parent", None, their["parent"])
        else:
            tid = mine["id"]
            _compare(conn, result, "theme", t["name"], dict(mine, parent=our_names.get(mine["parent_id"])), their,
                     THEME_FIELDS)
        tmap[t["id"]] = tid
    members: dict[int, list[int]] = {}
    for r in T["theme_codes"]:
        if r["code_id"] in cmap:
            members.setdefault(tmap[r["theme_id"]], []).append(cmap[r["code_id"]])
    for tid, ids in members.items():
        add_theme_codes(conn, tid, ids)
    return tmap


def _merge_realist(conn, T, xmap, result) -> tuple[dict[int, int], dict[int, int]]:
    from ..cmoc.cmocs import add_cmoc_conn, link_evidence_conn, relate_conn
    from ..cmoc.theories import add_member_conn, add_theory_conn, record_change_conn

    ours = {r["key"]: r for r in _rows(conn, S.cmocs)}
    kmap: dict[int, int] = {}
    keys: dict[int, str] = {}
    for k in T["cmocs"]:
        mine = ours.get(k["key"])
        if mine is None:
            cid = add_cmoc_conn(conn, k["key"], where=f"CMOC {k['key']} of the other copy", guid=k["guid"],
                                created_at=k["created_at"], updated_at=k["updated_at"],
                                **{f: k[f] for f in CMOC_FIELDS})
            result.counts["cmocs"] += 1
        else:
            cid = mine["id"]
            _compare(conn, result, "cmoc", k["key"], mine, k, CMOC_FIELDS)
        kmap[k["id"]] = cid
        keys[k["id"]] = k["key"]
    rel = S.cmoc_relations.c
    have_rel = {(r.from_id, r.to_id, r.kind) for r in conn.execute(select(rel.from_id, rel.to_id, rel.kind))}
    for r in T["cmoc_relations"]:
        a, b = kmap.get(r["from_id"]), kmap.get(r["to_id"])
        if a and b and (a, b, r["kind"]) not in have_rel:
            relate_conn(conn, keys[r["from_id"]], keys[r["to_id"]], r["kind"], r["note"])
            result.counts["relations"] += 1
    ev = S.cmoc_evidence.c
    have_ev = {(r.cmoc_id, r.excerpt_id, r.role) for r in conn.execute(select(ev.cmoc_id, ev.excerpt_id, ev.role))}
    for e in T["cmoc_evidence"]:
        cid, xid = kmap.get(e["cmoc_id"]), xmap.get(e["excerpt_id"])
        if cid and xid and (cid, xid, e["role"]) not in have_ev:
            link_evidence_conn(conn, keys[e["cmoc_id"]], xid, role=e["role"], component=e["component"],
                               analyst=e["analyst"], note=e["note"], created_at=e["created_at"])
            have_ev.add((cid, xid, e["role"]))
            result.counts["evidence"] += 1

    ours_t = {r["key"]: r for r in _rows(conn, S.theories)}
    thmap: dict[int, int] = {}
    tkeys: dict[int, str] = {}
    for t in T["theories"]:
        their = dict(t, questions=json.loads(t["questions"]) if t["questions"] else None)
        mine = ours_t.get(t["key"])
        if mine is None:
            tid = add_theory_conn(conn, t["key"], t["title"], description=t["description"],
                                  questions=their["questions"], where=f"theory {t['key']} of the other copy",
                                  guid=t["guid"], created_at=t["created_at"], updated_at=t["updated_at"])
            result.counts["theories"] += 1
        else:
            tid = mine["id"]
            _compare(conn, result, "theory", t["key"], dict(mine, questions=json.loads(mine["questions"])
                                                             if mine["questions"] else None), their, THEORY_FIELDS)
        thmap[t["id"]] = tid
        tkeys[t["id"]] = t["key"]
    for m in sorted(T["theory_cmocs"], key=lambda r: (r["theory_id"], r["ord"])):
        if m["theory_id"] in tkeys and m["cmoc_id"] in keys:
            result.counts["members"] += add_member_conn(conn, tkeys[m["theory_id"]], keys[m["cmoc_id"]], record=False)
    h = S.theory_history.c
    have_h = {(r.theory_id, r.at, r.author, r.change) for r in conn.execute(select(h.theory_id, h.at, h.author, h.change))}
    for r in T["theory_history"]:
        tid = thmap.get(r["theory_id"])
        if tid is None or (tid, r["at"], r["author"], r["change"]) in have_h:
            continue
        evidence = [xmap[i] for i in (json.loads(r["evidence"]) if r["evidence"] else []) if i in xmap]
        record_change_conn(conn, tkeys[r["theory_id"]], r["change"], reason=r["reason"], evidence=evidence or None,
                           author=r["author"], at=r["at"])
        result.counts["history"] += 1
    return kmap, thmap


def _merge_appraisals(conn, T, xmap, result) -> None:
    from ..cmoc.appraisal import set_appraisal_conn

    their_cmoc = {r["id"]: r["key"] for r in T["cmocs"]}
    their_theory = {r["id"]: r["key"] for r in T["theories"]}
    our_cmoc = {r.id: r.key for r in conn.execute(select(S.cmocs.c.id, S.cmocs.c.key))}
    our_theory = {r.id: r.key for r in conn.execute(select(S.theories.c.id, S.theories.c.key))}
    ours = {(r["excerpt_id"], r["analyst"]): r for r in _rows(conn, S.appraisals)}
    for a in T["appraisals"]:
        xid = xmap.get(a["excerpt_id"])
        if xid is None:
            continue
        steps = {f: a[f] for f in APPRAISAL_FIELDS if f not in ("cmoc", "theory")}
        steps["cmoc"] = their_cmoc.get(a["cmoc_id"])
        steps["theory"] = their_theory.get(a["theory_id"])
        mine = ours.get((xid, a["analyst"]))
        if mine is None:
            set_appraisal_conn(conn, xid, a["analyst"], where=f"appraisal by {a['analyst']} in the other copy",
                               created_at=a["created_at"], updated_at=a["updated_at"], **steps)
            result.counts["appraisals"] += 1
        else:
            have = dict(mine, cmoc=our_cmoc.get(mine["cmoc_id"]), theory=our_theory.get(mine["theory_id"]))
            _compare(conn, result, "appraisal", f"excerpt {xid} {a['analyst']}", have, steps, APPRAISAL_FIELDS)


def _merge_memos(conn, T, maps: dict[str, dict[int, int]], result) -> None:
    from ..coding.memos import insert_memo

    ours = _rows(conn, S.memos)
    by_guid = {r["guid"]: r for r in ours if r["guid"]}
    same = {(r["target_type"], r["target_id"], r["title"], r["text"]) for r in ours}
    unplaced = 0
    for m in T["memos"]:
        mine = by_guid.get(m["guid"]) if m["guid"] else None
        if mine is not None:
            _compare(conn, result, "memo", str(mine["id"]), mine, m, MEMO_FIELDS)
            continue
        tid = None
        if m["target_type"] != "project":
            tid = maps.get(m["target_type"], {}).get(m["target_id"])
            if tid is None:
                unplaced += 1
                continue
        if (m["target_type"], tid, m["title"], m["text"]) in same:
            continue
        insert_memo(conn, target_type=m["target_type"], target_id=tid, text=m["text"], author=m["author"],
                    title=m["title"], guid=m["guid"], created_at=m["created_at"], updated_at=m["updated_at"],
                    in_report=bool(m["in_report"]))
        same.add((m["target_type"], tid, m["title"], m["text"]))
        result.counts["memos"] += 1
    if unplaced:
        result.notes.append(f"{unplaced} memo(s) are on something that was not merged (a source whose text "
                            "differs) and were left in the other copy")

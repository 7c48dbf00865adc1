"""Apply a read :class:`~sp_realist.exchange.qdpx_read.QdpxPlan` to a project, inside the caller's
transaction, through each area's own write functions (codebook, codings, memos, themes, sources,
participants, CMOCs, theories, appraisals): the rules and enumerations live in those areas."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..cmoc.appraisal import set_appraisal_conn
from ..cmoc.cmocs import link_evidence_conn
from ..coding.codings import insert_coding_tuples, set_coding_memo
from ..coding.memos import insert_memo
from ..errors import SpRealistError
from ..sources import (Segment, SourceDraft, add_source, add_source_set, ensure_participant, get_or_create_excerpt,
                       keep_participant_guid, link_source_participant, set_attribute, sha256_bytes)
from ..store import Project, now, stable_guid
from .common import ImportResult, apply_codes, apply_themes, apply_users
from .qdpx_read import NotePlan, QdpxPlan

def _segments(text: str) -> list[Segment]:
    """Paragraph segments (one per line) tiling the text exactly."""
    segs, pos = [], 0
    for line in text.splitlines(keepends=True):
        segs.append(Segment(pos, pos + len(line), kind="paragraph"))
        pos += len(line)
    if pos < len(text):  # pragma: no cover - splitlines covers the whole string
        segs.append(Segment(pos, len(text), kind="paragraph"))
    return segs


def _apply_realist(conn: Connection, plan: QdpxPlan, result: ImportResult) -> tuple[dict, dict]:
    """CMOCs, their relations and theories recognised in the file (reused by key if present), written
    through the cmoc area's own functions (``add_cmoc_conn``, ``relate_conn``, ``add_theory_conn``,
    ``add_member_conn``); one the area refuses (a key with spaces, a theory without a title) is reported."""
    from ..cmoc.cmocs import add_cmoc_conn, relate_conn
    from ..cmoc.theories import add_member_conn, add_theory_conn

    cmoc_ids: dict[str, int] = {}
    cmoc_keys: dict[int, str] = {}
    reused = 0
    refused: list[str] = []
    for i, cp in enumerate(plan.cmocs):
        row = conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == cp.key)).first()
        if row:
            cmoc_ids[cp.guid] = row[0]
            cmoc_keys[row[0]] = cp.key
            reused += 1
            continue
        fields = {k: cp.parts.get(k) for k in ("context", "mechanism_resource", "mechanism_response", "outcome")}
        try:
            with conn.begin_nested():
                cid = add_cmoc_conn(
                    conn, cp.key, where=f"CMOC set 'CMOC {cp.key}'", guid=cp.guid, created_at=cp.created,
                    updated_at=cp.modified, ord=i, status=cp.status if cp.status in ("partial", "complete") else "partial",
                    confidence=cp.confidence if cp.confidence in ("high", "moderate", "low") else None,
                    memo=cp.memo, ifthen=cp.ifthen, **fields)
        except SpRealistError as exc:
            refused.append(str(exc))
            continue
        cmoc_ids[cp.guid] = cid
        cmoc_keys[cid] = cp.key
        result.counts["cmocs"] += 1
    for a, b, kind in plan.relations:
        fa, fb = cmoc_ids.get(a), cmoc_ids.get(b)
        if fa and fb and fa != fb:
            relate_conn(conn, cmoc_keys[fa], cmoc_keys[fb], kind)  # an existing relation is left as it is
    theory_ids: dict[str, int] = {}
    for i, tp in enumerate(plan.theories):
        row = conn.execute(select(S.theories.c.id).where(S.theories.c.key == tp.key)).first()
        if row:
            theory_ids[tp.guid] = row[0]
            reused += 1
        else:
            try:
                with conn.begin_nested():
                    theory_ids[tp.guid] = add_theory_conn(
                        conn, tp.key, tp.title, description=tp.description, questions=tp.questions,
                        where=f"theory graph '{tp.key}: {tp.title}'", guid=tp.guid, created_at=tp.created,
                        updated_at=tp.modified, ord=i)
            except SpRealistError as exc:
                refused.append(str(exc))
                continue
            result.counts["theories"] += 1
        for cg in tp.cmocs:
            cid = cmoc_ids.get(cg)
            if cid:
                add_member_conn(conn, tp.key, cmoc_keys[cid], record=False)
    if reused:
        result.note(f"{reused} CMOC(s) or theor(y/ies) with the same key were already in the project and kept as they were")
    for line in refused:
        result.lose(f"a CMOC or theory was not imported: {line.rstrip('.')}")
    return cmoc_ids, theory_ids


def apply_plan(conn: Connection, plan: QdpxPlan, project: Project, tool: str | None = None) -> ImportResult:
    """Write a read plan into the project inside the caller's transaction."""
    result = plan.result
    users = plan.users
    tool = tool or (plan.origin.split(" ")[0] if plan.origin else "qdpx")
    origin = f"import:{tool}"[:300]
    default_user = "imported"

    def user(g: str | None, fallback: str | None = None) -> str:
        return users.get(g) or users.get(fallback) or default_user

    participants_before = {r[0] for r in conn.execute(select(S.participants.c.code))}
    code_ids = apply_codes(conn, plan.codes, result, origin)

    # sources
    source_ids: dict[str, int] = {}
    existing = {r["name"]: dict(r) for r in conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.text)).mappings()}
    reused = renamed = empty = 0
    new_sids: set[int] = set()
    for sp in plan.sources:
        if sp.name in existing and existing[sp.name]["text"] == sp.text:
            source_ids[sp.guid] = existing[sp.name]["id"]
            reused += 1
            continue
        name, n = sp.name, 2
        while name in existing:
            name = f"{sp.name} ({n})"
            n += 1
        if name != sp.name:
            renamed += 1
        if not sp.text:
            empty += 1
        attrs = dict(sp.attrs)
        sid = add_source(conn, SourceDraft(
            name=name, kind=sp.kind, text=sp.text, segments=sp.segments or _segments(sp.text),
            checksum=sha256_bytes(sp.text.encode("utf-8", "surrogatepass")), date=sp.date,
            file_name=Path(result.source).name, file_format="qdpx", attributes=attrs,
            # keep the GUID and, when the file gives it, the source's creation time (a round trip keeps both)
            guid=sp.guid, created_at=sp.created))
        existing[name] = {"id": sid, "name": name, "text": sp.text}
        source_ids[sp.guid] = sid
        new_sids.add(sid)
        result.counts["sources"] += 1
    if reused:
        result.note(f"{reused} source(s) already in the project (same name and text) were reused")
    if renamed:
        result.note(f"{renamed} source(s) had the name of a different source already in the project and were "
                    "imported with a number added")
    if empty:
        result.note(f"{empty} source(s) have no text")
    for ss in plan.source_sets:
        added = add_source_set(conn, ss.name, [source_ids[g] for g in ss.sources if g in source_ids],
                               description=ss.description, guid=ss.guid)
        result.counts["source sets"] += added
    result.counts["users"] += apply_users(conn, users)

    # cases -> participants
    conflicts = second_case = 0
    case_ids: dict[str, int] = {}
    for cp in plan.cases:
        attrs = dict(cp.attrs)
        role, site = attrs.pop("role", None), attrs.pop("site", None)
        pid = ensure_participant(conn, cp.name, role=role, site=site)
        case_ids[cp.guid] = pid
        keep_participant_guid(conn, pid, cp.guid)  # a participant's existing GUID is never replaced
        if " ".join(cp.name.split()) not in participants_before:
            result.counts["cases"] += 1
        have = dict(conn.execute(select(S.participant_attributes.c.name, S.participant_attributes.c.value)
                                 .where(S.participant_attributes.c.participant_id == pid)).all())
        for k, v in attrs.items():
            if k in have:
                conflicts += have[k] != v
                continue
            set_attribute(conn, "participant", pid, k, v)
        for sg in cp.sources:
            sid = source_ids.get(sg)
            if sid is not None:
                if not link_source_participant(conn, sid, pid):
                    second_case += 1
        if cp.description:
            plan.notes.setdefault(stable_guid("case-description", cp.guid), NotePlan(
                stable_guid("case-description", cp.guid), "Case description", cp.description, None, None, None))
            plan.note_targets.append((stable_guid("case-description", cp.guid), "participant", cp.guid))
    if second_case:
        result.lose(f"{second_case} case-to-source link(s) not imported: the source already belongs to another case "
                    "(an sp_realist source belongs to one participant)")
    if conflicts:
        result.lose(f"{conflicts} case variable value(s) differ from the participant's existing attribute and "
                    "were not applied (the project's value was kept)")

    # codings and uncoded selections: check against the codings already present in reused
    # sources, insert the new ones in one statement, then map them back to ids
    coding_ids: dict = {}
    dup = missing_code = undated = 0
    reused_sids = set(source_ids.values()) - new_sids
    known: dict[tuple, int] = {}
    if reused_sids:
        c = S.codings.c
        for r in conn.execute(select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder)
                              .where(c.source_id.in_(reused_sids))):
            known[(r.code_id, r.source_id, r.start, r.end, r.coder)] = r.id
    before = set(known)  # the codings already in reused sources (insert_coding_tuples skips these)
    rows: list[tuple] = []  # in codings.CODING_COLUMNS order
    touched: set[int] = set()
    stamp = now()  # the time of a coding the file gives none for
    refs: list[tuple] = []  # (coding key, coding plan)
    excerpt_ids: dict[str, int] = {}  # uncoded selection (GUID, else source:start:end) -> excerpt id
    undated_excerpts = 0
    for sp in plan.sources:
        sid = source_ids[sp.guid]
        items = [(sel, sel.span, sel.codings) for sel in sp.sels if sel.span]
        if sp.whole and sp.text:
            items.append((None, (0, len(sp.text)), sp.whole))
        for sel, span, codings in items:
            if sel is not None and not codings:  # an uncoded selection: an excerpt with its GUID and time
                xref = sel.guid or f"{sp.guid}:{span[0]}:{span[1]}"
                excerpt_ids[xref] = get_or_create_excerpt(conn, sid, *span, guid=sel.guid, created_at=sel.created,
                                                          dated=sel.created is not None)
                undated_excerpts += sel.created is None
                result.counts["excerpts"] += 1
            first_coding = None
            for c in codings:
                cid = code_ids.get(c.code)
                if cid is None:
                    missing_code += 1
                    continue
                coder = user(c.user, sel.user if sel else None)
                key = (cid, sid, span[0], span[1], coder)
                if key in known:
                    dup += 1
                else:
                    known[key] = 0  # inserted below
                    # a coding's time is its own, else its selection's; none given stays none (dated False)
                    given = c.created or (sel.created if sel else None)
                    undated += given is None
                    rows.append((cid, sid, span[0], span[1], coder, origin, None, c.guid, given or stamp,
                                 given is not None, sel.guid if sel else None))
                    touched.add(sid)
                ref = c.guid or key
                refs.append((key, ref))
                first_coding = first_coding or ref
                for ng in c.notes:
                    plan.note_targets.append((ng, "coding", ref))
            if sel is not None:
                # on its (first) coding, else on its excerpt; a selection whose codings all name missing codes
                # (reported) has neither, so its notes go on the source
                target = (("coding", first_coding) if first_coding else ("excerpt", xref) if not codings
                          else ("source", sp.guid))
                for ng in sel.notes:
                    plan.note_targets.append((ng, *target))
                if sel.description and sel.description.strip():
                    g = stable_guid("selection-description", sel.guid or f"{sp.guid}:{sel.start}:{sel.end}")
                    title = f"Comment on {sel.name!r}" if sel.name else f"Comment on {span[0]}:{span[1]}"
                    plan.notes[g] = NotePlan(g, title[:300], sel.description, sel.user, sel.created, sel.created)
                    plan.note_targets.append((g, *target))
        for ng in sp.notes:
            plan.note_targets.append((ng, "source", sp.guid))
        if sp.description and sp.description.strip():
            g = stable_guid("source-description", sp.guid)
            plan.notes[g] = NotePlan(g, "Source description", sp.description, None, sp.created, sp.created)
            plan.note_targets.append((g, "source", sp.guid))
    if rows:
        result.counts["codings"] += insert_coding_tuples(conn, rows, known=before)
    # the ids of the inserted codings are needed only for notes on codings (memos, selection notes): read
    # back only then
    if any(ttype == "coding" for _, ttype, _ in plan.note_targets):
        if rows:
            c = S.codings.c
            for r in conn.execute(select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder)
                                  .where(c.source_id.in_(touched))):
                known[(r.code_id, r.source_id, r.start, r.end, r.coder)] = r.id
        for key, ref in refs:
            coding_ids.setdefault(ref, known[key])
    if undated:
        result.note(f"{undated} coding(s) had no time in the file; none is exported for them")
    if undated_excerpts:
        result.note(f"{undated_excerpts} selection(s) without codings had no time in the file; none is exported "
                    "for them")
    if dup:
        result.note(f"{dup} coding(s) already present (same code, span and coder) were not duplicated")
    if missing_code:
        result.lose(f"{missing_code} coding(s) refer to codes that are not in the codebook and were skipped")

    theme_ids = apply_themes(conn, plan.themes, code_ids, result)
    cmoc_ids, theory_ids = _apply_realist(conn, plan, result)
    lost_evidence = 0
    for src_guid, sel, cmoc_guid, role, component, analyst, text, created in plan.evidence:
        cid, sid = cmoc_ids.get(cmoc_guid), source_ids.get(src_guid)
        if cid is None or sid is None or sel.span is None:
            lost_evidence += 1
            continue
        xid = get_or_create_excerpt(conn, sid, *sel.span)
        e = S.cmoc_evidence.c
        if conn.execute(select(e.id).where(e.cmoc_id == cid, e.excerpt_id == xid, e.role == role)).first():
            continue  # an existing link is kept as it is (link_evidence_conn would update it)
        key = conn.execute(select(S.cmocs.c.key).where(S.cmocs.c.id == cid)).scalar_one()
        link_evidence_conn(conn, key, xid, role=role, component=component,
                           analyst=users.get(analyst) if analyst else None, note=text, created_at=created)
        result.counts["evidence"] += 1
    if lost_evidence:
        result.lose(f"{lost_evidence} CMOC evidence link(s) point at selections that could not be placed")
    lost_appraisals = 0
    refused_appraisals: list[str] = []
    cmoc_keys = {r[0] for r in conn.execute(select(S.cmocs.c.key))}
    theory_keys = {r[0] for r in conn.execute(select(S.theories.c.key))}
    for src_guid, sel, note, fields in plan.appraisals:
        sid = source_ids.get(src_guid)
        if sid is None or sel.span is None:
            lost_appraisals += 1
            continue
        xid = get_or_create_excerpt(conn, sid, *sel.span)
        a = S.appraisals.c
        if conn.execute(select(a.id).where(a.excerpt_id == xid, a.analyst == fields["analyst"])).first():
            continue  # an existing appraisal is kept as it is
        steps = {k: fields.get(k) for k in ("relevance", "trust", "trust_rationale", "interpretation",
                                             "cmoc_judgement", "theory_change", "theory_note", "saturation_note",
                                             "note")}
        steps = {k: (v if v is None or isinstance(v, bool) else str(v)) for k, v in steps.items()}
        steps["cmoc"] = fields.get("cmoc") if fields.get("cmoc") in cmoc_keys else None
        steps["theory"] = fields.get("theory") if fields.get("theory") in theory_keys else None
        try:
            with conn.begin_nested():
                set_appraisal_conn(conn, xid, fields["analyst"], where=f"note {note.title!r}",
                                   created_at=note.created, updated_at=note.modified, **steps)
        except SpRealistError as exc:
            refused_appraisals.append(str(exc))
            continue
        result.counts["appraisals"] += 1
    for line in refused_appraisals:
        result.lose(f"an appraisal was not imported: {line.rstrip('.')}")
    if lost_appraisals:
        result.lose(f"{lost_appraisals} appraisal(s) are on selections that could not be placed")

    # notes -> memos (one per target; unreferenced notes become project memos)
    ids_by_type = {"code": code_ids, "source": source_ids, "coding": coding_ids, "participant": case_ids,
                   "theme": theme_ids, "cmoc": cmoc_ids, "theory": theory_ids, "excerpt": excerpt_ids}
    targets = defaultdict(list)
    for ng, ttype, tg in plan.note_targets:
        if ng not in plan.notes:
            continue
        tid = None if ttype == "project" else ids_by_type.get(ttype, {}).get(tg)
        if ttype != "project" and tid is None:
            continue
        if (ttype, tid) not in targets[ng]:
            targets[ng].append((ttype, tid))
    existing_memo_guids = {r[0] for r in conn.execute(select(S.memos.c.guid).where(S.memos.c.guid.is_not(None)))}
    existing_memos = {tuple(r) for r in conn.execute(select(
        S.memos.c.target_type, S.memos.c.target_id, S.memos.c.title, S.memos.c.text))}
    same = 0
    for ng, note in plan.notes.items():
        author = user(note.user)
        created = note.created or now()
        for i, (ttype, tid) in enumerate(targets.get(ng) or [("project", None)]):
            mg = ng if i == 0 else stable_guid("memo", ng, ttype, tid)
            title = (note.title or None) and note.title[:300]
            if mg in existing_memo_guids or (ttype, tid, title, note.text or "") in existing_memos:
                same += 1
                continue
            if ttype == "coding":  # sp_realist writes a coding's own memo as a note titled "Coding memo"
                current = conn.execute(select(S.codings.c.memo).where(S.codings.c.id == tid)).scalar()
                if current == (note.text or ""):
                    same += 1
                    continue
                if title == "Coding memo" and not current:
                    set_coding_memo(conn, tid, note.text or "")
                    result.counts["notes"] += 1
                    continue
            insert_memo(conn, target_type=ttype, target_id=tid, title=title, text=note.text or "", author=author,
                        guid=mg, created_at=created, updated_at=note.modified or created)
            result.counts["notes"] += 1
    if same:
        result.note(f"{same} note(s) already in the project (same target, title and text) were not duplicated")
    project.log(conn, "import.qdpx", result.source, **{k: int(v) for k, v in result.counts.items()},
                losses=len(result.losses))
    return result



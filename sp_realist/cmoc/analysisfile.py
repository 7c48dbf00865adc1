"""Analysis files (``analysis.yaml``): appraisals and CMOC evidence kept in git.

.. code-block:: yaml

    analyst: RA                       # default analyst for every excerpt (optional)
    excerpts:
      - source: S1 DK1 2019-05-14
        quote: "I wasn't told what clients I was seeing"   # or span: [s, e] / segment: N / section: "So what?"
        analyst: RA
        appraisal:
          relevance: relevant
          trust: high
          trust_rationale: first-hand account written the same week
          interpretation: context
          cmoc_judgement: supports
          cmoc: T1.1
          theory: T1
          theory_change: false
          theory_note: ...
          saturation_note: ...
        evidence:
          - {cmoc: T1.1, role: supports, component: context, note: ...}

Import validates the whole file and writes it in one transaction; CMOCs and
theories must already exist (import the theory file first).  Re-importing an
unchanged file changes nothing; a changed appraisal is updated and its
previous version kept in the appraisal history.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError
from ..store import Project, insert_ignoring
from .appraisal import STEP_FIELDS
from ..yamlio import write_exported_text
from .theoryfile import dump_yaml, excerpt_ref, read_yaml

EXCERPT_FIELDS = ("source", "quote", "span", "segment", "section", "analyst", "appraisal", "evidence")
EVIDENCE_FIELDS = ("cmoc", "role", "component", "note", "analyst")


def _validate(doc: Any, path: Path) -> list[dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("excerpts"), list):
        raise SpRealistError(f"{path}: expected a mapping with an 'excerpts' list; see docs/realist.md.")
    unknown = sorted(set(doc) - {"excerpts", "analyst"})
    if unknown:
        raise SpRealistError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; use analyst and excerpts.")
    for i, e in enumerate(doc["excerpts"]):
        where = f"{path}: excerpt {i + 1}"
        if not isinstance(e, dict):
            raise SpRealistError(f"{where}: must be a mapping with source and quote (or span/segment/section).")
        bad = sorted(set(e) - set(EXCERPT_FIELDS))
        if bad:
            raise SpRealistError(f"{where}: unknown field(s) {', '.join(bad)}; allowed: {', '.join(EXCERPT_FIELDS)}.")
        if e.get("appraisal") is not None:
            if not isinstance(e["appraisal"], dict):
                raise SpRealistError(f"{where}: 'appraisal' must be a mapping of the six steps.")
            bad = sorted(set(e["appraisal"]) - set(STEP_FIELDS))
            if bad:
                raise SpRealistError(f"{where}: unknown appraisal field(s) {', '.join(bad)}; allowed: "
                                     f"{', '.join(STEP_FIELDS)}.")
            if not (e.get("analyst") or doc.get("analyst")):
                raise SpRealistError(f"{where}: an appraisal needs an analyst (here or at the top of the file).")
        for j, ev in enumerate(e.get("evidence") or []):
            if not isinstance(ev, dict) or not ev.get("cmoc"):
                raise SpRealistError(f"{where}, evidence {j + 1}: needs a cmoc (and a role: supports or refutes).")
            bad = sorted(set(ev) - set(EVIDENCE_FIELDS))
            if bad:
                raise SpRealistError(f"{where}, evidence {j + 1}: unknown field(s) {', '.join(bad)}.")
    return doc["excerpts"]


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def import_analysis_conn(conn: Connection, path: str | os.PathLike) -> dict:
    """Import an analysis file inside the caller's transaction (set-based: a few statements per table)."""
    from sqlalchemy import insert, update

    from ..store import now
    from ._common import COMPONENTS, ROLES, Lookups, check_choice
    from .appraisal import _values, merge_values, snapshot

    path = Path(path)
    doc = read_yaml(path, "analysis")
    excerpts = _validate(doc, path)
    default_analyst = doc.get("analyst")
    counts = {"excerpts": 0, "appraisals_created": 0, "appraisals_updated": 0, "evidence": 0}
    lk = Lookups(conn)
    ts = now()

    # 1. Locate every excerpt (no writes yet), validate every appraisal and evidence entry.
    entries = []
    for i, e in enumerate(excerpts):
        where = f"{path}: excerpt {i + 1}"
        ref = {k: e[k] for k in ("source", "quote", "span", "segment", "section") if k in e}
        span = lk.span(ref, where)
        analyst = str(e.get("analyst") or default_analyst) if (e.get("analyst") or default_analyst) else None
        try:
            values = _values(lk, e["appraisal"], where) if e.get("appraisal") else None
        except NotFoundError as exc:
            raise NotFoundError(f"{where}: {exc.message[0].lower()}{exc.message[1:]}") from None
        evidence = []
        for j, ev in enumerate(e.get("evidence") or []):
            w = f"{where}, evidence {j + 1}"
            try:
                cmoc_id = lk.cmoc(str(ev["cmoc"]))["id"]
            except NotFoundError:
                raise NotFoundError(f"{w}: no CMOC {ev['cmoc']} in the project; import the theory file first or "
                                    "correct the key.") from None
            evidence.append({"cmoc_id": cmoc_id,
                             "role": check_choice(ev.get("role") or "supports", ROLES, "role", w) or "supports",
                             "component": check_choice(ev.get("component"), COMPONENTS, "component", w),
                             "analyst": ev.get("analyst") or analyst, "note": ev.get("note")})
        entries.append((where, span, analyst, values, evidence))

    # 2. Excerpts: reuse existing spans, insert the missing ones in one statement.
    ex = S.excerpts
    source_ids = sorted({span[0] for _w, span, *_ in entries})
    known: dict[tuple, int] = {}
    for chunk in _chunks(source_ids):
        for eid, sid, a, b in conn.execute(select(ex.c.id, ex.c.source_id, ex.c.start, ex.c.end)
                                           .where(ex.c.source_id.in_(chunk))):
            known[(sid, a, b)] = eid
    missing = list(dict.fromkeys(span for _w, span, *_ in entries if span not in known))
    if missing:
        conn.execute(insert_ignoring(conn, ex, ["source_id", "start", "end"]),
                     [dict(source_id=a, start=b, end=c, created_at=ts) for a, b, c in missing])
        for chunk in _chunks(source_ids):
            for eid, sid, a, b in conn.execute(select(ex.c.id, ex.c.source_id, ex.c.start, ex.c.end)
                                               .where(ex.c.source_id.in_(chunk))):
                known[(sid, a, b)] = eid
    counts["excerpts"] = len(entries)
    excerpt_ids = sorted({known[span] for _w, span, *_ in entries})

    # 3. Appraisals: compare with the current ones; insert new ones together, update changed ones with history.
    a = S.appraisals
    current: dict[tuple, dict] = {}
    for chunk in _chunks(excerpt_ids):
        for row in conn.execute(select(a).where(a.c.excerpt_id.in_(chunk))).mappings():
            current[(row["excerpt_id"], row["analyst"])] = dict(row)
    new_rows: dict[tuple, dict] = {}
    for where, span, analyst, values, _ev in entries:
        if values is None:
            continue
        key = (known[span], analyst)
        if key in new_rows:  # the same excerpt and analyst twice in the file: the later values win
            new_rows[key].update(merge_values(new_rows[key], values, where))
            continue
        cur = current.get(key)
        if cur is None:
            new_rows[key] = dict(excerpt_id=key[0], analyst=analyst, created_at=ts, updated_at=ts,
                                 **merge_values(None, values, where))
            counts["appraisals_created"] += 1
            continue
        changed = {k: v for k, v in values.items() if cur[k] != v}
        if not changed:
            continue
        merge_values(cur, values, where)
        conn.execute(insert(S.appraisal_history).values(appraisal_id=cur["id"], at=ts, analyst=analyst,
                                                        snapshot=snapshot(conn, cur)))
        conn.execute(update(a).where(a.c.id == cur["id"]).values(updated_at=ts, **changed))
        cur.update(changed)
        counts["appraisals_updated"] += 1
    if new_rows:
        conn.execute(insert(a), list(new_rows.values()))

    # 4. Evidence links: new ones together; existing ones get the given component, analyst and note.
    ev_t = S.cmoc_evidence
    links: dict[tuple, dict] = {}
    for chunk in _chunks(excerpt_ids):
        for row in conn.execute(select(ev_t).where(ev_t.c.excerpt_id.in_(chunk))).mappings():
            links[(row["cmoc_id"], row["excerpt_id"], row["role"])] = dict(row)
    pending: dict[tuple, dict] = {}
    for _where, span, _analyst, _values_, evidence in entries:
        for item in evidence:
            counts["evidence"] += 1
            key = (item["cmoc_id"], known[span], item["role"])
            given = {k: item[k] for k in ("component", "analyst", "note") if item[k] is not None}
            if key in pending:
                pending[key].update(given)
            elif key in links:
                row = links[key]
                diff = {k: v for k, v in given.items() if row[k] != v}
                if diff:
                    conn.execute(update(ev_t).where(ev_t.c.id == row["id"]).values(**diff))
                    row.update(diff)
            else:
                pending[key] = dict(cmoc_id=key[0], excerpt_id=key[1], role=key[2], component=item["component"],
                                    analyst=item["analyst"], note=item["note"], created_at=ts)
    if pending:
        conn.execute(insert(ev_t), list(pending.values()))
    return counts


def import_analysis_yaml(project: Project, path: str | os.PathLike, actor: str | None = None) -> dict:
    """Import appraisals and CMOC evidence from an analysis file; return counts."""
    with project.begin() as conn:
        counts = import_analysis_conn(conn, path)
        project.log(conn, "analysis.import", str(path), actor=actor, **counts)
    return counts


def analysis_document(conn: Connection) -> dict:
    """Every appraisal and evidence link as an analysis-file document."""
    a, ev = S.appraisals, S.cmoc_evidence
    cmoc_keys = dict(conn.execute(select(S.cmocs.c.id, S.cmocs.c.key)).all())
    theory_keys = dict(conn.execute(select(S.theories.c.id, S.theories.c.key)).all())
    order = (select(S.excerpts.c.id).select_from(S.excerpts.join(S.sources, S.sources.c.id == S.excerpts.c.source_id))
             .order_by(S.sources.c.ingest_order, S.excerpts.c.start, S.excerpts.c.end))
    out = []
    for (eid,) in conn.execute(order):
        apps = conn.execute(select(a).where(a.c.excerpt_id == eid).order_by(a.c.analyst)).mappings().all()
        evs = conn.execute(select(ev).where(ev.c.excerpt_id == eid).order_by(ev.c.id)).mappings().all()
        if not apps and not evs:
            continue
        ref = excerpt_ref(conn, eid)
        evidence = []
        for e in evs:
            item = {"cmoc": cmoc_keys[e["cmoc_id"]], "role": e["role"]}
            for f in ("component", "note", "analyst"):
                if e[f]:
                    item[f] = e[f]
            evidence.append(item)
        if not apps:
            out.append({**ref, "evidence": evidence})
            continue
        for n, app in enumerate(apps):
            steps: dict[str, Any] = {}
            for f in STEP_FIELDS:
                if f == "cmoc":
                    v = cmoc_keys.get(app["cmoc_id"])
                elif f == "theory":
                    v = theory_keys.get(app["theory_id"])
                else:
                    v = app[f]
                if v is not None:
                    steps[f] = v
            entry = {**ref, "analyst": app["analyst"], "appraisal": steps}
            if n == 0 and evidence:
                entry["evidence"] = evidence
            out.append(entry)
    return {"excerpts": out}


def export_analysis_yaml(project: Project, path: str | os.PathLike | None = None) -> str:
    """Write every appraisal and evidence link as an analysis file; return the YAML text."""
    with project.connect() as conn:
        text = dump_yaml(analysis_document(conn))
    return write_exported_text(text, path)

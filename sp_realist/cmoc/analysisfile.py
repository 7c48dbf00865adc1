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
from ..errors import SpRealistError
from ..store import Project
from .appraisal import STEP_FIELDS, set_appraisal_conn
from .cmocs import link_evidence_conn
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


def import_analysis_conn(conn: Connection, path: str | os.PathLike) -> dict:
    path = Path(path)
    doc = read_yaml(path, "analysis")
    excerpts = _validate(doc, path)
    default_analyst = doc.get("analyst")
    counts = {"excerpts": 0, "appraisals_created": 0, "appraisals_updated": 0, "evidence": 0}
    from ._common import Lookups

    lk = Lookups(conn)
    for i, e in enumerate(excerpts):
        where = f"{path}: excerpt {i + 1}"
        ref = {k: e[k] for k in ("source", "quote", "span", "segment", "section") if k in e}
        excerpt_id = lk.excerpt(ref, where)
        counts["excerpts"] += 1
        analyst = str(e.get("analyst") or default_analyst) if (e.get("analyst") or default_analyst) else None
        if e.get("appraisal"):
            result = set_appraisal_conn(conn, excerpt_id, analyst, where=where, lookups=lk, **e["appraisal"])
            if result["status"] == "created":
                counts["appraisals_created"] += 1
            elif result["status"] == "updated":
                counts["appraisals_updated"] += 1
        for j, ev in enumerate(e.get("evidence") or []):
            link_evidence_conn(conn, str(ev["cmoc"]), excerpt_id, role=ev.get("role") or "supports",
                               component=ev.get("component"), analyst=ev.get("analyst") or analyst,
                               note=ev.get("note"), where=f"{where}, evidence {j + 1}", lookups=lk)
            counts["evidence"] += 1
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
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text

"""Candidate CMOCs: context, mechanism and outcome found together in one unit.

A *unit* is a diary entry (a diary source) or, for other sources, the segment
(speaker turn, paragraph) holding the excerpt.  Signals inside a unit are:

* appraisals whose step 3 interpretation is context, mechanism_resource,
  mechanism_response or outcome (the label is the excerpt's text);
* codings whose code maps to C, M or O, by the project setting ``cmo_codes``
  (``{"context": [code names], "mechanism": [...], "outcome": [...]}``) or by
  the naming convention: a name starting ``C:``/``Context:``, ``M:``/
  ``Mechanism:``, ``O:``/``Outcome:``, or a code under a parent code named
  ``Context``, ``Mechanism`` or ``Outcome`` (the label is the code name).

Each (context, mechanism, outcome) combination seen in a unit is a candidate;
``support`` is the number of units showing it.  Candidates are ranked by
support, then by distinct participants (by :mod:`sp_realist.attribution`: a
turn of an unmapped speaker such as the interviewer counts for no
participant, never for the interviewee).  Nothing enters the programme theory
until the analyst accepts a candidate (:func:`accept_suggestion`, which
creates a *partial* CMOC with the units' excerpts as evidence);
:func:`reject_suggestion` hides it from later suggestions.  Both decisions
are kept as project settings (``suggest_accepted``, ``suggest_rejected``).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..attribution import ParticipantAttributor
from ..coding._common import CodeTree
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..store import Project, now

PREFIXES = {"c": "context", "context": "context", "m": "mechanism", "mechanism": "mechanism",
            "o": "outcome", "outcome": "outcome"}
MAX_PER_UNIT = 50  # cap on combinations per unit (a unit with many signals)


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split()).rstrip(". ")


def candidate_id(context: str, mechanism: str, outcome: str) -> str:
    """A short, stable id for a (context, mechanism, outcome) triple."""
    raw = "\x1f".join(_norm(x) for x in (context, mechanism, outcome))
    return "c" + hashlib.sha1(raw.encode("utf-8")).hexdigest()[:8]


def code_roles(project: Project, conn) -> dict[int, tuple[str, str]]:
    """code id -> (C/M/O category, label) from the ``cmo_codes`` setting or the naming convention."""
    codes = {r.id: (r.name, r.parent_id) for r in conn.execute(select(S.codes.c.id, S.codes.c.name, S.codes.c.parent_id))}
    tree = CodeTree.read(conn)
    out: dict[int, tuple[str, str]] = {}
    setting = project.get_setting("cmo_codes") or {}
    if not isinstance(setting, dict):
        raise SpRealistError("setting cmo_codes: expected {context: [codes], mechanism: [...], outcome: [...]}.")
    for cat, names in setting.items():
        if cat not in ("context", "mechanism", "outcome"):
            raise SpRealistError(f"setting cmo_codes: {cat!r} is not context, mechanism or outcome.")
        for n in names or []:
            try:  # a code is named as anywhere else: a unique name, or a path
                cid = tree.resolve(n)["id"]
            except SpRealistError as exc:
                raise SpRealistError(f"setting cmo_codes: {str(exc)[0].lower()}{str(exc)[1:]}") from None
            out[cid] = (cat, codes[cid][0])
    for cid, (name, parent) in codes.items():
        if cid in out:
            continue
        m = re.match(r"\s*(context|mechanism|outcome|c|m|o)\s*:\s*(.+)$", name, re.IGNORECASE)
        if m:
            out[cid] = (PREFIXES[m.group(1).lower()], m.group(2).strip())
            continue
        p, seen = parent, set()
        while p is not None and p not in seen:
            seen.add(p)
            pname, pparent = codes[p]
            if pname.strip().lower() in ("context", "contexts", "mechanism", "mechanisms", "outcome", "outcomes"):
                out[cid] = (PREFIXES[pname.strip().lower().rstrip("s")], name)
                break
            p = pparent
    return out


def _signals(project: Project, include_assigned: bool = False) -> tuple[list[dict], dict]:
    """Every C/M/O signal with its unit (appraisals already tied to a CMOC only if ``include_assigned``)."""
    with project.connect() as conn:
        sources = {r.id: r for r in conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.kind,
                                                        S.sources.c.text, S.sources.c.participant_id))}
        segs: dict[int, list] = {}
        for r in conn.execute(select(S.segments.c.source_id, S.segments.c.ord, S.segments.c.start, S.segments.c.end,
                                     S.segments.c.participant_id).order_by(S.segments.c.source_id, S.segments.c.start)):
            segs.setdefault(r.source_id, []).append(r)
        roles = code_roles(project, conn)
        codings = conn.execute(select(S.codings.c.id, S.codings.c.code_id, S.codings.c.source_id, S.codings.c.start,
                                      S.codings.c.end)).all() if roles else []
        q = (select(S.appraisals.c.excerpt_id, S.appraisals.c.interpretation, S.excerpts.c.source_id,
                    S.excerpts.c.start, S.excerpts.c.end)
             .select_from(S.appraisals.join(S.excerpts, S.excerpts.c.id == S.appraisals.c.excerpt_id))
             .where(S.appraisals.c.interpretation.in_(["context", "mechanism_resource", "mechanism_response",
                                                       "outcome"]))
             .where((S.appraisals.c.relevance.is_(None)) | (S.appraisals.c.relevance != "not_relevant")))
        if not include_assigned:
            q = q.where(S.appraisals.c.cmoc_id.is_(None))
        apps = conn.execute(q).all()
        who = ParticipantAttributor(conn)  # sp_realist.attribution's rule: no participant in an unmapped turn
    unit_setting = project.get_setting("suggest_unit", "auto")

    def unit_of(sid: int, start: int) -> tuple[str, Any, str | None]:
        src = sources[sid]
        seg = next((s for s in segs.get(sid, ()) if s.start <= start < s.end), None)
        participant = who.participant_code(sid, start)
        if unit_setting == "source" or (unit_setting == "auto" and src.kind == "diary") or seg is None:
            return (f"{src.name}", None, participant)
        return (f"{src.name} #{seg.ord}", seg.ord, participant)

    out = []
    for cid, code_id, sid, start, end in codings:
        if code_id not in roles:
            continue
        cat, label = roles[code_id]
        unit, _ord, participant = unit_of(sid, start)
        out.append({"unit": unit, "source_id": sid, "participant": participant, "category": cat,
                    "component": "mechanism_response" if cat == "mechanism" else cat, "label": label,
                    "span": (sid, start, end), "basis": "code"})
    for eid, interp, sid, start, end in apps:
        unit, _ord, participant = unit_of(sid, start)
        cat = "mechanism" if interp.startswith("mechanism") else interp
        label = " ".join(sources[sid].text[start:end].split())
        out.append({"unit": unit, "source_id": sid, "participant": participant, "category": cat,
                    "component": interp, "label": label, "span": (sid, start, end), "basis": "appraisal"})
    return out, {sid: s.name for sid, s in sources.items()}


def _candidates(project: Project, include_assigned: bool = False) -> dict[str, dict]:
    signals, _names = _signals(project, include_assigned)
    by_unit: dict[str, list[dict]] = {}
    for s in signals:
        by_unit.setdefault(s["unit"], []).append(s)
    cands: dict[str, dict] = {}
    for unit, sigs in by_unit.items():
        groups = {c: [] for c in ("context", "mechanism", "outcome")}
        seen = set()
        for s in sigs:
            k = (s["category"], _norm(s["label"]))
            if k not in seen:
                seen.add(k)
                groups[s["category"]].append(s)
        for c, m, o in itertools.islice(itertools.product(groups["context"], groups["mechanism"], groups["outcome"]),
                                        MAX_PER_UNIT):
            cid = candidate_id(c["label"], m["label"], o["label"])
            cand = cands.setdefault(cid, {"id": cid, "context": c["label"], "mechanism": m["label"],
                                          "mechanism_component": m["component"], "outcome": o["label"],
                                          "units": [], "participants": set(), "sources": set(), "evidence": [],
                                          "basis": set()})
            if unit not in cand["units"]:
                cand["units"].append(unit)
            for s in (c, m, o):
                if s["participant"]:
                    cand["participants"].add(s["participant"])
                cand["sources"].add(s["source_id"])
                cand["basis"].add(s["basis"])
                ev = (s["span"], s["component"])
                if ev not in cand["evidence"]:
                    cand["evidence"].append(ev)
    return cands


def _existing_triples(project: Project) -> set[str]:
    with project.connect() as conn:
        rows = conn.execute(select(S.cmocs.c.context, S.cmocs.c.mechanism_resource, S.cmocs.c.mechanism_response,
                                   S.cmocs.c.outcome)).all()
    out = set()
    for context, resource, response, outcome in rows:
        for mechanism in ({resource or "", response or ""} - {""}) or {""}:
            out.add(candidate_id(context or "", mechanism, outcome or ""))
    return out


def suggest_cmocs(project: Project, min_support: int = 1, include_decided: bool = False,
                  include_assigned: bool = False) -> pd.DataFrame:
    """Candidate CMOCs ranked by support (units), then participants.

    Columns: id, context, mechanism, outcome, support, participants, sources,
    basis (code / appraisal), units, status (open / accepted / rejected).
    Candidates that match an existing CMOC are left out, and so are appraisals
    already tied to a CMOC (step 4) unless ``include_assigned``.
    """
    cands = _candidates(project, include_assigned)
    accepted = project.get_setting("suggest_accepted") or {}
    rejected = {r["id"] for r in project.get_setting("suggest_rejected") or []}
    existing = _existing_triples(project)
    rows = []
    for c in cands.values():
        status = "accepted" if c["id"] in accepted else ("rejected" if c["id"] in rejected else "open")
        if not include_decided and (status != "open" or c["id"] in existing):
            continue
        if len(c["units"]) < min_support:
            continue
        rows.append({"id": c["id"], "context": c["context"], "mechanism": c["mechanism"], "outcome": c["outcome"],
                     "support": len(c["units"]), "participants": len(c["participants"]),
                     "sources": len(c["sources"]), "basis": ", ".join(sorted(c["basis"])),
                     "units": "; ".join(c["units"]), "status": status})
    rows.sort(key=lambda r: (-r["support"], -r["participants"], -r["sources"], r["context"].casefold(),
                             r["mechanism"].casefold(), r["outcome"].casefold()))
    return pd.DataFrame(rows, columns=["id", "context", "mechanism", "outcome", "support", "participants", "sources",
                                       "basis", "units", "status"])


def accept_suggestion(project: Project, candidate: str, key: str, *, theory: str | None = None,
                      actor: str | None = None, reason: str | None = None) -> int:
    """Create a partial CMOC ``key`` from a candidate, with its excerpts as supporting evidence.

    The CMOC joins ``theory`` only when one is named.  Returns the CMOC id.
    """
    cands = _candidates(project, include_assigned=True)
    if candidate not in cands:
        hint = did_you_mean(candidate, cands, "list them with 'sp-realist suggest'.")
        raise NotFoundError(f"No candidate CMOC {candidate!r}; {hint}")
    c = cands[candidate]
    accepted = dict(project.get_setting("suggest_accepted") or {})
    if candidate in accepted:
        raise SpRealistError(f"Candidate {candidate} was already accepted as {accepted[candidate]['cmoc']}.")
    from ..sources import get_or_create_excerpt
    from .cmocs import add_cmoc_conn, link_evidence_conn
    from .theories import add_member_conn

    mech_field = c["mechanism_component"] if c["mechanism_component"] in ("mechanism_resource",
                                                                            "mechanism_response") else "mechanism_response"
    with project.begin() as conn:
        cid = add_cmoc_conn(conn, key, actor=actor, status="partial", context=c["context"],
                            outcome=c["outcome"], memo=f"Accepted from candidate {candidate} "
                            f"(support {len(c['units'])}: {'; '.join(c['units'])})", **{mech_field: c["mechanism"]})
        excerpt_ids = []
        for (sid, start, end), component in c["evidence"]:
            eid = get_or_create_excerpt(conn, sid, start, end)
            excerpt_ids.append(eid)
            comp = "mechanism_response" if component == "mechanism" else component
            link_evidence_conn(conn, key, eid, role="supports", component=comp, analyst=actor)
        if theory:
            add_member_conn(conn, theory, key, actor=actor, reason=reason or f"Accepted candidate {candidate}",
                            evidence=excerpt_ids)
        accepted[candidate] = {"cmoc": key, "at": now(), "by": actor}
        project.set_setting("suggest_accepted", accepted, conn=conn)
        project.log(conn, "suggest.accept", key, actor=actor, candidate=candidate, theory=theory)
    return cid


def reject_suggestion(project: Project, candidate: str, *, reason: str | None = None,
                      actor: str | None = None) -> None:
    """Hide a candidate from later suggestions (recorded with the reason)."""
    cands = _candidates(project, include_assigned=True)
    if candidate not in cands:
        hint = did_you_mean(candidate, cands, "list them with 'sp-realist suggest'.")
        raise NotFoundError(f"No candidate CMOC {candidate!r}; {hint}")
    rejected = list(project.get_setting("suggest_rejected") or [])
    if any(r["id"] == candidate for r in rejected):
        return
    c = cands[candidate]
    rejected.append({"id": candidate, "context": c["context"], "mechanism": c["mechanism"], "outcome": c["outcome"],
                     "reason": reason, "at": now(), "by": actor})
    with project.begin() as conn:
        project.set_setting("suggest_rejected", rejected, conn=conn)
        project.log(conn, "suggest.reject", candidate, actor=actor, reason=reason)

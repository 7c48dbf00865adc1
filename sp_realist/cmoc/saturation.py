"""Saturation: how much evidence each CMOC and theory has, and when it stopped growing.

Counts come from CMOC evidence links (``cmoc link`` / analysis files):

* ``supporting`` / ``refuting``: distinct excerpts linked with that role;
* ``participants``: distinct participants behind the supporting excerpts (by
  :mod:`sp_realist.attribution`: the mapped speaker of the segment; nobody in
  a turn of an unmapped speaker such as the interviewer; else the source's
  participant);
* ``sources`` and ``sites`` (the source's ``site`` attribute, else the
  participant's site) of the supporting excerpts.

The rule is judged on each CMOC's *own* evidence (:func:`saturation_verdicts`).
A CMOC is saturated when, under the project setting ``saturation_rule``
(defaults in :data:`DEFAULT_RULE`)::

    min_supporting: 3           # at least 3 supporting excerpts
    min_participants: 2         # from at least 2 participants
    min_sources: 1
    min_sites: 1
    no_refutation_in_last: 3    # no refuting excerpt among the CMOC's last 3 evidence sources (0 = never refuted)
    order: ingest               # ingest | date: the order of sources for "last" and for the curve

and it is not ``partial``, and its context, its mechanism (resource or
response) and its outcome each have at least one supporting excerpt (the
evidence link's ``component``).  Every verdict carries its reason.  A step-6
note (``saturation_note``) that claims saturation ("nothing new",
"saturated" ...) on a CMOC the rule does not find saturated is *flagged*.  A
theory is saturated when all its CMOCs are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project

DEFAULT_RULE: dict[str, Any] = {"min_supporting": 3, "min_participants": 2, "min_sources": 1, "min_sites": 1,
                                "no_refutation_in_last": 3, "order": "ingest"}
SETTING = "saturation_rule"

#: The three parts a CMOC needs supporting evidence for, and the evidence components that count for each.
COMPONENTS: dict[str, tuple[str, ...]] = {"context": ("context",),
                                          "mechanism": ("mechanism_resource", "mechanism_response"),
                                          "outcome": ("outcome",)}

#: A step-6 note claims saturation when it says so ("saturated", "saturation reached") or says the
#: later data brought nothing new ("nothing new", "no new ...", "added nothing"), unless it denies it.
CLAIM = re.compile(r"\bsaturat(?:ed|ion\s+(?:is\s+|was\s+|has\s+been\s+)?(?:reached|achieved))\b"
                   r"|\bnothing\s+(?:new|further|more)\b|\bno\s+(?:new|further)\b|\badded\s+nothing\b", re.I)
DENIAL = re.compile(r"\bnot\s+(?:yet\s+|been\s+)?(?:saturated|reached\s+saturation)\b|\bunsaturated\b"
                    r"|\bsaturation\s+(?:is\s+|was\s+|has\s+)?(?:not|never)\b|\bno\s+saturation\b", re.I)

COLUMNS = ["level", "theory", "cmoc", "supporting", "refuting", "participants", "sources", "sites", "saturated",
           "reason", "flag"]


def validate_rule(rule: dict[str, Any], where: str = "saturation rule") -> dict[str, Any]:
    out = dict(DEFAULT_RULE)
    for k, v in (rule or {}).items():
        if k not in DEFAULT_RULE:
            raise SpRealistError(f"{where}: unknown setting {k!r}; use {', '.join(DEFAULT_RULE)}.")
        if k == "order":
            if v not in ("ingest", "date"):
                raise SpRealistError(f"{where}: order must be 'ingest' or 'date', not {v!r}.")
            out[k] = v
            continue
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise SpRealistError(f"{where}: {k} must be a whole number, not {v!r}.") from None
        if n < 0:
            raise SpRealistError(f"{where}: {k} cannot be negative.")
        out[k] = n
    return out


def get_saturation_rule(project: Project) -> dict[str, Any]:
    """The project's saturation rule (defaults filled in)."""
    return validate_rule(project.get_setting(SETTING) or {}, f"setting {SETTING}")


def set_saturation_rule(project: Project, actor: str | None = None, **changes: Any) -> dict[str, Any]:
    """Change some thresholds of the project's saturation rule; return the full rule."""
    rule = validate_rule({**get_saturation_rule(project), **changes})
    with project.begin() as conn:
        project.set_setting(SETTING, rule, conn=conn)
        project.log(conn, "saturation.rule", SETTING, actor=actor, **rule)
    return rule


def source_order(conn: Connection, order: str = "ingest") -> list[dict]:
    """Sources in ingest order, or by date (undated last, ties by ingest order)."""
    rows = [dict(r) for r in conn.execute(
        select(S.sources.c.id, S.sources.c.name, S.sources.c.date, S.sources.c.ingest_order, S.sources.c.kind)
        .order_by(S.sources.c.ingest_order)).mappings()]
    if order == "date":
        rows.sort(key=lambda r: (r["date"] is None, r["date"] or "", r["ingest_order"]))
    return rows


FACT_COLUMNS = ["cmoc_id", "cmoc", "role", "component", "excerpt_id", "source_id", "source", "participant", "site"]


def evidence_facts(conn: Connection) -> pd.DataFrame:
    """One row per evidence link with the facts saturation needs.

    Who said each excerpt (sp_realist.attribution's rule: a mapped speaker, nobody in an unmapped
    speaker's turn, else the source's participant) is joined in the query, set-wise
    (:mod:`sp_realist.coding.sqlquery`); so is the site (the source's, else the speaker's, else the source
    participant's)."""
    rows = _evidence_rows(conn)
    if not rows:
        return pd.DataFrame(columns=FACT_COLUMNS)
    return pd.DataFrame(rows, columns=FACT_COLUMNS)


def _evidence_rows(conn: Connection) -> list[tuple]:
    """The rows of :func:`evidence_facts` as tuples (columns :data:`FACT_COLUMNS`).

    The source's participant (a column stored after the source's text, so read from the text's overflow
    pages in SQLite) is read only where the answer needs it: outside a mapped speaker's turn, or for a
    site when neither the source nor the speaker has one."""
    from ..coding._common import fetch_rows
    from ..coding.sqlquery import attributed_participant, segment_holding

    ev, ex = S.cmoc_evidence, S.excerpts
    inner = (select(ev.c.id, ev.c.cmoc_id, S.cmocs.c.key.label("cmoc"), ev.c.role, ev.c.component, ev.c.excerpt_id,
                    ex.c.source_id, ex.c.start, segment_holding(ex.c.source_id, ex.c.start).label("seg_id"))
             .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id).join(S.cmocs, S.cmocs.c.id == ev.c.cmoc_id))
             .subquery("b"))
    src, seg = S.sources.alias("src"), S.segments.alias("seg")
    att = (select(inner, src.c.name.label("source"), src.c.participant_id.label("source_participant"),
                  attributed_participant(seg, src, inner.c.start < seg.c.end).label("participant_id"))
           .select_from(inner.join(src, src.c.id == inner.c.source_id).outerjoin(seg, seg.c.id == inner.c.seg_id))
           .subquery("a"))
    p, sp, site = S.participants.alias("p"), S.participants.alias("sp"), S.source_attributes.alias("site")
    source_site = select(sp.c.site).where(sp.c.id == att.c.source_participant).scalar_subquery()
    q = (select(att.c.cmoc_id, att.c.cmoc, att.c.role, att.c.component, att.c.excerpt_id, att.c.source_id,
                att.c.source, p.c.code.label("participant"),
                func.coalesce(func.nullif(site.c.value, ""), func.nullif(p.c.site, ""), source_site).label("site"))
         .select_from(att.outerjoin(p, p.c.id == att.c.participant_id)
                      .outerjoin(site, (site.c.source_id == att.c.source_id) & (site.c.name == "site")))
         .order_by(att.c.id))
    return fetch_rows(conn, q)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value)  # None / NaN: nobody, no site


def _counts(links: list[dict]) -> dict[str, int]:
    """Counts over evidence links (rows of :func:`evidence_facts`)."""
    sup = [r for r in links if r["role"] == "supports"]
    return {"supporting": len({r["excerpt_id"] for r in sup}),
            "refuting": len({r["excerpt_id"] for r in links if r["role"] == "refutes"}),
            "participants": len({r["participant"] for r in sup if _present(r["participant"])}),
            "sources": len({r["source_id"] for r in sup}),
            "sites": len({r["site"] for r in sup if _present(r["site"])})}


def claims_saturation(note: str | None) -> bool:
    """True when a step-6 note says the CMOC is saturated or that later data added nothing new."""
    return bool(note) and bool(CLAIM.search(note)) and not DENIAL.search(note)


def _join(items: list[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


@dataclass
class SaturationNote:
    """A step-6 note on a CMOC (or theory) and whether it claims saturation."""

    excerpt_id: int
    source: str
    analyst: str
    text: str
    claims_saturation: bool


@dataclass
class SaturationVerdict:
    """The saturation verdict of one CMOC (``level='cmoc'``) or theory (``level='theory'``).

    ``reason`` says why, in words ("partial; no outcome evidence", "2 of 3
    participants", "refuted in S3 DK3 2019-11-02, within the last 3 evidence
    sources", "meets the rule"); ``flag`` is non-empty when a step-6 note claims
    saturation the rule does not find.  For a CMOC, ``components`` counts the
    supporting excerpts per context / mechanism / outcome, ``evidence_sources``
    are its evidence sources in the rule's order (the window is the last K),
    ``refuted_in`` the sources of its refuting excerpts.  For a theory, ``cmoc``
    reads "2/3 saturated" and ``unsaturated`` lists the CMOCs that are not.
    """

    level: str
    theory: str | None
    cmoc: str
    supporting: int
    refuting: int
    participants: int
    sources: int
    sites: int
    saturated: bool
    reason: str
    flag: str = ""
    status: str | None = None
    components: dict[str, int] = field(default_factory=dict)
    evidence_sources: list[str] = field(default_factory=list)
    refuted_in: list[str] = field(default_factory=list)
    unsaturated: list[str] = field(default_factory=list)
    notes: list[SaturationNote] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The verdict as a row of :func:`saturation_table`."""
        return {k: getattr(self, k) for k in COLUMNS}


def _judge_cmoc(status: str | None, links: list[dict], position: dict[int, int], rule: dict[str, Any]) \
        -> tuple[bool, str, dict[str, Any]]:
    """The verdict on one CMOC's evidence links: (saturated, reason, facts)."""
    counts = _counts(links)
    components = {part: len({r["excerpt_id"] for r in links if r["role"] == "supports" and r["component"] in kinds})
                  for part, kinds in COMPONENTS.items()}
    names = {r["source_id"]: r["source"] for r in links}
    window_ids = sorted(names, key=lambda sid: position.get(sid, len(position)))
    refuting = {r["source_id"] for r in links if r["role"] == "refutes"}
    refuting_ids = [sid for sid in window_ids if sid in refuting]
    unmet: list[str] = []
    if status == "partial":
        unmet.append("partial")
    if counts["supporting"] == 0:
        unmet.append("no supporting evidence")
    else:
        missing = [part for part, n in components.items() if n == 0]
        if missing:
            unmet.append(f"no {_join(missing, 'or')} evidence")
        for key, label in (("supporting", "supporting excerpts"), ("participants", "participants"),
                           ("sources", "sources"), ("sites", "sites")):
            need = rule[f"min_{key}"]
            if counts[key] < need:
                unmet.append(f"{counts[key]} of {need} {label}")
    k = rule["no_refutation_in_last"]
    note = ""
    if refuting_ids:
        where = _join([names[sid] for sid in refuting_ids])
        if k == 0:
            unmet.append(f"refuted in {where}")
        else:
            window = set(window_ids[-k:])
            inside = [sid for sid in refuting_ids if sid in window]
            outside = [sid for sid in refuting_ids if sid not in window]
            if inside:
                unmet.append(f"refuted in {_join([names[s] for s in inside])}, within the last {k} evidence sources")
            if outside:
                note = f"refuted in {_join([names[s] for s in outside])}, before the last {k} evidence sources"
    saturated = not unmet
    reason = "; ".join(unmet) if unmet else ("meets the rule" + (f" ({note})" if note else ""))
    if unmet and note and not any(u.startswith("refuted in") for u in unmet):
        reason += f"; {note}"
    facts = {"components": components, "evidence_sources": [names[s] for s in window_ids],
             "refuted_in": [names[s] for s in refuting_ids], **counts}
    return saturated, reason, facts


def _notes(conn: Connection) -> tuple[dict[int, list[SaturationNote]], dict[int, list[SaturationNote]]]:
    """Step-6 notes by CMOC id, and notes on theories (appraisals with a theory but no CMOC) by theory id."""
    a = S.appraisals
    rows = conn.execute(
        select(a.c.excerpt_id, a.c.analyst, a.c.cmoc_id, a.c.theory_id, a.c.saturation_note, S.sources.c.name)
        .select_from(a.join(S.excerpts, S.excerpts.c.id == a.c.excerpt_id)
                     .join(S.sources, S.sources.c.id == S.excerpts.c.source_id))
        .where(a.c.saturation_note.is_not(None)).order_by(S.sources.c.ingest_order, S.excerpts.c.start, a.c.id)
    ).mappings()
    by_cmoc: dict[int, list[SaturationNote]] = {}
    by_theory: dict[int, list[SaturationNote]] = {}
    for r in rows:
        if not (r["saturation_note"] or "").strip():
            continue
        note = SaturationNote(excerpt_id=r["excerpt_id"], source=r["name"], analyst=r["analyst"],
                              text=r["saturation_note"].strip(), claims_saturation=claims_saturation(r["saturation_note"]))
        if r["cmoc_id"] is not None:
            by_cmoc.setdefault(r["cmoc_id"], []).append(note)
        elif r["theory_id"] is not None:
            by_theory.setdefault(r["theory_id"], []).append(note)
    return by_cmoc, by_theory


def _flag(what: str, notes: list[SaturationNote], saturated: bool, reason: str) -> str:
    claims = [n for n in notes if n.claims_saturation]
    if saturated or not claims:
        return ""
    where = _join([f"{n.analyst} on {n.source} (excerpt {n.excerpt_id})" for n in claims])
    return f"{what}: the step-6 note by {where} claims saturation, but it is not saturated ({reason})"


def saturation_verdicts(project: Project, theory: str | None = None,
                        rule: dict[str, Any] | None = None) -> list[SaturationVerdict]:
    """The verdict on every CMOC (of ``theory``, or all), then on every theory, under the project's rule.

    ``rule`` overrides some settings of the project's rule for this call.
    CMOC verdicts come first, in CMOC order; theory verdicts follow, in
    theory order.
    """
    rule = validate_rule({**get_saturation_rule(project), **(rule or {})})
    from .cmocs import _memberships, cmoc_rows
    from .theories import theory_rows

    with project.connect() as conn:
        if theory:
            from ._common import resolve_theory

            resolve_theory(conn, theory)
        cmocs = cmoc_rows(conn, theory)
        members = _memberships(conn)
        links = [dict(zip(FACT_COLUMNS, r)) for r in _evidence_rows(conn)]
        position = {s["id"]: i for i, s in enumerate(source_order(conn, rule["order"]))}
        theories = [t for t in theory_rows(conn) if theory is None or t["key"] == theory]
        notes, theory_notes = _notes(conn)
    out: list[SaturationVerdict] = []
    by_key: dict[str, SaturationVerdict] = {}
    by_cmoc: dict[int, list[dict]] = {}
    for r in links:
        by_cmoc.setdefault(r["cmoc_id"], []).append(r)
    for c in cmocs:
        saturated, reason, f = _judge_cmoc(c.get("status"), by_cmoc.get(c["id"], []), position, rule)
        ts = members.get(c["id"], [])
        own = notes.get(c["id"], [])
        v = SaturationVerdict(level="cmoc", theory=theory or (ts[0] if ts else None), cmoc=c["key"],
                              saturated=saturated, reason=reason, flag=_flag(c["key"], own, saturated, reason),
                              status=c.get("status"), notes=own, **f)
        by_key[c["key"]] = v
        out.append(v)
    for t in theories:
        keys = [c["key"] for c in cmocs if t["key"] in members.get(c["id"], [])]
        members_of = set(keys)
        counts = _counts([r for r in links if r["cmoc"] in members_of])
        pending = [k for k in keys if not by_key[k].saturated]
        saturated = bool(keys) and not pending
        if not keys:
            reason = "no CMOCs"
        elif not pending:
            reason = "every CMOC saturated"
        else:
            reason = "not saturated: " + "; ".join(f"{k} ({by_key[k].reason})" for k in pending)
        own = theory_notes.get(t["id"], [])
        out.append(SaturationVerdict(level="theory", theory=t["key"], cmoc=f"{len(keys) - len(pending)}/{len(keys)} saturated",
                                     saturated=saturated, reason=reason,
                                     flag=_flag(t["key"], own, saturated, reason), unsaturated=pending, notes=own,
                                     **counts))
    return out


def saturation_table(project: Project, theory: str | None = None, level: str = "both",
                     rule: dict[str, Any] | None = None) -> pd.DataFrame:
    """Evidence counts, the saturation verdict and its reason per CMOC and per theory.

    ``level``: ``cmoc``, ``theory`` or ``both`` (theory rows after each
    theory's CMOCs).  ``rule`` overrides the project's saturation rule for
    this call.  Columns: level, theory, cmoc, supporting, refuting,
    participants, sources, sites, saturated, reason, flag (see
    :func:`saturation_verdicts`).
    """
    if level not in ("cmoc", "theory", "both"):
        raise SpRealistError(f"saturation: level {level!r} is not cmoc, theory or both.")
    verdicts = saturation_verdicts(project, theory, rule)
    cmoc_rows = [v.row() for v in verdicts if v.level == "cmoc"]
    theory_rows = [v.row() for v in verdicts if v.level == "theory"]
    if level == "cmoc":
        rows = cmoc_rows
    elif level == "theory":
        rows = theory_rows
    else:
        rows = []
        for t in theory_rows:
            rows += [r for r in cmoc_rows if r["theory"] == t["theory"]] + [t]
        rows += [r for r in cmoc_rows if r["theory"] not in {t["theory"] for t in theory_rows}]
    return pd.DataFrame(rows, columns=COLUMNS)


def saturation_curve(project: Project, order: str | None = None) -> pd.DataFrame:
    """New CMOCs and new evidence per source, in ingest (or date) order.

    A CMOC is *new* at the first source that holds evidence for it.  Columns:
    position, source, date, kind, new_cmocs, cumulative_cmocs, new_evidence,
    supporting, refuting, cumulative_evidence, cmocs (keys new here).
    """
    order = order or get_saturation_rule(project)["order"]
    if order not in ("ingest", "date"):
        raise SpRealistError(f"saturation curve: order must be ingest or date, not {order!r}.")
    with project.connect() as conn:
        sources = source_order(conn, order)
        facts = evidence_facts(conn)
    seen: set[str] = set()
    total_c = total_e = 0
    rows = []
    for i, s in enumerate(sources, 1):
        df = facts[facts["source_id"] == s["id"]]
        new = sorted(set(df["cmoc"]) - seen, key=lambda k: list(df["cmoc"]).index(k))
        seen |= set(new)
        total_c += len(new)
        total_e += len(df)
        rows.append({"position": i, "source": s["name"], "date": s["date"], "kind": s["kind"],
                     "new_cmocs": len(new), "cumulative_cmocs": total_c, "new_evidence": len(df),
                     "supporting": int((df["role"] == "supports").sum()),
                     "refuting": int((df["role"] == "refutes").sum()), "cumulative_evidence": total_e,
                     "cmocs": ", ".join(new)})
    return pd.DataFrame(rows, columns=["position", "source", "date", "kind", "new_cmocs", "cumulative_cmocs",
                                       "new_evidence", "supporting", "refuting", "cumulative_evidence", "cmocs"])


def plot_saturation_curve(project: Project, path: str, order: str | None = None) -> str:
    """Draw the cumulative CMOC and evidence curves to a PNG or SVG (by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix not in ("png", "svg", "pdf"):
        raise SpRealistError(f"{path}: give a .png, .svg or .pdf file name.")
    df = saturation_curve(project, order)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(df["position"], df["cumulative_cmocs"], where="post", label="CMOCs with evidence", color="#1f77b4")
    ax2 = ax.twinx()
    ax2.step(df["position"], df["cumulative_evidence"], where="post", label="evidence links", color="#ff7f0e")
    ax.set_xlabel(f"sources ({order or 'project'} order)")
    ax.set_ylabel("CMOCs with evidence", color="#1f77b4")
    ax2.set_ylabel("evidence links", color="#ff7f0e")
    ax.set_title("Saturation curve")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return str(path)

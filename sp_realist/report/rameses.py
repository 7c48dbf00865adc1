"""The RAMESES II reporting checklist for realist evaluations, computed from a project.

Wong G, Westhorp G, Manzano A, Greenhalgh J, Jagosh J, Greenhalgh T. RAMESES II reporting standards for
realist evaluations. BMC Medicine 2016;14:96 (doi:10.1186/s12916-016-0643-1) lists 20 items a report of a
realist evaluation should cover.  :func:`rameses_checklist` says, for each item, what the project holds for
it, where the report shows it, and one status:

* ``filled from project``: the project holds what the item asks for (data it records, or the author's text
  stored as a narrative section, :mod:`sp_realist.report.narrative`), and the report shows it;
* ``needs author text``: the project holds material for the item, but the item needs something only the
  authors can supply (a narrative section, a title that names the design, a linked piece of evidence);
  ``holds`` says what is there and ``action`` what to add;
* ``missing``: the project holds nothing for the item yet.

``sp-realist rameses`` prints it (table, JSON, Markdown, Word); every report carries it as an appendix.
The item guidance is written in our own words; read the paper for the full standard.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from .. import schema as S
from ..store import Project
from .narrative import SECTIONS_BY_NAME, get_narrative

FILLED = "filled from project"
NEEDS_TEXT = "needs author text"
MISSING = "missing"
STATUSES = (FILLED, NEEDS_TEXT, MISSING)

CITATION = ("Wong G, Westhorp G, Manzano A, Greenhalgh J, Jagosh J, Greenhalgh T. RAMESES II reporting standards "
            "for realist evaluations. BMC Medicine 2016;14:96.")

#: (number, report part, item title, guidance in our words, where our reports show it)
ITEMS: tuple[tuple[int, str, str, str, str], ...] = (
    (1, "Title", "Title", "Say in the title that the document reports a realist evaluation.", "Title page"),
    (2, "Summary or abstract", "Summary or abstract",
     "Summarise the programme and its setting, the purpose and questions, the evaluation strategy, the data "
     "and how they were analysed, and the main findings and conclusions; make clear that programme theory was "
     "developed or refined realistically.", "Summary"),
    (3, "Introduction", "Rationale for evaluation",
     "Say why the evaluation was done and how that purpose shaped its focus and design.",
     "Introduction > Rationale for the evaluation"),
    (4, "Introduction", "Programme theory",
     "Set out the initial programme theory (or theories) that the programme is thought to rest on, and how it "
     "was refined.", "Realist findings (figure and one section per theory); the appraisal and saturation appendix"),
    (5, "Introduction", "Evaluation questions, objectives and focus",
     "State the evaluation questions and objectives, and whether and how the programme theory set the scope "
     "and focus.", "Realist findings (questions of each theory); Triangulation"),
    (6, "Introduction", "Ethical approval",
     "Say whether ethical approval was needed and obtained, from whom; if it was not needed, explain why.",
     "Methods > Ethical approval"),
    (7, "Methods", "Rationale for using realist evaluation",
     "Explain why a realist approach was chosen and how, if at all, it was adapted.",
     "Introduction > Why a realist evaluation; Methods (analysis approach)"),
    (8, "Methods", "Environment surrounding the evaluation",
     "Describe the setting in which the programme ran and the evaluation took place.",
     "Introduction > Environment surrounding the evaluation"),
    (9, "Methods", "Describe the programme evaluated",
     "Describe the programme: what it is, who delivers it to whom, and any changes over time.",
     "Introduction > The programme evaluated"),
    (10, "Methods", "Describe and justify the evaluation design",
     "Describe the design and why it suits the questions, including changes made during the evaluation.",
     "Methods > Evaluation design"),
    (11, "Methods", "Data collection methods",
     "Describe the data collected (kinds, places, periods) and how and why they were gathered.",
     "Methods (Sources by kind and site; Diary entries per site)"),
    (12, "Methods", "Recruitment process and sampling strategy",
     "Explain how participants were recruited and sampled, and why.",
     "Methods > Recruitment and sampling; Methods (Participants by role)"),
    (13, "Methods", "Data analysis",
     "Describe how the data were analysed to develop and test the programme theory.",
     "Methods (Analysis approach: the six steps); the appraisal and saturation appendix"),
    (14, "Results", "Details of participants",
     "Report who took part (roles, sites, numbers) to help readers judge whose views the findings rest on.",
     "Methods (Participants by role)"),
    (15, "Results", "Main findings",
     "Present the findings as context-mechanism-outcome configurations and refined programme theory, with "
     "the evidence behind them.", "Thematic findings; Realist findings; the appraisal and saturation appendix"),
    (16, "Discussion", "Summary of findings",
     "Summarise the main findings in relation to the evaluation questions.",
     "Summary of findings; Discussion > Summary of findings; Triangulation"),
    (17, "Discussion", "Strengths, limitations and future research directions",
     "Discuss the strengths and limitations of the evaluation and what further research should do.",
     "Discussion > Strengths, limitations and future research"),
    (18, "Discussion", "Comparison with existing literature",
     "Compare the findings with existing studies and theory.", "Discussion > Comparison with existing literature"),
    (19, "Discussion", "Conclusion and recommendations",
     "State the conclusions and give recommendations for policy, practice or further programmes.",
     "Discussion > Conclusion; Discussion > Recommendations"),
    (20, "Discussion", "Funding and conflict of interest",
     "Name the funders and declare any conflict of interest.", "Discussion > Funding and conflicts of interest"),
)
ITEM_COLUMNS = ["item", "part", "title", "status", "holds", "action", "report_section", "narrative", "guidance"]


@dataclass
class RamesesItem:
    """One checklist item as computed for a project."""

    number: int
    part: str
    title: str
    guidance: str
    status: str  # FILLED | NEEDS_TEXT | MISSING
    holds: str  # what the project holds for it ("" when nothing)
    action: str  # what to add ("" when filled)
    report_section: str
    narrative: list[str] = field(default_factory=list)  # the narrative sections that serve it


@dataclass
class RamesesChecklist:
    """The 20 items of RAMESES II for one project."""

    items: list[RamesesItem]
    citation: str = CITATION

    def frame(self) -> pd.DataFrame:
        rows = [{"item": i.number, "part": i.part, "title": i.title, "status": i.status, "holds": i.holds,
                 "action": i.action, "report_section": i.report_section, "narrative": ", ".join(i.narrative),
                 "guidance": i.guidance} for i in self.items]
        return pd.DataFrame(rows, columns=ITEM_COLUMNS)

    def counts(self) -> dict[str, int]:
        c = Counter(i.status for i in self.items)
        return {s: c.get(s, 0) for s in STATUSES}

    def summary(self) -> str:
        """One sentence: how many items are filled, need author text, are missing."""
        return _summary(self.counts())

    def status(self, number: int) -> str:
        return next(i.status for i in self.items if i.number == number)

    def to_dict(self) -> dict:
        return {"standard": "RAMESES II", "citation": self.citation, "counts": self.counts(),
                "items": [asdict(i) for i in self.items]}


# --------------------------------------------------------------------------
# What the project holds
# --------------------------------------------------------------------------
def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _date_span(dates: list[str]) -> str:
    dates = sorted(d for d in dates if d)
    if not dates:
        return ""
    return dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"


def _tally(counter: Counter, order: tuple[str, ...] = ()) -> str:
    names = [n for n in order if counter.get(n)] + sorted(set(counter) - set(order))
    return ", ".join(f"{str(n).replace('_', ' ')} {counter[n]}" for n in names)


class _Facts:
    """Everything the checklist reads from the project, in one connection."""

    def __init__(self, project: Project, title: str | None, subtitle: str | None, questions: dict | None):
        report = project.get_setting("report") or {}
        build = project.get_setting("build") or {}
        report = report if isinstance(report, dict) else {}
        build = build if isinstance(build, dict) else {}
        self.title = title or report.get("title") or build.get("title") or ""
        self.subtitle = subtitle if subtitle is not None else (report.get("subtitle") or "")
        q = questions if questions else project.get_setting("questions") or {}
        self.questions = {str(k): (v.get("text", "") if isinstance(v, dict) else str(v or ""))
                          for k, v in (q.items() if isinstance(q, dict) else [])}
        self.narrative = get_narrative(project)
        with project.connect() as conn:
            self._read(conn)
        self.saturated = self._saturated(project)

    def _read(self, conn) -> None:
        src, pa, sa = S.sources, S.participants, S.source_attributes
        self.participants = [dict(r) for r in conn.execute(
            select(pa.c.id, pa.c.code, pa.c.role, pa.c.site).order_by(pa.c.code)).mappings()]
        site_of_participant = {p["id"]: p["site"] for p in self.participants}
        site_attr = dict(conn.execute(select(sa.c.source_id, sa.c.value).where(sa.c.name == "site")).all())
        self.sources = []
        for r in conn.execute(select(src.c.id, src.c.kind, src.c.date, src.c.participant_id)
                              .order_by(src.c.ingest_order)).mappings():
            site = site_attr.get(r["id"]) or site_of_participant.get(r["participant_id"])
            self.sources.append({"id": r["id"], "kind": r["kind"], "date": r["date"], "site": site})
        self.codes = conn.execute(select(func.count()).select_from(S.codes)).scalar_one()
        self.codings = conn.execute(select(func.count()).select_from(S.codings)).scalar_one()
        self.themes = conn.execute(select(func.count()).select_from(S.themes)).scalar_one()
        # summary-of-findings tables (sp_realist.cmoc.findings): questions and the findings written for them
        self.finding_questions = conn.execute(select(func.count()).select_from(S.finding_questions)).scalar_one()
        self.findings = conn.execute(select(func.count()).select_from(S.findings)).scalar_one()
        th = S.theories
        self.theories = [dict(r) for r in conn.execute(
            select(th.c.id, th.c.key, th.c.title, th.c.description, th.c.questions).order_by(th.c.ord, th.c.id))
            .mappings()]
        self.history = [dict(r) for r in conn.execute(
            select(S.theory_history.c.theory_id, S.theory_history.c.at)).mappings()]
        cm = S.cmocs
        self.cmocs = [dict(r) for r in conn.execute(select(cm.c.id, cm.c.key, cm.c.status)
                                                    .order_by(cm.c.ord, cm.c.id)).mappings()]
        self.cmoc_theories = {cid for (cid,) in conn.execute(select(S.theory_cmocs.c.cmoc_id))}
        self.evidence = [dict(r) for r in conn.execute(
            select(S.cmoc_evidence.c.cmoc_id, S.cmoc_evidence.c.excerpt_id, S.cmoc_evidence.c.role)).mappings()]
        a = S.appraisals
        self.appraisals = [dict(r) for r in conn.execute(
            select(a.c.relevance, a.c.trust, a.c.interpretation, a.c.cmoc_judgement, a.c.theory_change,
                   a.c.saturation_note, a.c.analyst)).mappings()]
        self.anonymised = conn.execute(select(func.count()).select_from(S.anonymisation_runs)
                                       .where(S.anonymisation_runs.c.direction == "apply")).scalar_one()

    def _saturated(self, project: Project) -> int | None:
        """CMOCs saturated under the project's rule (``sp-realist saturation``); None without CMOCs."""
        if not self.cmocs:
            return None
        from . import integrations

        verdicts = integrations.saturation(project)
        return sum(1 for v in verdicts.values() if v.saturated)

    @property
    def has_data(self) -> bool:
        return bool(self.sources or self.participants or self.theories or self.cmocs or self.codes)

    def text(self, name: str) -> str | None:
        return self.narrative.get(name)

    # -- descriptions --------------------------------------------------------
    def sources_by_kind(self) -> str:
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for s in self.sources:
            by_kind[s["kind"]].append(s)
        parts = []
        for kind in sorted(by_kind):
            items = by_kind[kind]
            sites = sorted({s["site"] for s in items if s["site"]})
            detail = []
            if sites:
                detail.append(("site " if len(sites) == 1 else "sites ") + ", ".join(sites))
            span = _date_span([s["date"] for s in items])
            if span:
                detail.append(span)
            name = kind.replace("_", " ")
            parts.append(_n(len(items), name, {"diary": "diaries", "field notes": "field notes"}.get(name))
                         + (f" ({'; '.join(detail)})" if detail else ""))
        return "; ".join(parts)

    def participants_by_role(self) -> str:
        by_role: dict[str, list[dict]] = defaultdict(list)
        for p in self.participants:
            by_role[p["role"] or "role not recorded"].append(p)
        parts = []
        for role in sorted(by_role, key=lambda r: (-len(by_role[r]), r)):
            sites = sorted({p["site"] for p in by_role[role] if p["site"]})
            parts.append(f"{role} {len(by_role[role])}" + (f" ({', '.join(sites)})" if sites else ""))
        return "; ".join(parts)

    def participants_by_site(self) -> str:
        c = Counter(p["site"] or "site not recorded" for p in self.participants)
        return ", ".join(f"{site} {c[site]}" for site in sorted(c))

    def theory_summary(self) -> str:
        n_cmocs = len(self.cmocs)
        keys = [t["key"] for t in self.theories]
        text = (_n(len(self.theories), "mid-range theory", "mid-range theories")
                + (f" ({', '.join(keys)})" if keys else "") + f" with {_n(n_cmocs, 'CMOC')}")
        if self.history:
            span = _date_span([str(h["at"])[:10] for h in self.history])
            per = Counter(h["theory_id"] for h in self.history)
            each = ", ".join(f"{t['key']} {per[t['id']]}" for t in self.theories if per.get(t["id"]))
            text += f"; {_n(len(self.history), 'refinement')} in the theory history ({span}; {each})"
        else:
            text += "; no refinement recorded in the theory history"
        return text

    def steps_summary(self) -> str:
        rows = self.appraisals

        def tally(col: str, order: tuple[str, ...]) -> str:
            return _tally(Counter(r[col] for r in rows if r[col]), order) or "none"

        analysts = sorted({r["analyst"] for r in rows if r["analyst"]})
        return "; ".join([
            f"{_n(len(rows), 'appraisal')} by {_n(len(analysts), 'analyst')}",
            "1 relevance: " + tally("relevance", ("relevant", "concept_box", "not_relevant")),
            "2 trust: " + tally("trust", ("high", "moderate", "low")),
            "3 interpretation: " + tally("interpretation", ("context", "mechanism_resource", "mechanism_response",
                                                            "outcome", "unclear")),
            "4 CMOC judgements: " + tally("cmoc_judgement", ("new", "supports", "refines", "refutes")),
            f"5 theory changes: {sum(1 for r in rows if r['theory_change'])}",
            f"6 saturation notes: {sum(1 for r in rows if r['saturation_note'])}",
        ])

    def findings_summary(self) -> str:
        support = Counter()
        refute = Counter()
        support_x: dict[int, set] = defaultdict(set)
        refute_x: dict[int, set] = defaultdict(set)
        for e in self.evidence:
            (support if e["role"] == "supports" else refute)[e["cmoc_id"]] += 1
            (support_x if e["role"] == "supports" else refute_x)[e["cmoc_id"]].add(e["excerpt_id"])
        status = Counter(c["status"] for c in self.cmocs)
        with_ev = sum(1 for c in self.cmocs if support[c["id"]] or refute[c["id"]])
        text = (f"{_n(len(self.cmocs), 'CMOC')} ({status.get('complete', 0)} complete, "
                f"{status.get('partial', 0)} partial), {with_ev} with evidence: "
                f"{_n(len({e['excerpt_id'] for e in self.evidence if e['role'] == 'supports'}), 'supporting excerpt')}, "
                f"{_n(len({e['excerpt_id'] for e in self.evidence if e['role'] != 'supports'}), 'refuting excerpt')}")
        per = ", ".join(f"{c['key']} {len(support_x[c['id']])}/{len(refute_x[c['id']])}" for c in self.cmocs)
        text += f"; supporting/refuting per CMOC: {per}"
        if self.saturated is not None:
            text += f"; {self.saturated} saturated under the project's rule"
        if self.themes:
            text += f"; {_n(self.themes, 'theme')} over {_n(self.codings, 'coding')}"
        return text


# --------------------------------------------------------------------------
# The items
# --------------------------------------------------------------------------
def _narrative_item(f: _Facts, names: list[str], holds: str = "") -> tuple[str, str, str]:
    """Status, holds and action of an item filled by author's text (``names``: all required)."""
    given = [n for n in names if f.text(n)]
    absent = [n for n in names if not f.text(n)]
    stored = "; ".join(f"author's text '{n}' ({_n(len(f.text(n).split()), 'word')})" for n in given)
    holds = "; ".join(x for x in (stored, holds) if x)
    add = ", ".join(absent)
    action = f"add the narrative section{'s' if len(absent) > 1 else ''} {add}" if absent else ""
    if not absent:
        return FILLED, holds, ""
    if given or f.has_data:
        return NEEDS_TEXT, holds, action
    return MISSING, holds, action


def _compute(f: _Facts) -> dict[int, tuple[str, str, str]]:
    out: dict[int, tuple[str, str, str]] = {}

    # 1 Title
    if not f.title:
        out[1] = (MISSING, "", "give the study a title (study.yaml title: or report: title:)")
    else:
        shown = f.title + (f": {f.subtitle}" if f.subtitle else "")
        if "realist" in shown.lower():
            out[1] = (FILLED, f"title: {shown}", "")
        else:
            out[1] = (NEEDS_TEXT, f"title: {shown}",
                      "say in the title or subtitle that this is a realist evaluation")

    # 2 Summary, 3 Rationale
    counts = []
    if f.sources:
        counts.append(_n(len(f.sources), "source"))
    if f.cmocs:
        counts.append(_n(len(f.cmocs), "CMOC"))
    out[2] = _narrative_item(f, ["summary"], ("project to summarise: " + ", ".join(counts)) if counts else "")
    out[3] = _narrative_item(f, ["rationale"], (f"{_n(len(f.questions), 'evaluation question')} whose purpose "
                                                 "the rationale explains") if f.questions else "")

    # 4 Programme theory
    extra = f"author's text 'programme_theory' ({_n(len(f.text('programme_theory').split()), 'word')})" \
        if f.text("programme_theory") else ""
    if f.theories:
        out[4] = (FILLED, "; ".join(x for x in (f.theory_summary(), extra) if x), "")
    elif f.cmocs:
        out[4] = (NEEDS_TEXT, "; ".join(x for x in (f"{_n(len(f.cmocs), 'CMOC')} in no mid-range theory", extra)
                                        if x),
                  "group the CMOCs into mid-range theories (sp-realist theory add / theory import)")
    elif extra:
        out[4] = (FILLED, extra, "")
    else:
        out[4] = (MISSING, "", "import the initial programme theory (sp-realist theory import theories.yaml)")

    # 5 Evaluation questions
    named = {}
    for t in f.theories:
        try:
            qs = json.loads(t["questions"]) if t["questions"] else []
        except ValueError:
            qs = [t["questions"]]
        if qs:
            named[t["key"]] = [str(q) for q in qs]
    scope = ("; theories name their questions: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in named.items())
             ) if named else ""
    if f.questions:
        listed = "; ".join(f"{k}: {v}" if v else k for k, v in f.questions.items())
        if any(not v for v in f.questions.values()):
            out[5] = (NEEDS_TEXT, listed + scope, "give every evaluation question its text (study.yaml questions:)")
        else:
            out[5] = (FILLED, listed + scope, "")
    elif named:
        out[5] = (NEEDS_TEXT, scope.lstrip("; "),
                  "state the questions' text (study.yaml questions:, or the project setting questions)")
    else:
        out[5] = (MISSING, "", "state the evaluation questions (study.yaml questions:)")

    # 6 Ethics
    out[6] = _narrative_item(f, ["ethics"], (f"pseudonym key applied ({_n(f.anonymised, 'run')})"
                                             if f.anonymised else ""))

    # 7 Realist rationale
    method = ""
    if f.appraisals:
        method = f"{_n(len(f.appraisals), 'appraisal')} recorded with Wong and Papoutsi's six steps"
    out[7] = _narrative_item(f, ["realist_rationale"], method)

    # 8 Environment, 9 Programme, 10 Design
    sites = sorted({s["site"] for s in f.sources if s["site"]} | {p["site"] for p in f.participants if p["site"]})
    out[8] = _narrative_item(f, ["environment"], ("sites " + ", ".join(sites)) if sites else "")
    roles = sorted({p["role"] for p in f.participants if p["role"]})
    out[9] = _narrative_item(f, ["programme"], ("roles in the programme: " + ", ".join(roles)) if roles else "")
    design = ""
    if f.sources:
        kinds = sorted({s["kind"].replace("_", " ") for s in f.sources})
        span = _date_span([s["date"] for s in f.sources])
        design = "data: " + ", ".join(kinds) + (f", {span}" if span else "")
    out[10] = _narrative_item(f, ["design"], design)

    # 11 Data collection
    extra = "author's text 'data_collection'" if f.text("data_collection") else ""
    if f.sources:
        out[11] = (FILLED, "; ".join(x for x in (f.sources_by_kind(), extra) if x), "")
    elif extra:
        out[11] = (FILLED, extra, "")
    else:
        out[11] = (MISSING, "", "ingest the data (sp-realist ingest)")

    # 12 Recruitment
    roles_held = ("participants by role: " + f.participants_by_role()) if f.participants else ""
    if f.text("recruitment"):
        out[12] = _narrative_item(f, ["recruitment"], roles_held)
    elif f.participants:
        out[12] = (NEEDS_TEXT, roles_held, "describe recruitment and sampling: add the narrative section "
                                          "recruitment")
    else:
        out[12] = (MISSING, "", "record the participants (study.yaml participants:) and add the narrative "
                                "section recruitment")

    # 13 Data analysis
    extra = "author's text 'analysis'" if f.text("analysis") else ""
    if f.appraisals:
        out[13] = (FILLED, "; ".join(x for x in (f.steps_summary(), extra) if x), "")
    elif extra:
        out[13] = (FILLED, extra, "")
    elif f.cmocs or f.codings:
        held = ", ".join(x for x in (_n(f.codings, "coding") if f.codings else "",
                                     _n(len(f.cmocs), "CMOC") if f.cmocs else "") if x)
        out[13] = (NEEDS_TEXT, held + "; no six-step appraisal recorded",
                   "record the appraisals (sp-realist appraise set / analysis import) or add the narrative "
                   "section analysis")
    else:
        out[13] = (MISSING, "", "record the six-step appraisals (sp-realist appraise set)")

    # 14 Participants
    if f.participants:
        out[14] = (FILLED, f"{_n(len(f.participants), 'participant')}: {f.participants_by_role()}; by site: "
                           f"{f.participants_by_site()}", "")
    else:
        out[14] = (MISSING, "", "record the participants with their roles and sites")

    # 15 Main findings
    evidenced = {e["cmoc_id"] for e in f.evidence}
    if f.cmocs and evidenced:
        out[15] = (FILLED, f.findings_summary(), "")
    elif f.cmocs:
        out[15] = (NEEDS_TEXT, f.findings_summary(),
                   "link the evidence behind each CMOC (sp-realist cmoc link / appraise set --link)")
    elif f.themes and f.codings:
        out[15] = (NEEDS_TEXT, f"{_n(f.themes, 'theme')} over {_n(f.codings, 'coding')}; no CMOC",
                   "state the findings as CMOCs (sp-realist cmoc add)")
    else:
        out[15] = (MISSING, "", "build CMOCs with their evidence")

    # 16 Summary of findings: the summary-of-findings tables answer it; else the author's text
    held = ""
    if f.findings:
        tables = (f"summary-of-findings tables: {_n(f.findings, 'finding')} over "
                  f"{_n(f.finding_questions, 'evaluation question')}")
        stored = f.text("findings_summary")
        out[16] = (FILLED, tables + (f"; author's text 'findings_summary' ({_n(len(stored.split()), 'word')})"
                                     if stored else ""), "")
    elif f.cmocs:
        held = f"{_n(len(f.cmocs), 'if/then statement')}"
        if f.questions:
            held += f", triangulation over {_n(len(f.questions), 'evaluation question')}"
    if 16 not in out:
        out[16] = _narrative_item(f, ["findings_summary"], held)

    # 17-20
    out[17] = _narrative_item(f, ["strengths_limitations"])
    out[18] = _narrative_item(f, ["literature"])
    out[19] = _narrative_item(f, ["conclusion", "recommendations"])
    out[20] = _narrative_item(f, ["funding"])
    return out


def rameses_checklist(project: Project, *, title: str | None = None, subtitle: str | None = None,
                      questions: dict[str, Any] | None = None) -> RamesesChecklist:
    """The RAMESES II checklist of ``project``.

    ``title``, ``subtitle`` and ``questions`` override the project's report settings (``report`` and
    ``questions``, stored by ``sp-realist build``); the author's text comes from the stored narrative.
    """
    facts = _Facts(project, title, subtitle, questions)
    computed = _compute(facts)
    narrative_of: dict[int, list[str]] = defaultdict(list)
    for spec in SECTIONS_BY_NAME.values():
        narrative_of[spec.item].append(spec.name)
    items = []
    for number, part, name, guidance, where in ITEMS:
        status, holds, action = computed[number]
        items.append(RamesesItem(number=number, part=part, title=name, guidance=guidance, status=status,
                                 holds=holds, action=action, report_section=where,
                                 narrative=narrative_of.get(number, [])))
    return RamesesChecklist(items=items)


# --------------------------------------------------------------------------
# Output: table/json/md through sp_realist.output; Word through python-docx
# --------------------------------------------------------------------------
def _summary(c: dict[str, int]) -> str:
    return (f"Of the 20 items, {c[FILLED]} {'is' if c[FILLED] == 1 else 'are'} {FILLED}, {c[NEEDS_TEXT]} "
            f"{'needs' if c[NEEDS_TEXT] == 1 else 'need'} author text and {c[MISSING]} "
            f"{'is' if c[MISSING] == 1 else 'are'} missing.")


def checklist_markdown(checklist: RamesesChecklist, title: str | None = None) -> str:
    """The checklist as a Markdown document: a heading, the citation, counts, and one table."""
    from ..output import to_markdown

    c = checklist.counts()
    lines = [f"# RAMESES II reporting checklist{': ' + title if title else ''}", "",
             _summary(c), "",
             f"Standard: {checklist.citation}", "", ""]
    df = checklist.frame()[["item", "title", "status", "holds", "action", "report_section"]]
    return "\n".join(lines) + to_markdown(df)


def write_checklist_docx(checklist: RamesesChecklist, path: str | os.PathLike, title: str | None = None) -> Path:
    """The checklist as a Word document with one table (item, title, status, holds, action, report section)."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Pt

    from .docx_writer import xml_safe

    path = Path(path)
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    doc.add_heading(xml_safe(f"RAMESES II reporting checklist{': ' + title if title else ''}"), level=1)
    c = checklist.counts()
    doc.add_paragraph(xml_safe(_summary(c)))
    doc.add_paragraph(xml_safe(f"Standard: {checklist.citation}"))
    columns = ["Item", "Title", "Status", "What the project holds", "What to add", "Report section"]
    table = doc.add_table(rows=1, cols=len(columns))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, columns):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i in checklist.items:
        cells = table.add_row().cells
        for cell, text in zip(cells, [str(i.number), i.title, i.status, i.holds, i.action, i.report_section]):
            cell.text = xml_safe(text)
            for run in cell.paragraphs[0].runs:
                run.font.size = Pt(8)
    doc.core_properties.title = "RAMESES II reporting checklist"
    from .docx_writer import study_datetime

    doc.core_properties.created = doc.core_properties.modified = study_datetime(None)
    doc.save(str(path))
    return path


# --------------------------------------------------------------------------
# The report appendix (kept apart so report changes from several branches merge easily)
# --------------------------------------------------------------------------
def rameses_appendix_table(project: Project, settings, counter: Counter):
    """The report's RAMESES II appendix table (numbered with the report's tables), or None when disabled."""
    from .model import Table, _numbered

    if not getattr(settings, "rameses_checklist", True):
        return None
    checklist = rameses_checklist(project, title=settings.title, subtitle=settings.subtitle,
                                  questions=settings.questions or None)
    rows = [[str(i.number), i.title, i.status, i.report_section,
             "; ".join(x for x in (i.holds, f"To add: {i.action}." if i.action else "") if x)]
            for i in checklist.items]
    c = checklist.counts()
    table = Table(key="rameses_checklist", caption="RAMESES II reporting checklist (Wong et al. 2016)",
                  columns=["Item", "Title", "Status", "Where in this report", "What the project holds"],
                  rows=rows, refs=[None] * len(rows),
                  note=(f"{_summary(c)} Standard: {CITATION} Narrative sections are added with "
                        "'sp-realist narrative set' or a study's 'narrative:' block; 'sp-realist rameses' lists the "
                        "checklist."))
    return _numbered(table, counter)


__all__ = ["FILLED", "NEEDS_TEXT", "MISSING", "STATUSES", "ITEMS", "CITATION", "RamesesItem", "RamesesChecklist",
           "rameses_checklist", "checklist_markdown", "write_checklist_docx", "rameses_appendix_table"]

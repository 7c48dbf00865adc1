"""The report model: everything a report says, computed from the project.

:func:`build_report_model` reads the project once and returns a plain tree of
dataclasses (:class:`ReportModel`).  The three writers (docx, html, md) only
lay this tree out, so the documents always agree with each other, and every
table in the model can also be written as CSV (:meth:`Table.frame`).

Provenance: every quote, count row and CMOC row carries a ``ref`` number that
points at a :class:`Ref` listing the excerpt ids (and coding / source ids)
behind it.  Writers show these as an appendix or as footnotes.

The model is deterministic: it depends only on the project's content, never on
the clock, so two builds of the same study give the same documents.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..attribution import ParticipantAttributor
from ..errors import SpRealistError
from ..store import Project

PROVENANCE_MODES = ("appendix", "footnotes", "none")
PAPER_SIZES = ("a4", "letter")
NUMBERING_MODES = ("document", "chapter")
CMOC_COLUMNS = ["Context (Resource)", "Mechanism (Behaviour)", "Outcome"]

#: Wong & Papoutsi's (2016) six analysis steps, in our words.
SIX_STEPS = (
    ("1", "Relevance", "Does the text refer to data that might be relevant to programme theory development? "
                       "Unsure items go to a 'concept box' to revisit."),
    ("2", "Trustworthiness", "Are the data trustworthy enough to warrant changes to a CMOC or to the programme theory?"),
    ("3", "Interpretation of meaning", "Can the text be interpreted as context, mechanism or outcome?"),
    ("4", "Judgements about CMOCs", "What (partial or complete) CMOC do the data suggest, and how does it relate "
                                    "to the CMOCs already developed?"),
    ("5", "Judgements about programme theory", "How does the CMOC relate to the programme theory; does the theory "
                                               "need to change?"),
    ("6", "Theoretical saturation", "Has saturation been reached for this CMOC or part of the programme theory?"),
)

KIND_PLURALS = {"diary": "diaries", "interview": "interviews", "focus_group": "focus groups",
                "field_notes": "field notes", "document": "documents"}

#: Driscoll's (2007) 'What? So what? Now what?' framework, used as the default
#: diary-template appendix when the study does not supply its own.
DRISCOLL_TEMPLATE = (
    ("What? Returning to the situation",
     ["What happened, in your own words?", "Who else was involved and what did they do?",
      "How did you react?", "What is the key message you want to share?"]),
    ("So what? Understanding the context",
     ["What were you feeling at the time, and what do you feel now?", "What effect might your role have had?",
      "What went well, and what troubles you about the situation?",
      "How does your experience compare with your colleagues'?"]),
    ("Now what? Modifying future outcomes",
     ["What are the implications for you, for others and for the service?",
      "What needs to change, and what should be tackled first?",
      "What would you do differently next time, and what information would help?"]),
)


# --------------------------------------------------------------------------
# Settings and model classes
# --------------------------------------------------------------------------
@dataclass
class ReportSettings:
    """What to put in a report and how to attribute it."""

    title: str | None = None
    subtitle: str | None = None
    authors: list[str] = field(default_factory=list)
    date: str | None = None  # ISO date of the study; the only date a report shows
    provenance: str = "appendix"  # appendix | footnotes | none
    quotes_per_theme: int = 3
    quotes_per_cmoc: int = 2
    max_quote_chars: int = 600
    # Evaluation questions for triangulation: {Q1: text} or {Q1: {text, themes, theories}}.
    questions: dict[str, Any] = field(default_factory=dict)
    introduction: str | None = None
    diary_template: list[tuple[str, list[str]]] | None = None
    figure: bool = True
    rameses_checklist: bool = True  # the RAMESES II checklist appendix (sp_realist.report.rameses)
    # Word page set-up: A4 unless 'letter' (or, with --template and no setting, the template's own paper);
    # 'chapter' numbers Word's tables and figures per chapter ("Table 6.1") instead of 1, 2, 3 ...
    paper: str | None = None
    numbering: str = "document"

    def __post_init__(self) -> None:
        if self.paper is not None:
            self.paper = str(self.paper).lower()
            if self.paper not in PAPER_SIZES:
                raise SpRealistError(f"report settings: paper {self.paper!r} is not one of "
                                     f"{', '.join(PAPER_SIZES)}; choose one of them.")
        if self.numbering not in NUMBERING_MODES:
            raise SpRealistError(f"report settings: numbering {self.numbering!r} is not one of "
                                 f"{', '.join(NUMBERING_MODES)}; choose one of them.")
        if self.provenance not in PROVENANCE_MODES:
            raise SpRealistError(
                f"report settings: provenance {self.provenance!r} is not one of {', '.join(PROVENANCE_MODES)}; "
                "choose one of them."
            )
        for name in ("quotes_per_theme", "quotes_per_cmoc", "max_quote_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpRealistError(f"report settings: {name} must be a whole number >= 0, not {value!r}.")

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, where: str = "report settings") -> "ReportSettings":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"formats", "template", "templates", "tables"})
        if unknown:
            raise SpRealistError(f"{where}: unknown setting(s) {', '.join(unknown)}; see docs/reports.md.")
        kwargs = {k: v for k, v in data.items() if k in known}
        if isinstance(kwargs.get("authors"), str):
            kwargs["authors"] = [kwargs["authors"]]
        if kwargs.get("date") is not None:
            kwargs["date"] = str(kwargs["date"])
        if kwargs.get("questions") is not None:
            if not isinstance(kwargs["questions"], dict):
                raise SpRealistError(f"{where}: questions must be a mapping like {{Q1: text}}.")
            kwargs["questions"] = {str(k): (v if isinstance(v, dict) else "" if v is None else str(v))
                                   for k, v in kwargs["questions"].items()}
        if kwargs.get("diary_template") is not None:
            kwargs["diary_template"] = _parse_diary_template(kwargs["diary_template"], where)
        return cls(**kwargs)


def _parse_diary_template(value: Any, where: str) -> list[tuple[str, list[str]]]:
    """``[{heading: ..., prompts: [...]}, ...]`` -> ``[(heading, prompts)]``."""
    out = []
    if not isinstance(value, list):
        raise SpRealistError(f"{where}: diary_template must be a list of {{heading, prompts}}.")
    for item in value:
        if not isinstance(item, dict) or "heading" not in item:
            raise SpRealistError(f"{where}: each diary_template entry needs a heading (and prompts).")
        out.append((str(item["heading"]), [str(p) for p in item.get("prompts") or []]))
    return out


@dataclass
class Ref:
    """One provenance entry: what a report item rests on."""

    number: int
    what: str
    excerpts: list[int] = field(default_factory=list)
    codings: list[int] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)  # "source name [start:end]"

    @property
    def text(self) -> str:
        parts = []
        if self.excerpts:
            parts.append("excerpt " + id_ranges(self.excerpts) if len(self.excerpts) == 1
                         else "excerpts " + id_ranges(self.excerpts))
        if self.codings:
            parts.append(("coding " if len(self.codings) == 1 else "codings ") + id_ranges(self.codings))
        if self.sources:
            parts.append(("source " if len(self.sources) == 1 else "sources ") + id_ranges(self.sources))
        if self.locations:
            parts.append("; ".join(self.locations))
        return f"{self.what}: " + ("; ".join(parts) if parts else "no underlying data")


@dataclass
class Quote:
    text: str
    attribution: str
    source: str
    source_id: int
    start: int
    end: int
    excerpt_id: int | None = None
    coding_id: int | None = None
    role: str = "supports"
    label: str | None = None  # e.g. the CMOC key it is evidence for
    ref: int | None = None
    number: int | None = None  # provenance 'appendix': the quote's number in the body ([Q3]) and the quote table


@dataclass
class Table:
    key: str  # file stem for CSV export
    caption: str
    columns: list[str]
    rows: list[list[str]]
    refs: list[int | None] = field(default_factory=list)  # provenance per row
    number: int = 0
    note: str | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    @property
    def label(self) -> str:
        return f"Table {self.number}"


@dataclass
class Figure:
    """The programme-theory figure.  PNG and SVG are rendered on first use and
    cached, so a Word report never pays for the SVG nor an HTML one for the PNG."""

    key: str
    caption: str
    number: int = 0
    renderer: Callable[[str], bytes | str] | None = field(default=None, repr=False, compare=False)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_data(cls, key: str, caption: str, png: bytes | None = None, svg: str | None = None) -> "Figure":
        fig = cls(key=key, caption=caption)
        fig.cache.update(png=png, svg=svg)
        return fig

    def _get(self, fmt: str):
        if fmt not in self.cache:
            self.cache[fmt] = self.renderer(fmt) if self.renderer is not None else None
        return self.cache[fmt]

    @property
    def png(self) -> bytes | None:
        return self._get("png")

    @property
    def svg(self) -> str | None:
        value = self._get("svg")
        return value.decode("utf-8") if isinstance(value, bytes) else value

    @property
    def label(self) -> str:
        return f"Figure {self.number}"


@dataclass
class ThemeSection:
    name: str
    level: int
    description: str | None
    phase: str
    codes: list[str]
    codings: int
    sources: int
    quotes: list[Quote]
    participants: int = 0
    sites: int = 0


@dataclass
class Statement:
    key: str
    text: str
    # Whom the CMOC's supporting evidence comes from, cited after the statement in one parenthesis,
    # "(S1 DK1; S3 DK2)", as the reference report cites its diary keepers (attribution rule of sources).
    cited: list[str] = field(default_factory=list)

    @property
    def citation(self) -> str:
        return f"({'; '.join(self.cited)})" if self.cited else ""


@dataclass
class TheorySection:
    key: str
    title: str
    description: str | None
    questions: list[str]
    table: Table
    statements: list[Statement]
    evidence: list[Quote]
    # Who the evidence for the theory's CMOCs comes from ("S1 DK1", "S3, unidentified"), supporting or refuting,
    # the way the reference report cites its diary keepers per theory; and how many excerpts of each role.
    cited: list[str] = field(default_factory=list)
    supporting: int = 0
    refuting: int = 0
    # The author's narrative for this theory (Markdown; narrative section ``theory:KEY``), after its description,
    # and the memos on the theory marked for the report (``memo add --theory KEY --report``): title, text, author.
    narrative: str | None = None
    memos: list[dict] = field(default_factory=list)


@dataclass
class Methods:
    paragraphs: list[str]
    tables: list[Table]
    steps: Table


@dataclass
class Appendices:
    """The appendices' contents; a part without data is None (or an empty diary template) and left out."""

    codebook: Table | None
    diary_template: list[tuple[str, list[str]]]  # [] when the project has no diaries
    appraisal: Table | None  # None without appraisals
    saturation: Table | None  # the full table (CSV ``saturation.csv``); None without CMOCs
    saturation_compact: Table | None = None  # what the documents show: five columns, detail in the CSV


@dataclass
class FindingsList:
    heading: str
    items: list[str]  # each finding with its data-source tags


@dataclass
class FindingsQuestion:
    """One summary-of-findings table (the report's Tables 7.1-7.4) with its lists and overall paragraph."""

    key: str
    text: str
    table: Table  # Topic | one column per evidence strand
    lists: list[FindingsList]
    overall: str | None = None


@dataclass
class FindingsSection:
    """The summary of findings: one table per evaluation question, and the evidence items cited."""

    questions: list[FindingsQuestion]
    evidence: Table | None = None

    def tables(self) -> list[Table]:
        return [q.table for q in self.questions] + ([self.evidence] if self.evidence is not None else [])


@dataclass
class ReportModel:
    title: str
    subtitle: str | None
    authors: list[str]
    date: str | None
    provenance: str
    introduction: str | None
    methods: Methods
    themes: list[ThemeSection]
    theories: list[TheorySection]
    figure: Figure | None
    triangulation: Table | None
    appendices: Appendices
    refs: list[Ref]
    # The author's narrative sections by report part (sp_realist.report.narrative) and the RAMESES II
    # checklist appendix (sp_realist.report.rameses).
    narrative: dict[str, list] = field(default_factory=dict)
    rameses: Table | None = None
    findings: FindingsSection | None = None  # summary-of-findings tables (after the triangulation)
    paper: str | None = None  # a4 | letter | None (A4, or a --template's own paper)
    numbering: str = "document"  # document | chapter (Word captions "Table 6.1")

    def tables(self) -> list[Table]:
        """Every table in document order (for CSV export)."""
        out = list(self.methods.tables) + [self.methods.steps]
        out += [t.table for t in self.theories]
        if self.triangulation is not None:
            out.append(self.triangulation)
        if self.findings is not None:
            out += self.findings.tables()
        a = self.appendices
        out += [t for t in (a.codebook, a.appraisal, a.saturation_compact, a.saturation) if t is not None]
        if self.rameses is not None:
            out.append(self.rameses)
        if self.refs and self.provenance != "none":
            out.append(self.provenance_table())
        if self.provenance == "appendix" and any(q.number for q in self.quotes()):
            out.append(self.quote_table())
        return out

    def appendix_headings(self) -> dict[str, str]:
        """Appendix name -> its heading, lettered in order over the appendices this report has
        ("Appendix B: Appraisal and saturation" when there is no diary template)."""
        a = self.appendices
        present = [("codebook", "Codebook", a.codebook is not None),
                   ("diary_template", "Diary template", bool(a.diary_template)),
                   ("appraisal_saturation", "Appraisal and saturation",
                    a.appraisal is not None or a.saturation_compact is not None),
                   ("rameses", "RAMESES II reporting checklist", self.rameses is not None),
                   ("provenance", "Provenance", bool(self.refs) and self.provenance == "appendix")]
        names = [(key, title) for key, title, here in present if here]
        return {key: f"Appendix {chr(ord('A') + i)}: {title}" for i, (key, title) in enumerate(names)}

    def quotes(self) -> list[Quote]:
        """Every quote, in document order (theme quotes, then each theory's evidence)."""
        return [q for th in self.themes for q in th.quotes] + [q for t in self.theories for q in t.evidence]

    def quote_table(self) -> Table:
        """Where each numbered quote comes from: quote no. | source | participant | position | excerpt id."""
        rows = [[f"Q{q.number}", q.source, q.attribution, f"[{q.start}:{q.end}]",
                 "" if q.excerpt_id is None else str(q.excerpt_id)] for q in self.quotes() if q.number is not None]
        return Table(key="quotes", caption="Quotes and where they come from",
                     columns=["Quote no.", "Source", "Participant", "Position", "Excerpt id"],
                     rows=rows, refs=[None] * len(rows), number=0)

    def item_provenance(self) -> Table:
        """What each count, CMOC row and summary-of-findings row rests on (quotes are in :meth:`quote_table`),
        named by the item, as the body carries no markers under provenance 'appendix'."""
        quoted = {q.ref for q in self.quotes()}
        rows = [[r.what, id_ranges(r.excerpts), id_ranges(r.codings), id_ranges(r.sources)]
                for r in self.refs if r.number not in quoted]
        return Table(key="item_provenance", caption="What each count, CMOC row and findings row rests on",
                     columns=["Item", "Excerpt ids", "Coding ids", "Source ids"], rows=rows,
                     refs=[None] * len(rows), number=0)

    def provenance_table(self) -> Table:
        rows = [[str(r.number), r.what, id_ranges(r.excerpts), id_ranges(r.codings), id_ranges(r.sources),
                 "; ".join(r.locations)] for r in self.refs]
        return Table(key="provenance", caption="Provenance of quotes, counts and CMOC rows",
                     columns=["Ref", "Item", "Excerpt ids", "Coding ids", "Source ids", "Locations"],
                     rows=rows, refs=[None] * len(rows), number=0)

    def to_dict(self) -> dict:
        """A JSON-friendly dict of the whole model (figure bytes left out)."""
        from dataclasses import asdict

        fig = self.figure
        try:
            self.figure = None
            d = asdict(self)
        finally:
            self.figure = fig
        d["figure"] = None if fig is None else {"key": fig.key, "caption": fig.caption, "number": fig.number}
        return d


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1-3, 7, 9-10"``."""
    ids = sorted(set(int(i) for i in ids))
    out: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(out)


def clip_quote(text: str, limit: int) -> str:
    """Whitespace-normalised quote, cut at a word boundary with ' [...]' when too long."""
    text = " ".join(text.split())
    if limit and len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0]
        return cut.rstrip(",;:") + " [...]"
    return text


def lower_first(text: str) -> str:
    text = (text or "").strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def context_resource(context: str | None, resource: str | None) -> str:
    """The report's 'Context (Resource)' column: the context with any resource folded in."""
    context = (context or "").strip()
    resource = (resource or "").strip()
    if context and resource:
        return f"{context} ({resource})"
    return context or resource


class _Refs:
    """Allocates provenance numbers in document order."""

    def __init__(self, mode: str):
        self.mode = mode
        self.items: list[Ref] = []

    def add(self, what: str, excerpts=(), codings=(), sources=(), locations=()) -> int | None:
        if self.mode == "none":
            return None
        ref = Ref(number=len(self.items) + 1, what=what, excerpts=sorted(set(excerpts)),
                  codings=sorted(set(codings)), sources=sorted(set(sources)), locations=list(locations))
        self.items.append(ref)
        return ref.number


class _Data:
    """Everything read from the project, once, in one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.sources = {r["id"]: dict(r) for r in conn.execute(
            select(S.sources.c.id, S.sources.c.name, S.sources.c.kind, S.sources.c.text, S.sources.c.date,
                   S.sources.c.file_name, S.sources.c.checksum, S.sources.c.participant_id,
                   S.sources.c.ingest_order)
        ).mappings()}
        self.participants = {r["id"]: dict(r) for r in conn.execute(select(S.participants)).mappings()}
        self.source_attrs: dict[int, dict[str, str]] = defaultdict(dict)
        for sid, name, value in conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.name,
                                                    S.source_attributes.c.value)):
            self.source_attrs[sid][name] = value
        self.attributor = ParticipantAttributor(conn)
        seg = S.segments
        # Which participants speak in which interviews (the participants-by-role table).
        self.speaker_segments: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        rows = conn.execute(
            select(seg.c.source_id, seg.c.start, seg.c.end, S.participants.c.code)
            .select_from(seg.join(S.participants, seg.c.participant_id == S.participants.c.id))
            .order_by(seg.c.source_id, seg.c.start))
        for sid, start, end, code in rows:
            self.speaker_segments[sid].append((start, end, code))

    def site(self, source_id: int, start: int | None = None) -> str | None:
        """The source's site attribute, else (with ``start``) the site of who said it, else its participant's."""
        site = self.source_attrs.get(source_id, {}).get("site")
        if site:
            return site
        if start is not None:
            pid = self.attributor.participant_id(source_id, start)
            if pid is not None and self.participants[pid]["site"]:
                return self.participants[pid]["site"]
        pid = self.sources[source_id]["participant_id"]
        if pid is not None:
            return self.participants[pid]["site"]
        return None

    def attribution_at(self, source_id: int, start: int) -> str:
        """Who said the text at a position ("S1 DK1", "Interviewer, S2 PM1 interview"):
        :func:`sp_realist.sources.span_attributions`' rule."""
        return self.attributor(source_id, start)

    def participant_at(self, source_id: int, start: int) -> str | None:
        """The participant code behind a position, None in an unmapped speaker's turn
        (:mod:`sp_realist.attribution`, the rule 'sp-realist saturation' counts by)."""
        return self.attributor.participant_code(source_id, start)

    def is_interviewer(self, source_id: int, start: int) -> bool:
        """True when the position lies in an interviewer's turn (never quoted for a theme)."""
        return self.attributor.is_interviewer(source_id, start)

    def quote(self, source_id: int, start: int, end: int, limit: int, **kw) -> Quote:
        src = self.sources[source_id]
        return Quote(text=clip_quote(src["text"][start:end], limit), attribution=self.attribution_at(source_id, start),
                     source=src["name"], source_id=source_id, start=start, end=end, **kw)


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------
def _methods(d: _Data, refs: _Refs, counter: Counter) -> Methods:
    sources = d.sources
    by_kind = Counter(s["kind"] for s in sources.values())
    paragraphs = []
    if sources:
        kinds = ", ".join(f"{n} {k.replace('_', ' ')} source{'s' if n != 1 else ''}" for k, n in sorted(by_kind.items()))
        dates = sorted(s["date"] for s in sources.values() if s["date"])
        span = f", dated {dates[0]} to {dates[-1]}" if dates else ""
        paragraphs.append(f"The project holds {len(sources)} sources ({kinds}){span}, from "
                          f"{len(d.participants)} participants.")
    tables: list[Table] = []

    # Diary entries per site (the reference report's Table 3.7).
    diaries = [s for s in sources.values() if s["kind"] == "diary"]
    if diaries:
        per_site: dict[str, list[dict]] = defaultdict(list)
        for s in diaries:
            per_site[d.site(s["id"]) or "Unattributed"].append(s)
        has_pages = any("pages" in d.source_attrs.get(s["id"], {}) for s in diaries)
        columns = ["Site", "Diary keepers", "Entries", "Words"] + (["Pages"] if has_pages else [])
        rows, row_refs = [], []
        totals = [0, 0, 0, 0]

        def pages_of(items: list[dict]) -> int:
            # One file = its name and content (two diaries called notes.txt in different folders
            # are two files), as in the ingest summary (sp_realist.ingest.browse).
            per_file: dict[tuple, int] = {}
            for s in items:
                value = d.source_attrs.get(s["id"], {}).get("pages")
                if value is None:
                    continue
                try:
                    per_file[(s["file_name"] or s["name"], s["checksum"])] = int(float(value))
                except ValueError:
                    raise SpRealistError(
                        f"source {s['name']!r}: attribute pages={value!r} is not a number; fix the attribute."
                    ) from None
            return sum(per_file.values())

        for site in sorted(per_site):
            items = per_site[site]
            keepers = len({s["participant_id"] for s in items if s["participant_id"] is not None})
            words = sum(len(s["text"].split()) for s in items)
            row = [site, str(keepers), str(len(items)), str(words)]
            if has_pages:
                pages = pages_of(items)
                totals[3] += pages
                row.append(str(pages))
            totals[0] += keepers
            totals[1] += len(items)
            totals[2] += words
            rows.append(row)
            row_refs.append(refs.add(f"Diary entries, site {site}", sources=[s["id"] for s in items]))
        total = ["Total", str(totals[0]), str(totals[1]), str(totals[2])] + ([str(totals[3])] if has_pages else [])
        rows.append(total)
        row_refs.append(refs.add("Diary entries, all sites", sources=[s["id"] for s in diaries]))
        tables.append(_numbered(Table(
            key="diary_entries_by_site", caption="Diary entries per site", columns=columns, rows=rows,
            refs=row_refs,
            note="Pages are the sum, over distinct files, of the files' 'pages' attribute." if has_pages else None),
            counter))

    # Sources by kind and site.
    if sources:
        sites = sorted({d.site(sid) or "Unattributed" for sid in sources})
        kinds = sorted(by_kind)
        rows, row_refs = [], []
        for kind in kinds:
            ids = [sid for sid, s in sources.items() if s["kind"] == kind]
            counts = Counter(d.site(sid) or "Unattributed" for sid in ids)
            rows.append([kind.replace("_", " ")] + [str(counts.get(site, 0)) for site in sites] + [str(len(ids))])
            row_refs.append(refs.add(f"Sources of kind {kind}", sources=ids))
        col_tot = Counter(d.site(sid) or "Unattributed" for sid in sources)
        rows.append(["Total"] + [str(col_tot[site]) for site in sites] + [str(len(sources))])
        row_refs.append(refs.add("All sources", sources=list(sources)))
        tables.append(_numbered(Table(key="sources_by_kind_and_site", caption="Sources by kind and site",
                                      columns=["Kind"] + sites + ["Total"], rows=rows, refs=row_refs), counter))

    # Participants by role.
    if d.participants:
        sources_of: dict[int, list[int]] = defaultdict(list)
        for sid, s in sources.items():
            if s["participant_id"] is not None:
                sources_of[s["participant_id"]].append(sid)
        pid_of = {row["code"]: p for p, row in d.participants.items()}
        for sid, segs in d.speaker_segments.items():
            for code in {c for _s, _e, c in segs}:
                pid = pid_of.get(code)
                if pid is not None and sid not in sources_of[pid]:
                    sources_of[pid].append(sid)
        by_role: dict[str, list[dict]] = defaultdict(list)
        for p in d.participants.values():
            by_role[p["role"] or "Not recorded"].append(p)
        rows, row_refs = [], []
        for role in sorted(by_role):
            people = sorted(by_role[role], key=lambda p: p["code"])
            ids = sorted({sid for p in people for sid in sources_of[p["id"]]})
            sites = sorted({p["site"] for p in people if p["site"]})
            rows.append([role, str(len(people)), ", ".join(sites), ", ".join(p["code"] for p in people), str(len(ids))])
            row_refs.append(refs.add(f"Participants with role {role}", sources=ids))
        tables.append(_numbered(Table(key="participants_by_role", caption="Participants by role",
                                      columns=["Role", "Participants", "Sites", "Codes", "Sources"],
                                      rows=rows, refs=row_refs), counter))

    steps = _steps_table(d, refs)
    appraised = d.conn.execute(select(S.appraisals.c.excerpt_id, S.excerpts.c.source_id).select_from(
        S.appraisals.join(S.excerpts, S.appraisals.c.excerpt_id == S.excerpts.c.id))).all()
    if appraised:
        kinds = Counter(sources[sid]["kind"] for _x, sid in appraised)
        what = " and ".join(KIND_PLURALS.get(k, k) for k, _n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        paragraphs.append(
            f"Excerpts from the {what} were analysed with the six steps of Wong and Papoutsi (2016): each was "
            "appraised for relevance and trustworthiness, interpreted as context, mechanism or outcome, and judged "
            "against the developing context-mechanism-outcome configurations (CMOCs) and mid-range programme "
            "theories until saturation. The table below records what the project holds for each step.")
    else:
        paragraphs.append("No realist appraisals (Wong and Papoutsi's six steps) are recorded in this project yet; "
                          "the table below lists the steps.")
    return Methods(paragraphs=paragraphs, tables=tables, steps=_numbered(steps, counter))


def _steps_table(d: _Data, refs: _Refs) -> Table:
    a = S.appraisals
    rows = d.conn.execute(select(a.c.excerpt_id, a.c.relevance, a.c.trust, a.c.interpretation, a.c.cmoc_judgement,
                                 a.c.theory_change, a.c.saturation_note)).mappings().all()
    n_cmocs = d.conn.execute(select(S.cmocs.c.status)).scalars().all()
    n_theories = len(d.conn.execute(select(S.theories.c.id)).all())
    n_history = len(d.conn.execute(select(S.theory_history.c.id)).all())

    def tally(col: str, order: tuple[str, ...]) -> str:
        c = Counter(r[col] for r in rows if r[col])
        names = list(order) + sorted(set(c) - set(order))
        return ", ".join(f"{n.replace('_', ' ')} {c[n]}" for n in names if c.get(n)) or "none recorded"

    def ids_where(pred) -> list[int]:
        return [r["excerpt_id"] for r in rows if pred(r)]

    status = Counter(n_cmocs)
    recorded = [
        (f"{_plural(len(rows), 'appraisal')}: " + tally("relevance", ("relevant", "concept_box", "not_relevant")),
         ids_where(lambda r: r["relevance"])),
        (("trust " if any(r["trust"] for r in rows) else "") + tally("trust", ("high", "moderate", "low")),
         ids_where(lambda r: r["trust"])),
        (tally("interpretation", ("context", "mechanism_resource", "mechanism_response", "outcome", "unclear")),
         ids_where(lambda r: r["interpretation"])),
        (tally("cmoc_judgement", ("new", "supports", "refines", "refutes"))
         + f"; {_plural(len(n_cmocs), 'CMOC')} ({status.get('complete', 0)} complete, "
           f"{status.get('partial', 0)} partial)",
         ids_where(lambda r: r["cmoc_judgement"])),
        (f"{_plural(n_theories, 'mid-range theory', 'mid-range theories')}; "
         f"{_plural(sum(1 for r in rows if r['theory_change']), 'appraisal')} changed a theory; "
         f"{_plural(n_history, 'recorded refinement')}", ids_where(lambda r: r["theory_change"])),
        (f"{_plural(sum(1 for r in rows if r['saturation_note']), 'saturation note')} (see the saturation appendix)",
         ids_where(lambda r: r["saturation_note"])),
    ]
    out_rows, out_refs = [], []
    for (num, name, question), (text, ids) in zip(SIX_STEPS, recorded):
        out_rows.append([num, name, question, text])
        out_refs.append(refs.add(f"Step {num} ({name})", excerpts=ids) if ids else None)
    return Table(key="analysis_steps", caption="Analysis approach: the six steps of Wong and Papoutsi (2016)",
                 columns=["Step", "Name", "Question", "Recorded in this project"], rows=out_rows, refs=out_refs)


def _themes(d: _Data, refs: _Refs, settings: ReportSettings) -> list[ThemeSection]:
    """The thematic findings, as ``sp-realist theme table`` gives them (:mod:`sp_realist.coding.themes` owns
    the theme model: codes with their descendants, sub-themes, counts and the quote picker)."""
    from ..coding.themes import theme_summaries_conn

    summaries = theme_summaries_conn(d.conn, settings.quotes_per_theme)
    if not summaries:
        return []
    excerpt_ids = {(r[1], r[2], r[3]): r[0] for r in d.conn.execute(
        select(S.excerpts.c.id, S.excerpts.c.source_id, S.excerpts.c.start, S.excerpts.c.end))}
    out: list[ThemeSection] = []
    for theme in summaries:
        q_objs = []
        for item in theme.quotes:
            xid = excerpt_ids.get((item.source_id, item.start, item.end))
            q = d.quote(item.source_id, item.start, item.end, settings.max_quote_chars,
                        coding_id=item.coding_id, excerpt_id=xid, label=item.code)
            q.ref = refs.add(f"Quote for theme {theme.name!r}", excerpts=[xid] if xid else [],
                             codings=[item.coding_id], locations=[f"{q.source} [{q.start}:{q.end}]"])
            q_objs.append(q)
        out.append(ThemeSection(
            name=theme.name, level=theme.depth, description=theme.description, phase=theme.phase,
            codes=list(theme.codes), codings=theme.codings, sources=theme.sources, quotes=q_objs,
            participants=theme.participants, sites=theme.sites))
    return out


def _theories(project: Project, d: _Data, refs: _Refs, settings: ReportSettings, counter: Counter) -> list[TheorySection]:
    from ..coding.memos import report_memos
    from . import integrations

    theories = d.conn.execute(select(S.theories).order_by(S.theories.c.ord, S.theories.c.id)).mappings().all()
    marked = report_memos(d.conn)
    cm = S.cmocs
    ev = S.cmoc_evidence
    x = S.excerpts
    evidence: dict[int, list[dict]] = defaultdict(list)
    for r in d.conn.execute(
        select(ev.c.cmoc_id, ev.c.excerpt_id, ev.c.role, ev.c.component, x.c.source_id, x.c.start, x.c.end)
        .select_from(ev.join(x, ev.c.excerpt_id == x.c.id)).order_by(ev.c.cmoc_id, ev.c.id)
    ).mappings():
        evidence[r["cmoc_id"]].append(dict(r))
    statements = integrations.ifthen(project)
    cells = integrations.cmoc_cells(project)
    out = []
    for number, t in enumerate(theories, start=1):
        cmoc_rows = d.conn.execute(
            select(cm).select_from(cm.join(S.theory_cmocs, S.theory_cmocs.c.cmoc_id == cm.c.id))
            .where(S.theory_cmocs.c.theory_id == t["id"]).order_by(S.theory_cmocs.c.ord, cm.c.ord, cm.c.id)
        ).mappings().all()
        rows, row_refs, quotes, stmts = [], [], [], []
        backing: set = set()  # evidence of the theory's CMOCs: (role, excerpt id, source id, start)
        for c in cmoc_rows:
            items = evidence.get(c["id"], [])
            backing.update((e["role"], e["excerpt_id"], e["source_id"], e["start"]) for e in items)
            cell = cells[c["key"]]
            rows.append([c["key"], cell.context, cell.mechanism, cell.outcome])
            row_refs.append(refs.add(
                f"CMOC {c['key']}", excerpts=[e["excerpt_id"] for e in items],
                sources=[e["source_id"] for e in items]))
            if c["key"] in statements:
                people = sorted({d.attribution_at(e["source_id"], e["start"]) for e in items
                                 if e["role"] == "supports"}, key=_natural_key)
                stmts.append(Statement(c["key"], statements[c["key"]], cited=people))
            for e in _pick_evidence(d, items, settings.quotes_per_cmoc):
                q = d.quote(e["source_id"], e["start"], e["end"], settings.max_quote_chars,
                            excerpt_id=e["excerpt_id"], role=e["role"], label=c["key"])
                q.ref = refs.add(f"Evidence for CMOC {c['key']} ({e['role']})", excerpts=[e["excerpt_id"]],
                                 locations=[f"{q.source} [{q.start}:{q.end}]"])
                quotes.append(q)
        try:
            questions = json.loads(t["questions"]) if t["questions"] else []
        except ValueError:
            questions = [t["questions"]]
        table = _numbered(Table(
            key=f"cmoc_{_slug(t['key'])}",
            caption=f"CMO configurations for theory {number}: {t['title']}",
            columns=["CMOC"] + CMOC_COLUMNS, rows=rows, refs=row_refs), counter)
        out.append(TheorySection(key=t["key"], title=t["title"], description=t["description"],
                                 memos=marked.get(t["id"], []),
                                 questions=[str(q) for q in questions], table=table, statements=stmts,
                                 evidence=quotes,
                                 cited=sorted({d.attribution_at(sid, start) for _r, _x, sid, start in backing}),
                                 supporting=len({x for r, x, _s, _st in backing if r == "supports"}),
                                 refuting=len({x for r, x, _s, _st in backing if r != "supports"})))
    return out


def _natural_key(text: str):
    """'S1 DK2' before 'S1 DK10'."""
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _pick_evidence(d: _Data, items: list[dict], n: int) -> list[dict]:
    if n <= 0:
        return []
    ranked = sorted(items, key=lambda e: (e["role"] != "supports", d.sources[e["source_id"]]["ingest_order"],
                                          e["start"], e["excerpt_id"]))
    chosen, people = [], set()
    for e in ranked:
        who = d.attribution_at(e["source_id"], e["start"])
        if who not in people:
            chosen.append(e)
            people.add(who)
        if len(chosen) == n:
            break
    for e in ranked:
        if len(chosen) == n:
            break
        if e not in chosen:
            chosen.append(e)
    refutes = [e for e in ranked if e["role"] != "supports" and e not in chosen]
    return chosen + refutes[:1]  # always show contrary evidence when there is some


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "x"


def _numbered(table: Table, counter: Counter) -> Table:
    counter["table"] += 1
    table.number = counter["table"]
    if not table.refs:
        table.refs = [None] * len(table.rows)
    return table


def _codebook(d: _Data, counter: Counter) -> Table | None:
    rows = d.conn.execute(select(S.codes).order_by(S.codes.c.ord, S.codes.c.id)).mappings().all()
    counts = Counter(d.conn.execute(select(S.codings.c.code_id)).scalars().all())
    children: dict[int | None, list] = defaultdict(list)
    for r in rows:
        children[r["parent_id"]].append(r)
    out = []

    def visit(r, path: str) -> None:
        name = f"{path} > {r['name']}" if path else r["name"]
        out.append([name, r["definition"] or "", r["inclusion"] or "", r["exclusion"] or "", str(counts.get(r["id"], 0))])
        for ch in children.get(r["id"], []):
            visit(ch, name)

    for r in children.get(None, []):
        visit(r, "")
    if not out:  # no codes: no codebook appendix
        return None
    return _numbered(Table(key="codebook", caption="Codebook",
                           columns=["Code", "Definition", "Inclusion", "Exclusion", "Codings"], rows=out), counter)


def _cmocs_in_report_order(d: _Data) -> list[dict]:
    """CMOCs in the order the report shows them: by theory, then within the theory; CMOCs in no theory last."""
    rows = d.conn.execute(select(S.cmocs.c.id, S.cmocs.c.key, S.cmocs.c.status, S.cmocs.c.confidence,
                                 S.cmocs.c.ord)).mappings().all()
    position: dict[int, tuple] = {}
    for t_ord, t_id, c_ord, c_id in d.conn.execute(
            select(S.theories.c.ord, S.theories.c.id, S.theory_cmocs.c.ord, S.theory_cmocs.c.cmoc_id)
            .select_from(S.theory_cmocs.join(S.theories, S.theory_cmocs.c.theory_id == S.theories.c.id))):
        position[c_id] = min(position.get(c_id, (1e18,)), (0, t_ord, t_id, c_ord))
    return [dict(r) for r in sorted(rows, key=lambda r: (position.get(r["id"], (1, 0, 0, r["ord"])), r["key"]))]


def _appraisal_summary(project: Project, d: _Data, refs: _Refs, counter: Counter):
    """(appraisal table or None, compact saturation table, full saturation table); all None without CMOCs."""
    a, ev, x = S.appraisals, S.cmoc_evidence, S.excerpts
    cm = _cmocs_in_report_order(d)
    from . import integrations

    sat = integrations.saturation(project)
    appr: dict[int, list[dict]] = defaultdict(list)
    for r in d.conn.execute(select(a.c.excerpt_id, a.c.cmoc_id, a.c.trust, a.c.relevance, a.c.cmoc_judgement,
                                   a.c.analyst, a.c.saturation_note).order_by(a.c.id)).mappings():
        if r["cmoc_id"] is not None:
            appr[r["cmoc_id"]].append(dict(r))
    evid: dict[int, list[dict]] = defaultdict(list)
    for r in d.conn.execute(select(ev.c.cmoc_id, ev.c.excerpt_id, ev.c.role, x.c.source_id, x.c.start)
                            .select_from(ev.join(x, ev.c.excerpt_id == x.c.id)).order_by(ev.c.id)).mappings():
        evid[r["cmoc_id"]].append(dict(r))
    arows, arefs, srows, srefs = [], [], [], []
    for c in cm:
        items = appr.get(c["id"], [])
        trust = Counter(i["trust"] for i in items if i["trust"])
        judg = Counter(i["cmoc_judgement"] for i in items if i["cmoc_judgement"])
        arows.append([c["key"], str(len(items)),
                      str(trust.get("high", 0)), str(trust.get("moderate", 0)), str(trust.get("low", 0)),
                      ", ".join(f"{k} {judg[k]}" for k in ("new", "supports", "refines", "refutes") if judg.get(k)),
                      ", ".join(sorted({i["analyst"] for i in items}))])
        arefs.append(refs.add(f"Appraisals for CMOC {c['key']}", excerpts=[i["excerpt_id"] for i in items])
                     if items else None)
        e = evid.get(c["id"], [])
        notes = [i["saturation_note"] for i in items if i["saturation_note"]]
        judged = sat[c["key"]]  # the counts and the verdict of 'sp-realist saturation'
        counts = [str(judged.supporting), str(judged.refuting), str(judged.sources), str(judged.participants),
                  str(judged.sites), "yes" if judged.saturated else "no", judged.reason or ""]
        note_cell = " / ".join(dict.fromkeys(notes))
        if judged.flag:  # a note claiming saturation the evidence does not show
            note_cell = (note_cell + " " if note_cell else "") + f"Flagged: {judged.flag}."
        srows.append([c["key"], c["status"] or "", c["confidence"] or ""] + counts + [note_cell])
        srefs.append(refs.add(f"Saturation counts for CMOC {c['key']}", excerpts=[i["excerpt_id"] for i in e],
                              sources=[i["source_id"] for i in e]) if e else None)
    appraisal = Table(key="appraisal_summary", caption="Appraisal summary per CMOC",
                      columns=["CMOC", "Appraisals", "Trust high", "Trust moderate", "Trust low", "Judgements",
                               "Analysts"], rows=arows, refs=arefs)
    saturation = Table(key="saturation", caption="Evidence and saturation per CMOC",
                       columns=["CMOC", "Status", "Confidence", "Supporting excerpts", "Refuting excerpts",
                                "Sources", "Participants", "Sites", "Saturated", "Reason", "Saturation notes"],
                       rows=srows, refs=srefs,
                       note=("Counts and verdicts as 'sp-realist saturation' gives them under the project's "
                             "saturation rule, judged on each CMOC's own evidence; a step-6 note that claims "
                             "saturation the evidence does not show is flagged."))
    if not cm:
        return None, None, None
    compact = Table(key="saturation_summary", caption="Evidence and saturation per CMOC",
                    columns=["CMOC", "Status", "Evidence (supporting / refuting)",
                             "Sources / participants / sites", "Saturated"],
                    rows=[[r[0], r[1], f"{r[3]} / {r[4]}", f"{r[5]} / {r[6]} / {r[7]}",
                           r[8] + (" (note flagged)" if "Flagged:" in r[10] else "")] for r in srows],
                    refs=list(srefs),
                    note=((saturation.note + " ") if saturation.note else "")
                    + "The full table (confidence, the rule's reason, the analysts' saturation notes) is "
                      "saturation.csv among the report's tables (--tables).")
    saturation.number = 0  # the detail is a CSV table, not a numbered table of the document
    has_appraisals = any(appr.get(c["id"]) for c in cm)
    return (_numbered(appraisal, counter) if has_appraisals else None), _numbered(compact, counter), saturation


# --------------------------------------------------------------------------
# Summary of findings (Tables 7.1-7.4): sp_realist.cmoc.findings laid out as report tables
# --------------------------------------------------------------------------
def summary_of_findings_section(project: Project, refs: _Refs, counter: Counter) -> FindingsSection | None:
    """The summary-of-findings tables, one per question (None when the project has none).

    Cells and list items are the findings with their computed data-source tags, exactly as
    ``sp-realist triangulate`` shows them.  Each row's provenance lists the CMOC evidence excerpts,
    codings and sources its findings' tags rest on.
    """
    from ..cmoc.findings import has_findings, summary_of_findings

    if not has_findings(project):
        return None
    sof = summary_of_findings(project)
    questions = []
    for q in sof.questions:
        rows, row_refs = [], []
        for t in q.topics:
            rows.append([t.name] + ["\n".join(f.tagged for f in t.cells[s]) for s in q.strands])
            found = [f for s in q.strands for f in t.cells[s]]
            row_refs.append(refs.add(f"Summary of findings {q.key}: {t.name}",
                                     excerpts=[i for f in found for i in f.excerpts],
                                     codings=[i for f in found for i in f.codings],
                                     sources=[i for f in found for i in f.sources]))
        caption = f"Summary of findings - {q.key}" + (f": {q.text}" if q.text else "")
        table = _numbered(Table(key=f"findings_{_slug(q.key)}", caption=caption, columns=["Topic"] + q.strands,
                                rows=rows, refs=row_refs), counter)
        lists = [FindingsList(heading=lst.heading, items=[f.tagged for f in lst.items]) for lst in q.lists
                 if lst.items]
        questions.append(FindingsQuestion(key=q.key, text=q.text, table=table, lists=lists, overall=q.overall))
    evidence = None
    if sof.evidence:
        evidence = _numbered(Table(key="evidence_items", caption="Evidence items cited in the summary of findings",
                                   columns=["Key", "Kind", "Citation"],
                                   rows=[[e["key"], e["kind"], e["citation"] + (f" ({e['note']})" if e["note"] else "")]
                                         for e in sof.evidence]), counter)
    return FindingsSection(questions=questions, evidence=evidence)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------
def build_report_model(project: Project, settings: ReportSettings | None = None) -> ReportModel:
    """Read the project and return the :class:`ReportModel` every writer lays out."""
    from . import integrations

    settings = settings or ReportSettings()
    refs = _Refs(settings.provenance)
    counter: Counter = Counter()
    with project.connect() as conn:
        d = _Data(conn)
        title = settings.title or project.get_setting("report.title") or "Evaluation report"
        date = settings.date  # never invent a date: only the study's own date is shown
        methods = _methods(d, refs, counter)
        themes = _themes(d, refs, settings)
        theories = _theories(project, d, refs, settings, counter)
        triangulation = integrations.triangulation(project, settings.questions)
        if triangulation is not None:
            triangulation = _numbered(triangulation, counter)
        findings = summary_of_findings_section(project, refs, counter)
        codebook = _codebook(d, counter)
        appraisal, compact, saturation = _appraisal_summary(project, d, refs, counter)
        has_diaries = d.conn.execute(select(S.sources.c.id).where(S.sources.c.kind == "diary").limit(1)).first()
    narrative, rameses = _narrative_and_checklist(project, settings, counter)
    from .narrative import theory_narratives

    own = theory_narratives(project)
    for t in theories:
        t.narrative = own.get(t.key)
    if settings.provenance == "appendix":  # quotes numbered in the body, traced in the quote table
        for n, q in enumerate([q for th in themes for q in th.quotes] + [q for t in theories for q in t.evidence],
                              start=1):
            q.number = n
    figure = None
    if settings.figure and theories:
        figure = integrations.figure(project)
        if figure is not None:
            figure.number = 1
    return ReportModel(
        title=title, subtitle=settings.subtitle, authors=list(settings.authors), date=date,
        provenance=settings.provenance, introduction=settings.introduction, methods=methods, themes=themes,
        theories=theories, figure=figure, triangulation=triangulation,
        appendices=Appendices(codebook=codebook,
                              diary_template=(settings.diary_template or [(h, list(p)) for h, p in DRISCOLL_TEMPLATE])
                              if has_diaries else [],
                              appraisal=appraisal, saturation=saturation, saturation_compact=compact),
        refs=refs.items, narrative=narrative, rameses=rameses, findings=findings,
        paper=settings.paper, numbering=settings.numbering,
    )


def _narrative_and_checklist(project: Project, settings: ReportSettings, counter: Counter):
    """The author's narrative sections and the RAMESES II appendix table (see narrative.py, rameses.py)."""
    from .narrative import report_narrative
    from .rameses import rameses_appendix_table

    return report_narrative(project), rameses_appendix_table(project, settings, counter)


__all__ = [
    "ReportSettings", "ReportModel", "Table", "Quote", "Ref", "Figure", "ThemeSection", "TheorySection",
    "Statement", "Methods", "Appendices", "FindingsSection", "FindingsQuestion", "FindingsList", "build_report_model", "id_ranges", "clip_quote", "CMOC_COLUMNS",
    "PROVENANCE_MODES", "SIX_STEPS", "DRISCOLL_TEMPLATE",
]

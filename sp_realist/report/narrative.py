"""Author's narrative: the prose sections of a report that only the evaluators can write.

A realist evaluation report needs text the project cannot compute: a summary, the rationale, ethical
approval, the setting, the programme, limitations, conclusions, funding (RAMESES II items 2, 3, 6-10,
12, 16-20; see :mod:`sp_realist.report.rameses`).  Each such text is one **section**, named from the fixed
set :data:`NARRATIVE_SECTIONS`, written in Markdown and stored in the project (project setting
``narrative``: ``{section: markdown}``), so a project renders its reports anywhere, without the study folder.

* ``study.yaml`` ``narrative: {summary: narrative/summary.md, ...}`` -> stored by ``sp-realist build``;
* ``sp-realist narrative set SECTION FILE`` / ``narrative show`` / ``narrative remove`` for any project
  (:func:`set_narrative`, :func:`narrative_frame`, :func:`remove_narrative`).

Reports place each section where a reader expects it (:attr:`NarrativeSection.part`): the summary before
the introduction, the rationale and setting in the introduction, the design and ethics in the methods, the
discussion sections after the findings.  The Markdown is rendered with markdown-it-py (CommonMark, raw HTML
disabled) for HTML and Word, and kept as it is (headings moved below the report's own) for Markdown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import SpRealistError
from ..store import Project

NARRATIVE_SETTING = "narrative"

#: Where a section appears in a report.
PARTS = ("summary", "introduction", "methods", "discussion")
PART_HEADINGS = {"summary": "Summary", "introduction": "Introduction", "methods": "Methods",
                 "discussion": "Discussion"}


@dataclass(frozen=True)
class NarrativeSection:
    """One author's-text section: its name (the study.yaml / CLI key), heading, report part and RAMESES item."""

    name: str
    heading: str
    part: str  # one of PARTS
    item: int  # the RAMESES II item it serves
    description: str

    @property
    def report_section(self) -> str:
        """Where a report shows it, e.g. ``Introduction > Rationale for the evaluation``."""
        if self.part == "summary":
            return "Summary"
        if self.part == "theory":
            return f"Realist findings > {self.name[len(THEORY_PREFIX):]}"
        return f"{PART_HEADINGS[self.part]} > {self.heading}"


#: The documented set of sections, in report order.
NARRATIVE_SECTIONS: tuple[NarrativeSection, ...] = (
    NarrativeSection("summary", "Summary", "summary", 2,
                     "Summary or abstract: the programme, setting, purpose, questions, design, methods, key "
                     "findings and conclusions, saying that a realist approach was used."),
    NarrativeSection("rationale", "Rationale for the evaluation", "introduction", 3,
                     "Why the evaluation was done and what that means for its focus and design."),
    NarrativeSection("programme_theory", "Initial programme theory", "introduction", 4,
                     "The initial programme theory in words (the theories and CMOCs themselves come from the "
                     "project)."),
    NarrativeSection("realist_rationale", "Why a realist evaluation", "introduction", 7,
                     "Why a realist approach was chosen and how it was adapted."),
    NarrativeSection("environment", "Environment surrounding the evaluation", "introduction", 8,
                     "The setting: organisations, places, policies and events around the programme."),
    NarrativeSection("programme", "The programme evaluated", "introduction", 9,
                     "What the programme is, who delivers it, to whom, and how it changed."),
    NarrativeSection("design", "Evaluation design", "methods", 10,
                     "The design of the evaluation and why it fits the questions; changes made on the way."),
    NarrativeSection("ethics", "Ethical approval", "methods", 6,
                     "Which approvals were needed and obtained (committee, date), or why none was needed."),
    NarrativeSection("data_collection", "Data collection", "methods", 11,
                     "How the data were gathered, beyond the counts the project holds."),
    NarrativeSection("recruitment", "Recruitment and sampling", "methods", 12,
                     "How participants were recruited and sampled, and why."),
    NarrativeSection("analysis", "Data analysis", "methods", 13,
                     "How the data were analysed, beyond the six-step records the project holds."),
    NarrativeSection("findings_summary", "Summary of findings", "discussion", 16,
                     "The main findings in relation to the evaluation questions."),
    NarrativeSection("strengths_limitations", "Strengths, limitations and future research", "discussion", 17,
                     "Strengths and limitations of the evaluation and what future research should address."),
    NarrativeSection("literature", "Comparison with existing literature", "discussion", 18,
                     "How the findings compare with other studies and theories."),
    NarrativeSection("conclusion", "Conclusion", "discussion", 19,
                     "What the evaluation concludes."),
    NarrativeSection("recommendations", "Recommendations", "discussion", 19,
                     "Recommendations for policy, practice and future programmes."),
    NarrativeSection("funding", "Funding and conflicts of interest", "discussion", 20,
                     "Who funded the evaluation and any conflict of interest of the evaluators."),
)
SECTIONS_BY_NAME = {s.name: s for s in NARRATIVE_SECTIONS}
SECTION_NAMES = tuple(s.name for s in NARRATIVE_SECTIONS)

#: A theory's own narrative: section ``theory:KEY`` (e.g. ``theory:T1``), shown in that theory's section of the
#: realist findings, after its description (RAMESES II item 15: the findings with their explanation).
THEORY_PREFIX = "theory:"


def theory_section(key: str) -> NarrativeSection:
    return NarrativeSection(f"{THEORY_PREFIX}{key}", f"Theory {key}", "theory", 15,
                            f"The author's account of theory {key}: what the evidence shows and how to read it.")


def check_section(name: Any, where: str = "narrative") -> NarrativeSection:
    """The section called ``name``; an unknown name is refused with the allowed ones."""
    name = str(name)
    if name.startswith(THEORY_PREFIX) and name[len(THEORY_PREFIX):].strip() == name[len(THEORY_PREFIX):] != "":
        return theory_section(name[len(THEORY_PREFIX):])
    section = SECTIONS_BY_NAME.get(name)
    if section is None:
        raise SpRealistError(f"{where}: unknown section {name!r}; use one of {', '.join(SECTION_NAMES)}, "
                             f"or {THEORY_PREFIX}KEY for a theory (e.g. {THEORY_PREFIX}T1).")
    return section


def _ordered(texts: dict) -> dict:
    """``texts`` in report order: the documented sections, then the theories' (natural key order)."""
    import re

    theories = sorted((n for n in texts if str(n).startswith(THEORY_PREFIX)),
                      key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])
    return {n: texts[n] for n in (*SECTION_NAMES, *theories) if n in texts}


def read_narrative_file(path: str | os.PathLike, where: str | None = None) -> str:
    """The Markdown text of a narrative file (UTF-8, not empty); one clear error otherwise."""
    path = Path(path)
    where = where or str(path)
    if not path.is_file():
        raise SpRealistError(f"{where}: the narrative file {path} does not exist; fix the path.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpRealistError(f"{where}: {path} is not UTF-8 text; save it as UTF-8 Markdown.") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        raise SpRealistError(f"{where}: {path} is empty; write the section's text or leave the section out.")
    return text + "\n"


def check_narrative_mapping(value: Any, folder: Path, where: str) -> dict[str, Path]:
    """A study's ``narrative:`` block (``{section: file}``) -> ``{section: path}``, every file checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpRealistError(f"{where}: must map section names to Markdown files, e.g. "
                             "{summary: narrative/summary.md}.")
    out: dict[str, Path] = {}
    for name, file in value.items():
        check_section(name, where)
        if not isinstance(file, str) or not file.strip():
            raise SpRealistError(f"{where}: section {name} needs a file name (a Markdown file in the study folder).")
        path = folder / file
        try:
            path.resolve().relative_to(folder.resolve())
        except ValueError:
            raise SpRealistError(f"{where}: section {name}: {file} is outside the study folder; keep the narrative "
                                 "files in the study folder.") from None
        read_narrative_file(path, f"{where}: section {name}")
        out[str(name)] = path
    return _ordered(out)


def get_narrative(project: Project) -> dict[str, str]:
    """The stored sections, ``{section: markdown}`` in report order (unknown stored names are ignored)."""
    stored = project.get_setting(NARRATIVE_SETTING) or {}
    if not isinstance(stored, dict):
        return {}
    known = {n: v for n, v in stored.items() if n in SECTIONS_BY_NAME or str(n).startswith(THEORY_PREFIX)}
    return {n: str(v) for n, v in _ordered(known).items() if isinstance(v, str) and v.strip()}


def store_narrative(project: Project, conn, texts: dict[str, str]) -> None:
    """Replace the stored sections by ``texts`` inside the caller's transaction (used by ``build``)."""
    for name in texts:
        check_section(name)
    project.set_setting(NARRATIVE_SETTING, _ordered(texts), conn=conn)


def set_narrative(project: Project, *, section: str, text: str | None = None,
                  path: str | os.PathLike | None = None, actor: str | None = None) -> NarrativeSection:
    """Store one section's Markdown (``text``, or the file ``path``), replacing any earlier text."""
    spec = check_section(section)
    if (text is None) == (path is None):
        raise SpRealistError("narrative: give the section's text or a Markdown file, not both.")
    if path is not None:
        text = read_narrative_file(path)
    elif not str(text).strip():
        raise SpRealistError(f"narrative {section}: the text is empty; write the section or remove it.")
    else:
        text = str(text).replace("\r\n", "\n").strip("\n") + "\n"
    if spec.part == "theory":
        _require_theories(project, [section[len(THEORY_PREFIX):]],
                          lambda key: f"narrative {section}: the project has no theory {key!r}; ",
                          "import the theories first")
    current = _stored(project)
    previous = current.get(section)
    current[section] = text
    with project.begin() as conn:
        project.set_setting(NARRATIVE_SETTING, _ordered(current), conn=conn)
        project.log(conn, "narrative.set", section, actor=actor, words=len(text.split()),
                    replaced=previous is not None, file=str(path) if path is not None else None)
    return spec


def remove_narrative(project: Project, *, section: str, actor: str | None = None) -> bool:
    """Remove one stored section; False when it was not stored."""
    check_section(section)
    current = _stored(project)
    if section not in current:
        return False
    del current[section]
    with project.begin() as conn:
        project.set_setting(NARRATIVE_SETTING, current, conn=conn)
        project.log(conn, "narrative.remove", section, actor=actor)
    return True


def _stored(project: Project) -> dict[str, str]:
    stored = project.get_setting(NARRATIVE_SETTING) or {}
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def narrative_frame(project: Project, *, section: str | None = None, text: bool = True) -> pd.DataFrame:
    """One row per documented section: name, heading, RAMESES item, report section, words, stored text.

    With ``section``, only that section (refused when unknown).
    """
    stored = get_narrative(project)
    names = ([check_section(section).name] if section is not None else
             [*SECTION_NAMES, *(n for n in stored if n.startswith(THEORY_PREFIX))])
    rows = []
    for name in names:
        spec = check_section(name)
        body = stored.get(name)
        row = {"section": name, "heading": spec.heading, "rameses_item": spec.item,
               "report_section": spec.report_section, "stored": body is not None,
               "words": len(body.split()) if body else 0}
        if text:
            row["text"] = body or ""
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class NarrativeBlock:
    """A stored section as a report shows it."""

    name: str
    heading: str
    text: str  # Markdown


def report_narrative(project: Project) -> dict[str, list[NarrativeBlock]]:
    """The stored sections grouped by report part (every part present): ``{part: [NarrativeBlock, ...]}``."""
    stored = get_narrative(project)
    out: dict[str, list[NarrativeBlock]] = {p: [] for p in PARTS}
    for spec in NARRATIVE_SECTIONS:
        if spec.name in stored:
            out[spec.part].append(NarrativeBlock(spec.name, spec.heading, stored[spec.name]))
    return out


def _require_theories(project: Project, keys, problem, none_yet: str) -> None:
    """Refuse the first of ``keys`` that names no theory of the project: ``problem(key)`` then a did-you-mean
    (or the keys there are; ``none_yet`` when there are none)."""
    from sqlalchemy import select

    from .. import schema as S
    from ..errors import did_you_mean

    with project.connect() as conn:
        known = [r[0] for r in conn.execute(select(S.theories.c.key)).all()]
    for key in keys:
        if key not in known:
            raise SpRealistError(problem(key) + did_you_mean(key, known,
                                                             f"use a theory key ({', '.join(known) or none_yet})."))


def check_theory_narratives(project: Project, where: str = "narrative") -> None:
    """Refuse (one sentence) a stored ``theory:KEY`` section whose theory the project does not have."""
    _require_theories(project, theory_narratives(project),
                      lambda key: f"{where}: section {THEORY_PREFIX}{key} names no theory of the project; ",
                      "none yet")


def theory_narratives(project: Project) -> dict[str, str]:
    """The theories' own narrative, ``{theory key: markdown}``."""
    return {n[len(THEORY_PREFIX):]: text for n, text in get_narrative(project).items() if n.startswith(THEORY_PREFIX)}


# --------------------------------------------------------------------------
# Rendering Markdown (markdown-it-py)
# --------------------------------------------------------------------------
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})  # raw HTML in a narrative file is shown as text


def markdown_to_html(text: str, heading_offset: int = 0) -> str:
    """CommonMark -> HTML (raw HTML escaped); headings moved ``heading_offset`` levels down (max h6)."""
    md = _parser()
    tokens = md.parse(text)
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + heading_offset)}"
    return md.renderer.render(tokens, md.options, {})


def shift_markdown_headings(text: str, offset: int) -> str:
    """The Markdown with its ATX/setext headings moved ``offset`` levels down (as ATX, max ######)."""
    if offset <= 0:
        return text
    lines = text.split("\n")
    tokens = _parser().parse(text)
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open" or tok.map is None:
            continue
        start, end = tok.map
        level = min(6, int(tok.tag[1]) + offset)
        content = tokens[i + 1].content if i + 1 < len(tokens) else ""
        lines[start] = "#" * level + " " + content
        for j in range(start + 1, end):  # a setext underline
            lines[j] = None
    return "\n".join(line for line in lines if line is not None)


def markdown_blocks(text: str) -> list[dict]:
    """The Markdown as a flat list of blocks for writers without HTML (Word).

    Each block is ``{"type": "heading"|"paragraph"|"bullet"|"number"|"quote"|"code", "level": int,
    "runs": [(text, bold, italic, code)]}``; lists nest through ``level``.
    """
    tokens = _parser().parse(text)
    blocks: list[dict] = []
    lists: list[str] = []  # bullet | number, innermost last
    quote = 0
    pending: dict | None = None
    for tok in tokens:
        t = tok.type
        if t == "bullet_list_open":
            lists.append("bullet")
        elif t == "ordered_list_open":
            lists.append("number")
        elif t in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif t == "blockquote_open":
            quote += 1
        elif t == "blockquote_close":
            quote -= 1
        elif t == "heading_open":
            pending = {"type": "heading", "level": int(tok.tag[1])}
        elif t == "paragraph_open":
            if lists:
                pending = {"type": lists[-1], "level": len(lists)}
            else:
                pending = {"type": "quote" if quote else "paragraph", "level": 0}
        elif t == "inline" and pending is not None:
            pending["runs"] = _runs(tok.children or [])
            blocks.append(pending)
            pending = None
        elif t in ("code_block", "fence"):
            blocks.append({"type": "code", "level": 0, "runs": [(tok.content.rstrip("\n"), False, False, True)]})
    return blocks


def _runs(children) -> list[tuple[str, bool, bool, bool]]:
    runs: list[tuple[str, bool, bool, bool]] = []
    bold = italic = 0
    for c in children:
        if c.type == "strong_open":
            bold += 1
        elif c.type == "strong_close":
            bold -= 1
        elif c.type == "em_open":
            italic += 1
        elif c.type == "em_close":
            italic -= 1
        elif c.type == "text" and c.content:
            runs.append((c.content, bold > 0, italic > 0, False))
        elif c.type == "code_inline":
            runs.append((c.content, bold > 0, italic > 0, True))
        elif c.type == "softbreak":
            runs.append((" ", bold > 0, italic > 0, False))
        elif c.type == "hardbreak":
            runs.append(("\n", bold > 0, italic > 0, False))
        elif c.type == "image":
            runs.append((c.content or "", bold > 0, italic > 0, False))
        elif c.type == "html_inline":  # not produced with html disabled; kept as text if it ever is
            runs.append((c.content, bold > 0, italic > 0, False))
    return runs


__all__ = [
    "NARRATIVE_SETTING", "NARRATIVE_SECTIONS", "SECTION_NAMES", "SECTIONS_BY_NAME", "NarrativeSection", "PARTS",
    "check_section", "read_narrative_file", "check_narrative_mapping", "get_narrative", "store_narrative",
    "set_narrative", "remove_narrative", "narrative_frame", "report_narrative", "NarrativeBlock", "markdown_to_html",
    "shift_markdown_headings", "markdown_blocks",
]

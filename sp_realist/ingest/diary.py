"""Reflective diaries in Driscoll's "What? / So what? / Now what?" template.

The template (appendix of the Mind Cymru evaluation report) opens each entry
with header lines::

    Reflective Diary Date of diary insert: 14/05/2019
    Participant code: S1 DK1    Surgery code: S1 GP2

followed by three sections.  Their headings are recognised whatever their
style: ``What?``, ``WHAT``, ``So What:``, ``Now what? Modifying future
outcomes``, ``## What?: Returning to the situation``, a bold paragraph, a Word
heading, or the first cell of a table row (or the header row of a table with
one column per section).  A plain-text line counts as a heading when it is
only the heading word(s), or the heading word(s) with punctuation and one of
the template's subtitles; a styled line (Markdown ``#``/bold, Word heading or
bold paragraph, table label) may carry any short subtitle.

One file may hold many entries.  An entry starts at each "Date of diary
insert" line (taking in a "Reflective diary" title line or participant-code
line just before it); without date lines, at each "Reflective diary" title;
without either, at each "What?" heading that follows a "So what?" / "Now
what?" section.  Text before the first entry (instructions, a cover note)
belongs to the first entry's preamble: nothing is dropped.

Each entry's segments: the preamble (header lines and anything before the
first heading, ``kind="preamble"``), then for each section its heading
(``kind="heading"``) and its text (``kind="section"``), both with
``section`` set to the canonical ``"What?"``, ``"So what?"`` or ``"Now what?"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import IngestError
from ..sources import Segment
from .base import Block, Cut, Document, clean_label, parse_date, tile
from .text import segment_paragraphs, strip_markup

SECTIONS = ("What?", "So what?", "Now what?")
_CANON = {"what": "What?", "so what": "So what?", "now what": "Now what?"}

HEADING_RE = re.compile(
    r"^(?P<key>so[ \t]+what|now[ \t]+what|what)\b(?P<punct>[ \t]*[?:.!\-\u2013\u2014]+)?[ \t]*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
SUBTITLE_RE = re.compile(
    r"^(?:returning\s+to\s+the\s+situation|understanding\s+the\s+context|modifying\s+future\s+outcomes)\W*$",
    re.IGNORECASE,
)
DIARY_DATE_RE = re.compile(r"date\s+of\s+(?:the\s+)?diary\s+(?:insert|entry)", re.IGNORECASE)
ENTRY_DATE_RE = re.compile(
    r"date\s+of\s+(?:the\s+)?(?:diary\s+)?(?:insert|entry)\s*[:\-]?[ \t]*"
    r"(?P<value>.*?)(?=\t| {2,}|participant\s+code|surgery\s+code|\n|$)",
    re.IGNORECASE,
)
TITLE_RE = re.compile(r"^[\W_]*reflective\s+diary\b", re.IGNORECASE)
#: A header line that is only a date: "Date: 14/05/2019", "Entry date - 14 May 2019", "Week of: 20/05/2019".
PLAIN_DATE_RE = re.compile(
    r"^[\W_]*(?:entry\s+date|date(?:\s+of\s+(?:the\s+)?(?:diary\s+)?(?:insert|entry|reflection))?|week\s+of)"
    r"[ \t]*[:\-\u2013][ \t]*(?P<value>[^\n]{4,40}?)[\s*_]*$",
    re.IGNORECASE,
)
_TITLE_LINE_RE = re.compile(r"^[^\S\n]*[^\w\n]*reflective\s+diary\b", re.IGNORECASE | re.MULTILINE)
_WHAT_FAST = re.compile(r"what", re.IGNORECASE)
PCODE_RE = re.compile(
    r"participant\s+code\s*[:\-]?[ \t]*(?P<value>.*?)(?=\t| {2,}|surgery\s+code|date\s+of|\n|$)", re.IGNORECASE)
SURGERY_RE = re.compile(
    r"surgery\s+code\s*[:\-]?[ \t]*(?P<value>.*?)(?=\t| {2,}|participant\s+code|date\s+of|\n|$)", re.IGNORECASE)


@dataclass
class Entry:
    """One diary entry: ``doc.text[start:end]`` with segments relative to ``start``."""

    index: int  # 0-based position in its file
    start: int
    end: int
    text: str
    segments: list[Segment]
    date: str | None = None
    participant_code: str | None = None
    surgery_code: str | None = None
    sections: list[str] = field(default_factory=list)


def heading_section(block: Block) -> str | None:
    """The canonical section ("What?", "So what?", "Now what?") a block heads, or ``None``."""
    if len(block.text) > 160 or not _WHAT_FAST.search(block.text):
        return None
    t = strip_markup(block.text)
    m = HEADING_RE.match(t)
    if not m:
        return None
    key = _CANON[" ".join(m.group("key").lower().split())]
    rest = m.group("rest").strip(" \t:-\u2013\u2014")
    if not rest:
        return key
    if not m.group("punct"):
        return None
    if block.style in ("heading", "bold", "label") and len(rest) <= 80:
        return key
    if SUBTITLE_RE.match(rest):
        return key
    return None


def inline_heading(block: Block, text: str) -> tuple[str, int] | None:
    """``(section, body_start)`` when a block opens with a bold heading label
    followed by text on the same line ("**What?** I arrived...")."""
    if block.label_end is None:
        return None
    label = text[block.start:block.label_end]
    sec = heading_section(Block(block.start, block.label_end, label, style="bold"))
    if not sec:
        return None
    body = block.label_end
    while body < block.end and text[body] in " \t":
        body += 1
    return (sec, body) if body < block.end else None


#: The two template tests above without IGNORECASE, for text lower-cased by :func:`_folded`.
_DIARY_DATE_LC = re.compile(DIARY_DATE_RE.pattern)
_TITLE_LINE_LC = re.compile(_TITLE_LINE_RE.pattern, re.MULTILINE)


def _folded(text: str) -> str | None:
    """``text.lower()`` when searching it case-sensitively for a lower-case ASCII pattern finds exactly what a
    case-insensitive search of ``text`` finds (a literal search is many times faster), else ``None``: when
    lower-casing would change a non-ASCII character, or the text holds dotless i or long s, which
    ``re.IGNORECASE`` takes for "i" and "s"."""
    if not text.isascii():
        for ch in set(text):
            if ch > "\x7f" and (ch.lower() != ch or ch in "\u0131\u017f"):
                return None
    return text.lower()


def _template_line(text: str) -> bool:
    """True when ``text`` holds the diary template's date field or title line."""
    low = _folded(text)
    if low is None:
        return bool(DIARY_DATE_RE.search(text) or _TITLE_LINE_RE.search(text))
    if _DIARY_DATE_LC.search(low):
        return True
    at = low.find("reflective")
    while at >= 0:  # the title line: only lines holding the word can match
        if _TITLE_LINE_LC.match(low, low.rfind("\n", 0, at) + 1):
            return True
        at = low.find("reflective", at + 1)
    return False


def looks_like_diary(doc: Document) -> bool:
    """True when the document follows the reflective-diary template."""
    if _template_line(doc.text):
        return True
    low = _folded(doc.text)
    if low is not None and "what" not in low:
        return False  # every section heading says "what" (found case-insensitively, as heading_section does)
    found = set()
    for b in doc.blocks:
        sec = heading_section(b) or (inline_heading(b, doc.text) or (None,))[0]
        if sec:
            found.add(sec)
    return "What?" in found and len(found) >= 2


def _value(m: re.Match | None) -> str | None:
    if not m:
        return None
    v = strip_markup(m.group("value"))
    v = v.strip(" \t:;,-_.[]()")
    return clean_label(v) or None


def plain_date(text: str) -> str | None:
    """The ISO date of a line that is only a date field ("Date: 14/05/2019"), else ``None``."""
    if len(text) > 60:
        return None
    m = PLAIN_DATE_RE.match(text)
    if not m:
        return None
    try:
        return parse_date(strip_markup(m.group("value")))
    except IngestError:
        return None


def entry_starts(doc: Document) -> list[int]:
    """Block indices where entries start."""
    blocks = doc.blocks
    dated = [i for i, b in enumerate(blocks) if DIARY_DATE_RE.search(b.text)]
    if not dated:  # no template date lines: plain "Date: 14/05/2019" lines, outside the sections' headings
        dated = [i for i, b in enumerate(blocks) if heading_section(b) is None and plain_date(b.text)]
    if dated:
        date_line = set(dated)
        starts = []
        for i in dated:
            j = i
            floor = starts[-1] + 1 if starts else 0
            while j - 1 >= floor and i - (j - 1) <= 2 and (j - 1) not in date_line \
                    and (TITLE_RE.match(blocks[j - 1].text) or PCODE_RE.search(blocks[j - 1].text)) \
                    and heading_section(blocks[j - 1]) is None:
                j -= 1
            starts.append(j)
        return starts
    titled = [i for i, b in enumerate(blocks) if TITLE_RE.match(b.text)]
    if titled:
        return titled
    starts = []
    seen: set[str] = set()
    for i, b in enumerate(blocks):
        sec = heading_section(b) or (inline_heading(b, doc.text) or (None,))[0]
        if sec == "What?" and (not starts or seen & {"So what?", "Now what?"}):
            starts.append(i)
            seen = set()
        if sec:
            seen.add(sec)
    return starts or [0]


def split_entries(doc: Document, name: str = "diary") -> list[Entry]:
    """The entries of a diary file, each with its header fields and segments."""
    if not doc.blocks:
        return []
    starts = entry_starts(doc)
    positions = [doc.blocks[i].start for i in starts]
    positions[0] = 0  # text before the first entry belongs to it
    bounds = list(zip(positions, positions[1:] + [len(doc.text)]))
    return [parse_entry(doc, s, e, k, name) for k, (s, e) in enumerate(bounds)]


def parse_entry(doc: Document, start: int, end: int, index: int, name: str = "diary") -> Entry:
    blocks = [b for b in doc.blocks if start <= b.start < end]
    where = f"{name}, entry {index + 1}"
    inline = {id(b): inline_heading(b, doc.text) for b in blocks if b.label_end is not None}
    heads = [(b, heading_section(b) or (inline.get(id(b)) or (None,))[0]) for b in blocks]
    first_head = next((k for k, (_b, s) in enumerate(heads) if s), len(heads))
    header = blocks[:first_head] if first_head else blocks[:3]
    date = pcode = surgery = None
    for b in header:
        if date is None:
            m = ENTRY_DATE_RE.search(b.text)
            if m:
                date = parse_date(_value(m) or "", where)
        if pcode is None:
            pcode = _value(PCODE_RE.search(b.text))
        if surgery is None:
            surgery = _value(SURGERY_RE.search(b.text))
    if date is None:  # "Date: 14/05/2019"
        date = next((d for d in (plain_date(b.text) for b in header) if d), None)
    if date is None and header:
        # "Reflective Diary 14/05/2019" without the "Date of diary insert" words
        for b in header:
            if TITLE_RE.match(b.text):
                try:
                    date = parse_date(TITLE_RE.sub("", b.text), where)
                except IngestError:
                    date = None
                if date:
                    break
    cuts: list[Cut] = []
    sections: list[str] = []
    for k, (b, sec) in enumerate(heads):
        if not sec:
            continue
        sections.append(sec)
        cuts.append(Cut(b.start, "heading", section=sec))
        if inline.get(id(b)) and not heading_section(b):
            cuts.append(Cut(inline[id(b)][1], "section", section=sec))
            continue
        nxt = heads[k + 1][0] if k + 1 < len(heads) else None
        if nxt is not None and heads[k + 1][1] is None:
            cuts.append(Cut(nxt.start, "section", section=sec))
    if cuts:
        segments = tile(doc.text, cuts, start, end, lead_kind="preamble")
    else:
        segments = segment_paragraphs(doc, start, end)
    return Entry(index=index, start=start, end=end, text=doc.text[start:end], segments=segments, date=date,
                 participant_code=pcode, surgery_code=surgery, sections=sections)

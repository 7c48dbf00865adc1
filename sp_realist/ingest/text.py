"""Plain-text and Markdown transcripts (``.txt``, ``.md``), and the segmenters
shared with Word documents.

Speaker turns are lines that start with a label and a colon::

    Interviewer: How did the referral reach you?
    S1 LW1: Mostly by fax, believe it or not.
    [00:12:03] Sarah: And then...
    **P3:** Markdown bold labels work too.

or, as Microsoft Teams and Otter write transcripts, a line with only the
speaker and a time, the words on the following lines::

    Sarah Jones   0:03
    How did the referral reach you?

A label counts as a speaker when it occurs at least twice as a label in the
file, or is a role or participant code (``Interviewer``, ``Link worker``,
``GP``, ``Q``, ``P3``, ``R1``, ``S1 LW1``), or follows a bracketed timestamp
(``[00:12:03] Sarah:``), or is in the speaker map or a participant code of the
project; and every label counts when the file is consistently written as
``Label:`` lines (at least two of them, and at least 60% of its non-blank
lines start with one), however few times each occurs.  Header words
(``Note:``, ``Date:``...) never count, so prose that merely holds a colon stays
prose.  Lines without a label continue the current turn.  Text before the first turn is kept as preamble paragraphs.
A file with fewer than two speaker turns is split into paragraphs (blank
lines separate paragraphs; Markdown ``#`` headings become heading segments
and label the paragraphs under them with ``section``).

The stored text is the file's text exactly (after decoding, with line endings
normalised to ``\\n``): labels, timestamps and Markdown marks stay in it, so
every quote a coder sees is what the file says.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from ..sources import Segment
from .base import Block, Cut, Document, clean_label, decode_bytes, line_blocks, tile

_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+\S")
_MD_BOLD_LINE = re.compile(r"^[ \t]*(\*\*|__)(?=\S)(.+?)(?<=\S)\1[ \t]*[:.]?[ \t]*$")
_MD_BOLD_LABEL = re.compile(r"^[ \t]*(\*\*|__)(?=\S)(.{1,80}?)(?<=\S)\1[:.]?(?=[ \t]+\S)")
_MD_MARKS = ("#", "*", "_")

TURN_RE = re.compile(
    r"^[ \t]*(?:[-*>][ \t]+)?"
    r"(?:[\[(](?P<ts>\d{1,2}(?::\d{2}){1,2}(?:[.,]\d+)?)[\])][ \t]*|(?P<ts2>\d{1,2}:\d{2}:\d{2})[ \t]+)?"
    r"(?:\*\*|__)?"
    r"(?P<label>[^\W\d_][\w'\u2019.\-]*(?:[ \t]+[\w'\u2019.\-()]+){0,3}?)"
    r"[ \t]*(?:\*\*|__)?[ \t]*:(?:\*\*|__)?(?=[ \t]|$)"
)

#: Teams/Otter style: the speaker and a time alone on a line, the words on the next lines
#: ("Sarah Jones   0:03" or "Speaker 1  00:01:12").
TIMED_LABEL_RE = re.compile(
    r"^[ \t]*(?P<label>[^\W\d_][\w'\u2019.\-]*(?:[ \t]+[\w'\u2019.\-()]+){0,4}?)[ \t]+"
    r"(?P<ts>\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)[ \t]*$"
)

#: Labels that are roles or codes, accepted as speakers even when they occur once.
ROLE_RE = re.compile(
    r"^(?:interviewer|interviewee|facilitator|co-?facilitator|moderator|researcher|evaluator|respondent|"
    r"participant|speaker|link ?worker|lw|social prescriber|community connector|connector|navigator|"
    r"co-?ordinator|coordinator|gp|doctor|nurse|clinician|practice manager|manager|receptionist|"
    r"carer|client|patient|service user|volunteer|commissioner|staff(?: member)?|"
    r"int|iv|i|r|q|a)(?: ?\d+)?$"
    r"|^(?:p ?\d+|[A-Z]{1,3} ?\d+|S\d+ ?[A-Z]{1,4}\d+)$",
    re.IGNORECASE,
)
#: Share of a file's non-blank lines that must start with "Label:" for every label to count as a speaker.
CONSISTENT_SHARE = 0.6
#: Labels that are never speakers (header fields of transcripts and diaries).
STOP_LABELS = frozenset((
    "date", "time", "location", "place", "venue", "note", "notes", "comment", "comments", "title", "subject",
    "duration", "attendees", "present", "transcript", "recording", "file", "project", "site", "surgery code",
    "participant code", "date of interview", "interview date", "reflective diary", "date of diary insert",
    "re", "cc", "to", "from", "interview", "focus group", "meeting", "minutes",
    # field-note and minutes headings: "Observed: ...", "Actions: ..." are not people
    "observed", "observation", "observations", "action", "actions", "next steps", "summary", "background",
    "purpose", "aim", "aims", "agenda", "reflection", "reflections", "key points", "issues", "outcome",
    "outcomes", "follow up", "follow-up", "context", "setting", "topic", "question", "answer", "ps", "nb",
))

#: Interviewer-like labels (never mapped to the interviewee given with --participant).
INTERVIEWER_RE = re.compile(r"^(?:interviewer|int|iv|i|q|facilitator|moderator|researcher|evaluator)(?: ?\d+)?$",
                            re.IGNORECASE)
#: A label that is itself a participant code, e.g. "S1 LW1", "S3 DK2".
CODE_RE = re.compile(r"^S\d+ ?[A-Z]{1,4}\d+$")


def read(data: bytes, name: str, fmt: str = "txt") -> Document:
    """Decode a ``.txt`` / ``.md`` file into a :class:`Document` of line blocks."""
    text, _encoding = decode_bytes(data, name)
    return from_text(text, fmt)


def from_text(text: str, fmt: str = "txt") -> Document:
    blocks = line_blocks(text)
    for b in blocks:
        if b.text.lstrip(" \t")[:1] not in _MD_MARKS:
            continue  # each of the three patterns opens with one of these after spaces and tabs
        m = _MD_HEADING.match(b.text)
        if m:
            b.style, b.level, b.para_start = "heading", len(m.group(1)), True
        elif _MD_BOLD_LINE.match(b.text):
            b.style, b.para_start = "bold", True
        else:
            m = _MD_BOLD_LABEL.match(b.text)
            if m:
                b.label_end = b.start + m.end()
    return Document(text=text, blocks=blocks, format=fmt)


def strip_markup(text: str) -> str:
    """A heading's words without Markdown marks, bullets or numbering."""
    t = text.strip()
    t = re.sub(r"^#{1,6}[ \t]+", "", t)
    t = re.sub(r"^(?:[-*>•][ \t]+|\d{1,2}[.)][ \t]+)", "", t)
    t = t.replace("**", "").replace("__", "")
    t = re.sub(r"^[*_]+|[*_]+$", "", t.strip())
    return clean_label(t)


def turn_label(block: Block, labels: dict[str, str | None] | None = None) -> tuple[str, float | None] | None:
    """``(label, seconds)`` when the block starts with ``Label:``; else ``None``. ``labels``: a dict the caller
    keeps for one document, remembering what each raw label cleans to (a transcript repeats a few labels
    thousands of times)."""
    if block.speaker:
        return block.speaker, block.time
    m = TURN_RE.match(block.text) or TIMED_LABEL_RE.match(block.text)
    if not m:
        return None
    raw = m.group("label")
    if labels is not None and raw in labels:
        label = labels[raw]
    else:
        label = _speaker_label(raw)
        if labels is not None:
            labels[raw] = label
    if label is None:
        return None
    ts = m.group("ts") or (m.group("ts2") if m.re is TURN_RE else None)
    return label, (to_seconds(ts) if ts else None)


def _speaker_label(raw: str) -> str | None:
    """The speaker a raw ``Label`` names, or None when it cannot be one (too long, not capitalised and no
    role, a heading word such as "Date")."""
    label = clean_label(raw).rstrip(".")
    if not label or len(label) > 40 or not (label[0].isupper() or ROLE_RE.match(label)):
        return None
    if label.lower() in STOP_LABELS:
        return None
    return label


def to_seconds(ts: str) -> float:
    parts = ts.replace(",", ".").split(":")
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    return total


def map_speakers(speakers: Iterable[str], speaker_map: Mapping[str, str] | None = None,
                 known_codes: Iterable[str] = (), participant: str | None = None) -> dict[str, str]:
    """speaker label -> participant code.

    A label maps when it is in ``speaker_map`` (case-insensitive), is itself a
    participant code (``S1 LW1``) or a code already in the project.  When
    ``participant`` is given and exactly one speaker is neither an interviewer
    nor mapped otherwise, that speaker is the participant.
    """
    smap = {clean_label(k).lower(): clean_label(v) for k, v in (speaker_map or {}).items()}
    known = {clean_label(c).lower(): clean_label(c) for c in known_codes}
    out: dict[str, str] = {}
    unmapped = []
    for sp in dict.fromkeys(speakers):
        key = sp.lower()
        if key in smap:
            out[sp] = smap[key]
        elif CODE_RE.match(sp):
            out[sp] = sp
        elif key in known:
            out[sp] = known[key]
        elif not INTERVIEWER_RE.match(sp):
            unmapped.append(sp)
    if participant and len(unmapped) == 1:
        out[unmapped[0]] = clean_label(participant)
    return out


def _stamped(block: Block) -> bool:
    """``[00:12:03] Name:``: a bracketed timestamp before a label marks a turn even if the name occurs once."""
    m = TURN_RE.match(block.text)
    return bool(m and m.group("ts"))


def segment_transcript(doc: Document, speaker_map: Mapping[str, str] | None = None,
                       known_codes: Iterable[str] = (), participant: str | None = None,
                       start: int = 0, end: int | None = None) -> list[Segment] | None:
    """Speaker-turn segments of ``doc`` (or of ``doc.text[start:end]``), or
    ``None`` when it is not a transcript (fewer than two speaker turns)."""
    end = len(doc.text) if end is None else end
    blocks = [b for b in doc.blocks if start <= b.start < end]
    labels: dict[str, str | None] = {}
    found = [(b, turn_label(b, labels)) for b in blocks]
    counts: dict[str, int] = {}
    for _b, lab in found:
        if lab:
            counts[lab[0]] = counts.get(lab[0], 0) + 1
    smap_keys = {clean_label(k).lower() for k in (speaker_map or {})}
    known = {clean_label(c).lower() for c in known_codes}

    def strict(label: str, block: Block) -> bool:
        return bool(block.speaker) or counts[label] >= 2 or bool(ROLE_RE.match(label)) \
            or label.lower() in smap_keys or label.lower() in known or _stamped(block)

    # A file written consistently as "Label:" lines: every label is a speaker, however rare, from the
    # first line a stricter rule recognises on (a "Label:" line above it is the file's header).
    n_lines = sum(1 for b in blocks if b.style != "heading" and b.text and not b.text.isspace())
    labelled = sum(1 for b, lab in found if lab and b.style != "heading")
    consistent = labelled >= 2 and labelled >= CONSISTENT_SHARE * n_lines
    first = next((i for i, (b, lab) in enumerate(found) if lab and strict(lab[0], b)), 0)
    # which blocks open a turn (by position in ``found``)
    is_turn = [bool(lab) and (strict(lab[0], b) or (consistent and i >= first)) for i, (b, lab) in enumerate(found)]
    turns = [lab for (_b, lab), t in zip(found, is_turn) if t]
    if len(turns) < 2 and not (doc.transcript and turns):
        return None
    mapping = map_speakers([lab[0] for lab in turns], speaker_map, known_codes, participant)
    cuts: list[Cut] = []
    section = None
    in_turn = started = False
    for (b, lab), turn in zip(found, is_turn):
        if turn:
            sp, ts = lab
            cuts.append(Cut(b.start, "turn", speaker=sp, section=section, start_time=ts,
                            participant_code=mapping.get(sp)))
            in_turn = started = True
        elif b.style == "heading":
            # the document's opening heading is its title, not a section
            section = None if b is doc.blocks[0] else (strip_markup(b.text) or None)
            cuts.append(Cut(b.start, "heading", section=section))
            in_turn, started = False, True
        elif b.para_start and not in_turn:
            cuts.append(Cut(b.start, "paragraph" if started else "preamble", section=section))
    return tile(doc.text, cuts, start, end, lead_kind="preamble")


def segment_paragraphs(doc: Document, start: int = 0, end: int | None = None,
                       section: str | None = None) -> list[Segment]:
    """Paragraph segments (headings as their own segments) of ``doc.text[start:end]``."""
    end = len(doc.text) if end is None else end
    cuts: list[Cut] = []
    for b in doc.blocks:
        if not (start <= b.start < end):
            continue
        if b.style == "heading":
            section = None if b is doc.blocks[0] else (strip_markup(b.text) or None)
            cuts.append(Cut(b.start, "heading", section=section))
        elif b.para_start:
            cuts.append(Cut(b.start, "paragraph", section=section))
    return tile(doc.text, cuts, start, end, lead_kind="paragraph")

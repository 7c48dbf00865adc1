"""Pieces shared by the ingest readers: decoding, blocks, tiling, dates.

A reader turns a file's bytes into a :class:`Document`: the plain text that
will be stored (``sources.text``) and a list of :class:`Block` s, the
paragraphs or lines of that text with what the reader knows about their
style (a Word heading, a bold paragraph, a Markdown ``#`` line, a preset
speaker from a Word speaker table).  Segmenters (:mod:`.text`,
:mod:`.diary`) then choose *cut points* in the text and :func:`tile` turns
them into segments that cover the text exactly, with no gaps and no overlap.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import Iterable

from ..errors import IngestError
from ..sources import Segment


@dataclass(slots=True)
class Block:
    """A paragraph (Word) or line (text) of a document: ``doc.text[start:end]``.

    ``end`` excludes the newline that follows the block.
    """

    start: int
    end: int
    text: str
    style: str = "body"  # body | heading | bold | label (a table cell used as a label)
    level: int = 0  # heading level when style == "heading"
    para_start: bool = True  # does a new paragraph start here?
    speaker: str | None = None  # preset by the reader (Word "speaker | text" tables)
    speaker_end: int | None = None  # where the speaker label ends (absolute offset), if known
    time: float | None = None  # seconds, when the reader knows a timestamp
    label_end: int | None = None  # end (absolute) of a bold label opening the block, e.g. "**What?** I went..."


@dataclass
class Document:
    """What a reader produces: the text to store and its blocks."""

    text: str
    blocks: list[Block]
    format: str
    segments: list[Segment] | None = None  # readers that segment themselves (captions)
    transcript: bool = False  # the reader knows this is a transcript (speaker table, captions)

    def words(self) -> int:
        return len(self.text.split())


# --- decoding ----------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_MAGIC = (
    (b"PK\x03\x04", "a zip archive (a Word .docx or other Office file?)"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old binary Office document (.doc); save it as .docx"),
    (b"{\\rtf", "an RTF document; save it as .docx or .txt"),
)

# Control characters that never occur in a real text file (tab, LF, CR, FF are allowed).
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
#: Every byte but those control characters.  In UTF-8 and Windows-1252 a byte below 0x80 is always that
#: character, so deleting these bytes leaves exactly the control characters of the decoded text (a C loop
#: over the bytes, about 20x faster than the regular expression over the text).
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if not _BAD_CONTROL.match(chr(b)))


def _has_bad_control(text: str, data: bytes, encoding: str) -> bool:
    if encoding in ("utf-8", "utf-8-sig", "cp1252"):
        return bool(data.translate(None, _NOT_CONTROL_BYTES))
    return _BAD_CONTROL.search(text) is not None


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode a text file: BOM (UTF-8/16/32), else UTF-8, else cp1252.

    Returns ``(text, encoding)``.  Line endings are normalised to ``\\n`` and
    the BOM removed; nothing else is changed.  Raises :class:`IngestError`
    for empty, binary or undecodable files.
    """
    if not data.strip():
        raise IngestError(f"{name}: the file is empty; check that it was saved with its content.")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise IngestError(f"{name}: the file is {what}, not plain text; give it the right extension or convert it.")
    text = encoding = None
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(enc), enc
            except UnicodeDecodeError:
                raise IngestError(
                    f"{name}: the file starts with a {enc} byte-order mark but is not valid {enc}; re-save it as UTF-8."
                ) from None
            break
    if text is None:
        for enc in ("utf-8", "cp1252"):
            try:
                text, encoding = data.decode(enc), enc
                break
            except UnicodeDecodeError:
                continue
    if text is None or _has_bad_control(text, data, encoding):
        raise IngestError(
            f"{name}: the file is not readable text (binary data, or an encoding other than UTF-8, UTF-16 "
            "with a byte-order mark or Windows-1252); re-save it as UTF-8 text."
        )
    text = normalise_newlines(text)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise IngestError(f"{name}: the file holds no text; check that it was saved with its content.")
    return text, encoding


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- blocks and tiling -------------------------------------------------------

def line_blocks(text: str) -> list[Block]:
    """One block per non-blank line; ``para_start`` after a blank line."""
    blocks = []
    append = blocks.append
    pos = 0
    blank_before = True
    for line in text.split("\n"):
        n = len(line)
        if line and not line.isspace():  # what line.strip() keeps something of, without the copy
            append(Block(pos, pos + n, line, "body", 0, blank_before))
            blank_before = False
        else:
            blank_before = True
        pos += n + 1
    return blocks


@dataclass(slots=True)
class Cut:
    """A segment starts at ``pos`` (absolute offset) with these attributes."""

    pos: int
    kind: str = "paragraph"
    speaker: str | None = None
    section: str | None = None
    start_time: float | None = None
    participant_code: str | None = None


def tile(text: str, cuts: Iterable[Cut], start: int = 0, end: int | None = None,
         lead_kind: str = "preamble", offset: int | None = None) -> list[Segment]:
    """Segments covering ``text[start:end]`` exactly, one per cut.

    Text before the first cut becomes a ``lead_kind`` segment unless it is only
    white space, which joins the first segment.  Cuts at the same position: the
    first wins.  Offsets of the returned segments are relative to ``offset``
    (default ``start``).
    """
    end = len(text) if end is None else end
    base = start if offset is None else offset
    unique: list[Cut] = []
    for c in sorted((c for c in cuts if start <= c.pos < end), key=attrgetter("pos")):
        if not unique or unique[-1].pos != c.pos:
            unique.append(c)
    if end <= start:
        return []
    if not unique:
        return [Segment(start - base, end - base, kind=lead_kind)]
    segs: list[Segment] = []
    lead = unique[0].pos > start
    if lead and text[start:unique[0].pos].strip():
        segs.append(Segment(start - base, unique[0].pos - base, kind=lead_kind))
        lead = False
    for i, c in enumerate(unique):
        stop = unique[i + 1].pos if i + 1 < len(unique) else end
        seg_start = start if (i == 0 and lead) else c.pos
        segs.append(Segment(seg_start - base, stop - base, kind=c.kind, speaker=c.speaker, section=c.section,
                            start_time=c.start_time, participant_code=c.participant_code))
    return segs


# --- dates ---------------------------------------------------------------------

_MONTHS = {m.lower(): i for i, m in enumerate(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December"], start=1)}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_MONTHS["sept"] = 9

_DMY = re.compile(r"\b(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2,4})\b")
_YMD = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_D_MON_Y = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\.?,?\s+(\d{4})\b")
_MON_D_Y = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")


def parse_date(value: str, where: str = "date") -> str | None:
    """An ISO date (``YYYY-MM-DD``) from a UK-style date, or ``None`` if there is none.

    Accepts ``14/05/2019`` (day first), ``14.05.19``, ``2019-05-14``,
    ``14 May 2019``, ``14th of May 2019`` and ``May 14, 2019``.  A value with
    digits that is not a valid date raises :class:`IngestError` rather than
    being guessed.
    """
    value = (value or "").strip()
    if not value or not re.search(r"\d", value):
        return None
    m = _YMD.search(value)
    if m:
        y, mo, d = (int(x) for x in m.groups())
        return _make_date(y, mo, d, value, where)
    m = _DMY.search(value)
    if m:
        d, mo, y = (int(x) for x in m.groups())
        if y < 100:
            y += 2000
        return _make_date(y, mo, d, value, where)
    m = _D_MON_Y.search(value)
    if m and m.group(2).lower() in _MONTHS:
        return _make_date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)), value, where)
    m = _MON_D_Y.search(value)
    if m and m.group(1).lower() in _MONTHS:
        return _make_date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)), value, where)
    if re.fullmatch(r"[\s./\-_]*", re.sub(r"\d", "", value)) and len(re.sub(r"\D", "", value)) < 4:
        return None  # a half-filled template such as "..../..../"
    raise IngestError(f"{where}: {value!r} is not a date sp_realist can read; write it as dd/mm/yyyy.")


def _make_date(y: int, mo: int, d: int, raw: str, where: str) -> str:
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        raise IngestError(f"{where}: {raw!r} is not a valid day/month/year date; correct it in the file.") from None


def clean_label(text: str) -> str:
    """Collapse white space (labels, participant codes)."""
    if text.isascii():  # NFC leaves ASCII as it is
        return " ".join(text.split())
    return " ".join(unicodedata.normalize("NFC", text).split())


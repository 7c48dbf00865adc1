"""Word documents (``.docx``), read with python-docx.

The stored text is the document body in reading order: each paragraph
followed by a newline (empty paragraphs give blank lines), tables in place.
What python-docx knows about each paragraph is kept for the segmenters: Word
``Heading N``/``Title`` styles, and bold paragraphs (every run with text is
bold), which diaries use as section headings.

Tables:

* a two-column table whose first column holds speaker labels (short labels
  that repeat, or roles/codes such as ``Interviewer``, ``P3``, ``S1 LW1``;
  an optional ``Speaker | Text`` header row) is a transcript: each row
  becomes the line ``Speaker: text`` and one speaker turn;
* a table whose rows start with a Driscoll heading (``What?`` | text) or whose
  header row is the three Driscoll headings (one column per section) becomes
  heading + text blocks, so table-form diaries segment like the others;
* any other table: one line per row, cells separated by a tab.

Headers, footers, footnotes, comments and text boxes are not read.
"""

from __future__ import annotations

import io
import re
import zipfile

from ..errors import IngestError
from .base import Block, Document, clean_label
from .diary import heading_section
from .text import ROLE_RE

_HEADER_WORDS = {"speaker", "name", "who", "person", "participant"}


def read(data: bytes, name: str) -> Document:
    """Read a ``.docx`` file's body into a :class:`Document`."""
    if not data:
        raise IngestError(f"{name}: the file is empty; check that it was saved with its content.")
    buf = io.BytesIO(data)
    if not zipfile.is_zipfile(buf):
        raise IngestError(f"{name}: the file is not a Word .docx document (it is not a zip archive); "
                          "open it in Word and save it as .docx.")
    try:
        with zipfile.ZipFile(buf) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        raise IngestError(f"{name}: the zip archive is damaged; re-save the document in Word.") from None
    if "word/document.xml" not in names:
        raise IngestError(f"{name}: the file is a zip archive but not a Word document (no word/document.xml); "
                          "check that it is the right file.")
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        items = list(iter_blocks(document.element.body, document._body))
    except Exception as exc:  # python-docx raises many types on damaged files
        raise IngestError(f"{name}: the Word document could not be read ({exc}); open it in Word and re-save it.") from None
    builder = _Builder()
    for item in items:
        if isinstance(item, Paragraph):
            builder.paragraph(item)
        elif isinstance(item, Table):
            builder.table(item)
    text = "".join(builder.parts)
    if not text.strip():
        raise IngestError(f"{name}: the Word document holds no text; check that it is the right file.")
    return Document(text=text, blocks=builder.blocks, format="docx", transcript=builder.transcript)


def iter_blocks(element, parent):
    """Paragraphs and tables of a body or cell in reading order, including those
    inside block-level content controls (``w:sdt``), which python-docx skips."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in element.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, parent)
        elif child.tag == qn("w:tbl"):
            yield Table(child, parent)
        elif child.tag in (qn("w:sdt"), qn("w:customXml")):
            content = child.find(qn("w:sdtContent")) if child.tag == qn("w:sdt") else child
            if content is not None:
                yield from iter_blocks(content, parent)


_RUNS_XPATH = ".//w:r[not(ancestor::w:del) and not(ancestor::w:moveFrom) and not(ancestor::w:txbxContent)]"


def paragraph_text(p) -> str:
    """A paragraph's text including runs that ``Paragraph.text`` leaves out: tracked
    insertions (``w:ins``), inline content controls, smart tags, simple fields.
    Tracked deletions and text boxes are left out."""
    return "".join(r.text for r in p._p.xpath(_RUNS_XPATH))


def cell_text(cell) -> str:
    """A table cell's text: its paragraphs, and nested tables one row per line."""
    from docx.table import Table

    lines = []
    for item in iter_blocks(cell._tc, cell):
        if isinstance(item, Table):
            for row in item.rows:
                lines.append("\t".join(_unique_cells(row, cell_text)))
        else:
            lines.append(paragraph_text(item))
    return "\n".join(lines)


def _unique_cells(row, text_of) -> list[str]:
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # merged cells repeat
            continue
        seen.add(id(cell._tc))
        cells.append(text_of(cell).replace("\r\n", "\n").replace("\r", "\n"))
    return cells


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.pos = 0
        self.transcript = False

    def line(self, text: str, style: str = "body", level: int = 0, speaker: str | None = None,
             speaker_len: int | None = None, label_len: int | None = None) -> None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text.strip():
            self.blocks.append(Block(self.pos, self.pos + len(text), text, style=style, level=level,
                                     para_start=True, speaker=speaker,
                                     speaker_end=self.pos + speaker_len if speaker_len else None,
                                     label_end=self.pos + label_len if label_len else None))
        self.parts.append(text + "\n")
        self.pos += len(text) + 1

    def paragraph(self, p) -> None:
        style_name = ""
        try:
            style_name = p.style.name if p.style is not None else ""
        except Exception:  # pragma: no cover - exotic styles
            style_name = ""
        text = paragraph_text(p)
        style, level = "body", 0
        m = re.match(r"(?i)heading\s*(\d)", style_name or "")
        if m:
            style, level = "heading", int(m.group(1))
        elif (style_name or "").lower() in ("title", "subtitle"):
            style, level = "heading", 0
        elif text.strip() and _all_bold(p):
            style = "bold"
        label_len = _bold_label_length(p, text) if style == "body" else None
        self.line(text, style, level, label_len=label_len)

    def table(self, table) -> None:
        rows = [_unique_cells(row, cell_text) for row in table.rows]
        if not rows:
            return
        if self._speaker_table(rows):
            return
        if self._section_columns(rows):
            return
        for cells in rows:
            if cells and heading_section(Block(0, len(cells[0]), cells[0].strip(), style="label")) and len(cells) > 1:
                self.line(cells[0], "label")
                self.line("\n".join(c for c in cells[1:]))
            else:
                self.line("\t".join(cells))

    def _speaker_table(self, rows: list[list[str]]) -> bool:
        if any(len(r) != 2 for r in rows):
            return False
        body = rows
        header = None
        if rows and rows[0][0].strip().lower() in _HEADER_WORDS:
            header, body = rows[0], rows[1:]
        labels = [clean_label(r[0]) for r in body if r[0].strip()]
        if len(labels) < 2 or len(labels) != len(body):
            return False
        if any(len(lab) > 40 or "\n" in lab or lab.endswith((".", "?", "!")) for lab in labels):
            return False
        if any(heading_section(Block(0, len(lab), lab, style="label")) for lab in labels):
            return False
        counts = {lab: labels.count(lab) for lab in labels}
        if not all(counts[lab] >= 2 or ROLE_RE.match(lab) for lab in labels):
            return False
        if header is not None:
            self.line("\t".join(header))
        for lab, (_raw, said) in zip(labels, body):
            prefix = f"{lab}: "
            self.line(prefix + said, speaker=lab, speaker_len=len(prefix))
        self.transcript = True
        return True

    def _section_columns(self, rows: list[list[str]]) -> bool:
        head = rows[0]
        if len(head) < 2 or len(rows) < 2:
            return False
        if not all(heading_section(Block(0, len(c), c.strip(), style="label")) for c in head if c.strip()):
            return False
        for j, title in enumerate(head):
            self.line(title, "label")
            self.line("\n".join(r[j] for r in rows[1:] if j < len(r)))
        return True


def _run_bold(r, para_bold: bool) -> bool:
    b = r.bold
    if b is None:
        try:
            b = bool(r.style is not None and r.style.font.bold)
        except Exception:  # pragma: no cover
            b = False
        b = b or para_bold
    return bool(b)


def _bold_label_length(p, text: str) -> int | None:
    """Length of the bold runs that open a paragraph followed by plain text ("**What?** I went...")."""
    lead = []
    for r in p.runs:
        if not r.text.strip():
            lead.append(r.text)
            continue
        if not _run_bold(r, False):
            break
        lead.append(r.text)
    else:
        return None
    label = "".join(lead)
    if not label.strip() or not text.startswith(label) or not text[len(label):].strip():
        return None
    return len(label.rstrip())


def _all_bold(p) -> bool:
    """Every run with text is bold (directly, by character style or by paragraph style)."""
    para_bold = False
    try:
        para_bold = bool(p.style is not None and p.style.font.bold)
    except Exception:  # pragma: no cover
        para_bold = False
    runs = [r for r in p.runs if r.text.strip()]
    if not runs:
        return False
    for r in runs:
        b = r.bold
        if b is None:
            try:
                b = bool(r.style is not None and r.style.font.bold)
            except Exception:  # pragma: no cover
                b = False
            b = b or para_bold
        if not b:
            return False
    return True

"""The Word writer: lays out a :class:`~sp_realist.report.model.ReportModel` with python-docx.

What makes it a real Word document rather than text in a .docx:

* built-in ``Title`` / ``Heading 1-4`` styles, so Word's navigation pane and
  table of contents work; a real ``TOC`` field (Word fills it on opening:
  ``w:updateFields`` is set);
* real tables whose header row repeats on every page (``w:tblHeader``);
* captions in the ``Caption`` style with ``SEQ Table`` / ``SEQ Figure``
  fields (numbered, cross-referenceable), holding the current number as the
  cached result so the document reads correctly before any update;
* provenance as an appendix table or as real Word footnotes;
* ``--template reference.docx``: the user's document is opened as the base,
  its body cleared, its styles, page set-up, headers and footers kept; styles
  the template lacks are copied from python-docx's default template;
* deterministic bytes: core properties carry the study date, and the zip
  entries a fixed timestamp.
"""

from __future__ import annotations

import copy
import io
import os
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from ..errors import SpRealistError
from .model import ReportModel, Table
from .figures import overview_figure, theory_figures
from .narrative import markdown_blocks

REQUIRED_STYLES = ("Title", "Subtitle", "Heading 1", "Heading 2", "Heading 3", "Heading 4", "Caption", "Quote",
                   "List Bullet", "List Number", "Table Grid", "TOC Heading")

# Elements that must come after w:updateFields in w:settings (ECMA-376 order).
_SETTINGS_AFTER_UPDATEFIELDS = (
    "hdrShapeDefaults", "footnotePr", "endnotePr", "compat", "docVars", "rsids", "mathPr", "attachedSchema",
    "themeFontLang", "clrSchemeMapping", "doNotIncludeSubdocsInStats", "doNotAutoCompressPictures",
    "forceUpgrade", "captions", "readModeInkLockDown", "smartTagType", "schemaLibrary", "shapeDefaults",
    "doNotEmbedSmartTags", "decimalSymbol", "listSeparator",
)

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# Characters XML 1.0 cannot hold (C0 controls other than tab/newline/return, lone surrogates, U+FFFE/F).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with characters Word cannot store replaced by U+FFFD (the replacement character)."""
    return _XML_INVALID.sub("\ufffd", text)


def _qn(tag: str) -> str:
    from docx.oxml.ns import qn

    return qn(tag)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def study_datetime(date: str | None) -> datetime:
    """The study's date as a UTC datetime (2000-01-01 when the study gives none)."""
    if date:
        try:
            d = datetime.fromisoformat(str(date)[:10])
            return d.replace(tzinfo=timezone.utc)
        except ValueError:
            raise SpRealistError(f"report date {date!r} is not an ISO date (YYYY-MM-DD); fix it.") from None
    return datetime(2000, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------
# Document set-up
# --------------------------------------------------------------------------
def _open_base(template: str | os.PathLike | None):
    import docx

    if template is None:
        return docx.Document()
    path = Path(template)
    if not path.is_file():
        raise SpRealistError(f"{path}: the template does not exist; give a .docx file.")
    try:
        doc = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several types for non-docx input
        raise SpRealistError(f"{path}: not a Word document that python-docx can open ({exc}); save it as .docx.") from None
    body = doc.element.body
    for child in list(body):
        if child.tag != _qn("w:sectPr"):
            body.remove(child)
    _ensure_styles(doc)
    return doc


def _ensure_styles(doc) -> None:
    """Copy styles the template lacks (and the styles they are based on) from python-docx's default."""
    import docx

    default = docx.Document()
    have = {s.name for s in doc.styles}
    target = doc.styles.element
    src_by_id = {el.get(_qn("w:styleId")): el for el in default.styles.element.findall(_qn("w:style"))}
    ids_present = {el.get(_qn("w:styleId")) for el in target.findall(_qn("w:style"))}

    def copy_style(style_id: str) -> None:
        if style_id in ids_present or style_id not in src_by_id:
            return
        el = src_by_id[style_id]
        target.append(copy.deepcopy(el))
        ids_present.add(style_id)
        for tag in ("w:basedOn", "w:link", "w:next"):
            ref = el.find(_qn(tag))
            if ref is not None:
                copy_style(ref.get(_qn("w:val")))

    for name in REQUIRED_STYLES:
        if name not in have:
            style = default.styles[name]
            copy_style(style.style_id)


def _set_update_fields(doc) -> None:
    settings = doc.settings.element
    if settings.find(_qn("w:updateFields")) is not None:
        return
    from docx.oxml import OxmlElement

    el = OxmlElement("w:updateFields")
    el.set(_qn("w:val"), "true")
    after = {_qn(f"w:{t}") for t in _SETTINGS_AFTER_UPDATEFIELDS} | {
        "{http://schemas.openxmlformats.org/officeDocument/2006/math}mathPr",
        "{http://schemas.openxmlformats.org/schemaLibrary/2006/main}schemaLibrary"}
    for i, child in enumerate(settings):
        if child.tag in after:
            settings.insert(i, el)
            return
    settings.append(el)


def _field(paragraph, instruction: str, cached: str) -> None:
    """A complex field (begin / instrText / separate / cached result / end)."""
    from docx.oxml import OxmlElement

    def fld(kind: str):
        run = paragraph.add_run()
        el = OxmlElement("w:fldChar")
        el.set(_qn("w:fldCharType"), kind)
        run._r.append(el)
        return run

    fld("begin")
    run = paragraph.add_run()
    instr = OxmlElement("w:instrText")
    instr.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    instr.text = f" {instruction} "
    run._r.append(instr)
    fld("separate")
    paragraph.add_run(cached)
    fld("end")


def _cant_split(row) -> None:
    from docx.oxml import OxmlElement

    trpr = row._tr.get_or_add_trPr()
    if trpr.find(_qn("w:cantSplit")) is None:
        el = OxmlElement("w:cantSplit")
        el.set(_qn("w:val"), "true")
        trpr.insert(0, el)  # CT_TrPr: cantSplit comes before tblHeader


def _heading_numbering(doc) -> int:
    """A multilevel list "1", "1.1", "1.1.1" (decimal, no indent) in the numbering part; its w:numId."""
    from lxml import etree

    numbering = doc.part.numbering_part.element
    W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    abstract_ids = [int(a.get(_qn("w:abstractNumId"))) for a in numbering.findall(_qn("w:abstractNum"))]
    aid = max(abstract_ids, default=-1) + 1
    levels = "".join(
        f'<w:lvl w:ilvl="{i}"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
        f'<w:lvlText w:val="{".".join(f"%{j + 1}" for j in range(i + 1))}"/><w:lvlJc w:val="left"/>'
        f'<w:pPr><w:ind w:left="{567 + 284 * i}" w:hanging="{567 + 284 * i}"/></w:pPr></w:lvl>'
        for i in range(3))
    abstract = etree.fromstring(f'<w:abstractNum xmlns:w="{W}" w:abstractNumId="{aid}">'
                                f'<w:multiLevelType w:val="multilevel"/>{levels}</w:abstractNum>')
    nums = numbering.findall(_qn("w:num"))
    if nums:  # every w:abstractNum precedes every w:num
        nums[0].addprevious(abstract)
    else:
        numbering.append(abstract)
    num = numbering.add_num(aid)
    return int(num.numId)


def _number_paragraph(paragraph, num_id: int, ilvl: int) -> None:
    ppr = paragraph._p.get_or_add_pPr()
    numpr = ppr.get_or_add_numPr()
    numpr.get_or_add_ilvl().val = ilvl
    numpr.get_or_add_numId().val = num_id


PAPER_TWIPS = {"a4": (11906, 16838), "letter": (12240, 15840)}  # 210 x 297 mm; 8.5 x 11 in


def _page_setup(doc, paper: str | None, template: bool) -> None:
    """Paper size on every section (A4 unless ``paper`` says letter; a template keeps its own unless
    ``paper`` is set) and a centred PAGE field in the footer when it has none."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Twips

    if paper is not None or not template:
        short, long_ = (Twips(v) for v in PAPER_TWIPS[paper or "a4"])
        for section in doc.sections:
            landscape = section.page_width > section.page_height
            section.page_width, section.page_height = (long_, short) if landscape else (short, long_)
    footer = doc.sections[0].footer
    footer.is_linked_to_previous = False
    if any("PAGE" in (t.text or "").split() for t in footer._element.iter(_qn("w:instrText"))):
        return
    p = footer.paragraphs[0] if len(footer.paragraphs) == 1 and not footer.paragraphs[0].text else \
        footer.add_paragraph()
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _field(p, "PAGE", "1")


class _Footnotes:
    """Real Word footnotes (python-docx has no API for them): a footnotes part
    created or extended, and ``w:footnoteReference`` runs in the body."""

    W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

    def __init__(self, doc):
        from docx.opc.constants import RELATIONSHIP_TYPE as RT

        self.doc = doc
        self.part = None
        for rel in doc.part.rels.values():
            if rel.reltype == RT.FOOTNOTES and not rel.is_external:
                self.part = rel.target_part
                break
        from lxml import etree

        if self.part is None:
            xml = (f'<w:footnotes xmlns:w="{self.W_NS}">'
                   '<w:footnote w:type="separator" w:id="-1"><w:p><w:pPr><w:spacing w:after="0" w:line="240" '
                   'w:lineRule="auto"/></w:pPr><w:r><w:separator/></w:r></w:p></w:footnote>'
                   '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:pPr><w:spacing w:after="0" '
                   'w:line="240" w:lineRule="auto"/></w:pPr><w:r><w:continuationSeparator/></w:r></w:p></w:footnote>'
                   '</w:footnotes>')
            self.root = etree.fromstring(xml.encode())
            self._new = True
        else:
            self.root = etree.fromstring(self.part.blob)
            self._new = False
        ids = [int(fn.get(_qn("w:id"))) for fn in self.root.findall(_qn("w:footnote"))]
        self.next_id = max([0] + ids) + 1
        styles = {s.style_id for s in doc.styles}
        self.text_style = "FootnoteText" if "FootnoteText" in styles else None

    def add(self, paragraph, text: str) -> None:
        from lxml import etree

        from docx.oxml import OxmlElement

        fid = self.next_id
        self.next_id += 1
        w = self.W_NS
        fn = etree.SubElement(self.root, f"{{{w}}}footnote")
        fn.set(f"{{{w}}}id", str(fid))
        p = etree.SubElement(fn, f"{{{w}}}p")
        if self.text_style:
            ppr = etree.SubElement(p, f"{{{w}}}pPr")
            etree.SubElement(ppr, f"{{{w}}}pStyle").set(f"{{{w}}}val", self.text_style)
        r = etree.SubElement(p, f"{{{w}}}r")
        rpr = etree.SubElement(r, f"{{{w}}}rPr")
        etree.SubElement(rpr, f"{{{w}}}vertAlign").set(f"{{{w}}}val", "superscript")
        etree.SubElement(r, f"{{{w}}}footnoteRef")
        r2 = etree.SubElement(p, f"{{{w}}}r")
        t = etree.SubElement(r2, f"{{{w}}}t")
        t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        t.text = " " + xml_safe(text)
        run = paragraph.add_run()
        rpr = OxmlElement("w:rPr")
        va = OxmlElement("w:vertAlign")
        va.set(_qn("w:val"), "superscript")
        rpr.append(va)
        run._r.append(rpr)
        ref = OxmlElement("w:footnoteReference")
        ref.set(_qn("w:id"), str(fid))
        run._r.append(ref)

    def _declare_separators(self) -> None:
        """``w:footnotePr`` in the settings naming the separator footnotes, as Word writes it."""
        from docx.oxml import OxmlElement

        settings = self.doc.settings.element
        if settings.find(_qn("w:footnotePr")) is not None:
            return
        pr = OxmlElement("w:footnotePr")
        for fid in ("-1", "0"):
            ref = OxmlElement("w:footnote")
            ref.set(_qn("w:id"), fid)
            pr.append(ref)
        after = {_qn(f"w:{t}") for t in _SETTINGS_AFTER_UPDATEFIELDS[2:]} | {
            "{http://schemas.openxmlformats.org/officeDocument/2006/math}mathPr",
            "{http://schemas.openxmlformats.org/schemaLibrary/2006/main}schemaLibrary"}
        for i, child in enumerate(settings):
            if child.tag in after:
                settings.insert(i, pr)
                return
        settings.append(pr)

    def finish(self) -> None:
        from lxml import etree

        from docx.opc.constants import CONTENT_TYPE as CT
        from docx.opc.constants import RELATIONSHIP_TYPE as RT
        from docx.opc.packuri import PackURI
        from docx.opc.part import Part

        blob = etree.tostring(self.root, xml_declaration=True, encoding="UTF-8", standalone=True)
        if self._new:
            self._declare_separators()
            part = Part(PackURI("/word/footnotes.xml"), CT.WML_FOOTNOTES, blob, self.doc.part.package)
            self.doc.part.relate_to(part, RT.FOOTNOTES)
        elif hasattr(self.part, "_element"):
            self.part._element = etree.fromstring(blob)  # an XmlPart
        else:
            self.part._blob = blob


# --------------------------------------------------------------------------
# Table column widths
# --------------------------------------------------------------------------
BODY_PT = 11.0            # the body text size of python-docx's default template (and most house styles)
WIDE_TABLE_COLUMNS = 8    # tables with this many columns or more ...
WIDE_TABLE_PT = 8.0       # ... are set in this size
_CHAR_EM = 0.52           # average character width, in ems, of Cambria/Calibri (and metric twins)
_CELL_PAD_PT = 12.0       # a cell's left and right margins (0.08 in each) plus a little air
_WORD_CAP = 30            # a longer "word" (a URL, a list of ids) may wrap inside itself
_TEXT_CAP = 60            # beyond this many characters a cell wraps anyway


def word_ems(word: str, bold: bool = False) -> float:
    """A word's width in ems, by character class: capitals and digits are wider than the average
    (``CMOC`` is ~3.1 em, not 4 x 0.52), narrow letters and punctuation narrower.  The widths are DejaVu's
    (wider than Cambria/Calibri), the font LibreOffice substitutes when those are missing, so a word fits
    wherever the document is opened; bold is 10% wider."""
    em = 0.0
    for ch in word:
        if ch.isupper():
            em += 0.78
        elif ch.isdigit():
            em += 0.64
        elif ch in "ijlft.,;:'!|()[]/\u2019\u2018":
            em += 0.38
        elif ch in "mw":
            em += 0.96
        else:
            em += 0.63
    return em * (1.1 if bold else 1.0)


def _longest_words(columns, rows, extra_first=()) -> tuple[list[float], list[float]]:
    """Per column: its widest word in ems (header words bold) and its longest line in characters."""
    n = len(columns)
    longest_word = [0.0] * n
    longest_text = [0.0] * n
    for i, name in enumerate(columns):
        longest_word[i] = max((word_ems(w, bold=True) for w in str(name).split()), default=0.0)  # wraps between words
    extra = list(extra_first)
    for r, row in enumerate(rows):
        for i, value in enumerate(row[:n]):
            text = "" if value is None else str(value)
            if i == 0 and r < len(extra):
                text += extra[r]
            if not text:
                continue
            for line in text.split("\n"):
                if len(line) > longest_text[i]:
                    longest_text[i] = len(line)
                for w in line.split():
                    if len(w) * 0.96 > longest_word[i]:  # only a word that could be wider (all m) is measured
                        longest_word[i] = max(longest_word[i], word_ems(w))
    return longest_word, longest_text


def min_column_widths(columns, rows, size_pt: float, extra_first=()) -> list[float]:
    """The narrowest each column may be (points) so that its widest word fits on one line (words of more
    than ``_WORD_CAP`` characters, a URL, may wrap inside themselves)."""
    longest_word, _ = _longest_words(columns, rows, extra_first)
    cap = _WORD_CAP * _CHAR_EM
    return [(min(w, cap) + 0.5) * size_pt + _CELL_PAD_PT for w in longest_word]  # +0.5 em: never exact


def table_layout(columns, rows, portrait_pt: float, landscape_pt: float, extra_first=()) -> tuple[bool, float]:
    """(landscape?, font size) for a table: portrait at body size when its longest words fit the text width,
    else a landscape page, else a landscape page at ``WIDE_TABLE_PT``.  Tables of ``WIDE_TABLE_COLUMNS``
    columns or more always take a landscape page at the small size."""
    if len(columns) >= WIDE_TABLE_COLUMNS:
        return True, WIDE_TABLE_PT
    if sum(min_column_widths(columns, rows, BODY_PT, extra_first)) <= portrait_pt:
        return False, BODY_PT
    if sum(min_column_widths(columns, rows, BODY_PT, extra_first)) <= landscape_pt:
        return True, BODY_PT
    return True, WIDE_TABLE_PT


def column_widths(columns, rows, available_pt: float, size_pt: float, extra_first=()) -> list[float]:
    """Widths (points) for a table's columns, summing to ``available_pt``.

    Every column gets at least the width of its longest word (header words in bold), so words are not
    broken across lines; the rest of the width goes to the columns with longer cells, in proportion to how
    much more room their longest cell (up to ``_TEXT_CAP`` characters) would take (headers wrap between
    words, so they count only through their longest word).  When even the longest
    words do not fit, the columns share the width in proportion to them.
    """
    n = len(columns)
    if not n:
        return []
    _, longest_text = _longest_words(columns, rows, extra_first)
    char = _CHAR_EM * size_pt
    mins = min_column_widths(columns, rows, size_pt, extra_first)
    wants = [max(m, min(t, _TEXT_CAP) * char + _CELL_PAD_PT) for m, t in zip(mins, longest_text)]
    if sum(wants) <= available_pt:
        return [w * available_pt / sum(wants) for w in wants]
    if sum(mins) >= available_pt:
        return [m * available_pt / sum(mins) for m in mins]
    room = available_pt - sum(mins)
    slack = sum(w - m for w, m in zip(wants, mins))
    return [m + (w - m) * room / slack for w, m in zip(wants, mins)]


# --------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------
class _Writer:
    def __init__(self, model: ReportModel, doc):
        self.m = model
        self.doc = doc
        self.footnotes = _Footnotes(doc) if model.provenance == "footnotes" and model.refs else None
        self.ref_text = {r.number: r.text for r in model.refs}
        # Style ids resolved once: python-docx's by-name lookup scans every style on each call.
        self.style_ids = {s.name: s.style_id for s in doc.styles}
        self.table_style = "Table Grid" if "Table Grid" in self.style_ids else None
        self.headings: list[tuple[int, str]] = []  # (level, text), for the contents' cached entries
        # Heading numbers ("3", "3.2", "3.2.1"): chapters are numbered unless opened with numbered=False
        # (the summary, the appendices); appendices are lettered.  ``chapter`` labels tables and figures
        # under numbering: chapter ("Table 3.1"; "Table A.1" in Appendix A).
        self.counters = [0, 0, 0]
        self.numbered = True
        self.chapter: str | None = None
        self.per_chapter: dict[tuple[str, str], int] = {}
        self.figure_number = 0

    def para(self, text: str = "", style: str | None = None):
        p = self.doc.add_paragraph()
        if style:
            p._p.style = self.style_ids[style]
        if text:
            p.add_run(xml_safe(text))
        return p

    def heading(self, text: str, level: int, numbered: bool = True):
        """A heading; levels 1-3 are numbered ("3.2 Methods") inside numbered chapters, by Word's own list
        numbering (``w:numPr``), so the text stays the heading's and Word and LibreOffice show the number."""
        if level == 1:
            self.numbered = numbered
            self.chapter = None
        p = self.para(text, f"Heading {level}")
        shown = text
        if self.numbered and level <= 3:
            self.counters[level - 1] += 1
            for i in range(level, 3):
                self.counters[i] = 0
            shown = ".".join(str(c) for c in self.counters[:level]) + " " + text  # the contents' cached entry
            if level == 1:
                self.chapter = str(self.counters[0])
            _number_paragraph(p, self._heading_num_id(), level - 1)
        self.headings.append((level, shown))
        return p

    def _heading_num_id(self) -> int:
        if getattr(self, "_num_id", None) is None:
            self._num_id = _heading_numbering(self.doc)
        return self._num_id

    def appendix(self, name: str):
        """An appendix heading, lettered in order over the appendices present (``ReportModel.appendix_headings``)."""
        text = self.m.appendix_headings()[name]
        self.heading(text, 2)
        self.chapter = text.split(":")[0].split()[-1]

    # -- pieces --------------------------------------------------------------
    def mark(self, paragraph, ref: int | None) -> None:
        """A real footnote under provenance 'footnotes'; nothing in the body otherwise (under 'appendix' the
        appendix names each item, and quotes carry their numbers)."""
        if ref is not None and self.footnotes is not None:
            self.footnotes.add(paragraph, self.ref_text[ref])

    def caption(self, label: str, number: int, text: str, keep_with_next: bool = False) -> None:
        p = self.para(style="Caption")
        if keep_with_next:  # a table's caption stays on the page of the table
            p.paragraph_format.keep_with_next = True
        if self.m.numbering == "chapter" and self.chapter is not None:
            # "Table 3.1": the chapter's number (or appendix letter), then a SEQ field set to the number in the
            # chapter (\r), which Word and LibreOffice both keep when they update fields (LibreOffice ignores
            # the \s switch that restarts a sequence at each chapter heading).
            key = (label, self.chapter)
            self.per_chapter[key] = number = self.per_chapter.get(key, 0) + 1
            p.add_run(f"{label} {self.chapter}.")
            _field(p, f"SEQ {label} \\r {number} \\* ARABIC", str(number))
        else:
            p.add_run(f"{label} ")
            _field(p, f"SEQ {label} \\* ARABIC", str(number))
        p.add_run(xml_safe(f": {text}"))

    def _markers(self, refs) -> list[str]:
        return []  # no marker is written into a table cell (footnote references are superscript digits)

    def _text_widths(self) -> tuple[float, float]:
        """The text width (points) of a portrait and of a landscape page of the current section."""
        section = self.doc.sections[-1]
        short, long_ = sorted((section.page_width, section.page_height))
        margins = section.left_margin + section.right_margin
        return (short - margins) / 12700, (long_ - margins) / 12700

    def table(self, t: Table) -> None:
        portrait, landscape = self._text_widths()
        wide, size = table_layout(t.columns, t.rows, portrait, landscape, self._markers(t.refs))
        if wide:  # a landscape page (section) of its own, so that its longest words fit their columns
            self._orientation(landscape=True)
        self.caption("Table", t.number, t.caption, keep_with_next=True)
        self._table(t.columns, t.rows, t.refs, size=size)
        if t.note:
            self.para(f"Note: {t.note}")
        if wide:
            self._orientation(landscape=False)

    def _orientation(self, landscape: bool) -> None:
        """Start a new section (on a new page) in landscape or portrait; headers and footers carry over."""
        from docx.enum.section import WD_ORIENT, WD_SECTION

        section = self.doc.add_section(WD_SECTION.NEW_PAGE)
        width, height = section.page_width, section.page_height
        if (width > height) != landscape:
            section.page_width, section.page_height = height, width
        section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT

    def _table(self, columns, rows, refs=None, size: float | None = None) -> None:
        from docx.oxml import OxmlElement
        from docx.shared import Emu, Pt

        table = self.doc.add_table(rows=1, cols=len(columns))
        if self.table_style:
            table.style = self.table_style
        # Column widths from the content (set before the rows are added: new rows copy the grid's widths),
        # with a smaller font for wide tables, so that no column is squeezed until words break mid-word.
        if size is None:
            portrait, landscape = self._text_widths()
            size = table_layout(columns, rows, portrait, landscape)[1]
        size = None if size == BODY_PT else size
        section = self.doc.sections[-1]
        available = section.page_width - section.left_margin - section.right_margin
        widths = column_widths(columns, rows, available / 12700, size or BODY_PT, extra_first=self._markers(refs))
        table.autofit = False  # a fixed layout: Word and LibreOffice keep the widths below
        for grid_col, cell, w in zip(table._tbl.tblGrid.gridCol_lst, table.rows[0].cells, widths):
            grid_col.w = cell.width = Emu(int(w * 12700))
        header = table.rows[0]
        trpr = header._tr.get_or_add_trPr()
        th = OxmlElement("w:tblHeader")
        th.set(_qn("w:val"), "true")
        trpr.append(th)
        for cell, name in zip(header.cells, columns):
            cell.text = ""
            run = cell.paragraphs[0].add_run(xml_safe(str(name)))
            run.bold = True
            if size:
                run.font.size = Pt(size)
        refs = refs or [None] * len(rows)
        _cant_split(header)
        for row, ref in zip(rows, refs):
            added = table.add_row()
            _cant_split(added)  # a row is never broken across two pages
            cells = added.cells
            for i, (cell, value) in enumerate(zip(cells, row)):
                cell.text = "" if value is None else xml_safe(str(value))
                if size:
                    for run in cell.paragraphs[0].runs:
                        run.font.size = Pt(size)
                if i == 0 and ref is not None:
                    self.mark(cell.paragraphs[0], ref)
                    if size:  # the provenance marker too
                        for run in cell.paragraphs[0].runs:
                            run.font.size = Pt(size)

    def quote(self, q, label: bool = False) -> None:
        p = self.para(style="Quote")
        p.add_run(xml_safe(f"\u2018{q.text}\u2019 ({q.attribution})"))
        if q.number is not None:
            p.add_run(f" [Q{q.number}]")
        self.mark(p, q.ref)
        if label:
            extra = q.label + (f", {q.role}" if q.role != "supports" else "")
            p.add_run(xml_safe(f" [{extra}]"))

    def _max_figure_height(self) -> float:
        """Inches a figure may take on the page with its caption."""
        section = self.doc.sections[-1]
        return (section.page_height - section.top_margin - section.bottom_margin) / 914400 - 1.0

    def picture(self, png: bytes, caption: str) -> None:
        """A figure at its drawn size (never stretched or shrunk below print size) with a numbered caption."""
        from docx.image.image import Image
        from docx.shared import Emu, Inches, Pt

        self.figure_number += 1
        image = Image.from_blob(png)
        width = Inches(image.px_width / image.horz_dpi)
        section = self.doc.sections[-1]
        width = min(width, section.page_width - section.left_margin - section.right_margin)
        shape = self.doc.add_picture(io.BytesIO(png), width=Emu(int(width)))
        shape._inline.docPr.set("descr", xml_safe(f"Figure {self.figure_number}: {caption}"))  # alt text
        fmt = self.doc.paragraphs[-1].paragraph_format
        fmt.keep_with_next = True  # the figure stays with its caption
        fmt.space_before = Pt(8)
        self.caption("Figure", self.figure_number, caption)

    # -- the author's narrative sections (sp_realist.report.narrative) --------
    def narrative(self, blocks) -> None:
        """Each section under a level-2 heading; its own headings below it."""
        for b in blocks:
            self.heading(b.heading, 2)
            self.markdown(b.text, 2)

    def markdown(self, text: str, offset: int) -> None:
        """Markdown as Word paragraphs: headings (moved ``offset`` levels down), lists, quotes, code, emphasis."""
        from docx.shared import Pt

        for block in markdown_blocks(text):
            kind, level = block["type"], block["level"]
            if kind == "heading":
                level = min(4, level + offset)
                p = self.heading("".join(r[0] for r in block["runs"]), level)
                p.runs[0]._r.getparent().remove(p.runs[0]._r)  # the heading's own (formatted) runs follow
            elif kind in ("bullet", "number"):
                name = "List Bullet" if kind == "bullet" else "List Number"
                name += f" {min(level, 3)}" if level > 1 else ""
                p = self.para(style=name if name in self.style_ids else None)
            elif kind == "quote":
                p = self.para(style="Quote")
            else:
                p = self.para()
            for text_, bold, italic, code in block["runs"]:
                run = p.add_run(xml_safe(text_))
                run.bold = bold or None
                run.italic = italic or None
                if code:
                    run.font.name = "Courier New"
                    run.font.size = Pt(9)

    # -- document -----------------------------------------------------------
    def write(self) -> None:
        m, doc = self.m, self.doc
        self.para(m.title, "Title")
        if m.subtitle:
            self.para(m.subtitle, "Subtitle")
        if m.authors:
            self.para(", ".join(m.authors))
        if m.date:
            self.para(m.date)
        doc.add_page_break()
        self.para("Contents", "TOC Heading")
        toc = self.para()
        doc.add_page_break()
        narrative = m.narrative or {}
        if narrative.get("summary"):
            self.heading("Summary", 1, numbered=False)
            for b in narrative["summary"]:
                self.markdown(b.text, 1)
        if m.introduction or narrative.get("introduction"):
            self.heading("Introduction", 1)
            if m.introduction:
                self.para(m.introduction)
            self.narrative(narrative.get("introduction", []))

        self.heading("Methods", 1)
        if narrative.get("methods"):
            self.narrative(narrative["methods"])
            self.heading("Data, participants and analysis steps", 2)
        for para in m.methods.paragraphs:
            self.para(para)
        for t in m.methods.tables:
            self.table(t)
        self.table(m.methods.steps)

        if m.themes:
            self.heading("Thematic findings", 1)
            for th in m.themes:
                self.heading(th.name, min(2 + th.level, 4))
                if th.description:
                    self.para(th.description)
                self.para(f"Codes: {', '.join(th.codes) if th.codes else 'none'} "
                                  f"({_n(th.codings, 'coding')} in {_n(th.sources, 'source')}).")
                for q in th.quotes:
                    self.quote(q)

        if m.theories:
            self.heading("Realist findings", 1)
            if m.figure is not None:  # figures drawn at print size (sp_realist.report.figures)
                self.picture(overview_figure([(f"{t.key}: {t.title}", [r[0] for r in t.table.rows])
                                              for t in m.theories]), m.figure.caption)
            for t in m.theories:
                self.heading(f"{t.key}: {t.title}", 2)
                if t.questions:
                    self.para(f"Evaluation questions: {', '.join(t.questions)}.")
                if t.description:
                    self.para(t.description)
                if t.narrative:  # the author's account of the theory (narrative section theory:KEY)
                    self.markdown(t.narrative, 2)
                for memo in t.memos:  # memos on the theory marked for the report
                    p = self.para()
                    if memo["title"]:
                        p.add_run(xml_safe(f"{memo['title']}. ")).bold = True
                    p.add_run(xml_safe(memo["text"] + " "))
                    p.add_run(xml_safe(f"({memo['author']})")).italic = True
                self.table(t.table)
                if m.figure is not None and t.table.rows:
                    pngs = theory_figures(t.table.rows, self._max_figure_height())
                    for i, png in enumerate(pngs, start=1):
                        part = f" (part {i} of {len(pngs)})" if len(pngs) > 1 else ""
                        self.picture(png, f"CMOCs of theory {t.key}{part}: context, mechanism and outcome")
                if t.statements:
                    self.heading("If/then statements", 3)
                    for s in t.statements:
                        p = self.para(style="List Bullet")
                        p.add_run(xml_safe(f"{s.key}: ")).bold = True
                        p.add_run(xml_safe(s.text))
                        if s.cited:  # several participants in one parenthesis: "(S1 DK1; S3 DK2)"
                            p.add_run(xml_safe(f" {s.citation}"))
                if t.evidence:
                    self.heading("Evidence", 3)
                    if t.cited:
                        counts = f"{t.supporting} supporting" + (f" and {t.refuting} refuting" if t.refuting else "")
                        plural = "s" if t.supporting + t.refuting != 1 else ""
                        self.para(f"Evidence from {'; '.join(t.cited)} ({counts} excerpt{plural}).")
                    for q in t.evidence:
                        self.quote(q, label=True)

        if m.triangulation is not None:
            self.heading("Triangulation", 1)
            self.table(m.triangulation)
        if m.findings is not None:
            self.summary_of_findings(m.findings)

        if narrative.get("discussion"):
            self.heading("Discussion", 1)
            self.narrative(narrative["discussion"])

        a = m.appendices
        if m.appendix_headings():
            self.heading("Appendices", 1, numbered=False)
        names = m.appendix_headings()
        if "codebook" in names:
            self.appendix("codebook")
            self.table(a.codebook)
        if "diary_template" in names:
            self.appendix("diary_template")
            for heading, prompts in a.diary_template:
                self.heading(heading, 3)
                for prompt in prompts:
                    self.para(prompt, "List Bullet")
        if "appraisal_saturation" in names:
            self.appendix("appraisal_saturation")
            for t in (a.appraisal, a.saturation_compact):
                if t is not None:
                    self.table(t)
        if "rameses" in names:
            self.appendix("rameses")
            self.table(m.rameses)
        if "provenance" in names:
            self.appendix("provenance")
            quotes = m.quote_table()
            if quotes.rows:
                self.para("Each quote's number [Qn] in the body refers to the row below: its source, the "
                          "participant it is attributed to, its character span [start:end] in the source text and "
                          "the excerpt id in the project.")
                self._table(quotes.columns, quotes.rows)
            items = m.item_provenance()
            if items.rows:
                self.para("What each count, CMOC row and summary-of-findings row rests on: the excerpt, coding "
                          "and source ids in the project.")
                self._table(items.columns, items.rows)
        if self.footnotes is not None:
            self.footnotes.finish()
        self._contents(toc)

    def summary_of_findings(self, findings) -> None:
        """The summary-of-findings tables (Tables 7.1-7.4), each with its lists and overall paragraph."""
        self.heading("Summary of findings", 1)
        for q in findings.questions:
            self.heading(f"{q.key}: {q.text}" if q.text else q.key, 2)
            self.table(q.table)
            for lst in q.lists:
                self.heading(lst.heading, 3)
                for item in lst.items:
                    self.para(item, "List Bullet")
            if q.overall:
                self.heading("Overall", 3)
                self.para(q.overall)
        if findings.evidence is not None:
            self.table(findings.evidence)

    def _contents(self, first) -> None:
        """The TOC field, its cached result already listing the headings (levels 1-3, indented).

        Word rebuilds it with page numbers on opening (``updateFields``); viewers and converters that do not
        update fields (LibreOffice, previews, PDF conversion) still show the contents instead of a prompt.
        """
        from docx.oxml import OxmlElement
        from docx.shared import Inches, Pt

        entries = [(lv, text) for lv, text in self.headings if lv <= 3]
        if not entries:
            _field(first, 'TOC \\o "1-3" \\h \\z \\u',
                   "Right-click and choose Update Field to build the table of contents.")
            return

        def fld(paragraph, kind: str) -> None:
            el = OxmlElement("w:fldChar")
            el.set(_qn("w:fldCharType"), kind)
            paragraph.add_run()._r.append(el)

        fld(first, "begin")
        instr = OxmlElement("w:instrText")
        instr.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        instr.text = ' TOC \\o "1-3" \\h \\z \\u '
        first.add_run()._r.append(instr)
        fld(first, "separate")
        paragraph, anchor = first, first._p
        for i, (level, text) in enumerate(entries):
            if i:
                paragraph = self.doc.add_paragraph()
                anchor.addnext(paragraph._p)  # moved from the end of the body to just after the previous entry
                anchor = paragraph._p
            paragraph.paragraph_format.space_after = Pt(2)
            if level > 1:
                paragraph.paragraph_format.left_indent = Inches(0.25 * (level - 1))
            paragraph.add_run(xml_safe(text))
        fld(paragraph, "end")


def write_docx(model: ReportModel, path: str | os.PathLike, template: str | os.PathLike | None = None) -> Path:
    """Write ``model`` as a Word document at ``path``; return the path."""
    doc = _open_base(template)
    _page_setup(doc, model.paper, template is not None)
    _set_update_fields(doc)
    cp = doc.core_properties
    when = study_datetime(model.date)
    cp.title = xml_safe(model.title)
    cp.subject = xml_safe(model.subtitle or "")
    cp.author = xml_safe(", ".join(model.authors)) or "sp_realist"
    cp.last_modified_by = "sp_realist"
    cp.created = when
    cp.modified = when
    cp.last_printed = when
    cp.revision = 1
    cp.comments = ""
    cp.keywords = "realist evaluation; CMOC"
    _Writer(model, doc).write()
    buf = io.BytesIO()
    doc.save(buf)
    path = Path(path)
    path.write_bytes(_normalise_zip(buf.getvalue()))
    return path


def _normalise_zip(data: bytes) -> bytes:
    """The same zip with every entry's timestamp fixed, so equal documents are equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()

"""Word report layout: table column widths from their content, wide tables on landscape pages.

Before this, every table had equal columns, so the 11-column saturation table squeezed its long
"Saturation notes" into a column one or two characters wide (one row per page).
"""

from __future__ import annotations

import re

import docx
import pytest
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from docx.shared import Pt

from report_data import populate
from sp_realist.report import docx_writer as dw
from sp_realist.report.api import write_report
from sp_realist.report.model import ReportSettings, build_report_model

pytestmark = pytest.mark.sqlite_only(
    "the Word writer's layout; the report model it writes is built on both back ends in "
    "test_report_model.py")


def min_width(word: str, size: float, bold: bool = False) -> float:
    return (dw.word_ems(word, bold) + 0.5) * size + dw._CELL_PAD_PT


def test_widths_fill_the_page_and_never_split_a_word():
    columns = ["CMOC", "Supporting excerpts", "Saturation notes"]
    rows = [["T1.1", "8", "eight supporting excerpts from S1 DK1, S1 DK2 and S3 DK2; the later entries added nothing new"],
            ["T1.2", "12", "short"]]
    w = dw.column_widths(columns, rows, 468.0, 11.0)
    assert sum(w) == pytest.approx(468.0)
    # Each column at least as wide as its longest word (header words in bold).
    assert w[0] >= min_width("CMOC", 11, bold=True)
    assert w[1] >= min_width("Supporting", 11, bold=True)
    # The spare width goes to the long text, not to the short numbers under a long header.
    assert w[2] > w[1] > w[0]
    assert w[2] > 468.0 / 2


def test_widths_when_not_even_the_words_fit():
    columns = [f"Participants{chr(65 + i)}" for i in range(12)]
    w = dw.column_widths(columns, [["x"] * 12], 300.0, 11.0)
    assert sum(w) == pytest.approx(300.0) and max(w) == pytest.approx(min(w))
    assert dw.column_widths([], [], 300.0, 11.0) == []


def test_first_column_counts_the_provenance_marker():
    plain = dw.column_widths(["Id", "Text"], [["T1", "a b c d e f g h i j k l m n o p"]], 400.0, 11.0)
    marked = dw.column_widths(["Id", "Text"], [["T1", "a b c d e f g h i j k l m n o p"]], 400.0, 11.0,
                              extra_first=["P1234567"])
    assert marked[0] > plain[0]


@pytest.fixture
def report(project, tmp_path):
    populate(project)
    out = tmp_path / "report.docx"
    settings = ReportSettings(figure=False)
    write_report(project, out, settings=settings)
    return docx.Document(str(out)), build_report_model(project, settings)


def grid(table) -> list[int]:
    return [int(g.get(qn("w:w"))) for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]


def section_of(doc, table):
    """The section a table belongs to: the first section break after it (or the document's last)."""
    body = list(doc.element.body)
    i = body.index(table._tbl)
    breaks = 0
    for el in body[:i]:
        if el.find(f"{qn('w:pPr')}/{qn('w:sectPr')}") is not None:
            breaks += 1
    return doc.sections[breaks]


def test_tables_fill_the_text_width_and_wide_ones_turn_landscape(report):
    doc, model = report
    wide = [t for t in doc.tables if len(t.rows[0].cells) >= dw.WIDE_TABLE_COLUMNS]
    seen_wide = 0
    for table in doc.tables:
        section = section_of(doc, table)
        text_width = (section.page_width - section.left_margin - section.right_margin) / 635  # EMU -> twips
        widths = grid(table)
        assert sum(widths) == pytest.approx(text_width, abs=len(widths))
        # Every cell of a row has its column's width (Word reads tcW, LibreOffice the grid).
        for row in table.rows[:3]:
            assert [int(c._tc.tcPr.find(qn("w:tcW")).get(qn("w:w"))) for c in row.cells] == widths
        header = table.rows[0]
        if len(header.cells) >= dw.WIDE_TABLE_COLUMNS:
            seen_wide += 1
            assert section.orientation == WD_ORIENT.LANDSCAPE and section.page_width > section.page_height
            sizes = {r.font.size for c in table.rows[1].cells for p in c.paragraphs for r in p.runs if r.text}
            assert sizes == {Pt(dw.WIDE_TABLE_PT)}
        else:
            # Landscape only when the longest words do not fit the portrait text width at body size.
            rows = [[c.text for c in row.cells] for row in table.rows[1:]]
            needs = sum(dw.min_column_widths([c.text for c in header.cells], rows, dw.BODY_PT))
            portrait = (min(section.page_width, section.page_height) - section.left_margin
                        - section.right_margin) / 12700
            landscape = section.orientation == WD_ORIENT.LANDSCAPE
            # (the writer measures the model's cells; the docx text differs by a marker's digits at most)
            assert (needs > portrait - 3) if landscape else (needs <= portrait + 3)
            assert (section.page_width > section.page_height) == landscape
    assert seen_wide == len(wide)
    # The document goes back to portrait after a wide table.
    assert doc.sections[-1].orientation == WD_ORIENT.PORTRAIT



def test_contents_field_already_lists_the_headings(report):
    """The TOC field's cached result lists headings 1-3 in order (Word refreshes it with page numbers)."""
    doc, _model = report
    body = doc.element.body
    paragraphs = list(body.iter(qn("w:p")))
    begin = next(i for i, p in enumerate(paragraphs)
                 if any((t.text or "").strip().startswith("TOC \\o") for t in p.iter(qn("w:instrText"))))
    end = next(i for i in range(begin, len(paragraphs))
               if any(f.get(qn("w:fldCharType")) == "end" for f in paragraphs[i].iter(qn("w:fldChar"))))

    def text(p):
        return "".join(t.text or "" for t in p.iter(qn("w:t")))

    cached = [text(p) for p in paragraphs[begin:end + 1]]
    headings = [p.text for p in doc.paragraphs
                if p.style.name in ("Heading 1", "Heading 2", "Heading 3")]
    # The cached entries carry the numbers Word's list numbering shows before the (numbered) headings.
    assert [re.sub(r"^\d+(\.\d+)* ", "", c) for c in cached] == headings and len(headings) > 10
    assert cached[0] == "1 Methods" and any(c.startswith("3.1 T1: ") for c in cached)
    # Indented by level; the entries are plain paragraphs, not headings (they are not in the outline).
    entries = doc.paragraphs[[p._p for p in doc.paragraphs].index(paragraphs[begin]):][:len(cached)]
    levels = [int(p.style.name[-1]) for p in doc.paragraphs if p.style.name in ("Heading 1", "Heading 2", "Heading 3")]
    for entry, level in zip(entries, levels):
        assert not entry.style.name.startswith("Heading")
        indent = entry.paragraph_format.left_indent or 0
        assert (indent > 0) == (level > 1)


def test_figures_are_printed_at_their_drawn_size_and_split_rather_than_shrunk():
    """Figures are drawn WIDTH_IN wide with MIN_PT text and placed at that size, so their text prints at
    8 pt or more; a theory with many CMOCs is split over several figures, none taller than the page."""
    import io

    from PIL import Image

    from sp_realist.report import figures

    rows = [[f"T1.{i}", "a context " * 12, "a mechanism", "an outcome " * 6] for i in range(40)]
    pngs = figures.theory_figures(rows, 8.0)
    assert len(pngs) > 1
    for png in pngs:
        im = Image.open(io.BytesIO(png))
        w_in, h_in = im.size[0] / 200, im.size[1] / 200
        assert abs(w_in - figures.WIDTH_IN) < 0.02 and h_in <= 8.0
    writer = dw._Writer.__new__(dw._Writer)
    writer.doc = docx.Document()
    writer.m = type("M", (), {"numbering": "document"})()
    writer.style_ids = {s.name: s.style_id for s in writer.doc.styles}
    writer.figure_number, writer.chapter = 0, None
    writer.picture(pngs[0], "CMOCs of theory T1")
    shape = writer.doc.inline_shapes[0]
    assert abs(shape.width.inches - figures.WIDTH_IN) < 0.02  # not stretched or shrunk: 8 pt stays 8 pt

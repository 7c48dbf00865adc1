"""The Word report as a document a commissioner receives: paper, page numbers, numbered headings,
per-chapter table numbers, rows that never split, header rows that repeat, widths that never break a
word, and no section without data (in Word, HTML and Markdown alike)."""

from __future__ import annotations

import re

import docx
import pytest
from docx.oxml.ns import qn
from docx.shared import Mm

from report_data import interview_draft, populate
from sp_realist.errors import SpRealistError
from sp_realist.report import docx_writer as dw
from sp_realist.report.api import write_report
from sp_realist.report.model import ReportSettings
from sp_realist.sources import add_source, ensure_participant

pytestmark = pytest.mark.sqlite_only(
    "Word page layout of a rendered report; the report model it renders is built on both back ends in "
    "test_report_model.py")


def write(project, tmp_path, name="report.docx", **settings):
    out = tmp_path / name
    write_report(project, out, settings=ReportSettings(figure=False, **settings))
    return out


@pytest.fixture
def filled(populated):
    return populated


def instr(part_element) -> list[str]:
    return [(t.text or "").strip() for t in part_element.iter(qn("w:instrText"))]


def test_a4_by_default_and_letter_when_asked(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path)))
    for section in doc.sections:
        short, long_ = sorted((section.page_width, section.page_height))
        assert abs(short - Mm(210)) < Mm(0.1) and abs(long_ - Mm(297)) < Mm(0.1)
    doc = docx.Document(str(write(filled, tmp_path, "letter.docx", paper="letter")))
    for section in doc.sections:
        short, long_ = sorted((section.page_width, section.page_height))
        assert abs(short - Mm(215.9)) < Mm(0.1) and abs(long_ - Mm(279.4)) < Mm(0.1)


def test_paper_and_numbering_settings_are_checked():
    with pytest.raises(SpRealistError, match="paper 'a5' is not one of a4, letter"):
        ReportSettings.from_mapping({"paper": "A5"})
    with pytest.raises(SpRealistError, match="numbering 'section' is not one of document, chapter"):
        ReportSettings.from_mapping({"numbering": "section"})
    assert ReportSettings.from_mapping({"paper": "Letter"}).paper == "letter"


def test_every_page_has_a_page_number_in_its_footer(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path)))
    for section in doc.sections:  # later sections (landscape pages) share the first section's footer
        assert "PAGE" in instr(section.footer._element)


def test_headings_are_numbered_by_word_and_the_contents_shows_the_numbers(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path)))
    numbered = {}
    for p in doc.paragraphs:
        if p.style.name.startswith("Heading"):
            numpr = p._p.pPr.numPr if p._p.pPr is not None else None
            numbered[p.text] = None if numpr is None else numpr.ilvl.val
    assert numbered["Methods"] == 0 and numbered["Realist findings"] == 0
    assert numbered["T1: Link worker frustration with confusion in the referral process"] == 1
    assert numbered["If/then statements"] == 2
    assert numbered["Appendices"] is None and numbered["Appendix A: Codebook"] is None  # lettered instead
    # The multilevel list is "1", "1.1", "1.1.1".
    num_id = next(p._p.pPr.numPr.numId.val for p in doc.paragraphs if p.text == "Methods")
    numbering = doc.part.numbering_part.element
    aid = next(n.abstractNumId.val for n in numbering.num_lst if n.numId == num_id)
    abstract = next(a for a in numbering.findall(qn("w:abstractNum")) if a.get(qn("w:abstractNumId")) == str(aid))
    texts = [lvl.find(qn("w:lvlText")).get(qn("w:val")) for lvl in abstract.findall(qn("w:lvl"))]
    assert texts == ["%1", "%1.%2", "%1.%2.%3"]
    body = "\n".join(p.text for p in doc.paragraphs)
    assert "1 Methods" in body and "3.1 T1: Link worker" in body  # the contents' cached entries


def test_chapter_numbering_gives_table_6_1_style_captions(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path, numbering="chapter")))
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption"]
    labels = [re.match(r"Table ([0-9A-Z]+\.\d+):", c).group(1) for c in captions if c.startswith("Table")]
    assert labels[0] == "1.1"  # Methods is chapter 1
    assert "3.1" in labels and "3.2" in labels  # one CMOC table per theory in Realist findings (chapter 3)
    assert "A.1" in labels  # the codebook, Appendix A
    assert len(labels) == len(set(labels))
    seq = [t for t in instr(doc.element.body) if t.startswith("SEQ Table")]
    # each caption's field is set to its number in the chapter (\r), kept when Word or LibreOffice update it
    assert seq[:2] == ["SEQ Table \\r 1 \\* ARABIC", "SEQ Table \\r 2 \\* ARABIC"]
    plain = docx.Document(str(write(filled, tmp_path, "plain.docx")))
    assert [p.text for p in plain.paragraphs if p.style.name == "Caption"][0].startswith("Table 1:")


def test_rows_never_split_and_header_rows_repeat(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path)))
    assert len(doc.tables) > 8
    for table in doc.tables:
        header = table.rows[0]._tr.trPr
        assert header.find(qn("w:tblHeader")).get(qn("w:val")) == "true"
        for row in table.rows:
            assert row._tr.trPr.find(qn("w:cantSplit")).get(qn("w:val")) == "true"


def test_no_column_is_narrower_than_its_longest_word(filled, tmp_path):
    doc = docx.Document(str(write(filled, tmp_path)))
    for table in doc.tables:
        header = [c.text for c in table.rows[0].cells]
        rows = [[c.text for c in row.cells] for row in table.rows[1:]]
        size = next((r.font.size.pt for c in table.rows[-1].cells for p in c.paragraphs for r in p.runs
                     if r.font.size is not None), dw.BODY_PT)
        widths = [int(g.get(qn("w:w"))) / 20 for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]
        mins = dw.min_column_widths(header, rows, size)
        assert all(w >= m - 0.5 for w, m in zip(widths, mins)), (header, widths, mins)


def test_table_layout_turns_landscape_then_smaller_only_when_needed():
    short = (["A", "B"], [["one", "two"]])
    assert dw.table_layout(*short, 450.0, 700.0) == (False, dw.BODY_PT)
    long_words = ["Inappropriate", "Judgements", "moderate", "complete", "Participants", "Saturation"]
    wide = (long_words, [long_words])
    needs = sum(dw.min_column_widths(*wide, dw.BODY_PT))
    assert dw.table_layout(*wide, needs - 1, needs + 1) == (True, dw.BODY_PT)
    assert dw.table_layout(*wide, needs - 2, needs - 1) == (True, dw.WIDE_TABLE_PT)
    eight = ([f"c{i}" for i in range(8)], [["x"] * 8])
    assert dw.table_layout(*eight, 450.0, 700.0) == (True, dw.WIDE_TABLE_PT)


@pytest.mark.parametrize("name", ["report.docx", "report.html", "report.md"])
def test_sections_without_data_are_left_out_in_every_format(project, tmp_path, name):
    """An interview-only project without codes, CMOCs or appraisals: no codebook, no diary template, no
    appraisal or saturation tables, in all three formats."""
    with project.begin() as conn:
        ensure_participant(conn, "S1 M1", role="manager", site="S1")
        add_source(conn, interview_draft())
    out = write(project, tmp_path, name, rameses_checklist=False, provenance="none")
    if name.endswith(".docx"):
        doc = docx.Document(str(out))
        text = "\n".join(p.text for p in doc.paragraphs)
        captions = [p.text for p in doc.paragraphs if p.style.name == "Caption"]
    else:
        text = out.read_text(encoding="utf-8")
        captions = [text]
    for absent in ("Codebook", "Diary template", "Appraisal and saturation", "Appendices", "What? Returning"):
        assert absent not in text, absent
    assert not any("Appraisal summary" in c or "saturation per CMOC" in c for c in captions)
    assert "Methods" in text


def test_appendix_letters_follow_the_appendices_present(project, tmp_path):
    """Without diaries the appraisal appendix is B (no gap where the diary template would be)."""
    populate(project)
    from sqlalchemy import update

    from sp_realist import schema as S

    with project.begin() as conn:
        conn.execute(update(S.sources).values(kind="interview"))
    doc = docx.Document(str(write(project, tmp_path)))
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 2" and p.text.startswith("Appendix")]
    assert heads == ["Appendix A: Codebook", "Appendix B: Appraisal and saturation",
                     "Appendix C: RAMESES II reporting checklist", "Appendix D: Provenance"]


def body_text_before_appendices(doc) -> str:
    """Paragraphs and table cells of the body up to the Appendices heading."""
    out = []
    for el in doc.element.body:
        if el.tag == qn("w:p"):
            text = "".join(t.text or "" for t in el.iter(qn("w:t")))
            if text == "Appendices":
                break
            out.append(text)
        elif el.tag == qn("w:tbl"):
            out += ["".join(t.text or "" for t in tc.iter(qn("w:t"))) for tc in el.iter(qn("w:tc"))]
    return "\n".join(out)


def test_no_ids_in_the_body_and_quotes_numbered_and_traced(filled, tmp_path):
    from sp_realist.report.model import build_report_model

    doc = docx.Document(str(write(filled, tmp_path)))
    body = body_text_before_appendices(doc)
    assert not re.search(r"P\d+\b", body)  # no provenance markers glued to cells or quotes
    quotes = [p.text for p in doc.paragraphs if p.style.name == "Quote"]
    numbers = [int(m.group(1)) for q in quotes for m in [re.search(r"\) \[Q(\d+)\]", q)] if m]
    assert numbers == list(range(1, len(quotes) + 1))
    # The quote table in the provenance appendix: quote no. | source | participant | position | excerpt id.
    table = next(t for t in doc.tables if t.rows[0].cells[0].text == "Quote no.")
    assert [c.text for c in table.rows[0].cells] == ["Quote no.", "Source", "Participant", "Position", "Excerpt id"]
    model = build_report_model(filled, ReportSettings(figure=False))
    by_number = {f"Q{q.number}": q for q in model.quotes()}
    assert len(table.rows) - 1 == len(quotes) == len(by_number)
    for row in table.rows[1:]:
        no, source, participant, position, excerpt = (c.text for c in row.cells)
        q = by_number[no]
        assert (source, participant, position, excerpt) == (q.source, q.attribution, f"[{q.start}:{q.end}]",
                                                            str(q.excerpt_id))
    # Rows are traced by name, not by a marker: "CMOC T1.1" and its excerpt ids.
    items = next(t for t in doc.tables if [c.text for c in t.rows[0].cells][:2] == ["Item", "Excerpt ids"])
    assert any(r.cells[0].text == "CMOC T1.1" and r.cells[1].text for r in items.rows)


@pytest.mark.parametrize("mode", ["footnotes", "none"])
def test_other_provenance_modes_number_no_quotes(filled, tmp_path, mode):
    doc = docx.Document(str(write(filled, tmp_path, f"{mode}.docx", provenance=mode)))
    quotes = [p.text for p in doc.paragraphs if p.style.name == "Quote"]
    assert quotes and not any("[Q" in q for q in quotes)
    assert not any(t.rows[0].cells[0].text == "Quote no." for t in doc.tables)
    refs = doc.element.body.findall(f".//{qn('w:footnoteReference')}")
    assert bool(refs) == (mode == "footnotes")


def test_capitals_are_measured_wider_than_lower_case():
    """"CMOC" in a bold header needs more room than four average letters (it printed as "CMO|C")."""
    assert dw.word_ems("CMOC", bold=True) > 4 * 0.75 > dw.word_ems("cmoc")
    assert dw.min_column_widths(["CMOC"], [["T1.1"]], 11.0)[0] >= (dw.word_ems("CMOC", True) + 0.5) * 11.0


@pytest.mark.parametrize("name", ["report.docx", "report.md", "report.html"])
def test_an_ifthen_statement_cites_several_participants_in_one_parenthesis(filled, tmp_path, name):
    """T1.1's supporting evidence comes from S1 DK1 (diary) and S1 M1 (interview): "(S1 DK1; S1 M1)"."""
    from sp_realist.report.model import build_report_model

    model = build_report_model(filled, ReportSettings(figure=False))
    t1 = next(s for t in model.theories for s in t.statements if s.key == "T1.1")
    assert t1.cited == ["S1 DK1", "S1 M1"] and t1.citation == "(S1 DK1; S1 M1)"
    out = write(filled, tmp_path, name)
    if name.endswith(".docx"):
        text = "\n".join(p.text for p in docx.Document(str(out)).paragraphs)
    else:
        text = out.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if "T1.1" in x and "If there is" in x)
    assert "(S1 DK1; S1 M1)" in line


def test_a_template_keeps_its_paper_and_its_page_field_unless_told(filled, tmp_path):
    """python-docx's default document is US Letter with an empty footer: as a --template it keeps Letter
    (no paper setting) and gets one PAGE field; a template whose footer has a PAGE field gets no second."""
    from sp_realist.report.docx_writer import _field

    template = tmp_path / "house.docx"
    base = docx.Document()
    base.save(str(template))
    out = tmp_path / "t.docx"
    write_report(filled, out, settings=ReportSettings(figure=False), template=template)
    doc = docx.Document(str(out))
    assert abs(doc.sections[0].page_width - Mm(215.9)) < Mm(0.2)
    assert instr(doc.sections[0].footer._element).count("PAGE") == 1
    out = tmp_path / "a4.docx"
    write_report(filled, out, settings=ReportSettings(figure=False, paper="a4"), template=template)
    assert abs(docx.Document(str(out)).sections[0].page_width - Mm(210)) < Mm(0.2)
    # A footer that already numbers its pages keeps its own field only.
    with_page = docx.Document()
    footer = with_page.sections[0].footer
    footer.is_linked_to_previous = False
    _field(footer.paragraphs[0], "PAGE", "1")
    with_page.save(str(template))
    out = tmp_path / "own.docx"
    write_report(filled, out, settings=ReportSettings(figure=False), template=template)
    assert instr(docx.Document(str(out)).sections[0].footer._element).count("PAGE") == 1

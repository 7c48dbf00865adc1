"""The Word report, read back with python-docx: headings, tables, fields, styles, footnotes."""

from __future__ import annotations

import zipfile

import docx
import pytest
from docx.oxml.ns import qn
from docx.shared import Pt

from sp_realist.errors import SpRealistError
from sp_realist.report.api import write_report
from sp_realist.report.model import ReportSettings, build_report_model

pytestmark = pytest.mark.sqlite_only(
    "the Word writer's output; the report model it writes is built on both back ends in "
    "test_report_model.py")

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@pytest.fixture
def filled(populated):
    return populated


def headings(doc):
    return [(p.style.name, p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")]


def instr_texts(doc):
    return [el.text for el in doc.element.body.iter(qn("w:instrText"))]


def test_docx_structure(filled, tmp_path):
    out = tmp_path / "report.docx"
    settings = ReportSettings(title="Mini evaluation", subtitle="Chapter 6", authors=["A. Author"], date="2020-10-01")
    write_report(filled, out, settings=settings)
    model = build_report_model(filled, settings)
    doc = docx.Document(str(out))

    # Title page, then a real TOC field and Word's "update fields on open".
    assert doc.paragraphs[0].style.name == "Title" and doc.paragraphs[0].text == "Mini evaluation"
    assert doc.paragraphs[1].style.name == "Subtitle"
    assert any("TOC \\o" in t for t in instr_texts(doc))
    assert doc.settings.element.find(qn("w:updateFields")).get(qn("w:val")) == "true"

    # Real heading styles, one section per theory.
    hs = headings(doc)
    assert ("Heading 1", "Methods") in hs and ("Heading 1", "Realist findings") in hs
    assert ("Heading 2", "T1: Link worker frustration with confusion in the referral process") in hs
    assert ("Heading 2", "T2: What matters to me in a complex case") in hs
    assert ("Heading 2", "Appendix E: Provenance") in hs
    assert ("Heading 2", "Appendix D: RAMESES II reporting checklist") in hs
    assert [h for h in hs if h[1] == "If/then statements"] == [("Heading 3", "If/then statements")] * 2

    # Captions carry SEQ fields whose cached results are the table numbers.
    seq = [t for t in instr_texts(doc) if "SEQ Table" in t]
    n_tables = len([t for t in model.tables() if t.number])  # the full saturation table is a CSV only
    # (the model's tables without a number: the provenance and quote tables, the full saturation CSV)
    assert len(seq) == n_tables
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption"]
    assert "Table 5: CMO configurations for theory 1: Link worker frustration with confusion in the referral process" \
        in captions
    assert "Figure 1: Programme theory: mid-range theories and their CMOCs" in captions
    # The overview, then one print-size figure per theory (sp_realist.report.figures), each with alt text.
    assert len(doc.inline_shapes) == 1 + len(model.theories)
    assert doc.inline_shapes[0]._inline.docPr.get("descr").startswith("Figure 1: Programme theory")
    assert "Figure 2: CMOCs of theory T1: context, mechanism and outcome" in captions
    table_captions = [p for p in doc.paragraphs if p.style.name == "Caption" and p.text.startswith("Table")]
    assert table_captions and all(p.paragraph_format.keep_with_next for p in table_captions)

    # Tables: header text, row counts, header rows repeat across pages.
    assert len(doc.tables) == n_tables + 2  # + the provenance appendix's quote and item tables
    for t in doc.tables:
        trpr = t.rows[0]._tr.trPr
        assert trpr is not None and trpr.find(qn("w:tblHeader")) is not None
    cmoc_tables = [t for t in doc.tables if [c.text for c in t.rows[0].cells] ==
                   ["CMOC", "Context (Resource)", "Mechanism (Behaviour)", "Outcome"]]
    assert [len(t.rows) - 1 for t in cmoc_tables] == [2, 1]
    first = cmoc_tables[0]
    assert first.rows[1].cells[0].text.startswith("T1.1")  # + provenance marker
    assert first.rows[2].cells[1].text == "Starting pilot before agreeing paperwork"
    assert first.rows[2].cells[3].text == "Constantly managing change"

    # If/then statements as list paragraphs.
    statements = [p.text for p in doc.paragraphs if p.style.name == "List Bullet" and p.text.startswith("T1.")]
    assert [s.split(":")[0] for s in statements] == ["T1.1", "T1.2"]
    assert all(": If " in s for s in statements)

    # Quotes with attribution.
    quotes = [p.text for p in doc.paragraphs if p.style.name == "Quote"]
    assert any("had to keep asking the receptionist for information" in q and "(S1 DK1)" in q for q in quotes)

    # Dates come from the study only.
    cp = doc.core_properties
    assert cp.created.year == 2020 and cp.created.month == 10 and cp.modified == cp.created
    assert cp.title == "Mini evaluation" and cp.author == "A. Author"


def test_docx_is_byte_identical_across_builds(filled, tmp_path):
    s = ReportSettings(title="X", date="2020-10-01")
    a, b = tmp_path / "a.docx", tmp_path / "b.docx"
    write_report(filled, a, settings=s)
    write_report(filled, b, settings=s)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_footnotes_mode_writes_real_word_footnotes(filled, tmp_path):
    out = tmp_path / "fn.docx"
    write_report(filled, out, settings=ReportSettings(provenance="footnotes", figure=False))
    model = build_report_model(filled, ReportSettings(provenance="footnotes", figure=False))
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert "word/footnotes.xml" in names
        body = z.read("word/document.xml").decode()
        notes = z.read("word/footnotes.xml").decode()
        ctypes = z.read("[Content_Types].xml").decode()
        rels = z.read("word/_rels/document.xml.rels").decode()
        settings_xml = z.read("word/settings.xml").decode()
    assert '<w:footnotePr><w:footnote w:id="-1"/><w:footnote w:id="0"/></w:footnotePr>' in settings_xml
    assert body.count("<w:footnoteReference") == len(model.refs)
    assert notes.count("<w:footnoteRef/>") == len(model.refs)
    assert "excerpt " in notes and "footnotes+xml" in ctypes and "/footnotes" in rels
    doc = docx.Document(str(out))
    assert ("Heading 2", "Appendix E: Provenance") not in headings(doc)


def test_provenance_none_has_no_markers(filled, tmp_path):
    out = tmp_path / "none.docx"
    write_report(filled, out, settings=ReportSettings(provenance="none", figure=False))
    doc = docx.Document(str(out))
    cmoc = next(t for t in doc.tables if t.rows[0].cells[0].text == "CMOC")
    assert cmoc.rows[1].cells[0].text == "T1.1"


def test_reference_template_styles_are_used(filled, tmp_path):
    # A user's reference document: its own Normal font, a header, and body text that must not survive.
    ref = docx.Document()
    ref.styles["Normal"].font.name = "Georgia"
    ref.styles["Normal"].font.size = Pt(13)
    ref.sections[0].header.paragraphs[0].text = "Our organisation"
    ref.add_paragraph("Template body text to be cleared")
    ref_path = tmp_path / "reference.docx"
    ref.save(ref_path)
    out = tmp_path / "styled.docx"
    write_report(filled, out, settings=ReportSettings(figure=False), template=ref_path)
    doc = docx.Document(str(out))
    assert doc.styles["Normal"].font.name == "Georgia"
    assert doc.styles["Normal"].font.size == Pt(13)
    assert doc.sections[0].header.paragraphs[0].text == "Our organisation"
    assert all("Template body text" not in p.text for p in doc.paragraphs)
    assert headings(doc)[0] == ("Heading 1", "Methods")


def test_template_missing_styles_are_supplied(filled, tmp_path):
    # A template without the heading/caption styles (styles removed from the XML).
    ref = docx.Document()
    styles = ref.styles.element
    for el in list(styles.findall(qn("w:style"))):
        if el.get(qn("w:styleId")) in ("Heading1", "Heading2", "Caption", "Quote", "TableGrid"):
            styles.remove(el)
    ref_path = tmp_path / "bare.docx"
    ref.save(ref_path)
    out = tmp_path / "out.docx"
    write_report(filled, out, settings=ReportSettings(figure=False), template=ref_path)
    doc = docx.Document(str(out))
    assert ("Heading 1", "Methods") in headings(doc)
    assert any(p.style.name == "Caption" for p in doc.paragraphs)


def test_bad_template_is_one_clear_error(filled, tmp_path):
    bad = tmp_path / "not.docx"
    bad.write_text("plain text")
    with pytest.raises(SpRealistError, match="not a Word document"):
        write_report(filled, tmp_path / "r.docx", template=bad)
    with pytest.raises(SpRealistError, match="does not exist"):
        write_report(filled, tmp_path / "r.docx", template=tmp_path / "missing.docx")
    with pytest.raises(SpRealistError, match="only applies to --to docx"):
        write_report(filled, tmp_path / "r.md", template=bad)
    assert not (tmp_path / "r.docx").exists()

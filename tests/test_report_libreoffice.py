"""The shipped corpus's Word report as LibreOffice prints it (run when ``soffice`` and poppler's
``pdftotext``/``pdfinfo`` are installed; skipped otherwise, and not installed by .ci/run): every page is A4,
and no word of a table cell is broken across lines."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter

import docx
import pytest

pytestmark = [pytest.mark.skipif(not all(shutil.which(t) for t in ("soffice", "pdftotext", "pdfinfo")),
                                 reason="LibreOffice (soffice) and poppler-utils are not installed"),
              pytest.mark.sqlite_only("LibreOffice rendering a written report; the model is built on both back "
                                      "ends in test_report_model.py")]

LONG_WORD = re.compile(r"(?<![A-Za-z'\u2019-])[A-Za-z]{4,}(?![A-Za-z'\u2019-])")


@pytest.fixture(scope="module")
def printed(corpus_build, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("libreoffice")
    src = tmp / "report.docx"
    shutil.copy(corpus_build / "report.docx", src)
    profile = (tmp / "profile").as_uri()  # a profile of its own: parallel runs do not share a lock
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp), str(src)], check=True, capture_output=True, timeout=300)
    pdf = tmp / "report.pdf"
    assert pdf.is_file()
    return src, pdf


def test_every_page_is_a4(printed):
    _src, pdf = printed
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "1000", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert len(sizes) > 10
    for w, h in sizes:
        short, long_ = sorted((float(w), float(h)))
        assert abs(short - 595.3) < 1 and abs(long_ - 841.9) < 1, (w, h)
    # the wide tables' pages are landscape, the others portrait
    assert any(float(w) > float(h) for w, h in sizes) and float(sizes[0][0]) < float(sizes[0][1])


def test_no_word_of_a_table_cell_is_split(printed):
    """Every word (of four letters or more) of every table cell occurs as many times, whole, in the printed text as in the
    document: a word broken inside a narrow cell ("Inappropriat|e", "CMO|C") would be missing once."""
    src, pdf = printed
    doc = docx.Document(str(src))
    cell_words: set[str] = set()
    texts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            for cell in row.cells:
                cell_words.update(LONG_WORD.findall(cell.text))
                texts.append(cell.text)
    assert len(cell_words) > 100
    in_doc = Counter(re.findall(r"[A-Za-z]+", "\n".join(texts)))
    printed_text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                                  check=True).stdout
    in_pdf = Counter(re.findall(r"[A-Za-z]+", printed_text))
    split = sorted(w for w in cell_words if in_pdf[w] < in_doc[w])
    assert not split, split


def test_chapter_numbers_survive_libreoffice_updating_the_fields(corpus_build, tmp_path):
    """numbering: chapter gives "Table 4.2" for the second CMOC table of chapter 4 in the printed PDF too."""
    from sp_realist.report.api import write_report
    from sp_realist.report.model import ReportSettings
    from sp_realist.store import Project

    project_file = next(corpus_build.glob("*.sprealist"))
    shutil.copy(project_file, tmp_path / project_file.name)
    with Project.open(tmp_path / project_file.name) as project:
        write_report(project, tmp_path / "chapters.docx", settings=ReportSettings(numbering="chapter", figure=False))
    subprocess.run(["soffice", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(tmp_path / "chapters.docx")],
                   check=True, capture_output=True, timeout=300)
    text = subprocess.run(["pdftotext", str(tmp_path / "chapters.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    labels = re.findall(r"^Table ([0-9A-Z]+\.\d+):", text, re.M)
    assert "2.1" in labels and "4.2" in labels and "5.1" in labels, labels
    # Restarted in every chapter: no chapter of the corpus report has more than five tables (a document-wide
    # count would print "Table 4.6", "Table 6.13").
    assert len(labels) == len(set(labels)) and max(int(lab.split(".")[1]) for lab in labels) <= 5, labels

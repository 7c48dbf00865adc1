"""Summary-of-findings tables in studies (study.yaml `findings:`) and in the reports (md, html, docx, CSV)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sp_realist.cli import main
from sp_realist.cmoc.findings import export_findings_yaml, findings_table
from sp_realist.errors import SpRealistError
from sp_realist.report import ReportSettings, build_report_model, build_study, load_study, write_report
from sp_realist.store import Project

MINI = Path(__file__).parent / "data" / "mini_study"

FINDINGS = {
    "strands": ["Literature", "Interviews and diaries"],
    "evidence": [{"key": "R1", "kind": "literature", "citation": "A review."}],
    "questions": [
        {"key": "Q2", "text": "What helped and what hindered?",
         "topics": [{"topic": "Getting going", "cells": {
             "Literature": [{"text": "Partnerships matter.", "evidence": ["R1"]}],
             "Interviews and diaries": [{"text": "Referrals were confusing.", "themes": ["Getting started"]},
                                        {"text": "Paperwork changed.", "theories": ["T1"]}]}}],
         "worked_well": ["Committed staff."],
         "could_improve": {"heading": "Challenges", "items": [{"text": "Forms.", "codes": ["Paperwork"]}]},
         "overall": "Mixed."},
        {"key": "Q3", "topics": [{"topic": "Voices", "cells": {
            "Interviews and diaries": [{"text": "Relatives spoke for clients.", "cmocs": ["T2.1"]}]}}]},
    ],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("findings") / "study"
    shutil.copytree(MINI, folder)
    (folder / "findings.yaml").write_text(yaml.safe_dump(FINDINGS, sort_keys=False), encoding="utf-8")
    data = yaml.safe_load((folder / "study.yaml").read_text(encoding="utf-8"))
    data["findings"] = "findings.yaml"
    (folder / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    build_study(study, out)
    return out


@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
def test_study_names_its_findings_file_and_build_imports_it(study, built):
    assert load_study(study).findings == [study / "findings.yaml"]
    with Project.open(built / "mini.sprealist") as p:
        assert yaml.safe_load(export_findings_yaml(p)) == FINDINGS
        df = findings_table(p)
    assert list(df["topic"]) == ["Getting going", "Voices"]


def test_a_missing_findings_file_is_refused_before_anything_is_made(study, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(study, bad)
    (bad / "findings.yaml").unlink()
    with pytest.raises(SpRealistError, match=r"the findings file findings.yaml does not exist"):
        load_study(bad)


@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
def test_a_findings_file_with_an_unknown_theme_fails_the_build_and_leaves_out_alone(study, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(study, bad)
    doc = yaml.safe_load((bad / "findings.yaml").read_text(encoding="utf-8"))
    doc["questions"][0]["topics"][0]["cells"]["Literature"][0]["themes"] = ["Nope"]
    (bad / "findings.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["build", str(bad), "--out", str(out)])
    assert r.exit_code == 1
    message = " ".join(r.stderr.split())
    assert "links the theme 'Nope', which does not exist; the themes are: Getting started, Whose voice" in message
    assert not out.exists()


@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
def test_report_model_has_one_numbered_table_per_question_after_the_triangulation(built):
    with Project.open(built / "mini.sprealist") as p:
        model = build_report_model(p, ReportSettings())
        tags = findings_table(p)["Interviews and diaries"].tolist()
    f = model.findings
    assert [q.key for q in f.questions] == ["Q2", "Q3"]
    q2 = f.questions[0]
    assert q2.table.columns == ["Topic", "Literature", "Interviews and diaries"]
    assert q2.table.rows[0][0] == "Getting going"
    assert q2.table.rows[0][1] == "Partnerships matter. [literature]"
    assert q2.table.rows[0][2] == tags[0]  # exactly what `triangulate` shows
    assert [(lst.heading, lst.items) for lst in q2.lists] == [
        ("What worked well", ["Committed staff."]), ("Challenges", [tags_of_forms(built)])]
    assert q2.overall == "Mixed." and f.questions[1].lists == []
    numbers = [t.number for t in model.tables() if t.number]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    tri = model.triangulation.number
    assert [q.table.number for q in f.questions] == [tri + 1, tri + 2]
    assert f.evidence.rows == [["R1", "literature", "A review."]]
    assert f.evidence.number == tri + 3
    # provenance: each topic row lists what its findings' tags rest on
    ref = model.refs[q2.table.refs[0] - 1]
    assert ref.what == "Summary of findings Q2: Getting going"
    with Project.open(built / "mini.sprealist") as p:
        from sp_realist.cmoc.findings import summary_of_findings

        cells = summary_of_findings(p, question="Q2").questions[0].topics[0].cells
    found = [x for c in cells.values() for x in c]
    assert ref.excerpts == sorted({i for x in found for i in x.excerpts}) and ref.excerpts
    assert ref.codings == sorted({i for x in found for i in x.codings}) and ref.codings
    assert ref.sources == sorted({i for x in found for i in x.sources})


def tags_of_forms(built) -> str:
    from sp_realist.cmoc.findings import findings_lists

    with Project.open(built / "mini.sprealist") as p:
        row = findings_lists(p, question="Q2").iloc[1]
    return f"{row['item']} [{row['tags']}]" if row["tags"] else row["item"]


def test_reports_show_the_section_in_every_format(built):
    md = (built / "report.md").read_text(encoding="utf-8")
    assert "- [Summary of findings](#summary-of-findings)" in md
    section = md[md.index("## Summary of findings"):md.index("## Appendices")]
    assert "### Q2: What helped and what hindered?" in section
    assert "| Topic | Literature | Interviews and diaries |" in section
    assert "#### Challenges" in section and "#### Overall\n\nMixed." in section
    # No provenance marker in the body: the row is traced by name in the provenance appendix.
    assert "| Getting going | Partnerships matter. [literature] |" in section
    assert re.search(r"\| Summary of findings Q2: Getting going \| [0-9, -]* \|", md)
    html = (built / "report.html").read_text(encoding="utf-8")
    assert '<h2 id="summary-of-findings">Summary of findings</h2>' in html
    assert "<h4>What worked well</h4>" in html and "<li>Committed staff.</li>" in html
    import docx

    doc = docx.Document(str(built / "report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    i = headings.index("Summary of findings")
    assert headings[i + 1:i + 5] == ["Q2: What helped and what hindered?", "What worked well", "Challenges", "Overall"]
    cells = {c.text for t in doc.tables for row in t.rows for c in row.cells}
    assert "Partnerships matter. [literature]" in cells
    assert (built / "tables" / "findings_q2.csv").read_text(encoding="utf-8").splitlines()[0] == \
        "Topic,Literature,Interviews and diaries"
    assert (built / "tables" / "evidence_items.csv").is_file()


def test_a_project_without_findings_has_no_section(place, tmp_path):
    from report_data import populate

    p = Project.create(place("p"))
    populate(p)
    model = build_report_model(p, ReportSettings())
    assert model.findings is None
    write_report(p, tmp_path / "r.md", model=model)
    assert "## Summary of findings" not in (tmp_path / "r.md").read_text(encoding="utf-8")
    p.close()

"""RAMESES II checklist (`sp-realist rameses`) and the author's narrative sections (`narrative`, study.yaml).

Statuses are checked on small projects whose content decides them (empty, the report fixture, the fixture with
every narrative section), on the shipped corpus (expectations computed from its study.yaml), and through every
CLI format; the narrative is checked for refusals, round trips and its place in the three report formats.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import docx
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.report import ReportSettings, build_report_model, write_report
from sp_realist.report.narrative import (NARRATIVE_SECTIONS, SECTION_NAMES, get_narrative, markdown_blocks,
                                         markdown_to_html, narrative_frame, remove_narrative, set_narrative,
                                         shift_markdown_headings)
from sp_realist.report.rameses import FILLED, ITEMS, MISSING, NEEDS_TEXT, rameses_checklist
from sp_realist.report.study import build_study, load_study
from sp_realist.store import Project


HERE = Path(__file__).parent
MINI = HERE / "data" / "mini_study"
CORPUS = HERE.parent / "corpora" / "mind-cymru-2020"

#: RAMESES items that only the author's text fills, and the sections each needs (all of them).
TEXT_ITEMS = {}
for _s in NARRATIVE_SECTIONS:
    TEXT_ITEMS.setdefault(_s.item, []).append(_s.name)
PURE_TEXT_ITEMS = {2, 3, 6, 7, 8, 9, 10, 17, 18, 19, 20}  # no project data can fill these
# item 16 (summary of findings) is filled by summary-of-findings tables, else by the author's text


def statuses(project, **kw) -> dict[int, str]:
    return {i.number: i.status for i in rameses_checklist(project, **kw).items}


def write_all_sections(project, folder: Path) -> None:
    for spec in NARRATIVE_SECTIONS:
        path = folder / f"{spec.name}.md"
        path.write_text(f"Text for **{spec.heading}**.\n", encoding="utf-8")
        set_narrative(project, section=spec.name, path=path)


@pytest.fixture
def filled(populated):
    return populated


# --------------------------------------------------------------------------
# Statuses on small projects
# --------------------------------------------------------------------------
def test_twenty_items_in_order_with_titles():
    assert [n for n, *_ in ITEMS] == list(range(1, 21))
    titles = {n: t for n, _p, t, _g, _w in ITEMS}
    assert titles[1] == "Title" and titles[4] == "Programme theory" and titles[13] == "Data analysis"
    assert titles[17] == "Strengths, limitations and future research directions"
    assert titles[20] == "Funding and conflict of interest"
    # every narrative section serves one item, and every pure-text item has a section
    assert PURE_TEXT_ITEMS <= set(TEXT_ITEMS)


def test_empty_project_is_missing_everywhere(project):
    checklist = rameses_checklist(project)
    assert [i.status for i in checklist.items] == [MISSING] * 20
    assert checklist.counts() == {FILLED: 0, NEEDS_TEXT: 0, MISSING: 20}
    assert all(i.action for i in checklist.items)  # each says what to add


def test_project_data_fills_the_data_items_and_asks_for_text(filled):
    got = statuses(filled)
    with filled.connect() as conn:
        n_sources = conn.execute(select(func.count()).select_from(S.sources)).scalar_one()
        n_appraisals = conn.execute(select(func.count()).select_from(S.appraisals)).scalar_one()
        n_participants = conn.execute(select(func.count()).select_from(S.participants)).scalar_one()
        roles = Counter(r for (r,) in conn.execute(select(S.participants.c.role)))
    # data items
    assert {n: got[n] for n in (4, 11, 13, 14, 15)} == dict.fromkeys((4, 11, 13, 14, 15), FILLED)
    # text items: the project holds material, the author's text is absent
    assert {n: got[n] for n in PURE_TEXT_ITEMS} == dict.fromkeys(PURE_TEXT_ITEMS, NEEDS_TEXT)
    assert got[12] == NEEDS_TEXT  # participants by role, but no account of recruitment
    assert got[1] == MISSING  # no title anywhere
    assert got[5] == NEEDS_TEXT  # theories name Q2, Q3 but the questions have no text
    items = {i.number: i for i in rameses_checklist(filled).items}
    assert items[13].holds.startswith(f"{n_appraisals} appraisals")
    assert items[11].holds.count("diar") == 1 and "interview" in items[11].holds
    assert sum(int(n) for n in re.findall(r"(\d+) (?:diaries|diary|interviews?) \(", items[11].holds)) == n_sources
    assert items[14].holds.startswith(f"{n_participants} participants")
    for role, n in roles.items():
        assert f"{role} {n}" in items[12].holds
    assert "T1 (Q2, Q3)" in items[5].holds


def test_title_questions_and_every_section_fill_all_twenty(filled, tmp_path):
    write_all_sections(filled, tmp_path)
    got = statuses(filled, title="A realist evaluation of link workers",
                   questions={"Q2": "What helped?", "Q3": "What affected engagement?"})
    assert got == dict.fromkeys(range(1, 21), FILLED)
    items = {i.number: i for i in rameses_checklist(filled).items}
    assert "author's text 'ethics' (4 words)" in items[6].holds
    assert items[6].action == ""


def test_item_edges(filled, tmp_path):
    # a title that does not say "realist" asks for it; the subtitle may say it
    assert statuses(filled, title="Link workers' diaries")[1] == NEEDS_TEXT
    assert statuses(filled, title="Link workers' diaries", subtitle="A realist evaluation")[1] == FILLED
    # item 19 needs both the conclusion and the recommendations
    set_narrative(filled, section="conclusion", text="It worked, for some.")
    item = rameses_checklist(filled).items[18]
    assert item.status == NEEDS_TEXT and item.action.endswith("recommendations")
    set_narrative(filled, section="recommendations", text="- Do more.")
    assert statuses(filled)[19] == FILLED
    # a question without text
    assert statuses(filled, questions={"Q2": "What helped?", "Q3": ""})[5] == NEEDS_TEXT


def test_cmocs_without_theories_or_evidence(project):
    from sp_realist.cmoc import add_cmoc

    add_cmoc(project, "X1", context="A context", mechanism_response="A response", outcome="An outcome")
    got = statuses(project)
    assert got[4] == NEEDS_TEXT  # a CMOC in no theory
    assert got[15] == NEEDS_TEXT  # a CMOC without evidence
    assert got[13] == NEEDS_TEXT  # no six-step appraisal recorded
    assert got[11] == MISSING and got[14] == MISSING


# --------------------------------------------------------------------------
# Narrative sections: refusals and round trips
# --------------------------------------------------------------------------
def test_unknown_section_is_refused_with_the_allowed_names(project):
    with pytest.raises(SpRealistError) as err:
        set_narrative(project, section="limitations", text="x")
    msg = str(err.value)
    assert "unknown section 'limitations'" in msg
    for name in SECTION_NAMES:
        assert name in msg
    assert get_narrative(project) == {}


def test_bad_narrative_files_are_refused(project, tmp_path):
    latin = tmp_path / "latin.md"
    latin.write_bytes("Caf\xe9".encode("latin-1"))
    empty = tmp_path / "empty.md"
    empty.write_text("\n  \n", encoding="utf-8")
    for path, words in ((latin, "is not UTF-8"), (empty, "is empty"), (tmp_path / "absent.md", "does not exist")):
        with pytest.raises(SpRealistError, match=words):
            set_narrative(project, section="ethics", path=path)
    assert get_narrative(project) == {}


@settings(max_examples=40, deadline=None)
# any text a project accepts (control characters other than tab and line feed are refused; see test_store_text_limits)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n"),
                    max_size=300))
@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
@example(text="Approved by the committee in March 2019.")
@example(text="# A heading\n\n- a\n- b\n")
@example(text="Caf\u00e9 \u2013 \u2018quoted\u2019 \U0001f600")
@example(text="\n\nleading and trailing blank lines\n\n")
@example(text="   ")
def test_narrative_round_trip(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("rt") / "p.sprealist"
    project = Project.create(path)
    try:
        if not text.strip():
            with pytest.raises(SpRealistError):
                set_narrative(project, section="ethics", text=text)
            assert get_narrative(project) == {}
            return
        set_narrative(project, section="ethics", text=text)
        stored = get_narrative(project)["ethics"]
        assert stored == text.strip("\n") + "\n"
        assert Project.open(path).get_setting("narrative")["ethics"] == stored  # persisted
    finally:
        project.close()


def test_set_replace_show_remove(project, tmp_path):
    f = tmp_path / "ethics.md"
    f.write_text("First.\r\n", encoding="utf-8")
    set_narrative(project, section="ethics", path=f)
    set_narrative(project, section="summary", text="Summary.")
    set_narrative(project, section="ethics", text="Second.")
    assert get_narrative(project) == {"summary": "Summary.\n", "ethics": "Second.\n"}
    frame = narrative_frame(project)
    assert list(frame["section"]) == list(SECTION_NAMES)
    assert frame.set_index("section").loc["ethics", "words"] == 1
    assert remove_narrative(project, section="ethics") is True
    assert remove_narrative(project, section="ethics") is False
    assert get_narrative(project) == {"summary": "Summary.\n"}
    with project.connect() as conn:
        actions = [a for (a,) in conn.execute(select(S.audit_log.c.action))]
    assert actions.count("narrative.set") == 3 and actions.count("narrative.remove") == 1


# --------------------------------------------------------------------------
# Markdown rendering
# --------------------------------------------------------------------------
@pytest.mark.parametrize("text, offset, expected", [
    ("# A\n\ntext\n", 2, "### A\n\ntext\n"),
    ("Setext\n======\n\nbody", 3, "#### Setext\n\nbody"),
    ("##### Deep\n", 3, "###### Deep\n"),  # capped at level 6
    ("```\n# not a heading\n```\n", 2, "```\n# not a heading\n```\n"),
    ("plain\n", 0, "plain\n"),
])
def test_shift_markdown_headings(text, offset, expected):
    assert shift_markdown_headings(text, offset) == expected


def test_markdown_to_html_escapes_raw_html_and_moves_headings():
    html = markdown_to_html("# Title\n\n<script>alert(1)</script>\n\n*em* and **strong**", 2)
    assert "<h3>Title</h3>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<em>em</em>" in html and "<strong>strong</strong>" in html


def test_markdown_blocks_for_word():
    blocks = markdown_blocks("## Head\n\nSome **bold** text.\n\n- one\n  - nested\n1. first\n\n> quoted\n")
    kinds = [(b["type"], b["level"]) for b in blocks]
    assert kinds == [("heading", 2), ("paragraph", 0), ("bullet", 1), ("bullet", 2), ("number", 1), ("quote", 0)]
    assert blocks[1]["runs"] == [("Some ", False, False, False), ("bold", True, False, False),
                                 (" text.", False, False, False)]


# --------------------------------------------------------------------------
# Reports: narrative sections and the checklist appendix
# --------------------------------------------------------------------------
def test_reports_show_the_narrative_and_the_checklist(filled, tmp_path):
    (tmp_path / "n").mkdir()
    write_all_sections(filled, tmp_path / "n")
    settings_ = ReportSettings(title="A realist evaluation", questions={"Q2": "What helped?", "Q3": "What else?"})
    model = build_report_model(filled, settings_)
    assert [b.name for b in model.narrative["discussion"]] == [
        s.name for s in NARRATIVE_SECTIONS if s.part == "discussion"]
    assert model.rameses is not None and len(model.rameses.rows) == 20
    assert {row[2] for row in model.rameses.rows} == {FILLED}
    assert model.rameses in model.tables()

    write_report(filled, tmp_path / "r.md", model=model)
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    order = ["## Summary", "## Introduction", "### Rationale for the evaluation", "## Methods",
             "### Ethical approval", "### Data, participants and analysis steps", "## Realist findings",
             "## Discussion", "### Funding and conflicts of interest", "### Appendix D: RAMESES II reporting checklist",
             "### Appendix E: Provenance"]
    positions = [md.index(h + "\n") for h in order]
    assert positions == sorted(positions)
    assert "Text for **Ethical approval**." in md

    write_report(filled, tmp_path / "r.html", model=model)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<h2 id="discussion">Discussion</h2>' in html and "<strong>Ethical approval</strong>" in html
    assert 'id="appendix-d-rameses-ii-reporting-checklist"' in html

    write_report(filled, tmp_path / "r.docx", model=model)
    doc = docx.Document(str(tmp_path / "r.docx"))
    heads = [(p.style.name, p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert ("Heading 1", "Discussion") in heads and ("Heading 2", "Ethical approval") in heads
    assert ("Heading 2", "Appendix D: RAMESES II reporting checklist") in heads
    ethics = next(p for p in doc.paragraphs if p.text == "Text for Ethical approval.")
    assert [r.bold for r in ethics.runs if r.text == "Ethical approval"] == [True]
    rameses = next(t for t in doc.tables if t.rows[0].cells[0].text == "Item" and len(t.rows) == 21)
    assert [r.cells[2].text for r in rameses.rows[1:]] == [FILLED] * 20


def test_report_without_narrative_has_no_empty_sections_and_the_appendix_can_be_left_out(filled, tmp_path):
    write_report(filled, tmp_path / "r.md")
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## Summary" not in md and "## Discussion" not in md and "## Introduction" not in md
    assert "### Appendix D: RAMESES II reporting checklist" in md
    off = ReportSettings.from_mapping({"rameses_checklist": False})
    write_report(filled, tmp_path / "r2.md", settings=off)
    md = (tmp_path / "r2.md").read_text(encoding="utf-8")
    # The appendices are lettered over those present: provenance moves up to D.
    assert "RAMESES" not in md and "### Appendix D: Provenance" in md and "Appendix E" not in md


# --------------------------------------------------------------------------
# study.yaml narrative:
# --------------------------------------------------------------------------
def _mini_with(tmp_path: Path, narrative) -> Path:
    study = tmp_path / "study"
    shutil.copytree(MINI, study)
    data = yaml.safe_load((study / "study.yaml").read_text(encoding="utf-8"))
    data["narrative"] = narrative
    (study / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return study


def test_study_narrative_refusals(tmp_path):
    study = _mini_with(tmp_path, {"limitations": "lim.md"})
    (study / "lim.md").write_text("x", encoding="utf-8")
    with pytest.raises(SpRealistError) as err:
        load_study(study)
    assert "narrative: unknown section 'limitations'; use one of summary, rationale" in str(err.value)
    for value, words in (({"ethics": "absent.md"}, "does not exist"), ({"ethics": "../outside.md"}, "outside the study"),
                         ("ethics.md", "must map section names"), ({"ethics": None}, "needs a file name")):
        (tmp_path / "outside.md").write_text("x", encoding="utf-8")
        shutil.rmtree(tmp_path / "study")
        with pytest.raises(SpRealistError, match=words):
            load_study(_mini_with(tmp_path, value))


@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
def test_built_project_carries_its_narrative_anywhere(tmp_path):
    study = _mini_with(tmp_path, {"ethics": "text/ethics.md", "summary": "text/summary.md"})
    (study / "text").mkdir()
    (study / "text" / "ethics.md").write_text("Approved by a committee.\n", encoding="utf-8")
    (study / "text" / "summary.md").write_text("A realist summary.\n", encoding="utf-8")
    out = tmp_path / "out"
    build_study(study, out)
    assert "### Ethical approval\n\nApproved by a committee." in (out / "report.md").read_text(encoding="utf-8")
    moved = tmp_path / "elsewhere" / "mini.sprealist"
    moved.parent.mkdir()
    shutil.copyfile(out / "mini.sprealist", moved)
    shutil.rmtree(study)  # the study folder is gone: the project still holds the text
    project = Project.open(moved)
    try:
        assert get_narrative(project) == {"summary": "A realist summary.\n", "ethics": "Approved by a committee.\n"}
        got = statuses(project)
        assert got[6] == FILLED and got[2] == FILLED and got[20] == NEEDS_TEXT
        write_report(project, tmp_path / "again.md")
        md = (tmp_path / "again.md").read_text(encoding="utf-8")
        assert "## Summary\n\nA realist summary." in md
    finally:
        project.close()


# --------------------------------------------------------------------------
# The shipped corpus
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_project(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "out"
    result = build_study(CORPUS, out)
    project = Project.open(result.project)
    yield out, project
    project.close()


@pytest.mark.sqlite_only("built from a study into a project file; build --into is tested in test_postgres.py")
def test_corpus_statuses_follow_its_study(corpus_project):
    out, project = corpus_project
    study = yaml.safe_load((CORPUS / "study.yaml").read_text(encoding="utf-8"))
    given_sections = set(study["narrative"])
    expected = {n: FILLED for n in range(1, 21)}  # data items are filled by the corpus's data
    for item, names in TEXT_ITEMS.items():
        if item in PURE_TEXT_ITEMS or item == 12:
            expected[item] = FILLED if set(names) <= given_sections else NEEDS_TEXT
    if not study.get("findings"):
        expected[16] = FILLED if "findings_summary" in given_sections else NEEDS_TEXT
    got = statuses(project)
    assert got == expected
    assert {n for n, s in got.items() if s != FILLED} == {18}  # comparison with the literature: not written
    items = {i.number: i for i in rameses_checklist(project).items}
    assert "4 mid-range theories (T1, T2, T3, T4) with 13 CMOCs" in items[4].holds
    with project.connect() as conn:
        n_findings = conn.execute(select(func.count()).select_from(S.findings)).scalar_one()
        n_questions = conn.execute(select(func.count()).select_from(S.finding_questions)).scalar_one()
    assert items[16].holds == (f"summary-of-findings tables: {n_findings} findings over {n_questions} "
                               "evaluation questions")
    with project.connect() as conn:
        n_history = conn.execute(select(func.count()).select_from(S.theory_history)).scalar_one()
        ev = conn.execute(select(S.cmocs.c.key, S.cmoc_evidence.c.role, func.count()).select_from(
            S.cmoc_evidence.join(S.cmocs, S.cmoc_evidence.c.cmoc_id == S.cmocs.c.id))
            .group_by(S.cmocs.c.key, S.cmoc_evidence.c.role)).all()
    assert f"{n_history} refinements in the theory history" in items[4].holds
    per = {(k, role): n for k, role, n in ev}
    for key in {k for k, _r in per}:
        assert f"{key} {per.get((key, 'supports'), 0)}/{per.get((key, 'refutes'), 0)}" in items[15].holds
    assert items[11].holds.startswith("42 diaries (sites S1, S2, S3; 2019-05-14 to 2020-03-")
    # the report's appendix says the same
    md = (out / "report.md").read_text(encoding="utf-8")
    appendix = md.split("### Appendix D: RAMESES II reporting checklist")[1].split("### Appendix E")[0]
    rows = [line for line in appendix.splitlines() if line.startswith("| ") and not line.startswith(("| Item", "| ---"))]
    assert [r.split(" | ")[2] for r in rows] == [got[n] for n in range(1, 21)]
    assert (out / "tables" / "rameses_checklist.csv").exists()


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "md", "docx"])
def test_rameses_cli_formats(runner, cli, filled, populated_path, tmp_path, fmt):
    out = tmp_path / f"rameses.{fmt}"
    args = ["rameses", "-p", populated_path, "--format", fmt]
    if fmt == "docx":
        args += ["--output", str(out)]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    expected = statuses(filled)
    assert "Of the 20 items" in " ".join(r.stderr.split())
    if fmt == "json":
        data = json.loads(r.stdout)
        assert [(d["item"], d["status"]) for d in data] == sorted(expected.items())
        assert all(d["guidance"] for d in data)
    elif fmt == "md":
        assert r.stdout.startswith("# RAMESES II reporting checklist\n")
        assert "| 13 | Data analysis | filled from project |" in r.stdout
    elif fmt == "csv":
        assert r.stdout.splitlines()[0].startswith("item,part,title,status,holds,action,report_section")
        assert len(r.stdout.strip().splitlines()) == 21
    elif fmt == "table":  # piped: tab-separated text, a header line and one line per item
        lines = r.stdout.splitlines()
        assert lines[0].split("\t")[:3] == ["item", "title", "status"] and len(lines) == 21
        assert lines[20].startswith("20\tFunding")
    else:
        doc = docx.Document(str(out))
        table = doc.tables[0]
        assert [c.text for c in table.rows[0].cells][:3] == ["Item", "Title", "Status"]
        assert [(int(row.cells[0].text), row.cells[2].text) for row in table.rows[1:]] == sorted(expected.items())
        assert doc.paragraphs[0].text == "RAMESES II reporting checklist"


def test_rameses_cli_docx_needs_output(runner, cli, project_path):
    r = runner.invoke(cli, ["rameses", "-p", str(project_path), "--format", "docx"])
    assert r.exit_code == 2 and "--output" in r.output


def test_narrative_cli(runner, cli, project_path, tmp_path):
    f = tmp_path / "ethics.md"
    f.write_text("Approved in **March 2019**.\n", encoding="utf-8")
    r = runner.invoke(cli, ["narrative", "set", "ethics", str(f), "-p", str(project_path)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert "RAMESES II item 6" in said and "Methods > Ethical approval" in said
    r = runner.invoke(cli, ["narrative", "show", "ethics", "-p", str(project_path)])
    assert r.exit_code == 0 and r.stdout == "Approved in **March 2019**.\n"
    r = runner.invoke(cli, ["narrative", "set", "summary", "-", "-p", str(project_path)], input="From stdin.\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["narrative", "show", "--format", "json", "-p", str(project_path)])
    rows = json.loads(r.stdout)
    assert [d["section"] for d in rows] == list(SECTION_NAMES)
    assert {d["section"] for d in rows if d["stored"]} == {"ethics", "summary"}
    # unknown section: a usage error listing the allowed names; nothing stored
    r = runner.invoke(cli, ["narrative", "set", "limitations", str(f), "-p", str(project_path)])
    assert r.exit_code == 2 and "strengths_limitations" in r.output and "funding" in r.output
    # a section with no text: one sentence, exit 1
    r = runner.invoke(cli, ["narrative", "show", "funding", "-p", str(project_path)])
    assert r.exit_code == 1 and "no text is stored" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["narrative", "remove", "ethics", "-p", str(project_path)])
    assert r.exit_code == 0 and "Removed" in r.stderr
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"\xff\xfe\x00")
    r = runner.invoke(cli, ["narrative", "set", "ethics", str(bad), "-p", str(project_path)])
    assert r.exit_code == 1 and "not UTF-8" in r.stderr
    for args in (["rameses", "--help"], ["narrative", "--help"], ["narrative", "set", "--help"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0 and "Example" in r.output

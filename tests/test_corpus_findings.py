"""The corpus's summary-of-findings tables against the structure of the report's Tables 7.1-7.4.

Questions, topics (rows) and strands (columns) are the report's; which cells are filled follows the report's
tables; each Reflective diaries cell cites the chapter 6 theories the report cites there; every cell links
something, and its data-source tags are recomputed here with SQL (recursive over sub-themes and child codes),
independently of sp_realist.cmoc.findings.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sp_realist.cli import main
from sp_realist.cmoc.findings import findings_long, summary_of_findings
from sp_realist.report.study import load_study
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only(
    "built from the study into a project file; build --into a PostgreSQL database gives the same outputs "
    "(test_postgres.py)")

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "mind-cymru-2020"
STRANDS = ["Meta-narrative", "Thematic synthesis", "Reflective diaries"]
MN, TS, RD = STRANDS

# (topic, strands holding findings in the report's table, theories the report's Reflective diaries cell cites)
REPORT = {
    "Q1": [("Benefits of the model", {MN, TS, RD}, {"T2", "T3"}),
           ("Role of the link worker", {MN, TS}, set()),
           ("Use of peer navigators", {TS}, set()),
           ("Uplift funding", {TS}, set()),
           ("Referral pathways and relationships with referred-to organisations", {MN, TS}, set()),
           ("Views on the core model itself", {TS}, set())],
    "Q2": [("Relationships with local health board/cluster", {MN, TS, RD}, {"T1"}),
           ("Context service operating in", {MN, TS}, set()),
           ("Impact of trial conditions", {TS, RD}, {"T3", "T4"}),
           ("GP practices", {TS}, set()),
           ("Time and resources required (staff)", {MN, TS, RD}, {"T3", "T4"})],
    "Q3": [("Skill of link workers and training", {MN, TS, RD}, {"T1", "T2", "T3", "T4"}),
           ("Buy-in of GP practices", {MN, TS, RD}, {"T1"}),
           ("Appropriateness of referrals", {MN, TS, RD}, {"T2"}),
           ("Impact of COVID-19", {TS}, set())],
    # Table 7.4 has a single, unnamed row
    "Q4": [("Role in the wider health system", {MN, TS, RD}, {"T3"})],
}
KIND_TAGS = {"interview": "interviews", "diary": "reflective diaries"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus-findings")
    r = CliRunner().invoke(main, ["build", str(CORPUS), "--out", str(out)])
    assert r.exit_code == 0, r.stderr or r.output
    return out / "mind-cymru.sprealist"


def test_the_study_names_its_findings_file():
    assert load_study(CORPUS).findings == [CORPUS / "findings.yaml"]


def test_four_tables_with_the_reports_questions_topics_and_strands(built):
    with Project.open(built) as p:
        sof = summary_of_findings(p)
    assert sof.strands == STRANDS
    assert [q.key for q in sof.questions] == list(REPORT)
    study = yaml.safe_load((CORPUS / "study.yaml").read_text(encoding="utf-8"))
    assert [q.text for q in sof.questions] == [study["questions"][k]["text"] for k in REPORT]
    for q in sof.questions:
        assert [t.name for t in q.topics] == [name for name, _s, _t in REPORT[q.key]], q.key
        for t, (_name, filled, _theories) in zip(q.topics, REPORT[q.key]):
            assert {s for s, items in t.cells.items() if items} == filled, (q.key, t.name)
    # Q1-Q3 end with what worked well and what could be improved; Q4, like the report, only with its overall view
    assert [[bool(lst.items) for lst in q.lists] for q in sof.questions] == [[True, True]] * 3 + [[False, False]]
    assert all(q.overall for q in sof.questions)
    assert [lst.heading for lst in sof.questions[1].lists] == ["Enablers to successful implementation",
                                                               "Challenges to successful implementation"]


def test_reflective_diaries_cells_cite_the_theories_the_report_cites(built):
    theories_file = yaml.safe_load((CORPUS / "theories.yaml").read_text(encoding="utf-8"))
    theory_of = {c["key"]: t["key"] for t in theories_file["theories"] for c in t["cmocs"] if isinstance(c, dict)}
    with Project.open(built) as p:
        sof = summary_of_findings(p)
    for q in sof.questions:
        for t, (_name, _filled, cited) in zip(q.topics, REPORT[q.key]):
            got = set()
            for f in t.cells[RD]:
                got |= set(f.links.get("theories", [])) | {theory_of[c] for c in f.links.get("cmocs", [])}
                assert set(f.links) <= {"theories", "cmocs"}, f.text  # chapter 6's realist analysis only
            assert got == cited, (q.key, t.name)
            for f in t.cells[MN]:
                assert set(f.links) == {"evidence"}, f.text  # the meta-narrative review is literature


def _sources(con: sqlite3.Connection, kind: str, target: str) -> set[int]:
    """The source ids behind one link, by SQL alone."""
    codes_of = """WITH RECURSIVE tree(id) AS (SELECT id FROM codes WHERE id IN ({seed})
                  UNION SELECT c.id FROM codes c JOIN tree ON c.parent_id = tree.id)
                  SELECT DISTINCT source_id FROM codings WHERE code_id IN (SELECT id FROM tree)"""
    if kind == "codes":
        return {r[0] for r in con.execute(codes_of.format(seed="SELECT id FROM codes WHERE name = ?"), (target,))}
    if kind == "themes":
        seed = """WITH RECURSIVE th(id) AS (SELECT id FROM themes WHERE name = ?
                  UNION SELECT t.id FROM themes t JOIN th ON t.parent_id = th.id)
                  SELECT code_id FROM theme_codes WHERE theme_id IN (SELECT id FROM th)"""
        seeds = [r[0] for r in con.execute(seed, (target,))]
        if not seeds:
            return set()
        return {r[0] for r in con.execute(codes_of.format(seed=",".join(map(str, seeds))))}
    evidence = """SELECT DISTINCT x.source_id FROM cmoc_evidence e JOIN excerpts x ON x.id = e.excerpt_id
                  JOIN cmocs c ON c.id = e.cmoc_id"""
    if kind == "cmocs":
        return {r[0] for r in con.execute(evidence + " WHERE c.key = ?", (target,))}
    assert kind == "theories"
    return {r[0] for r in con.execute(evidence + " JOIN theory_cmocs tc ON tc.cmoc_id = c.id "
                                                 "JOIN theories t ON t.id = tc.theory_id WHERE t.key = ?", (target,))}


def test_every_finding_links_something_and_its_tags_are_recomputed_by_sql(built):
    with Project.open(built) as p:
        long = findings_long(p)
    con = sqlite3.connect(built)
    kinds = dict(con.execute("SELECT id, kind FROM sources"))
    ev_kind = dict(con.execute("SELECT key, kind FROM evidence_items"))
    assert len(long) >= 60 and set(long["part"]) == {"cell", "worked_well", "could_improve"}
    for row in long.to_dict(orient="records"):
        assert row["links"], row["text"]
        expected = set()
        for link in row["links"].split("; "):
            kind, target = link.split(": ", 1)
            if kind == "evidence":
                expected.add(ev_kind[target])
            else:
                sids = _sources(con, kind, target)
                assert sids, (row["text"], link)  # every linked theme/code/CMOC/theory has data in the corpus
                expected |= {KIND_TAGS[kinds[s]] for s in sids}
        assert row["tags"] == ", ".join(sorted(expected, key=str.lower)), row["text"]
    con.close()
    tags = set(", ".join(long["tags"]).split(", "))
    assert tags == {"interviews", "literature", "project documentation", "reflective diaries"}


def test_triangulate_shows_the_tables_by_default_and_the_matrix_by_dataset_without_warning(built):
    r = CliRunner()
    res = r.invoke(main, ["triangulate", "-p", str(built), "--question", "Q4", "--format", "json"])
    assert res.exit_code == 0 and res.stderr == ""
    rows = yaml.safe_load(res.stdout)
    assert [(x["question"], x["topic"]) for x in rows] == [("Q4", "Role in the wider health system")]
    assert rows[0][RD].endswith("[reflective diaries]") and rows[0][MN].endswith("[literature]")
    # the corpus's sources carry a dataset attribute (diaries: Reflective diaries, interviews: Thematic
    # synthesis), so the matrix by dataset has those columns filled and no warning
    res = r.invoke(main, ["triangulate", "--view", "matrix", "-p", str(built), "--by", "dataset",
                          "--sources", ",".join(STRANDS[1:]), "--format", "json"])
    assert res.exit_code == 0 and res.stderr == ""
    matrix = yaml.safe_load(res.stdout)
    assert list(matrix[0]) == ["question", "text", TS, RD]
    assert all(row[TS] for row in matrix) and any(row[RD] for row in matrix)

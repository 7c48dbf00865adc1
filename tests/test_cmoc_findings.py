"""Summary-of-findings tables (sp_realist.cmoc.findings): import, export, computed tags, refusals, CLI.

The project is tests/report_data.py's: diaries of S1 DK1, S1 DK2 and S2 DK1 and one interview; the theme
"Getting started" groups the codes Referral process (child: Induction), Induction and Paperwork; the theme
"Clients' first contact" the code Client anxiety; theory T1 has CMOCs T1.1 (evidence in S1 DK1's diary and the
interview) and T1.2 (S1 DK2's diary); theory T2 has T2.1 (S2 DK1's diary, supporting and refuting).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, inspect, select

from conftest import examples, run_sql
from report_data import populate
from sp_realist import schema as S
from sp_realist.cli import main
from sp_realist.cmoc.findings import (export_findings_yaml, findings_document, findings_lists, findings_long,
                                      findings_table, has_findings, import_findings_conn, import_findings_yaml,
                                      summary_of_findings)
from sp_realist.errors import SpRealistError
from sp_realist.store import Project, now

STRANDS = ["Meta-narrative", "Thematic synthesis", "Reflective diaries"]

DOC = {
    "strands": STRANDS,
    "evidence": [
        {"key": "L1", "kind": "literature", "citation": "A review of social prescribing models."},
        {"key": "D1", "kind": "project documentation", "citation": "Monitoring returns.", "note": "not published"},
    ],
    "questions": [
        {"key": "Q1", "text": "How effective is the model?",
         "topics": [
             {"topic": "Benefits of the model", "cells": {
                 "Meta-narrative": [{"text": "Wide range of activities.", "evidence": ["L1"]}],
                 "Thematic synthesis": [{"text": "Support is timely.", "themes": ["Getting started"],
                                         "evidence": ["D1"]},
                                        "A finding linked to nothing."],
                 "Reflective diaries": [{"text": "Clients feel heard.", "theories": ["T2"]}]}},
             {"topic": "Role of the link worker", "cells": {
                 "Thematic synthesis": [{"text": "The role is valued.", "codes": ["Paperwork"]}]}},
         ],
         "worked_well": [{"text": "Clients felt heard.", "cmocs": ["T2.1"]}],
         "could_improve": {"heading": "What worked less well", "items": ["Peer navigators."]},
         "overall": "It worked."},
        {"key": "Q2", "text": "What were the barriers?",
         "topics": [{"topic": "Relationships", "cells": {
             "Reflective diaries": [{"text": "Confusion over referrals.", "theories": ["T1"]}]}}]},
    ],
}


def write(tmp_path: Path, doc, name: str = "findings.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def counts(project) -> dict:
    with project.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in S.FINDINGS_TABLES}


# --------------------------------------------------------------------------
# import, the table, computed tags
# --------------------------------------------------------------------------
def test_import_gives_the_table_with_tags_computed_from_the_links(populated, tmp_path):
    assert not has_findings(populated)
    got = import_findings_yaml(populated, write(tmp_path, DOC))
    assert got == {"strands": 3, "evidence_items": 2, "questions_created": 2, "questions_replaced": 0, "topics": 3,
                   "findings": 8, "links": 7}
    assert has_findings(populated)
    df = findings_table(populated)
    assert list(df.columns) == ["question", "text", "topic"] + STRANDS
    assert list(zip(df["question"], df["topic"])) == [("Q1", "Benefits of the model"),
                                                     ("Q1", "Role of the link worker"), ("Q2", "Relationships")]
    row = df.iloc[0]
    assert row["Meta-narrative"] == "Wide range of activities. [literature]"
    # the theme's codes (Referral process and its child Induction, Paperwork) are coded in the three diaries'
    # S1 entries and in the interview; the evidence item adds its kind
    assert row["Thematic synthesis"] == ("Support is timely. [interviews, project documentation, reflective diaries]"
                                         "\nA finding linked to nothing.")
    assert row["Reflective diaries"] == "Clients feel heard. [reflective diaries]"  # T2's evidence: S2 DK1's diary
    assert df.iloc[1]["Thematic synthesis"] == "The role is valued. [reflective diaries]"  # Paperwork: S1 DK2
    assert df.iloc[1]["Meta-narrative"] == "" and df.iloc[1]["Reflective diaries"] == ""
    # T1's CMOCs rest on S1 DK1's and S1 DK2's diaries and on the interview
    assert df.iloc[2]["Reflective diaries"] == "Confusion over referrals. [interviews, reflective diaries]"
    assert df.attrs["warnings"] == []


def test_tags_follow_the_sources_behind_each_link(populated, tmp_path):
    """Tags computed independently from the tables: codings of the linked code and its child codes, evidence
    sources of a CMOC and of every CMOC of a theory, and by='dataset' the sources' dataset attribute."""
    with populated.begin() as conn:  # a parent code whose only codings are its child's
        parent = conn.execute(insert(S.codes).values(name="Set-up", ord=9, created_at=now())).inserted_primary_key[0]
        conn.execute(S.codes.update().where(S.codes.c.name == "Client anxiety").values(parent_id=parent))
        iv = conn.execute(select(S.sources.c.id).where(S.sources.c.kind == "interview")).scalar_one()
        conn.execute(insert(S.source_attributes).values(source_id=iv, name="dataset", value="Thematic synthesis"))
    doc = {"strands": ["A"], "questions": [{"key": "Q1", "topics": [{"topic": "t", "cells": {"A": [
        {"text": "parent", "codes": ["Set-up"]},
        {"text": "cmoc", "cmocs": ["T1.1"]},
        {"text": "refuted too", "cmocs": ["T2.1"]},
        {"text": "theory", "theories": ["T1"]},
        {"text": "sub-theme-free theme", "themes": ["Clients' first contact"]}]}}]}]}
    import_findings_yaml(populated, write(tmp_path, doc))
    long = findings_long(populated)
    assert list(long["tags"]) == ["reflective diaries", "interviews, reflective diaries", "reflective diaries",
                                  "interviews, reflective diaries", "reflective diaries"]
    assert list(long["links"]) == ["codes: Set-up", "cmocs: T1.1", "cmocs: T2.1", "theories: T1",
                                   "themes: Clients' first contact"]
    by_dataset = findings_long(populated, by="dataset")
    # the interview carries dataset=Thematic synthesis; the diaries have none and keep their kind's tag
    assert list(by_dataset["tags"])[1] == "reflective diaries, Thematic synthesis"


def test_sub_themes_and_child_codes_count(populated, tmp_path):
    with populated.begin() as conn:
        top = conn.execute(insert(S.themes).values(name="Umbrella", ord=5, created_at=now())).inserted_primary_key[0]
        conn.execute(S.themes.update().where(S.themes.c.name == "Clients' first contact").values(parent_id=top))
    doc = {"strands": ["A"], "questions": [{"key": "Q1", "topics": [{"topic": "t", "cells": {"A": [
        {"text": "umbrella", "themes": ["Umbrella"]}]}}]}]}
    import_findings_yaml(populated, write(tmp_path, doc))
    assert findings_table(populated)["A"].tolist() == ["umbrella [reflective diaries]"]


def test_lists_and_long_views(populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    lists = findings_lists(populated)
    assert lists.to_dict(orient="records") == [
        {"question": "Q1", "part": "worked_well", "heading": "What worked well", "item": "Clients felt heard.",
         "tags": "reflective diaries"},
        {"question": "Q1", "part": "could_improve", "heading": "What worked less well", "item": "Peer navigators.",
         "tags": ""}]
    long = findings_long(populated, question="Q1", strands=["Reflective diaries"])
    assert list(long["part"]) == ["cell", "worked_well", "could_improve"]
    assert list(long["strand"]) == ["Reflective diaries", "", ""]
    sof = summary_of_findings(populated, question=["Q2", "Q1"])
    assert [q.key for q in sof.questions] == ["Q2", "Q1"]
    assert sof.questions[1].overall == "It worked."


# --------------------------------------------------------------------------
# export and round trips
# --------------------------------------------------------------------------
def test_export_import_export_is_identical(place, populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    first = export_findings_yaml(populated, tmp_path / "out.yaml")
    assert (tmp_path / "out.yaml").read_text(encoding="utf-8") == first
    assert yaml.safe_load(first) == DOC  # DOC is already in the canonical form
    other = Project.create(place("other"))
    populate(other)
    import_findings_yaml(other, tmp_path / "out.yaml")
    assert export_findings_yaml(other) == first
    other.close()


def test_reimport_replaces_a_question_and_keeps_the_others(populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    again = {"strands": ["Reflective diaries", "New strand"], "evidence": [
        {"key": "L1", "kind": "literature", "citation": "A revised citation."}],
        "questions": [{"key": "Q1", "text": "Revised?", "topics": [{"topic": "Only", "cells": {
            "New strand": ["x"]}}]}]}
    got = import_findings_yaml(populated, write(tmp_path, again, "again.yaml"))
    assert got["questions_replaced"] == 1 and got["questions_created"] == 0 and got["strands"] == 1
    doc = yaml.safe_load(export_findings_yaml(populated))
    assert doc["strands"] == ["Reflective diaries", "New strand", "Meta-narrative", "Thematic synthesis"]
    assert [q["key"] for q in doc["questions"]] == ["Q1", "Q2"]  # Q1 keeps its place
    assert doc["questions"][0] == {"key": "Q1", "text": "Revised?",
                                   "topics": [{"topic": "Only", "cells": {"New strand": ["x"]}}]}
    assert doc["questions"][1] == DOC["questions"][1]
    assert doc["evidence"][0]["citation"] == "A revised citation."


NAMES = {"themes": ["Getting started", "Clients' first contact"], "theories": ["T1", "T2"],
         "cmocs": ["T1.1", "T1.2", "T2.1"], "codes": ["Referral process", "Induction", "Paperwork"],
         "evidence": ["E1", "E2"]}
words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1,
                max_size=30).map(str.strip).filter(bool)
strand_names = st.lists(words, min_size=1, max_size=3, unique=True)


@st.composite
def finding(draw):
    text = draw(words)
    links = {k: draw(st.lists(st.sampled_from(v), unique=True, max_size=2)) for k, v in NAMES.items()}
    links = {k: v for k, v in links.items() if v}
    return {"text": text, **links} if links else text


@st.composite
def documents(draw):
    strands = draw(strand_names)
    questions = []
    for qi in range(draw(st.integers(0, 2))):
        topics = []
        for tname in draw(st.lists(words, max_size=2, unique=True)):
            chosen = [s for s in strands if draw(st.booleans())]
            topics.append({"topic": tname, "cells": {s: draw(st.lists(finding(), min_size=1, max_size=2))
                                                     for s in chosen}})
        q = {"key": f"Q{qi + 1}"}
        if draw(st.booleans()):
            q["text"] = draw(words)
        if topics:
            q["topics"] = topics
        for part in ("worked_well", "could_improve"):
            items = draw(st.lists(finding(), max_size=2))
            if draw(st.booleans()):
                q[part] = {"heading": draw(words), "items": items}
            elif items:
                q[part] = items
        if draw(st.booleans()):
            q["overall"] = draw(words)
        questions.append(q)
    doc = {"strands": strands,
           "evidence": [{"key": "E1", "kind": "literature", "citation": "Ref one."},
                        {"key": "E2", "kind": "project documentation", "citation": "Doc two.", "note": "n"}]}
    if questions:
        doc["questions"] = questions
    return doc


EDGE = {"strands": ["Ünïcode strand: «quoted»", "#not a comment"], "evidence": [
    {"key": "E1", "kind": "literature", "citation": "Ref one."},
    {"key": "E2", "kind": "project documentation", "citation": "Doc two.", "note": "n"}],
    "questions": [{"key": "Q1", "text": "yes", "topics": [{"topic": "null", "cells": {}}],
                   "worked_well": {"heading": "Enablers", "items": []},
                   "could_improve": ["- a dash", "true", {"text": "x: y", "evidence": ["E1", "E2"]}]}]}


def test_round_trip_import_export_import(backend, new_location):
    """import -> export gives the document back (canonical form); importing that into a fresh project and
    exporting again gives the same text."""

    @settings(max_examples=examples(backend, 25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(documents())
    @example(EDGE)
    @example({"strands": ["A"], "evidence": EDGE["evidence"]})
    def check(doc):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            exported = []
            for name in ("a", "b"):
                p = Project.create(new_location())
                populate(p)
                source = write(tmp, doc, "in.yaml") if name == "a" else tmp / "out.yaml"
                import_findings_yaml(p, source)
                exported.append(export_findings_yaml(p, tmp / "out.yaml" if name == "a" else None))
                p.close()
            assert yaml.safe_load(exported[0]) == doc
            assert exported[1] == exported[0]

    check()


# --------------------------------------------------------------------------
# refusals: one sentence naming the file and the names that exist; nothing written
# --------------------------------------------------------------------------
def _refused(project, tmp_path, doc, *fragments):
    before = counts(project)
    with pytest.raises(SpRealistError) as err:
        import_findings_yaml(project, write(tmp_path, doc, "bad.yaml"))
    msg = err.value.message
    assert msg.startswith(str(tmp_path / "bad.yaml") + ": "), msg
    for f in fragments:
        assert f in msg, msg
    assert "\n" not in msg
    assert counts(project) == before  # nothing half-written
    return msg


def _with_cell(finding_spec, strand="Thematic synthesis"):
    return {"strands": STRANDS, "questions": [{"key": "Q9", "topics": [{"topic": "T", "cells": {
        strand: [finding_spec]}}]}]}


def test_unknown_strand_is_refused_with_the_strands_that_exist(populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    _refused(populated, tmp_path, {"questions": [{"key": "Q1", "topics": [{"topic": "X", "cells": {
        "Meta narrative": ["typo"]}}]}]},
        "question Q1, topic 'X' has a cell under the strand 'Meta narrative', which is not a strand; the strands "
        "are: Meta-narrative, Thematic synthesis, Reflective diaries")


@pytest.mark.parametrize("field,name,listing", [
    ("themes", "Nope", "the themes are: Getting started, Clients' first contact"),
    ("theories", "T9", "the theories are: T1, T2"),
    ("cmocs", "T1.9", "the CMOCs are: T1.1, T1.2, T2.1"),
    ("codes", "Referal process", "the codes are: Referral process, Induction, Paperwork, Client anxiety"),
    ("evidence", "L9", "the evidence items are: (none)"),
])
def test_unknown_links_are_refused_with_the_names_that_exist(populated, tmp_path, field, name, listing):
    label = {"themes": "theme", "theories": "theory", "cmocs": "CMOC", "codes": "code",
             "evidence": "evidence item"}[field]
    _refused(populated, tmp_path, _with_cell({"text": "x", field: [name]}),
             f"question Q9, topic 'T', strand 'Thematic synthesis', item 1 links the {label} {name!r}, which does "
             f"not exist; {listing}")


@pytest.mark.parametrize("doc,fragment", [
    ({"strand": ["A"]}, "unknown top-level key(s) strand; use strands, evidence, questions."),
    ({"questions": [{"key": "Q1", "topic": []}]}, "question 1: unknown field(s) topic; allowed: key, text"),
    ({"questions": [{"key": "Q1"}, {"key": "Q1"}]}, "question Q1 is defined twice."),
    ({"strands": ["A"], "questions": [{"key": "Q1", "topics": [{"topic": "x"}, {"topic": "x"}]}]},
     "question Q1: topic 'x' is listed twice"),
    (_with_cell({"text": "x", "theme": ["Getting started"]}), "unknown field(s) theme; allowed: text, themes"),
    (_with_cell({"themes": ["Getting started"]}), "the finding's text is missing"),
    ({"evidence": [{"key": "E", "kind": "literature"}]}, "evidence item E: citation is missing"),
    ({"evidence": [{"key": "E", "kind": "a", "citation": "b"}, {"key": "E", "kind": "a", "citation": "b"}]},
     "evidence item E is defined twice"),
    ({"questions": [{"key": "Q1", "worked_well": {"title": "x"}}]}, "unknown field(s) title; allowed: heading, items."),
    ([1, 2], "expected a mapping with strands, evidence and questions"),
    (None, "the file is empty"),
])
def test_malformed_files_are_refused(populated, tmp_path, doc, fragment):
    _refused(populated, tmp_path, doc, fragment)


def test_links_to_evidence_items_already_in_the_project_are_accepted(populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    got = import_findings_yaml(populated, write(tmp_path, _with_cell({"text": "x", "evidence": ["D1"]}), "b.yaml"))
    assert got["findings"] == 1
    assert findings_table(populated, question="Q9")["Thematic synthesis"].tolist() == ["x [project documentation]"]


def test_query_refuses_unknown_questions_and_strands(populated, tmp_path):
    import_findings_yaml(populated, write(tmp_path, DOC))
    with pytest.raises(SpRealistError, match=r"^findings: no question 'Q7' .*; the questions are: Q1, Q2\.$"):
        findings_table(populated, question="Q7")
    with pytest.raises(SpRealistError, match=r"^findings: no strand 'Diaries'; the strands are: Meta-narrative, "
                                             r"Thematic synthesis, Reflective diaries\.$"):
        findings_table(populated, strands=["Diaries"])


def test_a_link_whose_target_was_deleted_is_reported_and_kept(populated, tmp_path):
    from sp_realist.coding.themes import delete_theme

    import_findings_yaml(populated, write(tmp_path, DOC))
    delete_theme(populated, "Getting started")
    df = findings_table(populated, question="Q1")
    assert df.iloc[0]["Thematic synthesis"].startswith("Support is timely. [project documentation]")
    assert df.attrs["warnings"] == [
        "question Q1, topic 'Benefits of the model', strand 'Thematic synthesis' links the theme 'Getting started', "
        "which is no longer in the project; fix the findings file."]
    assert "Getting started" in export_findings_yaml(populated)  # the analyst's link is not lost


# --------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------
def test_migration_to_3_adds_only_the_findings_tables_and_keeps_data(place, tmp_path):
    path = place("v2")
    p = Project.create(path)
    populate(p)
    p.close()
    from sp_realist.store import MIGRATIONS, _migrate_to_4

    # the version this migration starts from (2 on this branch; renumbered when merged after other migrations)
    start = next(v for v, f in MIGRATIONS.items() if f is _migrate_to_4)
    run_sql(path, *[f"DROP TABLE {t.name}" for t in reversed(S.FINDINGS_TABLES)],
            f"UPDATE meta SET value='{start}' WHERE key='schema_version'")
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            assert {t.name for t in S.FINDINGS_TABLES} <= set(inspect(conn).get_table_names())
            assert conn.execute(select(func.count()).select_from(S.cmocs)).scalar_one() == 3
        import_findings_conn_ok = import_findings_yaml(p, write(tmp_path, DOC))
        assert import_findings_conn_ok["findings"] == 8
    with Project.open(path) as p, p.begin() as conn:  # running it again is harmless (checkfirst)
        _migrate_to_4(conn)
        assert conn.execute(select(func.count()).select_from(S.findings)).scalar_one() == 8


def test_import_conn_takes_a_document_inside_the_callers_transaction(populated):
    with pytest.raises(SpRealistError):
        with populated.begin() as conn:
            import_findings_conn(conn, DOC, "doc")
            conn.execute(delete(S.finding_links))
            raise SpRealistError("roll back")
    assert counts(populated)["findings"] == 0
    with populated.begin() as conn:
        import_findings_conn(conn, DOC, "doc")
        assert findings_document(conn) == DOC


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------
def test_cli_import_show_lists_export(populated, populated_path, tmp_path):
    r = CliRunner()
    p = ["-p", str(populated_path)]
    res = r.invoke(main, ["triangulate", "import", str(write(tmp_path, DOC)), *p])
    assert res.exit_code == 0, res.stderr
    assert "8 findings" in res.stderr
    res = r.invoke(main, ["triangulate", *p, "--format", "csv"])  # the findings table is now the default
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines()[0] == "question,text,topic,Meta-narrative,Thematic synthesis,Reflective diaries"
    res = r.invoke(main, ["triangulate", *p, "--question", "Q2", "--strands", "Reflective diaries", "--format", "json"])
    assert res.exit_code == 0, res.stderr
    assert yaml.safe_load(res.stdout) == [{"question": "Q2", "text": "What were the barriers?", "topic": "Relationships",
                                           "Reflective diaries": "Confusion over referrals. [interviews, reflective diaries]"}]
    res = r.invoke(main, ["triangulate", *p, "--view", "lists", "--format", "csv"])
    assert res.stdout.splitlines()[1] == "Q1,worked_well,What worked well,Clients felt heard.,reflective diaries"
    res = r.invoke(main, ["triangulate", *p, "--long", "--format", "csv"])
    assert len(res.stdout.strip().splitlines()) == 1 + 8
    res = r.invoke(main, ["triangulate", *p, "--view", "matrix", "--question", "Q2", "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.startswith("question,text,")  # the matrix is still there
    out = tmp_path / "exported.yaml"
    res = r.invoke(main, ["triangulate", "export", str(out), *p])
    assert res.exit_code == 0 and yaml.safe_load(out.read_text(encoding="utf-8")) == DOC
    res = r.invoke(main, ["triangulate", "export", *p])
    assert yaml.safe_load(res.stdout) == DOC
    res = r.invoke(main, ["triangulate", "evidence", *p, "--format", "csv"])
    assert res.stdout.splitlines()[1] == "L1,literature,A review of social prescribing models.,"


def test_cli_refusals_are_one_sentence_and_exit_1(populated, populated_path, tmp_path):
    r = CliRunner()
    p = ["-p", str(populated_path)]
    r.invoke(main, ["triangulate", "import", str(write(tmp_path, DOC)), *p])
    res = r.invoke(main, ["triangulate", *p, "--strands", "Meta-narrative,Diaries"])
    assert res.exit_code == 1
    assert res.stderr.strip() == ("Error: findings: no strand 'Diaries'; the strands are: Meta-narrative, Thematic "
                                  "synthesis, Reflective diaries.")
    bad = write(tmp_path, _with_cell({"text": "x", "themes": ["Nope"]}), "bad.yaml")
    res = r.invoke(main, ["triangulate", "import", str(bad), *p])
    assert res.exit_code == 1 and res.stderr.startswith("Error: ") and "Traceback" not in res.stderr
    assert "the themes are: Getting started, Clients' first contact" in " ".join(res.stderr.split())
    res = r.invoke(main, ["triangulate", "import", str(tmp_path / "missing.yaml"), *p])
    assert res.exit_code == 1 and "no such findings file" in res.stderr
    res = r.invoke(main, ["triangulate", *p, "--view", "nonsense"])
    assert res.exit_code == 2


def test_every_new_command_has_an_example_in_its_help():
    r = CliRunner()
    for args in (["triangulate"], ["triangulate", "import"], ["triangulate", "export"], ["triangulate", "evidence"]):
        res = r.invoke(main, [*args, "--help"])
        assert res.exit_code == 0 and "Example" in res.stdout and "sp-realist triangulate" in res.stdout


def test_without_findings_the_matrix_stays_the_default(populated, populated_path):
    res = CliRunner().invoke(main, ["triangulate", "-p", str(populated_path), "--question", "Q2", "--format", "csv"])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines()[0] == "question,text,diary,interview"
    res = CliRunner().invoke(main, ["triangulate", "-p", str(populated_path), "--view", "findings"])
    assert res.exit_code == 0
    assert " ".join(res.stderr.split()).startswith("Warning: the project has no summary-of-findings tables; "
                                                   "import a findings file")


def test_matrix_by_dataset_warns_when_no_source_has_a_dataset(populated, populated_path):
    from sp_realist.cmoc.triangulate import triangulation

    df = triangulation(populated, {"Q2": "Barriers?"}, by="dataset", sources=["Reflective diaries"])
    assert df.attrs["warnings"][0].startswith("no source has a 'dataset' attribute, so the columns are source kinds")
    assert df.attrs["warnings"][1] == ("column 'Reflective diaries' is empty: no source's dataset is 'Reflective "
                                       "diaries'; the data sources are: diary, interview.")
    res = CliRunner().invoke(main, ["triangulate", "-p", str(populated_path), "--by", "dataset", "--question", "Q2",
                                    "--sources", "Reflective diaries"])
    assert res.exit_code == 0
    assert " ".join(res.stderr.split()).startswith("Warning: no source has a 'dataset' attribute")
    assert triangulation(populated, {"Q2": "Barriers?"}, by="kind").attrs["warnings"] == []


def test_anonymising_the_project_rewrites_findings_and_reverse_restores_them(populated, tmp_path):
    from sp_realist.privacy.anonymise import anonymise, reverse

    doc = {"strands": ["Dr Patel's notes"],
           "evidence": [{"key": "D1", "kind": "project documentation", "citation": "Letter from Dr Patel."}],
           "questions": [{"key": "Q1", "text": "Did Dr Patel refer?", "topics": [{"topic": "Patel", "cells": {
               "Dr Patel's notes": [{"text": "Dr Patel referred twice.", "codes": ["Paperwork"],
                                     "evidence": ["D1"]}]}}], "overall": "Patel agreed."}]}
    import_findings_yaml(populated, write(tmp_path, doc))
    before = export_findings_yaml(populated)
    key = tmp_path / "key.yaml"
    key.write_text('entries:\n  - {original: Dr Patel, replacement: "[GP 1]", variants: [Patel]}\n', encoding="utf-8")
    anonymise(populated, str(key))
    after = export_findings_yaml(populated)
    assert "Patel" not in after and after.count("[GP 1]") == 7
    assert findings_table(populated)["[GP 1]'s notes"].tolist() == [
        "[GP 1] referred twice. [project documentation, reflective diaries]"]
    reverse(populated, str(key))
    assert export_findings_yaml(populated) == before


def test_each_finding_carries_the_ids_its_tags_rest_on(populated, tmp_path):
    doc = {"strands": ["A"], "questions": [{"key": "Q1", "topics": [{"topic": "t", "cells": {"A": [
        {"text": "cmoc", "cmocs": ["T1.1"]}, {"text": "code", "codes": ["Paperwork"]}]}}]}]}
    import_findings_yaml(populated, write(tmp_path, doc))
    cmoc, code = summary_of_findings(populated).questions[0].topics[0].cells["A"]
    with populated.connect() as conn:
        ev = conn.execute(select(S.excerpts.c.id, S.excerpts.c.source_id).join(
            S.cmoc_evidence, S.cmoc_evidence.c.excerpt_id == S.excerpts.c.id).join(
            S.cmocs, S.cmocs.c.id == S.cmoc_evidence.c.cmoc_id).where(S.cmocs.c.key == "T1.1")).all()
        cod = conn.execute(select(S.codings.c.id, S.codings.c.source_id).join(
            S.codes, S.codes.c.id == S.codings.c.code_id).where(S.codes.c.name == "Paperwork")).all()
    assert (cmoc.excerpts, cmoc.sources, cmoc.codings) == (sorted(i for i, _ in ev), sorted({s for _, s in ev}), [])
    assert (code.codings, code.sources, code.excerpts) == (sorted(i for i, _ in cod), sorted({s for _, s in cod}), [])

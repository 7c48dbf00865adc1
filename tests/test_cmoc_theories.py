"""CMOCs, theories, theory files, if/then statements and the CMOC table."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import examples
from sp_realist import schema as S
from sp_realist.cmoc import (add_cmoc, add_member, add_theory, cmoc_detail, cmoc_table, edit_cmoc, edit_theory,
                             export_theories_yaml, ifthen_statements, import_theories_yaml, link_evidence,
                             list_cmocs, list_theories, relate_cmocs, remove_member, theory_history)
from sp_realist.cmoc.ifthen import TABLE_COLUMNS, clause, join_and, lower_first, strip_stop
from sp_realist.errors import NotFoundError, SpRealistError
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project

DATA = Path(__file__).parent / "data" / "cmoc"
THEORIES = DATA / "mind_cymru_theories.yaml"

# The report's own if/then statements for theory one (Table 6.1), verbatim.
REPORT_T1 = {
    "T1.1": "If there is lack of induction at site for both project and primary care reception staff then this "
            "will lead to confusion and result in communication issues, no initial safety procedures, ignorance "
            "around referral process, lack of consistency and issues around capacity (numbers).",
    "T1.2": "If there is no organised site and staff introductions then this leads to frustration and link workers "
            "repeatedly asking surgery staff for information.",
    "T1.3": "If you start pilot work before staff feel that the paperwork has been finalised then this leads to "
            "frustration and project staff having to constantly managing change.",
}
STOP = set("a an and the of for to in on at by with is are be this that there if then will lead leads result "
           "resulting around before".split())


def words(text: str) -> set[str]:
    """Content words, crudely stemmed (plural s, -ing) so 'introductions' ~ 'introduction'."""
    out = set()
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in STOP:
            continue
        w = re.sub(r"(ing|s)$", "", w)
        out.add(w)
    return out


@pytest.fixture
def mind(project):
    import_theories_yaml(project, THEORIES)
    return project


def test_import_counts_and_listing(mind):
    df = list_theories(mind)
    assert list(df["key"]) == ["T1", "T2", "T3", "T4"]
    assert df.set_index("key").loc["T1", "questions"] == "Q2, Q3, Q4"
    cm = list_cmocs(mind)
    assert len(cm) == 13
    expected = yaml.safe_load(THEORIES.read_text())
    assert list(cm["key"]) == [c["key"] for t in expected["theories"] for c in t["cmocs"]]
    assert list(list_cmocs(mind, "T2")["key"]) == ["T2.1", "T2.2", "T2.3", "T2.4"]


def test_ifthen_table_6_1_carries_the_reports_content(mind):
    df = ifthen_statements(mind, theory="T1")
    assert list(df["cmoc"]) == ["T1.1", "T1.2", "T1.3"]
    cmocs = {c["key"]: c for c in yaml.safe_load(THEORIES.read_text())["theories"][0]["cmocs"]}
    for key, statement in zip(df["cmoc"], df["statement"]):
        ours, report = words(statement), words(REPORT_T1[key])
        cm = cmocs[key]
        # Every context and outcome word of the table cell is in our statement...
        for part in ("context", "outcome", "mechanism_response"):
            assert words(cm[part]) <= ours, (key, part)
        # ...and (almost) all of them are in the report's own statement.
        for part in ("context", "outcome"):
            cell = words(cm[part])
            assert len(cell & report) / len(cell) >= 0.75, (key, part, cell - report)
        assert statement.endswith(".") and ".." not in statement
    # The table's cells are written as noun phrases, except T1.3's context, a gerund phrase.
    assert [s.split(" then ")[0][:12] for s in df["statement"]] == ["If there is ", "If there is ", "If it involv"]
    # Mechanisms: the report's statements name the same response as the table, except T1.2, where the
    # table says "Irritation" and the report's statement says "frustration" (a discrepancy in the report).
    assert "confusion" in words(REPORT_T1["T1.1"]) and "confusion" in words(df["statement"][0])
    assert "frustration" in words(REPORT_T1["T1.3"]) and "frustration" in words(df["statement"][2])
    # The exact rendering of T1.1 (golden).
    assert df["statement"][0] == (
        "If there is lack of induction at site for project and primary care reception staff then this creates "
        "confusion, resulting in communication issues, no initial safety procedures, ignorance around referral "
        "process, lack of consistency and issues around capacity (numbers).")


def test_grammar_helpers():
    assert lower_first("Lack of induction") == "lack of induction"
    assert lower_first("GP reception staff") == "GP reception staff"
    assert lower_first("GPs refer late") == "GPs refer late"
    assert lower_first("NHS pressure") == "NHS pressure"
    assert lower_first("Mind staff") == "Mind staff"
    assert lower_first("'Drained' staff") == "'drained' staff"
    assert lower_first("Is it") == "is it"
    assert strip_stop("Constantly managing change. ") == "Constantly managing change"
    assert strip_stop("Waiting...") == "Waiting"
    assert join_and([]) == "" and join_and(["a"]) == "a" and join_and(["a", "b"]) == "a and b"
    assert join_and(["a", "b", "c"]) == "a, b and c"
    assert clause("Link worker turnover.\nTaking work home\nNHS waiting lists.") == \
        "link worker turnover, taking work home and NHS waiting lists"


def test_ifthen_lists_and_missing_parts(project):
    add_theory(project, "T9", "Test theory")
    add_cmoc(project, "T9.1", theory="T9", context=["Busy surgeries.", "NHS pressures"],
             mechanism_resource="Peer support", mechanism_response="Feeling valued", outcome=["Less stress", "Better care."])
    add_cmoc(project, "T9.2", theory="T9", outcome="Turnover")
    s = list(ifthen_statements(project, "T9")["statement"])
    assert s[0] == ("If there are busy surgeries and NHS pressures then peer support triggers feeling valued, "
                    "resulting in less stress and better care.")
    assert s[1] == ("If there is [context not yet identified] then [mechanism not yet identified], "
                    "resulting in turnover.")


def test_cmoc_table_layout(mind):
    df = cmoc_table(mind, "T3")
    assert list(df.columns) == TABLE_COLUMNS
    assert list(df.index) == ["T3.1", "T3.2", "T3.3"]
    assert df.loc["T3.1", "Outcome"].split("\n") == [
        "Informal peer support and manager support to self-care and self-manage the workload",
        "Link worker turnover", "Taking work home and/or working on days off"]
    assert df.attrs["theories"]["T3.2"] == "T3"
    assert len(cmoc_table(mind)) == 13


def test_cmoc_table_folds_resource_into_context(project):
    add_cmoc(project, "C1", context="Rural site", mechanism_resource="Car for transport", mechanism_response="Trust")
    df = cmoc_table(project)
    assert df.loc["C1", "Context (Resource)"] == "Rural site\nCar for transport"
    assert df.loc["C1", "Mechanism (Behaviour)"] == "Trust"


@pytest.mark.sqlite_only("templates/ beside the project file")
def test_template_override_in_project_folder_and_setting(project, tmp_path):
    add_cmoc(project, "C1", context="Lack of induction", mechanism_response="Confusion", outcome="Delays")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ifthen.j2").write_text(
        "Where {{ context|clause }}, {{ mechanism_response|clause }} leads to {{ outcome|clause }}.")
    assert ifthen_statements(project)["statement"][0] == "Where lack of induction, confusion leads to delays."
    other = tmp_path / "style"
    other.mkdir()
    (other / "ifthen.j2").write_text("{{ key }}: {{ outcome|clause }}")
    project.set_setting("templates_dir", "style")
    assert ifthen_statements(project)["statement"][0] == "C1: delays."  # every statement ends with one stop
    (other / "bad.j2").write_text("{{ nonsense_variable }}")
    with pytest.raises(SpRealistError, match="template"):
        ifthen_statements(project, template="bad.j2")
    project.set_setting("templates_dir", "missing-folder")
    with pytest.raises(SpRealistError, match="does not exist"):
        ifthen_statements(project)


def test_theory_yaml_round_trip(place, mind, tmp_path):
    relate_cmocs(mind, "T1.2", "T1.3", "chains", note="illustrative")
    edit_cmoc(mind, "T1.1", confidence="moderate", reason="checked against S1 DK2")
    out = tmp_path / "out.yaml"
    text = export_theories_yaml(mind, out)
    assert out.read_text(encoding="utf-8") == text
    fresh = Project.create(place("fresh"))
    counts = import_theories_yaml(fresh, out)
    assert counts["cmocs_created"] == 13 and counts["relations"] == 1
    assert export_theories_yaml(fresh) == text
    # Re-import is idempotent: nothing created, nothing updated.
    again = import_theories_yaml(fresh, out)
    assert again["cmocs_created"] == again["cmocs_updated"] == again["history"] == 0
    assert export_theories_yaml(fresh) == text


cell_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                    min_size=1, max_size=30).map(str.strip).filter(bool)


def test_round_trip_property(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 25), deadline=None)
    @given(cmocs=st.lists(st.fixed_dictionaries({
        "context": st.one_of(cell_text, st.lists(cell_text, min_size=2, max_size=3)),
        "mechanism_response": cell_text,
        "outcome": st.one_of(st.none(), cell_text, st.lists(cell_text, min_size=2, max_size=3)),
        "status": st.sampled_from(["partial", "complete"]),
        "confidence": st.sampled_from([None, "high", "moderate", "low"]),
    }), min_size=1, max_size=4), questions=st.lists(st.sampled_from(["Q1", "Q2", "Q3"]), unique=True))
    # Boundaries found slowly by search and shrinking: YAML-special words, a one-character cell, a list cell,
    # a missing outcome, every question.
    @example(cmocs=[{"context": "null", "mechanism_response": "- no: yes #", "outcome": None, "status": "partial",
                     "confidence": None}], questions=[])
    @example(cmocs=[{"context": ["1.0", "'quoted'"], "mechanism_response": "x", "outcome": ["Ünïcode", "~"],
                     "status": "complete", "confidence": "low"}] * 2, questions=["Q3", "Q1", "Q2"])
    def check(cmocs, questions):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        doc = {"theories": [{"key": "T1", "title": "A theory", "questions": questions,
                             "cmocs": [{"key": f"T1.{i + 1}", **{k: v for k, v in c.items() if v is not None}}
                                       for i, c in enumerate(cmocs)]}]}
        src = folder / "in.yaml"
        src.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        a = Project.create(new_location())
        import_theories_yaml(a, src)
        text = export_theories_yaml(a, folder / "out.yaml")
        back = yaml.safe_load(text)
        assert back["theories"][0].get("questions", []) == questions
        for given_c, got in zip(doc["theories"][0]["cmocs"], back["theories"][0]["cmocs"]):
            for k, v in given_c.items():
                assert got[k] == v, (k, v, got)
        b = Project.create(new_location())
        import_theories_yaml(b, folder / "out.yaml")
        assert export_theories_yaml(b) == text
        a.close()
        b.close()

    check()


def test_bad_theory_files_change_nothing(project, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("theories:\n  - key: T1\n    title: ok\n    cmocs:\n      - {key: T1.1, context: x}\n"
                   "relations:\n  - {from: T1.1, to: T9.9, kind: chains}\n")
    with pytest.raises(NotFoundError, match="T9.9"):
        import_theories_yaml(project, bad)
    with project.connect() as conn:
        assert conn.execute(select(S.cmocs)).all() == [] and conn.execute(select(S.theories)).all() == []
    bad.write_text("theories:\n  - key: T1\n    title: ok\n    cmocs:\n      - {key: T1.1, colour: red}\n")
    with pytest.raises(SpRealistError, match="unknown field"):
        import_theories_yaml(project, bad)
    bad.write_text("theories: [\n")
    with pytest.raises(SpRealistError, match="not valid YAML"):
        import_theories_yaml(project, bad)
    bad.write_text("theories:\n  - key: T1\n    title: ok\n    cmocs:\n      - {key: T1.1, status: done}\n")
    with pytest.raises(SpRealistError, match="status 'done'"):
        import_theories_yaml(project, bad)
    with pytest.raises(SpRealistError, match="no such theory file"):
        import_theories_yaml(project, tmp_path / "missing.yaml")


def test_import_merges_and_records_history(mind, tmp_path):
    doc = yaml.safe_load(THEORIES.read_text())
    doc["theories"][0]["cmocs"][1]["mechanism_response"] = "Irritation and frustration"
    doc["theories"][0]["cmocs"].append({"key": "T1.4", "context": "Locum GPs", "outcome": "Fewer referrals"})
    f = tmp_path / "v2.yaml"
    f.write_text(yaml.safe_dump(doc))
    counts = import_theories_yaml(mind, f)
    assert counts["cmocs_created"] == 1 and counts["cmocs_updated"] == 1
    hist = theory_history(mind, "T1")
    assert any("Refined T1.2" in c for c in hist["change"])
    assert any("Added T1.4" in c for c in hist["change"])
    assert list(list_cmocs(mind, "T1")["key"]) == ["T1.1", "T1.2", "T1.3", "T1.4"]


def _diary(project, name="S1 DK1 2019-05-14", text="What?\nI wasn't told what clients I was seeing.\n"):
    with project.begin() as conn:
        return add_source(conn, SourceDraft(name=name, kind="diary", text=text, checksum="x",
                                            segments=[Segment(0, 6, kind="heading"), Segment(6, len(text))],
                                            participant_code="S1 DK1", attributes={"site": "S1"}))


def test_evidence_history_and_membership(mind):
    _diary(mind)
    eid = link_evidence(mind, "T1.2", {"source": "S1 DK1 2019-05-14", "quote": "I wasn't told"},
                        role="supports", component="outcome", analyst="RA")
    # Linking the same excerpt again updates, does not duplicate.
    assert link_evidence(mind, "T1.2", {"source": "S1 DK1 2019-05-14", "quote": "I wasn't told"},
                         note="again") == eid
    detail = cmoc_detail(mind, "T1.2")
    ev = detail["evidence"]
    assert len(ev) == 1 and ev["text"][0] == "I wasn't told" and ev["attribution"][0] == "S1 DK1"
    assert ev["component"][0] == "outcome" and ev["note"][0] == "again"
    excerpt_id = int(ev["excerpt_id"][0])
    changed = edit_cmoc(mind, "T1.2", mechanism_response="Irritation and frustration", reason="S1 DK1 entry",
                        evidence=[excerpt_id], actor="RA")
    assert changed == {"mechanism_response": ("Irritation", "Irritation and frustration")}
    h = theory_history(mind, "T1")
    assert h["reason"].iloc[-1] == "S1 DK1 entry" and h["evidence"].iloc[-1] == str(excerpt_id)
    assert h["author"].iloc[-1] == "RA"
    assert remove_member(mind, "T1", "T1.2", reason="moved") is True
    assert add_member(mind, "T2", "T1.2") is True and add_member(mind, "T2", "T1.2") is False
    assert list(list_cmocs(mind, "T2")["key"])[-1] == "T1.2"
    changed = edit_theory(mind, "T2", questions=["Q1"], reason="scope")
    assert changed["questions"][1] == '["Q1"]'
    with pytest.raises(SpRealistError, match="role"):
        link_evidence(mind, "T1.1", excerpt_id, role="maybe")
    with pytest.raises(NotFoundError):
        link_evidence(mind, "T9.9", excerpt_id)
    with pytest.raises(SpRealistError, match="itself"):
        relate_cmocs(mind, "T1.1", "T1.1", "chains")


def test_cli_cmoc_and_theory(runner, cli, project_path, tmp_path):
    p = ["-p", str(project_path)]
    r = runner.invoke(cli, ["theory", "import", str(THEORIES), *p])
    assert r.exit_code == 0, r.output
    assert "13 cmocs created" in r.stderr and r.stdout == ""
    r = runner.invoke(cli, ["cmoc", "table", "--theory", "T1", "--format", "json", *p])
    assert r.exit_code == 0
    import json

    rows = json.loads(r.stdout)
    assert [list(x) for x in rows][0] == TABLE_COLUMNS and rows[1]["Mechanism (Behaviour)"] == "Irritation"
    r = runner.invoke(cli, ["ifthen", "--theory", "T2", "--format", "csv", *p])
    assert r.exit_code == 0 and r.stdout.count("\nT2,T2.") == 4 and r.stdout.count(",template\n") == 4
    r = runner.invoke(cli, ["cmoc", "add", "X1", "--context", "A", "--context", "B", "--mechanism", "M",
                            "--outcome", "O", "--theory", "T4", "--analyst", "RA", *p])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["cmoc", "list", "--theory", "T4", "--format", "json", *p])
    assert json.loads(r.stdout)[-1]["context"] == "A\nB"
    r = runner.invoke(cli, ["cmoc", "add", "X1", *p])
    assert r.exit_code == 1 and "already exists" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["cmoc", "edit", "X1", "--status", "complete", "--reason", "review", *p])
    assert r.exit_code == 0 and "changed status" in r.stderr
    r = runner.invoke(cli, ["cmoc", "relate", "X1", "T4.1", "--kind", "chains", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["cmoc", "show", "X1", "--format", "json", *p])
    shown = json.loads(r.stdout)
    assert shown["relations"] == [{"from": "X1", "kind": "chains", "to": "T4.1", "note": None}]
    r = runner.invoke(cli, ["cmoc", "relate", "X1", "T4.1", "--kind", "sideways", *p])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["theory", "history", "T4", "--format", "json", *p])
    assert any("Refined X1" in e["change"] for e in json.loads(r.stdout))
    r = runner.invoke(cli, ["theory", "export", *p])
    assert r.exit_code == 0 and yaml.safe_load(r.stdout)["theories"][3]["cmocs"][-1]["key"] == "X1"
    r = runner.invoke(cli, ["theory", "show", "T9", *p])
    assert r.exit_code == 1 and "No theory 'T9'" in r.stderr
    r = runner.invoke(cli, ["cmoc", "link", "X1", *p])
    assert r.exit_code == 2
    with Project.open(project_path) as proj:
        _diary(proj)
    r = runner.invoke(cli, ["cmoc", "link", "X1", "--source", "S1 DK1 2019-05-14", "--quote", "I wasn't told",
                            "--role", "refutes", "--component", "context", *p])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["cmoc", "list", "--format", "json", *p])
    assert next(x for x in json.loads(r.stdout) if x["key"] == "X1")["refutes"] == 1
    r = runner.invoke(cli, ["cmoc", "link", "X1", "--source", "S1 DK1 2019-05-14", "--quote", "I wasn't told",
                            "--remove", *p])
    assert r.exit_code == 0 and "Removed 1" in r.stderr
    r = runner.invoke(cli, ["cmoc", "link", "X1", "--source", "S1 DK1 2019-05-14", "--quote", "absent words", *p])
    assert r.exit_code == 1 and "not in the text" in r.stderr
    for cmd in (["cmoc", "--help"], ["theory", "import", "--help"], ["ifthen", "--help"]):
        r = runner.invoke(cli, cmd)
        assert r.exit_code == 0 and "Example" in r.stdout


def test_history_evidence_round_trips_as_quotes(place, mind, tmp_path):
    _diary(mind)
    eid = link_evidence(mind, "T1.1", {"source": "S1 DK1 2019-05-14", "quote": "I wasn't told"})
    with mind.connect() as conn:
        excerpt_id = conn.execute(select(S.cmoc_evidence.c.excerpt_id).where(S.cmoc_evidence.c.id == eid)).scalar_one()
    from sp_realist.cmoc import record_change

    record_change(mind, "T1", "Context now names reception staff", reason="S1 DK1", evidence=[excerpt_id],
                  author="RA", at="2019-09-01")
    text = export_theories_yaml(mind)
    hist = yaml.safe_load(text)["theories"][0]["history"]
    assert hist[-1] == {"at": "2019-09-01", "change": "Context now names reception staff", "author": "RA",
                        "reason": "S1 DK1", "evidence": [{"source": "S1 DK1 2019-05-14", "quote": "I wasn't told"}]}
    out = tmp_path / "t.yaml"
    out.write_text(text)
    fresh = Project.create(place("fresh"))
    _diary(fresh)
    import_theories_yaml(fresh, out)
    assert export_theories_yaml(fresh) == text
    # Without the source the evidence cannot be located: nothing is imported.
    empty = Project.create(place("empty"))
    with pytest.raises(NotFoundError, match="No source"):
        import_theories_yaml(empty, out)
    assert list_theories(empty).empty


clause_words = st.text(alphabet="abcdefghij ABC.", min_size=1, max_size=25).map(lambda s: " ".join(s.split())).filter(
    lambda s: s.strip(". "))


@settings(max_examples=100, deadline=None)
@given(items=st.lists(clause_words, min_size=1, max_size=5))
def test_clause_grammar_properties(items):
    out = clause("\n".join(items))
    cleaned = [strip_stop(i) for i in items if strip_stop(i)]
    assert not out.endswith(".")
    # n items are joined by n-2 commas-between-items and one " and " (items may contain their own).
    if len(cleaned) >= 2:
        assert out.endswith(" and " + lower_first(cleaned[-1]))
    for i in cleaned:
        assert lower_first(i) in out

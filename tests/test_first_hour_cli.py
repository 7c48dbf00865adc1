"""Issue 12, the newcomer's small frictions, each reproduced on the command line: -p before the
command, did-you-mean for mistyped names, interpretation aliases, the --children hint, rule and
person coding the same words."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.sqlite_only(
    "a newcomer's first commands on a project file; the queries they run are tested on both back ends in "
    "test_sql_queries.py")

TRANSCRIPT = ("Interviewer: How are referrals?\n"
              "Link worker: Slow at first, then fine. The workload was heavy but we coped.\n"
              "Interviewer: Thanks.\n")


@pytest.fixture
def tour(cli, runner, tmp_path, monkeypatch):
    """A project with one interview, codes Workload > Caseload and Referrals, run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    (tmp_path / "s1-lw4.txt").write_text(TRANSCRIPT, encoding="utf-8")

    def run(*args, code=0):
        res = runner.invoke(cli, list(args))
        assert res.exit_code == code, (args, res.output)
        return res

    run("init", "p.sprealist")
    run("ingest", "s1-lw4.txt")
    run("codebook", "add", "Workload")
    run("codebook", "add", "Caseload", "--parent", "Workload")
    run("codebook", "add", "Referrals")
    return run


def test_project_option_before_the_command(cli, runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "s1-lw4.txt").write_text(TRANSCRIPT, encoding="utf-8")
    for name in ("a/one.sprealist", "two.sprealist"):
        assert runner.invoke(cli, ["init", name]).exit_code == 0
    res = runner.invoke(cli, ["-p", "a/one.sprealist", "ingest", "s1-lw4.txt"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["-p", "a/one.sprealist", "sources", "list", "--format", "csv"])
    assert res.exit_code == 0 and "s1-lw4" in res.stdout
    res = runner.invoke(cli, ["--project", "a/one.sprealist", "sources", "list", "-p", "two.sprealist",
                              "--format", "csv"])  # the command's own -p wins
    assert res.exit_code == 0 and "s1-lw4" not in res.stdout
    res = runner.invoke(cli, ["-p", "missing.sprealist", "sources", "list"])
    assert res.exit_code == 1 and "missing.sprealist" in res.stderr and "Traceback" not in res.output
    assert "-p, --project PATH" in runner.invoke(cli, ["--help"]).stdout
    # import qdpx's own -p names the project it creates; so does the one before the command
    assert runner.invoke(cli, ["-p", "a/one.sprealist", "export", "qdpx", "one.qdpx"]).exit_code == 0
    res = runner.invoke(cli, ["-p", "copy.sprealist", "import", "qdpx", "one.qdpx"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["-p", "copy.sprealist", "sources", "list", "--format", "csv"])
    assert res.exit_code == 0 and "s1-lw4" in res.stdout


def test_mistyped_names_get_a_suggestion(tour, tmp_path):
    tour("code", "add", "Workload", "-s", "s1-lw4", "--match", "workload", "--coder", "RA")
    tour("code", "add", "Workload", "-s", "s1-lw4", "--match", "heavy", "--coder", "RB")
    tour("participants", "add", "S1 LW4", "--site", "S1")
    tour("theme", "add", "Pressure on staff")
    (tmp_path / "theories.yaml").write_text(
        "theories:\n  - key: T1\n    title: Referral pathways\n    cmocs:\n"
        "      - key: T1.1\n        context: Slow referrals\n        mechanism: Frustration\n"
        "        outcome: Repeated phone calls\n", encoding="utf-8")
    tour("theory", "import", "theories.yaml")
    cases = [
        (("retrieve", "Workloda"), "No code named 'Workloda' in the codebook; did you mean 'Workload'?"),
        (("retrieve", "workload "), "did you mean 'Workload'?"),
        (("sources", "show", "s1-lw5"), "No source named 's1-lw5' in the project; did you mean 's1-lw4'?"),
        (("cmoc", "show", "T1.11"), "No CMOC 'T1.11' in the project; did you mean 'T1.1'?"),
        (("theory", "show", "T11"), "No theory 'T11' in the project; did you mean 'T1'?"),
        (("theme", "edit", "Presure on staff", "--phase", "named"), "No theme named 'Presure on staff'; did you mean 'Pressure on staff'?"),
        (("participants", "edit", "S1 LW5", "--role", "link worker"),
         "No participant 'S1 LW5'; did you mean 'S1 LW4'?"),
        (("memo", "add", "note", "--cmoc", "T1.2"), "did you mean 'T1.1'?"),
        (("agreement", "--coders", "RA", "Rb"), "coder 'Rb' has no codings; did you mean 'RB'?"),
    ]
    for args, expected in cases:
        res = tour(*args, code=1)
        said = " ".join(res.stderr.split())
        assert expected in said, (args, said)
        assert said.count("Error:") == 1 and "Traceback" not in res.output
    res = tour("retrieve", "Zzzz", code=1)  # nothing close: what to do instead
    assert "see 'sp-realist codebook tree'" in res.stderr and "did you mean" not in res.stderr


THEORY = ("theories:\n  - key: T1\n    title: Referral pathways\n    cmocs:\n"
          "      - key: T1.1\n        context: Slow referrals\n        mechanism: Frustration\n"
          "        outcome: Repeated phone calls\n")


def test_interpretation_aliases_on_the_cli_and_in_analysis_files(tour, tmp_path):
    import json

    (tmp_path / "theories.yaml").write_text(THEORY, encoding="utf-8")
    tour("theory", "import", "theories.yaml")
    tour("appraise", "set", "--source", "s1-lw4", "--quote", "workload was heavy", "--analyst", "RA",
         "--relevance", "relevant", "--interpretation", "mechanism", "--judgement", "supports", "--cmoc", "T1.1",
         "--link")
    tour("cmoc", "link", "T1.1", "--source", "s1-lw4", "--quote", "Slow at first", "--component", "Resource",
         "--analyst", "RA")
    (tmp_path / "analysis.yaml").write_text(
        "excerpts:\n  - source: s1-lw4\n    quote: then fine\n    analyst: RB\n"
        "    appraisal: {relevance: relevant, interpretation: Behaviour}\n"
        "    evidence:\n      - {cmoc: T1.1, role: supports, component: mechanism}\n", encoding="utf-8")
    tour("analysis", "import", "analysis.yaml")
    rows = json.loads(tour("appraise", "list", "--format", "json").stdout)
    assert sorted((r["analyst"], r["interpretation"]) for r in rows) == [
        ("RA", "mechanism_response"), ("RB", "mechanism_response")]
    evidence = json.loads(tour("cmoc", "show", "T1.1", "--what", "evidence", "--format", "json").stdout)
    assert sorted(e["component"] for e in evidence) == ["mechanism_resource", "mechanism_response",
                                                        "mechanism_response"]
    res = tour("appraise", "set", "--source", "s1-lw4", "--quote", "then fine", "--analyst", "RA",
               "--interpretation", "mechanisms", code=2)  # not an alias: a usage error naming the choices
    assert "mechanism_response" in res.stderr


def test_retrieve_parent_hints_children(tour):
    tour("code", "add", "Caseload", "-s", "s1-lw4", "--match", "heavy", "--unit", "sentence", "--coder", "RA")
    res = tour("retrieve", "Workload", "--format", "csv")
    assert res.stdout.strip() == "code,source,participant,attribution,site,role,kind,start,end,coder,origin,text,memo,coding_id"
    assert ("(code 'Workload' has no codings of its own; its children have 1: add --children)"
            in " ".join(res.stderr.split()))
    res = tour("retrieve", "Workload", "--children", "--format", "csv")
    assert "The workload was heavy but we coped." in res.stdout and "add --children" not in res.stderr
    res = tour("retrieve", "Workload", "--where", "site=S9", "--format", "csv")  # the children have none there
    assert "add --children" not in res.stderr
    res = tour("retrieve", "Referrals", "--format", "csv")  # no children at all: no hint
    assert res.stderr == ""


def test_rule_and_person_coding_the_same_words_count_once(tour, tmp_path):
    import json

    (tmp_path / "codebook.yaml").write_text(
        "codes:\n  - name: Workload\n    rules:\n      - {name: workload-words, keywords: [workload], unit: sentence}\n",
        encoding="utf-8")
    tour("codebook", "import", "codebook.yaml")
    tour("autocode")
    tour("code", "add", "Workload", "-s", "s1-lw4", "--match", "workload", "--unit", "sentence", "--coder", "RA")
    stored = json.loads(tour("code", "list", "--format", "json").stdout)
    assert sorted(c["coder"] for c in stored) == ["RA", "autocode"]  # both kept in the store
    shown = json.loads(tour("retrieve", "Workload", "--format", "json").stdout)
    assert [(r["coder"], r["origin"]) for r in shown] == [("RA", "manual")]  # the person's coding is shown
    freq = json.loads(tour("frequencies", "--format", "json").stdout)
    assert {r["code"]: r["codings"] for r in freq}["Workload"] == 1
    frame = json.loads(tour("framework", "--rows", "sites", "--cells", "excerpts", "--format", "json").stdout)
    assert [r["Workload"] for r in frame] == ["The workload was heavy but we coped. [s1-lw4]"]
    frame = json.loads(tour("framework", "--rows", "sites", "--format", "json").stdout)
    assert [r["Workload"] for r in frame] == [1]
    cooc = json.loads(tour("cooccurrence", "--format", "json").stdout)
    assert {r["code"]: r["Workload"] for r in cooc}["Workload"] == 1
    # asking for the rule's codings still shows them
    shown = json.loads(tour("retrieve", "Workload", "--coder", "autocode", "--format", "json").stdout)
    assert [(r["coder"], r["origin"]) for r in shown] == [("autocode", "rule:workload-words")]


def test_drop_rule_duplicates_keeps_people_and_one_rule():
    import pandas as pd

    from sp_realist.coding.retrieval import drop_rule_duplicates

    df = pd.DataFrame({
        "coding_id": [1, 2, 3, 4, 5, 6],
        "code_id": [1, 1, 1, 1, 1, 2],
        "source_id": [1, 1, 1, 1, 1, 1],
        "start": [0, 0, 0, 10, 10, 0],
        "end": [5, 5, 5, 20, 20, 5],
        "origin": ["rule:a", "manual", "import:NVivo", "rule:b", "rule:a", "rule:a"],
    })
    # words 0-5 of code 1: the two people's codings stay (agreement needs both), the rule's goes;
    # words 10-20: two rules, the first kept; code 2's rule coding has no person beside it: kept
    assert drop_rule_duplicates(df)["coding_id"].tolist() == [2, 3, 4, 6]
    assert drop_rule_duplicates(df.iloc[0:0]).empty


def test_a_rule_combines_keywords_phrases_and_patterns(tour, tmp_path):
    """One rule hits wherever any of its keywords, phrases or patterns matches (real spacy.blank("en"))."""
    import json

    import yaml

    (tmp_path / "s2-pm1.txt").write_text(
        "Interviewer: What helped?\n"
        "Manager: Referrals were slow. The reception staff knew nothing. "
        "We hit a brick wall twice. Nothing else mattered.\n", encoding="utf-8")
    tour("ingest", "s2-pm1.txt")
    (tmp_path / "codebook.yaml").write_text(
        "codes:\n  - name: Barriers\n    rules:\n      - name: barrier-words\n"
        "        keywords: [referral]\n        lemma: true\n        phrases: [reception staff]\n"
        "        pattern: [{LOWER: brick}, {LOWER: wall}]\n        unit: sentence\n", encoding="utf-8")
    tour("codebook", "import", "codebook.yaml")
    hits = json.loads(tour("autocode", "--dry-run", "--format", "json").stdout)
    assert sorted(h["matched"] for h in hits) == ["Referrals", "brick wall", "reception staff"]
    assert {h["rule"] for h in hits} == {"barrier-words"}
    rules = json.loads(tour("codebook", "rules", "--format", "json").stdout)
    assert [(r["kind"], json.loads(r["spec"])) for r in rules] == [("combined", {
        "keywords": ["referral"], "phrases": ["reception staff"], "pattern": [[{"LOWER": "brick"}, {"LOWER": "wall"}]]})]
    tour("autocode")
    texts = [r["text"] for r in json.loads(tour("retrieve", "Barriers", "--format", "json").stdout)]
    assert texts == ["Referrals were slow.", "The reception staff knew nothing.", "We hit a brick wall twice."]
    exported = yaml.safe_load(tour("codebook", "export").stdout)  # written back as it was written
    rule = next(c for c in exported["codes"] if c["name"] == "Barriers")["rules"][0]
    assert rule["keywords"] == ["referral"] and rule["phrases"] == ["reception staff"]
    assert rule["pattern"] == [{"LOWER": "brick"}, {"LOWER": "wall"}] and rule["lemma"] is True
    (tmp_path / "again.yaml").write_text(yaml.safe_dump(exported), encoding="utf-8")
    tour("codebook", "import", "again.yaml")
    assert json.loads(tour("codebook", "rules", "--format", "json").stdout)[0]["spec"] == rules[0]["spec"]


def test_question_marks_inside_field_note_sentences_do_not_split(tour, tmp_path):
    import json

    (tmp_path / "s1-notes.txt").write_text(
        "Visited the surgery. The workload looked heavy (unclear?) but staff coped. "
        "The manager asked whether? no one knew about referrals. Was it the forms? Nobody said.\n",
        encoding="utf-8")
    tour("ingest", "s1-notes.txt", "--kind", "field_notes")
    for word in ("workload", "referrals", "forms"):
        tour("code", "add", "Workload", "-s", "s1-notes", "--match", word, "--unit", "sentence", "--coder", "RA")
    texts = [r["text"] for r in json.loads(tour("retrieve", "Workload", "--format", "json").stdout)]
    assert texts == ["The workload looked heavy (unclear?) but staff coped.",
                     "The manager asked whether? no one knew about referrals.",
                     "Was it the forms?"]  # a "?" before a capital still ends the sentence
    (tmp_path / "codebook.yaml").write_text(  # autocoding uses the same sentences
        "codes:\n  - name: Referrals\n    rules:\n      - {name: ref, keywords: [referrals], unit: sentence}\n",
        encoding="utf-8")
    tour("codebook", "import", "codebook.yaml")
    hits = json.loads(tour("autocode", "--dry-run", "--source", "s1-notes", "--format", "json").stdout)
    text = (tmp_path / "s1-notes.txt").read_text(encoding="utf-8")
    start = text.index("The manager")
    assert [(h["start"], h["end"]) for h in hits] == [(start, start + len(texts[1]))]

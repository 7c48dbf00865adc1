"""If/then statements that read right: clause or noun phrase, wording per form, lists, case and full stops;
a CMOC's own wording (theories YAML `ifthen:`, `cmoc edit --ifthen`), which wins everywhere."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import examples
from sp_realist import schema as S
from sp_realist.cmoc import (add_cmoc, add_theory, cmoc_detail, edit_cmoc, export_theories_yaml, ifthen_statements,
                             import_theories_yaml)
from sp_realist.cmoc.ifthen import as_clause, cell_form, finish_sentence, is_plural, part_form, render_statement
from sp_realist.errors import SpRealistError
from sp_realist.store import Project

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "mind-cymru-2020"

# (part, form): the corpus's parts, the report's own table cells (Tables 6.1-6.4, verbatim) and other inputs.
FORMS = [
    # clauses
    ("GP practice does not explain the service before referring", "clause"),
    ("people do not expect the call", "clause"),
    ("Link worker training needs analysis is conducted", "clause"),              # Table 6.4
    ("Reflexivity reveals training needs", "clause"),                            # Table 6.4
    ("Client feels increasingly calmer and more relaxed", "clause"),             # Table 6.2
    ("Client voice becomes unheard or defensive", "clause"),                     # Table 6.2
    ("Client felt heard (understood and not being judged)", "clause"),           # Table 6.2
    ("Closing the case leads to both sadness and a sense of success", "clause"),  # Table 6.3 (gerund subject)
    ("Understanding the equal importance of the link workers V evaluator roles is clarified at the beginning",
     "clause"),                                                                  # Table 6.4
    ("link workers perceive that the client feels alone and anxious", "clause"),
    ("the client needs to hear about the service first", "clause"),
    ("the GP referred her to counselling", "clause"),
    ("they feel stressed", "clause"),
    ("there are no rooms free on Mondays", "clause"),
    ("S1 link workers can refer directly", "clause"),
    ("relatives are included in the conversation", "clause"),                     # corpus T2.3
    ("a nervous client, unable to express their feelings, needs more than one session with the link worker",
     "clause"),                                                                  # corpus T2.4
    ("the pilot work starts before staff feel the paperwork is settled", "clause"),  # corpus T1.3
    ("a link worker keeps a reflective diary regularly", "clause"),                # corpus T4.2
    ("link workers enjoy a lovely working relationship and a sense of satisfaction", "clause"),  # corpus T3.2
    ("too many new clients are booked in a day on top of the paperwork", "clause"),  # corpus T3.3
    ("the client can change behaviour, tone and posture", "clause"),               # corpus T2.3
    # noun phrases
    ("lack of information about the service", "noun"),
    ("Lack of induction at site for project and primary care reception staff", "noun"),  # Table 6.1
    ("No organised site and staff introduction", "noun"),                        # Table 6.1
    ("Irritation", "noun"),
    ("Communication issues, no initial safety procedures", "noun"),
    ("Client presenting with complex problems", "noun"),                         # Table 6.2
    ("Client requiring concise and correct information", "noun"),                # Table 6.2
    ("What matters conversation", "noun"),                                       # Table 6.2
    ("Active listening by link worker", "noun"),                                 # Table 6.2
    ("Feeling alone and anxious", "noun"),                                       # "feeling" is a noun too
    ("Reassurance that funding is spent effectively", "noun"),                   # "is" in a that-clause
    ("a training needs analysis for link workers", "noun"),                      # "needs" is a noun here
    ("a client referred by the GP", "noun"),                                     # participle, not past tense
    ("a reflective diary kept regularly", "noun"),
    ("a client who is nervous", "noun"),                                         # "is" in a relative clause
    ("both sadness and a sense of success when the case is closed", "noun"),     # corpus T3.2
    ("a need for informal support so link workers look after themselves; without it, link workers leave",
     "noun"),                                                                    # corpus T3.1
    ("link workers going home feeling 'drained'", "noun"),                       # corpus T3.3
    ("complex problems with housing", "noun"),
    ("home visits by the link worker", "noun"),                                  # "visits" is a noun here
    ("needs of carers", "noun"),
    ("the link worker visits the client at home", "clause"),
    ("the team meets every week", "clause"),
    ("a service that works well", "noun"),
    ("the service works well", "clause"),
    ("S1 link workers phone twice", "clause"),
    ("the GP books a double appointment", "clause"),
    ("weekly reviews of the caseload", "noun"),
    # gerund phrases and predicates (a verb phrase without its subject)
    ("Starting pilot before agreeing paperwork", "gerund"),                      # Table 6.1
    ("Including relative(s) in the conversation", "gerund"),                     # Table 6.2
    ("Worrying whether strong enough emotionally to cope with the issues presented", "gerund"),  # Table 6.3
    ("Creates confusion", "predicate"),                                          # Table 6.1
    ("Helps link workers with no previous experience of working with research better understand each element",
     "predicate"),                                                               # Table 6.4
    ("can lead to delays", "predicate"),
]


@pytest.mark.parametrize("text,form", FORMS, ids=[t[:40] for t, _ in FORMS])
def test_part_form_table(text, form):
    assert part_form(text) == form


def test_the_form_table_is_large_and_mixed():
    forms = [f for _, f in FORMS]
    assert forms.count("clause") >= 12 and forms.count("noun") >= 12 and len(FORMS) >= 25


@pytest.mark.parametrize("text,plural", [
    ("complex problems", True), ("busy surgeries and NHS pressures", True), ("too many new clients", True),
    ("communication issues, no safety procedures", True), ("people who are waiting", True),
    ("lack of induction", False), ("a client", False), ("no organised site and staff introductions", False),
    ("the news about funding", False), ("stress", False), ("a training needs analysis", False),
    ("the client's needs", True), ("S1's process", False),
])
def test_is_plural(text, plural):
    assert is_plural(text) is plural


def statement(context=None, mechanism=None, outcome=None, resource=None):
    return render_statement({"key": "K1", "theory": None, "context": context, "mechanism_resource": resource,
                             "mechanism_response": mechanism, "outcome": outcome, "status": "complete",
                             "confidence": None})


@pytest.mark.parametrize("parts,expected", [
    # the example: three clauses
    (("GP practice does not explain the service before referring.", "People do not expect the call.",
      "Link workers spend the first call explaining the service."),
     "If GP practice does not explain the service before referring then people do not expect the call, so link "
     "workers spend the first call explaining the service."),
    # three noun phrases, a list outcome
    (("Lack of information about the service", "Confusion", "Missed appointments\nRepeated calls."),
     "If there is lack of information about the service then this leads to confusion, resulting in missed "
     "appointments and repeated calls."),
    # plural noun phrase context, clause outcome
    (("Busy surgeries", "irritation", "Link workers ask reception again and again."),
     "If there are busy surgeries then this leads to irritation, so link workers ask reception again and again."),
    # predicate mechanism and outcome
    (("Lack of induction at site", "Creates confusion", "Helps nobody"),
     "If there is lack of induction at site then this creates confusion and so helps nobody."),
    # gerund context
    (("Starting pilot before agreeing paperwork", "Frustration", "Constantly managing change."),
     "If it involves starting pilot before agreeing paperwork then this leads to frustration, resulting in "
     "constantly managing change."),
    # a mixed list becomes clauses; acronyms and codes keep their capitals, other words do not
    (("NHS waiting lists\nGPs do not refer", "S1 link workers can refer directly", "Fewer referrals"),
     "If there are NHS waiting lists and GPs do not refer then S1 link workers can refer directly, resulting in "
     "fewer referrals."),
    # full stops: doubled, ellipsis, trailing punctuation
    (("Lack of induction..", "Confusion...", "Delays.;"),
     "If there is lack of induction then this leads to confusion, resulting in delays."),
    # a noun phrase and a clause in one list: each reads as a clause
    (("Lack of information about the service.", "Confusion", "Missed appointments\nS1 link workers phone twice"),
     "If there is lack of information about the service then this leads to confusion, so there are missed "
     "appointments and S1 link workers phone twice."),
    # missing parts
    ((None, None, "Turnover"),
     "If there is [context not yet identified] then [mechanism not yet identified], resulting in turnover."),
    ((None, None, None), "If there is [context not yet identified] then [mechanism not yet identified]."),
])
def test_statements_read_right(parts, expected):
    assert statement(*parts) == expected


@pytest.mark.parametrize("resource,response,expected", [
    ("Peer support", "Feeling valued", "then peer support triggers feeling valued,"),
    ("Peer support", "the link worker feels valued", "then, with peer support, the link worker feels valued,"),
    ("Link workers meet weekly", "Trust", "then link workers meet weekly, which leads to trust,"),
    ("Link workers meet weekly", "they feel valued", "then link workers meet weekly and they feel valued,"),
])
def test_resource_and_response(resource, response, expected):
    s = statement("Busy surgeries", response, "Less stress", resource=resource)
    assert expected in s and s.startswith("If there are busy surgeries then") and s.endswith("less stress.")


def test_cell_helpers():
    assert cell_form(["Busy surgeries", "Starting late"]) == "noun"       # noun and gerund phrases mix
    assert cell_form(["Starting late", "Busy surgeries"]) == "gerund"
    assert cell_form(["Busy surgeries", "GPs do not refer"]) == "clause"
    assert cell_form(None) == "noun"
    assert as_clause("Complex problems") == "there are complex problems"
    assert as_clause(["Complex problems", "GPs do not refer"]) == "there are complex problems and GPs do not refer"
    assert as_clause("Creates confusion") == "this creates confusion"
    assert as_clause("") == ""


@pytest.mark.parametrize("raw,finished", [
    ("if a client feels heard then trust grows", "If a client feels heard then trust grows."),
    ("  If  a  , b ..", "If a, b."),
    ("Is it heard?", "Is it heard?"),
    ("Ends with an ellipsis...", "Ends with an ellipsis."),
    ("Keeps an ... inside.", "Keeps an ... inside."),
    ("Trailing comma,", "Trailing comma."),
    ("", ""),
])
def test_finish_sentence(raw, finished):
    assert finish_sentence(raw) == finished


def test_every_corpus_statement_is_one_sentence_without_doubled_stops(place, tmp_path):
    with Project.create(place("c")) as p:
        doc = yaml.safe_load((CORPUS / "theories.yaml").read_text(encoding="utf-8"))
        for t in doc["theories"]:
            t.pop("history", None)  # history evidence quotes need the sources; the CMOCs do not
        f = tmp_path / "theories.yaml"
        f.write_text(yaml.safe_dump(doc), encoding="utf-8")
        import_theories_yaml(p, f)
        df = ifthen_statements(p)
    for s in df["statement"]:
        assert s.startswith("If ") and s.endswith(".") and s.count(". ") == 0 and ".." not in s, s
        assert " then " in s and "If there is the " not in s
        # no capital letter mid-sentence except acronyms and codes
        for word in s.split()[1:]:
            if word[:1].isupper():
                assert word.strip("(),.;:'") in {"I"} or any(c.isupper() or c.isdigit() for c in word[1:]), word
    assert dict(zip(df["cmoc"], df["wording"])) == {
        **{k: "template" for k in df["cmoc"]}, "T2.1": "cmoc", "T4.3": "cmoc"}
    # docs/realist.md quotes theory T1's three statements as they are
    docs = (CORPUS.parent.parent / "docs" / "realist.md").read_text(encoding="utf-8")
    section = docs[docs.index("## If/then statements"):docs.index("### How the default template")]
    quoted = [" ".join(q.split()) for q in "\n".join(
        line[1:] for line in section.splitlines() if line.startswith(">")).split("\n\n")]
    assert quoted == list(df["statement"][:3])


# -- a CMOC's own wording ---------------------------------------------------
def test_cmoc_wording_wins_and_clears(project):
    add_theory(project, "T1", "Referral")
    add_cmoc(project, "T1.1", theory="T1", context="Lack of induction", mechanism_response="Confusion",
             outcome="Delays", ifthen="if there is no induction then link workers are confused, so clients wait")
    df = ifthen_statements(project)
    assert df.to_dict("records") == [{"theory": "T1", "cmoc": "T1.1", "wording": "cmoc",
                                      "statement": "If there is no induction then link workers are confused, so "
                                                   "clients wait."}]
    # the stored text is what the analyst wrote (only white space runs are collapsed)
    assert cmoc_detail(project, "T1.1")["ifthen"] == ("if there is no induction then link workers are confused, "
                                                      "so clients wait")
    # a project template does not override a CMOC's own wording
    assert ifthen_statements(project, template=None)["wording"][0] == "cmoc"
    assert edit_cmoc(project, "T1.1", ifthen="") == {"ifthen": ("if there is no induction then link workers are "
                                                                 "confused, so clients wait", None)}
    df = ifthen_statements(project)
    assert df["wording"][0] == "template"
    assert df["statement"][0] == "If there is lack of induction then this leads to confusion, resulting in delays."
    with pytest.raises(SpRealistError, match="ifthen must be one statement"):
        edit_cmoc(project, "T1.1", ifthen=["a", "b"])


@pytest.mark.sqlite_only("templates/ beside the project file")
def test_cmoc_wording_beats_a_project_template(project, tmp_path):
    add_cmoc(project, "C1", context="Lack of induction", mechanism_response="Confusion", outcome="Delays")
    add_cmoc(project, "C2", context="No rooms", mechanism_response="Irritation", outcome="Late starts",
             ifthen="Without rooms, sessions start late.")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ifthen.j2").write_text("Where {{ context|clause }}, {{ outcome|clause }}.")
    assert list(ifthen_statements(project)["statement"]) == ["Where lack of induction, delays.",
                                                             "Without rooms, sessions start late."]


def test_cli_cmoc_ifthen_edit_show_and_clear(runner, cli, project_path):
    p = ["-p", str(project_path)]
    r = runner.invoke(cli, ["cmoc", "add", "T1.1", "--context", "Lack of induction", "--mechanism", "Confusion",
                            "--ifthen", "If there is no induction then link workers are confused.", *p])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ifthen", "--format", "json", *p])
    assert json.loads(r.stdout)[0]["statement"] == "If there is no induction then link workers are confused."
    r = runner.invoke(cli, ["cmoc", "edit", "T1.1", "--ifthen", "If staff have no induction, they are confused.",
                            "--reason", "closer to S1 DK1", *p])
    assert r.exit_code == 0 and "changed ifthen" in r.stderr
    r = runner.invoke(cli, ["cmoc", "show", "T1.1", "--what", "fields", "--format", "json", *p])
    fields = {x["field"]: x["value"] for x in json.loads(r.stdout)}
    assert fields["ifthen"] == "If staff have no induction, they are confused."
    r = runner.invoke(cli, ["cmoc", "edit", "T1.1", "--ifthen", "", *p])
    assert r.exit_code == 0 and "changed ifthen" in r.stderr
    r = runner.invoke(cli, ["ifthen", "--format", "json", *p])
    assert json.loads(r.stdout)[0] == {"theory": None, "cmoc": "T1.1", "wording": "template",
                                       "statement": "If there is lack of induction then this leads to confusion."}
    r = runner.invoke(cli, ["cmoc", "edit", "--help"])
    assert r.exit_code == 0 and "--ifthen" in r.stdout and 'sp-realist cmoc edit T2.1 --ifthen ""' in r.stdout


wording = st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Z")),
                           min_size=1, max_size=12), min_size=1, max_size=8).map(" ".join)


def test_theories_yaml_ifthen_round_trip(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 30), deadline=None)
    @given(text=wording)
    @example(text="If there is lack of induction then this leads to confusion.")
    @example(text="x")                                  # shortest
    @example(text="If ‘S1’ — “GP” … then: yes; no.")   # quotes, dashes, an ellipsis, non-ASCII
    @example(text="- a leading dash")                   # YAML would read a bare one as a list
    @example(text="key: value")                         # and this as a mapping
    def check(text):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        doc = {"theories": [{"key": "T1", "title": "A theory", "cmocs": [
            {"key": "T1.1", "context": "Lack of induction", "ifthen": text}, {"key": "T1.2", "context": "No rooms"}]}]}
        src = folder / "in.yaml"
        src.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        with Project.create(new_location()) as a:
            import_theories_yaml(a, src)
            out = export_theories_yaml(a, folder / "out.yaml")
        back = yaml.safe_load(out)["theories"][0]["cmocs"]
        assert back[0]["ifthen"] == text and "ifthen" not in back[1]
        with Project.create(new_location()) as b:
            import_theories_yaml(b, folder / "out.yaml")
            assert export_theories_yaml(b) == out
            # a file without ifthen: leaves the wording alone (import is a merge); ifthen: "" clears it
            doc["theories"][0]["cmocs"][0].pop("ifthen")
            src.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            import_theories_yaml(b, src)
            assert yaml.safe_load(export_theories_yaml(b))["theories"][0]["cmocs"][0]["ifthen"] == text
            doc["theories"][0]["cmocs"][0]["ifthen"] = ""
            src.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            import_theories_yaml(b, src)
            assert "ifthen" not in yaml.safe_load(export_theories_yaml(b))["theories"][0]["cmocs"][0]

    check()


def test_theories_yaml_refuses_a_list_as_ifthen(project, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("theories:\n  - key: T1\n    title: ok\n    cmocs:\n      - {key: T1.1, ifthen: [a, b]}\n")
    with pytest.raises(SpRealistError, match="CMOC T1.1: ifthen must be one statement"):
        import_theories_yaml(project, bad)
    with project.connect() as conn:
        assert conn.execute(select(S.cmocs)).all() == []


def test_qdpx_carries_the_cmoc_wording(place, project, tmp_path):
    from sp_realist.exchange.qdpx_export import export_qdpx
    from sp_realist.exchange.qdpx_import import import_qdpx_new

    add_theory(project, "T1", "Referral")
    add_cmoc(project, "T1.1", theory="T1", context="Lack of induction", mechanism_response="Confusion",
             ifthen="If there is no induction, link workers are confused.")
    add_cmoc(project, "T1.2", theory="T1", context="No rooms")
    add_cmoc(project, "T1.3", theory="T1", ifthen="Only a wording so far.")
    export_qdpx(project, tmp_path / "p.qdpx")
    import_qdpx_new(tmp_path / "p.qdpx", place("back"))
    with Project.open(place("back")) as back, back.connect() as conn:
        rows = {r.key: (r.context, r.ifthen) for r in conn.execute(select(S.cmocs))}
    assert rows == {"T1.1": ("Lack of induction", "If there is no induction, link workers are confused."),
                    "T1.2": ("No rooms", None), "T1.3": (None, "Only a wording so far.")}


def test_reports_show_the_cmoc_wording(runner, cli, project_path, tmp_path):
    with Project.open(project_path) as p:
        add_theory(p, "T1", "Referral")
        add_cmoc(p, "T1.1", theory="T1", context="Lack of induction", mechanism_response="Confusion",
                 ifthen="If nobody is inducted, link workers are confused.")
        add_cmoc(p, "T1.2", theory="T1", context="No rooms", mechanism_response="Irritation")
    out = tmp_path / "r.md"
    r = runner.invoke(cli, ["report", "--to", "md", str(out), "-p", str(project_path)])
    assert r.exit_code == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert "If nobody is inducted, link workers are confused." in text
    assert "If there are no rooms then this leads to irritation." in text

"""Themes (Braun & Clarke), the theme table with spread quotes, and memos."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from coding_helpers import CODEBOOK_YAML, INTERVIEW, add_corpus
from sp_realist.coding import codebook as cb
from sp_realist.coding import themes as th
from sp_realist.coding.codings import add_coding, list_codings
from sp_realist.coding.memos import add_memo, edit_memo, export_memos, list_memos
from sp_realist.errors import NotFoundError, SpRealistError

D1, D2, IV = "S1 DK1 2019-05-14", "S2 DK1 2019-07-02", "Interview S1"


@pytest.fixture
def proj(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    add_corpus(project)
    return project


def test_theme_crud(proj):
    listed = th.list_themes(proj)
    assert listed["name"].tolist() == ["Getting started", "Paperwork", "Being part of the team"]
    assert listed.set_index("name").loc["Paperwork", "parent"] == "Getting started"
    th.add_theme(proj, "Support", description="Peer support.", phase="initial", codes=["Belonging"])
    with pytest.raises(SpRealistError, match="already exists"):
        th.add_theme(proj, "Support")
    with pytest.raises(SpRealistError, match="phase"):
        th.add_theme(proj, "Bad", phase="finished")
    th.edit_theme(proj, "Support", phase="reviewing", parent="Being part of the team")
    with pytest.raises(SpRealistError, match="inside it"):
        th.edit_theme(proj, "Being part of the team", parent="Support")
    th.edit_theme(proj, "Support", new_name="Peer support", top_level=True)
    row = th.list_themes(proj).set_index("name").loc["Peer support"]
    assert pd.isna(row["parent"]) and (row["phase"], row["codes"]) == ("reviewing", "Belonging")
    assert th.assign_codes(proj, "Peer support", ["Induction", "Belonging"]) == 1
    assert th.assign_codes(proj, "Peer support", ["Belonging"], remove=True) == 1
    assert th.list_themes(proj).set_index("name").loc["Peer support", "codes"] == "Induction"
    th.delete_theme(proj, "Getting started")
    assert th.list_themes(proj)["name"].tolist() == ["Being part of the team", "Peer support"]
    with pytest.raises(NotFoundError):
        th.edit_theme(proj, "Paperwork", phase="named")  # deleted with its parent
    # Codes survive theme deletion.
    assert "Referral process" in set(cb.codebook_tree(proj)["name"])


def test_theme_table_spreads_quotes_across_sites_and_participants(proj):
    iv_turn = INTERVIEW.index("Interviewer: And the induction?")
    add_coding(proj, "Referral process", D1, match="I wasn't told what clients I was seeing", coder="RA")
    add_coding(proj, "Induction", D1, match="I will ask the practice manager for an induction", coder="RA")
    add_coding(proj, "Missing referral forms", D1, match="Referrals were lost", unit="sentence", coder="RA")
    add_coding(proj, "Referral process", D2, match="Clients were referred by the GP", coder="RA")
    add_coding(proj, "Induction", IV, span=(iv_turn, iv_turn + 31), coder="RA")
    add_coding(proj, "Belonging", D2, match="Having a desk", unit="sentence", coder="RA")
    table = th.theme_table(proj, quotes_per_theme=3)
    assert table["theme"].tolist() == ["Getting started", "Paperwork", "Being part of the team"]
    gs = table.set_index("theme").loc["Getting started"]
    # Codes include the assigned codes' descendants.
    assert gs["codes"] == "Referral process, Missing referral forms, Induction"
    # The interviewer's question counts as a coding but supports no participant and is never quoted.
    assert (gs["codings"], gs["participants"], gs["sites"]) == (5, 2, 2)
    quotes = gs["quotes"]
    assert not any(q["source"] == IV for q in quotes)
    # First the earliest quote, then a new site (S2), then the remaining S1 DK1 quote.
    assert [q["attribution"] for q in quotes] == ["(S1 DK1)", "(S2 DK1)", "(S1 DK1)"]
    # The first S1 DK1 quote in the text is shorter than QUOTE_MIN, so a readable one is preferred.
    assert len("I wasn't told what clients I was seeing") < th.QUOTE_MIN
    assert quotes[0]["text"] == "Referrals were lost and nobody knew who to refer."
    assert {q["site"] for q in quotes} == {"S1", "S2"}
    for q in quotes:
        assert q["text"] == list_codings(proj, source=q["source"]).set_index("start").loc[q["start"], "text"]
    assert table.to_dict() == th.theme_table(proj, quotes_per_theme=3).to_dict()  # deterministic
    paper = table.set_index("theme").loc["Paperwork"]
    assert [q["text"] for q in paper["quotes"]] == ["Referrals were lost and nobody knew who to refer."]
    assert len(th.theme_table(proj, quotes_per_theme=1).set_index("theme").loc["Getting started", "quotes"]) == 1
    # A rule's coding loses to a person's coding of equal standing.
    only_s2 = th.theme_table(proj, quotes_per_theme=5, filters={"site": "S2"}).set_index("theme")
    assert [q["source"] for q in only_s2.loc["Getting started", "quotes"]] == [D2]


def test_report_themes_are_the_theme_table(proj):
    """One theme model: the report's thematic findings are `theme table`'s rows (codes with their child
    codes, counts, quotes), computed by sp_realist.coding.themes."""
    from sp_realist.coding.codebook import codebook_tree
    from sp_realist.report.model import ReportSettings, build_report_model

    iv_turn = INTERVIEW.index("Interviewer: And the induction?")
    add_coding(proj, "Referral process", D1, match="I wasn't told what clients I was seeing", coder="RA")
    add_coding(proj, "Missing referral forms", D1, match="Referrals were lost", unit="sentence", coder="RA")
    add_coding(proj, "Missing referral forms", D2, match="Clients were referred by the GP", coder="RB")
    add_coding(proj, "Induction", IV, span=(iv_turn, iv_turn + 31), coder="RA")
    add_coding(proj, "Belonging", D2, match="Having a desk", unit="sentence", coder="RA")
    table = th.theme_table(proj, quotes_per_theme=2).set_index("theme")
    model = build_report_model(proj, ReportSettings(quotes_per_theme=2, provenance="none"))
    assert [t.name for t in model.themes] == list(table.index)
    tree = codebook_tree(proj).set_index("name")
    for section in model.themes:
        row = table.loc[section.name]
        assert ", ".join(section.codes) == row["codes"]
        assert (section.codings, section.participants, section.sites) == (row["codings"], row["participants"],
                                                                          row["sites"])
        assert [(q.source, q.start, q.end) for q in section.quotes] == \
            [(q["source"], q["start"], q["end"]) for q in row["quotes"]]
        assert [f"({q.attribution})" for q in section.quotes] == [q["attribution"] for q in row["quotes"]]
    # The child code's codings count for the parent theme: computed from the codings and the code tree.
    codings = list_codings(proj)
    started = model.themes[0]
    children = {n for n in tree.index if tree.loc[n, "parent"] in ("Referral process",)}
    assert children == {"Missing referral forms"}
    own = codings[codings["code"].isin({"Referral process", "Induction"} | children)]
    assert started.name == "Getting started" and started.codings == len(own) == 4
    assert started.sources == own["source"].nunique()
    assert "Missing referral forms" in started.codes


def test_memos(proj):
    coding_id = int(add_coding(proj, "Induction", D1, span=(0, 4), coder="RA").pipe(
        lambda _df: list_codings(proj)["id"].iloc[0]))
    add_memo(proj, "Overall impressions.", author="RA", title="Project")
    add_memo(proj, "Referral confusion recurs.", on="code", target="Referral process", author="RA")
    add_memo(proj, "Entry written late.", on="source", target=D1, author="SM")
    add_memo(proj, "Borderline.", on="coding", target=coding_id, author="SM")
    add_memo(proj, "Strong theme.", on="theme", target="Getting started", author="RA")
    with pytest.raises(NotFoundError):
        add_memo(proj, "x", on="code", target="Nope", author="RA")
    with pytest.raises(SpRealistError, match="needs the code"):
        add_memo(proj, "x", on="code", author="RA")
    with pytest.raises(SpRealistError, match="some text"):
        add_memo(proj, "  ", author="RA")
    df = list_memos(proj)
    assert df["on"].tolist() == ["project", "code", "source", "coding", "theme"]
    assert df["target"].tolist()[1:] == ["Referral process", D1, f"Induction @ {D1} 0:4", "Getting started"]
    assert list_memos(proj, author="SM")["text"].tolist() == ["Entry written late.", "Borderline."]
    assert list_memos(proj, on="code", target="Referral process")["text"].tolist() == ["Referral confusion recurs."]
    edit_memo(proj, int(df["id"].iloc[0]), text="Revised impressions.")
    md = export_memos(proj)
    assert md.startswith("# Memos\n") and "Revised impressions." in md and "## code: Referral process" in md
    data = yaml.safe_load(export_memos(proj, fmt="yaml"))
    assert [m["text"] for m in data["memos"]][0] == "Revised impressions."


def test_cli_themes_and_memos(runner, cli, project_path, tmp_path):
    from sp_realist.store import Project

    with Project.open(project_path) as p:
        (tmp_path / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        cb.import_codebook_yaml(p, tmp_path / "cb.yaml")
        add_corpus(p)
        add_coding(p, "Belonging", D2, match="Having a desk", unit="sentence", coder="RA")
    base = ["-p", str(project_path)]
    r = runner.invoke(cli, ["theme", "add", "Support", "--phase", "searching", "--code", "Belonging", *base])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["theme", "add", "X", "--phase", "done", *base])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["theme", "edit", "Support", "--phase", "named", *base])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["theme", "assign", "Support", "Induction", *base])
    assert r.exit_code == 0 and "Assigned 1" in r.stderr
    r = runner.invoke(cli, ["theme", "list", "-f", "json", *base])
    assert {x["name"]: x["codes"] for x in json.loads(r.stdout)}["Support"] == "Induction, Belonging"
    r = runner.invoke(cli, ["theme", "table", "--quotes", "2", "-f", "json", *base])
    rows = {x["theme"]: x for x in json.loads(r.stdout)}
    assert rows["Support"]["quotes"][0]["text"] == "Having a desk made me feel part of the team."
    r = runner.invoke(cli, ["theme", "table", "-f", "md", *base])
    assert "\u201cHaving a desk made me feel part of the team.\u201d (S2 DK1)" in r.stdout
    r = runner.invoke(cli, ["memo", "add", "Check forms.", "--code", "Induction", "--author", "RA", *base])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["memo", "add", "x", "--code", "Induction", "--source", D1, *base])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["memo", "list", "--code", "Induction", "-f", "csv", *base])
    assert r.stdout.splitlines()[1].split(",")[1:5] == ["code", "Induction", "", "Check forms."]
    out = tmp_path / "memos.md"
    r = runner.invoke(cli, ["memo", "export", "-o", str(out), *base])
    assert r.exit_code == 0 and "Check forms." in out.read_text()

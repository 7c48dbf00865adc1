"""Autocoding: keywords, lemmas, phrases, Matcher patterns, units, dry run, idempotence, batch removal."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from coding_helpers import CODEBOOK_YAML, DIARY_S1, DIARY_S2, INTERVIEW, add_corpus
from sp_realist import schema as S
from sp_realist.coding import codebook as cb
from sp_realist.coding.autocode import AUTOCODER, add_rule, autocode, delete_rule, remove_rule_codings, rules_frame
from sp_realist.coding.codings import add_coding, list_codings
from sp_realist.errors import NotFoundError, SpRealistError


@pytest.fixture
def proj(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    add_corpus(project)
    return project


def _texts(project):
    with project.connect() as conn:
        return dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())


def _n(project):
    with project.connect() as conn:
        return conn.execute(select(func.count()).select_from(S.codings)).scalar_one()


def _interviewer_turns(project) -> dict[str, list[tuple[int, int]]]:
    """source name -> spans of the turns whose speaker is "Interviewer"."""
    seg = S.segments
    with project.connect() as conn:
        rows = conn.execute(select(S.sources.c.name, seg.c.start, seg.c.end)
                            .select_from(seg.join(S.sources, S.sources.c.id == seg.c.source_id))
                            .where(seg.c.speaker == "Interviewer")).all()
    out: dict[str, list[tuple[int, int]]] = {}
    for name, a, b in rows:
        out.setdefault(name, []).append((a, b))
    return out


def test_keywords_lemma_phrases_pattern_match_the_expected_words(proj):
    hits = autocode(proj, dry_run=True)
    assert _n(proj) == 0  # dry run writes nothing
    texts = _texts(proj)
    asked = _interviewer_turns(proj)
    assert asked  # the interview has interviewer turns, which autocoding skips by default

    def spoken(name, m):
        return not any(a <= m.start() < b for a, b in asked.get(name, ()))

    # Lemma keywords "referral"/"refer": every inflection of refer (refer, referred) and referral(s),
    # case-insensitively; never "reference"-like words.
    pattern = r"\b(referrals?|refer|referred|referring|refers)\b"
    expected = sorted((name, m.start(), m.end()) for name, t in texts.items()
                      for m in re.finditer(pattern, t, re.I) if spoken(name, m))
    got = sorted(zip(*(hits[hits["rule"] == "referral-words"][c] for c in ("source", "match_start", "match_end"))))
    assert got == expected
    # With the opt-in, the interviewer's words are matched too.
    every = autocode(proj, dry_run=True, include_interviewer=True)
    expected_all = sorted((name, m.start(), m.end()) for name, t in texts.items() for m in re.finditer(pattern, t, re.I))
    got = sorted(zip(*(every[every["rule"] == "referral-words"][c] for c in ("source", "match_start", "match_end"))))
    assert got == expected_all and len(expected_all) > len(expected)
    assert {"Referrals", "referred", "refer"} <= set(hits.loc[hits["rule"] == "referral-words", "matched"])
    expected = sorted((name, m.start(), m.end()) for name, t in texts.items()
                      for m in re.finditer(r"reception staff|practice manager", t, re.I))
    got = sorted(zip(*(hits[hits["rule"] == "reception"][c] for c in ("source", "match_start", "match_end"))))
    assert got == expected
    bw = hits[hits["rule"] == "brick-wall"]
    assert sorted(bw["matched"].str.lower()) == ["brick wall", "brick wall"]
    assert (bw["start"] == bw["match_start"]).all() and (bw["end"] == bw["match_end"]).all()  # unit: match
    assert all("[" + m + "]" in c for m, c in zip(hits["matched"], hits["context"]))


def test_units_sentence_segment_section(proj):
    hits = autocode(proj, dry_run=True)
    texts = _texts(proj)
    coded = lambda rule: {texts[s][a:b] for s, a, b in zip(*(hits[hits["rule"] == rule][c] for c in ("source", "start", "end")))}  # noqa: E731
    # sentence: the sentences containing a form of "refer"
    assert coded("referral-words") == {
        "The referral process felt like a brick wall.", "Referrals were lost and nobody knew who to refer.",
        "Clients were referred by the GP.", "The referral forms still went missing.",
        "Keep a log of referrals and missing forms.",
        "Sometimes the GP referred people directly.",
    }  # not the interviewer's "How did the referrals reach you?"
    # segment: the whole turn / section body containing the phrase (never the speaker label)
    assert coded("reception") == {DIARY_S1["Now what?"], DIARY_S2["What?"],
                                  "Mostly from reception staff. Sometimes the GP referred people directly."}
    # section: the whole Driscoll section of a diary; the interview turn (no section) otherwise
    assert coded("induction") == {DIARY_S1["Now what?"],
                                  INTERVIEW.split("\n\n")[3].strip().removeprefix("S2 DK1: ")}
    every = autocode(proj, dry_run=True, include_interviewer=True)
    turns = {texts[s][a:b] for s, a, b in zip(*(every[every["rule"] == "induction"][c] for c in ("source", "start", "end")))}
    assert turns == coded("induction") | {"And the induction?"}  # the interviewer's turn, with the opt-in


def test_apply_is_idempotent_and_removable_as_a_batch(proj):
    first = autocode(proj)
    n = _n(proj)
    assert n == first["new"].sum() > 0
    # Several hits in one unit make one coding: "referral" and "refer" in the same sentence.
    assert n == len(first.drop_duplicates(["code", "source", "start", "end"]))
    df = list_codings(proj)
    assert set(df["coder"]) == {AUTOCODER} and set(df["origin"]) == {f"rule:{r}" for r in first["rule"]}
    again = autocode(proj)
    assert not again["new"].any() and _n(proj) == n
    # A manual coding is never touched by rule removal.
    add_coding(proj, "Induction", "Interview S1", span=(0, 5), coder="RA")
    by_rule = first[first["new"]].groupby("rule").size()
    assert remove_rule_codings(proj, "brick-wall") == by_rule["brick-wall"]
    assert _n(proj) == n - by_rule["brick-wall"] + 1
    # Only one rule: the others' codings stay; re-applying restores the removed batch.
    redo = autocode(proj, rules=["brick-wall"])
    assert set(redo["rule"]) == {"brick-wall"} and redo["new"].sum() == by_rule["brick-wall"]
    assert _n(proj) == n + 1
    with pytest.raises(NotFoundError):
        autocode(proj, rules=["nope"])
    with pytest.raises(NotFoundError):
        remove_rule_codings(proj, "nope")


def test_rules_api_and_validation(proj):
    add_rule(proj, "Belonging", "team", phrases=["part of the team"], unit="sentence")
    with pytest.raises(SpRealistError, match="already exists"):
        add_rule(proj, "Belonging", "team", keywords=["team"])
    with pytest.raises(SpRealistError, match="give keywords, phrases or pattern"):
        add_rule(proj, "Belonging", "x")
    with pytest.raises(SpRealistError, match="Matcher pattern"):  # every part of a combined rule is checked
        add_rule(proj, "Belonging", "x", keywords=["a"], pattern=[{"NOT_AN_ATTR": "x"}])
    with pytest.raises(SpRealistError, match="Matcher pattern"):
        add_rule(proj, "Belonging", "y", pattern=[{"NOT_AN_ATTR": "x"}])
    with pytest.raises(SpRealistError, match="unit"):
        add_rule(proj, "Belonging", "z", keywords=["a"], unit="page")
    add_rule(proj, "Belonging", "desk", pattern=[{"LEMMA": "have"}, {"LOWER": "a"}, {"LOWER": "desk"}], unit="match")
    hits = autocode(proj, rules=["team", "desk"])
    assert hits.set_index("rule").loc["team", "matched"] == "part of the team"
    assert hits.set_index("rule").loc["desk", "matched"] == "Having a desk"
    frame = rules_frame(proj).set_index("name")
    assert frame.loc["desk", "codings"] == 1 and json.loads(frame.loc["team", "spec"]) == ["part of the team"]
    assert delete_rule(proj, "desk", codings=True) == 1
    assert "desk" not in set(rules_frame(proj)["name"])


def test_cli_autocode(runner, cli, project_path, tmp_path):
    from sp_realist.store import Project

    with Project.open(project_path) as p:
        (tmp_path / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        cb.import_codebook_yaml(p, tmp_path / "cb.yaml")
        add_corpus(p)
    base = ["-p", str(project_path)]
    r = runner.invoke(cli, ["autocode", "--dry-run", "--format", "json", *base])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    new = sum(h["new"] for h in hits)
    assert f"applying would add {new} coding(s)" in " ".join(r.stderr.split())
    r = runner.invoke(cli, ["autocode", *base])
    assert r.exit_code == 0 and r.stdout == "" and f"{new} new coding(s)" in " ".join(r.stderr.split())
    r = runner.invoke(cli, ["autocode", "--rule", "brick-wall", "--format", "csv", *base])
    assert r.exit_code == 0 and r.stdout.count("\n") == 3 and "False" in r.stdout  # header + 2 old hits
    r = runner.invoke(cli, ["autocode", "--remove-rule", "brick-wall", *base])
    assert r.exit_code == 0 and "Removed 2 coding(s)" in r.stderr
    r = runner.invoke(cli, ["autocode", "--remove-rule", "brick-wall", "--dry-run", *base])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["autocode", "--rule", "nope", *base])
    assert r.exit_code == 1 and "No rule named 'nope'" in r.stderr

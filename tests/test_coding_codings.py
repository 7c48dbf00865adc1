"""Manual codings: spans, segments, sections, regex matches with units; codings.yaml; CLI."""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from coding_helpers import CODEBOOK_YAML, DIARY_S1, INTERVIEW, add_corpus, corpus_project
from conftest import examples
from sp_realist import schema as S
from sp_realist.coding import codebook as cb
from sp_realist.coding.codings import (
    add_coding,
    export_codings_yaml,
    import_codings_yaml,
    list_codings,
    remove_codings,
)
from sp_realist.errors import SpRealistError
from sp_realist.store import Project

D1 = "S1 DK1 2019-05-14"


@pytest.fixture
def coded(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    add_corpus(project)
    return project


def _text(project, name):
    with project.connect() as conn:
        return conn.execute(select(S.sources.c.text).where(S.sources.c.name == name)).scalar_one()


def _n(project):
    with project.connect() as conn:
        return conn.execute(select(func.count()).select_from(S.codings)).scalar_one()


def test_span_segment_section(coded):
    text = _text(coded, D1)
    df = add_coding(coded, "Induction", D1, span="10:40", coder="RA")
    assert df.loc[0, ["start", "end", "new"]].tolist() == [10, 40, True]
    assert df.loc[0, "text"] == text[10:40]
    # Same again: nothing new.
    assert not add_coding(coded, "Induction", D1, span=(10, 40), coder="RA")["new"].any()
    assert _n(coded) == 1
    # Segment 1 is the body of "What?" (segment 0 is its heading); the coded span is trimmed.
    body = DIARY_S1["What?"]
    df = add_coding(coded, "Referral process", D1, segment=1, coder="RA")
    assert df.loc[0, "text"] == body  # the whole segment, trimmed of its line break
    df = add_coding(coded, "Referral process", D1, section="So what?", coder="RA")
    assert df.loc[0, "text"].strip() == DIARY_S1["So what?"]
    with pytest.raises(SpRealistError, match="outside the text"):
        add_coding(coded, "Induction", D1, span=(0, len(text) + 1), coder="RA")
    with pytest.raises(SpRealistError, match="exactly one"):
        add_coding(coded, "Induction", D1, span=(0, 2), segment=1, coder="RA")


def test_match_units(coded):
    text = _text(coded, D1)
    hits = [m.span() for m in re.finditer("refer", text, re.I)]
    df = add_coding(coded, "Referral process", D1, match="refer", coder="RA")
    assert list(zip(df["start"], df["end"])) == hits
    # Sentence unit: each hit's sentence (the sentencizer splits at ". ").
    sentences = {s.strip() for s in DIARY_S1["So what?"].split(". ")}
    df = add_coding(coded, "Missing referral forms", D1, match="refer", unit="sentence", coder="RA")
    got = {t.rstrip(".") for t in df["text"]}
    assert got == {s.rstrip(".") for s in sentences}
    # Section unit: the whole "So what?" body once, however many hits it has.
    df = add_coding(coded, "Induction", D1, match="refer", unit="section", coder="SM")
    assert df["text"].tolist() == [DIARY_S1["So what?"]]
    with pytest.raises(SpRealistError, match="does not occur"):
        add_coding(coded, "Induction", D1, match="zebra", coder="RA")
    with pytest.raises(SpRealistError, match="not a valid regular expression"):
        add_coding(coded, "Induction", D1, match="(", coder="RA")


def test_coder_from_environment(coded, monkeypatch):
    monkeypatch.setenv("SP_REALIST_CODER", "EnvCoder")
    df = add_coding(coded, "Induction", D1, span=(0, 4))
    assert df.loc[0, "coder"] == "EnvCoder"
    assert list_codings(coded)["coder"].tolist() == ["EnvCoder"]


def test_remove_and_list_filters(coded):
    add_coding(coded, "Induction", D1, span=(0, 4), coder="RA")
    add_coding(coded, "Induction", D1, span=(0, 4), coder="SM")
    add_coding(coded, "Missing referral forms", "Interview S1", span=(0, 11), coder="RA")
    assert len(list_codings(coded, code="Referral process", children=True)) == 1
    assert len(list_codings(coded, code="Referral process")) == 0
    assert len(list_codings(coded, coder="SM")) == 1
    with pytest.raises(SpRealistError, match="at least one"):
        remove_codings(coded)
    assert remove_codings(coded, code="Induction", coder="RA") == 1
    assert remove_codings(coded, origin="manual") == 2
    assert _n(coded) == 0


def test_import_codings_yaml(coded, tmp_path):
    text = _text(coded, D1)
    path = tmp_path / "codings.yaml"
    path.write_text(yaml.safe_dump({"codings": [
        {"source": D1, "code": "Referral process", "quote": "had to keep asking the receptionist for information",
         "coder": "RA"},
        {"source": D1, "code": "Induction", "quote": "ask the   practice\nmanager", "unit": "sentence"},
        {"source": D1, "code": "Belonging", "section": "Now what?", "memo": "team"},
        {"source": "Interview S1", "code": "Induction", "segment": 3, "coder": "SM"},
        {"source": "Interview S1", "code": "Induction", "span": [0, 12], "coder": "SM"},
    ]}), encoding="utf-8")
    stats = import_codings_yaml(coded, path, coder="DefaultCoder")
    assert stats == {"entries": 5, "added": 5, "skipped": 0}
    df = list_codings(coded)
    q = "had to keep asking the receptionist for information"
    row = df[df["code"] == "Referral process"].iloc[0]
    assert (row["start"], row["end"], row["coder"]) == (text.index(q), text.index(q) + len(q), "RA")
    ind = df[(df["code"] == "Induction") & (df["source"] == D1)].iloc[0]
    assert ind["text"] == "I will ask the practice manager for an induction." and ind["coder"] == "DefaultCoder"
    assert df[df["code"] == "Belonging"].iloc[0]["memo"] == "team"
    turn = INTERVIEW.split("\n\n")[3]  # Interviewer, S1 DK1, Interviewer, S2 DK1
    got = df[(df["source"] == "Interview S1") & (df["start"] > 0)].iloc[0]
    assert got["text"] == turn and got["coder"] == "SM"
    assert import_codings_yaml(coded, path, coder="DefaultCoder") == {"entries": 5, "added": 0, "skipped": 5}


def test_import_codings_errors_write_nothing(coded, tmp_path):
    bad = {
        "quote.yaml": [{"source": D1, "code": "Induction", "quote": "I wasn't told"},
                       {"source": D1, "code": "Induction", "quote": "never written"}],
        "code.yaml": [{"source": D1, "code": "Nope", "quote": "I wasn't told"}],
        "source.yaml": [{"source": "Nobody", "code": "Induction", "quote": "x"}],
        "twice.yaml": [{"source": D1, "code": "Induction", "quote": "refer"}],
    }
    for name, items in bad.items():
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"codings": items}), encoding="utf-8")
        with pytest.raises(SpRealistError):
            import_codings_yaml(coded, path, coder="RA")
        assert _n(coded) == 0, name


spans = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 60), st.sampled_from(["RA", "SM"]),
                           st.sampled_from(["Induction", "Belonging", "Missing referral forms"])),
                 min_size=1, max_size=12)


def test_codings_yaml_round_trip(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 10), deadline=None)
    @given(items=spans)
    def check(items):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        with corpus_project(new_location(), folder) as a:
            n = len(_text(a, D1))
            for start, length, coder, code in items:
                start = min(start, n - 1)
                add_coding(a, code, D1, span=(start, min(n, start + length)), coder=coder, memo=f"m{start}" if coder == "RA" else None)
            export_codings_yaml(a, folder / "codings.yaml")
            expected = list_codings(a).drop(columns=["id", "created_at"])
        with corpus_project(new_location(), folder) as b:
            import_codings_yaml(b, folder / "codings.yaml")
            got = list_codings(b).drop(columns=["id", "created_at"])
        assert got.to_dict("records") == expected.to_dict("records")

    check()


def test_cli_code(runner, cli, project_path, tmp_path):
    with Project.open(project_path) as p:
        (tmp_path / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        cb.import_codebook_yaml(p, tmp_path / "cb.yaml")
        add_corpus(p)
    base = ["-p", str(project_path)]
    r = runner.invoke(cli, ["code", "add", "Induction", "-s", D1, "--match", "induction", "--unit", "sentence",
                            "--coder", "RA", "--format", "json", *base])
    assert r.exit_code == 0, r.output
    rows = yaml.safe_load(r.stdout)
    assert [x["text"] for x in rows] == ["I will ask the practice manager for an induction."]
    r = runner.invoke(cli, ["code", "add", "Induction", "-s", D1, *base])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["code", "add", "Induction", "-s", D1, "--span", "x:y", *base])
    assert r.exit_code == 1 and "START:END" in r.stderr
    r = runner.invoke(cli, ["code", "add", "Belonging", "-s", "1", "--segment", "3", *base],
                      env={"SP_REALIST_CODER": "SM"})
    assert r.exit_code == 0
    r = runner.invoke(cli, ["code", "list", "--format", "csv", *base])
    lines = r.stdout.splitlines()
    assert lines[0] == "id,code,source,start,end,coder,origin,created_at,memo,text" and len(lines) == 3
    assert {line.split(",")[5] for line in lines[1:]} == {"RA", "SM"}
    out = tmp_path / "codings.yaml"
    r = runner.invoke(cli, ["code", "export", "-o", str(out), *base])
    assert r.exit_code == 0 and len(yaml.safe_load(out.read_text())["codings"]) == 2
    r = runner.invoke(cli, ["code", "remove", "--coder", "SM", *base])
    assert r.exit_code == 0 and "Removed 1" in r.stderr
    r = runner.invoke(cli, ["code", "import", str(out), *base])
    assert r.exit_code == 0 and "1 coding(s) added" in " ".join(r.stderr.split())
    xlsx = tmp_path / "codings.xlsx"
    r = runner.invoke(cli, ["code", "list", "--format", "xlsx", "-o", str(xlsx), *base])
    import pandas as pd

    assert r.exit_code == 0 and len(pd.read_excel(xlsx)) == 2


@functools.lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="ab .!?\n\"()'…;:-", max_size=80))
def test_sentence_bounds_equal_spacy_sentencizer(text):
    from sp_realist.coding.units import sentence_bounds

    nlp = _sentencizer()
    expected = [(s.start_char, s.end_char) for s in nlp(text).sents]
    assert sentence_bounds(nlp.make_doc(text)) == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 40)), min_size=1, max_size=10),
       st.sampled_from(["sentence", "segment"]))
def test_vectorised_expansion_contains_hits_and_matches_sentences(hits, unit):
    from coding_helpers import diary_draft
    from sp_realist.coding.units import SourceUnits

    draft = diary_draft("d", "S1 DK1", "S1", DIARY_S1)
    text = draft.text
    u = SourceUnits(text, [(s.start, s.end, s.section, s.kind) for s in draft.segments])
    ms = [min(a, len(text) - 1) for a, _ in hits]
    me = [min(len(text), a + n) for a, n in zip(ms, (n for _, n in hits))]
    us, ue = u.expand_many(ms, me, unit)
    nlp = _sentencizer()
    sents = [(x.start_char, x.end_char) for x in nlp(text).sents]
    segs = [(s.start, s.end) for s in draft.segments]

    def containing(spans, pos):
        return [sp for sp in spans if sp[0] <= pos < sp[1]][0]

    def reference(a, b):
        """The unit computed directly: sentence (or segment) of the first and last character, clipped, trimmed."""
        seg_a, seg_b = containing(segs, a), containing(segs, b - 1)
        if unit == "segment":
            lo, hi = seg_a[0], seg_b[1]
        else:
            sa = [sp for sp in sents if sp[0] <= a][-1]
            sb = [sp for sp in sents if sp[0] <= b - 1][-1]
            lo, hi = max(sa[0], seg_a[0]), min(sb[1], seg_b[1])
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        return min(lo, a), max(hi, b)

    for a, b, x, y in zip(ms, me, us, ue):
        assert (x, y) == reference(a, b)


def test_sentencizer_characters_are_punctuation():
    # sentence_bounds looks up the Sentencizer's characters among IS_PUNCT tokens only.
    import spacy
    from spacy.pipeline import Sentencizer

    vocab = spacy.blank("en").vocab
    assert all(vocab[c].is_punct for c in Sentencizer.default_punct_chars)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab. \n\t\u00a0\u2028\u3000", max_size=60), st.data())
def test_vectorised_trim_equals_trim(text, data):
    from sp_realist.coding.units import SourceUnits, trim

    cuts = sorted(set(data.draw(st.lists(st.integers(0, max(len(text) - 1, 0)), max_size=6)) + [0]))
    segs = [(a, b, None, "paragraph") for a, b in zip(cuts, cuts[1:] + [len(text)])]
    u = SourceUnits(text, segs)
    import numpy as np

    starts, ends, _ = u.pieces("segment")
    ts, te = u._trimmed("segment", np.arange(len(starts)))
    assert list(zip(ts.tolist(), te.tolist())) == [trim(text, int(a), int(b)) for a, b in zip(starts, ends)]


def test_space_codes_cover_all_unicode_white_space():
    import sys

    from sp_realist.coding.units import _space_codes

    assert set(_space_codes().tolist()) == {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="aB .!?\n\"()'", max_size=80))
@example("heavy (unclear?) but we coped. Then?")
@example("asked whether? no")
@example("Really?! yes. OK? Fine")
@example("?a")
def test_coding_sentences_join_only_after_a_mid_sentence_mark(text):
    """Coding sentences are the Sentencizer's, joined only where one ends in "?"/"!" (then closers)
    and the next starts in lower case."""
    from sp_realist.coding.units import _CLOSERS, sentences

    nlp = _sentencizer()
    spacy_bounds = [(s.start_char, s.end_char) for s in nlp(text).sents]
    ours = sentences(nlp.make_doc(text))
    starts = {a for a, _ in ours}
    assert starts <= {a for a, _ in spacy_bounds}
    if spacy_bounds:  # the same text is covered, first to last character
        assert ours[0][0] == spacy_bounds[0][0] and ours[-1][1] == spacy_bounds[-1][1]
    else:
        assert ours == []
    for (a0, b0), (a1, _b1) in zip(spacy_bounds, spacy_bounds[1:]):
        joined = a1 not in starts
        mark = text[a0:b0].rstrip().rstrip(_CLOSERS).endswith(("?", "!"))
        assert joined == (mark and text[a1].islower()), (text, a1)

"""Retrieval and matrices: excerpts with attribution and filters, frequencies, co-occurrence, framework."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from coding_helpers import CODEBOOK_YAML, INTERVIEW, add_corpus, corpus_project
from conftest import examples
from sp_realist import schema as S
from sp_realist.coding import codebook as cb
from sp_realist.coding.codings import add_coding, list_codings
from sp_realist.coding.retrieval import coded_excerpts, cooccurrence, framework_matrix, frequencies
from sp_realist.errors import SpRealistError

D1, D2, IV = "S1 DK1 2019-05-14", "S2 DK1 2019-07-02", "Interview S1"
CODES = ["Referral process", "Missing referral forms", "Induction", "Belonging"]


@pytest.fixture
def proj(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    add_corpus(project)
    return project


def _seed(p):
    """A small, varied set of manual codings."""
    s1 = INTERVIEW.index("S1 DK1:")
    s2 = INTERVIEW.index("S2 DK1:")
    spec = [
        ("Referral process", D1, (0, 40), "RA"), ("Missing referral forms", D1, (20, 60), "RA"),
        ("Induction", D1, (50, 90), "SM"), ("Belonging", D2, (0, 30), "RA"),
        ("Referral process", D2, (10, 50), "SM"), ("Referral process", IV, (s1, s1 + 30), "RA"),
        ("Induction", IV, (s2, s2 + 20), "RA"), ("Induction", IV, (0, 12), "RA"),
    ]
    for code, src, span, coder in spec:
        add_coding(p, code, src, span=span, coder=coder)
    return spec


def test_coded_excerpts_attribution_and_filters(proj):
    _seed(proj)
    df = coded_excerpts(proj, "Referral process")
    assert df["attribution"].tolist() == ["(S1 DK1)", "(S2 DK1)", "(S1 DK1)"]
    with proj.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
    assert all(texts[s][a:b] == t for s, a, b, t in zip(df["source"], df["start"], df["end"], df["text"]))
    # Children: the child code's excerpt joins.
    assert len(coded_excerpts(proj, "Referral process", children=True)) == 4
    # The interviewer's turn has no participant: attributed to the interviewer, qualified by the
    # source (the interview has no participant of its own, so by its site), never to an interviewee.
    ind = coded_excerpts(proj, "Induction")
    assert ind["attribution"].tolist() == ["(S1 DK1)", "(Interviewer, S1 interview)", "(S2 DK1)"]
    # Filters by site, wave, kind, coder, role; unknown attributes are a clear error.
    assert coded_excerpts(proj, "Referral process", filters={"site": "S2"})["source"].tolist() == [D2]
    assert coded_excerpts(proj, "Referral process", filters={"wave": ["2"]})["source"].tolist() == [D2, IV]
    assert coded_excerpts(proj, "Induction", filters={"kind": "interview"})["source"].tolist() == [IV, IV]
    assert coded_excerpts(proj, "Referral process", coder="SM")["source"].tolist() == [D2]
    assert len(coded_excerpts(proj, "Induction", filters={"role": "link worker"})) == 2
    with pytest.raises(SpRealistError, match="no attribute of that name"):
        coded_excerpts(proj, "Induction", filters={"colour": "red"})


def test_frequencies_match_a_direct_count(proj):
    spec = _seed(proj)
    f = frequencies(proj).set_index("code")
    counts = Counter(code for code, *_ in spec)
    assert f["codings"].to_dict() == {c: counts.get(c, 0) for c in CODES}
    assert f.loc["Referral process", "sources"] == 3
    site_of = {D1: "S1", D2: "S2", IV: "S1"}
    by = frequencies(proj, by="site").set_index("code")
    expected = Counter((code, site_of[src]) for code, src, _span, _c in spec)
    for code in CODES:
        for site in ("S1", "S2"):
            assert by.loc[code, site] == expected.get((code, site), 0)
        assert by.loc[code, "total"] == counts.get(code, 0)
    coders = frequencies(proj, by="coder", measure="sources").set_index("code")
    assert coders.loc["Referral process", "RA"] == 2 and coders.loc["Referral process", "SM"] == 1
    rolled = frequencies(proj, rollup=True).set_index("code")
    assert rolled.loc["Referral process", "codings"] == counts["Referral process"] + counts["Missing referral forms"]


def _brute_overlap(rows, codes):
    m = {(a, b): 0 for a in codes for b in codes}
    for r in rows:
        m[(r[0], r[0])] += 1
    for x, y in itertools.combinations(rows, 2):
        if x[0] != y[0] and x[1] == y[1] and x[2] < y[3] and y[2] < x[3]:
            m[(x[0], y[0])] += 1
            m[(y[0], x[0])] += 1
    return m


def _brute_segment(rows, segments, codes):
    m = {(a, b): 0 for a in codes for b in codes}
    for sid, s0, s1 in segments:
        if s0 == s1:
            continue
        present = {r[0] for r in rows if r[1] == sid and r[2] < s1 and r[3] > s0}
        for a in present:
            for b in present:
                m[(a, b)] += 1
    return m


def _matrix(df):
    return {(a, b): int(df.set_index("code").loc[a, b]) for a in df["code"] for b in df["code"]}


def test_cooccurrence_matches_brute_force(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 15), deadline=None)
    @given(items=st.lists(st.tuples(st.sampled_from(CODES), st.sampled_from([D1, IV]), st.integers(0, 250),
                                    st.integers(1, 80)), min_size=0, max_size=25))
    @example(items=[("Referral process", D1, 0, 1), ("Referral process", IV, 0, 1)])  # codings shorter than segments
    def check(items):
        with corpus_project(new_location(), Path(tempfile.mkdtemp(dir=tmp_path))) as p:
            with p.connect() as conn:
                texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
                ids = dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())
                segments = [tuple(r) for r in conn.execute(select(S.segments.c.source_id, S.segments.c.start,
                                                                  S.segments.c.end))]
            for i, (code, src, start, length) in enumerate(items):
                n = len(texts[src])
                start = min(start, n - 1)
                add_coding(p, code, src, span=(start, min(n, start + length)), coder=f"C{i % 3}")
            rows = [(r.code, ids[r.source], r.start, r.end) for r in list_codings(p).itertuples()]
            assert _matrix(cooccurrence(p, mode="overlap")) == _brute_overlap(rows, CODES)
            assert _matrix(cooccurrence(p, mode="segment")) == _brute_segment(rows, segments, CODES)

    check()


def test_cooccurrence_code_selection_and_filters(proj):
    _seed(proj)
    df = cooccurrence(proj, codes=["Referral process"], children=True)
    assert df["code"].tolist() == ["Referral process", "Missing referral forms"]
    assert df.set_index("code").loc["Referral process", "Missing referral forms"] == 1
    only_sm = cooccurrence(proj, filters={"coder": "SM"}).set_index("code")
    assert only_sm.loc["Induction", "Induction"] == 1 and only_sm.loc["Referral process", "Induction"] == 0


def test_framework_matrix_counts_and_excerpts(proj):
    spec = _seed(proj)
    fm = framework_matrix(proj, rows="participants").set_index("participant")
    ex = coded_excerpts(proj, CODES)
    expected = Counter(zip(ex["participant"].fillna("(none)"), ex["code"]))
    for person in fm.index:
        for code in CODES:
            assert fm.loc[person, code] == expected.get((person, code), 0)
    assert set(fm.index) == {"S1 DK1", "S2 DK1", "(none)"}
    sites = framework_matrix(proj, rows="sites").set_index("site")
    assert sites.loc["S1", "Induction"] == 3 and sites.loc["S2", "Belonging"] == 1
    cells = framework_matrix(proj, rows="sites", cells="excerpts").set_index("site")
    assert cells.loc["S2", "Belonging"] == f"{ex[ex['code'] == 'Belonging']['text'].iloc[0].strip()} [{D2}]"
    assert cells.loc["S1", "Induction"].count("\n") == 2
    assert spec


def test_cli_retrieval_and_matrices(runner, cli, project_path, tmp_path):
    from sp_realist.store import Project

    with Project.open(project_path) as p:
        (tmp_path / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        cb.import_codebook_yaml(p, tmp_path / "cb.yaml")
        add_corpus(p)
        _seed(p)
    base = ["-p", str(project_path)]
    r = runner.invoke(cli, ["retrieve", "Referral process", "--children", "--where", "site=S1", "-f", "json", *base])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["attribution"] for x in rows] == ["(S1 DK1)", "(S1 DK1)", "(S1 DK1)"]
    r = runner.invoke(cli, ["retrieve", "Referral process", "--where", "sitex", *base])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["retrieve", "Nope", *base])
    assert r.exit_code == 1 and "No code named" in r.stderr
    r = runner.invoke(cli, ["frequencies", "--by", "site", "-f", "csv", *base])
    assert r.stdout.splitlines()[0] == "code,S1,S2,total"
    out = tmp_path / "cooc.xlsx"
    r = runner.invoke(cli, ["cooccurrence", "--mode", "segment", "-f", "xlsx", "-o", str(out), *base])
    assert r.exit_code == 0
    assert pd.read_excel(out)["code"].tolist() == CODES
    r = runner.invoke(cli, ["cooccurrence", "-f", "xlsx", *base])
    assert r.exit_code == 1 and "--output" in r.stderr
    r = runner.invoke(cli, ["framework", "--rows", "sites", "--cells", "excerpts", "-f", "md", *base])
    assert r.exit_code == 0 and r.stdout.startswith("| site | Referral process |")

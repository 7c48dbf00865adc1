"""Inter-coder agreement: kappa (hand-worked and scikit-learn), Krippendorff's alpha, project agreement, CLI."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from coding_helpers import CODEBOOK_YAML, add_corpus, corpus_project
from conftest import examples
from sp_realist.coding import codebook as cb
from sp_realist.coding.agreement import agreement, cohen_kappa, krippendorff_alpha, percent_agreement
from sp_realist.coding.codings import add_coding
from sp_realist.coding.units import SourceUnits
from sp_realist.errors import CheckFailed, SpRealistError

D1, D2 = "S1 DK1 2019-05-14", "S2 DK1 2019-07-02"


def test_kappa_hand_worked_example():
    # 50 units: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    po = (20 + 15) / 50                                 # 0.70
    pe = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)  # 0.30 + 0.20 = 0.50
    assert math.isclose(cohen_kappa(a, b), (po - pe) / (1 - pe))
    assert math.isclose(cohen_kappa(a, b), 0.4)
    assert math.isclose(cohen_kappa(a, b), cohen_kappa_score(a, b))
    assert math.isclose(percent_agreement(np.array([a, b])), 70.0)
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=40))
def test_kappa_equals_scikit_learn(pairs):
    a, b = zip(*pairs)
    ours = cohen_kappa(a, b)
    if math.isnan(ours):
        assert len(set(a) | set(b)) == 1
    else:
        assert math.isclose(ours, cohen_kappa_score(a, b), abs_tol=1e-12)


def _alpha_by_hand(data):
    """Nominal alpha from the coincidence matrix (Krippendorff 2011, section C)."""
    data = np.asarray(data, dtype=float)
    values = sorted({v for v in data.flatten() if not np.isnan(v)})
    o = {(c, k): 0.0 for c in values for k in values}
    for u in range(data.shape[1]):
        col = [v for v in data[:, u] if not np.isnan(v)]
        m = len(col)
        if m < 2:
            continue
        for i, c in enumerate(col):
            for j, k in enumerate(col):
                if i != j:
                    o[(c, k)] += 1 / (m - 1)
    n_c = {c: sum(o[(c, k)] for k in values) for c in values}
    n = sum(n_c.values())
    d_o = sum(o[(c, k)] for c in values for k in values if c != k)
    d_e = sum(n_c[c] * n_c[k] for c in values for k in values if c != k) / (n - 1)
    return 1 - d_o / d_e


def test_alpha_literature_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units,
    # nominal data with missing values; alpha = 0.743.
    n = np.nan
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                     [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]])
    assert round(krippendorff_alpha(data), 3) == 0.743
    assert math.isclose(krippendorff_alpha(data), _alpha_by_hand(data))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4).flatmap(lambda k: st.lists(st.lists(st.integers(0, 1), min_size=k, max_size=k),
                                                    min_size=2, max_size=30)))
def test_alpha_matches_coincidence_matrix(columns):
    data = np.array(columns).T
    ours = krippendorff_alpha(data)
    if len(np.unique(data)) < 2:
        assert math.isnan(ours)
    else:
        assert math.isclose(ours, _alpha_by_hand(data), abs_tol=1e-9)


@pytest.fixture
def proj(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    add_corpus(project)
    return project


def _units(project, name, unit):
    from sp_realist.sources import resolve_source

    with project.connect() as conn:
        src = resolve_source(conn, name)
        u = SourceUnits.load(conn, src["id"])
    return u.units(unit), src["text"]


def test_project_agreement_per_code_and_overall(proj):
    sents1, t1 = _units(proj, D1, "sentence")
    sents2, t2 = _units(proj, D2, "sentence")
    # RA and SM code sentences of both diaries; decisions chosen per sentence.
    ra = {"Referral process": [(D1, 2), (D1, 3), (D2, 1)], "Induction": [(D1, 4)]}
    sm = {"Referral process": [(D1, 2), (D2, 1), (D2, 3)], "Induction": [(D1, 4), (D1, 5)]}
    units = {D1: sents1, D2: sents2}
    for coder, plan in (("RA", ra), ("SM", sm)):
        for code, where in plan.items():
            for src, k in where:
                a, b = units[src][k]
                add_coding(proj, code, src, span=(a + 1, b - 1), coder=coder)  # inside the sentence
    res = agreement(proj, ["RA", "SM"], unit="sentence")
    all_units = [(D1, k) for k in range(len(sents1))] + [(D2, k) for k in range(len(sents2))]
    summary = res.summary.set_index("code")
    pooled_a, pooled_b = [], []
    for code in ("Referral process", "Induction"):
        a = [int(u in ra[code]) for u in all_units]
        b = [int(u in sm[code]) for u in all_units]
        pooled_a += a
        pooled_b += b
        row = summary.loc[code]
        assert row["units"] == len(all_units)
        assert math.isclose(row["percent"], 100 * np.mean(np.array(a) == np.array(b)))
        assert math.isclose(row["kappa"], cohen_kappa_score(a, b))
        assert math.isclose(row["alpha"], _alpha_by_hand(np.array([a, b])))
    overall = summary.loc["(all codes)"]
    assert math.isclose(overall["kappa"], cohen_kappa_score(pooled_a, pooled_b))
    assert math.isclose(res.overall("alpha"), _alpha_by_hand(np.array([pooled_a, pooled_b])))
    # Disagreements: Referral on D1#3 (RA only), D2#3 (SM only); Induction on D1#5 (SM only).
    dis = res.disagreements
    assert sorted(zip(dis["code"], dis["text"])) == sorted([
        ("Referral process", t1[slice(*sents1[3])]), ("Referral process", t2[slice(*sents2[3])]),
        ("Induction", t1[slice(*sents1[5])])])
    assert dis.set_index("text").loc[t1[slice(*sents1[5])], ["RA", "SM"]].tolist() == [False, True]
    with pytest.raises(CheckFailed):
        res.check(0.99)
    res.check(0.0, "percent")
    # Segment units: the Driscoll bodies (headings excluded).
    seg = agreement(proj, ["RA", "SM"], unit="segment")
    assert seg.summary.set_index("code").loc["Induction", "units"] == 6


def test_three_coders_and_errors(proj):
    for coder in ("A", "B", "C"):
        add_coding(proj, "Induction", D1, match="induction", unit="sentence", coder=coder)
    add_coding(proj, "Belonging", D1, match="wasn't told", unit="sentence", coder="C")
    res = agreement(proj, ["A", "B", "C"])
    s = res.summary.set_index("code")
    assert math.isnan(s.loc["Induction", "kappa"])  # kappa is for two coders only
    assert s.loc["Induction", "percent"] == 100.0 and s.loc["Induction", "alpha"] == 1.0
    assert len(res.disagreements) == 1 and res.disagreements.iloc[0]["code"] == "Belonging"
    with pytest.raises(SpRealistError, match="at least two"):
        agreement(proj, ["A", "A"])
    with pytest.raises(SpRealistError, match="has no codings"):
        agreement(proj, ["A", "Z"])


def test_cli_agreement(runner, cli, project_path, tmp_path):
    from sp_realist.store import Project

    with Project.open(project_path) as p:
        (tmp_path / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        cb.import_codebook_yaml(p, tmp_path / "cb.yaml")
        add_corpus(p)
        add_coding(p, "Induction", D1, match="induction", unit="sentence", coder="RA")
        add_coding(p, "Induction", D1, match="induction", unit="sentence", coder="SM")
        add_coding(p, "Induction", D1, match="brick wall", unit="sentence", coder="SM")
    base = ["-p", str(project_path)]
    r = runner.invoke(cli, ["agreement", "--coders", "RA", "SM", "-f", "json", *base])
    assert r.exit_code == 0, r.output
    rows = {x["code"]: x for x in json.loads(r.stdout)}
    assert rows["Induction"]["agreed"] == rows["Induction"]["units"] - 1
    r = runner.invoke(cli, ["agreement", "--coders", "RA", "SM", "--min", "0.95", *base])
    assert r.exit_code == 3 and "below the minimum" in r.stderr and "Induction" in r.stdout
    r = runner.invoke(cli, ["agreement", "RA,SM", "--unit", "segment", "--disagreements", "-f", "csv", *base])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "code,source,start,end,text,RA,SM"
    r = runner.invoke(cli, ["agreement", "--coders", "RA", *base])
    assert r.exit_code == 1 and "at least two" in r.stderr


def test_agreement_matches_direct_computation(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 15), deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["RA", "SM"]), st.sampled_from(["Induction", "Belonging"]),
                              st.integers(0, 300), st.integers(1, 60)), min_size=2, max_size=14))
    def check(items):
        with corpus_project(new_location(), Path(tempfile.mkdtemp(dir=tmp_path))) as p:
            units, text = _units(p, D1, "sentence")
            spans = []
            for coder, code, start, length in items:
                start = min(start, len(text) - 1)
                span = (start, min(len(text), start + length))
                add_coding(p, code, D1, span=span, coder=coder)
                spans.append((coder, code, span))
            if {c for c, *_ in spans} != {"RA", "SM"}:
                with pytest.raises(SpRealistError):
                    agreement(p, ["RA", "SM"])
                return
            res = agreement(p, ["RA", "SM"], unit="sentence")
        codes = [c for c in ("Induction", "Belonging") if any(code == c for _, code, _ in spans)]

        def decision(coder, code, unit):
            return int(any(cd == coder and cc == code and s[0] < unit[1] and unit[0] < s[1] for cd, cc, s in spans))

        pooled = {"RA": [], "SM": []}
        summary = res.summary.set_index("code")
        for code in codes:
            a = [decision("RA", code, u) for u in units]
            b = [decision("SM", code, u) for u in units]
            pooled["RA"] += a
            pooled["SM"] += b
            assert math.isclose(summary.loc[code, "percent"], 100 * np.mean(np.array(a) == np.array(b)))
            expected_alpha = krippendorff_alpha(np.array([a, b]))
            got = summary.loc[code, "alpha"]
            assert (math.isnan(got) and math.isnan(expected_alpha)) or math.isclose(got, expected_alpha)
        k = summary.loc["(all codes)", "kappa"]
        ref = cohen_kappa(pooled["RA"], pooled["SM"])
        assert (math.isnan(k) and math.isnan(ref)) or math.isclose(k, ref)
        assert len(res.disagreements) == sum(
            decision("RA", code, u) != decision("SM", code, u) for code in codes for u in units)

    check()

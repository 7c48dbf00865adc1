"""Adjudication of two coders on a small case whose agreement before and after is computed by hand."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.cli import main
from sp_realist.coding.adjudication import adjudicate, adjudication
from sp_realist.coding.codebook import add_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.units import SourceUnits
from sp_realist.errors import SpRealistError
from sp_realist.ingest import ingest_paths

TEXT = "I booked her in. The form was missing. We phoned the surgery. Nobody answered.\n"


@pytest.fixture
def two_coders(project, tmp_path):
    """Four sentences; RA codes 1 and 2, RB codes 2 and 3 (sentence 4 nobody)."""
    f = tmp_path / "s1-dk1.txt"
    f.write_text(TEXT, encoding="utf-8")
    ingest_paths(project, [f], kind="diary", site="S1")
    add_code(project, "Workload")
    with project.connect() as conn:
        sentences = SourceUnits.load(conn, 1).units("sentence")
    assert len(sentences) == 4
    for coder, which in (("RA", (0, 1)), ("RB", (1, 2))):
        for i in which:
            a, b = sentences[i]
            add_coding(project, "Workload", 1, span=(a, b - 1), coder=coder)  # inside the sentence
    return project, sentences


def _codings(project):
    with project.connect() as conn:
        return conn.execute(select(S.codings.c.coder, S.codings.c.start, S.codings.c.end, S.codings.c.origin)
                            .order_by(S.codings.c.coder, S.codings.c.start)).all()


def test_agreement_before_and_after_by_hand(two_coders):
    project, sentences = two_coders
    before_codings = _codings(project)
    listing = adjudication(project, coders=["RA", "RB"])
    assert list(listing.units["unit_id"]) == [1, 2]
    assert [(u.start, u.end, u.coder_a, u.coder_b, u.decision) for u in listing.units.itertuples()] == [
        (*sentences[0], True, False, ""), (*sentences[2], False, True, "")]
    # RA = 1 1 0 0, RB = 0 1 1 0: agreed on 2 of 4 (50%); kappa (0.5 - 0.5) / (1 - 0.5) = 0;
    # alpha: coincidences o00 = o11 = o01 = o10 = 2, D_o = 4/8, D_e = 2*4*4/(8*7) = 4/7, alpha = 1 - 0.875
    row = listing.agreement.iloc[-1]
    assert row["code"] == "(all codes)" and row["units"] == 4 and row["decided"] == 0
    assert (row["percent_before"], row["kappa_before"]) == (50.0, 0.0)
    assert row["alpha_before"] == pytest.approx(0.125)
    assert (row["percent_after"], row["kappa_after"]) == (50.0, 0.0)  # nothing decided yet

    # unit 1 (RA only): take RA's decision -> after, RA = 1 1 0 0, RB = 1 1 1 0: 75%;
    # kappa: p_o = 0.75, p_e = 0.5*0.75 + 0.5*0.25 = 0.5 -> 0.5; alpha: o11 = 4, o00 = 2, o01 = o10 = 1,
    # D_o = 2/8, D_e = 2*5*3/(8*7) = 30/56 -> 1 - 0.25 * 56/30 = 0.5333
    result = adjudicate(project, coders=["RA", "RB"], decisions={1: "A"}, actor="Lead")
    row = result.agreement.iloc[-1]
    assert (row["decided"], row["percent_before"], row["percent_after"], row["kappa_after"]) == (1, 50.0, 75.0, 0.5)
    assert row["alpha_after"] == pytest.approx(1 - 0.25 * 56 / 30)
    assert list(result.units["decision"]) == ["A", ""]
    # consensus: the accepted unit and the unit both coded, each over the whole sentence
    consensus = [c for c in _codings(project) if c[0] == "consensus"]
    assert consensus == [("consensus", *sentences[0], "adjudicated:accept RA"),
                         ("consensus", *sentences[1], "adjudicated:agreed")]
    assert [c for c in _codings(project) if c[0] != "consensus"] == before_codings  # originals kept

    # unit 2 (RB only): not coded -> the two agree everywhere
    result = adjudicate(project, coders=["RA", "RB"], accept="none")
    row = result.agreement.iloc[-1]
    assert (row["decided"], row["percent_after"], row["kappa_after"], row["alpha_after"]) == (2, 100.0, 1.0, 1.0)
    assert len([c for c in _codings(project) if c[0] == "consensus"]) == 2  # a 'none' decision writes no coding
    with project.connect() as conn:
        decided = conn.execute(select(S.adjudications.c.decision, S.adjudications.c.coded,
                                      S.adjudications.c.decided_by).order_by(S.adjudications.c.id)).all()
    assert decided[0] == ("A", True, "Lead") and decided[1][:2] == ("none", False)


def test_refusals(two_coders):
    project, _ = two_coders
    adjudicate(project, coders=["RA", "RB"], decisions={2: "RB"})
    with pytest.raises(SpRealistError, match=r"unit 2 is already decided \(B\); its decision stands"):
        adjudicate(project, coders=["RA", "RB"], decisions={2: "none"})
    with pytest.raises(SpRealistError, match="no unit 9 among the 2 disagreeing units"):
        adjudicate(project, coders=["RA", "RB"], decisions={9: "A"})
    with pytest.raises(SpRealistError, match="decision 'maybe' is not A, B, both or none"):
        adjudicate(project, coders=["RA", "RB"], decisions={1: "maybe"})
    with pytest.raises(SpRealistError, match="name exactly two different coders"):
        adjudication(project, coders=["RA", "RA"])
    with pytest.raises(SpRealistError, match="'consensus' is the adjudicated coding"):
        adjudication(project, coders=["RA", "consensus"])


def test_command_lists_accepts_and_asks(runner, two_coders):
    project, sentences = two_coders
    p = str(project.location)
    r = runner.invoke(main, ["adjudicate", "--coders", "RA", "RB", "--format", "json", "--no-interactive", "-p", p])
    assert r.exit_code == 0, r.stderr
    assert [u["unit_id"] for u in json.loads(r.stdout)] == [1, 2]
    assert "before 50.0% (kappa 0.000, alpha 0.125), after 50.0%" in " ".join(r.stderr.split())
    r = runner.invoke(main, ["adjudicate", "--coders", "RA", "RB", "--unit-id", "1", "--accept", "both", "-p", p])
    assert r.exit_code == 0 and "Recorded 1 decision(s); 2 consensus coding(s) written." in r.stderr
    r = runner.invoke(main, ["adjudicate", "--coders", "RA", "RB", "--unit-id", "2", "-p", p])
    assert r.exit_code == 2 and "--unit-id needs --accept" in r.stderr
    # interactively: unit 2 (the only one left) -> none
    r = runner.invoke(main, ["adjudicate", "--coders", "RA", "RB", "--interactive", "--format", "csv", "-p", p],
                      input="none\n")
    assert r.exit_code == 0, r.stderr
    assert "coded by RB only" in r.stderr and "Recorded 1 decision(s)" in r.stderr
    assert "after 100.0% (kappa 1.000, alpha 1.000); 2 disagreeing unit(s) decided." in " ".join(r.stderr.split())
    r = runner.invoke(main, ["adjudicate", "--coders", "RA", "RB", "--agreement", "--format", "json", "-p", p])
    rows = json.loads(r.stdout)
    assert rows[-1]["code"] == "(all codes)" and rows[-1]["percent_after"] == 100.0
    r = runner.invoke(main, ["log", "--action", "adjudicate", "--format", "json", "-p", p])
    assert len(json.loads(r.stdout)) == 2
    assert "sp-realist adjudicate --coders RA RB --code Workload --accept RA" in \
        runner.invoke(main, ["adjudicate", "--help"]).stdout


def test_a_decision_on_words_a_correction_removes_is_kept_with_the_orphan(two_coders, tmp_path):
    """ingest --replace orphans the decided unit's excerpt: the decision goes with it and comes back on re-attach."""
    from sp_realist.reanchor import list_orphans, reattach_orphan

    project, sentences = two_coders
    adjudicate(project, coders=["RA", "RB"], decisions={1: "A"}, actor="Lead")
    corrected = tmp_path / "s1-dk1.txt"
    corrected.write_text(TEXT.replace("I booked her in. ", ""), encoding="utf-8")
    assert ingest_paths(project, [corrected], kind="diary", site="S1", replace=True).ok
    with project.connect() as conn:
        assert conn.execute(select(S.adjudications.c.id)).all() == []
    orphans = list_orphans(project)
    row = orphans[orphans["kind"] == "excerpt"].iloc[0]
    assert "1 adjudication decision(s)" in row["holds"]
    reattach_orphan(project, orphan_id=int(row["id"]), quote="The form was missing.")
    with project.connect() as conn:
        kept = conn.execute(select(S.adjudications.c.decision, S.adjudications.c.decided_by, S.excerpts.c.start)
                            .select_from(S.adjudications.join(S.excerpts))).all()
    assert kept == [("A", "Lead", 0)]

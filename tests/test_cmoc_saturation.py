"""Saturation per CMOC: the rule is judged on each CMOC's own evidence.

Small projects are built here, one diary entry per source; expectations are computed from what each test
builds (which sources hold a CMOC's evidence, in which order, and which of them refute it), never typed in.
"""

from __future__ import annotations

import json

import pytest

from sp_realist.cmoc import add_cmoc, add_theory, edit_cmoc, link_evidence, set_appraisal
from sp_realist.cmoc.saturation import (DEFAULT_RULE, claims_saturation, saturation_table, saturation_verdicts,
                                        set_saturation_rule)
from sp_realist.sources import Segment, SourceDraft, add_source

PARTS = {"context": "The surgery had not planned for us.",
         "mechanism_response": "I felt confused all week.",
         "outcome": "Clients were sent to the wrong place.",
         "refutation": "This time everything worked from the start."}
TEXT = " ".join(PARTS.values()) + "\n"
K = DEFAULT_RULE["no_refutation_in_last"]


def add_diary(project, name: str, participant: str, site: str, date: str | None) -> None:
    with project.begin() as conn:
        add_source(conn, SourceDraft(name=name, kind="diary", text=TEXT, checksum=name, date=date,
                                     segments=[Segment(0, len(TEXT), kind="paragraph")],
                                     participant_code=participant, attributes={"site": site}))


def support(project, cmoc: str, source: str, parts=("context", "mechanism_response", "outcome")) -> None:
    for part in parts:
        link_evidence(project, cmoc, {"source": source, "quote": PARTS[part]}, role="supports", component=part)


def refute(project, cmoc: str, source: str) -> None:
    link_evidence(project, cmoc, {"source": source, "quote": PARTS["refutation"]}, role="refutes",
                  component="outcome")


def cmoc(project, key: str, theory: str = "T1", status: str = "complete") -> None:
    add_cmoc(project, key, theory=theory, context="No plan for the link workers", mechanism_response="Confusion",
             outcome="Clients misdirected", status=status)


@pytest.fixture
def proj(project):
    add_theory(project, "T1", "Confusion in the referral process")
    add_theory(project, "T2", "Another theory")
    cmoc(project, "T1.1")
    cmoc(project, "T1.2")
    cmoc(project, "T2.1", theory="T2")
    return project


def verdicts(project, **kw) -> dict[str, object]:
    return {v.cmoc if v.level == "cmoc" else v.theory: v for v in saturation_verdicts(project, **kw)}


@pytest.mark.parametrize("refuted_at", range(5))
def test_refutation_inside_or_outside_the_cmocs_own_window(proj, refuted_at):
    """T1.1 has evidence in 5 sources, one of which refutes it; 6 later sources hold evidence for T2.1 only.
    The window is T1.1's own last K evidence sources, not the project's last K sources."""
    mine = [f"S1 DK{i} 2019-05-0{i}" for i in range(1, 6)]
    for i, name in enumerate(mine, 1):
        add_diary(proj, name, f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.1", name)
    refute(proj, "T1.1", mine[refuted_at])
    later = [f"S2 DK{i} 2019-06-1{i}" for i in range(6)]
    for i, name in enumerate(later):
        add_diary(proj, name, f"S2 DK{i}", "S2", f"2019-06-1{i}")
        support(proj, "T2.1", name)
    v = verdicts(proj)["T1.1"]
    assert v.evidence_sources == mine  # its own evidence sources, in ingest order
    assert v.refuted_in == [mine[refuted_at]]
    inside = mine[refuted_at] in mine[-K:]
    assert v.saturated is (not inside)
    if inside:
        assert v.reason == f"refuted in {mine[refuted_at]}, within the last {K} evidence sources"
    else:
        assert v.reason == f"meets the rule (refuted in {mine[refuted_at]}, before the last {K} evidence sources)"
    # The project's last K sources are T2.1's: under the old project-wide window no refutation of T1.1 counted.
    assert not set(later[-K:]) & set(v.evidence_sources)
    # With K = 0 any refutation counts.
    v0 = verdicts(proj, rule={"no_refutation_in_last": 0})["T1.1"]
    assert not v0.saturated and v0.reason == f"refuted in {mine[refuted_at]}"


def test_partial_cmoc_is_never_saturated(proj):
    for i in range(1, 4):
        add_diary(proj, f"d{i}", f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.2", f"d{i}")
    assert verdicts(proj)["T1.2"].saturated is True
    edit_cmoc(proj, "T1.2", status="partial")
    v = verdicts(proj)["T1.2"]
    assert (v.saturated, v.reason, v.status) == (False, "partial", "partial")


@pytest.mark.parametrize("missing", ["context", "mechanism", "outcome"])
def test_a_component_without_supporting_evidence_holds_saturation_back(proj, missing):
    names = {"context": "context", "mechanism": "mechanism_response", "outcome": "outcome"}
    parts = [p for part, p in names.items() if part != missing]
    for i in range(1, 5):
        add_diary(proj, f"d{i}", f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.1", f"d{i}", parts)
    v = verdicts(proj)["T1.1"]
    assert v.supporting == 4 * len(parts) and v.participants == 4
    assert v.components == {part: (0 if part == missing else 4) for part in names}
    assert (v.saturated, v.reason) == (False, f"no {missing} evidence")
    # A refuting excerpt about the missing part does not supply it.
    refute(proj, "T1.1", "d1")
    assert verdicts(proj)["T1.1"].components[missing] == 0


def test_thresholds_are_reported_as_counts(proj):
    add_diary(proj, "d1", "S1 DK1", "S1", "2019-05-01")
    support(proj, "T1.1", "d1")
    v = verdicts(proj, rule={"min_sites": 2})["T1.1"]
    assert not v.saturated
    assert v.reason == "1 of 2 participants; 1 of 2 sites"  # 3 supporting excerpts, 1 source: met
    assert verdicts(proj)["T1.2"].reason == "no supporting evidence"


def test_order_by_date_or_by_ingest(proj):
    """Ingest order d1..d5; the dates put d1 (the refuting entry) last."""
    dates = {"d1": "2019-09-30", "d2": "2019-05-02", "d3": "2019-05-03", "d4": "2019-05-04", "d5": "2019-05-05"}
    for i, (name, date) in enumerate(dates.items(), 1):
        add_diary(proj, name, f"S1 DK{i}", "S1", date)
        support(proj, "T1.1", name)
    refute(proj, "T1.1", "d1")
    by_ingest = verdicts(proj)["T1.1"]
    assert by_ingest.evidence_sources == list(dates)
    assert by_ingest.saturated is ("d1" not in list(dates)[-K:])
    set_saturation_rule(proj, order="date")
    by_date = verdicts(proj)["T1.1"]
    assert by_date.evidence_sources == sorted(dates, key=dates.get)
    assert by_date.saturated is ("d1" not in sorted(dates, key=dates.get)[-K:])
    assert by_ingest.saturated and not by_date.saturated  # the example is built to differ
    assert by_date.reason == f"refuted in d1, within the last {K} evidence sources"


def test_theory_saturated_only_when_all_its_cmocs_are(proj):
    for i in range(1, 4):
        add_diary(proj, f"d{i}", f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.1", f"d{i}")
        support(proj, "T2.1", f"d{i}")
    support(proj, "T1.2", "d1", ["context", "outcome"])
    v = verdicts(proj)
    cmocs = {"T1": ["T1.1", "T1.2"], "T2": ["T2.1"]}
    for theory, keys in cmocs.items():
        pending = [k for k in keys if not v[k].saturated]
        assert v[theory].saturated is (not pending)
        assert v[theory].unsaturated == pending
        assert v[theory].cmoc == f"{len(keys) - len(pending)}/{len(keys)} saturated"
    assert v["T1"].reason == "not saturated: T1.2 (" + v["T1.2"].reason + ")"
    assert v["T2"].reason == "every CMOC saturated"
    table = saturation_table(proj)  # theory rows after their CMOCs
    assert [(r.level, r.cmoc) for r in table.itertuples()][:3] == [("cmoc", "T1.1"), ("cmoc", "T1.2"),
                                                                    ("theory", "1/2 saturated")]
    assert list(saturation_table(proj, level="theory")["theory"]) == ["T1", "T2"]


NOTE_CLAIM = "Later entries added nothing new; saturated."


def test_a_note_claiming_saturation_is_flagged_when_the_evidence_says_otherwise(proj, runner, cli):
    for i in range(1, 4):
        add_diary(proj, f"d{i}", f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.1", f"d{i}")
        support(proj, "T2.1", f"d{i}")
    refute(proj, "T1.1", "d3")
    set_appraisal(proj, {"source": "d3", "quote": PARTS["refutation"]}, "RA", cmoc_judgement="refutes",
                  cmoc="T1.1", saturation_note=NOTE_CLAIM)
    set_appraisal(proj, {"source": "d3", "quote": PARTS["outcome"]}, "RA", cmoc_judgement="supports",
                  cmoc="T2.1", saturation_note=NOTE_CLAIM)
    v = verdicts(proj)
    assert not v["T1.1"].saturated and v["T2.1"].saturated
    excerpt = v["T1.1"].notes[0].excerpt_id
    assert v["T1.1"].flag == (f"T1.1: the step-6 note by RA on d3 (excerpt {excerpt}) claims saturation, but it is "
                              f"not saturated ({v['T1.1'].reason})")
    assert v["T2.1"].flag == ""  # the claim holds
    r = runner.invoke(cli, ["saturation", "--format", "json", "-p", proj.location])
    assert r.exit_code == 0, r.output
    rows = {x["cmoc"]: x for x in json.loads(r.stdout)}
    assert rows["T1.1"]["flag"] == v["T1.1"].flag and rows["T2.1"]["flag"] == ""
    assert " ".join(r.stderr.split()) == f"Flagged: {v['T1.1'].flag}."  # (the console wraps long lines)
    # ... and in the report's saturation appendix.
    from sp_realist.report.model import build_report_model

    table = build_report_model(proj).appendices.saturation
    row = dict(zip(table.columns, next(r for r in table.rows if r[0] == "T1.1")))
    assert row["Saturated"] == "no" and row["Reason"] == v["T1.1"].reason
    assert f"Flagged: {v['T1.1'].flag}." in row["Saturation notes"]
    other = dict(zip(table.columns, next(r for r in table.rows if r[0] == "T2.1")))
    assert "Flagged" not in other["Saturation notes"]


def test_a_theory_note_claiming_saturation_is_flagged_while_a_cmoc_is_open(proj):
    for i in range(1, 4):
        add_diary(proj, f"d{i}", f"S1 DK{i}", "S1", f"2019-05-0{i}")
        support(proj, "T1.1", f"d{i}")
    set_appraisal(proj, {"source": "d1", "quote": PARTS["context"]}, "RB", theory="T1",
                  saturation_note="Theory 1 is saturated.")
    v = verdicts(proj)
    assert v["T1.1"].saturated and not v["T1.2"].saturated and not v["T1"].saturated
    assert v["T1"].flag.startswith("T1: the step-6 note by RB on d1 (excerpt ")
    assert v["T1"].flag.endswith(f"claims saturation, but it is not saturated ({v['T1'].reason})")
    assert v["T1.1"].flag == "" and v["T1.1"].notes == []  # a note on the theory is not a note on its CMOCs
    support(proj, "T1.2", "d1")
    support(proj, "T1.2", "d2")
    v = verdicts(proj)
    assert v["T1"].saturated and v["T1"].flag == ""


@pytest.mark.parametrize("note, claims", [
    ("the later entries added no new context, mechanism or outcome elements", True),
    ("Nothing new in the last three entries.", True),
    ("Saturated after the November entries.", True),
    ("saturation was reached in March", True),
    ("not yet saturated: one keeper only", False),
    ("Saturation not reached; waiting for site 2.", False),
    ("4 supporting excerpts from S1 DK1 and S3 DK1; S3 DK1's entry of 14 October refutes the outcome.", False),
    ("", False),
])
def test_which_notes_claim_saturation(note, claims):
    assert claims_saturation(note) is claims

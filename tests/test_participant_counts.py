"""Participant counts never credit an unmapped speaker's turn to the interviewee.

The interview of tests/test_attribution.py (participant S2 PM1, site S2): the
Interviewer, the interviewee "S2 PM1" (mapped) and "Carer" (mapped to no
participant), plus a diary entry of S1 DK1 with no speaker.  The rule
(sp_realist.attribution): a mapped speaker's turn is that participant's, an
unmapped speaker's turn is nobody's, a section with no speaker is the
source's participant's.  Every expectation below is computed from that rule.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.attribution import ParticipantAttributor, span_participants
from sp_realist.cmoc import add_cmoc, add_theory, link_evidence
from sp_realist.cmoc.saturation import saturation_table
from sp_realist.cmoc.suggest import suggest_cmocs
from sp_realist.coding.codebook import add_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.retrieval import coded_excerpts, framework_matrix, frequencies
from sp_realist.report.model import ReportSettings, build_report_model
from sp_realist.sources import (
    Segment,
    SourceDraft,
    add_source,
    span_attributions,
)

IV = "s2-pm1 interview"
DIARY = "S1 DK1 2019-05-14"
TURNS = [
    ("Interviewer", "Interviewer: How do referrals reach the link worker at the practice?\n\n"),
    ("S2 PM1", "S2 PM1: Reception books them in. The referral form is short and the doctors like it.\n\n"),
    ("Carer", "Carer: Can I add that my mother waited weeks for her referral to be seen?\n\n"),
    ("Interviewer", "Interviewer: And what happened with the referral after that?\n\n"),
    ("S2 PM1", "S2 PM1: We chased the referral ourselves and the link worker phoned her the same week.\n"),
]
MAPPED = {"S2 PM1"}
SOURCE_PARTICIPANT = {IV: "S2 PM1", DIARY: "S1 DK1"}
SITE = {IV: "S2", DIARY: "S1"}


def who(speaker: str | None, source: str) -> str | None:
    """The rule: a mapped speaker; nobody for an unmapped speaker; no speaker -> the source's participant."""
    if speaker is None:
        return SOURCE_PARTICIPANT[source]
    return speaker if speaker in MAPPED else None


@pytest.fixture
def proj(project):
    text = "".join(t for _s, t in TURNS)
    segs, pos = [], 0
    for speaker, turn in TURNS:
        segs.append(Segment(pos, pos + len(turn), kind="turn", speaker=speaker,
                            participant_code=speaker if speaker in MAPPED else None))
        pos += len(turn)
    diary = "The referral process felt like a brick wall.\n"
    with project.begin() as conn:
        add_source(conn, SourceDraft(name=DIARY, kind="diary", text=diary, checksum=DIARY, participant_code="S1 DK1",
                                     segments=[Segment(0, len(diary), kind="section", section="So what?")],
                                     attributes={"site": "S1"}))
        add_source(conn, SourceDraft(name=IV, kind="interview", text=text, segments=segs, checksum=IV,
                                     participant_code="S2 PM1", attributes={"site": "S2"}))
    return project


def units(project) -> list[tuple[str, str | None, int, int]]:
    """(source, speaker, start, end) of each turn's speech and of the diary entry, in order."""
    out = []
    with project.connect() as conn:
        for name in (DIARY, IV):
            text = conn.execute(select(S.sources.c.text).where(S.sources.c.name == name)).scalar_one()
            rows = conn.execute(select(S.segments.c.speaker, S.segments.c.start, S.segments.c.end)
                                .select_from(S.segments.join(S.sources, S.sources.c.id == S.segments.c.source_id))
                                .where(S.sources.c.name == name).order_by(S.segments.c.ord)).all()
            for speaker, a, b in rows:
                start = a + (len(speaker) + 2 if speaker else 0)
                out.append((name, speaker, start, a + len(text[a:b].rstrip())))
    return out


def _ids(project) -> dict[str, int]:
    with project.connect() as conn:
        return dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())


def _distinct(items) -> int:
    return len({who(sp, src) for src, sp, _a, _b in items} - {None})


# --- the rule ------------------------------------------------------------------------
def test_participant_rule(proj):
    ids = _ids(proj)
    us = units(proj)
    spans = [(ids[src], a) for src, _sp, a, _b in us]
    with proj.connect() as conn:
        got = span_participants(conn, spans)
        labels = span_attributions(conn, spans)
        attributor = ParticipantAttributor(conn)
    assert [got[s] for s in spans] == [who(sp, src) for src, sp, _a, _b in us]
    assert attributor.participant_codes([s for s, _ in spans], [a for _, a in spans]) == [got[s] for s in spans]
    for (src, sp, _a, _b), span in zip(us, spans):
        if got[span] is not None:  # a participant is always also the quote's attribution
            assert labels[span] == got[span]
        else:
            assert labels[span].startswith(f"{sp}, ")


# --- retrieval: frequencies and the framework matrix ---------------------------------------
def _code(project, code: str, items) -> None:
    add_code(project, code)
    for src, _sp, a, b in items:
        add_coding(project, code, src, span=(a, b), coder="RA")


def _coded(proj):
    us = units(proj)
    plan = {
        "Everything": us,
        "Questions": [u for u in us if u[1] in ("Interviewer", "Carer")],  # only unmapped speakers
        "Answers": [u for u in us if u[1] == "S2 PM1"],
        "Interview": [u for u in us if u[0] == IV],
    }
    for code, items in plan.items():
        _code(proj, code, items)
    return plan


def test_coded_excerpts_participant_column(proj):
    plan = _coded(proj)
    df = coded_excerpts(proj, "Everything")
    assert df["start"].tolist() == [a for _src, _sp, a, _b in plan["Everything"]]
    got = [None if pd.isna(v) else v for v in df["participant"].tolist()]
    assert got == [who(sp, src) for src, sp, _a, _b in plan["Everything"]]
    # The site stays the source's (an interviewer's turn still happened at S2).
    assert df["site"].tolist() == [SITE[src] for src, _sp, _a, _b in plan["Everything"]]


def test_frequencies_by_participants(proj):
    plan = _coded(proj)
    freq = frequencies(proj).set_index("code")
    for code, items in plan.items():
        assert freq.loc[code, "participants"] == _distinct(items), code
        assert freq.loc[code, "codings"] == len(items), code
    assert freq.loc["Questions", "participants"] == 0  # never the interviewee
    by_site = frequencies(proj, by="site", measure="participants").set_index("code")
    for code, items in plan.items():
        for site in ("S1", "S2"):
            expected = _distinct([u for u in items if SITE[u[0]] == site])
            assert by_site.loc[code].get(site, 0) == expected, (code, site)
        assert by_site.loc[code, "total"] == _distinct(items)


def test_framework_by_participants(proj):
    plan = _coded(proj)
    fw = framework_matrix(proj, rows="participants").set_index("participant")
    expected_rows = {who(sp, src) or "(none)" for src, sp, _a, _b in plan["Everything"]}
    assert set(fw.index) == expected_rows
    for code, items in plan.items():
        for row in expected_rows:
            n = sum(1 for src, sp, _a, _b in items if (who(sp, src) or "(none)") == row)
            assert fw.loc[row, code] == n, (code, row)
    # The interviewee's row holds only the interviewee's own turns.
    assert fw.loc["S2 PM1", "Questions"] == 0


# --- saturation, the report's saturation appendix ---------------------------------------
def _cmocs(proj):
    us = units(proj)
    add_theory(proj, "T1", "Referral routes")
    plan = {
        "T1.1": ([u for u in us if u[1] in ("Interviewer", "Carer")], []),
        "T1.2": ([u for u in us if u[0] == IV], [u for u in us if u[0] == DIARY]),
        "T1.3": (us, []),
    }
    for key, (supports, refutes) in plan.items():
        add_cmoc(proj, key, theory="T1", context=f"Context {key}", outcome="Referrals arrive")
        for role, items in (("supports", supports), ("refutes", refutes)):
            for src, _sp, a, b in items:
                link_evidence(proj, key, {"source": src, "span": [a, b]}, role=role, analyst="RA")
    return plan


def test_saturation_participant_counts(proj):
    plan = _cmocs(proj)
    sat = saturation_table(proj, level="both").set_index("cmoc")
    for key, (supports, refutes) in plan.items():
        assert sat.loc[key, "participants"] == _distinct(supports), key
        assert sat.loc[key, "supporting"] == len(supports)
        assert sat.loc[key, "refuting"] == len(refutes)
        assert sat.loc[key, "sources"] == len({u[0] for u in supports})
        assert sat.loc[key, "sites"] == len({SITE[u[0]] for u in supports})
    assert sat.loc["T1.1", "participants"] == 0
    theory = sat[sat["level"] == "theory"].iloc[0]
    assert theory["participants"] == _distinct([u for s, _r in plan.values() for u in s])


def test_report_saturation_agrees(proj):
    """The report's saturation table takes 'sp-realist saturation''s verdicts (no second count of its own)."""
    _cmocs(proj)
    model = build_report_model(proj, ReportSettings())
    table = model.appendices.saturation
    rows = {r[0]: dict(zip(table.columns, r)) for r in table.rows}
    for r in saturation_table(proj, level="cmoc").to_dict(orient="records"):
        row = rows[r["cmoc"]]
        for col, key in (("Participants", "participants"), ("Supporting excerpts", "supporting"),
                         ("Refuting excerpts", "refuting"), ("Sources", "sources"), ("Sites", "sites")):
            assert row[col] == str(r[key]), (r["cmoc"], col)
    assert rows["T1.1"]["Participants"] == "0"


# --- suggest ---------------------------------------------------------------------------
def test_suggest_participants_and_ranking(proj):
    us = units(proj)
    turns = [u for u in us if u[0] == IV]
    unmapped = [u for u in turns if u[1] in ("Interviewer", "Carer")][:2]
    answers = [u for u in turns if u[1] == "S2 PM1"]
    # "A ..." is alphabetically first: it would lead on a tie if its unmapped turns counted for S2 PM1.
    plan = {"A short form": unmapped, "B chasing": answers, "C diary": answers[:1] + [u for u in us if u[0] == DIARY]}
    for label, items in plan.items():
        for part in ("C", "M", "O"):
            _code(proj, f"{part}: {label}", items)
    df = suggest_cmocs(proj)
    got = {r["context"]: r for r in df.to_dict(orient="records") if r["context"] == r["mechanism"] == r["outcome"]}
    expected = {label: (len(items), _distinct(items), len({u[0] for u in items})) for label, items in plan.items()}
    for label, (support, people, sources) in expected.items():
        assert (got[label]["support"], got[label]["participants"], got[label]["sources"]) == (support, people, sources)
    assert got["A short form"]["participants"] == 0
    # Ranked by support, then participants, then sources, then context: B (2 units, S2 PM1) before A
    # (2 units, nobody), though A's name comes first.
    mine = [r["context"] for r in df.to_dict(orient="records") if r["context"] == r["mechanism"] == r["outcome"]]
    ranked = sorted(plan, key=lambda k: (-expected[k][0], -expected[k][1], -expected[k][2], k.casefold()))
    assert mine == ranked
    assert mine.index("B chasing") < mine.index("A short form")

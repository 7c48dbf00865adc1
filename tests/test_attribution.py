"""Attribution of quotes, codings and evidence; interviewer turns in autocoding and theme quotes.

One interview (participant S2 PM1, site S2) has three voices: the Interviewer,
the interviewee "S2 PM1" (mapped to the participant) and "Carer", a speaker
who maps to no participant.  Every expectation is computed from the turns.
"""

from __future__ import annotations

import re

import pytest
import yaml
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.cmoc import add_cmoc, add_theory, cmoc_evidence, link_evidence
from sp_realist.cmoc.appraisal import list_appraisals, set_appraisal
from sp_realist.coding import codebook as cb
from sp_realist.coding.autocode import add_rule, autocode, parse_rule, rules_frame
from sp_realist.coding.codebook import add_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.retrieval import coded_excerpts
from sp_realist.coding.themes import add_theme, theme_table
from sp_realist.errors import SpRealistError
from sp_realist.report.model import ReportSettings, build_report_model
from sp_realist.sources import (DEFAULT_INTERVIEWER_SPEAKERS, INTERVIEWER_SETTING, Segment, SourceDraft, add_source,
                                attribution_map, interviewer_spans, is_interviewer_label, span_attributions)

IV = "s2-pm1 interview"
DIARY = "S1 DK1 2019-05-14"
SITE_ONLY = "s3 focus group"
TURNS = [
    ("Interviewer", "Interviewer: How do referrals reach the link worker at the practice?\n\n"),
    ("S2 PM1", "S2 PM1: Reception books them in. The referral form is short and the doctors like it.\n\n"),
    ("Carer", "Carer: Can I add that my mother waited weeks for her referral to be seen?\n\n"),
    ("Interviewer", "Interviewer: And what happened with the referral after that?\n\n"),
    ("S2 PM1", "S2 PM1: We chased the referral ourselves and the link worker phoned her the same week.\n"),
]
MAPPED = {"S2 PM1"}
EXPECTED_WHO = {  # speaker -> attribution, from the rule
    "S2 PM1": "S2 PM1",
    "Interviewer": "Interviewer, S2 PM1 interview",
    "Carer": "Carer, S2 PM1 interview",
}


def _interview() -> SourceDraft:
    text = "".join(t for _s, t in TURNS)
    segs, pos = [], 0
    for speaker, turn in TURNS:
        segs.append(Segment(pos, pos + len(turn), kind="turn", speaker=speaker,
                            participant_code=speaker if speaker in MAPPED else None))
        pos += len(turn)
    return SourceDraft(name=IV, kind="interview", text=text, segments=segs, checksum=IV,
                       participant_code="S2 PM1", attributes={"site": "S2"})


def _diary() -> SourceDraft:
    text = "The referral process felt like a brick wall.\n"
    return SourceDraft(name=DIARY, kind="diary", text=text, segments=[Segment(0, len(text), kind="section",
                                                                              section="So what?")],
                       checksum=DIARY, participant_code="S1 DK1", attributes={"site": "S1"})


def _focus_group() -> SourceDraft:
    """No participant of its own, only a site: its facilitator is named by the site."""
    a = "Facilitator: What about the referral forms?\n\n"
    b = "S3 RO2: The referral forms went missing.\n"
    segs = [Segment(0, len(a), kind="turn", speaker="Facilitator"),
            Segment(len(a), len(a) + len(b), kind="turn", speaker="S3 RO2", participant_code="S3 RO2")]
    return SourceDraft(name=SITE_ONLY, kind="focus_group", text=a + b, segments=segs, checksum=SITE_ONLY,
                       attributes={"site": "S3"})


def _turn_spans(project, name=IV) -> list[tuple[str, int, int, str]]:
    """(speaker, start, end, text) of each turn's speech (after the "Speaker: " label)."""
    with project.connect() as conn:
        text = conn.execute(select(S.sources.c.text).where(S.sources.c.name == name)).scalar_one()
        rows = conn.execute(select(S.segments.c.speaker, S.segments.c.start, S.segments.c.end)
                            .select_from(S.segments.join(S.sources, S.sources.c.id == S.segments.c.source_id))
                            .where(S.sources.c.name == name).order_by(S.segments.c.ord)).all()
    out = []
    for speaker, a, b in rows:
        start = a + len(speaker) + 2
        end = a + len(text[a:b].rstrip())
        out.append((speaker, start, end, text[start:end]))
    return out


@pytest.fixture
def proj(project):
    with project.begin() as conn:
        for draft in (_diary(), _interview(), _focus_group()):
            add_source(conn, draft)
    return project


def _ids(project) -> dict[str, int]:
    with project.connect() as conn:
        return dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())


# --- the rule ---------------------------------------------------------------------
def test_span_attributions_rule(proj):
    ids = _ids(proj)
    turns = _turn_spans(proj)
    spans = [(ids[IV], start) for _sp, start, _e, _t in turns]
    with proj.connect() as conn:
        who = span_attributions(conn, spans + [(ids[DIARY], 3)])
        base = attribution_map(conn)
        asked = interviewer_spans(conn, spans)
    for (speaker, start, _e, _t), span in zip(turns, spans):
        assert who[span] == EXPECTED_WHO[speaker]
        if speaker not in MAPPED:  # never the interviewee's bare code
            assert who[span] != base[ids[IV]]
        assert (span in asked) == (speaker == "Interviewer")
    # No speaker: the source's participant (attribution_map).
    assert who[(ids[DIARY], 3)] == base[ids[DIARY]] == "S1 DK1"
    # A facilitator in a source with only a site is named by the site and the kind of source.
    fg = _turn_spans(proj, SITE_ONLY)
    with proj.connect() as conn:
        fwho = span_attributions(conn, [(ids[SITE_ONLY], s) for _sp, s, _e, _t in fg])
    assert [fwho[(ids[SITE_ONLY], s)] for _sp, s, _e, _t in fg] == ["Facilitator, S3 focus group", "S3 RO2"]
    with proj.connect() as conn:
        assert span_attributions(conn, []) == {}


def test_bulk_and_single_lookups_agree_at_every_position(proj):
    from sp_realist.sources import SpanAttributor

    with proj.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.id, S.sources.c.text)).all())
        who = SpanAttributor(conn)
        spans = [(sid, i) for sid, t in texts.items() for i in range(len(t) + 1)] + [(999, 0)]
        bulk = who.many([s for s, _ in spans], [i for _, i in spans])
        assert bulk == [who(s, i) for s, i in spans]
        assert span_attributions(conn, spans) == dict(zip(spans, bulk))


def test_many_with_participants_agrees_with_the_single_lookups(proj):
    """The numpy form (the theme table's) gives, at every position of every source, in shuffled order, and
    for a source that does not exist, what many(), participant_id() and is_interviewer() give one by one."""
    import random

    from sp_realist.attribution import ParticipantAttributor

    with proj.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.id, S.sources.c.text)).all())
        who = ParticipantAttributor(conn)
        spans = [(sid, i) for sid, t in texts.items() for i in range(len(t) + 1)] + [(999, 0)]
        random.Random(14).shuffle(spans)
        codes, names, pids, asked = who.many_with_participants([s for s, _ in spans], [i for _, i in spans])
        assert [names[k] for k in codes] == who.many([s for s, _ in spans], [i for _, i in spans])
        assert [None if p < 0 else int(p) for p in pids] == [who.participant_id(s, i) for s, i in spans]
        assert asked.tolist() == [who.is_interviewer(s, i) for s, i in spans]
        assert {names[k] for k, a in zip(codes, asked) if a} == {"Interviewer, S2 PM1 interview",
                                                                 "Facilitator, S3 focus group"}
        assert len(names) == len(set(names))
        empty = who.many_with_participants([], [])
        assert (len(empty[0]), empty[1], len(empty[2]), len(empty[3])) == (0, [], 0, 0)


def test_interviewer_labels():
    names = DEFAULT_INTERVIEWER_SPEAKERS
    for label in ("Interviewer", "interviewer", "INTERVIEWER 2", "Interviewer (RA)", "Facilitator", "moderator",
                  "Researcher"):
        assert is_interviewer_label(label, names), label
    for label in ("Carer", "S2 PM1", "Interviewee", "Researchers", "", None):
        assert not is_interviewer_label(label, names), label


# --- retrieval, CMOC evidence, appraisals, report -------------------------------------
def _code_every_turn(project, code="Referral process"):
    add_code(project, code)
    for _speaker, start, end, _text in _turn_spans(project):
        add_coding(project, code, IV, span=(start, end), coder="RA")


def test_retrieval_attributions(proj):
    _code_every_turn(proj)
    df = coded_excerpts(proj, "Referral process")
    turns = _turn_spans(proj)
    assert df["start"].tolist() == [s for _sp, s, _e, _t in turns]
    assert df["attribution"].tolist() == [f"({EXPECTED_WHO[sp]})" for sp, _s, _e, _t in turns]
    assert df["text"].tolist() == [t for _sp, _s, _e, t in turns]


def test_cmoc_evidence_and_appraisal_attributions(proj):
    turns = _turn_spans(proj)
    add_cmoc(proj, "C1", context="A short referral form", outcome="Referrals arrive")
    for _speaker, start, end, _text in turns:
        link_evidence(proj, "C1", {"source": IV, "span": [start, end]}, analyst="RA")
        set_appraisal(proj, {"source": IV, "span": [start, end]}, "RA", relevance="relevant")
    ev = cmoc_evidence(proj, "C1")
    assert ev["attribution"].tolist() == [EXPECTED_WHO[sp] for sp, _s, _e, _t in turns]
    ap = list_appraisals(proj)
    assert ap["attribution"].tolist() == [EXPECTED_WHO[sp] for sp, _s, _e, _t in turns]


def test_report_quotes(proj):
    turns = _turn_spans(proj)
    _code_every_turn(proj)
    add_theme(proj, "Referrals", codes=["Referral process"], phase="named")
    add_theory(proj, "T1", "Referral routes")
    add_cmoc(proj, "T1.1", theory="T1", context="A short referral form", outcome="Referrals arrive")
    for _speaker, start, end, _text in turns:
        link_evidence(proj, "T1.1", {"source": IV, "span": [start, end]}, analyst="RA")
    model = build_report_model(proj, ReportSettings(quotes_per_theme=len(turns), quotes_per_cmoc=len(turns)))
    by_start = {s: sp for sp, s, _e, _t in turns}
    # Theme quotes: every turn but the interviewer's, each with its speaker's attribution.
    theme = next(t for t in model.themes if t.name == "Referrals")
    assert sorted(q.start for q in theme.quotes) == sorted(s for sp, s, _e, _t in turns if sp != "Interviewer")
    for q in theme.quotes:
        assert q.attribution == EXPECTED_WHO[by_start[q.start]]
    # CMOC evidence may quote the interviewer, attributed to the interviewer.
    evidence = model.theories[0].evidence
    assert sorted(q.start for q in evidence) == sorted(by_start)
    for q in evidence:
        assert q.attribution == EXPECTED_WHO[by_start[q.start]]
    # The coding library's theme table agrees.
    table = theme_table(proj, quotes_per_theme=len(turns)).set_index("theme")
    quotes = table.loc["Referrals", "quotes"]
    assert sorted(q["start"] for q in quotes) == sorted(s for sp, s, _e, _t in turns if sp != "Interviewer")
    assert {q["attribution"] for q in quotes} == {f"({EXPECTED_WHO[sp]})" for sp in ("S2 PM1", "Carer")}
    # The interviewer's turns count as codings, not as a participant.
    assert table.loc["Referrals", "codings"] == len(turns)
    assert table.loc["Referrals", "participants"] == 2


# --- autocoding ------------------------------------------------------------------
def _expected_hits(project, word: str, speakers=None, name=IV) -> list[tuple[int, int]]:
    """Match spans of ``word`` in the turns of ``speakers`` (all when None)."""
    out = []
    for speaker, start, end, text in _turn_spans(project, name):
        if speakers is None or speaker in speakers:
            out += [(start + m.start(), start + m.end()) for m in re.finditer(rf"\b{word}\b", text, re.I)]
    return sorted(out)


def _hits(df, rule: str, source=IV) -> list[tuple[int, int]]:
    sub = df[(df["rule"] == rule) & (df["source"] == source)]
    return sorted(zip(sub["match_start"].tolist(), sub["match_end"].tolist()))


def test_autocode_skips_interviewer_turns_by_default(proj):
    add_code(proj, "Referral process")
    add_rule(proj, "Referral process", "referral", keywords=["referral", "referrals"], unit="segment")
    every = _expected_hits(proj, "referrals?")
    spoken = _expected_hits(proj, "referrals?", {"S2 PM1", "Carer"})
    assert len(spoken) < len(every)
    assert _hits(autocode(proj, dry_run=True), "referral") == spoken
    assert _hits(autocode(proj, dry_run=True, include_interviewer=True), "referral") == every
    # The focus group's facilitator is skipped too.
    assert _hits(autocode(proj, dry_run=True), "referral", SITE_ONLY) == _expected_hits(
        proj, "referral", {"S3 RO2"}, SITE_ONLY)
    # Applying writes only the spoken turns' codings.
    autocode(proj)
    with proj.connect() as conn:
        starts = [r[0] for r in conn.execute(select(S.codings.c.start).where(
            S.codings.c.source_id == _ids(proj)[IV]))]
    asked = [(s, e) for sp, s, e, _t in _turn_spans(proj) if sp == "Interviewer"]
    assert starts and not any(a <= s < b for s in starts for a, b in asked)
    # The project setting decides who is an interviewer.
    proj.set_setting(INTERVIEWER_SETTING, ["Carer"])
    assert _hits(autocode(proj, dry_run=True), "referral") == _expected_hits(proj, "referrals?",
                                                                             {"S2 PM1", "Interviewer"})


def test_rule_speakers_and_exclude_speakers(proj):
    add_code(proj, "Referral process")
    add_rule(proj, "Referral process", "carer-only", keywords=["referral"], speakers=["carer"])
    add_rule(proj, "Referral process", "by-code", keywords=["referral"], speakers=["S2 PM1"])
    add_rule(proj, "Referral process", "not-pm", keywords=["referral"], exclude_speakers=["S2 PM1"])
    add_rule(proj, "Referral process", "ask", keywords=["referral"], speakers=["Interviewer"])
    hits = autocode(proj, dry_run=True)
    assert _hits(hits, "carer-only") == _expected_hits(proj, "referral", {"Carer"})
    assert _hits(hits, "by-code") == _expected_hits(proj, "referral", {"S2 PM1"})
    assert _hits(hits, "not-pm") == _expected_hits(proj, "referral", {"Carer"})  # interviewer still skipped
    assert _hits(hits, "ask") == _expected_hits(proj, "referral", {"Interviewer"})  # named explicitly
    # A rule restricted to speakers never codes a source without speaker turns.
    assert _hits(hits, "carer-only", DIARY) == []
    assert _hits(hits, "not-pm", DIARY) == _expected_hits_text(proj, DIARY, "referral")
    with_iv = autocode(proj, dry_run=True, include_interviewer=True)
    assert _hits(with_iv, "not-pm") == _expected_hits(proj, "referral", {"Carer", "Interviewer"})
    frame = rules_frame(proj).set_index("name")
    assert frame.loc["carer-only", "speakers"] == "carer" and frame.loc["not-pm", "exclude_speakers"] == "S2 PM1"
    assert frame.loc["carer-only", "spec"] == '["referral"]'


def _expected_hits_text(project, name, word) -> list[tuple[int, int]]:
    with project.connect() as conn:
        text = conn.execute(select(S.sources.c.text).where(S.sources.c.name == name)).scalar_one()
    return sorted((m.start(), m.end()) for m in re.finditer(rf"\b{word}\b", text, re.I))


CODEBOOK = """\
codes:
  - name: Referral process
    rules:
      - name: spoken
        keywords: [referral]
        unit: sentence
        speakers: [S2 PM1, Carer]
      - name: not-asked
        phrases: [link worker]
        unit: segment
        exclude_speakers: Interviewer
      - name: plain
        pattern: [{LOWER: referral}]
        unit: match
"""


def test_codebook_yaml_round_trip_of_speaker_keys(proj, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    cb.import_codebook_yaml(proj, path)
    exported = cb.codebook_dict(proj)
    rules = {r["name"]: r for r in exported["codes"][0]["rules"]}
    assert rules["spoken"]["speakers"] == ["S2 PM1", "Carer"]
    assert rules["not-asked"]["exclude_speakers"] == ["Interviewer"]
    assert "speakers" not in rules["plain"] and "exclude_speakers" not in rules["plain"]
    source = yaml.safe_load(CODEBOOK)["codes"][0]["rules"]
    for r in source:
        assert rules[r["name"]]["unit"] == r["unit"]
    # Export -> import -> export is stable, and the imported rules behave as written.
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(exported, sort_keys=False), encoding="utf-8")
    cb.import_codebook_yaml(proj, again)
    assert cb.codebook_dict(proj) == exported
    hits = autocode(proj, dry_run=True)
    assert _hits(hits, "spoken") == _expected_hits(proj, "referral", {"S2 PM1", "Carer"})
    assert _hits(hits, "not-asked") == _expected_hits(proj, "link worker", {"S2 PM1", "Carer"})
    assert _hits(hits, "plain") == _expected_hits(proj, "referral", {"S2 PM1", "Carer"})


@pytest.mark.parametrize("extra, message", [
    ({"speakers": []}, "speakers must be a non-empty list"),
    ({"speakers": [{"a": 1}]}, "speakers must be a non-empty list"),
    ({"exclude_speakers": [True]}, "exclude_speakers must be a non-empty list"),
    ({"speakers": ["Carer"], "exclude_speakers": ["carer"]}, "both speakers and exclude_speakers"),
    ({"speaker": ["Carer"]}, "unknown key"),
])
def test_rule_speaker_keys_are_validated(extra, message):
    with pytest.raises(SpRealistError, match=message):
        parse_rule({"name": "r", "keywords": ["referral"], **extra})


def test_codebook_import_refuses_bad_speakers_and_writes_nothing(proj, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(CODEBOOK.replace("speakers: [S2 PM1, Carer]", "speakers: {S2 PM1: yes}"), encoding="utf-8")
    with pytest.raises(SpRealistError, match="speakers must be a non-empty list"):
        cb.import_codebook_yaml(proj, path)
    with proj.connect() as conn:
        assert conn.execute(select(S.code_rules.c.id)).first() is None


def test_bad_interviewer_setting_is_a_clear_error(proj):
    add_code(proj, "Referral process")
    add_rule(proj, "Referral process", "referral", keywords=["referral"])
    proj.set_setting(INTERVIEWER_SETTING, {"Interviewer": True})
    with pytest.raises(SpRealistError, match="interviewer_speakers"):
        autocode(proj, dry_run=True)


def test_cli_include_interviewer(proj, runner, cli, project_path):
    add_code(proj, "Referral process")
    add_rule(proj, "Referral process", "referral", keywords=["referral", "referrals"])
    every = len(_expected_hits(proj, "referrals?")) + len(_expected_hits_text(proj, DIARY, "referral")) \
        + len(_expected_hits_text(proj, SITE_ONLY, "referral"))
    asked = len(_expected_hits(proj, "referrals?", {"Interviewer"})) \
        + len(_expected_hits(proj, "referral", {"Facilitator"}, SITE_ONLY))
    assert asked
    proj.close()
    base = ["autocode", "--dry-run", "--project", str(project_path), "--format", "csv"]
    default = runner.invoke(cli, base)
    opted = runner.invoke(cli, base + ["--include-interviewer"])
    assert default.exit_code == 0 and opted.exit_code == 0, default.output + opted.output
    rows = lambda out: [line for line in out.stdout.splitlines()[1:] if line.startswith("referral,")]  # noqa: E731
    assert len(rows(opted)) == every
    assert len(rows(default)) == every - asked

"""Six-step appraisal, analysis files and saturation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import insert, select

from sp_realist import schema as S
from sp_realist.cmoc import import_theories_yaml, link_evidence
from sp_realist.cmoc.analysisfile import export_analysis_yaml, import_analysis_yaml
from sp_realist.cmoc.appraisal import (appraisal_history, appraisal_queue, appraisal_summary, concept_box,
                                       list_appraisals, set_appraisal, show_appraisal)
from sp_realist.cmoc.saturation import (get_saturation_rule, plot_saturation_curve, saturation_curve,
                                        saturation_table, set_saturation_rule)
from sp_realist.errors import NotFoundError, SpRealistError
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project, now

THEORIES = Path(__file__).parent / "data" / "cmoc" / "mind_cymru_theories.yaml"

DIARY = ("What?\nI wasn't told what clients I was seeing and when.\n"
         "So what?\nI had to keep asking the receptionist for information.\n")
INTERVIEW = ("Interviewer: How was the start?\n"
             "P1: We felt the front door was in the wrong place.\n"
             "P2: The paperwork was not agreed before we started.\n")


def diary(conn, name, participant, site, date, text=DIARY):
    segs, pos = [], 0
    for line in text.splitlines(keepends=True):
        kind = "heading" if line.strip().endswith("?") and len(line) < 12 else "paragraph"
        segs.append(Segment(pos, pos + len(line), kind=kind, section=None if kind == "heading" else "x"))
        pos += len(line)
    return add_source(conn, SourceDraft(name=name, kind="diary", text=text, checksum=name, date=date,
                                        segments=segs, participant_code=participant, attributes={"site": site}))


def interview(conn, name, site, date):
    segs, pos = [], 0
    for line in INTERVIEW.splitlines(keepends=True):
        who = line.split(":")[0]
        segs.append(Segment(pos, pos + len(line), kind="turn", speaker=who,
                            participant_code=None if who == "Interviewer" else f"{site} {who}"))
        pos += len(line)
    return add_source(conn, SourceDraft(name=name, kind="interview", text=INTERVIEW, checksum=name, date=date,
                                        segments=segs, attributes={"site": site}))


@pytest.fixture
def study(project):
    with project.begin() as conn:
        diary(conn, "d1", "S1 DK1", "S1", "2019-05-14")
        diary(conn, "d2", "S1 DK2", "S1", "2019-05-20")
        interview(conn, "i1", "S2", "2019-06-01")
        diary(conn, "d3", "S3 DK1", "S3", "2019-04-01")  # ingested last, dated first
    import_theories_yaml(project, THEORIES)
    return project


def test_appraisal_edit_keeps_history(study):
    ref = {"source": "d1", "quote": "I wasn't told what clients I was seeing"}
    r = set_appraisal(study, ref, "RA", relevance="concept_box")
    assert r["status"] == "created"
    r2 = set_appraisal(study, ref, "RA", relevance="relevant", trust="high", trust_rationale="first-hand",
                       interpretation="context", cmoc_judgement="supports", cmoc="T1.1", theory="T1",
                       theory_change="no", saturation_note="third diary saying this")
    assert r2["status"] == "updated" and r2["excerpt_id"] == r["excerpt_id"]
    assert set_appraisal(study, r["excerpt_id"], "RA", trust="high")["status"] == "unchanged"
    set_appraisal(study, r["excerpt_id"], "RA", trust="moderate")
    set_appraisal(study, r["excerpt_id"], "JB", relevance="not_relevant")
    h = appraisal_history(study, ref, analyst="RA")
    assert list(h["version"]) == [1, 2, 3]
    assert list(h["relevance"]) == ["concept_box", "relevant", "relevant"]
    assert [None if pd.isna(v) else v for v in h["trust"]] == [None, "high", "moderate"]
    assert list(h["current"]) == [False, False, True]
    assert h["cmoc"].iloc[1] == "T1.1" and [bool(v) for v in h["theory_change"].tolist()[1:]] == [False, False]
    assert h["replaced_at"].iloc[0] == h["valid_from"].iloc[1]
    shown = show_appraisal(study, ref)
    assert list(shown["analyst"]) == ["JB", "RA"]
    assert shown["text"].iloc[0] == "I wasn't told what clients I was seeing"
    assert shown["attribution"].iloc[0] == "S1 DK1"
    with study.connect() as conn:
        assert len(conn.execute(select(S.appraisal_history)).all()) == 2


def test_appraisal_validation(study):
    ref = {"source": "d1", "segment": 1}
    with pytest.raises(SpRealistError, match="needs the CMOC"):
        set_appraisal(study, ref, "RA", cmoc_judgement="supports")
    with pytest.raises(SpRealistError, match="relevance 'maybe'"):
        set_appraisal(study, ref, "RA", relevance="maybe")
    with pytest.raises(NotFoundError):
        set_appraisal(study, ref, "RA", cmoc="T7.7", cmoc_judgement="supports")
    with pytest.raises(SpRealistError, match="unknown appraisal field"):
        set_appraisal(study, ref, "RA", colour="red")
    with study.connect() as conn:
        assert conn.execute(select(S.appraisals)).all() == []
        # The failed calls rolled back the excerpts they located.
        assert conn.execute(select(S.excerpts)).all() == []


def test_queue_and_concept_box(study):
    with study.connect() as conn:
        segs = conn.execute(select(S.segments).where(S.segments.c.kind != "heading")).all()
    q = appraisal_queue(study, unit="segment")
    assert len(q) == len(segs) == 3 * 2 + 3
    # Coded spans join the queue.
    with study.begin() as conn:
        cid = conn.execute(insert(S.codes).values(name="Referral process", ord=0, created_at=now())).inserted_primary_key[0]
        sid = conn.execute(select(S.sources.c.id).where(S.sources.c.name == "d1")).scalar_one()
        start = DIARY.index("I wasn't")
        conn.execute(insert(S.codings).values(code_id=cid, source_id=sid, start=start, end=start + 13, coder="RA",
                                              origin="manual", created_at=now()))
        coding_id = conn.execute(select(S.codings.c.id)).scalar_one()
    q = appraisal_queue(study)
    assert len(q) == 10 and (q["unit"] == "coding").sum() == 1
    assert q[q["unit"] == "coding"]["text"].iloc[0] == "I wasn't told"
    set_appraisal(study, {"coding": coding_id}, "RA", relevance="concept_box")
    set_appraisal(study, {"source": "d2", "segment": 1}, "JB", relevance="relevant", interpretation="unclear")
    # The coded span lies inside d1's first paragraph: both count as appraised.
    assert len(appraisal_queue(study)) == 7
    assert len(appraisal_queue(study, analyst="RA")) == 8
    assert len(appraisal_queue(study, analyst="JB")) == 9
    assert list(appraisal_queue(study, source="i1")["source"].unique()) == ["i1"]
    assert len(appraisal_queue(study, limit=2)) == 2
    box = concept_box(study)
    assert set(box["analyst"]) == {"RA", "JB"}
    assert len(concept_box(study, analyst="RA")) == 1
    summary = appraisal_summary(study).set_index(["step", "value"])
    assert summary.loc[("total", "appraisals"), "appraisals"] == 2
    assert summary.loc[("1 relevance", "concept_box"), "appraisals"] == 1
    assert summary.loc[("3 interpretation", "unclear"), "appraisals"] == 1
    assert len(list_appraisals(study, relevance="relevant")) == 1


def analysis_doc():
    return {"analyst": "RA", "excerpts": [
        {"source": "d1", "quote": "I wasn't told what clients I was seeing",
         "appraisal": {"relevance": "relevant", "trust": "high", "interpretation": "context",
                       "cmoc_judgement": "supports", "cmoc": "T1.1", "theory": "T1", "theory_change": False},
         "evidence": [{"cmoc": "T1.1", "role": "supports", "component": "context"}]},
        {"source": "d2", "section": "x", "analyst": "JB",
         "appraisal": {"relevance": "concept_box"},
         "evidence": [{"cmoc": "T1.2", "role": "refutes"}]},
        {"source": "i1", "quote": "The paperwork was not agreed", "evidence": [{"cmoc": "T1.3"}]},
    ]}


def test_analysis_file_import_export_round_trip(place, study, tmp_path):
    f = tmp_path / "analysis.yaml"
    f.write_text(yaml.safe_dump(analysis_doc()))
    counts = import_analysis_yaml(study, f)
    assert counts == {"excerpts": 3, "appraisals_created": 2, "appraisals_updated": 0, "evidence": 3}
    assert import_analysis_yaml(study, f)["appraisals_created"] == 0  # idempotent
    text = export_analysis_yaml(study, tmp_path / "out.yaml")
    back = yaml.safe_load(text)
    assert [e["source"] for e in back["excerpts"]] == ["d1", "d2", "i1"]
    assert back["excerpts"][0]["appraisal"]["cmoc"] == "T1.1"
    assert back["excerpts"][1]["evidence"] == [{"cmoc": "T1.2", "role": "refutes", "analyst": "JB"}]
    # Into a fresh project with the same sources: identical export.
    fresh = Project.create(place("fresh"))
    with fresh.begin() as conn:
        diary(conn, "d1", "S1 DK1", "S1", "2019-05-14")
        diary(conn, "d2", "S1 DK2", "S1", "2019-05-20")
        interview(conn, "i1", "S2", "2019-06-01")
    import_theories_yaml(fresh, THEORIES)
    import_analysis_yaml(fresh, tmp_path / "out.yaml")
    assert export_analysis_yaml(fresh) == text


def test_bad_analysis_file_writes_nothing(study, tmp_path):
    doc = analysis_doc()
    doc["excerpts"][2]["evidence"] = [{"cmoc": "T9.9"}]
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(NotFoundError, match="T9.9"):
        import_analysis_yaml(study, f)
    with study.connect() as conn:
        assert conn.execute(select(S.appraisals)).all() == [] and conn.execute(select(S.cmoc_evidence)).all() == []
    doc["excerpts"][0]["quote"] = "words that are not there"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpRealistError, match="not in the text"):
        import_analysis_yaml(study, f)
    f.write_text(yaml.safe_dump({"excerpts": [{"source": "d1", "segment": 1, "appraisal": {"trust": "high"}}]}))
    with pytest.raises(SpRealistError, match="needs an analyst"):
        import_analysis_yaml(study, f)


def link(project, cmoc, source, quote, role="supports", component=None):
    link_evidence(project, cmoc, {"source": source, "quote": quote}, role=role, component=component)


def test_saturation_counts_by_hand(study):
    # T1.1: 3 supporting excerpts: d1 (S1 DK1), d2 twice (S1 DK2) -> 2 participants, 2 sources, 1 site.
    link(study, "T1.1", "d1", "I wasn't told", component="context")
    link(study, "T1.1", "d2", "I wasn't told", component="mechanism_response")
    link(study, "T1.1", "d2", "keep asking the receptionist", component="outcome")
    # T1.3: supported by P1 and P2 in the S2 interview, and by d3 (S3); refuted in d1.
    link(study, "T1.3", "i1", "front door", component="context")
    link(study, "T1.3", "i1", "paperwork was not agreed", component="mechanism_response")
    link(study, "T1.3", "d3", "for information", component="outcome")
    link(study, "T1.3", "d1", "for information", role="refutes")
    df = saturation_table(study, level="cmoc").set_index("cmoc")
    assert df.loc["T1.1", ["supporting", "refuting", "participants", "sources", "sites"]].tolist() == [3, 0, 2, 2, 1]
    assert bool(df.loc["T1.1", "saturated"]) is True and df.loc["T1.1", "reason"] == "meets the rule"
    assert df.loc["T1.3", ["supporting", "refuting", "participants", "sources", "sites"]].tolist() == [3, 1, 3, 2, 2]
    # T1.3's evidence sources in ingest order: d1, i1, d3; d1 is among its last 3 (the CMOC's own window).
    assert bool(df.loc["T1.3", "saturated"]) is False
    assert df.loc["T1.3", "reason"] == "refuted in d1, within the last 3 evidence sources"
    # With a window of 2, d1 falls outside it...
    df2 = saturation_table(study, level="cmoc", rule={"no_refutation_in_last": 2}).set_index("cmoc")
    assert bool(df2.loc["T1.3", "saturated"]) is True
    assert df2.loc["T1.3", "reason"] == "meets the rule (refuted in d1, before the last 2 evidence sources)"
    # ...but with "no refutation at all" it is not.
    df0 = saturation_table(study, level="cmoc", rule={"no_refutation_in_last": 0}).set_index("cmoc")
    assert bool(df0.loc["T1.3", "saturated"]) is False and df0.loc["T1.3", "reason"] == "refuted in d1"
    # By date (d3 2019-04-01, d1 2019-05-14, i1 2019-06-01), d1 is among T1.3's last 2 evidence sources.
    set_saturation_rule(study, order="date", min_sites=2, no_refutation_in_last=2)
    assert get_saturation_rule(study)["min_sites"] == 2
    df = saturation_table(study).set_index(["level", "cmoc"])
    assert df.loc[("cmoc", "T1.3"), "reason"] == "refuted in d1, within the last 2 evidence sources"
    assert df.loc[("cmoc", "T1.1"), "reason"] == "1 of 2 sites"
    assert df.loc[("cmoc", "T1.2"), "supporting"] == 0
    assert df.loc[("cmoc", "T1.2"), "reason"] == "no supporting evidence"
    t1 = saturation_table(study, theory="T1", level="theory").iloc[0]
    assert (t1["supporting"], t1["refuting"], t1["participants"], t1["sources"], t1["sites"]) == (6, 1, 5, 4, 3)
    assert t1["cmoc"] == "0/3 saturated" and not t1["saturated"]
    assert t1["reason"].startswith("not saturated: T1.1 (1 of 2 sites); T1.2 (no supporting evidence); T1.3 (")
    with pytest.raises(SpRealistError, match="unknown setting"):
        set_saturation_rule(study, min_quotes=2)


def test_saturation_curve(study, tmp_path):
    link(study, "T1.1", "d1", "I wasn't told")
    link(study, "T1.1", "d2", "I wasn't told")
    link(study, "T1.3", "d2", "keep asking")
    link(study, "T2.1", "d3", "for information")
    c = saturation_curve(study)
    assert list(c["source"]) == ["d1", "d2", "i1", "d3"]
    assert list(c["new_cmocs"]) == [1, 1, 0, 1] and list(c["cumulative_evidence"]) == [1, 3, 3, 4]
    assert c["cmocs"].iloc[1] == "T1.3"
    by_date = saturation_curve(study, order="date")
    assert list(by_date["source"]) == ["d3", "d1", "d2", "i1"] and list(by_date["new_cmocs"]) == [1, 1, 1, 0]
    png = plot_saturation_curve(study, str(tmp_path / "curve.png"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_appraise_analysis_saturation(runner, cli, study, tmp_path):
    p = ["-p", study.location]
    r = runner.invoke(cli, ["appraise", "set", "--source", "d1", "--quote", "I wasn't told", "--relevance",
                            "relevant", "--interpretation", "context", "--judgement", "supports", "--cmoc", "T1.1",
                            "--link", "--analyst", "RA", *p])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["appraise", "set", "--source", "d1", "--quote", "I wasn't told", "--trust", "low",
                            "--analyst", "RA", *p])
    assert r.exit_code == 0 and "updated" in r.stderr
    r = runner.invoke(cli, ["appraise", "history", "--source", "d1", "--quote", "I wasn't told", "--format", "json", *p])
    assert [v["trust"] for v in json.loads(r.stdout)] == [None, "low"]
    r = runner.invoke(cli, ["appraise", "queue", "--format", "csv", "--limit", "3", *p])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 4
    r = runner.invoke(cli, ["appraise", "show", "--source", "d1", "--quote", "I wasn't told", "--format", "json", *p])
    assert json.loads(r.stdout)[0]["cmoc"] == "T1.1"
    r = runner.invoke(cli, ["appraise", "set", "--source", "d1", "--quote", "I wasn't told", "--relevance", "maybe", *p])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["saturation", "--format", "json", *p])
    rows = json.loads(r.stdout)
    assert next(x for x in rows if x["cmoc"] == "T1.1")["supporting"] == 1  # linked by --link
    r = runner.invoke(cli, ["saturation", "rule", "--min-supporting", "1", "--min-participants", "1", *p])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["saturation", "--level", "cmoc", "--theory", "T1", "--format", "json", *p])
    t11 = next(x for x in json.loads(r.stdout) if x["cmoc"] == "T1.1")
    # counts are met, but --link gave the excerpt the step-3 interpretation (context) as its component only
    assert t11["saturated"] is False and t11["reason"] == "no mechanism or outcome evidence"
    r = runner.invoke(cli, ["saturation", "curve", "--format", "csv", *p])
    assert r.exit_code == 0 and r.stdout.startswith("position,source")
    f = tmp_path / "a.yaml"
    f.write_text(yaml.safe_dump(analysis_doc()))
    r = runner.invoke(cli, ["analysis", "import", str(f), *p])
    assert r.exit_code == 0 and "3 evidence" in r.stderr
    r = runner.invoke(cli, ["analysis", "export", *p])
    assert r.exit_code == 0 and yaml.safe_load(r.stdout)["excerpts"]
    r = runner.invoke(cli, ["appraise", "summary", "--format", "json", *p])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["appraisals"] == 3


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

spans = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)).map(lambda t: (t[0], t[0] + t[1])), max_size=12)


@settings(max_examples=200, deadline=None)
@given(spans=spans, probe=st.tuples(st.integers(0, 70), st.integers(1, 15)))
def test_queue_overlap_index_matches_brute_force(spans, probe):
    from sp_realist.cmoc.appraisal import _overlaps, _span_index

    start, end = probe[0], probe[0] + probe[1]
    index = _span_index({1: spans})
    assert _overlaps(index, 1, start, end) == any(a < end and b > start for a, b in spans)
    assert not _overlaps(index, 2, start, end)


def test_deleting_a_cmoc_keeps_the_appraisals_history(study):
    from sp_realist.cmoc import delete_cmoc, list_cmocs

    ref = {"source": "d1", "quote": "I wasn't told"}
    set_appraisal(study, ref, "RA", relevance="relevant", cmoc_judgement="supports", cmoc="T1.1", link=True)
    delete_cmoc(study, "T1.1", actor="RA")
    assert "T1.1" not in set(list_cmocs(study)["key"])
    h = appraisal_history(study, ref)
    assert list(h["cmoc"].fillna("")) == ["T1.1", ""]
    assert h["note"].iloc[-1] == "CMOC T1.1 was deleted."
    with study.connect() as conn:
        assert conn.execute(select(S.cmoc_evidence)).all() == []


def test_analysis_reimport_updates_with_history(study, tmp_path):
    f = tmp_path / "analysis.yaml"
    doc = analysis_doc()
    f.write_text(yaml.safe_dump(doc))
    import_analysis_yaml(study, f)
    doc["excerpts"][0]["appraisal"]["trust"] = "moderate"
    doc["excerpts"][0]["evidence"][0]["note"] = "checked again"
    # The same excerpt and analyst twice in one file: the later values win.
    doc["excerpts"].append({"source": "i1", "quote": "The paperwork was not agreed", "analyst": "JB",
                            "appraisal": {"relevance": "concept_box"}})
    doc["excerpts"].append({"source": "i1", "quote": "The paperwork was not agreed", "analyst": "JB",
                            "appraisal": {"relevance": "relevant", "trust": "low"}})
    f.write_text(yaml.safe_dump(doc))
    counts = import_analysis_yaml(study, f)
    assert counts["appraisals_updated"] == 1 and counts["appraisals_created"] == 1
    h = appraisal_history(study, {"source": "d1", "quote": "I wasn't told what clients I was seeing"})
    assert list(h["trust"]) == ["high", "moderate"]
    jb = show_appraisal(study, {"source": "i1", "quote": "The paperwork was not agreed"})
    assert (jb["relevance"].iloc[0], jb["trust"].iloc[0]) == ("relevant", "low")
    with study.connect() as conn:
        notes = conn.execute(select(S.cmoc_evidence.c.note).where(S.cmoc_evidence.c.note.is_not(None))).scalars().all()
    assert notes == ["checked again"]


def test_cli_clear_field_and_every_help_has_an_example(runner, cli, study):
    import click

    p = ["-p", study.location]
    args = ["appraise", "set", "--source", "d1", "--quote", "I wasn't told", "--analyst", "RA", *p]
    assert runner.invoke(cli, [*args, "--judgement", "supports", "--cmoc", "T1.1", "--trust", "high"]).exit_code == 0
    r = runner.invoke(cli, [*args, "--clear", "cmoc"])
    assert r.exit_code == 1 and "needs the CMOC" in r.stderr  # supports without a CMOC is refused
    r = runner.invoke(cli, [*args, "--clear", "cmoc", "--clear", "cmoc_judgement"])
    assert r.exit_code == 0, r.output
    shown = show_appraisal(study, {"source": "d1", "quote": "I wasn't told"})
    assert pd.isna(shown["cmoc"].iloc[0]) and shown["trust"].iloc[0] == "high"
    assert runner.invoke(cli, [*args, "--clear", "trust", "--trust", "low"]).exit_code == 2
    # Every command of this area documents an example.
    names = ["appraise", "cmoc", "theory", "ifthen", "saturation", "suggest", "graph", "triangulate", "analysis"]
    for name in names:
        cmd = cli.commands[name]
        subs = [[name]] + ([[name, s] for s in cmd.commands] if isinstance(cmd, click.Group) else [])
        for path in subs:
            r = runner.invoke(cli, [*path, "--help"])
            assert r.exit_code == 0 and "Example" in r.stdout, path

"""Speaker turns in short transcripts and field notes, and kind-aware attribution (a newcomer's first files)."""

from __future__ import annotations

import json

import pytest

from sp_realist.coding.autocode import autocode
from sp_realist.coding.codebook import import_codebook_yaml
from sp_realist.coding.retrieval import coded_excerpts
from sp_realist.errors import SpRealistError
from sp_realist.ingest import read_sources
from sp_realist.sources import set_attribution_wording


def turns(text: str, kind: str = "interview", **kw) -> list[tuple[str, str | None, str]]:
    draft = read_sources(text.encode("utf-8"), "t.txt", kind=kind, **kw)[0]
    return [(s.kind, s.speaker, text[s.start:s.end].strip()) for s in draft.segments]


@pytest.mark.parametrize("text, expected", [
    # the newcomer's three lines: three turns, the answer the link worker's
    ("Interviewer: How are referrals?\nLink worker: Slow at first, then fine.\nInterviewer: Thanks.\n",
     [("turn", "Interviewer"), ("turn", "Link worker"), ("turn", "Interviewer")]),
    # only the first two lines: still two turns
    ("Interviewer: How are referrals?\nLink worker: Slow at first, then fine.\n",
     [("turn", "Interviewer"), ("turn", "Link worker")]),
    # role labels used once each
    ("Q: Who refers?\nGP: Mostly us.\nManager: And the council.\n",
     [("turn", "Q"), ("turn", "GP"), ("turn", "Manager")]),
    ("Q: Who refers?\nA: The surgery.\n", [("turn", "Q"), ("turn", "A")]),
    ("R1: It helped.\nP1: It did not.\n", [("turn", "R1"), ("turn", "P1")]),
    # names used once each, but the whole file is "Label:" lines
    ("Sarah: Hello there.\nTom: Hi.\n", [("turn", "Sarah"), ("turn", "Tom")]),
    # a header line before the first recognised turn stays a preamble
    ("Interview: practice manager, site 2\nInterviewer: How did it start?\nP2: Slowly.\n",
     [("preamble", None), ("turn", "Interviewer"), ("turn", "P2")]),
    # prose that merely holds a colon stays prose
    ("Met the team today.\nNote: the room was cold.\nWe discussed referrals at length and agreed to meet.\n"
     "It went well overall.\n", [("paragraph", None)]),
    ("Observed: the waiting room was full.\nActions: call the surgery back.\n", [("paragraph", None)]),
])
def test_speaker_turns_table(text, expected):
    assert [t[:2] for t in turns(text)] == expected


def test_a_name_in_the_speaker_map_starts_a_turn_on_first_use():
    text = "Interviewer: How are referrals?\nSarah: Slow.\nThe rest of the answer continues here.\n"
    got = turns(text, speaker_map={"Sarah": "S1 LW1"})
    assert got[1] == ("turn", "Sarah", "Sarah: Slow.\nThe rest of the answer continues here.")


@pytest.mark.parametrize("kind", ["field_notes", "focus_group", "document"])
def test_every_kind_but_diaries_reads_speaker_labels(kind):
    text = "Facilitator: What changed?\nS1 LW4: The referral form.\nS1 LW5: And the waiting list.\n"
    assert [t[:2] for t in turns(text, kind)] == [("turn", "Facilitator"), ("turn", "S1 LW4"), ("turn", "S1 LW5")]


def _ingest(runner, cli, project_path, path, *args):
    r = runner.invoke(cli, ["ingest", str(path), "-p", str(project_path), *args])
    assert r.exit_code == 0, r.output


def test_the_answer_of_a_short_transcript_is_coded_and_quoted_as_the_link_worker(runner, cli, project_path,
                                                                                   project, tmp_path):
    path = tmp_path / "lw4.txt"
    path.write_text("Interviewer: How are referrals?\nLink worker: Slow at first, then fine.\nInterviewer: Thanks.\n",
                    encoding="utf-8")
    _ingest(runner, cli, project_path, path, "--kind", "interview", "--speaker-map", "Link worker=S1 LW4")
    r = runner.invoke(cli, ["sources", "show", "lw4", "-p", str(project_path), "--format", "json"])
    segs = json.loads(r.stdout)["segments"]
    assert [s["speaker"] for s in segs] == ["Interviewer", "Link worker", "Interviewer"]
    book = tmp_path / "codebook.yaml"
    book.write_text("codes:\n  - name: Referral pace\n    rules:\n      - {name: slow, keywords: [slow]}\n", encoding="utf-8")
    import_codebook_yaml(project, book)
    applied = autocode(project)
    assert len(applied) == 1  # the answer is not an interviewer turn, so it is coded
    quotes = coded_excerpts(project, "Referral pace")
    assert quotes["attribution"].tolist() == ["(S1 LW4)"]


def test_field_notes_are_cited_as_field_notes(runner, cli, project_path, project, tmp_path):
    notes = tmp_path / "visit.txt"
    notes.write_text("Visited the hub on Tuesday.\n\nThe link worker said referrals had been slow since March.\n",
                     encoding="utf-8")
    _ingest(runner, cli, project_path, notes, "--kind", "field_notes", "--participant", "S1 LW4", "--site", "S1")
    book = tmp_path / "codebook.yaml"
    book.write_text("codes:\n  - name: Referral pace\n    rules:\n      - {name: slow, keywords: [slow]}\n", encoding="utf-8")
    import_codebook_yaml(project, book)
    autocode(project)
    assert coded_excerpts(project, "Referral pace")["attribution"].tolist() == ["(field notes, S1 LW4)"]
    r = runner.invoke(cli, ["retrieve", "Referral pace", "-p", str(project_path), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["attribution"] == "(field notes, S1 LW4)"

    # the project changes the wording
    r = runner.invoke(cli, ["sources", "attribution", "field_notes", "observation notes, {who}",
                            "-p", str(project_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {row["kind"]: row for row in json.loads(r.stdout)}
    assert rows["field_notes"]["example"] == "(observation notes, S1 LW4)" and rows["field_notes"]["set"] == "project"
    assert rows["diary"]["example"] == "(S1 LW4)" and rows["diary"]["set"] == "default"
    assert coded_excerpts(project, "Referral pace")["attribution"].tolist() == ["(observation notes, S1 LW4)"]
    r = runner.invoke(cli, ["sources", "attribution", "field_notes", "--reset", "-p", str(project_path)])
    assert r.exit_code == 0
    assert coded_excerpts(project, "Referral pace")["attribution"].tolist() == ["(field notes, S1 LW4)"]

    # a wording without {who} is refused with one sentence; usage errors exit 2
    r = runner.invoke(cli, ["sources", "attribution", "field_notes", "notes", "-p", str(project_path)])
    assert r.exit_code == 1 and "{who}" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["sources", "attribution", "field_notes", "-p", str(project_path)])
    assert r.exit_code == 2
    with pytest.raises(SpRealistError, match="not a source kind"):
        set_attribution_wording(project, kind="minutes", wording="{who}")


def test_speakers_in_field_notes_are_cited_with_the_kind(project, tmp_path, runner, cli, project_path):
    notes = tmp_path / "meeting.txt"
    notes.write_text("Facilitator: What changed?\nS1 LW4: The referral form was slow to arrive.\n"
                     "S1 LW5: And the waiting list grew.\n", encoding="utf-8")
    _ingest(runner, cli, project_path, notes, "--kind", "field_notes")
    book = tmp_path / "codebook.yaml"
    book.write_text("codes:\n  - name: Referral pace\n    rules:\n      - {name: slow, keywords: [slow]}\n", encoding="utf-8")
    import_codebook_yaml(project, book)
    autocode(project)
    assert coded_excerpts(project, "Referral pace")["attribution"].tolist() == ["(field notes, S1 LW4)"]

"""ingest --replace keeps the analysis: spans carried onto a corrected text, orphans for review,
`sources orphans` / `reattach` / `discard` and `sources remove`."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sp_realist import schema as S
from sp_realist.cmoc import add_cmoc, link_evidence
from sp_realist.cmoc.appraisal import set_appraisal
from sp_realist.coding.codebook import add_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.memos import add_memo
from sp_realist.errors import SpRealistError
from sp_realist.ingest import ingest_paths
from sp_realist.reanchor import OffsetMap, discard_orphan, list_orphans, pair_sources, reattach_orphan
from sp_realist.sources import SourceDraft

import ingest_samples as samples

TRANSCRIPT = (
    "Interviewer: How did the first weeks go?\n"
    "S1 LW1: The referrals were slow at first because the surgery had not explained the service.\n"
    "Interviewer: And later?\n"
    "S1 LW1: Later the practice manager booked people in directly and it was much better.\n"
    "S1 LW1: I also kept a waiting list on paper for the people nobody had called back.\n"
)


# --- the offset map ------------------------------------------------------------------

def _carry(old: str, new: str, words: str):
    start = old.index(words)
    return OffsetMap(old, new).carry(start, start + len(words))


@pytest.mark.parametrize("old, new, words, status, result", [
    # unchanged text
    ("the cat sat", "the cat sat", "cat", "kept", "cat"),
    # text inserted before the span moves it
    ("the cat sat", "oh, the cat sat", "cat sat", "kept", "cat sat"),
    # text inserted right after the span is not taken into it
    ("the cat sat", "the cat, quietly, sat", "cat", "kept", "cat"),
    # a typo corrected inside the span: adjusted, the span takes the corrected words
    ("they waited sixx weeks for a call", "they waited six weeks for a call", "waited sixx weeks", "adjusted",
     "waited six weeks"),
    # a word inserted inside the span is taken in
    ("referrals were slow", "referrals were very slow", "referrals were slow", "adjusted",
     "referrals were very slow"),
    # the span's words deleted
    ("keep this. drop that sentence entirely. keep", "keep this. keep", "drop that sentence entirely.",
     "orphaned", None),
    # the span's words rewritten beyond recognition
    ("she said it was fine", "she said nothing at all", "it was fine", "orphaned", None),
])
def test_offset_map_cases(old, new, words, status, result):
    carried = _carry(old, new, words)
    assert carried.status == status
    if result is None:
        assert carried.start is None and carried.end is None
    else:
        assert new[carried.start:carried.end] == result


def test_a_moved_paragraph_is_found_again():
    a = "First paragraph about referrals and the long wait for a call back.\n"
    b = "Second paragraph about the practice manager who booked people in.\n"
    c = "Third paragraph about the waiting list kept on paper by the link worker.\n"
    carried = _carry(a + b + c, c + a + b, c.strip())
    # the diff keeps a+b and re-inserts c at the front: the words are found there verbatim
    assert carried.status in ("kept", "moved")
    assert (c + a + b)[carried.start:carried.end] == c.strip()


def test_short_words_that_occur_several_times_are_not_guessed():
    old = "ok. The manager said ok. Then ok."
    new = "Then ok. The manager said nothing. ok."
    carried = _carry(old, new, "said ok")
    assert carried.status in ("orphaned", "adjusted")
    if carried.status == "adjusted":
        assert "said" in new[carried.start:carried.end]


SPAN_ALPHABET = "xyz"
EDIT_ALPHABET = "ab .\n"


@settings(max_examples=150, deadline=None)
@given(prefix=st.text(EDIT_ALPHABET, max_size=30), span=st.text(SPAN_ALPHABET, min_size=1, max_size=20),
       suffix=st.text(EDIT_ALPHABET, max_size=30), new_prefix=st.text(EDIT_ALPHABET, max_size=30),
       new_suffix=st.text(EDIT_ALPHABET, max_size=30))
@example(prefix="", span="x", suffix="", new_prefix="", new_suffix="")  # the span is the whole text
@example(prefix="a", span="xyz", suffix="b", new_prefix="", new_suffix="")  # edits at both ends
@example(prefix="", span="xx", suffix="", new_prefix="ab.\n", new_suffix=". ")  # text only added
@example(prefix="", span="x", suffix="a", new_prefix="a", new_suffix="")  # the edit swaps sides
def test_edits_outside_a_span_keep_its_words(prefix, span, suffix, new_prefix, new_suffix):
    old = prefix + span + suffix
    new = new_prefix + span + new_suffix
    carried = OffsetMap(old, new).carry(len(prefix), len(prefix) + len(span))
    # the diff may align a lone span character with an edit and re-find it ("moved"): same place either way
    assert carried.status in ("kept", "moved")
    assert (carried.start, carried.end) == (len(new_prefix), len(new_prefix) + len(span))


@settings(max_examples=150, deadline=None)
@given(old=st.text("abc \n", max_size=60), new=st.text("abc \n", max_size=60), data=st.data())
def test_any_carried_span_is_inside_the_new_text_and_honest(old, new, data):
    if not old:
        return
    start = data.draw(st.integers(0, len(old) - 1))
    end = data.draw(st.integers(start + 1, len(old)))
    carried = OffsetMap(old, new).carry(start, end)
    if carried.status == "orphaned":
        assert carried.start is None
        return
    assert 0 <= carried.start < carried.end <= len(new)
    if carried.status in ("kept", "moved"):
        assert new[carried.start:carried.end] == old[start:end]


def test_sources_pair_by_name_then_entry_then_text():
    def draft(name, text, entry=None):
        return SourceDraft(name=name, kind="diary", text=text, segments=[], checksum="x", entry_index=entry)

    old = [{"name": "S1 DK1 2019-05-14", "text": "alpha beta gamma", "entry_index": 0},
           {"name": "S1 DK1 2019-05-21", "text": "delta epsilon", "entry_index": 1},
           {"name": "S1 DK1 2019-05-28", "text": "something else entirely here", "entry_index": 2}]
    new = [draft("S1 DK1 2019-05-14", "alpha beta gamma!", 0),
           draft("S1 DK1 2019-05-22", "delta epsilon.", 1),  # date corrected: same entry position
           draft("S1 DK1 2019-06-04", "a brand new entry", 3)]
    pairs = pair_sources(old, new)
    named = {(o["name"] if o else None, d.name if d else None) for o, d in pairs}
    assert named == {("S1 DK1 2019-05-14", "S1 DK1 2019-05-14"), ("S1 DK1 2019-05-21", "S1 DK1 2019-05-22"),
                     ("S1 DK1 2019-05-28", None), (None, "S1 DK1 2019-06-04")}


# --- ingest --replace on a real project ------------------------------------------------

def _count(project, table, *where):
    with project.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _words(project, table, row_id):
    with project.connect() as conn:
        start, end, sid = conn.execute(select(table.c.start, table.c.end, table.c.source_id)
                                       .where(table.c.id == row_id)).one()
        text = conn.execute(select(S.sources.c.text).where(S.sources.c.id == sid)).scalar_one()
    return text[start:end]


def _coding_id(project, code):
    with project.connect() as conn:
        return conn.execute(select(S.codings.c.id).join(S.codes).where(S.codes.c.name == code)).scalar_one()


@pytest.fixture
def coded(project, tmp_path):
    """A transcript with codings, a coding memo, an appraised excerpt and CMOC evidence."""
    path = tmp_path / "lw1.txt"
    path.write_text(TRANSCRIPT, encoding="utf-8")
    assert ingest_paths(project, [path], kind="interview").ok
    name = "lw1"
    add_code(project, "Referral")
    add_code(project, "Booking")
    add_code(project, "Waiting list")
    ids = {}
    add_coding(project, "Referral", name, match="referrals were slow", coder="RA")
    ids["slow"] = _coding_id(project, "Referral")
    add_coding(project, "Booking", name, match="booked people in directly", coder="RA")
    ids["booked"] = _coding_id(project, "Booking")
    add_coding(project, "Waiting list", name, match="kept a waiting list on paper", coder="RB")
    ids["paper"] = _coding_id(project, "Waiting list")
    add_memo(project, "RB: the paper list is a workaround", on="coding", target=ids["paper"], author="RB")
    add_cmoc(project, "T1.1", context="surgery does not explain the service", outcome="slow referrals")
    ref = {"source": name, "quote": "I also kept a waiting list on paper for the people nobody had called back."}
    set_appraisal(project, ref, "RA", relevance="relevant", trust="high", interpretation="outcome",
                  cmoc_judgement="supports", cmoc="T1.1", link=True)
    link_evidence(project, "T1.1", {"source": name, "quote": "the surgery had not explained the service"},
                  component="context", analyst="RA")
    return path, name, ids


def test_replace_keeps_codings_and_analysis_on_the_corrected_text(project, coded):
    path, name, ids = coded
    corrected = (TRANSCRIPT
                 .replace("Interviewer: How did the first weeks go?\n",
                          "Interviewer: Thank you for joining. How did the first weeks go?\n")
                 .replace("booked people in directly", "booked people in diretly"))  # a new typo inside a span
    path.write_text(corrected, encoding="utf-8")
    report = ingest_paths(project, [path], kind="interview", replace=True)
    assert report.ok and report.files[0].status == "replaced"
    assert "3 of 3 codings kept (1 adjusted)" in report.files[0].message
    assert "2 of 2 excerpts kept" in report.files[0].message
    assert _words(project, S.codings, ids["slow"]) == "referrals were slow"
    assert _words(project, S.codings, ids["booked"]) == "booked people in diretly"
    assert _words(project, S.codings, ids["paper"]) == "kept a waiting list on paper"
    # the same source row, its memo, appraisal and evidence still attached
    assert _count(project, S.sources) == 1
    assert _count(project, S.memos, S.memos.c.target_id == ids["paper"]) == 1
    assert _count(project, S.appraisals) == 1 and _count(project, S.cmoc_evidence) == 2
    with project.connect() as conn:
        text = conn.execute(select(S.sources.c.text)).scalar_one()
        spans = conn.execute(select(S.excerpts.c.start, S.excerpts.c.end)).all()
        log = conn.execute(select(S.audit_log.c.detail).where(S.audit_log.c.action == "ingest.replace")).scalar_one()
    assert text == corrected
    assert sorted(text[a:b] for a, b in spans) == [
        "I also kept a waiting list on paper for the people nobody had called back.",
        "the surgery had not explained the service"]
    assert json.loads(log)["codings"] == {"kept": 2, "adjusted": 1, "moved": 0, "orphaned": 0}
    assert list_orphans(project).empty


def test_deleted_words_become_orphans_that_keep_their_analysis(project, coded, runner, cli, project_path):
    path, name, ids = coded
    corrected = TRANSCRIPT.replace(
        "S1 LW1: I also kept a waiting list on paper for the people nobody had called back.\n",
        "S1 LW1: We had no list of the people waiting.\n")
    path.write_text(corrected, encoding="utf-8")
    report = ingest_paths(project, [path], kind="interview", replace=True)
    assert report.ok
    assert "2 orphaned for review" in report.files[0].message
    # nothing is deleted: the coding, its memo, the excerpt, its appraisal and evidence sit in the orphans
    assert _count(project, S.codings) == 2 and _count(project, S.excerpts) == 1
    assert _count(project, S.appraisals) == 0 and _count(project, S.cmoc_evidence) == 1
    assert _count(project, S.memos) == 0
    orphans = list_orphans(project)
    assert sorted(orphans["kind"]) == ["coding", "excerpt"]
    coding = orphans[orphans["kind"] == "coding"].iloc[0]
    excerpt = orphans[orphans["kind"] == "excerpt"].iloc[0]
    assert coding["quote"] == "kept a waiting list on paper"
    assert coding["holds"] == "code 'Waiting list' by RB, 1 memo(s)"
    assert excerpt["holds"] == "1 appraisal(s); evidence for T1.1 (supports)"
    assert "deleted or rewritten" in excerpt["reason"]

    # the CLI lists them
    r = runner.invoke(cli, ["sources", "orphans", "-p", str(project_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert {o["kind"] for o in json.loads(r.stdout)} == {"coding", "excerpt"}

    # the user puts the excerpt back on the new sentence: appraisal and evidence come back with it
    r = runner.invoke(cli, ["sources", "orphans", "reattach", str(int(excerpt["id"])), "-p", str(project_path),
                            "--quote", "We had no list of the people waiting."])
    assert r.exit_code == 0, r.output
    assert _count(project, S.appraisals) == 1 and _count(project, S.cmoc_evidence) == 2
    with project.connect() as conn:
        ap = conn.execute(select(S.appraisals.c.analyst, S.appraisals.c.cmoc_judgement, S.excerpts.c.start,
                                 S.excerpts.c.end).join(S.excerpts)).one()
    assert ap[:2] == ("RA", "supports") and corrected[ap[2]:ap[3]] == "We had no list of the people waiting."

    # the old words are gone, so re-attaching without a place says so
    r = runner.invoke(cli, ["sources", "orphans", "reattach", str(int(coding["id"])), "-p", str(project_path)])
    assert r.exit_code == 1 and "is not in the text" in " ".join(r.stderr.split()) and "Traceback" not in r.output

    # discarding asks first; "n" keeps it
    r = runner.invoke(cli, ["sources", "orphans", "discard", str(int(coding["id"])), "-p", str(project_path)],
                      input="n\n")
    assert r.exit_code == 1 and "kept (not confirmed)" in " ".join(r.stderr.split())
    assert len(list_orphans(project)) == 1
    r = runner.invoke(cli, ["sources", "orphans", "discard", str(int(coding["id"])), "-p", str(project_path),
                            "--yes"])
    assert r.exit_code == 0 and "code 'Waiting list' by RB" in " ".join(r.stderr.split())
    assert list_orphans(project).empty


def test_reattached_coding_brings_its_memo_back(project, coded):
    path, name, ids = coded
    path.write_text(TRANSCRIPT.replace("kept a waiting list on paper", "kept a list"), encoding="utf-8")
    assert ingest_paths(project, [path], kind="interview", replace=True).ok
    orphans = list_orphans(project)
    coding = int(orphans[orphans["kind"] == "coding"]["id"].iloc[0])
    done = reattach_orphan(project, orphan_id=coding, quote="kept a list")
    with project.connect() as conn:
        row = conn.execute(select(S.codings.c.coder, S.codings.c.guid, S.codes.c.name).join(S.codes)
                           .where(S.codings.c.id == done.new_id)).one()
        memo = conn.execute(select(S.memos.c.text).where(S.memos.c.target_type == "coding",
                                                          S.memos.c.target_id == done.new_id)).scalar_one()
    assert row[0] == "RB" and row[2] == "Waiting list"
    assert memo == "RB: the paper list is a workaround"
    with pytest.raises(SpRealistError, match="no such orphan"):
        discard_orphan(project, orphan_id=coding)


def test_a_diary_entry_dropped_from_the_file_is_kept_not_deleted(project, tmp_path):
    path = tmp_path / "s1-dk1.txt"
    path.write_text(samples.diary_text(), encoding="utf-8")
    assert ingest_paths(project, [path]).ok
    names = ingest_paths(project, [path]).files[0].sources
    assert len(names) == len(samples.ENTRIES) >= 2
    add_code(project, "Induction")
    with project.connect() as conn:
        last = conn.execute(select(S.sources.c.name, S.sources.c.text).order_by(S.sources.c.ingest_order.desc())).first()
    add_coding(project, "Induction", last.name, span=(0, 10), coder="RA")
    path.write_text(samples.diary_text(entries=samples.ENTRIES[:-1]), encoding="utf-8")
    report = ingest_paths(project, [path], replace=True)
    assert report.ok
    assert f"1 older source(s) no longer in the file kept unchanged ({last.name}" in report.files[0].message
    assert _count(project, S.sources) == len(samples.ENTRIES)
    assert _count(project, S.codings) == 1


def test_replacing_an_anonymised_source_is_refused(project, tmp_path):
    from sp_realist.privacy.anonymise import anonymise

    path = tmp_path / "lw1.txt"
    path.write_text(TRANSCRIPT.replace("practice manager", "practice manager Sarah Jones"), encoding="utf-8")
    assert ingest_paths(project, [path], kind="interview").ok
    key = tmp_path / "key.yaml"
    key.write_text("entries:\n  - {original: Sarah Jones, replacement: '[manager]'}\n", encoding="utf-8")
    anonymise(project, key)
    with project.connect() as conn:
        before = conn.execute(select(S.sources.c.text)).scalar_one()
    path.write_text(TRANSCRIPT.replace("practice manager", "practice manager Sarah Jones") + "More.\n",
                    encoding="utf-8")
    report = ingest_paths(project, [path], kind="interview", replace=True)
    assert report.files[0].status == "refused"
    assert "anonymised" in report.files[0].message and "--reverse" in report.files[0].message
    with project.connect() as conn:
        assert conn.execute(select(S.sources.c.text)).scalar_one() == before


# --- sources remove --------------------------------------------------------------------

def test_sources_remove_says_what_goes_and_asks(project, coded, runner, cli, project_path):
    path, name, ids = coded
    r = runner.invoke(cli, ["sources", "remove", name, "-p", str(project_path)], input="n\n")
    assert r.exit_code == 1 and "not removed" in " ".join(r.stderr.split())
    said = " ".join(r.stderr.split())
    assert "also removes 3 coding(s), 2 excerpt(s), 1 appraisal(s), 2 CMOC evidence link(s), 1 memo(s)." in said
    assert _count(project, S.sources) == 1
    r = runner.invoke(cli, ["sources", "remove", name, "-p", str(project_path)], input="y\n")
    assert r.exit_code == 0, r.output
    for table in (S.sources, S.segments, S.codings, S.excerpts, S.appraisals, S.cmoc_evidence, S.memos):
        assert _count(project, table) == 0, table.name
    # the CMOC itself stays
    assert _count(project, S.cmocs) == 1
    with project.connect() as conn:
        assert conn.execute(select(S.audit_log.c.target).where(S.audit_log.c.action == "source.remove")).scalar_one() == name
    r = runner.invoke(cli, ["sources", "remove", name, "-p", str(project_path), "--yes"])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_replace_through_the_cli_reports_the_carry_over(project, coded, runner, cli, project_path):
    path, name, ids = coded
    path.write_text(TRANSCRIPT.replace("slow at first", "slow at the start"), encoding="utf-8")
    r = runner.invoke(cli, ["ingest", str(path), "--kind", "interview", "--replace", "-p", str(project_path),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["status"] == "replaced"
    assert "3 of 3 codings kept" in row["message"] and "2 of 2 excerpts kept" in row["message"]

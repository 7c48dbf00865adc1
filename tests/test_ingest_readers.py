"""Readers and segmenters on real files: text in four encodings, Markdown,
Word (python-docx) diaries in three forms and speaker tables, WebVTT, SRT."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings, strategies as st

from sp_realist.errors import IngestError
from sp_realist.ingest import detect_kind, read_document, read_sources
from sp_realist.ingest.base import decode_bytes, parse_date
from sp_realist.sources import check_segments

import ingest_samples as samples


def _tiles(draft):
    check_segments(draft.text, draft.segments, draft.name)
    assert "".join(draft.text[s.start:s.end] for s in draft.segments) == draft.text


def _seg_text(draft, seg):
    return draft.text[seg.start:seg.end]


# --- encodings -------------------------------------------------------------------

TEXT = "Interviewer: Café, naïve — “quoted” £5?\nP1: Yes.\nInterviewer: Again?\nP1: Indeed.\n"


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", codecs.BOM_UTF16_BE), ("cp1252", b""),
])
def test_text_encodings_decode_to_the_same_text(encoding, bom):
    data = bom + TEXT.replace("\n", "\r\n").encode(encoding)
    text, _enc = decode_bytes(data, "t.txt")
    assert text == TEXT  # BOM gone, CRLF normalised, characters intact
    [draft] = read_sources(data, "t.txt")
    _tiles(draft)
    assert [s.speaker for s in draft.segments] == ["Interviewer", "P1", "Interviewer", "P1"]


@pytest.mark.parametrize("data,match", [
    (b"", "empty"),
    (b"  \n\r\n ", "empty"),
    (b"PK\x03\x04rest-of-a-zip", "zip archive"),
    (b"%PDF-1.4 binary", "PDF"),
    (b"abc\x00\x01\x02def", "not readable text"),
    (b"\x81\x8d\x8f\x90\x9d", "not readable text"),
])
def test_bad_text_files_are_refused(data, match):
    with pytest.raises(IngestError, match=match) as info:
        read_sources(data, "bad.txt")
    assert info.value.message.startswith("bad.txt: ")


def test_unsupported_extension_and_fake_docx():
    with pytest.raises(IngestError, match="unsupported file type '.pdf'"):
        read_document(b"%PDF", "x.pdf")
    with pytest.raises(IngestError, match="not a zip archive"):
        read_document(b"just text", "x.docx")
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(IngestError, match="zip archive but not a Word document"):
        read_document(buf.getvalue(), "x.docx")


# --- dates -----------------------------------------------------------------------

@pytest.mark.parametrize("raw,iso", [
    ("14/05/2019", "2019-05-14"), ("4/6/2019", "2019-06-04"), ("14.05.19", "2019-05-14"),
    ("2019-05-14", "2019-05-14"), ("14 May 2019", "2019-05-14"), ("14th of May 2019", "2019-05-14"),
    ("May 14, 2019", "2019-05-14"), ("...../...../", None), ("", None),
])
def test_parse_date_day_first(raw, iso):
    assert parse_date(raw) == iso


def test_parse_date_refuses_impossible_dates():
    with pytest.raises(IngestError, match="not a valid"):
        parse_date("31/02/2019", "d.txt")
    with pytest.raises(IngestError, match="not a date"):
        parse_date("week 12 of 2019", "d.txt")


# --- diaries ---------------------------------------------------------------------

def _check_diary(drafts, entries=samples.ENTRIES, site=None):
    assert len(drafts) == len(entries)
    for d, (_raw, iso, code, surgery, what, so, now) in zip(drafts, entries):
        _tiles(d)
        assert d.kind == "diary" and d.date == iso and d.participant_code == code
        assert d.name == f"{code} {iso}"
        assert d.attributes.get("surgery") == surgery
        if site:
            assert d.attributes["site"] == site
        body = {s.section: _seg_text(d, s) for s in d.segments if s.kind == "section"}
        assert set(body) == {"What?", "So what?", "Now what?"}
        assert what in body["What?"] and so in body["So what?"] and now in body["Now what?"]
        assert so not in body["What?"]
        heads = [s.section for s in d.segments if s.kind == "heading"]
        assert heads == ["What?", "So what?", "Now what?"]
        pre = d.segments[0]
        assert pre.kind == "preamble" and "Date of diary insert" in _seg_text(d, pre)


@pytest.mark.parametrize("style", ["plain", "upper", "colon", "subtitle", "markdown", "bold"])
def test_text_diary_heading_styles(style):
    data = samples.diary_text(style).encode("utf-8")
    name = "diary.md" if style in ("markdown", "bold") else "diary.txt"
    drafts = read_sources(data, name, site="S1")
    _check_diary(drafts, site="S1")
    # entries concatenate back to the whole file
    assert "".join(d.text for d in drafts) == data.decode("utf-8")
    assert [d.entry_index for d in drafts] == [0, 1, 2]


def test_diary_preamble_before_first_entry_is_kept():
    pre = "Diary returned by the Mind site coordinator.\nPlease see below."
    data = samples.diary_text("plain", preamble=pre).encode("utf-8")
    drafts = read_sources(data, "d.txt")
    assert drafts[0].text.startswith(pre)
    assert pre in drafts[0].text[drafts[0].segments[0].start:drafts[0].segments[0].end]
    assert "".join(d.text for d in drafts) == data.decode()


def test_plain_what_sentence_is_not_a_heading():
    text = ("Reflective Diary Date of diary insert: 01/07/2019\n\nWhat?\nWhat a week it was.\n"
            "What? I could not believe it.\n\nSo what?\nIt mattered.\n")
    [d] = read_sources(text.encode(), "d.txt")
    _tiles(d)
    assert [s.section for s in d.segments if s.kind == "heading"] == ["What?", "So what?"]
    what = next(_seg_text(d, s) for s in d.segments if s.kind == "section" and s.section == "What?")
    assert "What a week" in what and "I could not believe it" in what


def test_diary_names_without_code_or_date():
    entries = [(date, iso, None, None, w, s, n) for (date, iso, _c, _g, w, s, n) in samples.ENTRIES[:2]]
    data = samples.diary_text("plain", entries).encode()
    assert [d.name for d in read_sources(data, "s3-keeper.txt", site="S3")] == [
        "S3 unidentified 2019-05-14", "S3 unidentified 2019-05-21"]
    assert [d.name for d in read_sources(data, "s3-keeper.txt")] == [
        "s3-keeper 2019-05-14", "s3-keeper 2019-05-21"]
    assert [d.participant_code for d in read_sources(data, "k.txt", participant="S3 DK9")] == ["S3 DK9"] * 2
    undated = data.decode().replace("Date of diary insert: 14/05/2019", "Date of diary insert: ..../..../")
    names = [d.name for d in read_sources(undated.encode(), "k.txt")]
    assert names == ["k entry 1", "k 2019-05-21"]


@pytest.mark.parametrize("form", ["headings", "bold", "table", "columns"])
def test_docx_diaries(tmp_path, form):
    path = samples.write_docx_diary(tmp_path / f"diary-{form}.docx", form)
    drafts = read_sources(path.read_bytes(), path.name, site="S1")
    _check_diary(drafts, site="S1")
    assert all(d.file_format == "docx" for d in drafts)


def test_kind_detection(tmp_path):
    assert detect_kind(read_document(samples.diary_text().encode(), "a.txt")) == "diary"
    assert detect_kind(read_document(samples.TRANSCRIPT.encode(), "a.txt")) == "interview"
    path = samples.write_docx_diary(tmp_path / "d.docx", "bold")
    assert detect_kind(read_document(path.read_bytes(), "d.docx")) == "diary"


# --- transcripts -----------------------------------------------------------------

def test_text_transcript_turns_and_timestamps():
    [d] = read_sources(samples.TRANSCRIPT.encode(), "pm.txt", participant="S2 PM1")
    _tiles(d)
    assert d.kind == "interview" and d.name == "pm" and d.participant_code == "S2 PM1"
    kinds = [s.kind for s in d.segments]
    assert kinds == ["preamble", "turn", "turn", "turn", "turn"]
    turns = [s for s in d.segments if s.kind == "turn"]
    assert [s.speaker for s in turns] == ["Interviewer", "P2", "Interviewer", "P2"]
    # the single interviewee is the participant given
    assert [s.participant_code for s in turns] == [None, "S2 PM1", None, "S2 PM1"]
    assert "Some staff did not know" in _seg_text(d, turns[1])  # continuation line stays in the turn
    assert turns[2].start_time == 5 * 60 + 10 and turns[3].start_time == 5 * 60 + 14


def test_speaker_map_and_code_labels():
    text = "Interviewer: Hi.\nSarah: Hello.\nS1 LW1: Me too.\nInterviewer: Good.\nSarah: Yes.\n"
    [d] = read_sources(text.encode(), "x.md", speaker_map={"sarah": "S1 LW2"})
    codes = [(s.speaker, s.participant_code) for s in d.segments]
    assert codes == [("Interviewer", None), ("Sarah", "S1 LW2"), ("S1 LW1", "S1 LW1"),
                     ("Interviewer", None), ("Sarah", "S1 LW2")]


def test_text_without_turns_is_paragraphs():
    text = ("# Field notes\n\nIntro.\n\n## Visit 1\n\nFirst visit to the surgery.\nStill the first paragraph.\n\n"
            "Second paragraph.\n")
    [d] = read_sources(text.encode(), "notes.md", kind="field_notes")
    _tiles(d)
    assert [s.kind for s in d.segments] == ["heading", "paragraph", "heading", "paragraph", "paragraph"]
    # the opening heading is the title; later headings label the paragraphs under them
    assert [s.section for s in d.segments] == [None, None, "Visit 1", "Visit 1", "Visit 1"]


def test_docx_speaker_table_and_paragraph_turns(tmp_path):
    for writer in (samples.write_docx_speaker_table, samples.write_docx_paragraph_turns):
        path = writer(tmp_path / f"{writer.__name__}.docx")
        [d] = read_sources(path.read_bytes(), path.name)
        _tiles(d)
        turns = [s for s in d.segments if s.kind == "turn"]
        assert [(s.speaker, s.participant_code) for s in turns] == [
            ("Interviewer", None), ("S1 LW1", "S1 LW1"), ("Interviewer", None), ("S1 LW1", "S1 LW1")]
        for s, (sp, said) in zip(turns, samples.TURNS):
            assert _seg_text(d, s).startswith(f"{sp}: {said}")


def test_teams_vtt_merges_consecutive_cues():
    [d] = read_sources(samples.TEAMS_VTT.encode(), "call.vtt", speaker_map={"Sarah Jones": "EV1"})
    _tiles(d)
    assert d.file_format == "vtt"
    assert [(s.speaker, s.start_time, s.end_time) for s in d.segments] == [
        ("Sarah Jones", 1.0, 7.5), ("S2 LW1", 8.0, 15.0), ("Sarah Jones", 15.5, 18.0)]
    assert _seg_text(d, d.segments[1]).strip() == "S2 LW1: I started as a link worker in May. The first weeks were confusing."
    assert [s.participant_code for s in d.segments] == ["EV1", "S2 LW1", "EV1"]
    assert "<v" not in d.text


@pytest.mark.parametrize("name,data", [("zoom.vtt", samples.ZOOM_VTT), ("zoom.srt", samples.SRT)])
def test_zoom_captions(name, data):
    [d] = read_sources(data.encode(), name)
    _tiles(d)
    assert [s.speaker for s in d.segments] == ["Owen Price", "Rhian"] + (["Owen Price"] if name.endswith("vtt") else [])
    rhian = d.segments[1]
    assert rhian.start_time == 3.5 and rhian.end_time == 9.0
    assert _seg_text(d, rhian).startswith("Rhian: Yes, loud and clear. ")


def test_bad_captions_are_refused():
    with pytest.raises(IngestError, match="not a valid WebVTT"):
        read_sources(b"just some words\nand more", "x.vtt")
    with pytest.raises(IngestError, match="caption file cannot be a reflective diary"):
        read_sources(samples.ZOOM_VTT.encode(), "x.vtt", kind="diary")


# --- the invariant: segments always rebuild the text -------------------------------

label = st.sampled_from(["Interviewer", "P1", "S1 LW1", "Sarah", "[00:01:02] Owen", "**P3:**", "Note"])
line = st.one_of(
    st.builds(lambda l, t: f"{l}: {t}", label, st.text(max_size=40)),
    st.text(max_size=60),
    st.sampled_from(["", "  ", "What?", "So what?", "## Now what?", "Date of diary insert: 14/05/2019",
                     "Participant code: S1 DK1  Surgery code: S1 GP1", "**What?**", "WHAT"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(line, min_size=1, max_size=25), st.sampled_from(["\n", "\r\n", "\n\n"]),
       st.sampled_from([None, "interview", "diary", "document"]))
def test_segments_always_rebuild_the_text(lines, sep, kind):
    text = sep.join(lines)
    try:
        drafts = read_sources(text.encode("utf-8"), "h.txt", kind=kind)
    except IngestError:
        return  # empty or control characters: refused, fine
    whole = text.replace("\r\n", "\n").replace("\r", "\n")
    assert "".join(d.text for d in drafts) == whole
    for d in drafts:
        _tiles(d)


def test_inline_bold_headings_markdown_and_docx(tmp_path):
    import docx

    entry = samples.ENTRIES[0]
    md = (f"Reflective Diary Date of diary insert: {entry[0]}\nParticipant code: {entry[2]}\n\n"
          f"**What?** {entry[4]}\n\n**So what:** {entry[5]}\n\n__Now what?__ {entry[6]}\n")
    d = docx.Document()
    d.add_paragraph(f"Reflective Diary Date of diary insert: {entry[0]}")
    d.add_paragraph(f"Participant code: {entry[2]}")
    for head, body in zip(("What?", "So what?", "Now what?"), entry[4:7]):
        p = d.add_paragraph()
        p.add_run(head).bold = True
        p.add_run(" " + body)
    d.save(tmp_path / "inline.docx")
    for data, name in ((md.encode(), "inline.md"), ((tmp_path / "inline.docx").read_bytes(), "inline.docx")):
        [draft] = read_sources(data, name)
        _tiles(draft)
        body = {s.section: _seg_text(draft, s).strip() for s in draft.segments if s.kind == "section"}
        assert body == {"What?": entry[4], "So what?": entry[5], "Now what?": entry[6]}, name
        heads = [_seg_text(draft, s).strip(" *_") for s in draft.segments if s.kind == "heading"]
        assert [h.rstrip(":?") for h in heads] == ["What", "So what", "Now what"], name


HEAD_STYLES = [
    ("What?", "So what?", "Now what?"),
    ("WHAT", "SO WHAT", "NOW WHAT"),
    ("What:", "So What:", "Now What:"),
    ("What?: Returning to the situation", "So what?: Understanding the context", "Now what? Modifying future outcomes"),
    ("## What?", "## So what?", "## Now what?"),
    ("**What?**", "**So what?**", "**Now what?**"),
]
sentence = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x17f)
                   | st.sampled_from(" ,.'"), min_size=1, max_size=60).map(lambda s: "x" + s.strip())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.dates(min_value=__import__("datetime").date(2019, 1, 1),
                                   max_value=__import__("datetime").date(2020, 12, 31)),
                          st.sampled_from([None, "S1 DK1", "S3 DK2"]),
                          st.integers(0, len(HEAD_STYLES) - 1),
                          st.lists(sentence, min_size=3, max_size=3)), min_size=1, max_size=5),
       st.sampled_from(["diary.txt", "diary.md"]))
def test_diary_entries_round_trip(entries, name):
    out = []
    for day, code, style, bodies in entries:
        out.append(f"Reflective Diary Date of diary insert: {day:%d/%m/%Y}\n")
        if code:
            out.append(f"Participant code: {code}    Surgery code: S1 GP1\n")
        out.append("\n")
        for head, body in zip(HEAD_STYLES[style], bodies):
            out.append(f"{head}\n{body}\n\n")
    text = "".join(out)
    drafts = read_sources(text.encode(), name, site="S9", force_site=True)
    assert len(drafts) == len(entries)
    assert "".join(d.text for d in drafts) == text
    seen = set()
    for d, (day, code, _style, bodies) in zip(drafts, entries):
        _tiles(d)
        base = f"{code} {day.isoformat()}" if code else f"S9 unidentified {day.isoformat()}"
        assert d.name == base or (d.name.startswith(base + " #") and base in seen)
        seen.add(base)
        assert d.date == day.isoformat() and d.participant_code == code
        assert d.attributes["site"] == "S9"  # --force-site records it even where the code says S1
        got = {s.section: _seg_text(d, s).strip() for s in d.segments if s.kind == "section"}
        assert got == dict(zip(("What?", "So what?", "Now what?"), bodies))


def test_teams_style_transcript_speaker_and_time_lines(tmp_path):
    import docx

    turns = [("Sarah Jones", "0:03", "Thanks for joining."), ("Owen Price", "0:07", "Happy to help.\nReally."),
             ("Sarah Jones", "1:02:10", "Last question.")]
    text = "".join(f"{sp}   {ts}\n{said}\n\n" for sp, ts, said in turns)
    d = docx.Document()
    for sp, ts, said in turns:
        d.add_paragraph(f"{sp}   {ts}")
        for line in said.split("\n"):
            d.add_paragraph(line)
    d.save(tmp_path / "teams.docx")
    for data, name in ((text.encode(), "teams.txt"), ((tmp_path / "teams.docx").read_bytes(), "teams.docx")):
        [draft] = read_sources(data, name, speaker_map={"Owen Price": "S2 LW1"})
        _tiles(draft)
        got = [(s.speaker, s.start_time, s.participant_code) for s in draft.segments]
        assert got == [("Sarah Jones", 3.0, None), ("Owen Price", 7.0, "S2 LW1"), ("Sarah Jones", 3730.0, None)], name
        assert "Really." in _seg_text(draft, draft.segments[1])


def test_docx_diary_with_header_fields_in_a_table(tmp_path):
    import docx

    d = docx.Document()
    for raw, _iso, code, surgery, what, so, now in samples.ENTRIES[:2]:
        d.add_paragraph("Reflective Diary")
        fields = d.add_table(rows=2, cols=2)
        fields.rows[0].cells[0].text, fields.rows[0].cells[1].text = "Date of diary insert:", raw
        fields.rows[1].cells[0].text = "Participant code:"
        fields.rows[1].cells[1].text = code
        d.add_paragraph(f"Surgery code: {surgery}")
        body = d.add_table(rows=3, cols=2)
        for row, head, text in zip(body.rows, ("WHAT", "SO WHAT", "NOW WHAT"), (what, so, now)):
            row.cells[0].text, row.cells[1].text = head, text
    d.save(tmp_path / "fields.docx")
    drafts = read_sources((tmp_path / "fields.docx").read_bytes(), "fields.docx")
    _check_diary(drafts, entries=samples.ENTRIES[:2])


def test_docx_tracked_changes_and_content_controls(tmp_path):
    """Text in tracked insertions and content controls is kept; tracked deletions are not."""
    import copy

    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    d = docx.Document()
    d.add_paragraph("Reflective Diary Date of diary insert: 14/05/2019")
    d.add_heading("What?", level=2)
    p = d.add_paragraph("The referral form ")
    p._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="1" w:author="A" w:date="2019-05-14T00:00:00Z">'
                          '<w:r><w:t xml:space="preserve">finally </w:t></w:r></w:ins>'))
    p._p.append(parse_xml(f'<w:del {nsdecls("w")} w:id="2" w:author="A" w:date="2019-05-14T00:00:00Z">'
                          '<w:r><w:delText>never </w:delText></w:r></w:del>'))
    p.add_run("arrived.")
    d.add_heading("So what?", level=2)
    inner = d.add_paragraph("Typed into a content control.")
    sdt = parse_xml(f'<w:sdt {nsdecls("w")}><w:sdtPr/><w:sdtContent/></w:sdt>')
    sdt[1].append(copy.deepcopy(inner._p))
    inner._p.addprevious(sdt)
    inner._p.getparent().remove(inner._p)
    d.save(tmp_path / "tracked.docx")
    [draft] = read_sources((tmp_path / "tracked.docx").read_bytes(), "tracked.docx")
    _tiles(draft)
    body = {s.section: _seg_text(draft, s).strip() for s in draft.segments if s.kind == "section"}
    assert body == {"What?": "The referral form finally arrived.", "So what?": "Typed into a content control."}


cue_words = st.text(alphabet=st.sampled_from("abcdefghij KLMN,.?'"), min_size=1, max_size=30).filter(
    lambda s: s.strip() and "-->" not in s)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([None, "Sarah Jones", "S1 LW1", "Owen"]), cue_words),
                min_size=1, max_size=15),
       st.sampled_from(["teams", "zoom"]))
def test_captions_merge_consecutive_speakers(cues, style):
    blocks, t = ["WEBVTT", ""], 0
    for i, (speaker, words) in enumerate(cues):
        words = " ".join(words.split())
        if speaker and style == "teams":
            line = f"<v {speaker}>{words}</v>"
        elif speaker:
            line = f"{speaker}: {words}"
        else:
            line = f"- {words}"
        blocks += [str(i + 1), f"00:00:{t:02d}.000 --> 00:00:{t + 1:02d}.500", line, ""]
        t += 2
    [d] = read_sources("\n".join(blocks).encode(), "c.vtt")
    _tiles(d)
    speakers = [s.speaker for s in d.segments]
    # consecutive cues of one speaker are one turn; speaker-less cues stay apart
    assert all(a != b or a is None for a, b in zip(speakers, speakers[1:]))
    expected = []
    for speaker, _w in cues:
        if not (expected and speaker is not None and expected[-1] == speaker):
            expected.append(speaker)
    assert speakers == expected
    for s in d.segments:
        assert s.start_time < s.end_time


def test_header_fields_are_not_speakers():
    text = ("Date: 12/03/2020\nLocation: Surgery\n\nInterviewer: Hello.\nP1: Hi.\n"
            "Note: recording paused\nInterviewer: Go on.\nP1: Fine.\nNote: recording resumed\n")
    [d] = read_sources(text.encode(), "h.txt")
    _tiles(d)
    assert [s.speaker for s in d.segments] == [None, "Interviewer", "P1", "Interviewer", "P1"]
    assert d.segments[0].kind == "preamble"
    assert "Note: recording paused" in _seg_text(d, d.segments[2])


PLAIN_DATED = """Notes returned by the site coordinator.
Date: 04/06/2019
Participant code: S2 DK1
WHAT
Things happened at reception.
So what?
It matters.
Now What:
Plans for next week.

Date: 11/06/2019
Participant code: S2 DK1
What?
More things.
SO WHAT?
Meaning.
Now what? Modifying future outcomes
Next steps.
"""


def test_plain_date_lines_start_entries_text():
    """Diaries written as "Date: dd/mm/yyyy" (not the template's "Date of diary insert")
    are split at those lines: the date and code belong to their own entry, not to the
    previous entry's "Now what?" section."""
    drafts = read_sources(PLAIN_DATED.encode(), "keeper.txt")
    assert [d.name for d in drafts] == ["S2 DK1 2019-06-04", "S2 DK1 2019-06-11"]
    assert "".join(d.text for d in drafts) == PLAIN_DATED
    for d in drafts:
        _tiles(d)
        assert d.segments[0].kind == "preamble" and "Date: " in _seg_text(d, d.segments[0])
        now = next(_seg_text(d, s) for s in d.segments if s.kind == "section" and s.section == "Now what?")
        assert "Date:" not in now and "Participant code" not in now
    assert drafts[0].text.startswith("Notes returned")  # text before the first entry is kept


def test_plain_date_lines_start_entries_docx(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("Reflective diary for the social prescribing evaluation, returned in June.")
    for i, date in enumerate(["14/05/2019", "21 May 2019"]):
        d.add_paragraph(f"Date: {date}")
        d.add_paragraph("Participant code: S1 DK1")
        d.add_heading("What?", 2)
        d.add_paragraph(f"Entry {i}: nobody knew I was coming.")
        d.add_paragraph().add_run("So What:").bold = True
        d.add_paragraph("I felt unsupported.")
        d.add_paragraph("Now what? Modifying future outcomes")
        d.add_paragraph("I will meet the practice manager.")
    path = tmp_path / "dk1.docx"
    d.save(path)
    drafts = read_sources(path.read_bytes(), path.name)
    assert [d.name for d in drafts] == ["S1 DK1 2019-05-14", "S1 DK1 2019-05-21"]
    for i, draft in enumerate(drafts):
        _tiles(draft)
        body = {s.section: _seg_text(draft, s) for s in draft.segments if s.kind == "section"}
        assert f"Entry {i}" in body["What?"] and "Date:" not in body["Now what?"]


def test_a_date_line_inside_an_interview_does_not_make_a_diary():
    text = "Date: 04/06/2019\nInterviewer: Hello.\nP3: Hi.\nInterviewer: Date: when?\nP3: Soon.\n"
    [d] = read_sources(text.encode(), "int.txt")
    assert d.kind == "interview"
    assert [s.speaker for s in d.segments if s.kind == "turn"] == ["Interviewer", "P3", "Interviewer", "P3"]


def test_timestamped_label_is_a_turn_even_when_the_name_occurs_once():
    text = "Interviewer: Café?\n\nP3: Fine, thanks.\n[00:12:03] Sarah Jones: Indeed.\nNote: not a speaker.\n"
    [d] = read_sources(text.encode(), "t.txt")
    _tiles(d)
    turns = [(s.speaker, s.start_time) for s in d.segments if s.kind == "turn"]
    assert turns == [("Interviewer", None), ("P3", None), ("Sarah Jones", 12 * 60 + 3)]
    assert _seg_text(d, d.segments[-1]) == "[00:12:03] Sarah Jones: Indeed.\nNote: not a speaker.\n"

"""The fast paths of ingest store exactly what the plain ones did: the diary-template test on lower-cased
text finds what the case-insensitive regular expressions find, ``store.insert_many`` stores the rows
SQLAlchemy's ``insert()`` stores, and ingest of a generated corpus stores every draft as read."""

from __future__ import annotations

import pytest
import tempfile
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pathlib import Path
from sqlalchemy import insert, select

from conftest import examples
from sp_realist import schema as S
from sp_realist.ingest import ingest_paths, read_sources
from sp_realist.ingest.diary import DIARY_DATE_RE, _TITLE_LINE_RE, _template_line
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist import store
from sp_realist.store import insert_many

PIECES = ["Date of diary entry", "date  of the\nDIARY insert", "Reflective Diary", "  - reflective\tdiary:",
          "REFLECTİVE DİARY", "reflectıve dıary", "date of dıary entry", "Date oſ diary entry", "É", "é",
          "\u212a", "reflective diaryx", "reflective", "diary", "date of", "entry", "\n", " ", "#", "*", "x",
          "What?", "\u2019", "Δ"]


@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
@example("Date of diary entry: 14/05/2019")
@example("intro\n  ** Reflective   diary ** 2019")
@example("REFLECTİVE DİARY")  # dotted capital I: re.IGNORECASE takes it for "i"
@example("date of dıary entry")  # dotless i
@example("Date oſ diary entry")  # long s
@example("A reflective diary on one line")  # not at the start of the line
@settings(max_examples=300, deadline=None)
def test_template_line_finds_what_the_regular_expressions_find(text):
    assert _template_line(text) == bool(DIARY_DATE_RE.search(text) or _TITLE_LINE_RE.search(text))


SEGMENT_COLUMNS = ("source_id", "ord", "start", "end", "speaker", "section", "kind", "start_time", "end_time",
                   "participant_id")

_label = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)  # what a bound value may hold
seg_rows = st.lists(st.tuples(
    st.one_of(st.none(), _label), st.one_of(st.none(), _label),
    st.sampled_from(["turn", "paragraph", "heading", "cue"]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))), max_size=40)


def test_insert_many_stores_what_sqlalchemy_insert_stores(backend, new_location, tmp_path):
    @given(seg_rows)
    @example([])
    @example([("Interviewer", None, "turn", 0.0, 1.5), (None, "What?", "heading", None, None), ("", "", "cue", 1e6, 0.0)])
    @settings(max_examples=examples(backend, 40), deadline=None)
    def check(rows):
        from sp_realist.store import Project

        project = Project.create(Path(tempfile.mkdtemp(dir=tmp_path)) / "p.sprealist")
        try:
            with project.begin() as conn:
                ids = [add_source(conn, SourceDraft(name=f"s{i}", kind="interview", text="x", checksum="c",
                                                    segments=[Segment(0, 1)])) for i in (1, 2)]
                conn.execute(S.segments.delete())
                full = [(None, i, i, i + 1, *r) for i, r in enumerate(rows)]
                with pytest.MonkeyPatch.context() as mp:  # statements of 7 rows at most: chunk boundaries
                    mp.setattr(store, "ROWS_PER_STATEMENT", 7)
                    insert_many(conn, S.segments, SEGMENT_COLUMNS, [(ids[0], *r[1:8], r[8], None) for r in full])
                if full:
                    conn.execute(insert(S.segments), [dict(zip(SEGMENT_COLUMNS, (ids[1], *r[1:8], r[8], None)))
                                                      for r in full])
                got = {sid: conn.execute(select(*[S.segments.c[c] for c in SEGMENT_COLUMNS[1:]])
                                         .where(S.segments.c.source_id == sid).order_by(S.segments.c.ord)).all()
                       for sid in ids}
            assert got[ids[0]] == got[ids[1]]
            assert len(got[ids[0]]) == len(rows)
        finally:
            project.close()

    check()


def test_insert_many_refuses_what_a_bound_value_may_not_hold(place):
    from sp_realist.schema import TextValueError
    from sp_realist.store import Project

    with Project.create(place("p")) as project:
        with pytest.raises(TextValueError, match="The segment speaker contains a control character, U\\+001F"):
            with project.begin() as conn:
                sid = add_source(conn, SourceDraft(name="s", kind="interview", text="x", checksum="c",
                                                   segments=[Segment(0, 1)]))
                insert_many(conn, S.segments, SEGMENT_COLUMNS, [(sid, 9, 0, 1, "A\x1fB", None, "turn", None, None,
                                                                 None)])
        with project.connect() as conn:  # nothing half-written
            assert conn.execute(select(S.sources.c.id)).all() == []


def test_ingest_stores_every_draft_as_read(project, tmp_path):
    """A generated corpus: each stored source and its segments equal what read_sources gives for the file,
    one audit row per file, and a second run stores nothing."""
    from benchmarks.corpus import write_corpus

    paths = write_corpus(tmp_path / "corpus", n_files=6, total_words=6_000)
    report = ingest_paths(project, paths)
    assert report.ok and len(report.source_names) == 6
    with project.connect() as conn:
        for path in paths:
            (draft,) = read_sources(path.read_bytes(), str(path))
            row = conn.execute(select(S.sources).where(S.sources.c.name == draft.name)).mappings().one()
            assert (row["text"], row["kind"], row["checksum"], row["file_name"], row["file_path"]) == (
                draft.text, draft.kind, draft.checksum, draft.file_name, str(path.resolve()))
            segs = conn.execute(select(S.segments.c.start, S.segments.c.end, S.segments.c.kind,
                                       S.segments.c.speaker, S.segments.c.section)
                                .where(S.segments.c.source_id == row["id"]).order_by(S.segments.c.ord)).all()
            assert [tuple(s) for s in segs] == [(s.start, s.end, s.kind, s.speaker, s.section)
                                                for s in draft.segments]
        logged = conn.execute(select(S.audit_log.c.action)).scalars().all()
    assert logged.count("ingest") == 6
    again = ingest_paths(project, paths)
    assert [f.status for f in again.files] == ["unchanged"] * 6


def _styles_every_block(text):
    """from_text's styles with each Markdown pattern tried on every block (the code before the prefilter)."""
    from sp_realist.ingest.base import line_blocks
    from sp_realist.ingest.text import _MD_BOLD_LABEL, _MD_BOLD_LINE, _MD_HEADING

    out = []
    for b in line_blocks(text):
        style, level, para, label_end = b.style, b.level, b.para_start, b.label_end
        m = _MD_HEADING.match(b.text)
        if m:
            style, level, para = "heading", len(m.group(1)), True
        elif _MD_BOLD_LINE.match(b.text):
            style, para = "bold", True
        else:
            m = _MD_BOLD_LABEL.match(b.text)
            if m:
                label_end = b.start + m.end()
        out.append((b.start, b.end, style, level, para, label_end))
    return out


LINE_PIECES = ["# ", "## Title", "    # deep", "\t#", "**What?**", "__So what?__", " **Now what?** I went", "*", "_",
               "x", " ", "\t", ":", ".", "Interviewer: yes", "\u00a0", "\u2003#", "\n", "\n\n"]


@given(st.lists(st.sampled_from(LINE_PIECES), max_size=16).map("".join))
@example("**What?** I arrived early\n\n# Heading\n  __bold__:\n\u00a0# not a heading")
@settings(max_examples=300, deadline=None)
def test_markdown_styles_are_those_of_every_pattern_on_every_block(text):
    from sp_realist.ingest.text import from_text

    doc = from_text(text, "md")
    assert [(b.start, b.end, b.style, b.level, b.para_start, b.label_end) for b in doc.blocks] == \
        _styles_every_block(text)


# --- files share write transactions (each in its own savepoint) ------------------------------------------------

def _transcript(i: int) -> str:
    return f"Interviewer: How did referral {i} reach you?\nS1 LW{i}: By fax, believe it or not.\n" \
           "Interviewer: And then?\nS1 LW{i}: Then a phone call.\n".replace("{i}", str(i))


def test_a_file_refused_after_its_first_writes_leaves_nothing_and_the_others_stand(project, tmp_path, monkeypatch):
    """Row 2 of the manifest writes its participant, source and segments, then its attribute name is over
    the column's limit: its savepoint is rolled back while rows 1 and 3 (same write turn, and with a
    turn of two files, across turns) are stored."""
    import sp_realist.ingest as ing
    from sp_realist.ingest import ingest_manifest

    long_name = "n" * 250  # source_attributes.name holds 200 characters
    files = []
    for i in (1, 2, 3):
        f = tmp_path / f"t{i}.txt"
        f.write_text(_transcript(i), encoding="utf-8")
        files.append(f)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,participant,{long_name}\nt1.txt,S1 LW1,\nt2.txt,S9 XX9,oops\nt3.txt,S1 LW3,\n",
                        encoding="utf-8")
    for per_turn, target in ((64, project), (2, None)):
        if target is None:
            from sp_realist.store import Project

            monkeypatch.setattr(ing, "FILES_PER_TURN", per_turn)
            target = Project.create(tmp_path / "second.sprealist")
        report = ingest_manifest(target, manifest)
        assert [f.status for f in report.files] == ["ingested", "refused", "ingested"]
        assert "200" in report.files[1].message and "shorten it" in report.files[1].message
        with target.connect() as conn:
            assert conn.execute(select(S.sources.c.name).order_by(S.sources.c.ingest_order)).scalars().all() == \
                ["t1", "t3"]
            assert conn.execute(select(S.sources.c.ingest_order).order_by(S.sources.c.ingest_order)) \
                .scalars().all() == [1, 2]
            assert "S9 XX9" not in conn.execute(select(S.participants.c.code)).scalars().all()
            assert set(conn.execute(select(S.segments.c.source_id)).scalars()) == \
                set(conn.execute(select(S.sources.c.id)).scalars())
            assert conn.execute(select(S.audit_log.c.target).where(S.audit_log.c.action == "ingest")
                                .order_by(S.audit_log.c.id)).scalars().all() == ["t1.txt", "t3.txt"]
        with target.begin() as conn:  # no transaction left open: another write goes through
            target.log(conn, "check")
        if target is not project:
            target.close()


def test_an_interrupted_run_keeps_the_files_stored_before_it(project_path, tmp_path):
    """Ctrl-C (here from the progress callback) after the second file: the turn holding files 1 and 2 is
    committed, as when each file had its own transaction; the third file is not stored, and the project
    takes the next writer at once."""
    from sp_realist.store import Project

    files = []
    for i in (1, 2, 3):
        f = tmp_path / f"t{i}.txt"
        f.write_text(_transcript(i), encoding="utf-8")
        files.append(f)

    def progress(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with Project.open(project_path) as project:
        with pytest.raises(KeyboardInterrupt):
            ingest_paths(project, files, progress=progress)
    with Project.open(project_path) as other:
        with other.connect() as conn:
            assert conn.execute(select(S.sources.c.name).order_by(S.sources.c.ingest_order)).scalars().all() == \
                ["t1", "t2"]
        assert [f.status for f in ingest_paths(other, files).files] == ["unchanged", "unchanged", "ingested"]


def test_a_run_names_one_actor_in_every_audit_row(project, tmp_path, monkeypatch):
    monkeypatch.setenv("SP_REALIST_CODER", "RA")
    files = []
    for i in (1, 2):
        f = tmp_path / f"t{i}.txt"
        f.write_text(_transcript(i), encoding="utf-8")
        files.append(f)
    assert ingest_paths(project, files).ok
    with project.connect() as conn:
        assert conn.execute(select(S.audit_log.c.actor).where(S.audit_log.c.action == "ingest")).scalars().all() \
            == ["RA", "RA"]


# --- the control-character checks on whole texts -----------------------------------------------------------

RAW_PIECES = [b"Interviewer: yes", b"\n", b"\r\n", b"\t", b"\x0c", b"\x00", b"\x01", b"\x08", b"\x0b", b"\x1b",
              b"\x1f", b"\x7f", b"\x80", b"\x81", b"\x9f", b"\xc3\xa9", b"\xe2\x80\x99", b"\x92", b"\xff", b" "]


@given(st.lists(st.sampled_from(RAW_PIECES), min_size=1, max_size=12).map(b"".join),
       st.sampled_from([b"", b"\xef\xbb\xbf", "utf-16"]))
@example(b"Interviewer: yes\x00", b"")
@example(b"caf\xe9 \x7f", b"")  # Windows-1252 with DEL
@example(b"ok \x1b[0m", "utf-16")
@example(b"Interviewer: yes\x0c next page", b"\xef\xbb\xbf")
@settings(max_examples=300, deadline=None)
def test_decode_refuses_exactly_the_texts_with_a_control_character(raw, how):
    """The byte-level check (UTF-8, Windows-1252) agrees with the regular expression over the decoded text."""
    from sp_realist.errors import IngestError
    from sp_realist.ingest.base import _BAD_CONTROL, decode_bytes

    if how == "utf-16":
        data = raw.decode("utf-8", errors="replace").encode("utf-16")
    else:
        data = how + raw
    try:
        text, enc = decode_bytes(data, "f.txt")
    except IngestError as exc:
        refused = exc.message
        text = None
    if text is not None:
        assert not _BAD_CONTROL.search(data.decode(enc))
    elif "not readable text" in refused:
        decoded = None
        for enc in ("utf-16",) if how == "utf-16" else ("utf-8-sig", "cp1252"):
            try:
                decoded = data.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        assert decoded is None or _BAD_CONTROL.search(decoded)


@given(st.text(st.sampled_from(["a", " ", "\n", "\x00", "\x01", "\x7f", "\x9f", "é", "\ud800", "\udfff", "\ue000",
                                "\U0001f600"]), max_size=20))
@example("plain ascii")
@example("nul \x00 inside")
@example("\ud83d lone surrogate")
@example("")
@settings(max_examples=300, deadline=None)
def test_the_source_text_check_refuses_what_its_pattern_finds(value):
    from sp_realist.schema import _CONTROL_SOURCE, TextValueError, check_text

    try:
        assert check_text(value, "source text", None, _CONTROL_SOURCE) is value
        ok = True
    except TextValueError:
        ok = False
    assert ok == (_CONTROL_SOURCE.search(value) is None)


def _line_blocks_before(text):
    """line_blocks as written before (line.strip() per line, keyword arguments)."""
    from sp_realist.ingest.base import Block

    blocks, pos, blank_before = [], 0, True
    for line in text.split("\n"):
        if line.strip():
            blocks.append(Block(pos, pos + len(line), line, para_start=blank_before))
            blank_before = False
        else:
            blank_before = True
        pos += len(line) + 1
    return blocks


@given(st.text(st.sampled_from(["a", " ", "\t", "\n", "\x0c", "\u00a0", "\u2003", "\u2028", "\x1c", ":", "é"]),
               max_size=30))
@example("")
@example("\n\n  \n")
@example("Interviewer: yes\n\u00a0\nS1 LW1: no\n")
@settings(max_examples=300, deadline=None)
def test_line_blocks_are_those_of_the_line_strip_loop(text):
    from sp_realist.ingest.base import line_blocks

    assert line_blocks(text) == _line_blocks_before(text)

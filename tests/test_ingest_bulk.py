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
                insert_many(conn, S.segments, SEGMENT_COLUMNS,
                            [(ids[0], *r[1:8], r[8], None) for r in full], batch=7)
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

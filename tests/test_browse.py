"""sp-realist browse: the reader's library (source index, source view, units, next coding, the visibility
hook), the session's actions with undo / redo, and the search / words / browse commands."""

from __future__ import annotations

import shlex

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from browse_helpers import make_mini_project
from sp_realist import Project
from sp_realist.browse import reading
from sp_realist.browse.session import Session, Span
from sp_realist.errors import SpRealistError


@pytest.fixture
def project(built_copy):
    """A copy of the mini study's project, on each back end (the reader reads and codes a team's server too)."""
    p = Project.open(built_copy(make_mini_project))
    yield p
    p.close()


def _source(project, name):
    idx = reading.source_index(project, user="RA")
    return int(idx.frame.loc[idx.frame["name"] == name, "id"].iloc[0])


# --- the reader's data -----------------------------------------------------------
def test_parse_filter():
    assert reading.parse_filter("") == {}
    assert reading.parse_filter('kind:diary site:S1 code:"Lack of induction" unappraised DK1') == {
        "kind": "diary", "site": "S1", "code": "Lack of induction", "unappraised": True, "name": "DK1"}
    with pytest.raises(SpRealistError, match="give a value after 'site:'"):
        reading.parse_filter("site:")
    with pytest.raises(SpRealistError, match="quote is not closed"):
        reading.parse_filter('code:"Lack')


def test_source_index_and_filters(project):
    idx = reading.source_index(project, user="RA")
    assert idx.frame["name"].tolist() == ["S1 DK1 2019-05-14", "S1 DK1 2019-05-28", "S1 DK2 2019-06-03",
                                          "s1-manager-interview"]
    assert idx.kinds == ["diary", "interview"] and idx.sites == ["S1"]
    names = lambda **kw: reading.filter_index(idx, **kw)["name"].tolist()  # noqa: E731
    assert names(kind="interview") == ["s1-manager-interview"]
    assert names(participant="S1 DK2") == ["S1 DK2 2019-06-03"]
    assert names(code="Relatives in the conversation") == ["S1 DK1 2019-05-28"]
    assert names(code="no such code") == []
    assert names(name="dk1") == ["S1 DK1 2019-05-14", "S1 DK1 2019-05-28"]
    assert names(unappraised=True) == names()  # nothing appraised yet
    coded = idx.frame.set_index("name")["codings"]
    assert coded["S1 DK1 2019-05-28"] >= 2


def test_load_source_segments_marks_and_at(project):
    sid = _source(project, "S1 DK1 2019-05-28")
    view = reading.load_source(project, source=sid, user="RA")
    assert view.name == "S1 DK1 2019-05-28" and view.kind == "diary"
    assert {s[4] for s in view.segments if s[4]} >= {"What?", "So what?", "Now what?"}
    quote = "Her voice was lost while the relative spoke."
    off = view.text.index(quote)
    here = view.at(off)
    assert here["section"] == "So what?"
    assert [m.code for m in here["marks"] if m.coder == "RA"] == ["Relatives in the conversation"]
    mark = here["marks"][0]
    assert mark.colour in reading.OKABE_ITO and mark.marker in reading.MARKERS
    # positions: every offset maps to the reader's (row, column) and back
    for i in range(0, len(view.text) + 1, 7):
        assert view.offset(*view.location(i)) == i


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab \n\r\u2028", max_size=30))
@example("")
@example("a\n")
@example("a\r\nb")
@example("\n\n")
@example("a\u2028b\r")
def test_locations_round_trip_as_textual_cuts_lines(text):
    view = reading.SourceView(1, "s", "diary", text, [], [], {}, [], [])
    lines = text.splitlines()
    if not text or text.endswith(("\r\n", "\n", "\r")):
        lines.append("")  # what Textual's Document does
    assert len(view.line_starts) == len(lines)
    for i in range(len(text) + 1):
        row, col = view.location(i)
        assert 0 <= row < len(lines)
        assert view.offset(row, col) == i


def test_layers_mark_overlaps():
    def mark(i, a, b):
        return reading.Mark(i, f"c{i}", i, a, b, "RA", "manual", None, reading.OKABE_ITO[0], reading.MARKERS[0])

    a, b = mark(1, 0, 10), mark(2, 5, 15)
    assert reading.layers([a, b]) == [(0, 5, (a,)), (5, 10, (a, b)), (10, 15, (b,))]
    assert reading.layers([]) == []
    c = mark(3, 20, 25)
    assert reading.layers([c, a]) == [(0, 10, (a,)), (20, 25, (c,))]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 10)), max_size=8))
@example([(0, 5), (0, 5)])
@example([(3, 1), (4, 1)])
def test_layers_cover_exactly_the_coded_characters(spans):
    marks = [reading.Mark(i, f"c{i}", i, a, a + n, "RA", "manual", None, reading.OKABE_ITO[0], reading.MARKERS[0])
             for i, (a, n) in enumerate(spans)]
    pieces = reading.layers(marks)
    for a, b, over in pieces:
        assert a < b
        for pos in range(a, b):
            assert set(over) == {m for m in marks if m.start <= pos < m.end}
    covered = {pos for a, b, _ in pieces for pos in range(a, b)}
    assert covered == {pos for m in marks for pos in range(m.start, m.end)}


def test_unit_span_and_errors(project):
    sid = _source(project, "S1 DK1 2019-05-28")
    view = reading.load_source(project, source=sid, user="RA")
    off = view.text.index("whispered")
    s, e = reading.unit_span(project, source=sid, offset=off, unit="sentence")
    assert view.text[s:e] == "The client whispered that she wanted to feel better about herself first."
    s2, e2 = reading.unit_span(project, source=sid, offset=off, unit="section")
    assert view.text[s2:e2].startswith("The client whispered") and view.text[s2:e2].endswith("spoke.")
    with pytest.raises(SpRealistError, match="unit 'word' is not one of sentence, segment, section"):
        reading.unit_span(project, source=sid, offset=off, unit="word")


def test_next_coding_wraps_round(project):
    code = "Relatives in the conversation"
    sid = _source(project, "S1 DK1 2019-05-28")
    first = reading.next_coding(project, code=code, user="RA", source=_source(project, "S1 DK1 2019-05-14"), offset=0)
    assert first[0] == sid
    second = reading.next_coding(project, code=code, user="RA", source=sid, offset=first[1])
    assert second[0] == sid and second[1] > first[1]
    last = reading.next_coding(project, code=code, user="RA", source=_source(project, "s1-manager-interview"),
                               offset=0, backwards=True)
    assert last[0] == sid
    wrapped = reading.next_coding(project, code=code, user="RA", source=_source(project, "s1-manager-interview"),
                                  offset=0)
    assert wrapped == first


def test_visible_codings_is_the_single_hook(project, monkeypatch):
    """Every view of the reader asks visible_codings; narrowing it (blind mode) narrows them all."""
    sid = _source(project, "S1 DK1 2019-05-28")
    assert any(m.coder == "RA" for m in reading.load_source(project, source=sid, user="RB").marks)

    def own_only(project, *, user, codings):
        return codings[codings["coder"] == user]

    monkeypatch.setattr(reading, "visible_codings", own_only)
    view = reading.load_source(project, source=sid, user="RB")
    assert all(m.coder == "RB" for m in view.marks)
    idx = reading.source_index(project, user="nobody")
    assert idx.frame["codings"].sum() == 0 and idx.by_code == {}
    assert reading.next_coding(project, code="Relatives in the conversation", user="nobody", source=sid,
                               offset=0) is None
    monkeypatch.undo()
    with pytest.raises(SpRealistError, match="name of the person reading"):
        reading.visible_codings(project, user=" ", codings=pd.DataFrame())


# --- the session -----------------------------------------------------------------
def _state(project):
    from sp_realist.cmoc.appraisal import list_appraisals
    from sp_realist.cmoc.cmocs import cmoc_evidence
    from sp_realist.coding.codebook import codebook_tree
    from sp_realist.coding.codings import list_codings
    from sp_realist.coding.memos import list_memos

    return (sorted(codebook_tree(project)["name"]), list_codings(project, text=False).drop(columns=["id", "created_at"])
            .to_dict("records"), list_memos(project)["text"].tolist(), len(list_appraisals(project)),
            len(cmoc_evidence(project)))


def test_session_actions_undo_and_redo(project):
    sid = _source(project, "S1 DK1 2019-05-28")
    view = reading.load_source(project, source=sid, user="RA")
    span = Span(sid, *reading.unit_span(project, source=sid, offset=view.text.index("whispered"), unit="sentence"))
    s = Session(project, "RA")
    states = [_state(project)]
    s.apply_code(span, "Client voice", parent="Relatives in the conversation")
    states.append(_state(project))
    assert "Client voice" in states[-1][0]
    coding_id = s.done[-1].coding_id
    s.add_memo("She wants to speak for herself.", on="coding", target=coding_id)
    states.append(_state(project))
    s.appraise(span, relevance="relevant", trust="high", interpretation="mechanism_response",
               cmoc_judgement="supports", cmoc="T2.1")
    states.append(_state(project))
    s.link(span, "T2.1", "refutes")
    states.append(_state(project))
    assert states[-1][4] == states[0][4] + 1
    s.recode(coding_id, "Self-esteem")
    states.append(_state(project))
    for i in range(len(states) - 1, 0, -1):  # undo everything, one step at a time
        assert _state(project) == states[i]
        assert s.undo() is not None
    assert _state(project) == states[0]
    assert s.undo() is None
    for i in range(1, len(states)):  # and redo it all
        assert s.redo() is not None
        assert _state(project)[0] == states[i][0] and _state(project)[2:] == states[i][2:]
    assert s.redo() is None


def test_session_remove_keeps_memos_for_undo(project):
    from sp_realist.coding.codings import list_codings
    from sp_realist.coding.memos import list_memos, memo_records

    sid = _source(project, "S1 DK1 2019-05-28")
    s = Session(project, "RA")
    codings = list_codings(project, source=sid, coder="RA", text=False)
    cid = int(codings["id"].iloc[0])
    s.add_memo("first thought", on="coding", target=cid)
    before = len(list_codings(project, text=False))
    s.remove_coding(cid)
    assert len(list_codings(project, text=False)) == before - 1
    assert "first thought" not in list_memos(project)["text"].tolist()
    s.undo()
    assert len(list_codings(project, text=False)) == before
    assert "first thought" in list_memos(project)["text"].tolist()
    # The coding and its memo came back under new ids (this coding is not the newest, so not even SQLite hands
    # its id out again); undoing the memo and redoing both still find them.
    s.undo()
    assert "first thought" not in list_memos(project)["text"].tolist()
    assert len(list_codings(project, text=False)) == before
    s.redo()
    assert s.current("coding", cid) != cid
    assert [m["text"] for m in memo_records(project, on="coding", target=s.current("coding", cid))] == \
        ["first thought"]
    s.redo()
    assert len(list_codings(project, text=False)) == before - 1
    assert "first thought" not in list_memos(project)["text"].tolist()
    s.undo()
    s.undo()
    assert "first thought" not in list_memos(project)["text"].tolist()
    with pytest.raises(SpRealistError, match="no such coding"):
        s.remove_coding(10**9)


def test_session_errors_leave_nothing_half_written(project):
    sid = _source(project, "S1 DK1 2019-05-28")
    s = Session(project, "RA")
    before = _state(project)
    with pytest.raises(SpRealistError, match="No code named 'Nope'"):
        s.apply_code(Span(sid, 0, 10), "New code", parent="Nope")
    with pytest.raises(SpRealistError, match="relevance 'maybe' is not one of"):
        s.appraise(Span(sid, 0, 10), relevance="maybe")
    with pytest.raises(SpRealistError, match="needs the CMOC it concerns"):
        s.appraise(Span(sid, 0, 10), cmoc_judgement="supports")
    with pytest.raises(SpRealistError, match="No CMOC"):
        s.link(Span(sid, 0, 10), "T9.9")
    with pytest.raises(SpRealistError, match="role 'maybe' is not one of supports, refutes"):
        s.link(Span(sid, 0, 10), "T1.1", "maybe")
    with pytest.raises(SpRealistError, match="A memo needs some text"):
        s.add_memo("  ", on="source", target=sid)
    s.apply_code(Span(sid, 0, 10), "Relatives in the conversation")
    with pytest.raises(SpRealistError, match="already coded this passage"):
        s.apply_code(Span(sid, 0, 10), "Relatives in the conversation")
    s.undo()
    assert _state(project) == before and s.done == []
    with pytest.raises(SpRealistError, match="name the coder"):
        Session(project, " ")


def test_delete_memo_and_appraisal(project):
    from sp_realist.cmoc.appraisal import delete_appraisal, list_appraisals, set_appraisal
    from sp_realist.coding.memos import add_memo, delete_memo

    mid = add_memo(project, "x", on="project")
    assert delete_memo(project, mid)["text"] == "x"
    with pytest.raises(SpRealistError, match=f"No memo {mid}"):
        delete_memo(project, mid)
    sid = _source(project, "S1 DK1 2019-05-28")
    ref = {"source": sid, "span": [0, 10]}
    assert delete_appraisal(project, ref, "RA") is False
    set_appraisal(project, ref, "RA", relevance="relevant")
    set_appraisal(project, ref, "RA", relevance="concept_box")
    assert delete_appraisal(project, ref, "RA") is True
    assert list_appraisals(project).empty
    from sqlalchemy import func, select

    from sp_realist import schema as S

    with project.connect() as conn:
        assert conn.execute(select(func.count()).select_from(S.excerpts)).scalar() == 0  # nothing else used it
        assert conn.execute(select(func.count()).select_from(S.appraisal_history)).scalar() == 0


# --- search and words ------------------------------------------------------------
def test_kwic(project):
    from sp_realist.coding.search import kwic

    df = kwic(project, pattern="induction", context=12)
    assert list(df.columns) == ["source", "attribution", "start", "end", "left", "match", "right", "source_id"]
    assert len(df) >= 2 and set(df["match"].str.lower()) == {"induction"}
    row = df.iloc[0]
    assert row["attribution"] == "S1 DK1" and len(row["left"]) <= 12
    assert kwic(project, pattern="induction", where={"kind": ["interview"]}).empty or \
        set(kwic(project, pattern="induction", where={"kind": ["interview"]})["source"]) == {"s1-manager-interview"}
    assert kwic(project, pattern="client", word=True)["match"].str.lower().eq("client").all()
    assert len(kwic(project, pattern="client", limit=1)) == 1
    with pytest.raises(SpRealistError, match="not a valid regular expression"):
        kwic(project, pattern="(")
    with pytest.raises(SpRealistError, match="matches empty text"):
        kwic(project, pattern="x*")
    with pytest.raises(SpRealistError, match="attribute 'colour': sources have no attribute"):
        kwic(project, pattern="a", where={"colour": "red"})


def test_word_frequencies(project):
    from sp_realist.coding.search import stop_words, word_frequencies

    df = word_frequencies(project)
    assert list(df.columns) == ["word", "count", "sources"]
    words = set(df["word"])
    assert "the" not in words and "and" not in words and "client" in words
    assert not (words & stop_words())
    assert df["count"].is_monotonic_decreasing
    by = word_frequencies(project, by="kind", top=3)
    assert list(by.columns) == ["kind", "word", "count", "sources"]
    assert set(by["kind"]) == {"diary", "interview"} and by.groupby("kind").size().max() <= 3
    with pytest.raises(SpRealistError, match="words --by 'colour'"):
        word_frequencies(project, by="colour")


def test_search_and_words_commands(project, runner, cli):
    path = str(project.location)
    r = runner.invoke(cli, ["-p", path, "search", "induction", "--context", "10", "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "source,attribution,start,end,left,match,right"
    r = runner.invoke(cli, ["-p", path, "search", "(", "--word"])
    assert r.exit_code == 0  # a literal "(" as a word: no hits, not an error
    r = runner.invoke(cli, ["-p", path, "search", "("])
    assert r.exit_code == 1 and "not a valid regular expression" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["-p", path, "search", "x", "--context", "-1"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["-p", path, "words", "--by", "site", "--top", "2", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert '"word"' in r.stdout
    r = runner.invoke(cli, ["-p", path, "words", "--where", "nope=1"])
    assert r.exit_code == 1 and "attribute 'nope'" in r.stderr
    for cmd in ("search", "words", "browse"):
        r = runner.invoke(cli, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output


def test_browse_command_checks_source_and_builds_server(project, runner, cli, monkeypatch):
    path = str(project.location)
    r = runner.invoke(cli, ["-p", path, "browse", "S1 DK9"])
    assert r.exit_code == 1 and "No source named 'S1 DK9'" in r.stderr
    served = []
    from textual_serve.server import Server

    monkeypatch.setattr(Server, "serve", lambda self, debug=False: served.append(self))
    r = runner.invoke(cli, ["-p", path, "browse", "S1 DK1 2019-05-14", "--serve", "--port", "8123", "--coder", "RA"])
    assert r.exit_code == 0, r.output
    (server,) = served
    assert server.port == 8123 and server.host == "localhost"
    assert server.command.endswith(f"-m sp_realist -p {shlex.quote(path)} browse 'S1 DK1 2019-05-14' --coder RA")
    r = runner.invoke(cli, ["-p", path, "browse", "--serve", "--port", "70000"])
    assert r.exit_code == 2


def test_textual_is_not_imported_by_other_commands():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from sp_realist.cli import main; "
            "CliRunner().invoke(main, ['--help']); import sp_realist.browse.reading, sp_realist.browse.session; "
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_serve_without_textual_serve_is_one_sentence(project, runner, cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # as if the [serve] extra were not installed
    r = runner.invoke(cli, ["-p", str(project.location), "browse", "--serve"])
    assert r.exit_code == 1 and "needs textual-serve" in r.stderr and "Traceback" not in r.output


def test_serve_answers_on_loopback(project):
    """browse --serve really serves: started briefly in a subprocess, its page is fetched from localhost."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sp_realist", "-p", str(project.location), "browse", "--serve",
                             "--port", str(port), "--coder", "RA"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/", timeout=2) as r:  # noqa: S310 - loopback
                    page = r.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.3)
        assert page is not None, proc.stderr.read().decode() if proc.poll() is not None else "no answer"
        assert "sp-realist browse" in page
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="ab \n\r", max_size=60), st.integers(0, 60), st.integers(0, 60), st.integers(1, 40))
@example("a\r\nb", 2, 2, 1)
@example("", 0, 0, 1)
@example("ab ab\nab", 3, 3, 2)
def test_text_window_round_trip_as_textual_cuts_lines(text, start, end, size):
    """A window of the text holds the cursor or selection asked for, and maps the rows and columns of its own
    lines (as Textual's Document cuts them) to exact offsets into the whole text."""
    w = reading.text_window(text, start, end, size=size)
    lo, hi = sorted((min(start, len(text)), min(end, len(text))))
    assert 0 <= w.start <= lo <= hi <= w.end <= len(text)
    assert w.size == len(text) and w.whole == (w.start == 0 and w.end == len(text))
    if len(text) <= size:
        assert w.whole
    part = text[w.start:w.end]
    lines = part.splitlines()
    if not part or part.endswith(("\r\n", "\n", "\r")):
        lines.append("")
    assert len(w.line_starts) == len(lines)
    for i in range(w.start, w.end + 1):
        row, col = w.location(i)
        assert col <= len(lines[row]) + 2
        assert w.offset(row, col) == i


def test_update_index_reads_one_source_again_as_the_whole_index_would(project):
    """After each action, updating the one source the action changed gives the index read afresh."""
    sid = _source(project, "S1 DK1 2019-05-28")
    view = reading.load_source(project, source=sid, user="RA")
    span = Span(sid, *reading.unit_span(project, source=sid, offset=view.text.index("whispered"), unit="sentence"))
    s = Session(project, "RA")
    index = reading.source_index(project, user="RA")

    def check(action):
        nonlocal index
        if action.label == "memo":
            assert action.source_id is None
            return
        assert action.source_id == sid
        index = reading.update_index(index, project, source=action.source_id, user="RA")
        fresh = reading.source_index(project, user="RA")
        pd.testing.assert_frame_equal(index.frame, fresh.frame)
        assert index.by_code == fresh.by_code

    check(s.apply_code(span, "Client voice", parent="Relatives in the conversation"))
    assert sid in index.by_code["Client voice"]
    check(s.appraise(span, relevance="relevant"))
    check(s.recode(s.done[0].coding_id, "Self-esteem"))
    assert "Client voice" not in index.by_code
    check(s.remove_coding(s.done[-1].steps[1].coding_id))
    assert s.add_memo("A memo.", on="source", target=sid).source_id is None  # a memo changes no count
    while s.done:
        check(s.undo())

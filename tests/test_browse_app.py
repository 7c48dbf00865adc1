"""The browse interface driven headless with Textual's Pilot, then the store checked through the library;
snapshots (pytest-textual-snapshot) of the main screens at 80x24 and 160x48.

Update the snapshots after an intended change of the interface with
``python -m pytest tests/test_browse_app.py --snapshot-update`` and look at the SVGs before committing.
"""

from __future__ import annotations

import asyncio

import pytest

from browse_helpers import copy_project, make_mini_project
from sp_realist import Project

pytestmark = pytest.mark.sqlite_only(
    "the terminal app's drawing and keys; its store work goes through browse.session, tested on both back"
    " ends in test_browse.py")

pytest.importorskip("textual")
from sp_realist.browse.app import AppraisalForm, BrowseApp, CodeFinder, LinkForm, MemoForm, SearchScreen  # noqa: E402

SENTENCE = "The client whispered that she wanted to feel better about herself first."


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_mini_project(tmp_path_factory.mktemp("browse-app") / "template.sprealist")


@pytest.fixture
def project(template, tmp_path):
    p = Project.open(copy_project(template, tmp_path))
    yield p
    p.close()


async def _to_sentence(pilot, app, sentence=SENTENCE):
    """Put the reader's cursor inside ``sentence`` (lines wrap, so not by counting arrow keys), then select
    the sentence with 's'."""
    view = app.reader.view
    app.reader.cursor_location = view.location(view.text.index(sentence) + 4)
    await pilot.press("right")
    await pilot.press("s")
    await pilot.pause()


def test_read_code_memo_appraise_link_undo_quit(project):
    from sp_realist.cmoc.appraisal import list_appraisals
    from sp_realist.cmoc.cmocs import cmoc_evidence
    from sp_realist.coding.codebook import codebook_tree
    from sp_realist.coding.codings import list_codings
    from sp_realist.coding.memos import list_memos

    async def run():
        app = BrowseApp(project, coder="RA")
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            # pick a source: filter the list, then choose it
            await pilot.press("f", *"05-28", "enter", "enter")
            await pilot.pause()
            assert app.reader.view.name == "S1 DK1 2019-05-28"
            assert app.reader.has_focus
            await _to_sentence(pilot, app)
            view = app.reader.view
            span = app.reader.selected_span()
            assert view.text[span[0]:span[1]] == SENTENCE
            # a new code, under a parent, through the fuzzy finder
            await pilot.press("c")
            assert isinstance(app.screen, CodeFinder)
            await pilot.press(*"Wanting to feel better", "tab", *"Relatives in the conversation", "enter")
            await pilot.pause()
            assert not isinstance(app.screen, CodeFinder), app.screen.query_one("#error").render()
            # a memo on the coding now under the cursor
            await pilot.press("m")
            assert isinstance(app.screen, MemoForm)
            await pilot.press(*"She asks for time alone.", "ctrl+s")
            await pilot.pause()
            # the six steps: a judgement about a CMOC without the CMOC is refused, in the form, nothing written
            await pilot.press("a")
            form = app.screen
            assert isinstance(form, AppraisalForm)
            form.query_one("#relevance").value = "relevant"
            form.query_one("#trust").value = "high"
            form.query_one("#interpretation").value = "mechanism_response"
            form.query_one("#cmoc_judgement").value = "supports"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form
            assert "needs the CMOC it concerns" in str(form.query_one("#error").render())
            assert list_appraisals(project).empty
            form.query_one("#cmoc").focus()
            await pilot.press(*"T2.1", "ctrl+s")
            await pilot.pause()
            assert app.screen is not form
            # link the excerpt to the CMOC as refuting evidence
            await pilot.press("l")
            link = app.screen
            assert isinstance(link, LinkForm)
            link.query_one("#role").value = "refutes"
            await pilot.press(*"T2.1", "ctrl+s")
            await pilot.pause()
            assert app.screen is not link
            assert ((cmoc_evidence(project, "T2.1")["role"] == "refutes").sum()) == 1
            side = str(app.query_one("#at").render())
            assert "Wanting to feel better" in side and "She asks for time alone." in side and "refutes T2.1" in side
            await pilot.press("u")  # undo the link
            await pilot.pause()
            assert "Undid link to T2.1 (refutes)" in str(app.query_one("#status").render())
            await pilot.press("q")
        return span

    span = asyncio.run(run())
    tree = codebook_tree(project).set_index("name")
    assert tree.loc["Wanting to feel better", "parent"] == "Relatives in the conversation"
    mine = list_codings(project, code="Wanting to feel better")
    assert mine[["source", "start", "end", "coder", "text"]].to_dict("records") == [
        {"source": "S1 DK1 2019-05-28", "start": span[0], "end": span[1], "coder": "RA", "text": SENTENCE}]
    memos = list_memos(project, on="coding")
    assert memos["text"].tolist() == ["She asks for time alone."] and memos["author"].tolist() == ["RA"]
    appraisal = list_appraisals(project).iloc[0]
    assert (appraisal["analyst"], appraisal["relevance"], appraisal["trust"], appraisal["cmoc_judgement"],
            appraisal["cmoc"], appraisal["text"]) == ("RA", "relevant", "high", "supports", "T2.1", SENTENCE)
    assert not (cmoc_evidence(project, "T2.1")["role"] == "refutes").any()  # the undone link is gone


def test_remove_recode_next_search_redo(project):
    from sp_realist.coding.codings import list_codings

    async def run():
        app = BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28")
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            await _to_sentence(pilot, app, "Her voice was lost")
            before = len(list_codings(project, text=False))
            await pilot.press("x")
            await pilot.pause()
            assert len(list_codings(project, text=False)) == before - 1
            await pilot.press("u", "y", "u")
            await pilot.pause()
            assert len(list_codings(project, text=False)) == before
            await pilot.press("r", *"Self-esteem", "enter")
            await pilot.pause()
            assert "Self-esteem" in set(list_codings(project, coder="RA", text=False)["code"])
            # jump to the next coding of a code (the one at the cursor, else the last one applied), across sources
            app.last_code = "Induction"
            app.reader.cursor_location = (0, 0)
            induction = list_codings(project, code="Induction", text=False)
            spans = list(zip(induction["source"], induction["start"], induction["end"]))
            await pilot.press("n")
            await pilot.pause()
            assert (app.reader.view.name, *app.reader.selected_span()) == spans[0]
            await pilot.press("n")
            await pilot.pause()
            assert (app.reader.view.name, *app.reader.selected_span()) == spans[1]
            # search across the project and open a hit
            await pilot.press("slash")
            assert isinstance(app.screen, SearchScreen)
            await pilot.press(*"induction", "enter")
            await pilot.pause()
            assert "hits" in str(app.screen.query_one("#error").render())
            await pilot.press("enter")
            await pilot.pause()
            s, e = app.reader.selected_span()
            assert app.reader.view.text[s:e].lower() == "induction"
            await pilot.press("slash", *"(", "enter")
            await pilot.pause()
            assert "not a valid regular expression" in str(app.screen.query_one("#error").render())
            await pilot.press("escape", "q")

    asyncio.run(run())


def test_an_action_updates_only_its_source_row(project, monkeypatch):
    """Coding, undoing and appraising read the changed source's counts again, not the whole index; the list
    shows them, and a filter the change no longer matches drops the row."""
    from sp_realist.browse import reading

    calls = []
    whole = reading.source_index
    monkeypatch.setattr(reading, "source_index", lambda *a, **k: calls.append(1) or whole(*a, **k))

    async def run():
        app = BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28")
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            table = app.query_one("#sources")
            sid = str(app.reader.view.id)
            codings = lambda: int(str(table.get_cell(sid, "codings")))  # noqa: E731
            before = codings()
            await _to_sentence(pilot, app)
            await pilot.press("c", *"Brand new code", "enter")
            await pilot.pause()
            assert codings() == before + 1
            await pilot.press("f", *'code:"Brand new code"', "enter")
            await pilot.pause()
            assert app.shown == [int(sid)]
            await pilot.press("u")  # the coding is gone, and the source leaves the filtered list
            await pilot.pause()
            assert app.shown == [] and table.row_count == 0
            await pilot.press("q")

    asyncio.run(run())
    assert calls == [1]


def test_appraisal_form_by_keyboard_alone(project):
    """The six steps filled with key presses only: tab between fields, enter opens a choice, arrows pick, enter
    takes it; ctrl+s saves."""
    from sp_realist.cmoc.appraisal import list_appraisals

    async def run():
        app = BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28")
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await _to_sentence(pilot, app)
            await pilot.press("a")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, AppraisalForm) and app.focused.id == "relevance"
            await pilot.press("enter", "down", "enter", "tab")                    # 1. relevant
            await pilot.press("enter", "down", "down", "enter", "tab")            # 2. moderate trust,
            await pilot.press(*"The diarist saw it", "tab")                       #    and why
            await pilot.press("enter", "down", "down", "down", "enter", "tab")    # 3. mechanism (response)
            await pilot.press("enter", "down", "down", "enter", "tab")            # 4. supports
            await pilot.press(*"T2.1", "tab")                                     #    the CMOC
            await pilot.press(*"T2", "tab", *"no", "tab", *"Fits as it is", "tab")  # 5. theory, change, note
            await pilot.press(*"Third diary saying so")                          # 6. saturation
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is not form, str(form.query_one("#error").render())
            await pilot.press("q")

    asyncio.run(run())
    row = list_appraisals(project).iloc[0]
    assert (row["analyst"], row["relevance"], row["trust"], row["trust_rationale"], row["interpretation"],
            row["cmoc_judgement"], row["cmoc"], row["theory"], bool(row["theory_change"]), row["theory_note"],
            row["saturation_note"], row["text"]) == (
        "RA", "relevant", "moderate", "The diarist saw it", "mechanism_response", "supports", "T2.1", "T2", False,
        "Fits as it is", "Third diary saying so", SENTENCE)


def test_side_panel_scrolls_by_keyboard(project):
    """Long content at the cursor (here a long memo, in the 7-line panel of a narrow screen) is reachable:
    tab moves to the side panel, and the arrow and end keys scroll it to the last line."""
    async def run():
        app = BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await _to_sentence(pilot, app, "Her voice was lost")
            await pilot.press("m")
            await pilot.pause()
            app.focused.insert("Long memo line. " * 30)  # the memo's text area, typed in at once (keys are slow)
            await pilot.press("ctrl+s")
            await pilot.pause()
            panel = app.query_one("#at")
            assert panel.max_scroll_y > 0 and panel.scroll_y == 0
            await pilot.press("tab")
            assert panel.has_focus
            await pilot.press("down")
            await pilot.pause()
            assert panel.scroll_y == 1
            await pilot.press("end")
            await pilot.pause()
            assert panel.scroll_y == panel.max_scroll_y
            shown = [panel.render_line(y).text for y in range(panel.size.height)]
            assert any(line.startswith("Selected ") for line in shown), shown  # the panel's last line
            await pilot.press("q")

    asyncio.run(run())


def test_long_source_is_read_a_window_at_a_time(project, monkeypatch):
    """With a small window the reader holds part of the source; the window follows the cursor, and
    selections, codings and the cursor keep exact offsets into the whole source."""
    from sp_realist.browse.app import Reader

    monkeypatch.setattr(Reader, "WINDOW", 100)
    monkeypatch.setattr(Reader, "MARGIN", 25)

    async def run():
        app = BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28")
        async with app.run_test(size=(60, 16)) as pilot:
            await pilot.pause()
            reader = app.reader
            view = reader.view
            assert len(view.text) > 3 * 100 and reader.window.start == 0 and reader.window.end < len(view.text)
            assert reader.document.text == view.text[reader.window.start:reader.window.end]
            starts, offsets = set(), []
            for _ in range(12):
                await pilot.press("down")
                await pilot.pause()
                starts.add(reader.window.start)
                offsets.append(reader.offset())
                assert reader.window.start <= reader.offset() <= reader.window.end
                assert reader.offset() == reader.window.offset(*reader.cursor_location)
            assert len(starts) > 2 and offsets == sorted(offsets)  # the window moved along; the cursor only down
            # scrolling (wheel, scroll bar) to the end of the window moves it on, the cursor taken along
            monkeypatch.setattr(Reader, "WINDOW", 200)  # more than the 60x16 screen shows
            reader.move_to(0)
            await pilot.pause()
            assert reader.window.start == 0 and reader.window.end < len(view.text)
            for _ in range(40):
                reader.scroll_to(y=reader.max_scroll_y, animate=False, immediate=True)
                await pilot.pause()
                if reader.window.end == len(view.text):
                    break
            assert reader.window.end == len(view.text)
            assert reader.offset() == reader.window.offset(*reader.cursor_location)
            assert reader.document.text == view.text[reader.window.start:reader.window.end]
            # a sentence far from the start: selected by its offsets into the whole source
            at = view.text.index(SENTENCE)
            reader.move_to(at + 4)
            await pilot.press("s")
            await pilot.pause()
            s, e = reader.selected_span()
            assert view.text[s:e] == SENTENCE
            # every coding inside the window is highlighted exactly over its characters
            w = reader.window
            for m in view.marks:
                if w.start <= m.start and m.end <= w.end:
                    row, col = w.location(m.start)
                    line = reader.document.lines[row]
                    assert any(a == len(line[:col].encode()) for a, _, _ in reader._highlights[row]), m
            await pilot.press("q")

    asyncio.run(run())


# --- snapshots -------------------------------------------------------------------
SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_reader(project, snap_compare, size):
    async def before(pilot):
        await pilot.pause()
        await _to_sentence(pilot, pilot.app, "Her voice was lost")

    assert snap_compare(BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28"), terminal_size=size,
                        run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_code_finder(project, snap_compare, size):
    async def before(pilot):
        await pilot.pause()
        await _to_sentence(pilot, pilot.app)
        await pilot.press("c", *"rel")
        await pilot.pause()

    assert snap_compare(BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28"), terminal_size=size,
                        run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_appraisal_form(project, snap_compare, size):
    async def before(pilot):
        await pilot.pause()
        await _to_sentence(pilot, pilot.app)
        await pilot.press("a")
        await pilot.pause()

    assert snap_compare(BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28"), terminal_size=size,
                        run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_search(project, snap_compare, size):
    async def before(pilot):
        await pilot.pause()
        await pilot.press("slash", *"client", "enter")
        await pilot.pause()

    assert snap_compare(BrowseApp(project, coder="RA", source="S1 DK1 2019-05-28"), terminal_size=size,
                        run_before=before)


def test_docs_key_map_and_screenshots_match_the_app():
    """docs/browse.md lists every key of the app, and its screenshots are the snapshot tests' SVGs."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "browse.md").read_text(encoding="utf-8")
    shown = {"slash": "/"}
    for binding in BrowseApp.BINDINGS:
        assert f"`{shown.get(binding.key, binding.key)}`" in doc, binding.key
    snapshots = root / "tests" / "__snapshots__" / "test_browse_app"
    for image, snapshot in (("browse-reader.svg", "test_snapshot_reader[160x48].svg"),
                            ("browse-reader-80x24.svg", "test_snapshot_reader[80x24].svg"),
                            ("browse-code-finder.svg", "test_snapshot_code_finder[160x48].svg"),
                            ("browse-appraisal-form.svg", "test_snapshot_appraisal_form[160x48].svg"),
                            ("browse-search.svg", "test_snapshot_search[160x48].svg")):
        assert f"images/{image}" in doc
        assert (root / "docs" / "images" / image).read_bytes() == (snapshots / snapshot).read_bytes(), (
            f"docs/images/{image} is not the current snapshot; copy {snapshot} over it")

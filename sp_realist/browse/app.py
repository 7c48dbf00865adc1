"""The Textual interface of ``sp-realist browse`` (imported only by that command).

Layout: the source list (with its filter line) on the left, the reader in the middle, what is at the
cursor on the right, the key map in the footer.  The reader is Textual's ``TextArea`` (read only), which
draws only the lines on screen; it holds a window of a long source at a time (:class:`Reader`), so a
50,000-word source opens at once; codings are drawn through its highlight map.  Every action goes through :class:`sp_realist.browse.session.Session` (the library), and
every error is the library's one sentence, shown where the action was asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.fuzzy import Matcher
from textual.geometry import Offset, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import (Checkbox, DataTable, Footer, Header, Input, Label, OptionList, Select, Static,
                             TextArea)
from textual.widgets.text_area import Selection, TextAreaTheme
from textual.widgets.option_list import Option

from ..errors import SpRealistError
from ..store import Project
from . import reading
from .session import Action, Session, Span

THEME = "sp-realist"
SOURCE_COLUMNS = ("name", "kind", "site", "codings", "unappraised")


def _styles() -> dict[str, Style]:
    """Highlight names -> styles: a colour per code (black text on its Okabe-Ito colour, underlined) and, where
    codings overlap, the colours inverted (bold text in the innermost coding's colour on black, underlined), so
    an overlap shows without telling colours apart; speaker labels and headings bold."""
    out = {"label": Style(bold=True), "heading": Style(bold=True, italic=True)}
    for i, colour in enumerate(reading.OKABE_ITO):
        out[f"c{i}"] = Style(color="black", bgcolor=colour, underline=True)
        out[f"o{i}"] = Style(color=colour, bgcolor="black", underline=True, bold=True)
    return out


class Reader(TextArea):
    """The source text, read only, with codings, speaker labels and headings highlighted.

    A long source is held a window at a time (:func:`reading.text_window`, about 24,000 characters):
    Textual's ``TextArea`` wraps every line it holds whenever the text is loaded or the width changes, which
    for a 50,000-word source took most of a second.  The window moves when the cursor comes near its edge
    (or the view is scrolled there), keeping the cursor's place on screen; every position the reader hands
    out (:meth:`offset`, :meth:`selected_span`) or takes (:meth:`move_to`, :meth:`select_span`) is an
    offset into the whole source, through :class:`reading.TextWindow`.
    """

    view: reading.SourceView | None = None
    window: reading.TextWindow | None = None
    #: Characters held at once, and how close (characters) the cursor may come to an edge of the window that
    #: is not the source's before the window moves.
    WINDOW = reading.WINDOW
    MARGIN = 2_000

    def show(self, view: reading.SourceView, at: int = 0, end: int | None = None) -> None:
        """Show ``view`` with the cursor at ``at`` (or ``at``..``end`` selected)."""
        self.view = view
        self._load_window(reading.text_window(view.text, at, end, size=self.WINDOW))
        if end is None:
            self.move_to(at)
        else:
            self.select_span(at, end)

    _loading = False

    def _load_window(self, window: reading.TextWindow) -> None:
        self.window = window
        self._loading = True
        try:
            self.load_text(self.view.text[window.start:window.end])  # builds the highlight map (below)
        finally:
            self._loading = False
        self.border_subtitle = None if window.whole else \
            f"characters {window.start:,}-{window.end:,} of {window.size:,}"

    def _build_highlight_map(self) -> None:
        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        view, window = self.view, self.window
        if view is None or window is None:
            return
        lines = self.document.lines

        def add(start: int, end: int, name: str) -> None:
            if end <= window.start or start >= window.end:
                return
            (r0, c0), (r1, c1) = window.location(start), window.location(end)
            for row in range(r0, min(r1, len(lines) - 1) + 1):
                line = lines[row]
                a = c0 if row == r0 else 0
                b = c1 if row == r1 else len(line)
                if b > a:
                    highlights[row].append((len(line[:a].encode()), len(line[:b].encode()), name))

        for start, end, kind, speaker, _section in view.segments:
            if kind == "heading":
                add(start, end, "heading")
            elif speaker and view.text.startswith(speaker, start):
                add(start, start + len(speaker), "label")
        index = {c: i for i, c in enumerate(reading.OKABE_ITO)}
        for start, end, marks in reading.layers(view.marks):
            inner = min(marks, key=lambda m: (m.end - m.start, m.id))
            add(start, end, f"{'o' if len(marks) > 1 else 'c'}{index.get(inner.colour, 0)}")

    def redraw(self, view: reading.SourceView) -> None:
        """The same source after a change of its codings, memos or appraisals: new highlights; the text, the
        cursor, the selection and the scroll position stay."""
        self.view = view
        self._build_highlight_map()
        self.refresh()

    def _span_of_selection(self) -> tuple[int, int]:
        """(anchor, cursor) as offsets into the source."""
        w = self.window
        return w.offset(*self.selection.start), w.offset(*self.selection.end)

    def offset(self) -> int:
        """The character offset of the cursor, or of the selection's start when there is one."""
        if self.view is None:
            return 0
        return min(self._span_of_selection())

    def selected_span(self) -> tuple[int, int] | None:
        if self.view is None:
            return None
        s, e = sorted(self._span_of_selection())
        return (s, e) if e > s else None

    def select_span(self, start: int, end: int) -> None:
        """Select ``start``..``end`` (offsets into the source), moving the window to hold it if need be."""
        if not (self.window.contains(start) and self.window.contains(end)):
            self._load_window(reading.text_window(self.view.text, start, end, size=self.WINDOW))
        self.selection = Selection(self.window.location(start), self.window.location(end))

    def move_to(self, offset: int) -> None:
        """Put the cursor at ``offset`` (into the source)."""
        self.select_span(offset, offset)

    def keep_in_window(self) -> bool:
        """Move the window when the cursor is near an edge of it that is not the source's (the cursor stays
        where it is on screen); True when it moved."""
        w = self.window
        if self.view is None or w is None or w.whole:
            return False
        anchor, cursor = self._span_of_selection()
        if (w.start == 0 or cursor - w.start > self.MARGIN) and (w.end == w.size or w.end - cursor > self.MARGIN):
            return False
        self._rewindow(anchor, cursor, cursor)
        return True

    def _rewindow(self, anchor: int, cursor: int, around: int) -> None:
        """Load the window around ``around`` (holding ``anchor``..``cursor``), keeping the line at the top of
        the view at the top."""
        top = self.window.offset(*self.wrapped_document.offset_to_location(Offset(0, int(self.scroll_y))))
        lo, hi = min(anchor, cursor, around), max(anchor, cursor, around)
        window = reading.text_window(self.view.text, lo, hi, size=self.WINDOW)
        if (window.start, window.end) == (self.window.start, self.window.end):
            return
        self._load_window(window)
        self.selection = Selection(self.window.location(anchor), self.window.location(cursor))
        y = self.wrapped_document.location_to_offset(self.window.location(top)).y
        self.scroll_to(y=y, animate=False, force=True, immediate=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Scrolled (wheel, scroll bar) near an edge of the window, away from the cursor: move the window,
        taking the cursor along to the middle of the view when nothing is selected."""
        super().watch_scroll_y(old_value, new_value)
        y = new_value
        w = self.window
        if self.view is None or w is None or w.whole or self._loading or not self.is_mounted or not self.size.height:
            return
        near_top = w.start > 0 and y < self.size.height
        near_bottom = w.end < w.size and y > self.max_scroll_y - self.size.height
        if not (near_top or near_bottom):
            return
        middle = self.window.offset(*self.wrapped_document.offset_to_location(
            Offset(0, int(y) + self.size.height // 2)))
        cursor_y = self.wrapped_document.location_to_offset(self.cursor_location).y
        if y <= cursor_y < y + self.size.height:  # the cursor moved the view: keep_in_window moves the window
            return
        anchor, cursor = self._span_of_selection()
        if anchor == cursor:
            anchor = cursor = middle
        self._rewindow(anchor, cursor, middle)


class Panel(Widget):
    """Text that changes without changing its size (the status line): updating it repaints
    only itself, not the whole screen's layout (a 2,000-row source list repaints slowly)."""

    def __init__(self, *, id: str):  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._text = Text()

    def render(self) -> Text:
        return self._text

    def update(self, text: Text | str) -> None:
        self._text = text if isinstance(text, Text) else Text(text)
        self.refresh()


class SidePanel(ScrollView, can_focus=True):
    """What is at the cursor (codes, memos, appraisals): scrolls when it is longer than the panel (tab to
    it, then the arrow, page, home and end keys, or the mouse wheel).  Its lines are drawn on demand
    (Textual's line API) and its size never changes, so an update repaints only the panel, not the whole
    screen's layout (a 2,000-row source list repaints slowly)."""

    def __init__(self, *, id: str):  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._text = Text()
        self._lines: list[Strip] = []

    def update(self, text: Text | str) -> None:
        self._text = text if isinstance(text, Text) else Text(text)
        self._layout_lines()

    def _layout_lines(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0 or not self.is_mounted:
            self._lines = []
            return
        console = self.app.console
        lines = console.render_lines(self._text, console.options.update_width(width), pad=False)
        self._lines = [Strip(line) for line in lines]
        size = Size(width, len(self._lines))
        if size != self.virtual_size:
            self.virtual_size = size
        self.refresh()

    def on_resize(self) -> None:
        self._layout_lines()

    def render(self) -> Text:
        return self._text  # what the panel shows, as text (its lines are drawn by render_line)

    def render_line(self, y: int) -> Strip:
        i = y + int(self.scroll_y)
        width = self.scrollable_content_region.width
        if 0 <= i < len(self._lines):
            return self._lines[i].crop_extend(0, width, self.rich_style).apply_style(self.rich_style)
        return Strip.blank(width, self.rich_style)


class Form(ModalScreen[None]):
    """A modal form: ``submit(values)`` returns None when done, else the one-sentence error to show."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    AUTO_FOCUS = "Input, TextArea, Select"
    DEFAULT_CSS = """
    Form { align: center middle; }
    Form > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%; border: thick $accent;
                      background: $surface; padding: 0 1; }
    Form .error { color: $error; text-style: bold; }
    Form TextArea { height: 6; }
    """

    def __init__(self, title: str, submit: Callable[[dict], str | None]):
        super().__init__()
        self.form_title = title
        self.submit = submit

    def fields(self) -> ComposeResult:  # pragma: no cover - every form defines its fields
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.form_title, classes="title")
            with VerticalScroll():
                yield from self.fields()
            yield Static("", id="error", classes="error")
            yield Label("ctrl+s save · escape cancel")

    def values(self) -> dict:
        out = {}
        for w in self.query("Input, Select, TextArea, Checkbox"):
            if not w.id:
                continue
            if isinstance(w, TextArea):
                out[w.id] = w.text
            elif isinstance(w, Select):
                out[w.id] = "" if w.value is Select.NULL else w.value
            else:
                out[w.id] = w.value
        return out

    def action_save(self) -> None:
        error = self.submit(self.values())
        if error:
            self.query_one("#error", Static).update(error)
        else:
            self.dismiss(None)

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)


class MemoForm(Form):
    def fields(self):
        yield Label("Title (optional)")
        yield Input(id="title")
        yield Label("Memo")
        yield TextArea(id="text")

    def on_mount(self) -> None:
        self.query_one("#text", TextArea).focus()


class LinkForm(Form):
    def __init__(self, title, submit, cmocs: list[str]):
        super().__init__(title, submit)
        self.cmocs = cmocs

    def fields(self):
        yield Label("CMOC")
        yield Input(id="cmoc", suggester=SuggestFromList(self.cmocs, case_sensitive=False))
        yield Label("The excerpt is evidence that")
        yield Select([("supports it", "supports"), ("refutes it", "refutes")], id="role", value="supports",
                     allow_blank=False)


class AppraisalForm(Form):
    def __init__(self, title, submit, cmocs: list[str], current: dict | None):
        super().__init__(title, submit)
        self.cmocs = cmocs
        self.current = current or {}

    def fields(self):
        from ..cmoc._common import CMOC_JUDGEMENTS, INTERPRETATIONS, RELEVANCE, TRUST

        def select(name, choices, label):
            value = self.current.get(name)
            yield Label(label)
            yield Select([(c.replace("_", " "), c) for c in choices], id=name,
                         value=value if value in choices else Select.NULL)

        def text(name, label, suggest=None):
            value = self.current.get(name)
            yield Label(label)
            yield Input(value="" if value is None or value != value else str(value), id=name,
                        suggester=SuggestFromList(suggest, case_sensitive=False) if suggest else None)

        yield from select("relevance", RELEVANCE, "1. Relevance")
        yield from select("trust", TRUST, "2. Trustworthiness")
        yield from text("trust_rationale", "   why")
        yield from select("interpretation", INTERPRETATIONS, "3. Interpretation (C, M or O)")
        yield from select("cmoc_judgement", CMOC_JUDGEMENTS, "4. Judgement about a CMOC")
        yield from text("cmoc", "   CMOC", self.cmocs)
        yield from text("theory", "5. Programme theory")
        yield from text("theory_change", "   must it change? (yes/no)")
        yield from text("theory_note", "   note")
        yield from text("saturation_note", "6. Saturation note")


class CodeFinder(ModalScreen[None]):
    """Type to find a code (fuzzy); enter applies the highlighted one, or creates the typed name under the
    parent given."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "move(1)", show=False),
                Binding("up", "move(-1)", show=False)]
    DEFAULT_CSS = """
    CodeFinder { align: center middle; }
    CodeFinder > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%; border: thick $accent;
                            background: $surface; padding: 0 1; }
    CodeFinder OptionList { height: auto; max-height: 12; }
    CodeFinder .error { color: $error; text-style: bold; }
    """

    def __init__(self, title: str, names: list[str], submit: Callable[[str, str | None], str | None]):
        super().__init__()
        self.finder_title = title
        self.names = names
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.finder_title)
            yield Input(placeholder="code name (fuzzy)", id="query")
            yield OptionList(id="matches")
            yield Label("Parent for a new code (optional)")
            yield Input(id="parent", suggester=SuggestFromList(self.names, case_sensitive=False))
            yield Static("", id="error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#matches", OptionList).can_focus = False  # up/down move it from the query line; tab: parent
        self._fill("")
        self.query_one("#query", Input).focus()

    def _fill(self, query: str) -> None:
        options = self.query_one("#matches", OptionList)
        options.clear_options()
        query = query.strip()
        ranked = self.names
        if query:
            matcher = Matcher(query)
            scored = [(matcher.match(n), n) for n in self.names]
            ranked = [n for s, n in sorted(scored, key=lambda x: (-x[0], x[1])) if s > 0]
        items = [Option(n, id=f"code:{n}") for n in ranked[:50]]
        if query and query.lower() not in {n.lower() for n in self.names}:
            items.insert(0, Option(f"+ new code {query!r}", id=f"new:{query}"))
        options.add_options(items)
        if items:
            options.highlighted = 0

    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def action_move(self, step: int) -> None:
        options = self.query_one("#matches", OptionList)
        if options.option_count:
            options.highlighted = ((options.highlighted or 0) + step) % options.option_count

    @on(Input.Submitted)
    @on(OptionList.OptionSelected)
    def _choose(self) -> None:
        options = self.query_one("#matches", OptionList)
        if options.highlighted is None:
            self.query_one("#error", Static).update("Type a code name first.")
            return
        option_id = options.get_option_at_index(options.highlighted).id
        name = option_id.split(":", 1)[1]
        parent = self.query_one("#parent", Input).value.strip() or None
        error = self.submit(name, parent if option_id.startswith("new:") else None)
        if error:
            self.query_one("#error", Static).update(error)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SearchScreen(ModalScreen[None]):
    """Regex or word search across the project: keyword-in-context lines; enter opens the hit."""

    BINDINGS = [Binding("escape", "cancel", "Close")]
    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    SearchScreen > Vertical { width: 95%; height: 90%; border: thick $accent; background: $surface; }
    SearchScreen .error { color: $error; text-style: bold; }
    SearchScreen DataTable { height: 1fr; }
    SearchScreen .bar { height: auto; }
    SearchScreen .bar Input { width: 1fr; }
    SearchScreen .bar Checkbox { width: auto; }
    """

    def __init__(self, project: Project, open_hit: Callable[[int, int, int], None]):
        super().__init__()
        self.project = project
        self.open_hit = open_hit
        self.hits = None

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(classes="bar"):
                yield Input(placeholder="regular expression, or words with 'whole word' ticked", id="pattern")
                yield Checkbox("whole word", id="word")
            yield Static("", id="error", classes="error")
            yield DataTable(id="hits", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#hits", DataTable).add_columns("who", "left", "match", "right", "source")
        self.query_one("#pattern", Input).focus()

    @on(Input.Submitted, "#pattern")
    def _search(self, event: Input.Submitted) -> None:
        from ..coding.search import kwic

        table = self.query_one("#hits", DataTable)
        table.clear()
        try:
            self.hits = kwic(self.project, pattern=event.value, word=self.query_one("#word", Checkbox).value,
                             context=30, limit=2000)
        except SpRealistError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.query_one("#error", Static).update(f"{len(self.hits)} hits")
        for i, r in enumerate(self.hits.itertuples(index=False)):
            table.add_row(Text(str(r.attribution)), Text(r.left, justify="right"), Text(r.match, style="bold reverse"),
                          Text(r.right), Text(r.source), key=str(i))
        if len(self.hits):
            table.focus()

    @on(DataTable.RowSelected, "#hits")
    def _open(self, event: DataTable.RowSelected) -> None:
        r = self.hits.iloc[int(event.row_key.value)]
        self.dismiss(None)
        self.open_hit(int(r["source_id"]), int(r["start"]), int(r["end"]))

    def action_cancel(self) -> None:
        self.dismiss(None)


class BrowseApp(App):
    """``sp-realist browse``: read sources and code them from the keyboard."""

    TITLE = "sp-realist browse"
    CSS = """
    #sources-pane { width: 34; }
    #sources { height: 1fr; }
    #work { layout: horizontal; }
    #reader { width: 1fr; }
    #at { width: 38; height: 1fr; border-left: solid $primary; padding: 0 1; overflow-x: hidden; overflow-y: auto; }
    #status { height: 1; background: $panel; }
    Screen.-narrow #sources-pane { width: 24; }
    Screen.-narrow #work { layout: vertical; }
    Screen.-narrow #reader { height: 1fr; }
    Screen.-narrow #at { width: 1fr; height: 7; border-left: none; border-top: solid $primary; }
    """
    #: Below 120 columns the side panel goes under the reader and the source list narrows.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("s", "select('sentence')", "Sentence"),
        Binding("p", "select('segment')", "Segment"),
        Binding("d", "select('section')", "Section"),
        Binding("c", "code", "Code"),
        Binding("r", "recode", "Recode"),
        Binding("x", "remove", "Remove"),
        Binding("m", "memo", "Memo"),
        Binding("a", "appraise", "Appraise"),
        Binding("l", "link", "Link CMOC"),
        Binding("n", "next(False)", "Next coding"),
        Binding("N", "next(True)", "Previous", show=False),
        Binding("slash", "search", "Search"),
        Binding("f", "filter", "Filter"),
        Binding("u", "undo", "Undo"),
        Binding("y", "redo", "Redo"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, project: Project, *, coder: str, source: str | None = None):
        super().__init__()
        self.project = project
        self.session = Session(project, coder)
        self.coder = coder
        self.start_source = source
        self.index: reading.SourceIndex | None = None
        self.shown: list[int] = []
        self.last_code: str | None = None
        self._fills = 0

    # --- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sources-pane"):
                yield Input(placeholder="filter: kind:diary site:S1 code:NAME unappraised words", id="filter")
                yield DataTable(id="sources", cursor_type="row", zebra_stripes=True)
            with Container(id="work"):
                yield Reader(id="reader", read_only=True, show_cursor=True, soft_wrap=True)
                yield SidePanel(id="at")
        yield Panel(id="status")
        yield Footer()

    def on_mount(self) -> None:
        reader = self.query_one(Reader)
        reader.register_theme(TextAreaTheme(THEME, syntax_styles=_styles()))
        reader.theme = THEME
        self.sub_title = f"{Path(str(self.project.location)).name} · coder {self.coder}"
        table = self.query_one("#sources", DataTable)
        for column in SOURCE_COLUMNS:
            table.add_column(column, key=column)
        # The source list (every source's counts: half a second for 2,000 sources) is read after the first
        # paint, so the screen (and the source asked for) shows at once.
        self.status("Reading the source list...")
        error = None
        if self.start_source is not None:
            try:
                with self.project.connect() as conn:
                    from ..sources import resolve_source

                    self.open_source(resolve_source(conn, self.start_source)["id"])
            except SpRealistError as exc:
                error = str(exc)
                self.status(error)
        self.reader.focus()
        self.call_after_refresh(self._load_list, error)

    def _load_list(self, error: str | None = None) -> None:
        self.refresh_index()
        if self.reader.view is None and self.start_source is None and self.shown:
            self.open_source(self.shown[0])
        if error:
            self.status(error)

    def status(self, text: str) -> None:
        self.query_one("#status", Panel).update(Text(text))

    # --- the source list ---------------------------------------------------------
    def refresh_index(self) -> None:
        self.index = reading.source_index(self.project, user=self.coder)
        self.apply_filter(self.query_one("#filter", Input).value)

    def apply_filter(self, text: str) -> None:
        if self.index is None:  # typed before the list was read: the list is filtered when it is
            return
        try:
            filters = reading.parse_filter(text)
            df = reading.filter_index(self.index, **filters)
        except SpRealistError as exc:
            self.status(str(exc))
            return
        table = self.query_one("#sources", DataTable)
        table.clear()
        self.shown = df["id"].tolist()
        rows = [(str(r.id), (Text(r.name), Text(r.kind), Text(r.site if isinstance(r.site, str) else ""),
                             Text(str(r.codings)), Text(str(r.unappraised))))
                for r in df.itertuples(index=False)]
        self._fills += 1
        self._fill_rows(self._fills, rows, 0)
        self.status(f"{len(df)} of {len(self.index.frame)} sources")

    #: Rows added to the source list per screen refresh: the first ones paint at once, the rest follow.
    FILL_CHUNK = 200

    def _fill_rows(self, fill: int, rows: list, start: int) -> None:
        if fill != self._fills:  # a newer filter replaced this list
            return
        table = self.query_one("#sources", DataTable)
        for key, cells in rows[start:start + self.FILL_CHUNK]:
            table.add_row(*cells, key=key)
        if start + self.FILL_CHUNK < len(rows):
            self.call_after_refresh(self._fill_rows, fill, rows, start + self.FILL_CHUNK)
        elif not self._frozen:
            self.call_after_refresh(self._freeze)

    _frozen = False

    def _freeze(self) -> None:
        """Once the list is filled, move what the app keeps for its lifetime (the index, the list's rows,
        Textual's widgets) out of the garbage collector's way (``gc.freeze``): the collector's full passes over
        those objects took most of the time to open a 50,000-word source (0.2 s of work with them, 0.07 s without)."""
        import gc

        self._frozen = True
        gc.freeze()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#sources", DataTable).focus()

    @on(DataTable.RowSelected, "#sources")
    def _pick(self, event: DataTable.RowSelected) -> None:
        self.open_source(int(event.row_key.value))
        self.query_one(Reader).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    # --- the reader ----------------------------------------------------------------
    @property
    def reader(self) -> Reader:
        return self.query_one(Reader)

    def open_source(self, source_id: int, at: int | None = None, keep_cursor: bool = False) -> None:
        reader = self.reader
        view = reading.load_source(self.project, source=source_id, user=self.coder)
        if keep_cursor and reader.view is not None and reader.view.id == view.id:
            reader.redraw(view)
        else:
            reader.show(view, at or 0)
        reader.border_title = view.name
        self.update_side()

    def reload(self, action: Action | None = None) -> None:
        """After ``action``: the source in the reader (its highlights; cursor, selection and scroll kept), its
        side panel, and the counts of the one source ``action`` changed in the source list
        (:func:`reading.update_index`); the whole list is read again only when that source's row comes into
        or goes out of the filter."""
        if self.reader.view is not None:
            self.open_source(self.reader.view.id, keep_cursor=True)
        if action is not None and action.source_id is not None and self.index is not None:
            self.index = reading.update_index(self.index, self.project, source=action.source_id, user=self.coder)
            self.update_row(action.source_id)

    def update_row(self, source_id: int) -> None:
        """Show the index's counts of ``source_id`` in its row of the list, or filter the list again when the
        change takes the source into or out of it."""
        try:
            df = reading.filter_index(self.index, **reading.parse_filter(self.query_one("#filter", Input).value))
        except SpRealistError:
            return
        shown = source_id in set(df["id"].tolist())
        if shown != (source_id in self.shown):
            self.apply_filter(self.query_one("#filter", Input).value)
            return
        if not shown:
            return
        r = df[df["id"] == source_id].iloc[0]
        table = self.query_one("#sources", DataTable)
        key = str(source_id)
        if key not in table.rows:  # not added yet (the list is still being filled): the fill uses old counts
            self.apply_filter(self.query_one("#filter", Input).value)
            return
        for column in ("codings", "unappraised"):
            table.update_cell(key, column, Text(str(r[column])))

    @on(TextArea.SelectionChanged, "#reader")
    def _moved(self) -> None:
        if not self.reader.keep_in_window():  # moving the window changes the selection again: one update then
            self.update_side()

    def update_side(self) -> None:
        reader = self.reader
        view = reader.view
        if view is None:
            return
        here = view.at(reader.offset())
        out = Text()
        out.append(f"{view.name}\n", style="bold")
        if here["speaker"] or here["section"]:
            out.append(" · ".join(x for x in (here["speaker"], here["section"]) if x) + "\n")
        out.append("\nCodes\n", style="bold underline")
        for m in here["marks"]:
            out.append(f" {m.marker} ", style=Style(color="black", bgcolor=m.colour))
            out.append(f" {m.code}  ({m.coder}, {m.origin})\n")
        if not here["marks"]:
            out.append(" none\n", style="dim")
        out.append("\nMemos\n", style="bold underline")
        memos = [(m.code, m.memo) for m in here["marks"] if m.memo] + [(x["author"], x["text"]) for x in here["memos"]]
        for who, text in memos:
            out.append(f" {who}: ", style="italic")
            out.append(f"{text}\n")
        if not memos:
            out.append(" none\n", style="dim")
        out.append("\nAppraisals\n", style="bold underline")
        for a in here["appraisals"]:
            steps = ", ".join(str(a[k]) for k in ("relevance", "trust", "interpretation", "cmoc_judgement", "cmoc")
                              if isinstance(a.get(k), str) and a.get(k))
            out.append(f" {a['analyst']}: {steps}\n")
        for e in here["evidence"]:
            out.append(f" {e['role']} {e['cmoc']}" + (f" ({e['component']})" if e["component"] else "") + "\n")
        if not here["appraisals"] and not here["evidence"]:
            out.append(" none\n", style="dim")
        span = reader.selected_span()
        if span:
            out.append(f"\nSelected {span[0]}:{span[1]} ({span[1] - span[0]} characters)\n", style="dim")
        self.query_one("#at", SidePanel).update(out)

    def _span(self) -> Span | None:
        view = self.reader.view
        span = self.reader.selected_span()
        if view is None or span is None:
            self.status("Select a passage first: s sentence, p segment, d section, or shift+arrows.")
            return None
        return Span(view.id, *span)

    def _marks_here(self):
        view = self.reader.view
        if view is None:
            return []
        return view.at(self.reader.offset())["marks"]

    def _run(self, what: Callable[[], Action], done: str) -> str | None:
        """Do one session action; its error (one sentence) is returned for the form to show."""
        try:
            action = what()
        except SpRealistError as exc:
            return str(exc)
        self.reload(action)
        self.status(done)
        return None

    # --- actions -----------------------------------------------------------------
    def action_select(self, unit: str) -> None:
        view = self.reader.view
        if view is None:
            return
        try:
            start, end = reading.unit_span(self.project, source=view.id, offset=self.reader.offset(), unit=unit)
        except SpRealistError as exc:
            self.status(str(exc))
            return
        self.reader.select_span(start, end)
        self.status(f"Selected the {unit} {start}:{end}.")

    def _code_names(self) -> list[str]:
        from ..coding.codebook import codebook_tree

        return codebook_tree(self.project)["name"].tolist()

    def action_code(self) -> None:
        span = self._span()
        if span is None:
            return

        def submit(name: str, parent: str | None) -> str | None:
            self.last_code = name
            return self._run(lambda: self.session.apply_code(span, name, parent), f"Coded {span.start}:{span.end} "
                             f"with {name!r}.")

        self.push_screen(CodeFinder(f"Code {span.start}:{span.end} with", self._code_names(), submit))

    def action_recode(self) -> None:
        marks = self._marks_here()
        if not marks:
            self.status("No coding at the cursor to recode.")
            return
        mark = marks[-1]

        def submit(name: str, parent: str | None) -> str | None:
            return self._run(lambda: self.session.recode(mark.id, name, parent), f"Recoded {mark.code!r} to {name!r}.")

        self.push_screen(CodeFinder(f"Recode {mark.code!r} as", self._code_names(), submit))

    def action_remove(self) -> None:
        marks = self._marks_here()
        if not marks:
            self.status("No coding at the cursor to remove.")
            return
        mark = marks[-1]
        error = self._run(lambda: self.session.remove_coding(mark.id), f"Removed {mark.code!r} (u undoes it).")
        if error:
            self.status(error)

    def action_memo(self) -> None:
        view = self.reader.view
        if view is None:
            return
        marks = self._marks_here()
        on_, target, what = ("coding", marks[-1].id, f"the coding {marks[-1].code!r}") if marks else \
            ("source", view.id, f"the source {view.name!r}")

        def submit(values: dict) -> str | None:
            return self._run(lambda: self.session.add_memo(values["text"], on=on_, target=target,
                                                           title=values["title"].strip() or None),
                             f"Memo written on {what}.")

        self.push_screen(MemoForm(f"Memo on {what}", submit))

    def _cmoc_keys(self) -> list[str]:
        from ..cmoc.cmocs import list_cmocs

        df = list_cmocs(self.project)
        return df["key"].tolist() if "key" in df.columns else []

    def action_appraise(self) -> None:
        span = self._span()
        if span is None:
            return
        current = next((a for a in self.reader.view.appraisals if a["start"] == span.start and a["end"] == span.end
                        and a["analyst"] == self.coder), None)

        def submit(values: dict) -> str | None:
            steps = {k: v for k, v in values.items() if v not in ("", None) or (current and current.get(k))}
            return self._run(lambda: self.session.appraise(span, **steps), f"Appraised {span.start}:{span.end}.")

        self.push_screen(AppraisalForm(f"Appraise {span.start}:{span.end} (six steps)", submit, self._cmoc_keys(),
                                       current))

    def action_link(self) -> None:
        span = self._span()
        if span is None:
            return

        def submit(values: dict) -> str | None:
            return self._run(lambda: self.session.link(span, values["cmoc"].strip(), values["role"]),
                             f"Linked {span.start}:{span.end} to {values['cmoc'].strip()} ({values['role']}).")

        self.push_screen(LinkForm(f"Link {span.start}:{span.end} to a CMOC", submit, self._cmoc_keys()))

    def action_next(self, backwards: bool) -> None:
        view = self.reader.view
        if view is None:
            return
        marks = self._marks_here()
        here = [m.code for m in marks]
        code = self.last_code if self.last_code and (not here or self.last_code in here) else \
            (here[-1] if here else None)
        if not code:
            self.status("Put the cursor on a coding (or apply a code) to jump between its codings.")
            return
        try:
            hit = reading.next_coding(self.project, code=code, user=self.coder, source=view.id,
                                      offset=self.reader.offset(), backwards=backwards)
        except SpRealistError as exc:
            self.status(str(exc))
            return
        if hit is None:
            self.status(f"No codings of {code!r}.")
            return
        self.last_code = code
        self.open_hit(*hit)

    def open_hit(self, source_id: int, start: int, end: int) -> None:
        if self.reader.view is None or self.reader.view.id != source_id:
            self.open_source(source_id)
        self.reader.select_span(start, end)
        self.reader.focus()

    def action_search(self) -> None:
        self.push_screen(SearchScreen(self.project, self.open_hit))

    def action_undo(self) -> None:
        try:
            action = self.session.undo()
        except SpRealistError as exc:
            self.status(str(exc))
            return
        if action is None:
            self.status("Nothing to undo.")
            return
        self.reload(action)
        self.status(f"Undid {action.label}.")

    def action_redo(self) -> None:
        try:
            action = self.session.redo()
        except SpRealistError as exc:
            self.status(str(exc))
            return
        if action is None:
            self.status("Nothing to redo.")
            return
        self.reload(action)
        self.status(f"Redid {action.label}.")

"""Render query results (pandas DataFrames) for people and for scripts.

The library returns DataFrames; the CLI calls :func:`render` with the user's
``--format``.  ``table`` is a rich table for a terminal and tab-separated text
(:func:`to_plain`) when stdout is a pipe or a file; ``json``, ``csv`` and ``md``
are for scripts and documents; ``xlsx`` needs an output file.  User text is
never read as rich markup.
"""

from __future__ import annotations

import io
import json
import math
from typing import IO, Any

import pandas as pd

from .formats import FORMATS, FORMATS_XLSX  # noqa: E402,F401 - re-exported


def _cell(value: Any) -> Any:
    """A JSON-friendly value (NaN -> None, numpy scalars -> Python)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (AttributeError, ValueError):  # pragma: no cover - defensive
            return value
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def to_records(df: pd.DataFrame) -> list[dict]:
    return [{str(k): _cell(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def to_json(df: pd.DataFrame) -> str:
    return json.dumps(to_records(df), ensure_ascii=False, indent=2, default=str) + "\n"


def _md_escape(value: Any) -> str:
    value = _cell(value)
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def _plain_cell(value: Any) -> str:
    """A cell for tab-separated text: PostgreSQL ``COPY`` text escapes (backslash, tab, newline, CR)."""
    value = _cell(value)
    if value is None:
        return ""
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def to_plain(df: pd.DataFrame) -> str:
    """Tab-separated text, one line per row after a header line: what ``--format table`` writes when
    stdout is not a terminal (a pipe, a file), so that no word is ever split over lines."""
    lines = ["\t".join(_plain_cell(c) for c in df.columns)]
    lines.extend("\t".join(_plain_cell(v) for v in row) for row in df.itertuples(index=False))
    return "\n".join(lines) + "\n"


def _text(value: Any):
    """A rich ``Text`` (never parsed as markup: "[hidden]", "[red]Alarm" and "[/x]" are data)."""
    from rich.text import Text

    value = _cell(value)
    return Text("" if value is None else str(value))


#: Words longer than this (cells) may be folded in a terminal table rather than widen their column further.
_LONGEST_WORD = 40
#: Border and padding of a rich table: 3 cells per column plus the closing border.
_FRAME = 3


def _widths(df: pd.DataFrame) -> tuple[list[int], list[int]]:
    """Each column's narrowest width that splits neither its header nor (up to 40 cells) any word in it,
    and its natural width (the longest line of its header and cells)."""
    from rich.cells import cell_len

    mins, natural = [], []
    for col in df.columns:
        low = high = cell_len(str(col))
        for v in df[col].tolist():
            v = _cell(v)
            if v is None:
                continue
            text = str(v)
            low = max(low, min(_LONGEST_WORD, max((cell_len(w) for w in text.split()), default=0)))
            high = max(high, max((cell_len(line) for line in text.splitlines()), default=0))
        mins.append(low)
        natural.append(max(low, high))
    return mins, natural


def _fit(mins: list[int], natural: list[int], room: int) -> list[int]:
    """Column widths from ``mins`` up to ``natural``, sharing ``room`` extra cells in proportion to need."""
    widths = list(mins)
    while room > 0:
        need = [n - w for w, n in zip(widths, natural)]
        total = sum(need)
        if total <= 0:
            break
        if total <= room:
            return list(natural)
        grant = [need_i * room // total for need_i in need]
        if not any(grant):  # hand out the remainder one cell at a time, neediest first
            for i in sorted(range(len(need)), key=lambda i: -need[i])[:room]:
                grant[i] = 1 if need[i] > 0 else 0
        widths = [w + g for w, g in zip(widths, grant)]
        room -= sum(grant)
    return widths


def rich_table(df: pd.DataFrame, title: str | None = None, width: int | None = None):
    """A rich renderable for a terminal ``width`` columns wide (any width if None).

    Columns are never narrower than their header or their longest word (up to 40 cells), so cells wrap
    at word boundaries and headers stay whole.  When those widths do not fit in ``width``, each row
    becomes a block of "column  value" lines instead (as ``psql``'s expanded display).
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table

    mins, natural = _widths(df)
    room = None if width is None else width - sum(mins) - _FRAME * len(mins) - 1
    if room is None or room >= 0 or len(df.columns) < 2:
        widths = natural if room is None else _fit(mins, natural, max(room, 0))
        table = Table(title=_text(title) if title else None, show_lines=False, header_style="bold")
        for col, w in zip(df.columns, widths):
            table.add_column(_text(col), width=w, overflow="fold")
        for row in df.itertuples(index=False):
            table.add_row(*[_text(v) for v in row])
        return table
    from rich.cells import cell_len

    head_width = max(cell_len(str(c)) for c in df.columns)
    blocks = [_text(title)] if title else []
    for n, row in enumerate(df.itertuples(index=False), 1):
        block = Table(box=box.SIMPLE_HEAD, show_header=True, header_style="bold", expand=False)
        block.add_column(_text(f"#{n}"), min_width=head_width, no_wrap=True, style="bold")
        block.add_column(_text(""), overflow="fold")
        for col, v in zip(df.columns, row):
            block.add_row(_text(col), _text(v))
        blocks.append(block)
    return Group(*blocks)


def stdout_is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (stdout by default) is a terminal, as rich sees it: a rich table if so,
    tab-separated text if not (a pipe, a file, a test runner)."""
    import sys

    from rich.console import Console

    return Console(file=stream or sys.stdout).is_terminal


def render(df: pd.DataFrame, fmt: str = "table", stream: IO[str] | None = None,
           title: str | None = None, output: str | None = None) -> None:
    """Write ``df`` in ``fmt`` to ``stream`` (stdout by default) or to ``output``."""
    import sys

    if fmt == "xlsx":
        if not output:
            from .errors import SpRealistError

            raise SpRealistError("--format xlsx writes a file; add --output FILE.xlsx.")
        df.to_excel(output, index=False)
        return
    if fmt == "table":
        # A terminal gets a rich table; a pipe or a file gets tab-separated text (see to_plain).
        from rich.console import Console

        if output:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                fh.write(to_plain(df))
            return
        stream = stream or sys.stdout
        console = Console(file=stream, highlight=False)
        if not stdout_is_terminal(stream):
            stream.write(to_plain(df))
        elif df.empty:
            from rich.text import Text

            console.print(Text(f"{title + ': ' if title else ''}nothing to show", style="dim"))
        else:
            console.print(rich_table(df, title, width=console.width))
        return
    text = {"json": to_json, "csv": to_csv, "md": to_markdown}[fmt](df)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        (stream or sys.stdout).write(text)

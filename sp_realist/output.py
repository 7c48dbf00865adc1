"""Render query results (pandas DataFrames, or :class:`~sp_realist.rows.Rows`) for people and for scripts.

The library returns DataFrames; the CLI calls :func:`render` with the user's
``--format``.  ``table`` is a rich table for a terminal and tab-separated text
(:func:`to_plain`) when stdout is a pipe or a file; ``json``, ``csv`` and ``md``
are for scripts and documents; ``xlsx`` needs an output file.  User text is
never read as rich markup.

Every format but xlsx is written as the rows come (streamed: csv and json a chunk of 1,000 rows at a time,
md and tab-separated text a row at a time), and a terminal shows at most
:data:`TERMINAL_ROWS` rows followed by a line saying how many there are and how to get them all.  This
module imports pandas only when it is handed a DataFrame (it never is for ``Rows``).
"""

from __future__ import annotations

import io
import json
import math
import sys
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator

from .formats import FORMATS, FORMATS_XLSX  # noqa: E402,F401 - re-exported
from .rows import Rows

if TYPE_CHECKING:
    import pandas as pd

#: A table with more rows than this is cut to its first rows on a terminal (pipes and files get them all).
TERMINAL_ROWS = 200
#: DataFrame rows converted at a time for streamed json (and written at a time for csv).
_CHUNK = 1000


def _is_frame(table) -> bool:
    return hasattr(table, "itertuples")


def _rows(table) -> Iterator[tuple]:
    """The rows of a DataFrame or a ``Rows`` as tuples of cells, in column order."""
    if _is_frame(table):
        return table.itertuples(index=False, name=None)
    return iter(table.rows)


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
    pd = sys.modules.get("pandas")  # pandas' missing values can only come from a loaded pandas
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return None
    return value


def iter_records(table) -> Iterator[dict]:
    """Each row as a JSON-friendly dict, one at a time."""
    if _is_frame(table):
        for start in range(0, len(table), _CHUNK):
            for row in table.iloc[start:start + _CHUNK].to_dict(orient="records"):
                yield {str(k): _cell(v) for k, v in row.items()}
        return
    columns = [str(c) for c in table.columns]
    for row in table.rows:
        yield dict(zip(columns, (_cell(v) for v in row)))


def to_records(df) -> list[dict]:
    return list(iter_records(df))


def write_json(table, stream: IO[str]) -> None:
    """A JSON array of one object per row, written a chunk of rows at a time (the same text as ``json.dumps``
    of the whole list with ``indent=2``)."""
    records = iter_records(table)
    first = True
    stream.write("[")
    while True:
        chunk = [r for _, r in zip(range(_CHUNK), records)]
        if not chunk:
            break
        text = json.dumps(chunk, ensure_ascii=False, indent=2, default=str)  # "[\n  {...},\n  {...}\n]"
        stream.write(("\n" if first else ",\n") + text[2:-2])
        first = False
    stream.write("]\n" if first else "\n]\n")


def _written(write: Callable[[Any, IO[str]], None], table) -> str:
    """What ``write`` writes of ``table``, as one string (the ``to_*`` forms of the ``write_*`` functions)."""
    buf = io.StringIO()
    write(table, buf)
    return buf.getvalue()


def to_json(df) -> str:
    return _written(write_json, df)


def _md_escape(value: Any) -> str:
    value = _cell(value)
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def write_markdown(table, stream: IO[str]) -> None:
    """A GitHub-flavoured Markdown table (no extra dependency), a row at a time."""
    cols = [str(c) for c in table.columns]
    stream.write("| " + " | ".join(_md_escape(c) for c in cols) + " |\n" + "|" + "|".join(" --- " for _ in cols)
                 + "|\n")
    for row in _rows(table):
        stream.write("| " + " | ".join(_md_escape(v) for v in row) + " |\n")


def to_markdown(df) -> str:
    return _written(write_markdown, df)


def write_csv(table, stream: IO[str]) -> None:
    """CSV (``\\n`` line ends), a chunk of rows at a time: pandas' writer for a DataFrame, the csv module's
    (the one pandas uses) for ``Rows``."""
    if _is_frame(table):
        table.to_csv(stream, index=False, lineterminator="\n", chunksize=_CHUNK)
        return
    import csv

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])


def to_csv(df) -> str:
    return _written(write_csv, df)


def _plain_cell(value: Any) -> str:
    """A cell for tab-separated text: PostgreSQL ``COPY`` text escapes (backslash, tab, newline, CR)."""
    value = _cell(value)
    if value is None:
        return ""
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def write_plain(table, stream: IO[str]) -> None:
    """Tab-separated text, one line per row after a header line: what ``--format table`` writes when
    stdout is not a terminal (a pipe, a file), so that no word is ever split over lines."""
    stream.write("\t".join(_plain_cell(c) for c in table.columns) + "\n")
    for row in _rows(table):
        stream.write("\t".join(_plain_cell(v) for v in row) + "\n")


def to_plain(df) -> str:
    buf = io.StringIO()
    write_plain(df, buf)
    return buf.getvalue()


def _text(value: Any):
    """A rich ``Text`` (never parsed as markup: "[hidden]", "[red]Alarm" and "[/x]" are data)."""
    from rich.text import Text

    value = _cell(value)
    return Text("" if value is None else str(value))


#: Words longer than this (cells) may be folded in a terminal table rather than widen their column further.
_LONGEST_WORD = 40
#: Border and padding of a rich table: 3 cells per column plus the closing border.
_FRAME = 3


def _widths(columns: list, rows: list[tuple]) -> tuple[list[int], list[int]]:
    """Each column's narrowest width that splits neither its header nor (up to 40 cells) any word in it,
    and its natural width (the longest line of its header and cells)."""
    from rich.cells import cell_len

    mins, natural = [], []
    for i, col in enumerate(columns):
        low = high = cell_len(str(col))
        for row in rows:
            v = _cell(row[i])
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


def rich_table(df, title: str | None = None, width: int | None = None):
    """A rich renderable of ``df`` (a DataFrame or ``Rows``) for a terminal ``width`` columns wide (any width
    if None).

    Columns are never narrower than their header or their longest word (up to 40 cells), so cells wrap
    at word boundaries and headers stay whole.  When those widths do not fit in ``width``, each row
    becomes a block of "column  value" lines instead (as ``psql``'s expanded display).
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table

    columns, rows = list(df.columns), list(_rows(df))
    mins, natural = _widths(columns, rows)
    room = None if width is None else width - sum(mins) - _FRAME * len(mins) - 1
    if room is None or room >= 0 or len(columns) < 2:
        widths = natural if room is None else _fit(mins, natural, max(room, 0))
        table = Table(title=_text(title) if title else None, show_lines=False, header_style="bold")
        for col, w in zip(columns, widths):
            table.add_column(_text(col), width=w, overflow="fold")
        for row in rows:
            table.add_row(*[_text(v) for v in row])
        return table
    from rich.cells import cell_len

    head_width = max(cell_len(str(c)) for c in columns)
    blocks = [_text(title)] if title else []
    for n, row in enumerate(rows, 1):
        block = Table(box=box.SIMPLE_HEAD, show_header=True, header_style="bold", expand=False)
        block.add_column(_text(f"#{n}"), min_width=head_width, no_wrap=True, style="bold")
        block.add_column(_text(""), overflow="fold")
        for col, v in zip(columns, row):
            block.add_row(_text(col), _text(v))
        blocks.append(block)
    return Group(*blocks)


def stdout_is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (stdout by default) is a terminal, as rich sees it: a rich table if so,
    tab-separated text if not (a pipe, a file, a test runner)."""
    from rich.console import Console

    return Console(file=stream or sys.stdout).is_terminal


def _head(table, n: int) -> tuple[list[tuple], int]:
    """The first ``n`` rows of ``table`` and how many rows it has."""
    if _is_frame(table):
        return list(table.head(n).itertuples(index=False, name=None)), len(table)
    rows = iter(table.rows)
    head = [row for _, row in zip(range(n), rows)]
    return head, len(head) + sum(1 for _ in rows)


def too_many_rows(shown: int, total: int) -> str:
    """The line under a terminal table cut to its first ``shown`` of ``total`` rows."""
    return (f"Showing the first {shown:,} of {total:,} rows; for all of them write a file with "
            "--format csv -o FILE (or --format json -o FILE).")


def _terminal(table, stream: IO[str], title: str | None) -> None:
    """A rich table of at most :data:`TERMINAL_ROWS` rows, then a line saying how to get the rest."""
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    head, total = _head(table, TERMINAL_ROWS)
    if not total:
        console.print(Text(f"{title + ': ' if title else ''}nothing to show", style="dim"))
        return
    console.print(rich_table(Rows(list(table.columns), head), title, width=console.width))
    if total > len(head):
        console.print(Text(too_many_rows(len(head), total), style="dim"))


_WRITERS = {"table": write_plain, "json": write_json, "csv": write_csv, "md": write_markdown}


def render(df, fmt: str = "table", stream: IO[str] | None = None,
           title: str | None = None, output: str | None = None) -> None:
    """Write ``df`` (a DataFrame or ``Rows``) in ``fmt`` to ``stream`` (stdout by default) or to ``output``,
    row by row.  ``table`` is a rich table on a terminal (the first :data:`TERMINAL_ROWS` rows) and
    tab-separated text anywhere else (:func:`write_plain`)."""
    if fmt == "xlsx":
        if not output:
            from .errors import SpRealistError

            raise SpRealistError("--format xlsx writes a file; add --output FILE.xlsx.")
        (df if _is_frame(df) else df.frame()).to_excel(output, index=False)
        return
    write = _WRITERS[fmt]
    if output:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            write(df, fh)
        return
    stream = stream or sys.stdout
    if fmt == "table" and stdout_is_terminal(stream):
        _terminal(df, stream, title)
    else:
        write(df, stream)

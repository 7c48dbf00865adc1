"""Render query results (pandas DataFrames) for people and for scripts.

The library returns DataFrames; the CLI calls :func:`render` with the user's
``--format``.  ``table`` is a rich table for a terminal; ``json``, ``csv`` and
``md`` are for scripts and documents; ``xlsx`` needs an output file.
"""

from __future__ import annotations

import io
import json
import math
from typing import IO, Any

import pandas as pd

FORMATS = ("table", "json", "csv", "md")
FORMATS_XLSX = FORMATS + ("xlsx",)


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


def rich_table(df: pd.DataFrame, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold")
    for col in df.columns:
        table.add_column(str(col), overflow="fold")
    for row in df.itertuples(index=False):
        # Text(): cell values are data, never rich markup ("[hidden]", "[GP surgery]").
        table.add_row(*[Text("" if _cell(v) is None else str(_cell(v))) for v in row])
    return table


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
        from rich.console import Console

        if output:
            with open(output, "w", encoding="utf-8") as fh:
                Console(file=fh, width=200).print(rich_table(df, title))
            return
        console = Console(file=stream or sys.stdout)
        if df.empty:
            console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]")
        else:
            console.print(rich_table(df, title))
        return
    text = {"json": to_json, "csv": to_csv, "md": to_markdown}[fmt](df)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        (stream or sys.stdout).write(text)

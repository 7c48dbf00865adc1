"""Markdown and HTML writers (Jinja2 templates) and CSV export of report tables.

Templates are looked up first in the override folders given (a study's
``templates/`` folder, the ``report.templates`` project setting), then in
``sp_realist/templates``; copy ``report.md.j2`` or ``report.html.j2`` there to
change a report's layout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from markupsafe import Markup, escape

from ..errors import SpRealistError
from ..output import to_csv
from .model import ReportModel, Table, id_ranges


def template_environment(template_dirs: Iterable = ()):
    """The sandboxed Jinja2 environment (:func:`sp_realist.templating.sandboxed_environment`) that prefers
    templates in ``template_dirs`` (folders, or a mapping of templates stored in the project)."""
    from collections.abc import Mapping

    from jinja2 import select_autoescape

    from ..templating import sandboxed_environment

    dirs = [d if isinstance(d, Mapping) else str(d) for d in template_dirs if d]
    for d in dirs:
        if not isinstance(d, Mapping) and not Path(d).is_dir():
            raise SpRealistError(f"{d}: the template folder does not exist; create it or fix the setting.")
    br = lambda v: Markup("<br>".join(str(escape(x)) for x in str("" if v is None else v).split("\n")))  # noqa: E731
    env = sandboxed_environment(dirs, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                autoescape=select_autoescape(enabled_extensions=("html.j2", "html"),
                                                             default_for_string=False),
                                filters={"ids": lambda ids: id_ranges(list(ids or [])), "anchor": anchor,
                                         "md": md_cell, "br": br})
    _narrative_filters(env)
    return env


def _narrative_filters(env) -> None:
    """``narrative_md(offset)`` / ``narrative_html(offset)``: an author's Markdown section, headings moved down."""
    from .narrative import markdown_to_html, shift_markdown_headings

    env.filters["narrative_md"] = lambda text, offset=0: shift_markdown_headings(str(text), int(offset))
    env.filters["narrative_html"] = lambda text, offset=0: Markup(markdown_to_html(str(text), int(offset)))


def anchor(text: str) -> str:
    """A GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", str(text).strip().lower())
    return text.replace(" ", "-")


def md_cell(value) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _render(model: ReportModel, name: str, template_dirs, **extra) -> str:
    from jinja2 import TemplateError

    from ..templating import render

    env = template_environment(template_dirs)
    html = name.endswith(".html.j2")

    def mark(ref):
        """A footnote reference under provenance 'footnotes'; nothing otherwise (no ids in the body)."""
        if ref is None or model.provenance != "footnotes":
            return ""
        return Markup(f'<sup class="fn"><a href="#fn{ref}" id="fnref{ref}">{ref}</a></sup>') if html else f"[^{ref}]"

    def qmark(q):
        """A quote's number under provenance 'appendix' ([Q3], linked to its row in HTML), else its footnote."""
        if q.number is None:
            return mark(q.ref)
        return Markup(f' <a class="qno" href="#q{q.number}">[Q{q.number}]</a>') if html else f" [Q{q.number}]"

    def mdtable(t: Table) -> str:
        lines = ["| " + " | ".join(md_cell(c) for c in t.columns) + " |",
                 "|" + "|".join(" --- " for _ in t.columns) + "|"]
        for row, ref in zip(t.rows, t.refs or [None] * len(t.rows)):
            cells = [md_cell(c) for c in row]
            if cells:
                cells[0] += mark(ref)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    env.filters["mdtable"] = mdtable
    try:
        template = env.get_template(name)
        return render(template, r=model, mark=mark, qmark=qmark, **extra)
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        line = getattr(exc, "lineno", None)
        raise SpRealistError(
            f"{where}{':' + str(line) if line else ''}: the report template failed ({exc}); fix the template."
        ) from None


def render_markdown(model: ReportModel, template_dirs=(), figure_path: str | None = None) -> str:
    text = _render(model, "report.md.j2", template_dirs, figure_path=figure_path)
    return _tidy_blank_lines(text)


def render_html(model: ReportModel, template_dirs=()) -> str:
    svg = None
    if model.figure is not None and model.figure.svg:
        svg = Markup(_inline_svg(model.figure.svg))
    return _render(model, "report.html.j2", template_dirs, svg=svg)


def _inline_svg(svg: str) -> str:
    """SVG text without its XML declaration and DOCTYPE, ready to sit inside HTML."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, flags=re.S)
    return svg.strip()


def _tidy_blank_lines(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def export_tables(model: ReportModel, folder: str | os.PathLike) -> list[Path]:
    """Write every table of the report as ``<folder>/<key>.csv``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in model.tables():
        path = folder / f"{table.key}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(to_csv(table.frame()))
        paths.append(path)
    return paths


def export_extra_tables(project, model: ReportModel, folder: str | os.PathLike) -> list[Path]:
    """The report's non-tabular findings as CSV too: if/then statements and themes with their quotes."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    statements = pd.DataFrame([[t.key, s.key, s.text] for t in model.theories for s in t.statements],
                              columns=["theory", "cmoc", "statement"])
    theme_rows = []
    for th in model.themes:
        base = [th.name, th.level, th.phase, "; ".join(th.codes), th.codings, th.sources]
        for q in th.quotes:
            theme_rows.append(base + [q.text, q.attribution, q.source, q.start, q.end, q.excerpt_id, q.coding_id])
        if not th.quotes:
            theme_rows.append(base + [None] * 7)
    themes = pd.DataFrame(theme_rows, columns=["theme", "level", "phase", "codes", "codings", "sources", "quote",
                                               "attribution", "source", "start", "end", "excerpt_id", "coding_id"])
    evidence = pd.DataFrame([[t.key, q.label, q.role, q.text, q.attribution, q.source, q.start, q.end, q.excerpt_id]
                             for t in model.theories for q in t.evidence],
                            columns=["theory", "cmoc", "role", "quote", "attribution", "source", "start", "end",
                                     "excerpt_id"])
    paths = []
    for name, df in (("ifthen_statements", statements), ("theme_quotes", themes), ("cmoc_evidence_quotes", evidence)):
        path = folder / f"{name}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(to_csv(df))
        paths.append(path)
    return paths


__all__ = ["template_environment", "render_markdown", "render_html", "export_tables", "export_extra_tables", "anchor",
           "md_cell"]

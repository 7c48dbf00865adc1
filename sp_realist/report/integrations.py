"""Where the report takes other areas' results: if/then statements, CMOC cells, saturation verdicts,
the triangulation matrix and the programme-theory figure.

Each function calls the realist-analysis library's public functions (:mod:`sp_realist.cmoc`), which
return typed records (:class:`~sp_realist.cmoc.ifthen.IfThenStatement`,
:class:`~sp_realist.cmoc.ifthen.CmocCells`, :class:`~sp_realist.cmoc.saturation.SaturationVerdict`), so
the report says exactly what ``sp-realist ifthen``, ``cmoc table``, ``saturation``, ``graph`` and
``triangulate`` say, with one implementation of each.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..cmoc import graph as cmoc_graph
from ..cmoc.ifthen import CmocCells, cmoc_cells as cmoc_cell_records, ifthen_records
from ..cmoc.saturation import SaturationVerdict, saturation_verdicts
from ..cmoc.triangulate import triangulation as cmoc_triangulation
from ..store import Project

if TYPE_CHECKING:  # pragma: no cover
    from .model import Figure, Table


def ifthen(project: Project) -> dict[str, str]:
    """CMOC key -> its if/then statement (``sp-realist ifthen``)."""
    return {r.cmoc: r.statement for r in ifthen_records(project)}


def cmoc_cells(project: Project) -> dict[str, CmocCells]:
    """CMOC key -> its three report cells, as ``sp-realist cmoc table`` shows them."""
    return {r.cmoc: r for r in cmoc_cell_records(project)}


def saturation(project: Project) -> dict[str, SaturationVerdict]:
    """CMOC key -> its verdict under the project's saturation rule (``sp-realist saturation``)."""
    return {v.cmoc: v for v in saturation_verdicts(project) if v.level == "cmoc"}


def triangulation(project: Project, questions: dict[str, str]) -> "Table | None":
    """Evaluation questions against data sources (``sp-realist triangulate --view matrix``); None when empty.

    The matrix is a table by nature (one column per data source), so it is read as the DataFrame
    :func:`sp_realist.cmoc.triangulate.triangulation` documents: question, text, then the sources."""
    from .model import Table

    df = cmoc_triangulation(project, questions or None)
    if df.empty:
        return None
    df = df.fillna("").rename(columns={"question": "Question", "text": "Question text"})
    return Table(key="triangulation", caption="Triangulation of evidence against the evaluation questions",
                 columns=[str(c) for c in df.columns],
                 rows=[[_cell(v) for v in row] for row in df.itertuples(index=False)])


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _natural(s: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


FIGURE_CAPTION = "Programme theory: mid-range theories and their CMOCs"


def figure(project: Project) -> "Figure | None":
    """The programme-theory figure (``sp-realist graph``), rendered as PNG or SVG on first use."""
    import tempfile
    from pathlib import Path

    from .model import Figure

    G = cmoc_graph.programme_graph(project)
    if G.number_of_nodes() == 0:
        return None

    def render(fmt: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"figure.{fmt}"
            _render_deterministic(cmoc_graph.render_graph, G, path)
            return path.read_bytes()

    return Figure(key="programme_theory", caption=FIGURE_CAPTION, renderer=render)


def write_graph_files(project: Project, model, folder) -> list:
    """``programme-theory.png``, ``.svg`` and ``.graphml`` in ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    png, svg, graphml = (folder / f"programme-theory.{ext}" for ext in ("png", "svg", "graphml"))
    G = cmoc_graph.programme_graph(project)
    if G.number_of_nodes() == 0:
        return []
    if model is not None and model.figure is not None and model.figure.png and model.figure.svg:
        png.write_bytes(model.figure.png)  # the report's figure was drawn from this same graph
        svg.write_text(model.figure.svg, encoding="utf-8")
    else:
        _render_deterministic(cmoc_graph.render_graph, G, png)
        _render_deterministic(cmoc_graph.render_graph, G, svg)
    cmoc_graph.export_graph(G, graphml, "graphml")
    return [png, svg, graphml]


#: Matplotlib settings that make figures reproducible and keep SVG text as text
#: (searchable, and visible to the leak audit).
DETERMINISTIC_RC = {"svg.hashsalt": "sp-realist", "svg.fonttype": "none"}


def _render_deterministic(render, G, path) -> None:
    """Call ``render(G, path)`` with reproducible settings; strip the SVG's date metadata."""
    import matplotlib
    from pathlib import Path

    with matplotlib.rc_context(DETERMINISTIC_RC):
        render(G, path)
    path = Path(path)
    if path.suffix.lower() == ".svg":
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S), encoding="utf-8")

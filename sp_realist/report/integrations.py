"""Where the report takes other areas' results: if/then statements, the
programme-theory figure and the triangulation table.

Each function calls the realist-analysis library (:mod:`sp_realist.cmoc`),
so the report says exactly what ``sp-realist ifthen``, ``graph`` and
``triangulate`` say.  When that library is not importable (a partial install)
the report falls back to the plain rendering documented in docs/reports.md.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import select

from .. import schema as S
from ..store import Project

if TYPE_CHECKING:  # pragma: no cover
    from .model import Figure, Table, _Data


def _lower_first(text: str) -> str:
    from .model import lower_first

    return lower_first(text)


def fallback_statement(row: dict) -> str:
    """``If <context> then <mechanism>, resulting in <outcome>.``"""
    from .model import context_resource

    context = _lower_first(context_resource(row.get("context"), row.get("mechanism_resource")))
    mech = _lower_first(row.get("mechanism_response") or "")
    outcome = _lower_first(row.get("outcome") or "")
    parts = [f"If {context}" if context else "If the context holds"]
    if mech:
        parts.append(f"then {mech}")
    text = " ".join(parts)
    if outcome:
        text += f", resulting in {outcome}"
    return text + "."


def ifthen(project: Project, d: "_Data") -> dict[str, str]:
    """CMOC key -> its if/then statement."""
    try:
        from ..cmoc.ifthen import ifthen_statements
    except ImportError:
        ifthen_statements = None
    if ifthen_statements is not None:
        df = ifthen_statements(project)
        key_col = next((c for c in ("cmoc", "key", "CMOC") if c in df.columns), None)
        text_col = next((c for c in ("statement", "text", "if/then", "If/then") if c in df.columns), None)
        if key_col and text_col:
            return {str(k): str(v) for k, v in zip(df[key_col], df[text_col])}
    rows = d.conn.execute(select(S.cmocs)).mappings().all()
    return {r["key"]: fallback_statement(dict(r)) for r in rows}


def cmoc_cells(project: Project) -> dict[str, tuple[str, str, str]]:
    """CMOC key -> its three report cells, as ``sp-realist cmoc table`` shows them."""
    try:
        from ..cmoc.ifthen import cmoc_table
    except ImportError:
        return {}
    df = cmoc_table(project)
    return {str(k): tuple("" if v is None else str(v) for v in row) for k, row in zip(df.index, df.itertuples(index=False))}


def saturation(project: Project) -> dict[str, dict]:
    """CMOC key -> the row of ``sp-realist saturation`` (counts, saturated, reason); {} without the module."""
    try:
        from ..cmoc.saturation import saturation_table
    except ImportError:
        return {}
    df = saturation_table(project, level="cmoc")
    return {str(r["cmoc"]): r for r in df.to_dict(orient="records")}


def triangulation(project: Project, d: "_Data", questions: dict[str, str]) -> "Table | None":
    """Evaluation questions against theories, CMOCs, sites and diary keepers."""
    from .model import Table

    try:
        from ..cmoc.triangulate import triangulation as cmoc_triangulation
    except ImportError:
        cmoc_triangulation = None
    if cmoc_triangulation is not None:
        df = cmoc_triangulation(project, questions or None)
        if df is not None and not df.empty:
            df = df.fillna("").rename(columns={"question": "Question", "text": "Question text"})
            return Table(key="triangulation", caption="Triangulation of evidence against the evaluation questions",
                         columns=[str(c) for c in df.columns],
                         rows=[[_cell(v) for v in row] for row in df.itertuples(index=False)])
    import json

    theories = d.conn.execute(select(S.theories).order_by(S.theories.c.ord, S.theories.c.id)).mappings().all()
    if not theories:
        return None
    tc = defaultdict(list)
    for tid, cid in d.conn.execute(select(S.theory_cmocs.c.theory_id, S.theory_cmocs.c.cmoc_id)):
        tc[tid].append(cid)
    ev = S.cmoc_evidence
    x = S.excerpts
    evidence = defaultdict(list)
    for cid, sid, start in d.conn.execute(select(ev.c.cmoc_id, x.c.source_id, x.c.start)
                                          .select_from(ev.join(x, ev.c.excerpt_id == x.c.id))):
        evidence[cid].append((sid, start))
    by_q: dict[str, list] = defaultdict(list)
    for t in theories:
        try:
            qs = json.loads(t["questions"]) if t["questions"] else []
        except ValueError:
            qs = []
        for q in qs:
            by_q[str(q)].append(t)
    keys = list(questions) + sorted(set(by_q) - set(questions), key=_natural)
    if not keys:
        return None
    rows = []
    for q in keys:
        ts = by_q.get(q, [])
        cids = [c for t in ts for c in tc[t["id"]]]
        items = [e for c in cids for e in evidence[c]]
        sites = sorted({d.site(sid) for sid, _ in items} - {None})
        people = sorted({d.attribution_at(sid, st) for sid, st in items})
        text = questions.get(q, "")
        text = text.get("text", "") if isinstance(text, dict) else text
        rows.append([q, text, ", ".join(t["key"] for t in ts), str(len(cids)), str(len(items)),
                     ", ".join(sites), ", ".join(people)])
    return Table(key="triangulation", caption="Triangulation of evidence against the evaluation questions",
                 columns=["Question", "Text", "Theories", "CMOCs", "Evidence excerpts", "Sites", "Participants"],
                 rows=rows)


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
    """The programme-theory figure as PNG bytes and SVG text (deterministic)."""
    from .model import Figure

    try:
        from ..cmoc import graph as cmoc_graph
    except ImportError:
        cmoc_graph = None
    if cmoc_graph is not None and hasattr(cmoc_graph, "programme_graph") and hasattr(cmoc_graph, "render_graph"):
        import tempfile
        from pathlib import Path

        G = cmoc_graph.programme_graph(project)
        if G.number_of_nodes() == 0:
            return None

        def render(fmt: str) -> bytes:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"figure.{fmt}"
                _render_deterministic(cmoc_graph.render_graph, G, path)
                return path.read_bytes()

        return Figure(key="programme_theory", caption=FIGURE_CAPTION, renderer=render)
    return _fallback_figure(project)


def _fallback_graph(project: Project):
    """Theories -> their CMOCs, plus CMOC relations, as a networkx DiGraph with positions."""
    import networkx as nx

    with project.connect() as conn:
        theories = conn.execute(select(S.theories.c.id, S.theories.c.key, S.theories.c.title)
                                .order_by(S.theories.c.ord, S.theories.c.id)).all()
        cmocs = {r[0]: r[1] for r in conn.execute(select(S.cmocs.c.id, S.cmocs.c.key))}
        links = conn.execute(select(S.theory_cmocs.c.theory_id, S.theory_cmocs.c.cmoc_id)
                             .order_by(S.theory_cmocs.c.theory_id, S.theory_cmocs.c.ord)).all()
        rels = conn.execute(select(S.cmoc_relations.c.from_id, S.cmoc_relations.c.to_id, S.cmoc_relations.c.kind)
                            .order_by(S.cmoc_relations.c.id)).all()
    G = nx.DiGraph()
    pos = {}
    for i, (tid, key, title) in enumerate(theories):
        G.add_node(key, kind="theory", label=title)
        pos[key] = (i * 3.0, 1.0)
        members = [cmocs[c] for t, c in links if t == tid]
        for j, ck in enumerate(members):
            G.add_node(ck, kind="cmoc", label=ck)
            G.add_edge(key, ck, kind="has")
            pos[ck] = (i * 3.0 + (j - (len(members) - 1) / 2) * 0.9, 0.0 - (j % 2) * 0.35)
    for a, b, kind in rels:
        if cmocs.get(a) in G and cmocs.get(b) in G:
            G.add_edge(cmocs[a], cmocs[b], kind=kind)
    return G, pos


def _fallback_figure(project: Project) -> "Figure | None":
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from .model import Figure

    G, pos = _fallback_graph(project)
    if G.number_of_nodes() == 0:
        return None
    n_theories = sum(1 for _n, k in G.nodes(data="kind") if k == "theory")
    width = max(6.0, 2.2 * n_theories)
    fig, ax = plt.subplots(figsize=(width, 3.6))
    theory_nodes = [n for n, k in G.nodes(data="kind") if k == "theory"]
    cmoc_nodes = [n for n, k in G.nodes(data="kind") if k == "cmoc"]
    nx.draw_networkx_nodes(G, pos, nodelist=theory_nodes, node_color="#9ecae1", node_size=1400, ax=ax)
    nx.draw_networkx_nodes(G, pos, nodelist=cmoc_nodes, node_color="#fdd0a2", node_size=700, ax=ax)
    nx.draw_networkx_edges(G, pos, edgelist=[(a, b) for a, b, k in G.edges(data="kind") if k == "has"],
                           arrows=False, edge_color="#999999", ax=ax)
    other = [(a, b) for a, b, k in G.edges(data="kind") if k != "has"]
    if other:
        nx.draw_networkx_edges(G, pos, edgelist=other, style="dashed", edge_color="#d62728",
                               connectionstyle="arc3,rad=0.3", ax=ax)
    nx.draw_networkx_labels(G, pos, font_size=8, ax=ax)
    ax.set_axis_off()
    fig.tight_layout()
    return Figure.from_data(key="programme_theory", caption=FIGURE_CAPTION, png=_png_bytes(fig), svg=_svg_text(fig))


def write_graph_files(project: Project, model, folder) -> list:
    """``programme-theory.png``, ``.svg`` and ``.graphml`` in ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    png, svg, graphml = (folder / f"programme-theory.{ext}" for ext in ("png", "svg", "graphml"))
    try:
        from ..cmoc import graph as cmoc_graph
    except ImportError:
        cmoc_graph = None
    if cmoc_graph is not None and all(hasattr(cmoc_graph, f) for f in ("programme_graph", "render_graph",
                                                                         "export_graph")):
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
    import networkx as nx

    G, _pos = _fallback_graph(project)
    if G.number_of_nodes() == 0 or model.figure is None:
        return []
    png.write_bytes(model.figure.png)
    svg.write_text(model.figure.svg, encoding="utf-8")
    nx.write_graphml(G, graphml)
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


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, metadata={"Software": None})
    return buf.getvalue()


def _svg_text(fig) -> str:
    import matplotlib
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with matplotlib.rc_context(DETERMINISTIC_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()

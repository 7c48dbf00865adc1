"""The programme-theory graph: theories, CMOCs, contexts, mechanisms, outcomes.

``programme_graph(project)`` builds a :class:`networkx.DiGraph`:

* nodes ``theory:T1``, ``cmoc:T1.1``, ``context:T1.1``, ``mechanism:T1.1``,
  ``outcome:T1.1`` with attributes ``type``, ``label`` (full text), ``layer``
  (0 theory, 1 CMOC, 2 context, 3 mechanism, 4 outcome) and, for C/M/O
  nodes, ``cmocs`` (the CMOCs that share it: identical text, compared without
  case, spacing or a trailing full stop, gives one node);
* edges theory -> CMOC (``kind="member"``), CMOC -> context (``"configures"``),
  context -> mechanism (``"triggers"``), mechanism -> outcome (``"produces"``),
  the last two weighted by the supporting evidence of the CMOCs using them
  (``weight`` = 1 + supporting excerpts, so unevidenced links still show);
* relations between CMOCs (``refines``, ``contradicts``, ``chains``) as
  CMOC -> CMOC edges, and for ``chains`` also outcome -> context edges.

Exports: GraphML, GEXF, node-link JSON, DOT and Mermaid
(:func:`export_graph`), read back with :func:`read_graph`.  Non-scalar
attributes are JSON-encoded in GraphML/GEXF and listed in the graph attribute
``json_attributes`` so :func:`read_graph` restores them.  :func:`render_graph`
draws a PNG or SVG with matplotlib (no Graphviz needed) in a layered
left-to-right layout.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import networkx as nx

from ..errors import SpRealistError
from ..store import Project
from ._common import text_items

LAYERS = {"theory": 0, "cmoc": 1, "context": 2, "mechanism": 3, "outcome": 4}
COLOURS = {"theory": "#7b3294", "cmoc": "#4d4d4d", "context": "#1f77b4", "mechanism": "#ff7f0e",
           "outcome": "#2ca02c"}
FORMATS = {"graphml": "graphml", "gexf": "gexf", "json": "json", "dot": "dot", "gv": "dot", "mmd": "mermaid",
           "mermaid": "mermaid", "md": "mermaid"}


def _norm(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(". ")


def _cell_label(*values: str | None) -> str:
    return "; ".join(i for v in values for i in text_items(v))


def programme_graph(project: Project, theory: str | None = None) -> nx.DiGraph:
    """The programme theory as a DiGraph (see the module docstring for its shape)."""
    from sqlalchemy import select

    from .. import schema as S
    from .cmocs import _evidence_counts, _memberships, cmoc_rows
    from .theories import theory_rows

    with project.connect() as conn:
        cmocs = cmoc_rows(conn, theory)
        members = _memberships(conn)
        counts = _evidence_counts(conn)
        theories = {t["key"]: t for t in theory_rows(conn)}
        a, b = S.cmocs.alias("a"), S.cmocs.alias("b")
        rel = S.cmoc_relations
        relations = conn.execute(
            select(a.c.key, b.c.key, rel.c.kind, rel.c.note)
            .select_from(rel.join(a, a.c.id == rel.c.from_id).join(b, b.c.id == rel.c.to_id))
            .order_by(a.c.ord, b.c.ord, rel.c.kind)).all()
    G = nx.DiGraph(name="programme theory" + (f" {theory}" if theory else ""))
    shared: dict[tuple[str, str], str] = {}
    parts: dict[str, dict[str, str]] = {}

    def part_node(kind: str, label: str, cmoc_key: str) -> str | None:
        if not label:
            return None
        k = (kind, _norm(label))
        if k not in shared:
            node = f"{kind}:{cmoc_key}"
            shared[k] = node
            G.add_node(node, type=kind, label=label, layer=LAYERS[kind], cmocs=[])
        node = shared[k]
        G.nodes[node]["cmocs"].append(cmoc_key)
        return node

    def add_edge(u: str | None, v: str | None, kind: str, cmoc_key: str, weight: int) -> None:
        if u is None or v is None:
            return
        if G.has_edge(u, v):
            d = G.edges[u, v]
            d["weight"] += weight
            if cmoc_key not in d["cmocs"]:
                d["cmocs"].append(cmoc_key)
        else:
            G.add_edge(u, v, kind=kind, weight=weight, cmocs=[cmoc_key])

    for c in cmocs:
        key = c["key"]
        ts = [t for t in members.get(c["id"], []) if theory is None or t == theory]
        for t in ts:
            tnode = f"theory:{t}"
            if tnode not in G:
                G.add_node(tnode, type="theory", label=f"{t}: {theories[t]['title']}", key=t, layer=0)
        sup, ref = counts.get((c["id"], "supports"), 0), counts.get((c["id"], "refutes"), 0)
        cnode = f"cmoc:{key}"
        G.add_node(cnode, type="cmoc", label=key, key=key, layer=1, status=c["status"],
                   confidence=c["confidence"] or "", supporting=sup, refuting=ref, theories=ts)
        for t in ts:
            G.add_edge(f"theory:{t}", cnode, kind="member", weight=1)
        ctx = part_node("context", _cell_label(c["context"]), key)
        resource, response = _cell_label(c["mechanism_resource"]), _cell_label(c["mechanism_response"])
        mech_label = f"{resource} → {response}" if resource and response else (response or resource)
        mech = part_node("mechanism", mech_label, key)
        out = part_node("outcome", _cell_label(c["outcome"]), key)
        parts[key] = {"context": ctx, "mechanism": mech, "outcome": out}
        first = ctx or mech or out
        if first:
            G.add_edge(cnode, first, kind="configures", weight=1)
        w = 1 + sup
        add_edge(ctx, mech, "triggers", key, w)
        add_edge(mech, out, "produces", key, w)
        if ctx and not mech:
            add_edge(ctx, out, "produces", key, w)
    for f, t, kind, note in relations:
        u, v = f"cmoc:{f}", f"cmoc:{t}"
        if u not in G or v not in G:
            continue
        if G.has_edge(u, v):
            G.edges[u, v]["kind"] += f",{kind}"
        else:
            G.add_edge(u, v, kind=kind, weight=1, note=note or "")
        if kind == "chains":
            o, cx = parts[f]["outcome"], parts[t]["context"]
            if o and cx and o != cx and not G.has_edge(o, cx):
                G.add_edge(o, cx, kind="chains", weight=1, cmocs=[f, t])
    return G


# -- export ----------------------------------------------------------------
def _encoded(G: nx.DiGraph) -> nx.DiGraph:
    """A copy with non-scalar attributes JSON-encoded and None dropped (GraphML/GEXF need scalars)."""
    H = nx.DiGraph()
    names: set[str] = set()

    def enc(d: dict) -> dict:
        out = {}
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple, dict, set)):
                out[k] = json.dumps(sorted(v) if isinstance(v, set) else v, ensure_ascii=False)
                names.add(k)
            else:
                out[k] = v
        return out

    for n, d in G.nodes(data=True):
        H.add_node(n, **enc(d))
    for u, v, d in G.edges(data=True):
        H.add_edge(u, v, **enc(d))
    H.graph.update({k: v for k, v in G.graph.items() if isinstance(v, (str, int, float, bool))})
    H.graph["json_attributes"] = json.dumps(sorted(names))
    return H


#: Attributes of programme_graph that hold lists (GEXF cannot carry the json_attributes marker).
LIST_ATTRIBUTES = ("cmocs", "theories")


def _decode(G: nx.DiGraph) -> nx.DiGraph:
    names = set(json.loads(G.graph.pop("json_attributes", json.dumps(LIST_ATTRIBUTES))))
    for _, d in list(G.nodes(data=True)) + [(None, d) for _, _, d in G.edges(data=True)]:
        for k in names & set(d):
            if isinstance(d[k], str):
                d[k] = json.loads(d[k])
    return G


def _dot_quote(s: Any) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(G: nx.DiGraph) -> str:
    """Graphviz DOT text (written here: networkx's DOT support needs pydot)."""
    lines = ["digraph programme_theory {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=10, fontcolor=white];', "  edge [color=\"#777777\"];"]
    layers: dict[int, list[str]] = {}
    for n, d in G.nodes(data=True):
        label = textwrap.fill(str(d.get("label", n)), 30)
        colour = COLOURS.get(d.get("type"), "#999999")
        attrs = [f"label={_dot_quote(label)}", f"fillcolor={_dot_quote(colour)}"]
        for k in ("type", "layer", "status", "confidence", "supporting", "refuting"):
            if d.get(k) not in (None, ""):
                attrs.append(f"{k}={_dot_quote(d[k])}")
        lines.append(f"  {_dot_quote(n)} [{', '.join(attrs)}];")
        layers.setdefault(d.get("layer", 0), []).append(n)
    for layer in sorted(layers):
        lines.append("  { rank=same; " + " ".join(_dot_quote(n) for n in layers[layer]) + " }")
    for u, v, d in G.edges(data=True):
        attrs = [f"kind={_dot_quote(d.get('kind', ''))}", f"weight={int(d.get('weight', 1))}",
                 f"penwidth={min(1 + int(d.get('weight', 1)) * 0.5, 6):.1f}"]
        if d.get("kind") in ("triggers", "produces") and d.get("weight", 1) > 1:
            attrs.append(f"label={_dot_quote(d['weight'] - 1)}")
        if d.get("kind") not in ("member", "configures", "triggers", "produces"):
            attrs.append("style=dashed")
            attrs.append(f"xlabel={_dot_quote(d.get('kind'))}")
        lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(s: str) -> str:
    s = textwrap.fill(s, 30).replace("\n", "<br/>")
    return s.replace('"', "#quot;")


def to_mermaid(G: nx.DiGraph) -> str:
    """A Mermaid flowchart (left to right), nodes styled by type."""
    ids = {n: f"n{i}" for i, n in enumerate(G.nodes)}
    lines = ["flowchart LR"]
    for n, d in G.nodes(data=True):
        shape = ("([", "])") if d.get("type") == "theory" else ("[", "]")
        lines.append(f'  {ids[n]}{shape[0]}"{_mermaid_text(str(d.get("label", n)))}"{shape[1]}:::{d.get("type", "x")}')
    for u, v, d in G.edges(data=True):
        kind = d.get("kind", "")
        if kind in ("triggers", "produces", "member", "configures"):
            w = int(d.get("weight", 1))
            arrow = f"-->|{w - 1}|" if kind in ("triggers", "produces") and w > 1 else "-->"
        else:
            arrow = f"-.->|{kind}|"
        lines.append(f"  {ids[u]} {arrow} {ids[v]}")
    for t, colour in COLOURS.items():
        lines.append(f"  classDef {t} fill:{colour},color:#fff,stroke:#333")
    return "\n".join(lines) + "\n"


def export_graph(G: nx.DiGraph, path: str | Path, fmt: str | None = None) -> str:
    """Write ``G`` as graphml, gexf, json (node-link), dot or mermaid (default: from the suffix)."""
    path = Path(path)
    fmt = (fmt or FORMATS.get(path.suffix.lower().lstrip("."), "")).lower()
    fmt = FORMATS.get(fmt, fmt)
    if fmt not in set(FORMATS.values()):
        raise SpRealistError(f"{path}: unknown graph format {fmt or path.suffix!r}; use graphml, gexf, json, dot "
                             "or mermaid (or a file name ending .graphml, .gexf, .json, .dot, .mmd).")
    if not path.parent.exists():
        raise SpRealistError(f"{path}: the folder {path.parent} does not exist; create it first.")
    if fmt == "graphml":
        nx.write_graphml(_encoded(G), path)
    elif fmt == "gexf":
        nx.write_gexf(_encoded(G), path)
    elif fmt == "json":
        data = nx.node_link_data(G, edges="edges")
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    elif fmt == "dot":
        path.write_text(to_dot(G), encoding="utf-8")
    else:
        path.write_text(to_mermaid(G), encoding="utf-8")
    return str(path)


def read_graph(path: str | Path, fmt: str | None = None) -> nx.DiGraph:
    """Read a graph written by :func:`export_graph` (graphml, gexf or json)."""
    path = Path(path)
    fmt = FORMATS.get((fmt or path.suffix.lstrip(".")).lower())
    if fmt == "graphml":
        return _decode(nx.DiGraph(nx.read_graphml(path)))
    if fmt == "gexf":
        G = nx.DiGraph(nx.read_gexf(path))
        # networkx's GEXF writer renames "key" and adds edge ids; weights come back as floats.
        for _, d in G.nodes(data=True):
            if "networkx_key" in d:
                d["key"] = d.pop("networkx_key")
        for _, _, d in G.edges(data=True):
            d.pop("id", None)
            if isinstance(d.get("weight"), float) and d["weight"].is_integer():
                d["weight"] = int(d["weight"])
        return _decode(G)
    if fmt == "json":
        return nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), directed=True, edges="edges")
    raise SpRealistError(f"{path}: only graphml, gexf and json graphs can be read back.")


# -- rendering -------------------------------------------------------------
def _wrap(label: str, width: int = 28, lines: int = 4) -> str:
    wrapped = textwrap.wrap(label, width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "…"
    return "\n".join(wrapped)


def layered_positions(G: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Left-to-right layers by the node attribute ``layer`` (as ``nx.multipartite_layout``).

    ``multipartite_layout`` reorders the nodes within a layer, so rows are
    computed here instead: CMOCs take one row each in order; a context,
    mechanism or outcome sits at the mean row of the CMOCs that share it, and a
    theory at the mean row of its CMOCs; nodes of a layer are then kept at
    least one row apart.
    """
    if G.number_of_nodes() == 0:
        return {}
    want: dict[str, float] = {}
    cmoc_nodes = [n for n, d in G.nodes(data=True) if d.get("type") == "cmoc"]
    for i, n in enumerate(cmoc_nodes):
        want[n] = -float(i)
    row_of_key = {G.nodes[n].get("key"): want[n] for n in cmoc_nodes}
    for n, d in G.nodes(data=True):
        if n in want:
            continue
        if d.get("type") == "theory":
            ys = [want[v] for v in G.successors(n) if v in want]
        else:
            ys = [row_of_key[k] for k in d.get("cmocs") or [] if k in row_of_key]
        want[n] = sum(ys) / len(ys) if ys else -float(len(cmoc_nodes))
    by_layer: dict[int, list[str]] = {}
    for n, d in G.nodes(data=True):
        by_layer.setdefault(int(d.get("layer", 0)), []).append(n)
    out: dict[str, tuple[float, float]] = {}
    for layer, nodes in by_layer.items():
        prev = None
        for n in sorted(nodes, key=lambda n: -want[n]):  # stable: ties keep insertion order
            y = want[n] if prev is None else min(want[n], prev - 1.0)
            out[n] = (float(layer), y)
            prev = y
    return out


def _node_boxes(fig, ax, texts: dict, font: float) -> dict[str, tuple[float, float]]:
    """Each node's label box as half its width and height in data units, for stopping edges at it.

    Measured once with the canvas renderer; data units do not depend on the dpi the file is saved at.
    """
    renderer = fig.canvas.get_renderer()
    pad = renderer.points_to_pixels(0.3 * font)  # boxstyle round,pad=0.3 (in font sizes)
    inv = ax.transData.inverted()
    boxes = {}
    for n, t in texts.items():
        bb = t.get_window_extent(renderer)
        (x0, y0), (x1, y1) = inv.transform([(bb.x0 - pad, bb.y0 - pad), (bb.x1 + pad, bb.y1 + pad)])
        boxes[n] = (abs(x1 - x0) / 2, abs(y1 - y0) / 2)
    return boxes


def _edge_ends(a: tuple[float, float], b: tuple[float, float], box_a: tuple[float, float],
               box_b: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the line between two node centres leaves ``a``'s box and enters ``b``'s (boxes centred on them).

    Computed here rather than by FancyArrowPatch's patchA/patchB clipping, which bisects with
    point-in-patch tests and made large figures several times slower to draw.
    """
    dx, dy = b[0] - a[0], b[1] - a[1]

    def exit_t(half: tuple[float, float]) -> float:
        tx = half[0] / abs(dx) if dx else float("inf")
        ty = half[1] / abs(dy) if dy else float("inf")
        return min(tx, ty)

    ta, tb = exit_t(box_a), exit_t(box_b)
    if ta + tb >= 1:  # overlapping boxes: centre to centre
        return a, b
    return (a[0] + ta * dx, a[1] + ta * dy), (b[0] - tb * dx, b[1] - tb * dy)


def render_graph(G: nx.DiGraph, path: str | Path, *, title: str | None = None, dpi: int = 150) -> str:
    """Draw ``G`` to PNG, SVG or PDF (by suffix) with matplotlib: layered left to right, coloured by type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise SpRealistError(f"{path}: give a file name ending .png, .svg or .pdf.")
    if not path.parent.exists():
        raise SpRealistError(f"{path}: the folder {path.parent} does not exist; create it first.")
    pos = layered_positions(G)
    n_layers = len({d["layer"] for _, d in G.nodes(data=True)}) or 1
    tallest = max([sum(1 for _, d in G.nodes(data=True) if d["layer"] == layer)
                   for layer in range(5)] + [1])
    row_in = 0.75 if tallest <= 25 else 0.6  # four lines of 8 pt, or three of 7 pt, per row
    fig_w, fig_h = max(8.0, 3.3 * n_layers), max(4.0, row_in * tallest + 1.2)
    if path.suffix.lower() == ".png" and fig_h * dpi > 32000:  # keep very large theories within PNG limits
        dpi = max(50, int(32000 / fig_h))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.set_xlim(-0.6, max(x for x, _ in pos.values()) + 0.6 if pos else 1)
    ys = [y for _, y in pos.values()] or [0]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    font = 7 if tallest > 25 else 8
    texts = {}
    for n, d in G.nodes(data=True):
        x, y = pos[n]
        kind = d.get("type")
        label = d.get("label", n) if kind != "cmoc" else f"{d.get('key')}\n+{d.get('supporting', 0)} / −{d.get('refuting', 0)}"
        texts[n] = ax.text(x, y, _wrap(str(label), 30 if kind != "cmoc" else 16, 3 if tallest > 25 else 4),
                           ha="center", va="center", fontsize=font, label=n, color="white", zorder=3,
                           bbox=dict(boxstyle="round,pad=0.3", fc=COLOURS.get(kind, "#999999"), ec="none",
                                     alpha=0.95))
    # Fixed margins (tight_layout would draw the whole figure once more just to measure it).
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.25 / fig_h, top=1 - 0.85 / fig_h)
    boxes = _node_boxes(fig, ax, texts, font)
    max_w = max([d.get("weight", 1) for _, _, d in G.edges(data=True)] + [1])
    for u, v, d in G.edges(data=True):
        kind = d.get("kind", "")
        back = pos[v][0] <= pos[u][0]
        style = "arc3,rad=0.25" if back else "arc3,rad=0.0"
        colour = {"chains": "#d62728", "contradicts": "#d62728", "refines": "#9467bd"}.get(kind.split(",")[0], "#9a9a9a")
        causal = kind in ("triggers", "produces")
        width = 0.6 + 2.4 * (d.get("weight", 1) - 1) / max(1, max_w - 1) if causal else 0.6
        # From box edge to box edge, so the head shows instead of being hidden under the target's box.
        start, end = _edge_ends(pos[u], pos[v], boxes[u], boxes[v])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10 + 2 * width if causal else 8,
                                     color="#6f6f6f" if causal else colour, lw=width,
                                     connectionstyle=style, linestyle="--" if back or kind not in
                                     ("member", "configures", "triggers", "produces") else "-",
                                     shrinkA=1, shrinkB=1.5, zorder=1, alpha=0.9, label=f"{u} -> {v}"))
    handles = [Patch(color=c, label=t) for t, c in COLOURS.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=5, frameon=False, fontsize=8)
    if title or G.graph.get("name"):
        ax.set_title(title or G.graph["name"], fontsize=11, pad=18)
    # Reproducible files: no dates in SVG/PDF metadata, fixed SVG ids.
    metadata = {".svg": {"Date": None}, ".pdf": {"CreationDate": None, "ModDate": None}}.get(path.suffix.lower())
    with matplotlib.rc_context({"svg.hashsalt": "sp-realist"}):
        fig.savefig(path, dpi=dpi, metadata=metadata)
    plt.close(fig)
    return str(path)


def graph_summary(G: nx.DiGraph) -> "pd.DataFrame":  # noqa: F821 - pandas imported lazily
    """Node counts by type and edge counts by kind."""
    import pandas as pd

    rows = []
    for t in LAYERS:
        rows.append({"item": f"{t} nodes", "count": sum(1 for _, d in G.nodes(data=True) if d.get("type") == t)})
    kinds: dict[str, int] = {}
    for _, _, d in G.edges(data=True):
        kinds[d.get("kind", "")] = kinds.get(d.get("kind", ""), 0) + 1
    rows += [{"item": f"{k} edges", "count": v} for k, v in sorted(kinds.items())]
    return pd.DataFrame(rows, columns=["item", "count"])


__all__ = ["programme_graph", "export_graph", "read_graph", "render_graph", "to_dot", "to_mermaid",
           "layered_positions", "graph_summary"]

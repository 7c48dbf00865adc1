"""Figures drawn for the printed page (the Word report).

The programme-theory graph (``sp-realist graph``) lays every theory, CMOC, context, mechanism and outcome
out left to right; with a dozen CMOCs it is 16 inches wide, so on an A4 page its 8 pt labels print at
about 3 pt and are cut off.  The Word report therefore shows, instead, figures drawn at print size with
matplotlib, every label at least ``MIN_PT`` points and wrapped, never truncated:

* an **overview**: each mid-range theory with its CMOCs and their evidence counts;
* **one figure per theory**: each CMOC as a row, context -> mechanism -> outcome.

Both are drawn from the report model (the CMOC table rows), so they say what the tables say.  The HTML
report keeps the full graph as scalable SVG, and ``build`` still writes the graph files.
"""

from __future__ import annotations

import io
import textwrap

MIN_PT = 8.0  # the smallest text on a figure, at the size it is printed
WIDTH_IN = 5.6  # drawn at this width: the text width of A4 and Letter with their usual margins, or less
_LINE_IN = MIN_PT * 1.3 / 72  # one line of text
_CHAR_IN = MIN_PT * 0.62 / 72  # a generous average character width (DejaVu Sans)
COLOURS = {"theory": "#5b2c83", "cmoc": "#3d3d3d", "context": "#1f6fb2", "mechanism": "#c25a00",
           "outcome": "#2a7a2a"}


def _wrap(text: str, width_in: float) -> list[str]:
    chars = max(8, int((width_in - 0.12) / _CHAR_IN))
    lines: list[str] = []
    for part in (text or "").split("\n"):
        lines += textwrap.wrap(part, chars, break_long_words=False, break_on_hyphens=False) or [""]
    return lines or [""]


def _png(fig) -> bytes:
    import matplotlib
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "sp-realist"}):
        fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _figure(height_in: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(WIDTH_IN, height_in))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH_IN)
    ax.set_ylim(height_in, 0)  # y grows downwards, in inches
    ax.axis("off")
    return fig, ax


def _box(ax, x: float, y: float, w: float, h: float, lines: list[str], colour: str, bold: bool = False) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.04", fc=colour, ec="none"))
    ax.text(x + w / 2, y + h / 2, "\n".join(lines), ha="center", va="center", color="white", fontsize=MIN_PT,
            fontweight="bold" if bold else "normal", linespacing=1.15)


def _arrow(ax, x0: float, x1: float, y: float) -> None:
    ax.annotate("", xy=(x1, y), xytext=(x0, y), arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.8))


_KEY_W, _GAP = 0.55, 0.22
_COL_W = (WIDTH_IN - _KEY_W - 3 * _GAP - 0.1) / 3
_HEAD_IN = 0.3


def _theory_rows(rows: list[list[str]]) -> list[tuple[str, list[list[str]], float]]:
    laid = []
    for row in rows:
        cells = [_wrap(str(v or ""), _COL_W) for v in row[1:4]]
        laid.append((str(row[0]), cells, max(len(c) for c in cells) * _LINE_IN + 0.14))
    return laid


def theory_figures(rows: list[list[str]], max_height_in: float) -> list[bytes]:
    """:func:`theory_figure` for the rows, split into as many figures as needed so that none is taller
    than ``max_height_in`` (a page): a figure is never scaled down below print size."""
    chunks: list[list[list[str]]] = [[]]
    height = _HEAD_IN + 0.05
    for row, (_key, _cells, h) in zip(rows, _theory_rows(rows)):
        if chunks[-1] and height + h + 0.1 > max_height_in:
            chunks.append([])
            height = _HEAD_IN + 0.05
        chunks[-1].append(row)
        height += h + 0.1
    return [theory_figure(c) for c in chunks if c]


def theory_figure(rows: list[list[str]]) -> bytes:
    """One theory's CMOCs, a row each: key, then context -> mechanism -> outcome (the CMOC table's cells)."""
    key_w, gap, col_w = _KEY_W, _GAP, _COL_W
    xs = [key_w + gap, key_w + 2 * gap + col_w, key_w + 3 * gap + 2 * col_w]
    laid = _theory_rows(rows)
    head = _HEAD_IN
    total = head + sum(h + 0.1 for *_x, h in laid) + 0.05
    fig, ax = _figure(total)
    for x, (name, kind) in zip(xs, (("Context (Resource)", "context"), ("Mechanism (Behaviour)", "mechanism"),
                                    ("Outcome", "outcome"))):
        ax.text(x + col_w / 2, head / 2, name, ha="center", va="center", fontsize=MIN_PT, fontweight="bold",
                color=COLOURS[kind])
    y = head
    for key, cells, h in laid:
        _box(ax, 0.05, y, key_w - 0.05, h, [key], COLOURS["cmoc"], bold=True)
        for x, lines, kind in zip(xs, cells, ("context", "mechanism", "outcome")):
            _box(ax, x, y, col_w, h, lines, COLOURS[kind])
        for i in range(2):
            _arrow(ax, xs[i] + col_w + 0.01, xs[i + 1] - 0.01, y + h / 2)
        y += h + 0.1
    return _png(fig)


def overview_figure(theories: list[tuple[str, list[str]]]) -> bytes:
    """Each mid-range theory ("T1: title") with its CMOC keys to the right."""
    theory_w, chip_w, chip_gap = 2.3, 0.55, 0.08
    per_line = max(1, int((WIDTH_IN - theory_w - 0.3) // (chip_w + chip_gap)))
    laid = []
    for label, keys in theories:
        lines = _wrap(label, theory_w)
        chip_rows = max(1, -(-len(keys) // per_line))
        height = max(len(lines) * _LINE_IN + 0.14, chip_rows * (_LINE_IN + 0.14 + chip_gap))
        laid.append((lines, keys, height))
    total = sum(h + 0.12 for *_x, h in laid) + 0.05
    fig, ax = _figure(total)
    y = 0.05
    for lines, keys, h in laid:
        _box(ax, 0.05, y, theory_w, h, lines, COLOURS["theory"], bold=True)
        for i, key in enumerate(keys):
            row, col = divmod(i, per_line)
            x = theory_w + 0.3 + col * (chip_w + chip_gap)
            cy = y + row * (_LINE_IN + 0.14 + chip_gap)
            _box(ax, x, cy, chip_w, _LINE_IN + 0.14, [key], COLOURS["cmoc"])
        if keys:
            _arrow(ax, theory_w + 0.07, theory_w + 0.28, y + (_LINE_IN + 0.14) / 2)
        y += h + 0.12
    return _png(fig)


__all__ = ["theory_figure", "theory_figures", "overview_figure", "MIN_PT", "WIDTH_IN"]

"""Programme-theory graph, candidate CMOCs and triangulation."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from sqlalchemy import insert, select

from sp_realist import schema as S
from sp_realist.cmoc import add_cmoc, add_theory, import_theories_yaml, link_evidence, list_cmocs, relate_cmocs
from sp_realist.cmoc.appraisal import set_appraisal
from sp_realist.cmoc.graph import (export_graph, layered_positions, programme_graph, read_graph, render_graph,
                                   to_dot, to_mermaid)
from sp_realist.cmoc.suggest import accept_suggestion, candidate_id, reject_suggestion, suggest_cmocs
from sp_realist.cmoc.triangulate import UNLINKED, triangulation, triangulation_long
from sp_realist.errors import NotFoundError, SpRealistError
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import now

THEORIES = Path(__file__).parent / "data" / "cmoc" / "mind_cymru_theories.yaml"


def add_text(conn, name, text, kind="diary", participant=None, attrs=None, turns=None):
    """A source whose segments are its lines (or speaker turns)."""
    segs, pos = [], 0
    for line in text.splitlines(keepends=True):
        who = line.split(":")[0] if turns else None
        segs.append(Segment(pos, pos + len(line), kind="turn" if turns else "paragraph", speaker=who,
                            participant_code=turns.get(who) if turns else None))
        pos += len(line)
    return add_source(conn, SourceDraft(name=name, kind=kind, text=text, checksum=name, segments=segs,
                                        participant_code=participant, attributes=attrs or {}))


@pytest.fixture
def theory_project(project):
    import_theories_yaml(project, THEORIES)
    # T1.2 and T2.2 share a context written differently: one node.
    add_cmoc(project, "X1", theory="T1", context="no organised site and staff introduction.",
             mechanism_resource="Peer support", mechanism_response="Reassurance", outcome="Fewer questions")
    relate_cmocs(project, "T1.2", "T1.3", "chains")
    relate_cmocs(project, "T3.3", "T3.1", "refines")
    with project.begin() as conn:
        add_text(conn, "d1", "I had to keep asking reception staff.\nIt was confusing.\n", participant="S1 DK1",
                 attrs={"site": "S1"})
    link_evidence(project, "T1.2", {"source": "d1", "quote": "keep asking reception staff"})
    link_evidence(project, "T1.2", {"source": "d1", "quote": "It was confusing"})
    return project


def test_programme_graph_shape(theory_project):
    G = programme_graph(theory_project)
    types = nx.get_node_attributes(G, "type")
    assert sum(t == "theory" for t in types.values()) == 4
    assert sum(t == "cmoc" for t in types.values()) == 14
    assert sum(t == "context" for t in types.values()) == 13  # X1 shares T1.2's context
    assert G.nodes["context:T1.2"]["cmocs"] == ["T1.2", "X1"]
    assert G.nodes["mechanism:X1"]["label"] == "Peer support → Reassurance"
    # C -> M -> O per CMOC, weighted 1 + supporting evidence.
    assert G.edges["context:T1.2", "mechanism:T1.2"]["weight"] == 3
    assert G.edges["mechanism:T1.2", "outcome:T1.2"]["kind"] == "produces"
    assert G.edges["context:T1.1", "mechanism:T1.1"]["weight"] == 1
    assert G.edges["theory:T1", "cmoc:T1.1"]["kind"] == "member"
    assert G.edges["cmoc:T1.2", "cmoc:T1.3"]["kind"] == "chains"
    assert G.edges["outcome:T1.2", "context:T1.3"]["kind"] == "chains"
    assert G.edges["cmoc:T3.3", "cmoc:T3.1"]["kind"] == "refines"
    assert G.nodes["cmoc:T1.2"]["supporting"] == 2
    t1 = programme_graph(theory_project, "T1")
    assert {d["key"] for _, d in t1.nodes(data=True) if d["type"] == "cmoc"} == {"T1.1", "T1.2", "T1.3", "X1"}


def _match(a, b):
    return {k: a.get(k) for k in ("type", "label", "layer", "cmocs")} == \
        {k: b.get(k) for k in ("type", "label", "layer", "cmocs")}


def _ematch(a, b):
    return (a.get("kind"), a.get("weight"), a.get("cmocs")) == (b.get("kind"), b.get("weight"), b.get("cmocs"))


@pytest.mark.parametrize("fmt", ["graphml", "json", "gexf"])
def test_graph_export_reads_back_isomorphic(theory_project, tmp_path, fmt):
    G = programme_graph(theory_project)
    path = tmp_path / f"g.{fmt}"
    export_graph(G, path)
    H = read_graph(path)
    assert nx.is_isomorphic(G, H, node_match=_match, edge_match=_ematch)
    assert set(G.nodes) == set(H.nodes)
    assert H.nodes["context:T1.2"]["cmocs"] == ["T1.2", "X1"]


def test_graphml_is_plain_for_gephi_and_yed(theory_project, tmp_path):
    path = tmp_path / "g.graphml"
    export_graph(programme_graph(theory_project), path)
    root = ET.parse(path).getroot()
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    key_types = {k.get("attr.name"): k.get("attr.type") for k in root.findall("g:key", ns)}
    assert key_types["cmocs"] == "string" and key_types["weight"] in ("int", "long")
    assert key_types["label"] == "string"


def test_dot_and_mermaid(theory_project, tmp_path):
    G = programme_graph(theory_project)
    dot = to_dot(G)
    assert dot.startswith("digraph programme_theory {") and "rankdir=LR" in dot
    assert dot.count(" -> ") == G.number_of_edges()
    assert '"cmoc:T1.2" -> "cmoc:T1.3"' in dot and "style=dashed" in dot
    # Quotes in labels are escaped.
    assert "\\\"" not in dot or dot.count('"') % 2 == 0
    mmd = to_mermaid(G)
    lines = mmd.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(1 for line in lines if "-->" in line or "-.->" in line) == G.number_of_edges()
    assert "-.->|chains|" in mmd and "classDef context" in mmd
    export_graph(G, tmp_path / "g.dot")
    export_graph(G, tmp_path / "g.mmd")
    assert (tmp_path / "g.dot").read_text() == dot and (tmp_path / "g.mmd").read_text() == mmd
    with pytest.raises(SpRealistError, match="unknown graph format"):
        export_graph(G, tmp_path / "g.xyz")


@pytest.mark.sqlite_only("drawing a graph; the graph is read from the store on both back ends above")
def test_render_png_and_svg(theory_project, tmp_path):
    G = programme_graph(theory_project)
    png = render_graph(G, tmp_path / "g.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = render_graph(G, tmp_path / "g.svg", title="Programme theory")
    assert "<svg" in Path(svg).read_text()[:500]
    pos = layered_positions(G)
    # Left to right by layer; a CMOC's context, mechanism and outcome share its row.
    assert pos["theory:T1"][0] < pos["cmoc:T1.1"][0] < pos["context:T1.1"][0] < pos["mechanism:T1.1"][0] \
        < pos["outcome:T1.1"][0]
    assert pos["cmoc:T2.3"][1] == pos["context:T2.3"][1] == pos["outcome:T2.3"][1]
    with pytest.raises(SpRealistError, match=".png"):
        render_graph(G, tmp_path / "g.gif")
    # Reproducible: rendering again gives identical files.
    for ext in ("png", "svg"):
        again = render_graph(G, tmp_path / f"again.{ext}", title="Programme theory" if ext == "svg" else None)
        assert Path(again).read_bytes() == (tmp_path / f"g.{ext}").read_bytes()


@pytest.mark.sqlite_only("drawing a graph; the graph is read from the store on both back ends above")
def test_render_fifty_cmocs(project, tmp_path):
    for t in range(1, 6):
        add_theory(project, f"T{t}", f"Theory {t}")
        for c in range(1, 11):
            add_cmoc(project, f"T{t}.{c}", theory=f"T{t}", context=f"context {t}.{c} " * 4,
                     mechanism_response=f"mechanism {t}.{c}", outcome=f"outcome {t}.{c} " * 6)
    G = programme_graph(project)
    assert sum(1 for _, d in G.nodes(data=True) if d["type"] == "cmoc") == 50
    path = render_graph(G, tmp_path / "fifty.png")
    from matplotlib.image import imread

    img = imread(path)
    # Tall enough that 50 rows of labels are legible: at least ~80 px per row at 150 dpi.
    assert img.shape[0] >= 50 * 80


# -- candidate CMOCs -----------------------------------------------------
def code(conn, name, parent=None):
    return conn.execute(insert(S.codes).values(name=name, parent_id=parent, ord=0, created_at=now())).inserted_primary_key[0]


def coding(conn, code_id, source_id, text, phrase):
    start = text.index(phrase)
    conn.execute(insert(S.codings).values(code_id=code_id, source_id=source_id, start=start, end=start + len(phrase),
                                          coder="RA", origin="manual", created_at=now()))


DIARIES = {
    "e1": ("S1 DK1", "No induction at the surgery. I felt confused. Communication broke down.\n"),
    "e2": ("S1 DK2", "Again no induction here. Confused all week. Communication was poor.\n"),
    "e3": ("S3 DK1", "No induction. Confused. Yet communication was fine.\n"),
}


@pytest.fixture
def coded(project):
    with project.begin() as conn:
        ctx = code(conn, "C: lack of induction")
        parent = code(conn, "Mechanism")
        mech = code(conn, "confusion", parent)
        out = code(conn, "Outcome: communication issues")
        other = code(conn, "Referral process")
        ids = {}
        for name, (who, text) in DIARIES.items():
            sid = add_text(conn, name, text, participant=who, attrs={"site": who[:2]})
            ids[name] = sid
            coding(conn, ctx, sid, text, "nduction")
            coding(conn, mech, sid, text, "onfused")
            coding(conn, other, sid, text, "No" if name != "e2" else "Again")
        coding(conn, out, ids["e1"], DIARIES["e1"][1], "Communication broke down")
        coding(conn, out, ids["e2"], DIARIES["e2"][1], "Communication was poor")
        # An interview: C in one turn, M and O in another -> no candidate from that turn pair.
        text = "P1: No induction for us.\nP2: Confused, and communication issues followed.\n"
        sid = add_text(conn, "i1", text, kind="interview", turns={"P1": "S2 P1", "P2": "S2 P2"})
        coding(conn, ctx, sid, text, "No induction")
        coding(conn, mech, sid, text, "Confused")
        coding(conn, out, sid, text, "communication issues")
    return project


def test_suggest_from_codes(coded):
    df = suggest_cmocs(coded)
    assert len(df) == 1
    top = df.iloc[0]
    assert (top["context"], top["mechanism"], top["outcome"]) == ("lack of induction", "confusion",
                                                                  "communication issues")
    assert top["support"] == 2 and top["participants"] == 2 and top["units"] == "e1; e2"
    assert top["id"] == candidate_id("lack of induction", "confusion", "communication issues")
    # Treat each interview as one unit: the interview now gives C, M and O together.
    coded.set_setting("suggest_unit", "source")
    assert suggest_cmocs(coded).iloc[0]["support"] == 3
    coded.set_setting("suggest_unit", "auto")
    # Nothing entered the theory.
    assert list_cmocs(coded).empty


def test_suggest_from_appraisals_accept_reject(coded):
    ref = lambda q: {"source": "e3", "quote": q}  # noqa: E731
    set_appraisal(coded, ref("No induction"), "RA", interpretation="context")
    set_appraisal(coded, ref("Confused"), "RA", interpretation="mechanism_response")
    set_appraisal(coded, ref("Yet communication was fine"), "RA", interpretation="outcome")
    df = suggest_cmocs(coded)
    # e3 has codes for C and M and appraisals for C, M and O: 1 code triple (e1, e2), 1 appraisal triple
    # and 2 x 2 x 1 - 1 = 3 mixed ones from e3.
    assert len(df) == 5 and df.iloc[0]["support"] == 2 and (df["support"] == 1).sum() == 4
    assert (df["basis"] == "appraisal").sum() == 1 and (df["basis"] == "appraisal, code").sum() == 3
    from_app = df[df["basis"] == "appraisal"].iloc[0]
    assert from_app["outcome"] == "Yet communication was fine" and from_app["support"] == 1
    cid = df.iloc[0]["id"]
    accept_suggestion(coded, cid, "T5.1", actor="RA")
    cm = list_cmocs(coded)
    assert list(cm["key"]) == ["T5.1"] and cm["supports"][0] == 6 and cm["theories"][0] == ""
    assert cm["status"][0] == "partial" and cm["mechanism_response"][0] == "confusion"
    assert cid not in set(suggest_cmocs(coded)["id"])
    assert suggest_cmocs(coded, include_decided=True).set_index("id").loc[cid, "status"] == "accepted"
    reject_suggestion(coded, from_app["id"], reason="one entry only")
    left = suggest_cmocs(coded)
    assert len(left) == 3 and from_app["id"] not in set(left["id"])
    assert coded.get_setting("suggest_rejected")[0]["reason"] == "one entry only"
    with pytest.raises(NotFoundError):
        accept_suggestion(coded, "cdeadbeef", "T5.2")
    with pytest.raises(SpRealistError, match="already accepted"):
        accept_suggestion(coded, cid, "T5.3")
    # An appraisal judged not relevant no longer signals anything.
    set_appraisal(coded, ref("Yet communication was fine"), "RA", relevance="not_relevant")
    assert suggest_cmocs(coded).empty


def test_suggest_accept_into_theory(coded):
    add_theory(coded, "T5", "Induction")
    cid = suggest_cmocs(coded).iloc[0]["id"]
    accept_suggestion(coded, cid, "T5.1", theory="T5", actor="RA", reason="two diaries")
    from sp_realist.cmoc import theory_history

    h = theory_history(coded, "T5")
    assert h["change"].iloc[-1] == "Added T5.1" and h["reason"].iloc[-1] == "two diaries"
    assert len(h["evidence"].iloc[-1].split(", ")) == 6


# -- triangulation -------------------------------------------------------
@pytest.fixture
def tri(project):
    import_theories_yaml(project, THEORIES)
    with project.begin() as conn:
        d = add_text(conn, "diary", "Referral forms were missing.\n", participant="S1 DK1",
                     attrs={"dataset": "Reflective diaries"})
        i = add_text(conn, "interview", "GP buy-in matters.\n", kind="interview",
                     attrs={"dataset": "Thematic synthesis"})
        doc = add_text(conn, "doc", "Uplift funding report.\n", kind="document")
        c1 = code(conn, "Buy-in")
        c2 = code(conn, "Uplift")
        coding(conn, c1, i, "GP buy-in matters.\n", "GP buy-in")
        coding(conn, c2, doc, "Uplift funding report.\n", "Uplift funding")
        th = conn.execute(insert(S.themes).values(name="Buy-in of GP practices", phase="named", ord=1,
                                                  created_at=now())).inserted_primary_key[0]
        sub = conn.execute(insert(S.themes).values(name="Uplift funding", phase="named", ord=2, parent_id=None,
                                                   created_at=now())).inserted_primary_key[0]
        conn.execute(insert(S.theme_codes).values(theme_id=th, code_id=c1))
        conn.execute(insert(S.theme_codes).values(theme_id=sub, code_id=c2))
        del d
    link_evidence(project, "T1.1", {"source": "diary", "quote": "Referral forms were missing"})
    project.set_setting("theme_questions", {"Uplift funding": ["Q1"]})
    return project


QUESTIONS = {"Q1": "How effective is the social prescribing model?",
             "Q3": {"text": "What factors influenced engagement?", "themes": ["Buy-in of GP practices"]}}


def test_triangulation_matrix(tri):
    df = triangulation(tri, QUESTIONS, by="dataset",
                       sources=["Meta-narrative", "Thematic synthesis", "Reflective diaries"])
    assert list(df.columns) == ["question", "text", "Meta-narrative", "Thematic synthesis", "Reflective diaries",
                                "document", UNLINKED]
    q1, q3 = df.iloc[0], df.iloc[1]
    assert q1["document"] == "Uplift funding" and q1["Reflective diaries"] == ""
    assert q3["Thematic synthesis"] == "Buy-in of GP practices"
    assert q3["Reflective diaries"] == "T1: Link worker frustration with confusion in the referral process"
    # T3 and T4 address Q3 but have no evidence yet.
    assert q3[UNLINKED].splitlines() == ["T3: Managing workload and link worker well-being",
                                         "T4: Training, knowledge and skills"]
    assert q3["Meta-narrative"] == ""
    by_kind = triangulation(tri, QUESTIONS)
    assert "diary" in by_kind.columns and "interview" in by_kind.columns
    long = triangulation_long(tri, QUESTIONS, by="dataset")
    row = long[(long["question"] == "Q3") & (long["item_type"] == "theory") & (long["data_source"] == "Reflective diaries")]
    assert row["n"].tolist() == [1]
    with pytest.raises(SpRealistError, match="no theme"):
        triangulation(tri, {"Q1": {"themes": ["Nope"]}})


def test_cli_graph_suggest_triangulate(runner, cli, tri, tmp_path):
    p = ["-p", tri.location]
    r = runner.invoke(cli, ["graph", "export", str(tmp_path / "g.graphml"), *p])
    assert r.exit_code == 0, r.output
    assert "nodes" in r.stderr and read_graph(tmp_path / "g.graphml").number_of_nodes() > 0
    r = runner.invoke(cli, ["graph", "export", str(tmp_path / "g.txt"), "--format", "mermaid", "--theory", "T1", *p])
    assert r.exit_code == 0 and (tmp_path / "g.txt").read_text().startswith("flowchart LR")
    r = runner.invoke(cli, ["graph", "render", str(tmp_path / "g.png"), "--theory", "T2", *p])
    assert r.exit_code == 0 and (tmp_path / "g.png").stat().st_size > 1000
    r = runner.invoke(cli, ["graph", "render", str(tmp_path / "g.bmp"), *p])
    assert r.exit_code == 1 and "Error:" in r.stderr
    r = runner.invoke(cli, ["graph", "summary", "--format", "json", *p])
    assert {"item": "cmoc nodes", "count": 13} in json.loads(r.stdout)
    qfile = tmp_path / "study.yaml"
    qfile.write_text("title: x\nquestions:\n  Q1: How effective?\n  Q3: What factors?\n")
    r = runner.invoke(cli, ["triangulate", "--questions", str(qfile), "--by", "dataset", "--format", "json", *p])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["question"] for x in rows] == ["Q1", "Q3"] and rows[1]["Reflective diaries"].startswith("T1:")
    r = runner.invoke(cli, ["triangulate", "--question", "Q4=Role in the wider system?", "--long", "--format", "csv", *p])
    assert r.exit_code == 0 and "T4: Training" in r.stdout
    r = runner.invoke(cli, ["suggest", "--format", "json", *p])
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    r = runner.invoke(cli, ["suggest", "accept", "cnothere", "--key", "Z1", *p])
    assert r.exit_code == 1 and "No candidate" in r.stderr
    with tri.connect() as conn:
        assert conn.execute(select(S.cmocs.c.key).where(S.cmocs.c.key == "Z1")).first() is None


GOLDEN = Path(__file__).parent / "data" / "cmoc" / "golden"


def test_golden_table_6_1_documents(project, runner, cli, tmp_path):
    """DOT, Mermaid and the Markdown CMOC table of theory one match the reviewed golden files."""
    import_theories_yaml(project, THEORIES)
    relate_cmocs(project, "T1.2", "T1.3", "chains")
    G = programme_graph(project, "T1")
    assert to_dot(G) == (GOLDEN / "table-6-1.dot").read_text()
    assert to_mermaid(G) == (GOLDEN / "table-6-1.mmd").read_text()
    r = runner.invoke(cli, ["cmoc", "table", "--theory", "T1", "--format", "md", "-p", project.location])
    assert r.exit_code == 0 and r.stdout == (GOLDEN / "table-6-1.md").read_text()


def _rendered_figure(G, path, monkeypatch):
    """Render ``G`` and return the matplotlib figure render_graph drew (kept open for inspection)."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    render_graph(G, path)
    return figures[-1]


@pytest.mark.sqlite_only("drawing a graph; the graph is read from the store on both back ends above")
@pytest.mark.parametrize("fifty", [False, True])
def test_render_draws_arrowheads_that_stop_at_the_node_boxes(theory_project, tmp_path, monkeypatch, fifty):
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MplPath

    if fifty:
        for t in range(6, 11):
            add_theory(theory_project, f"T{t}", f"Theory {t}")
            for c in range(1, 11):
                add_cmoc(theory_project, f"T{t}.{c}", theory=f"T{t}", context=f"context {t}.{c} " * 4,
                         mechanism_response=f"mechanism {t}.{c}", outcome=f"outcome {t}.{c} " * 6)
    G = programme_graph(theory_project)
    fig = _rendered_figure(G, tmp_path / "g.png", monkeypatch)
    ax = fig.axes[0]
    arrows = {p.get_label(): p for p in ax.patches if isinstance(p, FancyArrowPatch)}
    assert sorted(arrows) == sorted(f"{u} -> {v}" for u, v in G.edges)
    for p in arrows.values():
        assert type(p.get_arrowstyle()).__name__ == "CurveFilledB"  # "-|>": a filled head at the target
    fig.canvas.draw()
    boxes = {t.get_label(): t.get_bbox_patch().get_window_extent() for t in ax.texts}  # pixels, as drawn
    causal = [(u, v) for u, v, d in G.edges(data=True) if d["kind"] in ("triggers", "produces")]
    assert causal
    for u, v in causal:
        path = arrows[f"{u} -> {v}"].get_path()
        points = [ax.transData.transform(xy) for xy, code in zip(path.vertices, path.codes)
                  if code != MplPath.CLOSEPOLY]
        # The head ends just before the target's label box (not hidden under it, as it was) ...
        box, tip = boxes[v], points[2]  # the end of the line, where the head points
        gap = np.hypot(max(box.x0 - tip[0], 0, tip[0] - box.x1), max(box.y0 - tip[1], 0, tip[1] - box.y1))
        assert 0 < gap < 8, (u, v, gap)  # pixels at 100 dpi: a few points
        # ... and the line runs from outside the source's box to outside the target's.
        for box in (boxes[u], boxes[v]):
            assert not any(box.contains(*xy) for xy in points[:3]), (u, v)
    import matplotlib.pyplot as plt

    plt.close(fig)

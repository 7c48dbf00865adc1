"""Benchmark: realist analysis (theory and analysis files, saturation, queue, if/then, graph).

    python -m benchmarks.cmoc                                # 200 interviews, 1M words, 50 CMOCs, 10,000 excerpts
    python -m benchmarks.cmoc --words 200000 --evidence 2000 # a quicker run

Each step is timed against the bare library doing the same work in the same run:

1. theory file import (50 CMOCs in 5 theories, into an empty project) vs ``yaml`` + one SQLAlchemy Core
   ``insert`` of the same rows;
2. analysis file import (N excerpts located by span, each with an appraisal and an evidence link) vs
   ``yaml`` (libyaml) + Core inserts of the excerpts, appraisals and evidence;
3. saturation table vs pandas reading the same joined rows and doing the group-by counts;
4. appraisal queue (every segment) vs a Core select of segments and appraised spans + a set difference;
5. if/then statements for 50 CMOCs vs one ``jinja2.Template.render`` per CMOC;
6. programme graph + PNG render vs bare networkx + ``nx.draw`` (multipartite layout) to PNG.

Results are printed as Markdown for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.corpus import generate


def timed(fn, runs: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def build_sources(project, words: int, files: int) -> list[tuple[str, int, int]]:
    """Interview sources with one segment per turn; return (source, start, end) of every turn."""
    from sp_realist.sources import Segment, SourceDraft, add_source

    spans = []
    with project.begin() as conn:
        for i, (name, text) in enumerate(generate(n_files=files, total_words=words)):
            segs, pos = [], 0
            for block in text.split("\n\n"):
                end = min(pos + len(block) + 2, len(text))
                speaker = block.split(":", 1)[0]
                segs.append(Segment(pos, end, kind="turn", speaker=speaker,
                                    participant_code=None if speaker == "Interviewer" else f"S{i % 5 + 1} {speaker}"))
                if speaker != "Interviewer":
                    spans.append((name, pos, pos + len(block)))
                pos = end
            segs[-1].end = len(text)
            add_source(conn, SourceDraft(name=name, kind="interview", text=text, segments=segs, checksum=name,
                                         date=f"2019-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
                                         attributes={"site": f"S{i % 5 + 1}"}))
    return spans


def theory_doc(n_theories: int = 5, per_theory: int = 10, seed: int = 3) -> dict:
    rng = random.Random(seed)
    words = "induction referral paperwork workload peer support training diary client anxiety listening".split()

    def phrase(n):
        return " ".join(rng.choice(words) for _ in range(n)).capitalize()

    return {"theories": [{"key": f"T{t}", "title": phrase(5), "questions": ["Q2", "Q3"],
                          "cmocs": [{"key": f"T{t}.{c}", "context": phrase(8), "mechanism_response": phrase(4),
                                     "outcome": phrase(10), "status": "complete"}
                                    for c in range(1, per_theory + 1)]}
                         for t in range(1, n_theories + 1)]}


def analysis_doc(spans, cmoc_keys, n: int, seed: int = 5) -> dict:
    rng = random.Random(seed)
    picked = rng.sample(spans, min(n, len(spans)))
    comps = ["context", "mechanism_response", "outcome"]
    return {"analyst": "RA", "excerpts": [
        {"source": s, "span": [a, b],
         "appraisal": {"relevance": "relevant", "trust": rng.choice(["high", "moderate"]),
                       "interpretation": comps[i % 3], "cmoc_judgement": "supports", "cmoc": cmoc_keys[i % len(cmoc_keys)]},
         "evidence": [{"cmoc": cmoc_keys[i % len(cmoc_keys)], "role": "refutes" if i % 17 == 0 else "supports",
                       "component": comps[i % 3]}]}
        for i, (s, a, b) in enumerate(picked)]}


def bare_theory_import(engine_url: str, path: Path) -> int:
    from sqlalchemy import create_engine, insert

    from sp_realist import schema as S
    from sp_realist.store import now

    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    engine = create_engine(engine_url)
    ts = now()
    rows = [dict(key=c["key"], context=c["context"], mechanism_response=c["mechanism_response"],
                 outcome=c["outcome"], status=c["status"], ord=i, created_at=ts, updated_at=ts)
            for i, c in enumerate(c for t in doc["theories"] for c in t["cmocs"])]
    with engine.begin() as conn:
        conn.execute(insert(S.cmocs), rows)
    engine.dispose()
    return len(rows)


def bare_analysis_import(engine_url: str, path: Path, source_ids: dict, cmoc_ids: dict) -> int:
    from sqlalchemy import create_engine, insert

    from sp_realist import schema as S
    from sp_realist.store import now

    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    engine = create_engine(engine_url)
    ts = now()
    with engine.begin() as conn:
        ex = [dict(id=i + 1, source_id=source_ids[e["source"]], start=e["span"][0], end=e["span"][1], created_at=ts)
              for i, e in enumerate(doc["excerpts"])]
        conn.execute(insert(S.excerpts), ex)
        conn.execute(insert(S.appraisals), [dict(excerpt_id=i + 1, analyst="RA", relevance="relevant",
                                                 trust=e["appraisal"]["trust"],
                                                 interpretation=e["appraisal"]["interpretation"],
                                                 cmoc_judgement="supports", cmoc_id=cmoc_ids[e["appraisal"]["cmoc"]],
                                                 created_at=ts, updated_at=ts)
                                            for i, e in enumerate(doc["excerpts"])])
        conn.execute(insert(S.cmoc_evidence), [dict(cmoc_id=cmoc_ids[v["cmoc"]], excerpt_id=i + 1, role=v["role"],
                                                    component=v["component"], created_at=ts)
                                               for i, e in enumerate(doc["excerpts"]) for v in e["evidence"]])
    engine.dispose()
    return len(doc["excerpts"])


def bare_saturation(engine_url: str):
    import pandas as pd
    from sqlalchemy import create_engine, select

    from sp_realist import schema as S

    engine = create_engine(engine_url)
    ev, ex, seg = S.cmoc_evidence, S.excerpts, S.segments
    q = (select(ev.c.cmoc_id, ev.c.role, ev.c.excerpt_id, ex.c.source_id, seg.c.participant_id)
         .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id)
                      .join(seg, (seg.c.source_id == ex.c.source_id) & (seg.c.start <= ex.c.start)
                            & (seg.c.end > ex.c.start))))
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=["cmoc_id", "role", "excerpt_id", "source_id", "pid"])
    engine.dispose()
    sup = df[df.role == "supports"]
    return sup.groupby("cmoc_id").agg(supporting=("excerpt_id", "nunique"), participants=("pid", "nunique"),
                                      sources=("source_id", "nunique"))


def bare_queue(engine_url: str) -> int:
    from sqlalchemy import create_engine, select

    from sp_realist import schema as S

    engine = create_engine(engine_url)
    with engine.connect() as conn:
        segs = conn.execute(select(S.segments.c.source_id, S.segments.c.start, S.segments.c.end)).all()
        done = {tuple(r) for r in conn.execute(select(S.excerpts.c.source_id, S.excerpts.c.start, S.excerpts.c.end)
                                               .join(S.appraisals, S.appraisals.c.excerpt_id == S.excerpts.c.id))}
    engine.dispose()
    return sum(1 for s in segs if tuple(s) not in done)


def bare_ifthen(rows: list[dict]) -> list[str]:
    import jinja2

    t = jinja2.Template("If there is {{ c }} then {{ m }}, resulting in {{ o }}.")
    return [t.render(c=r["context"], m=r["mechanism_response"], o=r["outcome"]) for r in rows]


def bare_graph_png(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    G = nx.DiGraph()
    for r in rows:
        k = r["key"]
        for layer, n in enumerate((f"cmoc:{k}", f"context:{k}", f"mechanism:{k}", f"outcome:{k}")):
            G.add_node(n, layer=layer, label=r.get(n.split(":")[0], k))
        G.add_edge(f"cmoc:{k}", f"context:{k}")
        G.add_edge(f"context:{k}", f"mechanism:{k}")
        G.add_edge(f"mechanism:{k}", f"outcome:{k}")
    pos = nx.multipartite_layout(G, subset_key="layer")
    fig, ax = plt.subplots(figsize=(13, 31))
    nx.draw(G, pos, ax=ax, labels=nx.get_node_attributes(G, "label"), font_size=7, node_size=50)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--evidence", type=int, default=10_000)
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from sp_realist import schema as S
    from sp_realist.cmoc import (appraisal_queue, cmoc_table, ifthen_statements, import_analysis_yaml,
                                 import_theories_yaml, programme_graph, render_graph, saturation_table)
    from sp_realist.store import Project

    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tfile = tmp / "theories.yaml"
        tdoc = theory_doc()
        tfile.write_text(yaml.safe_dump(tdoc, sort_keys=False), encoding="utf-8")
        cmoc_keys = [c["key"] for t in tdoc["theories"] for c in t["cmocs"]]

        # 1. theory file import into empty projects (created outside the timing)
        fresh = [Project.create(tmp / f"t{i}.sprealist") for i in range(3)]
        bare_dbs = []
        for i in range(3):
            Project.create(tmp / f"b{i}.sprealist").close()
            bare_dbs.append(f"sqlite:///{tmp / f'b{i}.sprealist'}")

        def ours_theory():
            import_theories_yaml(fresh.pop(), tfile)

        def bare_theory():
            return bare_theory_import(bare_dbs.pop(), tfile)

        t_ours, _ = timed(ours_theory)
        t_bare, _ = timed(bare_theory)
        rows_out.append(("theory file import (5 theories, 50 CMOCs)", t_ours, t_bare))

        # The main project: sources, theories.
        project = Project.create(tmp / "bench.sprealist")
        t0 = time.perf_counter()
        spans = build_sources(project, args.words, args.files)
        t_sources = time.perf_counter() - t0
        import_theories_yaml(project, tfile)
        afile = tmp / "analysis.yaml"
        adoc = analysis_doc(spans, cmoc_keys, args.evidence)
        afile.write_text(yaml.safe_dump(adoc, sort_keys=False), encoding="utf-8")
        n_ev = len(adoc["excerpts"])

        # 2. analysis import: ours into the project (once: a second run would be a no-op merge);
        #    bare into a copy of the project's sources.
        import shutil

        location = project.location
        project.close()  # checkpoint the WAL so the copy is complete
        shutil.copy(location, tmp / "bare.sprealist")
        project = Project.open(location)
        t0 = time.perf_counter()
        import_analysis_yaml(project, afile)
        t_ours = time.perf_counter() - t0
        with project.connect() as conn:
            source_ids = dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())
            cmoc_ids = dict(conn.execute(select(S.cmocs.c.key, S.cmocs.c.id)).all())
        bare_url = f"sqlite:///{tmp / 'bare.sprealist'}"
        t0 = time.perf_counter()
        bare_analysis_import(bare_url, afile, source_ids, cmoc_ids)
        t_bare = time.perf_counter() - t0
        rows_out.append((f"analysis file import ({n_ev:,} excerpts: appraisal + evidence)", t_ours, t_bare))

        # 3. saturation
        t_ours, sat = timed(lambda: saturation_table(project))
        t_bare, bare = timed(lambda: bare_saturation(bare_url))
        ours_sup = sat[sat["level"] == "cmoc"].set_index("cmoc")["supporting"]
        keys_by_id = {v: k for k, v in cmoc_ids.items()}
        assert all(ours_sup[keys_by_id[cid]] == n for cid, n in bare["supporting"].items()), "counts differ"
        rows_out.append((f"saturation table (50 CMOCs, {n_ev:,} evidence links)", t_ours, t_bare))

        # 4. queue
        t_ours, q = timed(lambda: appraisal_queue(project, unit="segment"))
        t_bare, _ = timed(lambda: bare_queue(bare_url))
        rows_out.append((f"appraisal queue ({len(q):,} unappraised segments listed)", t_ours, t_bare))

        # 5. if/then + table
        with project.connect() as conn:
            crow = [dict(r) for r in conn.execute(select(S.cmocs)).mappings()]
        t_ours, _ = timed(lambda: (ifthen_statements(project), cmoc_table(project)))
        t_bare, _ = timed(lambda: bare_ifthen(crow))
        rows_out.append(("if/then statements + CMOC table (50 CMOCs)", t_ours, t_bare))

        # 6. graph
        t_ours, _ = timed(lambda: render_graph(programme_graph(project), tmp / "ours.png"), runs=1)
        t_bare, _ = timed(lambda: bare_graph_png(crow, tmp / "bare.png"), runs=1)
        rows_out.append(("programme graph + PNG (5 theories, 50 CMOCs)", t_ours, t_bare))
        project.close()

    print(f"Corpus: {args.files} interviews, {args.words:,} words (sources stored in {t_sources:.2f} s).\n")
    print("| work | sp_realist | bare library | ratio |")
    print("| --- | --- | --- | --- |")
    for name, a, b in rows_out:
        print(f"| {name} | {a:.3f} s | {b:.3f} s | {a / b:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark REFI-QDA export and import against the bare libraries doing the same work.

    python benchmarks/exchange.py [--files 200] [--words 1000000] [--codings 25]

Builds a deterministic project (benchmarks/corpus.py transcripts, a 20-code
codebook, ``--codings`` codings per source at deterministic word-aligned spans),
then times, in the same run:

* ``export_qdpx`` vs. ElementTree building the same Sources/Selections/Codings
  XML plus ``zipfile`` writing the same texts (what any exporter must do);
* ``import_qdpx`` (into a new project: read, check, detect positions, write in
  one transaction) vs. ``zipfile`` + defusedxml parsing the same file and
  inserting the same sources and codings with bare SQLAlchemy Core.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from defusedxml import ElementTree as DET  # noqa: E402
from sqlalchemy import create_engine, insert  # noqa: E402

from benchmarks.corpus import generate  # noqa: E402
from sp_realist import schema as S  # noqa: E402
from sp_realist.exchange.qdpx_export import export_qdpx  # noqa: E402
from sp_realist.exchange.qdpx_import import import_qdpx_new  # noqa: E402
from sp_realist.sources import Segment, SourceDraft, add_source  # noqa: E402
from sp_realist.store import Project, stable_guid  # noqa: E402


def build(path: Path, files: int, words: int, per_source: int) -> tuple[int, int]:
    rng = random.Random(7)
    ts = "2020-01-01T00:00:00+00:00"
    n_codings = 0
    with Project.create(path) as p, p.begin() as conn:
        code_ids = [conn.execute(insert(S.codes).values(name=f"code {i}", ord=i, created_at=ts)).inserted_primary_key[0]
                    for i in range(20)]
        rows = []
        for name, text in generate(files, words):
            segs, pos = [], 0
            for line in text.splitlines(keepends=True):
                segs.append(Segment(pos, pos + len(line)))
                pos += len(line)
            sid = add_source(conn, SourceDraft(name=name, kind="interview", text=text, segments=segs, checksum=name))
            starts = [i + 1 for i, c in enumerate(text) if c == " "]
            for _ in range(per_source):
                a = rng.choice(starts[:-40])
                b = text.find(" ", a + rng.randint(20, 200))
                if b > a:
                    rows.append(dict(code_id=rng.choice(code_ids), source_id=sid, start=a, end=b, coder="RA",
                                     created_at=ts))
        unique = {(r["code_id"], r["source_id"], r["start"], r["end"]): r for r in rows}
        conn.execute(insert(S.codings), list(unique.values()))
        n_codings = len(unique)
    return files, n_codings


def bare_export(project_path: Path, out: Path) -> None:
    """The irreducible export: read the rows, build the XML, zip it with the texts."""
    eng = create_engine(f"sqlite:///{project_path}")
    with eng.connect() as conn:
        from sqlalchemy import select

        sources = conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.text)).all()
        codings = conn.execute(select(S.codings.c.source_id, S.codings.c.start, S.codings.c.end,
                                      S.codings.c.code_id)).all()
    by_source: dict[int, list] = {}
    for c in codings:
        by_source.setdefault(c.source_id, []).append(c)
    root = ET.Element("Project", {"xmlns": "urn:QDA-XML:project:1.0", "name": "bench"})
    srcs = ET.SubElement(root, "Sources")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for s in sources:
            g = stable_guid("s", s.name)
            el = ET.SubElement(srcs, "TextSource", {"guid": g, "name": s.name, "plainTextPath": f"internal://{g}.txt"})
            for c in by_source.get(s.id, []):
                sel = ET.SubElement(el, "PlainTextSelection", {"guid": stable_guid(g, c.start, c.end),
                                                               "startPosition": str(c.start), "endPosition": str(c.end)})
                cod = ET.SubElement(sel, "Coding", {"guid": stable_guid(g, c.start, c.end, c.code_id)})
                ET.SubElement(cod, "CodeRef", {"targetGUID": stable_guid("c", c.code_id)})
            zf.writestr(f"sources/{g}.txt", s.text.encode("utf-8"))
        zf.writestr("project.qde", ET.tostring(root, encoding="utf-8", xml_declaration=True))
    eng.dispose()


def bare_import(qdpx: Path, target: Path) -> None:
    """The irreducible import: unzip, parse safely, insert sources and codings."""
    ns = "{urn:QDA-XML:project:1.0}"
    with zipfile.ZipFile(qdpx) as zf:
        root = DET.fromstring(zf.read("project.qde"))
        eng = create_engine(f"sqlite:///{target}")
        S.metadata.create_all(eng)
        with eng.begin() as conn:
            codes = {}
            for i, c in enumerate(root.iter(f"{ns}Code")):
                codes[c.get("guid")] = conn.execute(insert(S.codes).values(
                    name=c.get("name"), ord=i, created_at="x")).inserted_primary_key[0]
            rows = []
            for order, s in enumerate(root.iter(f"{ns}TextSource")):
                text = zf.read("sources/" + s.get("plainTextPath")[len("internal://"):]).decode("utf-8")
                sid = conn.execute(insert(S.sources).values(
                    name=s.get("name"), kind="interview", checksum="x", text=text, created_at="x",
                    ingest_order=order)).inserted_primary_key[0]
                for sel in s.iter(f"{ns}PlainTextSelection"):
                    for cod in sel.iter(f"{ns}Coding"):
                        rows.append(dict(code_id=codes[cod.find(f"{ns}CodeRef").get("targetGUID")], source_id=sid,
                                         start=int(sel.get("startPosition")), end=int(sel.get("endPosition")),
                                         coder="RA", created_at="x"))
            conn.execute(insert(S.codings), rows)
        eng.dispose()


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--codings", type=int, default=25)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        proj = d / "bench.sprealist"
        n_sources, n_codings = build(proj, args.files, args.words, args.codings)
        project = Project.open(proj)
        counter = iter(range(10**6))

        def ours_export():
            export_qdpx(project, d / "ours.qdpx", force=True)

        def ours_import():
            import_qdpx_new(d / "ours.qdpx", d / f"imp{next(counter)}.sprealist")

        def bare_exp():
            bare_export(proj, d / "bare.qdpx")

        def bare_imp():
            bare_import(d / "ours.qdpx", d / f"bare{next(counter)}.sprealist")

        e_ours, e_bare = timed(ours_export, args.runs), timed(bare_exp, args.runs)
        i_ours, i_bare = timed(ours_import, args.runs), timed(bare_imp, args.runs)
        project.close()
        size = (d / "ours.qdpx").stat().st_size
    print(f"{n_sources} sources, {args.words} words, {n_codings} codings; qdpx {size / 1e6:.1f} MB\n")
    print("| work | sp_realist | bare libraries | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| export qdpx | {e_ours:.2f} s | {e_bare:.2f} s | {e_ours / e_bare:.1f}x |")
    print(f"| import qdpx (new project) | {i_ours:.2f} s | {i_bare:.2f} s | {i_ours / i_bare:.1f}x |")


if __name__ == "__main__":
    main()

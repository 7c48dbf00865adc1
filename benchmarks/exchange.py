"""Benchmark REFI-QDA export and import against the bare libraries doing the same work.

    python -m benchmarks.exchange                       # 200 sources, 1M words, 100,000 codings
    python -m benchmarks.exchange --total-codings 1000000

Builds a deterministic project (benchmarks/corpus.py transcripts, a 20-code
codebook, codings at deterministic word-aligned spans), then runs each piece of
work in its own process (``benchmarks.measure``: wall and CPU seconds of the
work, peak RSS of the whole process), best of ``--runs``:

* ``export_qdpx`` vs. ElementTree building the same Sources/Selections/Codings
  XML plus ``zipfile`` writing the same texts (what any exporter must do);
* ``import_qdpx_new`` (into a new project: read, check, detect positions, write
  in one transaction) vs. parsing the archive alone: ``zipfile`` + defusedxml
  parsing ``project.qde`` and reading every source text (issue 14's floor),
  and, for reference, that parse plus inserting the same sources and codings
  with bare SQLAlchemy Core.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from defusedxml import ElementTree as DET  # noqa: E402
from sqlalchemy import create_engine, insert  # noqa: E402

from benchmarks.corpus import generate  # noqa: E402
from benchmarks.measure import Clock, child_main, in_child  # noqa: E402
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


def bare_parse(qdpx: Path) -> int:
    """Parsing the archive alone: unzip, parse project.qde safely, read every source's text."""
    ns = "{urn:QDA-XML:project:1.0}"
    n = 0
    with zipfile.ZipFile(qdpx) as zf:
        root = DET.fromstring(zf.read("project.qde"))
        for s in root.iter(f"{ns}TextSource"):
            n += len(zf.read("sources/" + s.get("plainTextPath")[len("internal://"):]).decode("utf-8"))
    return n


def child(task: dict) -> dict:
    work = task["work"]
    with Clock() as c:
        if work == "export":
            with Project.open(task["project"]) as project:
                export_qdpx(project, task["out"], force=True)
        elif work == "bare_export":
            bare_export(Path(task["project"]), Path(task["out"]))
        elif work == "import":
            import_qdpx_new(task["qdpx"], task["target"])
        elif work == "bare_parse":
            bare_parse(Path(task["qdpx"]))
        else:
            bare_import(Path(task["qdpx"]), Path(task["target"]))
    return {"wall": c.wall, "cpu": c.cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--total-codings", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        proj = d / "bench.sprealist"
        n_sources, n_codings = build(proj, args.files, args.words, max(1, args.total_codings // args.files))
        counter = iter(range(10**6))

        def run(work: str, **task) -> dict:
            rs = []
            for _ in range(args.runs):
                for f in d.glob("target*"):
                    f.unlink()
                rs.append(in_child("benchmarks.exchange", {"work": work, **task}))
            return {k: min(r[k] for r in rs) for k in rs[0]}

        res = {
            "export": run("export", project=str(proj), out=str(d / "ours.qdpx")),
            "bare_export": run("bare_export", project=str(proj), out=str(d / "bare.qdpx")),
        }
        res["import"] = run("import", qdpx=str(d / "ours.qdpx"), target=str(d / "target.sprealist"))
        res["bare_parse"] = run("bare_parse", qdpx=str(d / "ours.qdpx"))
        res["bare_import"] = run("bare_import", qdpx=str(d / "ours.qdpx"), target=str(d / "target-bare.sprealist"))
        size = (d / "ours.qdpx").stat().st_size
        del counter
    print(f"{n_sources} sources, {args.words:,} words, {n_codings:,} codings; qdpx {size / 1e6:.1f} MB. "
          f"Wall / CPU seconds, best of {args.runs}; peak RSS of each whole process.\n")
    print("| work | sp_realist | baseline | bare | ratio (wall / CPU) | peak RSS (sp_realist / bare) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for ours, bare, label, what in (
            ("export", "bare_export", "export qdpx", "ElementTree XML + zip, bare"),
            ("import", "bare_parse", "import qdpx (new project)", "parse the archive alone"),
            ("import", "bare_import", "import qdpx (new project)", "parse + bare SQLAlchemy inserts")):
        o, b = res[ours], res[bare]
        print(f"| {label} | {o['wall']:.2f} / {o['cpu']:.2f} s | {what} | {b['wall']:.2f} / {b['cpu']:.2f} s "
              f"| {o['wall'] / b['wall']:.2f}x / {o['cpu'] / b['cpu']:.2f}x "
              f"| {o['rss_mib']:.0f} / {b['rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    if not child_main(child):
        main()

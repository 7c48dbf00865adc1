"""Benchmark: `sp-realist build` of the shipped Mind Cymru corpus.

    python benchmarks/corpus_build.py              # 3 runs, median
    python benchmarks/corpus_build.py --runs 5

In the same run it times

* ``sp_realist.report.study.build_study`` on ``corpora/mind-cymru-2020``: a
  fresh project, ingest of 14 files (42 diary entries, 7 interviews), codebook,
  autocoding with spaCy, codings, theories, 87 appraisals, then the Word, HTML
  and Markdown reports, the programme-theory figure and 15 CSV tables; and
* the bare libraries doing the irreducible part of the same work: reading the
  files (python-docx for the .docx diaries), ``yaml.safe_load`` of the five
  YAML files, locating every quote with ``str.find``, one ``spacy.blank("en")``
  + sentencizer pass over all texts, and writing one python-docx document with
  the four CMOC tables.

The ratio says how much the toolkit's bookkeeping (database, provenance,
checks, three report formats and a figure) costs on top of that.  Prints a
Markdown table (for docs/performance.md) and a JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "corpora" / "mind-cymru-2020"


def time_build(folder: Path, run: int) -> float:
    from sp_realist.report.study import build_study

    t0 = time.perf_counter()
    result = build_study(CORPUS, out=folder / f"build-{run}")
    elapsed = time.perf_counter() - t0
    assert result.counts["cmocs"] == 13 and result.counts["theories"] == 4, result.counts
    return elapsed


def time_bare() -> float:
    import docx
    import spacy
    import yaml

    t0 = time.perf_counter()
    texts = []
    for path in sorted((CORPUS / "diaries").iterdir()) + sorted((CORPUS / "interviews").glob("*.*")):
        if path.suffix == ".docx":
            texts.append("\n".join(p.text for p in docx.Document(str(path)).paragraphs))
        elif path.suffix in (".md", ".txt"):
            texts.append(path.read_text(encoding="utf-8"))
    data = {name: yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))
            for name in ("study.yaml", "codebook.yaml", "codings.yaml", "theories.yaml", "analysis.yaml")}
    whole = "\n".join(texts)
    quotes = [e["quote"] for e in data["analysis.yaml"]["excerpts"]] + [c["quote"] for c in data["codings.yaml"]["codings"]]
    found = sum(1 for q in quotes if whole.find(q) >= 0)
    assert found == len(quotes)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    sentences = sum(len(list(doc.sents)) for doc in nlp.pipe(texts))
    assert sentences > 0
    document = docx.Document()
    for theory in data["theories.yaml"]["theories"]:
        document.add_heading(theory["title"], level=2)
        table = document.add_table(rows=1, cols=3)
        for cell, text in zip(table.rows[0].cells, ("Context (Resource)", "Mechanism (Behaviour)", "Outcome")):
            cell.text = text
        for c in theory["cmocs"]:
            row = table.add_row().cells
            row[0].text, row[1].text, row[2].text = c["context"], c["mechanism_response"], c["outcome"]
    document.save(io.BytesIO())
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    builds, bares = [], []
    with tempfile.TemporaryDirectory() as tmp:
        time_bare()  # warm imports and spaCy's tables for both sides
        for run in range(args.runs):
            builds.append(time_build(Path(tmp), run))
            bares.append(time_bare())
    build, bare = statistics.median(builds), statistics.median(bares)
    print("| work (Mind Cymru corpus: 14 files, 49 sources, 87 appraisals) | median of %d runs |" % args.runs)
    print("| --- | --- |")
    print(f"| `sp-realist build` (project, autocoding, docx + html + md reports, figure, 15 CSV tables) | {build:.2f} s |")
    print(f"| bare libraries (read files, load YAML, find quotes, spaCy sentencizer, one docx with 4 tables) | {bare:.2f} s |")
    print(f"| ratio | {build / bare:.1f}x |")
    print(json.dumps({"benchmark": "corpus_build", "runs": args.runs, "build_s": round(build, 3),
                      "bare_s": round(bare, 3), "ratio": round(build / bare, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

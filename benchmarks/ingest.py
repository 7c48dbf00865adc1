"""Benchmark: ingest of a deterministic transcript corpus against bare spaCy.

    python benchmarks/ingest.py                 # 200 transcripts, about 1M words
    python benchmarks/ingest.py --scale 10      # 2,000 transcripts, about 10M words

In the same run it times

* ``sp_realist.ingest.ingest_paths`` into a fresh project (read, decode,
  segment into speaker turns, store text + segments in SQLite, one
  transaction per file), and
* bare ``spacy.blank("en")`` + ``sentencizer`` over the same texts
  (``nlp.pipe``), the cheapest spaCy pass an analysis would make,

then measures peak Python memory (tracemalloc) of ingest on half the corpus and
on the whole corpus: memory should stay flat as the corpus grows, because
files are read and stored one at a time.  Prints a Markdown table (for
docs/performance.md) and a JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import write_corpus  # noqa: E402
from sp_realist.ingest import ingest_paths  # noqa: E402
from sp_realist.store import Project  # noqa: E402


def time_ingest(paths: list[Path], folder: Path, tag: str) -> tuple[float, int, int]:
    project = Project.create(folder / f"bench-{tag}.sprealist")
    try:
        t0 = time.perf_counter()
        report = ingest_paths(project, paths)
        elapsed = time.perf_counter() - t0
        assert report.ok, report.refused[:1]
        from sqlalchemy import func, select

        from sp_realist import schema as S

        with project.connect() as conn:
            nseg = conn.execute(select(func.count()).select_from(S.segments)).scalar_one()
        return elapsed, len(report.source_names), nseg
    finally:
        project.close()


def time_spacy(paths: list[Path]) -> tuple[float, int]:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 10_000_000
    t0 = time.perf_counter()
    sentences = 0
    texts = (p.read_text(encoding="utf-8") for p in paths)
    for doc in nlp.pipe(texts, batch_size=8):
        sentences += sum(1 for _ in doc.sents)
    return time.perf_counter() - t0, sentences


def peak_memory_ingest(paths: list[Path], folder: Path, tag: str) -> float:
    project = Project.create(folder / f"mem-{tag}.sprealist")
    try:
        gc.collect()
        tracemalloc.start()
        ingest_paths(project, paths)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak / 2**20
    finally:
        project.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="1 = 200 files / 1M words; 10 = 2,000 files / 10M words")
    ap.add_argument("--corpus-dir", default=None, help="Where to write the corpus (default: a temporary folder).")
    ap.add_argument("--repeat", type=int, default=1, help="Repeat the timings and keep the best.")
    args = ap.parse_args(argv)
    n_files = max(2, int(200 * args.scale))
    words = int(1_000_000 * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_dir = Path(args.corpus_dir) if args.corpus_dir else tmp / "corpus"
        paths = write_corpus(corpus_dir, n_files=n_files, total_words=words)
        total_words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
        total_mb = sum(p.stat().st_size for p in paths) / 2**20
        best_ingest = best_spacy = float("inf")
        for i in range(args.repeat):
            t_spacy, sents = time_spacy(paths)
            t_ingest, nsrc, nseg = time_ingest(paths, tmp, f"t{i}")
            best_ingest, best_spacy = min(best_ingest, t_ingest), min(best_spacy, t_spacy)
        half = paths[: len(paths) // 2]
        mem_half = peak_memory_ingest(half, tmp, "half")
        mem_full = peak_memory_ingest(paths, tmp, "full")
    result = {
        "files": n_files, "words": total_words, "megabytes": round(total_mb, 1), "sources": nsrc, "segments": nseg,
        "ingest_s": round(best_ingest, 2), "spacy_s": round(best_spacy, 2), "sentences": sents,
        "ratio": round(best_ingest / best_spacy, 2), "words_per_s": int(total_words / best_ingest),
        "peak_mb_half": round(mem_half, 1), "peak_mb_full": round(mem_full, 1),
    }
    print(f"| corpus | ingest (s) | bare spaCy blank+sentencizer (s) | ingest / spaCy | ingest words/s | "
          f"peak MiB, half corpus | peak MiB, whole corpus |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {n_files} files, {total_words:,} words ({result['megabytes']} MiB), {nseg:,} segments | "
          f"{result['ingest_s']} | {result['spacy_s']} | {result['ratio']}x | {result['words_per_s']:,} | "
          f"{result['peak_mb_half']} | {result['peak_mb_full']} |")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

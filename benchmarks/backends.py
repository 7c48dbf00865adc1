"""Benchmark: the same bulk inserts and queries on SQLite and on PostgreSQL.

    python -m benchmarks.backends                                   # a throwaway local PostgreSQL cluster
    python -m benchmarks.backends --url postgresql+psycopg://alice@db.example.org/bench   # an empty database
    python -m benchmarks.backends --words 200000 --codings 20000   # a quicker run

On each back end, into a fresh project:

1. bulk inserts: ``ingest_paths`` of the deterministic transcript corpus of ``benchmarks/corpus.py`` (source
   text and speaker-turn segments; up to 64 files share a write transaction, each in its own savepoint), a codebook of 100 codes, then 100,000 codings
   in one transaction (``coding.codings.insert_codings``);
2. queries over those codings, best of 3: ``frequencies``, ``frequencies(by="site")``, both
   ``cooccurrence`` modes, ``framework_matrix(rows="sites")`` and ``coded_excerpts`` of one code.

Without ``--url`` the PostgreSQL side is a throwaway cluster made like the tests' (``tests/pg_cluster.py``:
``initdb`` + ``pg_ctl`` on a unix socket, ``fsync=off``, so its writes are not durable; a real server with
``fsync`` on is slower to commit). Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.autocode import add_random_codings  # noqa: E402
from benchmarks.corpus import write_corpus  # noqa: E402


def best_of(n: int, fn, *args, **kwargs) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return min(times)


def run(target: str, paths: list[Path], n_codings: int) -> dict[str, float]:
    from sqlalchemy import select

    from sp_realist import schema as S
    from sp_realist.coding import cooccurrence, frequencies
    from sp_realist.coding.codebook import add_code
    from sp_realist.coding.retrieval import coded_excerpts, framework_matrix
    from sp_realist.ingest import ingest_paths
    from sp_realist.store import Project

    out: dict[str, float] = {}
    project = Project.create(target)
    try:
        t0 = time.perf_counter()
        report = ingest_paths(project, paths, site="S1")
        out["ingest"] = time.perf_counter() - t0
        assert report.ok, report.refused[:1]
        t0 = time.perf_counter()
        for i in range(100):
            add_code(project, f"Code {i:03d}")
        out["codes"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        add_random_codings(project, n_codings)
        out["codings"] = time.perf_counter() - t0
        with project.connect() as conn:
            first = conn.execute(select(S.codes.c.name).order_by(S.codes.c.id)).first()[0]
        for label, fn, kw in (
            ("frequencies()", frequencies, {}),
            ('frequencies(by="site")', frequencies, {"by": "site"}),
            ('cooccurrence(mode="overlap")', cooccurrence, {"mode": "overlap"}),
            ('cooccurrence(mode="segment")', cooccurrence, {"mode": "segment"}),
            ('framework_matrix(rows="sites")', framework_matrix, {"rows": "sites"}),
            ("coded_excerpts(one code)", coded_excerpts, {"code": first}),
        ):
            fn(project, **kw)  # warm: imports, caches
            out[label] = best_of(3, fn, project, **kw)
    finally:
        project.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None, help="An empty PostgreSQL database (default: a throwaway local cluster).")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--codings", type=int, default=100_000)
    args = ap.parse_args(argv)

    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_corpus(folder / "corpus", n_files=args.files, total_words=args.words)
        words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
        url = args.url
        try:
            if url is None:
                sys.path.insert(0, str(ROOT / "tests"))
                from pg_cluster import Cluster, Databases

                cluster = Cluster()
                url = Databases(cluster).empty()
            results = {"SQLite": run(str(folder / "bench.sprealist"), paths, args.codings),
                       "PostgreSQL": run(url, paths, args.codings)}
        finally:
            if cluster is not None:
                cluster.stop()

    a, b = results["SQLite"], results["PostgreSQL"]
    print(f"{len(paths)} files, {words:,} words; 100 codes; {args.codings:,} codings.\n")
    print("| work | SQLite | PostgreSQL | PostgreSQL / SQLite |")
    print("| --- | ---: | ---: | ---: |")
    labels = {"ingest": f"`ingest_paths`: {len(paths)} files (shared write transactions, a savepoint each)",
              "codes": "`add_code` x 100 (one transaction each)",
              "codings": f"{args.codings:,} codings in one transaction"}
    for key in a:
        name = labels.get(key, f"`{key}`, best of 3")
        print(f"| {name} | {a[key]:.2f} s | {b[key]:.2f} s | {b[key] / a[key]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

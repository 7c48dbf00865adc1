"""Benchmark: ingest of a deterministic transcript corpus against its floor.

    python -m benchmarks.ingest                      # 200 transcripts, about 1M words
    python -m benchmarks.ingest --words 10000000     # 2,000 transcripts, about 10M words

Each piece of work runs in its own process (``benchmarks.measure``), which reports its wall and CPU
time and the peak RSS of the whole process:

* **ingest**: ``sp_realist.ingest.ingest_paths`` into a fresh project (read, decode, detect the kind,
  segment into speaker turns, look the file up, store text + segments + one audit row, one
  transaction per file);
* **floor**: bare ``sqlite3`` doing the irreducible part into a project file with the same tables and
  indexes: read each file, hash it, decode it, split it into speaker turns with one regular
  expression and insert the same source, segment and audit rows (``executemany``), in one
  transaction.

The goal (issue 14) is ingest within 2.5x of the floor.  Prints a Markdown row for
docs/performance.md and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.measure import Clock, child_main, compile_sp_realist, in_child

TURN = r"^([A-Z][^:\n]{0,39}):"


def floor(paths: list[Path], db_path: str) -> int:
    import datetime
    import hashlib
    import re
    import sqlite3

    turn = re.compile(TURN, re.M)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    nseg = 0
    with con:
        for order, path in enumerate(paths, start=1):
            data = path.read_bytes()
            checksum = hashlib.sha256(data).hexdigest()
            text = data.decode("utf-8").replace("\r\n", "\n")
            found = [(m.start(), m.group(1)) for m in turn.finditer(text)]
            now = datetime.datetime.now(datetime.timezone.utc).isoformat()
            sid = con.execute(
                "INSERT INTO sources (name, kind, checksum, text, file_name, file_path, file_format, created_at, "
                "ingest_order) VALUES (?,?,?,?,?,?,?,?,?)",
                (path.stem, "interview", checksum, text, path.name, str(path.resolve()), "txt", now, order)).lastrowid
            ends = [a for a, _ in found[1:]] + [len(text)]
            con.executemany('INSERT INTO segments (source_id, ord, start, "end", speaker, kind) VALUES (?,?,?,?,?,?)',
                            [(sid, i, a, b, lab, "turn") for i, ((a, lab), b) in enumerate(zip(found, ends))])
            nseg += len(found)
            con.execute("INSERT INTO audit_log (at, action, target, detail) VALUES (?,?,?,?)",
                        (now, "ingest", path.name, json.dumps({"checksum": checksum, "sources": [path.stem]})))
    con.close()
    return nseg


def child(task: dict) -> dict:
    paths = sorted(Path(task["corpus"]).glob("*.txt"))
    from sp_realist.store import Project

    Project.create(task["db"]).close()  # the same tables and indexes for both
    if task["work"] == "floor":
        import sqlite3

        # the floor stores the rows alone: without the digests' triggers (schema 11), which ingest keeps up
        # and executemany would set up once per row
        con = sqlite3.connect(task["db"])
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            con.execute(f'DROP TRIGGER "{name}"')
        con.close()
        with Clock() as c:
            nseg = floor(paths, task["db"])
    else:
        from sp_realist.ingest import ingest_paths

        project = Project.open(task["db"])
        with Clock() as c:
            report = ingest_paths(project, paths)
        assert report.ok, report.refused[:1]
        from sqlalchemy import func, select

        from sp_realist import schema as S

        with project.connect() as conn:
            nseg = conn.execute(select(func.count()).select_from(S.segments)).scalar_one()
        project.close()
    return {"wall": c.wall, "cpu": c.cpu, "segments": nseg}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=None, help="default: one per 5,000 words")
    ap.add_argument("--corpus-dir", default=None, help="Where to write the corpus (default: a temporary folder).")
    ap.add_argument("--repeat", type=int, default=3, help="Runs of each; the best is kept.")
    args = ap.parse_args(argv)
    from benchmarks.corpus import write_corpus

    n_files = args.files or max(2, args.words // 5000)
    compile_sp_realist()  # as an installed package is (see benchmarks.measure.compile_sp_realist)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_dir = Path(args.corpus_dir) if args.corpus_dir else tmp / "corpus"
        paths = write_corpus(corpus_dir, n_files=n_files, total_words=args.words)
        total_words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
        runs: dict[str, list[dict]] = {"floor": [], "ingest": []}
        for i in range(args.repeat):  # interleaved, so that load on the machine hits both alike
            for work in runs:
                runs[work].append(in_child("benchmarks.ingest", {
                    "work": work, "corpus": str(corpus_dir), "db": str(tmp / f"{work}{i}.sprealist")}))
    best = {w: {k: min(r[k] for r in rs) for k in ("wall", "cpu", "rss_mib")} for w, rs in runs.items()}
    assert runs["floor"][0]["segments"] == runs["ingest"][0]["segments"], "the floor must store the same segments"
    f, g = best["floor"], best["ingest"]
    result = {"files": n_files, "words": total_words, "segments": runs["ingest"][0]["segments"],
              "floor_wall": round(f["wall"], 2), "floor_cpu": round(f["cpu"], 2),
              "ingest_wall": round(g["wall"], 2), "ingest_cpu": round(g["cpu"], 2),
              "ratio_wall": round(g["wall"] / f["wall"], 2), "ratio_cpu": round(g["cpu"] / f["cpu"], 2),
              "rss_floor_mib": f["rss_mib"], "rss_ingest_mib": g["rss_mib"],
              "words_per_s": int(total_words / g["wall"])}
    print("| corpus | floor: bare sqlite3 (wall / CPU) | ingest (wall / CPU) | ratio (wall / CPU) | words/s "
          "| peak RSS (floor / ingest) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {n_files:,} files, {total_words:,} words, {result['segments']:,} segments "
          f"| {f['wall']:.2f} s / {f['cpu']:.2f} s | {g['wall']:.2f} s / {g['cpu']:.2f} s "
          f"| {result['ratio_wall']}x / {result['ratio_cpu']}x | {result['words_per_s']:,} "
          f"| {f['rss_mib']:.0f} MiB / {g['rss_mib']:.0f} MiB |")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    if not child_main(child):
        main()

"""Benchmark: autocoding, frequencies and co-occurrence.

    python -m benchmarks.autocode                   # 1M words, 1,000 rules, 100k codings
    python -m benchmarks.autocode --words 10000000  # 10M words (2,000 files)
    python -m benchmarks.autocode --words 100000    # a quicker run

1. Autocoding: 1,000 phrase/keyword rules (sentence unit) over the
   deterministic corpus of ``benchmarks/corpus.py``, two rule sets (specific,
   dense).  Each piece of work runs in its own process (``benchmarks.measure``:
   wall and CPU seconds of the work, peak RSS of the whole process):

   * bare spaCy doing the matching alone (``nlp.make_doc`` + one
     ``PhraseMatcher`` with the same 1,000 patterns on the same texts, read
     from the project before the clock starts);
   * ``autocode(dry_run=True)``: sp_realist additionally reads the texts from
     the project as it goes, splits sentences, expands hits to units and
     builds the hits table with contexts; and, as ``sp-realist autocode
     --dry-run`` runs it on a terminal, ``autocode_summary(dry_run=True,
     first=200)`` (hits counted per rule as they are found, the first 200
     in full: what the terminal may show);
   * ``autocode()`` applying, with its write (the one transaction that
     stores the new codings and the audit row, commit included) timed on its
     own, against bare ``sqlite3`` ``executemany`` of the same rows into a
     copy of the same project file, committed.
2. Frequencies and co-occurrence over 100,000 codings (``--codings 0`` skips them).

Results are printed as Markdown for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import VOCAB, generate
from benchmarks.measure import Clock, child_main, compile_sp_realist, in_child


def build_project(folder: Path, words: int, files: int):
    from sp_realist.sources import Segment, SourceDraft, add_source
    from sp_realist.store import Project

    project = Project.create(folder / "bench.sprealist")
    texts = []
    with project.begin() as conn:
        for i, (name, text) in enumerate(generate(n_files=files, total_words=words)):
            segs, pos = [], 0
            for block in text.split("\n\n"):
                end = pos + len(block) + 2 if pos + len(block) + 2 <= len(text) else len(text)
                speaker = block.split(":", 1)[0]
                segs.append(Segment(pos, end, kind="turn", speaker=speaker,
                                    participant_code=None if speaker == "Interviewer" else f"S{i % 5 + 1} {speaker}"))
                pos = end
            segs[-1].end = len(text)
            add_source(conn, SourceDraft(name=name, kind="interview", text=text, segments=segs, checksum=name,
                                         attributes={"site": f"S{i % 5 + 1}", "wave": str(i % 2 + 1)}))
            texts.append(text)
    return project, texts


def make_rules(n_rules: int, seed: int = 11, kind: str = "dense") -> list[dict]:
    """Deterministic rules, 10 per code.

    ``dense``: 98% two- or three-word phrases and 2% single keywords drawn from
    the corpus's own 130-word vocabulary, so about 30% of all words are hits (a
    stress test).  ``specific``: three-word phrases, as a real codebook's
    phrases are, giving about one hit per rule.
    """
    rng = random.Random(seed)
    content = [w for w in VOCAB if len(w) > 3]
    seen, rules = set(), []
    while len(rules) < n_rules:
        if kind == "specific":
            spec = {"phrases": [f"{rng.choice(content)} {rng.choice(VOCAB)} {rng.choice(content)}"]}
        elif len(rules) % 50 == 49:
            spec = {"keywords": [rng.choice(content)]}
        elif len(rules) % 3 == 2:
            spec = {"phrases": [f"{rng.choice(content)} {rng.choice(VOCAB)} {rng.choice(content)}"]}
        else:
            spec = {"phrases": [f"{rng.choice(VOCAB)} {rng.choice(content)}"]}
        key = str(spec)
        if key in seen:
            continue
        seen.add(key)
        rules.append({"name": f"r{len(rules):04d}", "unit": "sentence", "code": f"Code {len(rules) // 10:03d}", **spec})
    return rules


def write_codebook(path: Path, rules: list[dict]) -> None:
    import yaml

    codes: dict[str, list] = {}
    for r in rules:
        codes.setdefault(r["code"], []).append({k: v for k, v in r.items() if k != "code"})
    path.write_text(yaml.safe_dump({"codes": [{"name": c, "rules": rs} for c, rs in codes.items()]}), encoding="utf-8")


def bare_phrasematcher(texts: list[str], rules: list[dict]) -> tuple[float, int]:
    import spacy
    from spacy.matcher import PhraseMatcher

    t0 = time.perf_counter()
    nlp = spacy.blank("en")
    nlp.max_length = 50_000_000
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    for r in rules:
        matcher.add(r["name"], [nlp.make_doc(p) for p in r.get("phrases", r.get("keywords"))])
    hits = 0
    for doc in nlp.tokenizer.pipe(texts, batch_size=64):
        hits += len(matcher(doc))
    return time.perf_counter() - t0, hits


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def add_random_codings(project, n: int, seed: int = 5) -> None:
    from sqlalchemy import select

    from sp_realist import schema as S
    from sp_realist.coding.codings import insert_codings

    rng = random.Random(seed)
    with project.begin() as conn:
        codes = [r[0] for r in conn.execute(select(S.codes.c.id))]
        srcs = [(sid, len(t)) for sid, t in conn.execute(select(S.sources.c.id, S.sources.c.text))]
        rows, seen = [], set()
        while len(rows) < n:
            sid, length = rng.choice(srcs)
            start = rng.randrange(0, length - 400)
            row = {"code_id": rng.choice(codes), "source_id": sid, "start": start,
                   "end": start + rng.randint(20, 400), "coder": rng.choice(["RA", "SM"]), "origin": "manual"}
            key = (row["code_id"], sid, row["start"], row["end"], row["coder"])
            if key not in seen:
                seen.add(key)
                rows.append(row)
        insert_codings(conn, rows)


def _texts(db: str) -> list[str]:
    import sqlite3

    con = sqlite3.connect(db)
    texts = [t for (t,) in con.execute("SELECT text FROM sources ORDER BY ingest_order")]
    con.close()
    return texts


def child(task: dict) -> dict:
    """One piece of work in its own process (see ``benchmarks.measure``)."""
    import shutil

    work, db = task["work"], task["db"]
    if work == "bare":
        texts = _texts(db)
        rules = make_rules(task["rules"], kind=task["kind"])
        bare_phrasematcher(texts[:2], rules)  # warm spaCy (blank pipeline, vocabulary)
        with Clock() as c:
            _t, hits = bare_phrasematcher(texts, rules)
        return {"wall": c.wall, "cpu": c.cpu, "hits": hits}
    from sp_realist.coding import autocode, autocode_summary
    from sp_realist.store import Project

    if work in ("dry", "dry_cli"):
        # dry_cli: what `sp-realist autocode --dry-run` runs on a terminal (counts, the first 200 hits)
        with Project.open(db) as project:
            autocode(project, dry_run=True, sources=[1])  # warm (imports, spaCy)
            with Clock() as c:
                if work == "dry_cli":
                    n = autocode_summary(project, dry_run=True, include_interviewer=True, first=200).hits
                else:
                    n = len(autocode(project, dry_run=True, include_interviewer=True))
        return {"wall": c.wall, "cpu": c.cpu, "hits": n}
    if work == "apply_cli":  # what `sp-realist autocode` runs on a terminal: counts, then the write
        shutil.copy(db, task["copy"])
        with Project.open(task["copy"]) as project:
            autocode(project, dry_run=True, sources=[1])  # warm
            with Clock() as c:
                s = autocode_summary(project, include_interviewer=True, first=0)
        return {"wall": c.wall, "cpu": c.cpu, "hits": s.hits, "codings": s.added}
    # apply, on a copy; the write transaction is timed on its own, then the same rows are written
    # with bare sqlite3 into another copy of the project as it was
    import sqlite3
    from contextlib import contextmanager

    shutil.copy(db, task["copy"])
    shutil.copy(db, task["bare_copy"])
    captured: dict = {}
    with Project.open(task["copy"]) as project:
        autocode(project, dry_run=True, sources=[1])  # warm
        begin = project.begin

        @contextmanager
        def timed_begin():
            with Clock() as w:
                with begin() as conn:
                    yield conn
            captured["write"] = w

        project.begin = timed_begin
        with Clock() as c:
            hits = autocode(project, include_interviewer=True)
    con = sqlite3.connect(task["copy"])  # the rows the write stored, in its order, for the bare side
    rows = con.execute('SELECT code_id, source_id, start, "end", coder, origin, created_at FROM codings '
                       "ORDER BY id").fetchall()
    con.close()
    con = sqlite3.connect(task["bare_copy"])
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    # the bare side inserts into the tables alone: without the digests' triggers (schema 11), which the
    # write path keeps up and executemany would set up once per row
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    with Clock() as b:
        with con:
            con.executemany('INSERT INTO codings (code_id, source_id, start, "end", coder, origin, created_at) '
                            "VALUES (?,?,?,?,?,?,?)", rows)
    con.close()
    w = captured["write"]
    return {"wall": c.wall, "cpu": c.cpu, "hits": len(hits), "codings": len(rows),
            "write_wall": w.wall, "write_cpu": w.cpu, "bare_write_wall": b.wall, "bare_write_cpu": b.cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=None, help="default: one per 5,000 words")
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--codings", type=int, default=100_000, help="codings for the query timings (0: skip them)")
    ap.add_argument("--kinds", default="specific,dense", help="rule sets to run (specific, dense)")
    ap.add_argument("--works", default="bare,dry,dry_cli,apply,apply_cli",
                    help="what to run: bare, dry (autocode's hits table), dry_cli and apply_cli (autocode_summary, "
                         "as the command line runs on a terminal), apply (autocode() with its write timed)")
    args = ap.parse_args(argv)
    files = args.files or max(2, args.words // 5000)
    compile_sp_realist()  # as an installed package is (see benchmarks.measure.compile_sp_realist)

    from sqlalchemy import delete

    from sp_realist import schema as S
    from sp_realist.coding import cooccurrence, frequencies, import_codebook_yaml
    from sp_realist.coding.retrieval import framework_matrix

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t_build, (project, texts) = timed(build_project, folder, args.words, files)
        n_words = sum(len(t.split()) for t in texts)
        del texts
        db = str(folder / "bench.sprealist")
        bench = {}
        for kind in args.kinds.split(","):
            rules = make_rules(args.rules, kind=kind)
            with project.begin() as conn:
                conn.execute(delete(S.codings))
                conn.execute(delete(S.code_rules))
            write_codebook(folder / f"codebook-{kind}.yaml", rules)
            import_codebook_yaml(project, folder / f"codebook-{kind}.yaml")
            project.close()
            task = {"db": db, "kind": kind, "rules": args.rules, "copy": str(folder / "apply.sprealist"),
                    "bare_copy": str(folder / "bare.sprealist")}
            runs = {w: [in_child("benchmarks.autocode", {**task, "work": w}) for _ in range(2)]
                    for w in ["bare", *[w for w in args.works.split(",") if w != "bare"]]}
            best = {w: {k: min(r[k] for r in rs) for k in rs[0]} for w, rs in runs.items()}
            # Interviewer turns too: the bare matcher does not know about speakers.
            for w in best:
                assert best[w]["hits"] == best["bare"]["hits"], (w, best[w]["hits"], best["bare"]["hits"])
            if "apply" in best and "apply_cli" in best:
                assert best["apply"]["codings"] == best["apply_cli"]["codings"]
            bench[kind] = best
            for f in folder.glob("*copy*"):
                f.unlink()
            from sp_realist.store import Project

            project = Project.open(db)
        timings = {}
        if args.codings:
            with project.begin() as conn:
                conn.execute(delete(S.codings))
            add_random_codings(project, args.codings)
            for label, fn, kw in (
                ("frequencies()", frequencies, {}),
                ("frequencies(by=\"site\")", frequencies, {"by": "site"}),
                ("cooccurrence(mode=\"overlap\")", cooccurrence, {"mode": "overlap"}),
                ("cooccurrence(mode=\"segment\")", cooccurrence, {"mode": "segment"}),
                ("framework_matrix(rows=\"sites\")", framework_matrix, {"rows": "sites"}),
            ):
                fn(project, **kw)  # warm (imports)
                timings[label] = min(timed(fn, project, **kw)[0] for _ in range(3))
        project.close()

    print(f"Corpus: {files:,} files, {n_words:,} words (built in {t_build:.1f} s); {args.rules:,} rules. "
          "Wall / CPU seconds, best of 2; peak RSS of each whole process.\n")
    ok = True
    full = {k: b for k, b in bench.items() if all(w in b for w in ("dry", "dry_cli", "apply"))}
    if full:
        print("| rules | hits | codings | bare make_doc + PhraseMatcher | `autocode(dry_run=True)` | `autocode()` applying "
          "| its write | bare `executemany` of the same rows | peak RSS (bare / dry run / applying) "
          "| dry run as the command line runs it on a terminal (`autocode_summary`): wall / CPU, peak RSS |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, b in full.items():
        bare, dry, app = b["bare"], b["dry"], b["apply"]
        print(f"| {kind} | {dry['hits']:,} | {app['codings']:,} | {bare['wall']:.2f} / {bare['cpu']:.2f} s "
              f"| {dry['wall']:.2f} / {dry['cpu']:.2f} s ({dry['wall'] / bare['wall']:.1f}x / "
              f"{dry['cpu'] / bare['cpu']:.1f}x) "
              f"| {app['wall']:.2f} / {app['cpu']:.2f} s ({app['wall'] / bare['wall']:.1f}x / "
              f"{app['cpu'] / bare['cpu']:.1f}x) "
              f"| {app['write_wall']:.2f} / {app['write_cpu']:.2f} s "
              f"| {app['bare_write_wall']:.2f} / {app['bare_write_cpu']:.2f} s "
              f"({app['write_wall'] / max(app['bare_write_wall'], 1e-9):.2f}x / "
              f"{app['write_cpu'] / max(app['bare_write_cpu'], 1e-9):.2f}x) "
              f"| {bare['rss_mib']:.0f} / {dry['rss_mib']:.0f} / {app['rss_mib']:.0f} MiB "
              f"| {b['dry_cli']['wall']:.2f} / {b['dry_cli']['cpu']:.2f} s "
              f"({b['dry_cli']['wall'] / bare['wall']:.1f}x / {b['dry_cli']['cpu'] / bare['cpu']:.1f}x), "
              f"{b['dry_cli']['rss_mib']:.0f} MiB |")
        if app["codings"] > 10_000:
            ok &= app["write_cpu"] <= 1.3 * app["bare_write_cpu"]
    cli = {k: b for k, b in bench.items() if "dry_cli" in b or "apply_cli" in b}
    if cli:
        print("\nAs the command line runs on a terminal (`autocode_summary`: hits counted as found):\n")
        print("| rules | hits | bare PhraseMatcher (wall / CPU, RSS) | dry run (wall / CPU, ratio, RSS) "
              "| applying (wall / CPU, ratio, RSS, codings added) |")
        print("| --- | ---: | ---: | ---: | ---: |")

        def cell(r, bare, extra=""):
            if r is None:
                return "-"
            return (f"{r['wall']:.2f} / {r['cpu']:.2f} s ({r['wall'] / bare['wall']:.1f}x / "
                    f"{r['cpu'] / bare['cpu']:.1f}x), {r['rss_mib']:.0f} MiB{extra}")

        for kind, b in cli.items():
            bare, d, a = b["bare"], b.get("dry_cli"), b.get("apply_cli")
            added = f", {a['codings']:,} codings" if a else ""
            print(f"| {kind} | {bare['hits']:,} | {bare['wall']:.2f} / {bare['cpu']:.2f} s, "
                  f"{bare['rss_mib']:.0f} MiB | {cell(d, bare)} | {cell(a, bare, added)} |")
            if d is not None:
                ok &= d["cpu"] <= 3 * bare["cpu"]
    if timings:
        print()
        print(f"| query over {args.codings:,} codings | best of 3 |")
        print("| --- | ---: |")
        for label, t in timings.items():
            print(f"| `{label}` | {t:.2f} s |")
    print(f"\nTargets (the command line's dry run within 3x bare PhraseMatcher, write within 1.3x bare "
          f"executemany, CPU): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if not child_main(child):
        sys.exit(main())

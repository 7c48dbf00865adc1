"""Benchmark: autocoding, frequencies and co-occurrence.

    python -m benchmarks.autocode                 # 1M words, 1,000 rules, 100k codings
    python -m benchmarks.autocode --words 100000  # a quicker run

1. Autocoding: 1,000 phrase/keyword rules (sentence unit) over the
   deterministic corpus of ``benchmarks/corpus.py``, compared in the same run
   with bare spaCy doing the matching alone (``nlp.make_doc`` + one
   ``PhraseMatcher`` with the same 1,000 patterns on the same texts).
   sp_realist additionally splits sentences, expands hits to units, builds the
   hits table and (when applying) writes the codings in one transaction.
2. Frequencies and co-occurrence over 100,000 codings.

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--codings", type=int, default=100_000)
    args = ap.parse_args(argv)

    from sqlalchemy import delete, func, select

    from sp_realist import schema as S
    from sp_realist.coding import autocode, cooccurrence, frequencies, import_codebook_yaml
    from sp_realist.coding.retrieval import framework_matrix

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t_build, (project, texts) = timed(build_project, folder, args.words, args.files)
        n_words = sum(len(t.split()) for t in texts)
        bench = {}
        for kind in ("specific", "dense"):
            rules = make_rules(args.rules, kind=kind)
            with project.begin() as conn:
                conn.execute(delete(S.codings))
                conn.execute(delete(S.code_rules))
            write_codebook(folder / f"codebook-{kind}.yaml", rules)
            import_codebook_yaml(project, folder / f"codebook-{kind}.yaml")
            bare_phrasematcher(texts[:2], rules)  # warm spaCy (blank pipeline, vocabulary) for both
            runs = [bare_phrasematcher(texts, rules) for _ in range(2)]
            bare_t, bare_hits = min(r[0] for r in runs), runs[0][1]
            autocode(project, dry_run=True, sources=[1])  # warm ours the same way
            # Interviewer turns too: the bare matcher does not know about speakers.
            dry_t, dry = timed(autocode, project, dry_run=True, include_interviewer=True)
            apply_t, applied = timed(autocode, project, include_interviewer=True)
            again_t, again = timed(autocode, project, include_interviewer=True)
            with project.connect() as conn:
                n_auto = conn.execute(select(func.count()).select_from(S.codings)).scalar_one()
            assert len(dry) == bare_hits, (len(dry), bare_hits)  # the same matches
            assert not again["new"].any()
            bench[kind] = (bare_t, bare_hits, dry_t, apply_t, again_t, n_auto)
        with project.begin() as conn:
            conn.execute(delete(S.codings))
        add_random_codings(project, args.codings)
        timings = {}
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

    print(f"Corpus: {len(texts)} files, {n_words:,} words (built in {t_build:.1f} s); {args.rules:,} rules.\n")
    print("| rules | hits | codings | bare make_doc + PhraseMatcher | `autocode(dry_run=True)` | `autocode()` applying "
          "| `autocode()` again |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, (bare_t, hits, dry_t, apply_t, again_t, n_auto) in bench.items():
        print(f"| {kind} | {hits:,} | {n_auto:,} | {bare_t:.2f} s | {dry_t:.2f} s ({dry_t / bare_t:.1f}x) "
              f"| {apply_t:.2f} s ({apply_t / bare_t:.1f}x) | {again_t:.2f} s ({again_t / bare_t:.1f}x) |")
    print()
    print(f"| query over {args.codings:,} codings | best of 3 |")
    print("| --- | ---: |")
    for label, t in timings.items():
        print(f"| `{label}` | {t:.2f} s |")
    bare_t, _h, _d, apply_t = bench["specific"][:4]
    ok = apply_t <= 2 * bare_t and all(t < 1.0 for label, t in timings.items() if not label.startswith("framework"))
    print(f"\nTargets (autocode with specific rules within 2x bare, frequencies/co-occurrence < 1 s): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: anonymisation (redaction) with a 500-entry pseudonym key.

    python -m benchmarks.anonymise                  # 1M words, 500 entries
    python -m benchmarks.anonymise --words 100000   # a quicker run

The deterministic corpus of ``benchmarks/corpus.py`` gets names from the key
written into it (one word in 150 becomes a name: full, first-name-only
surname, upper case, possessive, across a line break), so there is real work
to do.  In the same run, with the same texts and terms, we time:

* **bare**: spaCy's tokenizer + one ``PhraseMatcher(attr="LOWER")`` holding the
  500 names and their variants -- matching only, nothing replaced;
* **sp_realist redaction**: :class:`sp_realist.privacy.detect.Detector`
  (glue masking, white-space-tolerant multi-word matching, overlap
  resolution) plus building every redacted text;
* **end to end** (reported, not compared): ``anonymise()`` on a project
  holding the corpus -- validation, span moves, encrypted reversal records,
  one transaction and the file compaction.

Each timing is the best of ``--repeat`` runs.  Results are printed as Markdown
for docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import generate, person_names


def key_entries(n: int) -> list[dict]:
    names = person_names(n)
    entries = []
    for i, name in enumerate(names):
        e = {"original": name, "replacement": f"P{i + 1:03d}"}
        if "-" in name:  # unique surnames (the 200 after the first 300) get a surname variant
            e["variants"] = [name.split()[-1]]
        entries.append(e)
    return entries


def inject(texts: list[str], entries: list[dict], every: int = 150, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    out = []
    for text in texts:
        words = text.split(" ")
        for i in range(rng.randrange(every), len(words), every):
            e = rng.choice(entries)
            form = rng.choice(["full", "full", "upper", "possessive", "break", "variant"])
            name = e["original"]
            if form == "upper":
                name = name.upper()
            elif form == "possessive":
                name += "'s"
            elif form == "break":
                name = name.replace(" ", "\n", 1)
            elif form == "variant" and e.get("variants"):
                name = e["variants"][0]
            words[i] = name
        out.append(" ".join(words))
    return out


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-project", action="store_true", help="Skip the end-to-end project run.")
    args = ap.parse_args(argv)

    import spacy
    from spacy.matcher import PhraseMatcher

    from sp_realist.privacy.detect import Detector, apply_matches
    from sp_realist.privacy.keyfile import key_from_entries

    entries = key_entries(args.entries)
    texts = inject([t for _, t in generate(n_files=args.files, total_words=args.words)], entries)
    n_words = sum(len(t.split()) for t in texts)
    key = key_from_entries(entries)
    det = Detector(key)

    nlp = spacy.blank("en")
    terms = [t for e in key.entries for t in e.terms]

    def bare():
        pm = PhraseMatcher(nlp.vocab, attr="LOWER")
        pm.add("KEY", list(nlp.tokenizer.pipe(terms)))
        return sum(len(pm(doc)) for doc in nlp.tokenizer.pipe(texts))

    def ours():
        d = Detector(key)  # building the matchers is part of the work, as in bare()
        out, n = [], 0
        for text, matches in zip(texts, d.find_many(texts)):
            n += len(matches)
            out.append(apply_matches(text, [(m.start, m.end, key.entries[m.entry].replacement) for m in matches]))
        return n

    # interleave so both see the same machine state
    t_bare, t_ours, n_bare, n_ours = [], [], 0, 0
    for _ in range(args.repeat):
        t, n_bare = best(bare, 1)
        t_bare.append(t)
        t, n_ours = best(ours, 1)
        t_ours.append(t)
    tb, to = min(t_bare), min(t_ours)

    print(f"### Redaction: {n_words:,} words, {len(key)} key entries ({len(terms)} terms), {args.files} texts\n")
    print("| | time (s) | words/s | matches |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| bare spaCy tokenizer + PhraseMatcher (LOWER), matching only | {tb:.2f} | {n_words / tb:,.0f} | {n_bare:,} |")
    print(f"| sp_realist Detector + redacted texts | {to:.2f} | {n_words / to:,.0f} | {n_ours:,} |")
    print(f"\nRatio sp_realist / bare: **{to / tb:.2f}x** (target: at most 2x).")
    print("Bare counts overlapping hits (a full name and its surname variant both match); sp_realist keeps one "
          "per name and also catches names broken by a line break, which bare misses.\n")

    if args.no_project:
        return
    from sp_realist.privacy.anonymise import anonymise, reverse
    from sp_realist.sources import Segment, SourceDraft, add_source
    from sp_realist.store import Project

    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "bench.sprealist")
        with project.begin() as conn:
            for i, text in enumerate(texts):
                segs, pos = [], 0
                for block in text.split("\n\n"):
                    end = min(pos + len(block) + 2, len(text))
                    segs.append(Segment(pos, end, kind="turn"))
                    pos = end
                segs[-1].end = len(text)
                add_source(conn, SourceDraft(name=f"interview-{i:04d}", kind="interview", text=text,
                                             segments=segs, checksum=str(i)))
        t0 = time.perf_counter()
        result = anonymise(project, key)
        t_apply = time.perf_counter() - t0
        t0 = time.perf_counter()
        reverse(project, key)
        t_rev = time.perf_counter() - t0
        project.close()
    print("### End to end on a project (one run each)\n")
    print("| | time (s) | words/s |")
    print("| --- | ---: | ---: |")
    print(f"| `anonymise()`: {result.count:,} replacements, segments moved, sealed records, compaction "
          f"| {t_apply:.2f} | {n_words / t_apply:,.0f} |")
    print(f"| `reverse()` | {t_rev:.2f} | {n_words / t_rev:,.0f} |")


if __name__ == "__main__":
    main()

"""Deterministic synthetic corpora for the benchmarks.

The same seed always gives the same files, so figures recorded in
docs/performance.md can be reproduced.  Text is built from a fixed vocabulary
of social-prescribing words in interview-like speaker turns.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

VOCAB = (
    "link worker client referral surgery practice manager reception staff appointment paperwork "
    "counselling anxiety depression loneliness isolation housing debt benefits community group yoga "
    "walking garden volunteer signposting goals independence confidence wellbeing support training "
    "research protocol evaluator diary reflection session telephone information pack leaflet waiting "
    "list capacity workload stress peer supervision team meeting GP nurse practitioner pharmacy "
    "the a and of to in that it was we they she he felt think really very quite about with for on "
    "because when then so but not just also more time week day people service project pilot"
).split()

SPEAKERS = ("Interviewer", "P1", "P2", "P3", "Link worker", "Manager")


def sentence(rng: random.Random) -> str:
    n = rng.randint(6, 22)
    words = [rng.choice(VOCAB) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice(".....?!")


def transcript(rng: random.Random, words: int) -> str:
    out, count = [], 0
    turn = 0
    while count < words:
        speaker = "Interviewer" if turn % 2 == 0 else rng.choice(SPEAKERS[1:])
        sents = [sentence(rng) for _ in range(rng.randint(1, 6))]
        text = " ".join(sents)
        count += len(text.split())
        out.append(f"{speaker}: {text}")
        turn += 1
    return "\n\n".join(out) + "\n"


def generate(n_files: int = 200, total_words: int = 1_000_000, seed: int = 2020) -> Iterator[tuple[str, str]]:
    """Yield ``(file_name, text)`` pairs, deterministic for a given seed."""
    rng = random.Random(seed)
    per_file = max(1, total_words // n_files)
    for i in range(n_files):
        yield f"interview-{i:04d}.txt", transcript(rng, per_file)


def write_corpus(folder: str | Path, n_files: int = 200, total_words: int = 1_000_000, seed: int = 2020) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generate(n_files, total_words, seed):
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def person_names(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct synthetic 'real names' for key-file benchmarks."""
    rng = random.Random(seed)
    first = ["Sarah", "Owen", "Rhian", "Gareth", "Ceri", "Dylan", "Megan", "Huw", "Catrin", "Iwan",
             "Sian", "Rhys", "Eleri", "Aled", "Ffion", "Tomos", "Nia", "Emyr", "Lowri", "Bethan"]
    last = ["Jones", "Davies", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan", "Griffiths",
            "Price", "Powell", "Owen", "Jenkins", "Rees", "Pritchard", "Vaughan", "Llewellyn", "Parry"]
    names: list[str] = []
    seen = set()
    while len(names) < n:
        name = f"{rng.choice(first)} {rng.choice(last)}{'' if len(seen) < 300 else '-' + str(len(seen))}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names

"""NER suggestions for the pseudonym key (never applied silently).

A trained spaCy pipeline with an ``ner`` component (an installed package such
as ``en_core_web_sm`` or a pipeline folder) is loaded with every component
except ``ner`` and what it listens to (``tok2vec``) excluded, and run over the
sources with ``nlp.pipe(..., n_process=N)``.  Entities with the requested
labels that the key does not already cover are listed, with how often and in
how many sources they occur, and a proposed placeholder.  Nothing is
downloaded and nothing is replaced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence


from ..errors import SpRealistError
from ..store import Project
from .detect import Detector, term_norm
from .keyfile import Key, append_entries, as_key, load_key

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["text", "label", "count", "sources", "replacement"]
PLACEHOLDER = {"PERSON": "person", "ORG": "organisation", "GPE": "place", "FAC": "place", "LOC": "place",
               "NORP": "group"}
KEEP = ("tok2vec", "transformer", "ner")


def load_ner(model: str):
    """Load ``model`` (package name or folder) with only the components NER needs."""
    import spacy
    import spacy.util

    if not (spacy.util.is_package(model) or Path(model).is_dir()):
        raise SpRealistError(
            f"{model}: not an installed spaCy pipeline or pipeline folder; install it (for example "
            "'pip install en_core_web_sm' from your own mirror) or pass its folder. sp_realist never downloads models."
        )
    exclude: list[str] = []
    base = Path(model) if Path(model).is_dir() else spacy.util.get_package_path(model)
    configs = [base / "config.cfg"] if (base / "config.cfg").is_file() else sorted(base.rglob("config.cfg"))
    if configs:
        try:
            pipeline = list(spacy.util.load_config(configs[0])["nlp"]["pipeline"])
            exclude = [n for n in pipeline if n not in KEEP]
        except Exception:  # pragma: no cover - unusual layouts: load everything
            exclude = []
    try:
        nlp = spacy.load(model, exclude=exclude)
    except (OSError, ValueError) as exc:
        raise SpRealistError(f"{model}: the spaCy pipeline could not be loaded ({exc}); check it.") from None
    if "ner" not in nlp.pipe_names:
        raise SpRealistError(
            f"{model}: this pipeline has no 'ner' component (it has: {', '.join(nlp.pipe_names) or 'none'}); "
            "use a pipeline trained for named entities."
        )
    return nlp


def suggest(project: Project, model: str, key: Key | str | None = None, sources: Sequence[str | int] | None = None,
            labels: Sequence[str] = ("PERSON", "ORG", "GPE", "FAC", "LOC"), n_process: int = 1,
            batch_size: int = 32) -> pd.DataFrame:
    """Entities the key does not cover yet, most frequent first (nothing is changed)."""
    from .anonymise import _select_sources

    nlp = load_ner(model)
    key = as_key(key) if key is not None else None
    det = Detector(key) if key is not None else None
    # replacements already in the text (S1 DK1, [GP surgery]) are not names to suggest
    placed = {term_norm(e.replacement) for e in key.entries} if key is not None else set()
    wanted = set(labels)
    with project.connect() as conn:
        srcs = _select_sources(conn, sources)
    found: dict[str, dict] = {}
    texts = ((s["text"], s["id"]) for s in srcs)
    for doc, sid in nlp.pipe(texts, as_tuples=True, n_process=n_process, batch_size=batch_size):
        covered = [(m.start, m.end) for m in det.find(doc.text)] if det else []
        for ent in doc.ents:
            if ent.label_ not in wanted:
                continue
            text = " ".join(ent.text.split()).strip(" '’\"")
            if not text:
                continue
            s, e = ent.start_char, ent.end_char
            if any(cs < e and s < ce for cs, ce in covered):
                continue
            norm = term_norm(text)
            if not norm or any(f" {p} " in f" {norm} " for p in placed if p):
                continue
            item = found.setdefault(norm, {"text": text, "label": ent.label_, "count": 0, "sources": set()})
            item["count"] += 1
            item["sources"].add(sid)
    rows = sorted(found.values(), key=lambda r: (-r["count"], r["text"].lower()))
    return numbered_suggestions(rows, lambda label: PLACEHOLDER.get(label, label.lower()), key)


def numbered_suggestions(rows, kind_of, key: Key | None) -> pd.DataFrame:
    """Suggestion rows (``text``, ``label``, ``count``, ``sources`` set), in the order given, each with a
    numbered placeholder ``[kind n]`` (``kind_of(label)``) that no entry of ``key`` already uses."""
    import pandas as pd

    existing = {e.replacement for e in key.entries} if key is not None else set()
    numbers: dict[str, int] = {}
    out = []
    for r in rows:
        kind = kind_of(r["label"])
        while True:
            numbers[kind] = numbers.get(kind, 0) + 1
            rep = f"[{kind} {numbers[kind]}]"
            if rep not in existing:
                break
        out.append({"text": r["text"], "label": r["label"], "count": r["count"], "sources": len(r["sources"]),
                    "replacement": rep})
    return pd.DataFrame(out, columns=COLUMNS)


def add_suggestions_to_key(key_path: str | os.PathLike, suggestions: pd.DataFrame) -> Key:
    """Append reviewed suggestions (``text`` and ``replacement`` columns) to the key file."""
    load_key(key_path, allow_empty=True)
    entries = [{"original": str(r["text"]), "replacement": str(r["replacement"])}
               for r in suggestions.to_dict(orient="records")]
    return append_entries(key_path, entries)

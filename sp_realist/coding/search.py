"""Text search across the project: keyword-in-context lines and word frequencies.

* :func:`kwic` finds a regular expression (or a whole word) in every source
  and returns one row per hit with the words to its left and right, the
  source, the span and who said it (:func:`sp_realist.sources.span_attributions`).
* :func:`word_frequencies` counts the words of the sources without stop words
  (spaCy's English stop list, from ``spacy.blank("en")``: no model is needed).

Both take ``where``, the same ``{"site": ["S1"], "kind": "diary"}`` filters
as retrieval, applied to the sources (kind, participant, site and every source
attribute), and return :class:`pandas.DataFrame`\\ s.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..errors import SpRealistError
from ..sources import SpanAttributor, sources_frame
from ..store import Project

KWIC_COLUMNS = ["source", "attribution", "start", "end", "left", "match", "right", "source_id"]
WORD_COLUMNS = ["word", "count", "sources"]
#: Source columns that are not attributes to filter or group by.
_NOT_ATTRIBUTES = {"id", "name", "date", "characters", "segments"}


def compile_pattern(pattern: str, *, word: bool = False, ignore_case: bool = True) -> re.Pattern:
    """The regular expression searched for: ``pattern`` itself, or with ``word`` the literal text as a whole
    word (``care`` finds "care" but not "careful").  One sentence when it is empty or not a valid regex."""
    if pattern is None or not str(pattern).strip():
        raise SpRealistError("search: give the text or regular expression to look for.")
    source = rf"\b{re.escape(str(pattern).strip())}\b" if word else str(pattern)
    try:
        rx = re.compile(source, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise SpRealistError(f"search: {pattern!r} is not a valid regular expression ({exc}); fix it, or search "
                             "for the literal words with --word.") from None
    if rx.search("") is not None and rx.fullmatch("") is not None:
        raise SpRealistError(f"search: {pattern!r} matches empty text everywhere; give a pattern that needs at "
                             "least one character.")
    return rx


def filter_sources(frame: pd.DataFrame, where: dict[str, Any] | None) -> pd.DataFrame:
    """The rows of :func:`sources_frame` whose column NAME equals the value (or one of the values) for every
    filter; an unknown NAME gets one sentence listing the ones there are."""
    if not where:
        return frame
    for name, value in where.items():
        if name not in frame.columns or name in _NOT_ATTRIBUTES:
            available = sorted(set(frame.columns) - _NOT_ATTRIBUTES)
            raise SpRealistError(f"attribute {name!r}: sources have no attribute of that name; use one of "
                                 f"{', '.join(available)}.")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        keep = {str(v) for v in values}
        frame = frame[frame[name].astype("string").isin(keep).fillna(False).astype(bool)]
    return frame


def _texts(conn, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out.update(conn.execute(select(S.sources.c.id, S.sources.c.text).where(S.sources.c.id.in_(chunk))).all())
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def kwic(project: Project, *, pattern: str, word: bool = False, ignore_case: bool = True,
         where: dict[str, Any] | None = None, context: int = 40, source: str | int | None = None,
         limit: int | None = None) -> pd.DataFrame:
    """Keyword in context: one row per hit of ``pattern`` (a regular expression; with ``word`` the literal
    words as a whole word) in the sources kept by ``where`` (or the one ``source``), in ingest order, with
    ``context`` characters of text on each side (white space folded to single spaces).

    Columns: source, attribution (who said it), start, end (the hit's span), left, match, right, source_id.
    """
    from ..numbers import INT64_MAX

    if context is None or not 0 <= int(context) <= 10_000:
        raise SpRealistError(f"search: context {context!r} is not a number of characters from 0 to 10000.")
    if limit is not None and not 0 < int(limit) <= INT64_MAX:
        raise SpRealistError(f"search: limit {limit!r} must be a positive whole number.")
    rx = compile_pattern(pattern, word=word, ignore_case=ignore_case)
    frame = filter_sources(sources_frame(project), where)
    rows: list[tuple] = []
    with project.connect() as conn:
        if source is not None:
            from ..sources import resolve_source

            sid = resolve_source(conn, source)["id"]
            frame = frame[frame["id"] == sid]
        ids = frame["id"].tolist()
        names = dict(zip(ids, frame["name"].tolist()))
        texts = _texts(conn, ids)
        for sid in ids:
            text = texts[sid]
            for m in rx.finditer(text):
                if m.end() == m.start():
                    continue
                a, b = m.start(), m.end()
                rows.append((names[sid], None, a, b, _one_line(text[max(0, a - context):a]), _one_line(text[a:b]),
                             _one_line(text[b:b + context]), sid))
                if limit is not None and len(rows) >= limit:
                    break
            if limit is not None and len(rows) >= limit:
                break
        if rows:
            who = SpanAttributor(conn, {r[-1] for r in rows}).many([r[-1] for r in rows], [r[2] for r in rows])
            rows = [(r[0], w, *r[2:]) for r, w in zip(rows, who)]
    df = pd.DataFrame(rows, columns=KWIC_COLUMNS)
    return df.astype({"start": "int64", "end": "int64", "source_id": "int64"})


def stop_words() -> frozenset[str]:
    """spaCy's English stop words (``spacy.blank("en").Defaults.stop_words``), lower case."""
    from .units import sentencizer_nlp

    return frozenset(w.lower() for w in sentencizer_nlp().Defaults.stop_words)


def _words(nlp, text: str, stops: frozenset[str]) -> list[str]:
    out = []
    for tok in nlp.tokenizer(text):
        if tok.is_alpha and len(tok.text) > 1:
            w = tok.lower_
            if w not in stops:
                out.append(w)
    return out


def word_frequencies(project: Project, *, by: str | None = None, where: dict[str, Any] | None = None,
                     top: int | None = None, min_count: int = 1) -> pd.DataFrame:
    """How often each word occurs in the sources kept by ``where``, without stop words (spaCy's English
    list) and without numbers and punctuation, in lower case; ``sources`` counts the sources it occurs in.

    With ``by`` (kind, site, participant or any source attribute) the counts are per value of it (a source
    without one counts under "(none)") and ``top`` keeps the most frequent words of each group.
    Rows are ordered by group, then count (most first), then word.
    """
    if top is not None and int(top) < 1:
        raise SpRealistError(f"words: top {top!r} must be a positive whole number.")
    if int(min_count) < 1:
        raise SpRealistError(f"words: min count {min_count!r} must be a positive whole number.")
    frame = sources_frame(project)
    if by is not None and (by not in frame.columns or by in _NOT_ATTRIBUTES):
        available = sorted(set(frame.columns) - _NOT_ATTRIBUTES)
        raise SpRealistError(f"words --by {by!r}: sources have no attribute of that name; use one of "
                             f"{', '.join(available)}.")
    frame = filter_sources(frame, where)
    from .units import sentencizer_nlp

    nlp = sentencizer_nlp()
    stops = stop_words()
    counts: dict[str, Counter] = {}
    in_sources: dict[str, Counter] = {}
    with project.connect() as conn:
        ids = frame["id"].tolist()
        groups = (frame[by].astype("object").where(frame[by].notna(), "(none)").astype(str).tolist()
                  if by else ["" for _ in ids])
        texts = _texts(conn, ids)
    for sid, group in zip(ids, groups):
        words = _words(nlp, texts[sid], stops)
        counts.setdefault(group, Counter()).update(words)
        in_sources.setdefault(group, Counter()).update(set(words))
    rows = []
    for group in sorted(counts):
        ranked = sorted(((w, n) for w, n in counts[group].items() if n >= min_count), key=lambda x: (-x[1], x[0]))
        if top is not None:
            ranked = ranked[:int(top)]
        rows.extend(((group,) if by else ()) + (w, n, in_sources[group][w]) for w, n in ranked)
    cols = ([by] if by else []) + WORD_COLUMNS
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"count": "int64", "sources": "int64"})

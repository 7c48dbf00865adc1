"""Finding key entries in text: spaCy tokenizer + PhraseMatcher on token boundaries.

Matching is on whole tokens, so "Dr Patel's" (tokens ``Dr``, ``Patel``, ``'s``)
is caught by the entry "Patel" while "Patella" is not.  Entries are matched
case-insensitively (``LOWER``) unless they are marked ``case_sensitive``
(``ORTH``).  A multi-word entry also matches across a line break or a run of
spaces ("Sarah\\nJones"), which spaCy turns into separate white-space tokens.
Where matches overlap the longest wins, then the earliest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    import numpy as np


#: Characters spaCy can leave glued to a word ('name="Sarah', '@Sarah', 'Sarah;Patel', 'Sarah_Jones').
#: They are blanked (one space for one character, so offsets do not move) before tokenising,
#: in the text and in the key's terms alike.
GLUE = '"#$%&()*+/;<=>@[\\]^_`{|}~' + "\u201c\u201d\u201e\u00ab\u00bb"
#: Joiners of file names, e-mail addresses and handles ('sarah.jones@nhs.net', 'interview-sarah-jones-2020.docx',
#: 'rule:Sarah'): blanked too, but only between two letters or digits, so that a name between them is a token of
#: its own while sentence punctuation ("Jones. Then") is left to spaCy.
JOINERS = ".:-\u2010\u2011\u2012\u2013\u2014\u2015"
_JOIN_RE = re.compile(f"(?<=\\w)[{re.escape(JOINERS)}](?=\\w)")
#: White space other than the ASCII space (non-breaking, narrow, thin, ideographic...): read as a space.
SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
#: Zero-width characters: read as a space ("Sarah\u200bJones") and, in a second pass, as nothing
#: ("Sa\u200brah"), so a name broken by one is found either way.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_MASK = str.maketrans({c: " " for c in GLUE + SPACES + ZERO_WIDTH})
_ZW = frozenset(ZERO_WIDTH)
_ZW_RE = re.compile(f"[{ZERO_WIDTH}]")


def mask(text: str) -> str:
    """``text`` with glue characters, joiners inside tokens, unusual spaces and zero-width characters
    blanked (same length)."""
    return _JOIN_RE.sub(" ", text.translate(_MASK))


def without_zero_width(text: str) -> tuple[str, list[int]] | None:
    """``text`` with zero-width characters removed and, for each kept character, its index in ``text``
    (plus ``len(text)`` at the end); None when there is none to remove."""
    if _ZW_RE.search(text) is None:
        return None
    index = [i for i, c in enumerate(text) if c not in _ZW]
    return "".join(text[i] for i in index), index + [len(text)]


@lru_cache(maxsize=1)
def tokenizer_nlp():
    """A blank English pipeline: only its tokenizer and vocab are used."""
    import spacy

    return spacy.blank("en")


def term_norm(term: str) -> str:
    """Lower-cased tokens of ``term`` joined by single spaces ("" if only white space)."""
    doc = tokenizer_nlp().tokenizer(" ".join(mask(str(term)).split()))
    return " ".join(t.lower_ for t in doc if not t.is_space)


@dataclass(frozen=True)
class Match:
    """``text[start:end]`` is an occurrence of key entry number ``entry`` (0-based)."""

    start: int
    end: int
    entry: int


def resolve_overlaps(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Keep non-overlapping ``(start, end, entry)`` spans: longest first, then earliest; sorted."""
    chosen: list[tuple[int, int, int]] = []
    taken: list[tuple[int, int]] = []
    import bisect

    for s, e, k in sorted(set(spans), key=lambda x: (x[0] - x[1], x[0])):
        i = bisect.bisect_left(taken, (s, e))
        if i > 0 and taken[i - 1][1] > s:
            continue
        if i < len(taken) and taken[i][0] < e:
            continue
        taken.insert(i, (s, e))
        chosen.append((s, e, k))
    chosen.sort()
    return chosen


class Detector:
    """Finds every key entry (original or variant) in texts.

    >>> from sp_realist.privacy.keyfile import key_from_entries
    >>> det = Detector(key_from_entries([{"original": "Patel", "replacement": "[GP]"}]))
    >>> [(m.start, m.end) for m in det.find("Dr Patel's patella")]
    [(3, 8)]
    """

    def __init__(self, key):
        from spacy.attrs import IDX, IS_SPACE, LENGTH, LOWER, ORTH
        from spacy.matcher import PhraseMatcher

        self._attrs = [IDX, LENGTH, IS_SPACE, LOWER, ORTH]
        self.key = key
        self.nlp = tokenizer_nlp()
        tok = self.nlp.tokenizer
        self.matchers = []
        self.entry_of: dict[int, int] = {}
        # word pairs of multi-word terms, to spot a term broken by a white-space token
        self._pairs: set[tuple[int, int]] = set()
        self._pairs_cs: set[tuple[int, int]] = set()
        self._width = 1  # the most words in a term
        strings = self.nlp.vocab.strings
        for attr, flag in (("LOWER", False), ("ORTH", True)):
            pm = PhraseMatcher(self.nlp.vocab, attr=attr)
            n = 0
            for i, e in enumerate(key.entries):
                if bool(e.case_sensitive) != flag:
                    continue
                docs = [tok(" ".join(mask(t).split())) for t in e.terms]
                docs = [d for d in docs if len(d)]
                if not docs:
                    continue
                label = f"e{i}{'c' if flag else ''}"
                self.entry_of[strings.add(label)] = i
                pm.add(label, docs)
                n += 1
                for d in docs:
                    words = [t for t in d if not t.is_space]
                    self._width = max(self._width, len(words))
                    for a, b in zip(words, words[1:]):
                        pair = (a.orth, b.orth) if flag else (strings.add(a.lower_), strings.add(b.lower_))
                        (self._pairs_cs if flag else self._pairs).add(pair)
            if n:
                self.matchers.append((pm, flag))

    # -- matching ----------------------------------------------------------
    def _spans(self, doc) -> list[tuple[int, int, int]]:
        if not len(doc):
            return []
        out = []
        for pm, _flag in self.matchers:
            for match_id, s, e in pm(doc):
                out.append((doc[s].idx, doc[e - 1].idx + len(doc[e - 1]), self.entry_of[match_id]))
        if self._pairs or self._pairs_cs:
            out.extend(self._broken(doc))
        return out

    def _broken(self, doc) -> list[tuple[int, int, int]]:
        """Multi-word terms split by a white-space token ("Sarah\\nJones"): match in small
        windows around such spots with the white space left out."""
        import numpy as np
        from spacy.attrs import IS_SPACE

        space = doc.to_array(IS_SPACE)
        spaces = np.flatnonzero(space)
        if not len(spaces):
            return []
        n = len(doc)
        # candidate spots: a word, white space, a word (tokens are looked at only there)
        j = spaces - 1
        k = spaces + 1
        ok = (j >= 0) & (k < n)
        j, k = j[ok], k[ok]
        ok = space[j] == 0
        j, k = j[ok], k[ok]
        spots = []
        for a, b in zip(j.tolist(), k.tolist()):
            while b < n and space[b]:
                b += 1
            if b >= n:
                continue
            ta, tb = doc[a], doc[b]
            if (ta.lower, tb.lower) in self._pairs or (ta.orth, tb.orth) in self._pairs_cs:
                spots.append((a, b))
        if not spots:
            return []
        from spacy.tokens import Doc

        # One small doc holding every window, each followed by a separator no term contains.
        keep: list[int] = []
        words: list[str] = []
        for j, k in spots:
            for t in range(max(0, j - self._width), min(n, k + self._width + 1)):
                if not space[t]:
                    keep.append(t)
                    words.append(doc[t].text)
            keep.append(-1)
            words.append("\x00")
        window = Doc(self.nlp.vocab, words=words)
        out = []
        for pm, _flag in self.matchers:
            for match_id, s, e in pm(window):
                a, b = doc[keep[s]], doc[keep[e - 1]]
                out.append((a.idx, b.idx + len(b), self.entry_of[match_id]))
        return out

    def _zw_spans(self, text: str) -> list[tuple[int, int, int]]:
        """Spans found with zero-width characters removed, in ``text``'s positions."""
        stripped = without_zero_width(text)
        if stripped is None:
            return []
        short, index = stripped
        return [(index[s], index[e - 1] + 1, k) for s, e, k in self._spans(self.nlp.tokenizer(mask(short)))]

    def find(self, text: str) -> list[Match]:
        """Non-overlapping matches in ``text``, sorted by position."""
        if not text:
            return []
        spans = self._spans(self.nlp.tokenizer(mask(text))) + self._zw_spans(text)
        return [Match(s, e, k) for s, e, k in resolve_overlaps(spans)]

    def find_many(self, texts: Iterable[str], batch_size: int = 64) -> Iterator[list[Match]]:
        """:meth:`find` over many texts (tokenised with ``tokenizer.pipe``)."""
        texts = list(texts)
        docs = self.nlp.tokenizer.pipe((mask(t) for t in texts), batch_size=batch_size)
        for text, doc in zip(texts, docs):
            yield [Match(s, e, k) for s, e, k in resolve_overlaps(self._spans(doc) + self._zw_spans(text))]

    def redact(self, text: str, matches: list[Match] | None = None) -> str:
        """``text`` with every match replaced by its entry's replacement."""
        if matches is None:
            matches = self.find(text)
        return apply_matches(text, [(m.start, m.end, self.key.entries[m.entry].replacement) for m in matches])


def apply_matches(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace sorted, non-overlapping ``(start, end, new)`` spans of ``text``."""
    if not edits:
        return text
    parts, pos = [], 0
    for s, e, new in edits:
        parts.append(text[pos:s])
        parts.append(new)
        pos = e
    parts.append(text[pos:])
    return "".join(parts)

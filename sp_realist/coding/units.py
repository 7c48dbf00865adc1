"""Coding units: sentences, segments and diary sections as character spans.

A hit (a regex or rule match) is expanded to the unit that contains it:

* ``match``    the hit itself;
* ``sentence`` the sentence (spaCy's rule-based ``sentencizer``, except that a
  "?" or "!" followed by a word in lower case ends no sentence: "(unclear?) but
  we coped", "asked whether? no"; see :func:`sentences`) clipped to the
  segment that contains the hit, so a sentence never runs across a speaker turn;
* ``segment``  the segment (speaker turn, paragraph, diary section body);
* ``section``  all consecutive segments sharing the hit's section ("So what?"),
  falling back to the segment when it has no section.

Unit spans are trimmed of surrounding white space.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ._common import UNITS


@lru_cache(maxsize=1)
def sentencizer_nlp():
    """A blank English pipeline (tokenizer only; no model download)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.max_length = 50_000_000
    return nlp


@lru_cache(maxsize=4)
def _punct_hashes(vocab_id: int, vocab):
    import numpy as np
    from spacy.pipeline import Sentencizer

    return np.array(sorted(vocab.strings.add(c) for c in Sentencizer.default_punct_chars), dtype=np.uint64)


SENT_ATTRS = ("ORTH", "IS_PUNCT", "IDX", "LENGTH")


def sentence_bounds(doc, arr=None) -> list[tuple[int, int]]:
    """Sentence spans ``(start_char, end_char)`` of a tokenized doc, exactly as spaCy's
    rule-based ``Sentencizer`` (default punctuation) splits them, computed on the
    doc's attribute arrays instead of token by token (about 10x faster).
    ``arr`` may pass ``doc.to_array(SENT_ATTRS)`` when the caller has it.

    Sentencizer rule: after a token in its punctuation set has been seen, the
    next token that is neither punctuation nor in the set starts a sentence.
    """
    import numpy as np

    n = len(doc)
    if n == 0:
        return []
    if arr is None:
        arr = doc.to_array(list(SENT_ATTRS))
    punct = arr[:, 1] != 0
    # Every character of the Sentencizer's set is punctuation (IS_PUNCT), so only those tokens are looked up.
    period = np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(punct)
    period[candidates] = np.isin(arr[candidates, 0].astype(np.uint64), _punct_hashes(id(doc.vocab), doc.vocab))
    word = ~(period | punct)
    csum = np.concatenate(([0], np.cumsum(period)))  # periods before token i: csum[i]
    words = np.flatnonzero(word)
    flags = np.zeros(n, dtype=bool)
    flags[0] = True
    if len(words) > 1:
        prev, cur = words[:-1], words[1:]
        flags[cur[(csum[cur] - csum[prev + 1]) > 0]] = True  # a period strictly between two words
    if len(words) and words[0] != 0 and csum[words[0]] > 0:
        flags[words[0]] = True
    starts = np.flatnonzero(flags)
    idx = arr[:, 2].astype(np.int64)
    ends_char = idx + arr[:, 3].astype(np.int64)
    last = np.append(starts[1:], n) - 1
    return list(zip(idx[starts].tolist(), ends_char[last].tolist()))


#: Closing marks that may follow a sentence's last "?" or "!": "(unclear?)", "'really?'".
_CLOSERS = ")]}\"'\u201d\u2019\u00bb"


def join_mid_sentence_marks(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``bounds`` with a sentence that starts with a lower-case letter joined to the one before it when
    that one ends with "?" or "!" (and perhaps closing brackets or quotes): in notes and speech a
    question or exclamation mark inside a sentence ("heavy (unclear?) but", "asked whether? no")
    does not end it.  A sentence ending in "." (or any other mark) is never joined."""
    out: list[tuple[int, int]] = []
    for start, end in bounds:
        if out and start < len(text) and text[start].islower():
            prev = text[out[-1][0]:out[-1][1]].rstrip().rstrip(_CLOSERS)
            if prev.endswith(("?", "!")):
                out[-1] = (out[-1][0], end)
                continue
        out.append((start, end))
    return out


def sentences(doc, arr=None, text: str | None = None) -> list[tuple[int, int]]:
    """The sentence spans coding units use: :func:`sentence_bounds` (spaCy's ``Sentencizer``) with
    :func:`join_mid_sentence_marks` applied.  ``text`` may pass the text ``doc`` was made from (``doc.text``
    rebuilds it from a Python object per token)."""
    return join_mid_sentence_marks(doc.text if text is None else text, sentence_bounds(doc, arr))


@lru_cache(maxsize=1)
def _space_codes():
    """Every code point for which ``str.isspace`` is true (all are below U+3001; a test checks)."""
    import numpy as np

    return np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@dataclass
class SourceUnits:
    """Segments and (lazily) sentences of one source, for expanding hits to units."""

    text: str
    segments: list[tuple]  # (start, end, section, kind[, speaker]) in order
    _sentences: list[tuple[int, int]] | None = None
    _sent_starts: list[int] = field(default_factory=list)
    _seg_starts: list[int] = field(default_factory=list)
    _pieces: dict = field(default_factory=dict)

    def __post_init__(self):
        self._seg_starts = [s[0] for s in self.segments]

    @classmethod
    def load(cls, conn: Connection, source_id: int, text: str | None = None) -> "SourceUnits":
        if text is None:
            text = conn.execute(select(S.sources.c.text).where(S.sources.c.id == source_id)).scalar_one()
        seg = S.segments
        rows = conn.execute(select(seg.c.start, seg.c.end, seg.c.section, seg.c.kind, seg.c.speaker)
                            .where(seg.c.source_id == source_id).order_by(seg.c.ord)).all()
        segs = [tuple(r) for r in rows] or [(0, len(text), None, "paragraph")]
        return cls(text, segs)

    def set_sentences(self, bounds: list[tuple[int, int]]) -> None:
        self._sentences = bounds
        self._sent_starts = [b[0] for b in bounds]
        self._pieces.pop("sentence", None)

    def label_end(self, k: int) -> int | None:
        """Where the speech of segment ``k`` starts when it opens with its speaker's label
        ("S1 LW1: ..."), else None.  Units never include the label."""
        seg = self.segments[k]
        speaker = seg[4] if len(seg) > 4 else None
        if not speaker:
            return None
        s0, s1 = seg[0], seg[1]
        if not self.text.startswith(speaker, s0):
            return None
        j = s0 + len(speaker)
        while j < s1 and self.text[j] in " \t":
            j += 1
        return j + 1 if j < s1 and self.text[j] == ":" else None

    def pieces(self, unit: str):
        """``(starts, ends, is_unit)`` arrays of the spans a hit expands to (untrimmed).

        For ``segment`` these are the segments; for ``sentence`` the pieces cut
        at every sentence start and every segment start (a sentence clipped to
        its segment).  A speaker label opening a turn ("S1 LW1:") is a piece
        of its own.  Each piece runs to the next piece's start; it is trimmed of
        white space when used.  ``is_unit`` is False for labels and headings.
        """
        import numpy as np

        if unit not in self._pieces:
            if unit not in ("segment", "sentence"):
                raise SpRealistError(f"unit {unit!r} has no pieces.")
            labels = {k: e for k in range(len(self.segments)) if (e := self.label_end(k)) is not None}
            cuts = set(self._seg_starts or [0]) | set(labels.values())
            if unit == "sentence":
                cuts |= set(self._sent_starts if self.sentences is not None else [])
            starts = np.asarray(sorted(cuts), dtype=np.int64)
            ends = np.append(starts[1:], len(self.text))
            seg_of = np.maximum(np.searchsorted(np.asarray(self._seg_starts or [0]), starts, side="right") - 1, 0)
            is_unit = np.ones(len(starts), dtype=bool)
            kinds = [seg[3] for seg in self.segments]
            for i, k in enumerate(seg_of.tolist()):
                if self.segments and (kinds[k] == "heading" or (k in labels and starts[i] < labels[k])):
                    is_unit[i] = False
            self._pieces[unit] = (starts, ends, is_unit)
        return self._pieces[unit]

    def _nonspace(self):
        """Sorted positions of the characters that are not white space (``str.isspace``)."""
        import numpy as np

        if "nonspace" not in self._pieces:
            codes = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32)
            self._pieces["nonspace"] = np.flatnonzero(~np.isin(codes, _space_codes())).astype(np.int64)
        return self._pieces["nonspace"]

    def _trimmed(self, unit: str, ks):
        """Trimmed (start, end) arrays of pieces ``ks``, as :func:`trim` gives them."""
        import numpy as np

        starts, ends, _ = self.pieces(unit)
        a = starts[ks]
        b = ends[ks]
        ns = self._nonspace()
        if not len(ns):
            return b.copy(), b.copy()
        i = np.searchsorted(ns, a, side="left")
        first = ns[np.minimum(i, len(ns) - 1)]
        empty = (i >= len(ns)) | (first >= b)
        j = np.searchsorted(ns, b, side="left") - 1
        last = ns[np.maximum(j, 0)] + 1
        ts = np.where(empty, b, first)
        te = np.where(empty, b, last)
        return ts, te

    def expand_many(self, ms, me, unit: str):
        """Vectorised :meth:`expand` for arrays of hit starts and ends; returns two arrays."""
        import numpy as np

        ms = np.asarray(ms, dtype=np.int64)
        me = np.asarray(me, dtype=np.int64)
        if unit == "match":
            return ms.copy(), me.copy()
        if unit == "section":
            out = [self.expand(int(a), int(b), unit) for a, b in zip(ms, me)]
            return (np.fromiter((o[0] for o in out), dtype=np.int64, count=len(out)),
                    np.fromiter((o[1] for o in out), dtype=np.int64, count=len(out)))
        if unit not in ("sentence", "segment"):
            raise SpRealistError(f"unit {unit!r} is not one of {', '.join(UNITS)}.")
        starts, _ends, _is_unit = self.pieces(unit)
        k1 = np.maximum(np.searchsorted(starts, ms, side="right") - 1, 0)
        k2 = np.maximum(np.searchsorted(starts, np.maximum(ms, me - 1), side="right") - 1, 0)
        ts, _ = self._trimmed(unit, k1)
        _, te = self._trimmed(unit, k2)
        return np.minimum(ts, ms), np.maximum(te, me)  # never shrink below the hit

    @property
    def sentences(self) -> list[tuple[int, int]]:
        if self._sentences is None:
            self.set_sentences(sentences(sentencizer_nlp().make_doc(self.text), text=self.text))
        return self._sentences

    def sentence_index(self, pos: int) -> int:
        self.sentences  # noqa: B018 - computes them once
        return max(0, bisect.bisect_right(self._sent_starts, pos) - 1)

    def segment_index(self, pos: int) -> int:
        i = bisect.bisect_right(self._seg_starts, pos) - 1
        return max(0, min(i, len(self.segments) - 1))

    def expand(self, start: int, end: int, unit: str) -> tuple[int, int]:
        """The span of ``unit`` containing the hit ``[start, end)`` (trimmed)."""
        if unit == "match":
            return start, end
        if unit in ("sentence", "segment"):
            us, ue = self.expand_many([start], [end], unit)
            return int(us[0]), int(ue[0])
        if unit == "section":
            i = self.segment_index(start)
            seg_start, seg_end, section = self.segments[i][:3]
            if not section:
                return self.expand(start, end, "segment")
            lo = hi = i
            while lo > 0 and self.segments[lo - 1][2] == section and self.segments[lo - 1][3] != "heading":
                lo -= 1
            while hi + 1 < len(self.segments) and self.segments[hi + 1][2] == section \
                    and self.segments[hi + 1][3] != "heading":
                hi += 1
            return trim(self.text, self.segments[lo][0], max(self.segments[hi][1], end))
        raise SpRealistError(f"unit {unit!r} is not one of {', '.join(UNITS)}.")

    def units(self, unit: str) -> list[tuple[int, int]]:
        """Every unit of this source (for agreement), trimmed, non-empty, in order; headings and
        speaker labels excluded.  These are exactly the spans hits expand to."""
        if unit not in ("sentence", "segment"):
            raise SpRealistError(f"unit {unit!r}: agreement units are sentence or segment.")
        import numpy as np

        _starts, _ends, is_unit = self.pieces(unit)
        ts, te = self._trimmed(unit, np.arange(len(is_unit)))
        return [(a, b) for a, b, ok in zip(ts.tolist(), te.tolist(), is_unit.tolist()) if ok and a < b]

"""How other tools count positions in a text, and how to convert them.

REFI-QDA 1.5 (section 10.2) counts ``startPosition``/``endPosition`` in
Unicode code points from 0, which is exactly a Python ``str`` index and
sp_realist's span convention, so exports need no conversion.

Tools that import and export REFI-QDA do not all follow this: some count
UTF-16 code units (.NET, Java, JavaScript), some UTF-8 bytes, some count a
CRLF line break as one character (they normalised the text) or a LF as two
(they saw CRLF on Windows), and some count a byte-order mark.  A wrong guess
shows itself: a selection ends past the end of the text, or falls inside a
surrogate pair, a multi-byte character or a CRLF pair.  :func:`resolve`
tries every convention, keeps those under which every selection lands on a
character boundary, and weighs the evidence: first the selection names some
tools write (ATLAS.ti names a quotation after its first words), then how many
selections begin and end between words.  Only when that evidence cannot
separate conventions that give different spans is the standard's counting
kept and the ambiguity reported.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Hashable, Sequence

#: Conventions, in order of preference when the evidence cannot tell them apart.
CODEPOINTS = "codepoints"
BOM = "codepoints+bom"
UTF16 = "utf16"
UTF8 = "utf8"
CRLF_AS_ONE = "crlf-as-one"
LF_AS_TWO = "lf-as-two"

DESCRIPTIONS = {
    CODEPOINTS: "Unicode code points (the REFI-QDA standard)",
    BOM: "code points counting a byte-order mark",
    UTF16: "UTF-16 code units",
    UTF8: "UTF-8 bytes",
    CRLF_AS_ONE: "code points with CRLF counted as one",
    LF_AS_TWO: "code points with each line break counted as two (CRLF)",
}


@dataclass
class Sel:
    """A selection as the other tool wrote it."""

    key: Hashable
    start: int
    end: int
    name: str | None = None


@dataclass
class Resolution:
    """The convention chosen for one text and the converted spans."""

    convention: str
    spans: dict[Hashable, tuple[int, int]]  # key -> (start, end) in code points
    failed: list[Hashable] = field(default_factory=list)  # selections no convention could place
    ambiguous: bool = False  # several conventions fit and give different spans
    # conventions that fit every selection (with trust_standard, only code points when they fit)
    candidates: list[str] = field(default_factory=list)
    differ: bool = False  # the candidates do not all give the same spans


def _differ(results: dict, conventions: Sequence[str]) -> bool:
    """Whether the converted spans of ``conventions`` are not all the same."""
    first = results[conventions[0]]
    return any(results[c] != first for c in conventions[1:])


_SPECIAL = {
    UTF16: (re.compile("[\U00010000-\U0010FFFF]"), lambda ch: 2),
    UTF8: (re.compile("[^\x00-\x7f]"), lambda ch: len(ch.encode("utf-8", "surrogatepass"))),
    CRLF_AS_ONE: (re.compile("\r(?=\n)"), lambda ch: 0),  # the CR of a CRLF pair takes no unit
    LF_AS_TWO: (re.compile("(?<!\r)\n"), lambda ch: 2),
}


class _Units:
    """Maps unit positions to code points for one text and convention.

    Only the characters that do not count one unit each ("specials") are
    listed (found with a regular expression, so long ASCII texts cost little);
    a unit position is mapped back with a binary search over them.
    """

    def __init__(self, text: str, convention: str):
        self.n = len(text)
        self.shift = 1 if convention == BOM else 0
        self.starts: list[int] = []  # unit position where each special starts
        self.index: list[int] = []  # its code-point index
        self.width: list[int] = []
        self.extra: list[int] = []  # extra units before it
        if convention in _SPECIAL:
            pattern, width = _SPECIAL[convention]
            extra = 0
            for m in pattern.finditer(text):
                i = m.start()
                w = width(m.group())
                self.index.append(i)
                self.starts.append(i + extra)
                self.width.append(w)
                self.extra.append(extra)
                extra += w - 1

    def to_char(self, pos: int) -> int | None:
        pos -= self.shift
        if pos < 0:
            return None
        j = bisect_right(self.starts, pos) - 1
        if j < 0:
            i = pos
        elif pos == self.starts[j]:
            # several zero-width specials can start at the same unit: take the first
            k = bisect_left(self.starts, pos)
            i = self.index[k]
        elif pos < self.starts[j] + self.width[j]:
            return None  # inside a surrogate pair, a multi-byte character or a CRLF pair
        else:
            i = pos - self.extra[j] - (self.width[j] - 1)
        return i if 0 <= i <= self.n else None


def applicable(text: str, has_bom: bool = False) -> list[str]:
    """The conventions worth trying for ``text``."""
    out = [CODEPOINTS]
    if has_bom:
        out.append(BOM)
    if not text.isascii():
        out += [UTF16, UTF8]
    if "\r\n" in text:
        out.append(CRLF_AS_ONE)
    elif "\n" in text:
        out.append(LF_AS_TWO)
    return out


def convert(text: str, sels: Sequence[Sel], convention: str) -> dict[Hashable, tuple[int, int] | None]:
    """Map every selection to code points under ``convention`` (None where it cannot be placed)."""
    units = _Units(text, convention)
    out: dict[Hashable, tuple[int, int] | None] = {}
    for s in sels:
        a = units.to_char(s.start)
        b = units.to_char(s.end)
        out[s.key] = (a, b) if a is not None and b is not None and a < b else None
    return out


_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub(" ", s).strip()


def name_matches(text: str, span: tuple[int, int], name: str | None) -> bool:
    """Whether a selection's name looks like the start of the selected text."""
    if not name:
        return False
    # ATLAS.ti (and sp_realist) truncate long names with an ellipsis
    want = _norm(name[:-1] if name.endswith("…") else name[:-3] if name.endswith("...") else name)
    if len(want) < 4:
        return False
    got = _norm(text[span[0]:span[1]])
    return got.startswith(want)


def _on_word_boundary(text: str, a: int, b: int) -> int:
    """How many of a span's two ends fall between words (people rarely select half a word)."""
    n = len(text)
    ok_a = a == 0 or not (text[a - 1].isalnum() and text[a].isalnum())
    ok_b = b == n or not (text[b - 1].isalnum() and text[b].isalnum())
    return int(ok_a) + int(ok_b)


def _score(text: str, sels: Sequence[Sel], mapped: dict) -> tuple[int, int]:
    """Evidence for a convention: selections whose names quote their text, then clean word boundaries."""
    names = sum(1 for s in sels if mapped.get(s.key) and name_matches(text, mapped[s.key], s.name))
    bounds = sum(_on_word_boundary(text, *mapped[s.key]) for s in sels if mapped.get(s.key))
    return names, bounds


def resolve(text: str, sels: Sequence[Sel], has_bom: bool = False,
            prefer: Sequence[str] = (), trust_standard: bool = False) -> Resolution:
    """Choose the counting convention for the selections of one text.

    ``prefer`` lists conventions established elsewhere in the same project
    (they win ties against the standard).  With ``trust_standard`` (files
    sp_realist wrote itself) code points are used whenever they fit.

    Evidence, strongest first: a convention must place every selection on a
    character boundary; then selection names that quote the selected text;
    then clean word boundaries, which may overrule the standard only when
    every selection starts and ends between words under the alternative and
    some do not under code points.
    """
    if not sels:
        return Resolution(CODEPOINTS, {})
    if trust_standard:
        # a file sp_realist wrote: code points whenever they place every selection, without trying the
        # other conventions (the general path below chooses the same and is never ambiguous then)
        spans = convert(text, sels, CODEPOINTS)
        if all(v is not None for v in spans.values()):
            return Resolution(CODEPOINTS, spans, candidates=[CODEPOINTS])
    convs = applicable(text, has_bom)
    order = [c for c in prefer if c in convs] + [c for c in convs if c not in prefer]
    results = {c: convert(text, sels, c) for c in convs}
    complete = [c for c in order if all(v is not None for v in results[c].values())]
    if complete:
        std = CODEPOINTS if CODEPOINTS in complete else None
        scores = {c: _score(text, sels, results[c]) for c in complete}
        if trust_standard and std:
            choice = std
        else:
            best_names = max(v[0] for v in scores.values())
            top = [c for c in complete if scores[c][0] == best_names]
            n = len(sels)
            if prefer and prefer[0] in top:
                choice = prefer[0]
            elif std in top:
                clean = [c for c in top if scores[c][1] == 2 * n]
                choice = clean[0] if clean and std not in clean else std
            else:
                choice = max(top, key=lambda c: (scores[c][1], -top.index(c)))
        ambiguous = any(results[c] != results[choice] and scores[c] >= scores[choice]
                        for c in complete if c != choice) and not trust_standard
        return Resolution(choice, {k: v for k, v in results[choice].items() if v is not None},
                          ambiguous=ambiguous, candidates=complete, differ=_differ(results, complete))

    # no convention places every selection: keep the one that places most
    def placed(c):
        return sum(v is not None for v in results[c].values())

    choice = max(order, key=lambda c: (placed(c), *_score(text, sels, results[c]), -order.index(c)))
    spans = {k: v for k, v in results[choice].items() if v is not None}
    failed = [k for k, v in results[choice].items() if v is None]
    return Resolution(choice, spans, failed=failed, candidates=[])


_LONE_LF = re.compile(r"(?<!\r)\n")


def represent(text: str, convention: str):
    """``text`` as the other tool held it (a string, or bytes for byte/unit counts)."""
    if convention == UTF16:
        return text.encode("utf-16-le", "surrogatepass")
    if convention == UTF8:
        return text.encode("utf-8", "surrogatepass")
    if convention == CRLF_AS_ONE:
        return text.replace("\r\n", "\n")
    if convention == LF_AS_TWO:
        return _LONE_LF.sub("\r\n", text)
    if convention == BOM:
        return "\ufeff" + text
    return text


def verify(text: str, span: tuple[int, int], start: int, end: int, convention: str,
           tool_text=None) -> bool:
    """Whether our code-point ``span`` selects exactly what the other tool selected with ``start:end``.

    ``tool_text`` (``represent(text, convention)``) can be passed in to avoid
    recomputing it for every selection of a long text.
    """
    tool = represent(text, convention) if tool_text is None else tool_text
    unit = 2 if convention == UTF16 else 1
    return represent(text[span[0]:span[1]], convention if convention != BOM else CODEPOINTS) == \
        tool[start * unit:end * unit]

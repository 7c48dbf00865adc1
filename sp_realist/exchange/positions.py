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
character boundary, and uses the selection names some tools write (ATLAS.ti
names a quotation after its first words) as further evidence.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
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
    candidates: list[str] = field(default_factory=list)  # conventions that fit every selection


def _unit_table(text: str, convention: str) -> list[int] | None:
    """Cumulative unit offsets: ``table[i]`` is the unit position of code point ``i``.

    ``None`` means the identity (one unit per code point).
    """
    if convention in (CODEPOINTS, BOM):
        return None
    if convention == UTF16:
        if text.isascii():
            return None
        widths = (2 if ord(c) > 0xFFFF else 1 for c in text)
    elif convention == UTF8:
        if text.isascii():
            return None
        widths = (len(c.encode("utf-8", "surrogatepass")) for c in text)
    elif convention == CRLF_AS_ONE:
        # the CR of a CRLF pair takes no unit: the pair counts one
        widths = (0 if c == "\r" and text[i + 1:i + 2] == "\n" else 1 for i, c in enumerate(text))
    elif convention == LF_AS_TWO:
        widths = (2 if c == "\n" and (i == 0 or text[i - 1] != "\r") else 1 for i, c in enumerate(text))
    else:  # pragma: no cover - programming error
        raise ValueError(convention)
    return [0, *accumulate(widths)]


def _to_char(table: list[int] | None, n: int, pos: int, convention: str) -> int | None:
    """The code point index at unit position ``pos``, or None if it is not a boundary."""
    if convention == BOM:
        pos -= 1
    if table is None:
        return pos if 0 <= pos <= n else None
    if pos < 0 or pos > table[-1]:
        return None
    i = bisect_left(table, pos)
    if i > n or table[i] != pos:
        return None
    return i


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
    table = _unit_table(text, convention)
    n = len(text)
    out: dict[Hashable, tuple[int, int] | None] = {}
    for s in sels:
        a = _to_char(table, n, s.start, convention)
        b = _to_char(table, n, s.end, convention)
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


def _score(text: str, sels: Sequence[Sel], mapped: dict) -> int:
    return sum(1 for s in sels if mapped.get(s.key) and name_matches(text, mapped[s.key], s.name))


def resolve(text: str, sels: Sequence[Sel], has_bom: bool = False,
            prefer: Sequence[str] = ()) -> Resolution:
    """Choose the counting convention for the selections of one text.

    ``prefer`` lists conventions established elsewhere in the same project
    (used to break ties before the standard's code points).
    """
    if not sels:
        return Resolution(CODEPOINTS, {})
    convs = applicable(text, has_bom)
    order = [c for c in prefer if c in convs] + [c for c in convs if c not in prefer]
    results = {c: convert(text, sels, c) for c in convs}
    complete = [c for c in order if all(v is not None for v in results[c].values())]
    if complete:
        scores = {c: _score(text, sels, results[c]) for c in complete}
        best = max(scores.values())
        # candidates with the best name evidence; the first in preference order wins
        top = [c for c in complete if scores[c] == best]
        choice = top[0]
        distinct = {tuple(sorted(results[c].items(), key=lambda kv: str(kv[0]))) for c in top}
        return Resolution(choice, {k: v for k, v in results[choice].items() if v is not None},
                          ambiguous=len(distinct) > 1, candidates=complete)
    # no convention places every selection: keep the one that places most
    def placed(c):
        return sum(v is not None for v in results[c].values())

    choice = max(order, key=lambda c: (placed(c), _score(text, sels, results[c]), -order.index(c)))
    spans = {k: v for k, v in results[choice].items() if v is not None}
    failed = [k for k, v in results[choice].items() if v is None]
    return Resolution(choice, spans, failed=failed, candidates=[])


def original_text(text: str, start: int, end: int, convention: str) -> str:
    """The text the other tool selected with ``(start, end)`` counted its way.

    Used to verify conversions: it must equal ``text[a:b]`` for the converted span.
    """
    if convention == CODEPOINTS:
        return text[start:end]
    if convention == BOM:
        return ("\ufeff" + text)[start:end]
    if convention == UTF16:
        return text.encode("utf-16-le", "surrogatepass")[2 * start:2 * end].decode("utf-16-le")
    if convention == UTF8:
        return text.encode("utf-8", "surrogatepass")[start:end].decode("utf-8")
    if convention == CRLF_AS_ONE:
        flat = text.replace("\r\n", "\n")
        return flat[start:end].replace("\n", "\r\n")
    if convention == LF_AS_TWO:
        wide = re.sub(r"(?<!\r)\n", "\r\n", text)
        return wide[start:end].replace("\r\n", "\n")
    raise ValueError(convention)  # pragma: no cover

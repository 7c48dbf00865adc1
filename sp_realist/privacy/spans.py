"""Moving spans with text that has been rewritten.

An :class:`OffsetMap` is built from the edits made to a text (sorted,
non-overlapping ``(start, end, new_length)`` in the old text).  A position
outside every edit moves by the total change in length before it; a position
*inside* a replaced name cannot keep its meaning, so a span's start moves to
the start of the replacement and its end to the end of the replacement (a
coding inside a name ends up selecting the whole replacement).  Segment
boundaries use one rule for both sides (:meth:`boundary`) so segments keep
tiling the text.
"""

from __future__ import annotations

import bisect
from typing import Sequence


class OffsetMap:
    def __init__(self, edits: Sequence[tuple[int, int, int]]):
        self.old_starts: list[int] = []
        self.old_ends: list[int] = []
        self.new_starts: list[int] = []
        self.new_ends: list[int] = []
        delta = 0
        last = -1
        for s, e, n in edits:
            if s < last or e <= s or n < 0:
                raise ValueError("edits must be sorted, non-overlapping and non-empty")
            self.old_starts.append(s)
            self.old_ends.append(e)
            self.new_starts.append(s + delta)
            delta += n - (e - s)
            self.new_ends.append(e + delta)
            last = e

    def __bool__(self) -> bool:
        return bool(self.old_starts)

    def _locate(self, p: int) -> tuple[int, bool]:
        """Index of the last edit starting at or before ``p`` and whether ``p`` is inside it."""
        i = bisect.bisect_right(self.old_starts, p) - 1
        return i, (i >= 0 and p < self.old_ends[i])

    def _shift(self, i: int, p: int) -> int:
        return p if i < 0 else p + (self.new_ends[i] - self.old_ends[i])

    def inside(self, p: int) -> bool:
        """Whether ``p`` lies strictly inside a replaced span (its mapping loses information)."""
        i, within = self._locate(p)
        return within and p != self.old_starts[i]

    def start(self, p: int) -> int:
        i, within = self._locate(p)
        return self.new_starts[i] if within else self._shift(i, p)

    def end(self, p: int) -> int:
        i, within = self._locate(p)
        if within:
            return self.new_starts[i] if p == self.old_starts[i] else self.new_ends[i]
        return self._shift(i, p)

    def boundary(self, p: int) -> int:
        """One mapping for both sides of a segment boundary (the nearer end of the replacement)."""
        i, within = self._locate(p)
        if not within:
            return self._shift(i, p)
        if p - self.old_starts[i] <= self.old_ends[i] - p:
            return self.new_starts[i]
        return self.new_ends[i]

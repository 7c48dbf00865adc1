"""Positions of a read plan: choose each source's counting convention and convert its selections to
code points, verifying every converted selection (the conventions themselves are in
:mod:`sp_realist.exchange.positions`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from . import positions as P

if TYPE_CHECKING:  # pragma: no cover
    from .qdpx_read import QdpxPlan


def _inside(sp) -> bool:
    """Whether every selection of a source lies inside its text with a start before its end (code points)."""
    n = len(sp.text)
    return all(0 <= s.start < s.end <= n for s in sp.sels)


def resolve_positions(plan: "QdpxPlan") -> None:
    """Choose each source's counting convention (project-wide votes break ties) and convert."""
    result = plan.result
    first = {}
    votes: Counter = Counter()
    ours = plan.origin.startswith("sp_realist")  # we write code points, as the standard says
    for sp in plan.sources:
        if ours and _inside(sp):
            # a file sp_realist wrote whose selections all lie inside their text: code points place each one
            # as it is, so resolve() would choose them (never ambiguous, no vote) and verify() compare each
            # span's text with itself; take the spans as they are, without a Sel per selection
            first[sp.guid] = None
            continue
        sels = [P.Sel(i, s.start, s.end, s.name) for i, s in enumerate(sp.sels)]
        res = P.resolve(sp.text, sels, sp.has_bom, trust_standard=ours)
        first[sp.guid] = (sels, res)
        if sels and not res.ambiguous and not res.failed and len(res.candidates) >= 1:
            if res.differ or res.convention != P.CODEPOINTS:
                votes[res.convention] += 1
    prefer = [c for c, _ in votes.most_common()]
    converted: Counter = Counter()
    ambiguous = failed = mismatched = 0
    for sp in plan.sources:
        if first[sp.guid] is None:
            sp.convention = P.CODEPOINTS
            for s in sp.sels:
                s.span = (s.start, s.end)
            continue
        sels, res = first[sp.guid]
        if res.ambiguous:
            res = P.resolve(sp.text, sels, sp.has_bom, prefer=prefer)
            ambiguous += res.ambiguous
        sp.convention = res.convention
        if res.convention != P.CODEPOINTS and any(
                P.convert(sp.text, sels, P.CODEPOINTS)[k] != v for k, v in res.spans.items()):
            converted[res.convention] += 1
        failed += len(res.failed)
        tool_text = P.represent(sp.text, res.convention)
        for i, s in enumerate(sp.sels):
            span = res.spans.get(i)
            if span is None:
                continue
            # verify: the converted span selects what the other tool selected
            if not P.verify(sp.text, span, s.start, s.end, res.convention, tool_text):
                mismatched += 1
                continue
            s.span = span
    for conv, n in sorted(converted.items()):
        result.note(f"{n} source(s) counted positions in {P.DESCRIPTIONS[conv]}; converted to code points "
                    "and verified")
    if ambiguous:
        result.note(f"{ambiguous} source(s) had positions readable in more than one counting; chose "
                    f"{P.DESCRIPTIONS[prefer[0]] if prefer else P.DESCRIPTIONS[P.CODEPOINTS]}")
    if failed:
        result.lose(f"{failed} selection(s) fall outside their source's text under every known way of counting "
                    "and were not imported")
    if mismatched:  # pragma: no cover - guarded by the conversion itself
        result.lose(f"{mismatched} selection(s) could not be verified after conversion and were not imported")

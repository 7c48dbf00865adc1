"""Identifiers that need no trained model: e-mail addresses, UK phone numbers, NHS numbers, UK postcodes.

``anonymise suggest`` lists them (nothing is replaced) next to, or without,
the NER suggestions.  Phone numbers are found and validated by
``phonenumbers`` (Google's libphonenumber, region GB, so +44 and national
formats); NHS numbers are ten digits (``943 476 5919``, ``943-476-5919``)
that pass the modulus-11 check (``python-stdnum``'s ``stdnum.gb.nhs``); UK
postcodes follow the Royal Mail format (``SW1A 1AA``, ``CF10 3NQ``).
"""

from __future__ import annotations

import re
from typing import Iterator

EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b")
NHS = re.compile(r"(?<![\d-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d-])")
POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|(?:[A-PR-UWYZ][0-9]{1,2}|[A-PR-UWYZ][A-HK-Y][0-9]{1,2}|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) ?[0-9][ABD-HJLNP-UW-Z]{2})\b"
)

#: label -> placeholder stem of the proposed replacement
LABELS = {"EMAIL": "email", "PHONE": "phone", "NHS_NUMBER": "NHS number", "POSTCODE": "postcode"}


def find_identifiers(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, label)`` of every identifier in ``text``, sorted, without overlaps (an NHS number
    wins over a phone number on the same digits)."""
    import phonenumbers
    from stdnum.gb import nhs

    found: list[tuple[int, int, str]] = []
    for m in EMAIL.finditer(text):
        found.append((m.start(), m.end(), "EMAIL"))
    for m in NHS.finditer(text):
        if nhs.is_valid(m.group()):
            found.append((m.start(), m.end(), "NHS_NUMBER"))
    for m in phonenumbers.PhoneNumberMatcher(text, "GB"):
        found.append((m.start, m.end, "PHONE"))
    for m in POSTCODE.finditer(text):
        found.append((m.start(), m.end(), "POSTCODE"))
    rank = {"EMAIL": 0, "NHS_NUMBER": 1, "PHONE": 2, "POSTCODE": 3}
    out: list[tuple[int, int, str]] = []
    for s, e, label in sorted(found, key=lambda x: (rank[x[2]], x[0])):
        if not any(s < oe and os_ < e for os_, oe, _ in out):
            out.append((s, e, label))
    return sorted(out)


def iter_identifiers(texts) -> Iterator[tuple[int, int, str, str, object]]:
    """``(start, end, label, value, tag)`` over ``(text, tag)`` pairs."""
    for text, tag in texts:
        for s, e, label in find_identifiers(text):
            yield s, e, label, text[s:e], tag


def suggest_identifiers(project, key=None, sources=None):
    """E-mail addresses, phone numbers, NHS numbers and postcodes in the sources that the key does not
    cover, most frequent first, with a proposed placeholder (``anonymise suggest`` without a model).

    Columns as :func:`sp_realist.privacy.ner.suggest`: text, label, count, sources, replacement.
    Nothing is changed.
    """
    from .anonymise import _select_sources
    from .detect import Detector
    from .keyfile import as_key
    from .ner import numbered_suggestions

    key = as_key(key) if key is not None else None
    det = Detector(key) if key is not None else None
    placed = sorted({e.replacement for e in key.entries}, key=len, reverse=True) if key is not None else []
    with project.connect() as conn:
        srcs = _select_sources(conn, sources)
    found: dict[tuple[str, str], dict] = {}
    for src in srcs:
        text = src["text"]
        covered = [(m.start, m.end) for m in det.find(text)] if det else []
        for rep in placed:  # replacements already in the text ("S1 DK1@nhs.net" is not an address to list)
            i = text.find(rep)
            while i >= 0:
                covered.append((i, i + len(rep)))
                i = text.find(rep, i + 1)
        for s, e, label in find_identifiers(text):
            if any(cs < e and s < ce for cs, ce in covered):
                continue
            value = text[s:e]
            norm = re.sub(r"[\s-]", "", value).lower() if label != "EMAIL" else value.lower()
            item = found.setdefault((label, norm), {"text": value, "label": label, "count": 0, "sources": set()})
            item["count"] += 1
            item["sources"].add(src["id"])
    rows = sorted(found.values(), key=lambda r: (-r["count"], r["label"], r["text"].lower()))
    return numbered_suggestions(rows, LABELS.__getitem__, key)

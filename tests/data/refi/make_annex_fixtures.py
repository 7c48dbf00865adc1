"""Rebuild the Annex A fixtures from the text of the REFI-QDA 1.5 specification.

    python tests/data/refi/make_annex_fixtures.py /work/shared/reference/refi-qda-1.5-specification.txt

The specification's examples were extracted from a PDF: page numbers and
running heads interrupt the XML, and long lines are wrapped (inside GUIDs and
timestamps at a hyphen).  This script removes the page furniture, re-joins
lines wrapped after a hyphen, and repairs the one element whose right-to-left
text the PDF extraction reordered.  The example projects ship without their
source texts, so plain-text sources are written here: each selection's text is
placed at its position so that a selection whose name quotes its text (as
ATLAS.ti's do) selects exactly that text; the rest is filler.

The outputs are committed; the tests only read them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from defusedxml import ElementTree as ET

HERE = Path(__file__).parent


def _clean(lines: list[str]) -> str:
    kept = []
    for line in lines:
        s = line.strip()
        if re.fullmatch(r"\d{1,3}", s) or s == "REFI-QDA":
            continue
        kept.append(line.rstrip("\n"))
    out: list[str] = []
    for line in kept:
        if out and out[-1].endswith("-") and not out[-1].rstrip().endswith("<!--"):
            out[-1] = out[-1] + line.lstrip()
        else:
            out.append(line)
    text = "\n".join(l for l in out if l.strip()) + "\n"
    # right-to-left text reordered by the PDF extraction
    text = text.replace("<Description>\u202b<تعريف العربية\u202c/Description>",
                        "<Description>\u202bتعريف العربية\u202c</Description>")
    return text


def _slice(lines: list[str], start_pat: str, end_pat: str, after: int = 0) -> list[str]:
    i = next(n for n in range(after, len(lines)) if lines[n].startswith(start_pat))
    j = next(n for n in range(i, len(lines)) if lines[n].strip().startswith(end_pat))
    return lines[i:j + 1]


FILLER = ("Breakfast is the most important meal of the day, people say, but nobody agrees on what it "
          "should be. ")


def _text_for(selections: list[tuple[int, int, str]], minimum: int) -> str:
    """A text in which each named selection selects its name (where the name fits)."""
    end = max([minimum] + [e for _, e, _ in selections]) + 40
    chars = list((FILLER * (end // len(FILLER) + 2))[:end])
    for s, e, name in sorted(selections, key=lambda t: t[1] - t[0]):
        quote = name[:-1] if name.endswith("…") else name
        if len(quote) <= e - s and not quote.startswith(("Quotation", "damage done")) and " Quote " not in quote:
            chars[s:s + len(quote)] = list(quote)
    return "".join(chars)


def _write_sources(qde: str, folder: Path, upper: bool) -> None:
    root = ET.fromstring(qde.encode("utf-8"))
    sels: dict[str, list] = {}
    minimum: dict[str, int] = {}
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        path = el.get("plainTextPath")
        if not path:
            continue
        name = path.split("internal://", 1)[-1]
        sels.setdefault(name, [])
        minimum.setdefault(name, 120)
        for child in el:
            if child.tag.rsplit("}", 1)[-1] == "PlainTextSelection":
                sels[name].append((int(child.get("startPosition")), int(child.get("endPosition")),
                                   child.get("name") or ""))
            if child.tag.rsplit("}", 1)[-1] == "SyncPoint" and child.get("position"):
                minimum[name] = max(minimum[name], int(child.get("position")))
        if tag == "Note":
            minimum[name] = 0
    folder.mkdir(parents=True, exist_ok=True)
    for name, s in sels.items():
        stem, ext = name.rsplit(".", 1)
        fname = f"{stem}.{ext.upper()}" if upper else name
        if not s and minimum[name] == 0:
            text = f"Note text for {stem}.\n"
        else:
            text = _text_for(s, minimum[name])
        (folder / fname).write_text(text, encoding="utf-8", newline="")


def main(spec: str) -> None:
    lines = Path(spec).read_text(encoding="utf-8").splitlines(keepends=True)
    annex = next(n for n, l in enumerate(lines) if "Annex A Examples" in l and n > 1000)
    a1 = _clean(_slice(lines, "<?xml", "</CodeBook>", annex))
    (HERE / "annex-a1-codebook.qdc").write_text(a1, encoding="utf-8")
    start2 = next(n for n in range(annex, len(lines)) if "A.2 Example 2" in lines[n])
    a2 = _clean(_slice(lines, "<?xml", "</Project>", start2))
    d2 = HERE / "annex-a2"
    d2.mkdir(exist_ok=True)
    (d2 / "Project.qde").write_text(a2, encoding="utf-8")
    _write_sources(a2, d2 / "Sources", upper=True)
    start3 = next(n for n in range(annex, len(lines)) if "A.3 Example 3" in lines[n])
    a3 = _clean(_slice(lines, "<?xml", "</Project>", start3))
    d3 = HERE / "annex-a3"
    d3.mkdir(exist_ok=True)
    (d3 / "Project.qde").write_text(a3, encoding="utf-8")
    _write_sources(a3, d3 / "Sources", upper=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/refi-qda-1.5-specification.txt")

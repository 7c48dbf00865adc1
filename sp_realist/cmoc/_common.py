"""Shared vocabulary and look-ups for the realist-analysis area."""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..numbers import db_id, db_int

STATUSES = ("partial", "complete")
CONFIDENCES = ("high", "moderate", "low")
COMPONENTS = ("context", "mechanism_resource", "mechanism_response", "outcome")
ROLES = ("supports", "refutes")
RELATION_KINDS = ("refines", "contradicts", "chains")

# Wong & Papoutsi's six steps (appendix "Data analysis processes").
RELEVANCE = ("relevant", "not_relevant", "concept_box")
TRUST = ("high", "moderate", "low")
INTERPRETATIONS = ("context", "mechanism_resource", "mechanism_response", "outcome", "unclear")
CMOC_JUDGEMENTS = ("new", "supports", "refines", "refutes")

CMOC_TEXT_FIELDS = ("context", "mechanism_resource", "mechanism_response", "outcome")

#: Other names for the C/M/O components, accepted wherever a component is named: an appraisal's step-3
#: interpretation and an evidence link's component (analysis files, theory files, the command line) and a
#: theory file's CMOC field.  "mechanism" alone is the report's single "Mechanism (Behaviour)" column.
COMPONENT_ALIASES = {
    "mechanism": "mechanism_response",
    "response": "mechanism_response",
    "behaviour": "mechanism_response",
    "behavior": "mechanism_response",
    "resource": "mechanism_resource",
}


def check_choice(value: Any, choices: Iterable[str], what: str, where: str) -> str | None:
    """``value`` normalised (``-``/space -> ``_``, lower case; a :data:`COMPONENT_ALIASES` name becomes
    its component where that is a choice) if it is one of ``choices``."""
    if value is None or value == "":
        return None
    norm = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    choices = tuple(choices)
    if COMPONENT_ALIASES.get(norm) in choices:
        norm = COMPONENT_ALIASES[norm]
    if norm not in choices:
        raise SpRealistError(f"{where}: {what} {value!r} is not one of {', '.join(choices)}; use one of those.")
    return norm


def text_value(value: Any, where: str, field: str) -> str | None:
    """A CMOC text cell.  A YAML list becomes one item per line (joined with
    commas and "and" in if/then statements, one per line in tables)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value if v is not None and str(v).strip()]
        bad = [i for i in items if "\n" in i]
        if bad:
            raise SpRealistError(f"{where}: an item of {field} spans several lines; give one line per item.")
        return "\n".join(items) or None
    if isinstance(value, (dict, set)):
        raise SpRealistError(f"{where}: {field} must be text or a list of text, not a mapping.")
    text = str(value).strip()
    return text or None


def text_items(value: str | None) -> list[str]:
    """The items of a CMOC text cell (one per line)."""
    if not value:
        return []
    return [line.strip() for line in str(value).splitlines() if line.strip()]


def resolve_cmoc(conn: Connection, ref: str | int) -> dict:
    row = conn.execute(select(S.cmocs).where(S.cmocs.c.key == str(ref))).mappings().first()
    if row is None and db_id(ref) is not None:
        row = conn.execute(select(S.cmocs).where(S.cmocs.c.id == db_id(ref))).mappings().first()
    if row is None:
        hint = did_you_mean(ref, [r[0] for r in conn.execute(select(S.cmocs.c.key))], "see 'sp-realist cmoc list'.")
        raise NotFoundError(f"No CMOC {ref!r} in the project; {hint}")
    return dict(row)


def resolve_theory(conn: Connection, ref: str | int) -> dict:
    row = conn.execute(select(S.theories).where(S.theories.c.key == str(ref))).mappings().first()
    if row is None and db_id(ref) is not None:
        row = conn.execute(select(S.theories).where(S.theories.c.id == db_id(ref))).mappings().first()
    if row is None:
        hint = did_you_mean(ref, [r[0] for r in conn.execute(select(S.theories.c.key))],
                            "see 'sp-realist theory list'.")
        raise NotFoundError(f"No theory {ref!r} in the project; {hint}")
    return dict(row)


def resolve_excerpt(conn: Connection, ref: int | str | dict, where: str = "excerpt") -> int:
    """An excerpt id from an id or a file-format reference (source + quote/span/segment/section)."""
    from ..sources import get_or_create_excerpt, locate_excerpt

    if isinstance(ref, dict):
        if ref.get("excerpt") is not None:
            return resolve_excerpt(conn, ref["excerpt"], where)
        if ref.get("coding") is not None:
            row = conn.execute(select(S.codings.c.source_id, S.codings.c.start, S.codings.c.end)
                               .where(S.codings.c.id == db_int(ref["coding"], where, "coding id"))).first()
            if row is None:
                raise NotFoundError(f"{where}: no coding with id {ref['coding']}; see 'sp-realist retrieve'.")
            return get_or_create_excerpt(conn, *row)
        sid, start, end = locate_excerpt(conn, ref, where)
        return get_or_create_excerpt(conn, sid, start, end)
    if isinstance(ref, int) or str(ref).isdigit():
        row = conn.execute(select(S.excerpts.c.id).where(S.excerpts.c.id == db_int(ref, where, "excerpt id"))).first()
        if row is None:
            raise NotFoundError(f"{where}: no excerpt with id {ref}; locate it by source and quote instead.")
        return row[0]
    raise SpRealistError(f"{where}: {ref!r} is not an excerpt id; give an id or a source with a quote or span.")


class Lookups:
    """Caches for one transaction: CMOC, theory and source rows and checked excerpt ids.

    Bulk importers pass one to the ``*_conn`` functions so that each key is
    looked up once per file, not once per row.  Only valid while the cached
    objects are not renamed or deleted in the same transaction.
    """

    def __init__(self, conn: Connection):
        self.conn = conn
        self._cmocs: dict[str, dict] = {}
        self._theories: dict[str, dict] = {}
        self._sources: dict[str, dict] = {}
        self._excerpts: set[int] = set()

    def cmoc(self, ref: str | int) -> dict:
        k = str(ref)
        if k not in self._cmocs:
            self._cmocs[k] = resolve_cmoc(self.conn, ref)
        return self._cmocs[k]

    def theory(self, ref: str | int) -> dict:
        k = str(ref)
        if k not in self._theories:
            self._theories[k] = resolve_theory(self.conn, ref)
        return self._theories[k]

    def source(self, ref: str | int) -> dict:
        from ..sources import resolve_source

        k = str(ref)
        if k not in self._sources:
            self._sources[k] = resolve_source(self.conn, ref)
        return self._sources[k]

    def span(self, ref: dict, where: str = "excerpt") -> tuple[int, int, int]:
        """``(source_id, start, end)`` of a file-format reference, without creating an excerpt."""
        from ..sources import locate_excerpt, locate_quote

        if ref.get("source") is None or not (ref.get("quote") or ref.get("span") is not None):
            return locate_excerpt(self.conn, ref, where)
        src = self.source(ref["source"])
        text = src["text"]
        label = f"{where}{' ' if where else ''}(source {src['name']!r})"
        if ref.get("quote"):
            start, end = locate_quote(text, str(ref["quote"]), label)
        else:
            try:
                start, end = (int(x) for x in ref["span"])
            except (TypeError, ValueError):
                raise SpRealistError(f"{label}: span must be [start, end].") from None
            if not 0 <= start < end <= len(text):
                raise SpRealistError(f"{label}: span {start}:{end} is outside the text (0:{len(text)}).")
        return src["id"], start, end

    def excerpt(self, ref: int | str | dict, where: str = "excerpt") -> int:
        """Like :func:`resolve_excerpt`, reusing cached sources for quotes and spans."""
        from ..sources import get_or_create_excerpt

        if isinstance(ref, int) and ref in self._excerpts:
            return ref
        if isinstance(ref, dict) and ref.get("excerpt") is None and ref.get("coding") is None:
            eid = get_or_create_excerpt(self.conn, *self.span(ref, where))
        else:
            eid = resolve_excerpt(self.conn, ref, where)
        self._excerpts.add(eid)
        return eid


def loads_list(value: str | None) -> list:
    if not value:
        return []
    try:
        out = json.loads(value)
    except ValueError:
        return [value]
    return out if isinstance(out, list) else [out]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def natural_key(key: str) -> tuple:
    """Sort "T1.10" after "T1.2"."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(key)))

"""Shared pieces of the REFI-QDA exchange: GUIDs, dates, codebook plans and the import result.

Importers (QDPX, QDC, Taguette CSV, qc YAML) first read a file into *plans*
(plain dataclasses, nothing written), then write the plans into a project in
one transaction with the ``apply_*`` functions here, so a file that fails
half-way leaves the project untouched.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..store import stable_guid

NS_PROJECT = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"

_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
_RGB = re.compile(r"^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$")

# Labels that fold sp_realist's code fields into REFI-QDA's single Description.
DESCRIPTION_FIELDS = (("inclusion", "Inclusion"), ("exclusion", "Exclusion"), ("example", "Example"))
_DESC_SPLIT = re.compile(r"\n\n(?=(?:Inclusion|Exclusion|Example): )")


@contextmanager
def cycle_collection_paused():
    """Pause Python's cyclic garbage collector while a file's worth of objects is built and written (an
    import's parsed tree and plans, an export's rows and elements).  They hold no reference cycles and are
    freed by reference counting as always, but with millions of them alive every collection pass walks them
    all: a fifth to a third of the time at 100,000 to 1,000,000 codings.  Restored as it was (a caller that
    had paused it keeps it paused), also on error."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def norm_guid(value: str | None) -> str | None:
    """A GUID without braces, lower case; None if ``value`` is not a GUID."""
    if not value:
        return None
    if _CANONICAL_GUID.fullmatch(value):  # already canonical (most GUIDs in a file): as it is
        return value
    m = _GUID.match(value.strip())
    return m.group(1).lower() if m else None


#: Attributes whose values are GUIDs in the REFI-QDA schemas (identifiers and references to them).
GUID_ATTRIBUTES = frozenset((
    "guid", "targetGUID", "creatingUser", "modifyingUser", "creatingUserGUID", "modifyingUserGUID",
    "originGUID", "representedGUID", "sourceVertex", "targetVertex", "fromSyncPoint", "toSyncPoint",
))


_CANONICAL_LINE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.MULTILINE)


def guids_canonical(root) -> bool:
    """Whether every GUID attribute in the parsed tree is empty or already a canonical GUID (what sp_realist
    and most tools write): then :func:`repair_foreign_guids` has nothing to do and :func:`norm_guid` returns
    each value as it is (or None for an empty one).  The values are checked together: joined one per line
    (none may hold a line break itself), every line must be a canonical GUID or empty."""
    values = [v for el in root.iter() for k, v in el.items() if k in GUID_ATTRIBUTES]
    joined = "\n".join(values)
    if joined.count("\n") != max(len(values) - 1, 0):
        return False
    return not _CANONICAL_LINE.sub("", joined).strip("\n")


def repair_foreign_guids(root, where: str) -> int:
    """Give identifiers that are not GUIDs (``guid="c1"``, written by some tools
    and by hand) deterministic GUIDs, *in every attribute that refers to them*,
    so that codings keep their codes and selections their users.

    Rewrites the parsed tree in place; returns how many distinct identifiers
    were replaced.
    """
    mapped: dict[str, str] = {}
    for el in root.iter():
        for name, value in el.attrib.items():
            if name not in GUID_ATTRIBUTES or not value or _CANONICAL_GUID.fullmatch(value) or not value.strip() \
                    or norm_guid(value):
                continue
            token = value.strip()
            if token not in mapped:
                mapped[token] = stable_guid("foreign-id", where, token)
            el.set(name, mapped[token])
    return len(mapped)


def valid_colour(value: str | None) -> str | None:
    return value if value and _RGB.match(value.strip()) else None


#: A UTC time to the second (the store's own form, and REFI-QDA's usual one): converted by hand, the
#: digits unchanged, after ``datetime.fromisoformat`` has checked that they are a valid date and time.
_UTC_SECONDS = re.compile(r"([1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:Z|\+00:00)")


def xsd_datetime(value: str | None) -> str | None:
    """An ISO timestamp as an xsd:dateTime in UTC (``2026-11-23T19:30:00Z``), or None."""
    if not value:
        return None
    m = _UTC_SECONDS.fullmatch(value) if isinstance(value, str) else None
    if m:
        try:
            datetime.fromisoformat(m.group(1))
            return m.group(1) + "Z"
        except ValueError:
            return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is in year 0 in UTC: no xsd time to give
        return None


def store_datetime(value: str | None) -> str | None:
    """An xsd:dateTime from a file as the store's ISO-8601 UTC string, or None if unreadable.

    Times without a zone (Transana writes them) are taken as UTC.
    """
    if not value:
        return None
    m = _UTC_SECONDS.fullmatch(value.strip())
    if m:
        try:
            datetime.fromisoformat(m.group(1))
            return m.group(1) + "+00:00"
        except ValueError:
            return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is in year 0 in UTC: unreadable, like a bad date
        return None


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str | None) -> tuple[str | None, int]:
    """``text`` without characters XML 1.0 cannot hold, and how many were removed."""
    if text is None:
        return None, 0
    cleaned, n = _XML_BAD.subn("", text)
    return cleaned, n


def compose_description(row) -> str | None:
    """definition + labelled inclusion/exclusion/example paragraphs (parsed back on import)."""
    extra = [f"{label}: {row[key]}" for key, label in DESCRIPTION_FIELDS if row.get(key)]
    if not extra:
        return row.get("definition") or None
    return "\n\n".join([row.get("definition") or ""] + extra)


def parse_description(text: str | None) -> dict[str, str | None]:
    """Inverse of :func:`compose_description`."""
    out: dict[str, str | None] = {"definition": None, "inclusion": None, "exclusion": None, "example": None}
    if not text:
        return out
    chunks = _DESC_SPLIT.split(text)
    head = chunks[0]
    out["definition"] = head if head.strip() else None
    labels = {label: key for key, label in DESCRIPTION_FIELDS}
    for chunk in chunks[1:]:
        label, _, value = chunk.partition(": ")
        key = labels.get(label)
        if key and out[key] is None:
            out[key] = value
        else:  # a repeated label: keep it in the definition rather than lose it
            out["definition"] = (out["definition"] or "") + "\n\n" + chunk
    return out


def project_id(conn: Connection) -> str:
    row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == "project_id")).first()
    return row[0] if row else "sp_realist"


def guid_for(row_guid: str | None, pid: str, *natural_key) -> str:
    """A stored GUID (from an earlier import) or a stable one from the natural key."""
    return norm_guid(row_guid) or stable_guid(pid, *natural_key)


# --- plans -------------------------------------------------------------------
@dataclass
class CodePlan:
    guid: str
    name: str
    parent: str | None = None  # parent's guid
    description: str | None = None
    colour: str | None = None
    codable: bool = True


@dataclass
class ThemePlan:
    guid: str
    name: str
    description: str | None = None
    codes: list[str] = field(default_factory=list)  # code guids
    notes: list[str] = field(default_factory=list)  # note guids


@dataclass
class ImportResult:
    """What an import did: counts, conversions, and one line per kind of loss."""

    source: str
    project: str | None = None
    counts: Counter = field(default_factory=Counter)
    losses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # conversions and merges (not losses)
    changes: list[str] = field(default_factory=list)  # imported, but not as the file had it (renamed ...)

    def lose(self, line: str) -> None:
        if line not in self.losses:
            self.losses.append(line)

    def change(self, line: str) -> None:
        if line not in self.changes:
            self.changes.append(line)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def frame(self) -> pd.DataFrame:
        order = ["codes", "sources", "codings", "cases", "notes", "themes", "excerpts"]
        keys = [k for k in order if k in self.counts] + sorted(k for k in self.counts if k not in order)
        return pd.DataFrame([(k, int(self.counts[k])) for k in keys], columns=["imported", "count"])


def apply_codes(conn: Connection, plans: list[CodePlan], result: ImportResult, origin: str) -> dict[str, int]:
    """Insert the codes (through ``coding.codebook.insert_code``), parents first, each under its parent with its
    own name (names repeat under different parents, as in the file); reuse an existing code of the same GUID,
    or of the same path (the same name under the same parent).  Two codes of one name under one parent in
    the file (which the store cannot hold) keep the first's name; the others get " (2)" ... and are reported.

    Returns guid -> code id.
    """
    from ..coding._common import CodeTree
    from ..coding.codebook import insert_code

    tree = CodeTree.read(conn)
    by_guid = {norm_guid(r["guid"]): cid for cid, r in tree.rows.items() if r["guid"]}
    taken: dict[int | None, set[str]] = {}
    for r in tree.rows.values():
        taken.setdefault(r["parent_id"], set()).add(r["name"])
    ids: dict[str, int] = {}
    pending = list(plans)
    merged = renamed = 0
    claimed: set[int] = set()  # existing codes one plan has already taken by path
    ord_base = conn.execute(select(S.codes.c.ord).order_by(S.codes.c.ord.desc())).scalar() or 0
    while pending:
        progressed = False
        rest = []
        for p in pending:
            if p.parent and p.parent not in ids and any(q.guid == p.parent for q in pending):
                rest.append(p)
                continue
            progressed = True
            if p.guid in by_guid:
                ids[p.guid] = by_guid[p.guid]
                merged += 1
                continue
            parent_id = ids.get(p.parent) if p.parent else None
            same = tree.sibling(parent_id, p.name)
            if same is not None and same["id"] not in claimed:
                ids[p.guid] = same["id"]
                claimed.add(same["id"])
                merged += 1
                continue
            name, n = p.name, 2
            while name in taken.get(parent_id, set()):
                name = f"{p.name} ({n})"
                n += 1
            if name != p.name:
                renamed += 1
            fields = parse_description(p.description)
            ord_base += 1
            cid = insert_code(conn, name, parent_id, {"colour": valid_colour(p.colour), **fields}, ord_base,
                              guid=p.guid, codable=bool(p.codable))
            ids[p.guid] = cid
            claimed.add(cid)
            taken.setdefault(parent_id, set()).add(name)
            result.counts["codes"] += 1
        if not progressed:  # a parent cycle: break it by importing the rest at the top level
            for p in rest:
                p.parent = None
            result.lose(f"{len(rest)} code(s) had a circular parent chain and were placed at the top level")
        pending = rest
    if merged:
        result.note(f"{merged} code(s) already in the project (same GUID, or same name under the same parent) "
                    "were reused, not duplicated")
    if renamed:
        result.change(f"{renamed} code(s) had the name of a sibling under the same parent and were imported but "
                      "renamed 'Name (2)' (names are unique among siblings)")
    return ids


def apply_users(conn: Connection, users: dict[str, str]) -> int:
    """Keep the users a file declares (guid -> name), with or without codings or notes; the ``users``
    table is written here only.  A name already kept keeps its GUID.  Returns how many were added."""
    have = {r[0] for r in conn.execute(select(S.users.c.name))}
    rows = []
    for guid, name in users.items():
        if name not in have:
            have.add(name)
            rows.append({"name": name, "guid": guid})
    if rows:
        conn.execute(insert(S.users), rows)
    return len(rows)


def apply_themes(conn: Connection, plans: list[ThemePlan], code_ids: dict[str, int],
                 result: ImportResult) -> dict[str, int]:
    """Insert code sets as themes, or add their codes to an existing theme of the same name (through
    ``coding.themes.insert_theme`` / ``add_theme_codes``)."""
    from ..coding.themes import add_theme_codes, insert_theme

    ids: dict[str, int] = {}
    missing = 0
    for t in plans:
        row = conn.execute(select(S.themes.c.id).where(S.themes.c.name == t.name)).first()
        if row:
            tid = row[0]
            result.note(f"theme {t.name!r} already existed; its codes were added to it")
        else:
            tid = insert_theme(conn, name=t.name, description=t.description, guid=t.guid, ord=len(ids))
            result.counts["themes"] += 1
        ids[t.guid] = tid
        missing += sum(code_ids.get(g) is None for g in t.codes)
        add_theme_codes(conn, tid, [code_ids[g] for g in t.codes if g in code_ids])
    if missing:
        result.lose(f"{missing} set member(s) referred to codes that are not in the file and were skipped")
    return ids


def coding_exists(conn: Connection, code_id: int, source_id: int, start: int, end: int, coder: str) -> int | None:
    """The id of the identical coding already in the project, if any."""
    c = S.codings.c
    row = conn.execute(select(c.id).where(and_(
        c.code_id == code_id, c.source_id == source_id, c.start == start, c.end == end, c.coder == coder))).first()
    return row[0] if row else None

"""Helpers shared by the coding modules: code lookup, the code tree, YAML (who codes: :mod:`sp_realist.identity`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..numbers import db_id
from ..yamlio import load_yaml_file

UNITS = ("match", "sentence", "segment", "section")
PHASES = ("initial", "searching", "reviewing", "defining", "named")


def clean_name(name: Any, what: str = "code") -> str:
    """A name with white space normalised; refuses empty names."""
    if name is None or not str(name).strip():
        raise SpRealistError(f"A {what} needs a non-empty name; give one.")
    return " ".join(str(name).split())


def code_rows(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(S.codes).order_by(S.codes.c.ord, S.codes.c.id)).mappings()]


# --- codes are identified by their place in the tree -------------------------------------------------
# A path joins the names from the top of the tree with "/"; inside a name, "/" is written "\/" and "\" is
# written "\\" (so "and/or" under "Barriers" is "Barriers/and\/or").  A reference is resolved by
# :class:`CodeTree.resolve`: first a code whose whole name is the reference (so a name with "/" in it, as NVivo
# allows, works as written), then the reference as a path, anchored at the top or ending a longer path
# ("Parent/Child" is enough wherever it is unique); a reference starting with "/" is only ever a path from the top.
def escape_name(name: str) -> str:
    """A code name as one step of a path."""
    return name.replace("\\", "\\\\").replace("/", "\\/")


def split_path(ref: str) -> list[str]:
    """The names a path names, top first (``"A/b\\/c"`` -> ``["A", "b/c"]``); white space in each is normalised."""
    parts, cur, i = [], [], 0
    while i < len(ref):
        ch = ref[i]
        if ch == "\\" and i + 1 < len(ref) and ref[i + 1] in "/\\":
            cur.append(ref[i + 1])
            i += 2
            continue
        if ch == "/":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [" ".join(p.split()) for p in parts]


class CodeTree:
    """The codebook as a tree, read once: each code's path, its label (the name, or the path when another
    code shares the name) and the one resolver of the references users write."""

    def __init__(self, rows: list[dict]):
        self.rows = {r["id"]: r for r in rows}
        self._steps: dict[int, tuple[str, ...]] = {}
        for cid in self.rows:
            self.steps(cid)
        self.name_count: dict[str, int] = {}
        for r in rows:
            self.name_count[r["name"]] = self.name_count.get(r["name"], 0) + 1

    @classmethod
    def read(cls, conn: Connection) -> "CodeTree":
        return cls(code_rows(conn))

    def steps(self, code_id: int) -> tuple[str, ...]:
        """The names from the top of the tree down to ``code_id``."""
        if code_id not in self._steps:
            chain, cur, seen = [], code_id, set()
            while cur is not None and cur in self.rows and cur not in seen:
                seen.add(cur)
                chain.append(self.rows[cur]["name"])
                cur = self.rows[cur]["parent_id"]
            self._steps[code_id] = tuple(reversed(chain))
        return self._steps[code_id]

    def path(self, code_id: int) -> str:
        return "/".join(escape_name(n) for n in self.steps(code_id))

    def label(self, code_id: int) -> str:
        """The code's name when no other code has it, else its path (what listings show); always a reference
        :meth:`resolve` reads back as this code (``/`` + the path when another code's whole name reads the same)."""
        name = self.rows[code_id]["name"]
        if self.name_count.get(name, 0) <= 1:
            return name
        path = self.path(code_id)
        return path if self.find(path) == [code_id] else "/" + path

    def labels(self) -> dict[int, str]:
        return {cid: self.label(cid) for cid in self.rows}

    def paths(self) -> dict[int, str]:
        return {cid: self.path(cid) for cid in self.rows}

    def sibling(self, parent_id: int | None, name: str, but: int | None = None) -> dict | None:
        """The code named ``name`` directly under ``parent_id`` (None: the top level), other than ``but``."""
        return next((r for r in self.rows.values()
                     if r["parent_id"] == parent_id and r["name"] == name and r["id"] != but), None)

    def clash(self, parent_id: int | None, name: str, but: int | None = None) -> str | None:
        """One sentence refusing ``name`` under ``parent_id`` when a sibling already has it, else None."""
        other = self.sibling(parent_id, name, but)
        if other is None:
            return None
        where = f"under {self.path(parent_id)!r}" if parent_id is not None else "at the top level"
        return (f"code {name!r}: a code of that name already exists {where}; names are unique among siblings, "
                "so choose another name or parent.")

    def find(self, ref: str) -> list[int]:
        """Ids of the codes ``ref`` names (several: ambiguous; none: unknown)."""
        ref = str(ref).strip()
        rooted = ref.startswith("/")
        if not rooted:
            whole = " ".join(ref.split())
            exact = [cid for cid, r in self.rows.items() if r["name"] == whole]
            if exact:
                return exact
        steps = tuple(split_path(ref[1:] if rooted else ref))
        if any(not s for s in steps):
            return []
        anchored = [cid for cid in self.rows if self.steps(cid) == steps]
        if anchored or rooted:
            return anchored
        n = len(steps)
        return [cid for cid in self.rows if len(self.steps(cid)) > n and self.steps(cid)[-n:] == steps]

    def resolve(self, ref: str | int, what: str = "code") -> dict:
        """The code row ``ref`` names: an id, a unique name, or a path (``Parent/Child``, any depth); an
        ambiguous name is refused with its candidates' paths, an unknown one gets the closest suggested."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            row = self.rows.get(ref) if db_id(ref) is not None else None
            if row is None:
                raise NotFoundError(f"No code with id {ref} in the codebook; see 'sp-realist codebook tree'.")
            return dict(row)
        found = self.find(ref)
        if len(found) == 1:
            return dict(self.rows[found[0]])
        if found:
            paths = sorted(self.path(cid) for cid in found)
            raise SpRealistError(
                f"{what} {str(ref)!r} is ambiguous: {len(paths)} codes have that name ({', '.join(map(repr, paths))}); "
                f"give its path instead, e.g. {paths[0]!r}.")
        candidates = sorted({r["name"] for r in self.rows.values()}  # names, and each path's every ending
                            | {"/".join(escape_name(n) for n in self.steps(cid)[i:])
                               for cid in self.rows for i in range(len(self.steps(cid)))})
        hint = did_you_mean(" ".join(str(ref).split()), candidates, "see 'sp-realist codebook tree'.")
        raise NotFoundError(f"No code named {str(ref)!r} in the codebook; {hint}")


def resolve_code(conn: Connection, ref: str | int, tree: CodeTree | None = None) -> dict:
    """A code row by id, name or path (see :class:`CodeTree`); one clear sentence otherwise.  Pass ``tree``
    (:meth:`CodeTree.read`) when resolving many references in one go."""
    return (tree or CodeTree.read(conn)).resolve(ref)


def labelled_code_rows(conn: Connection) -> list[dict]:
    """:func:`code_rows` with each ``name`` replaced by its label (:meth:`CodeTree.label`), for tables that
    group or head columns by code."""
    tree = CodeTree.read(conn)
    return [dict(r, name=tree.label(r["id"])) for r in tree.rows.values()]


def code_labels(conn: Connection) -> dict[int, str]:
    """id -> what listings show for a code: its name, or its path when another code has the same name."""
    return CodeTree.read(conn).labels()


def code_children(conn: Connection) -> dict[int | None, list[int]]:
    """Each code's children's ids in codebook order (key ``None``: the top-level codes); the tree read once."""
    children: dict[int | None, list[int]] = {}
    for cid, pid in conn.execute(select(S.codes.c.id, S.codes.c.parent_id).order_by(S.codes.c.ord, S.codes.c.id)):
        children.setdefault(pid, []).append(cid)
    return children


def descendants_in(children: dict[int | None, list[int]], code_id: int) -> list[int]:
    """Ids of ``code_id``'s descendants (not including itself) in a tree from :func:`code_children`, depth
    first."""
    out: list[int] = []
    stack = list(reversed(children.get(code_id, [])))
    while stack:
        cid = stack.pop()
        out.append(cid)
        stack.extend(reversed(children.get(cid, [])))
    return out


def descendants(conn: Connection, code_id: int) -> list[int]:
    """Ids of ``code_id``'s descendants (not including itself), depth first."""
    return descendants_in(code_children(conn), code_id)


def code_ids_for(conn: Connection, codes: list[str] | tuple[str, ...] | None, children: bool = False) -> list[int] | None:
    """Resolve code names to ids (with descendants when ``children``); None means all codes."""
    if not codes:
        return None
    ids: list[int] = []
    tree = CodeTree.read(conn)
    for ref in codes:
        cid = tree.resolve(ref)["id"]
        if cid not in ids:
            ids.append(cid)
        if children:
            ids.extend(d for d in descendants(conn, cid) if d not in ids)
    return ids


def rows_frame(rows, columns: list[str]):
    """A DataFrame from SQL result rows, built column by column (pandas inspects
    SQLAlchemy ``Row`` objects one attribute at a time, which is slow)."""
    import pandas as pd

    rows = list(rows)
    if not rows:
        return pd.DataFrame({c: [] for c in columns}, columns=columns)
    return pd.DataFrame(dict(zip(columns, (list(col) for col in zip(*rows)))), columns=columns)


def fetch_rows(conn, query) -> list[tuple]:
    """The rows of a SELECT as plain tuples, read from the DBAPI cursor (see :func:`fetch_frame`)."""
    result = conn.execute(query)
    cursor = getattr(result, "cursor", None)
    rows = cursor.fetchall() if cursor is not None else [tuple(r) for r in result]
    result.close()
    return rows


def fetch_frame(conn, query, columns: list[str]):
    """Run a SELECT of plain integer/text columns and return a DataFrame.

    Rows are fetched from the DBAPI cursor of SQLAlchemy's result (the
    statement is still a Core expression compiled for the connection's
    dialect); this skips building a ``Row`` object per row, which dominates
    for 100,000+ codings.  Use it only for columns without result processors
    (integers, strings).
    """
    import pandas as pd

    rows = fetch_rows(conn, query)
    if not rows:
        return pd.DataFrame({c: [] for c in columns}, columns=columns)
    return pd.DataFrame(rows, columns=columns)


def read_yaml(path: str | os.PathLike, top: str) -> dict:
    """Load a YAML mapping from ``path``; clear errors for missing files and bad YAML."""
    p = Path(path)
    data = load_yaml_file(p, fix="fix the syntax", problem=False)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpRealistError(f"{p}: expected a mapping with a '{top}:' list at the top.")
    return data


_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def dump_yaml(data: Any) -> str:
    """YAML text that loads back to exactly ``data`` (Unicode line breaks are escaped)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def str_representer(dumper, value: str):
        if any(b in value for b in _BREAKS):  # written raw, YAML would fold these into spaces
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
        return dumper.represent_str(value)

    Dumper.add_representer(str, str_representer)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


PACK = 2 ** 31  # ids and counts are 32-bit in the schema: (id, n) packed as id * PACK + n in one 64-bit integer


def unpack_lists(listed: list[tuple[int, str]]):
    """``(owner, values)`` of comma-separated integer lists given as ``(owner index, text)``: for each value, the
    index of the list it came from, and the values, as int64 arrays."""
    import numpy as np

    if not listed:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    values = int_list(",".join(text for _i, text in listed))
    owner = np.repeat(np.array([i for i, _t in listed], dtype=np.int64), [t.count(",") + 1 for _i, t in listed])
    return owner, values


def int_list(text: str):
    """The integers of a comma-separated list (as SQL's ``group_concat`` / ``string_agg`` writes them) as an
    int64 array, parsed in C (a list of Python strings converted one by one costs 6x more)."""
    import numpy as np

    return np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, dtype=np.int64)

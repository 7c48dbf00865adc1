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


def resolve_code(conn: Connection, ref: str | int) -> dict:
    """A code row by exact name (or id); clear error otherwise."""
    row = None
    if isinstance(ref, int):
        row = (conn.execute(select(S.codes).where(S.codes.c.id == ref)).mappings().first()
               if db_id(ref) is not None else None)
    else:
        name = " ".join(str(ref).split())
        row = conn.execute(select(S.codes).where(S.codes.c.name == name)).mappings().first()
        if row is None and "/" in name:  # a path "Parent/Child"
            row = conn.execute(select(S.codes).where(S.codes.c.name == name.rsplit("/", 1)[1].strip())).mappings().first()
    if row is None:
        names = [r[0] for r in conn.execute(select(S.codes.c.name))]
        hint = did_you_mean(str(ref).rsplit("/", 1)[-1] if isinstance(ref, str) else ref, names,
                            "see 'sp-realist codebook tree'.")
        raise NotFoundError(f"No code named {str(ref)!r} in the codebook; {hint}")
    return dict(row)


def descendants(conn: Connection, code_id: int) -> list[int]:
    """Ids of ``code_id``'s descendants (not including itself), depth first."""
    children: dict[int | None, list[int]] = {}
    for cid, pid in conn.execute(select(S.codes.c.id, S.codes.c.parent_id).order_by(S.codes.c.ord, S.codes.c.id)):
        children.setdefault(pid, []).append(cid)
    out: list[int] = []
    stack = list(reversed(children.get(code_id, [])))
    while stack:
        cid = stack.pop()
        out.append(cid)
        stack.extend(reversed(children.get(cid, [])))
    return out


def code_ids_for(conn: Connection, codes: list[str] | tuple[str, ...] | None, children: bool = False) -> list[int] | None:
    """Resolve code names to ids (with descendants when ``children``); None means all codes."""
    if not codes:
        return None
    ids: list[int] = []
    for ref in codes:
        cid = resolve_code(conn, ref)["id"]
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

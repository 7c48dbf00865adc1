"""Mid-range (programme) theories: their CMOCs and their refinement history.

Each change to a theory's text or membership is recorded in
``theory_history`` with its date, author, reason and the excerpts (evidence)
that prompted it, so the development of the programme theory can be audited
and reported.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project, next_ordinal, now, stable_guid
from ._common import dumps, loads_list, resolve_cmoc, resolve_excerpt, resolve_theory


def _questions(value: Any, where: str) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value if str(v).strip()]
    else:
        raise SpRealistError(f"{where}: questions must be a list such as [Q2, Q3].")
    return dumps(items) if items else None


def _evidence_ids(conn: Connection, evidence: Iterable | None, where: str) -> list[int]:
    if not evidence:
        return []
    if isinstance(evidence, (str, int, dict)):
        evidence = [evidence]
    return [resolve_excerpt(conn, e, where) for e in evidence]


def record_change_conn(conn: Connection, theory: str, change: str, *, reason: str | None = None,
                       evidence: Iterable | None = None, author: str | None = None, at: str | None = None) -> int:
    row = resolve_theory(conn, theory)
    where = f"theory {row['key']} history"
    if not change or not str(change).strip():
        raise SpRealistError(f"{where}: describe the change.")
    ids = _evidence_ids(conn, evidence, where)
    return conn.execute(insert(S.theory_history).values(
        theory_id=row["id"], at=str(at) if at else now(), author=author, change=str(change).strip(),
        reason=reason, evidence=dumps(ids) if ids else None)).inserted_primary_key[0]


def record_change(project: Project, theory: str, change: str, *, reason: str | None = None,
                  evidence: Iterable | None = None, author: str | None = None, at: str | None = None) -> int:
    """Add a dated entry to a theory's refinement history (with its reason and evidence)."""
    with project.begin() as conn:
        hid = record_change_conn(conn, theory, change, reason=reason, evidence=evidence, author=author, at=at)
        project.log(conn, "theory.history", str(theory), actor=author, change=change)
    return hid


def add_theory_conn(conn: Connection, key: str, title: str, *, description: str | None = None,
                    questions: Any = None, where: str | None = None, guid: str | None = None,
                    created_at: str | None = None, updated_at: str | None = None, ord: int | None = None) -> int:
    """Insert one theory (the one writer of new ``theories`` rows); ``guid``, times and ``ord`` keep what an
    imported theory had."""
    key = str(key).strip() if key is not None else ""
    where = where or f"theory {key}"
    if not key or any(ch.isspace() for ch in key):
        raise SpRealistError(f"{where}: key {key!r} must be non-empty without spaces, e.g. T1.")
    if not title or not str(title).strip():
        raise SpRealistError(f"{where}: a theory needs a title.")
    if conn.execute(select(S.theories.c.id).where(S.theories.c.key == key)).first():
        raise SpRealistError(f"{where}: a theory {key} already exists; edit it with 'sp-realist theory edit {key}'.")
    ord_ = ord if ord is not None else next_ordinal(conn, S.theories.c.ord)
    ts = created_at or now()
    return conn.execute(insert(S.theories).values(
        key=key, title=str(title).strip(), description=(str(description).strip() or None) if description else None,
        questions=_questions(questions, where), ord=ord_, guid=guid or stable_guid("theory", key),
        created_at=ts, updated_at=updated_at or ts)).inserted_primary_key[0]


def add_theory(project: Project, key: str, title: str, *, description: str | None = None,
               questions: Any = None, actor: str | None = None) -> int:
    """Create a mid-range theory; ``questions`` are the evaluation questions it addresses (e.g. ["Q2", "Q3"])."""
    with project.begin() as conn:
        tid = add_theory_conn(conn, key, title, description=description, questions=questions)
        record_change_conn(conn, key, f"Created theory {key}: {title}", author=actor)
        project.log(conn, "theory.add", key, actor=actor)
    return tid


def edit_theory(project: Project, key: str, *, title: str | None = None, description: str | None = None,
                questions: Any = None, new_key: str | None = None, reason: str | None = None,
                evidence: Iterable | None = None, actor: str | None = None) -> dict:
    """Change a theory's title, description, questions or key; recorded in its history."""
    with project.begin() as conn:
        row = resolve_theory(conn, key)
        where = f"theory {row['key']}"
        values: dict[str, Any] = {}
        if title is not None:
            if not str(title).strip():
                raise SpRealistError(f"{where}: the title cannot be empty.")
            values["title"] = str(title).strip()
        if description is not None:
            values["description"] = str(description).strip() or None
        if questions is not None:
            values["questions"] = _questions(questions, where)
        if new_key and new_key != row["key"]:
            if conn.execute(select(S.theories.c.id).where(S.theories.c.key == new_key)).first():
                raise SpRealistError(f"{where}: cannot rename to {new_key}; that key is taken.")
            values["key"] = new_key
        changed = {k: (row[k], v) for k, v in values.items() if row[k] != v}
        if not changed:
            return {}
        conn.execute(update(S.theories).where(S.theories.c.id == row["id"]).values(
            updated_at=now(), **{k: v[1] for k, v in changed.items()}))
        summary = "; ".join(f"{k} changed" if k == "description" else f"{k}: {o!r} -> {n!r}"
                            for k, (o, n) in changed.items())
        record_change_conn(conn, changed.get("key", (None, row["key"]))[1], f"Edited: {summary}",
                           reason=reason, evidence=evidence, author=actor)
        project.log(conn, "theory.edit", row["key"], actor=actor, changes=list(changed))
    return changed


def add_member_conn(conn: Connection, theory: str, cmoc: str, *, actor: str | None = None,
                    reason: str | None = None, evidence: Iterable | None = None, record: bool = True) -> bool:
    t, c = resolve_theory(conn, theory), resolve_cmoc(conn, cmoc)
    tc = S.theory_cmocs
    if conn.execute(select(tc.c.cmoc_id).where(and_(tc.c.theory_id == t["id"], tc.c.cmoc_id == c["id"]))).first():
        return False
    ord_ = next_ordinal(conn, tc.c.ord, tc.c.theory_id == t["id"])
    conn.execute(insert(tc).values(theory_id=t["id"], cmoc_id=c["id"], ord=ord_))
    if record:
        record_change_conn(conn, t["key"], f"Added {c['key']}", reason=reason, evidence=evidence, author=actor)
    return True


def add_member(project: Project, theory: str, cmoc: str, *, reason: str | None = None,
               evidence: Iterable | None = None, actor: str | None = None) -> bool:
    """Make a CMOC part of a theory (recorded in the history); False if it already was."""
    with project.begin() as conn:
        added = add_member_conn(conn, theory, cmoc, actor=actor, reason=reason, evidence=evidence)
        if added:
            project.log(conn, "theory.member.add", str(theory), actor=actor, cmoc=cmoc)
    return added


def remove_member(project: Project, theory: str, cmoc: str, *, reason: str | None = None,
                  evidence: Iterable | None = None, actor: str | None = None) -> bool:
    """Take a CMOC out of a theory (the CMOC itself is kept); recorded in the history."""
    with project.begin() as conn:
        t, c = resolve_theory(conn, theory), resolve_cmoc(conn, cmoc)
        n = conn.execute(delete(S.theory_cmocs).where(and_(
            S.theory_cmocs.c.theory_id == t["id"], S.theory_cmocs.c.cmoc_id == c["id"]))).rowcount
        if n:
            record_change_conn(conn, t["key"], f"Removed {c['key']}", reason=reason, evidence=evidence, author=actor)
            project.log(conn, "theory.member.remove", t["key"], actor=actor, cmoc=c["key"])
    return bool(n)


def theory_rows(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(S.theories).order_by(S.theories.c.ord, S.theories.c.key)).mappings()]


def theory_members(conn: Connection, theory_id: int) -> list[str]:
    return conn.execute(
        select(S.cmocs.c.key).select_from(S.theory_cmocs.join(S.cmocs, S.cmocs.c.id == S.theory_cmocs.c.cmoc_id))
        .where(S.theory_cmocs.c.theory_id == theory_id).order_by(S.theory_cmocs.c.ord, S.cmocs.c.ord)).scalars().all()


def list_theories(project: Project) -> pd.DataFrame:
    """One row per theory: key, title, questions, CMOC keys, number of history entries."""
    with project.connect() as conn:
        rows = theory_rows(conn)
        nhist = dict(conn.execute(select(S.theory_history.c.theory_id, func.count())
                                  .group_by(S.theory_history.c.theory_id)).all())
        data = [{"key": r["key"], "title": r["title"], "questions": ", ".join(loads_list(r["questions"])),
                 "cmocs": ", ".join(theory_members(conn, r["id"])), "changes": nhist.get(r["id"], 0),
                 "description": r["description"]} for r in rows]
    return pd.DataFrame(data, columns=["key", "title", "questions", "cmocs", "changes", "description"])


def theory_detail(project: Project, key: str) -> dict:
    """A theory's fields, its CMOC keys and questions."""
    with project.connect() as conn:
        row = resolve_theory(conn, key)
        return {"key": row["key"], "title": row["title"], "description": row["description"],
                "questions": loads_list(row["questions"]), "cmocs": theory_members(conn, row["id"]),
                "created_at": row["created_at"], "updated_at": row["updated_at"]}


def history_frame(conn: Connection, theory_id: int | None = None) -> pd.DataFrame:
    h = S.theory_history
    q = (select(S.theories.c.key.label("theory"), h.c.id, h.c.at, h.c.author, h.c.change, h.c.reason, h.c.evidence)
         .select_from(h.join(S.theories, S.theories.c.id == h.c.theory_id)).order_by(S.theories.c.ord, h.c.at, h.c.id))
    if theory_id is not None:
        q = q.where(h.c.theory_id == theory_id)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["evidence"] = ", ".join(str(e) for e in loads_list(r["evidence"]))
    return pd.DataFrame(rows, columns=["theory", "id", "at", "author", "change", "reason", "evidence"])


def theory_history(project: Project, key: str | None = None) -> pd.DataFrame:
    """The refinement history (date, author, change, reason, evidence excerpt ids) of one or every theory."""
    with project.connect() as conn:
        tid = resolve_theory(conn, key)["id"] if key else None
        return history_frame(conn, tid)


def theory_fields_frame(detail: dict) -> pd.DataFrame:
    return pd.DataFrame([(k, ", ".join(v) if isinstance(v, list) else v) for k, v in detail.items()],
                        columns=["field", "value"])


__all__ = [
    "add_theory", "edit_theory", "add_member", "remove_member", "record_change", "list_theories",
    "theory_detail", "theory_history",
]

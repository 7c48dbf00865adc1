"""Memos: analytic notes on the project, a code, a source, a coding or a theme.

Each memo has an author and creation/update times.  Memos on CMOCs, theories
and participants use the same table (``target_type`` cmoc, theory, participant).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..sources import resolve_source
from ..store import Project, now, stable_guid
from ..identity import current_user
from ._common import code_labels, dump_yaml, resolve_code

TARGETS = ("project", "code", "source", "coding", "theme", "cmoc", "theory", "participant", "excerpt")
COLUMNS = ["id", "on", "target", "title", "text", "author", "created_at", "updated_at", "in_report"]


def _resolve_target(conn: Connection, on: str, target) -> int | None:
    if on not in TARGETS:
        raise SpRealistError(f"memo target {on!r} is not one of {', '.join(TARGETS)}.")
    if on == "project":
        if target not in (None, ""):
            raise SpRealistError("A project memo has no target; leave out the target.")
        return None
    if target in (None, ""):
        raise SpRealistError(f"A memo on a {on} needs the {on} it is about (name, key or id).")
    if on == "code":
        return resolve_code(conn, target)["id"]
    if on == "source":
        return resolve_source(conn, target)["id"]
    if on == "theme":
        from .themes import resolve_theme

        return resolve_theme(conn, target)["id"]
    table, col = {"coding": (S.codings, S.codings.c.id), "cmoc": (S.cmocs, S.cmocs.c.key),
                  "theory": (S.theories, S.theories.c.key), "participant": (S.participants, S.participants.c.code),
                  "excerpt": (S.excerpts, S.excerpts.c.id)}[on]
    by_id = on in ("coding", "excerpt")
    if by_id:
        from ..numbers import fits

        see = "see 'sp-realist code list'" if on == "coding" else "see 'sp-realist appraise queue'"
        try:
            value = int(target)
        except (TypeError, ValueError):
            raise SpRealistError(f"{on} {target!r}: give the {on}'s id ({see}).") from None
        if not fits(value):
            raise NotFoundError(f"No {on} {target!r} in the project; check the id ({see}).")
    else:
        value = " ".join(str(target).split())
    row = conn.execute(select(table.c.id).where(col == value)).first()
    if row is None:
        otherwise = f"check the {'id' if by_id else 'name'}."
        hint = otherwise if by_id else did_you_mean(value, [r[0] for r in conn.execute(select(col))], otherwise)
        raise NotFoundError(f"No {on} {target!r} in the project; {hint}")
    return row[0]


def insert_memo(conn: Connection, *, target_type: str, target_id: int | None, text: str, author: str,
                title: str | None = None, guid: str | None = None, created_at: str | None = None,
                updated_at: str | None = None, in_report: bool = False) -> int:
    """Insert one memo row inside the caller's transaction (the one writer of ``memos`` rows); the target
    must already be resolved.  Times default to now; the GUID to a stable one from the memo's content."""
    if target_type not in TARGETS:
        raise SpRealistError(f"memo target {target_type!r}: not one of {', '.join(TARGETS)}; "
                             "attach the memo to one of those.")
    ts = created_at or now()
    return conn.execute(insert(S.memos).values(
        target_type=target_type, target_id=target_id, title=title, text=text, author=author,
        guid=guid or stable_guid("memo", target_type, target_id, ts, text), created_at=ts,
        updated_at=updated_at or ts, in_report=_marked(target_type, in_report))).inserted_primary_key[0]


def _marked(target_type: str, in_report: bool | None) -> bool | None:
    """``in_report`` as stored: True, or NULL; only a memo on a theory can be marked for the report."""
    if not in_report:
        return None
    if target_type != "theory":
        raise SpRealistError("Only a memo on a theory can be marked for the report (it appears in that theory's "
                             "section); attach it with --theory KEY.")
    return True


def add_memo(project: Project, text: str, on: str = "project", target=None, title: str | None = None,
             author: str | None = None, in_report: bool = False) -> int:
    """Write a memo on the project or on a code, source, coding (id), theme, CMOC, theory or participant;
    ``in_report`` marks a memo on a theory for the report (shown in the theory's section)."""
    if not text or not str(text).strip():
        raise SpRealistError("A memo needs some text.")
    author = current_user(author, project=project)
    with project.begin() as conn:
        tid = _resolve_target(conn, on, target)
        ts = now()
        mid = insert_memo(conn, target_type=on, target_id=tid, text=str(text).strip(), author=author, title=title,
                          guid=stable_guid("memo", on, tid, ts, text), created_at=ts, in_report=in_report)
        project.log(conn, "memo.add", f"{on}:{target}" if target else on, actor=author, memo=mid)
    return mid


def edit_memo(project: Project, memo_id: int, text: str | None = None, title: str | None = None,
              in_report: bool | None = None) -> None:
    """Change a memo's text or title, or mark it for the report or not (its update time is set)."""
    with project.begin() as conn:
        row = conn.execute(select(S.memos).where(S.memos.c.id == memo_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"No memo {memo_id}; see 'sp-realist memo list'.")
        values = {k: v for k, v in (("text", text), ("title", title)) if v is not None}
        if in_report is not None:
            values["in_report"] = _marked(row["target_type"], in_report)
        if not values:
            raise SpRealistError(f"memo {memo_id}: nothing to change; give the new text or title.")
        done = conn.execute(update(S.memos).where(S.memos.c.id == memo_id).values(updated_at=now(), **values))
        if done.rowcount == 0:  # a server's row-level security: a coder changes only their own memos
            raise SpRealistError(f"memo {memo_id} is {row['author']!r}'s, and changing another person's memo needs "
                                 "the analyst role.")
        project.log(conn, "memo.edit", str(memo_id), before={k: row[k] for k in values})


def delete_memo(project: Project, memo_id: int) -> dict:
    """Delete one memo (the interactive reader's undo of a memo just written); returns what it held."""
    from sqlalchemy import delete

    with project.begin() as conn:
        row = conn.execute(select(S.memos).where(S.memos.c.id == memo_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"No memo {memo_id}; see 'sp-realist memo list'.")
        if conn.execute(delete(S.memos).where(S.memos.c.id == memo_id)).rowcount == 0:  # row-level security
            raise SpRealistError(f"memo {memo_id} is {row['author']!r}'s, and removing another person's memo needs "
                                 "the analyst role.")
        project.log(conn, "memo.delete", str(memo_id), on=row["target_type"], target_id=row["target_id"])
    return dict(row)


def report_memos(conn: Connection) -> dict[int, list[dict]]:
    """Memos marked for the report, by theory id: ``{theory id: [{title, text, author}, ...]}``, oldest first."""
    m = S.memos
    out: dict[int, list[dict]] = {}
    for r in conn.execute(select(m.c.target_id, m.c.title, m.c.text, m.c.author)
                          .where(m.c.target_type == "theory", m.c.in_report.is_(True))
                          .order_by(m.c.created_at, m.c.id)).mappings():
        out.setdefault(r["target_id"], []).append({"title": r["title"], "text": r["text"], "author": r["author"]})
    return out


def _labels(conn: Connection) -> dict[str, dict[int, str]]:
    c = S.codings
    code_label = code_labels(conn)
    codings = {cid: f"{code_label[code]} @ {src} {a}:{b}" for cid, code, src, a, b in conn.execute(
        select(c.c.id, S.codes.c.id, S.sources.c.name, c.c.start, c.c.end)
        .select_from(c.join(S.codes, c.c.code_id == S.codes.c.id).join(S.sources, c.c.source_id == S.sources.c.id))
        .where(c.c.id.in_(select(S.memos.c.target_id).where(S.memos.c.target_type == "coding"))))}
    return {
        "code": code_label,
        "source": dict(conn.execute(select(S.sources.c.id, S.sources.c.name)).all()),
        "theme": dict(conn.execute(select(S.themes.c.id, S.themes.c.name)).all()),
        "cmoc": dict(conn.execute(select(S.cmocs.c.id, S.cmocs.c.key)).all()),
        "theory": dict(conn.execute(select(S.theories.c.id, S.theories.c.key)).all()),
        "participant": dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all()),
        "coding": codings,
        "excerpt": {xid: f"{src} {a}:{b}" for xid, src, a, b in conn.execute(
            select(S.excerpts.c.id, S.sources.c.name, S.excerpts.c.start, S.excerpts.c.end)
            .select_from(S.excerpts.join(S.sources, S.excerpts.c.source_id == S.sources.c.id))
            .where(S.excerpts.c.id.in_(select(S.memos.c.target_id).where(S.memos.c.target_type == "excerpt"))))},
    }


def memo_records(project: Project, on: str | None = None, target=None, author: str | None = None) -> list[dict]:
    """Memos as a list of dicts (oldest first), filtered like :func:`list_memos`."""
    m = S.memos
    with project.connect() as conn:
        q = select(m).order_by(m.c.created_at, m.c.id)
        if on:
            if on not in TARGETS:
                raise SpRealistError(f"memo target {on!r} is not one of {', '.join(TARGETS)}.")
            q = q.where(m.c.target_type == on)
            if target not in (None, ""):
                q = q.where(m.c.target_id == _resolve_target(conn, on, target))
        if author:
            q = q.where(m.c.author == author)
        rows = conn.execute(q).mappings().all()
        labels = _labels(conn)
    return [{
        "id": r["id"], "on": r["target_type"],
        "target": None if r["target_id"] is None else labels.get(r["target_type"], {}).get(r["target_id"], str(r["target_id"])),
        "title": r["title"], "text": r["text"], "author": r["author"],
        "created_at": r["created_at"], "updated_at": r["updated_at"], "in_report": bool(r["in_report"])}
        for r in rows]


def list_memos(project: Project, on: str | None = None, target=None, author: str | None = None) -> pd.DataFrame:
    """Memos, oldest first, optionally only those on one kind of target, one target, or by one author."""
    return pd.DataFrame(memo_records(project, on, target, author), columns=COLUMNS)


def export_memos(project: Project, path: str | os.PathLike | None = None, fmt: str = "md", **filters) -> str:
    """All (or filtered) memos as a Markdown document or YAML; written to ``path`` if given."""
    records = memo_records(project, **filters)
    if fmt == "yaml":
        text = dump_yaml({"memos": [{k: v for k, v in r.items() if v not in (None, False) and k != "id"}
                                    for r in records]})
    elif fmt == "md":
        lines = ["# Memos", ""]
        for r in records:
            head = r["title"] or (f"{r['on']}: {r['target']}" if r["target"] else "Project")
            lines += [f"## {head}", "", f"*{r['author']}, {r['created_at']}"
                      + (f" (on {r['on']} {r['target']})" if r["target"] and r["title"] else "") + "*", "",
                      r["text"].strip(), ""]
        text = "\n".join(lines).rstrip() + "\n"
    else:
        raise SpRealistError(f"memo export format {fmt!r} is not md or yaml.")
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text

"""Theory files (``theories.yaml``): the programme theory kept in git.

>>> import_theories_yaml(project, "theories.yaml")      # doctest: +SKIP
>>> export_theories_yaml(project, "theories.yaml")      # doctest: +SKIP

Import is a merge: theories and CMOCs in the file are created, or updated
when their key already exists (each update is recorded in the theory's
history); nothing in the project that the file does not mention is deleted.
The whole file is validated and written in one transaction, so an error
leaves the project unchanged.  Export writes every theory, CMOC, relation and
history entry, so ``export -> import`` into an empty project and export again
gives the same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError
from ..store import Project
from ..yamlio import load_yaml_file, write_exported_text
from ._common import CMOC_TEXT_FIELDS, COMPONENT_ALIASES, RELATION_KINDS, loads_list, text_items
from .cmocs import EDITABLE, add_cmoc_conn, cmoc_rows, edit_cmoc_conn, relate_conn
from .theories import add_member_conn, add_theory_conn, record_change_conn, theory_members, theory_rows

THEORY_FIELDS = ("key", "title", "description", "questions", "history", "cmocs")
CMOC_FIELDS = ("key",) + EDITABLE + ("mechanism",)
HISTORY_FIELDS = ("at", "author", "change", "reason", "evidence")


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    return load_yaml_file(path, what)


def _cmoc_fields(spec: dict, where: str) -> dict:
    unknown = sorted(set(spec) - set(CMOC_FIELDS))
    if unknown:
        raise SpRealistError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(CMOC_FIELDS)}.")
    fields = {k: spec[k] for k in EDITABLE if k in spec}
    if "mechanism" in spec:  # the report's single "Mechanism (Behaviour)" column
        target = COMPONENT_ALIASES["mechanism"]
        if target in spec:
            raise SpRealistError(f"{where}: give 'mechanism' or '{target}', not both.")
        fields[target] = spec["mechanism"]
    return fields


def _validate(doc: Any, path: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Check the file's structure; return (theories, loose cmocs, relations)."""
    if doc is None:
        raise SpRealistError(f"{path}: the file is empty; see docs/realist.md for the format.")
    if not isinstance(doc, dict):
        raise SpRealistError(f"{path}: expected a mapping with 'theories' (and optionally 'cmocs', 'relations').")
    unknown = sorted(set(doc) - {"theories", "cmocs", "relations"})
    if unknown:
        raise SpRealistError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; use theories, cmocs, relations.")
    theories = doc.get("theories") or []
    loose = doc.get("cmocs") or []
    relations = doc.get("relations") or []
    for name, value in (("theories", theories), ("cmocs", loose), ("relations", relations)):
        if not isinstance(value, list):
            raise SpRealistError(f"{path}: '{name}' must be a list.")
    seen_t: set[str] = set()
    defined: set[str] = set()
    for i, t in enumerate(theories):
        where = f"{path}: theory {i + 1}"
        if not isinstance(t, dict):
            raise SpRealistError(f"{where}: must be a mapping with key and title.")
        bad = sorted(set(t) - set(THEORY_FIELDS))
        if bad:
            raise SpRealistError(f"{where}: unknown field(s) {', '.join(bad)}; allowed: {', '.join(THEORY_FIELDS)}.")
        if not t.get("key") or not t.get("title"):
            raise SpRealistError(f"{where}: every theory needs a key and a title.")
        key = str(t["key"])
        if key in seen_t:
            raise SpRealistError(f"{path}: theory {key} is defined twice.")
        seen_t.add(key)
        for j, h in enumerate(t.get("history") or []):
            if not isinstance(h, dict) or not h.get("change"):
                raise SpRealistError(f"{path}: theory {key} history entry {j + 1} needs a 'change'.")
            bad = sorted(set(h) - set(HISTORY_FIELDS))
            if bad:
                raise SpRealistError(f"{path}: theory {key} history entry {j + 1}: unknown field(s) {', '.join(bad)}.")
        for j, c in enumerate(t.get("cmocs") or []):
            if isinstance(c, dict):
                if not c.get("key"):
                    raise SpRealistError(f"{path}: theory {key} CMOC {j + 1} needs a key.")
                ck = str(c["key"])
                if ck in defined:
                    raise SpRealistError(f"{path}: CMOC {ck} is defined twice; list it by key only the second time.")
                defined.add(ck)
                _cmoc_fields(c, f"{path}: CMOC {ck}")
            elif not isinstance(c, (str, int, float)):
                raise SpRealistError(f"{path}: theory {key} CMOC {j + 1} must be a mapping or a CMOC key.")
    for j, c in enumerate(loose):
        if not isinstance(c, dict) or not c.get("key"):
            raise SpRealistError(f"{path}: cmocs entry {j + 1} must be a mapping with a key.")
        ck = str(c["key"])
        if ck in defined:
            raise SpRealistError(f"{path}: CMOC {ck} is defined twice.")
        defined.add(ck)
        _cmoc_fields(c, f"{path}: CMOC {ck}")
    for j, r in enumerate(relations):
        if not isinstance(r, dict) or not r.get("from") or not r.get("to") or not r.get("kind"):
            raise SpRealistError(f"{path}: relation {j + 1} needs from, to and kind ({', '.join(RELATION_KINDS)}).")
    return theories, loose, relations


def import_theories_conn(conn: Connection, path: str | os.PathLike, actor: str | None = None) -> dict:
    path = Path(path)
    theories, loose, relations = _validate(read_yaml(path, "theory"), path)
    counts = {"theories_created": 0, "theories_updated": 0, "cmocs_created": 0, "cmocs_updated": 0,
              "relations": 0, "history": 0}
    source_note = f"Updated from {path.name}"

    def upsert_cmoc(spec: dict, theory_key: str | None) -> None:
        key = str(spec["key"])
        where = f"{path}: CMOC {key}"
        fields = _cmoc_fields(spec, where)
        exists = conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == key)).first()
        if exists is None:
            add_cmoc_conn(conn, key, where=where, **fields)
            counts["cmocs_created"] += 1
        else:
            changed = edit_cmoc_conn(conn, key, actor=actor, **fields)
            if changed:
                counts["cmocs_updated"] += 1
                summary = ", ".join(sorted(changed))
                theory_keys = {theory_key} if theory_key else set()
                theory_keys |= set(conn.execute(
                    select(S.theories.c.key).select_from(
                        S.theory_cmocs.join(S.theories, S.theories.c.id == S.theory_cmocs.c.theory_id))
                    .where(S.theory_cmocs.c.cmoc_id == exists[0])).scalars())
                for tk in sorted(t for t in theory_keys if t and conn.execute(
                        select(S.theories.c.id).where(S.theories.c.key == t)).first()):
                    record_change_conn(conn, tk, f"Refined {key} ({summary})", reason=source_note, author=actor)
                    counts["history"] += 1

    existed: dict[str, bool] = {}
    for t in theories:
        key = str(t["key"])
        where = f"{path}: theory {key}"
        existing = conn.execute(select(S.theories).where(S.theories.c.key == key)).mappings().first()
        if existing is None:
            add_theory_conn(conn, key, t["title"], description=t.get("description"), questions=t.get("questions"),
                            where=where)
            counts["theories_created"] += 1
        else:
            from .theories import _questions

            new = {"title": str(t["title"]).strip(),
                   "description": (str(t["description"]).strip() or None) if t.get("description") else None,
                   "questions": _questions(t.get("questions"), where)}
            changed = [k for k, v in new.items() if existing[k] != v]
            if changed:
                from sqlalchemy import update

                from ..store import now

                conn.execute(update(S.theories).where(S.theories.c.id == existing["id"])
                             .values(updated_at=now(), **{k: new[k] for k in changed}))
                record_change_conn(conn, key, f"Edited: {', '.join(changed)} changed", reason=source_note,
                                   author=actor)
                counts["theories_updated"] += 1
                counts["history"] += 1
        tid = conn.execute(select(S.theories.c.id).where(S.theories.c.key == key)).scalar_one()
        for h in t.get("history") or []:
            at = str(h["at"]) if h.get("at") is not None else None
            dup = at is not None and conn.execute(select(S.theory_history.c.id).where(and_(
                S.theory_history.c.theory_id == tid, S.theory_history.c.at == at,
                S.theory_history.c.change == str(h["change"]).strip()))).first()
            if not dup:
                record_change_conn(conn, key, h["change"], reason=h.get("reason"), evidence=h.get("evidence"),
                                   author=h.get("author"), at=at)
                counts["history"] += 1
        existed[key] = existing is not None
    # CMOCs first (a theory may list by key a CMOC defined further down), then membership.
    for t in theories:
        for c in t.get("cmocs") or []:
            if isinstance(c, dict):
                upsert_cmoc(c, str(t["key"]))
    for c in loose:
        upsert_cmoc(c, None)
    for t in theories:
        key = str(t["key"])
        for c in t.get("cmocs") or []:
            ck = str(c["key"]) if isinstance(c, dict) else str(c)
            if conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == ck)).first() is None:
                raise NotFoundError(f"{path}: theory {key} lists CMOC {ck}, which is neither defined in the file "
                                    "nor in the project; define it or correct the key.")
            if add_member_conn(conn, key, ck, actor=actor, record=existed[key], reason=source_note):
                counts["history"] += existed[key]
    for j, r in enumerate(relations):
        for end in ("from", "to"):
            if conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == str(r[end]))).first() is None:
                raise NotFoundError(f"{path}: relation {j + 1} names CMOC {r[end]}, which is neither defined in the "
                                    "file nor in the project; correct the key.")
        relate_conn(conn, str(r["from"]), str(r["to"]), r["kind"], r.get("note"), where=f"{path}: relation {j + 1}")
        counts["relations"] += 1
    return counts


def import_theories_yaml(project: Project, path: str | os.PathLike, actor: str | None = None) -> dict:
    """Merge a theory file into the project; return counts of what was created and updated."""
    with project.begin() as conn:
        counts = import_theories_conn(conn, path, actor=actor)
        project.log(conn, "theory.import", str(path), actor=actor, **counts)
    return counts


# -- export ----------------------------------------------------------------
def excerpt_ref(conn: Connection, excerpt_id: int) -> dict:
    """A portable reference to an excerpt: its quote when unique in the source, else its span."""
    row = conn.execute(
        select(S.excerpts.c.start, S.excerpts.c.end, S.sources.c.name, S.sources.c.text)
        .select_from(S.excerpts.join(S.sources, S.sources.c.id == S.excerpts.c.source_id))
        .where(S.excerpts.c.id == excerpt_id)).first()
    if row is None:
        return {"excerpt": excerpt_id}
    start, end, name, text = row
    quote = text[start:end]
    if quote.strip() == quote and text.count(quote) == 1:
        return {"source": name, "quote": quote}
    return {"source": name, "span": [start, end]}


def _cell(value: str | None) -> Any:
    items = text_items(value)
    if len(items) > 1:
        return items
    return items[0] if items else None


def cmoc_to_dict(row: dict) -> dict:
    out: dict[str, Any] = {"key": row["key"]}
    for f in CMOC_TEXT_FIELDS:
        if row[f]:
            out[f] = _cell(row[f])
    out["status"] = row["status"]
    for f in ("confidence", "memo", "ifthen"):
        if row[f]:
            out[f] = row[f]
    return out


def theories_document(conn: Connection) -> dict:
    """The project's programme theory as a theory-file document (a dict)."""
    by_key = {r["key"]: r for r in cmoc_rows(conn)}
    emitted: set[str] = set()
    theories_out = []
    for t in theory_rows(conn):
        entry: dict[str, Any] = {"key": t["key"], "title": t["title"]}
        if t["description"]:
            entry["description"] = t["description"]
        qs = loads_list(t["questions"])
        if qs:
            entry["questions"] = qs
        hist = conn.execute(select(S.theory_history).where(S.theory_history.c.theory_id == t["id"])
                            .order_by(S.theory_history.c.at, S.theory_history.c.id)).mappings().all()
        if hist:
            entry["history"] = []
            for h in hist:
                he: dict[str, Any] = {"at": h["at"], "change": h["change"]}
                if h["author"]:
                    he["author"] = h["author"]
                if h["reason"]:
                    he["reason"] = h["reason"]
                ev = loads_list(h["evidence"])
                if ev:
                    he["evidence"] = [excerpt_ref(conn, e) for e in ev]
                entry["history"].append(he)
        members = theory_members(conn, t["id"])
        if members:
            entry["cmocs"] = []
            for ck in members:
                if ck in emitted:
                    entry["cmocs"].append(ck)
                else:
                    entry["cmocs"].append(cmoc_to_dict(by_key[ck]))
                    emitted.add(ck)
        theories_out.append(entry)
    doc: dict[str, Any] = {"theories": theories_out}
    loose = [cmoc_to_dict(r) for k, r in by_key.items() if k not in emitted]
    if loose:
        doc["cmocs"] = loose
    a, b = S.cmocs.alias("a"), S.cmocs.alias("b")
    rel = S.cmoc_relations
    rels = conn.execute(
        select(a.c.key, b.c.key, rel.c.kind, rel.c.note)
        .select_from(rel.join(a, a.c.id == rel.c.from_id).join(b, b.c.id == rel.c.to_id))
        .order_by(a.c.ord, b.c.ord, rel.c.kind)).all()
    if rels:
        doc["relations"] = [{"from": f, "to": t, "kind": k, **({"note": n} if n else {})} for f, t, k, n in rels]
    return doc


def dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def export_theories_yaml(project: Project, path: str | os.PathLike | None = None) -> str:
    """Write the programme theory to ``path`` (if given) and return the YAML text."""
    with project.connect() as conn:
        text = dump_yaml(theories_document(conn))
    return write_exported_text(text, path)

"""The hierarchical codebook: codes with definitions, criteria, examples and colours.

Library functions take a :class:`~sp_realist.store.Project`, validate first and
write in one transaction.  Renaming, moving and merging codes never loses a
coding: codings point at the code's id, and a merge re-points them.

>>> from sp_realist.coding import codebook
>>> codebook.add_code(project, "Referral process", definition="How clients reach the link worker.")  # doctest: +SKIP
>>> codebook.codebook_tree(project)                                                                    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project, next_ordinal, now, stable_guid
from ._common import (PHASES, CodeTree, clean_name, code_rows, descendants, dump_yaml, escape_name, read_yaml,
                      resolve_code, split_path)

FIELDS = ("definition", "inclusion", "exclusion", "example", "colour")
CSV_COLUMNS = ("name", "parent") + FIELDS
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def _check_colour(colour: Any, where: str) -> str | None:
    if colour is None or str(colour).strip() == "":
        return None
    colour = str(colour).strip()
    if not _COLOUR.match(colour):
        raise SpRealistError(f"{where}: colour {colour!r} is not a hex colour like \"#1f77b4\"; fix it.")
    return colour.lower()


def _clean_fields(fields: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in FIELDS:
            raise SpRealistError(f"{where}: unknown field {key!r}; use one of {', '.join(FIELDS)}.")
        if key == "colour":
            out[key] = _check_colour(value, where)
        else:
            out[key] = None if value is None or str(value).strip() == "" else str(value).strip()
    return out


def _next_ord(conn: Connection, parent_id: int | None) -> int:
    cond = S.codes.c.parent_id.is_(None) if parent_id is None else S.codes.c.parent_id == parent_id
    return next_ordinal(conn, S.codes.c.ord, cond, start=0)


def insert_code(conn: Connection, name: str, parent_id: int | None, fields: dict, ord_: int | None = None, *,
                guid: str | None = None, codable: bool | None = None) -> int:
    """Insert one code inside the caller's transaction (the one writer of new ``codes`` rows; the caller
    has checked the name and fields).  ``guid`` and ``codable`` keep what an imported code had."""
    return conn.execute(insert(S.codes).values(
        name=name, parent_id=parent_id, ord=_next_ord(conn, parent_id) if ord_ is None else ord_,
        guid=guid or new_code_guid(conn, name, parent_id), created_at=now(), codable=codable, **fields,
    )).inserted_primary_key[0]


def new_code_guid(conn: Connection, name: str, parent_id: int | None) -> str:
    """A new code's stable GUID: from its name, as always; from its path when another code already has that
    GUID (the same name elsewhere in the tree), so GUIDs stay unique and exports stay stable."""
    guid = stable_guid("code", name)
    if conn.execute(select(S.codes.c.id).where(S.codes.c.guid == guid)).first() is None:
        return guid
    parent = CodeTree.read(conn).path(parent_id) + "/" if parent_id is not None else ""
    return stable_guid("code", parent + escape_name(name))


_insert_code = insert_code


def _coding_count(conn: Connection, code_ids: list[int]) -> int:
    if not code_ids:
        return 0
    return conn.execute(select(func.count()).select_from(S.codings).where(S.codings.c.code_id.in_(code_ids))).scalar_one()


# --- single-code operations -------------------------------------------------
def add_code(project: Project, name: str, parent: str | None = None, **fields) -> int:
    """Add a code (under ``parent`` if given); return its id."""
    name = clean_name(name)
    fields = _clean_fields(fields, f"code {name!r}")
    with project.begin() as conn:
        tree = CodeTree.read(conn)
        parent_id = tree.resolve(parent)["id"] if parent else None
        clash = tree.clash(parent_id, name)
        if clash:
            raise SpRealistError(clash)
        cid = _insert_code(conn, name, parent_id, fields)
        project.log(conn, "code.add", name, parent=parent, **fields)
    return cid


def edit_code(project: Project, name: str, **fields) -> dict:
    """Change a code's definition, inclusion, exclusion, example or colour.

    Only the fields given (not None) change; pass ``""`` to clear one.
    """
    fields = {k: v for k, v in fields.items() if v is not None}
    with project.begin() as conn:
        row = resolve_code(conn, name)
        fields = _clean_fields(fields, f"code {row['name']!r}")
        if not fields:
            raise SpRealistError(f"code {row['name']!r}: nothing to change; give --definition, --colour ...")
        conn.execute(update(S.codes).where(S.codes.c.id == row["id"]).values(**fields))
        project.log(conn, "code.edit", row["name"], before={k: row[k] for k in fields}, after=fields)
        return dict(resolve_code(conn, row["id"]))


def move_code(project: Project, name: str, parent: str | None) -> None:
    """Move a code (with its children and codings) under ``parent`` (None: top level)."""
    with project.begin() as conn:
        tree = CodeTree.read(conn)
        row = tree.resolve(name)
        parent_id = None
        if parent:
            prow = tree.resolve(parent)
            if prow["id"] == row["id"] or prow["id"] in descendants(conn, row["id"]):
                raise SpRealistError(
                    f"code {tree.label(row['id'])!r}: cannot move it under {tree.label(prow['id'])!r}, "
                    "which is itself or inside it.")
            parent_id = prow["id"]
        if parent_id == row["parent_id"]:
            return
        clash = tree.clash(parent_id, row["name"], but=row["id"])
        if clash:
            raise SpRealistError(clash)
        conn.execute(update(S.codes).where(S.codes.c.id == row["id"]).values(
            parent_id=parent_id, ord=_next_ord(conn, parent_id)))
        project.log(conn, "code.move", row["name"], parent=parent)


def rename_code(project: Project, name: str, new_name: str) -> None:
    """Rename a code; its codings, rules, memos and themes follow (they point at its id)."""
    new_name = clean_name(new_name)
    with project.begin() as conn:
        tree = CodeTree.read(conn)
        row = tree.resolve(name)
        if new_name == row["name"]:
            return
        if tree.sibling(row["parent_id"], new_name, but=row["id"]) is not None:
            raise SpRealistError(tree.clash(row["parent_id"], new_name, but=row["id"]).replace(
                "choose another name or parent.", "choose another name, or use 'codebook merge' to combine the two codes."))
        conn.execute(update(S.codes).where(S.codes.c.id == row["id"]).values(name=new_name))
        project.log(conn, "code.rename", row["name"], new_name=new_name)


def merge_codes(project: Project, sources: list[str] | str, target: str) -> dict:
    """Merge ``sources`` into ``target``: every coding, child, rule, memo and theme link moves.

    A coding that would duplicate one the target already has (same source,
    span and coder) is not copied twice; its memo is appended to the target
    coding's memo, and memos written on it move to that coding.  Returns
    counts of what moved.
    """
    if isinstance(sources, str):
        sources = [sources]
    moved = {"codings": 0, "duplicates": 0, "children": 0, "rules": 0, "memos": 0, "themes": 0}
    with project.begin() as conn:
        trow = resolve_code(conn, target)
        srows = []
        for ref in sources:
            srow = resolve_code(conn, ref)
            if srow["id"] == trow["id"]:
                raise SpRealistError(f"code {srow['name']!r}: cannot merge a code into itself.")
            if trow["id"] in descendants(conn, srow["id"]):
                raise SpRealistError(
                    f"code {trow['name']!r}: is inside {srow['name']!r}; move it out first or merge the other way.")
            srows.append(srow)
        tree = CodeTree.read(conn)
        taken = {r["name"] for r in tree.rows.values() if r["parent_id"] == trow["id"]}
        for srow in srows:
            for child in (r for r in tree.rows.values() if r["parent_id"] == srow["id"]):
                if child["name"] in taken:
                    raise SpRealistError(
                        f"code {tree.path(child['id'])!r}: {tree.label(trow['id'])!r} already has a child named "
                        f"{child['name']!r}; merge or rename one of the two first.")
                taken.add(child["name"])
        c = S.codings
        for srow in srows:
            existing = {(r.source_id, r.start, r.end, r.coder): (r.id, r.memo) for r in conn.execute(
                select(c.c.id, c.c.source_id, c.c.start, c.c.end, c.c.coder, c.c.memo).where(c.c.code_id == trow["id"]))}
            for r in conn.execute(select(c).where(c.c.code_id == srow["id"])).mappings().all():
                key = (r["source_id"], r["start"], r["end"], r["coder"])
                if key in existing:
                    tid, tmemo = existing[key]
                    if r["memo"] and r["memo"] != tmemo:  # keep both notes, never drop one
                        merged = f"{tmemo}\n\n{r['memo']}" if tmemo else r["memo"]
                        conn.execute(update(c).where(c.c.id == tid).values(memo=merged))
                        existing[key] = (tid, merged)
                    conn.execute(update(S.memos).where(and_(S.memos.c.target_type == "coding",
                                                            S.memos.c.target_id == r["id"])).values(target_id=tid))
                    conn.execute(delete(c).where(c.c.id == r["id"]))
                    moved["duplicates"] += 1
                else:
                    conn.execute(update(c).where(c.c.id == r["id"]).values(code_id=trow["id"]))
                    existing[key] = (r["id"], r["memo"])
                    moved["codings"] += 1
            res = conn.execute(update(S.codes).where(S.codes.c.parent_id == srow["id"]).values(parent_id=trow["id"]))
            moved["children"] += res.rowcount
            res = conn.execute(update(S.code_rules).where(S.code_rules.c.code_id == srow["id"]).values(code_id=trow["id"]))
            moved["rules"] += res.rowcount
            res = conn.execute(update(S.memos).where(and_(S.memos.c.target_type == "code",
                                                          S.memos.c.target_id == srow["id"])).values(target_id=trow["id"]))
            moved["memos"] += res.rowcount
            tc = S.theme_codes
            target_themes = {t for (t,) in conn.execute(select(tc.c.theme_id).where(tc.c.code_id == trow["id"]))}
            for (theme_id,) in conn.execute(select(tc.c.theme_id).where(tc.c.code_id == srow["id"])).all():
                if theme_id not in target_themes:
                    conn.execute(insert(tc).values(theme_id=theme_id, code_id=trow["id"]))
                    target_themes.add(theme_id)
                    moved["themes"] += 1
            conn.execute(delete(tc).where(tc.c.code_id == srow["id"]))
            conn.execute(delete(S.codes).where(S.codes.c.id == srow["id"]))
            project.log(conn, "code.merge", srow["name"], into=trow["name"])
    return moved


def delete_code(project: Project, name: str, force: bool = False) -> dict:
    """Delete a code.  Refuses while it (or a child) has codings or children, unless ``force``.

    With ``force`` the code, all its descendants and their codings, rules and
    memos are deleted.  Returns counts.
    """
    with project.begin() as conn:
        row = resolve_code(conn, name)
        sub = descendants(conn, row["id"])
        ids = [row["id"]] + sub
        n = _coding_count(conn, ids)
        if not force and (n or sub):
            what = []
            if n:
                what.append(f"{n} coding{'s' if n != 1 else ''}")
            if sub:
                what.append(f"{len(sub)} child code{'s' if len(sub) != 1 else ''}")
            raise SpRealistError(
                f"code {row['name']!r}: has {' and '.join(what)}; merge it into another code, "
                "or delete with --force to remove them too.")
        coding_ids = select(S.codings.c.id).where(S.codings.c.code_id.in_(ids))
        conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "coding", S.memos.c.target_id.in_(coding_ids))))
        conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "code", S.memos.c.target_id.in_(ids))))
        conn.execute(delete(S.codings).where(S.codings.c.code_id.in_(ids)))
        conn.execute(delete(S.code_rules).where(S.code_rules.c.code_id.in_(ids)))
        conn.execute(delete(S.theme_codes).where(S.theme_codes.c.code_id.in_(ids)))
        for cid in reversed(ids):  # children before parents (parent_id is RESTRICT)
            conn.execute(delete(S.codes).where(S.codes.c.id == cid))
        project.log(conn, "code.delete", row["name"], codes=len(ids), codings=n, force=force)
    return {"codes": len(ids), "codings": n}


# --- the tree --------------------------------------------------------------
def _tree_order(rows: list[dict]) -> list[tuple[dict, int, str]]:
    children: dict[int | None, list[dict]] = {}
    for r in rows:
        children.setdefault(r["parent_id"], []).append(r)
    out: list[tuple[dict, int, str]] = []

    def walk(pid, depth, prefix):
        for r in children.get(pid, []):
            path = f"{prefix}/{r['name']}" if prefix else r["name"]
            out.append((r, depth, path))
            walk(r["id"], depth + 1, path)

    walk(None, 0, "")
    return out


def codebook_tree(project: Project) -> pd.DataFrame:
    """One row per code in tree order: name, parent, depth, path, codings, rules, definition ..."""
    with project.connect() as conn:
        rows = code_rows(conn)
        counts = dict(conn.execute(select(S.codings.c.code_id, func.count()).group_by(S.codings.c.code_id)).all())
        rules = dict(conn.execute(select(S.code_rules.c.code_id, func.count()).group_by(S.code_rules.c.code_id)).all())
    tree = CodeTree(rows)
    records = []
    for r, depth, _path in _tree_order(rows):
        records.append({
            "id": r["id"], "name": r["name"], "depth": depth, "path": tree.path(r["id"]),
            "parent": tree.label(r["parent_id"]) if r["parent_id"] is not None else None,
            "codings": counts.get(r["id"], 0), "rules": rules.get(r["id"], 0),
            **{k: r[k] for k in FIELDS},
        })
    return pd.DataFrame(records, columns=["id", "name", "parent", "depth", "path", "codings", "rules", *FIELDS])


# --- import / export ----------------------------------------------------------
def _flatten_yaml_codes(items: Any, parent: tuple[str, ...] | None, where: str, out: list[dict]) -> None:
    """Entries in file order, each with its ``steps`` (the names from the top of the file's tree to it)."""
    if items is None:
        return
    if not isinstance(items, list):
        raise SpRealistError(f"{where}: 'codes'/'children' must be a list of codes.")
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            where_ = "/".join(escape_name(n) for n in parent) if parent else "the top level"
            raise SpRealistError(f"{where}: code #{i + 1} under {where_} is not a mapping.")
        name = clean_name(item.get("name"))
        steps = (parent or ()) + (name,)
        here = f"{where}: code {'/'.join(escape_name(n) for n in steps)!r}"
        unknown = set(item) - set(FIELDS) - {"name", "rules", "children", "guid"}
        if unknown:
            raise SpRealistError(f"{here}: unknown key(s) {', '.join(sorted(unknown))}; "
                                 f"use name, {', '.join(FIELDS)}, rules, children.")
        fields = _clean_fields({k: item[k] for k in FIELDS if k in item}, here)
        rules = item.get("rules")
        if rules is not None and not isinstance(rules, list):
            raise SpRealistError(f"{here}: 'rules' must be a list.")
        out.append({"name": name, "steps": steps, "parent": parent, "fields": fields, "rules": rules, "ord": i,
                    "guid": item.get("guid")})
        _flatten_yaml_codes(item.get("children"), steps, where, out)


def _flatten_yaml_themes(items: Any, parent: str | None, where: str, out: list[dict]) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise SpRealistError(f"{where}: 'themes'/'children' must be a list of themes.")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SpRealistError(f"{where}: theme #{i + 1} under {parent or 'the top level'} is not a mapping.")
        name = clean_name(item.get("name"), "theme")
        here = f"{where}: theme {name!r}"
        unknown = set(item) - {"name", "description", "phase", "codes", "children"}
        if unknown:
            raise SpRealistError(f"{here}: unknown key(s) {', '.join(sorted(unknown))}; "
                                 "use name, description, phase, codes, children.")
        phase = item.get("phase")
        if phase is not None and phase not in PHASES:
            raise SpRealistError(f"{here}: phase {phase!r} is not one of {', '.join(PHASES)}.")
        codes = item.get("codes")
        if codes is not None and (not isinstance(codes, list) or not all(isinstance(c, str) for c in codes)):
            raise SpRealistError(f"{here}: 'codes' must be a list of code names.")
        out.append({"name": name, "parent": parent, "description": item.get("description"), "phase": phase,
                    "codes": [" ".join(c.split()) for c in codes] if codes is not None else None, "ord": i,
                    "has_description": "description" in item})
        _flatten_yaml_themes(item.get("children"), name, where, out)


def _inside_itself(parent: dict[str, str | None]) -> str | None:
    """The first name (in ``parent``'s order) whose chain of parents comes back to it or never ends."""
    for name in parent:
        steps, cur = 0, parent[name]
        while cur is not None:
            steps += 1
            if cur == name or steps > len(parent):
                return name
            cur = parent.get(cur)
    return None


def _show(steps: tuple[str, ...]) -> str:
    return "/".join(escape_name(n) for n in steps)


def _apply_codebook(project: Project, conn: Connection, entries: list[dict], themes: list[dict] | None,
                    where: str) -> dict:
    """Validate, then upsert codes, rules and themes.  Existing codes not mentioned are kept.

    Each entry has ``steps``, its path in the file's tree, and ``parent`` (the parent's steps, or None).  An
    entry is the existing code with the same path; else, when its name is the only one of its kind in both the
    file and the codebook, the code of that name (which the file then moves); else a new code."""
    from .autocode import encode_spec, parse_rule  # validation of rule specs (spaCy loaded lazily)

    seen: set[tuple[str, ...]] = set()
    for e in entries:
        if e["steps"] in seen:
            raise SpRealistError(f"{where}: code {_show(e['steps'])!r} appears more than once; names must be "
                                 "unique among the codes under the same parent.")
        seen.add(e["steps"])
    tree = CodeTree.read(conn)
    by_steps = {tree.steps(cid): cid for cid in tree.rows}
    file_names: dict[str, int] = {}
    for e in entries:
        file_names[e["name"]] = file_names.get(e["name"], 0) + 1
    matched: dict[tuple[str, ...], int] = {}
    used: set[int] = set()
    for e in entries:
        cid = by_steps.get(e["steps"])
        if cid is not None:
            matched[e["steps"]] = cid
            used.add(cid)
    for e in entries:
        if e["steps"] in matched or file_names[e["name"]] != 1 or tree.name_count.get(e["name"]) != 1:
            continue
        cid = next(c for c, r in tree.rows.items() if r["name"] == e["name"])
        if cid not in used:
            matched[e["steps"]] = cid
            used.add(cid)
    # Parents: an entry of the file, else a code of the codebook with that path.  Keys: ("id", n) for an
    # existing code, ("new", steps) for a code the file adds.
    def key_of(steps: tuple[str, ...]):
        return ("id", matched[steps]) if steps in matched else ("new", steps)

    final_parent: dict[Any, Any] = {("id", cid): (("id", r["parent_id"]) if r["parent_id"] is not None else None)
                                    for cid, r in tree.rows.items()}
    names: dict[Any, str] = {("id", cid): r["name"] for cid, r in tree.rows.items()}
    for e in entries:
        if e["parent"] is None:
            parent_key = None
        elif e["parent"] in seen:
            parent_key = key_of(e["parent"])
        elif e["parent"] in by_steps:
            parent_key = ("id", by_steps[e["parent"]])
        else:
            raise SpRealistError(f"{where}: code {e['name']!r} names parent {_show(e['parent'])!r}, which is not "
                                 "a code; add it to the file or the codebook first.")
        e["parent_key"] = parent_key
        final_parent[key_of(e["steps"])] = parent_key
        names[key_of(e["steps"])] = e["name"]
    looped = _inside_itself(final_parent)
    if looped is not None:
        raise SpRealistError(f"{where}: code {names[looped]!r} would end up inside itself; fix the parents.")
    siblings: dict[tuple, Any] = {}
    for k, pk in final_parent.items():
        other = siblings.setdefault((pk, names[k]), k)
        if other != k:
            raise SpRealistError(f"{where}: two codes named {names[k]!r} would end up under the same parent; "
                                 "names are unique among siblings, so rename or move one of them.")
    # Rules: validate all before writing anything.
    rule_names: set[str] = set()
    parsed_rules: list[tuple[tuple[str, ...], dict]] = []
    for e in entries:
        for j, spec in enumerate(e["rules"] or []):
            rule = parse_rule(spec, f"{where}: code {_show(e['steps'])!r}, rule #{j + 1}")
            if rule["name"] in rule_names:
                raise SpRealistError(f"{where}: rule {rule['name']!r} appears more than once; rule names must be unique.")
            rule_names.add(rule["name"])
            parsed_rules.append((e["steps"], rule))
    theme_names = set()
    existing_themes = {r["name"]: dict(r) for r in conn.execute(select(S.themes)).mappings()}
    for t in themes or []:
        if t["name"] in theme_names:
            raise SpRealistError(f"{where}: theme {t['name']!r} appears more than once; names must be unique.")
        theme_names.add(t["name"])
    for t in themes or []:
        if t["parent"] is not None and t["parent"] not in theme_names and t["parent"] not in existing_themes:
            raise SpRealistError(f"{where}: theme {t['name']!r} has an unknown parent {t['parent']!r}.")
    theme_ids = {r["id"]: name for name, r in existing_themes.items()}
    theme_parent = {n: theme_ids.get(r["parent_id"]) for n, r in existing_themes.items()}
    theme_parent.update({t["name"]: t["parent"] for t in themes or []})
    looped = _inside_itself(theme_parent)
    if looped is not None:
        raise SpRealistError(f"{where}: theme {looped!r} would end up inside itself; fix the parents.")

    stats = {"codes_added": 0, "codes_updated": 0, "rules": 0, "themes_added": 0, "themes_updated": 0}
    ids: dict[tuple[str, ...], int] = dict(matched)
    # Existing codes first (fields, parents, order), then new ones, each once its parent has an id.
    for e in entries:
        if e["steps"] in matched:
            if e["fields"]:
                conn.execute(update(S.codes).where(S.codes.c.id == ids[e["steps"]]).values(**e["fields"]))
            stats["codes_updated"] += 1

    def parent_id_of(e):
        pk = e["parent_key"]
        return None if pk is None else pk[1] if pk[0] == "id" else ids.get(pk[1])

    pending = [e for e in entries if e["steps"] not in matched]
    for e in entries:
        if e["steps"] in matched and e["parent_key"] is not None and e["parent_key"][0] == "new":
            pending.append(e)  # an existing code moving under a new one: after its parent exists
        elif e["steps"] in matched:
            conn.execute(update(S.codes).where(S.codes.c.id == ids[e["steps"]]).values(
                parent_id=parent_id_of(e), ord=e["ord"]))
    while pending:
        rest = []
        for e in pending:
            pk = e["parent_key"]
            if pk is not None and pk[0] == "new" and pk[1] not in ids:
                rest.append(e)
                continue
            if e["steps"] in ids:
                conn.execute(update(S.codes).where(S.codes.c.id == ids[e["steps"]]).values(
                    parent_id=parent_id_of(e), ord=e["ord"]))
                continue
            ids[e["steps"]] = insert_code(conn, e["name"], parent_id_of(e), e["fields"], e["ord"], guid=e.get("guid"))
            stats["codes_added"] += 1
        if len(rest) == len(pending):  # pragma: no cover - cycles were refused above
            raise SpRealistError(f"{where}: the codes' parents could not be ordered; fix the parents.")
        pending = rest
    for steps, rule in parsed_rules:
        values = {"code_id": ids[steps], "kind": rule["kind"], "spec": encode_spec(rule),
                  "unit": rule["unit"], "lemma": rule["lemma"]}
        if conn.execute(select(S.code_rules.c.id).where(S.code_rules.c.name == rule["name"])).first():
            conn.execute(update(S.code_rules).where(S.code_rules.c.name == rule["name"]).values(**values))
        else:
            conn.execute(insert(S.code_rules).values(name=rule["name"], **values))
        stats["rules"] += 1
    if themes:
        from .themes import _upsert_themes

        final = CodeTree.read(conn)  # theme code references name codes of the codebook as it now is
        code_ids: dict[str, int] = {}
        for t in themes:
            for c in t["codes"] or []:
                try:
                    code_ids[c] = final.resolve(c)["id"]
                except SpRealistError as exc:
                    raise SpRealistError(f"{where}: theme {t['name']!r} lists code {c!r}: "
                                         f"{str(exc)[0].lower()}{str(exc)[1:]}") from None
        added, updated = _upsert_themes(conn, themes, code_ids)
        stats["themes_added"], stats["themes_updated"] = added, updated
    project.log(conn, "codebook.import", where, **stats)
    return stats


def import_codebook_yaml(project: Project, path: str | os.PathLike) -> dict:
    """Import ``codes:`` (with rules and children) and ``themes:`` from a codebook YAML file.

    Codes are matched by name: new ones are added, existing ones get the
    fields the file gives and the parent the file nests them under; codes the
    file does not mention are kept.  Returns counts of what changed.
    """
    data = read_yaml(path, "codes")
    unknown = set(data) - {"codes", "themes"}
    if unknown:
        raise SpRealistError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; use codes and themes.")
    entries: list[dict] = []
    _flatten_yaml_codes(data.get("codes"), None, str(path), entries)
    themes: list[dict] = []
    _flatten_yaml_themes(data.get("themes"), None, str(path), themes)
    with project.begin() as conn:
        return _apply_codebook(project, conn, entries, themes, str(path))


def import_codebook_csv(project: Project, path: str | os.PathLike) -> dict:
    """Import codes from a CSV file with columns name, parent, definition, inclusion, exclusion, example, colour."""
    p = Path(path)
    if not p.is_file():
        raise SpRealistError(f"{p}: no such file; check the path.")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpRealistError(f"{p}: not UTF-8 text; save it as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "name" not in [f.strip() for f in reader.fieldnames]:
        raise SpRealistError(f"{p}: needs a header row with at least a 'name' column.")
    unknown = {f.strip() for f in reader.fieldnames} - set(CSV_COLUMNS)
    if unknown:
        raise SpRealistError(f"{p}: unknown column(s) {', '.join(sorted(unknown))}; use {', '.join(CSV_COLUMNS)}.")
    rows: list[tuple[int, str, str | None, dict]] = []
    for lineno, row in enumerate(reader, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        if not (row.get("name") or "").strip():
            raise SpRealistError(f"{p}: line {lineno} has no name; every code needs one.")
        name = clean_name(row["name"])
        parent = (row.get("parent") or "").strip() or None
        fields = _clean_fields({k: row[k] for k in FIELDS if k in row}, f"{p}: line {lineno}")
        rows.append((lineno, name, parent, fields))
    with project.begin() as conn:
        tree = CodeTree.read(conn)
        # A parent is a code of the file or of the codebook, named as anywhere else (a unique name, or a path).
        by_name: dict[str, list[int]] = {}
        for i, (_l, name, _p, _f) in enumerate(rows):
            by_name.setdefault(name, []).append(i)
        steps: dict[int, tuple[str, ...]] = {}

        def steps_of(i: int, trail: tuple[int, ...] = ()) -> tuple[str, ...]:
            if i in steps:
                return steps[i]
            lineno, name, parent, _f = rows[i]
            if parent is None:
                steps[i] = (name,)
                return steps[i]
            if i in trail:
                raise SpRealistError(f"{p}: code {name!r} would end up inside itself; fix the parents.")
            mine = [j for j in by_name.get(" ".join(parent.split()), []) if j != i]  # a whole name first
            wanted = tuple(split_path(parent))
            if not mine and len(wanted) > 1:
                mine = [j for j in by_name.get(wanted[-1], []) if j != i
                        and steps_of(j, trail + (i,))[-len(wanted):] == wanted]
            if len(mine) > 1:
                raise SpRealistError(f"{p}: line {lineno}: parent {parent!r} is ambiguous ({len(mine)} codes of the file "
                                     "have that name); give its path, e.g. 'Grandparent/Parent'.")
            if mine:
                steps[i] = steps_of(mine[0], trail + (i,)) + (name,)
            else:
                try:
                    steps[i] = tree.steps(tree.resolve(parent)["id"]) + (name,)
                except SpRealistError as exc:
                    raise SpRealistError(f"{p}: line {lineno}: parent {parent!r}: "
                                         f"{str(exc)[0].lower()}{str(exc)[1:]}") from None
            return steps[i]

        entries: list[dict] = []
        order: dict[tuple[str, ...] | None, int] = {}
        for i, (_lineno, name, _parent, fields) in enumerate(rows):
            full = steps_of(i)
            parent_steps = full[:-1] or None
            ord_ = order.get(parent_steps, 0)
            order[parent_steps] = ord_ + 1
            entries.append({"name": name, "steps": full, "parent": parent_steps, "fields": fields, "rules": None,
                            "ord": ord_})
        return _apply_codebook(project, conn, entries, None, str(p))


def codebook_dict(project: Project, themes: bool = True) -> dict:
    """The codebook as the YAML structure (codes nested, with rules; themes)."""
    from .autocode import decode_spec, rule_terms

    with project.connect() as conn:
        rows = code_rows(conn)
        rules: dict[int, list[dict]] = {}
        for r in conn.execute(select(S.code_rules).order_by(S.code_rules.c.id)).mappings():
            rule: dict[str, Any] = {"name": r["name"]}
            spec, speakers, exclude = decode_spec(r["kind"], r["spec"])
            for kind, terms in rule_terms(r["kind"], spec).items():
                if kind == "pattern" and len(terms) == 1:
                    terms = terms[0]  # one pattern is written as in the docs: [{LOWER: brick}, ...]
                rule[kind] = terms
            if r["lemma"]:
                rule["lemma"] = True
            rule["unit"] = r["unit"]
            if speakers:
                rule["speakers"] = list(speakers)
            if exclude:
                rule["exclude_speakers"] = list(exclude)
            rules.setdefault(r["code_id"], []).append(rule)
        theme_data = None
        if themes:
            from .themes import themes_dict

            theme_data = themes_dict(conn)
    children: dict[int | None, list[dict]] = {}
    for r in rows:
        children.setdefault(r["parent_id"], []).append(r)

    def build(pid):
        out = []
        for r in children.get(pid, []):
            item: dict[str, Any] = {"name": r["name"]}
            for k in FIELDS:
                if r[k] is not None:
                    item[k] = r[k]
            if r["id"] in rules:
                item["rules"] = rules[r["id"]]
            kids = build(r["id"])
            if kids:
                item["children"] = kids
            out.append(item)
        return out

    data: dict[str, Any] = {"codes": build(None)}
    if theme_data:
        data["themes"] = theme_data
    return data


def export_codebook_yaml(project: Project, path: str | os.PathLike | None = None) -> str:
    """The codebook (codes, rules, themes) as YAML text; also written to ``path`` if given."""
    text = dump_yaml(codebook_dict(project))
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def export_codebook_csv(project: Project, path: str | os.PathLike | None = None) -> str:
    """The codes (not rules or themes) as CSV text, parents before children."""
    df = codebook_tree(project)[list(CSV_COLUMNS)]
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text

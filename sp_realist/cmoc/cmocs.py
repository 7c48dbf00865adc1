"""Context-mechanism-outcome configurations (CMOCs), their evidence and relations.

A CMOC is an object of its own (``T1.2``): context, mechanism (resource and
response), outcome, status (partial / complete), confidence and memo.  It is
linked to excerpts (spans of sources) that support or refute it, and to other
CMOCs that it refines, contradicts or chains into (the outcome of one is the
context of the next).

Every function has a ``conn`` twin (``_..._conn``) used inside a caller's
transaction by the YAML importers; the public functions open one transaction.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..sources import span_attributions
from ..store import Project, next_ordinal, now, stable_guid
from ._common import (
    CMOC_TEXT_FIELDS,
    COMPONENTS,
    CONFIDENCES,
    RELATION_KINDS,
    ROLES,
    STATUSES,
    Lookups,
    check_choice,
    natural_key,
    resolve_cmoc,
    resolve_excerpt,
    resolve_theory,
    text_value,
)

EDITABLE = CMOC_TEXT_FIELDS + ("status", "confidence", "memo", "ifthen")


def _clean_fields(fields: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in EDITABLE:
            raise SpRealistError(f"{where}: unknown CMOC field {name!r}; use {', '.join(EDITABLE)}.")
        if name in CMOC_TEXT_FIELDS:
            out[name] = text_value(value, where, name)
        elif name == "status":
            out[name] = check_choice(value, STATUSES, "status", where) or "partial"
        elif name == "confidence":
            out[name] = check_choice(value, CONFIDENCES, "confidence", where)
        elif name == "ifthen":
            if value is not None and not isinstance(value, (str, int, float)):
                raise SpRealistError(f"{where}: ifthen must be one statement (text), not a list or a mapping.")
            # one statement: line breaks (a folded YAML block, a pasted paragraph) are spaces
            out[name] = None if value is None else (" ".join(str(value).split()) or None)
        else:
            out[name] = None if value is None else (str(value).strip() or None)
    return out


def _check_key(key: Any, what: str) -> str:
    key = str(key).strip() if key is not None else ""
    if not key or any(ch.isspace() for ch in key):
        raise SpRealistError(f"{what}: key {key!r} must be non-empty without spaces, e.g. T1.2.")
    return key


def add_cmoc_conn(conn: Connection, key: str, *, theory: str | None = None, actor: str | None = None,
                  where: str | None = None, guid: str | None = None, created_at: str | None = None,
                  updated_at: str | None = None, ord: int | None = None, **fields: Any) -> int:
    """Insert one CMOC (the one writer of new ``cmocs`` rows).  ``guid``, ``created_at``, ``updated_at`` and
    ``ord`` keep what an imported CMOC had (default: a stable GUID, now, after the last)."""
    key = _check_key(key, where or "CMOC")
    where = where or f"CMOC {key}"
    values = _clean_fields(fields, where)
    values.setdefault("status", "partial")
    if conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == key)).first():
        raise SpRealistError(f"{where}: a CMOC {key} already exists; edit it with 'sp-realist cmoc edit {key}'.")
    theory_row = resolve_theory(conn, theory) if theory else None
    ord_ = ord if ord is not None else next_ordinal(conn, S.cmocs.c.ord)
    ts = created_at or now()
    cid = conn.execute(insert(S.cmocs).values(
        key=key, ord=ord_, guid=guid or stable_guid("cmoc", key), created_at=ts, updated_at=updated_at or ts, **values,
    )).inserted_primary_key[0]
    if theory_row:
        from .theories import add_member_conn

        add_member_conn(conn, theory_row["key"], key, actor=actor, record=False)
    return cid


def add_cmoc(project: Project, key: str, *, theory: str | None = None, actor: str | None = None,
             **fields: Any) -> int:
    """Create CMOC ``key`` (optionally as a member of ``theory``); return its id.

    ``fields``: context, mechanism_resource, mechanism_response, outcome
    (text, or a list of items), status, confidence, memo, ifthen (the CMOC's own
    if/then statement, used instead of the template; empty clears it).
    """
    with project.begin() as conn:
        cid = add_cmoc_conn(conn, key, theory=theory, actor=actor, **fields)
        project.log(conn, "cmoc.add", key, actor=actor, theory=theory)
    return cid


def edit_cmoc_conn(conn: Connection, key: str, *, actor: str | None = None, reason: str | None = None,
                   evidence: list | None = None, new_key: str | None = None, **fields: Any) -> dict:
    row = resolve_cmoc(conn, key)
    where = f"CMOC {row['key']}"
    values = _clean_fields(fields, where)
    changed = {k: (row[k], v) for k, v in values.items() if row[k] != v}
    if new_key and new_key != row["key"]:
        new_key = _check_key(new_key, where)
        if conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == new_key)).first():
            raise SpRealistError(f"{where}: cannot rename to {new_key}; that key is taken.")
        changed["key"] = (row["key"], new_key)
    if not changed:
        return {}
    conn.execute(update(S.cmocs).where(S.cmocs.c.id == row["id"]).values(
        updated_at=now(), **{k: v[1] for k, v in changed.items()}))
    if reason or evidence:
        from .theories import record_change_conn

        summary = "; ".join(f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in changed.items())
        theory_keys = conn.execute(
            select(S.theories.c.key).select_from(S.theory_cmocs.join(S.theories, S.theories.c.id == S.theory_cmocs.c.theory_id))
            .where(S.theory_cmocs.c.cmoc_id == row["id"])).scalars().all()
        for tkey in theory_keys:
            record_change_conn(conn, tkey, f"Refined {changed.get('key', (row['key'],) * 2)[1]}: {summary}",
                               reason=reason, evidence=evidence, author=actor)
    return changed


def _short(value: Any, n: int = 60) -> str:
    text = "" if value is None else " / ".join(str(value).splitlines())
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def edit_cmoc(project: Project, key: str, *, actor: str | None = None, reason: str | None = None,
              evidence: list | None = None, new_key: str | None = None, **fields: Any) -> dict:
    """Change fields of a CMOC; return ``{field: (old, new)}`` for what changed.

    With ``reason`` (and optionally ``evidence``: excerpt ids or references),
    the change is also recorded in the refinement history of every theory the
    CMOC belongs to.
    """
    with project.begin() as conn:
        changed = edit_cmoc_conn(conn, key, actor=actor, reason=reason, evidence=evidence, new_key=new_key, **fields)
        if changed:
            project.log(conn, "cmoc.edit", key, actor=actor,
                        changes={k: [o, n] for k, (o, n) in changed.items()}, reason=reason)
    return changed


def delete_cmoc(project: Project, key: str, actor: str | None = None) -> None:
    """Delete a CMOC with its evidence links and relations (appraisals keep their text, lose the link)."""
    with project.begin() as conn:
        row = resolve_cmoc(conn, key)
        conn.execute(delete(S.cmoc_evidence).where(S.cmoc_evidence.c.cmoc_id == row["id"]))
        conn.execute(delete(S.cmoc_relations).where(
            (S.cmoc_relations.c.from_id == row["id"]) | (S.cmoc_relations.c.to_id == row["id"])))
        conn.execute(delete(S.theory_cmocs).where(S.theory_cmocs.c.cmoc_id == row["id"]))
        # Appraisals that named this CMOC keep their judgement; the link is cleared after a history snapshot.
        from .appraisal import snapshot

        ts = now()
        for app in conn.execute(select(S.appraisals).where(S.appraisals.c.cmoc_id == row["id"])).mappings().all():
            conn.execute(insert(S.appraisal_history).values(
                appraisal_id=app["id"], at=ts, analyst=actor or app["analyst"], snapshot=snapshot(conn, app)))
            conn.execute(update(S.appraisals).where(S.appraisals.c.id == app["id"]).values(
                cmoc_id=None, updated_at=ts,
                note=((app["note"] + "\n") if app["note"] else "") + f"CMOC {row['key']} was deleted."))
        conn.execute(delete(S.cmocs).where(S.cmocs.c.id == row["id"]))
        project.log(conn, "cmoc.delete", row["key"], actor=actor, row={k: row[k] for k in EDITABLE})


# -- evidence --------------------------------------------------------------
def link_evidence_conn(conn: Connection, cmoc: str, excerpt: Any, *, role: str = "supports",
                       component: str | None = None, analyst: str | None = None, note: str | None = None,
                       where: str | None = None, lookups: Lookups | None = None,
                       created_at: str | None = None) -> int:
    lk = lookups or Lookups(conn)
    row = lk.cmoc(cmoc)
    where = where or f"evidence for {row['key']}"
    role = check_choice(role, ROLES, "role", where) or "supports"
    component = check_choice(component, COMPONENTS, "component", where)
    excerpt_id = lk.excerpt(excerpt, where)
    ev = S.cmoc_evidence
    existing = conn.execute(select(ev.c.id).where(and_(
        ev.c.cmoc_id == row["id"], ev.c.excerpt_id == excerpt_id, ev.c.role == role))).first()
    if existing:
        values = {k: v for k, v in (("component", component), ("analyst", analyst), ("note", note)) if v is not None}
        if values:
            conn.execute(update(ev).where(ev.c.id == existing[0]).values(**values))
        return existing[0]
    return conn.execute(insert(ev).values(
        cmoc_id=row["id"], excerpt_id=excerpt_id, role=role, component=component, analyst=analyst,
        note=note, created_at=created_at or now())).inserted_primary_key[0]


def link_evidence(project: Project, cmoc: str, excerpt: Any, *, role: str = "supports",
                  component: str | None = None, analyst: str | None = None, note: str | None = None) -> int:
    """Link an excerpt to a CMOC as evidence that ``supports`` or ``refutes`` it.

    ``excerpt`` is an excerpt id or a reference ``{"source": ..., "quote": ...}``
    (or ``span``/``segment``/``section``); the excerpt is created if needed.
    Linking the same excerpt twice with the same role updates the link.
    """
    with project.begin() as conn:
        eid = link_evidence_conn(conn, cmoc, excerpt, role=role, component=component, analyst=analyst, note=note)
        project.log(conn, "cmoc.link", str(cmoc), actor=analyst, evidence_id=eid, role=role)
    return eid


def unlink_evidence(project: Project, cmoc: str, excerpt: Any, role: str | None = None,
                    actor: str | None = None) -> int:
    """Remove evidence links between a CMOC and an excerpt; return how many were removed."""
    with project.begin() as conn:
        row = resolve_cmoc(conn, cmoc)
        excerpt_id = resolve_excerpt(conn, excerpt, f"evidence for {row['key']}")
        q = delete(S.cmoc_evidence).where(and_(S.cmoc_evidence.c.cmoc_id == row["id"],
                                               S.cmoc_evidence.c.excerpt_id == excerpt_id))
        if role:
            q = q.where(S.cmoc_evidence.c.role == check_choice(role, ROLES, "role", row["key"]))
        n = conn.execute(q).rowcount
        project.log(conn, "cmoc.unlink", row["key"], actor=actor, excerpt_id=excerpt_id, removed=n)
    return n


# -- relations -------------------------------------------------------------
def relate_conn(conn: Connection, from_key: str, to_key: str, kind: str, note: str | None = None,
                where: str | None = None) -> int:
    where = where or f"relation {from_key} -> {to_key}"
    kind = check_choice(kind, RELATION_KINDS, "kind", where)
    if kind is None:
        raise SpRealistError(f"{where}: give a kind ({', '.join(RELATION_KINDS)}).")
    a, b = resolve_cmoc(conn, from_key), resolve_cmoc(conn, to_key)
    if a["id"] == b["id"]:
        raise SpRealistError(f"{where}: a CMOC cannot be related to itself.")
    rel = S.cmoc_relations
    existing = conn.execute(select(rel.c.id).where(and_(
        rel.c.from_id == a["id"], rel.c.to_id == b["id"], rel.c.kind == kind))).first()
    if existing:
        if note is not None:
            conn.execute(update(rel).where(rel.c.id == existing[0]).values(note=note))
        return existing[0]
    return conn.execute(insert(rel).values(from_id=a["id"], to_id=b["id"], kind=kind, note=note)).inserted_primary_key[0]


def relate_cmocs(project: Project, from_key: str, to_key: str, kind: str, note: str | None = None,
                 actor: str | None = None) -> int:
    """Record that ``from_key`` refines, contradicts or chains into ``to_key``."""
    with project.begin() as conn:
        rid = relate_conn(conn, from_key, to_key, kind, note)
        project.log(conn, "cmoc.relate", f"{from_key}->{to_key}", actor=actor, kind=kind)
    return rid


def unrelate_cmocs(project: Project, from_key: str, to_key: str, kind: str | None = None,
                   actor: str | None = None) -> int:
    with project.begin() as conn:
        a, b = resolve_cmoc(conn, from_key), resolve_cmoc(conn, to_key)
        q = delete(S.cmoc_relations).where(and_(S.cmoc_relations.c.from_id == a["id"],
                                                S.cmoc_relations.c.to_id == b["id"]))
        if kind:
            q = q.where(S.cmoc_relations.c.kind == check_choice(kind, RELATION_KINDS, "kind", "relation"))
        n = conn.execute(q).rowcount
        project.log(conn, "cmoc.unrelate", f"{from_key}->{to_key}", actor=actor, removed=n)
    return n


# -- queries ---------------------------------------------------------------
def _memberships(conn: Connection) -> dict[int, list[str]]:
    rows = conn.execute(
        select(S.theory_cmocs.c.cmoc_id, S.theories.c.key)
        .select_from(S.theory_cmocs.join(S.theories, S.theories.c.id == S.theory_cmocs.c.theory_id))
        .order_by(S.theories.c.ord, S.theories.c.key)).all()
    out: dict[int, list[str]] = {}
    for cid, tkey in rows:
        out.setdefault(cid, []).append(tkey)
    return out


def cmoc_rows(conn: Connection, theory: str | None = None) -> list[dict]:
    """CMOC rows in theory order (theory ord, membership ord), then the rest by key."""
    if theory:
        t = resolve_theory(conn, theory)
        rows = conn.execute(
            select(S.cmocs).select_from(S.theory_cmocs.join(S.cmocs, S.cmocs.c.id == S.theory_cmocs.c.cmoc_id))
            .where(S.theory_cmocs.c.theory_id == t["id"])
            .order_by(S.theory_cmocs.c.ord, S.cmocs.c.ord)).mappings().all()
        return [dict(r) for r in rows]
    all_rows = {r["id"]: dict(r) for r in conn.execute(select(S.cmocs)).mappings().all()}
    ordered = conn.execute(
        select(S.theory_cmocs.c.cmoc_id)
        .select_from(S.theory_cmocs.join(S.theories, S.theories.c.id == S.theory_cmocs.c.theory_id))
        .order_by(S.theories.c.ord, S.theories.c.key, S.theory_cmocs.c.ord)).scalars().all()
    out, seen = [], set()
    for cid in ordered:
        if cid not in seen:
            seen.add(cid)
            out.append(all_rows[cid])
    rest = sorted((r for cid, r in all_rows.items() if cid not in seen), key=lambda r: natural_key(r["key"]))
    return out + rest


def _evidence_counts(conn: Connection) -> dict[tuple[int, str], int]:
    ev = S.cmoc_evidence
    rows = conn.execute(select(ev.c.cmoc_id, ev.c.role, func.count()).group_by(ev.c.cmoc_id, ev.c.role)).all()
    return {(cid, role): n for cid, role, n in rows}


CMOC_COLUMNS = ["key", "theories", "context", "mechanism_resource", "mechanism_response", "outcome",
                "status", "confidence", "supports", "refutes"]


def list_cmocs(project: Project, theory: str | None = None) -> pd.DataFrame:
    """One row per CMOC (of ``theory`` if given) with its evidence counts."""
    with project.connect() as conn:
        rows = cmoc_rows(conn, theory)
        members = _memberships(conn)
        counts = _evidence_counts(conn)
    data = [{
        "key": r["key"], "theories": ", ".join(members.get(r["id"], [])),
        **{f: r[f] for f in CMOC_TEXT_FIELDS}, "status": r["status"], "confidence": r["confidence"],
        "supports": counts.get((r["id"], "supports"), 0), "refutes": counts.get((r["id"], "refutes"), 0),
    } for r in rows]
    return pd.DataFrame(data, columns=CMOC_COLUMNS)


def cmoc_detail(project: Project, key: str) -> dict:
    """Everything about one CMOC: its fields, theories, evidence and relations."""
    with project.connect() as conn:
        row = resolve_cmoc(conn, key)
        members = _memberships(conn).get(row["id"], [])
    detail = {k: row[k] for k in ("key",) + EDITABLE + ("created_at", "updated_at")}
    detail["theories"] = members
    detail["evidence"] = cmoc_evidence(project, row["key"])
    detail["relations"] = relations_frame(project, row["key"])
    return detail


def cmoc_fields_frame(detail: dict) -> pd.DataFrame:
    """A two-column (field, value) view of :func:`cmoc_detail`."""
    rows = [(k, ", ".join(v) if isinstance(v, list) else v) for k, v in detail.items()
            if k not in ("evidence", "relations")]
    return pd.DataFrame(rows, columns=["field", "value"])


def evidence_frame(conn: Connection, cmoc_id: int | None = None) -> pd.DataFrame:
    """Evidence rows with the excerpt text and attribution."""
    ev, ex, src = S.cmoc_evidence, S.excerpts, S.sources
    q = (select(S.cmocs.c.key.label("cmoc"), ev.c.id.label("evidence_id"), ev.c.role, ev.c.component,
                ev.c.analyst, ev.c.note, ex.c.id.label("excerpt_id"), ex.c.source_id, src.c.name.label("source"),
                ex.c.start, ex.c.end, func.substr(src.c.text, ex.c.start + 1, ex.c.end - ex.c.start).label("text"))
         .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id).join(src, src.c.id == ex.c.source_id)
                      .join(S.cmocs, S.cmocs.c.id == ev.c.cmoc_id))
         .order_by(S.cmocs.c.ord, src.c.ingest_order, ex.c.start, ev.c.id))
    if cmoc_id is not None:
        q = q.where(ev.c.cmoc_id == cmoc_id)
    rows = [dict(r) for r in conn.execute(q).mappings().all()]
    attrib = span_attributions(conn, ((r["source_id"], r["start"]) for r in rows))
    for r in rows:
        r["attribution"] = attrib[(r["source_id"], r["start"])]
    cols = ["cmoc", "evidence_id", "role", "component", "excerpt_id", "source", "start", "end", "attribution",
            "analyst", "text", "note"]
    return pd.DataFrame(rows, columns=cols + ["source_id"])[cols]


def cmoc_evidence(project: Project, key: str | None = None) -> pd.DataFrame:
    """The excerpts linked to a CMOC (or to every CMOC) with role, component and text."""
    with project.connect() as conn:
        cid = resolve_cmoc(conn, key)["id"] if key else None
        return evidence_frame(conn, cid)


def relations_frame(project: Project, key: str | None = None) -> pd.DataFrame:
    """CMOC relations (from, kind, to, note); those touching ``key`` if given."""
    a, b = S.cmocs.alias("a"), S.cmocs.alias("b")
    rel = S.cmoc_relations
    q = (select(a.c.key.label("from"), rel.c.kind, b.c.key.label("to"), rel.c.note)
         .select_from(rel.join(a, a.c.id == rel.c.from_id).join(b, b.c.id == rel.c.to_id))
         .order_by(a.c.ord, b.c.ord, rel.c.kind))
    with project.connect() as conn:
        if key:
            cid = resolve_cmoc(conn, key)["id"]
            q = q.where((rel.c.from_id == cid) | (rel.c.to_id == cid))
        rows = conn.execute(q).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=["from", "kind", "to", "note"])

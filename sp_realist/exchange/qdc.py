"""REFI-QDA codebook exchange (``.qdc``, namespace ``urn:QDA-XML:codebook:1.0``).

:func:`export_qdc` writes the codebook (hierarchy, colours, definitions with
inclusion/exclusion/example folded into ``Description``) and the themes as
``Sets`` of ``MemberCode`` s.  :func:`import_qdc` reads a codebook from any
tool (NVivo, ATLAS.ti, MAXQDA, QualCoder, Taguette ...) into a project: codes
already present (same GUID or name) are reused, not duplicated.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..coding._common import code_labels
from ..errors import SpRealistError
from ..store import Project
from .common import (NS_CODEBOOK, CodePlan, ImportResult, ThemePlan, apply_codes, apply_themes, compose_description,
                     guid_for, norm_guid, project_id, repair_foreign_guids, valid_colour, xml_safe)
from .safety import ExchangeError, local, parse_xml

MAX_QDC_BYTES = 64 * 1024**2


def _q(tag: str) -> str:
    return tag  # unqualified; the root carries xmlns


def codebook_xml(project: Project) -> bytes:
    """The ``.qdc`` XML for the project's codebook and themes (deterministic)."""
    with project.connect() as conn:
        pid = project_id(conn)
        codes = [dict(r) for r in conn.execute(select(S.codes).order_by(S.codes.c.ord, S.codes.c.name)).mappings()]
        themes = [dict(r) for r in conn.execute(select(S.themes).order_by(S.themes.c.ord, S.themes.c.name)).mappings()]
        members = defaultdict(list)
        for r in conn.execute(select(S.theme_codes)).mappings():
            members[r["theme_id"]].append(r["code_id"])
        labels = code_labels(conn)  # a code without a stored GUID gets one from its name, or its path if repeated
    guid = {r["id"]: guid_for(r["guid"], pid, "code", labels[r["id"]]) for r in codes}
    children = defaultdict(list)
    ids = set(guid)
    for r in codes:
        children[r["parent_id"] if r["parent_id"] in ids else None].append(r)
    root = ET.Element(_q("CodeBook"), {"xmlns": NS_CODEBOOK, "origin": "sp_realist"})
    codes_el = ET.SubElement(root, _q("Codes"))

    def emit(parent, row, seen):
        if row["id"] in seen:
            return
        attrs = {"guid": guid[row["id"]], "name": xml_safe(row["name"])[0],
                 "isCodable": "false" if row.get("codable") is False else "true"}
        if valid_colour(row["colour"]):
            attrs["color"] = row["colour"]
        el = ET.SubElement(parent, _q("Code"), attrs)
        desc = compose_description(row)
        if desc:
            ET.SubElement(el, _q("Description")).text = xml_safe(desc)[0]
        for child in children.get(row["id"], []):
            emit(el, child, seen | {row["id"]})

    for row in children[None]:
        emit(codes_el, row, frozenset())
    if themes:
        sets_el = ET.SubElement(root, _q("Sets"))
        for t in themes:
            el = ET.SubElement(sets_el, _q("Set"), {"guid": guid_for(t["guid"], pid, "theme", t["name"]),
                                                     "name": xml_safe(t["name"])[0]})
            if t["description"]:
                ET.SubElement(el, _q("Description")).text = xml_safe(t["description"])[0]
            for cid in sorted(members[t["id"]], key=lambda i: guid.get(i, "")):
                if cid in guid:
                    ET.SubElement(el, _q("MemberCode"), {"guid": guid[cid]})
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def export_qdc(project: Project, out: str | os.PathLike, force: bool = False,
               key: str | os.PathLike | None = None) -> pd.DataFrame:
    """Write the codebook to ``out`` (.qdc); returns counts.

    With a pseudonym ``key`` (or ``$SP_REALIST_KEY``; required when the project
    has an applied key) the codebook is audited first and nothing is written
    if a real name would leak (:class:`~sp_realist.errors.CheckFailed`).
    """
    from ..privacy.audit import check_output, output_audit_key

    out = Path(out)
    if out.exists() and not force:
        raise SpRealistError(f"{out}: already exists; choose another name or pass --force to overwrite it.")
    if not out.parent.exists():
        raise SpRealistError(f"{out}: the folder {out.parent} does not exist; create it first.")
    audit_key = output_audit_key(project, key)
    data = codebook_xml(project)
    tmp = out.with_name(f".tmp-{out.name}")
    tmp.write_bytes(data)
    try:
        if audit_key is not None:
            check_output(tmp, audit_key, out)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with project.connect() as conn:
        from sqlalchemy import func

        n_codes = conn.execute(select(func.count()).select_from(S.codes)).scalar_one()
        n_themes = conn.execute(select(func.count()).select_from(S.themes)).scalar_one()
    return pd.DataFrame([("codes", n_codes), ("themes", n_themes)], columns=["exported", "count"])


def read_qdc(data: bytes, where: str) -> tuple[list[CodePlan], list[ThemePlan], ImportResult]:
    """Parse a codebook; nothing is written."""
    result = ImportResult(where)
    root = parse_xml(data, where)
    if local(root.tag) != "CodeBook":
        raise ExchangeError(f"{where}: not a REFI-QDA codebook (the root element is {local(root.tag)!r}, "
                            "not 'CodeBook').")
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if ns != NS_CODEBOOK:
        result.note(f"the codebook uses the namespace {ns or 'none'!r} (the standard's is {NS_CODEBOOK!r}); "
                    "read it by element names")
    foreign = repair_foreign_guids(root, where)
    if foreign:
        result.note(f"{foreign} identifier(s) that are not GUIDs were given GUIDs; the references to them were kept")
    plans: list[CodePlan] = []
    fresh = [0]

    def walk(parent, parent_guid):
        for el in parent:
            if local(el.tag) != "Code":
                continue
            g = norm_guid(el.get("guid"))
            if g is None:
                fresh[0] += 1
                from ..store import stable_guid

                g = stable_guid("qdc", where, fresh[0], el.get("name"))
            desc = None
            for c in el:
                if local(c.tag) == "Description":
                    desc = c.text
            name = (el.get("name") or "").strip() or f"Code {g[:8]}"
            codable = (el.get("isCodable") or "true").strip().lower() not in ("false", "0")
            plans.append(CodePlan(g, name, parent_guid, desc, el.get("color"), codable))
            walk(el, g)

    codes_el = next((c for c in root if local(c.tag) == "Codes"), None)
    if codes_el is not None:
        walk(codes_el, None)
    themes: list[ThemePlan] = []
    sets_el = next((c for c in root if local(c.tag) == "Sets"), None)
    for st in (sets_el if sets_el is not None else []):
        if local(st.tag) != "Set":
            continue
        g = norm_guid(st.get("guid")) or norm_guid(st.get("name")) or f"set-{len(themes)}"
        desc = next((c.text for c in st if local(c.tag) == "Description"), None)
        members = [x for x in (norm_guid(m.get("guid") or m.get("targetGUID")) for m in st
                               if local(m.tag) == "MemberCode") if x]
        themes.append(ThemePlan(g, (st.get("name") or "").strip() or f"Set {len(themes) + 1}", desc, members))
    if fresh[0]:
        result.lose(f"{fresh[0]} code(s) without a GUID were given new GUIDs")
    return plans, themes, result


def import_codebook_plans(project: Project, plans: list[CodePlan], themes: list[ThemePlan], result: ImportResult,
                          origin: str) -> ImportResult:
    """Write code and theme plans in one transaction."""
    with project.begin() as conn:
        ids = apply_codes(conn, plans, result, origin)
        if themes:
            apply_themes(conn, themes, ids, result)
        project.log(conn, "import.codebook", result.source, **{k: int(v) for k, v in result.counts.items()})
    result.counts.setdefault("codes", 0)
    result.project = str(project.location)
    return result


def import_qdc(path: str | os.PathLike, project: Project) -> ImportResult:
    """Import a REFI-QDA codebook (``.qdc``) into ``project``."""
    path = Path(path)
    if not path.is_file():
        raise ExchangeError(f"{path}: no such file; check the path.")
    if path.stat().st_size > MAX_QDC_BYTES:
        raise ExchangeError(f"{path}: larger than {MAX_QDC_BYTES} bytes; not a plausible codebook.")
    plans, themes, result = read_qdc(path.read_bytes(), str(path))
    return import_codebook_plans(project, plans, themes, result, "import:qdc")

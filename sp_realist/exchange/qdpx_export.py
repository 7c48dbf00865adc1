"""Export a project as a REFI-QDA project exchange file (``.qdpx``).

The archive holds ``project.qde`` (valid against the REFI-QDA Project 1.0
XSD) and ``sources/<guid>.txt``, each source's plain text in UTF-8.  Mapping:

==========================  ==================================================
sp_realist                  REFI-QDA
==========================  ==================================================
coders, memo authors        ``Users/User``
codes (hierarchy)           ``CodeBook/Codes/Code`` (definition, inclusion,
                            exclusion, example folded into ``Description``)
sources (+ attributes)      ``TextSource`` with ``plainTextPath`` and
                            ``VariableValue`` s; kind and date as the variables
                            ``sp_realist.kind`` / ``sp_realist.date``
codings                     ``PlainTextSelection`` (code-point positions, one
                            per span) with one ``Coding`` per code and coder
participants (+ attributes) ``Cases/Case`` with ``VariableValue`` s and
                            ``SourceRef`` s
memos                       ``Notes/Note`` with a ``NoteRef`` on their target
themes                      ``Sets/Set`` of ``MemberCode`` s
CMOCs                       a ``Note`` per component, ``Links`` C -> M -> O
                            (``OneWay``) and a ``Set`` per CMOC; relations
                            between CMOCs are ``Links`` between their sets
theories                    a ``Graph`` per theory (a ``Vertex`` per CMOC, an
                            ``Edge`` per relation) and a ``Set`` with its note
==========================  ==================================================

GUIDs come from a row's stored ``guid`` (kept from an import) or from
``store.stable_guid`` over the project id and the natural key, and the zip is
written with fixed timestamps, so exporting an unchanged project twice gives
byte-identical files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree as ET

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..coding._common import code_labels
from ..errors import SpRealistError
from ..store import Project, stable_guid
from .common import (NS_PROJECT, compose_description, cycle_collection_paused, guid_for, norm_guid, project_id,
                     valid_colour, xml_safe, xsd_datetime)

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
KIND_VARIABLE = "sp_realist.kind"
DATE_VARIABLE = "sp_realist.date"
SEGMENTS_ENTRY = "sp_realist/segments.json"
APPRAISAL_FIELDS = ("relevance", "trust", "trust_rationale", "interpretation", "cmoc_judgement", "theory_change",
                    "theory_note", "saturation_note", "note")
CMOC_PARTS = (("context", "Context"), ("mechanism_resource", "Mechanism (resource)"),
              ("mechanism_response", "Mechanism (response)"), ("outcome", "Outcome"))
IFTHEN_LABEL = "If/then"  # title of the note holding a CMOC's own if/then statement ("T2.1 If/then")


def q(tag: str) -> str:
    # Elements are built unqualified and the root carries xmlns (ElementTree then
    # writes the standard's default namespace without prefixes).
    return tag


def sub(parent: ET.Element, tag: str, attrs: dict | None = None, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, q(tag), {k: str(v) for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        el.text = text
    return el


@dataclass
class ExportResult:
    """What an export wrote and what REFI-QDA cannot carry."""

    path: str
    counts: dict[str, int] = field(default_factory=dict)
    losses: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.counts.items()), columns=["exported", "count"])


class _Builder:
    """Builds ``project.qde`` and the source files from one read transaction."""

    def __init__(self, conn: Connection, name: str):
        self.conn = conn
        self.name = name
        self.pid = project_id(conn)
        self.users: dict[str, str] = {}  # user name -> guid
        self.files: dict[str, bytes] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.losses: list[str] = []
        self.stripped = 0
        # codings made together share their time (an autocoding run, an import): each converted once
        self.xsd_time = lru_cache(maxsize=4096)(xsd_datetime)
        # users kept from an import (with their GUIDs), listed even without codings or notes
        self.kept_users: dict[str, str | None] = dict(conn.execute(select(S.users.c.name, S.users.c.guid)).all())

    # -- helpers ----------------------------------------------------------
    def user(self, name: str | None) -> str | None:
        if not name:
            return None
        if name not in self.users:
            self.users[name] = norm_guid(self.kept_users.get(name)) or stable_guid("refi-user", name)
        return self.users[name]

    def clean(self, text: str | None) -> str | None:
        cleaned, n = xml_safe(text)
        self.stripped += n
        return cleaned

    def rows(self, query) -> list[dict]:
        return [r._asdict() for r in self.conn.execute(query)]

    # -- build ------------------------------------------------------------
    def build(self) -> bytes:
        c = self.conn
        meta = dict(c.execute(select(S.meta.c.key, S.meta.c.value)).all())
        root = ET.Element(q("Project"), {
            "xmlns": NS_PROJECT, "name": self.name, "origin": "sp_realist",
            **({"creationDateTime": xsd_datetime(meta.get("created_at"))} if xsd_datetime(meta.get("created_at")) else {}),
        })
        codes = self.rows(select(S.codes).order_by(S.codes.c.ord, S.codes.c.name))
        sources = self.rows(select(S.sources).order_by(S.sources.c.ingest_order, S.sources.c.id))
        # codings as named tuples (the bulk of a project: smaller and quicker to make than a dict per row)
        cc = S.codings.c
        codings = list(map(_Coding._make, c.execute(
            select(*[cc[name] for name in _Coding._fields]).order_by(cc.source_id, cc.start, cc.end, cc.code_id,
                                                                       cc.coder))))
        memos = self.rows(select(S.memos).order_by(S.memos.c.created_at, S.memos.c.id))
        participants = self.rows(select(S.participants).order_by(S.participants.c.code))
        themes = self.rows(select(S.themes).order_by(S.themes.c.ord, S.themes.c.name))
        cmocs = self.rows(select(S.cmocs).order_by(S.cmocs.c.ord, S.cmocs.c.key))
        theories = self.rows(select(S.theories).order_by(S.theories.c.ord, S.theories.c.key))

        labels = code_labels(self.conn)  # a code without a stored GUID: from its name, or its path if repeated
        self.code_guid = {r["id"]: guid_for(r["guid"], self.pid, "code", labels[r["id"]]) for r in codes}
        self.source_guid = {r["id"]: guid_for(r["guid"], self.pid, "source", r["name"]) for r in sources}
        self.case_guid = {r["id"]: guid_for(r["guid"], self.pid, "case", r["code"]) for r in participants}
        self.theme_guid = {r["id"]: guid_for(r["guid"], self.pid, "theme", r["name"]) for r in themes}
        self.cmoc_guid = {r["id"]: guid_for(r["guid"], self.pid, "cmoc", r["key"]) for r in cmocs}
        self.theory_guid = {r["id"]: guid_for(r["guid"], self.pid, "theory", r["key"]) for r in theories}
        self.cmoc_keys = {r["id"]: r["key"] for r in cmocs}
        self.theory_keys = {r["id"]: r["key"] for r in theories}
        self.memo_guid = {r["id"]: guid_for(r["guid"], self.pid, "memo", r["id"], r["created_at"]) for r in memos}

        # memos grouped by where their NoteRef goes
        self.memos_for: dict[tuple[str, int | None], list[str]] = defaultdict(list)
        for m in memos:
            self.memos_for[(m["target_type"], m["target_id"])].append(self.memo_guid[m["id"]])
        # authors first so Users lists them in a stable order
        for name in dict.fromkeys(r.coder for r in codings):
            self.user(name)
        for m in memos:
            self.user(m["author"])
        for name in self.kept_users:
            self.user(name)

        notes_el = ET.Element(q("Notes"))
        links_el = ET.Element(q("Links"))
        sets_el = ET.Element(q("Sets"))
        graphs_el = ET.Element(q("Graphs"))

        for m in memos:
            self._note(notes_el, self.memo_guid[m["id"]], m["title"], m["text"], m["author"], m["created_at"],
                       m["updated_at"])
            self.counts["notes"] += 1

        ev, ex = S.cmoc_evidence, S.excerpts
        self.evidence = self.rows(
            select(ev.c.id, ev.c.cmoc_id, ev.c.role, ev.c.component, ev.c.analyst, ev.c.note, ev.c.created_at,
                   ex.c.source_id, ex.c.start, ex.c.end)
            .select_from(ev.join(ex, ev.c.excerpt_id == ex.c.id)).order_by(ev.c.id))
        for r in self.evidence:
            self.user(r["analyst"])
        ap = S.appraisals
        self.appraisals = self.rows(
            select(ap, ex.c.source_id, ex.c.start, ex.c.end).select_from(ap.join(ex, ap.c.excerpt_id == ex.c.id))
            .order_by(ap.c.id))
        for r in self.appraisals:
            self.user(r["analyst"])
        # every excerpt is a selection (an uncoded one alone when nobody coded its words), with the GUID and
        # time it was imported with, and the memos on it
        self.excerpts = {(r["source_id"], r["start"], r["end"]): r for r in self.rows(
            select(ex.c.id, ex.c.source_id, ex.c.start, ex.c.end, ex.c.guid, ex.c.created_at, ex.c.dated)
            .order_by(ex.c.id))}
        users_el = ET.Element(q("Users"))
        codebook_el = self._codebook(codes)
        variables_el, cases_el = self._cases(participants, sources)
        sources_el = self._sources(sources, codings, notes_el)
        self._themes(themes, sets_el)
        self._cmocs(cmocs, theories, notes_el, links_el, sets_el, graphs_el)
        self._evidence(links_el, notes_el)
        self._memo_links(memos, links_el)

        for name in sorted(self.users, key=lambda n: self.users[n]):
            sub(users_el, "User", {"guid": self.users[name], "name": self.clean(name)})
        self.counts["users"] = len(self.users)
        for el in (users_el, codebook_el, variables_el, cases_el, sources_el, notes_el, links_el, sets_el, graphs_el):
            if el is not None and len(el):
                root.append(el)
        for g in self.memos_for.get(("project", None), []):
            sub(root, "NoteRef", {"targetGUID": g})
        self._losses()
        ET.indent(root, space="  ")
        xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        # each TextSource was written as soon as it was built (_streamed): put them in place of their markers
        parts = _SOURCE_MARK.split(xml)
        out = [parts[0]]
        for k in range(1, len(parts), 2):
            out += [self.source_xml[int(parts[k])], parts[k + 1]]
        self.source_xml = []
        return b"".join(out + [b"\n"])

    def _streamed(self, el: ET.Element) -> ET.Element:
        """Serialise a finished ``TextSource`` now and return the marker :meth:`build` replaces with it: its
        selections and codings are most of a project's XML, so only one source's elements are held at a time.
        It is indented as indenting the whole tree indents it (Project > Sources > TextSource), and written
        with what ``tostring`` writes for the whole tree, so the file is the same byte for byte."""
        ET.indent(el, space="  ", level=2)
        self.source_xml.append(ET.tostring(el, encoding="utf-8"))
        return ET.Comment(f"{_SOURCE_MARK_TEXT}{len(self.source_xml) - 1}")

    def _note(self, parent, guid, title, text, author, created, modified) -> None:
        """A Note with its text both inline (``PlainTextContent``) and as the file ``plainTextPath`` names
        (QualCoder, for one, reads a note's text only from the file)."""
        el = sub(parent, "Note", {
            "guid": guid, "name": self.clean(title), "plainTextPath": f"internal://{guid}.txt",
            "creatingUser": self.user(author),
            "creationDateTime": xsd_datetime(created), "modifiedDateTime": xsd_datetime(modified),
        })
        sub(el, "PlainTextContent", text=self.clean(text or ""))
        self.files[f"sources/{guid}.txt"] = (text or "").encode("utf-8", "surrogatepass")

    def _noterefs(self, el, target_type: str, target_id) -> None:
        for g in self.memos_for.get((target_type, target_id), []):
            sub(el, "NoteRef", {"targetGUID": g})

    def _codebook(self, codes) -> ET.Element:
        cb = ET.Element(q("CodeBook"))
        codes_el = sub(cb, "Codes")
        children = defaultdict(list)
        ids = {r["id"] for r in codes}
        for r in codes:
            children[r["parent_id"] if r["parent_id"] in ids else None].append(r)

        def emit(parent_el, row, seen):
            if row["id"] in seen:  # defensive: a cycle in parent_id
                return
            seen = seen | {row["id"]}
            el = sub(parent_el, "Code", {"guid": self.code_guid[row["id"]], "name": self.clean(row["name"]),
                                         "isCodable": "false" if row["codable"] is False else "true",
                                         "color": valid_colour(row["colour"])})
            desc = compose_description(row)
            if desc:
                sub(el, "Description", text=self.clean(desc))
            self._noterefs(el, "code", row["id"])
            for child in children.get(row["id"], []):
                emit(el, child, seen)

        for row in children[None]:
            emit(codes_el, row, frozenset())
        self.counts["codes"] = len(codes)
        return cb if len(codes_el) else None

    def _variable(self, scope: str, name: str) -> str:
        key = (scope, name)
        if key not in self.variables:
            self.variables[key] = stable_guid("refi-variable", scope, name)
        return self.variables[key]

    def _value(self, el, scope: str, name: str, value) -> None:
        vv = sub(el, "VariableValue")
        sub(vv, "VariableRef", {"targetGUID": self._variable(scope, name)})
        sub(vv, "TextValue", text=self.clean("" if value is None else str(value)))

    def _cases(self, participants, sources):
        self.variables: dict[tuple[str, str], str] = {}
        attrs = defaultdict(dict)
        for r in self.conn.execute(select(S.participant_attributes)).mappings():
            attrs[r["participant_id"]][r["name"]] = r["value"]
        by_participant = defaultdict(list)
        for s in sources:
            if s["participant_id"] is not None:
                by_participant[s["participant_id"]].append(self.source_guid[s["id"]])
        self.source_attrs = defaultdict(dict)
        for r in self.conn.execute(select(S.source_attributes)).mappings():
            self.source_attrs[r["source_id"]][r["name"]] = r["value"]
        # Declare every variable before use (Variables precede Cases and Sources).
        for p in participants:
            for name in (["role"] if p["role"] else []) + (["site"] if p["site"] else []) + sorted(attrs[p["id"]]):
                self._variable("case", name)
        for s in sources:
            self._variable("source", KIND_VARIABLE)
            if s["date"]:
                self._variable("source", DATE_VARIABLE)
            for name in sorted(self.source_attrs[s["id"]]):
                self._variable("source", name)
        cases_el = ET.Element(q("Cases"))
        for p in participants:
            el = sub(cases_el, "Case", {"guid": self.case_guid[p["id"]], "name": self.clean(p["code"])})
            if p["role"]:
                self._value(el, "case", "role", p["role"])
            if p["site"]:
                self._value(el, "case", "site", p["site"])
            for name in sorted(attrs[p["id"]]):
                self._value(el, "case", name, attrs[p["id"]][name])
            for g in by_participant.get(p["id"], []):
                sub(el, "SourceRef", {"targetGUID": g})
        self.counts["cases"] = len(participants)
        variables_el = ET.Element(q("Variables"))
        for (scope, name), guid in sorted(self.variables.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            v = sub(variables_el, "Variable", {"guid": guid, "name": self.clean(name), "typeOfVariable": "Text"})
            sub(v, "Description", text=f"{'participant' if scope == 'case' else 'source'} attribute")
        return variables_el, cases_el

    def _segments_file(self, sources) -> None:
        """Segments (speaker turns, diary sections) have no REFI-QDA element: they travel in
        ``sp_realist/segments.json`` (other tools ignore it) so sp_realist can restore them."""
        seg = S.segments
        codes = dict(self.conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        out: dict[str, list] = {}
        for r in self.conn.execute(select(seg).order_by(seg.c.source_id, seg.c.ord)).mappings():
            g = self.source_guid.get(r["source_id"])
            if g is None:
                continue
            out.setdefault(g, []).append([r["start"], r["end"], r["kind"], r["speaker"], r["section"],
                                          r["start_time"], r["end_time"], codes.get(r["participant_id"])])
        if out:
            self.files[SEGMENTS_ENTRY] = json.dumps({"version": 1, "segments": out}, ensure_ascii=False,
                                                    sort_keys=True, separators=(",", ":")).encode("utf-8")
            self.counts["segments"] = sum(len(v) for v in out.values())

    def _sources(self, sources, codings, notes_el) -> ET.Element:
        self._segments_file(sources)
        self.used_selections: set[str] = set()
        self.span_selection: dict[tuple[int, int, int], str] = {}  # (source id, start, end) -> selection guid
        by_source = defaultdict(list)
        for r in codings:
            by_source[r.source_id].append(r)
        # excerpts (evidence, appraisals, uncoded selections) are selections too: their spans by source
        other_spans = defaultdict(list)
        for r in self.evidence + self.appraisals + list(self.excerpts.values()):
            other_spans[r["source_id"]].append((r["start"], r["end"]))
        coding_notes = {tid: gs for (ttype, tid), gs in self.memos_for.items() if ttype == "coding"}
        pid, code_guid, user, xsd_time, SubElement = self.pid, self.code_guid, self.user, self.xsd_time, ET.SubElement
        sources_el = ET.Element(q("Sources"))
        self.source_xml: list[bytes] = []  # each TextSource, serialised when built (see _streamed)
        for s in sources:
            guid = self.source_guid[s["id"]]
            self.files[f"sources/{guid}.txt"] = s["text"].encode("utf-8", "surrogatepass")
            el = ET.Element(q("TextSource"), {k: v for k, v in (
                ("guid", guid), ("name", self.clean(s["name"])), ("plainTextPath", f"internal://{guid}.txt"),
                ("creationDateTime", xsd_datetime(s["created_at"]))) if v is not None})
            spans = defaultdict(list)
            for r in by_source.get(s["id"], []):
                spans[(r.start, r.end)].append(r)
            for span in other_spans.get(s["id"], ()):
                spans.setdefault(span, [])
            appraisal_notes = defaultdict(list)
            for r in self.appraisals:
                if r["source_id"] == s["id"]:
                    appraisal_notes[(r["start"], r["end"])].append(self._appraisal_note(notes_el, r))
            for (start, end), group in sorted(spans.items()):
                # one selection per coder (peers take the coder from the selection), the uncoded excerpt
                # alone when nobody coded it; the span's first selection carries its appraisal notes and is
                # what CMOC evidence links point at
                if len(group) == 1:  # most spans: one coding
                    parts = [(group[0].coder, group)]
                else:
                    by_coder: dict = defaultdict(list)
                    for r in group:
                        by_coder[r.coder].append(r)
                    parts = sorted(by_coder.items()) or [(None, [])]
                excerpt = self.excerpts.get((s["id"], start, end))
                for i, (coder, rows) in enumerate(parts):
                    kept = {r.selection_guid for r in rows if r.selection_guid}
                    if not rows and excerpt is not None and excerpt["guid"]:
                        kept = {excerpt["guid"]}  # an uncoded selection's own GUID
                    sg = norm_guid(next(iter(kept))) if len(kept) == 1 else None
                    if sg is None or sg in self.used_selections:
                        sg = (stable_guid("refi-selection", guid, start, end) if i == 0
                              else stable_guid("refi-selection", guid, start, end, coder))
                    self.used_selections.add(sg)
                    if i == 0:
                        self.span_selection[(s["id"], start, end)] = sg
                    dated = [r for r in rows if r.dated is not False]
                    created = min(dated, key=lambda r: (r.created_at or "", r.id)).created_at if dated else None
                    if not rows and excerpt is not None and excerpt["dated"]:
                        created = excerpt["created_at"]  # an uncoded selection imported with a time keeps it
                    # what sub() writes (values as text, None left out), the attributes in the same order, built
                    # directly: one selection and one coding per coding of a project
                    who = user(coder)  # a selection's codings share its coder
                    attrs = {"guid": sg, "name": self.clean(_selection_name(s["text"], start, end)),
                             "startPosition": str(start), "endPosition": str(end)}
                    if who is not None:
                        attrs["creatingUser"] = who
                    when = xsd_time(created)
                    if when is not None:
                        attrs["creationDateTime"] = when
                    sel = SubElement(el, "PlainTextSelection", attrs)
                    for r in rows:
                        cg = guid_for(r.guid, pid, "coding", guid, r.start, r.end, code_guid[r.code_id], r.coder)
                        attrs = {"guid": cg}
                        if who is not None:
                            attrs["creatingUser"] = who
                        when = xsd_time(r.created_at) if r.dated is not False else None
                        if when is not None:
                            attrs["creationDateTime"] = when
                        cod = SubElement(sel, "Coding", attrs)
                        SubElement(cod, "CodeRef", {"targetGUID": code_guid[r.code_id]})
                        if r.memo:
                            ng = guid_for(None, pid, "coding-memo", cg)
                            self._note(notes_el, ng, "Coding memo", r.memo, r.coder, r.created_at, r.created_at)
                            self.counts["notes"] += 1
                            SubElement(cod, "NoteRef", {"targetGUID": ng})
                        for ng in coding_notes.get(r.id, ()):
                            SubElement(cod, "NoteRef", {"targetGUID": ng})
                    self.counts["codings"] += len(rows)
                    if i == 0:
                        for ng in appraisal_notes.get((start, end), []):
                            sub(sel, "NoteRef", {"targetGUID": ng})
                        if excerpt is not None:
                            self._noterefs(sel, "excerpt", excerpt["id"])
            self._noterefs(el, "source", s["id"])
            self._value(el, "source", KIND_VARIABLE, s["kind"])
            if s["date"]:
                self._value(el, "source", DATE_VARIABLE, s["date"])
            for name in sorted(self.source_attrs[s["id"]]):
                self._value(el, "source", name, self.source_attrs[s["id"]][name])
            sources_el.append(self._streamed(el))
        self.counts["sources"] = len(sources)
        return sources_el

    def _themes(self, themes, sets_el) -> None:
        members = defaultdict(list)
        for r in self.conn.execute(select(S.theme_codes)).mappings():
            members[r["theme_id"]].append(r["code_id"])
        for t in themes:
            el = sub(sets_el, "Set", {"guid": self.theme_guid[t["id"]], "name": self.clean(t["name"])})
            if t["description"]:
                sub(el, "Description", text=self.clean(t["description"]))
            for cid in sorted(members[t["id"]], key=lambda i: self.code_guid.get(i, "")):
                if cid in self.code_guid:
                    sub(el, "MemberCode", {"targetGUID": self.code_guid[cid]})
            for g in self.memos_for.get(("theme", t["id"]), []):
                sub(el, "MemberNote", {"targetGUID": g})
        self.counts["themes"] = len(themes)
        sets = self.rows(select(S.source_sets).order_by(S.source_sets.c.name))
        members = defaultdict(list)
        for r in self.conn.execute(select(S.source_set_members)).mappings():
            members[r["set_id"]].append(r["source_id"])
        for st in sets:
            el = sub(sets_el, "Set", {"guid": guid_for(st["guid"], self.pid, "source-set", st["name"]),
                                      "name": self.clean(st["name"])})
            if st["description"]:
                sub(el, "Description", text=self.clean(st["description"]))
            for g in sorted(self.source_guid[i] for i in members[st["id"]] if i in self.source_guid):
                sub(el, "MemberSource", {"targetGUID": g})
        self.counts["source sets"] = len(sets)

    def _cmocs(self, cmocs, theories, notes_el, links_el, sets_el, graphs_el) -> None:
        for m in cmocs:
            sguid = self.cmoc_guid[m["id"]]
            parts = []
            for col, label in CMOC_PARTS:
                if m[col]:
                    ng = guid_for(None, self.pid, "cmoc-part", sguid, col)
                    self._note(notes_el, ng, f"{m['key']} {label}", m[col], None, m["created_at"], m["updated_at"])
                    parts.append((ng, label))
            for (a, la), (b, lb) in zip(parts, parts[1:]):
                sub(links_el, "Link", {"guid": guid_for(None, self.pid, "cmoc-link", sguid, a, b),
                                       "name": f"{m['key']}: {la} -> {lb}", "direction": "OneWay",
                                       "originGUID": a, "targetGUID": b})
            extra = []
            if m["memo"]:
                ng = guid_for(None, self.pid, "cmoc-memo", sguid)
                self._note(notes_el, ng, f"{m['key']} memo", m["memo"], None, m["created_at"], m["updated_at"])
                extra.append(ng)
            if m["ifthen"]:  # the CMOC's own if/then wording: a member note outside the C -> M -> O links
                ng = guid_for(None, self.pid, "cmoc-ifthen", sguid)
                self._note(notes_el, ng, f"{m['key']} {IFTHEN_LABEL}", m["ifthen"], None, m["created_at"],
                           m["updated_at"])
                extra.append(ng)
            el = sub(sets_el, "Set", {"guid": sguid, "name": self.clean(f"CMOC {m['key']}")})
            desc = f"status: {m['status']}" + (f"; confidence: {m['confidence']}" if m["confidence"] else "")
            sub(el, "Description", text=desc)
            for g in [p[0] for p in parts] + extra + self.memos_for.get(("cmoc", m["id"]), []):
                sub(el, "MemberNote", {"targetGUID": g})
        self.counts["cmocs"] = len(cmocs)
        relations = self.rows(select(S.cmoc_relations).order_by(S.cmoc_relations.c.id))
        rel_guid = {}
        for r in relations:
            if r["from_id"] not in self.cmoc_guid or r["to_id"] not in self.cmoc_guid:
                continue
            g = guid_for(None, self.pid, "cmoc-relation", self.cmoc_guid[r["from_id"]], self.cmoc_guid[r["to_id"]],
                         r["kind"])
            rel_guid[r["id"]] = g
            sub(links_el, "Link", {"guid": g, "name": r["kind"],
                                   "direction": "Bidirectional" if r["kind"] == "contradicts" else "OneWay",
                                   "originGUID": self.cmoc_guid[r["from_id"]], "targetGUID": self.cmoc_guid[r["to_id"]]})
        members = defaultdict(list)
        for r in self.conn.execute(select(S.theory_cmocs).order_by(S.theory_cmocs.c.ord, S.theory_cmocs.c.cmoc_id)).mappings():
            members[r["theory_id"]].append(r["cmoc_id"])
        keys = {m["id"]: m["key"] for m in cmocs}
        for t in theories:
            tg = self.theory_guid[t["id"]]
            graph = sub(graphs_el, "Graph", {"guid": tg, "name": self.clean(f"{t['key']}: {t['title']}")})
            vertex = {}
            for i, cid in enumerate(members[t["id"]]):
                if cid not in self.cmoc_guid:
                    continue
                x, y = 40 + 240 * (i % 4), 40 + 160 * (i // 4)
                vg = guid_for(None, self.pid, "vertex", tg, self.cmoc_guid[cid])
                vertex[cid] = vg
                sub(graph, "Vertex", {"guid": vg, "representedGUID": self.cmoc_guid[cid], "name": keys[cid],
                                      "firstX": x, "firstY": y, "secondX": x + 200, "secondY": y + 110,
                                      "shape": "RoundedRectangle"})
            for r in relations:
                if r["from_id"] in vertex and r["to_id"] in vertex and r["id"] in rel_guid:
                    sub(graph, "Edge", {"guid": guid_for(None, self.pid, "edge", tg, rel_guid[r["id"]]),
                                        "representedGUID": rel_guid[r["id"]], "name": r["kind"],
                                        "sourceVertex": vertex[r["from_id"]], "targetVertex": vertex[r["to_id"]],
                                        "direction": "Bidirectional" if r["kind"] == "contradicts" else "OneWay",
                                        "lineStyle": "dashed" if r["kind"] == "contradicts" else "solid"})
            # the theory's own text as a note in a set (graphs carry no notes)
            ng = guid_for(None, self.pid, "theory-note", tg)
            text = t["description"] or ""
            if t["questions"]:
                try:
                    qs = json.loads(t["questions"])
                except ValueError:
                    qs = [t["questions"]]
                text += ("\n\n" if text else "") + "Evaluation questions: " + ", ".join(map(str, qs))
            self._note(notes_el, ng, f"{t['key']}: {t['title']}", text, None, t["created_at"], t["updated_at"])
            el = sub(sets_el, "Set", {"guid": guid_for(None, self.pid, "theory-set", tg),
                                      "name": self.clean(f"Theory {t['key']}: {t['title']}")})
            for g in [ng] + self.memos_for.get(("theory", t["id"]), []):
                sub(el, "MemberNote", {"targetGUID": g})
        self.counts["theories"] = len(theories)

    def _appraisal_note(self, notes_el, r) -> str:
        """An appraisal as a note on its excerpt's selection: readable YAML other tools show as a memo."""
        import yaml

        keys, tkeys = self.cmoc_keys, self.theory_keys
        body = {k: r[k] for k in APPRAISAL_FIELDS if r[k] is not None}
        if r["cmoc_id"] in keys:
            body["cmoc"] = keys[r["cmoc_id"]]
        if r["theory_id"] in tkeys:
            body["theory"] = tkeys[r["theory_id"]]
        text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
        g = guid_for(None, self.pid, "appraisal", r["id"], r["analyst"])
        self._note(notes_el, g, f"Appraisal ({r['analyst']})", text, r["analyst"], r["created_at"], r["updated_at"])
        self.counts["appraisals"] += 1
        return g

    def _evidence(self, links_el, notes_el) -> None:
        """CMOC evidence: a Link from the excerpt's selection to the CMOC's set, with the analyst's note."""
        n = 0
        for r in self.evidence:
            if r["cmoc_id"] not in self.cmoc_guid or r["source_id"] not in self.source_guid:
                continue
            sel = self.span_selection[(r["source_id"], r["start"], r["end"])]
            cg = self.cmoc_guid[r["cmoc_id"]]
            lg = guid_for(None, self.pid, "evidence", cg, sel, r["role"])
            name = f"evidence: {r['role']}" + (f" ({r['component']})" if r["component"] else "")
            link = sub(links_el, "Link", {"guid": lg, "name": name, "direction": "OneWay", "originGUID": sel,
                                          "targetGUID": cg})
            if r["analyst"] or r["note"]:
                ng = guid_for(None, self.pid, "evidence-note", lg)
                self._note(notes_el, ng, "Evidence note", r["note"] or "", r["analyst"], r["created_at"],
                           r["created_at"])
                sub(link, "NoteRef", {"targetGUID": ng})
            n += 1
        self.counts["evidence"] = n

    def _memo_links(self, memos, links_el) -> None:
        """Memos on targets without NoteRef in REFI-QDA (participants) become Links note -> target."""
        for m in memos:
            if m["target_type"] == "participant" and m["target_id"] in self.case_guid:
                g = self.memo_guid[m["id"]]
                sub(links_el, "Link", {"guid": guid_for(None, self.pid, "memo-link", g), "name": "memo",
                                       "direction": "OneWay", "originGUID": g,
                                       "targetGUID": self.case_guid[m["target_id"]]})

    def _losses(self) -> None:
        c = self.conn
        n = lambda t: c.execute(select(func.count()).select_from(t)).scalar_one()  # noqa: E731
        segs = n(S.segments)
        if segs:
            self.losses.append(f"{segs} segment(s) (speaker turns, diary sections) have no REFI-QDA element: other "
                               f"tools will not see them (they travel in {SEGMENTS_ENTRY} for sp_realist)")
        if n(S.code_rules):
            self.losses.append(f"{n(S.code_rules)} autocoding rule(s) are not exported (REFI-QDA has no rules)")
        if n(S.appraisal_history):
            self.losses.append(f"{n(S.appraisal_history)} appraisal history entr(y/ies) are not exported "
                               "(the current appraisals are, as notes on their excerpts)")
        if n(S.theory_history):
            self.losses.append(f"{n(S.theory_history)} theory history entr(y/ies) are not exported")
        sub_themes = c.execute(select(func.count()).select_from(S.themes).where(S.themes.c.parent_id.is_not(None))).scalar_one()
        if sub_themes or n(S.themes):
            self.losses.append("theme phases and sub-theme nesting are not exported (REFI-QDA sets are flat)")
        if self.stripped:
            self.losses.append(f"{self.stripped} character(s) that XML 1.0 cannot hold were left out of names, "
                               "descriptions and notes (source texts are exported unchanged)")


#: The comment standing for a TextSource written ahead (``<!--...N-->``; a comment in the XML can only be one of
#: these: text and attributes escape ``<``).
_SOURCE_MARK_TEXT = "sp_realist:source:"
_SOURCE_MARK = re.compile(rb"<!--sp_realist:source:(\d+)-->")

#: A coding row as the export reads it.
_Coding = namedtuple("_Coding", ["id", "code_id", "source_id", "start", "end", "coder", "memo", "guid", "created_at",
                                 "dated", "selection_guid"])


def _selection_name(text: str, start: int, end: int, limit: int = 60) -> str:
    """A selection's display name: its first words, like ATLAS.ti's quotation names."""
    s = " ".join(text[start:end].split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def build_qdpx(project: Project, name: str | None = None) -> tuple[bytes, dict[str, bytes], _Builder]:
    """``(project.qde bytes, {zip path: bytes}, builder)`` for a project, without writing anything."""
    name = name or project.name
    with project.connect() as conn, cycle_collection_paused():
        b = _Builder(conn, name)
        qde = b.build()
    return qde, b.files, b


def write_zip(out: Path, entries: list[tuple[str, bytes]], check: Callable[[Path], None] | None = None) -> None:
    """Write a deterministic zip atomically (temp file in the same folder, then rename).

    ``check(temp_path)`` runs on the finished archive before it is moved into
    place; if it raises, nothing is written.
    """
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=out.suffix, dir=str(out.parent))
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                info = zipfile.ZipInfo(name, ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_qdpx(project: Project, out: str | os.PathLike, force: bool = False,
                progress: Callable[[int, int], None] | None = None,
                key: str | os.PathLike | None = None) -> ExportResult:
    """Export ``project`` to the REFI-QDA file ``out`` (``.qdpx``).

    Refuses to overwrite an existing file unless ``force``.  Returns the
    counts written and one line per kind of information REFI-QDA cannot carry.
    With a pseudonym ``key`` (or ``$SP_REALIST_KEY``; required when the project
    has an applied key) the archive is audited before it is moved into place:
    :class:`~sp_realist.errors.CheckFailed` and nothing written if a real name
    would leak.
    """
    from ..privacy.audit import check_output, output_audit_key

    out = Path(out)
    if out.exists() and not force:
        raise SpRealistError(f"{out}: already exists; choose another name or pass --force to overwrite it.")
    if not out.parent.exists():
        raise SpRealistError(f"{out}: the folder {out.parent} does not exist; create it first.")
    audit_key = output_audit_key(project, key)
    qde, files, b = build_qdpx(project)
    entries = [("project.qde", qde)] + sorted(files.items())
    if progress:
        progress(len(entries), len(entries))
    write_zip(out, entries, None if audit_key is None else (lambda tmp: check_output(tmp, audit_key, out)))
    return ExportResult(str(out), dict(b.counts), list(b.losses))


def qde_bytes(project: Project, name: str | None = None) -> bytes:
    """Just the ``project.qde`` XML (handy for inspection and tests)."""
    return build_qdpx(project, name)[0]


__all__ = ["export_qdpx", "build_qdpx", "qde_bytes", "ExportResult", "write_zip", "KIND_VARIABLE", "DATE_VARIABLE"]

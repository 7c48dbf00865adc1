"""Import REFI-QDA project exchange files (``.qdpx``) written by any tool.

Reading is separate from writing: :func:`read_qdpx` turns the archive into a
:class:`QdpxPlan` (everything checked and converted, nothing written), and
:func:`apply_plan` writes the plan into a project in one transaction.  A file
that cannot be read raises before the project is touched.

Tolerated deviations from the standard (each reported as a note or a loss):

* the ``.qde`` not named ``project.qde`` (``Project.QDE``, ``export.qde``, in a
  sub-folder), ``Sources/`` instead of ``sources/``, file names in another case;
* other namespaces (``urn:QDA-XML:project:0:10`` from older exporters), a BOM
  before the XML or the source text, missing optional attributes;
* sources given only as rich text (``richTextPath`` to a .docx, no plain
  text): the text is extracted with python-docx, paragraphs joined by ``\\n``;
* text files in UTF-16 or Windows-1252 instead of UTF-8;
* positions counted other than in code points (UTF-16 units, UTF-8 bytes,
  CRLF as one, LF as two, a counted BOM): detected per source, converted, and
  every converted selection verified to select the same text the other tool
  selected (see :mod:`sp_realist.exchange.positions`).

What sp_realist has no place for (pictures, audio and video, PDF regions,
graphs, links between arbitrary objects) is counted and reported, one line per
kind, in :attr:`ImportResult.losses`.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import SpRealistError
from ..cmoc.appraisal import set_appraisal_conn
from ..cmoc.cmocs import link_evidence_conn
from ..coding.codings import insert_codings, set_coding_memo
from ..coding.memos import insert_memo
from ..sources import (Segment, SourceDraft, add_source, add_source_set, ensure_participant, get_or_create_excerpt,
                       keep_participant_guid, link_source_participant, set_attribute, sha256_bytes)
from ..store import Project, now, stable_guid
from . import positions as P
from .common import (CodePlan, ImportResult, ThemePlan, apply_codes, apply_themes, apply_users, norm_guid,
                     repair_foreign_guids, store_datetime)
from .qdpx_export import DATE_VARIABLE, KIND_VARIABLE, SEGMENTS_ENTRY
from .safety import ExchangeError, SafeZip, local, open_zip, parse_xml

TEXT_KINDS = set(S.SOURCE_KINDS)


# --- plan ---------------------------------------------------------------------
@dataclass
class CodingPlan:
    guid: str | None
    code: str  # code guid
    user: str | None
    created: str | None
    notes: list[str] = field(default_factory=list)


@dataclass
class SelPlan:
    guid: str | None
    name: str | None
    start: int
    end: int
    user: str | None
    created: str | None
    description: str | None = None
    codings: list[CodingPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    span: tuple[int, int] | None = None  # code-point span once resolved


@dataclass
class SourcePlan:
    guid: str
    name: str
    text: str
    kind: str
    origin: str  # "plain text", "docx", "inline"
    has_bom: bool = False
    date: str | None = None
    created: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    sels: list[SelPlan] = field(default_factory=list)
    whole: list[CodingPlan] = field(default_factory=list)  # codings of the whole source
    notes: list[str] = field(default_factory=list)
    description: str | None = None
    convention: str = P.CODEPOINTS
    segments: list[Segment] | None = None  # restored from sp_realist/segments.json


@dataclass
class CasePlan:
    guid: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    description: str | None = None


@dataclass
class SourceSetPlan:
    guid: str
    name: str
    description: str | None = None
    sources: list[str] = field(default_factory=list)  # source guids


@dataclass
class NotePlan:
    guid: str
    title: str | None
    text: str
    user: str | None
    created: str | None
    modified: str | None


@dataclass
class CmocPlan:
    guid: str
    key: str
    parts: dict[str, str] = field(default_factory=dict)
    memo: str | None = None
    ifthen: str | None = None
    status: str = "partial"
    confidence: str | None = None
    created: str | None = None
    modified: str | None = None


@dataclass
class TheoryPlan:
    guid: str
    key: str
    title: str
    cmocs: list[str] = field(default_factory=list)  # cmoc guids in order
    description: str | None = None
    questions: list[str] | None = None
    created: str | None = None
    modified: str | None = None


@dataclass
class QdpxPlan:
    name: str
    origin: str
    users: dict[str, str] = field(default_factory=dict)  # guid -> name
    codes: list[CodePlan] = field(default_factory=list)
    sources: list[SourcePlan] = field(default_factory=list)
    cases: list[CasePlan] = field(default_factory=list)
    notes: dict[str, NotePlan] = field(default_factory=dict)
    note_targets: list[tuple[str, str, str | None]] = field(default_factory=list)  # (note, type, target guid)
    themes: list[ThemePlan] = field(default_factory=list)
    source_sets: list["SourceSetPlan"] = field(default_factory=list)
    cmocs: list["CmocPlan"] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (from cmoc guid, to cmoc guid, kind)
    theories: list["TheoryPlan"] = field(default_factory=list)
    # CMOC evidence: (source guid, selection, cmoc guid, role, component, analyst user guid, note text, created)
    evidence: list[tuple] = field(default_factory=list)
    appraisals: list[tuple] = field(default_factory=list)  # (source guid, selection, note plan, fields)
    result: ImportResult = field(default_factory=lambda: ImportResult(""))


# --- XML helpers --------------------------------------------------------------
def kids(el, name: str):
    return [c for c in el if local(c.tag) == name]


def kid(el, name: str):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text_of(el, name: str) -> str | None:
    c = kid(el, name)
    return c.text if c is not None and c.text is not None else None


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


class _Reader:
    def __init__(self, zf: SafeZip, where: str, result: ImportResult):
        self.zf = zf
        self.where = where
        self.result = result
        self.lost: Counter = Counter()
        self.by_base: dict[str, str] = {}
        for n in zf.names:
            self.by_base.setdefault(posixpath.basename(n).casefold(), n)
        self.used_paths: dict[str, str] = {}  # entry -> source guid (transcripts share files)
        self.sel_index: dict[str, tuple[str, SelPlan]] = {}  # selection guid -> (source guid, selection)
        self.fresh = 0
        self.docx_only = self.docx_for_empty = self.file_named = self.pdf_files = 0
        self.external_example: str | None = None

    def guid(self, el, what: str) -> str:
        g = norm_guid(el.get("guid"))
        if g is None:
            self.fresh += 1
            g = stable_guid("import", self.where, what, self.fresh)
            self.lost["missing-guid"] += 1
        return g

    # -- files ---------------------------------------------------------------
    def entry(self, url: str | None) -> str | None:
        """The zip entry a file reference names, if it is inside the archive.

        Accepted: ``internal://name``, a bare or relative file name (``board_2017.txt``,
        ``sources/board_2017.txt``, ``Sources\\Board_2017.TXT``), in any case and with ``\\`` or ``/``;
        looked up as given, under ``sources/``, then by its base name.  Never followed: URLs of another
        scheme (``relative://``, ``absolute://``, ``file://``), absolute paths and paths climbing out with
        ``..`` (counted, with the first one named in the message).
        """
        found, outside = self.locate(url)
        if outside:
            self.lost["external"] += 1
            self.external_example = self.external_example or url.strip()
        return found

    def locate(self, url: str | None) -> tuple[str | None, bool]:
        """``(entry or None, whether the reference points outside the archive)``; counts nothing."""
        if not url or not url.strip():
            return None, False
        raw = url.strip()
        if raw.lower().startswith("internal://"):
            name = raw[len("internal://"):]
        elif "://" in raw or raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
            return None, True
        else:
            name = raw
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            return None, True
        return (self._lookup("/".join(parts)) if parts else None), False

    def _lookup(self, name: str) -> str | None:
        for cand in (name, f"sources/{name}"):
            found = self.zf.lookup(cand)
            if found:
                return found
        return self.by_base.get(posixpath.basename(name).casefold())

    def decode(self, data: bytes, label: str) -> tuple[str, bool]:
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8", "strict"), True
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.result.note("some source texts were UTF-16 (the standard says UTF-8); decoded as UTF-16")
            return data.decode("utf-16"), True
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            self.result.note("some source texts were not UTF-8 (the standard requires it); decoded as Windows-1252")
            return data.decode("cp1252", "replace"), False

    def docx_text(self, data: bytes, label: str) -> str:
        import docx  # python-docx

        inner = open_zip(io.BytesIO(data), label=f"{self.where}: {label}")  # vet the docx's own zip
        inner.close()
        try:
            document = docx.Document(io.BytesIO(data))
        except Exception as exc:  # python-docx raises many kinds for a damaged file
            raise ExchangeError(f"{self.where}: {label} is not a readable .docx ({exc}); re-export the project.") from None
        return "\n".join(p.text for p in document.paragraphs)

    def source_text(self, el, label: str) -> tuple[str, str, bool] | None:
        """``(text, origin, has_bom)`` of a text-bearing element, or None if it has none here.

        The plain text is used; when it is missing or empty and the rich text (.docx) holds text, the
        rich text is (selections are then read, and verified, against that text).
        """
        inline = kid(el, "PlainTextContent")
        if inline is not None:
            return inline.text or "", "inline", False
        plain_ref, rich_ref = el.get("plainTextPath"), el.get("richTextPath")
        path = self.entry(plain_ref)
        rich = self.entry(rich_ref)
        plain = None
        if path:
            text, bom = self.decode(self.zf.read(path), path)
            plain = (text, "plain text", bom)
            if text.strip():
                return plain
        elif plain_ref and not self.locate(plain_ref)[1]:
            self.lost["missing-file"] += 1
        if rich and rich.lower().endswith(".docx"):
            text = self.docx_text(self.zf.read(rich), rich)
            if plain is None:
                self.docx_only += 1
                return text, "docx", False
            if text.strip():
                self.docx_for_empty += 1
                return text, "docx", False
        elif rich:
            self.lost["rich-other"] += 1
        return plain

    # -- elements --------------------------------------------------------------
    def codes(self, parent, parent_guid, out: list[CodePlan]) -> None:
        for el in kids(parent, "Code"):
            g = self.guid(el, "code")
            name = (el.get("name") or "").strip() or f"Code {g[:8]}"
            codable = (el.get("isCodable") or "true").strip().lower() not in ("false", "0")
            out.append(CodePlan(g, name, parent_guid, text_of(el, "Description"), el.get("color"), codable))
            for n in kids(el, "NoteRef"):
                self.note_ref(n, "code", g)
            self.codes(el, g, out)

    def note_ref(self, el, target_type: str, target: str | None) -> None:
        g = norm_guid(el.get("targetGUID"))
        if g:
            self.plan.note_targets.append((g, target_type, target))

    def coding(self, el) -> CodingPlan | None:
        ref = kid(el, "CodeRef")
        code = norm_guid(ref.get("targetGUID")) if ref is not None else None
        if code is None:
            self.lost["coding-no-code"] += 1
            return None
        c = CodingPlan(norm_guid(el.get("guid")), code, norm_guid(el.get("creatingUser")),
                       store_datetime(el.get("creationDateTime")))
        c.notes = [g for g in (norm_guid(n.get("targetGUID")) for n in kids(el, "NoteRef")) if g]
        return c

    def variables_of(self, el) -> dict[str, str]:
        out = {}
        for vv in kids(el, "VariableValue"):
            ref = kid(vv, "VariableRef")
            var = self.variables.get(norm_guid(ref.get("targetGUID")) if ref is not None else None)
            if var is None:
                self.lost["variable-unknown"] += 1
                continue
            value = None
            for c in vv:
                if local(c.tag).endswith("Value") and local(c.tag) != "VariableRef":
                    value = (c.text or "").strip()
            if value is not None:
                out[var] = value
        return out

    def text_source(self, el, kind: str, label_default: str) -> None:
        g = self.guid(el, "source")
        got = self.source_text(el, el.get("name") or g)
        if got is None:
            self.lost["no-text"] += 1
            return
        text, origin, bom = got
        path = self.locate(el.get("plainTextPath"))[0] if origin == "plain text" else None
        if path and path in self.used_paths:
            # a transcript sharing its text file with a TextSource already read
            self.alias[g] = self.used_paths[path]
            self.result.note("transcripts that share their text file with a text source were imported once")
            return
        if path:
            self.used_paths[path] = g
        name = (el.get("name") or "").strip()
        if not name:
            ref = path or self.locate(el.get("plainTextPath"))[0] or self.locate(el.get("richTextPath"))[0] or ""
            name = posixpath.splitext(posixpath.basename(ref))[0].strip()
            if name:
                self.file_named += 1
            else:
                name = label_default
        attrs = self.variables_of(el)
        sp = SourcePlan(g, name, text, kind, origin, has_bom=bom, created=store_datetime(el.get("creationDateTime")),
                        attrs=attrs, description=text_of(el, "Description"))
        k = attrs.pop(KIND_VARIABLE, None)
        if k in TEXT_KINDS:
            sp.kind = k
        sp.date = attrs.pop(DATE_VARIABLE, None)
        for sel in kids(el, "PlainTextSelection"):
            start, end = _int(sel.get("startPosition")), _int(sel.get("endPosition"))
            if start is None or end is None:
                self.lost["selection-no-position"] += 1
                continue
            if start > end:
                start, end = end, start
            s = SelPlan(norm_guid(sel.get("guid")), sel.get("name"), start, end, norm_guid(sel.get("creatingUser")),
                        store_datetime(sel.get("creationDateTime")), text_of(sel, "Description"))
            s.codings = [c for c in (self.coding(c) for c in kids(sel, "Coding")) if c]
            if s.guid:
                self.sel_index[s.guid] = (g, s)
            s.notes = [n for n in (norm_guid(x.get("targetGUID")) for x in kids(sel, "NoteRef")) if n]
            sp.sels.append(s)
        sp.whole = [c for c in (self.coding(c) for c in kids(el, "Coding")) if c]
        sp.notes = [n for n in (norm_guid(x.get("targetGUID")) for x in kids(el, "NoteRef")) if n]
        self.plan.sources.append(sp)

    def sources(self, el) -> None:
        self.alias: dict[str, str] = {}
        for s in el:
            tag = local(s.tag)
            if tag == "TextSource":
                self.text_source(s, "document", "Text source")
            elif tag == "PDFSource":
                rep = kid(s, "Representation")
                if kids(s, "PDFSelection"):
                    self.lost["pdf-selection"] += len(kids(s, "PDFSelection"))
                if rep is not None:
                    if rep.get("name") is None and s.get("name"):
                        rep.set("name", s.get("name"))
                    for vv in kids(s, "VariableValue"):
                        rep.append(vv)
                    self.text_source(rep, "document", "PDF text")
                    if s.get("path"):  # a PDF file was involved: it is not kept, its text is
                        self.pdf_files += 1
                else:
                    self.lost["pdf"] += 1
            elif tag in ("AudioSource", "VideoSource"):
                self.lost["media"] += 1
                for t in kids(s, "Transcript"):
                    self.text_source(t, "interview", "Transcript")
                    if kids(t, "TranscriptSelection"):
                        self.lost["transcript-selection"] += len(kids(t, "TranscriptSelection"))
                n = len(kids(s, "AudioSelection")) + len(kids(s, "VideoSelection"))
                if n:
                    self.lost["media-selection"] += n
            elif tag == "PictureSource":
                self.lost["picture"] += 1
                if kids(s, "PictureSelection"):
                    self.lost["picture-selection"] += len(kids(s, "PictureSelection"))

    def realist(self, root) -> tuple[set[str], set[str]]:
        """Recognise CMOCs and theories as sp_realist exports them (sets of component notes,
        C -> M -> O links, one graph per theory); return the set and link GUIDs consumed."""
        import re as _re

        from .qdpx_export import CMOC_PARTS, IFTHEN_LABEL

        plan = self.plan
        labels = {label: col for col, label in CMOC_PARTS}
        sets_el, links_el, graphs_el = kid(root, "Sets"), kid(root, "Links"), kid(root, "Graphs")
        sets = kids(sets_el, "Set") if sets_el is not None else []
        consumed_sets: set[str] = set()
        consumed_links: set[str] = set()
        cmoc_by_guid: dict[str, CmocPlan] = {}
        part_notes: dict[str, str] = {}  # note guid -> cmoc guid
        for st in sets:
            m = _re.match(r"^CMOC (.+)$", st.get("name") or "")
            g = norm_guid(st.get("guid"))
            if not m or not g:
                continue
            key = m.group(1).strip()
            cp = CmocPlan(g, key)
            desc = text_of(st, "Description") or ""
            for k, v in _re.findall(r"(status|confidence): ([^;]+)", desc):
                setattr(cp, k, v.strip())
            others = []
            for mn in kids(st, "MemberNote"):
                ng = norm_guid(mn.get("targetGUID") or mn.get("guid") or (mn.text or "").strip())
                note = plan.notes.get(ng)
                if note is None:
                    continue
                title = note.title or ""
                label = title[len(key) + 1:] if title.startswith(key + " ") else None
                if label in labels:
                    cp.parts[labels[label]] = note.text
                elif label == "memo":
                    cp.memo = note.text
                elif label == IFTHEN_LABEL:
                    cp.ifthen = " ".join((note.text or "").split()) or None
                else:
                    others.append(ng)
                    continue
                part_notes[ng] = g
                cp.created = cp.created or note.created
                cp.modified = max(filter(None, [cp.modified, note.modified]), default=None)
            if not cp.parts and cp.memo is None and cp.ifthen is None:
                continue
            consumed_sets.add(g)
            cmoc_by_guid[g] = cp
            plan.cmocs.append(cp)
            for ng in others:
                plan.note_targets.append((ng, "cmoc", g))
        for ng in part_notes:
            plan.notes.pop(ng, None)
        for ln in (kids(links_el, "Link") if links_el is not None else []):
            a, b, lg = norm_guid(ln.get("originGUID")), norm_guid(ln.get("targetGUID")), norm_guid(ln.get("guid"))
            if a in part_notes and b in part_notes and part_notes[a] == part_notes[b]:
                consumed_links.add(lg)
            elif a in cmoc_by_guid and b in cmoc_by_guid and ln.get("name") in ("refines", "contradicts", "chains"):
                plan.relations.append((a, b, ln.get("name")))
                consumed_links.add(lg)
            elif a in self.sel_index and b in cmoc_by_guid:
                m = _re.match(r"^evidence: (supports|refutes)(?: \((\w+)\))?$", ln.get("name") or "")
                if not m:
                    continue
                note = None
                for nr in kids(ln, "NoteRef"):
                    note = plan.notes.pop(norm_guid(nr.get("targetGUID")), None) or note
                src_guid, sel = self.sel_index[a]
                plan.evidence.append((src_guid, sel, b, m.group(1), m.group(2), note.user if note else None,
                                      (note.text or None) if note else None, note.created if note else None))
                consumed_links.add(lg)
        for src_guid, sel in self.sel_index.values():
            for ng in list(sel.notes):
                note = plan.notes.get(ng)
                fields = _appraisal_fields(note)
                if fields is not None:
                    plan.appraisals.append((src_guid, sel, note, fields))
                    plan.notes.pop(ng)
                    sel.notes.remove(ng)
        theory_sets = {}
        for st in sets:
            m = _re.match(r"^Theory (.+?): (.*)$", st.get("name") or "")
            if m and norm_guid(st.get("guid")):
                theory_sets[m.group(1)] = st
        for gr in (kids(graphs_el, "Graph") if graphs_el is not None else []):
            m = _re.match(r"^(\S+): (.*)$", gr.get("name") or "")
            reps = [norm_guid(v.get("representedGUID")) for v in kids(gr, "Vertex")]
            if not m or not reps or not all(r in cmoc_by_guid for r in reps):
                continue
            tp = TheoryPlan(norm_guid(gr.get("guid")) or stable_guid("theory", m.group(1)), m.group(1), m.group(2),
                            reps)
            st = theory_sets.get(tp.key)
            if st is not None:
                consumed_sets.add(norm_guid(st.get("guid")))
                for mn in kids(st, "MemberNote"):
                    ng = norm_guid(mn.get("targetGUID") or mn.get("guid") or (mn.text or "").strip())
                    note = plan.notes.get(ng)
                    if note is None:
                        continue
                    if note.title == f"{tp.key}: {tp.title}" and tp.description is None:
                        body, _, qs = note.text.partition("Evaluation questions: ")
                        tp.description = body.strip() or None
                        tp.questions = [q.strip() for q in qs.split(",") if q.strip()] or None
                        tp.created, tp.modified = note.created, note.modified
                        plan.notes.pop(ng, None)
                    else:
                        plan.note_targets.append((ng, "theory", tp.guid))
            plan.theories.append(tp)
        return consumed_sets, consumed_links

    def read(self, root) -> QdpxPlan:
        self.plan = plan = QdpxPlan(name=root.get("name") or "", origin=(root.get("origin") or "").strip(),
                                    result=self.result)
        users = kid(root, "Users")
        for u in (kids(users, "User") if users is not None else []):
            g = norm_guid(u.get("guid"))
            if g:
                plan.users[g] = (u.get("name") or u.get("id") or "").strip() or f"user {g[:8]}"
        cb = kid(root, "CodeBook")
        codes_el = kid(cb, "Codes") if cb is not None else None
        if codes_el is not None:
            self.codes(codes_el, None, plan.codes)
        self.variables: dict[str, str] = {}
        var_el = kid(root, "Variables")
        for v in (kids(var_el, "Variable") if var_el is not None else []):
            g = norm_guid(v.get("guid"))
            if g and v.get("name"):
                self.variables[g] = v.get("name").strip()
        src_el = kid(root, "Sources")
        self.alias = {}
        if src_el is not None:
            self.sources(src_el)
        cases_el = kid(root, "Cases")
        for c in (kids(cases_el, "Case") if cases_el is not None else []):
            g = self.guid(c, "case")
            cp = CasePlan(g, (c.get("name") or "").strip() or f"Case {g[:8]}", self.variables_of(c),
                          description=text_of(c, "Description"))
            cp.sources = [self.alias.get(x, x) for x in (norm_guid(r.get("targetGUID")) for r in kids(c, "SourceRef")) if x]
            if kids(c, "SelectionRef"):
                self.lost["case-selection"] += len(kids(c, "SelectionRef"))
            if kids(c, "CodeRef"):
                self.lost["case-code"] += len(kids(c, "CodeRef"))
            plan.cases.append(cp)
        notes_el = kid(root, "Notes")
        for n in (kids(notes_el, "Note") if notes_el is not None else []):
            g = self.guid(n, "note")
            got = self.source_text(n, n.get("name") or g)
            text = got[0] if got else (text_of(n, "Description") or "")
            desc = text_of(n, "Description")
            if got and desc and desc.strip() and desc.strip() not in text:
                text = f"{desc.strip()}\n\n{text}"
            plan.notes[g] = NotePlan(g, n.get("name"), text, norm_guid(n.get("creatingUser")),
                                     store_datetime(n.get("creationDateTime")), store_datetime(n.get("modifiedDateTime")))
            if kids(n, "PlainTextSelection"):
                self.lost["note-selection"] += len(kids(n, "PlainTextSelection"))
        known = {c.guid for c in plan.codes}
        source_guids = {s.guid for s in plan.sources}
        case_guids = {c.guid for c in plan.cases}
        coding_guids = {c.guid for s in plan.sources for sel in s.sels for c in sel.codings if c.guid}
        sets_el = kid(root, "Sets")
        consumed_sets, consumed_links = self.realist(root)
        for st in (kids(sets_el, "Set") if sets_el is not None else []):
            if norm_guid(st.get("guid")) in consumed_sets:
                continue
            g = self.guid(st, "set")
            name = (st.get("name") or "").strip() or f"Set {g[:8]}"
            # the standard uses targetGUID; Transana writes guid="..." or the GUID as element text
            def members(tag):
                return [x for x in (norm_guid(m.get("targetGUID") or m.get("guid") or (m.text or "").strip())
                                    for m in kids(st, tag)) if x]

            mcodes = members("MemberCode")
            msources = [self.alias.get(x, x) for x in members("MemberSource")]
            mnotes = members("MemberNote")
            if mcodes:
                plan.themes.append(ThemePlan(g, name, text_of(st, "Description"), mcodes, mnotes))
                for ng in mnotes:
                    plan.note_targets.append((ng, "theme", g))
            if msources:
                plan.source_sets.append(SourceSetPlan(g, name, text_of(st, "Description"),
                                                      [sg for sg in msources if sg in source_guids]))
            if not mcodes and not msources:
                self.lost["note-set"] += 1
        links_el = kid(root, "Links")
        for ln in (kids(links_el, "Link") if links_el is not None else []):
            if norm_guid(ln.get("guid")) in consumed_links:
                continue
            a, b = norm_guid(ln.get("originGUID")), norm_guid(ln.get("targetGUID"))
            note, other = (a, b) if a in plan.notes else (b, a) if b in plan.notes else (None, None)
            target_type = ("code" if other in known else "source" if other in source_guids else
                           "participant" if other in case_guids else "coding" if other in coding_guids else None)
            if note and target_type:
                plan.note_targets.append((note, target_type, other))
            else:
                self.lost["link"] += 1
        graphs_el = kid(root, "Graphs")
        theory_graphs = {t.guid for t in plan.theories}
        other_graphs = [g for g in (kids(graphs_el, "Graph") if graphs_el is not None else [])
                        if norm_guid(g.get("guid")) not in theory_graphs]
        if other_graphs:
            self.lost["graph"] += len(other_graphs)
        for n in kids(root, "NoteRef"):
            self.note_ref(n, "project", None)
        return plan


LOSS_LINES = {
    "picture": "{n} picture source(s) not imported (sp_realist holds text only)",
    "picture-selection": "{n} picture selection(s) (image regions) not imported",
    "pdf": "{n} PDF source(s) without a plain-text representation not imported",
    "pdf-selection": "{n} PDF region selection(s) not imported (their text representations were, where given)",
    "media": "{n} audio/video source(s): the media is not imported (their transcripts are)",
    "media-selection": "{n} audio/video time selection(s) not imported",
    "transcript-selection": "{n} transcript selection(s) (sync-point based) not imported",
    "external": "{n} file reference(s) point outside the archive (the first: {example}) and were not followed",
    "missing-file": "{n} text file reference(s) name a file that is not in the archive",
    "rich-other": "{n} rich-text source(s) in a format other than .docx without plain text",
    "no-text": "{n} source(s) had no readable text and were not imported",
    "coding-no-code": "{n} coding(s) without a code reference skipped",
    "selection-no-position": "{n} selection(s) without numeric positions skipped",
    "variable-unknown": "{n} variable value(s) referring to undeclared variables skipped",
    "case-selection": "{n} case-to-selection reference(s) not imported (cases link to whole sources)",
    "case-code": "{n} case-to-code reference(s) not imported",
    "note-selection": "{n} selection(s) inside notes not imported (the note text is)",
    "note-set": "{n} empty set(s) or set(s) of notes only were not imported as sets (their notes were)",
    "link": "{n} link(s) between objects not imported (only note links are kept, as memos)",
    "graph": "{n} graph(s) (network views) not imported",
    "missing-guid": "{n} element(s) without a GUID were given new GUIDs",
}


def _resolve_positions(plan: QdpxPlan) -> None:
    """Choose each source's counting convention (project-wide votes break ties) and convert."""
    result = plan.result
    first = {}
    votes: Counter = Counter()
    ours = plan.origin.startswith("sp_realist")  # we write code points, as the standard says
    for sp in plan.sources:
        sels = [P.Sel(i, s.start, s.end, s.name) for i, s in enumerate(sp.sels)]
        res = P.resolve(sp.text, sels, sp.has_bom, trust_standard=ours)
        first[sp.guid] = (sels, res)
        if sels and not res.ambiguous and not res.failed and len(res.candidates) >= 1:
            distinct = {tuple(P.convert(sp.text, sels, c).items()) for c in res.candidates}
            if len(distinct) > 1 or res.convention != P.CODEPOINTS:
                votes[res.convention] += 1
    prefer = [c for c, _ in votes.most_common()]
    converted: Counter = Counter()
    ambiguous = failed = mismatched = 0
    for sp in plan.sources:
        sels, res = first[sp.guid]
        if res.ambiguous:
            res = P.resolve(sp.text, sels, sp.has_bom, prefer=prefer)
            ambiguous += res.ambiguous
        sp.convention = res.convention
        if res.convention != P.CODEPOINTS and any(
                P.convert(sp.text, sels, P.CODEPOINTS)[k] != v for k, v in res.spans.items()):
            converted[res.convention] += 1
        failed += len(res.failed)
        tool_text = P.represent(sp.text, res.convention)
        for i, s in enumerate(sp.sels):
            span = res.spans.get(i)
            if span is None:
                continue
            # verify: the converted span selects what the other tool selected
            if not P.verify(sp.text, span, s.start, s.end, res.convention, tool_text):
                mismatched += 1
                continue
            s.span = span
    for conv, n in sorted(converted.items()):
        result.note(f"{n} source(s) counted positions in {P.DESCRIPTIONS[conv]}; converted to code points "
                    "and verified")
    if ambiguous:
        result.note(f"{ambiguous} source(s) had positions readable in more than one counting; chose "
                    f"{P.DESCRIPTIONS[prefer[0]] if prefer else P.DESCRIPTIONS[P.CODEPOINTS]}")
    if failed:
        result.lose(f"{failed} selection(s) fall outside their source's text under every known way of counting "
                    "and were not imported")
    if mismatched:  # pragma: no cover - guarded by the conversion itself
        result.lose(f"{mismatched} selection(s) could not be verified after conversion and were not imported")


def _find_qde(zf: SafeZip, where: str, result: ImportResult) -> str:
    qdes = [n for n in zf.names if n.lower().endswith(".qde")]
    if not qdes:
        raise ExchangeError(f"{where}: no .qde project file inside; this is not a REFI-QDA project export.")
    exact = [n for n in qdes if n == "project.qde"]
    if exact:
        return exact[0]
    named = [n for n in qdes if posixpath.basename(n).lower() == "project.qde"]
    pick = sorted(named or qdes, key=lambda n: (n.count("/"), n))[0]
    if len(qdes) > 1 and not named:
        raise ExchangeError(f"{where}: several .qde files ({', '.join(sorted(qdes)[:5])}) and none is project.qde; "
                            "keep one and try again.")
    result.note(f"the project file is named {pick!r} (the standard says 'project.qde'); read it anyway")
    return pick


def read_qdpx(path: str | os.PathLike) -> QdpxPlan:
    """Read and check a ``.qdpx`` without writing anything; raise :class:`ExchangeError` if unusable."""
    where = str(path)
    result = ImportResult(where)
    zf = open_zip(path)
    try:
        return _read_open(zf, where, result)
    except SpRealistError:
        raise
    except Exception as exc:  # never a traceback for a strange file: one sentence instead
        raise ExchangeError(f"{where}: could not be read ({type(exc).__name__}: {exc}); the file may be damaged "
                            "or use an unknown variant of REFI-QDA, please report it.") from None
    finally:
        zf.close()


def _appraisal_fields(note: "NotePlan | None") -> dict | None:
    """The fields of a note sp_realist wrote for an appraisal (``Appraisal (analyst)``, YAML body), else None."""
    import re

    import yaml

    from .qdpx_export import APPRAISAL_FIELDS

    if note is None or not note.title or not re.match(r"^Appraisal \(.+\)$", note.title):
        return None
    try:
        body = yaml.safe_load(note.text or "")
    except yaml.YAMLError:
        return None
    allowed = set(APPRAISAL_FIELDS) | {"cmoc", "theory"}
    if not isinstance(body, dict) or not set(body) <= allowed:
        return None
    return {"analyst": note.title[len("Appraisal ("):-1], **body}


def _restore_segments(zf: SafeZip, plan: QdpxPlan) -> None:
    """Segments sp_realist exported beside the standard files, if present and consistent with the text."""
    import json

    entry = zf.lookup(SEGMENTS_ENTRY)
    if not entry:
        return
    try:
        data = json.loads(zf.read(entry).decode("utf-8"))
        table = data["segments"] if isinstance(data, dict) else {}
    except (ValueError, KeyError, TypeError):
        plan.result.note(f"{SEGMENTS_ENTRY} could not be read; sources were split into paragraphs")
        return
    bad = 0
    for sp in plan.sources:
        rows = table.get(sp.guid)
        if not rows:
            continue
        try:
            segs = [Segment(int(r[0]), int(r[1]), kind=str(r[2] or "paragraph"), speaker=r[3], section=r[4],
                            start_time=None if r[5] is None else float(r[5]),
                            end_time=None if r[6] is None else float(r[6]),
                            participant_code=None if r[7] is None else str(r[7])) for r in rows]
        except (TypeError, ValueError, IndexError):
            bad += 1
            continue
        pos = 0
        for seg in segs:
            if seg.start != pos or seg.end < seg.start:
                break
            pos = seg.end
        else:
            if pos == len(sp.text):
                sp.segments = segs
                continue
        bad += 1
    if bad:
        plan.result.note(f"{bad} source(s) had segments that do not fit their text; they were split into paragraphs")


def _read_open(zf: SafeZip, where: str, result: ImportResult) -> QdpxPlan:
    name = _find_qde(zf, where, result)
    root = parse_xml(zf.read(name), f"{where}: {name}")
    if local(root.tag) != "Project":
        raise ExchangeError(f"{where}: {name} is not a REFI-QDA project (its root element is "
                            f"{local(root.tag)!r}, not 'Project').")
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if ns and ns != "urn:QDA-XML:project:1.0":
        result.note(f"the project uses the namespace {ns!r} (the standard's is 'urn:QDA-XML:project:1.0'); "
                    "read it by element names")
    foreign = repair_foreign_guids(root, where)
    if foreign:
        result.note(f"{foreign} identifier(s) that are not GUIDs were given GUIDs; the references to them were kept")
    reader = _Reader(zf, where, result)
    plan = reader.read(root)
    _restore_segments(zf, plan)
    for key, n in reader.lost.items():
        if n:
            result.lose(LOSS_LINES[key].format(n=n, example=repr(reader.external_example)))
    if reader.docx_only:
        result.note(f"{reader.docx_only} source(s) given only as .docx (no plain text) were extracted with "
                    "python-docx, paragraphs joined by line breaks")
    if reader.docx_for_empty:
        result.note(f"{reader.docx_for_empty} source(s) had an empty plain-text file; their text was taken from "
                    "their .docx rich text (paragraphs joined by line breaks) and their selections read against it")
    if reader.file_named:
        result.note(f"{reader.file_named} unnamed source(s) were named after their text file")
    if reader.pdf_files:
        result.lose(f"{reader.pdf_files} PDF file(s) not imported (sp_realist holds text only); their "
                    "plain-text representations were")
    _resolve_positions(plan)
    return plan


# --- writing ------------------------------------------------------------------
def _segments(text: str) -> list[Segment]:
    """Paragraph segments (one per line) tiling the text exactly."""
    segs, pos = [], 0
    for line in text.splitlines(keepends=True):
        segs.append(Segment(pos, pos + len(line), kind="paragraph"))
        pos += len(line)
    if pos < len(text):  # pragma: no cover - splitlines covers the whole string
        segs.append(Segment(pos, len(text), kind="paragraph"))
    return segs


def _apply_realist(conn: Connection, plan: QdpxPlan, result: ImportResult) -> tuple[dict, dict]:
    """CMOCs, their relations and theories recognised in the file (reused by key if present), written
    through the cmoc area's own functions (``add_cmoc_conn``, ``relate_conn``, ``add_theory_conn``,
    ``add_member_conn``); one the area refuses (a key with spaces, a theory without a title) is reported."""
    from ..cmoc.cmocs import add_cmoc_conn, relate_conn
    from ..cmoc.theories import add_member_conn, add_theory_conn

    cmoc_ids: dict[str, int] = {}
    cmoc_keys: dict[int, str] = {}
    reused = 0
    refused: list[str] = []
    for i, cp in enumerate(plan.cmocs):
        row = conn.execute(select(S.cmocs.c.id).where(S.cmocs.c.key == cp.key)).first()
        if row:
            cmoc_ids[cp.guid] = row[0]
            cmoc_keys[row[0]] = cp.key
            reused += 1
            continue
        fields = {k: cp.parts.get(k) for k in ("context", "mechanism_resource", "mechanism_response", "outcome")}
        try:
            with conn.begin_nested():
                cid = add_cmoc_conn(
                    conn, cp.key, where=f"CMOC set 'CMOC {cp.key}'", guid=cp.guid, created_at=cp.created,
                    updated_at=cp.modified, ord=i, status=cp.status if cp.status in ("partial", "complete") else "partial",
                    confidence=cp.confidence if cp.confidence in ("high", "moderate", "low") else None,
                    memo=cp.memo, ifthen=cp.ifthen, **fields)
        except SpRealistError as exc:
            refused.append(str(exc))
            continue
        cmoc_ids[cp.guid] = cid
        cmoc_keys[cid] = cp.key
        result.counts["cmocs"] += 1
    for a, b, kind in plan.relations:
        fa, fb = cmoc_ids.get(a), cmoc_ids.get(b)
        if fa and fb and fa != fb:
            relate_conn(conn, cmoc_keys[fa], cmoc_keys[fb], kind)  # an existing relation is left as it is
    theory_ids: dict[str, int] = {}
    for i, tp in enumerate(plan.theories):
        row = conn.execute(select(S.theories.c.id).where(S.theories.c.key == tp.key)).first()
        if row:
            theory_ids[tp.guid] = row[0]
            reused += 1
        else:
            try:
                with conn.begin_nested():
                    theory_ids[tp.guid] = add_theory_conn(
                        conn, tp.key, tp.title, description=tp.description, questions=tp.questions,
                        where=f"theory graph '{tp.key}: {tp.title}'", guid=tp.guid, created_at=tp.created,
                        updated_at=tp.modified, ord=i)
            except SpRealistError as exc:
                refused.append(str(exc))
                continue
            result.counts["theories"] += 1
        for cg in tp.cmocs:
            cid = cmoc_ids.get(cg)
            if cid:
                add_member_conn(conn, tp.key, cmoc_keys[cid], record=False)
    if reused:
        result.note(f"{reused} CMOC(s) or theor(y/ies) with the same key were already in the project and kept as they were")
    for line in refused:
        result.lose(f"a CMOC or theory was not imported: {line.rstrip('.')}")
    return cmoc_ids, theory_ids


def apply_plan(conn: Connection, plan: QdpxPlan, project: Project, tool: str | None = None) -> ImportResult:
    """Write a read plan into the project inside the caller's transaction."""
    result = plan.result
    users = plan.users
    tool = tool or (plan.origin.split(" ")[0] if plan.origin else "qdpx")
    origin = f"import:{tool}"[:300]
    default_user = "imported"

    def user(g: str | None, fallback: str | None = None) -> str:
        return users.get(g) or users.get(fallback) or default_user

    from .common import unique_code_names

    unique_code_names(plan.codes, result)
    participants_before = {r[0] for r in conn.execute(select(S.participants.c.code))}
    code_ids = apply_codes(conn, plan.codes, result, origin)

    # sources
    source_ids: dict[str, int] = {}
    existing = {r["name"]: dict(r) for r in conn.execute(select(S.sources.c.id, S.sources.c.name, S.sources.c.text)).mappings()}
    reused = renamed = empty = 0
    new_sids: set[int] = set()
    for sp in plan.sources:
        if sp.name in existing and existing[sp.name]["text"] == sp.text:
            source_ids[sp.guid] = existing[sp.name]["id"]
            reused += 1
            continue
        name, n = sp.name, 2
        while name in existing:
            name = f"{sp.name} ({n})"
            n += 1
        if name != sp.name:
            renamed += 1
        if not sp.text:
            empty += 1
        attrs = dict(sp.attrs)
        sid = add_source(conn, SourceDraft(
            name=name, kind=sp.kind, text=sp.text, segments=sp.segments or _segments(sp.text),
            checksum=sha256_bytes(sp.text.encode("utf-8", "surrogatepass")), date=sp.date,
            file_name=Path(result.source).name, file_format="qdpx", attributes=attrs,
            # keep the GUID and, when the file gives it, the source's creation time (a round trip keeps both)
            guid=sp.guid, created_at=sp.created))
        existing[name] = {"id": sid, "name": name, "text": sp.text}
        source_ids[sp.guid] = sid
        new_sids.add(sid)
        result.counts["sources"] += 1
    if reused:
        result.note(f"{reused} source(s) already in the project (same name and text) were reused")
    if renamed:
        result.note(f"{renamed} source(s) had the name of a different source already in the project and were "
                    "imported with a number added")
    if empty:
        result.note(f"{empty} source(s) have no text")
    for ss in plan.source_sets:
        added = add_source_set(conn, ss.name, [source_ids[g] for g in ss.sources if g in source_ids],
                               description=ss.description, guid=ss.guid)
        result.counts["source sets"] += added
    result.counts["users"] += apply_users(conn, users)

    # cases -> participants
    conflicts = second_case = 0
    case_ids: dict[str, int] = {}
    for cp in plan.cases:
        attrs = dict(cp.attrs)
        role, site = attrs.pop("role", None), attrs.pop("site", None)
        pid = ensure_participant(conn, cp.name, role=role, site=site)
        case_ids[cp.guid] = pid
        keep_participant_guid(conn, pid, cp.guid)  # a participant's existing GUID is never replaced
        if " ".join(cp.name.split()) not in participants_before:
            result.counts["cases"] += 1
        have = dict(conn.execute(select(S.participant_attributes.c.name, S.participant_attributes.c.value)
                                 .where(S.participant_attributes.c.participant_id == pid)).all())
        for k, v in attrs.items():
            if k in have:
                conflicts += have[k] != v
                continue
            set_attribute(conn, "participant", pid, k, v)
        for sg in cp.sources:
            sid = source_ids.get(sg)
            if sid is not None:
                if not link_source_participant(conn, sid, pid):
                    second_case += 1
        if cp.description:
            plan.notes.setdefault(stable_guid("case-description", cp.guid), NotePlan(
                stable_guid("case-description", cp.guid), "Case description", cp.description, None, None, None))
            plan.note_targets.append((stable_guid("case-description", cp.guid), "participant", cp.guid))
    if second_case:
        result.lose(f"{second_case} case-to-source link(s) not imported: the source already belongs to another case "
                    "(an sp_realist source belongs to one participant)")
    if conflicts:
        result.lose(f"{conflicts} case variable value(s) differ from the participant's existing attribute and "
                    "were not applied (the project's value was kept)")

    # codings and uncoded selections: check against the codings already present in reused
    # sources, insert the new ones in one statement, then map them back to ids
    coding_ids: dict = {}
    dup = missing_code = undated = 0
    reused_sids = set(source_ids.values()) - new_sids
    known: dict[tuple, int] = {}
    if reused_sids:
        c = S.codings.c
        for r in conn.execute(select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder)
                              .where(c.source_id.in_(reused_sids))):
            known[(r.code_id, r.source_id, r.start, r.end, r.coder)] = r.id
    before = set(known)  # the codings already in reused sources (insert_codings skips these)
    rows: list[dict] = []
    refs: list[tuple] = []  # (coding key, coding plan)
    for sp in plan.sources:
        sid = source_ids[sp.guid]
        items = [(sel, sel.span, sel.codings) for sel in sp.sels if sel.span]
        if sp.whole and sp.text:
            items.append((None, (0, len(sp.text)), sp.whole))
        for sel, span, codings in items:
            if sel is not None and not codings:
                get_or_create_excerpt(conn, sid, *span)
                result.counts["excerpts"] += 1
            first_coding = None
            for c in codings:
                cid = code_ids.get(c.code)
                if cid is None:
                    missing_code += 1
                    continue
                coder = user(c.user, sel.user if sel else None)
                key = (cid, sid, span[0], span[1], coder)
                if key in known:
                    dup += 1
                else:
                    known[key] = 0  # inserted below
                    # a coding's time is its own, else its selection's; none given stays none (dated False)
                    given = c.created or (sel.created if sel else None)
                    undated += given is None
                    rows.append(dict(code_id=cid, source_id=sid, start=span[0], end=span[1], coder=coder,
                                     origin=origin, guid=c.guid, created_at=given or now(), dated=given is not None,
                                     selection_guid=sel.guid if sel else None))
                ref = c.guid or key
                refs.append((key, ref))
                first_coding = first_coding or ref
                for ng in c.notes:
                    plan.note_targets.append((ng, "coding", ref))
            if sel is not None:
                target = ("coding", first_coding) if first_coding else ("source", sp.guid)
                for ng in sel.notes:
                    plan.note_targets.append((ng, *target))
                if sel.description and sel.description.strip():
                    g = stable_guid("selection-description", sel.guid or f"{sp.guid}:{sel.start}:{sel.end}")
                    title = f"Comment on {sel.name!r}" if sel.name else f"Comment on {span[0]}:{span[1]}"
                    plan.notes[g] = NotePlan(g, title[:300], sel.description, sel.user, sel.created, sel.created)
                    plan.note_targets.append((g, *target))
        for ng in sp.notes:
            plan.note_targets.append((ng, "source", sp.guid))
        if sp.description and sp.description.strip():
            g = stable_guid("source-description", sp.guid)
            plan.notes[g] = NotePlan(g, "Source description", sp.description, None, sp.created, sp.created)
            plan.note_targets.append((g, "source", sp.guid))
    if rows:
        result.counts["codings"] += insert_codings(conn, rows, known=before)
        c = S.codings.c
        touched = {r["source_id"] for r in rows}
        for r in conn.execute(select(c.id, c.code_id, c.source_id, c.start, c.end, c.coder)
                              .where(c.source_id.in_(touched))):
            known[(r.code_id, r.source_id, r.start, r.end, r.coder)] = r.id
    for key, ref in refs:
        coding_ids.setdefault(ref, known[key])
    if undated:
        result.note(f"{undated} coding(s) had no time in the file; none is exported for them")
    if dup:
        result.note(f"{dup} coding(s) already present (same code, span and coder) were not duplicated")
    if missing_code:
        result.lose(f"{missing_code} coding(s) refer to codes that are not in the codebook and were skipped")

    theme_ids = apply_themes(conn, plan.themes, code_ids, result)
    cmoc_ids, theory_ids = _apply_realist(conn, plan, result)
    lost_evidence = 0
    for src_guid, sel, cmoc_guid, role, component, analyst, text, created in plan.evidence:
        cid, sid = cmoc_ids.get(cmoc_guid), source_ids.get(src_guid)
        if cid is None or sid is None or sel.span is None:
            lost_evidence += 1
            continue
        xid = get_or_create_excerpt(conn, sid, *sel.span)
        e = S.cmoc_evidence.c
        if conn.execute(select(e.id).where(e.cmoc_id == cid, e.excerpt_id == xid, e.role == role)).first():
            continue  # an existing link is kept as it is (link_evidence_conn would update it)
        key = conn.execute(select(S.cmocs.c.key).where(S.cmocs.c.id == cid)).scalar_one()
        link_evidence_conn(conn, key, xid, role=role, component=component,
                           analyst=users.get(analyst) if analyst else None, note=text, created_at=created)
        result.counts["evidence"] += 1
    if lost_evidence:
        result.lose(f"{lost_evidence} CMOC evidence link(s) point at selections that could not be placed")
    lost_appraisals = 0
    refused_appraisals: list[str] = []
    cmoc_keys = {r[0] for r in conn.execute(select(S.cmocs.c.key))}
    theory_keys = {r[0] for r in conn.execute(select(S.theories.c.key))}
    for src_guid, sel, note, fields in plan.appraisals:
        sid = source_ids.get(src_guid)
        if sid is None or sel.span is None:
            lost_appraisals += 1
            continue
        xid = get_or_create_excerpt(conn, sid, *sel.span)
        a = S.appraisals.c
        if conn.execute(select(a.id).where(a.excerpt_id == xid, a.analyst == fields["analyst"])).first():
            continue  # an existing appraisal is kept as it is
        steps = {k: fields.get(k) for k in ("relevance", "trust", "trust_rationale", "interpretation",
                                             "cmoc_judgement", "theory_change", "theory_note", "saturation_note",
                                             "note")}
        steps = {k: (v if v is None or isinstance(v, bool) else str(v)) for k, v in steps.items()}
        steps["cmoc"] = fields.get("cmoc") if fields.get("cmoc") in cmoc_keys else None
        steps["theory"] = fields.get("theory") if fields.get("theory") in theory_keys else None
        try:
            with conn.begin_nested():
                set_appraisal_conn(conn, xid, fields["analyst"], where=f"note {note.title!r}",
                                   created_at=note.created, updated_at=note.modified, **steps)
        except SpRealistError as exc:
            refused_appraisals.append(str(exc))
            continue
        result.counts["appraisals"] += 1
    for line in refused_appraisals:
        result.lose(f"an appraisal was not imported: {line.rstrip('.')}")
    if lost_appraisals:
        result.lose(f"{lost_appraisals} appraisal(s) are on selections that could not be placed")

    # notes -> memos (one per target; unreferenced notes become project memos)
    ids_by_type = {"code": code_ids, "source": source_ids, "coding": coding_ids, "participant": case_ids,
                   "theme": theme_ids, "cmoc": cmoc_ids, "theory": theory_ids}
    targets = defaultdict(list)
    for ng, ttype, tg in plan.note_targets:
        if ng not in plan.notes:
            continue
        tid = None if ttype == "project" else ids_by_type.get(ttype, {}).get(tg)
        if ttype != "project" and tid is None:
            continue
        if (ttype, tid) not in targets[ng]:
            targets[ng].append((ttype, tid))
    existing_memo_guids = {r[0] for r in conn.execute(select(S.memos.c.guid).where(S.memos.c.guid.is_not(None)))}
    existing_memos = {tuple(r) for r in conn.execute(select(
        S.memos.c.target_type, S.memos.c.target_id, S.memos.c.title, S.memos.c.text))}
    same = 0
    for ng, note in plan.notes.items():
        author = user(note.user)
        created = note.created or now()
        for i, (ttype, tid) in enumerate(targets.get(ng) or [("project", None)]):
            mg = ng if i == 0 else stable_guid("memo", ng, ttype, tid)
            title = (note.title or None) and note.title[:300]
            if mg in existing_memo_guids or (ttype, tid, title, note.text or "") in existing_memos:
                same += 1
                continue
            if ttype == "coding":  # sp_realist writes a coding's own memo as a note titled "Coding memo"
                current = conn.execute(select(S.codings.c.memo).where(S.codings.c.id == tid)).scalar()
                if current == (note.text or ""):
                    same += 1
                    continue
                if title == "Coding memo" and not current:
                    set_coding_memo(conn, tid, note.text or "")
                    result.counts["notes"] += 1
                    continue
            insert_memo(conn, target_type=ttype, target_id=tid, title=title, text=note.text or "", author=author,
                        guid=mg, created_at=created, updated_at=note.modified or created)
            result.counts["notes"] += 1
    if same:
        result.note(f"{same} note(s) already in the project (same target, title and text) were not duplicated")
    project.log(conn, "import.qdpx", result.source, **{k: int(v) for k, v in result.counts.items()},
                losses=len(result.losses))
    return result


def import_qdpx(path: str | os.PathLike, project: Project, tool: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import a ``.qdpx`` into ``project`` in one transaction (nothing is written if anything fails)."""
    plan = read_qdpx(path)
    if progress:
        progress(0, 1)
    with project.begin() as conn:
        result = apply_plan(conn, plan, project, tool)
    result.project = str(project.location)
    if progress:
        progress(1, 1)
    return result


def import_qdpx_new(path: str | os.PathLike, target: str | os.PathLike | None = None) -> ImportResult:
    """Create a new project (``target``, or the .qdpx's name with ``.sprealist`` next to it) and import into it.

    The file is read and checked first; if the import fails the new project file is removed.
    """
    path = Path(path)
    target = Path(target) if target else path.with_suffix(".sprealist")
    if target.exists():
        raise SpRealistError(f"{target}: already exists; import into it with --into {target}, or choose another "
                             "name with --project.")
    plan = read_qdpx(path)
    project = Project.create(target)
    try:
        with project.begin() as conn:
            result = apply_plan(conn, plan, project)
    except BaseException:
        project.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        raise
    project.close()
    result.project = str(target)
    return result

"""Read a REFI-QDA project exchange file (``.qdpx``) into a :class:`QdpxPlan`, writing nothing.

Part of the importer (:mod:`sp_realist.exchange.qdpx_import`): this module reads and checks the
archive, :mod:`~sp_realist.exchange.qdpx_positions` converts each source's selection positions to code
points, and :mod:`~sp_realist.exchange.qdpx_apply` writes the plan through each area's write functions.
See :mod:`~sp_realist.exchange.qdpx_import` for the deviations from the standard that are tolerated.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from .. import schema as S
from ..errors import SpRealistError
from ..sources import Segment
from ..store import stable_guid
from . import positions as P
from .common import (CodePlan, ImportResult, ThemePlan, guids_canonical, norm_guid, repair_foreign_guids,
                     store_datetime)
from .qdpx_export import DATE_VARIABLE, KIND_VARIABLE, SEGMENTS_ENTRY
from .qdpx_positions import resolve_positions
from .safety import ExchangeError, SafeZip, local, open_zip, parse_xml

TEXT_KINDS = set(S.SOURCE_KINDS)


# --- plan ---------------------------------------------------------------------
@dataclass(slots=True)  # one per coding and selection in a file: slots keep them small and quick to make
class CodingPlan:
    guid: str | None
    code: str  # code guid
    user: str | None
    created: str | None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
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


def _present(value: str | None) -> str | None:
    """``norm_guid`` of a value known to be a canonical GUID or empty."""
    return value or None


def _int(value: str | None) -> int | None:
    try:
        return int(value)  # an attribute's text (int() takes surrounding white space) or None
    except (TypeError, ValueError):
        return None


class _Reader:
    def __init__(self, zf: SafeZip, where: str, result: ImportResult, canonical: bool = False):
        self.zf = zf
        # a selection's and a coding's GUID attributes (one per coding and selection in a file): when every
        # GUID attribute is canonical or empty (common.guids_canonical), norm_guid would return each as it is
        self.ng = _present if canonical else norm_guid
        self.where = where
        self.result = result
        self.lost: Counter = Counter()
        # a file's times repeat (a selection and its codings, work saved at once): each converted once
        self.time = lru_cache(maxsize=4096)(store_datetime)
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
        ng = self.ng
        ref, notes = None, []
        for child in el:  # one pass over the children (a coding has one or two)
            tag = local(child.tag)
            if tag == "CodeRef":
                if ref is None:
                    ref = child
            elif tag == "NoteRef":
                g = ng(child.get("targetGUID"))
                if g:
                    notes.append(g)
        code = ng(ref.get("targetGUID")) if ref is not None else None
        if code is None:
            self.lost["coding-no-code"] += 1
            return None
        return CodingPlan(ng(el.get("guid")), code, ng(el.get("creatingUser")), self.time(el.get("creationDateTime")),
                          notes)

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
        ng = self.ng
        for sel in kids(el, "PlainTextSelection"):
            start, end = _int(sel.get("startPosition")), _int(sel.get("endPosition"))
            if start is None or end is None:
                self.lost["selection-no-position"] += 1
                continue
            if start > end:
                start, end = end, start
            codings, notes, description = [], [], None
            for child in sel:  # one pass over the children: codings, note references, the first description
                tag = local(child.tag)
                if tag == "Coding":
                    c = self.coding(child)
                    if c:
                        codings.append(c)
                elif tag == "NoteRef":
                    n = ng(child.get("targetGUID"))
                    if n:
                        notes.append(n)
                elif tag == "Description" and description is None:
                    description = child
            s = SelPlan(ng(sel.get("guid")), sel.get("name"), start, end, ng(sel.get("creatingUser")),
                        self.time(sel.get("creationDateTime")),
                        description.text if description is not None else None, codings, notes)
            if s.guid:
                self.sel_index[s.guid] = (g, s)
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
            s.clear()  # read into the plan: its selections' elements (most of the tree) need not stay

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
        links = [ln for ln in (kids(links_el, "Link") if links_el is not None else [])
                 if norm_guid(ln.get("guid")) not in consumed_links]
        # the codings' GUIDs (one per coding in a file) only when a link is left that may point at one
        coding_guids = {c.guid for s in plan.sources for sel in s.sels for c in sel.codings if c.guid} if links else set()
        for ln in links:
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
    canonical = guids_canonical(root)  # then nothing to repair, and the reader takes GUIDs as they are
    foreign = 0 if canonical else repair_foreign_guids(root, where)
    if foreign:
        result.note(f"{foreign} identifier(s) that are not GUIDs were given GUIDs; the references to them were kept")
    reader = _Reader(zf, where, result, canonical=canonical)
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
    resolve_positions(plan)
    return plan



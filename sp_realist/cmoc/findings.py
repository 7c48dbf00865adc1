"""Summary-of-findings tables (the report's Tables 7.1-7.4): owner of the findings tables.

Each evaluation question is triangulated across **evidence strands** (columns such as
"Meta-narrative", "Thematic synthesis", "Reflective diaries"), one row per **topic**
("Benefits of the model", "Role of the link worker" ...).  A cell holds short
**findings** that the analyst writes and links to what they rest on: themes, theories,
CMOCs, codes, or non-transcript **evidence items** (literature, project documents: a
kind and a citation).  Each question also has "What worked well" / "What could be
improved" lists and an optional "Overall" paragraph.

A finding's **data-source tags** ("[interviews, project documentation]") are computed,
never typed: the kinds (or the ``dataset`` attribute, ``by="dataset"``) of the sources
behind what it links -- the sources coded with a linked theme's codes (its sub-themes'
and their child codes included) or a linked code (and its child codes), the sources of
a linked CMOC's evidence excerpts (every CMOC of a linked theory) -- plus the kinds of
the linked evidence items.

The findings are kept in a YAML file a study names (``findings:`` in study.yaml; format
in docs/formats.md); :func:`import_findings_yaml` reads it (all or nothing),
:func:`export_findings_yaml` writes the project's findings back in the same format.
Only this module writes the tables ``finding_strands``, ``evidence_items``,
``finding_questions``, ``finding_topics``, ``findings`` and ``finding_links``.

>>> import_findings_yaml(project, "findings.yaml")       # doctest: +SKIP
>>> findings_table(project, question="Q1")              # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..coding._common import CodeTree
from ..errors import SpRealistError
from ..store import Project
from ..yamlio import load_yaml_file, write_exported_text

PARTS = S.FINDING_PARTS  # cell | worked_well | could_improve
LINK_TYPES = S.FINDING_LINK_TYPES  # theme | theory | cmoc | code | evidence
#: YAML field of each link type on a finding.
LINK_FIELDS = {"themes": "theme", "theories": "theory", "cmocs": "cmoc", "codes": "code", "evidence": "evidence"}
FIELD_OF = {v: k for k, v in LINK_FIELDS.items()}
LABELS = {"theme": "theme", "theory": "theory", "cmoc": "CMOC", "code": "code", "evidence": "evidence item"}
PLURALS = {"theme": "themes", "theory": "theories", "cmoc": "CMOCs", "code": "codes", "evidence": "evidence items"}
LIST_PARTS = ("worked_well", "could_improve")
DEFAULT_HEADINGS = {"worked_well": "What worked well", "could_improve": "What could be improved"}
TOP_KEYS = ("strands", "evidence", "questions")
QUESTION_KEYS = ("key", "text", "topics", "worked_well", "could_improve", "overall")
TOPIC_KEYS = ("topic", "cells")
EVIDENCE_KEYS = ("key", "kind", "citation", "note")
FINDING_KEYS = ("text",) + tuple(LINK_FIELDS)
LIST_KEYS = ("heading", "items")
#: The data-source tag of a source kind (its ``dataset`` attribute with ``by="dataset"``).
SOURCE_TAGS = {"interview": "interviews", "focus_group": "focus groups", "diary": "reflective diaries",
               "field_notes": "field notes", "document": "documents"}


# --------------------------------------------------------------------------
# What the library hands out
# --------------------------------------------------------------------------
@dataclass
class Finding:
    """One finding: the analyst's text, what it links ({type: [names]}) and its computed tags."""

    text: str
    links: dict[str, list[str]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # what the tags rest on (ids in the project): the sources, the CMOC evidence excerpts and the codings
    sources: list[int] = field(default_factory=list)
    excerpts: list[int] = field(default_factory=list)
    codings: list[int] = field(default_factory=list)

    @property
    def tagged(self) -> str:
        """The text followed by its tags, as in the report: ``... [interviews, project documentation]``."""
        return f"{self.text} [{', '.join(self.tags)}]" if self.tags else self.text


@dataclass
class TopicRow:
    name: str
    cells: dict[str, list[Finding]]  # strand -> findings (every strand of the table, maybe empty)


@dataclass
class FindingsList:
    part: str  # worked_well | could_improve
    heading: str
    items: list[Finding]


@dataclass
class QuestionFindings:
    key: str
    text: str
    strands: list[str]
    topics: list[TopicRow]
    lists: list[FindingsList]
    overall: str | None = None


@dataclass
class SummaryOfFindings:
    strands: list[str]
    questions: list[QuestionFindings]
    evidence: list[dict]  # key, kind, citation, note
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# Reading and checking a findings file
# --------------------------------------------------------------------------
def _text(value: Any, where: str, what: str, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SpRealistError(f"{where}: {what} is missing; give it as text.")
        return None
    if isinstance(value, (dict, list, tuple, set)):
        raise SpRealistError(f"{where}: {what} must be text, not a {'mapping' if isinstance(value, dict) else 'list'}.")
    return str(value).strip()


def _names(value: Any, where: str, what: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None or not str(item).strip():
            raise SpRealistError(f"{where}: {what} must be a list of names, e.g. [{'T1' if what != 'themes' else 'Getting started'}].")
        name = str(item).strip()
        if name not in out:
            out.append(name)
    return out


def _finding(value: Any, where: str) -> dict:
    """A finding: text, or {text, themes, theories, cmocs, codes, evidence}."""
    if isinstance(value, dict):
        bad = sorted(map(str, set(value) - set(FINDING_KEYS)))
        if bad:
            raise SpRealistError(f"{where}: unknown field(s) {', '.join(bad)}; allowed: {', '.join(FINDING_KEYS)}.")
        links = {LINK_FIELDS[k]: _names(value.get(k), where, k) for k in LINK_FIELDS if value.get(k) is not None}
        return {"text": _text(value.get("text"), where, "the finding's text"), "links": links}
    return {"text": _text(value, where, "the finding's text"), "links": {}}


def _findings(value: Any, where: str) -> list[dict]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_finding(v, f"{where}, item {i}") for i, v in enumerate(items, start=1)]


def _list_part(value: Any, where: str) -> tuple[str | None, list[dict]]:
    """A worked_well / could_improve list: items, or {heading, items}."""
    if isinstance(value, dict):
        bad = sorted(map(str, set(value) - set(LIST_KEYS)))
        if bad:
            raise SpRealistError(f"{where}: unknown field(s) {', '.join(bad)}; allowed: heading, items.")
        return _text(value.get("heading"), where, "heading", required=False), _findings(value.get("items"), where)
    return None, _findings(value, where)


def _mapping(value: Any, where: str, allowed: tuple[str, ...], shape: str) -> dict:
    """``value`` as a mapping holding only ``allowed`` fields; one sentence naming ``where`` otherwise."""
    if not isinstance(value, dict):
        raise SpRealistError(f"{where}: must be a mapping with {shape}.")
    bad = sorted(map(str, set(value) - set(allowed)))
    if bad:
        raise SpRealistError(f"{where}: unknown field(s) {', '.join(bad)}; allowed: {', '.join(allowed)}.")
    return value


def read_findings_doc(doc: Any, where: str) -> dict:
    """Check a findings document's structure; return it normalised (no project needed)."""
    if doc is None:
        raise SpRealistError(f"{where}: the file is empty; see docs/formats.md for the findings format.")
    if not isinstance(doc, dict):
        raise SpRealistError(f"{where}: expected a mapping with strands, evidence and questions; see docs/formats.md.")
    bad = sorted(map(str, set(doc) - set(TOP_KEYS)))
    if bad:
        raise SpRealistError(f"{where}: unknown top-level key(s) {', '.join(bad)}; use {', '.join(TOP_KEYS)}.")
    strands = _names(doc.get("strands"), f"{where}: strands", "strands")
    evidence = []
    seen: set[str] = set()
    for i, e in enumerate(doc.get("evidence") or [], start=1):
        w = f"{where}: evidence item {i}"
        _mapping(e, w, EVIDENCE_KEYS, "key, kind and citation")
        key = _text(e.get("key"), w, "key")
        if key in seen:
            raise SpRealistError(f"{where}: evidence item {key} is defined twice; give each item its own key.")
        seen.add(key)
        evidence.append({"key": key, "kind": _text(e.get("kind"), f"{where}: evidence item {key}", "kind"),
                         "citation": _text(e.get("citation"), f"{where}: evidence item {key}", "citation"),
                         "note": _text(e.get("note"), w, "note", required=False)})
    questions = []
    qkeys: set[str] = set()
    raw_questions = doc.get("questions") or []
    if not isinstance(raw_questions, list):
        raise SpRealistError(f"{where}: questions must be a list of {{key, text, topics ...}}.")
    for i, q in enumerate(raw_questions, start=1):
        w = f"{where}: question {i}"
        _mapping(q, w, QUESTION_KEYS, "key, text and topics")
        key = _text(q.get("key"), w, "key")
        if key in qkeys:
            raise SpRealistError(f"{where}: question {key} is defined twice.")
        qkeys.add(key)
        w = f"{where}: question {key}"
        topics = []
        tnames: set[str] = set()
        raw_topics = q.get("topics") or []
        if not isinstance(raw_topics, list):
            raise SpRealistError(f"{w}: topics must be a list of {{topic, cells}}.")
        for j, t in enumerate(raw_topics, start=1):
            tw = f"{w}, topic {j}"
            _mapping(t, tw, TOPIC_KEYS, "topic and cells")
            name = _text(t.get("topic"), tw, "topic")
            if name in tnames:
                raise SpRealistError(f"{w}: topic {name!r} is listed twice; merge its cells.")
            tnames.add(name)
            tw = f"{w}, topic {name!r}"
            cells = t.get("cells") or {}
            if not isinstance(cells, dict):
                raise SpRealistError(f"{tw}: cells must be a mapping of strand name to findings.")
            topics.append({"topic": name, "cells": {str(s).strip(): _findings(v, f"{tw}, strand {s!r}")
                                                    for s, v in cells.items()}})
        lists = {}
        for part in LIST_PARTS:
            heading, items = _list_part(q.get(part), f"{w}, {part}")
            lists[part] = {"heading": heading, "items": items}
        questions.append({"key": key, "text": _text(q.get("text"), w, "text", required=False),
                          "topics": topics, "lists": lists,
                          "overall": _text(q.get("overall"), w, "overall", required=False)})
    return {"strands": strands, "evidence": evidence, "questions": questions}


def _known(conn: Connection) -> dict[str, list[str]]:
    """The names a finding may link, per link type, in the project's order."""
    tree = CodeTree.read(conn)
    return {
        "code_tree": tree,
        "theme": list(conn.execute(select(S.themes.c.name).order_by(S.themes.c.ord, S.themes.c.id)).scalars()),
        "theory": list(conn.execute(select(S.theories.c.key).order_by(S.theories.c.ord, S.theories.c.key)).scalars()),
        "cmoc": sorted(conn.execute(select(S.cmocs.c.key)).scalars(), key=_natural),
        "code": list(tree.labels().values()),
        "evidence": list(conn.execute(select(S.evidence_items.c.key).order_by(S.evidence_items.c.ord,
                                                                              S.evidence_items.c.id)).scalars()),
    }


def _natural(key: str) -> list:
    """Sort key for CMOC keys: T1.2 before T1.10."""
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(key))]


def _listing(names: Iterable[str], none: str) -> str:
    names = list(names)
    return ", ".join(names) if names else none


def _check_links(doc: dict, known: dict[str, list[str]], where: str) -> None:
    evidence = list(dict.fromkeys(known["evidence"] + [e["key"] for e in doc["evidence"]]))
    names = dict(known, evidence=evidence)
    tree = known["code_tree"]
    how = {"theme": "define it in the codebook", "theory": "define it in the theories file",
           "cmoc": "define it in the theories file", "code": "define it in the codebook",
           "evidence": "add it under 'evidence:'"}
    for q in doc["questions"]:
        places = [(f"question {q['key']}, topic {t['topic']!r}, strand {s!r}", items)
                  for t in q["topics"] for s, items in t["cells"].items()]
        places += [(f"question {q['key']}, {part}", q["lists"][part]["items"]) for part in LIST_PARTS]
        for place, items in places:
            for i, f in enumerate(items, start=1):
                for kind, targets in f["links"].items():
                    for target in targets:
                        if kind == "code" and target not in names[kind]:
                            found = tree.find(target)  # a code is named by its name or its path
                            if len(found) > 1:
                                paths = sorted(tree.path(c) for c in found)
                                raise SpRealistError(
                                    f"{where}: {place}, item {i} links the code {target!r}, which {len(paths)} codes "
                                    f"have as their name ({', '.join(map(repr, paths))}); give its path instead.")
                            if found:
                                continue
                        if target not in names[kind]:
                            label = LABELS[kind]
                            raise SpRealistError(
                                f"{where}: {place}, item {i} links the {label} {target!r}, which does not exist; "
                                f"the {PLURALS[kind]} are: "
                                f"{_listing(names[kind], '(none)')} ({how[kind]} or fix the name).")


def _check_strands(doc: dict, existing: list[str], where: str) -> list[str]:
    strands = list(dict.fromkeys(doc["strands"] + existing))
    for q in doc["questions"]:
        for t in q["topics"]:
            for s in t["cells"]:
                if s not in strands:
                    raise SpRealistError(
                        f"{where}: question {q['key']}, topic {t['topic']!r} has a cell under the strand {s!r}, "
                        f"which is not a strand; the strands are: {_listing(strands, '(none: list them under strands:)')}"
                        " (add it under 'strands:' or fix the name).")
    return strands


# --------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------
def import_findings_conn(conn: Connection, doc: Any, where: str) -> dict:
    """Write a findings document inside the caller's transaction (see :func:`import_findings_yaml`)."""
    doc = read_findings_doc(doc, where)
    existing_strands = list(conn.execute(select(S.finding_strands.c.name)
                                         .order_by(S.finding_strands.c.ord, S.finding_strands.c.id)).scalars())
    strands = _check_strands(doc, existing_strands, where)
    _check_links(doc, _known(conn), where)
    counts = {"strands": 0, "evidence_items": 0, "questions_created": 0, "questions_replaced": 0, "topics": 0,
              "findings": 0, "links": 0}
    # strands: the file's order first, then the project's other strands
    strand_ids: dict[str, int] = {}
    for i, name in enumerate(strands):
        row = conn.execute(select(S.finding_strands.c.id).where(S.finding_strands.c.name == name)).first()
        if row is None:
            strand_ids[name] = conn.execute(insert(S.finding_strands).values(name=name, ord=i)).inserted_primary_key[0]
            counts["strands"] += 1
        else:
            conn.execute(update(S.finding_strands).where(S.finding_strands.c.id == row[0]).values(ord=i))
            strand_ids[name] = row[0]
    # evidence items: created, or updated when the key exists
    n_ev = conn.execute(select(func.count()).select_from(S.evidence_items)).scalar_one()
    for e in doc["evidence"]:
        values = {k: e[k] for k in ("kind", "citation", "note")}
        row = conn.execute(select(S.evidence_items).where(S.evidence_items.c.key == e["key"])).mappings().first()
        if row is None:
            conn.execute(insert(S.evidence_items).values(key=e["key"], ord=n_ev, **values))
            n_ev += 1
            counts["evidence_items"] += 1
        elif any(row[k] != v for k, v in values.items()):
            conn.execute(update(S.evidence_items).where(S.evidence_items.c.id == row["id"]).values(**values))
            counts["evidence_items"] += 1
    # questions: a question in the file replaces the project's question with the same key
    n_q = conn.execute(select(func.count()).select_from(S.finding_questions)).scalar_one()
    for q in doc["questions"]:
        old = conn.execute(select(S.finding_questions.c.id, S.finding_questions.c.ord)
                           .where(S.finding_questions.c.key == q["key"])).first()
        if old is not None:
            _delete_question(conn, old[0])
            counts["questions_replaced"] += 1
            ord_ = old[1]
        else:
            counts["questions_created"] += 1
            ord_ = n_q
            n_q += 1
        qid = conn.execute(insert(S.finding_questions).values(
            key=q["key"], text=q["text"], ord=ord_, overall=q["overall"],
            worked_well_heading=q["lists"]["worked_well"]["heading"],
            could_improve_heading=q["lists"]["could_improve"]["heading"])).inserted_primary_key[0]
        for j, t in enumerate(q["topics"]):
            tid = conn.execute(insert(S.finding_topics).values(question_id=qid, name=t["topic"], ord=j)
                               ).inserted_primary_key[0]
            counts["topics"] += 1
            # cells in the strands' order, so the stored order does not depend on the file's key order
            for strand in sorted(t["cells"], key=strands.index):
                for k, f in enumerate(t["cells"][strand]):
                    counts["links"] += _insert_finding(conn, qid, "cell", f, k, topic_id=tid,
                                                       strand_id=strand_ids[strand])
                    counts["findings"] += 1
        for part in LIST_PARTS:
            for k, f in enumerate(q["lists"][part]["items"]):
                counts["links"] += _insert_finding(conn, qid, part, f, k)
                counts["findings"] += 1
    return counts


def _insert_finding(conn: Connection, qid: int, part: str, f: dict, ord_: int, topic_id: int | None = None,
                    strand_id: int | None = None) -> int:
    fid = conn.execute(insert(S.findings).values(question_id=qid, part=part, topic_id=topic_id, strand_id=strand_id,
                                                 text=f["text"], ord=ord_)).inserted_primary_key[0]
    rows = [{"finding_id": fid, "target_type": kind, "target": target, "ord": i}
            for kind in LINK_TYPES for i, target in enumerate(f["links"].get(kind, []))]
    if rows:
        conn.execute(insert(S.finding_links), rows)
    return len(rows)


def _delete_question(conn: Connection, qid: int) -> None:
    fids = select(S.findings.c.id).where(S.findings.c.question_id == qid)
    conn.execute(delete(S.finding_links).where(S.finding_links.c.finding_id.in_(fids)))
    conn.execute(delete(S.findings).where(S.findings.c.question_id == qid))
    conn.execute(delete(S.finding_topics).where(S.finding_topics.c.question_id == qid))
    conn.execute(delete(S.finding_questions).where(S.finding_questions.c.id == qid))


def import_findings_yaml(project: Project, path: str | os.PathLike, actor: str | None = None) -> dict:
    """Import a findings file (all or nothing); return counts of what was written.

    Strands and evidence items are merged by name/key (new ones created, changed ones updated); each question
    in the file replaces the project's question with the same key (its topics, cells and lists); questions the
    file does not mention are kept.  Unknown strands in cells and links to themes, theories, CMOCs, codes or
    evidence items that do not exist are refused with the names that exist.
    """
    path = Path(path)
    doc = load_yaml_file(path, "findings")
    with project.begin() as conn:
        counts = import_findings_conn(conn, doc, str(path))
        project.log(conn, "findings.import", str(path), actor=actor, **counts)
    return counts


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------
def _load(conn: Connection) -> dict:
    """Everything in the findings tables, ordered."""
    strands = [dict(r) for r in conn.execute(select(S.finding_strands)
                                             .order_by(S.finding_strands.c.ord, S.finding_strands.c.id)).mappings()]
    evidence = [dict(r) for r in conn.execute(select(S.evidence_items)
                                              .order_by(S.evidence_items.c.ord, S.evidence_items.c.id)).mappings()]
    questions = [dict(r) for r in conn.execute(select(S.finding_questions)
                                               .order_by(S.finding_questions.c.ord, S.finding_questions.c.id)).mappings()]
    topics = [dict(r) for r in conn.execute(select(S.finding_topics)
                                            .order_by(S.finding_topics.c.ord, S.finding_topics.c.id)).mappings()]
    rows = [dict(r) for r in conn.execute(select(S.findings).order_by(S.findings.c.ord, S.findings.c.id)).mappings()]
    links: dict[int, dict[str, list[str]]] = {}
    for r in conn.execute(select(S.finding_links).order_by(S.finding_links.c.ord, S.finding_links.c.id)).mappings():
        links.setdefault(r["finding_id"], {}).setdefault(r["target_type"], []).append(r["target"])
    for r in rows:
        r["links"] = {k: links.get(r["id"], {}).get(k, []) for k in LINK_TYPES if links.get(r["id"], {}).get(k)}
    return {"strands": strands, "evidence": evidence, "questions": questions, "topics": topics, "findings": rows}


def _finding_out(r: dict) -> Any:
    if not r["links"]:
        return r["text"]
    out: dict[str, Any] = {"text": r["text"]}
    for kind in LINK_TYPES:
        if r["links"].get(kind):
            out[FIELD_OF[kind]] = list(r["links"][kind])
    return out


def findings_document(conn: Connection) -> dict:
    """The project's findings as a findings-file document (a dict)."""
    data = _load(conn)
    strand_name = {s["id"]: s["name"] for s in data["strands"]}
    strand_ord = {s["id"]: i for i, s in enumerate(data["strands"])}
    doc: dict[str, Any] = {}
    if data["strands"]:
        doc["strands"] = [s["name"] for s in data["strands"]]
    if data["evidence"]:
        doc["evidence"] = [{"key": e["key"], "kind": e["kind"], "citation": e["citation"],
                            **({"note": e["note"]} if e["note"] else {})} for e in data["evidence"]]
    questions = []
    for q in data["questions"]:
        entry: dict[str, Any] = {"key": q["key"]}
        if q["text"]:
            entry["text"] = q["text"]
        mine = [f for f in data["findings"] if f["question_id"] == q["id"]]
        topics = []
        for t in (t for t in data["topics"] if t["question_id"] == q["id"]):
            cells: dict[str, list] = {}
            for f in sorted((f for f in mine if f["topic_id"] == t["id"]),
                            key=lambda f: (strand_ord[f["strand_id"]], f["ord"], f["id"])):
                cells.setdefault(strand_name[f["strand_id"]], []).append(_finding_out(f))
            topics.append({"topic": t["name"], "cells": cells})
        if topics:
            entry["topics"] = topics
        for part in LIST_PARTS:
            items = [_finding_out(f) for f in mine if f["part"] == part]
            heading = q[f"{part}_heading"]
            if heading:
                entry[part] = {"heading": heading, "items": items}
            elif items:
                entry[part] = items
        if q["overall"]:
            entry["overall"] = q["overall"]
        questions.append(entry)
    if questions:
        doc["questions"] = questions
    return doc


def export_findings_yaml(project: Project, path: str | os.PathLike | None = None) -> str:
    """Write the project's findings to ``path`` (if given) in the findings-file format; return the YAML text."""
    from .theoryfile import dump_yaml

    with project.connect() as conn:
        text = dump_yaml(findings_document(conn))
    return write_exported_text(text, path)


# --------------------------------------------------------------------------
# Tags and the tables
# --------------------------------------------------------------------------
def has_findings(project: Project) -> bool:
    """Whether the project holds any summary-of-findings question."""
    with project.connect() as conn:
        return conn.execute(select(S.finding_questions.c.id).limit(1)).first() is not None


class _Tagger:
    """Data-source tags of link targets: computed once per project read."""

    def __init__(self, conn: Connection, by: str):
        if by not in ("kind", "dataset"):
            raise SpRealistError(f"findings: by must be 'kind' or 'dataset', not {by!r}.")
        kinds = dict(conn.execute(select(S.sources.c.id, S.sources.c.kind)).all())
        datasets = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                     .where(S.source_attributes.c.name == "dataset")).all())
        self.tag = {sid: (datasets.get(sid) if by == "dataset" and datasets.get(sid) else SOURCE_TAGS.get(k, k))
                    for sid, k in kinds.items()}
        tree = CodeTree.read(conn)
        self.code_ids = {**{r["name"]: cid for cid, r in tree.rows.items() if tree.name_count[r["name"]] == 1},
                         **{t: found[0] for t in conn.execute(select(S.finding_links.c.target).distinct().where(
                             S.finding_links.c.target_type == "code")).scalars() if len(found := tree.find(t)) == 1}}
        self.code_children: dict[int | None, list[int]] = {}
        for cid, parent in conn.execute(select(S.codes.c.id, S.codes.c.parent_id)):
            self.code_children.setdefault(parent, []).append(cid)
        self.code_codings: dict[int, list[tuple[int, int]]] = {}  # code id -> (coding id, source id)
        for kid, cid, sid in conn.execute(select(S.codings.c.id, S.codings.c.code_id, S.codings.c.source_id)):
            self.code_codings.setdefault(cid, []).append((kid, sid))
        themes = conn.execute(select(S.themes.c.id, S.themes.c.name, S.themes.c.parent_id)).all()
        self.theme_ids = {name: tid for tid, name, _p in themes}
        self.theme_children: dict[int | None, list[int]] = {}
        for tid, _n, parent in themes:
            self.theme_children.setdefault(parent, []).append(tid)
        self.theme_codes: dict[int, set[int]] = {}
        for tid, cid in conn.execute(select(S.theme_codes.c.theme_id, S.theme_codes.c.code_id)):
            self.theme_codes.setdefault(tid, set()).add(cid)
        self.cmoc_evidence: dict[str, list[tuple[int, int]]] = {}  # CMOC key -> (excerpt id, source id)
        for key, xid, sid in conn.execute(select(S.cmocs.c.key, S.excerpts.c.id, S.excerpts.c.source_id)
                                          .select_from(S.cmocs.join(S.cmoc_evidence, S.cmoc_evidence.c.cmoc_id == S.cmocs.c.id)
                                                       .join(S.excerpts, S.excerpts.c.id == S.cmoc_evidence.c.excerpt_id))):
            self.cmoc_evidence.setdefault(key, []).append((xid, sid))
        self.cmoc_keys = set(conn.execute(select(S.cmocs.c.key)).scalars())
        self.theory_cmocs: dict[str, list[str]] = {}
        for tkey, ckey in conn.execute(select(S.theories.c.key, S.cmocs.c.key).select_from(
                S.theories.join(S.theory_cmocs, S.theory_cmocs.c.theory_id == S.theories.c.id)
                .join(S.cmocs, S.cmocs.c.id == S.theory_cmocs.c.cmoc_id))):
            self.theory_cmocs.setdefault(tkey, []).append(ckey)
        self.theory_keys = set(conn.execute(select(S.theories.c.key)).scalars())
        self.evidence_kind = dict(conn.execute(select(S.evidence_items.c.key, S.evidence_items.c.kind)).all())

    def _code_tree(self, cid: int) -> set[int]:
        out, stack = set(), [cid]
        while stack:
            c = stack.pop()
            if c not in out:
                out.add(c)
                stack.extend(self.code_children.get(c, []))
        return out

    def _theme_codes(self, tid: int) -> set[int]:
        codes, stack, seen = set(), [tid], set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            for c in self.theme_codes.get(t, ()):
                codes |= self._code_tree(c)
            stack.extend(self.theme_children.get(t, []))
        return codes

    def exists(self, kind: str, target: str) -> bool:
        return target in {"theme": self.theme_ids, "code": self.code_ids, "cmoc": self.cmoc_keys,
                          "theory": self.theory_keys, "evidence": self.evidence_kind}[kind]

    def basis(self, kind: str, target: str) -> tuple[set[str], set[int], set[int], set[int]]:
        """``(tags, source ids, excerpt ids, coding ids)`` behind one link."""
        codings: set[tuple[int, int]] = set()
        evidence: set[tuple[int, int]] = set()
        if kind == "evidence":
            return ({self.evidence_kind[target]} if target in self.evidence_kind else set()), set(), set(), set()
        if kind == "theme" and target in self.theme_ids:
            for c in self._theme_codes(self.theme_ids[target]):
                codings.update(self.code_codings.get(c, []))
        elif kind == "code" and target in self.code_ids:
            for c in self._code_tree(self.code_ids[target]):
                codings.update(self.code_codings.get(c, []))
        elif kind == "cmoc":
            evidence.update(self.cmoc_evidence.get(target, []))
        elif kind == "theory":
            for ck in self.theory_cmocs.get(target, []):
                evidence.update(self.cmoc_evidence.get(ck, []))
        sources = {sid for _i, sid in codings} | {sid for _i, sid in evidence}
        return ({self.tag[s] for s in sources}, sources, {i for i, _s in evidence}, {i for i, _s in codings})


def summary_of_findings(project: Project, *, question: str | Iterable[str] | None = None,
                        strands: Iterable[str] | None = None, by: str = "kind") -> SummaryOfFindings:
    """The summary-of-findings tables as dataclasses, each finding with its computed tags.

    ``question`` limits them to one question key (or several); ``strands`` chooses and orders the columns.
    Unknown question keys or strand names are refused with the names that exist.  Links whose target no
    longer exists (a theme deleted or renamed since the import) are listed in ``warnings`` and give no tag.
    """
    with project.connect() as conn:
        data = _load(conn)
        tagger = _Tagger(conn, by)
    all_strands = [s["name"] for s in data["strands"]]
    qkeys = [q["key"] for q in data["questions"]]
    if isinstance(question, str):
        question = [question]
    wanted = list(question) if question else qkeys
    unknown = [q for q in wanted if q not in qkeys]
    if unknown:
        raise SpRealistError(f"findings: no question {', '.join(map(repr, unknown))} in the project's summary of "
                             f"findings; the questions are: {_listing(qkeys, '(none: import a findings file)')}.")
    columns = list(strands) if strands is not None else all_strands
    bad = [s for s in columns if s not in all_strands]
    if bad:
        raise SpRealistError(f"findings: no strand {', '.join(map(repr, bad))}; the strands are: "
                             f"{_listing(all_strands, '(none: import a findings file)')}.")
    strand_name = {s["id"]: s["name"] for s in data["strands"]}
    warnings: list[str] = []
    if not qkeys:
        warnings.append("the project has no summary-of-findings tables; import a findings file with "
                        "'sp-realist triangulate import FILE' (format: docs/formats.md).")

    def make(f: dict, place: str) -> Finding:
        tags: set[str] = set()
        sources: set[int] = set()
        excerpts: set[int] = set()
        codings: set[int] = set()
        for kind, targets in f["links"].items():
            for target in targets:
                if not tagger.exists(kind, target):
                    warnings.append(f"{place} links the {LABELS[kind]} "
                                    f"{target!r}, which is no longer in the project; fix the findings file.")
                    continue
                t, s, x, c = tagger.basis(kind, target)
                tags |= t
                sources |= s
                excerpts |= x
                codings |= c
        return Finding(text=f["text"], links={FIELD_OF[k]: list(v) for k, v in f["links"].items()},
                       tags=sorted(tags, key=lambda t: (t.lower(), t)), sources=sorted(sources),
                       excerpts=sorted(excerpts), codings=sorted(codings))

    out = []
    for q in data["questions"]:
        if q["key"] not in wanted:
            continue
        mine = [f for f in data["findings"] if f["question_id"] == q["id"]]
        rows = []
        for t in (t for t in data["topics"] if t["question_id"] == q["id"]):
            cells: dict[str, list[Finding]] = {s: [] for s in columns}
            for f in mine:
                name = strand_name.get(f["strand_id"])
                if f["topic_id"] == t["id"] and name in cells:
                    cells[name].append(make(f, f"question {q['key']}, topic {t['name']!r}, strand {name!r}"))
            rows.append(TopicRow(name=t["name"], cells=cells))
        lists = [FindingsList(part=part, heading=q[f"{part}_heading"] or DEFAULT_HEADINGS[part],
                              items=[make(f, f"question {q['key']}, {part}") for f in mine if f["part"] == part])
                 for part in LIST_PARTS]
        out.append(QuestionFindings(key=q["key"], text=q["text"] or "", strands=columns, topics=rows, lists=lists,
                                    overall=q["overall"]))
    out.sort(key=lambda q: wanted.index(q.key))
    evidence = [{k: e[k] for k in ("key", "kind", "citation", "note")} for e in data["evidence"]]
    return SummaryOfFindings(strands=columns, questions=out, evidence=evidence,
                             warnings=list(dict.fromkeys(warnings)))


def findings_table(project: Project, *, question: str | Iterable[str] | None = None,
                   strands: Iterable[str] | None = None, by: str = "kind") -> pd.DataFrame:
    """One row per question and topic, one column per strand; a cell lists its findings with their tags.

    Columns: ``question``, ``text`` (the question's text), ``topic``, then the strands.  ``df.attrs["warnings"]``
    lists links whose target no longer exists.
    """
    sof = summary_of_findings(project, question=question, strands=strands, by=by)
    rows = []
    for q in sof.questions:
        for t in q.topics:
            rows.append({"question": q.key, "text": q.text, "topic": t.name,
                         **{s: "\n".join(f.tagged for f in t.cells[s]) for s in sof.strands}})
    df = pd.DataFrame(rows, columns=["question", "text", "topic"] + sof.strands)
    df.attrs["warnings"] = sof.warnings
    return df


def findings_lists(project: Project, *, question: str | Iterable[str] | None = None, by: str = "kind") -> pd.DataFrame:
    """The "What worked well" / "What could be improved" lists: one row per item (question, part, heading, item, tags)."""
    sof = summary_of_findings(project, question=question, by=by)
    rows = [{"question": q.key, "part": lst.part, "heading": lst.heading, "item": f.text, "tags": ", ".join(f.tags)}
            for q in sof.questions for lst in q.lists for f in lst.items]
    df = pd.DataFrame(rows, columns=["question", "part", "heading", "item", "tags"])
    df.attrs["warnings"] = sof.warnings
    return df


def findings_long(project: Project, *, question: str | Iterable[str] | None = None,
                  strands: Iterable[str] | None = None, by: str = "kind") -> pd.DataFrame:
    """One row per finding: question, part, topic, strand, text, links ("themes: X; theories: T1"), tags."""
    sof = summary_of_findings(project, question=question, strands=strands, by=by)

    def links(f: Finding) -> str:
        return "; ".join(f"{k}: {t}" for k, ts in f.links.items() for t in ts)

    rows = []
    for q in sof.questions:
        for t in q.topics:
            for s in sof.strands:
                rows += [{"question": q.key, "part": "cell", "topic": t.name, "strand": s, "text": f.text,
                          "links": links(f), "tags": ", ".join(f.tags)} for f in t.cells[s]]
        for lst in q.lists:
            rows += [{"question": q.key, "part": lst.part, "topic": "", "strand": "", "text": f.text,
                      "links": links(f), "tags": ", ".join(f.tags)} for f in lst.items]
    df = pd.DataFrame(rows, columns=["question", "part", "topic", "strand", "text", "links", "tags"])
    df.attrs["warnings"] = sof.warnings
    return df


def evidence_items_frame(project: Project) -> pd.DataFrame:
    """The non-transcript evidence items: key, kind, citation, note."""
    with project.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(S.evidence_items.c.key, S.evidence_items.c.kind, S.evidence_items.c.citation,
                   S.evidence_items.c.note).order_by(S.evidence_items.c.ord, S.evidence_items.c.id)).mappings()]
    return pd.DataFrame(rows, columns=["key", "kind", "citation", "note"])

"""Helpers for the REFI-QDA exchange tests: a realistic small project and XSD validation."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import xmlschema
from sqlalchemy import insert

from sp_realist import schema as S
from sp_realist.sources import Segment, SourceDraft, add_source, ensure_participant, set_attribute
from sp_realist.store import Project

DATA = Path(__file__).parent / "data" / "refi"
_SCHEMAS: dict[str, xmlschema.XMLSchema] = {}


def schema(name: str = "Project.xsd") -> xmlschema.XMLSchema:
    if name not in _SCHEMAS:
        _SCHEMAS[name] = xmlschema.XMLSchema(str(DATA / name))
    return _SCHEMAS[name]


def validate_qdpx(path) -> bytes:
    """Validate a .qdpx's project.qde against the official XSD; return the qde bytes."""
    with zipfile.ZipFile(path) as zf:
        qde = zf.read("project.qde")
    schema("Project.xsd").validate(io.BytesIO(qde))
    return qde


def paragraphs(text: str) -> list[Segment]:
    segs, pos = [], 0
    for line in text.splitlines(keepends=True):
        segs.append(Segment(pos, pos + len(line)))
        pos += len(line)
    if pos < len(text) or not segs:
        segs.append(Segment(pos, len(text)))
    return segs


DIARY = ("What?\nI wasn't told what clients I was seeing, and had to keep asking the receptionist.\n"
         "So what?\nReferral forms go missing — staff don't know the project 😕.\n"
         "Now what?\nAsk the practice manager for an induction.\n")
INTERVIEW = ("Interviewer: How did referrals work?\r\nS1 DK1: GPs refer, but reception staff didn't know "
             "about the service.\r\nInterviewer: And now?\r\nS1 DK1: Better — after the team meeting.\r\n")


def build_sample(project: Project) -> dict:
    """A small Mind Cymru-like project touching every exported table; returns ids by name."""
    ts = "2019-05-14T10:00:00+00:00"
    ids: dict = {}
    with project.begin() as conn:
        ids["diary"] = add_source(conn, SourceDraft(
            name="S1 DK1 2019-05-14", kind="diary", text=DIARY, segments=paragraphs(DIARY), checksum="c1",
            date="2019-05-14", participant_code="S1 DK1", attributes={"site": "S1", "wave": "1"}))
        ids["interview"] = add_source(conn, SourceDraft(
            name="Interview S1 DK1", kind="interview", text=INTERVIEW, segments=paragraphs(INTERVIEW),
            checksum="c2", participant_code="S1 DK1", attributes={"site": "S1"}))
        pid = ensure_participant(conn, "S1 DK1", role="link worker", site="S1")
        set_attribute(conn, "participant", pid, "gender", "female")
        ensure_participant(conn, "S2 DK1", role="link worker", site="S2")
        code_rows = [
            dict(name="Referral process", parent_id=None, definition="How clients reach the link worker.",
                 inclusion="Mentions of referral forms.", exclusion="Onward signposting.", colour="#1f77b4", ord=1),
            dict(name="Induction", parent_id=None, definition="Being introduced to the site.", ord=2),
        ]
        for r in code_rows:
            ids[r["name"]] = conn.execute(insert(S.codes).values(created_at=ts, **r)).inserted_primary_key[0]
        ids["Missing referral forms"] = conn.execute(insert(S.codes).values(
            name="Missing referral forms", parent_id=ids["Referral process"], ord=3, created_at=ts,
            example="Referral forms go missing")).inserted_primary_key[0]

        def code(source, quote, code_name, coder="RA", memo=None, text=None):
            t = text or (DIARY if source == "diary" else INTERVIEW)
            start = t.index(quote)
            return conn.execute(insert(S.codings).values(
                code_id=ids[code_name], source_id=ids[source], start=start, end=start + len(quote), coder=coder,
                origin="manual", memo=memo, created_at=ts)).inserted_primary_key[0]

        ids["c1"] = code("diary", "I wasn't told what clients I was seeing", "Referral process", memo="key quote")
        code("diary", "I wasn't told what clients I was seeing", "Induction", coder="DK")
        code("diary", "Referral forms go missing — staff don't know the project 😕.", "Missing referral forms")
        code("interview", "reception staff didn't know about the service", "Referral process", coder="DK")
        code("interview", "Better — after the team meeting.", "Induction")
        conn.execute(insert(S.memos).values(target_type="project", target_id=None, title="Analysis plan",
                                            text="Code diaries first.", author="RA", created_at=ts, updated_at=ts))
        conn.execute(insert(S.memos).values(target_type="code", target_id=ids["Induction"], title=None,
                                            text="Induction overlaps with training.", author="DK",
                                            created_at=ts, updated_at=ts))
        conn.execute(insert(S.memos).values(target_type="source", target_id=ids["diary"], title="Diary note",
                                            text="Written the same week.", author="RA", created_at=ts, updated_at=ts))
        conn.execute(insert(S.memos).values(target_type="coding", target_id=ids["c1"], title="On the quote",
                                            text="Typical of early weeks.", author="RA", created_at=ts, updated_at=ts))
        conn.execute(insert(S.memos).values(target_type="participant", target_id=pid, title="Background",
                                            text="Started in May.", author="RA", created_at=ts, updated_at=ts))
        tid = conn.execute(insert(S.themes).values(name="Getting started", description="Early weeks.",
                                                   phase="named", created_at=ts)).inserted_primary_key[0]
        conn.execute(insert(S.theme_codes), [dict(theme_id=tid, code_id=ids["Referral process"]),
                                             dict(theme_id=tid, code_id=ids["Induction"])])
        th = conn.execute(insert(S.theories).values(key="T1", title="Link worker frustration", description="Confusion.",
                                                    questions='["Q2", "Q3"]', created_at=ts,
                                                    updated_at=ts)).inserted_primary_key[0]
        c1 = conn.execute(insert(S.cmocs).values(key="T1.1", context="lack of induction at site",
                                                 mechanism_response="confusion", outcome="communication issues",
                                                 status="complete", confidence="moderate", memo="from diaries",
                                                 created_at=ts, updated_at=ts)).inserted_primary_key[0]
        c2 = conn.execute(insert(S.cmocs).values(key="T1.2", context="no referral forms", mechanism_resource="",
                                                 mechanism_response="frustration", outcome="delays", ord=1,
                                                 created_at=ts, updated_at=ts)).inserted_primary_key[0]
        conn.execute(insert(S.theory_cmocs), [dict(theory_id=th, cmoc_id=c1, ord=0), dict(theory_id=th, cmoc_id=c2, ord=1)])
        conn.execute(insert(S.cmoc_relations).values(from_id=c1, to_id=c2, kind="chains"))
        q1 = "had to keep asking the receptionist"
        x1 = conn.execute(insert(S.excerpts).values(source_id=ids["diary"], start=DIARY.index(q1),
                                                    end=DIARY.index(q1) + len(q1), created_at=ts)).inserted_primary_key[0]
        q2 = "I wasn't told what clients I was seeing"  # also a coded span
        x2 = conn.execute(insert(S.excerpts).values(source_id=ids["diary"], start=DIARY.index(q2),
                                                    end=DIARY.index(q2) + len(q2), created_at=ts)).inserted_primary_key[0]
        conn.execute(insert(S.cmoc_evidence), [
            dict(cmoc_id=c1, excerpt_id=x1, role="supports", component="context", analyst="RA",
                 note="first-hand, same week", created_at=ts),
            dict(cmoc_id=c1, excerpt_id=x2, role="supports", component="mechanism_response", analyst=None,
                 note=None, created_at=ts),
            dict(cmoc_id=c2, excerpt_id=x1, role="refutes", component=None, analyst="DK", note=None, created_at=ts),
        ])
        conn.execute(insert(S.appraisals), [
            dict(excerpt_id=x1, analyst="RA", relevance="relevant", trust="high",
                 trust_rationale="first-hand account:\nwritten the same week", interpretation="context",
                 cmoc_judgement="supports", cmoc_id=c1, theory_id=th, theory_change=False, created_at=ts,
                 updated_at=ts),
            dict(excerpt_id=x2, analyst="DK", relevance="concept_box", trust=None, trust_rationale=None,
                 interpretation=None, cmoc_judgement=None, cmoc_id=None, theory_id=None, theory_change=None,
                 created_at=ts, updated_at=ts),
        ])
    return ids


def make_zip(path, entries) -> Path:
    """Write a zip with ``entries`` ({name: bytes or str}) in the given order."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return path


def zip_folder(folder: Path, out: Path) -> Path:
    """Zip a fixture folder keeping its exact (odd) names: Project.qde, Sources/X.TXT."""
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    return out


def snapshot(project: Project) -> dict:
    """What a round trip must preserve, by natural keys (ids and GUIDs aside)."""
    from sqlalchemy import select

    with project.connect() as conn:
        codes = {r["id"]: r for r in conn.execute(select(S.codes)).mappings()}
        srcs = {r["id"]: r for r in conn.execute(select(S.sources)).mappings()}
        parts = {r["id"]: r for r in conn.execute(select(S.participants)).mappings()}
        sattrs = {}
        for r in conn.execute(select(S.source_attributes)).mappings():
            sattrs.setdefault(r["source_id"], {})[r["name"]] = r["value"]
        pattrs = {}
        for r in conn.execute(select(S.participant_attributes)).mappings():
            pattrs.setdefault(r["participant_id"], {})[r["name"]] = r["value"]
        codings = conn.execute(select(S.codings)).mappings().all()
        memos = conn.execute(select(S.memos)).mappings().all()
        themes = conn.execute(select(S.themes)).mappings().all()
        tc = conn.execute(select(S.theme_codes)).mappings().all()
    name = lambda cid: codes[cid]["name"] if cid in codes else None  # noqa: E731
    return {
        "codes": {(c["name"], name(c["parent_id"]), c["definition"], c["inclusion"], c["exclusion"], c["example"],
                   c["colour"]) for c in codes.values()},
        "sources": {(s["name"], s["kind"], s["text"], s["date"],
                     tuple(sorted((k, v) for k, v in sattrs.get(s["id"], {}).items() if k != "refi_sets")),
                     parts[s["participant_id"]]["code"] if s["participant_id"] else None) for s in srcs.values()},
        "codings": {(srcs[c["source_id"]]["name"], name(c["code_id"]), c["start"], c["end"], c["coder"],
                     srcs[c["source_id"]]["text"][c["start"]:c["end"]]) for c in codings},
        "cases": {(p["code"], p["role"], p["site"], tuple(sorted(pattrs.get(p["id"], {}).items())))
                  for p in parts.values()},
        "notes": {(m["title"], m["text"], m["author"]) for m in memos},
        "themes": {(t["name"], t["description"], tuple(sorted(name(x["code_id"]) for x in tc if x["theme_id"] == t["id"])))
                   for t in themes},
    }

"""A small, fully populated project for the report tests, written through the
shared store functions (sources.add_source, get_or_create_excerpt) and
SQLAlchemy Core inserts, so the report tests do not depend on the importers.
"""

from __future__ import annotations

import json

from sqlalchemy import insert

from sp_realist import schema as S
from sp_realist.sources import Segment, SourceDraft, add_source, ensure_participant, get_or_create_excerpt
from sp_realist.store import now

DIARIES = {
    ("S1 DK1", "S1", "2019-05-14"): {
        "What?": "I wasn't told what clients I was seeing and when, so I had to keep asking the receptionist "
                 "for information.",
        "So what?": "There was no induction at the surgery and nobody showed me the fire exits.",
        "Now what?": "A joint induction for reception staff would help everyone understand the referral process.",
    },
    ("S1 DK2", "S1", "2019-06-03"): {
        "What?": "We started the pilot before the paperwork was agreed and the forms changed twice.",
        "So what?": "I feel frustrated because we are constantly managing change.",
        "Now what?": "Agree the paperwork before the start next time.",
    },
    ("S2 DK1", "S2", "2019-07-22"): {
        "What?": "The client was very nervous and asked if we were there to put her in a home.",
        "So what?": "After three sessions the client was calmer and described her problems in more depth.",
        "Now what?": "The first telephone call needs correct and concise information.",
    },
}

INTERVIEW = ("Interviewer: How did referrals reach you?\n\n"
             "Manager: The GP practices were slow to refer at first, and the reception staff did not know the "
             "process.\n\n"
             "Interviewer: And later?\n\n"
             "Manager: Once the practice manager was on board the referrals came steadily.\n")


def diary_draft(code: str, site: str, date: str, sections: dict[str, str], pages: int | None = None) -> SourceDraft:
    text, segs, pos = "", [], 0
    for heading, body in sections.items():
        h = heading + "\n"
        segs.append(Segment(pos, pos + len(h), kind="heading", section=heading))
        pos += len(h)
        b = body + "\n\n"
        segs.append(Segment(pos, pos + len(b), kind="section", section=heading))
        pos += len(b)
        text += h + b
    attrs = {"site": site}
    if pages is not None:
        attrs["pages"] = str(pages)
    return SourceDraft(name=f"{code} {date}", kind="diary", text=text, segments=segs, checksum=f"c-{code}-{date}",
                       date=date, file_name=f"{code.replace(' ', '-').lower()}.docx", file_format="docx",
                       entry_index=0, participant_code=code, attributes=attrs)


def interview_draft() -> SourceDraft:
    text = INTERVIEW
    segs, pos = [], 0
    for part in text.split("\n\n"):
        chunk = part + ("\n\n" if pos + len(part) < len(text) - 1 else "")
        if pos + len(chunk) > len(text):
            chunk = text[pos:]
        speaker = part.split(":", 1)[0]
        segs.append(Segment(pos, pos + len(chunk), kind="turn", speaker=speaker,
                            participant_code="S1 M1" if speaker == "Manager" else None))
        pos += len(chunk)
    if pos != len(text):
        segs[-1].end = len(text)
    return SourceDraft(name="S1 manager interview", kind="interview", text=text, segments=segs, checksum="c-int",
                       date="2020-02-10", file_name="s1-manager.txt", file_format="txt",
                       attributes={"site": "S1"})


def span(text: str, quote: str) -> tuple[int, int]:
    i = text.index(quote)
    return i, i + len(quote)


def populate(project, pages: bool = True) -> dict:
    """Fill ``project``; return the ids the tests check against."""
    ids: dict = {"sources": {}, "excerpts": {}, "codings": {}}
    ts = now()
    with project.begin() as conn:
        for (code, site, date), sections in DIARIES.items():
            ids["sources"][code] = add_source(conn, diary_draft(code, site, date, sections, pages=2 if pages else None))
        ensure_participant(conn, "S1 DK1", role="link worker", site="S1")
        ensure_participant(conn, "S1 DK2", role="link worker", site="S1")
        ensure_participant(conn, "S2 DK1", role="link worker", site="S2")
        ensure_participant(conn, "S1 M1", role="manager", site="S1")
        ids["sources"]["interview"] = add_source(conn, interview_draft())

        def code(name, parent=None, ord_=0, definition=None):
            return conn.execute(insert(S.codes).values(name=name, parent_id=parent, ord=ord_, definition=definition,
                                                       inclusion=f"Mentions of {name.lower()}", created_at=ts)
                                ).inserted_primary_key[0]

        c_ref = code("Referral process", ord_=0, definition="How clients reach the link worker.")
        c_ind = code("Induction", parent=c_ref, ord_=1, definition="Site induction for link workers.")
        c_paper = code("Paperwork", ord_=2, definition="Forms and protocol.")
        c_client = code("Client anxiety", ord_=3, definition="Clients' nerves and worries.")
        texts = {k: None for k in ids["sources"]}
        from sqlalchemy import select
        for k, sid in ids["sources"].items():
            texts[k] = conn.execute(select(S.sources.c.text).where(S.sources.c.id == sid)).scalar_one()

        def coding(code_id, key, quote, origin="manual"):
            s, e = span(texts[key], quote)
            cid = conn.execute(insert(S.codings).values(code_id=code_id, source_id=ids["sources"][key], start=s, end=e,
                                                        coder="RA", origin=origin, created_at=ts)
                               ).inserted_primary_key[0]
            ids["codings"][quote] = cid
            return cid

        coding(c_ref, "S1 DK1", "had to keep asking the receptionist for information")
        coding(c_ind, "S1 DK1", "There was no induction at the surgery")
        coding(c_ref, "interview", "the reception staff did not know the process")
        coding(c_paper, "S1 DK2", "We started the pilot before the paperwork was agreed")
        coding(c_client, "S2 DK1", "The client was very nervous", origin="rule:nervous")

        t_start = conn.execute(insert(S.themes).values(name="Getting started", description="Setting up the service.",
                                                       phase="named", ord=0, created_at=ts)).inserted_primary_key[0]
        t_client = conn.execute(insert(S.themes).values(name="Clients' first contact", phase="defining", ord=1,
                                                        created_at=ts)).inserted_primary_key[0]
        conn.execute(insert(S.theme_codes), [dict(theme_id=t_start, code_id=c_ref), dict(theme_id=t_start, code_id=c_ind),
                                             dict(theme_id=t_start, code_id=c_paper),
                                             dict(theme_id=t_client, code_id=c_client)])

        th1 = conn.execute(insert(S.theories).values(
            key="T1", title="Link worker frustration with confusion in the referral process",
            description="Confusion when the project started.", questions=json.dumps(["Q2", "Q3"]), ord=0,
            created_at=ts, updated_at=ts)).inserted_primary_key[0]
        th2 = conn.execute(insert(S.theories).values(
            key="T2", title="What matters to me in a complex case", description="Clients' complex problems.",
            questions=json.dumps(["Q2"]), ord=1, created_at=ts, updated_at=ts)).inserted_primary_key[0]

        def cmoc(key, context, mech, outcome, ord_, resource=None):
            return conn.execute(insert(S.cmocs).values(
                key=key, context=context, mechanism_resource=resource, mechanism_response=mech, outcome=outcome,
                status="complete", confidence="moderate", ord=ord_, created_at=ts, updated_at=ts)).inserted_primary_key[0]

        m11 = cmoc("T1.1", "Lack of induction at site for project and primary care reception staff", "Creates confusion",
                   "Communication issues and ignorance around the referral process", 0)
        m12 = cmoc("T1.2", "Starting pilot before agreeing paperwork", "Frustration", "Constantly managing change", 1)
        m21 = cmoc("T2.1", "Nervous client", "Client feels calmer", "Describes problems in more depth", 0,
                   resource="more than one session with the link worker")
        conn.execute(insert(S.theory_cmocs), [dict(theory_id=th1, cmoc_id=m11, ord=0), dict(theory_id=th1, cmoc_id=m12, ord=1),
                                              dict(theory_id=th2, cmoc_id=m21, ord=0)])
        conn.execute(insert(S.cmoc_relations).values(from_id=m11, to_id=m12, kind="chains"))

        def evidence(key, quote, cmoc_id, role="supports", component="context", trust="high", judgement="supports",
                     theory=th1, sat=None):
            s, e = span(texts[key], quote)
            xid = get_or_create_excerpt(conn, ids["sources"][key], s, e)
            ids["excerpts"][quote] = xid
            conn.execute(insert(S.cmoc_evidence).values(cmoc_id=cmoc_id, excerpt_id=xid, role=role, component=component,
                                                        analyst="RA", created_at=ts))
            conn.execute(insert(S.appraisals).values(
                excerpt_id=xid, analyst="RA", relevance="relevant", trust=trust, interpretation=component,
                cmoc_judgement=judgement, cmoc_id=cmoc_id, theory_id=theory, theory_change=judgement == "new",
                saturation_note=sat, created_at=ts, updated_at=ts))
            return xid

        evidence("S1 DK1", "had to keep asking the receptionist for information", m11, judgement="new")
        evidence("S1 DK1", "There was no induction at the surgery", m11, sat="seen at two sites")
        evidence("interview", "the reception staff did not know the process", m11, trust="moderate")
        evidence("S1 DK2", "We started the pilot before the paperwork was agreed", m12, judgement="new")
        evidence("S1 DK2", "I feel frustrated because we are constantly managing change", m12,
                 component="mechanism_response")
        evidence("S2 DK1", "After three sessions the client was calmer", m21, theory=th2, judgement="new")
        evidence("S2 DK1", "The client was very nervous", m21, role="refutes", theory=th2, judgement="refutes",
                 trust="low")
        project.log(conn, "test.populate", "report fixture")
    ids["cmocs"] = {"T1.1": m11, "T1.2": m12, "T2.1": m21}
    return ids


def populated_project(location) -> None:
    """Create a project at ``location`` holding what :func:`populate` writes (for the ``built_copy`` fixture:
    built once per session and back end, copied for each test)."""
    from sp_realist.store import Project

    with Project.create(location) as project:
        populate(project)

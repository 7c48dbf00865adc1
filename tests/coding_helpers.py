"""Sources for the coding tests: Driscoll diary entries and interview transcripts,
stored through sp_realist.sources.add_source (as ingest does)."""

from __future__ import annotations

import re

from sp_realist.sources import Segment, SourceDraft, add_source

DIARY_S1 = {
    "What?": "I wasn't told what clients I was seeing. I had to keep asking the receptionist for information.",
    "So what?": "The referral process felt like a brick wall. Referrals were lost and nobody knew who to refer.",
    "Now what?": "I will ask the practice manager for an induction. Reception staff need training too.",
}
DIARY_S2 = {
    "What?": "The practice manager gave me a desk. Clients were referred by the GP.",
    "So what?": "Having a desk made me feel part of the team. The referral forms still went missing.",
    "Now what?": "Keep a log of referrals and missing forms.",
}
INTERVIEW = (
    "Interviewer: How did the referrals reach you?\n\n"
    "S1 DK1: Mostly from reception staff. Sometimes the GP referred people directly.\n\n"
    "Interviewer: And the induction?\n\n"
    "S2 DK1: There was no induction at all. It felt like a brick wall at first.\n"
)


def diary_draft(name: str, participant: str, site: str, sections: dict[str, str], wave: str = "1") -> SourceDraft:
    """A diary entry with heading + body segments per Driscoll section."""
    text, segs, pos = "", [], 0
    for heading, body in sections.items():
        for part, kind in ((heading + "\n", "heading"), (body + "\n", "section")):
            segs.append(Segment(pos, pos + len(part), kind=kind, section=heading))
            text += part
            pos += len(part)
    return SourceDraft(name=name, kind="diary", text=text, segments=segs, checksum=name,
                       participant_code=participant, attributes={"site": site, "wave": wave})


def interview_draft(name: str = "Interview S1", site: str = "S1") -> SourceDraft:
    """Speaker turns; S1 DK1 and S2 DK1 speak, the interviewer has no participant."""
    segs, pos = [], 0
    for block in re.split(r"(?<=\n\n)", INTERVIEW):
        if not block:
            continue
        speaker = block.split(":", 1)[0]
        segs.append(Segment(pos, pos + len(block), kind="turn", speaker=speaker,
                            participant_code=None if speaker == "Interviewer" else speaker))
        pos += len(block)
    return SourceDraft(name=name, kind="interview", text=INTERVIEW, segments=segs, checksum=name,
                       attributes={"site": site, "wave": "2"})


def add_corpus(project) -> dict[str, int]:
    """Two diary entries (S1, S2) and one interview; returns name -> id."""
    ids = {}
    with project.begin() as conn:
        for draft in (diary_draft("S1 DK1 2019-05-14", "S1 DK1", "S1", DIARY_S1),
                      diary_draft("S2 DK1 2019-07-02", "S2 DK1", "S2", DIARY_S2, wave="2"),
                      interview_draft()):
            ids[draft.name] = add_source(conn, draft)
    with project.begin() as conn:
        from sqlalchemy import update

        from sp_realist import schema as S

        conn.execute(update(S.participants).values(role="link worker"))
    return ids


def corpus_project(location, folder):
    """A new project at ``location`` holding CODEBOOK_YAML's codes (imported from a file written in ``folder``)
    and the corpus of :func:`add_corpus`; open (the caller closes it)."""
    from sp_realist.coding.codebook import import_codebook_yaml
    from sp_realist.store import Project

    project = Project.create(location)
    try:
        (folder / "cb.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
        import_codebook_yaml(project, folder / "cb.yaml")
        add_corpus(project)
    except BaseException:
        project.close()
        raise
    return project


CODEBOOK_YAML = """\
codes:
  - name: Referral process
    definition: How clients reach the link worker.
    inclusion: Mentions of referral forms, routes, GP or reception involvement.
    exclusion: Onward signposting from the link worker (code "Signposting").
    example: "I wasn't told what clients I was seeing"
    colour: "#1f77b4"
    rules:
      - name: referral-words
        keywords: [referral, refer]
        lemma: true
        unit: sentence
      - name: reception
        phrases: ["reception staff", "practice manager"]
        unit: segment
      - name: brick-wall
        pattern: [{LOWER: brick}, {LOWER: wall}]
        unit: match
    children:
      - name: Missing referral forms
        definition: Forms that never arrived.
  - name: Induction
    definition: Being introduced to the surgery and its staff.
    rules:
      - name: induction
        keywords: [induction]
        unit: section
  - name: Belonging
themes:
  - name: Getting started
    phase: named
    description: The first weeks at a surgery.
    codes: [Referral process, Induction]
    children:
      - name: Paperwork
        phase: reviewing
        codes: [Missing referral forms]
  - name: Being part of the team
    phase: searching
    codes: [Belonging]
"""

"""Real sample files for the ingest tests: Word documents written with
python-docx, captions and text in several encodings.

Each writer returns the path it wrote and, where useful, the entry facts the
tests compute their expectations from.
"""

from __future__ import annotations

from pathlib import Path

import docx

# Three diary entries: (date as written, ISO date, participant, surgery, what, so what, now what)
ENTRIES = [
    ("14/05/2019", "2019-05-14", "S1 DK1", "S1 GP2",
     "Nobody at reception knew I was coming and two referral forms were missing.",
     "I felt confused and exposed; I had expected an induction.",
     "I will ask for a site induction before seeing more clients."),
    ("21/05/2019", "2019-05-21", "S1 DK1", "S1 GP2",
     "Four clients were booked into one afternoon.",
     "I worried that I was rushing people through.",
     "I will agree a safe number of new clients per session."),
    ("4 June 2019", "2019-06-04", "S1 DK1", "S1 GP3",
     "A young man referred for low mood slowly started to talk.",
     "He said nobody had listened to him like that for ages.",
     "I want to protect the length of first conversations."),
]


def _header(date: str, code: str | None, surgery: str | None) -> tuple[str, str | None]:
    line1 = f"Reflective Diary Date of diary insert: {date}"
    line2 = None
    if code or surgery:
        line2 = f"Participant code: {code or ''}    Surgery code: {surgery or ''}"
    return line1, line2


def diary_text(style: str = "plain", entries=ENTRIES, preamble: str | None = None) -> str:
    """A text diary with several entries; ``style`` picks the heading style."""
    heads = {
        "plain": ("What?", "So what?", "Now what?"),
        "upper": ("WHAT", "SO WHAT", "NOW WHAT"),
        "colon": ("What:", "So What:", "Now What:"),
        "subtitle": ("What?: Returning to the situation", "So what?: Understanding the context",
                     "Now what? Modifying future outcomes"),
        "markdown": ("## What?", "## So what?: Understanding the context", "### Now what?"),
        "bold": ("**What?**", "**So What:**", "**Now what? Next steps**"),
    }[style]
    out = []
    if preamble:
        out.append(preamble + "\n\n")
    for date, _iso, code, surgery, what, so, now in entries:
        l1, l2 = _header(date, code, surgery)
        out.append(l1 + "\n")
        if l2:
            out.append(l2 + "\n")
        out.append("\n")
        for h, body in zip(heads, (what, so, now)):
            out.append(f"{h}\n{body}\n\n")
    return "".join(out)


def write_docx_diary(path: Path, form: str = "headings", entries=ENTRIES) -> Path:
    """A Word diary: ``headings`` (Word Heading 2), ``bold`` (bold paragraphs) or ``table``."""
    d = docx.Document()
    for date, _iso, code, surgery, what, so, now in entries:
        l1, l2 = _header(date, code, surgery)
        d.add_paragraph(l1)
        if l2:
            d.add_paragraph(l2)
        if form == "table":
            t = d.add_table(rows=3, cols=2)
            for row, (h, body) in zip(t.rows, zip(("What?", "So what?", "Now what?"), (what, so, now))):
                row.cells[0].text = h
                row.cells[1].text = body
        elif form == "columns":
            t = d.add_table(rows=2, cols=3)
            for j, (h, body) in enumerate(zip(("What?", "So what?", "Now what?"), (what, so, now))):
                t.rows[0].cells[j].text = h
                t.rows[1].cells[j].text = body
        else:
            for h, body in zip(("What?: Returning to the situation", "So what?", "Now what?"), (what, so, now)):
                if form == "headings":
                    d.add_heading(h, level=2)
                else:
                    d.add_paragraph().add_run(h).bold = True
                d.add_paragraph(body)
        d.add_paragraph("")
    d.save(path)
    return path


TURNS = [
    ("Interviewer", "How did referrals reach you at first?"),
    ("S1 LW1", "Mostly on paper, and some forms never arrived."),
    ("Interviewer", "What helped?"),
    ("S1 LW1", "Meeting the practice manager in person."),
]


def write_docx_speaker_table(path: Path, turns=TURNS, header: bool = True) -> Path:
    d = docx.Document()
    d.add_paragraph("Stakeholder interview, wave 1")
    t = d.add_table(rows=len(turns) + (1 if header else 0), cols=2)
    rows = list(t.rows)
    if header:
        rows[0].cells[0].text, rows[0].cells[1].text = "Speaker", "Text"
        rows = rows[1:]
    for row, (sp, said) in zip(rows, turns):
        row.cells[0].text, row.cells[1].text = sp, said
    d.save(path)
    return path


def write_docx_paragraph_turns(path: Path, turns=TURNS) -> Path:
    d = docx.Document()
    d.add_heading("Interview transcript", level=1)
    for sp, said in turns:
        d.add_paragraph(f"{sp}: {said}")
    d.save(path)
    return path


TEAMS_VTT = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Sarah Jones>Thanks for joining the call today.</v>

00:00:04.200 --> 00:00:07.500
<v Sarah Jones>Could you tell me about your role?</v>

00:00:08.000 --> 00:00:12.000
<v S2 LW1>I started as a link worker in May.</v>

00:00:12.100 --> 00:00:15.000
<v S2 LW1>The first weeks were confusing.</v>

00:00:15.500 --> 00:00:18.000
<v Sarah Jones>Why was that?</v>
"""

ZOOM_VTT = """WEBVTT

1
00:00:01.000 --> 00:00:03.000
Owen Price: Hello, can you hear me?

2
00:00:03.500 --> 00:00:06.000
Rhian: Yes, loud and clear.

3
00:00:06.100 --> 00:00:09.000
Rhian: Shall I start with the referral forms?

4
00:00:09.500 --> 00:00:11.000
Owen Price: Please do.
"""

SRT = """1
00:00:01,000 --> 00:00:03,000
Owen Price: Hello, can you hear me?

2
00:00:03,500 --> 00:00:06,000
Rhian: Yes, loud and clear.

3
00:00:06,100 --> 00:00:09,000
Rhian: The referral forms were missing.
"""

TRANSCRIPT = """Interview: practice manager, site 2 (wave 1)
Date: 12/03/2020

Interviewer: Thank you for making time. How did the service start for you?

P2: We had one meeting with the project lead, and then referrals just began.
Some staff did not know who the link worker was.

[00:05:10] Interviewer: What would you change?
[00:05:14] P2: A proper introduction for reception — and a named contact.
"""

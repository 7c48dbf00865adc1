"""Write the Word versions of two diary keepers' files (S2 DK1, S3 DK3).

The diary entries are illustrative reconstructions written for sp_realist (see
README.md); the text lives here so the .docx files can be regenerated exactly:

    python corpora/mind-cymru-2020/make_docx.py

Each entry is written in the Driscoll reflective-diary template: the date line
and the participant line as paragraphs, then "What?", "So what?" and "Now
what?" as Word "Heading 2" paragraphs, each followed by its body paragraphs.
The output is byte-for-byte deterministic: fixed core properties and fixed zip
entry timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import zipfile
from pathlib import Path

import docx

HERE = Path(__file__).resolve().parent

S2_DK1 = {
    "file": "diaries/s2-dk1.docx",
    "code": "S2 DK1",
    "headings": ("What?", "So what?", "Now what?"),
    "entries": [
        ("07/06/2019", "S2 GP1", [
            "I visited a new client at home because she does not leave the house on her own. She is in her "
            "late eighties and lives alone since her husband died. When I sat down she asked, very anxiously, "
            "whether I had come to move her into a care home.",
            "That question told me how frightened she was of losing her independence. She had been sent a "
            "letter with very little explanation and had spent days imagining the worst. I explained slowly "
            "that my job is to help her keep living in her own home the way she wants to, and she visibly "
            "relaxed.",
            "The first contact matters enormously. People need clear, accurate and short information about "
            "what the service is before we arrive, so they can decide for themselves whether they want it. "
            "I will ask whether our letter can be rewritten in plain language.",
        ]),
        ("28/06/2019", "S2 GP1", [
            "Four new clients were booked in on Thursday on top of two follow-ups, and I still had the "
            "monitoring forms and the service statistics to finish. The phone kept ringing and someone came "
            "to the door twice while I was trying to write up notes.",
            "By the time I got home I was drained and went to bed early. We do not want to turn away anyone "
            "who is struggling, but there is only one of me and I cannot hold all of this on my own. I noticed I was "
            "short with my partner, which is not like me.",
            "I have to look after my own health if I am going to be any use to clients. I will talk to my "
            "manager about how appointments are booked, because the current pattern is not sustainable.",
        ]),
        ("19/07/2019", "S2 GP2", [
            "At our team meeting we looked at everyone's caseload together. My manager asked each of us how "
            "many new clients we could see well in a day, and we agreed as a team to book only one new client "
            "per day, with the rest of the time for follow-ups and paperwork. We also agreed to have a short "
            "catch-up every Friday to support each other.",
            "I felt listened to. It was a decision we made together rather than something handed down, and "
            "that made a real difference to how I feel about the job.",
            "I am going to try the new pattern for a month and keep a note of how drained I feel at the end "
            "of each day. I have also started taking a proper lunch break away from the screen and walking "
            "home twice a week.",
        ]),
        ("23/08/2019", "S2 GP1", [
            "A client I have been supporting since June told me she now goes to the community lunch club on "
            "her own and has started helping to set out the tables. Today was our last planned session. She "
            "thanked me for sitting and listening to her all those weeks.",
            "I loved working with her and I will miss our visits. Closing the case felt sad and successful "
            "at the same time, because the whole point was that she would not need me any more. Seeing "
            "someone reach a goal they set themselves is why I do this work.",
            "I want to build in a proper ending session for every client, and perhaps a follow-up call a "
            "month later so the ending does not feel abrupt for either of us.",
        ]),
        ("04/10/2019", "S2 GP2", [
            "I was asked to visit a client who is ninety-two. Before I went, my colleague and I talked about "
            "whether setting goals for the future made sense at that age. When we got there she had a very "
            "clear idea of what she wanted: to get back to her chapel choir.",
            "Looking back, our conversation beforehand says more about us than about her. I had quietly "
            "assumed that goals are for younger people. Keeping this diary has made me face that assumption, "
            "and I think we might all benefit from training on dignity, respect and working with people "
            "across the whole of life.",
            "I will raise the idea of values-based training at supervision. I also want to write to say that "
            "two of us went together because she is vulnerable, which was the right call for safeguarding.",
        ]),
        ("08/11/2019", "S2 GP1", [
            "This week I gave a talk about social prescribing to a group of college students on a health and "
            "social care course. They asked good questions about who can refer and what happens next. In the "
            "afternoon I saw a client who is sofa surfing and needed help with housing before anything else.",
            "I enjoyed the talk and felt proud of what we offer. The housing case made me think that our "
            "service needs a clearer route for people who are homeless, because mental health support is hard "
            "to use when you do not know where you are sleeping.",
            "My approach will be the same for every client I see, whatever they need, but I want to find out more about "
            "local housing support so I am not starting from scratch next time.",
        ]),
        ("17/01/2020", "S2 GP2", [
            "A hard week. Two clients disclosed things that were upsetting to hear, and the trial forms had to "
            "be finished by Friday. I wondered at one point whether I am emotionally strong enough for this "
            "work, and I ended up finishing my notes on my day off.",
            "I felt low and a bit taken for granted; the numbers seem to matter more than the people some "
            "weeks. What helped was my colleague noticing and making me a cup of tea, and my manager giving me "
            "time back the following week.",
            "Informal support from colleagues is holding us together, but it should not depend on someone "
            "happening to notice. I will suggest a regular peer support slot and agree with my manager that I "
            "do not work on my days off.",
        ]),
    ],
}

S3_DK3 = {
    "file": "diaries/s3-dk3.docx",
    "code": "S3 DK3",
    "headings": ("What? Returning to the situation", "So what? Understanding the context",
                 "Now what? Modifying future outcomes"),
    "entries": [
        ("11/09/2019", "S3 GP2", [
            "I met a new client in a coffee shop in [town] near her work because she did not want to be seen going into "
            "the surgery. We talked for nearly an hour about the pressure she is under at work and the panic "
            "attacks that started in the spring.",
            "She said it was the first time anyone had let her finish a sentence about it. I mostly listened, "
            "reflected back what I heard and asked what mattered most to her. By the end she had chosen two "
            "options to try, a mindfulness course and the advice service about her employer.",
            "Meeting somewhere the client feels comfortable made the conversation possible. I will keep "
            "offering that flexibility where it is safe to do so and check it with my manager.",
        ]),
        ("09/10/2019", "S3 GP1", [
            "A young man arrived with his father, who had pushed for the referral. The father explained at "
            "length what his son needed, while his son sat with his hood up, arms crossed, saying nothing. "
            "When I asked the son directly, he answered sharply that nobody ever asks him.",
            "It felt like the father's appointment rather than his son's. The son became defensive and I do "
            "not think I heard his own view at all. I felt pressured to let the father stay because he had "
            "driven him there.",
            "Next time I will see the client on his own for at least part of the session and give the "
            "relative a separate time to share their worries.",
        ]),
        ("13/11/2019", "S3 GP1", [
            "An older lady brought her daughter along to our second meeting. I was expecting the same problem "
            "as last month, but this time the daughter mainly sat back, filled in dates her mum could not "
            "remember and encouraged her to say what she wanted.",
            "Her mum seemed more at ease with her daughter there, not less. It made me realise that a "
            "relative being present is not always the problem; it depends on whose idea the referral was and "
            "how the relative behaves in the room.",
            "I will ask clients beforehand whether they want someone with them, rather than having a fixed "
            "rule either way.",
        ]),
        ("22/01/2020", "S3 GP2", [
            "The heating in our room at the surgery has broken again and we had to use the staff room for one "
            "appointment. Otherwise a routine week of follow-up calls.",
            "Nothing much to reflect on, except that small practical things like a warm, private room make a "
            "difference to how relaxed clients are. One client kept her coat on for the whole session and "
            "apologised for shivering, which is not the welcome we want to give.",
            "I have reported the heating to the practice manager and will check next week. If it is still not "
            "fixed I will ask to borrow the nurse's room on my mornings there.",
        ]),
    ],
}


def build(spec: dict) -> bytes:
    """The .docx bytes for one keeper: every entry in the Driscoll template."""
    document = docx.Document()
    what, so_what, now_what = spec["headings"]
    for date, surgery, (p_what, p_so, p_now) in spec["entries"]:
        document.add_paragraph(f"Reflective Diary Date of diary insert: {date}")
        document.add_paragraph(f"Participant code: {spec['code']}    Surgery code: {surgery}")
        for heading, body in ((what, p_what), (so_what, p_so), (now_what, p_now)):
            document.add_heading(heading, level=2)
            document.add_paragraph(body)
    props = document.core_properties
    fixed = dt.datetime(2020, 3, 31, 12, 0, 0)
    props.author = "Mind Cymru evaluation (illustrative reconstruction)"
    props.title = f"Reflective diary {spec['code']}"
    props.created = fixed
    props.modified = fixed
    props.last_modified_by = "sp_realist corpus"
    props.revision = 1
    raw = io.BytesIO()
    document.save(raw)
    return _normalise_zip(raw.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed timestamps and order so output is reproducible."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    for spec in (S2_DK1, S3_DK3):
        path = HERE / spec["file"]
        path.write_bytes(build(spec))
        print(f"wrote {path.relative_to(HERE)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

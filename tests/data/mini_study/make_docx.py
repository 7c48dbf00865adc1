"""Write diaries/s2-dk1.docx (a Word diary in the Driscoll template) with python-docx.

Run from this folder: python make_docx.py
"""

from pathlib import Path

import docx

doc = docx.Document()
doc.add_paragraph("Reflective Diary Date of diary insert: 22/07/2019")
doc.add_paragraph("Participant code: S2 DK1    Surgery code: S2 GP1")
doc.add_heading("What?", 2)
doc.add_paragraph("The client was very nervous and asked if we were there to put her in a home.")
doc.add_heading("So what?", 2)
doc.add_paragraph("After three sessions the client was calmer and described her problems in more depth.")
doc.add_heading("Now what?", 2)
doc.add_paragraph("The first telephone call needs correct and concise information.")
doc.save(Path(__file__).parent / "diaries" / "s2-dk1.docx")

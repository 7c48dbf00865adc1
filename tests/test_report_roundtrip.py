"""Property: any CMOC text reaches the Word, HTML and Markdown reports intact (escaped, never lost or mangled)."""

from __future__ import annotations

import json
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from sp_realist import schema as S
from sp_realist.report.api import write_report
from sp_realist.report.docx_writer import xml_safe
from sp_realist.report.model import ReportSettings, build_report_model
from sp_realist.store import Project, now

pytestmark = pytest.mark.sqlite_only("text surviving every report writer; the model is built on both back ends in test_report_model.py")

# any text a project accepts (control characters other than tab and line breaks are refused on the way in)
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t\n\r"),
               min_size=1, max_size=40).filter(
    lambda t: t.strip())


class _Cells(HTMLParser):
    """Text of the cells of one table (``<br>`` as newline, superscript markers skipped)."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.cell, self.rows, self.skip = table_id, False, None, [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []
        elif self.inside and tag == "br" and self.cell is not None:
            self.cell.append("\n")
        elif tag == "sup":
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None
        elif tag == "sup":
            self.skip -= 1

    def handle_data(self, data):
        if self.inside and self.cell is not None and not self.skip:
            self.cell.append(data)


def _project(folder: Path, context: str, outcome: str) -> Project:
    p = Project.create(folder / "p.sprealist")
    ts = now()
    with p.begin() as conn:
        tid = conn.execute(insert(S.theories).values(key="T1", title=f"Theory about {outcome[:10]}",
                                                     questions=json.dumps(["Q1"]), ord=0, created_at=ts,
                                                     updated_at=ts)).inserted_primary_key[0]
        cid = conn.execute(insert(S.cmocs).values(key="T1.1", context=context, mechanism_response="confusion",
                                                  outcome=outcome, status="partial", ord=0, created_at=ts,
                                                  updated_at=ts)).inserted_primary_key[0]
        conn.execute(insert(S.theory_cmocs).values(theory_id=tid, cmoc_id=cid, ord=0))
    return p


@given(context=TEXT, outcome=TEXT)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cmoc_text_survives_every_writer(context, outcome):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = _project(tmp, context, outcome)
        try:
            s = ReportSettings(provenance="none", figure=False, title="T")
            model = build_report_model(project, s)
            expected = model.theories[0].table.rows[0]  # key + the three report columns
            assert expected[0] == "T1.1"
            for fmt in ("docx", "html", "md"):
                write_report(project, tmp / f"r.{fmt}", settings=s, model=model)
        finally:
            project.close()

        doc = docx.Document(str(tmp / "r.docx"))
        table = next(t for t in doc.tables if t.rows[0].cells[0].text == "CMOC")
        assert [c.text for c in table.rows[1].cells] == [xml_safe(v) for v in expected]

        parser = _Cells("table-cmoc_t1")
        parser.feed((tmp / "r.html").read_text(encoding="utf-8"))
        assert parser.rows[1] == expected

        md = (tmp / "r.md").read_text(encoding="utf-8")
        line = next(ln for ln in md.splitlines() if ln.startswith("| T1.1 |"))
        if not any("\\" in v or "<br>" in v for v in expected):
            cells = [c.replace("\\|", "|").replace("<br>", "\n")
                     for c in _split_md_row(line)]
            assert [c.strip() for c in cells] == [v.strip() for v in expected]


def _split_md_row(line: str) -> list[str]:
    """Cells of a Markdown table row, honouring escaped pipes."""
    cells, cur, i = [], "", 1
    body = line[1:-1] if line.endswith("|") else line[1:]
    while i <= len(body):
        ch = body[i - 1]
        if ch == "\\" and i < len(body) and body[i] == "|":
            cur += "\\|"
            i += 2
            continue
        if ch == "|":
            cells.append(cur[1:] if cur.startswith(" ") else cur)
            cur = ""
        else:
            cur += ch
        i += 1
    cells.append(cur[1:] if cur.startswith(" ") else cur)
    return [c[:-1] if c.endswith(" ") else c for c in cells]

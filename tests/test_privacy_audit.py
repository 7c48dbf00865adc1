"""Leak audit over real files: docx (python-docx), html, md, txt, csv, json, yaml, qdpx zips, folders."""

from __future__ import annotations

import json
import zipfile

import docx
import pytest

from sp_realist.errors import CheckFailed
from sp_realist.privacy import assert_no_leaks, audit_paths

KEY = """\
entries:
  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}
  - {original: Dr Patel, replacement: "[GP 1]", variants: [Patel]}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
"""


@pytest.fixture
def key_path(tmp_path):
    p = tmp_path / "key.yaml"
    p.write_text(KEY, encoding="utf-8")
    return p


def make_docx(path, leaky: bool):
    d = docx.Document()
    d.add_paragraph("Findings from site S1.")
    d.add_paragraph("The link worker (S1 DK1) met Dr Patel's team." if leaky else "The link worker (S1 DK1) met [GP 1].")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text = "Quote"
    t.cell(1, 1).text = "Riverside Surgery was busy" if leaky else "[GP surgery] was busy"
    d.sections[0].header.paragraphs[0].text = "Draft"
    d.sections[0].footer.paragraphs[0].text = "Prepared by SARAH" if leaky else "Prepared by the team"
    d.core_properties.author = "Patel" if leaky else "Evaluation team"
    d.save(path)


def write_outputs(folder, leaky: bool):
    folder.mkdir(parents=True, exist_ok=True)
    name = "Sarah" if leaky else "S1 DK1"
    make_docx(folder / "report.docx", leaky)
    (folder / "report.html").write_text(
        f"<html><body><h1>Report</h1>\n<p>Quote from {name}&#39;s diary</p>\n<p>Patella</p></body></html>\n",
        encoding="utf-8")
    (folder / "page.htm").write_text(
        "<p>Seen by <b>Riverside</b>\n Surgery staff</p>\n" if leaky else "<p>Seen by <b>[GP surgery]</b></p>\n",
        encoding="utf-8")
    (folder / "report.md").write_text(f"# Report\n\nLine two\n\n> {name} said so\n", encoding="utf-8")
    (folder / "quotes.csv").write_text(f"source,quote\nS1 DK1,\"fine\"\nS1 DK2,\"{name} rang\"\n", encoding="utf-8")
    (folder / "data.json").write_text(json.dumps({"quotes": [{"text": "ok"}, {"text": f"{name} rang"}]},
                                                 ensure_ascii=True), encoding="utf-8")
    sub = folder / "nested" / "deeper"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "notes.yaml").write_text(f"notes:\n  - fine\n  - met {name}\n", encoding="utf-8")
    with zipfile.ZipFile(folder / "project.qdpx", "w") as z:
        z.writestr("project.qde", f'<?xml version="1.0"?>\n<Project name="x">\n<Source name="{name} interview"/>\n</Project>\n')
        z.writestr("sources/abc.txt", f"Interviewer: hello\n{name}: hi\n")


def test_clean_outputs_pass(runner, cli, tmp_path, key_path):
    write_outputs(tmp_path / "out", leaky=False)
    df = audit_paths([tmp_path / "out"], key_path)
    (tmp_path / "out" / "figure.pdf").write_bytes(b"%PDF-1.4\n\xff\xfe")
    df = audit_paths([tmp_path / "out"], key_path)
    assert df.empty and df.attrs["files"] == 8 and df.attrs["skipped"] == [str(tmp_path / "out" / "figure.pdf")]
    assert_no_leaks([tmp_path / "out"], key_path)
    r = runner.invoke(cli, ["audit", str(tmp_path / "out"), "--key", str(key_path)])
    assert r.exit_code == 0 and "No real names" in r.stderr and "Not scanned" in r.stderr and "figure.pdf" in r.stderr


def test_leaks_are_found_with_their_locations(runner, cli, tmp_path, key_path):
    out = tmp_path / "out"
    write_outputs(out, leaky=True)
    df = audit_paths([out], key_path)
    where = {(p.split("/")[-1], loc) for p, loc in zip(df["file"], df["location"])}
    assert where == {
        ("report.docx", "paragraph 2"),
        ("report.docx", "table 1 row 2 cell 2 paragraph 1"),
        ("report.docx", "section 1 footer paragraph 1"),
        ("report.docx", "document property author"),
        ("report.html", "line 2"),  # "Patella" on line 3 is not a match
        ("page.htm", "line 1"),  # "Riverside</b> Surgery": found in the text content, across the tag
        ("report.md", "line 5"),
        ("quotes.csv", "line 3"),
        ("data.json", "$.quotes[1].text"),
        ("notes.yaml", "line 3"),
        ("project.qdpx", "project.qde: line 3"),
        ("project.qdpx", "sources/abc.txt: line 2"),
    }
    assert set(df["original"]) == {"[hidden]"}
    shown = audit_paths([out / "report.docx"], key_path, show_originals=True)
    assert set(shown["original"]) == {"Dr Patel", "Riverside Surgery", "SARAH", "Patel"}
    with pytest.raises(CheckFailed, match="occurrence"):
        assert_no_leaks([out], key_path)
    r = runner.invoke(cli, ["audit", str(out / "report.md"), str(out / "project.qdpx"), "--key", str(key_path),
                            "-f", "json"])
    assert r.exit_code == 3
    assert [x["location"] for x in json.loads(r.stdout)] == ["line 5", "project.qde: line 3", "sources/abc.txt: line 2"]
    assert "Sarah" not in r.stdout and "Error:" in r.stderr
    # the key can come from the environment
    r = runner.invoke(cli, ["audit", str(out / "report.md")], env={"SP_REALIST_KEY": str(key_path)})
    assert r.exit_code == 3


def test_audit_errors(runner, cli, tmp_path, key_path):
    bad = tmp_path / "broken.qdpx"
    bad.write_bytes(b"not a zip")
    r = runner.invoke(cli, ["audit", str(bad), "--key", str(key_path)])
    assert r.exit_code == 1 and "not a valid zip" in r.stderr
    r = runner.invoke(cli, ["audit", str(tmp_path / "missing"), "--key", str(key_path)])
    assert r.exit_code == 2


@pytest.mark.sqlite_only("audits the bytes of the project file")
def test_project_file_audit_finds_rows_and_leftover_bytes(place, tmp_path, key_path):
    """A name overwritten without compaction lingers in the file; the audit finds it, compaction removes it."""
    from sqlalchemy import update

    from sp_realist import schema as S
    from sp_realist.sources import Segment, SourceDraft, add_source
    from sp_realist.store import Project

    path = place("p")
    text = "Riverside Surgery phoned. " * 20
    with Project.create(path) as p:
        with p.begin() as conn:
            add_source(conn, SourceDraft(name="d", kind="diary", text=text, checksum="x",
                                         segments=[Segment(0, len(text))]))
        df = audit_paths([path], key_path)
        assert len(df) == 20 and set(df["location"]) == {"table sources (id=1) column text"}
        with p.begin() as conn:  # overwrite behind the anonymiser's back: no compaction
            conn.execute(update(S.sources).values(text="[GP surgery] phoned. " * 20))
        leftover = audit_paths([path], key_path)
        assert len(leftover) and all("unused space" in loc for loc in leftover["location"])
        p.compact()
    assert audit_paths([path], key_path).empty


def test_xlsx_outputs_are_scanned(runner, cli, tmp_path, key_path):
    """retrieve/matrices write .xlsx: the audit reads its cells, sheet names, comments and properties."""
    import openpyxl
    from openpyxl.comments import Comment

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Workload"
    sheet["A1"], sheet["B1"], sheet["B2"] = "quote", "attribution", 42
    sheet["A2"] = "We had to keep asking Dr Patel's team."
    sheet["A3"] = "Clean text about [GP surgery]."
    sheet["A3"].comment = Comment("checked with sarah", "RA")
    book.create_sheet("Riverside Surgery")
    book.properties.creator = "Evaluation team"
    leaky = tmp_path / "retrieval.xlsx"
    book.save(leaky)
    df = audit_paths([leaky], key_path)
    assert set(df["location"]) == {"sheet 'Workload' cell A2", "sheet 'Workload' comment on A3",
                                   "sheet 'Riverside Surgery' name"}
    assert df.attrs["skipped"] == [] and set(df["original"]) == {"[hidden]"}
    r = runner.invoke(cli, ["audit", str(tmp_path), "--key", str(key_path), "--format", "csv"])
    assert r.exit_code == 3 and "Patel" not in r.stdout and "Not scanned" not in r.stderr
    clean = openpyxl.Workbook()
    clean.active["A1"] = "The link worker (S1 DK1) met [GP 1]."
    clean.save(tmp_path / "clean.xlsx")
    assert audit_paths([tmp_path / "clean.xlsx"], key_path).empty
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really")
    r = runner.invoke(cli, ["audit", str(tmp_path / "broken.xlsx"), "--key", str(key_path)])
    assert r.exit_code == 1 and "broken.xlsx" in r.stderr and "Excel" in r.stderr and "Traceback" not in r.output

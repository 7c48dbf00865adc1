"""`sp-realist report` through click: outputs, errors, exit codes, the leak-audit gate."""

from __future__ import annotations

import docx
import pytest

from report_data import populated_project
from sp_realist.privacy.anonymise import anonymise


@pytest.fixture
def filled(built_copy):
    """A copy of the populated project (report_data.populate), on each back end: its location."""
    return built_copy(populated_project)


def test_report_each_format(runner, cli, filled, tmp_path):
    for fmt in ("docx", "html", "md"):
        out = tmp_path / f"r.{fmt}"
        r = runner.invoke(cli, ["report", "-p", str(filled), "--to", fmt, str(out)])
        assert r.exit_code == 0, r.output
        assert r.stdout == ""  # messages go to stderr
        assert f"Wrote {out}" in " ".join(r.stderr.split())  # the console wraps long lines
        assert out.stat().st_size > 0
    doc = docx.Document(str(tmp_path / "r.docx"))
    assert doc.paragraphs[0].text == "Evaluation report"


def test_report_options(runner, cli, filled, tmp_path):
    out = tmp_path / "r.md"
    r = runner.invoke(cli, ["report", "-p", str(filled), str(out), "--title", "Our pilot", "--provenance", "none",
                            "--quotes-per-theme", "1", "--tables", str(tmp_path / "tables"), "--no-figure"])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Our pilot\n")
    assert "[P1]" not in text and "Appendix E: Provenance" not in text
    assert "Figure 1" not in text and not (tmp_path / "r-figure.png").exists()
    thematic = text.split("## Thematic findings")[1].split("## Realist findings")[0]
    assert thematic.count("\n> ") == 2  # one quote for each of the two themes
    assert (tmp_path / "tables" / "cmoc_t1.csv").exists()
    assert "tables as CSV" in r.stderr


def test_project_report_settings_are_defaults(runner, cli, filled, tmp_path):
    from sp_realist.store import Project

    with Project.open(filled) as p:
        p.set_setting("report", {"title": "From settings", "subtitle": "Sub", "formats": ["md"]})
    out = tmp_path / "r.md"
    assert runner.invoke(cli, ["report", "-p", str(filled), str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("# From settings\n\n_Sub_")


def test_report_errors(place, runner, cli, filled, tmp_path):
    r = runner.invoke(cli, ["report", "-p", str(filled), str(tmp_path / "r.pdf")])
    assert r.exit_code == 1 and "cannot tell the report format" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["report", "-p", str(filled), str(tmp_path / "missing" / "r.md")])
    assert r.exit_code == 1 and "does not exist" in r.stderr
    r = runner.invoke(cli, ["report", "-p", str(filled), "--to", "docx", str(tmp_path / "r.md")])
    assert r.exit_code == 1 and "name it r.docx" in r.stderr and not (tmp_path / "r.md").exists()
    r = runner.invoke(cli, ["report", "-p", str(filled), "--to", "pdf", str(tmp_path / "r.pdf")])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["report", "-p", str(filled), "--provenance", "margin", str(tmp_path / "r.md")])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["report", "-p", str(place("none")), str(tmp_path / "r.md")])
    assert r.exit_code == 1 and ("No project file" in r.stderr or "is not an sp_realist project" in r.stderr)


def test_help_has_examples(runner, cli):
    for cmd in ("report", "build"):
        r = runner.invoke(cli, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.stdout and "sp-realist " + cmd in r.stdout


KEY = """entries:
  - {original: Sarah Jones, replacement: S1 DK1, variants: [Sarah]}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
"""


@pytest.fixture
def anonymised(place, tmp_path):
    """A project whose sources held real names, anonymised with a key."""
    from sp_realist.sources import Segment, SourceDraft, add_source
    from sp_realist.store import Project

    path = place("anon")
    key = tmp_path / "key.yaml"
    key.write_text(KEY, encoding="utf-8")
    text = "Sarah Jones wrote that Riverside Surgery had no induction for her.\n"
    with Project.create(path) as p:
        with p.begin() as conn:
            add_source(conn, SourceDraft(name="entry 1", kind="diary", text=text, segments=[Segment(0, len(text))],
                                         checksum="x", participant_code="S1 DK1", attributes={"site": "S1"}))
        anonymise(p, str(key))
    return path, key


def test_anonymised_report_is_checked_with_or_without_the_key(runner, cli, anonymised, tmp_path, monkeypatch):
    path, key = anonymised
    monkeypatch.delenv("SP_REALIST_KEY", raising=False)
    out = tmp_path / "r.md"
    r = runner.invoke(cli, ["report", "-p", str(path), str(out)])  # the project's fingerprints check it
    assert r.exit_code == 0, r.output
    assert "Audit: no real name" in r.stderr
    r = runner.invoke(cli, ["report", "-p", str(path), str(out), "--title", "Sarah's diary"])
    assert r.exit_code == 3 and "would hold a name from the applied pseudonym key" in r.stderr
    assert "Sarah" not in r.stderr
    out.unlink()
    r = runner.invoke(cli, ["report", "-p", str(path), str(out), "--key", str(key)])
    assert r.exit_code == 0, r.output
    assert "Audit: no real name" in r.stderr
    assert "Sarah" not in out.read_text(encoding="utf-8")
    # The key may also come from the environment.
    monkeypatch.setenv("SP_REALIST_KEY", str(key))
    out2 = tmp_path / "r2.docx"
    assert runner.invoke(cli, ["report", "-p", str(path), str(out2)]).exit_code == 0


def test_leaking_report_fails_with_exit_3_and_is_not_written(runner, cli, anonymised, tmp_path):
    path, key = anonymised
    for fmt in ("md", "docx", "html"):
        out = tmp_path / f"leak.{fmt}"
        r = runner.invoke(cli, ["report", "-p", str(path), str(out), "--key", str(key),
                                "--title", "Interviews with Sarah Jones", "--tables", str(tmp_path / "t")])
        assert r.exit_code == 3, r.output
        assert "would hold key entry" in r.stderr and "nothing was written" in r.stderr and "Sarah" not in r.stderr
        assert not out.exists()
    assert not (tmp_path / "t").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sp-realist")] == []


def test_wrong_key_is_refused(runner, cli, anonymised, tmp_path):
    path, _key = anonymised
    other = tmp_path / "other.yaml"
    other.write_text("entries:\n  - {original: Owen Price, replacement: S2 DK1}\n", encoding="utf-8")
    r = runner.invoke(cli, ["report", "-p", str(path), str(tmp_path / "r.md"), "--key", str(other)])
    assert r.exit_code == 1 and "not the key applied" in r.stderr
    r = runner.invoke(cli, ["report", "-p", str(path), str(tmp_path / "r.md"), "--key", str(tmp_path / "nokey.yaml")])
    assert r.exit_code == 1 and "key file does not exist" in r.stderr


def test_unwritable_destination_is_one_clear_error(runner, cli, filled, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    r = runner.invoke(cli, ["report", "-p", str(filled), str(not_a_folder / "r.md")])
    assert r.exit_code == 1 and "cannot be written" in r.stderr and "Traceback" not in r.output

"""Templates kept in the project (schema 9, sp_realist.project_templates): a built project renders its report
and if/then statements with the study's templates wherever it is opened; an old project's templates_dir folder
is read in on open; the templates CLI."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.cmoc import add_cmoc, ifthen_statements
from sp_realist.errors import SpRealistError
from sp_realist.project_templates import stored_templates, store_templates
from sp_realist.report import ReportSettings, write_report
from sp_realist.store import Project

MINI = Path(__file__).resolve().parent / "data" / "mini_study"
IFTHEN = "{{ key }} says: {{ outcome|clause }}"
REPORT_MD = "# {{ r.title }} (custom)\n{% for t in r.theories %}{{ t.key }}\n{% endfor %}"


@pytest.mark.sqlite_only("a built project file moved elsewhere")
def test_a_built_project_moved_elsewhere_renders_with_the_study_templates(runner, cli, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(MINI, study)
    (study / "templates").mkdir()
    (study / "templates" / "ifthen.j2").write_text(IFTHEN, encoding="utf-8")
    (study / "templates" / "report.md.j2").write_text(REPORT_MD, encoding="utf-8")
    out = tmp_path / "out"
    r = runner.invoke(cli, ["build", str(study), "--out", str(out)])
    assert r.exit_code == 0, r.output
    built = (out / "report.md").read_text(encoding="utf-8")
    assert built.startswith("# Mini study report (custom)\n")
    # the project file alone, somewhere else: no study, no output folder, no templates folder beside it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "mini.sprealist"
    shutil.copyfile(out / "mini.sprealist", moved)
    shutil.rmtree(study)
    shutil.rmtree(out)
    with Project.open(moved) as project:
        assert project.get_setting("templates_dir") is None
        assert sorted(stored_templates(project)) == ["ifthen.j2", "report.md.j2"]
        statements = ifthen_statements(project)
        worded = statements[statements["wording"] == "template"]
        assert len(worded) and all(s.startswith(f"{k} says: ") for k, s in zip(worded["cmoc"], worded["statement"]))
    r = runner.invoke(cli, ["-p", str(moved), "report", str(elsewhere / "again.md")])
    assert r.exit_code == 0, r.output
    assert (elsewhere / "again.md").read_text(encoding="utf-8") == built
    r = runner.invoke(cli, ["-p", str(moved), "ifthen"])
    assert r.exit_code == 0, r.output
    assert " says: " in r.stdout


def test_a_study_built_into_a_server_renders_with_its_templates_from_anywhere(runner, cli, pg_fresh, tmp_path,
                                                                            monkeypatch):
    """build --into URL stores the study's templates in the server project: with the study and the output
    folder gone, a report and the if/then statements made from the server by URL use them (issue 16)."""
    study = tmp_path / "study"
    shutil.copytree(MINI, study)
    (study / "templates").mkdir()
    (study / "templates" / "ifthen.j2").write_text(IFTHEN, encoding="utf-8")
    (study / "templates" / "report.md.j2").write_text(REPORT_MD, encoding="utf-8")
    url, out = pg_fresh.empty(), tmp_path / "out"
    r = runner.invoke(cli, ["build", str(study), "--out", str(out), "--into", url])
    assert r.exit_code == 0, r.output
    built = (out / "report.md").read_text(encoding="utf-8")
    assert built.startswith("# Mini study report (custom)\n")
    shutil.rmtree(study)
    shutil.rmtree(out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with Project.open(url) as project:
        assert sorted(stored_templates(project)) == ["ifthen.j2", "report.md.j2"]
    r = runner.invoke(cli, ["-p", url, "report", "again.md"])
    assert r.exit_code == 0, r.output
    assert (elsewhere / "again.md").read_text(encoding="utf-8") == built
    r = runner.invoke(cli, ["-p", url, "ifthen"])
    assert r.exit_code == 0, r.output
    assert " says: " in r.stdout


def test_stored_templates_render_on_every_back_end(project_target, tmp_path):
    """A project on a server holds its templates like a file does (no folder to point at)."""
    folder = tmp_path / "tpl"
    (folder / "parts").mkdir(parents=True)
    (folder / "ifthen.j2").write_text("{% include 'parts/lead.j2' %}{{ outcome|clause }}", encoding="utf-8")
    (folder / "parts" / "lead.j2").write_text("{{ key }} -> ", encoding="utf-8")
    with Project.open(project_target) as project:
        add_cmoc(project, "C1", context="A", mechanism_response="B", outcome="Delays")
        assert store_templates(project, folder) == ["ifthen.j2", "parts/lead.j2"]
        shutil.rmtree(folder)
        assert ifthen_statements(project)["statement"][0] == "C1 -> delays."
        out = tmp_path / "r.md"
        store_templates(project, _write(tmp_path / "report.md.j2", REPORT_MD))
        write_report(project, out, settings=ReportSettings(title="Server", figure=False))
        assert out.read_text(encoding="utf-8") == "# Server (custom)\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_broken_stored_template_names_itself_and_its_line(project, tmp_path):
    add_cmoc(project, "C1", outcome="Delays")
    store_templates(project, _write(tmp_path / "ifthen.j2", "line one\n{{ ''.__class__ }}"))
    with pytest.raises(SpRealistError) as info:
        ifthen_statements(project)
    assert str(info.value).startswith("project template ifthen.j2, line 2 ({{ ''.__class__ }})")
    with pytest.raises(SpRealistError, match=r"bad\.j2: template error at line 1"):
        store_templates(project, _write(tmp_path / "bad.j2", "{% if %}"))
    assert list(stored_templates(project)) == ["ifthen.j2"]  # nothing of the refused call was stored
    (tmp_path / "bin.j2").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpRealistError, match="not UTF-8 text"):
        store_templates(project, tmp_path / "bin.j2")


def _older(path: Path, setting: str | None) -> None:
    """Make ``path`` a schema-7 project (before project_templates), with a templates_dir setting."""
    con = sqlite3.connect(path)
    con.execute("DROP TABLE project_templates")
    con.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    if setting is not None:
        con.execute("INSERT INTO meta (key, value) VALUES ('setting:templates_dir', ?)", (f'"{setting}"',))
    con.commit()
    con.close()


@pytest.mark.sqlite_only("an older project file with a templates folder beside it")
def test_an_older_project_reads_its_templates_dir_in_on_open(tmp_path):
    from sp_realist.store import MIGRATIONS, _migrate_to_9

    assert MIGRATIONS[8] is _migrate_to_9
    path = tmp_path / "old.sprealist"
    with Project.create(path) as p:
        add_cmoc(p, "C1", context="A", mechanism_response="B", outcome="Delays")
    _older(path, "style")
    (tmp_path / "style").mkdir()
    (tmp_path / "style" / "ifthen.j2").write_text(IFTHEN, encoding="utf-8")
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        assert p.get_setting("templates_dir") is None
        assert stored_templates(p) == {"ifthen.j2": IFTHEN}
        with p.connect() as conn:
            assert conn.execute(select(S.cmocs.c.key)).scalars().all() == ["C1"]
            assert "templates.adopt" in conn.execute(select(S.audit_log.c.action)).scalars().all()
    shutil.rmtree(tmp_path / "style")
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(path), moved / "old.sprealist")
    with Project.open(moved / "old.sprealist") as p:
        assert ifthen_statements(p)["statement"][0] == "C1 says: delays."


@pytest.mark.sqlite_only("an older project file with a templates folder beside it")
def test_an_older_project_whose_templates_folder_is_gone_says_so_in_one_sentence(runner, cli, tmp_path):
    path = tmp_path / "old.sprealist"
    with Project.create(path) as p:
        add_cmoc(p, "C1", outcome="Delays")
    _older(path, "gone")
    with Project.open(path) as p:  # opening still works; the setting stays until the folder is found
        assert p.schema_version == S.SCHEMA_VERSION and p.get_setting("templates_dir") == "gone"
        with pytest.raises(SpRealistError) as info:
            ifthen_statements(p)
    assert str(info.value) == (
        f"setting templates_dir 'gone': the folder {tmp_path / 'gone'} does not exist here and the project holds "
        "no copy of its templates; store them in the project with 'sp-realist templates add FOLDER' (or create "
        "the folder).")
    r = runner.invoke(cli, ["-p", str(path), "ifthen"])
    assert r.exit_code == 1 and "sp-realist templates add FOLDER" in r.stderr and "Traceback" not in r.output
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "ifthen.j2").write_text(IFTHEN, encoding="utf-8")
    r = runner.invoke(cli, ["-p", str(path), "ifthen"])
    assert r.exit_code == 0 and "C1 says: delays." in r.stdout


def test_templates_cli_add_list_show_remove(runner, cli, project_path, tmp_path):
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "ifthen.j2").write_text(IFTHEN, encoding="utf-8")
    p = ["-p", str(project_path)]
    r = runner.invoke(cli, [*p, "templates", "add", str(folder)])
    assert r.exit_code == 0 and "Stored 1 template in the project: ifthen.j2." in r.output, r.output
    r = runner.invoke(cli, [*p, "templates", "list", "-f", "csv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith(f"ifthen.j2,{len(IFTHEN)},")
    r = runner.invoke(cli, [*p, "templates", "show", "ifthen.j2"])
    assert r.exit_code == 0 and r.stdout.rstrip("\n") == IFTHEN
    r = runner.invoke(cli, [*p, "templates", "show", "ifthen.j3"])
    assert r.exit_code == 1 and "did you mean 'ifthen.j2'?" in r.stderr
    r = runner.invoke(cli, [*p, "templates", "remove", "ifthen.j2"])
    assert r.exit_code == 0
    with Project.open(project_path) as project:
        assert stored_templates(project) == {}
    r = runner.invoke(cli, ["templates", "--help"])
    assert r.exit_code == 0 and "sp-realist templates add" in r.output

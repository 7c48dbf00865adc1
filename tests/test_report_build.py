"""`sp-realist build STUDY_DIR`: the mini study, determinism, refusals, and the shipped corpus end to end."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import docx
import pytest
import yaml
from sqlalchemy import func, select

from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.report.study import build_study, load_study
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only("build makes a project file; build --into a PostgreSQL database is tested in test_postgres.py")

HERE = Path(__file__).parent
MINI = HERE / "data" / "mini_study"
CORPUS = HERE.parent / "corpora" / "mind-cymru-2020"


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".sprealist" not in p.name}


@pytest.fixture(scope="module")
def mini_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini") / "out"
    result = build_study(MINI, out)
    return out, result


def test_build_mini_study_cli_and_rebuild(runner, cli, tmp_path, mini_build):
    out = tmp_path / "built"
    for _ in range(2):  # the second build replaces the first (a project 'build' made)
        r = runner.invoke(cli, ["build", str(MINI), "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert r.stdout == ""
        err = " ".join(r.stderr.split())
        assert err.count("Built ") == 1 and "2 theories, 3 CMOCs" in err
    for name in ("mini.sprealist", "report.docx", "report.html", "report.md", "figures/programme-theory.png",
                 "figures/programme-theory.svg", "figures/programme-theory.graphml", "tables/cmoc_t1.csv",
                 "tables/ifthen_statements.csv", "tables/theme_quotes.csv"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*building*"))
    # Deterministic: byte-identical outputs to the other build of the same study (docx, md, html, csv, figures).
    a, b = outputs(mini_build[0]), outputs(out)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_built_project_holds_the_study(mini_build):
    out, result = mini_build
    study = yaml.safe_load((MINI / "study.yaml").read_text(encoding="utf-8"))
    theories = yaml.safe_load((MINI / "theories.yaml").read_text(encoding="utf-8"))
    analysis = yaml.safe_load((MINI / "analysis.yaml").read_text(encoding="utf-8"))
    n_cmocs = sum(len(t["cmocs"]) for t in theories["theories"])
    assert result.counts["theories"] == len(theories["theories"])
    assert result.counts["cmocs"] == n_cmocs
    assert result.counts["appraisals"] == len(analysis["excerpts"])
    assert result.counts["participants"] == len(study["participants"])
    with Project.open(out / "mini.sprealist") as p:
        with p.connect() as conn:
            kinds = dict(conn.execute(select(S.sources.c.kind, func.count()).group_by(S.sources.c.kind)).all())
            rule_codings = conn.execute(select(func.count()).select_from(S.codings)
                                        .where(S.codings.c.origin.like("rule:%"))).scalar_one()
        assert p.get_setting("build")["title"] == "Mini study"
    assert kinds == {"diary": 4, "interview": 1}  # s1-dk1.txt holds two entries
    assert rule_codings > 0  # autocode: true applied the codebook's rules


def test_built_docx_has_the_theories_and_tables(mini_build):
    out, _ = mini_build
    theories = yaml.safe_load((MINI / "theories.yaml").read_text(encoding="utf-8"))["theories"]
    doc = docx.Document(str(out / "report.docx"))
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 2"]
    for t in theories:
        assert f"{t['key']}: {t['title']}" in heads
    cmoc_tables = [t for t in doc.tables if t.rows[0].cells[1].text == "Context (Resource)"]
    assert [len(t.rows) - 1 for t in cmoc_tables] == [len(t["cmocs"]) for t in theories]
    for table, theory in zip(cmoc_tables, theories):
        for row, c in zip(table.rows[1:], theory["cmocs"]):
            assert row.cells[0].text.startswith(c["key"])
            assert row.cells[1].text.lower() == c["context"].lower()
            assert row.cells[3].text.lower() == c["outcome"].lower()
    statements = [p.text for p in doc.paragraphs if p.style.name == "List Bullet" and p.text[:2] in ("T1", "T2")]
    assert len(statements) == sum(len(t["cmocs"]) for t in theories)
    assert doc.core_properties.created.year == 2020  # the study's date
    assert doc.paragraphs[0].text == "Mini study report"


def test_built_tables_match_the_report(mini_build):
    out, _ = mini_build
    rows = read_csv(out / "tables" / "diary_entries_by_site.csv")
    assert rows[0] == ["Site", "Diary keepers", "Entries", "Words", "Pages"]
    assert rows[1][:3] == ["S1", "2", "3"] and rows[1][4] == "3"  # pages: 2 + 1 from the file attributes
    assert rows[-1][0] == "Total" and rows[-1][2] == "4"
    statements = read_csv(out / "tables" / "ifthen_statements.csv")
    assert statements[0] == ["theory", "cmoc", "statement"]
    assert [r[1] for r in statements[1:]] == ["T1.1", "T1.2", "T2.1"]
    md = (out / "report.md").read_text(encoding="utf-8")
    for r in statements[1:]:
        assert r[2] in md


def test_build_never_overwrites_a_user_project(runner, cli, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    Project.create(other / "mini.sprealist").close()
    before = (other / "mini.sprealist").read_bytes()
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(other)])
    assert r.exit_code == 1 and "not made by 'sp-realist build'" in r.stderr
    assert (other / "mini.sprealist").read_bytes() == before
    (other / "mini.sprealist").unlink()
    (other / "mini.sprealist").write_text("notes")
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(other)])
    assert r.exit_code == 1 and "not an sp_realist project" in r.stderr


def copy_study(tmp_path) -> Path:
    dst = tmp_path / "study"
    shutil.copytree(MINI, dst)
    return dst


def edit_study(folder: Path, **changes) -> None:
    path = folder / "study.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_a_failing_build_leaves_nothing(tmp_path):
    study = copy_study(tmp_path)
    (study / "codings.yaml").write_text(
        "codings:\n  - {source: S1 DK1 2019-05-14, code: Paperwork, quote: words that are not there}\n",
        encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SpRealistError, match="not in the text"):
        build_study(study, out)
    assert not out.exists()  # not even the folder: --out is left as it was
    out.mkdir()
    with pytest.raises(SpRealistError, match="not in the text"):
        build_study(study, out)
    assert [p.name for p in out.iterdir()] == []


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``folder``, hidden ones included."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def broken_template_study(tmp_path) -> Path:
    study = copy_study(tmp_path)
    (study / "templates").mkdir()
    (study / "templates" / "report.md.j2").write_text(
        "{% for t in r.theories %}\n{{ t.key }\n{% endfor %}\n", encoding="utf-8")  # '}' for '}}'
    return study


@pytest.mark.parametrize("before", ["missing", "empty", "previous build"])
def test_a_build_failing_after_the_project_leaves_out_as_it_was(runner, cli, tmp_path, before):
    """A report template with a syntax error fails after the project is made: all or nothing."""
    out = tmp_path / "out"
    if before == "empty":
        out.mkdir()
    elif before == "previous build":
        build_study(MINI, out)
        (out / "notes.txt").write_text("mine")
    snap = snapshot(out)
    study = broken_template_study(tmp_path)
    r = runner.invoke(cli, ["build", str(study), "--out", str(out)])
    assert r.exit_code == 1, r.output
    error = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "report.md.j2" in error[0] and "template" in error[0], r.stderr
    assert "Traceback" not in r.stderr and ".building" not in r.stderr
    assert snapshot(out) == snap  # same files and folders, same bytes, no staging or backup folder left
    assert out.exists() == (before != "missing")
    if before == "previous build":
        with Project.open(out / "mini.sprealist") as p:
            assert p.get_setting("build")["outputs"]  # still the previous build's project


def test_a_figure_that_cannot_be_written_leaves_out_as_it_was(runner, cli, tmp_path, monkeypatch):
    from sp_realist.report import study as study_module

    out = tmp_path / "out"
    build_study(MINI, out)
    snap = snapshot(out)

    def fail(project, model, folder):
        raise OSError(28, "No space left on device", str(folder / "programme-theory.png"))

    monkeypatch.setattr(study_module, "write_figures", fail)
    r = runner.invoke(cli, ["build", str(MINI), "--out", str(out)])
    assert r.exit_code == 1
    assert "No space left on device" in r.stderr and str(out / "figures" / "programme-theory.png") in r.stderr
    assert snapshot(out) == snap


def test_a_failure_while_moving_the_build_into_place_restores_out(tmp_path, monkeypatch):
    out = tmp_path / "out"
    build_study(MINI, out)
    snap = snapshot(out)
    real = os.replace
    moved_in = []

    def flaky(src, dst):
        if ".building-" in str(src):  # a new file moved into out (the old ones were moved aside already)
            moved_in.append(dst)
            if len(moved_in) == 5:
                raise OSError(5, "Input/output error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(SpRealistError, match="Input/output error"):
        build_study(MINI, out)
    monkeypatch.setattr(os, "replace", real)
    assert len(moved_in) == 5
    assert snapshot(out) == snap


@pytest.mark.parametrize("change, message", [
    ({"sources": [{"path": "diaries/missing.txt"}]}, "does not exist"),
    ({"colour": "blue"}, "unknown key"),
    ({"codebook": "nope.yaml"}, "codebook file nope.yaml does not exist"),
    ({"report": {"formats": ["pdf"]}}, "report format"),
    ({"report": {"provenance": "margins"}}, "provenance"),
    ({"sources": [{"path": "diaries/s1-dk1.txt", "kind": "novel"}]}, "kind 'novel'"),
    ({"sources": [{"paths": "diaries/*.odt"}]}, "matches no file"),
])
def test_study_errors_are_caught_before_anything_is_written(tmp_path, change, message):
    study = copy_study(tmp_path)
    edit_study(study, **change)
    with pytest.raises(SpRealistError, match=message):
        load_study(study)
    out = tmp_path / "out"
    with pytest.raises(SpRealistError):
        build_study(study, out)
    assert not out.exists()


def test_not_a_study_folder(runner, cli, tmp_path):
    r = runner.invoke(cli, ["build", str(tmp_path)])
    assert r.exit_code == 1 and "no study.yaml" in r.stderr


def test_a_study_yaml_that_is_not_yaml_is_refused_with_its_line(runner, cli, tmp_path):
    (tmp_path / "study.yaml").write_text("title: ok\nsources: [unclosed\n", encoding="utf-8")
    r = runner.invoke(cli, ["build", str(tmp_path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: {tmp_path / 'study.yaml'}: not valid YAML at line 3; fix the file."
    assert not (tmp_path / "out").exists()
    (tmp_path / "study.yaml").write_bytes("title: caf\xe9\n".encode("cp1252"))
    r = runner.invoke(cli, ["build", str(tmp_path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and "not UTF-8 text; save it as UTF-8." in r.stderr


def test_study_templates_folder_overrides_report_and_ifthen(tmp_path):
    study = copy_study(tmp_path)
    (study / "templates").mkdir()
    (study / "templates" / "report.md.j2").write_text(
        "{% for t in r.theories %}{% for s in t.statements %}{{ s.text }}\n{% endfor %}{% endfor %}", encoding="utf-8")
    (study / "templates" / "ifthen.j2").write_text("When {{ context }}: {{ outcome }}.", encoding="utf-8")
    out = tmp_path / "out"
    build_study(study, out)
    lines = (out / "report.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "When Lack of induction at site for project and primary care reception staff: " \
                       "Repeatedly asking reception staff for information."
    assert len(lines) == 3


@pytest.mark.skipif(not (CORPUS / "study.yaml").is_file(), reason="the Mind Cymru corpus is not in this checkout")
def test_mind_cymru_corpus_end_to_end(tmp_path):
    """The README's main job: four mid-range theories, 13 CMOCs (Tables 6.1-6.4), their if/then statements."""
    out = tmp_path / "mind-cymru"
    result = build_study(CORPUS, out)
    theories = yaml.safe_load((CORPUS / "theories.yaml").read_text(encoding="utf-8"))["theories"]
    assert result.counts["theories"] == 4 and result.counts["cmocs"] == 13
    doc = docx.Document(str(out / "report.docx"))
    cmoc_tables = [t for t in doc.tables if t.rows[0].cells[1].text == "Context (Resource)"]
    assert [len(t.rows) - 1 for t in cmoc_tables] == [3, 4, 3, 3]
    assert [len(t.rows) - 1 for t in cmoc_tables] == [len(t["cmocs"]) for t in theories]
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 2"]
    assert [h.split(":")[0] for h in heads if h[:2] in ("T1", "T2", "T3", "T4")] == ["T1", "T2", "T3", "T4"]
    statements = read_csv(out / "tables" / "ifthen_statements.csv")[1:]
    assert len(statements) == 13 and all(s[2].startswith("If ") for s in statements)
    assert [s[1] for s in statements] == [c["key"] for t in theories for c in t["cmocs"]]
    # Every CMOC is backed by evidence from the corpus (no CMOC typed in without data).
    saturation = read_csv(out / "tables" / "saturation.csv")
    header = saturation[0]
    supporting = header.index("Supporting excerpts")
    assert all(int(r[supporting]) > 0 for r in saturation[1:])
    sites = read_csv(out / "tables" / "diary_entries_by_site.csv")
    assert [r[0] for r in sites[1:]] == ["S1", "S2", "S3", "Total"]
    for name in ("programme-theory.png", "programme-theory.svg", "programme-theory.graphml"):
        assert (out / "figures" / name).stat().st_size > 0


def test_a_study_may_ask_for_tables_only(tmp_path):
    study = copy_study(tmp_path)
    edit_study(study, report={"title": "Tables only", "formats": []})
    out = tmp_path / "out"
    result = build_study(study, out)
    assert not list(out.glob("report.*"))
    assert (out / "tables" / "cmoc_t1.csv").is_file() and (out / "figures" / "programme-theory.svg").is_file()
    assert result.counts["cmocs"] == 3


def test_rebuild_removes_outputs_the_study_no_longer_makes(tmp_path):
    study = copy_study(tmp_path)
    out = tmp_path / "out"
    build_study(study, out)
    assert (out / "report.html").is_file()
    (out / "notes.txt").write_text("mine")  # not made by build: kept
    edit_study(study, report={"title": "Word only", "formats": ["docx"]})
    build_study(study, out)
    assert (out / "report.docx").is_file()
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    assert not (out / "report-figure.png").exists()
    assert (out / "notes.txt").read_text() == "mine"
    with Project.open(out / "mini.sprealist") as p:
        recorded = p.get_setting("build")["outputs"]
    assert "report.docx" in recorded and "tables/cmoc_t1.csv" in recorded and "report.html" not in recorded

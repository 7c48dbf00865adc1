"""Every path a study.yaml names stays inside the study folder (issue 10, "Confined studies").

Absolute paths, '..' escapes, symbolic links pointing out and globs with '..' are refused before the build
starts, with one sentence naming the study.yaml, the entry and its line; nothing is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from sp_realist import schema as S

from sp_realist.errors import SpRealistError
from sp_realist.report.study import build_study, load_study
from sp_realist.store import Project
from sp_realist.yamlio import load_yaml_file_with_lines

HERE = Path(__file__).parent
MINI = HERE / "data" / "mini_study"
SECRET = "The secret diary of someone who never agreed to be in this study.\n"


@pytest.fixture
def study(tmp_path) -> Path:
    dst = tmp_path / "study"
    shutil.copytree(MINI, dst)
    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text(SECRET, encoding="utf-8")
    for name in ("codebook.yaml", "codings.yaml", "theories.yaml", "analysis.yaml"):
        shutil.copyfile(MINI / name, tmp_path / name)
    return dst


def edit(study: Path, **changes) -> str:
    path = study / "study.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    text = yaml.safe_dump(data, sort_keys=False, width=1000)
    path.write_text(text, encoding="utf-8")
    return text


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def refused(runner, cli, study: Path, tmp_path: Path) -> str:
    """Build through the CLI; assert exit 1, one sentence, nothing written; return the message."""
    out = tmp_path / "out"
    r = runner.invoke(cli, ["build", str(study), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    assert not out.exists()
    with pytest.raises(SpRealistError):
        load_study(study)
    return " ".join(r.stderr.split())


def sources(study: Path) -> list:
    return yaml.safe_load((study / "study.yaml").read_text(encoding="utf-8"))["sources"]


@pytest.mark.parametrize("entry,value,says", [
    ("path", "../secret.txt", "resolves to"),
    ("path", "diaries/../../secret.txt", "resolves to"),
    ("path", "ABS/secret.txt", "is an absolute path"),
    ("paths", "../elsewhere/*.txt", "climbs out of the folder with '..'"),
    ("paths", "ABS/elsewhere/*.txt", "is an absolute pattern"),
    ("manifest", "../elsewhere/manifest.csv", "resolves to"),
])
def test_a_source_outside_the_study_is_refused_with_its_line(runner, cli, study, tmp_path, entry, value, says):
    value = value.replace("ABS", str(tmp_path))
    if entry == "manifest":
        (tmp_path / "elsewhere" / "manifest.csv").write_text("path,kind\nsecret.txt,diary\n", encoding="utf-8")
    text = edit(study, sources=sources(study) + [{entry: value, "kind": "diary"}])
    msg = refused(runner, cli, study, tmp_path)
    assert f"{study / 'study.yaml'}, line {line_of(text, value)}:" in msg
    assert value in msg and says in msg and "outside the study folder" in msg


def test_a_symlink_escaping_the_study_is_refused(runner, cli, study, tmp_path):
    (study / "diaries" / "link.txt").symlink_to(tmp_path / "secret.txt")
    text = edit(study, sources=sources(study) + [{"path": "diaries/link.txt", "kind": "diary", "site": "S9"}])
    msg = refused(runner, cli, study, tmp_path)
    assert f"line {line_of(text, 'diaries/link.txt')}:" in msg and "is a link to" in msg
    assert str((tmp_path / "secret.txt").resolve()) in msg


def test_a_glob_matching_a_link_out_of_the_study_is_refused(runner, cli, study, tmp_path):
    (study / "diaries" / "zz-link.txt").symlink_to(tmp_path / "secret.txt")
    text = edit(study, sources=sources(study) + [{"paths": "diaries/*.txt", "kind": "diary", "site": "S9"}])
    msg = refused(runner, cli, study, tmp_path)
    assert f"line {line_of(text, 'diaries/*.txt')}:" in msg and "diaries/zz-link.txt" in msg


def test_a_linked_folder_escaping_the_study_is_refused(runner, cli, study, tmp_path):
    (study / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    text = edit(study, sources=sources(study) + [{"path": "more/secret.txt", "kind": "diary"}])
    msg = refused(runner, cli, study, tmp_path)
    assert f"line {line_of(text, 'more/secret.txt')}:" in msg and "is a link to" in msg


@pytest.mark.parametrize("row", ["../../secret.txt", "ABS/secret.txt", "link.txt"])
def test_a_manifest_row_escaping_the_study_is_refused(runner, cli, study, tmp_path, row):
    row = row.replace("ABS", str(tmp_path))
    (study / "interviews" / "link.txt").symlink_to(tmp_path / "secret.txt")
    manifest = study / "interviews" / "manifest.csv"
    manifest.write_text(manifest.read_text(encoding="utf-8") + f"{row},diary,S1,,,\n", encoding="utf-8")
    text = (study / "study.yaml").read_text(encoding="utf-8")
    msg = refused(runner, cli, study, tmp_path)
    assert f"{study / 'study.yaml'}, line {line_of(text, 'interviews/manifest.csv')}:" in msg
    assert f"{manifest}, line 3: the path {row!r}" in msg and "outside the study folder" in msg


def test_ingest_manifest_by_hand_keeps_absolute_paths(runner, cli, project_path, tmp_path):
    (tmp_path / "far").mkdir()
    target = tmp_path / "far" / "notes.txt"
    target.write_text("Some notes about the pilot.\n", encoding="utf-8")
    manifest = tmp_path / "m" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"path,kind\n{target},interview\n../far/notes.txt,interview\n", encoding="utf-8")
    r = runner.invoke(cli, ["ingest", "--manifest", str(manifest), "-p", str(project_path)])
    assert r.exit_code == 0, r.output
    with Project.open(project_path) as p:
        with p.connect() as conn:
            paths = [r[0] for r in conn.execute(select(S.sources.c.file_path))]
    assert paths == [str(target.resolve())]  # both rows name the same file outside the manifest's folder


@pytest.mark.parametrize("key,value,says", [
    ("codebook", "../codebook.yaml", "resolves to"),
    ("codebook", "ABS/codebook.yaml", "is an absolute path"),
    ("codings", ["codings.yaml", "../codings.yaml"], "resolves to"),
    ("theories", "ABS/theories.yaml", "is an absolute path"),
    ("analysis", ["../analysis.yaml"], "resolves to"),
    ("templates", "../elsewhere", "resolves to"),
    ("report", {"template": "ABS/ref.docx"}, "is an absolute path"),
])
def test_every_file_key_is_confined(runner, cli, study, tmp_path, key, value, says):
    def absolute(v):
        return v.replace("ABS", str(tmp_path)) if isinstance(v, str) else v

    value = [absolute(v) for v in value] if isinstance(value, list) else (
        {k: absolute(v) for k, v in value.items()} if isinstance(value, dict) else absolute(value))
    (tmp_path / "ref.docx").write_bytes((MINI / "diaries" / "s2-dk1.docx").read_bytes())
    text = edit(study, **{key: value})
    msg = refused(runner, cli, study, tmp_path)
    bad = value[-1] if isinstance(value, list) else value["template"] if isinstance(value, dict) else value
    assert f"{study / 'study.yaml'}, line {line_of(text, bad)}:" in msg, msg
    assert bad in msg and says in msg


def test_a_templates_folder_link_out_is_refused(runner, cli, study, tmp_path):
    (study / "templates").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    msg = refused(runner, cli, study, tmp_path)
    assert f"Error: {study / 'study.yaml'}: templates 'templates' is a link to" in msg  # no key, so no line


def test_a_link_inside_the_templates_folder_is_refused(runner, cli, study, tmp_path):
    (study / "templates").mkdir()
    (study / "templates" / "ifthen.j2").symlink_to(tmp_path / "secret.txt")
    text = edit(study, templates="templates")
    msg = refused(runner, cli, study, tmp_path)
    assert f"line {line_of(text, 'templates: templates')}:" in msg and "templates/ifthen.j2" in msg


def test_paths_that_stay_inside_are_fine(study, tmp_path):
    """'..' that stays in the folder, and links that point inside it, are accepted."""
    (study / "diaries" / "again.txt").symlink_to(study / "diaries" / "s1-dk1.txt")
    data = sources(study)
    data[0]["path"] = "interviews/../diaries/s1-dk1.txt"
    edit(study, sources=data + [{"paths": "diaries/again.*", "kind": "diary", "site": "S1"}])
    s = load_study(study)
    assert s.sources[0]["files"] == [study / "interviews/../diaries/s1-dk1.txt"]
    assert s.sources[-1]["files"] == [study / "diaries" / "again.txt"]


def test_yaml_lines_follow_the_document(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("# comment\na: 1\nlist:\n  - one\n  - {b: 2,\n     c: 3}\n", encoding="utf-8")
    data, lines = load_yaml_file_with_lines(path)
    assert data == {"a": 1, "list": ["one", {"b": 2, "c": 3}]}
    assert [lines.line("a"), lines.line("list"), lines.line("list", 0), lines.line("list", 1, "c"),
            lines.line("list", 1, "zzz")] == [2, 3, 4, 6, 5]


def test_yaml_lines_of_nested_aliases_cost_the_document_not_its_expansion(tmp_path):
    path = tmp_path / "laughs.yaml"
    levels = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 60)]
    path.write_text("\n".join(levels) + "\n", encoding="utf-8")
    data, lines = load_yaml_file_with_lines(path)  # 2**60 paths if aliases were expanded
    assert lines.line("a59") == 60 and data["a59"][0] is data["a58"]


@pytest.mark.parametrize("key,value,bad", [
    ("findings", "../findings.yaml", "../findings.yaml"),
    ("findings", ["ABS/findings.yaml"], "ABS/findings.yaml"),
    ("narrative", {"summary": "../summary.md"}, "../summary.md"),
    ("narrative", {"summary": "ABS/summary.md"}, "ABS/summary.md"),
])
def test_findings_and_narrative_files_are_confined(runner, cli, study, tmp_path, key, value, bad):
    (tmp_path / "findings.yaml").write_text("questions: []\n", encoding="utf-8")
    (tmp_path / "summary.md").write_text("A summary.\n", encoding="utf-8")
    bad = bad.replace("ABS", str(tmp_path))
    value = ([v.replace("ABS", str(tmp_path)) for v in value] if isinstance(value, list) else
             {k: v.replace("ABS", str(tmp_path)) for k, v in value.items()} if isinstance(value, dict) else value)
    text = edit(study, **{key: value})
    msg = refused(runner, cli, study, tmp_path)
    assert f"{study / 'study.yaml'}, line {line_of(text, bad)}:" in msg and "outside the study folder" in msg

"""The README's command-line tour runs as written, line by line, on the shipped corpus.

The inputs the tour takes from the user (a pseudonym key, an ethics text, a house-style Word template and a
colleague's QDPX project) are made here; everything else is the corpus's own files.  Every command must succeed
(exit 0), and every diary entry must end up at its own site.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import docx
import pytest

from sp_realist.exchange.qdpx import export_qdpx
from sp_realist.ingest import ingest_paths
from sp_realist.ingest.browse import list_sources
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only("the README's command-line tour, which makes a project file")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "mind-cymru-2020"


def tour_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A 60-second tour of the command line\n\n```bash\n(.*?)```", readme, re.S)
    assert block, "the README has no command-line tour"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    commands = [shlex.split(line, comments=True) for line in lines if line.strip()]
    assert all(c[0] == "sp-realist" for c in commands), "every tour line is an sp-realist command"
    return [c[1:] for c in commands]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("diaries", "interviews"):
        shutil.copytree(CORPUS / folder, work / folder)
    for name in ("codebook.yaml", "codings.yaml", "theories.yaml", "findings.yaml"):
        shutil.copy(CORPUS / name, work / name)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key.yaml").write_text(
        "entries:\n  - {original: Riverside Surgery, replacement: '[GP surgery]'}\n", encoding="utf-8")
    (work / "ethics.md").write_text("Approved by a university research ethics committee.\n", encoding="utf-8")
    house = docx.Document()
    house.add_paragraph("House style")
    house.save(work / "house-style.docx")
    # a colleague's project: one interview of theirs, exported for us
    notes = tmp_path / "colleague" / "s2-carer1.txt"
    notes.parent.mkdir()
    notes.write_text("Interviewer: How did the referral go?\nCarer: Quickly, once the surgery called.\n",
                     encoding="utf-8")
    with Project.create(tmp_path / "colleague" / "theirs.sprealist") as theirs:
        assert ingest_paths(theirs, [notes], kind="interview").ok
        export_qdpx(theirs, work / "colleague.qdpx")
    monkeypatch.chdir(work)
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    monkeypatch.delenv("SP_REALIST_KEY", raising=False)
    return work


def test_readme_command_line_tour_runs_as_written(runner, cli, workspace):
    for args in tour_commands():
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, f"sp-realist {shlex.join(args)} -> exit {r.exit_code}: {r.output[-800:]}"
        assert "Traceback" not in r.output
    with Project.open(workspace / "evaluation.sprealist") as project:
        sources = list_sources(project)
    diaries = sources[sources["kind"] == "diary"]
    assert len(diaries) == 42
    for name, site in zip(diaries["name"], diaries["site"]):
        assert name.startswith(site + " "), (name, site)  # "S3 DK2 ..." at S3, "S3 unidentified ..." at S3
    for produced in ("report.docx", "evaluation.qdpx", "programme-theory.svg"):
        assert (workspace / produced).stat().st_size > 0

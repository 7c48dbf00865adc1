"""The README's Python tour runs as written, on the shipped corpus's diaries, codebook and theories."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only("the README's tour, which makes a project file")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "mind-cymru-2020"


def test_readme_python_tour_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no Python tour"
    shutil.copytree(CORPUS / "diaries", tmp_path / "diaries")
    for name in ("codebook.yaml", "theories.yaml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our own documentation
    project = scope["project"]
    from sp_realist.ingest.browse import list_sources

    sources = list_sources(project)
    assert len(sources) == 42
    # every diary at its own site: the keeper's code names it, the unidentified file was given --site S3
    for name, site in zip(sources["name"], sources["site"]):
        assert name.startswith(site + " "), (name, site)
    assert sum(sources["name"].str.startswith("S3 unidentified")) > 0
    assert (tmp_path / "programme-theory.png").stat().st_size > 0
    project.close()


def test_readme_test_command_is_what_ci_runs():
    """The README's test line and .ci/run run the same command (pytest-xdist on every core)."""
    first_block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    readme_line = [line for line in first_block.splitlines() if "pytest" in line]
    ci_line = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if "pytest" in line]
    assert readme_line == ci_line == ['python -m pip install -q -e ".[test]" && python -m pytest -q -n auto']

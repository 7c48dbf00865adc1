"""Golden files for the documents the ingest commands print: a diary entry
shown as Markdown and the Markdown corpus summary (Table 3.7).

Regenerate after an intended change with
``SP_REALIST_REGEN_GOLDEN=1 python -m pytest tests/test_ingest_golden.py`` and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import ingest_samples as samples

GOLDEN = Path(__file__).parent / "golden"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SP_REALIST_REGEN_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"golden file {path} missing; run with SP_REALIST_REGEN_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_show_and_summary_markdown(runner, cli, project_path, tmp_path):
    d1 = tmp_path / "s1-dk1.md"
    d1.write_text(samples.diary_text("markdown"), encoding="utf-8")
    d2 = samples.write_docx_diary(tmp_path / "s3-unidentified.docx", "table", entries=[
        (d, iso, None, None, w, s, n) for (d, iso, _c, _g, w, s, n) in samples.ENTRIES[1:]])
    iv = tmp_path / "pm.txt"
    iv.write_text(samples.TRANSCRIPT, encoding="utf-8")
    p = ["-p", str(project_path)]
    assert runner.invoke(cli, ["ingest", *p, str(d1), "--site", "S1", "--role", "link worker"]).exit_code == 0
    assert runner.invoke(cli, ["ingest", *p, str(d2), "--site", "S3", "--attr", "pages=2"]).exit_code == 0
    assert runner.invoke(cli, ["ingest", *p, str(iv), "--site", "S2", "--participant", "S2 PM1",
                               "--role", "practice manager"]).exit_code == 0
    r = runner.invoke(cli, ["sources", "show", *p, "S1 DK1 2019-05-14", "--format", "md"])
    assert r.exit_code == 0, r.output
    _check("ingest-show-entry.md", r.stdout)
    r = runner.invoke(cli, ["sources", "show", *p, "pm", "--format", "md", "--no-text"])
    assert r.exit_code == 0, r.output
    _check("ingest-show-interview.md", r.stdout)
    r = runner.invoke(cli, ["summary", *p, "--format", "md"])
    assert r.exit_code == 0, r.output
    _check("ingest-summary.md", r.stdout)

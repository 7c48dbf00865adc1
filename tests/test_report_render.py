"""Markdown and HTML reports (golden files), template overrides, CSV export.

Regenerate the golden files after an intended change with
``SP_REALIST_REGEN_GOLDEN=1 python -m pytest tests/test_report_render.py`` and
review the diff.
"""

from __future__ import annotations

import csv
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from report_data import populate
from sp_realist.errors import SpRealistError
from sp_realist.report.api import write_report
from sp_realist.report.model import ReportSettings, build_report_model
from sp_realist.report.render import export_tables, render_html, render_markdown

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = dict(title="Mini evaluation", subtitle="Golden report", authors=["A. Author"], date="2020-10-01",
                figure=False, questions={"Q2": "What helped and what hindered?", "Q3": "What affected engagement?"})


@pytest.fixture
def filled(populated):
    return populated


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SP_REALIST_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    assert path.exists(), f"golden file {path} missing; run with SP_REALIST_REGEN_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["appendix", "footnotes"])
def test_markdown_golden(filled, tmp_path, mode):
    out = tmp_path / "report.md"
    write_report(filled, out, settings=ReportSettings(provenance=mode, **SETTINGS))
    check_golden(f"report-{mode}.md", out.read_text(encoding="utf-8"))


def test_html_golden(filled, tmp_path):
    out = tmp_path / "report.html"
    write_report(filled, out, settings=ReportSettings(**SETTINGS))
    check_golden("report.html", out.read_text(encoding="utf-8"))


class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "link", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.links, self.errors = [], [], [], []
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag in ("script", "link", "img") and (attrs.get("src") or attrs.get("href")):
            self.external.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append((tag, list(self.stack[-3:])))
        else:
            self.stack.pop()


def test_html_is_well_formed_self_contained_with_inline_svg(filled, tmp_path):
    out = tmp_path / "report.html"
    write_report(filled, out, settings=ReportSettings(**{**SETTINGS, "figure": True}))
    text = out.read_text(encoding="utf-8")
    c = _Checker()
    c.feed(text)
    # SVG children (path, g, ...) are balanced too, so the whole document must nest properly.
    assert c.errors == [] and c.stack == []
    assert len(c.ids) == len(set(c.ids)), "duplicate ids"
    assert set(c.links) <= set(c.ids), "internal links to missing anchors"
    assert c.external == []  # no external scripts, stylesheets or images
    assert "<style>" in text and "<svg" in text and "<?xml" not in text
    model = build_report_model(filled, ReportSettings(**SETTINGS))
    # every table of the model but the CSV-only full saturation table, incl. the provenance appendix
    shown = [t for t in model.tables() if t.key != "saturation"]
    assert len(re.findall(r"<table id=", text)) == len(shown)
    assert len(re.findall(r"<thead>", text)) == len(shown)


def test_html_escapes_project_text(project, tmp_path):
    populate(project)
    out = tmp_path / "r.html"
    write_report(project, out, settings=ReportSettings(title="<script>alert(1)</script> & co", figure=False))
    text = out.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text


def test_markdown_figure_is_a_side_file(filled, tmp_path):
    out = tmp_path / "r.md"
    write_report(filled, out, settings=ReportSettings())
    assert (tmp_path / "r-figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Figure 1: Programme theory" in out.read_text(encoding="utf-8")


@pytest.mark.sqlite_only("templates_dir relative to the project file")
def test_project_can_override_templates(filled, tmp_path):
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "report.md.j2").write_text(
        "# {{ r.title }}\n{% for t in r.theories %}{{ t.key }}={{ t.table.rows|length }}\n{% endfor %}",
        encoding="utf-8")
    model = build_report_model(filled, ReportSettings(title="T", figure=False))
    assert render_markdown(model, [custom]) == "# T\nT1=2\nT2=1\n"
    # The HTML template falls through to the shipped one.
    assert render_html(model, [custom]).startswith("<!DOCTYPE html>")
    # Through the project setting templates_dir, relative to the project file.
    rel = os.path.relpath(custom, Path(filled.location).parent)
    filled.set_setting("templates_dir", rel)
    out = tmp_path / "o.md"
    write_report(filled, out, settings=ReportSettings(title="T", figure=False))
    assert out.read_text(encoding="utf-8") == "# T\nT1=2\nT2=1\n"


def test_broken_template_is_one_clear_error(filled, tmp_path):
    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "report.md.j2").write_text("{{ r.no_such_field }}", encoding="utf-8")
    with pytest.raises(SpRealistError, match="report.md.j2.*template failed"):
        write_report(filled, tmp_path / "x.md", template_dirs=[custom], settings=ReportSettings(figure=False))
    assert not (tmp_path / "x.md").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sp-realist")] == []


def test_every_table_exports_as_csv(filled, tmp_path):
    model = build_report_model(filled, ReportSettings(figure=False))
    paths = export_tables(model, tmp_path / "tables")
    assert sorted(p.stem for p in paths) == sorted(t.key for t in model.tables())
    for t, p in zip(model.tables(), paths):
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == t.columns
        assert rows[1:] == [[("" if v is None else str(v)) for v in r] for r in t.rows]


def test_report_writes_tables_when_asked(filled, tmp_path):
    res = write_report(filled, tmp_path / "r.html", settings=ReportSettings(figure=False), tables_dir=tmp_path / "t")
    assert {p.name for p in res.tables} >= {"cmoc_t1.csv", "cmoc_t2.csv", "codebook.csv", "saturation.csv"}

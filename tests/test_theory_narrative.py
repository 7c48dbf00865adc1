"""A theory's own narrative (section theory:KEY) appears in its section of the realist findings, in every format."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
import yaml

from sp_realist.cmoc import import_theories_yaml
from sp_realist.errors import SpRealistError
from sp_realist.report import write_report
from sp_realist.report.narrative import get_narrative, narrative_frame, set_narrative
from sp_realist.report.study import build_study

THEORIES = Path(__file__).parent / "data" / "cmoc" / "mind_cymru_theories.yaml"
TEXT = "Read together, the entries show **confusion** at the start.\n\n- no induction\n- no named contact\n"


@pytest.fixture
def with_theories(project):
    import_theories_yaml(project, THEORIES)
    return project


def test_theory_narrative_sits_in_its_theory_section(with_theories, tmp_path):
    project = with_theories
    spec = set_narrative(project, section="theory:T1", text=TEXT)
    assert spec.report_section == "Realist findings > T1" and spec.item == 15
    assert get_narrative(project) == {"theory:T1": TEXT}
    frame = narrative_frame(project)
    assert frame[frame["section"] == "theory:T1"]["stored"].item()

    write_report(project, tmp_path / "r.md")
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    t1, t2 = md.index("### T1:"), md.index("### T2:")
    assert t1 < md.index("Read together, the entries show **confusion** at the start.") < t2
    assert "- no named contact" in md[t1:t2]

    write_report(project, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<strong>confusion</strong>" in html and "<li>no named contact</li>" in html

    write_report(project, tmp_path / "r.docx")
    paras = [p.text for p in docx.Document(str(tmp_path / "r.docx")).paragraphs]
    i = next(k for k, p in enumerate(paras) if p.startswith("Read together, the entries show confusion"))
    heading = next(p for p in reversed(paras[:i]) if p.startswith(("T1:", "T2:", "T3:", "T4:")))
    assert heading.startswith("T1:") and "no named contact" in paras[i + 2]


def test_a_theory_narrative_must_name_a_theory(with_theories, runner, cli, project_path, tmp_path):
    with pytest.raises(SpRealistError, match="did you mean 'T1'"):
        set_narrative(with_theories, section="theory:t1", text=TEXT)
    text = tmp_path / "t.md"
    text.write_text(TEXT, encoding="utf-8")
    r = runner.invoke(cli, ["narrative", "set", "theory:T9", str(text), "-p", str(project_path)])
    assert r.exit_code == 1 and "no theory 'T9'" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["narrative", "set", "theory:", str(text), "-p", str(project_path)])
    assert r.exit_code == 2 and "theory:KEY" in r.output
    r = runner.invoke(cli, ["narrative", "set", "theory:T2", str(text), "-p", str(project_path)])
    assert r.exit_code == 0 and "Realist findings > T2" in " ".join(r.stderr.split())


@pytest.mark.sqlite_only("a study built into a project file; build --into is tested in test_postgres.py")
def test_a_study_naming_an_unknown_theory_builds_nothing(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "notes.txt").write_text("Interviewer: How was it?\nS1 LW1: Slow at first.\n", encoding="utf-8")
    (study / "theories.yaml").write_text(THEORIES.read_text(encoding="utf-8"), encoding="utf-8")
    (study / "t9.md").write_text(TEXT, encoding="utf-8")
    (study / "study.yaml").write_text(yaml.safe_dump({
        "title": "Mini", "sources": [{"path": "notes.txt", "kind": "interview"}], "theories": ["theories.yaml"],
        "narrative": {"theory:T9": "t9.md"}, "report": {"formats": ["md"]}}), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SpRealistError, match=r"theory:T9 names no theory of the project"):
        build_study(study, out)
    assert not out.exists() or not any(out.iterdir())


def test_theory_memos_marked_for_the_report_appear_in_its_section(with_theories, runner, cli, project_path, tmp_path):
    from sp_realist.coding.memos import add_memo, list_memos

    project = with_theories
    add_memo(project, "Induction gaps were worst at branch surgeries.", on="theory", target="T1",
             title="Branch surgeries", author="RA", in_report=True)
    add_memo(project, "Working note, not for the commissioner.", on="theory", target="T1", author="RB")
    r = runner.invoke(cli, ["memo", "add", "Ask S2 about the forms.", "--theory", "T2", "-p", str(project_path)])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["memo", "report", "3", "-p", str(project_path)])  # marked afterwards
    assert r.exit_code == 0, r.output
    assert list_memos(project)["in_report"].tolist() == [True, False, True]
    # only memos on a theory can be marked; one sentence, exit 1
    r = runner.invoke(cli, ["memo", "add", "x", "--report", "-p", str(project_path)])
    assert r.exit_code == 1 and "Only a memo on a theory" in r.stderr

    write_report(project, tmp_path / "r.md")
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    t1, t2, t3 = md.index("### T1:"), md.index("### T2:"), md.index("### T3:")
    assert "**Branch surgeries.** Induction gaps were worst at branch surgeries. _(RA)_" in md[t1:t2]
    assert "Ask S2 about the forms." in md[t2:t3]
    assert "Working note" not in md
    write_report(project, tmp_path / "r.docx")
    texts = [p.text for p in docx.Document(str(tmp_path / "r.docx")).paragraphs]
    assert "Branch surgeries. Induction gaps were worst at branch surgeries. (RA)" in texts
    assert not any("Working note" in t for t in texts)
    r = runner.invoke(cli, ["memo", "report", "1", "--off", "-p", str(project_path)])
    assert r.exit_code == 0
    write_report(project, tmp_path / "again.md")
    assert "Branch surgeries" not in (tmp_path / "again.md").read_text(encoding="utf-8")


def test_a_version_6_project_gains_the_report_mark_and_keeps_its_memos(place, tmp_path):
    from sqlalchemy import inspect

    from conftest import run_sql

    from sp_realist import schema as S
    from sp_realist.coding.memos import add_memo, list_memos
    from sp_realist.store import MIGRATIONS, Project, _migrate_to_7

    path = place("old")
    with Project.create(path) as p:
        add_memo(p, "An early memo.", author="RA")
    version = next(v for v, f in MIGRATIONS.items() if f is _migrate_to_7)
    run_sql(path, "ALTER TABLE memos DROP COLUMN in_report",
            f"UPDATE meta SET value='{version}' WHERE key='schema_version'")
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION
        with p.connect() as conn:
            assert "in_report" in {c["name"] for c in inspect(conn).get_columns("memos")}
        memos = list_memos(p)
    assert memos["text"].tolist() == ["An early memo."] and memos["in_report"].tolist() == [False]

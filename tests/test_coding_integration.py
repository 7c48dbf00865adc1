"""End to end on real files: a python-docx diary and a text interview ingested by sp_realist.ingest,
the reproduction corpus's codebook.yaml, autocoding, codings.yaml, retrieval; golden documents."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from sp_realist.coding import (
    autocode,
    coded_excerpts,
    export_codebook_yaml,
    import_codebook_yaml,
    import_codings_yaml,
    list_codings,
    theme_table,
)
from sp_realist.coding import memos as memo_mod
from sp_realist.coding.themes import theme_table_flat

ROOT = Path(__file__).resolve().parents[1]
CORPUS_CODEBOOK = ROOT / "corpora" / "mind-cymru-2020" / "codebook.yaml"
GOLDEN = Path(__file__).parent / "data" / "coding"

ENTRIES = [
    ("14/05/2019", {
        "What?: Returning to the situation": "My first morning at the surgery. Nobody at the front desk knew I was "
        "coming. Two of the referral forms were missing, so I kept asking the receptionist who was next.",
        "So what?: Understanding the context": "I felt confused and exposed. I had expected a short induction, "
        "even just a walk round the building.",
        "Now what?: Modifying future outcomes": "I will ask the practice manager for a proper introduction and "
        "agree who books my appointments.",
    }),
    ("21/05/2019", {
        "What?: Returning to the situation": "Four clients were booked into one afternoon. One referral was for "
        "a sick note, which is not right for us.",
        "So what?: Understanding the context": "It is like banging your head against a brick wall.",
        "Now what?: Modifying future outcomes": "I will talk to my manager about the workload.",
    }),
]
INTERVIEW = (
    "Interviewer: How do clients reach you?\n\n"
    "S1 LW1: Mostly through reception. The receptionist books them in and the GP refers the complex ones.\n\n"
    "Interviewer: And the paperwork?\n\n"
    "S1 LW1: The referral form changed three times in a year, so nobody knew which one to use.\n"
)


def _write_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    for date, sections in ENTRIES:
        d.add_paragraph(f"Reflective Diary Date of diary insert: {date}")
        d.add_paragraph("Participant code: S1 DK1    Surgery code: S1 GP2")
        for heading, body in sections.items():
            d.add_heading(heading, level=2)
            d.add_paragraph(body)
    d.save(path)


def _ingest(project, tmp_path):
    from sp_realist.ingest import ingest_paths

    diary = tmp_path / "s1-dk1.docx"
    _write_docx(diary)
    interview = tmp_path / "s1-lw1-2020-03.txt"
    interview.write_text(INTERVIEW, encoding="utf-8")
    report = ingest_paths(project, [diary], kind="diary", site="S1")
    assert report.ok, report.frame()
    report = ingest_paths(project, [interview], kind="interview", site="S1", speaker_map=["S1 LW1=S1 LW1"])
    assert report.ok, report.frame()


@pytest.fixture
def study(project, tmp_path):
    """The two files with the reproduction corpus's codebook (codes, rules, themes)."""
    _ingest(project, tmp_path)
    import_codebook_yaml(project, CORPUS_CODEBOOK)
    return project


@pytest.fixture
def own_study(project, tmp_path):
    """The two files with the tests' own codebook, for golden documents that must not
    change when the corpus codebook is edited."""
    from coding_helpers import CODEBOOK_YAML

    _ingest(project, tmp_path)
    (tmp_path / "codebook.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
    import_codebook_yaml(project, tmp_path / "codebook.yaml")
    return project


def _sources(project):
    from sp_realist.sources import sources_frame

    return sources_frame(project)


def test_autocode_real_files_with_the_corpus_codebook(study):
    src = _sources(study)
    diaries = src[src["kind"] == "diary"]["name"].tolist()
    assert len(diaries) == 2
    hits = autocode(study)
    codings = list_codings(study, origin="rule:*")
    assert len(codings) == int(hits["new"].sum()) > 0
    # Every coding of the keyword rule is a sentence containing one of its keywords.
    rules = {r["name"]: r for c in yaml.safe_load(CORPUS_CODEBOOK.read_text())["codes"] for r in c.get("rules", [])}
    words = rules["referral-words"]["keywords"]
    rx = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.I)
    ref = codings[codings["origin"] == "rule:referral-words"]
    assert len(ref) and all(rx.search(t) for t in ref["text"])
    # ... and every sentence of the texts containing a keyword was coded.
    from sp_realist.coding.units import SourceUnits

    with study.connect() as conn:
        expected = set()
        for sid, name in zip(src["id"], src["name"]):
            u = SourceUnits.load(conn, int(sid))
            for a, b in u.units("sentence"):
                if rx.search(u.text[a:b]):
                    expected.add((name, u.text[a:b]))
    assert set(zip(ref["source"], ref["text"])) == expected
    assert autocode(study)["new"].sum() == 0  # idempotent


def test_codings_yaml_on_ingested_sources(study, tmp_path):
    src = _sources(study)
    first = src[src["kind"] == "diary"]["name"].iloc[0]
    interview = src[src["kind"] == "interview"]["name"].iloc[0]
    path = tmp_path / "codings.yaml"
    path.write_text(yaml.safe_dump({"codings": [
        {"source": first, "code": "Missing referral forms", "quote": "Two of the referral forms were missing",
         "coder": "RA"},
        {"source": first, "code": "Induction and introductions", "section": "So what?", "coder": "RA"},
        {"source": interview, "code": "Paperwork and changing forms",
         "quote": "The referral form changed three times in a year", "unit": "sentence", "coder": "RB"},
    ]}), encoding="utf-8")
    assert import_codings_yaml(study, path)["added"] == 3
    ex = coded_excerpts(study, ["Missing referral forms", "Induction and introductions",
                                "Paperwork and changing forms"]).set_index("code")
    assert ex.loc["Missing referral forms", "attribution"] == "(S1 DK1)"
    assert ex.loc["Induction and introductions", "text"].startswith("I felt confused and exposed.")
    assert ex.loc["Paperwork and changing forms", "text"] == \
        "The referral form changed three times in a year, so nobody knew which one to use."
    assert ex.loc["Paperwork and changing forms", "attribution"] == "(S1 LW1)"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run the test with UPDATE_GOLDEN=1 and review the file"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)"


def test_golden_documents(own_study, monkeypatch):
    from sp_realist.output import to_markdown

    autocode(own_study)
    _golden("theme-table.md", to_markdown(theme_table_flat(theme_table(own_study, quotes_per_theme=2))))
    _golden("codebook-export.yaml", export_codebook_yaml(own_study))
    monkeypatch.setattr(memo_mod, "now", lambda: "2026-11-23T12:00:00+00:00")
    memo_mod.add_memo(own_study, "Referral routes were unclear at S1.", on="code", target="Referral process",
                      author="RA")
    memo_mod.add_memo(own_study, "Check wave 2 interviews.", title="To do", author="RB")
    _golden("memos.md", memo_mod.export_memos(own_study))


def test_corpus_codebook_round_trips(place, study, tmp_path):
    from sp_realist.store import Project

    text = export_codebook_yaml(study)
    source = yaml.safe_load(CORPUS_CODEBOOK.read_text(encoding="utf-8"))
    exported = yaml.safe_load(text)

    def names(items):
        return [(c["name"], names(c.get("children", []))) for c in items]

    assert names(exported["codes"]) == names(source["codes"])
    assert names(exported["themes"]) == names(source["themes"])
    (tmp_path / "again.yaml").write_text(text, encoding="utf-8")
    with Project.create(place("again")) as other:
        import_codebook_yaml(other, tmp_path / "again.yaml")
        assert export_codebook_yaml(other) == text

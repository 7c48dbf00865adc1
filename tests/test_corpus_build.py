"""The shipped Mind Cymru corpus, built end to end with ``sp-realist build``.

``test_corpus_content.py`` checks the corpus files on their own; this module
checks that the toolkit reads them the way the corpus intends: every diary
entry becomes the source the analysis names, every quote locates, and the
built project and report carry the 4 theories, the 13 CMOCs with evidence
from the diary keepers the report cites, and the Table 3.7-style summary.
Expectations are computed from the corpus files, not typed in.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.sources import attribution_map, locate_excerpt
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only(
    "built from the study into a project file; build --into a PostgreSQL database gives the same outputs "
    "(test_postgres.py)")

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("corpus_content", HERE / "test_corpus_content.py")
content = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(content)
CORPUS = content.CORPUS


@pytest.fixture(scope="module")
def built(corpus_build):
    """The corpus built once through the CLI (conftest's session fixture); yield (out folder, open project)."""
    out = corpus_build
    study = yaml.safe_load((CORPUS / "study.yaml").read_text(encoding="utf-8"))
    project = Project.open(out / study["project"])
    yield out, project
    project.close()


@pytest.fixture(scope="module")
def expected_entries():
    study = content.load("study.yaml")
    out = {}
    for src in study["sources"]:
        if src.get("kind") == "diary":
            for name, body in content.split_entries(content.file_text(CORPUS / src["path"]),
                                                    src.get("participant"), src.get("site")).items():
                out[name] = (src, body)
    return out


def test_diary_entries_become_the_named_sources(built, expected_entries):
    _out, project = built
    with project.connect() as conn:
        rows = conn.execute(select(S.sources.c.name, S.sources.c.kind, S.sources.c.text)).all()
    diaries = {name: text for name, kind, text in rows if kind == "diary"}
    assert set(diaries) == set(expected_entries)
    for name, text in diaries.items():
        # the stored entry holds the same words as the entry the content test split out
        assert text.split() == expected_entries[name][1].split(), name
    interviews = {name for name, kind, _ in rows if kind == "interview"}
    with (CORPUS / "interviews" / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        assert interviews == {Path(r["path"]).stem for r in csv.DictReader(fh)}


def test_every_quote_locates_in_the_built_project(built):
    _out, project = built
    specs = [("analysis.yaml", e) for e in content.load("analysis.yaml")["excerpts"]]
    specs += [("codings.yaml", c) for c in content.load("codings.yaml")["codings"]]
    with project.connect() as conn:
        for where, spec in specs:
            sid, start, end = locate_excerpt(conn, spec, where)
            stored = conn.execute(select(S.sources.c.text).where(S.sources.c.id == sid)).scalar_one()
            assert " ".join(stored[start:end].split()) == " ".join(spec["quote"].split())


def test_theories_cmocs_and_evidence_from_cited_keepers(built):
    _out, project = built
    with project.connect() as conn:
        theories = [r[0] for r in conn.execute(select(S.theories.c.key).order_by(S.theories.c.ord))]
        cmocs = sorted(r[0] for r in conn.execute(select(S.cmocs.c.key)))
        who = attribution_map(conn)
        rows = conn.execute(
            select(S.cmocs.c.key, S.cmoc_evidence.c.role, S.excerpts.c.source_id)
            .select_from(S.cmoc_evidence.join(S.cmocs, S.cmocs.c.id == S.cmoc_evidence.c.cmoc_id)
                         .join(S.excerpts, S.excerpts.c.id == S.cmoc_evidence.c.excerpt_id))
        ).all()
    assert theories == ["T1", "T2", "T3", "T4"]
    assert cmocs == sorted(content.CMOC_KEYS)
    supports = defaultdict(set)
    backing = defaultdict(set)
    counts = Counter()
    for key, role, sid in rows:
        keeper = who[sid].replace(", unidentified", " unidentified")
        assert keeper in content.CITED[key.split(".")[0]], (key, keeper)
        backing[key.split(".")[0]].add(keeper)
        if role == "supports":
            supports[key].add(keeper)
            counts[key] += 1
    assert dict(backing) == content.CITED  # each theory rests on exactly the keepers chapter 6 cites for it
    expected = Counter(ev["cmoc"] for ex in content.load("analysis.yaml")["excerpts"]
                       for ev in ex.get("evidence", []) if ev["role"] == "supports")
    assert counts == expected
    assert all(len(supports[k]) >= 2 for k in content.CMOC_KEYS)


def test_report_has_the_cmoc_tables_ifthen_statements_and_table_3_7(built, expected_entries):
    import docx

    out, _project = built
    theories = content.load("theories.yaml")["theories"]
    md = (out / "report.md").read_text(encoding="utf-8")
    # (each statement ends with the participants of its supporting evidence, "(S1 DK1; S3 DK2)")
    statements = re.findall(r"^- \*\*(T\d\.\d)\*\*: (If .+) \((?:S\d[^()]*)\)$", md, re.M)
    assert [k for k, _ in statements] == content.CMOC_KEYS
    by_key = {c["key"]: c for t in theories for c in t["cmocs"]}
    for key, sentence in statements:
        if by_key[key].get("ifthen"):  # the CMOC's own wording, as written
            assert sentence == " ".join(by_key[key]["ifthen"].split())
        else:  # the default template's, built from the cells
            assert " ".join(by_key[key]["mechanism_response"].split()).lower() in sentence.lower()

    document = docx.Document(str(out / "report.docx"))
    cmoc_tables = [t for t in document.tables
                   if [c.text for c in t.rows[0].cells][1:] == ["Context (Resource)", "Mechanism (Behaviour)", "Outcome"]]
    assert [len(t.rows) - 1 for t in cmoc_tables] == [len(t["cmocs"]) for t in theories]
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    for t in theories:
        assert f"{t['key']}: {t['title']}" in headings

    # Table 3.7: entries and pages per site, computed from the corpus files
    entries = Counter(src["site"] for src, _ in expected_entries.values())
    pages = Counter()
    for src in content.load("study.yaml")["sources"]:
        if src.get("kind") == "diary":
            pages[src["site"]] += int(src["attributes"]["pages"])
    with (out / "tables" / "diary_entries_by_site.csv").open(encoding="utf-8", newline="") as fh:
        table = {r["Site"]: r for r in csv.DictReader(fh)}
    for site, n in entries.items():
        assert int(table[site]["Entries"]) == n and int(table[site]["Pages"]) == pages[site]
    assert int(table["Total"]["Entries"]) == len(expected_entries)


def test_report_cites_the_keepers_chapter_6_cites_for_each_theory(built):
    """Each theory's section says whom its evidence comes from, as chapter 6 cites its diary keepers; the
    names are computed from the built project's evidence and equal the chapter's citations (CITED)."""
    import docx

    out, project = built
    with project.connect() as conn:
        who = attribution_map(conn)
        rows = conn.execute(
            select(S.theories.c.key, S.cmoc_evidence.c.role, S.excerpts.c.id, S.excerpts.c.source_id)
            .select_from(S.cmoc_evidence.join(S.excerpts, S.excerpts.c.id == S.cmoc_evidence.c.excerpt_id)
                         .join(S.theory_cmocs, S.theory_cmocs.c.cmoc_id == S.cmoc_evidence.c.cmoc_id)
                         .join(S.theories, S.theories.c.id == S.theory_cmocs.c.theory_id))).all()
    keepers, roles = defaultdict(set), defaultdict(lambda: defaultdict(set))
    for theory, role, excerpt, sid in rows:
        keepers[theory].add(who[sid])
        roles[theory][role].add(excerpt)
    md = (out / "report.md").read_text(encoding="utf-8")
    found = dict(re.findall(r"^### (T\d): .*?^Evidence from (.+?) \(\d+ supporting", md, re.M | re.S))
    assert set(found) == set(content.CITED)
    document = "\n".join(p.text for p in docx.Document(str(out / "report.docx")).paragraphs)
    for theory, cited in content.CITED.items():
        names = found[theory].split("; ")
        assert names == sorted(keepers[theory])
        assert {n.replace(", unidentified", " unidentified") for n in names} == cited
        sup, ref = len(roles[theory]["supports"]), len(roles[theory]["refutes"])
        sentence = (f"Evidence from {found[theory]} ({sup} supporting" + (f" and {ref} refuting" if ref else "")
                    + " excerpts).")
        assert sentence in md and sentence in document
    assert "S3, unidentified" in found["T1"] and "S1 DK1" in found["T3"]

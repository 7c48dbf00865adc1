"""The report model: every number, quote and provenance entry computed from the project."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from report_data import DIARIES, populate
from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.report.model import (CMOC_COLUMNS, ReportSettings, build_report_model, clip_quote, id_ranges)


@pytest.fixture
def filled(project):
    ids = populate(project)
    return project, ids


def table(model, key):
    return next(t for t in model.tables() if t.key == key)


def test_methods_tables_count_what_the_project_holds(filled):
    project, ids = filled
    m = build_report_model(project, ReportSettings(figure=False))
    diary = table(m, "diary_entries_by_site")
    assert diary.columns == ["Site", "Diary keepers", "Entries", "Words", "Pages"]
    # Expected values computed from the fixture's texts.
    words = {}
    for (code, site, _date), sections in DIARIES.items():
        text = "".join(f"{h}\n{b}\n\n" for h, b in sections.items())
        words[site] = words.get(site, 0) + len(text.split())
    by_site = {r[0]: r for r in diary.rows}
    assert by_site["S1"][1:] == ["2", "2", str(words["S1"]), "4"]
    assert by_site["S2"][1:] == ["1", "1", str(words["S2"]), "2"]
    assert by_site["Total"][1:] == ["3", "3", str(words["S1"] + words["S2"]), "6"]

    kinds = table(m, "sources_by_kind_and_site")
    assert kinds.columns == ["Kind", "S1", "S2", "Total"]
    assert kinds.rows == [["diary", "2", "1", "3"], ["interview", "1", "0", "1"], ["Total", "3", "1", "4"]]

    roles = table(m, "participants_by_role")
    assert [r[:2] for r in roles.rows] == [["link worker", "3"], ["manager", "1"]]
    assert roles.rows[1][3] == "S1 M1"  # the interview's speaker

    steps = table(m, "analysis_steps")
    assert [r[0] for r in steps.rows] == ["1", "2", "3", "4", "5", "6"]
    assert steps.rows[0][3] == "7 appraisals: relevant 7"
    assert steps.rows[1][3] == "trust high 5, moderate 1, low 1"
    assert "3 CMOCs (3 complete, 0 partial)" in steps.rows[3][3]


def test_pages_column_only_when_recorded(project):
    populate(project, pages=False)
    m = build_report_model(project, ReportSettings(figure=False))
    assert "Pages" not in table(m, "diary_entries_by_site").columns


def test_theory_sections_cmoc_rows_statements_and_evidence(filled):
    project, ids = filled
    m = build_report_model(project, ReportSettings(figure=False))
    assert [t.key for t in m.theories] == ["T1", "T2"]
    t1, t2 = m.theories
    assert t1.questions == ["Q2", "Q3"]
    assert t1.table.columns == ["CMOC"] + CMOC_COLUMNS
    assert [r[0] for r in t1.table.rows] == ["T1.1", "T1.2"]
    assert t1.table.rows[1][1:] == ["Starting pilot before agreeing paperwork", "Frustration", "Constantly managing change"]
    # The resource is folded into the context column.
    assert "more than one session with the link worker" in t2.table.rows[0][1]
    assert [s.key for s in t1.statements] == ["T1.1", "T1.2"]
    assert all(s.text.startswith("If ") and s.text.endswith(".") for s in t1.statements)
    # Evidence quotes: attributed, linked to their excerpt, contrary evidence shown.
    q = {x.text: x for x in t1.evidence}
    first = q["had to keep asking the receptionist for information"]
    assert first.attribution == "S1 DK1" and first.excerpt_id == ids["excerpts"][first.text]
    assert q["the reception staff did not know the process"].attribution == "S1 M1"  # interview speaker
    assert [(x.label, x.role) for x in t2.evidence] == [("T2.1", "supports"), ("T2.1", "refutes")]


def test_every_reference_points_at_real_excerpts(filled):
    project, ids = filled
    m = build_report_model(project, ReportSettings(figure=False))
    with project.connect() as conn:
        excerpt_ids = set(conn.execute(select(S.excerpts.c.id)).scalars())
        ev = {}
        for cid, xid in conn.execute(select(S.cmoc_evidence.c.cmoc_id, S.cmoc_evidence.c.excerpt_id)):
            ev.setdefault(cid, set()).add(xid)
    refs = {r.number: r for r in m.refs}
    assert list(refs) == list(range(1, len(refs) + 1))
    for r in m.refs:
        assert set(r.excerpts) <= excerpt_ids
    t1 = m.theories[0]
    for row, ref in zip(t1.table.rows, t1.table.refs):
        assert set(refs[ref].excerpts) == ev[ids["cmocs"][row[0]]]
    for th in m.themes:
        for q in th.quotes:
            assert refs[q.ref].codings == [q.coding_id]


def test_theme_quotes_spread_over_participants_and_prefer_manual(filled):
    project, _ = filled
    m = build_report_model(project, ReportSettings(figure=False, quotes_per_theme=2))
    start = next(t for t in m.themes if t.name == "Getting started")
    # as `theme table` lists them: codes in codebook order, each followed by its descendants
    assert start.codes == ["Referral process", "Induction", "Paperwork"]
    assert start.codings == 4 and start.sources == 3
    assert len(start.quotes) == 2
    assert len({q.attribution for q in start.quotes}) == 2
    m0 = build_report_model(project, ReportSettings(figure=False, quotes_per_theme=0))
    assert all(t.quotes == [] for t in m0.themes)


def test_provenance_none_has_no_refs(filled):
    project, _ = filled
    m = build_report_model(project, ReportSettings(figure=False, provenance="none"))
    assert m.refs == []
    assert all(r is None for t in m.tables() for r in t.refs)
    assert "provenance" not in [t.key for t in m.tables()]


def test_triangulation_uses_the_questions(filled):
    project, _ = filled
    m = build_report_model(project, ReportSettings(figure=False, questions={"Q1": "Effective?", "Q2": "Helped?"}))
    tri = m.triangulation
    assert tri.columns[:2] == ["Question", "Question text"]
    assert [r[:2] for r in tri.rows] == [["Q1", "Effective?"], ["Q2", "Helped?"]]
    cells = dict(zip(tri.columns, tri.rows[1]))
    # Q2 is addressed by both theories, whose evidence comes from diaries; T1's also from the interview.
    assert cells["diary"].splitlines() == ["T1: Link worker frustration with confusion in the referral process",
                                           "T2: What matters to me in a complex case"]
    assert cells["interview"] == "T1: Link worker frustration with confusion in the referral process"
    assert all(c == "" for c in tri.rows[0][2:])  # no theory addresses Q1
    # Without questions, the questions the theories list.
    m2 = build_report_model(project, ReportSettings(figure=False))
    assert [r[0] for r in m2.triangulation.rows] == ["Q2", "Q3"]


def test_appendix_tables_follow_theory_order(filled):
    project, _ = filled
    m = build_report_model(project, ReportSettings(figure=False))
    assert [r[0] for r in m.appendices.saturation.rows] == ["T1.1", "T1.2", "T2.1"]
    sat = {r[0]: dict(zip(m.appendices.saturation.columns, r)) for r in m.appendices.saturation.rows}
    # The fixture gives T1.1 three supporting excerpts, T2.1 one supporting and one refuting.
    assert (sat["T1.1"]["Supporting excerpts"], sat["T1.1"]["Refuting excerpts"]) == ("3", "0")
    assert (sat["T2.1"]["Supporting excerpts"], sat["T2.1"]["Refuting excerpts"]) == ("1", "1")
    assert sat["T1.1"]["Saturation notes"] == "seen at two sites"
    # Counts and verdicts agree with 'sp-realist saturation'.
    from sp_realist.cmoc.saturation import saturation_table

    for row in saturation_table(project, level="cmoc").to_dict(orient="records"):
        mine = sat[row["cmoc"]]
        assert [mine["Sources"], mine["Participants"], mine["Sites"]] == \
            [str(row["sources"]), str(row["participants"]), str(row["sites"])]
        assert mine["Saturated"] == ("yes" if row["saturated"] else "no") and mine["Reason"] == row["reason"]
    code_names = [r[0] for r in m.appendices.codebook.rows]
    assert code_names[:2] == ["Referral process", "Referral process > Induction"]


def test_tables_are_numbered_in_document_order(filled):
    project, _ = filled
    m = build_report_model(project, ReportSettings(figure=False))
    # The full saturation table is a CSV only (the document shows its compact form), so it has no number.
    numbers = [t.number for t in m.tables() if t.key not in ("provenance", "quotes", "saturation")]
    assert numbers == list(range(1, len(numbers) + 1))


def test_model_is_deterministic(filled):
    project, _ = filled
    a = build_report_model(project, ReportSettings(figure=False)).to_dict()
    b = build_report_model(project, ReportSettings(figure=False)).to_dict()
    assert a == b


def test_empty_project_gives_a_report(project):
    m = build_report_model(project, ReportSettings())
    assert m.theories == [] and m.themes == [] and m.figure is None
    assert m.methods.steps.rows[0][3] == "0 appraisals: none recorded"


def test_settings_are_validated():
    with pytest.raises(SpRealistError, match="provenance"):
        ReportSettings(provenance="sidenotes")
    with pytest.raises(SpRealistError, match="quotes_per_theme"):
        ReportSettings(quotes_per_theme=-1)
    with pytest.raises(SpRealistError, match="unknown setting"):
        ReportSettings.from_mapping({"colour": "red"})
    s = ReportSettings.from_mapping({"authors": "A. Person", "date": 2020, "diary_template": [
        {"heading": "What?", "prompts": ["What happened?"]}]})
    assert s.authors == ["A. Person"] and s.date == "2020" and s.diary_template == [("What?", ["What happened?"])]


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=30))
@settings(max_examples=60, deadline=None)
def test_id_ranges_round_trip(ids):
    text = id_ranges(ids)
    back = set()
    for part in filter(None, text.split(", ")):
        if "-" in part:
            a, b = part.split("-")
            back.update(range(int(a), int(b) + 1))
        else:
            back.add(int(part))
    assert back == set(ids)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300),
       st.integers(min_value=10, max_value=120))
@settings(max_examples=60, deadline=None)
def test_clip_quote_keeps_the_beginning_and_marks_cuts(text, limit):
    out = clip_quote(text, limit)
    norm = " ".join(text.split())
    if len(norm) <= limit:
        assert out == norm
    else:
        assert out.endswith(" [...]")
        kept = out[: -len(" [...]")]
        assert norm.startswith(kept.rstrip(",;:")) or norm.startswith(kept)
        assert len(kept) <= limit


def test_a_span_is_quoted_under_one_theme_while_others_are_left(filled):
    project, _ = filled
    from sqlalchemy import insert

    from sp_realist.store import now

    with project.begin() as conn:
        first = conn.execute(select(S.themes.c.id).where(S.themes.c.name == "Getting started")).scalar_one()
        codes = conn.execute(select(S.theme_codes.c.code_id).where(S.theme_codes.c.theme_id == first)).scalars().all()
        tid = conn.execute(insert(S.themes).values(name="Same codes again", phase="initial", ord=5,
                                                   created_at=now())).inserted_primary_key[0]
        conn.execute(insert(S.theme_codes), [dict(theme_id=tid, code_id=c) for c in codes])
    m = build_report_model(project, ReportSettings(figure=False, quotes_per_theme=2))
    a = next(t for t in m.themes if t.name == "Getting started")
    b = next(t for t in m.themes if t.name == "Same codes again")
    spans = lambda t: {(q.source_id, q.start, q.end) for q in t.quotes}  # noqa: E731
    assert len(spans(a)) == 2 and len(spans(b)) == 2  # 4 codings, 4 distinct spans: no repeats needed
    assert spans(a).isdisjoint(spans(b))
    m3 = build_report_model(project, ReportSettings(figure=False, quotes_per_theme=3))
    a3 = next(t for t in m3.themes if t.name == "Getting started")
    b3 = next(t for t in m3.themes if t.name == "Same codes again")
    assert len(spans(b3)) == 3 and len(spans(a3) & spans(b3)) == 2  # repeats only when nothing else is left


def test_pages_count_same_named_diary_files_from_different_folders_separately(project):
    from sp_realist.sources import Segment, SourceDraft, add_source

    # Two different files both called notes.txt at site S1 (e.g. s1a/notes.txt, s1b/notes.txt),
    # each with two entries carrying the file's page count.
    with project.begin() as conn:
        for folder, pages, checksum in (("s1a", "3", "a" * 64), ("s1b", "5", "b" * 64)):
            for i in range(2):
                text = f"What?\nEntry {i} from {folder}.\n"
                add_source(conn, SourceDraft(
                    name=f"{folder} entry {i}", kind="diary", text=text, segments=[Segment(0, len(text))],
                    checksum=checksum, file_name="notes.txt", file_path=f"/data/{folder}/notes.txt",
                    entry_index=i, attributes={"site": "S1", "pages": pages}))
    m = build_report_model(project, ReportSettings(figure=False))
    diary = table(m, "diary_entries_by_site")
    by_site = {r[0]: dict(zip(diary.columns, r)) for r in diary.rows}
    assert by_site["S1"]["Entries"] == "4"
    assert by_site["S1"]["Pages"] == "8"  # 3 + 5: two files, not one

"""Autocoding at scale stores what it stored before: texts streamed from the project in batches of any
size give the same hits, the bulk writer stores the rows ``insert_codings`` stored, contexts are those of
the per-hit rule, and a large dry run prints counts per rule on the terminal (every hit with -f csv/json)."""

from __future__ import annotations

import importlib
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from coding_helpers import corpus_project
from sp_realist import schema as S
from sp_realist.coding.codings import insert_codings
from sp_realist.store import Project

ac = importlib.import_module("sp_realist.coding.autocode")  # the module (the package exports the function)


def _project(path, tmp_path):
    return corpus_project(path, tmp_path)


def _codings(project):
    c = S.codings.c
    with project.connect() as conn:
        return sorted(conn.execute(select(c.code_id, c.source_id, c.start, c.end, c.coder, c.origin, c.memo, c.guid,
                                          c.dated, c.selection_guid)).all())


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_streamed_batches_give_the_same_hits_and_codings_as_the_row_writer(place, tmp_path, monkeypatch, batch):
    """Project A: autocode applies (texts read ``batch`` sources at a time, bulk writer).  Project B: the
    hits of a dry run written row by row with insert_codings, as autocode did before."""
    a = _project(place("a"), tmp_path)
    b = _project(place("b"), tmp_path)
    try:
        monkeypatch.setattr(ac, "STREAM_BATCH", batch)
        applied = ac.autocode(a, include_interviewer=True)
        monkeypatch.setattr(ac, "STREAM_BATCH", 32)
        dry = ac.autocode(b, dry_run=True, include_interviewer=True, context=0)
        assert len(applied) > 10
        cols = ["rule", "code", "source", "start", "end", "match_start", "match_end", "matched", "new"]
        assert applied[cols].equals(dry[cols])
        with b.connect() as conn:
            code_ids = dict(conn.execute(select(S.codes.c.name, S.codes.c.id)).all())
            source_ids = dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())
        rows = [{"code_id": code_ids[h.code], "source_id": source_ids[h.source], "start": h.start, "end": h.end,
                 "coder": ac.AUTOCODER, "origin": f"rule:{h.rule}"} for h in dry[dry["new"]].itertuples()]
        with b.begin() as conn:
            insert_codings(conn, rows, guids=False)
        assert _codings(a) == _codings(b)
        again = ac.autocode(a, include_interviewer=True)
        assert not again["new"].any() and _codings(a) == _codings(b)
    finally:
        a.close()
        b.close()


def _context_per_hit(text, start, end, width):
    """The context of one hit as autocode built it before (line breaks blanked per hit)."""
    a = max(0, start - width)
    b = min(len(text), end + width)
    out = f"{'…' if a > 0 else ''}{text[a:start]}[{text[start:end]}]{text[end:b]}{'…' if b < len(text) else ''}"
    return out.replace("\r", " ").replace("\n", " ")


@given(st.text(alphabet="ab \r\n…é", min_size=1, max_size=80), st.data(), st.integers(0, 12))
@example("a\r\nb", None, 1)
@settings(max_examples=200, deadline=None)
def test_contexts_equal_the_per_hit_contexts(text, data, width):
    spans = [(0, len(text))] if data is None else [
        tuple(sorted(data.draw(st.tuples(st.integers(0, len(text)), st.integers(0, len(text))))))
        for _ in range(data.draw(st.integers(0, 5)))]
    got = ac._contexts(text, [s for s, _ in spans], [e for _, e in spans], width)
    assert got == [_context_per_hit(text, s, e, width) for s, e in spans]


def test_hit_counts_per_rule_and_code(proj_hits):
    hits = proj_hits
    per_rule = ac.hit_counts(hits)
    assert per_rule["hits"].sum() == len(hits) and per_rule["new"].sum() == hits["new"].sum()
    assert dict(zip(per_rule["rule"], per_rule["hits"])) == hits["rule"].value_counts().to_dict()
    per_code = ac.hit_counts(hits, by="code")
    assert dict(zip(per_code["code"], per_code["hits"])) == hits["code"].value_counts().to_dict()
    assert list(per_code["hits"]) == sorted(per_code["hits"], reverse=True)


@pytest.fixture
def proj_hits(place, tmp_path):
    p = _project(place("h"), tmp_path)
    try:
        yield ac.autocode(p, dry_run=True, include_interviewer=True)
    finally:
        p.close()


@pytest.mark.sqlite_only("a dry run's terminal output; the hits are counted on both back ends above")
def test_large_dry_run_prints_counts_per_rule_or_code(runner, cli, tmp_path, monkeypatch):
    from sp_realist.coding import commands

    path = tmp_path / "c.sprealist"
    _project(path, tmp_path).close()
    base = ["autocode", "--dry-run", "-p", str(path), "--include-interviewer"]
    every = json.loads(runner.invoke(cli, [*base, "--format", "json"]).stdout)
    n_rules = len({h["rule"] for h in every})
    assert len(every) > n_rules > 1
    for limit, by in ((len(every) - 1, "rule"), (n_rules - 1, "code")):
        monkeypatch.setattr(commands, "HIT_TABLE_LIMIT", limit)
        r = runner.invoke(cli, base)
        assert r.exit_code == 0, r.output
        assert f"Hits per {by} below; every hit: --format csv -o hits.csv" in " ".join(r.stderr.split())
        lines = r.stdout.splitlines()  # not a terminal: tab-separated text
        header = lines[0].split("\t")
        assert header == (["rule", "code", "hits", "new"] if by == "rule" else ["code", "rules", "hits", "new"])
        counts = {line.split("\t")[0]: int(line.split("\t")[header.index("hits")]) for line in lines[1:]}
        expected: dict[str, int] = {}
        for h in every:
            expected[h[by]] = expected.get(h[by], 0) + 1
        assert counts == expected
    r = runner.invoke(cli, [*base, "--format", "csv"])  # other formats: every hit, as before
    assert r.stdout.count("\n") == len(every) + 1
    monkeypatch.setattr(commands, "HIT_TABLE_LIMIT", len(every))  # at the limit: every hit on the terminal
    assert runner.invoke(cli, base).stdout.count("\n") == len(every) + 1


@pytest.mark.sqlite_only("which hits carry their text; the bulk writer is compared on both back ends above")
@pytest.mark.parametrize("limit", [0, 1, 7, 10**9])
def test_max_texts_keeps_the_text_of_the_first_hits_only(tmp_path, monkeypatch, limit):
    """With ``max_texts`` every hit is still returned with the same numbers and flags; only the first
    ``limit`` carry their matched words and context (the others None), and applying stores the same codings."""
    a = _project(tmp_path / "a.sprealist", tmp_path)
    b = _project(tmp_path / "b.sprealist", tmp_path)
    try:
        monkeypatch.setattr(ac, "STREAM_BATCH", 2)  # the limit is reached across batches
        full = ac.autocode(a, dry_run=True, include_interviewer=True)
        cut = ac.autocode(a, dry_run=True, include_interviewer=True, max_texts=limit)
        assert len(full) > 10 and list(cut.columns) == list(full.columns)
        numbers = [c for c in full.columns if c not in ("matched", "context")]
        assert cut[numbers].equals(full[numbers])
        k = min(limit, len(full))
        for col in ("matched", "context"):
            assert cut[col].iloc[:k].tolist() == full[col].iloc[:k].tolist()
            assert cut[col].iloc[k:].isna().all()
        applied = ac.autocode(a, include_interviewer=True, max_texts=limit)
        reference = ac.autocode(b, include_interviewer=True)
        assert applied[numbers].equals(reference[numbers]) and _codings(a) == _codings(b)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("batch,first", [(1, 0), (2, 7), (1000, 10**9)])
def test_summary_counts_what_the_hits_table_holds_and_applies_the_same_codings(place, tmp_path, monkeypatch, batch, first):
    """autocode_summary, counting hits as they are found (texts read ``batch`` sources at a time), gives the
    counts hit_counts gives for autocode's table (per rule and per code, same order), its first ``first``
    rows, and applying stores the codings and audit row autocode stores; a second run finds nothing new."""
    a = _project(place("a"), tmp_path)
    b = _project(place("b"), tmp_path)
    try:
        monkeypatch.setattr(ac, "STREAM_BATCH", batch)
        table = ac.autocode(a, dry_run=True, include_interviewer=True)
        summary = ac.autocode_summary(a, dry_run=True, include_interviewer=True, first=first)
        assert len(table) > 10
        assert (summary.hits, summary.new, summary.added) == (len(table), int(table["new"].sum()), 0)
        for by in ("rule", "code"):
            assert summary.counts(by).equals(ac.hit_counts(table, by=by))
        k = min(first, len(table))
        assert summary.first.equals(table.head(k)) if k else summary.first.empty
        applied = ac.autocode_summary(a, include_interviewer=True, first=first)
        reference = ac.autocode(b, include_interviewer=True)
        assert applied.added == applied.new == int(reference["new"].sum()) and _codings(a) == _codings(b)
        audit = S.audit_log.c
        details = []
        for p in (a, b):
            with p.connect() as conn:
                details.append(json.loads(conn.execute(select(audit.detail).where(audit.action == "autocode"))
                                          .scalar_one()))
        assert details[0] == details[1] == {"added": applied.added, "hits": len(table), "rules": details[1]["rules"]}
        again = ac.autocode_summary(a, include_interviewer=True)
        assert again.hits == len(table) and again.new == again.added == 0 and _codings(a) == _codings(b)
    finally:
        a.close()
        b.close()


def test_summary_of_a_project_without_rules_or_hits(place, tmp_path):
    with Project.create(place("empty")) as project:
        s = ac.autocode_summary(project, dry_run=True)
        assert (s.hits, s.new, s.added, len(s.first)) == (0, 0, 0, 0)
        assert s.counts().empty and list(s.counts("code").columns) == ["code", "rules", "hits", "new"]
        with pytest.raises(Exception, match="by must be 'rule' or 'code'"):
            s.counts("source")


def test_applying_on_the_terminal_stores_what_the_library_stores(place, runner, cli, tmp_path):
    """The command line's terminal path (counts only) applies the same codings as autocode()."""
    path = place("t")
    _project(path, tmp_path).close()
    b = _project(place("b"), tmp_path)
    try:
        r = runner.invoke(cli, ["autocode", "-p", str(path), "--include-interviewer"])
        assert r.exit_code == 0, r.output
        reference = ac.autocode(b, include_interviewer=True)
        n = int(reference["new"].sum())
        assert f"Autocoded: {len(reference)} hit(s), {n} new coding(s)." in r.stderr and r.stdout == ""
        with Project.open(path) as a:
            assert _codings(a) == _codings(b)
    finally:
        b.close()

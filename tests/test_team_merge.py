"""sp-realist merge: two SQLite copies of one project coded apart, merged (counts, no duplicates on a second
merge, conflicts listed and settled, a dry run that writes nothing)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import func, select

from sp_realist import schema as S
from sp_realist.cli import main
from sp_realist.cmoc import add_cmoc, add_theory, edit_cmoc
from sp_realist.cmoc.appraisal import set_appraisal
from sp_realist.cmoc.cmocs import link_evidence
from sp_realist.coding.codebook import add_code, move_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.memos import add_memo
from sp_realist.errors import SpRealistError
from sp_realist.ingest import ingest_paths
from sp_realist.store import Project
from sp_realist.team.merge import code_paths, list_conflicts, merge_copy, resolve_conflict

def _diary(code, day, text):
    return (f"Reflective Diary Date of diary insert: {day}\n\nParticipant code: {code}\n\n"
            f"## What?: Returning to the situation\n\n{text}\n")


DK1 = _diary("S1 DK1", "14/05/2019", "I booked her in. The referral form was missing again.")
DK2 = _diary("S2 DK2", "01/06/2019", "The surgery phoned twice. Nobody had the form.")
DK3 = _diary("S3 DK3", "09/07/2019", "A quiet week; two people came back for a second visit.")

COUNTED = (S.sources, S.participants, S.codes, S.codings, S.memos, S.themes, S.theme_codes, S.excerpts, S.cmocs,
           S.cmoc_evidence, S.theories, S.theory_cmocs, S.theory_history, S.appraisals, S.merge_conflicts)


def copy_project(src, dst):
    """A copy of a project file as a colleague would get it (SQLite's backup: the write-ahead log included)."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


def log_ids(path, action=None):
    with Project.open(path) as p, p.connect() as conn:
        q = select(S.audit_log.c.target)
        if action:
            q = q.where(S.audit_log.c.action == action)
        return conn.execute(q).scalars().all()


def counts(path):
    with Project.open(path) as p, p.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in COUNTED}


def _ingest(project, tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    ingest_paths(project, [f], kind="diary")


@pytest.fixture
def copies(tmp_path):
    """A base project copied to ours.sprealist and theirs.sprealist, then worked on apart."""
    base = tmp_path / "base.sprealist"
    with Project.create(base) as p:
        _ingest(p, tmp_path, "dk1.txt", DK1)
        _ingest(p, tmp_path, "dk2.txt", DK2)
        add_code(p, "Referral")
        add_code(p, "Workload", definition="Time pressure on the link worker.")
        add_theory(p, "T1", "Referral")
        add_cmoc(p, "T1.1", theory="T1", context="No induction", outcome="Confusion")
        add_coding(p, "Referral", "S1 DK1 2019-05-14", match="referral form", unit="sentence", coder="RA")
    ours, theirs = tmp_path / "ours.sprealist", tmp_path / "theirs.sprealist"
    copy_project(base, ours)
    copy_project(base, theirs)
    with Project.open(ours) as p:  # RA goes on coding; edits T1.1
        add_coding(p, "Workload", "S2 DK2 2019-06-01", match="phoned", unit="sentence", coder="RA")
        edit_cmoc(p, "T1.1", context="No induction at branch surgeries")
        add_memo(p, "Referral forms go missing at S1.", on="code", target="Referral", author="RA")
    with Project.open(theirs) as p:  # RB codes apart, adds a source, a code, a CMOC, a theory; moves Workload
        _ingest(p, tmp_path, "dk3.txt", DK3)
        add_coding(p, "Referral", "S1 DK1 2019-05-14", match="referral form", unit="sentence", coder="RB")
        add_coding(p, "Workload", "S2 DK2 2019-06-01", match="phoned", unit="sentence", coder="RB")
        add_code(p, "Forms", parent="Referral", definition="Paperwork of a referral.")
        add_coding(p, "Forms", "S2 DK2 2019-06-01", match="the form", unit="match", coder="RB")
        add_coding(p, "Workload", "S3 DK3 2019-07-09", match="quiet week", unit="sentence", coder="RB")
        move_code(p, "Workload", "Referral")
        edit_cmoc(p, "T1.1", context="Induction never happened")
        add_theory(p, "T2", "Workload")
        add_cmoc(p, "T2.1", theory="T2", context="Busy surgeries", outcome="Late starts")
        link_evidence(p, "T2.1", {"source": "S2 DK2 2019-06-01", "quote": "The surgery phoned twice."},
                      analyst="RB")
        set_appraisal(p, {"source": "S2 DK2 2019-06-01", "quote": "The surgery phoned twice."}, "RB",
                      relevance="relevant", trust="high")
        add_memo(p, "Quiet weeks are rare.", on="source", target="S3 DK3 2019-07-09", author="RB")
    return ours, theirs


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_merge_counts_conflicts_and_a_second_merge_changes_nothing(copies):
    ours, theirs = copies
    before = counts(ours)
    with Project.open(ours) as p:
        result = merge_copy(p, str(theirs), actor="Lead")
    added = {k: v for k, v in result.counts.items() if v}
    # RB's 4 codings (RA's own coding of the base is in both copies), the new source and its participant, the
    # code Forms, CMOC T2.1 in theory T2 (with its history entry), its evidence excerpt, RB's appraisal, a memo
    assert added == {"sources": 1, "participants": 1, "codes": 1, "excerpts": 1, "codings": 4, "memos": 1,
                     "cmocs": 1, "evidence": 1, "theories": 1, "members": 1, "history": 1, "appraisals": 1,
                     "conflicts": 2}
    after = counts(ours)
    assert after["sources"] == before["sources"] + 1 and after["codings"] == before["codings"] + 4
    assert after["memos"] == before["memos"] + 1 and after["cmocs"] == before["cmocs"] + 1
    # the conflicts: T1.1's context (edited in both) and Workload (moved under Referral in theirs)
    conflicts = list_conflicts(Project.open(ours))
    assert sorted(zip(conflicts["kind"], conflicts["key"], conflicts["field"])) == [
        ("cmoc", "T1.1", "context"), ("code", "Workload", "parent")]
    row = conflicts.set_index("kind").loc["cmoc"]
    assert (json.loads(row["ours"]), json.loads(row["theirs"])) == ("No induction at branch surgeries",
                                                                    "Induction never happened")
    with Project.open(ours) as p, p.connect() as conn:  # ours is kept until the analyst decides
        assert conn.execute(select(S.cmocs.c.context).where(S.cmocs.c.key == "T1.1")).scalar_one() == \
            "No induction at branch surgeries"
        paths = set(code_paths([dict(r) for r in conn.execute(select(S.codes)).mappings()]).values())
        assert paths == {"Referral", "Workload", "Referral/Forms"}
        coders = conn.execute(select(S.codings.c.coder, func.count()).group_by(S.codings.c.coder)
                              .order_by(S.codings.c.coder)).all()
        assert coders == [("RA", 2), ("RB", 4)]
        # RB's Workload codings landed on our Workload; RB's theory T2 holds T2.1
        assert conn.execute(select(S.theories.c.key).order_by(S.theories.c.key)).scalars().all() == ["T1", "T2"]
    # merging the same copy again adds nothing and records no conflict twice
    with Project.open(ours) as p:
        again = merge_copy(p, str(theirs))
    assert not any(again.counts.values()) and again.conflicts == []
    assert counts(ours) == after


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_dry_run_writes_nothing(copies):
    ours, theirs = copies
    before = counts(ours)
    with Project.open(ours) as p:
        n_log = len(log_ids(ours))
        dry = merge_copy(p, str(theirs), dry_run=True)
    assert dry.dry_run and dry.counts["codings"] == 4 and dry.counts["conflicts"] == 2
    assert counts(ours) == before
    with Project.open(ours) as p:
        real = merge_copy(p, str(theirs))
    assert real.counts == dry.counts
    assert len(log_ids(ours)) == n_log + 1 and log_ids(ours, "merge") == [str(theirs)]  # the dry run left no entry


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_settling_conflicts(copies):
    ours, theirs = copies
    with Project.open(ours) as p:
        merge_copy(p, str(theirs))
        df = list_conflicts(p).set_index("kind")
        resolve_conflict(p, int(df.loc["code", "id"]), keep="theirs", actor="Lead")
        resolve_conflict(p, int(df.loc["cmoc", "id"]), keep="ours", actor="Lead")
        with pytest.raises(SpRealistError, match="is already settled"):
            resolve_conflict(p, int(df.loc["cmoc", "id"]), keep="theirs")
        assert list_conflicts(p).empty
        assert sorted(list_conflicts(p, status=None)["status"]) == ["ours", "theirs"]
        with p.connect() as conn:
            paths = set(code_paths([dict(r) for r in conn.execute(select(S.codes)).mappings()]).values())
            context = conn.execute(select(S.cmocs.c.context).where(S.cmocs.c.key == "T1.1")).scalar_one()
        assert paths == {"Referral", "Referral/Workload", "Referral/Forms"}
        assert context == "No induction at branch surgeries"
        # a later merge of the same copy does not raise the settled conflicts again
        assert merge_copy(p, str(theirs)).conflicts == []


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_merge_and_conflicts_commands(runner, copies):
    ours, theirs = copies
    r = runner.invoke(main, ["merge", str(theirs), "--dry-run", "--format", "json", "-p", str(ours)])
    assert r.exit_code == 0, r.stderr
    assert {x["item"]: x["added"] for x in json.loads(r.stdout)}["codings"] == 4
    assert "Dry run, nothing written" in r.stderr and "2 conflict(s) would be kept apart" in " ".join(r.stderr.split())
    r = runner.invoke(main, ["merge", str(theirs), "-p", str(ours)])
    assert r.exit_code == 0 and "Merged: added 1 sources" in r.stderr
    r = runner.invoke(main, ["conflicts", "list", "--format", "json", "-p", str(ours)])
    rows = json.loads(r.stdout)
    assert len(rows) == 2
    code_conflict = next(x for x in rows if x["kind"] == "code")
    r = runner.invoke(main, ["conflicts", "resolve", str(code_conflict["id"]), "--keep", "theirs", "-p", str(ours)])
    assert r.exit_code == 0 and "kept theirs" in r.stderr
    r = runner.invoke(main, ["conflicts", "resolve", "99", "--keep", "ours", "-p", str(ours)])
    assert r.exit_code == 1 and r.stderr.strip() == "Error: No conflict 99; see 'sp-realist conflicts list'."
    r = runner.invoke(main, ["merge", str(ours), "-p", str(ours)])
    assert r.exit_code == 1 and "that is this project" in r.stderr
    r = runner.invoke(main, ["merge", str(ours.parent / "nope.sprealist"), "-p", str(ours)])
    assert r.exit_code == 1 and "no such project file" in r.stderr
    r = runner.invoke(main, ["log", "--action", "merge", "--format", "json", "-p", str(ours)])
    assert [x["action"] for x in json.loads(r.stdout)] == ["merge", "merge.resolve"]


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_a_colleagues_qdpx_merges_like_a_copy(runner, copies, tmp_path):
    """import qdpx --into: the file is imported to a temporary project and merged; a second time adds nothing."""
    from sp_realist.exchange.qdpx_export import export_qdpx

    ours, theirs = copies
    qdpx = tmp_path / "rb.qdpx"
    with Project.open(theirs) as p:
        export_qdpx(p, qdpx)
    before = counts(ours)
    r = runner.invoke(main, ["import", "qdpx", str(qdpx), "--into", str(ours), "--dry-run", "--format", "csv"])
    assert r.exit_code == 0, r.stderr
    assert "Dry run, nothing written" in r.stderr and counts(ours) == before
    r = runner.invoke(main, ["import", "qdpx", str(qdpx), "--into", str(ours), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    added = {x["item"]: x["added"] for x in json.loads(r.stdout)}
    assert added["sources"] == 1 and added["codings"] == 4 and added["codes"] == 1
    after = counts(ours)
    assert after["codings"] == before["codings"] + 4
    r = runner.invoke(main, ["import", "qdpx", str(qdpx), "--into", str(ours), "--format", "json"])
    assert r.exit_code == 0 and not any(x["added"] for x in json.loads(r.stdout))  # no conflict twice either
    assert counts(ours) == after
    assert log_ids(ours, "merge") == ["rb.qdpx (REFI-QDA)"] * 2
    r = runner.invoke(main, ["import", "qdpx", str(qdpx), "--dry-run"])
    assert r.exit_code == 2 and "--dry-run needs --into" in r.stderr


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_a_moved_code_is_one_conflict_and_a_coding_memo_fills_or_conflicts(tmp_path):
    base = tmp_path / "base.sprealist"
    with Project.create(base) as p:
        _ingest(p, tmp_path, "dk1.txt", DK1)
        for name, parent in (("Referral", None), ("Admin", None), ("Letters", "Admin")):
            add_code(p, name, parent=parent)
        add_coding(p, "Letters", "S1 DK1 2019-05-14", match="referral form", coder="RA")
        add_coding(p, "Admin", "S1 DK1 2019-05-14", match="booked", coder="RA")
    ours, theirs = tmp_path / "ours.sprealist", tmp_path / "theirs.sprealist"
    copy_project(base, ours)
    copy_project(base, theirs)
    with Project.open(ours) as p, p.begin() as conn:
        from sp_realist.coding.codings import set_coding_memo

        set_coding_memo(conn, 1, "ours")
    with Project.open(theirs) as p:
        move_code(p, "Admin", "Referral")  # Letters moves with it
        with p.begin() as conn:
            from sp_realist.coding.codings import set_coding_memo

            set_coding_memo(conn, 1, "theirs")
            set_coding_memo(conn, 2, "a memo only theirs has")
    with Project.open(ours) as p:
        result = merge_copy(p, str(theirs))
        assert [(c["kind"], c["key"], c["field"], c["ours"], c["theirs"]) for c in result.conflicts] == [
            ("code", "Admin", "parent", None, "Referral"), ("coding", "1", "memo", "ours", "theirs")]
        with p.connect() as conn:
            assert conn.execute(select(S.codings.c.memo).where(S.codings.c.id == 2)).scalar_one() == \
                "a memo only theirs has"
        df = list_conflicts(p).set_index("kind")
        resolve_conflict(p, int(df.loc["coding", "id"]), keep="theirs", actor="Lead")
        resolve_conflict(p, int(df.loc["code", "id"]), keep="theirs", actor="Lead")
        with p.connect() as conn:
            assert conn.execute(select(S.codings.c.memo).where(S.codings.c.id == 1)).scalar_one() == "theirs"
            paths = set(code_paths([dict(r) for r in conn.execute(select(S.codes)).mappings()]).values())
        assert paths == {"Referral", "Referral/Admin", "Referral/Admin/Letters"}
        assert not any(merge_copy(p, str(theirs)).counts.values())


# --- Hypothesis: whatever two copies code apart, the merge holds the union, and a second merge adds nothing ---
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SOURCE = "S1 DK1 2019-05-14"


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("merge-base")
    base = folder / "base.sprealist"
    with Project.create(base) as p:
        _ingest(p, folder, "dk1.txt", DK1)
        add_code(p, "Referral")
        add_code(p, "Workload")
        with p.connect() as conn:
            length = len(conn.execute(select(S.sources.c.text)).scalar_one())
    return base, length


def _coding_sets(length):
    span = st.integers(0, length - 1).flatmap(lambda a: st.tuples(st.just(a), st.integers(a + 1, length)))
    coding = st.tuples(st.sampled_from(["Referral", "Workload"]), span, st.sampled_from(["RA", "RB"]),
                       st.sampled_from(["ours", "theirs", "both"]))
    return st.lists(coding, max_size=6)


def _keys(path):
    with Project.open(path) as p, p.connect() as conn:
        c = S.codings.c
        return sorted(conn.execute(select(S.codes.c.name, c.start, c.end, c.coder)
                                   .select_from(S.codings.join(S.codes, S.codes.c.id == c.code_id))).all())


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)  # nothing coded apart: nothing to merge
def test_merge_is_the_union_and_idempotent(base_file, tmp_path_factory, data):
    base, length = base_file
    plan = [] if data is None else data.draw(_coding_sets(length))
    if data is not None and not plan:
        # the boundary cases: the whole text, one character, the same coding in both copies
        plan = [("Referral", (0, length), "RA", "both"), ("Workload", (length - 1, length), "RB", "theirs")]
    folder = tmp_path_factory.mktemp("merge-prop")
    ours, theirs = folder / "ours.sprealist", folder / "theirs.sprealist"
    copy_project(base, ours)
    copy_project(base, theirs)
    for path, side in ((ours, "ours"), (theirs, "theirs")):
        with Project.open(path) as p:
            for code, (a, b), coder, where in plan:
                if where in (side, "both"):
                    add_coding(p, code, SOURCE, span=(a, b), coder=coder)
    expected = sorted(set(_keys(ours)) | set(_keys(theirs)))
    with Project.open(ours) as p:
        merge_copy(p, str(theirs))
    assert _keys(ours) == expected
    before = counts(ours)
    with Project.open(ours) as p:
        again = merge_copy(p, str(theirs))
    assert not any(again.counts.values()) and counts(ours) == before


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_anonymise_rewrites_conflicts_and_adjudications(copies, tmp_path):
    """The new text columns are anonymised like the rest of the project text (the JSON values inside)."""
    from sp_realist.privacy.anonymise import anonymise

    ours, theirs = copies
    with Project.open(theirs) as p:
        edit_cmoc(p, "T1.1", context="Owen Price never had an induction")
    with Project.open(ours) as p:
        merge_copy(p, str(theirs))
        key = tmp_path / "key.yaml"
        key.write_text("entries:\n  - {original: Owen Price, replacement: '[LW 1]'}\n", encoding="utf-8")
        anonymise(p, str(key))
        row = list_conflicts(p).set_index("kind").loc["cmoc"]
    assert json.loads(row["theirs"]) == "[LW 1] never had an induction"


@pytest.mark.sqlite_only("merging copies of a project file; merging with a server project is tested below")
def test_merging_into_an_anonymised_project_says_to_anonymise_again(runner, copies, tmp_path):
    from sp_realist.privacy.anonymise import anonymise

    ours, theirs = copies
    key = tmp_path / "key.yaml"
    key.write_text("entries:\n  - {original: booked her in, replacement: '[booked]'}\n", encoding="utf-8")
    with Project.open(ours) as p:
        anonymise(p, str(key))
    r = runner.invoke(main, ["merge", str(theirs), "--format", "csv", "-p", str(ours), "--analyst", "Lead"])
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    # S1 DK1's text differs now (anonymised here, not there): nothing pointing into it came in
    assert "1 source(s) come from the same file but have a different text in the other copy" in err
    assert "is not anonymised yet; run 'sp-realist anonymise --key KEY'" in err


def test_a_server_project_takes_copies_and_a_copy_takes_the_server_by_url(pg_fresh, copies):
    """merge OTHER|URL both ways on a real PostgreSQL server: the team's project on the server takes a colleague's
    file copy (the same result as between two files), and a file copy takes the server's work by its URL."""
    ours, theirs = copies
    url = pg_fresh.empty()
    with Project.create(url) as p:
        first = merge_copy(p, str(ours))  # an empty server project takes everything of ours, with no conflict
        assert first.conflicts == [] and first.counts["sources"] == 2 and first.counts["codings"] == 2
        result = merge_copy(p, str(theirs), actor="Lead")
    added = {k: v for k, v in result.counts.items() if v}
    assert added == {"sources": 1, "participants": 1, "codes": 1, "excerpts": 1, "codings": 4, "memos": 1,
                     "cmocs": 1, "evidence": 1, "theories": 1, "members": 1, "history": 1, "appraisals": 1,
                     "conflicts": 2}
    with Project.open(url) as p:
        assert not any(merge_copy(p, str(theirs)).counts.values())  # the second merge changes nothing
    with Project.open(theirs) as p:  # back: theirs lacks only RA's Workload coding and memo (its Workload is a path)
        back = merge_copy(p, url)
    assert back.counts["codings"] == 1 and back.counts["memos"] == 1 and back.counts["sources"] == 0
    assert sorted((c["kind"], c["key"]) for c in back.conflicts) == [("cmoc", "T1.1"), ("code", "Referral/Workload")]

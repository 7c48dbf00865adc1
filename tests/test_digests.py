"""Digests (sp_realist.coding.digests): made when a query first needs them, cleared by the database's
triggers whenever a source's codings, segments or row change, and never giving a count other than the
codings' own.

Every test runs on SQLite and on the tests' PostgreSQL cluster.  Each change below is made the way the rest of
sp_realist (or another program) makes it, straight in SQL, and after each one the matrices are compared with
tests/oracle_retrieval.py's pandas implementation, which reads the codings themselves.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select, update

import oracle_retrieval as oracle
from sp_realist import schema as S
from sp_realist.coding import digests
from sp_realist.coding import retrieval as R
from sp_realist.store import Project
from test_sql_queries import SEGMENTS, build, same

CODINGS = [("A", 1, 0, 30, "ana", "manual"), ("B", 1, 5, 15, "ana", "manual"), ("C", 1, 12, 50, "ben", "manual"),
           ("C", 1, 12, 50, "autocode", "rule:c"), ("D", 1, 60, 75, "ana", "manual"),
           ("A", 2, 0, 20, "ana", "manual"), ("D", 2, 10, 30, "autocode", "rule:d"), ("B", 2, 15, 25, "ben", "manual"),
           ("D", 3, 0, 5, "ana", "manual"), ("B", 3, 2, 4, "ana", "manual")]
SPEC = {"sources": [{"length": 120, "segments": SEGMENTS, "participant": "P3", "site": "S1", "wave": "1"},
                    {"length": 40, "segments": [(0, 20, "P1"), (20, 40, "Interviewer")], "participant": "P2"},
                    {"length": 10, "segments": [(0, 10, "P2")], "kind": "diary"}],
        "codings": CODINGS}
QUERIES = [("frequencies", {}), ("frequencies", {"by": "site", "measure": "participants"}),
           ("frequencies", {"by": "band"}), ("framework_matrix", {}), ("cooccurrence", {}),
           ("cooccurrence", {"mode": "segment"})]


@pytest.fixture
def project(new_location):
    p = build(new_location(), SPEC)
    yield p
    p.close()


def agree(project: Project) -> None:
    for name, kw in QUERIES:
        same(getattr(R, name)(project, **kw), getattr(oracle, name)(project, **kw))
    for kw in ({}, {"filters": {"site": "S1"}}):
        same(R.own_and_descendant_codings(project, ["A", "D"], **kw),
             oracle.own_and_descendant_codings(project, ["A", "D"], **kw))


def digested(project: Project) -> dict[int, tuple]:
    """Source id -> (tallied, has overlap, has segment, tally rows) of the digests in the store."""
    d, t = S.source_digests, S.coding_tallies
    with project.connect() as conn:
        rows = conn.execute(select(d.c.source_id, d.c.tallied, d.c.overlap.is_not(None), d.c.segment.is_not(None),
                                   select(func.count()).where(t.c.source_id == d.c.source_id).scalar_subquery())
                            ).all()
    return {r[0]: (bool(r[1]), bool(r[2]), bool(r[3]), r[4]) for r in rows}


def test_made_by_the_first_query_and_then_read(project):
    assert digested(project) == {}
    agree(project)
    made = digested(project)
    assert set(made) == {1, 2, 3} and all(v[:3] == (True, True, True) for v in made.values())
    with project.connect() as conn:
        assert all(digests.complete(conn, k) for k in digests.KINDS)
        # what the tallies hold: codings per code and participant, the rule's repeat of ben's C counted once
        t = S.coding_tallies
        c_rows = conn.execute(select(t.c.participant_id, t.c.n, t.c.n_all)
                              .where(t.c.source_id == 1, t.c.code_id == 3)).all()
    assert c_rows == [(1, 1, 2)]  # (10, 40) is P1's turn
    # read from the digests now: a second round gives the same and writes nothing
    agree(project)
    assert digested(project) == made


CHANGES = {
    "a coding added": lambda: insert(S.codings).values(id=100, code_id=2, source_id=2, start=1, end=9, coder="cy",
                                                      origin="manual", created_at="t"),
    "a coding moved": lambda: update(S.codings).where(S.codings.c.id == 6).values(start=25, end=35),
    "a coding recoded": lambda: update(S.codings).where(S.codings.c.id == 6).values(code_id=4),
    "a coding removed": lambda: delete(S.codings).where(S.codings.c.id == 8),
    "a person's coding removed (the rule's repeat counts now)": lambda: delete(S.codings).where(S.codings.c.id == 3),
    "a turn remapped": lambda: update(S.segments).where(S.segments.c.source_id == 2, S.segments.c.ord == 0)
    .values(participant_id=2),
    "a turn added": lambda: insert(S.segments).values(id=100, source_id=2, ord=5, start=40, end=40, kind="turn"),
    "a turn removed": lambda: delete(S.segments).where(S.segments.c.source_id == 2, S.segments.c.ord == 1),
    "the source's participant changed": lambda: update(S.sources).where(S.sources.c.id == 2).values(participant_id=1),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_clears_its_sources_digest_only(project, change):
    agree(project)
    with project.begin() as conn:
        conn.execute(CHANGES[change]())
    touched = 1 if change.startswith("a person's") else 2  # coding 3 is in source 1, the rest is source 2's
    assert set(digested(project)) == {1, 2, 3} - {touched}
    agree(project)  # counted again for that source only, and right
    assert set(digested(project)) == {1, 2, 3}


def test_cascades_clear_digests_too(project):
    """A deleted participant (segments' and sources' ON DELETE SET NULL), a deleted code (its codings' ON DELETE
    CASCADE) and a deleted source (its digest's CASCADE) go through the triggers as well."""
    agree(project)
    with project.begin() as conn:
        conn.execute(delete(S.participants).where(S.participants.c.id == 2))  # source 2's; speaks in 1 and 3
    assert set(digested(project)) == set()
    agree(project)
    with project.begin() as conn:
        conn.execute(delete(S.codes).where(S.codes.c.id == 3))  # C: codings in source 1 only
    assert set(digested(project)) == {2, 3}
    agree(project)
    with project.begin() as conn:
        conn.execute(delete(S.excerpts).where(S.excerpts.c.source_id == 3))
        conn.execute(delete(S.codings).where(S.codings.c.source_id == 3))
        conn.execute(delete(S.segments).where(S.segments.c.source_id == 3))
        conn.execute(delete(S.sources).where(S.sources.c.id == 3))
    assert set(digested(project)) == {1, 2}
    agree(project)
    with project.connect() as conn:
        assert conn.execute(select(func.count()).select_from(S.coding_tallies)
                            .where(S.coding_tallies.c.source_id == 3)).scalar() == 0


def test_not_made_while_another_writer_has_its_turn(project):
    """A query does not wait for a writer to make digests: it counts the codings itself, and right."""
    with project.begin():  # another writer's turn (a second connection holds the write lock)
        same(R.frequencies(project), oracle.frequencies(project))
        same(R.cooccurrence(project), oracle.cooccurrence(project))
    assert digested(project) == {}
    agree(project)
    assert set(digested(project)) == {1, 2, 3}


def test_not_used_for_a_user_restricted_to_their_own_codings(project, monkeypatch):
    """Under blind coding a coder sees only their own codings (team.roles.coding_restriction); digests count
    everyone's, so they are neither read nor made for such a user."""
    from sp_realist.team import roles

    monkeypatch.setattr(roles, "coding_restriction", lambda project, user=None: "ana")
    assert not digests.ensure(project, "tallies")
    R.frequencies(project)
    assert digested(project) == {}


def test_a_query_that_needs_per_coding_columns_does_not_make_tallies(project):
    same(R.frequencies(project, by="coder"), oracle.frequencies(project, by="coder"))
    same(R.cooccurrence(project, filters={"site": "S1"}), oracle.cooccurrence(project, filters={"site": "S1"}))
    assert digested(project) == {}


def test_a_schema_10_project_gains_the_digests_and_keeps_its_data(new_location):
    """Opening a project made before schema 11 adds the digest tables and triggers; its codings are counted
    as before, and the triggers then clear what a change touches."""
    from conftest import run_sql

    path = new_location()
    build(path, SPEC).close()
    drops = ([f"DROP TRIGGER IF EXISTS sp_realist_digest_{t}_{op}" + ("" if "sqlite" in str(path) or "://" not in
                                                                     str(path) else f" ON {t}")
              for t, _ in S.DIGEST_WATCHED for op in ("insert", "update", "delete")]
             + ["DROP TABLE coding_tallies", "DROP TABLE source_digests",
                "UPDATE meta SET value='10' WHERE key='schema_version'"])
    run_sql(path, *drops)
    with Project.open(path) as p:
        assert p.schema_version == S.SCHEMA_VERSION == 11
        agree(p)
        assert set(digested(p)) == {1, 2, 3}
        with p.begin() as conn:
            conn.execute(delete(S.codings).where(S.codings.c.id == 8))
        assert set(digested(p)) == {1, 3}
        agree(p)


def test_a_count_of_a_few_codes_reads_digests_but_does_not_make_them(project):
    """``retrieve``'s hint (a code's own and its descendants' codings) counts a few codes: quickly counted from
    the codings, so it does not make digests for the whole project; it reads them when they are there."""
    expected = oracle.own_and_descendant_codings(project, ["A", "D"])
    same(R.own_and_descendant_codings(project, ["A", "D"]), expected)
    assert digested(project) == {}
    R.frequencies(project)
    assert set(digested(project)) == {1, 2, 3}
    same(R.own_and_descendant_codings(project, ["A", "D"]), expected)


def test_digests_of_a_store_whose_triggers_were_dropped_are_not_trusted(project):
    """A project edited by a program that dropped the triggers (and so could change codings without clearing
    digests) has its digests read by no query: the next query deletes them, makes the triggers again and
    counts every source anew."""
    from conftest import run_sql

    agree(project)
    location = project.location if project.is_file else project.engine.url.render_as_string(hide_password=False)
    drops = [f"DROP TRIGGER {name}" + ("" if project.is_file else f" ON {name.split('_')[3]}")
             for name in S.DIGEST_TRIGGER_NAMES]
    run_sql(location, *drops, "UPDATE codings SET code_id = 4 WHERE id = 1")  # A -> D, digest left as it was
    with project.connect() as conn:
        assert not S.digest_triggers_present(conn)
    agree(project)  # counted again, right
    with project.connect() as conn:
        assert S.digest_triggers_present(conn)
    assert set(digested(project)) == {1, 2, 3}

"""Team roles and blind coding on a real PostgreSQL server (the throwaway cluster of tests/pg_cluster.py):
each person logs in as their own database role and the project's GRANTs and row-level security decide."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from conftest import run_sql
from sp_realist.cli import main

TEXT = "I booked her in. The form was missing. We phoned the surgery. Nobody answered.\n"


def _as(url: str, user: str) -> str:
    """The project's URL with another login (trust auth on the cluster's socket)."""
    return make_url(url).set(username=user).render_as_string(hide_password=False)


def _ok(runner, *args):
    r = runner.invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r


def _refused(runner, *args, role: str):
    r = runner.invoke(main, list(args))
    assert r.exit_code == 1, r.output
    err = " ".join(r.stderr.split())
    assert err.startswith("Error: ") and f"{role} role" in err, err
    assert err.count(". ") == 0 and "Traceback" not in r.output and "psycopg" not in err and "SQL" not in err, err
    return err


def _team(pg_fresh, runner, tmp_path):
    """A project on the server made by the cluster's superuser (its owner), one source, two codes, and a team:
    two coders, a reader and an analyst (names unique to this database: logins are cluster-wide)."""
    url = pg_fresh.project()
    db = make_url(url).database
    f = tmp_path / "s1-dk1.txt"
    f.write_text(TEXT, encoding="utf-8")
    _ok(runner, "-p", url, "ingest", str(f), "--kind", "interview", "--site", "S1")
    _ok(runner, "-p", url, "codebook", "add", "Workload")
    people = {role: f"{role}_{db}" for role in ("coder1", "coder2", "reader", "analyst")}
    for who, name in people.items():
        _ok(runner, "-p", url, "team", "add", name, "--role", who.rstrip("12"))
    return url, people


def _codings(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT id, coder FROM codings ORDER BY id"))]
    finally:
        engine.dispose()


def test_what_each_role_may_do(pg_fresh, runner, tmp_path):
    url, p = _team(pg_fresh, runner, tmp_path)
    engine = create_engine(url)
    with engine.connect() as conn:  # a team is set up: logins are people (sp_realist.identity reads it)
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'team:logins'")).scalar() == "on"
    engine.dispose()
    listed = json.loads(_ok(runner, "-p", url, "team", "list", "--format", "json").stdout)
    assert {(r["name"], r["role"]) for r in listed} >= {(p["coder1"], "coder"), (p["coder2"], "coder"),
                                                         (p["reader"], "reader"), (p["analyst"], "analyst")}
    assert [r["role"] for r in listed][0] == "owner"
    c1, c2, reader, analyst = (_as(url, p[k]) for k in ("coder1", "coder2", "reader", "analyst"))

    # a coder codes; the coding is recorded as the login (session_user), whatever the option says
    _ok(runner, "-p", c1, "code", "add", "Workload", "-s", "s1-dk1", "--match", "form")
    _ok(runner, "-p", c2, "code", "add", "Workload", "-s", "s1-dk1", "--match", "phoned")
    rows = _codings(url)
    assert [c for _i, c in rows] == [p["coder1"], p["coder2"]]
    first = rows[0][0]
    # ... and appraises it, as the login too
    _ok(runner, "-p", c1, "appraise", "set", "--coding", str(first), "--relevance", "relevant")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT analyst FROM appraisals")).scalars().all() == [p["coder1"]]
        assert set(conn.execute(text("SELECT actor FROM audit_log WHERE action LIKE 'coding%'")).scalars()) == \
            {p["coder1"], p["coder2"]}
    engine.dispose()

    # a coder cannot remove another's coding (row-level security keeps it, and the command says so)
    _refused(runner, "-p", c2, "code", "remove", "--id", str(first), role="analyst")
    _refused(runner, "-p", c2, "code", "remove", "--code", "Workload", role="analyst")  # nothing removed
    assert [c for _i, c in _codings(url)] == [p["coder1"], p["coder2"]]
    # a coder cannot change the codebook; a reader cannot code; a coder cannot manage the team
    _refused(runner, "-p", c1, "codebook", "add", "Caseload", role="analyst")
    _refused(runner, "-p", reader, "code", "add", "Workload", "-s", "s1-dk1", "--match", "booked", role="coder")
    _refused(runner, "-p", c1, "team", "add", "someone", "--role", "reader", role="owner")
    _refused(runner, "-p", analyst, "team", "remove", p["coder2"], role="owner")
    # the reader reads everything
    seen = json.loads(_ok(runner, "-p", reader, "code", "list", "--format", "json").stdout)
    assert sorted(r["coder"] for r in seen) == sorted([p["coder1"], p["coder2"]])
    # counts: a reader may not write the digests, so its first count is made from the codings; an analyst's
    # makes them, and then the reader reads them: the same numbers each time
    def counts(who):
        return json.loads(_ok(runner, "-p", who, "frequencies", "--format", "json").stdout)

    first_count = counts(reader)
    assert sum(r["codings"] for r in first_count) == 2
    assert counts(analyst) == first_count == counts(reader)
    # a login granted its rights before the digests existed (schema 11) may not read them until the owner runs
    # 'team add' again: it counts from the codings, the same
    from sp_realist.team.roles import group_role

    reader_role = group_role(make_url(url).database, "reader")
    run_sql(url, f'REVOKE SELECT ON source_digests, coding_tallies FROM "{reader_role}"')
    assert counts(reader) == first_count
    # an analyst changes the codebook
    _ok(runner, "-p", analyst, "codebook", "add", "Caseload", "--parent", "Workload")
    # a coder removes their own coding; an analyst anyone's
    _ok(runner, "-p", c2, "code", "remove", "--code", "Workload", "--coder", p["coder2"])
    _ok(runner, "-p", analyst, "code", "remove", "--id", str(first))
    assert _codings(url) == []
    # an analyst ingests; a coder appraises and writes memos
    (tmp_path / "s1-lw2.txt").write_text("The referral was late.\n", encoding="utf-8")
    _ok(runner, "-p", analyst, "ingest", str(tmp_path / "s1-lw2.txt"), "--kind", "interview", "--site", "S1")
    _ok(runner, "-p", c1, "memo", "add", "Forms again.", "--source", "s1-dk1")
    from sp_realist.coding.memos import delete_memo, edit_memo
    from sp_realist.errors import SpRealistError
    from sp_realist.store import Project

    with Project.open(c2) as project:  # another coder may neither change nor remove it
        with pytest.raises(SpRealistError, match="needs the analyst role"):
            edit_memo(project, 1, text="Not forms.")
        with pytest.raises(SpRealistError, match="needs the analyst role"):
            delete_memo(project, 1)
    with Project.open(c1) as project:
        edit_memo(project, 1, text="Forms, again.")
    with Project.open(analyst) as project:
        assert delete_memo(project, 1)["text"] == "Forms, again."
    # the owner manages the team, and so does an owner it adds
    _ok(runner, "-p", url, "team", "remove", p["coder2"])
    second = f"owner2_{make_url(url).database}"
    _ok(runner, "-p", url, "team", "add", second, "--role", "owner")
    _ok(runner, "-p", _as(url, second), "team", "add", p["coder2"], "--role", "coder")
    listed = json.loads(_ok(runner, "-p", _as(url, second), "team", "list", "--format", "json").stdout)
    assert [r["role"] for r in listed if r["name"] in (second, p["coder2"])] == ["owner", "coder"]
    _ok(runner, "-p", _as(url, second), "team", "remove", p["coder2"])
    listed = json.loads(_ok(runner, "-p", url, "team", "list", "--format", "json").stdout)
    assert p["coder2"] not in {r["name"] for r in listed}


def test_blind_coding(pg_fresh, runner, tmp_path):
    url, p = _team(pg_fresh, runner, tmp_path)
    c1, c2, analyst = (_as(url, p[k]) for k in ("coder1", "coder2", "analyst"))
    _ok(runner, "-p", c1, "code", "add", "Workload", "-s", "s1-dk1", "--match", "form")
    _ok(runner, "-p", c2, "code", "add", "Workload", "-s", "s1-dk1", "--match", "phoned")
    _refused(runner, "-p", c1, "team", "blind", "on", role="analyst")
    _ok(runner, "-p", analyst, "team", "blind", "on")

    def coders(*args, who):
        out = json.loads(_ok(runner, "-p", who, *args, "--format", "json").stdout)
        return sorted(r["coder"] for r in out)

    for args in (("code", "list"), ("retrieve", "Workload")):
        assert coders(*args, who=c1) == [p["coder1"]]
        assert coders(*args, who=c2) == [p["coder2"]]
        assert coders(*args, who=analyst) == sorted([p["coder1"], p["coder2"]])
    # and in counts: the digests count everyone's, so a coder under blind coding is counted from the codings
    # they see, even after an analyst's count made the digests
    def total(who):
        return sum(r["codings"] for r in json.loads(_ok(runner, "-p", who, "frequencies", "--format", "json").stdout))

    assert total(analyst) == 2
    assert total(c1) == 1 and total(c2) == 1
    # the server enforces it too: a coder's own SQL sees only their codings
    assert [c for _i, c in _codings(c1)] == [p["coder1"]]
    r = runner.invoke(main, ["-p", c1, "agreement", "--coders", p["coder1"], p["coder2"]])
    assert r.exit_code == 1 and "for analysts" in r.stderr
    _ok(runner, "-p", analyst, "agreement", "--coders", p["coder1"], p["coder2"])
    # the browse reader asks the same rule
    from sp_realist.browse.reading import visible_codings
    from sp_realist.coding.codings import list_codings
    from sp_realist.store import Project

    with Project.open(analyst) as project:
        everyone = list_codings(project)
    with Project.open(c1) as project:
        assert visible_codings(project, user=p["coder1"], codings=everyone)["coder"].tolist() == [p["coder1"]]
    _ok(runner, "-p", analyst, "team", "blind", "off")
    assert coders("code", "list", who=c1) == sorted([p["coder1"], p["coder2"]])


@pytest.mark.parametrize("args", [["team", "list"], ["team", "add", "rhian", "--role", "coder"],
                                  ["team", "remove", "rhian"], ["team", "blind", "on"]])
@pytest.mark.sqlite_only("roles need a server: this is the SQLite answer")
def test_sqlite_has_no_roles(tmp_path, runner, args):
    p = str(tmp_path / "p.sprealist")
    _ok(runner, "init", p)
    r = runner.invoke(main, ["-p", p, *args])
    assert r.exit_code == 1 and "roles need a PostgreSQL project" in r.stderr
    assert "Traceback" not in r.output

"""sp-realist log: the audit log as a table, filtered by who, since and action."""

from __future__ import annotations

import json

from sqlalchemy import update

from sp_realist import schema as S
from sp_realist.cli import main
from sp_realist.team.auditlog import audit_log


def _seed(project):
    entries = [("2026-10-30T09:00:00+00:00", "RA", "code.add", "Workload"),
               ("2026-11-01T08:00:00+00:00", "RB", "code.move", "Workload"),
               ("2026-11-02T12:30:00+00:00", "RA", "codebook.import", "codebook.yaml"),
               ("2026-11-03T23:59:59+00:00", "RB", "memo.add", "1")]
    with project.begin() as conn:
        for at, who, action, target in entries:
            project.log(conn, action, target, actor=who, n=1)
        for i, (at, *_rest) in enumerate(entries, start=1):
            conn.execute(update(S.audit_log).where(S.audit_log.c.id == i).values(at=at))


def test_filters_combine(project):
    _seed(project)
    df = audit_log(project)
    assert list(df.columns) == ["id", "at", "actor", "action", "target", "detail"] and len(df) == 4
    assert list(audit_log(project, who="RA")["action"]) == ["code.add", "codebook.import"]
    assert list(audit_log(project, since="2026-11-01")["id"]) == [2, 3, 4]
    assert list(audit_log(project, since="2026-11-02T13:00")["id"]) == [4]
    assert list(audit_log(project, since="2026-11-02T13:30+01:00")["id"]) == [3, 4]  # 12:30 UTC
    # 'code' is the action and its sub-actions; 'code*' anything starting so (codebook.import too)
    assert list(audit_log(project, action="code")["action"]) == ["code.add", "code.move"]
    assert list(audit_log(project, action="code*")["action"]) == ["code.add", "code.move", "codebook.import"]
    assert list(audit_log(project, who="RB", since="2026-11-02")["action"]) == ["memo.add"]
    assert list(audit_log(project, limit=2)["id"]) == [3, 4]
    assert json.loads(df["detail"].iloc[0]) == {"n": 1}
    assert audit_log(project, who="nobody").empty


def test_log_command(runner, project):
    _seed(project)
    p = str(project.location)
    r = runner.invoke(main, ["log", "--who", "RB", "--since", "2026-11-01", "--format", "json", "-p", p])
    assert r.exit_code == 0, r.stderr
    assert [row["action"] for row in json.loads(r.stdout)] == ["code.move", "memo.add"]
    r = runner.invoke(main, ["log", "--since", "last week", "-p", p])
    assert r.exit_code == 1
    assert r.stderr.strip() == "Error: log --since 'last week': not a date; give YYYY-MM-DD or YYYY-MM-DDTHH:MM."
    assert "sp-realist log --who RA" in runner.invoke(main, ["log", "--help"]).stdout

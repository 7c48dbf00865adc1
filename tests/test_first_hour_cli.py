"""Issue 12, the newcomer's small frictions, each reproduced on the command line: -p before the
command, did-you-mean for mistyped names, interpretation aliases, the --children hint, rule and
person coding the same words."""

from __future__ import annotations

import pytest

TRANSCRIPT = ("Interviewer: How are referrals?\n"
              "Link worker: Slow at first, then fine. The workload was heavy but we coped.\n"
              "Interviewer: Thanks.\n")


@pytest.fixture
def tour(cli, runner, tmp_path, monkeypatch):
    """A project with one interview, codes Workload > Caseload and Referrals, run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    (tmp_path / "s1-lw4.txt").write_text(TRANSCRIPT, encoding="utf-8")

    def run(*args, code=0):
        res = runner.invoke(cli, list(args))
        assert res.exit_code == code, (args, res.output)
        return res

    run("init", "p.sprealist")
    run("ingest", "s1-lw4.txt")
    run("codebook", "add", "Workload")
    run("codebook", "add", "Caseload", "--parent", "Workload")
    run("codebook", "add", "Referrals")
    return run


def test_project_option_before_the_command(cli, runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SP_REALIST_PROJECT", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "s1-lw4.txt").write_text(TRANSCRIPT, encoding="utf-8")
    for name in ("a/one.sprealist", "two.sprealist"):
        assert runner.invoke(cli, ["init", name]).exit_code == 0
    res = runner.invoke(cli, ["-p", "a/one.sprealist", "ingest", "s1-lw4.txt"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["-p", "a/one.sprealist", "sources", "list", "--format", "csv"])
    assert res.exit_code == 0 and "s1-lw4" in res.stdout
    res = runner.invoke(cli, ["--project", "a/one.sprealist", "sources", "list", "-p", "two.sprealist",
                              "--format", "csv"])  # the command's own -p wins
    assert res.exit_code == 0 and "s1-lw4" not in res.stdout
    res = runner.invoke(cli, ["-p", "missing.sprealist", "sources", "list"])
    assert res.exit_code == 1 and "missing.sprealist" in res.stderr and "Traceback" not in res.output
    assert "-p, --project PATH" in runner.invoke(cli, ["--help"]).stdout

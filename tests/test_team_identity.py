"""Who is working: --coder, $SP_REALIST_CODER, the per-user setting, the login name (said once per command)."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.cli import main
from sp_realist.errors import SpRealistError
from sp_realist.identity import config_path, resolve_identity, set_config
from sp_realist.ingest import ingest_paths

TEXT = "I booked her in. The form was missing again.\n"


@pytest.fixture
def coded(project, tmp_path):
    f = tmp_path / "s1-dk1.txt"
    f.write_text(TEXT, encoding="utf-8")
    ingest_paths(project, [f], kind="diary", site="S1")
    from sp_realist.coding.codebook import add_code

    add_code(project, "Workload")
    return project


def _coders(project):
    with project.connect() as conn:
        return [r[0] for r in conn.execute(select(S.codings.c.coder).order_by(S.codings.c.id))]


def test_precedence_option_then_environment_then_config_then_login(monkeypatch):
    monkeypatch.delenv("SP_REALIST_CODER", raising=False)
    assert resolve_identity(None).name == getpass.getuser() and resolve_identity(None).source == "login"
    set_config("coder", "  Rhian   Ames ")
    assert resolve_identity(None) == resolve_identity("") == resolve_identity(None).__class__("Rhian Ames", "user config")
    monkeypatch.setenv("SP_REALIST_CODER", "EnvCoder")
    assert (resolve_identity(None).name, resolve_identity(None).source) == ("EnvCoder", "environment")
    assert (resolve_identity("RA").name, resolve_identity("RA").source) == ("RA", "option")
    monkeypatch.delenv("SP_REALIST_CODER")
    set_config("coder", None)
    assert resolve_identity(None).source == "login"


def test_config_file_lives_under_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert config_path() == tmp_path / "cfg" / "sp-realist" / "config.yaml"
    set_config("coder", "RB")
    assert "coder: RB" in config_path().read_text(encoding="utf-8")


def test_config_command_sets_shows_and_unsets(runner, monkeypatch):
    monkeypatch.delenv("SP_REALIST_CODER", raising=False)
    r = runner.invoke(main, ["config", "coder", "RA"])
    assert r.exit_code == 0 and "Set coder = 'RA'" in r.stderr
    r = runner.invoke(main, ["config", "coder"])
    assert r.exit_code == 0 and r.stdout.strip() == "RA"
    r = runner.invoke(main, ["config", "--format", "csv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith("coder,RA,")
    r = runner.invoke(main, ["config", "colour", "red"])
    assert r.exit_code == 1 and r.stderr.strip() == "Error: config: no setting named 'colour'; the settings are: coder."
    r = runner.invoke(main, ["config", "coder", "--unset"])
    assert r.exit_code == 0 and runner.invoke(main, ["config", "coder"]).stdout.strip() == ""


def test_a_broken_config_file_is_one_sentence(runner):
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="config.yaml: expected settings"):
        resolve_identity(None)


def test_every_write_uses_the_setting_and_the_login_fallback_is_said_once(runner, coded, monkeypatch):
    monkeypatch.delenv("SP_REALIST_CODER", raising=False)
    p = str(coded.location)
    # no coder anywhere: recorded as the login name, said once for the command (two writes: coding + log)
    r = runner.invoke(main, ["code", "add", "Workload", "-s", "1", "--match", "booked", "--unit", "sentence", "-p", p])
    assert r.exit_code == 0, r.stderr
    assert r.stderr.count("Note: no coder set") == 1 and getpass.getuser() in r.stderr
    runner.invoke(main, ["config", "coder", "RA"])
    r = runner.invoke(main, ["code", "add", "Workload", "-s", "1", "--match", "form", "--unit", "sentence", "-p", p])
    assert r.exit_code == 0 and "Note:" not in r.stderr
    r = runner.invoke(main, ["memo", "add", "Forms again.", "-p", p])
    assert r.exit_code == 0 and "Note:" not in r.stderr
    monkeypatch.setenv("SP_REALIST_CODER", "EnvCoder")
    r = runner.invoke(main, ["code", "add", "Workload", "-s", "1", "--span", "0:4", "-p", p])
    r = runner.invoke(main, ["code", "add", "Workload", "-s", "1", "--span", "0:5", "--coder", "RB", "-p", p])
    assert _coders(coded) == [getpass.getuser(), "RA", "EnvCoder", "RB"]
    with coded.connect() as conn:
        assert conn.execute(select(S.memos.c.author)).scalar_one() == "RA"
        actors = [r[0] for r in conn.execute(select(S.audit_log.c.actor).where(S.audit_log.c.action == "memo.add"))]
    assert actors == ["RA"]


def test_analyst_commands_use_the_setting(runner, coded, monkeypatch):
    monkeypatch.delenv("SP_REALIST_CODER", raising=False)
    set_config("coder", "RA")
    r = runner.invoke(main, ["cmoc", "add", "T1.1", "--context", "busy surgeries", "-p", str(coded.location)])
    assert r.exit_code == 0, r.stderr
    with coded.connect() as conn:
        row = conn.execute(select(S.audit_log.c.actor).where(S.audit_log.c.action.like("cmoc%"))).first()
    assert row[0] == "RA"


class _FakePgConn:
    """Enough of a PostgreSQL connection for the identity: its dialect and ``SELECT session_user``."""

    class dialect:  # noqa: N801 - mimics SQLAlchemy's attribute
        name = "postgresql"

    def __init__(self, login):
        self.login = login
        self.sql = []

    def execute(self, statement):
        self.sql.append(str(statement))
        login = self.login

        class _Result:
            def scalar_one(self):
                return login

            def scalar(self):  # the meta row saying the team's logins are its people
                return "on"

        return _Result()


def test_on_a_server_the_login_is_the_identity_and_another_coder_is_refused(monkeypatch):
    monkeypatch.setenv("SP_REALIST_CODER", "EnvCoder")  # a default, not a claim: the login wins
    conn = _FakePgConn("rhian")
    assert resolve_identity(None, conn=conn) == resolve_identity("rhian", conn=conn)
    assert resolve_identity(None, conn=conn).source == "session_user" and "SELECT session_user" in conn.sql
    with pytest.raises(SpRealistError) as exc:
        resolve_identity("RB", conn=conn)
    assert str(exc.value) == ("--coder 'RB' differs from your database login 'rhian'; on a server project every write "
                              "is recorded as the login, so leave --coder out or log in as 'RB'.")


def test_a_failed_command_says_only_its_error(runner, coded, monkeypatch):
    monkeypatch.delenv("SP_REALIST_CODER", raising=False)
    r = runner.invoke(main, ["code", "add", "Workloda", "-s", "1", "--span", "0:4", "-p", str(coded.location)])
    assert r.exit_code == 1 and r.stderr.startswith("Error: No code named 'Workloda'") and "Note:" not in r.stderr
    r = runner.invoke(main, ["memo", "add", "A note.", "-p", str(coded.location)])
    assert r.exit_code == 0 and r.stderr.count("Note: no coder set") == 1
    assert r.stderr.index("Added memo") < r.stderr.index("Note: no coder set")  # said after the work is done

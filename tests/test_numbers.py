"""Whole numbers outside the 64-bit range are one sentence, never a traceback (issue 10, "No traceback on numbers").

Command-line options and arguments: a usage error, exit 2 (cli_support.Int / Span).  Files and name-or-id
references: one sentence naming the file or object, exit 1.
"""

from __future__ import annotations

import click
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from report_data import populated_project
from sp_realist.cli_support import Int, Span
from sp_realist.numbers import INT64_MAX, INT64_MIN, db_id, fits

BIG = "99999999999999999999"


@pytest.fixture
def populated(built_copy):
    """A copy of the populated project (report_data.populate), on each back end: its location."""
    return built_copy(populated_project)


def one_sentence(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("args,option", [
    (["code", "add", "Paperwork", "--source", "1", "--segment", BIG], "--segment"),
    (["code", "add", "Paperwork", "--source", "1", "--segment", "-" + BIG], "--segment"),
    (["code", "add", "Paperwork", "--source", "1", "--span", f"0:{BIG}"], "--span"),
    (["code", "remove", "--span", f"{BIG}:{BIG}1"], "--span"),
    (["code", "remove", "--id", BIG], "--id"),
    (["appraise", "queue", "--limit", BIG], "--limit"),
    (["appraise", "set", "--excerpt", BIG, "--relevance", "relevant"], "--excerpt"),
    (["appraise", "set", "--coding", BIG, "--relevance", "relevant"], "--coding"),
    (["cmoc", "link", "T1.1", "--source", "1", "--segment", BIG], "--segment"),
    (["report", "out.md", "--quotes-per-theme", BIG], "--quotes-per-theme"),
])
def test_a_huge_option_is_a_usage_error(runner, cli, populated, tmp_path, args, option):
    r = runner.invoke(cli, args + ["-p", str(populated)])
    msg = one_sentence(r, 2)
    assert option in msg and "too large" in msg and f"{INT64_MAX:,}" in msg


@pytest.mark.parametrize("args,says", [
    (["sources", "show", BIG], f"No source named '{BIG}'"),
    (["cmoc", "show", BIG], f"No CMOC '{BIG}'"),
    (["theory", "show", BIG], f"No theory '{BIG}'"),
    (["memo", "add", "a note", "--coding", BIG], f"No coding '{BIG}'"),
])
def test_a_huge_name_or_id_is_looked_up_as_a_name(runner, cli, populated, args, says):
    """A reference that may be a name or an id is not an id when it is too large: not found, exit 1."""
    r = runner.invoke(cli, args + ["-p", str(populated)])
    assert says in one_sentence(r, 1)


@pytest.mark.parametrize("name,command,text,says", [
    ("codings.yaml", ["code", "import"],
     "codings:\n  - {source: 'S1 DK1 2019-05-14', code: Paperwork, segment: BIG}\n", "segment BIG is too large"),
    ("codings.yaml", ["code", "import"],
     "codings:\n  - {source: 'S1 DK1 2019-05-14', code: Paperwork, span: [0, BIG]}\n", "outside the text"),
    ("analysis.yaml", ["analysis", "import"],
     "excerpts:\n  - {source: 'S1 DK1 2019-05-14', segment: BIG, analyst: RA, appraisal: {relevance: relevant}}\n",
     "segment BIG is too large"),
])
def test_a_huge_number_in_a_file_is_one_sentence(runner, cli, populated, tmp_path, name, command, text, says):
    path = tmp_path / name
    path.write_text(text.replace("BIG", BIG), encoding="utf-8")
    r = runner.invoke(cli, command + [str(path), "-p", str(populated)])
    msg = one_sentence(r, 1)
    assert name in msg and says.replace("BIG", BIG) in msg


def test_a_huge_excerpt_id_in_a_theories_history_is_one_sentence(runner, cli, populated, tmp_path):
    path = tmp_path / "theories.yaml"
    path.write_text("theories:\n  - key: T9\n    title: t\n    history:\n"
                    f"      - {{at: '2020-01-01', change: added, evidence: [{BIG}]}}\n", encoding="utf-8")
    r = runner.invoke(cli, ["theory", "import", str(path), "-p", str(populated)])
    assert f"excerpt id {BIG} is too large" in one_sentence(r, 1)


def test_an_overflow_nothing_caught_is_still_one_sentence(runner, cli, populated, monkeypatch):
    from sp_realist.ingest import browse

    def overflow(*args, **kwargs):
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(browse, "source_detail", overflow)
    r = runner.invoke(cli, ["sources", "show", "1", "-p", str(populated)])
    assert "too large for the project" in one_sentence(r, 1)


def test_every_integer_option_is_bounded(cli):
    """Every int click takes goes through cli_support.Int."""
    loose = []

    def walk(cmd, path):
        for param in cmd.params:
            if isinstance(param.type, click.types.IntParamType) and not isinstance(param.type, Int):
                loose.append(f"{path} {param.name}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(cli, "")
    assert loose == []


@given(st.integers(min_value=INT64_MIN - 10, max_value=INT64_MAX + 10) | st.integers())
@example(INT64_MAX)
@example(INT64_MAX + 1)
@example(INT64_MIN)
@example(INT64_MIN - 1)
@example(0)
@example(-1)
def test_int_param_round_trips_what_fits_and_refuses_the_rest(n):
    t = Int()
    if INT64_MIN <= n <= INT64_MAX:
        assert t.convert(str(n), None, None) == n
        assert db_id(str(n)) == (n if n >= 0 else None) and fits(n)
    else:
        with pytest.raises(click.BadParameter, match="too large"):
            t.convert(str(n), None, None)
        assert db_id(str(abs(n))) is None and not fits(n)


@given(st.integers(min_value=0, max_value=INT64_MAX), st.integers(min_value=0, max_value=INT64_MAX + 5))
@example(0, INT64_MAX)
@example(INT64_MAX, INT64_MAX + 1)
def test_span_param(a, b):
    if b <= INT64_MAX:
        assert Span().convert(f"{a}:{b}", None, None) == f"{a}:{b}"
    else:
        with pytest.raises(click.BadParameter, match="too large"):
            Span().convert(f"{a}:{b}", None, None)


def test_int_keeps_its_bounds():
    with pytest.raises(click.BadParameter):
        Int(min=1).convert("0", None, None)
    assert Int(50, 600).convert("600", None, None) == 600

"""One validation layer for text (sp_realist.schema.CheckedText): every String(n) limit is refused with one
sentence naming the field and the limit, and control characters are refused in every text field, the same on
every back end (the tests run on each `project_target`); the audit log shortens a long target instead."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.cmoc.cmocs import add_cmoc
from sp_realist.cmoc.theories import add_theory
from sp_realist.coding.codebook import add_code
from sp_realist.coding.memos import add_memo
from sp_realist.errors import SpRealistError
from sp_realist.ingest.browse import add_participant
from sp_realist.store import Project


def _count(project, table) -> int:
    with project.connect() as conn:
        return len(conn.execute(select(table)).all())


LIMITED = [  # (what, library call, table, field label, limit)
    ("code name", lambda p, v: add_code(p, v), S.codes, "code name", 300),
    ("theory key", lambda p, v: add_theory(p, v, "A title"), S.theories, "theory key", 50),
    ("CMOC key", lambda p, v: add_cmoc(p, v), S.cmocs, "CMOC key", 50),
    ("participant code", lambda p, v: add_participant(p, v), S.participants, "participant code", 100),
    ("memo title", lambda p, v: add_memo(p, "A note.", title=v), S.memos, "memo title", 300),
]


@pytest.mark.parametrize("what,call,table,label,limit", LIMITED, ids=[x[0] for x in LIMITED])
def test_over_long_values_are_refused_with_the_field_and_its_limit(project_target, what, call, table, label, limit):
    with Project.open(project_target) as project:
        call(project, "K" * limit)  # exactly at the limit: kept whole
        with pytest.raises(SpRealistError) as info:
            call(project, "L" * (limit + 1))
        assert str(info.value) == (f"The {label} is {limit + 1:,} characters long, over its limit of {limit:,} "
                                   "characters; shorten it.")
        assert _count(project, table) == 1  # nothing half-written
        with project.connect() as conn:
            logged = conn.execute(select(S.audit_log.c.action)).scalars().all()
        assert len(logged) == 1


def test_a_nul_in_a_memo_is_refused_and_nothing_is_written(project_target):
    with Project.open(project_target) as project:
        with pytest.raises(SpRealistError) as info:
            add_memo(project, "Before\x00after")
        assert str(info.value) == ("The memo text contains a control character, U+0000 at character 7; remove it "
                                   "(only tab and line breaks are kept).")
        assert _count(project, S.memos) == 0
        mid = add_memo(project, "Line one\n\tLine two\r\nthree")  # tab and line breaks are kept
        with project.connect() as conn:
            assert conn.execute(select(S.memos.c.text).where(S.memos.c.id == mid)).scalar_one() == \
                "Line one\n\tLine two\r\nthree"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x9f"])
def test_control_characters_are_refused_in_names(project_target, char):
    """(Line-breaking controls such as U+000B and U+0085 count as white space in a name, which is normalised.)"""
    with Project.open(project_target) as project:
        with pytest.raises(SpRealistError, match=rf"The code name contains a control character, U\+{ord(char):04X}"):
            add_code(project, f"Bad{char}name")
        assert _count(project, S.codes) == 0


def test_a_source_text_keeps_its_control_characters_but_not_nul(project_target):
    from tests.coding_helpers import diary_draft

    with Project.open(project_target) as project:
        from sp_realist.sources import add_source

        draft = diary_draft("Paged", "S1 DK1", "S1", {"What?": "Page one.\x0cPage two.\x0bSame paragraph\x85 \x1b."})
        with project.begin() as conn:
            add_source(conn, draft)
        bad = diary_draft("Nul", "S1 DK1", "S1", {"What?": "Page one.\x00"})
        with pytest.raises(SpRealistError, match="The source text contains a control character, U\\+0000"):
            with project.begin() as conn:
                add_source(conn, bad)
        with project.connect() as conn:
            assert conn.execute(select(S.sources.c.name)).scalars().all() == ["Paged"]


def test_an_audit_log_target_built_from_long_names_is_shortened_not_the_data(project_target):
    with Project.open(project_target) as project:
        long_name = "N" * 300
        add_code(project, long_name)
        with project.begin() as conn:  # a target joined from several names, as merges and links build them
            project.log(conn, "code.merge", " + ".join([long_name] * 3) + "\x00")
        with project.connect() as conn:
            assert conn.execute(select(S.codes.c.name)).scalar_one() == long_name
            targets = conn.execute(select(S.audit_log.c.target).order_by(S.audit_log.c.id)).scalars().all()
        assert targets[0] == long_name
        assert targets[1] == long_name[:297] + "..."


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=70))
@example(value="x" * 50)
@example(value="x" * 51)
@example(value="\t\n\r")
@example(value="a\x00")
@example(value="\ud800")
def test_check_text_accepts_exactly_what_fits(value):
    """The rule the layer applies, against its definition: at most the limit, no control character except
    tab, LF, CR (and no unpaired surrogate)."""
    import unicodedata

    fits = len(value) <= 50 and not any(
        (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r") or unicodedata.category(ch) == "Cs" for ch in value)
    if fits:
        assert S.check_text(value, "theory key", 50) == value
    else:
        with pytest.raises(S.TextValueError, match="^The theory key "):
            S.check_text(value, "theory key", 50)


CLI_CASES = [  # (argv before -p, what the message names)
    (["codebook", "add", "C" * 301], "The code name is 301 characters long, over its limit of 300 characters"),
    (["theory", "add", "T" * 51, "--title", "A title"], "The theory key is 51 characters long, over its limit of 50"),
    (["cmoc", "add", "M" * 51], "The CMOC key is 51 characters long, over its limit of 50"),
    (["participants", "add", "P" * 101], "The participant code is 101 characters long, over its limit of 100"),
    (["memo", "add", "Text", "--title", "t" * 301], "The memo title is 301 characters long, over its limit of 300"),
    (["memo", "add", "Bad\x00memo"], "The memo text contains a control character, U+0000 at character 4"),
]


@pytest.mark.parametrize("argv,message", CLI_CASES, ids=["code", "theory", "cmoc", "participant", "title", "nul"])
def test_the_cli_refuses_with_one_sentence_and_exit_1(project_target, runner, cli, argv, message):
    result = runner.invoke(cli, ["-p", project_target, *argv])
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output and "DataError" not in result.stderr
    assert result.stderr.strip().count("\n") <= 2  # one sentence (the console may wrap it)


def test_free_text_kept_in_settings_is_checked_too(project_target, tmp_path, runner, cli):
    """Narrative sections live in a setting (JSON): a NUL there is refused like in any text column."""
    with Project.open(project_target) as project:
        with pytest.raises(SpRealistError, match=r"^The project setting narrative contains a control character, "
                                                 r"U\+0000 at character 6"):
            project.set_setting("narrative", {"ethics": "Ethic\x00s approved."})
        assert project.get_setting("narrative") is None
    text = tmp_path / "ethics.md"
    text.write_text("Approved by\x07 the board.", encoding="utf-8")
    r = runner.invoke(cli, ["-p", project_target, "narrative", "set", "ethics", str(text)])
    assert r.exit_code == 1 and "U+0007" in r.stderr and "Traceback" not in r.output

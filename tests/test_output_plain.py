"""Issue 12, output: piped tables are tab-separated text (never split mid-word), an 80-column terminal
wraps cells at word boundaries with whole headers, and user text is never read as rich markup."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console

from sp_realist.output import render, rich_table, to_plain

LONG = "participant code implies site S3 and the entries are being put where they belong"
WIDE = pd.DataFrame(
    [["s3-dk2-2019-05-14-weekly-reflection.txt", "would add", "S3 DK2", "S3", "diary", 12, "S3 DK2 2019-05-14", LONG]],
    columns=["file", "status", "participant", "site", "kind", "segments", "name", "message"])


class _Tty(io.StringIO):
    def isatty(self) -> bool:  # a terminal, as far as rich can tell
        return True


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[\s│┃┆|]+", text) if w}


def _plain_text(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _plain_lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.rstrip("\n").split("\n")]


def test_dry_run_piped_is_tab_separated_and_never_splits_words(place, cli, runner, tmp_path):
    folder = tmp_path / "interviews"
    folder.mkdir()
    long_name = "s2-practice-manager-interview-corrected-transcript-2019-06-28.txt"
    (folder / long_name).write_text("Interviewer: How are referrals?\nManager: Slow at first, then fine.\n",
                                    encoding="utf-8")
    project = str(place("p"))
    assert runner.invoke(cli, ["init", project]).exit_code == 0
    res = runner.invoke(cli, ["ingest", str(folder), "--dry-run", "-p", project])  # CliRunner's stdout: no terminal
    assert res.exit_code == 0, res.output
    rows = _plain_lines(res.stdout)
    assert rows[0][:2] == ["file", "status"] and "participant" in rows[0]
    assert len(rows) == 2 and len(rows[1]) == len(rows[0])
    assert rows[1][0].endswith(long_name)  # the whole file name on one line
    assert not any(ch in res.stdout for ch in "│┃━─")  # no box drawing


def test_table_to_a_file_is_plain_and_other_formats_unchanged(tmp_path):
    out = tmp_path / "t.txt"
    render(WIDE, "table", output=str(out), title="Ingest")
    assert _plain_lines(out.read_text(encoding="utf-8"))[1][-1] == LONG
    buf = io.StringIO()
    render(WIDE, "csv", stream=buf)
    assert buf.getvalue().splitlines()[0] == "file,status,participant,site,kind,segments,name,message"


@given(st.text())
@example("")
@example("tab\there")
@example("line\nbreak\r\n")
@example("back\\slash\\n")
@example("[red]Alarm[/red] [/x]")
def test_plain_cells_stay_on_one_line_and_decode_back(text):
    line = to_plain(pd.DataFrame({"a": [text], "b": ["x"]})).split("\n")[1]
    cell, last = line.split("\t")
    assert last == "x"
    decoded = re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[m.group(1)], cell)
    assert decoded == text


def test_80_column_terminal_wraps_at_words_and_keeps_headers_whole():
    narrow = WIDE[["file", "status", "participant", "message"]]
    for df in (narrow, WIDE):  # WIDE needs more than 80 columns of headers: one block per row
        console = Console(file=io.StringIO(), width=80, force_terminal=False)
        console.print(rich_table(df, "Ingest", width=80))
        text = console.file.getvalue()
        assert max(len(line) for line in text.splitlines()) <= 80
        words = _words(text)
        for header in df.columns:
            assert header in words, (header, text)
        for value in df.iloc[0].astype(str):
            for word in value.split():
                assert word in words, (word, text)


def test_render_on_a_terminal_uses_the_rich_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    stream = _Tty()
    render(WIDE[["file", "status", "message"]], "table", stream=stream, title="[red]Alarm")
    text = _plain_text(stream.getvalue())
    assert "┃ file" in text and "[red]Alarm" in text and "\x1b[31m" not in stream.getvalue()
    assert "s3-dk2-2019-05-14-weekly-reflection.txt" in text
    stream = _Tty()
    render(WIDE.iloc[0:0], "table", stream=stream, title="[/x] odd")
    assert "[/x] odd: nothing to show" in stream.getvalue()


@pytest.mark.sqlite_only("writing text without markup")
def test_markup_in_code_names_titles_and_errors_is_text(cli, runner, tmp_path, monkeypatch):
    (tmp_path / "s1-lw4.txt").write_text(
        "Interviewer: How are referrals?\nLink worker: The workload was heavy but we coped.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for args in (["init", "p.sprealist"], ["ingest", "s1-lw4.txt"], ["codebook", "add", "[red]Alarm"],
                 ["codebook", "add", "[/x] odd"],
                 ["code", "add", "[red]Alarm", "-s", "s1-lw4", "--match", "workload", "--coder", "RA"]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["retrieve", "[red]Alarm"], color=True)
    assert res.exit_code == 0 and "[red]Alarm" in res.stdout and "\x1b[" not in res.stdout
    res = runner.invoke(cli, ["retrieve", "[/x] odd"])
    assert res.exit_code == 0 and "Traceback" not in res.output
    res = runner.invoke(cli, ["retrieve", "[/x] missing"])
    assert res.exit_code == 1 and "'[/x] missing'" in res.stderr
    monkeypatch.setenv("COLUMNS", "80")
    stream = _Tty()
    render(pd.DataFrame({"code": ["[red]Alarm", "[bold]x[/bold]"]}), "table", stream=stream, title="[/x] odd")
    text = _plain_text(stream.getvalue())
    assert "[red]Alarm" in text and "[bold]x[/bold]" in text and "[/x] odd" in text

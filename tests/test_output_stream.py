"""Issue 14, large results: csv, json and md are written row by row (streamed) and stay byte-identical to
what they were; a terminal table of more than ``output.TERMINAL_ROWS`` rows shows the first rows and a
summary line saying how many there are and how to get them all; the output check still refuses a leak.

Goldens (tests/golden/output-*) were written by the renderer before streaming; regenerate after an intended
change with ``SP_REALIST_REGEN_GOLDEN=1 python -m pytest tests/test_output_stream.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sp_realist.output import _CHUNK, render

pytestmark = pytest.mark.sqlite_only("writing rows to terminals and files; the rows come from queries tested on both back ends")

GOLDEN = Path(__file__).parent / "golden"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SP_REALIST_REGEN_GOLDEN"):
        path.write_text(text, encoding="utf-8", newline="")
    assert path.exists(), f"golden file {path} missing; run with SP_REALIST_REGEN_GOLDEN=1"
    assert text == path.read_bytes().decode("utf-8")


def _frames() -> dict[str, pd.DataFrame]:
    mixed = pd.DataFrame({
        "id": [1, 2, 3, 4],
        "name": ["S1 DK1 2019-05-14", 'said "no", then left', "line one\nline two\ttab", "[red]Alarm Ŵyn ☕"],
        "share": [0.5, float("nan"), 1 / 3, 1e-05],
        "ok": [True, False, True, False],
        "note": [None, "", "a|b", "back\\slash"],
    })
    nullable = pd.DataFrame({
        "start": pd.array([0, None, 12], dtype="Int64"),
        "when": pd.to_datetime(["2019-05-14", "2019-06-01", None]),
        "count": np.array([3, 4, 5], dtype=np.int64),
        "ratio": np.array([1.0, 2.5, np.nan]),
    })
    empty = pd.DataFrame(columns=["code", "codings", "sources"])
    return {"mixed": mixed, "nullable": nullable, "empty": empty}


@pytest.mark.parametrize("fmt", ["csv", "json", "md", "table"])
@pytest.mark.parametrize("name", ["mixed", "nullable", "empty"])
def test_small_results_are_byte_identical_to_before(name, fmt, tmp_path):
    df = _frames()[name]
    buf = io.StringIO()
    render(df, fmt, stream=buf, title="T")  # a StringIO is no terminal: table gives tab-separated text
    _check(f"output-{name}.{'txt' if fmt == 'table' else fmt}", buf.getvalue())
    out = tmp_path / f"out.{fmt}"
    render(df, fmt, output=str(out), title="T")
    assert out.read_bytes().decode("utf-8") == buf.getvalue()  # a file gets the same bytes as stdout


def _small_project(cli, runner, tmp_path) -> str:
    project = str(tmp_path / "p.sprealist")
    assert runner.invoke(cli, ["init", project]).exit_code == 0
    for i, name in enumerate(["s1-lw1.txt", "s2-pm1.txt", "notes, draft.txt"]):
        f = tmp_path / name
        f.write_text(f'Interviewer: How was week {i}?\nS1 LW{i + 1}: Busy, "but" the referrals came.\n',
                     encoding="utf-8")
        args = ["ingest", str(f), "-p", project, "--kind", "interview"]
        if i < 2:
            args += ["--attr", f"wave={i + 1}", "--attr", "board=Cwm Taf"]
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, res.output
    return project


@pytest.mark.parametrize("fmt", ["csv", "json", "md", "table"])
def test_sources_list_and_info_are_byte_identical_to_before(cli, runner, tmp_path, fmt):
    project = _small_project(cli, runner, tmp_path)
    res = runner.invoke(cli, ["sources", "list", "-p", project, "--format", fmt])
    assert res.exit_code == 0, res.output
    _check(f"output-sources-list.{'txt' if fmt == 'table' else fmt}", res.stdout)
    res = runner.invoke(cli, ["info", "-p", project, "--format", fmt])
    assert res.exit_code == 0, res.output
    # the schema version moves with every migration: the golden holds SCHEMA in its place
    text = re.sub(r"(schema_version\D{0,20}?)\d+", r"\g<1>SCHEMA", res.stdout.replace(project, "PROJECT"), count=1)
    _check(f"output-info.{'txt' if fmt == 'table' else fmt}", text)


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def long_source(cli, runner, tmp_path):
    """A project holding one interview of 1,200 speaker turns (1,200 segments): ``sources show`` lists them."""
    lines = [f"Interviewer: Question number {i}?" if i % 2 == 0 else f"Participant: Answer number {i}."
             for i in range(1200)]
    f = tmp_path / "long.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    project = str(tmp_path / "long.sprealist")
    assert runner.invoke(cli, ["init", project]).exit_code == 0
    res = runner.invoke(cli, ["ingest", str(f), "-p", project, "--kind", "interview"])
    assert res.exit_code == 0, res.output
    return project


def test_a_long_listing_on_a_terminal_shows_the_first_rows_and_a_summary(cli, runner, long_source):
    from sp_realist.output import TERMINAL_ROWS

    res = runner.invoke(cli, ["sources", "show", "long", "-p", long_source],
                        env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"})  # rich takes CliRunner's stdout for a terminal
    assert res.exit_code == 0, res.output
    text = _ansi_free(res.stdout)
    assert "┃" in text  # the rich table
    assert (f"Showing the first {TERMINAL_ROWS:,} of 1,200 rows; for all of them write a file with --format csv "
            "-o FILE (or --format json -o FILE).") in " ".join(text.split())
    assert f"number {TERMINAL_ROWS - 1}" in text and f"number {TERMINAL_ROWS}." not in text


def test_a_long_listing_piped_or_in_a_file_is_complete(cli, runner, long_source, tmp_path):
    from sp_realist.ingest.browse import source_detail
    from sp_realist.store import Project

    with Project.open(long_source) as p:
        _facts, df = source_detail(p, "long")
    assert len(df) == 1200
    res = runner.invoke(cli, ["sources", "show", "long", "-p", long_source])  # a pipe: every row, no summary
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1201 and "Showing the first" not in res.output
    out = tmp_path / "segments.csv"
    res = runner.invoke(cli, ["sources", "show", "long", "-p", long_source, "--format", "csv", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().decode("utf-8") == df.to_csv(index=False, lineterminator="\n")


def test_large_results_are_written_row_by_row_and_match_the_whole_text():
    from sp_realist.rows import Rows

    df = pd.DataFrame({"n": range(2500), "text": [f"row {i}, \"quoted\"\nline" for i in range(2500)]})
    old_json = json.dumps([{"n": i, "text": t} for i, t in zip(df["n"], df["text"])], ensure_ascii=False,
                          indent=2) + "\n"

    class Recorder(io.StringIO):
        writes = 0

        def write(self, s):
            self.writes += 1
            return super().write(s)

    for fmt, whole in (("json", old_json), ("csv", df.to_csv(index=False, lineterminator="\n"))):
        buf = Recorder()
        render(df, fmt, stream=buf)
        assert buf.getvalue() == whole and buf.writes > 2  # streamed: more than one write
    written: list[int] = []

    def rows(stream):  # a cursor: each row is produced only after the one before was written
        for i in range(1500):
            written.append(stream.getvalue().count("\n"))
            yield (i, f"r{i}")

    for fmt in ("json", "csv", "md", "table"):
        buf = io.StringIO()
        written.clear()
        render(Rows(["n", "text"], rows(buf)), fmt, stream=buf)
        # written as they came (json: a chunk of _CHUNK rows at a time), never all at the end
        assert written[_CHUNK + 1] > 0, fmt
        if fmt != "json":
            assert len(set(written)) == 1500, fmt
    buf = io.StringIO()
    render(Rows(["n", "text"], ((i, f"r{i}") for i in range(1500))), "json", stream=buf)
    assert json.loads(buf.getvalue()) == [{"n": i, "text": f"r{i}"} for i in range(1500)]
    buf = io.StringIO()
    render(Rows(["n", "text"], ((i, f"r{i}") for i in range(1500))), "csv", stream=buf)
    assert buf.getvalue() == pd.DataFrame({"n": range(1500), "text": [f"r{i}" for i in range(1500)]}).to_csv(
        index=False, lineterminator="\n")


def test_rows_and_their_frame_give_the_same_csv_json_and_table(cli, runner, tmp_path):
    from sp_realist.commands import project_info, project_info_rows
    from sp_realist.ingest.browse import list_sources
    from sp_realist.sources import source_rows
    from sp_realist.store import Project

    project = _small_project(cli, runner, tmp_path)
    (tmp_path / "dk1.txt").write_text("Went to the group.\n", encoding="utf-8")
    res = runner.invoke(cli, ["ingest", str(tmp_path / "dk1.txt"), "-p", project, "--participant", "S1 DK1"])
    assert res.exit_code == 0, res.output
    with Project.open(project) as p:
        assert list_sources(p, participant="S1  DK1")["name"].tolist() == ["dk1"]
        assert [r[1] for r in source_rows(p, participant="S1 DK1", site="S1", kind="interview")] == ["dk1"]
        for fmt in ("csv", "json", "md", "table"):
            for rows, frame in ((source_rows(p), list_sources(p)), (project_info_rows(p), project_info(p)),
                                (source_rows(p, kind="interview", site="nowhere"), list_sources(p, site="nowhere"))):
                a, b = io.StringIO(), io.StringIO()
                render(rows, fmt, stream=a)
                render(frame, fmt, stream=b)
                assert a.getvalue() == b.getvalue(), fmt
        assert list_sources(p, kind="interview")["name"].tolist() == ["s1-lw1", "s2-pm1", "notes, draft", "dk1"]
        assert list_sources(p, site="S1")["name"].tolist() == ["dk1"]  # the participant's site
        assert list_sources(p, kind="diary").empty


def test_a_streamed_file_with_a_leak_is_not_written(cli, runner, tmp_path, monkeypatch):
    from sp_realist.privacy.guard import activated

    from sp_realist.rows import Rows
    from sp_realist.cli_support import emit
    from sp_realist.errors import CheckFailed
    from sp_realist.store import Project

    key = tmp_path / "key.yaml"
    key.write_text("entries:\n  - {original: Sarah Jones, replacement: S1 DK1}\n", encoding="utf-8")
    project = _small_project(cli, runner, tmp_path)
    monkeypatch.delenv("SP_REALIST_KEY", raising=False)
    res = runner.invoke(cli, ["anonymise", "--key", str(key), "-p", project])
    assert res.exit_code == 0, res.output
    rows = [(i, "fine") for i in range(1500)] + [(1500, "then Sarah Jones said")]
    out = tmp_path / "out.csv"
    with Project.open(project) as p, activated(p):
        for fmt in ("csv", "json"):
            with pytest.raises(CheckFailed, match="row 1501, column 'text'"):
                emit(Rows(["n", "text"], iter(rows)), fmt, output=str(out))
            assert not out.exists()
            buf = io.StringIO()
            monkeypatch.setattr("sys.stdout", buf)
            with pytest.raises(CheckFailed):
                emit(Rows(["n", "text"], iter(rows)), fmt)
            assert buf.getvalue() == ""  # nothing reached stdout
            emit(Rows(["n", "text"], iter(rows[:-1])), fmt, output=str(out))
            assert out.exists() and "1499" in out.read_text(encoding="utf-8")
            out.unlink()

"""Several writer processes on one project at once (the real thing: separate OS processes, on each back end of
`project_target`): nothing is lost, nothing duplicated, no writer fails or prints a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import func, select

from sp_realist import schema as S
from sp_realist.store import Project

WRITERS = 3
ROUNDS = 8
CLI_WRITERS = 2  # processes per command in the CLI test: each pays a whole interpreter start
TEXT = "".join(f"Line {i}: the referral reached the practice late again.\n" for i in range(40))

# One writer: waits for the start signal, then in each round adds a code of its own, codes the same spans as
# every other writer (under one shared coder, so they are the same codings), adds a theme, a CMOC, a theory,
# a memo and a participant, and appraises the same span as every other writer (one excerpt, one appraisal per
# writer).  Library calls, each its own transaction, as the CLI makes them.
WRITER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from sp_realist.store import Project
    from sp_realist.coding.codebook import add_code
    from sp_realist.coding.codings import add_coding
    from sp_realist.coding.memos import add_memo
    from sp_realist.coding.themes import add_theme
    from sp_realist.cmoc.cmocs import add_cmoc
    from sp_realist.cmoc.theories import add_theory
    from sp_realist.cmoc.appraisal import set_appraisal
    from sp_realist.ingest.browse import add_participant

    target, me, rounds, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.01)
    project = Project.open(target)
    for r in range(rounds):
        add_code(project, f"W{me} code {r}")
        add_coding(project, "Shared", "Notes", span=f"{r * 10}:{r * 10 + 8}", coder="team")
        add_coding(project, f"W{me} code {r}", "Notes", span=f"{r}:{r + 5}", coder=f"coder {me}")
        add_theme(project, f"W{me} theme {r}")
        add_cmoc(project, f"W{me}.{r}")
        add_theory(project, f"T{me}-{r}", f"Theory {me} {r}")
        add_memo(project, f"Memo {r} by writer {me}.", author=f"coder {me}")
        add_participant(project, f"W{me} P{r}", role="link worker")
        set_appraisal(project, {"source": "Notes", "span": [r * 10, r * 10 + 8]}, f"analyst {me}",
                      relevance="relevant", trust="high")
    project.close()
''')


def _env() -> dict:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _prepare(target: str, tmp_path: Path) -> None:
    from sp_realist.coding.codebook import add_code
    from sp_realist.sources import Segment, SourceDraft, add_source

    with Project.open(target) as project:
        with project.begin() as conn:
            add_source(conn, SourceDraft(name="Notes", kind="field_notes", text=TEXT, checksum="notes",
                                           segments=[Segment(0, len(TEXT), kind="paragraph")]))
        add_code(project, "Shared")


def test_writers_in_parallel_lose_and_duplicate_nothing(project_target, tmp_path):
    _prepare(project_target, tmp_path)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, project_target, str(i), str(ROUNDS), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for i in range(WRITERS)]
    time.sleep(1.0)  # let every writer import and wait at the start line
    go.write_text("go")
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "Traceback" not in err and "Error" not in err, err

    with Project.open(project_target) as project, project.connect() as conn:
        def count(table, *where):
            q = select(func.count()).select_from(table)
            for w in where:
                q = q.where(w)
            return conn.execute(q).scalar_one()

        n = WRITERS * ROUNDS
        assert count(S.codes) == n + 1
        assert count(S.themes) == n and count(S.cmocs) == n and count(S.theories) == n
        assert count(S.memos) == n and count(S.participants) == n
        assert count(S.excerpts) == ROUNDS  # the same span appraised by every writer: one excerpt
        assert count(S.appraisals) == n  # one per writer and excerpt
        shared = conn.execute(select(S.codes.c.id).where(S.codes.c.name == "Shared")).scalar_one()
        assert count(S.codings, S.codings.c.code_id == shared) == ROUNDS  # the same coding from every writer: one
        assert count(S.codings) == ROUNDS + n
        # ordinals never collide
        for column in (S.codes.c.ord, S.themes.c.ord, S.cmocs.c.ord, S.theories.c.ord):
            values = conn.execute(select(column)).scalars().all()
            assert len(values) == len(set(values)), f"{column} has repeated values"
        # every writer's own rows are all there
        names = set(conn.execute(select(S.codes.c.name)).scalars())
        assert {f"W{i} code {r}" for i in range(WRITERS) for r in range(ROUNDS)} <= names


def test_the_same_coding_added_at_once_from_the_cli_is_one_coding(project_target, tmp_path):
    """`sp-realist code add` processes (CLI_WRITERS of them) adding one coding at the same moment: all succeed
    (exit 0, no traceback) and the project holds it once; the same for one code name (one succeeds, the others
    say it already exists, in one sentence); memos added at once are all kept. (The library test above runs
    more writers for longer.)"""
    _prepare(project_target, tmp_path)
    go = tmp_path / "go"
    starter = ("import sys, time, pathlib\n"
               "go = pathlib.Path(sys.argv.pop(1))\n"
               "while not go.exists(): time.sleep(0.01)\n"
               "from sp_realist.cli import main\n"
               "sys.argv[0] = 'sp-realist'\n"
               "main()\n")
    argvs = [["-p", project_target, "code", "add", "Shared", "-s", "Notes", "--span", "0:20", "--coder", "team"]
             for _ in range(CLI_WRITERS)]
    argvs += [["-p", project_target, "codebook", "add", "Same name"] for _ in range(CLI_WRITERS)]
    argvs += [["-p", project_target, "memo", "add", f"Memo {i}."] for i in range(CLI_WRITERS)]
    procs = [subprocess.Popen([sys.executable, "-c", starter, str(go), *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for argv in argvs]
    time.sleep(1.5)
    go.write_text("go")
    results = [(p.communicate(timeout=600), p.returncode) for p in procs]
    for (out, err), rc in results:
        assert "Traceback" not in err, err
    coding_rcs = [rc for _, rc in results[:CLI_WRITERS]]
    assert coding_rcs == [0] * CLI_WRITERS, [r[0][1] for r in results[:CLI_WRITERS]]
    code_results = results[CLI_WRITERS:2 * CLI_WRITERS]
    assert sorted(rc for _, rc in code_results) == [0] + [1] * (CLI_WRITERS - 1)
    for (out, err), rc in code_results:
        if rc:
            assert "'Same name'" in err and "already" in err and err.strip().count("\n") <= 1, err
    assert [rc for _, rc in results[2 * CLI_WRITERS:]] == [0] * CLI_WRITERS
    with Project.open(project_target) as project, project.connect() as conn:
        assert conn.execute(select(func.count()).select_from(S.codings)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(S.codes)
                            .where(S.codes.c.name == "Same name")).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(S.memos)).scalar_one() == CLI_WRITERS

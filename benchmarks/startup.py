"""Benchmark: how long a command takes before it does anything (start-up), against bare processes.

    python -m benchmarks.startup            # 15 runs of each, medians
    python -m benchmarks.startup --runs 5

Each sp-realist command runs as its own process (``python -m sp_realist``), and so does its baseline:

1. ``--version`` and ``--help`` vs ``python -c "import click"``;
2. ``info`` and ``sources list`` on a small project (3 sources) vs a bare process that imports click, rich and
   SQLAlchemy and reads the same rows from the same file.

Reported: median wall time of each, their ratio, and the peak RSS of the whole process (``wait4``).
Goals (issue 14): ``--version`` and ``--help`` <= 2x; ``info`` and ``sources list`` <= 2x.
Results are printed as Markdown for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_READ = """
import click, rich.console, sqlalchemy as sa
engine = sa.create_engine("sqlite:///" + {path!r})
with engine.connect() as conn:
    rows = conn.execute(sa.text("SELECT id, name, kind, length(text) FROM sources ORDER BY ingest_order")).all()
console = rich.console.Console()
for row in rows:
    console.print(*row)
"""


def run(argv: list[str], cwd: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return elapsed, usage.ru_maxrss


def measure(argv: list[str], cwd: str, runs: int) -> tuple[float, int]:
    run(argv, cwd)  # warm the file cache
    samples = [run(argv, cwd) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


MAKE_PROJECT = """
from pathlib import Path
from sp_realist.ingest import ingest_paths
from sp_realist.store import Project
folder = Path({folder!r})
files = []
for i in range(3):
    f = folder / f"s{{i}}.txt"
    f.write_text(f"Interviewer: How was week {{i}}?\\nS1 LW{{i + 1}}: Busy, but the referrals came.\\n",
                 encoding="utf-8")
    files.append(f)
with Project.create(folder / "small.sprealist") as project:
    ingest_paths(project, files, kind="interview")
"""


def make_project(folder: Path) -> Path:
    """The small project, made in a child process: this process stays small, because a child's peak RSS
    counts the memory it was forked with."""
    subprocess.run([sys.executable, "-c", MAKE_PROJECT.format(folder=str(folder))], check=True)
    return folder / "small.sprealist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        bare_click = [py, "-c", "import click"]
        bare_read = [py, "-c", BARE_READ.format(path=str(project))]
        cases = [
            ("sp-realist --version", [py, "-m", "sp_realist", "--version"], "import click", bare_click),
            ("sp-realist --help", [py, "-m", "sp_realist", "--help"], "import click", bare_click),
            ("sp-realist info (3 sources)", [py, "-m", "sp_realist", "info", "-p", str(project)],
             "click + rich + SQLAlchemy read", bare_read),
            ("sp-realist sources list (3 sources)", [py, "-m", "sp_realist", "sources", "list", "-p", str(project)],
             "click + rich + SQLAlchemy read", bare_read),
        ]
        print(f"Median of {args.runs} runs each; peak RSS of the whole process.\n")
        print("| command | sp_realist | baseline | bare | ratio | peak RSS (sp_realist / bare) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, argv, base_label, base_argv in cases:
            ours, ours_rss = measure(argv, tmp, args.runs)
            bare, bare_rss = measure(base_argv, tmp, args.runs)
            print(f"| {label} | {ours:.3f} s | {base_label} | {bare:.3f} s | {ours / bare:.1f}x | "
                  f"{ours_rss / 1024:.0f} MB / {bare_rss / 1024:.0f} MB |")


if __name__ == "__main__":
    main()

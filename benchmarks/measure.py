"""Run one piece of benchmark work in its own process and measure it: wall and CPU seconds (from the
child) and the peak RSS of the whole child process (``getrusage`` at the child's end), so that each figure includes the
interpreter, every import and everything the work holds, and nothing the benchmark itself holds.

A benchmark module defines ``child(task: dict) -> dict`` and calls :func:`child_main` when run with
``--child``; :func:`in_child` starts ``python -m <module> --child '<task JSON>'``.  The child times its
own work (``time.perf_counter`` / ``time.process_time`` around the work only, imports excluded) and
prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def in_child(module: str, task: dict) -> dict:
    """The child's JSON result, with ``rss_mib``: the peak RSS of the whole child process."""
    argv = [sys.executable, "-m", module, "--child", json.dumps(task)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{module} {task.get('work')} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(child: Callable[[dict], dict]) -> bool:
    """When ``--child TASK`` is on the command line: run it, print its JSON line and return True."""
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        result = child(json.loads(sys.argv[2]))
        import resource

        result["rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result))
        return True
    return False


def compile_sp_realist() -> None:
    """Byte-compile sp_realist's modules, as an installed package's are (pip compiles on install): where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the machine of docs/performance.md) a benchmark process would
    otherwise compile every module it imports from source -- inside the measured work for a module imported
    lazily -- which the bare baseline, importing installed libraries, never pays."""
    import compileall

    compileall.compile_dir(str(ROOT / "sp_realist"), quiet=1)


class Clock:
    """``with Clock() as c: ...`` then ``c.wall`` / ``c.cpu`` (seconds)."""

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c
        return False

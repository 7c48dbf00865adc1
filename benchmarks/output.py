"""Benchmark: writing a large result (200,000 rows x 3 columns) as csv, json and a terminal table.

    python -m benchmarks.output

Compares ``sp_realist.output.render`` (rows written a chunk at a time; a terminal gets the first
``TERMINAL_ROWS`` rows and a summary line) with building the whole text first, as the renderer did before
(``DataFrame.to_csv()`` to a string; ``json.dumps`` of every record).  Time is one run without tracing;
peak is tracemalloc's peak of Python allocations during a second run (the frame itself excluded).
Results are printed as Markdown for docs/performance.md.
"""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc

import pandas as pd

from sp_realist.output import render, to_records

N = 200_000


class _Null(io.TextIOBase):
    """stdout that keeps nothing (what is measured is making the text, not storing it)."""

    def write(self, s: str) -> int:
        return len(s)


class _Tty(io.StringIO):
    def isatty(self) -> bool:  # a terminal, as far as rich can tell
        return True


def _measure(work) -> tuple[float, float]:
    t0 = time.perf_counter()
    work()
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak / 2**20


def main() -> None:
    df = pd.DataFrame({"id": range(N), "code": [f"code {i % 100}" for i in range(N)],
                       "text": [f"the participant said thing number {i}, at length" for i in range(N)]})
    os.environ["COLUMNS"] = "120"
    cases = [
        ("csv, streamed (`render`)", lambda: render(df, "csv", stream=_Null())),
        ("csv, one string (before)", lambda: _Null().write(df.to_csv(index=False, lineterminator="\n"))),
        ("json, streamed (`render`)", lambda: render(df, "json", stream=_Null())),
        ("json, one string (before)",
         lambda: _Null().write(json.dumps(to_records(df), ensure_ascii=False, indent=2, default=str) + "\n")),
        ("terminal table: first 200 rows + summary line", lambda: render(df, "table", stream=_Tty())),
    ]
    print(f"{N:,} rows x 3 columns.\n")
    print("| output | time | peak Python allocations |")
    print("| --- | --- | --- |")
    for label, work in cases:
        elapsed, peak = _measure(work)
        print(f"| {label} | {elapsed:.2f} s | {peak:.1f} MiB |")


if __name__ == "__main__":
    main()

"""How fast the interactive reader (``sp-realist browse``) feels: time to first paint, opening a 50,000-word
source, jumping to a code's next coding, and filtering 2,000 sources, all through Textual's Pilot (headless,
160x48), on a deterministic project (:mod:`benchmarks.corpus`).

    python -m benchmarks.browse [--sources 2000] [--words 50000] [--repeat 5]

Each figure is the median of ``--repeat`` runs; "paint" means the app has processed the action and refreshed
the screen (``pilot.pause()`` returns once every pending message, including the repaint, is handled).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import transcript, write_corpus


def make_project(folder: Path, n_sources: int, big_words: int):
    import random

    from sp_realist import Project
    from sp_realist.coding.codebook import add_code
    from sp_realist.coding.codings import insert_codings
    from sp_realist.coding.units import SourceUnits
    from sp_realist.ingest import ingest_paths
    from sp_realist.sources import resolve_source

    files = write_corpus(folder / "small", n_files=n_sources, total_words=n_sources * 120)
    big = folder / "big-interview.txt"
    big.write_text(transcript(random.Random(50), big_words), encoding="utf-8")
    project = Project.create(folder / "bench.sprealist")
    sites = ("S1", "S2", "S3", "S4")
    for i, site in enumerate(sites):
        ingest_paths(project, files[i::len(sites)], kind="interview" if i % 2 else "diary", site=site)
    ingest_paths(project, [big], kind="interview", site="S1")
    codes = [f"Code {i:02d}" for i in range(20)]
    for c in codes:
        add_code(project, c)
    rng = random.Random(7)
    with project.begin() as conn:
        ids = dict(conn.execute(__import__("sqlalchemy").select(project.tables.codes.c.name,
                                                                 project.tables.codes.c.id)).all())
        rows = []
        big_src = resolve_source(conn, "big-interview")
        for s, e in SourceUnits.load(conn, big_src["id"], big_src["text"]).sentences[::3]:
            rows.append({"code_id": ids[rng.choice(codes)], "source_id": big_src["id"], "start": s, "end": e,
                         "coder": "RA", "origin": "manual"})
        for sid, n in conn.execute(__import__("sqlalchemy").select(project.tables.sources.c.id,
                                                                    project.tables.sources.c.name)).all():
            if n != "big-interview":
                rows.append({"code_id": ids[rng.choice(codes)], "source_id": sid, "start": 0, "end": 20,
                             "coder": "RA", "origin": "manual"})
        insert_codings(conn, rows)
    return project, len(rows)


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds: CPU time shows the work itself when other jobs share the cores."""
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float], now: tuple[float, float] | None = None) -> tuple[float, float]:
    now = now or clock()
    return now[0] - t[0], now[1] - t[1]


async def measure(project, repeat: int) -> dict[str, list[tuple[float, float]]]:
    from sp_realist.browse.app import BrowseApp
    from sp_realist.sources import resolve_source

    with project.connect() as conn:
        big = resolve_source(conn, "big-interview")["id"]
    names = ("first paint (the screen; the list is read after it)", "source list: first rows painted",
             "whole source list filled (2,000 rows, in chunks)",
             "open the 50,000-word source", "next coding of a code",
             "code a sentence of it with a new code (the list's counts updated)", "undo that",
             "filter 2,000 sources (kind:interview site:S3)", "clear the filter: first rows painted",
             "clear the filter: all 2,000 rows back")
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    painted: list[tuple[float, float]] = []
    first: list[tuple[float, float]] = []

    def watch(app):
        """Note when the source list's second chunk starts: its first rows have been painted by then."""
        fill = app._fill_rows

        def timed(n, rows, start):
            if start == app.FILL_CHUNK:
                painted.append(clock())
            fill(n, rows, start)
            if start == 0 and len(rows) <= app.FILL_CHUNK:  # one chunk: painted at the next refresh
                app.call_after_refresh(lambda: painted.append(clock()))

        app._fill_rows = timed
        load = app._load_list

        def loading(*args):  # called after the first refresh: the screen has been painted
            first.append(clock())
            load(*args)

        app._load_list = loading

    for _ in range(repeat):
        t0 = clock()
        app = BrowseApp(project, coder="RA")
        watch(app)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            while not painted or painted[-1][0] < t0[0]:
                await pilot.pause()
            out[names[0]].append(since(t0, first[-1]))
            out[names[1]].append(since(t0, painted[-1]))
            table = app.query_one("#sources")
            while table.row_count < len(app.shown):  # the rest of the list, 200 rows a repaint
                await pilot.pause()
            out[names[2]].append(since(t0))
            await pilot.pause()  # and the repaint after the last rows
            t = clock()
            app.open_source(big)
            await pilot.pause()
            out[names[3]].append(since(t))
            app.last_code = "Code 03"
            app.reader.cursor_location = (0, 0)
            await pilot.pause()
            t = clock()
            await pilot.press("n")
            await pilot.pause()
            out[names[4]].append(since(t))
            app.reader.move_to(len(app.reader.view.text) // 2)
            await pilot.press("s", "c", *"Bench code")
            await pilot.pause()
            t = clock()
            await pilot.press("enter")
            await pilot.pause()
            out[names[5]].append(since(t))
            t = clock()
            await pilot.press("u")
            await pilot.pause()
            out[names[6]].append(since(t))
            t = clock()
            app.query_one("#filter").value = "kind:interview site:S3"
            await pilot.pause()
            out[names[7]].append(since(t))
            t = clock()
            app.query_one("#filter").value = ""
            table = app.query_one("#sources")
            while len(app.shown) < len(app.index.frame) or table.row_count < len(app.shown):
                await pilot.pause()
            out[names[8]].append(since(t, painted[-1]))
            out[names[9]].append(since(t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=2000)
    ap.add_argument("--words", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        project, n = make_project(Path(tmp), args.sources, args.words)
        print(f"project: {args.sources} sources + one of {args.words:,} words, {n:,} codings "
              f"(made in {time.perf_counter() - t:.1f} s)")
        try:
            results = asyncio.run(measure(project, args.repeat))
        finally:
            project.close()
    print("| action | median wall (s) | slowest wall (s) | median CPU (s) |\n| --- | --- | --- | --- |")
    for k, v in results.items():
        wall, cpu = [w for w, _ in v], [c for _, c in v]
        print(f"| {k} | {statistics.median(wall):.3f} | {max(wall):.3f} | {statistics.median(cpu):.3f} |")


if __name__ == "__main__":
    main()

"""Benchmark: reports for a project with 100 CMOCs and 1,000 evidence quotes.

    python benchmarks/report.py                  # 100 CMOCs, 1,000 quotes (the target: each report < 10 s)
    python benchmarks/report.py --scale 3        # 300 CMOCs, 3,000 quotes

The project is generated deterministically (transcripts from
benchmarks/corpus.py; 25 theories x 4 CMOCs; 10 appraised evidence excerpts
per CMOC; 20 codes in 5 themes with 1,000 codings).  In the same run it times

* ``build_report_model`` (every query and table of the report),
* writing the Word, HTML and Markdown reports from that model
  (``write_report`` with ``model=``: layout, provenance, figure, zip
  normalisation), and the whole ``write_report`` for docx from scratch,
* the bare libraries doing the same layout work: python-docx adding the
  same number of headings, paragraphs, tables and rows (no fields,
  provenance or styles checks), and Jinja2 rendering the same rows into a
  minimal Markdown template,

and prints a Markdown table for docs/performance.md and a JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from benchmarks.corpus import generate  # noqa: E402
from sp_realist import schema as S  # noqa: E402
from sp_realist.report.api import write_report  # noqa: E402
from sp_realist.report.model import ReportSettings, build_report_model  # noqa: E402
from sp_realist.sources import Segment, SourceDraft, add_source, get_or_create_excerpt  # noqa: E402
from sp_realist.store import Project, now  # noqa: E402


def make_project(path: Path, n_cmocs: int = 100, quotes_per_cmoc: int = 10, seed: int = 2020) -> Project:
    rng = random.Random(seed)
    project = Project.create(path)
    ts = now()
    n_sources = max(20, n_cmocs * quotes_per_cmoc // 10)
    texts = {}
    with project.begin() as conn:
        for i, (name, text) in enumerate(generate(n_files=n_sources, total_words=n_sources * 800, seed=seed)):
            segs, pos = [], 0
            for part in text.split("\n\n"):
                end = min(len(text), pos + len(part) + 2)
                segs.append(Segment(pos, end, kind="turn"))
                pos = end
            segs[-1].end = len(text)
            code = f"S{i % 3 + 1} P{i}"
            sid = add_source(conn, SourceDraft(name=name, kind="interview" if i % 4 else "diary", text=text,
                                               segments=segs, checksum=name, date=f"2019-{i % 12 + 1:02d}-01",
                                               participant_code=code, attributes={"site": f"S{i % 3 + 1}"}))
            texts[sid] = text
        sids = sorted(texts)

        def sentence_span(sid: int) -> tuple[int, int]:
            text = texts[sid]
            start = rng.randrange(0, max(1, len(text) - 400))
            start = text.find(" ", start) + 1
            end = min(len(text), start + rng.randint(60, 300))
            return start, end

        code_ids = [conn.execute(insert(S.codes).values(name=f"Code {i:02d}", ord=i, definition=f"Definition {i}",
                                                        created_at=ts)).inserted_primary_key[0] for i in range(20)]
        rows, seen = [], set()
        while len(rows) < n_cmocs * quotes_per_cmoc:
            sid = rng.choice(sids)
            s, e = sentence_span(sid)
            cid = rng.choice(code_ids)
            if (cid, sid, s, e) in seen or e <= s:
                continue
            seen.add((cid, sid, s, e))
            rows.append(dict(code_id=cid, source_id=sid, start=s, end=e, coder="RA", origin="manual", created_at=ts))
        conn.execute(insert(S.codings), rows)
        for t in range(5):
            tid = conn.execute(insert(S.themes).values(name=f"Theme {t}", description="A theme.", phase="named",
                                                       ord=t, created_at=ts)).inserted_primary_key[0]
            conn.execute(insert(S.theme_codes), [dict(theme_id=tid, code_id=c) for c in code_ids[t * 4:(t + 1) * 4]])
        n_theories = max(1, n_cmocs // 4)
        k = 0
        for t in range(n_theories):
            tid = conn.execute(insert(S.theories).values(
                key=f"T{t + 1}", title=f"Mid-range theory {t + 1}", description="What the theory explains.",
                questions=json.dumps([f"Q{t % 4 + 1}"]), ord=t, created_at=ts, updated_at=ts)).inserted_primary_key[0]
            for j in range(4):
                if k >= n_cmocs:
                    break
                k += 1
                mid = conn.execute(insert(S.cmocs).values(
                    key=f"T{t + 1}.{j + 1}", context=f"Context {k} with a lack of induction at site",
                    mechanism_response=f"Mechanism {k}: confusion", outcome=f"Outcome {k}: communication issues",
                    status="complete", confidence="moderate", ord=j, created_at=ts, updated_at=ts)
                ).inserted_primary_key[0]
                conn.execute(insert(S.theory_cmocs).values(theory_id=tid, cmoc_id=mid, ord=j))
                for q in range(quotes_per_cmoc):
                    sid = rng.choice(sids)
                    s, e = sentence_span(sid)
                    xid = get_or_create_excerpt(conn, sid, s, e)
                    conn.execute(insert(S.cmoc_evidence).values(cmoc_id=mid, excerpt_id=xid,
                                                                role="supports" if q % 7 else "refutes",
                                                                component="context", analyst="RA", created_at=ts))
                    conn.execute(insert(S.appraisals).values(
                        excerpt_id=xid, analyst="RA", relevance="relevant", trust="high", interpretation="context",
                        cmoc_judgement="supports", cmoc_id=mid, theory_id=tid, created_at=ts, updated_at=ts))
    return project


def bare_docx(model) -> float:
    """python-docx alone laying out the same headings, paragraphs, tables and rows."""
    import docx

    t0 = time.perf_counter()
    doc = docx.Document()
    doc.add_heading(model.title, 0)
    for table in model.tables():
        doc.add_heading(table.caption, 2)
        t = doc.add_table(rows=1, cols=len(table.columns))
        for cell, name in zip(t.rows[0].cells, table.columns):
            cell.text = str(name)
        for row in table.rows:
            for cell, value in zip(t.add_row().cells, row):
                cell.text = str(value)
    for th in model.theories:
        for s in th.statements:
            doc.add_paragraph(s.text, style="List Bullet")
        for q in th.evidence:
            doc.add_paragraph(f"{q.text} ({q.attribution})", style="Quote")
    for th in model.themes:
        for q in th.quotes:
            doc.add_paragraph(f"{q.text} ({q.attribution})", style="Quote")
    if model.figure is not None and model.figure.png:
        doc.add_picture(io.BytesIO(model.figure.png))
    doc.save(io.BytesIO())
    return time.perf_counter() - t0


def bare_jinja(model) -> float:
    import jinja2

    t0 = time.perf_counter()
    tpl = jinja2.Environment().from_string(
        "# {{ m.title }}\n{% for t in m.tables() %}\n{{ t.caption }}\n\n| {{ t.columns|join(' | ') }} |\n"
        "{% for r in t.rows %}| {{ r|join(' | ') }} |\n{% endfor %}{% endfor %}"
        "{% for th in m.theories %}{% for q in th.evidence %}> {{ q.text }} ({{ q.attribution }})\n{% endfor %}"
        "{% endfor %}")
    tpl.render(m=model)
    return time.perf_counter() - t0


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU (process) seconds; CPU time is the fairer figure on a loaded machine."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="multiply the 100 CMOCs / 1,000 quotes")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n_cmocs = 100 * args.scale
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        project = make_project(tmp / "bench.sprealist", n_cmocs=n_cmocs)
        setup = time.perf_counter() - t0
        settings = ReportSettings(title="Benchmark report", date="2020-10-01", quotes_per_cmoc=10,
                                  quotes_per_theme=3)
        model = build_report_model(project, settings)
        n_quotes = sum(len(t.evidence) for t in model.theories) + sum(len(t.quotes) for t in model.themes)
        n_rows = sum(len(t.rows) for t in model.tables())
        results = {
            "model": timed(lambda: build_report_model(project, settings), args.repeat),
            "docx": timed(lambda: write_report(project, tmp / "r.docx", settings=settings, model=model),
                          args.repeat),
            "html": timed(lambda: write_report(project, tmp / "r.html", settings=settings, model=model),
                          args.repeat),
            "md": timed(lambda: write_report(project, tmp / "r.md", settings=settings, model=model), args.repeat),
            "docx_total": timed(lambda: write_report(project, tmp / "t.docx", settings=settings), args.repeat),
            "bare_docx": timed(lambda: bare_docx(model), args.repeat),
            "bare_jinja": timed(lambda: bare_jinja(model), args.repeat),
        }
        project.close()
    print(f"\nProject: {n_cmocs} CMOCs, {n_quotes} quotes in the report, {n_rows} table rows "
          f"(set-up {setup:.1f} s)\n")
    labels = {
        "model": "`build_report_model` (all queries and tables)",
        "docx": "write the Word report from the model (`write_report(..., model=)`)",
        "html": "write the HTML report from the model",
        "md": "write the Markdown report from the model",
        "docx_total": "whole `write_report` to docx (model + figure PNG + document)",
        "bare_docx": "bare python-docx: same headings, paragraphs, tables and rows",
        "bare_jinja": "bare Jinja2: same rows into a minimal Markdown template",
    }
    print(f"| work | wall, median of {args.repeat} | CPU, median of {args.repeat} |")
    print("| --- | --- | --- |")
    for k, label in labels.items():
        wall, cpu = results[k]
        print(f"| {label} | {wall:.2f} s | {cpu:.2f} s |")
    print(json.dumps({"cmocs": n_cmocs, "quotes": n_quotes, "rows": n_rows,
                      **{k: [round(w, 4), round(c, 4)] for k, (w, c) in results.items()}}))


if __name__ == "__main__":
    main()

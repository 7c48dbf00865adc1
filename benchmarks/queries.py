"""Benchmark: the query commands on large projects, each as its own process, against bare pandas processes.

    python -m benchmarks.queries                      # 100k and 1M codings, median of 3 runs
    python -m benchmarks.queries --codings 100000 --runs 5

A project is generated deterministically for each size (4 sites; one interview of about 5,000 words per
1,250 codings, alternating interviewer and participant turns, one segment per turn; two participants per
source in a quarter of them (focus groups); source attributes ``site`` and ``wave``, participant attribute
``health_board``; 100 codes in 20 parents; codings at sentence and turn spans by 2 coders, a fifth of them
autocodings (``rule:NAME``) of which some repeat a person's coding; 5 themes; 50 CMOCs with one evidence
link per 100 codings).  It is written with ``executemany`` in one transaction and cached in the temporary
folder under a name made of its parameters.

Each command runs on a fresh copy of the cached project (no digests yet): its first run is reported apart
(it makes the digests it reads, ``sp_realist.coding.digests``), then the median of ``--runs`` runs, then one run
after a coding is edited (its source's digest is cleared and counted again).

Each sp-realist command (``python -m sp_realist ... --format csv -o FILE``) runs as its own process, and so
does its baseline (the first row, ``info`` against a bare ``import pandas`` and one read, shows what
start-up alone costs): a process importing pandas that reads the same file with ``pandas.read_sql`` and computes
the same counts (participants by ``merge_asof`` of codings on speaker segments).  Reported: the median wall
and CPU (user + system) time of each, their ratios, and the peak RSS of the whole process (``wait4``); on a
shared machine the CPU ratio is the steadier one.  sp_realist's modules are byte-compiled first
(``compileall``), as an installed package's are.  Goals (issue 14): each query
under 1 s and 300 MB on 1M codings, and at most 2x its baseline.  Printed as Markdown for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import compile_sp_realist

WORDS = ("the referral came through and we talked about what mattered to her most at home "
         "link worker surgery group walk garden loneliness confidence money housing debt anxiety "
         "support felt listened time waiting list practice nurse doctor community volunteer "
         "friends family week month started stopped helped changed better worse").split()
SITES = ("S1", "S2", "S3", "S4")
ROLES = ("client", "link worker", "manager", "GP")

GENERATE = """
import random, sys
sys.path.insert(0, {root!r})
from benchmarks.queries import generate
generate({path!r}, {codings})
"""


def generate(path: str, n_codings: int, seed: int = 14) -> None:
    """Write the benchmark project for ``n_codings`` codings to ``path`` (see the module doc)."""
    from sp_realist.store import Project, now

    rng = random.Random(seed)
    n_sources = max(4, n_codings // 1250)
    ts = now()
    participants, pattrs, sources, sattrs, segments, codings, codes = [], [], [], [], [], [], []
    for i in range(20):
        codes.append((i + 1, f"Parent {i + 1}", None, i, ts))
    for i in range(80):
        codes.append((21 + i, f"Code {i + 1}", 1 + i // 4, 20 + i, ts))
    code_ids = [c[0] for c in codes]
    pid = 0
    for s in range(n_sources):
        site = SITES[s % 4]
        speakers = []
        for k in range(2 if s % 4 == 3 else 1):
            pid += 1
            code = f"{site} P{pid}"
            participants.append((pid, code, ROLES[pid % 4], site, ts))
            pattrs.append((pid, "health_board", f"HB{pid % 3 + 1}"))
            speakers.append((pid, code))
        sid = s + 1
        pieces, pos, ord_ = [], 0, 0
        seg_spans = []
        while pos < 30000:
            interviewer = ord_ % 2 == 0
            who = ("Interviewer", None) if interviewer else (speakers[ord_ // 2 % len(speakers)][1],
                                                             speakers[ord_ // 2 % len(speakers)][0])
            n = rng.randint(8, 20) if interviewer else rng.randint(30, 120)
            words = [rng.choice(WORDS) for _ in range(n)]
            for j in range(12, n, 15):
                words[j] += "."
            body = " ".join(words) + "."
            line = f"{who[0]}: {body}\n"
            start = pos + len(who[0]) + 2
            segments.append((sid, ord_, pos, pos + len(line) - 1, who[0], "turn", who[1]))
            seg_spans.append((start, pos + len(line) - 1, interviewer))
            pieces.append(line)
            pos += len(line)
            ord_ += 1
        text = "".join(pieces)
        main_pid = speakers[0][0] if len(speakers) == 1 else None
        kind = "interview" if len(speakers) == 1 else "focus_group"
        sources.append((sid, f"{site} interview {sid}", kind, f"{sid:064x}", text, f"2025-{1 + s % 12:02d}-01",
                        f"s{sid}.txt", "txt", main_pid, ts, sid))
        sattrs.append((sid, "site", site))
        sattrs.append((sid, "wave", str(1 + s % 2)))
        seen = set()
        per_source = n_codings // n_sources + (1 if s < n_codings % n_sources else 0)
        made = 0
        while made < per_source:
            a, b, interviewer = seg_spans[rng.randrange(len(seg_spans))]
            if interviewer and rng.random() < 0.8:
                continue
            if rng.random() < 0.3:
                span = (a, b)
            else:  # a sentence-sized piece of the turn, word aligned
                x = text.find(" ", a + rng.randrange(max(1, b - a - 40))) + 1 or a
                y = text.find(" ", min(b - 1, x + rng.randint(40, 200)))
                span = (x, y if x < y <= b else b)
            code = rng.choice(code_ids)
            rule = rng.random() < 0.2
            coder = "autocode" if rule else ("ana", "ben")[rng.random() < 0.5]
            key = (code, span, coder)
            if key in seen or span[0] >= span[1]:
                continue
            seen.add(key)
            codings.append((code, sid, span[0], span[1], coder, f"rule:r{code}" if rule else "manual", ts))
            made += 1
            if not rule and rng.random() < 0.1 and (code, span, "autocode") not in seen:  # a rule finds it too
                seen.add((code, span, "autocode"))
                codings.append((code, sid, span[0], span[1], "autocode", f"rule:r{code}", ts))
                made += 1
    themes = [(t + 1, f"Theme {t + 1}", None, "named", t, ts) for t in range(5)]
    theme_codes = [(1 + t % 5, 1 + t) for t in range(20)]
    n_ev = max(50, n_codings // 100)
    excerpts, evidence, seen_ex = [], [], set()
    for i, c in enumerate(rng.sample(codings, n_ev)):
        key = (c[1], c[2], c[3])
        if key not in seen_ex:
            seen_ex.add(key)
            excerpts.append((len(excerpts) + 1, c[1], c[2], c[3], ts))
        evidence.append((1 + i % 50, len(excerpts), "refutes" if i % 10 == 0 else "supports", "outcome", ts))
    evidence = list({(e[0], e[1], e[2]): e for e in evidence}.values())
    theories = [(t + 1, f"T{t + 1}", f"Theory {t + 1}", t, ts, ts) for t in range(5)]
    cmocs = [(c + 1, f"T{c // 10 + 1}.{c % 10 + 1}", "context", "resource", "response", "outcome", "partial", c,
              ts, ts) for c in range(50)]
    theory_cmocs = [(c // 10 + 1, c + 1, c % 10) for c in range(50)]
    with Project.create(path) as project:
        with project.begin() as conn:
            run = conn.exec_driver_sql
            run("INSERT INTO participants (id, code, role, site, created_at) VALUES (?, ?, ?, ?, ?)", participants)
            run("INSERT INTO participant_attributes (participant_id, name, value) VALUES (?, ?, ?)", pattrs)
            run("INSERT INTO sources (id, name, kind, checksum, text, date, file_name, file_format, participant_id,"
                " created_at, ingest_order) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sources)
            run("INSERT INTO source_attributes (source_id, name, value) VALUES (?, ?, ?)", sattrs)
            run('INSERT INTO segments (source_id, ord, start, "end", speaker, kind, participant_id)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)", segments)
            run("INSERT INTO codes (id, name, parent_id, ord, created_at) VALUES (?, ?, ?, ?, ?)", codes)
            run('INSERT INTO codings (code_id, source_id, start, "end", coder, origin, created_at)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)", codings)
            run("INSERT INTO themes (id, name, parent_id, phase, ord, created_at) VALUES (?, ?, ?, ?, ?, ?)", themes)
            run("INSERT INTO theme_codes (theme_id, code_id) VALUES (?, ?)", theme_codes)
            run("INSERT INTO theories (id, key, title, ord, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                theories)
            run("INSERT INTO cmocs (id, key, context, mechanism_resource, mechanism_response, outcome, status, ord,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cmocs)
            run("INSERT INTO theory_cmocs (theory_id, cmoc_id, ord) VALUES (?, ?, ?)", theory_cmocs)
            run('INSERT INTO excerpts (id, source_id, start, "end", created_at) VALUES (?, ?, ?, ?, ?)', excerpts)
            run("INSERT INTO cmoc_evidence (cmoc_id, excerpt_id, role, component, created_at)"
                " VALUES (?, ?, ?, ?, ?)", evidence)


def project_path(n_codings: int, folder: Path) -> Path:
    """The cached project for ``n_codings`` (generated in a child process on first use)."""
    path = folder / f"queries-{n_codings}-seed14-v2.sprealist"  # v2: made at schema 11
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)
        root = str(Path(__file__).resolve().parent.parent)
        subprocess.run([sys.executable, "-c", GENERATE.format(root=root, path=str(tmp), codings=n_codings)],
                       check=True)
        tmp.rename(path)
    return path


# The bare baselines: pandas reading the same file and computing the same counts.
BARE = """
import sqlite3, sys
import numpy as np, pandas as pd
con = sqlite3.connect({path!r})
q = lambda sql: pd.read_sql(sql, con)
def attributed(codings):
    segs = q('SELECT source_id, start AS seg_start, "end" AS seg_end, speaker, participant_id AS seg_pid '
             'FROM segments ORDER BY start')
    src = q("SELECT id AS source_id, participant_id AS src_pid FROM sources")
    c = pd.merge_asof(codings.sort_values("start"), segs, left_on="start", right_on="seg_start", by="source_id")
    inside = c["start"] < c["seg_end"]
    c = c.merge(src, on="source_id", how="left")
    pid = c["seg_pid"].where(inside)
    unmapped = inside & c["seg_pid"].isna() & c["speaker"].fillna("").ne("")
    c["participant_id"] = pid.where(pid.notna() | unmapped, c["src_pid"])
    return c
mode = {mode!r}
if mode == "info":
    out = q("SELECT count(*) AS sources FROM sources")
elif mode == "frequencies":
    c = attributed(q('SELECT code_id, source_id, start FROM codings'))
    out = c.groupby("code_id").agg(codings=("start", "size"), sources=("source_id", "nunique"),
                                   participants=("participant_id", "nunique"))
elif mode == "frequencies_site":
    c = q("SELECT code_id, value AS site FROM codings JOIN source_attributes a ON a.source_id = codings.source_id "
          "AND a.name = 'site'")
    out = c.groupby(["code_id", "site"]).size().unstack(fill_value=0)
elif mode == "frequencies_participants":
    c = attributed(q('SELECT code_id, source_id, start FROM codings'))
    site = q("SELECT source_id, value AS site FROM source_attributes WHERE name = 'site'")
    c = c.merge(site, on="source_id", how="left")
    out = c.groupby(["code_id", "site"])["participant_id"].nunique().unstack(fill_value=0)
elif mode == "overlap":
    c = q('SELECT code_id, source_id, start, "end" FROM codings ORDER BY source_id, start, "end"')
    n = int(c["code_id"].max()) + 1
    big = int(c["end"].max()) + 1
    ks = (c["source_id"] * big + c["start"]).to_numpy()
    ke = (c["source_id"] * big + c["end"]).to_numpy()
    cs = c["code_id"].to_numpy()
    hi = np.searchsorted(ks, ke, side="left")
    counts = np.maximum(hi - np.arange(len(ks)) - 1, 0)
    ii = np.repeat(np.arange(len(ks)), counts)
    jj = ii + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    out = np.bincount(cs[ii] * n + cs[jj], minlength=n * n).reshape(n, n)
elif mode == "segment":
    c = q('SELECT code_id, source_id, start FROM codings ORDER BY start')
    segs = q('SELECT id AS seg, source_id, start AS seg_start FROM segments ORDER BY start')
    c = pd.merge_asof(c, segs, left_on="start", right_on="seg_start", by="source_id")[["seg", "code_id"]]
    x = pd.crosstab(c["seg"], c["code_id"]).clip(upper=1)
    out = x.T @ x
elif mode == "framework":
    c = attributed(q('SELECT code_id, source_id, start FROM codings'))
    out = c.groupby(["participant_id", "code_id"]).size().unstack(fill_value=0)
elif mode == "retrieve":
    c = q('SELECT c.source_id, c.start, c."end", s.name FROM codings c JOIN sources s ON s.id = c.source_id '
          "JOIN source_attributes a ON a.source_id = c.source_id AND a.name = 'site' WHERE c.code_id = 21 "
          "AND a.value = 'S1'")
    texts = dict(con.execute("SELECT id, text FROM sources").fetchall())
    c["text"] = [texts[s][a:b] for s, a, b in zip(c["source_id"], c["start"], c["end"])]
    out = c
elif mode == "theme":
    # The theme table from the same file: each theme's codes with their descendants; its codings, participants
    # (outside interviewer turns), sites and sources; 3 quotes by the same greedy rule (a span not quoted for
    # an earlier theme, then a new site, a new participant, a person's coding, 40-400 characters once
    # stripped, first in source order; spans overlapping a chosen one skipped; a span once however many
    # codings it has, shown by its first by code name, coder and id).
    codes = q("SELECT id, parent_id, name FROM codes")
    kids = codes.dropna(subset=["parent_id"]).groupby("parent_id")["id"].apply(list).to_dict()
    def below(cid):
        out, stack = [], [cid]
        while stack:
            x = stack.pop()
            out.append(x)
            stack.extend(kids.get(x, []))
        return out
    links = q("SELECT theme_id, code_id FROM theme_codes")
    themes = q("SELECT id FROM themes ORDER BY ord, id")["id"].tolist()
    theme_codes = {{t: {{x for cid in links.loc[links["theme_id"] == t, "code_id"] for x in below(cid)}}
                   for t in themes}}
    c = attributed(q('SELECT id AS coding_id, code_id, source_id, start, "end", coder, '
                     "substr(origin, 1, 5) = 'rule:' AS rule FROM codings"))
    c["interviewer"] = c["start"].lt(c["seg_end"]) & c["seg_pid"].isna() & c["speaker"].eq("Interviewer")
    site = q("SELECT source_id, value AS site FROM source_attributes WHERE name = 'site'")
    order = q("SELECT id AS source_id, ingest_order FROM sources")
    c = c.merge(site, on="source_id", how="left").merge(order, on="source_id", how="left")
    c["code_rank"] = c["code_id"].map(codes.set_index("id")["name"].rank(method="dense"))
    c["coder_rank"] = pd.factorize(c["coder"], sort=True)[0]
    c = c.sort_values(["ingest_order", "start", "end", "code_rank", "coder_rank", "coding_id"])
    texts = dict(con.execute("SELECT id, text FROM sources").fetchall())
    used, rows = set(), []
    for t in themes:
        sub = c[c["code_id"].isin(theme_codes[t])]
        speech = sub[~sub["interviewer"]]
        cands = speech.drop_duplicates(["source_id", "start", "end"])
        sid, a, b = (cands[k].to_numpy() for k in ("source_id", "start", "end"))
        length = np.array([len(texts[s][x:y].strip()) for s, x, y in zip(sid, a, b)], dtype=np.int64)
        where, who = pd.factorize(cands["site"])[0], pd.factorize(cands["participant_id"])[0]
        fixed = (16 * pd.MultiIndex.from_arrays([sid, a, b]).isin(list(used)) + 2 * cands["rule"].to_numpy()
                 + ~((length >= 40) & (length <= 400)))
        alive, sites, people, chosen = np.ones(len(sid), dtype=bool), [], [], []
        while len(chosen) < 3 and alive.any():
            score = fixed + 8 * np.isin(where, sites) + 4 * np.isin(who, people)
            idx = np.flatnonzero(alive)
            best = idx[np.argmin(score[idx])]
            chosen.append(best)
            alive &= ~((sid == sid[best]) & (a < b[best]) & (a[best] < b))
            sites.append(where[best])
            people.append(who[best])
        used.update((sid[i], a[i], b[i]) for i in chosen)
        rows.append({{"theme": t, "codings": len(sub), "participants": speech["participant_id"].nunique(),
                     "sites": sub["site"].nunique(), "sources": sub["source_id"].nunique(),
                     "quotes": "\\n".join(texts[sid[i]][a[i]:b[i]].strip() for i in chosen)}})
    out = pd.DataFrame(rows)
elif mode == "saturation":
    e = attributed(q("SELECT e.cmoc_id, e.role, x.source_id, x.start FROM cmoc_evidence e "
                     "JOIN excerpts x ON x.id = e.excerpt_id"))
    out = e.groupby("cmoc_id").agg(supporting=("role", lambda r: (r == "supports").sum()),
                                   participants=("participant_id", "nunique"), sources=("source_id", "nunique"))
out = pd.DataFrame(out)
out.to_csv({out!r})
"""

COMMANDS = [
    ("info (start-up and one read, for scale)", ["info"], "info"),
    ("frequencies", ["frequencies"], "frequencies"),
    ("frequencies --by site", ["frequencies", "--by", "site"], "frequencies_site"),
    ("frequencies --by site --measure participants", ["frequencies", "--by", "site", "--measure", "participants"],
     "frequencies_participants"),
    ("cooccurrence (overlap)", ["cooccurrence"], "overlap"),
    ("cooccurrence --mode segment", ["cooccurrence", "--mode", "segment"], "segment"),
    ("framework --rows participants", ["framework", "--rows", "participants"], "framework"),
    ('retrieve "Code 1" --where site=S1', ["retrieve", "Code 1", "--where", "site=S1"], "retrieve"),
    ("theme table", ["theme", "table"], "theme"),
    ("saturation", ["saturation"], "saturation"),
]


def run(argv: list[str], cwd: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {os.waitstatus_to_exitcode(status)}): "
                         f"{proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def measure(argv: list[str], cwd: str, runs: int) -> tuple[float, float, int]:
    run(argv, cwd)  # warm the file cache
    samples = [run(argv, cwd) for _ in range(runs)]
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples),
            max(s[2] for s in samples))


def fresh_copy(pristine: Path, tmp: str) -> Path:
    """A copy of the cached project for one command: its digests (sp_realist.coding.digests) are made by that
    command's first run, so each command's first run is measured on a project that has none."""
    work = Path(tmp) / "work.sprealist"
    for suffix in ("", "-wal", "-shm"):
        Path(str(work) + suffix).unlink(missing_ok=True)
        if Path(str(pristine) + suffix).exists():
            shutil.copyfile(str(pristine) + suffix, str(work) + suffix)
    return work


def change_one_coding(path: Path, k: int) -> None:
    """What a coder does between two queries: edit one coding (its memo), which clears its source's digest."""
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE codings SET memo = ? WHERE id = (SELECT min(id) FROM codings)", (f"edited {k}",))
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codings", type=int, action="append", help="sizes (default 100000 and 1000000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=None, help="run only commands whose label contains this")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "sp-realist-bench"))
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parent.parent)
    compile_sp_realist()  # as an installed package is (see benchmarks.measure.compile_sp_realist)
    print("| codings | command | sp_realist wall / CPU | bare pandas wall / CPU | ratio wall / CPU "
          "| peak RSS (sp_realist / bare) | first run, making digests (wall / CPU / RSS) "
          "| after one coding is edited (wall / CPU) |")
    print("| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.codings or [100_000, 1_000_000]:
            pristine = project_path(n, cache)
            for k, (label, argv, mode) in enumerate(COMMANDS):
                if args.only and args.only not in label:
                    continue
                path = fresh_copy(pristine, tmp)
                out = os.path.join(tmp, "out.csv")
                fmt = [] if argv == ["info"] else ["--format", "csv", "-o", out]
                command = [sys.executable, "-m", "sp_realist", *argv, "--project", str(path), *fmt]
                first = run(command, root)
                ours = measure(command, root, args.runs)
                change_one_coding(path, k)
                changed = run(command, root)
                bare_script = BARE.format(path=str(path), mode=mode, out=os.path.join(tmp, "bare.csv"))
                bare = measure([sys.executable, "-c", bare_script], root, args.runs)
                print(f"| {n:,} | `{label}` | {ours[0]:.2f} s / {ours[1]:.2f} s | {bare[0]:.2f} s / {bare[1]:.2f} s "
                      f"| {ours[0] / bare[0]:.1f}x / {ours[1] / bare[1]:.1f}x "
                      f"| {ours[2] // 1024} MB / {bare[2] // 1024} MB "
                      f"| {first[0]:.2f} s / {first[1]:.2f} s / {first[2] // 1024} MB "
                      f"| {changed[0]:.2f} s / {changed[1]:.2f} s |", flush=True)


if __name__ == "__main__":
    main()

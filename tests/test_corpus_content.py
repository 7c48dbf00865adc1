"""Content checks for the shipped Mind Cymru reproduction corpus.

These tests use only the corpus files, PyYAML and python-docx (no sp_realist
code), so they hold the corpus to its own promises whatever the ingest and
analysis code does:

* diary entries are split at their "Date of diary insert" lines and named
  "<participant> <YYYY-MM-DD>" (or "<site> unidentified <YYYY-MM-DD>"), the
  naming rule every importer uses;
* every quote in analysis.yaml and codings.yaml occurs exactly once in the
  entry (or interview) it names;
* four theories and the 13 CMOCs of Tables 6.1-6.4, each backed by at least
  two supporting excerpts from the diary keepers the report cites;
* no run of 12 or more consecutive words is copied from the reference report.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpora" / "mind-cymru-2020"
REFERENCE_NAME = "mind-cymru-social-prescribing-evaluation-2020.txt"


def main_checkout(repo: Path) -> Path:
    """The main checkout of ``repo``: ``repo`` itself, or for a git worktree (whose ``.git`` is a file
    "gitdir: <main>/.git/worktrees/<name>") the folder holding the common ``.git`` directory."""
    dot_git = repo / ".git"
    if not dot_git.is_file():
        return repo
    text = dot_git.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return repo
    gitdir = (repo / text[len("gitdir:"):].strip()).resolve()
    common = gitdir
    if (gitdir / "commondir").is_file():
        common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    return common.parent if common.name == ".git" else repo


def reference_report(repo: Path = REPO) -> Path:
    """``../shared/reference/`` next to the checkout, else next to its main checkout (a git worktree
    elsewhere); the first place that has the report (the first place when none has it)."""
    places = [repo.parent / "shared" / "reference" / REFERENCE_NAME,
              main_checkout(repo).parent / "shared" / "reference" / REFERENCE_NAME]
    # beside a folder of git worktrees of it
    places += [d / "shared" / "reference" / REFERENCE_NAME for d in repo.parents]
    return next((p for p in places if p.exists()), places[0])


REFERENCE = reference_report()

DATE_LINE = re.compile(r"^.*Date of diary insert:\s*(\d{2})/(\d{2})/(\d{4})[^\n]*$", re.M)
PARTICIPANT = re.compile(r"Participant code:\s*(S\d DK\d)")
PERIOD = (dt.date(2019, 5, 1), dt.date(2020, 3, 31))

# Diary keepers the report cites for each mid-range theory (chapter 6, e.g. "(S1 DK1; S1 DK2; S3 DK2)" and
# "(S3, unidentified DK)"); test_cited_keepers_are_the_chapters_citations reads them from the chapter.
CITED = {
    "T1": {"S1 DK1", "S1 DK2", "S3 DK1", "S3 DK2", "S3 unidentified"},
    "T2": {"S1 DK1", "S1 DK2", "S2 DK1", "S3 DK1", "S3 DK2", "S3 DK3"},
    "T3": {"S1 DK1", "S2 DK1", "S3 DK2", "S3 unidentified"},
    "T4": {"S1 DK1", "S1 DK2", "S2 DK1", "S3 DK1", "S3 DK2", "S3 unidentified"},
}
CMOC_KEYS = ["T1.1", "T1.2", "T1.3", "T2.1", "T2.2", "T2.3", "T2.4",
             "T3.1", "T3.2", "T3.3", "T4.1", "T4.2", "T4.3"]


def load(name: str):
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


def file_text(path: Path) -> str:
    if path.suffix == ".docx":
        import docx

        return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
    return path.read_text(encoding="utf-8")


def split_entries(text: str, participant: str | None, site: str | None) -> dict[str, str]:
    """Entry name -> entry text, one entry from each date line to the next."""
    marks = list(DATE_LINE.finditer(text))
    out = {}
    for i, m in enumerate(marks):
        body = text[m.start(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        day, month, year = (int(g) for g in m.groups())
        date = dt.date(year, month, day)
        found = PARTICIPANT.search(body)
        who = found.group(1) if found else (participant or f"{site} unidentified")
        name = f"{who} {date.isoformat()}"
        assert name not in out, f"two entries named {name!r}"
        out[name] = body
    return out


@pytest.fixture(scope="module")
def study():
    return load("study.yaml")


@pytest.fixture(scope="module")
def diary_files(study):
    return [s for s in study["sources"] if s.get("kind") == "diary"]


@pytest.fixture(scope="module")
def entries(diary_files):
    out: dict[str, str] = {}
    for src in diary_files:
        found = split_entries(file_text(CORPUS / src["path"]), src.get("participant"), src.get("site"))
        assert not set(found) & set(out)
        out.update(found)
    return out


@pytest.fixture(scope="module")
def interviews(study):
    manifest = next(s["manifest"] for s in study["sources"] if "manifest" in s)
    path = CORPUS / manifest
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {row["path"]: (row, (path.parent / row["path"]).read_text(encoding="utf-8")) for row in rows}


def keeper(source_name: str) -> str:
    return source_name.rsplit(" ", 1)[0]


# --- diaries -----------------------------------------------------------------

def test_diary_entries_cover_keepers_sites_and_period(entries, diary_files):
    assert 36 <= len(entries) <= 50
    per_keeper = Counter(keeper(n) for n in entries)
    assert set(per_keeper) == {"S1 DK1", "S1 DK2", "S2 DK1", "S3 DK1", "S3 DK2", "S3 DK3", "S3 unidentified"}
    assert all(3 <= n <= 9 for n in per_keeper.values()), per_keeper
    dates = [dt.date.fromisoformat(n.rsplit(" ", 1)[1]) for n in entries]
    assert PERIOD[0] <= min(dates) and max(dates) <= PERIOD[1]
    assert {Path(s["path"]).suffix for s in diary_files} == {".md", ".txt", ".docx"}
    # a declared keeper's file only holds that keeper's entries
    for src in diary_files:
        names = split_entries(file_text(CORPUS / src["path"]), src.get("participant"), src.get("site"))
        expected = src.get("participant") or f"{src['site']} unidentified"
        assert {keeper(n) for n in names} == {expected}, src["path"]


def test_every_entry_follows_the_driscoll_template(entries):
    for name, body in entries.items():
        lowered = body.lower()
        heads = [re.search(r"^\W*what\b", lowered, re.M), re.search(r"^\W*so what\b", lowered, re.M),
                 re.search(r"^\W*now what\b", lowered, re.M)]
        assert all(heads), f"{name}: missing a What? / So what? / Now what? heading"
        assert heads[0].start() < heads[1].start() < heads[2].start(), name
        words = len(body.split())
        assert 120 <= words <= 300, f"{name}: {words} words"


def test_docx_files_regenerate_byte_for_byte():
    spec = importlib.util.spec_from_file_location("make_docx", CORPUS / "make_docx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for keeper_spec in (module.S2_DK1, module.S3_DK3):
        built = module.build(keeper_spec)
        assert built == (CORPUS / keeper_spec["file"]).read_bytes(), keeper_spec["file"]
        assert module.build(keeper_spec) == built  # deterministic


# --- quotes ------------------------------------------------------------------

def _check_quote(text: str, quote: str, where: str):
    n = text.count(quote)
    assert n == 1, f"{where}: quote {quote[:60]!r} occurs {n} times"


def test_analysis_quotes_occur_once_in_their_entry(entries):
    excerpts = load("analysis.yaml")["excerpts"]
    assert len(excerpts) >= 60
    for i, ex in enumerate(excerpts):
        assert ex["source"] in entries, f"excerpt {i}: no diary entry named {ex['source']!r}"
        _check_quote(entries[ex["source"]], ex["quote"], f"analysis.yaml excerpt {i} ({ex['source']})")


def test_codings_quotes_occur_once_in_their_source(entries, interviews):
    codings = load("codings.yaml")["codings"]
    by_interview = {}
    for row, text in interviews.values():
        by_interview[Path(row["path"]).stem] = text
    codes = set()

    def walk(nodes):
        for node in nodes or []:
            codes.add(node["name"])
            walk(node.get("children"))

    walk(load("codebook.yaml")["codes"])
    coders = Counter()
    for i, c in enumerate(codings):
        assert c["code"] in codes, f"codings.yaml {i}: unknown code {c['code']!r}"
        text = entries.get(c["source"]) or by_interview.get(c["source"])
        assert text is not None, f"codings.yaml {i}: unknown source {c['source']!r}"
        _check_quote(text, c["quote"], f"codings.yaml {i} ({c['source']})")
        coders[c["coder"]] += 1
    # two coders, overlapping on some of the same units so agreement has data
    assert len(coders) >= 2
    units = defaultdict(set)
    for c in codings:
        units[(c["source"], c["quote"])].add(c["coder"])
    assert sum(1 for v in units.values() if len(v) >= 2) >= 8


# --- theories and evidence -----------------------------------------------------

def test_four_theories_and_thirteen_cmocs():
    data = load("theories.yaml")
    theories = data["theories"]
    assert [t["key"] for t in theories] == ["T1", "T2", "T3", "T4"]
    keys = [c["key"] for t in theories for c in t["cmocs"]]
    assert keys == CMOC_KEYS
    for t in theories:
        assert t["title"] and t["questions"] and t["history"]
        for h in t["history"]:
            assert PERIOD[0] <= dt.date.fromisoformat(h["at"]) <= PERIOD[1]
        for c in t["cmocs"]:
            assert c["context"] and c["mechanism_response"] and c["outcome"], c["key"]
    for rel in data["relations"]:
        assert rel["from"] in keys and rel["to"] in keys and rel["kind"] in {"refines", "contradicts", "chains"}


def chapter_citations(text: str) -> dict[str, set[str]]:
    """The diary keepers chapter 6 cites in each theory's section: "(S1 DK1; S3 DK2)", "(S3, unidentified DK)"."""
    chapter = text[text.index("6. REFLECTIVE DIARIES"):text.index("7. CONCLUSION")]
    chapter = chapter[:chapter.index("SUMMARY")]
    parts = re.split(r"^#+\s*\**THEORY (\d)\b", chapter, flags=re.M)
    out: dict[str, set[str]] = {}
    for number, body in zip(parts[1::2], parts[2::2]):
        cited = out.setdefault(f"T{number}", set())
        for found in re.finditer(r"\((S\d[^()]*)\)", body):
            inner = " ".join(found.group(1).split()).replace("S3, unidentified", "S3 unidentified")
            for piece in re.split(r"[;,]", inner):
                m = re.fullmatch(r"(S\d) (DK\d|unidentified)(?: DK)?", piece.strip())
                assert m, f"unexpected citation {piece!r} in theory {number}"
                cited.add(f"{m.group(1)} {m.group(2)}")
    return out


def test_cited_keepers_are_the_chapters_citations():
    if not REFERENCE.exists():
        pytest.skip(f"reference report not available at {REFERENCE}; cannot read its citations")
    assert chapter_citations(REFERENCE.read_text(encoding="utf-8")) == CITED


def test_every_cmoc_is_backed_by_cited_keepers():
    supports: dict[str, list[str]] = defaultdict(list)
    backing: dict[str, set[str]] = defaultdict(set)
    for ex in load("analysis.yaml")["excerpts"]:
        for ev in ex.get("evidence", []):
            theory = ev["cmoc"].split(".")[0]
            assert keeper(ex["source"]) in CITED[theory], (
                f"{ev['cmoc']}: evidence from {keeper(ex['source'])}, whom the report does not cite for {theory}")
            backing[theory].add(keeper(ex["source"]))
            if ev["role"] == "supports":
                supports[ev["cmoc"]].append(keeper(ex["source"]))
    # every keeper the chapter cites for a theory backs it, and no other
    assert dict(backing) == CITED
    for key in CMOC_KEYS:
        assert len(supports[key]) >= 2, f"{key}: {len(supports[key])} supporting excerpts"
        assert len(set(supports[key])) >= 2, f"{key}: evidence from one keeper only"


def test_appraisals_use_the_six_step_vocabulary():
    allowed = {
        "relevance": {"relevant", "not_relevant", "concept_box"},
        "trust": {"high", "moderate", "low"},
        "interpretation": {"context", "mechanism_resource", "mechanism_response", "outcome", "unclear"},
        "cmoc_judgement": {"new", "supports", "refines", "refutes"},
    }
    excerpts = load("analysis.yaml")["excerpts"]
    relevance = Counter()
    for ex in excerpts:
        a = ex["appraisal"]
        for field, values in allowed.items():
            if field in a:
                assert a[field] in values, (ex["source"], field, a[field])
        relevance[a["relevance"]] += 1
        if a.get("cmoc"):
            assert a["cmoc"] in CMOC_KEYS
    assert relevance["concept_box"] >= 3 and relevance["not_relevant"] >= 1
    assert sum(1 for ex in excerpts for ev in ex.get("evidence", []) if ev["role"] == "refutes") >= 2


# --- interviews ------------------------------------------------------------------

def test_interview_manifest_and_transcripts(interviews):
    assert 6 <= len(interviews) <= 8
    roles = Counter()
    waves = Counter()
    for path, (row, text) in interviews.items():
        for col in ("path", "kind", "participant", "site", "role", "date", "wave"):
            assert row.get(col), f"manifest row {path}: empty {col}"
        roles[row["role"]] += 1
        waves[row["wave"]] += 1
        words = len(text.split())
        assert 800 <= words <= 1500, f"{path}: {words} words"
        speakers = Counter(m.group(1) for m in re.finditer(r"^([A-Za-z0-9 ]+):", text, re.M))
        assert speakers["Interviewer"] >= 5 and speakers[row["participant"]] >= 5, (path, speakers)
    assert roles["link worker"] >= 2 and roles["receiving organisation"] >= 2
    assert {"GP referrer", "local Mind manager"} <= set(roles)
    assert len(waves) == 2


# --- paraphrase, not copy ------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "'").replace("'", ""))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_twelve_word_run_copied_from_the_report():
    if not REFERENCE.exists():
        pytest.skip(f"reference report not available at {REFERENCE}; cannot check for copied text")
    reference = _ngrams(_words(REFERENCE.read_text(encoding="utf-8")), 12)
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in {".md", ".txt", ".yaml", ".docx", ".py"}]
    assert len(files) >= 12
    for path in files:
        text = file_text(path)
        if path.name == "README.md":
            # the citation of the report (a Markdown block quote) names its title
            text = "\n".join(line for line in text.splitlines() if not line.startswith(">"))
        copied = _ngrams(_words(text), 12) & reference
        assert not copied, f"{path.relative_to(CORPUS)} copies the report: {' '.join(sorted(copied)[0])}"


def test_the_reference_is_found_from_a_git_worktree(tmp_path):
    """A worktree's .git file leads to the main checkout, whose ../shared/ holds the reference."""
    main = tmp_path / "checkouts" / "main"
    (main / ".git" / "worktrees" / "wt1").mkdir(parents=True)
    (main / ".git" / "worktrees" / "wt1" / "commondir").write_text("../..\n", encoding="utf-8")
    ref = tmp_path / "checkouts" / "shared" / "reference" / REFERENCE_NAME
    ref.parent.mkdir(parents=True)
    ref.write_text("the report\n", encoding="utf-8")
    worktree = tmp_path / "elsewhere" / "wt1"
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'wt1'}\n", encoding="utf-8")
    assert main_checkout(worktree) == main.resolve()
    assert reference_report(worktree).resolve() == ref.resolve()
    assert reference_report(main) == ref  # the main checkout itself
    missing = tmp_path / "lonely"
    missing.mkdir()
    assert not reference_report(missing).exists()  # genuinely absent: the copied-text test skips

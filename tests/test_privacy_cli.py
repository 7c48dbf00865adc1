"""anonymise / reverse through the CLI and the library: listing, dry run, refusals, the project file."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select

from conftest import stored_bytes
from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.privacy import anonymise, check_key_matches, project_key_required, reverse
from sp_realist.privacy.keyfile import load_key
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project

KEY = """\
entries:
  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}
  - {original: Dr Patel, replacement: "[GP 1]", variants: [Patel]}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
"""

TURN1 = "Interviewer: How did Dr Patel's referral go?\n\n"
TURN2 = "Sarah Jones: Slowly. Riverside Surgery lost the form, and Patella tests came first.\n"
TEXT = TURN1 + TURN2


@pytest.fixture
def key_path(tmp_path):
    p = tmp_path / "outside" / "key.yaml"
    p.parent.mkdir()
    p.write_text(KEY, encoding="utf-8")
    return p


@pytest.fixture
def filled(project_path):
    """A project with one interview, a coding inside a name, a coding across turns and an excerpt."""
    with Project.open(project_path) as p, p.begin() as conn:
        sid = add_source(conn, SourceDraft(
            name="Sarah Jones interview", kind="interview", text=TEXT, checksum="x",
            segments=[Segment(0, len(TURN1), kind="turn", speaker="Interviewer"),
                      Segment(len(TURN1), len(TEXT), kind="turn", speaker="Sarah Jones")],
            attributes={"surgery": "Riverside Surgery", "site": "S1"}))
        cid = conn.execute(insert(S.codes).values(name="Referral", ord=0, created_at="t")).inserted_primary_key[0]
        s = TEXT.index("Patel's")
        for start, end in [(s + 1, s + 3), (TEXT.index("referral"), TEXT.index(" tests"))]:
            conn.execute(insert(S.codings).values(code_id=cid, source_id=sid, start=start, end=end, coder="RA",
                                                  origin="manual", created_at="t"))
        start = TEXT.index("Riverside")
        conn.execute(insert(S.excerpts).values(source_id=sid, start=start, end=TEXT.index(", and"),
                                               created_at="t"))
        conn.execute(insert(S.memos).values(target_type="source", target_id=sid, text="Sarah was nervous.",
                                            author="RA", created_at="t", updated_at="t"))
    return project_path


def snapshot(path):
    with Project.open(path) as p, p.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all())
                for t in (S.sources, S.segments, S.codings, S.excerpts, S.source_attributes, S.memos)}


def test_dry_run_lists_every_replacement_and_changes_nothing(runner, cli, filled, key_path, tmp_path):
    before = snapshot(filled)
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "--dry-run", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    text_rows = [x for x in rows if x["field"] == "text"]
    # Dr Patel (with its possessive), Sarah Jones, Riverside Surgery -- but not Patella
    got = sorted((x["start"], x["end"], x["replacement"]) for x in text_rows)
    want = sorted([(TEXT.index("Dr Patel"), TEXT.index("Dr Patel") + 8, "[GP 1]"),
                   (TEXT.index("Sarah Jones"), TEXT.index("Sarah Jones") + 11, "S1 DK1"),
                   (TEXT.index("Riverside Surgery"), TEXT.index("Riverside Surgery") + 17, "[GP surgery]")])
    assert got == want
    assert {x["original"] for x in rows} == {"[hidden]"}
    assert {x["field"] for x in rows} >= {"name", "segment 1 speaker", "attribute surgery"}
    assert any(x["field"].startswith("memo") for x in rows)
    assert "Sarah" not in r.stdout and "Patel" not in r.stdout and "would be replaced" in r.stderr
    assert snapshot(filled) == before
    # csv too, and originals only on screen
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "--dry-run", "-f", "csv"])
    assert r.stdout.splitlines()[0] == "source,field,start,end,new_start,new_end,original,replacement,entry"
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "--dry-run",
                            "--show-originals", "-f", "json"])
    assert "Dr Patel" in r.stdout
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "--show-originals",
                            "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and not (tmp_path / "x.json").exists()
    assert snapshot(filled) == before


def test_apply_moves_spans_and_leaves_no_original_in_the_project_file(runner, cli, filled, key_path):
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "-f", "json"])
    assert r.exit_code == 0, r.output
    after = snapshot(filled)
    (src,) = after["sources"]
    text = src[4]
    assert text == ("Interviewer: How did [GP 1]'s referral go?\n\n"
                    "S1 DK1: Slowly. [GP surgery] lost the form, and Patella tests came first.\n")
    assert src[1] == "S1 DK1 interview"
    spans = {(c[3], c[4]) for c in after["codings"]}
    # the coding inside "Patel" now selects the whole replacement; the long one the same words
    assert (text.index("[GP 1]"), text.index("[GP 1]") + 6) in spans
    assert (text.index("referral"), text.index(" tests")) in spans
    (exc,) = after["excerpts"]
    assert text[exc[2]:exc[3]] == "[GP surgery] lost the form"
    segs = sorted(after["segments"], key=lambda s: s[2])
    assert "".join(text[s[3]:s[4]] for s in segs) == text and segs[1][5] == "S1 DK1"
    assert ("surgery" in dict((a[1], a[2]) for a in after["source_attributes"])
            and dict((a[1], a[2]) for a in after["source_attributes"])["surgery"] == "[GP surgery]")
    assert after["memos"][0][4] == "S1 DK1 was nervous."
    # nothing readable is left in the file: not in tables, free pages or the WAL (on PostgreSQL: in the
    # database's files)
    raw = stored_bytes(filled)
    for name in (b"Sarah", b"Patel'", b"Dr Patel", b"Riverside"):
        assert name not in raw
    r = runner.invoke(cli, ["audit", str(filled), "--key", str(key_path)])
    assert r.exit_code == 0, r.output
    with Project.open(filled) as p:
        key = load_key(key_path)
        assert project_key_required(p) == key.sha256
        assert check_key_matches(p, key_path).sha256 == key.sha256
    # applying the same key again changes nothing and adds no layer
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(filled), "-f", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == [] and snapshot(filled) == after


def test_reverse_restores_everything_exactly(runner, cli, filled, key_path):
    clean = "Interviewer: Anything else?\nP2: No names here.\n"
    with Project.open(filled) as p, p.begin() as conn:  # a source without names: anonymised, not changed
        add_source(conn, SourceDraft(name="clean", kind="interview", text=clean, checksum="c",
                                     segments=[Segment(0, len(clean))]))
    before = snapshot(filled)
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled)])
    assert r.exit_code == 0
    applied = " ".join(r.stderr.split()).split(" were replaced in ")[1].split(" source(s)")[0]
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "--reverse", "-f", "json"])
    assert r.exit_code == 0, r.output
    # the same number of sources changed back as were changed (not every source with a layer)
    assert applied == "1" and " were restored in 1 source(s)" in " ".join(r.stderr.split())
    assert "Sarah" not in r.stdout  # originals hidden in the listing too
    assert snapshot(filled) == before
    with Project.open(filled) as p:
        assert project_key_required(p) is None
        with p.connect() as conn:
            runs = conn.execute(select(S.anonymisation_runs.c.direction).order_by(S.anonymisation_runs.c.id)).all()
            assert [r[0] for r in runs] == ["apply", "reverse"]
            log = conn.execute(select(S.audit_log.c.action, S.audit_log.c.detail)).all()
            assert [a for a, _ in log] == ["anonymise", "anonymise.reverse"]
            assert all("Sarah" not in (d or "") for _, d in log)
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "--reverse"])
    assert r.exit_code == 1 and "nothing" in r.stderr.lower()


def test_reverse_refuses_the_wrong_key_and_changed_text(runner, cli, filled, key_path, tmp_path):
    assert runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled)]).exit_code == 0
    other = tmp_path / "other.yaml"
    other.write_text(KEY.replace("[GP 1]", "[GP 2]"), encoding="utf-8")
    after = snapshot(filled)
    r = runner.invoke(cli, ["anonymise", "-k", str(other), "-p", str(filled), "--reverse"])
    assert r.exit_code == 1 and "No sources anonymised with this key" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["anonymise", "-k", str(other), "-p", str(filled), "--reverse", "-s", "S1 DK1 interview"])
    assert r.exit_code == 1 and "not this key" in r.stderr
    with Project.open(filled) as p:
        with pytest.raises(SpRealistError, match="not the key applied"):
            check_key_matches(p, other)
    assert snapshot(filled) == after
    # a text edited behind the anonymiser's back cannot be restored exactly: refused
    from sqlalchemy import update

    with Project.open(filled) as p, p.begin() as conn:
        conn.execute(update(S.sources).values(text=S.sources.c.text + "x"))
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "--reverse"])
    assert r.exit_code == 1 and "text changed after anonymisation" in r.stderr


def test_key_with_secret_reverses_after_growing(filled, tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text("secret: 00112233445566778899aabb\n" + KEY, encoding="utf-8")
    before = snapshot(filled)
    with Project.open(filled) as p:
        anonymise(p, load_key(path))
    path.write_text(path.read_text() + "  - {original: Slowly, replacement: \"[adverb]\"}\n", encoding="utf-8")
    grown = load_key(path)
    with Project.open(filled) as p:
        second = anonymise(p, grown)
        assert second.count == 1
        reverse(p, grown)  # undoes the second layer
        reverse(p, grown)  # and the first: the secret opens both records
    assert snapshot(filled) == before


def test_bad_key_changes_nothing(runner, cli, filled, tmp_path):
    before = snapshot(filled)
    bad = tmp_path / "bad.csv"
    bad.write_text("original,replacement\nSarah Jones,S1 DK1\nsarah jones,S1 DK2\n", encoding="utf-8")
    r = runner.invoke(cli, ["anonymise", "-k", str(bad), "-p", str(filled)])
    assert r.exit_code == 1 and "different replacements" in r.stderr and "Sarah" not in r.stderr
    r = runner.invoke(cli, ["anonymise", "-p", str(filled)], env={"SP_REALIST_KEY": ""})
    assert r.exit_code == 2
    assert snapshot(filled) == before


def test_colliding_codings_are_refused(project, key_path):
    text = "Sarah Jones rang."
    with project.begin() as conn:
        sid = add_source(conn, SourceDraft(name="d", kind="diary", text=text, checksum="x",
                                           segments=[Segment(0, len(text))]))
        cid = conn.execute(insert(S.codes).values(name="c", ord=0, created_at="t")).inserted_primary_key[0]
        for s, e in [(1, 3), (2, 4)]:  # both inside "Sarah": both would become "S1 DK1"
            conn.execute(insert(S.codings).values(code_id=cid, source_id=sid, start=s, end=e, coder="RA",
                                                  origin="manual", created_at="t"))
    with pytest.raises(SpRealistError, match="would select the same span"):
        anonymise(project, key_path)
    with project.connect() as conn:
        assert conn.execute(select(S.sources.c.text)).scalar_one() == text


def test_file_name_and_path_are_anonymised_and_restored(project, key_path):
    """A source's file path can hold real names (a folder per surgery, a file per person)."""
    with project.begin() as conn:
        add_source(conn, SourceDraft(name="interview 1", kind="interview", text=TEXT, checksum="x",
                                     segments=[Segment(0, len(TEXT))], file_name="Sarah Jones interview.txt",
                                     file_path="/research/Riverside Surgery/Sarah Jones interview.txt"))

    def stored():
        with project.connect() as conn:
            return tuple(conn.execute(select(S.sources.c.file_name, S.sources.c.file_path)).one())

    result = anonymise(project, key_path)
    # in a file or folder name the replacement is made safe for a file name
    assert stored() == ("S1-DK1 interview.txt", "/research/GP-surgery/S1-DK1 interview.txt")
    assert set(result.replacements["field"]) >= {"file_name", "file_path"}
    reverse(project, key_path)
    assert stored() == ("Sarah Jones interview.txt", "/research/Riverside Surgery/Sarah Jones interview.txt")


def test_irreversible_and_sources_option(runner, cli, project_path, key_path):
    with Project.open(project_path) as p, p.begin() as conn:
        for name in ("a", "b"):
            t = f"Entry {name}: Sarah Jones wrote.\n"
            add_source(conn, SourceDraft(name=name, kind="diary", text=t, checksum=name,
                                         segments=[Segment(0, len(t))]))
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(project_path), "--sources", "a",
                            "--irreversible", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert {x["source"] for x in json.loads(r.stdout)} == {"a"}
    with Project.open(project_path) as p, p.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
        assert texts == {"a": "Entry a: S1 DK1 wrote.\n", "b": "Entry b: Sarah Jones wrote.\n"}
        assert conn.execute(select(S.anonymisation_records.c.sealed)).scalar_one() is None
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(project_path), "--reverse", "-s", "a"])
    assert r.exit_code == 1 and "irreversible" in r.stderr
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(project_path), "--reverse", "-s", "b"])
    assert r.exit_code == 1 and "not been anonymised" in r.stderr
    r = runner.invoke(cli, ["anonymise", "status", "-p", str(project_path), "-f", "json"])
    status = {x["source"]: x for x in json.loads(r.stdout)}
    digest = load_key(key_path).sha256
    assert (status["a"]["layers"], status["a"]["replacements"], status["a"]["key_sha256"], status["a"]["reversible"]) \
        == (1, 1, digest, False)
    assert (status["b"]["anonymised"], status["b"]["layers"]) == (False, 0)
    r = runner.invoke(cli, ["anonymise", "runs", "-p", str(project_path), "-f", "json"])
    (run,) = json.loads(r.stdout)
    assert (run["direction"], run["key_sha256"], run["replacements"], run["sources"]) == ("apply", digest, 1, 1)


def test_key_commands(runner, cli, tmp_path, key_path):
    r = runner.invoke(cli, ["anonymise", "check-key", str(key_path), "-f", "json"])
    assert r.exit_code == 0
    info = {x["item"]: x["value"] for x in json.loads(r.stdout)}
    assert info["entries"] == 3 and info["terms"] == 6 and info["sha256"] == load_key(key_path).sha256
    assert "Sarah" not in r.stdout
    new = tmp_path / "new.yaml"
    r = runner.invoke(cli, ["anonymise", "new-key", str(new)])
    assert r.exit_code == 0 and new.exists()
    assert runner.invoke(cli, ["anonymise", "new-key", str(new)]).exit_code == 1
    for cmd in (["anonymise", "--help"], ["anonymise", "suggest", "--help"], ["audit", "--help"],
                ["anonymise", "runs", "--help"]):
        r = runner.invoke(cli, cmd)
        assert r.exit_code == 0 and "Example" in r.stdout


def test_reverse_by_default_leaves_other_keys_layers(project_path, tmp_path):
    """Sources anonymised with key A and key B: reversing with A restores only A's sources."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("entries:\n  - {original: Sarah Jones, replacement: S1 DK1}\n", encoding="utf-8")
    b.write_text("entries:\n  - {original: Owen Evans, replacement: S2 DK1}\n", encoding="utf-8")
    with Project.open(project_path) as p:
        with p.begin() as conn:
            for name, t in (("one", "Sarah Jones wrote.\n"), ("two", "Owen Evans wrote.\n")):
                add_source(conn, SourceDraft(name=name, kind="diary", text=t, checksum=name,
                                             segments=[Segment(0, len(t))]))
        anonymise(p, a, ["one"])
        anonymise(p, b, ["two"])
        reverse(p, a)
        with p.connect() as conn:
            texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
        assert texts == {"one": "Sarah Jones wrote.\n", "two": "S2 DK1 wrote.\n"}
        with pytest.raises(SpRealistError, match="No sources anonymised with this key"):
            reverse(p, a)
        with pytest.raises(SpRealistError, match="not this key"):
            reverse(p, a, ["two"])


def test_project_wide_text_is_anonymised_and_restored(runner, cli, filled, key_path):
    """Codebook, CMOCs, theories, project memos, participants and the audit log can hold names too."""
    with Project.open(filled) as p, p.begin() as conn:
        conn.execute(insert(S.codes).values(name="Dr Patel's referrals", definition="What Sarah said about Patel.",
                                            ord=1, created_at="t"))
        conn.execute(insert(S.cmocs).values(key="T1.1", context="Riverside Surgery had no induction",
                                            outcome="Sarah Jones felt lost", status="partial", ord=0,
                                            ifthen="If Riverside Surgery gives no induction, Sarah Jones is lost.",
                                            created_at="t", updated_at="t"))
        conn.execute(insert(S.memos).values(target_type="project", target_id=None, title="Patel",
                                            text="Ask Dr Patel again.", author="RA", created_at="t", updated_at="t"))
        p.log(conn, "ingest", "Sarah Jones diary.docx", file="Sarah Jones diary.docx")
    tables = (S.codes, S.cmocs, S.memos, S.audit_log)

    def project_text():
        with Project.open(filled) as p, p.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all()) for t in tables}

    before = project_text()
    # a subset of sources leaves the project-wide text alone
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "-s", "Sarah Jones interview",
                            "--dry-run", "-f", "json"])
    assert not any(x["source"] == "(project)" for x in json.loads(r.stdout))
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "-f", "json"])
    assert r.exit_code == 0, r.output
    fields = {x["field"] for x in json.loads(r.stdout) if x["source"] == "(project)"}
    assert {"codes 2 name", "codes 2 definition", "cmocs 1 context", "cmocs 1 outcome", "cmocs 1 ifthen",
            "memos 2 title",
            "memos 2 text"} <= fields and any(f.startswith("audit_log") for f in fields)
    after = project_text()
    assert ("Dr Patel" not in str(after) and "Sarah" not in str(after) and "Riverside" not in str(after))
    assert any(row[1] == "[GP 1]'s referrals" for row in after["codes"])
    r = runner.invoke(cli, ["audit", str(filled), "--key", str(key_path)])
    assert r.exit_code == 0, r.stdout
    r = runner.invoke(cli, ["anonymise", "-k", str(key_path), "-p", str(filled), "--reverse"])
    assert r.exit_code == 0, r.output
    restored = project_text()
    # everything is back; the audit log gained the anonymise and reverse entries only
    assert {k: v for k, v in restored.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert restored["audit_log"][: len(before["audit_log"])] == before["audit_log"]
    assert [row[3] for row in restored["audit_log"][len(before["audit_log"]):]] == ["anonymise", "anonymise.reverse"]

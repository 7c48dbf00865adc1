"""The ingest, sources, participants, attributes and summary commands through
click's CliRunner: stdout (data), stderr (messages) and exit codes."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

import ingest_samples as samples


def _run(runner, cli, project_path, *args):
    return runner.invoke(cli, [*args[:1], "-p", str(project_path), *args[1:]]) if args[0] in (
        "ingest", "summary") else runner.invoke(cli, [*args[:2], "-p", str(project_path), *args[2:]])


@pytest.fixture
def corpus(tmp_path):
    """Two diary files (one Word) for sites S1/S3 and one interview."""
    d1 = tmp_path / "s1-dk1.txt"
    d1.write_text(samples.diary_text("subtitle"), encoding="utf-8")
    d2 = samples.write_docx_diary(tmp_path / "s3-unidentified.docx", "bold", entries=[
        (d, iso, None, None, w, s, n) for (d, iso, _c, _g, w, s, n) in samples.ENTRIES[:2]])
    iv = tmp_path / "lw.txt"
    iv.write_text(samples.TRANSCRIPT, encoding="utf-8")
    return d1, d2, iv


def test_ingest_then_look(runner, cli, project_path, corpus):
    d1, d2, iv = corpus
    r = _run(runner, cli, project_path, "ingest", str(d1), "--site", "S1", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["status"] for x in rows] == ["ingested"] and rows[0]["sources"] == 3
    assert "1 ingested (3 sources)" in r.stderr
    r = _run(runner, cli, project_path, "ingest", str(d2), "--site", "S3", "--attr", "pages=3", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert "S3 unidentified 2019-05-14; S3 unidentified 2019-05-21" in r.stdout
    r = _run(runner, cli, project_path, "ingest", str(iv), "--participant", "S2 PM1", "--role", "practice manager",
             "--site", "S2", "--kind", "interview")
    assert r.exit_code == 0, r.output

    r = _run(runner, cli, project_path, "sources", "list", "--format", "csv")
    assert r.exit_code == 0
    listed = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["name"] for x in listed] == [f"S1 DK1 {e[1]}" for e in samples.ENTRIES] + [
        "S3 unidentified 2019-05-14", "S3 unidentified 2019-05-21", "lw"]
    r = _run(runner, cli, project_path, "sources", "list", "--kind", "diary", "--site", "S3", "--format", "json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["S3 unidentified 2019-05-14", "S3 unidentified 2019-05-21"]

    name = f"S1 DK1 {samples.ENTRIES[0][1]}"
    r = _run(runner, cli, project_path, "sources", "show", name, "--format", "json")
    assert r.exit_code == 0
    shown = json.loads(r.stdout)
    assert shown["source"]["participant"] == "S1 DK1" and shown["source"]["attributes"]["surgery"] == "S1 GP2"
    segs = shown["segments"]
    assert [s["kind"] for s in segs] == ["preamble", "heading", "section", "heading", "section", "heading", "section"]
    assert [s["section"] for s in segs if s["kind"] == "section"] == ["What?", "So what?", "Now what?"]
    assert segs[2]["text"].strip() == samples.ENTRIES[0][4]
    r = _run(runner, cli, project_path, "sources", "show", "lw", "--format", "md")
    assert r.stdout.startswith("## lw") and "| turn | P2 | S2 PM1 |" in r.stdout
    r = _run(runner, cli, project_path, "sources", "show", "no such source")
    assert r.exit_code == 1 and "No source named 'no such source'" in r.stderr and "Traceback" not in r.output

    # summary: Table 3.7 with pages given for S3 (once per file) and estimated for S1
    r = _run(runner, cli, project_path, "summary", "--format", "json")
    assert r.exit_code == 0, r.output
    summ = json.loads(r.stdout)
    diaries = {row["Sites"]: row for row in summ["diaries"]}
    words = len(d1.read_text(encoding="utf-8").split())
    assert diaries["S1"]["Total entries"] == 3 and diaries["S1"]["Total pages"] == math.ceil(words / 500)
    assert diaries["S3"]["Total entries"] == 2 and diaries["S3"]["Total pages"] == 3
    assert diaries["S3"]["Diary keepers"] == 0
    assert diaries["Total"]["Total entries"] == 5
    kinds = {row["site"]: row for row in summ["sources"]}
    assert kinds["S2"]["interview"] == 1 and kinds["Total"]["total"] == 6
    roles = {row["role"]: row for row in summ["participants"]}
    assert roles["practice manager"]["participants"] == 1 and roles["practice manager"]["sources"] == 1
    r = _run(runner, cli, project_path, "summary", "--format", "csv")
    assert r.exit_code == 2 and "--table" in r.stderr and not r.stdout  # a usage error
    r = _run(runner, cli, project_path, "summary", "--output", "s.txt")
    assert r.exit_code == 2 and "--table" in r.stderr
    r = _run(runner, cli, project_path, "summary", "--table", "diaries", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("Sites,Total entries,Total pages")
    r = _run(runner, cli, project_path, "summary")
    assert r.exit_code == 0 and "Participants by role" in r.stdout


def test_ingest_exit_codes_and_messages(runner, cli, project_path, corpus, tmp_path):
    d1, _d2, iv = corpus
    bad = tmp_path / "broken.docx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = _run(runner, cli, project_path, "ingest", str(d1), str(bad), str(iv))
    assert r.exit_code == 1
    assert "broken.docx" in r.stderr and "Error:" in r.stderr and "Traceback" not in r.output
    assert "2 ingested" in r.stderr and "1 refused" in r.stderr
    # the good files are in
    r = _run(runner, cli, project_path, "sources", "list", "--format", "json")
    assert len(json.loads(r.stdout)) == 4
    # unchanged re-run: exit 0
    r = _run(runner, cli, project_path, "ingest", str(d1), str(iv))
    assert r.exit_code == 0 and "2 unchanged" in r.stderr
    # changed: refused with exit 1, then --replace
    d1.write_text(samples.diary_text("subtitle").replace("exposed", "unsafe"), encoding="utf-8")
    r = _run(runner, cli, project_path, "ingest", str(d1))
    assert r.exit_code == 1 and "--replace" in r.stderr
    r = _run(runner, cli, project_path, "ingest", str(d1), "--replace", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["status"] == "replaced"
    # usage errors are click's
    assert _run(runner, cli, project_path, "ingest").exit_code == 2
    assert _run(runner, cli, project_path, "ingest", str(d1), "--kind", "podcast").exit_code == 2
    assert _run(runner, cli, project_path, "ingest", str(d1), "--attr", "novalue").exit_code == 2
    r = _run(runner, cli, project_path, "ingest", str(iv), "--speaker-map", "Sarah")
    assert r.exit_code == 2 and "--speaker-map" in r.stderr and "NAME=CODE" in r.stderr


def test_ingest_manifest_cli(runner, cli, project_path, corpus, tmp_path):
    d1, d2, iv = corpus
    m = tmp_path / "manifest.csv"
    m.write_text("path,kind,participant,site,role,wave\n"
                 f"{d1.name},diary,,S1,link worker,1\n"
                 f"{iv.name},interview,S2 PM1,S2,practice manager,2\n", encoding="utf-8")
    r = _run(runner, cli, project_path, "ingest", "--manifest", str(m), "--format", "json")
    assert r.exit_code == 0, r.output
    assert [x["status"] for x in json.loads(r.stdout)] == ["ingested", "ingested"]
    r = _run(runner, cli, project_path, "participants", "list", "--format", "json")
    parts = {p["code"]: p for p in json.loads(r.stdout)}
    assert parts["S1 DK1"]["role"] == "link worker" and parts["S1 DK1"]["sources"] == 3
    assert parts["S2 PM1"]["role"] == "practice manager" and parts["S2 PM1"]["turns"] == 2


def test_participants_and_attributes(runner, cli, project_path, corpus):
    d1, _d2, _iv = corpus
    assert _run(runner, cli, project_path, "ingest", str(d1), "--site", "S1").exit_code == 0
    r = _run(runner, cli, project_path, "participants", "add", "S3 DK2", "--role", "link worker", "--site", "S3",
             "--attr", "gender=F", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"code": "S3 DK2", "role": "link worker", "site": "S3", "sources": 0,
                                     "turns": 0, "gender": "F"}]
    r = _run(runner, cli, project_path, "participants", "add", "S3 DK2")
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = _run(runner, cli, project_path, "participants", "edit", "S1 DK1", "--role", "manager", "--rename", "S1 MG1",
             "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["code"] == "S1 MG1" and json.loads(r.stdout)[0]["sources"] == 3
    r = _run(runner, cli, project_path, "participants", "edit", "S9 XX1", "--role", "x")
    assert r.exit_code == 1 and "No participant 'S9 XX1'" in r.stderr
    r = _run(runner, cli, project_path, "participants", "list", "--role", "manager", "--format", "csv")
    assert r.stdout.splitlines()[1].startswith("S1 MG1,manager,S1,3,0")

    name = f"S1 DK1 {samples.ENTRIES[0][1]}"
    r = _run(runner, cli, project_path, "attributes", "set", name, "wave=2", "pages=1", "--format", "json")
    assert r.exit_code == 0, r.output
    assert {x["name"]: x["value"] for x in json.loads(r.stdout)} == {
        "pages": "1", "site": "S1", "surgery": "S1 GP2", "wave": "2"}
    r = _run(runner, cli, project_path, "attributes", "set", name, "wave")
    assert r.exit_code == 2 and "'wave' is not NAME=VALUE" in r.stderr and "PAIRS" in r.stderr
    r = _run(runner, cli, project_path, "attributes", "set", name, "--unset", "nothing")
    assert r.exit_code == 1 and "no attribute 'nothing'" in r.stderr
    r = _run(runner, cli, project_path, "attributes", "list", "--format", "json")
    rows = {(x["entity"], x["name"]): x for x in json.loads(r.stdout)}
    assert rows[("source", "site")]["count"] == 3 and rows[("source", "wave")]["count"] == 1
    assert rows[("source", "surgery")]["values"] == 2 and rows[("participant", "gender")]["count"] == 1
    r = _run(runner, cli, project_path, "attributes", "list", "--name", "surgery", "--format", "json")
    assert [(x["value"], x["count"]) for x in json.loads(r.stdout)] == [("S1 GP2", 2), ("S1 GP3", 1)]


def test_help_texts_have_examples(runner, cli):
    for args in (["ingest"], ["sources", "list"], ["sources", "show"], ["participants", "add"],
                 ["participants", "edit"], ["participants", "list"], ["attributes", "list"], ["attributes", "set"],
                 ["summary"]):
        r = runner.invoke(cli, [*args, "--help"])
        assert r.exit_code == 0 and "sp-realist " + args[0] in r.stdout, args


def test_dry_run_writes_nothing(runner, cli, project_path, corpus, tmp_path):
    d1, d2, iv = corpus
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"")
    r = runner.invoke(cli, ["ingest", "-p", str(project_path), str(d1), str(d2), str(iv), str(bad), "--site", "S3",
                            "--dry-run", "--format", "json"])
    assert r.exit_code == 1 and "nothing written" in r.stderr and "bad.txt: the file is empty" in r.stderr
    rows = json.loads(r.stdout)
    # d1 is S1 DK1's diary: --site S3 contradicts its participant code
    assert rows[0]["status"] == "refused" and rows[0]["file"] == str(d1)
    assert "participant code S1 DK1 says site S1, but --site says S3" in rows[0]["message"]
    assert [x["source"] for x in rows if x["status"] == "ok"] == [
        "S3 unidentified 2019-05-14", "S3 unidentified 2019-05-21", "lw"]
    assert rows[1]["sections"] == "What?, So what?, Now what?" and rows[3]["speakers"] == "Interviewer, P2"
    assert rows[-1]["status"] == "refused"
    r = runner.invoke(cli, ["ingest", "-p", str(project_path), str(d1), "--dry-run", "--format", "json"])
    assert r.exit_code == 0 and {x["site"] for x in json.loads(r.stdout)} == {"S1"}  # the code gives the site
    assert isinstance(rows[1]["segments"], int) and rows[-1]["segments"] is None
    r = runner.invoke(cli, ["ingest", "-p", str(project_path), str(iv), str(bad), "--dry-run", "--format", "csv"])
    assert r.stdout.splitlines()[1].split(",")[7] == "5"  # a count, not "5.0", beside a refused row
    r = runner.invoke(cli, ["sources", "list", "-p", str(project_path), "--format", "json"])
    assert json.loads(r.stdout) == []
    r = runner.invoke(cli, ["ingest", "-p", str(project_path), str(d1), "--dry-run"])
    assert r.exit_code == 0


def test_ingest_into_an_anonymised_project_says_the_new_sources_are_not_anonymised(runner, cli, project_path,
                                                                                   tmp_path):
    key = tmp_path / "key.yaml"
    key.write_text("entries:\n  - {original: Sarah Jones, replacement: S1 DK1}\n", encoding="utf-8")
    one = tmp_path / "one.txt"
    one.write_text("Interviewer: Hello.\nSarah Jones: Hi.\n", encoding="utf-8")
    two = tmp_path / "two.txt"
    two.write_text("Interviewer: Again.\nSarah Jones: Yes.\n", encoding="utf-8")
    r = runner.invoke(cli, ["ingest", str(one), "-p", str(project_path)])
    assert r.exit_code == 0 and "pseudonym key" not in r.stderr
    assert runner.invoke(cli, ["anonymise", "--key", str(key), "-p", str(project_path)]).exit_code == 0
    r = runner.invoke(cli, ["ingest", str(one), "-p", str(project_path)])  # unchanged: nothing new
    assert r.exit_code == 0 and "pseudonym key" not in r.stderr
    r = runner.invoke(cli, ["ingest", str(two), "-p", str(project_path), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["status"] == "ingested"
    err = " ".join(r.stderr.split())
    assert "1 new source(s) are not anonymised yet" in err and '--sources "two"' in err
    assert "Sarah" not in r.stderr


def test_summary_with_participants_without_site_in_a_role(runner, cli, project_path):
    """Participants by role when a role's participants have no site (pandas reads None as NaN)."""
    for code, extra in (("S1 DK1", []), ("S1 DK2", []), ("S9 LW1", ["--role", "link worker", "--site", "S9"])):
        assert runner.invoke(cli, ["participants", "add", code, "-p", str(project_path), *extra]).exit_code == 0
    for fmt in ("md", "json", "table"):
        r = runner.invoke(cli, ["summary", "-p", str(project_path), "--format", fmt])
        assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["summary", "-p", str(project_path), "--table", "participants", "--format", "json"])
    assert json.loads(r.stdout) == [{"role": "(no role)", "participants": 2, "sites": "", "sources": 0},
                                    {"role": "link worker", "participants": 1, "sites": "S9", "sources": 0}]

"""A participant code names its site: --site never silently moves S3 DK2's diary to S1."""

from __future__ import annotations

import json

from sp_realist.ingest import ingest_paths
from sp_realist.ingest.browse import list_sources

import ingest_samples as samples


def _diary(path, code):
    entries = [(d, iso, code, g, w, s, n) for (d, iso, _c, g, w, s, n) in samples.ENTRIES[:2]]
    path.write_text(samples.diary_text(entries=entries), encoding="utf-8")
    return path


def test_site_contradicting_the_code_is_refused_then_forced(runner, cli, project_path, project, tmp_path):
    folder = tmp_path / "diaries"
    folder.mkdir()
    _diary(folder / "s1-dk1.txt", "S1 DK1")
    _diary(folder / "s3-dk2.txt", "S3 DK2")
    r = runner.invoke(cli, ["ingest", str(folder), "--kind", "diary", "--site", "S1", "-p", str(project_path),
                            "--format", "json"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    rows = {row["file"].rsplit("/", 1)[-1]: row for row in json.loads(r.stdout)}
    assert rows["s1-dk1.txt"]["status"] == "ingested"
    assert rows["s3-dk2.txt"]["status"] == "refused"
    said = " ".join(r.stderr.split())
    assert "participant code S3 DK2 says site S3, but --site says S1" in said and "--force-site" in said
    assert set(list_sources(project)["site"]) == {"S1"}

    r = runner.invoke(cli, ["ingest", str(folder / "s3-dk2.txt"), "--kind", "diary", "--site", "S1", "--force-site",
                            "-p", str(project_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["status"] == "ingested" and "warning:" in row["message"] and "recorded at site S1" in row["message"]
    sites = dict(zip(list_sources(project)["name"], list_sources(project)["site"]))
    assert {sites[n] for n in sites if n.startswith("S3 DK2")} == {"S1"}


def test_without_site_each_entry_goes_to_its_codes_site(project, tmp_path):
    _diary(tmp_path / "a.txt", "S3 DK2")
    unidentified = tmp_path / "b.txt"
    unidentified.write_text(samples.diary_text(entries=[(d, iso, None, g, w, s, n)
                                                        for (d, iso, _c, g, w, s, n) in samples.ENTRIES[:1]]),
                            encoding="utf-8")
    assert ingest_paths(project, [tmp_path / "a.txt"], kind="diary").ok
    assert ingest_paths(project, [unidentified], kind="diary", site="S2").ok
    df = list_sources(project)
    sites = dict(zip(df["name"], df["site"]))
    assert all(sites[n] == "S3" for n in sites if n.startswith("S3 DK2"))
    assert [n for n in sites if "unidentified" in n] == [f"S2 unidentified {samples.ENTRIES[0][1]}"]


def test_a_participant_defined_at_another_site_keeps_it(runner, cli, project_path, project, tmp_path):
    r = runner.invoke(cli, ["participants", "add", "S3 DK2", "--site", "S4", "-p", str(project_path)])
    assert r.exit_code == 0, r.output
    path = _diary(tmp_path / "moved.txt", "S3 DK2")
    assert ingest_paths(project, [path], kind="diary").ok
    assert set(list_sources(project)["site"]) == {"S4"}
    again = _diary(tmp_path / "moved2.txt", "S3 DK2")
    again.write_text(again.read_text(encoding="utf-8").replace("induction", "welcome"), encoding="utf-8")
    report = ingest_paths(project, [again], kind="diary", site="S3")
    assert report.files[0].status == "refused"
    assert "participant S3 DK2 is at site S4 in the project, but --site says S3" in report.files[0].message

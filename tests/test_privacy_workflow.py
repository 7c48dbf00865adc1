"""End to end with the other areas' real commands: ingest a Word diary and a VTT interview, anonymise,
export REFI-QDA, audit the export and the project file."""

from __future__ import annotations

import json

import docx

KEY = """\
entries:
  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}
  - {original: Dr Patel, replacement: "[GP 1]", variants: [Patel]}
  - {original: Riverside Surgery, replacement: "[GP surgery]", variants: [Riverside]}
"""

VTT = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Interviewer>How did the referrals from Riverside go?

00:00:04.500 --> 00:00:09.000
<v Sarah Jones>Dr Patel's receptionist kept losing them, so I rang Riverside every week.
"""


def test_ingest_anonymise_export_audit(place, runner, cli, tmp_path):
    key = tmp_path / "private" / "key.yaml"
    key.parent.mkdir()
    key.write_text(KEY, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    d = docx.Document()
    d.add_paragraph("Reflective diary of Sarah Jones")
    d.add_paragraph("Today Dr Patel asked me about the referral forms at Riverside Surgery.")
    d.save(data / "diary.docx")
    (data / "interview.vtt").write_text(VTT, encoding="utf-8")
    project = place("eval")
    assert runner.invoke(cli, ["init", str(project)]).exit_code == 0
    r = runner.invoke(cli, ["ingest", str(data / "diary.docx"), "--kind", "diary", "--participant", "S1 DK1",
                            "-p", str(project)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ingest", str(data / "interview.vtt"), "--kind", "interview", "-p", str(project)])
    assert r.exit_code == 0, r.output

    # before: the project and its export leak
    assert runner.invoke(cli, ["audit", str(project), "--key", str(key)]).exit_code == 3
    r = runner.invoke(cli, ["export", "qdpx", str(tmp_path / "before.qdpx"), "-p", str(project)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["audit", str(tmp_path / "before.qdpx"), "--key", str(key), "-f", "json"])
    assert r.exit_code == 3
    assert any(x["location"].startswith("sources/") for x in json.loads(r.stdout))

    r = runner.invoke(cli, ["anonymise", "--key", str(key), "-p", str(project), "-f", "json"])
    assert r.exit_code == 0, r.output
    fields = {x["field"] for x in json.loads(r.stdout)}
    assert "text" in fields and any("speaker" in f for f in fields)

    # after: nothing in the project (file or database), nothing in a fresh export
    r = runner.invoke(cli, ["audit", str(project), "--key", str(key)])
    assert r.exit_code == 0, r.stdout
    r = runner.invoke(cli, ["export", "qdpx", str(tmp_path / "after-fingerprints.qdpx"), "-p", str(project)],
                      env={"SP_REALIST_KEY": None})
    assert r.exit_code == 0, r.output  # checked without the key, by the project's fingerprints
    r = runner.invoke(cli, ["export", "qdpx", str(tmp_path / "after.qdpx"), "-p", str(project), "--key", str(key)])
    assert r.exit_code == 0, r.output
    assert "Audit: no real name" in r.stderr
    r = runner.invoke(cli, ["audit", str(tmp_path / "after.qdpx"), str(tmp_path / "before.qdpx"),
                            "--key", str(key), "-f", "json"])
    assert r.exit_code == 3
    assert {x["file"].rsplit("/", 1)[-1] for x in json.loads(r.stdout)} == {"before.qdpx"}

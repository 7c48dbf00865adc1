"""Exports of an anonymised project are audited for real names before they are written."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from sp_realist import schema as S
from sp_realist.errors import CheckFailed, SpRealistError
from sp_realist.exchange.qdc import export_qdc
from sp_realist.exchange.qdpx_export import export_qdpx
from sp_realist.privacy import anonymise, audit_paths
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import now

KEY = """\
entries:
  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
"""
TEXT = "Interviewer: How was it?\nSarah Jones: Riverside Surgery booked me in.\n"


@pytest.fixture
def key_path(tmp_path):
    p = tmp_path / "private" / "key.yaml"
    p.parent.mkdir()
    p.write_text(KEY, encoding="utf-8")
    return p


def _source(project, text=TEXT, name="interview"):
    with project.begin() as conn:
        add_source(conn, SourceDraft(name=name, kind="interview", text=text, segments=[Segment(0, len(text))],
                                     checksum=name))


def test_export_of_an_anonymised_project_is_checked_with_or_without_the_key(project, tmp_path, key_path,
                                                                            monkeypatch):
    monkeypatch.delenv("SP_REALIST_KEY", raising=False)
    _source(project)
    anonymise(project, str(key_path))
    out = tmp_path / "shared.qdpx"
    export_qdpx(project, out)  # the project's fingerprints check it; the key is not needed
    assert audit_paths([out], key_path).empty
    export_qdpx(project, out, force=True, key=key_path)
    # a name that slipped in after anonymisation (a code named after a person) blocks the export
    with project.begin() as conn:
        conn.execute(insert(S.codes).values(name="Calls from Sarah", created_at=now()))
    leaky = tmp_path / "leaky.qdpx"
    with pytest.raises(CheckFailed, match="leaky.qdpx would hold a name from the applied pseudonym key") as exc:
        export_qdpx(project, leaky)
    assert "Sarah" not in exc.value.message and "nothing was written" in exc.value.message
    with pytest.raises(CheckFailed, match=r"leaky.qdpx would hold key entry 1 -> 'S1 DK1' \(at project.qde: line"):
        export_qdpx(project, leaky, key=key_path)
    assert not leaky.exists() and not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(CheckFailed):
        export_qdc(project, tmp_path / "codes.qdc", key=key_path)
    assert not (tmp_path / "codes.qdc").exists() and not list(tmp_path.glob(".tmp-*"))
    # --force does not let a leaking export replace a good one
    with pytest.raises(CheckFailed):
        export_qdpx(project, out, force=True, key=key_path)
    assert audit_paths([out], key_path).empty


def test_wrong_key_is_refused_and_unanonymised_projects_can_be_checked(project, tmp_path, key_path):
    _source(project)
    other = tmp_path / "other.yaml"
    other.write_text("entries:\n  - {original: Owen Price, replacement: S2 DK1}\n", encoding="utf-8")
    # not anonymised: a key given explicitly still audits the export
    with pytest.raises(CheckFailed, match="raw.qdpx would hold key entry"):
        export_qdpx(project, tmp_path / "raw.qdpx", key=key_path)
    export_qdpx(project, tmp_path / "raw.qdpx")  # no key, none applied: written as before
    anonymise(project, str(key_path))
    with pytest.raises(SpRealistError, match="not the key applied"):
        export_qdpx(project, tmp_path / "x.qdpx", key=other)


def test_cli_export_audit(runner, cli, project, project_path, tmp_path, key_path):
    _source(project)
    anonymise(project, str(key_path))
    out = tmp_path / "shared.qdpx"
    r = runner.invoke(cli, ["export", "qdpx", str(out), "-p", str(project_path)], env={"SP_REALIST_KEY": None})
    assert r.exit_code == 0 and out.exists()  # checked with the project's fingerprints
    out.unlink()
    r = runner.invoke(cli, ["export", "qdpx", str(out), "-p", str(project_path)], env={"SP_REALIST_KEY": str(key_path)})
    assert r.exit_code == 0 and "Audit: no real name" in r.stderr and out.exists()
    with project.begin() as conn:
        conn.execute(insert(S.codes).values(name="Sarah's referrals", created_at=now()))
    r = runner.invoke(cli, ["export", "qdc", str(tmp_path / "c.qdc"), "-p", str(project_path), "--key", str(key_path)])
    assert r.exit_code == 3 and "nothing was written" in r.stderr and "Sarah" not in r.output
    assert not (tmp_path / "c.qdc").exists()


def test_audit_reads_a_qdc_codebook_as_xml(tmp_path, key_path, project):
    with project.begin() as conn:
        conn.execute(insert(S.codes).values(name="Riverside Surgery access", created_at=now()))
    out = tmp_path / "codes.qdc"
    export_qdc(project, out)
    assert out.read_bytes().startswith(b"<?xml")
    df = audit_paths([out], key_path)
    assert len(df) == 1 and df["location"][0].startswith("line ")


def test_import_into_an_anonymised_project_says_the_new_sources_are_not_anonymised(place, runner, cli, project,
                                                                                    project_path, tmp_path, key_path):
    _source(project)
    anonymise(project, str(key_path))
    with __import__("sp_realist").Project.create(place("colleague")) as other:
        _source(other, "Interviewer: Hi.\nOwen: Hello.\n", name="colleague interview")
        export_qdpx(other, tmp_path / "colleague.qdpx")
    r = runner.invoke(cli, ["import", "qdpx", str(tmp_path / "colleague.qdpx"), "--into", str(project_path)])
    assert r.exit_code == 0, r.output
    assert "1 imported source(s) are not anonymised yet" in " ".join(r.stderr.split())

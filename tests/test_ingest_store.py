"""ingest_paths / ingest_manifest against a real project: idempotence,
--replace, batches with bad files, manifests, participants and attributes."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from sp_realist import schema as S
from sp_realist.ingest import ingest_manifest, ingest_paths
from sp_realist.sources import sources_frame
from sp_realist.store import now

import ingest_samples as samples


def _count(project, table):
    with project.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _rebuilds(project):
    with project.connect() as conn:
        for sid, text in conn.execute(select(S.sources.c.id, S.sources.c.text)).all():
            segs = conn.execute(select(S.segments.c.start, S.segments.c.end).where(
                S.segments.c.source_id == sid).order_by(S.segments.c.ord)).all()
            assert "".join(text[a:b] for a, b in segs) == text


def test_ingest_diaries_and_transcripts(project, tmp_path):
    diary = tmp_path / "s1-dk1.md"
    diary.write_text(samples.diary_text("markdown"), encoding="utf-8")
    docx_diary = samples.write_docx_diary(tmp_path / "s1-dk2.docx", "table", entries=[
        (d, iso, "S1 DK2", g, w, s, n) for (d, iso, _c, g, w, s, n) in samples.ENTRIES[:2]])
    interview = tmp_path / "pm.txt"
    interview.write_text(samples.TRANSCRIPT, encoding="cp1252")
    calls = []
    report = ingest_paths(project, [diary, docx_diary, interview], site="S1", attributes={"wave": "1"},
                          progress=lambda i, n: calls.append((i, n)))
    assert report.ok and calls == [(1, 3), (2, 3), (3, 3)]
    df = report.frame()
    assert list(df["status"]) == ["ingested"] * 3
    assert list(df["kind"]) == ["diary", "diary", "interview"]
    assert list(df["sources"]) == [3, 2, 1]
    src = sources_frame(project)
    expected = [f"S1 DK1 {e[1]}" for e in samples.ENTRIES] + [f"S1 DK2 {e[1]}" for e in samples.ENTRIES[:2]] + ["pm"]
    assert list(src["name"]) == expected
    assert set(src["site"]) == {"S1"} and set(src["wave"]) == {"1"}
    assert list(src["participant"][:5]) == ["S1 DK1"] * 3 + ["S1 DK2"] * 2
    _rebuilds(project)
    with project.connect() as conn:
        log = conn.execute(select(S.audit_log.c.action, S.audit_log.c.target)).all()
    assert log == [("ingest", "s1-dk1.md"), ("ingest", "s1-dk2.docx"), ("ingest", "pm.txt")]


def test_reingest_unchanged_is_a_no_op_and_changed_needs_replace(project, tmp_path):
    path = tmp_path / "s1-dk1.txt"
    path.write_text(samples.diary_text(), encoding="utf-8")
    assert ingest_paths(project, [path]).ok
    n_sources, n_segments = _count(project, S.sources), _count(project, S.segments)
    again = ingest_paths(project, [path])
    assert again.files[0].status == "unchanged" and again.ok
    assert (_count(project, S.sources), _count(project, S.segments)) == (n_sources, n_segments)

    # a coding on the old version, to show --replace removes it
    with project.begin() as conn:
        cid = conn.execute(insert(S.codes).values(name="Induction", ord=0, created_at=now())).inserted_primary_key[0]
        sid = conn.execute(select(S.sources.c.id)).first()[0]
        conn.execute(insert(S.codings).values(code_id=cid, source_id=sid, start=0, end=5, coder="RA",
                                              origin="manual", created_at=now()))
    path.write_text(samples.diary_text().replace("two referral forms", "three referral forms"), encoding="utf-8")
    refused = ingest_paths(project, [path])
    assert refused.files[0].status == "refused" and not refused.ok
    assert "--replace" in refused.files[0].message and refused.files[0].message.startswith(str(path))
    assert _count(project, S.codings) == 1
    replaced = ingest_paths(project, [path], replace=True)
    assert replaced.files[0].status == "replaced" and replaced.ok
    assert _count(project, S.codings) == 0 and _count(project, S.sources) == n_sources
    with project.connect() as conn:
        texts = [r[0] for r in conn.execute(select(S.sources.c.text)).all()]
    assert any("three referral forms" in t for t in texts)
    _rebuilds(project)


def test_batch_with_bad_files_ingests_the_good_ones(project, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(samples.TRANSCRIPT, encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    fake = tmp_path / "fake.docx"
    fake.write_bytes(b"not a zip")
    bad_date = tmp_path / "bad-date.txt"
    bad_date.write_text(samples.diary_text().replace("14/05/2019", "31/02/2019"), encoding="utf-8")
    report = ingest_paths(project, [empty, good, fake, bad_date, tmp_path / "missing.txt"])
    assert [f.status for f in report.files] == ["refused", "ingested", "refused", "refused", "refused"]
    assert "empty" in report.files[0].message
    assert "not a zip archive" in report.files[2].message
    assert "31/02/2019" in report.files[3].message and "entry 1" in report.files[3].message
    assert "no such file" in report.files[4].message
    # nothing of the refused files is in the store: only the good transcript
    assert list(sources_frame(project)["name"]) == ["good"]


def test_duplicate_entry_names_get_numbered(project, tmp_path):
    one = tmp_path / "a.txt"
    one.write_text(samples.diary_text(entries=samples.ENTRIES[:1] * 2), encoding="utf-8")
    two = tmp_path / "b.txt"
    two.write_text(samples.diary_text(entries=samples.ENTRIES[:1]).replace("induction", "welcome"), encoding="utf-8")
    assert ingest_paths(project, [one, two]).ok
    iso = samples.ENTRIES[0][1]
    assert list(sources_frame(project)["name"]) == [f"S1 DK1 {iso}", f"S1 DK1 {iso} #2", f"S1 DK1 {iso} #3"]


def test_same_content_under_another_name_is_not_duplicated(project, tmp_path):
    a = tmp_path / "a.txt"
    a.write_text(samples.TRANSCRIPT, encoding="utf-8")
    b = tmp_path / "copy.txt"
    b.write_bytes(a.read_bytes())
    report = ingest_paths(project, [a, b])
    assert [f.status for f in report.files] == ["ingested", "unchanged"]
    assert "same content as a.txt" in report.files[1].message
    assert _count(project, S.sources) == 1


def test_manifest(project, tmp_path):
    (tmp_path / "interviews").mkdir()
    (tmp_path / "interviews" / "lw1.txt").write_text(
        "Interviewer: Hello.\nSarah: Hi.\nInterviewer: Tell me more.\nSarah: Gladly.\n", encoding="utf-8")
    (tmp_path / "interviews" / "gp.md").write_text(samples.TRANSCRIPT, encoding="utf-8")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,kind,participant,site,role,date,wave,health_board\n"
        "interviews/lw1.txt,interview,S1 LW1,S1,link worker,12/03/2020,1,Cwm Taf\n"
        "interviews/gp.md,interview,S2 GP1,S2,GP referrer,2020-10-01,2,\n"
        "interviews/missing.txt,interview,,,,,,\n", encoding="utf-8")
    report = ingest_manifest(project, manifest)
    assert [f.status for f in report.files] == ["ingested", "ingested", "refused"]
    src = sources_frame(project).set_index("name")
    assert src.loc["lw1", "participant"] == "S1 LW1" and src.loc["lw1", "date"] == "2020-03-12"
    assert src.loc["lw1", "wave"] == "1" and src.loc["lw1", "health_board"] == "Cwm Taf"
    assert src.loc["gp", "site"] == "S2" and src.loc["gp", "date"] == "2020-10-01"
    with project.connect() as conn:
        roles = dict(conn.execute(select(S.participants.c.code, S.participants.c.role)).all())
        sarah = conn.execute(select(S.segments.c.speaker, S.participants.c.code).select_from(
            S.segments.join(S.participants, S.segments.c.participant_id == S.participants.c.id))).all()
    assert roles == {"S1 LW1": "link worker", "S2 GP1": "GP referrer"}
    # the single interviewee in lw1.txt is the row's participant
    assert set(sarah) == {("Sarah", "S1 LW1"), ("P2", "S2 GP1")}


def test_bad_manifest_is_refused_whole(project, tmp_path):
    import pytest

    from sp_realist.errors import SpRealistError

    m = tmp_path / "m.csv"
    m.write_text("file,kind\nx.txt,interview\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="no 'path' column"):
        ingest_manifest(project, m)
    m.write_text("path,kind\nx.txt,podcast\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="line 2: kind 'podcast'"):
        ingest_manifest(project, m)
    assert _count(project, S.sources) == 0


def test_folders_expand_to_supported_files(project, tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text(samples.TRANSCRIPT, encoding="utf-8")
    (tmp_path / "d" / "sub" / "a.vtt").write_text(samples.TEAMS_VTT, encoding="utf-8")
    (tmp_path / "d" / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "d" / "~$lock.docx").write_bytes(b"x")
    (tmp_path / "d" / ".hidden.txt").write_text("Interviewer: x\nP1: y\n", encoding="utf-8")
    report = ingest_paths(project, [tmp_path / "d"])
    assert [f.path for f in report.files] == [str(tmp_path / "d" / "b.txt"), str(tmp_path / "d" / "sub" / "a.vtt")]
    assert report.ok and list(sources_frame(project)["name"]) == ["b", "a"]
    (tmp_path / "empty").mkdir()
    empty = ingest_paths(project, [tmp_path / "empty"])
    assert empty.files[0].status == "refused" and "holds no .txt" in empty.files[0].message


def test_same_file_name_in_two_folders_is_refused_not_replaced(project, tmp_path):
    """Sources remember their file's base name: a second, different notes.txt in the
    same batch must be refused, and --replace must never let it delete the first."""
    (tmp_path / "s1").mkdir()
    (tmp_path / "s2").mkdir()
    one = tmp_path / "s1" / "notes.txt"
    one.write_text(samples.TRANSCRIPT, encoding="utf-8")
    two = tmp_path / "s2" / "notes.txt"
    two.write_text(samples.TRANSCRIPT.replace("referral", "welcome"), encoding="utf-8")
    report = ingest_paths(project, [one, two])
    assert [f.status for f in report.files] == ["ingested", "refused"]
    assert "another file named notes.txt" in report.files[1].message and str(one) in report.files[1].message
    text = list(sources_frame(project)["name"])
    assert text == ["notes"]
    with project.connect() as conn:
        stored = conn.execute(select(S.sources.c.text)).scalar_one()
    assert stored == samples.TRANSCRIPT
    # --replace: the first file is unchanged, the second still refused, nothing deleted
    report = ingest_paths(project, [one, two], replace=True)
    assert [f.status for f in report.files] == ["unchanged", "refused"]
    with project.connect() as conn:
        assert conn.execute(select(S.sources.c.text)).scalar_one() == samples.TRANSCRIPT
    # the same path twice is not a clash
    assert [f.status for f in ingest_paths(project, [one, one]).files] == ["unchanged", "unchanged"]
    # a manifest is a batch too
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,kind\ns1/notes.txt,interview\ns2/notes.txt,interview\n", encoding="utf-8")
    report = ingest_manifest(project, manifest, replace=True)
    assert [f.status for f in report.files] == ["unchanged", "refused"]
    assert _count(project, S.sources) == 1

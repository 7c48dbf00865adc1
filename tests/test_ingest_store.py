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

    # a coding on the old version, to show --replace carries it onto the new text
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
    assert _count(project, S.codings) == 1 and _count(project, S.sources) == n_sources
    with project.connect() as conn:
        start, end, text = conn.execute(select(S.codings.c.start, S.codings.c.end, S.sources.c.text)
                                        .join(S.sources, S.sources.c.id == S.codings.c.source_id)).one()
    assert text[start:end] == samples.diary_text()[0:5]
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


def _two_notes(tmp_path):
    """Two different files named notes.txt in two folders."""
    (tmp_path / "s1").mkdir()
    (tmp_path / "s2").mkdir()
    one = tmp_path / "s1" / "notes.txt"
    one.write_text(samples.TRANSCRIPT, encoding="utf-8")
    two = tmp_path / "s2" / "notes.txt"
    two.write_text(samples.TRANSCRIPT.replace("referral", "welcome"), encoding="utf-8")
    return one, two


def _by_path(project):
    with project.connect() as conn:
        return {r.file_path: (r.name, r.text) for r in conn.execute(
            select(S.sources.c.file_path, S.sources.c.name, S.sources.c.text))}


def test_sources_record_the_absolute_path_of_their_file(project, tmp_path, monkeypatch):
    one, _two = _two_notes(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert ingest_paths(project, ["s1/../s1/notes.txt"]).ok  # relative, with ..: stored resolved
    with project.connect() as conn:
        assert conn.execute(select(S.sources.c.file_name, S.sources.c.file_path)).one() == (
            "notes.txt", str(one.resolve()))


def test_same_file_name_in_two_folders_are_two_files_across_runs(project, tmp_path):
    """Sources remember their file's path: a different notes.txt from another folder is a
    new file (its source numbered " #2"), not a changed version of the first."""
    one, two = _two_notes(tmp_path)
    first = ingest_paths(project, [one])
    second = ingest_paths(project, [two])
    assert first.files[0].status == "ingested" and second.files[0].status == "ingested", second.frame()
    assert second.files[0].sources == ["notes #2"]
    assert _by_path(project) == {str(one.resolve()): ("notes", samples.TRANSCRIPT),
                                 str(two.resolve()): ("notes #2", two.read_text(encoding="utf-8"))}
    # both again: unchanged, nothing new
    assert [f.status for f in ingest_paths(project, [one, two]).files] == ["unchanged", "unchanged"]
    assert _count(project, S.sources) == 2


def test_same_file_name_in_two_folders_in_one_batch_or_manifest(project, tmp_path):
    one, two = _two_notes(tmp_path)
    report = ingest_paths(project, [one, two])
    assert [f.status for f in report.files] == ["ingested", "ingested"] and report.ok
    assert sorted(n for n, _t in _by_path(project).values()) == ["notes", "notes #2"]
    # the same path twice is one file
    assert [f.status for f in ingest_paths(project, [one, one]).files] == ["unchanged", "unchanged"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,kind\ns1/notes.txt,interview\ns2/notes.txt,interview\n", encoding="utf-8")
    assert [f.status for f in ingest_manifest(project, manifest, replace=True).files] == ["unchanged", "unchanged"]
    assert _count(project, S.sources) == 2


def test_replace_of_one_notes_txt_does_not_touch_the_other(project, tmp_path):
    one, two = _two_notes(tmp_path)
    assert ingest_paths(project, [one]).ok and ingest_paths(project, [two]).ok
    # a coding on each file's source
    with project.begin() as conn:
        cid = conn.execute(insert(S.codes).values(name="Referral", ord=0, created_at=now())).inserted_primary_key[0]
        for (sid,) in conn.execute(select(S.sources.c.id)).all():
            conn.execute(insert(S.codings).values(code_id=cid, source_id=sid, start=0, end=5, coder="RA",
                                                  origin="manual", created_at=now()))
    changed = samples.TRANSCRIPT.replace("referral", "signposting")
    assert changed[:5] == samples.TRANSCRIPT[:5]
    one.write_text(changed, encoding="utf-8")
    report = ingest_paths(project, [one], replace=True)
    assert report.files[0].status == "replaced" and "replaced 1 older source" in report.files[0].message
    stored = _by_path(project)
    assert stored[str(one.resolve())] == ("notes", changed)  # the old "notes" went first, so the name is free
    assert stored[str(two.resolve())] == ("notes #2", two.read_text(encoding="utf-8"))
    with project.connect() as conn:
        coded = conn.execute(select(S.sources.c.file_path).select_from(
            S.codings.join(S.sources, S.codings.c.source_id == S.sources.c.id))).scalars().all()
    # each file's coding stays on its own source: the replaced one carried onto the new text
    assert sorted(coded) == sorted([str(one.resolve()), str(two.resolve())])
    with project.connect() as conn:
        detail = conn.execute(select(S.audit_log.c.detail).where(S.audit_log.c.action == "ingest.replace")).scalar_one()
    assert str(one.resolve()) in detail


def test_same_path_changed_is_refused_without_replace(project, tmp_path):
    one, two = _two_notes(tmp_path)
    assert ingest_paths(project, [one, two]).ok
    before = _by_path(project)
    one.write_text(samples.TRANSCRIPT.replace("referral", "signposting"), encoding="utf-8")
    report = ingest_paths(project, [one])
    assert report.files[0].status == "refused" and not report.ok
    msg = report.files[0].message
    assert msg.startswith(str(one)) and "different version of notes.txt" in msg and "--replace" in msg
    assert _by_path(project) == before


def _forget_paths(project):
    """Make every source a legacy one (ingested before schema 2: no file_path)."""
    with project.begin() as conn:
        conn.execute(S.sources.update().values(file_path=None))


def test_legacy_sources_without_a_path_are_matched_by_base_name(project, tmp_path):
    one, two = _two_notes(tmp_path)
    assert ingest_paths(project, [one]).ok
    _forget_paths(project)
    # another notes.txt is taken for a changed version of the legacy one (the old rule)
    report = ingest_paths(project, [two])
    assert report.files[0].status == "refused" and "--replace" in report.files[0].message
    assert "before sp_realist recorded folders" in report.files[0].message
    # within one batch, a second different notes.txt is refused outright (it must never replace the sources)
    three = tmp_path / "s3" / "notes.txt"
    three.parent.mkdir()
    three.write_text(samples.TRANSCRIPT.replace("referral", "letter"), encoding="utf-8")
    report = ingest_paths(project, [two, three])
    assert [f.status for f in report.files] == ["refused", "refused"]
    assert "another file named notes.txt" in report.files[1].message and str(two) in report.files[1].message
    assert list(_by_path(project).values()) == [("notes", samples.TRANSCRIPT)]
    # --replace replaces the legacy sources; from then on the path is recorded
    changed = samples.TRANSCRIPT.replace("referral", "signposting")
    one.write_text(changed, encoding="utf-8")
    assert ingest_paths(project, [one], replace=True).files[0].status == "replaced"
    assert _by_path(project) == {str(one.resolve()): ("notes", changed)}
    assert ingest_paths(project, [two]).files[0].status == "ingested"
    assert _count(project, S.sources) == 2


def test_ingesting_a_legacy_file_unchanged_records_its_path(project, tmp_path):
    one, two = _two_notes(tmp_path)
    assert ingest_paths(project, [one]).ok
    _forget_paths(project)
    # the first file, unchanged, claims its legacy sources; the second is then a new file
    report = ingest_paths(project, [one, two], replace=True)
    assert [f.status for f in report.files] == ["unchanged", "ingested"]
    assert "its path is now recorded for 1 source(s)" in report.files[0].message
    assert _by_path(project) == {str(one.resolve()): ("notes", samples.TRANSCRIPT),
                                 str(two.resolve()): ("notes #2", two.read_text(encoding="utf-8"))}
    with project.connect() as conn:
        assert conn.execute(select(func.count()).where(S.audit_log.c.action == "ingest.record_path")).scalar() == 1
    # a copy of the same content elsewhere does not claim sources that already have a path
    copy = tmp_path / "copy" / "notes.txt"
    copy.parent.mkdir()
    copy.write_bytes(one.read_bytes())
    again = ingest_paths(project, [copy])
    assert again.files[0].status == "unchanged" and "recorded" not in again.files[0].message
    assert str(one.resolve()) in again.files[0].message
    assert _by_path(project)[str(one.resolve())] == ("notes", samples.TRANSCRIPT)

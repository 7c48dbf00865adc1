"""Issue 13, "Done when": one archive reproducing every deviation real tools write (a bare file name, an
empty plain text whose .docx holds the text, names repeated under different parents, isCodable="false",
source and code Sets, a user without content, selections and codings without timestamps, uncoded selections
with a note), and import -> export -> import giving back the same code tree (paths), isCodable, sources,
cases, sets, notes and codings as (code path, coder, selected text), byte for byte where the spec allows."""

from __future__ import annotations

import zipfile
from collections import Counter

from defusedxml import ElementTree as DET
from sqlalchemy import select

from exchange_helpers import make_zip, validate_qdpx
from sp_realist import schema as S
from sp_realist.coding.codings import list_codings
from sp_realist.exchange.qdpx_export import export_qdpx
from sp_realist.exchange.qdpx_import import import_qdpx_new
from sp_realist.store import Project
from test_exchange_peers import (BOARD, DOCX_CODE, FOLDER, MINUTES, MINUTES_TEXT, RA, RB, _local, _whole,
                                 peer_archive, qualcoder_read)

OTHER_BOARD, OTHER_AWARE = "c0000000-0000-0000-0000-0000000000a1", "c0000000-0000-0000-0000-0000000000a2"
UNCODED_NOTE, UNCODED_DATED = "5e900000-0000-0000-0000-000000000001", "5e900000-0000-0000-0000-000000000002"
SEL_NOTE = "d0000000-0000-0000-0000-0000000000b1"


def _span(words: str) -> tuple[int, int]:
    start = MINUTES_TEXT.index(words)
    return start, start + len(words)


def deviant_archive(path):
    """The peer archive, plus "other" under two parents (coded by RA with a time and RB without), an uncoded
    selection with a note and no time, and an uncoded selection with a time."""
    base = peer_archive(path.with_name("base.qdpx"))
    with zipfile.ZipFile(base) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    qde = entries["project.qde"].decode("utf-8")
    qde = qde.replace('<Code guid="c0000000-0000-0000-0000-000000000003" name="Finance" isCodable="true"/>',
                      '<Code guid="c0000000-0000-0000-0000-000000000003" name="Finance" isCodable="true"/>'
                      f'<Code guid="{OTHER_BOARD}" name="other" isCodable="true"/>')
    qde = qde.replace(f'<Code guid="{DOCX_CODE}" name="Awareness" isCodable="true"/>',
                      f'<Code guid="{DOCX_CODE}" name="Awareness" isCodable="true">'
                      f'<Code guid="{OTHER_AWARE}" name="other" isCodable="true"/></Code>')
    (a, b), (c, d), (e, f), (g, h) = (_span("finance committee"), _span("met twice"), _span("Minutes 2018"),
                                      _span("The finance"))
    sels = (f'<PlainTextSelection guid="5e800000-0000-0000-0000-000000000001" startPosition="{a}" endPosition="{b}" '
            f'creatingUser="{RA}" creationDateTime="2018-02-01T10:00:00Z"><Coding guid="c4d00000-0000-0000-0000-'
            f'000000000001" creatingUser="{RA}" creationDateTime="2018-02-01T10:00:00Z"><CodeRef targetGUID="'
            f'{OTHER_BOARD}"/></Coding></PlainTextSelection>'
            f'<PlainTextSelection guid="5e800000-0000-0000-0000-000000000002" startPosition="{c}" endPosition="{d}" '
            f'creatingUser="{RB}"><Coding guid="c4d00000-0000-0000-0000-000000000002" creatingUser="{RB}">'
            f'<CodeRef targetGUID="{OTHER_AWARE}"/></Coding></PlainTextSelection>'
            f'<PlainTextSelection guid="{UNCODED_NOTE}" startPosition="{e}" endPosition="{f}" creatingUser="{RA}">'
            f'<NoteRef targetGUID="{SEL_NOTE}"/></PlainTextSelection>'
            f'<PlainTextSelection guid="{UNCODED_DATED}" startPosition="{g}" endPosition="{h}" creatingUser="{RB}" '
            'creationDateTime="2018-02-03T08:30:00Z"/>')
    qde = qde.replace(f'<TextSource guid="{MINUTES}" plainTextPath="Sources\\Minutes_2018.TXT"/>',
                      f'<TextSource guid="{MINUTES}" plainTextPath="Sources\\Minutes_2018.TXT">{sels}</TextSource>')
    qde = qde.replace(" </Notes>", f' <Note guid="{SEL_NOTE}" name="Heading" creatingUser="{RB}"><PlainTextContent>'
                                   'Check the year.</PlainTextContent></Note>\n </Notes>')
    assert qde.count("other") == 2 and UNCODED_NOTE in qde
    entries["project.qde"] = qde.encode("utf-8")
    return make_zip(path, entries)


def _exported_tree(qde: bytes) -> dict[str, tuple[str, str]]:
    """code path -> (GUID, isCodable) as written in a project.qde."""
    root = DET.fromstring(qde)
    out = {}

    def walk(el, prefix):
        for c in el:
            if _local(c.tag) == "Code":
                out[prefix + c.get("name")] = (c.get("guid"), c.get("isCodable"))
                walk(c, prefix + c.get("name") + "/")

    walk(next(e for e in root.iter() if _local(e.tag) == "Codes"), "")
    return out


def test_every_deviation_imports_whole_and_round_trips(place, tmp_path):
    src = deviant_archive(tmp_path / "deviant.qdpx")
    result = import_qdpx_new(src, place("a"))
    assert not result.changes  # nothing renamed: names repeat under different parents
    assert result.counts["codes"] == 6 and result.counts["excerpts"] == 2
    assert "2 selection(s) without codings had no time in the file; none is exported for them" not in result.notes
    assert "1 selection(s) without codings had no time in the file; none is exported for them" in result.notes
    with Project.open(place("a")) as p:
        a = _whole(p)
        assert list_codings(p, code="Board/other")["coder"].tolist() == ["RA"]
        assert list_codings(p, code="Awareness/other")["coder"].tolist() == ["RB"]
        with p.connect() as conn:
            undated = {r.guid: r.dated for r in conn.execute(select(S.codings)) if r.code_id in {
                c for (c,) in conn.execute(select(S.codes.c.id).where(S.codes.c.name == "other"))}}
        export_qdpx(p, tmp_path / "a.qdpx")
    # the code tree by paths, isCodable, the user without content, sets, cases, the .docx text, the bare path
    assert {k: v[0] for k, v in a["codes"].items()} == {
        "Board": False, "Board/Governance": True, "Board/Finance": True, "Board/other": True,
        "Awareness": True, "Awareness/other": True}
    assert a["codings"][("Board/other", "RA", "finance committee")] == 1
    assert a["codings"][("Awareness/other", "RB", "met twice")] == 1
    assert sum(a["codings"].values()) == 206 + 2
    assert undated == {"c4d00000-0000-0000-0000-000000000001": True, "c4d00000-0000-0000-0000-000000000002": False}
    assert a["users"]["Supervisor"] and a["source sets"] and a["code sets"]
    assert a["cases"] == {"Board": {"board_2017", "minutes_2018"}}
    # uncoded selections: their GUIDs, their times as given (absent stays absent), the note on the selection
    assert a["excerpts"] == {("minutes_2018", "Minutes 2018", UNCODED_NOTE, False, None),
                             ("minutes_2018", "The finance", UNCODED_DATED, True, "2018-02-03T08:30:00+00:00")}
    assert a["note targets"][("Heading", "excerpt", "Minutes 2018")] == 1

    qde = validate_qdpx(tmp_path / "a.qdpx")
    with zipfile.ZipFile(src) as zf:
        original = _exported_tree(zf.read("project.qde"))
    assert _exported_tree(qde) == original  # the same hierarchy, names and GUIDs as the peer wrote
    sels = {e.get("guid"): e for e in DET.fromstring(qde).iter() if _local(e.tag) == "PlainTextSelection"}
    assert sels[UNCODED_NOTE].get("creationDateTime") is None
    assert [(_local(c.tag), c.get("targetGUID")) for c in sels[UNCODED_NOTE]] == [("NoteRef", SEL_NOTE)]
    assert sels[UNCODED_DATED].get("creationDateTime") == "2018-02-03T08:30:00Z" and len(sels[UNCODED_DATED]) == 0
    coded = sels["5e800000-0000-0000-0000-000000000002"]
    assert coded.get("creationDateTime") is None and all(c.get("creationDateTime") is None for c in coded)

    import_qdpx_new(tmp_path / "a.qdpx", place("b"))
    with Project.open(place("b")) as p:
        b = _whole(p)
        export_qdpx(p, tmp_path / "b.qdpx")
    assert b == a
    with zipfile.ZipFile(tmp_path / "a.qdpx") as za, zipfile.ZipFile(tmp_path / "b.qdpx") as zb:
        assert za.namelist() == zb.namelist()
        for n in za.namelist():  # byte for byte but for the root element (project name, creation time)
            x, y = za.read(n), zb.read(n)
            if n == "project.qde":
                x, y = x.split(b"\n", 2)[2], y.split(b"\n", 2)[2]
            assert x == y, n

    # QualCoder's reading rules (coder per selection, notes from files) keep every coding and note
    got, notes = qualcoder_read(tmp_path / "a.qdpx")
    assert got == a["codings"] and sum(got.values()) == 208
    assert Counter(notes) == Counter({("Codebook memo", "Split governance from finance."): 1,
                                      ("Heading", "Check the year."): 1})


def test_a_folder_and_board_source_keep_their_guids(place, tmp_path):
    import_qdpx_new(deviant_archive(tmp_path / "d.qdpx"), place("a"))
    with Project.open(place("a")) as p, p.connect() as conn:
        assert conn.execute(select(S.codes.c.guid).where(S.codes.c.name == "Board")).scalar() == FOLDER
        assert conn.execute(select(S.sources.c.guid).where(S.sources.c.name == "board_2017")).scalar() == BOARD


def test_a_coding_imported_without_a_time_lists_none(place, tmp_path):
    import_qdpx_new(deviant_archive(tmp_path / "d.qdpx"), place("a"))
    with Project.open(place("a")) as p:
        df = list_codings(p, code="Awareness/other").iloc[0]
        assert df["created_at"] is None
        assert list_codings(p, code="Board/other").iloc[0]["created_at"] == "2018-02-01T10:00:00+00:00"


def test_memos_on_excerpts_from_the_command_line(place, tmp_path):
    from click.testing import CliRunner

    from sp_realist.cli import main

    import_qdpx_new(deviant_archive(tmp_path / "d.qdpx"), place("a"))
    with Project.open(place("a")) as p, p.connect() as conn:
        xid = conn.execute(select(S.excerpts.c.id).where(S.excerpts.c.guid == UNCODED_DATED)).scalar()
    run = CliRunner().invoke
    p = ["-p", str(place("a"))]
    r = run(main, ["memo", "add", "The heading is the year.", "--excerpt", str(xid), "--author", "RA", *p])
    assert r.exit_code == 0, r.output
    r = run(main, ["memo", "list", "--format", "csv", *p])
    assert "excerpt,minutes_2018 13:24,,The heading is the year.,RA" in r.stdout
    assert "excerpt,minutes_2018 0:12,Heading,Check the year.,RB" in r.stdout
    r = run(main, ["memo", "add", "x", "--excerpt", "999", *p])
    assert r.exit_code == 1 and "No excerpt '999' in the project" in r.stderr


def test_a_note_on_a_selection_whose_codings_name_missing_codes_goes_on_the_source(place, tmp_path):
    """Such a selection makes neither a coding nor an excerpt (its codings are reported); its note is kept
    on the source."""
    qdpx = deviant_archive(tmp_path / "d.qdpx")
    with zipfile.ZipFile(qdpx) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries["project.qde"] = entries["project.qde"].replace(
        f'<NoteRef targetGUID="{SEL_NOTE}"/></PlainTextSelection>'.encode(),
        f'<Coding guid="c5d00000-0000-0000-0000-000000000001" creatingUser="{RA}"><CodeRef targetGUID="'
        f'c0000000-0000-0000-0000-0000000000ff"/></Coding><NoteRef targetGUID="{SEL_NOTE}"/>'
        '</PlainTextSelection>'.encode())
    result = import_qdpx_new(make_zip(tmp_path / "m.qdpx", entries), place("m"))
    assert "1 coding(s) refer to codes that are not in the codebook and were skipped" in result.losses
    with Project.open(place("m")) as p:
        assert _whole(p)["note targets"][("Heading", "source", None)] == 1

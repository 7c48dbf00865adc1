"""Importing REFI-QDA projects from other tools: Annex A examples and known deviations."""

from __future__ import annotations

import io

import docx
import pytest
from defusedxml import ElementTree as DET
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exchange_helpers import DATA, build_sample, make_zip, snapshot, zip_folder
from conftest import project_exists
from sp_realist import schema as S
from sp_realist.exchange import positions as P
from sp_realist.exchange import qdpx_apply
from sp_realist.exchange.qdpx_import import import_qdpx, import_qdpx_new, read_qdpx
from sp_realist.store import Project


def _codings(project):
    with project.connect() as conn:
        rows = conn.execute(select(S.sources.c.name, S.sources.c.text, S.codes.c.name.label("code"), S.codings.c.start,
                                   S.codings.c.end, S.codings.c.coder)
                            .select_from(S.codings.join(S.sources, S.codings.c.source_id == S.sources.c.id)
                                         .join(S.codes, S.codings.c.code_id == S.codes.c.id))).mappings().all()
    return [dict(r, quote=r["text"][r["start"]:r["end"]]) for r in rows]


def _local(tag):
    return tag.rsplit("}", 1)[-1]


# --- Annex A -------------------------------------------------------------------
def test_annex_a2_atlas_ti_project_imports(place, tmp_path):
    folder = DATA / "annex-a2"
    qdpx = zip_folder(folder, tmp_path / "atlas.qdpx")
    root = DET.fromstring((folder / "Project.qde").read_bytes())
    text_parents = [el for el in root.iter() if _local(el.tag) in ("TextSource", "Representation", "Transcript")
                    and el.get("plainTextPath")]
    expected_sources = len({el.get("plainTextPath").lower() for el in text_parents})
    named = {}
    expected_codings = 0
    for el in text_parents:
        for sel in el:
            if _local(sel.tag) == "PlainTextSelection":
                n = sum(_local(c.tag) == "Coding" for c in sel)
                expected_codings += n
                if n:
                    named[(int(sel.get("startPosition")), int(sel.get("endPosition")))] = sel.get("name")
    n_codes = sum(1 for el in root.iter() if _local(el.tag) == "Code")

    result = import_qdpx_new(qdpx, place("atlas"))
    assert result.counts["sources"] == expected_sources
    assert result.counts["codings"] == expected_codings
    assert result.counts["codes"] == n_codes
    assert any("picture" in line for line in result.losses)
    assert any("Project.qde" in line for line in result.notes)
    with Project.open(place("atlas")) as p:
        rows = _codings(p)
        assert len(rows) == expected_codings
        users = {r["coder"] for r in rows}
        assert users == {"Friedrich Markgraf"}
        checked = 0
        for r in rows:
            name = named[(r["start"], r["end"])]
            quote = name[:-1] if name.endswith("…") else name
            if quote.startswith(("Quotation", "damage done")):
                continue
            assert " ".join(r["quote"].split()).startswith(" ".join(quote.split()))
            checked += 1
        assert checked >= 5
        with p.connect() as conn:
            themes = {r[0] for r in conn.execute(select(S.themes.c.name))}
            notes = {r[0] for r in conn.execute(select(S.memos.c.title))}
            files = set(conn.execute(select(S.sources.c.file_name, S.sources.c.file_path)).all())
        assert {"Breakfast food", "negative feelings", "positive feelings"} <= themes
        # imported sources name the .qdpx they came from but no ingested file path
        assert files == {("atlas.qdpx", None)}
        assert {"Research Plan", "My favorite Coke ad"} <= notes


def test_annex_a3_transana_project_with_old_namespace_imports(place, tmp_path):
    folder = DATA / "annex-a3"
    qdpx = zip_folder(folder, tmp_path / "transana.qdpx")
    root = DET.fromstring((folder / "Project.qde").read_bytes())
    ts = [el for el in root.iter() if _local(el.tag) == "TextSource"]
    # codings on selections and on whole sources
    expected = sum(1 for t in ts for sel in t if _local(sel.tag) == "PlainTextSelection"
                   for c in sel if _local(c.tag) == "Coding") + sum(1 for t in ts for c in t if _local(c.tag) == "Coding")
    result = import_qdpx_new(qdpx, place("transana"))
    assert any("urn:QDA-XML:project:0:10" in line for line in result.notes)
    assert result.counts["codings"] >= expected
    with Project.open(place("transana")) as p:
        rows = _codings(p)
        whole = [r for r in rows if r["start"] == 0 and r["end"] == len(r["text"])]
        assert whole  # codings directly on a TextSource cover the whole source
        with p.connect() as conn:
            codes = {r[0] for r in conn.execute(select(S.codes.c.name))}
            parents = conn.execute(select(func.count()).select_from(S.codes).where(S.codes.c.parent_id.is_not(None))).scalar()
            sets = conn.execute(select(S.source_set_members.c.source_id)).all()
            assert not conn.execute(select(S.source_attributes).where(S.source_attributes.c.name == "refi_sets")).all()
        assert "中文-简体 关键词 1" in codes and "Français Mot-clé 1" in codes
        assert parents >= 6
        assert sets  # Transana's MemberSource guid="..." variant was understood


# --- deviations ------------------------------------------------------------------
def _qde(sources: str, codes: str = "", users: str = "", extra: str = "", ns="urn:QDA-XML:project:1.0") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Project xmlns="{ns}" name="t" origin="OtherTool 1.0">'
            f'{users}<CodeBook><Codes>{codes}</Codes></CodeBook><Sources>{sources}</Sources>{extra}</Project>')


CODE = '<Code guid="11111111-1111-1111-1111-111111111111" name="Referral" isCodable="true"/>'
CODE_REF = '<Coding guid="{g}"><CodeRef targetGUID="11111111-1111-1111-1111-111111111111"/></Coding>'
USER = '<Users><User guid="22222222-2222-2222-2222-222222222222" name="Coder A"/></Users>'


def _sel(i: int, start: int, end: int, name: str | None = None) -> str:
    nm = f' name="{name}"' if name else ""
    return (f'<PlainTextSelection guid="33333333-3333-3333-3333-{i:012d}" startPosition="{start}" '
            f'endPosition="{end}"{nm} creatingUser="22222222-2222-2222-2222-222222222222">'
            + CODE_REF.format(g=f"44444444-4444-4444-4444-{i:012d}") + "</PlainTextSelection>")


def _units(text: str, pos: int, conv: str) -> int:
    head = text[:pos]
    return {"utf16": len(head.encode("utf-16-le")) // 2, "utf8": len(head.encode("utf-8")),
            "crlf-as-one": len(head.replace("\r\n", "\n")), "lf-as-two": len(head.replace("\n", "\r\n")),
            "codepoints+bom": pos + 1, "codepoints": pos}[conv]


TEXT_EMOJI = "Intro 😕😕 line\r\nS1 DK1: reception staff didn't know 🙂 about it\r\nS2: the forms went missing 📄\r\n"
QUOTES = ["reception staff didn't know", "the forms went missing"]


@pytest.mark.parametrize("conv", ["utf16", "utf8", "crlf-as-one", "codepoints+bom"])
@pytest.mark.parametrize("with_names", [True, False])
def test_positions_counted_differently_are_detected_and_converted(place, tmp_path, conv, with_names):
    text = TEXT_EMOJI + "tail " * 3
    sels = []
    for i, q in enumerate(QUOTES):
        a = text.index(q)
        sels.append(_sel(i, _units(text, a, conv), _units(text, a + len(q), conv), q if with_names else None))
    data = text.encode("utf-8")
    if conv == "codepoints+bom":
        data = b"\xef\xbb\xbf" + data
    src = ('<TextSource guid="55555555-5555-5555-5555-555555555555" name="Interview" '
           'plainTextPath="internal://55555555-5555-5555-5555-555555555555.txt">' + "".join(sels) + "</TextSource>")
    qdpx = make_zip(tmp_path / "t.qdpx", {"project.qde": _qde(src, CODE, USER),
                                           "sources/55555555-5555-5555-5555-555555555555.txt": data})
    plan = read_qdpx(qdpx)
    got = sorted(plan.sources[0].text[s.span[0]:s.span[1]] for s in plan.sources[0].sels if s.span)
    assert got == sorted(QUOTES), (conv, plan.sources[0].convention)
    assert plan.sources[0].convention == conv
    result = import_qdpx_new(qdpx, place("t"))
    assert any(P.DESCRIPTIONS[conv] in n for n in result.notes)
    with Project.open(place("t")) as p:
        rows = _codings(p)
    assert sorted(r["quote"] for r in rows) == sorted(QUOTES)
    assert {r["coder"] for r in rows} == {"Coder A"}
    assert rows[0]["text"] == text  # the source text itself is not altered (BOM aside)


def test_selection_off_the_text_is_reported_not_crashed(place, tmp_path):
    text = "short text"
    src = ('<TextSource guid="55555555-5555-5555-5555-555555555555" name="S" '
           'plainTextPath="internal://55555555-5555-5555-5555-555555555555.txt">' + _sel(1, 0, 5) + _sel(2, 3, 400)
           + "</TextSource>")
    qdpx = make_zip(tmp_path / "t.qdpx", {"project.qde": _qde(src, CODE, USER),
                                           "sources/55555555-5555-5555-5555-555555555555.txt": text})
    result = import_qdpx_new(qdpx, place("t"))
    assert result.counts["codings"] == 1
    assert any("fall outside" in line for line in result.losses)


def test_docx_only_source_bom_and_odd_names(place, tmp_path):
    d = docx.Document()
    paras = ["Diary entry, week one.", "I wasn't told what clients I was seeing.", "Ask for an induction."]
    for para in paras:
        d.add_paragraph(para)
    buf = io.BytesIO()
    d.save(buf)
    text = "\n".join(paras)
    quote = "I wasn't told what clients I was seeing"
    a = text.index(quote)
    src = ('<TextSource guid="66666666-6666-6666-6666-666666666666" '
           'richTextPath="internal://66666666-6666-6666-6666-666666666666.docx">'
           + _sel(1, a, a + len(quote)) + "</TextSource>"
           '<TextSource guid="77777777-7777-7777-7777-777777777777" name="Plain" '
           'plainTextPath="internal://77777777-7777-7777-7777-777777777777.txt">' + _sel(2, 0, 5) + "</TextSource>")
    qde = b"\xef\xbb\xbf" + _qde(src, CODE, USER).encode("utf-8")
    qdpx = make_zip(tmp_path / "odd.qdpx", {
        "Export/My Project.QDE": qde,
        "Export/Sources/66666666-6666-6666-6666-666666666666.DOCX": buf.getvalue(),
        "Export/Sources/77777777-7777-7777-7777-777777777777.TXT": b"\xef\xbb\xbfHello world",
    })
    result = import_qdpx_new(qdpx, place("odd"))
    assert result.counts["sources"] == 2 and result.counts["codings"] == 2
    assert any("python-docx" in n for n in result.notes)
    assert any("My Project.QDE" in n for n in result.notes)
    with Project.open(place("odd")) as p:
        rows = {r["source"] if "source" in r else r["name"]: r for r in _codings(p)}
        with p.connect() as conn:
            names = {r[0]: r[1] for r in conn.execute(select(S.sources.c.name, S.sources.c.text))}
    docx_name = next(n for n in names if n != "Plain")
    assert names[docx_name] == text
    assert rows[docx_name]["quote"] == quote
    assert names["Plain"] == "Hello world" and rows["Plain"]["quote"] == "Hello"


def test_missing_optional_attributes_and_inline_text(place, tmp_path):
    src = ('<TextSource guid="88888888-8888-8888-8888-888888888888">'
           '<PlainTextContent>Inline text only.</PlainTextContent>'
           '<PlainTextSelection guid="99999999-9999-9999-9999-999999999999" startPosition="0" endPosition="6">'
           '<Coding guid="aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"><CodeRef targetGUID="11111111-1111-1111-1111-111111111111"/>'
           '</Coding></PlainTextSelection></TextSource>')
    notes = ('<Notes><Note guid="bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"><PlainTextContent>A note</PlainTextContent>'
             '</Note></Notes>')
    qdpx = make_zip(tmp_path / "m.qdpx", {"project.qde": _qde(src, CODE, "", notes)})
    result = import_qdpx_new(qdpx, place("m"))
    assert result.counts["codings"] == 1 and result.counts["notes"] == 1
    with Project.open(place("m")) as p:
        rows = _codings(p)
        assert rows[0]["quote"] == "Inline" and rows[0]["coder"] == "imported"


def test_into_existing_project_is_untouched_when_import_fails(place, project, tmp_path, monkeypatch):
    build_sample(project)
    from sp_realist.exchange.qdpx_export import export_qdpx

    export_qdpx(project, tmp_path / "s.qdpx")
    fresh = place("other")
    import_qdpx_new(tmp_path / "s.qdpx", fresh)
    # a different project receives the import; make it fail after codes and sources are written
    other = Project.create(place("target"))
    before = snapshot(other)
    with other.connect() as conn:
        log_before = conn.execute(select(func.count()).select_from(S.audit_log)).scalar()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(qdpx_apply, "apply_themes", boom)  # the plan is applied by qdpx_apply
    with pytest.raises(RuntimeError):
        import_qdpx(tmp_path / "s.qdpx", other)
    assert snapshot(other) == before
    with other.connect() as conn:
        assert conn.execute(select(func.count()).select_from(S.audit_log)).scalar() == log_before
    # a new project is not left behind either
    with pytest.raises(RuntimeError):
        import_qdpx_new(tmp_path / "s.qdpx", place("new"))
    assert not project_exists(place("new"))
    other.close()


# --- the position conversions themselves (property) --------------------------------
ALPHA = st.sampled_from(list("ab \n.") + ["\r\n", "é", "😕", "中", "𝒜"])


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(ALPHA, min_size=2, max_size=40), data=st.data())
def test_every_convention_maps_back_to_the_same_text(parts, data):
    text = "".join(parts)
    a = data.draw(st.integers(0, len(text) - 1))
    b = data.draw(st.integers(a + 1, len(text)))
    # keep spans on boundaries every convention can express (not inside a CRLF pair)
    if text[a - 1:a + 1] == "\r\n" or text[b - 1:b + 1] == "\r\n":
        return
    for conv in P.applicable(text, has_bom=True):
        if conv == P.LF_AS_TWO and "\r" in text:
            continue
        s, e = _units(text, a, conv), _units(text, b, conv)
        mapped = P.convert(text, [P.Sel(0, s, e)], conv)[0]
        assert mapped == (a, b), conv
        assert P.verify(text, (a, b), s, e, conv)
        if (a, b) != (0, len(text)) and len(text) > 1:  # a wrong span does not verify
            other = (a, b + 1) if b < len(text) else (a + 1, b) if a + 1 < b else None
            splits_crlf = other and any(text[i - 1:i + 1] == "\r\n" for i in other)
            if other and not splits_crlf and text[other[0]:other[1]] != text[a:b]:
                assert not P.verify(text, other, s, e, conv)


def test_mid_surrogate_and_mid_character_positions_are_rejected():
    text = "a😕b"
    assert P.convert(text, [P.Sel(0, 0, 2)], P.UTF16)[0] is None  # inside the surrogate pair
    assert P.convert(text, [P.Sel(0, 0, 3)], P.UTF8)[0] is None  # inside the 4-byte character
    assert P.convert(text, [P.Sel(0, 1, 3)], P.UTF16)[0] == (1, 2)


def test_standard_positions_are_kept_without_contrary_evidence():
    text = "Le café 😕 était fermé; the referral forms\nwent missing."
    # a mid-word selection (legitimate in some tools) that no other counting makes cleaner
    a = text.index("eferral")
    res = P.resolve(text, [P.Sel(0, a, a + 7)])
    assert res.convention == P.CODEPOINTS and res.spans[0] == (a, a + 7)
    # files sp_realist wrote are always read as code points
    b = text.index("forms")
    res = P.resolve(text, [P.Sel(0, b + 1, b + 6)], trust_standard=True)
    assert res.convention == P.CODEPOINTS and not res.ambiguous


def test_into_keeps_existing_values_and_renames_clashing_sources(project, tmp_path):
    from sp_realist.sources import Segment, SourceDraft, add_source, ensure_participant, set_attribute

    with project.begin() as conn:
        add_source(conn, SourceDraft(name="Interview", kind="interview", text="our own text",
                                     segments=[Segment(0, 12)], checksum="x"))
        pid = ensure_participant(conn, "S1 DK1", role="link worker")
        set_attribute(conn, "participant", pid, "gender", "female")
    var = '<Variables><Variable guid="cccccccc-cccc-cccc-cccc-cccccccccccc" name="gender" typeOfVariable="Text"/></Variables>'
    cases = ('<Cases><Case guid="dddddddd-dddd-dddd-dddd-dddddddddddd" name="S1 DK1"><VariableValue>'
             '<VariableRef targetGUID="cccccccc-cccc-cccc-cccc-cccccccccccc"/><TextValue>male</TextValue></VariableValue>'
             '<SourceRef targetGUID="55555555-5555-5555-5555-555555555555"/></Case></Cases>')
    src = ('<TextSource guid="55555555-5555-5555-5555-555555555555" name="Interview">'
           '<PlainTextContent>their text</PlainTextContent>' + _sel(1, 0, 5) + "</TextSource>")
    qde = (f'<?xml version="1.0"?><Project xmlns="urn:QDA-XML:project:1.0" name="t">{USER}'
           f'<CodeBook><Codes>{CODE}</Codes></CodeBook>{var}{cases}<Sources>{src}</Sources></Project>')
    result = import_qdpx(make_zip(tmp_path / "c.qdpx", {"project.qde": qde}), project)
    assert any("differ from the participant's existing attribute" in line for line in result.losses)
    assert any("with a number added" in n for n in result.notes)
    with project.connect() as conn:
        texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
        attrs = dict(conn.execute(select(S.participant_attributes.c.name, S.participant_attributes.c.value)).all())
        linked = conn.execute(select(S.sources.c.participant_id).where(S.sources.c.name == "Interview (2)")).scalar()
    assert texts == {"Interview": "our own text", "Interview (2)": "their text"}
    assert attrs == {"gender": "female"}  # the project's value is kept
    assert linked == pid
    assert [r["quote"] for r in _codings(project)] == ["their"]


def test_identifiers_that_are_not_guids_keep_their_references(place, tmp_path):
    """Some tools (and hand-written files) use ids like "c1": the codings that refer
    to them must still find their code and user, not be dropped."""
    qde = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="hand">
 <Users><User guid="u1" name="RB"/></Users>
 <CodeBook><Codes><Code guid="c1" name="Greeting" isCodable="true"><Code guid="c2" name="Place"/></Code></Codes>
 </CodeBook>
 <Sources>
  <TextSource guid="s1" name="plain" plainTextPath="internal://s1.txt">
   <PlainTextSelection guid="p1" startPosition="0" endPosition="5" creatingUser="u1">
    <Coding guid="k1" creatingUser="u1"><CodeRef targetGUID="c1"/></Coding></PlainTextSelection>
   <PlainTextSelection guid="p2" startPosition="6" endPosition="11" creatingUser="u1">
    <Coding guid="k2" creatingUser="u1"><CodeRef targetGUID="c2"/></Coding></PlainTextSelection>
  </TextSource>
 </Sources>
</Project>"""
    path = make_zip(tmp_path / "hand.qdpx", {"project.qde": qde, "sources/s1.txt": "Hello world, again"})
    result = import_qdpx_new(path, place("hand"))
    assert result.counts["codings"] == 2
    assert not any("code reference" in line or "not in the codebook" in line for line in result.losses)
    assert any("not GUIDs" in line for line in result.notes)
    with Project.open(place("hand")) as p:
        got = sorted((c["code"], c["quote"], c["coder"]) for c in _codings(p))
        with p.connect() as conn:
            guids = [r[0] for r in conn.execute(select(S.codes.c.guid)).all()]
    assert got == [("Greeting", "Hello", "RB"), ("Place", "world", "RB")]
    assert all(len(g) == 36 for g in guids)
    # deterministic: the same file gives the same GUIDs
    again = import_qdpx_new(path, place("again"))
    assert again.counts["codings"] == 2
    with Project.open(place("again")) as p:
        with p.connect() as conn:
            assert sorted(r[0] for r in conn.execute(select(S.codes.c.guid)).all()) == sorted(guids)

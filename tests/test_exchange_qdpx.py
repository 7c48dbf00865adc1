"""REFI-QDA project export: XSD validity, exact positions, stable bytes, round trips."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

from defusedxml import ElementTree as DET
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy import text as sql_text

from conftest import examples
from exchange_helpers import DATA, build_sample, schema, snapshot, validate_qdpx
from sp_realist import schema as S
from sp_realist.exchange.qdpx_export import export_qdpx, qde_bytes
from sp_realist.exchange.qdpx_import import import_qdpx, import_qdpx_new
from sp_realist.sources import Segment, SourceDraft, add_source, ensure_participant
from sp_realist.store import Project

NS = "{urn:QDA-XML:project:1.0}"


def semantic(path) -> dict:
    """What an export says, by names and texts (GUIDs resolved), for round-trip comparison."""
    with zipfile.ZipFile(path) as zf:
        root = DET.fromstring(zf.read("project.qde"))
        files = {n: zf.read(n).decode("utf-8") for n in zf.namelist() if n.startswith("sources/")}
    users = {u.get("guid"): u.get("name") for u in root.iter(f"{NS}User")}
    variables = {v.get("guid"): v.get("name") for v in root.iter(f"{NS}Variable")}
    codes, code_names = set(), {}

    def walk(el, parent):
        for c in el.findall(f"{NS}Code"):
            code_names[c.get("guid")] = c.get("name")
            codes.add((c.get("name"), parent, c.findtext(f"{NS}Description"), c.get("color")))
            walk(c, c.get("name"))

    walk(root.find(f"{NS}CodeBook/{NS}Codes"), None)

    def values(el):
        return tuple(sorted((variables[v.find(f"{NS}VariableRef").get("targetGUID")], v.findtext(f"{NS}TextValue"))
                            for v in el.findall(f"{NS}VariableValue")))

    sources, codings, source_names = set(), set(), {}
    for s in root.iter(f"{NS}TextSource"):
        text = files["sources/" + s.get("plainTextPath").split("internal://")[1]]
        source_names[s.get("guid")] = s.get("name")
        sources.add((s.get("name"), text, values(s)))
        for sel in s.findall(f"{NS}PlainTextSelection"):
            a, b = int(sel.get("startPosition")), int(sel.get("endPosition"))
            for c in sel.findall(f"{NS}Coding"):
                codings.add((s.get("name"), code_names[c.find(f"{NS}CodeRef").get("targetGUID")], a, b,
                             users[c.get("creatingUser")], text[a:b]))
    cases = {(c.get("name"), values(c), tuple(sorted(source_names[r.get("targetGUID")] for r in c.findall(f"{NS}SourceRef"))))
             for c in root.iter(f"{NS}Case")}
    notes = {(n.get("name"), n.findtext(f"{NS}PlainTextContent"), users.get(n.get("creatingUser")))
             for n in root.iter(f"{NS}Note")}
    return {"codes": codes, "sources": sources, "codings": codings, "cases": cases, "notes": notes}


def case_guids(path) -> dict:
    """Case name -> GUID in an export."""
    with zipfile.ZipFile(path) as zf:
        root = DET.fromstring(zf.read("project.qde"))
    return {c.get("name"): c.get("guid") for c in root.iter(f"{NS}Case")}


def test_export_is_valid_and_selections_select_the_coded_text(project, tmp_path):
    build_sample(project)
    out = tmp_path / "mind.qdpx"
    result = export_qdpx(project, out)
    qde = validate_qdpx(out)
    root = DET.fromstring(qde)
    assert root.tag == f"{NS}Project"
    with project.connect() as conn:
        n_codings = len(conn.execute(select(S.codings)).all())
        expected = {(r.name, r.text[r.start:r.end]) for r in conn.execute(
            select(S.sources.c.name, S.sources.c.text, S.codings.c.start, S.codings.c.end)
            .select_from(S.codings.join(S.sources, S.codings.c.source_id == S.sources.c.id)))}
    assert result.counts["codings"] == n_codings
    sem = semantic(out)
    assert {(c[0], c[5]) for c in sem["codings"]} == expected
    # every coding has its coder and date; themes, CMOCs and theories are there
    for c in root.iter(f"{NS}Coding"):
        assert c.get("creatingUser") and c.get("creationDateTime")
    assert {s.get("name") for s in root.iter(f"{NS}Set")} >= {"Getting started", "CMOC T1.1", "CMOC T1.2"}
    links = [l for l in root.iter(f"{NS}Link") if l.get("name", "").startswith("T1.1:")]
    assert [l.get("direction") for l in links] == ["OneWay", "OneWay"]  # C -> M -> O
    graph = root.find(f"{NS}Graphs/{NS}Graph")
    assert graph.get("name").startswith("T1:") and len(graph.findall(f"{NS}Vertex")) == 2
    assert len(graph.findall(f"{NS}Edge")) == 1
    # the emoji-bearing selection is counted in code points
    with zipfile.ZipFile(out) as zf:
        assert all(zf.getinfo(n).date_time == (1980, 1, 1, 0, 0, 0) for n in zf.namelist())
    assert any("segment" in line for line in result.losses)
    with zipfile.ZipFile(out) as zf:
        seg = json.loads(zf.read("sp_realist/segments.json"))
    with project.connect() as conn:
        assert sum(len(v) for v in seg["segments"].values()) == len(conn.execute(select(S.segments)).all())


def test_segments_that_do_not_fit_fall_back_to_paragraphs(place, project, tmp_path):
    build_sample(project)
    out = tmp_path / "s.qdpx"
    export_qdpx(project, out)
    with zipfile.ZipFile(out) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    data = json.loads(entries["sp_realist/segments.json"])
    for rows in data["segments"].values():
        rows[0][1] += 3  # no longer tiles the text
    entries["sp_realist/segments.json"] = json.dumps(data).encode()
    bad = tmp_path / "bad.qdpx"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    result = import_qdpx_new(bad, place("bad"))
    assert any("do not fit" in n for n in result.notes)
    with Project.open(place("bad")) as p, p.connect() as conn:
        for sid, text in conn.execute(select(S.sources.c.id, S.sources.c.text)).all():
            segs = conn.execute(select(S.segments.c.start, S.segments.c.end).where(S.segments.c.source_id == sid)
                                .order_by(S.segments.c.ord)).all()
            assert "".join(text[a:b] for a, b in segs) == text


GOLDEN = DATA / "golden-sample.qde"


def test_golden_project_qde(project, tmp_path):
    """The exported document, byte for byte (regenerate with SP_REALIST_REGEN_GOLDEN=1)."""
    import os

    from sqlalchemy import update

    build_sample(project)
    with project.begin() as conn:  # pin what varies between runs: the project id and creation times
        conn.execute(update(S.meta).where(S.meta.c.key == "project_id").values(value="golden-project"))
        conn.execute(update(S.meta).where(S.meta.c.key == "created_at").values(value="2020-01-01T00:00:00+00:00"))
        conn.execute(update(S.sources).values(created_at="2020-01-01T00:00:00+00:00"))
    qde = qde_bytes(project, "golden")
    if os.environ.get("SP_REALIST_REGEN_GOLDEN"):
        GOLDEN.write_bytes(qde)
    schema("Project.xsd").validate(io.BytesIO(qde))
    assert qde == GOLDEN.read_bytes()


def test_exports_of_an_unchanged_project_are_byte_identical(project, tmp_path):
    build_sample(project)
    export_qdpx(project, tmp_path / "a.qdpx")
    export_qdpx(project, tmp_path / "b.qdpx")
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()


def test_export_refuses_to_overwrite(project, tmp_path):
    out = tmp_path / "x.qdpx"
    out.write_bytes(b"keep me")
    import pytest

    from sp_realist.errors import SpRealistError

    with pytest.raises(SpRealistError, match="already exists"):
        export_qdpx(project, out)
    assert out.read_bytes() == b"keep me"
    export_qdpx(project, out, force=True)
    validate_qdpx(out)


def test_round_trip_export_import_export(place, project, tmp_path):
    build_sample(project)
    first = tmp_path / "first.qdpx"
    export_qdpx(project, first)
    result = import_qdpx_new(first, place("back"))
    assert result.counts["codings"] == 5 and result.counts["sources"] == 2 and result.counts["cases"] == 2
    assert result.counts["cmocs"] == 2 and result.counts["evidence"] == 3 and result.counts["theories"] == 1
    with Project.open(place("back")) as back:
        second = tmp_path / "second.qdpx"
        export_qdpx(back, second)
        validate_qdpx(second)
        a, b = semantic(first), semantic(second)
        for key in ("codes", "sources", "codings", "cases", "notes"):
            assert a[key] == b[key], key
        # cases keep their GUIDs: the import stores them on the participants
        assert len(case_guids(first)) == 2 and case_guids(first) == case_guids(second)
        with back.connect() as conn:
            stored = dict(conn.execute(select(S.participants.c.code, S.participants.c.guid)).all())
        assert stored == case_guids(first)
        # and the store itself: same codes, sources, codings, cases
        sa, sb = snapshot(project), snapshot(back)
        for key in ("codes", "sources", "codings", "cases", "themes"):
            assert sa[key] == sb[key], key
        assert realist(project) == realist(back)
        assert len(realist(back)["evidence"]) == 3 and len(realist(back)["appraisals"]) == 2
        assert segments(project) == segments(back)  # restored from sp_realist/segments.json
        # sources keep their GUIDs and creation times: their elements are identical in both exports
        with project.connect() as c1, back.connect() as c2:
            q = select(S.sources.c.name, S.sources.c.created_at)
            assert dict(c1.execute(q).all()) == dict(c2.execute(q).all())
        with zipfile.ZipFile(first) as z1, zipfile.ZipFile(second) as z2:
            l1, l2 = (z.read("project.qde").decode().splitlines() for z in (z1, z2))
        assert [x for x in l1 if "<TextSource " in x] == [x for x in l2 if "<TextSource " in x]
        assert len([x for x in l1 if "<TextSource " in x]) == 2


def segments(project) -> set:
    with project.connect() as conn:
        names = dict(conn.execute(select(S.sources.c.id, S.sources.c.name)).all())
        codes = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        return {(names[r.source_id], r.ord, r.start, r.end, r.kind, r.speaker, r.section, codes.get(r.participant_id))
                for r in conn.execute(select(S.segments))}


def realist(project) -> dict:
    with project.connect() as conn:
        cm = {r["id"]: r for r in conn.execute(select(S.cmocs)).mappings()}
        th = conn.execute(select(S.theories)).mappings().all()
        tc = conn.execute(select(S.theory_cmocs).order_by(S.theory_cmocs.c.ord)).mappings().all()
        rel = conn.execute(select(S.cmoc_relations)).mappings().all()
        aps = conn.execute(select(S.appraisals, S.excerpts.c.start, S.excerpts.c.end).select_from(
            S.appraisals.join(S.excerpts, S.appraisals.c.excerpt_id == S.excerpts.c.id))).all()
        ev = conn.execute(select(S.cmoc_evidence.c.cmoc_id, S.cmoc_evidence.c.role, S.cmoc_evidence.c.component,
                                 S.cmoc_evidence.c.analyst, S.cmoc_evidence.c.note, S.excerpts.c.start,
                                 S.excerpts.c.end).select_from(S.cmoc_evidence.join(
                                     S.excerpts, S.cmoc_evidence.c.excerpt_id == S.excerpts.c.id))).all()
    return {
        "cmocs": {(c["key"], c["context"] or None, c["mechanism_resource"] or None, c["mechanism_response"] or None,
                   c["outcome"] or None, c["status"], c["confidence"], c["memo"]) for c in cm.values()},
        "theories": {(t["key"], t["title"], t["description"], t["questions"],
                      tuple(cm[x["cmoc_id"]]["key"] for x in tc if x["theory_id"] == t["id"])) for t in th},
        "relations": {(cm[r["from_id"]]["key"], cm[r["to_id"]]["key"], r["kind"]) for r in rel},
        "evidence": {(cm[r.cmoc_id]["key"], r.start, r.end, r.role, r.component, r.analyst, r.note) for r in ev},
        "appraisals": {(r.start, r.end, r.analyst, r.relevance, r.trust, r.trust_rationale, r.interpretation,
                        r.cmoc_judgement, cm[r.cmoc_id]["key"] if r.cmoc_id else None, r.theory_id is not None,
                        r.theory_change, r.theory_note, r.saturation_note, r.note) for r in aps},
    }


def test_import_into_the_same_project_adds_nothing(project, tmp_path):
    build_sample(project)
    out = tmp_path / "p.qdpx"
    export_qdpx(project, out)
    before = snapshot(project)
    result = import_qdpx(out, project)
    after = snapshot(project)
    assert before == after
    assert result.counts["codings"] == 0 and result.counts["sources"] == 0


def test_import_keeps_case_guids_on_matched_participants(place, project, tmp_path):
    build_sample(project)
    out = tmp_path / "p.qdpx"
    export_qdpx(project, out)
    guids = case_guids(out)
    other = "0f0f0f0f-0000-4000-8000-000000000001"
    with Project.create(place("other")) as p:
        with p.begin() as conn:  # S1 DK1 exists without a GUID, S2 DK1 with its own
            conn.execute(insert(S.participants).values(code="S1 DK1", created_at="2020-01-01T00:00:00+00:00"))
            conn.execute(insert(S.participants).values(code="S2 DK1", guid=other,
                                                       created_at="2020-01-01T00:00:00+00:00"))
        import_qdpx(out, p)
        with p.connect() as conn:
            stored = dict(conn.execute(select(S.participants.c.code, S.participants.c.guid)).all())
        assert stored == {"S1 DK1": guids["S1 DK1"], "S2 DK1": other}
        export_qdpx(p, tmp_path / "again.qdpx")
        assert case_guids(tmp_path / "again.qdpx") == {"S1 DK1": guids["S1 DK1"], "S2 DK1": other}


def test_cli_export_and_import(place, runner, cli, project_path, tmp_path):
    with Project.open(project_path) as p:
        build_sample(p)
    out = tmp_path / "cli.qdpx"
    r = runner.invoke(cli, ["export", "qdpx", str(out), "-p", str(project_path)])
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and "Wrote" in r.stderr and "Not exported" in r.stderr
    validate_qdpx(out)
    r = runner.invoke(cli, ["export", "qdpx", str(out), "-p", str(project_path)])
    assert r.exit_code == 1 and "already exists" in " ".join(r.stderr.split()) and "Traceback" not in r.output
    r = runner.invoke(cli, ["import", "qdpx", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    counts = {row["imported"]: row["count"] for row in json.loads(r.stdout)}
    assert counts["codings"] == 5 and counts["sources"] == 2 and counts["cases"] == 2
    assert (tmp_path / "cli.sprealist").is_file() and "Imported" in r.stderr
    r = runner.invoke(cli, ["import", "qdpx", str(out)])
    assert r.exit_code == 1 and "already exists" in " ".join(r.stderr.split())
    r = runner.invoke(cli, ["import", "qdpx", str(out), "--into", str(project_path), "-p", "x.sprealist"])
    assert r.exit_code == 2


# --- Hypothesis: generated projects survive export -> import -> export ------------
ALPHABET = st.sampled_from(list("abc xyz\n\r\t.,'é—") + ["😕", "𝒜", "\u00e9", "ñ", "中"])
texts = st.text(alphabet=ALPHABET, min_size=1, max_size=80)


@st.composite
def projects(draw):
    n_sources = draw(st.integers(1, 3))
    srcs = [draw(texts) for _ in range(n_sources)]
    codes = draw(st.lists(st.text(alphabet=st.sampled_from(list("ABCdef ü")), min_size=1, max_size=8)
                          .map(str.strip).filter(bool), min_size=1, max_size=4, unique=True))
    parents = [draw(st.none() | st.integers(0, i - 1)) if i else None for i in range(len(codes))]
    codings = []
    for si, text in enumerate(srcs):
        for _ in range(draw(st.integers(0, 4))):
            a = draw(st.integers(0, len(text) - 1))
            b = draw(st.integers(a + 1, len(text)))
            codings.append((si, a, b, draw(st.integers(0, len(codes) - 1)), draw(st.sampled_from(["RA", "DK"]))))
    memos = draw(st.lists(st.tuples(st.sampled_from(["project", "code", "source"]), texts), max_size=3))
    people = ["S1 DK1", "S2 RA", "P3"]
    owners = [draw(st.none() | st.sampled_from(people)) for _ in srcs]  # the participant of each source
    loners = draw(st.lists(st.sampled_from(people), max_size=2, unique=True))  # participants without sources
    return srcs, codes, parents, codings, memos, owners, loners


def test_round_trip_generated_projects(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 15), deadline=None)
    @given(data=projects())
    def check(data):
        srcs, codes, parents, codings, memos, owners, loners = data
        d = Path(tempfile.mkdtemp(dir=tmp_path))
        ts = "2020-01-02T03:04:05+00:00"
        with Project.create(new_location()) as p:
            with p.begin() as conn:
                sids = [add_source(conn, SourceDraft(name=f"source {i}", kind="interview", text=t,
                                                     segments=[Segment(0, len(t))], checksum=str(i),
                                                     participant_code=owner))
                        for i, (t, owner) in enumerate(zip(srcs, owners))]
                for code in loners:
                    ensure_participant(conn, code, role="link worker")
                cids = []
                for name, parent in zip(codes, parents):
                    cids.append(conn.execute(insert(S.codes).values(
                        name=name, parent_id=cids[parent] if parent is not None else None, created_at=ts,
                        definition=f"about {name}")).inserted_primary_key[0])
                seen = set()
                for si, a, b, ci, coder in codings:
                    if (si, a, b, ci, coder) in seen:
                        continue
                    seen.add((si, a, b, ci, coder))
                    conn.execute(insert(S.codings).values(code_id=cids[ci], source_id=sids[si], start=a, end=b,
                                                          coder=coder, created_at=ts))
                for kind, text in memos:
                    target = {"project": None, "code": cids[0], "source": sids[0]}[kind]
                    conn.execute(insert(S.memos).values(target_type=kind, target_id=target, text=text, author="RA",
                                                        created_at=ts, updated_at=ts))
            export_qdpx(p, d / "one.qdpx")
            validate_qdpx(d / "one.qdpx")
            two = new_location()
            result = import_qdpx_new(d / "one.qdpx", two)
            assert not result.losses
            with Project.open(two) as q:
                export_qdpx(q, d / "two.qdpx")
                a, b = semantic(d / "one.qdpx"), semantic(d / "two.qdpx")
                assert a == b
                assert set(case_guids(d / "one.qdpx")) == {o for o in owners if o} | set(loners)
                assert case_guids(d / "one.qdpx") == case_guids(d / "two.qdpx")
                assert snapshot(p)["codings"] == snapshot(q)["codings"]
                assert snapshot(p)["sources"] == snapshot(q)["sources"]

    check()


def test_xml_invalid_characters_are_left_out_of_notes_not_sources(project, tmp_path):
    text = "bell\x07 in the text"
    ts = "2020-01-01T00:00:00+00:00"
    with project.begin() as conn:
        add_source(conn, SourceDraft(name="odd", kind="document", text=text.replace("\x07", " "),
                                     segments=[Segment(0, len(text))], checksum="x"))
        # a project written before text checks existed (they refuse control characters now): plain SQL
        conn.execute(sql_text("UPDATE sources SET text = :t WHERE name = 'odd'"), {"t": text})
        conn.execute(sql_text("INSERT INTO memos (target_type, text, author, created_at, updated_at) "
                              "VALUES ('project', :t, 'RA', :ts, :ts)"), {"t": "ding\x07", "ts": ts})
    out = tmp_path / "odd.qdpx"
    result = export_qdpx(project, out)
    qde = validate_qdpx(out)
    assert b"ding<" in qde
    with zipfile.ZipFile(out) as zf:
        texts = sorted(zf.read(n).decode() for n in zf.namelist() if n.startswith("sources/"))
    # the source file unchanged; the note's own file (plainTextPath, beside its inline text) unchanged too
    assert texts == sorted([text, "ding\x07"])
    assert any("XML 1.0" in line for line in result.losses)


def test_empty_project_exports_and_imports(place, project, tmp_path):
    out = tmp_path / "empty.qdpx"
    result = export_qdpx(project, out)
    validate_qdpx(out)
    assert result.counts["sources"] == 0 and not result.losses
    back = import_qdpx_new(out, place("empty-back"))
    assert sum(back.counts.values()) == 0 and not back.losses

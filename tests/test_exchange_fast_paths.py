"""The fast paths of REFI-QDA exchange give exactly what the general code gives: stable GUIDs equal
uuid5, canonical GUIDs are kept as the pattern would normalise them, UTC times to the second are
converted as datetime converts them, and the local name of a tag is the same when remembered."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sp_realist.exchange.common import norm_guid, store_datetime, xsd_datetime
from sp_realist.exchange.safety import local
from sp_realist.store import GUID_NAMESPACE, stable_guid

_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")


def _norm_guid(value):
    if not value:
        return None
    m = _GUID.match(value.strip())
    return m.group(1).lower() if m else None


def _store_datetime(value):
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _xsd_datetime(value):
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


parts = st.lists(st.one_of(st.text(), st.integers(), st.none(), st.floats(allow_nan=False)), max_size=6)


@given(parts)
@example(["coding", 1, 2, 3, 4, "RA"])
@example([])
@example(["é\u2019\x1f", None])
@settings(max_examples=300, deadline=None)
def test_stable_guid_is_uuid5(ps):
    try:
        expected = str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(str(p) for p in ps)))
    except UnicodeEncodeError:  # a lone surrogate: neither can hash it
        return
    assert stable_guid(*ps) == expected


hexd = "0123456789abcdefABCDEF"
guids = st.builds(lambda a, b, c, d, e, wrap, pad: pad + (("{" + "-".join((a, b, c, d, e)) + "}") if wrap
                                                          else "-".join((a, b, c, d, e))) + pad,
                  *[st.text(alphabet=hexd, min_size=n, max_size=n) for n in (8, 4, 4, 4, 12)],
                  st.booleans(), st.sampled_from(["", " ", "\n"]))


@given(st.one_of(guids, st.text(max_size=40), st.none()))
@example("6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b")
@example("6F2D3C1E-7A4B-5E8F-9A0B-1C2D3E4F5A6B")
@example("{6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b}")
@example("6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b\n")
@example("6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6")
@settings(max_examples=300, deadline=None)
def test_norm_guid_matches_the_pattern(value):
    assert norm_guid(value) == _norm_guid(value)


stamps = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone, pad: f"{pad}{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}{pad}",
    st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
    st.integers(0, 60), st.sampled_from(["", ".5", ".123456"]),
    st.sampled_from(["", "Z", "+00:00", "+01:00", "-05:30", "z"]), st.sampled_from(["", " "]))


@given(st.one_of(stamps, st.text(max_size=30), st.none()))
@example("2026-11-23T19:30:00+00:00")
@example("2026-11-23T19:30:00Z")
@example("2026-02-30T19:30:00Z")  # no such day
@example("0999-01-01T00:00:00Z")  # a year below 1000: strftime writes it without padding
@example("2026-11-23T24:00:00Z")
@example("0001-01-01T00:00:00+05:00")  # year 0 in UTC
@example("9999-12-31T23:00:00-05:00")  # year 10000 in UTC
@settings(max_examples=500, deadline=None)
def test_times_convert_as_datetime_converts_them(value):
    for fast, general in ((store_datetime, _store_datetime), (xsd_datetime, _xsd_datetime)):
        try:
            expected = general(value)
        except OverflowError:  # a zone offset that moves year 1 or 9999 out of range: unreadable, as a bad date
            expected = None
        assert fast(value) == expected


@given(st.sampled_from(["{urn:QDA-XML:project:1.0}Code", "Code", "{a}b}c", "", "{urn:x}"]))
def test_local_names(tag):
    assert local(tag) == tag.rsplit("}", 1)[-1]
    assert local(tag) == tag.rsplit("}", 1)[-1]  # remembered
    assert local(None) == "" and local(len) == ""


_TEXT = st.text(alphabet=st.sampled_from(list("ab \n\r\u00e9\U0001f600")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=6), st.booleans(),
       st.booleans())
@example("ab\r\ncd", [(0, 2), (4, 6)], False, True)
@example("\u00e9a b", [(0, 2)], True, True)
@example("", [], False, True)
def test_positions_shortcut_for_our_own_files(text, pairs, bom, trust):
    """A file sp_realist wrote keeps code points whenever they place every selection, without trying
    the other conventions (the general path chose the standard then, never ambiguous); ``differ`` says
    whether the candidate conventions give different spans, as converting each again does."""
    from sp_realist.exchange import positions as P

    sels = [P.Sel(i, min(a, b), max(a, b), None) for i, (a, b) in enumerate(pairs)]
    res = P.resolve(text, sels, bom, trust_standard=trust)
    assert res.differ == (len({tuple(P.convert(text, sels, c).items()) for c in res.candidates}) > 1)
    codepoints = P.convert(text, sels, P.CODEPOINTS)
    if trust and sels and all(v is not None for v in codepoints.values()):
        assert res.convention == P.CODEPOINTS and not res.ambiguous and not res.failed
        assert res.spans == codepoints and res.candidates == [P.CODEPOINTS]
        # what weighing every convention chooses for a file we wrote
        convs = P.applicable(text, bom)
        complete = [c for c in convs if all(v is not None for v in P.convert(text, sels, c).values())]
        assert P.CODEPOINTS in complete
    elif trust and sels:  # code points do not fit: the evidence is weighed as for any file
        assert res == dataclasses.replace(P.resolve(text, sels, bom), ambiguous=False)


def _sources(draw_texts, sels):
    from sp_realist.exchange.qdpx_read import SelPlan, SourcePlan

    return [SourcePlan(f"s{i}", f"source {i}", text, "document", "plain text", has_bom=bom,
                       sels=[SelPlan(None, None, min(a, b), max(a, b), None, None) for a, b in pairs])
            for i, ((text, bom), pairs) in enumerate(zip(draw_texts, sels))]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TEXT, st.booleans()), min_size=1, max_size=3),
       st.lists(st.lists(st.tuples(st.integers(-2, 40), st.integers(-2, 40)), max_size=5), min_size=3, max_size=3),
       st.sampled_from(["sp_realist", "sp_realist 0.1", "QualCoder"]))
@example([("ab cd", False)], [[(0, 2), (3, 5)], [], []], "sp_realist")
@example([("ab cd", False)], [[(0, 2), (3, 6)], [], []], "sp_realist")  # one ends past the text
@example([("ab\r\ncd", False), ("\U0001f600 x", True)], [[(0, 0), (4, 6)], [(1, 3)], []], "sp_realist")
@example([("", False)], [[], [], []], "sp_realist")
def test_positions_of_our_own_files_taken_as_they_are(texts, sels, origin):
    """resolve_positions takes the spans of a file sp_realist wrote as they are when every selection of a
    source lies inside its text: the same spans, conventions, notes and losses as resolving and verifying
    each selection (the general path, with the shortcut turned off)."""
    import copy
    from unittest import mock

    from sp_realist.exchange import qdpx_positions
    from sp_realist.exchange.common import ImportResult
    from sp_realist.exchange.qdpx_read import QdpxPlan

    plan = QdpxPlan("p", origin, sources=_sources(texts, sels), result=ImportResult("f.qdpx"))
    general = copy.deepcopy(plan)
    qdpx_positions.resolve_positions(plan)
    with mock.patch.object(qdpx_positions, "_inside", lambda sp: False):
        qdpx_positions.resolve_positions(general)
    assert [[s.span for s in sp.sels] for sp in plan.sources] == [[s.span for s in sp.sels] for sp in general.sources]
    assert [sp.convention for sp in plan.sources] == [sp.convention for sp in general.sources]
    assert (plan.result.notes, plan.result.losses) == (general.result.notes, general.result.losses)


_CANON = "6f2d3c1e-7a4b-5e8f-9a0b-1c2d3e4f5a6b"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["guid", "targetGUID", "creatingUser", "name"]),
                          st.one_of(guids, st.sampled_from(["", _CANON, "c1", f"{_CANON}\n{_CANON}", f" {_CANON}"]),
                                    st.text(max_size=5))), max_size=6))
@example([("guid", _CANON), ("targetGUID", "")])
@example([("guid", f"{_CANON}\n{_CANON}")])  # two GUIDs on two lines of one value: not one GUID
@example([("guid", _CANON.upper())])
@example([("name", "c1"), ("guid", _CANON)])  # not a GUID attribute: not checked
@example([])
def test_guids_canonical_means_nothing_to_normalise(attrs):
    """When guids_canonical says so, every GUID attribute is empty or canonical: norm_guid returns each as
    it is (None when empty) and repair_foreign_guids has nothing to repair; otherwise some value is not."""
    from xml.etree import ElementTree as ET

    from sp_realist.exchange.common import GUID_ATTRIBUTES, guids_canonical, repair_foreign_guids

    root = ET.Element("Project")
    for name, value in attrs:
        ET.SubElement(root, "Code", {name: value})
    values = [v for name, v in attrs if name in GUID_ATTRIBUTES]
    expected = all(not v or norm_guid(v) == v for v in values)
    assert guids_canonical(root) == expected
    if expected:
        assert repair_foreign_guids(root, "f.qdpx") == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.text(alphabet=st.sampled_from(list("ab\n\t\x00\x1f\x85\ud800é")),
                                                         max_size=8)), max_size=8),
       st.sampled_from([("codings", "coder"), ("codings", "memo"), ("codings", "guid"), ("codes", "name")]))
@example(["RA", "RA", "R\x00B"], ("codings", "coder"))
@example(["a" * 301, "b\x01"], ("codes", "name"))
@example(["ok", "a\nb", None, 3], ("codings", "memo"))
def test_checking_a_column_values_at_once_refuses_as_one_by_one(values, column):
    """check_column_values refuses what check_column refuses, with the message of the first refused value
    (in the order given), and accepts the rest."""
    from sp_realist import schema as S

    col = S.metadata.tables[column[0]].c[column[1]]
    if column == ("codes", "name"):
        values = [v * 60 if isinstance(v, str) else v for v in values]  # some over the 300-character limit
    first = None
    for v in values:
        try:
            S.check_column(col, v)
        except S.TextValueError as exc:
            first = str(exc)
            break
    if first is None:
        S.check_column_values(col, values)
    else:
        with pytest.raises(S.TextValueError) as got:
            S.check_column_values(col, values)
        assert str(got.value) == first


def test_sources_written_ahead_give_the_whole_tree_serialisation(project):
    """The export writes each TextSource as soon as it is built (memory: one source's elements at a time);
    the document is byte for byte what indenting and serialising the whole tree at once gives, with
    awkward names and texts, a source without selections and a source with many."""
    from unittest import mock

    from sqlalchemy import insert

    from exchange_helpers import build_sample
    from sp_realist import schema as S
    from sp_realist.exchange import qdpx_export
    from sp_realist.exchange.qdpx_export import qde_bytes
    from sp_realist.sources import Segment, SourceDraft, add_source

    ids = build_sample(project)
    text = 'Quotes "<&>" and \U0001f600 emoji; a line\r\nbreak -->\n' * 5
    with project.begin() as conn:
        add_source(conn, SourceDraft(name='A <name> & "quotes" -->', kind="document", text=text, segments=[Segment(0, len(text))], checksum="x"))
        sid = add_source(conn, SourceDraft(name="Many", kind="document", text=text, segments=[Segment(0, len(text))], checksum="y"))
        conn.execute(insert(S.codings), [dict(code_id=ids["Induction"], source_id=sid, start=i, end=i + 9,
                                              coder="RA" if i % 2 else "RB", origin="manual",
                                              created_at="2020-01-01T00:00:00+00:00") for i in range(0, 200, 3)])
    streamed = qde_bytes(project, "p")
    assert b"<!--" not in streamed and streamed.count(b"<TextSource ") == 4
    with mock.patch.object(qdpx_export._Builder, "_streamed", lambda self, el: el):
        whole = qde_bytes(project, "p")
    assert streamed == whole


def test_the_cycle_collector_is_paused_only_while_exchanging(project, tmp_path):
    """Export and import pause the cyclic garbage collector while they work and leave it as they found it:
    on after an export, an import, and an import that fails; still paused for a caller that had paused it."""
    import gc

    import pytest

    from exchange_helpers import build_sample
    from sp_realist.errors import SpRealistError
    from sp_realist.exchange import qdpx_export
    from sp_realist.exchange.common import cycle_collection_paused
    from sp_realist.exchange.qdpx_export import export_qdpx
    from sp_realist.exchange.qdpx_import import import_qdpx_new

    build_sample(project)
    seen = []
    build = qdpx_export._Builder.build

    def spy(self):
        seen.append(gc.isenabled())
        return build(self)

    assert gc.isenabled()
    qdpx_export._Builder.build = spy
    try:
        export_qdpx(project, tmp_path / "a.qdpx")
    finally:
        qdpx_export._Builder.build = build
    assert seen == [False] and gc.isenabled()
    import_qdpx_new(tmp_path / "a.qdpx", tmp_path / "a.sprealist")
    assert gc.isenabled()
    (tmp_path / "bad.qdpx").write_bytes(b"not a zip")
    with pytest.raises(SpRealistError):
        import_qdpx_new(tmp_path / "bad.qdpx", tmp_path / "bad.sprealist")
    assert gc.isenabled() and not (tmp_path / "bad.sprealist").exists()
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        export_qdpx(project, tmp_path / "b.qdpx")
        assert not gc.isenabled()
    finally:
        gc.enable()

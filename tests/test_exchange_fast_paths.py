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
@settings(max_examples=500, deadline=None)
def test_times_convert_as_datetime_converts_them(value):
    for fast, general in ((store_datetime, _store_datetime), (xsd_datetime, _xsd_datetime)):
        try:
            expected = general(value)
        except OverflowError:  # a zone offset that moves year 1 or 9999 out of range: both raise
            with pytest.raises(OverflowError):
                fast(value)
            continue
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

"""Untrusted .qdpx files: unsafe XML, escaping or oversized zips, damaged files.

Every case must end with one clear sentence, exit code 1, no traceback, no new
project file, and an --into project left exactly as it was.
"""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from exchange_helpers import build_sample, make_zip, snapshot
from sp_realist.exchange import safety
from sp_realist.exchange.qdpx_export import export_qdpx
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only(
    "hostile archives are refused before anything is written; imports run on both back ends in "
    "test_exchange_import.py")

QDE_OK = ('<?xml version="1.0" encoding="utf-8"?><Project xmlns="urn:QDA-XML:project:1.0" name="x">'
          '<Sources><TextSource guid="55555555-5555-5555-5555-555555555555" name="S">'
          '<PlainTextContent>hello</PlainTextContent></TextSource></Sources></Project>')

BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<Project xmlns="urn:QDA-XML:project:1.0" name="&lol3;"/>')
XXE = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<Project xmlns="urn:QDA-XML:project:1.0" name="&xxe;"/>')


def _file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def target(tmp_path):
    """An existing project with data, to import --into."""
    path = tmp_path / "target.sprealist"
    with Project.create(path) as p:
        build_sample(p)
    return path


def _check_refused(runner, cli, qdpx, target, tmp_path, match):
    with Project.open(target) as p:
        before = snapshot(p)
    r = runner.invoke(cli, ["import", "qdpx", str(qdpx), "--into", str(target)])
    assert r.exit_code == 1, r.output
    err = " ".join(r.stderr.split())  # undo rich's line wrapping
    assert match in err and "Traceback" not in r.output
    assert r.stderr.startswith("Error: ") and r.stdout == ""
    with Project.open(target) as p:
        assert snapshot(p) == before
    new = tmp_path / "fresh.sprealist"
    r = runner.invoke(cli, ["import", "qdpx", str(qdpx), "--project", str(new)])
    assert r.exit_code == 1 and match in " ".join(r.stderr.split())
    assert not new.exists()


def test_not_a_zip(runner, cli, target, tmp_path):
    bad = tmp_path / "notes.qdpx"
    bad.write_text("this is a text file")
    _check_refused(runner, cli, bad, target, tmp_path, "not a zip archive or truncated")


def test_truncated_zip(runner, cli, target, tmp_path):
    with Project.open(target) as p:
        export_qdpx(p, tmp_path / "good.qdpx")
    data = (tmp_path / "good.qdpx").read_bytes()
    cut = tmp_path / "cut.qdpx"
    cut.write_bytes(data[: len(data) // 2])
    _check_refused(runner, cli, cut, target, tmp_path, "not a zip archive or truncated")


def test_corrupted_entry(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "crc.qdpx", {"project.qde": QDE_OK * 50})
    data = bytearray(path.read_bytes())
    i = data.index(b"PK\x01\x02")  # flip bytes in the compressed data before the central directory
    for j in range(40, 60):
        data[i - j] ^= 0xFF
    path.write_bytes(bytes(data))
    _check_refused(runner, cli, path, target, tmp_path, "crc.qdpx")


@pytest.mark.parametrize("name", ["../evil.txt", "sources/../../evil.txt", "/abs/evil.txt", "C:/evil.txt"])
def test_entries_escaping_the_archive_are_refused(runner, cli, target, tmp_path, name):
    path = tmp_path / "escape.qdpx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", QDE_OK)
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass ZipInfo's own normalisation: an attacker's zip can say anything
        zf.writestr(info, "x")
    _check_refused(runner, cli, path, target, tmp_path, "points outside the archive")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_entity_bomb_is_refused(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "bomb.qdpx", {"project.qde": BOMB})
    _check_refused(runner, cli, path, target, tmp_path, "unsafe XML")


def test_external_entity_is_refused(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "xxe.qdpx", {"project.qde": XXE})
    _check_refused(runner, cli, path, target, tmp_path, "unsafe XML")


def test_zip_bomb_ratio_is_refused(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "zbomb.qdpx", {"project.qde": QDE_OK, "sources/zeros.txt": b"\0" * (8 << 20)})
    _check_refused(runner, cli, path, target, tmp_path, "zip bomb")


def test_entry_count_and_total_size_are_capped(runner, cli, target, tmp_path, monkeypatch):
    entries = {"project.qde": QDE_OK}
    entries.update({f"sources/{i}.txt": f"text {i}" for i in range(30)})
    path = make_zip(tmp_path / "many.qdpx", entries)
    monkeypatch.setattr(safety, "MAX_ENTRIES", 10)
    _check_refused(runner, cli, path, target, tmp_path, "more than the 10 allowed")
    monkeypatch.setattr(safety, "MAX_ENTRIES", 20_000)
    monkeypatch.setattr(safety, "MAX_TOTAL_BYTES", 100)
    _check_refused(runner, cli, path, target, tmp_path, "bytes uncompressed")


def test_no_qde_and_wrong_root(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "empty.qdpx", {"readme.txt": "hello"})
    _check_refused(runner, cli, path, target, tmp_path, "no .qde project file")
    path = make_zip(tmp_path / "root.qdpx", {"project.qde": "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'/>"})
    _check_refused(runner, cli, path, target, tmp_path, "not a REFI-QDA project")
    path = make_zip(tmp_path / "broken.qdpx", {"project.qde": "<Project><Sources>"})
    _check_refused(runner, cli, path, target, tmp_path, "not well-formed XML")


def test_missing_file_is_one_clear_error(runner, cli, tmp_path):
    r = runner.invoke(cli, ["import", "qdpx", str(tmp_path / "nope.qdpx")])
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_a_good_file_still_imports_after_all_that(runner, cli, target, tmp_path):
    path = make_zip(tmp_path / "ok.qdpx", {"project.qde": QDE_OK})
    digest = _file_digest(path)
    r = runner.invoke(cli, ["import", "qdpx", str(path), "--into", str(target), "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert "sources,1" in r.stdout
    assert _file_digest(path) == digest  # the input is never modified


# --- never a traceback: mangled but well-formed projects import or fail with one sentence ---------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from xml.etree import ElementTree as ET  # noqa: E402

from sp_realist.errors import SpRealistError  # noqa: E402
from sp_realist.exchange.qdpx_import import import_qdpx  # noqa: E402

_JUNK = st.sampled_from(["", "-1", "99999999", "abc", "{not-a-guid}", "2020-13-45T99:00", "true", "😕", "1e3"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mangled_projects_never_crash(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("mangle")
    with Project.create(d / "src.sprealist") as p:
        build_sample(p)
        export_qdpx(p, d / "good.qdpx")
    with zipfile.ZipFile(d / "good.qdpx") as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    root = ET.fromstring(entries["project.qde"])
    elements = list(root.iter())
    for _ in range(data.draw(st.integers(1, 8))):
        el = data.draw(st.sampled_from(elements))
        if el.attrib and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(el.attrib)))
            if data.draw(st.booleans()):
                del el.attrib[key]
            else:
                el.set(key, data.draw(_JUNK))
        elif len(el):
            el.remove(data.draw(st.sampled_from(list(el))))
    entries["project.qde"] = ET.tostring(root, encoding="utf-8")
    if data.draw(st.booleans()):
        entries["sp_realist/segments.json"] = data.draw(st.sampled_from([b"{", b"[]", b'{"segments": 3}',
                                                                        b'{"segments": {"x": [[0]]}}']))
    path = make_zip(d / "mangled.qdpx", entries)
    with Project.create(d / "target.sprealist") as target:
        try:
            import_qdpx(path, target)
        except SpRealistError as exc:
            assert exc.message and "\n" not in exc.message

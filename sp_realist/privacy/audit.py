"""Leak audit: scan outputs for any original string (or variant) of a pseudonym key.

:func:`audit_paths` reads docx (body paragraphs, tables, headers and footers,
footnotes/endnotes/comments, document properties), xlsx (sheet names, text
cells, comments, properties), html, md, txt, csv, json,
yaml, xml, REFI-QDA ``.qdpx``/``.qdc`` (zip members are scanned by their own
type), sp_realist project files (every text column, then the raw file bytes,
so overwritten data left in free pages is found too) and folders
(recursively).  Matching is the anonymiser's own: case-insensitive on token
boundaries (:class:`~sp_realist.privacy.detect.Detector`).

The result names the file and location (line, paragraph, JSON path, zip
member, table row) and the key entry found; the matched original is hidden
unless ``show_originals``.
"""

from __future__ import annotations

import bisect
import html
import io
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence


from ..errors import CheckFailed, SpRealistError
from .anonymise import HIDDEN
from .detect import Detector
from .keyfile import Key, as_key

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["file", "location", "entry", "replacement", "original"]
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".yaml", ".yml", ".rst", ".tex", ".log", ".srt",
                 ".vtt", ".xml", ".qde", ".ris", ".bib", ".dot", ".gv", ".mmd", ".mermaid"}
#: XML written by sp_realist besides REFI-QDA: figures and graphs (entities decoded before matching)
XML_SUFFIXES = {".xml", ".qde", ".svg", ".graphml", ".gexf"}
IMAGE_SUFFIXES = {".png"}  # text chunks (tEXt, zTXt, iTXt) are read
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
ZIP_SUFFIXES = {".qdpx", ".qdc", ".zip"}
PROJECT_SUFFIXES = {".sprealist"}
SUPPORTED = (TEXT_SUFFIXES | XML_SUFFIXES | HTML_SUFFIXES | ZIP_SUFFIXES | PROJECT_SUFFIXES | IMAGE_SUFFIXES
             | {".json", ".docx", ".xlsx"})

# A finding before formatting: (location, start, end, entry, matched text)
Finding = tuple[str, int, int, int, str]


def _decode(data: bytes, where: str) -> str:
    for enc in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _lines(det: Detector, text: str, prefix: str = "") -> Iterator[Finding]:
    matches = det.find(text)
    if not matches:
        return
    breaks = [i for i, ch in enumerate(text) if ch == "\n"]
    for m in matches:
        line = bisect.bisect_left(breaks, m.start) + 1
        yield f"{prefix}line {line}", m.start, m.end, m.entry, text[m.start:m.end]


def _strings(det: Detector, items: Iterable[tuple[str, str]]) -> Iterator[Finding]:
    """``(location, text)`` pairs, each scanned as a whole."""
    for loc, text in items:
        if text:
            for m in det.find(text):
                yield loc, m.start, m.end, m.entry, text[m.start:m.end]


def _json_walk(value, path: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path} key {k!r}", str(k)
            yield from _json_walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_walk(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _html_text(det: Detector, text: str) -> Iterator[Finding]:
    """The text content of an HTML page (tags removed, so "<b>Sarah</b> Jones" reads "Sarah Jones")."""
    from html.parser import HTMLParser

    chunks: list[tuple[int, str]] = []

    class Collector(HTMLParser):
        def handle_data(self, data):
            chunks.append((self.getpos()[0], data))

    parser = Collector(convert_charrefs=True)
    parser.feed(text)
    parser.close()
    joined, starts = "", []
    for line, data in chunks:
        starts.append((len(joined), line))
        joined += data
    offsets = [o for o, _ in starts]
    for m in det.find(joined):
        line = starts[bisect.bisect_right(offsets, m.start) - 1][1]
        yield f"line {line}", m.start, m.end, m.entry, joined[m.start:m.end]


def _docx_items(data: bytes) -> Iterator[tuple[str, str]]:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several types for bad files
        raise SpRealistError(f"not a readable Word document ({type(exc).__name__})") from None

    def blocks(container, label: str) -> Iterator[tuple[str, str]]:
        for i, p in enumerate(container.paragraphs):
            yield f"{label}paragraph {i + 1}", p.text
        for t, table in enumerate(container.tables):
            for r, row in enumerate(table.rows):
                for c, cell in enumerate(row.cells):
                    yield from blocks(cell, f"{label}table {t + 1} row {r + 1} cell {c + 1} ")

    yield from blocks(document, "")
    for s, section in enumerate(document.sections):
        for part_name in ("header", "first_page_header", "even_page_header",
                          "footer", "first_page_footer", "even_page_footer"):
            part = getattr(section, part_name)
            if part.is_linked_to_previous and s > 0:
                continue
            yield from blocks(part, f"section {s + 1} {part_name.replace('_', ' ')} ")
    props = document.core_properties
    for name in ("author", "title", "subject", "keywords", "comments", "last_modified_by", "category"):
        yield f"document property {name}", getattr(props, name) or ""
    # Parts python-docx does not model: footnotes, endnotes, comments.
    from defusedxml import ElementTree as ET

    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in ("word/footnotes.xml", "word/endnotes.xml", "word/comments.xml"):
            if member not in zf.namelist():
                continue
            root = ET.fromstring(zf.read(member))
            label = member.split("/")[-1][:-4]
            for i, p in enumerate(root.iter(f"{ns}p")):
                yield f"{label} paragraph {i + 1}", "".join(t.text or "" for t in p.iter(f"{ns}t"))


def _xlsx_items(data: bytes) -> Iterator[tuple[str, str]]:
    """Sheet names, text cells and cell comments of a workbook (``retrieve --format xlsx`` writes these)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=False)
    except Exception as exc:  # openpyxl raises several types for bad files
        raise SpRealistError(f"not a readable Excel workbook ({type(exc).__name__})") from None
    try:
        for sheet in book.worksheets:
            yield f"sheet {sheet.title!r} name", sheet.title
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str):
                        yield f"sheet {sheet.title!r} cell {cell.coordinate}", cell.value
                    if cell.comment is not None:
                        yield f"sheet {sheet.title!r} comment on {cell.coordinate}", cell.comment.text
        props = book.properties
        for name in ("creator", "title", "subject", "keywords", "description", "lastModifiedBy", "category"):
            yield f"document property {name}", getattr(props, name, None) or ""
    finally:
        book.close()


def _png_items(data: bytes) -> Iterator[tuple[str, str]]:
    """The text chunks of a PNG (tEXt, zTXt, iTXt: title, author, description, software...), via Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            chunks = dict(getattr(im, "text", {}) or {})
            chunks.update({k: v for k, v in im.info.items() if isinstance(v, str) and k not in chunks})
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SpRealistError(f"not a readable PNG image ({type(exc).__name__})") from None
    for name, value in chunks.items():
        yield f"png text chunk {name!r} keyword", str(name)
        yield f"png text chunk {name!r}", str(value)


def _scan_bytes(det: Detector, name: str, data: bytes, where: str) -> Iterator[Finding]:
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        try:
            yield from _strings(det, _xlsx_items(data))
        except SpRealistError as exc:
            raise SpRealistError(f"{where}: {exc.message}; check the file.") from None
    elif suffix == ".docx":
        try:
            yield from _strings(det, _docx_items(data))
        except SpRealistError as exc:
            raise SpRealistError(f"{where}: {exc.message}; check the file.") from None
    elif suffix == ".json":
        text = _decode(data, where)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            yield from _lines(det, text)
        else:
            yield from _strings(det, _json_walk(value))
    elif suffix in HTML_SUFFIXES:
        text = _decode(data, where)
        seen = set()
        for f in (*_lines(det, html.unescape(text)), *_html_text(det, text)):
            if (f[0], f[3], f[4].lower()) not in seen:
                seen.add((f[0], f[3], f[4].lower()))
                yield f
    elif suffix in IMAGE_SUFFIXES:
        try:
            yield from _strings(det, _png_items(data))
        except SpRealistError as exc:
            raise SpRealistError(f"{where}: {exc.message}; check the file.") from None
    elif suffix in XML_SUFFIXES or (suffix == ".qdc" and not data.startswith(b"PK\x03\x04")):
        # a REFI-QDA codebook (.qdc) is one XML file; some tools zip it
        yield from _lines(det, html.unescape(_decode(data, where)))
    elif suffix in ZIP_SUFFIXES:
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise SpRealistError(f"{where}: not a valid zip archive; check the file.") from None
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                member = info.filename
                inner = Path(member).suffix.lower()
                if inner not in SUPPORTED - PROJECT_SUFFIXES and inner != "":
                    continue
                for loc, s, e, k, txt in _scan_bytes(det, member if inner else member + ".txt",
                                                     zf.read(info), f"{where}:{member}"):
                    yield f"{member}: {loc}", s, e, k, txt
    else:
        yield from _lines(det, _decode(data, where))


def _scan_project(det: Detector, path: Path | str) -> Iterator[Finding]:
    """A project's rows, every text column; then, when the tables are clean and the project is a file, the
    file's raw bytes and WAL (leftovers of overwritten data). A project on a server (a URL) is scanned by its
    rows; its storage is cleaned by ``VACUUM FULL`` after anonymising (docs/privacy.md)."""
    from sqlalchemy import select

    from .. import schema as S
    from ..store import Project

    project = Project.open(path)
    found = False
    try:
        with project.connect() as conn:
            for table in S.metadata.sorted_tables:
                cols = [c for c in table.columns if S.is_text(c)]
                if not cols or table.name == "anonymisation_records":
                    continue
                pk = list(table.primary_key.columns)
                for row in conn.execute(select(*pk, *cols)).mappings():
                    ident = ", ".join(f"{c.name}={row[c.name]}" for c in pk)
                    for c in cols:
                        value = row[c.name]
                        if isinstance(value, str) and value:
                            for m in det.find(value):
                                found = True
                                yield (f"table {table.name} ({ident}) column {c.name}", m.start, m.end, m.entry,
                                       value[m.start:m.end])
    finally:
        project.close()
    if found or _is_url(path):
        return
    # Clean tables: look for leftovers of overwritten data in the raw file and its WAL.
    for p in (path, Path(str(path) + "-wal")):
        if p.is_file():
            text = p.read_bytes().decode("utf-8", errors="replace")
            for m in det.find(text):
                yield f"{p.name} bytes (unused space) near offset {m.start}", m.start, m.end, m.entry, text[m.start:m.end]


def _is_url(target) -> bool:
    return "://" in str(target)


def _names(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[str, str, str]]:
    """``(shown path, location, name)`` for every file and folder name to check: the paths given and,
    inside a folder, every file and sub-folder under it (a folder named after a person leaks too)."""
    for raw in paths:
        if _is_url(raw):  # a project on a server: no file name
            continue
        p = Path(raw)
        name = p.resolve().name if p.name in ("", ".", "..") else p.name
        yield str(p), "folder name" if p.is_dir() else "file name", name
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.name.endswith(("-wal", "-shm")) and f.is_file():
                    continue
                yield str(f), "folder name" if f.is_dir() else "file name", f.name


def _files(paths: Sequence[str | os.PathLike], skipped: list[str]) -> Iterator[tuple[Path, str]]:
    """Files to scan; unsupported ones (PDF, images...) are added to ``skipped``."""
    for raw in paths:
        if _is_url(raw):
            continue
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_file() or f.name.endswith(("-wal", "-shm")):
                    continue
                if f.suffix.lower() in SUPPORTED:
                    yield f, str(f)
                else:
                    skipped.append(str(f))
        elif p.is_file():
            if p.suffix.lower() in SUPPORTED:
                yield p, str(p)
            else:  # named explicitly: scanned as text when it is text
                try:
                    p.read_bytes().decode("utf-8")
                except UnicodeDecodeError:
                    skipped.append(str(p))
                    continue
                yield p, str(p)
        else:
            raise SpRealistError(f"{p}: no such file or folder; check the path.")


def scan_file(det, path: Path, name: str | None = None, label: str | None = None) -> Iterator[Finding]:
    """Findings in one file, read by the type its ``name`` (default: its own) says; ``det`` is a
    :class:`~sp_realist.privacy.detect.Detector` or anything with the same ``find``."""
    name = name or path.name
    if Path(name).suffix.lower() in PROJECT_SUFFIXES:
        return _scan_project(det, path)
    return _scan_bytes(det, name, path.read_bytes(), label or str(path))


def audit_paths(paths: Sequence[str | os.PathLike], key: Key | str, show_originals: bool = False) -> pd.DataFrame:
    """Every occurrence of a key's originals or variants in ``paths`` (files or folders).

    File and folder names are checked too (``location`` "file name" / "folder name").  An empty frame
    means nothing leaked.  ``df.attrs["files"]`` is the number of files scanned, ``df.attrs["skipped"]``
    the files whose content could not be read (unsupported binary types such as PDF or images): check
    those by hand.
    """
    import pandas as pd

    key = as_key(key)
    det = Detector(key)
    rows = []
    n = 0
    skipped: list[str] = []

    def row(file: str, loc: str, k: int, txt: str) -> dict:
        return {"file": file, "location": loc, "entry": k + 1, "replacement": key.entries[k].replacement,
                "original": txt if show_originals else HIDDEN}

    seen_names = set()
    for shown, loc, name in _names(paths):
        if (shown, loc) in seen_names:
            continue
        seen_names.add((shown, loc))
        for m in det.find(name):
            rows.append(row(shown, loc, m.entry, name[m.start:m.end]))
    for path, label in _files(paths, skipped):
        n += 1
        for loc, _s, _e, k, txt in scan_file(det, path, label=label):
            rows.append(row(label, loc, k, txt))
    for url in (str(p) for p in paths if _is_url(p)):  # projects on a database server
        from ..store import display_location

        n += 1
        for loc, _s, _e, k, txt in _scan_project(det, url):
            rows.append(row(display_location(url), loc, k, txt))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["files"] = n
    df.attrs["skipped"] = skipped
    return df


def assert_no_leaks(paths: Sequence[str | os.PathLike], key: Key | str) -> pd.DataFrame:
    """:func:`audit_paths`, raising :class:`CheckFailed` (exit 3) when anything is found."""
    df = audit_paths(paths, key)
    if len(df):
        first = df.iloc[0]
        raise CheckFailed(
            f"{first['file']}: {len(df)} occurrence(s) of real names from the key (first at {first['location']}, "
            f"key entry {first['entry']} -> {first['replacement']!r}); anonymise the sources and remake the output."
        )
    return df


ENV_KEY = "SP_REALIST_KEY"


def output_audit_key(project, key: Key | str | os.PathLike | None = None):
    """The check for an output of ``project`` (exports call this before writing): a
    :class:`~sp_realist.privacy.guard.LeakFinder`, or None when no key is applied and none is given.

    Without a key the project's fingerprints are used; ``key`` (else ``$SP_REALIST_KEY``) is used too and
    must be the key applied to the project, if one is.  A key given explicitly to a project with none
    applied still checks the output.
    """
    from .guard import LeakFinder, leak_finder

    finder = leak_finder(project, key)
    if finder is None and key is not None:
        return LeakFinder(None, as_key(key))
    return finder


def check_output(path: str | os.PathLike, finder, shown: str | os.PathLike | None = None) -> None:
    """Raise :class:`CheckFailed` (naming ``shown``, default ``path``) if ``path`` holds a real name."""
    from .guard import LeakFinder, check_file

    if isinstance(finder, (Key, str, os.PathLike)):
        finder = LeakFinder(None, as_key(finder))
    check_file(path, shown, finder)

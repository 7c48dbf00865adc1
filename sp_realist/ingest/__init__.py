"""Ingest transcripts and reflective diaries into a project.

>>> from sp_realist import Project
>>> from sp_realist.ingest import ingest_paths, ingest_manifest
>>> project = Project.open("evaluation.sprealist")                       # doctest: +SKIP
>>> report = ingest_paths(project, ["diaries/s1-dk1.docx"], site="S1")  # doctest: +SKIP
>>> report.frame()                                                       # doctest: +SKIP

One reader module per format (:mod:`.text` for ``.txt``/``.md``,
:mod:`.docx`, :mod:`.vtt`, :mod:`.srt`) turns a file into a
:class:`~sp_realist.ingest.base.Document`; :mod:`.diary` splits a reflective
diary into entries; :func:`read_sources` turns a file into the
:class:`~sp_realist.sources.SourceDraft` s it holds (one per interview, one per
diary entry) without touching a project; :func:`ingest_paths` and
:func:`ingest_manifest` store them, each file in its own transaction.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from sqlalchemy import select

from .. import schema as S
from ..errors import IngestError, SpRealistError
from ..sources import SourceDraft, add_source, ensure_participant, sha256_bytes, unique_source_name
from ..store import Project
from . import diary as _diary
from . import text as _text
from .base import Document, clean_label, decode_bytes, parse_date

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IngestReport",
    "FileResult",
    "ingest_paths",
    "ingest_manifest",
    "read_document",
    "read_sources",
    "detect_kind",
    "expand_paths",
    "preview_paths",
    "read_manifest",
    "parse_speaker_map",
    "SUPPORTED_SUFFIXES",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".vtt", ".srt")
STATUSES = ("ingested", "unchanged", "replaced", "refused")

Progress = Callable[[int, int], None]


# --- results -------------------------------------------------------------------

@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    status: str  # ingested | unchanged | replaced | refused
    kind: str | None = None
    sources: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class IngestReport:
    """Per-file results of an ingest; ``frame()`` gives them as a DataFrame."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def refused(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "refused"]

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def source_names(self) -> list[str]:
        return [n for f in self.files for n in f.sources]

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.files if f.status == s) for s in STATUSES}

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [{"file": f.path, "status": f.status, "kind": f.kind, "sources": len(f.sources),
              "names": "; ".join(f.sources), "message": f.message} for f in self.files],
            columns=["file", "status", "kind", "sources", "names", "message"],
        )


@dataclass
class _Options:
    kind: str | None = None
    site: str | None = None
    participant: str | None = None
    role: str | None = None
    date: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    speaker_map: dict[str, str] = field(default_factory=dict)
    replace: bool = False
    force_site: bool = False


# --- reading (no project needed) ----------------------------------------------------

def read_document(data: bytes, name: str) -> Document:
    """Read a file's bytes with the reader for its extension."""
    suffix = Path(name).suffix.lower()
    if suffix in (".txt", ".md", ".markdown", ".text"):
        return _text.read(data, name, "md" if suffix in (".md", ".markdown") else "txt")
    if suffix == ".docx":
        from . import docx as _docx

        return _docx.read(data, name)
    if suffix == ".vtt":
        from . import vtt as _vtt

        return _vtt.read(data, name)
    if suffix == ".srt":
        from . import srt as _srt

        return _srt.read(data, name)
    if suffix == ".doc":
        raise IngestError(f"{name}: old Word .doc files cannot be read; open it in Word and save it as .docx.")
    raise IngestError(
        f"{name}: unsupported file type {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}."
    )


def detect_kind(doc: Document) -> str:
    """``diary`` when the document follows the reflective-diary template, else ``interview``."""
    if doc.segments is None and _diary.looks_like_diary(doc):
        return "diary"
    return "interview"


#: The site a participant code names: "S3 DK2" -> "S3".
SITE_OF_CODE = re.compile(r"^(S\d+) ?[A-Z]{1,4}\d+$")


def resolve_site(code: str | None, given: str | None, participant_sites: Mapping[str, str | None],
                 force: bool, where: str, notes: list[str] | None = None) -> str | None:
    """The site of a source whose participant is ``code``.

    The participant's site in the project, else the site its code names
    (``S3 DK2`` -> ``S3``), else ``given`` (``--site``).  A ``given`` site
    that contradicts the participant is refused, or with ``force`` recorded
    with a note.
    """
    implied = why = None
    if code:
        known = participant_sites.get(code)
        m = SITE_OF_CODE.match(code)
        if known:
            implied, why = known, f"participant {code} is at site {known} in the project"
        elif m:
            implied, why = m.group(1), f"participant code {code} says site {m.group(1)}"
    if given and implied and given != implied:
        if not force:
            raise IngestError(f"{where}: {why}, but --site says {given}; leave --site out (the participant gives "
                              f"the site) or pass --force-site to record {given} anyway.")
        if notes is not None:
            notes.append(f"{where}: {why}; recorded at site {given} as --force-site asks")
        return given
    return implied or given


def read_sources(data: bytes, name: str, kind: str | None = None, site: str | None = None,
                 participant: str | None = None, date: str | None = None,
                 attributes: Mapping[str, str] | None = None,
                 speaker_map: Mapping[str, str] | Iterable[str] | None = None,
                 known_codes: Iterable[str] = (), participant_sites: Mapping[str, str | None] | None = None,
                 force_site: bool = False, notes: list[str] | None = None) -> list[SourceDraft]:
    """The sources a file holds, as drafts (names not yet made unique in a project).

    A diary gives one draft per entry; any other kind one draft per file.
    Nothing is written anywhere; ``known_codes`` are participant codes that
    speaker labels may match, ``participant_sites`` their sites.  Each
    source's site comes from its participant (see :func:`resolve_site`);
    ``--site`` (``site``) is for sources with no participant.
    """
    participant_sites = participant_sites or {}
    speaker_map = parse_speaker_map(speaker_map)
    if kind is not None and kind not in S.SOURCE_KINDS:
        raise SpRealistError(f"{name}: kind {kind!r} is not one of {', '.join(S.SOURCE_KINDS)}; choose one of them.")
    doc = read_document(data, name)
    kind = kind or detect_kind(doc)
    checksum = sha256_bytes(data)
    base = Path(name).name
    stem = Path(name).stem
    attrs = {k: str(v) for k, v in (attributes or {}).items() if v is not None and str(v) != ""}
    attrs.pop("site", None)
    participant = clean_label(participant) if participant else None

    def with_site(code: str | None, where: str) -> dict[str, str]:
        here = dict(attrs)
        entry_site = resolve_site(code, site, participant_sites, force_site, where, notes)
        if entry_site:
            here["site"] = entry_site
        return here

    if kind == "diary":
        if doc.segments is not None:
            raise IngestError(f"{name}: a caption file cannot be a reflective diary; ingest it as an interview.")
        drafts = []
        for entry in _diary.split_entries(doc, base):
            code = clean_label(entry.participant_code) if entry.participant_code else participant
            edate = entry.date or (parse_date(date, name) if date else None)
            eattrs = with_site(code, f"{name}: entry {entry.index + 1}" + (f" ({code})" if code else ""))
            if code and edate:
                entry_name = f"{code} {edate}"
            elif eattrs.get("site") and edate:
                entry_name = f"{eattrs['site']} unidentified {edate}"
            elif edate:
                entry_name = f"{stem} {edate}"
            else:
                entry_name = f"{stem} entry {entry.index + 1}"
            if entry.surgery_code:
                eattrs["surgery"] = entry.surgery_code
            drafts.append(SourceDraft(
                name=entry_name, kind="diary", text=entry.text, segments=entry.segments, checksum=checksum,
                date=edate, file_name=base, file_format=doc.format, entry_index=entry.index,
                participant_code=code, attributes=eattrs,
            ))
        return drafts
    if doc.segments is not None:
        from .vtt import map_caption_speakers

        segments = map_caption_speakers(doc.segments, speaker_map, known_codes, participant)
    else:  # the same speaker rules for every kind but diaries (field notes record who said what too)
        segments = _text.segment_transcript(doc, speaker_map, known_codes, participant) \
            or _text.segment_paragraphs(doc)
    return [SourceDraft(
        name=stem, kind=kind, text=doc.text, segments=segments, checksum=checksum,
        date=parse_date(date, name) if date else None, file_name=base, file_format=doc.format,
        entry_index=None, participant_code=participant, attributes=with_site(participant, name),
    )]


def parse_speaker_map(pairs: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["Sarah=S1 LW1", ...]`` (or a mapping) -> ``{"Sarah": "S1 LW1"}``."""
    if not pairs:
        return {}
    if isinstance(pairs, Mapping):
        return {clean_label(k): clean_label(v) for k, v in pairs.items()}
    out = {}
    for pair in pairs:
        for part in str(pair).split(";"):
            if not part.strip():
                continue
            if "=" not in part or not part.split("=", 1)[0].strip() or not part.split("=", 1)[1].strip():
                raise SpRealistError(f"speaker map: {part!r} is not NAME=CODE; write it like 'Sarah=S1 LW1'.")
            k, v = part.split("=", 1)
            out[clean_label(k)] = clean_label(v)
    return out


# --- storing -----------------------------------------------------------------------

def ingest_paths(project: Project, paths: Sequence[str | os.PathLike], kind: str | None = None,
                 site: str | None = None, participant: str | None = None,
                 attributes: Mapping[str, str] | None = None, replace: bool = False,
                 progress: Progress | None = None, speaker_map: Mapping[str, str] | Iterable[str] | None = None,
                 role: str | None = None, date: str | None = None, force_site: bool = False) -> IngestReport:
    """Ingest files into ``project``; one transaction per file.

    * ``kind``: ``interview``, ``focus_group``, ``diary``, ``field_notes`` or
      ``document``; by default ``diary`` for files in the reflective-diary
      template, else ``interview``.
    * ``site``, ``attributes``: source attributes of every source created.
    * ``participant``: the participant code of the sources (a diary entry's own
      "Participant code:" line wins); ``role`` sets that participant's role.
    * ``speaker_map``: interview speaker label -> participant code.
    * A file already ingested with the same content (from anywhere) is
      ``unchanged`` (nothing is written, except that path-less sources of
      schema 1 from this very file get its path).  A file ingested before from the
      same path with other content is ``refused`` unless ``replace=True``,
      which deletes the old sources of that path **with their codings,
      excerpts, appraisals and memos** and stores the new ones.  A file at
      another path that shares the base name is a new file.  Sources ingested
      before schema 2 (no recorded path) are matched by base name.
    * A bad file is ``refused`` with one sentence; the others are ingested.

    ``progress(done, total)`` is called after each file.
    """
    if kind is not None and kind not in S.SOURCE_KINDS:
        raise SpRealistError(f"--kind {kind!r} is not one of {', '.join(S.SOURCE_KINDS)}; choose one of them.")
    opts = _Options(kind=kind, site=site, participant=participant, role=role, date=date,
                    attributes=dict(attributes or {}), speaker_map=parse_speaker_map(speaker_map),
                    replace=replace, force_site=force_site)
    report = IngestReport()
    paths = expand_paths(paths)
    batch: dict[str, tuple[Path, str]] = {}
    for i, path in enumerate(paths, start=1):
        report.files.append(_ingest_file(project, Path(path), opts, batch))
        if progress:
            progress(i, len(paths))
    return report


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Paths as given; a folder stands for the supported files under it (sorted,
    recursively, skipping hidden files and Word lock files ``~$...``)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            before = len(out)
            out.extend(sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and not f.name.startswith("~$")))
            if len(out) == before:
                out.append(p)  # reported as refused: nothing to ingest in it
        else:
            out.append(p)
    return out


PREVIEW_COLUMNS = ["file", "status", "source", "kind", "date", "participant", "site", "segments", "sections",
                   "speakers", "words", "message"]


def preview_paths(paths: Sequence[str | os.PathLike], kind: str | None = None, site: str | None = None,
                  participant: str | None = None, attributes: Mapping[str, str] | None = None,
                  speaker_map: Mapping[str, str] | Iterable[str] | None = None, date: str | None = None,
                  progress: Progress | None = None, force_site: bool = False) -> pd.DataFrame:
    """What ingest would make of ``paths``, without a project and without writing.

    One row per source a file would give (``status`` ``ok``) or per refused
    file (``status`` ``refused`` with the reason): name (before ``#2``
    numbering against a project), kind, date, participant, number of
    segments, the diary sections found, the speakers, words.
    """
    import pandas as pd

    if kind is not None and kind not in S.SOURCE_KINDS:
        raise SpRealistError(f"--kind {kind!r} is not one of {', '.join(S.SOURCE_KINDS)}; choose one of them.")
    smap = parse_speaker_map(speaker_map)
    rows = []
    paths = expand_paths(paths)
    for i, path in enumerate(paths, start=1):
        shown = str(path)
        try:
            if path.is_dir():
                raise IngestError(f"{shown}: the folder holds no {', '.join(SUPPORTED_SUFFIXES)} files.")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise IngestError(f"{shown}: the file cannot be read ({exc.strerror}); check the path.") from None
            notes: list[str] = []
            for d in read_sources(data, shown, kind=kind, site=site, participant=participant, date=date,
                                  attributes=attributes, speaker_map=smap, force_site=force_site, notes=notes):
                sections = list(dict.fromkeys(s.section for s in d.segments if s.section and s.kind != "heading"))
                speakers = list(dict.fromkeys(s.speaker for s in d.segments if s.speaker))
                rows.append({"file": shown, "status": "ok", "source": d.name, "kind": d.kind, "date": d.date,
                             "participant": d.participant_code, "site": d.attributes.get("site"),
                             "segments": len(d.segments),
                             "sections": ", ".join(sections), "speakers": ", ".join(speakers),
                             "words": len(d.text.split()),
                             "message": "; ".join(n for n in notes if d.entry_index is None
                                                  or re.search(rf": entry {d.entry_index + 1}\b", n))})
        except SpRealistError as exc:
            rows.append({"file": shown, "status": "refused", "message": exc.message})
        if progress:
            progress(i, len(paths))
    df = pd.DataFrame(rows, columns=PREVIEW_COLUMNS)
    # counts stay integers when refused rows leave them empty (not 2.0 / NaN)
    return df.astype({"segments": "Int64", "words": "Int64"})


MANIFEST_COLUMNS = ("path", "kind", "participant", "site", "role", "date")


def read_manifest(csv_path: str | os.PathLike, *, within: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """Rows of a manifest CSV with ``path`` resolved against the CSV's folder.

    Columns: ``path`` (required), ``kind``, ``participant``, ``site``, ``role``,
    ``date``; any other column becomes a source attribute.  Empty cells are
    ignored.  Raises :class:`SpRealistError` when the manifest itself is bad.
    With ``within`` (a folder; ``build`` passes the study folder) every row's
    path must be relative and resolve, after following symbolic links, inside
    that folder; run by hand (``ingest --manifest``) absolute paths are fine.
    """
    csv_path = Path(csv_path)
    root = Path(within).resolve() if within is not None else None
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise SpRealistError(f"{csv_path}: the manifest cannot be read ({exc.strerror}); check the path.") from None
    text, _enc = decode_bytes(data, str(csv_path))
    reader = csv.DictReader(io.StringIO(text))
    fields = [clean_label(f or "") for f in (reader.fieldnames or [])]
    if "path" not in [f.lower() for f in fields]:
        raise SpRealistError(f"{csv_path}: the manifest has no 'path' column; its first line must name the columns.")
    reader.fieldnames = [f.lower() if f.lower() in MANIFEST_COLUMNS else f for f in fields]
    rows = []
    for n, row in enumerate(reader, start=2):
        if None in row:
            raise SpRealistError(f"{csv_path}, line {n}: more cells than column names; check the commas.")
        row = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue
        if not row.get("path"):
            raise SpRealistError(f"{csv_path}, line {n}: the path is empty; give each row a file.")
        if row.get("kind") and row["kind"] not in S.SOURCE_KINDS:
            raise SpRealistError(
                f"{csv_path}, line {n}: kind {row['kind']!r} is not one of {', '.join(S.SOURCE_KINDS)}.")
        if row.get("date"):
            parse_date(row["date"], f"{csv_path}, line {n}")
        if root is not None:
            raw = row["path"]
            real = (csv_path.parent / raw).resolve()
            if Path(raw).is_absolute() or not (real == root or root in real.parents):
                how = ("is an absolute path" if Path(raw).is_absolute() else
                       f"resolves to {real}" if ".." in Path(raw).parts else f"is a link to {real}")
                raise SpRealistError(f"{csv_path}, line {n}: the path {raw!r} {how}, outside the study folder "
                                     f"{within}; copy the file into the study folder and name it relative to "
                                     "the manifest.")
        row["path"] = str((csv_path.parent / row["path"]))
        row["_line"] = str(n)
        rows.append(row)
    return rows


def ingest_manifest(project: Project, csv_path: str | os.PathLike, replace: bool = False,
                    progress: Progress | None = None, speaker_map: Mapping[str, str] | Iterable[str] | None = None,
                    defaults: Mapping[str, str] | None = None, force_site: bool = False,
                    within: str | os.PathLike | None = None) -> IngestReport:
    """Ingest the files a manifest CSV lists (see :func:`read_manifest`).

    The whole manifest is checked first; then each file is ingested in its own
    transaction, as by :func:`ingest_paths`.  ``defaults`` (``kind``, ``site``,
    ``participant``...) apply where a row leaves a column empty.  ``within``
    confines every row's file to that folder (see :func:`read_manifest`).
    """
    rows = read_manifest(csv_path, within=within)
    smap = parse_speaker_map(speaker_map)
    report = IngestReport()
    batch: dict[str, tuple[Path, str]] = {}
    for i, row in enumerate(rows, start=1):
        merged = {**{k: v for k, v in (defaults or {}).items() if v}, **{k: v for k, v in row.items() if v}}
        attrs = {k: v for k, v in merged.items() if k not in MANIFEST_COLUMNS and not k.startswith("_")}
        opts = _Options(kind=merged.get("kind"), site=merged.get("site"), participant=merged.get("participant"),
                        role=merged.get("role"), date=merged.get("date"), attributes=attrs, speaker_map=smap,
                        replace=replace, force_site=force_site)
        report.files.append(_ingest_file(project, Path(row["path"]), opts, batch))
        if progress:
            progress(i, len(rows))
    return report


def _ingest_file(project: Project, path: Path, opts: _Options,
                 batch: dict[str, tuple[Path, str]] | None = None) -> FileResult:
    """Ingest one file in its own transaction.

    Sources remember their file's absolute path (``file_path``), so a file is
    matched to its earlier sources by path: ``s1/notes.txt`` and
    ``s2/notes.txt`` are two files, and ``--replace`` of one never touches the
    other.  Sources ingested before schema 2 have no path; they are matched by
    base name (``file_name``) as before.  A batch can therefore not tell which
    of two different files with one base name such a legacy source came from:
    once one of them has been seen, a second one that would be matched to
    legacy sources is refused.  ``batch`` maps base names to the first file
    (resolved, as given) seen with each.
    """
    shown = str(path)
    notes: list[str] = []
    try:
        if path.is_dir():
            raise IngestError(f"{shown}: the folder holds no {', '.join(SUPPORTED_SUFFIXES)} files; check the path.")
        if not path.is_file():
            raise IngestError(f"{shown}: no such file; check the path.")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"{shown}: the file cannot be read ({exc.strerror}); check its permissions.") from None
        checksum = sha256_bytes(data)
        base = path.name
        here = path.resolve()
        file_path = str(here)
        other = None  # another file with this base name earlier in the batch
        if batch is not None:
            first = batch.setdefault(base, (here, shown))
            if first[0] != here:
                other = first[1]
        src = S.sources.c
        with project.connect() as conn:
            same = conn.execute(
                select(src.name, src.file_name, src.kind, src.file_path, src.id)
                .where(src.checksum == checksum).order_by(src.ingest_order)
            ).all()
            # this file's earlier sources: by path; legacy sources (no path) by base name
            previous = conn.execute(
                select(src.id, src.name, src.checksum)
                .where(src.file_path == file_path).order_by(src.ingest_order)
            ).all()
            legacy = False
            if not previous:
                previous = conn.execute(
                    select(src.id, src.name, src.checksum)
                    .where(src.file_name == base, src.file_path.is_(None)).order_by(src.ingest_order)
                ).all()
                legacy = bool(previous)
            participant_sites = dict(conn.execute(select(S.participants.c.code, S.participants.c.site)).all())
        if same:
            names = [r[0] for r in same]
            if same[0][1] != base:
                note = f" (same content as {same[0][1]})"
            elif same[0][3] and same[0][3] != file_path:
                note = f" (same content as {same[0][3]})"
            else:
                note = ""
            # legacy sources of this very file (same content and base name, no path): record
            # where they came from, so another file with this base name is no longer taken for it
            found = [r[4] for r in same if r[3] is None and r[1] == base]
            if found:
                with project.begin() as conn:
                    conn.execute(S.sources.update().where(src.id.in_(found), src.file_path.is_(None))
                                 .values(file_path=file_path))
                    project.log(conn, "ingest.record_path", base, checksum=checksum, path=file_path,
                                sources=len(found))
                note += f"; its path is now recorded for {len(found)} source(s)"
            return FileResult(shown, "unchanged", same[0][2], names,
                              f"already ingested{note}; nothing to do")
        if legacy and other is not None:
            raise IngestError(
                f"{shown}: another file named {base} ({other}) is in this batch, and the {len(previous)} source(s) "
                f"ingested from a {base} before (e.g. {previous[0][1]!r}) do not record their folder, so they "
                "cannot be told apart; ingest the file they came from unchanged first (that records its path), "
                "or rename one of the files."
            )
        if previous and not opts.replace and legacy:
            raise IngestError(
                f"{shown}: a {base} with other content was ingested before sp_realist recorded folders "
                f"({len(previous)} source(s), e.g. {previous[0][1]!r}), so it is taken for an older version of "
                "this file; pass --replace to put the new text in their place (codings and analysis are carried over; what cannot be is kept for review), or, if it is "
                "a different file, first ingest the file they came from unchanged (that records its path) or "
                "rename this one."
            )
        if previous and not opts.replace:
            raise IngestError(
                f"{shown}: a different version of {base} was ingested before from this path ({len(previous)} "
                f"source(s), e.g. {previous[0][1]!r}); pass --replace to put the new text in their place (codings and "
                "analysis are carried over; what cannot be is kept for review), or rename the file if it is a different one."
            )
        drafts = read_sources(data, shown, kind=opts.kind, site=opts.site, participant=opts.participant,
                              date=opts.date, attributes=opts.attributes, speaker_map=opts.speaker_map,
                              known_codes=list(participant_sites), participant_sites=participant_sites,
                              force_site=opts.force_site, notes=notes)
        if not drafts:
            raise IngestError(f"{shown}: no text found; check that it is the right file.")
        for d in drafts:
            d.file_path = file_path
        old_ids = [r[0] for r in previous]
        outcome = None
        with project.begin() as conn:
            added = drafts
            if old_ids:
                from ..reanchor import replace_sources

                outcome = replace_sources(conn, old_ids, drafts, shown)
                added = outcome.added
            _unique_names(conn, added)
            for d in added:
                add_source(conn, d)
            if opts.participant or opts.role:
                sites = {d.participant_code: d.attributes.get("site") for d in drafts if d.participant_code}
                if not sites and opts.participant:
                    sites = {clean_label(opts.participant): opts.site}
                for code, code_site in sites.items():
                    ensure_participant(conn, code, role=opts.role, site=code_site)
            detail = {}
            if outcome is not None:
                detail = {"codings": outcome.codings, "excerpts": outcome.excerpts, "left": outcome.left}
            project.log(conn, "ingest.replace" if old_ids else "ingest", base, checksum=checksum,
                        kind=drafts[0].kind, sources=[d.name for d in drafts], replaced=len(old_ids),
                        path=file_path, **detail)
        status = "replaced" if old_ids else "ingested"
        msg = f"{len(drafts)} source(s)"
        if outcome is not None:
            msg += f"; replaced {len(old_ids)} older source(s): {outcome.summary()}"
        if notes:
            msg += "; warning: " + "; ".join(notes)
        return FileResult(shown, status, drafts[0].kind, [d.name for d in drafts], msg)
    except SpRealistError as exc:
        return FileResult(shown, "refused", opts.kind, [], exc.message)


def _unique_names(conn, drafts: list[SourceDraft]) -> None:
    """Append " #2", " #3"... to names already taken (in the project or this file)."""
    taken: set[str] = set()
    for d in drafts:
        d.name = unique_source_name(conn, d.name, taken)
        taken.add(d.name)

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
:func:`ingest_manifest` store them, each file all or nothing (its own savepoint in a write
transaction shared by up to :data:`FILES_PER_TURN` files).
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from sqlalchemy import bindparam, or_, select

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
                 force_site: bool = False, notes: list[str] | None = None,
                 checksum: str | None = None) -> list[SourceDraft]:
    """The sources a file holds, as drafts (names not yet made unique in a project).

    A diary gives one draft per entry; any other kind one draft per file.
    Nothing is written anywhere; ``known_codes`` are participant codes that
    speaker labels may match, ``participant_sites`` their sites.  Each
    source's site comes from its participant (see :func:`resolve_site`);
    ``--site`` (``site``) is for sources with no participant.  ``checksum``
    may pass the SHA-256 of ``data`` when the caller has computed it.
    """
    participant_sites = participant_sites or {}
    speaker_map = parse_speaker_map(speaker_map)
    if kind is not None and kind not in S.SOURCE_KINDS:
        raise SpRealistError(f"{name}: kind {kind!r} is not one of {', '.join(S.SOURCE_KINDS)}; choose one of them.")
    doc = read_document(data, name)
    kind = kind or detect_kind(doc)
    checksum = checksum or sha256_bytes(data)
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
    """Ingest files into ``project``, each file all or nothing (see :class:`_Turns`).

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
    batch = _Batch(turns=_Turns(project))
    try:
        for i, path in enumerate(paths, start=1):
            report.files.append(_ingest_file(project, Path(path), opts, batch))
            batch.turns.step()
            if progress:
                progress(i, len(paths))
    finally:
        batch.turns.close()
    project.refresh_statistics()  # on a server, the next query is planned for the new rows
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

    The whole manifest is checked first; then each file is ingested all or
    nothing, as by :func:`ingest_paths`.  ``defaults`` (``kind``, ``site``,
    ``participant``...) apply where a row leaves a column empty.  ``within``
    confines every row's file to that folder (see :func:`read_manifest`).
    """
    rows = read_manifest(csv_path, within=within)
    smap = parse_speaker_map(speaker_map)
    report = IngestReport()
    batch = _Batch(turns=_Turns(project))
    try:
        for i, row in enumerate(rows, start=1):
            merged = {**{k: v for k, v in (defaults or {}).items() if v}, **{k: v for k, v in row.items() if v}}
            attrs = {k: v for k, v in merged.items() if k not in MANIFEST_COLUMNS and not k.startswith("_")}
            opts = _Options(kind=merged.get("kind"), site=merged.get("site"), participant=merged.get("participant"),
                            role=merged.get("role"), date=merged.get("date"), attributes=attrs, speaker_map=smap,
                            replace=replace, force_site=force_site)
            report.files.append(_ingest_file(project, Path(row["path"]), opts, batch))
            batch.turns.step()
            if progress:
                progress(i, len(rows))
    finally:
        batch.turns.close()
    project.refresh_statistics()  # on a server, the next query is planned for the new rows
    return report


# The lookups made for every file, built once (building a statement costs more than SQLite's work here).
_src = S.sources.c
#: the sources with this file's content or from this file's path, in one look-up (both columns are indexed:
#: SQLite and PostgreSQL read the two indexes, not the table)
_SAME_CONTENT_OR_PATH = select(_src.name, _src.file_name, _src.kind, _src.file_path, _src.id, _src.checksum) \
    .where(or_(_src.checksum == bindparam("checksum"), _src.file_path == bindparam("path"))) \
    .order_by(_src.ingest_order)
_LEGACY_SAME_NAME = select(_src.id, _src.name, _src.checksum) \
    .where(_src.file_name == bindparam("base"), _src.file_path.is_(None)).order_by(_src.ingest_order)
_PARTICIPANT_SITES = select(S.participants.c.code, S.participants.c.site)
_ANY_LEGACY = select(_src.id).where(_src.file_name.is_not(None), _src.file_path.is_(None)).limit(1)


#: Files one write transaction of an ingest run holds at most (each file in its own savepoint, so a refused
#: file leaves nothing behind and the others stand), and the longest such a transaction stays open before it
#: commits (other writers wait for it): a commit per file cost more than storing a transcript.
FILES_PER_TURN = 64
TURN_SECONDS = 2.0


class _Turns:
    """The write transactions (*turns*) of one ingest run.

    :meth:`file` gives a file a savepoint in the current turn, opening a turn when none is open; a turn
    commits after :data:`FILES_PER_TURN` files or :data:`TURN_SECONDS` (:meth:`step`), and at the end of the
    run (:meth:`close`).  A refusal (:class:`SpRealistError`) rolls back only that file's savepoint.  Any other
    error (a bug, Ctrl-C) first commits the files stored before it in the turn, as the files before it were
    already committed when each file had its own transaction, then propagates.
    """

    def __init__(self, project: Project):
        self.project = project
        self._stack: ExitStack | None = None
        self._conn = None
        self._files = 0
        self._started = 0.0

    @contextmanager
    def file(self):
        if self._conn is None:
            stack = ExitStack()
            self._conn = stack.enter_context(self.project.begin())  # busy: ProjectError, the file is refused
            self._stack, self._files, self._started = stack, 0, time.monotonic()
        self._files += 1
        try:
            with self.project.savepoint(self._conn):
                yield self._conn
        except SpRealistError:
            raise
        except BaseException:
            self.close()
            raise

    def step(self) -> None:
        """After a file (outside its savepoint, so that a failed commit is never taken for that file's
        refusal): commit the turn when it holds :data:`FILES_PER_TURN` files or is :data:`TURN_SECONDS` old."""
        if self._conn is not None and (self._files >= FILES_PER_TURN
                                       or time.monotonic() - self._started >= TURN_SECONDS):
            self.close()

    def close(self) -> None:
        """Commit the open turn, if any."""
        stack, self._stack, self._conn = self._stack, None, None
        if stack is not None:
            stack.close()


@dataclass
class _Batch:
    """What one ingest run remembers between files: ``seen`` maps base names to the first file (resolved,
    as given) seen with each; ``legacy`` whether the project holds sources with a file name but no path
    (from before schema 2; ``None``: not looked up yet; no ingest adds such sources); ``turns`` the run's
    write transactions (``None``: a transaction per file); ``actor`` who the audit rows name (resolved once
    per run)."""

    seen: dict[str, tuple[Path, str]] = field(default_factory=dict)
    legacy: bool | None = None
    turns: _Turns | None = None
    actor: str | None = None


def _actor(conn, batch: _Batch) -> str:
    """Who the run's audit rows name, resolved at the first one (the same for every file of a run)."""
    if batch.actor is None:
        from ..identity import current_user

        batch.actor = current_user(None, conn=conn)
    return batch.actor


def _may_have_legacy(conn, batch: _Batch) -> bool:
    if batch.legacy is None:
        batch.legacy = conn.execute(_ANY_LEGACY).first() is not None
    return batch.legacy


def _ingest_file(project: Project, path: Path, opts: _Options, batch: _Batch | None = None) -> FileResult:
    """Ingest one file, all or nothing: in its own transaction, or with ``batch.turns`` in its own
    savepoint of the run's current write turn (see :class:`_Turns`).

    Sources remember their file's absolute path (``file_path``), so a file is
    matched to its earlier sources by path: ``s1/notes.txt`` and
    ``s2/notes.txt`` are two files, and ``--replace`` of one never touches the
    other.  Sources ingested before schema 2 have no path; they are matched by
    base name (``file_name``) as before.  A batch can therefore not tell which
    of two different files with one base name such a legacy source came from:
    once one of them has been seen, a second one that would be matched to
    legacy sources is refused (``batch``: see :class:`_Batch`).
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
        batch_state = batch if batch is not None else _Batch()
        if batch is not None:
            first = batch.seen.setdefault(base, (here, shown))
            if first[0] != here:
                other = first[1]
        src = S.sources.c
        # One transaction reads what the project holds of this file and writes the new sources: an
        # IngestError raised on the way rolls it back, so nothing of a refused file is written.
        with (batch_state.turns.file() if batch_state.turns is not None else project.begin()) as conn:
            found_rows = conn.execute(_SAME_CONTENT_OR_PATH, {"checksum": checksum, "path": file_path}).all()
            same = [r[:5] for r in found_rows if r[5] == checksum]
            # this file's earlier sources: by path; legacy sources (no path) by base name
            previous = [(r[4], r[0], r[5]) for r in found_rows if r[3] == file_path]
            legacy = False
            if not previous and _may_have_legacy(conn, batch_state):
                previous = conn.execute(_LEGACY_SAME_NAME, {"base": base}).all()
                legacy = bool(previous)
            participant_sites = dict(conn.execute(_PARTICIPANT_SITES).all())
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
                    conn.execute(S.sources.update().where(src.id.in_(found), src.file_path.is_(None))
                                 .values(file_path=file_path))
                    project.log(conn, "ingest.record_path", base, actor=_actor(conn, batch_state), checksum=checksum,
                                path=file_path, sources=len(found))
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
                                  force_site=opts.force_site, notes=notes, checksum=checksum)
            if not drafts:
                raise IngestError(f"{shown}: no text found; check that it is the right file.")
            for d in drafts:
                d.file_path = file_path
            old_ids = [r[0] for r in previous]
            outcome = None
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
            project.log(conn, "ingest.replace" if old_ids else "ingest", base, actor=_actor(conn, batch_state),
                        checksum=checksum,
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

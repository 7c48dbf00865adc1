"""Reproducible studies: ``study.yaml`` -> project + every output (``sp-realist build``).

:func:`load_study` reads and checks the manifest (every file it names must
exist, every key must be known) before anything is created.
:func:`build_study` then creates the project from scratch in a temporary file
beside its destination, ingests the sources in the order the manifest lists
them, imports the codebook (with its rules and themes), autocodes, imports
codings, theories and analysis files, and writes the reports, the
programme-theory figure (PNG, SVG, GraphML) and every table as CSV.  All of
it is made in a hidden staging folder inside the output folder and moved into
place only when every step succeeded, so a failed build leaves the output
folder exactly as it was (see :func:`build_study`).

The format is documented in docs/reports.md.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from .. import schema as S
from ..errors import ProjectError, SpRealistError
from ..store import Project
from ..yamlio import YamlLines, load_yaml_file_with_lines
from .model import ReportSettings

STUDY_FILE = "study.yaml"
STUDY_KEYS = {"title", "project", "date", "participants", "sources", "codebook", "autocode", "codings", "theories",
              "analysis", "questions", "report", "templates", "description", "interviewer_speakers",
              "narrative", "findings"}
AUTOCODE_KEYS = {"include_interviewer"}
SOURCE_KEYS = {"path", "paths", "manifest", "kind", "participant", "site", "role", "date", "attributes", "speakers"}
PARTICIPANT_KEYS = {"code", "role", "site", "attributes"}
BUILD_SETTING = "build"


@dataclass
class Study:
    """A checked ``study.yaml``; paths are resolved against the study folder."""

    folder: Path
    title: str
    project: str
    date: str | None
    participants: list[dict]
    sources: list[dict]
    codebook: Path | None
    autocode: bool
    codings: list[Path]
    theories: list[Path]
    analysis: list[Path]
    questions: dict[str, Any]  # Q1: text, or Q1: {text, themes, theories}
    report: dict[str, Any]
    formats: list[str]
    templates: Path | None
    docx_template: Path | None
    interviewer_speakers: list[str] | None = None  # the project's interviewer_speakers setting (None: defaults)
    autocode_include_interviewer: bool = False  # autocode interviewer turns too (autocode: {include_interviewer: true})
    narrative: dict[str, Path] = field(default_factory=dict)  # author's sections: name -> Markdown file (narrative.py)
    findings: list[Path] = field(default_factory=list)  # summary-of-findings files (sp_realist.cmoc.findings)

    def settings(self) -> ReportSettings:
        data = {k: v for k, v in self.report.items() if k not in ("formats", "template", "templates", "tables")}
        data.setdefault("title", self.title)
        if self.date and "date" not in data:
            data["date"] = self.date
        data.setdefault("questions", self.questions)
        return ReportSettings.from_mapping(data, f"{self.folder / STUDY_FILE}: report")


@dataclass
class BuildResult:
    project: Path | str  # the project file, or (with ``into``) the database URL as shown (no password)
    outputs: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    out: Path | None = None  # the output folder


def _as_list(value: Any, where: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, list):
        return value
    raise SpRealistError(f"{where}: expected a file name or a list of file names.")


def _question(value: Any, where: str) -> Any:
    """A question's text, or {text, themes, theories} naming the themes/theories that address it."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    bad = sorted(set(value) - {"text", "themes", "theories"})
    if bad:
        raise SpRealistError(f"{where}: unknown field(s) {', '.join(map(str, bad))}; use text, themes, theories.")
    out: dict[str, Any] = {"text": str(value.get("text") or "")}
    for key in ("themes", "theories"):
        if value.get(key) is not None:
            items = value[key] if isinstance(value[key], list) else [value[key]]
            out[key] = [str(i) for i in items]
    return out


class StudyPaths:
    """The one check every path a ``study.yaml`` names goes through: it must stay inside the study folder.

    A path must be relative, and resolve -- after following symbolic links -- inside the study folder; a glob
    may not contain ``..`` and every file it matches must resolve inside; a folder (``templates``) must hold no
    link to anything outside.  A refusal is one sentence naming the study.yaml, the entry and its line.  Every
    path key of study.yaml (``sources`` ``path``/``paths``/``manifest`` and the manifest's rows, ``codebook``,
    ``codings``, ``theories``, ``analysis``, ``templates``, ``report: template``, and any key added later) is
    read through :meth:`path`, :meth:`file`, :meth:`folder_path`, :meth:`glob` or :meth:`manifest_rows`.
    """

    def __init__(self, study_yaml: Path, lines: YamlLines | None = None):
        self.study_yaml = study_yaml
        self.folder = study_yaml.parent
        self.root = self.folder.resolve()
        self.lines = lines

    def where(self, key_path: tuple) -> str:
        line = self.lines.line(*key_path) if self.lines is not None and key_path else None
        return f"{self.study_yaml}, line {line}" if line else str(self.study_yaml)

    def _inside(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def refuse(self, key_path: tuple, entry: str, value: Any, how: str) -> SpRealistError:
        return SpRealistError(f"{self.where(key_path)}: {entry} {str(value)!r} {how}, outside the study folder "
                              f"{self.folder}; copy what it names into the study folder and give a path relative "
                              "to it.")

    def path(self, value: Any, key_path: tuple, entry: str) -> Path:
        """``folder / value`` once it is known to stay inside the study folder (whether or not it exists)."""
        raw = Path(str(value))
        if raw.is_absolute() or str(value).startswith("~"):
            raise self.refuse(key_path, entry, value, "is an absolute path")
        p = self.folder / raw
        real = p.resolve()
        if not self._inside(real):
            how = f"resolves to {real}" if ".." in raw.parts else f"is a link to {real}"
            raise self.refuse(key_path, entry, value, how)
        return p

    def file(self, value: Any, key_path: tuple, entry: str) -> Path:
        p = self.path(value, key_path, entry)
        if not p.is_file():
            raise SpRealistError(f"{self.where(key_path)}: the {entry} file {value} does not exist (looked in "
                                 f"{self.folder}); fix the path.")
        return p

    def folder_path(self, value: Any, key_path: tuple, entry: str) -> Path:
        """A folder inside the study whose files and sub-folders (links included) all stay inside too."""
        p = self.path(value, key_path, entry)
        if not p.is_dir():
            raise SpRealistError(f"{self.where(key_path)}: the {entry} folder {value} does not exist; fix the path.")
        for dirpath, dirnames, filenames in os.walk(p):
            for name in dirnames + filenames:
                item = Path(dirpath) / name
                real = item.resolve()
                if not self._inside(real):
                    rel = item.relative_to(self.folder).as_posix()
                    raise self.refuse(key_path, f"{entry} folder {value}: the file", rel, f"is a link to {real}")
        return p

    def glob(self, pattern: Any, key_path: tuple, entry: str) -> list[Path]:
        raw = Path(str(pattern))
        if raw.is_absolute() or str(pattern).startswith("~"):
            raise self.refuse(key_path, entry, pattern, "is an absolute pattern")
        if ".." in raw.parts:
            raise self.refuse(key_path, entry, pattern, "climbs out of the folder with '..'")
        matches = sorted(glob.glob(str(self.folder / raw)))
        for m in matches:
            real = Path(m).resolve()
            if not self._inside(real):
                raise self.refuse(key_path, f"{entry} {pattern}: the match", Path(m).relative_to(self.folder).as_posix(),
                                  f"is a link to {real}")
        return [Path(m) for m in matches]

    def manifest_rows(self, manifest: Path, key_path: tuple) -> None:
        """Every row of ``manifest`` names a file inside the study folder (and the manifest is well formed)."""
        from ..ingest import read_manifest

        try:
            read_manifest(manifest, within=self.folder)
        except SpRealistError as exc:
            raise SpRealistError(f"{self.where(key_path)}: source manifest {manifest.relative_to(self.folder)}: "
                                 f"{exc.message}") from None


def load_study(folder: str | os.PathLike) -> Study:
    """Read and check ``folder/study.yaml``; raise one clear error for the first problem."""
    folder = Path(folder)
    path = folder / STUDY_FILE if folder.is_dir() else folder
    if path.name != STUDY_FILE and path.suffix not in (".yaml", ".yml"):
        raise SpRealistError(f"{folder}: not a study folder; give a folder holding {STUDY_FILE}.")
    if not path.is_file():
        raise SpRealistError(f"{folder}: no {STUDY_FILE} in this folder; create one (see docs/reports.md).")
    folder = path.parent
    data, lines = load_yaml_file_with_lines(path, problem=False)
    paths = StudyPaths(path, lines)
    if not isinstance(data, dict):
        raise SpRealistError(f"{path}: must be a mapping with title, sources, codebook ...; see docs/reports.md.")
    unknown = sorted(set(data) - STUDY_KEYS)
    if unknown:
        raise SpRealistError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(STUDY_KEYS))}.")

    def files(key: str, what: str) -> list[Path]:
        value = data.get(key)
        items = _as_list(value, f"{paths.where((key,))}: {key}")
        return [paths.file(v, (key,) if not isinstance(value, list) else (key, i), what) for i, v in enumerate(items)]

    title = str(data.get("title") or folder.name)
    project = str(data.get("project") or f"{folder.name}.sprealist")
    if "/" in project or "\\" in project:
        raise SpRealistError(f"{path}: project must be a file name, not a path ({project!r}).")
    if not project.endswith(".sprealist"):
        project += ".sprealist"

    participants = []
    for i, p in enumerate(_as_list(data.get("participants"), f"{path}: participants"), start=1):
        if not isinstance(p, dict) or not p.get("code"):
            raise SpRealistError(f"{path}: participant #{i} needs a code, e.g. {{code: S1 DK1, role: link worker}}.")
        bad = sorted(set(p) - PARTICIPANT_KEYS)
        if bad:
            raise SpRealistError(f"{path}: participant {p['code']}: unknown key(s) {', '.join(bad)}.")
        participants.append({"code": str(p["code"]), "role": _opt(p.get("role")), "site": _opt(p.get("site")),
                             "attributes": {str(k): str(v) for k, v in (p.get("attributes") or {}).items()}})

    sources = []
    entries = _as_list(data.get("sources"), f"{path}: sources")
    if not entries:
        raise SpRealistError(f"{path}: no sources; list the files under 'sources:'.")
    source_list = isinstance(data.get("sources"), list)
    for i, s in enumerate(entries, start=1):
        at = ("sources", i - 1) if source_list else ("sources",)
        where = f"{paths.where(at)}: source #{i}"
        if isinstance(s, str):
            s = {"path": s}
        if not isinstance(s, dict):
            raise SpRealistError(f"{where} must be a mapping with path (or paths, or manifest).")
        bad = sorted(set(s) - SOURCE_KEYS)
        if bad:
            raise SpRealistError(f"{where}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(SOURCE_KEYS))}.")
        given = [k for k in ("path", "paths", "manifest") if s.get(k)]
        if len(given) != 1:
            raise SpRealistError(f"{where}: give exactly one of path, paths (a glob) or manifest.")
        if s.get("kind") and s["kind"] not in S.SOURCE_KINDS:
            raise SpRealistError(f"{where}: kind {s['kind']!r} is not one of {', '.join(S.SOURCE_KINDS)}.")
        entry = {k: _opt(s.get(k)) for k in ("kind", "participant", "site", "role", "date")}
        entry["attributes"] = {str(k): str(v) for k, v in (s.get("attributes") or {}).items()}
        entry["speakers"] = {str(k): str(v) for k, v in (s.get("speakers") or {}).items()}
        key = at if not isinstance(data.get("sources"), list) or isinstance(entries[i - 1], str) else None
        if s.get("manifest"):
            key = key or at + ("manifest",)
            entry["manifest"] = paths.file(s["manifest"], key, "source manifest")
            paths.manifest_rows(entry["manifest"], key)
        elif s.get("paths"):
            key = key or at + ("paths",)
            matches = paths.glob(s["paths"], key, "source paths")
            if not matches:
                raise SpRealistError(f"{where}: the pattern {s['paths']} matches no file in {folder}; fix it.")
            entry["files"] = matches
        else:
            entry["files"] = [paths.file(s["path"], key or at + ("path",), "source")]
        sources.append(entry)

    report = data.get("report") or {}
    if not isinstance(report, dict):
        raise SpRealistError(f"{path}: report must be a mapping (title, formats, provenance ...).")
    formats = [str(f) for f in _as_list(report.get("formats", ["docx", "html", "md"]), f"{path}: report formats")]
    from .api import REPORT_FORMATS

    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad:
        raise SpRealistError(f"{path}: report format(s) {', '.join(bad)} unknown; use {', '.join(REPORT_FORMATS)}.")
    questions = data.get("questions") or {}
    if not isinstance(questions, dict):
        raise SpRealistError(f"{path}: questions must be a mapping like {{Q1: text}}.")
    questions = {str(k): _question(v, f"{path}: question {k}") for k, v in questions.items()}
    templates = None
    if data.get("templates"):
        templates = paths.folder_path(data["templates"], ("templates",), "templates")
    elif (folder / "templates").is_dir():
        templates = paths.folder_path("templates", (), "templates")  # the default folder: no line to name
    date = data.get("date")
    interviewers = None
    if data.get("interviewer_speakers") is not None:
        from ..sources import validate_interviewer_speakers

        interviewers = validate_interviewer_speakers(data["interviewer_speakers"], f"{path}: interviewer_speakers")
    autocode_on, include_interviewer = _autocode_option(data.get("autocode", False), f"{path}: autocode")
    study = Study(
        folder=folder, title=title, project=project, date=None if date is None else str(date),
        participants=participants, sources=sources,
        codebook=paths.file(data["codebook"], ("codebook",), "codebook") if data.get("codebook") else None,
        autocode=autocode_on,
        codings=files("codings", "codings"),
        theories=files("theories", "theories"),
        analysis=files("analysis", "analysis"),
        questions=questions, report=report, formats=formats,
        templates=templates,
        docx_template=(paths.file(report["template"], ("report", "template"), "Word template")
                       if report.get("template") else None),
        interviewer_speakers=interviewers, autocode_include_interviewer=include_interviewer,
        narrative=_narrative_files(data.get("narrative"), paths, f"{path}: narrative"),
        findings=files("findings", "findings"),
    )
    study.settings()  # validate the report settings now, before anything is written
    return study


def _narrative_files(value: Any, paths: StudyPaths, where: str) -> dict[str, Path]:
    from .narrative import check_narrative_mapping

    if isinstance(value, dict):  # every file confined to the study folder first (StudyPaths names the line)
        for name, file in value.items():
            if isinstance(file, str) and file.strip():
                paths.path(file, ("narrative", str(name)), f"narrative section {name}")
    return check_narrative_mapping(value, paths.folder, where)


def _autocode_option(value: Any, where: str) -> tuple[bool, bool]:
    """``autocode: true|false`` or ``autocode: {include_interviewer: true}`` -> (autocode?, include interviewer?)."""
    if value is None or isinstance(value, bool):
        return bool(value), False
    if isinstance(value, dict):
        bad = sorted(map(str, set(value) - AUTOCODE_KEYS))
        if bad:
            raise SpRealistError(f"{where}: unknown key(s) {', '.join(bad)}; allowed: "
                                 f"{', '.join(sorted(AUTOCODE_KEYS))} (or autocode: true).")
        include = value.get("include_interviewer", False)
        if not isinstance(include, bool):
            raise SpRealistError(f"{where}: include_interviewer must be true or false.")
        return True, include
    raise SpRealistError(f"{where}: must be true, false or a mapping such as {{include_interviewer: true}}.")


def _opt(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


def _check_out(out: Path, project_name: str) -> list[str]:
    """Refuse an --out we must not write to; return the outputs an earlier build there recorded."""
    if out.exists() and not out.is_dir():
        raise SpRealistError(f"{out}: exists and is not a folder; choose another --out.")
    target = out / project_name
    if target.exists():
        try:
            existing = Project.open(target)
        except ProjectError:
            raise SpRealistError(f"{target}: exists and is not an sp_realist project; move it away or choose "
                                 "another --out.") from None
        try:
            built = existing.get_setting(BUILD_SETTING)
        finally:
            existing.close()
        if not built:
            raise SpRealistError(f"{target}: is a project that was not made by 'sp-realist build'; it will not be "
                                 "overwritten. Choose another --out or move it away.")
        return [str(p) for p in built.get("outputs", [])] if isinstance(built, dict) else []
    return []


def _remove_project_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()


STAGING_PREFIX = ".building-"  # hidden folders in --out: the build being made, and what it replaces
BACKUP_PREFIX = ".replaced-"


def build_study(study_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                on_step: Callable[[str], None] | None = None, key: str | os.PathLike | None = None,
                into: str | None = None) -> BuildResult:
    """Build the study in ``study_dir`` into ``out`` (default ``study_dir/out``); see the module docstring.

    All or nothing: the project and every output are made in a hidden staging folder inside ``out`` and moved
    into place only when all of them were written; a failure at any step leaves ``out`` as it was (a previous
    build's files intact, no new file; ``out`` is not created if it did not exist).

    ``into`` (a PostgreSQL URL) builds the project into that database instead of a file in ``out`` (the outputs
    still go to ``out``): see :class:`ServerBuild`; the database is left as it was on any failure.
    """
    study = load_study(study_dir)
    out = Path(out) if out is not None else study.folder / "out"
    server = ServerBuild(into) if into is not None else None
    previous = server.previous_outputs() if server else _check_out(out, study.project)
    created = [] if out.is_dir() else _missing_parents(out)
    step = on_step or (lambda _msg: None)
    result = BuildResult(project=server.location if server else out / study.project, out=out)

    stage = None

    def shown(msg: str) -> str:  # name the files where they end up, not in the staging folder
        if stage is None:
            return msg
        if study.templates is not None:  # a template stored from the study: name the study's own file
            from ..templating import STORED_PREFIX

            msg = re.sub(re.escape(STORED_PREFIX) + r"([^\s,:;()]+)",
                         lambda m: str(study.templates / m.group(1))
                         if (study.templates / m.group(1)).is_file() else m.group(0), msg)
        for staged_dir in {str(stage.resolve()), str(stage)}:
            if study.templates is not None:  # a copied template: name the study's own file
                msg = msg.replace(os.path.join(staged_dir, "templates"), str(study.templates))
            msg = msg.replace(staged_dir, str(out))
        return msg

    def note(msg: str) -> None:
        msg = shown(msg)
        result.steps.append(msg)
        step(msg)

    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        project = server.create() if server else Project.create(stage / study.project)
        try:
            _populate(project, study, out, note)
            _check_questions(project, study)
            result.counts = project_counts(project)
            files = write_outputs(project, study, stage, key=key, note=note)
            recorded = dict(project.get_setting(BUILD_SETTING) or {})
            recorded["outputs"] = sorted(p.relative_to(stage).as_posix() for p in files)
            project.set_setting(BUILD_SETTING, recorded)
        finally:
            project.close()
        if server:  # the database swap commits only once the files are in place
            server.install(lambda: _install(stage, out, None, previous))
        else:
            _install(stage, out, study.project, previous)
        result.outputs = [out / p.relative_to(stage) for p in files]
        note(f"project {result.project}")
    except BaseException as exc:
        if server is not None:
            server.discard()
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        for folder in created:  # deepest first; only folders this build made, and only if still empty
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(exc, SpRealistError):
            exc.message = shown(exc.message)
            exc.args = (exc.message,)
        elif isinstance(exc, OSError):
            where = shown(str(exc.filename)) if exc.filename else str(out)
            raise SpRealistError(f"{where}: {exc.strerror or exc}; the build failed and left {out} as it "
                                 "was.") from exc
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return result


def _missing_parents(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    p = out.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _install(stage: Path, out: Path, project_name: str | None, previous: list[str]) -> None:
    """Move the staged build into ``out``, replacing the previous build; on any failure put ``out`` back.

    What is replaced (the old project, the files the previous build recorded, whatever a new file lands on,
    the old ``tables`` folder, which a build owns) is first moved aside into a hidden backup folder beside it,
    then the staged files are moved in (``os.replace`` within one file system); only when all moves succeeded
    is the backup deleted. A failure moves the new files out and the backup back. ``project_name`` None: the
    project is not a file in ``out`` (a build into a database), and a project file there is left alone.
    """
    backup = Path(tempfile.mkdtemp(prefix=BACKUP_PREFIX, dir=out))
    root = out.resolve()
    staged = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    folders = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_dir())  # empty ones too
    staged.sort(key=lambda rel: rel.as_posix() == project_name)  # the project last: it records the outputs
    aside: list[Path] = []  # relative paths moved into the backup
    placed: list[Path] = []  # relative paths moved from the stage into out
    made: list[Path] = []  # folders created in out
    try:
        old = ({Path(project_name + suffix) for suffix in ("", "-wal", "-shm", "-journal")} if project_name
               else set()) | set(staged)
        for rel in previous:  # only files inside out that the previous build recorded (never a project)
            path = (out / rel).resolve()
            if root in path.parents and path.is_file() and not path.name.endswith(".sprealist"):
                old.add(path.relative_to(root))
        if (out / "tables").is_dir() and not (out / "tables").is_symlink():
            old.add(Path("tables"))  # a build's own folder: stale tables do not survive a rebuild
        for rel in sorted(old, key=lambda r: r.as_posix()):
            src = out / rel
            if not (src.exists() or src.is_symlink()):
                continue
            if any(a in rel.parents for a in aside):  # inside a folder already moved aside
                continue
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, backup / rel)
            aside.append(rel)
        for rel in folders:  # parents before children (sorted)
            if not (out / rel).is_dir():
                (out / rel).mkdir()
                made.append(out / rel)
        for rel in staged:
            os.replace(stage / rel, out / rel)
            placed.append(rel)
    except BaseException:
        for rel in reversed(placed):
            try:
                os.replace(out / rel, stage / rel)
            except OSError:  # pragma: no cover - out changed under us
                pass
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:  # pragma: no cover
                pass
        for rel in reversed(aside):
            try:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(backup / rel, out / rel)
            except OSError:  # pragma: no cover - out changed under us
                pass
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


BUILD_SCHEMA_PREFIX = "sp_realist_building_"


class ServerBuild:
    """``build --into URL``: the project is built in a new schema of the target database and swapped in.

    The target is the schema the URL's connections use (normally ``public``). It must hold no tables, or a
    project an earlier ``build`` made (which the new one replaces); anything else is refused before the
    build starts. The project is built (every step, on the server) in a fresh schema
    ``sp_realist_building_<random>`` of the same database; when everything, outputs included, succeeded, one
    transaction drops the previous build's tables and moves the new ones into the target schema (``ALTER TABLE
    ... SET SCHEMA``, with their sequences, indexes and constraints), and commits only after the output files
    were moved into ``--out``. Any failure drops the building schema: the database is left as it was.
    """

    def __init__(self, url: str):
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, DBAPIError

        from ..store import display_location

        self.location = display_location(url)
        try:
            self.url = make_url(url)
        except ArgumentError:
            raise SpRealistError(f"--into {self.location}: not a database URL; give one like "
                                 "postgresql+psycopg://user@host/database.") from None
        if self.url.get_backend_name() != "postgresql":
            raise SpRealistError(f"--into {self.location}: build --into needs a PostgreSQL database "
                                 "(postgresql+psycopg://user@host/database); without --into the project is a file "
                                 "in --out.")
        self.schema: str | None = None
        self.engine = create_engine(self.url)
        try:
            with self.engine.connect() as conn:
                self.target = conn.exec_driver_sql("SELECT current_schema()").scalar()
                tables = set(inspect(conn).get_table_names(schema=self.target)) if self.target else set()
                built = None
                if "meta" in tables:
                    row = conn.execute(select(S.meta.c.value).where(
                        S.meta.c.key == f"setting:{BUILD_SETTING}")).first()
                    built = _json_load(row[0]) if row else None
        except DBAPIError as exc:
            self.engine.dispose()
            reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else "failed"
            raise SpRealistError(f"--into {self.location}: could not connect ({reason.rstrip('.')}); check the "
                                 "URL and that the database exists.") from None
        if self.target is None:
            self.engine.dispose()
            raise SpRealistError(f"--into {self.location}: the connection has no schema to build into (check the "
                                 "search_path).")
        if tables and not built:
            self.engine.dispose()
            what = "a project that was not made by 'sp-realist build'" if "meta" in tables else "tables"
            raise SpRealistError(f"--into {self.location}: the database already holds {what}; it will not be "
                                 "overwritten. Give an empty database.")
        self.previous = built if isinstance(built, dict) else None
        self.replaces = sorted(t for t in tables if t in S.metadata.tables) if built else []
        unknown = sorted(tables - set(S.metadata.tables)) if built else []
        if unknown:
            self.engine.dispose()
            raise SpRealistError(f"--into {self.location}: besides an earlier build's project the database holds "
                                 f"other tables ({', '.join(unknown)}); give a database of its own.")

    def previous_outputs(self) -> list[str]:
        """The output files the build being replaced recorded (removed from --out when the new ones go in)."""
        return [str(p) for p in (self.previous or {}).get("outputs", [])]

    def create(self) -> Project:
        """A new project in a fresh schema of the target database."""
        import secrets

        from ..store import display_location

        self.schema = BUILD_SCHEMA_PREFIX + secrets.token_hex(6)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
        options = " ".join(filter(None, [self.url.query.get("options", ""), f"-csearch_path={self.schema}"]))
        staged = self.url.update_query_dict({"options": options})
        project = Project.create(staged.render_as_string(hide_password=False))
        project.location = display_location(self.url.render_as_string(hide_password=False))
        return project

    def install(self, files: Callable[[], None]) -> None:
        """One transaction: drop the build being replaced, move the new tables in, drop the building schema,
        run ``files`` (moving the outputs into place), commit."""
        from sqlalchemy import inspect

        quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as conn:
            if self.replaces:
                conn.exec_driver_sql(f"DROP TABLE {', '.join(f'{quote(self.target)}.{quote(t)}' for t in self.replaces)}")
            for table in inspect(conn).get_table_names(schema=self.schema):
                conn.exec_driver_sql(f"ALTER TABLE {quote(self.schema)}.{quote(table)} SET SCHEMA {quote(self.target)}")
            # the digest triggers are made again for the tables where they now are (the staging schema's
            # functions, with their triggers, go; so do the replaced build's)
            S.drop_digest_function(conn, self.schema)
            S.drop_digest_function(conn, self.target)
            S.create_digest_triggers(conn)
            conn.exec_driver_sql(f"DROP SCHEMA {quote(self.schema)}")
            files()
        self.schema = None
        self.engine.dispose()

    def discard(self) -> None:
        """Drop the building schema (after a failure): the database is as it was."""
        try:
            if self.schema is not None:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                self.schema = None
        finally:
            self.engine.dispose()


def _json_load(value: str | None) -> Any:
    import json

    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def _check_questions(project: Project, study: Study) -> None:
    """Every theme and theory a question names exists, so the build fails before anything is written."""
    with project.connect() as conn:
        known = {"themes": {r[0] for r in conn.execute(select(S.themes.c.name))},
                 "theories": {r[0] for r in conn.execute(select(S.theories.c.key))}}
    for q, spec in study.questions.items():
        if not isinstance(spec, dict):
            continue
        for field_name, what, where in (("themes", "theme", "the codebook"), ("theories", "theory", "the theories file")):
            for name in spec.get(field_name) or []:
                if name not in known[field_name]:
                    raise SpRealistError(f"{study.folder / STUDY_FILE}: question {q} names the {what} {name!r}, "
                                         f"which {where} does not define; fix the name.")


def _populate(project: Project, study: Study, out: Path, note: Callable[[str], None]) -> None:
    from ..sources import ensure_participant

    with project.begin() as conn:
        project._set_meta(conn, f"setting:{BUILD_SETTING}", _json({
            "study": os.path.relpath(study.folder.resolve(), out.resolve()), "title": study.title}))
        project._set_meta(conn, "setting:report", _json({k: v for k, v in study.report.items()
                                                          if k not in ("template",)} | (
            {"date": study.date} if study.date and "date" not in study.report else {})))
        project._set_meta(conn, "setting:questions", _json(study.questions))
        if study.interviewer_speakers is not None:
            from ..sources import INTERVIEWER_SETTING

            project._set_meta(conn, f"setting:{INTERVIEWER_SETTING}", _json(study.interviewer_speakers))
        if study.narrative:  # the author's text is stored, so the project renders without the study folder
            from .narrative import read_narrative_file, store_narrative

            store_narrative(project, conn, {n: read_narrative_file(p) for n, p in study.narrative.items()})
        for p in study.participants:
            ensure_participant(conn, p["code"], role=p["role"], site=p["site"], attributes=p["attributes"])
        project.log(conn, "build.start", study.title, participants=len(study.participants))
    from ..ingest import ingest_manifest, ingest_paths

    n_files = 0
    for entry in study.sources:
        if "manifest" in entry:
            defaults = {k: entry[k] for k in ("kind", "participant", "site", "role", "date") if entry.get(k)}
            rep = ingest_manifest(project, entry["manifest"], speaker_map=entry["speakers"] or None,
                                  defaults=defaults or None, within=study.folder)
        else:
            rep = ingest_paths(project, entry["files"], kind=entry["kind"], site=entry["site"],
                               participant=entry["participant"], attributes=entry["attributes"] or None,
                               role=entry["role"], date=entry["date"], speaker_map=entry["speakers"] or None)
        refused = rep.refused
        if refused:
            first = refused[0]
            msg = getattr(first, "message", None) or getattr(first, "reason", None) or str(first)
            raise SpRealistError(f"{study.folder / STUDY_FILE}: {len(refused)} source file(s) could not be ingested; "
                                 f"first: {msg}")
        n_files += len(rep.files)
    note(f"ingested {n_files} files")
    if study.codebook is not None:
        from ..coding.codebook import import_codebook_yaml

        import_codebook_yaml(project, study.codebook)
        note(f"codebook {study.codebook.name}")
    if study.autocode:
        from ..coding.autocode import autocode

        hits = autocode(project, include_interviewer=study.autocode_include_interviewer)
        new = int(hits["new"].sum()) if "new" in hits.columns and len(hits) else len(hits)
        note(f"autocoded: {new} codings from the codebook's rules"
             + (" (interviewer turns included)" if study.autocode_include_interviewer else ""))
    for path in study.codings:
        from ..coding.codings import import_codings_yaml

        stats = import_codings_yaml(project, path)
        note(f"codings {path.name}: {stats.get('added', 0)} added")
    for path in study.theories:
        from ..cmoc.theoryfile import import_theories_yaml

        import_theories_yaml(project, path)
        note(f"theories {path.name}")
    if study.narrative:  # a theory's narrative section must name one of the theories just imported
        from .narrative import check_theory_narratives

        check_theory_narratives(project, f"{study.folder / STUDY_FILE}: narrative")
    for path in study.analysis:
        try:
            from ..cmoc.analysisfile import import_analysis_yaml
        except ImportError:
            raise SpRealistError(f"{path}: analysis files need sp_realist.cmoc.analysisfile, which this installation "
                                 "lacks; reinstall sp_realist.") from None
        import_analysis_yaml(project, path)
        note(f"analysis {path.name}")
    for path in study.findings:  # after codebook, theories and analysis: findings link their themes, codes, CMOCs
        from ..cmoc.findings import import_findings_yaml

        import_findings_yaml(project, path)
        note(f"findings {path.name}")


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def project_counts(project: Project) -> dict[str, int]:
    with project.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (S.sources, S.participants, S.codes, S.codings, S.themes, S.excerpts, S.appraisals,
                          S.theories, S.cmocs)}


def write_outputs(project: Project, study: Study, out: Path, key=None,
                  note: Callable[[str], None] = lambda _m: None) -> list[Path]:
    """Reports in every requested format, the figure files and every table as CSV."""
    from .api import write_reports
    from .render import export_extra_tables

    settings = study.settings()
    copied = copy_templates(project, study, out)
    targets = [(out / f"report.{fmt}", fmt) for fmt in study.formats]
    tables_dir = out / "tables"
    result = write_reports(project, targets, settings=settings, template=study.docx_template,
                           template_dirs=[study.templates] if study.templates else [], key=key,
                           tables_dir=tables_dir)
    outputs = list(result.paths)
    tables = list(result.tables) + export_extra_tables(project, result.model, tables_dir)
    note(f"reports: {', '.join(p.name for p in result.paths)}")
    note(f"{len(tables)} tables as CSV in {tables_dir}")
    figures = write_figures(project, result.model, out / "figures")
    if figures:
        note(f"figure: {', '.join(p.name for p in figures)} in {out / 'figures'}")
    return copied + outputs + tables + figures


def copy_templates(project: Project, study: Study, out: Path) -> list[Path]:
    """Store the study's templates in the project (:mod:`sp_realist.project_templates`) and copy them to
    ``out/templates`` for the reader.

    The built project then renders its if/then statements and reports with the study's templates wherever
    it is opened: the output folder moved or shared, the project file copied elsewhere, or a project on a
    server (a path back to the study folder, or to the output folder, would break).
    """
    from ..project_templates import store_templates_conn, template_files

    if study.templates is None:
        return []
    with project.begin() as conn:
        names = store_templates_conn(conn, template_files(study.templates), replace_all=True)
        project.log(conn, "templates.store", ", ".join(names), count=len(names))
    dest = out / "templates"
    copied = []
    for src in sorted(p for p in study.templates.rglob("*") if p.is_file()):
        target = dest / src.relative_to(study.templates)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(target)
    dest.mkdir(parents=True, exist_ok=True)
    return copied


def write_figures(project: Project, model, folder: Path) -> list[Path]:
    """The programme-theory figure as PNG and SVG, and its graph as GraphML."""
    from . import integrations

    folder.mkdir(parents=True, exist_ok=True)
    return integrations.write_graph_files(project, model, folder)

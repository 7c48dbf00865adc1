"""Templates kept in the project (the one writer of the ``project_templates`` table, schema 9).

A project renders its report (``report.md.j2``, ``report.html.j2``) and its if/then statements
(``ifthen.j2``) with the shipped templates unless it holds its own.  Its own are stored *in the project*,
not in a folder beside it, so a project file copied elsewhere, or a project on a PostgreSQL server, renders
exactly as it did where it was built:

>>> from sp_realist.project_templates import store_templates, stored_templates   # doctest: +SKIP
>>> store_templates(project, "report-templates")        # every file of the folder, by its path inside it
>>> sorted(stored_templates(project))                   # ['ifthen.j2', 'report.md.j2']

``sp-realist build`` stores a study's ``templates/`` this way, and ``sp-realist templates add`` stores a
folder or single files.  The stored templates are loaded through the sandboxed factory
(:func:`sp_realist.templating.sandboxed_environment`, ``stored=``), so they are as confined as any other.

Templates are looked up, first match wins, in: folders given for one run (``--templates DIR``, a study being
built), the project's stored templates, a ``templates/`` folder beside the project file, then the shipped
ones.

Projects from before schema 9 named a folder in the setting ``templates_dir`` (relative to the project file).
When such a project is opened and the folder can be read, its files are stored in the project and the setting
removed (:func:`adopt_templates_dir`); when it cannot, rendering says so in one sentence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from . import schema as S
from .errors import NotFoundError, SpRealistError
from .store import Project, insert_ignoring, now

#: The legacy setting (schema < 9): a folder of templates, relative to the project file.
LEGACY_SETTING = "templates_dir"
#: Most characters one stored template may hold (the renderer's output limit is 5 million).
MAX_TEMPLATE_CHARS = 1_000_000


def stored_templates(project_or_conn: Project | Connection) -> dict[str, str]:
    """The project's stored templates: name -> source."""
    if isinstance(project_or_conn, Project):
        with project_or_conn.connect() as conn:
            return stored_templates(conn)
    t = S.project_templates
    return {name: source for name, source in project_or_conn.execute(select(t.c.name, t.c.source).order_by(t.c.name))}


def template_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Every file of ``folder`` (recursively) by its path inside it, POSIX style; a file or link resolving
    outside the folder is refused."""
    root = Path(folder)
    if not root.is_dir():
        raise SpRealistError(f"{root}: the templates folder does not exist; give a folder of .j2 templates.")
    real_root = root.resolve()
    out: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if real_root not in path.resolve().parents:
            raise SpRealistError(f"{path}: the template is a link to a file outside its templates folder "
                                 f"({path.resolve()}); replace the link with the file itself.")
        out[path.relative_to(root).as_posix()] = path
    return out


def _read(path: Path) -> str:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpRealistError(f"{path}: the template is not UTF-8 text; save it as UTF-8 (a project keeps only "
                             "text templates).") from None
    if len(source) > MAX_TEMPLATE_CHARS:
        raise SpRealistError(f"{path}: the template has {len(source):,} characters, more than the "
                             f"{MAX_TEMPLATE_CHARS:,} a project keeps; shorten it.")
    return source


def _check_syntax(name: str, source: str, where: Path) -> None:
    from jinja2 import TemplateSyntaxError

    from .templating import sandboxed_environment

    try:
        sandboxed_environment(packaged=False).parse(source, name=name)
    except TemplateSyntaxError as exc:
        raise SpRealistError(f"{where}: template error at line {exc.lineno} ({exc.message}); fix it.") from None


def store_templates_conn(conn: Connection, files: dict[str, Path], *, replace_all: bool = False) -> list[str]:
    """Store ``files`` (name -> file) inside the caller's transaction, replacing stored templates of the same
    name (every stored template when ``replace_all``); returns the names stored.  Each is read as UTF-8 and
    parsed first: a file that is not a valid template is refused and nothing is stored."""
    sources = {}
    for name, path in files.items():
        source = _read(path)
        if name.endswith((".j2", ".jinja", ".jinja2", ".html", ".md", ".txt")):
            _check_syntax(name, source, path)
        sources[name] = source
    t = S.project_templates
    if replace_all:
        conn.execute(delete(t))
    elif sources:
        conn.execute(delete(t).where(t.c.name.in_(list(sources))))
    ts = now()
    for name, source in sources.items():
        conn.execute(insert_ignoring(conn, t, ["name"]).values(name=S.check_column(t.c.name, name), source=source,
                                                                updated_at=ts))
    return list(sources)


def store_templates(project: Project, *paths: str | os.PathLike, replace_all: bool = False,
                    actor: str | None = None) -> list[str]:
    """Store templates in the project: each path is a folder (every file in it, by its path inside it) or one
    template file (by its file name).  Returns the names stored, in one transaction."""
    if not paths:
        raise SpRealistError("Name a templates folder or template files to store.")
    files: dict[str, Path] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.update(template_files(path))
        elif path.is_file():
            files[path.name] = path
        else:
            raise SpRealistError(f"{path}: no such template file or folder; check the path.")
    with project.begin() as conn:
        names = store_templates_conn(conn, files, replace_all=replace_all)
        project.log(conn, "templates.store", ", ".join(names), actor=actor, count=len(names))
    return names


def remove_templates(project: Project, names: Iterable[str], *, actor: str | None = None) -> list[str]:
    """Remove stored templates by name (the shipped ones are used again); an unknown name is refused."""
    names = list(dict.fromkeys(names))
    t = S.project_templates
    with project.begin() as conn:
        known = set(stored_templates(conn))
        for name in names:
            if name not in known:
                from .errors import did_you_mean

                raise NotFoundError(f"No template {name!r} is stored in the project; "
                                    f"{did_you_mean(name, known, 'see sp-realist templates list.')}")
        conn.execute(delete(t).where(t.c.name.in_(names)))
        project.log(conn, "templates.remove", ", ".join(names), actor=actor, count=len(names))
    return names


def _legacy_folder(project: Project) -> tuple[str, Path | None] | None:
    """(setting, folder) for a legacy ``templates_dir`` setting (folder None: it cannot be resolved), or None."""
    setting = project.get_setting(LEGACY_SETTING)
    if not setting:
        return None
    path = Path(str(setting)).expanduser()
    if not path.is_absolute():
        if "://" in project.location:
            return str(setting), None
        path = Path(project.location).resolve().parent / path
    return str(setting), path


def adopt_templates_dir(project: Project, *, strict: bool = False) -> list[str]:
    """Store the files of the folder a legacy ``templates_dir`` setting names, then remove the setting.

    Nothing to do without the setting.  When the folder cannot be read, the setting is left as it is; with
    ``strict`` (rendering) that is one sentence saying what to do."""
    found = _legacy_folder(project)
    if found is None:
        return []
    setting, folder = found
    if folder is None or not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        if not strict:
            return []
        where = f"the folder {folder}" if folder is not None else "a folder relative to a project file"
        raise SpRealistError(
            f"setting templates_dir {setting!r}: {where} does not exist here and the project holds no copy of "
            "its templates; store them in the project with 'sp-realist templates add FOLDER' (or create the "
            "folder).")
    files = template_files(folder)
    with project.begin() as conn:
        names = store_templates_conn(conn, files)
        conn.execute(delete(S.meta).where(S.meta.c.key == f"setting:{LEGACY_SETTING}"))
        project.log(conn, "templates.adopt", setting, count=len(names))
    return names


def template_search(project: Project | None, extra: Iterable[str | os.PathLike] = ()) -> list:
    """Where a render looks templates up, first match wins: the folders given for this run, the project's
    stored templates (a mapping), then ``templates/`` beside a project file; pass it to
    :func:`sp_realist.templating.sandboxed_environment` (which adds the shipped templates last)."""
    search: list = [str(d) for d in extra if d]
    if project is None:
        return search
    adopt_templates_dir(project, strict=True)
    stored = stored_templates(project)
    if stored:
        search.append(stored)
    if "://" not in project.location:
        beside = Path(project.location).resolve().parent / "templates"
        if beside.is_dir():
            search.append(str(beside))
    return search


def templates_frame(project: Project):
    """The stored templates as a DataFrame: name, characters, updated_at."""
    import pandas as pd

    t = S.project_templates
    with project.connect() as conn:
        rows = conn.execute(select(t.c.name, t.c.source, t.c.updated_at).order_by(t.c.name)).all()
    return pd.DataFrame([(n, len(s), u) for n, s, u in rows], columns=["name", "characters", "updated_at"])

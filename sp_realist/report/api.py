"""Write reports: :func:`write_report` is what ``sp-realist report`` calls.

Every output is first written to a temporary folder beside its destination,
passed through the anonymisation audit when the project has an applied
pseudonym key, and only then moved into place, so a report that would leak a
real name is never left on disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sqlalchemy import select

from .. import schema as S
from ..errors import CheckFailed, SpRealistError
from ..store import Project
from .model import ReportModel, ReportSettings, build_report_model

REPORT_FORMATS = ("docx", "html", "md")
ENV_KEY = "SP_REALIST_KEY"


@dataclass
class ReportResult:
    """What :func:`write_report` wrote."""

    paths: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    audited: bool = False
    model: ReportModel | None = None


def applied_key_hashes(project: Project) -> list[str]:
    """SHA-256 hashes of the pseudonym keys whose anonymisation is in effect in the project."""
    try:
        from ..privacy.anonymise import applied_keys
    except ImportError:  # pragma: no cover - partial install
        applied_keys = None
    if applied_keys is not None:
        return list(applied_keys(project))
    r = S.anonymisation_runs
    with project.connect() as conn:
        runs = conn.execute(select(r.c.key_sha256, r.c.direction).order_by(r.c.id)).all()
    state: dict[str, int] = {}
    for sha, direction in runs:
        state[sha] = state.get(sha, 0) + (1 if direction == "apply" else -1)
    return sorted(sha for sha, n in state.items() if n > 0)


def _check_key(project: Project, key: str | os.PathLike | None):
    """The leak check for the report, or None when no pseudonym key is applied (and none given).

    Without a key the project's fingerprints of the applied key are used; a key given (or
    $SP_REALIST_KEY) is used too and must be the one applied."""
    from ..privacy.audit import output_audit_key

    if not applied_key_hashes(project):
        return None  # nothing applied: reports are not checked (as before), even when a key is given
    return output_audit_key(project, resolve_key(key))


def resolve_key(key: str | os.PathLike | None) -> str | None:
    """The pseudonym key file: the explicit one, else $SP_REALIST_KEY, else None."""
    value = str(key) if key else os.environ.get(ENV_KEY) or None
    if value and not Path(value).is_file():
        raise SpRealistError(f"{value}: the pseudonym key file does not exist; pass --key PATH to the key.")
    return value


def template_dirs_for(project: Project, extra: Iterable[str | os.PathLike] = ()) -> list:
    """Where the report's templates are looked up, first match wins: the folders given (e.g. a study's
    ``templates/``), the templates stored in the project, then ``templates/`` beside the project file -- the
    same rule as the if/then templates (:func:`sp_realist.project_templates.template_search`)."""
    from ..project_templates import template_search

    return template_search(project, extra)


def _audit(paths: list[Path], finder, shown: dict[Path, Path] | None = None) -> None:
    from ..privacy.audit import check_output

    for p in paths:
        check_output(p, finder, (shown or {}).get(p, p))


def write_report(project: Project, out: str | os.PathLike, fmt: str | None = None,
                 settings: ReportSettings | None = None, template: str | os.PathLike | None = None,
                 template_dirs: Iterable[str | os.PathLike] = (), key: str | os.PathLike | None = None,
                 tables_dir: str | os.PathLike | None = None, model: ReportModel | None = None) -> ReportResult:
    """Write the project's report to ``out`` as ``fmt`` (docx, html or md; default from the suffix).

    ``template`` is a reference .docx whose styles the Word report takes;
    ``template_dirs`` are folders whose ``report.md.j2`` / ``report.html.j2``
    override the shipped ones.  With ``tables_dir`` every table is also
    written there as CSV.  When the project has an applied pseudonym key,
    ``key`` (or $SP_REALIST_KEY) must be given and the written files are
    audited: :class:`CheckFailed` if a real name would leak.
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in REPORT_FORMATS:
        raise SpRealistError(f"{out}: cannot tell the report format; use --to {'|'.join(REPORT_FORMATS)}.")
    suffix = out.suffix.lstrip(".").lower()
    if suffix in REPORT_FORMATS and suffix != fmt:
        raise SpRealistError(f"{out}: the file name says .{suffix} but the format is {fmt}; name it "
                             f"{out.with_suffix('.' + fmt).name} or use --to {suffix}.")
    if template is not None and fmt != "docx":
        raise SpRealistError("--template is a reference .docx and only applies to --to docx; drop it or use docx.")
    if not out.parent.exists():
        raise SpRealistError(f"{out.parent}: the output folder does not exist; create it first.")
    if out.is_dir():
        raise SpRealistError(f"{out}: is a folder; give a file name such as report.{fmt}.")
    audit_key = _check_key(project, key)
    dirs = template_dirs_for(project, template_dirs)
    if model is None:
        model = build_report_model(project, settings)
    return _write_all(model, [(out, fmt)], template, dirs, audit_key, tables_dir)


def _write_all(model: ReportModel, targets: list[tuple[Path, str]], template, dirs: list[str],
               key_path, tables_dir) -> ReportResult:
    try:
        return _write_staged(model, targets, template, dirs, key_path, tables_dir)
    except OSError as exc:
        where = exc.filename or targets[0][0].parent
        raise SpRealistError(f"{where}: cannot be written ({exc.strerror or exc}); check the folder's permissions "
                             "and free space.") from None


def _write_staged(model: ReportModel, targets: list[tuple[Path, str]], template, dirs: list[str],
                  key_path, tables_dir) -> ReportResult:
    from .docx_writer import write_docx
    from .render import export_tables, render_html, render_markdown

    result = ReportResult(model=model)
    staging_parent = targets[0][0].parent if targets else Path(tables_dir).parent
    with tempfile.TemporaryDirectory(prefix=".sp-realist-", dir=staging_parent) as tmp:
        tmp = Path(tmp)
        staged: list[tuple[Path, Path]] = []  # (temp path, final path)
        for out, fmt in targets:
            tmp_out = tmp / out.name
            if fmt == "docx":
                write_docx(model, tmp_out, template=template)
            elif fmt == "html":
                tmp_out.write_text(render_html(model, dirs), encoding="utf-8", newline="\n")
            else:
                figure_name = None
                if model.figure is not None and model.figure.png:
                    figure_name = f"{out.stem}-figure.png"
                    (tmp / figure_name).write_bytes(model.figure.png)
                    staged.append((tmp / figure_name, out.parent / figure_name))
                tmp_out.write_text(render_markdown(model, dirs, figure_name), encoding="utf-8", newline="\n")
            staged.append((tmp_out, out))
        table_paths: list[tuple[Path, Path]] = []
        if tables_dir is not None:
            tables_dir = Path(tables_dir)
            for p in export_tables(model, tmp / "tables"):
                table_paths.append((p, tables_dir / p.name))
        if key_path is not None:
            _audit([p for p, _ in staged] + [p for p, _ in table_paths], key_path, dict(staged + table_paths))
            result.audited = True
        for src, dst in staged:
            shutil.move(str(src), str(dst))
            result.paths.append(dst)
        if table_paths:
            tables_dir.mkdir(parents=True, exist_ok=True)
            for src, dst in table_paths:
                shutil.move(str(src), str(dst))
                result.tables.append(dst)
    return result


def write_reports(project: Project, outputs: list[tuple[Path, str]], settings: ReportSettings | None = None,
                  template=None, template_dirs=(), key=None, tables_dir=None) -> ReportResult:
    """Several formats from one model (what ``build`` uses)."""
    if not outputs and tables_dir is None:
        raise SpRealistError("no report formats requested; list some under report: formats.")
    audit_key = _check_key(project, key)
    dirs = template_dirs_for(project, template_dirs)
    model = build_report_model(project, settings)
    return _write_all(model, [(Path(p), f) for p, f in outputs], template, dirs, audit_key, tables_dir)

"""``sp-realist export ...`` and ``sp-realist import ...``: REFI-QDA and codebook exchange."""

from __future__ import annotations

import click

from ..cli_support import emit, format_option, get_project, global_project_path, group, message, project_option
from ..store import Project


@group("export")
def export_group() -> None:
    """Export the project for other qualitative analysis tools (REFI-QDA).

    \b
    Examples:
      sp-realist export qdpx evaluation.qdpx      # whole project (NVivo, ATLAS.ti, MAXQDA, QualCoder)
      sp-realist export qdc codebook.qdc          # codebook only
    """


@group("import")
def import_group() -> None:
    """Import projects and codebooks from other qualitative analysis tools.

    \b
    Examples:
      sp-realist import qdpx nvivo-export.qdpx                    # new project next to the file
      sp-realist import qdpx atlas.qdpx --into evaluation.sprealist
      sp-realist import qdc codebook.qdc -p evaluation.sprealist
      sp-realist import taguette codebook.csv
      sp-realist import qc codebook.yaml
    """


def _report(result) -> None:
    for line in result.notes:
        message(f"Note: {line}.")
    for line in result.changes:
        message(f"Changed: {line}.")
    for line in result.losses:
        message(f"Not imported: {line}.")


KEY_HELP = ("Pseudonym key file (or $SP_REALIST_KEY): the export is audited for real names before it is written "
            "(exit 3, nothing written, if one is found). Required when the project has an applied key.")


@export_group.command("qdpx")
@click.argument("out", type=click.Path(dir_okay=False))
@project_option
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--key", "key_path", metavar="KEY", type=click.Path(dir_okay=False), default=None, help=KEY_HELP)
def export_qdpx_cmd(out, project_path, force, key_path) -> None:
    """Export the whole project as a REFI-QDA project file (.qdpx).

    Sources as UTF-8 text, the codebook, codings with coder and date,
    participants as cases, memos as notes, themes as sets, CMOCs as linked
    notes and sets, theories as graphs.  What REFI-QDA cannot carry is listed
    on stderr.  Exporting an unchanged project again gives an identical file.

    \b
    Examples:
      sp-realist export qdpx evaluation.qdpx -p evaluation.sprealist
      sp-realist export qdpx shared.qdpx --key ../private/key.yaml   # audited: exit 3 if a name leaks
    """
    from .qdpx_export import export_qdpx

    project = get_project(project_path)
    result = export_qdpx(project, out, force=force, key=key_path)
    c = result.counts
    message(f"Wrote {out}: {c.get('sources', 0)} sources, {c.get('codes', 0)} codes, {c.get('codings', 0)} codings, "
            f"{c.get('cases', 0)} cases, {c.get('notes', 0)} memos, {c.get('themes', 0)} themes, "
            f"{c.get('cmocs', 0)} CMOCs, {c.get('theories', 0)} theories.")
    for line in result.losses:
        message(f"Not exported: {line}.")
    _audited(key_path)


def _audited(key_path) -> None:
    import os

    if key_path or os.environ.get("SP_REALIST_KEY"):
        message("Audit: no real name from the pseudonym key occurs in the export.")


@export_group.command("qdc")
@click.argument("out", type=click.Path(dir_okay=False))
@project_option
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--key", "key_path", metavar="KEY", type=click.Path(dir_okay=False), default=None, help=KEY_HELP)
def export_qdc_cmd(out, project_path, force, key_path) -> None:
    """Export the codebook (and themes as code sets) as a REFI-QDA codebook (.qdc).

    \b
    Example:
      sp-realist export qdc codebook.qdc
    """
    from .qdc import export_qdc

    project = get_project(project_path)
    df = export_qdc(project, out, force=force, key=key_path)
    message(f"Wrote {out}: {int(df['count'].iloc[0])} codes, {int(df['count'].iloc[1])} themes.")
    _audited(key_path)


@import_group.command("qdpx")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--into", "into", metavar="PROJECT", default=None,
              help="Merge into this existing project, as another copy (one transaction: on failure it is untouched; "
                   "identical items are not duplicated, differences are kept apart as conflicts).")
@click.option("--dry-run", is_flag=True, help="With --into: show what would be merged; write nothing.")
@click.option("--project", "-p", "new_path", metavar="PATH", default=None,
              help="Create the new project here (default: the .qdpx's name with .sprealist, next to it).")
@format_option
def import_qdpx_cmd(path, into, dry_run, new_path, fmt, output) -> None:
    """Import a REFI-QDA project (.qdpx) from NVivo, ATLAS.ti, MAXQDA, QualCoder...

    Creates a new project unless --into names an existing one, into which the
    file is merged as another copy would be ('sp-realist merge').  Known
    deviations of other tools are handled (the .qde not named project.qde,
    Sources/ folders, .docx-only sources, BOMs, positions in UTF-16 units or
    bytes); what cannot be imported is listed on stderr, one line per kind.
    The counts imported go to stdout.

    \b
    Examples:
      sp-realist import qdpx nvivo-export.qdpx
      sp-realist import qdpx atlas.qdpx --into evaluation.sprealist --format json
    """
    from .qdpx_import import import_qdpx_into, import_qdpx_new

    if new_path is None and not into:
        new_path = global_project_path()  # 'sp-realist -p NEW.sprealist import qdpx ...'
    if into and new_path:
        raise click.UsageError("Use either --into (existing project) or --project (new project), not both.")
    if dry_run and not into:
        raise click.UsageError("--dry-run needs --into PROJECT (a new project is simply not created).")
    if into:
        from ..privacy.anonymise import applied_keys
        from ..team.commands import report_merge

        project = Project.open(into)
        try:
            result, merged = import_qdpx_into(path, project, dry_run=dry_run)
            anonymised = bool(applied_keys(project))
        finally:
            project.close()
        if anonymised and merged.counts.get("sources") and not dry_run:
            message(f"Note: {project.location} has an applied pseudonym key and the {merged.counts['sources']} "
                    "imported "
                    "source(s) are not anonymised yet; run 'sp-realist anonymise --key KEY' before sharing anything.")
        message(f"Read {path} for {result.project}.")
        _report(result)
        report_merge(merged, fmt, output)
        return
    result = import_qdpx_new(path, new_path)
    message(f"Imported {path} into {result.project}.")
    _report(result)
    emit(result.frame(), fmt, output, title="Imported")


def _codebook_command(name: str, help_text: str, func_path: str):
    @import_group.command(name, help=help_text)
    @click.argument("path", type=click.Path(dir_okay=False))
    @project_option
    @format_option
    def cmd(path, project_path, fmt, output) -> None:
        import importlib

        module, func = func_path.rsplit(":", 1)
        fn = getattr(importlib.import_module(module), func)
        project = get_project(project_path)
        result = fn(path, project)
        message(f"Imported {path} into {result.project}.")
        _report(result)
        emit(result.frame(), fmt, output, title="Imported")

    return cmd


_codebook_command(
    "qdc",
    """Import a REFI-QDA codebook (.qdc) into the project.

    Codes already in the project (same GUID or name) are reused; code sets
    become themes.

    \b
    Example:
      sp-realist import qdc codebook.qdc -p evaluation.sprealist
    """,
    "sp_realist.exchange.qdc:import_qdc",
)
_codebook_command(
    "taguette",
    """Import a Taguette codebook exported as CSV or XLSX (tag, parent, description).

    \b
    Example:
      sp-realist import taguette taguette-codebook.csv -p evaluation.sprealist
    """,
    "sp_realist.exchange.codebooks:import_taguette_codebook",
)
_codebook_command(
    "qc",
    """Import the codebook.yaml of qc (qualitative-coding): a nested YAML list of codes.

    \b
    Example:
      sp-realist import qc codebook.yaml -p evaluation.sprealist
    """,
    "sp_realist.exchange.codebooks:import_qc_codebook",
)


def register(main: click.Group) -> None:
    """Add this area's commands to the main group (merging into existing export/import groups)."""
    for grp in (export_group, import_group):
        existing = main.commands.get(grp.name)
        if isinstance(existing, click.Group) and existing is not grp:
            for name, cmd in grp.commands.items():
                existing.add_command(cmd, name)
        else:
            main.add_command(grp)

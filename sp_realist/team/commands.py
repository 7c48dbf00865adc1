"""Commands of team work: config, adjudicate, merge, conflicts, log."""

from __future__ import annotations

import click

from ..cli_support import Int, emit, format_option, get_project, message, project_option


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(config_cmd)
    main.add_command(log_cmd)


# --- config -------------------------------------------------------------------------
@click.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove the setting KEY.")
@format_option
def config_cmd(key, value, unset, fmt, output):
    """Show or change your per-user settings (kept in your config folder, not in a project).

    With no KEY, list every setting; with KEY, show it; with KEY VALUE, set it.
    The setting 'coder' is the name your codings, memos, appraisals and log entries are
    recorded under in SQLite projects (--coder and $SP_REALIST_CODER still win; a server
    project always records your database login).

    \b
    Examples:
      sp-realist config coder "RA"
      sp-realist config
      sp-realist config coder --unset
    """
    from ..identity import config_frame, config_path, read_config, set_config

    if value is not None and unset:
        raise click.UsageError("Give a VALUE or --unset, not both.")
    if key is None:
        if unset:
            raise click.UsageError("--unset needs the setting's name, e.g. 'sp-realist config coder --unset'.")
        emit(config_frame(), fmt, output, title=f"Settings ({config_path()})")
        return
    if value is None and not unset:
        df = config_frame()
        if key not in set(df["setting"]):
            set_config(key, None)  # raises the one-sentence error naming the settings
        click.echo(df.loc[df["setting"] == key, "value"].iloc[0])
        return
    path = set_config(key, None if unset else value)
    message(f"Removed {key} from {path}." if unset else f"Set {key} = {read_config()[key]!r} in {path}.")


# --- log ------------------------------------------------------------------------------
@click.command("log")
@click.option("--who", default=None, metavar="NAME", help="Only entries by this person (the actor).")
@click.option("--since", default=None, metavar="DATE", help="Only entries from this date (YYYY-MM-DD, UTC) or time on.")
@click.option("--action", default=None, metavar="A",
              help="Only this action; 'code' also matches code.add, code.move ...; 'code*' any starting so.")
@click.option("--limit", type=Int(1), default=None, help="Only the latest N entries.")
@project_option
@format_option(xlsx=True)
def log_cmd(who, since, action, limit, project_path, fmt, output):
    """The audit log: who changed what, when.

    \b
    Examples:
      sp-realist log --who RA --since 2026-11-01
      sp-realist log --action merge --format csv -o merges.csv
    """
    from .auditlog import audit_log

    with get_project(project_path) as project:
        df = audit_log(project, who=who, since=since, action=action, limit=limit)
    emit(df, fmt, output, title="Audit log")

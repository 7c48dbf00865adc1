"""Commands of team work: config, adjudicate, merge, conflicts, log, team."""

from __future__ import annotations

import click

from ..cli_support import Int, emit, format_option, get_project, message, project_option


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(config_cmd)
    main.add_command(log_cmd)
    main.add_command(adjudicate_cmd)
    main.add_command(merge_cmd)
    main.add_command(conflicts)
    main.add_command(team)


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


# --- adjudicate -----------------------------------------------------------------------
def _agreement_line(df) -> str:
    row = df[df["code"] == "(all codes)"].iloc[0]

    def fmt(p, k, a):
        show = lambda v: "undefined" if v != v else f"{v:.3f}"  # noqa: E731 - NaN check
        pct = "undefined" if p != p else f"{p:.1f}%"
        return f"{pct} (kappa {show(k)}, alpha {show(a)})"

    return (f"Agreement over {int(row['units'])} unit(s): before {fmt(row['percent_before'], row['kappa_before'], row['alpha_before'])}, "
            f"after {fmt(row['percent_after'], row['kappa_after'], row['alpha_after'])}; "
            f"{int(row['decided'])} disagreeing unit(s) decided.")


@click.command("adjudicate")
@click.option("--coders", nargs=2, required=True, metavar="A B", help="The two coders who coded apart.")
@click.option("--code", "code_name", default=None, help="Only this code.")
@click.option("--unit", type=click.Choice(["sentence", "segment"]), default="sentence", show_default=True,
              help="The units decisions are made on.")
@click.option("--accept", default=None, metavar="A|B|both|none",
              help="Record this decision for every undecided unit listed (or the --unit-id ones). A and B may "
                   "also be given as the coder's name.")
@click.option("--unit-id", "unit_ids", type=Int(1), multiple=True, metavar="ID",
              help="Only this unit (repeatable); needs --accept.")
@click.option("--interactive/--no-interactive", default=None,
              help="Ask for a decision on each undecided unit (default: when run in a terminal without --accept).")
@click.option("--agreement", "show_agreement", is_flag=True,
              help="Print agreement before and after per code instead of the units.")
@project_option
@format_option(xlsx=True)
def adjudicate_cmd(coders, code_name, unit, accept, unit_ids, interactive, show_agreement, project_path, fmt, output):
    """List the units two coders disagree on and record consensus decisions.

    A decision takes coder A's or B's choice, codes the unit (both) or not (none). The
    consensus is written as codings by the coder 'consensus' (origin
    'adjudicated:accept RA', 'adjudicated:both' ...); both coders' own codings are kept.
    Agreement before and after is reported on stderr (--agreement prints it as a table).

    \b
    Examples:
      sp-realist adjudicate --coders RA RB                       # list (asks in a terminal)
      sp-realist adjudicate --coders RA RB --code Workload --accept RA
      sp-realist adjudicate --coders RA RB --unit-id 3 --unit-id 5 --accept both
      sp-realist adjudicate --coders RA RB --agreement --format md
    """
    import sys

    from ..coding.adjudication import adjudicate, adjudication

    if unit_ids and accept is None:
        raise click.UsageError("--unit-id needs --accept A|B|both|none.")
    if interactive and accept is not None:
        raise click.UsageError("Give --accept or --interactive, not both.")
    if interactive is None:
        interactive = accept is None and sys.stdin.isatty() and not show_agreement
    with get_project(project_path) as project:
        if accept is not None:
            decisions = {uid: accept for uid in unit_ids} if unit_ids else None
            result = adjudicate(project, coders=coders, code=code_name, unit=unit, accept=None if unit_ids else accept,
                                decisions=decisions)
            message(f"Recorded {result.decided_now} decision(s); {result.written} consensus coding(s) written.")
        else:
            result = adjudication(project, coders=coders, code=code_name, unit=unit)
            if interactive:
                decisions = _ask(result)
                if decisions:
                    result = adjudicate(project, coders=coders, code=code_name, unit=unit, decisions=decisions)
                message(f"Recorded {result.decided_now} decision(s); {result.written} consensus coding(s) written.")
    message(_agreement_line(result.agreement))
    if show_agreement:
        emit(result.agreement, fmt, output, title="Agreement before and after adjudication")
    else:
        emit(result.units, fmt, output, title=f"Disagreements ({coders[0]} / {coders[1]})")


def _ask(result) -> dict[int, str]:
    """Ask for a decision on each undecided unit (A, B, both, none; s skips, q stops)."""
    a, b = result.coders
    todo = result.units[result.units["decision"] == ""]
    decisions: dict[int, str] = {}
    for u in todo.itertuples():
        who = a if u.coder_a else b
        message(f"[{u.unit_id}/{len(result.units)}] {u.code} in {u.source} ({u.start}:{u.end}), coded by {who} only:")
        message(f"    {u.text.strip()}")
        answer = click.prompt("Decision (A, B, both, none; s to skip, q to stop)", err=True,
                              type=click.Choice(["A", "B", "both", "none", "s", "q"], case_sensitive=False))
        if answer.lower() == "q":
            break
        if answer.lower() != "s":
            decisions[int(u.unit_id)] = {"a": "A", "b": "B"}.get(answer.lower(), answer.lower())
    return decisions


# --- merge and conflicts --------------------------------------------------------------
def report_merge(result, fmt, output) -> None:
    """A merge's summary on stderr (added, notes, conflicts) and its counts as a listing."""
    added = {k: v for k, v in result.counts.items() if v and k != "conflicts"}
    what = ", ".join(f"{v} {k}" for k, v in added.items()) or "nothing new"
    message(("Dry run, nothing written: would add " if result.dry_run else "Merged: added ") + what + ".")
    for line in result.notes:
        message(f"Note: {line}.")
    if result.conflicts:
        message(f"{len(result.conflicts)} conflict(s) {'would be' if result.dry_run else 'were'} kept apart "
                "(this copy's value kept); see 'sp-realist conflicts list'.")
    emit(result.frame(), fmt, output, title="Merge")


@click.command("merge")
@click.argument("other", metavar="OTHER.sprealist|URL")
@click.option("--dry-run", is_flag=True, help="Show what would be added and which conflicts; write nothing.")
@click.option("--analyst", default=None, metavar="NAME", help="Who merges (recorded in the audit log).")
@project_option
@format_option
def merge_cmd(other, dry_run, analyst, project_path, fmt, output):
    """Bring another copy's codings, memos, appraisals, excerpts, codes, themes, CMOCs and theories in.

    Sources are matched by checksum, codes by their path, CMOCs and theories by key.
    Identical items are not duplicated (merging twice changes nothing); an item
    both copies have with different values is a conflict, kept apart for you
    ('sp-realist conflicts list'), never overwritten. One transaction.

    \b
    Examples:
      sp-realist merge ../rhian/evaluation.sprealist --dry-run
      sp-realist merge ../rhian/evaluation.sprealist
    """
    from .merge import merge_copy

    from ..privacy.anonymise import applied_keys

    with get_project(project_path) as project:
        result = merge_copy(project, other, dry_run=dry_run, actor=analyst)
        anonymised = bool(applied_keys(project))
    if anonymised and any(result.counts.values()) and not dry_run:
        message("Note: this project has an applied pseudonym key and what was merged (texts, memos, conflict "
                "values) is not anonymised yet; run 'sp-realist anonymise --key KEY' before sharing anything.")
    report_merge(result, fmt, output)


@click.group("conflicts")
def conflicts() -> None:
    """List and settle what merges kept apart.

    \b
    Examples:
      sp-realist conflicts list
      sp-realist conflicts resolve 3 --keep theirs
    """


@conflicts.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the settled ones.")
@project_option
@format_option(xlsx=True)
def conflicts_list(show_all, project_path, fmt, output):
    """The open conflicts from merges: kind, key, field, our value and theirs (JSON).

    \b
    Example:
      sp-realist conflicts list --format md
    """
    from .merge import list_conflicts

    with get_project(project_path) as project:
        df = list_conflicts(project, status=None if show_all else "open")
    emit(df, fmt, output, title="Merge conflicts")


@conflicts.command("resolve")
@click.argument("conflict_id", type=Int(1), metavar="ID")
@click.option("--keep", type=click.Choice(["ours", "theirs"]), required=True,
              help="ours: leave this copy as it is; theirs: take the other copy's value.")
@click.option("--analyst", default=None, metavar="NAME", help="Who settles it.")
@project_option
def conflicts_resolve(conflict_id, keep, analyst, project_path):
    """Settle one conflict by keeping this copy's value or taking the other copy's.

    \b
    Examples:
      sp-realist conflicts resolve 3 --keep theirs
      sp-realist conflicts resolve 4 --keep ours
    """
    from .merge import resolve_conflict

    with get_project(project_path) as project:
        row = resolve_conflict(project, conflict_id, keep=keep, actor=analyst)
    message(f"Conflict {conflict_id} ({row['kind']} {row['key']}, {row['field']}): kept {keep}.")


# --- team -------------------------------------------------------------------------------
@click.group("team")
def team():
    """Roles and blind coding on a PostgreSQL project: add, list, remove, blind.

    \b
    Examples:
      sp-realist -p postgresql://owner@host/eval team add rhian --role coder --password s3cret
      sp-realist -p postgresql://owner@host/eval team list
      sp-realist -p postgresql://rhian@host/eval team blind on
    """


@team.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["owner", "analyst", "coder", "reader"]), required=True,
              help="reader: read; coder: own codings and memos, appraise; analyst: also codebook, themes, CMOCs, "
                   "theories, adjudication; owner: also the team and settings.")
@click.option("--password", default=None, help="The new login's password (a login that exists keeps its own "
                                                "unless this is given).")
@project_option
def team_add_cmd(name, role, password, project_path):
    """Give the database login NAME a role in this project (owner only).

    The login is created when it does not exist; a person has one role, so this also changes a role.

    \b
    Example:
      sp-realist team add rhian --role coder --password s3cret
    """
    from .roles import team_add

    with get_project(project_path) as project:
        team_add(project, name=name, role=role, password=password)
    message(f"{name} is now {role} of the project.")


@team.command("list")
@project_option
@format_option
def team_list_cmd(project_path, fmt, output):
    """List the team: each login, its role and what it may do.

    \b
    Example:
      sp-realist team list --format csv
    """
    from .roles import team_list

    with get_project(project_path) as project:
        df = team_list(project)
    emit(df, fmt, output, title="Team")


@team.command("remove")
@click.argument("name")
@project_option
def team_remove_cmd(name, project_path):
    """Take the login NAME out of this project's team (owner only; its codings and memos stay).

    \b
    Example:
      sp-realist team remove rhian
    """
    from .roles import team_remove

    with get_project(project_path) as project:
        team_remove(project, name=name)
    message(f"{name} is no longer in the project's team.")


@team.command("blind")
@click.argument("state", type=click.Choice(["on", "off"]))
@project_option
def team_blind_cmd(state, project_path):
    """Blind double coding on or off (analyst): while on, a coder sees only their own codings.

    \b
    Example:
      sp-realist team blind on
    """
    from .roles import set_blind

    with get_project(project_path) as project:
        set_blind(project, on=state == "on")
    message(f"Blind coding is {state}.")

"""Commands of sp_realist.ingest: ``ingest``, ``sources``, ``participants``,
``attributes`` and ``summary``.  Each is a thin wrapper over a library
function in :mod:`sp_realist.ingest` / :mod:`sp_realist.ingest.browse`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .. import schema as S
from ..cli_support import (Int, emit, err_console, format_option, get_project, message, parse_attrs, project_option,
                           write_output)
from ..errors import SpRealistError
from ..output import to_markdown, to_records

if TYPE_CHECKING:
    import pandas as pd


def _progress_bar(total: int):
    """A rich progress bar on stderr for multi-file ingest; ``None`` for one file."""
    if total < 2:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, transient=True)
    task = bar.add_task("ingest", total=total)
    return bar, (lambda done, _total: bar.update(task, completed=done))


@click.command("ingest")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--kind", type=click.Choice(S.SOURCE_KINDS), default=None,
              help="Kind of source. Default: diary for files in the reflective-diary template, else interview.")
@click.option("--site", default=None, metavar="SITE",
              help="Site of sources with no participant, e.g. S1; a participant code gives its own (S3 DK2: S3).")
@click.option("--participant", default=None, metavar="CODE",
              help="Participant code, e.g. 'S1 DK1' (a diary entry's own 'Participant code:' line wins).")
@click.option("--role", default=None, metavar="ROLE", help="Role of that participant, e.g. 'link worker'.")
@click.option("--date", "date_", default=None, metavar="DATE",
              help="Date of an interview (dd/mm/yyyy or yyyy-mm-dd); diary entries use their own dates.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="A source attribute (repeatable).")
@click.option("--speaker-map", "speaker_map", multiple=True, metavar="NAME=CODE",
              help="Map an interview speaker label to a participant code, e.g. 'Sarah=S1 LW1' (repeatable).")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True), default=None,
              help="CSV listing files: path,kind,participant,site,role,date,<any attribute>.")
@click.option("--replace", is_flag=True,
              help="Put a changed file's new text in place of its sources. Codings, excerpts, appraisals, "
                   "memos and CMOC evidence are carried onto the new text; what cannot be is kept for review "
                   "('sources orphans').")
@click.option("--force-site", is_flag=True,
              help="Record --site even for sources whose participant code names another site (S3 DK2 is at S3).")
@click.option("--dry-run", is_flag=True,
              help="Show the sources FILES would give (names, dates, participants, sections, speakers) "
                   "without opening a project or writing anything.")
@project_option
@format_option
def ingest_cmd(files, kind, site, participant, role, date_, attrs, speaker_map, manifest, replace, force_site,
               dry_run, project_path, fmt, output):
    """Ingest transcripts (.txt .md .docx .vtt .srt) and reflective diaries.

    FILES may include folders: their supported files are ingested, sorted.

    Each file is ingested all or nothing. A file already ingested with
    the same content is left alone; a changed file is refused unless --replace.
    Bad files are reported (exit 1) after the good ones are ingested.

    \b
    Examples:
      sp-realist ingest diaries/s1-dk1.docx diaries/s1-dk2.md --site S1
      sp-realist ingest interviews/*.vtt --kind interview --speaker-map "Sarah=S1 LW1"
      sp-realist ingest --manifest interviews/manifest.csv
      sp-realist ingest corpora/mind-cymru-2020/diaries --kind diary
      sp-realist ingest diaries/s3-unidentified.txt --site S3 --dry-run
    """
    import pandas as pd
    from . import ingest_manifest, ingest_paths

    if not files and not manifest:
        raise click.UsageError("Give FILES to ingest or --manifest CSV.")
    attributes = parse_attrs(attrs)
    from . import parse_speaker_map

    try:
        speaker_map = parse_speaker_map(speaker_map)
    except SpRealistError as exc:  # a malformed option value is a usage error (exit 2)
        raise click.BadParameter(exc.message, param_hint="--speaker-map") from None
    if dry_run:
        if manifest:
            raise click.UsageError("--dry-run takes FILES, not --manifest.")
        from . import preview_paths

        df = preview_paths(files, kind=kind, site=site, participant=participant, attributes=attributes,
                           speaker_map=speaker_map, date=date_, force_site=force_site)
        emit(df, fmt, output, title="Dry run: nothing written")
        bad = df[df["status"] == "refused"]
        message(f"dry run: {int((df['status'] == 'ok').sum())} sources from {df['file'].nunique() - len(bad)} "
                f"files; {len(bad)} refused; nothing written.")
        for msg in bad["message"]:
            err_console.print(f"Error: {msg}", markup=False, soft_wrap=True)
        if len(bad):
            raise click.exceptions.Exit(1)
        return
    project = get_project(project_path)
    frames = []
    refused = []
    jobs = []
    if files:
        from . import expand_paths

        files = expand_paths(files)
        jobs.append(("files", len(files)))
    if manifest:
        from . import read_manifest

        jobs.append(("manifest", len(read_manifest(manifest))))
    for what, total in jobs:
        bar, progress = _progress_bar(total)
        try:
            if bar:
                bar.start()
            if what == "files":
                report = ingest_paths(project, files, kind=kind, site=site, participant=participant,
                                      attributes=attributes, replace=replace, progress=progress,
                                      speaker_map=speaker_map, role=role, date=date_, force_site=force_site)
            else:
                defaults = {"kind": kind, "site": site, "participant": participant, "role": role, "date": date_,
                            **attributes}
                report = ingest_manifest(project, manifest, replace=replace, progress=progress,
                                         speaker_map=speaker_map, defaults=defaults, force_site=force_site)
        finally:
            if bar:
                bar.stop()
        frames.append(report.frame())
        refused += report.refused
    df = pd.concat(frames, ignore_index=True)
    counts = df["status"].value_counts()
    message("; ".join(f"{counts.get(s, 0)} {s}" for s in ("ingested", "replaced", "unchanged", "refused")
                      if counts.get(s, 0)) + f" ({int(df['sources'].sum())} sources).")
    _anonymisation_note(project, df)  # before the listing, which the output check may withhold
    emit(df, fmt, output, title="Ingest")
    if refused:
        for f in refused:
            err_console.print(f"Error: {f.message}", markup=False, soft_wrap=True)
        raise click.exceptions.Exit(1)


def _anonymisation_note(project, df: pd.DataFrame) -> None:
    """New text in a project whose sources were anonymised is not anonymised yet: say so."""
    new = [n for status, names in zip(df["status"], df["names"]) if status in ("ingested", "replaced") and names
           for n in str(names).split("; ")]
    if not new:
        return
    from ..privacy.anonymise import applied_keys

    if applied_keys(project):
        example = f' --sources "{new[0]}"' if len(new) == 1 else ""
        message(f"Note: this project has an applied pseudonym key and the {len(new)} new source(s) are not "
                f"anonymised yet; run 'sp-realist anonymise --key KEY{example}' before sharing anything.")


# --- sources -----------------------------------------------------------------------

@click.group("sources")
def sources_group() -> None:
    """List sources and show one with its segments.

    \b
    Examples:
      sp-realist sources list --kind diary --site S1
      sp-realist sources show "S1 DK1 2019-05-14"
    """


@sources_group.command("list")
@click.option("--kind", type=click.Choice(S.SOURCE_KINDS), default=None, help="Only sources of this kind.")
@click.option("--site", default=None, help="Only sources with this site attribute.")
@click.option("--participant", default=None, metavar="CODE", help="Only this participant's sources.")
@project_option
@format_option
def sources_list(kind, site, participant, project_path, fmt, output) -> None:
    """List sources: name, kind, participant, date, size, segments and attributes.

    \b
    Example:
      sp-realist sources list --kind diary --format csv > sources.csv
    """
    from ..sources import source_rows

    emit(source_rows(get_project(project_path), kind=kind, site=site, participant=participant), fmt, output,
         title="Sources")


@sources_group.command("show")
@click.argument("source")
@click.option("--no-text", is_flag=True, help="Leave out the segments' text.")
@project_option
@format_option
def sources_show(source, no_text, project_path, fmt, output) -> None:
    """Show one source (by name or id) with its segments, speakers and sections.

    \b
    Examples:
      sp-realist sources show "S1 DK1 2019-05-14"
      sp-realist sources show 12 --format json
    """
    from .browse import source_detail

    facts, df = source_detail(get_project(project_path), source, text=not no_text)
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(facts["attributes"].items()))
    head = (f"{facts['name']} ({facts['kind']}; participant {facts['participant'] or '-'}; date "
            f"{facts['date'] or '-'}; file {facts['file'] or '-'}{'' if facts['entry'] is None else ' entry ' + str(facts['entry'])}"
            f"; {facts['words']} words{'; ' + attrs if attrs else ''})")
    if fmt in ("table", "md"):  # for people: leave out columns that are empty for this source
        df = df[[c for c in df.columns if c in ("ord", "start", "end", "kind", "text") or df[c].notna().any()]]
    if fmt == "json":
        text = json.dumps({"source": facts, "segments": to_records(df)}, ensure_ascii=False, indent=2,
                          default=str) + "\n"
        _write(text, output)
    elif fmt == "md":
        _write(f"## {facts['name']}\n\n{head}\n\n" + to_markdown(df), output)
    else:
        emit(df, fmt, output, title=head)


@sources_group.command("remove")
@click.argument("source")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@project_option
def sources_remove(source, yes, project_path) -> None:
    """Remove a source and everything that points into it.

    Its segments, codings (and their memos), excerpts, appraisals, CMOC
    evidence links, source memos and orphans go with it, in one transaction.
    You are shown what goes and asked to confirm (or pass --yes).

    \b
    Examples:
      sp-realist sources remove "S1 DK1 2019-05-14"
      sp-realist sources remove 12 --yes
    """
    from ..sources import removal_preview, remove_source

    project = get_project(project_path)
    preview = removal_preview(project, source=source)
    message(f"Removing {preview.source!r} also removes {preview.describe()}.")
    if not yes and not click.confirm("Remove it?", default=False, err=True):
        raise SpRealistError(f"{preview.source}: not removed (not confirmed); pass --yes to remove without asking.")
    gone = remove_source(project, source=source)
    message(f"Removed {gone.source!r} with {gone.describe()}.")


@sources_group.group("orphans", invoke_without_command=True)
@click.option("--source", default=None, help="Only this source's orphans.")
@project_option
@format_option
@click.pass_context
def sources_orphans(ctx, source, project_path, fmt, output) -> None:
    """List what a corrected file could not carry over (codings and excerpts).

    'ingest --replace' moves every coding and excerpt onto the new text. One
    whose words were deleted or rewritten becomes an orphan: it keeps its
    analysis (memos, appraisals, CMOC evidence) until you re-attach it to
    words of the new text or discard it.

    \b
    Examples:
      sp-realist sources orphans
      sp-realist sources orphans reattach 3 --quote "waited six weeks"
      sp-realist sources orphans discard 4 --yes
    """
    if ctx.invoked_subcommand is None:
        from ..reanchor import list_orphans

        emit(list_orphans(get_project(project_path), source=source), fmt, output, title="Orphans")


@sources_orphans.command("reattach")
@click.argument("orphan_id", type=Int())
@click.option("--quote", default=None, help="The words of the current text to attach it to (must occur once).")
@click.option("--span", default=None, metavar="START:END", help="Character span of the current text.")
@project_option
def orphans_reattach(orphan_id, quote, span, project_path) -> None:
    """Put an orphan back, with its memos, appraisals and CMOC evidence.

    Without --quote or --span, its old words are looked for in the current
    text (they must occur exactly once).

    \b
    Examples:
      sp-realist sources orphans reattach 3
      sp-realist sources orphans reattach 3 --quote "waited six weeks"
      sp-realist sources orphans reattach 3 --span 120:188
    """
    from ..reanchor import reattach_orphan

    if quote is not None and span is not None:
        raise click.UsageError("give --quote or --span, not both.")
    where = None
    if span is not None:
        try:
            start, end = (int(x) for x in span.split(":"))
        except ValueError:
            raise click.BadParameter("use START:END, e.g. 120:188.", param_hint="--span") from None
        where = (start, end)
    done = reattach_orphan(get_project(project_path), orphan_id=orphan_id, quote=quote, span=where)
    message(f"Orphan {done.orphan_id} re-attached to {done.source!r} {done.start}:{done.end} "
            f"as {done.kind} {done.new_id}.")


@sources_orphans.command("discard")
@click.argument("orphan_id", type=Int())
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@project_option
def orphans_discard(orphan_id, yes, project_path) -> None:
    """Delete an orphan for good (with its memos, appraisals and evidence).

    \b
    Example:
      sp-realist sources orphans discard 4 --yes
    """
    from ..reanchor import discard_orphan, list_orphans

    project = get_project(project_path)
    if not yes:
        rows = list_orphans(project)
        row = rows[rows["id"] == orphan_id]
        if row.empty:
            raise SpRealistError(f"orphan {orphan_id}: no such orphan; 'sp-realist sources orphans' lists them.")
        message(f"Orphan {orphan_id} ({row['kind'].iloc[0]} on {row['source'].iloc[0]!r}) holds "
                f"{row['holds'].iloc[0]}.")
        if not click.confirm("Discard it for good?", default=False, err=True):
            raise SpRealistError(f"orphan {orphan_id}: kept (not confirmed); pass --yes to discard without asking.")
    gone = discard_orphan(project, orphan_id=orphan_id)
    message(f"Discarded orphan {gone['id']} ({gone['kind']} on {gone['source']!r}: {gone['holds']}).")


@sources_group.command("attribution")
@click.argument("kind", required=False, type=click.Choice(S.SOURCE_KINDS))
@click.argument("wording", required=False)
@click.option("--reset", is_flag=True, help="Go back to the default wording for KIND.")
@project_option
@format_option
def sources_attribution(kind, wording, reset, project_path, fmt, output) -> None:
    """Show or set how quotes are cited per source kind.

    WORDING holds {who}, the participant or speaker a quote is attributed to.
    By default a field note is cited as "(field notes, S1 LW4)": it is the
    researcher's record, not the participant's own words.

    \b
    Examples:
      sp-realist sources attribution
      sp-realist sources attribution field_notes "observation notes, {who}"
      sp-realist sources attribution document "{who}, project document"
      sp-realist sources attribution field_notes --reset
    """
    from ..sources import attribution_wordings, set_attribution_wording

    project = get_project(project_path)
    if wording is not None or reset:
        if kind is None or (wording is not None and reset):
            raise click.UsageError("give KIND and WORDING, or KIND with --reset.")
        set_attribution_wording(project, kind=kind, wording=None if reset else wording)
    elif kind is not None:
        raise click.UsageError("give a WORDING with {who} for KIND, or --reset.")
    emit(attribution_wordings(project), fmt, output, title="Attribution wording")


def _write(text: str, output: str | None) -> None:
    write_output(text, output)


# --- participants ------------------------------------------------------------------

@click.group("participants")
def participants_group() -> None:
    """List, add and edit participants (codes such as 'S1 DK1').

    \b
    Examples:
      sp-realist participants list
      sp-realist participants add "S1 DK1" --role "link worker" --site S1
      sp-realist participants edit "S1 DK1" --role manager --attr gender=F
    """


@participants_group.command("list")
@click.option("--role", default=None, help="Only participants with this role.")
@click.option("--site", default=None, help="Only participants at this site.")
@project_option
@format_option
def participants_list(role, site, project_path, fmt, output) -> None:
    """List participants with their role, site, number of sources and turns, attributes.

    \b
    Example:
      sp-realist participants list --site S1 --format md
    """
    from .browse import participants_frame

    emit(participants_frame(get_project(project_path), role, site), fmt, output, title="Participants")


@participants_group.command("add")
@click.argument("code")
@click.option("--role", default=None, help="Role, e.g. 'link worker', 'manager', 'GP referrer'.")
@click.option("--site", default=None, help="Site, e.g. S1.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="A participant attribute (repeatable).")
@project_option
@format_option
def participants_add(code, role, site, attrs, project_path, fmt, output) -> None:
    """Add a participant.

    \b
    Example:
      sp-realist participants add "S3 DK2" --role "link worker" --site S3
    """
    from .browse import add_participant

    df = add_participant(get_project(project_path), code, role, site, parse_attrs(attrs))
    emit(df, fmt, output, title="Participant added")


@participants_group.command("edit")
@click.argument("code")
@click.option("--role", default=None, help="New role ('' clears it).")
@click.option("--site", default=None, help="New site ('' clears it).")
@click.option("--rename", default=None, metavar="NEW_CODE", help="Change the participant's code.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="Set an attribute (repeatable).")
@click.option("--unset", multiple=True, metavar="NAME", help="Remove an attribute (repeatable).")
@project_option
@format_option
def participants_edit(code, role, site, rename, attrs, unset, project_path, fmt, output) -> None:
    """Edit a participant's role, site, code or attributes.

    \b
    Example:
      sp-realist participants edit "S1 DK1" --role manager --attr wave=2
    """
    from .browse import edit_participant

    df = edit_participant(get_project(project_path), code, role, site, parse_attrs(attrs), rename, unset)
    emit(df, fmt, output, title="Participant")


# --- attributes ----------------------------------------------------------------------

@click.group("attributes")
def attributes_group() -> None:
    """List attributes of sources and participants, and set them.

    \b
    Examples:
      sp-realist attributes list
      sp-realist attributes list --name site
      sp-realist attributes set "S1 DK1 2019-05-14" wave=1 pages=2
    """


@attributes_group.command("list")
@click.option("--name", default=None, help="Show the values of this attribute and how often each occurs.")
@click.option("--of", "entity", type=click.Choice(["source", "participant"]), default=None,
              help="Only source or participant attributes.")
@project_option
@format_option
def attributes_list(name, entity, project_path, fmt, output) -> None:
    """List attribute names (how many carry each, distinct values, examples), or one attribute's values.

    \b
    Examples:
      sp-realist attributes list
      sp-realist attributes list --name surgery --format csv
    """
    from .browse import attributes_frame

    emit(attributes_frame(get_project(project_path), name, entity), fmt, output, title="Attributes")


@attributes_group.command("set")
@click.argument("source")
@click.argument("pairs", nargs=-1)
@click.option("--unset", multiple=True, metavar="NAME", help="Remove an attribute (repeatable).")
@project_option
@format_option
def attributes_set(source, pairs, unset, project_path, fmt, output) -> None:
    """Set attributes of one source (by name or id). For participants use 'participants edit --attr'.

    \b
    Examples:
      sp-realist attributes set "S1 DK1 2019-05-14" wave=1 health_board="Cwm Taf"
      sp-realist attributes set 12 --unset wave
    """
    import pandas as pd
    from .browse import set_source_attributes

    attrs = parse_attrs(pairs, param_hint="PAIRS")
    result = set_source_attributes(get_project(project_path), source, attrs, unset)
    emit(pd.DataFrame(sorted(result.items()), columns=["name", "value"]), fmt, output, title=source)


# --- summary -------------------------------------------------------------------------

TABLE_TITLES = {
    "sources": "Sources by site and kind",
    "diaries": "Diary entries and pages per site (pages: 'pages' attribute per file, else words/{wpp} rounded up)",
    "participants": "Participants by role",
}


@click.command("summary")
@click.option("--table", "which", type=click.Choice(["all", "sources", "diaries", "participants"]), default="all",
              show_default=True, help="Which table to show.")
@click.option("--words-per-page", type=Int(min=1), default=500, show_default=True,
              help="Words per page for estimated page counts.")
@project_option
@format_option
def summary_cmd(which, words_per_page, project_path, fmt, output) -> None:
    """Summarise the corpus: sources by kind and site, diary entries and pages per site
    (like Table 3.7 of the Mind Cymru report), participants by role.

    Pages come from a 'pages' attribute of a diary file (counted once per file)
    when given, else are estimated as words/500 rounded up per file.

    \b
    Examples:
      sp-realist summary
      sp-realist summary --table diaries --format md
      sp-realist summary --format json > summary.json
    """
    from .browse import summary

    if which == "all" and fmt == "csv":
        raise click.UsageError("CSV holds one table; choose it with --table sources|diaries|participants.")
    if which == "all" and output and fmt == "table":
        raise click.UsageError("--output with --format table writes one table; choose it with --table.")
    tables = summary(get_project(project_path), words_per_page)
    names = list(tables) if which == "all" else [which]
    if fmt == "json":
        obj = {n: to_records(tables[n]) for n in names}
        _write(json.dumps(obj if which == "all" else obj[which], ensure_ascii=False, indent=2, default=str) + "\n",
               output)
        return
    if fmt == "md":
        _write("\n".join(f"### {TABLE_TITLES[n].format(wpp=words_per_page)}\n\n{to_markdown(tables[n])}"
                         for n in names), output)
        return
    from ..output import stdout_is_terminal

    # Piped, several tab-separated tables need their titles to be told apart: "# title" before each.
    titled = fmt == "table" and len(names) > 1 and not stdout_is_terminal()
    for i, n in enumerate(names):
        title = TABLE_TITLES[n].format(wpp=words_per_page)
        if titled:
            click.echo(("\n" if i else "") + f"# {title}")
        emit(tables[n], fmt, output, title=title)


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(ingest_cmd)
    main.add_command(sources_group)
    main.add_command(participants_group)
    main.add_command(attributes_group)
    main.add_command(summary_cmd)

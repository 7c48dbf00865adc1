"""Commands of sp_realist.coding: codebook, code, autocode, memo, retrieve, frequencies,
cooccurrence, framework, theme, agreement.

Each command parses options, calls one library function and renders its result.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_support import Int, Span, emit, format_option, get_project, message, project_option, write_output

FIELD_OPTIONS = (
    ("--definition", "What the code means."),
    ("--inclusion", "When to apply it."),
    ("--exclusion", "When not to apply it (and which code to use instead)."),
    ("--example", "A typical quote."),
    ("--colour", "Hex colour such as \"#1f77b4\"."),
)


def _field_options(func):
    for opt, help_ in reversed(FIELD_OPTIONS):
        func = click.option(opt, default=None, help=help_)(func)
    return func


def _where(pairs: tuple[str, ...]) -> dict[str, list[str]]:
    """``("site=S1", "site=S2", "wave=1")`` -> ``{"site": ["S1", "S2"], "wave": ["1"]}``."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE.", param_hint="--where")
        k, v = pair.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def _write_or_echo(text: str, output: str | None) -> None:
    """An export's text: to the file ``output`` (UTF-8), else to stdout."""
    write_output(text, output)
    if output:
        message(f"Wrote {output}.")


where_option = click.option("--where", "-w", "where", multiple=True, metavar="NAME=VALUE",
                            help="Keep codings whose attribute NAME (site, role, kind, wave, coder, participant, "
                                 "any source attribute) equals VALUE. Repeat for more (same NAME: any of the values).")
children_option = click.option("--children/--no-children", default=False,
                               help="Include codings of the code's descendants.")


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(codebook)
    main.add_command(code)
    main.add_command(autocode_cmd)
    main.add_command(memo)
    main.add_command(retrieve)
    main.add_command(frequencies_cmd)
    main.add_command(cooccurrence_cmd)
    main.add_command(framework_cmd)
    main.add_command(theme)
    main.add_command(agreement_cmd)
    main.add_command(search_cmd)
    main.add_command(words_cmd)


# --- codebook -----------------------------------------------------------------
@click.group()
def codebook() -> None:
    """Manage the hierarchical codebook.

    \b
    Examples:
      sp-realist codebook import codebook.yaml
      sp-realist codebook add "Missing referral forms" --parent "Referral process"
      sp-realist codebook tree
    """


@codebook.command("tree")
@project_option
@format_option
def codebook_tree_cmd(project_path, fmt, output):
    """Show the codes as a tree, with their number of codings and rules.

    \b
    Example:
      sp-realist codebook tree --format md
    """
    from .codebook import codebook_tree

    with get_project(project_path) as project:
        df = codebook_tree(project)
    if fmt in ("table", "md"):
        df = df.assign(name=["\u00a0\u00a0" * d + n for d, n in zip(df["depth"], df["name"])])
        df = df[["name", "codings", "rules", "definition", "colour"]]
    emit(df, fmt, output, title="Codebook")


@codebook.command("add")
@click.argument("name")
@click.option("--parent", default=None, help="Put the code under this code.")
@_field_options
@project_option
def codebook_add(name, parent, project_path, **fields):
    """Add a code.

    \b
    Example:
      sp-realist codebook add "Referral process" --definition "How clients reach the link worker."
    """
    from .codebook import add_code

    with get_project(project_path) as project:
        add_code(project, name, parent=parent, **fields)
    message(f"Added code {name!r}.")


@codebook.command("edit")
@click.argument("name")
@_field_options
@project_option
def codebook_edit(name, project_path, **fields):
    """Change a code's definition, criteria, example or colour (use "" to clear one).

    \b
    Example:
      sp-realist codebook edit "Referral process" --exclusion "Onward signposting (code Signposting)."
    """
    from .codebook import edit_code

    with get_project(project_path) as project:
        edit_code(project, name, **fields)
    message(f"Updated code {name!r}.")


@codebook.command("move")
@click.argument("name")
@click.option("--parent", default=None, help="The new parent code.")
@click.option("--top", is_flag=True, help="Move the code to the top level.")
@project_option
def codebook_move(name, parent, top, project_path):
    """Move a code (with its children and codings) under another code, or to the top.

    \b
    Example:
      sp-realist codebook move "Missing referral forms" --parent "Paperwork"
    """
    from .codebook import move_code

    if bool(parent) == bool(top):
        raise click.UsageError("Give either --parent CODE or --top.")
    with get_project(project_path) as project:
        move_code(project, name, None if top else parent)
    message(f"Moved code {name!r} {'to the top level' if top else f'under {parent!r}'}.")


@codebook.command("rename")
@click.argument("name")
@click.argument("new_name")
@project_option
def codebook_rename(name, new_name, project_path):
    """Rename a code; every coding, rule, memo and theme link is kept.

    \b
    Example:
      sp-realist codebook rename "Referal" "Referral process"
    """
    from .codebook import rename_code

    with get_project(project_path) as project:
        rename_code(project, name, new_name)
    message(f"Renamed {name!r} to {new_name!r}.")


@codebook.command("merge")
@click.argument("codes", nargs=-1, required=True)
@click.option("--into", "target", required=True, help="The code that receives everything.")
@project_option
def codebook_merge(codes, target, project_path):
    """Merge CODES into another code: every coding, child, rule and memo moves to it.

    \b
    Example:
      sp-realist codebook merge "Forms" "Paperwork" --into "Missing referral forms"
    """
    from .codebook import merge_codes

    with get_project(project_path) as project:
        moved = merge_codes(project, list(codes), target)
    message(f"Merged {len(codes)} code(s) into {target!r}: {moved['codings']} codings moved, "
            f"{moved['duplicates']} duplicate(s) folded, {moved['children']} child code(s) moved.")


@codebook.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also delete its child codes and all their codings.")
@project_option
def codebook_delete(name, force, project_path):
    """Delete a code (refused while it has codings or children, unless --force).

    \b
    Example:
      sp-realist codebook delete "Old code" --force
    """
    from .codebook import delete_code

    with get_project(project_path) as project:
        out = delete_code(project, name, force=force)
    message(f"Deleted {out['codes']} code(s) and {out['codings']} coding(s).")


@codebook.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@project_option
def codebook_import(path, project_path):
    """Import codes (with rules and themes) from codebook.yaml, or codes from a CSV file.

    Codes are matched by name: new ones are added, existing ones updated; none are removed.

    \b
    Example:
      sp-realist codebook import codebook.yaml
    """
    from .codebook import import_codebook_csv, import_codebook_yaml

    with get_project(project_path) as project:
        if Path(path).suffix.lower() == ".csv":
            stats = import_codebook_csv(project, path)
        else:
            stats = import_codebook_yaml(project, path)
    message(f"Imported {path}: {stats['codes_added']} code(s) added, {stats['codes_updated']} updated, "
            f"{stats['rules']} rule(s), {stats['themes_added']} theme(s) added.")


@codebook.command("export")
@click.option("--to", "to", type=click.Choice(["yaml", "csv"]), default=None,
              help="File format (default: from the --output suffix, else yaml).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file.")
@project_option
def codebook_export(to, output, project_path):
    """Export the codebook as YAML (codes, rules, themes) or CSV (codes only).

    \b
    Example:
      sp-realist codebook export -o codebook.yaml
    """
    from .codebook import export_codebook_csv, export_codebook_yaml

    to = to or ("csv" if output and output.lower().endswith(".csv") else "yaml")
    with get_project(project_path) as project:
        text = export_codebook_csv(project) if to == "csv" else export_codebook_yaml(project)
    _write_or_echo(text, output)


@codebook.command("rules")
@project_option
@format_option
def codebook_rules(project_path, fmt, output):
    """List the autocoding rules and how many codings each has made.

    \b
    Example:
      sp-realist codebook rules --format csv
    """
    from .autocode import rules_frame

    with get_project(project_path) as project:
        emit(rules_frame(project), fmt, output, title="Autocoding rules")


# --- code (codings) -------------------------------------------------------------
@click.group()
def code() -> None:
    """Code spans of sources, list and remove codings.

    \b
    Examples:
      sp-realist code add "Referral process" --source "S1 DK1 2019-05-14" --span 120:388
      sp-realist code add Induction --source 3 --match "induction" --unit sentence
      sp-realist code list --code "Referral process" --format csv
    """


@code.command("add")
@click.argument("code_name", metavar="CODE")
@click.option("--source", "-s", required=True, help="Source name or id.")
@click.option("--span", type=Span(), default=None, metavar="START:END", help="Character offsets (half-open).")
@click.option("--segment", type=Int(), default=None, help="Segment number (0-based).")
@click.option("--section", default=None, help="Diary section, e.g. \"So what?\".")
@click.option("--match", default=None, metavar="REGEX", help="Code every match (case-insensitive).")
@click.option("--unit", type=click.Choice(["match", "sentence", "segment", "section"]), default="match",
              show_default=True, help="Expand each match to this unit.")
@click.option("--coder", default=None, metavar="NAME", help="Who codes (default $SP_REALIST_CODER, then 'sp-realist config coder', then the login name).")
@click.option("--memo", default=None, help="A note kept on the coding.")
@project_option
@format_option
def code_add(code_name, source, span, segment, section, match, unit, coder, memo, project_path, fmt, output):
    """Code a span, segment, section or every regex match of a source.

    \b
    Examples:
      sp-realist code add "Referral process" -s "S1 DK1 2019-05-14" --span 120:388
      sp-realist code add "Referral process" -s 4 --match "referr\\w+" --unit sentence --coder RA
    """
    from .codings import add_coding

    if sum(x is not None for x in (span, segment, section, match)) != 1:
        raise click.UsageError("Give exactly one of --span, --segment, --section or --match.")
    with get_project(project_path) as project:
        df = add_coding(project, code_name, source, span=span, segment=segment, match=match, unit=unit,
                        section=section, coder=coder, memo=memo)
    message(f"Coded {int(df['new'].sum())} new span(s) with {code_name!r} ({len(df) - int(df['new'].sum())} already coded).")
    emit(df, fmt, output)


@code.command("remove")
@click.option("--code", "code_name", default=None, help="Only codings of this code.")
@click.option("--source", "-s", default=None, help="Only codings in this source.")
@click.option("--coder", default=None, help="Only codings by this coder.")
@click.option("--origin", default=None, help="Only this origin: manual, rule:NAME, rule:* ...")
@click.option("--span", type=Span(), default=None, metavar="START:END", help="Only this exact span.")
@click.option("--id", "ids", type=Int(), multiple=True, help="Coding id (repeatable).")
@project_option
def code_remove(code_name, source, coder, origin, span, ids, project_path):
    """Remove the codings matching every filter given.

    \b
    Example:
      sp-realist code remove --code "Referral process" --source 4 --coder RA
    """
    from .codings import remove_codings

    with get_project(project_path) as project:
        n = remove_codings(project, code=code_name, source=source, coder=coder, origin=origin, span=span,
                           ids=list(ids) or None)
    message(f"Removed {n} coding(s).")


@code.command("list")
@click.option("--code", "code_name", default=None, help="Only codings of this code.")
@children_option
@click.option("--source", "-s", default=None, help="Only codings in this source.")
@click.option("--coder", default=None, help="Only codings by this coder.")
@click.option("--origin", default=None, help="Only this origin: manual, rule:NAME, rule:* ...")
@project_option
@format_option(xlsx=True)
def code_list(code_name, children, source, coder, origin, project_path, fmt, output):
    """List codings with their span, coder, origin and text.

    \b
    Example:
      sp-realist code list --origin "rule:*" --format csv -o autocodings.csv
    """
    from .codings import list_codings

    with get_project(project_path) as project:
        df = list_codings(project, code=code_name, source=source, coder=coder, origin=origin, children=children)
    emit(df, fmt, output, title="Codings")


@code.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--coder", default=None, help="Coder for entries without one (default $SP_REALIST_CODER, then 'sp-realist config coder', then the login name).")
@project_option
def code_import(path, coder, project_path):
    """Import codings from codings.yaml (located by quote, span, segment or section).

    \b
    Example:
      sp-realist code import codings.yaml --coder RA
    """
    from .codings import import_codings_yaml

    with get_project(project_path) as project:
        stats = import_codings_yaml(project, path, coder=coder)
    message(f"Imported {path}: {stats['added']} coding(s) added, {stats['skipped']} already present.")


@code.command("export")
@click.option("--code", "code_name", default=None, help="Only codings of this code.")
@click.option("--coder", default=None, help="Only codings by this coder.")
@click.option("--origin", default=None, help="Only this origin: manual, rule:NAME, rule:* ...")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file.")
@project_option
def code_export(code_name, coder, origin, output, project_path):
    """Export codings as codings.yaml (quotes where unique, else spans).

    \b
    Example:
      sp-realist code export --coder RA -o codings-ra.yaml
    """
    from .codings import export_codings_yaml

    with get_project(project_path) as project:
        text = export_codings_yaml(project, code=code_name, coder=coder, origin=origin)
    _write_or_echo(text, output)


# --- autocode -------------------------------------------------------------------
#: A dry run with more hits than this shows counts per rule (or per code) on the terminal, not every hit.
HIT_TABLE_LIMIT = 200


@click.command("autocode")
@click.option("--dry-run", is_flag=True, help="Show the hits; change nothing.")
@click.option("--rule", "rules", multiple=True, metavar="NAME", help="Apply only this rule (repeatable).")
@click.option("--remove-rule", default=None, metavar="NAME", help="Remove every coding made by this rule.")
@click.option("--source", "-s", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--include-interviewer", is_flag=True,
              help="Also code interviewer turns (speakers in the interviewer_speakers setting); skipped by default.")
@project_option
@format_option(xlsx=True)
def autocode_cmd(dry_run, rules, remove_rule, sources, include_interviewer, project_path, fmt, output):
    """Apply the codebook's autocoding rules (keywords, phrases, spaCy patterns).

    Codings get coder "autocode" and origin "rule:NAME"; applying twice adds nothing new.
    Interviewer turns (Interviewer, Facilitator, Moderator, Researcher, or the
    project's interviewer_speakers setting) are skipped unless --include-interviewer.
    A dry run with more than 200 hits shows hits per rule (per code when there are
    more than 200 rules); --format csv|json -o FILE writes every hit.

    \b
    Examples:
      sp-realist autocode --dry-run --format csv -o hits.csv
      sp-realist autocode --rule referral-words
      sp-realist autocode --remove-rule referral-words
    """
    from .autocode import autocode, autocode_summary, remove_rule_codings

    with get_project(project_path) as project:
        if remove_rule:
            if rules or dry_run:
                raise click.UsageError("--remove-rule cannot be combined with --rule or --dry-run.")
            n = remove_rule_codings(project, remove_rule)
            message(f"Removed {n} coding(s) made by rule {remove_rule!r}.")
            return
        if fmt == "table" and not output:
            # the terminal shows counts (or at most HIT_TABLE_LIMIT hits): hits are counted as they are
            # found, so a dense run's memory does not grow with them; csv, json, md, xlsx or -o get every hit
            summary = autocode_summary(project, dry_run=dry_run, rules=list(rules) or None,
                                       sources=list(sources) or None, progress=_progress(),
                                       include_interviewer=include_interviewer,
                                       first=HIT_TABLE_LIMIT if dry_run else 0)
            df = None
        else:
            df = autocode(project, dry_run=dry_run, rules=list(rules) or None, sources=list(sources) or None,
                          progress=_progress(), include_interviewer=include_interviewer)
    if df is None:
        if not dry_run:
            message(f"Autocoded: {summary.hits} hit(s), {summary.new} new coding(s).")
            return
        if summary.hits > HIT_TABLE_LIMIT:
            counts = summary.counts()
            if len(counts) > HIT_TABLE_LIMIT:
                counts = summary.counts(by="code")
            by = "rule" if "rule" in counts else "code"
            message(f"Dry run: {summary.hits} hit(s); applying would add {summary.new} coding(s). Hits per "
                    f"{by} below; every hit: --format csv -o hits.csv (or json).")
            emit(counts, fmt, None, title=f"Autocoding hits per {by}")
            return
        message(f"Dry run: {summary.hits} hit(s); applying would add {summary.new} coding(s).")
        # the terminal is narrow; other formats keep every column
        emit(summary.first[["rule", "code", "source", "context", "new"]], fmt, None, title="Autocoding hits")
        return
    new = int(df["new"].sum()) if len(df) else 0
    if fmt == "table":  # a table in a file (-o): the terminal's columns
        df = df[["rule", "code", "source", "context", "new"]]
    if dry_run:
        message(f"Dry run: {len(df)} hit(s); applying would add {new} coding(s).")
        emit(df, fmt, output, title="Autocoding hits")
    else:
        message(f"Autocoded: {len(df)} hit(s), {new} new coding(s).")
        emit(df, fmt, output, title="Autocoding hits")


def _progress():
    import sys

    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:  # pragma: no cover - interactive only
        sys.stderr.write(f"\r{done}/{total} sources")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


# --- memos ----------------------------------------------------------------------
MEMO_TARGETS = ("code", "source", "coding", "theme", "cmoc", "theory", "participant", "excerpt")


def _memo_target_options(func):
    for kind in reversed(MEMO_TARGETS):
        func = click.option(f"--{kind}", f"t_{kind}", default=None,
                            help=f"The {kind} the memo is about ({'id' if kind in ('coding', 'excerpt') else 'name or key'}).")(func)
    return func


def _memo_target(kwargs) -> tuple[str | None, str | None]:
    given = [(k[2:], v) for k, v in kwargs.items() if k.startswith("t_") and v is not None]
    if len(given) > 1:
        raise click.UsageError("Give at most one of --" + ", --".join(MEMO_TARGETS) + ".")
    return given[0] if given else (None, None)


@click.group()
def memo() -> None:
    """Write, list and export memos on the project, codes, sources, codings and themes.

    \b
    Examples:
      sp-realist memo add "Referral confusion recurs at S1." --code "Referral process"
      sp-realist memo list --format md
      sp-realist memo export -o memos.md
    """


@memo.command("add")
@click.argument("text")
@_memo_target_options
@click.option("--title", default=None, help="A short title.")
@click.option("--author", default=None, help="Author (default $SP_REALIST_CODER, then 'sp-realist config coder', then the login name).")
@click.option("--report", "in_report", is_flag=True,
              help="Show this memo in the report, in its theory's section (memos on a theory only).")
@project_option
def memo_add(text, title, author, in_report, project_path, **kwargs):
    """Write a memo (on the project unless a target is given).

    \b
    Examples:
      sp-realist memo add "Check with S2 whether forms improved." --source "S2 DK1 2019-07-02"
      sp-realist memo add "Induction gaps were worst at branch surgeries." --theory T1 --report
    """
    from .memos import add_memo

    on, target = _memo_target(kwargs)
    with get_project(project_path) as project:
        mid = add_memo(project, text, on=on or "project", target=target, title=title, author=author,
                       in_report=in_report)
    message(f"Added memo {mid}" + (" (shown in the report)." if in_report else "."))


@memo.command("report")
@click.argument("memo_id", type=Int(1), metavar="ID")
@click.option("--off", is_flag=True, help="No longer show it in the report.")
@project_option
def memo_report(memo_id, off, project_path):
    """Mark a memo on a theory for the report (it then appears in that theory's section), or --off.

    \b
    Examples:
      sp-realist memo report 12
      sp-realist memo report 12 --off
    """
    from .memos import edit_memo

    with get_project(project_path) as project:
        edit_memo(project, memo_id, in_report=not off)
    message(f"Memo {memo_id} {'is no longer' if off else 'is now'} shown in the report.")


@memo.command("list")
@_memo_target_options
@click.option("--on", "on", type=click.Choice(("project",) + MEMO_TARGETS), default=None,
              help="Only memos on this kind of target.")
@click.option("--author", default=None, help="Only memos by this author.")
@project_option
@format_option
def memo_list(on, author, project_path, fmt, output, **kwargs):
    """List memos, oldest first.

    \b
    Example:
      sp-realist memo list --code "Referral process"
    """
    from .memos import list_memos

    kind, target = _memo_target(kwargs)
    with get_project(project_path) as project:
        df = list_memos(project, on=kind or on, target=target, author=author)
    emit(df, fmt, output, title="Memos")


@memo.command("export")
@click.option("--to", "to", type=click.Choice(["md", "yaml"]), default=None,
              help="Format (default: from the --output suffix, else md).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file.")
@project_option
def memo_export(to, output, project_path):
    """Export every memo as a Markdown document (or YAML).

    \b
    Example:
      sp-realist memo export -o memos.md
    """
    from .memos import export_memos

    to = to or ("yaml" if output and output.lower().endswith((".yaml", ".yml")) else "md")
    with get_project(project_path) as project:
        text = export_memos(project, fmt=to)
    _write_or_echo(text, output)


# --- text search ----------------------------------------------------------------
source_where_option = click.option(
    "--where", "-w", "where", multiple=True, metavar="NAME=VALUE",
    help="Keep sources whose attribute NAME (kind, site, participant, wave, any source attribute) equals VALUE. "
         "Repeat for more (same NAME: any of the values).")


@click.command("search")
@click.argument("pattern")
@click.option("--word", is_flag=True, help="Find PATTERN as literal words (a whole word), not a regular expression.")
@click.option("--case-sensitive", is_flag=True, help="Match upper and lower case exactly.")
@source_where_option
@click.option("--source", default=None, help="Only this source (name or id).")
@click.option("--context", type=Int(0, 10_000), default=40, show_default=True,
              help="Characters of text shown on each side of a hit.")
@click.option("--limit", type=Int(1), default=None, help="Stop after this many hits.")
@project_option
@format_option(xlsx=True)
def search_cmd(pattern, word, case_sensitive, where, source, context, limit, project_path, fmt, output):
    """Find a regular expression (or, with --word, a word) in every source: keyword-in-context lines.

    \b
    Examples:
      sp-realist search "front desk" --where site=S1 --context 30
      sp-realist search "referr(al|ed)" --where kind=diary --format csv -o referrals.csv
      sp-realist search care --word --source "S1 DK1 2019-05-14"
    """
    from .search import kwic

    with get_project(project_path) as project:
        df = kwic(project, pattern=pattern, word=word, ignore_case=not case_sensitive, where=_where(where),
                  context=context, source=source, limit=limit)
    if df.empty:
        message(f"No hits for {pattern!r}.")
    if fmt == "table":
        df = df[["attribution", "left", "match", "right", "source"]]
    else:
        df = df.drop(columns=["source_id"])
    emit(df, fmt, output, title=f"search: {pattern}")


@click.command("words")
@click.option("--by", default=None, metavar="ATTR", help="Count per site, kind, participant, wave or any source "
                                                         "attribute.")
@click.option("--top", type=Int(1), default=None, help="Keep the most frequent N words (of each group with --by).")
@click.option("--min-count", type=Int(1), default=1, show_default=True, help="Leave out words seen fewer times.")
@source_where_option
@project_option
@format_option(xlsx=True)
def words_cmd(by, top, min_count, where, project_path, fmt, output):
    """Word frequencies of the sources, without stop words (spaCy's English list), numbers or punctuation.

    \b
    Examples:
      sp-realist words --top 30
      sp-realist words --by site --top 10 --where kind=diary --format csv -o words.csv
    """
    from .search import word_frequencies

    with get_project(project_path) as project:
        df = word_frequencies(project, by=by, where=_where(where), top=top, min_count=min_count)
    emit(df, fmt, output, title="words" + (f" by {by}" if by else ""))


# --- retrieval and matrices ----------------------------------------------------
@click.command("retrieve")
@click.argument("codes", nargs=-1, required=True, metavar="CODE...")
@children_option
@where_option
@click.option("--coder", default=None, help="Only codings by this coder.")
@project_option
@format_option(xlsx=True)
def retrieve(codes, children, where, coder, project_path, fmt, output):
    """Show the coded excerpts for one or more codes, attributed like "(S1 DK1)".

    \b
    Examples:
      sp-realist retrieve "Referral process" --children --where site=S1
      sp-realist retrieve Induction --where role="link worker" --format md -o induction.md
    """
    from .retrieval import coded_excerpts, own_and_descendant_codings

    with get_project(project_path) as project:
        df = coded_excerpts(project, list(codes), children=children, filters=_where(where), coder=coder)
        if not children:
            counts = own_and_descendant_codings(project, list(codes), filters=_where(where), coder=coder,
                                                parents_only=True)
            for row in counts.itertuples(index=False):
                if row.own == 0 and row.descendants:
                    message(f"(code {row.code!r} has no codings of its own; its children have {row.descendants}: "
                            "add --children)")
    if fmt == "table":
        df = df[["code", "attribution", "source", "text", "coder"]]
    emit(df, fmt, output, title=", ".join(codes))


@click.command("frequencies")
@click.option("--by", default=None, metavar="ATTR", help="Break counts down by site, role, kind, wave, coder ...")
@click.option("--code", "codes", multiple=True, help="Only this code (repeatable).")
@children_option
@click.option("--measure", type=click.Choice(["codings", "sources", "participants"]), default="codings",
              show_default=True, help="What to count when --by is given.")
@click.option("--rollup", is_flag=True, help="Count a code's descendants under it too.")
@where_option
@project_option
@format_option(xlsx=True)
def frequencies_cmd(by, codes, children, measure, rollup, where, project_path, fmt, output):
    """Code frequencies: codings, sources and participants per code, or by an attribute.

    \b
    Examples:
      sp-realist frequencies
      sp-realist frequencies --by site --measure participants --format csv
    """
    from .retrieval import frequencies

    with get_project(project_path) as project:
        df = frequencies(project, by=by, codes=list(codes) or None, children=children, filters=_where(where),
                         measure=measure, rollup=rollup)
    emit(df, fmt, output, title="Code frequencies")


@click.command("cooccurrence")
@click.option("--mode", type=click.Choice(["overlap", "segment"]), default="overlap", show_default=True,
              help="overlap: overlapping coded spans; segment: codes in the same segment.")
@click.option("--code", "codes", multiple=True, help="Only this code (repeatable).")
@children_option
@where_option
@project_option
@format_option(xlsx=True)
def cooccurrence_cmd(mode, codes, children, where, project_path, fmt, output):
    """Code co-occurrence matrix (overlapping spans or same segment).

    \b
    Example:
      sp-realist cooccurrence --mode segment --where site=S1 --format xlsx -o cooc.xlsx
    """
    from .retrieval import cooccurrence

    with get_project(project_path) as project:
        df = cooccurrence(project, mode=mode, codes=list(codes) or None, children=children, filters=_where(where))
    emit(df, fmt, output, title=f"Co-occurrence ({mode})")


@click.command("framework")
@click.option("--rows", default="participants", show_default=True, metavar="participants|sites|ATTR",
              help="One row per participant, per site, or per value of any attribute.")
@click.option("--cells", type=click.Choice(["counts", "excerpts"]), default="counts", show_default=True,
              help="Numbers of codings or the coded text.")
@click.option("--code", "codes", multiple=True, help="Only this code (repeatable).")
@children_option
@click.option("--rollup", is_flag=True, help="Put a code's descendants' codings in its column too.")
@where_option
@project_option
@format_option(xlsx=True)
def framework_cmd(rows, cells, codes, children, rollup, where, project_path, fmt, output):
    """Framework Method matrix: participants (or sites) x codes, with counts or excerpts.

    \b
    Examples:
      sp-realist framework --rows sites
      sp-realist framework --cells excerpts --format xlsx -o framework.xlsx
    """
    from .retrieval import framework_matrix

    with get_project(project_path) as project:
        df = framework_matrix(project, rows=rows, codes=list(codes) or None, children=children, cells=cells,
                              filters=_where(where), rollup=rollup)
    emit(df, fmt, output, title="Framework matrix")


# --- themes ---------------------------------------------------------------------
PHASE_CHOICE = click.Choice(["initial", "searching", "reviewing", "defining", "named"])


@click.group()
def theme() -> None:
    """Themes and sub-themes that group codes (Braun & Clarke).

    \b
    Examples:
      sp-realist theme add "Getting started" --phase searching --code "Referral process" --code Induction
      sp-realist theme table --quotes 3 --format md
    """


@theme.command("add")
@click.argument("name")
@click.option("--description", default=None, help="What the theme captures.")
@click.option("--phase", type=PHASE_CHOICE, default="initial", show_default=True, help="Analysis phase.")
@click.option("--parent", default=None, help="Make it a sub-theme of this theme.")
@click.option("--code", "codes", multiple=True, help="A code the theme groups (repeatable).")
@project_option
def theme_add(name, description, phase, parent, codes, project_path):
    """Add a theme or sub-theme.

    \b
    Example:
      sp-realist theme add "Paperwork" --parent "Getting started" --code "Missing referral forms"
    """
    from .themes import add_theme

    with get_project(project_path) as project:
        add_theme(project, name, description=description, phase=phase, parent=parent, codes=list(codes))
    message(f"Added theme {name!r}.")


@theme.command("edit")
@click.argument("name")
@click.option("--name", "new_name", default=None, help="New name.")
@click.option("--description", default=None, help="New description.")
@click.option("--phase", type=PHASE_CHOICE, default=None, help="New phase.")
@click.option("--parent", default=None, help="Move under this theme.")
@click.option("--top", is_flag=True, help="Move to the top level.")
@project_option
def theme_edit(name, new_name, description, phase, parent, top, project_path):
    """Rename a theme, or change its description, phase or parent.

    \b
    Example:
      sp-realist theme edit "Getting started" --phase named
    """
    from .themes import edit_theme

    with get_project(project_path) as project:
        edit_theme(project, name, new_name=new_name, description=description, phase=phase, parent=parent,
                   top_level=top)
    message(f"Updated theme {name!r}.")


@theme.command("assign")
@click.argument("theme_name", metavar="THEME")
@click.argument("codes", nargs=-1, required=True, metavar="CODE...")
@click.option("--remove", is_flag=True, help="Remove the codes from the theme instead.")
@project_option
def theme_assign(theme_name, codes, remove, project_path):
    """Add codes to a theme (or remove them with --remove).

    \b
    Example:
      sp-realist theme assign "Getting started" Induction "Referral process"
    """
    from .themes import assign_codes

    with get_project(project_path) as project:
        n = assign_codes(project, theme_name, list(codes), remove=remove)
    message(f"{'Removed' if remove else 'Assigned'} {n} code(s) {'from' if remove else 'to'} {theme_name!r}.")


@theme.command("delete")
@click.argument("name")
@project_option
def theme_delete(name, project_path):
    """Delete a theme and its sub-themes (codes and codings are kept).

    \b
    Example:
      sp-realist theme delete "Old theme"
    """
    from .themes import delete_theme

    with get_project(project_path) as project:
        delete_theme(project, name)
    message(f"Deleted theme {name!r}.")


@theme.command("list")
@project_option
@format_option
def theme_list(project_path, fmt, output):
    """List themes with their phase, description and codes.

    \b
    Example:
      sp-realist theme list --format json
    """
    from .themes import list_themes

    with get_project(project_path) as project:
        emit(list_themes(project), fmt, output, title="Themes")


@theme.command("table")
@click.option("--quotes", "quotes", type=Int(0, 50), default=3, show_default=True,
              help="Supporting quotes per theme.")
@where_option
@project_option
@format_option(xlsx=True)
def theme_table_cmd(quotes, where, project_path, fmt, output):
    """The theme table: codes, support and quotes spread across participants and sites.

    \b
    Example:
      sp-realist theme table --quotes 3 --format md -o themes.md
    """
    from .themes import theme_table, theme_table_flat

    with get_project(project_path) as project:
        table = theme_table(project, quotes_per_theme=quotes, filters=_where(where))
    if fmt == "json":
        emit(table, fmt, output, title="Themes")
    else:
        emit(theme_table_flat(table), fmt, output, title="Themes")


# --- agreement -------------------------------------------------------------------
@click.command("agreement")
@click.option("--coders", "coders_flag", is_flag=True, help="Marks the coders that follow (optional).")
@click.argument("coders", nargs=-1, required=True, metavar="CODER...")
@click.option("--unit", type=click.Choice(["sentence", "segment"]), default="sentence", show_default=True,
              help="The units coders' decisions are compared on.")
@click.option("--code", "codes", multiple=True, help="Only this code (repeatable).")
@children_option
@click.option("--source", "-s", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--min", "minimum", type=float, default=None,
              help="Exit 3 when the overall --metric is below this value (or undefined).")
@click.option("--metric", type=click.Choice(["alpha", "kappa", "percent"]), default="alpha", show_default=True,
              help="The measure --min checks (percent is 0-100).")
@click.option("--disagreements", is_flag=True, help="List the disagreeing units instead of the summary.")
@project_option
@format_option(xlsx=True)
def agreement_cmd(coders_flag, coders, unit, codes, children, sources, minimum, metric, disagreements,
                  project_path, fmt, output):
    """Inter-coder agreement: percent, Cohen's kappa (2 coders), Krippendorff's alpha.

    \b
    Examples:
      sp-realist agreement --coders RA SM --unit sentence
      sp-realist agreement --coders RA SM JB --unit segment --min 0.667
      sp-realist agreement --coders RA SM --disagreements --format csv -o disagreements.csv
    """
    from .agreement import agreement

    names = [n.strip() for c in coders for n in c.split(",") if n.strip()]
    with get_project(project_path) as project:
        result = agreement(project, names, unit=unit, codes=list(codes) or None, children=children,
                           sources=list(sources) or None)
    if disagreements:
        emit(result.disagreements, fmt, output, title="Disagreements")
    else:
        summary = result.summary
        if fmt in ("table", "md"):  # for reading; json/csv/xlsx keep full precision
            summary = summary.round({"percent": 1, "kappa": 3, "alpha": 3})
        emit(summary, fmt, output, title=f"Agreement ({unit}s, coders {', '.join(result.coders)})")
    if minimum is not None:
        result.check(minimum, metric)

"""Commands of sp_realist.privacy: ``anonymise`` (+ ``suggest``, ``check-key``, ``new-key``, ``runs``) and ``audit``."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_support import Int, emit, format_option, get_project, message, project_option
from ..errors import CheckFailed, SpRealistError

ENV_KEY = "SP_REALIST_KEY"


def key_option(required: bool = True):
    return click.option(
        "--key", "-k", "key_path", metavar="KEY", envvar=ENV_KEY, required=required,
        type=click.Path(dir_okay=False),
        help=f"Pseudonym key file (.yaml or .csv), kept outside the project. Defaults to ${ENV_KEY}.",
    )


def _check_show(show_originals: bool, output: str | None) -> None:
    if show_originals and output:
        raise click.BadParameter("originals are shown on screen only; drop --output.", param_hint="--show-originals")


def _emit_frame(frame, project_path: str | None, fmt: str, output: str | None, title: str) -> None:
    """Emit ``frame(project)`` for the project at ``project_path``, closing it afterwards."""
    project = get_project(project_path, check_outputs=False)
    try:
        emit(frame(project), fmt, output, title=title)
    finally:
        project.close()


def _progress():
    from rich.progress import Progress

    from ..cli_support import err_console

    return Progress(console=err_console, transient=True)


@click.group("anonymise", invoke_without_command=True)
@key_option(required=False)
@click.option("--sources", "--source", "-s", "sources", multiple=True, metavar="SOURCE",
              help="Only these sources (name or id; repeat the option). Default: all.")
@click.option("--dry-run", is_flag=True, help="List what would be replaced; change nothing.")
@click.option("--reverse", is_flag=True, help="Restore the originals (needs the key that was applied).")
@click.option("--show-originals", is_flag=True, help="Show the original strings (on screen only).")
@click.option("--irreversible", is_flag=True, help="Keep no (encrypted) reversal record in the project.")
@project_option
@format_option
@click.pass_context
def anonymise_cmd(ctx, key_path, sources, dry_run, reverse, show_originals, irreversible, project_path, fmt,
                  output) -> None:
    """Replace real names in sources with codes from a pseudonym key.

    Every replacement is listed (source, field, position, original hidden,
    replacement, key entry).  Segments, codings and excerpts move with the
    text.  Without --sources every text of the project is rewritten too
    (file names, coders, authors, memos, codes, CMOCs, theories, the audit
    log, settings).  The project stores only the key's SHA-256, an encrypted
    reversal record that only the key can open, and salted fingerprints with
    which every later output is checked (exit 3 if a name would leak).

    \b
    Examples:
      sp-realist anonymise --key ../key.yaml --dry-run
      sp-realist anonymise --key ../key.yaml --sources "S1 DK1 2019-05-14"
      sp-realist anonymise --key ../key.yaml --format csv -o replacements.csv
      sp-realist anonymise --key ../key.yaml --reverse
      sp-realist anonymise suggest --ner en_core_web_sm --key ../key.yaml
    """
    if ctx.invoked_subcommand is not None:
        return
    if not key_path:
        raise click.UsageError("give the pseudonym key with --key KEY (or set SP_REALIST_KEY).")
    if reverse and irreversible:
        raise click.BadParameter("cannot be combined with --reverse.", param_hint="--irreversible")
    _check_show(show_originals, output)
    from .anonymise import anonymise, reverse as reverse_fn
    from .keyfile import load_key

    key = load_key(key_path)
    project = get_project(project_path, check_outputs=False)
    try:
        with _progress() as bar:
            task = bar.add_task("Anonymising" if not reverse else "Restoring", total=None)
            prog = lambda i, n: bar.update(task, completed=i, total=n)  # noqa: E731
            if reverse:
                result = reverse_fn(project, key, sources or None, dry_run=dry_run, show_originals=show_originals,
                                    progress=prog)
            else:
                result = anonymise(project, key, sources or None, dry_run=dry_run, show_originals=show_originals,
                                   irreversible=irreversible, progress=prog)
    finally:
        project.close()
    emit(result.replacements, fmt, output, title="Replacements" if not reverse else "Restorations")
    verb = "would be" if dry_run else "were"
    what = "restored" if reverse else "replaced"
    message(f"{result.count} strings {verb} {what} in {len(result.sources)} source(s) "
            f"with key {result.key_sha256[:12]}…" + (" (dry run: nothing changed)." if dry_run else "."))
    for note in result.notes:
        message(note)
    if not reverse:
        message("Detection used the key alone; 'sp-realist anonymise suggest --ner MODEL' lists names it may miss.")


@anonymise_cmd.command("suggest")
@click.option("--ner", "model", metavar="MODEL", default=None,
              help="Also an installed spaCy pipeline with an NER component (package name or folder).")
@key_option(required=False)
@click.option("--sources", "--source", "-s", "sources", multiple=True, metavar="SOURCE",
              help="Only these sources (repeatable). Default: all.")
@click.option("--labels", default="PERSON,ORG,GPE,FAC,LOC", show_default=True,
              help="Entity labels to suggest with --ner (comma-separated).")
@click.option("--add-to-key", is_flag=True, help="Append the suggestions to the key file (placeholders as replacements).")
@click.option("--n-process", default=1, show_default=True, type=Int(1),
              help="Processes for spaCy (multi-core).")
@project_option
@format_option
def suggest_cmd(model, key_path, sources, labels, add_to_key, n_process, project_path, fmt, output) -> None:
    """List identifiers and names the key does not cover yet.

    Without a model: e-mail addresses, UK phone numbers, NHS numbers (the
    modulus-11 check) and UK postcodes found in the text.  With --ner MODEL
    also the people, places and organisations a trained spaCy pipeline finds.
    Nothing is replaced: review the list, then append it to the key with
    --add-to-key (each gets a placeholder replacement you can edit) and run
    'sp-realist anonymise' again.

    \b
    Examples:
      sp-realist anonymise suggest --key ../key.yaml
      sp-realist anonymise suggest --ner en_core_web_sm --key ../key.yaml
      sp-realist anonymise suggest --ner ./my-ner-model --key ../key.yaml --add-to-key
    """
    import pandas as pd

    from .ner import add_suggestions_to_key, suggest
    from .patterns import suggest_identifiers

    if add_to_key and not key_path:
        raise click.UsageError("--add-to-key needs --key KEY.")
    project = get_project(project_path, check_outputs=False)
    try:
        frames = [suggest_identifiers(project, key_path, sources or None)]
        if model:
            frames.insert(0, suggest(project, model, key_path, sources or None,
                                     labels=[x.strip() for x in labels.split(",") if x.strip()], n_process=n_process))
    finally:
        project.close()
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    emit(df, fmt, output, title="Suggestions (not replaced)")
    if add_to_key and len(df):
        key = add_suggestions_to_key(key_path, df)
        message(f"Added {len(df)} entries to {key_path} (key now {key.sha256[:12]}…); edit their replacements, "
                "then run 'sp-realist anonymise'.")
    else:
        message(f"{len(df)} suggestion(s); nothing was replaced."
                + ("" if model else " Names need a trained pipeline: add --ner MODEL."))


@anonymise_cmd.command("check-key")
@click.argument("key_path", metavar="KEY", type=click.Path(dir_okay=False))
@format_option
def check_key_cmd(key_path, fmt, output) -> None:
    """Validate a pseudonym key and show its SHA-256 (no originals are shown).

    \b
    Example:
      sp-realist anonymise check-key ../key.yaml
    """
    import pandas as pd

    from .keyfile import load_key

    key = load_key(key_path)
    df = pd.DataFrame([
        ("file", key_path), ("entries", len(key)), ("terms", sum(len(e.terms) for e in key.entries)),
        ("case_sensitive_entries", sum(e.case_sensitive for e in key.entries)),
        ("secret", "yes" if key.secret else "no"), ("sha256", key.sha256),
    ], columns=["item", "value"])
    emit(df, fmt, output, title="Key")


@anonymise_cmd.command("new-key")
@click.argument("path", type=click.Path(dir_okay=False))
def new_key_cmd(path) -> None:
    """Write an empty YAML key with a random secret (refuses to overwrite).

    \b
    Example:
      sp-realist anonymise new-key ../key.yaml
    """
    from .keyfile import new_key_text

    p = Path(path)
    if p.exists():
        raise SpRealistError(f"{p}: already exists; choose another name.")
    p.write_text(new_key_text(), encoding="utf-8")
    try:
        p.chmod(0o600)
    except OSError:  # pragma: no cover - platform dependent
        pass
    message(f"Wrote {p}; add entries, keep it outside the project and out of shared folders.")


@anonymise_cmd.command("runs")
@project_option
@format_option
def runs_cmd(project_path, fmt, output) -> None:
    """Show the history of anonymisation runs (key hashes only).

    \b
    Example:
      sp-realist anonymise runs --format json
    """
    from .anonymise import runs_frame

    _emit_frame(runs_frame, project_path, fmt, output, "Anonymisation runs")


@anonymise_cmd.command("status")
@project_option
@format_option
def status_cmd(project_path, fmt, output) -> None:
    """Show which sources are anonymised, in how many layers, with which key (hash).

    \b
    Example:
      sp-realist anonymise status --format csv
    """
    from .anonymise import status_frame

    _emit_frame(status_frame, project_path, fmt, output, "Anonymisation status")


class _PathOrURL(click.Path):
    """An existing file or folder, or a project's database URL (``postgresql+psycopg://...``)."""

    def convert(self, value, param, ctx):
        if "://" in str(value):
            return value
        return super().convert(value, param, ctx)


@click.command("audit")
@click.argument("paths", nargs=-1, required=True, type=_PathOrURL(exists=True))
@key_option(required=True)
@click.option("--show-originals", is_flag=True, help="Show the strings found (on screen only).")
@format_option
def audit_cmd(paths, key_path, show_originals, fmt, output) -> None:
    """Scan outputs for real names from the key; exit 3 if any is found.

    Reads docx (with properties, headers, footers), xlsx, html, md, txt, csv,
    json, yaml, xml, svg, graphml, gexf, dot, mermaid, PNG text chunks,
    qdpx/qdc (zip members), project files (*.sprealist), projects on a
    database server (their URL: every text column of every table) and
    folders (recursively), and checks every file and folder name.  Matching is
    case-insensitive on token boundaries, as in anonymise.

    \b
    Examples:
      sp-realist audit reports/ exports/project.qdpx --key ../key.yaml
      SP_REALIST_KEY=../key.yaml sp-realist audit report.docx --format json
    """
    _check_show(show_originals, output)
    from .audit import audit_paths

    df = audit_paths(paths, key_path, show_originals=show_originals)
    files = df.attrs.get("files", 0)
    for path in df.attrs.get("skipped", []):
        message(f"Not scanned (unsupported type; check it by hand): {path}")
    if len(df):
        emit(df, fmt, output, title="Leaks")
        raise CheckFailed(f"{len(df)} occurrence(s) of real names in {df['file'].nunique()} of {files} file(s); "
                          "anonymise the sources and remake these outputs.")
    emit(df, fmt, output, title="Leaks")
    message(f"No real names from the key found in {files} file(s).")


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(anonymise_cmd)
    main.add_command(audit_cmd)

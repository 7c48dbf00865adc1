"""Commands of sp_realist.report: ``report`` and ``build``."""

from __future__ import annotations

import click

from ..cli_support import Int, checked_file, get_project, message, project_option, write_output


@click.command("report")
@project_option
@click.option("--to", "fmt", type=click.Choice(["docx", "html", "md"]), default=None,
              help="Report format (default: from OUT's suffix).")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--template", type=click.Path(dir_okay=False), default=None,
              help="A reference .docx whose styles, page set-up, headers and footers the Word report takes.")
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False), default=None,
              help="A folder whose report.md.j2 / report.html.j2 override the shipped templates.")
@click.option("--provenance", type=click.Choice(["appendix", "footnotes", "none"]), default=None,
              help="How quotes, counts and CMOC rows are traced to excerpt ids (default: appendix).")
@click.option("--key", type=click.Path(dir_okay=False), default=None,
              help="Pseudonym key file; required when the project has an applied key (or set $SP_REALIST_KEY).")
@click.option("--tables", "tables_dir", type=click.Path(file_okay=False), default=None,
              help="Also write every table of the report as CSV into this folder.")
@click.option("--title", default=None, help="Report title (default: the project's report settings).")
@click.option("--quotes-per-theme", type=Int(min=0), default=None,
              help="Quotes shown per theme (default 3).")
@click.option("--figure/--no-figure", default=None,
              help="Include the programme-theory figure (default: yes).")
def report_cmd(project_path, fmt, out, template, templates_dir, provenance, key, tables_dir, title,
               quotes_per_theme, figure) -> None:
    """Write the project's report as Word, HTML or Markdown.

    The report holds a title page and contents, a methods summary generated
    from the project (sources by kind and site, diary entries per site,
    participants by role, the six analysis steps), the thematic findings with
    attributed quotes, one section per mid-range theory (CMOC table, if/then
    statements, evidence quotes), the programme-theory figure, the
    triangulation table, the authors' narrative sections ('sp-realist
    narrative') and appendices (codebook, diary template, appraisal and
    saturation summary, RAMESES II checklist, provenance).  Report settings stored in the
    project (by 'sp-realist build') are used unless an option overrides them.

    \b
    Examples:
      sp-realist report --to docx report.docx
      sp-realist report report.docx --template our-styles.docx --provenance footnotes
      sp-realist report --to html report.html --tables tables/
      SP_REALIST_KEY=~/secure/key.yaml sp-realist report --to md report.md
    """
    from .api import write_report
    from .model import ReportSettings

    project = get_project(project_path)
    data = dict(project.get_setting("report") or {})
    data.setdefault("questions", project.get_setting("questions") or {})
    data = {k: v for k, v in data.items() if k not in ("formats", "template", "templates", "tables")}
    if title:
        data["title"] = title
    if provenance:
        data["provenance"] = provenance
    if quotes_per_theme is not None:
        data["quotes_per_theme"] = quotes_per_theme
    if figure is not None:
        data["figure"] = figure
    settings = ReportSettings.from_mapping(data, "project report settings")
    result = write_report(project, out, fmt=fmt, settings=settings, template=template,
                          template_dirs=[templates_dir] if templates_dir else [], key=key, tables_dir=tables_dir)
    for path in result.paths:
        message(f"Wrote {path}")
    if result.tables:
        message(f"Wrote {len(result.tables)} tables as CSV in {tables_dir}")
    if result.audited:
        message("Audit: no real name from the pseudonym key occurs in the report.")


@click.command("build")
@click.argument("study_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: STUDY_DIR/out). A project there is replaced only if 'build' made it.")
@click.option("--key", type=click.Path(dir_okay=False), default=None,
              help="Pseudonym key file, for the leak audit when the study's project has an applied key.")
@click.option("--into", "into", metavar="URL", default=None,
              help="Build the project into this PostgreSQL database (empty, or holding an earlier build) instead "
                   "of a file in --out; the outputs still go to --out.")
def build_cmd(study_dir, out, key, into) -> None:
    """Build a reproducible study from its study.yaml: project, reports, figure, tables.

    Creates the project from scratch, ingests the sources the manifest lists,
    imports the codebook and its rules, autocodes, imports codings, theories
    and analysis (appraisals and CMOC evidence), then writes report.docx /
    .html / .md, figures/programme-theory.png / .svg / .graphml and
    tables/*.csv.  Two builds of the same study give the same text and tables.
    A build is all or nothing: it is staged and moved into --out only when
    every step succeeded, so a failure leaves --out as it was.
    A summary goes to stderr.

    With --into URL the project is built into a PostgreSQL database (a team
    project on a server), just as all or nothing: the database is left as it
    was on any failure.

    \b
    Examples:
      sp-realist build corpora/mind-cymru-2020 --out out/mind-cymru-2020
      sp-realist build corpora/mind-cymru-2020 --out out/mind-cymru-2020 \\
          --into postgresql+psycopg://alice@db.example.org/mind_cymru
    """
    from .study import build_study

    result = build_study(study_dir, out, on_step=lambda m: message(f"  {m}"), key=key, into=into)
    c = result.counts
    message(f"Built {result.project}")
    message(f"  {c.get('sources', 0)} sources, {c.get('participants', 0)} participants, {c.get('codes', 0)} codes, "
            f"{c.get('codings', 0)} codings, {c.get('themes', 0)} themes")
    message(f"  {c.get('appraisals', 0)} appraisals, {c.get('theories', 0)} theories, {c.get('cmocs', 0)} CMOCs")
    message(f"  {len(result.outputs)} output files in {result.out}")


# --------------------------------------------------------------------------
# RAMESES II checklist and the author's narrative sections
# --------------------------------------------------------------------------
@click.command("rameses")
@project_option
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "md", "docx"]), default="table",
              show_default=True, help="Output format (docx needs --output).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def rameses_cmd(project_path, fmt, output) -> None:
    """The RAMESES II reporting checklist (Wong et al. 2016) for this project.

    Lists the 20 items of the reporting standard for realist evaluations,
    each with its status ('filled from project', 'needs author text',
    'missing'), what the project holds for it (title, programme theory and
    its refinement history, data sources by kind, site and dates,
    participants by role, the six analysis steps with counts, CMOCs and their
    evidence, the author's narrative sections), what to add, and the report
    section that shows it.  Author's text is added with 'sp-realist narrative
    set' or a study's 'narrative:' block.  Every report has the checklist as
    an appendix.

    \b
    Examples:
      sp-realist rameses
      sp-realist rameses --format md -o rameses.md
      sp-realist rameses --format docx -o rameses.docx
    """
    from ..cli_support import emit
    from .rameses import checklist_markdown, rameses_checklist, write_checklist_docx

    if fmt == "docx" and not output:
        raise click.UsageError("--format docx writes a Word file; add --output FILE.docx.")
    project = get_project(project_path)
    checklist = rameses_checklist(project)
    if fmt == "docx":
        with checked_file(output) as tmp:  # read back by the output check before it is moved into place
            write_checklist_docx(checklist, tmp)
        message(f"Wrote {output}")
    elif fmt == "md":
        write_output(checklist_markdown(checklist), output)
    else:
        df = checklist.frame()
        if fmt == "table":
            df = df.drop(columns=["part", "guidance", "narrative"])
        emit(df, fmt, output, title="RAMESES II reporting checklist")
    message(checklist.summary())


class _Section(click.ParamType):
    """A narrative section name: one of the documented sections, or ``theory:KEY`` (usage error otherwise)."""

    name = "section"

    def convert(self, value, param, ctx):
        from ..errors import SpRealistError
        from .narrative import check_section

        try:
            return check_section(value, "section").name
        except SpRealistError as exc:
            self.fail(exc.message, param, ctx)


@click.group("narrative")
def narrative_group() -> None:
    """The author's narrative sections of the report (summary, ethics, limitations ...).

    Each section is Markdown stored in the project, placed by the report
    where a reader expects it and counted by the RAMESES II checklist.  A
    built project takes them from study.yaml's 'narrative:' block.

    \b
    Examples:
      sp-realist narrative set ethics ethics.md
      sp-realist narrative set theory:T1 t1.md     # shown in theory T1's section
      sp-realist narrative show
      sp-realist narrative show ethics
    """


@narrative_group.command("set")
@project_option
@click.argument("section", type=_Section(), metavar="SECTION")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--actor", default=None, help="Who is editing (for the audit log).")
def narrative_set_cmd(project_path, section, file, actor) -> None:
    """Store SECTION's text from a Markdown FILE ('-' reads stdin), replacing earlier text.

    \b
    Example:
      sp-realist narrative set strengths_limitations limitations.md
    """
    from .narrative import set_narrative

    project = get_project(project_path)
    if file == "-":
        import sys

        text = sys.stdin.read()
        spec = set_narrative(project, section=section, text=text, actor=actor)
    else:
        spec = set_narrative(project, section=section, path=file, actor=actor)
    message(f"Stored '{section}' (RAMESES II item {spec.item}); reports show it under {spec.report_section}.")


@narrative_group.command("show")
@project_option
@click.argument("section", type=_Section(), required=False, metavar="[SECTION]")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "md"]), default="table",
              show_default=True, help="Output format of the list of sections.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def narrative_show_cmd(project_path, section, fmt, output) -> None:
    """List the sections (stored or not), or print one SECTION's Markdown.

    \b
    Examples:
      sp-realist narrative show
      sp-realist narrative show ethics > ethics.md
    """
    from ..cli_support import emit
    from ..errors import SpRealistError
    from .narrative import get_narrative, narrative_frame

    project = get_project(project_path)
    if section is None:
        emit(narrative_frame(project, text=fmt != "table"), fmt, output, title="Narrative sections")
        return
    text = get_narrative(project).get(section)
    if text is None:
        raise SpRealistError(f"narrative {section}: no text is stored; add it with "
                             f"'sp-realist narrative set {section} FILE'.")
    write_output(text, output)


@narrative_group.command("remove")
@project_option
@click.argument("section", type=_Section(), metavar="SECTION")
@click.option("--actor", default=None, help="Who is editing (for the audit log).")
def narrative_remove_cmd(project_path, section, actor) -> None:
    """Remove SECTION's stored text.

    \b
    Example:
      sp-realist narrative remove literature
    """
    from .narrative import remove_narrative

    project = get_project(project_path)
    if remove_narrative(project, section=section, actor=actor):
        message(f"Removed '{section}'.")
    else:
        message(f"'{section}' had no stored text; nothing changed.")


@click.group("templates")
def templates_group() -> None:
    """The report and if/then templates stored in the project.

    A project renders with the shipped templates unless it holds its own
    (report.md.j2, report.html.j2, ifthen.j2 ...).  They are stored in the
    project itself, so a copied project file or a project on a server renders
    the same; 'build' stores a study's templates/ folder.

    \b
    Examples:
      sp-realist templates add my-templates/        # every file, by its path inside the folder
      sp-realist templates add ifthen.j2
      sp-realist templates list
      sp-realist templates show ifthen.j2 > ifthen.j2
      sp-realist templates remove ifthen.j2          # the shipped one is used again
    """


@templates_group.command("add")
@project_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="FOLDER|FILE...")
@click.option("--replace-all", is_flag=True, help="Remove every stored template first.")
@click.option("--actor", default=None, help="Who is editing (for the audit log).")
def templates_add_cmd(project_path, paths, replace_all, actor) -> None:
    """Store template files, or every file of a folder, in the project (same names are replaced).

    \b
    Example:
      sp-realist templates add report-templates/
    """
    from ..project_templates import store_templates

    names = store_templates(get_project(project_path), *paths, replace_all=replace_all, actor=actor)
    message(f"Stored {len(names)} template{'s' if len(names) != 1 else ''} in the project: {', '.join(names)}.")


@templates_group.command("list")
@project_option
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "md"]), default="table",
              show_default=True, help="Output format.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def templates_list_cmd(project_path, fmt, output) -> None:
    """List the templates stored in the project.

    \b
    Example:
      sp-realist templates list
    """
    from ..cli_support import emit
    from ..project_templates import templates_frame

    emit(templates_frame(get_project(project_path)), fmt, output, title="Stored templates")


@templates_group.command("show")
@project_option
@click.argument("name")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def templates_show_cmd(project_path, name, output) -> None:
    """Print a stored template's text.

    \b
    Example:
      sp-realist templates show ifthen.j2 > ifthen.j2
    """
    from ..errors import NotFoundError, did_you_mean
    from ..project_templates import stored_templates

    stored = stored_templates(get_project(project_path))
    if name not in stored:
        raise NotFoundError(f"No template {name!r} is stored in the project; "
                            f"{did_you_mean(name, stored, 'see sp-realist templates list.')}")
    write_output(stored[name], output)


@templates_group.command("remove")
@project_option
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--actor", default=None, help="Who is editing (for the audit log).")
def templates_remove_cmd(project_path, names, actor) -> None:
    """Remove stored templates (the shipped ones are used again).

    \b
    Example:
      sp-realist templates remove ifthen.j2
    """
    from ..project_templates import remove_templates

    removed = remove_templates(get_project(project_path), names, actor=actor)
    message(f"Removed {', '.join(removed)} from the project's templates.")


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(report_cmd)
    main.add_command(build_cmd)
    main.add_command(rameses_cmd)
    main.add_command(narrative_group)
    main.add_command(templates_group)

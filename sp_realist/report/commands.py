"""Commands of sp_realist.report: ``report`` and ``build``."""

from __future__ import annotations

import click

from ..cli_support import Int, get_project, message, project_option


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
    triangulation table and appendices (codebook, diary template, appraisal
    and saturation summary, provenance).  Report settings stored in the
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
def build_cmd(study_dir, out, key) -> None:
    """Build a reproducible study from its study.yaml: project, reports, figure, tables.

    Creates the project from scratch, ingests the sources the manifest lists,
    imports the codebook and its rules, autocodes, imports codings, theories
    and analysis (appraisals and CMOC evidence), then writes report.docx /
    .html / .md, figures/programme-theory.png / .svg / .graphml and
    tables/*.csv.  Two builds of the same study give the same text and tables.
    A build is all or nothing: it is staged and moved into --out only when
    every step succeeded, so a failure leaves --out as it was.
    A summary goes to stderr.

    \b
    Example:
      sp-realist build corpora/mind-cymru-2020 --out out/mind-cymru-2020
    """
    from .study import build_study

    result = build_study(study_dir, out, on_step=lambda m: message(f"  {m}"), key=key)
    c = result.counts
    message(f"Built {result.project}")
    message(f"  {c.get('sources', 0)} sources, {c.get('participants', 0)} participants, {c.get('codes', 0)} codes, "
            f"{c.get('codings', 0)} codings, {c.get('themes', 0)} themes")
    message(f"  {c.get('appraisals', 0)} appraisals, {c.get('theories', 0)} theories, {c.get('cmocs', 0)} CMOCs")
    message(f"  {len(result.outputs)} output files in {result.project.parent}")


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(report_cmd)
    main.add_command(build_cmd)

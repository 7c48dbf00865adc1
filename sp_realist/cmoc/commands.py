"""Commands of sp_realist.cmoc: appraise, cmoc, theory, ifthen, saturation,
suggest, graph, triangulate and analysis.  Each is a thin wrapper over a
library function in this package."""

from __future__ import annotations

import json
from typing import Any, Callable

import click

from ..errors import SpRealistError
from ..cli_support import (Int, Span, check_values, checked_file, emit, format_option, get_project, group, message,
                           project_option, resolve_coder, write_output)
from ..output import to_markdown, to_records
from ._common import (CMOC_JUDGEMENTS, COMPONENT_ALIASES, COMPONENTS, CONFIDENCES, INTERPRETATIONS, RELATION_KINDS,
                      RELEVANCE, ROLES, STATUSES, TRUST)


def analyst_option(func: Callable) -> Callable:
    return click.option("--analyst", default=None, metavar="NAME",
                        help="Who is analysing. Defaults to $SP_REALIST_CODER, then 'sp-realist config coder', then the login name.")(func)


def excerpt_options(func: Callable) -> Callable:
    """--source with --quote/--span/--segment/--section, or --excerpt ID."""
    opts = [
        click.option("--excerpt", "excerpt_id", type=Int(), default=None, help="An existing excerpt id."),
        click.option("--section", default=None, help="The first segment of this section (e.g. 'So what?')."),
        click.option("--segment", type=Int(), default=None, help="The segment with this 0-based order."),
        click.option("--span", type=Span(), default=None, metavar="START:END", help="Half-open character offsets."),
        click.option("--quote", default=None, help="Exact words that occur once in the source."),
        click.option("--source", default=None, help="Source name or id."),
    ]
    for opt in opts:
        func = opt(func)
    return func


def excerpt_spec(source, quote, span, segment, section, excerpt_id) -> Any:
    if excerpt_id is not None:
        return excerpt_id
    if not source:
        raise click.UsageError("Give --source with --quote, --span, --segment or --section, or give --excerpt ID.")
    spec: dict[str, Any] = {"source": source}
    if quote:
        spec["quote"] = quote
    elif span:
        try:
            a, b = span.split(":")
            spec["span"] = [int(a), int(b)]
        except ValueError:
            raise click.BadParameter(f"{span!r} is not START:END.", param_hint="--span") from None
    elif segment is not None:
        spec["segment"] = segment
    elif section:
        spec["section"] = section
    else:
        raise click.UsageError("With --source, give --quote, --span, --segment or --section.")
    return spec


def _items(values: tuple[str, ...]) -> Any:
    """A repeated text option: None if absent, text if once, a list of items if several."""
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def _show(frames: dict[str, Any], fmt: str, output: str | None, what: str) -> None:
    """Show one part (``what``) or every part of a multi-part record."""
    if what != "all":
        emit(frames[what], fmt, output, title=what.capitalize())
        return
    if fmt == "table" and not output:
        for name, df in frames.items():
            emit(df, fmt, None, title=name.capitalize())
        return
    if fmt == "json":
        text = json.dumps({k: to_records(v) for k, v in frames.items()}, ensure_ascii=False, indent=2,
                          default=str) + "\n"
    elif fmt == "md":
        text = "\n".join(f"## {k.capitalize()}\n\n{to_markdown(v)}" for k, v in frames.items())
    else:
        raise click.UsageError(f"--format {fmt} shows one part at a time; add --what {'|'.join(frames)}.")
    write_output(text, output)


def _import_file(importer: Callable[..., dict], path: str, analyst: str | None, project_path: str | None) -> None:
    """Run a YAML file import (``importer(project, path, actor=...)``) and report its counts."""
    counts = importer(get_project(project_path), path, actor=resolve_coder(analyst))
    message(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


def _export_file(exporter: Callable[..., str], path: str | None, project_path: str | None) -> None:
    """Run a YAML file export (``exporter(project, path)``): to PATH, else the text to stdout."""
    text = exporter(get_project(project_path), None)
    write_output(text, path)
    if path:
        message(f"Wrote {path}")


# ---------------------------------------------------------------------------
# cmoc
# ---------------------------------------------------------------------------
@group("cmoc")
def cmoc_group() -> None:
    """Context-mechanism-outcome configurations: add, edit, list, show, link evidence, relate, table.

    \b
    Example:
      sp-realist cmoc add T1.1 --theory T1 --context "Lack of induction at site" \\
          --mechanism "Creates confusion" --outcome "Communication issues"
      sp-realist cmoc link T1.1 --source "S1 DK1 2019-05-14" --quote "I wasn't told" --role supports
    """


def cmoc_field_options(func: Callable) -> Callable:
    opts = [
        click.option("--memo", default=None, help="A memo about this CMOC."),
        click.option("--ifthen", default=None,
                     help="The CMOC's own if/then statement, used instead of the template (\"\" clears it)."),
        click.option("--confidence", type=click.Choice(CONFIDENCES), default=None, help="Confidence."),
        click.option("--status", type=click.Choice(STATUSES), default=None, help="partial or complete."),
        click.option("--outcome", multiple=True, help="Outcome (repeat for several items)."),
        click.option("--mechanism", "--mechanism-response", "mechanism_response", multiple=True,
                     help="Mechanism: the response/behaviour (repeat for several items)."),
        click.option("--mechanism-resource", "mechanism_resource", multiple=True,
                     help="Mechanism: the resource offered (optional; shown with the context in tables)."),
        click.option("--context", multiple=True, help="Context (repeat for several items)."),
    ]
    for opt in opts:
        func = opt(func)
    return func


def _fields(context, mechanism_resource, mechanism_response, outcome, status, confidence, memo,
            ifthen=None) -> dict:
    fields = {"context": _items(context), "mechanism_resource": _items(mechanism_resource),
              "mechanism_response": _items(mechanism_response), "outcome": _items(outcome),
              "status": status, "confidence": confidence, "memo": memo, "ifthen": ifthen}
    return {k: v for k, v in fields.items() if v is not None}


@cmoc_group.command("add")
@click.argument("key")
@cmoc_field_options
@click.option("--theory", default=None, help="Add the CMOC to this theory.")
@analyst_option
@project_option
def cmoc_add_cmd(key, context, mechanism_resource, mechanism_response, outcome, status, confidence, memo,
                 ifthen, theory, analyst, project_path) -> None:
    """Create a CMOC.

    \b
    Example:
      sp-realist cmoc add T1.2 --theory T1 --context "No organised site and staff introduction" \\
          --mechanism Irritation --outcome "Repeatedly asking surgery staff for information"
    """
    from .cmocs import add_cmoc

    project = get_project(project_path)
    add_cmoc(project, key, theory=theory, actor=resolve_coder(analyst),
             **_fields(context, mechanism_resource, mechanism_response, outcome, status, confidence, memo, ifthen))
    message(f"Added CMOC {key}" + (f" to theory {theory}" if theory else ""))


@cmoc_group.command("edit")
@click.argument("key")
@cmoc_field_options
@click.option("--new-key", default=None, help="Rename the CMOC.")
@click.option("--reason", default=None, help="Why (recorded in the history of the CMOC's theories).")
@click.option("--evidence", multiple=True, type=Int(), help="Excerpt id that prompted the change (repeatable).")
@analyst_option
@project_option
def cmoc_edit_cmd(key, context, mechanism_resource, mechanism_response, outcome, status, confidence, memo,
                  ifthen, new_key, reason, evidence, analyst, project_path) -> None:
    """Change a CMOC's fields; with --reason the refinement enters its theories' history.

    --ifthen gives the CMOC its own if/then statement, which `ifthen` and the reports show instead of the
    template's; --ifthen "" clears it.

    \b
    Example:
      sp-realist cmoc edit T1.3 --mechanism Frustration --reason "S1 DK2 on paperwork" --evidence 12
      sp-realist cmoc edit T2.1 --ifthen "If a client arrives with complex problems then link workers perceive ..."
      sp-realist cmoc edit T2.1 --ifthen ""
    """
    from .cmocs import edit_cmoc

    project = get_project(project_path)
    changed = edit_cmoc(project, key, actor=resolve_coder(analyst), reason=reason, evidence=list(evidence) or None,
                        new_key=new_key,
                        **_fields(context, mechanism_resource, mechanism_response, outcome, status, confidence, memo,
                                  ifthen))
    message(f"CMOC {key}: changed {', '.join(changed)}" if changed else f"CMOC {key}: nothing changed")


@cmoc_group.command("delete")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@analyst_option
@project_option
def cmoc_delete_cmd(key, yes, analyst, project_path) -> None:
    """Delete a CMOC with its evidence links and relations (logged in the audit log).

    \b
    Example:
      sp-realist cmoc delete T9.9 --yes
    """
    from .cmocs import delete_cmoc

    if not yes:
        click.confirm(f"Delete CMOC {key} and its evidence links?", abort=True, err=True)
    delete_cmoc(get_project(project_path), key, actor=resolve_coder(analyst))
    message(f"Deleted CMOC {key}")


@cmoc_group.command("list")
@click.option("--theory", default=None, help="Only the CMOCs of this theory.")
@project_option
@format_option
def cmoc_list_cmd(theory, project_path, fmt, output) -> None:
    """List CMOCs with their theories and evidence counts.

    \b
    Example:
      sp-realist cmoc list --theory T1 --format md
    """
    from .cmocs import list_cmocs

    emit(list_cmocs(get_project(project_path), theory), fmt, output, title="CMOCs")


@cmoc_group.command("show")
@click.argument("key")
@click.option("--what", type=click.Choice(["all", "fields", "evidence", "relations"]), default="all",
              show_default=True, help="Which part to show.")
@project_option
@format_option
def cmoc_show_cmd(key, what, project_path, fmt, output) -> None:
    """Show one CMOC: its fields, its evidence (with the excerpts' text) and its relations.

    \b
    Example:
      sp-realist cmoc show T1.1
      sp-realist cmoc show T1.1 --what evidence --format csv
    """
    from .cmocs import cmoc_detail, cmoc_fields_frame

    detail = cmoc_detail(get_project(project_path), key)
    frames = {"fields": cmoc_fields_frame(detail), "evidence": detail["evidence"], "relations": detail["relations"]}
    _show(frames, fmt, output, what)


@cmoc_group.command("link")
@click.argument("key")
@excerpt_options
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="supports (default) or refutes; with --remove, only links with this role.")
@click.option("--component", type=click.Choice(COMPONENTS + tuple(COMPONENT_ALIASES), case_sensitive=False),
              default=None, help="Which part of the CMOC the excerpt speaks to ('mechanism' = mechanism_response).")
@click.option("--note", default=None)
@click.option("--remove", is_flag=True, help="Remove the link instead.")
@analyst_option
@project_option
def cmoc_link_cmd(key, source, quote, span, segment, section, excerpt_id, role, component, note, remove,
                  analyst, project_path) -> None:
    """Link an excerpt to a CMOC as supporting or refuting evidence.

    \b
    Example:
      sp-realist cmoc link T1.1 --source "S1 DK1 2019-05-14" \\
          --quote "had to keep asking the receptionist" --role supports --component outcome
      sp-realist cmoc link T1.1 --excerpt 7 --remove
    """
    from .cmocs import link_evidence, unlink_evidence

    project = get_project(project_path)
    spec = excerpt_spec(source, quote, span, segment, section, excerpt_id)
    if remove:
        n = unlink_evidence(project, key, spec, role, actor=resolve_coder(analyst))
        message(f"Removed {n} evidence link(s) from {key}")
        return
    role = role or "supports"
    eid = link_evidence(project, key, spec, role=role, component=component, analyst=resolve_coder(analyst),
                        note=note)
    message(f"Linked evidence {eid} to {key} ({role})")


@cmoc_group.command("relate")
@click.argument("from_key", metavar="FROM")
@click.argument("to_key", metavar="TO")
@click.option("--kind", type=click.Choice(RELATION_KINDS), required=True,
              help="refines, contradicts, or chains (FROM's outcome is TO's context).")
@click.option("--note", default=None)
@click.option("--remove", is_flag=True, help="Remove the relation instead.")
@analyst_option
@project_option
def cmoc_relate_cmd(from_key, to_key, kind, note, remove, analyst, project_path) -> None:
    """Relate two CMOCs.

    \b
    Example:
      sp-realist cmoc relate T3.3 T3.1 --kind chains
    """
    from .cmocs import relate_cmocs, unrelate_cmocs

    project = get_project(project_path)
    if remove:
        n = unrelate_cmocs(project, from_key, to_key, kind, actor=resolve_coder(analyst))
        message(f"Removed {n} relation(s)")
        return
    relate_cmocs(project, from_key, to_key, kind, note, actor=resolve_coder(analyst))
    message(f"{from_key} {kind} {to_key}")


@cmoc_group.command("table")
@click.option("--theory", default=None, help="Only the CMOCs of this theory.")
@click.option("--keys/--no-keys", default=False, help="Add a first column with the CMOC keys.")
@project_option
@format_option(xlsx=True)
def cmoc_table_cmd(theory, keys, project_path, fmt, output) -> None:
    """The report's three-column table: Context (Resource), Mechanism (Behaviour), Outcome.

    \b
    Example:
      sp-realist cmoc table --theory T1 --format md
    """
    from .ifthen import cmoc_table

    df = cmoc_table(get_project(project_path), theory)
    df = df.reset_index().rename(columns={"cmoc": "CMOC"}) if keys else df.reset_index(drop=True)
    emit(df, fmt, output, title=f"CMOCs of {theory}" if theory else "CMOCs")


# ---------------------------------------------------------------------------
# theory
# ---------------------------------------------------------------------------
@group("theory")
def theory_group() -> None:
    """Mid-range theories: add, edit, membership, history, import and export of theory files.

    \b
    Example:
      sp-realist theory import theories.yaml
      sp-realist theory history T1
    """


@theory_group.command("add")
@click.argument("key")
@click.option("--title", required=True)
@click.option("--description", default=None)
@click.option("--question", "questions", multiple=True, help="Evaluation question addressed (repeatable).")
@analyst_option
@project_option
def theory_add_cmd(key, title, description, questions, analyst, project_path) -> None:
    """Create a mid-range theory.

    \b
    Example:
      sp-realist theory add T1 --title "Link worker frustration with confusion in the referral process" \\
          --question Q2 --question Q3 --question Q4
    """
    from .theories import add_theory

    add_theory(get_project(project_path), key, title, description=description, questions=list(questions) or None,
               actor=resolve_coder(analyst))
    message(f"Added theory {key}")


@theory_group.command("edit")
@click.argument("key")
@click.option("--title", default=None)
@click.option("--description", default=None)
@click.option("--question", "questions", multiple=True, help="Replace the questions (repeatable).")
@click.option("--new-key", default=None)
@click.option("--reason", default=None, help="Why (recorded in the history).")
@click.option("--evidence", multiple=True, type=Int(), help="Excerpt id that prompted the change (repeatable).")
@analyst_option
@project_option
def theory_edit_cmd(key, title, description, questions, new_key, reason, evidence, analyst, project_path) -> None:
    """Change a theory; the change is recorded in its refinement history.

    \b
    Example:
      sp-realist theory edit T2 --title "What matters to me in a complex case" --reason "Team review 2020-03"
    """
    from .theories import edit_theory

    changed = edit_theory(get_project(project_path), key, title=title, description=description,
                          questions=list(questions) if questions else None, new_key=new_key, reason=reason,
                          evidence=list(evidence) or None, actor=resolve_coder(analyst))
    message(f"Theory {key}: changed {', '.join(changed)}" if changed else f"Theory {key}: nothing changed")


@theory_group.command("add-cmoc")
@click.argument("theory")
@click.argument("cmoc")
@click.option("--reason", default=None)
@click.option("--evidence", multiple=True, type=Int(), help="Excerpt id (repeatable).")
@analyst_option
@project_option
def theory_add_cmoc_cmd(theory, cmoc, reason, evidence, analyst, project_path) -> None:
    """Make a CMOC part of a theory (recorded in the history).

    \b
    Example:
      sp-realist theory add-cmoc T1 T1.3 --reason "S1 DK2's entries on paperwork" --evidence 12
    """
    from .theories import add_member

    added = add_member(get_project(project_path), theory, cmoc, reason=reason, evidence=list(evidence) or None,
                       actor=resolve_coder(analyst))
    message(f"Added {cmoc} to {theory}" if added else f"{cmoc} was already part of {theory}")


@theory_group.command("remove-cmoc")
@click.argument("theory")
@click.argument("cmoc")
@click.option("--reason", default=None)
@click.option("--evidence", multiple=True, type=Int(), help="Excerpt id (repeatable).")
@analyst_option
@project_option
def theory_remove_cmoc_cmd(theory, cmoc, reason, evidence, analyst, project_path) -> None:
    """Take a CMOC out of a theory (the CMOC is kept; recorded in the history).

    \b
    Example:
      sp-realist theory remove-cmoc T2 T2.3 --reason "refuted by S3 DK3"
    """
    from .theories import remove_member

    removed = remove_member(get_project(project_path), theory, cmoc, reason=reason, evidence=list(evidence) or None,
                            actor=resolve_coder(analyst))
    message(f"Removed {cmoc} from {theory}" if removed else f"{cmoc} was not part of {theory}")


@theory_group.command("record")
@click.argument("theory")
@click.option("--change", required=True, help="What changed.")
@click.option("--reason", default=None)
@click.option("--evidence", multiple=True, type=Int(), help="Excerpt id (repeatable).")
@click.option("--at", default=None, help="Date of the change (default: now).")
@analyst_option
@project_option
def theory_record_cmd(theory, change, reason, evidence, at, analyst, project_path) -> None:
    """Add an entry to a theory's refinement history.

    \b
    Example:
      sp-realist theory record T1 --change "Context now includes reception staff" --reason "team meeting" --at 2019-09-01
    """
    from .theories import record_change

    record_change(get_project(project_path), theory, change, reason=reason, evidence=list(evidence) or None,
                  author=resolve_coder(analyst), at=at)
    message(f"Recorded a change to {theory}")


@theory_group.command("list")
@project_option
@format_option
def theory_list_cmd(project_path, fmt, output) -> None:
    """List theories with their questions and CMOCs.

    \b
    Example:
      sp-realist theory list --format json
    """
    from .theories import list_theories

    emit(list_theories(get_project(project_path)), fmt, output, title="Theories")


@theory_group.command("show")
@click.argument("key")
@click.option("--what", type=click.Choice(["all", "fields", "cmocs", "history"]), default="all", show_default=True)
@project_option
@format_option
def theory_show_cmd(key, what, project_path, fmt, output) -> None:
    """Show one theory: its fields, its CMOCs and its history.

    \b
    Example:
      sp-realist theory show T1
    """
    from .cmocs import list_cmocs
    from .theories import theory_detail, theory_fields_frame, theory_history

    project = get_project(project_path)
    detail = theory_detail(project, key)
    frames = {"fields": theory_fields_frame(detail), "cmocs": list_cmocs(project, key),
              "history": theory_history(project, key)}
    _show(frames, fmt, output, what)


@theory_group.command("history")
@click.argument("key", required=False)
@project_option
@format_option
def theory_history_cmd(key, project_path, fmt, output) -> None:
    """The refinement history of one theory (or all): date, author, change, reason, evidence.

    \b
    Example:
      sp-realist theory history T1 --format md
    """
    from .theories import theory_history

    emit(theory_history(get_project(project_path), key), fmt, output, title="Theory history")


@theory_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@analyst_option
@project_option
def theory_import_cmd(path, analyst, project_path) -> None:
    """Merge a theory file (YAML) into the project: theories, CMOCs, relations, history.

    \b
    Example:
      sp-realist theory import theories.yaml
    """
    from .theoryfile import import_theories_yaml

    _import_file(import_theories_yaml, path, analyst, project_path)


@theory_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@project_option
def theory_export_cmd(path, project_path) -> None:
    """Write the programme theory as a theory file (YAML); to stdout without PATH.

    \b
    Example:
      sp-realist theory export theories.yaml
    """
    from .theoryfile import export_theories_yaml

    _export_file(export_theories_yaml, path, project_path)


# ---------------------------------------------------------------------------
# ifthen
# ---------------------------------------------------------------------------
@click.command("ifthen")
@click.option("--theory", default=None, help="Only the CMOCs of this theory.")
@click.option("--template", default=None, help="A template file, or a template name in the project's folders.")
@project_option
@format_option
def ifthen_cmd(theory, template, project_path, fmt, output) -> None:
    """If/then statements rendered from the CMOCs (Jinja2 template, overridable per project).

    \b
    Example:
      sp-realist ifthen --theory T1 --format md
      sp-realist ifthen --template my-style.j2
    """
    from .ifthen import ifthen_statements

    emit(ifthen_statements(get_project(project_path), theory, template), fmt, output, title="If/then statements")


# ---------------------------------------------------------------------------
# appraise
# ---------------------------------------------------------------------------
@group("appraise")
def appraise_group() -> None:
    """Wong & Papoutsi's six-step appraisal of excerpts (per analyst, with history).

    \b
    Steps: 1 relevance, 2 trust (+ rationale), 3 interpretation (C, M resource, M response, O),
    4 CMOC judgement (+ CMOC), 5 theory (+ whether it must change), 6 saturation note.
    Example:
      sp-realist appraise queue --analyst RA
      sp-realist appraise set --source "S1 DK1 2019-05-14" --segment 2 --relevance relevant \\
          --trust high --interpretation context --judgement supports --cmoc T1.1 --link
    """


def coding_option(func: Callable) -> Callable:
    return click.option("--coding", "coding_id", type=Int(), default=None, help="Appraise this coded span.")(func)


def _appraisal_ref(source, quote, span, segment, section, excerpt_id, coding_id):
    if coding_id is not None:
        return {"coding": coding_id}
    return excerpt_spec(source, quote, span, segment, section, excerpt_id)


@appraise_group.command("set")
@excerpt_options
@coding_option
@click.option("--relevance", type=click.Choice(RELEVANCE), default=None, help="Step 1.")
@click.option("--trust", type=click.Choice(TRUST), default=None, help="Step 2.")
@click.option("--rationale", "trust_rationale", default=None, help="Step 2: why this trust.")
@click.option("--interpretation", type=click.Choice(INTERPRETATIONS + tuple(COMPONENT_ALIASES), case_sensitive=False),
              default=None, help="Step 3 ('mechanism' = mechanism_response, 'resource' = mechanism_resource).")
@click.option("--judgement", "cmoc_judgement", type=click.Choice(CMOC_JUDGEMENTS), default=None, help="Step 4.")
@click.option("--cmoc", default=None, help="Step 4: the CMOC the judgement concerns.")
@click.option("--theory", default=None, help="Step 5: the programme theory concerned.")
@click.option("--theory-change", type=click.Choice(["yes", "no"]), default=None,
              help="Step 5: must the theory change?")
@click.option("--theory-note", default=None, help="Step 5: note.")
@click.option("--saturation-note", default=None, help="Step 6: note on theoretical saturation.")
@click.option("--note", default=None)
@click.option("--clear", "clear_fields", multiple=True, metavar="FIELD",
              type=click.Choice(["relevance", "trust", "trust_rationale", "interpretation", "cmoc_judgement", "cmoc",
                                 "theory", "theory_change", "theory_note", "saturation_note", "note"]),
              help="Empty this field (repeatable); the old value stays in the history.")
@click.option("--link", is_flag=True, help="Also link the excerpt to the CMOC as evidence (refutes/supports).")
@analyst_option
@project_option
def appraise_set_cmd(source, quote, span, segment, section, excerpt_id, coding_id, clear_fields, link, analyst,
                     project_path, **steps) -> None:
    """Record or edit your appraisal of an excerpt (earlier versions are kept).

    \b
    Example:
      sp-realist appraise set --source "S1 DK1 2019-05-14" --quote "I wasn't told" \\
          --relevance relevant --trust high --rationale "written the same week" --analyst RA
      sp-realist appraise set --coding 42 --relevance concept_box
      sp-realist appraise set --excerpt 12 --clear cmoc --clear cmoc_judgement
    """
    from .appraisal import set_appraisal

    ref = _appraisal_ref(source, quote, span, segment, section, excerpt_id, coding_id)
    steps = {k: v for k, v in steps.items() if v is not None}
    for name in clear_fields:
        if name in steps:
            raise click.UsageError(f"--clear {name} and a value for it cannot be given together.")
        steps[name] = ""
    if not steps:
        raise click.UsageError("Give at least one step, e.g. --relevance relevant.")
    result = set_appraisal(get_project(project_path), ref, resolve_coder(analyst), link=link, **steps)
    changed = ", ".join(result["changed"]) or "nothing"
    message(f"Appraisal of excerpt {result['excerpt_id']} {result['status']} ({changed})")


@appraise_group.command("show")
@excerpt_options
@coding_option
@project_option
@format_option
def appraise_show_cmd(source, quote, span, segment, section, excerpt_id, coding_id, project_path, fmt, output) -> None:
    """Every analyst's appraisal of one excerpt.

    \b
    Example:
      sp-realist appraise show --source "S1 DK1 2019-05-14" --segment 2
    """
    from .appraisal import show_appraisal

    ref = _appraisal_ref(source, quote, span, segment, section, excerpt_id, coding_id)
    emit(show_appraisal(get_project(project_path), ref), fmt, output, title="Appraisals")


@appraise_group.command("history")
@excerpt_options
@coding_option
@click.option("--analyst", default=None, help="Only this analyst's appraisal.")
@project_option
@format_option
def appraise_history_cmd(source, quote, span, segment, section, excerpt_id, coding_id, analyst, project_path, fmt,
                         output) -> None:
    """Every version of the appraisals of one excerpt, oldest first.

    \b
    Example:
      sp-realist appraise history --excerpt 12 --analyst RA
    """
    from .appraisal import appraisal_history

    ref = _appraisal_ref(source, quote, span, segment, section, excerpt_id, coding_id)
    emit(appraisal_history(get_project(project_path), ref, analyst), fmt, output, title="Appraisal history")


@appraise_group.command("list")
@click.option("--analyst", default=None)
@click.option("--cmoc", default=None)
@click.option("--theory", default=None)
@click.option("--relevance", type=click.Choice(RELEVANCE), default=None)
@project_option
@format_option(xlsx=True)
def appraise_list_cmd(analyst, cmoc, theory, relevance, project_path, fmt, output) -> None:
    """List appraisals, optionally by analyst, CMOC, theory or relevance.

    \b
    Example:
      sp-realist appraise list --cmoc T1.1 --format csv -o t1.1.csv
    """
    from .appraisal import list_appraisals

    emit(list_appraisals(get_project(project_path), analyst, cmoc, theory, relevance), fmt, output,
         title="Appraisals")


@appraise_group.command("queue")
@click.option("--analyst", default=None, help="What this analyst has not appraised (default: nobody has).")
@click.option("--unit", type=click.Choice(["all", "segment", "coding"]), default="all", show_default=True)
@click.option("--source", default=None, help="Only this source.")
@click.option("--limit", type=Int(), default=None, help="At most this many rows.")
@project_option
@format_option
def appraise_queue_cmd(analyst, unit, source, limit, project_path, fmt, output) -> None:
    """What is still unappraised: segments and coded spans, in ingest order.

    \b
    Example:
      sp-realist appraise queue --analyst RA --unit coding --limit 20
    """
    from .appraisal import appraisal_queue

    emit(appraisal_queue(get_project(project_path), analyst, unit, source, limit), fmt, output,
         title="To appraise")


@appraise_group.command("concept-box")
@click.option("--analyst", default=None)
@project_option
@format_option
def appraise_concept_box_cmd(analyst, project_path, fmt, output) -> None:
    """Excerpts in the concept box (relevance concept_box or interpretation unclear): revisit them.

    \b
    Example:
      sp-realist appraise concept-box --analyst RA
    """
    from .appraisal import concept_box

    emit(concept_box(get_project(project_path), analyst), fmt, output, title="Concept box")


@appraise_group.command("summary")
@project_option
@format_option
def appraise_summary_cmd(project_path, fmt, output) -> None:
    """How many appraisals took each value at each step.

    \b
    Example:
      sp-realist appraise summary --format md
    """
    from .appraisal import appraisal_summary

    emit(appraisal_summary(get_project(project_path)), fmt, output, title="Appraisal summary")


# ---------------------------------------------------------------------------
# analysis files
# ---------------------------------------------------------------------------
@group("analysis")
def analysis_group() -> None:
    """Analysis files (YAML): appraisals and CMOC evidence kept in git.

    \b
    Example:
      sp-realist analysis import analysis.yaml
    """


@analysis_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@analyst_option
@project_option
def analysis_import_cmd(path, analyst, project_path) -> None:
    """Import appraisals and evidence from an analysis file (all or nothing).

    \b
    Example:
      sp-realist theory import theories.yaml
      sp-realist analysis import analysis.yaml
    """
    from .analysisfile import import_analysis_yaml

    _import_file(import_analysis_yaml, path, analyst, project_path)


@analysis_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@project_option
def analysis_export_cmd(path, project_path) -> None:
    """Write every appraisal and evidence link as an analysis file (stdout without PATH).

    \b
    Example:
      sp-realist analysis export analysis.yaml
    """
    from .analysisfile import export_analysis_yaml

    _export_file(export_analysis_yaml, path, project_path)


# ---------------------------------------------------------------------------
# saturation
# ---------------------------------------------------------------------------
@group("saturation", invoke_without_command=True)
@click.option("--theory", default=None, help="Only this theory.")
@click.option("--level", type=click.Choice(["both", "cmoc", "theory"]), default="both", show_default=True)
@project_option
@format_option(xlsx=True)
@click.pass_context
def saturation_group(ctx, theory, level, project_path, fmt, output) -> None:
    """Evidence counts and saturation per CMOC and theory; 'rule' and 'curve' subcommands.

    Each CMOC is judged on its own evidence: enough supporting excerpts,
    participants, sources and sites; no refuting excerpt among its last K
    evidence sources; not partial; context, mechanism and outcome each
    supported.  The reason column says why; a step-6 note that claims
    saturation the evidence does not show is flagged (column flag, and a
    message on stderr).

    \b
    Example:
      sp-realist saturation --theory T1
      sp-realist saturation rule --min-supporting 3 --min-participants 2 --no-refutation-in-last 3
      sp-realist saturation curve --order date --plot curve.png
    """
    if ctx.invoked_subcommand is not None:
        return
    from .saturation import saturation_table

    table = saturation_table(get_project(project_path), theory, level)
    emit(table, fmt, output, title="Saturation")
    for flag in table["flag"]:
        if flag:
            message(f"Flagged: {flag}.")


@saturation_group.command("rule")
@click.option("--min-supporting", type=Int(0), default=None)
@click.option("--min-participants", type=Int(0), default=None)
@click.option("--min-sources", type=Int(0), default=None)
@click.option("--min-sites", type=Int(0), default=None)
@click.option("--no-refutation-in-last", type=Int(0), default=None,
              help="No refuting excerpt among a CMOC's last K evidence sources (0: never refuted).")
@click.option("--order", type=click.Choice(["ingest", "date"]), default=None)
@analyst_option
@project_option
@format_option
def saturation_rule_cmd(analyst, project_path, fmt, output, **changes) -> None:
    """Show or change the project's saturation rule.

    \b
    Example:
      sp-realist saturation rule --min-supporting 4
    """
    import pandas as pd

    from .saturation import get_saturation_rule, set_saturation_rule

    project = get_project(project_path)
    changes = {k: v for k, v in changes.items() if v is not None}
    rule = set_saturation_rule(project, actor=resolve_coder(analyst), **changes) if changes else \
        get_saturation_rule(project)
    emit(pd.DataFrame(list(rule.items()), columns=["setting", "value"]), fmt, output, title="Saturation rule")


@saturation_group.command("curve")
@click.option("--order", type=click.Choice(["ingest", "date"]), default=None, help="Default: the rule's order.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Also draw it (.png, .svg or .pdf).")
@project_option
@format_option
def saturation_curve_cmd(order, plot, project_path, fmt, output) -> None:
    """New CMOCs and new evidence per source, in ingest or date order.

    \b
    Example:
      sp-realist saturation curve --format csv -o curve.csv --plot curve.png
    """
    from .saturation import plot_saturation_curve, saturation_curve

    project = get_project(project_path)
    emit(saturation_curve(project, order), fmt, output, title="Saturation curve")
    if plot:
        with checked_file(plot) as tmp:
            plot_saturation_curve(project, tmp, order)
        message(f"Wrote {plot}")


# ---------------------------------------------------------------------------
# suggest
# ---------------------------------------------------------------------------
@group("suggest", invoke_without_command=True)
@click.option("--min-support", type=Int(1), default=1, show_default=True,
              help="Only candidates seen in at least this many units.")
@click.option("--all", "include_decided", is_flag=True, help="Include accepted and rejected candidates.")
@click.option("--include-assigned", is_flag=True,
              help="Also use appraisals already tied to a CMOC at step 4.")
@project_option
@format_option
@click.pass_context
def suggest_group(ctx, min_support, include_decided, include_assigned, project_path, fmt, output) -> None:
    """Candidate CMOCs: context, mechanism and outcome found in one segment or diary entry.

    \b
    Signals come from step-3 interpretations of appraisals and from codes mapped to C/M/O
    (setting cmo_codes, names like "C: lack of induction", or codes under a "Context" parent).
    Nothing enters the theory until you accept a candidate.
    Example:
      sp-realist suggest --min-support 2
      sp-realist suggest accept c1a2b3c4d --key T5.1 --theory T5
      sp-realist suggest reject c9f8e7d6c --reason "coincidence of codes"
    """
    if ctx.invoked_subcommand is not None:
        return
    from .suggest import suggest_cmocs

    emit(suggest_cmocs(get_project(project_path), min_support, include_decided, include_assigned), fmt, output,
         title="Candidate CMOCs")


@suggest_group.command("accept")
@click.argument("candidate")
@click.option("--key", required=True, help="Key of the new CMOC, e.g. T5.1.")
@click.option("--theory", default=None, help="Also add it to this theory.")
@click.option("--reason", default=None, help="Recorded in the theory's history.")
@analyst_option
@project_option
def suggest_accept_cmd(candidate, key, theory, reason, analyst, project_path) -> None:
    """Accept a candidate: create a partial CMOC with its excerpts as supporting evidence.

    \b
    Example:
      sp-realist suggest accept c1a2b3c4d --key T5.1 --theory T5
    """
    from .suggest import accept_suggestion

    accept_suggestion(get_project(project_path), candidate, key, theory=theory, actor=resolve_coder(analyst),
                      reason=reason)
    message(f"Created CMOC {key} from candidate {candidate}" + (f" in theory {theory}" if theory else ""))


@suggest_group.command("reject")
@click.argument("candidate")
@click.option("--reason", default=None)
@analyst_option
@project_option
def suggest_reject_cmd(candidate, reason, analyst, project_path) -> None:
    """Reject a candidate so it is not suggested again.

    \b
    Example:
      sp-realist suggest reject c9f8e7d6c --reason "different participants"
    """
    from .suggest import reject_suggestion

    reject_suggestion(get_project(project_path), candidate, reason=reason, actor=resolve_coder(analyst))
    message(f"Rejected candidate {candidate}")


# ---------------------------------------------------------------------------
# graph
# ---------------------------------------------------------------------------
@group("graph")
def graph_group() -> None:
    """The programme-theory graph: export (GraphML, GEXF, JSON, DOT, Mermaid) or render (PNG, SVG).

    \b
    Example:
      sp-realist graph export theory.graphml
      sp-realist graph render theory.png --theory T1
    """


@graph_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "gfmt", type=click.Choice(["graphml", "gexf", "json", "dot", "mermaid"]), default=None,
              help="Default: from the file name (.graphml .gexf .json .dot .mmd).")
@click.option("--theory", default=None, help="Only this theory.")
@project_option
def graph_export_cmd(path, gfmt, theory, project_path) -> None:
    """Export the programme-theory graph.

    \b
    Example:
      sp-realist graph export theory.gexf        # open in Gephi
      sp-realist graph export theory.mmd         # paste into Markdown
    """
    from .graph import export_graph, programme_graph

    G = programme_graph(get_project(project_path), theory)
    with checked_file(path) as tmp:
        export_graph(G, tmp, gfmt or _graph_format(path))
    message(f"Wrote {path} ({G.number_of_nodes()} nodes, {G.number_of_edges()} edges)")


def _graph_format(path: str) -> str:
    """The format a graph file's name asks for (the output check writes to a temporary name first)."""
    from pathlib import Path

    from .graph import FORMATS

    fmt = FORMATS.get(Path(path).suffix.lower().lstrip("."))
    if fmt is None:
        raise SpRealistError(f"{path}: unknown graph format {Path(path).suffix!r}; use --format graphml, gexf, json, "
                             "dot or mermaid (or a file name ending .graphml, .gexf, .json, .dot, .mmd).")
    return fmt


def _check_graph(G, title: str | None) -> None:
    values = [title]
    for _n, data in G.nodes(data=True):
        values += [_n, *data.values()]
    for _a, _b, data in G.edges(data=True):
        values += list(data.values())
    check_values(values, "the figure's labels")


@graph_group.command("render")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--theory", default=None, help="Only this theory.")
@click.option("--title", default=None)
@click.option("--dpi", type=Int(50, 600), default=150, show_default=True)
@project_option
def graph_render_cmd(path, theory, title, dpi, project_path) -> None:
    """Draw the programme-theory graph to PNG, SVG or PDF (layered left to right, by node type).

    \b
    Example:
      sp-realist graph render programme-theory.svg --title "Programme theory, March 2020"
    """
    from .graph import programme_graph, render_graph

    G = programme_graph(get_project(project_path), theory)
    _check_graph(G, title)  # a PDF cannot be read back: check the labels that go into it
    with checked_file(path) as tmp:
        render_graph(G, tmp, title=title, dpi=dpi)
    message(f"Wrote {path}")


@graph_group.command("summary")
@click.option("--theory", default=None)
@project_option
@format_option
def graph_summary_cmd(theory, project_path, fmt, output) -> None:
    """Count the graph's nodes by type and edges by kind.

    \b
    Example:
      sp-realist graph summary --format json
    """
    from .graph import graph_summary, programme_graph

    emit(graph_summary(programme_graph(get_project(project_path), theory)), fmt, output, title="Graph")


# ---------------------------------------------------------------------------
# triangulate
# ---------------------------------------------------------------------------
def read_questions(path: str | None, pairs: tuple[str, ...]) -> dict:
    """Questions from a YAML file (a mapping, or a study.yaml with 'questions') and Q=TEXT options."""
    questions: dict = {}
    if path:
        from .theoryfile import read_yaml

        doc = read_yaml(path, "questions")
        if isinstance(doc, dict) and "questions" in doc:
            doc = doc["questions"]
        if not isinstance(doc, dict):
            raise SpRealistError(f"{path}: expected a mapping of questions, e.g. Q1: How effective ...?")
        questions.update(doc)
    for pair in pairs:
        k, _, v = pair.partition("=")
        if not k.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=TEXT.", param_hint="--question")
        questions[k.strip()] = v.strip()
    return questions


def _warn(df) -> None:
    for w in df.attrs.get("warnings", []) if hasattr(df, "attrs") else []:
        message(f"Warning: {w}")


@group("triangulate", invoke_without_command=True)
@click.option("--questions", "questions_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of questions (or a study.yaml with a 'questions' mapping).")
@click.option("--question", "question_pairs", multiple=True, metavar="KEY[=TEXT]",
              help="A question (repeatable); in the findings views, only these question keys.")
@click.option("--by", type=click.Choice(["kind", "dataset"]), default="kind", show_default=True,
              help="Group sources (matrix columns, findings tags) by kind or by their 'dataset' attribute.")
@click.option("--sources", "--strands", "source_columns", default=None,
              help="Column order, comma-separated: data sources (matrix) or evidence strands (findings).")
@click.option("--view", type=click.Choice(["auto", "findings", "lists", "matrix"]), default="auto",
              show_default=True,
              help="findings: the summary-of-findings tables (the default when the project has findings); "
                   "lists: what worked well / could be improved; matrix: themes and theories per data source.")
@click.option("--long", "long_form", is_flag=True,
              help="One row per question, source and item (matrix) or per finding with its links (findings).")
@project_option
@format_option(xlsx=True)
@click.pass_context
def triangulate_cmd(ctx, questions_file, question_pairs, by, source_columns, view, long_form, project_path, fmt,
                    output) -> None:
    """Evaluation questions triangulated across evidence: summary-of-findings tables or the matrix.

    \b
    Example:
      sp-realist triangulate import findings.yaml       # Tables 7.1-7.4: questions x strands, rows by topic
      sp-realist triangulate --question Q1 --format md  # one question's table, tags computed from the links
      sp-realist triangulate --view lists               # what worked well / what could be improved
      sp-realist triangulate --view matrix --by dataset --format md
      sp-realist triangulate export findings.yaml

    When the project has summary-of-findings tables (imported from a findings file, or by 'build' from the
    study's 'findings:' file) they are the default view (unless --questions FILE is given); '--view matrix'
    lists, per question and data
    source, the themes and theories that address it.  Without --questions or --question the matrix uses
    the project's setting 'questions' (a built study stores its study.yaml questions there).
    """
    if ctx.invoked_subcommand is not None:
        return
    from .findings import findings_lists, findings_long, findings_table, has_findings
    from .triangulate import triangulation, triangulation_long

    project = get_project(project_path)
    cols = [c.strip() for c in source_columns.split(",") if c.strip()] if source_columns else None
    if view == "auto":  # a questions file (with the themes/theories addressing each question) asks for the matrix
        view = "findings" if has_findings(project) and not questions_file else "matrix"
    if view in ("findings", "lists"):
        keys = list(read_questions(questions_file, question_pairs)) or None
        if view == "lists":
            df = findings_lists(project, question=keys, by=by)
        elif long_form:
            df = findings_long(project, question=keys, strands=cols, by=by)
        else:
            df = findings_table(project, question=keys, strands=cols, by=by)
        _warn(df)
        emit(df, fmt, output, title="Summary of findings" if view == "findings" else "What worked well / "
                                                                                     "what could be improved")
        return
    # Without --questions/--question: the project's evaluation questions (set by `build` from study.yaml).
    questions = read_questions(questions_file, question_pairs) or project.get_setting("questions") or None
    if long_form:
        df = triangulation_long(project, questions, by)
    else:
        df = triangulation(project, questions, by, cols)
    _warn(df)
    emit(df, fmt, output, title="Triangulation")


@triangulate_cmd.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@analyst_option
@project_option
def triangulate_import_cmd(path, analyst, project_path) -> None:
    """Import summary-of-findings tables from a findings file (all or nothing).

    Strands and evidence items are merged; each question in the file replaces the project's question with
    the same key. Unknown strands and links to missing themes, theories, CMOCs, codes or evidence items are
    refused with the names that exist.

    \b
    Example:
      sp-realist triangulate import findings.yaml
    """
    from .findings import import_findings_yaml

    _import_file(import_findings_yaml, path, analyst, project_path)


@triangulate_cmd.command("export")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@project_option
def triangulate_export_cmd(path, project_path) -> None:
    """Write the project's summary-of-findings tables as a findings file (stdout without PATH).

    \b
    Example:
      sp-realist triangulate export findings.yaml
    """
    from .findings import export_findings_yaml

    _export_file(export_findings_yaml, path, project_path)


@triangulate_cmd.command("evidence")
@project_option
@format_option
def triangulate_evidence_cmd(project_path, fmt, output) -> None:
    """List the non-transcript evidence items (literature, project documents) findings can link.

    \b
    Example:
      sp-realist triangulate evidence --format md
    """
    from .findings import evidence_items_frame

    emit(evidence_items_frame(get_project(project_path)), fmt, output, title="Evidence items")


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""
    main.add_command(cmoc_group)
    main.add_command(theory_group)
    main.add_command(ifthen_cmd)
    main.add_command(appraise_group)
    main.add_command(analysis_group)
    main.add_command(saturation_group)
    main.add_command(suggest_group)
    main.add_command(graph_group)
    main.add_command(triangulate_cmd)

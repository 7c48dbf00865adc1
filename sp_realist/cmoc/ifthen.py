"""If/then statements and the report's three-column CMOC table.

Statements are rendered with Jinja2.  The default template
(``sp_realist/templates/ifthen.j2``) follows the report's style::

    If there is <context> then <mechanism>, resulting in <outcome>.

with grammatical joins: the first letter of each inserted clause is lower-cased
unless it starts with a proper noun or an acronym (GP, NHS, Mind ...),
trailing full stops are stripped, and a cell holding several items (one per
line, or a YAML list) is joined with commas and "and".

A project may override the template.  Templates are looked up, first match
wins, in:

1. the folder named by the project setting ``templates_dir`` (relative to the
   project file's folder unless absolute);
2. ``templates/`` beside the project file;
3. the templates shipped with sp_realist.

The template's file name is ``ifthen.j2`` unless the project setting
``ifthen_template`` names another one (or ``template=`` is passed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import SpRealistError
from ..store import Project
from ._common import text_items

DEFAULT_TEMPLATE = "ifthen.j2"

#: Words kept capitalised at the start of a clause (besides acronyms and words
#: with inner capitals such as "GPs" or "McKenzie").  Extend per project with
#: the setting ``proper_nouns`` (a list).
PROPER_NOUNS = frozenset("""
I Mind Cymru Wales Welsh England English Scotland Scottish Britain British UK NHS GP GPs Covid COVID-19
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July
August September October November December Citizens Samaritans
""".split())

TABLE_COLUMNS = ["Context (Resource)", "Mechanism (Behaviour)", "Outcome"]


def _first_word(text: str) -> str:
    m = re.match(r"[\"'‘“(\[]*([\w\-’']+)", text)
    return m.group(1) if m else ""


def is_proper(word: str, proper_nouns: Iterable[str] = PROPER_NOUNS) -> bool:
    """True for acronyms (GP, NHS), words with inner capitals (GPs) and known proper nouns."""
    if not word:
        return False
    if word in proper_nouns or (len(word) > 2 and word.endswith("s") and word[:-1] in proper_nouns):
        return True
    return any(ch.isupper() for ch in word[1:])


def lower_first(text: str, proper_nouns: Iterable[str] = PROPER_NOUNS) -> str:
    """Lower-case the first letter unless the clause starts with a proper noun or acronym."""
    text = text.strip()
    word = _first_word(text)
    if not word or is_proper(word, proper_nouns):
        return text
    i = text.index(word[0])
    return text[:i] + text[i].lower() + text[i + 1:]


def strip_stop(text: str) -> str:
    """Remove trailing full stops (and stray spaces, commas, semicolons); keep an ellipsis' meaning out."""
    text = text.strip()
    while text and text[-1] in ".;,: " and not text.endswith("..."):
        text = text[:-1].rstrip()
    if text.endswith("..."):
        text = text[:-3].rstrip()
    return text


def join_and(items: Iterable[str]) -> str:
    """["a"] -> "a"; ["a", "b"] -> "a and b"; ["a", "b", "c"] -> "a, b and c"."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def clause(value: Any, proper_nouns: Iterable[str] = PROPER_NOUNS) -> str:
    """A CMOC cell as a clause to insert into a sentence."""
    if value is None:
        return ""
    items = value if isinstance(value, (list, tuple)) else text_items(str(value))
    return join_and(lower_first(strip_stop(str(i)), proper_nouns) for i in items if strip_stop(str(i)))


def template_dirs(project: Project) -> list[Path]:
    """Folders searched for templates before the packaged ones (see module docstring)."""
    dirs: list[Path] = []
    base = None if "://" in project.location else Path(project.location).resolve().parent
    setting = project.get_setting("templates_dir")
    if setting:
        p = Path(setting).expanduser()
        if not p.is_absolute():
            if base is None:
                raise SpRealistError(
                    f"setting templates_dir {setting!r}: a relative folder needs a project file; give an absolute path.")
            p = base / p
        if not p.is_dir():
            raise SpRealistError(
                f"setting templates_dir: the folder {p} does not exist; create it or change the setting.")
        dirs.append(p)
    if base is not None and (base / "templates").is_dir():
        dirs.append(base / "templates")
    return dirs


def environment(project: Project | None = None, proper_nouns: Iterable[str] | None = None):
    """The sandboxed Jinja2 environment (:func:`sp_realist.templating.sandboxed_environment`) with the
    project's template folders and the grammar filters."""
    from ..templating import sandboxed_environment

    dirs = template_dirs(project) if project is not None else []
    nouns = frozenset(PROPER_NOUNS | set(proper_nouns or ()))
    return sandboxed_environment(dirs, autoescape=False, keep_trailing_newline=False, filters={
        "clause": lambda v: clause(v, nouns), "lower_first": lambda v: lower_first(str(v), nouns),
        "strip_stop": lambda v: strip_stop(str(v)), "join_and": join_and})


def _proper_nouns(project: Project | None) -> list[str]:
    if project is None:
        return []
    value = project.get_setting("proper_nouns", [])
    return [str(v) for v in value] if isinstance(value, list) else []


def render_statement(row: dict, template=None, env=None) -> str:
    """Render one CMOC (a mapping of its fields) with a Jinja2 template object or the default."""
    import jinja2

    from ..templating import render

    if template is None:
        env = env or environment()
        template = env.get_template(DEFAULT_TEMPLATE)
    try:
        text = render(template, row)
    except jinja2.TemplateError as exc:
        raise SpRealistError(f"if/then template {template.name}: {exc}; fix the template.") from None
    text = " ".join(text.split())
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    return text[:1].upper() + text[1:] if text else text


def _load_template(project: Project, template: str | None):
    import jinja2

    env = environment(project, _proper_nouns(project))
    if template and Path(template).is_file():
        from ..templating import template_from_file

        return template_from_file(env, template), env
    name = template or project.get_setting("ifthen_template") or DEFAULT_TEMPLATE
    try:
        return env.get_template(name), env
    except jinja2.TemplateNotFound:
        raise SpRealistError(f"if/then template {name!r} not found in the project's template folders; "
                             "check the name or the templates_dir setting.") from None
    except jinja2.TemplateSyntaxError as exc:
        raise SpRealistError(f"{exc.filename or name}: template error at line {exc.lineno} ({exc.message}); fix it.") from None


def _rows(project: Project, theory: str | None) -> list[dict]:
    from .cmocs import _memberships, cmoc_rows

    with project.connect() as conn:
        rows = cmoc_rows(conn, theory)
        members = _memberships(conn)
    out = []
    for r in rows:
        theories = members.get(r["id"], [])
        out.append({**r, "theory": theory or (theories[0] if theories else None), "theories": theories})
    return out


def ifthen_statements(project: Project, theory: str | None = None, template: str | None = None) -> pd.DataFrame:
    """One if/then statement per CMOC (of ``theory`` if given): columns theory, cmoc, statement."""
    tmpl, env = _load_template(project, template)
    data = []
    for r in _rows(project, theory):
        fields = {k: r[k] for k in ("key", "theory", "context", "mechanism_resource", "mechanism_response",
                                    "outcome", "status", "confidence")}
        data.append({"theory": r["theory"], "cmoc": r["key"], "statement": render_statement(fields, tmpl, env)})
    return pd.DataFrame(data, columns=["theory", "cmoc", "statement"])


def _cell(*values: str | None) -> str:
    items: list[str] = []
    for v in values:
        items += text_items(v)
    return "\n".join(items)


def cmoc_table(project: Project, theory: str | None = None) -> pd.DataFrame:
    """The report's three-column CMOC table (Tables 6.1-6.4).

    Columns are exactly "Context (Resource)", "Mechanism (Behaviour)" and
    "Outcome"; the index holds the CMOC keys (named ``cmoc``) and
    ``df.attrs["theories"]`` maps each key to its first theory.  A mechanism
    resource, when recorded, is shown under the context as in the report; a
    cell with several items keeps one item per line.
    """
    rows = _rows(project, theory)
    df = pd.DataFrame([[_cell(r["context"], r["mechanism_resource"]), _cell(r["mechanism_response"]),
                        _cell(r["outcome"])] for r in rows], columns=TABLE_COLUMNS,
                      index=pd.Index([r["key"] for r in rows], name="cmoc", dtype=object))
    df.attrs["theories"] = {r["key"]: r["theory"] for r in rows}
    return df

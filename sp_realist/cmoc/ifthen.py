"""If/then statements and the report's three-column CMOC table.

A CMOC's statement is, first match wins:

1. its own wording (the ``ifthen`` field: ``cmoc edit --ifthen``, ``ifthen:``
   in a theory file), finished as a sentence;
2. the project's template;
3. the default template (``sp_realist/templates/ifthen.j2``), in the report's
   style, worded by the form of each part (:func:`part_form`)::

       If there is <noun phrase> / If <clause>
       then this leads to <noun phrase> / then <clause>
       , resulting in <noun phrase> / , so <clause>

Grammar: the first letter of each inserted part is lower-cased unless it
starts with a proper noun, an acronym or a code (GP, NHS, Mind, S1 ...),
trailing full stops are stripped, a cell holding several items (one per line,
or a YAML list) is joined "a, b and c", and every statement ends with exactly
one full stop (:func:`finish_sentence`).

Templates are looked up, first match wins, in:

1. the templates stored in the project (:mod:`sp_realist.project_templates`:
   a study's ``templates/`` put there by ``build``, or ``sp-realist templates
   add``), so the project renders the same wherever it is opened;
2. ``templates/`` beside the project file;
3. the templates shipped with sp_realist.

The template's file name is ``ifthen.j2`` unless the project setting
``ifthen_template`` names another one (or ``template=`` is passed).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
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

# --- clause or noun phrase -------------------------------------------------
#
# spaCy's blank English pipeline (the only one sp_realist may assume) has no
# tagger or parser, so it cannot tell "GP practice does not explain the
# service" (a clause) from "lack of information about the service" (a noun
# phrase).  The rules below are small, deterministic and documented in
# docs/realist.md; tests/test_cmoc_ifthen.py checks them on a table of inputs.

#: Auxiliaries and modals: finite verbs wherever they stand after a subject.
AUXILIARIES = frozenset("""
is are was were am has have had does do did can could will would shall should may might must
isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't can't cannot couldn't won't wouldn't
shouldn't mustn't
""".split())
#: Subject pronouns: a part starting with one is a clause ("they feel alone").
SUBJECT_PRONOUNS = frozenset("i you he she it we they".split())
#: Lexical verbs recognised in their base, -s and -ed forms after a subject (forms built by
#: :func:`_verb_forms`; irregular past forms listed in IRREGULAR_PAST).
LEXICAL_VERBS = frozenset("""
accept agree allow answer apologise appear argue arrange arrive ask assess attend avoid become begin believe
book bring build call cancel cause change check choose close come complete consult contact cope create cry
decide describe disagree discharge discuss drink drive drop eat email employ enable encourage engage enjoy
expect experience explain express fail fear feel find finish forget fund gain get give go grow hear help
hire hold hope improve include increase involve keep know lack laugh lead learn leave listen lose make
manage meet mention miss move need notice offer open organise pay perceive phone plan post prefer present
prevent promote provide reach read realise realize receive recognise recognize reduce refer refuse rely
remain remember reply report require respond return reveal review ring run say see seem send share shout
sign signpost sleep smile speak spend start stay stop struggle suggest take talk teach tell text think train
travel trigger trust try understand use value visit wait walk want welcome wish wonder work worry write
""".split())
IRREGULAR_PAST = {"felt": "feel", "found": "find", "gave": "give", "got": "get", "went": "go", "grew": "grow",
                  "heard": "hear", "held": "hold", "kept": "keep", "knew": "know", "led": "lead", "left": "leave",
                  "lost": "lose", "made": "make", "met": "meet", "said": "say", "saw": "see", "spoke": "speak",
                  "took": "take", "told": "tell", "thought": "think", "understood": "understand",
                  "became": "become", "began": "begin", "brought": "bring", "built": "build", "came": "come",
                  "chose": "choose"}
#: Past forms that are never past participles: finite wherever they follow a subject ("the client felt heard").
PAST_ONLY = frozenset("felt gave went grew knew saw spoke took became began came chose".split())
#: -s forms that are just as often plural nouns ("training needs", "changes"): a verb only when a
#: function word follows ("the client needs to ...", "needs more").
AMBIGUOUS_S = frozenset("""
needs changes works experiences presents reports plans visits calls results waits answers
concerns values uses trusts lacks starts stops talks offers meets returns shares increases gains
books checks reviews signs drops posts texts rings runs fears hopes wishes drinks walks drives trains funds
contacts moves emails phones smiles laughs shouts cries reads opens pays
""".split())
#: Words after which a verb-looking word is a noun or an infinitive, not a finite verb.
DETERMINERS = frozenset("""
a an the this that these those my your his her its our their no any some each every either neither
another such what which whose one two three several many few more most much less own
""".split())
PREPOSITIONS = frozenset("""
of in on at by for with about from into onto over under after before during without within through
to toward towards between among across against around like than via per upon
""".split())
#: Words opening a relative or subordinate clause: verbs after them do not make the part a clause.
SUBORDINATORS = frozenset("""
who whom whose which that where when while whilst whether if unless until because since although though
so once as whereby what
""".split())
#: Words that may follow a finite verb: determiners, pronouns, prepositions, adverbs, complementisers.
AFTER_VERB = DETERMINERS | PREPOSITIONS | SUBJECT_PRONOUNS | frozenset("""
me him us them not never always often sometimes also still already really quite very too so more less fewer
increasingly better worse well badly again that how why whether if when up down out back away
""".split())
#: Nouns ending in -ing (so a part starting with one is not a gerund phrase).
ING_NOUNS = frozenset("""
training meeting funding housing building feeling feelings wellbeing well-being evening morning
nothing something anything everything setting understanding clothing spring ring thing things king
""".split())
#: Nouns ending in -s that are singular, and irregular plurals, for "there is" / "there are".
SINGULAR_S = frozenset("news means series species diabetes physics politics mathematics lens bus gas "
                       "process focus status crisis analysis basis virus census".split())
IRREGULAR_PLURALS = frozenset("people children men women police data staff".split())
PLURAL_OPENERS = frozenset("many several few both these those various numerous multiple two three four five "
                           "six seven eight nine ten".split())
SINGULAR_OPENERS = frozenset("a an one each every this that much little another".split())

_WORD = re.compile(r"[A-Za-z][\w'’\-]*|[,;:()]")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _verb_base(word: str) -> tuple[str | None, str]:
    """The lexical verb behind ``word`` and its form ("base", "s", "ed"), or (None, "")."""
    if word in LEXICAL_VERBS:
        return word, "base"
    if word in IRREGULAR_PAST:
        return IRREGULAR_PAST[word], "ed"
    for suffix, repl, form in (("ies", "y", "s"), ("es", "", "s"), ("s", "", "s"), ("ied", "y", "ed"),
                               ("ed", "", "ed"), ("d", "", "ed")):
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)] + repl
            if stem in LEXICAL_VERBS:
                return stem, form
            if form == "ed" and len(stem) > 3 and stem[-1] == stem[-2] and stem[:-1] in LEXICAL_VERBS:
                return stem[:-1], form  # referred -> refer
    return None, ""


def _is_finite(words: list[str], i: int) -> bool:
    """Whether ``words[i]`` is a finite verb of the main clause (the words before it being its subject)."""
    w = words[i]
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if prev in DETERMINERS or prev in PREPOSITIONS or prev == "to" or prev.endswith("'s"):
        return False
    if w in AUXILIARIES or w in PAST_ONLY:
        return True
    base, form = _verb_base(w)
    if base is None:
        return False
    follows = nxt in AFTER_VERB or nxt.endswith("ly")
    if form == "s":
        # "the client needs to ...", but "repeated calls", "training needs analysis", "home visits by ..."
        return (follows and nxt not in ("of", "by")) if w in AMBIGUOUS_S else True
    if form == "base":
        # after a plural subject: "link workers perceive that ...", "GPs report delays", "people wait"
        return (prev.endswith("s") and not prev.endswith(("ss", "'s")) and len(prev) > 2) or \
            prev in SUBJECT_PRONOUNS or prev in IRREGULAR_PLURALS
    # -ed: a past tense when an object or a complement follows ("the GP referred her"); "a client
    # referred by the GP" and "a diary kept regularly" are noun phrases.
    return nxt != "by" and (nxt in DETERMINERS or nxt in SUBJECT_PRONOUNS or nxt in ("me", "him", "us", "them"))


def part_form(text: str) -> str:
    """How a CMOC part is written: ``"clause"``, ``"noun"`` (noun phrase), ``"gerund"`` (a noun phrase
    led by an -ing verb) or ``"predicate"`` (a verb phrase without a subject, "Creates confusion").

    The rules, in order: a part opening with a subject pronoun or "there is/are" is a clause; one opening
    with an auxiliary, a modal or an unambiguous lexical verb's -s form is a predicate.  Otherwise it is a
    clause if, before any relative or subordinate clause ("who", "that", "before", "when", ...), colon or
    semicolon, a finite verb follows its first word (and not a determiner, a preposition, "to" or a
    possessive): an auxiliary or modal ("does not", "are", "can"); a past form that is never a participle
    ("felt", "took"); a known lexical verb's -s form ("feels"; for forms that are also plural nouns, such
    as "needs", only when a function word other than "of" or "by", or an -ly adverb, follows); its base
    form after a plural subject ("link workers perceive that", "GPs refer"); or its -ed form before an
    object ("the GP referred her"; "a client referred by the GP" stays a noun phrase).  A part opening with an -ing word
    that is not a noun ("training") and has no such verb is a gerund phrase.  Everything else is a noun
    phrase.
    """
    words = _words(text)
    if not words:
        return "noun"
    first = words[0]
    if first in SUBJECT_PRONOUNS or (first == "there" and len(words) > 1 and words[1] in AUXILIARIES):
        return "clause"
    base, form = _verb_base(first)
    if first in AUXILIARIES or (form == "s" and first not in AMBIGUOUS_S):
        return "predicate"
    for i in range(1, len(words)):
        w = words[i]
        if w in SUBORDINATORS or w in (";", ":", "("):
            break
        if _is_finite(words, i):
            return "clause"
    if first.endswith("ing") and first not in ING_NOUNS and len(first) > 4:
        return "gerund"
    return "noun"


def is_plural(text: str) -> bool:
    """Whether a noun phrase takes "are" ("complex problems", "people who ...") rather than "is"."""
    words = [w for w in _words(text) if w not in ("(", ")")]
    while len(words) > 1 and words[0] in ("too", "so", "very", "far", "not", "only", "just"):
        words = words[1:]  # "too many clients"
    if not words:
        return False
    if words[0] in PLURAL_OPENERS:
        return True
    if words[0] in SINGULAR_OPENERS:
        return False
    head = words[0]
    for w in words:
        if w in PREPOSITIONS or w in SUBORDINATORS or w in (",", ";", ":", "and", "or", "but"):
            break
        head = w
    if head in IRREGULAR_PLURALS:
        return True
    if head in SINGULAR_S or head.endswith(("ss", "us", "is", "'s")):
        return False
    return head.endswith("s") and len(head) > 2


def _first_word(text: str) -> str:
    m = re.match(r"[\"'‘“(\[]*([\w\-’']+)", text)
    return m.group(1) if m else ""


def is_proper(word: str, proper_nouns: Iterable[str] = PROPER_NOUNS) -> bool:
    """True for acronyms (GP, NHS), words with inner capitals (GPs), codes (S1, DK2) and known proper nouns."""
    if not word:
        return False
    if word[0].isupper() and any(ch.isdigit() for ch in word):
        return True
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


def cell_items(value: Any, proper_nouns: Iterable[str] = PROPER_NOUNS) -> list[str]:
    """The items of a CMOC cell (one per line, or a list), each without its full stop and lower-cased
    unless it opens with a proper noun or acronym."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else text_items(str(value))
    return [lower_first(strip_stop(str(i)), proper_nouns) for i in items if strip_stop(str(i))]


def clause(value: Any, proper_nouns: Iterable[str] = PROPER_NOUNS) -> str:
    """A CMOC cell as text to insert into a sentence: its items joined "a, b and c"."""
    return join_and(cell_items(value, proper_nouns))


def cell_form(value: Any) -> str:
    """The :func:`part_form` of a cell: its items' common form.  Noun and gerund phrases mix as noun
    phrases (the first item's form); any other mix counts as a clause (:func:`as_clause` then turns each
    item into one)."""
    forms = [part_form(i) for i in cell_items(value)]
    if not forms:
        return "noun"
    if set(forms) <= {"noun", "gerund"}:
        return forms[0]
    return forms[0] if len(set(forms)) == 1 else "clause"


def _item_as_clause(item: str) -> str:
    form = part_form(item)
    if form == "clause":
        return item
    if form == "predicate":
        return f"this {item}"
    if form == "gerund":
        return f"it involves {item}"
    return f"there {'are' if is_plural(item) else 'is'} {item}"


def as_clause(value: Any, proper_nouns: Iterable[str] = PROPER_NOUNS) -> str:
    """A cell as a clause: a noun phrase becomes "there is/are X" (agreeing with the first item),
    a gerund phrase "it involves X", a predicate "this X"; a clause stays as it is."""
    items = cell_items(value, proper_nouns)
    if not items:
        return ""
    form = cell_form(value)
    if form == "clause":
        return join_and(_item_as_clause(i) for i in items)
    if form == "noun":
        return f"there {'are' if is_plural(items[0]) else 'is'} {join_and(items)}"
    return f"it involves {join_and(items)}" if form == "gerund" else f"this {join_and(items)}"


def finish_sentence(text: str) -> str:
    """Collapse white space, drop spaces before punctuation and doubled stops, capitalise the first
    letter and end with exactly one full stop (or the question/exclamation mark already there)."""
    text = " ".join(str(text).split())
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)  # ".." (not an ellipsis) -> "."
    text = re.sub(r"\s+([,;:!?]|\.(?!\.))", r"\1", text)  # no space before punctuation (but " ...")
    text = re.sub(r"([,;:])\1+", r"\1", text)
    text = re.sub(r"[,;:]\.", ".", text)
    text = text.rstrip(" ,;:")
    if text and text[-1] not in ".!?":
        text += "."
    elif text.endswith("...") or text.endswith(".."):
        text = text.rstrip(".") + "."
    return text[:1].upper() + text[1:] if text else text


def template_dirs(project: Project) -> list:
    """Where templates are looked up before the packaged ones (see module docstring)."""
    from ..project_templates import template_search

    return template_search(project)


def environment(project: Project | None = None, proper_nouns: Iterable[str] | None = None):
    """The sandboxed Jinja2 environment (:func:`sp_realist.templating.sandboxed_environment`) with the
    project's template folders and the grammar filters."""
    from ..templating import sandboxed_environment

    dirs = template_dirs(project) if project is not None else []
    nouns = frozenset(PROPER_NOUNS | set(proper_nouns or ()))
    return sandboxed_environment(dirs, autoescape=False, keep_trailing_newline=False, filters={
        "clause": lambda v: clause(v, nouns), "as_clause": lambda v: as_clause(v, nouns), "form": cell_form,
        "lower_first": lambda v: lower_first(str(v), nouns), "strip_stop": lambda v: strip_stop(str(v)),
        "join_and": join_and})


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
    return finish_sentence(text)


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
                             "check the name, or store the template with 'sp-realist templates add FILE'.") from None
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


@dataclass(frozen=True)
class IfThenStatement:
    """One CMOC's if/then statement; ``wording`` is ``cmoc`` (its own) or ``template``."""

    theory: str | None
    cmoc: str
    statement: str
    wording: str


def ifthen_records(project: Project, theory: str | None = None, template: str | None = None) \
        -> list[IfThenStatement]:
    """One if/then statement per CMOC (of ``theory`` if given), in CMOC order.

    A CMOC's own wording (its ``ifthen`` field) wins: it is shown as written, only finished as a sentence
    (:func:`finish_sentence`), and ``wording`` says ``cmoc``; otherwise the template renders the statement
    (``wording`` is ``template``)."""
    tmpl, env = _load_template(project, template)
    data = []
    for r in _rows(project, theory):
        if r.get("ifthen"):
            statement, wording = finish_sentence(r["ifthen"]), "cmoc"
        else:
            fields = {k: r[k] for k in ("key", "theory", "context", "mechanism_resource", "mechanism_response",
                                        "outcome", "status", "confidence")}
            statement, wording = render_statement(fields, tmpl, env), "template"
        data.append(IfThenStatement(theory=r["theory"], cmoc=r["key"], statement=statement, wording=wording))
    return data


def ifthen_statements(project: Project, theory: str | None = None, template: str | None = None) -> pd.DataFrame:
    """:func:`ifthen_records` as a DataFrame: columns theory, cmoc, statement, wording."""
    return pd.DataFrame([asdict(r) for r in ifthen_records(project, theory, template)],
                        columns=["theory", "cmoc", "statement", "wording"])


def _cell(*values: str | None) -> str:
    items: list[str] = []
    for v in values:
        items += text_items(v)
    return "\n".join(items)


@dataclass(frozen=True)
class CmocCells:
    """One CMOC as the report's table shows it: context (with the mechanism resource under it), mechanism
    (behaviour) and outcome, each with one item per line."""

    cmoc: str
    theory: str | None
    context: str
    mechanism: str
    outcome: str


def cmoc_cells(project: Project, theory: str | None = None) -> list[CmocCells]:
    """The cells of :func:`cmoc_table`, one record per CMOC (of ``theory`` if given), in CMOC order."""
    return [CmocCells(cmoc=r["key"], theory=r["theory"], context=_cell(r["context"], r["mechanism_resource"]),
                      mechanism=_cell(r["mechanism_response"]), outcome=_cell(r["outcome"]))
            for r in _rows(project, theory)]


def cmoc_table(project: Project, theory: str | None = None) -> pd.DataFrame:
    """The report's three-column CMOC table (Tables 6.1-6.4).

    Columns are exactly "Context (Resource)", "Mechanism (Behaviour)" and
    "Outcome"; the index holds the CMOC keys (named ``cmoc``) and
    ``df.attrs["theories"]`` maps each key to its first theory.  A mechanism
    resource, when recorded, is shown under the context as in the report; a
    cell with several items keeps one item per line.
    """
    rows = cmoc_cells(project, theory)
    df = pd.DataFrame([[r.context, r.mechanism, r.outcome] for r in rows], columns=TABLE_COLUMNS,
                      index=pd.Index([r.cmoc for r in rows], name="cmoc", dtype=object))
    df.attrs["theories"] = {r.cmoc: r.theory for r in rows}
    return df

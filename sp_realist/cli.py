"""The ``sp-realist`` command line.

Each command is a thin click wrapper over a library function.  The command
groups of each area live beside their library code (``sp_realist/<area>/
commands.py``) and are registered here.
"""

from __future__ import annotations

import importlib

import click

from . import __version__
from .cli_support import SpRealistGroup, group, message

# Modules that define ``register(main)``; each adds its commands to the group.
COMMAND_MODULES = (
    "sp_realist.commands",           # init, info
    "sp_realist.ingest.commands",    # ingest, sources, participants, attributes, summary
    "sp_realist.privacy.commands",   # anonymise, audit
    "sp_realist.coding.commands",    # codebook, code, autocode, memo, retrieve, matrices, themes, agreement
    "sp_realist.cmoc.commands",      # appraise, cmoc, theory, ifthen, saturation, suggest, graph, triangulate
    "sp_realist.exchange.commands",  # export / import (REFI-QDA)
    "sp_realist.report.commands",    # report, build
    "sp_realist.team.commands",      # config, adjudicate, merge, conflicts, log, team
    "sp_realist.browse.commands",    # browse (Textual is imported only when it runs)
)


#: Every top-level command: name -> (the module whose ``register`` adds it, its help's first sentence).
#: ``sp-realist --help`` lists the commands from here, and running one imports only its own module, so
#: neither imports the other areas.  tests/test_startup.py checks that this equals the real commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("sp_realist.commands",
             "Create a new, empty project: a file, or a database URL (an empty PostgreSQL database)."),
    "info": ("sp_realist.commands", "Show the project's location, schema version and object counts."),
    "ingest": ("sp_realist.ingest.commands",
               "Ingest transcripts (.txt .md .docx .vtt .srt) and reflective diaries."),
    "sources": ("sp_realist.ingest.commands", "List sources and show one with its segments."),
    "participants": ("sp_realist.ingest.commands", "List, add and edit participants (codes such as 'S1 DK1')."),
    "attributes": ("sp_realist.ingest.commands", "List attributes of sources and participants, and set them."),
    "summary": ("sp_realist.ingest.commands",
                "Summarise the corpus: sources by kind and site, diary entries and pages per site (like Table "
                "3.7 of the Mind Cymru report), participants by role."),
    "anonymise": ("sp_realist.privacy.commands", "Replace real names in sources with codes from a pseudonym key."),
    "audit": ("sp_realist.privacy.commands", "Scan outputs for real names from the key; exit 3 if any is found."),
    "codebook": ("sp_realist.coding.commands", "Manage the hierarchical codebook."),
    "code": ("sp_realist.coding.commands", "Code spans of sources, list and remove codings."),
    "autocode": ("sp_realist.coding.commands",
                 "Apply the codebook's autocoding rules (keywords, phrases, spaCy patterns)."),
    "memo": ("sp_realist.coding.commands",
             "Write, list and export memos on the project, codes, sources, codings and themes."),
    "retrieve": ("sp_realist.coding.commands",
                 'Show the coded excerpts for one or more codes, attributed like "(S1 DK1)".'),
    "frequencies": ("sp_realist.coding.commands",
                    "Code frequencies: codings, sources and participants per code, or by an attribute."),
    "cooccurrence": ("sp_realist.coding.commands", "Code co-occurrence matrix (overlapping spans or same segment)."),
    "framework": ("sp_realist.coding.commands",
                  "Framework Method matrix: participants (or sites) x codes, with counts or excerpts."),
    "theme": ("sp_realist.coding.commands", "Themes and sub-themes that group codes (Braun & Clarke)."),
    "agreement": ("sp_realist.coding.commands",
                  "Inter-coder agreement: percent, Cohen's kappa (2 coders), Krippendorff's alpha."),
    "cmoc": ("sp_realist.cmoc.commands",
             "Context-mechanism-outcome configurations: add, edit, list, show, link evidence, relate, table."),
    "theory": ("sp_realist.cmoc.commands",
               "Mid-range theories: add, edit, membership, history, import and export of theory files."),
    "ifthen": ("sp_realist.cmoc.commands",
               "If/then statements rendered from the CMOCs (Jinja2 template, overridable per project)."),
    "appraise": ("sp_realist.cmoc.commands",
                 "Wong & Papoutsi's six-step appraisal of excerpts (per analyst, with history)."),
    "analysis": ("sp_realist.cmoc.commands", "Analysis files (YAML): appraisals and CMOC evidence kept in git."),
    "saturation": ("sp_realist.cmoc.commands",
                   "Evidence counts and saturation per CMOC and theory; 'rule' and 'curve' subcommands."),
    "suggest": ("sp_realist.cmoc.commands",
                "Candidate CMOCs: context, mechanism and outcome found in one segment or diary entry."),
    "graph": ("sp_realist.cmoc.commands",
              "The programme-theory graph: export (GraphML, GEXF, JSON, DOT, Mermaid) or render (PNG, SVG)."),
    "triangulate": ("sp_realist.cmoc.commands",
                    "Evaluation questions triangulated across evidence: summary-of-findings tables or the matrix."),
    "export": ("sp_realist.exchange.commands", "Export the project for other qualitative analysis tools (REFI-QDA)."),
    "import": ("sp_realist.exchange.commands", "Import projects and codebooks from other qualitative analysis tools."),
    "report": ("sp_realist.report.commands", "Write the project's report as Word, HTML or Markdown."),
    "build": ("sp_realist.report.commands",
              "Build a reproducible study from its study.yaml: project, reports, figure, tables."),
    "rameses": ("sp_realist.report.commands", "The RAMESES II reporting checklist (Wong et al."),
    "narrative": ("sp_realist.report.commands",
                  "The author's narrative sections of the report (summary, ethics, limitations ...)."),
    "config": ("sp_realist.team.commands",
               "Show or change your per-user settings (kept in your config folder, not in a project)."),
    "log": ("sp_realist.team.commands", "The audit log: who changed what, when."),
    "adjudicate": ("sp_realist.team.commands",
                   "List the units two coders disagree on and record consensus decisions."),
    "merge": ("sp_realist.team.commands",
              "Bring another copy's codings, memos, appraisals, excerpts, codes, themes, CMOCs and theories in."),
    "conflicts": ("sp_realist.team.commands", "List and settle what merges kept apart."),
    "team": ("sp_realist.team.commands", "Roles and blind coding on a PostgreSQL project: add, list, remove, blind."),
    "search": ("sp_realist.coding.commands",
               "Find a regular expression (or, with --word, a word) in every source: keyword-in-context lines."),
    "words": ("sp_realist.coding.commands",
              "Word frequencies of the sources, without stop words (spaCy's English list), numbers or "
              "punctuation."),
    "browse": ("sp_realist.browse.commands",
               "Read sources and code them from the keyboard: select a sentence, segment or section, code it (a "
               "fuzzy finder creates new codes), write memos, appraise excerpts, link them to CMOCs, search, "
               "undo and redo."),
    "templates": ("sp_realist.report.commands", "The report and if/then templates stored in the project."),
}


class MainGroup(SpRealistGroup):
    """The top-level group.  An area's commands are registered when one of them is needed: running a command
    imports only the module that defines it, ``--help`` lists the commands from :data:`COMMANDS`, and anyone
    reading ``commands`` (completion, tests) gets them all.  So ``sp-realist --version`` and ``--help`` import
    no area, and ``sp-realist info`` none but its own."""

    _modules: frozenset = frozenset()  # the modules registered so far
    _registering = False

    def _register(self, *modules: str) -> None:
        for module in modules:
            if module in self._modules:
                continue
            self._modules = self._modules | {module}
            self._registering = True  # register() adds its commands through the property below
            try:
                importlib.import_module(module).register(self)
            finally:
                self._registering = False

    @property
    def commands(self) -> dict:
        if not self._registering:
            self._register(*COMMAND_MODULES)
        return self._commands

    @commands.setter
    def commands(self, value: dict) -> None:
        self._commands = value

    def get_command(self, ctx: click.Context, cmd_name: str):
        entry = COMMANDS.get(cmd_name)
        # a command missing from COMMANDS (tests/test_startup.py says so) still runs, after loading every area
        self._register(*([entry[0]] if entry else COMMAND_MODULES))
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self._commands))

    def format_commands(self, ctx: click.Context, formatter) -> None:
        """The help's command list, from :data:`COMMANDS` (stand-ins carrying each command's first sentence)
        and any command already registered."""
        listing = {name: click.Command(name, help=text) for name, (_module, text) in COMMANDS.items()}
        listing.update(self._commands)
        click.Group(commands=listing).format_commands(ctx, formatter)


@group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sp-realist")
@click.option("--project", "-p", "project_path", metavar="PATH", default=None,
              help="Project file for every command (a command's own --project wins). "
                   "Defaults to $SP_REALIST_PROJECT or the single project file in this folder.")
def main(project_path: str | None) -> None:
    """sp_realist: realist and qualitative evaluation from the command line.

    \b
    Quick start:
      sp-realist init evaluation.sprealist
      sp-realist ingest diaries/*.docx --kind diary --site S1
      sp-realist summary
      sp-realist -p evaluation.sprealist sources list   # -p before or after the command
    Run 'sp-realist COMMAND --help' for any command.
    """



__all__ = ["main", "message"]

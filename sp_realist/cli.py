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
    "sp_realist.browse.commands",    # browse (Textual is imported only when it runs)
)


class MainGroup(SpRealistGroup):
    """The top-level group.  The areas' commands are registered on first need (a command, the help
    listing, completion, or anyone reading ``commands``), so ``sp-realist --version`` imports none of them."""

    _loaded = False

    @property
    def commands(self) -> dict:
        if not self._loaded:
            self._loaded = True  # before registering: register() adds commands through this property
            for module in COMMAND_MODULES:
                importlib.import_module(module).register(self)
        return self._commands

    @commands.setter
    def commands(self, value: dict) -> None:
        self._commands = value


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

"""Shared pieces of the command-line interface.

Commands are thin wrappers: parse options, call one library function, render
its result.  Data goes to stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import click
from rich.console import Console

from .errors import SpRealistError
from .output import FORMATS, FORMATS_XLSX, render

#: Console for messages and progress (stderr, never stdout).
err_console = Console(stderr=True, highlight=False)

ENV_CODER = "SP_REALIST_CODER"


def message(text: str) -> None:
    """A human message on stderr."""
    err_console.print(text, markup=False)


def project_option(func: Callable) -> Callable:
    """``--project/-p PATH`` (or $SP_REALIST_PROJECT, or the single *.sprealist here)."""
    return click.option(
        "--project", "-p", "project_path", metavar="PATH", default=None,
        help="Project file (*.sprealist). Defaults to $SP_REALIST_PROJECT or the single project file in this folder.",
    )(func)


def format_option(func: Callable | None = None, *, xlsx: bool = False):
    """``--format table|json|csv|md[|xlsx]`` and ``--output FILE``."""
    choices = FORMATS_XLSX if xlsx else FORMATS

    def deco(f: Callable) -> Callable:
        f = click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
                         help="Write to this file instead of stdout.")(f)
        return click.option("--format", "-f", "fmt", type=click.Choice(choices), default="table",
                            show_default=True, help="Output format.")(f)

    return deco(func) if func is not None else deco


def coder_option(func: Callable) -> Callable:
    return click.option(
        "--coder", default=None, metavar="NAME",
        help=f"Who is coding. Defaults to ${ENV_CODER}, then the login name.",
    )(func)


def resolve_coder(coder: str | None) -> str:
    if coder:
        return coder
    env = os.environ.get(ENV_CODER)
    if env:
        return env
    try:
        import getpass

        return getpass.getuser() or "unknown"
    except Exception:  # pragma: no cover - platform dependent
        return "unknown"


def global_project_path() -> str | None:
    """The ``-p/--project`` given before the command (``sp-realist -p PROJECT sources list``), if any."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    return ctx.find_root().params.get("project_path")


def get_project(project_path: str | None):
    """The project named by the command's ``--project`` or, failing that, the one given before the
    command; else $SP_REALIST_PROJECT or the single project file here (:func:`store.find_project`)."""
    from .store import open_project

    return open_project(project_path if project_path is not None else global_project_path())


def emit(df, fmt: str, output: str | None = None, title: str | None = None) -> None:
    render(df, fmt, title=title, output=output)


class SpRealistGroup(click.Group):
    """A click group that turns library errors into one sentence and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SpRealistError as exc:
            err_console.print(f"Error: {exc.message}", markup=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            # a file the user named (--output, a key, a folder) cannot be opened: one sentence, no traceback
            where = exc.filename or "a file"
            err_console.print(f"Error: {where}: {exc.strerror or exc}; check the path and its permissions.",
                              markup=False, soft_wrap=True)
            ctx.exit(1)
        except KeyboardInterrupt:  # pragma: no cover - interactive
            err_console.print("Interrupted; nothing was half-written (the transaction was rolled back).")
            ctx.exit(130)
        except BrokenPipeError:  # pragma: no cover - `| head`
            sys.stderr.close()
            ctx.exit(0)


def group(*args, **kwargs):
    kwargs.setdefault("cls", SpRealistGroup)
    return click.group(*args, **kwargs)


def parse_attrs(pairs: tuple[str, ...] | list[str], param_hint: str = "--attr") -> dict[str, str]:
    """``("site=S1", "wave=2")`` -> ``{"site": "S1", "wave": "2"}`` (usage error otherwise)."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE.", param_hint=param_hint)
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out

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


def get_project(project_path: str | None, check_outputs: bool = True):
    """Open the project; unless ``check_outputs`` is False (the privacy commands), every output of the
    command is then checked for names from an applied pseudonym key (:func:`activate_output_check`)."""
    from .store import open_project

    project = open_project(project_path)
    if check_outputs:
        try:
            activate_output_check(project)
        except BaseException:
            project.close()
            raise
    return project


def _command_path() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "output"


def activate_output_check(project, key=None) -> None:
    """Check every output of this command against ``project``'s applied key (its fingerprints, and
    ``key`` or $SP_REALIST_KEY when given).  Nothing to do (one query) when no key was ever applied."""
    from .privacy.guard import activate, leak_finder

    finder = leak_finder(project, key)
    if finder is not None:
        activate(finder, _command_path())


def emit(df, fmt: str, output: str | None = None, title: str | None = None) -> None:
    """Render ``df`` to stdout or ``output``, after the output check (exit 3 and nothing written if a
    real name would be in it)."""
    from .privacy.guard import active, check_frame, checked_path

    if active() is None:
        render(df, fmt, title=title, output=output)
        return
    check_frame(df, output or "stdout", title)
    if output:
        with checked_path(output) as tmp:
            render(df, fmt, title=title, output=str(tmp))
    else:
        render(df, fmt, title=title)


def write_output(text: str, output: str | None = None) -> None:
    """Text to the file ``output`` (UTF-8), else to stdout, after the output check."""
    from .privacy.guard import check_text, checked_path

    check_text(text, output or "stdout")
    if output:
        with checked_path(output) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
    else:
        click.echo(text, nl=False)


def checked_file(path: str | os.PathLike):
    """``with checked_file(path) as tmp:`` write to ``tmp``; it is checked and moved to ``path``."""
    from .privacy.guard import checked_path

    return checked_path(path)


def check_values(values, where: str) -> None:
    """Check text that goes into an output the check cannot read back (e.g. the labels of a PDF figure)."""
    from .privacy.guard import check_text

    check_text("\n".join(str(v) for v in values if v is not None), where)


class SpRealistGroup(click.Group):
    """A click group that turns library errors into one sentence and an exit code."""

    def invoke(self, ctx: click.Context):
        from .privacy.guard import activate, deactivate

        tokens = activate(None)  # each invocation starts unchecked; get_project turns the check on
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
        finally:
            deactivate(tokens)


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

"""Shared pieces of the command-line interface.

Commands are thin wrappers: parse options, call one library function, render
its result.  Data goes to stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Callable

import click

from .errors import SpRealistError
from .formats import FORMATS, FORMATS_XLSX

ENV_CODER = "SP_REALIST_CODER"


@lru_cache(maxsize=None)
def _err_console():
    """The console for messages and progress (stderr, never stdout), made on first use so that
    ``sp-realist --help`` does not import rich."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def __getattr__(name: str):
    if name == "err_console":  # ``from sp_realist.cli_support import err_console`` (PEP 562)
        return _err_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def message(text: str) -> None:
    """A human message on stderr."""
    _err_console().print(text, markup=False)


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


def get_project(project_path: str | None, check_outputs: bool = True):
    """The project named by the command's ``--project`` or, failing that, the one given before the
    command; else $SP_REALIST_PROJECT or the single project file here (:func:`store.find_project`).
    Unless ``check_outputs`` is False (the privacy commands), every output of the command is then
    checked for names from an applied pseudonym key (:func:`activate_output_check`)."""
    from .store import open_project

    project = open_project(project_path if project_path is not None else global_project_path())
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
    """Render ``df`` (a DataFrame or :class:`~sp_realist.rows.Rows`) to stdout or ``output``, row by row,
    after the output check (exit 3 and nothing written if a real name would be in it).  Rows read from a
    cursor are streamed when no key was ever applied; otherwise they are read first, to be checked whole."""
    from .output import render
    from .privacy.guard import active, check_frame, checked_path

    if active() is None:
        render(df, fmt, title=title, output=output)
        return
    if not hasattr(df, "itertuples"):  # Rows: read once, checked as a frame, written as they are
        from .rows import Rows

        df = Rows(list(df.columns), list(df.rows))
        check_frame(df.frame(), output or "stdout", title)
    else:
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


class Int(click.IntRange):
    """A whole-number option or argument that also fits the project's 64-bit integer columns.

    Used for every integer click takes (ids, offsets, counts, limits): ``99999999999999999999`` is a usage
    error (exit 2) in one sentence instead of an OverflowError deep in the database driver.  ``min``/``max``
    bound it further, as :class:`click.IntRange`.
    """

    name = "integer"

    def __init__(self, min: int | None = None, max: int | None = None, **kwargs):  # noqa: A002 - click's names
        super().__init__(min=min, max=max, **kwargs)

    def convert(self, value, param, ctx):
        from .numbers import INT64_MAX, fits

        n = click.INT.convert(value, param, ctx)
        if not fits(n):
            self.fail(f"{value} is too large; give a whole number up to {INT64_MAX:,}.", param, ctx)
        return super().convert(n, param, ctx)

    def __repr__(self) -> str:
        return "Int" if self.min is None and self.max is None else super().__repr__()


class Span(click.ParamType):
    """``START:END`` character offsets whose numbers must fit a 64-bit column (a usage error otherwise).

    The value is passed on as given; one that is not two numbers is left to the library, which says what a
    span looks like (exit 1, as before).
    """

    name = "START:END"

    def convert(self, value, param, ctx):
        from .numbers import INT64_MAX, fits

        if not isinstance(value, str):
            return value
        try:
            a, b = (int(p) for p in value.split(":"))
        except ValueError:
            return value
        if not (fits(a) and fits(b)):
            self.fail(f"{value} is too large; offsets are whole numbers up to {INT64_MAX:,}.", param, ctx)
        return value


class SpRealistGroup(click.Group):
    """A click group that turns library errors into one sentence and an exit code."""

    def invoke(self, ctx: click.Context):
        from .privacy.guard import activate, deactivate

        tokens = activate(None)  # each invocation starts unchecked; get_project turns the check on
        try:
            return super().invoke(ctx)
        except SpRealistError as exc:
            _err_console().print(f"Error: {exc.message}", markup=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            # a file the user named (--output, a key, a folder) cannot be opened: one sentence, no traceback
            where = exc.filename or "a file"
            _err_console().print(f"Error: {where}: {exc.strerror or exc}; check the path and its permissions.",
                              markup=False, soft_wrap=True)
            ctx.exit(1)
        except OverflowError as exc:
            # a safety net: a number too large for a 64-bit column that no check caught (options are bounded
            # by Int, files and references by sp_realist.numbers)
            if "too large" not in str(exc) and "too big" not in str(exc):
                raise
            _err_console().print("Error: a number given is too large for the project (whole numbers go up to "
                              "9,223,372,036,854,775,807); use a smaller one.", markup=False, soft_wrap=True)
            ctx.exit(1)
        except KeyboardInterrupt:  # pragma: no cover - interactive
            _err_console().print("Interrupted; nothing was half-written (the transaction was rolled back).")
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

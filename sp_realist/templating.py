"""The one way sp_realist renders a Jinja2 template: sandboxed, bounded in size and time.

Every template -- the shipped ``report.md.j2``, ``report.html.j2`` and
``ifthen.j2`` and any a project, a study or ``--templates DIR`` supplies --
is loaded through :func:`sandboxed_environment` and rendered with
:func:`render`.  A template someone sent you can therefore format the data it
is given, and nothing else:

* it runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no
  attribute starting with ``_`` (so no ``__class__``, ``__globals__``,
  ``__subclasses__``), no method that changes a list or dict, no
  ``str.format`` escape;
* its output is streamed and refused past :data:`MAX_OUTPUT_CHARS`
  characters; no single value it builds (``'x' * n``, ``~``, ``+``,
  ``join``, ``center``, ``format`` widths, ``range``) may exceed that size
  either, so nothing large is ever allocated;
* it is refused once it has run for :data:`MAX_RENDER_SECONDS` seconds (the
  deadline is checked at every loop step, call and output chunk, so an
  endless ``{% for %}`` nest stops too);
* templates are read only from the folders given (and the shipped ones); a
  file that is a symbolic link out of its folder is refused.

A refused template raises :class:`~sp_realist.errors.SpRealistError` with one
sentence naming the template file, the line and the offending source line.
"""

from __future__ import annotations

import contextvars
import os
import re
import string
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import SpRealistError

#: Most characters a template may produce, and most characters (or items) of any value it builds.
MAX_OUTPUT_CHARS = 5_000_000
#: Most seconds one template render may take.
MAX_RENDER_SECONDS = 10.0
#: Most items ``range()`` may give (Jinja's sandbox limit).
MAX_RANGE = 100_000

_GUARD_ITER = "_sp_guard_iter"
_GUARD_SIZE = "_sp_guard_size"
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("sp_realist_template_deadline", default=None)


def _security_error():
    from jinja2.exceptions import SecurityError

    return SecurityError


class TemplateLimit(Exception):
    """A template went past :data:`MAX_RENDER_SECONDS` or :data:`MAX_OUTPUT_CHARS`."""


def _check_deadline() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimit(f"it ran for more than {MAX_RENDER_SECONDS:g} seconds")


def _check_size(value: Any) -> Any:
    """``value`` unless it is a string, list or tuple longer than :data:`MAX_OUTPUT_CHARS`."""
    if isinstance(value, (str, list, tuple, bytes)) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateLimit(f"it built a value of more than {MAX_OUTPUT_CHARS:,} characters")
    return value


def _bounded(n: Any, what: str) -> Any:
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) > MAX_OUTPUT_CHARS:
        raise TemplateLimit(f"{what} {n} is larger than {MAX_OUTPUT_CHARS:,}")
    return n


def _guard_iter(iterable: Any):
    """Iterate ``iterable`` checking the deadline (wrapped around every ``{% for %}``)."""
    _check_deadline()
    for i, item in enumerate(iterable):
        if not i & 255:
            _check_deadline()
        yield item


def _guard_range(*args: int) -> range:
    _check_deadline()
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimit(f"range() of {len(rng):,} items is larger than the limit of {MAX_RANGE:,}")
    return rng


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(fmt: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for n in (width, precision):
            if n == "*":
                raise _security_error()("a '*' width in a %-format is not allowed in templates")
            if n:
                _bounded(int(n), "a format width")


def _check_format_spec(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _literal, _field, spec, _conv in fields:
        if not spec:
            continue
        if "{" in spec:
            raise _security_error()("a nested {} in a format spec is not allowed in templates")
        for n in re.findall(r"\d+", spec):
            _bounded(int(n), "a format width")


_STR_SIZE_METHODS = {"ljust", "rjust", "center", "zfill"}


def _check_str_call(obj: Any, args: tuple, kwargs: dict) -> None:
    """Refuse a str method call whose result would exceed the size limit before it is made."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _STR_SIZE_METHODS and args:
        _bounded(args[0], f"str.{name} width")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and size * owner.count("\t") + len(owner) > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"expandtabs would build more than {MAX_OUTPUT_CHARS:,} characters")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = len(owner) + 1 if args[0] == "" else owner.count(args[0])
        if len(owner) + hits * max(len(args[1]) - len(args[0]), 0) > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"replace would build more than {MAX_OUTPUT_CHARS:,} characters")
    elif name == "join" and args:
        _bounded_join(owner, args[0])


def _bounded_join(sep: str, items: Any) -> list:
    out, total = [], 0
    for i, item in enumerate(_guard_iter(items)):
        total += len(str(item)) + (len(sep) if i else 0)
        if total > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"join would build more than {MAX_OUTPUT_CHARS:,} characters")
        out.append(item)
    return out


def _sandbox_class():
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.visitor import NodeTransformer

    class _Guards(NodeTransformer):
        """Wrap every ``{% for %}`` iterable and every ``~`` concatenation in a guard filter."""

        def visit_For(self, node):
            node = self.generic_visit(node)
            node.iter = nodes.Filter(node.iter, _GUARD_ITER, [], [], None, None, lineno=node.iter.lineno)
            return node

        def visit_Concat(self, node):
            node = self.generic_visit(node)
            return nodes.Filter(node, _GUARD_SIZE, [], [], None, None, lineno=node.lineno)

    class SpSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "+", "%"])

        def _parse(self, source, name, filename):
            return _Guards().visit(super()._parse(source, name, filename))

        def call_binop(self, context, operator, left, right):
            _check_deadline()
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                        if len(seq) * n > MAX_OUTPUT_CHARS:
                            raise TemplateLimit(f"a repetition of {len(seq):,} x {n:,} is larger than "
                                                f"{MAX_OUTPUT_CHARS:,}")
            elif operator == "**":
                if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0 \
                        and right * abs(left).bit_length() > 4096:
                    raise TemplateLimit(f"the power {left} ** {right} is too large")
            elif operator == "%" and isinstance(left, str):
                _check_percent_format(left)
            return _check_size(super().call_binop(context, operator, left, right))

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
            _check_deadline()
            _check_str_call(__obj, args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj, attribute):
            _check_deadline()
            return super().getattr(obj, attribute)

        def unsafe_undefined(self, obj, attribute):
            # refuse at once (the default returns an Undefined, which a following |attr() turns into a plain
            # "undefined" error that no longer says why)
            raise _security_error()(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

        def wrap_str_format(self, value):
            wrapped = super().wrap_str_format(value)
            if wrapped is not None:
                _check_format_spec(value.__self__)
            return wrapped

    return SpSandbox


def _wrap_filter(f: Callable, check: Callable[..., tuple]) -> Callable:
    """``f`` with ``check(value, args, kwargs) -> (value, args, kwargs)`` first and a size check of its result."""
    pass_arg = getattr(f, "jinja_pass_arg", None)
    if pass_arg is None:
        def wrapped(value, *args, **kwargs):
            value, args, kwargs = check(value, args, kwargs)
            return _check_size(f(value, *args, **kwargs))
    else:
        def wrapped(ctx, value, *args, **kwargs):
            value, args, kwargs = check(value, args, kwargs)
            return _check_size(f(ctx, value, *args, **kwargs))
        wrapped.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    wrapped.__name__ = getattr(f, "__name__", "filter")
    return wrapped


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _filter_overrides(env) -> None:
    """Filters that could build huge values get bounded arguments (checked before they run)."""

    def width(what: str, i: int = 0, name: str = "width", default: Any = 80):
        def check(value, args, kwargs):
            n = _arg(args, kwargs, i, name, default)
            _bounded(len(n) if isinstance(n, str) else n, what)
            return value, args, kwargs
        return check

    def fmt(value, args, kwargs):
        _check_percent_format(str(value))
        return value, args, kwargs

    def join(value, args, kwargs):
        if _arg(args, kwargs, 1, "attribute", None) is None:
            value = _bounded_join(str(_arg(args, kwargs, 0, "d", "")), value)
        return value, args, kwargs

    def batch(value, args, kwargs):
        _bounded(_arg(args, kwargs, 0, "linecount", 1), "batch size")
        return list(_guard_iter(value)), args, kwargs

    def slices(value, args, kwargs):
        n = _arg(args, kwargs, 0, "slices", 1)
        if isinstance(n, int) and n > MAX_RANGE:
            raise TemplateLimit(f"slice count {n:,} is larger than {MAX_RANGE:,}")
        return value, args, kwargs

    def replace(value, args, kwargs):
        if len(args) >= 2:
            _check_str_call(str(value).replace, (str(args[0]), str(args[1])), {})
        return value, args, kwargs

    def tojson(value, args, kwargs):
        n = _arg(args, kwargs, 0, "indent", None)
        if isinstance(n, int) and n > 100:
            raise TemplateLimit(f"tojson indent {n} is larger than 100")
        return value, args, kwargs

    def nothing(value, args, kwargs):
        return value, args, kwargs

    checks = {"center": width("center width"), "indent": width("indent width", default=4), "format": fmt,
              "join": join, "batch": batch, "slice": slices, "replace": replace, "tojson": tojson,
              "wordwrap": nothing, "truncate": nothing, "list": nothing, "string": nothing}
    for name, check in checks.items():
        env.filters[name] = _wrap_filter(env.filters[name], check)
    env.filters[_GUARD_ITER] = _guard_iter
    env.filters[_GUARD_SIZE] = _check_size


def _confined_loader_class():
    from jinja2 import FileSystemLoader

    class ConfinedFileSystemLoader(FileSystemLoader):
        """A FileSystemLoader that refuses a template file resolving (via symlinks) outside its folder."""

        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            real = Path(filename).resolve()
            roots = [Path(p).resolve() for p in self.searchpath]
            if not any(real == r or r in real.parents for r in roots):
                raise SpRealistError(f"{filename}: the template is a link to a file outside its templates folder "
                                     f"({real}); replace the link with the file itself.")
            return source, filename, uptodate

    return ConfinedFileSystemLoader


#: How a template stored in the project is named in messages ("project template ifthen.j2").
STORED_PREFIX = "project template "


def _stored_loader(stored: Mapping[str, str]):
    """A loader for templates stored in the project (name -> source, see :mod:`sp_realist.project_templates`)."""
    from jinja2 import FunctionLoader

    sources = dict(stored)

    def load(name: str):
        source = sources.get(name)
        return None if source is None else (source, STORED_PREFIX + name, lambda: True)

    loader = FunctionLoader(load)
    loader.sp_sources = sources  # for the source line of a message (see _source_line)
    return loader


def sandboxed_environment(template_dirs: Iterable[str | os.PathLike | Mapping[str, str]] = (), *,
                          packaged: bool = True, filters: Mapping[str, Callable] | None = None, **options: Any):
    """The sandboxed Jinja2 environment every sp_realist template renders in.

    Templates are looked up, first match wins, in ``template_dirs`` and then (when ``packaged``) in the
    templates shipped in ``sp_realist/templates``.  An item of ``template_dirs`` is a folder, or a mapping of
    name -> source: the templates stored in a project (:func:`sp_realist.project_templates.template_search`
    gives the whole list).  ``options`` are Jinja2 environment options (``autoescape``, ``trim_blocks`` ...);
    ``undefined`` is always :class:`jinja2.StrictUndefined`.
    """
    from jinja2 import ChoiceLoader, PackageLoader, StrictUndefined

    loader_cls = _confined_loader_class()
    loaders = [_stored_loader(d) if isinstance(d, Mapping) else loader_cls(str(d)) for d in template_dirs if d]
    if packaged:
        loaders.append(PackageLoader("sp_realist", "templates"))
    env = _sandbox_class()(loader=ChoiceLoader(loaders), undefined=StrictUndefined, **options)
    env.globals["range"] = _guard_range
    _filter_overrides(env)
    env.filters.update(filters or {})
    return env


def template_from_file(env, path: str | os.PathLike):
    """A template compiled from the file ``path`` (outside the loader's folders) in ``env``."""
    from jinja2 import TemplateSyntaxError

    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpRealistError(f"{path}: the template is not UTF-8 text; save it as UTF-8.") from None
    try:
        code = env.compile(source, name=path.name, filename=str(path))
    except TemplateSyntaxError as exc:
        raise SpRealistError(f"{path}: template error at line {exc.lineno} ({exc.message}); fix it.") from None
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def _template_line(exc: BaseException, template) -> tuple[str, int | None]:
    """(file, line) of the innermost template frame of ``exc``'s traceback (Jinja rewrites them)."""
    where = template.filename or template.name or "<template>"
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__jinja_exception__") is exc:
            where, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return where, line


def _stored_source(filename: str, template) -> str | None:
    """The source of a template stored in the project, by its message name, or None."""
    if not filename or not filename.startswith(STORED_PREFIX):
        return None
    loaders = getattr(getattr(getattr(template, "environment", None), "loader", None), "loaders", [])
    for loader in loaders:
        sources = getattr(loader, "sp_sources", None)
        if sources is not None and filename[len(STORED_PREFIX):] in sources:
            return sources[filename[len(STORED_PREFIX):]]
    return None


def _source_line(filename: str, line: int | None, template) -> str:
    if not line:
        return ""
    try:
        stored = _stored_source(filename, template)
        if stored is not None:
            text = stored
        elif filename and Path(filename).is_file():
            text = Path(filename).read_text(encoding="utf-8")
        else:
            return ""
        src = text.splitlines()[line - 1].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    return src if len(src) <= 80 else src[:77] + "..."


def refusal(exc: BaseException, template) -> SpRealistError:
    """One sentence for a template the sandbox or a limit refused (``exc`` raised while rendering ``template``)."""
    where, line = _template_line(exc, template)
    src = _source_line(where, line, template)
    at = f"{where}, line {line}" if line else where
    expr = f" ({src})" if src else ""
    detail = str(exc).rstrip(".")
    if isinstance(exc, TemplateLimit):
        return SpRealistError(f"{at}{expr}: the template was stopped because {detail}; templates are limited to "
                              f"{MAX_OUTPUT_CHARS:,} characters and {MAX_RENDER_SECONDS:g} seconds, so simplify it.")
    if isinstance(exc, RecursionError):
        return SpRealistError(f"{at}{expr}: the template recursed too deeply; remove the recursive macro or loop.")
    return SpRealistError(f"{at}{expr}: the template was refused by the sandbox ({detail}); a template may only "
                          "format the data it is given, so remove that expression.")


def render(template, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    """Render ``template`` with the sandbox's limits: streamed, stopped past :data:`MAX_OUTPUT_CHARS`
    characters or :data:`MAX_RENDER_SECONDS` seconds.

    A sandbox violation, a limit, or runaway recursion raises :class:`SpRealistError` naming the template
    file and line; other template errors (e.g. an undefined variable) propagate as Jinja2 raises them.
    """
    from jinja2 import TemplateError

    SecurityError = _security_error()
    token = _deadline.set(time.monotonic() + MAX_RENDER_SECONDS)
    try:
        chunks: list[str] = []
        total = 0
        for chunk in template.generate(dict(context or {}, **kwargs)):
            total += len(chunk)
            if total > MAX_OUTPUT_CHARS:
                raise TemplateLimit(f"it produced more than {MAX_OUTPUT_CHARS:,} characters")
            _check_deadline()
            chunks.append(chunk)
        return "".join(chunks)
    except (SecurityError, TemplateLimit, RecursionError, MemoryError, OverflowError) as exc:
        raise refusal(exc, template) from None
    except (TemplateError, SpRealistError):
        raise  # the caller's message (e.g. an undefined variable), or already one sentence
    except Exception as exc:  # e.g. {{ 1 / 0 }}: still one sentence with the file and line, no traceback
        where, line = _template_line(exc, template)
        src = _source_line(where, line, template)
        at = f"{where}, line {line}" if line else where
        raise SpRealistError(f"{at}{' (' + src + ')' if src else ''}: the template failed "
                             f"({type(exc).__name__}: {exc}); fix the template.") from None
    finally:
        _deadline.reset(token)


__all__ = ["MAX_OUTPUT_CHARS", "MAX_RENDER_SECONDS", "MAX_RANGE", "TemplateLimit", "sandboxed_environment",
           "template_from_file", "render", "refusal"]

"""Reading YAML files with one-sentence errors (shared by coding, cmoc and the study manifest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import SpRealistError


class YamlLines:
    """Line numbers (1-based) of the entries of a loaded YAML document.

    ``lines.line("sources", 2, "path")`` is the line of that entry; a path that
    is not in the document gives the line of its deepest ancestor that is (and
    ``None`` for an empty document).
    """

    def __init__(self, lines: dict[tuple, int]):
        self._lines = lines

    def line(self, *path: Any) -> int | None:
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"YamlLines({len(self._lines)} entries)"


def _index(node, path: tuple, out: dict[tuple, int], seen: set[int]) -> None:
    """Record the line of every entry under ``node``; an aliased node is indexed once (so a YAML "billion
    laughs" document of nested aliases costs its size, not its expansion)."""
    import yaml

    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            out.setdefault(path + (key,), key_node.start_mark.line + 1)
            _index(value_node, path + (key,), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.setdefault(path + (i,), item.start_mark.line + 1)
            _index(item, path + (i,), out, seen)


def _load(path: str | os.PathLike, what: str | None, fix: str, problem: bool, with_lines: bool) -> Any:
    import yaml

    path = Path(path)
    if not path.is_file():
        kind = f"{what} file" if what else "file"
        raise SpRealistError(f"{path}: no such {kind}; check the path.")
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as fh:
            # libyaml's safe loader when available (several times faster on large analysis files).
            if not with_lines:
                return yaml.load(fh, Loader=loader_cls)
            loader = loader_cls(fh)
            try:
                node = loader.get_single_node()
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
            lines: dict[tuple, int] = {}
            if node is not None:
                lines[()] = node.start_mark.line + 1
                _index(node, (), lines, set())
            return data, YamlLines(lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f" ({getattr(exc, 'problem', exc)})" if problem else ""
        raise SpRealistError(f"{path}: not valid YAML{line}{detail}; {fix}.") from None
    except UnicodeDecodeError:
        raise SpRealistError(f"{path}: not UTF-8 text; save it as UTF-8.") from None


def load_yaml_file(path: str | os.PathLike, what: str | None = None, *, fix: str = "fix the file",
                   problem: bool = True) -> Any:
    """Load the YAML document in ``path`` (libyaml's safe loader when available).

    Errors are one sentence: ``<path>: no such <what> file; check the path.``,
    ``<path>: not valid YAML at line N (<problem>); <fix>.`` (the problem only
    when ``problem``), ``<path>: not UTF-8 text; save it as UTF-8.``
    """
    return _load(path, what, fix, problem, with_lines=False)


def load_yaml_file_with_lines(path: str | os.PathLike, what: str | None = None, *, fix: str = "fix the file",
                              problem: bool = True) -> tuple[Any, YamlLines]:
    """As :func:`load_yaml_file`, and the line of every entry: ``(data, YamlLines)``."""
    return _load(path, what, fix, problem, with_lines=True)


def write_exported_text(text: str, path: str | os.PathLike | None) -> str:
    """Write an export's ``text`` to ``path`` (UTF-8) when given, refusing a missing folder in one sentence;
    return ``text``.  Shared by the theory, analysis and findings exports."""
    if path is not None:
        path = Path(path)
        if not path.parent.exists():
            raise SpRealistError(f"{path}: the folder {path.parent} does not exist; create it first.")
        path.write_text(text, encoding="utf-8")
    return text

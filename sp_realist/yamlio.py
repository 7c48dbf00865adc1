"""Reading YAML files with one-sentence errors (shared by coding, cmoc and the study manifest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import SpRealistError


def load_yaml_file(path: str | os.PathLike, what: str | None = None, *, fix: str = "fix the file",
                   problem: bool = True) -> Any:
    """Load the YAML document in ``path`` (libyaml's safe loader when available).

    Errors are one sentence: ``<path>: no such <what> file; check the path.``,
    ``<path>: not valid YAML at line N (<problem>); <fix>.`` (the problem only
    when ``problem``), ``<path>: not UTF-8 text; save it as UTF-8.``
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        kind = f"{what} file" if what else "file"
        raise SpRealistError(f"{path}: no such {kind}; check the path.")
    try:
        with open(path, encoding="utf-8") as fh:
            # libyaml's safe loader when available (several times faster on large analysis files).
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f" ({getattr(exc, 'problem', exc)})" if problem else ""
        raise SpRealistError(f"{path}: not valid YAML{line}{detail}; {fix}.") from None
    except UnicodeDecodeError:
        raise SpRealistError(f"{path}: not UTF-8 text; save it as UTF-8.") from None

"""Names a package exports, imported from their modules on first use (PEP 562 module ``__getattr__``).

An area package (``sp_realist.cmoc``, ``.report``, ``.exchange``) re-exports its API, but its command-line
group lives in a module of the package: importing the package for ``sp-realist cmoc --help`` must not import
every module (and pandas, networkx ...) behind the API.  ``__getattr__ = lazy_exports(__name__, {...})``
imports a name's module when the name is first read (``from sp_realist.cmoc import cmoc_table`` included).
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that finds each name of ``exports`` (relative module ->
    names) in its module on first use, and keeps it in the package."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

"""Names a package exports, imported from their modules on first use (PEP 562 module ``__getattr__``).

An area package (``sp_realist.cmoc``, ``.report``, ``.exchange``) re-exports its API, but its command-line
group lives in a module of the package: importing the package for ``sp-realist cmoc --help`` must not import
every module (and pandas, networkx ...) behind the API.  ``__getattr__ = lazy_exports(__name__, {...})``
imports a name's module when the name is first read (``from sp_realist.cmoc import cmoc_table`` included).
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that finds each name of ``exports`` (relative module ->
    names) in its module on first use, and keeps it in the package.

    A function named as its own module (``sp_realist.coding.autocode.autocode``) keeps the package's
    name when that module is imported later (Python's import sets ``package.autocode`` to the module):
    ``from sp_realist.coding import autocode`` is the function, as with eager re-exports."""
    module_of = {name: module for module, names in exports.items() for name in names}
    shadowed = {name for name, module in module_of.items() if module == "." + name}
    if shadowed:
        pkg = sys.modules[package]

        class _Package(type(pkg)):
            def __setattr__(self, name, value):
                if name in shadowed and isinstance(value, ModuleType):
                    return  # the submodule stays in sys.modules; the package's name is the function's
                super().__setattr__(name, value)

        pkg.__class__ = _Package

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

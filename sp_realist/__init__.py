"""sp_realist: a toolkit for realist and qualitative evaluation.

The public API is re-exported here; every CLI command is a wrapper over one of
these functions.  The area packages hold the rest of the API:
``sp_realist.ingest``, ``sp_realist.privacy``, ``sp_realist.coding``,
``sp_realist.cmoc``, ``sp_realist.report`` and ``sp_realist.exchange``.

>>> import sp_realist                                              # doctest: +SKIP
>>> project = sp_realist.Project.create("evaluation.sprealist")   # doctest: +SKIP
>>> sp_realist.ingest_paths(project, ["diaries/"], site="S1")     # doctest: +SKIP
>>> sp_realist.cmoc_table(project, theory="T1")                   # doctest: +SKIP

The workflow functions are imported on first use, so ``import sp_realist``
(and the CLI's start-up) stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CheckFailed, IngestError, NotFoundError, ProjectError, SpRealistError  # noqa: E402

# name -> module that defines it; loaded lazily by __getattr__ (PEP 562), so that ``import sp_realist`` (and
# the command line's start-up, e.g. ``sp-realist --version``) imports neither SQLAlchemy nor pandas.
_LAZY = {
    "Project": "sp_realist.store",
    "find_project": "sp_realist.store",
    "open_project": "sp_realist.store",
    "ingest_paths": "sp_realist.ingest",
    "ingest_manifest": "sp_realist.ingest",
    "load_key": "sp_realist.privacy",
    "anonymise": "sp_realist.privacy",
    "audit_paths": "sp_realist.privacy",
    "import_codebook_yaml": "sp_realist.coding",
    "import_codings_yaml": "sp_realist.coding",
    "add_coding": "sp_realist.coding",
    "autocode": "sp_realist.coding",
    "coded_excerpts": "sp_realist.coding",
    "frequencies": "sp_realist.coding",
    "cooccurrence": "sp_realist.coding",
    "framework_matrix": "sp_realist.coding",
    "theme_table": "sp_realist.coding",
    "agreement": "sp_realist.coding",
    "import_theories_yaml": "sp_realist.cmoc",
    "export_theories_yaml": "sp_realist.cmoc",
    "import_analysis_yaml": "sp_realist.cmoc",
    "set_appraisal": "sp_realist.cmoc",
    "cmoc_table": "sp_realist.cmoc",
    "ifthen_statements": "sp_realist.cmoc",
    "saturation_table": "sp_realist.cmoc",
    "suggest_cmocs": "sp_realist.cmoc",
    "programme_graph": "sp_realist.cmoc",
    "render_graph": "sp_realist.cmoc",
    "export_graph": "sp_realist.cmoc",
    "triangulation": "sp_realist.cmoc",
    "write_report": "sp_realist.report",
    "build_study": "sp_realist.report",
    "export_qdpx": "sp_realist.exchange",
    "import_qdpx": "sp_realist.exchange",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sp_realist' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    "SpRealistError",
    "ProjectError",
    "IngestError",
    "NotFoundError",
    "CheckFailed",
    *_LAZY,
]

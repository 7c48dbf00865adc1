"""sp_realist.exchange: REFI-QDA interoperability.

* :func:`export_qdpx` / :func:`import_qdpx` / :func:`import_qdpx_new`: whole projects (``.qdpx``);
* :func:`export_qdc` / :func:`import_qdc`: codebooks (``.qdc``);
* :func:`import_taguette_codebook`, :func:`import_qc_codebook`: Taguette CSV and qc YAML codebooks.

Imports return an :class:`ImportResult` (counts, notes, one line per kind of loss).
"""

from __future__ import annotations

from ..lazy import lazy_exports

# Imported from their modules on first use, so that `sp-realist export --help` (this package holds the
# commands) imports none of them.
__getattr__ = lazy_exports(__name__, {
    ".codebooks": ("import_qc_codebook", "import_taguette_codebook"),
    ".common": ("ImportResult",),
    ".qdc": ("export_qdc", "import_qdc"),
    ".qdpx": ("ExportResult", "export_qdpx", "import_qdpx", "import_qdpx_new", "read_qdpx"),
    ".safety": ("ExchangeError",),
})

__all__ = ["export_qdpx", "import_qdpx", "import_qdpx_new", "read_qdpx", "export_qdc", "import_qdc",
           "import_taguette_codebook", "import_qc_codebook", "ImportResult", "ExportResult", "ExchangeError"]

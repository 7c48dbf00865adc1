"""sp_realist.exchange: REFI-QDA interoperability.

* :func:`export_qdpx` / :func:`import_qdpx` / :func:`import_qdpx_new`: whole projects (``.qdpx``);
* :func:`export_qdc` / :func:`import_qdc`: codebooks (``.qdc``);
* :func:`import_taguette_codebook`, :func:`import_qc_codebook`: Taguette CSV and qc YAML codebooks.

Imports return an :class:`ImportResult` (counts, notes, one line per kind of loss).
"""

from __future__ import annotations

from .codebooks import import_qc_codebook, import_taguette_codebook
from .common import ImportResult
from .qdc import export_qdc, import_qdc
from .qdpx import ExportResult, export_qdpx, import_qdpx, import_qdpx_new, read_qdpx
from .safety import ExchangeError

__all__ = ["export_qdpx", "import_qdpx", "import_qdpx_new", "read_qdpx", "export_qdc", "import_qdc",
           "import_taguette_codebook", "import_qc_codebook", "ImportResult", "ExportResult", "ExchangeError"]

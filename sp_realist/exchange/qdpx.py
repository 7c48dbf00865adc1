"""REFI-QDA project exchange (``.qdpx``): one import point for export and import.

See :mod:`sp_realist.exchange.qdpx_export` and :mod:`sp_realist.exchange.qdpx_import`.
"""

from __future__ import annotations

from .qdpx_export import ExportResult, build_qdpx, export_qdpx, qde_bytes
from .qdpx_import import QdpxPlan, apply_plan, import_qdpx, import_qdpx_new, read_qdpx

__all__ = ["export_qdpx", "build_qdpx", "qde_bytes", "ExportResult", "import_qdpx", "import_qdpx_new", "read_qdpx",
           "apply_plan", "QdpxPlan"]

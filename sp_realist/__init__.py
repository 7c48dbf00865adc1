"""sp_realist: a toolkit for realist and qualitative evaluation.

The public API is re-exported here; every CLI command is a wrapper over one of
these functions.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CheckFailed, IngestError, NotFoundError, ProjectError, SpRealistError  # noqa: E402
from .store import Project, find_project, open_project  # noqa: E402

__all__ = [
    "__version__",
    "Project",
    "find_project",
    "open_project",
    "SpRealistError",
    "ProjectError",
    "IngestError",
    "NotFoundError",
    "CheckFailed",
]

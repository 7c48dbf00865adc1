"""Import REFI-QDA project exchange files (``.qdpx``) written by any tool.

Reading is separate from writing, in three modules (as networkx's ``readwrite``):
:mod:`.qdpx_read` turns the archive into a :class:`QdpxPlan` (everything checked,
nothing written), :mod:`.qdpx_positions` converts and verifies selection positions,
and :mod:`.qdpx_apply` writes the plan into a project through each area's write
functions in one transaction.  A file that cannot be read raises before the
project is touched.

Tolerated deviations from the standard (each reported as a note or a loss):

* the ``.qde`` not named ``project.qde`` (``Project.QDE``, ``export.qde``, in a
  sub-folder), ``Sources/`` instead of ``sources/``, file names in another case;
* other namespaces (``urn:QDA-XML:project:0:10`` from older exporters), a BOM
  before the XML or the source text, missing optional attributes;
* sources given only as rich text (``richTextPath`` to a .docx, no plain
  text): the text is extracted with python-docx, paragraphs joined by ``\\n``;
* text files in UTF-16 or Windows-1252 instead of UTF-8;
* positions counted other than in code points (UTF-16 units, UTF-8 bytes,
  CRLF as one, LF as two, a counted BOM): detected per source, converted, and
  every converted selection verified to select the same text the other tool
  selected (see :mod:`sp_realist.exchange.positions`).

What sp_realist has no place for (pictures, audio and video, PDF regions,
graphs, links between arbitrary objects) is counted and reported, one line per
kind, in :attr:`ImportResult.losses`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import SpRealistError
from ..store import Project
from .common import ImportResult, cycle_collection_paused
from .qdpx_apply import apply_plan
from .qdpx_read import (CasePlan, CmocPlan, CodingPlan, NotePlan, QdpxPlan, SelPlan, SourcePlan, SourceSetPlan,
                        TheoryPlan, read_qdpx)

__all__ = ["import_qdpx", "import_qdpx_new", "import_qdpx_into", "read_qdpx", "apply_plan", "QdpxPlan", "SourcePlan", "SelPlan",
           "CodingPlan", "CasePlan", "NotePlan", "SourceSetPlan", "CmocPlan", "TheoryPlan", "ImportResult"]


def import_qdpx(path: str | os.PathLike, project: Project, tool: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import a ``.qdpx`` into ``project`` in one transaction (nothing is written if anything fails)."""
    with cycle_collection_paused():  # millions of objects for a large file (see common.cycle_collection_paused)
        plan = read_qdpx(path)
        if progress:
            progress(0, 1)
        with project.begin() as conn:
            result = apply_plan(conn, plan, project, tool)
    project.refresh_statistics()  # on a server, the next query is planned for the new rows
    result.project = str(project.location)
    if progress:
        progress(1, 1)
    return result


def import_qdpx_new(path: str | os.PathLike, target: str | os.PathLike | None = None) -> ImportResult:
    """Create a new project (``target``, or the .qdpx's name with ``.sprealist`` next to it) and import into it.

    The file is read and checked first; if the import fails the new project file is removed.
    """
    path = Path(path)
    target = str(target) if target else str(path.with_suffix(".sprealist"))
    if "://" not in target and Path(target).exists():
        raise SpRealistError(f"{target}: already exists; import into it with --into {target}, or choose another "
                             "name with --project.")
    with cycle_collection_paused():  # millions of objects for a large file (see common.cycle_collection_paused)
        plan = read_qdpx(path)
        project = Project.create(target)  # on a server: refused unless the database is empty
        try:
            with project.begin() as conn:
                result = apply_plan(conn, plan, project)
        except BaseException:
            project.discard()
            raise
    project.close()
    result.project = project.location
    return result


def import_qdpx_into(path: str | os.PathLike, project: Project, *, dry_run: bool = False,
                     actor: str | None = None):
    """A colleague's REFI-QDA project merged into ``project`` as another copy would be: imported into a
    temporary project first (:func:`import_qdpx_new`; a file that cannot be read fails before anything is
    touched), then merged with :func:`sp_realist.team.merge.merge_copy` (identical items not duplicated,
    differences kept apart as conflicts, one transaction).  Returns the import's result (what the file lost,
    with ``project`` set to this project) and the merge's."""
    import tempfile

    from ..team.merge import merge_copy

    with tempfile.TemporaryDirectory(prefix="sp-realist-qdpx-") as tmp:
        result = import_qdpx_new(path, Path(tmp) / "import.sprealist")
        merged = merge_copy(project, str(Path(tmp) / "import.sprealist"), dry_run=dry_run, actor=actor,
                            label=f"{Path(path).name} (REFI-QDA)")
    result.project = str(project.location)
    return result, merged

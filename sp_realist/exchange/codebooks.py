"""Codebooks from two open-source tools that do not speak REFI-QDA.

* **Taguette** (taguette.org) exports its codebook as CSV (or XLSX) with the
  columns ``tag``, ``parent``, ``description``, ``number of highlights``
  (older versions have no ``parent``); like Taguette's own importer, a
  ``name`` or ``path`` column is accepted instead of ``tag``.  Taguette also
  exports ``.qdc``: use :func:`sp_realist.exchange.qdc.import_qdc` for that.
  (Taguette has no JSON codebook export.)
* **qc** (the ``qualitative-coding`` command-line tool) keeps its codebook in
  ``codebook.yaml``: a nested YAML list where a plain string is a code and a
  one-key mapping is a code with children::

      - referral:
        - missing forms
        - reception
      - induction

Both become code plans written with the same rules as a QDC import (codes
already present are reused; nothing is written if the file is bad).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import yaml

from ..store import Project, stable_guid
from .common import CodePlan, ImportResult
from .qdc import MAX_QDC_BYTES, import_codebook_plans
from .safety import ExchangeError


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ExchangeError(f"{path}: no such file; check the path.")
    if path.stat().st_size > MAX_QDC_BYTES:
        raise ExchangeError(f"{path}: larger than {MAX_QDC_BYTES} bytes; not a plausible codebook.")
    return path.read_bytes()


def _xlsx_rows(data: bytes, where: str) -> list[list[str]]:
    """The first sheet of an .xlsx as rows of strings (Taguette's XLSX codebook export)."""
    from openpyxl import load_workbook

    from .safety import open_zip

    open_zip(io.BytesIO(data), label=where).close()  # an .xlsx is a zip: vet it first
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ExchangeError(f"{where}: not a readable .xlsx ({exc}); export the codebook again.") from None
    ws = wb.worksheets[0]
    rows = [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]
    wb.close()
    return rows


def read_taguette_csv(data: bytes, where: str) -> tuple[list[CodePlan], ImportResult]:
    """A Taguette codebook from its CSV export (or its XLSX export: same columns)."""
    result = ImportResult(where)
    if data[:2] == b"PK":
        rows = _xlsx_rows(data, where)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
            result.note("the CSV was not UTF-8; decoded as Windows-1252")
        rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ExchangeError(f"{where}: empty file; export the codebook from Taguette as CSV.")
    header = [h.strip().lower() for h in rows[0]]
    name_cols = [c for c in ("tag", "name", "path") if c in header]
    if len(name_cols) != 1:
        raise ExchangeError(f"{where}: needs exactly one 'tag' (or 'name'/'path') column, found "
                            f"{', '.join(header) or 'none'}; export the codebook from Taguette as CSV.")
    col = header.index(name_cols[0])
    dcol = header.index("description") if "description" in header else None
    pcol = header.index("parent") if "parent" in header else None
    plans: dict[str, CodePlan] = {}
    parents: dict[str, str] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(c for c in (col, dcol, pcol) if c is not None):
            raise ExchangeError(f"{where}: line {lineno} has too few columns; check the CSV.")
        name = row[col].strip()
        if not name:
            raise ExchangeError(f"{where}: line {lineno} has an empty tag name; fix or delete that line.")
        if name in plans:
            result.lose(f"tag {name!r} is listed more than once; the first row was used")
            continue
        plans[name] = CodePlan(stable_guid("taguette", name), name,
                               description=(row[dcol].strip() or None) if dcol is not None else None)
        if pcol is not None and row[pcol].strip():
            parents[name] = row[pcol].strip()
    for name, parent in parents.items():
        if parent in plans and parent != name:
            plans[name].parent = plans[parent].guid
        else:
            result.lose(f"tag {name!r} names a parent {parent!r} that is not in the file; imported at the top level")
    if "number of highlights" in header:
        result.note("highlight counts in the CSV are not imported (the highlights themselves are not in a codebook)")
    return list(plans.values()), result


def read_qc_yaml(data: bytes, where: str) -> tuple[list[CodePlan], ImportResult]:
    result = ImportResult(where)
    try:
        doc = yaml.safe_load(data.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ExchangeError(f"{where}: not valid YAML ({str(exc).splitlines()[0]}); fix the codebook file.") from None
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise ExchangeError(f"{where}: a qc codebook is a YAML list of codes; found a {type(doc).__name__}.")
    plans: list[CodePlan] = []
    seen: set[tuple[str, ...]] = set()  # paths: a name may repeat under different parents
    names: set[str] = set()

    def walk(items, parent, path):
        for item in items or []:
            if isinstance(item, (str, int, float)):
                name, children = str(item), []
            elif isinstance(item, dict) and len(item) == 1:
                (name, children), = item.items()
                name = str(name)
                if children is not None and not isinstance(children, list):
                    raise ExchangeError(f"{where}: the children of {name!r} must be a list.")
            else:
                raise ExchangeError(f"{where}: {item!r} under {'/'.join(path) or 'the top'} is neither a code "
                                    "name nor a one-key mapping of a code to its children.")
            name = name.strip()
            full = tuple(path + [name])
            if full in seen:
                result.lose(f"code {'/'.join(full)!r} appears more than once under the same parent; kept the first")
                continue
            seen.add(full)
            g = stable_guid("qc", name) if name not in names else stable_guid("qc", *full)
            names.add(name)
            plans.append(CodePlan(g, name, parent))
            walk(children, g, path + [name])

    walk(doc, None, [])
    return plans, result


def import_taguette_codebook(path: str | os.PathLike, project: Project) -> ImportResult:
    """Import a Taguette codebook (CSV or XLSX export) into ``project``."""
    path = Path(path)
    plans, result = read_taguette_csv(_read(path), str(path))
    return import_codebook_plans(project, plans, [], result, "import:taguette")


def import_qc_codebook(path: str | os.PathLike, project: Project) -> ImportResult:
    """Import a qc (qualitative-coding) ``codebook.yaml`` into ``project``."""
    path = Path(path)
    plans, result = read_qc_yaml(_read(path), str(path))
    return import_codebook_plans(project, plans, [], result, "import:qc")

"""sp_realist.report: Word/HTML/Markdown reports and reproducible studies (``sp-realist report``, ``build``).

>>> from sp_realist.report import ReportSettings, build_report_model, write_report   # doctest: +SKIP
>>> model = build_report_model(project, ReportSettings(title="Evaluation"))         # doctest: +SKIP
>>> write_report(project, "report.docx", model=model)                                # doctest: +SKIP

See docs/reports.md.
"""

from __future__ import annotations

from .api import REPORT_FORMATS, ReportResult, write_report, write_reports
from .model import (Figure, Quote, Ref, ReportModel, ReportSettings, Statement, Table, ThemeSection, TheorySection,
                    build_report_model)
from .study import BuildResult, Study, build_study, load_study

__all__ = [
    "REPORT_FORMATS", "ReportResult", "write_report", "write_reports", "Figure", "Quote", "Ref", "ReportModel",
    "ReportSettings", "Statement", "Table", "ThemeSection", "TheorySection", "build_report_model", "BuildResult",
    "Study", "build_study", "load_study",
]

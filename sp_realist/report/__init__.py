"""sp_realist.report: Word/HTML/Markdown reports and reproducible studies (``sp-realist report``, ``build``).

>>> from sp_realist.report import ReportSettings, build_report_model, write_report   # doctest: +SKIP
>>> model = build_report_model(project, ReportSettings(title="Evaluation"))         # doctest: +SKIP
>>> write_report(project, "report.docx", model=model)                                # doctest: +SKIP

See docs/reports.md.
"""

from __future__ import annotations

from ..lazy import lazy_exports

# Imported from their modules on first use, so that `sp-realist report --help` (this package holds the
# commands) imports none of them.
__getattr__ = lazy_exports(__name__, {
    ".api": ("REPORT_FORMATS", "ReportResult", "write_report", "write_reports"),
    ".model": ("Figure", "Quote", "Ref", "ReportModel", "ReportSettings", "Statement", "Table", "ThemeSection",
        "TheorySection", "build_report_model"),
    ".study": ("BuildResult", "Study", "build_study", "load_study"),
})

__all__ = [
    "REPORT_FORMATS", "ReportResult", "write_report", "write_reports", "Figure", "Quote", "Ref", "ReportModel",
    "ReportSettings", "Statement", "Table", "ThemeSection", "TheorySection", "build_report_model", "BuildResult",
    "Study", "build_study", "load_study",
]

"""sp_realist.cmoc: realist analysis.

Wong & Papoutsi's six-step appraisal of excerpts, CMOCs with their evidence
and relations, mid-range theories with a refinement history, theory and
analysis files (YAML), if/then statements and the report's CMOC table,
saturation, candidate CMOCs, the programme-theory graph and triangulation.
"""

from ..lazy import lazy_exports

# Imported from their modules on first use, so that `sp-realist cmoc --help` (this package holds the
# commands) imports none of them.
__getattr__ = lazy_exports(__name__, {
    ".analysisfile": ("export_analysis_yaml", "import_analysis_yaml"),
    ".appraisal": ("appraisal_history", "appraisal_queue", "appraisal_summary", "concept_box", "list_appraisals",
        "set_appraisal", "show_appraisal"),
    ".cmocs": ("add_cmoc", "cmoc_detail", "cmoc_evidence", "delete_cmoc", "edit_cmoc", "link_evidence",
        "list_cmocs", "relate_cmocs", "relations_frame", "unlink_evidence", "unrelate_cmocs"),
    ".graph": ("export_graph", "programme_graph", "read_graph", "render_graph"),
    ".ifthen": ("cmoc_table", "ifthen_statements"),
    ".saturation": ("SaturationVerdict", "get_saturation_rule", "plot_saturation_curve", "saturation_curve",
        "saturation_table", "saturation_verdicts", "set_saturation_rule"),
    ".suggest": ("accept_suggestion", "reject_suggestion", "suggest_cmocs"),
    ".theories": ("add_member", "add_theory", "edit_theory", "list_theories", "record_change", "remove_member",
        "theory_detail", "theory_history"),
    ".theoryfile": ("export_theories_yaml", "import_theories_yaml"),
    ".triangulate": ("triangulation", "triangulation_long"),
})

__all__ = [
    "add_cmoc", "edit_cmoc", "delete_cmoc", "list_cmocs", "cmoc_detail", "cmoc_evidence", "link_evidence",
    "unlink_evidence", "relate_cmocs", "unrelate_cmocs", "relations_frame",
    "add_theory", "edit_theory", "add_member", "remove_member", "record_change", "list_theories",
    "theory_detail", "theory_history",
    "import_theories_yaml", "export_theories_yaml",
    "ifthen_statements", "cmoc_table",
    "set_appraisal", "show_appraisal", "appraisal_history", "appraisal_queue", "concept_box", "list_appraisals",
    "appraisal_summary", "import_analysis_yaml", "export_analysis_yaml",
    "saturation_table", "saturation_verdicts", "SaturationVerdict", "saturation_curve", "plot_saturation_curve", "get_saturation_rule", "set_saturation_rule",
    "suggest_cmocs", "accept_suggestion", "reject_suggestion",
    "programme_graph", "export_graph", "read_graph", "render_graph",
    "triangulation", "triangulation_long",
]

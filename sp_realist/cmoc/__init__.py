"""sp_realist.cmoc: realist analysis.

Wong & Papoutsi's six-step appraisal of excerpts, CMOCs with their evidence
and relations, mid-range theories with a refinement history, theory and
analysis files (YAML), if/then statements and the report's CMOC table,
saturation, candidate CMOCs, the programme-theory graph and triangulation.
"""

from .cmocs import (add_cmoc, cmoc_detail, cmoc_evidence, delete_cmoc, edit_cmoc, link_evidence, list_cmocs,
                    relate_cmocs, relations_frame, unlink_evidence, unrelate_cmocs)
from .ifthen import cmoc_table, ifthen_statements
from .theories import (add_member, add_theory, edit_theory, list_theories, record_change, remove_member,
                       theory_detail, theory_history)
from .theoryfile import export_theories_yaml, import_theories_yaml

__all__ = [
    "add_cmoc", "edit_cmoc", "delete_cmoc", "list_cmocs", "cmoc_detail", "cmoc_evidence", "link_evidence",
    "unlink_evidence", "relate_cmocs", "unrelate_cmocs", "relations_frame",
    "add_theory", "edit_theory", "add_member", "remove_member", "record_change", "list_theories",
    "theory_detail", "theory_history",
    "import_theories_yaml", "export_theories_yaml",
    "ifthen_statements", "cmoc_table",
]

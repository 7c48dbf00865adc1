"""Thematic coding: codebook, codings, autocoding, memos, retrieval, matrices, themes, agreement.

The functions most callers need are re-exported here::

    from sp_realist.coding import import_codebook_yaml, import_codings_yaml, autocode
    from sp_realist.coding import coded_excerpts, theme_table
"""

from __future__ import annotations

from ..lazy import lazy_exports

# relative module -> the names it exports, imported on first use: `sp-realist frequencies` loads the
# retrieval modules only, not autocoding, agreement or YAML
__getattr__ = lazy_exports(__name__, {
    ".agreement": ("AgreementResult", "agreement", "cohen_kappa", "krippendorff_alpha", "percent_agreement"),
    ".autocode": ("add_rule", "autocode", "autocode_summary", "delete_rule", "remove_rule_codings",
                  "rules_frame"),
    ".codebook": ("add_code", "codebook_tree", "delete_code", "edit_code", "export_codebook_csv",
                  "export_codebook_yaml", "import_codebook_csv", "import_codebook_yaml", "merge_codes",
                  "move_code", "rename_code"),
    ".codings": ("add_coding", "export_codings_yaml", "import_codings_yaml", "list_codings", "remove_codings"),
    ".memos": ("add_memo", "edit_memo", "export_memos", "list_memos"),
    ".retrieval": ("coded_excerpts", "cooccurrence", "framework_matrix", "frequencies"),
    ".themes": ("add_theme", "assign_codes", "delete_theme", "edit_theme", "list_themes", "theme_summaries",
                "theme_table"),
})

__all__ = [
    "AgreementResult", "agreement", "cohen_kappa", "krippendorff_alpha", "percent_agreement",
    "add_rule", "autocode", "autocode_summary", "delete_rule", "remove_rule_codings", "rules_frame",
    "add_code", "codebook_tree", "delete_code", "edit_code", "export_codebook_csv", "export_codebook_yaml",
    "import_codebook_csv", "import_codebook_yaml", "merge_codes", "move_code", "rename_code",
    "add_coding", "export_codings_yaml", "import_codings_yaml", "list_codings", "remove_codings",
    "add_memo", "edit_memo", "export_memos", "list_memos",
    "coded_excerpts", "cooccurrence", "framework_matrix", "frequencies",
    "add_theme", "assign_codes", "delete_theme", "edit_theme", "list_themes", "theme_summaries", "theme_table",
]

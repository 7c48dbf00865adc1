"""sp_realist.privacy: pseudonym keys, anonymise / reverse, NER suggestions, leak audit.

>>> from sp_realist.privacy import load_key, anonymise, audit_paths   # doctest: +SKIP
>>> key = load_key("../key.yaml")
>>> result = anonymise(project, key, dry_run=True)    # result.replacements is a DataFrame
>>> audit_paths(["reports/"], key)                    # empty DataFrame: nothing leaked

Nothing else in sp_realist reads a pseudonym key; the project stores only its SHA-256 and salted
fingerprints of its names, with which every output of the project is checked (:mod:`.guard`).
"""

from ..lazy import lazy_exports

# relative module -> the names it exports, imported on first use: every command checks its output
# (.guard), and only `anonymise`, `audit` and the key commands need the rest
__getattr__ = lazy_exports(__name__, {
    ".anonymise": ("AnonymiseResult", "anonymise", "applied_keys", "check_key_matches", "project_key_required",
                   "reverse", "runs_frame", "status_frame"),
    ".audit": ("assert_no_leaks", "audit_paths"),
    ".detect": ("Detector", "Match"),
    ".guard": ("activated", "check_frame", "check_text", "checked_path", "leak_finder"),
    ".keyfile": ("Key", "KeyEntry", "append_entries", "key_from_entries", "load_key"),
    ".ner": ("add_suggestions_to_key", "suggest"),
    ".patterns": ("find_identifiers", "suggest_identifiers"),
})

__all__ = [
    "AnonymiseResult", "anonymise", "reverse", "applied_keys", "check_key_matches", "project_key_required",
    "runs_frame", "status_frame", "audit_paths", "assert_no_leaks", "Detector", "Match", "Key", "KeyEntry", "append_entries",
    "key_from_entries", "load_key", "suggest", "add_suggestions_to_key", "activated", "check_frame", "check_text",
    "checked_path", "leak_finder", "find_identifiers", "suggest_identifiers",
]

"""Team work on SQLite copies: who is working (:mod:`sp_realist.identity`), merging another copy
(:mod:`.merge`, which owns the ``merge_conflicts`` table), adjudicating two coders
(:mod:`sp_realist.coding.adjudication`) and the audit log as a table (:mod:`.auditlog`)."""

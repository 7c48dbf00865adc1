"""The project schema, written with SQLAlchemy Core.

Every table lives in one :class:`~sqlalchemy.MetaData`.  Queries elsewhere are
built with SQLAlchemy expressions only, so the same code runs on SQLite (the
default, one ``*.sprealist`` file) and on PostgreSQL.

Character offsets (``start``/``end``) are always positions in the owning
source's plain ``text`` (Python ``str`` indices, i.e. Unicode code points),
half-open ``[start, end)``, as in REFI-QDA's PlainTextSelection.  Any code that
changes a source's text (anonymisation) must move every span that points into
it: segments, codings and excerpts.

``SCHEMA_VERSION`` is bumped whenever the schema changes; add a migration to
``sp_realist.store.MIGRATIONS`` at the same time.
"""

from __future__ import annotations

import re

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

SCHEMA_VERSION = 11

metadata = MetaData()

# Timestamps are ISO-8601 UTC strings ("2026-11-23T19:30:00+00:00"): portable
# across back ends and readable in exports.
TS = String(40)

SOURCE_KINDS = ("interview", "focus_group", "diary", "field_notes", "document")

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- participants ---------------------------------------------------------
participants = Table(
    "participants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(100), nullable=False, unique=True),  # e.g. "S1 DK1"
    Column("role", String(200)),
    Column("site", String(100)),
    Column("guid", String(36)),  # stable REFI-QDA Case GUID once exported or imported
    Column("created_at", TS, nullable=False),
)

participant_attributes = Table(
    "participant_attributes",
    metadata,
    Column("participant_id", Integer, ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("value", Text),
)

# --- sources and segments -------------------------------------------------
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("checksum", String(64), nullable=False),  # sha256 of the file bytes it came from
    Column("text", Text, nullable=False),
    Column("date", String(40)),  # ISO date of the interview / diary entry when known
    Column("file_name", String(500)),  # the file it was read from (base name)
    # the absolute, resolved path of that file when it was ingested (schema 2); ingest matches a
    # file to its sources by it.  NULL for imported sources (QDPX) and for sources ingested before
    # schema 2 (matched by file_name; their path is recorded when their file is ingested again unchanged)
    Column("file_path", String(1000)),
    Column("file_format", String(20)),  # txt, md, docx, vtt, srt, qdpx ...
    Column("entry_index", Integer),  # position of a diary entry inside its file (0-based)
    Column("participant_id", Integer, ForeignKey("participants.id", ondelete="SET NULL")),
    Column("guid", String(36)),  # stable REFI-QDA GUID once exported or imported
    Column("created_at", TS, nullable=False),
    Column("ingest_order", Integer, nullable=False),
    CheckConstraint(
        "kind IN ('interview','focus_group','diary','field_notes','document')", name="ck_sources_kind"
    ),
)

source_attributes = Table(
    "source_attributes",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(200), primary_key=True),  # site, wave, health_board, surgery ...
    Column("value", Text),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("ord", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("speaker", String(200)),
    Column("section", String(200)),  # Driscoll: "What?", "So what?", "Now what?"; docx headings
    Column("kind", String(40), nullable=False),  # turn | paragraph | section | preamble | heading | cue
    Column("start_time", Float),  # seconds, for VTT/SRT
    Column("end_time", Float),
    Column("participant_id", Integer, ForeignKey("participants.id", ondelete="SET NULL")),
    UniqueConstraint("source_id", "ord", name="uq_segments_source_ord"),
    CheckConstraint('"start" <= "end"', name="ck_segments_span"),
)
Index("ix_segments_source", segments.c.source_id, segments.c.start)
# ingest looks sources up by checksum, file path and file name, and add_source takes max(ingest_order)
Index("ix_sources_checksum", sources.c.checksum)
Index("ix_sources_file_name", sources.c.file_name)
Index("ix_sources_file_path", sources.c.file_path)
Index("ix_sources_ingest_order", sources.c.ingest_order)

# --- codebook and codings (coding issue) ---------------------------------
codes = Table(
    "codes",
    metadata,
    Column("id", Integer, primary_key=True),
    # unique among its siblings only (schema 8): a code is identified by its path in the tree
    Column("name", String(300), nullable=False),
    Column("parent_id", Integer, ForeignKey("codes.id", ondelete="RESTRICT")),
    Column("definition", Text),
    Column("inclusion", Text),
    Column("exclusion", Text),
    Column("example", Text),
    Column("colour", String(20)),
    Column("ord", Integer, nullable=False, default=0),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
    # REFI-QDA isCodable (schema 6): False for a folder that only groups codes; NULL (older rows) is codable
    Column("codable", Boolean),
)
# Sibling names are unique; top-level codes (parent_id NULL) count as siblings of parent 0, which no code has
# (ids start at 1).  An expression index, portable to SQLite (3.9+) and PostgreSQL (schema 8).
Index("uq_codes_sibling_name", func.coalesce(codes.c.parent_id, 0), codes.c.name, unique=True)

code_rules = Table(
    "code_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code_id", Integer, ForeignKey("codes.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(300), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # keywords | phrases | pattern
    Column("spec", Text, nullable=False),  # JSON: list of strings or a Matcher pattern list
    Column("unit", String(20), nullable=False, default="sentence"),  # match | sentence | segment | section
    Column("lemma", Boolean, nullable=False, default=False),
)

codings = Table(
    "codings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code_id", Integer, ForeignKey("codes.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("coder", String(200), nullable=False),
    Column("origin", String(300), nullable=False, default="manual"),  # manual | rule:<name> | import:<tool>
    Column("memo", Text),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
    # schema 6: the GUID of the REFI-QDA PlainTextSelection an imported coding came in (kept on export), and
    # False when the file gave the coding no time (created_at is then the import time and is not exported)
    Column("selection_guid", String(36)),
    Column("dated", Boolean),
    UniqueConstraint("code_id", "source_id", "start", "end", "coder", name="uq_codings_span"),
    CheckConstraint('"start" < "end"', name="ck_codings_span"),
)
Index("ix_codings_source", codings.c.source_id, codings.c.start)
Index("ix_codings_code", codings.c.code_id)

# --- digests: counts kept per source for the matrices (schema 11) --------------------------------------
# Derived from codings, segments and sources, never edited: sp_realist.coding.digests owns both tables and
# fills them for the sources a query needs; the triggers of DIGEST_TRIGGERS delete a source's digest (and,
# by the cascade, its tallies) in the same transaction as any change to its codings, segments or row.
source_digests = Table(
    "source_digests",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("tallied", Boolean, nullable=False, default=False),  # coding_tallies holds this source's rows
    Column("overlap", LargeBinary),  # int32 triples (code a <= code b, overlapping pairs); a == b: codings
    Column("segment", LargeBinary),  # int32 triples (code a <= code b, segments both touch)
)

coding_tallies = Table(
    "coding_tallies",
    metadata,
    Column("source_id", Integer, ForeignKey("source_digests.source_id", ondelete="CASCADE"), nullable=False),
    Column("code_id", Integer, nullable=False),
    Column("participant_id", Integer),  # who said it (sp_realist.attribution's rule); NULL: nobody
    # the speaker label of the segment holding the codings' start ('' for none); NULL: in no segment
    Column("turn", String(200)),
    Column("n", Integer, nullable=False),  # codings, rule-and-person duplicates counted once
    Column("n_all", Integer, nullable=False),  # every coding
    Column("n_rule", Integer, nullable=False),  # autocodings (origin rule:NAME) among them
)
# the source first (the cascade from source_digests), then what the queries group by, then what they add up:
# SQLite reads the tallies from the index alone, in the order of the GROUP BY
Index("ix_coding_tallies_source", *(coding_tallies.c[k] for k in ("source_id", "participant_id", "turn", "code_id",
                                                                   "n", "n_all", "n_rule")))
DIGEST_TABLES = (source_digests, coding_tallies)

memos = Table(
    "memos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("target_type", String(20), nullable=False),  # project | code | source | coding | cmoc | theory | participant | theme
    Column("target_id", Integer),  # NULL for project memos
    Column("title", String(300)),
    Column("text", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # marked for the report (schema 7): a memo on a theory then appears in that theory's section; NULL = no
    Column("in_report", Boolean),
)
Index("ix_memos_target", memos.c.target_type, memos.c.target_id)

themes = Table(
    "themes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False, unique=True),
    Column("parent_id", Integer, ForeignKey("themes.id", ondelete="CASCADE")),
    Column("description", Text),
    Column("phase", String(20), nullable=False, default="initial"),  # initial | searching | reviewing | defining | named
    Column("ord", Integer, nullable=False, default=0),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
)

theme_codes = Table(
    "theme_codes",
    metadata,
    Column("theme_id", Integer, ForeignKey("themes.id", ondelete="CASCADE"), primary_key=True),
    Column("code_id", Integer, ForeignKey("codes.id", ondelete="CASCADE"), primary_key=True),
)

# --- people and source sets kept from REFI-QDA (schema 6, exchange issue) ---
# Users an imported project declares, with or without codings or notes (coders and memo authors are
# stored by name elsewhere; this keeps the others and every user's GUID). Written by sp_realist.exchange.common.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("guid", String(36)),
)

# Named sets of sources (REFI-QDA Sets of MemberSource). Written by sp_realist.sources.
source_sets = Table(
    "source_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False, unique=True),
    Column("description", Text),
    Column("guid", String(36)),
)

source_set_members = Table(
    "source_set_members",
    metadata,
    Column("set_id", Integer, ForeignKey("source_sets.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
)

EXCHANGE_TABLES = (users, source_sets, source_set_members)

# --- realist analysis (cmoc issue) ---------------------------------------
# An excerpt is a span of a source that analysis refers to: a coded span or a
# segment.  Appraisals and CMOC evidence point at excerpts, so both survive
# re-coding, and anonymisation moves them with the text.
excerpts = Table(
    "excerpts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    # schema 8: the GUID of the REFI-QDA PlainTextSelection (without codings) an excerpt came in, kept on export,
    # and False when the file gave it no time (created_at is then the import time and is not exported)
    Column("guid", String(36)),
    Column("dated", Boolean),
    UniqueConstraint("source_id", "start", "end", name="uq_excerpts_span"),
    CheckConstraint('"start" < "end"', name="ck_excerpts_span"),
)

theories = Table(
    "theories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(50), nullable=False, unique=True),  # "T1"
    Column("title", String(500), nullable=False),
    Column("description", Text),
    Column("questions", Text),  # JSON list, e.g. ["Q2", "Q3", "Q4"]
    Column("ord", Integer, nullable=False, default=0),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

cmocs = Table(
    "cmocs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(50), nullable=False, unique=True),  # "T1.2"
    Column("context", Text),
    Column("mechanism_resource", Text),
    Column("mechanism_response", Text),
    Column("outcome", Text),
    Column("status", String(20), nullable=False, default="partial"),  # partial | complete
    Column("confidence", String(20)),  # high | moderate | low
    Column("memo", Text),
    Column("ifthen", Text),  # the CMOC's own if/then wording, used instead of the template (schema 5)
    Column("ord", Integer, nullable=False, default=0),
    Column("guid", String(36)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

theory_cmocs = Table(
    "theory_cmocs",
    metadata,
    Column("theory_id", Integer, ForeignKey("theories.id", ondelete="CASCADE"), primary_key=True),
    Column("cmoc_id", Integer, ForeignKey("cmocs.id", ondelete="CASCADE"), primary_key=True),
    Column("ord", Integer, nullable=False, default=0),
)

theory_history = Table(
    "theory_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("theory_id", Integer, ForeignKey("theories.id", ondelete="CASCADE"), nullable=False),
    Column("at", TS, nullable=False),
    Column("author", String(200)),
    Column("change", Text, nullable=False),
    Column("reason", Text),
    Column("evidence", Text),  # JSON list of excerpt ids
)

cmoc_evidence = Table(
    "cmoc_evidence",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cmoc_id", Integer, ForeignKey("cmocs.id", ondelete="CASCADE"), nullable=False),
    Column("excerpt_id", Integer, ForeignKey("excerpts.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(20), nullable=False, default="supports"),  # supports | refutes
    Column("component", String(30)),  # context | mechanism_resource | mechanism_response | outcome
    Column("analyst", String(200)),
    Column("note", Text),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("cmoc_id", "excerpt_id", "role", name="uq_cmoc_evidence"),
)

cmoc_relations = Table(
    "cmoc_relations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("from_id", Integer, ForeignKey("cmocs.id", ondelete="CASCADE"), nullable=False),
    Column("to_id", Integer, ForeignKey("cmocs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # refines | contradicts | chains
    Column("note", Text),
    UniqueConstraint("from_id", "to_id", "kind", name="uq_cmoc_relations"),
)

appraisals = Table(
    "appraisals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("excerpt_id", Integer, ForeignKey("excerpts.id", ondelete="CASCADE"), nullable=False),
    Column("analyst", String(200), nullable=False),
    Column("relevance", String(20)),  # relevant | not_relevant | concept_box
    Column("trust", String(20)),  # high | moderate | low
    Column("trust_rationale", Text),
    Column("interpretation", String(30)),  # context | mechanism_resource | mechanism_response | outcome | unclear
    Column("cmoc_judgement", String(20)),  # new | supports | refines | refutes
    Column("cmoc_id", Integer, ForeignKey("cmocs.id", ondelete="SET NULL")),
    Column("theory_id", Integer, ForeignKey("theories.id", ondelete="SET NULL")),
    Column("theory_change", Boolean),
    Column("theory_note", Text),
    Column("saturation_note", Text),
    Column("note", Text),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("excerpt_id", "analyst", name="uq_appraisals_excerpt_analyst"),
)

appraisal_history = Table(
    "appraisal_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("appraisal_id", Integer, ForeignKey("appraisals.id", ondelete="CASCADE"), nullable=False),
    Column("at", TS, nullable=False),
    Column("analyst", String(200), nullable=False),
    Column("snapshot", Text, nullable=False),  # JSON of the appraisal row before the change
)

# --- team work (schema 10) ---------------------------------------------------
# A consensus decision on one unit (sentence or segment) two coders disagreed on, for one code.  The unit is
# an excerpt, so anonymisation and corrected transcripts move it with the text.  The consensus codings
# themselves are codings by the coder "consensus"; a decision not to code leaves none, so the decision is kept
# here.  Written only by sp_realist.coding.adjudication.
ADJUDICATION_DECISIONS = ("A", "B", "both", "none")

adjudications = Table(
    "adjudications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code_id", Integer, ForeignKey("codes.id", ondelete="CASCADE"), nullable=False),
    Column("excerpt_id", Integer, ForeignKey("excerpts.id", ondelete="CASCADE"), nullable=False),
    Column("unit", String(20), nullable=False),  # sentence | segment
    Column("coder_a", String(200), nullable=False),
    Column("coder_b", String(200), nullable=False),
    Column("decision", String(20), nullable=False),  # A | B | both | none
    Column("coded", Boolean, nullable=False),  # the consensus codes the unit
    Column("decided_by", String(200)),
    Column("decided_at", TS, nullable=False),
    UniqueConstraint("code_id", "excerpt_id", "coder_a", "coder_b", name="uq_adjudications_unit"),
    CheckConstraint("decision IN ('A','B','both','none')", name="ck_adjudications_decision"),
)

# What a merge of another copy could not bring in without overwriting this copy (a CMOC edited differently,
# a code moved, a theory changed): both values are kept here for the analyst, who keeps ours or takes
# theirs.  Written only by sp_realist.team.merge.
MERGE_CONFLICT_STATUSES = ("open", "ours", "theirs")

merge_conflicts = Table(
    "merge_conflicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),  # code | cmoc | theory | theme | appraisal
    Column("key", String(1000), nullable=False),  # the code's path, CMOC or theory key, theme name ...
    Column("field", String(100), nullable=False),  # the column (or "parent" for a code's place)
    Column("ours", Text),  # JSON: this copy's value when the merge ran
    Column("theirs", Text),  # JSON: the other copy's value
    Column("origin", Text, nullable=False),  # the other copy (its file or URL)
    Column("status", String(20), nullable=False, default="open"),  # open | ours | theirs
    Column("created_at", TS, nullable=False),
    Column("resolved_by", String(200)),
    Column("resolved_at", TS),
    CheckConstraint("status IN ('open','ours','theirs')", name="ck_merge_conflicts_status"),
)

TEAM_TABLES = (adjudications, merge_conflicts)

# --- summary-of-findings tables (Tables 7.1-7.4; owner: sp_realist.cmoc.findings) ----
# Evaluation questions x evidence strands ("Meta-narrative", "Thematic synthesis",
# "Reflective diaries"), rows by topic; each cell holds findings the analyst wrote,
# linked by name to themes, theories, CMOCs, codes or non-transcript evidence items.
# Links are kept by name (not foreign keys) so that deleting or merging a theme or a
# code never silently drops them: a link whose target is gone is reported.
FINDING_PARTS = ("cell", "worked_well", "could_improve")
FINDING_LINK_TYPES = ("theme", "theory", "cmoc", "code", "evidence")

finding_strands = Table(
    "finding_strands",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),  # "Thematic synthesis"
    Column("ord", Integer, nullable=False, default=0),
)

evidence_items = Table(
    "evidence_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),  # "MN1"
    Column("kind", String(200), nullable=False),  # literature, project documentation ... (the data-source tag)
    Column("citation", Text, nullable=False),  # a reference, or a description of the document
    Column("note", Text),
    Column("ord", Integer, nullable=False, default=0),
)

finding_questions = Table(
    "finding_questions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(50), nullable=False, unique=True),  # "Q1"
    Column("text", Text),
    Column("worked_well_heading", String(300)),  # default "What worked well"
    Column("could_improve_heading", String(300)),  # default "What could be improved"
    Column("overall", Text),
    Column("ord", Integer, nullable=False, default=0),
)

finding_topics = Table(
    "finding_topics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_id", Integer, ForeignKey("finding_questions.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(300), nullable=False),  # "Role of the link worker"
    Column("ord", Integer, nullable=False, default=0),
    UniqueConstraint("question_id", "name", name="uq_finding_topics"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_id", Integer, ForeignKey("finding_questions.id", ondelete="CASCADE"), nullable=False),
    Column("part", String(20), nullable=False),  # cell | worked_well | could_improve
    Column("topic_id", Integer, ForeignKey("finding_topics.id", ondelete="CASCADE")),  # cells only
    Column("strand_id", Integer, ForeignKey("finding_strands.id", ondelete="RESTRICT")),  # cells only
    Column("text", Text, nullable=False),
    Column("ord", Integer, nullable=False, default=0),
    CheckConstraint("part IN ('cell','worked_well','could_improve')", name="ck_findings_part"),
)
Index("ix_findings_question", findings.c.question_id, findings.c.part)

finding_links = Table(
    "finding_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
    Column("target_type", String(20), nullable=False),  # theme | theory | cmoc | code | evidence
    Column("target", String(300), nullable=False),  # theme name, theory key, CMOC key, code name, evidence key
    Column("ord", Integer, nullable=False, default=0),
    UniqueConstraint("finding_id", "target_type", "target", name="uq_finding_links"),
    CheckConstraint("target_type IN ('theme','theory','cmoc','code','evidence')", name="ck_finding_links_type"),
)

#: The tables of the summary-of-findings area, in creation order (schema 3).
FINDINGS_TABLES = (finding_strands, evidence_items, finding_questions, finding_topics, findings, finding_links)

# --- privacy (anonymisation issue) ---------------------------------------
anonymisation_runs = Table(
    "anonymisation_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_sha256", String(64), nullable=False),  # which key was applied; never the key itself
    Column("direction", String(10), nullable=False),  # apply | reverse
    Column("at", TS, nullable=False),
    Column("replacements", Integer, nullable=False),
    Column("sources", Text),  # JSON list of source ids
)

# One layer of anonymisation of one source (the latest layer is undone first).
# ``sealed`` is encrypted with the pseudonym key (sp_realist.privacy.sealing):
# the project never holds a replaced original in the clear.  NULL when the run
# was --irreversible.
anonymisation_records = Table(
    "anonymisation_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("anonymisation_runs.id", ondelete="CASCADE"), nullable=False),
    # NULL: the project-wide text (codebook, CMOCs, theories, appraisal notes, memos, audit log)
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE")),
    Column("key_sha256", String(64), nullable=False),
    Column("text_sha256", String(64), nullable=False),  # of the text this layer produced
    Column("replacements", Integer, nullable=False),
    Column("sealed", Text),
)
Index("ix_anonymisation_records_source", anonymisation_records.c.source_id)

# --- orphans (re-ingest of a corrected file) -------------------------------
# A coding or excerpt that ``ingest --replace`` could not re-anchor onto the
# corrected text.  Nothing is deleted: the row and everything that hung on it
# (coding memos; an excerpt's appraisals, their history and CMOC evidence) are
# kept here as JSON until the user re-attaches or discards it
# (``sp_realist.reanchor`` owns this table).
orphans = Table(
    "orphans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # coding | excerpt
    Column("quote", Text, nullable=False),  # the words the span held in the old text
    Column("old_start", Integer, nullable=False),
    Column("old_end", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the row and what hung on it
    Column("created_at", TS, nullable=False),
)
Index("ix_orphans_source", orphans.c.source_id)

# --- templates kept in the project (schema 9; owner: sp_realist.project_templates) -----------
# The Jinja2 templates a project renders its report and if/then statements with (a study's templates/, or
# 'sp-realist templates add'), stored in the project so that it renders the same wherever it is opened: a
# project file copied elsewhere, or a project on a PostgreSQL server.  ``name`` is the template's path inside
# its folder ("ifthen.j2", "partials/head.j2"), the name templates include each other by.
project_templates = Table(
    "project_templates",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("source", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# --- audit log -------------------------------------------------------------
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", TS, nullable=False),
    Column("actor", String(200)),
    Column("action", String(100), nullable=False),  # ingest, code.add, cmoc.edit, anonymise ...
    Column("target", String(300)),
    Column("detail", Text),  # JSON
)


# --- text limits and control characters (one validation layer) --------------
# Every String/Text column is wrapped (below) in a type that checks each value bound for it, on every
# back end alike, before the database sees it: a value longer than the column's limit, or holding a control
# character, is refused with :class:`TextValueError` (one sentence naming the field and the limit).  PostgreSQL
# would otherwise raise a raw DataError (and refuses NUL in any text), while SQLite stores anything.
# Allowed control characters: tab, line feed and carriage return in every name and note; a source's text (and
# an orphan's quote, cut from it) is the participant's document as written, so it keeps every character but NUL
# (which PostgreSQL cannot store) and unpaired surrogates (not Unicode): form feed (a page break), vertical tab
# (Word's manual line break in exported text), U+0085 and the other controls stay as the file had them.
from sqlalchemy.exc import DontWrapMixin  # noqa: E402
from sqlalchemy.types import TypeDecorator  # noqa: E402

from .errors import SpRealistError  # noqa: E402


class TextValueError(SpRealistError, DontWrapMixin):
    """A text value a column refuses (too long, or a control character).  SQLAlchemy passes it through unwrapped."""


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_SOURCE = re.compile("[\x00\ud800-\udfff]")

#: How a table's rows are named in messages ("The code name is ...").
_ROW_NAMES = {
    "meta": "project setting", "participants": "participant", "participant_attributes": "participant attribute",
    "sources": "source", "source_attributes": "source attribute", "segments": "segment", "codes": "code",
    "code_rules": "autocoding rule", "codings": "coding", "memos": "memo", "themes": "theme", "users": "user",
    "source_sets": "source set", "excerpts": "excerpt", "theories": "theory", "cmocs": "CMOC",
    "theory_history": "theory history", "cmoc_evidence": "CMOC evidence", "cmoc_relations": "CMOC relation",
    "appraisals": "appraisal", "appraisal_history": "appraisal history", "finding_strands": "evidence strand",
    "evidence_items": "evidence item", "finding_questions": "evaluation question", "finding_topics": "finding topic",
    "findings": "finding", "finding_links": "finding link", "anonymisation_runs": "anonymisation run",
    "anonymisation_records": "anonymisation record", "orphans": "orphan", "audit_log": "audit log",
    "project_templates": "stored template",
}
#: Columns named otherwise than "<row> <column>".
_FIELD_NAMES = {("codings", "coder"): "coder name", ("codings", "origin"): "coding origin",
                ("cmoc_evidence", "analyst"): "evidence analyst name", ("appraisals", "analyst"): "analyst name"}
#: Columns holding a source's text as written: only NUL and unpaired surrogates are refused there.
_SOURCE_TEXT = {("sources", "text"), ("orphans", "quote")}


def field_label(table: str, column: str) -> str:
    """``("codes", "name")`` -> ``"code name"`` (how messages name a column)."""
    return _FIELD_NAMES.get((table, column)) or f"{_ROW_NAMES.get(table, table)} {column.replace('_', ' ')}"


def check_text(value, field: str, limit: int | None, pattern=_CONTROL):
    """``value`` unchanged if it fits ``field`` (at most ``limit`` characters, no refused control character);
    :class:`TextValueError` otherwise.  Non-strings pass through (the column's own type handles them)."""
    if not isinstance(value, str):
        return value
    if limit is not None and len(value) > limit:
        raise TextValueError(f"The {field} is {len(value):,} characters long, over its limit of {limit:,} "
                             "characters; shorten it.")
    if pattern is _CONTROL_SOURCE and value.isascii() and "\x00" not in value:
        return value  # isascii() is a flag lookup and "in" a memchr: a whole transcript in microseconds
    bad = pattern.search(value)
    if bad is not None:
        ch = bad.group()
        what = "an unpaired surrogate (not valid Unicode)" if "\ud800" <= ch <= "\udfff" else "a control character"
        kept = "" if pattern is _CONTROL_SOURCE else " (only tab and line breaks are kept)"
        raise TextValueError(f"The {field} contains {what}, U+{ord(ch):04X} at character {bad.start() + 1:,}; "
                             f"remove it{kept}.")
    return value


class CheckedText(TypeDecorator):
    """A String/Text column that checks every value bound for it with :func:`check_text`.

    ``base`` is the column's declared type (its DDL is unchanged: ``VARCHAR(n)`` or ``TEXT``)."""

    impl = String
    cache_ok = True

    def __init__(self, base: String, field: str, source_text: bool = False):
        super().__init__()
        self.impl = base
        self.base = base
        self.field = field
        self.source_text = source_text
        self.limit = getattr(base, "length", None)
        self._pattern = _CONTROL_SOURCE if source_text else _CONTROL

    def process_bind_param(self, value, dialect):
        return check_text(value, self.field, self.limit, self._pattern)

    @property
    def python_type(self):
        return str


def is_text(column) -> bool:
    """Whether ``column`` holds text (a String or Text column, checked or not)."""
    kind = column.type.base if isinstance(column.type, CheckedText) else column.type
    return isinstance(kind, (String, Text))


def is_timestamp(column) -> bool:
    """Whether ``column`` is one of the ISO-8601 timestamp columns (type :data:`TS`)."""
    return (column.type.base if isinstance(column.type, CheckedText) else column.type) is TS


def check_column(column, value):
    """Check ``value`` for ``column`` as binding it would (for writers that bypass SQLAlchemy's bind
    processing, such as the bulk coding insert)."""
    kind = column.type
    if isinstance(kind, CheckedText):
        return check_text(value, kind.field, kind.limit, kind._pattern)
    return value


def check_column_values(column, values) -> None:
    """:func:`check_column` for many values of one column (a bulk writer's): each distinct value once, and the
    strings together in one pass (their longest length, one search of them joined by line feeds, which no
    pattern refuses); only when that finds something is each checked alone, so the message names the first
    refused value in the order given, as checking them one by one would."""
    kind = column.type
    if not isinstance(kind, CheckedText):
        return
    strings = [v for v in dict.fromkeys(values) if isinstance(v, str)]
    if not strings:
        return
    if (kind.limit is not None and max(map(len, strings)) > kind.limit) \
            or kind._pattern.search("\n".join(strings)) is not None:
        for value in strings:
            check_text(value, kind.field, kind.limit, kind._pattern)


def _wrap_text_columns() -> None:
    for table in metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, (String, Text)) and not isinstance(column.type, CheckedText):
                column.type = CheckedText(column.type, field_label(table.name, column.name),
                                          (table.name, column.name) in _SOURCE_TEXT)


_wrap_text_columns()


# --- the triggers that keep digests honest ----------------------------------------------------------------
# (table, its source id column): a change to a row of these makes its source's digest stale
DIGEST_WATCHED = (("codings", "source_id"), ("segments", "source_id"), ("sources", "id"))
# PostgreSQL: the triggers' functions, by the column naming the source (one each: their SQL is static, so the
# server plans it once, where a statement built at run time is planned at every call)
PG_DIGEST_FUNCTIONS = {"source_id": "sp_realist_digest_stale", "id": "sp_realist_digest_stale_source"}


def _digest_trigger_ddl(dialect: str, schema: str | None = None) -> list[str]:
    """CREATE statements of the triggers that delete the digest (``source_digests``, and with it the source's
    ``coding_tallies``) of every source whose codings, segments or own row an INSERT, UPDATE or DELETE touches,
    inside the statement's transaction: a digest that exists is never older than what it counts.

    SQLite: a row trigger each (foreign-key actions, ``ON DELETE CASCADE`` / ``SET NULL``, fire them too).
    PostgreSQL: statement triggers with transition tables (one DELETE per statement, not per row) calling a
    ``SECURITY DEFINER`` function, so a coder whose role may not write the digests still clears them; the
    function's ``search_path`` is the project's ``schema`` (then ``pg_temp``, as a definer function's must
    be), fixed when it is made."""
    out = []
    if dialect == "sqlite":
        for table, col in DIGEST_WATCHED:
            ops = {"insert": [f"NEW.{col}"], "delete": [f"OLD.{col}"],
                   "update": [f"OLD.{col}", f"NEW.{col}"]}
            if table == "sources":
                ops = {"update": ops["update"]}  # a new source has no digest; a deleted one cascades
            for op, refs in ops.items():
                cond = f"source_id = {refs[0]}" if len(refs) == 1 else f"source_id IN ({', '.join(refs)})"
                out.append(f"CREATE TRIGGER IF NOT EXISTS sp_realist_digest_{table}_{op} AFTER {op.upper()} ON "
                           f"{table} BEGIN DELETE FROM source_digests WHERE {cond}; END")
        return out
    if dialect == "postgresql":
        path = '"' + (schema or "public").replace('"', '""') + '"'
        for col, function in PG_DIGEST_FUNCTIONS.items():
            out.append(f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    DELETE FROM source_digests WHERE source_id IN (SELECT {col} FROM new_rows);
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM source_digests WHERE source_id IN (SELECT {col} FROM old_rows);
  ELSE
    DELETE FROM source_digests WHERE source_id IN (SELECT {col} FROM new_rows UNION SELECT {col} FROM old_rows);
  END IF;
  RETURN NULL;
END $$""")
        for table, col in DIGEST_WATCHED:
            ops = {"insert": "REFERENCING NEW TABLE AS new_rows", "delete": "REFERENCING OLD TABLE AS old_rows",
                   "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"}
            if table == "sources":
                ops = {"update": ops["update"]}
            for op, ref in ops.items():
                name = f"sp_realist_digest_{table}_{op}"
                out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                out.append(f"CREATE TRIGGER {name} AFTER {op.upper()} ON {table} {ref} FOR EACH STATEMENT "
                           f"EXECUTE FUNCTION {PG_DIGEST_FUNCTIONS[col]}()")
        return out
    return out


DIGEST_TRIGGER_NAMES = tuple(f"sp_realist_digest_{table}_{op}" for table, _col in DIGEST_WATCHED
                             for op in (("update",) if table == "sources" else ("insert", "update", "delete")))


def digest_triggers_present(conn) -> bool:
    """Whether every digest trigger is in ``conn``'s store (on PostgreSQL, on its current schema's tables): a
    project file edited by a program that dropped them cannot be trusted to have kept its digests."""
    from sqlalchemy import text

    if conn.dialect.name == "sqlite":
        q = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        q = ("SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
             "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")
    else:
        return False
    return set(DIGEST_TRIGGER_NAMES) <= {r[0] for r in conn.execute(text(q))}


def create_digest_triggers(conn) -> None:
    """Create the digest triggers (see :func:`_digest_trigger_ddl`) in ``conn``'s store (on PostgreSQL in its
    current schema); idempotent."""
    from sqlalchemy import text

    schema = conn.exec_driver_sql("SELECT current_schema()").scalar() if conn.dialect.name == "postgresql" else None
    for ddl in _digest_trigger_ddl(conn.dialect.name, schema):
        conn.execute(text(ddl))  # text(): the driver's placeholders (psycopg's %) are escaped for it


def drop_digest_function(conn, schema: str | None = None) -> None:
    """PostgreSQL: drop the digest triggers' functions (of ``schema``, else of the current schema) and with
    them the triggers; nothing elsewhere."""
    if conn.dialect.name != "postgresql":
        return
    for function in PG_DIGEST_FUNCTIONS.values():
        name = function if schema is None else f"{conn.dialect.identifier_preparer.quote(schema)}.{function}"
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}() CASCADE")

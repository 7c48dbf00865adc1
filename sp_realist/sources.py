"""Low-level, shared operations on sources, segments and participants.

Ingest, REFI-QDA import and the tests all create sources through
:func:`add_source`, so the invariants live in one place:

* segments are ordered, contiguous and non-overlapping, and concatenate back
  to the source's text exactly (the first starts at 0, the last ends at
  ``len(text)``);
* everything for one source is written in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from . import schema as S
from .errors import NotFoundError, SpRealistError, did_you_mean
from .rows import Rows
from .store import Project, insert_ignoring, insert_many, next_ordinal, now

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Segment:
    """A span of a source's text: ``text[start:end]``."""

    start: int
    end: int
    kind: str = "paragraph"  # turn | paragraph | section | preamble | heading | cue
    speaker: str | None = None
    section: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    participant_code: str | None = None


@dataclass
class SourceDraft:
    """Everything needed to store one source (one transcript or one diary entry)."""

    name: str
    kind: str
    text: str
    segments: list[Segment]
    checksum: str
    date: str | None = None
    file_name: str | None = None
    file_path: str | None = None  # absolute resolved path of the ingested file (None: imported)
    file_format: str | None = None
    entry_index: int | None = None
    participant_code: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    guid: str | None = None  # a REFI-QDA GUID kept from an import
    created_at: str | None = None  # the time an imported file gives (default: now)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_segments(text: str, segments: Sequence[Segment], name: str = "source") -> None:
    """Raise unless ``segments`` tile ``text`` exactly, in order."""
    pos = 0
    for i, seg in enumerate(segments):
        if seg.start != pos or seg.end < seg.start:
            raise SpRealistError(
                f"Internal error: segment {i} of {name} spans {seg.start}:{seg.end} but should start at {pos}; "
                "please report this with the file."
            )
        pos = seg.end
    if pos != len(text):
        raise SpRealistError(
            f"Internal error: the segments of {name} end at {pos}, not at the end of the text ({len(text)})."
        )


def ensure_participant(conn: Connection, code: str, role: str | None = None, site: str | None = None,
                       attributes: dict[str, str] | None = None) -> int:
    """The id of participant ``code``, created if missing; fills role/site only where empty."""
    code = " ".join(code.split())
    row = conn.execute(select(S.participants).where(S.participants.c.code == code)).mappings().first()
    if row is None:  # the unique code decides: a participant another writer just added is used, not added again
        conn.execute(insert_ignoring(conn, S.participants, ["code"]).values(
            code=code, role=role, site=site, created_at=now()))
        row = conn.execute(select(S.participants).where(S.participants.c.code == code)).mappings().one()
    pid = row["id"]
    values = {}
    if role and not row["role"]:
        values["role"] = role
    if site and not row["site"]:
        values["site"] = site
    if values:
        conn.execute(update(S.participants).where(S.participants.c.id == pid).values(**values))
    for k, v in (attributes or {}).items():
        set_attribute(conn, "participant", pid, k, v)
    return pid


def keep_participant_guid(conn: Connection, participant_id: int, guid: str) -> bool:
    """Give a participant an imported Case's GUID unless it has one already or another participant holds
    it; True if it was given."""
    p = S.participants.c
    if conn.execute(select(p.id).where(p.guid == guid)).first():
        return False
    return bool(conn.execute(update(S.participants).where(p.id == participant_id).where(p.guid.is_(None))
                             .values(guid=guid)).rowcount)


def link_source_participant(conn: Connection, source_id: int, participant_id: int) -> bool:
    """Make ``participant_id`` the source's participant unless it already has one; True if the source
    belongs to that participant afterwards."""
    s = S.sources.c
    conn.execute(update(S.sources).where(s.id == source_id).where(s.participant_id.is_(None))
                 .values(participant_id=participant_id))
    return conn.execute(select(s.participant_id).where(s.id == source_id)).scalar() == participant_id


def set_attribute(conn: Connection, entity: str, entity_id: int, name: str, value: Any) -> None:
    """Set one attribute of a source or participant (insert or replace)."""
    table, col = {
        "source": (S.source_attributes, S.source_attributes.c.source_id),
        "participant": (S.participant_attributes, S.participant_attributes.c.participant_id),
    }[entity]
    conn.execute(delete(table).where(and_(col == entity_id, table.c.name == name)))
    if value is not None:
        conn.execute(insert(table).values({col.key: entity_id, "name": name, "value": str(value)}))


def add_source_set(conn: Connection, name: str, source_ids: Iterable[int], *, description: str | None = None,
                   guid: str | None = None) -> int:
    """Add the sources to the named source set (created if new; the ``source_sets`` and
    ``source_set_members`` tables are written here only).  Returns 1 if the set was created, else 0."""
    ss, m = S.source_sets.c, S.source_set_members.c
    row = conn.execute(select(ss.id).where(ss.name == name)).first()
    created = row is None
    set_id = (conn.execute(insert(S.source_sets).values(name=name, description=description, guid=guid))
              .inserted_primary_key[0] if created else row[0])
    have = {r[0] for r in conn.execute(select(m.source_id).where(m.set_id == set_id))}
    rows = [{"set_id": set_id, "source_id": sid} for sid in dict.fromkeys(source_ids) if sid not in have]
    if rows:
        conn.execute(insert(S.source_set_members), rows)
    return int(created)


def source_exists(conn: Connection, name: str) -> dict | None:
    row = conn.execute(select(S.sources).where(S.sources.c.name == name)).mappings().first()
    return dict(row) if row else None


def _check_draft(draft: SourceDraft) -> None:
    if draft.kind not in S.SOURCE_KINDS:
        raise SpRealistError(
            f"{draft.name}: kind {draft.kind!r} is not one of {', '.join(S.SOURCE_KINDS)}."
        )
    check_segments(draft.text, draft.segments, draft.name)


def _draft_participant(conn: Connection, draft: SourceDraft) -> int | None:
    if draft.participant_code:
        return ensure_participant(conn, draft.participant_code, site=draft.attributes.get("site"))
    return None


_SEGMENT_COLUMNS = ("source_id", "ord", "start", "end", "speaker", "section", "kind", "start_time", "end_time",
                    "participant_id")


def _insert_segments(conn: Connection, source_id: int, draft: SourceDraft) -> None:
    site = draft.attributes.get("site")
    rows = []
    speaker_ids: dict[str, int] = {}
    for i, seg in enumerate(draft.segments):
        pid = None
        if seg.participant_code:
            if seg.participant_code not in speaker_ids:
                speaker_ids[seg.participant_code] = ensure_participant(conn, seg.participant_code, site=site)
            pid = speaker_ids[seg.participant_code]
        rows.append((source_id, i, seg.start, seg.end, seg.speaker, seg.section, seg.kind, seg.start_time,
                     seg.end_time, pid))
    insert_many(conn, S.segments, _SEGMENT_COLUMNS, rows)


# Statements built once: ingest runs them for every file, and building one costs more than SQLite's work.
_INSERT_SOURCE = insert(S.sources)
_NAME_TAKEN = select(S.sources.c.id).where(S.sources.c.name == bindparam("name"))
_NAME_TAKEN_BY_OTHER = _NAME_TAKEN.where(S.sources.c.id != bindparam("exclude_id"))


def add_source(conn: Connection, draft: SourceDraft) -> int:
    """Insert one source with its segments and attributes; return its id."""
    _check_draft(draft)
    participant_id = _draft_participant(conn, draft)
    order = next_ordinal(conn, S.sources.c.ingest_order)
    sid = conn.execute(_INSERT_SOURCE, dict(
        name=draft.name, kind=draft.kind, checksum=draft.checksum, text=draft.text, date=draft.date,
        file_name=draft.file_name, file_path=draft.file_path, file_format=draft.file_format,
        entry_index=draft.entry_index, participant_id=participant_id, created_at=draft.created_at or now(),
        ingest_order=order, guid=draft.guid,
    )).inserted_primary_key[0]
    _insert_segments(conn, sid, draft)
    for k, v in draft.attributes.items():
        set_attribute(conn, "source", sid, k, v)
    return sid


def replace_source_content(conn: Connection, source_id: int, draft: SourceDraft) -> None:
    """Give an existing source a corrected file's text, segments and facts.

    The row (id, ingest order, creation time) stays, so whatever points at the
    source keeps pointing at it; attributes from the file are set over the
    existing ones.  Spans into the text must already have been moved
    (:mod:`sp_realist.reanchor`).
    """
    _check_draft(draft)
    conn.execute(delete(S.segments).where(S.segments.c.source_id == source_id))
    conn.execute(update(S.sources).where(S.sources.c.id == source_id).values(
        name=draft.name, kind=draft.kind, checksum=draft.checksum, text=draft.text, date=draft.date,
        file_name=draft.file_name, file_path=draft.file_path, file_format=draft.file_format,
        entry_index=draft.entry_index, participant_id=_draft_participant(conn, draft)))
    _insert_segments(conn, source_id, draft)
    for k, v in draft.attributes.items():
        set_attribute(conn, "source", source_id, k, v)


def unique_source_name(conn: Connection, name: str, taken: set[str] | None = None,
                       exclude_id: int | None = None) -> str:
    """``name``, or ``name #2``, ``#3``... if a source (other than ``exclude_id``) or ``taken`` has it.

    Exact-name lookups only (the unique index on ``sources.name``), so the cost
    does not grow with the size of the project.
    """
    taken = taken or set()

    def is_taken(candidate: str) -> bool:
        if candidate in taken:
            return True
        if exclude_id is None:
            return conn.execute(_NAME_TAKEN, {"name": candidate}).first() is not None
        return conn.execute(_NAME_TAKEN_BY_OTHER, {"name": candidate, "exclude_id": exclude_id}).first() is not None

    if not is_taken(name):
        return name
    n = 2
    while is_taken(f"{name} #{n}"):
        n += 1
    return f"{name} #{n}"


def delete_source(conn: Connection, source_id: int) -> None:
    """Delete a source and everything that points into it (segments, codings, excerpts...)."""
    for table in (S.segments, S.codings, S.source_attributes, S.orphans):
        conn.execute(delete(table).where(table.c.source_id == source_id))
    excerpt_ids = select(S.excerpts.c.id).where(S.excerpts.c.source_id == source_id)
    conn.execute(delete(S.cmoc_evidence).where(S.cmoc_evidence.c.excerpt_id.in_(excerpt_ids)))
    conn.execute(delete(S.appraisal_history).where(S.appraisal_history.c.appraisal_id.in_(
        select(S.appraisals.c.id).where(S.appraisals.c.excerpt_id.in_(excerpt_ids)))))
    conn.execute(delete(S.appraisals).where(S.appraisals.c.excerpt_id.in_(excerpt_ids)))
    conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "excerpt", S.memos.c.target_id.in_(excerpt_ids))))
    conn.execute(delete(S.excerpts).where(S.excerpts.c.source_id == source_id))
    conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "source", S.memos.c.target_id == source_id)))
    conn.execute(delete(S.sources).where(S.sources.c.id == source_id))


@dataclass(frozen=True)
class SourceDependents:
    """What goes with a source when it is removed."""

    source: str
    segments: int
    codings: int
    excerpts: int
    appraisals: int
    evidence_links: int
    memos: int
    orphans: int

    def describe(self) -> str:
        parts = [f"{n} {what}" for n, what in (
            (self.codings, "coding(s)"), (self.excerpts, "excerpt(s)"), (self.appraisals, "appraisal(s)"),
            (self.evidence_links, "CMOC evidence link(s)"), (self.memos, "memo(s)"), (self.orphans, "orphan(s)"))
            if n]
        return ", ".join(parts) if parts else "no codings or analysis"


def source_dependents(conn: Connection, source_id: int) -> SourceDependents:
    """Count what points into a source (for confirming its removal)."""
    def count(table, *where) -> int:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    excerpt_ids = select(S.excerpts.c.id).where(S.excerpts.c.source_id == source_id)
    coding_ids = select(S.codings.c.id).where(S.codings.c.source_id == source_id)
    name = conn.execute(select(S.sources.c.name).where(S.sources.c.id == source_id)).scalar_one()
    m = S.memos.c
    return SourceDependents(
        source=name,
        segments=count(S.segments, S.segments.c.source_id == source_id),
        codings=count(S.codings, S.codings.c.source_id == source_id),
        excerpts=count(S.excerpts, S.excerpts.c.source_id == source_id),
        appraisals=count(S.appraisals, S.appraisals.c.excerpt_id.in_(excerpt_ids)),
        evidence_links=count(S.cmoc_evidence, S.cmoc_evidence.c.excerpt_id.in_(excerpt_ids)),
        memos=count(S.memos, ((m.target_type == "source") & (m.target_id == source_id))
                    | ((m.target_type == "coding") & m.target_id.in_(coding_ids))
                    | ((m.target_type == "excerpt") & m.target_id.in_(excerpt_ids))),
        orphans=count(S.orphans, S.orphans.c.source_id == source_id),
    )


def removal_preview(project: Project, *, source: str | int) -> SourceDependents:
    """What :func:`remove_source` would delete with ``source``."""
    with project.connect() as conn:
        return source_dependents(conn, resolve_source(conn, source)["id"])


def remove_source(project: Project, *, source: str | int, actor: str | None = None) -> SourceDependents:
    """Delete a source and everything that points into it, in one transaction; return what went."""
    with project.begin() as conn:
        sid = resolve_source(conn, source)["id"]
        gone = source_dependents(conn, sid)
        coding_ids = [r[0] for r in conn.execute(select(S.codings.c.id).where(S.codings.c.source_id == sid))]
        if coding_ids:
            conn.execute(delete(S.memos).where(S.memos.c.target_type == "coding", S.memos.c.target_id.in_(coding_ids)))
        delete_source(conn, sid)
        project.log(conn, "source.remove", gone.source, actor=actor, codings=gone.codings,
                    excerpts=gone.excerpts, appraisals=gone.appraisals, evidence=gone.evidence_links,
                    memos=gone.memos, orphans=gone.orphans)
    return gone


def resolve_source(conn: Connection, ref: str | int) -> dict:
    """A source row by id (int or digits) or exact name; clear error otherwise."""
    from .numbers import db_id

    row = None
    if db_id(ref) is not None:
        row = conn.execute(select(S.sources).where(S.sources.c.id == db_id(ref))).mappings().first()
    if row is None:
        row = conn.execute(select(S.sources).where(S.sources.c.name == str(ref))).mappings().first()
    if row is None:
        hint = did_you_mean(ref, [r[0] for r in conn.execute(select(S.sources.c.name))],
                            "see 'sp-realist sources list'.")
        raise NotFoundError(f"No source named {ref!r} in the project; {hint}")
    return dict(row)


def source_attributes(conn: Connection, source_id: int) -> dict[str, str]:
    rows = conn.execute(
        select(S.source_attributes.c.name, S.source_attributes.c.value).where(
            S.source_attributes.c.source_id == source_id)
    ).all()
    return {r[0]: r[1] for r in rows}


def attribution_map(conn: Connection) -> dict[int, str]:
    """source id -> the code a quote from it is attributed to, e.g. ``"S1 DK1"``.

    The source's participant code when it has one, else its ``site`` attribute
    plus "unidentified", else the source name.
    """
    p = S.participants
    rows = conn.execute(
        select(S.sources.c.id, S.sources.c.name, p.c.code).select_from(
            S.sources.outerjoin(p, S.sources.c.participant_id == p.c.id))
    ).all()
    sites = dict(conn.execute(
        select(S.source_attributes.c.source_id, S.source_attributes.c.value).where(
            S.source_attributes.c.name == "site")
    ).all())
    return {sid: _source_who(name, code, sites.get(sid)) for sid, name, code in rows}


def _source_who(name: str, code: str | None, site: str | None) -> str:
    """:func:`attribution_map`'s rule for one source: its participant's code, else its site
    "unidentified", else its name."""
    if code:
        return code
    if site:
        return f"{site}, unidentified"
    return name


# --- attribution of spans (quotes, codings, evidence) -------------------------
#: Speaker labels taken to be the researcher's side of an interview or focus group
#: unless the project's ``interviewer_speakers`` setting says otherwise.
DEFAULT_INTERVIEWER_SPEAKERS = ("Interviewer", "Facilitator", "Moderator", "Researcher")
INTERVIEWER_SETTING = "interviewer_speakers"

_KIND_LABELS = {"interview": "interview", "focus_group": "focus group", "diary": "diary",
                "field_notes": "field notes", "document": "document"}

#: How a quote from a source of a kind is cited: ``{who}`` is the participant (or speaker) it is
#: attributed to.  A field note is the researcher's record, not the participant's own words.
#: Projects change or add wordings with the setting ``attribution_formats``.
DEFAULT_ATTRIBUTION_FORMATS = {"field_notes": "field notes, {who}"}
ATTRIBUTION_SETTING = "attribution_formats"


def validate_attribution_formats(value: Any, where: str = ATTRIBUTION_SETTING) -> dict[str, str]:
    """``{kind: "wording with {who}"}``; raise with one sentence otherwise."""
    if not isinstance(value, dict):
        raise SpRealistError(f"{where}: must be a mapping of source kind to wording, e.g. "
                             "{field_notes: 'field notes, {who}'}.")
    out = {}
    for kind, fmt in value.items():
        if kind not in S.SOURCE_KINDS:
            raise SpRealistError(f"{where}: {kind!r} is not a source kind; use {', '.join(S.SOURCE_KINDS)}.")
        if not isinstance(fmt, str) or fmt.count("{who}") != 1:
            raise SpRealistError(f"{where}: the wording for {kind} must contain {{who}} once, "
                                 "e.g. 'field notes, {who}'.")
        out[kind] = fmt
    return out


def attribution_formats(conn: Connection) -> dict[str, str]:
    """The project's citation wording per source kind (defaults, then the setting's)."""
    row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == f"setting:{ATTRIBUTION_SETTING}")).first()
    formats = dict(DEFAULT_ATTRIBUTION_FORMATS)
    if row is not None:
        try:
            value = json.loads(row[0])
        except ValueError:
            value = None
        formats.update(validate_attribution_formats(value, f"setting {ATTRIBUTION_SETTING}"))
    return formats


def attribution_wordings(project: Project) -> pd.DataFrame:
    """How quotes are cited per source kind: ``kind``, ``wording``, ``example``, ``set`` (project or default)."""
    import pandas as pd

    with project.connect() as conn:
        formats = attribution_formats(conn)
    custom = project.get_setting(ATTRIBUTION_SETTING, {}) or {}
    rows = [{"kind": kind, "wording": formats.get(kind, "{who}"),
             "example": "(" + formats.get(kind, "{who}").replace("{who}", "S1 LW4") + ")",
             "set": "project" if kind in custom else "default"} for kind in S.SOURCE_KINDS]
    return pd.DataFrame(rows, columns=["kind", "wording", "example", "set"])


def set_attribution_wording(project: Project, *, kind: str, wording: str | None,
                            actor: str | None = None) -> None:
    """Cite quotes from sources of ``kind`` as ``wording`` (with ``{who}``); ``None`` restores the default."""
    with project.begin() as conn:
        row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == f"setting:{ATTRIBUTION_SETTING}")).first()
        custom = validate_attribution_formats(json.loads(row[0]) if row else {}, f"setting {ATTRIBUTION_SETTING}")
        if wording is None:
            if kind not in S.SOURCE_KINDS:
                validate_attribution_formats({kind: "{who}"})
            custom.pop(kind, None)
        else:
            custom.update(validate_attribution_formats({kind: wording}))
        project.set_setting(ATTRIBUTION_SETTING, custom, conn=conn)
        project.log(conn, "setting.attribution", kind, actor=actor, wording=wording)


def interviewer_speakers(conn: Connection) -> tuple[str, ...]:
    """The project's interviewer speaker labels (setting ``interviewer_speakers``, else the defaults)."""
    row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == f"setting:{INTERVIEWER_SETTING}")).first()
    if row is None:
        return DEFAULT_INTERVIEWER_SPEAKERS
    try:
        value = json.loads(row[0])
    except ValueError:
        value = None
    return tuple(validate_interviewer_speakers(value, f"setting {INTERVIEWER_SETTING}"))


def validate_interviewer_speakers(value: Any, where: str = "interviewer_speakers") -> list[str]:
    """A list of speaker labels (a single string is one label); raise otherwise."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpRealistError(f"{where}: must be a list of speaker labels such as [Interviewer, Facilitator].")
    return [" ".join(v.split()) for v in value]


def speaker_key(label: str | None) -> str:
    """A speaker label compared case- and white-space-insensitively."""
    return " ".join(str(label or "").split()).casefold()


def is_interviewer_label(label: str | None, interviewers: Iterable[str]) -> bool:
    """True when ``label`` is one of ``interviewers`` (case-insensitive), also numbered or
    qualified: "Interviewer", "interviewer 2", "Interviewer (RA)", "Facilitator-1"."""
    key = speaker_key(label)
    if not key:
        return False
    for name in interviewers:
        n = speaker_key(name)
        if key == n or (key.startswith(n) and not key[len(n)].isalnum()):
            return True
    return False


@dataclass
class SpanAttributor:
    """Attributes positions in sources to the people who said them (see :func:`span_attributions`).

    Loads the segments of ``source_ids`` (all sources when None) once; calling
    it with ``(source_id, start)`` is then a binary search.
    """

    conn: Connection
    source_ids: Iterable[int] | None = None
    # only these segments (their sources' among them), when the caller knows which hold its positions: the
    # segment holding a position is the non-empty one with the greatest start at or before it, and with the
    # holders alone the binary search finds the same one (sp_realist.coding.retrieval.coding_frame)
    segment_ids: Iterable[int] | None = None

    def __post_init__(self):
        conn = self.conn
        src = S.sources
        rows = conn.execute(select(src.c.id, src.c.name, src.c.kind, src.c.participant_id)).all()
        self._sources = {r[0]: (r[1], r[2], r[3]) for r in rows}
        formats = attribution_formats(conn)
        self._wording = {r[0]: formats[r[2]] for r in rows if r[2] in formats}
        self._codes = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        self._sites = dict(conn.execute(
            select(S.source_attributes.c.source_id, S.source_attributes.c.value).where(
                S.source_attributes.c.name == "site")).all())
        # attribution_map's rule, from the rows read here (one read of the sources, not two)
        self.base = {sid: _source_who(name, self._codes.get(pid) if pid is not None else None, self._sites.get(sid))
                     for sid, (name, _kind, pid) in self._sources.items()}
        self.interviewers = interviewer_speakers(conn)
        self._segs: dict[int, list[tuple[int, int, str | None, int | None]]] = {}
        self._starts: dict[int, list[int]] = {}
        self._arrays: dict[int, tuple] = {}
        self._loaded: set[int] = set()  # sources whose segments are read
        self.load_segments(self.source_ids, self.segment_ids)

    def load_segments(self, source_ids: Iterable[int] | None, segment_ids: Iterable[int] | None = None) -> None:
        """Read the speaker segments of ``source_ids`` (every source's when None; only ``segment_ids`` among
        them when given), so that positions in them can be attributed; an attributor made for some sources
        can take on more."""
        seg = S.segments
        # Only segments that change the answer are kept: a mapped speaker or an unmapped label, and not empty
        # (an empty segment holds no position: it does not hide the turn that starts where it is).
        q = (select(seg.c.source_id, seg.c.start, seg.c.end, seg.c.speaker, seg.c.participant_id)
             .where((seg.c.participant_id.is_not(None)) | (func.coalesce(seg.c.speaker, "") != ""),
                    seg.c.start < seg.c.end)
             .order_by(seg.c.source_id, seg.c.start))
        if segment_ids is not None:
            wanted = sorted({int(i) for i in segment_ids})
            for i in range(0, len(wanted), 500):
                self._add_segments(q.where(seg.c.id.in_(wanted[i:i + 500])))
            self._starts = {sid: [s[0] for s in segs] for sid, segs in self._segs.items()}
            return
        if source_ids is None:
            batches: list = [None]
        else:
            ids = sorted(set(source_ids) - set(self._loaded))
            batches = [ids[i:i + 500] for i in range(0, len(ids), 500)]
        for batch in batches:
            if batch is not None and not batch:
                continue
            self._add_segments(q if batch is None else q.where(seg.c.source_id.in_(batch)))
            self._loaded.update(batch or self._sources)
        self._starts = {sid: [s[0] for s in segs] for sid, segs in self._segs.items()}

    def _add_segments(self, query) -> None:
        result = self.conn.execute(query)  # the DBAPI's rows at once: a Row object each costs more than the search
        cursor = getattr(result, "cursor", None)
        rows = cursor.fetchall() if cursor is not None else result.all()
        result.close()
        for sid, a, b, speaker, pid in rows:
            self._segs.setdefault(sid, []).append((a, b, speaker, pid))

    def segment(self, source_id: int, start: int) -> tuple[int, int, str | None, int | None] | None:
        """``(start, end, speaker, participant_id)`` of the speaker segment holding ``start``, if any."""
        import bisect

        starts = self._starts.get(source_id)
        if not starts:
            return None
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0:
            seg = self._segs[source_id][i]
            if seg[0] <= start < seg[1]:
                return seg
        return None

    def source_label(self, source_id: int) -> str:
        """How a source is named after an unmapped speaker: "S2 PM1 interview", "S2 focus group"."""
        name, kind, pid = self._sources.get(source_id, (str(source_id), None, None))
        kind_label = _KIND_LABELS.get(kind or "", (kind or "source").replace("_", " "))
        code = self._codes.get(pid) if pid is not None else None
        if code:
            return f"{code} {kind_label}"
        if self._sites.get(source_id):
            return f"{self._sites[source_id]} {kind_label}"
        return name

    def _cited(self, source_id: int, who: str) -> str:
        """``who`` in the wording of the source's kind ("field notes, S1 LW4"), if it has one."""
        wording = self._wording.get(source_id)
        return wording.replace("{who}", who) if wording else who

    def _segment_label(self, source_id: int, seg: tuple) -> str | None:
        _a, _b, speaker, pid = seg
        if pid is not None and self._codes.get(pid):
            return self._cited(source_id, self._codes[pid])
        if speaker and speaker.strip():
            return f"{' '.join(speaker.split())}, {self.source_label(source_id)}"
        return None

    def _source_fallback(self, source_id: int) -> str:
        if source_id in self.base:
            return self._cited(source_id, self.base[source_id])
        return self._sources.get(source_id, (str(source_id),))[0]

    def __call__(self, source_id: int, start: int) -> str:
        seg = self.segment(source_id, start)
        label = self._segment_label(source_id, seg) if seg is not None else None
        return label if label is not None else self._source_fallback(source_id)

    @staticmethod
    def _by_source(sids):
        """``(source id, indexes of its positions in sids)`` for each source among ``sids`` (a numpy array),
        in id order."""
        import numpy as np

        order = np.argsort(sids, kind="stable")
        uniq, first = np.unique(sids[order], return_index=True)
        ends = np.append(first[1:], len(order))
        for sid, a, b in zip(uniq.tolist(), first.tolist(), ends.tolist()):
            yield sid, order[a:b]

    def _holding(self, sid: int, p):
        """For positions ``p`` (a numpy array) in source ``sid``, which has segments: ``(kk, inside)``, the index
        of the last segment starting at or before each position, and whether the position lies inside it.
        The source's segment bounds are made into arrays once (with a slot per segment for its label)."""
        import numpy as np

        if sid not in self._arrays:
            segs = self._segs[sid]
            self._arrays[sid] = (np.array([seg[0] for seg in segs], dtype=np.int64),
                                 np.array([seg[1] for seg in segs], dtype=np.int64),
                                 np.full(len(segs), None, dtype=object))
        seg_starts, seg_ends, _labels = self._arrays[sid]
        k = np.searchsorted(seg_starts, p, side="right") - 1
        kk = np.maximum(k, 0)
        return kk, (k >= 0) & (p < seg_ends[kk]) & (p >= seg_starts[kk])

    def many(self, source_ids, starts) -> list[str]:
        """The attributions of many positions at once (arrays or lists of equal length)."""
        import numpy as np

        sids = np.asarray(source_ids, dtype=np.int64)
        pos = np.asarray(starts, dtype=np.int64)
        out = np.empty(len(sids), dtype=object)
        if not len(sids):
            return []
        for sid, idx in self._by_source(sids):
            fallback = self._source_fallback(sid)
            segs = self._segs.get(sid)
            if not segs:
                out[idx] = fallback
                continue
            kk, inside = self._holding(sid, pos[idx])
            labels = self._arrays[sid][2]  # worded for the segments hit, once each
            hit = kk[inside]
            for j in np.unique(hit).tolist():
                if labels[j] is None:
                    label = self._segment_label(sid, segs[j])
                    labels[j] = fallback if label is None else label
            res = np.full(len(idx), fallback, dtype=object)
            res[inside] = labels[hit]
            out[idx] = res
        return out.tolist()

    def is_interviewer(self, source_id: int, start: int) -> bool:
        """True when ``start`` lies in a turn of an interviewer speaker not mapped to a participant."""
        seg = self.segment(source_id, start)
        return bool(seg is not None and seg[3] is None and is_interviewer_label(seg[2], self.interviewers))


def span_attributions(conn: Connection, spans: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """``(source_id, start) -> attribution`` for many spans at once (a few queries in all).

    The rule, for the segment holding ``start``:

    * its speaker maps to a participant: that participant's code ("S1 LW1");
    * it has a speaker label that maps to no participant (an interviewer, a
      facilitator, an unnamed voice): the label qualified by the source,
      "Interviewer, S2 PM1 interview" (never the interviewee's bare code);
    * no speaker (diary sections, paragraphs): :func:`attribution_map`, the
      source's participant, else its site plus "unidentified", else its name.
    """
    spans = list(dict.fromkeys(spans))
    if not spans:
        return {}
    sids = [sid for sid, _ in spans]
    who = SpanAttributor(conn, set(sids)).many(sids, [start for _, start in spans])
    return dict(zip(spans, who))


def interviewer_spans(conn: Connection, spans: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The ``(source_id, start)`` of ``spans`` that lie in interviewer turns (see :class:`SpanAttributor`)."""
    spans = set(spans)
    if not spans:
        return set()
    who = SpanAttributor(conn, {sid for sid, _ in spans})
    return {s for s in spans if who.is_interviewer(*s)}


def source_rows(project: Project, *, kind: str | None = None, site: str | None = None,
                participant: str | None = None) -> Rows:
    """One row per source (id, name, kind, participant, date, characters, segments, then one column per
    attribute name), in ingest order; only those of ``kind``, with the ``site`` attribute ``site`` or of
    ``participant`` when given.  Plain rows, without pandas: what ``sp-realist sources list`` shows."""
    with project.connect() as conn:
        p = S.participants
        nseg = (select(S.segments.c.source_id, func.count().label("segments"))
                .group_by(S.segments.c.source_id).subquery())
        rows = conn.execute(
            select(S.sources.c.id, S.sources.c.name, S.sources.c.kind, p.c.code.label("participant"),
                   S.sources.c.date, func.length(S.sources.c.text).label("characters"),
                   func.coalesce(nseg.c.segments, 0).label("segments"))
            .select_from(S.sources.outerjoin(p, S.sources.c.participant_id == p.c.id)
                         .outerjoin(nseg, nseg.c.source_id == S.sources.c.id))
            .order_by(S.sources.c.ingest_order)
        ).all()
        attrs = conn.execute(select(S.source_attributes)).mappings().all()
    names = sorted({a["name"] for a in attrs})
    by_source: dict[int, dict[str, str]] = {}
    for a in attrs:
        by_source.setdefault(a["source_id"], {})[a["name"]] = a["value"]
    if participant:
        participant = " ".join(participant.split())
    out = []
    for row in rows:
        values = by_source.get(row.id, {})
        if ((kind and row.kind != kind) or (site and values.get("site") != site)
                or (participant and row.participant != participant)):
            continue
        out.append((*row, *(values.get(n) for n in names)))
    return Rows(["id", "name", "kind", "participant", "date", "characters", "segments", *names], out)


def sources_frame(project: Project) -> pd.DataFrame:
    """One row per source with its kind, participant, date, segment count and attributes."""
    return source_rows(project).frame()


def iter_batches(items: Iterable, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def locate_quote(text: str, quote: str, where: str = "source") -> tuple[int, int]:
    """The span of ``quote`` in ``text``: exact match first, then with runs of
    white space matched loosely.  The quote must occur exactly once.
    """
    import re

    quote = quote.strip()
    if not quote:
        raise SpRealistError(f"{where}: an empty quote cannot be located; give the exact words.")
    first = text.find(quote)
    if first >= 0:
        if text.find(quote, first + 1) >= 0:
            raise SpRealistError(
                f"{where}: the quote {quote[:60]!r} occurs more than once; lengthen it so it is unique."
            )
        return first, first + len(quote)
    pattern = r"\s+".join(re.escape(part) for part in quote.split())
    matches = list(re.finditer(pattern, text))
    if len(matches) == 1:
        return matches[0].start(), matches[0].end()
    if not matches:
        raise SpRealistError(f"{where}: the quote {quote[:60]!r} is not in the text; check its wording.")
    raise SpRealistError(f"{where}: the quote {quote[:60]!r} occurs more than once; lengthen it so it is unique.")


def locate_excerpt(conn: Connection, spec: dict, where: str = "") -> tuple[int, int, int]:
    """Resolve a file-format excerpt reference to ``(source_id, start, end)``.

    ``spec`` has ``source`` and one of ``quote``, ``span: [start, end]``,
    ``segment: N`` (0-based order) or ``section: NAME`` (the first segment with
    that section).  Used by every YAML importer (codings, analysis).
    """
    if "source" not in spec:
        raise SpRealistError(f"{where}: each excerpt needs a 'source'.")
    src = resolve_source(conn, spec["source"])
    text = src["text"]
    label = f"{where}{' ' if where else ''}(source {src['name']!r})"
    if spec.get("quote"):
        start, end = locate_quote(text, str(spec["quote"]), label)
    elif spec.get("span") is not None:
        try:
            start, end = (int(x) for x in spec["span"])
        except (TypeError, ValueError):
            raise SpRealistError(f"{label}: span must be [start, end].") from None
        if not 0 <= start < end <= len(text):
            raise SpRealistError(f"{label}: span {start}:{end} is outside the text (0:{len(text)}).")
    elif spec.get("segment") is not None or spec.get("section"):
        q = select(S.segments.c.start, S.segments.c.end).where(S.segments.c.source_id == src["id"])
        if spec.get("segment") is not None:
            from .numbers import db_int

            q = q.where(S.segments.c.ord == db_int(spec["segment"], label, "segment"))
        else:
            q = q.where(S.segments.c.section == str(spec["section"])).where(S.segments.c.kind != "heading")
        row = conn.execute(q.order_by(S.segments.c.ord)).first()
        if row is None:
            raise SpRealistError(f"{label}: no such segment or section ({spec.get('segment', spec.get('section'))}).")
        start, end = row
    else:
        raise SpRealistError(f"{where}: give a quote, a span, a segment or a section.")
    return src["id"], start, end


def get_or_create_excerpt(conn: Connection, source_id: int, start: int, end: int, *, guid: str | None = None,
                          created_at: str | None = None, dated: bool | None = None) -> int:
    """The id of the excerpt for this span, created if needed.  An import passes what its selection had: the
    GUID (kept on an existing excerpt without one) and time (``dated`` False: the file gave none)."""
    row = conn.execute(select(S.excerpts.c.id, S.excerpts.c.guid).where(and_(
        S.excerpts.c.source_id == source_id, S.excerpts.c.start == start, S.excerpts.c.end == end))).first()
    if row:
        if guid and not row[1]:
            conn.execute(update(S.excerpts).where(S.excerpts.c.id == row[0]).values(guid=guid))
        return row[0]
    conn.execute(insert_ignoring(conn, S.excerpts, ["source_id", "start", "end"]).values(
        source_id=source_id, start=start, end=end, created_at=created_at or now(), guid=guid, dated=dated))
    return conn.execute(select(S.excerpts.c.id).where(and_(
        S.excerpts.c.source_id == source_id, S.excerpts.c.start == start, S.excerpts.c.end == end))).scalar_one()

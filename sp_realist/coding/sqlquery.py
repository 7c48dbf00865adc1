"""The codings behind the matrices, as one SQL query (SQLAlchemy Core, portable to PostgreSQL).

:func:`coding_select` builds a SELECT of the codings of some codes with who
said each one (participant, role, site), any source or participant attribute
as a column, the ``filters`` as its WHERE clause and rule-and-person
duplicates left out (:func:`sp_realist.coding.retrieval.drop_rule_duplicates`'s
rule), so that frequencies, co-occurrence, the framework matrix, retrieval and
the theme table group, join and count in the database and read back only
what they show.

Participant attribution (:mod:`sp_realist.attribution`'s rule) is set-wise:
the segment holding a coding's start is the one with the greatest start at
or before it in the same source (one index seek per coding on
``ix_segments_source``), and the participant is then that segment's mapped
participant; nobody for a turn of an unmapped speaker (an interviewer, a
carer); else the source's participant.  Segments of one source never overlap
(ingest and import make them so), which is what makes "the greatest start at
or before" the same segment the binary search of
:class:`sp_realist.sources.SpanAttributor` finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, func, literal, null, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from .. import schema as S
from ..errors import SpRealistError
from ._common import CodeTree

# Columns every coding has (the names the pandas frame used); anything else is an attribute.
CODING_COLUMNS = ("coding_id", "code_id", "code", "source_id", "source", "kind", "date", "start", "end", "coder",
                  "origin", "memo", "participant", "role", "site", "attribution", "ingest_order")
HIDDEN = {"coding_id", "code_id", "source_id", "start", "end", "memo", "text", "ingest_order", "turn"}
# Columns that two codings of the same words with the same code can differ in (the rest follow from the span).
PER_CODING = ("coding_id", "coder", "origin", "memo")


def is_rule(origin) -> ColumnElement:
    """``origin`` starts with ``rule:`` (an autocoding); exact and case-sensitive, as ``str.startswith``."""
    return func.substr(origin, 1, 5) == "rule:"


def segment_holding(source_id, position) -> ColumnElement:
    """Scalar subquery: the id of the non-empty segment of ``source_id`` with the greatest start at or
    before ``position`` (one backwards step on the index ``ix_segments_source``)."""
    seg = S.segments.alias("hold")
    return (select(seg.c.id).where(seg.c.source_id == source_id, seg.c.start <= position, seg.c.start < seg.c.end)
            .order_by(seg.c.start.desc()).limit(1).scalar_subquery())


def attributed_participant(seg, source, inside) -> ColumnElement:
    """The participant id of a span in ``source`` whose start is in segment ``seg`` when ``inside`` holds
    (``seg`` outer-joined: :func:`segment_holding`): the segment's participant; none in an unmapped
    speaker's turn; else the source's participant."""
    return case((and_(inside, seg.c.participant_id.is_not(None)), seg.c.participant_id),
                (and_(inside, func.trim(func.coalesce(seg.c.speaker, "")) != ""), null()),
                else_=source.c.participant_id)


def attribute_names(conn: Connection) -> tuple[list[str], list[str]]:
    """Names of the participant attributes and of the source attributes in use."""
    p = [r[0] for r in conn.execute(select(S.participant_attributes.c.name).distinct())]
    s = [r[0] for r in conn.execute(select(S.source_attributes.c.name).distinct())]
    return sorted(p), sorted(s)


SOURCE_COLUMNS = ("source", "kind", "date", "ingest_order")
# What a coding can be grouped or filtered by that the digests' tallies do not keep.
NOT_TALLIED = ("coding_id", "coder", "origin", "memo", "start", "end", "attribution", "seg_id", "seg_start",
               "turn_speaker")
# What the digests' tallies can group and filter by (besides attributes): a coding's code, its source and
# the source's columns, its participant and theirs (sp_realist.coding.digests).
TALLY_COLUMNS = ("code_id", "code", "source_id", "source", "kind", "date", "ingest_order", "participant", "role",
                 "site", "participant_id", "turn")
# Columns that need the coding's participant (the segment holding its start).
ATTRIBUTED = ("participant", "role", "site", "participant_id", "seg_id", "seg_start", "turn_speaker", "turn")


@dataclass
class CodingQuery:
    """Builds the SELECT (see the module doc); :meth:`available` names what a caller may group or filter by.

    Only what the columns asked for and the filters need is joined: the segment lookup for participant,
    role, site and participant attributes; the source for its columns and attributes."""

    conn: Connection
    code_ids: list[int] | None = None
    filters: dict[str, Any] | None = None
    # only the codings of these sources (a digest being filled: sp_realist.coding.digests)
    source_ids: list[int] | None = None
    # read the digests' tallies (sp_realist.coding.digests) instead of the codings: a row per source, code and
    # participant with ``n`` codings; only for what :meth:`tallyable` allows
    tallied: bool = False
    # with ``tallied``: one row per source and participant that the tallies (of ``code_ids``) have, no code
    speakers: bool = False

    def __post_init__(self):
        p_attrs, s_attrs = attribute_names(self.conn)
        self.p_attrs = [n for n in p_attrs if n not in CODING_COLUMNS and n != "participant_id"]
        self.s_attrs = [n for n in s_attrs if (n not in CODING_COLUMNS and n not in self.p_attrs) or n == "site"]
        self._tree = None
        if self.filters and "code" in self.filters:
            # a code filter names codes as users do (a unique name or a path): resolved by the one resolver
            # (CodeTree.resolve) to the codes' ids, which the query then selects by
            self.filters = dict(self.filters)
            value = self.filters.pop("code")
            values = value if isinstance(value, (list, tuple, set)) else [value]
            wanted = {self.tree().resolve(str(v))["id"] for v in values}
            have = self.code_ids if self.code_ids is not None else sorted(self.tree().rows)
            self.code_ids = [i for i in have if i in wanted]

    def tree(self) -> CodeTree:
        """The code tree (read once, when a code is named or labelled)."""
        if self._tree is None:
            self._tree = CodeTree.read(self.conn)
        return self._tree

    def code_label(self, code) -> ColumnElement:
        """What listings show for the code of row ``code`` (a codes alias): its name, or its path where
        another code has the same name (:meth:`sp_realist.coding._common.CodeTree.label`)."""
        tree = self.tree()
        paths = {cid: label for cid, label in tree.labels().items() if label != tree.rows[cid]["name"]}
        return case(paths, value=code.c.id, else_=code.c.name) if paths else code.c.name

    def tallyable(self, names) -> bool:
        """Whether the tallies hold everything ``names`` and the filters need: a coding's code, source (and its
        columns and attributes) and participant (and theirs), but not what two codings of one tally differ in
        (coder, origin, memo, id, span, turn) nor the attribution worded in Python."""
        names = set(names) | set((self.filters or {}).keys())
        return all(n in TALLY_COLUMNS or n in self.p_attrs or n in self.s_attrs for n in names)

    def available(self) -> list[str]:
        return sorted((set(CODING_COLUMNS) | set(self.p_attrs) | set(self.s_attrs)) - HIDDEN)

    def _check(self, names: set[str]) -> None:
        for n in sorted(names):
            if n == "attribution":
                raise SpRealistError("attribute 'attribution' is worded after the query; filter by participant.")
            if n not in CODING_COLUMNS and n not in self.p_attrs and n not in self.s_attrs and n not in ATTRIBUTED:
                raise SpRealistError(f"attribute {n!r}: codings have no attribute of that name; "
                                     f"use one of {', '.join(self.available())}.")

    def _tallies(self):
        """The digests' tallies (of ``code_ids``) with their source's columns: columns as :meth:`_base`'s with
        ``n`` (codings, duplicates once) and ``n_all`` (every coding) instead of one row per coding."""
        t = S.coding_tallies.alias("c")
        inner = select(t.c.code_id, t.c.source_id, t.c.participant_id, t.c.turn, t.c.n, t.c.n_all, t.c.n_rule)
        if self.speakers:
            inner = select(t.c.source_id, t.c.participant_id).distinct()
        if self.code_ids is not None:
            inner = inner.where(t.c.code_id.in_(self.code_ids))
        if self.source_ids is not None:
            inner = inner.where(t.c.source_id.in_(self.source_ids))
        b = inner.subquery("b")
        src = S.sources.alias("src")
        cols = [b.c[k] for k in b.c.keys()] + [src.c.name.label("source"), src.c.kind, src.c.date,
                                               src.c.ingest_order, src.c.participant_id.label("source_participant_id")]
        return select(*cols).select_from(b.join(src, src.c.id == b.c.source_id)).subquery("a")

    def _base(self, attributed: bool, sourced: bool):
        """The codings (of ``code_ids``) with, when asked, their source's columns and their participant."""
        c = S.codings.alias("c")
        cols = [c.c.id.label("coding_id"), c.c.code_id, c.c.source_id, c.c.start, c.c.end, c.c.coder, c.c.origin,
                c.c.memo]
        if attributed:
            cols.append(segment_holding(c.c.source_id, c.c.start).label("seg_id"))
        inner = select(*cols)
        if self.code_ids is not None:
            # with sources named, "+ 0" keeps SQLite on their index (ix_codings_source) rather than the codes'
            code = c.c.code_id + 0 if self.source_ids is not None else c.c.code_id
            inner = inner.where(code.in_(self.code_ids))
        if self.source_ids is not None:
            inner = inner.where(c.c.source_id.in_(self.source_ids))
        if not (attributed or sourced):
            return inner.subquery("a")
        b = inner.subquery("b")
        src = S.sources.alias("src")
        frm = b.join(src, src.c.id == b.c.source_id)
        cols = [b.c[k] for k in b.c.keys()] + [src.c.name.label("source"), src.c.kind, src.c.date,
                                               src.c.ingest_order, src.c.participant_id.label("source_participant_id")]
        if attributed:
            seg = S.segments.alias("seg")
            frm = frm.outerjoin(seg, seg.c.id == b.c.seg_id)
            pid = attributed_participant(seg, src, inside=b.c.start < seg.c.end)
            inside = b.c.start < seg.c.end
            cols += [pid.label("participant_id"), seg.c.start.label("seg_start"),
                     case((and_(inside, seg.c.participant_id.is_(None)), seg.c.speaker), else_=null())
                     .label("turn_speaker"),
                     case((inside, func.coalesce(seg.c.speaker, "")), else_=null()).label("turn")]
        return select(*cols).select_from(frm).subquery("a")

    def build(self, *wanted: str, dedupe: bool = True, text: tuple[str, ...] = ()):
        """A SELECT over the codings (filtered; with ``dedupe``, rule-and-person duplicates left out) with
        the columns ``wanted``, each labelled by its name: names from :data:`CODING_COLUMNS` (but
        ``attribution``), attribute names, ``participant_id``, ``seg_id`` / ``seg_start`` (the last
        non-empty segment starting at or before the coding's start, which may end before it), or
        ``turn_speaker`` (the speaker label of an unmapped turn holding the start).  Columns
        named in ``text`` come as text (see :func:`as_text`)."""
        names = set(wanted) | set((self.filters or {}).keys())
        self._check(names - {"n", "n_rule"} if self.tallied else names)
        person = any((n in ATTRIBUTED and n != "site") or n in self.p_attrs for n in names)
        # The site alone is the source's site attribute where it has one: the coding's participant is
        # then looked up only for codings of sources without one (see :meth:`_fallback_site`).
        lazy_site = "site" in names and not person and "site" in self.s_attrs and not self.tallied
        attributed = person or ("site" in names and not lazy_site)
        sourced = attributed or any(n in SOURCE_COLUMNS for n in names)  # attributes join on source_id
        if self.tallied and not self.tallyable(names - {"n", "n_rule"}):
            raise ValueError(f"the tallies do not hold {sorted(names)}")  # a caller's slip: tallyable() first
        a = self._tallies() if self.tallied else self._base(attributed, sourced)
        frm = a
        exprs: dict[str, Any] = {}
        p = None
        if any(n in ("participant", "role") for n in names) or ("site" in names and not lazy_site):
            p = S.participants.alias("p")
            frm = frm.outerjoin(p, p.c.id == a.c.participant_id)
        for i, n in enumerate(sorted(names)):
            if n == "n" and self.tallied:  # how many codings a tally row stands for
                exprs[n] = a.c.n if dedupe else a.c.n_all
            elif n == "n_rule" and self.tallied:  # how many of them are autocodings
                exprs[n] = a.c.n_rule
            elif n in a.c:
                exprs[n] = a.c[n]
            elif n == "code":
                code = S.codes.alias("code")
                frm = frm.join(code, code.c.id == a.c.code_id)
                exprs[n] = self.code_label(code)
            elif n == "participant":
                exprs[n] = p.c.code
            elif n == "role":
                exprs[n] = p.c.role
            elif n in self.p_attrs:
                t = S.participant_attributes.alias(f"pa{i}")
                frm = frm.outerjoin(t, and_(t.c.participant_id == a.c.participant_id, t.c.name == n))
                exprs[n] = t.c.value
            elif n == "site":  # the source's site, else the speaker's, else the source participant's
                sp = S.participants.alias("sp")
                # scalar subqueries, evaluated only for the codings whose source has no site
                parts = ([self._fallback_site(a)] if lazy_site else
                         [p.c.site, select(sp.c.site).where(sp.c.id == a.c.source_participant_id).scalar_subquery()])
                if "site" in self.s_attrs:
                    t = S.source_attributes.alias(f"sa{i}")
                    frm = frm.outerjoin(t, and_(t.c.source_id == a.c.source_id, t.c.name == n))
                    parts.insert(0, t.c.value)
                exprs[n] = func.coalesce(*parts)
            else:  # a source attribute
                t = S.source_attributes.alias(f"sa{i}")
                frm = frm.outerjoin(t, and_(t.c.source_id == a.c.source_id, t.c.name == n))
                exprs[n] = t.c.value
        conds = []
        for n, value in (self.filters or {}).items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            conds.append(as_text(exprs[n]).in_(sorted({str(v) for v in values})))
        if dedupe and not self.tallied:
            conds.append(a.c.coding_id.not_in(self.duplicates()))
        cols = [(as_text(exprs[n]) if n in text else exprs[n]).label(n) for n in wanted]
        q = select(*cols).select_from(frm)
        return q.where(and_(*conds)) if conds else q

    @staticmethod
    def _fallback_site(a) -> ColumnElement:
        """Scalar subquery: the site of the participant who said coding ``a`` (the attributed participant,
        :func:`attributed_participant`), else of its source's participant; as a COALESCE argument after the
        source's site attribute it is evaluated only where that is missing (SQLite and PostgreSQL
        evaluate COALESCE's arguments left to right, as far as needed)."""
        src, seg = S.sources.alias("fsrc"), S.segments.alias("fseg")
        p, sp = S.participants.alias("fp"), S.participants.alias("fsp")
        pid = attributed_participant(seg, src, inside=a.c.start < seg.c.end)
        frm = (src.outerjoin(seg, seg.c.id == segment_holding(a.c.source_id, a.c.start).correlate(a))
               .outerjoin(p, p.c.id == pid).outerjoin(sp, sp.c.id == src.c.participant_id))
        return (select(func.coalesce(p.c.site, sp.c.site)).select_from(frm).where(src.c.id == a.c.source_id)
                .scalar_subquery())

    def duplicates(self):
        """The ids of rule codings of words that a person (or an earlier rule: lower id) coded with the
        same code, among the codings the filters keep (two such codings differ only in PER_CODING)."""
        r, o = S.codings.alias("r"), S.codings.alias("o")
        same = [o.c.code_id == r.c.code_id, o.c.source_id == r.c.source_id, o.c.start == r.c.start,
                o.c.end == r.c.end, o.c.id != r.c.id, or_(~is_rule(o.c.origin), o.c.id < r.c.id)]
        for n, value in (self.filters or {}).items():
            if n in PER_CODING:
                values = value if isinstance(value, (list, tuple, set)) else [value]
                col = o.c.id if n == "coding_id" else o.c[n]
                same.append(as_text(col).in_(sorted({str(v) for v in values})))
        q = select(r.c.id).where(is_rule(r.c.origin), exists(select(literal(1)).select_from(o).where(*same)))
        if self.source_ids is not None:
            q = q.where(r.c.source_id.in_(self.source_ids))
        return q.where(r.c.code_id.in_(self.code_ids)) if self.code_ids is not None else q


def as_text(expr) -> ColumnElement:
    """``expr`` as text, the way pandas' ``astype("string")`` shows it (integers as digits)."""
    if isinstance(getattr(expr, "type", None), String):
        return expr
    return cast(expr, String)

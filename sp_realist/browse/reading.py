"""What the interactive reader shows, as plain data (no Textual here).

* :func:`source_index` / :func:`filter_index`: every source once, then filtered in memory by kind, site,
  participant, code, unappraised and name (2,000 sources filter in milliseconds);
* :func:`load_source`: one source's text, segments (speakers, diary sections), the codings the user may see
  (:func:`visible_codings`), their memos, and the appraisals and CMOC evidence on its excerpts;
* :func:`layers`: the text cut where codings start and end, each piece with the codings over it, so
  overlapping codings can be drawn distinguishably;
* :meth:`SourceView.at`: everything at a character offset (segment, codings, memos, appraisals, evidence);
* :func:`unit_span` (sentence, segment, diary section around an offset) and :func:`next_coding` (the next
  coding of a code, across sources).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import and_, select

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project

#: Okabe & Ito's palette, safe for the common colour-vision deficiencies (black left out: it is the text).
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
#: A shape per colour, shown beside the code's name wherever colour alone would have to tell codes apart.
MARKERS = ("●", "▲", "■", "◆", "▼", "★", "✚")
UNITS = ("sentence", "segment", "section")
INDEX_COLUMNS = ["id", "name", "kind", "participant", "site", "date", "characters", "codings", "unappraised"]


def visible_codings(project: Project, *, user: str, codings: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``codings`` (a frame with at least ``coder`` and ``code``) that ``user`` may see.

    The single place the reader asks, and every view of the reader follows it: while blind coding is on
    (``sp-realist team blind on``, a PostgreSQL project), a coder sees only their own codings; analysts,
    owners and everyone on a project file see all (:func:`sp_realist.team.roles.visible_to_me`).
    """
    if not isinstance(user, str) or not user.strip():
        raise SpRealistError("browse: the reader needs the name of the person reading; set --coder or "
                             "$SP_REALIST_CODER.")
    from ..team.roles import visible_to_me

    return visible_to_me(project, codings, user)


def _ref(source):
    """A source reference for :func:`resolve_source` (numpy integers from a frame become ints)."""
    import numbers

    return int(source) if isinstance(source, numbers.Integral) and not isinstance(source, bool) else source


def code_colours(code_ids: list[int]) -> dict[int, tuple[str, str]]:
    """``code id -> (colour, marker)``, assigned in codebook order so a code keeps its colour across sources."""
    return {cid: (OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]) for i, cid in enumerate(code_ids)}


# --- the source index ------------------------------------------------------------
@dataclass
class SourceIndex:
    """Every source (``frame``, :data:`INDEX_COLUMNS`) and, per code name, the ids of the sources it codes."""

    frame: pd.DataFrame
    by_code: dict[str, frozenset[int]]
    kinds: list[str]
    sites: list[str]
    participants: list[str]


def _visible_frame(conn, project: Project, user: str, source_id: int | None = None) -> pd.DataFrame:
    from ..coding._common import fetch_frame

    c = S.codings
    q = (select(c.c.id, c.c.code_id, S.codes.c.name, c.c.source_id, c.c.start, c.c.end, c.c.coder, c.c.origin,
                c.c.memo).select_from(c.join(S.codes, S.codes.c.id == c.c.code_id)))
    if source_id is not None:
        q = q.where(c.c.source_id == source_id)
    df = fetch_frame(conn, q, ["id", "code_id", "code", "source_id", "start", "end", "coder", "origin", "memo"])
    return visible_codings(project, user=user, codings=df)


def source_index(project: Project, *, user: str) -> SourceIndex:
    """Every source with its kind, participant, site, date, size, the codings ``user`` can see and how many
    of its segments and coded spans nobody has appraised yet (:func:`sp_realist.cmoc.appraisal.appraisal_queue`)."""
    from ..cmoc.appraisal import appraisal_queue
    from ..sources import sources_frame

    frame = sources_frame(project)
    if "site" not in frame.columns:
        frame["site"] = None
    with project.connect() as conn:
        codings = _visible_frame(conn, project, user)
    queue = appraisal_queue(project)
    pending = queue.groupby("source").size() if len(queue) else pd.Series(dtype="int64")
    counts = codings.groupby("source_id").size() if len(codings) else pd.Series(dtype="int64")
    frame["codings"] = frame["id"].map(counts).fillna(0).astype("int64")
    frame["unappraised"] = frame["name"].map(pending).fillna(0).astype("int64")
    by_code = {name: frozenset(group["source_id"].tolist()) for name, group in codings.groupby("code")} \
        if len(codings) else {}

    def values(col):
        return sorted({str(v) for v in frame[col].dropna().tolist()})

    return SourceIndex(frame[INDEX_COLUMNS].reset_index(drop=True), by_code, values("kind"), values("site"),
                       values("participant"))


def update_index(index: SourceIndex, project: Project, *, source: str | int, user: str) -> SourceIndex:
    """``index`` with one source's counts read again (its visible codings, the codes it holds, what is still
    to appraise in it): after an action on one source, without reading every source again (the whole index
    of 2,000 sources takes half a second, mostly :func:`~sp_realist.cmoc.appraisal.appraisal_queue`)."""
    from ..cmoc.appraisal import appraisal_queue
    from ..sources import resolve_source

    with project.connect() as conn:
        src = resolve_source(conn, _ref(source))
        codings = _visible_frame(conn, project, user, src["id"])
    sid = src["id"]
    pending = len(appraisal_queue(project, source=sid))
    frame = index.frame.copy()
    row = frame["id"] == sid
    frame.loc[row, "codings"] = len(codings)
    frame.loc[row, "unappraised"] = pending
    codes = set(codings["code"].tolist())
    by_code = {name: ids - {sid} for name, ids in index.by_code.items()}
    for name in codes:
        by_code[name] = by_code.get(name, frozenset()) | {sid}
    by_code = {name: ids for name, ids in by_code.items() if ids}
    return SourceIndex(frame, by_code, index.kinds, index.sites, index.participants)


def filter_index(index: SourceIndex, *, kind: str | None = None, site: str | None = None,
                 participant: str | None = None, code: str | None = None, unappraised: bool = False,
                 name: str | None = None) -> pd.DataFrame:
    """The sources of ``index`` that match every filter given (``name``: a case-insensitive part of the
    source's name; ``code``: sources with a visible coding of that code; ``unappraised``: sources with
    something still to appraise)."""
    df = index.frame
    keep = pd.Series(True, index=df.index)
    if kind:
        keep &= df["kind"] == kind
    if site:
        keep &= df["site"].astype("string") == site
    if participant:
        keep &= df["participant"].astype("string") == participant
    if code:
        keep &= df["id"].isin(index.by_code.get(code, frozenset()))
    if unappraised:
        keep &= df["unappraised"] > 0
    if name:
        keep &= df["name"].str.contains(name, case=False, regex=False)
    return df[keep.fillna(False).astype(bool)]


# --- one source ------------------------------------------------------------------
@dataclass(frozen=True)
class Mark:
    """A coding as the reader draws it."""

    id: int
    code: str
    code_id: int
    start: int
    end: int
    coder: str
    origin: str
    memo: str | None
    colour: str
    marker: str


@dataclass
class SourceView:
    id: int
    name: str
    kind: str
    text: str
    segments: list[tuple[int, int, str, str | None, str | None]]  # start, end, kind, speaker, section
    marks: list[Mark]
    memos: dict[int, list[dict]]          # coding id -> memos on it
    appraisals: list[dict]                # excerpt spans with an appraisal (any analyst)
    evidence: list[dict]                  # excerpt spans linked to a CMOC
    line_starts: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.line_starts = line_starts(self.text)

    # positions: the reader's (row, column) <-> offsets into the text, as str.splitlines cuts lines
    def location(self, offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(self.line_starts, offset) - 1
        return row, offset - self.line_starts[row]

    def offset(self, row: int, column: int) -> int:
        row = max(0, min(row, len(self.line_starts) - 1))
        return min(self.line_starts[row] + column, len(self.text))

    def segment_at(self, offset: int) -> tuple[int, int, str, str | None, str | None] | None:
        i = bisect.bisect_right([s[0] for s in self.segments], offset) - 1
        return self.segments[i] if 0 <= i < len(self.segments) else None

    def at(self, offset: int) -> dict:
        """What is at ``offset``: the segment's speaker and section, the codings over it (with memos), and
        the appraisals and evidence of excerpts over it."""
        seg = self.segment_at(offset)
        marks = [m for m in self.marks if m.start <= offset < m.end]
        return {
            "speaker": seg[3] if seg else None, "section": seg[4] if seg else None,
            "marks": marks, "memos": [memo for m in marks for memo in self.memos.get(m.id, [])],
            "appraisals": [a for a in self.appraisals if a["start"] <= offset < a["end"]],
            "evidence": [e for e in self.evidence if e["start"] <= offset < e["end"]],
        }


def line_starts(text: str, base: int = 0) -> list[int]:
    """The offsets (plus ``base``) where the reader's lines of ``text`` start, as Textual's ``Document`` cuts
    them (``str.splitlines``, and an empty last line after a final line break)."""
    starts, pos = [base], base
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    if text and not text.endswith(("\r\n", "\n", "\r")):
        starts.pop()  # the last line is the text's last (no empty line after it)
    return starts


#: Characters of a source the reader holds at once (about 4,000 words, dozens of screens).
WINDOW = 24_000


@dataclass(frozen=True)
class TextWindow:
    """The part ``text[start:end]`` of a source that the reader holds, and its lines: the reader's
    ``(row, column)`` in the window <-> offsets into the whole source.

    A long source is read a window at a time (Textual's ``TextArea`` wraps every line it holds when text is
    loaded); the window moves with the cursor (:func:`text_window`), and every offset the reader hands the
    library stays an offset into the whole source.
    """

    start: int
    end: int
    size: int                      # length of the whole source
    line_starts: tuple[int, ...]   # offsets into the whole source

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end == self.size

    def contains(self, offset: int) -> bool:
        return self.start <= offset <= self.end

    def location(self, offset: int) -> tuple[int, int]:
        """The window's ``(row, column)`` of ``offset`` (clamped to the window)."""
        offset = max(self.start, min(int(offset), self.end))
        row = bisect.bisect_right(self.line_starts, offset) - 1
        return row, offset - self.line_starts[row]

    def offset(self, row: int, column: int) -> int:
        row = max(0, min(row, len(self.line_starts) - 1))
        return min(self.line_starts[row] + column, self.end)


def _cut(text: str, at: int, lo: int, hi: int) -> int:
    """A place near ``at`` (within ``lo``..``hi``) to cut the text: after the nearest line break, else after
    the nearest space, else ``at``; never between a carriage return and its line feed."""
    for sep in ("\n", " "):
        back = text.rfind(sep, lo, at)
        if back >= 0:
            return back + 1
        ahead = text.find(sep, at, hi)
        if ahead >= 0:
            return ahead + 1
    if 0 < at < len(text) and text[at - 1] == "\r" and text[at] == "\n":
        at += 1
    return at


def text_window(text: str, start: int, end: int | None = None, *, size: int = WINDOW) -> TextWindow:
    """The window of about ``size`` characters of ``text`` around ``start``..``end`` (a cursor, or a
    selection: the window always holds all of it, however long), cut at line breaks where it can."""
    n = len(text)
    lo, hi = sorted((max(0, min(int(start), n)), max(0, min(int(start if end is None else end), n))))
    if n <= size:
        a, b = 0, n
    else:
        pad = max(0, size - (hi - lo)) // 2
        a, b = lo - pad, hi + pad
        if a < 0:
            a, b = 0, b - a
        if b > n:
            a, b = max(0, a - (b - n)), n
        slack = max(1, size // 8)
        a = 0 if a == 0 else min(_cut(text, a, max(0, a - slack), min(lo, a + slack)), lo)
        b = n if b == n else max(_cut(text, b, max(hi, b - slack), min(n, b + slack)), hi)
    return TextWindow(a, b, n, tuple(line_starts(text[a:b], a)))


def load_source(project: Project, *, source: str | int, user: str) -> SourceView:
    """One source as the reader shows it to ``user`` (see :class:`SourceView`)."""
    from ..cmoc.appraisal import _frame as appraisal_frame
    from ..coding._common import code_rows
    from ..sources import resolve_source

    with project.connect() as conn:
        src = resolve_source(conn, _ref(source))
        seg = S.segments
        segments = [tuple(r) for r in conn.execute(
            select(seg.c.start, seg.c.end, seg.c.kind, seg.c.speaker, seg.c.section)
            .where(seg.c.source_id == src["id"]).order_by(seg.c.ord))]
        colours = code_colours([r["id"] for r in code_rows(conn)])
        c = S.codings
        from ..coding._common import fetch_frame

        df = fetch_frame(conn, select(c.c.id, c.c.code_id, S.codes.c.name, c.c.start, c.c.end, c.c.coder, c.c.origin,
                                      c.c.memo)
                         .select_from(c.join(S.codes, S.codes.c.id == c.c.code_id))
                         .where(c.c.source_id == src["id"]).order_by(c.c.start, c.c.end, c.c.id),
                         ["id", "code_id", "code", "start", "end", "coder", "origin", "memo"])
        df = visible_codings(project, user=user, codings=df)
        marks = [Mark(int(r.id), r.code, int(r.code_id), int(r.start), int(r.end), r.coder, r.origin, r.memo,
                      *colours.get(int(r.code_id), (OKABE_ITO[0], MARKERS[0])))
                 for r in df.itertuples(index=False)]
        memos: dict[int, list[dict]] = {}
        ids = [m.id for m in marks]
        for i in range(0, len(ids), 500):
            m = S.memos
            for r in conn.execute(select(m.c.id, m.c.target_id, m.c.title, m.c.text, m.c.author)
                                  .where(and_(m.c.target_type == "coding", m.c.target_id.in_(ids[i:i + 500])))
                                  .order_by(m.c.id)).mappings():
                memos.setdefault(r["target_id"], []).append(dict(r))
        appraisals = appraisal_frame(conn, S.excerpts.c.source_id == src["id"]).to_dict("records")
        ev, ex = S.cmoc_evidence, S.excerpts
        evidence = [dict(r) for r in conn.execute(
            select(S.cmocs.c.key.label("cmoc"), ev.c.role, ev.c.component, ev.c.analyst, ex.c.start, ex.c.end,
                   ex.c.id.label("excerpt_id"))
            .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id).join(S.cmocs, S.cmocs.c.id == ev.c.cmoc_id))
            .where(ex.c.source_id == src["id"]).order_by(ex.c.start, S.cmocs.c.ord)).mappings()]
    return SourceView(src["id"], src["name"], src["kind"], src["text"], segments, marks, memos, appraisals, evidence)


def layers(marks: list[Mark]) -> list[tuple[int, int, tuple[Mark, ...]]]:
    """The text cut at every coding's start and end: ``(start, end, marks over it)`` for each piece covered
    by at least one coding, in order.  A piece with two or more marks is an overlap."""
    starts: dict[int, list[Mark]] = {}
    ends: dict[int, list[Mark]] = {}
    for m in marks:
        if m.end > m.start:
            starts.setdefault(m.start, []).append(m)
            ends.setdefault(m.end, []).append(m)
    cuts = sorted(set(starts) | set(ends))
    out = []
    active: dict[int, Mark] = {}  # a sweep over the cuts: the marks open between this cut and the next
    for a, b in zip(cuts, cuts[1:]):
        for m in ends.get(a, ()):
            active.pop(id(m), None)
        for m in starts.get(a, ()):
            active[id(m)] = m
        if active:
            out.append((a, b, tuple(sorted(active.values(), key=lambda m: (m.start, m.end)))))
    return out


def unit_span(project: Project, *, source: str | int, offset: int, unit: str) -> tuple[int, int]:
    """The sentence, segment (turn, paragraph) or diary section holding ``offset``, trimmed, as coding
    and autocoding cut them (:class:`sp_realist.coding.units.SourceUnits`)."""
    from ..coding.units import SourceUnits
    from ..sources import resolve_source

    if unit not in UNITS:
        raise SpRealistError(f"unit {unit!r} is not one of {', '.join(UNITS)}.")
    with project.connect() as conn:
        src = resolve_source(conn, _ref(source))
        text = src["text"]
        if not text:
            raise SpRealistError(f"source {src['name']!r} has no text to select.")
        offset = max(0, min(int(offset), len(text) - 1))
        return SourceUnits.load(conn, src["id"], text).expand(offset, offset + 1, unit)


def next_coding(project: Project, *, code: str, user: str, source: str | int, offset: int,
                backwards: bool = False) -> tuple[int, int, int] | None:
    """``(source id, start, end)`` of the next coding of ``code`` that ``user`` can see after ``offset`` in
    ``source`` (then in the following sources, in ingest order, wrapping round); ``backwards`` for the
    previous one.  None when the code has no visible coding."""
    from ..coding._common import fetch_frame, resolve_code
    from ..sources import resolve_source

    c = S.codings
    with project.connect() as conn:
        crow = resolve_code(conn, code)
        sid = resolve_source(conn, _ref(source))["id"]
        df = fetch_frame(conn, select(c.c.id, S.sources.c.ingest_order, c.c.source_id, c.c.start, c.c.end, c.c.coder,
                                      S.codes.c.name)
                         .select_from(c.join(S.sources, S.sources.c.id == c.c.source_id)
                                      .join(S.codes, S.codes.c.id == c.c.code_id))
                         .where(c.c.code_id == crow["id"]).order_by(S.sources.c.ingest_order, c.c.start, c.c.end),
                         ["id", "order", "source_id", "start", "end", "coder", "code"])
        order = conn.execute(select(S.sources.c.ingest_order).where(S.sources.c.id == sid)).scalar_one()
    df = visible_codings(project, user=user, codings=df)
    if df.empty:
        return None
    keys = list(zip(df["order"].tolist(), df["start"].tolist()))
    here = (order, int(offset))
    if backwards:
        i = bisect.bisect_left(keys, here) - 1
    else:
        i = bisect.bisect_right(keys, here)
    row = df.iloc[i % len(df)]
    return int(row["source_id"]), int(row["start"]), int(row["end"])


FILTER_KEYS = ("kind", "site", "participant", "code")


def parse_filter(text: str | None) -> dict:
    """The reader's filter line as :func:`filter_index` keywords: ``kind:diary site:S1 code:"Referral
    process" unappraised`` and any other words (a part of the source's name).  Quotes group words."""
    import shlex

    out: dict = {}
    if not text or not text.strip():
        return out
    try:
        words = shlex.split(text)
    except ValueError:
        raise SpRealistError(f"filter {text!r}: a quote is not closed; close it or leave it out.") from None
    names = []
    for word in words:
        key, sep, value = word.partition(":")
        if sep and key.lower() in FILTER_KEYS:
            if not value.strip():
                raise SpRealistError(f"filter {word!r}: give a value after '{key}:', e.g. {key}:S1.")
            out[key.lower()] = " ".join(value.split())
        elif word.lower() == "unappraised":
            out["unappraised"] = True
        else:
            names.append(word)
    if names:
        out["name"] = " ".join(names)
    return out

"""Keep the analysis when a corrected file replaces its sources (``ingest --replace``).

A transcript is corrected after coding has started: a misheard word, a
speaker label, a paragraph moved.  Re-ingesting it must not throw away the
codings, excerpts, appraisals, memos and CMOC evidence that point into the
old text.  :func:`replace_sources` keeps every source row (its id, so memos,
attributes and links stay attached), swaps its text and segments for the new
ones, and carries each coding and excerpt span across with :class:`OffsetMap`:

* **kept**: every character of the span survives, in order, with nothing
  inserted inside it;
* **adjusted**: characters changed inside the span; the new span runs from
  its first to its last surviving character, and at least
  ``SIMILARITY`` of the old and new words match (the diff's own count);
* **moved**: the words were cut and put back elsewhere; they are found
  verbatim (when they occur once, or are at least ``MOVE_MIN_CHARS`` long,
  the occurrence nearest to where the diff puts them);
* **orphaned**: none of these (deleted or rewritten).  Nothing is deleted:
  the row and everything hanging on it go into the ``orphans`` table (this
  module owns it) for review with ``sources orphans``, and can be
  re-attached (:func:`reattach_orphan`) or discarded (:func:`discard_orphan`).

The diff is diff-match-patch's (line mode first, then characters) with no
time limit, so the same two texts always give the same result.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Sequence

import pandas as pd
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from . import schema as S
from .errors import SpRealistError
from .sources import SourceDraft, locate_quote, replace_source_content, resolve_source, unique_source_name
from .store import Project, now

SIMILARITY = 0.6
MOVE_MIN_CHARS = 20
PAIR_SIMILARITY = 0.5
STATUSES = ("kept", "adjusted", "moved", "orphaned")


# --- offsets ---------------------------------------------------------------------

@dataclass(frozen=True)
class Carried:
    """Where a span of the old text lies in the new one."""

    status: str  # kept | adjusted | moved | orphaned
    start: int | None = None
    end: int | None = None


class OffsetMap:
    """Maps spans of ``old`` onto ``new`` through a character diff."""

    def __init__(self, old: str, new: str):
        from diff_match_patch import diff_match_patch

        dmp = diff_match_patch()
        dmp.Diff_Timeout = 0  # no deadline: deterministic
        self.old, self.new = old, new
        # the new position of each old character, -1 where it was deleted
        self.pos = array("q", [-1]) * len(old)
        i = j = 0
        for op, chunk in dmp.diff_main(old, new):
            n = len(chunk)
            if op == 0:
                self.pos[i:i + n] = array("q", range(j, j + n))
                i += n
                j += n
            elif op < 0:
                i += n
            else:
                j += n

    def _near(self, at: int) -> int:
        """The new position just after the last surviving character before ``at``."""
        for k in range(min(at, len(self.pos)) - 1, -1, -1):
            if self.pos[k] >= 0:
                return self.pos[k] + 1
        return 0

    def carry(self, start: int, end: int) -> Carried:
        words = self.old[start:end]
        kept = [p for p in self.pos[start:end] if p >= 0]
        guess = kept[0] if kept else self._near(start)
        if kept:
            new_start, new_end = kept[0], kept[-1] + 1
            if len(kept) == end - start and new_end - new_start == end - start:
                return Carried("kept", new_start, new_end)
            if 2 * len(kept) / (len(words) + new_end - new_start) >= SIMILARITY:
                return Carried("adjusted", new_start, new_end)
        found = self._find(words, guess)
        if found is not None:
            return Carried("moved", found, found + len(words))
        return Carried("orphaned")

    def _find(self, words: str, guess: int) -> int | None:
        if not words.strip():
            return None
        hits = []
        at = self.new.find(words)
        while at >= 0:
            hits.append(at)
            at = self.new.find(words, at + 1)
        if len(hits) == 1 or (hits and len(words) >= MOVE_MIN_CHARS):
            return min(hits, key=lambda h: (abs(h - guess), h))
        return None


# --- pairing old sources with the new file's sources ----------------------------------

def pair_sources(old: Sequence[dict], drafts: Sequence[SourceDraft]) -> list[tuple[dict | None, SourceDraft | None]]:
    """Which old source each new source continues.

    By name first (a diary entry keeps its name), then a file with one source
    on each side, then by entry position, then by the most similar text
    (at least ``PAIR_SIMILARITY``).  Unpaired old sources are kept as they
    are; unpaired new sources are added.
    """
    pairs: list[tuple[dict | None, SourceDraft | None]] = []
    left_old = list(old)
    left_new = list(drafts)

    def take(o: dict, d: SourceDraft) -> None:
        pairs.append((o, d))
        left_old.remove(o)
        left_new.remove(d)

    for d in list(left_new):
        o = next((o for o in left_old if o["name"] == d.name), None)
        if o is not None:
            take(o, d)
    if len(left_old) == 1 and len(left_new) == 1:
        take(left_old[0], left_new[0])
    for d in list(left_new):
        o = next((o for o in left_old if d.entry_index is not None and o["entry_index"] == d.entry_index), None)
        if o is not None:
            take(o, d)
    candidates = sorted(
        ((SequenceMatcher(None, o["text"], d.text, autojunk=False).quick_ratio(), i, j)
         for i, o in enumerate(left_old) for j, d in enumerate(left_new)),
        key=lambda t: (-t[0], t[1], t[2]))
    olds, news = list(left_old), list(left_new)
    used_o: set[int] = set()
    used_n: set[int] = set()
    for ratio, i, j in candidates:
        if ratio < PAIR_SIMILARITY:
            break
        if i in used_o or j in used_n:
            continue
        used_o.add(i)
        used_n.add(j)
        take(olds[i], news[j])
    pairs += [(o, None) for o in left_old] + [(None, d) for d in left_new]
    return pairs


# --- replacing -------------------------------------------------------------------------

@dataclass
class ReplaceOutcome:
    """What ``ingest --replace`` did with one file's earlier sources."""

    codings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    excerpts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    updated: list[str] = field(default_factory=list)  # names of the sources that now hold the new text
    left: list[str] = field(default_factory=list)  # old sources the new file no longer has: kept unchanged
    added: list[SourceDraft] = field(default_factory=list)  # new sources with no old one: for the caller to add

    @property
    def orphaned(self) -> int:
        return self.codings["orphaned"] + self.excerpts["orphaned"]

    def summary(self) -> str:
        def part(what: str, counts: dict[str, int]) -> str:
            total = sum(counts.values())
            carried = total - counts["orphaned"]
            detail = [f"{counts[s]} {s}" for s in ("adjusted", "moved") if counts[s]]
            return f"{carried} of {total} {what} kept" + (f" ({', '.join(detail)})" if detail else "")

        text = f"{part('codings', self.codings)}, {part('excerpts', self.excerpts)}"
        if self.orphaned:
            text += f"; {self.orphaned} orphaned for review ('sp-realist sources orphans')"
        if self.left:
            text += (f"; {len(self.left)} older source(s) no longer in the file kept unchanged "
                     f"({', '.join(self.left)}; 'sp-realist sources remove' if they should go)")
        return text


def _anonymised(conn: Connection, source_ids: Sequence[int]) -> list[int]:
    r = S.anonymisation_records
    return sorted({row[0] for row in conn.execute(
        select(r.c.source_id).where(r.c.source_id.in_(list(source_ids)))).all()})


def replace_sources(conn: Connection, old_ids: Sequence[int], drafts: Sequence[SourceDraft],
                    where: str) -> ReplaceOutcome:
    """Put ``drafts`` (one file, corrected) in place of the sources ``old_ids`` it was ingested as.

    Runs inside the caller's transaction.  Raises :class:`SpRealistError`
    (nothing written) when an old source is anonymised: its text no longer
    matches the file, and the new file would bring the originals back.
    """
    anonymised = _anonymised(conn, old_ids)
    if anonymised:
        names = [r[0] for r in conn.execute(select(S.sources.c.name).where(S.sources.c.id.in_(anonymised)))]
        raise SpRealistError(
            f"{where}: the source(s) it replaces are anonymised ({', '.join(names)}), and the corrected file "
            "would bring the original names back; run 'sp-realist anonymise --key KEY --reverse', ingest "
            "with --replace, then apply the key again.")
    old = [dict(r) for r in conn.execute(
        select(S.sources).where(S.sources.c.id.in_(list(old_ids))).order_by(S.sources.c.ingest_order)).mappings()]
    outcome = ReplaceOutcome()
    taken: set[str] = set()
    for o, d in pair_sources(old, drafts):
        if d is None:
            outcome.left.append(o["name"])
            continue
        if o is None:
            outcome.added.append(d)
            continue
        if d.name != o["name"]:
            d.name = unique_source_name(conn, d.name, taken, exclude_id=o["id"])
        taken.add(d.name)
        offsets = OffsetMap(o["text"], d.text)
        _carry_spans(conn, "coding", o, offsets, outcome.codings)
        _carry_spans(conn, "excerpt", o, offsets, outcome.excerpts)
        replace_source_content(conn, o["id"], d)
        outcome.updated.append(d.name)
    return outcome


def _orphan(conn: Connection, source_id: int, kind: str, old_text: str, start: int, end: int,
            reason: str, payload: dict) -> None:
    conn.execute(insert(S.orphans).values(
        source_id=source_id, kind=kind, quote=old_text[start:end], old_start=start, old_end=end,
        reason=reason, payload=json.dumps(payload, ensure_ascii=False, sort_keys=True), created_at=now()))


def _rows(conn: Connection, query) -> list[dict]:
    return [dict(r) for r in conn.execute(query).mappings()]


ORPHAN_REASON = "its words were deleted or rewritten in the corrected file"


def _carry_spans(conn: Connection, kind: str, src: dict, offsets: OffsetMap, counts: dict[str, int]) -> None:
    """Carry one source's codings (``kind="coding"``) or excerpts across; orphan what cannot follow.

    Spans that survived unchanged are placed first, then adjusted, then moved
    ones, so a span that two old spans would now share goes to the one that
    kept its words; the other is orphaned (a coding only clashes with the same
    code and coder on the same words).
    """
    table = S.codings if kind == "coding" else S.excerpts
    t = table.c
    rows = _rows(conn, select(table).where(t.source_id == src["id"]).order_by(t.start, t.end, t.id))
    carried = [(row, offsets.carry(row["start"], row["end"])) for row in rows]
    rank = {s: i for i, s in enumerate(STATUSES)}
    placed: dict[tuple, int] = {}
    moves = []
    for row, where in sorted(carried, key=lambda rc: rank[rc[1].status]):
        identity = (row["code_id"], row["coder"]) if kind == "coding" else ()
        key = (*identity, where.start, where.end)
        if where.status == "orphaned":
            reason = ORPHAN_REASON
        elif key in placed:
            reason = f"after the correction it would cover the same words as {kind} {placed[key]}"
        else:
            placed[key] = row["id"]
            counts[where.status] += 1
            if (where.start, where.end) != (row["start"], row["end"]):
                moves.append((row["id"], where.start, where.end))
            continue
        counts["orphaned"] += 1
        if kind == "coding":
            _orphan(conn, src["id"], kind, src["text"], row["start"], row["end"], reason,
                    _coding_payload(conn, row))
        else:
            _orphan(conn, src["id"], kind, src["text"], row["start"], row["end"], reason,
                    _excerpt_payload(conn, row))
    _apply_moves(conn, table, moves)


def _coding_payload(conn: Connection, row: dict) -> dict:
    """The coding's row, its code's name and its memos; removes them from the live tables."""
    from .coding._common import CodeTree

    code = CodeTree.read(conn).path(row["code_id"])  # its path: unique, however the codebook grows
    m = S.memos
    memos = _rows(conn, select(m).where(and_(m.c.target_type == "coding", m.c.target_id == row["id"])).order_by(m.c.id))
    conn.execute(delete(m).where(m.c.id.in_([x["id"] for x in memos])))
    conn.execute(delete(S.codings).where(S.codings.c.id == row["id"]))
    return {"coding": row, "code": code, "memos": memos}


def _apply_moves(conn: Connection, table, moves: list[tuple[int, int, int]]) -> None:
    """Move spans without tripping the unique span constraint half way: park them first, then place them."""
    if not moves:
        return
    for rid, _, _ in moves:  # negative, distinct, never a real span
        conn.execute(update(table).where(table.c.id == rid).values(start=-2 * rid - 1, end=-2 * rid))
    for rid, start, end in moves:
        conn.execute(update(table).where(table.c.id == rid).values(start=start, end=end))


def _excerpt_payload(conn: Connection, row: dict) -> dict:
    """The excerpt's row, its appraisals (with history), CMOC evidence and adjudication decisions; removes them
    from the live tables."""
    a, h, ev = S.appraisals, S.appraisal_history, S.cmoc_evidence
    keys = dict(conn.execute(select(S.cmocs.c.id, S.cmocs.c.key)).all())
    theory_keys = dict(conn.execute(select(S.theories.c.id, S.theories.c.key)).all())
    appraisals = _rows(conn, select(a).where(a.c.excerpt_id == row["id"]).order_by(a.c.id))
    for ap in appraisals:
        ap["cmoc_key"] = keys.get(ap["cmoc_id"])
        ap["theory_key"] = theory_keys.get(ap["theory_id"])
        ap["history"] = _rows(conn, select(h).where(h.c.appraisal_id == ap["id"]).order_by(h.c.id))
    evidence = _rows(conn, select(ev).where(ev.c.excerpt_id == row["id"]).order_by(ev.c.id))
    for item in evidence:
        item["cmoc_key"] = keys.get(item["cmoc_id"])
    conn.execute(delete(ev).where(ev.c.excerpt_id == row["id"]))
    conn.execute(delete(h).where(h.c.appraisal_id.in_([x["id"] for x in appraisals])))
    conn.execute(delete(a).where(a.c.excerpt_id == row["id"]))
    m = S.memos
    memos = _rows(conn, select(m).where(and_(m.c.target_type == "excerpt", m.c.target_id == row["id"])).order_by(m.c.id))
    conn.execute(delete(m).where(m.c.id.in_([x["id"] for x in memos])))
    from .coding.adjudication import take_adjudications

    adjudications = take_adjudications(conn, row["id"])
    conn.execute(delete(S.excerpts).where(S.excerpts.c.id == row["id"]))
    return {"excerpt": row, "appraisals": appraisals, "evidence": evidence, "memos": memos,
            "adjudications": adjudications}


# --- orphans: review, re-attach, discard ---------------------------------------------------

def _summary(payload: dict, kind: str) -> str:
    if kind == "coding":
        c = payload["coding"]
        memos = len(payload.get("memos", []))
        return f"code {payload['code']!r} by {c['coder']}" + (f", {memos} memo(s)" if memos else "")
    parts = []
    if payload.get("appraisals"):
        parts.append(f"{len(payload['appraisals'])} appraisal(s)")
    if payload.get("evidence"):
        parts.append("evidence for " + ", ".join(sorted({f"{e['cmoc_key']} ({e['role']})" for e in payload["evidence"]})))
    if payload.get("memos"):
        parts.append(f"{len(payload['memos'])} memo(s)")
    if payload.get("adjudications"):
        parts.append(f"{len(payload['adjudications'])} adjudication decision(s)")
    return "; ".join(parts) or "no analysis attached"


def list_orphans(project: Project, *, source: str | int | None = None) -> pd.DataFrame:
    """The codings and excerpts that a corrected file left for review, oldest first."""
    o = S.orphans
    q = (select(o.c.id, S.sources.c.name.label("source"), o.c.kind, o.c.quote, o.c.old_start, o.c.old_end,
                o.c.reason, o.c.payload, o.c.created_at)
         .join(S.sources, S.sources.c.id == o.c.source_id).order_by(o.c.id))
    with project.connect() as conn:
        if source is not None:
            q = q.where(o.c.source_id == resolve_source(conn, source)["id"])
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["holds"] = _summary(json.loads(r.pop("payload")), r["kind"])
    return pd.DataFrame(rows, columns=["id", "source", "kind", "quote", "old_start", "old_end", "holds",
                                       "reason", "created_at"])


def _get_orphan(conn: Connection, orphan_id: int) -> dict:
    row = conn.execute(select(S.orphans).where(S.orphans.c.id == orphan_id)).mappings().first()
    if row is None:
        raise SpRealistError(f"orphan {orphan_id}: no such orphan; 'sp-realist sources orphans' lists them.")
    return dict(row)


@dataclass
class Reattached:
    """Where an orphan went back."""

    orphan_id: int
    kind: str
    source: str
    start: int
    end: int
    new_id: int  # the coding or excerpt id


def reattach_orphan(project: Project, *, orphan_id: int, quote: str | None = None,
                    span: tuple[int, int] | None = None, actor: str | None = None) -> Reattached:
    """Put an orphan back on the source's current text.

    The place is ``span``, or the words ``quote``, or (neither given) the
    orphan's own old words where they occur exactly once.  Everything the
    orphan carried comes back with it (memos; appraisals with their history;
    CMOC evidence); its CMOCs must still exist.
    """
    with project.begin() as conn:
        orphan = _get_orphan(conn, orphan_id)
        src = conn.execute(select(S.sources.c.name, S.sources.c.text)
                           .where(S.sources.c.id == orphan["source_id"])).one()
        where = f"orphan {orphan_id} (source {src.name!r})"
        if span is not None:
            start, end = span
            if not 0 <= start < end <= len(src.text):
                raise SpRealistError(f"{where}: span {start}:{end} is outside the text (0:{len(src.text)}).")
        else:
            start, end = locate_quote(src.text, quote if quote is not None else orphan["quote"], where)
        payload = json.loads(orphan["payload"])
        if orphan["kind"] == "coding":
            new_id = _restore_coding(conn, orphan["source_id"], start, end, payload, where)
        else:
            new_id = _restore_excerpt(conn, orphan["source_id"], start, end, payload, where)
        conn.execute(delete(S.orphans).where(S.orphans.c.id == orphan_id))
        project.log(conn, "orphan.reattach", src.name, actor=actor, orphan=orphan_id, kind=orphan["kind"],
                    start=start, end=end)
    return Reattached(orphan_id, orphan["kind"], src.name, start, end, new_id)


def _restore_coding(conn: Connection, source_id: int, start: int, end: int, payload: dict, where: str) -> int:
    row = dict(payload["coding"])
    from .coding._common import CodeTree

    found = CodeTree.read(conn).find(payload["code"])  # a path (older orphans: a name)
    if not found:
        raise SpRealistError(f"{where}: its code {payload['code']!r} no longer exists; add the code again first.")
    if len(found) > 1:
        raise SpRealistError(f"{where}: its code {payload['code']!r} now names {len(found)} codes; rename one of "
                             "them so the name is unique again, then reattach.")
    code_id = found[0]
    c = S.codings.c
    clash = conn.execute(select(c.id).where(c.code_id == code_id, c.source_id == source_id, c.start == start,
                                            c.end == end, c.coder == row["coder"])).scalar()
    if clash is not None:
        raise SpRealistError(f"{where}: coding {clash} already codes these words with {payload['code']!r} for "
                             f"{row['coder']}; discard the orphan instead.")
    row.pop("id")
    row.update(code_id=code_id, source_id=source_id, start=start, end=end)
    new_id = conn.execute(insert(S.codings).values(**row)).inserted_primary_key[0]
    for memo in payload.get("memos", []):
        memo = dict(memo)
        memo.pop("id")
        memo["target_id"] = new_id
        conn.execute(insert(S.memos).values(**memo))
    return new_id


def _restore_excerpt(conn: Connection, source_id: int, start: int, end: int, payload: dict, where: str) -> int:
    keys = {k: i for i, k in conn.execute(select(S.cmocs.c.id, S.cmocs.c.key)).all()}
    theory_keys = {k: i for i, k in conn.execute(select(S.theories.c.id, S.theories.c.key)).all()}
    needed = sorted({e["cmoc_key"] for e in payload.get("evidence", []) if e["cmoc_key"] not in keys})
    if needed:
        raise SpRealistError(f"{where}: it is evidence for CMOC(s) that no longer exist ({', '.join(needed)}); "
                             "add them again first.")
    e = S.excerpts.c
    excerpt_id = conn.execute(select(e.id).where(e.source_id == source_id, e.start == start, e.end == end)).scalar()
    if excerpt_id is None:
        excerpt_id = conn.execute(insert(S.excerpts).values(
            source_id=source_id, start=start, end=end, created_at=payload["excerpt"]["created_at"],
            guid=payload["excerpt"].get("guid"), dated=payload["excerpt"].get("dated"))).inserted_primary_key[0]
    a = S.appraisals.c
    for ap in payload.get("appraisals", []):
        if conn.execute(select(a.id).where(a.excerpt_id == excerpt_id, a.analyst == ap["analyst"])).scalar():
            raise SpRealistError(f"{where}: {ap['analyst']} has already appraised these words; re-attach it to "
                                 "other words or discard it.")
    for ap in payload.get("appraisals", []):
        ap = dict(ap)
        history = ap.pop("history", [])
        ap.pop("id")
        ap.update(excerpt_id=excerpt_id, cmoc_id=keys.get(ap.pop("cmoc_key")),
                  theory_id=theory_keys.get(ap.pop("theory_key")))
        aid = conn.execute(insert(S.appraisals).values(**ap)).inserted_primary_key[0]
        for item in history:
            item = dict(item)
            item.pop("id")
            item["appraisal_id"] = aid
            conn.execute(insert(S.appraisal_history).values(**item))
    ev = S.cmoc_evidence.c
    for item in payload.get("evidence", []):
        item = dict(item)
        item.pop("id")
        cmoc_id = keys[item.pop("cmoc_key")]
        if conn.execute(select(ev.id).where(ev.cmoc_id == cmoc_id, ev.excerpt_id == excerpt_id,
                                            ev.role == item["role"])).scalar() is None:
            item.update(cmoc_id=cmoc_id, excerpt_id=excerpt_id)
            conn.execute(insert(S.cmoc_evidence).values(**item))
    for memo in payload.get("memos", []):
        memo = dict(memo)
        memo.pop("id")
        memo["target_id"] = excerpt_id
        conn.execute(insert(S.memos).values(**memo))
    if payload.get("adjudications"):
        from .coding.adjudication import restore_adjudications

        restore_adjudications(conn, excerpt_id, payload["adjudications"])
    return excerpt_id


def discard_orphan(project: Project, *, orphan_id: int, actor: str | None = None) -> dict:
    """Delete an orphan for good (what it held is logged by kind and quote length only)."""
    with project.begin() as conn:
        orphan = _get_orphan(conn, orphan_id)
        name = conn.execute(select(S.sources.c.name).where(S.sources.c.id == orphan["source_id"])).scalar_one()
        conn.execute(delete(S.orphans).where(S.orphans.c.id == orphan_id))
        project.log(conn, "orphan.discard", name, actor=actor, orphan=orphan_id, kind=orphan["kind"])
    return {"id": orphan_id, "source": name, "kind": orphan["kind"],
            "holds": _summary(json.loads(orphan["payload"]), orphan["kind"])}

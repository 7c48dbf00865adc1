"""Adjudicating two coders: the units they disagree on, a consensus decision per unit, agreement before
and after.

The units and the coders' decisions come from :func:`sp_realist.coding.agreement.agreement` (a unit is a
sentence or a segment; a coder "codes" it when one of their codings of the code overlaps it).  A decision on a
unit is one of

* ``A`` / ``B``: take that coder's decision (the consensus codes the unit when that coder did),
* ``both``: code it (the union of the two),
* ``none``: do not code it.

The consensus is written as codings by the coder :data:`CONSENSUS` over the unit, with origin
``adjudicated:<decision>`` (``adjudicated:accept RA``, ``adjudicated:both``); units both coders coded are
copied to the consensus too (origin ``adjudicated:agreed``) so the consensus is a complete coding of the
code.  Both coders' own codings are never changed.  Every decision is kept in the ``adjudications`` table
(this module is its one writer), also the decisions not to code, which leave no coding.

Agreement *after* adjudication is computed on the same units with both coders taking the consensus decision
on every decided unit (undecided units keep their own decisions): with every unit decided it is 100%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import and_, insert, select

from .. import schema as S
from ..errors import SpRealistError
from ..identity import current_user
from ..sources import get_or_create_excerpt
from ..store import Project, now
from .agreement import ALL, agreement, cohen_kappa, krippendorff_alpha, percent_agreement

CONSENSUS = "consensus"
DECISIONS = S.ADJUDICATION_DECISIONS
LIST_COLUMNS = ["unit_id", "code", "source", "start", "end", "text", "coder_a", "coder_b", "decision"]
AGREEMENT_COLUMNS = ["code", "units", "decided", "percent_before", "kappa_before", "alpha_before",
                     "percent_after", "kappa_after", "alpha_after"]


@dataclass
class Adjudication:
    """``units``: the disagreeing units (``unit_id`` numbers them, ``coder_a``/``coder_b`` say whether each
    coder coded the unit, ``decision`` is the one recorded, empty while undecided); ``agreement``: per code and
    "(all codes)", before and after adjudication; ``written``: consensus codings added by this call."""

    coders: tuple[str, str]
    unit: str
    units: pd.DataFrame
    agreement: pd.DataFrame
    written: int = 0
    decided_now: int = 0


def _check_coders(coders) -> tuple[str, str]:
    names = [" ".join(str(c).split()) for c in (coders or []) if c is not None and str(c).strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise SpRealistError("adjudicate: name exactly two different coders, e.g. --coders RA RB.")
    if CONSENSUS in names:
        raise SpRealistError(f"adjudicate: {CONSENSUS!r} is the adjudicated coding, not a coder to adjudicate; "
                             "name the two coders who coded apart.")
    return names[0], names[1]


def _decision_of(decision: str, a: str, b: str) -> str:
    """'A', 'B', 'both', 'none', or a coder's name, as one of DECISIONS."""
    d = str(decision).strip()
    if d in (a, "A", "a"):
        return "A"
    if d in (b, "B", "b"):
        return "B"
    if d.lower() in ("both", "none"):
        return d.lower()
    raise SpRealistError(f"adjudicate: decision {decision!r} is not A, B, both or none (or a coder's name).")


def _state(project: Project, coders: tuple[str, str], unit: str, code: str | None):
    """The agreement result and the recorded decisions for its disagreeing units."""
    if unit not in ("sentence", "segment"):
        raise SpRealistError(f"adjudicate: unit {unit!r} is not sentence or segment.")
    result = agreement(project, list(coders), unit=unit, codes=[code] if code else None)
    dis = result.disagreements
    with project.connect() as conn:
        a, x = S.adjudications, S.excerpts
        rows = conn.execute(
            select(S.codes.c.name, S.sources.c.name, x.c.start, x.c.end, a.c.decision, a.c.coded)
            .select_from(a.join(x, x.c.id == a.c.excerpt_id).join(S.codes, S.codes.c.id == a.c.code_id)
                         .join(S.sources, S.sources.c.id == x.c.source_id))
            .where(and_(a.c.coder_a == coders[0], a.c.coder_b == coders[1], a.c.unit == unit))).all()
    decided = {(r[0], r[1], r[2], r[3]): (r[4], bool(r[5])) for r in rows}
    units = pd.DataFrame({
        "unit_id": range(1, len(dis) + 1), "code": dis["code"], "source": dis["source"],
        "start": dis["start"], "end": dis["end"], "text": dis["text"],
        "coder_a": dis[coders[0]].astype(bool), "coder_b": dis[coders[1]].astype(bool),
        "decision": [decided.get((r.code, r.source, r.start, r.end), ("", None))[0] for r in dis.itertuples()],
    }, columns=LIST_COLUMNS)
    return result, units, decided


def _metrics(m: np.ndarray) -> tuple[float, float, float]:
    return percent_agreement(m), cohen_kappa(m[0], m[1]), krippendorff_alpha(m)


def _agreement_table(result, units: pd.DataFrame) -> pd.DataFrame:
    """Before and after per code: the 2 x n decision matrix is rebuilt from the summary (columns both coders
    coded, neither coded) and the disagreeing units, which are the only columns adjudication changes."""
    rows, before_all, after_all = [], [], []
    decided_all = 0
    for rec in result.summary.itertuples():
        if rec.code == ALL:
            continue
        mine = units[units["code"] == rec.code]
        both = int(rec.coded_units) - len(mine)
        neither = int(rec.units) - int(rec.coded_units)
        base = [np.ones((2, both), dtype=np.int8), np.zeros((2, neither), dtype=np.int8)]
        before = np.hstack(base + [np.array([mine["coder_a"].to_numpy(), mine["coder_b"].to_numpy()], dtype=np.int8)])
        after_cols = []
        for u in mine.itertuples():
            if u.decision:
                v = int(_coded(u.decision, u.coder_a, u.coder_b))
                after_cols.append((v, v))
            else:
                after_cols.append((int(u.coder_a), int(u.coder_b)))
        after = np.hstack(base + [np.array(after_cols, dtype=np.int8).T.reshape(2, -1)])
        decided = int((mine["decision"] != "").sum())
        decided_all += decided
        before_all.append(before)
        after_all.append(after)
        rows.append([rec.code, int(rec.units), decided, *_metrics(before), *_metrics(after)])
    pooled_b = np.hstack(before_all) if before_all else np.zeros((2, 0), dtype=np.int8)
    pooled_a = np.hstack(after_all) if after_all else np.zeros((2, 0), dtype=np.int8)
    rows.append([ALL, pooled_b.shape[1], decided_all, *_metrics(pooled_b), *_metrics(pooled_a)])
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _coded(decision: str, a_coded: bool, b_coded: bool) -> bool:
    return {"A": bool(a_coded), "B": bool(b_coded), "both": True, "none": False}[decision]


def adjudication(project: Project, *, coders, code: str | None = None, unit: str = "sentence") -> Adjudication:
    """The units the two coders disagree on (with any decision already recorded) and agreement before and
    after adjudication; writes nothing."""
    coders = _check_coders(coders)
    result, units, _ = _state(project, coders, unit, code)
    return Adjudication(coders, unit, units, _agreement_table(result, units))


def adjudicate(project: Project, *, coders, decisions: dict[int, str] | None = None, accept: str | None = None,
               code: str | None = None, unit: str = "sentence", actor: str | None = None) -> Adjudication:
    """Record consensus decisions, in one transaction.

    ``decisions`` maps unit ids (as listed by :func:`adjudication`) to ``A``, ``B``, ``both`` or ``none`` (or
    a coder's name); ``accept`` applies one decision to every undecided unit.  A unit already decided is
    refused when named in ``decisions`` (its decision stands), and passed over by ``accept``.
    """
    coders = _check_coders(coders)
    a_name, b_name = coders
    result, units, decided = _state(project, coders, unit, code)
    chosen: dict[int, str] = {}
    by_id = {int(u.unit_id): u for u in units.itertuples()}
    for uid, dec in (decisions or {}).items():
        if uid not in by_id:
            raise SpRealistError(f"adjudicate: no unit {uid} among the {len(units)} disagreeing units; list them "
                                 "with 'sp-realist adjudicate --coders A B'.")
        if by_id[uid].decision:
            raise SpRealistError(f"adjudicate: unit {uid} is already decided ({by_id[uid].decision}); its decision "
                                 "stands.")
        chosen[uid] = _decision_of(dec, a_name, b_name)
    if accept is not None:
        d = _decision_of(accept, a_name, b_name)
        for uid, u in by_id.items():
            if not u.decision:
                chosen.setdefault(uid, d)
    written = 0
    if chosen:
        from .codings import insert_codings

        with project.begin() as conn:
            who = current_user(actor, conn=conn)
            code_ids = dict(conn.execute(select(S.codes.c.name, S.codes.c.id)).all())
            source_ids = dict(conn.execute(select(S.sources.c.name, S.sources.c.id)).all())
            at = now()
            rows = []
            for uid, dec in chosen.items():
                u = by_id[uid]
                cid, sid = code_ids[u.code], source_ids[u.source]
                xid = get_or_create_excerpt(conn, sid, int(u.start), int(u.end))
                coded = _coded(dec, u.coder_a, u.coder_b)
                conn.execute(insert(S.adjudications).values(
                    code_id=cid, excerpt_id=xid, unit=unit, coder_a=a_name, coder_b=b_name, decision=dec, coded=coded,
                    decided_by=who, decided_at=at))
                if coded:
                    label = {"A": f"accept {a_name}", "B": f"accept {b_name}"}.get(dec, dec)
                    rows.append(dict(code_id=cid, source_id=sid, start=int(u.start), end=int(u.end), coder=CONSENSUS,
                                     origin=f"adjudicated:{label}"[:300], created_at=at))
            rows.extend(_agreed_rows(conn, result, coders, unit, code_ids, at))
            written = insert_codings(conn, rows)
            project.log(conn, "adjudicate", f"{a_name} / {b_name}", actor=who, unit=unit, code=code,
                        decisions={str(k): v for k, v in sorted(chosen.items())}, consensus_codings=written)
        result, units, _ = _state(project, coders, unit, code)
    return Adjudication(coders, unit, units, _agreement_table(result, units), written=written, decided_now=len(chosen))


def _agreed_rows(conn, result, coders, unit, code_ids, at) -> list[dict]:
    """Consensus codings on the units both coders coded (so the consensus is a complete coding)."""
    from .units import SourceUnits

    c = S.codings.c
    wanted = {code_ids[r.code] for r in result.summary.itertuples() if r.code != ALL}
    spans: dict[tuple[int, int, str], list[tuple[int, int]]] = {}
    for cid, sid, start, end, coder in conn.execute(
            select(c.code_id, c.source_id, c.start, c.end, c.coder).where(c.coder.in_(coders))):
        if cid in wanted:
            spans.setdefault((cid, sid, coder), []).append((start, end))
    rows = []
    sources = {sid for _cid, sid, _coder in spans}
    for sid in sources:
        units = SourceUnits.load(conn, sid).units(unit)
        for cid in wanted:
            a, b = spans.get((cid, sid, coders[0]), []), spans.get((cid, sid, coders[1]), [])
            if not a or not b:
                continue
            for ua, ub in units:
                if any(s < ub and e > ua for s, e in a) and any(s < ub and e > ua for s, e in b):
                    rows.append(dict(code_id=cid, source_id=sid, start=ua, end=ub, coder=CONSENSUS,
                                     origin="adjudicated:agreed", created_at=at))
    return rows


def take_adjudications(conn, excerpt_id: int) -> list[dict]:
    """The decisions on one excerpt (with their code's name), removed from the live table: for
    :mod:`sp_realist.reanchor`, which keeps them with an orphaned excerpt (:func:`restore_adjudications`)."""
    a = S.adjudications
    rows = [dict(r) for r in conn.execute(
        select(a, S.codes.c.name.label("code")).select_from(a.join(S.codes, S.codes.c.id == a.c.code_id))
        .where(a.c.excerpt_id == excerpt_id).order_by(a.c.id)).mappings()]
    if rows:
        conn.execute(a.delete().where(a.c.excerpt_id == excerpt_id))
    return rows


def restore_adjudications(conn, excerpt_id: int, rows: list[dict]) -> int:
    """Put decisions kept by :func:`take_adjudications` back on ``excerpt_id`` (a decision whose code is gone,
    or that the excerpt already holds, is skipped); returns how many were restored."""
    a = S.adjudications
    codes = dict(conn.execute(select(S.codes.c.name, S.codes.c.id)).all())
    n = 0
    for r in rows:
        cid = codes.get(r["code"])
        if cid is None or conn.execute(select(a.c.id).where(and_(
                a.c.code_id == cid, a.c.excerpt_id == excerpt_id, a.c.coder_a == r["coder_a"],
                a.c.coder_b == r["coder_b"]))).first():
            continue
        values = {k: r[k] for k in ("unit", "coder_a", "coder_b", "decision", "coded", "decided_by", "decided_at")}
        conn.execute(insert(a).values(code_id=cid, excerpt_id=excerpt_id, **values))
        n += 1
    return n

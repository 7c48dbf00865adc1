"""Inter-coder agreement on units (sentences or segments).

For each code and each unit, every coder's decision is 1 when one of their
codings of that code overlaps the unit, else 0.  Units are taken from the
sources every coder has coded (at least one coding each), or from the
``sources`` given.  Per code and pooled over all codes ("(all codes)") the
result gives

* ``percent``: the share of units on which all coders agree (0-100);
* ``kappa``: Cohen's kappa, for exactly two coders;
* ``alpha``: Krippendorff's alpha (nominal), any number of coders, computed
  with the ``krippendorff`` package.

Kappa and alpha are undefined (NaN) when every decision is the same (no
variation); percent agreement is then 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..errors import CheckFailed, SpRealistError, closest
from ..sources import resolve_source
from ..store import Project
from ._common import code_ids_for, code_labels, rows_frame
from .units import SourceUnits

ALL = "(all codes)"
METRICS = ("alpha", "kappa", "percent")


def cohen_kappa(a, b) -> float:
    """Cohen's kappa for two raters' nominal labels (NaN when chance agreement is 1)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("two equally long sequences of labels are needed")
    if not len(a):
        return float("nan")
    po = float(np.mean(a == b))
    cats = np.union1d(a, b)
    pe = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    if pe >= 1.0:
        return float("nan")
    return (po - pe) / (1.0 - pe)


def percent_agreement(matrix: np.ndarray) -> float:
    """Percentage of units (columns) on which every coder (row) gives the same value."""
    if matrix.shape[1] == 0:
        return float("nan")
    return float(np.mean(np.all(matrix == matrix[0], axis=0)) * 100.0)


def krippendorff_alpha(matrix: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) for a coders x units matrix (NaN when undefined)."""
    import krippendorff

    if matrix.shape[1] == 0 or len(np.unique(matrix)) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=matrix.astype(float), level_of_measurement="nominal"))


@dataclass
class AgreementResult:
    """``summary``: one row per code plus "(all codes)"; ``disagreements``: the units coders disagree on."""

    coders: list[str]
    unit: str
    summary: pd.DataFrame
    disagreements: pd.DataFrame

    def overall(self, metric: str = "alpha") -> float:
        return float(self.summary.loc[self.summary["code"] == ALL, metric].iloc[0])

    def check(self, minimum: float, metric: str = "alpha") -> None:
        """Raise :class:`CheckFailed` when the overall ``metric`` is below ``minimum`` (or undefined)."""
        value = self.overall(metric)
        if np.isnan(value) or value < minimum:
            shown = "undefined" if np.isnan(value) else f"{value:.3f}"
            raise CheckFailed(f"agreement: overall {metric} is {shown}, below the minimum {minimum}; "
                              "review the disagreeing units and the code definitions.")


def agreement(project: Project, coders: list[str], unit: str = "sentence", codes: list[str] | None = None,
              children: bool = False, sources: list[str | int] | None = None) -> AgreementResult:
    """Percent agreement, Cohen's kappa (two coders) and Krippendorff's alpha per code and overall."""
    coders = list(dict.fromkeys(c.strip() for c in coders if c and c.strip()))
    if len(coders) < 2:
        raise SpRealistError("agreement: name at least two different coders (e.g. --coders RA SM).")
    if unit not in ("sentence", "segment"):
        raise SpRealistError(f"agreement: unit {unit!r} is not sentence or segment.")
    from ..team.roles import coding_restriction

    if coding_restriction(project) is not None:
        raise SpRealistError("agreement: blind coding is on, so agreement is for analysts (it compares "
                             "everyone's codings); ask an analyst, or one to turn it off ('sp-realist team "
                             "blind off').")
    c = S.codings
    with project.connect() as conn:
        known = {r[0] for r in conn.execute(select(c.c.coder).distinct())}
        missing = [x for x in coders if x not in known]
        if missing:
            match = closest(missing[0], known)
            if match is not None:
                raise SpRealistError(f"agreement: coder {missing[0]!r} has no codings; did you mean {match!r}?")
            raise SpRealistError(f"agreement: coder {missing[0]!r} has no codings; check the name "
                                 f"(coders in the project: {', '.join(sorted(known)) or 'none'}).")
        code_ids = code_ids_for(conn, codes, children)
        code_names = code_labels(conn)  # the name, or the path when another code has the same name
        q = (select(c.c.code_id, c.c.code_id.label("code"), c.c.source_id, c.c.start, c.c.end, c.c.coder)
             .where(c.c.coder.in_(coders)))
        if code_ids is not None:
            q = q.where(c.c.code_id.in_(code_ids))
        df = rows_frame(conn.execute(q).all(), ["code_id", "code", "source_id", "start", "end", "coder"])
        df["code"] = df["code"].map(code_names)
        if sources:
            sids = [resolve_source(conn, s)["id"] for s in sources]
        else:
            # Sources each coder has coded (any code), so the units do not depend on --code.
            pairs = conn.execute(select(c.c.source_id, c.c.coder).where(c.c.coder.in_(coders)).distinct()).all()
            per: dict[int, set] = {}
            for sid, coder in pairs:
                per.setdefault(sid, set()).add(coder)
            sids = sorted(sid for sid, who in per.items() if len(who) == len(coders))
        if not sids:
            raise SpRealistError("agreement: no source has codings from every coder; code the same sources "
                                 "or name them with --source.")
        order = dict(conn.execute(select(S.sources.c.id, S.sources.c.ingest_order).where(S.sources.c.id.in_(sids))).all())
        sids = sorted(sids, key=lambda s: order[s])
        names = dict(conn.execute(select(S.sources.c.id, S.sources.c.name).where(S.sources.c.id.in_(sids))).all())
        units = {sid: SourceUnits.load(conn, sid) for sid in sids}
        code_order = [r[0] for r in conn.execute(select(S.codes.c.id).order_by(S.codes.c.ord, S.codes.c.id))]
    df = df[df["source_id"].isin(sids)]
    # All units, in order: (source_id, start, end).
    unit_rows = [(sid, a, b) for sid in sids for a, b in units[sid].units(unit)]
    n_units = len(unit_rows)
    offsets, starts, ends = {}, {}, {}
    pos = 0
    for sid in sids:
        spans = units[sid].units(unit)
        offsets[sid] = pos
        starts[sid] = np.array([s[0] for s in spans], dtype=np.int64)
        ends[sid] = np.array([s[1] for s in spans], dtype=np.int64)
        pos += len(spans)
    used = [cid for cid in code_order if cid in set(df["code_id"])] if code_ids is None else \
        [cid for cid in code_order if cid in set(code_ids)]
    cindex = {x: i for i, x in enumerate(coders)}
    data = np.zeros((len(used), len(coders), n_units), dtype=np.int8)
    uidx = {cid: i for i, cid in enumerate(used)}
    for (cid, sid, coder), g in df.groupby(["code_id", "source_id", "coder"]):
        st, en = starts[sid], ends[sid]
        first = np.searchsorted(en, g["start"].to_numpy(), side="right")
        last = np.searchsorted(st, g["end"].to_numpy(), side="left")  # exclusive
        for f, l in zip(first, last):
            if f < l:
                data[uidx[cid], cindex[coder], offsets[sid] + f: offsets[sid] + l] = 1
    rows, dis = [], []
    for cid in used:
        m = data[uidx[cid]]
        rows.append(_metrics(code_names[cid], m, coders))
        bad = np.where(~np.all(m == m[0], axis=0))[0]
        for u in bad:
            sid, a, b = unit_rows[u]
            rec = {"code": code_names[cid], "source": names[sid], "start": a, "end": b,
                   "text": units[sid].text[a:b]}
            rec.update({coder: bool(m[cindex[coder], u]) for coder in coders})
            dis.append(rec)
    pooled = data.transpose(1, 0, 2).reshape(len(coders), -1) if used else np.zeros((len(coders), 0), dtype=np.int8)
    rows.append(_metrics(ALL, pooled, coders))
    summary = pd.DataFrame(rows, columns=["code", "units", "coded_units", "agreed", "percent", "kappa", "alpha"])
    disagreements = pd.DataFrame(dis, columns=["code", "source", "start", "end", "text", *coders])
    return AgreementResult(coders=coders, unit=unit, summary=summary, disagreements=disagreements)


def _metrics(name: str, m: np.ndarray, coders: list[str]) -> dict:
    n = m.shape[1]
    agreed = int(np.sum(np.all(m == m[0], axis=0))) if n else 0
    return {
        "code": name, "units": n, "coded_units": int(np.sum(m.any(axis=0))) if n else 0, "agreed": agreed,
        "percent": percent_agreement(m),
        "kappa": cohen_kappa(m[0], m[1]) if len(coders) == 2 else float("nan"),
        "alpha": krippendorff_alpha(m),
    }

"""Saturation: how much evidence each CMOC and theory has, and when it stopped growing.

Counts come from CMOC evidence links (``cmoc link`` / analysis files):

* ``supporting`` / ``refuting``: distinct excerpts linked with that role;
* ``participants``: distinct participants behind the supporting excerpts (by
  :mod:`sp_realist.attribution`: the mapped speaker of the segment; nobody in
  a turn of an unmapped speaker such as the interviewer; else the source's
  participant);
* ``sources`` and ``sites`` (the source's ``site`` attribute, else the
  participant's site) of the supporting excerpts.

A CMOC is flagged *saturated* by a rule stored as the project setting
``saturation_rule`` (defaults in :data:`DEFAULT_RULE`)::

    min_supporting: 3           # at least 3 supporting excerpts
    min_participants: 2         # from at least 2 participants
    min_sources: 1
    min_sites: 1
    no_refutation_in_last: 3    # and no refuting excerpt in the last 3 sources (0 = never refuted at all)
    order: ingest               # ingest | date: the order of sources for "last" and for the curve
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..attribution import ParticipantAttributor
from ..errors import SpRealistError
from ..store import Project

DEFAULT_RULE: dict[str, Any] = {"min_supporting": 3, "min_participants": 2, "min_sources": 1, "min_sites": 1,
                                "no_refutation_in_last": 3, "order": "ingest"}
SETTING = "saturation_rule"


def validate_rule(rule: dict[str, Any], where: str = "saturation rule") -> dict[str, Any]:
    out = dict(DEFAULT_RULE)
    for k, v in (rule or {}).items():
        if k not in DEFAULT_RULE:
            raise SpRealistError(f"{where}: unknown setting {k!r}; use {', '.join(DEFAULT_RULE)}.")
        if k == "order":
            if v not in ("ingest", "date"):
                raise SpRealistError(f"{where}: order must be 'ingest' or 'date', not {v!r}.")
            out[k] = v
            continue
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise SpRealistError(f"{where}: {k} must be a whole number, not {v!r}.") from None
        if n < 0:
            raise SpRealistError(f"{where}: {k} cannot be negative.")
        out[k] = n
    return out


def get_saturation_rule(project: Project) -> dict[str, Any]:
    """The project's saturation rule (defaults filled in)."""
    return validate_rule(project.get_setting(SETTING) or {}, f"setting {SETTING}")


def set_saturation_rule(project: Project, actor: str | None = None, **changes: Any) -> dict[str, Any]:
    """Change some thresholds of the project's saturation rule; return the full rule."""
    rule = validate_rule({**get_saturation_rule(project), **changes})
    with project.begin() as conn:
        project.set_setting(SETTING, rule, conn=conn)
        project.log(conn, "saturation.rule", SETTING, actor=actor, **rule)
    return rule


def source_order(conn: Connection, order: str = "ingest") -> list[dict]:
    """Sources in ingest order, or by date (undated last, ties by ingest order)."""
    rows = [dict(r) for r in conn.execute(
        select(S.sources.c.id, S.sources.c.name, S.sources.c.date, S.sources.c.ingest_order, S.sources.c.kind)
        .order_by(S.sources.c.ingest_order)).mappings()]
    if order == "date":
        rows.sort(key=lambda r: (r["date"] is None, r["date"] or "", r["ingest_order"]))
    return rows


def evidence_facts(conn: Connection) -> pd.DataFrame:
    """One row per evidence link with the facts saturation needs."""
    ev, ex, src = S.cmoc_evidence, S.excerpts, S.sources
    rows = [dict(r) for r in conn.execute(
        select(ev.c.cmoc_id, S.cmocs.c.key.label("cmoc"), ev.c.role, ev.c.excerpt_id, ex.c.source_id, ex.c.start,
               src.c.participant_id.label("source_participant"))
        .select_from(ev.join(ex, ex.c.id == ev.c.excerpt_id).join(src, src.c.id == ex.c.source_id)
                     .join(S.cmocs, S.cmocs.c.id == ev.c.cmoc_id))).mappings()]
    if not rows:
        return pd.DataFrame(columns=["cmoc_id", "cmoc", "role", "excerpt_id", "source_id", "participant", "site"])
    # Who said each excerpt (sp_realist.attribution's rule): a mapped speaker, nobody in an unmapped
    # speaker's turn (interviewer, carer ...), else the source's participant.
    who = ParticipantAttributor(conn, {r["source_id"] for r in rows})
    sites = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                              .where(S.source_attributes.c.name == "site")).all())
    p_sites = dict(conn.execute(select(S.participants.c.id, S.participants.c.site)).all())
    p_codes = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
    for r in rows:
        pid = who.participant_id(r["source_id"], r["start"])
        r["participant"] = p_codes.get(pid) if pid is not None else None
        r["site"] = sites.get(r["source_id"]) or p_sites.get(pid) or p_sites.get(r["source_participant"])
    return pd.DataFrame(rows)[["cmoc_id", "cmoc", "role", "excerpt_id", "source_id", "participant", "site"]]


def _counts(df: pd.DataFrame) -> dict[str, int]:
    sup = df[df["role"] == "supports"]
    ref = df[df["role"] == "refutes"]
    return {"supporting": int(sup["excerpt_id"].nunique()), "refuting": int(ref["excerpt_id"].nunique()),
            "participants": int(sup["participant"].dropna().nunique()),
            "sources": int(sup["source_id"].nunique()), "sites": int(sup["site"].dropna().nunique())}


def _judge(counts: dict[str, int], refuting_sources: set[int], last_sources: list[int] | None,
           rule: dict[str, Any]) -> tuple[bool, str]:
    unmet = []
    for name, key in (("supporting excerpts", "supporting"), ("participants", "participants"),
                      ("sources", "sources"), ("sites", "sites")):
        need = rule[f"min_{key}"]
        if counts[key] < need:
            unmet.append(f"{counts[key]}/{need} {name}")
    k = rule["no_refutation_in_last"]
    if k == 0 and refuting_sources:
        unmet.append("refuted")
    elif k and last_sources is not None and refuting_sources & set(last_sources[-k:]):
        unmet.append(f"refuted in the last {k} sources")
    return (not unmet), ("meets the rule" if not unmet else "; ".join(unmet))


def saturation_table(project: Project, theory: str | None = None, level: str = "both",
                     rule: dict[str, Any] | None = None) -> pd.DataFrame:
    """Evidence counts and the saturation flag per CMOC and per theory.

    ``level``: ``cmoc``, ``theory`` or ``both`` (theory rows after each
    theory's CMOCs).  ``rule`` overrides the project's saturation rule for
    this call.  Columns: level, theory, cmoc, supporting, refuting,
    participants, sources, sites, saturated, reason.
    """
    if level not in ("cmoc", "theory", "both"):
        raise SpRealistError(f"saturation: level {level!r} is not cmoc, theory or both.")
    rule = validate_rule({**get_saturation_rule(project), **(rule or {})})
    from .cmocs import _memberships, cmoc_rows
    from .theories import theory_rows

    with project.connect() as conn:
        cmocs = cmoc_rows(conn, theory)
        members = _memberships(conn)
        facts = evidence_facts(conn)
        order = [s["id"] for s in source_order(conn, rule["order"])]
        theories = [t for t in theory_rows(conn) if theory is None or t["key"] == theory]
        if theory and not theories:
            from ._common import resolve_theory

            resolve_theory(conn, theory)
    out = []
    cmoc_flags: dict[str, bool] = {}
    for c in cmocs:
        df = facts[facts["cmoc_id"] == c["id"]]
        counts = _counts(df)
        refuting_sources = set(df.loc[df["role"] == "refutes", "source_id"])
        saturated, reason = _judge(counts, refuting_sources, order, rule)
        cmoc_flags[c["key"]] = saturated
        ts = members.get(c["id"], [])
        out.append({"level": "cmoc", "theory": theory or (ts[0] if ts else None), "cmoc": c["key"], **counts,
                    "saturated": saturated, "reason": reason})
    rows = out if level != "theory" else []
    if level in ("theory", "both"):
        by_theory = []
        for t in theories:
            keys = [c["key"] for c in cmocs if t["key"] in members.get(c["id"], [])]
            df = facts[facts["cmoc"].isin(keys)]
            counts = _counts(df)
            n_sat = sum(cmoc_flags.get(k, False) for k in keys)
            by_theory.append({"level": "theory", "theory": t["key"], "cmoc": f"{n_sat}/{len(keys)} saturated",
                              **counts, "saturated": bool(keys) and n_sat == len(keys),
                              "reason": "every CMOC saturated" if keys and n_sat == len(keys)
                              else ("no CMOCs" if not keys else f"{len(keys) - n_sat} CMOC(s) not saturated")})
        if level == "theory":
            rows = by_theory
        else:
            rows = []
            for t in by_theory:
                rows += [r for r in out if r["theory"] == t["theory"]] + [t]
            rows += [r for r in out if r["theory"] not in {t["theory"] for t in by_theory}]
    cols = ["level", "theory", "cmoc", "supporting", "refuting", "participants", "sources", "sites", "saturated",
            "reason"]
    return pd.DataFrame(rows, columns=cols)


def saturation_curve(project: Project, order: str | None = None) -> pd.DataFrame:
    """New CMOCs and new evidence per source, in ingest (or date) order.

    A CMOC is *new* at the first source that holds evidence for it.  Columns:
    position, source, date, kind, new_cmocs, cumulative_cmocs, new_evidence,
    supporting, refuting, cumulative_evidence, cmocs (keys new here).
    """
    order = order or get_saturation_rule(project)["order"]
    if order not in ("ingest", "date"):
        raise SpRealistError(f"saturation curve: order must be ingest or date, not {order!r}.")
    with project.connect() as conn:
        sources = source_order(conn, order)
        facts = evidence_facts(conn)
    seen: set[str] = set()
    total_c = total_e = 0
    rows = []
    for i, s in enumerate(sources, 1):
        df = facts[facts["source_id"] == s["id"]]
        new = sorted(set(df["cmoc"]) - seen, key=lambda k: list(df["cmoc"]).index(k))
        seen |= set(new)
        total_c += len(new)
        total_e += len(df)
        rows.append({"position": i, "source": s["name"], "date": s["date"], "kind": s["kind"],
                     "new_cmocs": len(new), "cumulative_cmocs": total_c, "new_evidence": len(df),
                     "supporting": int((df["role"] == "supports").sum()),
                     "refuting": int((df["role"] == "refutes").sum()), "cumulative_evidence": total_e,
                     "cmocs": ", ".join(new)})
    return pd.DataFrame(rows, columns=["position", "source", "date", "kind", "new_cmocs", "cumulative_cmocs",
                                       "new_evidence", "supporting", "refuting", "cumulative_evidence", "cmocs"])


def plot_saturation_curve(project: Project, path: str, order: str | None = None) -> str:
    """Draw the cumulative CMOC and evidence curves to a PNG or SVG (by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix not in ("png", "svg", "pdf"):
        raise SpRealistError(f"{path}: give a .png, .svg or .pdf file name.")
    df = saturation_curve(project, order)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(df["position"], df["cumulative_cmocs"], where="post", label="CMOCs with evidence", color="#1f77b4")
    ax2 = ax.twinx()
    ax2.step(df["position"], df["cumulative_evidence"], where="post", label="evidence links", color="#ff7f0e")
    ax.set_xlabel(f"sources ({order or 'project'} order)")
    ax.set_ylabel("CMOCs with evidence", color="#1f77b4")
    ax2.set_ylabel("evidence links", color="#ff7f0e")
    ax.set_title("Saturation curve")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return str(path)

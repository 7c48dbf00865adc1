"""Triangulation: evaluation questions x data sources (Tables 7.1-7.4 of the report).

Each cell lists the themes and mid-range theories that address a question
*and* draw on a data source:

* a **theory** addresses the questions in its ``questions`` list; it draws on
  the sources of its CMOCs' evidence excerpts;
* a **theme** addresses the questions listed for it in the ``questions``
  argument (``{"Q1": {"text": ..., "themes": [...]}}``) or in the project
  setting ``theme_questions`` (``{theme name: [Q1, Q3]}``); it draws on the
  sources coded with its codes (and its sub-themes' codes).

Data sources are grouped by source kind (``by="kind"``) or by the source
attribute ``dataset`` (``by="dataset"``, e.g. "Thematic synthesis",
"Reflective diaries"; sources without one fall back to their kind).  Items
with no linked data yet appear in the column "(no linked data)".
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project
from ._common import loads_list

UNLINKED = "(no linked data)"


def _questions(questions: Any) -> dict[str, dict]:
    if questions is None:
        return {}
    if isinstance(questions, (list, tuple)):
        return {str(q): {"text": ""} for q in questions}
    if not isinstance(questions, dict):
        raise SpRealistError("triangulation: questions must be a mapping such as {Q1: 'How effective ...?'}.")
    out = {}
    for k, v in questions.items():
        if isinstance(v, dict):
            bad = sorted(set(v) - {"text", "themes", "theories"})
            if bad:
                raise SpRealistError(f"question {k}: unknown field(s) {', '.join(bad)}; use text, themes, theories.")
            out[str(k)] = {"text": v.get("text") or "", "themes": v.get("themes"), "theories": v.get("theories")}
        else:
            out[str(k)] = {"text": "" if v is None else str(v)}
    return out


def triangulation_long(project: Project, questions: Any = None, by: str = "kind") -> pd.DataFrame:
    """One row per (question, data source, theme or theory), with the number of excerpts or codings."""
    if by not in ("kind", "dataset"):
        raise SpRealistError(f"triangulation: by must be 'kind' or 'dataset', not {by!r}.")
    qs = _questions(questions)
    with project.connect() as conn:
        kinds = dict(conn.execute(select(S.sources.c.id, S.sources.c.kind).order_by(S.sources.c.id)).all())
        datasets = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                     .where(S.source_attributes.c.name == "dataset")
                                     .order_by(S.source_attributes.c.source_id)).all())
        column = {sid: (datasets.get(sid) or k) if by == "dataset" else k for sid, k in kinds.items()}
        theories = [dict(r) for r in conn.execute(select(S.theories).order_by(S.theories.c.ord, S.theories.c.key)).mappings()]
        ev = conn.execute(
            select(S.theories.c.key, S.excerpts.c.source_id, S.cmoc_evidence.c.excerpt_id)
            .select_from(S.theories.join(S.theory_cmocs, S.theory_cmocs.c.theory_id == S.theories.c.id)
                         .join(S.cmoc_evidence, S.cmoc_evidence.c.cmoc_id == S.theory_cmocs.c.cmoc_id)
                         .join(S.excerpts, S.excerpts.c.id == S.cmoc_evidence.c.excerpt_id))
            .order_by(S.theories.c.key, S.cmoc_evidence.c.id)).all()  # a fixed order on every back end
        themes = [dict(r) for r in conn.execute(select(S.themes).order_by(S.themes.c.ord, S.themes.c.name)).mappings()]
        theme_codes = conn.execute(select(S.theme_codes.c.theme_id, S.theme_codes.c.code_id)
                                   .order_by(S.theme_codes.c.theme_id, S.theme_codes.c.code_id)).all()
        codings = conn.execute(select(S.codings.c.code_id, S.codings.c.source_id).order_by(S.codings.c.id)).all()
    setting = project.get_setting("theme_questions") or {}
    if not isinstance(setting, dict):
        raise SpRealistError("setting theme_questions: expected a mapping of theme name to a list of questions.")
    theme_names = {t["name"] for t in themes}
    theory_keys = {t["key"] for t in theories}
    # Which questions each item addresses.
    addresses: dict[tuple[str, str], set[str]] = {}
    for t in theories:
        addresses[("theory", t["key"])] = set(loads_list(t["questions"]))
    for name, qlist in setting.items():
        if name not in theme_names:
            raise SpRealistError(f"setting theme_questions: no theme named {name!r}; check the name.")
        addresses.setdefault(("theme", name), set()).update(str(q) for q in (qlist or []))
    for q, spec in qs.items():
        for kind, names, known in (("theme", spec.get("themes"), theme_names), ("theory", spec.get("theories"), theory_keys)):
            for name in names or []:
                if str(name) not in known:
                    raise SpRealistError(f"question {q}: no {kind} {name!r} in the project; check the name "
                                         f"(see 'sp-realist {kind} list').")
                addresses.setdefault((kind, str(name)), set()).add(q)
    # Where each item's data comes from.
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for tkey, sid, _eid in ev:
        d = counts.setdefault(("theory", tkey), {})
        d[column[sid]] = d.get(column[sid], 0) + 1
    children: dict[int | None, list[int]] = {}
    for t in themes:
        children.setdefault(t["parent_id"], []).append(t["id"])
    codes_of: dict[int, set[int]] = {}
    for tid, cid in theme_codes:
        codes_of.setdefault(tid, set()).add(cid)
    sources_of_code: dict[int, list[int]] = {}
    for cid, sid in codings:
        sources_of_code.setdefault(cid, []).append(sid)

    def all_codes(tid: int) -> set[int]:
        out = set(codes_of.get(tid, set()))
        for ch in children.get(tid, []):
            out |= all_codes(ch)
        return out

    for t in themes:
        d = counts.setdefault(("theme", t["name"]), {})
        for cid in all_codes(t["id"]):
            for sid in sources_of_code.get(cid, []):
                d[column[sid]] = d.get(column[sid], 0) + 1
    titles = {t["key"]: t["title"] for t in theories}
    q_order = list(qs) or sorted({q for v in addresses.values() for q in v})
    rows = []
    for q in q_order:
        for (kind, name), qset in sorted(addresses.items(), key=lambda kv: (kv[0][0] != "theme", kv[0][1])):
            if q not in qset:
                continue
            label = f"{name}: {titles[name]}" if kind == "theory" else name
            per_col = counts.get((kind, name)) or {UNLINKED: 0}
            for col, n in per_col.items():
                rows.append({"question": q, "question_text": qs.get(q, {}).get("text", ""), "data_source": col,
                             "item_type": kind, "item": label, "n": n})
    df = pd.DataFrame(rows, columns=["question", "question_text", "data_source", "item_type", "item", "n"])
    df.attrs["warnings"] = []
    if by == "dataset" and kinds and not datasets:
        df.attrs["warnings"].append(
            "no source has a 'dataset' attribute, so the columns are source kinds; give the sources one "
            "(study.yaml: attributes: {dataset: Reflective diaries}; a manifest column 'dataset'; "
            "'sp-realist attributes set SOURCE dataset=...') to group them by dataset.")
    df.attrs["data_sources"] = sorted(set(column.values()))
    return df


def triangulation(project: Project, questions: Any = None, by: str = "kind",
                  sources: Iterable[str] | None = None) -> pd.DataFrame:
    """The triangulation matrix: one row per question, one column per data source.

    Cells list themes first, then theories ("T1: title"), one per line.
    ``sources`` fixes the column order (and adds empty columns), e.g.
    ``["Meta-narrative", "Thematic synthesis", "Reflective diaries"]``.
    """
    long = triangulation_long(project, questions, by)
    qs = _questions(questions)
    q_order = list(qs) or list(dict.fromkeys(long["question"]))
    cols = list(sources or [])
    for c in long["data_source"]:
        if c not in cols and c != UNLINKED:
            cols.append(c)
    if (long["data_source"] == UNLINKED).any():
        cols.append(UNLINKED)
    rows = []
    for q in q_order:
        sub = long[long["question"] == q]
        row = {"question": q, "text": qs.get(q, {}).get("text", "") if qs else
               (sub["question_text"].iloc[0] if len(sub) else "")}
        for c in cols:
            items = sub[sub["data_source"] == c]
            row[c] = "\n".join(dict.fromkeys(items["item"]))
        rows.append(row)
    df = pd.DataFrame(rows, columns=["question", "text"] + cols)
    warnings = list(long.attrs.get("warnings", []))
    known = long.attrs.get("data_sources", [])
    for c in sources or []:
        if c not in known:
            warnings.append(f"column {c!r} is empty: no source's {by} is {c!r}; the data sources are: "
                            f"{', '.join(known) if known else '(none)'}.")
    df.attrs["warnings"] = warnings
    return df

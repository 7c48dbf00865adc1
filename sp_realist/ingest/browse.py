"""Looking at what is there: sources, segments, participants, attributes and
the corpus summary (Table 3.7 of the Mind Cymru report: diary entries and
pages per site).  Every function returns pandas DataFrames (or plain values);
the CLI only renders them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping

import pandas as pd
from sqlalchemy import func, select, update

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..sources import ensure_participant, resolve_source, set_attribute, source_attributes, source_rows
from ..store import Project

#: Words per page used to estimate page counts when no ``pages`` attribute is given.
WORDS_PER_PAGE = 500
NO_SITE = "(no site)"


# --- sources ---------------------------------------------------------------------

def list_sources(project: Project, kind: str | None = None, site: str | None = None,
                 participant: str | None = None) -> pd.DataFrame:
    """One row per source (id, name, kind, participant, date, characters, segments, attributes...)."""
    return source_rows(project, kind=kind, site=site, participant=participant).frame()


def source_detail(project: Project, ref: str | int, text: bool = True) -> tuple[dict, pd.DataFrame]:
    """``(facts, segments)`` of one source: its row and attributes, and its segments
    (order, span, kind, speaker, participant, section, times, and the text)."""
    p = S.participants
    seg = S.segments
    with project.connect() as conn:
        row = resolve_source(conn, ref)
        code = None
        if row["participant_id"] is not None:
            code = conn.execute(select(p.c.code).where(p.c.id == row["participant_id"])).scalar()
        attrs = source_attributes(conn, row["id"])
        rows = conn.execute(
            select(seg.c.ord, seg.c.start, seg.c.end, seg.c.kind, seg.c.speaker, p.c.code.label("participant"),
                   seg.c.section, seg.c.start_time, seg.c.end_time)
            .select_from(seg.outerjoin(p, seg.c.participant_id == p.c.id))
            .where(seg.c.source_id == row["id"]).order_by(seg.c.ord)
        ).mappings().all()
    facts = {
        "id": row["id"], "name": row["name"], "kind": row["kind"], "participant": code, "date": row["date"],
        "file": row["file_name"], "format": row["file_format"], "entry": (row["entry_index"] + 1)
        if row["entry_index"] is not None else None, "characters": len(row["text"]),
        "words": len(row["text"].split()), "checksum": row["checksum"], "attributes": attrs,
    }
    df = pd.DataFrame([dict(r) for r in rows],
                      columns=["ord", "start", "end", "kind", "speaker", "participant", "section",
                               "start_time", "end_time"])
    if text:
        df["text"] = [row["text"][a:b] for a, b in zip(df["start"], df["end"])]
    return facts, df


# --- participants ----------------------------------------------------------------

def participants_frame(project: Project, role: str | None = None, site: str | None = None) -> pd.DataFrame:
    """One row per participant: code, role, site, sources, turns (segments) and attributes."""
    p = S.participants
    with project.connect() as conn:
        nsrc = dict(conn.execute(select(S.sources.c.participant_id, func.count())
                                 .where(S.sources.c.participant_id.is_not(None))
                                 .group_by(S.sources.c.participant_id)).all())
        nseg = dict(conn.execute(select(S.segments.c.participant_id, func.count())
                                 .where(S.segments.c.participant_id.is_not(None))
                                 .group_by(S.segments.c.participant_id)).all())
        rows = conn.execute(select(p.c.id, p.c.code, p.c.role, p.c.site).order_by(p.c.code)).mappings().all()
        attrs = conn.execute(select(S.participant_attributes)).mappings().all()
    df = pd.DataFrame([{"code": r["code"], "role": r["role"], "site": r["site"],
                        "sources": nsrc.get(r["id"], 0), "turns": nseg.get(r["id"], 0), "_id": r["id"]}
                       for r in rows], columns=["code", "role", "site", "sources", "turns", "_id"])
    by_pid: dict[int, dict] = defaultdict(dict)
    for a in attrs:
        by_pid[a["participant_id"]][a["name"]] = a["value"]
    for name in sorted({a["name"] for a in attrs}):
        df[name] = [by_pid.get(pid, {}).get(name) for pid in df["_id"]]
    df = df.drop(columns="_id")
    if role:
        df = df[df["role"] == role]
    if site:
        df = df[df["site"] == site]
    return df.reset_index(drop=True)


def add_participant(project: Project, code: str, role: str | None = None, site: str | None = None,
                    attributes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Create a participant; refuses a code that exists (use :func:`edit_participant`)."""
    code = " ".join((code or "").split())
    if not code:
        raise SpRealistError("participants add: the code is empty; give a code such as 'S1 DK1'.")
    with project.begin() as conn:
        exists = conn.execute(select(S.participants.c.id).where(S.participants.c.code == code)).first()
        if exists:
            raise SpRealistError(f"participant {code!r} already exists; change it with 'sp-realist participants edit'.")
        ensure_participant(conn, code, role=role, site=site, attributes=dict(attributes or {}))
        project.log(conn, "participant.add", code, role=role, site=site, attributes=dict(attributes or {}))
    return participants_frame(project).query("code == @code")


def edit_participant(project: Project, code: str, role: str | None = None, site: str | None = None,
                     attributes: Mapping[str, str] | None = None, rename: str | None = None,
                     unset: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Change a participant's role, site, code (``rename``) or attributes (``unset`` removes some)."""
    code = " ".join((code or "").split())
    p = S.participants
    with project.begin() as conn:
        row = conn.execute(select(p).where(p.c.code == code)).mappings().first()
        if row is None:
            hint = did_you_mean(code, [r[0] for r in conn.execute(select(p.c.code))],
                                "see 'sp-realist participants list' or add it.")
            raise NotFoundError(f"No participant {code!r}; {hint}")
        values = {}
        if role is not None:
            values["role"] = role or None
        if site is not None:
            values["site"] = site or None
        if rename is not None:
            rename = " ".join(rename.split())
            if not rename:
                raise SpRealistError(f"participant {code!r}: the new code is empty; give a code.")
            if rename != code and conn.execute(select(p.c.id).where(p.c.code == rename)).first():
                raise SpRealistError(f"participant {rename!r} already exists; choose another code.")
            values["code"] = rename
        if values:
            conn.execute(update(p).where(p.c.id == row["id"]).values(**values))
        present = {r[0] for r in conn.execute(select(S.participant_attributes.c.name).where(
            S.participant_attributes.c.participant_id == row["id"])).all()}
        for name in unset:
            if name not in present:
                raise SpRealistError(f"participant {code!r} has no attribute {name!r}; nothing to remove.")
            set_attribute(conn, "participant", row["id"], name, None)
        for k, v in (attributes or {}).items():
            set_attribute(conn, "participant", row["id"], k, v)
        project.log(conn, "participant.edit", code, **values, attributes=dict(attributes or {}), unset=list(unset))
    new_code = values.get("code", code)
    return participants_frame(project).query("code == @new_code")


# --- attributes ------------------------------------------------------------------

def attributes_frame(project: Project, name: str | None = None, entity: str | None = None) -> pd.DataFrame:
    """Attribute names across sources and participants (how many carry each, how many
    distinct values, examples); with ``name``, that attribute's values and counts."""
    if entity not in (None, "source", "participant"):
        raise SpRealistError(f"attributes: {entity!r} is not 'source' or 'participant'.")
    frames = []
    with project.connect() as conn:
        for ent, table in (("source", S.source_attributes), ("participant", S.participant_attributes)):
            if entity and ent != entity:
                continue
            rows = conn.execute(select(table.c.name, table.c.value)).all()
            frames.append(pd.DataFrame([(ent, n, v) for n, v in rows], columns=["entity", "name", "value"]))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["entity", "name", "value"])
    if name is not None:
        known = set(df["name"].tolist())
        df = df[df["name"] == name]
        if df.empty:
            hint = did_you_mean(name, known, "see 'sp-realist attributes list'.")
            raise NotFoundError(f"No attribute named {name!r}; {hint}")
        out = (df.groupby(["entity", "value"], dropna=False).size().reset_index(name="count")
               .sort_values(["entity", "count", "value"], ascending=[True, False, True]))
        out.insert(1, "name", name)
        return out.reset_index(drop=True)
    rows = []
    for (ent, n), g in df.groupby(["entity", "name"], sort=True):
        vals = sorted({str(v) for v in g["value"] if v is not None})
        rows.append({"entity": ent, "name": n, "count": len(g), "values": len(vals),
                     "examples": "; ".join(vals[:5]) + (" ..." if len(vals) > 5 else "")})
    return pd.DataFrame(rows, columns=["entity", "name", "count", "values", "examples"])


def set_source_attributes(project: Project, ref: str | int, attributes: Mapping[str, str],
                          unset: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Set (and/or remove) attributes of one source; returns its attributes afterwards."""
    if not attributes and not unset:
        raise SpRealistError("attributes set: give at least one NAME=VALUE.")
    for k, v in attributes.items():
        if not k.strip():
            raise SpRealistError("attributes set: an attribute name is empty; write NAME=VALUE.")
    with project.begin() as conn:
        row = resolve_source(conn, ref)
        present = source_attributes(conn, row["id"])
        for name in unset:
            if name not in present:
                raise SpRealistError(f"source {row['name']!r} has no attribute {name!r}; nothing to remove.")
            set_attribute(conn, "source", row["id"], name, None)
        for k, v in attributes.items():
            set_attribute(conn, "source", row["id"], k.strip(), v)
        project.log(conn, "attributes.set", row["name"], set=dict(attributes), unset=list(unset),
                    before={k: present.get(k) for k in list(attributes) + list(unset)})
        return source_attributes(conn, row["id"])


# --- summary ---------------------------------------------------------------------

def _source_sites(conn) -> dict[int, str]:
    """source id -> site: the source's ``site`` attribute, else its participant's site."""
    attr = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                             .where(S.source_attributes.c.name == "site")).all())
    psite = dict(conn.execute(select(S.sources.c.id, S.participants.c.site).select_from(
        S.sources.join(S.participants, S.sources.c.participant_id == S.participants.c.id))).all())
    ids = [r[0] for r in conn.execute(select(S.sources.c.id)).all()]
    return {sid: attr.get(sid) or psite.get(sid) or NO_SITE for sid in ids}


def sources_by_kind_and_site(project: Project) -> pd.DataFrame:
    """Counts of sources per site (rows) and kind (columns), with totals."""
    with project.connect() as conn:
        sites = _source_sites(conn)
        kinds = dict(conn.execute(select(S.sources.c.id, S.sources.c.kind)).all())
    df = pd.DataFrame([(sites[i], kinds[i]) for i in kinds], columns=["site", "kind"])
    if df.empty:
        return pd.DataFrame(columns=["site", "total"])
    table = pd.crosstab(df["site"], df["kind"])
    table = table[[k for k in S.SOURCE_KINDS if k in table.columns]]
    table["total"] = table.sum(axis=1)
    table.loc["Total"] = table.sum(axis=0)
    return table.reset_index().rename_axis(columns=None)


def diary_entries_per_site(project: Project, words_per_page: int = WORDS_PER_PAGE) -> pd.DataFrame:
    """Table 3.7: diary entries and pages per site.

    Pages are counted per diary *file*: its ``pages`` attribute when given
    (``--attr pages=N`` or a manifest column, counted once per file), else
    estimated as ``ceil(words / words_per_page)`` over the file's entries.
    ``keepers`` counts distinct participant codes (unidentified entries are
    not counted).
    """
    with project.connect() as conn:
        sites = _source_sites(conn)
        pages_attr = dict(conn.execute(select(S.source_attributes.c.source_id, S.source_attributes.c.value)
                                       .where(S.source_attributes.c.name == "pages")).all())
        result = conn.execute(select(S.sources.c.id, S.sources.c.file_name, S.sources.c.checksum,
                                     S.sources.c.participant_id, S.sources.c.text)
                              .where(S.sources.c.kind == "diary").order_by(S.sources.c.ingest_order))
        files: dict[tuple, dict] = {}
        for sid, fname, checksum, pid, text in result:  # streamed, one entry at a time
            f = files.setdefault((fname, checksum, sites[sid]), {"entries": 0, "words": 0, "pages": None,
                                                                 "keepers": set()})
            f["entries"] += 1
            f["words"] += len(text.split())
            if pid is not None:
                f["keepers"].add(pid)
            if sid in pages_attr:
                try:
                    given = float(pages_attr[sid])
                except (TypeError, ValueError):
                    raise SpRealistError(
                        f"source {sid}: the pages attribute {pages_attr[sid]!r} is not a number; fix it with "
                        "'sp-realist attributes set'.") from None
                f["pages"] = max(f["pages"] or 0, given)
    per_site: dict[str, dict] = {}
    for (_f, _c, site), f in files.items():
        s = per_site.setdefault(site, {"entries": 0, "pages": 0.0, "estimated": 0, "files": 0, "keepers": set()})
        s["entries"] += f["entries"]
        s["files"] += 1
        s["keepers"] |= f["keepers"]
        if f["pages"] is not None:
            s["pages"] += f["pages"]
        else:
            s["pages"] += math.ceil(f["words"] / words_per_page) if f["words"] else 0
            s["estimated"] += 1
    rows = []
    for site in sorted(per_site, key=lambda x: (x == NO_SITE, x)):
        s = per_site[site]
        rows.append({"Sites": site, "Total entries": s["entries"], "Total pages": _num(s["pages"]),
                     "Diary keepers": len(s["keepers"]), "Files": s["files"],
                     f"Files with pages estimated (words/{words_per_page})": s["estimated"]})
    if rows:
        total = {"Sites": "Total"}
        for col in list(rows[0])[1:]:
            total[col] = _num(sum(r[col] for r in rows)) if col != "Diary keepers" else \
                len(set().union(*[per_site[s]["keepers"] for s in per_site]))
        rows.append(total)
    return pd.DataFrame(rows, columns=["Sites", "Total entries", "Total pages", "Diary keepers", "Files",
                                       f"Files with pages estimated (words/{words_per_page})"])


def _num(x: float):
    return int(x) if float(x).is_integer() else round(x, 1)


def participants_by_role(project: Project) -> pd.DataFrame:
    """Participants per role: how many, at which sites, and how many sources they have."""
    df = participants_frame(project)
    if df.empty:
        return pd.DataFrame(columns=["role", "participants", "sites", "sources"])
    df["role"] = df["role"].fillna("(no role)")
    out = df.groupby("role", sort=True).agg(
        participants=("code", "count"),
        sites=("site", lambda s: ", ".join(sorted({x for x in s if isinstance(x, str) and x}))),  # None may be NaN
        sources=("sources", "sum"),
    ).reset_index()
    return out


def summary(project: Project, words_per_page: int = WORDS_PER_PAGE) -> dict[str, pd.DataFrame]:
    """The corpus summary: ``sources`` (by kind and site), ``diaries`` (Table 3.7)
    and ``participants`` (by role)."""
    return {
        "sources": sources_by_kind_and_site(project),
        "diaries": diary_entries_per_site(project, words_per_page),
        "participants": participants_by_role(project),
    }

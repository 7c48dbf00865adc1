"""The audit log as a table: who changed what, when (``Project.log`` writes it; this only reads)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
from sqlalchemy import select

from .. import schema as S
from ..errors import SpRealistError
from ..store import Project

COLUMNS = ["id", "at", "actor", "action", "target", "detail"]


def _since(value: str | date | datetime) -> str:
    """An ISO date or date-time as the UTC string the log's ``at`` column compares with."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value.isoformat()
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SpRealistError(f"log --since {text!r}: not a date; give YYYY-MM-DD or YYYY-MM-DDTHH:MM.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def audit_log(project: Project, *, who: str | None = None, since: str | date | datetime | None = None,
              action: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The audit log, oldest first: ``who`` (the actor, exactly), ``since`` (a date or date-time, UTC when no
    zone is given), ``action`` (exactly, ``code`` also matches ``code.add``, ``code.*`` any action starting
    ``code.``); ``limit`` keeps the latest that many."""
    a = S.audit_log.c
    q = select(a.id, a.at, a.actor, a.action, a.target, a.detail)
    if who is not None and str(who).strip():
        q = q.where(a.actor == " ".join(str(who).split()))
    if since is not None and str(since).strip():
        q = q.where(a.at >= _since(since))
    if action is not None and str(action).strip():
        name = str(action).strip()
        if name.endswith("*"):
            q = q.where(a.action.startswith(name[:-1], autoescape=True))
        else:
            q = q.where((a.action == name) | a.action.startswith(name + ".", autoescape=True))
    if limit is not None:
        q = q.order_by(a.id.desc()).limit(limit)
        q = select(q.subquery()).order_by("id")
    else:
        q = q.order_by(a.id)
    with project.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)

"""The coding actions of one reading session, with undo and redo.

Every action is done through the library's own functions (``add_coding``, ``remove_codings``, ``add_code``,
``add_memo``, ``set_appraisal``, ``link_evidence`` ...), each in its own transaction, so a bad value gets
the command line's one-sentence error and leaves nothing half-written.  An action remembers what it needs
to undo itself through the library too (``remove_codings`` for a coding it made, ``delete_code`` for a code
it created, ``delete_memo``, ``delete_appraisal`` or the earlier appraisal, ``unlink_evidence``); undoing
then redoing does the action again.  The history lasts as long as the session.

A coding or memo made again (undoing its removal, redoing its creation) gets a new id from the database, so
the session forwards the old id to the new one (:meth:`Session.made`) and every action looks its ids up
through :meth:`Session.current`: a memo on a coding that was removed and brought back is still found, on
SQLite (which may or may not hand the old id out again) and on PostgreSQL (which never does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import SpRealistError
from ..store import Project


@dataclass
class Span:
    source_id: int
    start: int
    end: int

    def ref(self) -> dict:
        """The excerpt reference the appraisal and CMOC functions take."""
        return {"source": self.source_id, "span": [self.start, self.end]}


class Action:
    label = "action"
    #: The source whose codings or appraisals the action changes, i.e. whose counts in the source list it
    #: changes (None: a memo or a link to a CMOC changes none of them).
    source_id: int | None = None

    def do(self, s: "Session") -> None:  # pragma: no cover - every action overrides
        raise NotImplementedError

    def undo(self, s: "Session") -> None:  # pragma: no cover - every action overrides
        raise NotImplementedError


def _coding_id(s: "Session", code: str, span: Span, coder: str) -> int:
    from ..coding.codings import list_codings

    df = list_codings(s.project, code=code, source=span.source_id, coder=coder, text=False)
    df = df[(df["start"] == span.start) & (df["end"] == span.end)]
    return int(df["id"].iloc[0])


@dataclass
class ApplyCode(Action):
    code: str
    span: Span
    parent: str | None = None
    created_code: bool = False
    coding_id: int | None = None

    @property
    def label(self) -> str:
        return f"code {self.code!r}"

    @property
    def source_id(self) -> int:
        return self.span.source_id

    def do(self, s):
        from ..coding._common import clean_name
        from ..coding.codebook import add_code, delete_code
        from ..coding.codings import add_coding

        self.code = clean_name(self.code)
        before = self.coding_id  # set when this is a redo
        self.created_code = self.code not in s.code_names()
        if self.created_code:
            add_code(s.project, self.code, parent=self.parent or None)
        try:
            made = add_coding(s.project, self.code, self.span.source_id, span=(self.span.start, self.span.end),
                              coder=s.coder)
        except SpRealistError:
            if self.created_code:
                delete_code(s.project, self.code)
            raise
        if not bool(made["new"].iloc[0]):
            if self.created_code:  # pragma: no cover - a new code cannot have the coding already
                delete_code(s.project, self.code)
            raise SpRealistError(f"code {self.code!r}: you have already coded this passage with it; nothing changed.")
        self.coding_id = _coding_id(s, self.code, self.span, s.coder)
        s.made("coding", self.coding_id, was=before)

    def undo(self, s):
        from ..coding.codebook import delete_code
        from ..coding.codings import remove_codings

        remove_codings(s.project, ids=[s.current("coding", self.coding_id)])
        if self.created_code:
            delete_code(s.project, self.code)


@dataclass
class RemoveCoding(Action):
    coding_id: int
    row: dict = field(default_factory=dict)
    memos: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"remove {self.row.get('code', 'coding')!r}"

    def do(self, s):
        from ..coding.codings import list_codings, remove_codings
        from ..coding.memos import memo_records

        self.coding_id = s.current("coding", self.coding_id)
        df = list_codings(s.project, text=False)
        df = df[df["id"] == self.coding_id]
        if df.empty:
            raise SpRealistError(f"coding {self.coding_id}: no such coding (removed already?); nothing changed.")
        self.row = df.iloc[0].to_dict()
        self.source_id = s.source_id_of(self.row["source"])
        self.memos = memo_records(s.project, on="coding", target=self.coding_id)
        remove_codings(s.project, ids=[self.coding_id])

    def undo(self, s):
        from ..coding.codings import add_coding
        from ..coding.memos import add_memo

        r = self.row
        add_coding(s.project, r["code"], r["source"], span=(int(r["start"]), int(r["end"])), coder=r["coder"],
                   memo=r["memo"], origin=r["origin"])
        span = Span(s.source_id_of(r["source"]), int(r["start"]), int(r["end"]))
        before, self.coding_id = self.coding_id, _coding_id(s, r["code"], span, r["coder"])
        s.made("coding", self.coding_id, was=before)
        for m in self.memos:
            s.made("memo", add_memo(s.project, m["text"], on="coding", target=self.coding_id, title=m.get("title"),
                                    author=m.get("author")), was=m["id"])


@dataclass
class Recode(Action):
    coding_id: int
    code: str
    parent: str | None = None
    steps: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"recode to {self.code!r}"

    def do(self, s):
        remove = RemoveCoding(self.coding_id)
        remove.do(s)
        r = remove.row
        apply = ApplyCode(self.code, Span(s.source_id_of(r["source"]), int(r["start"]), int(r["end"])), self.parent)
        try:
            apply.do(s)
        except SpRealistError:
            remove.undo(s)
            self.coding_id = remove.coding_id
            raise
        self.steps = [remove, apply]
        self.source_id = remove.source_id

    def undo(self, s):
        remove, apply = self.steps
        apply.undo(s)
        remove.undo(s)
        self.coding_id = remove.coding_id


@dataclass
class AddMemo(Action):
    text: str
    on: str
    target: Any
    title: str | None = None
    memo_id: int | None = None
    label = "memo"

    def do(self, s):
        from ..coding.memos import add_memo

        target = s.current("coding", self.target) if self.on == "coding" else self.target
        before = self.memo_id  # set when this is a redo
        self.memo_id = add_memo(s.project, self.text, on=self.on, target=target, title=self.title,
                                author=s.coder)
        s.made("memo", self.memo_id, was=before)

    def undo(self, s):
        from ..coding.memos import delete_memo

        delete_memo(s.project, s.current("memo", self.memo_id))


@dataclass
class Appraise(Action):
    span: Span
    steps: dict
    before: dict | None = None
    label = "appraisal"

    @property
    def source_id(self) -> int:
        return self.span.source_id

    def do(self, s):
        from ..cmoc.appraisal import STEP_FIELDS, list_appraisals, set_appraisal

        df = list_appraisals(s.project, analyst=s.coder)
        src = s.source_name_of(self.span.source_id)
        df = df[(df["source"] == src) & (df["start"] == self.span.start) & (df["end"] == self.span.end)]
        self.before = None
        if len(df):
            row = df.iloc[0].to_dict()
            self.before = {k: ("" if _missing(row.get(k)) else row.get(k)) for k in STEP_FIELDS}
            self.before["theory_change"] = "" if _missing(row.get("theory_change")) else \
                ("yes" if row["theory_change"] else "no")
        result = set_appraisal(s.project, self.span.ref(), s.coder, **self.steps)
        if result["status"] == "unchanged":
            raise SpRealistError("appraisal: nothing changed; the excerpt already has these values.")

    def undo(self, s):
        from ..cmoc.appraisal import delete_appraisal, set_appraisal

        if self.before is None:
            delete_appraisal(s.project, self.span.ref(), s.coder)
        else:
            set_appraisal(s.project, self.span.ref(), s.coder, **self.before)


def _missing(v) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


@dataclass
class LinkEvidence(Action):
    span: Span
    cmoc: str
    role: str = "supports"
    existed: bool = False

    @property
    def label(self) -> str:
        return f"link to {self.cmoc} ({self.role})"

    def do(self, s):
        from ..cmoc.cmocs import cmoc_evidence, link_evidence

        df = cmoc_evidence(s.project, self.cmoc)
        src = s.source_name_of(self.span.source_id)
        self.existed = bool(((df["source"] == src) & (df["start"] == self.span.start) & (df["end"] == self.span.end)
                             & (df["role"] == self.role)).any())
        if self.existed:
            raise SpRealistError(f"CMOC {self.cmoc}: this excerpt is already linked as '{self.role}' evidence; "
                                 "nothing changed.")
        link_evidence(s.project, self.cmoc, self.span.ref(), role=self.role, analyst=s.coder)

    def undo(self, s):
        from ..cmoc.cmocs import unlink_evidence

        unlink_evidence(s.project, self.cmoc, self.span.ref(), role=self.role, actor=s.coder)


class Session:
    """A reading session of ``coder`` on ``project``: do actions, undo and redo them."""

    def __init__(self, project: Project, coder: str):
        if not coder or not str(coder).strip():
            raise SpRealistError("browse: name the coder (--coder or $SP_REALIST_CODER).")
        self.project = project
        self.coder = coder
        self.done: list[Action] = []
        self.undone: list[Action] = []
        self._moved: dict[tuple[str, int], int] = {}

    # ids of rows made again
    def made(self, kind: str, new: int, was: int | None = None) -> None:
        """Record that a ``kind`` ("coding" or "memo") row was made with id ``new``: again, when ``was`` is the
        id it had before (so ``was``, and whatever ``was`` already led to, now lead to ``new``), else afresh (an
        id SQLite handed out again names the new row, not an old one)."""
        self._moved.pop((kind, new), None)
        if was is None:
            return
        for old in {was, self.current(kind, was)}:
            if old != new:
                self._moved[(kind, old)] = new

    def current(self, kind: str, id_: Any) -> Any:
        """The id a ``kind`` first made as ``id_`` has now (following every time it was made again)."""
        seen = set()
        while (kind, id_) in self._moved and id_ not in seen:
            seen.add(id_)
            id_ = self._moved[(kind, id_)]
        return id_

    # small lookups the actions share
    def code_names(self) -> set[str]:
        from ..coding.codebook import codebook_tree

        return set(codebook_tree(self.project)["name"].tolist())

    def source_id_of(self, name: str) -> int:
        from ..sources import resolve_source

        with self.project.connect() as conn:
            return resolve_source(conn, name)["id"]

    def source_name_of(self, source_id: int) -> str:
        from ..sources import resolve_source

        with self.project.connect() as conn:
            return resolve_source(conn, source_id)["name"]

    def do(self, action: Action) -> Action:
        """Do ``action`` (a :class:`SpRealistError` leaves the project and the history as they were)."""
        action.do(self)
        self.done.append(action)
        self.undone.clear()
        return action

    def undo(self) -> Action | None:
        """Undo the last action done; None when there is nothing to undo."""
        if not self.done:
            return None
        action = self.done.pop()
        action.undo(self)
        self.undone.append(action)
        return action

    def redo(self) -> Action | None:
        """Do again the last action undone; None when there is nothing to redo."""
        if not self.undone:
            return None
        action = self.undone.pop()
        action.do(self)
        self.done.append(action)
        return action

    # the actions, by name
    def apply_code(self, span: Span, code: str, parent: str | None = None) -> ApplyCode:
        return self.do(ApplyCode(code, span, parent))

    def remove_coding(self, coding_id: int) -> RemoveCoding:
        return self.do(RemoveCoding(coding_id))

    def recode(self, coding_id: int, code: str, parent: str | None = None) -> Recode:
        return self.do(Recode(coding_id, code, parent))

    def add_memo(self, text: str, *, on: str, target: Any, title: str | None = None) -> AddMemo:
        return self.do(AddMemo(text, on, target, title))

    def appraise(self, span: Span, **steps: Any) -> Appraise:
        return self.do(Appraise(span, steps))

    def link(self, span: Span, cmoc: str, role: str = "supports") -> LinkEvidence:
        from ..cmoc._common import ROLES

        if role not in ROLES:
            raise SpRealistError(f"role {role!r} is not one of {', '.join(ROLES)}.")
        return self.do(LinkEvidence(span, cmoc, role))

"""The output check: nothing a command prints or writes may hold a real name from an applied key.

The key lives outside the project, so the check must work without it.  When a
key is applied, :func:`record_fingerprints` stores in the project (the meta
entry ``privacy:fingerprints``) a random per-project salt and, for every
original and variant of the key, HMAC-SHA256(salt, its normalised token
sequence) -- lower-cased, or in its exact case for a case-sensitive entry --
truncated to 128 bits.  :class:`Fingerprints` then hashes every token n-gram
of an output (n up to the longest original) and reports those whose hash is
stored.  Tokens are the anonymiser's own (:mod:`sp_realist.privacy.detect`:
spaCy's tokenizer after the same masking, zero-width characters read both
ways), so the check sees what anonymise would have replaced.

Residual risk: someone holding the project has the salt, so they can confirm a
*guessed* name (hash the guess and compare); they cannot list the names.

:class:`LeakFinder` joins the fingerprints and, when given, the key itself.
The command line activates one per command (:func:`activate`,
:func:`sp_realist.cli_support.get_project`); :func:`check_frame`,
:func:`check_text` and :func:`checked_path` refuse with :class:`CheckFailed`
(exit 3), naming the command, the file and the row/column or line, and write
nothing.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import CheckFailed, SpRealistError
from .detect import Match, mask, resolve_overlaps, tokenizer_nlp, without_zero_width

META_KEY = "privacy:fingerprints"
ENV_KEY = "SP_REALIST_KEY"
DIGEST_BYTES = 16


# --------------------------------------------------------------------------
# fingerprints


def _tokens(text: str) -> list[str]:
    doc = tokenizer_nlp().tokenizer(" ".join(mask(str(text)).split()))
    return [t.text for t in doc if not t.is_space]


def _digest(salt: bytes, tokens: list[str], exact: bool) -> str:
    msg = ("c\x00" if exact else "l\x00") + "\x1f".join(tokens if exact else [t.lower() for t in tokens])
    return hmac.new(salt, msg.encode("utf-8"), hashlib.sha256).digest()[:DIGEST_BYTES].hex()


def _load(conn: Connection) -> dict | None:
    row = conn.execute(select(S.meta.c.value).where(S.meta.c.key == META_KEY)).first()
    return json.loads(row[0]) if row else None


def record_fingerprints(conn: Connection, key) -> None:
    """Add the fingerprints of ``key``'s originals and variants to the project (inside the caller's
    transaction).  The salt is made once per project; fingerprints of earlier keys are kept."""
    data = _load(conn)
    if data is None:
        data = {"v": 1, "salt": secrets.token_hex(32), "lower": [], "exact": [], "lengths": []}
        fresh = True
    else:
        fresh = False
    salt = bytes.fromhex(data["salt"])
    lower, exact, lengths = set(data["lower"]), set(data["exact"]), set(data["lengths"])
    for e in key.entries:
        for term in e.terms:
            toks = _tokens(term)
            if not toks:
                continue
            lengths.add(len(toks))
            (exact if e.case_sensitive else lower).add(_digest(salt, toks, bool(e.case_sensitive)))
    data.update(lower=sorted(lower), exact=sorted(exact), lengths=sorted(lengths))
    value = json.dumps(data, separators=(",", ":"))
    if fresh:
        conn.execute(insert(S.meta).values(key=META_KEY, value=value))
    else:
        conn.execute(update(S.meta).where(S.meta.c.key == META_KEY).values(value=value))


def clear_fingerprints(conn: Connection) -> None:
    """Drop the fingerprints (once no anonymisation is in effect any more)."""
    conn.execute(delete(S.meta).where(S.meta.c.key == META_KEY))


class Fingerprints:
    """Finds, without the key, the token sequences whose salted hash the project stores."""

    def __init__(self, data: dict):
        self.salt = bytes.fromhex(data["salt"])
        self.lower = frozenset(data["lower"])
        self.exact = frozenset(data["exact"])
        self.lengths = sorted(set(data["lengths"]), reverse=True)
        self._base = hmac.new(self.salt, digestmod=hashlib.sha256)

    def _hit(self, words: list[str], exact: bool) -> bool:
        h = self._base.copy()
        h.update((("c\x00" if exact else "l\x00") + "\x1f".join(words)).encode("utf-8"))
        return h.digest()[:DIGEST_BYTES].hex() in (self.exact if exact else self.lower)

    def _spans(self, text: str) -> list[tuple[int, int, int]]:
        doc = tokenizer_nlp().tokenizer(mask(text))
        toks = [(t.idx, t.idx + len(t), t.text) for t in doc if not t.is_space]
        out = []
        lowered = [t[2].lower() for t in toks]
        for n in self.lengths:
            for i in range(len(toks) - n + 1):
                if (self.lower and self._hit(lowered[i:i + n], False)) or \
                        (self.exact and self._hit([t[2] for t in toks[i:i + n]], True)):
                    out.append((toks[i][0], toks[i + n - 1][1], -1))
        return out

    def find(self, text: str) -> list[Match]:
        if not text:
            return []
        spans = self._spans(text)
        stripped = without_zero_width(text)
        if stripped is not None:
            short, index = stripped
            spans += [(index[s], index[e - 1] + 1, k) for s, e, k in self._spans(short)]
        return [Match(s, e, k) for s, e, k in resolve_overlaps(spans)]


class LeakFinder:
    """The fingerprints of a project and, when given, the key: ``find(text)`` like a Detector's
    (``Match.entry`` is -1 for a fingerprint hit, whose key entry is unknown)."""

    def __init__(self, fingerprints: Fingerprints | None = None, key=None):
        self.fingerprints = fingerprints
        self.key = key
        self.detector = None
        if key is not None:
            from .detect import Detector

            self.detector = Detector(key)

    def find(self, text: str) -> list[Match]:
        if not text:
            return []
        spans = []
        if self.detector is not None:
            spans += [(m.start, m.end, m.entry) for m in self.detector.find(text)]
        if self.fingerprints is not None:
            spans += [(m.start, m.end, m.entry) for m in self.fingerprints.find(text)]
        if not spans:
            return []
        # a hit of the key names its entry: prefer it over the fingerprint hit on the same words
        best: dict[tuple[int, int], int] = {}
        for s, e, k in spans:
            if best.get((s, e), -2) < k:
                best[(s, e)] = k
        return [Match(s, e, k) for s, e, k in resolve_overlaps([(s, e, k) for (s, e), k in best.items()])]

    def describe(self, entry: int) -> str:
        if entry >= 0 and self.key is not None:
            return f"key entry {entry + 1} -> {self.key.entries[entry].replacement!r}"
        return "a name from the applied pseudonym key"


def applied_keys(project) -> list[str]:
    """Hashes of the keys whose anonymisation is currently in effect, latest first."""
    from sqlalchemy import func

    r = S.anonymisation_records
    with project.connect() as conn:
        rows = conn.execute(select(r.c.key_sha256, func.max(r.c.id).label("last"))
                            .group_by(r.c.key_sha256).order_by(func.max(r.c.id).desc())).all()
    return [row[0] for row in rows]


def leak_finder(project, key=None) -> LeakFinder | None:
    """The finder for ``project``'s outputs, or None when no key is in effect (one query).

    ``key`` (a Key or a key file; else ``$SP_REALIST_KEY``) is used too when given; it must be a key
    applied to the project.  A project anonymised before fingerprints were kept needs the key.
    """
    with project.connect() as conn:
        data = _load(conn)
    applied = applied_keys(project) if data is None else True
    if not applied:
        return None
    if key is None and os.environ.get(ENV_KEY):
        key = os.environ[ENV_KEY]
    if key is not None:
        from .anonymise import check_key_matches

    loaded = check_key_matches(project, key) if key is not None else None
    if data is None and loaded is None:
        raise SpRealistError(
            f"{project.location}: a pseudonym key is applied but the project has no fingerprints to check "
            f"outputs with (it was anonymised by an older sp_realist); pass --key KEY (or set ${ENV_KEY}), or "
            "run 'sp-realist anonymise --key KEY' once more to add them."
        )
    return LeakFinder(Fingerprints(data) if data else None, loaded)


# --------------------------------------------------------------------------
# the active check of a command

_active: contextvars.ContextVar[LeakFinder | None] = contextvars.ContextVar("sp_realist_leak_finder", default=None)
_what: contextvars.ContextVar[str] = contextvars.ContextVar("sp_realist_output_what", default="output")


def activate(finder: LeakFinder | None, what: str | None = None):
    """Make ``finder`` the check of every output until :func:`deactivate` (returns a token)."""
    tokens = (_active.set(finder), _what.set(what or _what.get()))
    return tokens


def deactivate(tokens) -> None:
    _active.reset(tokens[0])
    _what.reset(tokens[1])


def active() -> LeakFinder | None:
    return _active.get()


@contextmanager
def activated(project, key=None, what: str | None = None) -> Iterator[LeakFinder | None]:
    """``with activated(project):`` -- every output written inside is checked (the Python API's way)."""
    tokens = activate(leak_finder(project, key), what)
    try:
        yield active()
    finally:
        deactivate(tokens)


def _refuse(finder: LeakFinder, where: str, location: str, entry: int) -> None:
    raise CheckFailed(
        f"{_what.get()}: {where} would hold {finder.describe(entry)} (at {location}); nothing was written. "
        "Anonymise what still holds it ('sp-realist anonymise --key KEY'; 'sp-realist audit' on the project "
        "lists where) and run the command again."
    )


def check_text(text: str, where: str = "stdout", finder: LeakFinder | None = None) -> None:
    """Refuse if ``text`` holds a name (reported by line)."""
    finder = finder or active()
    if finder is None or not text:
        return
    matches = finder.find(text)
    if matches:
        line = text.count("\n", 0, matches[0].start) + 1
        _refuse(finder, where, f"line {line}", matches[0].entry)


def check_frame(df, where: str = "stdout", title: str | None = None, finder: LeakFinder | None = None) -> None:
    """Refuse if a cell, a column name or the title of ``df`` holds a name (reported by row and column)."""
    finder = finder or active()
    if finder is None:
        return
    if title:
        for m in finder.find(str(title)):
            _refuse(finder, where, "the title", m.entry)
    for col in df.columns:
        for m in finder.find(str(col)):
            _refuse(finder, where, f"column name {str(col)!r}", m.entry)
    for col in df.columns:
        seen: dict[str, bool] = {}
        for i, value in enumerate(df[col].tolist()):
            if value is None or isinstance(value, (int, float, bool)):
                continue
            text = str(value)
            if text in seen:
                continue
            seen[text] = True
            matches = finder.find(text)
            if matches:
                _refuse(finder, where, f"row {i + 1}, column {str(col)!r}", matches[0].entry)


def check_file(path: str | os.PathLike, shown: str | os.PathLike | None = None,
               finder: LeakFinder | None = None) -> None:
    """Refuse if the file at ``path`` (read by its type, as ``audit`` does) or its name holds a name."""
    from .audit import scan_file

    finder = finder or active()
    if finder is None:
        return
    shown = Path(shown or path)
    for m in finder.find(shown.name):
        _refuse(finder, str(shown), "the file name", m.entry)
    for loc, _s, _e, k, _txt in scan_file(finder, Path(path), shown.name):
        _refuse(finder, str(shown), loc, k)


@contextmanager
def checked_path(path: str | os.PathLike, finder: LeakFinder | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is checked and moved into place,
    otherwise (a leak, an error) it is removed and ``path`` is left as it was."""
    path = Path(path)
    finder = finder or active()
    if finder is None:
        yield path
        return
    if not path.parent.is_dir():
        raise SpRealistError(f"{path}: the folder {path.parent} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(prefix=".sp-realist-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        check_file(tmp, path, finder)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

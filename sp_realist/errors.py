"""Exceptions raised by sp_realist's library code.

Domain code never prints and never calls ``sys.exit``: it raises one of these
with a single, complete sentence that names the file or object concerned and
says what to do.  The command-line layer turns them into an exit code.
"""

from __future__ import annotations


class SpRealistError(Exception):
    """Bad input or a refused operation.  The CLI prints the message and exits 1."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ProjectError(SpRealistError):
    """The project file cannot be found, opened or migrated."""


class IngestError(SpRealistError):
    """A file could not be ingested (undecodable, empty, wrong type...)."""


class NotFoundError(SpRealistError):
    """A named object (source, code, CMOC, theory...) does not exist."""


class CheckFailed(SpRealistError):
    """A check the user asked for did not pass (leak audit, agreement threshold).

    The CLI exits 3 so that scripts can tell "the check failed" from "bad input".
    """

    exit_code = 3


def closest(name: object, candidates) -> str | None:
    """The candidate most like ``name`` (difflib, ignoring case and spacing), or None if none is close."""
    import difflib

    def norm(text: object) -> str:
        return " ".join(str(text).split()).casefold()

    by_norm: dict[str, str] = {}
    for c in candidates:
        if c is not None:
            by_norm.setdefault(norm(c), str(c))
    match = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[match[0]] if match else None


def did_you_mean(name: object, candidates, otherwise: str) -> str:
    """``"did you mean 'Workload'?"`` for the closest candidate, else ``otherwise`` (what to do instead):
    the end of a not-found sentence."""
    match = closest(name, candidates)
    return f"did you mean {match!r}?" if match is not None else otherwise

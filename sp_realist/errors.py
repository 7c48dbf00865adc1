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

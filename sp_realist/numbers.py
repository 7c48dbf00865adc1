"""Whole numbers a user gives (ids, offsets, counts) must fit the project's 64-bit integer columns.

SQLite (and PostgreSQL's BIGINT) store integers from -2**63 to 2**63 - 1; a larger Python int reaching a query
raises OverflowError deep in the driver.  The command line bounds every integer option with
:class:`sp_realist.cli_support.Int` (a usage error, exit 2); library code that takes numbers from files or
from name-or-id references uses :func:`db_id` and :func:`db_int` (one sentence, exit 1).
"""

from __future__ import annotations

from typing import Any

from .errors import SpRealistError

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1


def fits(n: int) -> bool:
    """True when ``n`` can be stored in a 64-bit integer column."""
    return INT64_MIN <= n <= INT64_MAX


def db_id(ref: Any) -> int | None:
    """``ref`` as a row id when it is an int or a string of digits that fits a 64-bit column, else None.

    A name-or-id reference that is too large to be an id is then looked up as a name (and not found, with the
    usual one-sentence error) instead of overflowing the query.
    """
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if fits(ref) else None
    if isinstance(ref, str) and ref.isdigit() and ref.isascii():
        n = int(ref)
        return n if fits(n) else None
    return None


def db_int(value: Any, where: str, what: str = "number") -> int:
    """``int(value)``, refused with one sentence when it does not fit a 64-bit column (or is not a number)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SpRealistError(f"{where}: {what} {value!r} is not a whole number; fix it.") from None
    if isinstance(value, float) and value != n:
        raise SpRealistError(f"{where}: {what} {value!r} is not a whole number; fix it.")
    if not fits(n):
        raise SpRealistError(f"{where}: {what} {value} is too large (a project stores whole numbers up to "
                             f"{INT64_MAX:,}); fix it.")
    return n

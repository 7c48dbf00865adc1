"""A query result as column names and rows, without pandas.

The library's queries return pandas DataFrames.  A few of the command line's everyday commands (``info``,
``sources list``) read a handful of rows, and importing pandas would take longer than everything else they
do; their library functions build :class:`Rows`, the command renders them as they are
(:func:`sp_realist.output.render` takes either), and the DataFrame functions wrap the same rows
(:meth:`Rows.frame`), so there is one query for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Rows:
    """``columns`` (names) and ``rows`` (tuples in that order); ``rows`` may be read only once (a cursor)."""

    columns: list[str]
    rows: Iterable[tuple]

    def __iter__(self):
        return iter(self.rows)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (pandas infers each column's type, as for any list of rows)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=list(self.columns))

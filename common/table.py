"""The one text-table printer the command-line tools use."""

from __future__ import annotations

from tabulate import tabulate


def render(rows: list[tuple], head: tuple) -> str:
    """A plain table: a header, a rule, one line per row; numbers are pre-formatted by the caller."""
    return tabulate(
        [[str(c) for c in row] for row in rows], headers=list(head), tablefmt="simple", disable_numparse=True
    )

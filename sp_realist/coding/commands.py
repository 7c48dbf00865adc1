"""Commands of sp_realist.coding (filled by its issue)."""

import click


def register(main: click.Group) -> None:
    """Add this area's commands to the main group."""

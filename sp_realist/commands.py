"""Project-level commands: ``init`` and ``info``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli_support import emit, format_option, get_project, message, project_option
from .rows import Rows

if TYPE_CHECKING:
    import pandas as pd

    from .store import Project


def project_info_rows(project: Project) -> Rows:
    """Key facts about a project (``item``, ``value``): what ``sp-realist info`` shows, without pandas."""
    from sqlalchemy import func, select

    from . import schema as S

    with project.connect() as conn:
        rows = [("location", project.location), ("schema_version", project.schema_version)]
        for table in (S.sources, S.segments, S.participants, S.codes, S.codings, S.memos, S.themes,
                      S.cmocs, S.theories, S.appraisals):
            rows.append((table.name, conn.execute(select(func.count()).select_from(table)).scalar_one()))
    return Rows(["item", "value"], rows)


def project_info(project: Project) -> pd.DataFrame:
    """Key facts about a project as a two-column frame."""
    return project_info_rows(project).frame()


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
def init_cmd(path: str) -> None:
    """Create a new, empty project: a file, or a database URL (an empty PostgreSQL database).

    \b
    Examples:
      sp-realist init evaluation.sprealist
      sp-realist init postgresql+psycopg://alice@db.example.org/evaluation
    """
    from .store import Project

    project = Project.create(path)
    project.close()
    message(f"Created project {project.location}")


@click.command("info")
@project_option
@format_option
def info_cmd(project_path, fmt, output) -> None:
    """Show the project's location, schema version and object counts.

    \b
    Example:
      sp-realist info -p evaluation.sprealist --format json
    """
    project = get_project(project_path)
    emit(project_info_rows(project), fmt, output, title="Project")


def register(main: click.Group) -> None:
    main.add_command(init_cmd)
    main.add_command(info_cmd)

"""Shared fixtures: a fresh project in a temporary folder and a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sp_realist.store import Project


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "test.sprealist"
    Project.create(path).close()
    return path


@pytest.fixture
def project(project_path):
    p = Project.open(project_path)
    yield p
    p.close()


@pytest.fixture
def runner():
    # Click >= 8.2 keeps stdout and stderr apart in results (result.stdout / result.stderr).
    return CliRunner()


@pytest.fixture
def cli():
    from sp_realist.cli import main

    return main

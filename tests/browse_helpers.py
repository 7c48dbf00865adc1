"""A small project for the reader's tests: the mini study's diaries and interview, its codebook (with rules,
autocoded), codings, theories (CMOCs T1.1 ...) and appraisals, made through the library (no report)."""

from __future__ import annotations

import shutil
from pathlib import Path

MINI = Path(__file__).parent / "data" / "mini_study"


def make_mini_project(path: Path) -> Path:
    from sp_realist import Project
    from sp_realist.cmoc.analysisfile import import_analysis_yaml
    from sp_realist.cmoc.theoryfile import import_theories_yaml
    from sp_realist.coding.autocode import autocode
    from sp_realist.coding.codebook import import_codebook_yaml
    from sp_realist.coding.codings import import_codings_yaml
    from sp_realist.ingest import ingest_manifest, ingest_paths

    project = Project.create(path)
    try:
        ingest_paths(project, [MINI / "diaries" / "s1-dk1.txt"], kind="diary", site="S1")
        ingest_paths(project, [MINI / "diaries" / "s1-dk2.md"], kind="diary", site="S1")
        ingest_manifest(project, MINI / "interviews" / "manifest.csv")
        import_codebook_yaml(project, MINI / "codebook.yaml")
        autocode(project)
        import_codings_yaml(project, MINI / "codings.yaml")
        import_theories_yaml(project, MINI / "theories.yaml")
    finally:
        project.close()
    return path


def copy_project(template: Path, tmp_path: Path, name: str = "demo.sprealist") -> Path:
    target = tmp_path / name
    shutil.copyfile(template, target)
    return target

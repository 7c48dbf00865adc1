"""Start-up stays light: `sp-realist --version` and `import sp_realist` load no heavy library.

(How fast is measured in benchmarks/startup.py; this checks what is imported, in a fresh interpreter.)
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "sqlalchemy", "networkx", "matplotlib", "spacy", "docx", "numpy")

PROBE = """
import sys
{body}
print("loaded:" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def loaded(body: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=HEAVY)], capture_output=True,
                         text=True, check=True).stdout
    line = [x for x in out.splitlines() if x.startswith("loaded:")][-1]
    return [m for m in line[len("loaded:"):].split(",") if m]


def test_version_imports_no_heavy_library():
    assert loaded("from sp_realist.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass") == []


def test_import_sp_realist_is_light_and_the_api_still_resolves():
    assert loaded("import sp_realist") == []
    assert loaded("import sp_realist\nsp_realist.Project") == ["sqlalchemy"]  # loaded on first use


def test_the_command_tree_is_complete_when_asked_for(cli):
    # registered lazily, but every area's commands are there for anyone who asks (help, completion, tests)
    assert {"init", "ingest", "anonymise", "code", "cmoc", "export", "report", "build", "rameses"} <= set(cli.commands)

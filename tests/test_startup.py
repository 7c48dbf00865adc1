"""Start-up stays light: `sp-realist --version` and `--help` import nothing but click (no area of sp_realist,
not even rich), `info` and `sources list` nothing heavier than SQLAlchemy and rich, `import sp_realist` nothing.

(How fast is measured in benchmarks/startup.py; this checks what is imported, in a fresh interpreter.)
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from sp_realist.cli import COMMAND_MODULES, COMMANDS, MainGroup

pytestmark = pytest.mark.sqlite_only("which modules a command imports, in a fresh interpreter on a project file")

HEAVY = ("pandas", "sqlalchemy", "networkx", "matplotlib", "spacy", "docx", "numpy", "openpyxl", "jinja2",
         "xmlschema", "yaml", "rich")
AREAS = ("ingest", "privacy", "coding", "cmoc", "exchange", "report")

PROBE = """
import sys
{body}
print("loaded:" + ",".join(m for m in {heavy!r} if m in sys.modules))
print("areas:" + ",".join(a for a in {areas!r} if "sp_realist." + a in sys.modules))
print("modules:" + ",".join(sorted(sys.modules)))
"""

RUN = "from sp_realist.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"


def _probe(body: str) -> tuple[list[str], list[str], set[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=HEAVY, areas=AREAS)],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()

    def last(prefix: str) -> list[str]:
        found = [x for x in lines if x.startswith(prefix)][-1][len(prefix):]
        return [m for m in found.split(",") if m]

    return last("loaded:"), last("areas:"), set(last("modules:"))


def loaded(body: str) -> list[str]:
    return _probe(body)[0]


def run(argv: list[str]) -> tuple[list[str], list[str]]:
    """The heavy libraries and the sp_realist areas that running ``sp-realist ARGV`` imported."""
    return _probe(RUN.format(argv=argv))[:2]


def test_version_imports_no_heavy_library():
    assert run(["--version"]) == ([], [])


def test_help_lists_every_command_without_importing_any_area():
    assert run(["--help"]) == ([], [])


@pytest.fixture
def small_project(tmp_path):
    from sp_realist.ingest import ingest_paths
    from sp_realist.store import Project

    files = []
    for i in range(3):
        f = tmp_path / f"s{i}.txt"
        f.write_text(f"Interviewer: How was week {i}?\nS1 LW{i + 1}: Busy, but the referrals came.\n",
                     encoding="utf-8")
        files.append(f)
    with Project.create(tmp_path / "small.sprealist") as project:
        ingest_paths(project, files, kind="interview")
    return str(tmp_path / "small.sprealist")


def test_info_and_sources_list_need_only_sqlalchemy(small_project):
    # click, rich and SQLAlchemy: no pandas, numpy, YAML ...; the output check (privacy.guard) is the only
    # other area `info` touches
    assert run(["info", "-p", small_project]) == (["sqlalchemy", "rich"], ["privacy"])
    assert run(["sources", "list", "-p", small_project, "--format", "json"]) == (["sqlalchemy", "rich"],
                                                                                  ["ingest", "privacy"])


@pytest.mark.parametrize("argv", [["sources", "--help"], ["sources", "list", "--help"], ["cmoc", "--help"],
                                  ["graph", "render", "--help"], ["report", "--help"], ["build", "--help"],
                                  ["export", "--help"], ["import", "qdpx", "--help"], ["anonymise", "--help"],
                                  ["code", "--help"], ["frequencies", "--help"], ["theme", "table", "--help"]])
def test_an_areas_help_is_light(argv):
    assert set(run(argv)[0]) <= {"sqlalchemy", "rich"}


@pytest.fixture
def coded_project(small_project):
    from sp_realist.coding import add_code, add_coding, add_theme
    from sp_realist.store import Project

    with Project.open(small_project) as project:
        add_code(project, "Referrals")
        add_coding(project, "Referrals", "s0", match="referrals came")
        add_theme(project, "Access", codes=["Referrals"])
    return small_project


QUERIES = [["frequencies"], ["frequencies", "--by", "site", "--measure", "participants"], ["cooccurrence"],
           ["cooccurrence", "--mode", "segment"], ["framework", "--rows", "participants"],
           ["retrieve", "Referrals", "--where", "site=S1"], ["theme", "table"], ["saturation"]]


@pytest.mark.parametrize("argv", QUERIES, ids=[" ".join(a) for a in QUERIES])
def test_a_query_command_loads_only_what_it_uses(coded_project, tmp_path, argv):
    # pandas (the result is a DataFrame) and SQLAlchemy; not YAML, spaCy, networkx, Word or plotting, and of
    # the areas no autocoding, agreement or anonymising (the output check, privacy.guard, is all of privacy)
    full = [*argv, "-p", coded_project, "--format", "csv", "-o", str(tmp_path / "out.csv")]
    heavy, areas, modules = _probe(RUN.format(argv=full))
    assert (tmp_path / "out.csv").stat().st_size > 0  # the command ran and wrote its result
    assert set(heavy) <= {"pandas", "numpy", "sqlalchemy"}
    for name in ("sp_realist.coding.autocode", "sp_realist.coding.agreement", "sp_realist.coding.codings",
                 "sp_realist.privacy.anonymise", "sp_realist.privacy.keyfile", "sp_realist.cmoc.graph"):
        assert name not in modules, name
    assert areas in (["privacy", "coding"], ["privacy", "coding", "cmoc"]), areas


def test_a_function_named_as_its_module_keeps_the_package_name():
    # the package exports autocode (the function); importing the module sp_realist.coding.autocode later
    # must not put the module in its place
    body = ("import importlib, sp_realist.coding as c, sp_realist.privacy as p\n"
            "for m in ('sp_realist.coding.autocode', 'sp_realist.coding.agreement', 'sp_realist.privacy.anonymise'):\n"
            "    importlib.import_module(m)\n"
            "from sp_realist.coding import autocode, agreement\nfrom sp_realist.privacy import anonymise\n"
            "import sp_realist\n"
            "print('kinds:' + ','.join(type(f).__name__ for f in (autocode, agreement, anonymise, c.autocode, "
            "sp_realist.autocode, sp_realist.agreement, p.anonymise)))")
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "kinds:" + ",".join(["function"] * 7)


@pytest.mark.parametrize("package", ["sp_realist.cmoc", "sp_realist.report", "sp_realist.exchange",
                                     "sp_realist.coding", "sp_realist.privacy"])
def test_lazily_exported_names_all_resolve(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(value, "__name__", name) == name and name in vars(module), name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here


def test_import_sp_realist_is_light_and_the_api_still_resolves():
    assert loaded("import sp_realist") == []
    assert loaded("import sp_realist\nsp_realist.Project") == ["sqlalchemy"]  # loaded on first use


def test_the_command_tree_is_complete_when_asked_for(cli):
    # registered lazily, but every area's commands are there for anyone who asks (help, completion, tests)
    assert {"init", "ingest", "anonymise", "code", "cmoc", "export", "report", "build", "rameses"} <= set(cli.commands)


def _real_commands() -> dict[str, tuple[str, click.Command]]:
    out = {}
    for module in COMMAND_MODULES:
        group = click.Group()
        __import__(module, fromlist=["register"]).register(group)
        out.update({name: (module, cmd) for name, cmd in group.commands.items()})
    return out


def test_the_static_command_registry_equals_the_real_commands():
    real = _real_commands()
    assert set(COMMANDS) == set(real), "update sp_realist.cli.COMMANDS to the commands the areas register"
    for name, (module, cmd) in real.items():
        assert COMMANDS[name][0] == module, name
        assert not cmd.hidden and not cmd.deprecated, name  # COMMANDS would list it as a plain command
        for limit in range(10, 130):  # the help listing shortens each to the room left beside the names
            assert click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit) == \
                cmd.get_short_help_str(limit), (name, limit)


def _fresh_main() -> MainGroup:
    from sp_realist.cli import main

    return MainGroup(name=main.name, params=main.params, help=main.help, callback=main.callback,
                     context_settings=main.context_settings)


def test_help_from_the_registry_is_the_help_of_the_real_commands(runner):
    group = _fresh_main()
    lazy = runner.invoke(group, ["--help"], prog_name="sp-realist")
    assert lazy.exit_code == 0 and "sources       List sources and show one with its segments." in lazy.stdout
    assert group._modules == frozenset()  # nothing registered to list them
    group.commands  # every area registered: the listing now comes from the real commands
    assert group._modules == frozenset(COMMAND_MODULES)
    assert runner.invoke(group, ["--help"], prog_name="sp-realist").stdout == lazy.stdout


def test_a_command_registers_only_its_own_area(runner, small_project):
    group = _fresh_main()
    res = runner.invoke(group, ["info", "-p", small_project, "--format", "json"])
    assert res.exit_code == 0, res.output
    assert group._modules == frozenset({"sp_realist.commands"})
    res = runner.invoke(group, ["nosuchcommand"])
    assert res.exit_code == 2 and "No such command 'nosuchcommand'" in res.stderr

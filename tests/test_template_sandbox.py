"""Templates a project or study brings along render in a sandbox, bounded in size and time (issue 10).

Every payload tries to run a shell command that would create a marker file; the tests assert the command
did not run, the CLI refused with one sentence naming the template file and line, and nothing was written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from report_data import populate
from sp_realist import templating
from sp_realist.errors import SpRealistError
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only(
    "sandboxing templates someone sent; the project only feeds them, and reports render on both back ends"
    " in test_report_render.py")

HERE = Path(__file__).parent
MINI = HERE / "data" / "mini_study"

#: (name, template source with MARKER for the file the payload tries to create, what the refusal says)
PAYLOADS = [
    ("cycler globals", "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}", "sandbox"),
    ("joiner globals", "{{ joiner.__init__.__globals__.os.system('touch MARKER') }}", "sandbox"),
    ("lipsum globals", "{{ lipsum.__globals__['os'].system('touch MARKER') }}", "sandbox"),
    ("namespace globals", "{{ namespace.__init__.__globals__.os.system('touch MARKER') }}", "sandbox"),
    ("class mro", "{{ ''.__class__.__mro__[1].__subclasses__()[0]('touch MARKER', shell=True) }}", "sandbox"),
    ("subclasses", "{% for c in ().__class__.__base__.__subclasses__() %}{% if c.__name__ == 'Popen' %}"
                   "{{ c('touch MARKER', shell=True) }}{% endif %}{% endfor %}", "sandbox"),
    ("attr chain", "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')()|last"
                   "|attr('__init__')|attr('__globals__') }}{{ 'touch MARKER' }}", "sandbox"),
    ("huge range", "{% for i in range(10**9) %}{{ i }}{% endfor %}{{ 'MARKER' }}", "range()"),
    ("huge repeat", "{{ 'x' * 10**9 }}{{ 'MARKER' }}", "repetition"),
    ("endless loop nest", "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                          "{% endfor %}{% endfor %}{% endfor %}{{ 'MARKER' }}", "seconds"),
]


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", 1.0)


def plant(folder: Path, name: str, payload: str, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # each payload on line 3, after two harmless lines, so the reported line is checked
    path = folder / name
    path.write_text("{# a template someone sent #}\nIf {{ 1 }}\n" + payload.replace("MARKER", str(marker)) + "\n",
                    encoding="utf-8")
    return path


def one_error(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return " ".join(" ".join(lines).split())


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("populated") / "eval.sprealist"
    with Project.create(path) as p:
        populate(p)
    return path


def project_copy(populated: Path, tmp_path: Path) -> Path:
    path = tmp_path / "eval.sprealist"
    shutil.copyfile(populated, path)
    return path


@pytest.mark.parametrize("name,payload,says", PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_ifthen_refuses_a_payload_in_templates_next_to_the_project(runner, cli, tmp_path, populated, short_deadline,
                                                                   name, payload, says):
    project = project_copy(populated, tmp_path)
    marker = tmp_path / "pwned"
    template = plant(tmp_path / "templates", "ifthen.j2", payload, marker)
    out = tmp_path / "statements.csv"
    r = runner.invoke(cli, ["ifthen", "-p", str(project), "--format", "csv", "--output", str(out)])
    assert r.exit_code == 1, r.output
    msg = one_error(r)
    assert f"{template}, line 3" in msg and says in msg, msg
    assert not marker.exists() and not out.exists() and r.stdout == ""


@pytest.mark.parametrize("name,payload,says", PAYLOADS, ids=[p[0] for p in PAYLOADS])
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_refuses_a_payload_in_templates_next_to_the_project(runner, cli, tmp_path, populated, short_deadline,
                                                                   name, payload, says, fmt):
    project = project_copy(populated, tmp_path)
    marker = tmp_path / "pwned"
    template = plant(tmp_path / "templates", f"report.{fmt}.j2", payload, marker)
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(cli, ["report", "--to", fmt, str(out / f"report.{fmt}"), "--tables", str(out / "tables"),
                            "-p", str(project)])
    assert r.exit_code == 1, r.output
    msg = one_error(r)
    assert f"{template}, line 3" in msg and says in msg, msg
    assert not marker.exists()
    assert list(out.iterdir()) == []  # no report, no tables, no staging folder


@pytest.mark.parametrize("name,payload,says", PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_build_refuses_a_payload_in_the_study_templates(runner, cli, tmp_path, short_deadline, name, payload, says):
    study = tmp_path / "study"
    shutil.copytree(MINI, study)
    marker = tmp_path / "pwned"
    # the if/then template is rendered from the build's copy; the report template straight from the study
    which = "ifthen.j2" if PAYLOADS.index((name, payload, says)) % 2 else "report.md.j2"
    template = plant(study / "templates", which, payload, marker)
    out = tmp_path / "out"
    r = runner.invoke(cli, ["build", str(study), "--out", str(out)])
    assert r.exit_code == 1, r.output
    msg = one_error(r)
    assert f"{template}, line 3" in msg and says in msg, msg
    assert not marker.exists()
    assert not out.exists()  # nothing written: not even the output folder


def test_the_refusal_names_the_offending_expression(runner, cli, tmp_path, populated):
    project = project_copy(populated, tmp_path)
    plant(tmp_path / "templates", "ifthen.j2", "{{ lipsum.__globals__ }}", tmp_path / "m")
    r = runner.invoke(cli, ["ifthen", "-p", str(project)])
    msg = one_error(r)
    assert "({{ lipsum.__globals__ }})" in msg and "__globals__" in msg


def test_ifthen_template_option_file_is_sandboxed_too(runner, cli, tmp_path, populated):
    project = project_copy(populated, tmp_path)
    marker = tmp_path / "pwned"
    path = plant(tmp_path / "elsewhere", "mine.j2", PAYLOADS[0][1], marker)
    r = runner.invoke(cli, ["ifthen", "-p", str(project), "--template", str(path)])
    assert r.exit_code == 1 and f"{path}, line 3" in one_error(r)
    assert not marker.exists()


def test_a_template_linking_outside_its_folder_is_refused(runner, cli, tmp_path, populated):
    project = project_copy(populated, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret {{ context }}", encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ifthen.j2").symlink_to(secret)
    r = runner.invoke(cli, ["ifthen", "-p", str(project)])
    assert r.exit_code == 1
    msg = one_error(r)
    assert "ifthen.j2" in msg and "outside its templates folder" in msg and "the secret" not in r.stdout


@pytest.mark.parametrize("source,says", [
    ("{{ 'x' * 4000000 ~ 'x' * 4000000 }}", "value of more than 5,000,000"),  # concatenation
    ("{% for i in range(60000) %}{{ 'x' * 100 }}{% endfor %}", "produced more than 5,000,000"),  # streamed output
    ("{{ 'a'|center(10**9) }}", "center width"),
    ("{{ '%999999999d' % 1 }}", "format width"),
    ("{{ '{:999999999}'.format(1) }}", "format width"),
    ("{{ 'ab'.ljust(10**9) }}", "ljust width"),
    ("{{ range(100000)|join('x' * 100000) }}", "join would build"),
    ("{{ 'x'|replace('', 'y' * 4000000) }}{{ 'xx'|replace('', 'y' * 4000000) }}", "replace would build"),
    ("{{ 10 ** 100000 }}", "power"),
    ("{{ [1]|batch(10**9, 'x')|list }}", "batch size"),
    ("{{ [1, 2]|slice(10**9)|list }}", "slice count"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "recursed too deeply"),
    ("{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", "seconds"),
])
def test_library_limits(short_deadline, source, says):
    env = templating.sandboxed_environment(packaged=False)
    with pytest.raises(SpRealistError) as err:
        templating.render(env.from_string(source))
    assert says in err.value.message
    assert err.value.message.startswith("<template>")


def test_ordinary_templates_still_work():
    env = templating.sandboxed_environment(packaged=False)
    source = ("{% set ns = namespace(n=0) %}{% for x in items %}{% set ns.n = ns.n + x %}{% endfor %}"
              "{{ ns.n }} {{ items|join(', ') }} {{ '%05.1f'|format(2.5) }} {{ '{:>6}'.format('ab') }} "
              "{{ 'x' * 3 }} {{ range(3)|list }} {{ 'a'|center(5) }}|{{ items|batch(2)|list }}")
    assert templating.render(env.from_string(source), items=[1, 2, 3]) == \
        "6 1, 2, 3 002.5     ab xxx [0, 1, 2]   a  |[[1, 2], [3]]"


def test_a_template_raising_a_python_error_is_one_sentence(runner, cli, tmp_path, populated):
    project = project_copy(populated, tmp_path)
    template = plant(tmp_path / "templates", "ifthen.j2", "{{ 1 / 0 }}", tmp_path / "m")
    r = runner.invoke(cli, ["ifthen", "-p", str(project)])
    assert r.exit_code == 1
    assert f"{template}, line 3 ({{{{ 1 / 0 }}}}): the template failed (ZeroDivisionError" in one_error(r)

"""Codebook: tree operations, YAML and CSV import/export round trips, CLI."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from coding_helpers import CODEBOOK_YAML, add_corpus
from conftest import examples
from sp_realist import schema as S
from sp_realist.coding import codebook as cb
from sp_realist.coding.codings import add_coding, list_codings
from sp_realist.errors import NotFoundError, SpRealistError
from sp_realist.store import Project


def _count(project, table) -> int:
    with project.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _snapshot(project) -> dict:
    """Everything the codebook owns, for 'nothing changed' checks."""
    with project.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all())
                for t in (S.codes, S.code_rules, S.themes, S.theme_codes, S.codings)}


@pytest.fixture
def cbfile(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK_YAML, encoding="utf-8")
    return path


def test_import_yaml_builds_tree_rules_and_themes(project, cbfile):
    stats = cb.import_codebook_yaml(project, cbfile)
    data = yaml.safe_load(CODEBOOK_YAML)
    n_codes = sum(1 + len(c.get("children", [])) for c in data["codes"])
    n_rules = sum(len(c.get("rules", [])) for c in data["codes"])
    assert stats["codes_added"] == n_codes and stats["rules"] == n_rules
    assert stats["themes_added"] == 3
    tree = cb.codebook_tree(project)
    assert tree["path"].tolist() == ["Referral process", "Referral process/Missing referral forms", "Induction",
                                     "Belonging"]
    row = tree.set_index("name").loc["Referral process"]
    assert row["definition"] == data["codes"][0]["definition"]
    assert row["rules"] == 3 and row["colour"] == "#1f77b4"
    # Importing again changes nothing (codes matched by name).
    before = _snapshot(project)
    stats = cb.import_codebook_yaml(project, cbfile)
    assert stats["codes_added"] == 0 and stats["codes_updated"] == n_codes
    assert _snapshot(project) == before


def test_yaml_round_trip_is_identical(place, project, cbfile, tmp_path):
    cb.import_codebook_yaml(project, cbfile)
    first = cb.export_codebook_yaml(project)
    out = tmp_path / "exported.yaml"
    out.write_text(first, encoding="utf-8")
    other = Project.create(place("other"))
    cb.import_codebook_yaml(other, out)
    assert cb.export_codebook_yaml(other) == first
    # The export carries everything the source file had.
    src, exp = yaml.safe_load(CODEBOOK_YAML), yaml.safe_load(first)
    assert exp["codes"][0]["rules"][2]["pattern"] == src["codes"][0]["rules"][2]["pattern"]
    assert exp["codes"][0]["children"][0]["definition"] == "Forms that never arrived."
    assert [t["name"] for t in exp["themes"]] == [t["name"] for t in src["themes"]]
    assert exp["themes"][0]["children"][0]["codes"] == ["Missing referral forms"]
    other.close()


_names = st.text(alphabet=string.ascii_letters + " -'éü", min_size=1, max_size=12).map(lambda s: " ".join(s.split())) \
    .filter(bool)


@st.composite
def trees(draw):
    names = draw(st.lists(_names, min_size=1, max_size=8, unique=True))
    parents = {}
    for i, n in enumerate(names):
        parents[n] = draw(st.sampled_from([None] + names[:i])) if i else None
    fields = {n: draw(st.fixed_dictionaries({}, optional={
        # any text a definition may hold: control characters (other than tab and line breaks) are refused
        "definition": st.text(st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\t\n\r"),
                              min_size=1, max_size=30).filter(lambda s: s.strip() == s and s),
        "colour": st.sampled_from(["#1f77b4", "#abc", "#FF0000"]),
    })) for n in names}
    return names, parents, fields


def test_yaml_round_trip_property(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 25), deadline=None)
    @given(tree=trees())
    # Boundaries found slowly by search and shrinking: one code; eight codes each under the previous one, with
    # accents, quotes and hyphens in names and YAML-special definitions.
    @example(tree=(["A"], {"A": None}, {"A": {}}))
    @example(tree=(["a", "B-c", "é", "ü'x", "d e", "F", "g", "h"],
                   {"a": None, "B-c": "a", "é": "B-c", "ü'x": "é", "d e": "ü'x", "F": "d e", "g": "F", "h": "g"},
                   {"a": {"definition": "- no: yes #"}, "B-c": {"colour": "#FF0000"}, "é": {"definition": "null"},
                    "ü'x": {}, "d e": {"definition": "'1.0'"}, "F": {}, "g": {"colour": "#abc"}, "h": {}}))
    def check(tree):
        names, parents, fields = tree
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        with Project.create(new_location()) as p:
            for n in names:
                cb.add_code(p, n, parent=parents[n], **fields[n])
            text = cb.export_codebook_yaml(p)
            (folder / "cb.yaml").write_text(text, encoding="utf-8")
            expected = cb.codebook_tree(p).drop(columns=["id"])
        with Project.create(new_location()) as q:
            cb.import_codebook_yaml(q, folder / "cb.yaml")
            got = cb.codebook_tree(q).drop(columns=["id"])
            assert cb.export_codebook_yaml(q) == text
        assert got.fillna("").to_dict("records") == expected.fillna("").to_dict("records")
        for n in names:
            row = got.set_index("name").loc[n]
            assert (row["parent"] if isinstance(row["parent"], str) else None) == parents[n]
            if "colour" in fields[n]:
                assert row["colour"] == fields[n]["colour"].lower()

    check()


def test_csv_round_trip(place, project, cbfile, tmp_path):
    cb.import_codebook_yaml(project, cbfile)
    text = cb.export_codebook_csv(project, tmp_path / "cb.csv")
    assert text.splitlines()[0] == ",".join(cb.CSV_COLUMNS)
    with Project.create(place("c")) as other:
        stats = cb.import_codebook_csv(other, tmp_path / "cb.csv")
        assert stats["codes_added"] == len(cb.codebook_tree(project))
        assert cb.export_codebook_csv(other) == text


def test_bad_files_write_nothing(project, cbfile, tmp_path):
    cb.import_codebook_yaml(project, cbfile)
    before = _snapshot(project)
    cases = {
        "syntax.yaml": "codes: [unclosed\n",
        "dup.yaml": "codes:\n  - name: A\n  - name: A\n",
        "rule.yaml": "codes:\n  - name: New\n    rules:\n      - name: r1\n        unit: sentence\n",
        "pattern.yaml": "codes:\n  - name: New\n    rules:\n      - name: r2\n        pattern: [{NOSUCH: x}]\n",
        "theme.yaml": "codes:\n  - name: New\nthemes:\n  - name: T\n    codes: [Missing]\n",
        "colour.yaml": "codes:\n  - name: New\n    colour: blue\n",
        "key.yaml": "codes:\n  - name: New\n    defintion: typo\n",
        "phase.yaml": "themes:\n  - name: T\n    phase: done\n",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(SpRealistError) as info:
            cb.import_codebook_yaml(project, path)
        assert name in info.value.message
        assert _snapshot(project) == before, name
    with pytest.raises(SpRealistError, match="no such file"):
        cb.import_codebook_yaml(project, tmp_path / "absent.yaml")


def test_rename_move_merge_keep_codings(project, cbfile):
    cb.import_codebook_yaml(project, cbfile)
    ids = add_corpus(project)
    src = "S1 DK1 2019-05-14"
    add_coding(project, "Referral process", src, span=(0, 20), coder="RA", memo="first note")
    add_coding(project, "Missing referral forms", src, span=(30, 50), coder="RA")
    add_coding(project, "Belonging", src, span=(0, 20), coder="RA", memo="same span as referral")
    add_coding(project, "Belonging", src, span=(60, 70), coder="RA")
    n_codings = _count(project, S.codings)

    cb.rename_code(project, "Referral process", "Referral routes")
    assert set(list_codings(project, code="Referral routes", children=True)["start"]) == {0, 30}
    with pytest.raises(NotFoundError):
        list_codings(project, code="Referral process")
    with pytest.raises(SpRealistError, match="already exists"):
        cb.rename_code(project, "Belonging", "Induction")

    cb.move_code(project, "Missing referral forms", "Induction")
    tree = cb.codebook_tree(project).set_index("name")
    assert tree.loc["Missing referral forms", "parent"] == "Induction"
    with pytest.raises(SpRealistError, match="inside it"):
        cb.move_code(project, "Induction", "Missing referral forms")

    moved = cb.merge_codes(project, ["Belonging"], "Referral routes")
    # (0, 20) by RA was already coded with the target: folded, not duplicated; both memos are kept.
    assert moved == {"codings": 1, "duplicates": 1, "children": 0, "rules": 0, "memos": 0, "themes": 1}
    assert _count(project, S.codings) == n_codings - 1
    got = list_codings(project, code="Referral routes").set_index("start")
    assert got.loc[0, "memo"] == "first note\n\nsame span as referral" and 60 in got.index
    assert "Belonging" not in set(cb.codebook_tree(project)["name"])
    assert ids  # the corpus was used


def test_delete_refuses_with_codings_unless_forced(project, cbfile):
    cb.import_codebook_yaml(project, cbfile)
    add_corpus(project)
    add_coding(project, "Missing referral forms", "S1 DK1 2019-05-14", span=(0, 5), coder="RA")
    before = _snapshot(project)
    with pytest.raises(SpRealistError, match="1 coding"):
        cb.delete_code(project, "Missing referral forms")
    with pytest.raises(SpRealistError, match="child code"):
        cb.delete_code(project, "Referral process")
    assert _snapshot(project) == before
    assert cb.delete_code(project, "Belonging") == {"codes": 1, "codings": 0}
    assert cb.delete_code(project, "Referral process", force=True) == {"codes": 2, "codings": 1}
    assert _count(project, S.codings) == 0
    assert cb.codebook_tree(project)["name"].tolist() == ["Induction"]


def test_cli_codebook(runner, cli, project_path, cbfile, tmp_path):
    p = ["-p", str(project_path)]
    r = runner.invoke(cli, ["codebook", "import", str(cbfile), *p])
    assert r.exit_code == 0, r.output
    assert "4 code(s) added" in " ".join(r.stderr.split()) and r.stdout == ""
    r = runner.invoke(cli, ["codebook", "add", "Signposting", "--definition", "Onward referral.", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["codebook", "add", "Signposting", *p])
    assert r.exit_code == 1 and "already exists at the top level" in " ".join(r.stderr.split())
    assert "Traceback" not in r.output
    r = runner.invoke(cli, ["codebook", "edit", "Signposting", "--colour", "#00FF00", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["codebook", "move", "Signposting", "--parent", "Induction", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["codebook", "move", "Signposting", *p])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["codebook", "rename", "Signposting", "Signposting on", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["codebook", "tree", "--format", "json", *p])
    rows = {x["name"]: x for x in __import__("json").loads(r.stdout)}
    assert rows["Signposting on"]["parent"] == "Induction" and rows["Signposting on"]["colour"] == "#00ff00"
    r = runner.invoke(cli, ["codebook", "merge", "Signposting on", "--into", "Belonging", *p])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["codebook", "delete", "Nope", *p])
    assert r.exit_code == 1 and "No code named 'Nope'" in " ".join(r.stderr.split())
    out = tmp_path / "out.yaml"
    r = runner.invoke(cli, ["codebook", "export", "-o", str(out), *p])
    assert r.exit_code == 0 and yaml.safe_load(out.read_text())["codes"][0]["name"] == "Referral process"
    r = runner.invoke(cli, ["codebook", "export", "--to", "csv", *p])
    assert r.stdout.splitlines()[0].startswith("name,parent,definition")
    r = runner.invoke(cli, ["codebook", "rules", "--format", "csv", *p])
    assert r.stdout.splitlines()[1].startswith("referral-words,Referral process,keywords")
    r = runner.invoke(cli, ["codebook", "--help"])
    assert "Examples" in r.stdout


def test_import_moves_codes_and_refuses_cycles(project, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("codes:\n  - name: A\n    children:\n      - name: B\n", encoding="utf-8")
    cb.import_codebook_yaml(project, path)
    # A file nests codes as it likes: B at the top with A inside it is a move, not a cycle.
    (tmp_path / "b.yaml").write_text("codes:\n  - name: B\n    children:\n      - name: A\n", encoding="utf-8")
    cb.import_codebook_yaml(project, tmp_path / "b.yaml")
    assert cb.codebook_tree(project)["path"].tolist() == ["B", "B/A"]
    # A CSV that puts B under A while the project keeps A under B would be a cycle.
    before = _snapshot(project)
    (tmp_path / "c.csv").write_text("name,parent\nB,A\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="inside itself"):
        cb.import_codebook_csv(project, tmp_path / "c.csv")
    assert _snapshot(project) == before


def test_inside_itself_finds_the_first_name_in_a_parent_cycle():
    from sp_realist.coding.codebook import _inside_itself

    assert _inside_itself({"A": None, "B": "A", "C": "B"}) is None
    assert _inside_itself({"A": None, "B": "C", "C": "B"}) == "B"
    assert _inside_itself({"X": "X"}) == "X"
    assert _inside_itself({}) is None

"""Codes are identified by their place in the tree: names unique among siblings only, one resolver
(a unique name, else a path 'Parent/Child'), ambiguity refused with the candidates, did-you-mean on typos."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from sp_realist.coding import codebook as cb
from sp_realist.coding._common import CodeTree, escape_name, split_path
from sp_realist.coding.codings import add_coding, import_codings_yaml, list_codings
from sp_realist.errors import NotFoundError, SpRealistError
from sp_realist.sources import Segment, SourceDraft, add_source

TEXT = "Other staff helped. Other surgeries did not. The forms were missing."


@pytest.fixture
def tree(project):
    """Barriers/other, Barriers/examples, Facilitators/other, Facilitators/staff/other, and/or (a name with '/')."""
    with project.begin() as conn:
        add_source(conn, SourceDraft(name="s1", kind="diary", text=TEXT, checksum="c",
                                     segments=[Segment(0, len(TEXT), kind="paragraph")]))
    for name, parent in [("Barriers", None), ("other", "Barriers"), ("examples", "Barriers"),
                         ("Facilitators", None), ("other", "Facilitators"), ("staff", "Facilitators"),
                         ("other", "Facilitators/staff"), ("and/or", None), ("forms", "and/or")]:
        cb.add_code(project, name, parent=parent)
    return project


def test_names_repeat_under_different_parents_and_paths_tell_them_apart(tree):
    df = cb.codebook_tree(tree)
    assert list(df["path"]) == ["Barriers", "Barriers/other", "Barriers/examples", "Facilitators",
                                "Facilitators/other", "Facilitators/staff", "Facilitators/staff/other",
                                "and\\/or", "and\\/or/forms"]
    assert df.set_index("path").loc["Facilitators/staff/other", "parent"] == "staff"
    with tree.connect() as conn:
        t = CodeTree.read(conn)
        assert t.resolve("examples")["name"] == "examples"  # a unique name suffices
        assert t.path(t.resolve("Barriers/other")["id"]) == "Barriers/other"
        assert t.path(t.resolve("staff/other")["id"]) == "Facilitators/staff/other"  # the end of a longer path
        assert t.path(t.resolve("Facilitators/other")["id"]) == "Facilitators/other"  # anchored path wins
        assert t.path(t.resolve("  Facilitators /  other ")["id"]) == "Facilitators/other"
        assert t.resolve("and/or")["name"] == "and/or"  # a whole name with '/' first
        assert t.path(t.resolve("and\\/or/forms")["id"]) == "and\\/or/forms"  # escaped in a path
        assert t.resolve("/Barriers")["name"] == "Barriers"  # a leading '/' is a path from the top
        with pytest.raises(NotFoundError):
            t.resolve("/other")
        with pytest.raises(SpRealistError) as exc:
            t.resolve("other")
        assert str(exc.value) == ("code 'other' is ambiguous: 3 codes have that name ('Barriers/other', "
                                  "'Facilitators/other', 'Facilitators/staff/other'); give its path instead, "
                                  "e.g. 'Barriers/other'.")
        with pytest.raises(NotFoundError, match=r"No code named 'Barriers/othre' in the codebook; did you mean "
                                                r"'Barriers/other'\?"):
            t.resolve("Barriers/othre")
        with pytest.raises(NotFoundError, match=r"did you mean 'examples'\?"):
            t.resolve("exampels")


def test_add_rename_move_refuse_a_sibling_clash_in_one_sentence(tree):
    with pytest.raises(SpRealistError, match=r"^code 'other': a code of that name already exists under "
                                             r"'Barriers'; names are unique among siblings"):
        cb.add_code(tree, "other", parent="Barriers")
    with pytest.raises(SpRealistError, match="already exists under 'Barriers'"):
        cb.rename_code(tree, "examples", "other")
    with pytest.raises(SpRealistError, match="already exists under 'Facilitators'"):
        cb.move_code(tree, "Barriers/other", "Facilitators")
    cb.move_code(tree, "Barriers/other", None)  # to the top level, where no 'other' is yet
    cb.rename_code(tree, "Facilitators/staff/other", "others")
    assert "Facilitators/staff/others" in set(cb.codebook_tree(tree)["path"])
    with pytest.raises(SpRealistError, match="'Barriers' already has a child named 'examples'"):
        cb.add_code(tree, "examples", parent="Facilitators")
        cb.merge_codes(tree, "Facilitators", "Barriers")


def test_codings_name_codes_by_path_everywhere(tree, tmp_path):
    add_coding(tree, "Barriers/other", "s1", span=(0, 5), coder="RA")
    add_coding(tree, "Facilitators/staff/other", "s1", span=(20, 25), coder="RB")
    add_coding(tree, "examples", "s1", span=(49, 54), coder="RA")
    df = list_codings(tree)
    assert list(df["code"]) == ["Barriers/other", "Facilitators/staff/other", "examples"]  # paths where ambiguous
    with pytest.raises(SpRealistError, match="ambiguous"):
        list_codings(tree, code="other")
    assert list(list_codings(tree, code="Facilitators", children=True)["coder"]) == ["RB"]
    out = tmp_path / "codings.yaml"
    out.write_text(yaml.safe_dump({"codings": [{"source": "s1", "code": "staff/other", "span": [0, 5],
                                                "coder": "RC"}]}), encoding="utf-8")
    assert import_codings_yaml(tree, out)["added"] == 1
    out.write_text(yaml.safe_dump({"codings": [{"source": "s1", "code": "other", "span": [0, 5]}]}),
                   encoding="utf-8")
    with pytest.raises(SpRealistError, match=r"coding #1: code 'other' is ambiguous: 3 codes"):
        import_codings_yaml(tree, out)


def test_codebook_yaml_and_csv_round_trip_repeated_names(tree, tmp_path, project_factory=None):
    from sp_realist.store import Project

    y, c = tmp_path / "cb.yaml", tmp_path / "cb.csv"
    cb.export_codebook_yaml(tree, y)
    cb.export_codebook_csv(tree, c)
    for path, importer in ((y, cb.import_codebook_yaml), (c, cb.import_codebook_csv)):
        with Project.create(tmp_path / f"{path.suffix[1:]}.sprealist") as fresh:
            importer(fresh, path)
            assert list(cb.codebook_tree(fresh)["path"]) == list(cb.codebook_tree(tree)["path"])
            again = importer(fresh, path)  # matched by path: nothing new
            assert again["codes_added"] == 0
    # a file whose two siblings share a name is refused, naming the path
    y.write_text("codes:\n  - name: A\n    children: [x, x]\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="code 'A/x' appears more than once"):
        cb.import_codebook_yaml(tree, y)
    # themes list codes by name or path
    y.write_text("themes:\n  - name: T\n    codes: [Barriers/other, examples]\n", encoding="utf-8")
    cb.import_codebook_yaml(tree, y)
    y.write_text("themes:\n  - name: T2\n    codes: [other]\n", encoding="utf-8")
    with pytest.raises(SpRealistError, match="theme 'T2' lists code 'other': code 'other' is ambiguous"):
        cb.import_codebook_yaml(tree, y)


names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12)


@given(st.lists(names, min_size=1, max_size=4))
@example(["a/b", "c\\", "\\/"])
@example(["and/or"])
def test_escaped_paths_split_back_into_their_names(steps):
    assert split_path("/".join(escape_name(n) for n in steps)) == steps


def test_qc_codebook_keeps_names_repeated_under_different_parents(project, tmp_path):
    from sp_realist.exchange.codebooks import import_qc_codebook

    path = tmp_path / "codebook.yaml"
    path.write_text("- Barriers:\n  - other\n  - other\n- Facilitators:\n  - other\n", encoding="utf-8")
    result = import_qc_codebook(path, project)
    assert list(cb.codebook_tree(project)["path"]) == ["Barriers", "Barriers/other", "Facilitators",
                                                      "Facilitators/other"]
    assert result.losses == ["code 'Barriers/other' appears more than once under the same parent; kept the first"]
    again = import_qc_codebook(path, project)  # the same codes again: reused by GUID, nothing added
    assert again.counts["codes"] == 0 and len(cb.codebook_tree(project)) == 4


def _random_tree(draw_names, parents):
    """rows for a CodeTree: code i is named draw_names[i] under parents[i] (an earlier code or None)."""
    rows, taken = [], set()
    for i, (name, parent) in enumerate(zip(draw_names, parents), start=1):
        pid = parent if parent is not None and parent < i else None
        if (pid, name) in taken:  # the store refuses siblings of one name
            continue
        taken.add((pid, name))
        rows.append({"id": i, "name": name, "parent_id": pid if pid in {r["id"] for r in rows} else None})
    return rows


@given(st.lists(st.sampled_from(["other", "a/b", "x", "staff", "\\"]), min_size=1, max_size=12),
       st.lists(st.one_of(st.none(), st.integers(1, 12)), min_size=12, max_size=12))
@example(["other", "other", "x", "other"], [None, None, 1, 3] + [None] * 8)
@example(["a/b", "a", "b"], [None, None, 2] + [None] * 9)
@example(["a/b", "a", "b", "c", "b"], [None, None, 2, None, 4] + [None] * 7)
def test_every_code_is_reached_by_its_path_and_by_its_label(names, parents):
    rows = _random_tree(names, parents)
    seen = set()
    rows = [r for r in rows if not ((r["parent_id"], r["name"]) in seen or seen.add((r["parent_id"], r["name"])))]
    tree = CodeTree(rows)
    for r in rows:
        assert tree.resolve("/" + tree.path(r["id"]))["id"] == r["id"]  # a path from the top always works
        assert tree.find(tree.label(r["id"])) == [r["id"]]  # what listings show names that code alone
        if tree.name_count[r["name"]] == 1:
            assert tree.label(r["id"]) == r["name"]  # a unique name suffices


def test_cli_names_codes_by_path_and_refuses_ambiguity_and_clashes_in_one_sentence(tree, runner, cli):
    p = ["-p", str(tree.location)]
    add_coding(tree, "Barriers/other", "s1", span=(0, 5), coder="RA")
    r = runner.invoke(cli, ["retrieve", "other", *p])
    assert r.exit_code == 1 and " ".join(r.stderr.split()) == (
        "Error: code 'other' is ambiguous: 3 codes have that name ('Barriers/other', 'Facilitators/other', "
        "'Facilitators/staff/other'); give its path instead, e.g. 'Barriers/other'.")
    r = runner.invoke(cli, ["retrieve", "Barriers/other", "--format", "csv", *p])
    assert r.exit_code == 0 and "Barriers/other,s1" in r.stdout
    r = runner.invoke(cli, ["frequencies", "--format", "csv", *p])
    assert r.exit_code == 0 and {"Barriers/other", "Facilitators/other", "Facilitators/staff/other",
                                 "examples"} <= {line.split(",")[0] for line in r.stdout.splitlines()}
    r = runner.invoke(cli, ["codebook", "add", "other", "--parent", "Facilitators", *p])
    assert r.exit_code == 1 and " ".join(r.stderr.split()) == (
        "Error: code 'other': a code of that name already exists under 'Facilitators'; names are unique among "
        "siblings, so choose another name or parent.")
    r = runner.invoke(cli, ["codebook", "move", "Facilitators/other", "--parent", "Barriers", *p])
    assert r.exit_code == 1 and "already exists under 'Barriers'" in r.stderr
    r = runner.invoke(cli, ["codebook", "rename", "Barriers/examples", "other", *p])
    assert r.exit_code == 1 and "already exists under 'Barriers'" in r.stderr
    r = runner.invoke(cli, ["code", "add", "staff/othr", "-s", "s1", "--span", "0:5", *p])
    assert r.exit_code == 1 and "did you mean 'staff/other'?" in " ".join(r.stderr.split())
    r = runner.invoke(cli, ["codebook", "tree", "--format", "csv", *p])
    assert "and\\/or/forms" in r.stdout

"""NER suggestions with a real (tiny) spaCy pipeline built here: blank("en") + an EntityRuler named "ner".

The pipeline is saved with nlp.to_disk and loaded by path, so the code path
that loads a trained pipeline (excluding components it does not need) runs
without downloading anything.
"""

from __future__ import annotations

import json

import pytest
import spacy
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.privacy import anonymise, load_key, suggest
from sp_realist.privacy.ner import load_ner
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project

KEY = "entries:\n  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}\n"
TEXTS = {
    "a": "Sarah Jones met Owen Evans at Hillside Surgery in Cardiff.\n",
    "b": "Owen Evans rang Sarah. Later Owen Evans went to Cardiff.\n",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # a component suggest does not need: it must be excluded
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    ruler.add_patterns([
        {"label": "PERSON", "pattern": "Sarah Jones"},
        {"label": "PERSON", "pattern": "Owen Evans"},
        {"label": "FAC", "pattern": "Hillside Surgery"},
        {"label": "GPE", "pattern": "Cardiff"},
        {"label": "DATE", "pattern": "Later"},
        {"label": "PERSON", "pattern": "S1 DK1"},  # a replacement: never suggested back
    ])
    path = tmp_path_factory.mktemp("model") / "tiny_ner"
    nlp.to_disk(path)
    return path


@pytest.fixture
def setup(project_path, tmp_path):
    with Project.open(project_path) as p, p.begin() as conn:
        for name, text in TEXTS.items():
            add_source(conn, SourceDraft(name=name, kind="diary", text=text, checksum=name,
                                         segments=[Segment(0, len(text))]))
    key = tmp_path / "key.yaml"
    key.write_text(KEY, encoding="utf-8")
    return project_path, key


def test_load_ner_keeps_only_what_ner_needs(model_dir):
    nlp = load_ner(str(model_dir))
    assert nlp.pipe_names == ["ner"]
    with pytest.raises(SpRealistError, match="not an installed spaCy pipeline"):
        load_ner("no_such_pipeline_xyz")


def test_pipeline_without_ner_is_refused(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "no_ner")
    with pytest.raises(SpRealistError, match="no 'ner' component"):
        load_ner(str(tmp_path / "no_ner"))


def test_suggest_lists_uncovered_entities_and_replaces_nothing(setup, model_dir):
    project_path, key = setup
    with Project.open(project_path) as p:
        df = suggest(p, str(model_dir), key)
        with p.connect() as conn:
            texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
    assert texts == TEXTS  # nothing replaced
    rows = {r["text"]: r for r in df.to_dict(orient="records")}
    assert set(rows) == {"Owen Evans", "Hillside Surgery", "Cardiff"}  # Sarah Jones is in the key; DATE not asked
    assert (rows["Owen Evans"]["count"], rows["Owen Evans"]["sources"]) == (3, 2)
    assert (rows["Cardiff"]["count"], rows["Cardiff"]["sources"]) == (2, 2)
    assert rows["Owen Evans"]["replacement"] == "[person 1]" and rows["Hillside Surgery"]["replacement"] == "[place 2]"
    assert list(df["text"])[0] == "Owen Evans"  # most frequent first
    only_people = suggest(Project.open(project_path), str(model_dir), key, labels=["PERSON"])
    assert list(only_people["text"]) == ["Owen Evans"]


def test_suggest_cli_add_to_key_then_anonymise(runner, cli, setup, model_dir):
    project_path, key = setup
    r = runner.invoke(cli, ["anonymise", "suggest", "--ner", str(model_dir), "--key", str(key), "-p",
                            str(project_path), "-f", "json", "--add-to-key"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 3 and "Added 3 entries" in r.stderr
    grown = load_key(key)
    assert [e.original for e in grown.entries] == ["Sarah Jones", "Owen Evans", "Cardiff", "Hillside Surgery"]
    assert key.read_text().startswith(KEY)  # appended, not rewritten
    with Project.open(project_path) as p:
        anonymise(p, grown)
        with p.connect() as conn:
            texts = dict(conn.execute(select(S.sources.c.name, S.sources.c.text)).all())
        assert texts["a"] == "S1 DK1 met [person 1] at [place 2] in [place 1].\n"
        # nothing left to suggest: the tagged replacement "S1 DK1" is not a name to add
        assert "S1 DK1" in texts["a"] and suggest(p, str(model_dir), grown).empty


def test_suggest_without_a_model_lists_identifiers_and_says_names_need_one(runner, cli, setup):
    project_path, key = setup
    r = runner.invoke(cli, ["anonymise", "suggest", "--key", str(key), "-p", str(project_path), "-f", "json"])
    assert r.exit_code == 0, r.output
    assert all(x["label"] in ("EMAIL", "PHONE", "NHS_NUMBER", "POSTCODE") for x in __import__("json").loads(r.stdout))
    assert "add --ner MODEL" in " ".join(r.stderr.split())
    r = runner.invoke(cli, ["anonymise", "suggest", "--ner", "no_such_pipeline_xyz", "-p", str(project_path)])
    assert r.exit_code == 1 and "never downloads" in r.stderr


def test_suggest_multiprocess(setup, model_dir):
    project_path, key = setup
    with Project.open(project_path) as p:
        one = suggest(p, str(model_dir), key)
        two = suggest(p, str(model_dir), key, n_process=2)
    assert one.equals(two)

"""anonymise suggest without a trained model: e-mail addresses, UK phone numbers, NHS numbers, UK postcodes."""

from __future__ import annotations

import json

import pytest

from sp_realist.privacy import anonymise
from sp_realist.privacy.patterns import find_identifiers, suggest_identifiers
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project

TEXT = ("Sarah Jones: mail me at sarah.jones@nhs.net or s.jones@example.org, ring 07912 345678 or "
        "+44 29 2018 0123. My NHS number is 943 476 5919 (not 943 476 5910). We live near CF10 3NQ.\n"
        "Interviewer: and the clinic's number? Sarah Jones: 029 2018 0123, same as before.\n")


@pytest.mark.parametrize("text, found", [
    ("write to a.b-c@mail.example.co.uk.", [("a.b-c@mail.example.co.uk", "EMAIL")]),
    ("call 07912 345678 today", [("07912 345678", "PHONE")]),
    ("or +44 29 2018 0123", [("+44 29 2018 0123", "PHONE")]),
    ("NHS 943 476 5919", [("943 476 5919", "NHS_NUMBER")]),
    ("NHS 943-476-5919", [("943-476-5919", "NHS_NUMBER")]),
    ("NHS 9434765919", [("9434765919", "NHS_NUMBER")]),
    ("bad check digit 943 476 5910", []),
    ("post SW1A 1AA and CF10 3NQ", [("SW1A 1AA", "POSTCODE"), ("CF10 3NQ", "POSTCODE")]),
    ("GIR 0AA", [("GIR 0AA", "POSTCODE")]),
    ("no identifiers here, 12345 and v1.2", []),
])
def test_find_identifiers(text, found):
    assert [(text[s:e], label) for s, e, label in find_identifiers(text)] == found


@pytest.fixture
def setup(project_path, tmp_path):
    key = tmp_path / "key.yaml"
    key.write_text("entries:\n  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}\n", encoding="utf-8")
    with Project.open(project_path) as p, p.begin() as conn:
        add_source(conn, SourceDraft(name="interview", kind="interview", text=TEXT, checksum="x",
                                     segments=[Segment(0, len(TEXT))]))
    return project_path, key


def test_suggest_identifiers_counts_and_placeholders(setup):
    project_path, key = setup
    with Project.open(project_path) as p:
        df = suggest_identifiers(p)
        rows = {r["text"]: (r["label"], r["count"], r["replacement"]) for r in df.to_dict(orient="records")}
        assert rows["+44 29 2018 0123"][0:2] == ("PHONE", 1) and rows["029 2018 0123"][0] == "PHONE"
        assert rows["943 476 5919"] == ("NHS_NUMBER", 1, "[NHS number 1]")
        assert rows["CF10 3NQ"] == ("POSTCODE", 1, "[postcode 1]")
        assert {"sarah.jones@nhs.net", "s.jones@example.org"} <= set(rows)
        assert "943 476 5910" not in rows
        # with the key, what it covers is not listed again; after anonymising, "S1 DK1@nhs.net" is no address
        assert "sarah.jones@nhs.net" not in set(suggest_identifiers(p, key)["text"])
        anonymise(p, key)
        assert "DK1@nhs.net" not in " ".join(suggest_identifiers(p, key)["text"])


def test_cli_suggest_without_a_model_and_add_to_key(runner, cli, setup):
    project_path, key = setup
    r = runner.invoke(cli, ["anonymise", "suggest", "-p", str(project_path), "-f", "json"])
    assert r.exit_code == 0, r.output
    assert {x["label"] for x in json.loads(r.stdout)} == {"EMAIL", "PHONE", "NHS_NUMBER", "POSTCODE"}
    r = runner.invoke(cli, ["anonymise", "suggest", "-p", str(project_path), "--key", str(key), "-f", "json"])
    assert r.exit_code == 0, r.output  # the addresses hold a key name: the key covers them
    assert {x["label"] for x in json.loads(r.stdout)} == {"PHONE", "NHS_NUMBER", "POSTCODE"}
    r = runner.invoke(cli, ["anonymise", "suggest", "-p", str(project_path), "--key", str(key), "--add-to-key"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["anonymise", "--key", str(key), "-p", str(project_path), "-f", "json"])
    assert r.exit_code == 0, r.output
    with Project.open(project_path) as p, p.connect() as conn:
        text = conn.exec_driver_sql("select text from sources").scalar_one()
    assert "943 476 5919" not in text and "CF10 3NQ" not in text and "[NHS number 1]" in text

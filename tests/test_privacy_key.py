"""Pseudonym keys: loading (YAML/CSV), validation, hashing; detection on token boundaries."""

from __future__ import annotations

import pytest

from sp_realist.errors import SpRealistError
from sp_realist.privacy.detect import Detector, resolve_overlaps
from sp_realist.privacy.keyfile import append_entries, key_from_entries, load_key

YAML_KEY = """\
# real names: keep outside the project
entries:
  - {original: Sarah Jones, replacement: S1 DK1, variants: [Ms Jones], name_parts: true}
  - {original: Dr Patel, replacement: "[GP 1]", variants: [Patel]}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
  - {original: Rose, replacement: "[client 1]", case_sensitive: true}
"""

CSV_KEY = """\
original,replacement,variants,case_sensitive
Riverside Surgery,[GP surgery],,
Rose,[client 1],,true
Dr Patel,[GP 1],Patel,
Sarah Jones,S1 DK1,Ms Jones;Sarah;Jones,
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_yaml_and_csv_give_the_same_key_and_hash(tmp_path):
    y = load_key(write(tmp_path, "key.yaml", YAML_KEY))
    c = load_key(write(tmp_path, "key.csv", CSV_KEY))
    assert len(y) == len(c) == 4
    assert y.sha256 == c.sha256 and len(y.sha256) == 64
    sarah = y.entries[0]
    assert sarah.terms == ["Sarah Jones", "Ms Jones", "Sarah", "Jones"]  # name_parts adds first name and surname
    assert y.entries[3].case_sensitive
    # the hash depends on content, not on order or layout
    reordered = write(tmp_path, "k2.yaml", "entries:\n" + "\n".join(reversed(YAML_KEY.splitlines()[2:])) + "\n")
    assert load_key(reordered).sha256 == y.sha256
    changed = write(tmp_path, "k3.yaml", YAML_KEY.replace("S1 DK1", "S1 DK9"))
    assert load_key(changed).sha256 != y.sha256


def test_duplicate_with_same_replacement_is_merged(tmp_path):
    k = load_key(write(tmp_path, "k.yaml", "entries:\n"
                       "  - {original: Sarah Jones, replacement: S1 DK1}\n"
                       "  - {original: sarah  jones, replacement: S1 DK1, variants: [Sarah]}\n"))
    assert len(k) == 1 and k.entries[0].terms == ["Sarah Jones", "Sarah"]


@pytest.mark.parametrize("text, message", [
    ("entries:\n  - {original: Sarah Jones, replacement: S1 DK1}\n  - {original: SARAH JONES, replacement: S1 DK2}\n",
     "same string with different replacements"),
    ("entries:\n  - {original: Sarah Jones, replacement: S1 DK1, variants: [Jones]}\n"
     "  - {original: Tom Jones, replacement: S1 DK2, variants: [Jones]}\n", "same variant"),
    ("entries:\n  - {original: '', replacement: S1 DK1}\n", "original is empty"),
    ("entries:\n  - {original: Sarah, replacement: '  '}\n", "replacement is empty"),
    ("entries:\n  - {original: Sarah, replacement: S1}\n  - {original: S1, replacement: S2}\n",
     "is itself a string the key replaces"),
    ("entries:\n  - {original: Sarah, replacement: \"[Sarah's GP]\"}\n", "contains a string"),
    ("entries:\n  - {original: Sarah, replacement: S1, varients: [S]}\n", "unknown field"),
    ("entries: []\n", "no entries"),
    ("entries:\n  - {original: Sarah, replacement: S1, case_sensitive: maybe}\n", "true or false"),
    ("entries: [unclosed\n", "not valid YAML"),
])
def test_bad_keys_are_refused_without_naming_originals(tmp_path, text, message):
    p = write(tmp_path, "bad.yaml", text)
    with pytest.raises(SpRealistError, match=message) as info:
        load_key(p)
    assert "Sarah" not in info.value.message and "Jones" not in info.value.message
    assert str(p) in info.value.message


def test_bad_csv_keys(tmp_path):
    with pytest.raises(SpRealistError, match="header"):
        load_key(write(tmp_path, "k.csv", "name,code\nSarah,S1\n"))
    with pytest.raises(SpRealistError, match=r"entry 2 \(line 3\).*replacement is empty"):
        load_key(write(tmp_path, "k.csv", "original,replacement\nSarah,S1\nOwen,\n"))
    with pytest.raises(SpRealistError, match="must end in"):
        load_key(write(tmp_path, "k.txt", "x"))
    with pytest.raises(SpRealistError, match="no such key file"):
        load_key(tmp_path / "missing.yaml")


def test_detection_on_token_boundaries():
    key = key_from_entries([
        {"original": "Dr Patel", "replacement": "[GP 1]", "variants": ["Patel"]},
        {"original": "Sarah Jones", "replacement": "S1 DK1", "name_parts": True},
        {"original": "Rose", "replacement": "[client 1]", "case_sensitive": True},
    ])
    det = Detector(key)
    cases = {
        "Dr Patel's notes": "[GP 1]'s notes",
        "Patella and patellar": "Patella and patellar",
        "DR PATEL rang; patel’s nurse": "[GP 1] rang; [GP 1]’s nurse",
        "Sarah\nJones and Jones' dog": "S1 DK1 and S1 DK1' dog",
        "sarah  jones (Sarah)": "S1 DK1 (S1 DK1)",
        "Rose rose early": "[client 1] rose early",
        "Jonesy Sarahs": "Jonesy Sarahs",
        # punctuation spaCy would leave glued to the word
        'S1,"Sarah rang"; name="Patel" @Sarah Sarah;Patel Sarah_Jones': 
            'S1,"S1 DK1 rang"; name="[GP 1]" @S1 DK1 S1 DK1;[GP 1] S1 DK1',
        "email sarah@example.org": "email S1 DK1@example.org",
    }
    for text, expected in cases.items():
        assert det.redact(text) == expected, text
    # positions are character offsets of the whole name
    text = "Hello Dr Patel."
    (m,) = det.find(text)
    assert text[m.start:m.end] == "Dr Patel" and m.entry == 0


def test_resolve_overlaps_prefers_longest_then_earliest():
    assert resolve_overlaps([(0, 5, 1), (0, 11, 0), (6, 11, 2), (12, 15, 3)]) == [(0, 11, 0), (12, 15, 3)]
    assert resolve_overlaps([(0, 4, 0), (2, 6, 1)]) == [(0, 4, 0)]


def test_append_entries_keeps_comments_and_validates(tmp_path):
    p = write(tmp_path, "key.yaml", YAML_KEY)
    before = load_key(p)
    key = append_entries(p, [{"original": "Hillside", "replacement": "[place 1]"}])
    text = p.read_text()
    assert text.startswith("# real names") and len(key) == len(before) + 1
    assert key.sha256 != before.sha256
    with pytest.raises(SpRealistError, match="nothing was written"):
        append_entries(p, [{"original": "hillside", "replacement": "[place 2]"}])
    assert p.read_text() == text
    c = write(tmp_path, "key.csv", CSV_KEY)
    key = append_entries(c, [{"original": "Owen Evans", "replacement": "[person 1]"}])
    assert key.entries[-1].original == "Owen Evans" and c.read_text().endswith("Owen Evans,[person 1],,\n")


def test_secret_changes_hash_and_is_checked(tmp_path):
    a = load_key(write(tmp_path, "a.yaml", "secret: 0123456789abcdef0123\n" + YAML_KEY))
    b = load_key(write(tmp_path, "b.yaml", YAML_KEY))
    assert a.sha256 != b.sha256
    with pytest.raises(SpRealistError, match="shorter than 16"):
        load_key(write(tmp_path, "c.yaml", "secret: short\n" + YAML_KEY))


def test_append_to_an_empty_key(tmp_path, runner, cli):
    c = write(tmp_path, "key.csv", "original,replacement,variants\n")
    key = append_entries(c, [{"original": "Owen Evans", "replacement": "[person 1]", "variants": ["Owen"]}])
    assert key.entries[0].terms == ["Owen Evans", "Owen"]
    y = tmp_path / "new.yaml"
    assert runner.invoke(cli, ["anonymise", "new-key", str(y)]).exit_code == 0
    secret = load_key(y, allow_empty=True).secret
    assert secret and len(secret) == 64
    key = append_entries(y, [{"original": "Owen Evans", "replacement": "[person 1]"}])
    assert len(key) == 1 and key.secret == secret


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÉéßøAZ'-", min_size=2, max_size=8).filter(
    lambda w: w[0].isalpha() and w[-1].isalpha())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(WORD, WORD), min_size=1, max_size=6, unique_by=lambda t: t[0].lower()),
       st.randoms(use_true_random=False))
def test_yaml_and_csv_round_trip_to_the_same_key(tmp_path_factory, names, rnd):
    """A key written as YAML and as CSV (any order) loads to the same entries and hash."""
    import csv
    import io

    import yaml

    entries = [{"original": f"{first} Zz{last}", "replacement": f"P{i}", "variants": [f"Zz{last}"]}
               for i, (first, last) in enumerate(names)]
    folder = tmp_path_factory.mktemp("k")
    (folder / "k.yaml").write_text(yaml.safe_dump({"entries": entries}, allow_unicode=True), encoding="utf-8")
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["original", "replacement", "variants"])
    for e in shuffled:
        w.writerow([e["original"], e["replacement"], ";".join(e["variants"])])
    (folder / "k.csv").write_text(buf.getvalue(), encoding="utf-8")
    try:
        y = load_key(folder / "k.yaml")
    except SpRealistError:
        # only refusals the rules allow: two entries sharing a surname variant
        lasts = [n[1].lower() for n in names]
        assert len(set(lasts)) < len(lasts)
        return
    c = load_key(folder / "k.csv")
    assert y.sha256 == c.sha256
    assert sorted((e.original, e.replacement, tuple(e.terms)) for e in y.entries) == \
        sorted((e.original, e.replacement, tuple(e.terms)) for e in c.entries)


def test_key_files_saved_by_excel_in_other_encodings(tmp_path):
    """Excel's "CSV (Comma delimited)" is Windows-1252; "Unicode text" is UTF-16 with a BOM. Same entries, same hash."""
    text = "original,replacement,variants\nSiân Jones,S1 DK1,Siân\nCaerffili Surgery,[GP surgery],\n"
    keys = {}
    for enc in ("utf-8", "utf-8-sig", "utf-16", "cp1252"):
        p = tmp_path / f"key-{enc}.csv"
        p.write_bytes(text.encode(enc))
        keys[enc] = load_key(p)
    assert len({k.sha256 for k in keys.values()}) == 1
    assert keys["cp1252"].entries[0].original == "Siân Jones"
    # appending keeps the entries and rewrites the file as UTF-8
    p = tmp_path / "key-cp1252.csv"
    key = append_entries(p, [{"original": "Owain Price", "replacement": "S2 DK1"}])
    assert [e.original for e in key.entries] == ["Siân Jones", "Caerffili Surgery", "Owain Price"]
    assert p.read_bytes().decode("utf-8").startswith("original,replacement")
    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"\x00\x01original")
    with pytest.raises(SpRealistError, match="binary.csv: not readable text"):
        load_key(bad)

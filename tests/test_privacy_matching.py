"""Matching sees names inside tokens joined by . - _ @ : and across zero-width and non-breaking spaces,
still on token boundaries."""

from __future__ import annotations

import pytest

from sp_realist.privacy.detect import Detector, without_zero_width
from sp_realist.privacy.keyfile import key_from_entries


@pytest.fixture(scope="module")
def det():
    return Detector(key_from_entries([
        {"original": "Sarah Jones", "replacement": "S1 DK1", "name_parts": True},
        {"original": "Patel", "replacement": "[GP 1]"},
    ]))


@pytest.mark.parametrize("text, found", [
    ("sarah.jones@nhs.net", ["sarah.jones"]),
    ("interview-sarah-jones-2020.docx", ["sarah-jones"]),
    ("sarah_jones", ["sarah_jones"]),
    ("notes/Sarah/2020", ["Sarah"]),
    ("rule:Sarah", ["Sarah"]),
    ("Sarah\u00a0Jones said", ["Sarah\u00a0Jones"]),
    ("Sarah\u202fJones said", ["Sarah\u202fJones"]),
    ("Sarah\u200bJones", ["Sarah\u200bJones"]),
    ("Sarah\u200dJones", ["Sarah\u200dJones"]),
    ("Sarah\u2060Jones", ["Sarah\u2060Jones"]),
    ("Sarah\ufeffJones", ["Sarah\ufeffJones"]),
    ("Sa\u200brah went home", ["Sa\u200brah"]),
    ("Jon\u200ces", ["Jon\u200ces"]),
    ("Dr Patel's notes", ["Patel"]),
    ("Dr.Patel", ["Patel"]),
    ("Patella", []),
    ("patella-tendon.txt", []),
    ("SarahJones", []),
    ("Jones.", ["Jones"]),
])
def test_names_inside_joined_tokens_on_token_boundaries(det, text, found):
    assert [text[m.start:m.end] for m in det.find(text)] == found
    assert [[text[m.start:m.end] for m in ms] for ms in det.find_many([text])] == [found]


def test_redact_keeps_the_joiners_around_the_name(det):
    assert det.redact("mail sarah.jones@nhs.net today") == "mail S1 DK1@nhs.net today"
    assert det.redact("Sa\u200brah and Patella") == "S1 DK1 and Patella"


def test_without_zero_width_maps_back_to_the_text():
    assert without_zero_width("plain") is None
    short, index = without_zero_width("a\u200bb\u00adc")
    assert short == "abc" and index == [0, 2, 4, 5]

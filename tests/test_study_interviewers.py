"""study.yaml: ``interviewer_speakers`` and ``autocode: {include_interviewer: true}``.

The mini study's interview has "Interviewer" turns (no participant) and
"Manager" turns (S1 MGR1); the codebook's rules match "referral(s)",
"induction", "paperwork" and "consent form".
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from sp_realist import schema as S
from sp_realist.errors import SpRealistError
from sp_realist.report.study import build_study, load_study
from sp_realist.sources import INTERVIEWER_SETTING, interviewer_speakers
from sp_realist.store import Project

pytestmark = pytest.mark.sqlite_only(
    "built from a study into a project file; build --into a PostgreSQL database is tested in "
    "test_postgres.py")

MINI = Path(__file__).parent / "data" / "mini_study"
INTERVIEW = MINI / "interviews" / "s1-manager-interview.txt"
RULES = re.compile(r"\b(referrals?|induction|paperwork|consent form)\b", re.IGNORECASE)


def _study(tmp_path: Path, **changes) -> Path:
    dst = tmp_path / "study"
    shutil.copytree(MINI, dst)
    path = dst / "study.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["report"]["formats"] = ["md"]
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dst


def _rule_codings_by_speaker(project_path: Path) -> dict[str, int]:
    """speaker label -> number of rule codings in the interview's turns of that speaker."""
    out: dict[str, int] = {}
    with Project.open(project_path) as project, project.connect() as conn:
        segs = conn.execute(select(S.segments.c.source_id, S.segments.c.start, S.segments.c.end, S.segments.c.speaker)
                            .where(S.segments.c.speaker.is_not(None))).all()
        for sid, start in conn.execute(select(S.codings.c.source_id, S.codings.c.start)
                                       .where(S.codings.c.origin.like("rule:%"))):
            for s_sid, a, b, speaker in segs:
                if s_sid == sid and a <= start < b:
                    out[speaker] = out.get(speaker, 0) + 1
    return out


def _expected_interviewer_hits() -> int:
    """Sentences of the Interviewer's turns that a rule matches (each rule codes a sentence, or the match)."""
    n = 0
    for line in INTERVIEW.read_text(encoding="utf-8").splitlines():
        if line.startswith("Interviewer:"):
            n += len(RULES.findall(line))
    return n


def _build(tmp_path: Path, name: str, **changes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    study = _study(folder, **changes)
    result = build_study(study, folder / "out")
    return result.project


def test_interviewer_turns_in_a_built_study(tmp_path):
    expected = _expected_interviewer_hits()
    assert expected > 0  # the mini study's interviewer does say "referrals"
    default = _build(tmp_path, "default")
    opted_in = _build(tmp_path, "opted-in", autocode={"include_interviewer": True})
    relabelled = _build(tmp_path, "relabelled", interviewer_speakers=["Researcher"])
    a, b, c = (_rule_codings_by_speaker(p) for p in (default, opted_in, relabelled))
    # By default the interviewer's turns are never autocoded.
    assert a.get("Interviewer", 0) == 0
    # Opting in codes them; so does a study whose interviewers are someone else.
    assert b.get("Interviewer", 0) == expected
    assert c.get("Interviewer", 0) == expected
    # The interviewee's turns are coded alike in all three.
    assert a.get("Manager", 0) == b.get("Manager", 0) == c.get("Manager", 0) > 0
    # The setting is the project's: set by the study, else the defaults.
    with Project.open(default) as p:
        assert p.get_setting(INTERVIEWER_SETTING) is None
    with Project.open(relabelled) as p:
        assert p.get_setting(INTERVIEWER_SETTING) == ["Researcher"]
        with p.connect() as conn:
            assert interviewer_speakers(conn) == ("Researcher",)


def test_study_reads_the_new_keys(tmp_path):
    study = load_study(_study(tmp_path, autocode={"include_interviewer": True},
                              interviewer_speakers=["Interviewer", "  Research   assistant "]))
    assert study.autocode and study.autocode_include_interviewer
    assert study.interviewer_speakers == ["Interviewer", "Research assistant"]
    plain = load_study(_study(tmp_path / "plain"))
    assert plain.autocode and not plain.autocode_include_interviewer and plain.interviewer_speakers is None
    off = load_study(_study(tmp_path / "off", autocode=False))
    assert not off.autocode
    quiet = load_study(_study(tmp_path / "quiet", autocode={"include_interviewer": False}))
    assert quiet.autocode and not quiet.autocode_include_interviewer


@pytest.mark.parametrize("change, message", [
    ({"interviewer_speakers": 3}, "interviewer_speakers: must be a list of speaker labels"),
    ({"interviewer_speakers": ["Interviewer", ""]}, "interviewer_speakers: must be a list"),
    ({"interviewer_speakers": {"Interviewer": True}}, "interviewer_speakers: must be a list"),
    ({"autocode": {"include_interviewers": True}}, "autocode: unknown key"),
    ({"autocode": {"include_interviewer": "yes"}}, "include_interviewer must be true or false"),
    ({"autocode": "yes"}, "autocode: must be true, false or a mapping"),
])
def test_bad_keys_are_caught_before_anything_is_written(tmp_path, change, message):
    study = _study(tmp_path, **change)
    with pytest.raises(SpRealistError, match=message):
        load_study(study)
    out = tmp_path / "out"
    with pytest.raises(SpRealistError):
        build_study(study, out)
    assert not out.exists()

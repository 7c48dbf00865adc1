"""Every output of a project with an applied key is checked, without the key (salted fingerprints) or with it:
a name planted after anonymisation (a memo typed later, a coder name) makes the command exit 3 and write nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select, update

from sp_realist import schema as S
from sp_realist.coding.codebook import add_code
from sp_realist.coding.codings import add_coding
from sp_realist.coding.memos import add_memo
from sp_realist.errors import CheckFailed
from sp_realist.privacy import anonymise, reverse
from sp_realist.privacy.guard import META_KEY, activated, check_frame, checked_path, leak_finder
from sp_realist.sources import Segment, SourceDraft, add_source
from sp_realist.store import Project, now

KEY = """\
entries:
  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}
  - {original: Riverside Surgery, replacement: "[GP surgery]"}
  - {original: Rose, replacement: "[client 1]", case_sensitive: true}
"""
TEXT = "Interviewer: How was it?\nSarah Jones: Riverside Surgery booked me in. Rose came too.\n"
THEORIES = """\
theories:
  - key: T1
    title: Referral pathways
    cmocs:
      - {key: T1.1, context: Busy surgeries, outcome: Fewer referrals}
"""


@pytest.fixture
def key_path(tmp_path):
    p = tmp_path / "private" / "key.yaml"
    p.parent.mkdir()
    p.write_text(KEY, encoding="utf-8")
    return p


@pytest.fixture
def anon(project_path, key_path, tmp_path, monkeypatch):
    """An anonymised project with a code, a coding, a memo and a theory; returns its path."""
    monkeypatch.delenv("SP_REALIST_KEY", raising=False)
    with Project.open(project_path) as p:
        with p.begin() as conn:
            add_source(conn, SourceDraft(name="interview Sarah Jones", kind="interview", text=TEXT, checksum="x",
                                         segments=[Segment(0, 25, kind="turn", speaker="Interviewer"),
                                                   Segment(25, len(TEXT), kind="turn", speaker="Sarah Jones")],
                                         file_name="interview-sarah-jones.txt",
                                         file_path="/data/Riverside Surgery/interview-sarah-jones.txt"))
        add_code(p, "Referral")
        add_coding(p, "Referral", "interview Sarah Jones", match="booked me in", coder="RA")
        add_memo(p, "Referral was slow.", author="RA")
        (tmp_path / "theories.yaml").write_text(THEORIES, encoding="utf-8")
        from sp_realist.cmoc.theoryfile import import_theories_yaml

        import_theories_yaml(p, tmp_path / "theories.yaml", actor="RA")
        anonymise(p, key_path)
    return project_path


def _plant_memo(path):
    with Project.open(path) as p:
        add_memo(p, "Phoned sarah.jones@nhs.net about it.", author="RA")


def _plant_coder(path):
    with Project.open(path) as p, p.begin() as conn:
        conn.execute(update(S.codings).values(coder="Sarah"))


def _plant_theory(path):
    with Project.open(path) as p, p.begin() as conn:
        conn.execute(update(S.cmocs).values(context="Patients of Riverside\u00a0Surgery"))


def _plant_code(path):
    with Project.open(path) as p, p.begin() as conn:
        conn.execute(update(S.codes).values(definition="Referrals Sarah made"))


COMMANDS = [
    # (planting, arguments, makes a file)
    (_plant_coder, ["retrieve", "Referral"], False),
    (_plant_coder, ["retrieve", "Referral", "-f", "xlsx", "-o", "{out}.xlsx"], True),
    (_plant_coder, ["code", "list", "-f", "csv", "-o", "{out}.csv"], True),
    (_plant_coder, ["code", "export"], False),
    (_plant_coder, ["code", "export", "-o", "{out}.yaml"], True),
    (_plant_memo, ["memo", "export"], False),
    (_plant_memo, ["memo", "export", "-o", "{out}.md"], True),
    (_plant_memo, ["memo", "list", "-f", "json"], False),
    (_plant_theory, ["theory", "export"], False),
    (_plant_theory, ["theory", "export", "{out}.yaml"], True),
    (_plant_theory, ["cmoc", "list", "-f", "md"], False),
    (_plant_theory, ["graph", "export", "{out}.graphml"], True),
    (_plant_theory, ["graph", "render", "{out}.svg"], True),
    (_plant_theory, ["graph", "render", "{out}.pdf"], True),
    (_plant_theory, ["graph", "render", "{out}.png"], True),
    (_plant_code, ["codebook", "export"], False),
    (_plant_code, ["codebook", "export", "-o", "{out}.yaml"], True),
    (_plant_code, ["codebook", "tree"], False),
    (_plant_theory, ["report", "{out}.md"], True),
    (_plant_theory, ["report", "{out}.html"], True),
    (_plant_theory, ["report", "{out}.docx"], True),
    (_plant_coder, ["export", "qdpx", "{out}.qdpx"], True),
]


# One command for each kind of planted name runs on both back ends (the fingerprints are read from the store);
# the rest check the output check of every other command and format, which does not depend on the back end.
BOTH = [COMMANDS[i] for i in (0, 6, 8, 15, 21)]
REST = [c for c in COMMANDS if c not in BOTH]


@pytest.mark.parametrize("plant, args, makes_file", BOTH, ids=[" ".join(c[1][:3]) for c in BOTH])
def test_a_name_planted_after_anonymisation_is_refused(runner, cli, anon, tmp_path, plant, args, makes_file):
    _planted_name_is_refused(runner, cli, anon, tmp_path, plant, args)


@pytest.mark.sqlite_only("every other command's output check; the store side is checked on both back ends above")
@pytest.mark.parametrize("plant, args, makes_file", REST, ids=[" ".join(c[1][:3]) for c in REST])
def test_a_name_planted_after_anonymisation_is_refused_by_every_command(runner, cli, anon, tmp_path, plant, args,
                                                                        makes_file):
    _planted_name_is_refused(runner, cli, anon, tmp_path, plant, args)


def _planted_name_is_refused(runner, cli, anon, tmp_path, plant, args):
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in args]
    r = runner.invoke(cli, [*args, "-p", str(anon)])
    assert r.exit_code == 0, r.output  # clean: written
    target = next((a for a in args if a.startswith(str(out))), None)
    if target:
        assert __import__("pathlib").Path(target).exists()
    for made in tmp_path.glob("out*"):  # the output and what comes with it (a report's figure)
        made.unlink()
    plant(anon)
    r = runner.invoke(cli, [*args, "-p", str(anon)])
    assert r.exit_code == 3, r.output
    assert r.stdout == "" and "nothing was written" in r.stderr
    assert "a name from the applied pseudonym key" in r.stderr
    assert not any(w in r.stderr.lower() for w in ("sarah", "jones", "riverside"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".sp-realist", ".tmp"))] == []


def test_sources_list_and_show_name_where(runner, cli, anon):
    r = runner.invoke(cli, ["sources", "list", "-p", str(anon), "-f", "json"])
    assert r.exit_code == 0 and "S1 DK1" in r.stdout
    r = runner.invoke(cli, ["sources", "show", "1", "-p", str(anon), "-f", "json"])
    assert r.exit_code == 0 and "S1-DK1" in r.stdout  # the file name
    with Project.open(anon) as p, p.begin() as conn:  # a file renamed by hand after anonymisation
        conn.execute(update(S.sources).values(file_name="notes-for-Rose.txt", name="Rose interview"))
        conn.execute(update(S.segments).where(S.segments.c.ord == 0).values(speaker="Rose"))
    r = runner.invoke(cli, ["sources", "list", "-p", str(anon), "-f", "csv"])
    assert r.exit_code == 3 and "sources list: stdout would hold" in r.stderr and "row 1, column 'name'" in r.stderr
    assert r.stdout == ""
    r = runner.invoke(cli, ["sources", "show", "1", "-p", str(anon), "-f", "md"])
    assert r.exit_code == 3 and "line " in r.stderr and r.stdout == ""
    r = runner.invoke(cli, ["sources", "show", "1", "-p", str(anon)])
    assert r.exit_code == 3 and "(at the title)" in r.stderr  # the title names the source


def test_with_the_key_the_message_names_the_entry(runner, cli, anon, key_path):
    _plant_memo(anon)
    r = runner.invoke(cli, ["memo", "list", "-p", str(anon)], env={"SP_REALIST_KEY": str(key_path)})
    assert r.exit_code == 3 and "key entry 1 -> 'S1 DK1'" in r.stderr and "row 2, column 'text'" in r.stderr


def test_case_sensitive_entries_are_fingerprinted_in_their_case(anon):
    with Project.open(anon) as p:
        finder = leak_finder(p)
    assert finder is not None and finder.key is None
    assert [m.start for m in finder.find("Rose rose early; the rose garden")] == [0]
    assert finder.find("the SARAH.JONES file") and finder.find("Sa\u200brah") and not finder.find("Sarahs")
    assert not finder.find("Patella and Jonesborough")


def test_the_project_stores_no_name_only_salted_hashes(anon, key_path):
    with Project.open(anon) as p, p.connect() as conn:
        data = json.loads(conn.execute(select(S.meta.c.value).where(S.meta.c.key == META_KEY)).scalar_one())
    assert len(data["salt"]) == 64 and data["lengths"] == [1, 2]
    assert len(data["lower"]) == 4 and len(data["exact"]) == 1  # Sarah Jones, Sarah, Jones, Riverside Surgery
    assert all(len(h) == 32 for h in data["lower"] + data["exact"])
    raw = json.dumps(data).lower()
    assert "sarah" not in raw and "rose" not in raw


def test_reversal_ends_the_check_and_no_key_costs_nothing(runner, cli, anon, key_path):
    _plant_memo(anon)
    with Project.open(anon) as p:
        reverse(p, key_path)
        assert leak_finder(p) is None
        with p.connect() as conn:
            assert conn.execute(select(S.meta).where(S.meta.c.key == META_KEY)).first() is None
    r = runner.invoke(cli, ["memo", "list", "-p", str(anon), "-f", "json"])
    assert r.exit_code == 0 and "sarah.jones@nhs.net" in r.stdout


def test_library_outputs_are_checked_inside_activated(anon, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"who": ["S1 DK1", "Ms Jones"]})
    with Project.open(anon) as p:
        check_frame(frame)  # nothing active: no check
        with activated(p, what="my script"):
            with pytest.raises(CheckFailed, match=r"my script: stdout would hold .* \(at row 2, column 'who'\)"):
                check_frame(frame)
            target = tmp_path / "x.txt"
            with pytest.raises(CheckFailed, match="x.txt would hold"):
                with checked_path(target) as tmp:
                    tmp.write_text("Riverside Surgery", encoding="utf-8")
            assert not target.exists() and not list(tmp_path.glob(".sp-realist-*"))
            with checked_path(target) as tmp:
                tmp.write_text("[GP surgery]", encoding="utf-8")
            assert target.read_text(encoding="utf-8") == "[GP surgery]"
            with pytest.raises(CheckFailed, match="the file name"):
                with checked_path(tmp_path / "Rose-notes.txt") as tmp:
                    tmp.write_text("fine", encoding="utf-8")


def test_an_older_anonymised_project_without_fingerprints_needs_the_key(runner, cli, anon, key_path):
    with Project.open(anon) as p, p.begin() as conn:
        conn.execute(S.meta.delete().where(S.meta.c.key == META_KEY))
    r = runner.invoke(cli, ["memo", "list", "-p", str(anon)])
    assert r.exit_code == 1 and "no fingerprints" in r.stderr and "--key" in r.stderr
    r = runner.invoke(cli, ["memo", "list", "-p", str(anon)], env={"SP_REALIST_KEY": str(key_path)})
    assert r.exit_code == 0, r.output
    with Project.open(anon) as p:  # anonymising again adds the fingerprints
        anonymise(p, key_path)
    assert runner.invoke(cli, ["memo", "list", "-p", str(anon)]).exit_code == 0


def test_ingest_into_an_anonymised_project_says_so_before_withholding_the_listing(runner, cli, anon, tmp_path):
    f = tmp_path / "sarah-jones-followup.txt"
    f.write_text("Sarah Jones: better now.\n", encoding="utf-8")
    r = runner.invoke(cli, ["ingest", str(f), "--kind", "interview", "-p", str(anon)])
    assert r.exit_code == 3 and r.stdout == ""
    flat = " ".join(r.stderr.split())
    assert "are not anonymised yet" in flat and flat.index("not anonymised yet") < flat.index("would hold")
    assert "row 1, column 'file'" in flat


def test_the_privacy_commands_themselves_are_not_blocked(runner, cli, anon, key_path):
    """anonymise lists what the key matches (originals on screen on request); audit names findings."""
    _plant_memo(anon)
    r = runner.invoke(cli, ["anonymise", "--key", str(key_path), "-p", str(anon), "--dry-run", "--show-originals",
                            "-f", "json"])
    assert r.exit_code == 0, r.output
    assert any(x["original"] == "sarah.jones" for x in json.loads(r.stdout))
    for sub in ("status", "runs"):
        assert runner.invoke(cli, ["anonymise", sub, "-p", str(anon)]).exit_code == 0
    r = runner.invoke(cli, ["audit", str(anon), "--key", str(key_path), "-f", "json"])
    assert r.exit_code == 3 and "memos" in r.stdout


def test_rameses_and_narrative_outputs_are_checked(runner, cli, anon, tmp_path):
    """The checklist (md, docx) and a narrative section are checked like every other output."""
    from sp_realist.report.narrative import set_narrative

    with Project.open(anon) as p:
        set_narrative(p, section="ethics", text="Approved by the committee.\n")
        p.set_setting("report", {"title": "A realist evaluation"})
    made = {"md": tmp_path / "r.md", "docx": tmp_path / "r.docx", "narrative": tmp_path / "ethics.md"}
    runs = {"md": ["rameses", "-f", "md", "-o", str(made["md"])],
            "docx": ["rameses", "-f", "docx", "-o", str(made["docx"])],
            "narrative": ["narrative", "show", "ethics", "-o", str(made["narrative"])]}
    for args in runs.values():
        r = runner.invoke(cli, [*args, "-p", str(anon)])
        assert r.exit_code == 0, r.output
    for path in made.values():
        path.unlink()
    with Project.open(anon) as p:
        set_narrative(p, section="ethics", text="Approved after a call with Sarah Jones.\n")
        p.set_setting("report", {"title": "A realist evaluation at Riverside Surgery"})
    for what, args in runs.items():
        r = runner.invoke(cli, [*args, "-p", str(anon)])
        assert r.exit_code == 3, (what, r.output)
        assert not made[what].exists()
        assert not any(w in r.output.lower() for w in ("sarah", "jones", "riverside"))
    r = runner.invoke(cli, ["narrative", "show", "ethics", "-p", str(anon)])
    assert r.exit_code == 3 and r.stdout == ""

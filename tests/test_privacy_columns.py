"""anonymise leaves nothing behind: every text column of the schema is rewritten or explicitly exempt, a name
planted in every column is gone afterwards (also from the raw file, its WAL and freed pages), and reversal
restores every table exactly (a Hypothesis round trip over full table dumps)."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Float, Integer, insert, select

from conftest import examples, stored_bytes
from sp_realist import schema as S
from sp_realist.privacy.anonymise import (EXEMPT, JSON_FIELDS, SOURCE_FIELDS, anonymise, exempt_reason, project_fields,
                                          reverse, text_columns)
from sp_realist.privacy.keyfile import key_from_entries
from sp_realist.store import Project

# anonymisation's own bookkeeping, and the digests (numbers derived from codings and segments: no text, and
# cleared by the database's triggers when anonymisation rewrites a source, tests/test_digests.py)
SKIP_TABLES = {"anonymisation_runs", "anonymisation_records", "source_digests", "coding_tallies"}
ENUMS = {("segments", "kind"): "turn", ("memos", "target_type"): "source"}


def _enums(table) -> dict[str, str]:
    """A valid value for each column a CHECK constraint limits to a list ("kind IN ('interview', ...)")."""
    import re

    from sqlalchemy import CheckConstraint

    out = {c: v for (t, c), v in ENUMS.items() if t == table.name}
    for con in table.constraints:
        if isinstance(con, CheckConstraint):
            m = re.search(r"\"?(\w+)\"?\s+IN\s*\(\s*'([^']*)'", str(con.sqltext))
            if m:
                out[m.group(1)] = m.group(2)
    return out


def test_every_text_column_is_anonymised_or_exempt_with_a_reason():
    cols = set(text_columns())
    assert cols, "the schema has text columns"
    anonymised = set(SOURCE_FIELDS) | {(t, c) for t, cs in project_fields().items() for c in cs}
    exempt = {(t.name, c.name) for t in S.metadata.sorted_tables for c in t.columns
              if (t.name, c.name) in cols and exempt_reason(t.name, c)}
    assert anonymised | exempt == cols
    assert not anonymised & exempt, "a column cannot be both anonymised and exempt"
    assert set(EXEMPT) <= cols, "an exemption names a column the schema no longer has"
    assert JSON_FIELDS <= anonymised
    assert all(reason.strip() for reason in EXEMPT.values())


def _fill(project: Project, name: str, email: str, coder: str, memo: str) -> None:
    """One row in every table (anonymisation bookkeeping aside) with names in every anonymised column."""
    text = f"{name} met {email} and {coder}. {memo}"
    with project.begin() as conn:
        for table in S.metadata.sorted_tables:
            if table.name in SKIP_TABLES:
                continue
            row = {}
            enums = _enums(table)
            for c in table.columns:
                kind = c.type
                if table.name == "meta" and c.name == "key":
                    row[c.name] = "setting:planted"
                elif table.name == "meta" and c.name == "value":
                    row[c.name] = json.dumps({"who": name, "mail": email})
                elif c is table.autoincrement_column:
                    continue  # the database numbers it (1: one row per table); PostgreSQL's sequence moves on
                elif c.primary_key and isinstance(kind, Integer):
                    row[c.name] = 1
                elif c.foreign_keys:
                    row[c.name] = 1
                elif c.name in ("start", "end"):
                    row[c.name] = 0 if c.name == "start" else len(name)
                elif isinstance(kind, Boolean):
                    row[c.name] = False
                elif isinstance(kind, Integer):
                    row[c.name] = 1
                elif isinstance(kind, Float):
                    row[c.name] = 0.5
                elif S.is_text(c):
                    if c.name in enums:
                        row[c.name] = enums[c.name]
                    elif exempt_reason(table.name, c):
                        row[c.name] = "t"
                    elif (table.name, c.name) in JSON_FIELDS:
                        row[c.name] = json.dumps({"note": f"{name} / {email}", name: [coder]})
                    elif (table.name, c.name) == ("sources", "text"):
                        row[c.name] = text
                    elif (table.name, c.name) == ("sources", "file_name"):
                        row[c.name] = f"interview-{name.replace(' ', '-').lower()}-2020.docx"
                    elif (table.name, c.name) == ("sources", "file_path"):
                        row[c.name] = f"/data/{name}/interview-{name.replace(' ', '_').lower()}-2020.docx"
                    elif c.name in ("coder", "author", "analyst", "actor"):
                        row[c.name] = coder
                    elif c.name in ("text", "memo", "note"):
                        row[c.name] = memo
                    else:
                        row[c.name] = f"{c.name} of {name} ({email})"
            conn.execute(insert(table).values(**row))


def _dump(project: Project) -> dict[str, list]:
    out = {}
    with project.connect() as conn:
        for table in S.metadata.sorted_tables:
            if table.name in SKIP_TABLES:
                continue
            rows = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            if table.name == "meta":
                rows = [r for r in rows if not r[0].startswith("privacy:")]
            if table.name == "audit_log":
                rows = rows[:1]  # anonymise and reverse add their own entries
            out[table.name] = rows
    return out


KEY = [{"original": "Sarah Jones", "replacement": "S1 DK1", "name_parts": True},
       {"original": "Dr Patel", "replacement": "[GP 1]", "variants": ["Patel"]}]


def _raw(path) -> bytes:
    return stored_bytes(path)  # the file, its WAL and shm; or the database's files on the server


def test_a_name_in_every_column_is_gone_even_from_the_raw_file(place, tmp_path):
    path = place("p")
    key = key_from_entries(KEY)
    with Project.create(path) as project:
        _fill(project, "Sarah Jones", "sarah.jones@nhs.net", "sarah_jones", "Dr Patel's note, Patella fine.")
        before = _dump(project)
        assert b"Patel" in _raw(path)
        anonymise(project, key)
        after = _dump(project)
    for table, rows in after.items():
        cols = [c.name for c in S.metadata.tables[table].columns]
        for r in rows:
            for col, value in zip(cols, r):
                if isinstance(value, str):
                    low = value.lower()
                    assert "sarah" not in low and "jones" not in low and "patel " not in low, (table, col, value)
    assert after["sources"][0][cols_index("sources", "file_name")] == "interview-S1-DK1-2020.docx"
    assert after["sources"][0][cols_index("sources", "file_path")] == "/data/S1-DK1/interview-S1-DK1-2020.docx"
    assert after["codings"][0][cols_index("codings", "coder")] == "S1 DK1"
    assert "Patella" in after["memos"][0][cols_index("memos", "text")]
    raw = _raw(path).lower()
    for needle in ("sarah", "jones", "dr patel"):
        assert needle.encode() not in raw and needle.encode("utf-16-le") not in raw, needle
    with Project.open(path) as project:
        reverse(project, key)
        assert _dump(project) == before


def cols_index(table: str, col: str) -> int:
    return [c.name for c in S.metadata.tables[table].columns].index(col)


NAMES = st.sampled_from(["Sarah Jones", "sarah jones", "SARAH JONES", "Sarah\u00a0Jones", "Sarah\u200dJones",
                         "Sarah\u200bJones", "Jones", "Dr Patel", "Patel"])
PUNCT = st.sampled_from(["", ".", ",", "'s", "!", ")", ":", "\u2019s"])


@st.composite
def planted(draw):
    name = draw(NAMES)
    before = draw(st.sampled_from(["", "(", "Met ", "\u00a0", "\u200b", "x "]))
    email = f"{draw(st.sampled_from(['sarah.jones', 'jones', 'patel.r', 's.jones']))}@{draw(st.sampled_from(['nhs.net', 'example.org']))}"
    coder = draw(st.sampled_from(["sarah_jones", "Jones", "RA", "patel-r", "Sarah"]))
    memo = before + draw(NAMES) + draw(PUNCT) + draw(st.sampled_from(["", " about Patella", " and Patel"]))
    return name, email, coder, memo


def test_anonymise_then_reverse_restores_every_table_exactly(backend, new_location, tmp_path):
    @settings(max_examples=examples(backend, 12), deadline=None)
    @given(planted())
    @example(("Sarah Jones", "sarah.jones@nhs.net", "sarah_jones", "Sarah Jones"))  # name is the whole text
    @example(("Patel", "s.jones@example.org", "Jones", "(Patel)"))  # next to punctuation
    @example(("Sarah\u00a0Jones", "jones@nhs.net", "RA", "Met Sarah\u00a0Jones."))  # non-breaking space
    @example(("Sarah\u200dJones", "patel.r@nhs.net", "patel-r", "x Sarah\u200dJones"))  # zero-width joiner
    @example(("Patel", "sarah.jones@nhs.net", "Sarah", "Patella only, Patel's"))  # Patella is not Patel
    def check(case):
        name, email, coder, memo = case
        path = new_location()
        key = key_from_entries(KEY)
        with Project.create(path) as project:
            _fill(project, name, email, coder, memo)
            before = _dump(project)
            anonymise(project, key)
            after = _dump(project)
            assert after != before
            text = after["sources"][0][cols_index("sources", "text")]
            assert "sarah" not in text.lower() and "jones" not in text.lower()
            if "Patella" in memo:
                assert "Patella" in after["memos"][0][cols_index("memos", "text")]
            reverse(project, key)
            assert _dump(project) == before

    check()


def _project_with_source(location):
    from sp_realist.sources import Segment, SourceDraft, add_source

    project = Project.create(location)
    text = "We spoke about the referral.\n"
    with project.begin() as conn:
        add_source(conn, SourceDraft(name="interview", kind="interview", text=text, checksum="x",
                                     segments=[Segment(0, len(text))]))
        conn.execute(insert(S.codes).values(id=1, name="Referral", created_at="t"))
    return project


def test_coders_who_become_one_participant_code_on_one_span_are_refused(place):
    import pytest

    from sp_realist.errors import SpRealistError

    project = _project_with_source(place("u"))
    with project.begin() as conn:
        for coder in ("Sarah", "S1 DK1"):
            conn.execute(insert(S.codings).values(code_id=1, source_id=1, start=0, end=5, coder=coder,
                                                  origin="manual", created_at="t"))
    before = _dump(project)
    with pytest.raises(SpRealistError, match=r"codings [12] and [12]: once names are replaced they would have the same "
                                             r"code_id, source_id, start, end, coder"):
        anonymise(project, key_from_entries(KEY))
    assert _dump(project) == before
    project.close()


def test_json_columns_are_rewritten_inside_their_strings(place):
    project = _project_with_source(place("u"))
    with project.begin() as conn:
        project.log(conn, "ingest", "interview-sarah-jones.txt", actor="sjones",
                    path="/data/Sarah Jones/interview-sarah-jones.txt", note="Zo\u00eb and Dr Patel")
    result = anonymise(project, key_from_entries(KEY))
    fields = set(result.replacements["field"])
    assert {"audit_log 1 detail $.path", "audit_log 1 detail $.note", "audit_log 1 target"} <= fields
    with project.connect() as conn:
        detail = conn.execute(select(S.audit_log.c.detail).where(S.audit_log.c.id == 1)).scalar_one()
    assert json.loads(detail) == {"note": "Zo\u00eb and [GP 1]", "path": "/data/S1 DK1/interview-S1 DK1.txt"}
    project.close()

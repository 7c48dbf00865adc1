"""Codebook exchange: REFI-QDA .qdc (export validated against the XSD), Taguette CSV, qc YAML."""

from __future__ import annotations

import json

from defusedxml import ElementTree as DET
from sqlalchemy import select

from exchange_helpers import DATA, build_sample, schema, snapshot
from sp_realist import schema as S
from sp_realist.exchange.codebooks import import_qc_codebook, import_taguette_codebook
from sp_realist.exchange.qdc import codebook_xml, export_qdc, import_qdc
from sp_realist.store import Project


def _err(result) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def _codes(project) -> dict[str, dict]:
    with project.connect() as conn:
        rows = {r["id"]: dict(r) for r in conn.execute(select(S.codes)).mappings()}
    return {r["name"]: dict(r, parent=rows[r["parent_id"]]["name"] if r["parent_id"] else None) for r in rows.values()}


def test_export_qdc_is_valid_deterministic_and_round_trips(place, project, tmp_path):
    build_sample(project)
    out = tmp_path / "codebook.qdc"
    export_qdc(project, out)
    schema("Codebook.xsd").validate(str(out))
    assert codebook_xml(project) == out.read_bytes()
    root = DET.fromstring(out.read_bytes())
    ns = "{urn:QDA-XML:codebook:1.0}"
    assert root.tag == f"{ns}CodeBook"
    with project.connect() as conn:
        n_codes = len(conn.execute(select(S.codes)).all())
    assert len(list(root.iter(f"{ns}Code"))) == n_codes
    with Project.create(place("fresh")) as fresh:
        result = import_qdc(out, fresh)
        assert result.counts["codes"] == n_codes and result.counts["themes"] == 1
        assert snapshot(fresh)["codes"] == snapshot(project)["codes"]
        assert snapshot(fresh)["themes"] == snapshot(project)["themes"]
        again = import_qdc(out, fresh)  # idempotent: codes are reused
        assert again.counts["codes"] == 0 and snapshot(fresh)["codes"] == snapshot(project)["codes"]


def test_annex_a1_codebook_imports(project):
    path = DATA / "annex-a1-codebook.qdc"
    root = DET.fromstring(path.read_bytes())
    elements = [el for el in root.iter() if el.tag.endswith("}Code")]
    result = import_qdc(path, project)
    assert result.counts["codes"] == len(elements)
    codes = _codes(project)
    for el in elements:
        row = codes[el.get("name")]
        desc = next((c.text for c in el if c.tag.endswith("Description")), None)
        assert row["definition"] == desc
        assert row["colour"] == el.get("color")
        assert row["guid"] == el.get("guid").strip("{}").lower()
        # isCodable is kept (a folder stays a folder), and nothing about it is reported as not imported
        assert row["codable"] is (el.get("isCodable") != "false")
    assert sum(el.get("isCodable") == "false" for el in elements) > 0
    assert not any("codable" in line for line in result.losses)


def test_taguette_csv(project, tmp_path):
    path = tmp_path / "taguette.csv"
    path.write_text("tag,parent,description,number of highlights\r\n"
                    "referral,,How clients reach us,4\r\n"
                    "referral.forms,referral,\"Forms, lost or late\",2\r\n"
                    "induction,,,0\r\n", encoding="utf-8")
    result = import_taguette_codebook(path, project)
    assert result.counts["codes"] == 3
    codes = _codes(project)
    assert codes["referral.forms"]["parent"] == "referral"
    assert codes["referral.forms"]["definition"] == "Forms, lost or late"
    assert codes["induction"]["definition"] is None
    assert any("highlight counts" in n for n in result.notes)


def test_qc_yaml(project, tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text("- referral:\n  - missing forms\n  - reception:\n    - receptionist\n- induction\n",
                    encoding="utf-8")
    result = import_qc_codebook(path, project)
    assert result.counts["codes"] == 5
    codes = _codes(project)
    assert codes["receptionist"]["parent"] == "reception"
    assert codes["reception"]["parent"] == "referral" and codes["induction"]["parent"] is None


def test_codebook_cli_and_errors(place, runner, cli, project_path, tmp_path):
    with Project.open(project_path) as p:
        build_sample(p)
    out = tmp_path / "cb.qdc"
    r = runner.invoke(cli, ["export", "qdc", str(out), "-p", str(project_path)])
    assert r.exit_code == 0 and "3 codes" in _err(r)
    target = place("t")
    Project.create(target).close()
    r = runner.invoke(cli, ["import", "qdc", str(out), "-p", str(target), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert {row["imported"]: row["count"] for row in json.loads(r.stdout)}["codes"] == 3
    bad = tmp_path / "bad.qdc"
    bad.write_text("<Project xmlns='urn:QDA-XML:project:1.0' name='x'/>")
    r = runner.invoke(cli, ["import", "qdc", str(bad), "-p", str(target)])
    assert r.exit_code == 1 and "not a REFI-QDA codebook" in _err(r) and "Traceback" not in r.output
    csv = tmp_path / "bad.csv"
    csv.write_text("code,description\nx,y\n")
    r = runner.invoke(cli, ["import", "taguette", str(csv), "-p", str(target)])
    assert r.exit_code == 1 and "'tag'" in _err(r)
    yml = tmp_path / "bad.yaml"
    yml.write_text("codes: [a, b]\n")
    r = runner.invoke(cli, ["import", "qc", str(yml), "-p", str(target)])
    assert r.exit_code == 1 and "YAML list" in _err(r)
    with Project.open(target) as p:
        assert len(_codes(p)) == 3  # failed imports added nothing


def test_taguette_xlsx(project, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["tag", "parent", "description", "number of highlights"])
    ws.append(["referral", None, "How clients reach us", 4])
    ws.append(["referral.forms", "referral", None, 2])
    wb.save(tmp_path / "taguette.xlsx")
    result = import_taguette_codebook(tmp_path / "taguette.xlsx", project)
    assert result.counts["codes"] == 2
    codes = _codes(project)
    assert codes["referral.forms"]["parent"] == "referral"
    assert codes["referral"]["definition"] == "How clients reach us"


def test_qdc_set_members_with_non_guid_ids(project, tmp_path):
    path = tmp_path / "hand.qdc"
    path.write_text("""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0">
 <Codes><Code guid="a" name="Access" isCodable="true"/><Code guid="b" name="Trust" isCodable="true"/></Codes>
 <Sets><Set guid="t1" name="Relationships"><MemberCode targetGUID="b"/></Set></Sets>
</CodeBook>""", encoding="utf-8")
    result = import_qdc(path, project)
    assert result.counts["codes"] == 2
    with project.connect() as conn:
        members = conn.execute(select(S.themes.c.name, S.codes.c.name).select_from(
            S.theme_codes.join(S.themes, S.theme_codes.c.theme_id == S.themes.c.id)
            .join(S.codes, S.theme_codes.c.code_id == S.codes.c.id))).all()
    assert [tuple(m) for m in members] == [("Relationships", "Trust")]

"""The report reads the realist-analysis area through its public functions and their typed records:
what the report shows is what 'sp-realist ifthen', 'cmoc table' and 'saturation' give, with no second
implementation and no import fallbacks."""

from __future__ import annotations

import ast
import inspect

import pytest

from sp_realist.cmoc.ifthen import CmocCells, IfThenStatement, cmoc_cells, cmoc_table, ifthen_records, ifthen_statements
from sp_realist.cmoc.saturation import SaturationVerdict
from sp_realist.report import integrations
from sp_realist.report.model import ReportSettings, build_report_model


@pytest.fixture
def filled(populated):
    return populated


def test_ifthen_records_are_typed_and_the_dataframe_is_built_from_them(filled):
    records = ifthen_records(filled)
    assert records and all(isinstance(r, IfThenStatement) for r in records)
    df = ifthen_statements(filled)
    assert [tuple(r) for r in df.itertuples(index=False)] == [(r.theory, r.cmoc, r.statement, r.wording)
                                                               for r in records]


def test_cmoc_cells_are_the_cmoc_tables_cells(filled):
    cells = cmoc_cells(filled)
    assert cells and all(isinstance(c, CmocCells) for c in cells)
    df = cmoc_table(filled)
    assert list(df.index) == [c.cmoc for c in cells]
    assert [list(row) for row in df.itertuples(index=False)] == [[c.context, c.mechanism, c.outcome] for c in cells]
    assert df.attrs["theories"] == {c.cmoc: c.theory for c in cells}


def test_the_report_shows_the_records(filled):
    model = build_report_model(filled, ReportSettings(figure=False))
    cells = {c.cmoc: c for c in cmoc_cells(filled)}
    statements = {r.cmoc: r.statement for r in ifthen_records(filled)}
    for theory in model.theories:
        for row in theory.table.rows:
            c = cells[row[0]]
            assert row[1:] == [c.context, c.mechanism, c.outcome]
        for s in theory.statements:
            assert s.text == statements[s.key]
    verdicts = integrations.saturation(filled)
    assert verdicts and all(isinstance(v, SaturationVerdict) and v.level == "cmoc" for v in verdicts.values())
    detail = {r[0]: dict(zip(model.appendices.saturation.columns, r)) for r in model.appendices.saturation.rows}
    for key, v in verdicts.items():
        assert detail[key]["Saturated"] == ("yes" if v.saturated else "no") and detail[key]["Reason"] == v.reason


def test_integrations_has_no_import_fallbacks():
    tree = ast.parse(inspect.getsource(integrations))
    handlers = [h for node in ast.walk(tree) if isinstance(node, ast.Try) for h in node.handlers]
    assert not any(ast.unparse(h.type) == "ImportError" for h in handlers if h.type is not None)
    assert not hasattr(integrations, "fallback_statement") and not hasattr(integrations, "_fallback_figure")

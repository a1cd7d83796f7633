"""DMN-style tables: S-FEEL cells, all seven hit policies, output values, decimals, checks."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from storeops.engine import adapters, runner
from storeops.engine.errors import ErrorList, EvaluationError
from storeops.engine.packs import load_pack
from storeops.engine.tables import compile_pack

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tables():
    pack = load_pack(DATA / "dmn_tables.yaml")
    return {t.table.id: t for t in compile_pack(pack)}


def fact(age=30, risk="Low", affordable=True, score=55.0):
    return {"applicant": "X", "age": age, "risk": risk, "affordable": affordable,
            "score": score}


def test_priority_by_output_value_order(tables):
    approval = tables["approval"]
    # adult, low risk, affordable: only adult_low_risk -> Approved/Basic
    assert approval.evaluate(fact()) == {"status": "Approved", "rate": "Basic"}
    # minor with high risk: minor (Declined) and high_risk (Approved) match; Approved ranks first
    assert approval.evaluate(fact(age=16, risk="High")) == {"status": "Approved",
                                                           "rate": "Standard"}
    # adult, medium risk, not affordable: nothing matches
    assert approval.evaluate(fact(risk="Medium", affordable=False)) is None


def test_unique_intervals(tables):
    band = tables["band"]
    assert [band.evaluate(fact(score=s)) for s in (49.9, 50, 79.99, 80, 100, 100.5)] == [
        "low", "mid", "mid", "high", "high", None]
    assert band.evaluate(fact(score=None)) is None


def test_collect_sum_is_exact_decimal(tables):
    total = tables["bonus_sum"].evaluate(fact(age=30, score=1))
    assert total == Decimal("0.3") and isinstance(total, Decimal)  # 0.1 + 0.2, exactly
    assert tables["bonus_sum"].evaluate(fact(age=70, score=1)) == Decimal("5.3")
    assert tables["bonus_sum"].evaluate(fact(age=10, score=-1)) is None  # sum of nothing


def test_collect_count(tables):
    assert tables["bonus_count"].evaluate(fact(age=30)) == 2
    assert tables["bonus_count"].evaluate(fact(age=3)) == 1


def test_rule_order_and_output_order(tables):
    assert tables["letters_rule_order"].evaluate(fact(score=60)) == ["C", "A", "B"]
    assert tables["letters_output_order"].evaluate(fact(score=60)) == ["A", "B", "C"]
    assert tables["letters_output_order"].evaluate(fact(score=30)) == ["B", "C"]


def test_any_agreeing_and_disagreeing(tables):
    assert tables["any_adult"].evaluate(fact(age=25, risk="Low")) is True
    assert tables["any_adult"].evaluate(fact(age=12)) is False


def test_first(tables):
    assert [tables["first_band"].evaluate(fact(score=s)) for s in (95, 61, 3)] == [
        "top", "good", "rest"]


def test_columnar_equals_row_for_every_policy():
    pack = load_pack(DATA / "dmn_tables.yaml")
    records = [fact(age=a, risk=r, affordable=f, score=s)
               for a in (10, 17, 18, 21, 61) for r in ("High", "Low", "Medium")
               for f in (True, False) for s in (None, 19.5, 20, 50, 79.99, 80, 95, 101)]
    facts = adapters.facts_from_records(records, pack.fields, pack.field_values)
    tables = runner.compile_packs([pack])
    rows = runner.fire_rows(tables, facts.rows())
    columns = runner.fire_columns(tables, facts)
    assert rows.fact.tolist() == columns.fact.tolist()
    assert rows.table.tolist() == columns.table.tolist()
    assert rows.rule.tolist() == columns.rule.tolist()


def write(tmp_path: Path, body: str) -> Path:
    head = (DATA / "dmn_tables.yaml").read_text(encoding="utf-8").split("tables:\n")[0]
    path = tmp_path / "t.yaml"
    path.write_text(head + "tables:\n" + body, encoding="utf-8")
    return path


def test_unique_conflict_names_the_rows(tmp_path):
    path = write(tmp_path, """\
  - id: band
    hit_policy: unique
    inputs: [{label: score, expression: score}]
    outputs: [{name: band, type: text}]
    rules:
      - {id: low, cells: ["<= 50"], result: [low]}
      - {id: mid, cells: ["[50..80]"], result: [mid]}
""")
    with pytest.raises(ErrorList) as info:
        load_pack(path, display="t.yaml")
    assert [str(e) for e in info.value.errors] == [
        "t.yaml:24:26: rules 'low' and 'mid' of UNIQUE table 'band' can both match one fact, "
        "e.g. score=50.0"]


def test_any_disagreement_is_a_runtime_error_naming_rows(tmp_path):
    path = write(tmp_path, """\
  - id: adult
    hit_policy: any
    inputs: [{label: Age, expression: age * 1}]
    outputs: [{name: adult, type: boolean}]
    rules:
      - {id: by_age, cells: [">= 18"], result: [true]}
      - {id: odd, cells: [">= 30"], result: [false]}
""")
    table = compile_pack(load_pack(path, display="t.yaml"))[0]
    with pytest.raises(EvaluationError) as info:
        table.evaluate(fact(age=40))
    assert str(info.value) == (
        "t.yaml:18:5: rules 'by_age', 'odd' of ANY table 'adult' all match with different "
        "outputs applicant 'X'")


def test_cell_and_result_errors_are_positioned(tmp_path):
    path = write(tmp_path, """\
  - id: band
    hit_policy: first
    inputs: [{label: score, expression: score}, {label: Risk, expression: risk}]
    outputs: [{name: band, type: number}]
    rules:
      - {id: a, cells: ["> x", "-"], result: [1]}
      - {id: b, cells: ["-"], result: [1]}
      - {id: c, cells: ["-", '"High"'], result: [high]}
      - {id: d, cells: ["-", "> 3"], result: [1]}
""")
    with pytest.raises(ErrorList) as info:
        load_pack(path, display="t.yaml")
    errors = [str(e) for e in info.value.errors]
    assert errors[0].startswith("t.yaml:23:28: unsupported FEEL in a cell: name 'x'")
    assert errors[1] == "t.yaml:24:24: rule 'b' has 1 cell(s) for 2 input column(s)"
    assert errors[2] == "t.yaml:25:50: result 'high' for output 'band' is not a number"
    assert errors[3].startswith("t.yaml:26:31: ") and "text" in errors[3]


def test_gaps_and_shadowed_rows_are_warnings(tmp_path):
    path = write(tmp_path, """\
  - id: band
    hit_policy: first
    inputs: [{label: score, expression: score}]
    outputs: [{name: band, type: text}]
    rules:
      - {id: top, cells: [">= 60"], result: [top]}
      - {id: dead, cells: [">= 90"], result: [dead]}
      - {id: low, cells: ["< 10"], result: [low]}
""")
    pack = load_pack(path, display="t.yaml")
    assert [str(w) for w in pack.warnings] == [
        # scores from 10 up to 60 are uncovered: the representatives are 10 and 35
        "t.yaml:18:5: table 'band' has gaps: no rule matches score=10; score=35.0",
        "t.yaml:24:27: rule 'dead' of FIRST table 'band' can never fire: an earlier row "
        "matches every fact it matches (e.g. rule 'top')",
    ]


def test_gap_domains_come_from_input_values_and_other_text_is_named(tmp_path):
    path = write(tmp_path, """\
  - id: colour
    hit_policy: unique
    inputs:
      - {label: colour, expression: applicant, values: [red, green]}
    outputs: [{name: ok, type: boolean}]
    rules:
      - {id: red, cells: ['"red"'], result: [true]}
  - id: free_text
    hit_policy: unique
    inputs: [{label: colour, expression: applicant}]
    outputs: [{name: ok, type: boolean}]
    rules:
      - {id: red, cells: ['"red"'], result: [true]}
""")
    pack = load_pack(path, display="t.yaml")
    assert [str(w) for w in pack.warnings] == [
        "t.yaml:18:5: table 'colour' has gaps: no rule matches applicant='green'",
        "t.yaml:25:5: table 'free_text' has gaps: no rule matches applicant=(any other text)",
    ]


def test_sheet_tables_run_and_are_traced_to_their_sheet(tmp_path):
    from click.testing import CliRunner

    from storeops.cli import cli
    from storeops.engine.trail import read_trail

    def invoke(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    assert invoke("table", "export", DATA / "dmn_tables.yaml", "band",
                  "-o", tmp_path / "band.xlsx").exit_code == 0
    pack = tmp_path / "pack.yaml"
    shutil.copy(DATA / "sheet_demo.yaml", pack)
    facts = tmp_path / "facts.csv"
    facts.write_text("applicant,score\nA,10\nB,60\n", encoding="utf-8")
    result = invoke("run", "--pack", pack, "--input", facts, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    decisions = (tmp_path / "o" / "decisions.csv").read_text(encoding="utf-8").splitlines()
    assert decisions[1:] == ['A,1,sheet_demo,band,"""low""",low,R1.1',
                             'B,2,sheet_demo,band,"""mid""",mid,R1.2']
    records = list(read_trail(tmp_path / "o" / "trail.sqlite"))
    assert records[1]["source_file"].endswith("band.xlsx[band]")
    assert records[1]["source_line"] == 5  # the sheet row of rule 'mid'
    first_hash = records[0]["pack_sha256"]
    # a changed sheet is a changed pack: the trail's hash moves with it
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "band.xlsx")
    book.active["C4"] = "very low"
    book.save(tmp_path / "band.xlsx")
    assert invoke("run", "--pack", pack, "--input", facts, "--out", tmp_path / "o").exit_code == 0
    again = list(read_trail(tmp_path / "o" / "trail.sqlite", run_id="R2"))
    assert again[0]["pack_sha256"] != first_hash
    assert json.loads(again[0]["outputs"]) == [{"result": {"band": "very low"}}]

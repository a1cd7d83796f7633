"""The CLI as users run it, through click's CliRunner: outputs, exit codes, exact errors."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
KZB = ROOT / "rules" / "kzb.yaml"
NEEDS = ROOT / "samples" / "needs_log.csv"
DATA = Path(__file__).parent / "data"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def kzb_copy(tmp_path, monkeypatch):
    """A copy of the KZB pack in a temp folder, shown as 'kzb.yaml' in messages."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(KZB, tmp_path / "kzb.yaml")
    return tmp_path / "kzb.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = invoke("run", "--pack", KZB, "--input", NEEDS, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_validate_bundled_rules():
    result = invoke("validate", ROOT / "rules")
    assert result.exit_code == 0
    assert "kzb.yaml: ok (kzb 1.0.0, 2 table(s), 28 rule(s))\n" in result.stdout


def test_validate_reports_every_error_with_position(kzb_copy):
    text = kzb_copy.read_text(encoding="utf-8")
    text = text.replace("then: [KZB-15]", "then: [KZB_15]", 1)
    text = text.replace("when: \"need == 'N04'\"", "when: \"need = 'N04'\"", 1)
    kzb_copy.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    bad_then = next(i for i, line in enumerate(lines, 1) if "KZB_15" in line)
    bad_when = next(i for i, line in enumerate(lines, 1) if "need = 'N04'" in line)
    result = invoke("validate", "kzb.yaml")
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    when_col = lines[bad_when - 1].index('"need =') + 1 + 1 + len("need ")
    assert errors[0].startswith(f"kzb.yaml:{bad_when}:{when_col}: ")
    assert "'=='" in errors[0]
    then_col = lines[bad_then - 1].index("KZB_15") + 1
    assert errors[1] == (
        f"kzb.yaml:{bad_then}:{then_col}: unknown action 'KZB_15' (did you mean 'KZB-15'?)")
    assert "Traceback" not in result.output


def test_validate_missing_file():
    result = invoke("validate", "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr == "nope.yaml:1:1: no such file\n"


def test_schema_pack_is_json_schema():
    result = invoke("schema", "pack")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"pack", "fields"}
    # and tables, a workflow (docs/workflows.md) or a domain section, or several
    assert schema["anyOf"] == [{"required": [key]} for key in
                               ("tables", "workflow", "value_chain", "customers")]


def test_run_writes_actions_and_trail(demo):
    out, result = demo
    assert result.stdout.startswith("run R1: 400 facts, 400 firings, ")
    rows = read_rows(out / "actions.csv")
    assert {"action_id", "subject", "rule_id", "action"} <= set(rows[0])
    assert pd.read_parquet(out / "actions.parquet").shape[0] == len(rows)
    # every need in the log is answered per the seed table: N19 -> KZB-15 only
    needs = {i: row["need"] for i, row in enumerate(read_rows(NEEDS), 1)}
    complaint_rows = [r for r in rows if needs[int(r["input_row"])] == "N19"]
    assert complaint_rows and {r["action"] for r in complaint_rows} == {"KZB-15"}
    db = sqlite3.connect(out / "trail.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM trail").fetchone() == (400,)


def test_explain_action_back_to_rule_file_line_and_inputs(demo):
    out, _ = demo
    rows = read_rows(out / "actions.csv")
    row = next(r for r in rows if r["rule_id"] == "N14" and r["action"] == "KZB-12")
    result = invoke("explain", "--trail", out / "trail.sqlite", row["action_id"])
    assert result.exit_code == 0
    lines = KZB.read_text(encoding="utf-8").splitlines()
    rule_line = next(i for i, line in enumerate(lines, 1) if line.strip() == "- id: N14")
    text = result.stdout
    assert text.splitlines()[0].startswith("action   KZB-12 (")
    assert "rule     N14 " in text
    assert f"source   {KZB}:{rule_line}" in text or f"kzb.yaml:{rule_line}" in text
    assert 'inputs   need = "N14"' in text
    assert "pack     kzb 1.0.0 (sha256 " in text


def test_explain_subject_lists_every_firing(demo):
    out, _ = demo
    result = invoke("explain", "--trail", out / "trail.sqlite", "--subject", "C001")
    assert result.exit_code == 0
    expected = sum(1 for row in read_rows(NEEDS) if row["customer"] == "C001")
    assert result.stdout.count("subject  C001") == expected > 0


def test_explain_unknown_action(demo):
    out, _ = demo
    result = invoke("explain", "--trail", out / "trail.sqlite", "R1.9999.1")
    assert result.exit_code == 2
    assert "no record for action R1.9999.1" in result.stderr
    result = invoke("explain", "--trail", out / "trail.sqlite", "banana")
    assert result.exit_code == 2
    assert result.stderr == (
        "'banana' is not an action id (expected RUN.SEQ.K, e.g. R1.42.1)\n")


def test_trace_filters_and_formats(demo):
    out, _ = demo
    result = invoke("trace", "--trail", out / "trail.sqlite", "--rule", "N19",
                    "--format", "jsonl")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and {r["rule_id"] for r in records} == {"N19"}
    assert json.loads(records[0]["inputs"]) == {"need": "N19"}
    csv_out = invoke("trace", "--trail", out / "trail.sqlite", "--subject", "C001")
    rows = list(csv.DictReader(csv_out.stdout.splitlines()))
    assert rows and {r["subject"] for r in rows} == {"C001"}


def test_row_and_columnar_engines_agree(tmp_path):
    a = invoke("run", "--pack", KZB, "--input", ROOT / "samples" / "needs_with_indicators.csv",
               "--out", tmp_path / "a", "--engine", "row")
    b = invoke("run", "--pack", KZB, "--input", ROOT / "samples" / "needs_with_indicators.csv",
               "--out", tmp_path / "b", "--engine", "columnar")
    assert a.exit_code == b.exit_code == 0
    assert (tmp_path / "a" / "actions.csv").read_bytes() == (
        tmp_path / "b" / "actions.csv").read_bytes()
    strip = "SELECT seq, subject, rule_id, inputs, outputs FROM trail ORDER BY seq"
    rows_a = sqlite3.connect(tmp_path / "a" / "trail.sqlite").execute(strip).fetchall()
    rows_b = sqlite3.connect(tmp_path / "b" / "trail.sqlite").execute(strip).fetchall()
    assert rows_a == rows_b and len(rows_a) > 100


def test_bad_input_is_refused_and_nothing_is_lost(demo, tmp_path):
    out = tmp_path / "out"
    ok = invoke("run", "--pack", KZB, "--input", NEEDS, "--out", out)
    assert ok.exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,date,need\nC1,2026-10-01,N01\nC2,2026-13-01,N99\nC3,,N02\n",
                   encoding="utf-8")
    result = invoke("run", "--pack", KZB, "--input", bad, "--out", out)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    shown = result.stderr.splitlines()
    assert any(line.endswith(":3:2: bad value '2026-13-01' in column 'date' (expected a date)")
               for line in shown)
    assert any(":3:3: bad value 'N99' in column 'need'" in line for line in shown)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before


def test_missing_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,day,need\nC1,2026-10-01,N01\n", encoding="utf-8")
    result = invoke("run", "--pack", KZB, "--input", bad, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "bad.csv:1:1: missing column 'date' (expected a date) (map it in a mapping file)\n")
    assert not (tmp_path / "o" / "actions.csv").exists()


def test_mapping_renames_columns(tmp_path):
    source = tmp_path / "theirs.csv"
    source.write_text("kunde;tag;bedarf\nC1;01.10.2026;N19\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("mapping:\n  delimiter: ';'\n  date_format: '%d.%m.%Y'\n  columns:\n"
                       "    customer: kunde\n    date: tag\n    need: bedarf\n", encoding="utf-8")
    result = invoke("run", "--pack", KZB, "--input", source, "--mapping", mapping,
                    "--out", tmp_path / "o", "--trail", tmp_path / "o" / "trail.jsonl")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "o" / "actions.csv")
    assert [(r["subject"], r["rule_id"], r["action"]) for r in rows] == [("C1", "N19", "KZB-15")]
    line = json.loads((tmp_path / "o" / "trail.jsonl").read_text(encoding="utf-8"))
    assert line["rule_id"] == "N19" and line["run_id"] == "R1"


def test_mapping_naming_a_missing_column(tmp_path):
    source = tmp_path / "theirs.csv"
    source.write_text("customer,date,need\nC1,2026-10-01,N19\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("mapping:\n  columns:\n    need: bedarf\n", encoding="utf-8")
    result = invoke("run", "--pack", KZB, "--input", source, "--mapping", mapping,
                    "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{mapping}:3:11: the mapping names column 'bedarf' for field 'need', but "
        f"{source} has no such column\n")


ESCALATION = """\
pack:
  id: escalation
  version: "0.1"
  title: {zh: 投诉升级, en: complaint escalation}
  source: {document: tests}
  subject: customer
fields:
  - {name: customer, type: text}
  - {name: need, type: text}
actions:
  - {id: CALL_BACK, label: {zh: 回访, en: call back within a day}}
tables:
  - id: escalate
    hit_policy: first
    rules:
      - id: complaint
        when: "need in ['N17', 'N19']"
        then: [{action: CALL_BACK, params: {hours: 24}}]
"""


def test_two_packs_over_one_needs_log(tmp_path):
    second = tmp_path / "escalation.yaml"
    second.write_text(ESCALATION, encoding="utf-8")
    result = invoke("run", "--pack", KZB, "--pack", second, "--input", NEEDS,
                    "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "o" / "actions.csv")
    complaints = [i for i, row in enumerate(read_rows(NEEDS), 1) if row["need"] in ("N17", "N19")]
    callbacks = [r for r in rows if r["pack_id"] == "escalation"]
    assert [int(r["input_row"]) for r in callbacks] == complaints
    assert {r["params"] for r in callbacks} == {'{"hours": 24}'}
    # per fact, the KZB firing comes before the escalation firing (pack order)
    first = next(r for r in rows if int(r["input_row"]) == complaints[0])
    assert first["pack_id"] == "kzb"


def test_the_same_pack_twice_is_refused(tmp_path):
    result = invoke("run", "--pack", KZB, "--pack", KZB, "--input", NEEDS,
                    "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "pack id 'kzb' is also the id of" in result.stderr


def test_explain_an_output_number_that_does_not_exist(demo):
    out, _ = demo
    result = invoke("explain", "--trail", out / "trail.sqlite", "R1.1.9")
    assert result.exit_code == 2
    assert result.stderr.endswith("firing R1.1 has 1 output(s), not 9\n")


def test_trace_to_a_file(demo, tmp_path):
    out, _ = demo
    target = tmp_path / "n19.csv"
    result = invoke("trace", "--trail", out / "trail.sqlite", "--rule", "N19", "-o", target)
    assert result.exit_code == 0
    rows = read_rows(target)
    assert result.stderr == f"wrote {len(rows):,} records to {target}\n"
    assert rows and {r["rule_id"] for r in rows} == {"N19"}


def test_validate_knows_mappings_teams_and_packs_by_their_first_key(tmp_path):
    result = invoke("validate", ROOT / "mappings", ROOT / "teams")
    assert result.exit_code == 0, result.output
    assert "olist_orders.yaml: ok (replay mapping)" in result.stdout
    assert "olist_customers.yaml: ok (customer mapping)" in result.stdout
    assert "rossmann_daily.yaml: ok (mapping)" in result.stdout
    assert "sample_team.yaml: ok (team)" in result.stdout
    bad = tmp_path / "team.yaml"
    bad.write_text((ROOT / "teams" / "sample_team.yaml").read_text(encoding="utf-8")
                   .replace("visit_minutes: 75", "visit_minutes: -5"), encoding="utf-8")
    result = invoke("validate", bad)
    assert result.exit_code == 2
    assert "team.yaml:11:18: team.visit_minutes" in result.stderr

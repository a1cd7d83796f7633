"""Pack loading: schema and cross-reference errors with exact positions, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from storeops.engine.errors import ErrorList
from storeops.engine.packs import load_pack

DATA = Path(__file__).parent / "data"

HEAD = """\
pack:
  id: p
  version: "1"
  title: {zh: 测试, en: test}
  source: {document: tests}
  subject: store
fields:
  - {name: store, type: text}
  - {name: tier, type: text, values: [A, B, C]}
  - {name: sales, type: number}
actions:
  - {id: VISIT, label: {zh: 拜访, en: visit}}
  - {id: TRAIN, label: {zh: 培训, en: training}}
"""


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ErrorList) as info:
        load_pack(path, display="p.yaml")
    return [str(e) for e in info.value.errors]


def test_fixture_pack_loads():
    pack = load_pack(DATA / "stores.yaml")
    assert pack.id == "stores_test"
    assert [t.id for t in pack.tables] == [
        "tier_support", "problems", "first_problem", "top_problem", "any_training"]
    rule = pack.tables[1].rules[0]
    assert rule.location.line == 40
    assert rule.when.fields == ("conversion_rate", "tier")
    assert pack.parameters["sales_drop"].design_choice is True
    assert len(pack.sha256) == 64


def test_unknown_key_and_wrong_type_and_missing_key_all_reported(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
tables:
  - id: t
    hit_policy: unique
    rules:
      - {id: r1, when: "tier == 'A'", then: [VISIT], priorty: 3}
      - {id: r2, when: "tier == 'B'", then: [VISIT], priority: high}
      - {id: r3, then: [VISIT]}
""")
    assert errors == [
        "p.yaml:18:54: unknown key 'priorty' in tables.0.rules.0 (did you mean 'priority'?)",
        "p.yaml:19:64: tables.0.rules.1.priority: expected an integer, got the text 'high'",
        "p.yaml:20:9: tables.0.rules.2: needs 'when' or 'cells'",
    ]


def test_version_must_be_quoted(tmp_path):
    errors = errors_of(tmp_path, HEAD.replace('version: "1"', "version: 1.0") + """\
tables:
  - id: t
    hit_policy: collect
    rules: [{id: r1, when: "tier == 'A'", then: [VISIT]}]
""")
    assert errors == ["p.yaml:3:12: pack.version: expected text, got the number 1.0 (quote it)"]


def test_bad_hit_policy_suggests(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
tables:
  - id: t
    hit_policy: colect
    rules: [{id: r1, when: "tier == 'A'", then: [VISIT]}]
""")
    assert errors == [
        "p.yaml:16:17: tables.0.hit_policy: expected one of unique, first, priority, any, "
        "collect, rule_order, output_order, got the text 'colect' (did you mean 'collect'?)"
    ]


def test_cross_references(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
  - {id: VISIT, label: {zh: 拜访, en: visit}}
tables:
  - id: t
    hit_policy: collect
    rules:
      - {id: r1, when: "tier == 'A'", then: [VIST]}
      - {id: r1, when: "tier == 'B'", then: [TRAIN], kpi: sales_growth}
  - id: t
    hit_policy: collect
    rules: []
""")
    assert errors == [
        "p.yaml:14:10: duplicate action 'VISIT'",
        "p.yaml:19:46: unknown action 'VIST' (did you mean 'VISIT'?)",
        "p.yaml:20:14: duplicate rule id 'r1' in table 't'",
        "p.yaml:20:59: unknown KPI 'sales_growth'",
        "p.yaml:21:9: duplicate table 't'",
        "p.yaml:23:12: table 't' has no rules",
    ]


def test_expression_errors_have_columns(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
tables:
  - id: t
    hit_policy: collect
    rules:
      - {id: r1, when: "tier == 'A' and sale > 10", then: [VISIT]}
      - {id: r2, when: "tier > 3", then: [VISIT]}
      - {id: r3, when: "tier == 'D'", then: [VISIT]}
""")
    assert len(errors) == 3
    # 'sale' starts at offset 16 of the expression; the scalar's text starts at column 25
    assert errors[0].startswith("p.yaml:18:41: ")
    assert "unknown field 'sale'" in errors[0] and "did you mean 'sales'?" in errors[0]
    assert errors[1] == "p.yaml:19:30: cannot compare text with integer"
    assert errors[2] == (
        "p.yaml:20:33: 'D' is not a value of field 'tier' (expected one of A, B, C)"
    )


def test_unique_overlap_is_found_with_an_example(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
tables:
  - id: t
    hit_policy: unique
    rules:
      - {id: big, when: "sales >= 1000 and tier in ['A', 'B']", then: [VISIT]}
      - {id: b_any, when: "tier == 'B'", then: [TRAIN]}
      - {id: c_only, when: "tier == 'C'", then: [TRAIN]}
""")
    assert len(errors) == 1
    assert errors[0].startswith(
        "p.yaml:19:27: rules 'big' and 'b_any' of UNIQUE table 't' can both match one fact, "
        "e.g. ")
    assert "tier='B'" in errors[0]


def test_contradictory_rule(tmp_path):
    errors = errors_of(tmp_path, HEAD + """\
tables:
  - id: t
    hit_policy: collect
    rules:
      - {id: never, when: "sales < 10 and sales > 20", then: [VISIT]}
""")
    assert errors == [
        "p.yaml:18:27: rule 'never' can never match: its condition is contradictory"]


def test_any_with_equal_outputs_may_overlap(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + """\
tables:
  - id: t
    hit_policy: any
    rules:
      - {id: a, when: "sales < 10", then: [VISIT]}
      - {id: b, when: "sales < 20", then: [VISIT]}
""", encoding="utf-8")
    assert load_pack(path).tables[0].hit_policy == "any"


def test_not_a_mapping(tmp_path):
    assert errors_of(tmp_path, "- just\n- a list\n") == [
        "p.yaml:1:1: expected a mapping with 'pack', 'fields' and 'tables'"]


def test_schema_errors_do_not_hide_expression_errors(tmp_path):
    errors = errors_of(tmp_path, HEAD.replace('version: "1"', "version: 1") + """\
tables:
  - id: t
    hit_policy: collect
    rules:
      - {id: r1, when: "tier = 'A'", then: [VISIT]}
""")
    assert errors == [
        "p.yaml:3:12: pack.version: expected text, got the number 1 (quote it)",
        "p.yaml:18:30: unexpected '=' (use '==' to compare)",
    ]


def test_issue_4_load_pack_data_keeps_number_like_strings_text():
    from storeops.engine.packs import load_pack_data

    data = {
        "pack": {"id": "p", "version": "1e3", "title": {"zh": "0o17", "en": "x"},
                 "source": {"document": "d"}, "subject": "s"},
        "fields": [{"name": "s", "type": "text", "values": ["0o17", "1e3", "yes"]}],
        "tables": [{"id": "t", "hit_policy": "collect",
                    "rules": [{"id": "r", "when": "s == '0o17'", "then": []}]}],
    }
    pack = load_pack_data(data)
    assert pack.version == "1e3"
    assert pack.field_values["s"] == ("0o17", "1e3", "yes")

"""Hit policies on hand-computed facts, row path and columnar path alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from storeops.engine import adapters, runner
from storeops.engine.errors import EvaluationError
from storeops.engine.packs import load_pack
from storeops.engine.tables import compile_pack

DATA = Path(__file__).parent / "data"

# Worked by hand from tests/data/stores.csv (see the comments in tests/data/stores.yaml):
# S1 A conv .10 -> low conversion;  S2 B sales -20% -> sales drop;
# S3 C -50%, closed, conv .05 (tier C, so no low conversion); S4 no previous sales (null);
# S5 B -100%, closed, conv .11, 0 transactions (sales / 0 is null).
EXPECTED = {
    "tier_support": {"S1": ["T_A"], "S2": ["T_B"], "S3": ["T_C"], "S4": ["T_A"], "S5": ["T_B"]},
    # collect orders by priority: closed (20), sales_drop (10), then low_conversion (0)
    "problems": {"S1": ["low_conversion"], "S2": ["sales_drop"], "S3": ["closed", "sales_drop"],
                 "S4": [], "S5": ["closed", "sales_drop", "low_conversion"]},
    "first_problem": {"S1": ["low_conversion"], "S2": ["sales_drop"], "S3": ["sales_drop"],
                      "S4": [], "S5": ["low_conversion"]},
    # priority: sales_drop and closed tie at 5; the earlier row wins
    "top_problem": {"S1": ["low_conversion"], "S2": ["sales_drop"], "S3": ["sales_drop"],
                    "S4": [], "S5": ["sales_drop"]},
    "any_training": {"S1": ["low_conversion"], "S2": [], "S3": ["low_conversion"], "S4": [],
                     "S5": ["low_conversion"]},
}


@pytest.fixture(scope="module")
def pack():
    return load_pack(DATA / "stores.yaml")


@pytest.fixture(scope="module")
def facts(pack):
    return adapters.read_facts(DATA / "stores.csv", pack.fields, pack.field_values)


def test_row_path_matches_hand_computed(pack, facts):
    tables = {t.table.id: t for t in compile_pack(pack)}
    for fact in facts.rows():
        for table_id, expected in EXPECTED.items():
            got = [rule.id for rule in tables[table_id].decide(fact)]
            assert got == expected[fact["store"]], (table_id, fact["store"])


def test_columnar_path_matches_row_path_firing_for_firing(pack, facts):
    tables = runner.compile_packs([pack])
    rows = runner.fire_rows(tables, facts.rows())
    columns = runner.fire_columns(tables, facts)
    assert rows.fact.tolist() == columns.fact.tolist()
    assert rows.table.tolist() == columns.table.tolist()
    assert rows.rule.tolist() == columns.rule.tolist()
    assert len(rows) == 5 + 7 + 4 + 4 + 3


def test_unique_conflict_names_both_rules(tmp_path, pack):
    text = (DATA / "stores.yaml").read_text(encoding="utf-8")
    # Make the UNIQUE table overlap in a way static analysis cannot prove (arithmetic):
    text = text.replace("{id: T_C, when: \"tier == 'C'\"",
                        "{id: T_C, when: \"tier == 'C' or sales * 2 > 1500\"")
    path = tmp_path / "overlap.yaml"
    path.write_text(text, encoding="utf-8")
    overlapping = load_pack(path, display="overlap.yaml")
    table = compile_pack(overlapping)[0]
    facts = adapters.read_facts(DATA / "stores.csv", overlapping.fields,
                                overlapping.field_values)
    s1 = facts.rows()[0]
    with pytest.raises(EvaluationError) as info:
        table.decide(s1)
    assert str(info.value) == (
        "overlap.yaml:31:5: rules 'T_A', 'T_C' of UNIQUE table 'tier_support' all match "
        "store 'S1'")
    with pytest.raises(EvaluationError) as info:
        table.decide_columns(facts.columns, facts.n, facts.column_list("store"))
    assert str(info.value) == (
        "overlap.yaml:31:5: rules 'T_A', 'T_C' of UNIQUE table 'tier_support' all match "
        "store 'S1' (input row 1)")


def test_any_conflict_with_different_outputs(tmp_path):
    text = (DATA / "stores.yaml").read_text(encoding="utf-8")
    text = text.replace('when: "conversion_rate < 0.12", then: [TRAINING]',
                        'when: "conversion_rate < 0.12", then: [RECTIFY]')
    path = tmp_path / "any.yaml"
    path.write_text(text, encoding="utf-8")
    from storeops.engine.errors import ErrorList

    # static analysis cannot see through sales / transactions, so the load succeeds ...
    try:
        changed = load_pack(path, display="any.yaml")
    except ErrorList as exc:  # pragma: no cover - would mean the analysis got smarter
        pytest.fail(str(exc))
    table = compile_pack(changed)[4]
    fact = {"store": "X", "tier": "A", "sales": 10.0, "transactions": 1,
            "conversion_rate": 0.05, "open": True, "sales_prev": None}
    with pytest.raises(EvaluationError, match="match with different outputs store 'X'"):
        table.decide(fact)

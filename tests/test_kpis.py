"""KPIs with a formula are derived fields: computed once, read by rules, traced to sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storeops.engine import api
from storeops.engine.errors import ErrorList
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail, read_trail

DATA = Path(__file__).parent / "data"
FACTS = [
    {"store": "S1", "sales": 100.0, "transactions": 10, "traffic": 200},  # ticket 10, conv .05
    {"store": "S2", "sales": 500.0, "transactions": 10, "traffic": 50},   # ticket 50, conv .2
    {"store": "S3", "sales": 0.0, "transactions": 0, "traffic": None},    # 0/0 and no traffic
]


@pytest.mark.parametrize("engine", ["row", "columnar"])
def test_rules_read_kpis_by_name(engine, tmp_path):
    pack = load_pack(DATA / "kpis.yaml")
    with open_trail(tmp_path / "trail.sqlite") as trail:
        result = api.evaluate(pack, FACTS, trail=trail, engine=engine)
    assert result.actions[["subject", "rule_id"]].values.tolist() == [
        ["S1", "low_ticket"], ["S1", "low_conversion"]]
    records = list(read_trail(tmp_path / "trail.sqlite"))
    # a KPI is recorded with what its formula read, down to the input fields
    assert json.loads(records[0]["inputs"]) == {
        "small_basket": True, "avg_ticket": 10.0, "sales": 100.0, "transactions": 10}
    assert json.loads(records[1]["inputs"]) == {
        "conversion_rate": 0.05, "transactions": 10, "traffic": 200}


def test_kpi_named_like_a_field_is_refused(tmp_path):
    text = (DATA / "kpis.yaml").read_text(encoding="utf-8").replace(
        "{id: avg_ticket,", "{id: sales,")
    path = tmp_path / "k.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ErrorList) as info:
        load_pack(path, display="k.yaml")
    messages = [e.message for e in info.value.errors]
    assert ("KPI 'sales' has a formula and the name of a field or parameter; rename one of them"
            in messages)


def test_a_kpi_can_only_read_earlier_kpis(tmp_path):
    text = (DATA / "kpis.yaml").read_text(encoding="utf-8").replace(
        'formula: "sales / transactions"', 'formula: "sales / transactions + small_basket"')
    path = tmp_path / "k.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ErrorList) as info:
        load_pack(path, display="k.yaml")
    assert any("unknown field 'small_basket'" in str(e) for e in info.value.errors)

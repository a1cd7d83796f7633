"""Library use: the same facts from records, a DataFrame, CSV and Parquet give one plan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storeops.engine import api
from storeops.engine.errors import ErrorList
from storeops.engine.packs import load_pack
from storeops.engine.tables import compile_pack

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pack():
    return load_pack(DATA / "stores.yaml")


def plan(result) -> list[tuple]:
    return list(result.actions[["action_id", "subject", "table_id", "rule_id", "action"]]
                .itertuples(index=False, name=None))


def test_all_input_kinds_give_the_same_plan(pack, tmp_path):
    from_csv = api.evaluate(pack, DATA / "stores.csv")
    frame = pd.read_csv(DATA / "stores.csv")
    from_frame = api.evaluate(pack, frame)
    parquet = tmp_path / "stores.parquet"
    frame.to_parquet(parquet)
    from_parquet = api.evaluate(pack, parquet)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
               for row in frame.to_dict("records")]
    from_records = api.evaluate(pack, records, engine="row")
    assert plan(from_csv) == plan(from_frame) == plan(from_parquet) == plan(from_records)
    assert from_csv.firings == 23
    # S3 is closed and lost half its sales: both problems, highest priority first
    s3 = from_csv.actions[(from_csv.actions.subject == "S3")
                          & (from_csv.actions.table_id == "problems")]
    assert s3.action.tolist() == ["RECTIFY", "PROMO_PLAN"]
    assert s3.params.tolist() == ["", '{"weeks": 4}']


def test_one_fact(pack):
    fact = {"store": "X", "tier": "A", "sales": 100.0, "sales_prev": 200.0,
            "conversion_rate": 0.5, "transactions": 10, "open": True}
    problems = compile_pack(pack)[1]
    assert [rule.id for rule in problems.decide(fact)] == ["sales_drop"]
    result = api.evaluate(pack, fact)
    # tier A; -50% sales in problems, first_problem and top_problem; 100 / 10 transactions
    # is a basket under 20, so the ANY table plans training
    assert result.actions.action.tolist() == ["VISIT_WEEKLY", "PROMO_PLAN", "PROMO_PLAN",
                                             "PROMO_PLAN", "TRAINING"]


def test_records_with_bad_values_are_refused(pack):
    with pytest.raises(ErrorList) as info:
        api.evaluate(pack, [{"store": "X", "tier": "Z", "sales": "lots", "conversion_rate": 0.1,
                             "transactions": 1, "open": True}])
    text = str(info.value)
    assert "<records>:1:2: bad value 'Z' in column 'tier'" in text
    assert "<records>:1:3: bad value 'lots' in column 'sales' (expected a number)" in text


def test_csv_saved_by_excel_with_a_byte_order_mark(pack, tmp_path):
    text = (DATA / "stores.csv").read_text(encoding="utf-8")
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8-sig")  # starts with EF BB BF
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert plan(api.evaluate(pack, path)) == plan(api.evaluate(pack, DATA / "stores.csv"))

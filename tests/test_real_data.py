"""The real Rossmann file end to end, against the counts its README states (slow)."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
ROSSMANN = ROOT.parent / "shared" / "data" / "rossmann" / "train.csv.gz"
DATA = Path(__file__).parent / "data"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ROSSMANN.exists(), reason=f"real data not present: {ROSSMANN}"),
]


def test_rossmann_store_days_known_quirks(tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--pack", str(DATA / "rossmann_quirks.yaml"), "--input", str(ROSSMANN),
        "--mapping", str(DATA / "rossmann_daily.mapping.yaml"), "--out", str(tmp_path),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("run R1: 1,017,209 facts, 106 firings, 106 actions")
    with open(tmp_path / "actions.csv", encoding="utf-8", newline="") as handle:
        counts = Counter(row["rule_id"] for row in csv.DictReader(handle))
    assert counts == {"open_no_sales": 54, "open_no_customers": 52}
    db = sqlite3.connect(tmp_path / "trail.sqlite")
    inputs = db.execute("SELECT inputs FROM trail WHERE rule_id = 'open_no_sales' LIMIT 1")
    assert inputs.fetchone() == ('{"open": true, "sales": 0.0}',)


def test_rossmann_value_chain_end_to_end(tmp_path):
    """The whole file through the shipped mapping: KPI facts, tiers, six steps, data support."""
    result = CliRunner().invoke(cli, [
        "run", "--pack", str(ROOT / "rules" / "value_chain.yaml"), "--input", str(ROSSMANN),
        "--mapping", str(ROOT / "mappings" / "rossmann_daily.yaml"), "--out", str(tmp_path),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    import pandas as pd

    months = pd.read_parquet(tmp_path / "kpi_months.parquet")
    # 1,115 stores x 31 months, less the 180 stores' missing second half of 2014 (6 months)
    assert len(months) == 1115 * 31 - 180 * 6
    assert months["sales"].sum() == 5_873_180_623  # the README's total
    assert months["transactions"].sum() == 644_041_755
    tiers = pd.read_parquet(tmp_path / "tiers.parquet")
    assert set(tiers["tier"]) == {"A", "B", "C"}
    support = pd.read_csv(tmp_path / "data_support.csv")
    lacking = set(support.loc[~support["supported"], "kpi"])
    assert lacking == {"conversion", "new_arrival_share"}  # no door counter, no new arrivals
    actions = pd.read_parquet(tmp_path / "actions.parquet")
    assert set(actions["step"]) == {"floor", "operations", "customers", "promotion", "analysis"}

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

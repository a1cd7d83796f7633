"""All Olist customers through rules/customers.yaml (slow; skipped without the data).

The expected figures come from the data README (96,096 people, review scores 1: 11,390 and
2: 3,145) or from a plain pandas computation written here, independent of the engine's join.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
OLIST = ROOT.parent / "shared" / "data" / "olist"
COUNTED = ("delivered", "shipped", "invoiced", "processing", "approved", "created")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (OLIST / "olist_order_reviews_scores.csv.gz").exists(),
                       reason=f"real data not present: {OLIST}"),
]


@pytest.fixture(scope="module")
def olist_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("olist")
    result = CliRunner().invoke(cli, [
        "run", "--pack", str(ROOT / "rules" / "customers.yaml"), "--input", str(OLIST),
        "--mapping", str(ROOT / "mappings" / "olist_customers.yaml"), "--out", str(out)],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_every_olist_customer_is_accounted_for(olist_run):
    out, stdout = olist_run
    table = read(out / "customers.csv")
    assert len(table) == 96_096 and table["customer"].is_unique
    people = read(OLIST / "olist_customers_dataset.csv.gz")
    orders = read(OLIST / "olist_orders_dataset.csv.gz")
    counted = orders[orders["order_status"].isin(COUNTED)].merge(people, on="customer_id")
    buyers = counted["customer_unique_id"].nunique()
    assert (table["status"] == "ok").sum() == buyers
    assert (table["segment"] != "").sum() == buyers  # the F rule catches every buyer
    segments = read(out / "segments.csv")
    assert segments["customers"].astype(int).sum() == buyers
    assert f"customers: 96,096 (from 99,441 rows of {OLIST}" in stdout
    repeat = (counted.groupby("customer_unique_id").size() >= 2).mean()
    assert f"repeat-purchase rate: {repeat:.1%}" in stdout


def test_revenue_equals_the_payments_of_counted_orders(olist_run):
    out, _ = olist_run
    payments = pd.read_csv(OLIST / "olist_order_payments_dataset.csv.gz")
    orders = read(OLIST / "olist_orders_dataset.csv.gz")
    counted = set(orders.loc[orders["order_status"].isin(COUNTED), "order_id"])
    expected = payments.loc[payments["order_id"].isin(counted), "payment_value"].sum()
    table = pd.read_csv(out / "customers.csv")
    assert table["monetary"].sum() == pytest.approx(expected, abs=1.0)


def test_complaint_cases_are_the_low_scores(olist_run):
    out, stdout = olist_run
    cases = read(out / "complaints.csv")
    assert len(cases) == 11_390 + 3_145  # scores 1 and 2 in the README
    assert set(cases["rules"].str.split().str[0]) == {"K1"}  # every case gets KZB-15
    hours = cases["response_hours"].astype(float)
    missed = (hours > cases["target_hours"].astype(float)).sum()
    assert (cases["met_target"] == "False").sum() == missed
    assert (cases["rules"].str.contains("K3")).sum() == missed
    assert f"{missed:,} missed" in stdout


def test_trail_holds_every_firing(olist_run):
    out, stdout = olist_run
    firings = int(stdout.split(" facts, ")[1].split(" firings")[0].replace(",", ""))
    db = sqlite3.connect(out / "trail.sqlite")
    assert db.execute("SELECT count(*) FROM trail").fetchone()[0] == firings
    with open(out / "actions.csv", encoding="utf-8", newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) - 1 == int(
            stdout.split(" firings, ")[1].split(" actions")[0].replace(",", ""))


def test_the_docs_show_this_run(olist_run):
    _, stdout = olist_run
    doc = (ROOT / "docs" / "customers.md").read_text(encoding="utf-8")
    block = doc.split("### On Olist\n\n")[1].split("\n\n")[0]
    lines = [line[4:] for line in block.splitlines()]
    assert len(lines) == 10
    for line in lines[1:]:  # the first names the file with its path
        assert f"{line}\n" in stdout, line

"""The value-chain pipeline: hand-computed KPI facts, planted problems found, bad input refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine import adapters, valuechain
from storeops.engine.errors import ErrorList
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "rules" / "value_chain.yaml"
NORTH = ROOT / "rules" / "regions" / "north.yaml"
DAILY = ROOT / "samples" / "store_sales_daily.csv"
WEEKLY = ROOT / "samples" / "weekly_sales.csv"
DAILY_MAP = ROOT / "mappings" / "sample_daily.yaml"
WEEKLY_MAP = ROOT / "mappings" / "sample_weekly.yaml"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def messages(exc: ErrorList) -> list[str]:
    return [str(e) for e in exc.errors]


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK)


@pytest.fixture(scope="module")
def sample(pack):
    analysis = valuechain.analyse(pack, DAILY, adapters.load_mapping(DAILY_MAP))
    with open_trail(None) as sink:
        return analysis, valuechain.evaluate(pack, analysis, sink)


def write(tmp_path: Path, text: str, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- KPI facts by hand ------------------------------------------------------------------------

TINY = """store,date,sales,transactions,open,promo
A,2024-01-01,100,10,1,0
A,2024-01-02,300,20,1,1
A,2024-01-03,0,0,0,0
A,2024-02-01,150,15,1,0
A,2025-01-01,220,11,1,0
A,2025-01-02,0,0,0,0
B,2025-01-01,50,5,1,0
"""


def test_store_month_facts_by_hand(tmp_path, pack):
    analysis = valuechain.analyse(pack, write(tmp_path, TINY))
    months = analysis.months.set_index("store_period")
    a1 = months.loc["A@2024-01"]
    assert (a1["sales"], a1["transactions"], a1["open_days"], a1["days"]) == (400, 30, 2, 3)
    assert a1["promo_days"] == 1
    assert a1["promo_uplift"] == pytest.approx(300 / 100 - 1)  # 300 a promo day vs 100
    # per open day: 2024-01 200/day, 2024-02 150/day, 2025-01 220/day
    assert months.loc["A@2024-02", "sales_mom"] == pytest.approx(150 / 200 - 1)
    assert months.loc["A@2025-01", "sales_yoy"] == pytest.approx(220 / 200 - 1)
    assert months.loc["A@2025-01", "ticket_yoy"] == pytest.approx((220 / 11) / (400 / 30) - 1)
    assert months.loc["A@2025-01", "transactions_yoy"] == pytest.approx(11 / 15 - 1)
    assert pd.isna(months.loc["A@2024-01", "sales_mom"])  # no month before: null, not 0
    assert pd.isna(months.loc["B@2025-01", "sales_yoy"])
    # trailing 12 months, in 2025-01: A had 2024-02 (150, 1 day) and 2025-01 (220, 1 day)
    assert months.loc["A@2025-01", "sales_12m"] == 370
    assert months.loc["A@2025-01", "size_pct"] == 1.0  # 185/day beats B's 50/day
    assert months.loc["B@2025-01", "size_pct"] == 0.5
    weeks = analysis.weeks.set_index("store_period")
    assert weeks.loc["A@2024-W01", "sales"] == 400  # 2024-01-01 is a Monday
    # the pack's KPI formulas ride along: average ticket, promo share, sales per open day
    assert weeks.loc["A@2024-W01", "avg_ticket"] == pytest.approx(400 / 30)
    assert weeks.loc["A@2024-W01", "promo_share"] == pytest.approx(1 / 2)
    assert weeks.loc["A@2024-W01", "sales_per_day"] == pytest.approx(200)


def test_weekly_file_of_another_retailer_needs_only_a_mapping(pack):
    daily = valuechain.analyse(pack, DAILY, adapters.load_mapping(DAILY_MAP))
    weekly = valuechain.analyse(pack, WEEKLY, adapters.load_mapping(WEEKLY_MAP))
    assert weekly.grain == "week"
    # the same invented chain: whole weeks of the daily file sum to the weekly file
    per_week = daily.weeks.assign(store=lambda f: f["store"].str.replace("S", "F-"))
    joined = per_week.merge(weekly.weeks, on=["store", "period"], suffixes=("_d", "_w"))
    assert len(joined) == len(weekly.weeks) > 2000
    assert (joined["sales_d"] - joined["sales_w"]).abs().max() < 0.01
    assert (joined["open_days_d"] == joined["open_days_w"]).all()
    assert "promo" not in weekly.available  # promo days come as counts, not day flags


def test_planted_problems_are_found(sample):
    _, result = sample
    fired = result.actions.groupby(["store", "rule_id"])["period"].apply(set).to_dict()
    # samples/make_store_sales.py plants these problems
    assert {"2026-04", "2026-05", "2026-06"} <= fired[("S18", "OP2")]   # sales halve
    assert {"2026-02", "2026-03", "2026-04"} <= fired[("S07", "FL1")]   # ticket sags
    assert "2026-04" in fired[("S12", "OP1")]                           # closed 14 days
    assert {"2026-04", "2026-05"} <= fired[("S03", "CU1")]              # customers fall away
    unaffected = result.actions[(result.actions["store"] == "S01")
                                & (result.actions["rule_id"].isin(["OP2", "FL1", "CU1"]))]
    assert unaffected.empty


def test_thresholds_follow_the_tier_and_are_traced(sample, pack):
    _, result = sample
    months = result.months.set_index("store_period")
    chain = valuechain.section_of(pack)
    limits = {t.name: t.by_tier for t in chain.thresholds}
    for key in ("S18@2026-05", "S01@2026-05", "S30@2026-05"):
        tier = months.loc[key, "tier"]
        assert months.loc[key, "sales_drop_limit"] == limits["sales_drop_limit"][tier]


def test_tiers_follow_the_classification_table(sample):
    _, result = sample
    tiers = result.tiers
    last = tiers[tiers["period"] == "2026-06"]
    for row in last.itertuples():
        trend = row.trend_12m if row.trend_12m == row.trend_12m else None
        growing_fast = trend is not None and trend >= 0.1
        if row.size_pct >= 0.8 or (row.size_pct >= 0.6 and growing_fast):
            expected = "A"
        elif row.size_pct >= 0.4 or (trend is not None and trend >= 0.05):
            expected = "B"
        else:
            expected = "C"
        assert row.tier == expected, row


def test_data_support_names_what_the_data_lacks(sample):
    _, result = sample
    support = result.support.set_index(["step", "kpi"])
    assert not support.loc[("customers", "conversion"), "supported"]
    assert support.loc[("customers", "conversion"), "lacking"] == "traffic"
    assert not support.loc[("new_arrival", "new_arrival_share"), "supported"]
    assert support.loc[("analysis", "sales_yoy"), "supported"]
    assert support.loc[("promotion", "promo_uplift"), "supported"]


# -- region packs -----------------------------------------------------------------------------

def test_region_pack_overrides_values_not_rules():
    north = load_pack(NORTH)
    chain = valuechain.section_of(north)
    limits = {t.name: t for t in chain.thresholds}
    assert limits["severe_drop_limit"].by_tier == {"A": -0.18, "B": -0.20, "C": -0.25}
    assert str(limits["severe_drop_limit"].location).startswith("rules/regions/north.yaml:")
    assert str(limits["ticket_drop_limit"].location).startswith("rules/value_chain.yaml:")
    assert chain.level("B").visits_per_month == 3
    assert north.parameters["open_days_min_share"].value == 0.7
    # rules keep their own file and line: the trail points at the base pack
    assert str(north.tables[1].rules[0].location) == str(load_pack(PACK).tables[1].rules[0]
                                                         .location)
    assert north.id == "value_chain_north" and north.sha256 != load_pack(PACK).sha256


def test_a_region_pack_cannot_invent_what_the_base_lacks(tmp_path):
    region = tmp_path / "r.yaml"
    (tmp_path / "base.yaml").write_text(PACK.read_text(encoding="utf-8"), encoding="utf-8")
    region.write_text("""pack:
  id: r
  version: "1"
  title: {zh: 区, en: region}
  extends: base.yaml
value_chain:
  thresholds:
    - name: sales_drop_limt
      by_tier: {A: -0.1}
  tiers:
    levels:
      - id: B
        depth: {visits_a_month: 3}
""", encoding="utf-8")
    with pytest.raises(ErrorList) as caught:
        load_pack(region)
    lines = [line.split(str(tmp_path) + "/")[-1] for line in messages(caught.value)]
    assert lines == [
        "r.yaml:8:7: overrides 'sales_drop_limt' in value_chain.thresholds, which the base "
        "pack base.yaml does not have (did you mean 'sales_drop_limit'?)",
        "r.yaml:13:17: overrides 'value_chain.tiers.levels.1.depth.visits_a_month', which the "
        "base pack base.yaml does not have (did you mean 'visits_per_month'?)",
    ]


def test_a_region_pack_value_is_checked_like_any_pack(tmp_path):
    (tmp_path / "base.yaml").write_text(PACK.read_text(encoding="utf-8"), encoding="utf-8")
    region = tmp_path / "r.yaml"
    region.write_text("""pack:
  id: r
  version: "1"
  title: {zh: 区, en: region}
  extends: base.yaml
value_chain:
  thresholds:
    - name: sales_drop_limit
      by_tier: {A: high}
""", encoding="utf-8")
    with pytest.raises(ErrorList) as caught:
        load_pack(region)
    assert [m.split("/")[-1] for m in messages(caught.value)] == [
        "r.yaml:9:20: value_chain.thresholds.0.by_tier.A: expected a number, got the text "
        "'high'"]


def test_extends_a_missing_file(tmp_path):
    region = write(tmp_path, 'pack: {id: r, version: "1", extends: nowhere.yaml}\n', "r.yaml")
    with pytest.raises(ErrorList) as caught:
        load_pack(region)
    assert messages(caught.value)[0].endswith(
        "r.yaml:1:38: extends 'nowhere.yaml', but there is no such file next to this pack")


def test_section_cross_references(tmp_path):
    text = PACK.read_text(encoding="utf-8")
    text = text.replace("table: promotion,", "table: promotions,")
    text = text.replace("by_tier: {A: -0.05, B: -0.07, C: -0.10}", "by_tier: {A: -0.05, B: -0.07}")
    text = text.replace("breadth: [RECTIFY, ROUTINE]", "breadth: [RECTIFY, ROUTNE]")
    path = write(tmp_path, text, "vc.yaml")
    with pytest.raises(ErrorList) as caught:
        load_pack(path)
    found = [m.split("vc.yaml:")[-1] for m in messages(caught.value)]
    assert any(m.endswith("step 'promotion' names table 'promotions', which the pack does "
                          "not have (did you mean 'promotion'?)") for m in found), found
    assert any(m.endswith("threshold 'ticket_drop_limit' has no value for tier C")
               for m in found), found
    assert any("breadth names action 'ROUTNE'" in m for m in found), found


# -- bad input --------------------------------------------------------------------------------

def run_tiny(tmp_path, text, *extra):
    path = write(tmp_path, text)
    return invoke("run", "--pack", PACK, "--input", path, "--out", tmp_path / "out", *extra)


def test_negative_sales_names_file_row_and_column(tmp_path):
    result = run_tiny(tmp_path, TINY.replace("A,2024-02-01,150", "A,2024-02-01,-150"))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("sales.csv:5:3: negative sales -150 in column 'sales'")
    assert not (tmp_path / "out" / "actions.csv").exists()


def test_duplicate_store_day(tmp_path):
    result = run_tiny(tmp_path, TINY + "A,2024-01-02,5,1,1,0\n")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "sales.csv:9:2: duplicate store-day: store A on 2024-01-02 is also on row 3")


def test_store_without_open_days(tmp_path):
    result = run_tiny(tmp_path, TINY + "C,2025-01-01,0,0,0,0\n")
    assert result.exit_code == 2
    assert "sales.csv:9:1: store C has no open day in the file: none of its KPIs can be " \
        "judged (leave it out of the file, or run with --bad-rows skip)" in result.stderr


def test_wrong_type_and_missing_column(tmp_path):
    result = run_tiny(tmp_path, TINY.replace("A,2024-01-02,300", "A,2024-01-02,lots"))
    assert result.exit_code == 2
    assert "sales.csv:3:3: bad value 'lots' in column 'sales' (expected a number)" \
        in result.stderr
    result = run_tiny(tmp_path, TINY.replace("store,date,sales", "shop,date,sales"))
    assert result.exit_code == 2
    assert "missing column 'store' (expected text)" in result.stderr


def test_mapping_naming_a_missing_column(tmp_path):
    mapping = write(tmp_path, "mapping:\n  columns:\n    sales: Umsatz\n", "m.yaml")
    result = run_tiny(tmp_path, TINY, "--mapping", mapping)
    assert result.exit_code == 2
    assert "m.yaml:3:12: the mapping names column 'Umsatz' for field 'sales', but " \
        in result.stderr


def test_skip_bad_rows_reports_every_one_and_runs_on_the_rest(tmp_path):
    text = TINY.replace("A,2024-02-01,150", "A,2024-02-01,-150") + \
        "A,2024-01-02,5,1,1,0\nB,2025-01-02,x,1,1,0\n"
    result = run_tiny(tmp_path, text, "--bad-rows", "skip")
    assert result.exit_code == 0, result.output
    bad = pd.read_csv(tmp_path / "out" / "bad_rows.csv")
    assert bad[["row", "column"]].values.tolist() == [[10, 3], [5, 3], [9, 2]]
    assert "left out 3 bad rows (see bad_rows.csv)" in result.stdout
    months = pd.read_csv(tmp_path / "out" / "kpi_months.csv")
    assert "A@2024-02" not in set(months["store_period"])  # its only row was bad


# -- CLI and trail ----------------------------------------------------------------------------

def test_cli_run_writes_tiers_facts_actions_and_trail(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", "--pack", PACK, "--input", DAILY, "--mapping", DAILY_MAP, "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("tiers", "kpi_months", "kpi_weeks", "actions"):
        assert (out / f"{name}.csv").exists() and (out / f"{name}.parquet").exists()
    assert (out / "data_support.csv").exists()
    assert "tiers in 2026-06: A 7, B 12, C 11" in result.stdout
    assert "customer management" in result.stdout and "conversion" in result.stdout
    actions = pd.read_csv(out / "actions.csv")
    row = actions[(actions["store"] == "S18") & (actions["rule_id"] == "OP2")].iloc[0]
    explained = invoke("explain", "--trail", out / "trail.sqlite", row["action_id"])
    assert explained.exit_code == 0
    assert "rules/value_chain.yaml:" in explained.stdout
    db = sqlite3.connect(out / "trail.sqlite")
    inputs, = db.execute("SELECT inputs FROM trail WHERE subject = ? AND rule_id = 'OP2'",
                         (row["subject"],)).fetchone()
    values = json.loads(inputs)
    assert set(values) == {"sales_yoy", "severe_drop_limit"}
    assert values["sales_yoy"] <= values["severe_drop_limit"]


def test_run_twice_gives_the_same_plan(tmp_path):
    for name in ("a", "b"):
        result = invoke("run", "--pack", PACK, "--input", WEEKLY, "--mapping", WEEKLY_MAP,
                        "--out", tmp_path / name, "--no-trail")
        assert result.exit_code == 0, result.output
    for name in ("tiers.csv", "kpi_months.csv", "actions.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# -- plan and evaluate ------------------------------------------------------------------------

TEAM = ROOT / "teams" / "sample_team.yaml"


def test_plan_writes_month_plan_schedule_and_unserved(tmp_path):
    out = tmp_path / "plan"
    result = invoke("plan", "--pack", PACK, "--input", DAILY, "--mapping", DAILY_MAP,
                    "--team", TEAM, "--month", "2026-06", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2026-06: 30 store(s): ")
    month_plan = pd.read_csv(out / "month_plan.csv")
    schedule = pd.read_csv(out / "week_schedule.csv")
    unserved = pd.read_csv(out / "unserved.csv")
    assert len(month_plan) == 30
    # every required visit is scheduled or listed as unserved, never dropped
    required = int(month_plan["visits_required"].sum())
    assert len(schedule) + int((unserved["kind"] == "visit").sum()) == required
    # the problem store S18 (sales halved) is a focus store with a rectification on a visit
    s18 = month_plan.set_index("store").loc["S18"]
    assert bool(s18["focus"]) and s18["severity"] == 3
    assert "RECTIFY" in ";".join(schedule.loc[schedule["store"] == "S18", "actions"].dropna())
    # key stores (tier A) are visited every month, with or without a finding
    a_stores = month_plan[month_plan["tier"] == "A"]
    assert (a_stores["visits_required"] == 4).all()
    # every action id on a visit leads back to its rule in the trail
    action_id = schedule["action_ids"].dropna().iloc[0].split(";")[0]
    explained = invoke("explain", "--trail", out / "trail.sqlite", action_id)
    assert explained.exit_code == 0 and "rules/value_chain.yaml:" in explained.stdout


def test_plan_refuses_a_bad_team_before_reading_the_data(tmp_path):
    team = write(tmp_path, TEAM.read_text(encoding="utf-8").replace("hours_per_day: 8",
                                                                     "hours_per_day: -8"),
                 "team.yaml")
    result = invoke("plan", "--pack", PACK, "--input", tmp_path / "missing.csv",
                    "--team", team, "--month", "2026-06", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "team.yaml:8:18: team.hours_per_day: expected a number > 0, got -8" in result.stderr


def test_plan_names_a_month_the_data_cannot_analyse(tmp_path):
    result = invoke("plan", "--pack", PACK, "--input", DAILY, "--mapping", DAILY_MAP,
                    "--team", TEAM, "--month", "2026-09", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "--month 2026-09 is planned from the analysis of 2026-08, but the data has no " \
        "2026-08 (last month: 2026-06)" in result.stderr


def test_plan_needs_a_value_chain_pack(tmp_path):
    result = invoke("plan", "--pack", ROOT / "rules" / "kzb.yaml", "--input", DAILY,
                    "--team", TEAM, "--month", "2026-06", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "pack 'kzb' has no value_chain section to plan with" in result.stderr


def test_evaluate_visits_of_a_planned_month(tmp_path):
    plan = invoke("plan", "--pack", PACK, "--input", DAILY, "--mapping", DAILY_MAP,
                  "--team", TEAM, "--month", "2026-05", "--out", tmp_path / "plan")
    assert plan.exit_code == 0, plan.output
    result = invoke("evaluate", "--pack", PACK, "--input", DAILY, "--mapping", DAILY_MAP,
                    "--visits", tmp_path / "plan" / "week_schedule.csv", "--month", "2026-05",
                    "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "eval" / "evaluation.csv")
    assert set(table["tier"]) <= {"A", "B", "C"} and (table["kpi"] == "sales_yoy").all()
    assert "regress to the mean" in result.stdout


def test_weekly_day_counts_must_fit_in_a_week(tmp_path):
    text = WEEKLY.read_text(encoding="utf-8").splitlines()
    fields = text[1].split(";")
    fields[4], fields[5] = "8", "0"      # 8 open days
    text[1] = ";".join(fields)
    fields = text[2].split(";")
    fields[4], fields[5] = "3", "5"      # 5 promotion days of 3 open days
    text[2] = ";".join(fields)
    path = write(tmp_path, "\n".join(text) + "\n", "weekly.csv")
    result = invoke("run", "--pack", PACK, "--input", path, "--mapping", WEEKLY_MAP,
                    "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "weekly.csv:2:5: more than 7 open days in a week in column 'Tage_offen'" \
        in result.stderr
    assert "weekly.csv:3:6: more promotion days than open days in column 'Aktionstage'" \
        in result.stderr


def test_region_pack_exports_like_its_base(tmp_path):
    for pack in (PACK, NORTH):
        result = invoke("dmn", "export", pack, "-o", tmp_path / "x.dmn")
        assert result.exit_code == 2  # the six steps are written with when: conditions
        assert "rules/value_chain.yaml:158:5: table 'new_arrival' is written with when: " \
            "conditions" in result.stderr

"""The CRM scorecard and the sales funnel (issue 7, seed 003): known answers and bad input."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SCORECARD = str(ROOT / "rules" / "crm_scorecard.yaml")
FUNNEL = str(ROOT / "rules" / "sales_funnel.yaml")
DIMENSIONS = ("layout_display,roles,customer_data,segmentation,sales_process,service_process,"
              "consultative_selling,key_accounts,store_campaigns,training,kpis")
CARD = f"""\
store,{DIMENSIONS}
Centre,3,3,2,1,3,2,2,1,2,3,2
Harbour,5,4,4,4,4,4,5,3,4,4,4
"""


def run(pack: str, input_path: Path, out: Path):
    return CliRunner().invoke(cli, ["run", "--pack", pack, "--input", str(input_path),
                                    "--out", str(out)], catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def errors_of(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return "\n".join(line for line in result.stderr.splitlines() if not line.endswith(" ..."))


# -- scorecard -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def card_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    (folder / "card.csv").write_text(CARD, encoding="utf-8")
    result = run(SCORECARD, folder / "card.csv", folder / "out")
    assert result.exit_code == 0, result.output
    return folder / "out", result.stdout


def test_plan_is_every_gap_largest_first_with_the_seed_cadence(card_run):
    out, _ = card_run
    plan = [(r["store"], r["rank"], r["dimension"], r["score"], r["gap"], r["action"],
             r["cadence"]) for r in rows(out / "plan.csv")]
    # Centre: gaps 3 (segmentation, key_accounts; 1 is also escalated), 2 (customer_data,
    # service_process, consultative_selling, store_campaigns, kpis), 1 (layout, roles, sales,
    # training); Harbour: key_accounts only (3 < 4).
    assert plan == [
        ("Centre", "1", "segmentation", "1", "3", "SEGMENT-TRAINING", "quarterly"),
        ("Centre", "2", "segmentation", "1", "3", "ESCALATE", "once"),
        ("Centre", "3", "key_accounts", "1", "3", "BEST-PRACTICE", "weekly"),
        ("Centre", "4", "key_accounts", "1", "3", "ESCALATE", "once"),
        ("Centre", "5", "customer_data", "2", "2", "CUSTOMER-DATA", "daily"),
        ("Centre", "6", "service_process", "2", "2", "FOLLOW-UP-TRAINING", "quarterly"),
        ("Centre", "7", "consultative_selling", "2", "2", "ROLE-PLAY", "daily"),
        ("Centre", "8", "consultative_selling", "2", "2", "ADVANCED-SELLING", "on_request"),
        ("Centre", "9", "store_campaigns", "2", "2", "CAMPAIGN-PLANNING", "daily"),
        ("Centre", "10", "kpis", "2", "2", "KPI-REDESIGN", "quarterly"),
        ("Centre", "11", "layout_display", "3", "1", "DISPLAY-REVIEW", "weekly"),
        ("Centre", "12", "roles", "3", "1", "ROLE-SETUP", "once"),
        ("Centre", "13", "sales_process", "3", "1", "ROLE-PLAY", "daily"),
        ("Centre", "14", "training", "3", "1", "TRAINING-CADENCE", "once"),
        ("Centre", "15", "training", "3", "1", "NEW-STAFF-COURSE", "new_staff_3_months"),
        ("Harbour", "1", "key_accounts", "3", "1", "BEST-PRACTICE", "weekly"),
    ]


def test_stores_side_by_side(card_run):
    out, stdout = card_run
    table = {r["dimension"]: r for r in rows(out / "scorecard.csv")}
    assert list(table) == DIMENSIONS.split(",")
    assert (table["segmentation"]["Centre"], table["segmentation"]["Harbour"],
            table["segmentation"]["mean"], table["segmentation"]["stores_below_target"]) == \
        ("1", "4", "2.5", "1")
    assert "segmentation                    1          4   2.50" in stdout
    assert "plan Harbour: 1 action(s); first: key_accounts (weekly)" in stdout


def test_trail_records_the_rating_each_rule_read(card_run):
    out, _ = card_run
    db = sqlite3.connect(out / "trail.sqlite")
    found = db.execute("SELECT subject, inputs FROM trail WHERE rule_id = 'G04'").fetchall()
    assert found == [("Centre", '{"dimension": "segmentation", "gap": 3}')]


def test_scorecard_missing_a_dimension(tmp_path):
    path = tmp_path / "card.csv"
    path.write_text(CARD.replace(",kpis", "").replace(",2\nHarbour", "\nHarbour")
                    .replace(",4,4\n", ",4\n"), encoding="utf-8")
    output = errors_of(run(SCORECARD, path, tmp_path / "out"))
    assert output == (f"{path}:1:12: the scorecard misses dimension 'kpis' (关键业绩指标 / "
                      "KPIs): no column 'kpis' (add the column and rate every store 1-5)")
    assert not (tmp_path / "out").exists()


def test_scorecard_rating_outside_the_scale_and_an_empty_rating(tmp_path):
    path = tmp_path / "card.csv"
    path.write_text(CARD.replace("Centre,3,3,2,1", "Centre,3,3,2,6")
                    .replace("Harbour,5,4,4", "Harbour,5,,4"), encoding="utf-8")
    output = errors_of(run(SCORECARD, path, tmp_path / "out"))
    assert output.splitlines() == [
        f"{path}:2:5: rating 6 for dimension 'segmentation' is outside 1-5 "
        "(1 很不理想 very poor .. 5 非常好 very good)",
        f"{path}:3:3: store 'Harbour' has no rating for dimension 'roles' (roles) (rate it 1-5)",
    ]


# -- funnel --------------------------------------------------------------------------------------

STAGES = "greet,needs,recommend,trial,close,handover,follow_up,prospects"
FUNNEL_CSV = f"""\
store,month,{STAGES}
S1,2026-01,500,350,280,168,84,82,49,84
S1,2026-02,500,350,280,168,84,82,49,84
S1,2026-03,500,350,280,168,84,82,49,84
S1,2026-04,500,350,280,168,50,49,29,84
S1,2026-05,360,252,202,121,60,59,35,60
"""


@pytest.fixture(scope="module")
def funnel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("funnel")
    (folder / "funnel.csv").write_text(FUNNEL_CSV, encoding="utf-8")
    result = run(FUNNEL, folder / "funnel.csv", folder / "out")
    assert result.exit_code == 0, result.output
    return folder / "out", result.stdout


def test_a_stage_falling_against_its_own_history_is_flagged(funnel_run):
    out, stdout = funnel_run
    flagged = [(r["month"], r["stage"], r["conversion"], r["history"], r["change"], r["rules"],
                r["actions"]) for r in rows(out / "funnel.csv") if r["flagged"] == "True"]
    # April: close 50/168 = 0.297619 against 84/168 = 0.5 in Jan-Mar: -40.5 %.
    # May: traffic 360 against the mean of Feb-Apr (500): -28 %; close 60/121 = 0.495868 against
    # the mean of Feb-Apr (0.5, 0.5, 0.297619) = 0.43254: +14.6 %, not flagged.
    assert flagged == [
        ("2026-04", "close", "0.297619", "0.5", "-0.4048", "S5", "CLOSING-SKILLS"),
        ("2026-05", "greet", "", "", "-0.28", "S1", "PUBLICITY"),
    ]
    assert "S1 2026-05: greet -28% -> PUBLICITY" in stdout


def test_first_month_has_no_history_and_is_not_judged(funnel_run):
    out, _ = funnel_run
    january = [r for r in rows(out / "funnel.csv") if r["month"] == "2026-01"]
    assert len(january) == 8
    assert {r["history"] for r in january} == {""}
    assert {r["flagged"] for r in january} == {"False"}


def test_funnel_count_above_its_base_and_a_bad_month(tmp_path):
    path = tmp_path / "funnel.csv"
    path.write_text(FUNNEL_CSV.replace("2026-02,500,350,280,168,84", "2026-02,500,350,280,168,"
                                       "200").replace("S1,2026-03", "S1,2026-3"),
                    encoding="utf-8")
    output = errors_of(run(FUNNEL, path, tmp_path / "out"))
    assert output.splitlines() == [
        f"{path}:3:7: 200 customers at step 'close' but only 168 at 'trial', the step it "
        "converts from",
        f"{path}:4:2: bad month '2026-3' (expected YYYY-MM)",
    ]


def test_scorecard_saved_by_excel_with_renamed_columns(tmp_path):
    # UTF-8 with a byte-order mark, a 'shop' column for 'store', read through a column mapping
    path = tmp_path / "card.csv"
    path.write_text("\ufeff" + CARD.replace("store,", "shop,"), encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("mapping:\n  columns: {store: shop}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", "--pack", SCORECARD, "--input", str(path),
                                      "--mapping", str(mapping), "--out", str(tmp_path / "out"),
                                      "--engine", "row"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plan = rows(tmp_path / "out" / "plan.csv")
    assert [r["store"] for r in plan].count("Centre") == 15


def test_shipped_samples_give_what_the_docs_say(tmp_path):
    doc = (ROOT / "docs" / "customers.md").read_text(encoding="utf-8")
    result = run(FUNNEL, ROOT / "samples" / "sales_funnel.csv", tmp_path / "funnel")
    assert result.exit_code == 0, result.output
    for line in ("Centre 2026-10: close -37% -> CLOSING-SKILLS",
                 "North 2026-10: greet -26% -> PUBLICITY"):
        assert f"  {line}\n" in result.stdout
        assert f"`{line}`" in doc
    result = run(SCORECARD, ROOT / "samples" / "crm_scorecard.csv", tmp_path / "card")
    assert result.exit_code == 0, result.output
    assert "plan Centre: 15 action(s); first: segmentation (quarterly), key_accounts " \
           "(weekly), customer_data (daily)\n" in result.stdout

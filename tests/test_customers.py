"""Customer management (issue 7): RFM segments, lifetime value, complaints, on a tiny base.

The tiny base below is computed by hand. Six customers have counted orders, so quintile edges
fall on data points (numpy's linear interpolation at 0.2 * 5 = 1, 2, 3, 4) and a value equal to
an edge goes to the bin above it:

    monetary 50 100 150 300 400 500 -> edges 100 150 300 400 -> m 1 2 3 4 5 5
    recency  10  20  40  80 160 320 -> edges  20  40  80 160 -> r 5 4 3 2 1 1 (lower is better)

    customer  orders  paid  recency  r f m  segment
    c1        2       500   80       2 2 5  A  (repeat, m >= 4)
    c2        2        50   160      1 2 1  B  (repeat)
    c3        1       400   10       5 1 5  C  (recent, m >= 4)
    c4        1       100   20       4 1 2  D  (recent)
    c5        1       300   320      1 1 4  E  (lapsed, m >= 4)
    c6        1       150   40       3 1 3  F  (+ a cancelled order that does not count)
    c7        0                             no orders: listed, no segment
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine import customer_base, lifetime
from storeops.engine.files import display_path

ROOT = Path(__file__).resolve().parent.parent
PACK = str(ROOT / "rules" / "customers.yaml")

MAPPING = """\
customers:
  files: {customers: customers.csv, orders: orders.csv, payments: payments.csv,
          reviews: reviews.csv}
  timestamp_format: "%Y-%m-%d %H:%M:%S"
  as_of: "2026-11-01"
  counted_statuses: [delivered]
  customer: {id: customer_id}
  order: {id: order_id, customer: customer_id, purchased: purchased_at, status: status}
  payment: {order: order_id, value: amount}
  review: {id: review_id, order: order_id, score: score, created: created_at,
           answered: answered_at}
"""
CUSTOMERS = "customer_id\nc1\nc2\nc3\nc4\nc5\nc6\nc7\n"
ORDERS = """\
order_id,customer_id,status,purchased_at
o1,c1,delivered,2026-06-01 10:00:00
o2,c1,delivered,2026-08-13 10:00:00
o3,c2,delivered,2026-03-01 10:00:00
o4,c2,delivered,2026-05-25 10:00:00
o5,c3,delivered,2026-10-22 10:00:00
o6,c4,delivered,2026-10-12 10:00:00
o7,c5,delivered,2025-12-16 10:00:00
o8,c6,delivered,2026-09-22 10:00:00
o9,c6,cancelled,2026-10-01 10:00:00
"""
PAYMENTS = """\
order_id,amount
o1,200
o2,300
o3,20
o4,30
o5,400
o6,100
o7,300
o8,150
o9,70
zz,99
"""
REVIEWS = """\
review_id,order_id,score,created_at,answered_at
r1,o2,1,2026-08-20 00:00:00,2026-08-20 20:00:00
r2,o4,2,2026-06-01 00:00:00,2026-06-04 12:00:00
r3,o5,5,2026-10-25 00:00:00,2026-10-25 08:00:00
r4,o9,1,2026-10-08 00:00:00,
r5,o6,3,2026-10-15 00:00:00,2026-10-16 00:00:00
r6,o7,2,2025-12-25 00:00:00,2025-12-27 00:00:00
"""


def write_base(folder: Path, **changes: str) -> Path:
    files = {"customers.csv": CUSTOMERS, "orders.csv": ORDERS, "payments.csv": PAYMENTS,
             "reviews.csv": REVIEWS, "mapping.yaml": MAPPING, **changes}
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run(base: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, [
        "run", "--pack", PACK, "--input", str(base), "--mapping", str(base / "mapping.yaml"),
        "--out", str(out), *extra], catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = write_base(tmp_path_factory.mktemp("base"))
    out = tmp_path_factory.mktemp("out")
    result = run(base, out)
    assert result.exit_code == 0, result.output
    return base, out, result.stdout


# -- RFM scores ----------------------------------------------------------------------------------

def test_quantile_scores_put_a_value_on_an_edge_in_the_bin_above():
    bins = customer_base.Bins("quantile", 5)
    values = np.array([50, 100, 150, 300, 400, 500, np.nan])
    assert customer_base.score(values, bins).tolist() == [1, 2, 3, 4, 5, 5, 0]
    days = np.array([10, 20, 40, 80, 160, 320], dtype=float)
    assert customer_base.score(days, bins, higher_is_better=False).tolist() == [5, 4, 3, 2, 1, 1]


def test_quantile_scores_between_data_points():
    # five values: edges at 0.8, 1.6, 2.4, 3.2 positions -> 2.6, 4.2, 5.8, 7.4
    values = np.array([1, 3, 5, 7, 9], dtype=float)
    bins = customer_base.Bins("quantile", 5)
    assert customer_base.score(values, bins).tolist() == [1, 2, 3, 4, 5]


def test_fixed_bins_use_edges_as_lower_bounds():
    bins = customer_base.Bins("fixed", 5, (2, 3, 4, 5))
    orders = np.array([1, 2, 3, 4, 5, 17], dtype=float)
    assert customer_base.score(orders, bins).tolist() == [1, 2, 3, 4, 5, 5]
    recency = customer_base.Bins("fixed", 3, (30, 90))
    days = np.array([0, 29, 30, 89, 90, 400], dtype=float)
    assert customer_base.score(days, recency, higher_is_better=False).tolist() == [3, 3, 2, 2, 1, 1]


# -- the tiny base end to end --------------------------------------------------------------------

def test_every_customer_is_accounted_for_with_the_hand_computed_segment(tiny):
    _, out, _ = tiny
    found = {r["customer"]: r for r in rows(out / "customers.csv")}
    assert list(found) == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    assert {c: (r["segment"], r["rfm"], r["orders"], r["recency_days"]) for c, r in
            found.items()} == {
        "c1": ("A", "225", "2", "80"),
        "c2": ("B", "121", "2", "160"),
        "c3": ("C", "515", "1", "10"),
        "c4": ("D", "412", "1", "20"),
        "c5": ("E", "114", "1", "320"),
        "c6": ("F", "313", "1", "40"),
        "c7": ("", "", "0", ""),
    }
    assert found["c7"]["status"] == "no_orders"
    assert found["c6"]["monetary"] == "150.0"  # the cancelled order o9 does not count
    assert found["c1"]["actions"] == "KEY-ACCOUNT FAMILY-EVENT KEEP-IN-TOUCH"
    assert found["c6"]["actions"] == "STORE-CAMPAIGN"


def test_lifetime_value_by_hand(tiny):
    _, out, _ = tiny
    found = {r["customer"]: r for r in rows(out / "customers.csv")}
    r = 2 / 6  # observed repeat-purchase rate: c1 and c2 of six buyers
    # c1: average order 250, cycle 73 days (Jun 1 -> Aug 13), 3 years = 1095 days -> 15 purchase
    # dates; 2 observed, 13 more weighted r, r^2, ...; 25 % margin
    weight = 2 + r * (1 - r ** 13) / (1 - r)
    assert float(found["c1"]["lifetime_revenue"]) == pytest.approx(250 * weight, abs=0.01)
    assert float(found["c1"]["lifetime_value"]) == pytest.approx(250 * weight * 0.25, abs=0.01)
    # c3: one order of 400, a yearly cycle -> 3 dates: 1 + r + r^2
    assert float(found["c3"]["lifetime_value"]) == pytest.approx(400 * (1 + r + r * r) * 0.25,
                                                                 abs=0.01)


def test_segments_table_sizes_and_value(tiny):
    _, out, _ = tiny
    table = {r["segment"]: r for r in rows(out / "segments.csv")}
    assert list(table) == ["A", "B", "C", "D", "E", "F"]
    assert [table[s]["customers"] for s in table] == ["1"] * 6
    assert table["A"]["revenue"] == "500.0"
    assert table["A"]["revenue_share"] == str(round(500 / 1500, 4))
    assert table["A"]["complaints"] == "1" and table["A"]["missed_target"] == "0"
    assert table["B"]["missed_target"] == "1"


def test_complaints_against_their_response_targets(tiny):
    _, out, _ = tiny
    cases = {r["case"]: r for r in rows(out / "complaints.csv")}
    assert {c: (r["segment"], r["response_hours"], r["target_hours"], r["met_target"],
                r["rules"]) for c, r in cases.items()} == {
        "r1/o2": ("A", "20.0", "24.0", "True", "K1 K2 K5"),   # A: 24 h target, met
        "r2/o4": ("B", "84.0", "48.0", "False", "K1 K3 K5"),  # 3.5 days: missed
        "r4/o9": ("F", "", "48.0", "", "K1 K2 K4"),            # no answer yet
        "r6/o7": ("E", "48.0", "48.0", "True", "K1"),          # exactly on target: met
    }
    assert cases["r2/o4"]["actions"] == "KZB-15 LATE-REVIEW KEY-RECOVERY"
    assert [cases[c]["why"] for c in cases] == [
        "", "answered after 84 h, 36 h past the 48 h target (segment B)",
        "no answer recorded", ""]
    assert cases["r2/o4"]["input_row"] == "3"  # the row of reviews.csv


def test_findings_name_file_row_and_column(tiny):
    _, out, output = tiny
    issues = rows(out / "issues.csv")
    assert [(Path(i["file"]).name, i["row"], i["column"], i["code"]) for i in issues] == [
        ("payments.csv", "11", "1", "payment_unknown_order"),
        ("customers.csv", "8", "1", "customer_without_orders"),
    ]
    assert "data findings (issues.csv): customer_without_orders 1, payment_unknown_order 1" \
        in output


def test_terminal_summary_shows_segment_sizes_and_value(tiny):
    _, _, output = tiny
    assert output.startswith("run R1: 10 facts, ")  # 6 customers with orders + 4 cases
    assert "customers: 7 (from 7 rows of " in output
    assert "repeat-purchase rate: 33.3%" in output
    assert ("A                1   16.7%         500.00   500.00          156.25  "
            "A: repeat buyers with high spend\n") in output
    assert ("complaints: 4 cases (score <= 2); target 48 h (A: 24 h): 2 met, 1 missed, "
            "1 unanswered; median response 48.0 h\n"
            "  missed: r2/o4 (customer c2, reviews.csv row 3): answered after 84 h, 36 h past "
            "the 48 h target (segment B); KZB-15 LATE-REVIEW KEY-RECOVERY\n") in output


def test_trail_explains_a_segment_and_a_complaint(tiny):
    _, out, _ = tiny
    db = sqlite3.connect(out / "trail.sqlite")
    found = dict(db.execute("SELECT subject || ':' || rule_id, inputs FROM trail"))
    assert found["c1:A"] == '{"f_score": 2, "m_score": 5}'
    assert found["c2:K3"] == \
        '{"hours_over_target": 36.0, "response_hours": 84.0, "target_hours": 48.0}'
    actions = rows(out / "actions.csv")
    assert {a["action_id"] for a in actions} == {
        *" ".join(r["action_ids"] for r in rows(out / "customers.csv")).split(),
        *" ".join(r["action_ids"] for r in rows(out / "complaints.csv")).split()}
    explained = CliRunner().invoke(cli, ["explain", "--trail", str(out / "trail.sqlite"),
                                         actions[0]["action_id"]])
    assert explained.exit_code == 0
    assert "customers.yaml" in explained.output


def test_input_may_name_the_customers_file(tmp_path):
    base = write_base(tmp_path / "base")
    result = CliRunner().invoke(cli, [
        "run", "--pack", PACK, "--input", str(base / "customers.csv"),
        "--mapping", str(base / "mapping.yaml"), "--out", str(tmp_path / "out"), "--no-trail"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(rows(tmp_path / "out" / "customers.csv")) == 7


def test_row_engine_gives_the_same_plan(tiny, tmp_path):
    base, out, _ = tiny
    result = run(base, tmp_path, "--engine", "row")
    assert result.exit_code == 0, result.output
    assert rows(tmp_path / "actions.csv") == rows(out / "actions.csv")


# -- lifetime value: the seed's car example ------------------------------------------------------

def test_car_example_by_our_reading():
    value = lifetime.value(lifetime.CAR_EXAMPLE, lifetime.CAR_HORIZON_YEARS)
    # own car: 5 purchases (years 1, 5, 9, 13, 17), 4 trade-ins, 20 years of service
    assert value.streams[0] == lifetime.StreamValue("own car", 5, 2_556_000, 168_000)
    # wife's A4 from year 5: years 5, 11, 17; 16 years of service
    assert value.streams[1] == lifetime.StreamValue("wife's car (A4)", 3, 1_394_800, 96_400)
    # daughter's TT from year 10: years 10, 13, 16, 19; 11 years of service
    assert value.streams[2] == lifetime.StreamValue("daughter's car (TT)", 4, 3_030_800,
                                                    195_400)
    assert (value.revenue, value.profit) == (6_981_600, 459_800)


def test_car_example_against_the_seed_figures():
    value = lifetime.value(lifetime.CAR_EXAMPLE, lifetime.CAR_HORIZON_YEARS)
    # The seed says about 8 million revenue and 510 thousand profit: our reading reaches 87 %
    # and 90 %; the start years of the family cars are not on the slide.
    assert value.revenue / lifetime.CAR_SEED_REVENUE == pytest.approx(0.8727, abs=1e-4)
    assert value.profit / lifetime.CAR_SEED_PROFIT == pytest.approx(0.9016, abs=1e-4)
    # With the daughter's car from year 8 instead, the model meets the seed within 4 % and 1 %.
    earlier = (*lifetime.CAR_EXAMPLE[:2], lifetime.Stream("daughter's car (TT)", 750_000, 0.04,
                                                          3, 8, 20_000, 2_800, 0.5))
    other = lifetime.value(earlier, 20)
    assert (other.revenue, other.profit) == (7_737_200, 512_600)


def test_retention_weighs_each_repeat_purchase():
    stream = lifetime.Stream("x", 100, 0.5, 1)
    assert lifetime.value([stream], 3, 0.5).revenue == 100 * (1 + 0.5 + 0.25)
    revenue, profit = lifetime.value_columns(np.array([100.0]), np.array([365.0]),
                                             np.array([1.0]), horizon_years=3, margin=0.5,
                                             retention=0.5)
    assert (revenue.tolist(), profit.tolist()) == ([175.0], [87.5])


# -- bad input -----------------------------------------------------------------------------------

def fails(tmp_path, **changes) -> str:
    """The error lines (stderr, after the progress lines); nothing may have been written."""
    base = write_base(tmp_path / "base", **changes)
    result = run(base, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing written before the input is valid
    return "\n".join(line for line in result.stderr.splitlines()
                     if not line.endswith(" ...")) + "\n"


def test_score_outside_1_to_5(tmp_path):
    output = fails(tmp_path, **{"reviews.csv": REVIEWS.replace("r3,o5,5,", "r3,o5,7,")})
    assert output == (f"{tmp_path / 'base' / 'reviews.csv'}:4:3: bad value 7 (expected a "
                      "review score from 1 to 5)\n")


def test_bad_payment_value_and_bad_timestamp_reported_together(tmp_path):
    output = fails(tmp_path, **{
        "payments.csv": PAYMENTS.replace("o3,20", "o3,twenty"),
        "orders.csv": ORDERS.replace("2026-10-22 10:00:00", "22/10/2026")})
    base = tmp_path / "base"
    assert output == (
        f"{base / 'orders.csv'}:6:4: bad value '22/10/2026' (expected a purchase time as "
        "%Y-%m-%d %H:%M:%S)\n"
        f"{base / 'payments.csv'}:4:2: bad value 'twenty' in column 'amount' "
        "(expected a number)\n")


def test_mapping_names_a_column_the_file_lacks(tmp_path):
    output = fails(tmp_path, **{"mapping.yaml": MAPPING.replace("value: amount",
                                                                "value: amout")})
    base = tmp_path / "base"
    assert output == (
        f"{base / 'mapping.yaml'}:9:37: the mapping names column 'amout' for field 'value', "
        f"but {base / 'payments.csv'} has no such column (did you mean 'amount'?)\n")


def test_every_input_customer_is_accounted_for_even_without_orders(tmp_path):
    base = write_base(tmp_path / "base", **{"customers.csv": CUSTOMERS + "c8\nc9\n"})
    result = run(base, tmp_path / "out", "--no-trail")
    assert result.exit_code == 0, result.output
    table = rows(tmp_path / "out" / "customers.csv")
    assert [r["customer"] for r in table] == [f"c{i}" for i in range(1, 10)]
    assert [r["status"] for r in table].count("no_orders") == 3


# -- the section ---------------------------------------------------------------------------------

def pack_error(tmp_path, old: str, new: str) -> str:
    text = Path(PACK).read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "pack.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    return result.output.strip()


def where(text: str, tmp_path) -> str:
    """FILE:LINE:COL of the first character of ``text`` in the shipped pack (1-based)."""
    before = Path(PACK).read_text(encoding="utf-8").split(text)[0]
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return f"{tmp_path / 'pack.yaml'}:{line}:{col}"


def test_section_refuses_unsorted_edges(tmp_path):
    output = pack_error(tmp_path, "edges: [2, 3, 4, 5]", "edges: [2, 4, 3, 5]")
    assert output == f"{where('[2, 3, 4, 5]', tmp_path)}: edges must be strictly ascending"


def test_section_refuses_an_unknown_complaint_table(tmp_path):
    output = pack_error(tmp_path, "tables: [complaint_recovery]", "tables: [complaint_recover]")
    assert output == (f"{where('complaint_recovery]', tmp_path)}: no table 'complaint_recover' "
                      "in this pack (did you mean 'complaint_recovery'?)")


def test_section_wants_four_to_seven_segments(tmp_path):
    text = Path(PACK).read_text(encoding="utf-8")
    cut = text[text.index("      - id: D\n"):text.index("  - id: complaint_recovery")]
    path = tmp_path / "pack.yaml"
    path.write_text(text.replace(cut, ""), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    line = text.split("  segments:\n")[0].count("\n") + 2  # the 'table:' line
    assert result.output.strip().splitlines()[-1] == (
        f"{path}:{line - cut.count(chr(10))}:12: the segment table 'segment' has 3 rules; "
        "seed 003 asks for 4-7 segments")


def test_the_segment_table_gives_one_row(tmp_path):
    output = pack_error(tmp_path, "    table: segment\n", "    table: complaint_recovery\n")
    assert output.splitlines()[0].endswith(
        "the segment table 'complaint_recovery' has hit policy collect; a customer is in one "
        "segment, so use first, unique, priority or any")


def test_section_refuses_a_field_the_join_does_not_make(tmp_path):
    output = pack_error(tmp_path, "  - {name: orders, type: integer,",
                        "  - {name: order_count, type: integer,")
    assert "field 'order_count' is not one the customer join produces" in output


# -- the shipped samples -------------------------------------------------------------------------

def test_samples_regenerate_byte_for_byte(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_samples",
                                                  ROOT / "samples" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_customer_samples(tmp_path)
    names = ["customers/customers.csv", "customers/orders.csv", "customers/payments.csv",
             "customers/reviews.csv", "crm_scorecard.csv", "sales_funnel.csv"]
    for name in names:
        assert (tmp_path / name).read_bytes() == (ROOT / "samples" / name).read_bytes(), name


def test_store_sample_runs_with_its_mapping(tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--pack", PACK, "--input", str(ROOT / "samples" / "customers"),
        "--mapping", str(ROOT / "mappings" / "store_customers.yaml"), "--out", str(tmp_path)],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = rows(tmp_path / "customers.csv")
    assert len(table) == 300
    assert sum(int(r["customers"]) for r in rows(tmp_path / "segments.csv")) == \
        sum(r["status"] == "ok" for r in table)


def test_a_customer_listed_twice_is_one_customer_and_a_finding(tmp_path):
    base = write_base(tmp_path / "base", **{"customers.csv": CUSTOMERS + "c3\n"})
    result = run(base, tmp_path / "out", "--no-trail")
    assert result.exit_code == 0, result.output
    assert len(rows(tmp_path / "out" / "customers.csv")) == 7
    issues = rows(tmp_path / "out" / "issues.csv")
    assert [(i["row"], i["column"], i["code"], i["message"]) for i in issues[:1]] == [
        ("9", "1", "duplicate_customer", "customer 'c3' is listed again; the first row counts")]


def test_counted_statuses_need_the_status_column(tmp_path):
    output = fails(tmp_path, **{"mapping.yaml": MAPPING.replace(", status: status}", "}")})
    assert output == (f"{tmp_path / 'base' / 'mapping.yaml'}:6:21: counted_statuses needs the "
                      "order status column (order.status)\n")


def test_a_segments_pack_needs_a_mapping_and_runs_alone(tmp_path):
    base = write_base(tmp_path / "base")
    result = CliRunner().invoke(cli, ["run", "--pack", PACK, "--input", str(base),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"{display_path(PACK)}:1:1: a customer base needs --mapping (which files and columns "
        "hold customers, orders, payments and reviews) (e.g. --mapping "
        "mappings/olist_customers.yaml)")
    kzb = str(ROOT / "rules" / "kzb.yaml")
    result = CliRunner().invoke(cli, ["run", "--pack", PACK, "--pack", kzb, "--input",
                                      str(base), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"{display_path(kzb)}:1:1: a customers pack runs alone; run the other packs separately")


def test_section_schema_errors_are_positioned(tmp_path):
    output = pack_error(tmp_path, "    max_score: 2\n", "    max_score: 2\n    max_scor: 3\n")
    line = int(where("    max_score: 2", tmp_path).split(":")[-2]) + 1
    assert output == (f"{tmp_path / 'pack.yaml'}:{line}:5: unknown key 'max_scor' in "
                      "customers.complaints (did you mean 'max_score'?)")


def test_without_a_reviews_file_there_are_no_complaint_cases(tmp_path):
    mapping = MAPPING.replace(",\n          reviews: reviews.csv}", "}").split("  review:")[0]
    base = write_base(tmp_path / "base", **{"mapping.yaml": mapping})
    result = run(base, tmp_path / "out", "--no-trail")
    assert result.exit_code == 0, result.output
    assert "complaints: none (the mapping names no reviews file)\n" in result.stdout
    assert rows(tmp_path / "out" / "complaints.csv") == []
    assert len(rows(tmp_path / "out" / "customers.csv")) == 7


def test_orders_and_reviews_that_lead_nowhere_are_findings(tmp_path):
    base = write_base(tmp_path / "base", **{
        "orders.csv": ORDERS + "o5,c3,delivered,2026-10-30 10:00:00\n"
                               "o10,c99,delivered,2026-10-30 10:00:00\n",
        "payments.csv": PAYMENTS + "o10,1000\n",
        "reviews.csv": REVIEWS + "r7,o10,1,2026-10-31 00:00:00,\nr8,o77,1,2026-10-31 00:00:00,\n"})
    result = run(base, tmp_path / "out", "--no-trail")
    assert result.exit_code == 0, result.output
    issues = [(Path(i["file"]).name, i["row"], i["column"], i["code"])
              for i in rows(tmp_path / "out" / "issues.csv")]
    assert issues == [
        ("orders.csv", "12", "2", "order_unknown_customer"),
        ("orders.csv", "11", "1", "duplicate_order"),
        ("payments.csv", "11", "1", "payment_unknown_order"),
        ("customers.csv", "8", "1", "customer_without_orders"),
        ("reviews.csv", "9", "2", "review_unknown_order"),
    ]
    found = {r["customer"]: r for r in rows(tmp_path / "out" / "customers.csv")}
    assert (found["c3"]["orders"], found["c3"]["monetary"]) == ("1", "400.0")  # o5 once
    assert len(rows(tmp_path / "out" / "complaints.csv")) == 4  # r7 and r8 lead nowhere


def test_bad_rows_skip_is_refused(tmp_path):
    base = write_base(tmp_path / "base")
    result = CliRunner().invoke(cli, [
        "run", "--pack", PACK, "--input", str(base), "--mapping", str(base / "mapping.yaml"),
        "--out", str(tmp_path / "out"), "--bad-rows", "skip"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"{display_path(PACK)}:1:1: --bad-rows skip does not apply to a customers pack: every "
        "customer, order and rating must be accounted for (fix the rows the run names, or "
        "leave --bad-rows out)")
    assert not (tmp_path / "out").exists()

"""Evaluate visits: difference in differences against unvisited flagged stores of the same tier."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from storeops.engine.errors import ErrorList, InputError
from storeops.engine.planning import (
    EVALUATION_COLUMNS,
    evaluate_visits,
    read_visit_log,
    shift_month,
    write_evaluation,
)


def hand_made():
    rows = [  # store, tier, before, after
        ("V1", "A", 0.80, 0.95), ("V2", "A", 0.70, 0.80), ("V3", "A", 0.90, 0.95),
        ("U1", "A", 0.85, 0.90), ("U2", "A", 0.75, 0.75), ("U3", "A", 0.80, 0.90),
        ("N1", "A", 1.00, 0.98), ("N2", "A", 1.10, 1.12),
        ("V4", "B", 0.60, 0.90), ("U4", "B", 0.60, 0.70),
        ("V5", "C", 0.50, math.nan), ("U5", "C", 0.50, 0.60)]
    before = pd.DataFrame([(s, t, b) for s, t, b, _ in rows],
                          columns=["store", "tier", "sales_yoy"])
    after = pd.DataFrame([(s, a) for s, _, _, a in rows], columns=["store", "sales_yoy"])
    visits = pd.DataFrame({"store": ["V1", "V2", "V3", "V4", "V5", "V1"],
                           "date": ["2026-04-07"] * 6})
    flagged = ["V1", "V2", "V3", "U1", "U2", "U3", "V4", "U4", "V5", "U5"]
    return before, after, visits, flagged


def test_known_answer_did_and_welch_interval():
    evaluation = evaluate_visits(*hand_made())
    table = evaluation.table.set_index("tier")
    assert list(evaluation.table.columns) == list(EVALUATION_COLUMNS)
    a = table.loc["A"]
    # visited +0.15 +0.10 +0.05 (mean 0.10), unvisited +0.05 0 +0.10 (mean 0.05): DiD 0.05.
    # Both sample variances are 0.0025, so se = sqrt(2 x 0.0025 / 3) = 0.040825 and the
    # Welch-Satterthwaite df is exactly 4; t(0.975, 4) = 2.776445.
    assert (a["n_visited"], a["n_unvisited"], a["n_unflagged"]) == (3, 3, 2)
    assert a["visited_change"] == pytest.approx(0.10)
    assert a["unvisited_change"] == pytest.approx(0.05)
    assert a["unflagged_change"] == pytest.approx(0.0)
    assert a["visited_before"] == pytest.approx(0.80)
    assert a["visited_after"] == pytest.approx(0.90)
    assert a["did"] == pytest.approx(0.05)
    assert a["df"] == pytest.approx(4.0)
    half = 2.776445 * math.sqrt(2 * 0.0025 / 3)
    assert a["ci_low"] == pytest.approx(0.05 - half, abs=1e-6)
    assert a["ci_high"] == pytest.approx(0.05 + half, abs=1e-6)
    b = table.loc["B"]
    assert b["did"] == pytest.approx(0.20)
    assert math.isnan(b["ci_low"])
    assert b["note"] == ("too few stores for an interval (needs 2 visited and 2 unvisited "
                         "flagged stores)")
    c = table.loc["C"]
    assert (c["n_visited"], c["n_unvisited"]) == (0, 1)
    assert math.isnan(c["did"])
    assert c["note"].endswith("1 store(s) without sales_yoy in both months left out")


def test_plain_language_lines():
    lines = evaluate_visits(*hand_made()).lines
    assert lines[:3] == (
        "tier A: sales_yoy of visited flagged stores changed by +0.100 (n=3), of unvisited "
        "flagged stores by +0.050 (n=3), of unflagged stores by +0.000 (n=2).",
        "tier A: difference in differences +0.050 (95% CI -0.063 to +0.163): the visits' "
        "effect on sales_yoy is not distinguishable from zero.",
        "tier A: flagged stores regress to the mean without any visit: the 3 unvisited "
        "flagged store(s) changed by +0.050 on their own, so a before/after of the visited "
        "stores alone (+0.100) credits the visits with that drift; the difference in "
        "differences does not.",
    )
    assert lines[-2:] == (
        "tier C: no difference in differences (needs visited and unvisited flagged stores).",
        "tier C: no flagged store was visited; flagged stores regress to the mean without any "
        "visit: the 1 unvisited flagged store(s) changed by +0.100 on their own.")


def test_all_flagged_visited_still_warns_about_regression_to_the_mean():
    before = pd.DataFrame({"store": ["a", "b", "c"], "tier": "A", "sales_yoy": [0.7, 0.8, 1.0]})
    after = pd.DataFrame({"store": ["a", "b", "c"], "sales_yoy": [0.9, 0.9, 1.0]})
    evaluation = evaluate_visits(before, after, ["a", "b"], ["a", "b"])
    assert evaluation.lines[-1] == (
        "tier A: every flagged store was visited, so nothing shows how much they would have "
        "recovered on their own; flagged stores regress to the mean without any visit, so their "
        "before/after change (+0.150) is not the visits' effect. Leave a random share of flagged "
        "stores unvisited to measure it.")


def test_pure_regression_to_the_mean_fools_before_after_but_not_did():
    # No visit does anything: each store has a steady level and each month adds noise. Stores
    # are flagged on a low month; half of them are "visited" at random. The naive before/after
    # of visited stores improves (regression to the mean); the DiD is zero up to noise.
    rng = np.random.default_rng(20260401)
    n = 4000
    level = rng.normal(1.0, 0.1, n)
    before_kpi = level + rng.normal(0, 0.1, n)
    after_kpi = level + rng.normal(0, 0.1, n)
    stores = [f"S{i}" for i in range(n)]
    before = pd.DataFrame({"store": stores, "tier": "A", "sales_yoy": before_kpi})
    after = pd.DataFrame({"store": stores, "sales_yoy": after_kpi})
    flagged_idx = np.flatnonzero(before_kpi < np.quantile(before_kpi, 0.2))
    visited_idx = rng.choice(flagged_idx, size=len(flagged_idx) // 2, replace=False)
    evaluation = evaluate_visits(before, after, [stores[i] for i in visited_idx],
                                 [stores[i] for i in flagged_idx])
    row = evaluation.table.iloc[0]
    se = (row["ci_high"] - row["ci_low"]) / (2 * 1.96)
    # theory: flagged on the lowest 20 % of level + noise with equal variances, the expected
    # rebound is half the flagged stores' shortfall, about +0.07; DiD's expectation is 0
    assert row["visited_change"] > 0.05
    assert row["unvisited_change"] > 0.05
    assert abs(row["did"]) < 3 * se
    assert row["ci_low"] < 0 < row["ci_high"]
    assert abs(row["unflagged_change"]) < 0.03
    assert any("regress to the mean without any visit" in line for line in evaluation.lines)


def test_a_real_effect_is_found():
    rng = np.random.default_rng(7)
    n = 2000
    stores = [f"S{i}" for i in range(n)]
    level = rng.normal(1.0, 0.1, n)
    before_kpi = level + rng.normal(0, 0.05, n)
    flagged = np.flatnonzero(before_kpi < 0.95)
    visited = flagged[::2]
    after_kpi = level + rng.normal(0, 0.05, n)
    after_kpi[visited] += 0.05
    evaluation = evaluate_visits(
        pd.DataFrame({"store": stores, "tier": "B", "sales_yoy": before_kpi}),
        pd.DataFrame({"store": stores, "sales_yoy": after_kpi}),
        pd.DataFrame({"store": [stores[i] for i in visited]}),
        pd.DataFrame({"store": [stores[i] for i in flagged]}))
    row = evaluation.table.iloc[0]
    assert row["ci_low"] < 0.05 < row["ci_high"]
    assert row["ci_low"] > 0
    assert "the visits' effect on sales_yoy is positive." in evaluation.lines[1]


def test_other_kpi_and_missing_column():
    before, after, visits, flagged = hand_made()
    before["transactions"] = 100
    after["transactions"] = 110
    evaluation = evaluate_visits(before, after, visits, flagged, kpi="transactions")
    assert evaluation.table["unflagged_change"].tolist()[0] == 10
    with pytest.raises(InputError) as info:
        evaluate_visits(before, after.drop(columns="transactions"), visits, flagged,
                        kpi="transactions")
    assert str(info.value) == "after: missing column 'transactions'"


def test_one_month_per_frame():
    before, after, visits, flagged = hand_made()
    with pytest.raises(InputError) as info:
        evaluate_visits(before, pd.concat([after, after.head(2)]), visits, flagged)
    assert str(info.value) == "after: store 'V1' has more than one row (one month per frame)"


def test_write_evaluation(tmp_path):
    path = write_evaluation(evaluate_visits(*hand_made()), tmp_path)
    assert path.name == "evaluation.csv"
    assert pd.read_csv(path)["tier"].tolist() == ["A", "B", "C"]


def test_shift_month():
    assert shift_month("2015-01", -1) == "2014-12"
    assert shift_month("2015-12", 1) == "2016-01"
    assert shift_month("2015-06", 0) == "2015-06"


def test_read_visit_log_keeps_the_month(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("store,date,supervisor\nS1,2015-06-02,P\nS2,2015-07-01,P\n", encoding="utf-8")
    assert read_visit_log(path, month="2015-06")["store"].tolist() == ["S1"]
    assert read_visit_log(path)["store"].tolist() == ["S1", "S2"]
    path.write_text("store\nS1\n", encoding="utf-8")
    assert read_visit_log(path, month="2015-06")["store"].tolist() == ["S1"]


def test_read_visit_log_errors(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("shop,date\nS1,2015-06-02\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_visit_log(path, display="visits.csv")
    assert str(info.value) == "visits.csv:1:1: missing column 'store'"
    path.write_text("store,date\nS1,2015-06-02\nS2,2015-06-31\nS3,6/3/2015\n", encoding="utf-8")
    with pytest.raises(ErrorList) as info:
        read_visit_log(path, display="visits.csv")
    assert str(info.value).splitlines() == [
        "visits.csv:3:2: bad date '2015-06-31' (expected YYYY-MM-DD)",
        "visits.csv:4:2: bad date '6/3/2015' (expected YYYY-MM-DD)"]
    with pytest.raises(InputError) as info:
        read_visit_log(tmp_path / "none.csv", display="none.csv")
    assert str(info.value) == "none.csv:1:1: no such file"

"""Month plans and week schedules: known answers, capacity, breadth, routing, writers."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from storeops.engine import routing
from storeops.engine.errors import ErrorList, InputError
from storeops.engine.planning import (
    MONTH_PLAN_COLUMNS,
    UNSERVED_COLUMNS,
    WEEK_SCHEDULE_COLUMNS,
    Site,
    Supervisor,
    Team,
    Travel,
    default_support,
    iso_week,
    load_team,
    plan_month,
    support_from_levels,
    working_dates,
    write_plan,
)

DATA = Path(__file__).parent / "data" / "teams"
ROOT = Path(__file__).parent.parent
NAN = math.nan


def frames():
    facts = pd.DataFrame({
        "store": ["A1", "A2", "B1", "C1", "C2", "C3", "X9"],
        "tier": ["A", "A", "B", "C", "C", "C", "B"],
        "sales": [900, 1000, 800, 500, 400, 300, 700],
        "sales_yoy": [-0.2, 0.05, -0.1, -0.05, -0.3, -0.4, NAN]})
    actions = pd.DataFrame([
        ("A1", "DISPLAY", "R1.1.1", 3, 1.0), ("A1", "PROMO", "R1.1.2", 2, 0.5),
        ("A1", "TRAIN", "R1.1.3", 1, 2.0), ("A1", "STOCK", "R1.1.4", 1, 0.5),
        ("B1", "PROMO", "R1.2.1", 2, 1.0), ("C1", "DISPLAY", "R1.3.1", 1, 1.0),
        ("C2", "DISPLAY", "R1.4.1", 3, 1.0), ("C3", "TRAIN", "R1.5.1", 3, 1.0),
        ("X9", "PROMO", "R1.6.1", 2, 1.0)],
        columns=["store", "action", "action_id", "severity", "effort_hours"])
    return facts, actions


@pytest.fixture(scope="module")
def plan():
    facts, actions = frames()
    return plan_month(facts, actions, default_support(), load_team(DATA / "two_areas.yaml"),
                      "2026-04")


def test_working_days_skip_weekends_and_holidays():
    team = load_team(DATA / "two_areas.yaml")
    days = working_dates(team, "2026-04")
    assert len(days) == 20  # 22 weekdays minus Good Friday and Easter Monday
    assert dt.date(2026, 4, 3) not in days and dt.date(2026, 4, 6) not in days
    assert sorted({iso_week(d) for d in days}) == [
        "2026-W14", "2026-W15", "2026-W16", "2026-W17", "2026-W18"]


def test_month_plan_known_answer(plan):
    mp = plan.month_plan
    assert list(mp.columns) == list(MONTH_PLAN_COLUMNS)
    # priority = tier weight (A 3, B 2, C 1) x worst severity; ranked highest first
    assert mp[["store", "priority", "rank", "status"]].values.tolist() == [
        ["A1", 9.0, 1, "planned"],
        ["B1", 4.0, 2, "planned"],
        ["X9", 4.0, 3, "unserved"],
        ["C3", 3.0, 4, "unserved"],
        ["C2", 3.0, 5, "unserved"],
        ["C1", 1.0, 6, "not supported by tier"],
        ["A2", 0.0, 7, "planned"],
    ]
    rows = mp.set_index("store")
    assert rows.loc["X9", "reason"] == "store is not in the stores file"
    assert rows.loc["C3", "reason"] == "no supervisor covers area 'east'"
    assert rows.loc["C2", "reason"] == "store has no area in the stores file"
    assert rows.loc["C1", "reason"] == (
        "tier C without a severe problem (severity 1 < 3): let go (width)")
    assert rows["visits_required"].to_dict() == {
        "A1": 4, "B1": 2, "X9": 2, "C3": 1, "C2": 1, "C1": 0, "A2": 4}
    assert rows["visits_planned"].to_dict() == {
        "A1": 4, "B1": 2, "X9": 0, "C3": 0, "C2": 0, "C1": 0, "A2": 4}
    assert rows.loc["A1", "actions"] == "DISPLAY;PROMO;TRAIN;STOCK"  # worst first
    assert rows.loc["A1", "effort_hours"] == 4.0
    assert rows.loc["A1", "target"] == (
        "raise sales_yoy from -0.20 to >= +0.00 (against the same month last year)")
    assert rows.loc["A1", "target_sales_yoy"] == 0.0
    assert rows.loc["A2", "target"] == "hold sales_yoy >= +0.00 (now +0.05)"
    assert rows.loc["A2", "target_sales_yoy"] == 0.05
    assert rows.loc["X9", "target"] == "sales_yoy >= +0.00 (no last-year figure to compare with)"
    assert bool(rows.loc["A1", "focus"]) and not bool(rows.loc["A2", "focus"])
    assert not bool(rows.loc["C1", "focus"])


def test_week_schedule_known_answer(plan):
    ws = plan.week_schedule
    assert list(ws.columns) == list(WEEK_SCHEDULE_COLUMNS)
    # day 08:30; 15 min from home, 90 min per visit, 30 min between stores; A visits aim at
    # working days 2, 7, 12, 17 of 20 (Tue 7, Tue 14, Tue 21, Tue 28), B at days 5 and 15
    assert ws[["supervisor", "date", "stop_seq", "store", "visit_no", "arrive", "depart",
               "travel_minutes", "day_minutes", "action_ids"]].values.tolist() == [
        ["S1", "2026-04-07", 1, "A1", 1, "08:45", "10:15", 15.0, 240.0, "R1.1.1;R1.1.2;R1.1.3"],
        ["S1", "2026-04-07", 2, "A2", 1, "10:45", "12:15", 30.0, 240.0, ""],
        ["S2", "2026-04-10", 1, "B1", 1, "08:45", "10:15", 15.0, 120.0, "R1.2.1"],
        ["S1", "2026-04-14", 1, "A1", 2, "08:45", "10:15", 15.0, 240.0, "R1.1.4"],
        ["S1", "2026-04-14", 2, "A2", 2, "10:45", "12:15", 30.0, 240.0, ""],
        ["S1", "2026-04-21", 1, "A1", 3, "08:45", "10:15", 15.0, 240.0, ""],
        ["S1", "2026-04-21", 2, "A2", 3, "10:45", "12:15", 30.0, 240.0, ""],
        ["S2", "2026-04-24", 1, "B1", 2, "08:45", "10:15", 15.0, 120.0, ""],
        ["S1", "2026-04-28", 1, "A1", 4, "08:45", "10:15", 15.0, 240.0, ""],
        ["S1", "2026-04-28", 2, "A2", 4, "10:45", "12:15", 30.0, 240.0, ""],
    ]
    first = ws.iloc[0]
    assert (first["week"], first["weekday"], first["day_seq"], first["actions"]) == (
        "2026-W15", "Tue", 1, "DISPLAY;PROMO;TRAIN")


def test_unserved_known_answer(plan):
    un = plan.unserved
    assert list(un.columns) == list(UNSERVED_COLUMNS)
    assert un[["store", "kind", "visit_no", "action_id", "target_week", "reason"]] \
        .values.tolist() == [
        ["X9", "visit", 1, "", "2026-W15", "store is not in the stores file"],
        ["X9", "visit", 2, "", "2026-W17", "store is not in the stores file"],
        ["X9", "action", 0, "R1.6.1", "", "store is not in the stores file"],
        ["C3", "visit", 1, "", "2026-W16", "no supervisor covers area 'east'"],
        ["C3", "action", 0, "R1.5.1", "", "no supervisor covers area 'east'"],
        ["C2", "visit", 1, "", "2026-W16", "store has no area in the stores file"],
        ["C2", "action", 0, "R1.4.1", "", "store has no area in the stores file"],
        ["C1", "action", 0, "R1.3.1", "",
         "tier C without a severe problem (severity 1 < 3): let go (width)"],
    ]


def test_unserved_causes_and_summary(plan):
    assert plan.unserved["cause"].tolist() == ["area"] * 7 + ["width"]
    assert plan.summary() == [
        "2026-04: 7 store(s): 3 planned, 0 partly planned, 3 unserved, 1 not supported by tier",
        "visits: 10 scheduled of 14 required; team time booked 20.0 h of 320.0 h (6%)",
        "unserved: 4 visit(s) and 4 action(s); by cause: area 7, width 1",
    ]


def one_area_team(days=(0,), hours=8.0, supervisors=1) -> Team:
    stores = {f"S{i}": Site(f"S{i}", "n") for i in range(1, 10)}
    return Team("t", tuple(Supervisor(f"P{i}", f"P{i}", ("n",)) for i in range(1, supervisors + 1)),
                hours, tuple(days), 90.0, Travel("constant", 30.0, 15.0), stores)


def test_capacity_keeps_the_highest_priority_and_lists_the_rest():
    # Mondays only: 4 days in April 2026, 4 visits a day (15 + 4 x 90 + 3 x 30 + 15 = 480 min),
    # so 16 visits fit; six tier A stores ask for 24
    facts = pd.DataFrame({"store": [f"S{i}" for i in range(1, 7)], "tier": ["A"] * 6})
    actions = pd.DataFrame({"store": [f"S{i}" for i in range(1, 7)],
                            "action": ["FIX"] * 6, "action_id": [f"R1.{i}" for i in range(1, 7)],
                            "severity": [1, 3, 2, 3, 1, 2]})
    plan = plan_month(facts, actions, default_support(), one_area_team(), "2026-04")
    assert plan.month_plan[["store", "status"]].values.tolist() == [
        ["S2", "planned"], ["S4", "planned"], ["S3", "planned"], ["S6", "planned"],
        ["S1", "unserved"], ["S5", "unserved"]]
    assert plan.week_schedule.groupby("date")["store"].apply(list).to_dict() == {
        "2026-04-06": ["S2", "S4", "S3", "S6"], "2026-04-13": ["S2", "S4", "S3", "S6"],
        "2026-04-20": ["S2", "S4", "S3", "S6"], "2026-04-27": ["S2", "S4", "S3", "S6"]}
    assert plan.week_schedule["day_minutes"].unique().tolist() == [480.0]
    visits = plan.unserved[plan.unserved["kind"] == "visit"]
    assert visits[["store", "visit_no", "priority", "rank"]].values.tolist() == [
        ["S1", 1, 3.0, 5], ["S1", 2, 3.0, 5], ["S1", 3, 3.0, 5], ["S1", 4, 3.0, 5],
        ["S5", 1, 3.0, 6], ["S5", 2, 3.0, 6], ["S5", 3, 3.0, 6], ["S5", 4, 3.0, 6]]
    assert set(plan.unserved["cause"]) == {"capacity", "no visit"}
    # what fit in area n ranked higher: priority 6 against the unserved stores' 3
    assert visits["lowest_priority_fitted"].tolist() == [6.0] * 8
    assert plan.unserved.loc[plan.unserved["kind"] == "action",
                             "lowest_priority_fitted"].isna().all()
    assert plan.month_plan["reason"].iloc[-1] == plan.unserved["reason"].iloc[5]
    assert visits["reason"].iloc[0] == (
        "capacity: area n's supervisors (P1) are fully booked in week 2026-W15 and in every "
        "other week of 2026-04 on the days free of this store")
    actions_left = plan.unserved[plan.unserved["kind"] == "action"]
    assert actions_left[["store", "action_id", "reason"]].values.tolist() == [
        ["S1", "R1.1", "no visit to the store fit (see its unserved visits)"],
        ["S5", "R1.5", "no visit to the store fit (see its unserved visits)"]]
    cap = plan.capacity
    assert cap["visits"].tolist() == [4, 4, 4, 4]
    assert cap["minutes_booked"].tolist() == cap["minutes_available"].tolist()


def test_visits_move_to_another_week_when_their_week_is_full():
    # one Monday-only supervisor, two tier C stores with one visit each, both aiming at the
    # middle Monday (the 3rd of 4, 2026-W17), and room for only one visit a day: S1 (first by
    # store id) gets it, S2 moves to the nearest week, the earlier one on a tie
    facts = pd.DataFrame({"store": ["S1", "S2"], "tier": ["C", "C"]})
    actions = pd.DataFrame({"store": ["S1", "S2"], "action": ["FIX", "FIX"],
                            "action_id": ["R1.1", "R1.2"], "severity": [3, 3]})
    team = one_area_team(hours=2.0)
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    assert plan.week_schedule[["store", "date", "target_week"]].values.tolist() == [
        ["S2", "2026-04-13", "2026-W17"], ["S1", "2026-04-20", "2026-W17"]]
    assert plan.unserved.empty


def test_days_stay_in_one_area_where_possible():
    stores = {"N1": Site("N1", "north"), "N2": Site("N2", "north"),
              "S1": Site("S1", "south"), "S2": Site("S2", "south")}
    team = Team("t", (Supervisor("P", "P", ("north", "south")),), 8.0, (0, 1), 60.0,
                Travel("constant", 10.0, 10.0), stores)
    facts = pd.DataFrame({"store": ["N1", "S1", "N2", "S2"], "tier": ["C"] * 4})
    actions = pd.DataFrame({"store": ["N1", "S1", "N2", "S2"], "action": ["FIX"] * 4,
                            "action_id": ["a", "b", "c", "d"], "severity": [3] * 4})
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    days = plan.week_schedule.groupby("date")["area"].agg(lambda s: sorted(set(s)))
    assert all(len(areas) == 1 for areas in days), days
    assert len(plan.week_schedule) == 4


def test_breadth_max_actions_and_hours_per_visit():
    support = default_support()
    support.loc[support["tier"] == "A", ["max_actions", "hours_per_visit"]] = [2, 1.5]
    support.loc[support["tier"] == "A", "visits_per_month"] = 2
    facts = pd.DataFrame({"store": ["S1"], "tier": ["A"]})
    actions = pd.DataFrame({
        "store": ["S1"] * 6, "action": ["A", "B", "C", "D", "E", "F"],
        "action_id": ["r1", "r2", "r3", "r4", "r5", "r6"], "severity": [3, 3, 2, 2, 1, 1],
        "effort_hours": [1.0, 0.5, 0.5, 2.0, 0.5, 0.5]})
    plan = plan_month(facts, actions, support, one_area_team(), "2026-04")
    assert plan.week_schedule["action_ids"].tolist() == ["r1;r2", "r3;r5"]
    assert plan.unserved[["action_id", "reason"]].values.tolist() == [
        ["r4", "breadth: the action needs 2 h, more than the 1.5 h a tier A visit allows"],
        ["r6", "breadth: the store's 2 planned visit(s) are full (tier A: at most 2 action(s) "
               "and 1.5 h per visit)"]]
    assert plan.month_plan["status"].tolist() == ["partly planned"]
    assert plan.month_plan["reason"].tolist() == [
        "breadth: the action needs 2 h, more than the 1.5 h a tier A visit allows"]
    assert plan.month_plan["actions_planned"].tolist() == [4]


def test_breadth_lists_the_action_kinds_a_tier_may_get():
    # the value-chain pack's levels: C gets only RECTIFY and ROUTINE, and only from severity 3;
    # lists (as the pack gives them) and ';'-text are both accepted
    support = default_support().astype({"breadth": object, "judge_kpis": object})
    support["breadth"] = [None, "", ["RECTIFY", "ROUTINE"]]
    support["judge_kpis"] = [["sales", "transactions"], "sales", ("sales",)]
    support["min_severity"] = [1, 1, 3]
    facts = pd.DataFrame({"store": ["S1", "S2", "S3", "S4"], "tier": ["C", "C", "A", "A"]})
    actions = pd.DataFrame({
        "store": ["S1", "S1", "S2", "S3"], "action": ["PROMO_PLAN", "RECTIFY", "VISUAL", "MERCH"],
        "action_id": ["r1", "r2", "r3", "r4"], "severity": [3, 3, 3, 1]})
    plan = plan_month(facts, actions, support, one_area_team(), "2026-04")
    mp = plan.month_plan.set_index("store")
    assert mp["status"].to_dict() == {"S3": "planned", "S1": "planned",
                                      "S2": "not supported by tier", "S4": "not supported by tier"}
    assert mp.loc["S1", "actions"] == "RECTIFY"
    assert mp.loc["S3", "judge_kpis"] == "sales;transactions"
    assert mp.loc["S1", "judge_kpis"] == "sales"
    assert mp.loc["S2", "reason"] == "tier C without a fired action (visits from severity 3): " \
        "let go (width)"
    assert mp.loc["S4", "reason"] == "tier A without a fired action (visits from severity 1): " \
        "let go (width)"
    assert plan.unserved[["action_id", "cause", "reason"]].values.tolist() == [
        ["r1", "breadth",
         "breadth: action 'PROMO_PLAN' is not in tier C's support content (RECTIFY, ROUTINE)"],
        ["r3", "breadth",
         "breadth: action 'VISUAL' is not in tier C's support content (RECTIFY, ROUTINE)"]]


def test_support_from_value_chain_levels():
    from types import SimpleNamespace

    levels = [SimpleNamespace(id="A", priority=3, supported=True, min_severity=1,
                              breadth=("VISUAL", "RECTIFY"), visits_per_month=4,
                              judge_kpis=("sales_per_day", "avg_ticket")),
              SimpleNamespace(id="C", priority=1, supported=True, min_severity=3,
                              breadth=("RECTIFY",), visits_per_month=1,
                              judge_kpis=("sales_per_day",))]
    support = support_from_levels(levels)
    assert support.drop(columns=["max_actions", "hours_per_visit"]).values.tolist() == [
        ["A", True, 1, 4, "sales_per_day;avg_ticket", 3.0, "VISUAL;RECTIFY"],
        ["C", True, 3, 1, "sales_per_day", 1.0, "RECTIFY"]]
    facts = pd.DataFrame({"store": ["S1", "S2"], "tier": ["A", "C"]})
    actions = pd.DataFrame({"store": ["S1", "S2"], "action": ["VISUAL", "VISUAL"],
                            "action_id": ["r1", "r2"], "severity": [2, 3]})
    plan = plan_month(facts, actions, support, one_area_team(), "2026-04")
    assert plan.month_plan["status"].tolist() == ["planned", "not supported by tier"]
    assert plan.unserved["cause"].tolist() == ["breadth"]


def test_unsupported_tier_and_zero_visits():
    support = default_support()
    support.loc[support["tier"] == "B", "supported"] = False
    support.loc[support["tier"] == "C", ["visits_per_month", "min_severity"]] = [0, 0]
    facts = pd.DataFrame({"store": ["S1", "S2"], "tier": ["B", "C"]})
    actions = pd.DataFrame({"store": ["S1", "S2"], "action": ["X", "Y"],
                            "action_id": ["r1", "r2"], "severity": [3, 3]})
    plan = plan_month(facts, actions, support, one_area_team(), "2026-04")
    assert plan.month_plan[["store", "status", "visits_required"]].values.tolist() == [
        ["S1", "not supported by tier", 0], ["S2", "not supported by tier", 0]]
    assert plan.unserved["reason"].tolist() == [
        "tier B is not supported (width): let go", "tier C gets no visits per month (depth)"]


def test_routed_days_follow_the_router_and_fit_the_day():
    team = load_team(DATA / "routed.yaml")
    facts = pd.DataFrame({"store": ["A1", "A2", "B1", "B2", "C1"], "tier": ["C"] * 5})
    actions = pd.DataFrame({"store": facts["store"], "action": ["FIX"] * 5,
                            "action_id": [f"r{i}" for i in range(5)], "severity": [3] * 5})
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    ws = plan.week_schedule
    assert len(ws) == 5 and plan.unserved.empty
    coords = [(0, 0), (1, 0), (10, 0), (11, 0), (12, 0), (0, 0)]  # stores, then S1's home
    matrix = routing.travel_minutes(coords, 1.5, 30)
    index = {"A1": 0, "A2": 1, "B1": 2, "B2": 3, "C1": 4}
    for _, day in ws.groupby("date"):
        stops = [index[s] for s in day.sort_values("stop_seq")["store"]]
        expected = routing.route_length(matrix, 5, stops) + 60 * len(stops)
        assert day["day_minutes"].iloc[0] == pytest.approx(expected, abs=0.1)
        assert day["day_minutes"].iloc[0] <= 480
        # the first leg is from home
        assert day["travel_minutes"].iloc[0] == pytest.approx(matrix[5, stops[0]], abs=0.1)


def test_routed_team_without_home_starts_at_a_store():
    stores = {"A": Site("A", "n", 0.0, 0.0), "B": Site("B", "n", 3.0, 0.0),
              "C": Site("C", "n", 6.0, 0.0)}
    team = Team("t", (Supervisor("P", "P", ("n",)),), 8.0, (0,), 60.0,
                Travel("coordinates", road_factor=1.0, speed_kmh=60.0), stores)
    facts = pd.DataFrame({"store": ["B", "A", "C"], "tier": ["C"] * 3})
    actions = pd.DataFrame({"store": ["B", "A", "C"], "action": ["FIX"] * 3,
                            "action_id": ["r1", "r2", "r3"], "severity": [3, 3, 3]})
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    day = plan.week_schedule
    # equal priority: A is booked first (store id), so the day starts there, no way from home
    assert day["store"].tolist() == ["A", "B", "C"]
    assert day["travel_minutes"].tolist() == [0.0, 3.0, 3.0]
    assert day["day_minutes"].iloc[0] == pytest.approx(
        day["travel_minutes"].sum() + 60 * len(day))


def test_routed_store_without_coordinates_is_unserved():
    stores = {"A": Site("A", "n", 0.0, 0.0), "B": Site("B", "n")}
    team = Team("t", (Supervisor("P", "P", ("n",)),), 8.0, (0,), 60.0,
                Travel("coordinates", road_factor=1.0, speed_kmh=60.0), stores)
    facts = pd.DataFrame({"store": ["A", "B"], "tier": ["C", "C"]})
    actions = pd.DataFrame({"store": ["A", "B"], "action": ["FIX"] * 2,
                            "action_id": ["r1", "r2"], "severity": [3, 3]})
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    assert plan.week_schedule["store"].tolist() == ["A"]
    assert plan.unserved[["store", "kind", "cause", "reason"]].values.tolist() == [
        ["B", "visit", "area", "store has no coordinates in the stores file"],
        ["B", "action", "area", "store has no coordinates in the stores file"]]


@pytest.mark.parametrize(("change", "message"), [
    (lambda f, a, s: (f.drop(columns="tier"), a, s), "facts: missing column 'tier'"),
    (lambda f, a, s: (f, a.drop(columns="severity"), s), "actions: missing column 'severity'"),
    (lambda f, a, s: (f, a, s.drop(columns="weight")), "support: missing column 'weight'"),
    (lambda f, a, s: (f, a, s[s["tier"] != "C"]),
     "support: no row for tier 'C' (tiers in the facts: A, B, C)"),
    (lambda f, a, s: (f[f["store"] != "X9"], a, s), "actions: store 'X9' is not in the facts"),
    (lambda f, a, s: (pd.concat([f, f.head(1)]), a, s), "facts: store 'A1' has more than one row"),
    (lambda f, a, s: (f, a.assign(severity=[3, 2, 1, 1, 2, 1, 3, 0, None]), s),
     "actions: severity must be 1, 2 or 3, got 0.0 (action_id 'R1.5.1'; 2 row(s) like this)"),
    (lambda f, a, s: (f, a, pd.concat([s, s.head(1)])),
     "support: tier 'A' has more than one row"),
    (lambda f, a, s: (f, a, s.assign(visits_per_month=[4, -1, 1])),
     "support: tier 'B': visits_per_month must be a whole number 0 or more, got -1"),
])
def test_input_errors(change, message):
    facts, actions = frames()
    facts, actions, support = change(facts, actions, default_support())
    team = load_team(DATA / "two_areas.yaml")
    with pytest.raises((ErrorList, InputError)) as info:
        plan_month(facts, actions, support, team, "2026-04")
    assert str(info.value) == message


@pytest.mark.parametrize("month", ["2026-4", "April", "2026-13"])
def test_bad_month(month):
    facts, actions = frames()
    with pytest.raises(InputError) as info:
        plan_month(facts, actions, default_support(), one_area_team(), month)
    assert str(info.value) == f"month: expected YYYY-MM, got '{month}'"


def test_no_working_day_is_a_reason():
    team = Team("t", (Supervisor("P", "P", ("n",)),), 8.0, (0,), 60.0,
                Travel("constant", 0.0), {"S1": Site("S1", "n")},
                public_holidays=frozenset(dt.date(2026, 4, d) for d in (6, 13, 20, 27)))
    facts = pd.DataFrame({"store": ["S1"], "tier": ["C"]})
    actions = pd.DataFrame({"store": ["S1"], "action": ["X"], "action_id": ["r"],
                            "severity": [3]})
    plan = plan_month(facts, actions, default_support(), team, "2026-04")
    assert plan.unserved["reason"].tolist() == [
        "no working day in 2026-04 (weekdays and public holidays)",
        "no visit to the store fit (see its unserved visits)"]


def test_write_plan_writes_three_csv_files(plan, tmp_path):
    written = write_plan(plan, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "month_plan.csv", "unserved.csv", "week_schedule.csv"]
    back = pd.read_csv(written["week_schedule"], dtype=str, keep_default_na=False)
    assert back["action_ids"].tolist()[0] == "R1.1.1;R1.1.2;R1.1.3"
    assert len(pd.read_csv(written["unserved"])) == len(plan.unserved)
    assert list(pd.read_csv(written["month_plan"]).columns) == list(MONTH_PLAN_COLUMNS)


def test_write_plan_refuses_a_file_as_folder(plan, tmp_path):
    (tmp_path / "out").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="--out must be a folder"):
        write_plan(plan, tmp_path / "out")


def test_docs_name_every_public_function():
    import inspect

    from storeops.engine import planning

    doc = (ROOT / "docs" / "planning.md").read_text(encoding="utf-8")
    public = [name for name, obj in vars(planning).items()
              if inspect.isfunction(obj) and not name.startswith("_")
              and obj.__module__ == planning.__name__]
    assert len(public) >= 9
    for name in public:
        assert f"`{name}(" in doc, name

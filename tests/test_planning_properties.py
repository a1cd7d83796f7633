"""Properties of the scheduler over random teams and demands (hypothesis).

Nothing is dropped silently: every required visit is scheduled or listed as unserved, and every
fired action is done on a scheduled visit or listed as unserved, exactly once. And the plan fits
the team: no supervisor-day runs over its hours, travel and the way home included.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.engine import routing
from storeops.engine.planning import Site, Supervisor, Team, Travel, plan_month

AREAS = ["a", "b", "c", "d"]  # "d" has no supervisor


@st.composite
def scenarios(draw):
    coordinates = draw(st.booleans())
    n_supervisors = draw(st.integers(1, 3))
    supervisors = []
    for i in range(n_supervisors):
        areas = draw(st.lists(st.sampled_from(AREAS[:3]), min_size=1, max_size=3, unique=True))
        home = None
        if coordinates and draw(st.booleans()):
            home = (draw(st.floats(0, 30)), draw(st.floats(0, 30)))
        supervisors.append(Supervisor(f"P{i}", f"P{i}", tuple(areas), home))
    hours = draw(st.floats(0.5, 10))
    working = tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1))))
    month = draw(st.sampled_from(["2026-02", "2026-04", "2026-12"]))
    year, number = map(int, month.split("-"))
    holidays = frozenset(dt.date(year, number, d)
                         for d in draw(st.sets(st.integers(1, 28), max_size=6)))
    visit = draw(st.floats(10, 120))
    if coordinates:
        travel = Travel("coordinates", road_factor=draw(st.floats(1, 2)),
                        speed_kmh=draw(st.floats(10, 80)))
    else:
        travel = Travel("constant", draw(st.floats(0, 60)), draw(st.floats(0, 60)))
    n_stores = draw(st.integers(0, 18))
    sites, facts, actions = {}, [], []
    for i in range(n_stores):
        store = f"S{i}"
        where = draw(st.sampled_from([*AREAS, None, "missing"]))
        if where != "missing":
            sites[store] = Site(store, where, draw(st.floats(0, 30)), draw(st.floats(0, 30)))
        facts.append({"store": store, "tier": draw(st.sampled_from("ABC")),
                      "sales_yoy": draw(st.one_of(st.just(math.nan), st.floats(-0.5, 0.5)))})
        for k in range(draw(st.integers(0, 4))):
            actions.append({"store": store, "action": f"X{k}", "action_id": f"R1.{i}.{k}",
                            "severity": draw(st.integers(1, 3)),
                            "effort_hours": draw(st.floats(0, 3))})
    support = pd.DataFrame([{
        "tier": tier, "supported": draw(st.booleans()) or tier == "A",
        "min_severity": draw(st.integers(0, 3)), "visits_per_month": draw(st.integers(0, 6)),
        "max_actions": draw(st.one_of(st.just(math.nan), st.integers(1, 3))),
        "hours_per_visit": draw(st.one_of(st.just(math.nan), st.floats(0.5, 3))),
        "judge_kpis": "sales_yoy", "weight": weight,
        "breadth": draw(st.sampled_from(["", "X0;X1", "X2"]))}
        for tier, weight in (("A", 3.0), ("B", 2.0), ("C", 1.0))])
    team = Team("t", tuple(supervisors), hours, working, visit, travel, sites,
                public_holidays=holidays)
    columns = ["store", "action", "action_id", "severity", "effort_hours"]
    return (pd.DataFrame(facts, columns=["store", "tier", "sales_yoy"]),
            pd.DataFrame(actions, columns=columns), support, team, month)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_nothing_is_dropped_and_no_day_runs_over(scenario):
    facts, actions, support, team, month = scenario
    plan = plan_month(facts, actions, support, team, month)
    mp, ws, un = plan.month_plan, plan.week_schedule, plan.unserved

    # every store of the analysis is in the month plan once
    assert sorted(mp["store"]) == sorted(facts["store"])
    # every required visit is scheduled or unserved, store by store
    unserved_visits = un[un["kind"] == "visit"]
    assert mp["visits_required"].sum() == len(ws) + len(unserved_visits)
    scheduled = Counter(ws["store"])
    left = Counter(unserved_visits["store"])
    for row in mp.itertuples():
        assert row.visits_planned == scheduled.get(row.store, 0)
        assert row.visits_required == row.visits_planned + left.get(row.store, 0)
    # every fired action exactly once: on a scheduled visit or in unserved
    done = [a for ids in ws["action_ids"] for a in ids.split(";") if a]
    not_done = un.loc[un["kind"] == "action", "action_id"].tolist()
    assert sorted(done + not_done) == sorted(actions["action_id"])
    assert all(un["reason"].str.len() > 0)

    budget = team.hours_per_day * 60
    for (sup_id, date), day in ws.groupby(["supervisor", "date"]):
        sup = next(s for s in team.supervisors if s.id == sup_id)
        day = day.sort_values("stop_seq")
        assert day["stop_seq"].tolist() == list(range(1, len(day) + 1))
        assert day["store"].is_unique
        assert set(day["area"]) <= set(sup.areas)
        assert dt.date.fromisoformat(date).weekday() in team.working_days
        assert dt.date.fromisoformat(date) not in team.public_holidays
        # recompute the day: travel to each stop, the visits, and the way home
        stores = day["store"].tolist()
        if team.travel.mode == "constant":
            back = team.travel.minutes_from_home
        elif sup.home is not None:
            last = team.stores[stores[-1]]
            back = float(routing.travel_minutes(
                [(last.x_km, last.y_km), sup.home], team.travel.road_factor,
                team.travel.speed_kmh)[0, 1])
        else:
            back = 0.0
        total = day["travel_minutes"].sum() + team.visit_minutes * len(day) + back
        assert abs(total - day["day_minutes"].iloc[0]) < 0.1 * (len(day) + 1)
        assert day["day_minutes"].iloc[0] <= budget + 1e-6
        arrive = day["arrive"].tolist()
        assert arrive == sorted(arrive)
    # a store is never visited twice on one day
    assert not ws.duplicated(["store", "date"]).any()
    # the plan does not depend on the order of the input rows
    again = plan_month(facts.iloc[::-1], actions.iloc[::-1], support.iloc[::-1], team, month)
    pd.testing.assert_frame_equal(again.week_schedule, ws)
    pd.testing.assert_frame_equal(again.unserved, un)
    pd.testing.assert_frame_equal(again.month_plan, mp)

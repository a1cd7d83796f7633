"""The region model's parts, with known answers: lost sales, fix attempts, KPI facts, diagnosis
through the real value-chain pack, day plans per policy, and what policies change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from storeops.engine import simulation
from storeops.engine.packs import load_pack
from storeops.engine.scenario import load_scenario
from storeops.engine.simulation import Decider, Need, Problem, _attempt, _lost_sales, _Model
from storeops.engine.trail import open_trail, read_trail
from storeops.engine.workflow import register, start_case

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "sim"
DAY = 1440.0


class FakeStore:
    daily_sales = 1000.0


def problem(start_day, end_day, traffic=0.0, conversion=0.0, ticket=0.0):
    p = Problem(0, 0, start_day * DAY, 1.0, (traffic, conversion, ticket, 0.0, 0.0), True,
                math.inf, 0.5)
    p.end = end_day * DAY
    return p


def test_lost_sales_is_the_integral_of_the_eroded_share():
    # 10 % of traffic lost for 2 days: 200; then a second problem (20 % of ticket) overlaps
    # for 1 day: 1 - 0.9 * 0.8 = 0.28 that day, 0.2 on its own day after
    one = problem(1, 4, traffic=0.1)
    two = problem(3, 5, ticket=0.2)
    lost = _lost_sales([FakeStore()], [[one, two]], 0.0, 10 * DAY, actual=True)
    assert lost == pytest.approx(1000 * (0.1 * 2 + 0.28 * 1 + 0.2 * 1))
    # the observation window cuts the integral: from day 2 to day 3.5 only
    assert _lost_sales([FakeStore()], [[one, two]], 2 * DAY, 3.5 * DAY, actual=True) == \
        pytest.approx(1000 * (0.1 * 1 + 0.28 * 0.5))
    # left alone, a problem lasts until the store fixes it itself (here: never, so to the end)
    assert _lost_sales([FakeStore()], [[one]], 0.0, 10 * DAY, actual=False) == \
        pytest.approx(1000 * 0.1 * 9)


def test_fix_attempts_share_one_uniform():
    p = problem(0, math.inf)  # fix_u = 0.5
    _attempt(p, 0.3, 10.0, 60.0)  # P(fixed by now) = 0.3 < 0.5: not yet
    assert p.fixed_at is None
    _attempt(p, 0.3, 20.0, 60.0)  # 1 - 0.7 * 0.7 = 0.51 > 0.5: fixed, sales back an hour later
    assert p.fixed_at == 20.0
    assert p.end == 80.0


@pytest.fixture(scope="module")
def small():
    return load_scenario(DATA / "small.yaml")


def model(scenario, policy="reactive"):
    m = _Model(scenario, scenario.policy(policy), 1, 0, None, False)
    m.value_chain = Decider(scenario.value_chain_pack, None)
    m.kzb = Decider(scenario.kzb_pack, None)
    m._full_travel = None
    m.effort_by_role = {}
    m.store_problems = [[] for _ in m.stores]
    m.problem_starts = [[] for _ in m.stores]
    m.needs, m.store_needs = [], {}
    m.problem_kinds = scenario.problems
    m._need_effort = {"N06": 0.25, "N13": 0.5}
    return m


def test_kpi_fact_reflects_the_open_problems(small):
    m = model(small)
    p = Problem(0, 0, 40 * DAY, 0.5, (0.1, 0.0, 0.04, 0.0, 0.0), True, math.inf, 0.9)
    m.store_problems[0] = [p]
    m.problem_starts[0] = [p.start]
    store = small.stores[0]
    fact = m.kpi_fact(0, 50 * DAY)
    assert fact["store"] == store.id and fact["tier"] == store.tier
    assert fact["period"] == "2026-02"  # day 50 from 2026-01-05
    assert fact["transactions_yoy"] == pytest.approx(-0.1)
    assert fact["ticket_yoy"] == pytest.approx(-0.04)
    assert fact["sales_yoy"] == pytest.approx(0.9 * 0.96 - 1)
    assert fact["sales_mom"] == pytest.approx(0.9 * 0.96 - 1)  # 30 days ago: no problem yet
    assert fact["transactions"] == round(store.traffic * store.conversion * 0.9 * 30)
    before = m.kpi_fact(0, 39 * DAY)
    assert before["sales_yoy"] == 0.0


def test_diagnosis_through_the_real_value_chain_pack(tmp_path):
    """A traffic problem shows as fewer transactions: the pack's CU1 asks for training, with
    the tier's threshold filled in, and the trail holds the firing with its inputs."""
    with open_trail(tmp_path / "t.sqlite", clock="sim") as trail:
        vc = Decider(str(ROOT / "rules" / "value_chain.yaml"), trail)
        fact = vc.fact({"store_period": "S1@2026-02", "store": "S1", "tier": "A",
                        "period": "2026-02", "sales": 900000.0, "transactions": 2700,
                        "traffic": 9000, "open_days": 30, "days": 30, "promo_days": 6,
                        "new_arrival_sales": 250000.0, "promo_uplift": 0.2,
                        "sales_mom": -0.1, "sales_yoy": -0.1, "transactions_mom": -0.1,
                        "transactions_yoy": -0.1, "ticket_mom": 0.0, "ticket_yoy": 0.0})
        assert fact["transactions_drop_limit"] == -0.06  # tier A
        chosen = vc.decide(fact, 72000.0)
    assert ("TRAINING", 2.0) in chosen
    assert ("MERCH", 2.0) in chosen  # SA1: daily sales down 10 % on last year
    # the pack's support width: "let go of the small" (C stores only for severity 3)
    assert vc.width["C"] == (True, 3)
    assert vc.width["A"][1] <= 1 and vc.width["B"][1] <= 1
    records = list(read_trail(tmp_path / "t.sqlite"))
    cu1 = next(r for r in records if r["rule_id"] == "CU1")
    assert cu1["ts"] == 72000.0
    assert cu1["subject"] == "S1@2026-02"
    inputs = cu1["inputs"] if isinstance(cu1["inputs"], dict) else json.loads(cu1["inputs"])
    assert inputs["transactions_yoy"] == -0.1
    assert cu1["pack_id"] == "value_chain"
    assert "classify" not in {r["table_id"] for r in records}  # the scenario gives the tier


def place_of(m, stores):
    """(row of each store, minutes as lists, base row) for a made-up territory of ``stores``."""
    from storeops.engine.routing import travel_minutes

    points = [(m.stores[s].x_km, m.stores[s].y_km) for s in stores] + [(30.0, 20.0)]
    cost = travel_minutes(points, 1.3, 40).tolist()
    return {s: i for i, s in enumerate(stores)}, cost, len(stores)


def requests_for(m, stores_and_days):
    out = []
    for s, day in stores_and_days:
        need = Need(s, "N06", day * DAY)
        out.append((need.arrival, 1, need))
    return out


def test_day_plan_first_come_first_served_versus_focus_on_the_big(small):
    # stores 0 (C) and 7 (A): the C store asked first
    fcfs = model(small, "reactive")
    team = small.supervisors
    requests = requests_for(fcfs, [(0, 1.0), (7, 2.0)])
    # both stores in one territory for this test
    place = place_of(fcfs, [0, 7])
    plan = fcfs._plan(team, fcfs.policy, requests, {}, 3 * DAY, 3, place, 60.0, 1.0)
    assert plan[0] == 0
    big = model(small, "focus_on_big")
    plan = big._plan(team, big.policy, requests, {}, 3 * DAY, 3, place, 60.0, 1.0)
    assert plan[0] == 7
    # an hour's day holds one visit at most; eight hours hold both
    assert len(plan) == 1
    assert sorted(big._plan(team, big.policy, requests, {}, 3 * DAY, 3, place, 480.0, 1.0)) \
        == [0, 7]


def test_day_plan_on_the_cycle_keeps_room_for_urgent_requests(small):
    m = model(small, "cycle_135")
    team = small.supervisors  # 8 visits a day at most; urgent_share 0.4: 4 urgent places
    due = {s: float(s) for s in range(20)}  # store s is due on day s
    # six C stores asked for help, the oldest request first
    urgent = [(39, 0.5), (37, 1.0), (36, 1.5), (35, 2.0), (28, 2.5), (27, 3.0)]
    requests = requests_for(m, urgent)
    place = place_of(m, sorted({*due, *(s for s, _ in urgent)}))
    plan = m._plan(team, m.policy, requests, due, 5 * DAY, 5, place, 10_000.0, 1.0)
    assert plan == [39, 37, 36, 35,  # urgent first, up to the quota (ceil(0.4 * 8))
                    0, 1, 2, 3]      # then the planned visits due by day 5, most overdue first


def test_planned_visits_find_unreported_problems(small):
    """Common random numbers make the paired difference tight: the 135 cycle loses less."""
    reps = [simulation.run_replication(small, policy, 7, r)
            for policy in ("reactive", "cycle_135") for r in range(3)]
    _, differences = simulation.summarise(reps, ["reactive", "cycle_135"])
    lost = next(i for m, p, v, i in differences if m == "sales_lost")
    assert lost.high < 0
    visits = next(i for m, p, v, i in differences if m == "visits_per_day.supervisor")
    assert visits.low > 0


def test_shared_workflow_registration_gives_the_same_trail(tmp_path):
    flow = load_pack(ROOT / "rules" / "order_fulfilment.yaml").workflow
    texts = []
    for shared in (False, True):
        path = tmp_path / f"{shared}.jsonl"
        with open_trail(path, clock="sim") as trail:
            keys = register(flow, trail) if shared else None
            for i in range(3):
                case = start_case(flow, f"O{i}", {"stock_ok": i != 1, "inbound_arrived": True,
                                                   "mergeable": False, "has_remarks": False,
                                                   "special": False},
                                  trail, ts=float(i), keys=keys)
                case.run(float(i) + 0.5)
        texts.append(path.read_bytes())
    assert texts[0] == texts[1]
    assert texts[0].count(b"\n") > 10


class Scripted:
    """A stand-in generator: exponential() returns the scripted values in turn."""

    def __init__(self, values):
        self.values = list(values)

    def exponential(self, scale):
        return self.values.pop(0) if self.values else 10**9

    def random(self):
        return 0.0


def test_order_desk_opening_hours_known_answers():
    """One clerk, open 08:00-18:00 on weekdays, 30-minute services. Orders at 07:00 (waits an
    hour), 17:50 (served until 18:20: work in hand is finished), 17:55 (waits for Tuesday
    08:00) and Saturday 09:00 (waits for Monday 08:00)."""
    import simpy

    from storeops.engine.orderdesk import OrderDesk

    flow = load_pack(DATA / "mmc_pack.yaml").workflow
    arrivals = [7 * 60, 17 * 60 + 50 - 7 * 60, 5, 5 * DAY + 9 * 60 - (17 * 60 + 55)]
    streams = {"orders": Scripted(arrivals), "service/serve": Scripted([30.0] * 10)}
    env = simpy.Environment()
    desk = OrderDesk(env, flow, rate_per_day=1.0, staff={"clerk": 1}, attributes={},
                     on_finish={}, rngs=lambda name: streams.get(name, Scripted([])),
                     warmup=0.0, horizon=10 * DAY, keep_orders=True,
                     open_hours=(8 * 60.0, 18 * 60.0, (0, 1, 2, 3, 4)), first_weekday=0)
    desk.start()
    env.run(until=10 * DAY)
    trace = [(number, arrival, end) for number, arrival, end, _, _ in desk.stats.orders]
    assert trace == [
        (1, 7 * 60, 8 * 60 + 30),
        (2, 17 * 60 + 50, 18 * 60 + 20),
        (3, 17 * 60 + 55, DAY + 8 * 60 + 30),
        (4, 5 * DAY + 9 * 60, 7 * DAY + 8 * 60 + 30),
    ]
    # open 10 hours on each of the 8 weekdays of the 10 days (Monday to Wednesday a week later)
    assert desk.open_minutes() == 8 * 600


def test_a_region_with_a_travel_matrix_runs_from_the_office(tmp_path):
    """Two stores 10 and 20 minutes from the office, 15 minutes apart; every problem reported:
    the supervisor starts from the office (the matrix's last row) and fixes them."""
    text = f"""\
scenario: {{id: tiny, horizon_days: 30, replications: 1, seed: 1}}
packs:
  value_chain: {DATA / 'value_chain_test.yaml'}
region:
  stores:
    - {{id: S1, tier: A}}
    - {{id: S2, tier: B}}
  travel:
    matrix:
      - [0, 15, 10]
      - [15, 0, 20]
      - [10, 20, 0]
kpis:
  A: {{traffic_per_day: 100, conversion: 0.2, ticket: 100}}
  B: {{traffic_per_day: 100, conversion: 0.2, ticket: 100}}
  C: {{traffic_per_day: 100, conversion: 0.2, ticket: 100}}
problems:
  - {{step: promotion, rate_per_year: 60, severity: {{low: 0.5, high: 0.5}},
     erodes: {{traffic: 0.2}}, reported_share: 1, fixed_by: [VC_TRAFFIC],
     fix_probability: 1, recovery_days: 0}}
team:
  supervisors: {{count: 1, visit_minutes: 30}}
policies:
  reactive: {{requests: fcfs}}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    rep = simulation.run_replication(scenario, "reactive", 1, 0)
    assert rep.metric("problems") > 3
    assert rep.metric("problems_fixed_share") > 0.5
    visits = rep.metric("visits_per_day.supervisor")
    assert 0 < visits <= 2
    assert 0 < rep.metric("travel_share.supervisor") < 1


def test_cases_without_decisions_move_exactly_as_with_them():
    """decisions=False (the simulation with the trail off) skips only the decision records."""
    import random

    flow = load_pack(ROOT / "rules" / "order_fulfilment.yaml").workflow
    names = ["stock_ok", "inbound_arrived", "mergeable", "has_remarks", "remarks_applied",
             "special", "special_marked", "verified", "needs_installation", "cancelled"]
    pick = random.Random(8)
    moved = blocked = 0
    for i in range(300):
        attributes = {n: pick.choice([True, False, None]) for n in names}
        full = start_case(flow, i, attributes)
        lean = start_case(flow, i, attributes, decisions=False)
        for step in range(12):
            update = {n: pick.choice([True, False]) for n in pick.sample(names, 2)}
            a = full.advance(float(step), dict(update))
            b = lean.advance(float(step), dict(update))
            assert (a.status, a.source, a.target, a.transition) == \
                (b.status, b.source, b.target, b.transition)
            assert b.decisions == ()
            moved += a.status == "moved"
            blocked += a.status == "blocked"
        assert full.history == lean.history
    assert moved > 500 and blocked > 100  # both kinds of step were compared


def test_simulated_decisions_leave_the_trail_records_of_a_real_run(tmp_path):
    """The same fact through `storeops run`'s path (api.evaluate) and through a visit's
    Decider gives the same trail records, but for the clock."""
    from storeops.engine.api import evaluate

    pack_path = DATA / "value_chain_test.yaml"
    fact = {"store": "S1", "tier": "A", "period": "2026-02", "sales": 1000.0,
            "transactions": 10, "open_days": 30, "promo_days": 2, "sales_mom": -0.1,
            "sales_yoy": -0.1, "transactions_mom": -0.1, "transactions_yoy": -0.1,
            "ticket_mom": -0.06, "ticket_yoy": -0.06}
    with open_trail(tmp_path / "real.jsonl") as trail:
        evaluate(load_pack(pack_path), [fact], trail=trail, engine="row")
    with open_trail(tmp_path / "sim.jsonl", clock="sim") as trail:
        decider = Decider(str(pack_path), trail)
        chosen = decider.decide(decider.fact(fact), 1234.5)
    real = list(read_trail(tmp_path / "real.jsonl"))
    simulated = list(read_trail(tmp_path / "sim.jsonl"))
    assert [r["rule_id"] for r in real] == ["D2"]  # ticket down: D1 needs ticket_yoy > drop
    assert chosen == [("VC_TICKET", 1.0)]
    assert simulated[0]["ts"] == 1234.5
    for record in (*real, *simulated):
        record.pop("ts")
    assert simulated == real

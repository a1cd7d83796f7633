"""Validity of the simulation: answers known from theory or from an independent hand-written model.

- the order desk reduced to M/M/c matches Erlang C's mean wait within the 95 % interval;
- fed the same random numbers, it gives exactly the waits of a plain SimPy M/M/c model;
- Little's law holds on its outputs;
- the same scenario and seed give identical outputs and trail bytes, whatever the order in which
  replications run; policies share their arrivals (common random numbers);
- a scenario can take stage durations fitted by the order replay.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import simpy

from storeops.engine import simulation
from storeops.engine.replay import fit_hours
from storeops.engine.scenario import load_scenario
from storeops.engine.simulation import run_jobs, run_replication, run_scenario, stream, summarise

DATA = Path(__file__).parent / "data" / "sim"


def erlang_c_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C), in the units of 1 / arrival_rate."""
    a = arrival_rate / service_rate
    rho = a / servers
    top = a**servers / math.factorial(servers) / (1.0 - rho)
    bottom = sum(a**k / math.factorial(k) for k in range(servers)) + top
    return (top / bottom) / (servers * service_rate - arrival_rate)


def test_erlang_c_formula_known_values():
    # M/M/1: Wq = rho / (mu - lambda); c = 2, a = 1.2: C = 0.45, Wq = 0.45 / 0.08
    assert erlang_c_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert erlang_c_wait(0.12, 0.1, 2) == pytest.approx(5.625)


@pytest.fixture(scope="module")
def mmc():
    return load_scenario(DATA / "mmc.yaml")


@pytest.fixture(scope="module")
def mmc_run(mmc):
    return run_scenario(mmc)


def test_mmc_mean_wait_matches_erlang_c(mmc, mmc_run):
    theory = erlang_c_wait(172.8 / 1440.0, 1 / 10.0, 2)  # minutes
    interval = mmc_run.interval("order_queue_hours.serve", "reactive")
    low, high = interval.low * 60.0, interval.high * 60.0
    assert low <= theory <= high, (low, theory, high)
    # the interval is tight enough for the check to mean something
    assert (high - low) / 2.0 < 0.1 * theory
    assert interval.n == mmc.replications


def test_mmc_utilisation_is_rho(mmc_run):
    interval = mmc_run.interval("utilisation.clerk", "reactive")
    assert interval.low <= 0.6 <= interval.high


def test_littles_law_on_the_order_desk(mmc_run):
    for rep in mmc_run.replications:
        backlog = rep.metric("order_backlog_mean")
        arrivals = rep.metric("order_arrivals_per_hour")
        lead = rep.metric("order_lead_hours_mean")
        assert backlog == pytest.approx(arrivals * lead, rel=0.02)


def test_littles_law_on_the_full_workflow():
    scenario = load_scenario(DATA / "small.yaml")
    rep = run_replication(scenario, "reactive", scenario.seed, 0)
    backlog = rep.metric("order_backlog_mean")
    assert backlog > 5  # a real queueing network: several orders in the system on average
    assert backlog == pytest.approx(rep.metric("order_arrivals_per_hour")
                                    * rep.metric("order_lead_hours_mean"), rel=0.05)


def plain_mmc(seed: int, replication: int, rate_per_day: float, mean_service: float,
              servers: int, horizon: float) -> dict[int, float]:
    """A hand-written SimPy M/M/c, fed from the same streams as storeops' order desk."""
    env = simpy.Environment()
    arrivals = stream(seed, replication, "orders")
    service = stream(seed, replication, "service/serve")
    clerks = simpy.Resource(env, capacity=servers)
    waits: dict[int, float] = {}

    def customer(i):
        arrived = env.now
        with clerks.request() as request:
            yield request
            waits[i] = env.now - arrived
            yield env.timeout(service.exponential(mean_service))

    def source():
        i = 0
        while True:
            yield env.timeout(arrivals.exponential(1440.0 / rate_per_day))
            if env.now >= horizon:
                return
            i += 1
            env.process(customer(i))

    env.process(source())
    env.run(until=horizon)
    return waits


@pytest.mark.parametrize("replication", [0, 3])
def test_same_random_numbers_give_exactly_the_plain_simpy_waits(mmc, replication):
    rep = run_replication(mmc, "reactive", 99, replication, keep_orders=True)
    plain = plain_mmc(99, replication, 172.8, 10.0, 2, mmc.horizon_days * 1440.0)
    ours = {number: waits["serve"] for number, _, _, _, waits in rep.orders}
    assert len(ours) > 4000
    # every order storeops completed waited exactly as long as in the plain model
    assert all(ours[i] == plain[i] for i in ours)
    assert sum(1 for w in ours.values() if w > 0) > 1000  # plenty of real queueing


def test_same_seed_gives_identical_results_and_trails_in_any_order(tmp_path):
    scenario = load_scenario(DATA / "small.yaml").with_changes(horizon_days=12.0,
                                                                warmup_days=2.0)
    jobs = simulation.replication_jobs(scenario, ("reactive", "cycle_135"), 2)
    forward_dir, backward_dir = tmp_path / "forward", tmp_path / "backward"
    forward_dir.mkdir()
    backward_dir.mkdir()
    forward = run_jobs(scenario, jobs, 5, trail_dir=forward_dir)
    backward = run_jobs(scenario, list(reversed(jobs)), 5, trail_dir=backward_dir)
    assert forward == list(reversed(backward))
    names = sorted(p.name for p in forward_dir.iterdir())
    assert names == sorted(p.name for p in backward_dir.iterdir()) and len(names) == 4
    for name in names:
        assert (forward_dir / name).read_bytes() == (backward_dir / name).read_bytes()
    # and a different seed gives different results (the check above is not vacuous)
    other = run_jobs(scenario, jobs[:1], 6)
    assert other[0].metrics != forward[0].metrics


def test_policies_share_arrivals_common_random_numbers():
    scenario = load_scenario(DATA / "small.yaml")
    reactive = run_replication(scenario, "reactive", 3, 1)
    cycle = run_replication(scenario, "cycle_135", 3, 1)
    same = ("problems", "needs", "orders", "sales_lost_unattended", "sales_baseline",
            "order_lead_hours_mean")
    for name in same:
        assert reactive.metric(name) == cycle.metric(name), name
    assert reactive.metric("sales_lost") != cycle.metric("sales_lost")


def test_streams_are_independent_of_each_other_and_stable():
    a1 = stream(1, 0, "orders").random(3)
    a2 = stream(1, 0, "orders").random(3)
    b = stream(1, 0, "needs/S00001").random(3)
    c = stream(1, 1, "orders").random(3)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, b)
    assert not np.array_equal(a1, c)
    # the leaf is the seed tree's node (seed) -> (replication) -> (source)
    key = simulation.source_key("orders")
    direct = np.random.Generator(np.random.PCG64(np.random.SeedSequence(1, spawn_key=(0, key))))
    assert np.array_equal(direct.random(3), a1)


def test_fitted_durations_from_the_replay_replace_the_pack(tmp_path):
    hours = np.random.default_rng(4).exponential(0.5, size=4000)  # 30 minutes on average
    fitted = {"serve_stage": {"states": ["serve"], "observation": "observed", **fit_hours(hours)},
              "total": {"states": [], "observation": "observed", **fit_hours(hours)}}
    (tmp_path / "durations.json").write_text(json.dumps(fitted), encoding="utf-8")
    text = (DATA / "mmc.yaml").read_text(encoding="utf-8")
    text = text.replace("orders: mmc_pack.yaml", f"orders: {DATA / 'mmc_pack.yaml'}")
    text = text.replace("  rate_per_day: 172.8", "  durations: {fitted: durations.json}\n"
                        "  rate_per_day: 20")
    text = text.replace("staff: {clerk: 2}", "staff: {clerk: 40}")  # no queue: time = service
    path = tmp_path / "fitted.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.order_desk.fitted_stages[0][:3] == ("serve_stage", ("serve",), fitted[
        "serve_stage"]["model"])
    result = run_scenario(scenario, replications=6)
    interval = result.interval("order_stage_hours.serve", "reactive")
    fitted_mean = fitted["serve_stage"]["mean_hours"]
    assert interval.low <= fitted_mean <= interval.high
    # the pack's own duration (exponential, 10 minutes) is far outside that interval
    assert not interval.low <= 10 / 60 <= interval.high


def test_summaries_are_t_intervals_over_replications():
    rows = [simulation.Replication("p", r, (("x", v),)) for r, v in enumerate([1.0, 2.0, 3.0])]
    summary, _ = summarise(rows, ["p"])
    (_, _, interval), = summary
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.302653, half width 4.302653 / sqrt(3)
    assert interval.mean == pytest.approx(2.0)
    assert interval.high - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_replications_in_other_processes_give_the_same_results_and_trails(tmp_path):
    """A job is a picklable call of run_replication: a process pool gives the same bytes."""
    from concurrent.futures import ProcessPoolExecutor

    scenario = load_scenario(DATA / "small.yaml").with_changes(horizon_days=8.0,
                                                                warmup_days=1.0)
    jobs = simulation.replication_jobs(scenario, ("cycle_135",), 2)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    local = run_jobs(scenario, jobs, 9, trail_dir=here)
    with ProcessPoolExecutor(max_workers=2) as pool:
        remote = run_jobs(scenario, list(reversed(jobs)), 9, trail_dir=there, executor=pool)
    assert local == list(reversed(remote))
    for name in ("cycle_135-r001.sqlite", "cycle_135-r002.sqlite"):
        assert (here / name).read_bytes() == (there / name).read_bytes()


def test_full_workflow_matches_the_hand_written_benchmark_model_exactly():
    """The whole order-fulfilment workflow (five checks, waits, rework, delivery, installation)
    against the plain SimPy model of benchmarks/bench_sim.py, fed the same streams: every order
    ends at exactly the same time. The benchmark thus compares equal work."""
    import dataclasses
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "bench_sim.py"
    spec = importlib.util.spec_from_file_location("bench_sim", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    baseline = load_scenario(bench.BASELINE)
    desk = dataclasses.replace(baseline.order_desk, open_hours=None)
    scenario = baseline.with_changes(value_chain_pack=None, kzb_pack=None, problems=(),
                                     needs=(), horizon_days=40.0, order_desk=desk)
    plain = bench.plain_order_desk(40.0, desk.rate_per_day, dict(desk.staff),
                                   dict(desk.attributes),
                                   dict(dict(desk.on_finish)["verify"])["verified"])
    rep = run_replication(scenario, "reactive", bench.SEED, 0, keep_orders=True)
    ours = {number: (arrival, end) for number, arrival, end, _, _ in rep.orders}
    assert len(ours) > 2000
    assert ours == plain
    # every kind of path was taken: waits for stock, rework after a failed verification...
    states = {state for *_, waits in rep.orders for state in waits}
    assert {"waiting_for_stock", "waiting_for_inbound", "amending", "marking_special",
            "installing"} <= states

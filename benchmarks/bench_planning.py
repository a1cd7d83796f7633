"""Issue 5 benchmark: planning a month for a Rossmann-sized chain.

1,115 stores in 8 areas (``teams/rossmann_team.yaml``), tiers A/B/C 20/30/50 %, 0-3 fired
actions per store with severity 1-3 (a synthetic analysis, seeded), planned with the default
support policy. Times ``plan_month`` with constant travel (the team file), then with random
coordinates and a home per supervisor, where every candidate day is re-routed by
``routing.day_route``. Prints visits scheduled and unserved as a sanity check. Run:
``python benchmarks/bench_planning.py [--repeat R] [--seed S]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from storeops.engine import planning

ROOT = Path(__file__).resolve().parent.parent


def analysis(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic month's facts and fired actions for stores 1..1115."""
    rng = np.random.default_rng(seed)
    stores = [str(i) for i in range(1, 1116)]
    facts = pd.DataFrame({"store": stores,
                          "tier": rng.choice(["A", "B", "C"], len(stores), p=[0.2, 0.3, 0.5]),
                          "sales_yoy": rng.normal(0.0, 0.1, len(stores))})
    rows = [(store, f"ACT{k}", f"R1.{store}.{k}", int(rng.integers(1, 4)),
             float(rng.uniform(0.2, 2.0)))
            for store in stores for k in range(int(rng.integers(0, 4)))]
    actions = pd.DataFrame(rows, columns=["store", "action", "action_id", "severity",
                                          "effort_hours"])
    return facts, actions


def routed(team: planning.Team, seed: int) -> planning.Team:
    """The same team with stores and homes scattered over 100 x 100 km."""
    rng = np.random.default_rng(seed)
    sites = {s: planning.Site(s, site.area, float(rng.uniform(0, 100)),
                              float(rng.uniform(0, 100)))
             for s, site in team.stores.items()}
    supervisors = tuple(dataclasses.replace(sup, home=(float(rng.uniform(0, 100)),
                                                       float(rng.uniform(0, 100))))
                        for sup in team.supervisors)
    return dataclasses.replace(team, stores=sites, supervisors=supervisors,
                               travel=planning.Travel("coordinates", road_factor=1.3,
                                                      speed_kmh=50.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    team = planning.load_team(ROOT / "teams" / "rossmann_team.yaml")
    facts, actions = analysis(args.seed)
    support = planning.default_support()
    for name, crew in (("constant travel", team), ("coordinates", routed(team, args.seed))):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            plan = planning.plan_month(facts, actions, support, crew, "2015-05")
            best = min(best, time.perf_counter() - start)
        print(f"{name:<16} best of {args.repeat}: {best:6.3f} s   "
              f"{len(plan.week_schedule):,} visits scheduled, "
              f"{int((plan.unserved['kind'] == 'visit').sum()):,} unserved")


if __name__ == "__main__":
    main()

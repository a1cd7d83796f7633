"""The region in SimPy: stores, problems and needs, supervisors and customer managers, order desk.

One replication is a pure function of (scenario, policy, seed, replication): it returns plain
data (a ``Replication``) and writes nothing but its own trail file, so replications can run in any
order, in any process, and give the same bytes (docs/simulation.md).

Random numbers come from one seed tree: ``SeedSequence(seed, spawn_key=(replication, source))``,
the child ``source`` of the child ``replication`` of the scenario seed, where ``source`` is a
stable number derived from the source's name (``needs/S00012``, ``problems/promotion``,
``orders``, ``service/pick``...). Numbering sources by name rather than by position means a
policy, a new state or a bigger team never shifts another source's stream: policies are compared
with common random numbers. Exogenous arrivals (problems per value-chain step, needs per store,
orders) are drawn from their streams alone, whatever the policy does.

How it works (minutes of simulation time from the scenario's first day, 00:00):

* problems arise in each store per value-chain step (Poisson), each with a severity that erodes
  traffic, conversion or ticket until it is fixed (plus the recovery time) or the store fixes it
  itself; a share is reported as a request, the rest only a visit can find;
* needs (KZB direct needs) arise per store and are always requests;
* every working day each supervisor / customer manager plans a day from the policy (requests first
  come first served, or by priority; planned visits on the 135 cycle with room for urgent
  requests), routes it (``routing.day_route``), travels, visits: needs are answered with the KZB
  pack, the store is diagnosed with the value-chain pack on its current KPI fact, and the actions
  chosen fix the problems they address with a chance that grows with skill;
* orders flow through the order-fulfilment workflow (``orderdesk``).

Rule evaluation is the engine's: compiled tables on the row path, recorded into the trail with
the same rule references as ``storeops run``, stamped with simulation time in minutes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from . import routing
from .orderdesk import MINUTES_PER_DAY, OrderDesk
from .scenario import TIERS, FieldTeam, Policy, Scenario

DAY_START = 8 * 60.0  # field staff start their day at 08:00


# -- random numbers -----------------------------------------------------------------------------


def source_key(name: str) -> int:
    """The stable spawn-key number of a source of randomness (CRC-32 of its name)."""
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, replication: int, name: str) -> np.random.Generator:
    """The generator of one source in one replication: the seed tree's leaf (seed, rep, name)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(replication, source_key(name)))
    return np.random.Generator(np.random.PCG64(sequence))


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """The replication nodes of the seed tree, as ``SeedSequence(seed).spawn(replications)``."""
    return np.random.SeedSequence(seed).spawn(replications)


# -- packs, compiled where the replication runs --------------------------------------------------


@functools.lru_cache(maxsize=16)
def _compiled(path: str, mtime_ns: int) -> tuple[Any, list[Any]]:
    from .packs import load_pack
    from .runner import compile_packs

    pack = load_pack(path)
    return pack, compile_packs([pack])


def compiled_pack(path: str) -> tuple[Any, list[Any]]:
    """(pack, compiled tables), once per process and file version (workers compile their own)."""
    return _compiled(os.path.abspath(path), os.stat(path).st_mtime_ns)


class Decider:
    """Evaluate a pack's tables on one fact (row path) and record the firings in the trail.

    The rule references are those ``runner.record`` registers for a real-data run (same pack
    version and hash, same fields, same outputs text), so ``storeops explain`` and ``trace``
    read simulated decisions like real ones. A value-chain pack's section is honoured as its
    pipeline does: its tier thresholds are filled into the fact by the store's tier, and its
    tier table is left out (the scenario gives each store's tier).
    """

    def __init__(self, path: str, trail: Any) -> None:
        from .runner import rule_ref

        self.pack, tables = compiled_pack(path)
        pack = self.pack
        section = pack.sections.get("value_chain")
        skip = {section.tier_table} if section is not None else set()
        self.tables = [t for t in tables if t.table.id not in skip]
        self.thresholds = tuple((th.name, dict(th.by_tier)) for th in section.thresholds) \
            if section is not None else ()
        # tier -> (supported, smallest severity supported): the pack's support width
        self.width = {level.id: (level.supported, level.min_severity)
                      for level in section.levels} if section is not None else {}
        self.fields = tuple(pack.fields)
        self.derived = [(kpi.id, kpi.formula) for kpi in pack.derived()]
        formulas = {kpi.id: kpi.formula.fields for kpi in pack.derived()}
        self.trail = trail
        self.keys: list[list[int]] = []
        self.reads: list[list[tuple[str, ...]]] = []
        self.actions: list[list[tuple[tuple[str, float], ...]]] = []
        for table in self.tables:
            keys, reads, actions = [], [], []
            for rule in table.table.rules:
                ref = rule_ref(table, rule, formulas)
                reads.append(ref.fields)
                actions.append(tuple((o.action, float(dict(o.params).get("severity", 1)))
                                     for o in rule.outputs))
                if trail is not None:
                    keys.append(trail.rule(ref))
            self.keys.append(keys)
            self.reads.append(reads)
            self.actions.append(actions)
        self.effort = {a.id: a.effort_hours for a in pack.actions.values()}
        self.role = {a.id: a.role or "" for a in pack.actions.values()}

    def fact(self, values: dict[str, Any]) -> dict[str, Any]:
        fact = {name: values.get(name) for name in self.fields}
        tier = values.get("tier")
        for name, by_tier in self.thresholds:
            fact[name] = by_tier.get(tier)
        for name, formula in self.derived:
            fact[name] = formula(fact)
        return fact

    def decide(self, fact: dict[str, Any], ts: float) -> list[tuple[str, float]]:
        """(action, severity) the tables choose for the fact, in trail order; records each
        firing. Severity is the output's ``severity`` parameter (1 when it has none)."""
        out: list[tuple[str, float]] = []
        trail = self.trail
        subject = fact.get(self.pack.subject)
        for t, table in enumerate(self.tables):
            for r in table.decide_indices(fact):
                out.extend(self.actions[t][r])
                if trail is not None:
                    trail.add(ts, subject, self.keys[t][r],
                              tuple(fact.get(name) for name in self.reads[t][r]))
        return out


# -- the model's entities -----------------------------------------------------------------------


class Problem:
    __slots__ = ("end", "erode", "fail", "fix_u", "fixed_at", "kind", "reported", "self_end",
                 "severity", "start", "store")

    def __init__(self, store, kind, start, severity, erode, reported, self_end, fix_u):
        self.store = store
        self.kind = kind
        self.start = start
        self.severity = severity
        self.erode = erode            # (traffic, conversion, ticket) fractions lost
        self.reported = reported
        self.self_end = self_end      # when the store would fix it alone (inf: never)
        self.end = self_end           # when its effect ends; earlier once fixed
        self.fix_u = fix_u            # one uniform decides every fix attempt (see _attempt)
        self.fail = 1.0               # probability that every attempt so far failed
        self.fixed_at = None


class Need:
    __slots__ = ("arrival", "need", "served_at", "store")

    def __init__(self, store, need, arrival):
        self.store = store
        self.need = need
        self.arrival = arrival
        self.served_at = None


@dataclass
class FieldStats:
    visits: int = 0
    travel: float = 0.0
    onsite: float = 0.0
    workdays: int = 0
    overtime: float = 0.0


@dataclass(frozen=True)
class Replication:
    """One replication's results: plain data (metric -> value), picklable."""

    policy: str
    replication: int
    metrics: tuple[tuple[str, float], ...]
    orders: tuple | None = None  # per-order records when asked for (tests)

    def metric(self, name: str) -> float:
        return dict(self.metrics)[name]


# -- one replication ----------------------------------------------------------------------------


def run_replication(scenario: Scenario, policy: str, seed: int, replication: int, *,
                    trail_path: str | os.PathLike | None = None,
                    keep_orders: bool = False) -> Replication:
    """Simulate one replication; a pure function of its arguments (plus the pack files).

    ``seed`` is the root of the seed tree (the scenario's, or one derived for a design point);
    ``replication`` picks the branch. With ``trail_path`` the rule decisions and workflow moves
    go to a trail file of their own, clock 'sim', so equal inputs give identical bytes.
    """
    from .trail import open_trail

    chosen = scenario.policy(policy)
    meta = {"scenario": scenario.id, "scenario_sha256": scenario.sha256, "policy": policy,
            "seed": seed, "replication": replication}
    if trail_path is None:
        return _Model(scenario, chosen, seed, replication, None, keep_orders).run()
    with open_trail(trail_path, command="simulate", clock="sim", meta=meta) as trail:
        return _Model(scenario, chosen, seed, replication, trail, keep_orders).run()


class _Model:
    def __init__(self, scenario: Scenario, policy: Policy, seed: int, replication: int,
                 trail: Any, keep_orders: bool) -> None:
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.replication = replication
        self.trail = trail
        self.keep_orders = keep_orders
        self.horizon = scenario.horizon_days * MINUTES_PER_DAY
        self.warmup = scenario.warmup_days * MINUTES_PER_DAY
        self.env = simpy.Environment()
        self.stores = scenario.stores
        self.n = len(self.stores)

    def rng(self, name: str) -> np.random.Generator:
        return stream(self.seed, self.replication, name)

    # -- setup --------------------------------------------------------------------------------

    def run(self) -> Replication:
        sc = self.scenario
        self.value_chain = Decider(sc.value_chain_pack, self.trail) if sc.value_chain_pack else None
        self.kzb = Decider(sc.kzb_pack, self.trail) if sc.kzb_pack else None
        self._full_travel: np.ndarray | None = None
        self.effort_by_role: dict[str, float] = {}
        self._draw_problems()
        self._draw_needs()
        self._need_effort = self._need_efforts()
        self.teams: list[tuple[FieldTeam, list[FieldStats]]] = []
        for team in (sc.supervisors, sc.customer_managers):
            if team.count <= 0:
                continue
            stats = [FieldStats() for _ in range(team.count)]
            self.teams.append((team, stats))
            for k in range(team.count):
                self.env.process(self._person(team, k, stats[k]))
        self.desk = None
        if sc.orders_pack and sc.order_desk.rate_per_day > 0:
            pack, _ = compiled_pack(sc.orders_pack)
            desk = sc.order_desk
            self.desk = OrderDesk(
                self.env, pack.workflow, rate_per_day=desk.rate_per_day, staff=dict(desk.staff),
                attributes=dict(desk.attributes),
                on_finish={s: dict(u) for s, u in desk.on_finish},
                rngs=self.rng, warmup=self.warmup, horizon=self.horizon, trail=self.trail,
                fitted_stages=desk.fitted_stages, keep_orders=self.keep_orders,
                delays=desk.delays, open_hours=desk.open_hours,
                first_weekday=sc.start.weekday())
            self.desk.start()
        self.env.run(until=self.horizon)
        if self.desk is not None:
            self.desk.finish()
        return self._results()

    def _territory(self, team: FieldTeam, k: int):
        """A person's territory and travel: (stores, row of each store, minutes between them and
        the base as numpy and as lists, the base's row, whether the minutes are symmetric).

        Field staff only travel inside their territory from their base (its centre, or the
        office of a travel matrix), so only that block of the matrix is ever built."""
        sc = self.scenario
        key = "supervisor" if team.role == "supervisor" else "customer_manager"
        territory = [s for s, store in enumerate(self.stores) if getattr(store, key) == k]
        if sc.travel is not None:
            if self._full_travel is None:
                self._full_travel = np.asarray(sc.travel, dtype=float)
            nodes = [*territory, self.n]  # the office is the matrix's last row
            sub = self._full_travel[np.ix_(nodes, nodes)]
            symmetric = bool(np.allclose(sub, sub.T))
        else:
            points = [(self.stores[s].x_km, self.stores[s].y_km) for s in territory]
            every = [(st.x_km, st.y_km) for st in self.stores]
            centre = tuple(np.mean(points or every, axis=0))
            sub = routing.travel_minutes([*points, centre], sc.road_factor, sc.speed_kmh)
            symmetric = True
        index = {s: i for i, s in enumerate(territory)}
        return territory, index, sub, sub.tolist(), len(territory), symmetric

    def _draw_problems(self) -> None:
        """Every problem of the horizon, per value-chain step from that step's own stream."""
        sc = self.scenario
        days = sc.horizon_days
        tier_ix = np.array([TIERS.index(s.tier) for s in self.stores])
        self.store_problems: list[list[Problem]] = [[] for _ in range(self.n)]
        self.problem_kinds = sc.problems
        all_problems: list[Problem] = []
        for k, kind in enumerate(sc.problems):
            rng = self.rng(f"problems/{kind.step}/{k}")
            rates = kind.rate_per_year * np.asarray(kind.tier_factor)[tier_ix] * days / 365.0
            counts = rng.poisson(rates)
            total = int(counts.sum())
            times = rng.uniform(0.0, self.horizon, total)
            severity = rng.uniform(kind.severity[0], kind.severity[1], total)
            reported = rng.random(total) < kind.reported_share
            if kind.self_fix_days is not None:
                self_end = times + rng.exponential(kind.self_fix_days * MINUTES_PER_DAY, total)
            else:
                self_end = np.full(total, math.inf)
            fix_u = rng.random(total)
            owner = np.repeat(np.arange(self.n), counts)
            erodes = np.asarray(kind.erodes)
            for i in range(total):
                sev = float(severity[i])
                p = Problem(int(owner[i]), k, float(times[i]), sev,
                            tuple((erodes * sev).tolist()), bool(reported[i]),
                            float(self_end[i]), float(fix_u[i]))
                all_problems.append(p)
        all_problems.sort(key=lambda p: (p.start, p.store, p.kind))
        for p in all_problems:
            self.store_problems[p.store].append(p)
        self.problems = all_problems
        self.problem_starts = [[p.start for p in ps] for ps in self.store_problems]

    def _draw_needs(self) -> None:
        sc = self.scenario
        self.needs: list[Need] = []
        self.store_needs = {}
        if not sc.needs:
            return
        ids = [need for need, _ in sc.needs]
        rates = np.array([rate for _, rate in sc.needs], dtype=float)
        total_rate = rates.sum() * sc.horizon_days / 365.0
        p = rates / rates.sum() if rates.sum() > 0 else None
        for s, store in enumerate(self.stores):
            rng = self.rng(f"needs/{store.id}")
            count = int(rng.poisson(total_rate))
            if not count:
                continue
            times = np.sort(rng.uniform(0.0, self.horizon, count))
            which = rng.choice(len(ids), size=count, p=p)
            self.needs.extend(Need(s, ids[j], float(t)) for t, j in zip(times.tolist(),
                                                                         which.tolist(),
                                                                         strict=True))
        self.needs.sort(key=lambda n: (n.arrival, n.store))
        self.store_needs: dict[int, list[Need]] = {}
        for need in self.needs:
            self.store_needs.setdefault(need.store, []).append(need)

    def _need_efforts(self) -> dict[str, float]:
        """Expected hours per need (its strategies' effort) for planning; no trail records."""
        out = {}
        if self.kzb is None:
            return out
        default = self.scenario.effort_hours_per_strategy
        for need, _ in self.scenario.needs:
            fact = self.kzb.fact({"customer": "-", "date": self.scenario.start, "need": need})
            actions = [a for k, t in enumerate(self.kzb.tables) for r in t.decide_indices(fact)
                       for a, _ in self.kzb.actions[k][r]]
            out[need] = sum(self.kzb.effort.get(a) or default for a in actions)
        return out

    # -- the store's KPIs ---------------------------------------------------------------------

    def factors(self, s: int, t: float) -> tuple[float, float, float, float, float]:
        """Multipliers of store ``s`` at time ``t``: traffic, conversion, ticket, promotion
        uplift, new arrivals' share (the last two are indicators, not sales)."""
        ft = fc = fk = fp = fn = 1.0
        problems = self.store_problems[s]
        upto = bisect.bisect_right(self.problem_starts[s], t)
        for p in problems[:upto]:
            if p.end > t:
                e = p.erode
                ft *= 1.0 - e[0]
                fc *= 1.0 - e[1]
                fk *= 1.0 - e[2]
                fp *= 1.0 - e[3]
                fn *= 1.0 - e[4]
        return ft, fc, fk, fp, fn

    def kpi_fact(self, s: int, t: float) -> dict[str, Any]:
        """The store-period fact the value-chain pack reads, from the store's state now.

        ``sales``, ``transactions`` and ``traffic`` are 30-day figures at today's rates;
        changes compare today's rate with the rate 30 days ago (month on month) and with the
        problem-free baseline (year on year: the model has no trend or season). Problems that
        erode an indicator (new arrivals' share of sales, promotion uplift) show there only.
        """
        store = self.stores[s]
        tier = TIERS.index(store.tier)
        ft, fc, fk, fp, fn = self.factors(s, t)
        pt, pc, pk, _, _ = self.factors(s, t - 30 * MINUTES_PER_DAY)
        open_days = self.scenario.open_days[tier]
        traffic = store.traffic * ft * open_days
        transactions = traffic * store.conversion * fc
        sales = transactions * store.ticket * fk
        date = self.scenario.start + dt.timedelta(minutes=t)
        period = date.strftime("%Y-%m")
        indicators = self.scenario.indicators[tier]
        return {
            "store_period": f"{store.id}@{period}", "store": store.id, "tier": store.tier,
            "period": period, "sales": round(sales, 2), "transactions": round(transactions),
            "traffic": round(traffic), "open_days": open_days, "days": 30,
            "promo_days": self.scenario.promo_days[tier],
            "new_arrival_sales": round(sales * indicators[1] * fn, 2),
            "promo_uplift": round(indicators[0] * fp, 6),
            "sales_mom": round(ft * fc * fk / (pt * pc * pk) - 1.0, 6),
            "sales_yoy": round(ft * fc * fk - 1.0, 6),
            "transactions_mom": round(ft * fc / (pt * pc) - 1.0, 6),
            "transactions_yoy": round(ft * fc - 1.0, 6),
            "ticket_mom": round(fk / pk - 1.0, 6),
            "ticket_yoy": round(fk - 1.0, 6),
        }

    # -- field staff --------------------------------------------------------------------------

    def _person(self, team: FieldTeam, k: int, stats: FieldStats):
        env = self.env
        sc = self.scenario
        policy = self.policy
        territory, index, matrix, cost, base, symmetric = self._territory(team, k)
        place = (index, cost, base)
        handles_problems = "problems" in team.handles
        handles_needs = "needs" in team.handles
        # requests in this territory, in arrival order; a pointer shows those already arrived
        stream_requests: list[tuple[float, int, Any]] = []
        for s in territory:
            if handles_problems:
                stream_requests += [(p.start, 0, p) for p in self.store_problems[s]
                                    if p.reported]
            if handles_needs:
                stream_requests += [(n.arrival, 1, n) for n in self.store_needs.get(s, ())]
        stream_requests.sort(key=lambda r: (r[0], r[1], r[2].store))
        pointer = 0
        open_requests: list[tuple[float, int, Any]] = []
        skill = team.skill * policy.skill_factor
        day_minutes = team.hours_per_day * 60.0
        weekday0 = sc.start.weekday()
        # the 135 cycle: each store's next planned visit (month plan -> week schedule)
        due: dict[int, float] = {}
        interval: dict[int, float] = {}
        if policy.visits_per_month is not None:
            by_tier: dict[int, list[int]] = {}
            for s in territory:
                by_tier.setdefault(TIERS.index(self.stores[s].tier), []).append(s)
            for tier, stores in by_tier.items():
                per_month = policy.visits_per_month[tier]
                if per_month <= 0:
                    continue
                gap = 30.4 / per_month
                for rank, s in enumerate(stores):
                    interval[s] = gap
                    due[s] = gap * rank / len(stores)  # spread over the first interval
        surplus_sum, surplus_count = 0.0, 0
        day = 0
        while True:
            start = day * MINUTES_PER_DAY + DAY_START
            if start >= self.horizon:
                return
            if (weekday0 + day) % 7 not in team.days:
                day += 1
                continue
            if env.now < start:
                yield env.timeout(start - env.now)
            now = env.now
            while pointer < len(stream_requests) and stream_requests[pointer][0] <= now:
                open_requests.append(stream_requests[pointer])
                pointer += 1
            open_requests = [r for r in open_requests if _is_open(r, now)]
            # a visit usually finds more work than its requests (what the diagnosis chooses);
            # the planner allows for the average surplus seen so far
            surplus = surplus_sum / surplus_count if surplus_count else 0.0
            estimates: dict[int, float] = {}
            stops = self._plan(team, policy, open_requests, due, now, day, place, day_minutes,
                               skill, surplus, estimates)
            counted = start >= self.warmup
            if counted:
                stats.workdays += 1
            if stops:
                rows, _ = routing.day_route(matrix, base, [index[s] for s in stops],
                                            symmetric=symmetric)
                here = base
                for row in rows:
                    s = territory[row]
                    leg = cost[here][row]
                    yield env.timeout(leg)
                    minutes = self._visit(team, s, env.now, skill, handles_problems,
                                          handles_needs)
                    yield env.timeout(minutes)
                    surplus_sum += minutes - estimates[s]
                    surplus_count += 1
                    if s in interval:
                        due[s] = day + interval[s]
                    if counted:
                        stats.visits += 1
                        stats.travel += leg
                        stats.onsite += minutes
                    here = row
                leg = cost[here][base]
                yield env.timeout(leg)
                if counted:
                    stats.travel += leg
                    stats.overtime += max(0.0, env.now - start - day_minutes)
            day += 1

    def _plan(self, team: FieldTeam, policy: Policy, requests, due, now: float, day: int,
              place, day_minutes: float, skill: float, surplus: float = 0.0,
              estimates: dict[int, float] | None = None) -> list[int]:
        """The stores to visit today, in the policy's order of preference, as time allows.

        ``place`` is (row of each store, minutes matrix as lists, base row) of the territory.
        ``estimates`` receives each chosen store's planned minutes on site without the
        ``surplus`` (so the caller can learn the surplus from what visits really took)."""
        index, cost, base = place
        stores = self.stores
        by_store: dict[int, list] = {}
        for r in requests:
            by_store.setdefault(r[2].store, []).append(r)
        if policy.requests == "fcfs":
            urgent = sorted(by_store, key=lambda s: (by_store[s][0][0], s))
        else:
            def score(s: int) -> float:
                w = policy.tier_weight[TIERS.index(stores[s].tier)]
                total = 0.0
                for arrival, kind, item in by_store[s]:
                    weight = policy.severity_weight * item.severity if kind == 0 \
                        else policy.need_weight
                    total += w * (1.0 + weight) + policy.age_weight * (now - arrival) / 1440.0
                return total
            urgent = sorted(by_store, key=lambda s: (-score(s), s))
        limit = team.max_visits_per_day
        if due:
            planned = sorted((s for s, d in due.items() if d <= day and s not in by_store),
                             key=lambda s: (due[s], s))
            quota = math.ceil(policy.urgent_share * limit)
            candidates = urgent[:quota] + planned + urgent[quota:]
        else:
            candidates = urgent
        visit = team.visit_minutes + policy.extra_visit_minutes
        chosen: list[int] = []
        tour = [base, base]
        route = 0.0
        work = 0.0
        for s in candidates[: 4 * limit]:
            if len(chosen) >= limit:
                break
            # cheapest insertion keeps an estimate of the day's route as stores are added
            best, at = math.inf, 1
            row = index[s]
            to_row = [cost[a][row] for a in tour]
            from_row = cost[row]
            for i in range(len(tour) - 1):
                b = tour[i + 1]
                extra = to_row[i] + from_row[b] - cost[tour[i]][b]
                if extra < best:
                    best, at = extra, i + 1
            minutes = visit + self._expected_work(by_store.get(s, ()), team) * 60.0 / skill
            if route + best + work + minutes + surplus > day_minutes and chosen:
                continue
            tour.insert(at, row)
            route += best
            work += minutes + surplus
            chosen.append(s)
            if estimates is not None:
                estimates[s] = minutes
        return chosen

    def _expected_work(self, requests, team: FieldTeam) -> float:
        hours = 0.0
        for _, kind, item in requests:
            if kind == 1:
                hours += self._need_effort.get(item.need, 0.0)
            else:
                action = self.problem_kinds[item.kind].fixed_by[0]
                hours += (self.value_chain.effort.get(action) or 0.0) if self.value_chain else 0.0
        return hours

    def _visit(self, team: FieldTeam, s: int, now: float, skill: float, problems: bool,
               needs: bool) -> float:
        """Do what a visit does; return the minutes on site."""
        hours = 0.0
        store = self.stores[s]
        if needs and self.kzb is not None:
            default = self.scenario.effort_hours_per_strategy
            date = self.scenario.start + dt.timedelta(minutes=now)
            for need in self._open_needs(s, now):
                need.served_at = now
                fact = self.kzb.fact({"customer": store.id, "date": date, "need": need.need})
                for action, _ in self.kzb.decide(fact, now):
                    effort = self.kzb.effort.get(action) or default
                    hours += effort
                    self._count_effort(self.kzb.role.get(action) or team.role, effort)
        if problems and self.value_chain is not None:
            chosen: set[str] = set()
            vc = self.value_chain
            if self.policy.diagnose:
                supported, min_severity = vc.width.get(store.tier, (True, 0))
                for action, severity in vc.decide(vc.fact(self.kpi_fact(s, now)), now):
                    if self.policy.pack_width and (not supported or severity < min_severity):
                        continue  # let go of the small: below the tier's support width
                    if action not in chosen:
                        chosen.add(action)
                        effort = vc.effort.get(action) or 0.0
                        hours += effort
                        self._count_effort(vc.role.get(action) or team.role, effort)
            p_fix_base = skill
            for p in self.store_problems[s]:
                if p.start > now:
                    break
                if p.end <= now or p.fixed_at is not None:
                    continue
                kind = self.problem_kinds[p.kind]
                applied = [a for a in kind.fixed_by if a in chosen]
                if not applied:
                    if not p.reported:
                        continue  # not reported and the diagnosis did not point at it
                    action = kind.fixed_by[0]
                    chosen.add(action)
                    effort = vc.effort.get(action) or 0.0
                    hours += effort
                    self._count_effort(vc.role.get(action) or team.role, effort)
                _attempt(p, min(1.0, kind.fix_probability * p_fix_base), now,
                         kind.recovery_days * MINUTES_PER_DAY / skill)
        return team.visit_minutes + self.policy.extra_visit_minutes + hours * 60.0 / skill

    def _count_effort(self, role: str, hours: float) -> None:
        if self.env.now >= self.warmup:
            self.effort_by_role[role] = self.effort_by_role.get(role, 0.0) + hours

    def _open_needs(self, s: int, now: float) -> list[Need]:
        # needs are few per store; a linear scan over the store's needs is cheap enough
        return [n for n in self.store_needs.get(s, ()) if n.arrival <= now and n.served_at is None]

    # -- results ------------------------------------------------------------------------------

    def _results(self) -> Replication:
        sc = self.scenario
        lo, hi = self.warmup, self.horizon
        window_days = (hi - lo) / MINUTES_PER_DAY
        m: dict[str, float] = {}
        baseline = sum(s.daily_sales for s in self.stores) * window_days
        lost = _lost_sales(self.stores, self.store_problems, lo, hi, actual=True)
        unattended = _lost_sales(self.stores, self.store_problems, lo, hi, actual=False)
        m["sales_baseline"] = baseline
        m["sales_lost"] = lost
        m["sales_lost_share"] = lost / baseline if baseline else 0.0
        m["sales_lost_unattended"] = unattended
        m["sales_recovered"] = unattended - lost
        in_window = [p for p in self.problems if lo <= p.start < hi]
        fixed = [p for p in in_window if p.fixed_at is not None and p.fixed_at < hi]
        m["problems"] = float(len(in_window))
        m["problems_fixed_share"] = len(fixed) / len(in_window) if in_window else 0.0
        m["problem_fix_days_mean"] = (float(np.mean([p.fixed_at - p.start for p in fixed]))
                                      / MINUTES_PER_DAY if fixed else math.nan)
        needs = [n for n in self.needs if lo <= n.arrival < hi]
        served = np.array([n.served_at - n.arrival for n in needs
                           if n.served_at is not None and n.served_at < hi]) / MINUTES_PER_DAY
        target = sc.need_target_days
        judged = [n for n in needs if n.arrival + target * MINUTES_PER_DAY <= hi]
        m["needs"] = float(len(needs))
        m["need_response_days_mean"] = float(served.mean()) if len(served) else math.nan
        m["need_response_days_p90"] = float(np.quantile(served, 0.9)) if len(served) else math.nan
        m["need_within_target_share"] = (
            sum(1 for n in judged if n.served_at is not None
                and n.served_at - n.arrival <= target * MINUTES_PER_DAY) / len(judged)
            if judged else math.nan)
        m["needs_unserved_share"] = (sum(1 for n in needs if n.served_at is None or
                                         n.served_at >= hi) / len(needs) if needs else 0.0)
        cost = 0.0
        years = (hi - lo) / MINUTES_PER_DAY / 365.0
        for role, hours in sorted(self.effort_by_role.items()):
            # what the chosen strategies and support actions ask of each role, per year
            m[f"effort_hours_per_year.{role}"] = hours / years
        for team, stats in self.teams:
            role = team.role
            workdays = sum(s.workdays for s in stats)
            busy = sum(s.travel + s.onsite for s in stats)
            m[f"visits_per_day.{role}"] = sum(s.visits for s in stats) / workdays \
                if workdays else 0.0
            m[f"travel_share.{role}"] = sum(s.travel for s in stats) / busy if busy else 0.0
            available = workdays * team.hours_per_day * 60.0
            m[f"utilisation.{role}"] = busy / available if available else 0.0
            m[f"overtime_hours_per_day.{role}"] = (sum(s.overtime for s in stats) / 60.0
                                                   / workdays if workdays else 0.0)
            cost += team.count * team.cost_per_year * years
        m["field_cost"] = cost
        desk = self.desk
        if desk is not None:
            st = desk.stats
            window = hi - lo
            open_minutes = desk.open_minutes()
            for role, busy in sorted(st.busy.items()):
                servers = dict(sc.order_desk.staff)[role]
                m[f"utilisation.{role}"] = busy / (servers * open_minutes) if open_minutes \
                    else 0.0
            for state, (total, count) in sorted(st.stage_time.items()):
                if count:
                    m[f"order_stage_hours.{state}"] = total / count / 60.0
            for state, (total, count) in sorted(st.stage_wait.items()):
                if count and state in desk.queue_role:
                    m[f"order_queue_hours.{state}"] = total / count / 60.0
            m["orders"] = float(st.arrivals)
            m["orders_completed"] = float(st.completed)
            leads = np.asarray(st.leads) / 60.0
            m["order_lead_hours_mean"] = float(leads.mean()) if len(leads) else math.nan
            m["order_lead_hours_p90"] = float(np.quantile(leads, 0.9)) if len(leads) else math.nan
            m["order_backlog_mean"] = st.area / window
            m["order_backlog_end"] = float(st.in_system)
            m["order_arrivals_per_hour"] = st.arrivals / window * 60.0
            costs = dict(sc.order_desk.cost_per_year)
            cost += sum(n * costs.get(role, 0.0) for role, n in sc.order_desk.staff) * years
        m["team_cost"] = cost
        recovered = m["sales_recovered"]
        # the field team is what recovers sales; the order desk's cost is in team_cost only
        m["cost_per_sales_recovered"] = (m["field_cost"] / recovered if recovered > 0
                                         else math.nan)
        orders = None
        if desk is not None and desk.stats.orders is not None:
            orders = tuple(desk.stats.orders)
        return Replication(self.policy.name, self.replication, tuple(sorted(m.items())), orders)


def _is_open(request, now: float) -> bool:
    _, kind, item = request
    if kind == 1:
        return item.served_at is None
    return item.fixed_at is None and item.end > now


def _attempt(p: Problem, chance: float, now: float, recovery: float) -> None:
    """One fix attempt. The problem's single uniform ``fix_u`` decides all attempts: it
    succeeds at the first attempt where ``fix_u`` falls below 1 - P(all attempts failed), which
    gives each attempt exactly its own chance and keeps outcomes comparable across policies."""
    p.fail *= 1.0 - chance
    if p.fix_u < 1.0 - p.fail:
        p.fixed_at = now
        p.end = min(p.end, now + recovery)


def _lost_sales(stores, store_problems, lo: float, hi: float, *, actual: bool) -> float:
    """Sales lost to problems inside [lo, hi]: the integral of baseline x (1 - product of the
    open problems' factors). ``actual=False`` is the store left alone (problems end only when the
    store fixes them itself), the no-visit counterfactual of the same random problems."""
    total = 0.0
    for s, problems in enumerate(store_problems):
        if not problems:
            continue
        events: list[tuple[float, int, Any]] = []
        for p in problems:
            end = p.end if actual else p.self_end
            a, b = max(p.start, lo), min(end, hi)
            if b <= a:
                continue
            events.append((a, 1, p))
            events.append((b, -1, p))
        if not events:
            continue
        events.sort(key=lambda e: (e[0], e[1]))
        open_: dict[int, tuple[float, float, float]] = {}
        last = events[0][0]
        lost_minutes = 0.0
        for t, sign, p in events:
            if open_ and t > last:
                ft = fc = fk = 1.0
                for e in open_.values():
                    ft *= 1.0 - e[0]
                    fc *= 1.0 - e[1]
                    fk *= 1.0 - e[2]
                lost_minutes += (1.0 - ft * fc * fk) * (t - last)
            last = t
            if sign > 0:
                open_[id(p)] = p.erode
            else:
                open_.pop(id(p), None)
        total += stores[s].daily_sales * lost_minutes / MINUTES_PER_DAY
    return total


# -- many replications and policies -------------------------------------------------------------


def replication_jobs(scenario: Scenario, policies: Sequence[str], replications: int
                     ) -> list[tuple[str, int]]:
    """Every (policy, replication) pair, in the canonical output order."""
    return [(policy, r) for policy in policies for r in range(replications)]


def run_jobs(scenario: Scenario, jobs: Sequence[tuple[str, int]], seed: int, *,
             trail_dir: str | os.PathLike | None = None,
             progress: Callable[..., None] | None = None,
             executor: Any = None) -> list[Replication]:
    """Run (policy, replication) jobs; results come back in the order of ``jobs``.

    With an ``executor`` (``concurrent.futures``: a process pool, a Dask client's executor)
    the jobs run there: a job is a picklable call of ``run_replication``, and its result does
    not depend on where or in which order it ran.
    """
    def trail_path(policy: str, r: int) -> str | None:
        if trail_dir is None:
            return None
        return os.path.join(os.fspath(trail_dir), trail_name(policy, r))

    if executor is not None:
        futures = [executor.submit(run_replication, scenario, policy, seed, r,
                                   trail_path=trail_path(policy, r)) for policy, r in jobs]
        out = []
        for done, future in enumerate(futures):
            out.append(future.result())
            if progress is not None:
                progress("simulating", done + 1, len(jobs))
        return out
    out = []
    for done, (policy, r) in enumerate(jobs):
        out.append(run_replication(scenario, policy, seed, r, trail_path=trail_path(policy, r)))
        if progress is not None:
            progress("simulating", done + 1, len(jobs))
    return out


def trail_name(policy: str, replication: int) -> str:
    return f"{policy}-r{replication + 1:03d}.sqlite"


# -- a whole run: policies x replications, summaries, files -----------------------------------

SUMMARY_COLUMNS = ("metric", "policy", "mean", "ci_low", "ci_high")
# the metrics the CLI's summary table shows, in this order
HEADLINE = ("sales_lost_share", "sales_recovered", "need_response_days_mean",
            "need_response_days_p90", "need_within_target_share", "visits_per_day.supervisor",
            "travel_share.supervisor", "utilisation.supervisor", "order_lead_hours_mean",
            "order_backlog_mean", "team_cost", "cost_per_sales_recovered")


@dataclass(frozen=True)
class SimulationSummary:
    scenario: str
    seed: int
    policies: tuple[str, ...]
    replications: tuple[Replication, ...]
    summary: tuple[tuple[str, str, Any], ...]        # (metric, policy, Interval)
    differences: tuple[tuple[str, str, str, Any], ...]  # (metric, policy, versus, Interval)
    files: tuple[str, ...]

    def interval(self, metric: str, policy: str):
        for m, p, interval in self.summary:
            if m == metric and p == policy:
                return interval
        raise KeyError((metric, policy))


def summarise(replications: Sequence[Replication], policies: Sequence[str]):
    """(summary, differences): t intervals per metric and policy, and paired differences of each
    policy against the first one (common random numbers make the pairs comparable)."""
    from .simstats import paired_difference, t_interval

    values: dict[tuple[str, str], list[float]] = {}
    by_rep: dict[tuple[str, str], dict[int, float]] = {}
    metrics: list[str] = []
    for rep in replications:
        for name, value in rep.metrics:
            if name not in metrics:
                metrics.append(name)
            values.setdefault((name, rep.policy), []).append(value)
            by_rep.setdefault((name, rep.policy), {})[rep.replication] = value
    metrics.sort()
    summary = []
    differences = []
    first = policies[0]
    for name in metrics:
        for policy in policies:
            if (name, policy) in values:
                summary.append((name, policy, t_interval(values[(name, policy)])))
        base = by_rep.get((name, first), {})
        for policy in policies[1:]:
            other = by_rep.get((name, policy), {})
            common = sorted(set(base) & set(other))
            if common:
                differences.append((name, policy, first, paired_difference(
                    [other[r] for r in common], [base[r] for r in common])))
    return tuple(summary), tuple(differences)


def run_scenario(scenario: Scenario, *, seed: int | None = None, replications: int | None = None,
                 policies: Sequence[str] | None = None, out_dir: str | os.PathLike | None = None,
                 trail: bool = True, progress: Callable[..., None] | None = None,
                 executor: Any = None) -> SimulationSummary:
    """Run every policy x replication, summarise with 95 % t intervals, write the files.

    Files in ``out_dir``: ``summary.csv`` (metric, policy, mean, ci_low, ci_high),
    ``differences.csv`` (each policy minus the first, paired over replications),
    ``replications.csv`` (policy, replication, metric, value) and, with ``trail``, one trail per
    policy and replication under ``trails/``. Equal inputs give identical files.
    """
    from .files import atomic_path, output_dir

    seed = scenario.seed if seed is None else seed
    count = scenario.replications if replications is None else replications
    chosen = tuple(policies) if policies else scenario.compare
    for name in chosen:
        scenario.policy(name)  # an unknown policy fails here, before anything runs
    jobs = replication_jobs(scenario, chosen, count)
    folder = output_dir(out_dir) if out_dir is not None else None
    trail_dir = None
    if folder is not None and trail:
        trail_dir = folder / "trails"
        trail_dir.mkdir(exist_ok=True)
        for job in jobs:  # a rerun replaces its trails instead of appending runs to them
            path = trail_dir / trail_name(*job)
            if path.exists():
                path.unlink()
    if progress is not None:
        progress("simulating", 0, len(jobs))
    results = run_jobs(scenario, jobs, seed, trail_dir=trail_dir, progress=progress,
                       executor=executor)
    summary, differences = summarise(results, chosen)
    files: list[str] = []
    if folder is not None:
        with atomic_path(folder / "summary.csv") as temp:
            temp.write_text(_csv(SUMMARY_COLUMNS, [
                (m, p, _num(i.mean), _num(i.low), _num(i.high)) for m, p, i in summary]),
                encoding="utf-8")
        files.append(str(folder / "summary.csv"))
        with atomic_path(folder / "differences.csv") as temp:
            temp.write_text(_csv(("metric", "policy", "versus", "mean", "ci_low", "ci_high"), [
                (m, p, v, _num(i.mean), _num(i.low), _num(i.high))
                for m, p, v, i in differences]), encoding="utf-8")
        files.append(str(folder / "differences.csv"))
        with atomic_path(folder / "replications.csv") as temp:
            temp.write_text(_csv(("policy", "replication", "metric", "value"), [
                (r.policy, r.replication + 1, name, _num(value))
                for r in results for name, value in r.metrics]), encoding="utf-8")
        files.append(str(folder / "replications.csv"))
        if trail_dir is not None:
            files.append(str(trail_dir))
    return SimulationSummary(scenario.id, seed, chosen, tuple(results), summary, differences,
                             tuple(files))


def _num(value: float) -> str:
    """Shortest round-trip text of a float (identical bytes for identical values); NaN empty."""
    return "" if math.isnan(value) else repr(float(value))


def _csv(header: Sequence[str], rows) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()

"""The order desk in SimPy: orders walk the order-fulfilment workflow pack, staff are resources.

Each order is a workflow case (``workflow.start_case``) advanced with the simulation clock, so
guard decisions and transitions reach the trail exactly as in a replay of real orders. A state
whose role the scenario staffs queues for a ``simpy.Resource`` with that many servers (first come,
first served); a state whose role is not staffed (the carrier, the installers) is a plain delay.
Durations come from the pack (fixed, lognormal, exponential) or from a replay's fitted
``durations.json`` (a stage's sampled time is split over its states in proportion to the pack's
mean durations).

Random numbers: interarrival times from the ``orders`` stream, each order's attributes from
``orders/attributes``, and one stream per state for its durations (``service/<state>``), so a
change elsewhere does not shift them (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from .workflow import Workflow, register, start_case

MINUTES_PER_DAY = 1440.0


@dataclass
class DeskStats:
    """What the desk measured inside the observation window [warmup, horizon] (minutes)."""

    arrivals: int = 0
    completed: int = 0
    lead_sum: float = 0.0
    leads: list | None = None
    stage_time: dict | None = None     # state -> [sum of minutes in state, count]
    stage_wait: dict | None = None     # state -> [sum of queue minutes, count]
    busy: dict | None = None           # role -> busy server-minutes in the window
    area: float = 0.0                  # integral of orders in the system over the window
    in_system: int = 0
    last_change: float = 0.0
    stuck: int = 0
    orders: list | None = None         # (id, arrival, end, final state, {state: wait}) if kept


def duration_sampler(workflow: Workflow, rngs: Mapping[str, np.random.Generator],
                     fitted_stages: tuple = ()) -> dict[str, Callable[[dict], float]]:
    """One function per state with a duration: order-local memo -> minutes."""
    samplers: dict[str, Callable[[dict], float]] = {}
    means = {}
    for state in workflow.states.values():
        d = state.duration
        if d is None:
            continue
        means[state.id] = (d.minutes if d.model == "fixed" else d.mean_minutes) or 1.0
    stage_of: dict[str, tuple] = {}
    for name, states, model, params in fitted_stages:
        for s in states:
            stage_of[s] = (name, states, model, dict(params))
    for state in workflow.states.values():
        d = state.duration
        if d is None or state.end:
            continue
        rng = rngs[state.id]
        if state.id in stage_of:
            samplers[state.id] = _stage_sampler(state.id, stage_of[state.id], means,
                                                rngs[stage_of[state.id][1][0]])
        elif d.model == "fixed":
            minutes = float(d.minutes)
            samplers[state.id] = lambda memo, m=minutes: m
        elif d.model == "exponential":
            mean = float(d.mean_minutes)
            samplers[state.id] = lambda memo, r=rng, m=mean: r.exponential(m)
        elif d.model == "lognormal":
            m, s = float(d.mean_minutes), float(d.sd_minutes)
            sigma = math.sqrt(math.log(1.0 + (s * s) / (m * m)))
            mu = math.log(m) - sigma * sigma / 2.0
            samplers[state.id] = lambda memo, r=rng, a=mu, b=sigma: r.lognormal(a, b)
        else:  # fitted in the pack but no fitted file: checked by the scenario loader
            raise ValueError(f"state {state.id}: no fitted durations given")
    return samplers


def _stage_sampler(state: str, stage: tuple, means: Mapping[str, float],
                   rng: np.random.Generator) -> Callable[[dict], float]:
    name, states, model, params = stage
    weights = [means.get(s, 1.0) for s in states]
    share = weights[states.index(state)] / sum(weights)

    def sample(memo: dict) -> float:
        # one draw per order and stage, taken when the order first needs it; the states of the
        # stage share it in proportion to the pack's mean durations
        total = memo.get(name)
        if total is None:
            if model == "lognormal":
                total = float(rng.lognormal(params["mu"], params["sigma"]))
            else:
                total = float(rng.exponential(params["mean"]))
            memo[name] = total
        return total * share

    return sample


class OrderDesk:
    """Orders arriving as a Poisson process and walking the workflow."""

    def __init__(self, env: simpy.Environment, workflow: Workflow, *, rate_per_day: float,
                 staff: Mapping[str, int], attributes: Mapping[str, float],
                 on_finish: Mapping[str, Mapping[str, float]],
                 rngs: Callable[[str], np.random.Generator], warmup: float, horizon: float,
                 trail: Any = None, fitted_stages: tuple = (), keep_orders: bool = False,
                 delays: tuple[str, ...] = (), open_hours: tuple | None = None,
                 first_weekday: int = 0) -> None:
        self.env = env
        self.workflow = workflow
        self.rate = rate_per_day
        # with opening hours, a closing desk queues one blocker per server ahead of the orders
        # (priority -1): work in hand is finished, nothing new starts until opening
        kind = simpy.Resource if open_hours is None else simpy.PriorityResource
        self.resources = {role: kind(env, capacity=n) for role, n in staff.items() if n > 0}
        self.open_hours = open_hours
        self.first_weekday = first_weekday
        self.attributes = tuple(attributes.items())
        self.on_finish = {s: tuple(u.items()) for s, u in on_finish.items()}
        # the role of each state that queues for staff; delays and unstaffed roles do not
        self.queue_role = {s.id: s.role for s in workflow.states.values()
                           if s.role in self.resources and s.id not in delays}
        self.arrival_rng = rngs("orders")
        self.attribute_rng = rngs("orders/attributes")
        state_rngs = {s: rngs(f"service/{s}") for s in workflow.states}
        self.samplers = duration_sampler(workflow, state_rngs, fitted_stages)
        self.warmup, self.horizon = warmup, horizon
        self.trail = trail
        self.keys = register(workflow, trail) if trail is not None else None
        self.stats = DeskStats(
            leads=[], stage_time={s: [0.0, 0] for s in workflow.states},
            stage_wait={s: [0.0, 0] for s in workflow.states},
            busy={role: 0.0 for role in self.resources}, last_change=warmup,
            orders=[] if keep_orders else None)

        # per state, everything the order loop needs, found with one lookup
        self.ends = frozenset(s.id for s in workflow.states.values() if s.end)
        self.plan = {
            s: (self.resources.get(self.queue_role.get(s)), self.queue_role.get(s),
                self.samplers.get(s), self.on_finish.get(s), self.stats.stage_time[s],
                self.stats.stage_wait[s])
            for s in workflow.states}

    def start(self) -> None:
        if self.rate > 0:
            self.env.process(self._arrivals())
        if self.open_hours is not None:
            for resource in self.resources.values():
                self.env.process(self._shifts(resource))

    def _shifts(self, resource):
        """Close the resource outside opening hours (every server taken by a blocker)."""
        env = self.env
        start, end, days = self.open_hours
        day = 0
        blockers = [resource.request(priority=-1) for _ in range(resource.capacity)]
        while True:  # closed until the next opening
            while (self.first_weekday + day) % 7 not in days:
                day += 1
            opening = day * MINUTES_PER_DAY + start
            if opening >= self.horizon:
                return
            if opening > env.now:
                yield env.timeout(opening - env.now)
            for blocker in blockers:
                if blocker.triggered:
                    resource.release(blocker)
                else:
                    blocker.cancel()  # the server was still busy: nothing to release
            yield env.timeout(day * MINUTES_PER_DAY + end - env.now)
            blockers = [resource.request(priority=-1) for _ in range(resource.capacity)]
            day += 1

    def open_minutes(self) -> float:
        """Minutes the desk is open inside the observation window."""
        if self.open_hours is None:
            return self.horizon - self.warmup
        start, end, days = self.open_hours
        total = 0.0
        for day in range(int(self.horizon // MINUTES_PER_DAY) + 1):
            if (self.first_weekday + day) % 7 in days:
                a = max(day * MINUTES_PER_DAY + start, self.warmup)
                b = min(day * MINUTES_PER_DAY + end, self.horizon)
                total += max(0.0, b - a)
        return total

    def _arrivals(self):
        env = self.env
        mean_gap = MINUTES_PER_DAY / self.rate
        rng = self.arrival_rng
        i = 0
        while True:
            yield env.timeout(rng.exponential(mean_gap))
            if env.now >= self.horizon:
                return
            i += 1
            env.process(self._order(i))

    def _count(self, delta: int) -> None:
        stats = self.stats
        now = self.env.now
        if now > self.warmup:
            stats.area += stats.in_system * (now - max(stats.last_change, self.warmup))
            stats.last_change = now
        stats.in_system += delta

    def _order(self, i: int):
        env = self.env
        stats = self.stats
        arrival = env.now
        in_window = arrival >= self.warmup
        attributes: dict[str, Any] = {}
        rng = self.attribute_rng
        for name, p in self.attributes:
            attributes[name] = _draw(rng, p)
        case = start_case(self.workflow, f"O{i}", attributes, self.trail, ts=arrival,
                          keys=self.keys, decisions=False)
        if in_window:
            stats.arrivals += 1
        self._count(+1)
        plan = self.plan
        ends = self.ends
        priority = None if self.open_hours is None else 0
        busy = stats.busy
        memo: dict = {}
        waits: dict[str, float] | None = {} if stats.orders is not None else None
        state = case.state
        while state not in ends:
            resource, role, sampler, finish, spent, waited = plan[state]
            entered = env.now
            if resource is not None:
                request = resource.request() if priority is None else \
                    resource.request(priority=0)
                yield request
                started = env.now
                minutes = sampler(memo) if sampler else 0.0
                yield env.timeout(minutes)
                resource.release(request)
                if in_window:
                    busy[role] += minutes
            else:
                started = entered
                minutes = sampler(memo) if sampler else 0.0
                if minutes:
                    yield env.timeout(minutes)
            if in_window:
                spent[0] += env.now - entered
                spent[1] += 1
                waited[0] += started - entered
                waited[1] += 1
            if waits is not None:
                waits[state] = waits.get(state, 0.0) + (started - entered)
            update = {name: _draw(rng, p) for name, p in finish} if finish else None
            step = case.advance(env.now, update)
            if step.status == "blocked":
                stats.stuck += 1
                break
            state = case.state
        self._count(-1)
        end = env.now
        if in_window:
            stats.completed += 1
            stats.lead_sum += end - arrival
            stats.leads.append(end - arrival)
        if stats.orders is not None:
            stats.orders.append((i, arrival, end, case.state, waits))

    def finish(self) -> None:
        """Close the backlog integral at the horizon."""
        stats = self.stats
        stats.area += stats.in_system * (self.horizon - max(stats.last_change, self.warmup))
        stats.last_change = self.horizon


def _draw(rng: np.random.Generator, p: float) -> bool:
    # certain outcomes take no random number, so making one certain does not shift the stream
    if p >= 1.0:
        return True
    if p <= 0.0:
        return False
    return bool(rng.random() < p)

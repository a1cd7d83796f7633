"""Staffing experiments: design points from an experiment file, checked before anything runs.

An experiment (``experiments/*.yaml``, docs/experiments.md) names a scenario, the parameters to
vary (team size per role, policy, visits per tier, skill, demand) as lists or ranges, the
replications, the targets the answer must meet and the cost of each role. ``load_experiment``
validates it against ``schemas/experiment.schema.json``, cross-checks it against the scenario
(unknown metrics, roles or policies, missing costs, an empty grid) and builds one frozen
``Scenario`` per design point, all before a single job runs; every problem is reported with
FILE:LINE:COL.

A design point is the base scenario with some values replaced in its YAML data and rebuilt by
the scenario's own builder, so the scenario's checks (zero staff for work that arrives...)
apply to every point and the territories are redrawn for the point's team size. The packs are
read once (they are the same for every point). Running the points is ``experiment_run.py``'s
business; this module holds no state and touches no output.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlsafe
from .errors import ErrorList, InputError, StoreopsError, did_you_mean
from .files import display_path
from .scenario import TIERS, Scenario, ScenarioBuilder, scenario_schema_errors

# The metrics a replication reports (simulation._Model._results), named per role or state where
# the scenario says which; experiments add the two cost metrics below.
PLAIN_METRICS = (
    "sales_baseline", "sales_lost", "sales_lost_share", "sales_lost_unattended",
    "sales_recovered", "problems", "problems_fixed_share", "problem_fix_days_mean", "needs",
    "need_response_days_mean", "need_response_days_p90", "need_within_target_share",
    "needs_unserved_share", "field_cost", "team_cost", "cost_per_sales_recovered", "orders",
    "orders_completed", "order_lead_hours_mean", "order_lead_hours_p90", "order_backlog_mean",
    "order_backlog_end", "order_arrivals_per_hour")
FIELD_ROLE_METRICS = ("visits_per_day", "travel_share", "utilisation", "overtime_hours_per_day")
# staff_cost: the point's team at the experiment's costs, per year (no randomness);
# total_cost: staff_cost + costs.lost_sales x sales lost per year (the default to select on).
COST_METRICS = ("staff_cost", "total_cost")

FIELD_TEAMS = {"supervisors": "supervisor", "customer_managers": "customer_manager"}


@dataclass(frozen=True, slots=True)
class Target:
    """A target on a metric's expected value: ``at_most`` or ``at_least`` ``bound``."""

    metric: str
    sense: str        # at_most | at_least
    bound: float
    label: str

    def describe(self) -> str:
        word = "<=" if self.sense == "at_most" else ">="
        return f"{self.metric} {word} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Point:
    """One design point: the varied parameters' values, its policy and its yearly staff cost."""

    key: str                                   # canonical 'name=value,...' (journal key)
    values: tuple[tuple[str, Any], ...]        # varied parameter -> value, in vary order
    policy: str
    staff: tuple[tuple[str, int], ...]         # every staffed role -> head count
    staff_cost: float                          # per year, at the experiment's costs

    def value(self, name: str, default: Any = None) -> Any:
        return dict(self.values).get(name, default)


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    path: str
    sha256: str
    scenario: Scenario                          # the base scenario (with ``fixed`` applied)
    seed: int
    confidence: float
    search: str                                 # grid | bisect
    vary: tuple[tuple[str, tuple[Any, ...]], ...]
    fixed: tuple[tuple[str, Any], ...]
    initial: int                                # replications per point to start with
    max_replications: int
    batch: int                                  # replications added per look
    sequential: bool
    targets: tuple[Target, ...]
    costs: tuple[tuple[str, float], ...]        # role -> cost per year
    lost_sales_cost: float                      # per unit of sales lost (a margin)
    select_metric: str
    select_goal: str                            # min | max
    sensitivity: tuple[float, ...]              # demand factors for the sensitivity runs
    points: tuple[Point, ...]
    scenarios: Mapping[str, Scenario] = field(default_factory=dict, compare=False, repr=False)
    packs: tuple[tuple[str, str, str, str], ...] = ()  # (key, id, version, sha256)
    base_data: Any = field(default=None, compare=False, repr=False)
    builder: Any = field(default=None, compare=False, repr=False)

    @property
    def team_dimensions(self) -> tuple[str, ...]:
        """The varied head counts, in vary order (the search's integer axes)."""
        return tuple(name for name, _ in self.vary if is_count(name))

    def point(self, key: str) -> Point:
        for p in self.points:
            if p.key == key:
                return p
        raise KeyError(key)

    def fingerprint(self) -> str:
        """What a journal's results depend on: scenario bytes, packs, fixed values, seed.

        Targets, costs and the grid may change between runs: results of points that still
        exist are reused, since a point's key names all its varied values.
        """
        text = json.dumps({"scenario": self.scenario.sha256, "packs": self.packs,
                           "fixed": [list(kv) for kv in self.fixed], "seed": self.seed},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def at_demand(self, point: Point, factor: float) -> tuple[Point, Scenario]:
        """A point with its demand multiplied by ``factor`` (the sensitivity runs)."""
        values = dict(point.values)
        demand = float(values.get("demand", dict(self.fixed).get("demand", 1.0))) * factor
        values["demand"] = round(demand, 10)
        order = [name for name, _ in point.values]
        if "demand" not in order:
            order.append("demand")
        pairs = tuple((name, values[name]) for name in order)
        # the fixed values still hold (a fixed demand is already in the product above)
        base = tuple((name, value) for name, value in self.fixed if name != "demand")
        scenario = self.builder(base + pairs)
        key = point_key(pairs)
        return dataclasses.replace(point, key=key, values=pairs), scenario


def is_count(name: str) -> bool:
    return name in FIELD_TEAMS or name.startswith("order_desk.")


def point_key(values) -> str:
    return ",".join(f"{name}={_text(value)}" for name, value in values)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


# -- loading ------------------------------------------------------------------------------------


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Read and check an experiment file and build its design points; nothing runs here.

    Every problem is an ``InputError`` at FILE:LINE:COL, all of them at once (``ErrorList``):
    schema errors first, then an empty grid, unknown metrics, roles and policies, missing costs,
    and each design point the scenario's own checks refuse.
    """
    from .packs import schema_errors

    shown = display_path(path)
    doc = yamlsafe.load(path, display=shown)
    errors = [InputError(e.message, e.location, e.hint) for e in schema_errors(doc, "experiment")]
    if errors:
        raise ErrorList(errors)
    data = doc.data
    head = data["experiment"]
    folder = Path(os.fspath(path)).parent
    scenario_path = folder / head["scenario"]
    if not scenario_path.is_file():
        raise InputError(f"experiment.scenario: no scenario file '{head['scenario']}' (looked "
                         f"for {display_path(scenario_path)})", doc.locate(("experiment",
                                                                            "scenario")))
    sdoc = yamlsafe.load(scenario_path, display=display_path(scenario_path))
    found = scenario_schema_errors(sdoc)
    if found:
        raise ErrorList(found)
    return _Checker(doc, sdoc, scenario_path.parent).build()


class _Checker:
    def __init__(self, doc: yamlsafe.Document, sdoc: yamlsafe.Document, folder: Path) -> None:
        self.doc, self.sdoc, self.folder = doc, sdoc, folder
        self.errors: list[StoreopsError] = []

    def fail(self, message: str, where: tuple, hint: str | None = None) -> None:
        self.errors.append(InputError(message, self.doc.locate(where), hint))

    def build(self) -> Experiment:
        data = self.doc.data
        head = data["experiment"]
        sdata = self.sdoc.data
        policies = list(sdata["policies"])
        desk_roles = list(sdata["team"].get("order_desk", {}).get("staff", {}))
        fixed = dict(data.get("fixed", {}))
        vary: list[tuple[str, tuple[Any, ...]]] = []
        for name, raw in data["vary"].items():
            values = self.values(name, raw)
            vary.append((name, values))
            self.parameter(name, ("vary", name), policies, desk_roles, sdata, values, fixed)
        for name, value in fixed.items():
            self.parameter(name, ("fixed", name), policies, desk_roles, sdata, (value,), fixed)
            if name in dict(vary):
                self.fail(f"fixed.{name}: '{name}' is also varied; give it in one place only",
                          ("fixed", name))
        if not data["vary"]:
            self.fail("vary: the grid is empty (vary at least one parameter, e.g. "
                      "'supervisors: {from: 8, to: 16}')", ("vary",))
        for name, values in vary:
            if not values:
                self.fail(f"vary.{name}: no values, so the grid is empty", ("vary", name))
        policy_names = dict(vary).get("policy") or (fixed.get("policy") or
                                                     sdata.get("compare", policies)[0],)
        # a cycle parameter needs a policy with a cycle
        for name, _ in [*vary, *fixed.items()]:
            if name.startswith("visits_per_month."):
                for p in policy_names:
                    where = ("vary", name) if name in dict(vary) else ("fixed", name)
                    if p in sdata["policies"] and "cycle" not in sdata["policies"][p]:
                        self.fail(f"{where[0]}.{name}: policy '{p}' has no cycle, so its visits "
                                  "per month cannot be set", where)
                    elif p in sdata["policies"] and not isinstance(
                            sdata["policies"][p]["cycle"].get("visits_per_month"), dict):
                        self.fail(f"{where[0]}.{name}: policy '{p}' takes its visits per month "
                                  "from the pack; give them per tier in the scenario to vary "
                                  "them", where)
        search = head.get("search", "grid")
        counts = [name for name, _ in vary if is_count(name)]
        if search == "bisect" and not counts:
            self.fail("experiment.search: bisect searches over team sizes, but no team size "
                      "is varied", ("experiment", "search"))
        reps = data.get("replications", 10)
        if isinstance(reps, int):
            initial = maximum = reps
            batch, sequential = reps, False
        else:
            initial, maximum = int(reps["initial"]), int(reps["max"])
            batch, sequential = int(reps.get("batch", initial)), True
            if maximum < initial:
                self.fail(f"replications.max ({maximum}) is less than replications.initial "
                          f"({initial})", ("replications", "max"))
        # the base scenario: the scenario's data with ``fixed`` applied, built once (packs too)
        base_values = tuple(fixed.items())
        builder = _PointBuilder(self.sdoc, self.folder)
        try:
            base = builder(base_values)
        except StoreopsError as exc:
            raise ErrorList([*self.errors, *_errors_of(
                exc, "the scenario with the fixed values" if fixed else "the scenario")]) from None
        targets = self.targets(data["targets"], base)
        costs, lost_sales = self.costs(data["costs"], vary, base)
        select = data.get("select", {"metric": "total_cost"})
        metric = select["metric"]
        self.metric(metric, base, ("select", "metric"))
        goal = select.get("goal", "min")
        sensitivity = tuple(float(f) for f in data.get("sensitivity", {}).get("demand",
                                                                              (0.8, 1.2)))
        if self.errors:
            raise ErrorList(self.errors)
        points: list[Point] = []
        scenarios: dict[str, Scenario] = {}
        problems: list[StoreopsError] = []
        names = [name for name, _ in vary]
        for combo in itertools.product(*(values for _, values in vary)):
            values = tuple(zip(names, combo, strict=True))
            try:
                scenario = builder(base_values + values)
            except StoreopsError as exc:
                problems.extend(_errors_of(exc, f"design point {point_key(values)}"))
                if len(problems) > 20:
                    break
                continue
            policy = dict(values).get("policy", fixed.get("policy") or scenario.compare[0])
            staff = staff_of(scenario)
            cost = sum(n * dict(costs).get(role, 0.0) for role, n in staff)
            key = point_key(values)
            points.append(Point(key, values, policy, staff, float(cost)))
            scenarios[key] = scenario
        if problems:
            raise ErrorList(problems)
        packs = _pack_versions(base)
        return Experiment(
            id=head["id"], title=head.get("title", head["id"]), path=self.doc.path,
            sha256=self.doc.sha256, scenario=base, seed=int(head.get("seed", base.seed)),
            confidence=float(head.get("confidence", 0.95)), search=search, vary=tuple(vary),
            fixed=base_values, initial=initial, max_replications=maximum, batch=batch,
            sequential=sequential, targets=targets, costs=costs, lost_sales_cost=lost_sales,
            select_metric=metric, select_goal=goal, sensitivity=sensitivity,
            points=tuple(points), scenarios=scenarios, packs=packs, builder=builder)

    def values(self, name: str, raw: Any) -> tuple[Any, ...]:
        if isinstance(raw, list):
            return tuple(dict.fromkeys(raw))  # repeated values would be the same point twice
        start, stop = raw["from"], raw["to"]
        step = raw.get("step", 1)
        if stop < start:
            self.fail(f"vary.{name}: 'to' ({stop:g}) is less than 'from' ({start:g})",
                      ("vary", name, "to"))
            return ()
        if isinstance(start, int) and isinstance(step, int) and isinstance(stop, int):
            return tuple(range(start, stop + 1, step))
        count = math.floor((stop - start) / step + 1e-9) + 1
        return tuple(round(start + k * step, 10) for k in range(count))

    def parameter(self, name: str, where: tuple, policies: list[str], desk_roles: list[str],
                  sdata: Mapping[str, Any], values: tuple, fixed: Mapping[str, Any]) -> None:
        if name == "policy":
            for i, value in enumerate(values):
                if value not in policies:
                    spot = (*where, i) if where[0] == "vary" else where
                    self.fail(f"{where[0]}.policy: the scenario has no policy '{value}'", spot,
                              did_you_mean(value, policies)
                              or f"expected one of {', '.join(policies)}")
        elif name.startswith("order_desk."):
            role = name.split(".", 1)[1]
            if role not in desk_roles:
                self.fail(f"{where[0]}.{name}: the scenario's order desk has no role '{role}'",
                          where, did_you_mean(role, desk_roles)
                          or f"expected one of {', '.join(desk_roles) or '(none)'}")

    def metric(self, name: str, scenario: Scenario, where: tuple) -> bool:
        known = known_metrics(scenario, self.counts_varied())
        if name in known:
            return True
        self.fail(f"{'.'.join(str(w) for w in where)}: unknown metric '{name}'", where,
                  did_you_mean(name, known) or "see docs/simulation.md, outputs per replication")
        return False

    def counts_varied(self) -> dict[str, int]:
        """The largest head count each field team reaches (metrics exist for staffed teams)."""
        out = {}
        for name in FIELD_TEAMS:
            raw = self.doc.data["vary"].get(name)
            if raw is None:
                continue
            out[name] = max(raw) if isinstance(raw, list) and raw else (
                raw.get("to", 0) if isinstance(raw, dict) else 0)
        return out

    def targets(self, raw: list, base: Scenario) -> tuple[Target, ...]:
        out = []
        for i, item in enumerate(raw):
            senses = [s for s in ("at_most", "at_least") if s in item]
            if len(senses) != 1:
                self.fail(f"targets.{i}: give exactly one of 'at_most' and 'at_least'",
                          ("targets", i))
                continue
            if not self.metric(item["metric"], base, ("targets", i, "metric")):
                continue
            sense = senses[0]
            target = Target(item["metric"], sense, float(item[sense]), item.get("label", ""))
            out.append(target)
        return tuple(out)

    def costs(self, raw: Mapping[str, Any], vary, base: Scenario):
        """Every role with staff in some design point needs a cost (no silent zero)."""
        costs: dict[str, float] = {}
        varied = dict(vary)
        for team in FIELD_TEAMS:
            staffed = getattr(base, team).count > 0 or any(v > 0 for v in varied.get(team, ()))
            if team in raw:
                costs[team] = float(raw[team])
            elif staffed:
                self.fail(f"costs: no cost for {team} (give costs.{team}: cost per person and "
                          "year)", ("costs",))
        desk = raw.get("order_desk", {})
        for role, n in base.order_desk.staff:
            name = f"order_desk.{role}"
            staffed = n > 0 or any(v > 0 for v in varied.get(name, ()))
            if role in desk:
                costs[name] = float(desk[role])
            elif staffed:
                self.fail(f"costs: no cost for the order desk's {role} (give "
                          f"costs.order_desk.{role})", ("costs", "order_desk")
                          if "order_desk" in raw else ("costs",))
        for role in desk:
            if role not in dict(base.order_desk.staff):
                self.fail(f"costs.order_desk: the scenario's order desk has no role '{role}'",
                          ("costs", "order_desk", role),
                          did_you_mean(role, [r for r, _ in base.order_desk.staff]))
        return tuple(sorted(costs.items())), float(raw.get("lost_sales", 0.0))


def known_metrics(scenario: Scenario, varied: Mapping[str, int] | None = None) -> list[str]:
    """Every metric a replication of this scenario (or a design point of it) can report."""
    out = [*PLAIN_METRICS, *COST_METRICS]
    for team, role in FIELD_TEAMS.items():
        if getattr(scenario, team).count > 0 or (varied or {}).get(team, 0) > 0:
            out.extend(f"{m}.{role}" for m in FIELD_ROLE_METRICS)
    for role, _ in scenario.order_desk.staff:
        out.append(f"utilisation.{role}")
    if scenario.orders_pack:
        from .simulation import compiled_pack

        pack, _ = compiled_pack(scenario.orders_pack)
        for state in pack.workflow.states:
            out.extend((f"order_stage_hours.{state}", f"order_queue_hours.{state}"))
    return out


def staff_of(scenario: Scenario) -> tuple[tuple[str, int], ...]:
    """Head count per costed role: field teams by their plural name, desk roles prefixed."""
    out = [(team, getattr(scenario, team).count) for team in FIELD_TEAMS]
    out.extend((f"order_desk.{role}", n) for role, n in scenario.order_desk.staff)
    return tuple(out)


def _errors_of(exc: StoreopsError, context: str) -> list[StoreopsError]:
    found = exc.errors if isinstance(exc, ErrorList) else (exc,)
    return [InputError(f"{context}: {e.message}", e.location, e.hint) for e in found]


def _pack_versions(scenario: Scenario) -> tuple[tuple[str, str, str, str], ...]:
    from .simulation import compiled_pack

    out = []
    for key, path in (("value_chain", scenario.value_chain_pack), ("kzb", scenario.kzb_pack),
                      ("orders", scenario.orders_pack)):
        if path:
            pack, _ = compiled_pack(path)
            out.append((key, pack.id, str(pack.version), pack.sha256))
    return tuple(out)


class _PointBuilder:
    """Builds design points: the scenario's YAML data with values replaced, rebuilt.

    ``scenario.ScenarioBuilder`` does the work (its checks, the territories for the team size);
    the packs are read on the first build and handed to every later one.
    """

    def __init__(self, sdoc: yamlsafe.Document, folder: Path) -> None:
        self.sdoc, self.folder = sdoc, folder
        self.packs: dict | None = None

    def __call__(self, values) -> Scenario:
        data = apply_values(self.sdoc.data, values)
        doc = dataclasses.replace(self.sdoc, data=data)
        builder = ScenarioBuilder(doc, self.folder, packs=self.packs)
        try:
            return builder.build()
        finally:
            if self.packs is None:
                self.packs = builder.loaded_packs

    def __getstate__(self):  # never shipped to workers: scenarios are
        raise TypeError("the point builder stays in the driving process")


def apply_values(data: Mapping[str, Any], values) -> dict[str, Any]:
    """A deep copy of scenario data with experiment parameters set (docs/experiments.md)."""
    out = copy.deepcopy(dict(data))
    team = out.setdefault("team", {})
    values = list(values)
    policy = dict(values).get("policy") or out.get("compare", list(out["policies"]))[0]
    for name, value in values:
        if name in FIELD_TEAMS:
            team.setdefault(name, {"count": 0})["count"] = int(value)
        elif name.startswith("order_desk."):
            team["order_desk"]["staff"][name.split(".", 1)[1]] = int(value)
        elif name.startswith("skill."):
            team.setdefault(name.split(".", 1)[1], {"count": 0})["skill"] = float(value)
        elif name.startswith("visits_per_month."):
            tier = name.split(".", 1)[1]
            assert tier in TIERS
            out["policies"][policy]["cycle"]["visits_per_month"][tier] = float(value)
        elif name == "demand":
            factor = float(value)
            for problem in out.get("problems", []):
                problem["rate_per_year"] = problem["rate_per_year"] * factor
            rates = out.get("needs", {}).get("rates_per_year", {})
            for need in list(rates):
                rates[need] = rates[need] * factor
            if "orders" in out:
                out["orders"]["rate_per_day"] = out["orders"]["rate_per_day"] * factor
        elif name in ("horizon_days", "warmup_days"):
            out["scenario"][name] = value
        elif name == "need_target_days":
            out.setdefault("needs", {"rates_per_year": {}})["target_days"] = value
        elif name == "policy":
            pass  # which policy runs is part of the job, not of the scenario
        else:  # the schema admits nothing else
            raise AssertionError(name)
    return out

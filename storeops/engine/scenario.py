"""Simulation scenarios: read, validate against the schema, cross-check, freeze.

A scenario (``scenarios/*.yaml``, docs/simulation.md) describes a region's stores, how problems
arise in each value-chain step and how they erode a store's sales, the customer needs (KZB ids
and rates), the team, the order desk, the supervision policies to compare, horizon, warm-up,
replications and seed. Everything that can be wrong with it is reported before anything runs,
each problem as FILE:LINE:COL (the ``iter_errors`` habit): schema errors first, then the
cross-checks (packs that do not exist, actions or needs the packs do not know, a travel matrix of
the wrong size, zero staff for work that arrives, a policy that is not defined...).

The loaded ``Scenario`` is a frozen value of plain data (tuples, floats, paths), so it pickles:
a replication is a pure function of (scenario, policy, seed, replication) and can run in another
process. Packs are shipped by path and compiled where the replication runs. A generated region
is drawn here, once, from the scenario's own seed, so every replication and every policy sees
the same stores.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from . import yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .files import display_path

TIERS = ("A", "B", "C")
STEPS = ("new_arrival", "floor_adjustment", "operations", "customer_management", "promotion",
         "sales_analysis")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PHASES = ("introduce", "build", "complete", "improve")
KPI_PARTS = ("traffic", "conversion", "ticket", "promo_uplift", "new_arrival_share")


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    tier: str
    x_km: float
    y_km: float
    traffic: float      # customers per day without problems
    conversion: float   # share of customers who buy
    ticket: float       # average sale per transaction
    supervisor: int     # index of the supervisor whose territory holds the store
    customer_manager: int  # index of the customer manager (-1: none)

    @property
    def daily_sales(self) -> float:
        return self.traffic * self.conversion * self.ticket


@dataclass(frozen=True, slots=True)
class ProblemKind:
    """How problems arise in one value-chain step and what they do until fixed."""

    step: str
    rate_per_year: float                  # per store, before the tier factor
    tier_factor: tuple[float, float, float]
    severity: tuple[float, float]         # uniform between low and high
    erodes: tuple[float, ...]             # share of each of KPI_PARTS lost at severity 1
    reported_share: float                 # share the store reports (the rest a visit must find)
    self_fix_days: float | None           # mean days until the store fixes it alone (None: never)
    fixed_by: tuple[str, ...]             # value-chain pack actions that fix it
    fix_probability: float                # chance one applied action fixes it (skill 1)
    recovery_days: float                  # days from the fix until sales are back


@dataclass(frozen=True, slots=True)
class FieldTeam:
    role: str                  # supervisor | customer_manager
    count: int
    hours_per_day: float
    days: tuple[int, ...]      # weekdays worked, 0 = Monday
    skill: float
    cost_per_year: float
    visit_minutes: float       # on site per visit before the work the visit finds
    max_visits_per_day: int
    handles: tuple[str, ...]   # problems, needs


@dataclass(frozen=True, slots=True)
class Policy:
    """A supervision policy: data, not code (docs/simulation.md)."""

    name: str
    label: str
    phase: str | None
    requests: str                                  # fcfs | priority
    tier_weight: tuple[float, float, float]
    severity_weight: float
    age_weight: float                              # per day waiting
    need_weight: float
    visits_per_month: tuple[float, float, float] | None  # the 135 cycle; None: no planned visits
    urgent_share: float                            # room kept for urgent requests in a cycle day
    diagnose: bool                                 # run the value-chain pack on every visit
    pack_width: bool                               # honour the pack's tier support width
    skill_factor: float
    extra_visit_minutes: float


@dataclass(frozen=True, slots=True)
class OrderDesk:
    rate_per_day: float
    staff: tuple[tuple[str, int], ...]            # role -> servers (absent roles: no queue)
    cost_per_year: tuple[tuple[str, float], ...]
    attributes: tuple[tuple[str, float], ...]     # field -> probability of true, per order
    on_finish: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # state -> field -> p
    fitted: str | None                            # durations.json of a replay, or None
    delays: tuple[str, ...] = ()                  # states that wait without holding staff
    # opening hours of the staffed roles: (from minute, to minute, weekdays); None: always open
    open_hours: tuple[float, float, tuple[int, ...]] | None = None
    fitted_stages: tuple[tuple[str, tuple[str, ...], str, tuple[tuple[str, float], ...]], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: frozen plain data, picklable, shared by all replications."""

    id: str
    title: str
    path: str
    sha256: str
    start: dt.date
    horizon_days: float
    warmup_days: float
    replications: int
    seed: int
    value_chain_pack: str | None
    kzb_pack: str | None
    orders_pack: str | None
    stores: tuple[Store, ...]
    travel: tuple[tuple[float, ...], ...] | None   # minutes; stores then the office, or None
    road_factor: float
    speed_kmh: float
    open_days: tuple[int, int, int]
    promo_days: tuple[int, int, int]
    indicators: tuple[tuple[float, float], ...]    # per tier: promotion uplift, new arrivals' share
    problems: tuple[ProblemKind, ...]
    needs: tuple[tuple[str, float], ...]           # need id -> rate per store and year
    need_target_days: float
    effort_hours_per_strategy: float
    supervisors: FieldTeam
    customer_managers: FieldTeam
    order_desk: OrderDesk
    policies: tuple[Policy, ...]
    compare: tuple[str, ...]
    locations: Mapping[str, Location] = field(default_factory=dict, compare=False)

    def policy(self, name: str) -> Policy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        names = [p.name for p in self.policies]
        raise InputError(f"no policy '{name}' in the scenario", self.locations.get("policies"),
                         did_you_mean(name, names) or f"expected one of {', '.join(names)}")

    def with_changes(self, **changes: Any) -> Scenario:
        """A copy with some fields replaced (experiments change the team or the policy list)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


# -- loading ------------------------------------------------------------------------------------


def scenario_schema() -> dict[str, Any]:
    from .packs import shipped_schema

    return shipped_schema("scenario")


def scenario_schema_errors(doc: yamlsafe.Document) -> list[StoreopsError]:
    """Every schema error of a scenario document, each an ``InputError`` at FILE:LINE:COL.

    Run it before ``ScenarioBuilder``: the builder trusts the document's shape. For a oneOf,
    the branch the value meant is the one explained; bounds are said in words ("must not be
    negative, got -1").
    """
    from .packs import _validator, schema_error

    out: list[StoreopsError] = []
    for err in _validator("scenario").iter_errors(doc.data):
        if err.validator == "oneOf" and err.context:
            err = jsonschema.exceptions.best_match(err.context)
        if err.validator in ("minimum", "exclusiveMinimum", "maximum") and isinstance(
                err.instance, (int, float)):
            path = tuple(err.absolute_path)
            where = ".".join(str(p) for p in path)
            bound = err.validator_value
            word = {"minimum": "at least", "exclusiveMinimum": "more than",
                    "maximum": "at most"}[err.validator]
            reason = "must not be negative" if (err.validator == "minimum" and bound == 0) \
                else f"must be {word} {bound:g}"
            out.append(InputError(f"{where}: {reason}, got {err.instance:g}", doc.locate(path)))
            continue
        found = schema_error(doc, err)
        out.append(InputError(found.message, found.location, found.hint))
    return out


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read, validate and freeze a scenario; every problem is an InputError at FILE:LINE:COL."""
    doc = yamlsafe.load(path, display=display_path(path))
    errors = scenario_schema_errors(doc)
    if errors:
        raise ErrorList(errors)
    return ScenarioBuilder(doc, Path(os.fspath(path)).parent).build()


LoadedPacks = Mapping[str, tuple[str, Any]]  # packs key -> (absolute path, compiled pack)


class ScenarioBuilder:
    """Builds a frozen ``Scenario`` from a scenario document and the folder it came from.

    The document must pass ``scenario_schema_errors`` first. Its data may differ from the
    file's (experiments replace a few values and build each design point with the scenario's
    own checks and a region drawn for the point's team); positions still point into the file,
    so an error a changed value causes names the line it replaced. Relative paths (packs,
    fitted durations) are resolved against ``folder``.

    ``packs``: the packs an earlier build of the same document loaded (``loaded_packs``), so
    that variants of one scenario read and compile them once; ``None`` loads them. ``build``
    raises ``ErrorList`` with every problem it finds; a builder builds once (one per
    document or variant).

    Only ``build`` and ``loaded_packs`` are the public interface; the other methods are steps
    of ``build``.
    """

    def __init__(self, doc: yamlsafe.Document, folder: str | os.PathLike, *,
                 packs: LoadedPacks | None = None) -> None:
        self.doc = doc
        self.folder = Path(os.fspath(folder))
        self.errors: list[StoreopsError] = []
        self._given_packs = dict(packs) if packs is not None else None
        self.loaded_packs: dict[str, tuple[str, Any]] | None = None

    def fail(self, message: str, where: tuple, hint: str | None = None) -> None:
        self.errors.append(InputError(message, self.doc.locate(where), hint))

    def resolve(self, text: str) -> str:
        """A path named in the scenario, relative to the scenario's folder, made absolute so
        that a replication finds it from any working folder (another process, a worker)."""
        candidate = Path(text)
        return os.path.abspath(candidate if candidate.is_absolute() else self.folder / candidate)

    def build(self) -> Scenario:
        data = self.doc.data
        head = data["scenario"]
        horizon = float(head["horizon_days"])
        warmup = float(head.get("warmup_days", 0))
        if warmup >= horizon:
            self.fail(f"scenario.warmup_days ({warmup:g}) must be shorter than the horizon "
                      f"({horizon:g} days)", ("scenario", "warmup_days"))
        start = dt.date(2026, 1, 5)  # a Monday
        if "start" in head:
            try:
                start = dt.date.fromisoformat(head["start"])
            except ValueError:
                self.fail(f"scenario.start: '{head['start']}' is not a date", ("scenario", "start"))
        packs = self.packs(data["packs"]) if self._given_packs is None \
            else dict(self._given_packs)
        self.loaded_packs = dict(packs)
        team = data["team"]
        supervisors = self.field_team(team["supervisors"], "supervisor", ("team", "supervisors"),
                                      ("problems",) if team.get("customer_managers", {}).get(
                                          "count", 0) else ("problems", "needs"))
        managers = self.field_team(team.get("customer_managers", {"count": 0}), "customer_manager",
                                   ("team", "customer_managers"), ("needs",))
        stores, travel, road_factor, speed = self.region(data["region"], data["kpis"], head,
                                                         supervisors, managers)
        problems = self.problems(data.get("problems", []), packs.get("value_chain"))
        needs_raw = data.get("needs", {"rates_per_year": {}})
        needs = self.needs(needs_raw, packs.get("kzb"))
        self.work_without_staff(problems, needs, supervisors, managers)
        desk = self.order_desk(data.get("orders"), team.get("order_desk"), packs.get("orders"))
        policies = self.policies(data["policies"], packs.get("value_chain"))
        compare = tuple(data.get("compare", [p.name for p in policies]))
        names = [p.name for p in policies]
        for i, name in enumerate(compare):
            if name not in names:
                self.fail(f"compare names policy '{name}', which the scenario does not define",
                          ("compare", i), did_you_mean(name, names)
                          or f"expected one of {', '.join(names)}")
        if self.errors:
            raise ErrorList(self.errors)
        kpis = data["kpis"]
        return Scenario(
            id=head["id"], title=head.get("title", head["id"]), path=self.doc.path,
            sha256=self.doc.sha256, start=start, horizon_days=horizon, warmup_days=warmup,
            replications=int(head["replications"]), seed=int(head["seed"]),
            value_chain_pack=packs.get("value_chain", (None,))[0],
            kzb_pack=packs.get("kzb", (None,))[0], orders_pack=packs.get("orders", (None,))[0],
            stores=stores, travel=travel, road_factor=road_factor, speed_kmh=speed,
            open_days=tuple(int(kpis[t].get("open_days", 30)) for t in TIERS),
            promo_days=tuple(int(kpis[t].get("promo_days", 0)) for t in TIERS),
            indicators=tuple((float(kpis[t].get("promo_uplift", 0.2)),
                              float(kpis[t].get("new_arrival_share", 0.25))) for t in TIERS),
            problems=problems, needs=needs,
            need_target_days=float(needs_raw.get("target_days", 5)),
            effort_hours_per_strategy=float(needs_raw.get("effort_hours_per_strategy", 0.25)),
            supervisors=supervisors, customer_managers=managers, order_desk=desk,
            policies=policies, compare=compare,
            locations={"policies": self.doc.locate(("policies",)),
                       "scenario": self.doc.locate(("scenario",))},
        )

    # -- packs --------------------------------------------------------------------------------

    def packs(self, raw: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
        """Each named pack, loaded once here so that its own errors surface before the run."""
        from .packs import load_pack

        out: dict[str, tuple[str, Any]] = {}
        for key, text in raw.items():
            path = self.resolve(text)
            if not os.path.isfile(path):
                self.fail(f"packs.{key}: no pack file '{text}' (looked for {display_path(path)})",
                          ("packs", key))
                continue
            try:
                pack = load_pack(path)
            except StoreopsError as exc:
                self.errors.extend(exc.errors if isinstance(exc, ErrorList) else [exc])
                continue
            if key == "orders" and pack.workflow is None:
                self.fail(f"packs.orders: pack '{pack.id}' has no workflow section",
                          ("packs", key))
                continue
            if key in ("value_chain", "kzb") and not pack.tables:
                self.fail(f"packs.{key}: pack '{pack.id}' has no tables", ("packs", key))
                continue
            out[key] = (path, pack)
        return out

    # -- team ---------------------------------------------------------------------------------

    def field_team(self, raw: Mapping[str, Any], role: str, where: tuple,
                   handles: tuple[str, ...]) -> FieldTeam:
        days = tuple(WEEKDAYS.index(d) for d in raw.get("days", WEEKDAYS[:5]))
        return FieldTeam(
            role=role, count=int(raw["count"]), hours_per_day=float(raw.get("hours_per_day", 8)),
            days=tuple(sorted(days)), skill=float(raw.get("skill", 1.0)),
            cost_per_year=float(raw.get("cost_per_year", 0.0)),
            visit_minutes=float(raw.get("visit_minutes", 45)),
            max_visits_per_day=int(raw.get("max_visits_per_day", 8)),
            handles=tuple(raw.get("handles", handles)))

    def work_without_staff(self, problems, needs, supervisors: FieldTeam,
                           managers: FieldTeam) -> None:
        """Work that arrives needs somebody to do it (zero staff with arrivals is an error)."""
        for kind, arriving in (("problems", any(p.rate_per_year > 0 for p in problems)),
                               ("needs", any(rate > 0 for _, rate in needs))):
            teams = [t for t in (supervisors, managers) if kind in t.handles]
            if arriving and sum(t.count for t in teams) == 0:
                role = teams[0].role if teams else "supervisor"
                where = ("team", "supervisors" if role == "supervisor" else "customer_managers",
                         "count")
                self.fail(f"team.{where[1]}.count is 0, but {kind} arise and nobody else "
                          f"handles them", where)

    # -- region -------------------------------------------------------------------------------

    def region(self, raw, kpis, head, supervisors: FieldTeam, managers: FieldTeam):
        variation = float(kpis.get("variation", 0.0))
        rng = np.random.default_rng(np.random.SeedSequence(int(head["seed"]),
                                                           spawn_key=(2**31 - 1,)))
        stores_raw = raw["stores"]
        rows: list[dict[str, Any]] = []
        if isinstance(stores_raw, dict):
            gen = stores_raw["generate"]
            n = int(gen["count"])
            shares = np.array([gen["tiers"][t] for t in TIERS], dtype=float)
            if shares.sum() <= 0:
                self.fail("region.stores.generate.tiers: the shares must not all be zero",
                          ("region", "stores", "generate", "tiers"))
                shares = np.ones(3)
            tiers = rng.choice(3, size=n, p=shares / shares.sum())
            width, height = float(gen["width_km"]), float(gen["height_km"])
            clusters = int(gen.get("clusters", max(1, n // 40)))
            centres = rng.uniform([0, 0], [width, height], size=(clusters, 2))
            which = rng.integers(0, clusters, size=n)
            spread = 0.08 * math.sqrt(width * height)
            xy = np.clip(centres[which] + rng.normal(0, spread, size=(n, 2)), 0,
                         [width, height])
            noise = np.exp(rng.normal(0, variation, size=(n, 3))) if variation else np.ones((n, 3))
            for i in range(n):
                base = kpis[TIERS[tiers[i]]]
                rows.append({"id": f"S{i + 1:05d}", "tier": TIERS[tiers[i]],
                             "x_km": float(xy[i, 0]), "y_km": float(xy[i, 1]),
                             "traffic_per_day": base["traffic_per_day"] * noise[i, 0],
                             "conversion": min(1.0, base["conversion"] * noise[i, 1]),
                             "ticket": base["ticket"] * noise[i, 2]})
        else:
            seen: dict[str, int] = {}
            for i, item in enumerate(stores_raw):
                if item["id"] in seen:
                    self.fail(f"duplicate store id '{item['id']}' (first at item "
                              f"{seen[item['id']]})", ("region", "stores", i, "id"))
                seen.setdefault(item["id"], i)
                base = kpis[item["tier"]]
                row = {k: item.get(k, base.get(k)) for k in ("traffic_per_day", "conversion",
                                                            "ticket")}
                row.update(id=item["id"], tier=item["tier"], x_km=item.get("x_km"),
                           y_km=item.get("y_km"), supervisor=item.get("supervisor"),
                           customer_manager=item.get("customer_manager"))
                rows.append(row)
                for key, team in (("supervisor", supervisors), ("customer_manager", managers)):
                    if key in item and item[key] >= team.count:
                        self.fail(f"store '{item['id']}': {key} {item[key]} does not exist (the "
                                  f"team has {team.count}; they are numbered from 0)",
                                  ("region", "stores", i, key))
        n = len(rows)
        travel_raw = raw["travel"]
        travel = None
        road_factor, speed = 1.3, 40.0
        if "matrix" in travel_raw:
            matrix = travel_raw["matrix"]
            if len(matrix) != n + 1 or any(len(r) != n + 1 for r in matrix):
                bad = next((k for k, r in enumerate(matrix) if len(r) != n + 1), None)
                where = ("region", "travel", "matrix") if bad is None or len(matrix) != n + 1 \
                    else ("region", "travel", "matrix", bad)
                shape = f"{len(matrix)} rows" if len(matrix) != n + 1 else \
                    f"row {bad} has {len(matrix[bad])} entries"
                self.fail(f"region.travel.matrix must be {n + 1} x {n + 1} (the {n} stores, then "
                          f"the office), but {shape}", where)
            else:
                travel = tuple(tuple(float(v) for v in r) for r in matrix)
        else:
            road_factor, speed = float(travel_raw["road_factor"]), float(travel_raw["speed_kmh"])
            for i, row in enumerate(rows):
                if row["x_km"] is None or row["y_km"] is None:
                    self.fail(f"store '{row['id']}' needs x_km and y_km (the travel model uses "
                              "coordinates), or give region.travel.matrix",
                              ("region", "stores", i))
        if self.errors:
            raise ErrorList(self.errors)
        sup = _territories(rows, supervisors.count, "supervisor")
        cm = _territories(rows, managers.count, "customer_manager")
        stores = tuple(Store(r["id"], r["tier"], float(r["x_km"] or 0.0), float(r["y_km"] or 0.0),
                             float(r["traffic_per_day"]), float(r["conversion"]),
                             float(r["ticket"]), sup[i], cm[i]) for i, r in enumerate(rows))
        return stores, travel, road_factor, speed

    # -- problems and needs -------------------------------------------------------------------

    def problems(self, raw: list, value_chain) -> tuple[ProblemKind, ...]:
        actions = set(value_chain[1].actions) if value_chain else set()
        out = []
        for i, p in enumerate(raw):
            low, high = float(p["severity"]["low"]), float(p["severity"]["high"])
            if low > high:
                self.fail(f"problems.{i}.severity: low ({low:g}) is above high ({high:g})",
                          ("problems", i, "severity"))
            if value_chain is None:
                self.fail("problems need a value-chain pack (packs.value_chain) to diagnose "
                          "them", ("problems", i))
            else:
                for j, action in enumerate(p["fixed_by"]):
                    if action not in actions:
                        self.fail(f"problems.{i}.fixed_by: action '{action}' is not in pack "
                                  f"'{value_chain[1].id}'", ("problems", i, "fixed_by", j),
                                  did_you_mean(action, actions))
            factor = p.get("tier_factor", {})
            erodes = p["erodes"]
            out.append(ProblemKind(
                step=p["step"], rate_per_year=float(p["rate_per_year"]),
                tier_factor=tuple(float(factor.get(t, 1.0)) for t in TIERS),
                severity=(low, high), erodes=tuple(float(erodes.get(k, 0.0)) for k in KPI_PARTS),
                reported_share=float(p.get("reported_share", 1.0)),
                self_fix_days=float(p["self_fix_days"]) if "self_fix_days" in p else None,
                fixed_by=tuple(p["fixed_by"]), fix_probability=float(p.get("fix_probability",
                                                                           0.9)),
                recovery_days=float(p.get("recovery_days", 7.0))))
        return tuple(out)

    def needs(self, raw, kzb) -> tuple[tuple[str, float], ...]:
        rates = raw.get("rates_per_year", {})
        if rates and kzb is None:
            self.fail("needs need the KZB pack (packs.kzb) to choose strategies", ("needs",))
            return ()
        if kzb is not None:
            known = kzb[1].field_values.get("need", ())
            for need in rates:
                if known and need not in known:
                    self.fail(f"needs.rates_per_year: need '{need}' is not a need of pack "
                              f"'{kzb[1].id}'", ("needs", "rates_per_year", need),
                              did_you_mean(need, known))
        return tuple(sorted((k, float(v)) for k, v in rates.items()))

    # -- order desk ---------------------------------------------------------------------------

    def order_desk(self, raw, desk_raw, orders) -> OrderDesk:
        raw = raw or {"rate_per_day": 0}
        desk_raw = desk_raw or {"staff": {}}
        rate = float(raw["rate_per_day"])
        staff = desk_raw["staff"]
        attributes = raw.get("attributes", {})
        on_finish = raw.get("on_finish", {})
        fitted = None
        stages: list = []
        if orders is None:
            if rate > 0:
                self.fail("orders arrive (rate_per_day > 0) but there is no order workflow pack "
                          "(packs.orders)", ("orders", "rate_per_day"))
        else:
            workflow = orders[1].workflow
            delays = set(raw.get("delays", ()))
            roles = {s.role for s in workflow.states.values() if s.role and s.id not in delays}
            for role, n in staff.items():
                if role not in workflow.roles:
                    self.fail(f"team.order_desk.staff: '{role}' is not a role of workflow "
                              f"'{workflow.id}'", ("team", "order_desk", "staff", role),
                              did_you_mean(role, workflow.roles))
                elif n == 0 and rate > 0 and role in roles:
                    self.fail(f"team.order_desk.staff.{role} is 0 but orders arrive "
                              f"({rate:g} a day) and need a {role}",
                              ("team", "order_desk", "staff", role))
            fields = orders[1].fields
            for name in attributes:
                self.order_field(fields, name, ("orders", "attributes", name))
            for state, updates in on_finish.items():
                if state not in workflow.states:
                    self.fail(f"orders.on_finish: '{state}' is not a state of workflow "
                              f"'{workflow.id}'", ("orders", "on_finish", state),
                              did_you_mean(state, workflow.states))
                for name in updates:
                    self.order_field(fields, name, ("orders", "on_finish", state, name))
            for i, state in enumerate(raw.get("delays", [])):
                if state not in workflow.states:
                    self.fail(f"orders.delays: '{state}' is not a state of workflow "
                              f"'{workflow.id}'", ("orders", "delays", i),
                              did_you_mean(state, workflow.states))
            durations = raw.get("durations", "pack")
            if isinstance(durations, dict):
                fitted = self.resolve(durations["fitted"])
                stages = self.fitted(fitted, workflow, ("orders", "durations", "fitted"))
            else:
                for state in workflow.states.values():
                    if state.duration is not None and state.duration.model == "fitted":
                        self.fail(f"state '{state.id}' of workflow '{workflow.id}' takes a "
                                  "fitted duration; give orders.durations.fitted",
                                  ("orders", "durations") if "durations" in raw else ("orders",))
        return OrderDesk(
            rate_per_day=rate, staff=tuple(sorted((k, int(v)) for k, v in staff.items())),
            cost_per_year=tuple(sorted((k, float(v)) for k, v in
                                       desk_raw.get("cost_per_year", {}).items())),
            attributes=tuple(sorted((k, float(v)) for k, v in attributes.items())),
            on_finish=tuple(sorted((s, tuple(sorted((k, float(v)) for k, v in u.items())))
                                   for s, u in on_finish.items())),
            fitted=fitted, fitted_stages=tuple(stages), delays=tuple(raw.get("delays", ())),
            open_hours=self.open_hours(desk_raw.get("open")))

    def open_hours(self, raw) -> tuple[float, float, tuple[int, ...]] | None:
        if raw is None:
            return None
        start, end = float(raw["from_hour"]), float(raw["to_hour"])
        if start >= end:
            self.fail(f"team.order_desk.open: from_hour ({start:g}) must be before to_hour "
                      f"({end:g})", ("team", "order_desk", "open", "from_hour"))
        days = tuple(sorted(WEEKDAYS.index(d) for d in raw.get("days", WEEKDAYS[:5])))
        return (start * 60.0, end * 60.0, days)

    def order_field(self, fields, name: str, where: tuple) -> None:
        f = fields.get(name)
        if f is None:
            self.fail(f"{'.'.join(str(p) for p in where[:-1])}: '{name}' is not a field of the "
                      "orders pack", where, did_you_mean(name, fields))
        elif f.type != "boolean":
            self.fail(f"{'.'.join(str(p) for p in where)}: field '{name}' is {f.type}, "
                      "not boolean", where)

    def fitted(self, path: str, workflow, where: tuple) -> list:
        """Stages of a replay's durations.json: (name, states, model, params), hours -> minutes."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.fail(f"no fitted-durations file '{display_path(path)}'", where)
            return []
        except (OSError, ValueError) as exc:
            self.fail(f"{display_path(path)}: not a durations.json ({exc})", where)
            return []
        stages = []
        for name, entry in sorted(data.items()) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or not entry.get("states") or not entry.get("model"):
                continue  # the total, or a stage without a fit
            states = tuple(entry["states"])
            unknown = [s for s in states if s not in workflow.states]
            if unknown:
                self.fail(f"{display_path(path)}: stage '{name}' names state '{unknown[0]}', "
                          f"which workflow '{workflow.id}' does not have", where)
                continue
            params = entry.get("params", {})
            if entry["model"] == "lognormal":
                # hours -> minutes: a lognormal scaled by 60 shifts mu by log(60)
                p = (("mu", float(params["mu"]) + math.log(60.0)),
                     ("sigma", float(params["sigma"])))
            elif entry["model"] == "exponential":
                p = (("mean", float(params["scale"]) * 60.0),)
            else:
                self.fail(f"{display_path(path)}: stage '{name}' has unknown model "
                          f"'{entry['model']}'", where)
                continue
            stages.append((name, states, entry["model"], p))
        if isinstance(data, dict) and not stages and not self.errors:
            self.fail(f"{display_path(path)}: no fitted stage with states", where)
        return stages

    # -- policies -----------------------------------------------------------------------------

    def policies(self, raw: Mapping[str, Any], value_chain) -> tuple[Policy, ...]:
        out = []
        for name, p in raw.items():
            priority = p.get("priority", {})
            cycle = p.get("cycle")
            tier = priority.get("tier", {})
            if tier == "pack":  # the value-chain pack's tier priorities
                tier = self.from_pack(value_chain, "priority",
                                      ("policies", name, "priority", "tier")) or {}
            visits = None
            if cycle:
                per_month = cycle["visits_per_month"]
                if per_month == "pack":  # the pack's support depth per tier
                    per_month = self.from_pack(value_chain, "visits_per_month",
                                               ("policies", name, "cycle", "visits_per_month"))
                if per_month is not None:
                    visits = tuple(float(per_month.get(t, 0.0)) for t in TIERS)
            out.append(Policy(
                name=name, label=p.get("label", name), phase=p.get("phase"),
                requests=p["requests"],
                tier_weight=tuple(float(tier.get(t, 1.0)) for t in TIERS),
                severity_weight=float(priority.get("severity", 0.0)),
                age_weight=float(priority.get("age_per_day", 0.0)),
                need_weight=float(priority.get("need", 0.0)),
                visits_per_month=visits,
                urgent_share=float(cycle.get("urgent_share", 0.3)) if cycle else 1.0,
                diagnose=bool(p.get("diagnose", True)),
                pack_width=bool(p.get("pack_width", False)),
                skill_factor=float(p.get("skill_factor", 1.0)),
                extra_visit_minutes=float(p.get("extra_visit_minutes", 0.0))))
        return tuple(out)

    def from_pack(self, value_chain, key: str, where: tuple) -> dict[str, float] | None:
        """A per-tier figure of the value-chain pack's tier levels (``pack`` in a policy)."""
        section = value_chain[1].sections.get("value_chain") if value_chain else None
        if section is None:
            self.fail(f"{'.'.join(where)}: 'pack' needs a value-chain pack with a "
                      "value_chain section (tiers.levels)", where)
            return None
        return {level.id: float(getattr(level, key)) for level in section.levels}

def _territories(rows: list[dict[str, Any]], count: int, key: str) -> list[int]:
    """Territory of each store: as given, else sectors around the region's centre.

    Sectors by angle give each person a compact slice of about n / count stores; stores without
    coordinates (a travel matrix) are split into blocks in file order.
    """
    n = len(rows)
    if count <= 0:
        return [-1] * n
    given = [r.get(key) for r in rows]
    if all(g is not None for g in given):
        return [int(g) for g in given]
    if all(r.get("x_km") is not None for r in rows):
        xy = np.array([[r["x_km"], r["y_km"]] for r in rows], dtype=float)
        centre = xy.mean(axis=0)
        angle = np.arctan2(xy[:, 1] - centre[1], xy[:, 0] - centre[0])
        order = np.lexsort((np.arange(n), angle))
    else:
        order = np.arange(n)
    out = [0] * n
    for rank, i in enumerate(order.tolist()):
        out[i] = given[i] if given[i] is not None else rank * count // n
    return out

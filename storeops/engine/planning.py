"""The 135 cycle as plans: month plan, week schedules, what did not fit, and its evaluation.

Seed 004's five steps (analyse -> plan -> implement -> evaluate -> improve) run monthly with
four weekly loops; seed 001's account plan -> execute -> review is the same loop. This module
is the *plan* and *evaluate* steps as pure functions over pandas frames:

* ``load_team`` reads the team file (who visits, which areas, how many hours) and its stores
  file (which store lies in which area, optionally where);
* ``plan_month`` turns one month's analysis (facts per store, fired support actions, the support
  policy per tier) into the month plan, the week schedules that fit the team, and the list of
  everything that did not fit, each with its reason and priority: nothing is dropped silently;
* ``evaluate_visits`` compares the next month's KPI change of visited and unvisited flagged
  stores of the same tier (difference in differences), because flagged stores improve on their
  own (regression to the mean) and a naive before/after credits the visit with that.

The scheduler is a greedy heuristic, not an optimal vehicle-routing solver; docs/planning.md
says what it guarantees (no supervisor-day over its hours, every required visit either
scheduled or listed as unserved, higher priority placed first) and what it does not.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from . import yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# -- the team ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Supervisor:
    """One person who visits stores, in the areas listed (in this order of preference)."""

    id: str
    name: str
    areas: tuple[str, ...]
    home: tuple[float, float] | None = None  # (x_km, y_km); None: the day starts at a store


@dataclass(frozen=True, slots=True)
class Travel:
    """How long it takes to get from one place to the next.

    ``mode`` is ``"constant"`` (``minutes_between_stores`` between two stops, and
    ``minutes_from_home`` out to the first and back from the last) or ``"coordinates"``
    (straight-line km from the stores file x ``road_factor`` at ``speed_kmh``; day routes are
    ordered by ``routing.day_route``).
    """

    mode: str
    minutes_between_stores: float = 0.0
    minutes_from_home: float = 0.0
    road_factor: float = 1.0
    speed_kmh: float = 0.0


@dataclass(frozen=True, slots=True)
class Site:
    """A row of the stores file: the store's area and, when known, its coordinates."""

    store: str
    area: str | None
    x_km: float | None = None
    y_km: float | None = None
    location: Location | None = None  # the row in the stores file


@dataclass(frozen=True)
class Team:
    """A validated team file: supervisors, working time, travel, and where the stores are."""

    id: str
    supervisors: tuple[Supervisor, ...]
    hours_per_day: float
    working_days: tuple[int, ...]  # weekday numbers, Monday = 0
    visit_minutes: float
    travel: Travel
    stores: Mapping[str, Site] = field(default_factory=dict)
    public_holidays: frozenset[dt.date] = frozenset()
    day_start: str = "08:00"
    path: str = "<team>"

    @property
    def day_minutes(self) -> float:
        """Minutes of one supervisor-day, travel included."""
        return self.hours_per_day * 60.0


def load_team(path: str | os.PathLike, *, stores: str | os.PathLike | None = None,
              display: str | None = None) -> Team:
    """Read and check a team file and the stores file it names.

    ``stores`` overrides the file named in the team file. Every problem the user can fix is
    reported at once as an ``ErrorList`` of ``InputError``s positioned FILE:LINE:COL (the team
    file's line, or the stores file's row and column).
    """
    from .files import display_path

    shown = display or display_path(path)
    try:
        doc = yamlsafe.load(path, display=shown)
    except StoreopsError as exc:
        raise ErrorList([InputError(exc.message, exc.location, exc.hint)]) from None
    errors: list[StoreopsError] = _team_schema_errors(doc)
    if errors:
        raise ErrorList(errors)
    data = doc.data["team"]

    def error(message: str, at: tuple, hint: str | None = None) -> None:
        errors.append(InputError(message, doc.locate(("team", *at)), hint))

    days_per_week = data["days_per_week"]
    if "working_days" in data:
        working = tuple(WEEKDAYS.index(name) for name in data["working_days"])
        if len(working) != days_per_week:
            error(f"team.working_days: lists {len(working)} day(s) but days_per_week is "
                  f"{days_per_week}", ("working_days",))
    else:
        working = tuple(range(days_per_week))

    holidays: set[dt.date] = set()
    for i, text in enumerate(data.get("public_holidays", [])):
        try:
            holidays.add(dt.date.fromisoformat(text))
        except ValueError:
            error(f"team.public_holidays.{i}: '{text}' is not a date (expected YYYY-MM-DD)",
                  ("public_holidays", i))

    travel_data = data["travel"]
    constant = "minutes_between_stores" in travel_data
    routed = "road_factor" in travel_data or "speed_kmh" in travel_data
    travel = Travel("constant")
    if constant and routed:
        error("team.travel: give either minutes_between_stores (constant travel) or road_factor "
              "and speed_kmh (travel from the stores' coordinates), not both", ("travel",))
    elif constant:
        travel = Travel("constant", float(travel_data["minutes_between_stores"]),
                        float(travel_data.get("minutes_from_home", 0.0)))
    elif routed:
        missing = [k for k in ("road_factor", "speed_kmh") if k not in travel_data]
        if missing:
            error(f"team.travel: missing required key '{missing[0]}' (travel from coordinates "
                  "needs road_factor and speed_kmh)", ("travel",))
        elif "minutes_from_home" in travel_data:
            error("team.travel.minutes_from_home: with coordinates the way from home is "
                  "computed from the supervisor's home; remove it", ("travel", "minutes_from_home"))
        else:
            travel = Travel("coordinates", road_factor=float(travel_data["road_factor"]),
                            speed_kmh=float(travel_data["speed_kmh"]))
    else:
        error("team.travel: expected minutes_between_stores (constant travel) or road_factor "
              "and speed_kmh (travel from the stores' coordinates)", ("travel",))

    hours = float(data["hours_per_day"])
    visit = float(data["visit_minutes"])
    if travel.mode == "constant" and visit + 2 * travel.minutes_from_home > hours * 60:
        error(f"team.visit_minutes: one visit ({_num(visit)} min) plus the way from home and back "
              f"(2 x {_num(travel.minutes_from_home)} min) does not fit in a day of "
              f"{_num(hours)} h", ("visit_minutes",))

    supervisors: list[Supervisor] = []
    seen: set[str] = set()
    for i, item in enumerate(data["supervisors"]):
        if item["id"] in seen:
            error(f"team.supervisors.{i}.id: duplicate supervisor '{item['id']}'",
                  ("supervisors", i, "id"))
            continue
        seen.add(item["id"])
        home = item.get("home")
        supervisors.append(Supervisor(
            item["id"], item.get("name", item["id"]), tuple(item["areas"]),
            (float(home["x_km"]), float(home["y_km"])) if home else None))

    stores_path: str | os.PathLike
    if stores is not None:
        stores_path, stores_shown = stores, display_path(stores)
    else:
        stores_path = Path(path).parent / data["stores"]
        stores_shown = display_path(stores_path)
    sites: dict[str, Site] = {}
    if not os.path.isfile(stores_path):
        what = "is a folder" if os.path.isdir(stores_path) else "no such file"
        if stores is not None:
            errors.append(InputError(f"stores file {what}", Location(stores_shown, 1, 1)))
        else:
            error(f"team.stores: {what} '{data['stores']}'", ("stores",))
    else:
        try:
            sites = read_stores(stores_path, display=stores_shown,
                                need_coordinates=travel.mode == "coordinates")
        except ErrorList as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise ErrorList(errors)
    return Team(id=data["id"], supervisors=tuple(supervisors), hours_per_day=hours,
                working_days=tuple(sorted(working)), visit_minutes=visit, travel=travel,
                stores=MappingProxyType(sites), public_holidays=frozenset(holidays),
                day_start=data.get("day_start", "08:00"), path=shown)


_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _team_schema_errors(doc: yamlsafe.Document) -> list[StoreopsError]:
    """Schema errors of a team file as InputErrors; numeric bounds say what was expected."""
    import jsonschema

    from .packs import schema_error, shipped_schema

    validator = jsonschema.Draft202012Validator(shipped_schema("team"))
    out: list[StoreopsError] = []
    for err in validator.iter_errors(doc.data):
        path = tuple(err.absolute_path)
        if err.validator in _BOUNDS and isinstance(err.instance, (int, float)):
            where = ".".join(str(p) for p in path)
            out.append(InputError(f"{where}: expected a number {_BOUNDS[err.validator]} "
                                  f"{_num(err.validator_value)}, got {_num(err.instance)}",
                                  doc.locate(path)))
            continue
        found = schema_error(doc, err)
        out.append(InputError(found.message, found.location, found.hint))
    return out


def read_stores(path: str | os.PathLike, *, display: str | None = None,
                need_coordinates: bool = False) -> dict[str, Site]:
    """Read a stores file (store, area, optional x_km, y_km) into sites keyed by store.

    A row with an empty area is kept with ``area=None``: the plan lists such stores as unserved
    ("store has no area in the stores file") instead of dropping them. Duplicate stores, bad
    numbers and (when travel uses coordinates) missing coordinates are errors at their row and
    column; line 1 is the header.
    """
    from .files import display_path

    shown = display or display_path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError("the stores file is empty, expected a header row "
                         "(store,area[,x_km,y_km])", Location(shown, 1, 1)) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV: {str(exc).splitlines()[0]}",
                         Location(shown, 1, 1)) from None
    header = [str(c) for c in frame.columns]
    errors: list[StoreopsError] = []
    for name in ("store", "area"):
        if name not in header:
            errors.append(InputError(f"missing column '{name}'", Location(shown, 1, 1),
                                     did_you_mean(name, header)))
    has_xy = "x_km" in header and "y_km" in header
    if need_coordinates and not has_xy:
        errors.append(InputError("missing columns 'x_km' and 'y_km' (the team's travel uses "
                                 "coordinates)", Location(shown, 1, 1)))
    if errors:
        raise ErrorList(errors)
    col = {name: header.index(name) + 1 for name in header}
    sites: dict[str, Site] = {}
    first_line: dict[str, int] = {}
    for row, record in enumerate(frame.to_dict("records")):
        line = row + 2
        store = record["store"].strip()
        if not store:
            errors.append(InputError("empty store id", Location(shown, line, col["store"])))
            continue
        if store in sites:
            errors.append(InputError(f"duplicate store '{store}' (first on line "
                                     f"{first_line[store]})", Location(shown, line, col["store"])))
            continue
        coords: list[float | None] = [None, None]
        if has_xy:
            for k, name in enumerate(("x_km", "y_km")):
                text = record[name].strip()
                if not text:
                    if need_coordinates:
                        errors.append(InputError(
                            f"store '{store}' has no {name} (the team's travel uses coordinates)",
                            Location(shown, line, col[name])))
                    continue
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    errors.append(InputError(f"bad value {text!r} in column '{name}' "
                                             "(expected a number of km)",
                                             Location(shown, line, col[name])))
                    continue
                coords[k] = value
        area = record["area"].strip() or None
        first_line[store] = line
        sites[store] = Site(store, area, coords[0], coords[1], Location(shown, line, 1))
    if errors:
        raise ErrorList(errors)
    return sites


# -- the support policy ------------------------------------------------------------------------

SUPPORT_COLUMNS = ("tier", "supported", "min_severity", "visits_per_month", "max_actions",
                   "hours_per_visit", "judge_kpis", "weight", "breadth")


def default_support() -> pd.DataFrame:
    """A support policy for tiers A/B/C ("focus on the big, let go of the small").

    Design choice, not from the seeds: width - A and B always, C only with a severe problem
    (severity 3); depth - A 4 visits a month (weekly), B 2, C 1; breadth - at most 3 actions per
    visit; weights 3/2/1 make the priority score tier weight x severity.
    """
    return pd.DataFrame({
        "tier": ["A", "B", "C"],
        "supported": [True, True, True],
        "min_severity": [0, 0, 3],
        "visits_per_month": [4, 2, 1],
        "max_actions": [3, 3, 3],
        "hours_per_visit": [math.nan, math.nan, math.nan],
        "judge_kpis": ["sales_yoy;transactions"] * 3,
        "weight": [3.0, 2.0, 1.0],
        "breadth": ["", "", ""],  # every kind of action; a pack lists the kinds per tier
    })


def support_from_levels(levels: Iterable[Any]) -> pd.DataFrame:
    """The support table from a value-chain pack's tier levels (``ValueChain.levels``).

    Each level has ``id``, ``priority`` (the weight), ``supported``, ``min_severity``,
    ``breadth``, ``visits_per_month`` and ``judge_kpis``; attributes are read by name, so this
    module does not import the pack code. Levels carry no per-visit caps: max_actions and
    hours_per_visit are left open (NaN).
    """
    return pd.DataFrame([{
        "tier": str(level.id), "supported": bool(level.supported),
        "min_severity": int(level.min_severity), "visits_per_month": int(level.visits_per_month),
        "max_actions": math.nan, "hours_per_visit": math.nan,
        "judge_kpis": ";".join(level.judge_kpis), "weight": float(level.priority),
        "breadth": ";".join(level.breadth)} for level in levels], columns=list(SUPPORT_COLUMNS))


@dataclass(frozen=True, slots=True)
class _Policy:
    tier: str
    supported: bool
    min_severity: int
    visits: int
    max_actions: int | None
    hours_per_visit: float | None
    judge_kpis: str
    weight: float
    breadth: frozenset[str] | None = None  # the action ids the tier's support may contain


def _policies(support: pd.DataFrame) -> dict[str, _Policy]:
    _require(support, "support", ("tier", "supported", "visits_per_month", "weight"))
    out: dict[str, _Policy] = {}
    for row in support.to_dict("records"):
        tier = str(row["tier"])
        if tier in out:
            raise InputError(f"support: tier '{tier}' has more than one row")
        visits = row["visits_per_month"]
        if _missing(visits) or float(visits) < 0 or float(visits) != int(visits):
            raise InputError(f"support: tier '{tier}': visits_per_month must be a whole number "
                             f"0 or more, got {visits!r}")
        max_actions = row.get("max_actions")
        hours = row.get("hours_per_visit")
        kpis = ";".join(_names(row.get("judge_kpis")))
        breadth = _names(row.get("breadth"))
        min_sev = row.get("min_severity")
        supported = row["supported"]
        if isinstance(supported, str):
            supported = supported.strip().lower() in ("true", "yes", "1")
        out[tier] = _Policy(
            tier, bool(supported), 0 if _missing(min_sev) else int(min_sev),
            int(row["visits_per_month"]),
            None if _missing(max_actions) else int(max_actions),
            None if _missing(hours) else float(hours), kpis, float(row["weight"]),
            frozenset(breadth) if breadth else None)
    return out


# -- the plan ----------------------------------------------------------------------------------

MONTH_PLAN_COLUMNS = (
    "store", "tier", "area", "priority", "rank", "severity", "focus", "sales", "sales_yoy",
    "target", "target_sales_yoy", "visits_required", "visits_planned", "actions", "action_ids",
    "effort_hours", "actions_planned", "judge_kpis", "status", "reason")
WEEK_SCHEDULE_COLUMNS = (
    "supervisor", "week", "date", "weekday", "day_seq", "stop_seq", "store", "area", "tier",
    "priority", "visit_no", "visits_required", "target_week", "arrive", "depart",
    "travel_minutes", "visit_minutes", "day_minutes", "actions", "action_ids")
UNSERVED_COLUMNS = ("store", "tier", "area", "kind", "visit_no", "action", "action_id",
                    "target_week", "priority", "rank", "lowest_priority_fitted", "cause",
                    "reason")
# What kind of reason left a visit or action out, for filtering and the summary. Checked in
# this order against the reason text, which this module alone writes.
CAUSES = (("capacity:", "capacity"), ("breadth:", "breadth"), ("(width)", "width"),
          ("(depth)", "depth"), ("stores file", "area"), ("no supervisor covers", "area"),
          ("no working day", "calendar"), ("no visit to the store fit", "no visit"))

STATUS_PLANNED = "planned"
STATUS_PARTLY = "partly planned"
STATUS_NOT_SUPPORTED = "not supported by tier"
STATUS_UNSERVED = "unserved"
STATUSES = (STATUS_PLANNED, STATUS_PARTLY, STATUS_UNSERVED, STATUS_NOT_SUPPORTED)


@dataclass(frozen=True)
class Plan:
    """A month plan with its week schedules and the demand that did not fit.

    Invariants (tested as properties): every required visit is one row of ``week_schedule``
    or one ``kind == "visit"`` row of ``unserved``; every fired action is in the ``action_ids``
    of exactly one scheduled visit or one ``kind == "action"`` row of ``unserved``; no
    supervisor-day's ``day_minutes`` (travel, visits and the way home) exceeds the team's day.
    """

    month: str
    team_id: str
    month_plan: pd.DataFrame
    week_schedule: pd.DataFrame
    unserved: pd.DataFrame
    capacity: pd.DataFrame  # per supervisor and week: days, minutes available, booked, visits
    notes: tuple[str, ...] = ()

    def summary(self) -> list[str]:
        """A few plain lines for a terminal: stores by status, visits, capacity used, unserved."""
        mp, un, cap = self.month_plan, self.unserved, self.capacity
        statuses = mp["status"].value_counts()
        by_status = ", ".join(f"{statuses.get(s, 0)} {s}" for s in STATUSES)
        required = int(mp["visits_required"].sum())
        booked, available = cap["minutes_booked"].sum(), cap["minutes_available"].sum()
        used = f"{booked / available:.0%}" if available else "n/a"
        lines = [f"{self.month}: {len(mp)} store(s): {by_status}",
                 f"visits: {len(self.week_schedule)} scheduled of {required} required; team "
                 f"time booked {booked / 60:,.1f} h of {available / 60:,.1f} h ({used})"]
        if len(un):
            tally = sorted(un["cause"].value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
            counts = ", ".join(f"{cause} {n}" for cause, n in tally)
            lines.append(f"unserved: {int((un['kind'] == 'visit').sum())} visit(s) and "
                         f"{int((un['kind'] == 'action').sum())} action(s); by cause: {counts}")
        return lines


def working_dates(team: Team, month: str) -> list[dt.date]:
    """The month's working days for ``team``: its weekdays, minus public holidays."""
    first = _parse_month(month)
    days = []
    day = first
    while day.month == first.month:
        if day.weekday() in team.working_days and day not in team.public_holidays:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def shift_month(month: str, months: int) -> str:
    """``month`` (YYYY-MM) moved by ``months``: ``shift_month("2015-01", -1) == "2014-12"``.

    The 135 cycle plans month M+1 from the analysis of month M and evaluates it with M+1's data.
    """
    first = _parse_month(month)
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def iso_week(day: dt.date) -> str:
    """ISO week label, e.g. ``2026-W14`` (weeks start on Monday; a week may span two months)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def plan_month(facts: pd.DataFrame, actions: pd.DataFrame, support: pd.DataFrame, team: Team,
               month: str, *, target_yoy: float = 0.0) -> Plan:
    """Plan month ``month`` (YYYY-MM) from the analysis of the month before, within ``team``.

    ``facts``: one row per store (store, tier, optional sales, sales_yoy, other KPIs);
    ``sales_yoy`` is the change against the same month last year (-0.10 = 10 % below), as the
    value-chain pipeline computes it.
    ``actions``: one row per fired support action (store, action, action_id, severity 1-3,
    optional effort_hours, step, rule, role, label_en). ``support``: one row per tier
    (``SUPPORT_COLUMNS``; see ``default_support``). The target (design choice) is
    ``sales_yoy >= target_yoy``: by default at least last year's level of the same month.
    """
    first = _parse_month(month)
    _require(facts, "facts", ("store", "tier"))
    _require(actions, "actions", ("store", "action", "action_id", "severity"))
    policies = _policies(support)
    facts = facts.assign(store=facts["store"].astype(str), tier=facts["tier"].astype(str))
    actions = actions.assign(store=actions["store"].astype(str))
    if "effort_hours" not in actions:
        actions = actions.assign(effort_hours=0.0)
    problems: list[StoreopsError] = []
    duplicated = facts["store"][facts["store"].duplicated()].unique().tolist()
    if duplicated:
        problems.append(InputError(f"facts: store '{duplicated[0]}' has more than one row"))
    unknown_tiers = sorted(set(facts["tier"]) - set(policies))
    if unknown_tiers:
        tiers = ", ".join(sorted(set(facts["tier"])))
        problems.append(InputError(f"support: no row for tier '{unknown_tiers[0]}' "
                                   f"(tiers in the facts: {tiers})"))
    severity = pd.to_numeric(actions["severity"], errors="coerce")
    bad = actions[~severity.isin([1, 2, 3])]
    if len(bad):
        first_bad = bad.iloc[0]
        problems.append(InputError(
            f"actions: severity must be 1, 2 or 3, got {first_bad['severity']} (action_id "
            f"'{first_bad['action_id']}'; {len(bad)} row(s) like this)"))
    strays = sorted(set(actions["store"]) - set(facts["store"]))
    if strays:
        problems.append(InputError(f"actions: store '{strays[0]}' is not in the facts"))
    if problems:
        raise ErrorList(problems)

    by_store: dict[str, list[dict]] = {}
    for record in actions.to_dict("records"):
        by_store.setdefault(record["store"], []).append(record)
    for items in by_store.values():
        # the worst problems first: they go on the earliest visit
        items.sort(key=lambda r: (-int(r["severity"]), -_float(r["effort_hours"]),
                                  str(r["action_id"])))

    days = working_dates(team, month)
    weeks: dict[str, list[dt.date]] = {}
    for day in days:
        weeks.setdefault(iso_week(day), []).append(day)
    covering: dict[str, list[Supervisor]] = {}
    for sup in team.supervisors:
        for area in sup.areas:
            covering.setdefault(area, []).append(sup)

    # -- rank the stores ------------------------------------------------------------------
    stores = []
    for record in facts.to_dict("records"):
        store = record["store"]
        policy = policies[record["tier"]]
        items = by_store.get(store, [])
        outside: list[dict] = []
        if policy.breadth is not None:
            # support content outside the tier's breadth is listed, never planned, and does not
            # raise the store's priority
            outside = [r for r in items if str(r["action"]) not in policy.breadth]
            items = [r for r in items if str(r["action"]) in policy.breadth]
        severity = max((int(r["severity"]) for r in items), default=0)
        yoy = _float(record.get("sales_yoy"))
        stores.append({
            "record": record, "policy": policy, "items": items, "outside": outside,
            "severity": severity,
            "priority": policy.weight * severity, "yoy": yoy})
    # Priority = tier weight x worst severity; ties: heavier tier, then the larger fall against
    # last year, then the store id, so the order never depends on the input's row order.
    stores.sort(key=lambda s: (-s["priority"], -s["policy"].weight,
                               s["yoy"] if not math.isnan(s["yoy"]) else math.inf,
                               s["record"]["store"]))

    scheduler = _Scheduler(team, weeks)
    plan_rows: list[dict] = []
    unserved: list[dict] = []
    for rank, entry in enumerate(stores, start=1):
        record, policy, items = entry["record"], entry["policy"], entry["items"]
        store = record["store"]
        site = team.stores.get(store)
        area = site.area if site else None
        row_base = {"store": store, "tier": policy.tier, "area": area or "",
                    "priority": entry["priority"], "rank": rank}
        reason = ""
        required = policy.visits
        first_unserved = len(unserved)  # this store's rows start here, visits before actions
        if not policy.supported:
            reason = f"tier {policy.tier} is not supported (width): let go"
        elif entry["severity"] == 0 and policy.min_severity > 0:
            reason = (f"tier {policy.tier} without a fired action (visits from severity "
                      f"{policy.min_severity}): let go (width)")
        elif entry["severity"] < policy.min_severity:
            reason = (f"tier {policy.tier} without a severe problem (severity "
                      f"{entry['severity']} < {policy.min_severity}): let go (width)")
        elif required <= 0:
            reason = f"tier {policy.tier} gets no visits per month (depth)"
        if reason:
            required = 0
            status = STATUS_NOT_SUPPORTED
            placed: list[_Visit] = []
        else:
            if site is None:
                reason = "store is not in the stores file"
            elif area is None:
                reason = "store has no area in the stores file"
            elif area not in covering:
                reason = f"no supervisor covers area '{area}'"
            elif team.travel.mode == "coordinates" and (site.x_km is None or site.y_km is None):
                reason = "store has no coordinates in the stores file"
            placed = []
            for visit_no in range(1, required + 1):
                aim = _target_day(visit_no, required, days) if days else None
                target = iso_week(aim) if aim else ""
                if reason:
                    why = reason
                elif not days:
                    why = f"no working day in {month} (weekdays and public holidays)"
                else:
                    visit = scheduler.place(store, area, covering[area], aim, visit_no,
                                            required, policy.tier, entry["priority"])
                    if visit is not None:
                        placed.append(visit)
                        continue
                    names = ", ".join(s.id for s in covering[area])
                    why = (f"capacity: area {area}'s supervisors ({names}) are fully booked in "
                           f"week {target} and in every other week of {month} on the days "
                           f"free of this store")
                unserved.append({**row_base, "kind": "visit", "visit_no": visit_no,
                                 "action": "", "action_id": "", "target_week": target,
                                 "reason": why})
            status = (STATUS_PLANNED if len(placed) == required
                      else STATUS_UNSERVED if not placed else STATUS_PARTLY)
        # service content: the worst actions onto the earliest planned visits, within the
        # tier's breadth (max actions / hours per visit)
        placed.sort(key=lambda v: (v.date, v.supervisor))
        done = 0
        for item in items:
            why = _attach(item, placed, policy)
            if why is None:
                done += 1
                continue
            if not placed:
                why = reason if reason else "no visit to the store fit (see its unserved visits)"
            unserved.append({**row_base, "kind": "action", "visit_no": 0,
                             "action": str(item["action"]), "action_id": str(item["action_id"]),
                             "target_week": "", "reason": why})
        for item in entry["outside"]:
            unserved.append({**row_base, "kind": "action", "visit_no": 0,
                             "action": str(item["action"]), "action_id": str(item["action_id"]),
                             "target_week": "",
                             "reason": f"breadth: action '{item['action']}' is not in tier "
                                       f"{policy.tier}'s support content "
                                       f"({', '.join(sorted(policy.breadth or ()))})"})
        if status == STATUS_PLANNED and done < len(items):
            status = STATUS_PARTLY
        if status != STATUS_NOT_SUPPORTED and not reason and status != STATUS_PLANNED:
            # the store's first unserved visit (else action) says why; all of them: unserved
            reason = unserved[first_unserved]["reason"]
        yoy = entry["yoy"]
        plan_rows.append({
            **row_base, "severity": entry["severity"],
            "focus": status != STATUS_NOT_SUPPORTED and bool(items),
            "sales": _float(record.get("sales")), "sales_yoy": yoy,
            "target": _target_text(yoy, target_yoy),
            "target_sales_yoy": target_yoy if math.isnan(yoy) else max(yoy, target_yoy),
            "visits_required": required, "visits_planned": len(placed),
            "actions": ";".join(str(r["action"]) for r in items),
            "action_ids": ";".join(str(r["action_id"]) for r in items),
            "effort_hours": round(sum(_float(r["effort_hours"], 0.0) for r in items), 3),
            "actions_planned": done, "judge_kpis": policy.judge_kpis,
            "status": status, "reason": reason})

    week_schedule = scheduler.frame(team)
    capacity = scheduler.capacity(team)
    notes = (
        f"month {month} ({first:%B %Y}): {len(days)} working day(s) in {len(weeks)} week(s) "
        f"for {len(team.supervisors)} supervisor(s) of {_num(team.hours_per_day)} h",
        "priority = tier weight x worst severity of the store's fired actions (0 without one); "
        "ties: heavier tier, larger fall in sales_yoy, store id",
        f"target (design choice): sales_yoy >= {target_yoy:+.2f} against the same month last "
        "year (+0.00: at least last year's level)",
        "schedule: greedy by priority; a store's visits spread over the month's weeks; a day "
        "stays in one area where possible; not an optimal routing (docs/planning.md)",
    )
    # For visits left out for capacity: the lowest priority that did get a visit in the same
    # area, the evidence that what fit ranked higher.
    fitted: dict[str, float] = {}
    for row in week_schedule[["area", "priority"]].itertuples(index=False):
        fitted[row.area] = min(fitted.get(row.area, math.inf), row.priority)
    for row in unserved:
        row["cause"] = _cause(row["reason"])
        row["lowest_priority_fitted"] = (fitted.get(row["area"], math.nan)
                                         if row["cause"] == "capacity" else math.nan)
    return Plan(month, team.id,
                pd.DataFrame(plan_rows, columns=list(MONTH_PLAN_COLUMNS)),
                week_schedule,
                pd.DataFrame(unserved, columns=list(UNSERVED_COLUMNS)),
                capacity, notes)


def _cause(reason: str) -> str:
    return next(cause for marker, cause in CAUSES if marker in reason)


def _attach(item: dict, placed: list[_Visit], policy: _Policy) -> str | None:
    """Put an action on the earliest visit with room; the reason when none has any."""
    effort = _float(item["effort_hours"], 0.0)
    if policy.hours_per_visit is not None and effort > policy.hours_per_visit + 1e-9:
        return (f"breadth: the action needs {_num(effort)} h, more than the "
                f"{_num(policy.hours_per_visit)} h a tier {policy.tier} visit allows")
    for visit in placed:
        if policy.max_actions is not None and len(visit.items) >= policy.max_actions:
            continue
        if policy.hours_per_visit is not None and \
                visit.effort + effort > policy.hours_per_visit + 1e-9:
            continue
        visit.items.append(item)
        visit.effort += effort
        return None
    limits = []
    if policy.max_actions is not None:
        limits.append(f"{policy.max_actions} action(s)")
    if policy.hours_per_visit is not None:
        limits.append(f"{_num(policy.hours_per_visit)} h")
    return (f"breadth: the store's {len(placed)} planned visit(s) are full (tier "
            f"{policy.tier}: at most {' and '.join(limits)} per visit)")


def _target_day(visit_no: int, required: int, days: list[dt.date]) -> dt.date:
    """The working day visit ``visit_no`` of ``required`` aims at: evenly spaced over the month.

    Spacing by working days rather than by weeks keeps a short first or last week (a month that
    starts on a Thursday) from getting as many visits as a full one.
    """
    position = int((visit_no - 0.5) * len(days) / required)
    return days[min(position, len(days) - 1)]


@dataclass(slots=True)
class _Visit:
    supervisor: str
    date: dt.date
    store: str
    area: str
    tier: str
    priority: float
    visit_no: int
    required: int
    target_week: str
    items: list = field(default_factory=list)
    effort: float = 0.0


@dataclass(slots=True)
class _Day:
    supervisor: Supervisor
    date: dt.date
    area: str | None = None
    visits: list[_Visit] = field(default_factory=list)
    order: tuple[int, ...] = ()  # visit indices in route order
    legs: tuple[float, ...] = ()  # travel before each stop in route order, then the way home
    minutes: float = 0.0


class _Scheduler:
    """Greedy placement of visits into supervisor-days (see docs/planning.md)."""

    def __init__(self, team: Team, weeks: Mapping[str, list[dt.date]]) -> None:
        self.team = team
        self.weeks = weeks
        self.week_names = list(weeks)
        self.days: dict[tuple[str, dt.date], _Day] = {}
        self.store_days: dict[str, set[dt.date]] = {}
        self.store_weeks: dict[str, dict[int, int]] = {}
        self.booked: dict[tuple[str, int], float] = {}
        self.matrix: np.ndarray | None = None
        self.index: dict[str, int] = {}
        self.home_index: dict[str, int] = {}
        if team.travel.mode == "coordinates":
            self._build_matrix()

    def _build_matrix(self) -> None:
        from .routing import travel_minutes

        points = []
        for site in self.team.stores.values():
            if site.x_km is not None and site.y_km is not None:
                self.index[site.store] = len(points)
                points.append((site.x_km, site.y_km))
        for sup in self.team.supervisors:
            if sup.home is not None:
                self.home_index[sup.id] = len(points)
                points.append(sup.home)
        coords = np.asarray(points, dtype=float).reshape(-1, 2)
        self.matrix = travel_minutes(coords, self.team.travel.road_factor,
                                     self.team.travel.speed_kmh)

    def place(self, store: str, area: str, supervisors: Sequence[Supervisor], aim: dt.date,
              visit_no: int, required: int, tier: str, priority: float) -> _Visit | None:
        """Book one visit near day ``aim``, or return None when no supervisor-day has room."""
        target = self.week_names.index(iso_week(aim))
        seen = self.store_weeks.setdefault(store, {})
        # weeks without a visit to this store first, then the nearest to the target week
        order = sorted(range(len(self.week_names)),
                       key=lambda w: (seen.get(w, 0), abs(w - target), w))
        for w in order:
            best = None
            for rank, sup in enumerate(supervisors):
                booked = self.booked.get((sup.id, w), 0.0)
                for date in self.weeks[self.week_names[w]]:
                    if date in self.store_days.get(store, ()):
                        continue
                    day = self.days.get((sup.id, date)) or _Day(sup, date)
                    if day.minutes + self.team.visit_minutes > self.team.day_minutes + 1e-9:
                        continue
                    # a day stays in one area where possible: same area, then an empty day,
                    # then (last resort) another of the supervisor's areas
                    group = 0 if day.area == area else 1 if not day.visits else 2
                    if best is not None and group > best[0][0]:
                        continue
                    trial = self._route(day, store)
                    if trial is None:
                        continue
                    added = trial[2] - day.minutes
                    key = (group, round(added, 6), booked, abs((date - aim).days), date, rank)
                    if best is None or key < best[0]:
                        best = (key, day, trial)
            if best is not None:
                _, day, (order_, legs, minutes) = best
                visit = _Visit(day.supervisor.id, day.date, store, area, tier, priority,
                               visit_no, required, self.week_names[target])
                day.visits.append(visit)
                day.order, day.legs, day.minutes = order_, legs, minutes
                if day.area is None:
                    day.area = area
                self.days[(day.supervisor.id, day.date)] = day
                self.store_days.setdefault(store, set()).add(day.date)
                seen[w] = seen.get(w, 0) + 1
                key2 = (day.supervisor.id, w)
                self.booked[key2] = self.booked.get(key2, 0.0) + self.team.visit_minutes
                return visit
        return None

    def _route(self, day: _Day, store: str) -> tuple[tuple[int, ...], tuple[float, ...],
                                                     float] | None:
        """Route order, travel legs and total minutes of ``day`` with ``store`` added.

        None when the day would run over the team's hours.
        """
        stores = [v.store for v in day.visits] + [store]
        n = len(stores)
        travel = self.team.travel
        if travel.mode == "constant":
            legs = [travel.minutes_from_home] + [travel.minutes_between_stores] * (n - 1)
            legs.append(travel.minutes_from_home)
            order = tuple(range(n))
        else:
            from .routing import day_route

            assert self.matrix is not None
            nodes = [self.index[s] for s in stores]
            home = self.home_index.get(day.supervisor.id)
            if home is not None:
                ordered, _ = day_route(self.matrix, home, nodes)
                path = [home, *ordered, home]
            else:
                # no home: the day starts at the first store booked on it and ends at the last
                ordered, _ = day_route(self.matrix, nodes[0], nodes[1:])
                path = [nodes[0], nodes[0], *ordered]
            legs = [float(self.matrix[a, b]) for a, b in itertools.pairwise(path)]
            if home is None:
                legs.append(0.0)
            position = {node: i for i, node in enumerate(nodes)}
            order = tuple(position[node] for node in path[1:-1]) if home is not None else \
                tuple(position[node] for node in path[1:])
        total = sum(legs) + n * self.team.visit_minutes
        if total > self.team.day_minutes + 1e-9:
            return None
        return order, tuple(legs), total

    def frame(self, team: Team) -> pd.DataFrame:
        rows = []
        start = _clock_minutes(team.day_start)
        for (sup_id, date), day in sorted(self.days.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            week = iso_week(date)
            day_seq = self.weeks[week].index(date) + 1
            clock = start
            for stop, (i, leg) in enumerate(zip(day.order, day.legs, strict=False), start=1):
                visit = day.visits[i]
                arrive = clock + leg
                depart = arrive + team.visit_minutes
                clock = depart
                rows.append({
                    "supervisor": sup_id, "week": week, "date": date.isoformat(),
                    "weekday": WEEKDAYS[date.weekday()], "day_seq": day_seq, "stop_seq": stop,
                    "store": visit.store, "area": visit.area, "tier": visit.tier,
                    "priority": visit.priority, "visit_no": visit.visit_no,
                    "visits_required": visit.required, "target_week": visit.target_week,
                    "arrive": _clock_text(arrive), "depart": _clock_text(depart),
                    "travel_minutes": round(leg, 1), "visit_minutes": team.visit_minutes,
                    "day_minutes": round(day.minutes, 1),
                    "actions": ";".join(str(r["action"]) for r in visit.items),
                    "action_ids": ";".join(str(r["action_id"]) for r in visit.items)})
        return pd.DataFrame(rows, columns=list(WEEK_SCHEDULE_COLUMNS))

    def capacity(self, team: Team) -> pd.DataFrame:
        rows = []
        for week, dates in self.weeks.items():
            for sup in team.supervisors:
                days = [self.days.get((sup.id, d)) for d in dates]
                rows.append({
                    "supervisor": sup.id, "week": week, "working_days": len(dates),
                    "minutes_available": len(dates) * team.day_minutes,
                    "minutes_booked": round(sum(d.minutes for d in days if d), 1),
                    "visits": sum(len(d.visits) for d in days if d)})
        return pd.DataFrame(rows, columns=["supervisor", "week", "working_days",
                                           "minutes_available", "minutes_booked", "visits"])


# -- helpers -----------------------------------------------------------------------------------


def _parse_month(month: str) -> dt.date:
    try:
        year, number = str(month).split("-")
        if len(year) != 4 or len(number) != 2:
            raise ValueError
        return dt.date(int(year), int(number), 1)
    except ValueError:
        raise InputError(f"month: expected YYYY-MM, got '{month}'") from None


def _require(frame: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: missing column '{missing[0]}'",
                         hint=did_you_mean(missing[0], [str(c) for c in frame.columns]))


def _names(value: Any) -> list[str]:
    """A list cell (list, tuple, array) or a ';'-separated text cell as a list of names."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [str(v) for v in value]
    return []


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _float(value: Any, default: float = math.nan) -> float:
    if _missing(value):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _num(value: float) -> str:
    return f"{value:g}"


def _target_text(yoy: float, target: float) -> str:
    if math.isnan(yoy):
        return f"sales_yoy >= {target:+.2f} (no last-year figure to compare with)"
    if yoy < target:
        return (f"raise sales_yoy from {yoy:+.2f} to >= {target:+.2f} (against the same month "
                "last year)")
    return f"hold sales_yoy >= {target:+.2f} (now {yoy:+.2f})"


def _clock_minutes(text: str) -> float:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _clock_text(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60:02d}:{whole % 60:02d}"


# -- writers -----------------------------------------------------------------------------------


def write_plan(plan: Plan, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write month_plan.csv, week_schedule.csv and unserved.csv into ``out_dir`` atomically."""
    from .files import output_dir

    folder = output_dir(out_dir)
    written = {}
    for name, frame in (("month_plan", plan.month_plan), ("week_schedule", plan.week_schedule),
                        ("unserved", plan.unserved)):
        written[name] = _write_csv(frame, folder / f"{name}.csv")
    return written


def _write_csv(frame: pd.DataFrame, target: Path) -> Path:
    from .files import atomic_path

    with atomic_path(target) as temp:
        frame.to_csv(temp, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return target


# -- evaluate ----------------------------------------------------------------------------------

EVALUATION_COLUMNS = (
    "tier", "kpi", "n_visited", "n_unvisited", "n_unflagged", "visited_before", "visited_after",
    "visited_change", "unvisited_change", "unflagged_change", "did", "ci_low", "ci_high", "df",
    "note")


@dataclass(frozen=True)
class Evaluation:
    """Difference in differences of a KPI's change, per tier, with plain-language lines."""

    kpi: str
    table: pd.DataFrame  # EVALUATION_COLUMNS, one row per tier
    lines: tuple[str, ...]
    confidence: float = 0.95


def evaluate_visits(before: pd.DataFrame, after: pd.DataFrame, visits: pd.DataFrame | Iterable,
                    flagged: pd.DataFrame | Iterable, *, kpi: str = "sales_yoy",
                    confidence: float = 0.95) -> Evaluation:
    """Compare the KPI change of visited flagged stores with unvisited flagged stores, per tier.

    ``before`` (month M) and ``after`` (month M+1) hold store, tier and ``kpi``; the tier is taken
    from ``before``. ``visits`` is the visit log (a frame with a store column, or store ids);
    ``flagged`` the stores the analysis of month M flagged (same forms). For each tier:

    * change = after - before, per store (stores with the KPI missing in either month are left
      out and counted in the note);
    * did = mean change of visited flagged stores - mean change of unvisited flagged stores;
    * a Welch interval (unequal variances, Welch-Satterthwaite degrees of freedom) at
      ``confidence``; it needs at least two stores on each side;
    * the change of unflagged stores, visited or not, as the month's background.

    Stores are flagged on a bad month, and a bad month is partly bad luck: the next month is
    better on average with no visit at all (regression to the mean). The unvisited flagged
    stores show how much; the DiD removes it, a before/after of visited stores does not.
    """
    from scipy import stats

    _require(before, "before", ("store", "tier", kpi))
    _require(after, "after", ("store", kpi))
    for name, frame in (("before", before), ("after", after)):
        stores = frame["store"].astype(str)
        if stores.duplicated().any():
            raise InputError(f"{name}: store '{stores[stores.duplicated()].iloc[0]}' has more "
                             "than one row (one month per frame)")
    visited = _store_set(visits)
    flags = _store_set(flagged)
    left = before[["store", "tier", kpi]].assign(store=before["store"].astype(str))
    right = after[["store", kpi]].assign(store=after["store"].astype(str))
    merged = left.merge(right, on="store", how="left", suffixes=("_before", "_after"))
    merged["change"] = (pd.to_numeric(merged[f"{kpi}_after"], errors="coerce")
                        - pd.to_numeric(merged[f"{kpi}_before"], errors="coerce"))
    merged["flagged"] = merged["store"].isin(flags)
    merged["visited"] = merged["store"].isin(visited)
    rows, lines = [], []
    for tier in sorted(merged["tier"].astype(str).unique()):
        group = merged[merged["tier"].astype(str) == tier]
        missing = int(group["change"].isna().sum())
        group = group[group["change"].notna()]
        treated = group[group["flagged"] & group["visited"]]
        control = group[group["flagged"] & ~group["visited"]]
        unflagged = group[~group["flagged"]]
        a = treated["change"].to_numpy(float)
        b = control["change"].to_numpy(float)
        did = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
        low = high = df = math.nan
        notes = []
        if len(a) >= 2 and len(b) >= 2:
            va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
            se = math.sqrt(va + vb)
            if se > 0:
                df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
                half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
            else:
                df, half = float(len(a) + len(b) - 2), 0.0
            low, high = did - half, did + half
        else:
            notes.append("too few stores for an interval (needs 2 visited and 2 unvisited "
                         "flagged stores)")
        if missing:
            notes.append(f"{missing} store(s) without {kpi} in both months left out")
        row = {
            "tier": tier, "kpi": kpi, "n_visited": len(a), "n_unvisited": len(b),
            "n_unflagged": len(unflagged),
            "visited_before": _mean(treated[f"{kpi}_before"]),
            "visited_after": _mean(treated[f"{kpi}_after"]),
            "visited_change": _mean(treated["change"]),
            "unvisited_change": _mean(control["change"]),
            "unflagged_change": _mean(unflagged["change"]),
            "did": did, "ci_low": low, "ci_high": high, "df": df, "note": "; ".join(notes)}
        rows.append(row)
        lines.extend(_evaluation_lines(row, confidence))
    return Evaluation(kpi, pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS)), tuple(lines),
                      confidence)


def _evaluation_lines(row: Mapping[str, Any], confidence: float) -> list[str]:
    kpi, tier = row["kpi"], row["tier"]
    pct = f"{confidence:.0%}"
    out = [f"tier {tier}: {kpi} of visited flagged stores changed by "
           f"{_signed(row['visited_change'])} (n={row['n_visited']}), of unvisited flagged "
           f"stores by {_signed(row['unvisited_change'])} (n={row['n_unvisited']}), of "
           f"unflagged stores by {_signed(row['unflagged_change'])} "
           f"(n={row['n_unflagged']})."]
    if math.isnan(row["did"]):
        out.append(f"tier {tier}: no difference in differences (needs visited and unvisited "
                   "flagged stores).")
    elif math.isnan(row["ci_low"]):
        out.append(f"tier {tier}: difference in differences {_signed(row['did'])}; too few "
                   "stores for an interval.")
    else:
        verdict = ("not distinguishable from zero" if row["ci_low"] <= 0 <= row["ci_high"]
                   else "positive" if row["ci_low"] > 0 else "negative")
        out.append(f"tier {tier}: difference in differences {_signed(row['did'])} "
                   f"({pct} CI {_signed(row['ci_low'])} to {_signed(row['ci_high'])}): the "
                   f"visits' effect on {kpi} is {verdict}.")
    if row["n_unvisited"] and not row["n_visited"]:
        out.append(f"tier {tier}: no flagged store was visited; flagged stores regress to the "
                   f"mean without any visit: the {row['n_unvisited']} unvisited flagged "
                   f"store(s) changed by {_signed(row['unvisited_change'])} on their own.")
    elif row["n_unvisited"]:
        out.append(f"tier {tier}: flagged stores regress to the mean without any visit: the "
                   f"{row['n_unvisited']} unvisited flagged store(s) changed by "
                   f"{_signed(row['unvisited_change'])} on their own, so a before/after of the "
                   f"visited stores alone ({_signed(row['visited_change'])}) credits the visits "
                   "with that drift; the difference in differences does not.")
    elif row["n_visited"]:
        out.append(f"tier {tier}: every flagged store was visited, so nothing shows how much "
                   "they would have recovered on their own; flagged stores regress to the mean "
                   "without any visit, so their before/after change "
                   f"({_signed(row['visited_change'])}) is not the visits' effect. Leave a "
                   "random share of flagged stores unvisited to measure it.")
    return out


def read_visit_log(path: str | os.PathLike, *, month: str | None = None,
                   display: str | None = None) -> pd.DataFrame:
    """Read a visit log CSV: a ``store`` column and optionally ``date`` (YYYY-MM-DD).

    A ``week_schedule.csv`` written by ``write_plan`` is a visit log (the plan, not what was
    done; a log of the visits made is better evidence). With ``month``, only visits dated in
    that month are kept (a log without dates is taken as it is). Bad dates are errors at their
    row and column.
    """
    from .files import display_path

    shown = display or display_path(path)
    if not os.path.isfile(path):
        raise InputError("no such file" if not os.path.isdir(path) else
                         "is a folder, expected a CSV file", Location(shown, 1, 1))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError("the visit log is empty, expected a header row (store[,date])",
                         Location(shown, 1, 1)) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV: {str(exc).splitlines()[0]}",
                         Location(shown, 1, 1)) from None
    header = [str(c) for c in frame.columns]
    if "store" not in header:
        raise InputError("missing column 'store'", Location(shown, 1, 1),
                         did_you_mean("store", header))
    if "date" not in header:
        return frame
    col = header.index("date") + 1
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        raise ErrorList([InputError(f"bad date {frame['date'].iloc[i]!r} (expected YYYY-MM-DD)",
                                    Location(shown, int(i) + 2, col)) for i in bad[:20]])
    if month is not None:
        _parse_month(month)
        frame = frame[dates.dt.strftime("%Y-%m") == month].reset_index(drop=True)
    return frame


def _store_set(stores: pd.DataFrame | Iterable) -> set[str]:
    if isinstance(stores, pd.DataFrame):
        _require(stores, "visits/flagged", ("store",))
        return set(stores["store"].astype(str))
    return {str(s) for s in stores}


def _mean(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else math.nan


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def write_evaluation(evaluation: Evaluation, out_dir: str | os.PathLike) -> Path:
    """Write evaluation.csv (one row per tier) into ``out_dir`` atomically."""
    from .files import output_dir

    return _write_csv(evaluation.table, output_dir(out_dir) / "evaluation.csv")

"""The six store value-chain steps on real store data: KPI facts, tiers, traced actions.

A value-chain pack is an ordinary pack (fields, KPIs, actions, tables) plus a
``value_chain`` section (docs/value_chain.md) that says:

- ``input``: the raw sales columns, per store and day or week, that a mapping
  file maps a user's file onto;
- ``steps``: the six steps, each with the table holding its checks and the
  KPIs that judge it (the run reports which of them the data supports);
- ``thresholds``: trigger levels per store tier, filled into each fact as a
  field of the same name, so a rule reads ``sales_yoy <= sales_drop_limit``;
- ``tiers``: the classification table and each tier's support width, breadth
  and depth ("focus on the big, let go of the small").

``analyse`` turns the raw rows into store-week and store-month KPI facts with
pandas; ``evaluate`` classifies the store-months with the tier table, fills in
the thresholds and fires the step tables through the same runner and trail
as any other run. ``run_files`` is what ``storeops run`` does with such a pack.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import adapters, runner
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .expressions import Field, evaluate_columns
from .files import atomic_path, output_dir
from .packs import Label, Pack, SectionContext, _label
from .progress import Progress, silent

# The fields the pipeline computes for every store-period fact; a pack declares those its
# rules read (docs/value_chain.md lists their definitions).
COMPUTED = ("store_period", "store", "period", "tier", "sales", "transactions", "traffic",
            "open_days", "promo_days", "days", "new_arrival_sales", "promo_uplift",
            "sales_mom", "sales_yoy", "transactions_mom", "transactions_yoy", "ticket_mom",
            "ticket_yoy", "size_pct", "trend_12m", "sales_12m")
STEPS = 5  # progress: read, KPIs, tiers, steps, write (or plan)
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Step:
    id: str
    label: Label
    table: str
    kpis: tuple[str, ...]
    location: Location


@dataclass(frozen=True)
class Threshold:
    name: str
    label: Label | None
    unit: str | None
    by_tier: Mapping[str, float]
    design_choice: bool
    location: Location


@dataclass(frozen=True)
class TierLevel:
    id: str
    label: Label
    priority: float
    supported: bool
    min_severity: int
    breadth: tuple[str, ...]
    visits_per_month: int
    support_months: int
    judge_kpis: tuple[str, ...]


@dataclass(frozen=True)
class ValueChain:
    input: Mapping[str, Field]
    steps: tuple[Step, ...]
    thresholds: tuple[Threshold, ...]
    tier_table: str
    levels: tuple[TierLevel, ...]
    kpi_tree: Mapping[str, Any]

    def level(self, tier: str) -> TierLevel | None:
        return next((level for level in self.levels if level.id == tier), None)


# -- the section ------------------------------------------------------------------------------

def section_fields(data: Mapping[str, Any]) -> dict[str, Field]:
    """The tiered thresholds: number fields the pipeline fills in per fact."""
    out: dict[str, Field] = {}
    for item in data.get("thresholds", []) or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out[item["name"]] = Field(item["name"], "number", item.get("unit"), False)
    return out


def build_section(data: Mapping[str, Any], ctx: SectionContext) -> ValueChain | None:
    """Check the section's references against the pack and compile it."""
    before = ctx.problems()
    inputs: dict[str, Field] = {}
    for i, item in enumerate(data["input"]):
        if item["name"] in inputs:
            ctx.error(f"duplicate input column '{item['name']}'", ("input", i, "name"))
        inputs[item["name"]] = Field(item["name"], item["type"], item.get("unit"),
                                     item.get("required", True))
    for name, kind in (("store", None), ("date", "date"), ("sales", "number")):
        if name not in inputs:
            ctx.error(f"input: needs a '{name}' column", ("input",))
        elif kind and inputs[name].type != kind:
            ctx.error(f"input: '{name}' must be of type {kind}", ("input",))

    tables = {table.id: table for table in ctx.tables}
    known = {*ctx.fields, *ctx.kpis}
    steps = []
    for i, item in enumerate(data["steps"]):
        if item["table"] not in tables:
            ctx.error(f"step '{item['id']}' names table '{item['table']}', which the pack "
                      "does not have", ("steps", i, "table"), did_you_mean(item["table"], tables))
        for j, kpi in enumerate(item["kpis"]):
            if kpi not in known:
                ctx.error(f"step '{item['id']}' names KPI '{kpi}', which is neither a field "
                          "nor a KPI of the pack", ("steps", i, "kpis", j),
                          did_you_mean(kpi, known))
        steps.append(Step(item["id"], _label(item["label"]), item["table"],
                          tuple(item["kpis"]), ctx.places.at(("steps", i))))

    tiers = data["tiers"]
    levels = []
    for i, item in enumerate(tiers["levels"]):
        for j, action in enumerate(item["breadth"]):
            if action not in ctx.actions:
                ctx.error(f"tier {item['id']}: breadth names action '{action}', which the pack "
                          "does not have", ("tiers", "levels", i, "breadth", j),
                          did_you_mean(action, ctx.actions))
        depth = item["depth"]
        for j, kpi in enumerate(depth["judge_kpis"]):
            if kpi not in known:
                ctx.error(f"tier {item['id']}: judge_kpis names '{kpi}', which is neither a "
                          "field nor a KPI of the pack", ("tiers", "levels", i, "depth",
                                                          "judge_kpis", j),
                          did_you_mean(kpi, known))
        width = item["width"]
        levels.append(TierLevel(item["id"], _label(item["label"]), float(item["priority"]),
                                width["supported"], int(width.get("min_severity", 1)),
                                tuple(item["breadth"]), int(depth["visits_per_month"]),
                                int(depth.get("support_months", 1)),
                                tuple(depth["judge_kpis"])))
    level_ids = [level.id for level in levels]
    if len(set(level_ids)) != len(level_ids):
        ctx.error("tiers: two levels share an id", ("tiers", "levels"))
    table = tables.get(tiers["table"])
    if table is None:
        ctx.error(f"tiers: no table '{tiers['table']}' in the pack", ("tiers", "table"),
                  did_you_mean(tiers["table"], tables))
    elif [column.name for column in table.outputs] != ["tier"]:
        ctx.error(f"tiers: table '{table.id}' must have one output column, 'tier'",
                  ("tiers", "table"))
    else:
        for rule in table.rules:
            value = rule.result[0] if rule.result else None
            if value is not None and str(value) not in level_ids:
                ctx.report(InputError(f"tier table '{table.id}' gives tier {value!r}, which "
                                      "is not a level of tiers.levels", rule.location,
                                      f"levels: {', '.join(level_ids)}"))
    for name in ("tier", "store_period", "store", "period"):
        if name not in ctx.fields:
            ctx.error(f"the pack must declare the computed field '{name}'", ())
    for name in ctx.fields:
        if name not in COMPUTED and name not in section_fields(data) and name not in ctx.kpis:
            ctx.error(f"field '{name}' is not one the value-chain pipeline computes",
                      (), f"computed fields: {', '.join(COMPUTED)}")

    thresholds = []
    for i, item in enumerate(data.get("thresholds", [])):
        missing = [tier for tier in level_ids if tier not in item["by_tier"]]
        extra = [tier for tier in item["by_tier"] if tier not in level_ids]
        if missing:
            ctx.error(f"threshold '{item['name']}' has no value for tier "
                      f"{', '.join(missing)}", ("thresholds", i, "by_tier"))
        if extra:
            ctx.error(f"threshold '{item['name']}' has a value for tier {', '.join(extra)}, "
                      "which is not a level of tiers.levels", ("thresholds", i, "by_tier"))
        thresholds.append(Threshold(item["name"], _label(item["label"]) if "label" in item
                                    else None, item.get("unit"), dict(item["by_tier"]),
                                    item.get("design_choice", False),
                                    ctx.places.at(("thresholds", i))))
    if ctx.problems() != before:
        return None
    return ValueChain(inputs, tuple(steps), tuple(thresholds), tiers["table"], tuple(levels),
                      data.get("kpi_tree", {}))


def section_of(pack: Pack) -> ValueChain:
    return pack.sections["value_chain"]


# -- reading and aggregating ------------------------------------------------------------------

@dataclass
class Analysis:
    """KPI facts per store-month and store-week, and what the data could not judge."""

    months: pd.DataFrame
    weeks: pd.DataFrame
    skipped: list[StoreopsError]
    available: set[str]
    source: str
    grain: str


def read_sales(pack: Pack, path: str | os.PathLike,
               mapping: adapters.ColumnMapping | None, *, skip_bad: bool = False,
               progress: Progress = silent) -> tuple[pd.DataFrame, list[StoreopsError], str]:
    """The raw rows, typed and checked: negative sales, duplicate store-days, dead stores."""
    chain = section_of(pack)
    mapping = mapping or adapters.ColumnMapping()
    fields = dict(chain.input)
    if mapping.grain == "week":
        for name in ("open_days", "promo_days"):
            fields.setdefault(name, Field(name, "integer", None, name == "open_days"))
    progress(f"value chain: reading {os.fspath(path)}", 0, STEPS)
    table = adapters.read_facts(path, fields, None, mapping, skip_bad=skip_bad)
    frame = table.to_frame(fields)
    frame["store"] = frame["store"].astype(str)
    lines = table.lines if table.lines is not None else np.arange(2, 2 + table.n)
    frame["_line"] = lines
    skipped = list(table.skipped)
    problems: list[StoreopsError] = []
    def where(line: int, name: str) -> Location:
        return Location(table.source, int(line), table.column_number(mapping.column_for(name)))

    bad = np.zeros(len(frame), dtype=bool)
    negative = (frame["sales"] < 0).to_numpy()
    for name in ("transactions", "traffic", "open_days", "promo_days", "new_arrival_sales"):
        if name in frame:
            column = frame[name]
            negative_here = (column < 0).fillna(False).to_numpy(dtype=bool)
            for line in frame["_line"][negative_here].tolist():
                problems.append(InputError(f"negative {name} in column "
                                           f"'{mapping.column_for(name)}'", where(line, name)))
            bad |= negative_here
    if mapping.grain == "week":
        for name, limit in (("open_days", frame["open_days"] > 7),
                            ("promo_days", frame["promo_days"] > frame["open_days"])):
            over = limit.fillna(False).to_numpy(dtype=bool)
            what = "more than 7 open days in a week" if name == "open_days" else \
                "more promotion days than open days"
            for line in frame["_line"][over].tolist():
                problems.append(InputError(f"{what} in column '{mapping.column_for(name)}'",
                                           where(line, name)))
            bad |= over
    for line, value in zip(frame["_line"][negative].tolist(),
                           frame["sales"][negative].tolist(), strict=True):
        problems.append(InputError(f"negative sales {value:g} in column "
                                   f"'{mapping.column_for('sales')}'", where(line, "sales")))
    bad |= negative
    null_key = frame["store"].isna().to_numpy() | frame["date"].isna().to_numpy() | \
        frame["sales"].isna().to_numpy()
    for line in frame["_line"][null_key].tolist():
        problems.append(InputError("a row needs a store, a date and sales",
                                   where(line, "store")))
    bad |= null_key
    period = frame["date"].dt.to_period("W-SUN" if mapping.grain == "week" else "D")
    duplicate = pd.DataFrame({"store": frame["store"], "p": period}).duplicated(keep=False)
    if duplicate.any():
        first: dict[tuple, int] = {}
        unit = "store-week" if mapping.grain == "week" else "store-day"
        for store, p, line in zip(frame["store"][duplicate], period[duplicate],
                                  frame["_line"][duplicate], strict=True):
            key = (store, p)
            if key in first:
                problems.append(InputError(
                    f"duplicate {unit}: store {store} on {p.start_time.date()} is also on "
                    f"row {first[key]}", where(line, "date")))
            else:
                first[key] = int(line)
        dup = duplicate.to_numpy() & ~pd.Series(period).groupby(
            [frame["store"].to_numpy(), period.to_numpy()]).cumcount().eq(0).to_numpy()
        bad |= dup
    frame = frame[~bad]
    opened = _open_column(frame, mapping.grain)
    dead = opened.groupby(frame["store"]).sum()
    for store in dead.index[dead == 0].tolist():
        line = int(frame.loc[frame["store"] == store, "_line"].min())
        problems.append(InputError(
            f"store {store} has no open day in the file: none of its KPIs can be judged",
            where(line, "store"), "leave it out of the file, or run with --bad-rows skip"))
    frame = frame[~frame["store"].isin(dead.index[dead == 0])]
    if problems and not skip_bad:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(InputError(f"... and {len(problems) - MAX_PROBLEMS:,} more problems",
                                    Location(table.source, 1, 1)))
        raise ErrorList(shown)
    skipped.extend(problems)
    return frame.reset_index(drop=True), skipped, table.source


def analyse(pack: Pack, path: str | os.PathLike,
            mapping: adapters.ColumnMapping | None = None, *, skip_bad: bool = False,
            progress: Progress = silent) -> Analysis:
    """Raw store sales -> store-month and store-week KPI facts (docs/value_chain.md)."""
    mapping = mapping or adapters.ColumnMapping()
    frame, skipped, source = read_sales(pack, path, mapping, skip_bad=skip_bad,
                                        progress=progress)
    if frame.empty:
        raise InputError("no usable rows: every row was left out", Location(source, 1, 1))
    progress("value chain: store-month and store-week KPIs", 1, STEPS)
    available = {name for name in frame.columns if not name.startswith("_")
                 and frame[name].notna().any()}
    months = _aggregate(frame, "M", mapping.grain)
    weeks = _aggregate(frame, "W", mapping.grain)
    months = _with_changes(months, "M")
    weeks = _with_changes(weeks, "W")
    months = _with_size_and_trend(months)
    weeks = _with_kpis(pack, weeks)
    return Analysis(months, weeks, skipped, available, source, mapping.grain)


def _with_kpis(pack: Pack, frame: pd.DataFrame) -> pd.DataFrame:
    """The pack's KPI formulas (average ticket, promo share...) as columns of a KPI frame.

    Computed by the same compiled formulas the rules read; a KPI whose formula needs a
    column the frame lacks (a month-on-month change on week facts) is left out.
    """
    usable = [name for name in pack.fields if name in frame.columns]
    fields = {name: pack.fields[name] for name in usable}
    facts = adapters.facts_from_dataframe(frame[usable], fields, None, source="<kpis>")
    columns, added = dict(facts.columns), []
    for kpi in pack.derived():
        if set(kpi.formula.fields) <= set(columns):
            columns[kpi.id] = evaluate_columns(kpi.formula, columns, facts.n)
            fields[kpi.id] = Field(kpi.id, kpi.formula.type, kpi.unit, False)
            added.append(kpi.id)
    table = adapters.FactTable(source=facts.source, n=facts.n, fields=fields, columns=columns)
    out = frame.copy()
    for name in added:
        out[name] = table.series(name).set_axis(out.index)
    return out


def _open_column(frame: pd.DataFrame, grain: str) -> pd.Series:
    if grain == "week":
        return frame["open_days"].fillna(0)
    if "open" in frame and frame["open"].notna().any():
        return frame["open"].fillna(frame["sales"] > 0).astype(bool).astype(int)
    return (frame["sales"] > 0).astype(int)


def _aggregate(frame: pd.DataFrame, unit: str, grain: str) -> pd.DataFrame:
    """Sum raw rows into store-periods: sales, transactions, open and promo days, uplift."""
    dates = frame["date"]
    if unit == "M":
        if grain == "week":
            # a week counts in the month of its Thursday (as ISO 8601 gives weeks to years)
            dates = dates + pd.to_timedelta(3 - dates.dt.day_of_week, unit="D")
        period = dates.dt.to_period("M").astype(str)
    else:
        iso = dates.dt.isocalendar()
        period = iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    opened = _open_column(frame, grain)
    work = pd.DataFrame({"store": frame["store"], "period": period, "sales": frame["sales"],
                         "open_days": opened})
    for name in ("transactions", "traffic", "new_arrival_sales"):
        work[name] = frame.get(name, np.nan)
    if grain == "week":
        work["promo_days"] = frame.get("promo_days", np.nan)
        work["days"] = 7
    else:
        promo = frame["promo"] if "promo" in frame else pd.Series(pd.NA, index=frame.index)
        has_promo = promo.notna().any()
        promo_open = (promo.fillna(False).astype(bool) & (opened > 0)) if has_promo else None
        work["promo_days"] = promo_open.astype(int) if has_promo else np.nan
        work["days"] = 1
        if has_promo:
            work["promo_sales"] = frame["sales"].where(promo_open, 0.0)
            work["plain_sales"] = frame["sales"].where(~promo_open & (opened > 0), 0.0)
            work["plain_days"] = (~promo_open & (opened > 0)).astype(int)
    grouped = work.groupby(["store", "period"], sort=True)
    sums = {name: "sum" for name in ("sales", "open_days", "days")}
    out = grouped.agg(sums)
    for name in ("transactions", "traffic", "new_arrival_sales", "promo_days"):
        out[name] = grouped[name].sum(min_count=1)
    if "promo_sales" in work:
        promo_sales = grouped["promo_sales"].sum()
        plain = grouped[["plain_sales", "plain_days"]].sum()
        per_promo = promo_sales / out["promo_days"].where(out["promo_days"] > 0)
        per_plain = plain["plain_sales"] / plain["plain_days"].where(plain["plain_days"] > 0)
        out["promo_uplift"] = per_promo / per_plain.where(per_plain > 0) - 1
    else:
        out["promo_uplift"] = np.nan
    out = out.reset_index()
    out["open_days"] = out["open_days"].astype(np.int64)
    out["days"] = out["days"].astype(np.int64)
    out["promo_days"] = out["promo_days"].astype("Int64")
    out["store_period"] = out["store"] + "@" + out["period"]
    return out


def _with_changes(frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Changes against the previous period and the same period a year before.

    Rates per open day are compared (like for like: a store closed for a week is a
    store-operations finding, not a sales drop); a missing or closed period gives null.
    A week is compared with the week before and with the same ISO week a year before.
    """
    out = frame.copy()
    days = out["open_days"].where(out["open_days"] > 0)
    rates = pd.DataFrame({
        "store": out["store"], "period": out["period"],
        "sales": out["sales"] / days,
        "transactions": out["transactions"] / days,
        "ticket": out["sales"] / out["transactions"].where(out["transactions"] > 0),
    })
    previous, last_year = _earlier_periods(out["period"], unit)
    short = "mom" if unit == "M" else "wow"
    for suffix, periods in ((short, previous), ("yoy", last_year)):
        keys = pd.DataFrame({"store": out["store"], "period": periods})
        before = keys.merge(rates, on=["store", "period"], how="left")
        for name in ("sales", "transactions", "ticket"):
            now = rates[name].to_numpy(dtype=np.float64)
            then = before[name].to_numpy(dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"{name}_{suffix}"] = np.where(then > 0, now / then - 1, np.nan)
    return out


def _earlier_periods(periods: pd.Series, unit: str) -> tuple[pd.Series, pd.Series]:
    """The period before each period, and the same period a year before (vectorised)."""
    if unit == "M":
        index = periods.str[:4].astype(int) * 12 + periods.str[5:7].astype(int) - 1

        def name(ix: pd.Series) -> pd.Series:
            return (ix // 12).astype(str).str.zfill(4) + "-" + \
                (ix % 12 + 1).astype(str).str.zfill(2)

        return name(index - 1), name(index - 12)
    mondays = pd.to_datetime(periods + "-1", format="%G-W%V-%u")
    iso = (mondays - pd.Timedelta(days=7)).dt.isocalendar()
    previous = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    last_year = (periods.str[:4].astype(int) - 1).astype(str).str.zfill(4) + periods.str[4:]
    return previous.reset_index(drop=True), last_year


def _with_size_and_trend(months: pd.DataFrame) -> pd.DataFrame:
    """Trailing-12-month average daily sales, its percentile among the month's stores, trend.

    size_pct is 1.0 for the biggest store of the month and near 0 for the smallest;
    trend_12m compares the trailing 12 months with the 12 before them (null until a
    store has a year of history before the window).
    """
    periods = pd.period_range(months["period"].min(), months["period"].max(), freq="M")
    columns = [str(p) for p in periods]
    sales = months.pivot(index="store", columns="period", values="sales") \
        .reindex(columns=columns).fillna(0.0)
    days = months.pivot(index="store", columns="period", values="open_days") \
        .reindex(columns=columns).fillna(0.0)
    s = sales.to_numpy().cumsum(axis=1)
    d = days.to_numpy().cumsum(axis=1)

    def window(c: np.ndarray, end: int, length: int) -> np.ndarray:
        hi = c[:, end]
        lo = c[:, end - length] if end - length >= 0 else 0.0
        return hi - lo

    n = len(columns)
    sales_12 = np.full(sales.shape, np.nan)
    rate_12 = np.full(sales.shape, np.nan)
    trend = np.full(sales.shape, np.nan)
    for j in range(n):
        ws, wd = window(s, j, 12), window(d, j, 12)
        sales_12[:, j] = ws
        with np.errstate(divide="ignore", invalid="ignore"):
            rate_12[:, j] = np.where(wd > 0, ws / wd, np.nan)
            if j >= 23:
                ps, pd_ = window(s, j - 12, 12), window(d, j - 12, 12)
                prior = np.where(pd_ > 0, ps / pd_, np.nan)
                trend[:, j] = np.where(prior > 0, rate_12[:, j] / prior - 1, np.nan)
    frame = pd.DataFrame({
        "store": np.repeat(sales.index.to_numpy(), n),
        "period": np.tile(columns, len(sales.index)),
        "sales_12m": sales_12.ravel(), "rate_12m": rate_12.ravel(), "trend_12m": trend.ravel(),
    })
    out = months.merge(frame, on=["store", "period"], how="left")
    out["size_pct"] = out.groupby("period")["rate_12m"].rank(pct=True)
    return out.drop(columns=["rate_12m"])


# -- evaluation -------------------------------------------------------------------------------

@dataclass
class Evaluated:
    """What the rules made of the store-months: tiers and actions, both traced."""

    run_id: str
    months: pd.DataFrame          # the facts with tier and thresholds filled in
    tiers: pd.DataFrame           # store, period, tier, size_pct, trend_12m, decision_id, rule
    actions: pd.DataFrame         # one row per action, with step, role, effort and severity
    firings: int
    support: pd.DataFrame         # per step and KPI: supported or lacking, and why


def evaluate(pack: Pack, analysis: Analysis, trail: Any, *, periods: Sequence[str] | None = None,
             progress: Progress = silent) -> Evaluated:
    """Classify, fill thresholds, fire the step tables; record both passes in ``trail``."""
    chain = section_of(pack)
    months = analysis.months
    if periods is not None:
        months = months[months["period"].isin(list(periods))].reset_index(drop=True)
    progress("value chain: classifying stores into tiers", 2, STEPS)
    base = _base_facts(pack, months)
    facts = _with_tier(pack, base, None)
    tables = runner.compile_packs([pack])
    tier_tables = [t for t in tables if t.table.id == chain.tier_table]
    step_tables = [t for t in tables if t.table.id != chain.tier_table]
    fired = runner.fire_columns(tier_tables, facts)
    seqs = runner.record(fired, tier_tables, facts, trail)
    tier = np.full(facts.n, None, dtype=object)
    decision = np.full(facts.n, "", dtype=object)
    rule_ids = np.full(facts.n, "", dtype=object)
    table = tier_tables[0].table
    for i, r, seq in zip(fired.fact.tolist(), fired.rule.tolist(), seqs.tolist(), strict=True):
        if tier[i] is None:
            tier[i] = str(table.rules[r].result[0])
            decision[i] = f"{trail.run_id}.{seq}"
            rule_ids[i] = table.rules[r].id
    if any(t is None for t in tier):
        missing = [s for s, t in zip(facts.column_list("store_period"), tier, strict=True)
                   if t is None]
        raise InputError(f"the tier table '{table.id}' gives no tier for {len(missing):,} "
                         f"store-months (first: {missing[0]}); add a last row that always "
                         "matches", table.location)
    months = months.assign(tier=tier)
    progress("value chain: checking the six steps", 3, STEPS)
    facts = _with_tier(pack, base, tier)
    tier_firings = len(fired)
    fired = runner.fire_columns(step_tables, facts)
    seqs = runner.record(fired, step_tables, facts, trail)
    actions = runner.actions_frame(fired, seqs, trail.run_id, step_tables, facts)
    actions = _enrich(pack, chain, actions, facts)
    tiers = pd.DataFrame({
        "store": months["store"], "period": months["period"], "tier": tier,
        "size_pct": months["size_pct"], "trend_12m": months["trend_12m"],
        "sales_12m": months["sales_12m"], "rule": rule_ids, "decision_id": decision,
    })
    filled = months.copy()
    for name in [kpi.id for kpi in pack.derived()] + [t.name for t in chain.thresholds]:
        filled[name] = facts.series(name)
    support = data_support(pack, analysis.available)
    return Evaluated(trail.run_id, filled, tiers, actions, tier_firings + len(fired), support)


def _base_facts(pack: Pack, months: pd.DataFrame) -> adapters.FactTable:
    """The store-months typed by the pack's fields, once; tier and thresholds come later."""
    frame = pd.DataFrame({name: months.get(name, None) for name in pack.fields})
    return adapters.facts_from_dataframe(frame, pack.fields, None, source="<store-months>")


def _with_tier(pack: Pack, base: adapters.FactTable,
               tier: np.ndarray | None) -> adapters.FactTable:
    """The base facts with the tier (null before classification), each tier's thresholds
    and the pack's KPI formulas."""
    columns = dict(base.columns)
    fields = dict(base.fields)
    if "tier" in fields:
        if tier is None:
            columns["tier"] = (np.full(base.n, None, dtype=object), np.ones(base.n, dtype=bool))
        else:
            columns["tier"] = (np.asarray(tier, dtype=object), None)
    for threshold in section_of(pack).thresholds:
        if tier is None:
            values, nulls = np.zeros(base.n), np.ones(base.n, dtype=bool)
        else:
            values = np.array([threshold.by_tier.get(t, np.nan) for t in tier], dtype=float)
            nulls = np.isnan(values)
            values = np.where(nulls, 0.0, values)
        columns[threshold.name] = (values, nulls if nulls.any() else None)
        fields[threshold.name] = Field(threshold.name, "number", threshold.unit, False)
    facts = adapters.FactTable(source=base.source, n=base.n, fields=fields, columns=columns)
    return runner.with_derived([pack], facts)


def _enrich(pack: Pack, chain: ValueChain, actions: pd.DataFrame,
            facts: adapters.FactTable) -> pd.DataFrame:
    step_of = {step.table: step.id for step in chain.steps}
    rows = actions["input_row"].to_numpy() - 1 if len(actions) else np.zeros(0, dtype=int)
    out = actions.copy()
    stores = facts.column_objects("store")
    periods = facts.column_objects("period")
    tiers = facts.column_objects("tier")
    out.insert(1, "store", stores[rows] if len(rows) else [])
    out.insert(2, "period", periods[rows] if len(rows) else [])
    out.insert(3, "tier", tiers[rows] if len(rows) else [])
    out["step"] = out["table_id"].map(step_of).fillna("")
    out["role"] = [pack.actions[a].role or "" for a in out["action"]]
    out["effort_hours"] = [pack.actions[a].effort_hours or 0.0 for a in out["action"]]
    out["severity"] = [int(json.loads(p).get("severity", 1)) if p else 1
                       for p in out["params"]]
    return out


def data_support(pack: Pack, available: set[str]) -> pd.DataFrame:
    """Per step and KPI: can the data judge it? A KPI needs every raw column it rests on."""
    chain = section_of(pack)
    needs = _raw_needs(pack)
    rows = []
    for step in chain.steps:
        for kpi in step.kpis:
            raw = needs.get(kpi, set())
            lacking = sorted(raw - available)
            rows.append({"step": step.id, "step_label": f"{step.label.zh} {step.label.en}",
                         "kpi": kpi, "supported": not lacking,
                         "lacking": ", ".join(lacking),
                         "needs": ", ".join(sorted(raw))})
    return pd.DataFrame(rows, columns=["step", "step_label", "kpi", "supported", "lacking",
                                       "needs"])


# Which raw input columns each computed field rests on.
_RAW = {
    "sales": {"sales"}, "transactions": {"transactions"}, "traffic": {"traffic"},
    "open_days": {"sales"}, "days": {"date"}, "promo_days": {"promo"},
    "new_arrival_sales": {"new_arrival_sales"}, "promo_uplift": {"promo", "sales"},
    "sales_mom": {"sales"}, "sales_yoy": {"sales"}, "transactions_mom": {"transactions"},
    "transactions_yoy": {"transactions"}, "ticket_mom": {"sales", "transactions"},
    "ticket_yoy": {"sales", "transactions"}, "size_pct": {"sales"}, "trend_12m": {"sales"},
    "sales_12m": {"sales"}, "tier": {"sales"}, "store": {"store"}, "period": {"date"},
    "store_period": {"store", "date"},
}


def _raw_needs(pack: Pack) -> dict[str, set[str]]:
    needs = {name: set(raw) for name, raw in _RAW.items()}
    for kpi in pack.kpis.values():
        if kpi.formula is not None:
            raw: set[str] = set()
            for name in kpi.formula.fields:
                raw |= needs.get(name, {name})
            needs[kpi.id] = raw
    return needs


# -- run_files: what `storeops run` does with a value-chain pack -------------------------------

def run_files(packs: Sequence[Pack], input_path: str | os.PathLike, out_dir: str | os.PathLike,
              *, mapping: str | os.PathLike | None = None, trail: str | os.PathLike | None = None,
              engine: str = "columnar", command: str = "", progress: Progress = silent,
              bad_rows: str = "stop"):
    """KPI facts, tiers, the six steps' actions and the data-support report, all written."""
    from .api import RunSummary
    from .trail import open_trail

    if len(packs) != 1:
        raise InputError("a value-chain run takes one pack (a region pack extends its base)",
                         Location(packs[-1].path, 1, 1))
    pack = packs[0]
    column_mapping = adapters.load_mapping(mapping) if mapping else None
    analysis = analyse(pack, input_path, column_mapping, skip_bad=bad_rows == "skip",
                       progress=progress)
    folder = output_dir(out_dir)
    meta = {"engine": engine, "input": os.fspath(input_path), "pipeline": "value_chain",
            "packs": [{"id": pack.id, "version": pack.version, "sha256": pack.sha256,
                       "path": pack.path}]}
    with open_trail(trail, command=command, clock="wall", meta=meta) as sink:
        result = evaluate(pack, analysis, sink, progress=progress)
    progress("value chain: writing outputs", 4, STEPS)
    written = write_outputs(folder, analysis, result)
    progress("value chain: done", STEPS, STEPS)
    if trail is not None:
        written.append(os.fspath(trail))
    report = summary_lines(pack, analysis, result)
    return RunSummary(result.run_id, len(analysis.months), result.firings, result.actions,
                      tuple(written), pd.DataFrame(), tuple(report))


def write_outputs(folder, analysis: Analysis, result: Evaluated) -> list[str]:
    written: list[str] = []

    def both(frame: pd.DataFrame, name: str) -> None:
        for suffix in ("csv", "parquet"):
            path = folder / f"{name}.{suffix}"
            with atomic_path(path) as temp:
                if suffix == "csv":
                    frame.to_csv(temp, index=False, lineterminator="\n")
                else:
                    frame.to_parquet(temp, index=False)
            written.append(str(path))

    both(result.tiers, "tiers")
    both(result.months, "kpi_months")
    both(analysis.weeks, "kpi_weeks")
    both(result.actions, "actions")
    path = folder / "data_support.csv"
    with atomic_path(path) as temp:
        result.support.to_csv(temp, index=False, lineterminator="\n")
    written.append(str(path))
    if analysis.skipped:
        from .api import write_bad_rows

        written.append(write_bad_rows(folder / "bad_rows.csv", analysis.skipped))
    return written


def summary_lines(pack: Pack, analysis: Analysis, result: Evaluated) -> list[str]:
    """The terminal summary: tiers of the last month, actions per step, data support."""
    chain = section_of(pack)
    lines: list[str] = []
    last = result.tiers["period"].max()
    counts = result.tiers[result.tiers["period"] == last]["tier"].value_counts()
    lines.append(f"tiers in {last}: " + ", ".join(
        f"{level.id} {int(counts.get(level.id, 0)):,}" for level in chain.levels))
    support = result.support
    lines.append(f"{'step':<22} {'actions':>9} {'last month':>10}  KPIs the data lacks")
    actions = result.actions
    for step in chain.steps:
        mine = actions[actions["step"] == step.id]
        recent = int((mine["period"] == last).sum())
        lacking = support[(support["step"] == step.id) & ~support["supported"]]["kpi"]
        lacking_text = ", ".join(lacking) if len(lacking) else "-"
        lines.append(f"{step.label.en:<22} {len(mine):>9,} {recent:>10,}  {lacking_text}")
    if analysis.skipped:
        lines.append(f"left out {len(analysis.skipped):,} bad rows (see bad_rows.csv)")
    return lines


# -- planning and evaluation on top of the analysis (docs/planning.md) --------------------

def the_value_chain_pack(packs: Sequence[Pack]) -> Pack:
    """The one pack of a plan or evaluation; it must have a value_chain section."""
    if len(packs) != 1:
        raise InputError("plans and evaluations take one pack (a region pack extends its base)",
                         Location(packs[-1].path, 1, 1))
    if "value_chain" not in packs[0].sections:
        raise InputError(f"pack '{packs[0].id}' has no value_chain section to plan with",
                         Location(packs[0].path, 1, 1), "use rules/value_chain.yaml or a "
                         "region pack that extends it")
    return packs[0]


def support_table(chain: ValueChain) -> pd.DataFrame:
    """The pack's tier levels as planning's support table (width, breadth, depth, weight)."""
    return pd.DataFrame([{
        "tier": level.id, "supported": level.supported, "min_severity": level.min_severity,
        "visits_per_month": level.visits_per_month, "weight": level.priority,
        "judge_kpis": list(level.judge_kpis), "breadth": list(level.breadth),
    } for level in chain.levels])


def plan_files(packs: Sequence[Pack], input_path: str | os.PathLike,
               out_dir: str | os.PathLike, *, team: str | os.PathLike, month: str,
               mapping: str | os.PathLike | None = None,
               trail: str | os.PathLike | None = None, command: str = "",
               progress: Progress = silent, bad_rows: str = "stop"):
    """Analyse the month before ``month``, plan ``month`` within the team, write the plan.

    Writes month_plan.csv, week_schedule.csv, unserved.csv (planning.write_plan), the analysed
    month's tiers and actions (write_outputs), and the trail whose action ids the week
    schedule cites.
    """
    from . import planning
    from .trail import open_trail

    pack = the_value_chain_pack(packs)
    crew = planning.load_team(team)           # a bad team file fails before the long analysis
    analysed = planning.shift_month(month, -1)
    column_mapping = adapters.load_mapping(mapping) if mapping else None
    analysis = analyse(pack, input_path, column_mapping, skip_bad=bad_rows == "skip",
                       progress=progress)
    if analysed not in set(analysis.months["period"]):
        last = analysis.months["period"].max()
        raise InputError(f"--month {month} is planned from the analysis of {analysed}, but "
                         f"the data has no {analysed} (last month: {last})",
                         Location(analysis.source, 1, 1))
    folder = output_dir(out_dir)
    meta = {"input": os.fspath(input_path), "pipeline": "value_chain plan", "month": month,
            "team": crew.path, "packs": [{"id": pack.id, "version": pack.version,
                                          "sha256": pack.sha256, "path": pack.path}]}
    with open_trail(trail, command=command, clock="wall", meta=meta) as sink:
        result = evaluate(pack, analysis, sink, periods=[analysed], progress=progress)
    progress(f"value chain: planning {month} for team {crew.id}", 4, STEPS)
    actions = result.actions[result.actions["period"] == analysed]
    plan = planning.plan_month(result.months, actions, support_table(section_of(pack)),
                               crew, month)
    written = [os.fspath(p) for p in planning.write_plan(plan, folder).values()]
    written += write_outputs(folder, analysis, result)
    progress("value chain: done", STEPS, STEPS)
    if trail is not None:
        written.append(os.fspath(trail))
    return plan, tuple(written)


def evaluate_files(packs: Sequence[Pack], input_path: str | os.PathLike,
                   out_dir: str | os.PathLike, *, visits: str | os.PathLike, month: str,
                   mapping: str | os.PathLike | None = None, kpi: str = "sales_yoy",
                   progress: Progress = silent, bad_rows: str = "stop"):
    """Evaluate the visits of ``month``: KPI change from the month before, DiD per tier.

    Flagged stores are those with at least one support action in the month before (the
    analysis the plan came from); no trail is written (nothing is decided here).
    """
    from . import planning
    from .trail import open_trail

    pack = the_value_chain_pack(packs)
    analysed = planning.shift_month(month, -1)
    log = planning.read_visit_log(visits, month=month)
    column_mapping = adapters.load_mapping(mapping) if mapping else None
    analysis = analyse(pack, input_path, column_mapping, skip_bad=bad_rows == "skip",
                       progress=progress)
    periods = set(analysis.months["period"])
    for needed in (analysed, month):
        if needed not in periods:
            raise InputError(f"evaluating {month} needs the data of {analysed} and {month}; "
                             f"the data has no {needed}", Location(analysis.source, 1, 1))
    with open_trail(None) as sink:
        result = evaluate(pack, analysis, sink, periods=[analysed, month], progress=progress)
    months = result.months
    before = months[months["period"] == analysed]
    after = months[months["period"] == month]
    flagged = result.actions.loc[result.actions["period"] == analysed, "store"].unique()
    evaluation = planning.evaluate_visits(before, after, log, flagged, kpi=kpi)
    path = planning.write_evaluation(evaluation, output_dir(out_dir))
    return evaluation, (os.fspath(path),)


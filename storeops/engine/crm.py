"""The store's CRM capability scorecard and its monthly sales funnel (seed 003).

Two kinds of ``customers:`` section, each a pack of its own (rules/crm_scorecard.yaml,
rules/sales_funnel.yaml):

* ``scorecard``: a self-assessment file rates each of the seed's CRM dimensions 1..5 per store
  (「CRM能力评估计分卡」, 1 很不理想 .. 5 非常好). Every (store, dimension) becomes a fact with
  its score and its gap to the target; the pack's rules turn gaps into training and actions at
  the seed's cadence (daily, weekly, quarterly, ...). Written out: ``scorecard.csv`` (the stores
  side by side), ``plan.csv`` (the prioritised improvement plan), ``actions.csv``, the trail.
* ``funnel``: a monthly file counts the customers reaching each step of the seed's 8-step sales
  process per store. Every (store, month, step) becomes a fact with the step's conversion and
  its own history (the mean of the previous months); the pack's rules flag a step whose
  conversion falls against that history and name the training
  (「销售经理对每月顾客转化率数据进行统计与历史数据比较，进行差距分析」).
  Written out: ``funnel.csv``, ``actions.csv``, the trail.

The files are read by the adapters (typed columns, file/row/column on every bad cell); the
checks that types cannot make (a rating outside 1..5, a missing dimension, more customers at a
step than at the step before) are made here, all before anything is written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import adapters, runner
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .expressions import Field
from .files import atomic_path, display_path, output_dir
from .packs import Label, Pack, SectionContext
from .progress import Progress, silent
from .trail import open_trail

SCALE = (1, 5)  # seed 003: 1 很不理想 .. 5 非常好


@dataclass(frozen=True, slots=True)
class Dimension:
    id: str
    label: Label


@dataclass(frozen=True)
class Scorecard:
    target: int
    dimensions: tuple[Dimension, ...]


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: Label
    step: int                 # 1-based position in the sales process
    base: str | None          # the stage it converts from; None for the first


@dataclass(frozen=True)
class Funnel:
    history_months: int
    stages: tuple[Stage, ...]


SCORECARD_FIELDS = {"store": "text", "dimension": "text", "score": "integer", "gap": "integer",
                    "target": "integer"}
FUNNEL_FIELDS = {"store": "text", "month": "text", "stage": "text", "step": "integer",
                 "reached": "integer", "base_count": "integer", "conversion": "number",
                 "history": "number", "history_reached": "number", "history_months": "integer"}


def build(kind: str, data: Mapping[str, Any], ctx: SectionContext) -> Any:
    """Compile a scorecard or funnel section (called by customers.build_section)."""
    from .customers import CustomersSection

    produced = SCORECARD_FIELDS if kind == "scorecard" else FUNNEL_FIELDS
    bad = False
    for name, f in ctx.fields.items():
        if name in ctx.kpis and ctx.kpis[name].formula is not None:
            continue  # a KPI with a formula: computed by the engine
        if name not in produced:
            ctx.error(f"field '{name}' is not one a {kind} run produces", (kind,),
                      did_you_mean(name, produced) or f"expected one of {', '.join(produced)}")
            bad = True
        elif f.type != produced[name]:
            ctx.error(f"field '{name}' must have type {produced[name]}, not {f.type}", (kind,))
            bad = True
    if kind == "scorecard":
        ids = [d["id"] for d in data["dimensions"]]
        for i, name in enumerate(ids):
            if name in ids[:i]:
                ctx.error(f"duplicate dimension '{name}'", (kind, "dimensions", i, "id"))
                bad = True
        if bad:
            return None
        card = Scorecard(int(data["target"]), tuple(
            Dimension(d["id"], Label(d["label"]["zh"], d["label"]["en"]))
            for d in data["dimensions"]))
        return CustomersSection("scorecard", scorecard=card)
    stages: list[Stage] = []
    ids = [s["id"] for s in data["stages"]]
    for i, raw in enumerate(data["stages"]):
        if raw["id"] in ids[:i]:
            ctx.error(f"duplicate stage '{raw['id']}'", (kind, "stages", i, "id"))
            bad = True
        base = raw.get("base", ids[i - 1] if i else None)
        if base is not None and base not in ids[:i]:
            ctx.error(f"base '{base}' is not an earlier stage", (kind, "stages", i, "base"),
                      did_you_mean(base, ids[:i]))
            bad = True
        stages.append(Stage(raw["id"], Label(raw["label"]["zh"], raw["label"]["en"]), i + 1,
                            base))
    if bad:
        return None
    return CustomersSection("funnel", funnel=Funnel(int(data["history_months"]),
                                                    tuple(stages)))


# -- reading -------------------------------------------------------------------------------------

def _read(path: str | os.PathLike, kinds: Mapping[str, str],
          mapping: adapters.ColumnMapping | None) -> tuple[pd.DataFrame, str, list[str]]:
    """The named columns, typed by the adapters; the displayed name and the file's header."""
    fields = {name: Field(name, kind) for name, kind in kinds.items()}
    facts = adapters.read_facts(path, fields, None, mapping)
    return facts.to_frame(kinds), facts.source, list(facts.header)


def _column(mapping: adapters.ColumnMapping | None, name: str) -> str:
    return mapping.column_for(name) if mapping else name


def read_scorecard(path: str | os.PathLike, card: Scorecard,
                   mapping: adapters.ColumnMapping | None = None) -> pd.DataFrame:
    """One row per (store, dimension) in the seed's order; raise ErrorList on bad ratings."""
    shown = display_path(path)
    _check_file(path, shown)
    header = _header_of(path, mapping)
    errors: list[StoreopsError] = []
    if _column(mapping, "store") not in header:
        errors.append(InputError(f"the scorecard has no column '{_column(mapping, 'store')}'",
                                 Location(shown, 1, 1), did_you_mean("store", header)))
    for d in card.dimensions:
        if _column(mapping, d.id) not in header:
            errors.append(InputError(
                f"the scorecard misses dimension '{d.id}' ({d.label.zh} / {d.label.en}): no "
                f"column '{_column(mapping, d.id)}'", Location(shown, 1, len(header) + 1),
                did_you_mean(_column(mapping, d.id), header)
                or "add the column and rate every store 1-5"))
    if errors:
        raise ErrorList(errors)
    kinds = {"store": "text", **{d.id: "integer" for d in card.dimensions}}
    frame, shown, header = _read(path, kinds, mapping)
    stores = frame["store"]
    store_col = header.index(_column(mapping, "store")) + 1
    for i in np.flatnonzero(stores.isna().to_numpy()).tolist():
        errors.append(InputError("no store name", Location(shown, i + 2, store_col)))
    for i in np.flatnonzero(stores.duplicated().to_numpy() & stores.notna().to_numpy()).tolist():
        errors.append(InputError(f"store '{stores.iloc[i]}' is rated twice",
                                 Location(shown, i + 2, store_col)))
    low, high = SCALE
    for d in card.dimensions:
        col = header.index(_column(mapping, d.id)) + 1
        values = frame[d.id]
        for i in np.flatnonzero(values.isna().to_numpy()).tolist():
            errors.append(InputError(
                f"store '{stores.iloc[i]}' has no rating for dimension '{d.id}' "
                f"({d.label.en})", Location(shown, i + 2, col), f"rate it {low}-{high}"))
        outside = (values.notna() & ((values < low) | (values > high))).to_numpy()
        for i in np.flatnonzero(outside).tolist():
            errors.append(InputError(
                f"rating {int(values.iloc[i])} for dimension '{d.id}' is outside {low}-{high}",
                Location(shown, i + 2, col), "1 很不理想 very poor .. 5 非常好 very good"))
    if errors:
        raise ErrorList(errors)
    rows = []
    for i, store in enumerate(stores.tolist()):
        for d in card.dimensions:
            rating = int(frame[d.id].iloc[i])
            rows.append((store, d.id, rating, max(card.target - rating, 0), card.target, i + 2))
    return pd.DataFrame.from_records(
        rows, columns=["store", "dimension", "score", "gap", "target", "input_row"])


def _check_file(path: str | os.PathLike, shown: str) -> None:
    if os.path.isdir(path):
        raise InputError("is a folder, expected a CSV file", Location(shown, 1, 1))
    if not os.path.isfile(path):
        raise InputError("no such file", Location(shown, 1, 1))


def _header_of(path: str | os.PathLike, mapping: adapters.ColumnMapping | None) -> list[str]:
    """The header row, read as the adapters read the file (BOM or not, the mapping's encoding)."""
    encoding = mapping.encoding if mapping else "utf-8"
    if encoding.lower() in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    return [str(c) for c in pd.read_csv(path, nrows=0, encoding=encoding,
                                        sep=mapping.delimiter if mapping else ",").columns]


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def read_funnel(path: str | os.PathLike, funnel: Funnel,
                mapping: adapters.ColumnMapping | None = None) -> pd.DataFrame:
    """One row per (store, month, stage) with conversion and history; ErrorList on bad data."""
    shown = display_path(path)
    _check_file(path, shown)
    header = _header_of(path, mapping)
    errors: list[StoreopsError] = []
    for name in ["store", "month"] + [s.id for s in funnel.stages]:
        if _column(mapping, name) not in header:
            errors.append(InputError(
                f"the funnel file has no column '{_column(mapping, name)}'",
                Location(shown, 1, len(header) + 1), did_you_mean(name, header)))
    if errors:
        raise ErrorList(errors)
    kinds = {"store": "text", "month": "text", **{s.id: "integer" for s in funnel.stages}}
    frame, shown, header = _read(path, kinds, mapping)
    col = {name: header.index(_column(mapping, name)) + 1 for name in kinds}
    months = frame["month"].fillna("")
    for i, month in enumerate(months.tolist()):
        if not _MONTH.match(month):
            errors.append(InputError(f"bad month {month!r} (expected YYYY-MM)",
                                     Location(shown, i + 2, col["month"])))
    for i in np.flatnonzero(frame["store"].isna().to_numpy()).tolist():
        errors.append(InputError("no store name", Location(shown, i + 2, col["store"])))
    twice = frame.duplicated(["store", "month"]).to_numpy()
    for i in np.flatnonzero(twice).tolist():
        errors.append(InputError(f"store '{frame['store'].iloc[i]}' has month "
                                 f"{months.iloc[i]} twice", Location(shown, i + 2, col["month"])))
    by_id = {s.id: s for s in funnel.stages}
    for s in funnel.stages:
        values = frame[s.id]
        for i in np.flatnonzero(values.isna().to_numpy()).tolist():
            errors.append(InputError(f"no count for step '{s.id}'",
                                     Location(shown, i + 2, col[s.id])))
        for i in np.flatnonzero((values < 0).to_numpy()).tolist():
            errors.append(InputError(f"negative count {int(values.iloc[i])} for step '{s.id}'",
                                     Location(shown, i + 2, col[s.id])))
        if s.base is not None:
            over = (values > frame[s.base]).to_numpy()
            for i in np.flatnonzero(over).tolist():
                errors.append(InputError(
                    f"{int(values.iloc[i])} customers at step '{s.id}' but only "
                    f"{int(frame[s.base].iloc[i])} at '{by_id[s.base].id}', the step it "
                    "converts from", Location(shown, i + 2, col[s.id])))
    if errors:
        raise ErrorList(errors)
    frame["input_row"] = np.arange(len(frame)) + 2
    frame = frame.sort_values(["store", "month"], kind="stable").reset_index(drop=True)
    rows = []
    n = funnel.history_months
    for store, group in frame.groupby("store", sort=False):
        for s in funnel.stages:
            reached = group[s.id].to_numpy(np.float64)
            base = group[s.base].to_numpy(np.float64) if s.base else np.full(len(group), np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                conversion = np.where(base > 0, reached / base, np.nan)
            for k in range(len(group)):
                past = slice(max(k - n, 0), k)
                history = np.nanmean(conversion[past]) if s.base and k and \
                    not np.isnan(conversion[past]).all() else np.nan
                history_reached = reached[past].mean() if k else np.nan
                rows.append((store, group["month"].iloc[k], s.id, s.step, int(reached[k]),
                             None if s.base is None else int(base[k]),
                             _nan_none(conversion[k]), _nan_none(history),
                             _nan_none(history_reached), min(k, n),
                             int(group["input_row"].iloc[k])))
    out = pd.DataFrame.from_records(rows, columns=[*FUNNEL_FIELDS, "input_row"])
    return out.sort_values(["store", "month", "step"], kind="stable").reset_index(drop=True)


def _nan_none(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 6)


# -- the runs ------------------------------------------------------------------------------------

def run_files(pack: Pack, section: Any, input_path: str | os.PathLike,
              out_dir: str | os.PathLike, *, mapping: str | os.PathLike | None,
              trail: str | os.PathLike | None, engine: str = "columnar", command: str = "",
              progress: Progress = silent):
    """Scorecard or funnel run: read and check, evaluate, trail, write; an api.RunSummary."""
    from .api import RunSummary

    column_mapping = adapters.load_mapping(mapping) if mapping else None
    progress(f"reading the {section.kind}")
    if section.kind == "scorecard":
        frame = read_scorecard(input_path, section.scorecard, column_mapping)
    else:
        frame = read_funnel(input_path, section.funnel, column_mapping)
    facts = _facts(frame, pack)
    tables = runner.compile_packs([pack])
    firings = runner.fire_rows(tables, facts.rows()) if engine == "row" else \
        runner.fire_columns(tables, facts)
    folder = output_dir(out_dir)
    meta = {"engine": engine, "input": os.fspath(input_path),
            "packs": [{"id": pack.id, "version": pack.version, "sha256": pack.sha256,
                       "path": pack.path}]}
    with open_trail(trail, command=command, clock="wall", meta=meta) as sink:
        seqs = runner.record(firings, tables, facts, sink)
        actions = runner.actions_frame(firings, seqs, sink.run_id, tables, facts)
        run_id = sink.run_id
    fact_ix = actions["input_row"].to_numpy() - 1
    actions["input_row"] = frame["input_row"].to_numpy()[fact_ix]
    if section.kind == "scorecard":
        actions["dimension"] = frame["dimension"].to_numpy()[fact_ix]
        outputs = {"scorecard.csv": side_by_side(frame, section.scorecard),
                   "plan.csv": improvement_plan(frame, actions, pack, section.scorecard)}
        report = scorecard_report(outputs["scorecard.csv"], outputs["plan.csv"],
                                  section.scorecard)
    else:
        actions["month"] = frame["month"].to_numpy()[fact_ix]
        actions["stage"] = frame["stage"].to_numpy()[fact_ix]
        outputs = {"funnel.csv": funnel_table(frame, actions, section.funnel)}
        report = funnel_report(outputs["funnel.csv"])
    outputs["actions.csv"] = actions
    written = []
    for name, table in outputs.items():
        path = folder / name
        with atomic_path(path) as temp:
            table.to_csv(temp, index=False, lineterminator="\n")
        written.append(str(path))
    if trail is not None:
        written.append(os.fspath(trail))
    return RunSummary(run_id, facts.n, len(firings), actions, tuple(written), pd.DataFrame(),
                      report)


def _facts(frame: pd.DataFrame, pack: Pack) -> adapters.FactTable:
    typed = {name: frame[name] for name in pack.fields}
    table = adapters.facts_from_dataframe(pd.DataFrame(typed), pack.fields, pack.field_values,
                                          source="<scorecard/funnel>")
    return runner.with_derived([pack], table)


def side_by_side(frame: pd.DataFrame, card: Scorecard) -> pd.DataFrame:
    """Dimensions as rows, stores as columns, then the mean, the lowest and the gaps."""
    wide = frame.pivot(index="dimension", columns="store", values="score")
    stores = list(dict.fromkeys(frame["store"]))
    wide = wide.reindex(index=[d.id for d in card.dimensions], columns=stores)
    out = pd.DataFrame({
        "dimension": [d.id for d in card.dimensions],
        "label_zh": [d.label.zh for d in card.dimensions],
        "label_en": [d.label.en for d in card.dimensions],
        "target": card.target,
    })
    for store in stores:
        out[store] = wide[store].to_numpy()
    out["mean"] = wide.mean(axis=1).round(2).to_numpy()
    out["lowest"] = wide.min(axis=1).to_numpy()
    out["stores_below_target"] = (wide < card.target).sum(axis=1).to_numpy()
    return out


PLAN_COLUMNS = ("store", "rank", "dimension", "label_en", "score", "target", "gap", "rule_id",
                "action", "action_label_en", "action_label_zh", "cadence", "role",
                "effort_hours", "action_id")


def improvement_plan(frame: pd.DataFrame, actions: pd.DataFrame, pack: Pack,
                     card: Scorecard) -> pd.DataFrame:
    """The actions per store, largest gap first, then in the seed's dimension order."""
    order = {d.id: i for i, d in enumerate(card.dimensions)}
    labels = {d.id: d.label.en for d in card.dimensions}
    score = {(s, d): (v, g) for s, d, v, g in
             frame[["store", "dimension", "score", "gap"]].itertuples(index=False)}
    rows = []
    for a in actions.itertuples(index=False):
        value, gap = score[(a.subject, a.dimension)]
        params = json.loads(a.params) if a.params else {}
        catalogue = pack.actions.get(a.action)
        rows.append((a.subject, 0, a.dimension, labels[a.dimension], value, card.target, gap,
                     a.rule_id, a.action, a.label_en, a.label_zh, params.get("cadence", ""),
                     catalogue.role if catalogue else "",
                     catalogue.effort_hours if catalogue else None, a.action_id))
    plan = pd.DataFrame.from_records(rows, columns=list(PLAN_COLUMNS))
    if not len(plan):
        return plan
    plan["_order"] = plan["dimension"].map(order)
    stores = {s: i for i, s in enumerate(dict.fromkeys(frame["store"]))}
    plan["_store"] = plan["store"].map(stores)
    plan = plan.sort_values(["_store", "gap", "_order"], ascending=[True, False, True],
                            kind="stable")
    plan["rank"] = plan.groupby("store", sort=False).cumcount() + 1
    return plan.drop(columns=["_order", "_store"]).reset_index(drop=True)


def scorecard_report(wide: pd.DataFrame, plan: pd.DataFrame, card: Scorecard
                     ) -> tuple[str, ...]:
    stores = [c for c in wide.columns if c not in ("dimension", "label_zh", "label_en",
                                                   "target", "mean", "lowest",
                                                   "stores_below_target")]
    lines = [f"scorecard: {len(stores)} store(s), {len(card.dimensions)} dimensions, "
             f"target {card.target}",
             f"{'dimension':<22}" + "".join(f"{s[:10]:>11}" for s in stores) + "   mean"]
    for i, dimension in enumerate(wide["dimension"].tolist()):
        cells = "".join(f"{int(v):>11}" for v in wide[stores].iloc[i].tolist())
        lines.append(f"{dimension:<22}{cells}{wide['mean'].iloc[i]:>7.2f}")
    for store in stores:
        mine = plan[plan["store"] == store]
        top = ", ".join(f"{r.dimension} ({r.cadence or 'once'})" for r in
                        mine.drop_duplicates('dimension').head(3).itertuples(index=False))
        lines.append(f"plan {store}: {len(mine)} action(s); first: {top or 'none'}")
    return tuple(lines)


FUNNEL_COLUMNS = ("store", "month", "step", "stage", "label_en", "reached", "base_count",
                  "conversion", "history", "change", "flagged", "rules", "actions",
                  "action_ids")


def funnel_table(frame: pd.DataFrame, actions: pd.DataFrame, funnel: Funnel) -> pd.DataFrame:
    labels = {s.id: s.label.en for s in funnel.stages}
    out = frame.copy()
    out["label_en"] = out["stage"].map(labels)
    current = out["conversion"].where(out["conversion"].notna(), out["reached"])
    past = out["history"].where(out["conversion"].notna(), out["history_reached"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["change"] = ((current - past) / past).round(4)
    key = list(zip(actions["subject"], actions["month"], actions["stage"], strict=True))
    rules: dict[tuple, list[str]] = {}
    names: dict[tuple, list[str]] = {}
    ids: dict[tuple, list[str]] = {}
    for k, rule, action, action_id in zip(key, actions["rule_id"], actions["action"],
                                          actions["action_id"], strict=True):
        if rule not in rules.setdefault(k, []):
            rules[k].append(rule)
        names.setdefault(k, []).append(action)
        ids.setdefault(k, []).append(action_id)
    keys = list(zip(out["store"], out["month"], out["stage"], strict=True))
    out["rules"] = [" ".join(rules.get(k, [])) for k in keys]
    out["actions"] = [" ".join(names.get(k, [])) for k in keys]
    out["action_ids"] = [" ".join(ids.get(k, [])) for k in keys]
    out["flagged"] = out["rules"] != ""
    return out[list(FUNNEL_COLUMNS)]


def funnel_report(table: pd.DataFrame) -> tuple[str, ...]:
    lines = [f"funnel: {table['store'].nunique()} store(s), {table['month'].nunique()} "
             f"month(s), {int(table['flagged'].sum())} stage-month(s) flagged"]
    for store, group in table.groupby("store", sort=False):
        latest = group[group["month"] == group["month"].max()]
        flagged = latest[latest["flagged"]]
        what = "; ".join(f"{r.stage} {r.change:+.0%} -> {r.actions}" for r in
                         flagged.itertuples(index=False)) or "no stage below its history"
        lines.append(f"  {store} {latest['month'].iloc[0]}: {what}")
    return tuple(lines)

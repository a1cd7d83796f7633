"""In-store CRM (seed 003) as a pack section: segments, lifetime value, complaints.

A pack's ``customers:`` section (schema ``schemas/customers.schema.json``, docs/customers.md)
holds what decision tables cannot: how recency, frequency and monetary value become 1..N scores
(quantile or fixed bins), the lifetime-value model, which reviews are complaint cases and their
response-time target, and which tables run on customers and which on complaint cases. The
segmentation and every action stay ordinary pack rules, run by the engine and recorded in the
trail like any other run.

The section comes in three kinds, one per pack (docs/customers.md says why):

* ``segments`` + ``rfm`` + ``lifetime_value`` (+ ``complaints``): a customer base, read through
  a customer mapping (``mappings/olist_customers.yaml``) from several files (customers, orders,
  payments, optionally items and reviews) and joined into one fact per customer and one fact per
  complaint case. Written out: ``customers.csv``, ``segments.csv``, ``complaints.csv``,
  ``issues.csv``, ``actions.csv`` and the trail.
* ``scorecard`` and ``funnel``: a store's CRM self-assessment and its monthly sales funnel,
  run by ``storeops.engine.crm``.

Two passes: the customer tables (the segment table among them) run first; each complaint case
then carries its customer's segment, so complaint rules can treat an A customer differently.
Every input problem is found before the trail is opened or a file written. Data that is odd
but usable (a customer without orders, a payment for an unknown order) is a finding: the run
goes on, the finding is written to ``issues.csv`` with its file, row and column, and every
customer of the input appears in ``customers.csv`` whatever happened to them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import adapters, runner
from .customer_base import (
    Bins,
    CustomerBase,
    load_mapping,
    read_base,
    resolve_files,
)
from .errors import InputError, Location
from .files import atomic_path, output_dir
from .packs import SINGLE_HIT, Label, Pack, SectionContext
from .progress import Progress, silent
from .trail import open_trail

# What the join gives every customer fact (name -> field type). A pack declares the ones its
# rules read; a declared field that is neither here nor in CASE_FIELDS is an error.
CUSTOMER_FIELDS: dict[str, str] = {
    "customer": "text",
    "orders": "integer",            # counted orders (statuses in counted_statuses)
    "monetary": "number",           # sum of payments of counted orders
    "avg_order_value": "number",
    "items": "integer",
    "goods_value": "number",        # sum of item prices (without freight)
    "first_purchase": "date",
    "last_purchase": "date",
    "recency_days": "integer",      # as_of - last purchase
    "tenure_days": "integer",       # last - first purchase
    "cycle_days": "number",         # the purchase cycle the lifetime value used
    "r_score": "integer",
    "f_score": "integer",
    "m_score": "integer",
    "rfm": "text",                  # the three scores as one text, e.g. '545'
    "reviews": "integer",
    "complaints": "integer",
    "mean_review": "number",
    "lifetime_revenue": "number",
    "lifetime_value": "number",     # lifetime profit: the value segments are ranked by
}
# What the join gives every complaint case, on top of its customer's fields.
CASE_FIELDS: dict[str, str] = {
    "case": "text",                 # review id / order id
    "order": "text",
    "score": "integer",
    "created": "date",
    "response_hours": "number",     # answer time - creation time; null when unanswered
    "target_hours": "number",
    "segment": "text",
}


# -- the compiled section ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LifetimeModel:
    horizon_years: float
    margin: float
    retention: float | None        # None: the input's observed repeat-purchase rate
    default_cycle_days: float
    min_cycle_days: float
    service_per_year: float
    service_margin: float


@dataclass(frozen=True, slots=True)
class ComplaintPolicy:
    max_score: int
    target_hours: float
    segment_targets: Mapping[str, float]
    tables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    label: Label | None


@dataclass(frozen=True)
class CustomersSection:
    """The compiled ``customers:`` section of one pack."""

    kind: str                                   # 'segments', 'scorecard' or 'funnel'
    segment_table: str = ""
    segments: tuple[Segment, ...] = ()
    recency: Bins | None = None
    frequency: Bins | None = None
    monetary: Bins | None = None
    value: LifetimeModel | None = None
    complaints: ComplaintPolicy | None = None
    scorecard: Any = None                       # crm.Scorecard
    funnel: Any = None                          # crm.Funnel


KINDS = ("segments", "scorecard", "funnel")
SEGMENTS_MIN, SEGMENTS_MAX = 4, 7  # seed 003: 客户细分可以在4-7个


def build_section(data: Mapping[str, Any], ctx: SectionContext) -> CustomersSection | None:
    """Check the section against the pack (tables, fields, segments) and compile it."""
    kinds = [k for k in KINDS if k in data]
    if len(kinds) != 1:
        ctx.error("a customers section has exactly one of 'segments', 'scorecard' or 'funnel' "
                  f"(found {', '.join(kinds) or 'none'})", (),
                  "use one pack per kind; docs/customers.md")
        return None
    kind = kinds[0]
    if kind != "segments":
        extra = [k for k in ("rfm", "lifetime_value", "complaints") if k in data]
        if extra:
            ctx.error(f"'{extra[0]}' belongs to a segments section, not to a {kind} section",
                      (extra[0],))
            return None
        from . import crm

        return crm.build(kind, data[kind], ctx)
    ctx = _Counting(ctx)
    for name in ("rfm", "lifetime_value"):
        if name not in data:
            ctx.error(f"a segments section needs '{name}'", ())
    if ctx.errors:
        return None
    tables = {t.id: t for t in ctx.tables}
    table_id = data["segments"]["table"]
    segments: tuple[Segment, ...] = ()
    if table_id not in tables:
        from .errors import did_you_mean

        ctx.error(f"no table '{table_id}' in this pack", ("segments", "table"),
                  did_you_mean(table_id, tables))
    else:
        table = tables[table_id]
        if table.hit_policy not in SINGLE_HIT:
            ctx.error(f"the segment table '{table_id}' has hit policy {table.hit_policy}; a "
                      "customer is in one segment, so use first, unique, priority or any",
                      ("segments", "table"))
        count = len(table.rules)
        if not SEGMENTS_MIN <= count <= SEGMENTS_MAX:
            ctx.error(f"the segment table '{table_id}' has {count} rules; seed 003 asks for "
                      f"{SEGMENTS_MIN}-{SEGMENTS_MAX} segments", ("segments", "table"))
        segments = tuple(Segment(rule.id, rule.label) for rule in table.rules)
    rfm = data["rfm"]
    bins = {name: _bins(rfm[name], ("rfm", name), ctx) for name in
            ("recency", "frequency", "monetary")}
    lv = data["lifetime_value"]
    retention = lv["retention"]
    model = LifetimeModel(
        horizon_years=float(lv["horizon_years"]), margin=float(lv["margin"]),
        retention=None if retention == "observed" else float(retention),
        default_cycle_days=float(lv.get("default_cycle_days", 365)),
        min_cycle_days=float(lv.get("min_cycle_days", 30)),
        service_per_year=float(lv.get("service_per_year", 0)),
        service_margin=float(lv.get("service_margin", 0)))
    policy = None
    complaint_tables: tuple[str, ...] = ()
    if "complaints" in data:
        raw = data["complaints"]
        for i, name in enumerate(raw["tables"]):
            if name not in tables:
                from .errors import did_you_mean

                ctx.error(f"no table '{name}' in this pack", ("complaints", "tables", i),
                          did_you_mean(name, tables))
            elif name == table_id:
                ctx.error("the segment table runs on customers, not on complaint cases",
                          ("complaints", "tables", i))
        ids = {s.id for s in segments}
        for name in raw.get("segment_targets", {}):
            if segments and name not in ids:
                ctx.error(f"'{name}' is not a segment (a rule id of table '{table_id}')",
                          ("complaints", "segment_targets", name))
        complaint_tables = tuple(raw["tables"])
        policy = ComplaintPolicy(int(raw["max_score"]), float(raw["target_hours"]),
                                 dict(raw.get("segment_targets", {})), complaint_tables)
    produced = {**CUSTOMER_FIELDS, **CASE_FIELDS}
    for name, f in ctx.fields.items():
        if name in ctx.kpis and ctx.kpis[name].formula is not None:
            continue  # a KPI with a formula: computed by the engine
        if name not in produced:
            from .errors import did_you_mean

            ctx.error(f"field '{name}' is not one the customer join produces",
                      (), did_you_mean(name, produced) or
                      "see the field list in docs/customers.md")
        elif f.type != produced[name]:
            ctx.error(f"field '{name}' must have type {produced[name]}, not {f.type}", ())
    if "customer" not in ctx.fields:
        ctx.error("a segments pack needs the field 'customer' (its subject)", ())
    if ctx.errors or None in bins.values():
        return None
    return CustomersSection("segments", table_id, segments, bins["recency"], bins["frequency"],
                            bins["monetary"], model, policy)


class _Counting:
    """A SectionContext that counts the errors reported through it."""

    def __init__(self, ctx: SectionContext) -> None:
        self.ctx, self.errors = ctx, 0

    def error(self, message: str, path: tuple, hint: str | None = None) -> None:
        self.errors += 1
        self.ctx.error(message, path, hint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ctx, name)


def _bins(raw: Mapping[str, Any], path: tuple, ctx: SectionContext) -> Bins | None:
    if raw["bins"] == "quantile":
        if "edges" in raw:
            ctx.error("quantile bins take 'scores', not 'edges'", (*path, "edges"))
            return None
        return Bins("quantile", int(raw.get("scores", 5)))
    edges = raw.get("edges")
    if not edges:
        ctx.error("fixed bins need 'edges' (ascending lower bounds of scores 2, 3, ...)", path)
        return None
    if any(b <= a for a, b in itertools.pairwise(edges)):
        ctx.error("edges must be strictly ascending", (*path, "edges"))
        return None
    if "scores" in raw and raw["scores"] != len(edges) + 1:
        ctx.error(f"{len(edges)} edges make {len(edges) + 1} scores, not {raw['scores']}",
                  (*path, "scores"))
        return None
    return Bins("fixed", len(edges) + 1, tuple(float(e) for e in edges))


# -- the run -------------------------------------------------------------------------------------

def _section_pack(packs: Sequence[Pack]) -> tuple[Pack, CustomersSection]:
    found = [(p, p.sections["customers"]) for p in packs if "customers" in p.sections]
    pack, section = found[0]
    if len(found) > 1 or len(packs) > 1:
        other = next(p for p in packs if p is not pack)
        raise InputError("a customers pack runs alone; run the other packs separately",
                         Location(other.path, 1, 1))
    return pack, section


def run_files(packs: Sequence[Pack], input_path: str | os.PathLike, out_dir: str | os.PathLike,
              *, mapping: str | os.PathLike | None, trail: str | os.PathLike | None,
              engine: str = "columnar", command: str = "", progress: Progress = silent,
              bad_rows: str = "stop"):
    """What ``storeops run`` does with a pack that has a customers section.

    ``--bad-rows skip`` is refused: a skipped row would be a customer, order or rating that
    silently goes missing, and these runs promise to account for every one.
    """
    pack, section = _section_pack(packs)
    if bad_rows != "stop":
        raise InputError("--bad-rows skip does not apply to a customers pack: every customer, "
                         "order and rating must be accounted for", Location(pack.path, 1, 1),
                         "fix the rows the run names, or leave --bad-rows out")
    if section.kind != "segments":
        from . import crm

        return crm.run_files(pack, section, input_path, out_dir, mapping=mapping, trail=trail,
                             engine=engine, command=command, progress=progress)
    if mapping is None:
        raise InputError("a customer base needs --mapping (which files and columns hold "
                         "customers, orders, payments and reviews)", Location(pack.path, 1, 1),
                         "e.g. --mapping mappings/olist_customers.yaml")
    customer_mapping = load_mapping(mapping)
    files = resolve_files(customer_mapping, input_path)
    base = read_base(files, customer_mapping, section, progress)
    return run_base(pack, section, base, out_dir, trail=trail, engine=engine, command=command,
                    progress=progress, input_path=input_path)


@dataclass(frozen=True)
class SegmentRun:
    """Everything a segmentation run produced, as tables (what the files hold)."""

    customers: pd.DataFrame
    segments: pd.DataFrame
    complaints: pd.DataFrame
    issues: pd.DataFrame
    actions: pd.DataFrame
    run_id: str
    facts: int
    firings: int


def _facts(frame: pd.DataFrame, pack: Pack) -> adapters.FactTable:
    """The pack's declared fields from a joined frame (absent ones are null)."""
    typed = {}
    for name in pack.fields:
        typed[name] = frame[name] if name in frame else pd.Series([None] * len(frame),
                                                                   dtype=object)
    table = adapters.facts_from_dataframe(pd.DataFrame(typed), pack.fields, pack.field_values,
                                          source="<customer join>")
    return runner.with_derived([pack], table)


def evaluate_base(pack: Pack, section: CustomersSection, base: CustomerBase, sink, *,
                  engine: str = "columnar", progress: Progress = silent) -> SegmentRun:
    """Run the pack's tables on the base and record the trail into ``sink``."""
    tables = runner.compile_packs([pack])
    complaint_ids = set(section.complaints.tables) if section.complaints else set()
    customer_tables = [t for t in tables if t.table.id not in complaint_ids]
    case_tables = [t for t in tables if t.table.id in complaint_ids]
    active = base.customers[base.customers["status"] == "ok"].reset_index(drop=True)

    progress(f"segmenting {len(active):,} customers")
    c_facts = _facts(active, pack)
    c_firings = _fire(customer_tables, c_facts, engine)
    segment_ix = next(i for i, t in enumerate(customer_tables)
                      if t.table.id == section.segment_table)
    segment_of = np.full(len(active), None, dtype=object)
    mine = c_firings.table == segment_ix
    rules = customer_tables[segment_ix].table.rules
    segment_of[c_firings.fact[mine]] = [rules[r].id for r in c_firings.rule[mine].tolist()]
    active["segment"] = segment_of

    cases = base.cases.copy()
    if section.complaints is not None and len(cases):
        segment_by_customer = pd.Series(segment_of, index=active["customer"].to_numpy())
        cases["segment"] = cases["customer"].map(segment_by_customer)
        policy = section.complaints
        cases["target_hours"] = cases["segment"].map(policy.segment_targets).fillna(
            policy.target_hours).astype(np.float64)
        customer_cols = [c for c in CUSTOMER_FIELDS if c != "customer"]
        cases = cases.merge(base.customers[["customer", *customer_cols]], on="customer",
                            how="left")
    k_firings = runner.Firings(*(np.zeros(0, dtype=np.int64),) * 3)
    k_facts = None
    if case_tables and len(cases):
        progress(f"{len(cases):,} complaint cases")
        k_facts = _facts(cases, pack)
        k_firings = _fire(case_tables, k_facts, engine)
    progress(f"recording the trail ({len(c_firings) + len(k_firings):,} firings)")
    c_seqs = runner.record(c_firings, customer_tables, c_facts, sink)
    c_actions = runner.actions_frame(c_firings, c_seqs, sink.run_id, customer_tables, c_facts)
    c_actions["input_row"] = active["input_row"].to_numpy()[c_actions["input_row"] - 1]
    k_actions = c_actions.iloc[0:0].assign(case="")
    if k_facts is not None:
        k_seqs = runner.record(k_firings, case_tables, k_facts, sink)
        k_actions = runner.actions_frame(k_firings, k_seqs, sink.run_id, case_tables, k_facts)
        fact_ix = k_actions["input_row"].to_numpy() - 1
        k_actions["case"] = cases["case"].to_numpy()[fact_ix]
        k_actions["input_row"] = cases["input_row"].to_numpy()[fact_ix]
    progress("building the customers, segments and complaints tables")
    c_actions["case"] = ""
    actions = pd.concat([c_actions, k_actions], ignore_index=True)
    customers = _customers_table(base, active, c_actions, pack)
    complaints = _complaints_table(cases, k_actions)
    segments = _segments_table(section, customers, complaints, c_actions)
    issues = pd.DataFrame.from_records(
        [(f.location.file, f.location.line, f.location.col, f.code, f.message)
         for f in base.findings], columns=["file", "row", "column", "code", "message"])
    return SegmentRun(customers, segments, complaints, issues, actions, sink.run_id,
                      len(active) + len(cases), len(c_firings) + len(k_firings))


def _fire(tables, facts, engine: str) -> runner.Firings:
    if not tables:
        empty = np.zeros(0, dtype=np.int64)
        return runner.Firings(empty, empty, empty)
    if engine == "row":
        return runner.fire_rows(tables, facts.rows())
    return runner.fire_columns(tables, facts)


def _joined(actions: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Per subject, the action column joined with spaces, in trail order.

    A plain loop: pandas' groupby with a Python ``join`` costs seconds on 150,000 actions.
    """
    found: dict[Any, list[str]] = {}
    for k, value in zip(actions[key].tolist(), actions[column].tolist(), strict=True):
        found.setdefault(k, []).append(value)
    return pd.Series({k: " ".join(v) for k, v in found.items()}, dtype=object)


CUSTOMER_COLUMNS = ("customer", "status", "segment", "segment_label", "orders", "monetary",
                    "avg_order_value", "recency_days", "r_score", "f_score", "m_score", "rfm",
                    "lifetime_revenue", "lifetime_value", "reviews", "complaints", "actions",
                    "action_ids", "input_row")


def _customers_table(base: CustomerBase, active: pd.DataFrame, actions: pd.DataFrame,
                     pack: Pack) -> pd.DataFrame:
    out = base.customers.copy()
    out["segment"] = out["customer"].map(
        pd.Series(active["segment"].to_numpy(), index=active["customer"].to_numpy()))
    labels = {rule.id: rule.label.en if rule.label else "" for table in pack.tables
              for rule in table.rules}
    out["segment_label"] = out["segment"].map(labels)
    out["actions"] = out["customer"].map(_joined(actions, "subject", "action"))
    out["action_ids"] = out["customer"].map(_joined(actions, "subject", "action_id"))
    for name in ("monetary", "avg_order_value", "lifetime_revenue", "lifetime_value"):
        out[name] = out[name].round(2)
    return out[list(CUSTOMER_COLUMNS)]


COMPLAINT_COLUMNS = ("case", "customer", "order", "score", "segment", "created", "answered",
                     "response_hours", "target_hours", "met_target", "why", "rules", "actions",
                     "action_ids", "input_row")


def _complaints_table(cases: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    if not len(cases) or "target_hours" not in cases:
        return pd.DataFrame(columns=list(COMPLAINT_COLUMNS))
    out = cases.copy()
    out["created"] = out["created_at"]
    hours = out["response_hours"]
    out["met_target"] = np.where(hours.isna(), None, hours <= out["target_hours"])
    out["why"] = [_why(h, t, s) for h, t, s in
                  zip(hours.tolist(), out["target_hours"].tolist(), out["segment"].tolist(),
                      strict=True)]
    firings = actions.assign(firing=actions["action_id"].str.rsplit(".", n=1).str[0])
    out["rules"] = out["input_row"].map(
        _joined(firings.drop_duplicates(["firing"]), "input_row", "rule_id"))
    out["actions"] = out["input_row"].map(_joined(actions, "input_row", "action"))
    out["action_ids"] = out["input_row"].map(_joined(actions, "input_row", "action_id"))
    return out[list(COMPLAINT_COLUMNS)]


def _why(hours: float, target: float, segment: Any) -> str:
    """Why a case missed its target, in words (empty when it met it)."""
    if hours != hours:  # NaN: no answer
        return "no answer recorded"
    if hours <= target:
        return ""
    whose = f" (segment {segment})" if isinstance(segment, str) else ""
    return (f"answered after {_num(hours)} h, {_num(hours - target)} h past the "
            f"{_num(target)} h target{whose}")


def _num(value: float) -> str:
    """Hours as people write them: 84, 36.5, 107.58."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


SEGMENT_COLUMNS = ("segment", "label_en", "label_zh", "customers", "share", "revenue",
                   "revenue_share", "avg_revenue", "lifetime_value", "avg_lifetime_value",
                   "repeat_rate", "complaints", "missed_target", "actions")


def _segments_table(section: CustomersSection, customers: pd.DataFrame,
                    complaints: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    rows = []
    total = max(int((customers["status"] == "ok").sum()), 1)
    revenue_total = float(customers["monetary"].sum()) or 1.0
    groups = [(s.id, s.label) for s in section.segments] + [("", None)]
    segment_of = pd.Series(customers["segment"].to_numpy(), index=customers["customer"])
    action_segment = actions["subject"].map(segment_of).to_numpy()
    for segment_id, label in groups:
        if segment_id:
            mine = customers["segment"] == segment_id
        else:  # customers with orders whom no segment rule matched
            mine = (customers["status"] == "ok") & customers["segment"].isna()
            if not mine.any():
                continue
        group = customers[mine]
        n = len(group)
        cases = complaints[complaints["segment"] == segment_id] if segment_id else \
            complaints[complaints["segment"].isna()]
        seg_actions = actions["action"][action_segment == segment_id] if segment_id else \
            actions["action"].iloc[0:0]
        rows.append((
            segment_id or "(none)", label.en if label else "no segment rule matched",
            label.zh if label else "", n, round(n / total, 4),
            round(float(group["monetary"].sum()), 2),
            round(float(group["monetary"].sum()) / revenue_total, 4),
            round(float(group["monetary"].mean()), 2) if n else 0.0,
            round(float(group["lifetime_value"].sum()), 2),
            round(float(group["lifetime_value"].mean()), 2) if n else 0.0,
            round(float((group["orders"] >= 2).mean()), 4) if n else 0.0,
            len(cases), int((cases["met_target"] == False).sum()),  # noqa: E712 (None = open)
            " ".join(dict.fromkeys(seg_actions.tolist())),
        ))
    return pd.DataFrame.from_records(rows, columns=list(SEGMENT_COLUMNS))


def run_base(pack: Pack, section: CustomersSection, base: CustomerBase,
             out_dir: str | os.PathLike, *, trail: str | os.PathLike | None,
             engine: str = "columnar", command: str = "", progress: Progress = silent,
             input_path: str | os.PathLike = ""):
    """Evaluate a read base, write the tables and the trail; return an ``api.RunSummary``."""
    from .api import RunSummary

    folder = output_dir(out_dir)
    meta = {"engine": engine, "input": os.fspath(input_path), "files": dict(base.files),
            "as_of": base.as_of.isoformat(),
            "packs": [{"id": pack.id, "version": pack.version, "sha256": pack.sha256,
                       "path": pack.path}]}
    with open_trail(trail, command=command, clock="wall", meta=meta) as sink:
        result = evaluate_base(pack, section, base, sink, engine=engine, progress=progress)
    progress("writing customers.csv, segments.csv, complaints.csv")
    written = []
    for name, frame in (("segments.csv", result.segments), ("customers.csv", result.customers),
                        ("complaints.csv", result.complaints), ("issues.csv", result.issues),
                        ("actions.csv", result.actions)):
        path = folder / name
        with atomic_path(path) as temp:
            frame.to_csv(temp, index=False, lineterminator="\n")
        written.append(str(path))
    if trail is not None:
        written.append(os.fspath(trail))
    return RunSummary(result.run_id, result.facts, result.firings, result.actions,
                      tuple(written), pd.DataFrame(), report_lines(result, base, section))


def report_lines(result: SegmentRun, base: CustomerBase,
                 section: CustomersSection) -> tuple[str, ...]:
    """The terminal summary: segment sizes and value, repeat rate, complaints, issues."""
    customers = result.customers
    n = len(customers)
    without = int((customers["status"] != "ok").sum())
    lines = [
        f"customers: {n:,} (from {base.input_rows:,} rows of {base.files['customers']}; "
        f"{without:,} without orders); value as of {base.as_of.isoformat()}",
        f"repeat-purchase rate: {base.repeat_rate:.1%}; lifetime value over "
        f"{section.value.horizon_years:g} years at {section.value.margin:.0%} margin, "
        f"retention {base.retention:.3f}",
        f"{'segment':<8}{'customers':>10}{'share':>8}{'revenue':>15}{'avg':>9}"
        f"{'lifetime value':>16}  label",
    ]
    for row in result.segments.itertuples(index=False):
        lines.append(f"{row.segment:<8}{row.customers:>10,}{row.share:>8.1%}"
                     f"{row.revenue:>15,.2f}{row.avg_revenue:>9,.2f}"
                     f"{row.lifetime_value:>16,.2f}  {row.label_en}")
    complaints = result.complaints
    if section.complaints is not None:
        policy = section.complaints
        stricter = ", ".join(f"{k}: {v:g} h" for k, v in policy.segment_targets.items())
        missed = int((complaints["met_target"] == False).sum())  # noqa: E712
        open_ = int(complaints["met_target"].isna().sum())
        answered = complaints["response_hours"].dropna()
        median = f"{answered.median():.1f} h" if len(answered) else "-"
        if not base.has_reviews:
            lines.append("complaints: none (the mapping names no reviews file)")
        else:
            lines.append(
                f"complaints: {len(complaints):,} cases (score <= {policy.max_score}); target "
                f"{policy.target_hours:g} h{f' ({stricter})' if stricter else ''}: "
                f"{len(complaints) - missed - open_:,} met, {missed:,} missed, {open_:,} "
                f"unanswered; median response {median}")
            late = complaints[complaints["met_target"] == False]  # noqa: E712 (None = open)
            late = late.assign(over=late["response_hours"] - late["target_hours"])
            reviews = os.path.basename(base.files["reviews"])
            for row in late.nlargest(3, "over").itertuples(index=False):
                lines.append(f"  missed: {row.case} (customer {row.customer}, {reviews} row "
                             f"{row.input_row}): {row.why}; {row.actions}")
    if base.finding_counts:
        lines.append("data findings (issues.csv): " + ", ".join(
            f"{code} {count:,}" for code, count in sorted(base.finding_counts.items())))
        for f in base.findings[:5]:
            lines.append(f"  {f.location}: {f.message}")
    return tuple(lines)

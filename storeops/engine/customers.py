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

import datetime as dt
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import adapters, lifetime, runner, yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError
from .expressions import Field
from .files import atomic_path, display_path, output_dir
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
class Bins:
    """How one RFM dimension becomes scores 1..n (n is best)."""

    kind: str                      # 'quantile' or 'fixed'
    scores: int
    edges: tuple[float, ...] = ()  # fixed: ascending lower bounds of scores 2..n (as read)


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


def score(values: np.ndarray, bins: Bins, *, higher_is_better: bool = True) -> np.ndarray:
    """Scores 1..n for finite values (n best); 0 where the value is NaN.

    Edges are lower bounds: a value equal to an edge is in the bin above it (for recency,
    where lower is better, that is the older, worse bin). Quantile edges are the input's own
    k/n quantiles (numpy's linear interpolation), so scores are relative to this customer base.
    """
    finite = ~np.isnan(values)
    if bins.kind == "quantile":
        if not finite.any():
            return np.zeros(len(values), dtype=np.int64)
        cuts = np.quantile(values[finite], [k / bins.scores for k in range(1, bins.scores)])
    else:
        cuts = np.asarray(bins.edges, dtype=np.float64)
    position = np.searchsorted(cuts, np.where(finite, values, 0.0), side="right")
    result = position + 1 if higher_is_better else bins.scores - position
    return np.where(finite, result, 0).astype(np.int64)


# -- the mapping ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerMapping:
    """Which files and columns hold the customer base (schema customer_mapping)."""

    source: str
    files: Mapping[str, str]
    columns: Mapping[str, Mapping[str, str]]     # role -> {part: column}
    delimiter: str = ","
    encoding: str = "utf-8"
    timestamp_format: str | None = None
    as_of: dt.date | None = None
    counted_statuses: tuple[str, ...] = ()
    locations: Mapping[str, Location] = field(default_factory=dict)

    def location(self, role: str, part: str) -> Location:
        return self.locations.get(f"{role}.{part}", Location(self.source, 1, 1))


ROLES = {"customers": "customer", "orders": "order", "payments": "payment", "items": "item",
         "reviews": "review"}


def load_mapping(path: str | os.PathLike) -> CustomerMapping:
    """Read and check a customer mapping; every problem is an InputError at FILE:LINE:COL."""
    from .packs import schema_errors

    doc = yamlsafe.load(path, display=display_path(path))
    errors: list[StoreopsError] = [InputError(e.message, e.location, e.hint)
                                   for e in schema_errors(doc, "customer_mapping")]
    if errors:
        raise ErrorList(errors)
    body = doc.data["customers"]
    for table, role in ROLES.items():
        if (table in body["files"]) != (role in body):
            where = ("files", table) if table in body["files"] else (role,)
            errors.append(InputError(
                f"'files.{table}' and '{role}' go together: name both or neither",
                doc.locate(("customers", *where))))
    if errors:
        raise ErrorList(errors)
    locations = {}
    for role in ROLES.values():
        for part in body.get(role, {}):
            locations[f"{role}.{part}"] = doc.locate(("customers", role, part))
    for table in body["files"]:
        locations[f"files.{table}"] = doc.locate(("customers", "files", table))
    as_of = dt.date.fromisoformat(body["as_of"]) if "as_of" in body else None
    return CustomerMapping(
        source=doc.path, files=dict(body["files"]),
        columns={role: dict(body[role]) for role in ROLES.values() if role in body},
        delimiter=body.get("delimiter", ","), encoding=body.get("encoding", "utf-8"),
        timestamp_format=body.get("timestamp_format"), as_of=as_of,
        counted_statuses=tuple(body.get("counted_statuses", ())), locations=locations)


def resolve_files(mapping: CustomerMapping, input_path: str | os.PathLike) -> dict[str, Path]:
    """The files of the base: under --input when it is a folder, else beside that file.

    Given a file, --input is the customers file and the other files are its siblings.
    """
    given = Path(input_path)
    if not given.exists():
        raise InputError("no such file or folder", Location(display_path(given), 1, 1))
    folder = given if given.is_dir() else given.parent
    found = {table: folder / name for table, name in mapping.files.items()}
    if not given.is_dir():
        found["customers"] = given
    return found


# -- reading and joining -------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """Odd but usable data: reported in issues.csv, never fatal."""

    location: Location
    code: str
    message: str
    count: int = 1   # > 1 on the line that stands for the rows past the cap


@dataclass(frozen=True)
class CustomerBase:
    """The joined base: one row per customer and one per complaint case, plus findings."""

    customers: pd.DataFrame       # CUSTOMER_FIELDS + status, input_row
    cases: pd.DataFrame           # CASE_FIELDS + customer, input_row, answered
    input_rows: int               # rows of the customers file
    findings: tuple[Finding, ...]
    finding_counts: Mapping[str, int]   # code -> how many (findings keeps the first 1,000)
    repeat_rate: float
    retention: float
    as_of: dt.date
    files: Mapping[str, str]


MAX_FINDINGS_PER_CODE = 1000  # issues.csv keeps this many of each kind, then a count


def read_base(files: Mapping[str, Path], mapping: CustomerMapping, section: CustomersSection,
              progress: Progress = silent) -> CustomerBase:
    """Read, check and join the files; raise ErrorList with every bad cell."""
    errors: list[StoreopsError] = []
    tables: dict[str, tuple[pd.DataFrame, str, dict[str, int]]] = {}
    specs = {
        "customers": {"id": "text", "key": "text"},
        "orders": {"id": "text", "customer": "text", "purchased": "text", "status": "text"},
        "payments": {"order": "text", "value": "number"},
        "items": {"order": "text", "price": "number"},
        "reviews": {"id": "text", "order": "text", "score": "integer", "created": "text",
                    "answered": "text"},
    }
    for table, kinds in specs.items():
        if table not in mapping.files:
            continue
        progress(f"reading {table}")
        role = ROLES[table]
        columns = mapping.columns[role]
        wanted = {part: kind for part, kind in kinds.items() if part in columns}
        try:
            tables[table] = _read(files[table], role, wanted, mapping)
        except ErrorList as exc:
            errors.extend(exc.errors)
        except StoreopsError as exc:
            errors.append(exc)
    # Timestamps and scores are checked in every table that could be read, so one run
    # reports every bad cell; nothing may be written on an error.
    purchased = created = answered = None
    if "orders" in tables:
        orders, o_file, o_cols = tables["orders"]
        purchased, bad = _timestamps(orders["purchased"], mapping)
        blank = orders["purchased"].isna().to_numpy()
        errors.extend(_cell_errors(bad | blank, orders["purchased"], o_file,
                                   o_cols["purchased"], "a purchase time" + _format_hint(mapping)))
    reviews = None
    if "reviews" in tables:
        reviews, r_file, r_cols = tables["reviews"]
        scores = reviews["score"]
        out = (scores.isna() | (scores < 1) | (scores > 5)).to_numpy()
        errors.extend(_cell_errors(out, scores, r_file, r_cols["score"],
                                   "a review score from 1 to 5"))
        created, bad_c = _timestamps(reviews["created"], mapping)
        answered, bad_a = _timestamps(reviews["answered"], mapping)
        errors.extend(_cell_errors(bad_c | reviews["created"].isna().to_numpy(),
                                   reviews["created"], r_file, r_cols["created"],
                                   "a creation time" + _format_hint(mapping)))
        errors.extend(_cell_errors(bad_a, reviews["answered"], r_file, r_cols["answered"],
                                   "an answer time or an empty cell" + _format_hint(mapping)))
    if errors:
        raise ErrorList(errors)
    progress("joining customers, orders, payments and reviews")
    findings: list[Finding] = []
    customers, c_file, c_cols = tables["customers"]
    payments, p_file, p_cols = tables["payments"]

    # customers: one row per key; several keys may belong to one person (Olist's customer_id
    # per order vs customer_unique_id per person).
    ids = customers["id"]
    keys = customers.get("key", ids)
    blank_id = ids.isna().to_numpy()
    if blank_id.any():
        raise ErrorList(_cell_errors(blank_id, ids, c_file, c_cols["id"], "a customer id"))
    duplicate_key = keys.duplicated().to_numpy()
    _find(findings, duplicate_key, c_file, c_cols.get("key", c_cols["id"]), "duplicate_key",
          lambda i: f"customer key {keys.iloc[i]!r} repeats an earlier row; the earlier row "
                    "counts" if "key" in customers else None)
    key_to_customer = pd.Series(ids.to_numpy()[~duplicate_key],
                                index=keys.to_numpy()[~duplicate_key])
    if "key" not in customers:
        key_to_customer = key_to_customer[~key_to_customer.index.duplicated()]

    # orders -> customers
    order_customer = orders["customer"].map(key_to_customer)
    unknown = order_customer.isna().to_numpy()
    _find(findings, unknown, o_file, o_cols["customer"], "order_unknown_customer",
          lambda i: f"order {orders['id'].iloc[i]!r} names customer "
                    f"{orders['customer'].iloc[i]!r}, who is not in {c_file}; the order is "
                    "left out")
    counted = ~unknown
    if mapping.counted_statuses and "status" in orders:
        counted &= orders["status"].isin(mapping.counted_statuses).to_numpy()
    order_ids = orders["id"]
    known_orders = pd.Index(order_ids[~unknown].to_numpy()).drop_duplicates()

    # payments -> orders
    pay_unknown = ~payments["order"].isin(known_orders).to_numpy()
    _find(findings, pay_unknown, p_file, p_cols["order"], "payment_unknown_order",
          lambda i: f"payment for order {payments['order'].iloc[i]!r}, which is not in "
                    f"{o_file}; the payment is left out")
    paid = payments[~pay_unknown].groupby("order", sort=False)["value"].sum()

    frame = pd.DataFrame({"order": order_ids.to_numpy(), "customer": order_customer.to_numpy(),
                          "purchased": purchased.to_numpy(), "counted": counted})
    frame["paid"] = frame["order"].map(paid).fillna(0.0).to_numpy()
    no_payment = counted & ~frame["order"].isin(paid.index).to_numpy()
    _find(findings, no_payment, o_file, o_cols["id"], "order_without_payment",
          lambda i: f"order {order_ids.iloc[i]!r} has no payment; it counts with value 0")
    if "items" in tables:
        items, i_file, i_cols = tables["items"]
        item_unknown = ~items["order"].isin(known_orders).to_numpy()
        _find(findings, item_unknown, i_file, i_cols["order"], "item_unknown_order",
              lambda i: f"item of order {items['order'].iloc[i]!r}, which is not in {o_file}; "
                        "the item is left out")
        grouped = items[~item_unknown].groupby("order", sort=False)["price"]
        frame["items"] = frame["order"].map(grouped.size()).fillna(0).to_numpy()
        frame["goods"] = frame["order"].map(grouped.sum()).fillna(0.0).to_numpy()
    else:
        frame["items"] = 0
        frame["goods"] = 0.0

    people = pd.Index(ids.drop_duplicates().to_numpy())
    first_row = pd.Series(np.flatnonzero(~ids.duplicated().to_numpy()) + 2, index=people)
    use = frame[frame["counted"]]
    by = use.groupby("customer", sort=False)
    stats = pd.DataFrame({
        "orders": by.size(), "monetary": by["paid"].sum(), "items": by["items"].sum(),
        "goods_value": by["goods"].sum(), "first": by["purchased"].min(),
        "last": by["purchased"].max()}).reindex(people)
    n_orders = stats["orders"].fillna(0).to_numpy(np.int64)
    has_orders = n_orders > 0
    _find(findings, ~has_orders, c_file, c_cols["id"], "customer_without_orders",
          lambda i: f"customer {people[i]!r} has no counted orders; listed with status "
                    "no_orders and no segment", rows=first_row.to_numpy() - 2)
    as_of = mapping.as_of
    if as_of is None:
        latest = purchased.max()
        as_of = (latest.date() + dt.timedelta(days=1)) if pd.notna(latest) else dt.date.today()
    as_of_ts = pd.Timestamp(as_of)
    # Whole calendar days between dates: a purchase at 10:00 yesterday is 1 day ago.
    first_day, last_day = stats["first"].dt.floor("D"), stats["last"].dt.floor("D")
    recency = (as_of_ts - last_day).dt.days.to_numpy(np.float64)
    tenure = (last_day - first_day).dt.days.to_numpy(np.float64)
    monetary = stats["monetary"].to_numpy(np.float64)
    repeat_rate = float((n_orders >= 2).sum() / max(has_orders.sum(), 1))
    model = section.value
    retention = repeat_rate if model.retention is None else model.retention
    cycle = np.where(n_orders >= 2, tenure / np.maximum(n_orders - 1, 1), np.nan)
    cycle = np.where(np.isnan(cycle), model.default_cycle_days,
                     np.maximum(cycle, model.min_cycle_days))
    aov = np.where(has_orders, monetary / np.maximum(n_orders, 1), np.nan)
    revenue, profit = lifetime.value_columns(
        aov, cycle, n_orders.astype(np.float64), horizon_years=model.horizon_years,
        margin=model.margin, retention=retention, service_per_year=model.service_per_year,
        service_margin=model.service_margin)
    nan_if_none = np.where(has_orders, 1.0, np.nan)
    out = pd.DataFrame({
        "customer": people.to_numpy(dtype=object),
        "orders": n_orders,
        "monetary": np.where(has_orders, monetary, 0.0),
        "avg_order_value": aov,
        "items": stats["items"].fillna(0).to_numpy(np.int64),
        "goods_value": stats["goods_value"].fillna(0.0).to_numpy(),
        "first_purchase": first_day.to_numpy(),
        "last_purchase": last_day.to_numpy(),
        "recency_days": recency,
        "tenure_days": tenure,
        "cycle_days": cycle * nan_if_none,
        "r_score": score(recency, section.recency, higher_is_better=False),
        "f_score": score(np.where(has_orders, n_orders, np.nan).astype(np.float64),
                         section.frequency),
        "m_score": score(np.where(has_orders, monetary, np.nan), section.monetary),
        "lifetime_revenue": revenue * nan_if_none,
        "lifetime_value": profit * nan_if_none,
        "status": np.where(has_orders, "ok", "no_orders"),
        "input_row": first_row.to_numpy(),
    })
    for name in ("recency_days", "tenure_days", "r_score", "f_score", "m_score"):
        out[name] = pd.array(np.where(has_orders, out[name], 0), dtype="Int64")
        out.loc[~has_orders, name] = pd.NA
    out["rfm"] = np.where(has_orders, out["r_score"].fillna(0).astype(str)
                          + out["f_score"].fillna(0).astype(str)
                          + out["m_score"].fillna(0).astype(str), None)

    cases = pd.DataFrame(columns=[*CASE_FIELDS, "customer", "answered", "input_row"])
    out["reviews"] = 0
    out["complaints"] = 0
    out["mean_review"] = np.nan
    if reviews is not None:
        order_to_customer = pd.Series(order_customer.to_numpy(), index=order_ids.to_numpy())
        order_to_customer = order_to_customer[~order_to_customer.index.duplicated()]
        review_customer = reviews["order"].map(order_to_customer)
        r_unknown = review_customer.isna().to_numpy()
        _find(findings, r_unknown, r_file, r_cols["order"], "review_unknown_order",
              lambda i: f"review of order {reviews['order'].iloc[i]!r}, which is not in "
                        f"{o_file} (or whose customer is unknown); the review is left out")
        known = ~r_unknown
        score_values = reviews["score"].to_numpy(np.float64)
        r_frame = pd.DataFrame({"customer": review_customer.to_numpy(), "score": score_values})
        r_frame = r_frame[known]
        per = r_frame.groupby("customer", sort=False)["score"]
        out["reviews"] = out["customer"].map(per.size()).fillna(0).astype(np.int64).to_numpy()
        out["mean_review"] = out["customer"].map(per.mean()).to_numpy(np.float64)
        if section.complaints is not None:
            policy = section.complaints
            is_case = known & (score_values <= policy.max_score)
            hours = (answered - created).dt.total_seconds().to_numpy() / 3_600
            ids_r = reviews["id"].fillna("").to_numpy(dtype=object)
            orders_r = reviews["order"].to_numpy(dtype=object)
            cases = pd.DataFrame({
                "case": [f"{a}/{b}" for a, b in zip(ids_r[is_case], orders_r[is_case],
                                                    strict=True)],
                "order": orders_r[is_case],
                "score": score_values[is_case].astype(np.int64),
                "created": created[is_case].dt.floor("D").to_numpy(),
                "response_hours": np.round(hours[is_case], 2),
                "customer": review_customer.to_numpy()[is_case],
                "answered": answered[is_case].to_numpy(),
                "created_at": created[is_case].to_numpy(),
                "input_row": np.flatnonzero(is_case) + 2,
            })
            counts = cases.groupby("customer", sort=False).size()
            out["complaints"] = out["customer"].map(counts).fillna(0).astype(np.int64)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.code] = counts.get(f.code, 0) + f.count
    return CustomerBase(out, cases, len(customers), tuple(findings), counts, repeat_rate, retention,
                        as_of, {t: display_path(p) for t, p in files.items()})


def _read(path: Path, role: str, kinds: Mapping[str, str], mapping: CustomerMapping
          ) -> tuple[pd.DataFrame, str, dict[str, int]]:
    """One file's mapped columns, typed by the adapters, as a DataFrame (None for null).

    Also returns the displayed file name and each part's 1-based column in the file, so
    findings and errors can name file, row and column.
    """
    columns = mapping.columns[role]
    fields = {part: Field(part, kind) for part, kind in kinds.items()}
    column_mapping = adapters.ColumnMapping(
        columns={part: columns[part] for part in kinds}, delimiter=mapping.delimiter,
        encoding=mapping.encoding, source=mapping.source,
        locations={part: mapping.location(role, part) for part in kinds})
    facts = adapters.read_facts(path, fields, None, column_mapping)
    header = _header(path, mapping)
    positions = {part: header.index(columns[part]) + 1 for part in kinds}
    data = {}
    for part, kind in kinds.items():
        values, nulls = facts.columns[part]
        if kind == "text":
            data[part] = pd.Series(values, dtype=object)
        else:
            series = pd.Series(values.astype(np.float64))
            data[part] = series.where(~nulls, np.nan) if nulls is not None else series
    return pd.DataFrame(data), facts.source, positions


def _header(path: Path, mapping: CustomerMapping) -> list[str]:
    encoding = "utf-8-sig" if mapping.encoding.lower() in ("utf-8", "utf8") else \
        mapping.encoding
    return [str(c) for c in pd.read_csv(path, nrows=0, sep=mapping.delimiter,
                                        encoding=encoding).columns]


def _timestamps(text: pd.Series, mapping: CustomerMapping) -> tuple[pd.Series, np.ndarray]:
    """Naive timestamps and a mask of non-empty cells that do not parse."""
    filled = text.fillna("").astype(str).str.strip()
    parsed = pd.to_datetime(filled, format=mapping.timestamp_format or "ISO8601",
                            errors="coerce")
    return parsed, (parsed.isna() & (filled != "")).to_numpy()


def _format_hint(mapping: CustomerMapping) -> str:
    return f" as {mapping.timestamp_format}" if mapping.timestamp_format else \
        " (ISO 8601, e.g. 2018-01-18 21:46:59)"


def _cell_errors(bad: np.ndarray, values: pd.Series, file: str, col: int,
                 expected: str) -> list[StoreopsError]:
    rows = np.flatnonzero(bad)
    errors: list[StoreopsError] = []
    for row in rows[:adapters.MAX_REPORTED].tolist():
        raw = values.iloc[row]
        shown = "an empty cell" if raw is None or (isinstance(raw, float) and np.isnan(raw)) \
            else repr(int(raw) if isinstance(raw, float) and raw.is_integer() else raw)
        errors.append(InputError(f"bad value {shown} (expected {expected})",
                                 Location(file, row + 2, col)))
    if len(rows) > adapters.MAX_REPORTED:
        errors.append(InputError(f"... and {len(rows) - adapters.MAX_REPORTED:,} more bad "
                                 "values in this column", Location(file, 1, col)))
    return errors


def _find(findings: list[Finding], mask: np.ndarray, file: str, col: int, code: str,
          message: Callable[[int], str | None], rows: np.ndarray | None = None) -> None:
    """Add a finding per masked row (file rows count the header as row 1)."""
    hits = np.flatnonzero(mask)
    for i in hits[:MAX_FINDINGS_PER_CODE].tolist():
        text = message(i)
        if text is None:
            return
        line = (int(rows[i]) if rows is not None else i) + 2
        findings.append(Finding(Location(file, line, col), code, text))
    if len(hits) > MAX_FINDINGS_PER_CODE:
        extra = len(hits) - MAX_FINDINGS_PER_CODE
        findings.append(Finding(Location(file, 1, col), code, f"... and {extra:,} more", extra))


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
              engine: str = "columnar", command: str = "", progress: Progress = silent):
    """What ``storeops run`` does with a pack that has a customers section."""
    pack, section = _section_pack(packs)
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

    progress("segmenting customers", 0, len(active))
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
        progress("complaint cases", 0, len(cases))
        k_facts = _facts(cases, pack)
        k_firings = _fire(case_tables, k_facts, engine)
    progress("recording the trail", 0, len(c_firings) + len(k_firings))
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
                     "response_hours", "target_hours", "met_target", "rules", "actions",
                     "action_ids", "input_row")


def _complaints_table(cases: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    if not len(cases) or "target_hours" not in cases:
        return pd.DataFrame(columns=list(COMPLAINT_COLUMNS))
    out = cases.copy()
    out["created"] = out["created_at"]
    hours = out["response_hours"]
    out["met_target"] = np.where(hours.isna(), None, hours <= out["target_hours"])
    firings = actions.assign(firing=actions["action_id"].str.rsplit(".", n=1).str[0])
    out["rules"] = out["input_row"].map(
        _joined(firings.drop_duplicates(["firing"]), "input_row", "rule_id"))
    out["actions"] = out["input_row"].map(_joined(actions, "input_row", "action"))
    out["action_ids"] = out["input_row"].map(_joined(actions, "input_row", "action_id"))
    return out[list(COMPLAINT_COLUMNS)]


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
        median = complaints["response_hours"].median() if len(complaints) else float("nan")
        lines.append(
            f"complaints: {len(complaints):,} cases (score <= {policy.max_score}); target "
            f"{policy.target_hours:g} h{f' ({stricter})' if stricter else ''}: "
            f"{len(complaints) - missed - open_:,} met, {missed:,} missed, {open_:,} "
            f"unanswered; median response {median:.1f} h")
    if base.finding_counts:
        lines.append("data findings (issues.csv): " + ", ".join(
            f"{code} {count:,}" for code, count in sorted(base.finding_counts.items())))
        for f in base.findings[:5]:
            lines.append(f"  {f.location}: {f.message}")
    return tuple(lines)

"""A customer base read from several files and joined into one row per customer and case.

A customer mapping (schema ``schemas/customer_mapping.schema.json``; e.g.
``mappings/olist_customers.yaml``) names the files (customers, orders, payments, optionally
items and reviews) and the columns that hold ids, times, amounts and scores. ``read_base``
reads each file through the adapters (typed columns; every bad cell an error with file, row
and column), checks what types cannot (times, scores 1..5), and joins: orders to customers
(several customer keys may be one person, as Olist's customer_id per order and
customer_unique_id per person), payments and items to orders, reviews to orders. Per customer
it derives recency, frequency and monetary value, their 1..n scores, and the lifetime value;
per review at or below the complaint score it makes a complaint case with its response time.

Odd but usable data is a finding, not an error: a customer without counted orders (listed
with status ``no_orders``), a payment, item or review for an unknown order, an order for an
unknown customer, an order without payment. Findings keep file, row and column and end up in
``issues.csv``; every customer of the input file is in the result.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import adapters, lifetime, yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError
from .expressions import Field
from .files import display_path
from .progress import Progress, silent

if TYPE_CHECKING:
    from .customers import CustomersSection


# -- RFM scores ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bins:
    """How one RFM dimension becomes scores 1..n (n is best)."""

    kind: str                      # 'quantile' or 'fixed'
    scores: int
    edges: tuple[float, ...] = ()  # fixed: ascending lower bounds of scores 2..n (as read)


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
    if "counted_statuses" in body and "status" not in body["order"]:
        errors.append(InputError("counted_statuses needs the order status column "
                                 "(order.status)", doc.locate(("customers", "counted_statuses"))))
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

    customers: pd.DataFrame       # customers.CUSTOMER_FIELDS + status, input_row
    cases: pd.DataFrame           # case, order, score, times, customer, input_row
    input_rows: int               # rows of the customers file
    findings: tuple[Finding, ...]
    finding_counts: Mapping[str, int]   # code -> how many (findings keeps the first 1,000)
    repeat_rate: float
    retention: float
    as_of: dt.date
    files: Mapping[str, str]

    @property
    def has_reviews(self) -> bool:
        return "reviews" in self.files


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
    # A repeated key is a repeated row: the first one counts. (With a separate key column a
    # repeated id is normal: one person, several keys.)
    duplicate_key = keys.duplicated().to_numpy()
    _find(findings, duplicate_key, c_file, c_cols.get("key", c_cols["id"]), "duplicate_customer",
          lambda i: f"customer {keys.iloc[i]!r} is listed again; the first row counts")
    key_to_customer = pd.Series(ids.to_numpy()[~duplicate_key],
                                index=keys.to_numpy()[~duplicate_key])

    # orders -> customers
    order_customer = orders["customer"].map(key_to_customer)
    unknown = order_customer.isna().to_numpy()
    _find(findings, unknown, o_file, o_cols["customer"], "order_unknown_customer",
          lambda i: f"order {orders['id'].iloc[i]!r} names customer "
                    f"{orders['customer'].iloc[i]!r}, who is not in {c_file}; the order is "
                    "left out")
    order_ids = orders["id"]
    repeated = order_ids.duplicated().to_numpy()
    _find(findings, repeated, o_file, o_cols["id"], "duplicate_order",
          lambda i: f"order {order_ids.iloc[i]!r} is listed again; the first row counts")
    counted = ~unknown & ~repeated
    if mapping.counted_statuses and "status" in orders:
        counted &= orders["status"].isin(mapping.counted_statuses).to_numpy()
    # Payments, items and reviews of an order whose customer is unknown go with the order
    # (its finding says so); only ids missing from the orders file are findings of their own.
    known_orders = pd.Index(order_ids.to_numpy()).drop_duplicates()

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

    cases = pd.DataFrame(columns=["case", "order", "score", "created", "response_hours",
                                  "customer", "answered", "created_at", "input_row"])
    out["reviews"] = 0
    out["complaints"] = 0
    out["mean_review"] = np.nan
    if reviews is not None:
        order_to_customer = pd.Series(order_customer.to_numpy()[~repeated],
                                      index=order_ids.to_numpy()[~repeated])
        review_customer = reviews["order"].map(order_to_customer)
        r_unknown = ~reviews["order"].isin(known_orders).to_numpy()
        _find(findings, r_unknown, r_file, r_cols["order"], "review_unknown_order",
              lambda i: f"review of order {reviews['order'].iloc[i]!r}, which is not in "
                        f"{o_file}; the review is left out")
        known = review_customer.notna().to_numpy()
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
    return CustomerBase(out, cases, len(customers), tuple(findings), counts, repeat_rate,
                        retention, as_of, {t: display_path(p) for t, p in files.items()})


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
    positions = {part: facts.column_number(columns[part]) for part in kinds}
    return facts.to_frame(kinds), facts.source, positions


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

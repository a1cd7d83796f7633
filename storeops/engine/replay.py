"""Replay of real orders (an order export such as Olist) through the order-fulfilment workflow.

A declared mapping (``mappings/olist_orders.yaml``, schema
``schemas/replay_mapping.schema.json``) says which columns hold the order id, the
status and the milestone timestamps, which workflow state each status means, and
which stretch between two milestones is which workflow stage. ``replay`` turns the
files into plain tables: one row per input order (never fewer, never more, even
for duplicate ids), one row per (order, stage), fitted stage durations for the
simulation, and a tidy event table that ``write_xes`` and ``write_ocel`` stream
into IEEE 1849 XES and OCEL 2.0 JSON.

Bad data is a finding, not a failure: timestamps out of order, missing, unreadable
or in the future, unknown statuses and duplicate ids become anomaly codes on the
order's row. Only what makes the files unreadable (no such file, not CSV, a column
the mapping names but the file lacks) raises an ``InputError`` with a location.

All work is vectorised with pandas/numpy; the only Python loops are the event-log
writers, which stream text instead of building a document tree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import networkx as nx
import numpy as np
import pandas as pd

from . import yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .files import atomic_path, display_path, output_dir

#: Anomaly codes, in the order they are listed on an order's row.
ANOMALY_CODES = (
    "duplicate_order_id",
    "unknown_status",
    "bad_timestamp",
    "missing_timestamp",
    "out_of_order",
    "future_timestamp",
    "canceled_after_handover",
    "stuck",
)

_NAT = np.iinfo(np.int64).min  # how numpy stores NaT in datetime64[ns] as int64
_HOUR_NS = 3_600 * 10**9


# -- the mapping ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Milestone:
    """A timestamp column that marks the end of a workflow stage."""

    key: str
    column: str
    activity: str
    resource: str | None  # 'seller', 'carrier', 'customer' or None when unknown


@dataclass(frozen=True, slots=True)
class Stage:
    """The stretch between two milestones, and the workflow states it covers.

    ``observation`` is 'observed' when the data records the stage itself, and
    'bounded' when only its outer milestones are known (several states in one span).
    """

    name: str
    states: tuple[str, ...]
    start: str
    end: str
    observation: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class StatusRule:
    state: str
    requires: tuple[str, ...]


@dataclass(frozen=True)
class ReplayMapping:
    """A validated replay mapping; ``locations`` says where each column name is written."""

    source: str
    order_id: str
    status: str
    milestones: tuple[Milestone, ...]
    stages: tuple[Stage, ...]
    statuses: Mapping[str, StatusRule]
    terminal_states: tuple[str, ...]
    cancelled_states: tuple[str, ...] = ()
    promise: str | None = None
    total: tuple[str, str] | None = None
    handover: str | None = None
    delivery: str | None = None
    item_order_id: str = "order_id"
    item_id: str = "order_item_id"
    seller_id: str | None = None
    product_id: str | None = None
    shipping_limit: str | None = None
    item_attributes: tuple[str, ...] = ()
    orders_file: str | None = None
    items_file: str | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    stuck_after_days: float = 30.0
    base_dir: str = "."
    locations: Mapping[str, Location] = field(default_factory=dict)

    def milestone(self, key: str) -> Milestone:
        return next(m for m in self.milestones if m.key == key)

    def order_columns(self) -> dict[str, str]:
        """Column -> role key (for locating it in the mapping file), in read order."""
        cols = {self.order_id: "orders.id", self.status: "orders.status"}
        for i, m in enumerate(self.milestones):
            cols.setdefault(m.column, f"milestones.{i}.column")
        if self.promise:
            cols.setdefault(self.promise, "orders.promise")
        return cols

    def item_columns(self) -> dict[str, str]:
        cols = {self.item_order_id: "items.order_id", self.item_id: "items.item_id"}
        for role in ("seller_id", "product_id", "shipping_limit"):
            column = getattr(self, role)
            if column:
                cols.setdefault(column, f"items.{role}")
        for i, column in enumerate(self.item_attributes):
            cols.setdefault(column, f"items.attributes.{i}")
        return cols


def mapping_schema() -> dict[str, Any]:
    from .packs import shipped_schema

    return shipped_schema("replay_mapping")


def load_mapping(path: str | os.PathLike) -> ReplayMapping:
    """Read and check a replay mapping; every problem is an InputError at FILE:LINE:COL."""
    from .packs import schema_errors

    doc = yamlsafe.load(path, display=display_path(path))
    errors: list[StoreopsError] = [InputError(found.message, found.location, found.hint)
                                   for found in schema_errors(doc, "replay_mapping")]
    if errors:
        raise ErrorList(errors)
    body = doc.data["replay"]

    def fail(message: str, where: tuple, hint: str | None = None) -> None:
        errors.append(InputError(message, doc.locate(("replay", *where)), hint))

    milestones = tuple(Milestone(m["key"], m["column"], m["activity"], m.get("resource"))
                       for m in body["milestones"])
    keys: list[str] = []
    for i, m in enumerate(milestones):
        if m.key in keys:
            fail(f"duplicate milestone key '{m.key}'", ("milestones", i, "key"))
        keys.append(m.key)

    def known(key: str, where: tuple) -> None:
        if key not in keys:
            fail(f"'{key}' is not a milestone key", where, did_you_mean(key, keys)
                 or f"expected one of {', '.join(keys)}")

    stages = []
    for i, s in enumerate(body["stages"]):
        known(s["from"], ("stages", i, "from"))
        known(s["to"], ("stages", i, "to"))
        stages.append(Stage(s["name"], tuple(s.get("states", ())), s["from"], s["to"],
                            s["observation"], s.get("note", "")))
    if len({s.name for s in stages}) != len(stages):
        fail("stage names must be unique", ("stages",))
    statuses = {}
    for name, rule in body["statuses"].items():
        for j, key in enumerate(rule.get("requires", ())):
            known(key, ("statuses", name, "requires", j))
        statuses[name] = StatusRule(rule["state"], tuple(rule.get("requires", ())))
    total = None
    if "total" in body:
        known(body["total"]["from"], ("total", "from"))
        known(body["total"]["to"], ("total", "to"))
        total = (body["total"]["from"], body["total"]["to"])
    for role in ("handover", "delivery"):
        if role in body:
            known(body[role], (role,))
    timezone = body.get("timezone", "UTC")
    try:
        pd.Timestamp("2000-01-01").tz_localize(timezone)
    except Exception:  # pytz, zoneinfo and dateutil each raise their own type
        fail(f"unknown time zone '{timezone}'", ("timezone",), "use an IANA name such as "
             "America/Sao_Paulo or UTC")
    if errors:
        raise ErrorList(errors)

    locations: dict[str, Location] = {}
    for role, key in (("orders.id", "id"), ("orders.status", "status"),
                      ("orders.promise", "promise")):
        locations[role] = doc.locate(("replay", "orders", key))
    for i in range(len(milestones)):
        locations[f"milestones.{i}.column"] = doc.locate(("replay", "milestones", i, "column"))
    items = body["items"]
    for key in ("order_id", "item_id", "seller_id", "product_id", "shipping_limit"):
        locations[f"items.{key}"] = doc.locate(("replay", "items", key))
    for i in range(len(items.get("attributes", ()))):
        locations[f"items.attributes.{i}"] = doc.locate(("replay", "items", "attributes", i))
    files = body.get("files", {})
    return ReplayMapping(
        source=doc.path,
        order_id=body["orders"]["id"],
        status=body["orders"]["status"],
        promise=body["orders"].get("promise"),
        milestones=milestones,
        stages=tuple(stages),
        statuses=statuses,
        terminal_states=tuple(body["terminal_states"]),
        cancelled_states=tuple(body.get("cancelled_states", ())),
        total=total,
        handover=body.get("handover"),
        delivery=body.get("delivery"),
        item_order_id=items["order_id"],
        item_id=items["item_id"],
        seller_id=items.get("seller_id"),
        product_id=items.get("product_id"),
        shipping_limit=items.get("shipping_limit"),
        item_attributes=tuple(items.get("attributes", ())),
        orders_file=files.get("orders"),
        items_file=files.get("items"),
        timezone=timezone,
        timestamp_format=body.get("timestamp_format"),
        delimiter=body.get("delimiter", ","),
        encoding=body.get("encoding", "utf-8"),
        stuck_after_days=float(body.get("stuck_after_days", 30)),
        base_dir=os.path.dirname(os.fspath(path)) or ".",
        locations=locations,
    )


# -- reading -------------------------------------------------------------------------------------

def _read_table(path: str | os.PathLike, columns: Mapping[str, str],
                mapping: ReplayMapping) -> pd.DataFrame:
    """The named columns of a CSV (plain or gzip) as text; '' for an empty cell."""
    shown = display_path(path)
    where = Location(shown, 1, 1)
    if not os.path.exists(path):
        raise InputError("no such file", where)
    if os.path.isdir(path):
        raise InputError("is a folder, expected a CSV file", where)
    options = {"sep": mapping.delimiter, "encoding": mapping.encoding}
    try:
        header = list(pd.read_csv(path, nrows=0, **options).columns)
        missing = [c for c in columns if c not in header]
        if missing:
            raise ErrorList(
                InputError(f"column '{c}' is not in {shown} (its header has "
                           f"{len(header)} column(s))",
                           mapping.locations.get(columns[c], Location(mapping.source, 1, 1)),
                           did_you_mean(c, header) or f"the header is {header[:12]!r}")
                for c in missing)
        # All columns, not usecols: with usecols pandas drops extra cells of a ragged row
        # silently. index_col=False keeps a long first row from becoming an index.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                                index_col=False, **options)[list(columns)]
    except pd.errors.ParserWarning:
        raise InputError("not a readable CSV: the row has more cells than the header",
                         Location(shown, 2, len(header) + 1)) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty, expected a header row", where) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"not a readable CSV: {_parser_message(exc)}",
                         _parser_location(exc, shown)) from None
    except UnicodeDecodeError:
        raise InputError(f"not {mapping.encoding} text, expected a CSV file", where) from None
    except (EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"cannot read the file: {exc}", where) from None
    # Short rows leave NaN even without NA parsing; they are empty cells here.
    return frame.fillna("")


def _parser_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1]
    return text.replace("Error tokenizing data. C error: ", "")


def _parser_location(exc: Exception, shown: str) -> Location:
    import re

    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if found:  # the first cell past the header's width
        return Location(shown, int(found.group(2)), int(found.group(1)) + 1)
    found = re.search(r"line (\d+)", str(exc))
    return Location(shown, int(found.group(1)) if found else 1, 1)


def _parse_times(text: pd.Series, mapping: ReplayMapping) -> tuple[pd.Series, np.ndarray]:
    """Local timestamps (time-zone aware) and a mask of non-empty cells that did not parse.

    Wall-clock times that do not exist (the hour skipped when daylight saving starts)
    move forward; times that occur twice (when it ends) count as the first occurrence.
    """
    stripped = text.str.strip()
    naive = pd.to_datetime(stripped, format=mapping.timestamp_format or "ISO8601",
                           errors="coerce")
    bad = (naive.isna() & (stripped != "")).to_numpy()
    aware = naive.dt.tz_localize(mapping.timezone, nonexistent="shift_forward",
                                 ambiguous=np.ones(len(naive), dtype=bool))
    return aware, bad


def _ns(series: pd.Series) -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC); NaT is the int64 minimum."""
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")
    return naive.to_numpy().view("int64")


# -- the replay ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayResult:
    """Everything a replay produced; tables are pandas DataFrames, durations plain values."""

    orders: pd.DataFrame
    stage_times: pd.DataFrame
    durations: Mapping[str, Any]
    events: pd.DataFrame
    items: pd.DataFrame
    as_of: pd.Timestamp
    summary: Mapping[str, Any]


def replay(orders_path: str | os.PathLike, items_path: str | os.PathLike,
           mapping: ReplayMapping | str | os.PathLike, *,
           as_of: str | dt.datetime | None = None) -> ReplayResult:
    """Replay an order export through the workflow; see the module docstring.

    ``as_of`` is the moment the export was taken (naive values are in the mapping's
    time zone); by default the latest first-milestone time (the last purchase).
    """
    if not isinstance(mapping, ReplayMapping):
        mapping = load_mapping(mapping)
    raw = _read_table(orders_path, mapping.order_columns(), mapping)
    items_raw = _read_table(items_path, mapping.item_columns(), mapping)
    n = len(raw)

    ids = raw[mapping.order_id].str.strip()
    status = raw[mapping.status].str.strip()
    occurrence = ids.groupby(ids, sort=False).cumcount().to_numpy()
    case_id = ids.where(occurrence == 0, ids + "#" + (occurrence + 1).astype(str))

    times: dict[str, pd.Series] = {}
    ns: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    for m in mapping.milestones:
        times[m.key], bad[m.key] = _parse_times(raw[m.column], mapping)
        ns[m.key] = _ns(times[m.key])
    any_bad = np.logical_or.reduce(list(bad.values()))
    if as_of is None:
        first = times[mapping.milestones[0].key]
        as_of_ts = first.max() if first.notna().any() else pd.Timestamp.now(mapping.timezone)
    else:
        as_of_ts = pd.Timestamp(as_of)
        if as_of_ts.tzinfo is None:
            as_of_ts = as_of_ts.tz_localize(mapping.timezone)
    as_of_ns = as_of_ts.value

    rules = mapping.statuses
    state = status.map({name: r.state for name, r in rules.items()})
    known_status = state.notna().to_numpy()
    state = state.fillna("")
    state_arr = state.to_numpy()

    flags: dict[str, np.ndarray] = {code: np.zeros(n, dtype=bool) for code in ANOMALY_CODES}
    flags["duplicate_order_id"] = ids.duplicated(keep=False).to_numpy()
    flags["unknown_status"] = ~known_status
    flags["bad_timestamp"] = any_bad
    status_arr = status.to_numpy()
    for name, rule in rules.items():
        this = status_arr == name
        for key in rule.requires:
            flags["missing_timestamp"] |= this & (ns[key] == _NAT) & ~bad[key]
    # Out of order: a milestone earlier than one declared before it.
    running = np.full(n, _NAT, dtype=np.int64)
    latest = np.full(n, _NAT, dtype=np.int64)
    for m in mapping.milestones:
        t = ns[m.key]
        present = t != _NAT
        flags["out_of_order"] |= present & (running != _NAT) & (t < running)
        running = np.maximum(running, t)
        flags["future_timestamp"] |= present & (t > as_of_ns)
        latest = np.maximum(latest, t)
    if mapping.handover:
        handed = ns[mapping.handover] != _NAT
        flags["canceled_after_handover"] = np.isin(state_arr, mapping.cancelled_states) & handed
    stuck_before = as_of_ns - int(mapping.stuck_after_days * 24 * _HOUR_NS)
    flags["stuck"] = (~np.isin(state_arr, mapping.terminal_states) & (latest != _NAT)
                      & (latest < stuck_before))


    orders = pd.DataFrame({"order_id": ids, "case_id": case_id, "status": status,
                           "final_state": state})
    for m in mapping.milestones:
        orders[m.key] = times[m.key]

    def hours(start: str, end: str) -> np.ndarray:
        a, b = ns[start], ns[end]
        out = (b - a) / _HOUR_NS
        out[(a == _NAT) | (b == _NAT)] = np.nan
        return out

    for s in mapping.stages:
        orders[f"hours_{s.name}"] = hours(s.start, s.end)
    if mapping.total:
        orders["hours_total"] = hours(*mapping.total)

    promise_ts = None
    if mapping.promise:
        promise_ts, promise_bad = _parse_times(raw[mapping.promise], mapping)
        flags["bad_timestamp"] |= promise_bad
        orders["promise"] = promise_ts
    if mapping.delivery and promise_ts is not None:
        delivered = times[mapping.delivery]
        # The promise is a calendar day: late means delivered on a later day.
        late = (delivered.dt.tz_localize(None).dt.normalize()
                > promise_ts.dt.tz_localize(None).dt.normalize())
        orders["late_vs_promise"] = late.astype("boolean").mask(
            delivered.isna() | promise_ts.isna())
    else:
        orders["late_vs_promise"] = pd.array([pd.NA] * n, dtype="boolean")

    items, per_order = _items(items_raw, mapping)
    limit = ids.map(per_order["limit"]) if len(per_order) else pd.Series(pd.NaT, index=ids.index)
    limit = pd.to_datetime(limit).dt.tz_convert(mapping.timezone) if limit.notna().any() \
        else pd.Series(pd.NaT, index=ids.index, dtype=f"datetime64[ns, {mapping.timezone}]")
    orders["shipping_limit"] = limit.array
    if mapping.handover:
        handed_ts = times[mapping.handover]
        late_handover = (handed_ts > limit).astype("boolean").mask(handed_ts.isna()
                                                                   | limit.isna())
        orders["late_handover"] = late_handover.array
    else:
        orders["late_handover"] = pd.array([pd.NA] * n, dtype="boolean")
    orders["items"] = ids.map(per_order["count"]).fillna(0).astype("int64").to_numpy() \
        if len(per_order) else 0
    matrix = np.column_stack([flags[c] for c in ANOMALY_CODES])
    orders["anomalies"] = _anomaly_text(matrix)

    seller = (ids.map(per_order["seller"]) if "seller" in per_order
              else pd.Series("", index=ids.index))
    events = _events(mapping, case_id, times, seller.astype(object).fillna("").to_numpy())
    stage_times = _stage_times(mapping, orders, ns)
    durations = fit_durations(orders, mapping)

    input_counts = raw[mapping.status].str.strip().value_counts().sort_index()
    output_counts = orders["status"].value_counts().sort_index()
    delivered_known = orders["late_vs_promise"].notna()
    summary = {
        "orders": n,
        "orders_by_status": {str(k): int(v) for k, v in output_counts.items()},
        "input_orders_by_status": {str(k): int(v) for k, v in input_counts.items()},
        "final_states": {str(k): int(v) for k, v in state.value_counts().sort_index().items()},
        "anomalies": {code: int(flags[code].sum()) for code in ANOMALY_CODES},
        "orders_with_anomalies": int(matrix.any(axis=1).sum()),
        "late_vs_promise": int(orders["late_vs_promise"].sum()),
        "late_share": (float(orders["late_vs_promise"].sum() / delivered_known.sum())
                       if delivered_known.any() else None),
        "late_handover": int(orders["late_handover"].sum()),
        "items": len(items),
        "items_without_order": int((~items["order_id"].isin(set(ids))).sum()),
        "events": len(events),
        "stage_rows": len(stage_times),
        "as_of": _iso_one(as_of_ts),
    }
    return ReplayResult(orders, stage_times, durations, events, items, as_of_ts, summary)


def _anomaly_text(matrix: np.ndarray) -> np.ndarray:
    """The ';'-joined codes per row ('' for a clean row); only flagged rows are joined."""
    codes = np.array(ANOMALY_CODES, dtype=object)
    out = np.full(len(matrix), "", dtype=object)
    for i in np.flatnonzero(matrix.any(axis=1)):
        out[i] = ";".join(codes[matrix[i]])
    return out


def _items(raw: pd.DataFrame, mapping: ReplayMapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy items and, per order id: item count, earliest shipping limit, its seller."""
    items = pd.DataFrame({"order_id": raw[mapping.item_order_id].str.strip(),
                          "item_id": raw[mapping.item_id].str.strip()})
    items["seller_id"] = raw[mapping.seller_id].str.strip() if mapping.seller_id else ""
    items["product_id"] = raw[mapping.product_id].str.strip() if mapping.product_id else ""
    if mapping.shipping_limit:
        items["shipping_limit"], _ = _parse_times(raw[mapping.shipping_limit], mapping)
    else:
        items["shipping_limit"] = pd.Series(pd.NaT, index=raw.index).dt.tz_localize("UTC")
    for column in mapping.item_attributes:
        items[column] = raw[column]
    grouped = items.groupby("order_id", sort=False)
    per_order = pd.DataFrame({"count": grouped.size(), "limit": grouped["shipping_limit"].min()})
    if mapping.seller_id:
        # The hand-over is the seller's act; with several sellers, name the one whose
        # limit binds (earliest), so the resource is one id, not a list.
        first = items.sort_values(["order_id", "shipping_limit"], na_position="last",
                                  kind="stable").drop_duplicates("order_id")
        per_order["seller"] = first.set_index("order_id")["seller_id"]
    return items, per_order


def _events(mapping: ReplayMapping, case_id: pd.Series, times: Mapping[str, pd.Series],
            seller: np.ndarray) -> pd.DataFrame:
    """One row per observed milestone, cases in input order, events in time order."""
    parts = []
    n = len(case_id)
    row = np.arange(n)
    for position, m in enumerate(mapping.milestones):
        ts = times[m.key]
        present = ts.notna().to_numpy()
        if m.resource == "seller":
            resource = seller
        elif m.resource:
            resource = np.full(n, m.resource, dtype=object)
        else:
            resource = np.full(n, "", dtype=object)
        parts.append(pd.DataFrame({
            "row": row[present], "position": position,
            "case_id": case_id.to_numpy()[present], "activity": m.activity,
            "timestamp": ts.array[present],
            "lifecycle": "complete", "resource": resource[present]}))
    events = pd.concat(parts, ignore_index=True)
    events = events.sort_values(["row", "timestamp", "position"], kind="stable")
    return events.drop(columns=["position"]).reset_index(drop=True)


def _stage_times(mapping: ReplayMapping, orders: pd.DataFrame,
                 ns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per (order, stage) the order entered (its start milestone is known)."""
    parts = []
    for position, s in enumerate(mapping.stages):
        entered = (ns[s.start] != _NAT)
        part = pd.DataFrame({
            "row": np.flatnonzero(entered), "position": position,
            "order_id": orders["order_id"].to_numpy()[entered],
            "case_id": orders["case_id"].to_numpy()[entered],
            "stage": s.name, "states": " ".join(s.states),
            "start": orders[s.start].array[entered],
            "end": orders[s.end].array[entered],
            "hours": orders[f"hours_{s.name}"].to_numpy()[entered],
            "observation": s.observation})
        parts.append(part)
    table = pd.concat(parts, ignore_index=True).sort_values(["row", "position"], kind="stable")
    return table.drop(columns=["row", "position"]).reset_index(drop=True)


# -- fitted durations ----------------------------------------------------------------------------

def fit_durations(orders: pd.DataFrame, mapping: ReplayMapping) -> dict[str, Any]:
    """Per stage (and the total), lognormal and exponential fits to the positive hours.

    Only positive durations are fitted (zero and negative ones are data errors or
    same-second records, and both models live on (0, inf)). The model with the
    lower AIC is chosen; both AICs are kept so a reader can see how close it was.
    Parameters follow scipy.stats: lognorm(s, loc=0, scale), expon(loc=0, scale).
    """
    spans = [(s.name, list(s.states), s.observation, s.note) for s in mapping.stages]
    if mapping.total:
        spans.append(("total", [], "observed", "first to last milestone"))
    out: dict[str, Any] = {}
    for name, states, observation, note in spans:
        hours = orders[f"hours_{name}"].to_numpy(dtype=float)
        positive = hours[np.isfinite(hours) & (hours > 0)]
        entry: dict[str, Any] = {"states": states, "observation": observation}
        if note:
            entry["note"] = note
        entry.update(fit_hours(positive))
        out[name] = entry
    return out


def fit_hours(hours: np.ndarray) -> dict[str, Any]:
    """Fit lognormal and exponential by maximum likelihood; choose by AIC."""
    n = len(hours)
    if n < 2:
        return {"model": None, "params": {}, "n": n,
                "mean_hours": float(hours.mean()) if n else None,
                "p50": float(hours[0]) if n else None, "p90": float(hours[0]) if n else None,
                "aic": None, "aic_by_model": {}}
    logs = np.log(hours)
    mu, sigma = float(logs.mean()), float(logs.std())
    scale = float(hours.mean())
    try:
        from scipy import stats

        ll_lognormal = float(stats.lognorm.logpdf(hours, sigma, loc=0, scale=math.exp(mu)).sum()) \
            if sigma > 0 else -math.inf
        ll_exponential = float(stats.expon.logpdf(hours, loc=0, scale=scale).sum())
    except ImportError:  # closed form, same values
        ll_lognormal = (float(-logs.sum() - n * math.log(sigma * math.sqrt(2 * math.pi))
                              - ((logs - mu) ** 2).sum() / (2 * sigma**2))
                        if sigma > 0 else -math.inf)
        ll_exponential = float(-n * math.log(scale) - hours.sum() / scale)
    aic = {"lognormal": 4 - 2 * ll_lognormal, "exponential": 2 - 2 * ll_exponential}
    model = min(aic, key=aic.get)
    params = ({"s": sigma, "loc": 0.0, "scale": math.exp(mu), "mu": mu, "sigma": sigma}
              if model == "lognormal" else {"loc": 0.0, "scale": scale})
    return {"model": model, "params": params, "n": n, "mean_hours": float(hours.mean()),
            "p50": float(np.quantile(hours, 0.5)), "p90": float(np.quantile(hours, 0.9)),
            "aic": aic[model], "aic_by_model": aic}


# -- event logs ----------------------------------------------------------------------------------

def _iso(ts: pd.Series) -> np.ndarray:
    """ISO 8601 text with the UTC offset (2017-10-02T10:56:33.000-03:00); '' for NaT."""
    ts = pd.to_datetime(ts)
    if len(ts) == 0:
        return np.array([], dtype=object)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    local = ts.dt.tz_localize(None)
    utc = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    minutes = ((local - utc) // pd.Timedelta(minutes=1)).fillna(0).astype("int64").to_numpy()
    seconds = local.to_numpy().astype("datetime64[s]")
    body = np.char.add(np.datetime_as_string(seconds, unit="s"), ".000").astype(object)
    body[np.isnat(seconds)] = ""
    distinct, which = np.unique(minutes, return_inverse=True)
    offsets = np.array([f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
                        for m in distinct], dtype=object)
    suffix = offsets[which]
    out = body + suffix
    out[body == ""] = ""
    return out


def _iso_one(ts: pd.Timestamp) -> str:
    return str(_iso(pd.Series([ts]))[0])


_XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
<extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
<global scope="trace">
<string key="concept:name" value="__INVALID__"/>
</global>
<global scope="event">
<string key="concept:name" value="__INVALID__"/>
<date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>
<string key="lifecycle:transition" value="complete"/>
</global>
<classifier name="Activity" keys="concept:name"/>
<string key="concept:name" value="storeops replay"/>
"""


def write_xes(events: pd.DataFrame, path: str | os.PathLike, *, chunk: int = 20_000) -> int:
    """Write events as IEEE 1849 XES, one trace per case in table order; return trace count.

    Streams escaped text (no DOM), so memory stays flat for 100k traces. Events must
    be grouped by case (``replay`` sorts them so).
    """
    cases = events["case_id"].to_numpy(dtype=object)
    activity = _escaped(events["activity"])
    resource = _escaped(events["resource"].fillna(""))
    times = _iso(events["timestamp"])
    lifecycle = (_escaped(events["lifecycle"]) if "lifecycle" in events
                 else np.full(len(cases), '"complete"', dtype=object))
    traces = 0
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8", newline="\n") as out:
        out.write(_XES_HEAD)
        buffer: list[str] = []
        previous = None
        for i in range(len(cases)):
            case = cases[i]
            if case != previous:
                if previous is not None:
                    buffer.append("</trace>\n")
                buffer.append(f'<trace>\n<string key="concept:name" value={quoteattr(case)}/>\n')
                previous = case
                traces += 1
                if traces % chunk == 0:
                    out.write("".join(buffer))
                    buffer.clear()
            res = resource[i]
            buffer.append(
                f'<event>\n<string key="concept:name" value={activity[i]}/>\n'
                f'<date key="time:timestamp" value="{times[i]}"/>\n'
                f'<string key="lifecycle:transition" value={lifecycle[i]}/>\n'
                + (f'<string key="org:resource" value={res}/>\n' if res != '""' else "")
                + "</event>\n")
        if previous is not None:
            buffer.append("</trace>\n")
        buffer.append("</log>\n")
        out.write("".join(buffer))
    return traces


def _escaped(values: pd.Series) -> np.ndarray:
    """Quoted XML attribute values, escaping each distinct value once."""
    codes, uniques = pd.factorize(values.astype(str))
    table = np.array([quoteattr(u) for u in uniques], dtype=object)
    return table[codes] if len(codes) else np.array([], dtype=object)


_EPOCH = "1970-01-01T00:00:00.000+00:00"  # OCEL 2.0's time for attributes that never change


def write_ocel(events: pd.DataFrame, orders: pd.DataFrame, items: pd.DataFrame,
               path: str | os.PathLike) -> dict[str, int]:
    """Write OCEL 2.0 JSON: orders, items and sellers as objects, milestones as events.

    Every event relates to its order ('order') and the order's items ('item');
    hand-over events, whose resource is a seller, also relate to that seller. Objects
    link order -> item ('contains') and item -> seller ('sold by'). Attributes that
    never change carry OCEL's epoch time. Written as streamed text, one object or
    event per line, with strings encoded once each (json.dumps per record is 5x slower).
    """
    js = encode_basestring_ascii
    epoch = js(_EPOCH)

    def attribute(name: str, value: str) -> str:
        return f'{{"name": {js(name)}, "time": {epoch}, "value": {js(value)}}}'

    extra = [c for c in items.columns
             if c not in ("order_id", "item_id", "seller_id", "shipping_limit")]
    has_seller = "seller_id" in items and bool(items["seller_id"].astype(bool).any())
    item_ids = (items["order_id"] + ":" + items["item_id"]).to_numpy(dtype=object)
    item_js = [js(x) for x in item_ids]
    limits = _iso(items["shipping_limit"]) if "shipping_limit" in items else None
    extra_values = {c: items[c].astype(str).to_numpy(dtype=object) for c in extra}
    item_orders = items["order_id"].to_numpy(dtype=object)
    sellers = items["seller_id"].to_numpy(dtype=object) if has_seller else None
    item_rel: dict[str, list[int]] = {}
    for i, order in enumerate(item_orders):
        item_rel.setdefault(order, []).append(i)

    def item_lines() -> Iterator[str]:
        for i in range(len(item_ids)):
            attrs = [attribute(c, extra_values[c][i]) for c in extra]
            if limits is not None and limits[i]:
                attrs.append(attribute("shipping_limit", limits[i]))
            rels = (f'{{"objectId": {js("seller:" + sellers[i])}, "qualifier": "sold by"}}'
                    if sellers is not None and sellers[i] else "")
            yield (f'{{"id": {item_js[i]}, "type": "item", "attributes": [{", ".join(attrs)}]'
                   f', "relationships": [{rels}]}}')

    seller_ids = sorted(set(items["seller_id"]) - {""}) if has_seller else []

    order_lines = []
    order_rel: dict[str, str] = {}
    ids = orders["order_id"].to_numpy(dtype=object)
    cases = orders["case_id"].to_numpy(dtype=object)
    status = orders["status"].to_numpy(dtype=object)
    state = orders["final_state"].to_numpy(dtype=object)
    anomalies = orders["anomalies"].to_numpy(dtype=object)
    for i in range(len(cases)):
        linked = item_rel.get(ids[i], ())
        case = js(cases[i])
        attrs = ", ".join((attribute("order_id", ids[i]), attribute("status", status[i]),
                           attribute("final_state", state[i]),
                           attribute("anomalies", anomalies[i])))
        contains = ", ".join(f'{{"objectId": {item_js[j]}, "qualifier": "contains"}}'
                             for j in linked)
        order_lines.append(f'{{"id": {case}, "type": "order", "attributes": [{attrs}], '
                           f'"relationships": [{contains}]}}')
        order_rel[cases[i]] = ", ".join(
            [f'{{"objectId": {case}, "qualifier": "order"}}']
            + [f'{{"objectId": {item_js[j]}, "qualifier": "item"}}' for j in linked])

    activities = sorted(set(events["activity"]))
    object_types = [
        {"name": "order", "attributes": [{"name": a, "type": "string"} for a in
                                         ("order_id", "status", "final_state", "anomalies")]},
        {"name": "item", "attributes": [{"name": c, "type": "string"} for c in extra]
         + [{"name": "shipping_limit", "type": "time"}]},
    ]
    if has_seller:
        object_types.append({"name": "seller", "attributes": []})
    event_types = [{"name": a, "attributes": [{"name": "resource", "type": "string"}]}
                   for a in activities]
    ev_case = events["case_id"].to_numpy(dtype=object)
    ev_type = _encoded(events["activity"])
    resources_raw = events["resource"].fillna("").astype(str)
    ev_res = _encoded(resources_raw)
    ev_res_raw = resources_raw.to_numpy(dtype=object)
    ev_time = _iso(events["timestamp"])
    seller_rel = {s: f', {{"objectId": {js("seller:" + s)}, "qualifier": "seller"}}'
                  for s in seller_ids}
    seller_lines = [f'{{"id": {js("seller:" + s)}, "type": "seller", "attributes": [], '
                    f'"relationships": []}}' for s in seller_ids]
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8", newline="\n") as out:
        out.write(f'{{"objectTypes": {json.dumps(object_types)},\n'
                  f'"eventTypes": {json.dumps(event_types)},\n"objects": [\n')
        separator = ""
        for line in itertools.chain(order_lines, item_lines(), seller_lines):
            out.write(separator)
            out.write(line)
            separator = ",\n"
        out.write('\n],\n"events": [\n')
        buffer = []
        for i in range(len(ev_case)):
            rel = order_rel[ev_case[i]] + seller_rel.get(ev_res_raw[i], "")
            buffer.append(f'{{"id": "e{i + 1}", "type": {ev_type[i]}, "time": "{ev_time[i]}", '
                          f'"attributes": [{{"name": "resource", "value": {ev_res[i]}}}], '
                          f'"relationships": [{rel}]}}')
            if len(buffer) >= 50_000:
                out.write(",\n".join(buffer) + ",\n")
                buffer.clear()
        out.write(",\n".join(buffer))
        out.write("\n]}\n")
    return {"objects": len(order_lines) + len(item_ids) + len(seller_lines),
            "events": len(ev_case)}


def _encoded(values: pd.Series) -> np.ndarray:
    """JSON string literals, encoding each distinct value once."""
    codes, uniques = pd.factorize(values.astype(str))
    table = np.array([encode_basestring_ascii(u) for u in uniques], dtype=object)
    return table[codes] if len(codes) else np.array([], dtype=object)


# -- files in, files out -------------------------------------------------------------------------

def resolve_inputs(mapping: ReplayMapping, orders: str | os.PathLike | None,
                   items: str | os.PathLike | None,
                   data_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """Input paths: given ones win; else the mapping's names under data_dir (or its folder)."""
    base = Path(data_dir) if data_dir is not None else Path(mapping.base_dir)
    found = []
    for given, named, role in ((orders, mapping.orders_file, "orders"),
                               (items, mapping.items_file, "items")):
        if given is not None:
            found.append(Path(given))
        elif named is not None:
            found.append(base / named)
        else:
            raise InputError(f"no {role} file: give one or name it under files.{role}",
                             Location(mapping.source, 1, 1))
    return found[0], found[1]


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with ISO 8601 timestamps, true/false, empty cells for nulls.

    pyarrow writes it some 20x faster than ``DataFrame.to_csv`` (which formats every
    float in Python); text cells are always quoted, which every CSV reader accepts.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = _iso(out[column])
    table = pa.Table.from_pandas(out, preserve_index=False)
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="needed"))


def replay_tables(result: ReplayResult, folder: str | os.PathLike) -> None:
    """Write orders.csv, stage_times.csv (timestamps as ISO 8601 with offset) and
    durations.json into ``folder``, each atomically."""
    folder = Path(folder)
    for name, frame in (("orders.csv", result.orders), ("stage_times.csv", result.stage_times)):
        with atomic_path(folder / name) as temp:
            _write_csv(frame, temp)
    with atomic_path(folder / "durations.json") as temp:
        temp.write_text(json.dumps(result.durations, indent=2) + "\n", encoding="utf-8")


def replay_to_dir(orders: str | os.PathLike | None, items: str | os.PathLike | None,
                  mapping: ReplayMapping | str | os.PathLike, out_dir: str | os.PathLike, *,
                  data_dir: str | os.PathLike | None = None,
                  as_of: str | dt.datetime | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Replay and write orders.csv, stage_times.csv, durations.json, events.xes and
    events.ocel.json into ``out_dir``, each atomically; return the summary.

    Every input problem is raised before the first output is written.
    ``progress`` hears one line per phase (the CLI prints them on stderr).
    """
    say = progress or (lambda message: None)
    if not isinstance(mapping, ReplayMapping):
        mapping = load_mapping(mapping)
    orders_path, items_path = resolve_inputs(mapping, orders, items, data_dir)
    say(f"reading and replaying {display_path(orders_path)} ...")
    result = replay(orders_path, items_path, mapping, as_of=as_of)
    folder = output_dir(out_dir)
    say(f"writing orders.csv, stage_times.csv and durations.json ({len(result.orders):,} "
        "orders) ...")
    replay_tables(result, folder)
    say(f"writing events.xes ({len(result.events):,} events) ...")
    traces = write_xes(result.events, folder / "events.xes")
    say("writing events.ocel.json ...")
    ocel = write_ocel(result.events, result.orders, result.items, folder / "events.ocel.json")
    summary = dict(result.summary)
    summary["result"] = result  # for callers that go on to record the replay (CLI)
    summary.update({"traces": traces, "ocel_objects": ocel["objects"],
                    "outputs": sorted(["orders.csv", "stage_times.csv", "durations.json",
                                       "events.xes", "events.ocel.json"])})
    return summary


def check_against_workflow(mapping: ReplayMapping, workflow: Any, pack_path: str) -> None:
    """Every workflow state the mapping names must be a state of the pack's workflow.

    The replay and the workflow pack are separate files; a renamed state in one
    would otherwise silently split the two.
    """
    named: dict[str, None] = {}
    for stage in mapping.stages:
        named.update(dict.fromkeys(stage.states))
    for rule in mapping.statuses.values():
        named[rule.state] = None
    named.update(dict.fromkeys(mapping.terminal_states))
    named.update(dict.fromkeys(mapping.cancelled_states))
    errors = [
        InputError(f"state '{state}' is not a state of workflow '{workflow.id}' in {pack_path}",
                   Location(mapping.source, 1, 1), did_you_mean(state, workflow.states))
        for state in named if state not in workflow.states
    ]
    if errors:
        raise ErrorList(errors)


# ---------------------------------------------------------------------------------------------
# The replay in the trail: each order's walk through the workflow, and the rules it triggers
# ---------------------------------------------------------------------------------------------

_FLAG_CODES = ("stuck", "canceled_after_handover")
_DATA_CODES = ("bad_timestamp", "missing_timestamp", "out_of_order", "future_timestamp")


def order_facts(result: ReplayResult) -> pd.DataFrame:
    """One fact per replayed order, named as the workflow pack's replay fields are.

    Anomaly codes become booleans (``stuck``, ``canceled_after_handover``, and
    ``data_problem`` for any timestamp anomaly), so rules can test them.
    """
    orders = result.orders
    codes = orders["anomalies"].fillna("").str.split(";")
    facts = pd.DataFrame({
        "order": orders["case_id"].astype(str),
        "status": orders["status"].astype(str),
        "final_state": orders["final_state"].astype(str),
        "hours_confirm": orders["hours_confirm"],
        "hours_fulfil": orders["hours_fulfil"],
        "hours_deliver": orders["hours_deliver"],
        "hours_total": orders["hours_total"],
        "late_vs_promise": orders["late_vs_promise"],
        "late_handover": orders["late_handover"],
    })
    for code in _FLAG_CODES:
        facts[code] = codes.map(lambda found, code=code: code in found)
    facts["data_problem"] = codes.map(lambda found: any(c in found for c in _DATA_CODES))
    return facts


def replay_tables_of(pack: Any, facts: pd.DataFrame) -> list[Any]:
    """The pack's tables to apply to replayed orders: those reading only replay facts.

    A workflow pack also holds rules for live orders (how to print, how to pick)
    whose fields a replay of history does not have; they are left out.
    """
    from .tables import compile_table

    provided = set(facts.columns)
    chosen = []
    for table in pack.tables:
        read = {name for rule in table.rules for name in rule.when.fields}
        if read and read <= provided:
            chosen.append(compile_table(pack, table))
    return chosen


def record_replay(result: ReplayResult, mapping: ReplayMapping, pack: Any, trail: Any
                  ) -> tuple[pd.DataFrame, int]:
    """Write each order's transitions and its rule firings to the trail; return the actions.

    Transitions: the order enters the workflow's start state at its first
    milestone, then moves through each stage's states, timestamped with the
    milestone that ends the stage; hops inside a stage the data only bounds are
    recorded at the stage's end with ``"observed": false``. Each record is a
    firing of the workflow transition it follows (file and line of the pack).
    """
    from . import runner
    from .adapters import facts_from_dataframe
    from .trail import RuleRef

    workflow = pack.workflow
    keys: dict[str, int] = {}
    for transition in workflow.transitions:
        keys[transition.id] = trail.rule(RuleRef(
            pack_id=pack.id, pack_version=pack.version, pack_sha256=pack.sha256,
            table_id=workflow.id, rule_id=transition.id,
            source_file=transition.location.file, source_line=transition.location.line,
            fields=("from", "to", "observed"),
            outputs=json.dumps([{"event": "transition", "from": transition.source,
                                 "to": transition.target}]),
            label_en=transition.label.en if transition.label else "",
            label_zh=transition.label.zh if transition.label else "",
        ))
    edge = {(t.source, t.target): t.id for t in workflow.transitions}
    paths: dict[tuple[str, str], list[str]] = {}

    def hops(a: str, b: str) -> list[str]:
        if (a, b) not in paths:
            try:
                paths[a, b] = nx.shortest_path(workflow.graph, a, b)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                paths[a, b] = []
        return paths[a, b]

    milestone_times = {m.key: result.orders[m.key] for m in mapping.milestones
                       if m.key in result.orders}
    ts_list: list[float] = []
    subjects: list[str] = []
    rules: list[int] = []
    values: list[tuple] = []
    epoch = {key: pd.to_datetime(col, utc=True, errors="coerce") for key, col in
             milestone_times.items()}
    # seconds since the epoch, whatever resolution pandas stores the datetimes in
    origin = pd.Timestamp("1970-01-01", tz="UTC")
    epoch = {key: ((col - origin) / pd.Timedelta(seconds=1)).tolist()
             for key, col in epoch.items()}
    case_ids = result.orders["case_id"].astype(str).tolist()
    finals = result.orders["final_state"].astype(str).tolist()
    first_key = mapping.milestones[0].key
    no_times = [None] * len(case_ids)
    spans = [(stage, epoch.get(stage.start, no_times), epoch.get(stage.end, no_times))
             for stage in mapping.stages]
    all_times = list(epoch.values())
    for i, case in enumerate(case_ids):
        state, at = workflow.start, epoch[first_key][i]
        if at is None or at != at:
            continue
        for stage, starts, ends in spans:
            start, end = starts[i], ends[i]
            if start is None or start != start:
                break
            # a stage's first state is entered at its start milestone ...
            _walk(state, stage.states[0], start, True, hops, edge, keys, case,
                  ts_list, subjects, rules, values)
            state = stage.states[0]
            if end is None or end != end:
                break  # ... and the order is still in this stage
            # ... its other states by its end; only an observed stage says exactly when
            for target in stage.states[1:]:
                _walk(state, target, end, stage.observation == "observed", hops, edge, keys,
                      case, ts_list, subjects, rules, values)
                state = target
        final = finals[i]
        if final in workflow.end_states and final != state:
            last = max((times[i] for times in all_times
                        if times[i] is not None and times[i] == times[i]), default=at)
            _walk(state, final, last, True, hops, edge, keys, case,
                  ts_list, subjects, rules, values)
    trail.add_many(ts_list, subjects, rules, values)
    # the rules the orders trigger
    facts_frame = order_facts(result)
    tables = replay_tables_of(pack, facts_frame)
    facts = facts_from_dataframe(facts_frame, pack.fields, pack.field_values,
                                 source="replayed orders")
    firings = runner.fire_columns(tables, facts)
    seqs = runner.record(firings, tables, facts, trail)
    actions = runner.actions_frame(firings, seqs, trail.run_id, tables, facts)
    return actions, len(ts_list) + len(firings)


def _walk(state, target, at, observed, hops, edge, keys, case, ts_list, subjects, rules,
          values) -> None:
    """Record the transitions from ``state`` to ``target`` (through the graph if not adjacent)."""
    path = hops(state, target)
    for a, b in itertools.pairwise(path):
        transition = edge.get((a, b))
        if transition is None:
            continue
        ts_list.append(at)
        subjects.append(case)
        rules.append(keys[transition])
        values.append((a, b, observed and len(path) == 2))

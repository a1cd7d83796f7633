"""Read facts from CSV, Parquet, pandas DataFrames or records, typed by a pack's fields.

The adapters read whole columns (pandas/pyarrow do this far better than a
hand-written loop), apply the declared column mapping, and convert each
column to the declared field type. Every bad cell is reported with its file,
row and column before anything runs, so a run never starts on half-valid
data. Row numbers count the header as row 1, as spreadsheets and editors do.

A ``FactTable`` holds typed columns, ``(values, null_mask)`` pairs as the
columnar matcher wants them, and produces row dicts (None for null) for the
row-by-row path. NaN never reaches an expression: it becomes null here.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import yamlsafe
from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .expressions import Field

MAX_REPORTED = 20
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_TYPE_WORDS = {"number": "a number", "integer": "a whole number", "text": "text",
               "boolean": "true or false", "date": "a date"}


@dataclass(frozen=True)
class ColumnMapping:
    """How a user's file maps onto a pack's fields (see docs/mapping.md)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    delimiter: str = ","
    encoding: str = "utf-8"
    date_format: str | None = None
    grain: str = "day"  # value-chain input: rows per store-day or per store-week
    decimal: str = "."
    source: str = ""
    locations: Mapping[str, Location] = field(default_factory=dict)

    def column_for(self, name: str) -> str:
        return self.columns.get(name, name)


def mapping_schema() -> dict[str, Any]:
    from .packs import shipped_schema

    return shipped_schema("mapping")


def load_mapping(path: str | os.PathLike) -> ColumnMapping:
    """Read and validate a mapping file; errors carry file, line and column."""
    from .files import display_path
    from .packs import schema_errors

    doc = yamlsafe.load(path, display=display_path(path))
    errors = schema_errors(doc, "mapping")
    if errors:
        raise ErrorList(errors)
    body = doc.data["mapping"]
    columns = body.get("columns", {})
    return ColumnMapping(
        columns=dict(columns),
        delimiter=body.get("delimiter", ","),
        encoding=body.get("encoding", "utf-8"),
        date_format=body.get("date_format"),
        grain=body.get("grain", "day"),
        decimal=body.get("decimal", "."),
        source=doc.path,
        locations={name: doc.locate(("mapping", "columns", name)) for name in columns},
    )


@dataclass(frozen=True)
class FactTable:
    """Typed columns for n facts, plus where each came from (for error messages)."""

    source: str
    n: int
    fields: Mapping[str, Field]
    columns: Mapping[str, tuple[np.ndarray, np.ndarray | None]]
    # Rows left out by skip_bad (one error per bad cell), and each kept fact's row in the file.
    skipped: tuple[StoreopsError, ...] = ()
    lines: np.ndarray | None = None
    header: tuple[str, ...] = ()  # the file's column names in order (for error positions)

    _objects: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def column_list(self, name: str) -> list[Any]:
        """Python values of one column, None for null (what row dicts and the trail hold)."""
        return self.column_objects(name).tolist()

    def column_objects(self, name: str) -> np.ndarray:
        """One column as an object array of Python values (cached: the trail reads it often)."""
        found = self._objects.get(name)
        if found is None:
            found = np.empty(self.n, dtype=object)
            found[:] = _to_python(*self.columns[name], self.fields[name].type)
            self._objects[name] = found
        return found

    def column_number(self, column: str) -> int:
        """The 1-based position of a column of the file (1 when unknown), for locations."""
        return self.header.index(column) + 1 if column in self.header else 1

    def to_frame(self, names: Iterable[str] | None = None) -> pd.DataFrame:
        """Columns as a pandas frame for aggregation: numbers as float64 with NaN for null,
        dates as datetime64 with NaT, booleans as pandas' nullable booleans, text as objects
        with None."""
        return pd.DataFrame({name: self.series(name) for name in (names or self.columns)})

    def series(self, name: str) -> pd.Series:
        values, nulls = self.columns[name]
        kind = self.fields[name].type
        if kind == "date":
            series = pd.Series(values.astype("datetime64[ns]"))
            missing = pd.NaT
        elif kind in ("number", "integer"):
            series = pd.Series(values.astype(np.float64))
            missing = np.nan
        elif kind == "boolean":
            series = pd.Series(values, dtype="boolean")
            missing = pd.NA
        else:
            series = pd.Series(values, dtype=object)
            missing = None
        if nulls is not None:
            series[nulls] = missing
        return series

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        lists = [self.column_list(name) for name in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)]


def merge_fields(packs: Iterable[Any]) -> tuple[dict[str, Field], dict[str, tuple]]:
    """The union of several packs' fields; one name must mean one type."""
    fields: dict[str, Field] = {}
    values: dict[str, tuple] = {}
    errors = []
    for pack in packs:
        for name, f in pack.fields.items():
            known = fields.get(name)
            if known is None:
                fields[name] = f
            elif known.type != f.type:
                errors.append(InputError(
                    f"field '{name}' is {known.type} in one pack and {f.type} in pack "
                    f"'{pack.id}'", Location(pack.path, 1, 1)))
            elif known.required != f.required and f.required:
                fields[name] = f
        for name, allowed in pack.field_values.items():
            values[name] = tuple(dict.fromkeys(values.get(name, ()) + allowed))
    if errors:
        raise ErrorList(errors)
    return fields, values


def read_facts(path: str | os.PathLike, fields: Mapping[str, Field],
               field_values: Mapping[str, tuple] | None = None,
               mapping: ColumnMapping | None = None, *, skip_bad: bool = False) -> FactTable:
    """Read a CSV (optionally gzipped) or Parquet file into typed columns."""
    from .files import display_path

    shown = display_path(path)
    mapping = mapping or ColumnMapping()
    suffixes = "".join(Path(path).suffixes).lower()
    if not os.path.exists(path):
        raise InputError("no such file", Location(shown, 1, 1))
    if os.path.isdir(path):
        raise InputError("is a folder, expected a CSV or Parquet file", Location(shown, 1, 1))
    if ".parquet" in suffixes or suffixes.endswith(".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise InputError(f"cannot read Parquet: {exc}", Location(shown, 1, 1)) from None
        return facts_from_dataframe(frame, fields, field_values, mapping, source=shown,
                                    skip_bad=skip_bad)
    try:
        # Excel writes UTF-8 with a byte-order mark; 'utf-8-sig' reads files with and without.
        encoding = "utf-8-sig" if mapping.encoding.lower() in ("utf-8", "utf8") else \
            mapping.encoding
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            sep=mapping.delimiter, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty, expected a header row", Location(shown, 1, 1)) \
            from None
    except pd.errors.ParserError as exc:
        raise InputError(f"not a readable CSV: {_parser_message(exc)}",
                         Location(shown, _parser_line(exc), 1)) from None
    except UnicodeDecodeError:
        raise InputError(f"not {mapping.encoding} text (set 'encoding' in the mapping file)",
                         Location(shown, 1, 1)) from None
    return facts_from_dataframe(frame, fields, field_values, mapping, source=shown,
                                text_input=True, skip_bad=skip_bad)


def facts_from_records(records: Iterable[Mapping[str, Any]], fields: Mapping[str, Field],
                       field_values: Mapping[str, tuple] | None = None,
                       source: str = "<records>") -> FactTable:
    """Facts from an iterable of dicts (missing keys are null)."""
    rows = list(records)
    frame = pd.DataFrame({name: [row.get(name) for row in rows] for name in fields})
    return facts_from_dataframe(frame, fields, field_values, source=source)


def facts_from_dataframe(frame: pd.DataFrame, fields: Mapping[str, Field],
                         field_values: Mapping[str, tuple] | None = None,
                         mapping: ColumnMapping | None = None, *, source: str = "<DataFrame>",
                         text_input: bool = False, skip_bad: bool = False) -> FactTable:
    """Type the columns of a DataFrame; raise ErrorList naming every bad cell.

    With ``skip_bad`` a row holding a bad cell is left out instead, and every
    such cell is listed in the table's ``skipped`` (missing columns still stop
    the run: no row could be read right).
    """
    mapping = mapping or ColumnMapping()
    field_values = field_values or {}
    header = [str(c) for c in frame.columns]
    positions = {name: i for i, name in enumerate(header)}
    errors: list[StoreopsError] = []
    for name in mapping.columns:
        if name not in fields:
            errors.append(InputError(f"the mapping names field '{name}' that no pack declares",
                                     mapping.locations.get(name), did_you_mean(name, fields)))
    columns: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    n = len(frame)
    cell_errors: list[StoreopsError] = []
    bad_rows = np.zeros(n, dtype=bool)
    for name, f in fields.items():
        column = mapping.column_for(name)
        if column not in positions:
            if f.required:
                if name in mapping.columns:
                    errors.append(InputError(
                        f"the mapping names column '{column}' for field '{name}', but "
                        f"{source} has no such column", mapping.locations.get(name),
                        did_you_mean(column, header)))
                else:
                    errors.append(InputError(
                        f"missing column '{name}' (expected {_TYPE_WORDS[f.type]})",
                        Location(source, 1, 1),
                        did_you_mean(name, header) or "map it in a mapping file"))
            else:
                columns[name] = _empty(f.type, n)
            continue
        col_index = positions[column] + 1
        try:
            values, nulls, bad = _convert(frame[column], f.type, mapping.date_format,
                                          mapping.decimal)
        except _Refused as exc:
            errors.append(InputError(f"column '{column}': {exc}", Location(source, 1, col_index)))
            continue
        allowed = field_values.get(name)
        if allowed and f.type == "text":
            known = pd.Series(values).isin(list(allowed)).to_numpy()
            unknown = ~known if nulls is None else (~known & ~nulls)
            bad = bad | unknown
        bad_rows |= bad
        shown = np.flatnonzero(bad) if skip_bad else np.flatnonzero(bad)[:MAX_REPORTED]
        for row in shown:
            raw = frame[column].iloc[row]
            what = (f"not one of the values of field '{name}'" if allowed and f.type == "text"
                    and not _bad_type(raw, f.type) else f"expected {_TYPE_WORDS[f.type]}")
            hint = did_you_mean(str(raw), [str(v) for v in allowed]) if allowed else None
            line = int(row) + 2 if text_input else int(row) + 1
            cell_errors.append(InputError(f"bad value {raw!r} in column '{column}' ({what})",
                                          Location(source, line, col_index), hint))
        extra = int(bad.sum()) - MAX_REPORTED
        if extra > 0 and not skip_bad:
            cell_errors.append(InputError(
                f"... and {extra:,} more bad values in column '{column}'",
                Location(source, 1, col_index)))
        columns[name] = (values, nulls)
    if errors or (cell_errors and not skip_bad):
        raise ErrorList(errors + cell_errors)
    first_line = 2 if text_input else 1
    lines = np.arange(first_line, first_line + n, dtype=np.int64)
    if bad_rows.any():
        keep = ~bad_rows
        columns = {name: (values[keep], None if nulls is None else nulls[keep])
                   for name, (values, nulls) in columns.items()}
        lines = lines[keep]
        n = int(keep.sum())
    return FactTable(source=source, n=n, fields=dict(fields), columns=columns,
                     skipped=tuple(cell_errors), lines=lines, header=tuple(header))


class _Refused(Exception):
    pass


def _bad_type(raw: Any, kind: str) -> bool:
    return kind != "text" and raw not in (None, "")


def _empty(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    dtype = {"number": np.float64, "integer": np.int64, "boolean": bool,
             "date": "datetime64[D]", "text": object}[kind]
    values = np.zeros(n, dtype=dtype) if kind != "text" else np.full(n, None, dtype=object)
    return values, np.ones(n, dtype=bool)


def _convert(series: pd.Series, kind: str, date_format: str | None, decimal: str = "."):
    """(values, null mask or None, bad mask) for one column."""
    if kind == "text":
        values = series.to_numpy(dtype=object, copy=True)
        nulls = series.isna().to_numpy() | (series.astype(str).to_numpy() == "") \
            if series.dtype == object else series.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = series.astype(str).to_numpy(dtype=object)
        values[nulls] = None
        return values, (nulls if nulls.any() else None), np.zeros(len(series), dtype=bool)
    text = _as_text(series)
    blank = text.isna().to_numpy() | (text.fillna("").str.strip() == "").to_numpy()
    if kind in ("number", "integer"):
        if pd.api.types.is_bool_dtype(series.dtype):
            raise _Refused(f"holds true/false, expected {_TYPE_WORDS[kind]}")
        if pd.api.types.is_numeric_dtype(series.dtype):
            numbers = series.astype(np.float64).to_numpy()
        else:
            stripped = text.str.strip()
            if decimal != ".":
                stripped = stripped.str.replace(decimal, ".", regex=False)
            numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(np.float64)
        nan = np.isnan(numbers)
        bad = nan & ~blank
        nulls = nan
        if kind == "integer":
            fractional = ~nan & (numbers != np.floor(numbers))
            bad = bad | fractional
            values = np.where(nan | fractional, 0, numbers).astype(np.int64)
        else:
            values = np.where(nan, 0.0, numbers)
        return values, (nulls if nulls.any() else None), bad
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(series.dtype):
            # pandas' nullable booleans may hold NA: that is null
            missing = series.isna().to_numpy()
            values = series.fillna(False).to_numpy(dtype=bool)
            return values, (missing if missing.any() else None), np.zeros(len(series), bool)
        lowered = text.fillna("").str.strip().str.lower()
        true = lowered.isin(_TRUE).to_numpy()
        false = lowered.isin(_FALSE).to_numpy()
        bad = ~true & ~false & ~blank
        return true, (blank if blank.any() else None), bad
    # date
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        parsed = pd.to_datetime(text.str.strip(), format=date_format or "ISO8601",
                                errors="coerce")
    nat = parsed.isna().to_numpy()
    values = parsed.to_numpy(dtype="datetime64[D]")
    return values, (nat if nat.any() else None), nat & ~blank


def _as_text(series: pd.Series) -> pd.Series:
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).astype("string")
    return series.astype("string")


def _to_python(values: np.ndarray, nulls: np.ndarray | None, kind: str) -> list[Any]:
    if kind == "date":
        out = [None if v is None else v for v in values.astype(object).tolist()]
        out = [v if isinstance(v, dt.date) or v is None else None for v in out]
    else:
        out = values.tolist()
    if nulls is not None:
        for i in np.flatnonzero(nulls).tolist():
            out[i] = None
    return out


def _parser_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1]
    return text.replace("Error tokenizing data. C error: ", "")


def _parser_line(exc: Exception) -> int:
    import re

    found = re.search(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else 1

"""Decision tables kept in an Excel sheet or a CSV file (docs/dmn-tables.md, "Spreadsheets").

Business users keep decision tables in Excel; a pack points at the sheet and
``read_table`` turns it into the same table dict a pack holds in YAML, so the
schema check, the S-FEEL compiler and the overlap checks run unchanged. Every
problem in the sheet is reported at once, each at its sheet, row and column
(``discounts.xlsx[Discounts]:7:3: ...``), and ``SheetTable.locate`` lets the
pack loader report later errors (an S-FEEL syntax error in a cell) at the same
place in the sheet rather than in the YAML file that names it.

Layout, one table per sheet (a CSV file is one sheet):

* row 1: ``hit_policy`` in A1, the policy in B1 (DMN names or abbreviations);
* row 2: column kinds, ``id`` in A2, then ``input``, ``output`` or ``annotation``;
* row 3: headers, input expressions and output ``name`` or ``name: type``;
* rows 4..: one rule per row; fully empty rows are skipped.

Cells are read as values, never computed: formulas and merged cells are
refused, because what Excel shows for them is not what the file holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import ErrorList, InputError, Location, StoreopsError, did_you_mean
from .files import atomic_path

MAX_FILE_BYTES = 20 * 1024 * 1024
# An xlsx file is a zip; 20 MB of it can expand to gigabytes of XML. openpyxl
# (not in read-only mode, which hides merged cells) holds it all in memory.
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
# openpyxl makes one object per merged cell while loading, so a 1 kB file
# merging A1:XFD1048576 would take hours; merges are sized before loading.
MAX_MERGED_CELLS = 100_000
FIRST_RULE_ROW = 4
SUFFIXES = (".xlsx", ".csv")

# (DMN name, abbreviation, hit_policy, aggregation). B1 accepts either name in
# any case; write_table writes the DMN name, readable without the DMN legend.
_POLICY_TABLE = (
    ("UNIQUE", "U", "unique", None),
    ("ANY", "A", "any", None),
    ("PRIORITY", "P", "priority", None),
    ("FIRST", "F", "first", None),
    ("RULE ORDER", "R", "rule_order", None),
    ("OUTPUT ORDER", "O", "output_order", None),
    ("COLLECT", "C", "collect", None),
    ("COLLECT SUM", "C+", "collect", "sum"),
    ("COLLECT MIN", "C<", "collect", "min"),
    ("COLLECT MAX", "C>", "collect", "max"),
    ("COLLECT COUNT", "C#", "collect", "count"),
)
_POLICIES = {name: (policy, aggregation) for full, short, policy, aggregation in _POLICY_TABLE
             for name in (full, short)}
_POLICY_NAMES = {(policy, aggregation): full for full, _, policy, aggregation in _POLICY_TABLE}
_POLICY_HINT = "use one of U, A, P, F, R, O, C, C+, C<, C>, C# or their DMN names"
_KINDS = ("input", "output", "annotation")
_TYPES = ("text", "number", "boolean", "date")
_TYPE_WORDS = {"number": "a number", "boolean": "true or false", "date": "a date (YYYY-MM-DD)"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?\Z")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_MERGE_REF = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')


@dataclass(frozen=True)
class SheetTable:
    """A table read from a sheet: the pack table dict and where each part of it sits.

    ``data`` is a pack table dict (docs/dmn-tables.md) ready for the pack's
    schema check. ``locate(path)`` maps a path inside ``data`` such as
    ``("rules", 3, "cells", 1)`` to the cell it came from; unknown paths give
    the sheet's A1, so a caller can always report somewhere in the sheet.
    """

    data: dict
    locate: Callable[[tuple], Location]


@dataclass(frozen=True)
class _Layout:
    """Where the parts of a table sit in its sheet; ``locate`` is ``SheetTable.locate``."""

    file: str
    rule_rows: tuple[int, ...]
    input_cols: tuple[int, ...]
    output_cols: tuple[int, ...]
    note_col: int | None

    def locate(self, path: Sequence) -> Location:
        path = tuple(path)
        head = path[0] if path else None
        index = path[1] if len(path) > 1 and isinstance(path[1], int) else None
        if head in ("hit_policy", "aggregation"):
            return self._at(1, 2)
        if head in ("inputs", "outputs") and index is not None:
            cols = self.input_cols if head == "inputs" else self.output_cols
            if 0 <= index < len(cols):
                return self._at(3, cols[index])
        if head == "rules" and index is not None and 0 <= index < len(self.rule_rows):
            row = self.rule_rows[index]
            part = path[2] if len(path) > 2 else None
            item = path[3] if len(path) > 3 and isinstance(path[3], int) else None
            cols = {"cells": self.input_cols, "result": self.output_cols}.get(part)
            if cols is not None and item is not None and 0 <= item < len(cols):
                return self._at(row, cols[item])
            if part == "note" and self.note_col is not None:
                return self._at(row, self.note_col)
            return self._at(row, 1)
        return self._at(1, 1)

    def _at(self, row: int, col: int) -> Location:
        return Location(self.file, row, col)


@dataclass(frozen=True)
class _Cell:
    """One cell's value as the file holds it, with the reason it cannot be used, if any."""

    value: Any  # None, str, int, float, bool, datetime/date/time
    problem: str | None = None
    hint: str | None = None


_EMPTY = _Cell(None)


# --------------------------------------------------------------------------- reading


def read_table(
    path: str | os.PathLike,
    *,
    sheet: str | None,
    table_id: str,
    display: str | None = None,
) -> SheetTable:
    """Read one decision table from an .xlsx sheet or a CSV file.

    ``sheet`` names the worksheet of an .xlsx file (None: the first one) and
    must be None for CSV. ``display`` is the file name shown in errors (the
    pack loader passes the path as the user wrote it). Raises ``ErrorList`` of
    ``InputError``s, each at its sheet position, with every problem found.
    """
    path = Path(path)
    shown = display if display is not None else os.fspath(path)
    file_error = _check_file(path, shown)
    if file_error is not None:
        raise ErrorList([file_error])
    if path.suffix.lower() == ".csv":
        if sheet is not None:
            raise ErrorList([InputError(f"a CSV file has no sheets, but sheet '{sheet}' was given",
                                        Location(shown, 1, 1), "remove 'sheet:'")])
        grid, merged = _read_csv(path, shown), ()
        where = shown
    else:
        workbook = _open_workbook(path, shown)
        worksheet = _pick_sheet(workbook, sheet, shown)
        where = f"{shown}[{worksheet.title}]"
        grid, merged = _read_worksheet(worksheet), tuple(worksheet.merged_cells.ranges)
    return _Reader(grid, merged, where, table_id, typed=path.suffix.lower() == ".xlsx").read()


def _check_file(path: Path, shown: str) -> InputError | None:
    here = Location(shown, 1, 1)
    if not path.exists():
        return InputError("file not found", here)
    if path.is_dir():
        return InputError("is a folder, not a table file", here)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        what = f"'{path.suffix}'" if path.suffix else "(no extension)"
        hint = "save it as .xlsx" if suffix in (".xls", ".xlsm", ".xlsb", ".ods") else None
        return InputError(f"unsupported file type {what}; use .xlsx or .csv", here, hint)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return InputError(f"file is {size / 2**20:.1f} MB; table files over 20 MB are refused",
                          here)
    return None


def _open_workbook(path: Path, shown: str) -> Any:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    here = Location(shown, 1, 1)
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ErrorList([InputError(
                    f"workbook unpacks to {unpacked / 2**20:.0f} MB; "
                    f"over {MAX_UNPACKED_BYTES // 2**20} MB is refused", here)])
            merged = _merged_cell_count(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ErrorList([InputError("not an xlsx workbook", here, str(exc))]) from None
    if merged > MAX_MERGED_CELLS:
        raise ErrorList([InputError(
            f"merged ranges cover {merged} cells; over {MAX_MERGED_CELLS} is refused", here,
            "unmerge them")])
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it drops (data validation,
            # conditional formats); they do not change cell values.
            warnings.simplefilter("ignore", UserWarning)
            return openpyxl.load_workbook(path, read_only=False, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError,
            OSError) as exc:
        raise ErrorList([InputError("cannot read the workbook", here, str(exc))]) from None


def _merged_cell_count(archive: zipfile.ZipFile) -> int:
    total = 0
    for name in archive.namelist():
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            for first_col, first_row, last_col, last_row in _MERGE_REF.findall(
                    archive.read(name)):
                if last_col:
                    cols = _column_number(last_col) - _column_number(first_col) + 1
                    total += abs(cols) * (abs(int(last_row) - int(first_row)) + 1)
    return total


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _pick_sheet(workbook: Any, sheet: str | None, shown: str) -> Any:
    if sheet is None:
        return workbook.worksheets[0]
    if sheet in workbook.sheetnames and hasattr(workbook[sheet], "merged_cells"):
        return workbook[sheet]
    names = [ws.title for ws in workbook.worksheets]
    listed = "sheets: " + ", ".join(f"'{name}'" for name in names)
    hint = "; ".join(h for h in (did_you_mean(sheet, names), listed) if h)
    raise ErrorList([InputError(f"unknown sheet '{sheet}'", Location(shown, 1, 1), hint)])


def _read_worksheet(worksheet: Any) -> dict[tuple[int, int], _Cell]:
    # The public iterators create every cell of the used rectangle, so one
    # stray value in XFD1048576 would cost 17 billion cells; ``_cells`` holds
    # only the cells the file has.
    grid = {}
    for (row, col), cell in worksheet._cells.items():
        value = _excel_cell(cell)
        if value != _EMPTY:
            grid[row, col] = value
    return grid


def _excel_cell(cell: Any) -> _Cell:
    kind, value = cell.data_type, cell.value
    if kind == "f":
        text = value if isinstance(value, str) else getattr(value, "text", "") or ""
        text = text if len(text) <= 60 else text[:57] + "..."
        return _Cell(None, "formulas are not supported; paste values",
                     f"the cell holds {text}" if text else None)
    if kind == "e":
        return _Cell(None, f"the cell holds the Excel error {value}")
    if isinstance(value, float) and not math.isfinite(value):
        return _Cell(None, f"the cell holds {value}, not a usable number")
    if isinstance(value, str) and not value.strip():
        return _EMPTY
    return _Cell(value) if value is not None else _EMPTY


def _read_csv(path: Path, shown: str) -> dict[tuple[int, int], _Cell]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ErrorList([InputError("the file is not UTF-8 text", Location(shown, line, col),
                                    "save the CSV as UTF-8")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_csv_delimiter(text))
    try:
        return {(r, c): _Cell(v) for r, row in enumerate(reader, start=1)
                for c, v in enumerate(row, start=1) if v.strip()}
    except csv.Error as exc:
        raise ErrorList([InputError(f"unreadable CSV: {exc}",
                                    Location(shown, reader.line_num, 1))]) from None


def _csv_delimiter(text: str) -> str:
    """The character after 'hit_policy' in A1: Excel in many locales saves CSV with ';'."""
    match = re.match(r"\s*\"?\s*hit[ _]?policy\s*\"?\s*([,;\t])", text, re.IGNORECASE)
    return match.group(1) if match else ","


@dataclass
class _Column:
    col: int  # 1-based sheet column
    kind: str
    header: str
    name: str = ""
    type: str | None = None  # outputs: the declared type, None when left to the values


class _Reader:
    """Turns a grid of cells into a table dict, collecting every problem on the way."""

    def __init__(self, grid: dict[tuple[int, int], _Cell], merged: Iterable[Any], file: str,
                 table_id: str, *, typed: bool) -> None:
        self.grid = grid
        self.file = file
        self.table_id = table_id
        self.typed = typed  # xlsx cells carry types; CSV cells are all text
        self.errors: list[StoreopsError] = []
        self.merged = tuple(merged)

    def covered(self, row: int, col: int) -> bool:
        """Under a merge but not its top-left: empty in the file, and the merge is the error."""
        return any(rng.min_row <= row <= rng.max_row and rng.min_col <= col <= rng.max_col
                   and (row, col) != (rng.min_row, rng.min_col) for rng in self.merged)

    def cell(self, row: int, col: int) -> _Cell:
        return self.grid.get((row, col), _EMPTY)

    def reported(self, row: int, col: int) -> bool:
        """The cell is empty because of a merge or a bad value, already an error of its own."""
        return self.cell(row, col).problem is not None or self.covered(row, col)

    def error(self, message: str, row: int, col: int, hint: str | None = None) -> None:
        self.errors.append(InputError(message, Location(self.file, row, col), hint))

    def value(self, row: int, col: int) -> Any:
        """The cell's value; None for a cell ``check_cells`` has reported."""
        return self.cell(row, col).value

    def read(self) -> SheetTable:
        # The table is as wide as its kinds and headers rows; cells to the
        # right of it are the user's own notes and are not read.
        width = max((col for row, col in self.grid if row in (2, 3)), default=1)
        self.check_cells(width)
        hit_policy, aggregation = self.read_policy()
        columns = self.read_columns(width)
        inputs = [c for c in columns if c.kind == "input"]
        outputs = [c for c in columns if c.kind == "output"]
        notes = [c for c in columns if c.kind == "annotation"]
        rows = sorted({row for row, col in self.grid if row >= FIRST_RULE_ROW and col <= width})
        ids = self.rule_ids(rows)
        values = {c.col: [self.value(r, c.col) for r in rows] for c in outputs}
        for column in outputs:
            column.type = column.type or self.infer_type(values[column.col])
        rules = []
        for index, (row, rule_id) in enumerate(zip(rows, ids, strict=True)):
            rule: dict[str, Any] = {
                "id": rule_id,
                "cells": [self.input_cell(row, c.col) for c in inputs],
                "result": [self.output_value(values[c.col][index], c, row) for c in outputs],
            }
            note = self.note(row, notes)
            if note:
                rule["note"] = note
            rules.append(rule)
        if self.errors:
            raise ErrorList(self.errors)
        data: dict[str, Any] = {"id": self.table_id, "hit_policy": hit_policy}
        if aggregation is not None:
            data["aggregation"] = aggregation
        data["inputs"] = [{"label": c.header, "expression": c.header} for c in inputs]
        data["outputs"] = [{"name": c.name, "label": c.name, "type": c.type} for c in outputs]
        data["rules"] = rules
        layout = _Layout(self.file, tuple(rows), tuple(c.col for c in inputs),
                         tuple(c.col for c in outputs), notes[0].col if notes else None)
        return SheetTable(data, layout.locate)

    def read_policy(self) -> tuple[str, str | None]:
        label = self.cell(1, 1)
        if label.problem is None and _normal(_text(label.value)).replace(" ", "_") != "HIT_POLICY":
            found = f"'{_text(label.value)}'" if label.value is not None else "an empty cell"
            self.error(f"expected 'hit_policy' in A1, found {found}", 1, 1)
        value = self.value(1, 2)
        if value is None:
            if self.cell(1, 2).problem is None:
                self.error("missing hit policy in B1", 1, 2, _POLICY_HINT)
            return "unique", None
        key = _normal(_text(value)).replace("_", " ")
        if key in _POLICIES:
            return _POLICIES[key]
        hint = did_you_mean(key, [row[0] for row in _POLICY_TABLE]) or _POLICY_HINT
        self.error(f"unknown hit policy '{_text(value)}'", 1, 2, hint)
        return "unique", None

    def check_cells(self, width: int) -> None:
        """Report every merged range and unreadable cell (formula, Excel error) in the table."""
        for rng in self.merged:
            if rng.min_col <= width:
                self.error(f"merged cells {rng.coord} are not supported", rng.min_row,
                           rng.min_col, "unmerge them and fill each cell")
        for (row, col), cell in self.grid.items():
            if cell.problem is not None and col <= max(width, 2):
                self.error(cell.problem, row, col, cell.hint)

    def read_columns(self, width: int) -> list[_Column]:
        label = self.cell(2, 1)
        if label.problem is None and _text(label.value).strip().lower() != "id":
            found = f"'{_text(label.value)}'" if label.value is not None else "an empty cell"
            self.error(f"expected 'id' in A2, found {found}", 2, 1)
        columns = []
        # A column whose kind cannot be read may be the missing input or
        # output; saying the table has none would only repeat that error.
        unread = False
        for col in range(2, width + 1):
            if self.covered(2, col):
                unread = True
                continue
            kind_value = self.value(2, col)
            if kind_value is None:
                if self.cell(2, col).problem is None:
                    self.error("missing column kind", 2, col, "use input, output or annotation")
                unread = True
                continue
            kind = _text(kind_value).strip().lower()
            if kind not in _KINDS:
                hint = did_you_mean(kind, _KINDS) or "use input, output or annotation"
                self.error(f"unknown column kind '{_text(kind_value)}'", 2, col, hint)
                unread = True
                continue
            header_value = self.value(3, col)
            header = _text(header_value).strip() if header_value is not None else ""
            column = _Column(col, kind, header)
            if kind == "input" and not header and not self.reported(3, col):
                self.error("input column without an expression in row 3", 3, col)
            if kind == "output":
                self.output_header(column)
            columns.append(column)
        if not unread and not any(c.kind == "input" for c in columns):
            self.error("the table has no input column", 2, 1)
        if not unread and not any(c.kind == "output" for c in columns):
            self.error("the table has no output column", 2, 1)
        names: dict[str, int] = {}
        for column in columns:
            if column.kind == "output" and column.name:
                if column.name in names:
                    self.error(f"duplicate output name '{column.name}' "
                               f"(also in column {_letters(names[column.name])})", 3, column.col)
                names.setdefault(column.name, column.col)
        return columns

    def output_header(self, column: _Column) -> None:
        """``name`` or ``name: type``; an empty or bad name leaves the column nameless."""
        name, colon, type_text = column.header.partition(":")
        name, type_text = name.strip(), type_text.strip().lower()
        if not name:
            if not self.reported(3, column.col):
                self.error("output column without a name in row 3", 3, column.col)
            return
        if not _NAME.match(name) or len(name) > 64:
            self.error(f"output name '{name}' must start with a letter and hold only letters, "
                       "digits and _ (at most 64)", 3, column.col)
            return
        column.name = name
        if colon:
            if type_text in _TYPES:
                column.type = type_text
            else:
                hint = did_you_mean(type_text, _TYPES) or "use text, number, boolean or date"
                self.error(f"unknown output type '{type_text}'", 3, column.col, hint)
                column.type = "text"

    def rule_ids(self, rows: list[int]) -> list[str]:
        given: list[str | None] = []
        first_row: dict[str, int] = {}
        for row in rows:
            value = self.value(row, 1)
            rule_id = _text(value).strip() if value is not None else None
            given.append(rule_id or None)
            if not rule_id:
                continue
            if rule_id in first_row:
                self.error(f"duplicate rule id '{rule_id}' (also in row {first_row[rule_id]})",
                           row, 1)
            first_row.setdefault(rule_id, row)
        # Blank ids become r<n>, n the rule's position; a name the sheet already
        # uses gets a suffix, so a generated id never collides.
        ids, used = [], set(first_row)
        for number, rule_id in enumerate(given, start=1):
            if rule_id is None:
                rule_id, suffix = f"r{number}", 2
                while rule_id in used:
                    rule_id, suffix = f"r{number}_{suffix}", suffix + 1
                used.add(rule_id)
            ids.append(rule_id)
        return ids

    def input_cell(self, row: int, col: int) -> str:
        value = self.value(row, col)
        if value is None:
            return "-"  # an empty input entry matches anything, as in DMN modelers
        if isinstance(value, dt.datetime) and value.time() == dt.time():
            return f'date("{value.date().isoformat()}")'
        if isinstance(value, dt.datetime):
            return f'date and time("{value.isoformat()}")'
        if isinstance(value, dt.date):
            return f'date("{value.isoformat()}")'
        return _text(value).strip()

    def infer_type(self, values: list[Any]) -> str:
        present = [v for v in values if v is not None]
        if not present:
            return "text"
        if self.typed:
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
        else:
            numeric = all(_NUMBER.match(_text(v).strip()) for v in present)
        return "number" if numeric else "text"

    def output_value(self, value: Any, column: _Column, row: int) -> Any:
        if value is None:
            return None
        converted = _convert(value, column.type or "text")
        if converted is _WRONG:
            self.error(f"output '{column.name or _letters(column.col)}' must be "
                       f"{_TYPE_WORDS[column.type or 'text']}, found {_shown(value)}",
                       row, column.col)
            return None
        return converted

    def note(self, row: int, notes: list[_Column]) -> str | None:
        texts = []
        for column in notes:
            value = self.value(row, column.col)
            if value is None:
                continue
            text = _convert(value, "text")
            # One annotation column gives its text; several give "header: text"
            # lines, so the reader of the note knows which column said what.
            texts.append(text if len(notes) == 1 else f"{column.header or '-'}: {text}")
        return "\n".join(texts) or None


_WRONG = object()


def _convert(value: Any, type_name: str) -> Any:
    """A cell value as the output type wants it, or ``_WRONG``."""
    if type_name == "text":
        if isinstance(value, dt.datetime) and value.time() == dt.time():
            return value.date().isoformat()
        if isinstance(value, dt.date | dt.time):
            return value.isoformat()
        return _text(value).strip()
    if type_name == "number":
        if isinstance(value, bool):
            return _WRONG
        if isinstance(value, int | float):
            return _clean_number(value)
        if isinstance(value, str):
            return _parse_number(value.strip())
        return _WRONG
    if type_name == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return _WRONG
    # date: ISO text in the pack, as YAML 1.2 gives dates
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else _WRONG
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return _WRONG
    return _WRONG


def _clean_number(value: int | float) -> int | float:
    """Int when integral, else the float Excel shows (15 significant digits, no noise)."""
    if isinstance(value, int):
        return value
    clean = float(f"{value:.15g}")
    return int(clean) if clean.is_integer() else clean


def _parse_number(text: str) -> Any:
    if not _NUMBER.match(text):
        return _WRONG
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return _WRONG
    if number == number.to_integral_value() and abs(number) < 10**18:
        return int(number)
    result = float(number)
    return result if math.isfinite(result) else _WRONG


def _number_text(value: int | float | Decimal) -> str:
    """A number as S-FEEL and CSV text: ``18``, ``0.12``, never ``0.30000000000000004``."""
    if isinstance(value, int):
        return str(value)
    number = Decimal(f"{value:.15g}") if isinstance(value, float) else value
    if number == 0:
        return "0"
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _text(value: Any) -> str:
    """Any cell value as the text a user would type for it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return _number_text(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value.strip()}'"
    return _text(value)


def _normal(text: str) -> str:
    return " ".join(text.upper().split())


def _letters(col: int) -> str:
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# --------------------------------------------------------------------------- writing


def write_table(table: dict, path: str | os.PathLike, *, sheet: str | None = None) -> None:
    """Write a pack table dict to an .xlsx sheet or a CSV file, in the layout read_table reads.

    The file is replaced atomically. An existing workbook keeps its other
    sheets (openpyxl drops charts and images from them); the sheet is replaced
    in place or appended. ``sheet`` defaults to the table's id. Refuses, with
    an ``InputError``, a table the layout cannot hold (rule ``when``/``then``,
    output ``values``, labels that differ from the expression or name), so a
    write never silently drops part of a table.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        what = f"'{path.suffix}'" if path.suffix else "(no extension)"
        raise InputError(f"unsupported file type {what}; use .xlsx or .csv",
                         Location(os.fspath(path), 1, 1))
    problems = _unwritable(table)
    if problems:
        raise InputError(f"table '{table.get('id', '?')}' cannot be written to a sheet: "
                         + "; ".join(problems))
    rows = _layout_rows(table)
    if suffix == ".csv":
        if sheet is not None:
            raise InputError(f"a CSV file has no sheets, but sheet '{sheet}' was given",
                             Location(os.fspath(path), 1, 1))
        _write_csv(rows, path)
    else:
        _write_xlsx(rows, path, sheet or str(table.get("id") or "Table")[:31])


def _unwritable(table: dict) -> list[str]:
    problems = []
    policy = (table.get("hit_policy"), table.get("aggregation"))
    if policy not in _POLICY_NAMES:
        problems.append(f"unknown hit policy {policy[0]!r}"
                        + (f" with aggregation {policy[1]!r}" if policy[1] else ""))
    for j, item in enumerate(table.get("inputs", ())):
        if set(item) - {"label", "expression"}:
            problems.append(f"input {j + 1} has {_keys(set(item) - {'label', 'expression'})}")
        if item.get("label", item.get("expression")) != item.get("expression"):
            problems.append(f"input {j + 1} has a label that differs from its expression")
    for k, item in enumerate(table.get("outputs", ())):
        if set(item) - {"name", "label", "type"}:
            problems.append(f"output '{item.get('name')}' has "
                            f"{_keys(set(item) - {'name', 'label', 'type'})}")
        if item.get("label", item.get("name")) != item.get("name"):
            problems.append(f"output {k + 1} has a label that differs from its name")
        if item.get("type", "text") not in _TYPES:
            problems.append(f"output '{item.get('name')}' has unknown type {item.get('type')!r}")
    inputs, outputs = len(table.get("inputs", ())), len(table.get("outputs", ()))
    for rule in table.get("rules", ()):
        extra = set(rule) - {"id", "cells", "result", "note"}
        if extra:
            problems.append(f"rule '{rule.get('id')}' has {_keys(extra)}")
        if len(rule.get("cells", ())) > inputs or len(rule.get("result", ())) > outputs:
            problems.append(f"rule '{rule.get('id')}' has more cells or results than the "
                            f"table has columns ({inputs} inputs, {outputs} outputs)")
    return problems


def _keys(keys: set[str]) -> str:
    return ", ".join(f"'{key}'" for key in sorted(keys)) + " (no place in a sheet)"


def _layout_rows(table: dict) -> list[list[Any]]:
    """Rows 1..n of the layout as Python values; text cells stay str, typed outputs typed."""
    inputs = list(table.get("inputs", ()))
    outputs = list(table.get("outputs", ()))
    rules = list(table.get("rules", ()))
    with_notes = any(rule.get("note") for rule in rules)
    policy = _POLICY_NAMES[(table["hit_policy"], table.get("aggregation"))]
    kinds = ["id"] + ["input"] * len(inputs) + ["output"] * len(outputs)
    headers = ["rule"] + [str(i["expression"]) for i in inputs]
    headers += [f"{o['name']}: {o.get('type', 'text')}" for o in outputs]
    if with_notes:
        kinds.append("annotation")
        headers.append("note")
    rows: list[list[Any]] = [["hit_policy", policy], kinds, headers]
    for rule in rules:
        cells = [c if isinstance(c, str) else ("-" if c is None else _text(c))
                 for c in rule.get("cells", ())]
        result = list(rule.get("result", ()))
        result += [None] * (len(outputs) - len(result))
        values = [_typed_output(v, o.get("type", "text")) for v, o in zip(result, outputs,
                                                                           strict=False)]
        row = [str(rule.get("id", "")), *cells, *values]
        if with_notes:
            row.append(rule.get("note"))
        rows.append(row)
    return rows


def _typed_output(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    if type_name == "number" and isinstance(value, Decimal):
        return _clean_number(float(value)) if value != value.to_integral_value() else int(value)
    if type_name == "date" and isinstance(value, str) and _ISO_DATE.match(value):
        return dt.date.fromisoformat(value)
    if type_name == "text" and not isinstance(value, str):
        return _text(value)
    return value


def _write_csv(rows: list[list[Any]], path: Path) -> None:
    width = max(len(row) for row in rows)
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        for row in rows:
            texts = ["" if v is None else _text(v) for v in row]
            writer.writerow(texts + [""] * (width - len(texts)))


def _write_xlsx(rows: list[list[Any]], path: Path, sheet: str) -> None:
    import openpyxl
    from openpyxl.styles import Font

    if path.exists():
        problem = _check_file(path, os.fspath(path))
        if problem is not None:
            raise ErrorList([problem])
        workbook = _open_workbook(path, os.fspath(path))
        index = len(workbook.sheetnames)
        if sheet in workbook.sheetnames:
            index = workbook.sheetnames.index(sheet)
            workbook.remove(workbook[sheet])
        worksheet = workbook.create_sheet(sheet, index)
    else:
        workbook = openpyxl.Workbook()
        worksheet = workbook.active
        worksheet.title = sheet
    bold = Font(bold=True)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            cell = worksheet.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                # Text such as "=x" or "#N/A" would otherwise become a formula
                # or an Excel error, and read back as one.
                cell.data_type = "s"
            elif isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            if r <= 3:
                cell.font = bold
    worksheet.freeze_panes = "B4"
    for c in range(1, max(len(row) for row in rows) + 1):
        longest = max((len(_text(row[c - 1])) for row in rows[1:]
                       if c <= len(row) and row[c - 1] is not None), default=4)
        worksheet.column_dimensions[_letters(c)].width = min(max(longest + 2, 8), 60)
    with atomic_path(path) as temp:
        workbook.save(temp)

"""Decision tables in .xlsx sheets and CSV files (storeops.engine.sheets).

Workbooks are built with openpyxl inside each test, so every fixture is
visible next to its assertions; a string starting with "=" becomes a formula
cell, exactly as when a user types it in Excel.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

openpyxl = pytest.importorskip("openpyxl")

from storeops.engine import sheets  # noqa: E402
from storeops.engine.errors import ErrorList, InputError, Location  # noqa: E402
from storeops.engine.sheets import SheetTable, read_table, write_table  # noqa: E402

DATA = Path(__file__).parent / "data" / "sheets"


def make_xlsx(folder: Path, rows: list[list], *, sheet: str = "Discounts",
              name: str = "discounts.xlsx", merge: tuple[str, ...] = (),
              other_sheets: tuple[str, ...] = ()) -> Path:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                worksheet.cell(row=r, column=c, value=value)
    for cells in merge:
        worksheet.merge_cells(cells)
    for title in other_sheets:
        workbook.create_sheet(title)
    path = folder / name
    workbook.save(path)
    return path


def make_csv(folder: Path, rows: list[list], *, name: str = "discounts.csv",
             delimiter: str = ",") -> Path:
    path = folder / name
    path.write_text("\n".join(delimiter.join(str(v) for v in row) for row in rows) + "\n",
                    encoding="utf-8")
    return path


def read(path: Path, sheet: str | None = "Discounts", display: str | None = None) -> SheetTable:
    return read_table(path, sheet=sheet, table_id="discounts",
                      display=display if display is not None else path.name)


def error_lines(path: Path, sheet: str | None = "Discounts") -> list[str]:
    with pytest.raises(ErrorList) as caught:
        read(path, sheet)
    assert all(isinstance(e, InputError) for e in caught.value.errors)
    return [str(e) for e in caught.value.errors]


HEAD = [["hit_policy", "UNIQUE"], ["id", "input", "output"], ["rule", "age", "discount"]]


def table(*rules: list, head: list[list] = HEAD) -> list[list]:
    return [*head, *rules]


# ---------------------------------------------------------------- known answers


def test_reads_a_whole_xlsx_table(tmp_path):
    path = make_xlsx(tmp_path, [
        ["hit_policy", "Collect Sum"],
        ["id", "input", "input", "output", "annotation"],
        ["rule", "age", "sales - sales_prev", "discount: number", "why"],
        ["R1", 18, "< 0.12", 0.05, "adults"],
        [None, ">= 65", None, 0.1, None],
        [],
        ["R3", '"A","B"', 0.12, 1, None],
    ])
    result = read(path)
    assert result.data == {
        "id": "discounts",
        "hit_policy": "collect",
        "aggregation": "sum",
        "inputs": [{"label": "age", "expression": "age"},
                   {"label": "sales - sales_prev", "expression": "sales - sales_prev"}],
        "outputs": [{"name": "discount", "label": "discount", "type": "number"}],
        "rules": [
            {"id": "R1", "cells": ["18", "< 0.12"], "result": [0.05], "note": "adults"},
            {"id": "r2", "cells": [">= 65", "-"], "result": [0.1]},
            {"id": "R3", "cells": ['"A","B"', "0.12"], "result": [1]},
        ],
    }
    # The empty row 6 is skipped, so the third rule sits in row 7.
    assert result.locate(("rules", 2, "cells", 1)) == Location("discounts.xlsx[Discounts]", 7, 3)


@pytest.mark.parametrize(("text", "expected"), [
    ("UNIQUE", ("unique", None)), ("u", ("unique", None)),
    ("Any", ("any", None)), ("A", ("any", None)),
    ("priority", ("priority", None)), ("P", ("priority", None)),
    ("FIRST", ("first", None)), ("f", ("first", None)),
    ("Rule Order", ("rule_order", None)), ("R", ("rule_order", None)),
    ("rule_order", ("rule_order", None)),
    ("OUTPUT ORDER", ("output_order", None)), ("o", ("output_order", None)),
    ("COLLECT", ("collect", None)), ("C", ("collect", None)),
    ("collect  sum", ("collect", "sum")), ("C+", ("collect", "sum")),
    ("COLLECT MIN", ("collect", "min")), ("c<", ("collect", "min")),
    ("COLLECT MAX", ("collect", "max")), ("C>", ("collect", "max")),
    ("Collect Count", ("collect", "count")), ("C#", ("collect", "count")),
])
def test_hit_policy_names_and_abbreviations_in_any_case(tmp_path, text, expected):
    head = [["hit_policy", text], *HEAD[1:]]
    data = read(make_xlsx(tmp_path, table(["r1", 1, 2], head=head))).data
    assert (data["hit_policy"], data.get("aggregation")) == expected
    assert ("aggregation" in data) == (expected[1] is not None)


def test_a1_accepts_hit_policy_spelt_with_a_space_and_capitals(tmp_path):
    head = [["Hit Policy", "F"], *HEAD[1:]]
    assert read(make_xlsx(tmp_path, table(["r1", 1, 2], head=head))).data["hit_policy"] == "first"


@pytest.mark.parametrize(("value", "cell"), [
    (18, "18"),
    (18.0, "18"),
    (-5, "-5"),
    (0.12, "0.12"),
    (1 / 3, "0.333333333333333"),  # Excel's 15 significant digits
    (1e-7, "0.0000001"),
    (True, "true"),
    (False, "false"),
    (dt.date(2024, 1, 2), 'date("2024-01-02")'),
    ("  >= 18 ", ">= 18"),
    (None, "-"),
])
def test_excel_typed_input_cells_become_s_feel_text(tmp_path, value, cell):
    path = make_xlsx(tmp_path, table(["r1", value, "x"]))
    assert read(path).data["rules"][0]["cells"] == [cell]


def test_outputs_are_values_of_their_type(tmp_path):
    path = make_xlsx(tmp_path, [
        ["hit_policy", "C"],
        ["id", "input", "output", "output", "output", "output", "output", "output"],
        ["rule", "x", "n", "t: text", "b: boolean", "d: date", "mixed", "n2: Number"],
        ["r1", 1, 3, 18, True, dt.date(2024, 1, 2), "Approved", "2.50"],
        ["r2", 2, 2.5, "A", "FALSE", "2024-03-04", 7, 0.1 + 0.2],
        ["r3", 3, None, None, None, None, 0.5, None],
    ])
    data = read(path).data
    assert [(o["name"], o["type"]) for o in data["outputs"]] == [
        ("n", "number"), ("t", "text"), ("b", "boolean"), ("d", "date"), ("mixed", "text"),
        ("n2", "number")]
    assert [r["result"] for r in data["rules"]] == [
        [3, "18", True, "2024-01-02", "Approved", 2.5],
        [2.5, "A", False, "2024-03-04", "7", 0.3],
        [None, None, None, None, "0.5", None],
    ]
    assert type(data["rules"][0]["result"][0]) is int


def test_float_noise_stored_by_excel_is_dropped(tmp_path):
    # Excel stores =0.1+0.2, pasted as values, as 0.30000000000000004;
    # openpyxl writes 0.3, so the stored text is patched in afterwards.
    head = [HEAD[0], HEAD[1], ["rule", "age", "d: number"]]
    path = make_xlsx(tmp_path, table(["r1", 0.75, 0.25], head=head))
    rewritten = tmp_path / "noisy.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                assert body.count(b"<v>0.75</v>") == 1 and body.count(b"<v>0.25</v>") == 1
                body = body.replace(b"<v>0.75</v>", b"<v>0.30000000000000004</v>")
                body = body.replace(b"<v>0.25</v>", b"<v>0.7000000000000001</v>")
            target.writestr(item, body)
    rule = read(rewritten).data["rules"][0]
    assert (rule["cells"], rule["result"]) == (["0.3"], [0.7])


def test_inputs_and_outputs_keep_their_order_within_each_kind(tmp_path):
    path = make_xlsx(tmp_path, [
        ["hit_policy", "U"],
        ["id", "output", "input", "annotation", "output", "input", "annotation"],
        ["", "b", "y", "Source", "a", "x", "Owner"],
        ["r1", "B", "1", "page 3", "A", "2", None],
        ["r2", "B", "3", None, "A", "4", "Ann"],
    ])
    result = read(path)
    assert [i["expression"] for i in result.data["inputs"]] == ["y", "x"]
    assert [o["name"] for o in result.data["outputs"]] == ["b", "a"]
    assert result.data["rules"][0] == {"id": "r1", "cells": ["1", "2"], "result": ["B", "A"],
                                       "note": "Source: page 3"}
    assert result.data["rules"][1]["note"] == "Owner: Ann"
    file = "discounts.xlsx[Discounts]"
    assert result.locate(("inputs", 1)) == Location(file, 3, 6)
    assert result.locate(("outputs", 0, "name")) == Location(file, 3, 2)
    assert result.locate(("rules", 1, "result", 1)) == Location(file, 5, 5)
    assert result.locate(("rules", 1, "note")) == Location(file, 5, 4)


def test_blank_rule_ids_are_numbered_by_position_and_never_collide(tmp_path):
    path = make_xlsx(tmp_path, table([None, 1, 1], ["r1", 2, 2], [" ", 3, 3], [None, 4, 4]))
    # row 4 is rule 1, but 'r1' is taken by row 5
    assert [r["id"] for r in read(path).data["rules"]] == ["r1_2", "r1", "r3", "r4"]


def test_fully_empty_rows_are_skipped_anywhere(tmp_path):
    path = make_xlsx(tmp_path, table([], ["a", 1, 1], [None, None, None], [None, "  ", None],
                                     ["b", 2, 2], []))
    result = read(path)
    assert [r["id"] for r in result.data["rules"]] == ["a", "b"]
    assert [result.locate(("rules", i)).line for i in range(2)] == [5, 8]


def test_cells_right_of_the_table_are_not_read(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, 2, None, "=SUM(B4:C4)", "scratch"]),
                     merge=("F1:G2",))
    assert read(path).data["rules"] == [{"id": "r1", "cells": ["1"], "result": [2]}]


def test_stray_cells_far_away_are_read_sparsely(tmp_path):
    # Reading the whole used rectangle (17 billion cells) would never finish.
    path = make_xlsx(tmp_path, table(["r1", 1, 2]))
    workbook = openpyxl.load_workbook(path)
    workbook["Discounts"]["XFD1048576"] = "far right"
    workbook["Discounts"]["C1048575"] = 5
    workbook.save(path)
    result = read(path)
    assert result.data["rules"] == [{"id": "r1", "cells": ["1"], "result": [2]},
                                    {"id": "r2", "cells": ["-"], "result": [5]}]
    assert result.locate(("rules", 1)).line == 1048575


def test_locate_maps_every_path_and_falls_back_to_a1(tmp_path):
    result = read(make_xlsx(tmp_path, table(["r1", 1, 2], ["r2", 3, 4])))
    file = "discounts.xlsx[Discounts]"
    assert result.locate(("rules", 1, "cells", 0)) == Location(file, 5, 2)
    assert result.locate(("rules", 1, "result", 0)) == Location(file, 5, 3)
    assert result.locate(("rules", 1, "id")) == Location(file, 5, 1)
    assert result.locate(("rules", 0)) == Location(file, 4, 1)
    assert result.locate(("inputs", 0)) == Location(file, 3, 2)
    assert result.locate(("outputs", 0)) == Location(file, 3, 3)
    assert result.locate(("hit_policy",)) == Location(file, 1, 2)
    assert result.locate(("rules", 0, "note")) == Location(file, 4, 1)  # no annotation column
    assert result.locate(("rules", 0, "cells", 7)) == Location(file, 4, 1)  # the rule's row
    for unknown in [(), ("rules", 9, "cells", 0), ("inputs", 5), ("title",), ("rules",)]:
        assert result.locate(unknown) == Location(file, 1, 1)


def test_first_sheet_when_no_sheet_is_named(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, 2]), other_sheets=("Other",))
    result = read_table(path, sheet=None, table_id="t")
    assert result.data["id"] == "t"
    assert result.locate(()) == Location(f"{path}[Discounts]", 1, 1)


def test_named_sheet_among_several(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    worksheet = workbook.create_sheet("Discounts")
    for row in table(["r9", 1, 2]):
        worksheet.append(row)
    workbook.save(tmp_path / "book.xlsx")
    assert read(tmp_path / "book.xlsx").data["rules"][0]["id"] == "r9"


# ---------------------------------------------------------------- errors: files


def test_missing_file(tmp_path):
    assert error_lines(tmp_path / "discounts.xlsx") == ["discounts.xlsx:1:1: file not found"]


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "discounts.xlsx").mkdir()
    assert error_lines(tmp_path / "discounts.xlsx") == [
        "discounts.xlsx:1:1: is a folder, not a table file"]


@pytest.mark.parametrize(("name", "line"), [
    ("discounts.xls", "discounts.xls:1:1: unsupported file type '.xls'; use .xlsx or .csv "
                      "(save it as .xlsx)"),
    ("discounts.txt", "discounts.txt:1:1: unsupported file type '.txt'; use .xlsx or .csv"),
    ("discounts", "discounts:1:1: unsupported file type (no extension); use .xlsx or .csv"),
])
def test_file_that_is_not_xlsx_or_csv(tmp_path, name, line):
    (tmp_path / name).write_text("hit_policy,U\n")
    assert error_lines(tmp_path / name) == [line]


def test_xlsx_that_is_not_a_workbook(tmp_path):
    (tmp_path / "discounts.xlsx").write_text("hit_policy,U\n")
    assert error_lines(tmp_path / "discounts.xlsx") == [
        "discounts.xlsx:1:1: not an xlsx workbook (File is not a zip file)"]


def test_file_over_20_mb_is_refused_before_opening(tmp_path):
    path = tmp_path / "discounts.xlsx"
    with open(path, "wb") as handle:
        handle.truncate(21 * 2**20)  # sparse; not a workbook either, but never opened
    assert error_lines(path) == [
        "discounts.xlsx:1:1: file is 21.0 MB; table files over 20 MB are refused"]


def test_workbook_that_unpacks_too_far_is_refused(tmp_path):
    path = tmp_path / "discounts.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("xl/worksheets/sheet1.xml", "w") as member:
        for _ in range(101):
            member.write(bytes(2**20))  # 101 MB of zeros pack into about 100 kB
    assert path.stat().st_size < 2**20
    assert error_lines(path) == [
        "discounts.xlsx:1:1: workbook unpacks to 101 MB; over 100 MB is refused"]


def test_huge_merged_range_is_refused_before_openpyxl_loads_it(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, 2]), merge=("A10:C11",))
    huge = tmp_path / "huge.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(huge, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                assert b'<mergeCell ref="A10:C11"/>' in body
                body = body.replace(b'ref="A10:C11"', b'ref="A1:XFD1048576"')
            target.writestr(item, body)
    assert error_lines(huge) == [
        "huge.xlsx:1:1: merged ranges cover 17179869184 cells; over 100000 is refused "
        "(unmerge them)"]


def test_unknown_sheet_names_the_sheets(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, 2]), other_sheets=("Summary",))
    assert error_lines(path, sheet="Discount") == [
        "discounts.xlsx:1:1: unknown sheet 'Discount' "
        "(did you mean 'Discounts'?; sheets: 'Discounts', 'Summary')"]
    assert error_lines(path, sheet="Prices") == [
        "discounts.xlsx:1:1: unknown sheet 'Prices' (sheets: 'Discounts', 'Summary')"]


def test_csv_with_a_sheet_name(tmp_path):
    path = make_csv(tmp_path, table(["r1", 1, 2]))
    assert error_lines(path, sheet="Discounts") == [
        "discounts.csv:1:1: a CSV file has no sheets, but sheet 'Discounts' was given "
        "(remove 'sheet:')"]


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "discounts.csv"
    path.write_bytes(b"hit_policy,U\nid,input,output\nrule,city,x\nr1,\"M\xfcnchen\",1\n")
    assert error_lines(path, sheet=None) == [
        "discounts.csv:4:6: the file is not UTF-8 text (save the CSV as UTF-8)"]


# ---------------------------------------------------------------- errors: layout


XL = "discounts.xlsx[Discounts]"


@pytest.mark.parametrize(("head", "line"), [
    ([["hit policies", "U"], *HEAD[1:]],
     f"{XL}:1:1: expected 'hit_policy' in A1, found 'hit policies'"),
    ([[None, "U"], *HEAD[1:]], f"{XL}:1:1: expected 'hit_policy' in A1, found an empty cell"),
    ([["hit_policy"], *HEAD[1:]],
     f"{XL}:1:2: missing hit policy in B1 "
     "(use one of U, A, P, F, R, O, C, C+, C<, C>, C# or their DMN names)"),
    ([["hit_policy", "UNIQE"], *HEAD[1:]],
     f"{XL}:1:2: unknown hit policy 'UNIQE' (did you mean 'UNIQUE'?)"),
    ([["hit_policy", "collect avg"], *HEAD[1:]],
     f"{XL}:1:2: unknown hit policy 'collect avg' (did you mean 'COLLECT MAX'?)"),
    ([["hit_policy", "X"], *HEAD[1:]],
     f"{XL}:1:2: unknown hit policy 'X' "
     "(use one of U, A, P, F, R, O, C, C+, C<, C>, C# or their DMN names)"),
    ([HEAD[0], ["rule", "input", "output"], HEAD[2]],
     f"{XL}:2:1: expected 'id' in A2, found 'rule'"),
    ([HEAD[0], ["id", "inptu", "output"], HEAD[2]],
     f"{XL}:2:2: unknown column kind 'inptu' (did you mean 'input'?)"),
    ([HEAD[0], ["id", "condition", "output"], HEAD[2]],
     f"{XL}:2:2: unknown column kind 'condition' (use input, output or annotation)"),
    ([HEAD[0], ["id", None, "output"], HEAD[2]],
     f"{XL}:2:2: missing column kind (use input, output or annotation)"),
    ([HEAD[0], ["id", "input", "input", "output"], ["rule", "age", None, "discount"]],
     f"{XL}:3:3: input column without an expression in row 3"),
    ([HEAD[0], ["id", "input", "output"], ["rule", "age", None]],
     f"{XL}:3:3: output column without a name in row 3"),
    ([HEAD[0], HEAD[1], ["rule", "age", "Discount %"]],
     f"{XL}:3:3: output name 'Discount %' must start with a letter and hold only letters, "
     "digits and _ (at most 64)"),
    ([HEAD[0], HEAD[1], ["rule", "age", "discount: numbr"]],
     f"{XL}:3:3: unknown output type 'numbr' (did you mean 'number'?)"),
    ([HEAD[0], ["id", "input", "output", "output"], ["rule", "age", "d", "d: text"]],
     f"{XL}:3:4: duplicate output name 'd' (also in column C)"),
])
def test_header_errors(tmp_path, head, line):
    assert error_lines(make_xlsx(tmp_path, table(["r1", 1, 2, 3], head=head))) == [line]


def test_table_without_inputs_or_outputs(tmp_path):
    only_output = [HEAD[0], ["id", "output"], ["rule", "discount"]]
    assert error_lines(make_xlsx(tmp_path, table(["r1", 2], head=only_output))) == [
        f"{XL}:2:1: the table has no input column"]
    only_input = [HEAD[0], ["id", "input", "annotation"], ["rule", "age", "note"]]
    assert error_lines(make_xlsx(tmp_path, table(["r1", 2], head=only_input))) == [
        f"{XL}:2:1: the table has no output column"]


def test_empty_sheet_reports_every_missing_header(tmp_path):
    assert error_lines(make_xlsx(tmp_path, [])) == [
        f"{XL}:1:1: expected 'hit_policy' in A1, found an empty cell",
        f"{XL}:1:2: missing hit policy in B1 "
        "(use one of U, A, P, F, R, O, C, C+, C<, C>, C# or their DMN names)",
        f"{XL}:2:1: expected 'id' in A2, found an empty cell",
        f"{XL}:2:1: the table has no input column",
        f"{XL}:2:1: the table has no output column",
    ]


def test_merged_cells_in_rules_name_the_range_once(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", ">= 18", 1], ["r2", None, 2], ["r3", None, 3]),
                     merge=("B4:B6",))
    assert error_lines(path) == [
        f"{XL}:4:2: merged cells B4:B6 are not supported (unmerge them and fill each cell)"]


def test_merged_group_header_raises_no_other_error(tmp_path):
    head = [HEAD[0], ["id", "input", None, "output"], ["rule", "age", "city", "discount"]]
    path = make_xlsx(tmp_path, table(["r1", 1, "x", 2], head=head), merge=("B2:C2",))
    assert error_lines(path) == [
        f"{XL}:2:2: merged cells B2:C2 are not supported (unmerge them and fill each cell)"]


def test_formula_cells_are_refused_wherever_they_are_in_the_table(tmp_path):
    head = [HEAD[0], HEAD[1], ["=UPPER(\"rule\")", "age", "discount"]]
    path = make_xlsx(tmp_path, table(["r1", "=B5*2", 1], ["r2", 3, "=C4+1"], head=head))
    assert error_lines(path) == [
        f'{XL}:3:1: formulas are not supported; paste values (the cell holds =UPPER("rule"))',
        f"{XL}:4:2: formulas are not supported; paste values (the cell holds =B5*2)",
        f"{XL}:5:3: formulas are not supported; paste values (the cell holds =C4+1)",
    ]


def test_formula_in_a_header_is_one_error_not_two(tmp_path):
    head = [HEAD[0], ["id", "input", "output"], ["rule", "=A1", "=B1"]]
    assert error_lines(make_xlsx(tmp_path, table(["r1", 1, 2], head=head))) == [
        f"{XL}:3:2: formulas are not supported; paste values (the cell holds =A1)",
        f"{XL}:3:3: formulas are not supported; paste values (the cell holds =B1)",
    ]


def test_excel_error_value_is_refused(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, "#DIV/0!"]))
    assert error_lines(path) == [f"{XL}:4:3: the cell holds the Excel error #DIV/0!"]


@pytest.mark.parametrize(("header", "value", "line"), [
    ("discount: number", "ten", f"{XL}:4:3: output 'discount' must be a number, found 'ten'"),
    ("discount: number", True, f"{XL}:4:3: output 'discount' must be a number, found true"),
    ("discount: number", "1,5", f"{XL}:4:3: output 'discount' must be a number, found '1,5'"),
    ("ok: boolean", "yes", f"{XL}:4:3: output 'ok' must be true or false, found 'yes'"),
    ("ok: boolean", 1, f"{XL}:4:3: output 'ok' must be true or false, found 1"),
    ("due: date", "soon", f"{XL}:4:3: output 'due' must be a date (YYYY-MM-DD), found 'soon'"),
    ("due: date", "2024-02-30",
     f"{XL}:4:3: output 'due' must be a date (YYYY-MM-DD), found '2024-02-30'"),
    ("due: date", dt.datetime(2024, 1, 2, 9, 30),
     f"{XL}:4:3: output 'due' must be a date (YYYY-MM-DD), found 2024-01-02T09:30:00"),
])
def test_output_cell_of_the_wrong_type(tmp_path, header, value, line):
    head = [HEAD[0], HEAD[1], ["rule", "age", header]]
    assert error_lines(make_xlsx(tmp_path, table(["r1", 1, value], head=head))) == [line]


def test_duplicate_rule_ids(tmp_path):
    path = make_xlsx(tmp_path, table(["a", 1, 1], ["b", 2, 2], [], ["a", 3, 3], ["a", 4, 4]))
    assert error_lines(path) == [
        f"{XL}:7:1: duplicate rule id 'a' (also in row 4)",
        f"{XL}:8:1: duplicate rule id 'a' (also in row 4)",
    ]


def test_all_errors_are_reported_together_in_sheet_order(tmp_path):
    head = [["hit_policy", "UNIQE"], ["id", "input", "output"], ["rule", None, "n: number"]]
    path = make_xlsx(tmp_path, table(["a", 1, "x"], ["a", "=1", 2], head=head))
    assert error_lines(path) == [
        f"{XL}:1:2: unknown hit policy 'UNIQE' (did you mean 'UNIQUE'?)",
        f"{XL}:3:2: input column without an expression in row 3",
        f"{XL}:4:3: output 'n' must be a number, found 'x'",
        f"{XL}:5:1: duplicate rule id 'a' (also in row 4)",
        f"{XL}:5:2: formulas are not supported; paste values (the cell holds =1)",
    ]


def test_display_name_is_used_in_every_location(tmp_path):
    path = make_xlsx(tmp_path, table(["r1", 1, "=1"]))
    with pytest.raises(ErrorList) as caught:
        read_table(path, sheet="Discounts", table_id="t", display="rules/discounts.xlsx")
    assert [e.location for e in caught.value.errors] == [
        Location("rules/discounts.xlsx[Discounts]", 4, 3)]


# ---------------------------------------------------------------- CSV


def test_csv_reads_like_xlsx_with_numbers_inferred_from_text(tmp_path):
    path = make_csv(tmp_path, [
        ["hit_policy", "C+"],
        ["id", "input", "input", "output", "output", "annotation"],
        ["rule", "age", "tier", "discount", "code", "why"],
        ["R1", "18", '"""A"""', "0.05", "007", "adults"],
        ["", ">= 65", "", "0.10", "A7", ""],
        ["", "", "", "", "", ""],
        ["R3", "", "-", "1", "", ""],
    ])
    result = read(path, sheet=None)
    assert result.data == {
        "id": "discounts", "hit_policy": "collect", "aggregation": "sum",
        "inputs": [{"label": "age", "expression": "age"},
                   {"label": "tier", "expression": "tier"}],
        "outputs": [{"name": "discount", "label": "discount", "type": "number"},
                    {"name": "code", "label": "code", "type": "text"}],
        "rules": [
            {"id": "R1", "cells": ["18", '"A"'], "result": [0.05, "007"], "note": "adults"},
            {"id": "r2", "cells": [">= 65", "-"], "result": [0.1, "A7"]},
            {"id": "R3", "cells": ["-", "-"], "result": [1, None]},
        ],
    }
    assert result.locate(("rules", 2, "result", 0)) == Location("discounts.csv", 7, 4)


def test_csv_errors_use_the_plain_file_name(tmp_path):
    path = make_csv(tmp_path, table(["r1", "1", "x"], ["r1", "2", "3"],
                                    head=[HEAD[0], HEAD[1], ["rule", "age", "d: number"]]))
    assert error_lines(path, sheet=None) == [
        "discounts.csv:4:3: output 'd' must be a number, found 'x'",
        "discounts.csv:5:1: duplicate rule id 'r1' (also in row 4)",
    ]


def test_csv_saved_by_excel_with_semicolons_and_a_bom(tmp_path):
    path = tmp_path / "discounts.csv"
    path.write_bytes("hit_policy;FIRST\r\nid;input;output\r\nrule;city;discount\r\n"
                     "r1;\"Köln\",\"Bonn\";0,5\r\n".encode("utf-8-sig"))
    data = read(path, sheet=None).data
    assert data["hit_policy"] == "first"
    assert data["rules"] == [{"id": "r1", "cells": ['Köln,"Bonn"'], "result": ["0,5"]}]


def test_committed_csv_fixture():
    result = read_table(DATA / "discounts.csv", sheet=None, table_id="discounts",
                        display="discounts.csv")
    assert result.data == {
        "id": "discounts", "hit_policy": "priority",
        "inputs": [{"label": "age", "expression": "age"},
                   {"label": "risk_category", "expression": "risk_category"}],
        "outputs": [{"name": "status", "label": "status", "type": "text"},
                    {"name": "discount", "label": "discount", "type": "number"}],
        "rules": [
            {"id": "r1", "cells": ["< 18", "-"], "result": ["Declined", 0],
             "note": "minors are never approved"},
            {"id": "r2", "cells": [">= 18", '"High"'], "result": ["Declined", 0]},
            {"id": "r3", "cells": [">= 18", '"Medium","Low"'], "result": ["Approved", 0.05]},
        ],
    }


# ---------------------------------------------------------------- writing and round trips


FULL = {
    "id": "approval",
    "hit_policy": "rule_order",
    "inputs": [{"label": "age", "expression": "age"},
               {"label": "sales - sales_prev", "expression": "sales - sales_prev"}],
    "outputs": [{"name": "status", "label": "status", "type": "text"},
                {"name": "discount", "label": "discount", "type": "number"},
                {"name": "vip", "label": "vip", "type": "boolean"},
                {"name": "until", "label": "until", "type": "date"}],
    "rules": [
        {"id": "r1", "cells": [">= 18", "< 0.12"], "result": ["Approved", 0.05, True, "2024-12-31"],
         "note": "see page 3\nand page 4"},
        {"id": "r2", "cells": ["-", "[1..5]"], "result": ["18", 3, False, None]},
        {"id": "r3", "cells": ["not(1, 2)", '"=x","#N/A"'], "result": ["=x", None, None, None]},
        {"id": "r4", "cells": ['date("2024-01-01")', "-"], "result": ["#N/A", -1.5, None, None]},
    ],
}


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_round_trip(tmp_path, suffix):
    path = tmp_path / f"approval{suffix}"
    write_table(FULL, path)
    sheet = "approval" if suffix == ".xlsx" else None
    assert read_table(path, sheet=sheet, table_id="approval").data == FULL


@pytest.mark.parametrize("policy", list(sheets._POLICY_NAMES))
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_round_trip_every_hit_policy(tmp_path, suffix, policy):
    data = {"id": "t", "hit_policy": policy[0],
            **({"aggregation": policy[1]} if policy[1] else {}),
            "inputs": [{"label": "x", "expression": "x"}],
            "outputs": [{"name": "y", "label": "y", "type": "number"}],
            "rules": [{"id": "r1", "cells": ["1"], "result": [2]}]}
    write_table(data, tmp_path / f"t{suffix}")
    assert read_table(tmp_path / f"t{suffix}", sheet=None, table_id="t").data == data


_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                 min_size=1, max_size=12).map(str.strip).filter(bool)
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
_numbers = st.one_of(st.integers(-10**12, 10**12),
                     st.decimals(-10**6, 10**6, places=4, allow_nan=False)
                     .map(float).filter(lambda f: not f.is_integer()))
_values = {
    "text": _texts,
    "number": _numbers,
    "boolean": st.booleans(),
    "date": st.dates(dt.date(1900, 3, 1), dt.date(2200, 1, 1)).map(dt.date.isoformat),
}


@st.composite
def tables(draw):
    policy = draw(st.sampled_from(list(sheets._POLICY_NAMES)))
    expressions = draw(st.lists(_texts, min_size=1, max_size=3))
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    types = [draw(st.sampled_from(list(_values))) for _ in names]
    rule_ids = draw(st.lists(_names, max_size=5, unique=True))
    rules = []
    for rule_id in rule_ids:
        rule = {"id": rule_id,
                "cells": [draw(_texts) for _ in expressions],
                "result": [draw(st.none() | _values[t]) for t in types]}
        note = draw(st.none() | _texts)
        if note:
            rule["note"] = note
        rules.append(rule)
    data = {"id": "t", "hit_policy": policy[0]}
    if policy[1]:
        data["aggregation"] = policy[1]
    data["inputs"] = [{"label": e, "expression": e} for e in expressions]
    data["outputs"] = [{"name": n, "label": n, "type": t} for n, t in zip(names, types,
                                                                          strict=True)]
    data["rules"] = rules
    return data


@settings(max_examples=60, deadline=None)
@given(data=tables(), suffix=st.sampled_from([".xlsx", ".csv"]))
def test_round_trip_random_tables(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        write_table(data, path)
        assert read_table(path, sheet=None, table_id="t").data == data


def test_written_xlsx_has_bold_headers_and_a_frozen_pane(tmp_path):
    write_table(FULL, tmp_path / "a.xlsx")
    worksheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["approval"]
    assert worksheet.freeze_panes == "B4"
    assert [worksheet.cell(row=r, column=1).font.bold for r in (1, 2, 3, 4)] == [
        True, True, True, False]
    assert [c.value for c in worksheet[3]] == [
        "rule", "age", "sales - sales_prev", "status: text", "discount: number",
        "vip: boolean", "until: date", "note"]
    assert worksheet["B1"].value == "RULE ORDER"
    assert worksheet["E4"].value == 0.05 and worksheet["F4"].value is True


def test_write_keeps_other_sheets_and_replaces_one_in_place(tmp_path):
    path = make_xlsx(tmp_path, [["keep me"]], sheet="Notes", other_sheets=("approval", "Tail"))
    write_table(FULL, path)
    write_table({**FULL, "hit_policy": "first"}, path, sheet="Second")
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Notes", "approval", "Tail", "Second"]
    assert workbook["Notes"]["A1"].value == "keep me"
    assert read_table(path, sheet="approval", table_id="approval").data == FULL
    assert read_table(path, sheet="Second", table_id="approval").data["hit_policy"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["discounts.xlsx"]  # no temp files


@pytest.mark.parametrize(("change", "message"), [
    ({"rules": [{"id": "r1", "cells": ["1"], "result": [2], "when": "x > 1"}]},
     "table 't' cannot be written to a sheet: rule 'r1' has 'when' (no place in a sheet)"),
    ({"outputs": [{"name": "y", "type": "text", "values": ["a", "b"]}]},
     "table 't' cannot be written to a sheet: output 'y' has 'values' (no place in a sheet)"),
    ({"inputs": [{"label": "Age", "expression": "age"}]},
     "table 't' cannot be written to a sheet: input 1 has a label that differs from "
     "its expression"),
    ({"rules": [{"id": "r1", "cells": ["1", "2"], "result": [2]}]},
     "table 't' cannot be written to a sheet: rule 'r1' has more cells or results than the "
     "table has columns (1 inputs, 1 outputs)"),
    ({"hit_policy": "unique", "aggregation": "sum"},
     "table 't' cannot be written to a sheet: unknown hit policy 'unique' with aggregation 'sum'"),
])
def test_write_refuses_what_the_layout_cannot_hold(tmp_path, change, message):
    data = {"id": "t", "hit_policy": "first", "inputs": [{"label": "x", "expression": "x"}],
            "outputs": [{"name": "y", "label": "y", "type": "text"}],
            "rules": [{"id": "r1", "cells": ["1"], "result": ["a"]}], **change}
    with pytest.raises(InputError) as caught:
        write_table(data, tmp_path / "t.xlsx")
    assert str(caught.value) == message
    assert not (tmp_path / "t.xlsx").exists()


def test_write_refuses_other_file_types_and_csv_sheets(tmp_path):
    with pytest.raises(InputError, match=r"unsupported file type '\.ods'; use \.xlsx or \.csv"):
        write_table(FULL, tmp_path / "t.ods")
    with pytest.raises(InputError, match="a CSV file has no sheets, but sheet 'S' was given"):
        write_table(FULL, tmp_path / "t.csv", sheet="S")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_table(FULL, path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sheets.csv, "writer", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table({**FULL, "hit_policy": "first"}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]

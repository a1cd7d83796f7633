"""The DMN and table commands as users run them: files written, errors in one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
TCK = ROOT.parent / "shared" / "dmn-tck"
DATA = Path(__file__).parent / "data"
needs_tck = pytest.mark.skipif(not TCK.exists(), reason=f"DMN TCK not present: {TCK}")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@needs_tck
def test_tck_over_the_shared_cases():
    result = invoke("tck", TCK)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[-1] == "36 passed, 0 failed"
    assert all(line.startswith("PASS ") for line in lines[:-1])


@needs_tck
def test_dmn_import_run_export_round_trip(tmp_path):
    model = TCK / "0004-simpletable-U" / "0004-simpletable-U.dmn"
    pack = tmp_path / "pack.yaml"
    result = invoke("dmn", "import", model, "-o", pack)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {pack}: 1 table(s), 4 rule(s)\n"
    assert invoke("validate", pack).exit_code == 0
    exported = tmp_path / "0004-simpletable-U.dmn"
    assert invoke("dmn", "export", pack, "-o", exported).exit_code == 0
    again = tmp_path / "again.yaml"
    assert invoke("dmn", "import", exported, "-o", again).exit_code == 0
    assert again.read_text(encoding="utf-8") == pack.read_text(encoding="utf-8")


def test_dmn_import_of_malformed_xml(tmp_path):
    bad = tmp_path / "bad.dmn"
    bad.write_text("<definitions><decision>\n</definitions>\n", encoding="utf-8")
    out = tmp_path / "pack.yaml"
    result = invoke("dmn", "import", bad, "-o", out)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"{bad}:2:")
    assert "not well-formed XML" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_dmn_import_refuses_unsupported_feel_with_id_and_line(tmp_path):
    out = tmp_path / "pack.yaml"
    result = invoke("dmn", "import", DATA / "dmn" / "unsupported_cell.dmn", "-o", out)
    assert result.exit_code == 2
    assert "unsupported FEEL" in result.stderr
    assert "bad_1" in result.stderr and "line 19" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_table_export_of_a_when_table_is_refused(tmp_path):
    result = invoke("table", "export", DATA / "stores.yaml", "problems", "-o",
                    tmp_path / "t.xlsx")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "table 'problems' is written with 'when' conditions; only tables with input and "
        "output columns export to spreadsheets\n")
    result = invoke("table", "export", DATA / "stores.yaml", "problms", "-o",
                    tmp_path / "t.xlsx")
    assert result.exit_code == 2
    assert "no table 'problms' in pack 'stores_test' (did you mean 'problems'?)" in result.stderr


def test_a_sheet_with_a_merged_cell_is_refused_with_its_place(tmp_path):
    import openpyxl

    assert invoke("table", "export", DATA / "dmn_tables.yaml", "band", "-o",
                  tmp_path / "band.xlsx").exit_code == 0
    book = openpyxl.load_workbook(tmp_path / "band.xlsx")
    book.active.merge_cells("B4:B5")
    book.save(tmp_path / "band.xlsx")
    pack = tmp_path / "pack.yaml"
    shutil.copy(DATA / "sheet_demo.yaml", pack)
    result = invoke("validate", pack)
    assert result.exit_code == 2
    assert "band.xlsx[band]:4:2: merged cells B4:B5 are not supported" in result.stderr

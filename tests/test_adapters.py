"""Input files that cannot be read: one clear error with its place, never a traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from storeops.engine import adapters
from storeops.engine.errors import ErrorList, InputError
from storeops.engine.packs import load_pack, load_pack_data

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pack():
    return load_pack(DATA / "stores.yaml")


def read(pack, path):
    return adapters.read_facts(path, pack.fields, pack.field_values)


def error_of(pack, path) -> str:
    with pytest.raises((InputError, ErrorList)) as info:
        read(pack, path)
    return str(info.value)


def test_missing_file_and_folder(pack, tmp_path):
    assert error_of(pack, tmp_path / "nope.csv").endswith("nope.csv:1:1: no such file")
    assert error_of(pack, tmp_path).endswith(
        ":1:1: is a folder, expected a CSV or Parquet file")


def test_empty_file(pack, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert error_of(pack, path).endswith("empty.csv:1:1: the file is empty, expected a header row")


def test_ragged_csv_names_the_line(pack, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("store,tier\nS1,A\nS2,B,extra,more\n", encoding="utf-8")
    message = error_of(pack, path)
    assert "ragged.csv:3:1: not a readable CSV: Expected 2 fields in line 3, saw 4" in message


def test_wrong_encoding_says_how_to_fix_it(pack, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("store,tier\n门店,A\n".encode("gbk"))
    assert error_of(pack, path).endswith(
        "gbk.csv:1:1: not utf-8 text (set 'encoding' in the mapping file)")


def test_gzipped_csv_and_bad_parquet(pack, tmp_path):
    source = (DATA / "stores.csv").read_bytes()
    path = tmp_path / "stores.csv.gz"
    path.write_bytes(gzip.compress(source))
    assert read(pack, path).n == 5
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    assert "bad.parquet:1:1: cannot read Parquet" in error_of(pack, bad)


def test_two_packs_disagreeing_on_a_field_type(pack):
    other = load_pack_data({
        "pack": {"id": "other", "version": "1", "title": {"zh": "别", "en": "other"},
                 "source": {"document": "t"}, "subject": "store"},
        "fields": [{"name": "store", "type": "text"}, {"name": "sales", "type": "text"}],
        "tables": [{"id": "t", "hit_policy": "collect",
                    "rules": [{"id": "r", "when": "sales == 'x'", "then": []}]}],
    }, display="other.yaml")
    with pytest.raises(ErrorList) as info:
        adapters.merge_fields([pack, other])
    assert str(info.value) == (
        "other.yaml:1:1: field 'sales' is number in one pack and text in pack 'other'")


def test_nullable_booleans_from_a_dataframe(pack):
    import pandas as pd

    frame = pd.read_csv(DATA / "stores.csv")
    frame["open"] = pd.array([True, None, False, True, None], dtype="boolean")
    facts = adapters.facts_from_dataframe(frame, pack.fields, pack.field_values)
    assert facts.column_list("open") == [True, None, False, True, None]

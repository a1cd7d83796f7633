"""The audit trail: round trips, run ids, append-only guards, both sinks, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storeops.engine.trail as trail_module
from storeops.engine.errors import TrailError
from storeops.engine.trail import (
    COLUMNS,
    RUN_COLUMNS,
    JsonlTrail,
    NullTrail,
    RuleRef,
    SqliteTrail,
    list_runs,
    open_trail,
    read_trail,
)

SINKS = ("trail.db", "trail.jsonl")

REORDER = RuleRef(
    pack_id="storeops-core",
    pack_version="1.4.2",
    pack_sha256="a" * 64,
    table_id="replenishment",
    rule_id="R-017",
    source_file="rules/replenishment.yaml",
    source_line=42,
    fields=("stock", "reorder_point", "on_order"),
    outputs='[{"action":"KZB-10"}]',
    label_en="Reorder below safety stock",
    label_zh="低于安全库存时补货",
)
AUDIT = RuleRef(
    pack_id="storeops-core",
    pack_version="1.4.2",
    pack_sha256="a" * 64,
    table_id="audit",
    rule_id="A-1",
    source_file="rules/audit.yaml",
    source_line=7,
    fields=("region",),
    outputs='{"flag": true}',
    label_zh="区域抽查",
)
ALWAYS = RuleRef(
    pack_id="storeops-core",
    pack_version="1.4.2",
    pack_sha256="a" * 64,
    table_id="audit",
    rule_id="A-2",
    source_file="rules/audit.yaml",
    source_line=9,
    fields=(),
    outputs="[]",
)
RULES = (REORDER, AUDIT, ALWAYS)


def _reference_json(value) -> str:
    """What the trail must store for a value: json.dumps, dates ISO, NaN/inf null."""

    def plain(v):
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), ensure_ascii=False)


def _reference_wall(ts: float) -> str:
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _expected_row(run_id, seq, clock, ts, subject, ref, values, outputs) -> dict:
    outputs_text = _reference_json(json.loads(ref.outputs) if outputs is None else outputs)
    return {
        "run_id": run_id,
        "seq": seq,
        "ts": _reference_wall(ts) if clock == "wall" else float(ts),
        "subject": subject,
        "pack_id": ref.pack_id,
        "pack_version": ref.pack_version,
        "pack_sha256": ref.pack_sha256,
        "table_id": ref.table_id,
        "rule_id": ref.rule_id,
        "rule_label": ref.label_en or ref.label_zh or None,
        "source_file": ref.source_file,
        "source_line": ref.source_line,
        "inputs": _reference_json(dict(zip(ref.fields, values, strict=True))),
        "outputs": outputs_text,
    }


def _write(path, records, *, clock="sim", batch_size=3, **kw):
    """Write (ts, subject, ref, values, outputs) records as one run; return its id."""
    with open_trail(path, clock=clock, batch_size=batch_size, **kw) as trail:
        for ts, subject, ref, values, outputs in records:
            trail.add(ts, subject, trail.rule(ref), values, outputs)
        return trail.run_id


def _simple_records(count: int, start: float = 0.0):
    return [
        (start + i * 0.5, f"S{i % 4:03d}-SKU{i:05d}", REORDER, (i, 10, i % 2 == 0), None)
        for i in range(count)
    ]


# ---------------------------------------------------------------------------
# round trips

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.dates(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def firings(draw, clock: str):
    ref = draw(st.sampled_from(RULES))
    if clock == "wall":
        ts = draw(st.floats(min_value=0, max_value=4e9))
    else:
        ts = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6))
    subject = draw(st.none() | st.text())
    values = tuple(draw(scalars) for _ in ref.fields)
    outputs = draw(st.none() | json_values)
    return ts, subject, ref, values, outputs


@st.composite
def runs(draw):
    clock = draw(st.sampled_from(("wall", "sim")))
    return clock, draw(st.lists(firings(clock), max_size=12))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.integers(1, 5))
def test_round_trip_both_sinks_match_reference(run, batch_size):
    clock, records = run
    expected = [
        _expected_row("R1", seq, clock, ts, subject, ref, values, outputs)
        for seq, (ts, subject, ref, values, outputs) in enumerate(records, 1)
    ]
    # Explicit outputs travel as JSON text, as the engine passes them.
    as_added = [
        (ts, s, ref, v, None if o is None else json.dumps(o)) for ts, s, ref, v, o in records
    ]
    with tempfile.TemporaryDirectory() as folder:
        for name in SINKS:
            path = os.path.join(folder, name)
            _write(path, as_added, clock=clock, batch_size=batch_size)
            assert list(read_trail(path)) == expected, name


def test_inputs_text_is_exact():
    """Known answer: key order of ref.fields, non-ASCII kept, dates ISO, NaN null."""
    ref = RuleRef("p", "1", "0" * 64, "t", "r", "f.yaml", 1, ("城市", "day", "x", "y"), "[]")
    with tempfile.TemporaryDirectory() as folder:
        for name in SINKS:
            path = os.path.join(folder, name)
            _write(path, [(0.0, "s", ref, ("上海", dt.date(2026, 1, 2), math.nan, -0.0), None)])
            (row,) = read_trail(path)
            assert row["inputs"] == '{"城市": "上海", "day": "2026-01-02", "x": null, "y": -0.0}'
            raw = Path(path).read_bytes()
            assert "上海".encode() in raw  # not \\u-escaped


def test_non_finite_floats_become_null_but_look_alike_text_stays(tmp_path):
    """Floats are written by C's repr and NaN/inf patched afterwards; text must survive that."""
    ref = RuleRef("p", "1", "0" * 64, "t", "r", "f.yaml", 1, ("a", "b"), "[]")
    records = [
        (0.0, "s", ref, (math.nan, "x: nan, y"), None),
        (0.0, "s", ref, (1.5, "x: -inf}"), None),
        (0.0, "s", ref, (-math.inf, math.inf), None),
    ]
    for name in SINKS:
        path = tmp_path / name
        _write(path, records, batch_size=10)
        assert [r["inputs"] for r in read_trail(path)] == [
            '{"a": null, "b": "x: nan, y"}',
            '{"a": 1.5, "b": "x: -inf}"}',
            '{"a": null, "b": null}',
        ]


def test_numpy_scalars_are_recorded_like_python_values(tmp_path):
    ref = RuleRef("p", "1", "0" * 64, "t", "r", "f.yaml", 1, ("a", "b", "c", "d", "e"), "[]")
    numpy_values = (np.int64(3), np.float64(2.5), np.bool_(True), np.str_("x"), np.float64("nan"))
    python_values = (3, 2.5, True, "x", None)
    for name in SINKS:
        path = tmp_path / name
        _write(path, [(0.0, "s", ref, numpy_values, None), (0.0, "s", ref, python_values, None)])
        first, second = read_trail(path)
        assert (
            first["inputs"]
            == second["inputs"]
            == ('{"a": 3, "b": 2.5, "c": true, "d": "x", "e": null}')
        )


def test_sinks_give_identical_rows_for_the_same_firings(tmp_path):
    records = [
        (1795400794.123, "S001", REORDER, (3, 10, False), None),
        (1795400794.1234, 42, AUDIT, ("华东",), '{"flag": false}'),
        (1795400795.0, None, ALWAYS, (), None),
    ]
    for name in SINKS:
        _write(tmp_path / name, records, clock="wall")
    sqlite_rows = list(read_trail(tmp_path / "trail.db"))
    assert sqlite_rows == list(read_trail(tmp_path / "trail.jsonl"))
    assert [r["ts"] for r in sqlite_rows] == [
        "2026-11-23T02:26:34.123Z",
        "2026-11-23T02:26:34.123Z",
        "2026-11-23T02:26:35.000Z",
    ]
    assert [r["subject"] for r in sqlite_rows] == ["S001", "42", None]
    assert [r["rule_label"] for r in sqlite_rows] == [
        "Reorder below safety stock",
        "区域抽查",
        None,
    ]
    assert sqlite_rows[0]["outputs"] == '[{"action": "KZB-10"}]'  # constant outputs, canonical
    assert sqlite_rows[1]["outputs"] == '{"flag": false}'


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1795400794.123, "2026-11-23T02:26:34.123Z"),
        (1795400794.9996, "2026-11-23T02:26:34.999Z"),  # truncated, not rounded up
        (1795400794.9999996, "2026-11-23T02:26:35.000Z"),  # rounds to the next microsecond
    ],
)
def test_wall_clock_text(tmp_path, ts, text):
    path = tmp_path / "t.db"
    _write(path, [(ts, "s", ALWAYS, (), None)], clock="wall")
    (row,) = read_trail(path)
    assert row["ts"] == text == _reference_wall(ts)


# ---------------------------------------------------------------------------
# runs


@pytest.mark.parametrize("name", SINKS)
def test_run_ids_count_the_runs_already_in_the_file(tmp_path, name):
    path = tmp_path / name
    assert [_write(path, _simple_records(2)) for _ in range(3)] == ["R1", "R2", "R3"]
    assert [r["run_id"] for r in list_runs(path)] == ["R1", "R2", "R3"]
    assert [r["records"] for r in list_runs(path)] == [2, 2, 2]
    assert [(r["run_id"], r["seq"]) for r in read_trail(path)] == [
        (run, seq) for run in ("R1", "R2", "R3") for seq in (1, 2)
    ]


@pytest.mark.parametrize("name", SINKS)
def test_runs_are_ordered_by_number_not_text(tmp_path, name):
    path = tmp_path / name
    for _ in range(11):
        _write(path, _simple_records(1))
    ids = [f"R{n}" for n in range(1, 12)]
    assert [r["run_id"] for r in list_runs(path)] == ids
    assert [r["run_id"] for r in read_trail(path)] == ids


def test_trail_runs_describe_each_run(tmp_path):
    path = tmp_path / "t.db"
    before = time.time()
    _write(
        path, _simple_records(3), clock="wall", command="storeops run x", meta={"b": 1, "a": [2]}
    )
    _write(path, _simple_records(2), clock="sim", meta={"seed": 7, "pack": Path("rules/p.yaml")})
    wall, sim = list_runs(path)
    assert set(wall) == set(RUN_COLUMNS)
    assert wall["command"] == "storeops run x"
    assert wall["meta"] == '{"a": [2], "b": 1}'
    assert (wall["clock"], wall["records"]) == ("wall", 3)
    assert _reference_wall(before) <= wall["started_at"] <= wall["finished_at"]
    assert sim == {
        "run_id": "R2",
        "started_at": None,
        "finished_at": None,
        "command": "",
        "clock": "sim",
        "meta": '{"pack": "rules/p.yaml", "seed": 7}',
        "records": 2,
    }


def test_jsonl_runs_are_derived_from_records(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path, _simple_records(3), clock="wall")
    _write(path, _simple_records(2), clock="sim")
    assert list_runs(path) == [
        dict.fromkeys(RUN_COLUMNS) | {"run_id": "R1", "clock": "wall", "records": 3},
        dict.fromkeys(RUN_COLUMNS) | {"run_id": "R2", "clock": "sim", "records": 2},
    ]


def test_jsonl_run_without_records_leaves_no_trace(tmp_path):
    """JSONL has no run table: an empty run's number is given out again (documented)."""
    path = tmp_path / "t.jsonl"
    assert _write(path, []) == "R1"
    assert _write(path, _simple_records(1)) == "R1"
    assert _write(path, []) == "R2"
    assert [r["run_id"] for r in list_runs(path)] == ["R1"]


def test_concurrent_sqlite_runs_get_distinct_ids(tmp_path):
    path = tmp_path / "t.db"
    with open_trail(path, clock="sim", batch_size=2) as one, open_trail(path, clock="sim") as two:
        assert (one.run_id, two.run_id) == ("R1", "R2")
        for i in range(5):
            one.add(i, "a", one.rule(REORDER), (i, 1, True))
            two.add(i, "b", two.rule(ALWAYS), ())
    assert [(r["run_id"], r["records"]) for r in list_runs(path)] == [("R1", 5), ("R2", 5)]


def test_second_jsonl_writer_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    with open_trail(path), pytest.raises(TrailError) as e:
        open_trail(path)
    assert str(e.value) == f"{path}: another process is writing this trail"


# ---------------------------------------------------------------------------
# the SQLite file


def test_sqlite_layout_after_close(tmp_path):
    path = tmp_path / "t.db"
    _write(path, _simple_records(5))
    assert sorted(os.listdir(tmp_path)) == ["t.db"]  # WAL checkpointed and removed
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        objects = set(
            con.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        )
        assert objects == {
            ("table", "trail_runs"),
            ("table", "trail_rules"),
            ("table", "trail_records"),
            ("view", "trail"),
            ("index", "trail_subject"),
            ("index", "trail_rule_key"),
            ("trigger", "trail_no_update"),
            ("trigger", "trail_no_delete"),
            ("trigger", "trail_records_no_update"),
            ("trigger", "trail_records_no_delete"),
            ("trigger", "trail_rules_no_update"),
            ("trigger", "trail_rules_no_delete"),
            ("trigger", "trail_runs_no_delete"),
            ("trigger", "trail_runs_no_replace"),
            ("trigger", "trail_runs_finish_once"),
        }
        assert tuple(r[1] for r in con.execute("PRAGMA table_info(trail)")) == COLUMNS
        pk = [
            r[1]
            for r in sorted(con.execute("PRAGMA table_info(trail_records)"), key=lambda r: r[5])
            if r[5]
        ]
        assert pk == ["run_id", "seq"]
        # each rule once, however often it fired
        assert con.execute("SELECT count(*) FROM trail_rules").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM trail").fetchone() == (5,)
        # the view's rule_id and subject queries use the indexes built at close
        plan = " ".join(r[3] for r in con.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM trail WHERE rule_id = 'x'"))
        assert "trail_rule_key" in plan
        plan = " ".join(r[3] for r in con.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM trail WHERE run_id = 'R1' AND rule_id = 'x'"))
        assert "trail_rule_key" in plan
        plan = " ".join(r[3] for r in con.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM trail WHERE subject = 'x'"))
        assert "trail_subject" in plan
        assert con.execute("SELECT DISTINCT typeof(ts) FROM trail").fetchall() == [("real",)]
    finally:
        con.close()


def test_runs_share_the_rules_of_the_file(tmp_path):
    """A rule is stored once per file: a second run finds it; a rule differing in any column
    (here only the label, empty in one) is another rule."""
    path = tmp_path / "t.db"
    unlabelled = dataclasses.replace(REORDER, label_en="", label_zh="")
    _write(path, [(0.0, "a", REORDER, (1, 2, True), None), (1.0, "b", AUDIT, ("N",), None)])
    _write(path, [(0.0, "c", AUDIT, ("S",), None), (1.0, "d", REORDER, (3, 4, False), None),
                  (2.0, "e", unlabelled, (5, 6, True), None)])
    con = sqlite3.connect(path)
    try:
        keys = con.execute("SELECT rule_key, rule_id, rule_label FROM trail_rules").fetchall()
        assert keys == [(1, REORDER.rule_id, REORDER.label_en), (2, AUDIT.rule_id,
                        AUDIT.label_en or AUDIT.label_zh or None), (3, REORDER.rule_id, None)]
        assert con.execute("SELECT run_id, seq, rule_key FROM trail_records"
                           " ORDER BY run_id, seq").fetchall() == [
            ("R1", 1, 1), ("R1", 2, 2), ("R2", 1, 2), ("R2", 2, 1), ("R2", 3, 3)]
    finally:
        con.close()
    assert [(r["subject"], r["rule_label"]) for r in read_trail(path, run_id="R2")] == [
        ("c", AUDIT.label_en or AUDIT.label_zh or None), ("d", REORDER.label_en), ("e", None)]


_WIDE_LAYOUT = (  # the one-table layout of trails written before trail_rules existed
    """CREATE TABLE trail_runs (run_id TEXT PRIMARY KEY, started_at TEXT, finished_at TEXT,
        command TEXT, clock TEXT, meta TEXT, records INTEGER)""",
    """CREATE TABLE trail (run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts, subject TEXT,
        pack_id TEXT, pack_version TEXT, pack_sha256 TEXT, table_id TEXT, rule_id TEXT,
        rule_label TEXT, source_file TEXT, source_line INTEGER, inputs TEXT, outputs TEXT,
        PRIMARY KEY (run_id, seq))""",
)


def test_a_trail_in_the_old_one_table_layout_is_read_and_appended_to(tmp_path):
    old = tmp_path / "old.db"
    con = sqlite3.connect(old, isolation_level=None)
    for statement in _WIDE_LAYOUT:
        con.execute(statement)
    con.execute("INSERT INTO trail_runs VALUES ('R1', NULL, NULL, 'run', 'sim', '{}', 1)")
    con.execute("INSERT INTO trail VALUES ('R1', 1, 0.5, 'S1', 'p', '1', 'h', 't', 'r', NULL,"
                " 'f.yaml', 3, '{}', '{}')")
    con.close()
    records = _simple_records(4)
    assert _write(old, records) == "R2"
    fresh = tmp_path / "fresh.db"
    _write(fresh, records)
    first, *appended = list(read_trail(old))
    assert first["rule_id"] == "r" and first["source_line"] == 3
    assert [{**r, "run_id": "R1"} for r in appended] == list(read_trail(fresh))
    con = sqlite3.connect(old)
    try:
        kinds = dict(con.execute("SELECT name, type FROM sqlite_master"))
        assert kinds["trail"] == "table" and "trail_records" not in kinds
        assert "trail_rule_id" in kinds  # the old layout's indexes
    finally:
        con.close()
    assert [r["records"] for r in list_runs(old)] == [1, 4]


def test_indexes_are_created_at_close_not_before(tmp_path):
    path = tmp_path / "t.db"
    trail = open_trail(path, batch_size=1)
    trail.add(0.0, "s", trail.rule(ALWAYS), ())
    con = sqlite3.connect(path)
    assert con.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchone() == (0,)
    trail.close()
    assert con.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchone() == (2,)
    con.close()


def test_schema_in_docstring_is_the_schema_in_use():
    """The module docstring is the auditors' contract; it must show the DDL verbatim."""
    doc = " ".join(trail_module.__doc__.split())
    for statement in trail_module._SCHEMA + trail_module._INDEXES:
        assert " ".join(statement.split()) in doc


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE trail SET subject = 'x'",
        "DELETE FROM trail",
        "DELETE FROM trail WHERE seq = 1",
        "UPDATE trail_records SET subject = 'x'",
        "DELETE FROM trail_records",
        "UPDATE trail_rules SET source_line = 1",
        "DELETE FROM trail_rules",
        "DELETE FROM trail_runs",
        "UPDATE trail_runs SET command = 'x'",
        "UPDATE trail_runs SET records = 99",
        "UPDATE trail_runs SET finished_at = '2030-01-01T00:00:00.000Z'",
        "INSERT OR REPLACE INTO trail_runs (run_id) VALUES ('R1')",
    ],
)
def test_trail_refuses_changes(tmp_path, sql):
    path = tmp_path / "t.db"
    _write(path, _simple_records(3), clock="wall")
    before = list(read_trail(path)), list_runs(path)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="the trail is append-only"):
        con.execute(sql)
    con.close()
    assert (list(read_trail(path)), list_runs(path)) == before


def test_unfinished_run_can_be_finished_once(tmp_path):
    """What a repair tool may do for a killed run: set records (and finished_at) once."""
    path = tmp_path / "t.db"
    _write(path, _simple_records(1))
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("INSERT INTO trail_runs VALUES ('R2', NULL, NULL, 'x', 'sim', '{}', NULL)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE trail_runs SET command = 'y', records = 0 WHERE run_id = 'R2'")
    con.execute("UPDATE trail_runs SET records = 0 WHERE run_id = 'R2'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE trail_runs SET records = 1 WHERE run_id = 'R2'")
    con.close()


# ---------------------------------------------------------------------------
# NullTrail, add_many, batching


def test_null_trail_counts_seqs_and_stores_nothing(tmp_path):
    trail = open_trail(None, clock="sim")
    assert isinstance(trail, NullTrail)
    key = trail.rule(REORDER)
    assert trail.rule(REORDER) == key
    assert [trail.add(0.0, "s", key, (1, 2, True)) for _ in range(3)] == [1, 2, 3]
    assert trail.add_many(0.0, ["a", "b"], key, [(1, 2, True)] * 2) == 4
    assert trail.add(0.0, "s", key, (1, 2, True)) == 6
    assert trail.next_seq == 7
    assert trail.run_id == "R1"
    trail.close()
    trail.close()
    assert os.listdir(tmp_path) == []


def test_add_returns_seq_and_flushes_whole_batches(tmp_path):
    path = tmp_path / "t.db"
    reader = sqlite3.connect(path)
    with open_trail(path, batch_size=3) as trail:
        key = trail.rule(ALWAYS)
        seqs = [trail.add(0.0, "s", key, ()) for _ in range(7)]
        assert seqs == [1, 2, 3, 4, 5, 6, 7]
        assert reader.execute("SELECT max(seq) FROM trail").fetchone() == (6,)
        assert trail.next_seq == 8
        trail.flush()
        assert reader.execute("SELECT max(seq) FROM trail").fetchone() == (7,)
    reader.close()


@pytest.mark.parametrize("name", SINKS)
def test_add_many_equals_repeated_add(tmp_path, name):
    subjects = [f"S{i}" for i in range(10)]
    values = [(i, 5, i % 3 == 0) for i in range(10)]
    outputs = [None if i % 4 else json.dumps({"qty": i}) for i in range(10)]
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir()
    many.mkdir()
    flushed = []
    with open_trail(one / name, clock="sim", batch_size=4) as trail:
        key = trail.rule(REORDER)
        trail.add(0.0, "first", key, (0, 0, False))
        seqs = [
            trail.add(1.5, s, key, v, o) for s, v, o in zip(subjects, values, outputs, strict=True)
        ]
        flushed.append(len(list(read_trail(one / name))))
    with open_trail(many / name, clock="sim", batch_size=4) as trail:
        key = trail.rule(REORDER)
        trail.add(0.0, "first", key, (0, 0, False))
        assert trail.add_many(1.5, subjects, key, values, outputs) == seqs[0] == 2
        flushed.append(len(list(read_trail(many / name))))
        assert trail.next_seq == 12
    assert flushed == [8, 8]  # the same batch boundaries
    assert list(read_trail(one / name)) == list(read_trail(many / name))


def test_add_many_takes_columns_of_ts_and_rules(tmp_path):
    path = tmp_path / "t.jsonl"
    with open_trail(path, clock="sim") as trail:
        keys = [trail.rule(REORDER), trail.rule(ALWAYS)]
        assert trail.add_many([1.0, 2.0], np.array(["a", "b"]), keys, [(1, 2, True), ()]) == 1
    rows = list(read_trail(path))
    assert [(r["ts"], r["subject"], r["rule_id"]) for r in rows] == [
        (1.0, "a", "R-017"),
        (2.0, "b", "A-2"),
    ]


@pytest.mark.parametrize("trail_path", [None, "t.db"])
def test_add_many_checks_lengths(tmp_path, trail_path):
    path = None if trail_path is None else tmp_path / trail_path
    with open_trail(path) as trail:
        key = trail.rule(ALWAYS)
        with pytest.raises(TrailError, match="add_many: 1 values for 2 subjects"):
            trail.add_many(0.0, ["a", "b"], key, [()])
        with pytest.raises(TrailError, match="add_many: 3 ts for 2 subjects"):
            trail.add_many([0.0, 1.0, 2.0], ["a", "b"], key, [(), ()])


def test_memos_stay_bounded_and_correct(tmp_path, monkeypatch):
    monkeypatch.setattr(trail_module, "_MEMO_LIMIT", 10)
    path = tmp_path / "t.db"
    records = [(0.0, f"s{i}", AUDIT, (f"region {i}",), None) for i in range(100)]
    with open_trail(path, batch_size=7) as trail:
        for ts, subject, ref, values, outputs in records:
            trail.add(ts, subject, trail.rule(ref), values, outputs)
        assert max(map(len, trail._encoders.memos)) <= 10 + 7
    assert [r["inputs"] for r in read_trail(path)] == [
        f'{{"region": "region {i}"}}' for i in range(100)
    ]


# ---------------------------------------------------------------------------
# simulation clock, reproducibility


def _simulation(path):
    with open_trail(
        path, clock="sim", command="storeops simulate", meta={"seed": 1}, batch_size=4
    ) as trail:
        keys = [trail.rule(ref) for ref in RULES]
        for i in range(30):
            trail.add(i * 0.25, f"S{i % 3}", keys[i % 3], ((i, 10, True), ("华北",), ())[i % 3])


@pytest.mark.parametrize("name", SINKS)
def test_identical_simulations_write_identical_files(tmp_path, name):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        _simulation(folder / name)
        _simulation(folder / name)  # a second run appended
    assert (first / name).read_bytes() == (second / name).read_bytes()
    assert [r["ts"] for r in read_trail(first / name, run_id="R2")][:3] == [0.0, 0.25, 0.5]


# ---------------------------------------------------------------------------
# reading


@pytest.mark.parametrize("name", SINKS)
def test_read_trail_filters(tmp_path, name):
    path = tmp_path / name
    _write(path, [(0.0, "S1", REORDER, (1, 2, True), None), (0.0, "S2", AUDIT, ("x",), None)])
    _write(path, [(0.0, "S2", REORDER, (1, 2, True), None), (0.0, "S1", ALWAYS, (), None)])

    def keys(**filters):
        return [(r["run_id"], r["seq"]) for r in read_trail(path, **filters)]

    assert keys(run_id="R2") == [("R2", 1), ("R2", 2)]
    assert keys(subject="S1") == [("R1", 1), ("R2", 2)]
    assert keys(rule_id="R-017") == [("R1", 1), ("R2", 1)]
    assert keys(seq=2) == [("R1", 2), ("R2", 2)]
    assert keys(run_id="R1", subject="S2", rule_id="A-1", seq=2) == [("R1", 2)]
    assert keys(run_id="R9") == []


def test_jsonl_torn_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path, _simple_records(4))
    whole = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"run_id": "R1", "seq": 5, "ts": 2.0, "subj')  # a killed writer's tail
    assert len(list(read_trail(path))) == 4
    assert list_runs(path)[0]["records"] == 4
    with open_trail(path) as trail:
        assert trail.run_id == "R2"
        assert path.read_bytes() == whole
        trail.add(0.0, "s", trail.rule(ALWAYS), ())
    assert [(r["run_id"], r["seq"]) for r in read_trail(path)][-2:] == [("R1", 4), ("R2", 1)]
    for line in path.read_text(encoding="utf-8").splitlines():
        json.loads(line)


def test_jsonl_torn_first_line_is_cut(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"run_id": "R1", "seq": 1, "ts": 0.0, "su')
    assert list(read_trail(path)) == []
    with open_trail(path) as trail:
        assert trail.run_id == "R1"
        assert path.read_bytes() == b""


# ---------------------------------------------------------------------------
# errors


def _error(call) -> str:
    with pytest.raises(TrailError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message
    return message


def test_directory_is_not_a_trail(tmp_path):
    assert _error(lambda: open_trail(tmp_path)) == f"{tmp_path}: is a directory, not a trail file"
    folder = tmp_path / "x.jsonl"
    folder.mkdir()
    assert _error(lambda: open_trail(folder)) == f"{folder}: is a directory, not a trail file"
    assert _error(lambda: read_trail(folder)) == f"{folder}: is a directory, not a trail file"


def test_missing_folder(tmp_path):
    path = tmp_path / "nowhere" / "t.db"
    assert _error(lambda: open_trail(path)) == (
        f"{path}: cannot create the trail: folder {tmp_path / 'nowhere'} does not exist"
    )


def test_missing_file_is_not_created_by_readers(tmp_path):
    for name in SINKS:
        path = tmp_path / name
        assert _error(lambda p=path: read_trail(p)) == f"{path}: no such trail file"
        assert _error(lambda p=path: list_runs(p)) == f"{path}: no such trail file"
    assert os.listdir(tmp_path) == []


def test_text_file_is_not_a_sqlite_trail(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello\n")
    expected = f"{path}: not a SQLite trail (the file is not a SQLite database)"
    assert _error(lambda: open_trail(path)) == expected
    assert _error(lambda: read_trail(path)) == expected
    assert path.read_text() == "hello\n"


def test_corrupt_sqlite_file(tmp_path):
    path = tmp_path / "t.db"
    _write(path, _simple_records(3))
    data = bytearray(path.read_bytes())
    data[16:100] = b"\xff" * 84  # page size and header fields
    path.write_bytes(bytes(data))
    message = _error(lambda: open_trail(path))
    assert message.startswith(f"{path}: cannot use as a trail: ")
    assert "not a database" in message or "malformed" in message


def test_other_sqlite_database_is_not_a_trail(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.close()
    expected = f"{path}: not a trail (a SQLite database without table 'trail')"
    assert _error(lambda: open_trail(path)) == expected
    assert _error(lambda: list_runs(path)) == expected


def test_trail_table_with_other_columns_is_not_a_trail(tmp_path):
    path = tmp_path / "t.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE trail (run_id, seq)")
    con.execute("CREATE TABLE trail_runs (run_id)")
    con.close()
    assert _error(lambda: open_trail(path)).startswith(
        f"{path}: not a trail (table 'trail' has columns run_id, seq; expected run_id, seq, ts,"
    )


def test_jsonl_file_that_is_not_a_trail_is_left_alone(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"sku": 1}\n{"sku": 2')  # no final newline: must not be "repaired"
    expected = f"{path}: not a JSONL trail (the first line is not a trail record)"
    assert _error(lambda: open_trail(path)) == expected
    assert _error(lambda: read_trail(path)) == expected
    assert path.read_bytes() == b'{"sku": 1}\n{"sku": 2'


def test_jsonl_bad_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path, _simple_records(2))
    with open(path, "ab") as f:
        f.write(b'{"run_id": "R1", "seq": 3}\n')
    message = _error(lambda: list(read_trail(path)))
    assert message.startswith(f"{path}:3: not a trail record (expected the keys run_id, seq, ts,")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clock": "utc"}, "clock must be 'wall' or 'sim', not 'utc'"),
        ({"batch_size": 0}, "batch_size must be a positive int, not 0"),
    ],
)
def test_bad_options(tmp_path, kwargs, message):
    assert _error(lambda: open_trail(tmp_path / "t.db", **kwargs)) == message
    assert os.listdir(tmp_path) == []


def test_meta_must_be_json(tmp_path):
    path = tmp_path / "t.db"
    assert _error(lambda: open_trail(path, meta={"x": object()})).startswith(
        f"{path}: meta is not JSON: "
    )


def test_bad_rule_refs():
    trail = open_trail(None)
    twice = RuleRef("p", "1", "0", "t", "r", "f.yaml", 3, ("a", "a"), "[]")
    assert (
        _error(lambda: trail.rule(twice))
        == "f.yaml:3: rule 'r': fields ['a', 'a'] name a field twice"
    )
    not_json = RuleRef("p", "1", "0", "t", "r", "f.yaml", 3, ("a",), "[{action: x}]")
    assert _error(lambda: trail.rule(not_json)).startswith(
        "f.yaml:3: rule 'r': outputs are not JSON text: "
    )


def test_rule_keys_are_stable_and_fields_may_be_a_list():
    trail = open_trail(None)
    listed = RuleRef("p", "1", "0", "t", "r", "f.yaml", 3, ["a", "b"], "[]")
    assert listed.fields == ("a", "b")
    same = RuleRef("p", "1", "0", "t", "r", "f.yaml", 3, ("a", "b"), "[]")
    assert trail.rule(listed) == trail.rule(same) == 0
    assert trail.rule(REORDER) == 1


BAD_RECORDS = [
    pytest.param(
        0,
        (1, 2),
        ": 2 values for fields ['stock', 'reorder_point', 'on_order']",
        id="too-few-values",
    ),
    pytest.param(
        0,
        (1, 2, object()),
        ": cannot record a value of type object: "
        "expected None, bool, int, float, str or datetime.date",
        id="unknown-type",
    ),
    pytest.param(
        99, (), ": unknown rule key 99 (get keys from Trail.rule())", id="unknown-rule-key"
    ),
]


@pytest.mark.parametrize("name", SINKS)
@pytest.mark.parametrize(("rule", "values", "reason"), BAD_RECORDS)
def test_bad_records_are_reported_at_flush(tmp_path, name, rule, values, reason):
    path = tmp_path / name
    trail = open_trail(path)
    assert trail.rule(REORDER) == 0
    trail.add(0.0, "s", rule, values)
    where = f"{path}: cannot record firing 1 of run R1"
    if rule == 0:
        where += ", rule 'R-017' (rules/replenishment.yaml:42)"
    assert _error(trail.flush) == where + reason
    assert _error(trail.close) == where + reason  # the batch is kept, never half-written
    with open_trail(path) as again:  # but the file was released
        assert again.run_id == ("R1" if name.endswith(".jsonl") else "R2")
    assert list(read_trail(path)) == []


@pytest.mark.parametrize("name", SINKS)
def test_text_that_is_not_unicode_is_refused_whole(tmp_path, name):
    """A lone surrogate (e.g. from a mis-decoded file name) cannot be stored as UTF-8."""
    path = tmp_path / name
    trail = open_trail(path)
    trail.add(0.0, "s", trail.rule(AUDIT), ("\udc80",))
    assert "surrogates not allowed" in _error(trail.flush)
    with pytest.raises(TrailError):
        trail.close()
    assert list(read_trail(path)) == []


@pytest.mark.parametrize("name", SINKS)
def test_closed_trail_refuses_records(tmp_path, name):
    trail = open_trail(tmp_path / name)
    key = trail.rule(ALWAYS)
    trail.close()
    trail.close()  # idempotent
    assert _error(lambda: trail.add(0.0, "s", key, ())) == "the trail is closed"
    assert _error(lambda: trail.add_many(0.0, ["s"], key, [()])) == "the trail is closed"


def test_open_trail_picks_the_sink_by_suffix(tmp_path):
    for name, kind in (
        ("t.jsonl", JsonlTrail),
        ("T.JSONL", JsonlTrail),
        ("t.db", SqliteTrail),
        ("t", SqliteTrail),
    ):
        with open_trail(tmp_path / name) as trail:
            assert type(trail) is kind

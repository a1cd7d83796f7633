"""Replay of order exports (issue 6): lead times, anomalies, fits, XES and OCEL logs.

The synthetic fixture has one order per anomaly, with lead times worked out by hand
(UTC, so hours are plain differences); the real Olist run is marked slow.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from storeops.engine import replay as rp
from storeops.engine.errors import ErrorList, InputError, StoreopsError

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "mappings" / "olist_orders.yaml"
OLIST = ROOT.parent / "shared" / "data" / "olist"
XES = "{http://www.xes-standard.org/}"

HEADER = ("order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
          "order_delivered_carrier_date,order_delivered_customer_date,"
          "order_estimated_delivery_date")
ORDERS = [
    # A: clean and late; B: carrier before approval and purchase; C: delivered, no delivery
    "A,c1,delivered,2018-01-01 10:00:00,2018-01-01 12:00:00,2018-01-03 10:00:00,"
    "2018-01-06 10:00:00,2018-01-05 00:00:00",
    "B,c2,delivered,2018-01-02 00:00:00,2018-01-02 01:00:00,2018-01-01 12:00:00,"
    "2018-01-05 00:00:00,2018-01-10 00:00:00",
    "C,c3,delivered,2018-01-03 00:00:00,2018-01-03 06:00:00,2018-01-04 00:00:00,,"
    "2018-01-10 00:00:00",
    # D: shipped and silent for two months; E: canceled after the carrier had it
    "D,c4,shipped,2017-11-01 00:00:00,2017-11-01 01:00:00,2017-11-02 00:00:00,,"
    "2017-11-20 00:00:00",
    "E,c5,canceled,2018-01-10 00:00:00,2018-01-10 02:00:00,2018-01-11 00:00:00,,"
    "2018-01-20 00:00:00",
    # F: unknown status; G twice: duplicate id; H: approval after the as-of date
    "F,c6,lost_in_space,2018-01-20 00:00:00,,,,2018-02-01 00:00:00",
    "G,c7,processing,2018-01-25 00:00:00,2018-01-25 05:00:00,,,2018-02-10 00:00:00",
    "G,c8,processing,2018-01-25 00:00:00,2018-01-25 05:00:00,,,2018-02-10 00:00:00",
    "H,c9,invoiced,2018-01-28 00:00:00,2018-02-05 00:00:00,,,2018-02-20 00:00:00",
    # I: unreadable purchase time; J: unavailable without approval
    "I,c10,created,not a date,,,,2018-02-20 00:00:00",
    "J,c11,unavailable,2018-01-15 00:00:00,,,,2018-02-01 00:00:00",
]
ITEMS = [
    "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value",
    "A,1,p1,S1,2018-01-04 10:00:00,10.00,1.00",
    "A,2,p2,S2,2018-01-03 08:00:00,20.00,2.00",
    "B,1,p1,S1,2018-01-04 00:00:00,10.00,1.00",
    "G,1,p3,S1,2018-01-27 00:00:00,5.50,0.00",
    "Z,1,p1,S3,2018-01-27 00:00:00,5.50,0.00",
]
AS_OF = "2018-01-31 00:00:00"


def utc_mapping(tmp_path: Path, text_change: tuple[str, str] | None = None) -> Path:
    """The shipped mapping with UTC times (so hours are plain differences)."""
    text = MAPPING.read_text(encoding="utf-8").replace("America/Sao_Paulo", "UTC")
    if text_change:
        assert text_change[0] in text
        text = text.replace(*text_change)
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    orders = tmp_path / "orders.csv.gz"
    with gzip.open(orders, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([HEADER, *ORDERS]) + "\n")
    items = tmp_path / "items.csv"
    items.write_text("\n".join(ITEMS) + "\n", encoding="utf-8")
    return orders, items, utc_mapping(tmp_path)


@pytest.fixture
def result(files):
    orders, items, mapping = files
    return rp.replay(orders, items, mapping, as_of=AS_OF)


def row(result, case_id):
    frame = result.orders.set_index("case_id")
    return frame.loc[case_id]


# -- orders table ---------------------------------------------------------------------------------

def test_one_row_per_input_order_in_input_order(result):
    assert list(result.orders["order_id"]) == list("ABCDEFGGHIJ")
    assert list(result.orders["case_id"]) == [*"ABCDEFG", "G#2", "H", "I", "J"]
    assert result.summary["orders_by_status"] == result.summary["input_orders_by_status"]
    assert result.summary["orders_by_status"]["processing"] == 2


def test_lead_times_hand_computed(result):
    a = row(result, "A")
    assert (a.hours_confirm, a.hours_fulfil, a.hours_deliver, a.hours_total) == (2, 46, 72, 120)
    b = row(result, "B")  # carrier 13 h before approval: negative, kept as found
    assert (b.hours_confirm, b.hours_fulfil, b.hours_deliver, b.hours_total) == (1, -13, 84, 72)
    c = row(result, "C")
    assert (c.hours_confirm, c.hours_fulfil) == (6, 18)
    assert math.isnan(c.hours_deliver) and math.isnan(c.hours_total)


def test_final_states_follow_the_mapping(result):
    states = dict(zip(result.orders["case_id"], result.orders["final_state"], strict=True))
    assert states == {"A": "completed", "B": "completed", "C": "completed", "D": "deliver",
                      "E": "cancelled", "F": "", "G": "pick", "G#2": "pick", "H": "print",
                      "I": "register", "J": "cancelled"}


def test_every_anomaly_code(result):
    found = dict(zip(result.orders["case_id"], result.orders["anomalies"], strict=True))
    assert found == {
        "A": "", "B": "out_of_order", "C": "missing_timestamp", "D": "stuck",
        "E": "canceled_after_handover", "F": "unknown_status",
        "G": "duplicate_order_id", "G#2": "duplicate_order_id", "H": "future_timestamp",
        "I": "bad_timestamp", "J": "missing_timestamp"}
    assert set(rp.ANOMALY_CODES) == {code for text in found.values()
                                     for code in text.split(";") if code}
    assert result.summary["anomalies"] == {
        "duplicate_order_id": 2, "unknown_status": 1, "bad_timestamp": 1,
        "missing_timestamp": 2, "out_of_order": 1, "future_timestamp": 1,
        "canceled_after_handover": 1, "stuck": 1}


def test_several_anomalies_join_in_code_order(files, tmp_path):
    _, items, mapping = files
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nX,c,shipped,2017-12-02 00:00:00,2017-12-01 00:00:00,,,"
                   "2017-12-09 00:00:00\nX,c,weird,2017-12-02 00:00:00,,,,\n"
                   "Y,c,delivered,2017-12-02 00:00:00,garbage,,,2017-12-09\n", encoding="utf-8")
    out = rp.replay(bad, items, mapping, as_of=AS_OF)
    assert list(out.orders["anomalies"]) == [
        "duplicate_order_id;missing_timestamp;out_of_order;stuck",
        "duplicate_order_id;unknown_status;stuck",
        "bad_timestamp;missing_timestamp"]  # the carrier and delivery dates, not the bad one


def test_late_flags(result):
    late = dict(zip(result.orders["case_id"], result.orders["late_vs_promise"], strict=True))
    assert (late["A"], late["B"], late["C"], late["D"]) == (True, False, pd.NA, pd.NA)
    assert result.summary["late_vs_promise"] == 1 and result.summary["late_share"] == 0.5
    # A: the earliest limit (S2's item, 01-03 08:00) binds; hand-over was 10:00.
    a = row(result, "A")
    assert a.shipping_limit == pd.Timestamp("2018-01-03 08:00", tz="UTC")
    assert (a.late_handover, row(result, "B").late_handover) == (True, False)
    assert row(result, "E").late_handover is pd.NA  # no items
    assert (a["items"], row(result, "G")["items"], row(result, "G#2")["items"]) == (2, 1, 1)
    assert result.summary["items_without_order"] == 1


def test_default_as_of_is_the_last_purchase(files):
    orders, items, mapping = files
    out = rp.replay(orders, items, mapping)
    assert out.as_of == pd.Timestamp("2018-01-28 00:00", tz="UTC")
    assert out.summary["as_of"] == "2018-01-28T00:00:00.000+00:00"
    # H's approval (02-05) is still in the future; nothing else is.
    assert out.summary["anomalies"]["future_timestamp"] == 1


def test_daylight_saving_in_sao_paulo(tmp_path):
    """Brazil moved clocks forward at 2017-10-15 00:00: that day had 23 hours."""
    mapping = rp.load_mapping(MAPPING)
    orders = tmp_path / "orders.csv"
    orders.write_text(HEADER + "\nK,c,delivered,2017-10-14 12:00:00,2017-10-15 12:00:00,"
                      "2017-10-15 00:00:00,2017-10-20 00:00:00,2017-10-25 00:00:00\n",
                      encoding="utf-8")
    items = tmp_path / "items.csv"
    items.write_text(ITEMS[0] + "\n", encoding="utf-8")
    out = rp.replay(orders, items, mapping)
    assert out.orders.loc[0, "hours_confirm"] == 23
    # the skipped midnight moves forward to 01:00 in summer time
    assert rp._iso(out.orders["carrier"])[0] == "2017-10-15T01:00:00.000-02:00"
    assert rp._iso(out.orders["purchase"])[0] == "2017-10-14T12:00:00.000-03:00"


STATUSES = ("delivered", "shipped", "canceled", "created", "mystery", "")
STAMPS = ("", "2018-01-01 00:00:00", "2018-01-02 12:30:00", "2018-03-01 00:00:00", "junk")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("PQR"), st.sampled_from(STATUSES),
                          *[st.sampled_from(STAMPS)] * 4), min_size=1, max_size=12))
def test_any_export_keeps_every_row(tmp_path, rows):
    """Whatever the statuses and timestamps, every row comes out once, by status."""
    mapping = rp.load_mapping(utc_mapping(tmp_path))
    orders = tmp_path / "orders.csv"
    body = [f"{oid},c,{status},{a},{b},{c},{d},2018-02-01" for oid, status, a, b, c, d in rows]
    orders.write_text("\n".join([HEADER, *body]) + "\n", encoding="utf-8")
    items = tmp_path / "items.csv"
    items.write_text("\n".join(ITEMS) + "\n", encoding="utf-8")
    out = rp.replay(orders, items, mapping, as_of=AS_OF)
    assert len(out.orders) == len(rows)
    assert out.summary["orders_by_status"] == dict(Counter(r[1] for r in rows))
    assert out.orders["case_id"].is_unique
    assert set(out.events["case_id"]) <= set(out.orders["case_id"])
    for text in out.orders["anomalies"]:
        assert all(code in rp.ANOMALY_CODES for code in text.split(";") if code)


# -- stage times, events, fits -------------------------------------------------------------------

def test_stage_times(result):
    table = result.stage_times
    a = table[table.case_id == "A"]
    assert list(a.stage) == ["confirm", "fulfil", "deliver"]
    assert list(a.hours) == [2, 46, 72]
    assert list(a.observation) == ["observed", "bounded", "observed"]
    assert a.iloc[1].states == "print pick verify pack"
    d = table[table.case_id == "D"]  # in delivery, no end yet
    assert list(d.stage) == ["confirm", "fulfil", "deliver"]
    assert d.iloc[2].end is pd.NaT and math.isnan(d.iloc[2].hours)
    assert table[table.case_id == "I"].empty  # never started: no purchase time


def test_events_in_time_order_per_case(result):
    events = result.events
    b = events[events.case_id == "B"]
    assert list(b.activity) == ["pack", "register", "confirm", "deliver"]
    assert list(b.resource) == ["S1", "customer", "", "carrier"]
    a = events[events.case_id == "A"]
    assert list(a.resource) == ["customer", "", "S2", "carrier"]  # S2's limit binds
    assert set(events.lifecycle) == {"complete"}
    assert list(pd.unique(events.case_id)) == [*"ABCDEFG", "G#2", "H", "J"]
    assert len(events) == 4 + 4 + 3 + 3 + 3 + 1 + 2 + 2 + 2 + 1


def test_fit_hours_matches_closed_form_and_picks_by_aic():
    rng = np.random.default_rng(6)
    lognormal = rng.lognormal(mean=2.0, sigma=0.8, size=4000)
    fit = rp.fit_hours(lognormal)
    assert fit["model"] == "lognormal" and fit["n"] == 4000
    logs = np.log(lognormal)
    assert fit["params"]["mu"] == pytest.approx(logs.mean())
    assert fit["params"]["s"] == pytest.approx(logs.std())
    scipy_stats = pytest.importorskip("scipy.stats")
    s, _loc, scale = scipy_stats.lognorm.fit(lognormal, floc=0)
    assert (fit["params"]["s"], fit["params"]["scale"]) == (pytest.approx(s, rel=1e-4),
                                                          pytest.approx(scale, rel=1e-4))
    exponential = rng.exponential(scale=5.0, size=4000)
    fit = rp.fit_hours(exponential)
    assert fit["model"] == "exponential"
    assert fit["params"]["scale"] == pytest.approx(exponential.mean())
    assert fit["aic"] == min(fit["aic_by_model"].values())
    assert rp.fit_hours(np.array([3.0]))["model"] is None


def test_durations_only_positive_hours(result):
    d = result.durations
    assert set(d) == {"confirm", "fulfil", "deliver", "total"}
    assert d["fulfil"]["observation"] == "bounded"
    assert d["fulfil"]["states"] == ["print", "pick", "verify", "pack"]
    assert d["confirm"]["n"] == 8  # A B C D E G G H
    assert d["fulfil"]["n"] == 4  # A C D E; B's -13 h is left out
    assert d["deliver"]["n"] == 2


# -- outputs --------------------------------------------------------------------------------------

def test_replay_to_dir_writes_everything(files, tmp_path):
    orders, items, mapping = files
    out = tmp_path / "out"
    summary = rp.replay_to_dir(orders, items, mapping, out, as_of=AS_OF)
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["outputs"])
    table = pd.read_csv(out / "orders.csv", dtype=str, keep_default_na=False)
    assert len(table) == 11 and table.loc[0, "purchase"] == "2018-01-01T10:00:00.000+00:00"
    assert json.loads((out / "durations.json").read_text())["total"]["n"] == 2
    assert summary["traces"] == 10 and summary["events"] == 25
    assert not list(out.glob(".*.tmp"))


def test_files_named_in_mapping_resolve_under_data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "olist_orders_dataset.csv.gz", "wt") as handle:
        handle.write("\n".join([HEADER, *ORDERS[:2]]) + "\n")
    with gzip.open(data / "olist_order_items_dataset.csv.gz", "wt") as handle:
        handle.write("\n".join(ITEMS) + "\n")
    summary = rp.replay_to_dir(None, None, MAPPING, tmp_path / "out", data_dir=data)
    assert summary["orders"] == 2


def test_xes_read_back(result, tmp_path):
    path = tmp_path / "log.xes"
    assert rp.write_xes(result.events, path) == 10
    root = etree.parse(str(path)).getroot()
    assert root.tag == f"{XES}log" and root.get("xes.version") == "1849-2016"
    prefixes = {e.get("prefix") for e in root.findall(f"{XES}extension")}
    assert prefixes == {"concept", "time", "lifecycle", "org"}
    traces = root.findall(f"{XES}trace")
    names = [t.find(f"{XES}string[@key='concept:name']").get("value") for t in traces]
    assert names == [*"ABCDEFG", "G#2", "H", "J"]
    b = traces[1]
    events = b.findall(f"{XES}event")
    assert [e.find(f"{XES}string[@key='concept:name']").get("value") for e in events] == [
        "pack", "register", "confirm", "deliver"]
    stamps = [e.find(f"{XES}date[@key='time:timestamp']").get("value") for e in events]
    assert stamps[0] == "2018-01-01T12:00:00.000+00:00" and stamps == sorted(stamps)
    assert events[2].find(f"{XES}string[@key='org:resource']") is None  # confirm: unknown
    assert events[3].find(f"{XES}string[@key='lifecycle:transition']").get("value") == "complete"


def test_xes_escapes_text(tmp_path):
    events = pd.DataFrame({"case_id": ['a<&>"b'], "activity": ["x & y"],
                           "timestamp": pd.to_datetime(["2018-01-01"]).tz_localize("UTC"),
                           "lifecycle": ["complete"], "resource": ["<r>"]})
    path = tmp_path / "log.xes"
    rp.write_xes(events, path)
    trace = etree.parse(str(path)).getroot().find(f"{XES}trace")
    assert trace.find(f"{XES}string").get("value") == 'a<&>"b'
    assert trace.find(f"{XES}event/{XES}string[@key='org:resource']").get("value") == "<r>"


def test_ocel_structure(result, tmp_path):
    path = tmp_path / "log.ocel.json"
    counts = rp.write_ocel(result.events, result.orders, result.items, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"objectTypes", "eventTypes", "objects", "events"}
    assert {t["name"] for t in data["objectTypes"]} == {"order", "item", "seller"}
    assert {t["name"] for t in data["eventTypes"]} == {
        "register", "confirm", "pack", "deliver"}
    objects = {o["id"]: o for o in data["objects"]}
    assert len(objects) == counts["objects"] == 11 + 5 + 3
    assert [r["objectId"] for r in objects["A"]["relationships"]] == ["A:1", "A:2"]
    assert objects["A:2"]["relationships"] == [{"objectId": "seller:S2", "qualifier": "sold by"}]
    assert len(data["events"]) == counts["events"] == 25
    handover = next(e for e in data["events"]
                    if e["type"] == "pack" and e["relationships"][0]["objectId"]
                    == "A")
    assert handover["relationships"] == [
        {"objectId": "A", "qualifier": "order"}, {"objectId": "A:1", "qualifier": "item"},
        {"objectId": "A:2", "qualifier": "item"}, {"objectId": "seller:S2", "qualifier": "seller"}]
    assert handover["time"] == "2018-01-03T10:00:00.000+00:00"
    ids = [e["id"] for e in data["events"]]
    assert len(set(ids)) == len(ids)
    every = {r["objectId"] for o in data["objects"] for r in o["relationships"]}
    every |= {r["objectId"] for e in data["events"] for r in e["relationships"]}
    assert every <= set(objects)


def test_pm4py_reads_both_logs(result, tmp_path):
    pm4py = pytest.importorskip("pm4py")
    xes = tmp_path / "log.xes"
    rp.write_xes(result.events, xes)
    log = pm4py.read_xes(str(xes))
    assert log["case:concept:name"].nunique() == 10
    dfg, starts, _ends = pm4py.discover_dfg(log)
    activities = {"register", "confirm", "pack", "deliver"}
    # the discovered process speaks the workflow pack's language: every activity is a state
    from storeops.engine.packs import load_pack

    assert activities <= set(load_pack(PACK).workflow.states)
    assert {a for pair in dfg for a in pair} == activities
    assert ("register", "confirm") in dfg and "register" in starts
    tree = pm4py.discover_process_tree_inductive(log)
    assert activities <= {leaf.label for leaf in _leaves(tree)}
    ocel_path = tmp_path / "log.jsonocel"
    rp.write_ocel(result.events, result.orders, result.items, ocel_path)
    ocel = pm4py.read_ocel2_json(str(ocel_path))
    assert len(ocel.events) == 25
    assert set(ocel.objects["ocel:type"]) == {"order", "item", "seller"}
    assert set(ocel.events["ocel:activity"]) == activities


def _leaves(tree):
    if not tree.children:
        yield tree
    for child in tree.children:
        yield from _leaves(child)


# -- bad input ------------------------------------------------------------------------------------

def test_mapping_names_a_column_the_file_lacks(files, tmp_path):
    orders, items, _ = files
    mapping = utc_mapping(tmp_path, ("status: order_status", "status: order_sttus"))
    with pytest.raises(ErrorList) as caught:
        rp.replay(orders, items, mapping)
    (error,) = caught.value.errors
    line = next(i for i, text in enumerate(mapping.read_text().splitlines(), 1)
                if "order_sttus" in text)
    assert (error.location.file.endswith("mapping.yaml"), error.location.line) == (True, line)
    assert "'order_sttus' is not in" in error.message and "orders.csv.gz" in error.message
    assert error.hint == "did you mean 'order_status'?"


def test_mapping_schema_and_reference_errors(tmp_path):
    mapping = utc_mapping(tmp_path, ("      from: carrier\n", "      form: carrier\n"))
    with pytest.raises(ErrorList) as caught:
        rp.load_mapping(mapping)
    text = str(caught.value)
    assert "unknown key 'form'" in text and "mapping.yaml:" in text
    mapping = utc_mapping(tmp_path, ("      to: customer\n", "      to: custmer\n"))
    with pytest.raises(ErrorList) as caught:
        rp.load_mapping(mapping)
    (error,) = caught.value.errors
    assert error.message == "'custmer' is not a milestone key"
    assert error.hint == "did you mean 'customer'?" and error.location.line > 1
    mapping = utc_mapping(tmp_path, ("timezone: UTC", "timezone: Mars/Olympus"))
    with pytest.raises(ErrorList, match="unknown time zone"):
        rp.load_mapping(mapping)


@pytest.mark.parametrize("content, where", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", ":1:1"),
    (b"", ":1:1"),
])
def test_not_a_csv(files, tmp_path, content, where):
    _, items, mapping = files
    bad = tmp_path / "orders.csv"
    bad.write_bytes(content)
    with pytest.raises(InputError) as caught:
        rp.replay(bad, items, mapping)
    assert str(caught.value).startswith(f"{rp.display_path(bad)}{where}: ")


def test_broken_gzip(files, tmp_path):
    _, items, mapping = files
    bad = tmp_path / "orders.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(InputError, match="cannot read the file"):
        rp.replay(bad, items, mapping)


@pytest.mark.parametrize("rows, line", [((0, 1), 3), ((1, 0), 2)])
def test_ragged_row_points_at_row_and_column(files, tmp_path, rows, line):
    _, items, mapping = files
    bad = tmp_path / "orders.csv"
    first, second = (ORDERS[i] for i in rows)
    lines = [HEADER, first, second + ",extra"] if line == 3 else [HEADER, first + ",x", second]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        rp.replay(bad, items, mapping)
    assert (caught.value.location.line, caught.value.location.col) == (line, 9)


def test_missing_file_and_folder(files, tmp_path):
    _, items, mapping = files
    with pytest.raises(InputError, match="no such file"):
        rp.replay(tmp_path / "nope.csv", items, mapping)
    with pytest.raises(InputError, match="is a folder"):
        rp.replay(tmp_path, items, mapping)


def test_errors_are_storeops_errors_and_nothing_is_written(files, tmp_path):
    orders, _, mapping = files
    out = tmp_path / "out"
    with pytest.raises(StoreopsError):
        rp.replay_to_dir(orders, tmp_path / "missing.csv", mapping, out)
    assert not out.exists()


# -- the real Olist export ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not (OLIST / "olist_orders_dataset.csv.gz").exists(),
                    reason=f"real data not present: {OLIST}")
def test_olist_every_order_accounted_for(tmp_path, capsys):
    summary = rp.replay_to_dir(None, None, MAPPING, tmp_path, data_dir=OLIST)
    source = pd.read_csv(OLIST / "olist_orders_dataset.csv.gz", dtype=str)
    written = pd.read_csv(tmp_path / "orders.csv", dtype=str, keep_default_na=False)
    assert len(written) == len(source) == summary["orders"] == 99_441
    expected = source["order_status"].value_counts().to_dict()
    assert written["status"].value_counts().to_dict() == expected
    assert summary["orders_by_status"] == expected
    assert expected["delivered"] == 96_478 and expected["approved"] == 2
    # README: 6,535 delivered on a later calendar day than the estimate.
    assert summary["late_vs_promise"] == 6_535
    # README: 1,359 carrier dates before approval plus 23 deliveries before the carrier.
    assert summary["anomalies"]["out_of_order"] == 1_382
    assert summary["anomalies"]["duplicate_order_id"] == 0
    durations = json.loads((tmp_path / "durations.json").read_text())
    assert set(durations) == {"confirm", "fulfil", "deliver", "total"}
    assert all(d["model"] in ("lognormal", "exponential") and d["n"] > 90_000
               for d in durations.values())
    assert summary["traces"] == 99_441
    assert capsys.readouterr() == ("", "")


# -- the storeops replay command -----------------------------------------------------------

PACK = Path(__file__).resolve().parent.parent / "rules" / "order_fulfilment.yaml"


def test_cli_replay_writes_every_output(files, tmp_path):
    from click.testing import CliRunner

    from storeops.cli import cli

    orders, items, mapping = files
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "replay", "--pack", str(PACK), "--input", str(orders), "--items", str(items),
        "--mapping", str(mapping), "--out", str(out), "--as-of", AS_OF,
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "actions.csv", "durations.json", "events.ocel.json", "events.xes", "orders.csv",
        "stage_times.csv", "trail.sqlite"]
    assert len(rp_rows(out / "orders.csv")) == len(ORDERS)


def rp_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_replay_refuses_a_state_the_workflow_does_not_have(files, tmp_path):
    from click.testing import CliRunner

    from storeops.cli import cli

    orders, items, _ = files
    mapping = utc_mapping(tmp_path, ("{state: completed,", "{state: delivered,"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "replay", "--pack", str(PACK), "--input", str(orders), "--items", str(items),
        "--mapping", str(mapping), "--out", str(out),
    ], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == (
        f"{mapping}:1:1: state 'delivered' is not a state of workflow 'order_fulfilment' in "
        f"{PACK.relative_to(Path.cwd()) if PACK.is_relative_to(Path.cwd()) else PACK} "
        "(did you mean 'deliver'?)\n")
    assert not out.exists()


def test_an_orders_walk_and_its_rules_are_in_the_trail(result, files, tmp_path):
    import json

    from storeops.engine.packs import load_pack
    from storeops.engine.trail import open_trail, read_trail

    _, _, mapping_path = files
    pack = load_pack(PACK)
    with open_trail(tmp_path / "trail.sqlite") as trail:
        actions, records = rp.record_replay(result, rp.load_mapping(mapping_path), pack, trail)
    walk = [(r["rule_id"], r["ts"], json.loads(r["inputs"]))
            for r in read_trail(tmp_path / "trail.sqlite", subject="A")
            if r["table_id"] == "order_fulfilment"]
    # A: purchase 01-01 10:00, approved 12:00, carrier 01-03 10:00, customer 01-06 10:00;
    # the warehouse steps between approval and hand-over are bounded, not observed
    assert walk == [
        ("registered", "2018-01-01T10:00:00.000Z", {"from": "register", "to": "confirm",
                                                    "observed": True}),
        ("confirmed", "2018-01-01T12:00:00.000Z", {"from": "confirm", "to": "print",
                                                   "observed": True}),
        ("printed", "2018-01-03T10:00:00.000Z", {"from": "print", "to": "pick",
                                                 "observed": False}),
        ("picked", "2018-01-03T10:00:00.000Z", {"from": "pick", "to": "verify",
                                                "observed": False}),
        ("verify_ok", "2018-01-03T10:00:00.000Z", {"from": "verify", "to": "pack",
                                                   "observed": False}),
        ("packed", "2018-01-03T10:00:00.000Z", {"from": "pack", "to": "deliver",
                                                "observed": True}),
        ("delivered", "2018-01-06T10:00:00.000Z", {"from": "deliver", "to": "completed",
                                                   "observed": True}),
    ]
    # A was late against its promise and handed over after the earliest shipping limit
    mine = actions[actions["subject"] == "A"]
    assert mine[["rule_id", "action"]].values.tolist() == [
        ["E1", "APOLOGISE_LATE"], ["E2", "WARN_SELLER"]]
    assert records == len(list(read_trail(tmp_path / "trail.sqlite")))
    # D is stuck and E was cancelled after hand-over: their rules fire too
    assert set(actions.loc[actions["subject"] == "D", "action"]) >= {"CHASE_ORDER"}
    assert "REVIEW_CANCELLATION" in set(actions.loc[actions["subject"] == "E", "action"])


def test_issue_6_explain_reads_workflow_records(files, tmp_path):
    from click.testing import CliRunner

    from storeops.cli import cli

    orders, items, mapping = files
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, [
        "replay", "--pack", str(PACK), "--input", str(orders), "--items", str(items),
        "--mapping", str(mapping), "--out", str(out), "--as-of", AS_OF,
    ], catch_exceptions=False).exit_code == 0
    result = runner.invoke(cli, ["explain", "--trail", str(out / "trail.sqlite"),
                                 "--subject", "A"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "outputs  transition print -> pick" in result.stdout
    assert 'inputs   from = "print", to = "pick", observed = false' in result.stdout
    assert "outputs  APOLOGISE_LATE (" in result.stdout

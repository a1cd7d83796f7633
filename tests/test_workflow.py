"""Workflows: validation errors with exact positions, known-answer case runs, the trail."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeops.engine.errors import ErrorList
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail, read_trail
from storeops.engine.workflow import GuardDecision, register, start_case

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "rules" / "order_fulfilment.yaml"
SERVICE = ROOT / "rules" / "store_service.yaml"

# Line numbers below count from here: 'workflow:' is line 11, the states a, b, done lines 17-19,
# the transitions a_b, a_done, b_done lines 21-23.
BASE = """\
pack:
  id: w
  version: "1"
  title: {zh: 测试, en: test}
  source: {document: tests}
  subject: order
fields:
  - {name: order, type: text}
  - {name: ok, type: boolean, required: false}
  - {name: qty, type: integer, required: false}
workflow:
  id: flow
  start: a
  roles:
    - {id: clerk, label: {zh: 文员, en: clerk}}
  states:
    - {id: a, label: {zh: 甲, en: A}, role: clerk, duration: {model: fixed, minutes: 5}}
    - {id: b, label: {zh: 乙, en: B}}
    - {id: done, label: {zh: 完成, en: done}, end: true}
  transitions:
    - {id: a_b, from: a, to: b, when: "ok"}
    - {id: a_done, from: a, to: done, when: "not ok"}
    - {id: b_done, from: b, to: done}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ErrorList) as info:
        load_pack(write(tmp_path, text), display="w.yaml")
    return [str(e) for e in info.value.errors]


@pytest.fixture(scope="module")
def orders():
    return load_pack(ORDERS).workflow


@pytest.fixture(scope="module")
def service():
    return load_pack(SERVICE).workflow


class Recorder:
    """A trail stand-in that keeps what it is given, to assert the exact records."""

    def __init__(self) -> None:
        self.refs: list = []
        self.records: list[tuple] = []

    def rule(self, ref) -> int:
        if ref not in self.refs:
            self.refs.append(ref)
        return self.refs.index(ref)

    def add(self, ts, subject, rule, values, outputs=None) -> int:
        import json

        ref = self.refs[rule]
        self.records.append((ts, subject, ref.rule_id, values,
                             json.loads(ref.outputs if outputs is None else outputs)))
        return len(self.records)


# -- loading and validation ---------------------------------------------------------------------


def test_base_workflow_loads(tmp_path):
    pack = load_pack(write(tmp_path, BASE), display="w.yaml")
    flow = pack.workflow
    assert pack.tables == ()
    assert list(flow.states) == ["a", "b", "done"]
    assert [t.id for t in flow.outgoing["a"]] == ["a_b", "a_done"]
    assert flow.end_states == ("done",)
    assert set(flow.graph.edges) == {("a", "b"), ("a", "done"), ("b", "done")}
    assert flow.states["a"].duration.minutes == 5
    assert flow.roles["clerk"].label.en == "clerk"
    assert flow.transitions[0].location.line == 21


def test_packs_without_workflow_have_none():
    assert load_pack(ROOT / "rules" / "kzb.yaml").workflow is None


def test_a_pack_needs_tables_or_a_workflow(tmp_path):
    text = BASE.split("workflow:")[0]
    assert errors_of(tmp_path, text) == [
        "w.yaml:1:1: the pack: needs 'tables' or 'workflow' or 'value_chain' or 'customers'"]


def test_unreachable_state(tmp_path):
    text = BASE.replace("    - {id: done,", "    - {id: c, label: {zh: 丙, en: C}}\n"
                                            "    - {id: done,")
    text += "    - {id: c_done, from: c, to: done}\n"
    assert errors_of(tmp_path, text) == [
        "w.yaml:19:7: state 'c' cannot be reached from the start state 'a'"]


def test_dead_end(tmp_path):
    text = BASE.replace("    - {id: done,", "    - {id: c, label: {zh: 丙, en: C}}\n"
                                            "    - {id: done,")
    text = text.replace('{id: b_done, from: b, to: done}',
                        '{id: b_done, from: b, to: done, when: "ok"}\n'
                        '    - {id: b_c, from: b, to: c, when: "not ok"}')
    assert errors_of(tmp_path, text) == [
        "w.yaml:19:7: state 'c' has no transition out; every state must lead to an end"]


def test_cycle_that_cannot_reach_an_end(tmp_path):
    text = BASE.replace("    - {id: done,", "    - {id: c, label: {zh: 丙, en: C}}\n"
                                            "    - {id: done,")
    text = text.replace('{id: b_done, from: b, to: done}',
                        '{id: b_done, from: b, to: done, when: "ok"}\n'
                        '    - {id: b_c, from: b, to: c, when: "not ok"}\n'
                        '    - {id: c_c, from: c, to: c}')
    assert errors_of(tmp_path, text) == [
        "w.yaml:19:7: state 'c' cannot reach an end state; every state must lead to an end"]


def test_missing_guard_where_a_choice_is_made(tmp_path):
    text = BASE.replace('{id: a_done, from: a, to: done, when: "not ok"}',
                        "{id: a_done, from: a, to: done}")
    assert errors_of(tmp_path, text) == [
        "w.yaml:22:7: state 'a' has several transitions; each needs a guard ('when'), "
        "and 'a_done' has none"]


def test_unknown_states_roles_and_duplicates_all_at_once(tmp_path):
    text = BASE.replace("start: a", "start: aa").replace("role: clerk", "role: clerc")
    text = text.replace("{id: a_b, from: a, to: b,", "{id: a_b, from: a, to: bb,")
    text = text.replace("{id: b_done, from: b,", "{id: a_b, from: b,")
    assert errors_of(tmp_path, text) == [
        "w.yaml:13:10: unknown start state 'aa' (did you mean 'a'?)",
        "w.yaml:17:44: state 'a': unknown role 'clerc' (did you mean 'clerk'?)",
        "w.yaml:21:30: transition 'a_b': unknown state 'bb' (did you mean 'b'?)",
        "w.yaml:23:12: duplicate transition 'a_b'",
    ]


def test_guard_errors_point_into_the_expression(tmp_path):
    text = BASE.replace('when: "not ok"', 'when: "not ok and qtyy > 1"')
    (error,) = errors_of(tmp_path, text)
    assert error == "w.yaml:22:57: unknown field 'qtyy' (did you mean 'qty'?)"


def test_end_state_with_a_way_out(tmp_path):
    text = BASE + "    - {id: again, from: done, to: a}\n"
    assert errors_of(tmp_path, text) == [
        "w.yaml:24:7: end state 'done' has transitions out of it ('again'); "
        "an end state ends the case"]


def test_duration_needs_its_parameters(tmp_path):
    text = BASE.replace("{model: fixed, minutes: 5}", "{model: lognormal, mean_minutes: 5}")
    assert errors_of(tmp_path, text) == [
        "w.yaml:17:61: state 'a': a lognormal duration takes mean_minutes, sd_minutes; "
        "missing sd_minutes"]


def test_schema_errors_in_the_workflow_have_positions(tmp_path):
    text = BASE.replace("  start: a\n", "  start: a\n  choise: first\n")
    (error,) = errors_of(tmp_path, text)
    assert error.startswith("w.yaml:14:3: unknown key 'choise' in workflow (did you mean")


def test_overlapping_guards_are_an_error_under_unique(tmp_path):
    text = BASE.replace("  start: a\n", "  start: a\n  choice: unique\n")
    text = text.replace('when: "ok"}', 'when: "qty > 5"}').replace('when: "not ok"}',
                                                                  'when: "qty > 3"}')
    (error,) = errors_of(tmp_path, text)
    assert error.startswith(
        "w.yaml:23:7: the guards of transitions 'a_b' and 'a_done' out of state 'a' can both "
        "be true with choice 'unique', e.g. qty=")
    assert error.endswith("(make them exclusive, or set 'choice: first' to take the first "
                          "true one)")


def test_overlapping_guards_are_fine_under_first(tmp_path):
    text = BASE.replace('when: "ok"}', 'when: "qty > 5"}').replace('when: "not ok"}',
                                                                  'when: "qty > 3"}')
    flow = load_pack(write(tmp_path, text)).workflow
    case = start_case(flow, "o1", {"qty": 9})
    assert case.advance(1.0).target == "b"  # the first true guard wins


def test_exclusive_guards_pass_under_unique(tmp_path):
    text = BASE.replace("  start: a\n", "  start: a\n  choice: unique\n")
    assert load_pack(write(tmp_path, text)).workflow.choice == "unique"


@pytest.mark.parametrize("path", [ORDERS, SERVICE], ids=lambda p: p.name)
def test_shipped_packs_validate_and_every_state_is_reachable(path):
    pack = load_pack(path)
    flow = pack.workflow
    assert pack.warnings == ()
    reached = nx.descendants(flow.graph, flow.start) | {flow.start}
    assert reached == set(flow.states)
    for state in flow.states.values():
        assert state.label.zh and state.label.en
        assert state.end or (state.role in flow.roles and state.duration is not None)
    for transition in flow.transitions:
        assert transition.label is not None and transition.label.zh


def test_order_pack_tables_choose_the_picking_method():
    from storeops.engine.tables import compile_table, decide

    pack = load_pack(ORDERS)
    picking = compile_table(pack, next(t for t in pack.tables if t.id == "picking_method"))
    assert [o.action for o in decide(picking, {"bulky": True, "pending_orders": 50})[0].outputs] \
        == ["PICK_BY_ORDER"]
    assert [o.action for o in decide(picking, {"bulky": False, "pending_orders": 50})[0].outputs] \
        == ["BATCH_PICKING"]


# -- running cases -------------------------------------------------------------------------------

CONFIRMED = {"cancelled": False, "inbound_arrived": True, "mergeable": False,
             "has_remarks": False, "special": False}


def test_order_waits_for_stock_then_proceeds(orders):
    trail = Recorder()
    case = start_case(orders, "O1", {"cancelled": False, "stock_ok": False}, trail, ts=0.0)
    assert case.advance(1.0).target == "confirm"
    step = case.advance(2.0)
    assert (step.status, step.transition, step.target) == ("moved", "wait_stock",
                                                            "waiting_for_stock")
    blocked = case.advance(3.0)
    assert blocked.status == "blocked"
    assert blocked.decisions == (GuardDecision("cancel_waiting_stock", "cancelled", False),
                                 GuardDecision("stock_arrived", "confirm", False))
    case.advance(4.0, {"stock_ok": True})
    case.advance(5.0, CONFIRMED)
    for ts in (6.0, 7.0):
        case.advance(ts)
    case.advance(8.0, {"verified": True})
    case.advance(9.0)
    case.advance(10.0, {"needs_installation": False})
    assert case.done
    assert case.history == [(0.0, "register"), (1.0, "confirm"), (2.0, "waiting_for_stock"),
                            (4.0, "confirm"), (5.0, "print"), (6.0, "pick"), (7.0, "verify"),
                            (8.0, "pack"), (9.0, "deliver"), (10.0, "completed")]
    assert case.advance(11.0).status == "done"
    # ts 2, choice 'first': one record for the move; its outputs name the guard passed over,
    # its inputs hold what that guard and the one taken read; later guards decided nothing
    at_two = [r for r in trail.records if r[0] == 2.0]
    assert at_two == [(2.0, "O1", "wait_stock", (False, False),
                       {"event": "transition", "from": "confirm", "to": "waiting_for_stock",
                        "taken": True, "passed": ["cancel_at_confirm"]})]
    assert [r[2] for r in trail.records if r[4]["event"] == "transition"] == [
        "registered", "wait_stock", "stock_arrived", "confirmed", "printed", "picked",
        "verify_ok", "packed", "delivered"]
    confirmed = next(r for r in trail.records if r[2] == "confirmed")
    assert confirmed[4]["passed"] == ["cancel_at_confirm", "wait_stock", "wait_inbound",
                                      "merge", "amend", "mark_special"]
    # the blocked step at ts 3 recorded its two guard decisions and no transition
    assert [(r[2], r[4]["event"], r[4]["guard"]) for r in trail.records if r[0] == 3.0] == [
        ("cancel_waiting_stock", "guard", False), ("stock_arrived", "guard", False)]
    move, guard = (r for r in trail.refs if r.rule_id == "wait_stock")
    assert (move.pack_id, move.table_id, move.fields) == ("order_fulfilment", "order_fulfilment",
                                                        ("cancelled", "stock_ok"))
    assert guard.fields == ("stock_ok",) and guard.source_line == move.source_line
    assert move.source_file.endswith("order_fulfilment.yaml")


def test_failed_verification_goes_back_to_picking(orders):
    case = start_case(orders, "O2", {**CONFIRMED, "stock_ok": True, "verified": False})
    steps = [case.advance(float(ts)) for ts in range(1, 7)]
    assert [s.target for s in steps] == ["confirm", "print", "pick", "verify", "pick", "verify"]
    assert steps[4].transition == "verify_failed"


@pytest.mark.parametrize(("attributes", "end"), [
    ({"cancelled": True}, "cancelled"),
    ({**CONFIRMED, "stock_ok": True, "mergeable": True}, "merged"),
])
def test_exits_at_confirmation(orders, attributes, end):
    case = start_case(orders, "O3", attributes)
    case.run(1.0)
    assert case.state == end and case.done


def test_remarks_and_special_orders_loop_back_to_confirm(orders):
    case = start_case(orders, "O4", {**CONFIRMED, "stock_ok": True, "has_remarks": True,
                                     "special": True})
    case.run(1.0)
    assert case.state == "amending"
    case.advance(2.0, {"remarks_applied": True})
    case.advance(3.0)
    assert case.state == "marking_special"
    case.advance(4.0, {"special_marked": True})
    case.advance(5.0)
    assert case.state == "print"


def test_bulky_doors_are_installed(orders):
    case = start_case(orders, "O5", {**CONFIRMED, "stock_ok": True, "verified": True,
                                     "needs_installation": True})
    case.run(1.0)
    assert [s for _, s in case.history][-3:] == ["deliver", "installing", "completed"]


def test_trace_of_a_guard_finds_the_moves_that_passed_over_it(orders, tmp_path):
    """Under choice 'first', a guard decides when its move is taken and when a later move is
    taken past it: `trace --rule` shows both, and explain names the guards passed over."""
    from storeops.engine import audit

    path = tmp_path / "trail.sqlite"
    with open_trail(path, clock="sim") as trail:
        keys = register(orders, trail)
        short = start_case(orders, "O1", {"cancelled": False, "stock_ok": False}, trail,
                           ts=0.0, keys=keys)
        short.advance(1.0)
        short.advance(2.0)  # wait_stock taken
        ready = start_case(orders, "O2", {**CONFIRMED, "stock_ok": True}, trail, ts=0.0,
                           keys=keys)
        ready.advance(1.0)
        ready.advance(3.0)  # confirmed, past wait_stock
    traced = [(r["subject"], r["rule_id"], r["ts"]) for r in audit.trace(str(path),
                                                                        rule_id="wait_stock")]
    assert traced == [("O1", "wait_stock", 2.0), ("O2", "confirmed", 3.0)]
    confirmed = next(r for r in read_trail(path, rule_id="confirmed"))
    assert json.loads(confirmed["inputs"])["stock_ok"] is True
    text = audit.format_record(confirmed)
    assert "passed over cancel_at_confirm, wait_stock, wait_inbound, merge, amend, " \
           "mark_special" in text
    # one record per move, none for the guards passed over
    assert [r["rule_id"] for r in read_trail(path, subject="O2")] == ["registered", "confirmed"]


def test_service_ticket_through_a_real_trail(service, tmp_path):
    path = tmp_path / "trail.sqlite"
    with open_trail(path, clock="sim") as trail:
        case = start_case(service, "T1", {}, trail, ts=0.0)
        case.advance(1.0)
        assert case.advance(1.5).status == "blocked"  # no quote answer yet: every guard null
        case.advance(2.0, {"approved": True, "parts_available": False})
        case.advance(30.0, {"parts_available": True})
        case.advance(90.0)
        case.advance(100.0, {"qc_passed": True})
        case.advance(110.0, {"paid": True})
        case.advance(120.0)
    assert case.state == "closed"
    rows = list(read_trail(path))
    moves = [(r["ts"], r["rule_id"]) for r in rows if '"event": "transition"' in r["outputs"]]
    assert moves == [(1.0, "received"), (2.0, "order_parts"), (30.0, "parts_in"),
                     (90.0, "repaired"), (100.0, "qc_ok"), (110.0, "settled"), (120.0, "called")]
    assert {r["table_id"] for r in rows} == {"store_service"}
    # choice 'unique': a move is explained by its own guard (the others provably false);
    # only the blocked step records every guard, each null
    guards = [(r["ts"], r["rule_id"]) for r in rows if '"event": "guard"' in r["outputs"]]
    assert {ts for ts, _ in guards} == {1.5}
    decline = next(r for r in rows if r["rule_id"] == "decline")
    assert decline["inputs"] == '{"approved": null}'
    assert decline["outputs"] == ('{"event": "guard", "from": "intake", "guard": null, '
                                  '"taken": false, "to": "declined"}')
    order_parts = next(r for r in rows if r["rule_id"] == "order_parts"
                       and '"event": "transition"' in r["outputs"])
    assert order_parts["inputs"] == '{"approved": true, "parts_available": false}'



def test_null_guards_block(service):
    case = start_case(service, "T2", {})
    case.advance(1.0)
    step = case.advance(2.0)
    assert step.status == "blocked" and case.state == "intake"
    assert [d.value for d in step.decisions] == [None, None, None]


ORDER_FIELDS = ["stock_ok", "inbound_arrived", "mergeable", "has_remarks", "remarks_applied",
                "special", "special_marked", "bulky", "verified", "needs_installation",
                "cancelled"]


@functools.cache
def _shipped(path: Path):
    return load_pack(path).workflow


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from([*ORDER_FIELDS, "approved", "parts_available",
                                                 "qc_passed", "paid"]),
                                st.none() | st.booleans()), min_size=1, max_size=25),
       st.booleans())
def test_random_events_never_crash_and_stay_in_the_graph(events, use_service):
    flow = _shipped(SERVICE if use_service else ORDERS)
    case = start_case(flow, "X", {})
    for ts, update in enumerate(events):
        step = case.advance(float(ts), update)
        assert case.state in flow.graph
        assert step.status in ("moved", "blocked", "done")
        if step.status == "moved":
            assert flow.graph.has_edge(step.source, step.target)

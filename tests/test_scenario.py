"""Scenario files: loading, and bad input failing with file, line, column and reason."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import pytest

from storeops.engine import yamlsafe
from storeops.engine.errors import ErrorList, StoreopsError
from storeops.engine.files import display_path
from storeops.engine.scenario import ScenarioBuilder, load_scenario, scenario_schema_errors

DATA = Path(__file__).parent / "data" / "sim"
ROOT = Path(__file__).parent.parent


def base_text() -> str:
    """small.yaml with absolute pack paths, so variants can live in tmp_path."""
    text = (DATA / "small.yaml").read_text(encoding="utf-8")
    text = text.replace("value_chain: value_chain_test.yaml",
                        f"value_chain: {DATA / 'value_chain_test.yaml'}")
    return text.replace("../../../rules", str(ROOT / "rules"))


def where(text: str, snippet: str, at: str) -> str:
    """LINE:COL (1-based) of ``at`` inside the first ``snippet`` of the text."""
    start = text.index(snippet) + snippet.index(at)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{line}:{col}"


def load_variant(tmp_path: Path, old: str, new: str) -> tuple[str, str, str]:
    text = base_text()
    assert old in text
    text = text.replace(old, new, 1)
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StoreopsError) as caught:
        load_scenario(path)
    return str(caught.value), text, str(path)


def test_small_scenario_loads_and_pickles():
    scenario = load_scenario(DATA / "small.yaml")
    assert scenario.id == "small"
    assert len(scenario.stores) == 40
    assert {s.tier for s in scenario.stores} == {"A", "B", "C"}
    assert [p.name for p in scenario.policies] == ["reactive", "focus_on_big", "cycle_135"]
    assert scenario.compare == ("reactive", "focus_on_big", "cycle_135")
    assert scenario.policy("cycle_135").visits_per_month == (4.0, 2.0, 1.0)
    assert dict(scenario.order_desk.staff) == {"customer_service": 2, "picker": 2,
                                               "checker": 1, "packer": 1}
    # territories: every store belongs to one of the 2 supervisors and to the customer manager
    assert {s.supervisor for s in scenario.stores} == {0, 1}
    assert {s.customer_manager for s in scenario.stores} == {0}
    assert pickle.loads(pickle.dumps(scenario)) == scenario
    # the generated region is part of the scenario: loading again gives the same stores
    assert load_scenario(DATA / "small.yaml").stores == scenario.stores


def test_builder_builds_a_changed_document_and_reuses_its_packs():
    """The public builder (what experiments use): the file's data changed in memory, the
    scenario's checks and territories apply, and packs from one build serve the next."""
    doc = yamlsafe.load(DATA / "small.yaml", display=display_path(DATA / "small.yaml"))
    assert scenario_schema_errors(doc) == []
    first = ScenarioBuilder(doc, DATA)
    assert first.build() == load_scenario(DATA / "small.yaml")
    data = copy.deepcopy(doc.data)
    data["team"]["supervisors"]["count"] = 3
    changed = ScenarioBuilder(dataclasses.replace(doc, data=data), DATA,
                              packs=first.loaded_packs)
    scenario = changed.build()
    assert scenario.supervisors.count == 3
    assert {s.supervisor for s in scenario.stores} == {0, 1, 2}
    packs = dict(first.loaded_packs)
    assert set(packs) == {"value_chain", "kzb", "orders"}
    assert all(changed.loaded_packs[k][1] is packs[k][1] for k in packs)  # not read again
    data["team"]["supervisors"]["count"] = 0
    with pytest.raises(ErrorList, match=r"team\.supervisors\.count is 0"):
        ScenarioBuilder(dataclasses.replace(doc, data=data), DATA, packs=packs).build()


def test_negative_rate(tmp_path):
    message, text, path = load_variant(tmp_path, "rate_per_year: 3,", "rate_per_year: -3,")
    assert message == (f"{path}:{where(text, 'rate_per_year: -3', '-3')}: "
                       "problems.0.rate_per_year: must not be negative, got -3")


def test_zero_staff_with_arrivals(tmp_path):
    message, text, path = load_variant(tmp_path, "picker: 2,", "picker: 0,")
    assert message == (f"{path}:{where(text, 'picker: 0', '0')}: team.order_desk.staff.picker "
                       "is 0 but orders arrive (30 a day) and need a picker")


def test_zero_supervisors_with_problems(tmp_path):
    message, text, path = load_variant(tmp_path, "supervisors: {count: 2,",
                                       "supervisors: {count: 0,")
    assert message == (f"{path}:{where(text, 'supervisors: {count: 0', '0')}: "
                       "team.supervisors.count is 0, but problems arise and nobody else "
                       "handles them")


def test_policy_that_does_not_exist(tmp_path):
    message, text, path = load_variant(tmp_path, "policies:\n",
                                       "compare: [reactive, focus_on_bigg]\npolicies:\n")
    assert message == (f"{path}:{where(text, 'focus_on_bigg]', 'focus_on_bigg')}: compare "
                       "names policy 'focus_on_bigg', which the scenario does not define "
                       "(did you mean 'focus_on_big'?)")


def test_pack_that_does_not_exist(tmp_path):
    message, text, path = load_variant(tmp_path, "value_chain_test.yaml", "no_such_pack.yaml")
    missing = DATA / "no_such_pack.yaml"
    assert message.startswith(f"{path}:{where(text, f'value_chain: {missing}', str(missing))}: "
                              f"packs.value_chain: no pack file '{missing}'")


def test_action_the_pack_does_not_have(tmp_path):
    message, text, path = load_variant(tmp_path, "fixed_by: [VC_TRAFFIC]",
                                       "fixed_by: [VC_TRAFIC]")
    assert message == (f"{path}:{where(text, '[VC_TRAFIC]', 'VC_TRAFIC')}: problems.0.fixed_by: "
                       "action 'VC_TRAFIC' is not in pack 'value_chain_test' "
                       "(did you mean 'VC_TRAFFIC'?)")


def test_need_the_kzb_pack_does_not_have(tmp_path):
    message, text, path = load_variant(tmp_path, "N19: 0.5", "N99: 0.5")
    assert message == (f"{path}:{where(text, 'N99: 0.5', '0.5')}: needs.rates_per_year: need "
                       "'N99' is not a need of pack 'kzb' (did you mean 'N19'?)")


def test_warmup_not_shorter_than_horizon(tmp_path):
    message, text, path = load_variant(tmp_path, "warmup_days: 10", "warmup_days: 60")
    assert message == (f"{path}:{where(text, 'warmup_days: 60', '60')}: scenario.warmup_days "
                       "(60) must be shorter than the horizon (60 days)")


def test_unknown_key_and_bad_enum_reported_together(tmp_path):
    text = base_text().replace("  target_days: 5", "  target_day: 5").replace(
        "requests: fcfs}", "requests: first}")
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ErrorList) as caught:
        load_scenario(path)
    assert str(caught.value).splitlines() == [
        f"{path}:{where(text, 'target_day: 5', 'target_day')}: unknown key 'target_day' in "
        "needs (did you mean 'target_days'?)",
        f"{path}:{where(text, 'requests: first', 'first')}: policies.reactive.requests: "
        "expected one of fcfs, priority, got the text 'first'",
    ]


MATRIX = """\
scenario: {id: tiny, horizon_days: 10, replications: 1, seed: 1}
packs:
  value_chain: VC
region:
  stores:
    - {id: S1, tier: A}
    - {id: S2, tier: B}
  travel:
    matrix:
      - [0, 10, 20]
      - [10, 0]
      - [20, 15, 0]
kpis:
  A: {traffic_per_day: 100, conversion: 0.2, ticket: 100}
  B: {traffic_per_day: 100, conversion: 0.2, ticket: 100}
  C: {traffic_per_day: 100, conversion: 0.2, ticket: 100}
team:
  supervisors: {count: 1}
policies:
  reactive: {requests: fcfs}
"""


def test_travel_matrix_of_the_wrong_size(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(MATRIX.replace("VC", str(DATA / "value_chain_test.yaml")), encoding="utf-8")
    with pytest.raises(StoreopsError) as caught:
        load_scenario(path)
    assert str(caught.value) == (f"{path}:11:9: region.travel.matrix must be 3 x 3 (the 2 "
                                 "stores, then the office), but row 1 has 2 entries")


def test_travel_matrix_of_the_right_size_loads(tmp_path):
    path = tmp_path / "tiny.yaml"
    text = MATRIX.replace("VC", str(DATA / "value_chain_test.yaml"))
    path.write_text(text.replace("[10, 0]", "[10, 0, 15]"), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.travel == ((0.0, 10.0, 20.0), (10.0, 0.0, 15.0), (20.0, 15.0, 0.0))
    assert [s.supervisor for s in scenario.stores] == [0, 0]


def test_unknown_policy_asked_for():
    scenario = load_scenario(DATA / "small.yaml")
    with pytest.raises(StoreopsError) as caught:
        scenario.policy("cycle135")
    assert str(caught.value).endswith("no policy 'cycle135' in the scenario (did you mean "
                                      "'cycle_135'?)")


def test_order_desk_closing_before_it_opens(tmp_path):
    message, text, path = load_variant(
        tmp_path, "    staff: {customer_service: 2,",
        "    open: {from_hour: 18, to_hour: 8}\n    staff: {customer_service: 2,")
    assert message == (f"{path}:{where(text, 'from_hour: 18', '18')}: team.order_desk.open: "
                       "from_hour (18) must be before to_hour (8)")


def test_policy_takes_tier_priorities_and_visit_frequency_from_the_pack():
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    cycle = baseline.policy("cycle_135")
    # rules/value_chain.yaml, tiers.levels: priority 3/2/1, depth.visits_per_month 4/2/1
    assert cycle.tier_weight == (3.0, 2.0, 1.0)
    assert cycle.visits_per_month == (4.0, 2.0, 1.0)


def test_pack_values_need_a_value_chain_section(tmp_path):
    message, text, path = load_variant(
        tmp_path, "cycle: {visits_per_month: {A: 4, B: 2, C: 1}, urgent_share: 0.4}",
        "cycle: {visits_per_month: pack, urgent_share: 0.4}")
    assert message == (f"{path}:{where(text, 'visits_per_month: pack', 'pack')}: "
                       "policies.cycle_135.cycle.visits_per_month: 'pack' needs a value-chain "
                       "pack with a value_chain section (tiers.levels)")

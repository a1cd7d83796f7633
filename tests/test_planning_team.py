"""Team files: schema and cross-checks, every error at FILE:LINE:COL with what was expected."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from storeops.engine.errors import ErrorList
from storeops.engine.planning import Site, Travel, load_team, read_stores

DATA = Path(__file__).parent / "data" / "teams"
ROOT = Path(__file__).parent.parent

STORES = "store,area\nA1,north\nA2,\n"

GOOD = """\
team:
  id: t
  stores: stores.csv
  hours_per_day: 8
  days_per_week: 5
  visit_minutes: 60
  travel: {minutes_between_stores: 20, minutes_from_home: 30}
  supervisors:
    - {id: S1, areas: [north]}
"""


def write(tmp_path: Path, text: str, stores: str = STORES) -> Path:
    (tmp_path / "stores.csv").write_text(stores, encoding="utf-8")
    path = tmp_path / "team.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str, stores: str = STORES) -> list[str]:
    path = write(tmp_path, text, stores)
    with pytest.raises(ErrorList) as info:
        load_team(path, display="team.yaml")
    return [str(e).replace(str(tmp_path) + "/", "") for e in info.value.errors]


def test_fixture_team_loads():
    team = load_team(DATA / "two_areas.yaml")
    assert team.id == "two_areas"
    assert [s.id for s in team.supervisors] == ["S1", "S2"]
    assert team.supervisors[1].areas == ("south", "north")
    assert team.working_days == (0, 1, 2, 3, 4)
    assert team.day_minutes == 480
    assert team.day_start == "08:30"
    assert team.travel == Travel("constant", 30.0, 15.0)
    assert team.public_holidays == {dt.date(2026, 4, 3), dt.date(2026, 4, 6)}
    assert team.stores["C2"].area is None  # kept, reported by the plan, not dropped
    assert team.stores["B1"] == Site("B1", "south", 10.0, 0.0, team.stores["B1"].location)
    assert team.stores["B1"].location.line == 4


def test_routed_team_reads_coordinates_and_homes():
    team = load_team(DATA / "routed.yaml")
    assert team.travel == Travel("coordinates", road_factor=1.5, speed_kmh=30.0)
    assert team.supervisors[0].home == (0.0, 0.0)


def test_example_team_in_teams_folder_loads():
    team = load_team(ROOT / "teams" / "rossmann_team.yaml")
    assert len(team.supervisors) >= 2
    assert all(site.area for site in team.stores.values())


@pytest.mark.skipif(not (ROOT / "samples" / "store_areas.csv").exists(),
                    reason="samples/store_areas.csv comes with the value-chain samples (main)")
def test_sample_team_routes_by_coordinates():
    team = load_team(ROOT / "teams" / "sample_team.yaml")
    assert team.travel.mode == "coordinates"
    assert {site.area for site in team.stores.values()} == {"north", "east", "south", "west"}


def test_good_file_with_working_days(tmp_path):
    text = GOOD.replace("days_per_week: 5", "days_per_week: 2\n  working_days: [Sat, Tue]")
    team = load_team(write(tmp_path, text))
    assert team.working_days == (1, 5)


def test_schema_errors_name_what_was_expected(tmp_path):
    text = """\
    team:
      id: bad
      stores: stores.csv
      hours_per_day: -2
      days_per_week: 8
      visit_minutes: 0
      travel: {minutes_between_stores: 10}
      supervisors:
        - {id: S1, areas: []}
        - {id: S2}
        - {id: S4, areas: [north], hom: {}}
        - {id: S3, areas: [7]}
    """
    assert errors_of(tmp_path, text) == [
        "team.yaml:4:18: team.hours_per_day: expected a number > 0, got -2",
        "team.yaml:5:18: team.days_per_week: expected a number <= 7, got 8",
        "team.yaml:6:18: team.visit_minutes: expected a number > 0, got 0",
        "team.yaml:9:23: team.supervisors.0.areas: must not be empty",
        "team.yaml:10:7: team.supervisors.1: missing required key 'areas'",
        "team.yaml:11:32: unknown key 'hom' in team.supervisors.2 (did you mean 'home'?)",
        "team.yaml:12:24: team.supervisors.3.areas.0: expected text, got the number 7 "
        "(quote it)",
    ]


def test_zero_supervisors(tmp_path):
    text = GOOD.replace("  supervisors:\n    - {id: S1, areas: [north]}\n", "  supervisors: []\n")
    assert errors_of(tmp_path, text) == [
        "team.yaml:8:16: team.supervisors: must not be empty"]


def test_cross_checks_are_reported_together(tmp_path):
    text = """\
    team:
      id: bad
      stores: nowhere.csv
      hours_per_day: 1
      days_per_week: 5
      working_days: [Mon, Tue]
      visit_minutes: 50
      travel: {minutes_between_stores: 10, minutes_from_home: 10}
      public_holidays: ["2026-02-30"]
      supervisors:
        - {id: S1, areas: [north]}
        - {id: S1, areas: [south]}
    """
    assert errors_of(tmp_path, text) == [
        "team.yaml:3:11: team.stores: no such file 'nowhere.csv'",
        "team.yaml:6:17: team.working_days: lists 2 day(s) but days_per_week is 5",
        "team.yaml:7:18: team.visit_minutes: one visit (50 min) plus the way from home and "
        "back (2 x 10 min) does not fit in a day of 1 h",
        "team.yaml:9:21: team.public_holidays.0: '2026-02-30' is not a date (expected "
        "YYYY-MM-DD)",
        "team.yaml:12:12: team.supervisors.1.id: duplicate supervisor 'S1'",
    ]


@pytest.mark.parametrize(("travel", "message"), [
    ("{}", "team.yaml:7:11: team.travel: expected minutes_between_stores (constant travel) or "
           "road_factor and speed_kmh (travel from the stores' coordinates)"),
    ("{minutes_between_stores: 5, speed_kmh: 30}",
     "team.yaml:7:11: team.travel: give either minutes_between_stores (constant travel) or "
     "road_factor and speed_kmh (travel from the stores' coordinates), not both"),
    ("{speed_kmh: 30}",
     "team.yaml:7:11: team.travel: missing required key 'road_factor' (travel from "
     "coordinates needs road_factor and speed_kmh)"),
    ("{road_factor: 0.5, speed_kmh: 30}",
     "team.yaml:7:25: team.travel.road_factor: expected a number >= 1, got 0.5"),
])
def test_travel_is_one_of_two_kinds(tmp_path, travel, message):
    text = GOOD.replace("{minutes_between_stores: 20, minutes_from_home: 30}", travel)
    assert errors_of(tmp_path, text) == [message]


def test_stores_file_errors_at_row_and_column(tmp_path):
    stores = "store,area,x_km,y_km\nA1,north,1,2\nA1,south,3,4\n,north,1,1\nA3,north,abc,\n"
    text = GOOD.replace("{minutes_between_stores: 20, minutes_from_home: 30}",
                        "{road_factor: 1.3, speed_kmh: 40}")
    assert errors_of(tmp_path, text, stores) == [
        "stores.csv:3:1: duplicate store 'A1' (first on line 2)",
        "stores.csv:4:1: empty store id",
        "stores.csv:5:3: bad value 'abc' in column 'x_km' (expected a number of km)",
        "stores.csv:5:4: store 'A3' has no y_km (the team's travel uses coordinates)",
    ]


def test_stores_file_needs_store_and_area(tmp_path):
    assert errors_of(tmp_path, GOOD, "shop,region\nA1,north\n") == [
        "stores.csv:1:1: missing column 'area'",
        "stores.csv:1:1: missing column 'store'",
    ]


def test_coordinates_need_coordinate_columns(tmp_path):
    text = GOOD.replace("{minutes_between_stores: 20, minutes_from_home: 30}",
                        "{road_factor: 1.3, speed_kmh: 40}")
    assert errors_of(tmp_path, text) == [
        "stores.csv:1:1: missing columns 'x_km' and 'y_km' (the team's travel uses coordinates)"]


def test_store_without_area_is_kept(tmp_path):
    sites = read_stores(write(tmp_path, GOOD).parent / "stores.csv", display="stores.csv")
    assert sites["A2"].area is None
    assert str(sites["A2"].location) == "stores.csv:3:1"


def test_stores_override_and_yaml_errors_are_input_errors(tmp_path):
    path = write(tmp_path, GOOD)
    other = tmp_path / "other.csv"
    other.write_text("store,area\nZ9,west\n", encoding="utf-8")
    assert list(load_team(path, stores=other).stores) == ["Z9"]
    path.write_text("team: [unclosed\n", encoding="utf-8")
    with pytest.raises(ErrorList) as info:
        load_team(path, display="team.yaml")
    assert [str(e) for e in info.value.errors] == [
        "team.yaml:2:1: expected ',' or ']', but got '<stream end>'"]

"""storeops simulate through click's CliRunner."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine.trail import read_trail

DATA = Path(__file__).parent / "data" / "sim"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> str:
    """small.yaml over 20 days (CLI tests check the plumbing, not the statistics)."""
    text = (DATA / "small.yaml").read_text(encoding="utf-8")
    text = text.replace("value_chain: value_chain_test.yaml",
                        f"value_chain: {DATA / 'value_chain_test.yaml'}")
    text = text.replace("../../../rules", str(ROOT / "rules"))
    text = text.replace("horizon_days: 60", "horizon_days: 20").replace("warmup_days: 10",
                                                                        "warmup_days: 4")
    path = tmp_path_factory.mktemp("short") / "small.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(*args: str):
    return CliRunner().invoke(cli, ["simulate", *args], catch_exceptions=False)


def test_simulate_writes_summary_replications_and_trails(tmp_path, short):
    out = tmp_path / "out"
    result = run(short, "--replications", "2", "--policy", "reactive", "--policy", "cycle_135",
                 "--seed", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("scenario small: 40 stores, seed 3, 2 replication(s) per policy; "
                        "mean [95% CI]")
    assert lines[1].split() == ["metric", "reactive", "cycle_135"]
    assert any(line.startswith("sales_lost_share ") for line in lines)
    with open(out / "summary.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["metric", "policy", "mean", "ci_low", "ci_high"]
    assert {r["policy"] for r in rows} == {"reactive", "cycle_135"}
    lost = {r["policy"]: r for r in rows if r["metric"] == "sales_lost"}
    for row in lost.values():
        assert float(row["ci_low"]) <= float(row["mean"]) <= float(row["ci_high"])
    with open(out / "replications.csv", encoding="utf-8") as handle:
        reps = list(csv.DictReader(handle))
    assert {(r["policy"], r["replication"]) for r in reps} == {
        ("reactive", "1"), ("reactive", "2"), ("cycle_135", "1"), ("cycle_135", "2")}
    trails = sorted(p.name for p in (out / "trails").iterdir())
    assert trails == ["cycle_135-r001.sqlite", "cycle_135-r002.sqlite",
                      "reactive-r001.sqlite", "reactive-r002.sqlite"]
    # the trail holds the packs' decisions, stamped with simulation time (minutes)
    records = list(read_trail(out / "trails" / "cycle_135-r001.sqlite"))
    packs = {r["pack_id"] for r in records}
    assert packs == {"value_chain_test", "kzb", "order_fulfilment"}
    diagnosis = [r for r in records if r["pack_id"] == "value_chain_test"]
    assert diagnosis and all(0 < r["ts"] < 20 * 1440 for r in diagnosis)
    assert {r["rule_id"] for r in diagnosis} <= {"D1", "D2"}


def test_simulate_twice_gives_identical_files(tmp_path, short):
    outputs = []
    for name, workers in (("a", "1"), ("b", "2")):
        out = tmp_path / name
        result = run(short, "--replications", "2", "--policy", "focus_on_big", "--out", str(out),
                     "--workers", workers)
        assert result.exit_code == 0, result.output
        outputs.append(out)
    for name in ("summary.csv", "differences.csv", "replications.csv",
                 "trails/focus_on_big-r001.sqlite", "trails/focus_on_big-r002.sqlite"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_simulate_unknown_policy_fails_before_running(tmp_path, short):
    result = run(short, "--policy", "cycle135", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("no policy 'cycle135' in the scenario (did you mean "
                                          "'cycle_135'?)")
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_simulate_bad_scenario_exits_2_with_location(tmp_path):
    text = (DATA / "mmc.yaml").read_text(encoding="utf-8").replace(
        "orders: mmc_pack.yaml", f"orders: {DATA / 'mmc_pack.yaml'}").replace(
        "staff: {clerk: 2}", "staff: {clerk: 0}")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = run(str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "clerk: 0" in t)
    col = text.splitlines()[line - 1].index("0}") + 1
    assert result.stderr.strip() == (f"{path}:{line}:{col}: team.order_desk.staff.clerk is 0 "
                                     "but orders arrive (172.8 a day) and need a clerk")


def test_readme_main_job_simulates_a_scenario_that_loads():
    import re

    from storeops.engine.scenario import load_scenario

    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:12]
    main_job = next(line for line in head if "storeops run" in line)
    found = re.search(r"storeops simulate (\S+)", main_job)
    assert found, main_job
    scenario = load_scenario(ROOT / found.group(1))
    assert len(scenario.stores) == 300
    assert scenario.supervisors.count == 12
    assert scenario.horizon_days == 365
    assert {"reactive", "focus_on_big", "cycle_135", "phase_introduce", "phase_build",
            "phase_complete", "phase_improve"} <= {p.name for p in scenario.policies}

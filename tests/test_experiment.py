"""Staffing experiments (issue 9): checks before any job, jobs, resume, failures, decisions."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine.errors import StoreopsError
from storeops.engine.executors import InProcessRunner, Job, ProcessRunner
from storeops.engine.experiment import load_experiment
from storeops.engine.experiment_run import run_experiment
from storeops.engine.files import display_path
from storeops.engine.selection import FAILED, MET, UNDECIDED, judge, subset_containing_best

DATA = Path(__file__).parent / "data" / "experiments"
SMALL = DATA / "small.yaml"


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    """An experiment file in a temporary folder, on the tiny scenario (absolute path)."""
    path = tmp_path / name
    path.write_text(text.replace("scenario: tiny.yaml", f"scenario: {DATA / 'tiny.yaml'}"),
                    encoding="utf-8")
    return path


BASE = """experiment: {id: t, scenario: tiny.yaml, seed: 3}
vary:
  supervisors: [1, 2]
replications: 2
targets:
  - {metric: utilisation.picker, at_most: 0.2}
costs:
  supervisors: 1
  order_desk: {customer_service: 1, picker: 1, checker: 1, packer: 1}
"""


def error_lines(path: Path) -> list[str]:
    with pytest.raises(StoreopsError) as info:
        load_experiment(path)
    return str(info.value).splitlines()


# -- bad input: refused before any job runs ----------------------------------------------------


def test_empty_grid_is_refused(tmp_path):
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: []"))
    lines = error_lines(path)
    assert lines == [f"{display_path(path)}:3:16: vary.supervisors: no values, so the grid "
                     "is empty"]


def test_vary_nothing_is_an_empty_grid(tmp_path):
    path = write(tmp_path, BASE.replace("  supervisors: [1, 2]\n", "").replace(
        "vary:\n", "vary: {}\n"))
    assert error_lines(path) == [f"{display_path(path)}:2:7: vary: the grid is empty (vary "
                                 "at least one parameter, e.g. 'supervisors: {from: 8, to: "
                                 "16}')"]


def test_unknown_metric_is_refused_with_a_suggestion(tmp_path):
    path = write(tmp_path, BASE.replace("utilisation.picker", "utilisation.pickers"))
    assert error_lines(path) == [f"{display_path(path)}:6:14: targets.0.metric: unknown "
                                 "metric 'utilisation.pickers' (did you mean "
                                 "'utilisation.picker'?)"]


def test_missing_costs_are_refused(tmp_path):
    path = write(tmp_path, BASE.replace("  supervisors: 1\n", "").replace(
        "checker: 1, ", ""))
    lines = error_lines(path)
    rel = display_path(path)
    assert lines == [
        f"{rel}:8:3: costs: no cost for supervisors (give costs.supervisors: cost per person "
        "and year)",
        f"{rel}:8:15: costs: no cost for the order desk's checker (give "
        "costs.order_desk.checker)"]


def test_schema_errors_and_unknown_policy(tmp_path):
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: [1, 2]\n"
                                        "  policy: [reactive, cylce_135]"))
    assert error_lines(path) == [f"{display_path(path)}:4:22: vary.policy: the scenario has "
                                 "no policy 'cylce_135' (did you mean 'cycle_135'?)"]
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: [1, -2]"))
    assert error_lines(path)[0].startswith(f"{display_path(path)}:3:")


def test_visits_can_be_varied_only_for_a_policy_with_its_own_cycle(tmp_path):
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: [1, 2]\n"
                                        "  policy: [reactive]\n"
                                        "  visits_per_month.A: [2, 4]"))
    assert error_lines(path) == [f"{display_path(path)}:5:23: vary.visits_per_month.A: policy "
                                 "'reactive' has no cycle, so its visits per month cannot be "
                                 "set"]
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: [1, 2]\n"
                                        "  policy: [cycle_135]\n"
                                        "  visits_per_month.A: [2, 6]"))
    experiment = load_experiment(path)
    visits = {p.key: experiment.scenarios[p.key].policy("cycle_135").visits_per_month
              for p in experiment.points}
    assert visits["supervisors=1,policy=cycle_135,visits_per_month.A=6"] == (6.0, 2.0, 1.0)


def test_a_design_point_the_scenario_refuses_is_reported_before_running(tmp_path):
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "order_desk.picker: [0, 1]"))
    lines = error_lines(path)
    assert len(lines) == 1
    assert "design point order_desk.picker=0: team.order_desk.staff.picker is 0 but orders " \
           "arrive" in lines[0]


def test_cli_refuses_bad_input_with_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, BASE.replace("supervisors: [1, 2]", "supervisors: []"))
    result = CliRunner().invoke(cli, ["experiment", str(path), "--executor", "local", "--out",
                                      str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == (f"{display_path(path)}:3:16: vary.supervisors: no values, so "
                             "the grid is empty\n")
    assert not (tmp_path / "out" / "journal.jsonl").exists()


def test_a_refused_executor_leaves_no_out_folder(tmp_path):
    result = CliRunner().invoke(cli, ["experiment", str(SMALL), "--executor", "dask", "--out",
                                      str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == "--executor dask needs --scheduler ADDRESS (e.g. " \
                            "tcp://10.0.0.5:8786)\n"
    assert not (tmp_path / "out").exists()


# -- jobs: seeds, executors, journal, failures --------------------------------------------------


def test_points_share_random_numbers_and_replications_differ():
    """The seed depends on the replication only: every point meets the same problems and
    orders (common random numbers); replications differ."""
    experiment = load_experiment(SMALL)
    result = run_experiment(experiment, executor="local", report=False)
    by_rep: dict[int, set] = {}
    for st in result.points:
        for r, metrics in st.results.items():
            by_rep.setdefault(r, set()).add((metrics["problems"], metrics["needs"],
                                             metrics["orders"]))
    assert all(len(v) == 1 for v in by_rep.values())
    assert len({next(iter(v)) for v in by_rep.values()}) == len(by_rep) > 1


def test_results_do_not_depend_on_the_executor(tmp_path):
    experiment = load_experiment(SMALL)
    run_experiment(experiment, out_dir=tmp_path / "a", executor="local", report=False)
    run_experiment(experiment, out_dir=tmp_path / "b", executor="process", workers=2,
                   report=False)
    for name in ("results.csv", "points.csv", "recommendation.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


class Interrupting(InProcessRunner):
    """Runs ``limit`` jobs, then stops as a Ctrl-C would."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def run(self, jobs, done):
        for job in jobs:
            if self.limit == 0:
                raise KeyboardInterrupt
            self.limit -= 1
            super().run([job], done)


def test_an_interrupted_experiment_resumes_from_its_finished_jobs(tmp_path):
    experiment = load_experiment(SMALL)
    whole = run_experiment(experiment, out_dir=tmp_path / "whole", executor="local",
                           report=False)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, out_dir=tmp_path / "cut", runner=Interrupting(5),
                       report=False)
    journal = (tmp_path / "cut" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 1 + 5
    # a torn last line (a killed writer) is ignored: that job runs again
    with open(tmp_path / "cut" / "journal.jsonl", "a") as handle:
        handle.write('{"key": "supervisors=2,order_desk.pi')
    resumed = run_experiment(experiment, out_dir=tmp_path / "cut", executor="local",
                             report=False)
    assert resumed.replications_run == whole.replications_run - 5
    assert (tmp_path / "cut" / "results.csv").read_bytes() == \
        (tmp_path / "whole" / "results.csv").read_bytes()
    again = run_experiment(experiment, out_dir=tmp_path / "cut", executor="local",
                           report=False)
    assert again.replications_run == 0


class Exploding:
    """A scenario stand-in whose replication kills the worker process running it."""

    def policy(self, name):
        os._exit(3)


class Raising:
    def __init__(self) -> None:
        self.calls = 0

    def policy(self, name):
        self.calls += 1
        raise ValueError(f"bad policy {name} (call {self.calls})")


def test_a_failing_job_is_retried_once_then_reported():
    raising = Raising()
    seen = []
    InProcessRunner().run([Job("p", 0, "reactive", 1, raising)],
                          lambda job, metrics, error: seen.append((job.key, metrics, error)))
    assert raising.calls == 2
    assert seen == [("p", None, "ValueError: bad policy reactive (call 2)")]


def test_a_dying_worker_loses_only_its_own_job():
    experiment = load_experiment(SMALL)
    point = experiment.points[0]
    scenario = experiment.scenarios[point.key]
    jobs = [Job(point.key, r, point.policy, 5, scenario) for r in range(3)]
    jobs.insert(1, Job("boom", 0, point.policy, 5, Exploding()))
    seen = {}
    runner = ProcessRunner(2)
    try:
        runner.run(jobs, lambda job, metrics, error: seen.setdefault(
            (job.key, job.replication), (metrics, error)))
    finally:
        runner.close()
    assert seen[("boom", 0)] == (None, "the worker process died running this job (twice)")
    for r in range(3):
        metrics, error = seen[(point.key, r)]
        assert error is None and metrics["orders"] > 0


def test_failed_jobs_are_listed_in_the_outputs(tmp_path):
    class FailSome(InProcessRunner):
        def run(self, jobs, done):
            for job in jobs:
                if job.replication == 1 and job.key.startswith("supervisors=1"):
                    done(job, None, "RuntimeError: lost")
                else:
                    super().run([job], done)

    experiment = load_experiment(SMALL)
    run_experiment(experiment, out_dir=tmp_path, runner=FailSome(), report=False)
    rec = json.loads((tmp_path / "recommendation.json").read_text())
    failed = {(f["point"], f["replication"]) for f in rec["failed_jobs"]}
    assert failed == {("supervisors=1,order_desk.picker=1", 2),
                      ("supervisors=1,order_desk.picker=2", 2)}
    import csv

    with open(tmp_path / "points.csv", newline="") as handle:
        rows = {row["point"]: row for row in csv.DictReader(handle)}
    assert rows["supervisors=1,order_desk.picker=1"]["failed"] == "1"
    assert rows["supervisors=2,order_desk.picker=1"]["failed"] == "0"


# -- decisions ----------------------------------------------------------------------------------


def test_judge_known_answers():
    # mean 10, sd 1, n 4: t(0.95, 3) = 2.353, half width 1.1767
    values = [9.0, 11.0, 9.0, 11.0]
    sd = np.std(values, ddof=1)
    half = 2.353363 * sd / 2
    assert judge(values, "at_most", 10 + half + 0.01, 0.05).status == MET
    assert judge(values, "at_most", 10 + half - 0.01, 0.05).status == UNDECIDED
    assert judge(values, "at_most", 10 - half - 0.01, 0.05).status == FAILED
    assert judge(values, "at_least", 10 - half - 0.01, 0.05).status == MET
    assert judge([math.nan, 1.0], "at_most", 2, 0.05).status == UNDECIDED  # one value only


def test_subset_contains_the_best_at_the_stated_confidence():
    """Theory, not a seeded number: over many trials the true best is kept >= 1 - alpha."""
    rng = np.random.default_rng(1)
    means = [0.0, 0.3, 0.5, 1.0, 2.0]
    kept_best = 0
    sizes = []
    trials = 400
    for _ in range(trials):
        common = rng.normal(0, 1, size=10)  # common random numbers: correlated systems
        series = {f"s{i}": dict(enumerate(m + common + rng.normal(0, 0.5, size=10)))
                  for i, m in enumerate(means)}
        subset = subset_containing_best(series, "min", 0.9)
        kept_best += "s0" in subset
        sizes.append(len(subset))
    assert kept_best / trials >= 0.9 - 2 * math.sqrt(0.09 / trials)
    assert np.mean(sizes) < 3  # and it screens: the clearly worse ones go


def test_sequential_replication_stops_clear_points_early_with_the_same_answer(tmp_path):
    text = (DATA / "small.yaml").read_text()
    text = text.replace("replications: {initial: 2, max: 4, batch: 2}",
                        "replications: {initial: 3, max: 9, batch: 3}")
    sequential = load_experiment(write(tmp_path, text, "seq.yaml"))
    full = load_experiment(write(tmp_path, text.replace(
        "replications: {initial: 3, max: 9, batch: 3}", "replications: 9"), "full.yaml"))
    a = run_experiment(sequential, executor="local", report=False).recommendation
    b = run_experiment(full, executor="local", report=False).recommendation
    assert a["recommendation"]["point"] == b["recommendation"]["point"] == \
        "supervisors=1,order_desk.picker=2"
    assert a["replications"]["main"] < b["replications"]["main"] == 36


def test_bisect_runs_fewer_points_for_the_grid_answer(tmp_path):
    text = (DATA / "small.yaml").read_text()
    text = text.replace("supervisors: [1, 2]", "supervisors: [1, 2, 3]")
    text = text.replace("order_desk.picker: [1, 2]", "order_desk.picker: [1, 2, 3]")
    text = text.replace("replications: {initial: 2, max: 4, batch: 2}", "replications: 2")
    grid = run_experiment(load_experiment(write(tmp_path, text, "g.yaml")), executor="local",
                          report=False).recommendation
    search = run_experiment(load_experiment(write(tmp_path, text.replace(
        "confidence: 0.9", "confidence: 0.9\n  search: bisect"), "b.yaml")), executor="local",
        report=False).recommendation
    assert grid["recommendation"]["point"] == search["recommendation"]["point"] == \
        "supervisors=1,order_desk.picker=2"
    assert grid["runner_up"]["point"] == search["runner_up"]["point"]
    assert search["points_run"] < grid["points_run"] == 9


@pytest.mark.slow
def test_bisect_finds_the_grid_answer_without_running_every_point():
    grid = run_experiment(load_experiment(DATA / "grid.yaml"), executor="local",
                          report=False).recommendation
    search = run_experiment(load_experiment(DATA / "bisect.yaml"), executor="local",
                            report=False).recommendation
    assert grid["recommendation"]["point"] == search["recommendation"]["point"] == \
        "supervisors=2,order_desk.picker=2,policy=reactive"
    assert grid["runner_up"]["point"] == search["runner_up"]["point"]
    assert grid["binding_target"] == "utilisation.picker <= 0.2"
    assert search["points_run"] < grid["points_run"] == 24
    # sensitivity: the same answer holds with demand -20 % and +20 % on this tiny region
    assert [s["demand_factor"] for s in search["sensitivity"]] == [0.8, 1.2]
    assert all(s["current_recommendation"]["status"] == "met" for s in search["sensitivity"])


def test_sensitivity_points_keep_the_fixed_values_and_scale_demand(tmp_path):
    path = write(tmp_path, BASE.replace("vary:", "fixed: {horizon_days: 21, demand: 1.5}\nvary:"))
    experiment = load_experiment(path)
    point = experiment.points[0]
    base = experiment.scenarios[point.key]
    scaled, scenario = experiment.at_demand(point, 0.8)
    assert scaled.key == "supervisors=1,demand=1.2"
    assert base.horizon_days == scenario.horizon_days == 21
    assert scenario.order_desk.rate_per_day == pytest.approx(20 * 1.2)
    assert base.order_desk.rate_per_day == pytest.approx(20 * 1.5)
    assert [p.rate_per_year for p in scenario.problems] == pytest.approx(
        [p.rate_per_year * 0.8 for p in base.problems])


def test_cli_writes_the_three_files(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["experiment", str(SMALL), "--executor", "local",
                                      "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "recommended: supervisors=1,order_desk.picker=2 (staff cost 580,000 a year); " \
           "binding target: utilisation.picker <= 0.2" in result.output
    for name in ("results.parquet", "recommendation.json", "report.html", "results.csv"):
        assert (out / name).is_file(), name
    import pandas as pd

    frame = pd.read_parquet(out / "results.parquet")
    assert set(frame["point"]) == {p.key for p in load_experiment(SMALL).points}
    assert frame["utilisation.picker"].notna().all()

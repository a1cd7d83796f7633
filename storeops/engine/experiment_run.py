"""Running a staffing experiment: jobs, sequential replication, search, recommendation, files.

Every design point x replication is a job (``executors.Job``) run with the experiment's seed and
the replication number only, so all points share their random numbers (common random numbers)
and a job's result does not depend on where or when it ran. Results go to the journal as they
arrive; a rerun with the same out folder runs only the jobs the journal lacks.

**Sequential replication.** Each point starts with ``replications.initial`` replications. A
point is judged on every target (``selection.judge``: met, failed or undecided at the stated
confidence, Bonferroni over targets and looks). Only undecided points that could still change
the answer get ``batch`` more, up to ``max``: going through the points from the cheapest, every
undecided point until two points are shown to meet all targets (the recommendation and the
runner-up); decided points and dearer ones stop. Each round first serves the undecided points
below the second point that is feasible or leans that way (means on the right side), so dear
points wait until the cheap ones are settled; the stopping rule is unchanged.

**Search** (``search: bisect``). Assuming more staff never makes a target worse, each line of
the grid (all values fixed but the last varied team size) is bisected for its smallest feasible
head count, and results imply others: a point with at least the staff of a feasible point (same
other values) is feasible, one with at most the staff of an infeasible point is not. Then the
points are walked by cost, skipping those ruled out, until the two cheapest feasible ones have
data of their own (the runner-up must be measured, not inferred). Only these points run.

**Recommendation.** The cheapest point shown to meet every target; the runner-up is the next
cheapest; the binding target is the one the recommendation meets by the smallest relative
margin. Sensitivity: the same procedure over the recommendation's team sizes (its policy and
other values fixed) with demand x 0.8 and x 1.2. A subset containing the best point on the
``select`` metric (``selection.subset_containing_best``) is reported beside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executors import Job, Journal, make_runner
from .experiment import Experiment, Point
from .selection import (
    FAILED,
    MET,
    UNDECIDED,
    Verdict,
    binding,
    judge,
    overall,
    per_test_alpha,
    subset_containing_best,
    two_sided,
)

MAIN = "main"


@dataclass
class PointState:
    point: Point
    scenario: Any
    stage: str                                   # main, or "demand x0.8" for sensitivity
    wanted: int = 0                              # replications asked for so far
    results: dict[int, dict[str, float]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    status: str = UNDECIDED

    @property
    def n(self) -> int:
        return len(self.results)


@dataclass(frozen=True)
class ExperimentResult:
    experiment: Experiment
    points: tuple[PointState, ...]               # every point with data, main stage first
    recommendation: dict[str, Any]
    replications_run: int                        # jobs run by this call (not from the journal)
    replications_total: int                      # replications behind the answer
    files: tuple[str, ...]


class _Driver:
    def __init__(self, experiment: Experiment, runner, journal: Journal | None,
                 progress: Callable[..., None] | None) -> None:
        self.experiment = experiment
        self.runner = runner
        self.journal = journal
        self.progress = progress
        self.states: dict[str, PointState] = {}
        self.submitted = self.finished = self.ran = 0
        looks = 1
        if experiment.sequential:
            looks = 1 + math.ceil((experiment.max_replications - experiment.initial)
                                  / experiment.batch)
        self.alpha = per_test_alpha(experiment.confidence, len(experiment.targets), looks)

    def state(self, point: Point, scenario: Any, stage: str) -> PointState:
        if point.key not in self.states:
            self.states[point.key] = PointState(point, scenario, stage)
        return self.states[point.key]

    # -- running ------------------------------------------------------------------------------

    def ensure(self, wanted: dict[str, int]) -> None:
        """Bring each point to ``wanted`` replications (journal first, then jobs)."""
        exp = self.experiment
        jobs = []
        for key, count in wanted.items():
            st = self.states[key]
            st.wanted = max(st.wanted, count)
            for r in range(st.wanted):
                if r in st.results or r in st.errors:
                    continue
                if self.journal is not None and (key, r) in self.journal.results:
                    st.results[r] = self.journal.results[(key, r)]
                    continue
                jobs.append(Job(key, r, st.point.policy, exp.seed, st.scenario))
        if jobs:
            self.submitted += len(jobs)
            if self.progress is not None:
                self.progress("simulating", self.finished, self.submitted)
            self.runner.run(jobs, self._done)
        for key in wanted:
            self.judge(self.states[key])

    def _done(self, job: Job, metrics: dict[str, float] | None, error: str | None) -> None:
        st = self.states[job.key]
        if metrics is not None:
            st.results[job.replication] = metrics
        else:
            st.errors[job.replication] = error or "failed"
        if self.journal is not None:
            self.journal.record(job.key, job.replication, metrics, error)
        self.finished += 1
        self.ran += 1
        if self.progress is not None:
            self.progress("simulating", self.finished, self.submitted)

    # -- judging ------------------------------------------------------------------------------

    def values(self, st: PointState, metric: str) -> dict[int, float]:
        out = {}
        for r, metrics in sorted(st.results.items()):
            out[r] = self.metric(st, metrics, metric)
        return out

    def metric(self, st: PointState, metrics: dict[str, float], name: str) -> float:
        if name == "staff_cost":
            return st.point.staff_cost
        if name == "total_cost":
            sc = st.scenario
            years = (sc.horizon_days - sc.warmup_days) / 365.0
            lost = metrics.get("sales_lost", math.nan)
            return st.point.staff_cost + self.experiment.lost_sales_cost * lost / years
        return metrics.get(name, math.nan)

    def judge(self, st: PointState) -> None:
        st.verdicts = tuple(judge(list(self.values(st, t.metric).values()), t.sense, t.bound,
                                  self.alpha) for t in self.experiment.targets)
        st.status = overall(st.verdicts)

    def final(self, st: PointState) -> bool:
        exp = self.experiment
        return st.status != UNDECIDED or st.wanted >= exp.max_replications or \
            not exp.sequential

    def evaluate(self, keys: Sequence[str]) -> None:
        """Sequential replication on these points until each is decided or at the maximum."""
        exp = self.experiment
        self.ensure({k: max(exp.initial, self.states[k].wanted) for k in keys})
        while True:
            more = {k: min(exp.max_replications, self.states[k].wanted + exp.batch)
                    for k in keys if not self.final(self.states[k])}
            if not more:
                return
            self.ensure(more)

    # -- strategies ---------------------------------------------------------------------------

    def grid(self, keys: Sequence[str]) -> None:
        exp = self.experiment
        self.ensure({k: max(exp.initial, self.states[k].wanted) for k in keys})
        while exp.sequential:
            more = self.walk(keys, leaning=False)
            if not more:
                return  # the stopping rule: nothing undecided below the second feasible point
            # first the points below the second point that is feasible or leans that way, so
            # that dear points wait until the cheap ones are settled
            self.ensure(self.walk(keys, leaning=True) or more)

    def walk(self, keys: Sequence[str], *, leaning: bool) -> dict[str, int]:
        """Undecided points below the second feasible one (by cost), with their next counts.

        With ``leaning``, a point whose every undecided target has its mean on the right side
        counts as feasible for where the walk stops (it still gets its replications)."""
        exp = self.experiment
        more = {}
        shown = 0
        for key in sorted(keys, key=lambda k: (self.states[k].point.staff_cost, k)):
            st = self.states[key]
            if shown >= 2:
                break
            if st.status == MET:
                shown += 1
                continue
            if self.final(st):
                continue
            more[key] = min(exp.max_replications, st.wanted + exp.batch)
            if leaning and st.status == UNDECIDED and all(
                    v.status == MET or (v.status == UNDECIDED and v.slack >= 0)
                    for v in st.verdicts):
                shown += 1
        return more

    def bisect(self, keys: Sequence[str]) -> None:
        exp = self.experiment
        teams = exp.team_dimensions
        last = teams[-1]

        def context(st: PointState) -> tuple:
            return tuple((n, v) for n, v in st.point.values if n not in teams)

        def counts(st: PointState) -> tuple:
            return tuple(st.point.value(n) for n in teams)

        lines: dict[tuple, list[str]] = {}
        for key in keys:
            st = self.states[key]
            line = (context(st), counts(st)[:-1])
            lines.setdefault(line, []).append(key)
        for members in lines.values():
            members.sort(key=lambda k: self.states[k].point.value(last))
        bounds = {line: [0, len(members) - 1] for line, members in lines.items()}
        known: dict[str, str] = {}

        def inferred(key: str) -> str | None:
            if key in known:
                return known[key]
            st = self.states[key]
            here = counts(st)
            for other, status in known.items():
                ot = self.states[other]
                if context(ot) != context(st):
                    continue
                there = counts(ot)
                if status == MET and all(a <= b for a, b in zip(there, here, strict=True)):
                    return MET
                if status != MET and all(a >= b for a, b in zip(there, here, strict=True)):
                    return FAILED
            return None

        while True:
            asked = []
            for line, members in lines.items():
                lo_hi = bounds[line]
                while lo_hi[0] <= lo_hi[1]:
                    mid = (lo_hi[0] + lo_hi[1]) // 2
                    status = inferred(members[mid])
                    if status is None:
                        asked.append(members[mid])
                        break
                    if status == MET:
                        lo_hi[1] = mid - 1
                    else:
                        lo_hi[0] = mid + 1
            if not asked:
                break
            self.evaluate(asked)
            for key in asked:
                known[key] = self.states[key].status
        # the line minima are known; make sure the two cheapest feasible points (the answer and
        # the runner-up) have data: walk by cost, skipping what the results rule out
        shown = 0
        for key in sorted(keys, key=lambda k: (self.states[k].point.staff_cost, k)):
            if shown >= 2:
                break
            if key not in known:
                if inferred(key) == FAILED:
                    continue
                self.evaluate([key])
                known[key] = self.states[key].status
            if self.states[key].status == MET:
                shown += 1

    def run(self, keys: Sequence[str]) -> None:
        if self.experiment.search == "bisect":
            self.bisect(keys)
        else:
            self.grid(keys)


def run_experiment(experiment: Experiment, *, out_dir: str | None = None,
                   executor: str = "process", scheduler: str | None = None,
                   workers: int | None = None, runner: Any = None,
                   progress: Callable[..., None] | None = None,
                   report: bool = True) -> ExperimentResult:
    """Run an experiment and write its files to ``out_dir`` (see docs/experiments.md).

    ``executor`` is ``local`` (this process), ``process`` (one process per core) or ``dask``
    (``scheduler`` is the address of a Dask scheduler); ``runner`` overrides it (tests).
    """
    from .files import output_dir

    own = runner is None
    if own:  # first: an executor refused (no scheduler there) leaves no out folder behind
        runner = make_runner(executor, scheduler, workers)
    journal = None
    try:
        folder = output_dir(out_dir) if out_dir is not None else None
        journal = Journal(folder / "journal.jsonl", experiment.fingerprint()) if folder else None
        driver = _Driver(experiment, runner, journal, progress)
        keys = []
        for point in experiment.points:
            driver.state(point, experiment.scenarios[point.key], MAIN)
            keys.append(point.key)
        driver.run(keys)
        recommendation = _recommend(driver, keys)
        sensitivity = []
        best = recommendation.get("recommendation")
        if best is not None:
            sensitivity = _sensitivity(driver, experiment.point(best["point"]))
        recommendation["sensitivity"] = sensitivity
    finally:
        if own:
            runner.close()
        if journal is not None:
            journal.close()
    states = tuple(st for st in driver.states.values() if st.n or st.errors)
    recommendation["replications"] = {
        "run_now": driver.ran,
        "total": sum(st.n for st in states),
        "main": sum(st.n for st in states if st.stage == MAIN),
        "full_grid": len(experiment.points) * experiment.max_replications,
    }
    files: list[str] = []
    if folder is not None:
        files = _write(experiment, driver, states, recommendation, folder, report)
    return ExperimentResult(experiment, states, recommendation, driver.ran,
                            sum(st.n for st in states), tuple(files))


def _recommend(driver: _Driver, keys: Sequence[str]) -> dict[str, Any]:
    exp = driver.experiment
    states = [driver.states[k] for k in keys]
    evaluated = [st for st in states if st.n]
    by_cost = sorted(evaluated, key=lambda st: (st.point.staff_cost, st.point.key))
    feasible = [st for st in by_cost if st.status == MET]
    out: dict[str, Any] = {
        "experiment": exp.id, "scenario": exp.scenario.id,
        "scenario_sha256": exp.scenario.sha256, "experiment_sha256": exp.sha256,
        "packs": [{"key": k, "id": i, "version": v, "sha256": s} for k, i, v, s in exp.packs],
        "seed": exp.seed, "confidence": exp.confidence, "search": exp.search,
        "targets": [{"metric": t.metric, t.sense: t.bound, "label": t.label}
                    for t in exp.targets],
        "points": len(exp.points), "points_run": len(evaluated),
    }
    out["recommendation"] = _describe(driver, feasible[0]) if feasible else None
    out["runner_up"] = _describe(driver, feasible[1]) if len(feasible) > 1 else None
    if feasible:
        cheaper = [st for st in by_cost if st.point.staff_cost < feasible[0].point.staff_cost
                   and st.status == UNDECIDED]
        out["cheaper_undecided"] = [st.point.key for st in cheaper]
        out["binding_target"] = out["recommendation"]["binding_target"]
    else:
        out["binding_target"] = None
        out["why_none"] = ("no design point was shown to meet every target at "
                           f"{exp.confidence:.0%} confidence; see points.csv for the closest")
    series = {st.point.key: driver.values(st, exp.select_metric) for st in evaluated}
    subset = subset_containing_best(series, exp.select_goal, exp.confidence)
    out["best_subset"] = {"metric": exp.select_metric, "goal": exp.select_goal,
                          "confidence": exp.confidence, "points": subset}
    failed = [{"point": st.point.key, "replication": r + 1, "error": e}
              for st in states for r, e in sorted(st.errors.items())]
    out["failed_jobs"] = failed
    return out


def _describe(driver: _Driver, st: PointState) -> dict[str, Any]:
    exp = driver.experiment
    b = binding(st.verdicts)
    return {
        "point": st.point.key, "policy": st.point.policy,
        "values": dict(st.point.values), "staff": dict(st.point.staff),
        "staff_cost_per_year": st.point.staff_cost, "replications": st.n,
        "targets": [{"metric": t.metric, "bound": t.bound, "sense": t.sense,
                     "mean": _clean(v.mean), "low": _clean(v.low), "high": _clean(v.high),
                     "status": v.status} for t, v in zip(exp.targets, st.verdicts, strict=True)],
        "binding_target": exp.targets[b].describe() if b >= 0 else None,
    }


def _sensitivity(driver: _Driver, best: Point) -> list[dict[str, Any]]:
    """The procedure again with demand scaled, over the recommendation's team sizes."""
    exp = driver.experiment
    teams = exp.team_dimensions
    same = [p for p in exp.points
            if all(v == best.value(n) for n, v in p.values if n not in teams)]
    out = []
    for factor in exp.sensitivity:
        stage = f"demand x{factor:g}"
        keys = []
        mine = None
        for point in same:
            scaled, scenario = exp.at_demand(point, factor)
            driver.state(scaled, scenario, stage)
            keys.append(scaled.key)
            if point.key == best.key:
                mine = scaled.key
        driver.run(keys)
        if mine is not None and driver.states[mine].n == 0:
            driver.evaluate([mine])
        found = sorted((driver.states[k] for k in keys if driver.states[k].status == MET
                        and driver.states[k].n),
                       key=lambda st: (st.point.staff_cost, st.point.key))
        entry: dict[str, Any] = {"demand_factor": factor,
                                 "recommendation": _describe(driver, found[0]) if found else None}
        if mine is not None:
            entry["current_recommendation"] = _describe(driver, driver.states[mine])
            entry["current_recommendation"]["status"] = driver.states[mine].status
        out.append(entry)
    return out


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


# -- files --------------------------------------------------------------------------------------


def _write(experiment: Experiment, driver: _Driver, states, recommendation, folder: Path,
           report: bool) -> list[str]:
    import pandas as pd

    from .files import atomic_path

    params = [name for name, _ in experiment.vary]
    if any(st.stage != MAIN for st in states) and "demand" not in params:
        params.append("demand")
    order = {p.key: i for i, p in enumerate(experiment.points)}
    ordered = sorted(states, key=lambda st: (st.stage != MAIN, st.stage,
                                             order.get(st.point.key, len(order)), st.point.key))
    metric_names = sorted({m for st in ordered for res in st.results.values() for m in res})
    rows = []
    for st in ordered:
        for r, metrics in sorted(st.results.items()):
            row = {"stage": st.stage, "point": st.point.key}
            for name in params:
                row[name] = st.point.value(name, 1.0 if name == "demand" else None)
            row["policy"] = st.point.policy
            row["staff_cost"] = st.point.staff_cost
            row["replication"] = r + 1
            row["total_cost"] = driver.metric(st, metrics, "total_cost")
            for name in metric_names:
                row[name] = metrics.get(name, math.nan)
            rows.append(row)
    frame = pd.DataFrame(rows)
    files = []
    with atomic_path(folder / "results.parquet") as temp:
        frame.to_parquet(temp, index=False)
    files.append(str(folder / "results.parquet"))
    with atomic_path(folder / "results.csv") as temp:
        frame.to_csv(temp, index=False, lineterminator="\n", float_format=None)
    files.append(str(folder / "results.csv"))
    with atomic_path(folder / "points.csv") as temp:
        temp.write_text(points_csv(experiment, driver, ordered, params), encoding="utf-8")
    files.append(str(folder / "points.csv"))
    with atomic_path(folder / "recommendation.json") as temp:
        temp.write_text(json.dumps(recommendation, indent=2, sort_keys=False, default=str)
                        + "\n", encoding="utf-8")
    files.append(str(folder / "recommendation.json"))
    if report:
        from .report import experiment_report

        html = experiment_report(summarise_points(experiment, driver, ordered, params),
                                 recommendation, experiment)
        with atomic_path(folder / "report.html") as temp:
            temp.write_text(html, encoding="utf-8")
        files.append(str(folder / "report.html"))
    return files


def summarise_points(experiment: Experiment, driver: _Driver, states, params) -> list[dict]:
    """One plain record per point: values, cost, status, two-sided intervals of the metrics the
    report draws (targets, utilisations, costs)."""
    shown = [t.metric for t in experiment.targets]
    metrics = {m for st in states for res in st.results.values() for m in res}
    shown += sorted(m for m in metrics if m.startswith("utilisation."))
    shown += ["staff_cost", "total_cost", experiment.select_metric]
    shown = list(dict.fromkeys(shown))
    out = []
    for st in states:
        record = {"stage": st.stage, "point": st.point.key, "policy": st.point.policy,
                  "values": {n: st.point.value(n, 1.0 if n == "demand" else None)
                             for n in params},
                  "staff_cost": st.point.staff_cost, "n": st.n, "status": st.status,
                  "failed": len(st.errors), "metrics": {}}
        for name in shown:
            mean, low, high, n = two_sided(list(driver.values(st, name).values()),
                                           experiment.confidence)
            record["metrics"][name] = (mean, low, high, n)
        record["verdicts"] = [v.status for v in st.verdicts]
        out.append(record)
    return out


def points_csv(experiment: Experiment, driver: _Driver, states, params) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["stage", "point", *params, "policy", "staff_cost", "replications", "failed",
              "status"]
    for t in experiment.targets:
        header += [f"{t.metric}.mean", f"{t.metric}.bound_low", f"{t.metric}.bound_high",
                   f"{t.metric}.verdict"]
    writer.writerow(header)
    for st in states:
        row = [st.stage, st.point.key,
               *(st.point.value(n, 1.0 if n == "demand" else "") for n in params),
               st.point.policy, repr(st.point.staff_cost), st.n, len(st.errors), st.status]
        for v in st.verdicts:
            row += [_num(v.mean), _num(v.low), _num(v.high), v.status]
        writer.writerow(row)
    return buffer.getvalue()


def _num(value: float) -> str:
    return "" if value is None or math.isnan(value) or math.isinf(value) else repr(float(value))


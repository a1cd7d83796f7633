"""Staffing experiment speed (issue 9): executors and sequential replication.

A 50-point sweep of the baseline scenario (10 supervisor counts x pickers 2..6, the 135
cycle) with 20 replications per point, run

1. in this process (``local``),
2. on local processes, one per core (``process``),
3. on a local Dask cluster, one single-threaded worker process per core, with default worker
   settings (``dask``), then again with the workers' statistical profiler off
   (``dask-noprofile``: the profiler samples the task's stack every 10 ms, which slows a
   pure-Python replication, docs/experiments.md "Dask workers"),

each from an empty out folder (no journal to resume from), checking that all three write the
same results; then the same experiment with sequential replication (5 to start, 5 more at a
time up to 20, process executor), checking it recommends what the full grid recommends.

Targets (issue 9): process >= 1.8x faster than in-process on 2 cores; Dask within 15 % of the
process executor; sequential >= 2x fewer replications for the same recommendation.

    .venv/bin/python benchmarks/bench_experiment.py                 # 30-day horizon
    .venv/bin/python benchmarks/bench_experiment.py --horizon 365 --warmup 30 \
        --supervisors 12:21 --keep DIR --skip ...                  # the full year, leg by leg

The horizon is cut to 30 days by default (5 days warm-up), with supervisors 6..15. Over the
full year needs pile up and 15 supervisors answer only 66 % of them within target, so no point
of that grid meets the targets and the sequential leg would compare two empty answers: the
full-year sweep uses ``--supervisors 12:21``, whose cheapest passing point lies inside it.

One replication of the full year takes about 5 s here, so the full-year sweep takes about
an hour and a half in-process, 47 minutes with the process executor, as long per Dask run and
about 20 minutes sequential: run its legs in separate invocations with ``--keep DIR --skip
...``. With ``--keep``, each leg's time is kept in ``DIR/times.json`` (per horizon, warm-up,
replications and supervisor range) and the ratios use every leg measured so far; a leg that
runs again starts from an empty folder. Each leg's entry also names the commit it ran
(``_runs``): legs add up only on the same code, so run a late leg from a worktree of that
commit (``git worktree add DIR COMMIT``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storeops.engine.experiment import load_experiment  # noqa: E402
from storeops.engine.experiment_run import run_experiment  # noqa: E402

EXPERIMENT = """experiment:
  id: bench_sweep
  scenario: {scenario}
  seed: 5
  confidence: 0.95
fixed: {{horizon_days: {horizon}, warmup_days: {warmup}, need_target_days: 2,
        policy: cycle_135}}
vary:
  supervisors: {{from: {low}, to: {high}}}
  order_desk.picker: [2, 3, 4, 5, 6]
replications: {replications}
targets:
  - {{metric: need_within_target_share, at_least: 0.7}}
  - {{metric: order_lead_hours_p90, at_most: 52}}
  - {{metric: utilisation.supervisor, at_most: 1.0}}
costs:
  supervisors: 180000
  order_desk: {{customer_service: 80000, picker: 60000, checker: 60000, packer: 60000}}
sensitivity: {{demand: []}}
"""


def experiment(folder: Path, name: str, args, replications: str):
    path = folder / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(scenario=ROOT / "scenarios" / "baseline.yaml",
                                      horizon=args.horizon, warmup=args.warmup,
                                      low=args.supervisors[0], high=args.supervisors[1],
                                      replications=replications), encoding="utf-8")
    return load_experiment(path)


def timed(label: str, exp, out: Path, **options):
    start = time.perf_counter()
    result = run_experiment(exp, out_dir=out, report=False, **options)
    seconds = time.perf_counter() - start
    rec = result.recommendation
    print(f"{label:<15} {seconds:8.1f} s  {result.replications_run:5d} replications  "
          f"recommended {rec['recommendation']['point'] if rec['recommendation'] else None}",
          flush=True)
    return seconds, result


def code_version() -> str:
    """The commit the benchmark runs (with '+changes' when the tree differs from it)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "storeops"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def supervisor_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    try:
        low_n, high_n = int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FROM:TO, got {text!r}") from None
    if not 1 <= low_n <= high_n:
        raise argparse.ArgumentTypeError(f"expected 1 <= FROM <= TO, got {text!r}")
    return low_n, high_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--supervisors", type=supervisor_range, default=(6, 15),
                        metavar="FROM:TO", help="the supervisor counts swept (10 of them)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["local", "process", "dask", "dask-noprofile", "sequential"])
    parser.add_argument("--keep", metavar="DIR",
                        help="work in DIR and keep it (journals, results) instead of a temp dir")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench_experiment."))
    try:
        full = experiment(folder, "full", args, str(args.replications))
        low, high = args.supervisors
        print(f"{len(full.points)} points (supervisors {low}..{high}) x {args.replications} "
              f"replications, horizon {args.horizon:g} days, {workers} cores", flush=True)
        times_file = folder / "times.json" if args.keep else None
        setting = f"horizon {args.horizon:g}, warmup {args.warmup:g}, " \
            f"replications {args.replications}" + \
            ("" if args.supervisors == (6, 15) else f", supervisors {low}..{high}")
        kept = json.loads(times_file.read_text()) if times_file and times_file.exists() else {}
        times = {k: v for k, v in kept.get(setting, {}).items() if not k.startswith("_")}
        if times:
            print(f"legs measured before (kept in {times_file}): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)
        results = {}

        def timed_leg(name: str, label: str, **options):
            shutil.rmtree(folder / name, ignore_errors=True)  # no journal to resume from
            seconds, result = timed(label, full, folder / name, **options)
            if times_file is not None:
                kept.setdefault(setting, {})[name] = seconds
                # legs from different sessions only add up on the same code: say which
                kept[setting].setdefault("_runs", {})[name] = {
                    "commit": code_version(), "finished": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                        time.gmtime())}
                times_file.write_text(json.dumps(kept, indent=2), encoding="utf-8")
            return seconds, result
        if "local" not in args.skip:
            times["local"], results["local"] = timed_leg("local", "in-process",
                                                         executor="local")
        if "process" not in args.skip:
            times["process"], results["process"] = timed_leg("process", "process",
                                                             executor="process")
        for name, settings in (("dask", {}), ("dask-noprofile", {
                "distributed.worker.profile.enabled": False})):
            if name in args.skip:
                continue
            import dask
            from distributed import LocalCluster

            # default worker settings first (what a user's `dask worker` runs), then without
            # the statistical profiler, which competes with a pure-Python job for the GIL
            with dask.config.set(settings), LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None) as cluster:
                times[name], results[name] = timed_leg(name, name, executor="dask",
                                                       scheduler=cluster.scheduler_address)
        names = [n for n in ("local", "process", "dask", "dask-noprofile")
                 if (folder / n / "results.csv").exists()]
        for name in names[1:]:
            same = (folder / name / "results.csv").read_bytes() == \
                (folder / names[0] / "results.csv").read_bytes()
            print(f"{name} results identical to {names[0]}: {same}")
        if "local" in times and "process" in times:
            print(f"process speed-up over in-process: {times['local'] / times['process']:.2f}x "
                  "(target >= 1.8x on 2 cores)")
        for name, how in (("dask", "default worker settings"),
                          ("dask-noprofile", "workers' profiler off")):
            if "process" in times and name in times:
                print(f"{name} / process time: {times[name] / times['process']:.2f} "
                      f"({how}; target <= 1.15)")
        if "sequential" not in args.skip:
            seq = experiment(folder, "sequential", args,
                             f"{{initial: {min(5, args.replications)}, max: {args.replications}, "
                             f"batch: {min(5, args.replications)}}}")
            shutil.rmtree(folder / "sequential", ignore_errors=True)
            _, result = timed("sequential", seq, folder / "sequential", executor="process")
            rec = result.recommendation
            full_rec = next(iter(results.values())).recommendation if results else None
            if full_rec is None and names:  # the full grid ran in an earlier invocation
                full_rec = json.loads((folder / names[0] / "recommendation.json").read_text())
            used = rec["replications"]["main"]
            grid = len(full.points) * args.replications
            print(f"sequential: {used} replications, full grid {grid}: {grid / used:.2f}x "
                  "fewer (target >= 2x)")
            if full_rec is not None and full_rec["recommendation"] is None:
                print("the full grid recommends nothing, so the comparison says little: "
                      "widen --supervisors")
            if full_rec is not None:
                same = (rec["recommendation"] or {}).get("point") == \
                    (full_rec["recommendation"] or {}).get("point")
                print(f"same recommendation as the full grid: {same} "
                      f"({(full_rec['recommendation'] or {}).get('point')})")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

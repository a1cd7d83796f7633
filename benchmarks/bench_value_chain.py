"""Issue 5 benchmark: the whole Rossmann file through the value chain and a month plan.

What ``storeops run`` and ``storeops plan`` do, end to end, on the real file
(1,017,209 store-days, 1,115 stores): read and check the rows through the
shipped mapping, build store-month and store-week KPI facts, classify every
store-month into tiers, fire the six steps' checks (columnar, trail on, SQLite),
write every output, then plan the month after the last one within the example
team. Reports wall time per phase and the process's peak resident memory
(``resource.getrusage``). Target: under 30 s and under 2 GB on 2 cores. Run:
``python benchmarks/bench_value_chain.py [--data FILE] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from storeops.engine import adapters, planning, valuechain
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "rossmann" / "train.csv.gz"
TARGET_SECONDS = 30.0
TARGET_MIB = 2048


def run_once(data: Path, out: Path) -> tuple[dict[str, float], dict[str, int]]:
    times: dict[str, float] = {}
    start = time.perf_counter()
    pack = load_pack(ROOT / "rules" / "value_chain.yaml")
    mapping = adapters.load_mapping(ROOT / "mappings" / "rossmann_daily.yaml")
    team = planning.load_team(ROOT / "teams" / "rossmann_team.yaml")
    times["load pack, mapping, team"] = time.perf_counter() - start
    mark = time.perf_counter()
    analysis = valuechain.analyse(pack, data, mapping)
    times["read + check rows, KPI facts (months, weeks)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with open_trail(out / "trail.sqlite", command="bench", clock="wall") as sink:
        result = valuechain.evaluate(pack, analysis, sink)
        times["tiers + six steps (columnar) + trail records"] = time.perf_counter() - mark
        mark = time.perf_counter()
    times["trail flush (SQLite)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    valuechain.write_outputs(out, analysis, result)
    times["write outputs (CSV + Parquet)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    last = analysis.months["period"].max()
    month = planning.shift_month(last, 1)
    plan = planning.plan_month(
        result.months[result.months["period"] == last],
        result.actions[result.actions["period"] == last],
        valuechain.support_table(valuechain.section_of(pack)), team, month)
    planning.write_plan(plan, out)
    times[f"plan {month} (greedy schedule, 8 supervisors)"] = time.perf_counter() - mark
    counts = {"store-days": int(analysis.months["days"].sum()),
              "store-months": len(analysis.months), "store-weeks": len(analysis.weeks),
              "firings": result.firings, "actions": len(result.actions),
              "visits scheduled": len(plan.week_schedule),
              "unserved rows": len(plan.unserved)}
    return times, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not present", file=sys.stderr)
        return 0
    best: dict[str, float] | None = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            times, counts = run_once(args.data, Path(folder))
        if best is None or sum(times.values()) < sum(best.values()):
            best = times
    assert best is not None
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = sum(best.values())
    print(f"value chain + plan on {args.data.name}: "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    for phase, seconds in best.items():
        print(f"  {phase:<48} {seconds:7.2f} s")
    print(f"  {'total':<48} {total:7.2f} s   (target {TARGET_SECONDS:.0f} s: "
          f"{'met' if total < TARGET_SECONDS else 'MISSED'})")
    print(f"  {'peak resident memory':<48} {peak_mib:7.0f} MiB (target {TARGET_MIB} MiB: "
          f"{'met' if peak_mib < TARGET_MIB else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue 6 benchmark: the full Olist replay with both event logs written.

Times what ``storeops replay`` does on the real export (99,441 orders, 112,650
items): reading, anomalies, stage times, fits, orders.csv, stage_times.csv,
durations.json, events.xes, events.ocel.json, and the trail (every order's
transitions and the exception rules it triggers). Reports wall time per phase, the peak resident
memory of the process (``resource.getrusage``; tracemalloc would slow pandas
down several-fold and miss memory held by C code) and the output sizes. Target:
under 20 s on 2 cores. Run:
``python benchmarks/bench_replay.py [--data FOLDER] [--out FOLDER] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from storeops.engine import replay as rp
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "olist"
MAPPING = ROOT / "mappings" / "olist_orders.yaml"
PACK = load_pack(ROOT / "rules" / "order_fulfilment.yaml")


def run_once(data: Path, out: Path) -> dict[str, float]:
    """One full replay, timed phase by phase (the same steps as replay_to_dir)."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    mapping = rp.load_mapping(MAPPING)
    orders, items = rp.resolve_inputs(mapping, None, None, data)
    result = rp.replay(orders, items, mapping)
    times["replay (read, anomalies, stages, fits)"] = time.perf_counter() - start
    mark = time.perf_counter()
    rp.replay_tables(result, out)
    times["orders.csv + stage_times.csv + durations.json"] = time.perf_counter() - mark
    mark = time.perf_counter()
    rp.write_xes(result.events, out / "events.xes")
    times["events.xes"] = time.perf_counter() - mark
    mark = time.perf_counter()
    rp.write_ocel(result.events, result.orders, result.items, out / "events.ocel.json")
    times["events.ocel.json"] = time.perf_counter() - mark
    mark = time.perf_counter()
    trail_path = out / "trail.sqlite"
    trail_path.unlink(missing_ok=True)
    with open_trail(trail_path, command="bench_replay") as trail:
        _actions, records = rp.record_replay(result, mapping, PACK, trail)
    times[f"trail ({records:,} records: transitions and rules)"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: a temporary one, removed after)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if not (args.data / "olist_orders_dataset.csv.gz").exists():
        print(f"Olist data not found in {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as temp:
        out = args.out or Path(temp)
        out.mkdir(parents=True, exist_ok=True)
        runs = [run_once(args.data, out) for _ in range(args.repeat)]
        sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())
                 if not p.name.startswith(".")}
    best = min(runs, key=lambda r: r["total"])
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / 1024 / (1024 if sys.platform == "darwin" else 1)
    print(f"Olist replay, best of {args.repeat}:")
    for phase, seconds in best.items():
        print(f"  {phase:<48} {seconds:7.2f} s")
    print(f"  peak resident memory {peak_mib:,.0f} MiB")
    for name, size in sizes.items():
        print(f"  {name:<24} {size / 2**20:8.1f} MiB")
    verdict = "within" if best["total"] < 20 else "OVER"
    print(f"{verdict} the 20 s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 7 benchmark: every Olist customer through segments, lifetime value and complaints.

Times what ``storeops run --pack rules/customers.yaml --input ../shared/data/olist --mapping
mappings/olist_customers.yaml`` does, phase by phase: loading the pack and the mapping, reading
and joining the five files (99,441 customer rows -> 96,096 people, 99,441 orders, 103,886
payments, 112,650 items, 99,159 reviews), the engine (segment table on every customer, the
complaint table on every case), the SQLite trail with every firing, and the five CSV files.
Reports wall time per phase and the peak resident memory of the process
(``resource.getrusage``). Target: under 15 s on 2 cores. Run:
``python benchmarks/bench_customers.py [--data FOLDER] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from storeops.engine import customer_base, customers
from storeops.engine.packs import load_pack
from storeops.engine.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "olist"
PACK = ROOT / "rules" / "customers.yaml"
MAPPING = ROOT / "mappings" / "olist_customers.yaml"
TARGET_SECONDS = 15.0


class PhaseClock(Progress):
    """A progress sink that notes when each phase starts."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        if not self.marks or self.marks[-1][0] != phase:
            self.marks.append((phase, time.perf_counter()))


def run_once(data: Path, out: Path) -> tuple[dict[str, float], int]:
    start = time.perf_counter()
    clock = PhaseClock()
    clock("load the pack and the mapping")
    pack = load_pack(PACK)
    section = pack.sections["customers"]
    mapping = customer_base.load_mapping(MAPPING)
    files = customer_base.resolve_files(mapping, data)
    base = customer_base.read_base(files, mapping, section, clock)
    trail = out / "trail.sqlite"
    trail.unlink(missing_ok=True)
    summary = customers.run_base(pack, section, base, out, trail=trail, command="bench",
                                 progress=clock, input_path=data)
    end = time.perf_counter()
    times = {}
    for (phase, at), (_, until) in zip(clock.marks, [*clock.marks[1:], ("end", end)],
                                       strict=True):
        times[phase] = times.get(phase, 0.0) + until - at
    times["total"] = end - start
    return times, summary.firings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if not (args.data / "olist_customers_dataset.csv.gz").exists():
        print(f"Olist data not found in {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as temp:
        runs = [run_once(args.data, Path(temp)) for _ in range(args.repeat)]
        sizes = {p.name: p.stat().st_size for p in sorted(Path(temp).iterdir())}
    best, firings = min(runs, key=lambda r: r[0]["total"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_mib = peak / 1024 / (1024 if sys.platform == "darwin" else 1)
    print(f"Olist customers (segments, lifetime value, complaints, trail on), best of "
          f"{args.repeat}; {firings:,} firings recorded:")
    for phase, seconds in best.items():
        print(f"  {phase:<52} {seconds:7.2f} s")
    verdict = "within" if best["total"] < TARGET_SECONDS else "OVER"
    print(f"  target {TARGET_SECONDS:.0f} s: {verdict}")
    print(f"  peak memory (max RSS) {peak_mib:,.0f} MiB")
    for name, size in sizes.items():
        print(f"  {name:<20} {size / 2**20:8.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

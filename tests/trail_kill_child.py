"""Child process for test_trail_kill: write a trail until killed.

Usage: python trail_kill_child.py PATH BATCH_SIZE

Records one firing per fact, forever, and prints "ready" once the first batch
is written, so that the parent kills a writer that is well into its run. It
stops by itself after a cap, or when its parent is gone, so that a failed test
never leaves a process filling the disk.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storeops.engine.trail import RuleRef, open_trail

RULE = RuleRef(
    pack_id="storeops-core",
    pack_version="1.4.2",
    pack_sha256="a" * 64,
    table_id="replenishment",
    rule_id="R-017",
    source_file="rules/replenishment.yaml",
    source_line=42,
    fields=("stock", "region", "on_order"),
    outputs='[{"action": "KZB-10"}]',
    label_zh="低于安全库存时补货",
)
MAX_FACTS = 5_000_000


def main(path: str, batch_size: int) -> None:
    parent = os.getppid()
    with open_trail(path, clock="sim", batch_size=batch_size) as trail:
        key = trail.rule(RULE)
        for fact in range(MAX_FACTS):
            seq = trail.add(
                fact * 0.5,
                f"S{fact % 97:03d}-SKU{fact:07d}",
                key,
                (fact % 50, ("华东", "North", "West")[fact % 3], fact % 2 == 0),
            )
            if seq % batch_size == 0:  # a batch was just written
                if seq == batch_size:
                    print("ready", flush=True)
                if os.getppid() != parent:
                    return


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Crash safety: SIGKILL a trail writer at random moments, then audit what is left.

A child process (trail_kill_child.py) writes batches of 200 records as fast as
it can; the test kills it after a seeded random delay, so kills land inside
add(), inside the formatting of a batch and inside the write itself. What must
hold afterwards: the file is sound, the killed run holds whole batches
(SQLite) or whole lines (JSONL) numbered 1..N without gaps, and the next
writer can open the file and append run R2.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storeops.engine.trail import RuleRef, list_runs, open_trail, read_trail

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL and select on pipes")

CHILD = Path(__file__).with_name("trail_kill_child.py")
BATCH = 200
TRIALS = 4
EXTRA = RuleRef("p", "1", "0" * 64, "t", "after-kill", "f.yaml", 1, ("x",), "[]")


def _kill_writer(path: Path, delay: float) -> None:
    """Start the child, wait for its first batch, let it run ``delay`` more seconds, kill it."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline() if ready else b""
        assert line == b"ready\n", (
            child.stderr.read().decode() if child.poll() is not None else line
        )
        select.select([], [], [], delay)  # sleep without the test touching the clock
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _append_after_kill(path: Path) -> None:
    with open_trail(path) as trail:
        assert trail.run_id == "R2"
        key = trail.rule(EXTRA)
        for i in range(3):
            trail.add(0.0, f"after-{i}", key, (i,))
    after = list(read_trail(path, run_id="R2"))
    assert [(r["seq"], r["subject"]) for r in after] == [
        (1, "after-0"),
        (2, "after-1"),
        (3, "after-2"),
    ]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_sqlite_writer_leaves_whole_batches(tmp_path, trial):
    delay = random.Random(f"sqlite-{trial}").uniform(0.0, 0.12)
    path = tmp_path / "trail.db"
    _kill_writer(path, delay)

    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        seqs = [
            seq for (seq,) in con.execute("SELECT seq FROM trail WHERE run_id = 'R1' ORDER BY seq")
        ]
    finally:
        con.close()
    assert len(seqs) >= BATCH
    assert len(seqs) % BATCH == 0
    assert seqs == list(range(1, len(seqs) + 1))
    assert list_runs(path)[0]["records"] is None  # killed: never marked finished

    _append_after_kill(path)
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    assert [(r["run_id"], r["records"]) for r in list_runs(path)] == [("R1", None), ("R2", 3)]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_jsonl_writer_leaves_whole_lines(tmp_path, trial):
    delay = random.Random(f"jsonl-{trial}").uniform(0.0, 0.12)
    path = tmp_path / "trail.jsonl"
    _kill_writer(path, delay)

    seqs = [r["seq"] for r in read_trail(path)]  # every line read back parses
    assert len(seqs) >= BATCH
    assert seqs == list(range(1, len(seqs) + 1))

    _append_after_kill(path)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a whole line
    records = [json.loads(line) for line in lines[:-1]]  # no torn line survived
    assert [r["seq"] for r in records if r["run_id"] == "R1"] == seqs
    assert [r["run_id"] for r in records[-3:]] == ["R2"] * 3

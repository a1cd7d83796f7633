"""Progress reporting for long work, kept out of the library's logic.

Library functions take an optional ``progress`` callable and call it as
``progress(phase)`` when a phase starts and ``progress(phase, done, total)``
while it advances. They never print. The CLI passes ``TerminalProgress``,
which draws a bar on stderr when stderr is a terminal and prints each phase
once otherwise (logs and CI stay readable); tests pass a list's ``append``
or nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None: ...


def silent(phase: str, done: int = 0, total: int = 0) -> None:
    """The default: report nothing."""


class TerminalProgress:
    """A one-line progress bar on a terminal; phase lines elsewhere.

    Phases named ``"job: detail"`` with a total share one bar, ``job``, and show their
    detail after it, so a pipeline of steps reads as one bar moving through its steps.
    """

    def __init__(self, stream: TextIO | None = None, *, width: int = 30,
                 interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width, self.interval = width, interval
        self.key: str | None = None
        self.phase: str | None = None
        self.started = self.last = 0.0

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        now = time.monotonic()
        key, _, detail = phase.partition(": ") if total > 0 else (phase, "", "")
        if key != self.key:
            self._end_line()
            self.key, self.started, self.last = key, now, 0.0
        if phase != self.phase:
            self.phase = phase
            self.last = 0.0
            if not self.tty:
                print(phase + " ...", file=self.stream, flush=True)
        if not self.tty or total <= 0:
            return
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        share = min(1.0, done / total)
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self.started
        eta = f" eta {elapsed / share - elapsed:4.0f}s" if 0 < share < 1 else ""
        tail = f" {detail}" if detail else ""
        self.stream.write(f"\r{key} [{bar}] {share:4.0%} {done:,}/{total:,}{eta}{tail}\033[K")
        self.stream.flush()

    def _end_line(self) -> None:
        if self.tty and self.key is not None:
            self.stream.write("\n")
            self.stream.flush()

    def close(self) -> None:
        self._end_line()
        self.key = self.phase = None

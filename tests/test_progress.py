"""The terminal progress reporter: a bar on a terminal, one line per phase elsewhere."""

import io

from storeops.engine.progress import TerminalProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_phases_print_once_when_not_a_terminal():
    stream = io.StringIO()
    progress = TerminalProgress(stream)
    progress("reading")
    progress("evaluating", 10, 100)
    progress("evaluating", 100, 100)
    progress.close()
    assert stream.getvalue() == "reading ...\nevaluating ...\n"


def test_a_bar_on_a_terminal_ends_full_and_on_its_own_line():
    stream = Tty()
    progress = TerminalProgress(stream, width=10, interval=0)
    progress("evaluating", 5, 10)
    progress("evaluating", 10, 10)
    progress.close()
    text = stream.getvalue()
    assert "\revaluating [#####-----]  50% 5/10" in text
    assert "\revaluating [##########] 100% 10/10" in text
    assert text.endswith("\n")


def test_steps_of_one_job_share_a_bar_and_name_their_step():
    stream = Tty()
    progress = TerminalProgress(stream, width=4, interval=0)
    progress("value chain: reading", 0, 4)
    progress("value chain: tiers", 2, 4)
    progress("value chain: done", 4, 4)
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1  # one line, redrawn
    assert "\rvalue chain [##--]  50% 2/4" in text and text.rstrip().endswith("done\x1b[K")

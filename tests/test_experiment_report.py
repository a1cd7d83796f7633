"""The report: self-contained HTML whose charts draw in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from storeops.engine.experiment import load_experiment
from storeops.engine.experiment_run import run_experiment

SMALL = Path(__file__).parent / "data" / "experiments" / "small.yaml"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    run_experiment(load_experiment(SMALL), out_dir=out, executor="local")
    return out / "report.html"


def test_the_page_needs_no_network(report):
    text = report.read_text(encoding="utf-8")
    # the only URL is the SVG namespace, which is a name, not a request
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    assert text.count('<svg class="chart"') == 2 + 1 + 5  # targets, cost, utilisations
    assert 'id="recommendation"' in text and "supervisors=1,order_desk.picker=2" in text
    assert "order_fulfilment" in text and "tiny" in text  # the versions it rests on


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(browser() is None, reason="no headless browser (Debian: apt-get install "
                                              "chromium)")
def test_the_charts_draw_in_a_headless_browser(report, tmp_path):
    result = subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
         "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert 'data-charts="8"' in dom, result.stderr[-2000:]
    drawn = re.findall(r'data-drawn="(\d+)x(\d+):(\d+)"', dom)
    assert len(drawn) == 8
    for width, height, marks in drawn:
        assert int(width) > 100 and int(height) > 100 and int(marks) > 0

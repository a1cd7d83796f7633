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
    # (2 targets + staff cost + 5 utilisations) x 2 varied team sizes
    assert text.count('<svg class="chart"') == (2 + 1 + 5) * 2
    assert 'id="recommendation"' in text and "supervisors=1,order_desk.picker=2" in text
    assert "order_fulfilment" in text and "tiny" in text  # the versions it rests on


def test_a_chart_per_metric_and_varied_team_size(report):
    """Each target metric, the staff cost and each role's utilisation is drawn against every
    varied team size, a line per policy, the other size held at the recommended point's."""
    text = report.read_text(encoding="utf-8")
    figures = dict(re.findall(r'<figure class="chart-box" data-chart="([^"]+)">(.*?)</figure>',
                              text))
    held = {"supervisors": "order_desk.picker held at 2 (the recommended point)",
            "order_desk.picker": "supervisors held at 1 (the recommended point)"}
    metrics = {"target-0": "utilisation.picker (at most 0.2)",
               "target-1": "need_within_target_share (at least 0.3)",
               "cost": "staff cost per year",
               **{f"utilisation-{k}": f"utilisation of {role}" for k, role in enumerate(
                   ("checker", "customer_service", "packer", "picker", "supervisor"))}}
    assert set(figures) == {f"{m}--{d}" for m in metrics for d in held}
    for chart, title in metrics.items():
        for dimension, subtitle in held.items():
            figure = figures[f"{chart}--{dimension}"]
            assert f"{title} against {dimension}" in figure
            assert f'<span class="subtitle">{subtitle}' in figure
            # one line per policy (one policy here), through both values of the dimension
            assert figure.count('<polyline class="series"') == 1
            assert len(re.findall(r"<circle ", figure)) == 2
            assert figure.count('<polygon class="band"') == 1
            assert (figure.count('class="bound"') == 1) == chart.startswith("target-")


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
    assert 'data-charts="16"' in dom, result.stderr[-2000:]
    drawn = re.findall(r'data-drawn="(\d+)x(\d+):(\d+)"', dom)
    assert len(drawn) == 16
    for width, height, marks in drawn:
        assert int(width) > 100 and int(height) > 100 and int(marks) > 0


def test_a_policy_keeps_its_colour_in_every_chart():
    """Series come in the experiment's policy order, each policy with its own colour, whichever
    policy the chart's points happen to list first."""
    from storeops.engine.report import COLOURS, _series

    def point(policy, supervisors, picker):
        return {"policy": policy, "values": {"supervisors": supervisors, "picker": picker,
                                             "policy": policy},
                "metrics": {"m": (1.0, 0.5, 1.5, 5)}}

    points = [point("reactive", 2, 1), point("cycle_135", 2, 1), point("cycle_135", 3, 1)]
    series = _series(points, "supervisors", "m", {"picker": 1}, ["cycle_135", "reactive"])
    assert [(s["label"], s["colour"]) for s in series] == [("cycle_135", COLOURS[0]),
                                                           ("reactive", COLOURS[1])]
    assert series[0]["points"] == [(2.0, 1.0, 0.5, 1.5), (3.0, 1.0, 0.5, 1.5)]

"""The experiment report: one self-contained HTML page, charts as inline SVG.

Everything the page shows comes in as values (point summaries and the recommendation); this
module computes nothing but chart geometry. The page loads nothing from the network: no script
or style sheet from elsewhere, no fonts, no images but the inline SVG, so it can be mailed or
opened offline. A few lines of inline script only record, on load, the size each chart drew at
(``data-drawn``), which the browser test reads back.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 30, 44


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "n/a"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=raw)
    first = math.ceil(low / step) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def line_chart(title: str, x_label: str, series: Sequence[Mapping[str, Any]], *,
               bound: float | None = None, bound_label: str = "", chart_id: str,
               subtitle: str = "") -> str:
    """An SVG chart: one line per series (x, mean) with a shaded band (low, high).

    ``series``: ``{"label", "points": [(x, mean, low, high), ...], "colour"?}``; NaN bands
    are skipped; without a colour, the k-th series takes the palette's k-th.
    ``subtitle``: a second caption line (what the chart holds fixed).
    """
    caption = _e(title) + (f'<span class="subtitle">{_e(subtitle)}</span>' if subtitle
                           else "")
    xs = [p[0] for s in series for p in s["points"]]
    ys = [v for s in series for p in s["points"] for v in p[1:] if v is not None
          and math.isfinite(v)]
    if bound is not None:
        ys.append(bound)
    if not xs or not ys:
        return (f'<figure class="chart-box" data-chart="{_e(chart_id)}"><figcaption>'
                f'{caption}</figcaption><p class="empty">no data</p></figure>')
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    if min(ys) >= 0 and y0 < 0:
        y0 = 0.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + (y1 - y) / (y1 - y0) * plot_h

    parts = [f'<svg class="chart" id="{_e(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{_e(title)}">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for t in _ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="tick">{_fmt(t)}</text>')
    distinct = sorted(set(xs))
    x_ticks = distinct if len(distinct) <= 12 else _ticks(x0, x1, 8)
    for t in x_ticks:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" '
                     f'y2="{TOP + plot_h + 4}" stroke="#555"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 17}" text-anchor="middle" '
                     f'class="tick">{_fmt(t)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
                 f'class="axis">{_e(x_label)}</text>')
    if bound is not None:
        y = sy(bound)
        parts.append(f'<line class="bound" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#000" stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{LEFT + plot_w - 4}" y="{y - 5:.1f}" text-anchor="end" '
                     f'class="tick">{_e(bound_label)}</text>')
    for k, s in enumerate(series):
        colour = s.get("colour") or COLOURS[k % len(COLOURS)]
        pts = sorted(s["points"])
        band = [(x, lo, hi) for x, _, lo, hi in pts if lo is not None and hi is not None
                and math.isfinite(lo) and math.isfinite(hi)]
        if len(band) >= 2:
            upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in band)
            lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in reversed(band))
            parts.append(f'<polygon class="band" points="{upper} {lower}" fill="{colour}" '
                         'fill-opacity="0.18" stroke="none"/>')
        line = [(x, m) for x, m, _, _ in pts if m is not None and math.isfinite(m)]
        if line:
            d = " ".join(f"{sx(x):.1f},{sy(m):.1f}" for x, m in line)
            parts.append(f'<polyline class="series" points="{d}" fill="none" '
                         f'stroke="{colour}" stroke-width="2"/>')
            for x, m in line:
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(m):.1f}" r="3" '
                             f'fill="{colour}"><title>{_e(s["label"])}: {_fmt(x)} -> '
                             f'{_fmt(m)}</title></circle>')
        ly = TOP + 14 + 18 * k
        parts.append(f'<rect x="{WIDTH - RIGHT + 12}" y="{ly - 9}" width="14" height="10" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 30}" y="{ly}" class="legend">'
                     f'{_e(s["label"])}</text>')
    parts.append("</svg>")
    return (f'<figure class="chart-box" data-chart="{_e(chart_id)}"><figcaption>{caption}'
            f'</figcaption>{"".join(parts)}</figure>')


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:1.5em;margin-bottom:0.2em} h2{font-size:1.15em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:4px}
.answer{background:#eef6ee;border:1px solid #9c9;padding:12px 16px;border-radius:6px}
.none{background:#fbeeee;border-color:#c99}
table{border-collapse:collapse;font-size:0.88em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td.l,th.l{text-align:left}
.met{color:#196619} .failed{color:#a31515} .undecided{color:#8a6d00}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure.chart-box{margin:0;border:1px solid #eee;padding:6px;background:#fff}
figcaption{font-weight:600;font-size:0.92em;margin-bottom:4px;max-width:560px}
figcaption .subtitle{display:block;font-weight:400;color:#666;font-size:0.92em}
svg.chart text{font-size:11px;fill:#333;font-family:inherit} svg.chart .axis{font-size:12px}
.small{color:#666;font-size:0.85em} code{background:#f5f5f5;padding:0 3px}
"""

SCRIPT = """
window.addEventListener('load', function () {
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll('polyline.series, polygon.band, circle').length;
    svg.setAttribute('data-drawn', Math.round(box.width) + 'x' + Math.round(box.height) +
                     ':' + marks);
  });
  document.body.setAttribute('data-charts', document.querySelectorAll('svg.chart').length);
});
"""


def experiment_report(points: Sequence[Mapping[str, Any]], recommendation: Mapping[str, Any],
                      experiment: Any) -> str:
    """The page: the answer first, then charts, sensitivity, the subset, the points, versions."""
    exp = experiment
    main = [p for p in points if p["stage"] == "main"]
    dimensions = chart_dimensions(exp)
    best = recommendation.get("recommendation")
    anchor = dict(best["values"]) if best else (dict(main[0]["values"]) if main else {})
    whose = "the recommended point" if best else "the first point run"
    # a policy keeps its colour (and its order in the legend) in every chart
    policies = list(dict.fromkeys(pt.policy for pt in exp.points))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(exp.title)}: staffing experiment</title>",
           f"<style>{STYLE}</style></head><body>",
           f"<h1>{_e(exp.title)}</h1>",
           f'<p class="small">experiment <code>{_e(exp.id)}</code> on scenario '
           f'<code>{_e(exp.scenario.id)}</code>, {len(exp.points)} design points, '
           f'{recommendation["points_run"]} run, confidence {exp.confidence:.0%}, '
           f'search: {_e(exp.search)}</p>']
    out.append(_answer(recommendation, exp))

    def charts_of(title: str, metric: str, chart_id: str, **bound: Any) -> list[str]:
        """One chart of ``metric`` per varied dimension, the other values held at anchor."""
        made = []
        for x_name in dimensions:
            held = {n: v for n, v in anchor.items() if n not in (x_name, "policy")}
            subtitle = (", ".join(f"{n} held at {v}" for n, v in held.items())
                        + f" ({whose})") if held else ""
            made.append(line_chart(f"{title} against {x_name}", x_name,
                                   _series(main, x_name, metric, anchor, policies),
                                   chart_id=f"{chart_id}--{x_name}", subtitle=subtitle,
                                   **bound))
        return made

    # charts: one per (metric, varied team size), a line per policy
    out.append("<h2>Targets against team size</h2>")
    charts = []
    for k, t in enumerate(exp.targets):
        word = "at most" if t.sense == "at_most" else "at least"
        charts += charts_of(f"{t.label or t.metric} ({word} {_fmt(t.bound)})", t.metric,
                            f"target-{k}", bound=t.bound, bound_label=f"target {_fmt(t.bound)}")
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append("<h2>Cost and utilisation</h2>")
    charts = charts_of("staff cost per year", "staff_cost", "cost")
    if exp.lost_sales_cost > 0:
        charts += charts_of(f"total cost per year (staff + {exp.lost_sales_cost:g} x sales "
                            "lost)", "total_cost", "total-cost")
    names = sorted({m for p in main for m in p["metrics"] if m.startswith("utilisation.")})
    for k, name in enumerate(names):
        charts += charts_of(name.replace(".", " of "), name, f"utilisation-{k}")
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    if dimensions:
        out.append(f'<p class="small">One chart per varied team size and metric, a line per '
                   f"policy; the other varied values are held at {whose}'s (each chart says "
                   "which). Bands: two-sided {exp.confidence:.0%} t intervals over "
                   "replications (common random numbers across design points).</p>")
    out.append(_sensitivity(recommendation))
    out.append(_subset(recommendation))
    out.append(_points_table(points, exp))
    out.append(_versions(recommendation, exp))
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


def chart_dimensions(experiment: Any) -> list[str]:
    """The x axes of the report's charts: every varied team size, in vary order; with none,
    the first varied numeric parameter (skill, demand...); empty when only policies vary."""
    teams = list(experiment.team_dimensions)
    if teams:
        return teams
    numeric = [n for n, vals in experiment.vary if n != "policy" and all(
        isinstance(v, (int, float)) for v in vals)]
    return numeric[:1]


def _series(points, x_name: str, metric: str, anchor: Mapping[str, Any],
            policies: Sequence[str]):
    groups: dict[str, list] = {}
    for p in points:
        values = p["values"]
        if any(values.get(n) != v for n, v in anchor.items() if n not in (x_name, "policy")):
            continue
        if metric not in p["metrics"] or values.get(x_name) is None:
            continue
        mean, low, high, _ = p["metrics"][metric]
        groups.setdefault(p["policy"], []).append((float(values[x_name]), mean, low, high))
    return [{"label": label, "points": groups[label], "colour": COLOURS[k % len(COLOURS)]}
            for k, label in enumerate(policies) if label in groups]


def _verdict_cells(targets) -> str:
    cells = []
    for t in targets:
        word = "<=" if t["sense"] == "at_most" else ">="
        cells.append(f'<tr><td class="l">{_e(t["metric"])} {word} {_fmt(t["bound"])}</td>'
                     f'<td>{_fmt(t["mean"])}</td><td>{_fmt(t["low"])}</td>'
                     f'<td>{_fmt(t["high"])}</td>'
                     f'<td class="l {_e(t["status"])}">{_e(t["status"])}</td></tr>')
    return ('<table><tr><th class="l">target</th><th>mean</th><th>lower bound</th>'
            '<th>upper bound</th><th class="l">verdict</th></tr>' + "".join(cells) + "</table>")


def _describe(entry: Mapping[str, Any]) -> str:
    staff = ", ".join(f"{n} {v}" for n, v in entry["staff"].items() if v)
    return (f'<b>{_e(entry["point"])}</b> (policy <code>{_e(entry["policy"])}</code>): '
            f'{_e(staff)}; staff cost {_fmt(entry["staff_cost_per_year"])} a year, '
            f'{entry["replications"]} replications')


def _answer(rec: Mapping[str, Any], exp: Any) -> str:
    best = rec.get("recommendation")
    if best is None:
        return (f'<div class="answer none" id="recommendation"><b>No recommendation.</b> '
                f'{_e(rec.get("why_none", ""))}</div>')
    parts = [f'<div class="answer" id="recommendation"><p>Recommended: {_describe(best)}.</p>',
             f'<p>Binding target: <b>{_e(best["binding_target"])}</b> (met by the smallest '
             "margin).</p>", _verdict_cells(best["targets"])]
    runner = rec.get("runner_up")
    if runner:
        parts.append(f"<p>Runner-up: {_describe(runner)}.</p>")
    if rec.get("cheaper_undecided"):
        parts.append("<p>Cheaper points still undecided at the maximum replications: "
                     + ", ".join(_e(k) for k in rec["cheaper_undecided"]) + ".</p>")
    if rec.get("failed_jobs"):
        parts.append(f'<p class="failed">{len(rec["failed_jobs"])} job(s) failed; see '
                     "recommendation.json.</p>")
    parts.append("</div>")
    return "".join(parts)


def _sensitivity(rec: Mapping[str, Any]) -> str:
    rows = []
    for entry in rec.get("sensitivity", []):
        new = entry.get("recommendation")
        mine = entry.get("current_recommendation")
        rows.append(f'<tr><td>x {entry["demand_factor"]:g}</td>'
                    f'<td class="l">{_e(new["point"]) if new else "none found"}</td>'
                    f'<td>{_fmt(new["staff_cost_per_year"]) if new else "n/a"}</td>'
                    f'<td class="l {_e(mine["status"]) if mine else ""}">'
                    f'{_e(mine["status"]) if mine else "n/a"}</td></tr>')
    if not rows:
        return ""
    return ('<h2>Sensitivity to demand</h2><table id="sensitivity"><tr><th>demand</th>'
            '<th class="l">cheapest configuration meeting every target</th><th>staff cost</th>'
            '<th class="l">today\'s recommendation at this demand</th></tr>'
            + "".join(rows) + "</table>")


def _subset(rec: Mapping[str, Any]) -> str:
    subset = rec.get("best_subset")
    if not subset:
        return ""
    goal = "lowest" if subset["goal"] == "min" else "highest"
    items = "".join(f"<li>{_e(k)}</li>" for k in subset["points"])
    return (f"<h2>Possibly the best on {_e(subset['metric'])}</h2><p>With "
            f"{subset['confidence']:.0%} confidence the configuration with the {goal} expected "
            f"{_e(subset['metric'])} is one of these (subset selection, common random numbers):"
            f"</p><ul>{items}</ul>")


def _points_table(points, exp: Any) -> str:
    names = [n for n, _ in exp.vary]
    head = "".join(f'<th class="l">{_e(n)}</th>' for n in names)
    head += "".join(f"<th>{_e(t.metric)}</th>" for t in exp.targets)
    rows = []
    for p in points:
        cells = "".join(f'<td class="l">{_e(p["values"].get(n, ""))}</td>' for n in names)
        for t, verdict in zip(exp.targets, p["verdicts"], strict=False):
            mean = p["metrics"].get(t.metric, (math.nan,))[0]
            cells += f'<td class="{_e(verdict)}">{_fmt(mean)}</td>'
        rows.append(f'<tr><td class="l">{_e(p["stage"])}</td>{cells}'
                    f'<td>{_fmt(p["staff_cost"])}</td><td>{p["n"]}</td>'
                    f'<td class="l {_e(p["status"])}">{_e(p["status"])}</td></tr>')
    return ('<h2>Design points run</h2><table id="points"><tr><th class="l">stage</th>'
            f'{head}<th>staff cost</th><th>replications</th><th class="l">status</th></tr>'
            + "".join(rows) + "</table>")


def _versions(rec: Mapping[str, Any], exp: Any) -> str:
    from .. import __version__

    packs = "".join(f'<tr><td class="l">{_e(p["key"])}</td><td class="l">{_e(p["id"])}</td>'
                    f'<td class="l">{_e(p["version"])}</td><td class="l"><code>'
                    f'{_e(p["sha256"][:16])}</code></td></tr>' for p in rec.get("packs", []))
    fixed = json.dumps(dict(exp.fixed)) if exp.fixed else "none"
    return ('<h2>What this rests on</h2><table id="versions">'
            f'<tr><td class="l">scenario</td><td class="l">{_e(exp.scenario.id)}</td>'
            f'<td class="l">{_e(exp.scenario.path)}</td><td class="l"><code>'
            f'{_e(exp.scenario.sha256[:16])}</code></td></tr>'
            f'<tr><td class="l">experiment</td><td class="l">{_e(exp.id)}</td>'
            f'<td class="l">{_e(exp.path)}</td><td class="l"><code>{_e(exp.sha256[:16])}'
            f'</code></td></tr>{packs}'
            f'<tr><td class="l">seed</td><td class="l">{exp.seed}</td><td class="l">fixed values'
            f'</td><td class="l">{_e(fixed)}</td></tr>'
            f'<tr><td class="l">storeops</td><td class="l">{_e(__version__)}</td><td></td><td>'
            f'</td></tr><tr><td class="l">replications</td><td class="l">'
            f'{rec["replications"]["main"] if "replications" in rec else ""} behind the answer'
            '</td><td></td><td></td></tr></table>')

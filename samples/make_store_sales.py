"""Make the synthetic store-sales samples for the value-chain pack (rules/value_chain.yaml).

Invented data, not taken from any source: 30 stores of a made-up chain, daily from
2025-01-01 to 2026-06-30, in four areas. Each store has a size, a weekly rhythm (closed on
Sundays), a yearly season, promotion weeks, and some stores have a problem that starts in a
given month: traffic falls away, or the average ticket sags, or the store closes for a fortnight.
Those are what the value-chain rules should find, so the samples double as known answers.

Files (UTF-8, ``\\n`` line ends, written through a temporary file and ``os.replace``):

- ``store_sales_daily.csv``: ``shop_id,day,turnover,receipts,opened,promotion`` (one row per
  store and day; mapped by ``mappings/sample_daily.yaml``);
- ``weekly_sales.csv``: another retailer's export, semicolon-separated with German headers and
  dates: ``Filiale;Woche;Umsatz;Bons;Tage_offen;Aktionstage`` (one row per store and ISO week,
  week given by its Monday; mapped by ``mappings/sample_weekly.yaml``);
- ``store_areas.csv``: ``store,area,x_km,y_km`` (where each store is, for week schedules).

Reproducible byte for byte: every draw comes from ``random.Random(SEED)``. Standard library only::

    python samples/make_store_sales.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

SEED = 20261124
HERE = Path(__file__).resolve().parent
START = dt.date(2025, 1, 1)
END = dt.date(2026, 6, 30)
AREAS = ("north", "east", "south", "west")
AREA_CENTRES = {"north": (20.0, 60.0), "east": (60.0, 40.0), "south": (30.0, 5.0),
                "west": (0.0, 30.0)}
STORES = tuple(f"S{i:02d}" for i in range(1, 31))
# Problems we plant (store -> (kind, first month)); the rules should flag them.
PROBLEMS = {
    "S03": ("traffic", dt.date(2026, 3, 1)),     # customers fall away: customer management
    "S07": ("ticket", dt.date(2026, 2, 1)),      # the average ticket sags: floor adjustment
    "S12": ("closure", dt.date(2026, 4, 1)),     # closed 14 days: store operations
    "S18": ("collapse", dt.date(2026, 4, 1)),    # sales halve: a problem store
    "S25": ("traffic", dt.date(2026, 5, 1)),
}


def stores(rng: random.Random) -> list[dict]:
    out = []
    for i, store in enumerate(STORES):
        area = AREAS[i % len(AREAS)]
        cx, cy = AREA_CENTRES[area]
        out.append({
            "store": store, "area": area,
            "x_km": round(cx + rng.uniform(-12, 12), 1),
            "y_km": round(cy + rng.uniform(-12, 12), 1),
            # daily customers and ticket: a few big stores, many small ones
            "customers": round(120 * math.exp(rng.gauss(0, 0.45))),
            "ticket": round(rng.uniform(28, 46), 2),
            "growth": rng.gauss(0.03, 0.06),  # yearly trend
        })
    return out


def daily_rows(rng: random.Random, shops: list[dict]) -> list[tuple]:
    promo_weeks = {w for w in range(1, 80) if rng.random() < 0.25}
    rows = []
    day = START
    while day <= END:
        week_index = (day - START).days // 7
        season = 1 + 0.12 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365)
        if day.month == 12:
            season *= 1.25
        for shop in shops:
            store = shop["store"]
            opened = day.weekday() != 6
            promotion = opened and week_index in promo_weeks
            kind, since = PROBLEMS.get(store, (None, None))
            years = (day - START).days / 365
            customers = shop["customers"] * season * (1 + shop["growth"]) ** years
            ticket = shop["ticket"]
            if promotion:
                customers *= 1.30
                ticket *= 0.97
            if kind and day >= since:
                if kind == "traffic":
                    customers *= 0.78
                elif kind == "ticket":
                    ticket *= 0.86
                elif kind == "collapse":
                    customers *= 0.55
                elif kind == "closure" and day < since + dt.timedelta(days=14):
                    opened = False
            if not opened:
                rows.append((store, day.isoformat(), "0", "0", "0", "0"))
                continue
            served = max(0, round(rng.gauss(customers, customers ** 0.5 * 1.5)))
            turnover = round(served * ticket * math.exp(rng.gauss(0, 0.04)), 2)
            rows.append((store, day.isoformat(), f"{turnover:.2f}", str(served), "1",
                         "1" if promotion else "0"))
        day += dt.timedelta(days=1)
    return rows


def weekly_rows(daily: list[tuple]) -> list[tuple]:
    """The same sales as another retailer would export them: per ISO week, German headers."""
    weeks: dict[tuple[str, dt.date], list[float]] = {}
    for store, day, turnover, receipts, opened, promotion in daily:
        date = dt.date.fromisoformat(day)
        monday = date - dt.timedelta(days=date.weekday())
        if monday < START or monday + dt.timedelta(days=6) > END:
            continue  # whole weeks only
        acc = weeks.setdefault((store, monday), [0.0, 0, 0, 0])
        acc[0] += float(turnover)
        acc[1] += int(receipts)
        acc[2] += int(opened)
        acc[3] += int(promotion)
    rows = []
    for (store, monday), (turnover, receipts, open_days, promo_days) in sorted(weeks.items()):
        rows.append((store.replace("S", "F-"), monday.strftime("%d.%m.%Y"),
                     f"{turnover:.2f}".replace(".", ","), str(receipts), str(open_days),
                     str(promo_days)))
    return rows


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence], delimiter=",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    rng = random.Random(SEED)
    shops = stores(rng)
    daily = daily_rows(rng, shops)
    write_csv(args.out_dir / "store_sales_daily.csv",
              ("shop_id", "day", "turnover", "receipts", "opened", "promotion"), daily)
    write_csv(args.out_dir / "weekly_sales.csv",
              ("Filiale", "Woche", "Umsatz", "Bons", "Tage_offen", "Aktionstage"),
              weekly_rows(daily), delimiter=";")
    write_csv(args.out_dir / "store_areas.csv", ("store", "area", "x_km", "y_km"),
              [(s["store"], s["area"], f"{s['x_km']:.1f}", f"{s['y_km']:.1f}") for s in shops])
    print(f"wrote {len(daily):,} store-days for {len(shops)} stores to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

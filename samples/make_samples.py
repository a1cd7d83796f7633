"""Make the synthetic demo needs logs for the KZB pack (rules/kzb.yaml).

The data are our own invention, not taken from any source: a month (October 2026) of needs that
customer managers recorded for 60 retail customers (C001..C060). Two files come out:

- ``needs_log.csv``: ``customer,date,need``, the plain needs log the pack reads. ``need`` is a
  direct need N01..N20 (table 一) or, for about one row in ten, a latent indicator L1..L8 named
  by the customer manager (table 二).
- ``needs_with_indicators.csv``: the same three columns plus the optional monthly indicator
  fields the latent rules read. Some customers have empty indicator cells, so the pack's null
  rule is exercised (a latent rule must then fire on ``need == 'Lx'`` alone).

Both files are reproducible byte for byte: every draw comes from ``random.Random`` seeded with
``SEED`` (the needs log) or ``SEED + 1`` (the indicator sample, a separate stream so that
changing ``--rows`` leaves it alone), rows are sorted, and numbers are formatted explicitly.
Files are written through a temporary file and ``os.replace``, so a reader never sees half a file.

Run from anywhere (standard library only)::

    python samples/make_samples.py [--out PATH] [--rows N]
                                   [--indicators-out PATH] [--indicator-rows N]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

SEED = 20261123
HERE = Path(__file__).resolve().parent

CUSTOMERS = tuple(f"C{i:03d}" for i in range(1, 61))
MONTH_START = dt.date(2026, 10, 1)
DAYS = tuple(MONTH_START + dt.timedelta(days=i) for i in range(31))

# Relative frequency of each direct need. Complaints (N19) and display help (N15) are the
# everyday business of a customer manager, suspending a business (N20) is rare; the rest sit
# in between according to how often a small shop would raise them. Our assumption, not data.
DIRECT_WEIGHTS = {
    "N01": 6, "N02": 8, "N03": 2, "N04": 4, "N05": 3,
    "N06": 6, "N07": 6, "N08": 2, "N09": 3, "N10": 5,
    "N11": 3, "N12": 4, "N13": 4, "N14": 6, "N15": 10,
    "N16": 5, "N17": 3, "N18": 2, "N19": 12, "N20": 1,
}  # fmt: skip
# Latent indicators named directly in the log: volume problems are the ones noticed most.
LATENT_WEIGHTS = {"L1": 3, "L2": 2, "L3": 2, "L4": 2, "L5": 2, "L6": 2, "L7": 1, "L8": 1}
LATENT_SHARE = 0.10
NEED_ORDER = {need: i for i, need in enumerate([*DIRECT_WEIGHTS, *LATENT_WEIGHTS])}

NEEDS_HEADER = ("customer", "date", "need")
# Same names and order as the optional fields of rules/kzb.yaml.
INDICATOR_FIELDS = (
    "sales_volume", "sales_volume_prev",
    "avg_unit_value", "avg_unit_value_prev",
    "key_brand_sales", "key_brand_sales_prev",
    "order_fit", "recommend_score",
    "brand_count", "brand_count_target",
    "cultivation_score", "image_score",
)  # fmt: skip
SCORE_FIELDS = ("recommend_score", "cultivation_score", "image_score")

Row = tuple[str, ...]


def day_weight(day: dt.date) -> float:
    """Visits are fewer in the National Day week (1-7 October) and at weekends."""
    if day.day <= 7:
        return 0.4
    if day.weekday() >= 5:
        return 0.3
    return 1.0


def draw_visits(rng: random.Random, rows: int, latent_share: float = LATENT_SHARE) -> list[Row]:
    """``rows`` distinct (customer, date, need) triples, sorted by date, customer, need.

    Exactly ``round(rows * latent_share)`` rows name a latent indicator, the rest a direct need,
    so the share does not drift with the seed. Customers get a random activity weight (some shops
    see their manager far more often), days the weight of ``day_weight``. An exact repeat of a
    triple says nothing new, so it is drawn again; the caller keeps ``rows`` well below the
    number of possible triples.
    """
    activity = [rng.uniform(0.5, 2.0) for _ in CUSTOMERS]
    day_weights = [day_weight(day) for day in DAYS]
    latent_rows = round(rows * latent_share)
    seen: set[Row] = set()
    for table, count in ((LATENT_WEIGHTS, latent_rows), (DIRECT_WEIGHTS, rows - latent_rows)):
        needs, weights = tuple(table), tuple(table.values())
        target = len(seen) + count  # latent and direct triples never collide: different ids
        while len(seen) < target:
            customer = rng.choices(CUSTOMERS, weights=activity)[0]
            day = rng.choices(DAYS, weights=day_weights)[0]
            need = rng.choices(needs, weights=weights)[0]
            seen.add((customer, day.isoformat(), need))
    return sorted(seen, key=lambda row: (row[1], row[0], NEED_ORDER[row[2]]))


def needs_log(rows: int, seed: int = SEED) -> list[Row]:
    """The plain needs log: ``rows`` rows of customer, date, need."""
    return draw_visits(random.Random(seed), rows)


def _score(rng: random.Random) -> int:
    # Ratings 1 (very poor) .. 5 (very good); most shops are middling, about one in five poor.
    return rng.choices((1, 2, 3, 4, 5), weights=(1, 3, 6, 5, 2))[0]


def _change(
    rng: random.Random, p_problem: float, problem: tuple[float, float], normal: tuple[float, float]
) -> float:
    """A month-on-month ratio change, clearly inside the problem range or clearly outside it."""
    low, high = problem if rng.random() < p_problem else normal
    return rng.uniform(low, high)


def customer_indicators(rng: random.Random) -> dict[str, str]:
    """One customer's indicator values for October (and September as ``*_prev``), as CSV text.

    Problem ranges keep a margin from the pack's design-choice thresholds (sales_drop -0.10,
    unit_value_drop -0.05, key_brand_drop -0.10, order_fit 0.8..1.2, poor rating <= 2,
    shortfall >= 1), so rounding never moves a value across a threshold. No ``*_prev`` is zero,
    so every percentage change is defined.
    """
    volume_prev = rng.randint(60, 400)
    volume = round(volume_prev * (1 + _change(rng, 0.2, (-0.35, -0.13), (-0.07, 0.12))))
    unit_prev = round(rng.uniform(120.0, 320.0), 2)
    unit = round(unit_prev * (1 + _change(rng, 0.15, (-0.15, -0.07), (-0.03, 0.05))), 2)
    key_prev = max(5, round(volume_prev * rng.uniform(0.15, 0.40)))
    key = round(key_prev * (1 + _change(rng, 0.2, (-0.50, -0.15), (-0.06, 0.20))))
    if rng.random() < 0.2:
        fit = rng.choice((rng.uniform(0.50, 0.75), rng.uniform(1.25, 1.60)))
    else:
        fit = rng.uniform(0.85, 1.15)
    target = rng.randint(25, 60)
    # About one shop in four stocks fewer specifications than its target.
    count = target - rng.randint(1, 8) if rng.random() < 0.25 else target + rng.randint(0, 5)
    values: dict[str, object] = {
        "sales_volume": volume,
        "sales_volume_prev": volume_prev,
        "avg_unit_value": f"{unit:.2f}",
        "avg_unit_value_prev": f"{unit_prev:.2f}",
        "key_brand_sales": key,
        "key_brand_sales_prev": key_prev,
        "order_fit": f"{fit:.2f}",
        "recommend_score": _score(rng),
        "brand_count": count,
        "brand_count_target": target,
        "cultivation_score": _score(rng),
        "image_score": _score(rng),
    }
    return {name: str(value) for name, value in values.items()}


def indicator_sample(rows: int, seed: int = SEED + 1) -> list[Row]:
    """``rows`` visits joined with their customer's monthly indicators.

    Indicators are per customer and month, so every row of one customer repeats the same values.
    Empty cells exercise the null rule: about one customer in eight has no indicator data at all
    (not yet surveyed), and about one in eight has not been rated yet (the three 1-5 scores empty).
    Latent ids are drawn twice as often as in the plain log so that each kind of row occurs.
    """
    rng = random.Random(seed)
    profiles = {}
    for customer in CUSTOMERS:
        values = customer_indicators(rng)
        gap = rng.random()
        if gap < 0.125:
            values = dict.fromkeys(values, "")
        elif gap < 0.25:
            values.update(dict.fromkeys(SCORE_FIELDS, ""))
        profiles[customer] = values
    visits = draw_visits(rng, rows, latent_share=2 * LATENT_SHARE)
    return [(*visit, *(profiles[visit[0]][name] for name in INDICATOR_FIELDS)) for visit in visits]


def write_csv_atomically(path: Path, header: Sequence[str], rows: Iterable[Row]) -> None:
    """Write a UTF-8 CSV with ``\\n`` line ends via a temporary file in the same directory.

    ``os.replace`` within one directory is atomic, so readers see the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a sample file should be readable by all
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- customer management (rules/customers.yaml, crm_scorecard.yaml, sales_funnel.yaml) ---------
# A store's customer base, its CRM self-assessment and its monthly sales funnel. Invented by us
# like everything here; each draws from its own stream (SEED + 2, + 3) so the files above stay
# as they are.

CUSTOMER_BASE_FILES = {
    "customers.csv": ("customer_id", "city", "registered"),
    "orders.csv": ("order_id", "customer_id", "status", "purchased_at"),
    "payments.csv": ("order_id", "method", "amount"),
    "reviews.csv": ("review_id", "order_id", "score", "created_at", "answered_at"),
}
BASE_START = dt.datetime(2025, 1, 1, 9, 0, 0)
BASE_DAYS = 669  # up to 2026-10-31
CITIES = ("Harbin", "Daqing", "Qiqihar", "Mudanjiang")
# How many orders a customer places: most buy once, a few come back often (our assumption).
ORDER_COUNTS = ((1, 60), (2, 20), (3, 9), (4, 5), (5, 3), (8, 2), (0, 1))
SCORES = ((5, 55), (4, 20), (3, 9), (2, 5), (1, 11))  # close to Olist's mix


def _weighted(rng: random.Random, pairs: Sequence[tuple]) -> object:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def customer_base(customers: int = 300, seed: int = SEED + 2) -> dict[str, list[Row]]:
    """Customers, orders, payments and reviews of one store, two years up to October 2026.

    About 1 customer in 100 never bought (a registration only), 3% of orders are cancelled,
    one order in ten is paid in two parts, four orders in five get a review; a review is sent
    7-14 days after the purchase (at midnight) and answered after an exponential time with a
    mean of 40 hours, so that some answers miss a 48-hour target.
    """
    rng = random.Random(seed)
    rows: dict[str, list[Row]] = {name: [] for name in CUSTOMER_BASE_FILES}
    order_no = review_no = 0
    for c in range(1, customers + 1):
        customer = f"S{c:04d}"
        first = rng.randrange(BASE_DAYS)
        registered = (BASE_START + dt.timedelta(days=first)).date().isoformat()
        rows["customers.csv"].append((customer, rng.choice(CITIES), registered))
        count = _weighted(rng, ORDER_COUNTS)
        days = sorted([first] + [rng.randrange(first, BASE_DAYS) for _ in range(count - 1)])
        for day in days[:count]:
            order_no += 1
            order = f"O{order_no:05d}"
            at = BASE_START + dt.timedelta(days=day, minutes=rng.randrange(11 * 60))
            status = "cancelled" if rng.random() < 0.03 else "delivered"
            rows["orders.csv"].append((order, customer, status, at.strftime("%Y-%m-%d %H:%M:%S")))
            amount = round(rng.lognormvariate(5.0, 0.8), 2)
            if rng.random() < 0.1:
                part = round(amount * 0.4, 2)
                rows["payments.csv"].append((order, "voucher", f"{part:.2f}"))
                rows["payments.csv"].append((order, "card", f"{amount - part:.2f}"))
            else:
                rows["payments.csv"].append((order, rng.choice(("card", "cash")), f"{amount:.2f}"))
            if rng.random() < 0.8:
                review_no += 1
                created = dt.datetime.combine(at.date(), dt.time()) + \
                    dt.timedelta(days=rng.randint(7, 14))
                answered = created + dt.timedelta(seconds=round(rng.expovariate(1 / 40) * 3600)
                                                  + 3600)
                rows["reviews.csv"].append((
                    f"V{review_no:05d}", order, _weighted(rng, SCORES),
                    created.strftime("%Y-%m-%d %H:%M:%S"),
                    answered.strftime("%Y-%m-%d %H:%M:%S")))
    return rows


SCORECARD_DIMENSIONS = ("layout_display", "roles", "customer_data", "segmentation",
                        "sales_process", "service_process", "consultative_selling",
                        "key_accounts", "store_campaigns", "training", "kpis")
# Three stores rate themselves. "Centre" is the seed's own assessment read as numbers (no
# segmentation, almost no key-customer management: 1; follow-up calls not joined up: 2); the
# other two are invented.
SCORECARDS = (
    ("Centre", 3, 3, 2, 1, 3, 2, 2, 1, 2, 3, 2),
    ("North", 4, 4, 3, 2, 4, 3, 3, 2, 3, 4, 3),
    ("Harbour", 5, 4, 4, 4, 4, 4, 5, 3, 4, 4, 4),
)

FUNNEL_STAGES = ("greet", "needs", "recommend", "trial", "close", "handover", "follow_up",
                 "prospects")
FUNNEL_MONTHS = ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10")
# Typical conversion of each step from the one it converts from (follow_up from handover,
# prospects from trial), our assumption.
FUNNEL_RATES = {"needs": 0.70, "recommend": 0.80, "trial": 0.60, "close": 0.50,
                "handover": 0.97, "follow_up": 0.60, "prospects": 0.50}
FUNNEL_BASE = {"needs": "greet", "recommend": "needs", "trial": "recommend", "close": "trial",
               "handover": "close", "follow_up": "handover", "prospects": "trial"}
# October 2026 carries two problems for the rules to find: Centre closes far less (x 0.65),
# North's traffic falls by a quarter. Every other move stays within +-4%.
FUNNEL_SHOCKS = {("Centre", "2026-10", "close"): 0.65, ("North", "2026-10", "greet"): 0.75}


def sales_funnel(seed: int = SEED + 3) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for store, traffic in (("Centre", 620), ("North", 480)):
        for month in FUNNEL_MONTHS:
            counts: dict[str, int] = {}
            shock = FUNNEL_SHOCKS.get((store, month, "greet"), 1.0)
            counts["greet"] = round(traffic * rng.uniform(0.98, 1.02) * shock)
            for stage in FUNNEL_STAGES[1:]:
                rate = FUNNEL_RATES[stage] * rng.uniform(0.98, 1.02)
                rate *= FUNNEL_SHOCKS.get((store, month, stage), 1.0)
                counts[stage] = min(round(counts[FUNNEL_BASE[stage]] * rate),
                                    counts[FUNNEL_BASE[stage]])
            rows.append((store, month, *(counts[s] for s in FUNNEL_STAGES)))
    return rows


def write_customer_samples(folder: Path = HERE) -> None:
    for name, rows in customer_base().items():
        write_csv_atomically(folder / "customers" / name, CUSTOMER_BASE_FILES[name], rows)
    write_csv_atomically(folder / "crm_scorecard.csv", ("store", *SCORECARD_DIMENSIONS),
                         SCORECARDS)
    write_csv_atomically(folder / "sales_funnel.csv", ("store", "month", *FUNNEL_STAGES),
                         sales_funnel())


def _row_count(text: str) -> int:
    value = int(text)
    # Distinct triples must exist in plenty, or draw_visits would loop for ever.
    limit = len(CUSTOMERS) * len(DAYS) * len(NEED_ORDER) // 2
    if not 1 <= value <= limit:
        raise argparse.ArgumentTypeError(f"must be between 1 and {limit}, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "needs_log.csv",
        help="needs log to write (default: %(default)s)",
    )
    parser.add_argument(
        "--rows", type=_row_count, default=400, help="rows in the needs log (default: %(default)s)"
    )
    parser.add_argument(
        "--indicators-out",
        type=Path,
        default=HERE / "needs_with_indicators.csv",
        help="needs log with indicator columns to write (default: %(default)s)",
    )
    parser.add_argument(
        "--indicator-rows",
        type=_row_count,
        default=100,
        help="rows in the indicator sample (default: %(default)s)",
    )
    parser.add_argument(
        "--no-customer-samples",
        dest="customer_samples",
        action="store_false",
        help="do not rewrite customers/, crm_scorecard.csv and sales_funnel.csv",
    )
    args = parser.parse_args(argv)
    write_csv_atomically(args.out, NEEDS_HEADER, needs_log(args.rows))
    write_csv_atomically(
        args.indicators_out,
        (*NEEDS_HEADER, *INDICATOR_FIELDS),
        indicator_sample(args.indicator_rows),
    )
    print(f"wrote {args.rows} rows to {args.out}")
    print(f"wrote {args.indicator_rows} rows to {args.indicators_out}")
    if args.customer_samples:
        write_customer_samples()
        print(f"wrote customers/, crm_scorecard.csv and sales_funnel.csv under {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

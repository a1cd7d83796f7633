"""Customer lifetime value: a declared, undiscounted purchase-cycle model.

Seed 003 values a customer over a life cycle instead of one sale: a car buyer who replaces his
car every few years, trades the old one in, has it serviced every year and later buys cars for
his family is worth "总收入800万 总利润51万" (about 8 million revenue, 510 thousand profit) over
20 years. The model here is that reading made explicit. A customer is one or more purchase
*streams* (his own car, his wife's, his daughter's); each stream buys at its start year and then
once per cycle while the horizon lasts, earns a trade-in profit at every replacement, and earns
service revenue every year from its start. A retention probability weighs each repeat purchase
(the k-th repeat counts ``retention ** k``); the seed's example assumes a loyal customer
(retention 1) and no discounting, and so does the model: a discount rate would be a choice the
seed does not make.

The same function values an Olist customer: one stream whose price is the customer's average
order value, whose cycle is the observed time between orders (or a declared default), with the
pack's margin and retention. Everything is pure arithmetic on plain numbers or numpy arrays;
no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

YEAR_DAYS = 365


@dataclass(frozen=True, slots=True)
class Stream:
    """One line of repeat purchases: a product bought at ``start_year`` and every cycle after.

    Years are counted from 1, as the seed's timeline does (1, 5, 10, 15, 20); a stream starting
    in year 5 of a 20-year horizon is active for 16 years.
    """

    name: str
    price: float               # revenue of one purchase
    margin: float              # profit share of a purchase (0.04 = 4 %)
    cycle_years: float         # a new purchase every this many years
    start_year: float = 1
    trade_profit: float = 0.0  # profit on the trade-in at each replacement (not the first buy)
    service_per_year: float = 0.0   # service revenue per active year
    service_margin: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamValue:
    name: str
    purchases: float   # expected purchases (retention-weighted)
    revenue: float
    profit: float


@dataclass(frozen=True, slots=True)
class LifetimeValue:
    revenue: float
    profit: float
    streams: tuple[StreamValue, ...]


def purchase_weights(cycle_years: float, active_years: float, retention: float) -> float:
    """Expected purchases in ``active_years``: 1 + r + r**2 + ... over the purchase dates.

    Purchases fall at 0, cycle, 2*cycle, ... strictly before the end of the active years.
    """
    if active_years <= 0:
        return 0.0
    count = math.ceil(active_years / cycle_years - 1e-9)
    if retention == 1:
        return float(count)
    return (1 - retention ** count) / (1 - retention)


def value(streams: Sequence[Stream], horizon_years: float, retention: float = 1.0
          ) -> LifetimeValue:
    """Revenue and profit of a customer's streams over the horizon (undiscounted)."""
    parts = []
    for s in streams:
        active = horizon_years - s.start_year + 1
        weight = purchase_weights(s.cycle_years, active, retention)
        replacements = max(weight - 1, 0.0)  # every purchase after the first trades one in
        service_years = max(active, 0.0)
        revenue = weight * s.price + service_years * s.service_per_year
        profit = (weight * s.price * s.margin + replacements * s.trade_profit
                  + service_years * s.service_per_year * s.service_margin)
        parts.append(StreamValue(s.name, weight, revenue, profit))
    return LifetimeValue(sum(p.revenue for p in parts), sum(p.profit for p in parts),
                         tuple(parts))


def value_columns(price: np.ndarray, cycle_days: np.ndarray, observed: np.ndarray, *,
                  horizon_years: float, margin: float, retention: float,
                  service_per_year: float = 0.0, service_margin: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``value`` for one stream per customer, over whole columns: (revenue, profit).

    The stream starts at the customer's first purchase (year 1) and the horizon counts from
    there, as in the seed's example; a year is ``YEAR_DAYS`` (365) days, so a yearly buyer
    buys 3 times in 3 years. The ``observed`` purchases have happened and count in
    full; each later purchase date in the horizon weighs ``retention ** k`` (k = 1, 2, ...).
    With one observed purchase this is exactly ``value`` for one stream.
    """
    active = float(horizon_years)
    dates = np.ceil(active * YEAR_DAYS / cycle_days - 1e-9)
    remaining = np.maximum(dates - observed, 0)
    if retention == 1:
        future = remaining
    else:
        future = retention * (1 - np.power(retention, remaining)) / (1 - retention)
    weight = observed + future
    revenue = weight * price + active * service_per_year
    profit = weight * price * margin + active * service_per_year * service_margin
    return revenue, profit


# The seed's car example (003, slide "客户生命周期的价值"), as we read its "主要假设" box:
#   own car  ¥500k, margin 4 %, every 4 years, trade-in profit ¥10k, service ¥2,800/yr at 50 %;
#   wife     ¥450k, margin 4 %, every 6 years, trade-in profit ¥10k, service ¥2,800/yr at 50 %;
#   daughter ¥750k, margin 4 %, every 3 years, trade-in profit ¥20k, service ¥2,800/yr at 50 %.
# The slide does not say when the family cars start; its timeline is marked 1, 5, 10, 15, 20 and
# we start the wife's car (A4) in year 5 and the daughter's (TT) in year 10 (our reading).
CAR_EXAMPLE = (
    Stream("own car", 500_000, 0.04, 4, 1, 10_000, 2_800, 0.5),
    Stream("wife's car (A4)", 450_000, 0.04, 6, 5, 10_000, 2_800, 0.5),
    Stream("daughter's car (TT)", 750_000, 0.04, 3, 10, 20_000, 2_800, 0.5),
)
CAR_HORIZON_YEARS = 20
CAR_SEED_REVENUE = 8_000_000  # 总收入800万
CAR_SEED_PROFIT = 510_000     # 总利润51万

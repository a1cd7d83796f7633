"""Properties of the customer base: scores are ordered, every customer and payment is counted."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.engine import customer_base
from storeops.engine.customers import evaluate_base
from storeops.engine.packs import load_pack
from storeops.engine.trail import open_trail

ROOT = Path(__file__).resolve().parent.parent
PACK = load_pack(ROOT / "rules" / "customers.yaml")
SECTION = PACK.sections["customers"]
MAPPING = """\
customers:
  files: {customers: customers.csv, orders: orders.csv, payments: payments.csv,
          reviews: reviews.csv}
  as_of: "2026-12-31"
  counted_statuses: [delivered]
  customer: {id: customer_id}
  order: {id: order_id, customer: customer_id, purchased: purchased_at, status: status}
  payment: {order: order_id, value: amount}
  review: {id: review_id, order: order_id, score: score, created: created_at,
           answered: answered_at}
"""

values = st.lists(st.one_of(st.integers(0, 1000).map(float), st.just(float("nan"))),
                  min_size=1, max_size=60)


@given(values, st.integers(2, 7), st.booleans())
def test_quantile_scores_are_in_range_and_ordered(data, n, higher_is_better):
    array = np.array(data)
    scores = customer_base.score(array, customer_base.Bins("quantile", n),
                                 higher_is_better=higher_is_better)
    finite = ~np.isnan(array)
    assert set(scores[~finite].tolist()) <= {0}
    assert ((scores[finite] >= 1) & (scores[finite] <= n)).all()
    order = np.argsort(array[finite], kind="stable")
    ranked = scores[finite][order]
    steps = np.diff(ranked)
    assert (steps >= 0).all() if higher_is_better else (steps <= 0).all()


order_rows = st.lists(st.tuples(
    st.integers(0, 9),                           # customer
    st.sampled_from(["delivered", "cancelled"]),
    st.integers(0, 700),                         # day of 2025-2026
    st.lists(st.integers(0, 50_000), max_size=3),  # payments in cents
    st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(0, 300))),  # review
), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 10), order_rows)
def test_every_customer_and_every_counted_payment_is_accounted_for(n_customers, orders):
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        (folder / "customers.csv").write_text(
            "customer_id\n" + "".join(f"c{i}\n" for i in range(n_customers)), encoding="utf-8")
        lines = ["order_id,customer_id,status,purchased_at"]
        pays = ["order_id,amount"]
        reviews = ["review_id,order_id,score,created_at,answered_at"]
        expected_paid = 0
        counted_customers = set()
        cases = 0
        for k, (customer, status, day, payments, review) in enumerate(orders):
            when = np.datetime64("2025-01-01") + np.timedelta64(day, "D")
            lines.append(f"o{k},c{customer},{status},{when} 12:00:00")
            pays.extend(f"o{k},{cents / 100:.2f}" for cents in payments)
            known = customer < n_customers
            if known and status == "delivered":
                expected_paid += sum(payments)
                counted_customers.add(customer)
            if review is not None:
                score, hours = review
                reviews.append(f"r{k},o{k},{score},{when} 00:00:00,"
                               f"{when + np.timedelta64(hours, 'h')}:00:00".replace("T", " "))
                cases += known and score <= 2
        for name, rows in (("orders.csv", lines), ("payments.csv", pays),
                           ("reviews.csv", reviews)):
            (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        mapping = customer_base.load_mapping(folder / "mapping.yaml")
        base = customer_base.read_base(customer_base.resolve_files(mapping, folder), mapping,
                                       SECTION)
        with open_trail(None) as sink:
            run = evaluate_base(PACK, SECTION, base, sink)
        table = run.customers
        assert table["customer"].tolist() == [f"c{i}" for i in range(n_customers)]
        assert (table["status"] == "ok").sum() == len(counted_customers)
        assert set(table.loc[table["status"] == "ok", "segment"]) <= set("ABCDEF")
        assert table.loc[table["status"] != "ok", "segment"].isna().all()
        assert round(table["monetary"].sum() * 100) == expected_paid
        assert run.segments["customers"].sum() == len(counted_customers)
        assert len(run.complaints) == cases
    finally:
        shutil.rmtree(folder)

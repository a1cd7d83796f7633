"""The core benchmark's workload: 40 store-KPI rules and their hand-written twins.

RULES is the rule text as a pack holds it (also valid Python, simpleeval, rule-engine and
zen-engine syntax). ``collect_by_hand`` and ``first_by_hand`` are the baseline: the plain
if-chains a programmer would write for the same rules. The benchmark checks that every
peer returns exactly what these return.
"""

RULES = [
    ("low_conversion_ab", "conversion_rate < 0.12 and tier in ['A', 'B']"),
    ("sales_drop_north", "sales - sales_prev < -6000 and region == 'N'"),
    ("small_basket_promo", "avg_ticket < 22 and promo_share > 0.45"),
    ("slow_stock", "stock_days > 75 and sales / open_days < 700"),
    ("many_complaints", "complaints >= 6 and tier in ['A', 'B', 'C']"),
    ("low_margin_promo", "margin < 0.18 and promo_share * 100 > 40"),
    ("traffic_gap_a", "traffic < 1500 and tier == 'A' and open_days >= 26"),
    ("new_items_slow", "new_sku_share < 0.04 and sales * 0.1 > 4000"),
    ("understaffed", "staff < 4 and transactions / open_days > 70"),
    ("overstaffed", "staff > 11 and sales / staff < 2500"),
    ("promo_dependence", "promo_share > 0.55 or margin - 0.05 < 0.1"),
    ("weak_ticket_b", "avg_ticket * 1.1 < 24 and tier == 'B'"),
    ("east_decline", "region in ['E', 'S'] and sales_prev - sales > 5000"),
    ("closed_days", "open_days < 22 and tier in ['A', 'B']"),
    ("conversion_c", "conversion_rate < 0.09 and tier == 'C' and traffic > 1000"),
    ("stock_out_risk", "stock_days < 8 and sales / sales_prev > 1.05"),
    ("high_traffic_low_sales", "traffic > 5200 and sales / traffic < 6"),
    ("complaint_rate", "complaints / transactions > 0.03 and region != 'C'"),
    ("margin_erosion", "margin < 0.15 and sales > sales_prev * 0.95"),
    ("new_sku_push", "new_sku_share > 0.22 and conversion_rate < 0.15"),
    ("west_low_ticket", "region == 'W' and avg_ticket < 21 and open_days > 24"),
    ("ticket_drop", "avg_ticket - 30 < -9 and promo_share < 0.2"),
    ("staff_productivity", "transactions / staff < 90 and tier in ['B', 'C']"),
    ("big_store_decline", "tier == 'A' and sales < sales_prev * 0.88"),
    ("weekend_gap", "open_days <= 24 and traffic * 2 < 2600"),
    ("inventory_heavy", "stock_days > 90 or stock_days * margin > 22"),
    ("low_new_high_promo", "new_sku_share < 0.05 and promo_share > 0.5"),
    ("conversion_drop_central", "region == 'C' and conversion_rate + 0.02 < 0.13"),
    ("cheap_traffic", "traffic > 4800 and avg_ticket < 23 and tier != 'A'"),
    ("complaint_hotspot", "complaints > 7 or complaints * 2 > staff * 3"),
    ("margin_gap_b", "tier == 'B' and margin * 100 < 17"),
    ("slow_growth_a", "tier == 'A' and sales / sales_prev < 0.97 and region in ['N', 'E']"),
    ("high_stock_low_conv", "stock_days > 65 and conversion_rate < 0.11"),
    ("promo_waste", "promo_share > 0.4 and sales - sales_prev < -2000"),
    ("tiny_store", "sales < 9000 and traffic < 1200"),
    ("ticket_up_conv_down", "avg_ticket > 38 and conversion_rate < 0.1"),
    ("south_staff", "region == 'S' and staff <= 3 and traffic > 2500"),
    ("new_sku_margin", "new_sku_share * margin > 0.06 and tier == 'C'"),
    ("open_short_c", "tier == 'C' and open_days < 21 and sales > 15000"),
    ("stagnant", "sales / sales_prev > 0.99 and sales / sales_prev < 1.01 and promo_share > 0.35"),
]


def collect_by_hand(f):
    """Indices of every rule that matches, in rule order."""
    hits = []
    if f["conversion_rate"] < 0.12 and f["tier"] in ("A", "B"):
        hits.append(0)
    if f["sales"] - f["sales_prev"] < -6000 and f["region"] == "N":
        hits.append(1)
    if f["avg_ticket"] < 22 and f["promo_share"] > 0.45:
        hits.append(2)
    if f["stock_days"] > 75 and f["sales"] / f["open_days"] < 700:
        hits.append(3)
    if f["complaints"] >= 6 and f["tier"] in ("A", "B", "C"):
        hits.append(4)
    if f["margin"] < 0.18 and f["promo_share"] * 100 > 40:
        hits.append(5)
    if f["traffic"] < 1500 and f["tier"] == "A" and f["open_days"] >= 26:
        hits.append(6)
    if f["new_sku_share"] < 0.04 and f["sales"] * 0.1 > 4000:
        hits.append(7)
    if f["staff"] < 4 and f["transactions"] / f["open_days"] > 70:
        hits.append(8)
    if f["staff"] > 11 and f["sales"] / f["staff"] < 2500:
        hits.append(9)
    if f["promo_share"] > 0.55 or f["margin"] - 0.05 < 0.1:
        hits.append(10)
    if f["avg_ticket"] * 1.1 < 24 and f["tier"] == "B":
        hits.append(11)
    if f["region"] in ("E", "S") and f["sales_prev"] - f["sales"] > 5000:
        hits.append(12)
    if f["open_days"] < 22 and f["tier"] in ("A", "B"):
        hits.append(13)
    if f["conversion_rate"] < 0.09 and f["tier"] == "C" and f["traffic"] > 1000:
        hits.append(14)
    if f["stock_days"] < 8 and f["sales"] / f["sales_prev"] > 1.05:
        hits.append(15)
    if f["traffic"] > 5200 and f["sales"] / f["traffic"] < 6:
        hits.append(16)
    if f["complaints"] / f["transactions"] > 0.03 and f["region"] != "C":
        hits.append(17)
    if f["margin"] < 0.15 and f["sales"] > f["sales_prev"] * 0.95:
        hits.append(18)
    if f["new_sku_share"] > 0.22 and f["conversion_rate"] < 0.15:
        hits.append(19)
    if f["region"] == "W" and f["avg_ticket"] < 21 and f["open_days"] > 24:
        hits.append(20)
    if f["avg_ticket"] - 30 < -9 and f["promo_share"] < 0.2:
        hits.append(21)
    if f["transactions"] / f["staff"] < 90 and f["tier"] in ("B", "C"):
        hits.append(22)
    if f["tier"] == "A" and f["sales"] < f["sales_prev"] * 0.88:
        hits.append(23)
    if f["open_days"] <= 24 and f["traffic"] * 2 < 2600:
        hits.append(24)
    if f["stock_days"] > 90 or f["stock_days"] * f["margin"] > 22:
        hits.append(25)
    if f["new_sku_share"] < 0.05 and f["promo_share"] > 0.5:
        hits.append(26)
    if f["region"] == "C" and f["conversion_rate"] + 0.02 < 0.13:
        hits.append(27)
    if f["traffic"] > 4800 and f["avg_ticket"] < 23 and f["tier"] != "A":
        hits.append(28)
    if f["complaints"] > 7 or f["complaints"] * 2 > f["staff"] * 3:
        hits.append(29)
    if f["tier"] == "B" and f["margin"] * 100 < 17:
        hits.append(30)
    if f["tier"] == "A" and f["sales"] / f["sales_prev"] < 0.97 and f["region"] in ("N", "E"):
        hits.append(31)
    if f["stock_days"] > 65 and f["conversion_rate"] < 0.11:
        hits.append(32)
    if f["promo_share"] > 0.4 and f["sales"] - f["sales_prev"] < -2000:
        hits.append(33)
    if f["sales"] < 9000 and f["traffic"] < 1200:
        hits.append(34)
    if f["avg_ticket"] > 38 and f["conversion_rate"] < 0.1:
        hits.append(35)
    if f["region"] == "S" and f["staff"] <= 3 and f["traffic"] > 2500:
        hits.append(36)
    if f["new_sku_share"] * f["margin"] > 0.06 and f["tier"] == "C":
        hits.append(37)
    if f["tier"] == "C" and f["open_days"] < 21 and f["sales"] > 15000:
        hits.append(38)
    if (
        f["sales"] / f["sales_prev"] > 0.99
        and f["sales"] / f["sales_prev"] < 1.01
        and f["promo_share"] > 0.35
    ):
        hits.append(39)
    return hits


def first_by_hand(f):
    """Index of the first rule that matches, as a list (empty when none does)."""
    if f["conversion_rate"] < 0.12 and f["tier"] in ("A", "B"):
        return [0]
    if f["sales"] - f["sales_prev"] < -6000 and f["region"] == "N":
        return [1]
    if f["avg_ticket"] < 22 and f["promo_share"] > 0.45:
        return [2]
    if f["stock_days"] > 75 and f["sales"] / f["open_days"] < 700:
        return [3]
    if f["complaints"] >= 6 and f["tier"] in ("A", "B", "C"):
        return [4]
    if f["margin"] < 0.18 and f["promo_share"] * 100 > 40:
        return [5]
    if f["traffic"] < 1500 and f["tier"] == "A" and f["open_days"] >= 26:
        return [6]
    if f["new_sku_share"] < 0.04 and f["sales"] * 0.1 > 4000:
        return [7]
    if f["staff"] < 4 and f["transactions"] / f["open_days"] > 70:
        return [8]
    if f["staff"] > 11 and f["sales"] / f["staff"] < 2500:
        return [9]
    if f["promo_share"] > 0.55 or f["margin"] - 0.05 < 0.1:
        return [10]
    if f["avg_ticket"] * 1.1 < 24 and f["tier"] == "B":
        return [11]
    if f["region"] in ("E", "S") and f["sales_prev"] - f["sales"] > 5000:
        return [12]
    if f["open_days"] < 22 and f["tier"] in ("A", "B"):
        return [13]
    if f["conversion_rate"] < 0.09 and f["tier"] == "C" and f["traffic"] > 1000:
        return [14]
    if f["stock_days"] < 8 and f["sales"] / f["sales_prev"] > 1.05:
        return [15]
    if f["traffic"] > 5200 and f["sales"] / f["traffic"] < 6:
        return [16]
    if f["complaints"] / f["transactions"] > 0.03 and f["region"] != "C":
        return [17]
    if f["margin"] < 0.15 and f["sales"] > f["sales_prev"] * 0.95:
        return [18]
    if f["new_sku_share"] > 0.22 and f["conversion_rate"] < 0.15:
        return [19]
    if f["region"] == "W" and f["avg_ticket"] < 21 and f["open_days"] > 24:
        return [20]
    if f["avg_ticket"] - 30 < -9 and f["promo_share"] < 0.2:
        return [21]
    if f["transactions"] / f["staff"] < 90 and f["tier"] in ("B", "C"):
        return [22]
    if f["tier"] == "A" and f["sales"] < f["sales_prev"] * 0.88:
        return [23]
    if f["open_days"] <= 24 and f["traffic"] * 2 < 2600:
        return [24]
    if f["stock_days"] > 90 or f["stock_days"] * f["margin"] > 22:
        return [25]
    if f["new_sku_share"] < 0.05 and f["promo_share"] > 0.5:
        return [26]
    if f["region"] == "C" and f["conversion_rate"] + 0.02 < 0.13:
        return [27]
    if f["traffic"] > 4800 and f["avg_ticket"] < 23 and f["tier"] != "A":
        return [28]
    if f["complaints"] > 7 or f["complaints"] * 2 > f["staff"] * 3:
        return [29]
    if f["tier"] == "B" and f["margin"] * 100 < 17:
        return [30]
    if f["tier"] == "A" and f["sales"] / f["sales_prev"] < 0.97 and f["region"] in ("N", "E"):
        return [31]
    if f["stock_days"] > 65 and f["conversion_rate"] < 0.11:
        return [32]
    if f["promo_share"] > 0.4 and f["sales"] - f["sales_prev"] < -2000:
        return [33]
    if f["sales"] < 9000 and f["traffic"] < 1200:
        return [34]
    if f["avg_ticket"] > 38 and f["conversion_rate"] < 0.1:
        return [35]
    if f["region"] == "S" and f["staff"] <= 3 and f["traffic"] > 2500:
        return [36]
    if f["new_sku_share"] * f["margin"] > 0.06 and f["tier"] == "C":
        return [37]
    if f["tier"] == "C" and f["open_days"] < 21 and f["sales"] > 15000:
        return [38]
    if (
        f["sales"] / f["sales_prev"] > 0.99
        and f["sales"] / f["sales_prev"] < 1.01
        and f["promo_share"] > 0.35
    ):
        return [39]
    return []

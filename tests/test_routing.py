"""Travel times and day routes: known answers, and brute-force optimal tours as the reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from storeops.engine.routing import day_route, route_length, travel_minutes


def brute_force(matrix, depot, stops):
    """Shortest round trip by trying every order (fine up to 7 stops)."""
    cost = np.asarray(matrix).tolist()
    best = None
    for order in itertools.permutations(stops):
        path = [depot, *order, depot]
        length = sum(cost[a][b] for a, b in itertools.pairwise(path))
        if best is None or length < best:
            best = length
    return best


def optimum(matrix, depot, stops):
    """Shortest round trip by Held-Karp dynamic programming: exact, and fast enough for 9 stops."""
    cost = np.asarray(matrix).tolist()
    n = len(stops)
    best = {(1 << k, k): cost[depot][stops[k]] for k in range(n)}
    for size in range(2, n + 1):
        for subset in itertools.combinations(range(n), size):
            bits = sum(1 << k for k in subset)
            for k in subset:
                prev = bits & ~(1 << k)
                best[(bits, k)] = min(
                    best[(prev, j)] + cost[stops[j]][stops[k]] for j in subset if j != k
                )
    full = (1 << n) - 1
    return min(best[(full, k)] + cost[stops[k]][depot] for k in range(n))


@pytest.mark.parametrize("asymmetric", [False, True])
def test_held_karp_reference_equals_brute_force(asymmetric):
    rng = np.random.default_rng(5)
    for n in (1, 2, 4, 6, 7):
        m = travel_minutes(rng.uniform(0, 60, size=(n + 1, 2)), 1.3, 45)
        if asymmetric:
            m = m * rng.uniform(0.8, 1.25, size=m.shape)
        stops = list(range(1, n + 1))
        assert optimum(m, 0, stops) == pytest.approx(brute_force(m, 0, stops))


def nearest_neighbour_length(matrix, depot, stops):
    here, left, total = depot, list(stops), 0.0
    while left:
        nxt = min(left, key=lambda s: matrix[here][s])
        total += matrix[here][nxt]
        left.remove(nxt)
        here = nxt
    return total + matrix[here][depot]


def test_travel_minutes_is_distance_times_road_factor_over_speed():
    # 3-4-5 triangle: 5 km x 1.2 at 60 km/h is 6 minutes
    m = travel_minutes([[0, 0], [3, 4], [3, 0]], road_factor=1.2, speed_kmh=60)
    assert m.shape == (3, 3)
    assert m[0, 1] == pytest.approx(6.0)
    assert m[1, 0] == pytest.approx(6.0)
    assert m[0, 2] == pytest.approx(3.6)
    assert m[1, 2] == pytest.approx(4.8)
    assert np.all(np.diag(m) == 0)


def test_travel_minutes_refuses_bad_shapes_and_speeds():
    with pytest.raises(ValueError, match="shape"):
        travel_minutes([1, 2, 3], 1.3, 50)
    with pytest.raises(ValueError, match="positive"):
        travel_minutes([[0, 0]], 1.3, 0)


def test_day_route_on_a_line_goes_out_and_back():
    # depot at 0 km, stops at 1..4 km on a line: optimal is 8 km both ways whatever the order given
    coords = [[0, 0], [3, 0], [1, 0], [4, 0], [2, 0]]
    m = travel_minutes(coords, 1.0, 60)  # 1 minute per km
    order, total = day_route(m, 0, [1, 2, 3, 4])
    assert total == pytest.approx(8.0)
    assert order in ((2, 4, 1, 3), (3, 1, 4, 2))


def test_day_route_trivial_cases():
    m = travel_minutes([[0, 0], [0, 5]], 1.0, 60)
    assert day_route(m, 0, []) == ((), 0.0)
    assert day_route(m, 0, [0]) == ((), 0.0)  # the depot itself is no stop
    order, total = day_route(m, 0, [1, 1])
    assert order == (1,)
    assert total == pytest.approx(10.0)


def test_nearest_neighbour_trap_is_repaired():
    # NN from the depot takes the near stop first and must then cross back; 2-opt/Or-opt fixes it
    coords = [[0, 0], [1, 0], [-1, 0], [10, 0], [-10, 0]]
    m = travel_minutes(coords, 1.0, 60)
    order, total = day_route(m, 0, [1, 2, 3, 4])
    assert nearest_neighbour_length(m.tolist(), 0, [1, 2, 3, 4]) > 40.0 + 1e-9
    assert total == pytest.approx(40.0)
    assert total == pytest.approx(route_length(m, 0, order))


@pytest.mark.parametrize("asymmetric", [False, True])
def test_day_routes_are_near_optimal_and_never_worse_than_nearest_neighbour(asymmetric):
    rng = np.random.default_rng(20261123)
    ratios = []
    for n in range(4, 10):
        for _ in range(40):
            coords = rng.uniform(0, 80, size=(n + 1, 2))
            m = travel_minutes(coords, 1.3, 45)
            if asymmetric:
                m = m * rng.uniform(0.8, 1.25, size=m.shape)
                np.fill_diagonal(m, 0.0)
            stops = list(range(1, n + 1))
            order, total = day_route(m, 0, stops)
            assert sorted(order) == stops
            assert total == pytest.approx(route_length(m, 0, order))
            best = optimum(m, 0, stops)
            assert total >= best - 1e-9
            assert total <= nearest_neighbour_length(m.tolist(), 0, stops) + 1e-9
            ratios.append(total / best)
    mean_excess = float(np.mean(ratios)) - 1.0
    assert mean_excess < 0.01, f"mean excess over optimum {mean_excess:.4f}"
    # a single bad day is bounded too; asymmetric matrices are harder for segment reversal
    assert max(ratios) < (1.15 if asymmetric else 1.03)


def test_day_route_is_deterministic_and_uses_global_indices():
    rng = np.random.default_rng(7)
    m = travel_minutes(rng.uniform(0, 50, size=(30, 2)), 1.3, 40)
    stops = [17, 3, 25, 9, 11, 28, 4]
    first = day_route(m, 12, stops)
    assert first == day_route(m, 12, list(stops))
    assert sorted(first[0]) == sorted(stops)
    assert first[1] == pytest.approx(route_length(m, 12, first[0]))


def test_day_routes_of_10_to_12_stops_are_near_optimal():
    rng = np.random.default_rng(11)
    ratios = []
    for n in (10, 11, 12):
        for _ in range(4):
            m = travel_minutes(rng.uniform(0, 80, size=(n + 1, 2)), 1.3, 45)
            stops = list(range(1, n + 1))
            order, total = day_route(m, 0, stops)
            assert sorted(order) == stops
            ratios.append(total / optimum(m, 0, stops))
    assert min(ratios) >= 1 - 1e-9
    assert float(np.mean(ratios)) - 1 < 0.01

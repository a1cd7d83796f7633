"""Travel times and day routes for supervisors and customer managers.

Two things only: turning store coordinates into a travel-time matrix, and ordering one day's
stops into a short round trip from a depot (the supervisor's base). Both are pure functions of
their arguments, so the simulation, the week scheduler and the tests call the same code.

A day has 4-12 stops, so the route is built by nearest neighbour and then improved by 2-opt
(segment reversal) and Or-opt (moving a run of 1-3 stops elsewhere) until no move shortens it.
On such small tours this lands within about 1 % of the optimum on average (the tests compare with
brute force for 4-9 stops) and is never longer than the nearest-neighbour tour it starts from,
because a move is only taken when it strictly shortens the tour.

Matrices may be asymmetric (a travel-time matrix given by the planner, one-way streets); moves
are then judged by recomputing the tour length, which is exact for any matrix. For symmetric
matrices the usual constant-time 2-opt gain is used.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

_EPS = 1e-9  # a move must gain more than rounding noise, or 2-opt could cycle


def travel_minutes(coords_km, road_factor: float, speed_kmh: float) -> np.ndarray:
    """Travel time in minutes between every pair of points.

    ``coords_km`` is an (n, 2) array of planar coordinates in kilometres. The straight-line
    distance is stretched by ``road_factor`` (roads are not straight; 1.2-1.4 is typical) and
    driven at ``speed_kmh``. The result is symmetric with a zero diagonal.
    """
    points = np.asarray(coords_km, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"coords_km must have shape (n, 2), not {points.shape}")
    if road_factor <= 0 or speed_kmh <= 0:
        raise ValueError("road_factor and speed_kmh must be positive")
    diff = points[:, None, :] - points[None, :, :]
    distance = np.sqrt((diff * diff).sum(axis=2))
    return distance * (road_factor * 60.0 / speed_kmh)


def day_route(minutes_matrix, depot: int, stops: Sequence[int], *,
              symmetric: bool | None = None) -> tuple[tuple[int, ...], float]:
    """Order ``stops`` into a round trip from ``depot``; return (ordered stops, total minutes).

    ``minutes_matrix`` is indexed by the same integers as ``depot`` and ``stops``; the total
    includes the way out from and back to the depot. Duplicate stops are visited once. The result
    depends only on the arguments (ties are broken by the order of ``stops``). ``symmetric``
    says whether the matrix is symmetric (checked on the stops when not given).
    """
    unique: list[int] = list(dict.fromkeys(int(s) for s in stops if int(s) != depot))
    if not unique:
        return (), 0.0
    nodes = [int(depot), *unique]
    sub = np.asarray(minutes_matrix, dtype=float)[np.ix_(nodes, nodes)]
    cost = sub.tolist()  # small lists are faster than numpy element access in the loops below
    if symmetric is None:
        symmetric = bool(np.allclose(sub, sub.T))
    tour = _nearest_neighbour(cost, len(nodes))
    tour = _improve(cost, tour, symmetric)
    total = _tour_length(cost, tour)
    if not symmetric:
        # 2-opt reverses segments, which changes their length on an asymmetric matrix; a second
        # descent from the reversed tour escapes most of the local optima this leaves
        other = _improve(cost, tour[::-1], symmetric)
        other_total = _tour_length(cost, other)
        if other_total < total - _EPS:
            tour, total = other, other_total
    return tuple(nodes[i] for i in tour[1:-1]), float(total)


def route_length(minutes_matrix, depot: int, ordered_stops: Sequence[int]) -> float:
    """Minutes of the round trip depot -> ordered_stops -> depot, in the order given."""
    path = [int(depot), *(int(s) for s in ordered_stops), int(depot)]
    matrix = np.asarray(minutes_matrix, dtype=float)
    return float(sum(matrix[a, b] for a, b in itertools.pairwise(path)))


def _nearest_neighbour(cost: list[list[float]], n: int) -> list[int]:
    """Closed tour 0 -> ... -> 0 (index 0 is the depot), always to the nearest unvisited stop."""
    tour = [0]
    left = list(range(1, n))
    here = 0
    while left:
        row = cost[here]
        best = min(left, key=row.__getitem__)  # first of equals: ties follow the stops' order
        left.remove(best)
        tour.append(best)
        here = best
    tour.append(0)
    return tour


def _tour_length(cost: list[list[float]], tour: list[int]) -> float:
    return sum(cost[a][b] for a, b in itertools.pairwise(tour))


def _improve(cost: list[list[float]], tour: list[int], symmetric: bool) -> list[int]:
    """2-opt and Or-opt until neither finds a strictly shorter tour."""
    length = _tour_length(cost, tour)
    improved = True
    while improved:
        improved = False
        tour, length, changed = _two_opt(cost, tour, length, symmetric)
        improved |= changed
        tour, length, changed = _or_opt(cost, tour, length, symmetric)
        improved |= changed
    return tour


def _two_opt(cost, tour, length, symmetric):
    n = len(tour)  # closed: tour[0] == tour[-1] == depot
    changed = False
    again = True
    while again:
        again = False
        for i in range(1, n - 2):
            for j in range(i + 1, n - 1):
                if symmetric:
                    a, b, c, d = tour[i - 1], tour[i], tour[j], tour[j + 1]
                    gain = cost[a][b] + cost[c][d] - cost[a][c] - cost[b][d]
                    if gain > _EPS:
                        tour[i : j + 1] = tour[i : j + 1][::-1]
                        length -= gain
                        again = changed = True
                else:
                    candidate = tour[:i] + tour[i : j + 1][::-1] + tour[j + 1 :]
                    new_length = _tour_length(cost, candidate)
                    if new_length < length - _EPS:
                        tour, length = candidate, new_length
                        again = changed = True
    return tour, length, changed


def _or_opt(cost, tour, length, symmetric):
    """Move a run of consecutive stops (kept in direction) to the best other place.

    Runs of 1-3 stops on symmetric matrices (classic Or-opt); runs of any length on asymmetric
    ones, which makes it the direction-keeping 3-opt move that 2-opt lacks there. The gain is
    computed from the three edges removed and three added, exact for any matrix because the run
    is not reversed.
    """
    changed = False
    again = True
    while again:
        again = False
        n = len(tour)  # closed tour; positions 1..n-2 are stops
        for size in (1, 2, 3) if symmetric else range(1, n - 2):
            if size > n - 3:
                break
            for s in range(1, n - size):
                e = s + size - 1  # run is tour[s..e]
                prev, first, last, nxt = tour[s - 1], tour[s], tour[e], tour[e + 1]
                removed = cost[prev][first] + cost[last][nxt] - cost[prev][nxt]
                best_gain, best_k = _EPS, -1
                for k in range(n - 1):  # insert between tour[k] and tour[k + 1]
                    if s - 1 <= k <= e:
                        continue
                    u, v = tour[k], tour[k + 1]
                    gain = removed - (cost[u][first] + cost[last][v] - cost[u][v])
                    if gain > best_gain:
                        best_gain, best_k = gain, k
                if best_k >= 0:
                    run = tour[s : e + 1]
                    rest = tour[:s] + tour[e + 1 :]
                    at = best_k + 1 if best_k < s else best_k + 1 - size
                    tour = rest[:at] + run + rest[at:]
                    length -= best_gain
                    again = changed = True
                    break
            if again:
                break
    return tour, length, changed

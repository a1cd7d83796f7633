"""Static overlap and contradiction checks, with every witness checked by evaluation."""

from __future__ import annotations

import datetime
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.engine.analysis import (
    UNKNOWN,
    literal_comparisons,
    overlap,
    satisfiable,
)
from storeops.engine.expressions import Field, compile_expression

FIELDS = {
    "x": Field("x", "number"),
    "n": Field("n", "integer"),
    "a": Field("a", "number"),
    "b": Field("b", "number"),
    "tier": Field("tier", "text"),
    "need": Field("need", "text"),
    "flag": Field("flag", "boolean"),
    "other": Field("other", "boolean"),
    "d": Field("d", "date"),
}


def compile_(text: str):
    return compile_expression(text, FIELDS, expect="boolean")


def check_overlap(left: str, right: str):
    """overlap() both ways round; a witness must make both conditions true."""
    a, b = compile_(left), compile_(right)
    found = overlap(a, b, FIELDS)
    mirrored = overlap(b, a, FIELDS)
    assert (found is UNKNOWN) == (mirrored is UNKNOWN)
    assert (found is None) == (mirrored is None)
    for witness in (found, mirrored):
        if isinstance(witness, dict):
            assert a(witness) is True, witness
            assert b(witness) is True, witness
    return found


DISJOINT = [
    ("need == 'N01'", "need == 'N02'"),
    ("pct_change(a, b) < 0 and need == 'N1'", "need == 'N2'"),
    ("x < 1", "x >= 1"),
    ("x < 1", "not x < 1"),
    ("x <= 1", "x > 1"),
    ("n > 1 and n < 3", "n != 2"),
    ("n > 1.5", "n < 2"),
    ("0 < x < 1", "x > 2"),
    ("tier in ['A', 'B']", "tier not in ['A', 'B']"),
    ("tier in ['A', 'B']", "tier in ['C']"),
    ("tier < 'B'", "tier >= 'B'"),
    ("flag", "not flag"),
    ("flag == true", "flag == false"),
    ("not (x < 1 or flag)", "flag"),
    ("is_null(x)", "x > 1"),
    ("not is_null(x)", "is_null(x)"),
    ("d < date('2024-01-01')", "d >= date('2024-01-01')"),
    ("d > date('2024-01-01') and d < date('2024-01-02')", "true"),
    ("x > 1 and x < 1", "true"),
    ("(x < 1 or x > 5) and tier == 'A'", "x == 3 or tier == 'B'"),
    ("1 / 0 > 1", "true"),
    ("false", "x > 1"),
]


@pytest.mark.parametrize(("left", "right"), DISJOINT)
def test_disjoint(left, right):
    assert check_overlap(left, right) is None


OVERLAPPING = [
    ("x < 0.12 and tier in ['A','B']", "x < 0.2 and tier == 'B'", {"x": 0.0, "tier": "B"}),
    ("x > 1 and x < 3", "x != 2", {"x": 1.5}),
    ("n > 1 and n < 4", "n != 2", {"n": 3}),
    ("n >= 10", "n < 12 and n != 10", {"n": 11}),
    ("not (x < 1 or flag)", "x >= 1", {"x": 1.0, "flag": False}),
    ("is_null(x)", "tier == 'A'", {"x": None, "tier": "A"}),
    ("tier in ['A', 'B', 'C']", "tier not in ['A', 'B']", {"tier": "C"}),
    ("tier > 'A' and tier <= 'B'", "tier != 'B'", {"tier": "A\0"}),
    ("d >= date('2024-01-01')", "d < date('2024-01-03') and d != date('2024-01-01')",
     {"d": datetime.date(2024, 1, 2)}),
    ("x < 1 or flag", "x > 5", {"flag": True, "x": 6.0}),
    ("true", "true", {}),
    # A dropped atom (is_null of a sum) happens to hold on the witness: still a proof.
    ("x > 1 and is_null(a + b)", "x > 2", {"x": 3.0}),
]  # fmt: skip


@pytest.mark.parametrize(("left", "right", "witness"), OVERLAPPING)
def test_overlap_gives_a_checked_witness(left, right, witness):
    assert check_overlap(left, right) == witness


UNDECIDED = [
    ("pct_change(a, b) < 0 and need == 'N1'", "need == 'N1'"),
    ("a + b > 1", "a < 0"),
    ("a < b", "b < a"),  # disjoint in truth, but field against field is not understood
    ("round(x) == 1", "x > 5"),
]


@pytest.mark.parametrize(("left", "right"), UNDECIDED)
def test_unknown_when_something_was_dropped(left, right):
    assert check_overlap(left, right) is UNKNOWN


def test_too_many_conjunctions_is_unknown():
    # (x1 or y1) and ... and (x7 or y7) has 2**7 = 128 conjunctions, over the cap of 64.
    wide = " and ".join(f"(x == {k} or n > {k})" for k in range(7))
    assert overlap(compile_(wide), compile_("x > 1"), FIELDS) is UNKNOWN
    assert satisfiable(compile_(wide), FIELDS) is None
    narrow = " and ".join(f"(x == {k} or n > {k})" for k in range(6))
    assert satisfiable(compile_(narrow), FIELDS) is True
    contradictory = " and ".join(f"(x == {k} or n == {k})" for k in range(6))
    assert satisfiable(compile_(contradictory), FIELDS) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x < 1 and x > 2", False),
        ("n > 1 and n < 2", False),
        ("tier == 'A' and tier == 'B'", False),
        ("flag and not flag", False),
        ("is_null(x) and x > 0", False),
        ("false", False),
        ("1 / 0 > 1", False),
        ("x < 1 and n > 2", True),
        ("x > 1 or x < 0", True),
        ("not flag", True),
        ("a + b > 1", None),
        ("a + b > 1 and a < 0 and a > 0", False),  # the understood part alone is contradictory
    ],
)
def test_satisfiable(text, expected):
    assert satisfiable(compile_(text), FIELDS) is expected


def test_integer_steps_come_from_the_declared_fields():
    # The same condition on a number field has room between 1 and 2.
    number = {**FIELDS, "n": Field("n", "number")}
    condition = compile_expression("n > 1 and n < 2", number)
    assert satisfiable(condition, number) is True
    assert satisfiable(condition, {**number, "n": Field("n", "integer")}) is False


def test_unknown_is_not_a_truth_value():
    with pytest.raises(TypeError, match="neither true nor false"):
        bool(UNKNOWN)
    assert repr(UNKNOWN) == "UNKNOWN"
    assert pickle.loads(pickle.dumps(UNKNOWN)) is UNKNOWN


def test_literal_comparisons_point_at_each_literal():
    condition = compile_("tier == 'A' or need in ['N1', 'N2'] and 'X' != tier or x > 1")
    assert sorted(literal_comparisons(condition), key=lambda item: item[2]) == [
        ("tier", "A", 8),
        ("need", "N1", 24),
        ("need", "N2", 30),
        ("tier", "X", 40),
    ]


# -- properties: witnesses hold, and "disjoint" is never wrong ------------------------------------

ATOM_FIELDS = {"x": "number", "n": "integer", "tier": "text", "flag": "boolean"}
VALUES = {
    "x": st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 2.5]),
    "n": st.integers(-2, 4),
    "tier": st.sampled_from(["A", "B", "C", ""]),
    "flag": st.booleans(),
}


@st.composite
def atoms(draw):
    field = draw(st.sampled_from(sorted(ATOM_FIELDS)))
    if field == "flag":
        return draw(st.sampled_from(["flag", "not flag", "flag == true", "is_null(flag)"]))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!=", "in", "not in"]))
    if field == "tier":
        literal = lambda: repr(draw(VALUES["tier"]))  # noqa: E731
    else:
        literal = lambda: repr(draw(VALUES[field]))  # noqa: E731
    if op in ("in", "not in"):
        items = ", ".join(literal() for _ in range(draw(st.integers(0, 3))))
        return f"{field} {op} [{items}]"
    if draw(st.booleans()):
        return f"{literal()} {op} {field}"
    return f"{field} {op} {literal()}"


@st.composite
def conditions(draw, depth=2):
    if depth == 0 or draw(st.booleans()):
        return draw(atoms())
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(conditions(depth - 1))})"
    return f"({draw(conditions(depth - 1))}) {kind} ({draw(conditions(depth - 1))})"


FACTS = st.fixed_dictionaries(
    {}, optional={name: st.one_of(st.none(), values) for name, values in VALUES.items()}
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), conditions(), st.lists(FACTS, min_size=20, max_size=20))
def test_overlap_answers_are_sound(left, right, facts):
    a = compile_expression(left, ATOM_FIELDS)
    b = compile_expression(right, ATOM_FIELDS)
    found = overlap(a, b, ATOM_FIELDS)
    if isinstance(found, dict):
        assert a(found) is True and b(found) is True
    elif found is None:
        # Provably disjoint: no fact may make both true.
        assert not any(a(fact) is True and b(fact) is True for fact in facts)
    # Atoms here are all understood, so the answer is never "cannot tell" ...
    assert found is not UNKNOWN
    # ... and satisfiable agrees with the conjunction.
    both = compile_expression(f"({left}) and ({right})", ATOM_FIELDS)
    assert satisfiable(both, ATOM_FIELDS) is (found is not None)


def test_issue_3_text_at_most_empty_string_is_only_the_empty_string():
    # found by the property test under the derandomized CI profile: tier <= '' admits only ''
    a = compile_expression("not (flag or tier in ['A', ''])", ATOM_FIELDS)
    b = compile_expression("'' >= tier", ATOM_FIELDS)
    assert overlap(a, b, ATOM_FIELDS) is None
    c = compile_expression("tier <= '' and tier != 'x'", ATOM_FIELDS)
    assert satisfiable(c, ATOM_FIELDS) is True

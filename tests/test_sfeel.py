"""S-FEEL cells -> pack conditions: translations, truth tables, errors, properties.

The semantic tests do not trust the translated text: they compile it with the
real expression compiler and check, value by value (null included), which
inputs match, against truth tables written by hand from the DMN definition of
each test. A hypothesis oracle then checks random lists of tests against a
direct Python reading of S-FEEL with Kleene nulls.
"""

from __future__ import annotations

import contextlib
import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.engine.errors import ExpressionError
from storeops.engine.expressions import compile_expression, evaluate_reference
from storeops.engine.sfeel import parse_output, translate_cell

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def matching(cell, field_type: str, values: list) -> list:
    """The values (None = null) for which the translated cell matches."""
    expr = compile_expression(translate_cell(cell, "x"), {"x": field_type}, expect="boolean")
    hits = []
    for value in values:
        fact = {"x": value}
        result = expr(fact)
        # the generated code and the reference interpreter must agree, nulls included
        assert result == evaluate_reference(expr.node, fact), (cell, value)
        if result is True:
            hits.append(value)
    return hits


# -- translation text --------------------------------------------------------------------------

TRANSLATIONS = [
    ("-", "true"),
    ("", "true"),
    ("  ", "true"),
    (None, "true"),
    (">=18", "x >= 18"),
    ("< 0.12", "x < 0.12"),
    ("> -5", "x > -5"),
    ("<=.5", "x <= 0.5"),
    ("18", "x == 18"),
    ("-2.50", "x == -2.50"),
    ('"A"', "x == 'A'"),
    ('"Medium","Low"', "x in ['Medium', 'Low']"),
    ("1, 2, 3", "x in [1, 2, 3]"),
    ("true", "x == true"),
    ("false", "x == false"),
    ("true, false", "x in [true, false]"),
    ("[1..5]", "1 <= x <= 5"),
    ("(1..5]", "1 < x <= 5"),
    ("]1..5]", "1 < x <= 5"),
    ("[1..5)", "1 <= x < 5"),
    ("[1..5[", "1 <= x < 5"),
    ("]1..5[", "1 < x < 5"),
    ('["a".."m"]', "'a' <= x <= 'm'"),
    ('date("2024-01-31")', "x == date('2024-01-31')"),
    ('>= date("2024-01-31")', "x >= date('2024-01-31')"),
    ('[date("2024-01-01")..date("2024-12-31")]',
     "date('2024-01-01') <= x <= date('2024-12-31')"),
    ('date("2024-01-01"), date("2024-02-01")',
     "x == date('2024-01-01') or x == date('2024-02-01')"),
    ("<0, >100", "x < 0 or x > 100"),
    ("<0, 5, [10..20]", "x < 0 or x == 5 or 10 <= x <= 20"),
    ('not("High")', "not (x == 'High')"),
    ("not(1, 2)", "not (x in [1, 2])"),
    ("not ( <0, >100 )", "not (x < 0 or x > 100)"),
    ("null", "is_null(x)"),
    ("null, 5", "is_null(x) or x == 5"),
    ("not(null)", "not (is_null(x))"),
    # YAML values are the literal they spell
    (18, "x == 18"),
    (-3, "x == -3"),
    (0.25, "x == 0.25"),
    (1e-05, "x == 0.00001"),
    (True, "x == true"),
    (False, "x == false"),
    (Decimal("2.50"), "x == 2.50"),
    # strings: FEEL double quotes and escapes -> pack single quotes, ' and \ escaped
    ('"it\'s"', r"x == 'it\'s'"),
    (r'"a\\b"', r"x == 'a\\b'"),
    (r'"say \"hi\""', "x == 'say \"hi\"'"),
    (r'"tab\there"', r"x == 'tab\there'"),
    (r'"\u00e9t\u00e9"', "x == 'été'"),
    (r'"\uD83D\uDE00"', "x == '\U0001F600'"),
    ('"a, b"', "x == 'a, b'"),
    ('"[1..2]"', "x == '[1..2]'"),
]


@pytest.mark.parametrize(("cell", "expected"), TRANSLATIONS)
def test_translation(cell, expected):
    assert translate_cell(cell, "x") == expected


@pytest.mark.parametrize(("subject", "expected"), [
    ("age", "age >= 18"),
    ("(sales - sales_prev)", "(sales - sales_prev) >= 18"),
    ("sales - sales_prev", "(sales - sales_prev) >= 18"),
    ("pct_change(sales, sales_prev)", "pct_change(sales, sales_prev) >= 18"),
    ("(a) + (b)", "((a) + (b)) >= 18"),
    ("max(a, b) * 2", "(max(a, b) * 2) >= 18"),
    ("(')' + b)", "(')' + b) >= 18"),
])
def test_subject_is_parenthesised_where_needed(subject, expected):
    assert translate_cell(">=18", subject) == expected


def test_subject_precedence_is_kept():
    # Without the parentheses `p or q == false` would read as `p or (q == false)`.
    text = translate_cell("false", "p or q")
    expr = compile_expression(text, {"p": "boolean", "q": "boolean"})
    assert expr({"p": True, "q": False}) is False
    assert expr({"p": False, "q": False}) is True
    diff = compile_expression(translate_cell("[1..2]", "a - b"), {"a": "number", "b": "number"})
    assert [diff({"a": a, "b": 1}) for a in (1, 2, 3, 4)] == [False, True, True, False]


# -- truth tables ------------------------------------------------------------------------------

NUMBERS = [None, -6, -5, -1, 0, 0.5, 1, 4.99, 5, 5.01, 17, 18, 19]
NON_NULL_NUMBERS = [v for v in NUMBERS if v is not None]

NUMBER_TABLE = [
    ("-", NUMBERS),
    ("", NUMBERS),
    (None, NUMBERS),
    (">=18", [18, 19]),
    (">18", [19]),
    ("<=0", [-6, -5, -1, 0]),
    ("<18", [-6, -5, -1, 0, 0.5, 1, 4.99, 5, 5.01, 17]),
    ("5", [5]),
    (5, [5]),
    (0.5, [0.5]),
    (".5", [0.5]),
    ("-5", [-5]),
    ("< -5", [-6]),
    ("[1..5]", [1, 4.99, 5]),
    ("(1..5]", [4.99, 5]),
    ("]1..5]", [4.99, 5]),
    ("[1..5)", [1, 4.99]),
    ("[1..5[", [1, 4.99]),
    ("(1..5)", [4.99]),
    ("]1..5[", [4.99]),
    ("[-5..0]", [-5, -1, 0]),
    ("5, 18", [5, 18]),
    ("<0, >18", [-6, -5, -1, 19]),
    ("<0, 5, [17..18]", [-6, -5, -1, 5, 17, 18]),
    ("not(5)", [v for v in NON_NULL_NUMBERS if v != 5]),
    ("not([1..5])", [-6, -5, -1, 0, 0.5, 5.01, 17, 18, 19]),
    ("not(<0, >18)", [0, 0.5, 1, 4.99, 5, 5.01, 17, 18]),
    ("null", [None]),
    ("null, 5", [None, 5]),
    ("null, >=18", [None, 18, 19]),
    ("not(null)", NON_NULL_NUMBERS),
    ("not(null, 5)", [v for v in NON_NULL_NUMBERS if v != 5]),
]


@pytest.mark.parametrize(("cell", "expected"), NUMBER_TABLE)
def test_number_truth_table(cell, expected):
    assert matching(cell, "number", NUMBERS) == expected


def test_integer_fields_take_number_cells():
    values = [None, 1, 2, 3, 17, 18]
    assert matching(">=2.5", "integer", values) == [3, 17, 18]
    assert matching("[2..17]", "integer", values) == [2, 3, 17]


TEXTS = [None, "", "A", "B", "High", "Low", "Medium", "it's", "a\\b", "é"]

TEXT_TABLE = [
    ("-", TEXTS),
    ('"Medium","Low"', ["Low", "Medium"]),
    ('"A"', ["A"]),
    ('""', [""]),
    ('not("A")', [v for v in TEXTS if v not in (None, "A")]),
    ('not("High", "Low")', [v for v in TEXTS if v not in (None, "High", "Low")]),
    ('<"B"', ["", "A"]),
    ('["A".."H"]', ["A", "B"]),
    ('["A".."High"]', ["A", "B", "High"]),
    ('"it\'s"', ["it's"]),
    (r'"a\\b"', ["a\\b"]),
    (r'"\u00e9"', ["é"]),
    ("null", [None]),
    ('null, "A"', [None, "A"]),
]


@pytest.mark.parametrize(("cell", "expected"), TEXT_TABLE)
def test_text_truth_table(cell, expected):
    assert matching(cell, "text", TEXTS) == expected


BOOLEANS = [None, True, False]

BOOLEAN_TABLE = [
    ("-", [None, True, False]),
    ("true", [True]),
    (True, [True]),
    ("false", [False]),
    (False, [False]),
    ("true, false", [True, False]),
    ("not(true)", [False]),
    ("null", [None]),
    ("null, false", [None, False]),
]


@pytest.mark.parametrize(("cell", "expected"), BOOLEAN_TABLE)
def test_boolean_truth_table(cell, expected):
    assert matching(cell, "boolean", BOOLEANS) == expected


D = datetime.date
DATES = [None, D(2023, 12, 31), D(2024, 1, 1), D(2024, 6, 30), D(2024, 12, 31), D(2025, 1, 1)]

DATE_TABLE = [
    ('date("2024-01-01")', [D(2024, 1, 1)]),
    ('< date("2024-01-01")', [D(2023, 12, 31)]),
    ('>= date("2024-12-31")', [D(2024, 12, 31), D(2025, 1, 1)]),
    ('[date("2024-01-01")..date("2024-12-31")]', [D(2024, 1, 1), D(2024, 6, 30),
                                                  D(2024, 12, 31)]),
    ('(date("2024-01-01")..date("2024-12-31"))', [D(2024, 6, 30)]),
    ('date("2024-01-01"), date("2025-01-01")', [D(2024, 1, 1), D(2025, 1, 1)]),
    ('not(date("2024-01-01"))', [D(2023, 12, 31), D(2024, 6, 30), D(2024, 12, 31),
                                 D(2025, 1, 1)]),
    ("null", [None]),
]


@pytest.mark.parametrize(("cell", "expected"), DATE_TABLE)
def test_date_truth_table(cell, expected):
    assert matching(cell, "date", DATES) == expected


def test_a_cell_of_the_wrong_type_is_a_compile_error_not_a_silent_mismatch():
    with pytest.raises(ExpressionError):
        compile_expression(translate_cell('"A"', "x"), {"x": "number"})
    with pytest.raises(ExpressionError):
        compile_expression(translate_cell("< 5", "x"), {"x": "text"})


# -- errors ------------------------------------------------------------------------------------

ERRORS = [
    ("Age", 0, "name 'Age'"),
    ("> Age", 2, "name 'Age'"),
    ("x + 1", 0, "name 'x'"),
    ("5 + 1", 2, "arithmetic '+'"),
    ("5 - 1", 2, "arithmetic '-'"),
    ("?", 0, "'?'"),
    ("? > 5", 0, "'?'"),
    ("count(x)", 0, "function call 'count(...)'"),
    ('time("10:00:00")', 0, "function call 'time(...)'"),
    ('date and time("2024-01-01T00:00:00")', 0, "name 'date'"),
    ("[1..", 4, "expected the interval's upper end, found the end"),
    ("[1..5", 5, "']', ')' or '[' to close the interval"),
    ("[1 5]", 3, "'..' in the interval"),
    ("<", 1, "expected a literal after '<', found the end"),
    ("< true", 2, "'<' needs a number, string or date"),
    ("[false..true]", 0, "an interval needs numbers, strings or dates"),
    ('[1.."a"]', 0, "the interval's ends are a number and a string"),
    ("-, 5", 0, "'-' (any value) must be the whole cell"),
    ("5, -", 3, "'-' (any value) must be the whole cell"),
    ("'a'", 0, "double quotes"),
    ('"abc', 0, "unterminated string"),
    (r'"a\qb"', 2, r"unknown escape '\q'"),
    (r'"\u12"', 1, "expected 4 hex digits"),
    (r'"\uD800"', 1, "is not a character"),
    ("not 5", 0, "'not' needs parentheses"),
    ("not(5", 5, "',' or ')' to close not(...)"),
    ("5, not(6)", 3, "not(...) must enclose the whole cell"),
    ("= 5", 0, "'=' tests"),
    ("!= 5", 0, "'!=' tests"),
    ("1e3", 0, "exponent notation"),
    ('date("2024-13-01")', 5, "invalid date"),
    ("date(2024)", 5, "date() needs a string literal"),
    ("{a: 1}", 0, "FEEL contexts"),
    ("5 6", 2, "expected ',' or the end, found 6"),
    ("5,", 2, "found the end"),
    ("年龄", 0, "name '年龄'"),
    ("x > 5 and x < 6", 0, "name 'x'"),
    (float("nan"), 0, "the number nan"),
    ([1, 2], 0, "a cell must be text, a number or a boolean, got list"),
]


@pytest.mark.parametrize(("cell", "offset", "detail"), ERRORS)
def test_unsupported_feel_is_refused_with_an_offset(cell, offset, detail):
    with pytest.raises(ExpressionError) as info:
        translate_cell(cell, "x")
    exc = info.value
    assert type(exc) is ExpressionError
    assert exc.location is None
    assert exc.offset == offset
    assert detail in exc.detail
    assert str(exc).startswith("unsupported FEEL in a cell: ")
    assert str(exc).endswith("; S-FEEL unary tests only (-, <, <=, >, >=, [a..b], literals, "
                             "comma lists, not(...))")


# -- output entries ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('"Approved"', "Approved"),
    ('""', ""),
    (r'"a \"b\" \\ c"', 'a "b" \\ c'),
    ("100", Decimal("100")),
    ("64.32", Decimal("64.32")),
    ("-0.5", Decimal("-0.5")),
    (" 1.10 ", Decimal("1.10")),
    ("true", True),
    ("false", False),
    ("null", None),
    ('date("2024-02-29")', datetime.date(2024, 2, 29)),
])
def test_parse_output(text, expected):
    value = parse_output(text)
    assert value == expected
    assert type(value) is type(expected)


def test_output_numbers_are_exact_decimals():
    assert parse_output("0.1") + parse_output("0.2") == Decimal("0.3")


@pytest.mark.parametrize(("text", "offset", "detail"), [
    ("", 0, "expected a literal, found the end"),
    ("-", 0, "expected a literal, found '-'"),
    ("Approved", 0, "name 'Approved' (an output entry must be a literal)"),
    ("1 + 1", 2, "arithmetic '+'"),
    ('"a", "b"', 3, "expected the end of the literal, found ','"),
    ("[1, 2]", 0, "expected a literal, found '['"),
    ("{a: 1}", 0, "FEEL contexts"),
    ("sum(1, 2)", 0, "function call 'sum(...)'"),
    ("'x'", 0, "double quotes"),
    ('date("2024-02-30")', 5, "invalid date"),
])
def test_output_entries_must_be_literals(text, offset, detail):
    with pytest.raises(ExpressionError) as info:
        parse_output(text)
    assert info.value.offset == offset
    assert detail in info.value.detail
    assert str(info.value).startswith("unsupported FEEL in an output entry: ")


# -- properties --------------------------------------------------------------------------------

FEELISH = st.text(alphabet='-<>=[]().,"\\ 0123456789abdeflnortu?\'+*', max_size=30)


@SETTINGS
@given(st.one_of(st.text(max_size=40), FEELISH))
def test_random_text_raises_only_expression_errors(text):
    try:
        out = translate_cell(text, "x")
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)
    else:
        # whatever was accepted is pack text that compiles or is a typed refusal
        for field_type in ("number", "text", "boolean", "date"):
            with contextlib.suppress(ExpressionError):
                compile_expression(out, {"x": field_type}, expect="boolean")
    try:
        parse_output(text)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)


# An oracle: S-FEEL tests over numbers read directly, with Kleene nulls.
HALVES = st.integers(-8, 8).map(lambda n: Decimal(n) / 2)
TEST = st.one_of(
    st.tuples(st.just("eq"), HALVES),
    st.tuples(st.sampled_from(["<", "<=", ">", ">="]), HALVES),
    st.tuples(st.just("interval"), HALVES, HALVES, st.sampled_from("[(]"),
              st.sampled_from("])[")),
    st.tuples(st.just("null")),
)


def _feel(test) -> str:
    kind = test[0]
    if kind == "eq":
        return str(test[1])
    if kind == "null":
        return "null"
    if kind == "interval":
        return f"{test[3]}{test[1]}..{test[2]}{test[4]}"
    return f"{kind} {test[1]}"


def _oracle(test, value):
    kind = test[0]
    if kind == "null":
        return value is None
    if value is None:
        return None
    value = Decimal(str(value))
    if kind == "eq":
        return value == test[1]
    if kind == "interval":
        low_ok = value >= test[1] if test[3] == "[" else value > test[1]
        high_ok = value <= test[2] if test[4] == "]" else value < test[2]
        return low_ok and high_ok
    return {"<": value < test[1], "<=": value <= test[1], ">": value > test[1],
            ">=": value >= test[1]}[kind]


def _kleene_any(results):
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


@SETTINGS
@given(st.lists(TEST, min_size=1, max_size=5), st.booleans(),
       st.one_of(st.none(), st.integers(-9, 9).map(lambda n: n / 2)))
def test_translation_agrees_with_a_direct_reading_of_sfeel(tests, negated, value):
    text = ", ".join(_feel(t) for t in tests)
    if negated:
        text = f"not({text})"
    expected = _kleene_any([_oracle(t, value) for t in tests])
    if negated and expected is not None:
        expected = not expected
    expr = compile_expression(translate_cell(text, "x"), {"x": "number"}, expect="boolean")
    assert (expr({"x": value}) is True) == (expected is True), text

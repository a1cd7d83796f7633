"""Properties of the condition language, checked on generated expressions and facts.

The oracle is Python itself: each generated expression is also written as a
Python expression (only here, in tests) where a null is an exception. Arithmetic,
comparisons and function calls are strict in Python already; the non-strict
parts (and/or/not, chains, is_null, coalesce) take their operands as lambdas and
turn an exception into null, then apply Kleene logic. A null field is the NULL
object, whose every operation raises. Our generated text uses as few
parentheses as our grammar allows, while the Python text is fully bracketed, so
precedence and associativity are checked too.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, NamedTuple

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from storeops.engine.errors import ExpressionError
from storeops.engine.expressions import (
    compile_columnar,
    compile_expression,
    compile_matcher,
    evaluate_reference,
)

FIELDS = {
    "a": "number",
    "b": "number",
    "i": "integer",
    "j": "integer",
    "s": "text",
    "t": "text",
    "p": "boolean",
    "q": "boolean",
    "d": "date",
    "e": "date",
}
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the Python oracle -------------------------------------------------------------------------


class NullError(Exception):
    """Raised by any operation on NULL."""


class _Null:
    def _refuse(self, *args: Any) -> Any:
        raise NullError

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __round__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _refuse
    __float__ = __index__ = __int__ = __bool__ = _refuse
    __hash__ = None


NULL = _Null()
NULL_ERRORS = (ZeroDivisionError, OverflowError, ValueError, NullError)


def _try(thunk):
    try:
        value = thunk()
    except NULL_ERRORS:
        return None
    return None if value is NULL else value


# The helpers give NULL, not None, for null, so that a strict operation on
# their result raises as it must (None == True would quietly be False).


def _kand(*thunks):
    values = [_try(thunk) for thunk in thunks]
    if any(value is False for value in values):
        return False
    return NULL if None in values else True


def _kor(*thunks):
    values = [_try(thunk) for thunk in thunks]
    if any(value is True for value in values):
        return True
    return NULL if None in values else False


def _knot(thunk):
    value = _try(thunk)
    return NULL if value is None else not value


def _isnull(thunk):
    return _try(thunk) is None


def _coalesce(*thunks):
    for thunk in thunks:
        value = _try(thunk)
        if value is not None:
            return value
    return NULL


def _strict(value):
    if value is NULL:
        raise NullError
    return value


def _pw(base, exponent):
    result = float(base) ** float(exponent)
    if isinstance(result, complex):
        raise ValueError("complex")
    return result


def _pct(new, old):
    return (new - old) / old


ORACLE_GLOBALS = {
    "__builtins__": {},
    "_kand": _kand,
    "_kor": _kor,
    "_knot": _knot,
    "_isnull": _isnull,
    "_coalesce": _coalesce,
    "_strict": _strict,
    "_pw": _pw,
    "_pct": _pct,
    "_date": datetime.date.fromisoformat,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
}


def oracle(python_text: str, fact: dict[str, Any]) -> Any:
    # Fact values go in the globals: the lambdas' bodies cannot see eval's locals.
    names = {name: (NULL if fact.get(name) is None else fact[name]) for name in FIELDS}
    return _try(lambda: eval(python_text, {**ORACLE_GLOBALS, **names}))  # the oracle, in tests only


# -- generated expressions ---------------------------------------------------------------------


class Gen(NamedTuple):
    ours: str
    python: str
    type: str
    level: int  # precedence of the outermost operator in our text; 9 = atom


def wrap(node: Gen, level: int) -> str:
    return node.ours if node.level >= level else f"({node.ours})"


def literal_text(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped.replace("\t", "\\t") + "'"


NUMBER_FIELDS = st.sampled_from(["a", "b", "i", "j"]).map(lambda n: Gen(n, n, FIELDS[n], 9))
INTEGER_LITERALS = st.integers(0, 12).map(lambda v: Gen(str(v), str(v), "integer", 9))
FLOAT_LITERALS = st.sampled_from([0.0, 0.5, 1.5, 2.25, 0.001, 100.0, 1e-3, 3.75]).map(
    lambda v: Gen(repr(v), repr(v), "number", 9)
)
TEXTS = ["", "A", "B", "ab", "it's", "Z\n", "\t"]
DATES = [datetime.date(2024, 1, 1), datetime.date(2024, 2, 29), datetime.date(2025, 6, 30)]


def arithmetic(op: str, left: Gen, right: Gen) -> Gen:
    level = 5 if op in "+-" else 6
    kind = "integer" if left.type == right.type == "integer" and op != "/" else "number"
    ours = f"{wrap(left, level)} {op} {wrap(right, level + 1)}"
    return Gen(ours, f"(({left.python}) {op} ({right.python}))", kind, level)


def power(base: Gen, exponent: Gen) -> Gen:
    ours = f"{wrap(base, 9)} ** {wrap(exponent, 7)}"
    return Gen(ours, f"_pw({base.python}, {exponent.python})", "number", 8)


def negative(operand: Gen) -> Gen:
    return Gen("-" + wrap(operand, 7), f"(-({operand.python}))", operand.type, 7)


def call(name: str, args: list[Gen], kind: str, python: str | None = None) -> Gen:
    ours = f"{name}({', '.join(arg.ours for arg in args)})"
    python_args = ", ".join(arg.python for arg in args)
    return Gen(ours, f"{python or name}({python_args})", kind, 9)


def coalesce(args: list[Gen]) -> Gen:
    kind = args[0].type if all(a.type == args[0].type for a in args) else "number"
    ours = f"coalesce({', '.join(arg.ours for arg in args)})"
    python = "_coalesce(" + ", ".join(f"lambda: {arg.python}" for arg in args) + ")"
    return Gen(ours, python, kind, 9)


dates = st.one_of(
    st.sampled_from(["d", "e"]).map(lambda n: Gen(n, n, "date", 9)),
    st.sampled_from(DATES).map(
        lambda v: Gen(f"date('{v.isoformat()}')", f"_date('{v.isoformat()}')", "date", 9)
    ),
)
dates = st.one_of(dates, st.lists(dates, min_size=2, max_size=2).map(coalesce))

texts = st.one_of(
    st.sampled_from(["s", "t"]).map(lambda n: Gen(n, n, "text", 9)),
    st.sampled_from(TEXTS).map(lambda v: Gen(literal_text(v), repr(v), "text", 9)),
)
texts = st.one_of(texts, st.lists(texts, min_size=2, max_size=3).map(coalesce))

small_integers = st.one_of(
    st.sampled_from(["i", "j"]).map(lambda n: Gen(n, n, "integer", 9)),
    st.integers(-3, 3).map(lambda v: Gen(str(v), str(v), "integer", 9 if v >= 0 else 7)),
)


def numbers_at(depth: int) -> st.SearchStrategy[Gen]:
    leaves = st.one_of(NUMBER_FIELDS, INTEGER_LITERALS, FLOAT_LITERALS)
    if depth == 0:
        return leaves
    sub = numbers_at(depth - 1)
    operators = st.sampled_from(["+", "-", "*", "/", "//", "%"])
    return st.one_of(
        leaves,
        st.builds(arithmetic, operators, sub, sub),
        st.builds(power, sub, st.one_of(sub, small_integers)),
        st.builds(negative, sub),
        st.builds(lambda x, y: call("pct_change", [x, y], "number", "_pct"), sub, sub),
        st.builds(lambda x: call("abs", [x], x.type), sub),
        st.builds(
            lambda name, xs: call(
                name, xs, "integer" if all(x.type == "integer" for x in xs) else "number"
            ),
            st.sampled_from(["min", "max"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        st.builds(lambda x: call("round", [x], "integer"), sub),
        st.builds(lambda x, n: call("round", [x, n], x.type), sub, small_integers),
        st.builds(lambda x, y: coalesce([x, y]), sub, sub),
        st.builds(
            lambda x, y: Gen(
                f"days_between({x.ours}, {y.ours})",
                f"(({x.python}) - ({y.python})).days",
                "integer",
                9,
            ),
            dates,
            dates,
        ),
    )


COMPARISONS = ["<", "<=", ">", ">=", "==", "!="]


def comparison(op: str, left: Gen, right: Gen) -> Gen:
    ours = f"{wrap(left, 5)} {op} {wrap(right, 5)}"
    return Gen(ours, f"(({left.python}) {op} ({right.python}))", "boolean", 4)


def chain(ops: list[str], operands: list[Gen]) -> Gen:
    ours = wrap(operands[0], 5)
    pairs = []
    for op, left, right in zip(ops, operands, operands[1:], strict=False):
        ours += f" {op} {wrap(right, 5)}"
        pairs.append(f"lambda: (({left.python}) {op} ({right.python}))")
    return Gen(ours, f"_kand({', '.join(pairs)})", "boolean", 4)


def membership(operand: Gen, items: list[Any], negated: bool) -> Gen:
    rendered = [literal_text(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool)
                else repr(v) for v in items]  # fmt: skip
    op = "not in" if negated else "in"
    python_items = ", ".join(repr(v) for v in items)
    ours = f"{wrap(operand, 5)} {op} [{', '.join(rendered)}]"
    return Gen(ours, f"(_strict({operand.python}) {op} [{python_items}])", "boolean", 4)


def logic(op: str, left: Gen, right: Gen) -> Gen:
    level = 2 if op == "and" else 1
    ours = f"{wrap(left, level)} {op} {wrap(right, level + 1)}"
    helper = "_kand" if op == "and" else "_kor"
    return Gen(ours, f"{helper}(lambda: {left.python}, lambda: {right.python})", "boolean", level)


def negation(operand: Gen) -> Gen:
    return Gen("not " + wrap(operand, 3), f"_knot(lambda: {operand.python})", "boolean", 3)


def is_null(operand: Gen) -> Gen:
    return Gen(f"is_null({operand.ours})", f"_isnull(lambda: {operand.python})", "boolean", 9)


NUMBER_ITEMS = st.one_of(st.integers(-3, 12), st.sampled_from([0.5, -1.5, 2.25, 100.0]))


def booleans_at(depth: int) -> st.SearchStrategy[Gen]:
    leaves = st.one_of(
        st.sampled_from(["p", "q"]).map(lambda n: Gen(n, n, "boolean", 9)),
        st.sampled_from(["true", "false", "True", "False"]).map(
            lambda v: Gen(v, v.capitalize(), "boolean", 9)
        ),
    )
    numbers = numbers_at(max(0, depth - 1))
    simple = st.one_of(
        leaves,
        st.builds(comparison, st.sampled_from(COMPARISONS), numbers, numbers),
        st.builds(comparison, st.sampled_from(COMPARISONS), texts, texts),
        st.builds(comparison, st.sampled_from(COMPARISONS), dates, dates),
        st.builds(
            chain,
            st.lists(st.sampled_from(COMPARISONS), min_size=2, max_size=3),
            st.lists(numbers, min_size=4, max_size=4),
        ),
        st.builds(membership, numbers, st.lists(NUMBER_ITEMS, max_size=4), st.booleans()),
        st.builds(membership, texts, st.lists(st.sampled_from(TEXTS), max_size=3), st.booleans()),
        st.builds(is_null, st.one_of(numbers, texts, dates)),
    )
    if depth == 0:
        return simple
    sub = booleans_at(depth - 1)
    return st.one_of(
        simple,
        st.builds(logic, st.sampled_from(["and", "or"]), sub, sub),
        st.builds(negation, sub),
        st.builds(comparison, st.sampled_from(["==", "!="]), sub, sub),
        st.builds(membership, sub, st.lists(st.booleans(), max_size=2), st.booleans()),
        st.builds(is_null, sub),
        st.builds(lambda x, y: coalesce([x, y]), sub, sub),
    )


NUMBERS = numbers_at(2)
BOOLEANS = booleans_at(2)
ANY_EXPRESSION = st.one_of(NUMBERS, BOOLEANS, texts, dates)

VALUES = {
    "number": st.one_of(
        st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.5, -2.5, 3.0, 1e-3]),
        st.floats(-1e3, 1e3, allow_nan=False),
    ),
    "integer": st.integers(-5, 5),
    "text": st.sampled_from(TEXTS),
    "boolean": st.booleans(),
    "date": st.sampled_from(DATES)
    | st.dates(datetime.date(2023, 1, 1), datetime.date(2025, 12, 31)),
}
FULL_FACTS = st.fixed_dictionaries({name: VALUES[kind] for name, kind in FIELDS.items()})


@st.composite
def facts_with_nulls(draw):
    fact = {}
    for name, kind in FIELDS.items():
        choice = draw(st.sampled_from(["value", "value", "value", "none", "missing"]))
        if choice == "value":
            fact[name] = draw(VALUES[kind])
        elif choice == "none":
            fact[name] = None
    return fact


def compile_or_skip(text: str):
    try:
        return compile_expression(text, FIELDS)
    except ExpressionError as error:
        # Constant folding refuses constant powers beyond the bounds, by design.
        assume(error.message != "constant too large")
        raise


def same(ours: Any, expected: Any) -> bool:
    if ours is None or expected is None:
        return ours is None and expected is None
    if isinstance(ours, float) and math.isnan(ours):
        return isinstance(expected, float) and math.isnan(expected)
    return ours == expected and isinstance(ours, bool) == isinstance(expected, bool)


# -- properties --------------------------------------------------------------------------------


@SETTINGS
@given(ANY_EXPRESSION, FULL_FACTS)
def test_agrees_with_python_on_non_null_facts(generated, fact):
    expression = compile_or_skip(generated.ours)
    assert expression.type == generated.type or {expression.type, generated.type} <= {
        "number",
        "integer",
    }
    expected = oracle(generated.python, fact)
    assert same(expression(fact), expected), (generated.ours, generated.python)


@SETTINGS
@given(ANY_EXPRESSION, facts_with_nulls())
def test_agrees_with_python_when_fields_are_null(generated, fact):
    expression = compile_or_skip(generated.ours)
    assert same(expression(fact), oracle(generated.python, fact)), generated.ours


@SETTINGS
@given(ANY_EXPRESSION, facts_with_nulls())
def test_compiled_equals_reference(generated, fact):
    expression = compile_or_skip(generated.ours)
    assert same(expression(fact), evaluate_reference(expression.node, fact))


@SETTINGS
@given(st.lists(BOOLEANS, min_size=1, max_size=6), st.lists(facts_with_nulls(), max_size=8))
def test_matcher_equals_each_condition(generated, facts):
    conditions = [compile_or_skip(g.ours) for g in generated]
    every = compile_matcher(conditions, first_only=False)
    first = compile_matcher(conditions, first_only=True)
    for fact in facts:
        expected = [k for k, c in enumerate(conditions) if c(fact) is True]
        assert every(fact) == expected
        assert first(fact) == expected[:1]


NUMPY_TYPES = {"number": np.float64, "text": object, "boolean": np.bool_, "date": "datetime64[D]"}


@st.composite
def columns_for(draw, facts):
    """Columns as adapters build them; junk under the mask must never leak."""
    columns = {}
    for name, kind in FIELDS.items():
        raw = [fact.get(name) for fact in facts]
        mask = np.array([value is None for value in raw], dtype=bool)
        junk = draw(VALUES[kind]) if kind != "text" else draw(st.sampled_from([None, "A", ""]))
        values = [junk if value is None else value for value in raw]
        if kind == "integer":
            dtype = draw(st.sampled_from([np.int64, np.float64]))
        else:
            dtype = NUMPY_TYPES[kind]
        if draw(st.booleans()) or mask.any():
            columns[name] = (np.array(values, dtype=dtype), mask if mask.any() else None)
        # else: the column is left out; every fact lacks the field
    return columns


@SETTINGS
@given(st.lists(BOOLEANS, min_size=1, max_size=6), st.data())
def test_columnar_equals_row_path(generated, data):
    conditions = [compile_or_skip(g.ours) for g in generated]
    facts = data.draw(st.lists(facts_with_nulls(), min_size=1, max_size=12))
    columns = data.draw(columns_for(facts))
    facts = [{k: v for k, v in fact.items() if k in columns} for fact in facts]
    matrix = compile_columnar(conditions)(columns, len(facts))
    assert matrix.shape == (len(facts), len(conditions))
    for row, fact in enumerate(facts):
        expected = [condition(fact) is True for condition in conditions]
        assert matrix[row].tolist() == expected, (row, fact)


TOKENS = [
    "a", "i", "s", "p", "d", "zz", "(", ")", "[", "]", ",", "+", "-", "*", "/", "//", "%", "**",
    "<", "<=", "==", "!=", ">", ">=", "and", "or", "not", "in", "true", "False", "1", "0", "2.5",
    ".5", "1e3", "1e99", "'x'", '"y"', "'", "pct_change", "abs", "min", "max", "round",
    "coalesce", "is_null", "days_between", "date", "'2024-01-01'", "null", "=", ".", "_x",
    "x__y", "\\", "@", "é", "\x00",
]  # fmt: skip


@SETTINGS
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join),
                 st.lists(st.sampled_from(TOKENS), max_size=25).map("".join)),
       facts_with_nulls())  # fmt: skip
def test_garbage_raises_only_expression_errors(text, fact):
    try:
        expression = compile_expression(text, FIELDS)
    except ExpressionError as error:
        assert error.message
        return
    # What compiles also runs, on any well-typed fact, without raising.
    expression(fact)
    if expression.type == "boolean":
        compile_matcher([expression], first_only=False)(fact)

"""Rule conditions: a small, safe expression language compiled to fast Python.

Conditions in rule packs are data, never code. The text is read by the
tokenizer and recursive-descent parser in this module; nothing the user writes
is ever handed to ``eval``, ``exec`` or ``ast.parse``. The parser checks types
and folds constants while it builds the tree (rule-engine's ``reduce``), so
every mistake is reported with its place before any data is read, and running
an expression never parses text or looks a name up by string.

Grammar (Python-like, lowest precedence first)::

    expr       := or_expr
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | comparison
    comparison := sum (comp_op sum)*     # a < b < c means a < b and b < c
    comp_op    := '<' | '<=' | '>' | '>=' | '==' | '!=' | 'in' | 'not' 'in'
    sum        := term (('+' | '-') term)*
    term       := unary (('*' | '/' | '//' | '%') unary)*
    unary      := ('-' | '+') unary | power
    power      := primary ['**' unary]  # right-associative; -2**2 == -4
    primary    := NUMBER | STRING | true | false | True | False | NAME
                | NAME '(' [args] ')' | '(' expr ')'

The right side of ``in`` / ``not in`` must be a list literal of at most 256
constants of one type (numbers, strings or booleans; a number may carry a
unary minus), e.g. ``tier in ['A', 'B']``. Strings are quoted with ``'`` or
``"`` and know the escapes ``\\\\ \\' \\" \\n \\t``. Numbers look like ``12``,
``0.5``, ``.5`` or ``1e-3``. A name is a field of the pack, else a parameter
(a named constant folded in at compile time). Names starting with ``_`` or
containing ``__``, attribute access (``x.y``), ``=`` and ``null``/``None`` are
refused with a hint.

Types
-----
Fields are ``number``, ``integer`` (a subtype of number), ``text``,
``boolean`` or ``date``. Arithmetic takes numbers only; integer op integer is
an integer, except ``/`` and ``**`` (float math), which give a number.
``< <= > >=`` compare number with number, text with text or date with date;
``==`` and ``!=`` also compare booleans. ``and``, ``or`` and ``not`` take
true/false operands only. All of this is checked at compile time.

Functions (the whole whitelist)
-------------------------------
``pct_change(new, old)``     ``(new - old) / old``; null when ``old == 0``.
``abs(x)``                   absolute value.
``min(a, b, ...)``           smallest of two or more numbers.
``max(a, b, ...)``           largest of two or more numbers.
``round(x)``                 Python's ``round``: nearest integer, ties to even.
``round(x, ndigits)``        Python's ``round`` to ``ndigits`` (an integer).
``coalesce(a, b, ...)``      the first argument that is not null (one type).
``is_null(x)``               true when ``x`` is null; never null itself.
``days_between(later, earlier)``  whole days from ``earlier`` to ``later``.
``date('YYYY-MM-DD')``       a date constant; the argument is a string literal.

The null rule
-------------
A field that is missing from the fact, or whose value is None, is null. Null
propagates: arithmetic, comparisons, ``in``/``not in`` and every function give
null when an operand is null, except ``is_null(x)``, which is true or false and
never null, and ``coalesce(a, b, ...)``, which gives its first non-null
argument. Division or modulo by zero and overflow also give null. ``and``,
``or`` and ``not`` use Kleene three-valued logic, as SQL and DMN FEEL do: false
and null is false, true or null is true, not null is null, and otherwise a null
operand makes the result null. A condition whose value is null does not match.
NaN is an ordinary float in the row path (adapters turn NaN into None before
facts reach expressions); the columnar path receives nulls as an explicit mask.

Bounds
------
Expressions are refused, never run, when the text is longer than 2000
characters, nesting is deeper than 40, the tree has more than 500 nodes, a
number literal exceeds 1e15 in magnitude or a string literal 256 characters.
A constant ``**`` is folded only when the exponent is within +-64 and the
result within +-1e15 ("constant too large" otherwise), so ``10**10**10`` is
refused at once; at run time ``**`` uses float math and overflow gives null.

Running
-------
``Expression.__call__``, ``compile_matcher`` and ``compile_columnar`` run the
checked tree. The first two generate one Python function: the tree is turned
into ``ast`` nodes (user values only ever become ``ast.Constant`` nodes or
names bound in the function's globals), compiled, and built with
``types.FunctionType``. The generated function first tries a fast path with
plain Python operators, which is valid whenever no value involved is null; a
None value, a missing key, a division by zero or anything else that would make
a part null sends the fact to a second, null-aware (Kleene) function.
``evaluate_reference`` is a slow tree-walking interpreter kept as the
semantic reference for tests.
"""

from __future__ import annotations

import ast
import datetime
import math
import operator
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from storeops.engine.errors import ExpressionError, Location, did_you_mean

__all__ = [
    "FIELD_TYPES",
    "Binary",
    "Call",
    "Column",
    "Compare",
    "Const",
    "Expression",
    "Field",
    "FieldRef",
    "Logic",
    "Member",
    "Node",
    "Not",
    "Unary",
    "compile_columnar",
    "compile_expression",
    "compile_matcher",
    "evaluate_reference",
]

FIELD_TYPES = ("number", "integer", "text", "boolean", "date")

MAX_TEXT = 2000
MAX_DEPTH = 40
MAX_NODES = 500
MAX_NUMBER = 1e15
MAX_STRING = 256
MAX_LIST = 256
MAX_EXPONENT = 64

_NUMERIC = frozenset(("number", "integer"))


@dataclass(frozen=True, slots=True)
class Field:
    """A typed input of the rules, declared by a pack."""

    name: str
    type: str  # one of FIELD_TYPES
    unit: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(
                f"field {self.name!r} has unknown type {self.type!r}; "
                f"expected one of {', '.join(FIELD_TYPES)}"
            )


# ---------------------------------------------------------------------------
# The checked tree. Every node carries its result ``type`` and the ``offset``
# (0-based, into the expression text) that errors about it point at: the token
# for literals, names and calls, the operator for operators. Nodes are frozen
# and hashable so that other modules (analysis, tables) can walk and compare
# them freely.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    """A literal, a parameter or a folded subexpression.

    ``value`` is int, float, str, bool or ``datetime.date``, or None for a
    subexpression that folded to null (e.g. ``1 / 0``).
    """

    value: Any
    type: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A read of one field of the fact."""

    name: str
    type: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Unary:
    """Unary ``-`` or ``+`` on a number."""

    op: str
    operand: Node
    type: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic: ``+ - * / // % **``."""

    op: str
    left: Node
    right: Node
    type: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Compare:
    """One comparison ``< <= > >= == !=``; chains become ``Logic('and', ...)``."""

    op: str
    left: Node
    right: Node
    type: str = "boolean"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    """``operand in [...]`` (or ``not in`` when ``negated``).

    ``values`` is what evaluation tests against; ``items`` keeps the literals
    as written, with their offsets, for messages about single values.
    """

    operand: Node
    values: frozenset
    negated: bool = False
    items: tuple[Const, ...] = ()
    type: str = "boolean"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Not:
    """Kleene ``not``."""

    operand: Node
    type: str = "boolean"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Logic:
    """Kleene ``and`` / ``or`` over two or more operands."""

    op: str
    operands: tuple[Node, ...]
    type: str = "boolean"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    """A call of one of the whitelisted functions."""

    function: str
    args: tuple[Node, ...]
    type: str
    offset: int = 0


Node = Const | FieldRef | Unary | Binary | Compare | Member | Not | Logic | Call

Column = tuple[np.ndarray, np.ndarray | None]


def children(node: Node) -> tuple[Node, ...]:
    """The direct subexpressions of ``node``, in evaluation order."""
    if isinstance(node, Unary | Not):
        return (node.operand,)
    if isinstance(node, Binary | Compare):
        return (node.left, node.right)
    if isinstance(node, Member):
        return (node.operand,)
    if isinstance(node, Logic):
        return node.operands
    if isinstance(node, Call):
        return node.args
    return ()


def _fields_read(node: Node) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, FieldRef):
            seen.setdefault(current.name)
        stack.extend(reversed(children(current)))
    return tuple(seen)


# ---------------------------------------------------------------------------
# Null-aware operations. The reference interpreter and constant folding use
# them directly; the slow generated path calls them for arithmetic and
# functions. Each returns None for null, as the null rule says.
# ---------------------------------------------------------------------------

_PY_ARITH = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}
_PY_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _power(base: Any, exponent: Any) -> Any:
    if base is None or exponent is None:
        return None
    try:
        return math.pow(base, exponent)
    except (OverflowError, ValueError):
        # math.pow raises ValueError for a domain error (0 ** -1, a negative
        # base with a fractional exponent) where Python's ** would give a
        # complex number; neither is a value a rule can use.
        return None


def _null_aware(op: str) -> Callable[[Any, Any], Any]:
    apply = _PY_ARITH[op]

    def run(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        try:
            return apply(left, right)
        except (ZeroDivisionError, OverflowError):
            return None

    run.__name__ = f"null_aware_{apply.__name__}"
    return run


_NULL_ARITH: dict[str, Callable[[Any, Any], Any]] = {op: _null_aware(op) for op in _PY_ARITH}
_NULL_ARITH["**"] = _power


def _pct_change(new: Any, old: Any) -> Any:
    if new is None or old is None or old == 0:
        return None
    try:
        return (new - old) / old
    except OverflowError:
        return None


def _abs(value: Any) -> Any:
    return None if value is None else abs(value)


def _min(*values: Any) -> Any:
    return None if any(v is None for v in values) else min(values)


def _max(*values: Any) -> Any:
    return None if any(v is None for v in values) else max(values)


def _round_digits(value: Any, ndigits: Any) -> Any:
    ndigits = int(ndigits)
    # round(int, -k) builds 10**k, so a huge k from the data would hang the
    # engine. When 8**k > 2*|value| the answer is 0 anyway (Python's own).
    if ndigits < 0 and isinstance(value, int) and -3 * ndigits >= value.bit_length() + 1:
        return 0
    return round(value, ndigits)


def _round(value: Any, *ndigits: Any) -> Any:
    if value is None or any(n is None for n in ndigits):
        return None
    try:
        return _round_digits(value, ndigits[0]) if ndigits else round(value)
    except (OverflowError, ValueError):
        # round(inf) and round(nan) cannot make an integer.
        return None


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _is_null(value: Any) -> bool:
    return value is None


def _days_between(later: Any, earlier: Any) -> Any:
    if later is None or earlier is None:
        return None
    return (later - earlier).days


def _kleene_and(*values: Any) -> bool | None:
    if any(v is not None and not v for v in values):
        return False
    return None if any(v is None for v in values) else True


def _kleene_or(*values: Any) -> bool | None:
    if any(v is not None and v for v in values):
        return True
    return None if any(v is None for v in values) else False


_FUNCTION_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "pct_change": _pct_change,
    "abs": _abs,
    "min": _min,
    "max": _max,
    "round": _round,
    "coalesce": _coalesce,
    "is_null": _is_null,
    "days_between": _days_between,
}
# (minimum, maximum) number of arguments; None means no maximum.
_ARITY: dict[str, tuple[int, int | None]] = {
    "pct_change": (2, 2),
    "abs": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "round": (1, 2),
    "coalesce": (2, None),
    "is_null": (1, 1),
    "days_between": (2, 2),
    "date": (1, 1),
}
FUNCTIONS = tuple(_ARITY)
_STRICT_FUNCTIONS = frozenset(FUNCTIONS) - {"coalesce", "is_null"}


def evaluate_reference(node: Node, fact: Mapping[str, Any]) -> Any:
    """Evaluate ``node`` on ``fact`` by walking the tree; None means null.

    Slow on purpose: it is the semantic reference that the generated code and
    the columnar path are tested against, so it favours plainness.
    """
    if isinstance(node, Const):
        return node.value
    if isinstance(node, FieldRef):
        return fact.get(node.name)
    if isinstance(node, Unary):
        value = evaluate_reference(node.operand, fact)
        if value is None:
            return None
        return -value if node.op == "-" else +value
    if isinstance(node, Binary):
        left = evaluate_reference(node.left, fact)
        right = evaluate_reference(node.right, fact)
        return _NULL_ARITH[node.op](left, right)
    if isinstance(node, Compare):
        left = evaluate_reference(node.left, fact)
        right = evaluate_reference(node.right, fact)
        if left is None or right is None:
            return None
        return _PY_COMPARE[node.op](left, right)
    if isinstance(node, Member):
        value = evaluate_reference(node.operand, fact)
        if value is None:
            return None
        return (value in node.values) != node.negated
    if isinstance(node, Not):
        value = evaluate_reference(node.operand, fact)
        return None if value is None else not value
    if isinstance(node, Logic):
        values = [evaluate_reference(operand, fact) for operand in node.operands]
        return _kleene_and(*values) if node.op == "and" else _kleene_or(*values)
    if isinstance(node, Call):
        args = [evaluate_reference(arg, fact) for arg in node.args]
        return _FUNCTION_IMPLEMENTATIONS[node.function](*args)
    raise TypeError(f"not an expression node: {node!r}")


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # 'number', 'string', 'name', 'op' or 'end'
    text: str  # as written, for messages
    value: Any
    offset: int


_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OPERATORS = ("**", "//", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "%")
_PUNCTUATION = "()[],"
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_CHARACTER_HINTS = {
    "=": "use '==' to compare",
    "!": "use 'not' or '!='",
    "&": "use 'and'",
    "|": "use 'or'",
}
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_ORDERINGS = frozenset(("<", "<=", ">", ">="))


class _Parser:
    """Tokenizer, recursive-descent parser, type checker and folder in one pass.

    Checking while building means the first problem in reading order is the one
    reported, and the bounds on depth and size stop work early: a hostile
    expression costs at most a few thousand steps.
    """

    def __init__(
        self,
        text: str,
        schema: Mapping[str, Field],
        parameters: Mapping[str, Any],
        locate: Callable[[int], Location] | None,
    ) -> None:
        self.text = text
        self.schema = schema
        self.parameters = parameters
        self.locate = locate
        self.tokens: list[_Token] = []
        self.pos = 0
        self.depth = 0
        self.nodes = 0

    def error(self, message: str, offset: int, hint: str | None = None) -> ExpressionError:
        location = self.locate(offset) if self.locate is not None else None
        return ExpressionError(message, location=location, hint=hint)

    # -- tokens ---------------------------------------------------------------

    def tokenize(self) -> None:
        text, n, i = self.text, len(self.text), 0
        tokens = self.tokens
        while i < n:
            c = text[i]
            if c in " \t\r\n":
                i += 1
            elif "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
                i = self._number(i)
            elif c in "'\"":
                i = self._string(i)
            elif c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z"):
                match = _NAME_RE.match(text, i)
                name = match.group()
                if name.startswith("_"):
                    raise self.error("names starting with '_' are not allowed", i)
                if "__" in name:
                    raise self.error("names containing '__' are not allowed", i)
                tokens.append(_Token("name", name, name, i))
                i = match.end()
            elif c == ".":
                if tokens and (
                    tokens[-1].kind in ("name", "number", "string") or tokens[-1].text in (")", "]")
                ):
                    raise self.error("attribute access is not allowed", i)
                raise self.error("unexpected character '.'", i)
            else:
                for op in _OPERATORS:
                    if text.startswith(op, i):
                        tokens.append(_Token("op", op, op, i))
                        i += len(op)
                        break
                else:
                    if c in _PUNCTUATION:
                        tokens.append(_Token("op", c, c, i))
                        i += 1
                    elif c in _CHARACTER_HINTS:
                        raise self.error(f"unexpected '{c}'", i, _CHARACTER_HINTS[c])
                    else:
                        raise self.error(f"unexpected character {c!r}", i)
        tokens.append(_Token("end", "", None, n))

    def _number(self, start: int) -> int:
        match = _NUMBER_RE.match(self.text, start)
        literal = match.group()
        end = match.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            raise self.error(f"malformed number '{literal}{self.text[end]}'", start)
        value: int | float = int(literal) if literal.isdigit() else float(literal)
        if not abs(value) <= MAX_NUMBER:
            raise self.error("number too large (the limit is 1e15)", start)
        self.tokens.append(_Token("number", literal, value, start))
        return end

    def _string(self, start: int) -> int:
        text, quote = self.text, self.text[start]
        chars: list[str] = []
        i = start + 1
        while True:
            if i >= len(text):
                raise self.error("unclosed string", start)
            c = text[i]
            if c == quote:
                break
            if c == "\\":
                escaped = _ESCAPES.get(text[i + 1]) if i + 1 < len(text) else None
                if escaped is None:
                    if i + 1 >= len(text):
                        raise self.error("unclosed string", start)
                    raise self.error(
                        f"unknown escape '\\{text[i + 1]}' in string",
                        i,
                        "only \\\\ \\' \\\" \\n \\t are allowed",
                    )
                chars.append(escaped)
                i += 2
            else:
                chars.append(c)
                i += 1
            if len(chars) > MAX_STRING:
                raise self.error(f"string literal longer than {MAX_STRING} characters", start)
        self.tokens.append(_Token("string", text[start : i + 1], "".join(chars), start))
        return i + 1

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "op" and token.text in ops

    def at_keyword(self, word: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "name" and token.text == word

    @staticmethod
    def describe(token: _Token) -> str:
        if token.kind == "end":
            return "the end"
        if token.kind == "string":
            return token.text
        return f"'{token.text}'"

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                f"expression nested too deeply (the limit is {MAX_DEPTH} levels)", token.offset
            )

    def count(self, offset: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(f"expression too large (the limit is {MAX_NODES} nodes)", offset)

    # -- grammar --------------------------------------------------------------

    def parse(self) -> Node:
        if len(self.text) > MAX_TEXT:
            raise self.error(f"expression longer than {MAX_TEXT} characters", MAX_TEXT)
        self.tokenize()
        if self.peek().kind == "end":
            raise self.error("empty expression", 0)
        node = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            if token.text in (")", "]") and token.kind == "op":
                raise self.error(f"unmatched '{token.text}'", token.offset)
            raise self.error(
                f"expected an operator or the end of the expression, got {self.describe(token)}",
                token.offset,
            )
        return node

    def or_expr(self) -> Node:
        return self._logic_chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._logic_chain("and", self.not_expr)

    def _logic_chain(self, word: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        if not self.at_keyword(word):
            return first
        operands, offsets = [first], []
        while self.at_keyword(word):
            token = self.advance()
            offsets.append(token.offset)
            operands.append(operand())
        return self.logic(word, operands, offsets)

    def not_expr(self) -> Node:
        if not self.at_keyword("not"):
            return self.comparison()
        token = self.advance()
        self.enter(token)
        operand = self.not_expr()
        self.depth -= 1
        return self.negate(operand, token.offset)

    def comparison(self) -> Node:
        left = self.sum()
        comparisons: list[Node] = []
        offsets: list[int] = []
        after_list = False
        while True:
            token = self.peek()
            if token.kind == "op" and token.text in _COMPARISONS:
                op = token.text
                self.advance()
            elif self.at_keyword("in"):
                op = "in"
                self.advance()
            elif self.at_keyword("not"):
                following = self.tokens[self.pos + 1]
                if not (following.kind == "name" and following.text == "in"):
                    raise self.error(
                        f"expected 'in' after 'not', got {self.describe(following)}",
                        following.offset,
                    )
                op = "not in"
                self.pos += 2
            else:
                break
            if after_list:
                raise self.error(f"cannot chain '{op}' after an 'in' list", token.offset)
            if op in ("in", "not in"):
                items, list_type = self.list_literal(op)
                comparisons.append(
                    self.member(left, items, list_type, op == "not in", token.offset)
                )
                after_list = True
            else:
                right = self.sum()
                comparisons.append(self.compare(op, left, right, token.offset))
                left = right
            offsets.append(token.offset)
        if not comparisons:
            return left
        if len(comparisons) == 1:
            return comparisons[0]
        return self.logic("and", comparisons, offsets[1:])

    def list_literal(self, op: str) -> tuple[list[Const], str | None]:
        opening = self.peek()
        if not self.at_op("["):
            raise self.error(
                f"expected a list after '{op}', got {self.describe(opening)}",
                opening.offset,
                "write the values in brackets, like ['A', 'B']",
            )
        self.advance()
        items: list[Const] = []
        list_type: str | None = None
        while not self.at_op("]"):
            token = self.peek()
            if token.kind == "end":
                raise self.error("unclosed '['", opening.offset)
            value, item_type = self.list_item()
            self.count(token.offset)
            if len(items) >= MAX_LIST:
                raise self.error(f"list longer than {MAX_LIST} items", token.offset)
            if list_type is None:
                list_type = item_type
            elif _family(item_type) != _family(list_type):
                raise self.error(
                    f"list items must all have one type, got {list_type} and {item_type}",
                    token.offset,
                )
            elif item_type != list_type:
                list_type = "number"
            items.append(Const(value, item_type, token.offset))
            if self.at_op(","):
                self.advance()
            elif not self.at_op("]"):
                following = self.peek()
                if following.kind == "end":
                    raise self.error("unclosed '['", opening.offset)
                raise self.error(
                    f"expected ',' or ']' in the list, got {self.describe(following)}",
                    following.offset,
                )
        self.advance()
        return items, list_type

    def list_item(self) -> tuple[Any, str]:
        token = self.advance()
        if token.kind == "op" and token.text in ("-", "+"):
            number = self.peek()
            if number.kind != "number":
                raise self.error(
                    "list items must be literal numbers, strings or true/false", token.offset
                )
            self.advance()
            value = -number.value if token.text == "-" else number.value
            return value, "integer" if isinstance(value, int) else "number"
        if token.kind == "number":
            return token.value, "integer" if isinstance(token.value, int) else "number"
        if token.kind == "string":
            return token.value, "text"
        if token.kind == "name" and token.text in ("true", "True", "false", "False"):
            return token.text in ("true", "True"), "boolean"
        raise self.error("list items must be literal numbers, strings or true/false", token.offset)

    def sum(self) -> Node:
        left = self.term()
        while self.at_op("+", "-"):
            token = self.advance()
            left = self.arith(token.text, left, self.term(), token.offset)
        return left

    def term(self) -> Node:
        left = self.unary()
        while self.at_op("*", "/", "//", "%"):
            token = self.advance()
            left = self.arith(token.text, left, self.unary(), token.offset)
        return left

    def unary(self) -> Node:
        if not self.at_op("-", "+"):
            return self.power()
        token = self.advance()
        self.enter(token)
        operand = self.unary()
        self.depth -= 1
        return self.sign(token.text, operand, token.offset)

    def power(self) -> Node:
        base = self.primary()
        if not self.at_op("**"):
            return base
        token = self.advance()
        self.enter(token)
        exponent = self.unary()
        self.depth -= 1
        return self.arith("**", base, exponent, token.offset)

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "number":
            self.advance()
            self.count(token.offset)
            kind = "integer" if isinstance(token.value, int) else "number"
            return Const(token.value, kind, token.offset)
        if token.kind == "string":
            self.advance()
            self.count(token.offset)
            return Const(token.value, "text", token.offset)
        if token.kind == "name" and token.text not in ("and", "or", "not", "in"):
            self.advance()
            self.count(token.offset)
            if token.text in ("true", "True", "false", "False"):
                return Const(token.text in ("true", "True"), "boolean", token.offset)
            if token.text in ("null", "None"):
                raise self.error(
                    f"there is no '{token.text}' literal", token.offset, "use is_null(x)"
                )
            if self.at_op("("):
                return self.call(token)
            return self.name(token)
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.enter(token)
            inner = self.or_expr()
            closing = self.peek()
            if not self.at_op(")"):
                if closing.kind == "end":
                    raise self.error("unclosed '('", token.offset)
                raise self.error(f"expected ')', got {self.describe(closing)}", closing.offset)
            self.advance()
            self.depth -= 1
            return inner
        if token.kind == "op" and token.text == "[":
            raise self.error("a list is only allowed after 'in' or 'not in'", token.offset)
        raise self.operand_error(token)

    def operand_error(self, token: _Token) -> ExpressionError:
        previous = self.tokens[self.pos - 1] if self.pos > 0 else None
        message = (
            "expected an operand"
            if previous is None
            else f"expected an operand after '{previous.text}'"
        )
        if token.kind != "end":
            message += f", got {self.describe(token)}"
        return self.error(message, token.offset)

    def name(self, token: _Token) -> Node:
        name = token.text
        field = self.schema.get(name)
        if field is not None:
            return FieldRef(name, field.type, token.offset)
        if name in self.parameters:
            value = self.parameters[name]
            kind = _constant_type(value)
            if kind is None:
                raise self.error(
                    f"parameter '{name}' has a value of unsupported type {type(value).__name__}",
                    token.offset,
                )
            return Const(value, kind, token.offset)
        raise self.error(
            f"unknown field '{name}'",
            token.offset,
            did_you_mean(name, [*self.schema, *self.parameters]),
        )

    def call(self, name_token: _Token) -> Node:
        name = name_token.text
        if name not in _ARITY:
            raise self.error(
                f"unknown function '{name}'", name_token.offset, did_you_mean(name, FUNCTIONS)
            )
        opening = self.advance()
        self.enter(opening)
        args: list[Node] = []
        starts: list[int] = []
        if self.at_op(")"):
            self.advance()
        else:
            while True:
                starts.append(self.peek().offset)
                args.append(self.or_expr())
                token = self.peek()
                if self.at_op(")"):
                    self.advance()
                    break
                if self.at_op(","):
                    self.advance()
                    continue
                if token.kind == "end":
                    raise self.error("unclosed '('", opening.offset)
                raise self.error(
                    f"expected ',' or ')' in {name}(), got {self.describe(token)}",
                    token.offset,
                )
        self.depth -= 1
        return self.function(name, args, starts, name_token.offset)

    # -- checking and folding ---------------------------------------------------

    def arith(self, op: str, left: Node, right: Node, offset: int) -> Node:
        self.count(offset)
        for side in (left, right):
            if side.type not in _NUMERIC:
                raise self.error(f"'{op}' needs numbers, got {side.type}", offset)
        # Float math for '/' and '**' (2 ** -1 is not an integer).
        floating = op in ("/", "**") or "number" in (left.type, right.type)
        kind = "number" if floating else "integer"
        if op == "**" and isinstance(left, Const) and isinstance(right, Const):
            return self.fold_power(left, right, offset)
        return _fold(Binary(op, left, right, kind, offset))

    def fold_power(self, base: Const, exponent: Const, offset: int) -> Node:
        if base.value is None or exponent.value is None:
            return Const(None, "number", offset)
        if abs(exponent.value) > MAX_EXPONENT:
            raise self.error(
                "constant too large",
                offset,
                f"the exponent of a constant '**' must be within ±{MAX_EXPONENT}",
            )
        try:
            value = math.pow(base.value, exponent.value)
        except OverflowError:
            value = math.inf
        except ValueError:
            return Const(None, "number", offset)
        if not abs(value) <= MAX_NUMBER:
            raise self.error("constant too large", offset, "a constant '**' must stay within ±1e15")
        return Const(value, "number", offset)

    def sign(self, op: str, operand: Node, offset: int) -> Node:
        self.count(offset)
        if operand.type not in _NUMERIC:
            raise self.error(f"unary '{op}' needs a number, got {operand.type}", offset)
        return _fold(Unary(op, operand, operand.type, offset))

    def compare(self, op: str, left: Node, right: Node, offset: int) -> Node:
        self.count(offset)
        if _family(left.type) != _family(right.type):
            raise self.error(f"cannot compare {left.type} with {right.type}", offset)
        if op in _ORDERINGS and left.type == "boolean":
            raise self.error(f"'{op}' cannot order true/false values", offset, "use '==' or '!='")
        return _fold(Compare(op, left, right, offset=offset))

    def member(
        self, operand: Node, items: list[Const], list_type: str | None, negated: bool, offset: int
    ) -> Node:
        self.count(offset)
        if list_type is not None and _family(operand.type) != _family(list_type):
            raise self.error(f"cannot look for {operand.type} in a list of {list_type}", offset)
        values = frozenset(item.value for item in items)
        return _fold(Member(operand, values, negated, tuple(items), offset=offset))

    def negate(self, operand: Node, offset: int) -> Node:
        self.count(offset)
        if operand.type != "boolean":
            raise self.error(f"'not' needs a true/false operand, got {operand.type}", offset)
        return _fold(Not(operand, offset=offset))

    def logic(self, op: str, operands: list[Node], offsets: list[int]) -> Node:
        self.count(offsets[0])
        for index, operand in enumerate(operands):
            if operand.type != "boolean":
                raise self.error(
                    f"'{op}' needs true/false operands, got {operand.type}",
                    offsets[max(0, index - 1)],
                )
        # Kleene identities: true is neutral for 'and' and false absorbs it
        # (false and null is false); the mirror holds for 'or'.
        neutral, absorbing = (True, False) if op == "and" else (False, True)
        kept: list[Node] = []
        for operand in operands:
            if isinstance(operand, Const) and operand.value is absorbing:
                return Const(absorbing, "boolean", offsets[0])
            if isinstance(operand, Const) and operand.value is neutral:
                continue
            kept.append(operand)
        if not kept:
            return Const(neutral, "boolean", offsets[0])
        if len(kept) == 1:
            return kept[0]
        if all(isinstance(operand, Const) for operand in kept):
            return Const(None, "boolean", offsets[0])
        return Logic(op, tuple(kept), offset=offsets[0])

    def function(self, name: str, args: list[Node], starts: list[int], offset: int) -> Node:
        self.count(offset)
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            if high is None:
                wanted = f"at least {low} arguments"
            elif low == high:
                wanted = f"{low} argument{'s' if low > 1 else ''}"
            else:
                wanted = f"{low} or {high} arguments"
            raise self.error(f"{name}() takes {wanted}, got {len(args)}", offset)
        if name == "date":
            return self.date_constant(args[0], starts[0], offset)
        if name in ("pct_change", "abs", "min", "max", "round"):
            for arg, start in zip(args, starts, strict=True):
                if arg.type not in _NUMERIC:
                    raise self.error(f"{name}() needs numbers, got {arg.type}", start)
            if name == "round" and len(args) == 2 and args[1].type != "integer":
                raise self.error("round() needs a whole number of digits, got number", starts[1])
            if name == "pct_change":
                kind = "number"
            elif name == "round":
                kind = "integer" if len(args) == 1 else args[0].type
            else:
                kind = "integer" if all(arg.type == "integer" for arg in args) else "number"
        elif name == "days_between":
            for arg, start in zip(args, starts, strict=True):
                if arg.type != "date":
                    raise self.error(f"days_between() needs dates, got {arg.type}", start)
            kind = "integer"
        elif name == "coalesce":
            kind = args[0].type
            for arg, start in zip(args[1:], starts[1:], strict=True):
                if _family(arg.type) != _family(kind):
                    raise self.error(
                        f"coalesce() needs arguments of one type, got {kind} and {arg.type}", start
                    )
                if arg.type != kind:
                    kind = "number"
        else:  # is_null
            kind = "boolean"
        return _fold(Call(name, tuple(args), kind, offset))

    def date_constant(self, arg: Node, start: int, offset: int) -> Node:
        if not (isinstance(arg, Const) and arg.type == "text" and arg.value is not None):
            raise self.error("date() needs a string literal like date('2024-01-31')", start)
        try:
            if not _DATE_RE.fullmatch(arg.value):
                raise ValueError
            value = datetime.date.fromisoformat(arg.value)
        except ValueError:
            raise self.error(
                f"invalid date '{arg.value}'", start, "write dates as 'YYYY-MM-DD'"
            ) from None
        return Const(value, "date", offset)


def _family(kind: str) -> str:
    return "number" if kind in _NUMERIC else kind


def _satisfies(kind: str, expect: str) -> bool:
    return kind == expect or (expect == "number" and kind == "integer")


def _constant_type(value: Any) -> str | None:
    # bool before int: True is an int in Python, but not a number here.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return "date"
    return None


def _is_strict(node: Node) -> bool:
    if isinstance(node, Call):
        return node.function in _STRICT_FUNCTIONS
    return not isinstance(node, Logic)


def _fold(node: Node) -> Node:
    """Replace a subexpression whose operands are all constants by its value."""
    operands = children(node)
    if all(isinstance(operand, Const) for operand in operands):
        return Const(evaluate_reference(node, {}), node.type, node.offset)
    if _is_strict(node) and any(isinstance(op, Const) and op.value is None for op in operands):
        return Const(None, node.type, node.offset)
    return node


# ---------------------------------------------------------------------------
# The compiled expression
# ---------------------------------------------------------------------------


def _schema_of(fields: Mapping[str, Field | str] | Iterable[Field]) -> dict[str, Field]:
    """Accept fields as Field objects, or a mapping of name -> Field or type name."""
    if isinstance(fields, Mapping):
        schema = {}
        for name, field in fields.items():
            schema[name] = field if isinstance(field, Field) else Field(name, field)
        return schema
    return {field.name: field for field in fields}


class Expression:
    """A checked, compiled expression: call it with a fact to get its value.

    ``text`` is the source, ``fields`` the names of the fields it reads in
    order of first use (the audit trail records them as inputs), ``type`` the
    result type and ``node`` the checked, folded tree. Calling returns the
    value, or None for null. Pickling keeps only the text, the field
    declarations and the parameters, and compiles again on load, so
    expressions travel safely to worker processes (rule-engine's ``Rule``).
    """

    __slots__ = ("_function", "_schema", "expect", "fields", "node", "parameters", "text", "type")

    text: str
    fields: tuple[str, ...]
    type: str
    node: Node
    parameters: Mapping[str, Any]
    expect: str | None

    def __init__(
        self,
        text: str,
        schema: tuple[Field, ...],
        parameters: Mapping[str, Any],
        expect: str | None,
        node: Node,
    ) -> None:
        init = object.__setattr__
        init(self, "text", text)
        init(self, "node", node)
        init(self, "type", node.type)
        init(self, "fields", _fields_read(node))
        init(self, "parameters", types.MappingProxyType(dict(parameters)))
        init(self, "expect", expect)
        init(self, "_schema", schema)
        init(self, "_function", _expression_function(node, self.fields))

    def __call__(self, fact: Mapping[str, Any]) -> Any:
        return self._function(fact)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Expression is immutable")

    def __getstate__(self) -> tuple:
        return (self.text, self._schema, dict(self.parameters), self.expect)

    def __setstate__(self, state: tuple) -> None:
        text, schema, parameters, expect = state
        fresh = compile_expression(text, schema, parameters=parameters, expect=expect)
        for slot in Expression.__slots__:
            object.__setattr__(self, slot, getattr(fresh, slot))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash((self.text, self._schema))

    def __repr__(self) -> str:
        return f"Expression({self.text!r}, type={self.type!r})"


def compile_expression(
    text: str,
    fields: Mapping[str, Field | str] | Iterable[Field],
    *,
    parameters: Mapping[str, Any] | None = None,
    locate: Callable[[int], Location] | None = None,
    expect: str | None = None,
) -> Expression:
    """Parse, check and compile ``text``; raise ExpressionError with its place.

    ``fields`` declares the fields (Field objects, or a mapping of name to
    Field or type name); ``parameters`` maps names to constants (int, float,
    str, bool, date) that are folded in. ``locate`` maps a 0-based offset into
    ``text`` to a Location (the pack loader points it into the YAML file);
    without it errors carry no location. ``expect`` is the type the result
    must have; ``'boolean'`` for conditions ("condition must be true/false").
    """
    schema = _schema_of(fields)
    parameters = dict(parameters or {})
    if expect is not None and expect not in FIELD_TYPES:
        raise ValueError(f"expect must be one of {', '.join(FIELD_TYPES)}, got {expect!r}")
    parser = _Parser(text, schema, parameters, locate)
    if not isinstance(text, str):
        raise parser.error(f"an expression must be text, got {type(text).__name__}", 0)
    node = parser.parse()
    if expect is not None and not _satisfies(node.type, expect):
        if expect == "boolean":
            raise parser.error(f"condition must be true/false, got {node.type}", 0)
        raise parser.error(f"expression must be {expect}, got {node.type}", 0)
    return Expression(text, tuple(schema.values()), parameters, expect, node)


# ---------------------------------------------------------------------------
# Code generation for the row path
# ---------------------------------------------------------------------------


class _NullResult(Exception):
    """Raised by the fast path where a constant null would be needed."""


def _raise_null() -> None:
    raise _NullResult


_RUNTIME: dict[str, Any] = {
    "__builtins__": {},
    # Everything that would make a part null raises one of these in the fast
    # path; the fact is then evaluated again by the null-aware function.
    "_FALLBACK": (KeyError, ZeroDivisionError, OverflowError, ValueError, _NullResult),
    "_null": _raise_null,
    "_pow": math.pow,
    "_abs": abs,
    "_min": min,
    "_max": max,
    "_round": round,
    "_round_digits": _round_digits,
    "_n_and": _kleene_and,
    "_n_or": _kleene_or,
    **{f"_n_{name}": impl for name, impl in _FUNCTION_IMPLEMENTATIONS.items()},
}
_ARITH_HELPERS = {
    "+": "_n_add",
    "-": "_n_sub",
    "*": "_n_mul",
    "/": "_n_truediv",
    "//": "_n_floordiv",
    "%": "_n_mod",
    "**": "_n_pow",
}
for _op, _helper in _ARITH_HELPERS.items():
    _RUNTIME[_helper] = _NULL_ARITH[_op]

_AST_ARITH = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "//": ast.FloorDiv,
    "%": ast.Mod,
}
_AST_COMPARE = {
    "<": ast.Lt,
    "<=": ast.LtE,
    ">": ast.Gt,
    ">=": ast.GtE,
    "==": ast.Eq,
    "!=": ast.NotEq,
}


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _call(function: str, args: Iterable[ast.expr]) -> ast.Call:
    return ast.Call(func=_load(function), args=list(args), keywords=[])


def _is_none(expr: ast.expr) -> ast.expr:
    return ast.Compare(left=expr, ops=[ast.Is()], comparators=[ast.Constant(None)])


def _not_none(expr: ast.expr) -> ast.expr:
    return ast.Compare(left=expr, ops=[ast.IsNot()], comparators=[ast.Constant(None)])


def _all(exprs: list[ast.expr]) -> ast.expr:
    return exprs[0] if len(exprs) == 1 else ast.BoolOp(op=ast.And(), values=exprs)


def _any(exprs: list[ast.expr]) -> ast.expr:
    return exprs[0] if len(exprs) == 1 else ast.BoolOp(op=ast.Or(), values=exprs)


def _copy(expr: ast.expr) -> ast.expr:
    if isinstance(expr, ast.Name):
        return _load(expr.id)
    if isinstance(expr, ast.Constant):
        return ast.Constant(expr.value)
    raise TypeError(expr)


class _Codegen:
    """Turns checked trees into Python ``ast`` for one generated module.

    Three translations exist. ``fast`` assumes no value is null and uses plain
    operators; anything that would be null raises (see ``_FALLBACK``).
    ``value`` is null-aware and gives True/False/None for booleans.
    ``truth``/``falsity`` give an expression that is truthy exactly when the
    node is true (resp. false) under Kleene logic; conditions only need that,
    and it keeps the short-circuits of Python's own ``and``/``or``.
    """

    def __init__(self) -> None:
        self.namespace = dict(_RUNTIME)
        self.locals: dict[str, str] = {}
        self.temps = 0
        self.bound: dict[tuple[str, Any], str] = {}

    def local(self, field: str) -> str:
        return self.locals.setdefault(field, f"v{len(self.locals)}")

    def bind(self, value: Any, prefix: str) -> ast.Name:
        key = (prefix, value)
        name = self.bound.get(key)
        if name is None:
            name = self.bound[key] = f"{prefix}{len(self.bound)}"
            self.namespace[name] = value
        return _load(name)

    def once(self, expr: ast.expr) -> tuple[ast.expr, ast.expr]:
        """(first use, later use) of a value, through a temporary if needed."""
        if isinstance(expr, ast.Name | ast.Constant):
            return expr, _copy(expr)
        self.temps += 1
        name = f"t{self.temps}"
        return ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=expr), _load(name)

    def constant(self, node: Const) -> ast.expr:
        if node.type == "date" and node.value is not None:
            return self.bind(node.value, "D")
        return ast.Constant(node.value)

    def members(self, node: Member) -> ast.Name:
        return self.bind(node.values, "K")

    # -- fast: no nulls -------------------------------------------------------

    def fast(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return _call("_null", []) if node.value is None else self.constant(node)
        if isinstance(node, FieldRef):
            return _load(self.local(node.name))
        if isinstance(node, Unary):
            op = ast.USub() if node.op == "-" else ast.UAdd()
            return ast.UnaryOp(op=op, operand=self.fast(node.operand))
        if isinstance(node, Binary):
            left, right = self.fast(node.left), self.fast(node.right)
            if node.op == "**":
                return _call("_pow", [left, right])
            return ast.BinOp(left=left, op=_AST_ARITH[node.op](), right=right)
        if isinstance(node, Compare):
            return ast.Compare(
                left=self.fast(node.left),
                ops=[_AST_COMPARE[node.op]()],
                comparators=[self.fast(node.right)],
            )
        if isinstance(node, Member):
            op = ast.NotIn() if node.negated else ast.In()
            return ast.Compare(
                left=self.fast(node.operand), ops=[op], comparators=[self.members(node)]
            )
        if isinstance(node, Not):
            return ast.UnaryOp(op=ast.Not(), operand=self.fast(node.operand))
        if isinstance(node, Logic):
            op = ast.And() if node.op == "and" else ast.Or()
            return ast.BoolOp(op=op, values=[self.fast(operand) for operand in node.operands])
        return self.fast_call(node)

    def fast_call(self, node: Call) -> ast.expr:
        name = node.function
        if name == "coalesce":
            # With no nulls the first argument wins; if it would be null it
            # raises and the null-aware function takes over.
            return self.fast(node.args[0])
        if name == "is_null":
            checked = self.fast(node.args[0])
            if isinstance(checked, ast.Name | ast.Constant):
                # A field or constant in the fast path is known not to be null.
                return ast.Constant(False)
            return _is_none(checked)
        args = [self.fast(arg) for arg in node.args]
        if name == "pct_change":
            new, old = args
            first, again = self.once(old)
            # Division by zero raises here, which is exactly when the result
            # must be null.
            change = ast.BinOp(left=new, op=ast.Sub(), right=first)
            return ast.BinOp(left=change, op=ast.Div(), right=again)
        if name == "days_between":
            difference = ast.BinOp(left=args[0], op=ast.Sub(), right=args[1])
            return ast.Attribute(value=difference, attr="days", ctx=ast.Load())
        if name == "round" and len(args) == 2:
            return _call("_round_digits", args)
        return _call(f"_{name}", args)

    # -- null-aware -----------------------------------------------------------

    def operands(self, nodes: Iterable[Node]) -> tuple[list[ast.expr], list[ast.expr]]:
        """Null checks and references for operands of a strict operation."""
        checks: list[ast.expr] = []
        refs: list[ast.expr] = []
        for node in nodes:
            expr = self.value(node)
            if isinstance(node, Const) and node.value is not None:
                refs.append(expr)
                continue
            first, again = self.once(expr)
            checks.append(first)
            refs.append(again)
        return checks, refs

    def strict(
        self, nodes: Iterable[Node], build: Callable[[list[ast.expr]], ast.expr]
    ) -> ast.expr:
        checks, refs = self.operands(nodes)
        result = build(refs)
        if not checks:
            return result
        return ast.IfExp(
            test=_any([_is_none(c) for c in checks]), body=ast.Constant(None), orelse=result
        )

    def comparison(
        self, node: Compare | Member, refs: list[ast.expr], negate: bool = False
    ) -> ast.expr:
        if isinstance(node, Member):
            negated = node.negated != negate
            op = ast.NotIn() if negated else ast.In()
            return ast.Compare(left=refs[0], ops=[op], comparators=[self.members(node)])
        test = ast.Compare(left=refs[0], ops=[_AST_COMPARE[node.op]()], comparators=[refs[1]])
        return ast.UnaryOp(op=ast.Not(), operand=test) if negate else test

    def value(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return self.constant(node)
        if isinstance(node, FieldRef):
            return _load(self.local(node.name))
        if isinstance(node, Unary):
            op = ast.USub if node.op == "-" else ast.UAdd
            return self.strict([node.operand], lambda refs: ast.UnaryOp(op=op(), operand=refs[0]))
        if isinstance(node, Binary):
            return _call(_ARITH_HELPERS[node.op], [self.value(node.left), self.value(node.right)])
        if isinstance(node, Compare | Member):
            return self.strict(children(node), lambda refs: self.comparison(node, refs))
        if isinstance(node, Not):
            return self.strict(
                [node.operand], lambda refs: ast.UnaryOp(op=ast.Not(), operand=refs[0])
            )
        if isinstance(node, Logic):
            helper = "_n_and" if node.op == "and" else "_n_or"
            return _call(helper, [self.value(operand) for operand in node.operands])
        return _call(f"_n_{node.function}", [self.value(arg) for arg in node.args])

    def truth(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return ast.Constant(node.value is not None and bool(node.value))
        if isinstance(node, FieldRef):
            return _load(self.local(node.name))  # None is falsy, as null must be
        if isinstance(node, Compare | Member):
            checks, refs = self.operands(children(node))
            return _all([*(_not_none(c) for c in checks), self.comparison(node, refs)])
        if isinstance(node, Not):
            return self.falsity(node.operand)
        if isinstance(node, Logic):
            op = ast.And() if node.op == "and" else ast.Or()
            return ast.BoolOp(op=op, values=[self.truth(operand) for operand in node.operands])
        return self.value(node)

    def falsity(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return ast.Constant(node.value is not None and not node.value)
        if isinstance(node, Compare | Member):
            checks, refs = self.operands(children(node))
            return _all([*(_not_none(c) for c in checks), self.comparison(node, refs, negate=True)])
        if isinstance(node, Not):
            return self.truth(node.operand)
        if isinstance(node, Logic):
            op = ast.Or() if node.op == "and" else ast.And()
            return ast.BoolOp(op=op, values=[self.falsity(operand) for operand in node.operands])
        first, again = self.once(self.value(node))
        return _all([_not_none(first), ast.UnaryOp(op=ast.Not(), operand=again)])

    # -- functions ------------------------------------------------------------

    def reads(self, fields: Iterable[str], *, strict: bool) -> list[ast.stmt]:
        """Statements reading fields into locals: ``v0 = fact['x']`` or ``get('x')``."""
        statements: list[ast.stmt] = []
        for field in fields:
            key = ast.Constant(field)
            if strict:
                read: ast.expr = ast.Subscript(value=_load("fact"), slice=key, ctx=ast.Load())
            else:
                read = _call("get", [key])
            target = ast.Name(id=self.local(field), ctx=ast.Store())
            statements.append(ast.Assign(targets=[target], value=read))
        return statements

    def none_guard(self, fields: Sequence[str]) -> list[ast.stmt]:
        if not fields:
            return []
        test = _any([_is_none(_load(self.local(field))) for field in fields])
        return [ast.If(test=test, body=[_return_slow()], orelse=[])]

    def build(
        self, fast_body: list[ast.stmt], slow_body: list[ast.stmt]
    ) -> Callable[[Mapping[str, Any]], Any]:
        """Compile ``run(fact)`` (fast path, falling back) and ``slow(fact)``."""
        guarded = ast.Try(
            body=fast_body,
            handlers=[ast.ExceptHandler(type=_load("_FALLBACK"), name=None, body=[_return_slow()])],
            orelse=[],
            finalbody=[],
        )
        module = ast.Module(
            body=[_function("run", [guarded]), _function("slow", slow_body)], type_ignores=[]
        )
        ast.fix_missing_locations(module)
        code = compile(module, "<storeops expression>", "exec")
        built = {
            const.co_name: types.FunctionType(const, self.namespace, const.co_name)
            for const in code.co_consts
            if isinstance(const, types.CodeType)
        }
        self.namespace["_slow"] = built["slow"]
        return built["run"]


def _return_slow() -> ast.stmt:
    return ast.Return(value=_call("_slow", [_load("fact")]))


def _function(name: str, body: list[ast.stmt]) -> ast.FunctionDef:
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg="fact")],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    definition = ast.FunctionDef(
        name=name, args=arguments, body=body, decorator_list=[], returns=None
    )
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        definition.type_params = []
    return definition


def _slow_prologue(gen: _Codegen, fields: Iterable[str]) -> list[ast.stmt]:
    get = ast.Assign(
        targets=[ast.Name(id="get", ctx=ast.Store())],
        value=ast.Attribute(value=_load("fact"), attr="get", ctx=ast.Load()),
    )
    return [get, *gen.reads(fields, strict=False)]


def _expression_function(node: Node, fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    gen = _Codegen()
    if isinstance(node, Const):
        result: ast.expr = gen.constant(node)
    else:
        result = gen.fast(node)
    fast_body = [*gen.reads(fields, strict=True), *gen.none_guard(fields), ast.Return(value=result)]
    slow_body = [*_slow_prologue(gen, fields), ast.Return(value=gen.value(node))]
    return gen.build(fast_body, slow_body)


def _check_conditions(conditions: Sequence[Expression]) -> None:
    for index, condition in enumerate(conditions):
        if condition.type != "boolean":
            raise ValueError(
                f"condition {index} ({condition.text!r}) is {condition.type}, not true/false"
            )


def compile_matcher(
    conditions: Sequence[Expression], *, first_only: bool
) -> Callable[[Mapping[str, Any]], list[int]]:
    """One generated function that tests a whole list of conditions on a fact.

    It returns the indices of the conditions that are true, ascending (a null
    condition is not true); with ``first_only`` at most the first of them.
    This is the hot path: each field is read once into a local, just before
    the first condition that needs it (so ``first_only`` stops reading when
    it stops testing), and conditions are plain Python tests. A None value,
    a missing key or a part that would be null sends the fact to a second,
    null-aware function, which gives the Kleene answer.
    """
    _check_conditions(conditions)
    gen = _Codegen()
    fast_body: list[ast.stmt] = []
    slow_body: list[ast.stmt] = []
    if not first_only:
        for body in (fast_body, slow_body):
            body.append(
                ast.Assign(
                    targets=[ast.Name(id="out", ctx=ast.Store())],
                    value=ast.List(elts=[], ctx=ast.Load()),
                )
            )
    read: dict[str, None] = {}
    for index, condition in enumerate(conditions):
        new_fields = [field for field in condition.fields if field not in read]
        read.update(dict.fromkeys(new_fields))
        fast_body.extend(gen.reads(new_fields, strict=True))
        fast_body.extend(gen.none_guard(new_fields))
        node = condition.node
        test = ast.Constant(node.value is True) if isinstance(node, Const) else gen.fast(node)
        fast_body.append(ast.If(test=test, body=[_hit(index, first_only)], orelse=[]))
        slow_body.append(ast.If(test=gen.truth(node), body=[_hit(index, first_only)], orelse=[]))
    for body in (fast_body, slow_body):
        body.append(
            ast.Return(value=ast.List(elts=[], ctx=ast.Load()) if first_only else _load("out"))
        )
    return gen.build(fast_body, [*_slow_prologue(gen, read), *slow_body])


def _hit(index: int, first_only: bool) -> ast.stmt:
    if first_only:
        return ast.Return(value=ast.List(elts=[ast.Constant(index)], ctx=ast.Load()))
    append = ast.Attribute(value=_load("out"), attr="append", ctx=ast.Load())
    return ast.Expr(value=ast.Call(func=append, args=[ast.Constant(index)], keywords=[]))


# ---------------------------------------------------------------------------
# The columnar path
# ---------------------------------------------------------------------------

_NUMPY_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_NUMPY_ARITH = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "//": np.floor_divide,
    "%": np.remainder,
}
_EMPTY = {
    "number": np.float64,
    "integer": np.int64,
    "boolean": np.bool_,
    "date": "datetime64[D]",
    "text": object,
}


def _either(*masks: np.ndarray | None) -> np.ndarray | None:
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return np.logical_or.reduce(present)


class _Columns:
    """Evaluates checked trees over whole columns for one batch.

    Values travel as ``(values, mask)``: ``values`` is an array (or a scalar
    for constants) and ``mask`` marks nulls (None when there are none).
    Values under the mask are meaningless and never reach a result.
    """

    def __init__(self, columns: Mapping[str, Column], n: int) -> None:
        import pandas

        self.pandas = pandas
        self.columns = columns
        self.n = n
        self.fields: dict[str, tuple[Any, np.ndarray | None]] = {}
        self.codes: dict[str, tuple[np.ndarray, Any]] = {}

    def field(self, node: FieldRef) -> tuple[Any, np.ndarray | None]:
        cached = self.fields.get(node.name)
        if cached is not None:
            return cached
        column = self.columns.get(node.name)
        if column is None:
            # A missing column is a missing key in every fact: all null.
            result = (np.zeros(self.n, dtype=_EMPTY[node.type]), np.ones(self.n, dtype=bool))
        else:
            values, mask = column
            values = np.asarray(values)
            if mask is not None:
                mask = np.asarray(mask, dtype=bool)
                if not mask.any():
                    mask = None
            result = (values, mask)
        self.fields[node.name] = result
        return result

    def evaluate(self, node: Node) -> tuple[Any, np.ndarray | None]:
        if isinstance(node, Const):
            if node.value is None:
                return np.zeros(self.n, dtype=_EMPTY[node.type]), np.ones(self.n, dtype=bool)
            if node.type == "date":
                return np.datetime64(node.value, "D"), None
            return node.value, None
        if isinstance(node, FieldRef):
            return self.field(node)
        if isinstance(node, Unary):
            values, mask = self.evaluate(node.operand)
            return (np.negative(values) if node.op == "-" else values), mask
        if isinstance(node, Binary):
            return self.arith(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Member):
            values, mask = self.evaluate(node.operand)
            hits = self.member(node.operand, values, mask, node.values)
            return (~hits if node.negated else hits), mask
        if isinstance(node, Not):
            values, mask = self.evaluate(node.operand)
            return ~np.asarray(values, dtype=bool), mask
        if isinstance(node, Logic):
            return self.logic(node)
        return self.call(node)

    def arith(self, node: Binary) -> tuple[Any, np.ndarray | None]:
        left, left_mask = self.evaluate(node.left)
        right, right_mask = self.evaluate(node.right)
        mask = _either(left_mask, right_mask)
        if node.op == "**":
            return self.power(left, right, mask)
        with np.errstate(all="ignore"):
            values = _NUMPY_ARITH[node.op](left, right)
        if node.op in ("/", "//", "%"):
            zero = np.asarray(right) == 0
            if zero.any():
                mask = _either(mask, np.broadcast_to(zero, (self.n,)))
        return values, mask

    def power(
        self, base: Any, exponent: Any, mask: np.ndarray | None
    ) -> tuple[Any, np.ndarray | None]:
        # Element by element with math.pow: numpy's vectorised power may
        # differ from libm in the last bit, and the two paths must agree.
        bases = np.broadcast_to(np.asarray(base, dtype=np.float64), (self.n,))
        exponents = np.broadcast_to(np.asarray(exponent, dtype=np.float64), (self.n,))
        skip = np.zeros(self.n, dtype=bool) if mask is None else mask
        out = np.zeros(self.n, dtype=np.float64)
        failed = np.zeros(self.n, dtype=bool)
        for i, (b, e, s) in enumerate(
            zip(bases.tolist(), exponents.tolist(), skip.tolist(), strict=True)
        ):
            if s:
                continue
            try:
                out[i] = math.pow(b, e)
            except (OverflowError, ValueError):
                failed[i] = True
        return out, _either(mask, failed if failed.any() else None)

    def compare(self, node: Compare) -> tuple[Any, np.ndarray | None]:
        if node.left.type == "text" and node.op in ("==", "!=") and isinstance(node.right, Const):
            values, mask = self.evaluate(node.left)
            hits = self.member(node.left, values, mask, frozenset((node.right.value,)))
            return (hits if node.op == "==" else ~hits), mask
        left, left_mask = self.evaluate(node.left)
        right, right_mask = self.evaluate(node.right)
        if node.left.type == "text" and node.op in _ORDERINGS:
            # Python cannot order None against str; nulls are masked anyway.
            left, right = _fill_text(left, left_mask), _fill_text(right, right_mask)
        values = _NUMPY_COMPARE[node.op](left, right)
        return np.asarray(values, dtype=bool), _either(left_mask, right_mask)

    def member(
        self, operand: Node, values: Any, mask: np.ndarray | None, wanted: frozenset
    ) -> np.ndarray:
        if operand.type == "text":
            codes, uniques = self.factorize(operand, values)
            # Test each distinct value once, then spread by code; code -1
            # (a None under the mask) picks the extra False at the end.
            table = np.fromiter(
                (value in wanted for value in uniques), dtype=bool, count=len(uniques)
            )
            return np.append(table, False)[codes]
        if not wanted:
            return np.zeros(self.n, dtype=bool)
        values = np.broadcast_to(np.asarray(values), (self.n,))
        return np.isin(values, list(wanted))

    def factorize(self, operand: Node, values: Any) -> tuple[np.ndarray, Any]:
        if isinstance(operand, FieldRef):
            cached = self.codes.get(operand.name)
            if cached is None:
                cached = self.codes[operand.name] = self.pandas.factorize(
                    np.asarray(values, dtype=object)
                )
            return cached
        return self.pandas.factorize(np.broadcast_to(np.asarray(values, dtype=object), (self.n,)))

    def logic(self, node: Logic) -> tuple[np.ndarray, np.ndarray | None]:
        # Kleene logic on (is true, is false) pairs: 'and' is true when all
        # operands are true and false when any is false; null otherwise.
        pairs = [_truth_pair(*self.evaluate(operand)) for operand in node.operands]
        if node.op == "and":
            true = np.logical_and.reduce([t for t, _ in pairs])
            false = np.logical_or.reduce([f for _, f in pairs])
        else:
            true = np.logical_or.reduce([t for t, _ in pairs])
            false = np.logical_and.reduce([f for _, f in pairs])
        known = true | false
        return true, (None if known.all() else ~known)

    def call(self, node: Call) -> tuple[Any, np.ndarray | None]:
        name = node.function
        evaluated = [self.evaluate(arg) for arg in node.args]
        if name == "is_null":
            mask = evaluated[0][1]
            return (np.zeros(self.n, dtype=bool) if mask is None else mask.copy()), None
        if name == "coalesce":
            values, mask = evaluated[0]
            values = np.broadcast_to(np.asarray(values), (self.n,))
            for more, more_mask in evaluated[1:]:
                if mask is None:
                    break
                values = np.where(mask, more, values)
                mask = None if more_mask is None else mask & more_mask
            return values, mask
        args = [values for values, _ in evaluated]
        mask = _either(*(mask for _, mask in evaluated))
        with np.errstate(all="ignore"):
            if name == "pct_change":
                new, old = args
                zero = np.broadcast_to(np.asarray(old) == 0, (self.n,))
                return (np.subtract(new, old) / old), _either(mask, zero if zero.any() else None)
            if name == "abs":
                return np.abs(args[0]), mask
            if name in ("min", "max"):
                reduce = np.minimum if name == "min" else np.maximum
                values = args[0]
                for more in args[1:]:
                    values = reduce(values, more)
                return values, mask
            if name == "days_between":
                days = np.asarray(args[0], dtype="datetime64[D]") - np.asarray(
                    args[1], dtype="datetime64[D]"
                )
                return days.astype(np.int64), mask
            # round
            values = np.broadcast_to(np.asarray(args[0]), (self.n,))
            if len(args) == 1:
                if values.dtype.kind in "iub":
                    return values, mask
                bad = ~np.isfinite(values)
                return np.rint(values), _either(mask, bad if bad.any() else None)
            return self.round_digits(values, args[1], mask)

    def round_digits(
        self, values: np.ndarray, ndigits: Any, mask: np.ndarray | None
    ) -> tuple[Any, Any]:
        # Python's round(x, n) rounds the exact decimal value; numpy's does
        # not, so this (rare) form goes element by element.
        digits = np.broadcast_to(np.asarray(ndigits), (self.n,)).astype(object)
        skip = np.zeros(self.n, dtype=bool) if mask is None else mask
        out = [
            0 if s else _round_digits(x, d)
            for x, d, s in zip(
                values.astype(object).tolist(), digits.tolist(), skip.tolist(), strict=True
            )
        ]
        return np.asarray(out, dtype=np.float64), mask

    def truth(self, node: Node) -> np.ndarray:
        values, mask = self.evaluate(node)
        true, _ = _truth_pair(values, mask)
        return np.broadcast_to(true, (self.n,))


def _fill_text(values: Any, mask: np.ndarray | None) -> Any:
    if mask is None:
        return values
    return np.where(mask, "", values)


def _truth_pair(values: Any, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=bool)
    if mask is None:
        return values, ~values
    known = ~mask
    return values & known, ~values & known


def evaluate_columns(expression: Expression, columns: Mapping[str, Column], n: int) -> Column:
    """The values of any expression over ``n`` rows of columns, as ``(values, null_mask)``.

    The columnar twin of ``Expression.__call__``, used for derived fields (KPI
    formulas). Constants are broadcast to full columns; the mask is None when
    no row is null.
    """
    values, mask = _Columns(columns, n).evaluate(expression.node)
    if np.ndim(values) == 0:
        values = np.full(n, values, dtype=_EMPTY[expression.type])
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            mask = None
    return np.asarray(values), mask


def compile_columnar(
    conditions: Sequence[Expression],
) -> Callable[[Mapping[str, Column], int], np.ndarray]:
    """Vectorised form of ``compile_matcher`` for a batch of ``n`` rows.

    ``columns`` maps field names to ``(values, null_mask)``: numbers as
    float64 or int64, integers as int64 or float64, text as object arrays of
    str, booleans as bool, dates as datetime64[D]; a None mask means no
    nulls and a missing column is all null. The result is a bool matrix of
    shape ``(n, len(conditions))``, True where the condition is true (null is
    not true), the same answers as the row path with Kleene logic included.
    Integer arithmetic wraps at 64 bits here, where Python's ints do not;
    rule values are far from that.
    """
    _check_conditions(conditions)
    nodes = tuple(condition.node for condition in conditions)

    def run(columns: Mapping[str, Column], n: int) -> np.ndarray:
        batch = _Columns(columns, n)
        out = np.empty((n, len(nodes)), dtype=bool, order="F")
        for index, node in enumerate(nodes):
            out[:, index] = batch.truth(node)
        return out

    return run

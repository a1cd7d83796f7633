"""Static reasoning about conditions, for the checks a pack loader runs on tables.

A UNIQUE table is wrong when two of its rules can match one fact, and a rule is
dead when its condition can never be true. Both questions are answered here
from the checked trees of ``expressions``, before any data is read.

Method. ``not`` is pushed inward (De Morgan, then ``not x < 1`` becomes
``x >= 1``: under Kleene logic a comparison that is false has non-null
operands, so this is exact for "can it be true"), the condition is put in
disjunctive normal form (at most ``MAX_CONJUNCTIONS`` conjunctions, else
``UNKNOWN``), and each conjunction is a list of atoms about single fields:
``field OP constant`` (either way round, chains included), ``field in [...]``,
``field not in [...]``, a boolean field alone or negated, and
``is_null(field)``. Per field, the atoms become an interval (integers and
dates respect whole steps), a set of allowed values, a set of excluded values
and a null requirement.

Any other atom (arithmetic, functions, field against field) is dropped, which
relaxes the condition: if the relaxed conditions cannot both be true, neither
can the originals. A witness is built from the atoms that remain and reported
only after evaluating both expressions on it, so it is a proof; when a dropped
atom makes it fail, the answer is ``UNKNOWN``. NaN is ignored, as in the row
path (adapters turn it into null).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from storeops.engine.expressions import (
    Call,
    Compare,
    Const,
    Expression,
    Field,
    FieldRef,
    Logic,
    Member,
    Node,
    Not,
    children,
)

__all__ = [
    "MAX_CONJUNCTIONS",
    "UNKNOWN",
    "Unknown",
    "literal_comparisons",
    "overlap",
    "satisfiable",
]

MAX_CONJUNCTIONS = 64


class Unknown:
    """The answer "cannot tell", distinct from None ("provably not").

    It refuses to be used as a truth value, so ``if overlap(a, b, fields):``
    cannot silently treat "cannot tell" as "yes".
    """

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN is neither true nor false; compare it with 'is UNKNOWN'")

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()

_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True, slots=True)
class _Atom:
    field: str
    type: str
    op: str  # a comparison, 'in', 'not in', 'null' or 'not null'
    value: Any = None


@dataclass(frozen=True, slots=True)
class _Conjunction:
    # Atoms outside the understood forms are not kept: the conjunction is then
    # weaker than the original, which is what the reasoning above relies on.
    atoms: tuple[_Atom, ...] = ()

    def __add__(self, other: _Conjunction) -> _Conjunction:
        return _Conjunction(self.atoms + other.atoms)


class _TooMany(Exception):
    """The normal form would exceed MAX_CONJUNCTIONS."""


def _dnf(node: Node, positive: bool = True) -> list[_Conjunction]:
    """Conjunctions, any of which being all true makes ``node`` true (or false).

    ``positive=False`` asks when the node is false, which is how ``not`` is
    pushed inward: Kleene logic keeps De Morgan's laws.
    """
    if isinstance(node, Not):
        return _dnf(node.operand, not positive)
    if isinstance(node, Logic):
        parts = [_dnf(operand, positive) for operand in node.operands]
        if (node.op == "and") == positive:
            size = math.prod(len(part) for part in parts)
            if size > MAX_CONJUNCTIONS:
                raise _TooMany
            result = []
            for combination in product(*parts):
                merged = _Conjunction()
                for conjunction in combination:
                    merged = merged + conjunction
                result.append(merged)
            return result
        result = [conjunction for part in parts for conjunction in part]
        if len(result) > MAX_CONJUNCTIONS:
            raise _TooMany
        return result
    if isinstance(node, Const):
        # A null constant is neither true nor false: no conjunction at all.
        holds = node.value is True if positive else node.value is False
        return [_Conjunction()] if holds else []
    atom = _atom(node, positive)
    if atom is None:
        return [_Conjunction()]
    return [_Conjunction((atom,))]


def _atom(node: Node, positive: bool) -> _Atom | None:
    if isinstance(node, FieldRef) and node.type == "boolean":
        return _Atom(node.name, node.type, "==", positive)
    if isinstance(node, Compare):
        op = node.op if positive else _NEGATED[node.op]
        left, right = node.left, node.right
        if isinstance(left, FieldRef) and isinstance(right, Const):
            return _Atom(left.name, left.type, op, right.value)
        if isinstance(left, Const) and isinstance(right, FieldRef):
            return _Atom(right.name, right.type, _MIRRORED[op], left.value)
        return None
    if isinstance(node, Member) and isinstance(node.operand, FieldRef):
        negated = node.negated == positive
        operand = node.operand
        return _Atom(operand.name, operand.type, "not in" if negated else "in", node.values)
    if isinstance(node, Call) and node.function == "is_null" and isinstance(node.args[0], FieldRef):
        arg = node.args[0]
        return _Atom(arg.name, arg.type, "null" if positive else "not null")
    return None


@dataclass(slots=True)
class _Domain:
    """What one conjunction says about one field."""

    type: str
    low: Any = None
    low_open: bool = False
    high: Any = None
    high_open: bool = False
    allowed: set | None = None
    excluded: set = field(default_factory=set)
    null: bool = False
    valued: bool = False  # some atom needs a (non-null) value
    impossible: bool = False

    def add(self, atom: _Atom) -> None:
        op, value = atom.op, atom.value
        if op == "null":
            self.null = True
            return
        self.valued = True
        if op == "not null":
            return
        if isinstance(value, float) and math.isnan(value):
            # Only '!=' is ever true against NaN; a folded constant can be NaN.
            self.impossible = self.impossible or op != "!="
            return
        if isinstance(value, float) and math.isinf(value) and op in ("<", "<=", ">", ">="):
            self.bound_infinite(op, value)
            return
        if op in ("<", "<="):
            self.bound_high(value, op == "<")
        elif op in (">", ">="):
            self.bound_low(value, op == ">")
        elif op == "==":
            self.allow({value})
        elif op == "!=":
            self.excluded.add(value)
        elif op == "in":
            self.allow(set(value))
        else:  # not in
            self.excluded.update(value)

    def bound_infinite(self, op: str, value: float) -> None:
        # x < inf bounds nothing for finite values, x > inf excludes them all
        # (x >= inf only admits inf itself, which no rule value is).
        below = op in ("<", "<=")
        if (value > 0) != below:
            self.impossible = True

    def allow(self, values: set) -> None:
        self.allowed = values if self.allowed is None else self.allowed & values

    def bound_high(self, value: Any, strict: bool) -> None:
        if self.high is None or value < self.high or (value == self.high and strict):
            self.high, self.high_open = value, strict

    def bound_low(self, value: Any, strict: bool) -> None:
        if self.low is None or value > self.low or (value == self.low and strict):
            self.low, self.low_open = value, strict

    def admits(self, value: Any) -> bool:
        if value in self.excluded:
            return False
        if self.type == "integer" and not float(value).is_integer():
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def _solve(atoms: Iterable[_Atom], types: Mapping[str, str]) -> dict | Unknown | None:
    """A fact making all atoms true, None if none can, UNKNOWN if unsure."""
    domains: dict[str, _Domain] = {}
    for atom in atoms:
        domain = domains.get(atom.field)
        if domain is None:
            domain = domains[atom.field] = _Domain(types.get(atom.field, atom.type))
        domain.add(atom)
    witness: dict[str, Any] = {}
    unsure = False
    for name, domain in domains.items():
        value = _pick(domain)
        if value is None:
            return None
        if value is UNKNOWN:
            unsure = True
        else:
            witness[name] = value[0]
    return UNKNOWN if unsure else witness


def _pick(domain: _Domain) -> tuple[Any] | Unknown | None:
    """(value,) for the field, None if impossible, UNKNOWN if unsure."""
    if domain.impossible:
        return None
    if domain.null:
        return None if domain.valued else (None,)
    if domain.allowed is not None:
        for value in sorted(domain.allowed, key=_sort_key):
            if domain.admits(value):
                return (value,)
        return None
    if domain.type == "boolean":
        for value in (True, False):
            if domain.admits(value):
                return (value,)
        return None
    if domain.type == "date":
        return _pick_date(domain)
    if domain.type == "integer":
        return _pick_integer(domain)
    if domain.type == "number":
        return _pick_number(domain)
    return _pick_text(domain)


def _sort_key(value: Any) -> tuple[str, Any]:
    # Sets of one field share a type, except int/float mixes; sort those as
    # numbers so the witness is deterministic.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ("number", value)
    return (type(value).__name__, value)


def _pick_integer(domain: _Domain) -> tuple[int] | None:
    if domain.low is None:
        low = None
    elif domain.low_open:
        low = math.floor(domain.low) + 1
    else:
        low = math.ceil(domain.low)
    if domain.high is None:
        high = None
    elif domain.high_open:
        high = math.ceil(domain.high) - 1
    else:
        high = math.floor(domain.high)
    if low is not None and high is not None and low > high:
        return None
    start = 0
    if low is not None and start < low:
        start = low
    if high is not None and start > high:
        start = high
    # Excluded values are finitely many, so a free one is among the next
    # len(excluded) + 1 integers on either side, unless the range runs out.
    for step in range(len(domain.excluded) + 1):
        for candidate in (start + step, start - step):
            inside = (low is None or candidate >= low) and (high is None or candidate <= high)
            if inside and candidate not in domain.excluded:
                return (candidate,)
    return None


def _pick_date(domain: _Domain) -> tuple[datetime.date] | None:
    as_days = _Domain(
        "integer",
        None if domain.low is None else domain.low.toordinal(),
        domain.low_open,
        None if domain.high is None else domain.high.toordinal(),
        domain.high_open,
        None,
        {value.toordinal() for value in domain.excluded},
    )
    if as_days.low is None and as_days.high is None:
        as_days.low = datetime.date(2000, 1, 1).toordinal()
    # Search among real dates only: ordinal 0 or past 9999-12-31 is no date, and a
    # witness there would wrongly make a satisfiable condition look impossible.
    if as_days.low is None:
        as_days.low, as_days.low_open = datetime.date.min.toordinal(), False
    if as_days.high is None:
        as_days.high, as_days.high_open = datetime.date.max.toordinal(), False
    picked = _pick_integer(as_days)
    if picked is None:
        return None
    try:
        return (datetime.date.fromordinal(picked[0]),)
    except (ValueError, OverflowError):
        return None


def _empty_interval(domain: _Domain) -> bool:
    low, high = domain.low, domain.high
    if low is None or high is None:
        return False
    return low > high or (low == high and (domain.low_open or domain.high_open))


def _pick_number(domain: _Domain) -> tuple[float] | Unknown | None:
    low, high = domain.low, domain.high
    if _empty_interval(domain):
        return None
    for candidate in _number_candidates(domain):
        if domain.admits(candidate):
            return (float(candidate),)
    if low is not None and high is not None and low == high:
        return None  # a single point, and it is excluded
    # Open intervals between neighbouring floats, or very many exclusions.
    return UNKNOWN


def _number_candidates(domain: _Domain) -> Iterator[float]:
    low, high = domain.low, domain.high
    count = len(domain.excluded) + 2
    yield 0.0
    if low is not None and not domain.low_open:
        yield low
    if high is not None and not domain.high_open:
        yield high
    if low is not None and high is not None:
        for k in range(1, count + 1):
            yield low + (high - low) * k / (count + 1)
    elif low is not None:
        for k in range(1, count + 1):
            yield low + k
    elif high is not None:
        for k in range(1, count + 1):
            yield high - k
    else:
        yield from range(1, count + 1)


def _pick_text(domain: _Domain) -> tuple[str] | Unknown | None:
    low, high = domain.low, domain.high
    if _empty_interval(domain):
        return None
    if high is not None and high == "":
        # nothing sorts before the empty string: the domain is {''} at most
        return ("",) if not domain.high_open and domain.admits("") else None
    base = "" if low is None else low
    # base + NUL * k are the strings just above base, in order.
    for k in range(len(domain.excluded) + 2):
        candidate = base + "\0" * k
        if domain.admits(candidate):
            return (candidate,)
    return UNKNOWN


def _types(fields: Mapping[str, Field | str] | Iterable[Field] | None) -> dict[str, str]:
    if fields is None:
        return {}
    if isinstance(fields, Mapping):
        return {
            name: value.type if isinstance(value, Field) else value
            for name, value in fields.items()
        }
    return {item.name: item.type for item in fields}


def _holds(expression: Expression, fact: Mapping[str, Any]) -> bool:
    value = expression(fact)
    return value is not None and bool(value)


def overlap(
    a: Expression, b: Expression, fields: Mapping[str, Field | str] | Iterable[Field] | None
) -> dict | Unknown | None:
    """Can ``a`` and ``b`` both be true for one fact?

    Returns a witness fact (field -> value; fields left out are null) when
    provably yes, None when provably never, ``UNKNOWN`` when it cannot tell.
    ``fields`` are the pack's field declarations (for integer steps); the
    types recorded in the trees are used for fields it does not list.
    """
    types = _types(fields)
    try:
        left, right = _dnf(a.node), _dnf(b.node)
    except _TooMany:
        return UNKNOWN
    unsure = False
    for first, second in product(left, right):
        both = first + second
        result = _solve(both.atoms, types)
        if result is None:
            continue
        if result is not UNKNOWN and _holds(a, result) and _holds(b, result):
            return result
        # The relaxed conditions meet, the originals may not: a dropped atom
        # can fail on this witness, or the solver could not pick a value.
        unsure = True
    return UNKNOWN if unsure else None


def satisfiable(
    e: Expression, fields: Mapping[str, Field | str] | Iterable[Field] | None
) -> bool | None:
    """True if some fact makes ``e`` true, False if none can, None if unsure."""
    types = _types(fields)
    try:
        conjunctions = _dnf(e.node)
    except _TooMany:
        return None
    unsure = False
    for conjunction in conjunctions:
        result = _solve(conjunction.atoms, types)
        if result is None:
            continue
        if result is UNKNOWN or not _holds(e, result):
            unsure = True
            continue
        return True
    return None if unsure else False


def literal_comparisons(expression: Expression) -> Iterator[tuple[str, Any, int]]:
    """(field, literal, offset) for each literal tested for equality with a field.

    Covers ``==``, ``!=``, ``in`` and ``not in``; the pack loader checks these
    literals against a field's enumerated values and points at the literal.
    """
    stack: list[Node] = [expression.node]
    while stack:
        node = stack.pop()
        if isinstance(node, Compare) and node.op in ("==", "!="):
            pair = (node.left, node.right)
            for one, other in (pair, pair[::-1]):
                if (
                    isinstance(one, FieldRef)
                    and isinstance(other, Const)
                    and other.value is not None
                ):
                    yield one.name, other.value, other.offset
        elif isinstance(node, Member) and isinstance(node.operand, FieldRef):
            for item in node.items:
                yield node.operand.name, item.value, item.offset
        stack.extend(reversed(children(node)))

"""Table checks that need the whole table: gaps and shadowed rows.

``analysis.overlap`` answers questions about two conditions; these checks
answer questions about all rows at once:

* **gaps**: input combinations that no row of a single-hit DMN table covers,
  so the decision would be null;
* **shadowed rows**: rows of a FIRST table that can never fire, because for
  every fact they match an earlier row matches too.

Both work by enumeration over representative points. When every condition of
the table compares fields with constants (``age >= 18``, ``tier in ['A']``,
S-FEEL cells), the constants cut each field's domain into finitely many
stretches (each constant, and the open interval between two neighbouring
constants) on which every condition is constant. One value per stretch per
field, crossed over the fields, therefore decides every question exactly.
Tables whose conditions do anything else (arithmetic over fields, functions)
are not checked here; their UNIQUE conflicts are still caught at run time.
Null inputs are left out, as DMN gap analysis does.
"""

from __future__ import annotations

import datetime
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .expressions import (
    Compare,
    Const,
    Field,
    FieldRef,
    Logic,
    Member,
    Node,
    Not,
    children,
    compile_matcher,
)

MAX_POINTS = 50_000
MAX_REPORTED = 3
_OTHER_TEXT = "\u2063other"  # a text equal to no literal a pack can contain in practice


@dataclass(frozen=True)
class Finding:
    """One problem found in a table; ``rule`` is the row index it concerns, if any."""

    message: str
    rule: int | None = None


def check_table(table: Any, fields: Mapping[str, Field],
                field_values: Mapping[str, tuple]) -> list[Finding]:
    """Gaps (single-hit DMN tables) and shadowed rows (FIRST tables)."""
    wants_gaps = bool(table.inputs) and table.hit_policy in ("unique", "any", "priority", "first")
    wants_shadows = table.hit_policy == "first"
    if not (wants_gaps or wants_shadows) or not table.rules:
        return []
    domains = dict(field_values)
    for column in table.inputs:  # a DMN input column's allowed values bound its field
        if isinstance(column.expression.node, FieldRef) and column.values:
            domains[column.expression.node.name] = column.values
    points = _points(table.rules, fields, domains)
    if points is None:
        return []
    names, grid = points
    match = compile_matcher([rule.when for rule in table.rules], first_only=False)
    gaps: list[dict[str, Any]] = []
    seen_alone: set[int] = set()
    seen_shadowed: dict[int, int] = {}
    for combination in grid:
        fact = dict(zip(names, combination, strict=True))
        hits = match(fact)
        if not hits:
            gaps.append(fact)
            continue
        # for FIRST: the row that fires is hits[0]; the others are shadowed here
        seen_alone.add(hits[0])
        for later in hits[1:]:
            seen_shadowed.setdefault(later, hits[0])
    findings: list[Finding] = []
    if wants_gaps and gaps:
        shown = "; ".join(_describe(fact) for fact in gaps[:MAX_REPORTED])
        more = len(gaps) - MAX_REPORTED
        findings.append(Finding(
            f"table '{table.id}' has gaps: no rule matches {shown}"
            + (f" (and {more} more input combinations)" if more > 0 else "")))
    if wants_shadows:
        for index, earlier in sorted(seen_shadowed.items()):
            if index not in seen_alone:
                rule, first = table.rules[index], table.rules[earlier]
                findings.append(Finding(
                    f"rule '{rule.id}' of FIRST table '{table.id}' can never fire: an earlier "
                    f"row matches every fact it matches (e.g. rule '{first.id}')", index))
    return findings


def _describe(fact: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}=" + ("(any other text)" if value == _OTHER_TEXT else repr(value))
                     for name, value in fact.items())


def _points(rules: Iterable[Any], fields: Mapping[str, Field],
            field_values: Mapping[str, tuple]) -> tuple[list[str], Iterable[tuple]] | None:
    """The fields read and the grid of representative facts, or None if not decidable."""
    literals: dict[str, set] = {}
    ordered_text: set[str] = set()
    for rule in rules:
        if not _collect(rule.when.node, literals, ordered_text, fields):
            return None
    if ordered_text:
        return None  # '<' on text: the stretches between strings have no simple witness
    names = sorted(literals)
    axes = []
    for name in names:
        axis = _axis(fields[name].type, literals[name], field_values.get(name, ()))
        if not axis:
            return None
        axes.append(axis)
    if math.prod(len(axis) for axis in axes) > MAX_POINTS:
        return None
    return names, itertools.product(*axes)


def _collect(node: Node, literals: dict[str, set], ordered_text: set[str],
             fields: Mapping[str, Field]) -> bool:
    """Gather field -> constants; False when the condition is not field-vs-constant."""
    if isinstance(node, (Logic, Not)):
        return all(_collect(child, literals, ordered_text, fields) for child in children(node))
    if isinstance(node, Const):
        return True
    if isinstance(node, FieldRef):
        if node.type != "boolean":
            return False
        literals.setdefault(node.name, set())
        return True
    if isinstance(node, Member) and isinstance(node.operand, FieldRef):
        literals.setdefault(node.operand.name, set()).update(node.values)
        return True
    if isinstance(node, Compare):
        left, right = node.left, node.right
        if isinstance(left, Const) and isinstance(right, FieldRef):
            left, right = right, left
        if not (isinstance(left, FieldRef) and isinstance(right, Const)):
            return False
        if right.value is None or left.name not in fields:
            return False
        if node.op not in ("==", "!=") and fields[left.name].type == "text":
            ordered_text.add(left.name)
        literals.setdefault(left.name, set()).add(right.value)
        return True
    return False


def _axis(kind: str, constants: set, enumeration: tuple) -> list[Any]:
    """One representative value per stretch of the field's domain."""
    if kind == "boolean":
        return [True, False]
    if kind == "text":
        if enumeration:
            return list(enumeration)
        return [*sorted(str(c) for c in constants), _OTHER_TEXT]
    points = sorted(constants)
    if kind == "date":
        return _between([p.toordinal() for p in points], integer=True, convert=_from_ordinal)
    return _between(points, integer=kind == "integer")


def _from_ordinal(value: int) -> datetime.date:
    return datetime.date.fromordinal(value)


def _between(points: list, *, integer: bool, convert=None) -> list[Any]:
    if not points:
        values: list[Any] = [0]
    else:
        values = [points[0] - 1]
        for low, high in itertools.pairwise(points):
            values.append(low)
            if integer:
                if high - low > 1:
                    values.append(low + 1)
            else:
                values.append((low + high) / 2)
        values.append(points[-1])
        values.append(points[-1] + 1)
    if integer:
        values = [int(v) for v in values]
    return [convert(v) for v in values] if convert else values

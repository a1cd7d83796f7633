"""Decision tables: DMN hit policies over compiled conditions.

A ``CompiledTable`` wraps one pack table with a single generated matcher (all
its conditions in one Python function, see ``expressions.compile_matcher``)
and, for whole tables of facts, a vectorised matcher. Both paths apply the
hit policy the same way and return the same rows, so a run gives the same
actions and the same trail whichever path evaluated it.

Hit policies (DMN names):

* ``unique``: at most one row may match; two matching rows are an error
  naming both (static checks in ``packs`` catch most overlaps earlier).
* ``first``: the first matching row in table order.
* ``priority``: the matching row with the highest ``priority``; ties go to
  the earlier row.
* ``any``: several rows may match if their outputs are equal; the first is
  returned. Matches with different outputs are an error naming the rows.
* ``collect``: every matching row, ordered by priority (highest first) and
  then by table order.
* ``rule_order``: every matching row, in table order.
* ``output_order``: every matching row, sorted by the order of the output
  values declared in the table's output columns, then by table order.

For ``priority`` the output value order decides when the table declares
output ``values`` (DMN); otherwise the rules' ``priority`` numbers do. Either
way the conditions are handed to the matchers already sorted, so that "first
hit" means "highest priority" and the policies cost nothing per fact.

``CompiledTable.evaluate`` returns the DMN result of a table with output
columns: one value (or a mapping for several outputs) for single-hit
policies, a list for multi-hit ones, one exact decimal for COLLECT with SUM,
MIN, MAX or COUNT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from .errors import EvaluationError
from .expressions import compile_columnar, compile_matcher
from .packs import SINGLE_HIT, Pack, Rule, Table


@dataclass(frozen=True)
class CompiledTable:
    """A pack table ready to evaluate; build once with ``compile_table``."""

    pack: Pack
    table: Table
    order: tuple[int, ...]
    match: Callable[[Mapping[str, Any]], list[int]]
    match_columns: Callable[[Mapping[str, Any], int], np.ndarray]
    signature: tuple[int, ...]

    def decide(self, fact: Mapping[str, Any]) -> list[Rule]:
        """The rows of this table that the hit policy selects for one fact."""
        return [self.table.rules[i] for i in self.decide_indices(fact)]

    def evaluate(self, fact: Mapping[str, Any]) -> Any:
        """The DMN result of this table for one fact (see the module docstring)."""
        return self.result_of(self.decide(fact))

    def result_of(self, rules: Sequence[Rule]) -> Any:
        table = self.table
        outputs = table.outputs

        def value(rule: Rule) -> Any:
            if len(outputs) == 1:
                return rule.result[0] if rule.result else None
            return {column.name: v for column, v in zip(outputs, rule.result, strict=True)}

        if not rules and any(column.default for column in outputs):
            # DMN: with no matching rule, the outputs' default entries are the result
            defaults = [column.default[0] if column.default else None for column in outputs]
            fallback = defaults[0] if len(outputs) == 1 else {
                column.name: v for column, v in zip(outputs, defaults, strict=True)}
            single = table.hit_policy in SINGLE_HIT or table.aggregation
            return fallback if single else [fallback]
        if table.hit_policy in SINGLE_HIT:
            return value(rules[0]) if rules else None
        if table.aggregation == "count":
            return Decimal(len(rules))
        if table.aggregation:
            present = [rule.result[0] for rule in rules if rule.result[0] is not None]
            if not present:
                return None
            if table.aggregation == "sum":
                return sum(present, Decimal(0))
            return min(present) if table.aggregation == "min" else max(present)
        return [value(rule) for rule in rules]

    def decide_indices(self, fact: Mapping[str, Any]) -> list[int]:
        hits = self.match(fact)
        if not hits:
            return hits
        policy = self.table.hit_policy
        if policy in ("unique", "any"):
            if len(hits) > 1 and (
                policy == "unique" or len({self.signature[i] for i in hits}) > 1
            ):
                raise self._conflict(hits, fact, policy.upper())
            return hits[:1]
        # first and priority matchers stop at the first hit; for priority and collect the
        # matcher ran over rows sorted by priority, so map back to table positions.
        return [self.order[i] for i in hits] if self.order else hits

    def decide_columns(self, columns: Mapping[str, Any], n: int,
                       subjects: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised ``decide`` over n facts: (fact index, row index) pairs in output order.

        Pairs are sorted by fact, then by the order ``decide`` would return them.
        """
        mask = self.match_columns(columns, n)
        policy = self.table.hit_policy
        if policy in ("unique", "any") and mask.shape[1] > 1:
            counts = mask.sum(axis=1)
            for fact in np.flatnonzero(counts > 1):
                hits = [int(i) for i in np.flatnonzero(mask[fact])]
                if policy == "unique" or len({self.signature[i] for i in hits}) > 1:
                    subject = None if subjects is None else subjects[fact]
                    raise self._conflict(hits, {self.pack.subject: subject},
                                         policy.upper(), row=int(fact))
        if policy not in SINGLE_HIT:
            facts, rows = np.nonzero(mask)
        else:
            any_hit = mask.any(axis=1)
            facts = np.flatnonzero(any_hit)
            rows = mask[facts].argmax(axis=1)
        if self.order:
            rows = np.asarray(self.order, dtype=np.int64)[rows]
        return facts.astype(np.int64), rows.astype(np.int64)

    def _conflict(self, hits: list[int], fact: Mapping[str, Any], kind: str,
                  row: int | None = None) -> EvaluationError:
        rules = self.table.rules
        ids = [rules[self.order[i] if self.order else i].id for i in hits]
        subject = fact.get(self.pack.subject)
        where = f"{self.pack.subject} {subject!r}" if subject is not None else "a fact"
        if row is not None:
            where += f" (input row {row + 1})"
        what = "match" if kind == "UNIQUE" else "match with different outputs"
        return EvaluationError(
            f"rules {', '.join(repr(i) for i in ids)} of {kind} table '{self.table.id}' "
            f"all {what} {where}",
            self.table.location,
        )


def compile_table(pack: Pack, table: Table) -> CompiledTable:
    """Compile a table's conditions into one row matcher and one columnar matcher.

    For ``priority`` and ``collect`` the conditions are handed to the matchers
    sorted by priority, so that "first hit" means "highest priority" and the
    policies cost nothing extra per fact.
    """
    rules = table.rules
    order = _evaluation_order(table)
    ordered = [rules[i] for i in order] if order else list(rules)
    conditions = [rule.when for rule in ordered]
    first_only = table.hit_policy in ("first", "priority")
    signatures: dict[tuple, int] = {}
    signature = tuple(signatures.setdefault((rule.outputs, rule.result), len(signatures))
                      for rule in ordered)
    return CompiledTable(
        pack=pack,
        table=table,
        order=order,
        match=compile_matcher(conditions, first_only=first_only),
        match_columns=compile_columnar(conditions),
        signature=signature,
    )


def _evaluation_order(table: Table) -> tuple[int, ...]:
    """Row positions in the order the matchers test them; () means table order."""
    rules = table.rules
    ranked = [k for k, column in enumerate(table.outputs) if column.values]
    if table.hit_policy in ("priority", "output_order") and ranked:
        def rank(i: int) -> tuple:
            result = rules[i].result
            return (*(_position(table.outputs[k].values, result[k] if result else None)
                      for k in ranked), i)

        order = tuple(sorted(range(len(rules)), key=rank))
    elif table.hit_policy in ("priority", "collect") and any(r.priority for r in rules):
        order = tuple(sorted(range(len(rules)), key=lambda i: (-rules[i].priority, i)))
    else:
        return ()
    return () if order == tuple(range(len(rules))) else order


def _position(values: tuple, value: Any) -> int:
    """Where a value stands in an output's declared order; undeclared values come last."""
    try:
        return values.index(value)
    except ValueError:
        return len(values)


def compile_pack(pack: Pack) -> list[CompiledTable]:
    return [compile_table(pack, table) for table in pack.tables]


def decide(table: CompiledTable, fact: Mapping[str, Any]) -> list[Rule]:
    """The rows a table selects for one fact (a convenience for library users)."""
    return table.decide(fact)

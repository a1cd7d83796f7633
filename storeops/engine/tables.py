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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EvaluationError
from .expressions import compile_columnar, compile_matcher
from .packs import Pack, Rule, Table


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
        if policy == "collect":
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
    order: tuple[int, ...] = ()
    if table.hit_policy in ("priority", "collect") and any(r.priority for r in rules):
        order = tuple(sorted(range(len(rules)), key=lambda i: (-rules[i].priority, i)))
    ordered = [rules[i] for i in order] if order else list(rules)
    conditions = [rule.when for rule in ordered]
    first_only = table.hit_policy in ("first", "priority")
    outputs: dict[tuple, int] = {}
    signature = tuple(outputs.setdefault(rule.outputs, len(outputs)) for rule in ordered)
    return CompiledTable(
        pack=pack,
        table=table,
        order=order,
        match=compile_matcher(conditions, first_only=first_only),
        match_columns=compile_columnar(conditions),
        signature=signature,
    )


def compile_pack(pack: Pack) -> list[CompiledTable]:
    return [compile_table(pack, table) for table in pack.tables]


def decide(table: CompiledTable, fact: Mapping[str, Any]) -> list[Rule]:
    """The rows a table selects for one fact (a convenience for library users)."""
    return table.decide(fact)

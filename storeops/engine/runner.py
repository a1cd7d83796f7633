"""Run packs over a table of facts: firings, the audit trail, and the action plan.

Two evaluation paths give the same firings in the same order, so the same
actions and the same trail:

* ``row``: one generated matcher call per fact and table (``tables.decide``);
* ``columnar``: each table's conditions as numpy masks over all facts at
  once, with the hit policy applied to the mask matrix.

Every fact is evaluated before the first trail record is written, so a run
that fails on a UNIQUE conflict leaves nothing half-written behind. The trail
then gets one record per firing, in (fact, pack, table, decision) order, with
consecutive ``seq`` numbers; an action id is ``RUN.SEQ.K``, the K-th output
of that firing, which is how ``explain`` finds its way back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from .adapters import FactTable
from .expressions import Field, evaluate_columns
from .packs import Pack, Rule, Table
from .tables import CompiledTable, compile_pack
from .trail import RuleRef, Trail

ENGINES = ("columnar", "row")
ACTION_COLUMNS = ("action_id", "subject", "pack_id", "table_id", "rule_id", "action",
                  "label_zh", "label_en", "params", "input_row")


@dataclass(frozen=True)
class Firings:
    """Which rule fired on which fact, in trail order (parallel integer arrays)."""

    fact: np.ndarray    # index into the fact table
    table: np.ndarray   # index into the compiled tables
    rule: np.ndarray    # index into that table's rules

    def __len__(self) -> int:
        return len(self.fact)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    facts: int
    firings: int
    actions: pd.DataFrame
    decisions: pd.DataFrame


def with_derived(packs: Sequence[Pack], facts: FactTable) -> FactTable:
    """The facts plus one column per KPI formula (in declaration order), computed once.

    Rules read KPIs by name like any field, and the trail records their values;
    a formula that meets a null or a division by zero gives null, as always.
    """
    kpis = [kpi for pack in packs for kpi in pack.derived()]
    if not kpis:
        return facts
    columns = dict(facts.columns)
    fields = dict(facts.fields)
    for kpi in kpis:
        if kpi.id in columns:
            continue  # the same KPI from another pack, or a column the input already has
        columns[kpi.id] = evaluate_columns(kpi.formula, columns, facts.n)
        fields[kpi.id] = Field(kpi.id, kpi.formula.type, kpi.unit, False)
    return FactTable(source=facts.source, n=facts.n, fields=fields, columns=columns)


def compile_packs(packs: Sequence[Pack]) -> list[CompiledTable]:
    """All tables of all packs, in pack order then table order (the trail order)."""
    return [table for pack in packs for table in compile_pack(pack)]


def fire_rows(tables: Sequence[CompiledTable], rows: Sequence[dict[str, Any]]) -> Firings:
    """The row path: one matcher call per fact and table."""
    facts: list[int] = []
    table_ix: list[int] = []
    rules: list[int] = []
    deciders = [table.decide_indices for table in tables]
    for i, fact in enumerate(rows):
        for t, decide in enumerate(deciders):
            for r in decide(fact):
                facts.append(i)
                table_ix.append(t)
                rules.append(r)
    return Firings(np.asarray(facts, dtype=np.int64), np.asarray(table_ix, dtype=np.int64),
                   np.asarray(rules, dtype=np.int64))


def fire_columns(tables: Sequence[CompiledTable], facts: FactTable) -> Firings:
    """The columnar path: masks over all facts, then one stable sort into trail order."""
    parts_fact, parts_table, parts_rule, parts_pos = [], [], [], []
    for t, table in enumerate(tables):
        # subjects only name the fact in a UNIQUE/ANY conflict message
        subjects = facts.column_objects(table.pack.subject)
        fact_ix, rule_ix = table.decide_columns(facts.columns, facts.n, subjects)
        parts_fact.append(fact_ix)
        parts_rule.append(rule_ix)
        parts_table.append(np.full(len(fact_ix), t, dtype=np.int64))
        parts_pos.append(np.arange(len(fact_ix), dtype=np.int64))
    if not parts_fact:
        empty = np.zeros(0, dtype=np.int64)
        return Firings(empty, empty, empty)
    fact = np.concatenate(parts_fact)
    table_ = np.concatenate(parts_table)
    rule = np.concatenate(parts_rule)
    pos = np.concatenate(parts_pos)
    order = np.lexsort((pos, table_, fact))
    return Firings(fact[order], table_[order], rule[order])


def record(firings: Firings, tables: Sequence[CompiledTable], facts: FactTable, trail: Trail,
           *, ts: Callable[[], float] | float | None = None) -> np.ndarray:
    """Record one trail entry per firing; return the seq of each firing.

    This is the cheap part of the trail ("record now, format later"): the
    values each rule read are gathered per rule with array takes and handed
    to the trail in one call; JSON formatting and the SQLite insert happen in
    the trail's flush. ``ts`` is a clock read once (wall-clock runs, default
    ``time.time``) or a fixed number (simulation time).
    """
    keys: list[int] = []
    fields: list[tuple[str, ...]] = []
    offsets: list[int] = []
    formulas = {kpi.id: kpi.formula.fields for table in tables for kpi in table.pack.derived()}
    for table in tables:
        offsets.append(len(keys))
        for rule in table.table.rules:
            ref = rule_ref(table, rule, formulas)
            keys.append(trail.rule(ref))
            fields.append(ref.fields)
    count = len(firings)
    first = trail.next_seq
    if not count:
        return np.zeros(0, dtype=np.int64)
    # one global rule number per firing: table offset + rule index
    slot = np.asarray(offsets, dtype=np.int64)[firings.table] + firings.rule
    subjects = np.empty(count, dtype=object)
    for t, table in enumerate(tables):
        mine = firings.table == t
        if mine.any():
            subjects[mine] = facts.column_objects(table.pack.subject)[firings.fact[mine]]
    # Values are gathered rule by rule (one array take per field read) and scattered back
    # into firing order; a plain list, because numpy would unpack the tuples into rows.
    values: list[tuple] = [()] * count
    order = np.argsort(slot, kind="stable")
    bounds = np.flatnonzero(np.diff(slot[order])) + 1
    for group in np.split(order, bounds):
        rule_fields = fields[slot[group[0]]]
        if not rule_fields:
            continue
        at = firings.fact[group]
        columns = [facts.column_objects(name)[at].tolist() for name in rule_fields]
        for position, value in zip(group.tolist(), zip(*columns, strict=True), strict=True):
            values[position] = value
    clock = time.time if ts is None else ts
    stamp = clock() if callable(clock) else clock
    trail.add_many(stamp, subjects.tolist(), np.asarray(keys, dtype=np.int64)[slot].tolist(),
                   values)
    return np.arange(first, first + count, dtype=np.int64)


def rule_ref(table: CompiledTable, rule: Rule, formulas: dict[str, tuple[str, ...]]) -> RuleRef:
    """What the trail records of a rule: pack version, file and line, the fields it reads
    (each KPI with what its formula reads, see ``formulas``), outputs and labels. Real-data
    runs and simulations build it here, so their trails are alike."""
    pack = table.pack
    label = rule.label
    return RuleRef(
        pack_id=pack.id, pack_version=pack.version, pack_sha256=pack.sha256,
        table_id=table.table.id, rule_id=rule.id,
        # the rule's own file: the pack, or the spreadsheet its table comes from
        source_file=rule.location.file, source_line=rule.location.line,
        fields=_with_sources(rule.when.fields, formulas),
        outputs=_outputs_json(pack, table.table, rule),
        label_en=label.en if label else "", label_zh=label.zh if label else "",
    )


def _with_sources(read: tuple[str, ...], formulas: dict[str, tuple[str, ...]]) -> tuple:
    """The fields a rule read, each KPI followed by what its formula read (transitively)."""
    out: dict[str, None] = {}

    def add(name: str) -> None:
        if name in out:
            return
        out[name] = None
        for source in formulas.get(name, ()):
            add(source)

    for name in read:
        add(name)
    return tuple(out)


def actions_frame(firings: Firings, seqs: np.ndarray, run_id: str,
                  tables: Sequence[CompiledTable], facts: FactTable) -> pd.DataFrame:
    """One row per action (per output of a firing), in trail order."""
    rows: list[tuple] = []
    subjects: dict[str, list] = {}
    for i, t, r, seq in zip(firings.fact.tolist(), firings.table.tolist(),
                            firings.rule.tolist(), seqs.tolist(), strict=True):
        table = tables[t]
        pack = table.pack
        if pack.subject not in subjects:
            subjects[pack.subject] = facts.column_list(pack.subject)
        rule = table.table.rules[r]
        for k, output in enumerate(rule.outputs, 1):
            action = pack.actions.get(output.action)
            params = dict(output.params)
            rows.append((
                f"{run_id}.{seq}.{k}", subjects[pack.subject][i], pack.id, table.table.id,
                rule.id, output.action, action.label.zh if action else "",
                action.label.en if action else "",
                _json(params) if params else "", i + 1,
            ))
    return pd.DataFrame.from_records(rows, columns=list(ACTION_COLUMNS))


DECISION_COLUMNS = ("subject", "input_row", "pack_id", "table_id", "value", "rules", "firings")


def decisions_frame(firings: Firings, seqs: np.ndarray, run_id: str,
                    tables: Sequence[CompiledTable], facts: FactTable) -> pd.DataFrame:
    """The DMN decision of every table with output columns, per fact it fired on.

    ``value`` is the table's result as DMN defines it (one value, a mapping, a
    list, or an aggregate), as JSON; ``rules`` and ``firings`` say which rows
    made it, so each decision leads back to the trail.
    """
    rows: list[tuple] = []
    subjects: dict[str, list] = {}
    current: tuple[int, int] | None = None
    group: list[tuple[int, int]] = []

    def close() -> None:
        if current is None:
            return
        fact, t = current
        table = tables[t]
        if not table.table.outputs:
            return
        pack = table.pack
        if pack.subject not in subjects:
            subjects[pack.subject] = facts.column_list(pack.subject)
        fired = [table.table.rules[r] for r, _ in group]
        value = table.result_of(fired)
        rows.append((subjects[pack.subject][fact], fact + 1, pack.id, table.table.id,
                     _json(_plain_deep(value)), " ".join(rule.id for rule in fired),
                     " ".join(f"{run_id}.{seq}" for _, seq in group)))

    for fact, t, r, seq in zip(firings.fact.tolist(), firings.table.tolist(),
                               firings.rule.tolist(), seqs.tolist(), strict=True):
        if (fact, t) != current:
            close()
            current, group = (fact, t), []
        group.append((r, seq))
    close()
    return pd.DataFrame.from_records(rows, columns=list(DECISION_COLUMNS))


def _plain_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_deep(v) for v in value]
    return _plain(value)


def run(packs: Sequence[Pack], facts: FactTable, trail: Trail, *, engine: str = "columnar",
        tables: Sequence[CompiledTable] | None = None) -> RunResult:
    """Evaluate every pack table on every fact, record the trail, build the action plan."""
    tables = list(tables) if tables is not None else compile_packs(packs)
    facts = with_derived(packs, facts)
    if engine == "row":
        firings = fire_rows(tables, facts.rows())
    elif engine == "columnar":
        firings = fire_columns(tables, facts)
    else:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    seqs = record(firings, tables, facts, trail)
    actions = actions_frame(firings, seqs, trail.run_id, tables, facts)
    decisions = decisions_frame(firings, seqs, trail.run_id, tables, facts)
    return RunResult(trail.run_id, facts.n, len(firings), actions, decisions)


def _outputs_json(pack: Pack, table: Table, rule: Rule) -> str:
    """The rule's outputs with the action labels, so the trail explains itself."""
    items = []
    for output in rule.outputs:
        item = output.as_json()
        action = pack.actions.get(output.action)
        if action is not None:
            item["label"] = {"zh": action.label.zh, "en": action.label.en}
        items.append(item)
    if rule.result:
        pairs = zip(table.outputs, rule.result, strict=True)
        items.append({"result": {column.name: _plain(value) for column, value in pairs}})
    return _json(items)


def _plain(value: Any) -> Any:
    """A result value as JSON holds it (decimals as numbers, dates as ISO text)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)

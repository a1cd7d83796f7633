"""Issue 4 benchmark: the core's 40 rules as an S-FEEL decision table.

The same 40 store-KPI rules (benchmarks/store_rules.py) are written three ways
and evaluated on the same 100,000 facts, hit policy COLLECT:

* a pack table in the storeops expression language (``when:``), the reference;
* a DMN-style pack table: one input column per distinct term, S-FEEL cells;
* the same unary-test table in zen-engine (GoRules), evaluated in batches.

Rules whose condition ORs different terms cannot be one S-FEEL row; as DMN
users do, they keep a ``when:`` beside their cells. Every variant's answers are
checked against hand-written Python first. Run:
``python benchmarks/bench_sfeel.py [--facts N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_rules import FIELDS, best_of, firings_to_lists, make_facts, write_pack
from store_rules import RULES, collect_by_hand

from storeops.engine import adapters, runner
from storeops.engine.packs import load_pack

_LITERAL = re.compile(r"^(-?[0-9.]+|'[^']*'|\[.*\])$")
_ATOM = re.compile(r"^(?P<term>.+?) (?P<op><=|>=|==|!=|<|>|in) (?P<value>.+)$")


def split_rule(text: str) -> dict[str, list[tuple[str, str]]] | None:
    """term -> [(op, literal)] for an AND of comparisons with literals, else None."""
    if " or " in text:
        return None
    atoms: dict[str, list[tuple[str, str]]] = {}
    for part in text.split(" and "):
        found = _ATOM.match(part.strip())
        assert found, part
        if not _LITERAL.match(found["value"]):
            return None  # compares two terms: not a unary test
        atoms.setdefault(found["term"], []).append((found["op"], found["value"]))
    return atoms


def cell(tests: list[tuple[str, str]], dialect: str) -> str:
    """One S-FEEL cell for the comparisons of one term (zen's dialect where it differs)."""
    if len(tests) == 2:  # 'x > a and x < b' -> an open interval
        (op1, low), (op2, high) = sorted(tests, key=lambda t: t[0] != ">")
        assert (op1, op2) == (">", "<")
        return f"({low}..{high})"
    ((op, value),) = tests
    if op == "in":
        return ", ".join(f'"{v}"' for v in re.findall(r"'([^']*)'", value))
    literal = value.replace("'", '"')
    if op == "==":
        return literal
    if op == "!=":
        return f"!= {literal}" if dialect == "zen" else f"not({literal})"
    return f"{op} {literal}"


def tables(dialect: str):
    """(input terms, rows) where a row is (rule id, cells, extra when or None)."""
    split = [(rule_id, split_rule(text), text) for rule_id, text in RULES]
    # columns in order of first use, as a designer lays them out
    terms = list(dict.fromkeys(term for _, atoms, _ in split if atoms for term in atoms))
    rows = []
    for rule_id, atoms, text in split:
        if atoms is None:
            rows.append((rule_id, ["-"] * len(terms), text))
        else:
            rows.append((rule_id, [cell(atoms[t], dialect) if t in atoms else "-"
                                   for t in terms], None))
    return terms, rows


def write_sfeel_pack(folder: Path) -> Path:
    terms, rows = tables("sfeel")
    pack = {
        "pack": {"id": "bench_sfeel", "version": "1", "title": {"zh": "基准", "en": "benchmark"},
                 "source": {"document": "benchmarks/store_rules.py"}, "subject": "store"},
        "fields": [{"name": name, "type": kind} for name, kind in FIELDS.items()],
        "tables": [{
            "id": "store_checks", "hit_policy": "collect",
            "inputs": [{"label": term, "expression": term} for term in terms],
            "rules": [{"id": rule_id, "cells": cells, **({"when": when} if when else {}),
                       "then": [rule_id.upper()]} for rule_id, cells, when in rows],
        }],
    }
    path = folder / "bench_sfeel.yaml"
    path.write_text(yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def zen_decision():
    import zen

    terms, rows = tables("zen")
    inputs = [{"id": f"i{k}", "name": term, "field": term} for k, term in enumerate(terms)]
    inputs.append({"id": "when", "name": "condition"})
    zen_rows = []
    for index, (_, cells, when) in enumerate(rows):
        row = {"_id": f"r{index}", "rule": str(index), "when": when or ""}
        row.update({f"i{k}": ("" if c == "-" else c) for k, c in enumerate(cells)})
        zen_rows.append(row)
    content = json.dumps({
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {"id": "table", "type": "decisionTableNode", "name": "store_checks",
             "position": {"x": 1, "y": 0},
             "content": {"hitPolicy": "collect", "inputs": inputs,
                         "outputs": [{"id": "rule", "name": "rule", "field": "rule"}],
                         "rules": zen_rows}},
            {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 2, "y": 0}},
        ],
        "edges": [{"id": "e1", "sourceId": "in", "targetId": "table", "type": "edge"},
                  {"id": "e2", "sourceId": "table", "targetId": "out", "type": "edge"}],
    })
    return zen.ZenEngine({"loader": lambda key: content})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slice", type=int, default=10_000, help="facts for zen-engine")
    args = parser.parse_args()
    frame = make_facts(args.facts)
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
               for r in frame.to_dict("records")]
    expected = [collect_by_hand(f) for f in records]
    folder = Path(tempfile.mkdtemp(prefix="storeops-sfeel-"))
    results = []
    for name, path in (("expression language", write_pack(folder, "collect")),
                       ("S-FEEL cells", write_sfeel_pack(folder))):
        pack = load_pack(path)
        facts = adapters.facts_from_dataframe(frame, pack.fields, pack.field_values)
        tables_ = runner.compile_packs([pack])
        decide = tables_[0].decide_indices
        t_row, got = best_of(args.repeat, lambda decide=decide: [decide(f) for f in records])
        assert got == expected, f"{name}: row path disagrees with hand-written Python"
        t_col, firings = best_of(args.repeat,
                                 lambda t=tables_, f=facts: runner.fire_columns(t, f))
        assert firings_to_lists(firings, args.facts) == expected, f"{name}: columnar disagrees"
        results.append((f"storeops {name}, row", args.facts, t_row))
        results.append((f"storeops {name}, columnar", args.facts, t_col))
    try:
        engine = zen_decision()
        part = records[: args.slice]

        def zen_batches():
            out = []
            for start in range(0, len(part), 1000):
                answers = engine.evaluate_batch(
                    [{"key": "bench", "context": f} for f in part[start:start + 1000]])
                out.extend([int(r["rule"]) for r in a["data"]["result"]] for a in answers)
            return out

        t_zen, got = best_of(1, zen_batches)
        assert got == expected[: args.slice], "zen-engine disagrees with hand-written Python"
        results.append(("zen-engine unary table, batches of 1,000", len(part), t_zen))
    except ImportError:
        print("zen-engine not installed: skipped")

    base = {kind: args.facts / t for name, n, t in results
            for kind in ("row", "columnar") if name == f"storeops expression language, {kind}"}
    print(f"{args.facts:,} facts x {len(RULES)} rules, hit policy collect\n")
    print(f"{'variant':<44} {'facts':>8} {'facts/s':>12} {'x expression':>13}")
    for name, n, t in results:
        kind = "columnar" if name.endswith("columnar") else "row"
        speed = n / t
        print(f"{name:<44} {n:>8,} {speed:>12,.0f} {base[kind] / speed:>13.2f}")
    print("\ntargets: S-FEEL within 1.2x of the expression language; faster than zen batches")


if __name__ == "__main__":
    main()

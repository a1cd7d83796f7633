"""Answer an auditor's questions from a trail: why was this action planned?

``explain_action`` follows an action id (``RUN.SEQ.K``, as written in
``actions.csv``) back to its trail record: the rule, its file and line, the
pack version and hash, the input values the rule read and its outputs.
``explain_subject`` lists every firing for one subject. ``trace`` filters and
exports records as CSV or JSON Lines. The functions return values; the CLI
formats them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import InputError, TrailError
from .trail import read_trail

TRAIL_COLUMNS = ("run_id", "seq", "ts", "subject", "pack_id", "pack_version", "pack_sha256",
                 "table_id", "rule_id", "rule_label", "source_file", "source_line", "inputs",
                 "outputs")
_ACTION_ID = re.compile(r"^(?P<run>R\d+)\.(?P<seq>\d+)(?:\.(?P<k>\d+))?$")


@dataclass(frozen=True)
class Explanation:
    action_id: str
    record: dict[str, Any]
    output: dict[str, Any] | None   # the one output the action id names, if it names one


def explain_action(trail_path: str, action_id: str) -> Explanation:
    match = _ACTION_ID.match(action_id.strip())
    if not match:
        raise InputError(f"'{action_id}' is not an action id (expected RUN.SEQ.K, e.g. R1.42.1)")
    run_id, seq = match["run"], int(match["seq"])
    records = list(read_trail(trail_path, run_id=run_id, seq=seq))
    if not records:
        raise TrailError(f"{trail_path}: no record for action {action_id} "
                         f"(run {run_id} has no firing {seq})")
    record = records[0]
    output = None
    if match["k"] is not None:
        outputs = json.loads(record["outputs"] or "[]")
        if isinstance(outputs, dict):  # a workflow record: one move or guard decision
            outputs = [outputs]
        k = int(match["k"])
        if not 1 <= k <= len(outputs):
            raise TrailError(f"{trail_path}: firing {run_id}.{seq} has {len(outputs)} "
                             f"output(s), not {k}")
        output = outputs[k - 1]
    return Explanation(action_id, record, output)


def explain_subject(trail_path: str, subject: str, run_id: str | None = None) -> list[dict]:
    records = list(read_trail(trail_path, subject=subject, run_id=run_id))
    if not records:
        raise TrailError(f"{trail_path}: no firing for subject '{subject}'")
    return records


def format_record(record: dict[str, Any], output: dict[str, Any] | None = None) -> str:
    """A short, readable account of one firing."""
    inputs = json.loads(record["inputs"] or "{}")
    outputs = json.loads(record["outputs"] or "[]")
    if isinstance(outputs, dict):  # a workflow record: one move or guard decision
        outputs = [outputs]
    if isinstance(outputs, dict):  # a workflow record: one move or guard decision
        outputs = [outputs]
    shown = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in inputs.items())
    actions = ", ".join(_output_text(o) for o in outputs)
    label = f" ({record['rule_label']})" if record.get("rule_label") else ""
    lines = [
        f"firing   {record['run_id']}.{record['seq']} at {record['ts']}",
        f"subject  {record['subject']}",
        f"rule     {record['rule_id']}{label} in table {record['table_id']}",
        f"source   {record['source_file']}:{record['source_line']}",
        f"pack     {record['pack_id']} {record['pack_version']} "
        f"(sha256 {str(record['pack_sha256'])[:12]})",
        f"inputs   {shown or '(none)'}",
        f"outputs  {actions}",
    ]
    if output is not None:
        lines.insert(0, f"action   {_output_text(output)}")
    return "\n".join(lines)


def _output_text(output: dict[str, Any]) -> str:
    if "event" in output:  # workflow records: a transition taken, or a guard decision
        text = f"{output['event']} {output.get('from')} -> {output.get('to')}"
        if "guard" in output:
            guard, taken = json.dumps(output["guard"]), json.dumps(output.get("taken"))
            text += f" (guard {guard}, taken {taken})"
        if output.get("passed"):
            text += f" (passed over {', '.join(output['passed'])}: not true on these inputs)"
        return text
    if "action" not in output and "result" not in output:
        return json.dumps(output, ensure_ascii=False, sort_keys=True)
    if "result" in output:
        return ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}"
                         for k, v in output["result"].items())
    text = str(output["action"])
    label = output.get("label")
    if label:
        text += f" ({label['zh']} / {label['en']})"
    params = output.get("params")
    if params:
        text += f" {json.dumps(params, ensure_ascii=False, sort_keys=True)}"
    return text


def trace(trail_path: str, *, subject: str | None = None, rule_id: str | None = None,
          run_id: str | None = None) -> Iterator[dict[str, Any]]:
    """The records of a subject, a rule or a run, in run and seq order.

    A workflow guard decides twice: when its transition is taken, and when a later
    transition is taken past it under ``choice: first`` (the move's outputs name it in
    ``passed``). Both are the guard's decisions, so both are traced for its rule id."""
    if rule_id is None:
        return read_trail(trail_path, subject=subject, run_id=run_id)
    records = read_trail(trail_path, subject=subject, run_id=run_id)
    quoted = json.dumps(rule_id, ensure_ascii=False)
    return (r for r in records if r["rule_id"] == rule_id or _passed_over(r, quoted, rule_id))


def _passed_over(record: dict[str, Any], quoted: str, rule_id: str) -> bool:
    outputs = record["outputs"] or ""
    if '"passed"' not in outputs or quoted not in outputs:  # most records: no parsing
        return False
    parsed = json.loads(outputs)
    return isinstance(parsed, dict) and rule_id in parsed.get("passed", ())


def export(records: Iterable[dict[str, Any]], fmt: str, stream: io.TextIOBase) -> int:
    """Write records as CSV (with a header) or JSON Lines; return how many."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(TRAIL_COLUMNS)
        for record in records:
            writer.writerow([record.get(c) for c in TRAIL_COLUMNS])
            count += 1
    else:
        for record in records:
            stream.write(json.dumps({c: record.get(c) for c in TRAIL_COLUMNS},
                                    ensure_ascii=False) + "\n")
            count += 1
    return count

"""The library entry points: evaluate packs on facts from anywhere, run files.

``evaluate(packs, facts)`` takes facts as an iterable of dicts, a pandas
DataFrame, or a CSV/Parquet path, and returns the action plan (optionally
recording a trail). ``run_files`` is what ``storeops run`` does: load and
validate the packs and the mapping, read and type the input, evaluate every
fact, and only then open the trail and write outputs. Bad input therefore
fails before anything is written, and outputs appear atomically.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import adapters, packs, runner
from .errors import InputError, Location
from .files import atomic_path, output_dir
from .packs import Pack
from .progress import Progress, silent
from .trail import Trail, open_trail


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    facts: int
    firings: int
    actions: pd.DataFrame
    files: tuple[str, ...]
    decisions: pd.DataFrame
    # Lines a domain pipeline wants on the terminal after the counts (its summary table).
    report: tuple[str, ...] = ()


def as_fact_table(packs: Sequence[Pack], facts: Any,
                  mapping: adapters.ColumnMapping | None = None) -> adapters.FactTable:
    """Type facts given as a FactTable, DataFrame, CSV/Parquet path or iterable of dicts."""
    if isinstance(facts, adapters.FactTable):
        return facts
    fields, values = adapters.merge_fields(packs)
    if isinstance(facts, pd.DataFrame):
        return adapters.facts_from_dataframe(facts, fields, values, mapping)
    if isinstance(facts, (str, os.PathLike)):
        return adapters.read_facts(facts, fields, values, mapping)
    if isinstance(facts, Mapping):
        facts = [facts]
    return adapters.facts_from_records(facts, fields, values)


def evaluate(packs: Pack | Sequence[Pack], facts: Any, *, trail: Trail | None = None,
             engine: str = "columnar") -> runner.RunResult:
    """Run every table of the packs on the facts; one action row per planned action.

    Without a trail the firings are numbered as if recorded (``R1.seq.k``),
    so action ids look the same whether or not a trail is kept.
    """
    pack_list = [packs] if isinstance(packs, Pack) else list(packs)
    table = as_fact_table(pack_list, facts)
    if trail is not None:
        return runner.run(pack_list, table, trail, engine=engine)
    with open_trail(None) as sink:
        return runner.run(pack_list, table, sink, engine=engine)


def run_files(pack_paths: Sequence[str | os.PathLike], input_path: str | os.PathLike,
              out_dir: str | os.PathLike, *, mapping: str | os.PathLike | None = None,
              trail: str | os.PathLike | None = None, engine: str = "columnar",
              command: str = "", progress: Progress = silent,
              bad_rows: str = "stop") -> RunSummary:
    """What ``storeops run`` does; a pack with a domain section runs that domain's pipeline.

    ``bad_rows``: "stop" refuses input with a bad row; "skip" leaves such rows out, runs on
    the rest and lists every one in DIR/bad_rows.csv (file, row, column, problem).
    """
    loaded = packs.load_packs(pack_paths)
    pipeline = _pipeline(loaded)
    if pipeline is not None:
        options = {}
        if "bad_rows" in inspect.signature(pipeline.run_files).parameters:
            options["bad_rows"] = bad_rows
        return pipeline.run_files(loaded, input_path, out_dir, mapping=mapping, trail=trail,
                                  engine=engine, command=command, progress=progress, **options)
    fields, values = adapters.merge_fields(loaded)
    column_mapping = adapters.load_mapping(mapping) if mapping else None
    facts = runner.with_derived(loaded, adapters.read_facts(input_path, fields, values,
                                                            column_mapping,
                                                            skip_bad=bad_rows == "skip"))
    folder = output_dir(out_dir)
    tables = runner.compile_packs(loaded)
    if engine == "row":
        firings = runner.fire_rows(tables, facts.rows())
    else:
        firings = runner.fire_columns(tables, facts)
    meta = {
        "engine": engine,
        "input": os.fspath(input_path),
        "packs": [{"id": p.id, "version": p.version, "sha256": p.sha256, "path": p.path}
                  for p in loaded],
    }
    written: list[str] = []
    with open_trail(trail, command=command, clock="wall", meta=meta) as sink:
        seqs = runner.record(firings, tables, facts, sink)
        actions = runner.actions_frame(firings, seqs, sink.run_id, tables, facts)
        decisions = runner.decisions_frame(firings, seqs, sink.run_id, tables, facts)
        run_id = sink.run_id
    csv_path = folder / "actions.csv"
    with atomic_path(csv_path) as temp:
        actions.to_csv(temp, index=False, lineterminator="\n")
    written.append(str(csv_path))
    parquet_path = folder / "actions.parquet"
    with atomic_path(parquet_path) as temp:
        actions.to_parquet(temp, index=False)
    written.append(str(parquet_path))
    if any(table.table.outputs for table in tables):
        decisions_path = folder / "decisions.csv"
        with atomic_path(decisions_path) as temp:
            decisions.to_csv(temp, index=False, lineterminator="\n")
        written.append(str(decisions_path))
    if facts.skipped:
        written.append(write_bad_rows(folder / "bad_rows.csv", facts.skipped))
    if trail is not None:
        written.append(os.fspath(trail))
    report = (f"left out {len(facts.skipped):,} bad cells' rows (see bad_rows.csv)",) \
        if facts.skipped else ()
    return RunSummary(run_id, facts.n, len(firings), actions, tuple(written), decisions, report)


def write_bad_rows(path: str | os.PathLike, problems: Sequence[Exception]) -> str:
    """The rows a --bad-rows skip run left out: file, row, column and the problem."""
    rows = []
    for problem in problems:
        where = getattr(problem, "location", None)
        rows.append({"file": where.file if where else "", "row": where.line if where else "",
                     "column": where.col if where else "",
                     "problem": getattr(problem, "message", str(problem))})
    with atomic_path(path) as temp:
        pd.DataFrame(rows, columns=["file", "row", "column", "problem"]).to_csv(
            temp, index=False, lineterminator="\n")
    return os.fspath(path)


def _pipeline(loaded: Sequence[Pack]):
    """The module of the one domain section among the packs that has a ``run_files``."""
    found = {key: pack for pack in loaded for key in pack.sections
             if hasattr(importlib.import_module(packs.SECTIONS[key]), "run_files")}
    if len(found) > 1:
        pack = list(found.values())[1]
        raise InputError(f"packs with the sections {', '.join(sorted(found))} cannot run "
                         "together; run them one at a time", Location(pack.path, 1, 1))
    if not found:
        return None
    return importlib.import_module(packs.SECTIONS[next(iter(found))])


def export_table(pack_path: str | os.PathLike, table_id: str,
                 output: str | os.PathLike) -> None:
    """Write one DMN-style table of a pack to a spreadsheet (.xlsx or .csv)."""
    from . import sheets
    from .errors import did_you_mean

    pack = packs.load_pack(pack_path)  # refuse an invalid pack before writing anything
    raw = packs.pack_document(pack_path).data
    items = {item["id"]: item for item in raw["tables"]}
    if table_id not in items:
        raise InputError(f"no table '{table_id}' in pack '{pack.id}'",
                         Location(pack.path, 1, 1), did_you_mean(table_id, items))
    item = items[table_id]
    if "sheet" in item:
        folder = os.path.dirname(os.fspath(pack_path))
        spec = item["sheet"]
        item = {**sheets.read_table(os.path.join(folder, spec["file"]), sheet=spec.get("sheet"),
                                    table_id=table_id).data, "id": table_id}
    if "inputs" not in item:
        table = next(t for t in pack.tables if t.id == table_id)
        raise InputError(f"table '{table_id}' is written with 'when' conditions; only tables "
                         "with input and output columns export to spreadsheets", table.location)
    sheets.write_table(item, output)

"""The storeops command line: a thin click layer over ``storeops.engine``.

Each command parses its options, calls one engine function and formats the
result. Errors the user can fix (``StoreopsError``) are caught in one place,
``StoreopsGroup.invoke``: one line per problem on stderr, exit code 2, no
traceback. Anything else is a bug in storeops: one line and exit code 1,
with the traceback only when STOREOPS_DEBUG is set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .engine.errors import ErrorList, InputError, Location, StoreopsError


class StoreopsGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StoreopsError as exc:
            for line in str(exc).splitlines():
                click.echo(line, err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            # click handles these itself (a closed pipe, as in `storeops trace | head`, exits
            # quietly), so they must not be reported as internal errors.
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("STOREOPS_DEBUG"):
                raise
            click.echo(f"storeops: internal error: {type(exc).__name__}: {exc} "
                       "(set STOREOPS_DEBUG=1 for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=StoreopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="storeops")
def cli() -> None:
    """Rule-driven workflows and simulation for regional retail operations."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check rule packs (files or folders) and mapping files.

    Prints one line per valid file; every problem as FILE:LINE:COL: message on
    stderr, all of them at once, and exits with code 2. Table checks that are
    worth a look but not errors (gaps in a DMN table, rows a FIRST table
    shadows) print as FILE:LINE:COL: warning: message and keep exit code 0.
    """
    from .engine import packs, yamlsafe
    from .engine.files import display_path

    files = packs.find_packs(paths)
    if not files:
        raise InputError("no YAML files found", Location(paths[0], 1, 1))
    errors: list[StoreopsError] = []
    for file in files:
        try:
            kind = _yaml_kind(file)
            if kind != "pack":
                _validate_other(kind, file)
                click.echo(f"{display_path(file)}: ok ({kind})")
                continue
            pack = packs.load_pack(file)
            rules = sum(len(t.rules) for t in pack.tables)
            click.echo(f"{pack.path}: ok ({pack.id} {pack.version}, {len(pack.tables)} "
                       f"table(s), {rules} rule(s))")
            for warning in pack.warnings:
                click.echo(f"{warning.location}: warning: {warning.message}", err=True)
        except ErrorList as exc:
            errors.extend(exc.errors)
        except (StoreopsError, yamlsafe.YamlError) as exc:
            errors.append(exc)
    if errors:
        raise ErrorList(errors)


# The first key of a YAML file says what it is; everything else is read as a pack.
_KINDS = {"mapping": "mapping", "replay": "replay mapping", "customers": "customer mapping",
          "team": "team", "scenario": "scenario"}


def _validate_other(kind: str, file: Path) -> None:
    """Load a mapping, team or scenario file the way the command that uses it does."""
    if kind == "mapping":
        from .engine import adapters

        adapters.load_mapping(file)
    elif kind == "replay mapping":
        from .engine import replay as replay_module

        replay_module.load_mapping(file)
    elif kind == "customer mapping":
        from .engine import customer_base

        customer_base.load_mapping(file)
    elif kind == "team":
        from .engine import planning

        planning.load_team(file)
    elif kind == "scenario":
        from .engine import scenario

        scenario.load_scenario(file)


def _yaml_kind(path: Path) -> str:
    """What a YAML file is, by its first key (see _KINDS); packs start with 'pack:'."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                stripped = line.strip()
                if stripped and not stripped.startswith("#"):
                    key = stripped.split(":", 1)[0]
                    return _KINDS.get(key, "pack") if line[:1] not in " \t-" else "pack"
    except OSError:
        pass
    return "pack"


@cli.command()
@click.argument("kind", type=click.Choice(["pack", "mapping"]))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def schema(kind: str, output: str | None) -> None:
    """Print the JSON Schema of packs or mapping files (for editors and CI)."""
    from .engine import adapters, packs

    data = packs.pack_schema() if kind == "pack" else adapters.mapping_schema()
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output:
        from .engine.files import atomic_path

        with atomic_path(output) as temp:
            temp.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.option("--pack", "pack_paths", multiple=True, required=True, type=click.Path(),
              help="A rule pack (repeat for several).")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="Facts: CSV (optionally .gz) or Parquet.")
@click.option("--mapping", "mapping_path", type=click.Path(),
              help="Column mapping file for the input.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (actions.csv, actions.parquet, trail.sqlite).")
@click.option("--trail", "trail_path", type=click.Path(dir_okay=False),
              help="Trail file: .sqlite (default DIR/trail.sqlite) or .jsonl.")
@click.option("--no-trail", is_flag=True, help="Do not record a trail.")
@click.option("--engine", type=click.Choice(["columnar", "row"]), default="columnar",
              show_default=True, help="Evaluate whole columns at once, or fact by fact.")
@click.option("--bad-rows", type=click.Choice(["stop", "skip"]), default="stop",
              show_default=True,
              help="stop: refuse input with a bad row; skip: leave bad rows out and list them "
                   "in DIR/bad_rows.csv.")
def run(pack_paths, input_path, mapping_path, out_dir, trail_path, no_trail, engine,
        bad_rows) -> None:
    """Run packs over a table of facts and write the action plan with its trail.

    Writes DIR/actions.csv and actions.parquet (one row per planned action),
    DIR/decisions.csv when a table has DMN output columns (its decision per
    fact), and the trail (DIR/trail.sqlite unless --trail says otherwise).
    """
    from .engine import api
    from .engine.progress import TerminalProgress

    progress = TerminalProgress()
    try:
        result = api.run_files(
            pack_paths, input_path, out_dir, mapping=mapping_path,
            trail=None if no_trail else (trail_path or str(Path(out_dir) / "trail.sqlite")),
            engine=engine, command=" ".join(["storeops", *sys.argv[1:]]), progress=progress,
            bad_rows=bad_rows,
        )
    finally:
        progress.close()
    click.echo(f"run {result.run_id}: {result.facts:,} facts, {result.firings:,} firings, "
               f"{len(result.actions):,} actions")
    if len(result.actions):
        counts = result.actions.groupby(["action", "label_en"]).size()
        counts = counts.sort_values(ascending=False).head(10)
        width = max(12, *(len(str(action)) for action, _ in counts.index))
        for (action, label), count in counts.items():
            click.echo(f"  {action:<{width}} {count:>8,}  {label}")
    for line in result.report:
        click.echo(line)
    for name in result.files:
        click.echo(f"wrote {name}")


@cli.command()
@click.option("--trail", "trail_path", required=True, type=click.Path(dir_okay=False),
              help="The trail file (SQLite or JSON Lines).")
@click.option("--subject", help="Explain every firing for this subject instead.")
@click.option("--run", "run_id", help="Only this run (with --subject).")
@click.argument("action_id", required=False)
def explain(trail_path, subject, run_id, action_id) -> None:
    """Say why an action was planned: rule, file and line, pack version, inputs."""
    from .engine import audit

    _need_file(trail_path)
    if bool(subject) == bool(action_id):
        raise click.UsageError("give an ACTION_ID or --subject, not both")
    if action_id:
        found = audit.explain_action(trail_path, action_id)
        click.echo(audit.format_record(found.record, found.output))
        return
    for i, record in enumerate(audit.explain_subject(trail_path, subject, run_id)):
        if i:
            click.echo("")
        click.echo(audit.format_record(record))


@cli.command()
@click.option("--trail", "trail_path", required=True, type=click.Path(dir_okay=False))
@click.option("--subject", help="Only this subject.")
@click.option("--rule", "rule_id", help="Only this rule id.")
@click.option("--run", "run_id", help="Only this run.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def trace(trail_path, subject, rule_id, run_id, fmt, output) -> None:
    """Filter the trail and export it as CSV or JSON Lines."""
    from .engine import audit

    _need_file(trail_path)
    records = audit.trace(trail_path, subject=subject, rule_id=rule_id, run_id=run_id)
    if output:
        from .engine.files import atomic_path

        with atomic_path(output) as temp, open(temp, "w", encoding="utf-8", newline="") as out:
            count = audit.export(records, fmt, out)
        click.echo(f"wrote {count:,} records to {output}", err=True)
    else:
        audit.export(records, fmt, sys.stdout)


@cli.group()
def dmn() -> None:
    """Import DMN decision tables into packs, and export packs as DMN."""


@dmn.command("import")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The pack to write (YAML).")
def dmn_import(model: str, output: str) -> None:
    """Turn the decision tables of a DMN 1.3-1.5 model into a pack.

    FEEL beyond S-FEEL unary tests is refused with the element's id and line,
    never guessed. The pack is validated before it is written.
    """
    from .engine import dmn as dmn_module
    from .engine.packs import load_pack_data

    _need_file(model)
    data = dmn_module.import_dmn(model)
    pack = load_pack_data(data, display=output)
    dmn_module.write_pack_yaml(data, output)
    rules = sum(len(t.rules) for t in pack.tables)
    click.echo(f"wrote {output}: {len(pack.tables)} table(s), {rules} rule(s)")


@dmn.command("export")
@click.argument("pack_path", metavar="PACK", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The DMN model to write.")
@click.option("--dmn-version", type=click.Choice(["1.3", "1.4", "1.5"]), default="1.3",
              show_default=True,
              help="DMN version to write; 1.3 opens in every common modeler (Camunda, dmn-js).")
def dmn_export(pack_path: str, output: str, dmn_version: str) -> None:
    """Write a pack's DMN-style tables as a DMN model a modeler opens."""
    from .engine import dmn as dmn_module
    from .engine.packs import load_pack

    load_pack(pack_path)  # refuse an invalid pack before writing anything
    dmn_module.export_dmn(pack_path, output, version=dmn_version)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False))
def tck(paths: tuple[str, ...]) -> None:
    """Run DMN TCK cases (model + test XML per folder) under the given folders.

    Prints one line per test case and a last line 'N passed, M failed'; exits 1
    when any case fails.
    """
    from .engine import tck as tck_module

    for path in paths:
        if not os.path.isdir(path):
            raise InputError("no such folder", Location(path, 1, 1))
    results = []
    for result in tck_module.run_tck(paths):
        results.append(result)
        click.echo(tck_module.format_result(result))
    click.echo(tck_module.summary(results))
    if not results or not all(r.passed for r in results):
        sys.exit(1)


@cli.group()
def table() -> None:
    """Work with single decision tables (spreadsheets)."""


@table.command("export")
@click.argument("pack_path", metavar="PACK", type=click.Path(dir_okay=False))
@click.argument("table_id", metavar="TABLE")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .xlsx (or .csv) file to write.")
def table_export(pack_path: str, table_id: str, output: str) -> None:
    """Write one DMN-style table of a pack to an .xlsx sheet (or CSV) for Excel users."""
    from .engine import api

    api.export_table(pack_path, table_id, output)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("pack_path", metavar="PACK", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg", "png"]),
              default="mermaid", show_default=True, help="Drawing format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to a file (required for svg and png).")
def graph(pack_path: str, fmt: str, output: str | None) -> None:
    """Draw a pack's workflow as Mermaid, Graphviz DOT, SVG or PNG."""
    from .engine import workflow

    if fmt in ("svg", "png") and not output:
        raise click.UsageError(f"--format {fmt} writes binary or long output; give -o FILE")
    drawing = workflow.render(workflow.load_workflow(pack_path), fmt)
    if output is None:
        click.echo(drawing, nl=False)
        return
    from .engine.files import atomic_path

    with atomic_path(output) as temp:
        if isinstance(drawing, str):
            temp.write_text(drawing, encoding="utf-8")
        else:
            temp.write_bytes(drawing)
    click.echo(f"wrote {output}")


@cli.command()
@click.option("--pack", "pack_path", required=True, type=click.Path(dir_okay=False),
              help="The workflow pack the orders are replayed onto.")
@click.option("--input", "orders_path", type=click.Path(dir_okay=False),
              help="The orders file (default: the mapping's 'files.orders').")
@click.option("--items", "items_path", type=click.Path(dir_okay=False),
              help="The order items file (default: the mapping's 'files.items').")
@click.option("--mapping", "mapping_path", required=True, type=click.Path(dir_okay=False),
              help="The replay mapping (e.g. mappings/olist_orders.yaml).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--as-of", help="The replay's 'now' (ISO date); default: the last purchase.")
@click.option("--trail", "trail_path", type=click.Path(dir_okay=False),
              help="Trail file: .sqlite (default DIR/trail.sqlite) or .jsonl.")
@click.option("--no-trail", is_flag=True, help="Do not record a trail.")
def replay(pack_path, orders_path, items_path, mapping_path, out_dir, as_of, trail_path,
           no_trail) -> None:
    """Replay real orders onto a workflow: lead times, anomalies, fitted durations, event logs.

    Writes DIR/orders.csv (one row per input order), stage_times.csv,
    durations.json (fitted per-stage distributions for the simulation),
    events.xes (IEEE 1849), events.ocel.json (OCEL 2.0), actions.csv (what the
    pack's exception rules ask for) and the trail: every order's transitions
    and every rule it triggered.
    """
    from .engine import replay as replay_module
    from .engine.files import atomic_path
    from .engine.packs import load_pack
    from .engine.trail import open_trail

    pack = load_pack(pack_path)
    if pack.workflow is None:
        raise InputError("the pack has no 'workflow' section to replay onto",
                         Location(pack.path, 1, 1))
    mapping = replay_module.load_mapping(mapping_path)
    replay_module.check_against_workflow(mapping, pack.workflow, pack.path)
    def progress(message: str) -> None:
        click.echo(message, err=True)

    summary = replay_module.replay_to_dir(orders_path, items_path, mapping, out_dir,
                                          as_of=as_of, progress=progress)
    result = summary.pop("result")
    target = None if no_trail else (trail_path or str(Path(out_dir) / "trail.sqlite"))
    command = " ".join(["storeops", *sys.argv[1:]])
    progress("recording every order's walk and the rules it triggers in the trail ...")
    with open_trail(target, command=command, clock="wall",
                    meta={"pack": pack.id, "pack_sha256": pack.sha256}) as sink:
        actions, records = replay_module.record_replay(result, mapping, pack, sink)
    with atomic_path(Path(out_dir) / "actions.csv") as temp:
        actions.to_csv(temp, index=False, lineterminator="\n")
    summary["trail_records"] = records
    summary["actions"] = actions["action"].value_counts().to_dict()
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "outputs"},
                          indent=1, ensure_ascii=False, default=str))
    for name in [*summary["outputs"], "actions.csv"]:
        click.echo(f"wrote {Path(out_dir) / name}")
    if target:
        click.echo(f"wrote {target}")


@cli.command()
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, help="Root of the seed tree (default: the scenario's seed).")
@click.option("--replications", type=click.IntRange(min=1),
              help="Replications per policy (default: the scenario's).")
@click.option("--policy", "policies", multiple=True,
              help="A policy to run (repeat for several; default: the scenario's 'compare').")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--no-trail", is_flag=True, help="Do not record the trails (faster).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes running replications (the outputs do not depend on it).")
def simulate(scenario_path, seed, replications, policies, out_dir, no_trail, workers) -> None:
    """Simulate a region's stores, team and order desk under supervision policies.

    Runs every policy x replication with common random numbers, prints a
    summary table (means with 95% confidence intervals) and writes
    DIR/summary.csv (metric, policy, mean, ci_low, ci_high), differences.csv
    (each policy minus the first, paired over replications), replications.csv
    and one trail per policy and replication under DIR/trails/.
    """
    from .engine.progress import TerminalProgress
    from .engine.scenario import load_scenario
    from .engine.simulation import HEADLINE, run_scenario

    scenario = load_scenario(scenario_path)
    progress = TerminalProgress()
    pool = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers)
    try:
        result = run_scenario(scenario, seed=seed, replications=replications,
                              policies=policies or None, out_dir=out_dir,
                              trail=not no_trail, progress=progress, executor=pool)
    finally:
        progress.close()
        if pool is not None:
            pool.shutdown()
    n = len(result.replications) // max(1, len(result.policies))
    click.echo(f"scenario {scenario.id}: {len(scenario.stores)} stores, seed {result.seed}, "
               f"{n} replication(s) per policy; mean [95% CI]")
    width = max(len(m) for m in HEADLINE)
    click.echo(f"{'metric':<{width}}  " + "  ".join(f"{p:>30}" for p in result.policies))
    for metric in HEADLINE:
        cells = []
        for policy in result.policies:
            try:
                i = result.interval(metric, policy)
            except KeyError:
                cells.append(f"{'-':>30}")
                continue
            cells.append(f"{_fmt(i.mean)} [{_fmt(i.low)}, {_fmt(i.high)}]".rjust(30))
        click.echo(f"{metric:<{width}}  " + "  ".join(cells))
    for name in result.files:
        click.echo(f"wrote {name}")


@cli.command()
@click.argument("experiment_path", metavar="FILE", type=click.Path())
@click.option("--executor", type=click.Choice(["local", "process", "dask"]), default="process",
              show_default=True,
              help="Where jobs run: this process, one process per core, or a Dask cluster.")
@click.option("--scheduler", metavar="ADDR",
              help="Address of the Dask scheduler (tcp://HOST:8786) for --executor dask.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for --executor process (default: one per core).")
@click.option("--out", "out_dir", required=True, type=click.Path(),
              help="Folder for the results; a rerun resumes from its journal.")
def experiment(experiment_path, executor, scheduler, workers, out_dir) -> None:
    """Run a staffing experiment and recommend the cheapest team meeting every target.

    Every design point x replication of the experiment FILE runs as an independent job with
    common random numbers; replications are added only where the targets are still
    undecided. Writes DIR/results.parquet (and .csv), points.csv, recommendation.json and
    report.html; journal.jsonl lets an interrupted run resume.
    """
    from .engine.experiment import load_experiment
    from .engine.experiment_run import run_experiment
    from .engine.progress import TerminalProgress

    if scheduler and executor != "dask":
        raise InputError("--scheduler is for --executor dask")
    loaded = load_experiment(experiment_path)
    progress = TerminalProgress()
    try:
        result = run_experiment(loaded, out_dir=out_dir, executor=executor,
                                scheduler=scheduler, workers=workers, progress=progress)
    finally:
        progress.close()
    rec = result.recommendation
    reps = rec["replications"]
    click.echo(f"experiment {loaded.id}: {rec['points_run']} of {rec['points']} design points "
               f"run, {reps['main']} replications (a full grid: {reps['full_grid']}), "
               f"{reps['run_now']} run now")
    best = rec["recommendation"]
    if best is None:
        click.echo(f"no recommendation: {rec['why_none']}")
    else:
        click.echo(f"recommended: {best['point']} (staff cost {_fmt(best['staff_cost_per_year'])}"
                   f" a year); binding target: {best['binding_target']}")
        if rec["runner_up"]:
            up = rec["runner_up"]
            click.echo(f"runner-up:   {up['point']} (staff cost "
                       f"{_fmt(up['staff_cost_per_year'])} a year)")
        for entry in rec["sensitivity"]:
            new = entry["recommendation"]
            click.echo(f"demand x{entry['demand_factor']:g}: "
                       f"{new['point'] if new else 'no configuration meets every target'}")
    if rec["failed_jobs"]:
        click.echo(f"{len(rec['failed_jobs'])} job(s) failed (listed in recommendation.json)")
    for name in result.files:
        click.echo(f"wrote {name}")


def _fmt(value: float) -> str:
    if value != value:  # NaN: the metric is undefined in every replication
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@cli.command()
@click.option("--pack", "pack_paths", multiple=True, required=True, type=click.Path(),
              help="The value-chain pack (a region pack extends its base).")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="Store sales: CSV (optionally .gz) or Parquet.")
@click.option("--mapping", "mapping_path", type=click.Path(),
              help="Column mapping file for the input.")
@click.option("--team", "team_path", required=True, type=click.Path(dir_okay=False),
              help="Team file: supervisors, areas, hours, travel (docs/planning.md).")
@click.option("--month", required=True, metavar="YYYY-MM",
              help="The month to plan; the month before it is analysed.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (month_plan.csv, week_schedule.csv, unserved.csv, trail).")
@click.option("--trail", "trail_path", type=click.Path(dir_okay=False),
              help="Trail file: .sqlite (default DIR/trail.sqlite) or .jsonl.")
@click.option("--bad-rows", type=click.Choice(["stop", "skip"]), default="stop",
              show_default=True, help="stop: refuse input with a bad row; skip: leave it out.")
def plan(pack_paths, input_path, mapping_path, team_path, month, out_dir, trail_path,
         bad_rows) -> None:
    """Plan a month's store visits within a team: month plan, week schedules, unserved.

    Analyses the month before --month with the value-chain pack, then writes
    DIR/month_plan.csv (targets, focus, visits and content per store),
    DIR/week_schedule.csv (visits per supervisor and day, with the trail ids of the actions)
    and DIR/unserved.csv (every visit or action that did not fit, and why).
    """
    from .engine import packs as packs_module
    from .engine import valuechain
    from .engine.progress import TerminalProgress

    loaded = packs_module.load_packs(pack_paths)
    progress = TerminalProgress()
    try:
        result, files = valuechain.plan_files(
            loaded, input_path, out_dir, team=team_path, month=month, mapping=mapping_path,
            trail=trail_path or str(Path(out_dir) / "trail.sqlite"),
            command=" ".join(["storeops", *sys.argv[1:]]), progress=progress,
            bad_rows=bad_rows)
    finally:
        progress.close()
    for line in result.summary():
        click.echo(line)
    for name in files:
        click.echo(f"wrote {name}")


@cli.command("evaluate")
@click.option("--pack", "pack_paths", multiple=True, required=True, type=click.Path(),
              help="The value-chain pack the plan was made with.")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="Store sales covering the visited month and the month before.")
@click.option("--mapping", "mapping_path", type=click.Path(),
              help="Column mapping file for the input.")
@click.option("--visits", "visits_path", required=True, type=click.Path(dir_okay=False),
              help="Visit log CSV: store[,date] (a week_schedule.csv works).")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month of the visits.")
@click.option("--kpi", default="sales_yoy", show_default=True,
              help="The KPI whose change judges the visits.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (evaluation.csv).")
def evaluate_command(pack_paths, input_path, mapping_path, visits_path, month, kpi,
                     out_dir) -> None:
    """Judge a month's visits by difference in differences against unvisited flagged stores.

    Per tier: the KPI change of visited flagged stores minus that of unvisited flagged
    stores, with a 95% Welch interval; and the plain warning that flagged stores regress
    to the mean without any visit. Writes DIR/evaluation.csv.
    """
    from .engine import packs as packs_module
    from .engine import valuechain
    from .engine.progress import TerminalProgress

    loaded = packs_module.load_packs(pack_paths)
    progress = TerminalProgress()
    try:
        evaluation, files = valuechain.evaluate_files(
            loaded, input_path, out_dir, visits=visits_path, month=month,
            mapping=mapping_path, kpi=kpi, progress=progress)
    finally:
        progress.close()
    for line in evaluation.lines:
        click.echo(line)
    for name in files:
        click.echo(f"wrote {name}")


def _need_file(path: str) -> None:
    if not os.path.isfile(path):
        raise InputError("no such trail file", Location(path, 1, 1))


def main() -> None:
    cli(prog_name="storeops")


if __name__ == "__main__":
    main()

"""Load rule packs: safe YAML, JSON Schema, cross-references, compiled rules.

``load_pack(path)`` returns a frozen ``Pack`` whose conditions are already
compiled, or raises ``ErrorList`` holding *every* problem found, each with
its file, line and column. The checks run in layers, and a later layer runs
only on the parts an earlier one accepted, so one mistake is reported once:

1. YAML (syntax and safety limits, ``yamlsafe``);
2. the JSON Schema shipped in ``schemas/pack.schema.json``;
3. cross-references: duplicate ids, unknown fields, actions and KPIs,
   parameters shadowing fields, text values outside a field's enumeration;
4. expressions: syntax and types against the declared fields;
5. table checks: empty tables, rows that can never match, and rows of a
   UNIQUE or ANY table that can match the same fact (``analysis.overlap``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from . import yamlsafe
from .errors import ErrorList, ExpressionError, Location, PackError, StoreopsError, did_you_mean
from .expressions import Expression, Field, compile_expression
from .files import display_path

if TYPE_CHECKING:
    from .workflow import Workflow

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
HIT_POLICIES = ("unique", "first", "priority", "any", "collect", "rule_order",
                "output_order")
SINGLE_HIT = ("unique", "first", "priority", "any")


@dataclass(frozen=True, slots=True)
class Label:
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


@dataclass(frozen=True, slots=True)
class Action:
    """An entry of the pack's action catalogue (a KZB strategy, a support action...)."""

    id: str
    label: Label
    role: str | None
    effort_hours: float | None
    confidence: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class Output:
    """One output of a rule: an action id with its parameters."""

    action: str
    params: tuple[tuple[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        if self.params:
            return {"action": self.action, "params": dict(self.params)}
        return {"action": self.action}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    label: Label | None
    when: Expression
    outputs: tuple[Output, ...]
    priority: int
    kpi: str | None
    confidence: str | None
    location: Location
    result: tuple[Any, ...] = ()  # DMN output values, one per output column (Decimal numbers)

    @property
    def outputs_json(self) -> str:
        return json.dumps([o.as_json() for o in self.outputs], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class InputColumn:
    """A DMN input column: a label as modelers show it, and the expression it tests."""

    label: str
    expression: Expression
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """A DMN output column; ``values`` orders outputs for PRIORITY and OUTPUT ORDER."""

    name: str
    label: str
    type: str
    values: tuple[Any, ...] = ()
    default: tuple[Any, ...] = ()  # (value,) when the column declares a default, else ()


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    title: Label | None
    hit_policy: str
    rules: tuple[Rule, ...]
    location: Location
    inputs: tuple[InputColumn, ...] = ()
    outputs: tuple[OutputColumn, ...] = ()
    aggregation: str | None = None


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    value: Any
    unit: str | None
    design_choice: bool
    location: Location


@dataclass(frozen=True, slots=True)
class Kpi:
    id: str
    label: Label
    unit: str | None
    formula: Expression | None
    location: Location


@dataclass(frozen=True)
class Pack:
    """A validated, compiled rule pack. Immutable; safe to share between runs."""

    id: str
    version: str
    title: Label
    subject: str
    path: str
    sha256: str
    fields: Mapping[str, Field]
    field_values: Mapping[str, tuple]
    parameters: Mapping[str, Parameter]
    kpis: Mapping[str, Kpi]
    actions: Mapping[str, Action]
    tables: tuple[Table, ...]
    warnings: tuple[PackError, ...] = ()  # table checks worth a look, not errors (gaps...)
    workflow: Workflow | None = None  # the pack's process graph (docs/workflows.md), if any
    # Compiled domain sections (value_chain, customers), keyed by their top-level name.
    sections: Mapping[str, Any] = field(default_factory=dict)

    def derived(self) -> list[Kpi]:
        """KPIs with a formula, in declaration order: computed into every fact before rules."""
        return [kpi for kpi in self.kpis.values()
                if kpi.formula is not None and _FIELD_NAME.match(kpi.id)
                and kpi.id not in self.fields]

    def rules(self) -> Iterable[tuple[Table, Rule]]:
        for table in self.tables:
            for rule in table.rules:
                yield table, rule


@cache
def shipped_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in the package: 'pack', 'mapping' or 'replay_mapping'."""
    text = resources.files("storeops.engine").joinpath(f"schemas/{name}.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


def pack_schema() -> dict[str, Any]:
    """The JSON Schema for packs, as shipped in the package."""
    return shipped_schema("pack")


@cache
def _validator(name: str = "pack") -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(shipped_schema(name))


def schema_errors(doc: yamlsafe.Document, name: str) -> list[PackError]:
    """Every way a YAML document breaks a shipped schema, as positioned errors."""
    return [schema_error(doc, err) for err in _validator(name).iter_errors(doc.data)]


# Domain sections: top-level keys a pack may carry beside its tables, each read by its own
# module. The module has a JSON Schema ``schemas/<key>.schema.json`` and a function
# ``build_section(data, ctx: SectionContext)`` returning the compiled section (or None after
# reporting errors through ``ctx.error``); it may have ``section_fields(data)``, the fields
# it computes per fact, which tables may read. ``api.run_files`` hands a pack with a section to the
# module's ``run_files`` when it has one.
SECTIONS: dict[str, str] = {
    "value_chain": "storeops.engine.valuechain",
    "customers": "storeops.engine.customers",
}


@dataclass(frozen=True)
class SectionContext:
    """What a domain section may refer to: the pack's fields, parameters, actions, KPIs, tables."""

    key: str
    places: _Places
    fields: Mapping[str, Field]
    field_values: Mapping[str, tuple]
    constants: Mapping[str, Any]
    actions: Mapping[str, Action]
    kpis: Mapping[str, Kpi]
    tables: tuple[Table, ...]
    report: Callable[[StoreopsError], None]
    warn: Callable[[PackError], None]
    pack_id: str = ""
    pack_path: str = ""

    def error(self, message: str, path: tuple, hint: str | None = None) -> None:
        """Report a problem at ``path`` inside the section (e.g. ``("steps", 2, "kpis")``)."""
        self.report(PackError(message, self.places.at(path), hint))

    def problems(self) -> int:
        """How many errors the pack has so far (to tell whether this section added any)."""
        owner = getattr(self.report, "__self__", None)
        return len(owner) if isinstance(owner, list) else 0

    def warning(self, message: str, path: tuple) -> None:
        self.warn(PackError(message, self.places.at(path)))

    def expression(self, text: str, path: tuple, scope: Mapping[str, Field] | None = None,
                   expect: str | None = "boolean") -> Expression | None:
        """Compile an expression written at ``path``; errors are reported, None returned."""
        locate = self.places.scalar(path)
        try:
            return compile_expression(text, scope if scope is not None else self.fields,
                                      parameters=self.constants, locate=locate, expect=expect)
        except ExpressionError as exc:
            if exc.location is None:
                exc.location = locate(0)
            self.report(exc)
            return None


def section_schema_errors(doc: yamlsafe.Document, key: str) -> list[PackError]:
    """Validate ``doc.data[key]`` against ``schemas/<key>.schema.json``, positioned in doc."""
    schema = shipped_schema(key)
    body = {k: v for k, v in schema.items() if k not in ("$defs", "$schema", "$id")}
    wrapper = {"type": "object", "$defs": schema.get("$defs", {}), "properties": {key: body}}
    validator = jsonschema.Draft202012Validator(wrapper)
    return [schema_error(doc, err) for err in validator.iter_errors({key: doc.data[key]})]


def load_pack(path: str | os.PathLike, *, display: str | None = None) -> Pack:
    """Load, validate and compile one pack; raise ErrorList with all its problems."""
    return _Loader(pack_document(path, display=display)).load()


def pack_document(path: str | os.PathLike, *, display: str | None = None):
    """A pack file as a positioned document; a region pack merged onto the pack it extends."""
    from .overlay import extends_of, overlay_document

    doc = yamlsafe.load(path, display=display or display_path(path))
    if extends_of(doc) is not None:
        doc = overlay_document(doc)
    return doc


def load_pack_data(data: Mapping[str, Any], display: str = "<pack>") -> Pack:
    """Validate and compile a pack given as plain data (e.g. imported from DMN).

    The data is written out and read back, so it passes exactly the checks a
    pack file does. It is written as JSON, which is YAML 1.2 with every string
    quoted: PyYAML's YAML 1.1 dumper would leave '0o17' or '1e3' bare, and a
    YAML 1.2 reader would take them for numbers.
    """
    text = json.dumps(dict(data), ensure_ascii=False, indent=1, default=str)
    return _Loader(yamlsafe.loads(text, display=display)).load()


def load_packs(paths: Iterable[str | os.PathLike]) -> list[Pack]:
    """Load several packs, collecting the errors of all of them before raising."""
    packs, errors = [], []
    seen: dict[str, Pack] = {}
    for path in paths:
        try:
            pack = load_pack(path)
        except ErrorList as exc:
            errors.extend(exc.errors)
            continue
        except StoreopsError as exc:
            errors.append(exc)
            continue
        if pack.id in seen:
            errors.append(PackError(
                f"pack id '{pack.id}' is also the id of {seen[pack.id].path}; the trail and "
                "the action plan need one id per pack", Location(pack.path, 1, 1)))
        seen[pack.id] = pack
        packs.append(pack)
    if errors:
        raise ErrorList(errors)
    return packs


def find_packs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into the YAML files under them (sorted); files pass through."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            found.append(path)
    return found


class _Loader:
    """One pass over a document, collecting errors instead of stopping at the first."""

    def __init__(self, doc: yamlsafe.Document) -> None:
        self.doc = doc
        self.errors: list[StoreopsError] = []
        self.warnings: list[PackError] = []
        self.sheet_digests: list[str] = []  # files the pack's tables come from

    def error(self, message: str, path: tuple, hint: str | None = None, *, key: bool = False):
        where = self.doc.locate_key(path) if key else self.doc.locate(path)
        self.errors.append(PackError(message, where, hint))

    def load(self) -> Pack:
        data = self.doc.data
        if not isinstance(data, dict):
            raise ErrorList([PackError("expected a mapping with 'pack', 'fields' and 'tables'",
                                       self.doc.locate(()))])
        self.schema_errors(data)
        if self.errors:
            # Later layers still run, so that an expression error is not hidden behind a
            # schema error elsewhere; where the structure is too broken to read, they stop.
            with contextlib.suppress(KeyError, TypeError, AttributeError, ValueError):
                self.build(data)
            raise ErrorList(_unique(self.errors))
        pack = self.build(data)
        if self.errors:
            raise ErrorList(self.errors)
        return pack

    # -- layer 2: schema -------------------------------------------------------------------
    def schema_errors(self, data: dict) -> None:
        self.errors.extend(schema_errors(self.doc, "pack"))

    # -- layers 3-5 --------------------------------------------------------------------------
    def build(self, data: dict) -> Pack:
        meta = data["pack"]
        fields: dict[str, Field] = {}
        field_values: dict[str, tuple] = {}
        for i, item in enumerate(data["fields"]):
            name = item["name"]
            if name in fields:
                self.error(f"duplicate field '{name}'", ("fields", i, "name"))
                continue
            fields[name] = Field(name, item["type"], item.get("unit"), item.get("required", True))
            if "values" in item:
                field_values[name] = self.enumeration(item, i)
        subject = meta["subject"]
        if subject not in fields:
            self.error(f"subject '{subject}' is not a declared field", ("pack", "subject"),
                       did_you_mean(subject, fields))
        elif fields[subject].type != "text" and fields[subject].type != "integer":
            self.error("the subject field must be text or integer", ("pack", "subject"))

        parameters: dict[str, Parameter] = {}
        for i, item in enumerate(data.get("parameters", [])):
            name = item["name"]
            if name in parameters:
                self.error(f"duplicate parameter '{name}'", ("parameters", i, "name"))
            elif name in fields:
                self.error(f"parameter '{name}' has the name of a field", ("parameters", i, "name"))
            else:
                parameters[name] = Parameter(name, item["value"], item.get("unit"),
                                             item.get("design_choice", False),
                                             self.doc.locate(("parameters", i)))
        constants = {name: p.value for name, p in parameters.items()}

        kpis: dict[str, Kpi] = {}
        # Fields plus the KPIs with a formula, which rules (and later KPIs) read by name.
        scope: dict[str, Field] = dict(fields)
        for i, item in enumerate(data.get("kpis", [])):
            kpi_id = item["id"]
            if kpi_id in kpis:
                self.error(f"duplicate KPI '{kpi_id}'", ("kpis", i, "id"))
                continue
            formula = None
            if "formula" in item:
                formula = self.expression(item["formula"],
                                          self.doc.scalar_locator(("kpis", i, "formula")),
                                          scope, constants, expect=None)
                if kpi_id in fields or kpi_id in parameters:
                    self.error(f"KPI '{kpi_id}' has a formula and the name of a field or "
                               "parameter; rename one of them", ("kpis", i, "id"))
                elif formula is not None and _FIELD_NAME.match(kpi_id):
                    scope[kpi_id] = Field(kpi_id, formula.type, item.get("unit"), False)
            kpis[kpi_id] = Kpi(kpi_id, _label(item["label"]), item.get("unit"), formula,
                               self.doc.locate(("kpis", i)))

        actions: dict[str, Action] = {}
        for i, item in enumerate(data.get("actions", [])):
            action_id = item["id"]
            if action_id in actions:
                self.error(f"duplicate action '{action_id}'", ("actions", i, "id"))
                continue
            actions[action_id] = Action(action_id, _label(item["label"]), item.get("role"),
                                        item.get("effort_hours"), item.get("confidence"),
                                        self.doc.locate(("actions", i)))

        # Fields a domain section computes for each fact (e.g. thresholds that depend on the
        # store's tier): rules read them like KPIs, the section's pipeline fills them in.
        for key, module_name in SECTIONS.items():
            module = importlib.import_module(module_name) if key in data else None
            if module is not None and hasattr(module, "section_fields") and \
                    isinstance(data[key], dict):
                for name, section_field in module.section_fields(data[key]).items():
                    if name in scope:
                        self.error(f"'{name}' is both a section value and a field or KPI",
                                   (key,))
                    else:
                        scope[name] = section_field

        tables: list[Table] = []
        table_ids: set[str] = set()
        for t, item in enumerate(data.get("tables", [])):
            table_id = item["id"]
            if table_id in table_ids:
                self.error(f"duplicate table '{table_id}'", ("tables", t, "id"))
            table_ids.add(table_id)
            table = self.table(item, t, scope, field_values, constants, actions, kpis)
            tables.append(table)

        workflow = None
        if "workflow" in data:
            from .workflow import build_workflow

            workflow = build_workflow(
                data["workflow"], _YamlPlaces(self.doc, ("workflow",)), fields, constants,
                pack=(meta["id"], meta["version"], self.digest()),
                report=self.errors.append, warn=self.warnings.append)
        sections: dict[str, Any] = {}
        for key, module_name in SECTIONS.items():
            if key not in data:
                continue
            problems = section_schema_errors(self.doc, key)
            if problems:
                self.errors.extend(problems)
                continue
            module = importlib.import_module(module_name)
            ctx = SectionContext(
                key, _YamlPlaces(self.doc, (key,)), scope, field_values, constants, actions,
                kpis, tuple(tables), self.errors.append, self.warnings.append, meta["id"],
                self.doc.path)
            built = module.build_section(data[key], ctx)
            if built is not None:
                sections[key] = built
        return Pack(
            id=meta["id"], version=meta["version"], title=_label(meta["title"]), subject=subject,
            path=self.doc.path, sha256=self.digest(), fields=fields, field_values=field_values,
            parameters=parameters, kpis=kpis, actions=actions, tables=tuple(tables),
            warnings=tuple(sorted(self.warnings, key=StoreopsError.sort_key)), workflow=workflow,
            sections=sections,
        )

    def digest(self) -> str:
        """The pack file's SHA-256; with spreadsheet tables, over the pack and its sheets.

        The trail records this hash, so a changed sheet must change it too.
        """
        if not self.sheet_digests:
            return self.doc.sha256
        joined = "\n".join([self.doc.sha256, *self.sheet_digests])
        return hashlib.sha256(joined.encode("ascii")).hexdigest()

    def enumeration(self, item: dict, i: int) -> tuple:
        values = item["values"]
        expected = {"number": (int, float), "integer": (int,), "text": (str,),
                    "boolean": (bool,), "date": (str,)}[item["type"]]
        good = []
        for j, value in enumerate(values):
            if isinstance(value, bool) != (item["type"] == "boolean") or not isinstance(
                value, expected
            ):
                self.error(f"value {value!r} does not fit field type {item['type']}",
                           ("fields", i, "values", j))
            elif value in good:
                self.error(f"duplicate value {value!r}", ("fields", i, "values", j))
            else:
                good.append(value)
        return tuple(good)

    def expression(self, text: str, locate: Callable[[int], Location], fields, constants, *,
                   expect):
        try:
            return compile_expression(text, fields, parameters=constants, locate=locate,
                                      expect=expect)
        except ExpressionError as exc:
            if exc.location is None:
                exc.location = locate(0)
            self.errors.append(exc)
            return None

    def error_at(self, message: str, where: Location, hint: str | None = None) -> None:
        self.errors.append(PackError(message, where, hint))

    def table(self, item, t, fields, field_values, constants, actions, kpis) -> Table:
        places: _Places = _YamlPlaces(self.doc, ("tables", t))
        if "sheet" in item:
            loaded = self.sheet_table(item, places)
            if loaded is None:
                return Table(item["id"], None, "collect", (), places.at(()))
            item, places = loaded
        rules: list[Rule] = []
        rule_ids: set[str] = set()
        ctx = _TableContext(item, places, fields, constants)
        inputs = self.inputs(ctx)
        columns = self.output_columns(ctx)
        if not item["rules"]:
            self.error_at(f"table '{item['id']}' has no rules", places.at(("rules",)))
        if item.get("aggregation") and (item["hit_policy"] != "collect" or len(columns) != 1):
            self.error_at("aggregation needs hit policy collect and exactly one output column",
                          places.key(("aggregation",)))
        for r, raw in enumerate(item["rules"]):
            rpath = ("rules", r)
            if raw["id"] in rule_ids:
                self.error_at(f"duplicate rule id '{raw['id']}' in table '{item['id']}'",
                              places.at((*rpath, "id")))
            rule_ids.add(raw["id"])
            when = self.rule_condition(ctx, raw, rpath, inputs)
            outputs = self.outputs(raw.get("then", []), places, (*rpath, "then"), actions)
            result = self.result(ctx, raw, rpath, columns)
            if raw.get("kpi") is not None and raw["kpi"] not in kpis:
                self.error_at(f"unknown KPI '{raw['kpi']}'", places.at((*rpath, "kpi")),
                              did_you_mean(raw["kpi"], kpis))
            if when is not None:
                if "when" in raw and "cells" not in raw:
                    self.enum_literals(when, places.scalar((*rpath, "when")), field_values)
                rules.append(Rule(raw["id"], _label(raw["label"]) if "label" in raw else None,
                                  when, outputs, raw.get("priority", 0), raw.get("kpi"),
                                  raw.get("confidence"), places.at(rpath), result))
        table = Table(item["id"], _label(item["title"]) if "title" in item else None,
                      item["hit_policy"], tuple(rules), places.at(()), inputs, columns,
                      item.get("aggregation"))
        if len(rules) == len(item["rules"]):
            self.table_checks(table, fields, places)
            self.coverage_checks(table, fields, field_values, places)
        return table

    def coverage_checks(self, table: Table, fields, field_values, places: _Places) -> None:
        from .checks import check_table

        for finding in check_table(table, fields, field_values):
            where = places.at(() if finding.rule is None
                              else _condition_path(table, finding.rule))
            self.warnings.append(PackError(finding.message, where))

    def sheet_table(self, item: dict, places: _Places):
        """The table from a spreadsheet beside the pack, with positions in that sheet."""
        from . import sheets

        spec = item["sheet"]
        folder = Path(self.doc.path).parent
        try:
            loaded = sheets.read_table(folder / spec["file"], sheet=spec.get("sheet"),
                                       table_id=item["id"],
                                       display=os.path.join(os.path.dirname(self.doc.path),
                                                            spec["file"]))
        except ErrorList as exc:
            self.errors.extend(exc.errors)
            return None
        except StoreopsError as exc:
            if exc.location is None:
                exc.location = places.at(("sheet",))
            self.errors.append(exc)
            return None
        with open(folder / spec["file"], "rb") as handle:
            self.sheet_digests.append(hashlib.sha256(handle.read()).hexdigest())
        data = {**loaded.data, **{k: v for k, v in item.items() if k != "sheet"}}
        data.setdefault("rules", [])
        problems = list(_table_validator().iter_errors(data))
        for err in problems:
            self.errors.append(schema_error(None, err, locate=loaded.locate))
        if problems:
            return None
        return data, _SheetPlaces(loaded.locate)

    def inputs(self, ctx: _TableContext) -> tuple[InputColumn, ...]:
        columns = []
        for j, raw in enumerate(ctx.item.get("inputs", [])):
            expr = self.expression(raw["expression"],
                                   ctx.places.scalar(("inputs", j, "expression")),
                                   ctx.fields, ctx.constants, expect=None)
            if expr is not None:
                columns.append(InputColumn(raw.get("label", raw["expression"]), expr,
                                           tuple(raw.get("values", ()))))
        return tuple(columns)

    def output_columns(self, ctx: _TableContext) -> tuple[OutputColumn, ...]:
        columns = []
        names: set[str] = set()
        rules = ctx.item.get("rules", [])
        for k, raw in enumerate(ctx.item.get("outputs", [])):
            if raw["name"] in names:
                self.error_at(f"duplicate output '{raw['name']}'",
                              ctx.places.at(("outputs", k, "name")))
            names.add(raw["name"])
            kind = raw.get("type") or _infer_type(
                [r["result"][k] for r in rules if len(r.get("result", [])) > k])
            try:
                values = tuple(_typed(v, kind) for v in raw.get("values", ()))
            except ValueError:
                self.error_at(f"the values of output '{raw['name']}' are not all "
                              f"{_TYPE_WORDS[kind]}", ctx.places.at(("outputs", k, "values")))
                values = ()
            default: tuple[Any, ...] = ()
            if "default" in raw:
                try:
                    default = (_typed(raw["default"], kind),)
                except ValueError:
                    self.error_at(f"the default of output '{raw['name']}' is not "
                                  f"{_TYPE_WORDS[kind]}", ctx.places.at(("outputs", k, "default")))
            columns.append(OutputColumn(raw["name"], raw.get("label", raw["name"]), kind,
                                        values, default))
        return tuple(columns)

    def rule_condition(self, ctx: _TableContext, raw: dict, rpath: tuple,
                       inputs: tuple[InputColumn, ...]) -> Expression | None:
        """The rule's condition: its S-FEEL cells and its ``when``, ANDed, compiled once."""
        if "cells" not in raw and "when" not in raw:
            return None  # the schema says so
        parts: list[tuple[str, Callable[[int], Location]]] = []
        if "cells" in raw:
            from .sfeel import translate_cell

            cells = raw["cells"]
            declared = len(ctx.item.get("inputs", []))
            if len(cells) != declared:
                self.error_at(f"rule '{raw['id']}' has {len(cells)} cell(s) for "
                              f"{declared} input column(s)", ctx.places.at((*rpath, "cells")))
                return None
            if len(inputs) != declared:
                return None  # an input expression is broken, and reported already
            for j, cell in enumerate(cells):
                where = ctx.places.scalar((*rpath, "cells", j))
                try:
                    text = translate_cell(cell, f"({inputs[j].expression.text})")
                except ExpressionError as exc:
                    exc.location = where(getattr(exc, "offset", 0) or 0)
                    self.errors.append(exc)
                    return None
                if text != "true":
                    # offsets in the translated text do not map into the cell: point at it
                    cell_start = where(0)
                    parts.append((text, lambda offset, at=cell_start: at))
        if "when" in raw:
            parts.append((raw["when"], ctx.places.scalar((*rpath, "when"))))
        if not parts:
            parts.append(("true", ctx.places.scalar(rpath)))
        if len(parts) == 1:
            text, where = parts[0]
            return self.expression(text, where, ctx.fields, ctx.constants, expect="boolean")
        combined = " and ".join(f"({text})" for text, _ in parts)
        try:
            return compile_expression(combined, ctx.fields, parameters=ctx.constants,
                                      expect="boolean")
        except ExpressionError:
            # Compile the parts one by one, so that the error points into its own cell.
            before = len(self.errors)
            for text, where in parts:
                self.expression(text, where, ctx.fields, ctx.constants, expect="boolean")
            if len(self.errors) == before:
                self.error_at(f"rule '{raw['id']}': its cells do not combine",
                              ctx.places.at(rpath))
            return None

    def result(self, ctx: _TableContext, raw: dict, rpath: tuple,
               columns: tuple[OutputColumn, ...]) -> tuple:
        if "result" not in raw:
            if columns:
                self.error_at(f"rule '{raw['id']}' has no result for the output columns",
                              ctx.places.at(rpath))
            return ()
        values = raw["result"]
        if len(values) != len(columns):
            self.error_at(f"rule '{raw['id']}' has {len(values)} result value(s) for "
                          f"{len(columns)} output column(s)", ctx.places.at((*rpath, "result")))
            return ()
        typed = []
        for k, (value, column) in enumerate(zip(values, columns, strict=True)):
            where = ctx.places.at((*rpath, "result", k))
            try:
                converted = _typed(value, column.type)
            except ValueError:
                self.error_at(f"result {value!r} for output '{column.name}' is not "
                              f"{_TYPE_WORDS[column.type]}", where)
                continue
            if column.values and converted is not None and converted not in column.values:
                self.error_at(f"result {value!r} is not a value of output '{column.name}'",
                              where, did_you_mean(str(value), [str(v) for v in column.values]))
            typed.append(converted)
        return tuple(typed)

    def outputs(self, items: list, places: _Places, path: tuple,
                actions: Mapping[str, Action]) -> tuple:
        outputs = []
        for k, raw in enumerate(items):
            if isinstance(raw, str):
                output = Output(raw)
            else:
                output = Output(raw["action"], tuple(sorted(raw.get("params", {}).items())))
            if actions and output.action not in actions:
                self.error_at(f"unknown action '{output.action}'", places.at((*path, k)),
                              did_you_mean(output.action, actions))
            outputs.append(output)
        return tuple(outputs)

    def enum_literals(self, expr: Expression, locate: Callable[[int], Location],
                      field_values) -> None:
        """A text literal compared with an enumerated field must be one of its values."""
        from .analysis import literal_comparisons

        for name, value, offset in literal_comparisons(expr):
            allowed = field_values.get(name)
            if allowed and value not in allowed:
                self.errors.append(PackError(
                    f"{value!r} is not a value of field '{name}'", locate(offset),
                    did_you_mean(str(value), [str(v) for v in allowed])
                    or f"expected one of {', '.join(map(str, allowed[:12]))}"
                    + (", ..." if len(allowed) > 12 else ""),
                ))

    def table_checks(self, table: Table, fields, places: _Places) -> None:
        from .analysis import UNKNOWN, overlap, satisfiable

        for r, rule in enumerate(table.rules):
            if satisfiable(rule.when, fields) is False:
                self.error_at(f"rule '{rule.id}' can never match: its condition is "
                              "contradictory", places.at(_condition_path(table, r)))
        if table.hit_policy not in ("unique", "any"):
            return
        rules = table.rules
        for i in range(len(rules)):
            for j in range(i + 1, len(rules)):
                if table.hit_policy == "any" and (rules[i].outputs, rules[i].result) == (
                    rules[j].outputs, rules[j].result
                ):
                    continue
                witness = overlap(rules[i].when, rules[j].when, fields)
                if witness is None or witness is UNKNOWN:
                    continue
                example = ", ".join(f"{k}={v!r}" for k, v in sorted(witness.items()))
                kind = "UNIQUE" if table.hit_policy == "unique" else "ANY (different outputs)"
                self.error_at(
                    f"rules '{rules[i].id}' and '{rules[j].id}' of {kind} table "
                    f"'{table.id}' can both match one fact, e.g. {example or 'any fact'}",
                    places.at(_condition_path(table, j)),
                )


class _Places:
    """Where the parts of a table are written: in the pack's YAML, or in a spreadsheet."""

    def at(self, path: tuple) -> Location:
        raise NotImplementedError

    def key(self, path: tuple) -> Location:
        return self.at(path)

    def scalar(self, path: tuple) -> Callable[[int], Location]:
        where = self.at(path)
        return lambda offset: where


class _YamlPlaces(_Places):
    def __init__(self, doc: yamlsafe.Document, prefix: tuple) -> None:
        self.doc, self.prefix = doc, prefix

    def at(self, path: tuple) -> Location:
        return self.doc.locate((*self.prefix, *path))

    def key(self, path: tuple) -> Location:
        return self.doc.locate_key((*self.prefix, *path))

    def scalar(self, path: tuple) -> Callable[[int], Location]:
        return self.doc.scalar_locator((*self.prefix, *path))


class _SheetPlaces(_Places):
    """Cells of a spreadsheet: errors name the sheet, row and column of the cell."""

    def __init__(self, locate: Callable[[tuple], Location]) -> None:
        self.locate = locate

    def at(self, path: tuple) -> Location:
        return self.locate(path)


@dataclass(frozen=True)
class _TableContext:
    item: dict
    places: _Places
    fields: Mapping[str, Field]
    constants: Mapping[str, Any]


def _condition_path(table: Table, r: int) -> tuple:
    """Where a rule's condition is written: its ``when``, or else its cells."""
    return ("rules", r, "cells") if table.inputs else ("rules", r, "when")


_TYPE_WORDS = {"number": "a number", "text": "text", "boolean": "true or false",
               "date": "a date (YYYY-MM-DD)"}


def _typed(value: Any, kind: str) -> Any:
    """A result value in its output type; numbers become exact decimals (DMN semantics)."""
    if value is None:
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise ValueError(value)
        return Decimal(str(value))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError(value)
        return datetime.date.fromisoformat(value)
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _infer_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       for v in present):
        return "number"
    return "text"


@cache
def _table_validator() -> jsonschema.Draft202012Validator:
    """The schema of one table, for tables read from spreadsheets."""
    root = pack_schema()
    return jsonschema.Draft202012Validator(
        {**root["properties"]["tables"]["items"], "$defs": root["$defs"]})


class _Locator:
    """Stands in for a Document where positions come from a function (spreadsheets)."""

    def __init__(self, locate: Callable[[tuple], Location]) -> None:
        self.locate = locate
        self.locate_key = locate


def _unique(errors: list[StoreopsError]) -> list[StoreopsError]:
    """Drop repeats: a broken value can be reported by the schema and by a later layer."""
    seen: set[tuple] = set()
    kept = []
    for error in errors:
        key = (error.location, error.message)
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


def _label(raw: Mapping[str, str]) -> Label:
    return Label(raw["zh"], raw["en"])


# -- schema errors as one clear line each ------------------------------------------------------

_TYPE_NAMES = {"string": "text", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "nothing"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 40 else "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def schema_error(doc: yamlsafe.Document | None, err: jsonschema.ValidationError, *,
                 locate: Callable[[tuple], Location] | None = None) -> PackError:
    """Turn a jsonschema error into a positioned, plain-language PackError.

    Positions come from the YAML document, or from ``locate`` for tables read
    from spreadsheets.
    """
    if locate is not None:
        doc = _Locator(locate)  # type: ignore[assignment]
    path = tuple(err.absolute_path)
    where = ".".join(str(p) for p in path) or "the pack"
    validator = err.validator
    if validator == "anyOf" and err.context:
        # The output items accept an id or a mapping; name what the item failed as a mapping
        # only when it is a mapping, otherwise say what an item may be.
        if isinstance(err.instance, dict):
            if all(e.validator == "required" for e in err.context):
                names = " or ".join(f"'{e.message.split(chr(39))[1]}'" for e in err.context)
                return PackError(f"{where}: needs {names}", doc.locate(path))
            deepest = max(err.context, key=lambda e: len(e.absolute_path))
            if deepest.validator != "type":
                return schema_error(doc, deepest)
        return PackError(f"{where}: expected an action id or a mapping with 'action', "
                         f"got {_describe(err.instance)}", doc.locate(path))
    if validator == "additionalProperties":
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        name = extra[0] if extra else "?"
        return PackError(f"unknown key '{name}' in {where}", doc.locate_key((*path, name)),
                         did_you_mean(name, allowed)
                         or f"expected one of {', '.join(sorted(allowed))}")
    if validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return PackError(f"{where}: missing required key '{missing}'", doc.locate(path))
    if validator == "type":
        expected = err.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = None
        if "string" in names and isinstance(err.instance, (int, float)):
            hint = "quote it"
        return PackError(f"{where}: expected {wanted}, got {_describe(err.instance)}",
                         doc.locate(path), hint)
    if validator == "enum":
        options = ", ".join(str(v) for v in err.validator_value)
        return PackError(f"{where}: expected one of {options}, got {_describe(err.instance)}",
                         doc.locate(path),
                         did_you_mean(str(err.instance), [str(v) for v in err.validator_value]))
    if validator == "pattern":
        return PackError(f"{where}: {_describe(err.instance)} is not a valid id "
                         f"(letters, digits, '_', '.', '-'; starting with a letter)",
                         doc.locate(path))
    if validator == "not" and isinstance(err.instance, dict) and "sheet" in err.instance:
        return PackError(f"{where}: a table with 'sheet' takes its hit policy, inputs, outputs "
                         "and rules from the sheet; remove them here", doc.locate(path))
    if validator in ("minItems", "minLength"):
        return PackError(f"{where}: must not be empty", doc.locate(path))
    if validator in ("maxItems", "maxLength", "maxProperties", "maximum", "minimum"):
        return PackError(f"{where}: {err.message}", doc.locate(path))
    return PackError(f"{where}: {err.message}", doc.locate(path))

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
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from . import yamlsafe
from .errors import ErrorList, ExpressionError, Location, PackError, StoreopsError, did_you_mean
from .expressions import Expression, Field, compile_expression

HIT_POLICIES = ("unique", "first", "priority", "any", "collect")


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

    @property
    def outputs_json(self) -> str:
        return json.dumps([o.as_json() for o in self.outputs], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    title: Label | None
    hit_policy: str
    rules: tuple[Rule, ...]
    location: Location


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

    def rules(self) -> Iterable[tuple[Table, Rule]]:
        for table in self.tables:
            for rule in table.rules:
                yield table, rule


@cache
def pack_schema() -> dict[str, Any]:
    """The JSON Schema for packs, as shipped in the package."""
    text = resources.files("storeops.engine").joinpath("schemas/pack.schema.json").read_text(
        encoding="utf-8"
    )
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(pack_schema())


def load_pack(path: str | os.PathLike, *, display: str | None = None) -> Pack:
    """Load, validate and compile one pack; raise ErrorList with all its problems."""
    doc = yamlsafe.load(path, display=display or _display(path))
    return _Loader(doc).load()


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


def _display(path: str | os.PathLike) -> str:
    """Paths are shown relative to the working folder when they are under it."""
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


class _Loader:
    """One pass over a document, collecting errors instead of stopping at the first."""

    def __init__(self, doc: yamlsafe.Document) -> None:
        self.doc = doc
        self.errors: list[StoreopsError] = []

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
        for err in _validator().iter_errors(data):
            self.errors.append(schema_error(self.doc, err))

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
        for i, item in enumerate(data.get("kpis", [])):
            kpi_id = item["id"]
            if kpi_id in kpis:
                self.error(f"duplicate KPI '{kpi_id}'", ("kpis", i, "id"))
                continue
            formula = None
            if "formula" in item:
                formula = self.expression(item["formula"], ("kpis", i, "formula"), fields,
                                          constants, expect=None)
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

        tables: list[Table] = []
        table_ids: set[str] = set()
        for t, item in enumerate(data["tables"]):
            table_id = item["id"]
            if table_id in table_ids:
                self.error(f"duplicate table '{table_id}'", ("tables", t, "id"))
            table_ids.add(table_id)
            table = self.table(item, t, fields, field_values, constants, actions, kpis)
            tables.append(table)

        return Pack(
            id=meta["id"], version=meta["version"], title=_label(meta["title"]), subject=subject,
            path=self.doc.path, sha256=self.doc.sha256, fields=fields, field_values=field_values,
            parameters=parameters, kpis=kpis, actions=actions, tables=tuple(tables),
        )

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

    def expression(self, text: str, path: tuple, fields, constants, *, expect):
        try:
            return compile_expression(text, fields, parameters=constants,
                                      locate=self.doc.scalar_locator(path), expect=expect)
        except ExpressionError as exc:
            if exc.location is None:
                exc.location = self.doc.locate(path)
            self.errors.append(exc)
            return None

    def table(self, item, t, fields, field_values, constants, actions, kpis) -> Table:
        path = ("tables", t)
        rules: list[Rule] = []
        rule_ids: set[str] = set()
        if not item["rules"]:
            self.error(f"table '{item['id']}' has no rules", (*path, "rules"))
        for r, raw in enumerate(item["rules"]):
            rpath = (*path, "rules", r)
            if raw["id"] in rule_ids:
                self.error(f"duplicate rule id '{raw['id']}' in table '{item['id']}'",
                           (*rpath, "id"))
            rule_ids.add(raw["id"])
            when = self.expression(raw["when"], (*rpath, "when"), fields, constants,
                                   expect="boolean")
            outputs = self.outputs(raw["then"], (*rpath, "then"), actions)
            if raw.get("kpi") is not None and raw["kpi"] not in kpis:
                self.error(f"unknown KPI '{raw['kpi']}'", (*rpath, "kpi"),
                           did_you_mean(raw["kpi"], kpis))
            if when is not None:
                self.enum_literals(when, (*rpath, "when"), field_values)
                rules.append(Rule(raw["id"], _label(raw["label"]) if "label" in raw else None,
                                  when, outputs, raw.get("priority", 0), raw.get("kpi"),
                                  raw.get("confidence"), self.doc.locate(rpath)))
        table = Table(item["id"], _label(item["title"]) if "title" in item else None,
                      item["hit_policy"], tuple(rules), self.doc.locate(path))
        if len(rules) == len(item["rules"]):
            self.table_checks(table, fields, path)
        return table

    def outputs(self, items: list, path: tuple, actions: Mapping[str, Action]) -> tuple:
        outputs = []
        for k, raw in enumerate(items):
            if isinstance(raw, str):
                output = Output(raw)
            else:
                output = Output(raw["action"], tuple(sorted(raw.get("params", {}).items())))
            if actions and output.action not in actions:
                self.error(f"unknown action '{output.action}'", (*path, k),
                           did_you_mean(output.action, actions))
            outputs.append(output)
        return tuple(outputs)

    def enum_literals(self, expr: Expression, path: tuple, field_values) -> None:
        """A text literal compared with an enumerated field must be one of its values."""
        from .analysis import literal_comparisons

        for name, value, offset in literal_comparisons(expr):
            allowed = field_values.get(name)
            if allowed and value not in allowed:
                locate = self.doc.scalar_locator(path)
                self.errors.append(PackError(
                    f"{value!r} is not a value of field '{name}'", locate(offset),
                    did_you_mean(str(value), [str(v) for v in allowed])
                    or f"expected one of {', '.join(map(str, allowed[:12]))}"
                    + (", ..." if len(allowed) > 12 else ""),
                ))

    def table_checks(self, table: Table, fields, path: tuple) -> None:
        from .analysis import UNKNOWN, overlap, satisfiable

        for r, rule in enumerate(table.rules):
            if satisfiable(rule.when, fields) is False:
                self.error(f"rule '{rule.id}' can never match: its condition is contradictory",
                           (*path, "rules", r, "when"))
        if table.hit_policy not in ("unique", "any"):
            return
        rules = table.rules
        for i in range(len(rules)):
            for j in range(i + 1, len(rules)):
                if table.hit_policy == "any" and rules[i].outputs == rules[j].outputs:
                    continue
                witness = overlap(rules[i].when, rules[j].when, fields)
                if witness is None or witness is UNKNOWN:
                    continue
                example = ", ".join(f"{k}={v!r}" for k, v in sorted(witness.items()))
                kind = "UNIQUE" if table.hit_policy == "unique" else "ANY (different outputs)"
                self.error(
                    f"rules '{rules[i].id}' and '{rules[j].id}' of {kind} table "
                    f"'{table.id}' can both match one fact, e.g. {example or 'any fact'}",
                    (*path, "rules", j, "when"),
                )


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


def schema_error(doc: yamlsafe.Document, err: jsonschema.ValidationError) -> PackError:
    """Turn a jsonschema error into a positioned, plain-language PackError."""
    path = tuple(err.absolute_path)
    where = ".".join(str(p) for p in path) or "the pack"
    validator = err.validator
    if validator == "anyOf" and err.context:
        # The output items accept an id or a mapping; name what the item failed as a mapping
        # only when it is a mapping, otherwise say what an item may be.
        if isinstance(err.instance, dict):
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
    if validator in ("minItems", "minLength"):
        return PackError(f"{where}: must not be empty", doc.locate(path))
    if validator in ("maxItems", "maxLength", "maxProperties", "maximum", "minimum"):
        return PackError(f"{where}: {err.message}", doc.locate(path))
    return PackError(f"{where}: {err.message}", doc.locate(path))

"""The DMN TCK runner: official conformance cases against storeops' decision tables.

A TCK case folder holds one DMN model (``*.dmn``) and test files
(``*-test-*.xml``, namespace ``http://www.omg.org/spec/DMN/20160719/testcase``).
Each ``testCase`` gives ``inputNode`` values and, per ``resultNode``, the
``expected`` value of a decision: a single value, a ``list`` of ``item``s, or
``component``s (a context; a multi-output table's row), nested as needed.

The runner imports the model with ``dmn.read_model`` (so FEEL storeops does
not support fails the case with the importer's message instead of being
guessed at), compiles it as a pack, evaluates the table of each result node
with the inputs as a fact, and compares: numbers as exact decimals, strings
exactly, booleans, dates, ``null``, lists in order and components by name.

Facts carry numbers as ``int`` (integral) or ``float``: the pack expression
language compares fields with literals written in the model (``>= 18``,
``[0.5..1]``), and Python compares ``Decimal('0.1')`` with the float ``0.1``
as unequal, while the float ``0.1`` equals it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .dmn import DmnModel, read_model, read_xml, sanitise_name
from .errors import ErrorList, InputError, Location, StoreopsError

__all__ = ["TESTCASE_NAMESPACE", "CaseResult", "format_result", "run_tck", "summary"]

TESTCASE_NAMESPACE = "http://www.omg.org/spec/DMN/20160719/testcase"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSD = "http://www.w3.org/2001/XMLSchema"
_NUMBER_TYPES = frozenset(("decimal", "double", "float", "integer", "int", "long", "short",
                           "byte", "nonNegativeInteger", "positiveInteger",
                           "nonPositiveInteger", "negativeInteger", "unsignedInt",
                           "unsignedLong", "unsignedShort", "unsignedByte"))

Evaluator = Callable[[str, Mapping[str, Any]], Any]
"""Evaluates the table with the given id for one fact and returns its DMN result."""

CompileModel = Callable[[dict[str, Any], str], Evaluator]
"""Turns imported pack data (and a name for messages) into an Evaluator."""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one TCK test case."""

    folder: str  # the case folder, relative to the path the run was given
    case_id: str  # the testCase id
    passed: bool
    message: str  # why it failed; empty when it passed


class _CaseError(Exception):
    """A test case the runner cannot run (unsupported value type, unknown input...)."""


@dataclass(frozen=True)
class _Result:
    name: str
    expected: Any
    error_expected: bool


@dataclass(frozen=True)
class _Case:
    id: str
    inputs: tuple[tuple[str, Any], ...]
    results: tuple[_Result, ...]
    problem: str | None = None  # set when the case cannot be read


def run_tck(paths: Sequence[str | os.PathLike], *,
            compile_model: CompileModel | None = None) -> Iterator[CaseResult]:
    """Run every TCK case folder under ``paths``, one CaseResult per test case.

    Case folders are found recursively and run in sorted order; a folder is a
    case folder when it holds a ``*.dmn`` model and ``*-test-*.xml`` files.
    ``compile_model`` replaces the pack compiler (tests use it to check the
    runner on its own); by default models are compiled with
    ``packs.load_pack_data`` and evaluated with ``CompiledTable.evaluate``.
    """
    compile_model = compile_model or _compile_pack
    seen: set[Path] = set()
    for raw in paths:
        base = Path(raw)
        if not base.is_dir():
            raise InputError("no such folder", Location(os.fspath(raw), 1, 1))
        for folder in _case_folders(base):
            resolved = folder.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            shown = folder.name if folder == base else folder.relative_to(base).as_posix()
            yield from _run_folder(folder, shown, compile_model)


def format_result(result: CaseResult) -> str:
    """One line per case: ``PASS folder/id`` or ``FAIL folder/id: message``."""
    head = f"{'PASS' if result.passed else 'FAIL'} {result.folder}/{result.case_id}"
    return head if result.passed else f"{head}: {result.message}"


def summary(results: Iterable[CaseResult]) -> str:
    """``N passed, M failed``."""
    passed = failed = 0
    for result in results:
        if result.passed:
            passed += 1
        else:
            failed += 1
    return f"{passed} passed, {failed} failed"


# ---------------------------------------------------------------------------
# Folders and models
# ---------------------------------------------------------------------------


def _is_case_folder(folder: Path) -> bool:
    return any(folder.glob("*.dmn")) and any(folder.glob("*-test-*.xml"))


def _case_folders(base: Path) -> list[Path]:
    folders = [base] if _is_case_folder(base) else []
    folders.extend(sorted((p for p in base.rglob("*") if p.is_dir() and _is_case_folder(p)),
                          key=lambda p: p.relative_to(base).as_posix()))
    return folders


def _compile_pack(pack_data: dict[str, Any], display: str) -> Evaluator:
    from .packs import load_pack_data
    from .tables import compile_table

    pack = load_pack_data(pack_data, display=display)
    tables = {table.id: compile_table(pack, table) for table in pack.tables}

    def evaluate(table_id: str, fact: Mapping[str, Any]) -> Any:
        return tables[table_id].evaluate(fact)

    return evaluate


def _one_line(exc: StoreopsError) -> str:
    if isinstance(exc, ErrorList) and exc.errors:
        first = str(exc.errors[0])
        more = len(exc.errors) - 1
        return first + (f" (and {more} more problem(s))" if more else "")
    return str(exc)


def _run_folder(folder: Path, shown: str, compile_model: CompileModel) -> Iterator[CaseResult]:
    test_files = sorted(folder.glob("*-test-*.xml"))
    models: dict[Path, tuple[DmnModel, Evaluator] | str] = {}
    for test_file in test_files:
        prefix = f"{test_file.stem}:" if len(test_files) > 1 else ""
        try:
            model_name, cases = _read_test_file(test_file)
        except StoreopsError as exc:
            yield CaseResult(shown, f"{prefix}{test_file.name}", False, _one_line(exc))
            continue
        model_path = _model_path(folder, model_name)
        if model_path is None:
            for case in cases:
                yield CaseResult(shown, prefix + case.id, False,
                                 f"model '{model_name or '*.dmn'}' not found in the folder")
            continue
        if model_path not in models:
            try:
                model = read_model(model_path)
                # Pack positions point into the YAML the pack would be, not into the model.
                shown_pack = f"<pack from {model_path.name}>"
                models[model_path] = (model, compile_model(model.pack, shown_pack))
            except StoreopsError as exc:
                models[model_path] = _one_line(exc)
        loaded = models[model_path]
        for case in cases:
            if isinstance(loaded, str):
                yield CaseResult(shown, prefix + case.id, False, loaded)
            else:
                yield _run_case(shown, prefix + case.id, case, *loaded)


def _model_path(folder: Path, model_name: str | None) -> Path | None:
    if model_name:
        candidate = folder / model_name
        return candidate if candidate.is_file() else None
    models = sorted(folder.glob("*.dmn"))
    return models[0] if len(models) == 1 else None


# ---------------------------------------------------------------------------
# Test files
# ---------------------------------------------------------------------------


def _t(local: str) -> str:
    return f"{{{TESTCASE_NAMESPACE}}}{local}"


def _read_test_file(path: Path) -> tuple[str | None, list[_Case]]:
    document = read_xml(path)
    root = document.root
    if root.tag != _t("testCases"):
        raise InputError(f"not a TCK test file: expected <testCases> in namespace "
                         f"{TESTCASE_NAMESPACE}", document.locate(root))
    model = root.find(_t("modelName"))
    model_name = (model.text or "").strip() if model is not None else None
    cases = []
    for n, element in enumerate(root.findall(_t("testCase")), start=1):
        case_id = element.get("id") or f"#{n}"
        try:
            cases.append(_read_case(element, case_id))
        except _CaseError as exc:
            line = document.locate(element).line
            cases.append(_Case(case_id, (), (), f"{exc} ({path.name}, line {line})"))
    return model_name or None, cases


def _read_case(element: Any, case_id: str) -> _Case:
    kind = element.get("type", "decision")
    if kind != "decision":
        raise _CaseError(f"test case type '{kind}' is not supported (decisions only)")
    inputs = []
    for node in element.findall(_t("inputNode")):
        name = node.get("name")
        if not name:
            raise _CaseError("an inputNode has no name")
        inputs.append((name, _value_of(node)))
    results = []
    for node in element.findall(_t("resultNode")):
        name = node.get("name")
        if not name:
            raise _CaseError("a resultNode has no name")
        if node.get("type", "decision") != "decision":
            raise _CaseError(f"result node type '{node.get('type')}' is not supported")
        expected = node.find(_t("expected"))
        results.append(_Result(name, None if expected is None else _value_of(expected),
                               node.get("errorResult") == "true"))
    if not results:
        raise _CaseError("the test case has no resultNode")
    return _Case(case_id, tuple(inputs), tuple(results))


def _value_of(element: Any) -> Any:
    """A TCK valueType: ``value``, ``component``s or a ``list`` of ``item``s (or nil)."""
    if element.get(f"{{{_XSI}}}nil") == "true":
        return None
    value = element.find(_t("value"))
    if value is not None:
        return _simple(value)
    components = element.findall(_t("component"))
    if components:
        return {c.get("name"): _value_of(c) for c in components}
    items = element.find(_t("list"))
    if items is not None:
        if items.get(f"{{{_XSI}}}nil") == "true":
            return None
        return [_value_of(item) for item in items.findall(_t("item"))]
    return None


def _simple(value: Any) -> Any:
    if value.get(f"{{{_XSI}}}nil") == "true":
        return None
    if any(isinstance(child.tag, str) for child in value):
        raise _CaseError("structured <value> content is not supported")
    text = value.text or ""
    declared = value.get(f"{{{_XSI}}}type")
    if declared is None:
        return text
    prefix, _, local = declared.rpartition(":")
    namespace = value.nsmap.get(prefix or None)
    if namespace not in (None, _XSD):
        raise _CaseError(f"value type '{declared}' is not an XML Schema type")
    try:
        if local in _NUMBER_TYPES:
            return Decimal(text.strip())
        if local == "string":
            return text
        if local == "boolean":
            word = text.strip()
            if word in ("true", "1"):
                return True
            if word in ("false", "0"):
                return False
            raise ValueError(word)
        if local == "date":
            return datetime.date.fromisoformat(text.strip())
    except (InvalidOperation, ValueError):
        raise _CaseError(f"'{text.strip()}' is not a valid {declared}") from None
    raise _CaseError(f"value type '{declared}' is not supported (decimal, double, string, "
                     "boolean and date are)")


# ---------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------


def _fact_value(name: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _CaseError(f"input '{name}' is {value}, which storeops does not take")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dict, list)):
        raise _CaseError(f"input '{name}' is structured; storeops inputs are simple values")
    return value


def _run_case(folder: str, case_id: str, case: _Case, model: DmnModel,
              evaluate: Evaluator) -> CaseResult:
    if case.problem:
        return CaseResult(folder, case_id, False, case.problem)
    try:
        fact: dict[str, Any] = {}
        for name, value in case.inputs:
            if name not in model.fields:
                raise _CaseError(f"input '{name}' is not an inputData of the model")
            fact[model.fields[name]] = _fact_value(name, value)
    except _CaseError as exc:
        return CaseResult(folder, case_id, False, str(exc))
    several = len(case.results) > 1
    for result in case.results:
        where = f"'{result.name}': " if several else ""
        table_id = model.tables.get(result.name)
        if table_id is None:
            return CaseResult(folder, case_id, False,
                              f"{where}no decision table named '{result.name}' in the model")
        try:
            actual = evaluate(table_id, fact)
        except StoreopsError as exc:
            if result.error_expected:
                continue
            return CaseResult(folder, case_id, False, f"{where}error: {exc.message}")
        except Exception as exc:  # a bug in storeops: report it on this case, run the rest
            return CaseResult(folder, case_id, False,
                              f"{where}internal error: {type(exc).__name__}: {exc}")
        if result.error_expected:
            return CaseResult(folder, case_id, False,
                              f"{where}expected an error, got {_show(actual)}")
        names = {dmn_name: output for (decision, dmn_name), output in model.outputs.items()
                 if decision == result.name}
        if not _same(result.expected, actual, names):
            return CaseResult(folder, case_id, False,
                              f"{where}expected {_show(result.expected)}, got {_show(actual)}")
    return CaseResult(folder, case_id, True, "")


def _same(expected: Any, actual: Any, names: Mapping[str, str]) -> bool:
    """TCK equality: decimals by value, strings exactly, lists in order, contexts by name."""
    if expected is None:
        return actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, Decimal):
        if not isinstance(actual, (int, float, Decimal)):
            return False
        return Decimal(str(actual)) == expected
    if isinstance(expected, (str, datetime.date)):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, list):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(expected)
                and all(_same(e, a, names) for e, a in zip(expected, actual, strict=True)))
    if isinstance(expected, dict):
        if not isinstance(actual, Mapping):
            return False
        wanted = {names.get(k) or sanitise_name(k, "o"): v for k, v in expected.items()}
        return set(wanted) == set(actual) and all(
            _same(v, actual[k], names) for k, v in wanted.items())
    return False


def _show(value: Any) -> str:
    """A value for a message, FEEL-like: null, true, 1.5, 'text', [..], {name: ..}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, datetime.date):
        return f'date("{value.isoformat()}")'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)



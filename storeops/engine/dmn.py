"""DMN 1.3, 1.4 and 1.5 models in and out: decision tables <-> pack tables.

``import_dmn(path)`` reads the decision tables of a DMN model (as Camunda,
Trisotech, Drools/KIE or the DMN TCK write them) into a pack as plain data in
the format of docs/packs.md and docs/dmn-tables.md; ``write_pack_yaml`` writes
that data as a readable pack file; ``export_dmn`` writes a pack's DMN-style
tables as a DMN 1.5 model with a diagram, so a modeler opens and lays it out.
Importing, exporting and importing again gives the same pack data.

What is imported, and what is refused
-------------------------------------
Only what maps exactly onto a pack is imported; everything else is refused
with the element's id and line, never approximated:

* ``inputData`` become fields. Their ``typeRef`` must be ``number``,
  ``string`` (text), ``boolean`` or ``date``, or an ``itemDefinition`` that is
  a plain alias of one of those; structured, collection and other types are
  refused.
* each ``decision`` must hold a ``decisionTable`` whose inputs name an
  ``inputData`` (``Age``, ``Risk Category``); input expressions that compute
  (``Age + 1``), decisions that require other decisions, literal expressions,
  contexts, invocations, business knowledge models, decision services and
  imports are refused.
* input entries must be S-FEEL unary tests (``sfeel.translate_cell``) that
  type-check against their input, output entries FEEL literals
  (``sfeel.parse_output``), ``inputValues``/``outputValues`` comma lists of
  literals.
* a ``defaultOutputEntry`` (the value DMN gives when no rule matches) becomes
  the output column's ``default`` (a FEEL literal; anything else is refused),
  and is written back on export.
* annotations (``annotationEntry``), knowledge sources, text annotations,
  vendor extensions and the diagram are documentation and are not imported; a
  decision's ``description`` becomes the table's ``note``.

Export writes what a pack table holds that DMN can hold: a field's unit,
enumeration and Chinese label, and a rule's label, source and confidence,
have no place in a decision table and are left out; tables written with
``when:``, rows with ``when``/``then``/``priority``/``kpi`` and inputs that
compute are refused rather than dropped.

Names
-----
DMN names may hold spaces and punctuation; pack names may not. Fields,
outputs and table ids are the DMN name with every run of other characters
turned into one ``_`` (``Risk Category`` -> ``Risk_Category``, case kept,
``Approved/Declined`` -> ``Approved_Declined``); the original name is kept as
the label. A name that then starts with a digit gets a prefix (``f_``,
``t_``), names that are words of the expression language get a trailing
``_`` (``not_``), and a name taken twice gets ``_2``, ``_3``. Rule ids are the
rule's DMN id (``r_`` prepended where it starts with ``_`` or a digit), or
``r1``, ``r2``... where the rule has none. The pack id is the definitions'
name in lower case (``0004-simpletable-U`` -> ``dmn_0004_simpletable_u``).

Every pack needs a subject field (docs/packs.md: text or integer, it names
the case in the trail). A DMN model has no such notion and its first input
is often a number, so the importer adds an optional text field ``case_id``
(``case_id_2`` if a model has an input of that name); facts may omit it.

Reading XML safely
------------------
Files are read with lxml without entity expansion, network access or DTD
loading, with libxml2's size limits on (``huge_tree`` off), and a document
with a DOCTYPE is refused outright. Files over 16 MiB are refused before
parsing.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from .errors import ErrorList, ExpressionError, Location, PackError, StoreopsError
from .expressions import compile_expression
from .files import atomic_path, display_path, read_limited
from .sfeel import SUPPORTED, parse_enumeration, parse_output, translate_cell

__all__ = [
    "DMN13",
    "DMN14",
    "DMN15",
    "DmnModel",
    "XmlDocument",
    "export_dmn",
    "import_dmn",
    "read_model",
    "read_xml",
    "sanitise_name",
    "write_pack_yaml",
]

# DMN 1.3 is written with https by the OMG and by dmn-js (Camunda); some tools write http.
DMN13 = "https://www.omg.org/spec/DMN/20191111/MODEL/"
_DMN13_HTTP = "http://www.omg.org/spec/DMN/20191111/MODEL/"
DMN14 = "https://www.omg.org/spec/DMN/20211108/MODEL/"
DMN15 = "https://www.omg.org/spec/DMN/20230324/MODEL/"
_MODEL_NAMESPACES = {DMN13: "1.3", _DMN13_HTTP: "1.3", DMN14: "1.4", DMN15: "1.5"}
# Export: the model and diagram namespaces of each version. DMN 1.3 is the default, because
# it is the version every common modeler opens (dmn-js and Camunda Modeler read 1.3 only).
EXPORT_VERSIONS = {
    "1.3": (DMN13, "https://www.omg.org/spec/DMN/20191111/DMNDI/"),
    "1.4": (DMN14, "https://www.omg.org/spec/DMN/20211108/DMNDI/"),
    "1.5": (DMN15, "https://www.omg.org/spec/DMN/20230324/DMNDI/"),
}
_DC = "http://www.omg.org/spec/DMN/20180521/DC/"
_DI = "http://www.omg.org/spec/DMN/20180521/DI/"
# FEEL as named by DMN 1.1 to 1.5; tools write these with http or https.
_FEEL_LANGUAGES = frozenset(
    f"{scheme}://www.omg.org/spec/{path}"
    for scheme in ("http", "https")
    for path in ("FEEL/20140401", "DMN/20180521/FEEL/", "DMN/20191111/FEEL/",
                 "DMN/20211108/FEEL/", "DMN/20230324/FEEL/")
)

MAX_BYTES = 16 * 1024 * 1024

_TYPES = {"number": "number", "string": "text", "boolean": "boolean", "date": "date"}
_DMN_TYPES = {"number": "number", "integer": "number", "text": "string",
              "boolean": "boolean", "date": "date"}
_HIT_POLICIES = {"UNIQUE": "unique", "ANY": "any", "PRIORITY": "priority", "FIRST": "first",
                 "RULE ORDER": "rule_order", "OUTPUT ORDER": "output_order",
                 "COLLECT": "collect"}
_AGGREGATIONS = {"SUM": "sum", "MIN": "min", "MAX": "max", "COUNT": "count"}
# Words of the pack expression language that cannot be field names.
_RESERVED = frozenset(("and", "or", "not", "in", "true", "false", "null", "none"))
_EXPRESSION_KINDS = {
    "literalExpression": "a literal expression",
    "context": "a context",
    "invocation": "an invocation",
    "list": "a list",
    "relation": "a relation",
    "functionDefinition": "a function definition",
    "conditional": "a conditional",
    "filter": "a filter",
    "for": "a for expression",
    "every": "a quantified expression",
    "some": "a quantified expression",
}
# Elements that document a model and carry no decision logic.
_DOCUMENTATION = frozenset((
    "description", "extensionElements", "knowledgeSource", "textAnnotation", "association",
    "group", "elementCollection", "performanceIndicator", "organizationUnit", "DMNDI",
))
SUBJECT = "case_id"
MAX_NOTE = 2000


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def sanitise_name(name: str, prefix: str = "f") -> str:
    """A DMN name as a pack name: ``[A-Za-z][A-Za-z0-9_]*``, case kept, at most 64 chars.

    Each run of other characters becomes one ``_`` (the expression language
    refuses ``__`` and a leading ``_``); a name that starts with a digit gets
    ``prefix_``; words of the expression language get a trailing ``_``.
    """
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    if not text:
        text = prefix
    elif not text[0].isalpha():
        text = f"{prefix}_{text}"
    text = text[:64].rstrip("_")
    if text.lower() in _RESERVED:
        text += "_"
    return text


def _pack_id(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not text:
        return "dmn"
    if not text[0].isalpha():
        text = f"dmn_{text}"
    return text[:64].rstrip("_")


def _rule_id(raw: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", raw)
    if not text[:1].isalpha():
        text = f"r{text}" if text.startswith("_") else f"r_{text}"
    return text[:64]


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... whichever is free; the result is taken."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"_{n}"
        candidate = name[: 64 - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------------------
# Safe XML
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class XmlDocument:
    """A parsed XML file and its lines, to point at elements by line and column."""

    display: str
    root: Any  # lxml element
    lines: tuple[str, ...]

    def locate(self, element: Any) -> Location:
        """Where ``element``'s start tag begins (lxml records the line where it ends)."""
        line = element.sourceline or 1
        qname = etree.QName(element)
        tags = [f"<{qname.localname}"]
        if element.prefix:
            tags.insert(0, f"<{element.prefix}:{qname.localname}")
        patterns = [re.compile(re.escape(tag) + r"(?=[\s/>]|$)") for tag in tags]
        for back in range(line, max(line - 20, 0), -1):
            text = self.lines[back - 1] if back - 1 < len(self.lines) else ""
            for pattern in patterns:
                match = pattern.search(text)
                if match:
                    return Location(self.display, back, match.start() + 1)
        return Location(self.display, line, 1)

    def locate_text(self, element: Any, offset: int) -> Location:
        """Where character ``offset`` of ``element``'s text is, entities counted as written.

        Best effort for the common ``<text>...</text>`` on one line; otherwise
        the element's own position.
        """
        start = self.locate(element)
        line = self.lines[start.line - 1] if start.line - 1 < len(self.lines) else ""
        close = line.find(">", start.col - 1)
        if close < 0 or line[close - 1] == "/":
            return start
        raw = line[close + 1:]
        leading = len(element.text or "") - len((element.text or "").lstrip())
        position, decoded = 0, 0
        for token in re.finditer(r"&[^;\s]{1,10};|.", raw):
            if decoded == offset + leading:
                break
            position, decoded = token.end(), decoded + 1
        return Location(self.display, start.line, close + 2 + position)


def read_xml(path: str | os.PathLike, display: str | None = None) -> XmlDocument:
    """Parse an XML file safely; PackError with file, line and column when it is not XML.

    No entity expansion, no network, no DTD loading, libxml2's size limits on;
    a DOCTYPE is refused, since DMN and TCK files never need one.
    """
    shown = display or display_path(path)
    data = read_limited(path, limit=MAX_BYTES, shown=shown, what="an XML file", error=PackError)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        reason = re.sub(r", line \d+, column \d+$", "", exc.msg or "unreadable")
        line, col = exc.position if exc.position else (1, 1)
        raise PackError(f"not well-formed XML: {reason}",
                        Location(shown, max(line, 1), max(col, 1))) from None
    docinfo = root.getroottree().docinfo
    try:  # the text only serves to find columns, so an odd encoding costs precision only
        text = data.decode(docinfo.encoding or "utf-8", errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    lines = tuple(text.splitlines())
    if docinfo.doctype or docinfo.internalDTD is not None:
        line = next((i + 1 for i, t in enumerate(lines) if "<!DOCTYPE" in t), 1)
        raise PackError("a DOCTYPE is not allowed (DMN files do not use DTDs or entities)",
                        Location(shown, line, 1))
    return XmlDocument(shown, root, lines)


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DmnModel:
    """An imported model: the pack data and how DMN names map onto pack names.

    ``fields`` maps inputData names to field names, ``tables`` decision names
    to table ids, and ``outputs`` (decision name, DMN output name) to output
    names, so that a TCK runner can address inputs and results by their DMN
    names. ``pack`` is plain data for the caller to write or load.
    """

    pack: dict[str, Any]
    fields: Mapping[str, str]
    tables: Mapping[str, str]
    outputs: Mapping[tuple[str, str], str]


def import_dmn(path: str | os.PathLike) -> dict[str, Any]:
    """The decision tables of a DMN 1.3-1.5 model as pack data (a plain dict).

    Raises PackError for a file that is not XML or not a DMN 1.3-1.5 model,
    and ErrorList holding every unsupported construct, each with its place.
    The result still needs ``packs.load_pack_data`` (or writing and loading)
    to be validated and compiled.
    """
    return read_model(path).pack


def read_model(path: str | os.PathLike, display: str | None = None) -> DmnModel:
    """Like ``import_dmn``, keeping the DMN-name -> pack-name maps."""
    document = read_xml(path, display)
    return _Importer(document, Path(path).name).run()


def _local(element: Any) -> str:
    return etree.QName(element).localname


def _yaml_value(value: Any) -> Any:
    """A parsed FEEL literal as a plain YAML value (exact decimals as int or float)."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(str(value))
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _type_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, datetime.date):
        return "date"
    return "text"


class _Importer:
    """One pass over a model, collecting every problem before raising."""

    def __init__(self, document: XmlDocument, file_name: str) -> None:
        self.doc = document
        self.file_name = file_name
        self.errors: list[StoreopsError] = []
        root = document.root
        self.ns = etree.QName(root).namespace or ""
        self.items: dict[str, Any] = {}
        self.inputs_by_name: dict[str, tuple[str, str]] = {}  # DMN name -> (field, type)
        self.decision_names: dict[str, str] = {}  # decision id -> name, for messages
        self.refused_inputs: set[str] = set()  # inputData names reported as unsupported
        self.table_ids: dict[str, str] = {}  # decision name -> table id
        self.output_names: dict[tuple[str, str], str] = {}  # (decision, output) -> name

    # -- helpers ----------------------------------------------------------------------------

    def q(self, local: str) -> str:
        return f"{{{self.ns}}}{local}"

    def children(self, element: Any, local: str) -> list[Any]:
        return element.findall(self.q(local))

    def child(self, element: Any, local: str) -> Any | None:
        return element.find(self.q(local))

    def text_of(self, element: Any | None) -> str | None:
        """The text of ``element``'s ``<text>`` child, or None."""
        if element is None:
            return None
        text = self.child(element, "text")
        return None if text is None else (text.text or "")

    def describe(self, element: Any, kind: str | None = None) -> str:
        kind = kind or _local(element)
        name = element.get("name")
        ident = element.get("id")
        line = self.doc.locate(element).line
        parts = [f"id {ident}"] if ident else []
        parts.append(f"line {line}")
        named = f" '{name}'" if name else ""
        return f"{kind}{named} ({', '.join(parts)})"

    def error(self, message: str, element: Any, at: Location | None = None) -> None:
        self.errors.append(PackError(message, at or self.doc.locate(element)))

    def type_ref(self, name: str | None, element: Any, what: str) -> str | None:
        """A DMN typeRef as a pack type; None (and an error) when it is not a simple type."""
        if name is None:
            self.error(f"{what} has no typeRef; storeops needs number, string, boolean or "
                       "date", element)
            return None
        resolved = self.resolve_type(name)
        if resolved is None:
            self.error(f"{what} has type '{name}', which is not number, string, boolean or "
                       "date (structured, collection and other types are not imported)",
                       element)
        return resolved

    def resolve_type(self, name: str, depth: int = 0) -> str | None:
        bare = name.split(":", 1)[1] if name.lower().startswith("feel:") else name
        if bare in _TYPES:
            return _TYPES[bare]
        item = self.items.get(name)
        if item is None or depth > 10 or item.get("isCollection") == "true":
            return None
        if self.children(item, "itemComponent") or any(
            self.child(item, constraint) is not None
            for constraint in ("allowedValues", "typeConstraint", "functionItem")
        ):
            return None  # structures and constrained types are not imported
        ref = self.child(item, "typeRef")
        if ref is None or not (ref.text or "").strip():
            return None
        return self.resolve_type(ref.text.strip(), depth + 1)

    # -- the model --------------------------------------------------------------------------

    def run(self) -> DmnModel:
        root = self.doc.root
        if self.ns not in _MODEL_NAMESPACES or _local(root) != "definitions":
            expected = ", ".join(sorted(_MODEL_NAMESPACES))
            what = (f"namespace '{self.ns}'" if self.ns else "no namespace")
            raise PackError(f"not a DMN 1.3, 1.4 or 1.5 model: <{_local(root)}> in {what} "
                            f"(expected <definitions> in one of {expected})",
                            self.doc.locate(root))
        language = root.get("expressionLanguage")
        if language and language not in _FEEL_LANGUAGES:
            self.error(f"the model's expression language is '{language}', not FEEL", root)
        decisions, input_data = [], []
        for element in root:
            if not isinstance(element.tag, str):
                continue
            local = _local(element)
            if etree.QName(element).namespace != self.ns:
                continue  # vendor extensions and the diagram (DMNDI) are not logic
            if local == "itemDefinition":
                if element.get("name"):
                    self.items[element.get("name")] = element
            elif local == "inputData":
                input_data.append(element)
            elif local == "decision":
                decisions.append(element)
            elif local == "businessKnowledgeModel":
                self.error(f"{self.describe(element, 'business knowledge model')}: only "
                           "decision tables over input data are imported", element)
            elif local == "decisionService":
                self.error(f"{self.describe(element, 'decision service')}: only decision "
                           "tables over input data are imported", element)
            elif local == "import":
                self.error(f"{self.describe(element, 'import')}: models that import other "
                           "models are not supported", element)
            elif local not in _DOCUMENTATION:
                self.error(f"{self.describe(element)}: element <{local}> is not supported",
                           element)

        self.decision_names = {d.get("id"): d.get("name") for d in decisions if d.get("id")}
        fields = self.fields(input_data)
        tables = []
        table_ids: set[str] = set()
        rule_ids: set[str] = set()
        for decision in decisions:
            table = self.decision(decision, table_ids, rule_ids)
            if table is not None:
                tables.append(table)
        if not decisions and not self.errors:
            self.error("the model has no decisions", root)
        if self.errors:
            raise ErrorList(self.errors)

        name = (root.get("name") or "").strip() or Path(self.file_name).stem
        subject = _unique(SUBJECT, {f["name"] for f in fields})
        pack_fields = [{
            "name": subject, "type": "text", "required": False,
            "note": "added by the DMN import: names the case in the trail; facts may omit it",
        }, *fields]
        pack = {
            "pack": {
                "id": _pack_id(name),
                "version": "1",
                "title": {"zh": name, "en": name},
                "source": {"document": self.file_name, "title": name},
                "subject": subject,
            },
            "fields": pack_fields,
            "tables": tables,
        }
        return DmnModel(
            pack=pack,
            fields=types.MappingProxyType(
                {name: f for name, (f, _) in self.inputs_by_name.items()}),
            tables=types.MappingProxyType(self.table_ids),
            outputs=types.MappingProxyType(self.output_names),
        )

    def fields(self, input_data: list[Any]) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        taken: set[str] = set()
        for element in input_data:
            name = element.get("name")
            if not name:
                self.error(f"{self.describe(element, 'inputData')} has no name", element)
                continue
            if name in self.inputs_by_name:
                self.error(f"{self.describe(element, 'inputData')}: a second input data "
                           "element with this name", element)
                continue
            variable = self.child(element, "variable")
            kind = self.type_ref(None if variable is None else variable.get("typeRef"),
                                 element, self.describe(element, "inputData"))
            if kind is None:
                self.refused_inputs.add(name)
                continue
            field_name = _unique(sanitise_name(name, "f"), taken)
            self.inputs_by_name[name] = (field_name, kind)
            entry: dict[str, Any] = {"name": field_name, "type": kind}
            label = (element.get("label") or "").strip() or name
            if label != field_name:
                entry["label"] = {"zh": label, "en": label}
            fields.append(entry)
        return fields

    def decision(self, decision: Any, table_ids: set[str],
                 rule_ids: set[str]) -> dict[str, Any] | None:
        name = decision.get("name")
        where = self.describe(decision, "decision")
        if not name:
            self.error(f"{where} has no name", decision)
            return None
        if name in self.table_ids:
            self.error(f"{where}: a second decision with this name", decision)
            return None
        refused = False
        for requirement in self.children(decision, "informationRequirement"):
            required = self.child(requirement, "requiredDecision")
            if required is not None:
                href = (required.get("href") or "?").lstrip("#")
                named = self.decision_names.get(href, href)
                self.error(f"{where} requires decision '{named}'; only decisions over input "
                           "data are imported", requirement)
                refused = True
        for requirement in self.children(decision, "knowledgeRequirement"):
            self.error(f"{where} requires a business knowledge model; only decision "
                       "tables over input data are imported", requirement)
            refused = True
        logic = [c for c in decision if isinstance(c.tag, str)
                 and etree.QName(c).namespace == self.ns
                 and (_local(c) in _EXPRESSION_KINDS or _local(c) == "decisionTable")]
        if not logic:
            self.error(f"{where} has no decision table; only decision tables are imported",
                       decision)
            return None
        if _local(logic[0]) != "decisionTable":
            kind = _EXPRESSION_KINDS[_local(logic[0])]
            self.error(f"{where} is {kind}; only decision tables are imported", decision)
            return None
        if refused:
            return None
        table = logic[0]
        variable = self.child(decision, "variable")
        variable_name = (variable.get("name") if variable is not None else None) or name
        table_id = _unique(sanitise_name(name, "t"), table_ids)
        self.table_ids[name] = table_id
        return self.table(decision, table, table_id, variable_name, rule_ids)

    def table(self, decision: Any, table: Any, table_id: str, variable_name: str,
              rule_ids: set[str]) -> dict[str, Any] | None:
        name = decision.get("name")
        where = self.describe(decision, "decision")
        before = len(self.errors)
        policy_text = (table.get("hitPolicy") or "UNIQUE").strip()
        policy = _HIT_POLICIES.get(policy_text)
        if policy is None:
            self.error(f"{where}: unknown hit policy '{policy_text}'", table)
        aggregation = None
        if table.get("aggregation"):
            aggregation = _AGGREGATIONS.get(table.get("aggregation").strip())
            if aggregation is None:
                self.error(f"{where}: unknown aggregation '{table.get('aggregation')}'", table)
            elif policy != "collect":
                self.error(f"{where}: aggregation {table.get('aggregation')} needs hit policy "
                           "COLLECT", table)
        language = table.get("expressionLanguage")
        if language and language not in _FEEL_LANGUAGES:
            self.error(f"{where}: expression language '{language}' is not FEEL", table)

        inputs, input_fields = self.table_inputs(table, where)
        outputs = self.table_outputs(table, where, variable_name, name)
        if aggregation and len(outputs) != 1:
            self.error(f"{where}: COLLECT {table.get('aggregation')} needs exactly one "
                       "output", table)
        if policy in ("priority", "output_order") and not any("values" in o for o in outputs):
            self.error(f"{where}: hit policy {policy_text} needs outputValues on an output "
                       "(they give the priority order)", table)
        rules = self.rules(table, input_fields, outputs, rule_ids)
        self.defaults(table, outputs)
        if len(self.errors) > before:
            return None

        entry: dict[str, Any] = {"id": table_id}
        title = (decision.get("label") or "").strip() or name
        if title != table_id:
            entry["title"] = {"zh": title, "en": title}
        note = self.note(decision)
        if note:
            entry["note"] = note
        entry["hit_policy"] = policy
        if aggregation:
            entry["aggregation"] = aggregation
        entry["inputs"] = inputs
        entry["outputs"] = outputs
        entry["rules"] = rules
        return entry

    def note(self, decision: Any) -> str | None:
        description = self.child(decision, "description")
        if description is not None and (description.text or "").strip():
            return description.text.strip()[:MAX_NOTE]
        return None

    def defaults(self, table: Any, outputs: list[dict[str, Any]]) -> None:
        """defaultOutputEntry -> the output's ``default`` (a FEEL literal, else refused)."""
        for element, output in zip(self.children(table, "output"), outputs, strict=False):
            entry = self.child(element, "defaultOutputEntry")
            text = self.text_of(entry)
            if text is None or not text.strip():
                continue
            try:
                output["default"] = _yaml_value(parse_output(text.strip()))
            except ExpressionError as exc:
                self.error(f"output '{output['name']}': unsupported FEEL in its "
                           f"defaultOutputEntry: {getattr(exc, 'detail', exc)}", entry)

    def table_inputs(self, table: Any, where: str) -> tuple[list[dict], list[tuple[str, str]]]:
        inputs: list[dict[str, Any]] = []
        fields: list[tuple[str, str]] = []
        for element in self.children(table, "input"):
            expression = self.child(element, "inputExpression")
            text = (self.text_of(expression) or "").strip()
            ident = element.get("id") or "?"
            line = self.doc.locate(element).line
            if expression is None or not text:
                self.error(f"{where}: input {ident} (line {line}) has no input expression",
                           element)
                continue
            language = expression.get("expressionLanguage")
            if language and language not in _FEEL_LANGUAGES:
                self.error(f"{where}: input {ident} (line {line}) is in expression language "
                           f"'{language}', not FEEL", expression)
                continue
            if text in self.refused_inputs:
                continue  # the inputData itself is reported
            if text not in self.inputs_by_name:
                self.error(f"{where}: input expression '{text}' (input {ident}, line {line}) "
                           "is FEEL we do not import; an input must name an inputData",
                           expression)
                continue
            field_name, kind = self.inputs_by_name[text]
            declared = expression.get("typeRef")
            if declared is not None and self.resolve_type(declared) not in (None, kind):
                self.error(f"{where}: input {ident} (line {line}) has typeRef '{declared}' "
                           f"but input data '{text}' is {kind}", expression)
                continue
            entry: dict[str, Any] = {"label": (element.get("label") or "").strip() or text,
                                     "expression": field_name}
            values = self.enumeration(self.child(element, "inputValues"), where, kind)
            if values:
                entry["values"] = values
            inputs.append(entry)
            fields.append((field_name, kind))
        return inputs, fields

    def table_outputs(self, table: Any, where: str, variable_name: str,
                      decision_name: str) -> list[dict[str, Any]]:
        elements = self.children(table, "output")
        if not elements:
            self.error(f"{where}: the decision table has no output", table)
        outputs: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        for k, element in enumerate(elements):
            raw_name = (element.get("name") or "").strip()
            ident = element.get("id") or "?"
            line = self.doc.locate(element).line
            if not raw_name:
                if len(elements) > 1:
                    self.error(f"{where}: output {ident} (line {line}) has no name; a table "
                               "with several outputs needs names", element)
                    continue
                raw_name = variable_name
            name = sanitise_name(raw_name, "o")
            if name in names:
                self.error(f"{where}: outputs '{names[name]}' and '{raw_name}' both become "
                           f"'{name}' as pack names", element)
                continue
            names[name] = raw_name
            self.output_names[(decision_name, raw_name)] = name
            entry: dict[str, Any] = {"name": name}
            label = (element.get("label") or "").strip() or raw_name
            if label != name:
                entry["label"] = label
            kind = None
            type_name = element.get("typeRef")
            if type_name is None and len(elements) == 1 and table.get("typeRef"):
                type_name = table.get("typeRef")
            if type_name is not None:
                kind = self.resolve_type(type_name)
            if kind is None:
                kind = self.infer_output_type(table, k, element, where)
            if kind is not None:
                entry["type"] = kind
            values = self.enumeration(self.child(element, "outputValues"), where, kind)
            if values:
                entry["values"] = values
            outputs.append(entry)
        return outputs

    def infer_output_type(self, table: Any, k: int, element: Any, where: str) -> str | None:
        """The type of an output without a simple typeRef: that of its literal entries."""
        kinds = set()
        for rule in self.children(table, "rule"):
            entries = self.children(rule, "outputEntry")
            if k < len(entries):
                with contextlib.suppress(ExpressionError):  # reported with its rule
                    kinds.add(_type_of(parse_output(self.text_of(entries[k]) or "")))
        kinds.discard(None)
        if len(kinds) > 1:
            self.error(f"{where}: output {element.get('id') or '?'} (line "
                       f"{self.doc.locate(element).line}) has entries of several types "
                       f"({', '.join(sorted(kinds))})", element)
            return None
        return kinds.pop() if kinds else None

    def enumeration(self, element: Any | None, where: str, kind: str | None) -> list[Any]:
        """inputValues/outputValues: a comma list of literals, as YAML values."""
        text = self.text_of(element)
        if element is None or text is None or not text.strip():
            return []
        try:
            values = parse_enumeration(text)
        except ExpressionError as exc:
            at = self.doc.locate_text(self.child(element, "text"), exc.offset)
            self.error(f"{where}: {_local(element)} (line {at.line}): {exc.detail}; only "
                       "comma lists of literals are imported", element, at)
            return []
        wrong = [v for v in values if kind is not None and _type_of(v) != kind]
        if wrong:
            self.error(f"{where}: {_local(element)} (line {self.doc.locate(element).line}) "
                       f"holds {_feel_literal(wrong[0], None)}, which is not {kind}", element)
            return []
        return [_yaml_value(v) for v in values]

    def rules(self, table: Any, input_fields: list[tuple[str, str]],
              outputs: list[dict[str, Any]], rule_ids: set[str]) -> list[dict[str, Any]]:
        rules = []
        declared_inputs = len(self.children(table, "input"))
        declared_outputs = len(self.children(table, "output"))
        schema = dict(input_fields)
        for n, element in enumerate(self.children(table, "rule"), start=1):
            raw_id = element.get("id")
            rule_id = _unique(_rule_id(raw_id) if raw_id else f"r{n}", rule_ids)
            line = self.doc.locate(element).line
            shown = raw_id or f"#{n}"
            entries = self.children(element, "inputEntry")
            results = self.children(element, "outputEntry")
            if len(entries) != declared_inputs or len(results) != declared_outputs:
                self.error(f"rule {shown} (line {line}) has {len(entries)} input and "
                           f"{len(results)} output entries for {declared_inputs} input and "
                           f"{declared_outputs} output columns", element)
                continue
            cells = []
            for j, entry in enumerate(entries):
                cell = self.cell(entry, shown, input_fields[j] if j < len(input_fields)
                                 else None, schema)
                cells.append(cell)
            values = []
            for k, entry in enumerate(results):
                values.append(self.output_value(entry, shown, outputs[k] if k < len(outputs)
                                                else None))
            rules.append({"id": rule_id, "cells": cells, "result": values})
        if not self.children(table, "rule"):
            self.error("the decision table has no rules", table)
        return rules

    def cell(self, entry: Any, rule: str, column: tuple[str, str] | None,
             schema: Mapping[str, str]) -> str:
        raw = self.text_of(entry) or ""
        text = raw.strip()
        ident = entry.get("id") or "?"
        language = entry.get("expressionLanguage")
        if language and language not in _FEEL_LANGUAGES:
            self.error(f"rule {rule}: input entry {ident} is in expression language "
                       f"'{language}', not FEEL", entry)
            return text
        try:
            condition = translate_cell(text, column[0] if column else "x")
            if column is not None:
                compile_expression(condition, schema, expect="boolean")
        except ExpressionError as exc:
            offset = getattr(exc, "offset", None)
            text_element = self.child(entry, "text")
            at = (self.doc.locate_text(text_element, offset)
                  if offset is not None and text_element is not None
                  else self.doc.locate(entry))
            if offset is not None:
                message = (f"rule {rule}: unsupported FEEL in input entry {ident} (line "
                           f"{at.line}): {exc.detail}; {SUPPORTED}")
            else:
                message = (f"rule {rule}: input entry {ident} (line {at.line}) does not fit "
                           f"input '{column[0] if column else '?'}': {exc.message}")
            self.error(message, entry, at)
        return text

    def output_value(self, entry: Any, rule: str, output: dict[str, Any] | None) -> Any:
        ident = entry.get("id") or "?"
        try:
            value = parse_output(self.text_of(entry) or "")
        except ExpressionError as exc:
            text_element = self.child(entry, "text")
            at = (self.doc.locate_text(text_element, exc.offset) if text_element is not None
                  else self.doc.locate(entry))
            self.error(f"rule {rule}: unsupported FEEL in output entry {ident} (line "
                       f"{at.line}): {exc.detail}; FEEL literals only", entry, at)
            return None
        kind = output.get("type") if output else None
        if value is not None and kind is not None and _type_of(value) != kind:
            self.error(f"rule {rule}: output entry {ident} (line "
                       f"{self.doc.locate(entry).line}) is {_type_of(value)}, but output "
                       f"'{output['name']}' is {kind}", entry)
        return _yaml_value(value)


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------

_PLAIN_TEXT = re.compile(r"[^\W\d_][\w ./()-]*")
_YAML_WORDS = frozenset(("true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"))


def write_pack_yaml(pack: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write pack data as a readable YAML pack, atomically.

    Keys keep the order pack, fields, parameters, kpis, actions, tables; short
    lists and mappings are written inline, as in docs/packs.md. Text that a
    YAML 1.2 reader could take for a number, boolean or null is quoted, and
    the text is read back before it is written, so the file holds exactly
    ``pack``. The first line points editors at the installed JSON Schema.
    """
    import yaml

    from . import yamlsafe

    order = ["pack", "fields", "parameters", "kpis", "actions", "tables"]
    data = {key: pack[key] for key in order if key in pack}
    data.update({key: value for key, value in pack.items() if key not in data})

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        plain = (_PLAIN_TEXT.fullmatch(value) is not None and value.lower() not in _YAML_WORDS
                 and not value.endswith(" "))
        return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                       style=None if plain else "'")

    def decimal(dumper: yaml.SafeDumper, value: Decimal) -> Any:
        return dumper.represent_data(_yaml_value(value))

    def sequence(dumper: yaml.SafeDumper, value: list) -> Any:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                         flow_style=_inline(value, value))

    def mapping(dumper: yaml.SafeDumper, value: dict) -> Any:
        return dumper.represent_mapping("tag:yaml.org,2002:map", value,
                                        flow_style=_inline(value.values(), value))

    _Dumper.add_representer(str, text)
    _Dumper.add_representer(Decimal, decimal)
    _Dumper.add_representer(list, sequence)
    _Dumper.add_representer(dict, mapping)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=120, indent=2)
    target = Path(path)
    schema = Path(__file__).with_name("schemas") / "pack.schema.json"
    try:
        schema_ref = os.path.relpath(schema, target.resolve().parent)
    except ValueError:  # another drive on Windows
        schema_ref = str(schema)
    header = f"# yaml-language-server: $schema={Path(schema_ref).as_posix()}\n"
    text_out = header + body
    # The file must read back as exactly the data (YAML 1.2 core, as packs are read).
    if yamlsafe.loads(text_out, display=str(path)).data != _plain(data):
        raise PackError("internal: the pack YAML does not read back as written",
                        Location(str(path), 1, 1))
    with atomic_path(target) as temp:
        temp.write_text(text_out, encoding="utf-8")


def _inline(items: Iterable[Any], whole: Any) -> bool:
    """Short collections of scalars are written on one line, as in docs/packs.md."""
    scalars = all(v is None or isinstance(v, (str, int, float, Decimal)) for v in items)
    return scalars and len(repr(whole)) <= 90


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return _yaml_value(value)


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------

_SHAPE_W, _SHAPE_H, _GAP = 180, 80, 40


def _feel_string(value: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _feel_number(value: Any) -> str:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = format(number, "f")
    return "0" if text == "-0" else text


def _feel_literal(value: Any, kind: str | None) -> str:
    """A YAML value as a FEEL literal of the column's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return _feel_number(value)
    if isinstance(value, datetime.date):
        return f'date("{value.isoformat()}")'
    if kind == "date":
        return f'date("{value}")'
    return _feel_string(str(value))


def _cell_feel(cell: Any) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, (int, float, Decimal)):
        return _feel_number(cell)
    return str(cell)


class _Ids:
    """Document-unique XML ids (xsd:ID), readable and deterministic."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def make(self, wanted: str) -> str:
        text = re.sub(r"[^A-Za-z0-9_.-]", "_", wanted)
        if not (text[:1].isalpha() or text[:1] == "_"):
            text = f"_{text}"
        candidate, n = text, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{text}_{n}"
        self.taken.add(candidate)
        return candidate


def export_dmn(pack: Mapping[str, Any] | str | os.PathLike, path: str | os.PathLike, *,
               version: str = "1.3") -> None:
    """Write a pack's DMN-style tables as a DMN model (1.3 unless told 1.4 or 1.5), atomically.

    ``pack`` is pack data or the path of a pack file; it is validated first
    (``packs.load_pack``/``load_pack_data``). Each table with ``inputs`` and
    ``outputs`` becomes a decision with a decision table over one inputData
    per field; a diagram places decisions above their inputs. Refused, with
    the table's name: tables written with ``when:`` conditions only, tables read
    from spreadsheets, inputs whose expression is not a field name, and rows
    with ``when:``, ``then:`` or ``priority:``, none of which DMN can hold.
    """
    from . import packs

    document = None
    if isinstance(pack, Mapping):
        data = dict(pack)
        packs.load_pack_data(data, display="<pack>")
    else:
        packs.load_pack(pack)
        document = packs.pack_document(pack)
        data = document.data
    if version not in EXPORT_VERSIONS:
        raise PackError(f"DMN version {version!r} cannot be written; expected one of "
                        f"{', '.join(EXPORT_VERSIONS)}")
    root = _Exporter(data, document, version).build()
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    with atomic_path(path) as temp:
        temp.write_bytes(payload)


class _Exporter:
    def __init__(self, data: Mapping[str, Any], document: Any | None,
                 version: str = "1.3") -> None:
        self.model_ns, self.dmndi_ns = EXPORT_VERSIONS[version]
        self.data = data
        self.document = document  # a yamlsafe.Document when the pack came from a file
        self.ids = _Ids()
        self.errors: list[StoreopsError] = []
        self.fields = {f["name"]: f for f in data.get("fields", [])}

    def m(self, local: str) -> str:
        return f"{{{self.model_ns}}}{local}"

    def refuse(self, message: str, path: tuple = ()) -> None:
        where = (self.document.locate(path) if self.document is not None
                 else Location("<pack>", 1, 1))
        self.errors.append(PackError(message, where))

    def field_of(self, expression: str) -> str | None:
        text = expression.strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        return text if text in self.fields else None

    def input_name(self, field_name: str) -> str:
        """The inputData name for a field: its label when that sanitises back to the field."""
        entry = self.fields[field_name]
        label = (entry.get("label") or {}).get("en")
        return label if label and sanitise_name(label, "f") == field_name else field_name

    def build(self) -> Any:
        meta = self.data.get("pack", {})
        title = meta.get("title", {}).get("en") or meta.get("id", "pack")
        name = (meta.get("source") or {}).get("title") or title
        tables = list(self.data.get("tables", []))
        dmn_tables = []
        for t, table in enumerate(tables):
            if "sheet" in table:
                self.refuse(f"table '{table['id']}' is read from a spreadsheet; DMN export "
                            "writes tables written in the pack", ("tables", t, "sheet"))
            elif not table.get("inputs") or not table.get("outputs"):
                self.refuse(f"table '{table['id']}' is written with when: conditions, not DMN "
                            "inputs and outputs; it cannot be exported as a decision table",
                            ("tables", t))
            else:
                dmn_tables.append((t, table))
        if not tables:
            self.refuse("the pack has no tables")
        used: list[str] = []
        for t, table in dmn_tables:
            for j, column in enumerate(table["inputs"]):
                field_name = self.field_of(column["expression"])
                if field_name is None:
                    self.refuse(f"table '{table['id']}' input {j + 1}: expression "
                                f"'{column['expression']}' is not a field name; DMN export "
                                "writes inputs that read one field",
                                ("tables", t, "inputs", j, "expression"))
                elif field_name not in used:
                    used.append(field_name)
            for r, rule in enumerate(table.get("rules", [])):
                extra = [k for k in ("when", "then", "priority", "kpi") if k in rule]
                if extra:
                    self.refuse(f"table '{table['id']}' rule '{rule['id']}' has "
                                f"{', '.join(extra)}, which a DMN decision table cannot hold",
                                ("tables", t, "rules", r, extra[0]))
                if "cells" not in rule or "result" not in rule:
                    self.refuse(f"table '{table['id']}' rule '{rule['id']}' needs cells and "
                                "result to be a DMN rule", ("tables", t, "rules", r))
        if self.errors:
            raise ErrorList(self.errors)
        # Every field is exported in pack order (an import keeps every inputData, in order),
        # except a subject no table reads: it names cases in the trail and is not DMN input.
        subject = meta.get("subject")
        exported = [f for f in self.fields if f in used or f != subject]

        nsmap = {None: self.model_ns, "dmndi": self.dmndi_ns, "dc": _DC, "di": _DI}
        root = etree.Element(self.m("definitions"), nsmap=nsmap)
        root.set("id", self.ids.make(f"definitions_{meta.get('id', 'pack')}"))
        root.set("name", name)
        root.set("namespace", f"urn:storeops:pack:{meta.get('id', 'pack')}")
        root.set("exporter", "storeops")
        input_ids: dict[str, str] = {}
        decision_elements = []
        for _, table in dmn_tables:
            decision_elements.append(self.decision(root, table, input_ids))
        input_elements = []
        for field_name in exported:
            input_elements.append(self.input_data(root, field_name, input_ids))
        self.diagram(root, decision_elements, input_elements)
        return root

    def input_data(self, root: Any, field_name: str, input_ids: dict[str, str]) -> Any:
        entry = self.fields[field_name]
        element = etree.SubElement(root, self.m("inputData"))
        element.set("id", input_ids.setdefault(field_name,
                                               self.ids.make(f"inputData_{field_name}")))
        element.set("name", self.input_name(field_name))
        label = (entry.get("label") or {}).get("en")
        if label and self.input_name(field_name) != label:
            element.set("label", label)
        variable = etree.SubElement(element, self.m("variable"))
        variable.set("id", self.ids.make(f"{element.get('id')}_variable"))
        variable.set("name", element.get("name"))
        variable.set("typeRef", _DMN_TYPES[entry["type"]])
        return element

    def decision(self, root: Any, table: Mapping[str, Any], input_ids: dict[str, str]) -> Any:
        title = (table.get("title") or {}).get("en")
        name = title if title and sanitise_name(title, "t") == table["id"] else table["id"]
        decision = etree.SubElement(root, self.m("decision"))
        decision.set("id", self.ids.make(f"decision_{table['id']}"))
        decision.set("name", name)
        if title and title != name:
            decision.set("label", title)
        if table.get("note"):
            etree.SubElement(decision, self.m("description")).text = table["note"]
        outputs = table["outputs"]
        policy = table["hit_policy"]
        single = len(outputs) == 1 and (policy in ("unique", "any", "priority", "first")
                                        or table.get("aggregation"))
        variable = etree.SubElement(decision, self.m("variable"))
        variable.set("id", self.ids.make(f"{decision.get('id')}_variable"))
        variable.set("name", name)
        if single:
            kind = "number" if table.get("aggregation") else self.output_type(table, 0)
            if kind is not None:
                variable.set("typeRef", _DMN_TYPES[kind])
        seen: list[str] = []
        for column in table["inputs"]:
            field_name = self.field_of(column["expression"])
            if field_name in seen:
                continue
            seen.append(field_name)
            input_id = input_ids.setdefault(field_name, self.ids.make(f"inputData_{field_name}"))
            requirement = etree.SubElement(decision, self.m("informationRequirement"))
            requirement.set("id", self.ids.make(f"{decision.get('id')}_requires_{field_name}"))
            etree.SubElement(requirement, self.m("requiredInput")).set("href", f"#{input_id}")

        element = etree.SubElement(decision, self.m("decisionTable"))
        element.set("id", self.ids.make(f"decisionTable_{table['id']}"))
        element.set("hitPolicy", {v: k for k, v in _HIT_POLICIES.items()}[policy])
        if table.get("aggregation"):
            element.set("aggregation", table["aggregation"].upper())
        element.set("outputLabel", name)
        for j, column in enumerate(table["inputs"]):
            field_name = self.field_of(column["expression"])
            kind = self.fields[field_name]["type"]
            clause = etree.SubElement(element, self.m("input"))
            clause.set("id", self.ids.make(f"{element.get('id')}_input{j + 1}"))
            clause.set("label", column.get("label") or self.input_name(field_name))
            expression = etree.SubElement(clause, self.m("inputExpression"))
            expression.set("id", self.ids.make(f"{clause.get('id')}_expression"))
            expression.set("typeRef", _DMN_TYPES[kind])
            etree.SubElement(expression, self.m("text")).text = self.input_name(field_name)
            if column.get("values"):
                self.literal_list(clause, "inputValues", column["values"], kind)
        for k, column in enumerate(outputs):
            kind = self.output_type(table, k)
            clause = etree.SubElement(element, self.m("output"))
            clause.set("id", self.ids.make(f"{element.get('id')}_output{k + 1}"))
            label = column.get("label")
            if label and sanitise_name(label, "o") == column["name"]:
                clause.set("name", label)
            else:
                clause.set("name", column["name"])
                if label:
                    clause.set("label", label)
            if kind is not None:
                clause.set("typeRef", _DMN_TYPES[kind])
            if column.get("values"):
                self.literal_list(clause, "outputValues", column["values"], kind)
            if "default" in column:
                entry = etree.SubElement(clause, self.m("defaultOutputEntry"))
                entry.set("id", self.ids.make(f"{clause.get('id')}_default"))
                etree.SubElement(entry, self.m("text")).text = _feel_literal(
                    column["default"], kind)
        for rule in table.get("rules", []):
            self.rule(element, table, rule)
        return decision

    def literal_list(self, clause: Any, tag: str, values: list, kind: str | None) -> None:
        """inputValues / outputValues: the allowed values as a comma list of FEEL literals."""
        element = etree.SubElement(clause, self.m(tag))
        element.set("id", self.ids.make(f"{clause.get('id')}_values"))
        etree.SubElement(element, self.m("text")).text = ", ".join(
            _feel_literal(v, kind) for v in values)

    def output_type(self, table: Mapping[str, Any], k: int) -> str | None:
        column = table["outputs"][k]
        if column.get("type"):
            return column["type"]
        kinds = {_type_of(_typed_yaml(r["result"][k])) for r in table.get("rules", [])
                 if k < len(r.get("result", []))}
        kinds.discard(None)
        return kinds.pop() if len(kinds) == 1 else None

    def rule(self, table_element: Any, table: Mapping[str, Any], rule: Mapping[str, Any]) -> None:
        element = etree.SubElement(table_element, self.m("rule"))
        rule_id = self.ids.make(rule["id"])
        element.set("id", rule_id)
        for j, cell in enumerate(rule["cells"]):
            entry = etree.SubElement(element, self.m("inputEntry"))
            entry.set("id", self.ids.make(f"{rule_id}_in{j + 1}"))
            etree.SubElement(entry, self.m("text")).text = _cell_feel(cell)
        for k, value in enumerate(rule["result"]):
            entry = etree.SubElement(element, self.m("outputEntry"))
            entry.set("id", self.ids.make(f"{rule_id}_out{k + 1}"))
            etree.SubElement(entry, self.m("text")).text = _feel_literal(
                value, self.output_type(table, k))

    def diagram(self, root: Any, decisions: list[Any], inputs: list[Any]) -> None:
        """Decisions in a row above, their inputs in a row below, one edge per requirement."""
        di = etree.SubElement(root, f"{{{self.dmndi_ns}}}DMNDI")
        diagram = etree.SubElement(di, f"{{{self.dmndi_ns}}}DMNDiagram")
        diagram.set("id", self.ids.make("diagram"))
        diagram.set("name", root.get("name"))
        width = max(len(decisions), len(inputs), 1) * (_SHAPE_W + _GAP) + 2 * _GAP
        size = etree.SubElement(diagram, f"{{{self.dmndi_ns}}}Size")
        size.set("width", str(width))
        size.set("height", str(2 * _GAP + 3 * _SHAPE_H + 2 * _GAP))
        centres: dict[str, tuple[int, int, int]] = {}

        def shapes(elements: list[Any], y: int) -> None:
            row = len(elements) * (_SHAPE_W + _GAP) - _GAP
            left = (width - row) // 2
            for i, element in enumerate(elements):
                x = left + i * (_SHAPE_W + _GAP)
                shape = etree.SubElement(diagram, f"{{{self.dmndi_ns}}}DMNShape")
                shape.set("id", self.ids.make(f"{element.get('id')}_shape"))
                shape.set("dmnElementRef", element.get("id"))
                bounds = etree.SubElement(shape, f"{{{_DC}}}Bounds")
                for key, value in (("x", x), ("y", y), ("width", _SHAPE_W),
                                   ("height", _SHAPE_H)):
                    bounds.set(key, str(value))
                centres[element.get("id")] = (x + _SHAPE_W // 2, y, y + _SHAPE_H)

        shapes(decisions, _GAP)
        shapes(inputs, _GAP + 2 * _SHAPE_H + _GAP)
        for decision in decisions:
            for requirement in decision.findall(self.m("informationRequirement")):
                href = requirement.find(self.m("requiredInput")).get("href")[1:]
                if href not in centres:
                    continue
                edge = etree.SubElement(diagram, f"{{{self.dmndi_ns}}}DMNEdge")
                edge.set("id", self.ids.make(f"{requirement.get('id')}_edge"))
                edge.set("dmnElementRef", requirement.get("id"))
                x1, top, _ = centres[href]
                x2, _, bottom = centres[decision.get("id")]
                for x, y in ((x1, top), (x2, bottom)):
                    point = etree.SubElement(edge, f"{{{_DI}}}waypoint")
                    point.set("x", str(x))
                    point.set("y", str(y))


def _typed_yaml(value: Any) -> Any:
    """A YAML result value in the types ``_type_of`` knows (numbers as Decimal)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return value

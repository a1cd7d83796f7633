"""DMN import and export: the shared TCK models, our fixtures, refusals with places, round trips."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from storeops.engine import yamlsafe
from storeops.engine.dmn import (
    DMN15,
    export_dmn,
    import_dmn,
    read_model,
    sanitise_name,
    write_pack_yaml,
)
from storeops.engine.errors import ErrorList, PackError
from storeops.engine.packs import load_pack, load_pack_data

DATA = Path(__file__).parent / "data" / "dmn"
TCK = Path("/work/shared/dmn-tck")
TCK_MODELS = sorted(TCK.glob("*/*.dmn")) if TCK.is_dir() else []
needs_tck = pytest.mark.skipif(not TCK.is_dir(), reason="the shared DMN TCK folder is absent")
FIXTURES = [DATA / "features" / "features.dmn", DATA / "names.dmn"]
M = f"{{{DMN15}}}"


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line holding ``needle`` (so tests survive edits)."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def line_of_id(path: Path, ident: str) -> int:
    return line_of(path, f'id="{ident}"')


def errors_of(path: Path) -> list[PackError]:
    with pytest.raises(ErrorList) as info:
        import_dmn(path)
    return list(info.value.errors)


# -- the TCK models ----------------------------------------------------------------------------

@needs_tck
@pytest.mark.parametrize("model", TCK_MODELS, ids=lambda p: p.parent.name)
def test_every_tck_model_imports_and_loads_as_a_pack(model):
    data = import_dmn(model)
    pack = load_pack_data(data, display=model.name)
    assert pack.subject == "case_id"
    assert [t.id for t in pack.tables] == [t["id"] for t in data["tables"]]
    assert all(t.inputs and t.outputs for t in pack.tables)


@needs_tck
def test_tck_0004_imports_to_the_known_pack():
    data = import_dmn(TCK / "0004-simpletable-U" / "0004-simpletable-U.dmn")
    assert data == {
        "pack": {
            "id": "dmn_0004_simpletable_u",
            "version": "1",
            "title": {"zh": "0004-simpletable-U", "en": "0004-simpletable-U"},
            "source": {"document": "0004-simpletable-U.dmn", "title": "0004-simpletable-U"},
            "subject": "case_id",
        },
        "fields": [
            {"name": "case_id", "type": "text", "required": False,
             "note": "added by the DMN import: names the case in the trail; facts may omit it"},
            {"name": "Age", "type": "number"},
            {"name": "RiskCategory", "type": "text"},
            {"name": "isAffordable", "type": "boolean"},
        ],
        "tables": [{
            "id": "Approval_Status",
            "title": {"zh": "Approval Status", "en": "Approval Status"},
            "hit_policy": "unique",
            "inputs": [
                {"label": "Age", "expression": "Age"},
                {"label": "RiskCategory", "expression": "RiskCategory",
                 "values": ["High", "Low", "Medium"]},
                {"label": "isAffordable", "expression": "isAffordable"},
            ],
            "outputs": [{"name": "Approval_Status", "label": "Approval Status", "type": "text",
                         "values": ["Approved", "Declined"]}],
            "rules": [
                {"id": "r_7f03803d-2636-40ab-8346-7fd7f38ab695",
                 "cells": [">=18", '"Medium","Low"', "true"], "result": ["Approved"]},
                {"id": "r_887acecd-40fc-42da-9443-eeba476f5516",
                 "cells": ["<18", '"Medium","Low"', "true"], "result": ["Declined"]},
                {"id": "r_18058414-a571-4375-991f-77b9ea7fc699",
                 "cells": ["-", '"High"', "true"], "result": ["Declined"]},
                {"id": "r_ede3e62a-43f3-49d3-90a4-ffaf1f698f54",
                 "cells": ["-", "-", "false"], "result": ["Declined"]},
            ],
        }],
    }


@needs_tck
def test_tck_hit_policies_aggregations_and_numbers_map_over():
    def table(folder):
        return import_dmn(next((TCK / folder).glob("*.dmn")))["tables"][0]

    assert table("0109-ruleOrder-hitpolicy")["hit_policy"] == "rule_order"
    assert table("0118-multi-priority-hitpolicy")["outputs"][0] == {
        "name": "Approved_Declined", "label": "Approved/Declined", "type": "text",
        "values": ["Approved", "Declined"]}
    smallest = table("0114-min-collect-hitpolicy")
    assert (smallest["hit_policy"], smallest["aggregation"]) == ("collect", "min")
    assert smallest["outputs"] == [{"name": "CarInsurance", "type": "number"}]
    assert [r["result"] for r in smallest["rules"]] == [[98.83], [150.21], [205.43], [64.32]]
    assert table("0116-count-collect-hitpolicy")["aggregation"] == "count"
    assert [r["result"] for r in table("0115-sum-collect-hitpolicy")["rules"]] == [
        [100], [200], [300], [500]]


@needs_tck
def test_default_output_entries_are_imported_and_applied():
    from storeops.engine.packs import load_pack_data
    from storeops.engine.tables import compile_table

    data = import_dmn(TCK / "0010-multi-output-U" / "0010-multi-output-U.dmn")
    outputs = data["tables"][0]["outputs"]
    assert [(o["name"], o["default"]) for o in outputs] == [
        ("Status", "Declined"), ("Rate", "Standard")]
    pack = load_pack_data(data)
    table = compile_table(pack, pack.tables[0])
    # no rule matches when isAffordable is unknown and the risk is High: DMN gives the defaults
    fact = {"Age": 30, "RiskCategory": "High", "isAffordable": None}
    assert table.evaluate(fact) == {"Status": "Declined", "Rate": "Standard"}
    assert table.evaluate({**fact, "isAffordable": True}) == {"Status": "Declined",
                                                               "Rate": "Standard"}


# -- our fixtures ------------------------------------------------------------------------------

def test_features_model_imports_every_supported_construct():
    model = read_model(DATA / "features" / "features.dmn")
    data = model.pack
    assert data["pack"]["id"] == "store_offers_features"
    assert [(f["name"], f["type"]) for f in data["fields"]] == [
        ("case_id", "text"), ("Customer_Age", "number"), ("Risk_Category", "text"),
        ("Member_Since", "date"), ("Is_VIP", "boolean"), ("Score", "number")]
    assert data["fields"][1]["label"] == {"zh": "Customer Age", "en": "Customer Age"}
    assert model.fields["Customer Age"] == "Customer_Age"
    assert model.tables == {"Discount": "Discount", "Offer": "Offer", "Eligible": "Eligible"}
    assert model.outputs[("Offer", "Offer Name")] == "Offer_Name"
    discount, offer, eligible = data["tables"]
    assert discount["note"] == "The best discount a customer qualifies for."
    assert (discount["hit_policy"], discount["aggregation"]) == ("collect", "max")
    assert [r["id"] for r in discount["rules"]] == ["disc-adult", "r2", "r3", "disc-vip"]
    assert discount["inputs"][1] == {"label": "Risk", "expression": "Risk_Category"}
    assert offer["hit_policy"] == "output_order"
    assert offer["inputs"][1]["values"] == ["Low", "Medium", "High", "O'Neil \"q\""]
    assert offer["outputs"] == [
        {"name": "Offer_Name", "label": "Offer Name", "type": "text",
         "values": ["Gold", "Silver", "Bronze"]},
        {"name": "Priority_Score", "label": "Priority", "type": "number"}]
    assert [(r["cells"], r["result"]) for r in offer["rules"]] == [
        ([']0..10[', 'not("High")', "-"], ["Silver", 2]),
        ([">=10", "-", "-"], ["Gold", 1]),
        (["null", "-", "-"], ["Bronze", 3]),
        (["< -5", "-", "-"], ["Bronze", -1]),
        (["-", '"O\'Neil \\"q\\""', "-"], ["Bronze", 5])]
    assert eligible["outputs"] == [{"name": "Eligible", "type": "boolean", "default": False}]
    assert "note" not in eligible or "default" not in eligible["note"]
    load_pack_data(data, display="features")


def test_names_are_sanitised_deduplicated_and_labelled():
    data = import_dmn(DATA / "names.dmn")
    assert data["pack"]["id"] == "store_discounts_2024"
    # an input named "case id" takes case_id; the added subject moves aside
    assert data["pack"]["subject"] == "case_id_2"
    assert [(f["name"], f.get("label", {}).get("en")) for f in data["fields"]] == [
        ("case_id_2", None), ("Risk_Category", "Risk Category"),
        ("Risk_Category_2", "Risk_Category"), ("f", "年龄"), ("in_", "in"),
        ("case_id", "Case number")]
    table = data["tables"][0]
    assert (table["id"], table["title"]["en"]) == ("Discount", "Discount %")
    assert table["inputs"][0] == {"label": "Risk (A-C)", "expression": "Risk_Category"}
    assert [r["id"] for r in table["rules"]] == ["r1", "r2", "r_123"]
    assert [r["result"] for r in table["rules"]] == [[10], [12.5], [-2.5]]
    load_pack_data(data, display="names")


@pytest.mark.parametrize(("name", "expected"), [
    ("Age", "Age"),
    ("Risk Category", "Risk_Category"),
    ("Approved/Declined", "Approved_Declined"),
    ("  a -- b  ", "a_b"),
    ("_private", "private"),
    ("2nd try", "f_2nd_try"),
    ("年龄", "f"),
    ("not", "not_"),
    ("True", "True_"),
    ("x" * 80, "x" * 64),
])
def test_sanitise_name(name, expected):
    assert sanitise_name(name) == expected
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", expected)


def test_issue_4_a_date_cell_with_only_an_upper_bound_loads(tmp_path):
    # analysis._pick_date searched from ordinal 0, which is no date, and called this impossible
    text = (DATA / "features" / "features.dmn").read_text(encoding="utf-8")
    path = tmp_path / "features.dmn"
    path.write_text(text.replace('[date("1900-01-01")..date("2020-01-01")[',
                                 '&lt; date("2020-01-01")'), encoding="utf-8")
    data = import_dmn(path)
    assert data["tables"][0]["rules"][2]["cells"][2] == '< date("2020-01-01")'
    load_pack_data(data, display="features")


# -- refusals ----------------------------------------------------------------------------------

def test_malformed_xml_is_a_pack_error_with_line_and_column():
    path = DATA / "malformed.dmn"
    with pytest.raises(PackError) as info:
        import_dmn(path)
    exc = info.value
    assert exc.message == ("not well-formed XML: Opening and ending tag mismatch: inputData "
                           "line 3 and inputDta")
    assert exc.location.file.endswith("malformed.dmn")
    assert (exc.location.line, exc.location.col) == (line_of(path, "</inputDta>"), 14)


def test_a_doctype_is_refused_before_any_entity_is_expanded():
    with pytest.raises(PackError) as info:
        import_dmn(DATA / "doctype.dmn")
    assert "a DOCTYPE is not allowed" in info.value.message
    assert info.value.location.line == 2


def test_an_unknown_namespace_is_refused_naming_it():
    with pytest.raises(PackError) as info:
        import_dmn(DATA / "dmn12.dmn")
    assert info.value.message.startswith(
        "not a DMN 1.3, 1.4 or 1.5 model: <definitions> in namespace "
        "'http://www.omg.org/spec/DMN/20180521/MODEL/'")


def test_the_three_model_namespaces_are_accepted(tmp_path):
    text = (DATA / "features" / "features.dmn").read_text(encoding="utf-8")
    for namespace in ("http://www.omg.org/spec/DMN/20191111/MODEL/",
                      "https://www.omg.org/spec/DMN/20211108/MODEL/",
                      "https://www.omg.org/spec/DMN/20230324/MODEL/"):
        path = tmp_path / "features.dmn"
        path.write_text(text.replace("https://www.omg.org/spec/DMN/20211108/MODEL/", namespace),
                        encoding="utf-8")
        assert import_dmn(path) == import_dmn(DATA / "features" / "features.dmn")


def test_missing_file_is_a_pack_error(tmp_path):
    with pytest.raises(PackError, match="no such file"):
        import_dmn(tmp_path / "absent.dmn")


def test_unsupported_feel_is_refused_with_rule_entry_id_and_line():
    path = DATA / "unsupported_cell.dmn"
    bad, typed, output = errors_of(path)
    line = line_of_id(path, "bad_1")
    assert bad.message == (
        f"rule bad_rule: unsupported FEEL in input entry bad_1 (line {line}): name 'Age' "
        "(only literals can be compared with the input); S-FEEL unary tests only (-, <, <=, "
        ">, >=, [a..b], literals, comma lists, not(...))")
    # the column points at 'Age' inside <text>&gt; Age + 1</text> (&gt; counts as written)
    text = path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert (bad.location.line, bad.location.col) == (line, text.index("Age + 1") + 1)
    assert typed.message == (f"rule typed_rule: input entry typed_1 (line "
                             f"{line_of_id(path, 'typed_1')}) does not fit input 'Age': "
                             "cannot compare number with text")
    assert output.message.startswith(
        f"rule typed_rule: unsupported FEEL in output entry typed_o (line "
        f"{line_of_id(path, 'typed_o')}): function call 'upper(...)'")


def test_a_literal_expression_decision_is_refused():
    path = DATA / "literal_expression.dmn"
    (error,) = errors_of(path)
    line = line_of_id(path, "greeting_id")
    assert error.message == (f"decision 'Greeting' (id greeting_id, line {line}) is a literal "
                             "expression; only decision tables are imported")
    assert error.location.line == line


def test_an_input_expression_that_computes_is_refused():
    path = DATA / "computed_input.dmn"
    (error,) = errors_of(path)
    assert error.message == (
        f"decision 'Next Year' (id next_id, line {line_of_id(path, 'next_id')}): input "
        f"expression 'Age + 1' (input next_in1, line {line_of_id(path, 'next_in1')}) is "
        "FEEL we do not import; an input must name an inputData")


def test_every_other_kind_of_logic_is_refused_at_once_in_file_order():
    path = DATA / "other_logic.dmn"
    errors = errors_of(path)
    assert [e.location.line for e in errors] == sorted(e.location.line for e in errors)
    messages = [e.message for e in errors]
    assert messages == [
        f"business knowledge model 'Fee Formula' (id bkm_id, line {line_of(path, 'bkm_id')}): "
        "only decision tables over input data are imported",
        f"decision 'Derived' (id derived_id, line {line_of_id(path, 'derived_id')}) "
        "requires decision 'Base'; only decisions over input data are imported",
        f"decision 'Fee' (id fee_id, line {line_of_id(path, 'fee_id')}) is a context; only "
        "decision tables are imported",
        f"decision 'Fee' (id fee_id, line {line_of_id(path, 'fee_id')}) requires a business "
        "knowledge model; only decision tables over input data are imported",
        f"decision service 'Pricing Service' (id service_id, line "
        f"{line_of(path, 'service_id')}): only decision tables over input data are imported",
        f"inputData 'Person' (id person_id, line {line_of(path, 'person_id')}) has type "
        "'tPerson', which is not number, string, boolean or date (structured, collection and "
        "other types are not imported)",
        f"inputData 'When' (id when_id, line {line_of(path, 'when_id')}) has type 'dateTime', "
        "which is not number, string, boolean or date (structured, collection and other types "
        "are not imported)",
    ]


TEMPLATE = DATA / "template.dmn"


def test_the_template_imports():
    table = import_dmn(TEMPLATE)["tables"][0]
    assert table["inputs"] == [{"label": "Score", "expression": "Score", "values": [1, 2, 3]}]
    assert table["outputs"] == [{"name": "Grade", "type": "text", "values": ["A", "B"]}]


@pytest.mark.parametrize(("old", "new", "message", "place"), [
    ('namespace="http://example.com/tpl"',
     'namespace="http://example.com/tpl" expressionLanguage="urn:juel"',
     "the model's expression language is 'urn:juel', not FEEL", 'id="tpl"'),
    ('hitPolicy="FIRST"', 'hitPolicy="C+"',
     "decision 'Grade' (id grade_id, line 4): unknown hit policy 'C+'", 'id="grade_table"'),
    ('hitPolicy="FIRST"', 'hitPolicy="FIRST" aggregation="SUM"',
     "decision 'Grade' (id grade_id, line 4): aggregation SUM needs hit policy COLLECT",
     'id="grade_table"'),
    ('hitPolicy="FIRST"', 'hitPolicy="COLLECT" aggregation="AVG"',
     "decision 'Grade' (id grade_id, line 4): unknown aggregation 'AVG'", 'id="grade_table"'),
    ('<outputValues id="grade_out_v"><text>"A", "B"</text></outputValues>', "",
     "decision 'Grade' (id grade_id, line 4): hit policy PRIORITY needs outputValues on an "
     "output (they give the priority order)", 'id="grade_table"'),
    ("<text>1, 2, 3</text>", "<text>[0..100]</text>",
     "decision 'Grade' (id grade_id, line 4): inputValues (line 9): expected a literal, found "
     "'['; only comma lists of literals are imported", "[0..100]"),
    ('<text>"A", "B"</text>', "<text>1, 2</text>",
     "decision 'Grade' (id grade_id, line 4): outputValues (line 12) holds 1, which is not "
     "text", 'id="grade_out_v"'),
    ('<inputEntry id="g2_in"><text>-</text></inputEntry>', "",
     "rule g2 (line 18) has 0 input and 1 output entries for 1 input and 1 output columns",
     '<rule id="g2">'),
    ('<text>"A"</text></outputEntry>', "<text>7</text></outputEntry>",
     "rule g1: output entry g1_out (line 16) is number, but output 'Grade' is text",
     'id="g1_out"'),
    ('typeRef="number"><text>Score', 'typeRef="string"><text>Score',
     "decision 'Grade' (id grade_id, line 4): input grade_in (line 7) has typeRef 'string' "
     "but input data 'Score' is number", 'id="grade_in_e"'),
    ('<variable name="Score" typeRef="number"/>', '<variable name="Score"/>',
     "inputData 'Score' (id score_id, line 24) has no typeRef; storeops needs number, string, "
     "boolean or date", 'id="score_id"'),
    ('<inputEntry id="g1_in">', '<inputEntry id="g1_in" expressionLanguage="urn:juel">',
     "rule g1: input entry g1_in is in expression language 'urn:juel', not FEEL",
     'id="g1_in"'),
])
def test_template_variants_are_refused_with_their_place(tmp_path, old, new, message, place):
    text = TEMPLATE.read_text(encoding="utf-8")
    assert old in text
    if "PRIORITY" in message:
        text = text.replace('hitPolicy="FIRST"', 'hitPolicy="PRIORITY"')
    path = tmp_path / "variant.dmn"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    errors = errors_of(path)
    assert [e.message for e in errors] == [message]
    assert errors[0].location.line == line_of(path, place)


def test_several_outputs_need_names_and_every_rule_every_entry(tmp_path):
    text = TEMPLATE.read_text(encoding="utf-8")
    path = tmp_path / "variant.dmn"
    path.write_text(text.replace('<output id="grade_out"', '<output id="extra_out"/>\n'
                                 '      <output id="grade_out"'), encoding="utf-8")
    assert [e.message for e in errors_of(path)] == [
        "decision 'Grade' (id grade_id, line 4): output extra_out (line 11) has no name; a "
        "table with several outputs needs names",
        "rule g1 (line 15) has 1 input and 1 output entries for 1 input and 2 output columns",
        "rule g2 (line 19) has 1 input and 1 output entries for 1 input and 2 output columns",
    ]


def test_a_second_decision_with_the_same_name_is_refused(tmp_path):
    text = TEMPLATE.read_text(encoding="utf-8")
    block = re.search(r"  <decision .*?</decision>\n", text, re.S).group()
    copy_ids = re.sub(r'id="([^"]+)"', r'id="\1_copy"', block)
    path = tmp_path / "twice.dmn"
    path.write_text(text.replace(block, block + copy_ids), encoding="utf-8")
    (error,) = errors_of(path)
    assert error.message == (f"decision 'Grade' (id grade_id_copy, line "
                             f"{line_of_id(path, 'grade_id_copy')}): a second decision with "
                             "this name")


def test_constrained_item_definitions_are_not_taken_for_plain_types(tmp_path):
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        '<variable name="Score" typeRef="number"/>', '<variable name="Score" typeRef="tScore"/>'
    ).replace('  <decision id="grade_id"', '  <itemDefinition name="tScore"><typeRef>number'
              "</typeRef><allowedValues><text>[0..10]</text></allowedValues></itemDefinition>\n"
              '  <decision id="grade_id"')
    path = tmp_path / "constrained.dmn"
    path.write_text(text, encoding="utf-8")
    (error,) = errors_of(path)
    assert error.message.startswith("inputData 'Score' (id score_id, line ")
    assert "has type 'tScore', which is not number, string, boolean or date" in error.message


def test_repeated_rule_ids_and_missing_output_names_are_resolved(tmp_path):
    text = TEMPLATE.read_text(encoding="utf-8")
    path = tmp_path / "variant.dmn"
    path.write_text(text.replace('<rule id="g2">', '<rule id="g1">').replace(
        '<output id="grade_out" name="Grade"', '<output id="grade_out"'), encoding="utf-8")
    table = import_dmn(path)["tables"][0]
    assert [r["id"] for r in table["rules"]] == ["g1", "g1_2"]
    assert table["outputs"][0]["name"] == "Grade"  # the decision's variable name


# -- round trips -------------------------------------------------------------------------------

def round_trip(source: Path, tmp_path: Path) -> tuple[dict, dict]:
    first = import_dmn(source)
    exported = tmp_path / source.name  # same file name: source.document names the file
    export_dmn(first, exported)
    return first, import_dmn(exported)


@needs_tck
@pytest.mark.parametrize("model", TCK_MODELS, ids=lambda p: p.parent.name)
def test_tck_models_round_trip(model, tmp_path):
    first, again = round_trip(model, tmp_path)
    assert again == first


@pytest.mark.parametrize("model", FIXTURES, ids=lambda p: p.name)
def test_fixtures_round_trip(model, tmp_path):
    first, again = round_trip(model, tmp_path)
    assert again == first


@pytest.mark.parametrize("model", FIXTURES, ids=lambda p: p.name)
def test_round_trip_through_a_yaml_pack_file(model, tmp_path):
    first = import_dmn(model)
    pack_path = tmp_path / "pack.yaml"
    write_pack_yaml(first, pack_path)
    assert load_pack(pack_path).id == first["pack"]["id"]
    assert yamlsafe.load(pack_path).data == first
    export_dmn(pack_path, tmp_path / model.name)
    assert import_dmn(tmp_path / model.name) == first


def test_a_hand_written_pack_exports_and_reads_back(tmp_path):
    export_dmn(DATA.parent / "dmn_tables.yaml", tmp_path / "tables.dmn")
    data = import_dmn(tmp_path / "tables.dmn")
    original = yamlsafe.load(DATA.parent / "dmn_tables.yaml").data
    assert [t["id"] for t in data["tables"]] == [t["id"] for t in original["tables"]]
    def feel(cell):  # YAML booleans in a hand-written pack come back as their FEEL text
        return {True: "true", False: "false"}.get(cell, cell) if isinstance(cell, bool) else cell

    for ours, theirs in zip(data["tables"], original["tables"], strict=True):
        assert ours["hit_policy"] == theirs["hit_policy"]
        assert ours.get("aggregation") == theirs.get("aggregation")
        for mine, source in zip(ours["rules"], theirs["rules"], strict=True):
            # XML ids are unique per document: a rule id used by an earlier table gets _2
            assert re.fullmatch(re.escape(source["id"]) + r"(_\d+)?", mine["id"])
            assert mine["cells"] == [feel(c) for c in source["cells"]]
            assert mine["result"] == source["result"]
    load_pack_data(data, display="tables.dmn")


# -- the exported XML --------------------------------------------------------------------------

def test_export_writes_dmn_15_with_a_diagram_and_resolvable_references(tmp_path):
    path = tmp_path / "features.dmn"
    export_dmn(import_dmn(DATA / "features" / "features.dmn"), path, version="1.5")
    root = etree.parse(str(path)).getroot()
    assert root.tag == f"{M}definitions"
    assert root.get("name") == "Store Offers (features)"
    assert root.get("namespace") and root.get("id")
    ids = [e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")]
    assert len(ids) == len(set(ids))
    inputs = {e.get("id"): e for e in root.findall(f"{M}inputData")}
    decisions = root.findall(f"{M}decision")
    assert [d.get("name") for d in decisions] == ["Discount", "Offer", "Eligible"]
    assert [e.get("name") for e in inputs.values()] == [
        "Customer Age", "Risk Category", "Member Since", "Is VIP", "Score"]
    assert [e.find(f"{M}variable").get("typeRef") for e in inputs.values()] == [
        "number", "string", "date", "boolean", "number"]
    for decision in decisions:
        hrefs = [r.get("href") for r in decision.iter(f"{M}requiredInput")]
        assert hrefs and all(h[1:] in inputs for h in hrefs)
    table = decisions[1].find(f"{M}decisionTable")
    assert table.get("hitPolicy") == "OUTPUT ORDER"
    assert decisions[0].find(f"{M}decisionTable").get("aggregation") == "MAX"
    # an output with a label keeps the label, not its DMN name (the pack has one label)
    assert [(o.get("name"), o.get("label")) for o in table.findall(f"{M}output")] == [
        ("Offer Name", None), ("Priority_Score", "Priority")]
    assert table.find(f"{M}output").findtext(f"{M}outputValues/{M}text") == (
        '"Gold", "Silver", "Bronze"')
    first_rule = table.find(f"{M}rule")
    assert [e.findtext(f"{M}text") for e in first_rule.findall(f"{M}inputEntry")] == [
        "]0..10[", 'not("High")', "-"]
    assert [e.findtext(f"{M}text") for e in first_rule.findall(f"{M}outputEntry")] == [
        '"Silver"', "2"]
    diagram = root.find("{https://www.omg.org/spec/DMN/20230324/DMNDI/}DMNDI/"
                        "{https://www.omg.org/spec/DMN/20230324/DMNDI/}DMNDiagram")
    shapes = {s.get("dmnElementRef") for s in diagram.iter(
        "{https://www.omg.org/spec/DMN/20230324/DMNDI/}DMNShape")}
    assert shapes == {d.get("id") for d in decisions} | set(inputs)
    edges = list(diagram.iter("{https://www.omg.org/spec/DMN/20230324/DMNDI/}DMNEdge"))
    assert len(edges) == sum(len(d.findall(f"{M}informationRequirement")) for d in decisions)


def minimal_pack() -> dict:
    return {
        "pack": {"id": "mini", "version": "1", "title": {"zh": "小", "en": "mini"},
                 "source": {"document": "test"}, "subject": "store"},
        "fields": [{"name": "store", "type": "text"}, {"name": "sales", "type": "number"}],
        "actions": [{"id": "A1", "label": {"zh": "一", "en": "one"}}],
        "tables": [{
            "id": "band", "hit_policy": "first",
            "inputs": [{"label": "Sales", "expression": "sales"}],
            "outputs": [{"name": "band", "type": "text"}],
            "rules": [{"id": "r1", "cells": [">= 100"], "result": ["high"]},
                      {"id": "r2", "cells": ["-"], "result": ["low"]}],
        }],
    }


def test_export_leaves_out_a_subject_no_table_reads(tmp_path):
    export_dmn(minimal_pack(), tmp_path / "mini.dmn")
    data = import_dmn(tmp_path / "mini.dmn")
    assert [f["name"] for f in data["fields"]] == ["case_id", "sales"]
    assert data["tables"][0]["rules"] == minimal_pack()["tables"][0]["rules"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p["tables"].append({"id": "plain", "hit_policy": "first", "rules": [
        {"id": "x", "when": "sales > 1", "then": ["A1"]}]}),
     "table 'plain' is written with when: conditions, not DMN inputs and outputs; it cannot "
     "be exported as a decision table"),
    (lambda p: p["tables"][0]["inputs"][0].update(expression="sales * 2"),
     "table 'band' input 1: expression 'sales * 2' is not a field name; DMN export writes "
     "inputs that read one field"),
    (lambda p: p["tables"][0]["rules"][0].update(then=["A1"]),
     "table 'band' rule 'r1' has then, which a DMN decision table cannot hold"),
    (lambda p: p["tables"][0]["rules"][1].update(when="sales > 0"),
     "table 'band' rule 'r2' has when, which a DMN decision table cannot hold"),
])
def test_export_refuses_what_dmn_cannot_hold(change, message, tmp_path):
    pack = minimal_pack()
    change(pack)
    with pytest.raises(ErrorList) as info:
        export_dmn(pack, tmp_path / "out.dmn")
    assert [e.message for e in info.value.errors] == [message]
    assert not (tmp_path / "out.dmn").exists()


def test_export_refusals_point_into_the_pack_file(tmp_path):
    pack = minimal_pack()
    pack["tables"][0]["rules"][0]["then"] = ["A1"]
    source = tmp_path / "mini.yaml"
    write_pack_yaml(pack, source)
    with pytest.raises(ErrorList) as info:
        export_dmn(source, tmp_path / "out.dmn")
    (error,) = info.value.errors
    assert error.location.file.endswith("mini.yaml")
    assert error.location.line == line_of(source, "then:")


def test_export_refuses_an_invalid_pack_before_writing(tmp_path):
    pack = minimal_pack()
    pack["tables"][0]["rules"][0]["cells"] = ["> sales"]
    with pytest.raises(ErrorList):
        export_dmn(pack, tmp_path / "out.dmn")
    assert not (tmp_path / "out.dmn").exists()


# -- YAML --------------------------------------------------------------------------------------

TRICKY = ["true", "False", "null", "~", "yes", "no", "on", "0o17", "0x1F", "1e3", ".inf", "1",
          "-", ">=18", '"A","B"', "it's", "", " lead", "trail ", "a: b", "# not a comment",
          "[1..5]", "年龄", "line\nbreak", "2024-01-01"]


def test_write_pack_yaml_quotes_whatever_yaml_would_misread(tmp_path):
    pack = minimal_pack()
    pack["tables"][0]["rules"] = [
        {"id": f"r{i}", "cells": ["-"], "result": [text]} for i, text in enumerate(TRICKY)]
    path = tmp_path / "tricky.yaml"
    write_pack_yaml(pack, path)
    assert yamlsafe.load(path).data == pack
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    schema = (path.parent / first.split("=", 1)[1]).resolve()
    assert schema.name == "pack.schema.json" and schema.is_file()


def test_write_pack_yaml_keeps_section_order(tmp_path):
    pack = minimal_pack()
    shuffled = {k: pack[k] for k in ("tables", "actions", "fields", "pack")}
    path = tmp_path / "order.yaml"
    write_pack_yaml(shuffled, path)
    assert list(yamlsafe.load(path).data) == ["pack", "fields", "actions", "tables"]


# -- property: any table we can write survives export and import -------------------------------

LITERALS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=2).map(lambda d: format(d, "f")),
)
NUMBER_CELLS = st.one_of(
    st.just("-"),
    LITERALS,
    st.tuples(st.sampled_from(["<", "<=", ">", ">="]), LITERALS).map(" ".join),
    # intervals with low < high: an empty one is rightly refused as a rule that never matches
    st.tuples(st.sampled_from("[(]"), st.lists(LITERALS, min_size=2, max_size=2, unique_by=(
        lambda x: Decimal(x))).map(lambda xs: sorted(xs, key=Decimal)),
        st.sampled_from("])[")).map(lambda t: f"{t[0]}{t[1][0]}..{t[1][1]}{t[2]}"),
    st.lists(LITERALS, min_size=1, max_size=3).map(lambda xs: f"not({', '.join(xs)})"),
    st.just("null"),
)
TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(NUMBER_CELLS, min_size=1, max_size=6),
       results=st.lists(st.one_of(TEXTS, st.none()), min_size=6, max_size=6),
       numbers=st.lists(st.one_of(st.integers(-10**6, 10**6),
                                  st.decimals(min_value=-10**6, max_value=10**6, places=3)
                                  .map(lambda d: float(str(d)))),
                        min_size=6, max_size=6))
def test_generated_tables_round_trip(tmp_path_factory, cells, results, numbers):
    pack = minimal_pack()
    pack["tables"][0] = {
        "id": "generated", "hit_policy": "collect",
        "inputs": [{"label": "Sales", "expression": "sales"}],
        "outputs": [{"name": "label", "type": "text"}, {"name": "amount", "type": "number"}],
        "rules": [{"id": f"r{i + 1}", "cells": [cell], "result": [results[i], numbers[i]]}
                  for i, cell in enumerate(cells)],
    }
    folder = tmp_path_factory.mktemp("generated")
    export_dmn(pack, folder / "generated.dmn")
    back = import_dmn(folder / "generated.dmn")["tables"][0]
    expected = copy.deepcopy(pack["tables"][0])
    for rule in expected["rules"]:
        number = rule["result"][1]
        rule["result"][1] = int(number) if float(number).is_integer() else number
    assert back["rules"] == expected["rules"]


def test_export_writes_dmn_13_by_default_for_modelers_that_read_only_13(tmp_path):
    path = tmp_path / "features.dmn"
    export_dmn(import_dmn(DATA / "features" / "features.dmn"), path)
    root = etree.parse(str(path)).getroot()
    assert root.tag == "{https://www.omg.org/spec/DMN/20191111/MODEL/}definitions"
    assert root.nsmap["dmndi"] == "https://www.omg.org/spec/DMN/20191111/DMNDI/"
    assert import_dmn(path)["tables"] == import_dmn(DATA / "features" / "features.dmn")["tables"]

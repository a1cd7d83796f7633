"""The DMN TCK runner: the shared TCK subset, our own TCK-style cases, and failures that must show.

Most tests run the real engine (import, pack compiler, table evaluation). The
ones about reading test files and comparing values also run with a stub
evaluator (``compile_model=``), so that they pin the runner's own behaviour
whatever the engine returns.
"""

from __future__ import annotations

import datetime
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops import cli
from storeops.engine.errors import EvaluationError, InputError
from storeops.engine.tck import CaseResult, format_result, run_tck, summary

DATA = Path(__file__).parent / "data" / "dmn"
TCK = Path("/work/shared/dmn-tck")
needs_tck = pytest.mark.skipif(not TCK.is_dir(), reason="the shared DMN TCK folder is absent")


def copy_case(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(TCK / name, target)
    return target


def xml_of(folder: Path) -> Path:
    (path,) = folder.glob("*-test-*.xml")
    return path


def replace_in(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= count, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


# -- the real suite ----------------------------------------------------------------------------

@needs_tck
def test_every_shared_tck_case_passes():
    results = list(run_tck([TCK]))
    failures = [format_result(r) for r in results if not r.passed]
    assert failures == []
    assert len({r.folder for r in results}) == 12
    assert len(results) == 36
    assert summary(results) == "36 passed, 0 failed"
    assert format_result(results[0]) == "PASS 0004-simpletable-U/001"


def test_our_tck_style_cases_pass_on_the_real_engine():
    # dates, nil inputs and results, doubles in exponent form, escaped strings, COLLECT MAX,
    # OUTPUT ORDER lists of components, the empty list, several result nodes per case
    results = list(run_tck([DATA]))
    assert [format_result(r) for r in results] == [
        f"PASS features/{n:03d}" for n in range(1, 7)]


@needs_tck
def test_a_wrong_expected_value_fails_with_a_clear_message(tmp_path):
    folder = copy_case("0005-simpletable-A", tmp_path)
    # case 002 expects "Declined"; make it expect something the table never gives
    replace_in(xml_of(folder), '<testCase id="002">', '<testCase id="002" mark="x">')
    text = xml_of(folder).read_text(encoding="utf-8")
    head, tail = text.split('<testCase id="002" mark="x">')
    tail = tail.replace('<value xsi:type="xsd:string">Declined</value>',
                        '<value xsi:type="xsd:string">Refused</value>', 1)
    xml_of(folder).write_text(head + '<testCase id="002">' + tail, encoding="utf-8")
    results = list(run_tck([tmp_path]))
    assert [format_result(r) for r in results] == [
        "PASS 0005-simpletable-A/001",
        "FAIL 0005-simpletable-A/002: expected 'Refused', got 'Declined'",
        "PASS 0005-simpletable-A/003",
    ]
    assert summary(results) == "2 passed, 1 failed"


@needs_tck
def test_lists_of_components_are_compared_in_order_and_shown_whole(tmp_path):
    folder = copy_case("0109-ruleOrder-hitpolicy", tmp_path)
    replace_in(xml_of(folder), '<value xsi:type="xsd:string">Best</value>',
               '<value xsi:type="xsd:string">Gold</value>')
    first = next(iter(run_tck([folder])))
    assert not first.passed
    assert first.message == (
        "expected [{Status: 'Approved', Rate: 'Gold'}, {Status: 'Approved', Rate: 'Standard'}]"
        ", got [{Status: 'Approved', Rate: 'Best'}, {Status: 'Approved', Rate: 'Standard'}]")


@needs_tck
def test_numbers_compare_as_decimals(tmp_path):
    folder = copy_case("0114-min-collect-hitpolicy", tmp_path)
    replace_in(xml_of(folder), ">64.32<", ">64.320<")  # the same decimal
    replace_in(xml_of(folder), ">98.83<", ">98.84<")  # a different one (case 002)
    results = list(run_tck([folder]))
    assert [r.passed for r in results] == [True, False, True]
    assert results[1].message == "expected 98.84, got 98.83"


@needs_tck
def test_a_model_the_importer_refuses_fails_each_case_with_its_reason(tmp_path):
    folder = copy_case("0111-first-hitpolicy-singleoutputcol", tmp_path)
    model = next(folder.glob("*.dmn"))
    replace_in(model, "<text>&gt;18</text>", "<text>&gt; age + 1</text>")
    results = list(run_tck([folder]))
    assert len(results) == 3 and not any(r.passed for r in results)
    assert "rule DecisionRule_0bqji8h: unsupported FEEL in input entry" in results[0].message
    assert "name 'age'" in results[0].message


# -- the runner on its own (stub evaluator) ----------------------------------------------------

MODEL = DATA / "features" / "features.dmn"


def case_folder(tmp_path: Path, cases: str) -> Path:
    folder = tmp_path / "stubbed"
    folder.mkdir()
    shutil.copy(MODEL, folder / "features.dmn")
    (folder / "stubbed-test-01.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testCases xmlns="http://www.omg.org/spec/DMN/20160719/testcase"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
        f"<modelName>features.dmn</modelName>\n{cases}\n</testCases>\n", encoding="utf-8")
    return folder


class Stub:
    """Stands in for the pack compiler: records facts, returns canned results."""

    def __init__(self, results):
        self.results = results
        self.calls = []

    def __call__(self, pack_data, display):
        assert pack_data["pack"]["id"] == "store_offers_features"

        def evaluate(table_id, fact):
            self.calls.append((table_id, dict(fact)))
            result = self.results[table_id]
            if isinstance(result, Exception):
                raise result
            return result

        return evaluate


def run_stubbed(tmp_path, cases, results):
    stub = Stub(results)
    out = list(run_tck([case_folder(tmp_path, cases)], compile_model=stub))
    return out, stub


def test_inputs_reach_the_evaluator_as_typed_facts_under_field_names(tmp_path):
    cases = """
    <testCase id="t1">
      <inputNode name="Customer Age"><value xsi:type="xs:decimal">30</value></inputNode>
      <inputNode name="Score"><value xsi:type="xs:double">12.5</value></inputNode>
      <inputNode name="Risk Category"><value xsi:type="xs:string"> Low </value></inputNode>
      <inputNode name="Is VIP"><value xsi:type="xs:boolean">1</value></inputNode>
      <inputNode name="Member Since"><value xsi:type="xs:date">2020-02-29</value></inputNode>
      <resultNode name="Eligible"><expected><value xsi:nil="true"/></expected></resultNode>
    </testCase>"""
    results, stub = run_stubbed(tmp_path, cases, {"Eligible": None})
    assert results == [CaseResult("stubbed", "t1", True, "")]
    assert stub.calls == [("Eligible", {
        "Customer_Age": 30, "Score": 12.5, "Risk_Category": " Low ", "Is_VIP": True,
        "Member_Since": datetime.date(2020, 2, 29)})]
    assert type(stub.calls[0][1]["Customer_Age"]) is int


@pytest.mark.parametrize(("expected_xml", "actual", "message"), [
    ('<value xsi:type="xs:decimal">1</value>', Decimal("1.00"), None),
    ('<value xsi:type="xs:decimal">1</value>', 1, None),
    ('<value xsi:type="xs:decimal">0.1</value>', 0.1, None),
    # exact decimals: a float comparison would call these equal
    ('<value xsi:type="xs:decimal">0.30000000000000000001</value>', Decimal("0.3"),
     "expected 0.30000000000000000001, got 0.3"),
    ('<value xsi:type="xs:decimal">1</value>', True, "expected 1, got true"),
    ('<value xsi:type="xs:boolean">true</value>', 1, "expected true, got 1"),
    ('<value xsi:type="xs:string">1</value>', Decimal(1), "expected '1', got 1"),
    ('<value xsi:type="xs:string">a</value>', "a ", "expected 'a', got 'a '"),
    ('<value xsi:nil="true"/>', "", "expected null, got ''"),
    ('<value xsi:type="xs:string"></value>', "", None),
    ('<value xsi:type="xs:date">2024-01-02</value>', datetime.date(2024, 1, 2), None),
    ('<list><item><value xsi:type="xs:decimal">1</value></item>'
     '<item><value xsi:type="xs:decimal">2</value></item></list>',
     [Decimal(2), Decimal(1)], "expected [1, 2], got [2, 1]"),
    ("<list/>", [], None),
    ("<list/>", None, "expected [], got null"),
    ('<component name="Offer Name"><value xsi:type="xs:string">Gold</value></component>'
     '<component name="Priority Score"><value xsi:type="xs:decimal">1</value></component>',
     {"Offer_Name": "Gold", "Priority_Score": Decimal(1)}, None),
    ('<component name="Offer Name"><value xsi:type="xs:string">Gold</value></component>',
     {"Offer_Name": "Gold", "Priority_Score": Decimal(1)},
     "expected {Offer Name: 'Gold'}, got {Offer_Name: 'Gold', Priority_Score: 1}"),
])
def test_results_are_compared_the_tck_way(tmp_path, expected_xml, actual, message):
    cases = f"""
    <testCase id="c">
      <resultNode name="Offer"><expected>{expected_xml}</expected></resultNode>
    </testCase>"""
    (result,) = run_stubbed(tmp_path, cases, {"Offer": actual})[0]
    assert result.passed is (message is None)
    assert result.message == (message or "")


def test_several_result_nodes_name_the_one_that_failed(tmp_path):
    cases = """
    <testCase id="two">
      <resultNode name="Eligible"><expected><value xsi:type="xs:boolean">true</value></expected>
      </resultNode>
      <resultNode name="Discount"><expected><value xsi:type="xs:decimal">0.2</value></expected>
      </resultNode>
    </testCase>"""
    (result,) = run_stubbed(tmp_path, cases, {"Eligible": True, "Discount": Decimal("0.1")})[0]
    assert format_result(result) == "FAIL stubbed/two: 'Discount': expected 0.2, got 0.1"


def test_errors_fail_a_case_unless_the_tck_expects_one(tmp_path):
    cases = """
    <testCase id="boom">
      <resultNode name="Eligible"><expected><value xsi:type="xs:boolean">true</value></expected>
      </resultNode>
    </testCase>
    <testCase id="expected-error">
      <resultNode name="Eligible" errorResult="true"><expected><value xsi:nil="true"/></expected>
      </resultNode>
    </testCase>"""
    error = EvaluationError("rules 'a', 'b' of UNIQUE table 'Eligible' all match a fact")
    results, _ = run_stubbed(tmp_path, cases, {"Eligible": error})
    assert [format_result(r) for r in results] == [
        "FAIL stubbed/boom: error: rules 'a', 'b' of UNIQUE table 'Eligible' all match a fact",
        "PASS stubbed/expected-error",
    ]


def test_a_bug_in_the_engine_fails_the_case_and_the_run_goes_on(tmp_path):
    cases = """
    <testCase id="a"><resultNode name="Offer"><expected><list/></expected></resultNode></testCase>
    <testCase id="b"><resultNode name="Eligible"><expected><value xsi:nil="true"/></expected>
    </resultNode></testCase>"""
    results, _ = run_stubbed(tmp_path, cases, {"Offer": ZeroDivisionError("oops"),
                                               "Eligible": None})
    assert [format_result(r) for r in results] == [
        "FAIL stubbed/a: internal error: ZeroDivisionError: oops", "PASS stubbed/b"]


@pytest.mark.parametrize(("case", "message"), [
    ('<inputNode name="Shoe Size"><value xsi:type="xs:decimal">1</value></inputNode>'
     '<resultNode name="Offer"><expected><list/></expected></resultNode>',
     "input 'Shoe Size' is not an inputData of the model"),
    ('<inputNode name="Score"><value xsi:type="xs:dateTime">2024-01-01T00:00:00</value>'
     '</inputNode><resultNode name="Offer"><expected><list/></expected></resultNode>',
     "value type 'xs:dateTime' is not supported (decimal, double, string, boolean and date "
     "are) (stubbed-test-01.xml, line 5)"),
    ('<inputNode name="Score"><value xsi:type="xs:decimal">twelve</value></inputNode>'
     '<resultNode name="Offer"><expected><list/></expected></resultNode>',
     "'twelve' is not a valid xs:decimal (stubbed-test-01.xml, line 5)"),
    ('<inputNode name="Score"><component name="x"><value>1</value></component></inputNode>'
     '<resultNode name="Offer"><expected><list/></expected></resultNode>',
     "input 'Score' is structured; storeops inputs are simple values"),
    ('<resultNode name="Price"><expected><list/></expected></resultNode>',
     "no decision table named 'Price' in the model"),
    ("", "the test case has no resultNode (stubbed-test-01.xml, line 5)"),
])
def test_cases_the_runner_cannot_run_fail_with_the_reason(tmp_path, case, message):
    (result,) = run_stubbed(tmp_path, f'\n<testCase id="x">{case}</testCase>',
                            {"Offer": []})[0]
    assert (result.passed, result.message) == (False, message)


def test_an_unreadable_test_file_is_one_failure_with_its_place(tmp_path):
    folder = case_folder(tmp_path, "<testCase id='x'>")
    (result,) = run_tck([folder])
    assert not result.passed
    assert result.case_id == "stubbed-test-01.xml"
    assert "not well-formed XML" in result.message
    assert "stubbed-test-01.xml:" in result.message


def test_a_missing_model_fails_each_case(tmp_path):
    folder = case_folder(tmp_path, '<testCase id="x"><resultNode name="Offer"/></testCase>')
    replace_in(folder / "stubbed-test-01.xml", "features.dmn</modelName>",
               "elsewhere.dmn</modelName>")
    (result,) = run_tck([folder])
    assert format_result(result) == (
        "FAIL stubbed/x: model 'elsewhere.dmn' not found in the folder")


# -- finding folders ---------------------------------------------------------------------------

def test_case_folders_are_found_recursively_in_order_and_named_from_the_root(tmp_path):
    for name in ("b/two", "a/one", "a/one/nested"):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        shutil.copy(MODEL, folder / "features.dmn")
        shutil.copy(DATA / "features" / "features-test-01.xml", folder / "f-test-01.xml")
    (tmp_path / "empty").mkdir()
    folders = []
    for result in run_tck([tmp_path]):
        if result.folder not in folders:
            folders.append(result.folder)
    assert folders == ["a/one", "a/one/nested", "b/two"]
    # a case folder given directly is named by itself, and runs once even if given twice
    direct = list(run_tck([tmp_path / "b" / "two", tmp_path / "b"]))
    assert {r.folder for r in direct} == {"two"} and len(direct) == 6


def test_a_path_that_is_not_a_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        list(run_tck([tmp_path / "absent"]))


def test_summary_counts():
    results = [CaseResult("f", "1", True, ""), CaseResult("f", "2", False, "x"),
               CaseResult("f", "3", True, "")]
    assert summary(results) == "2 passed, 1 failed"
    assert summary([]) == "0 passed, 0 failed"
    assert format_result(results[1]) == "FAIL f/2: x"


def test_the_cli_runs_the_cases():
    result = CliRunner().invoke(cli.cli, ["tck", str(DATA)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "6 passed, 0 failed"

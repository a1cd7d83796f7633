"""The safe YAML reader: limits, positions and the stricter scalar reading."""

from __future__ import annotations

import tracemalloc

import pytest

from storeops.engine import yamlsafe
from storeops.engine.errors import Location, YamlError


def load(text: str, **limits) -> yamlsafe.Document:
    return yamlsafe.loads(text, display="t.yaml", **limits)


def error(text: str, **limits) -> str:
    with pytest.raises(YamlError) as info:
        load(text, **limits)
    return str(info.value)


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast_and_small():
    tracemalloc.start()
    try:
        message = error(billion_laughs())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "expands to more than 200,000 values (aliases)" in message
    assert message.startswith("t.yaml:")
    # 9**10 strings would need gigabytes; the check must stay in the kilobytes-to-megabytes range.
    assert peak < 5_000_000


def test_small_alias_use_is_fine():
    doc = load("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert doc.data == {"base": {"x": 1}, "other": {"y": 2, "x": 1}}


def test_recursive_alias_is_refused():
    assert error("a: &a [*a]\n") == "t.yaml:1:4: recursive alias"


def test_depth_limit():
    assert "nesting deeper than 10 levels" in error("[" * 12 + "]" * 12, max_depth=10)


def test_size_limit():
    assert error("a: " + "x" * 100 + "\n", max_bytes=50) == (
        "t.yaml:1:1: text is 104 bytes, more than the limit of 50"
    )


def test_size_limit_on_files_checks_before_reading(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" * 1000)
    with pytest.raises(YamlError, match="more than the limit of 100"):
        yamlsafe.load(big, display="big.yaml", max_bytes=100)


def test_no_object_construction():
    message = error("a: !!python/object/apply:os.system ['echo hacked']\n")
    assert message == (
        "t.yaml:1:4: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed "
        "(plain YAML values only)"
    )


def test_duplicate_keys_are_errors():
    assert error("a: 1\nb: 2\na: 3\n") == "t.yaml:3:1: duplicate key 'a'"


def test_yaml_12_core_scalars():
    doc = load("a: yes\nb: off\nc: 12:30\nd: 2024-01-01\ne: 0o17\nf: .5\ng: true\nh: ~\ni: '1'\n")
    assert doc.data == {"a": "yes", "b": "off", "c": "12:30", "d": "2024-01-01", "e": 15,
                        "f": 0.5, "g": True, "h": None, "i": "1"}


def test_syntax_error_position():
    assert error("a: [1, 2\nb: 3\n").startswith("t.yaml:2:")


def test_more_than_one_document():
    assert error("a: 1\n---\nb: 2\n") == (
        "t.yaml:2:1: expected a single YAML document, found more than one"
    )


def test_positions_of_values_and_keys():
    doc = load("pack:\n  id: kzb\nlist:\n  - x\n  - when: \"a < 1\"\n")
    assert doc.locate(("pack", "id")) == Location("t.yaml", 2, 7)
    assert doc.locate_key(("pack", "id")) == Location("t.yaml", 2, 3)
    assert doc.locate(("list", 1, "when")) == Location("t.yaml", 5, 11)
    # absent paths fall back to the nearest ancestor that exists
    assert doc.locate(("pack", "missing")) == Location("t.yaml", 2, 3)


def test_scalar_locator_columns():
    doc = load("a: \"x < 1\"\nb: x < 1\nc: |\n  first\n  sec ond\n")
    assert doc.scalar_locator(("a",))(2) == Location("t.yaml", 1, 7)   # after the quote
    assert doc.scalar_locator(("b",))(2) == Location("t.yaml", 2, 6)
    assert doc.scalar_locator(("c",))(10) == Location("t.yaml", 5, 7)  # second line of block


def test_not_utf8():
    with pytest.raises(YamlError, match="not valid UTF-8"):
        yamlsafe.loads(b"a: \xff\xfe\n", display="t.yaml")


def test_empty_document_is_none():
    assert load("# only a comment\n").data is None


def test_issue_3_control_character_is_an_error_with_position():
    # found by tests/test_packs_fuzz.py: PyYAML's reader raised outside the error handling
    assert error("a: 1\nb: x\x07y\n") == "t.yaml:2:5: character U+0007 is not allowed in YAML"

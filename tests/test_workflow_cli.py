"""`storeops graph`: drawings of a pack's workflow, and clear errors when it cannot draw."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine.packs import load_pack

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "rules" / "order_fulfilment.yaml"
SERVICE = ROOT / "rules" / "store_service.yaml"
CAN_DRAW = shutil.which("dot") is not None or importlib.util.find_spec("matplotlib") is not None


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_validate_accepts_the_bundled_rules_folder():
    result = invoke("validate", ROOT / "rules")
    assert result.exit_code == 0, result.output
    assert "ok (order_fulfilment 1.0.0, 4 table(s), 14 rule(s))" in result.stdout
    assert "ok (store_service 1.0.0, 0 table(s), 0 rule(s))" in result.stdout


@pytest.mark.parametrize("path", [ORDERS, SERVICE], ids=lambda p: p.name)
def test_mermaid_shows_every_state_and_transition(path):
    flow = load_pack(path).workflow
    result = invoke("graph", path, "--format", "mermaid")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("flowchart TD\n")
    for state in flow.states.values():
        shape = f's_{state.id}((("' if state.end else f's_{state.id}("'
        assert f"{shape}{state.label.en}<br/>{state.label.zh}" in text, state.id
    for transition in flow.transitions:
        assert f"s_{transition.source} -->|\"{transition.id}" in text, transition.id
        assert f"| s_{transition.target}\n" in text


@pytest.mark.parametrize("path", [ORDERS, SERVICE], ids=lambda p: p.name)
def test_dot_shows_every_state_and_transition(path, tmp_path):
    flow = load_pack(path).workflow
    out = tmp_path / "flow.dot"
    result = invoke("graph", path, "--format", "dot", "-o", out)
    assert result.exit_code == 0
    assert result.stdout == f"wrote {out}\n"
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f'digraph "{flow.id}" {{')
    for state in flow.states.values():
        line = f'  "{state.id}" [label="{state.label.en}\\n{state.label.zh}'
        assert line in text, state.id
        assert (f'"{state.id}" [label=' in text
                and ("peripheries=2" in text.split(f'  "{state.id}" [')[1].split("\n")[0])
                == state.end)
    for transition in flow.transitions:
        edge = f'  "{transition.source}" -> "{transition.target}" [label="{transition.id}'
        assert edge in text, transition.id


def test_guards_are_on_the_edges():
    text = invoke("graph", SERVICE).stdout
    assert 's_intake -->|"start_repair: approved and parts_available"| s_repair' in text
    assert 's_reception -->|"received: received"| s_intake' in text


@pytest.mark.skipif(not CAN_DRAW, reason="neither Graphviz 'dot' nor matplotlib is installed")
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_svg_and_png(tmp_path, fmt):
    out = tmp_path / f"flow.{fmt}"
    result = invoke("graph", SERVICE, "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert (b"<svg" in data[:2000]) if fmt == "svg" else data.startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left


def test_svg_needs_an_output_file():
    result = invoke("graph", SERVICE, "--format", "svg")
    assert result.exit_code == 2
    assert "Error: --format svg writes binary or long output; give -o FILE" in result.stderr


def test_svg_without_dot_or_matplotlib_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = invoke("graph", SERVICE, "--format", "svg", "-o", tmp_path / "x.svg")
    assert result.exit_code == 2
    assert result.stderr == ("svg needs Graphviz ('dot') or matplotlib; install one, "
                             "or use --format mermaid|dot\n")
    assert not (tmp_path / "x.svg").exists()


def test_a_pack_without_workflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "rules" / "kzb.yaml", tmp_path / "kzb.yaml")
    result = invoke("graph", "kzb.yaml")
    assert result.exit_code == 2
    assert result.stderr == "kzb.yaml:1:1: the pack has no 'workflow' section to draw\n"


def test_a_broken_workflow_reports_its_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SERVICE.read_text(encoding="utf-8").replace("to: closed,", "to: closd,")
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    result = invoke("graph", "s.yaml")
    assert result.exit_code == 2
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "to: closd" in row)
    assert result.stderr.startswith(f"s.yaml:{line}:")
    assert "transition 'called': unknown state 'closd' (did you mean 'closed'?)" in result.stderr

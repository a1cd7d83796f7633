"""Docs stay true: README commands, CI, command help, the documented function list."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from storeops.cli import cli
from storeops.engine.expressions import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:12]
    return [line.strip() for line in head if line.startswith("    ")]


def test_readme_starts_with_the_two_commands():
    main_job, tests = readme_commands()
    assert "storeops run --pack rules/kzb.yaml --input samples/needs_log.csv" in main_job
    assert tests.endswith("python -m pytest -q")


def test_ci_runs_exactly_the_readme_test_command():
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()


def test_readme_main_job_names_files_that_exist():
    main_job, _ = readme_commands()
    for path in re.findall(r"--(?:pack|input) (\S+)", main_job):
        assert (ROOT / path).is_file(), path


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help and len(command.help.split()) >= 4, name
        assert f"storeops {name}" in readme, name


def test_every_function_is_documented():
    doc = (ROOT / "docs" / "packs.md").read_text(encoding="utf-8")
    for function in FUNCTIONS:
        assert f"`{function}(" in doc, function

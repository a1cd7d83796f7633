"""Exported models open in a real DMN modeler's model layer (dmn-moddle, behind dmn-js).

Runs when Node.js is installed and dmn-moddle is found: in the folder named by
STOREOPS_DMN_MODDLE (a node_modules folder; .ci/run installs it there) or next
to tests/js. Skips cleanly otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from storeops.cli import cli

ROOT = Path(__file__).resolve().parent.parent
TCK = ROOT.parent / "shared" / "dmn-tck"
SCRIPT = Path(__file__).parent / "js" / "check_dmn.mjs"
MODULES = Path(os.environ.get("STOREOPS_DMN_MODDLE", SCRIPT.parent / "node_modules"))

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed"),
    pytest.mark.skipif(not (MODULES / "dmn-moddle").is_dir(),
                       reason=f"dmn-moddle not installed in {MODULES}"),
    pytest.mark.skipif(not TCK.exists(), reason=f"DMN TCK not present: {TCK}"),
]


def test_every_exported_tck_model_parses_without_warnings(tmp_path):
    runner = CliRunner()
    exported = []
    for model in sorted(TCK.glob("*/*.dmn")):
        pack = tmp_path / f"{model.stem}.yaml"
        out = tmp_path / f"{model.stem}.dmn"
        assert runner.invoke(cli, ["dmn", "import", str(model), "-o", str(pack)]).exit_code == 0
        assert runner.invoke(cli, ["dmn", "export", str(pack), "-o", str(out)]).exit_code == 0
        exported.append(out)
    # the script imports 'dmn-moddle' by name: run it from a folder that sees the modules
    workdir = tmp_path / "js"
    workdir.mkdir()
    (workdir / "node_modules").symlink_to(MODULES.resolve())
    shutil.copy(SCRIPT, workdir / "check_dmn.mjs")
    result = subprocess.run(["node", "check_dmn.mjs", *map(str, exported)], cwd=workdir,
                            capture_output=True, text=True, timeout=120, check=False)
    lines = result.stdout.splitlines()
    assert len(lines) == len(exported) == 12, result.stdout + result.stderr
    for line in lines:
        assert ": 0 warning(s), 1 decision(s)" in line, line

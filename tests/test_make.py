"""The Makefile's promises that no other test exercises."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make: the test dry-runs `make lab`")
def test_make_lab_passes_jupyter_arguments_through() -> None:
    out = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--no-browser --port=8890"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    (line,) = [x for x in out.splitlines() if "jupyter lab" in x]
    assert "--no-browser --port=8890" in line and line.endswith("notebooks/")

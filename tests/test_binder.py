"""The Binder recipe, built the way mybinder.org builds it, then every notebook under nbval.

repo2docker copies the repository, reads only binder/ (runtime.txt, requirements.txt,
postBuild), runs `pip install -r binder/requirements.txt` from the repository root, then
binder/postBuild (which builds the optional native capture module). This test does the
same into a fresh virtual environment (pip's cache allowed), adds only nbval and pytest,
and runs the notebooks with the same sanitiser as `make test-notebooks`: a dependency
missing from binder/ or a widget asset missing from the wheel fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

pytestmark = pytest.mark.binder

REPO = Path(__file__).resolve().parents[1]
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", "*.egg-info",
    "artifacts", "build", "dist",
)


def sh(*cmd: str | Path, cwd: Path, timeout: float = 900) -> str:
    """Run a command outside this checkout's environment; fail with its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(UNIMEM_CI="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    proc = subprocess.run(
        [str(c) for c in cmd], check=False, cwd=cwd, env=env, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if proc.returncode:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
    return proc.stdout


def test_runtime_matches_the_package() -> None:
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert match, f"binder/runtime.txt must read like 'python-3.11', not {runtime!r}"
    requires = metadata("unimem")["Requires-Python"]
    assert match[1] + ".0" in SpecifierSet(requires), f"{runtime} is outside {requires}"


def test_binder_recipe_runs_every_notebook(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=NOT_COPIED)
    venv = tmp_path / "venv"
    py = venv / "bin" / "python"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    sh(py, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt", cwd=repo)
    # repo2docker runs postBuild with the environment's python first on PATH.
    sh("env", f"PATH={venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "bash", "binder/postBuild",
       cwd=repo)
    sh(py, "-m", "pip", "install", "-q", "nbval", "pytest", cwd=repo)

    # From outside the copy: the installed wheel, with its widget assets, not the sources.
    where = sh(py, "-c", "import unimem, pathlib; print(pathlib.Path(unimem.__file__).parent)",
               cwd=tmp_path).strip()
    assert Path(where).is_relative_to(venv), f"unimem imported from {where}, not the venv"
    assert (Path(where) / "_static").is_dir(), "the wheel lacks unimem/_static (widgets/)"
    card = sh(py, "-c", "import unimem; print(unimem.about())", cwd=tmp_path)
    assert "unimem platform card" in card
    # The optional native module must build wherever the recipe is tested (CI has a compiler).
    why = sh(py, "-c", "from unimem.capture import native; print(native.why_unavailable())",
             cwd=tmp_path).strip()
    assert why == "None", why
    # Binder's JupyterLab runs in this environment: the widget front ends must be in it.
    labext = venv / "share" / "jupyter" / "labextensions"
    for ext in ("anywidget", "@jupyter-widgets/jupyterlab-manager"):
        assert (labext / ext / "package.json").exists(), f"{ext} JupyterLab extension missing"

    assert list((repo / "notebooks").glob("*.ipynb")), "no lesson notebooks to run"
    sh(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
       "--nbval-sanitize-with", "notebooks/sanitize.cfg", "notebooks", cwd=repo)

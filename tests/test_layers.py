"""The package's layers import in one direction: model <- capture, memory, analysis, views.

The model must load where MLX and the widget libraries are absent (a saved
recording opens anywhere); views format what they are handed and never reach
into capture or memory; analysis reads the model only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unimem"


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved within unimem)."""
    module = ".".join(("unimem", *path.relative_to(PACKAGE).with_suffix("").parts))
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module[:-9]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


def _layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def test_model_loads_without_mlx_or_widgets():
    code = ("import sys, unimem.model, unimem.model.chrome, unimem.model.text; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mlx', 'anywidget', 'ipywidgets', 'numpy')))")
    # unimem/__init__ imports everything; load the model package on its own.
    stub = ("import sys, types, pathlib; p = types.ModuleType('unimem'); "
            f"p.__path__ = [{str(PACKAGE)!r}]; sys.modules['unimem'] = p; ")
    out = subprocess.run([sys.executable, "-c", stub + code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("layer,forbidden", [
    ("model", ("mlx", "anywidget", "ipywidgets", "unimem.capture", "unimem.memory",
               "unimem.analysis", "unimem.views", "unimem.devices")),
    ("analysis", ("mlx", "anywidget", "ipywidgets", "unimem.capture", "unimem.memory",
                  "unimem.views", "unimem.devices")),
    ("views", ("mlx", "unimem.capture", "unimem.memory", "unimem.devices")),
    ("capture", ("anywidget", "ipywidgets", "unimem.views", "unimem.analysis")),
    ("memory", ("anywidget", "ipywidgets", "unimem.views", "unimem.analysis")),
    ("placing", ("anywidget", "ipywidgets", "unimem.views")),
])
def test_layer_imports_point_one_way(layer, forbidden):
    offenders = {
        f"{path.name}: {name}"
        for path in _layer_files(layer)
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    }
    assert not offenders, f"{layer}/ imports what it must not: {sorted(offenders)}"

"""The model is plain data: none of its modules imports MLX or a widget library."""

import ast
from pathlib import Path

import unimem.model

FORBIDDEN = {"mlx", "anywidget", "ipywidgets", "traitlets", "IPython"}


def test_model_modules_import_neither_mlx_nor_widgets():
    for path in sorted(Path(unimem.model.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            bad = {n.split(".")[0] for n in names} & FORBIDDEN
            assert not bad, f"{path.name} imports {sorted(bad)}"

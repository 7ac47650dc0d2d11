"""The lesson notebooks' own rules, checked without running them (nbval runs them).

A notebook here is a lesson and a test on every platform, so its stored outputs
must come from a clean CI-sized run, every platform-dependent output it hides from
nbval must be backed by an assertion, and it must end with exercises.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
IGNORE = "nbval-ignore-output"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_the_six_lessons_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 6 and all(re.fullmatch(r"0[1-6]_[a-z_]+\.ipynb", n) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ci_switch_and_exercises(path: Path) -> None:
    nb = load(path)
    assert 'CI = os.environ.get("UNIMEM_CI") == "1"' in source(code_cells(nb)[0]), \
        "the first code cell must pick the CI-sized workload from UNIMEM_CI"
    last = nb["cells"][-1]
    assert last["cell_type"] == "markdown" and "## Exercises" in source(last)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_a_clean_run(path: Path) -> None:
    """Every code cell ran, none failed, and no run-specific noise was stored."""
    nb = load(path)
    assert "widgets" not in nb["metadata"], "strip widget state: it bloats diffs"
    for i, cell in enumerate(code_cells(nb)):
        assert cell["execution_count"] is not None, f"code cell {i} was not run"
        assert "execution" not in cell["metadata"], f"code cell {i} stores timestamps"
        assert not any(o["output_type"] == "error" for o in cell["outputs"]), f"cell {i} failed"
        text = output_text(cell)
        assert not re.search(r"\b0x[0-9a-f]{6,}", text), f"cell {i} shows a memory address"
        assert "/work/" not in text and "/home/" not in text, f"cell {i} shows a local path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_hidden_outputs_are_backed_by_assertions(path: Path) -> None:
    """A cell nbval does not compare asserts its invariant, or the next code cell does.

    Displays of a widget or repr may stand alone only when the same object is checked
    further down (the next cell that uses the name asserts on it).
    """
    cells = code_cells(nb := load(path))
    for i, cell in enumerate(cells):
        if IGNORE not in cell["metadata"].get("tags", []):
            continue
        nearby = [source(c) for c in cells[i:i + 3]]
        assert any("assert " in s for s in nearby), (
            f"{path.name}: code cell {i} hides its output from nbval and no assertion follows:\n"
            f"{source(cell)}")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_the_browser_test_finds_its_widgets() -> None:
    """The real-browser test looks for explore in 01 and residency strips in 04."""
    by_name = {p.name[:2]: "\n".join(source(c) for c in code_cells(load(p))) for p in NOTEBOOKS}
    assert "um.explore(" in by_name["01"]
    assert "um.MemoryView(" in by_name["04"] and "um.track(" in by_name["04"]

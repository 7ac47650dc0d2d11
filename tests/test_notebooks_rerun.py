"""Every lesson, executed twice: a cell nbval compares must print the same both times.

nbval compares each untagged cell's output with the stored one, after
notebooks/sanitize.cfg has replaced exactly unimem's duration and ratio formats and
memory addresses. A cell whose output varies between runs for any other reason (a
count of samples, a thread count, a winner decided by noise) passes nbval only when
the stored run and the new run happen to agree. Running each notebook twice here, in
the same CI-sized setting (UNIMEM_CI=1), catches such a cell: it must be tagged
`nbval-ignore-output` (and assert its invariant) or print what does not vary.

Slow (every notebook runs twice): marked `rerun`, run by `make test-notebooks`,
left out of `make test-unit`; select it with `-m rerun`.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.rerun

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
IGNORE = ("nbval-ignore-output", "nbval-skip")


def sanitisers() -> list[tuple[re.Pattern[str], str]]:
    """notebooks/sanitize.cfg, read the way nbval reads it."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "notebooks" / "sanitize.cfg", encoding="ascii")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


SANITISERS = sanitisers()


def sanitised(text: str) -> str:
    for regex, replace in SANITISERS:
        text = regex.sub(replace, text)
    return text


def compared_outputs(cell: dict) -> list[str]:
    """What nbval compares of a cell: stream text and each result's text/plain."""
    def text(value: str | list[str]) -> str:  # stored notebooks keep text as a list of lines
        return value if isinstance(value, str) else "".join(value)

    parts = []
    stream = None  # name of the stream the last part came from
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            # the kernel may split one print into several outputs; nbval joins them
            if stream == out["name"]:
                parts[-1] += text(out["text"])
            else:
                parts.append(f"{out['name']}: {text(out['text'])}")
            stream = out["name"]
            continue
        stream = None
        if out["output_type"] in ("execute_result", "display_data"):
            parts.append(text(out.get("data", {}).get("text/plain", "")))
        elif out["output_type"] == "error":
            parts.append(f"error: {out['ename']}: {out['evalue']}")
    return [sanitised(p) for p in parts]


def run(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


@pytest.fixture(autouse=True)
def ci_sized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIMEM_CI", "1")
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), path) if p))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_untagged_cells_print_the_same_twice(path: Path) -> None:
    first, second = run(path), run(path)
    differing = []
    for i, (a, b) in enumerate(zip(first.cells, second.cells)):
        if a.cell_type != "code" or any(t in a.metadata.get("tags", []) for t in IGNORE):
            continue
        if compared_outputs(a) != compared_outputs(b):
            differing.append(f"cell {i}:\n  first:  {compared_outputs(a)}\n"
                             f"  second: {compared_outputs(b)}")
    assert not differing, (
        f"{path.name}: untagged cells printed different things in two runs; tag them "
        "nbval-ignore-output (and assert their invariant) or print what does not vary:\n"
        + "\n".join(differing))


def test_one_print_split_by_the_kernel_compares_as_one_output() -> None:
    split = {"outputs": [{"output_type": "stream", "name": "stdout", "text": "a = 1"},
                         {"output_type": "stream", "name": "stdout", "text": "\n"}]}
    whole = {"outputs": [{"output_type": "stream", "name": "stdout", "text": ["a = 1\n"]}]}
    assert compared_outputs(split) == compared_outputs(whole) == [sanitised("stdout: a = 1\n")]

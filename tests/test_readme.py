"""The README's tour runs as written, and says what it gives.

Every ```python block under "A tour of the API" runs in order in one namespace, as a
reader would paste them. A line ``expr  # N ...`` (a number first in the comment)
states what the expression gives: it is asserted, so the comment cannot drift from
what the code does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CLAIM = re.compile(r"^(?P<expr>\S.*?)\s+#\s*(?P<value>\d+)\b")


def tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    tour = text.split("## A tour of the API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", tour, flags=re.DOTALL)


def test_the_tour_has_its_blocks() -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 7 and "um.trace" in "".join(blocks) and "um.watch" in "".join(blocks)


def test_every_tour_block_runs_and_every_stated_value_holds(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tour writes fun.json
    namespace: dict[str, object] = {}
    checked = 0
    for i, block in enumerate(tour_blocks()):
        try:
            exec(compile(block, f"README tour block {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:  # noqa: BLE001 - name the block that broke
            pytest.fail(f"README tour block {i} raised {type(e).__name__}: {e}\n{block}")
        for line in block.splitlines():
            m = CLAIM.match(line)
            if m:
                got = eval(m["expr"], namespace)
                assert got == int(m["value"]), f"README says {line.strip()!r}, got {got}"
                checked += 1
    assert checked >= 2
    assert (tmp_path / "fun.json").exists()

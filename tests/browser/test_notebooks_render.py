"""The lesson notebooks in a real browser: run every cell, then check the widgets drew.

The selectors are the DOM contract of the widgets (data-* attributes count what was
drawn), so a widget that renders an empty canvas fails here.
"""

from __future__ import annotations

import pytest
from labharness import REPO, LabPage, screenshot

pytestmark = pytest.mark.browser

# notebook -> [(selector, attribute that must be a number > 0, or None)]
EXPECTED: dict[str, list[tuple[str, str | None]]] = {
    "01_unified_memory_basics.ipynb": [
        (".unimem-explore .unimem-timeline", "data-bars"),
        (".unimem-explore .unimem-timeline .unimem-lane-label", None),
    ],
    "04_memory_residency.ipynb": [
        (".unimem-residency-strip", "data-pages"),
    ],
    "06_watch_a_training_loop.ipynb": [  # the live views, after the loop ended
        (".unimem-timeline", "data-bars"),
        (".unimem-memory .unimem-memory-counters", None),
    ],
    "08_place_any_code.ipynb": [  # plotly's charts, and explore by module
        (".js-plotly-plot .main-svg", None),
        (".unimem-explore .unimem-timeline", "data-bars"),
        (".unimem-explore .widget-dropdown", None),
    ],
    "09_beyond_one_machine.ipynb": [  # a merged 2-rank job: a lane per rank
        (".unimem-timeline", "data-bars"),
    ],
}


@pytest.mark.parametrize("notebook", sorted(EXPECTED))
def test_notebook_widgets_render(lab_page: LabPage, notebook: str) -> None:
    assert (REPO / "notebooks" / notebook).exists(), f"notebooks/{notebook} is missing"
    page = lab_page.open_and_run(notebook)
    for selector, positive_attr in reversed(EXPECTED[notebook]):  # the first one ends on screen
        lab_page.expect(selector, positive_attr)
    screenshot(page, notebook.removesuffix(".ipynb"))

"""Charts in a real JupyterLab: plotly's own renderer draws them, one bar per placement.

The notebook builds its data by hand (Timings, a Ledger, Groups): no measuring, so
the counts below are exact. What is checked is that JupyterLab picked plotly's
mime type over the text forms, and that the SVG plotly drew holds a bar (and an
error bar) per placement, a marker per candidate and a bar per group and target.
"""

from __future__ import annotations

import nbformat
import pytest
from labharness import LabPage, screenshot
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

SETUP = """from unimem.comparison import Comparison, Row
from unimem.model.placement import Candidate, Group, Ledger
from unimem.model.recording import Recording, Timing
from unimem.views.charts import comparison_chart, group_cost_chart, ledger_chart


def rec(samples):
    r = Recording(title="f", placement={"d": "cpu"}, mode="native", method="by hand")
    r.timing = Timing(tuple(samples), 1)
    return r


def cand(label, source, predicted, samples):
    return Candidate(label, (("*", "cpu"),), source, predicted=predicted,
                     measured=Timing(tuple(samples), 0))


groups = [Group("left", 4, cost={"cpu": 0.002, "cpu:1": 0.003}),
          Group("right", 2, cost={"cpu": 0.001, "cpu:1": 0.0005})]
ledger = Ledger("step", ("cpu", "cpu:1"), groups, [],
                [cand("all cpu", "trivial", 0.020, [0.021, 0.023, 0.020]),
                 cand("hand", "hand", 0.012, [0.013, 0.012, 0.015]),
                 cand("predicted #1", "predicted", 0.010, [0.011, 0.0105, 0.0115])],
                "predicted #1", True)
print("ready")"""

COMPARISON = """comparison_chart(Comparison("fun", [
    Row("all cpu", rec([0.010, 0.012, 0.011, 0.013, 0.009])),
    Row("split", rec([0.005, 0.006, 0.0055, 0.0065, 0.0045])),
    Row("all cpu:1", rec([0.008, 0.009, 0.0085, 0.0095, 0.0075])),
]))"""

LEDGER = "ledger_chart(ledger)"
GROUPS = 'group_cost_chart(groups, ("cpu", "cpu:1"))'

# Elements of plotly's SVG, inside the output of the cell at index i (notebook order)
_COUNT_JS = """([i, sel]) => {
    const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
    return cell ? cell.querySelectorAll(sel).length : -1;
}"""

# the output widget of plotly's JupyterLab renderer (jupyterlab-plotly, shipped with plotly)
PLOTLY_OUTPUT = ".jp-OutputArea-output.jp-RenderedPlotly"


def write_notebook(lab_page: LabPage, name: str, *sources: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, lab_page.lab.root / name)
    return name


def expect_count(lab_page: LabPage, cell: int, selector: str, n: int) -> None:
    """Exactly n elements matching `selector` in cell `cell`'s output, once plotly drew."""
    try:
        lab_page.page.wait_for_function(f"a => ({_COUNT_JS})(a) === {n}",
                                        arg=[cell, selector], timeout=60_000)
    except PlaywrightTimeout:
        found = lab_page.page.evaluate(_COUNT_JS, [cell, selector])
        pytest.fail(lab_page.context(f"cell {cell}: {selector}: {found} element(s), not {n}"))


def test_charts_render_as_plotly_svg(lab_page: LabPage) -> None:
    name = write_notebook(lab_page, "_charts.ipynb", SETUP, COMPARISON, LEDGER, GROUPS)
    page = lab_page.open_and_run(name)
    lab_page.expect(".js-plotly-plot .main-svg")
    for cell in (1, 2, 3):  # plotly's renderer was chosen over the text/html <pre>
        expect_count(lab_page, cell, PLOTLY_OUTPUT, 1)
        expect_count(lab_page, cell, ".jp-OutputArea-output", 1)
        expect_count(lab_page, cell, ".js-plotly-plot .main-svg .cartesianlayer", 1)
        expect_count(lab_page, cell, "pre.unimem-chart", 0)
    # the comparison: a bar and an error bar per placement, labelled in the given order
    expect_count(lab_page, 1, ".js-plotly-plot .barlayer .point", 3)
    expect_count(lab_page, 1, ".js-plotly-plot .errorbar", 3)
    ticks = page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')[1]
        .querySelectorAll('.js-plotly-plot .xtick text')].map(t => t.textContent)""")
    assert ticks == ["all cpu", "split", "all cpu:1"], ticks
    title = page.evaluate("""() => document.querySelectorAll('.jp-Notebook .jp-Cell')[1]
        .querySelector('.js-plotly-plot .gtitle').textContent""")
    assert title == "fun: median of 5 plain runs per placement (bars: IQR)", title
    # the ledger: one marker per candidate (three sources, three traces) and the y=x line
    expect_count(lab_page, 2, ".js-plotly-plot .scatterlayer .trace", 4)
    expect_count(lab_page, 2, ".js-plotly-plot .scatterlayer .point", 3)
    # the group costs: two groups on each of two targets
    expect_count(lab_page, 3, ".js-plotly-plot .barlayer .trace", 2)
    expect_count(lab_page, 3, ".js-plotly-plot .barlayer .point", 4)
    screenshot(page, "charts")


# lesson -> bars its placement chart must draw (03: four placements; 05: write, read and
# the pair per hand-off direction: one direction without a GPU, two with one)
LESSONS = {"03_cpu_gpu_split.ipynb": {4}, "05_is_it_really_unified.ipynb": {3, 6}}

_BARS_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output.jp-RenderedPlotly')]
    .map(el => [el.querySelectorAll('.barlayer .point').length,
                el.querySelectorAll('.errorbar').length])"""


@pytest.mark.parametrize("notebook", sorted(LESSONS))
def test_the_lessons_charts_render(lab_page: LabPage, notebook: str) -> None:
    page = lab_page.open_and_run(notebook)
    lab_page.expect(".jp-RenderedPlotly .main-svg .barlayer .point")
    page.wait_for_timeout(1000)  # every chart of the notebook drawn, not only the first
    charts = page.evaluate(_BARS_JS)
    assert len(charts) == 1, charts  # the lesson's one chart, drawn by plotly
    ((bars, errorbars),) = charts
    assert bars in LESSONS[notebook] and errorbars == bars, charts
    screenshot(page, f"charts-{notebook.removesuffix('.ipynb')}")

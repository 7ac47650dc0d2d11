"""The harness itself, on notebooks it writes: Lab starts, a kernel runs, widgets render.

Independent of the lesson notebooks, so a failure here points at the set-up
(JupyterLab, anywidget's front end, Chromium), not at a lesson.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from labharness import LabPage, screenshot

import unimem as um

pytestmark = pytest.mark.browser

ABOUT = "import unimem as um\num.about()"

# A widget defined inline: proves anywidget's JupyterLab extension is loaded and
# runs an ES module, whatever state unimem's own widgets are in.
HELLO = """import anywidget, traitlets

class Hello(anywidget.AnyWidget):
    _esm = '''export default { render({ model, el }) {
        el.classList.add("smoke-anywidget");
        el.dataset.value = String(model.get("value"));
        el.textContent = "anywidget " + model.get("value");
    } }'''
    value = traitlets.Int(42).tag(sync=True)

Hello()"""

TIMELINE = """import mlx.core as mx

def fun(a, b, d1, d2):
    x = mx.matmul(a, b, stream=d1)
    for _ in range(20):
        b = mx.exp(b, stream=d2)
    return x, b

a, b = mx.random.uniform(shape=(64, 32)), mx.random.uniform(shape=(32, 4))
p = um.profile(fun, a, b, d1="cpu", d2="cpu:1", repeat=2)
um.Timeline(p)"""


def write_notebook(root: Path, name: str, *sources: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / name)
    return name


def test_about_card_and_anywidget_render(lab_page: LabPage) -> None:
    name = write_notebook(lab_page.lab.root, "_smoke_about.ipynb", ABOUT, HELLO)
    page = lab_page.open_and_run(name)
    card = lab_page.expect(".unimem-about")
    text = card.inner_text()
    assert "unimem platform card" in text
    assert um.platform().summary in text, text
    assert page.evaluate("() => window.jupyterapp.isPluginActivated('anywidget:plugin')")
    hello = lab_page.expect(".smoke-anywidget")
    assert hello.get_attribute("data-value") == "42"
    screenshot(page, "smoke_about")


def test_timeline_renders_lanes_and_bars(lab_page: LabPage) -> None:
    name = write_notebook(lab_page.lab.root, "_smoke_timeline.ipynb", ABOUT, TIMELINE)
    page = lab_page.open_and_run(name)
    timeline = lab_page.expect(".unimem-timeline", positive_attr="data-bars")
    assert int(timeline.get_attribute("data-lanes") or 0) >= 2
    assert page.locator(".unimem-timeline .unimem-lane-label").count() >= 2
    screenshot(page, "smoke_timeline")

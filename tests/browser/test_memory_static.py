"""widgets/memory.js (with shared.js: MemoryView._esm) in headless Chromium, fed a real MemoryView's state (no Jupyter).

Checks the DOM contract (.unimem-memory, .unimem-memory-counters, .unimem-registry,
one .unimem-residency-strip per row with data-pages), that strips are painted in
the colour of where pages live, and that highlight and refresh reach the page.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlx.core as mx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _static_harness import browser_page

from unimem import MemoryView
from unimem.memory.registry import Registry
from unimem.model.recording import Lane, MemorySample, Op, Recording

pytestmark = pytest.mark.browser
BYTES = ("counters", "strips")
PAGE = """<!doctype html><meta charset="utf-8"><body><div id="el"></div>
<script type="module">
const state = %s;
const dv = (b64) => new DataView(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
for (const k of %s) state[k] = dv(state[k]);
const handlers = {};
window.model = {
  get: (k) => state[k],
  set(k, v) { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  on(ev, f) { (handlers[ev] = handlers[ev] || []).push(f); },
  off(ev, f) { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
};
const widget = await import("data:text/javascript;base64,%s");
widget.default.render({ model: window.model, el: document.getElementById("el") });
window.ready = true;
</script>"""
STRIP_PIXEL_JS = """(i) => {
  const c = document.querySelectorAll(".unimem-residency-strip")[i];
  return Array.from(c.getContext("2d").getImageData(c.width / 2, c.height / 2, 1, 1).data);
}"""


def state(view: MemoryView) -> dict:
    names = ("n_samples", "rows", "classes", "explain", "backend", "highlight_op",
             "highlight_rows", "transfers")
    out = {k: getattr(view, k) for k in names}
    out.update({k: base64.b64encode(getattr(view, k)).decode() for k in BYTES})
    return out


@contextmanager
def rendered(browser, view: MemoryView) -> Iterator:
    """A page with ``view``'s ES module rendered from its state, without errors."""
    js = base64.b64encode(view._esm.encode()).decode()
    html = PAGE % (json.dumps(state(view)), json.dumps(list(BYTES)), js)
    with browser_page(browser) as page:  # the session Chromium: one Playwright per thread
        page.set_content(html)
        page.wait_for_function("window.ready === true")
        assert page.unimem_errors == []
        yield page


def test_memory_view_renders_counters_table_and_strips(browser):
    rec = Recording("t", {}, "watch", "test", [Lane(0, "cpu", "cpu", 0)])
    rec.ops += [Op(0, 0, "uniform", 0.0, end=0.1), Op(1, 0, "exp", 0.1, end=0.2, inputs=(0,))]
    rec.memory += [MemorySample(0.01 * i, 1000 * i, 500, 1000 * i + 300) for i in range(50)]
    reg = Registry(rec)
    x = mx.random.uniform(shape=(1 << 18,))
    y = mx.exp(x)
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.observe(1, [y])
    view = MemoryView(rec, reg, probe=True)
    with rendered(browser, view) as page:
        for css in (".unimem-memory", ".unimem-memory-counters", ".unimem-registry"):
            assert page.locator(css).count() == 1, css
        pages = page.eval_on_selector_all(".unimem-residency-strip",
                                          "els => els.map((e) => +e.dataset.pages)")
        assert pages == [r["pages"] for r in view.rows] and all(p > 0 for p in pages)
        samples = page.eval_on_selector(".unimem-memory-counters canvas", "c => +c.dataset.samples")
        assert samples == 50
        if view.backend == "cpu":  # every page on a host node: the strip is host-green
            assert page.evaluate(STRIP_PIXEL_JS, 0)[:3] == [44, 160, 44]
        page.evaluate("window.model.set('highlight_rows', [1])")
        names = page.eval_on_selector_all("tr.unimem-hl", "els => els.map((e) => e.dataset.name)")
        assert names == ["op1"]
        page.evaluate("window.model.set('rows', [])")  # a refresh that emptied the registry
        assert page.locator(".unimem-residency-strip").count() == 0


COUNTER_COLUMN_JS = """(x) => {
  const c = document.querySelector(".unimem-memory-counters canvas");
  const px = c.getContext("2d").getImageData(x, 0, 1, 48).data;  // the first panel: active
  const rows = [];
  for (let y = 0; y < 48; y++) if (px[4 * y] < 100 && px[4 * y + 2] > 150) rows.push(y);
  return { rows, width: c.width, axis: c.dataset.axis };
}"""


def test_counters_are_steps_with_a_time_axis(browser):
    """Two samples, 0 B then 1 KiB: between them the active counter still reads 0 (a
    step at the second sample, not a ramp through the middle), and the time axis spans
    the samples."""
    rec = Recording("t", {}, "watch", "test", [Lane(0, "cpu", "cpu", 0)])
    rec.ops.append(Op(0, 0, "exp", 0.0, end=0.1))
    rec.memory += [MemorySample(0.0, 0, 0, 0), MemorySample(0.2, 1024, 0, 1024)]
    view = MemoryView(rec, Registry(rec), probe=False)
    with rendered(browser, view) as page:
        width = page.evaluate(COUNTER_COLUMN_JS, 0)["width"]
        middle = page.evaluate(COUNTER_COLUMN_JS, width // 2)
        assert middle["rows"] and min(middle["rows"]) >= 40  # at the bottom: still 0 B
        assert middle["axis"] == "200.00 ms"


def test_measured_copies_and_migrations_get_a_table(browser):
    """A recording with CUPTI's memcpy and migration bars: one row per route, largest
    first; none without them."""
    rec = Recording("t", {}, "profile", "native", [Lane(0, "gpu copies", "gpu", -1)])
    rec.ops += [
        Op(0, 0, "memcpy", 0.0, start=0.0, end=1e-3, start_measured=True, activity="memcpy",
           nbytes=16 << 20, detail="memcpy device to device, device to managed"),
        Op(1, 0, "migration device to host", 2e-3, start=2e-3, end=2.1e-3,
           start_measured=True, activity="migration", nbytes=1 << 20),
        Op(2, 0, "migration device to host", 3e-3, start=3e-3, end=3.1e-3,
           start_measured=True, activity="migration", nbytes=1 << 20)]
    view = MemoryView(rec, probe=False)
    assert [(t["activity"], t["count"]) for t in view.transfers] == [("memcpy", 1),
                                                                    ("migration", 2)]
    with rendered(browser, view) as page:
        rows = page.eval_on_selector_all(
            ".unimem-memory-transfers tr[data-activity]",
            "els => els.map((e) => [e.dataset.activity, e.cells[0].textContent, "
            "e.cells[2].textContent])")
        assert rows == [["memcpy", "memcpy device to device, device to managed", "16.0 MiB"],
                        ["migration", "migration device to host", "2.0 MiB"]]
        page.evaluate("window.model.set('transfers', [])")
        assert page.locator(".unimem-memory-transfers tr").count() == 0

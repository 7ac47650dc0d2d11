"""The timeline widget in headless Chromium without Jupyter: a static page and a fake model.

The page imports the widget's ES module (``Timeline._esm``: widgets/shared.js,
timeline.js, timeline_draw.js and timeline_labels.js joined) exactly as anywidget does
(``default.render({model, el})``) and hands it a minimal model
(get/set/on/off/save_changes/send) holding the real state a :class:`unimem.Timeline`
would sync: its meta, its binary payload (as the DataView ipywidgets delivers) and
its highlight. Served over HTTP from a temp folder (Chromium refuses ES module
imports from file://). Used by
benchmarks/render.py (timings), tests/browser/test_timeline_static.py (smoke) and
tests/browser/test_js_functions_static.py (the module's functions, one by one).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

PAGE = """<!doctype html><meta charset="utf-8"><title>unimem timeline harness</title>
<body style="margin:8px"><div id="el" style="width:1200px"></div>
<script type="module">
import widget from "./timeline.js";
const state = await (await fetch("state.json")).json();
state._payload = new DataView(await (await fetch("payload.bin")).arrayBuffer());
const handlers = {};
const model = {
  saved: 0, sent: [],
  get(k) { return state[k]; },
  set(k, v) { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  on(ev, f) { (handlers[ev] = handlers[ev] || []).push(f); },
  off(ev, f) { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
  save_changes() { this.saved++; },
  send(m) { this.sent.push(m); },
};
window.model = model;
const el = document.getElementById("el");
const t0 = performance.now();
widget.render({ model, el });
const root = el.querySelector(".unimem-timeline");
await new Promise((resolve) => {
  const poll = () => (root.dataset.draws ? resolve() : requestAnimationFrame(poll));
  poll();
});
window.firstRenderMs = performance.now() - t0;
window.sinceNavigationMs = performance.now(); // page, module, state and payload loads included
window.ready = true;
</script>"""

# Run in the page: one interaction, then wait for the frame it schedules.
ZOOM_JS = """async (deltaY) => {
  const c = document.querySelector(".unimem-timeline-canvas"), root = c.closest(".unimem-timeline");
  const r = c.getBoundingClientRect(), before = root.dataset.draws, t0 = performance.now();
  c.dispatchEvent(new WheelEvent("wheel", {deltaY, clientX: r.left + r.width * 0.4,
                                           clientY: r.top + 40, bubbles: true, cancelable: true}));
  await new Promise((res) => { const p = () => root.dataset.draws !== before ? res() : requestAnimationFrame(p); p(); });
  return {ms: performance.now() - t0, drawMs: +root.dataset.drawMs, bars: +root.dataset.bars};
}"""

HOVER_JS = """async ([fx, row]) => {
  const c = document.querySelector(".unimem-timeline-canvas");
  const label = document.querySelectorAll(".unimem-lane-label")[row];
  const r = c.getBoundingClientRect(), y = r.top + label.offsetTop + label.offsetHeight / 2;
  const t0 = performance.now();
  c.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width * fx, clientY: y, bubbles: true}));
  const tip = document.querySelector(".unimem-tooltip");
  return {ms: performance.now() - t0, shown: tip.style.display === "block", text: tip.textContent,
          hovered: window.model.get("hovered")};
}"""


# Run in the page: what a kernel-side refresh() sends (meta, payload, highlight at once).
UPDATE_JS = """async ([meta, payloadBase64, highlight]) => {
  const root = document.querySelector(".unimem-timeline"), before = root.dataset.draws;
  const bytes = Uint8Array.from(atob(payloadBase64), (c) => c.charCodeAt(0));
  window.model.set("_payload", new DataView(bytes.buffer));
  window.model.set("_meta", meta);
  window.model.set("_highlight", highlight);
  await new Promise((res) => { const p = () => root.dataset.draws !== before ? res() : requestAnimationFrame(p); p(); });
  return {lanes: +root.dataset.lanes, bars: +root.dataset.bars, flows: +root.dataset.flows};
}"""


def expose(page: Any, module: str, names: Sequence[str]) -> None:
    """Run a widget's module text in ``page`` and put its top-level ``names`` (which a
    module keeps to itself) on ``window.unimem``, for tests of its functions."""
    source = f"{module}\nwindow.unimem = {{ {', '.join(names)} }};\n"
    page.evaluate("""async (src) => {
      const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      await import(url);
    }""", source)
    if page.unimem_errors:
        raise RuntimeError(f"the module raised in the page: {page.unimem_errors}")


def update_args(timeline: Any) -> list[Any]:
    """UPDATE_JS's argument for ``timeline``'s current state."""
    state, payload = widget_state(timeline)
    return [state["_meta"], base64.b64encode(payload).decode(), state["_highlight"]]


def widget_state(timeline: Any) -> tuple[dict[str, Any], bytes]:
    """What the widget would sync: JSON state and the binary payload."""
    state = {"_meta": timeline._meta, "_highlight": list(timeline._highlight),
             "hovered": timeline.hovered}
    return state, bytes(timeline._payload)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(timeline: Any) -> Iterator[str]:
    """A local URL of the page, fed ``timeline``'s state; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="unimem-harness-"))
    server = None
    try:
        state, payload = widget_state(timeline)
        (folder / "timeline.js").write_text(timeline._esm, encoding="utf-8")
        (folder / "state.json").write_text(json.dumps(state))
        (folder / "payload.bin").write_bytes(payload)
        (folder / "index.html").write_text(PAGE)
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def browser_page(browser: Any = None, timeout_s: float = 60) -> Iterator[Any]:
    """A page in ``browser`` (e.g. the browser tests' session Chromium), or else in a
    headless Debian Chromium started here (never a downloaded browser); closed after."""
    if browser is not None:
        page = _page(browser, timeout_s)
        try:
            yield page
        finally:
            page.context.close()
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        own = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield _page(own, timeout_s)
        finally:
            own.close()


def _page(browser: Any, timeout_s: float) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(timeout_s * 1000)
    page.unimem_errors = []
    page.on("pageerror", lambda exc: page.unimem_errors.append(str(exc)))
    return page


def open_timeline(page: Any, url: str) -> float:
    """Load the page and wait for the first drawn frame; ms from ``render()`` to it."""
    page.goto(url)
    try:
        page.wait_for_function("window.ready === true")
    except Exception as exc:
        raise RuntimeError(f"the timeline never drew; page errors: {page.unimem_errors}") from exc
    if page.unimem_errors:
        raise RuntimeError(f"timeline.js raised in the page: {page.unimem_errors}")
    return float(page.evaluate("window.firstRenderMs"))

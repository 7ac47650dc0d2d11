"""widgets/timeline.js in headless Chromium, fed a real Timeline's state (no Jupyter).

Quicker than the JupyterLab test and aimed at the renderer: lanes, bars, flows,
open bars, hover, zoom and reset, the payload of two stacked recordings. Pages
open in the browser tests' session Chromium (the ``browser`` fixture).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _static_harness import (
    HOVER_JS,
    UPDATE_JS,
    ZOOM_JS,
    browser_page,
    open_timeline,
    serve,
    update_args,
)

from unimem import Timeline
from unimem.model.recording import Flow, Lane, MemorySample, Op, Recording, Timing
from unimem.model.text import fmt_time

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def recording(title: str, n: int, in_flight: bool) -> Recording:
    rec = Recording(title, {"d1": "gpu", "d2": "cpu"}, "op", "measured: test",
                    [Lane(0, "gpu", "gpu", 0), Lane(1, "cpu", "cpu", 1)])
    for i in range(n):
        end = None if in_flight and i == n - 1 else (i + 1) * 1e-3
        rec.ops.append(Op(i, i % 2, f"Op{i % 3}", i * 1e-3, i * 1e-3, end,
                          inputs=(i - 1,) if i else (), shapes=((8, 8),), dtypes=("float32",),
                          nbytes=256))
        if i:
            rec.flows.append(Flow(i - 1, i, "device switch", 256))
        rec.memory.append(MemorySample(i * 1e-3, 256 * i, 128, 256 * i))
    return rec


def test_renders_lanes_bars_flows_and_interacts(browser):
    first = recording("first", 12, in_flight=True)
    first.timing, first.wall = Timing((2e-3, 3e-3, 4e-3), 1), 25e-3
    tl = Timeline(first, recording("second", 6, False), labels=["one", "two"])
    tl.highlight([0, 1, 2])
    with serve(tl) as url, browser_page(browser) as page:
        open_timeline(page, url)
        root = page.locator(".unimem-timeline")
        assert root.get_attribute("data-lanes") == "4"
        assert root.get_attribute("data-bars") == "18"
        assert root.get_attribute("data-flows") == "16"
        labels = page.locator(".unimem-lane-label").all_inner_texts()
        assert len(labels) == 4 and labels[0].startswith("GPU") and labels[1].startswith("CPU")
        titles = page.locator(".unimem-recording-title").all_inner_texts()
        assert len(titles) == 2
        # words and numbers chosen in the page from data, as Python's repr and fmt_time say them
        assert "measured ends, derived starts" in titles[0] and "derived starts" in repr(tl)
        assert (f"instrumented run {fmt_time(first.wall)} = {first.overhead:.2f}× the plain "
                f"median · timeline makespan {fmt_time(first.makespan)} = "
                f"{first.makespan_gap:.2f}× the plain median") in titles[0]
        assert "plain median" not in titles[1]  # no plain runs to compare with
        # the distortion ratios are never clipped by the header (it cuts what overflows)
        head = page.locator(".unimem-recording-title").first.bounding_box()
        cost = page.locator(".unimem-recording-title .unimem-distortion").first.bounding_box()
        assert head is not None and cost is not None
        assert cost["x"] + cost["width"] <= head["x"] + head["width"]
        assert cost["y"] + cost["height"] <= head["y"] + head["height"]
        legend = page.locator(".unimem-timeline-head").inner_text()
        assert "device switch" in legend and "cross-stream wait" not in legend  # kinds present
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "timeline_static.png"), full_page=True)

        hover = page.evaluate(HOVER_JS, [0.08, 0])  # early on the GPU lane of recording 0
        assert hover["shown"] and "Op0" in hover["text"] and "(8, 8) float32" in hover["text"]
        assert hover["hovered"] == 0  # synced back through the model

        zoom = page.evaluate(ZOOM_JS, -600)
        assert 0 < zoom["bars"] < 18  # zoomed in: fewer bars in view
        canvas = page.locator(".unimem-timeline-canvas")
        box = canvas.bounding_box()
        draws = root.get_attribute("data-draws")
        page.mouse.move(box["x"] + 300, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + 100, box["y"] + 60, steps=4)  # drag: pan later in time
        page.mouse.up()
        page.wait_for_function(
            f"document.querySelector('.unimem-timeline').dataset.draws !== '{draws}'")
        canvas.dblclick()
        page.wait_for_function(
            "document.querySelector('.unimem-timeline').dataset.bars === '18'")
        assert not page.unimem_errors


def test_starts_empty_then_follows_refreshes(browser):
    """What a live watch does: a Timeline made before any op, refreshed as ops arrive."""
    rec = Recording("live", {}, "watch", "measured: test")
    tl = Timeline(rec, window=4)
    with serve(tl) as url, browser_page(browser) as page:
        open_timeline(page, url)
        root = page.locator(".unimem-timeline")
        assert (root.get_attribute("data-lanes"), root.get_attribute("data-bars")) == ("0", "0")
        full = recording("live", 6, in_flight=True)
        rec.lanes[:], rec.ops[:], rec.flows[:], rec.memory[:] = (
            full.lanes, full.ops, full.flows, full.memory)
        tl.refresh()
        drawn = page.evaluate(UPDATE_JS, update_args(tl))
        assert drawn == {"lanes": 2, "bars": 4, "flows": 3}  # the window: ops 2..5
        assert "showing last 4 of 6 ops" in page.locator(".unimem-recording-title").inner_text()
        assert not page.unimem_errors


def test_the_header_says_how_busy_the_gpu_was(browser):
    """Kernel bars (CUPTI's): the header gives busy of the kernels' span and host-bound,
    the numbers analysis/gpu.py computes."""
    import unimem as um

    rec = Recording("kernels", {}, "native", "measured: test", [Lane(0, "gpu", "gpu", 0)])
    for i in range(4):  # 1 ms of work spread over 7 ms
        rec.ops.append(Op(i, 0, "Exp", 2e-3 * i, 2e-3 * i, 2e-3 * i + 0.25e-3,
                          start_measured=True, activity="kernel"))
    rec.wall = 10e-3
    act = um.gpu_activity(rec)
    assert act.host_bound
    with serve(Timeline(rec)) as url, browser_page(browser) as page:
        open_timeline(page, url)
        title = page.locator(".unimem-recording-title").first.inner_text()
        assert (f"GPU busy {fmt_time(act.busy)} of a {fmt_time(act.span)} kernel span "
                f"(idle {act.idle_fraction:.0%}), host-bound") in title


def test_a_merged_jobs_ranks_are_groups_that_fold(browser):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
    from test_merge import rank_recording

    from unimem.analysis.merge import merge

    job = merge([rank_recording(r, 3, 0.05 if r == 2 else 0.0) for r in range(3)])
    with serve(Timeline(job.recording)) as url, browser_page(browser) as page:
        open_timeline(page, url)
        root = page.locator(".unimem-timeline")
        assert root.get_attribute("data-groups") == "3"
        assert root.get_attribute("data-bars") == "18" and root.get_attribute("data-flows") == "6"
        heads = page.locator(".unimem-group-label")
        assert heads.all_inner_texts() == ["▾ rank 0 (1 lane)", "▾ rank 1 (1 lane)",
                                           "▾ rank 2 (1 lane)"]
        heads.nth(1).click()  # fold rank 1: its bars and its collective arrows go
        page.wait_for_function("document.querySelector('.unimem-timeline').dataset.folded === '1'")
        page.wait_for_function("document.querySelector('.unimem-timeline').dataset.bars === '12'")
        assert root.get_attribute("data-flows") == "0"  # every join passes through rank 1
        assert page.locator(".unimem-lane-label").count() == 2
        assert heads.nth(1).inner_text() == "▸ rank 1 (1 lane)"
        heads.nth(1).click()  # and back
        page.wait_for_function("document.querySelector('.unimem-timeline').dataset.bars === '18'")
        assert page.locator(".unimem-lane-label").count() == 3

"""Render time of the timeline widget in real headless Chromium, 10k and 100k ops.

Claim: a 10,000-op recording renders in under 1 s and stays
interactive; 100,000 ops still render (bars narrower than a pixel are summed per
pixel column). Each size is a synthetic recording (ops on 2-4 stream lanes, one
GPU-labelled, cross-stream flows, memory samples) packed by the real
``unimem.Timeline`` and drawn by widgets/timeline.js in Debian's Chromium through
a static page with a fake anywidget model (tests/browser/_static_harness.py).
No MLX work is timed here.

    PYTHONPATH=. python3 benchmarks/render.py [--sizes 10000 100000] [--screenshot DIR]

Prints, per size: Python pack time, first render (render() call to first drawn
frame, includes decoding; and from navigation start, page and payload loads
included; median of --repeat page loads), a zoom step (wheel event to its drawn frame, median of
5) and a hover (mousemove to tooltip, median of 5); then the Python cost of one
``Timeline.refresh()`` of the default 20,000-op window with 1,000 new ops since
the previous one (what a live watch pays per screen update).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "browser")]

from _static_harness import HOVER_JS, ZOOM_JS, browser_page, open_timeline, serve
from factory import make_recording

from unimem import Timeline
from unimem.model.recording import Recording


def synthetic(n_ops: int, n_lanes: int = 3, seed: int = 0) -> Recording:
    """Ops handed round-robin-ish to FIFO lanes, a flow every ~40 ops, memory per op."""
    rnd = random.Random(seed)
    lanes = ["gpu"] + [f"cpu:{i - 1}" if i > 1 else "cpu" for i in range(1, n_lanes)]
    free = [0.0] * n_lanes
    last_on = [-1] * n_lanes
    ends: list[float] = []
    ops: list[dict[str, object]] = []
    memory: list[tuple[float, int, int, int]] = []
    t, active, peak = 0.0, 0, 0
    names = ["Exp", "Multiply", "Add", "Matmul", "Broadcast", "AsType"]
    for i in range(n_ops):
        lane = rnd.randrange(n_lanes) if rnd.random() < 0.3 else i % n_lanes
        t += rnd.expovariate(1 / 2e-6)
        inputs: tuple[int, ...] = ()
        start = max(t, free[lane])
        other = (lane + 1) % n_lanes
        if i % 40 == 39 and last_on[other] >= 0:
            inputs = (last_on[other],)
            start = max(start, ends[last_on[other]])
        end = start + rnd.expovariate(1 / 5e-6)
        free[lane], last_on[lane] = end, i
        ends.append(end)
        shape = (512, 4 * (1 + i % 8))
        nbytes = 4 * shape[0] * shape[1]
        ops.append({"lane": lane, "calls": names[i % len(names)], "submit": t, "start": start,
                    "end": end, "dispatched": t, "inputs": inputs, "shapes": (shape,),
                    "dtypes": ("float32",), "nbytes": nbytes})
        active += nbytes if rnd.random() < 0.6 else -min(active, nbytes)
        peak = max(peak, active)
        memory.append((end, active, nbytes * 3, peak))
    # flows (device switch to or from the GPU lane, else cross stream) come from inputs
    return make_recording(ops, lanes=lanes, title=f"synthetic {n_ops} ops",
                          placement={f"d{i}": name for i, name in enumerate(lanes)}, mode="op",
                          method="synthetic: ends as if measured, starts as if derived",
                          memory=memory)


def measure(n_ops: int, screenshot: Path | None, repeat: int) -> dict[str, float]:
    rec = synthetic(n_ops, n_lanes=3 if n_ops < 50_000 else 4)
    t = time.perf_counter()
    timeline = Timeline(rec, window=n_ops)
    pack_ms = (time.perf_counter() - t) * 1e3
    with serve(timeline) as url, browser_page() as page:
        loads = []
        for _ in range(repeat):  # a fresh page each time: first render, median of repeat
            loads.append((open_timeline(page, url), page.evaluate("window.sinceNavigationMs")))
        first = statistics.median(x[0] for x in loads)
        page_ms = statistics.median(x[1] for x in loads)
        bars = int(page.get_attribute(".unimem-timeline", "data-bars") or 0)
        if screenshot:
            screenshot.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot / f"timeline_{n_ops}.png"), full_page=True)
        zooms = [page.evaluate(ZOOM_JS, -240) for _ in range(5)]
        hovers = [page.evaluate(HOVER_JS, [0.3 + 0.05 * k, k % 2]) for k in range(5)]
        if screenshot:
            page.screenshot(path=str(screenshot / f"timeline_{n_ops}_zoomed.png"), full_page=True)
    return {
        "ops": n_ops, "bars drawn": bars, "payload KiB": len(timeline._payload) / 1024,
        "pack ms": pack_ms, "first render ms": first, "page ms": page_ms,
        "zoom ms": statistics.median(z["ms"] for z in zooms),
        "zoom draw ms": statistics.median(z["drawMs"] for z in zooms),
        "hover ms": statistics.median(h["ms"] for h in hovers),
        "hover hits": sum(h["shown"] for h in hovers),
    }


def refresh_ms(n_ops: int, window: int, new_ops: int, repeat: int = 5) -> float:
    """Median cost of Timeline.refresh() with ``new_ops`` arrived since the last one
    (what a live watch pays per screen update)."""
    full = synthetic(n_ops + repeat * new_ops)
    ops, full.ops = full.ops, full.ops[:n_ops]
    timeline = Timeline(full, window=window)
    times = []
    for k in range(repeat):
        full.ops = ops[:n_ops + (k + 1) * new_ops]
        t = time.perf_counter()
        timeline.refresh()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3, help="page loads per size (median)")
    ap.add_argument("--screenshot", type=Path, default=None,
                    help="folder for PNGs of each size (e.g. tests/artifacts)")
    args = ap.parse_args()
    print(f"timeline render in headless Chromium ({Path('/usr/bin/chromium')}), canvas 1200 px")
    for n in args.sizes:
        r = measure(n, args.screenshot, args.repeat)
        verdict = ""
        if n == 10_000:
            met = "met" if r["first render ms"] < 1000 else "NOT met"
            verdict = f"  (target < 1000 ms: {met})"
        print(f"{n:>7} ops: pack {r['pack ms']:.0f} ms, payload {r['payload KiB']:.0f} KiB, "
              f"first render {r['first render ms']:.0f} ms{verdict} "
              f"({r['page ms']:.0f} ms from navigation, loads included), "
              f"zoom step {r['zoom ms']:.1f} ms (draw {r['zoom draw ms']:.1f} ms), "
              f"hover {r['hover ms']:.2f} ms ({r['hover hits']}/5 on a bar), "
              f"{r['bars drawn']} bars drawn")
    print(f"refresh() of a 20000-op window on a 100000-op recording, 1000 new ops each time: "
          f"{refresh_ms(100_000, 20_000, 1_000):.0f} ms (median of 5; Python side, no browser)")


if __name__ == "__main__":
    main()

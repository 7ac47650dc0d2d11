"""Merging a large distributed job: 64 synthetic ranks × 10,000 ops, then drawing it.

Each rank is a synthetic recording (one CPU lane, work and an all-reduce per step,
its own clock skew and a neighbour's ping-pong stamps); ``um.merge`` maps every
rank onto rank 0's clock and joins the collectives. Then the merged timeline is
drawn in Debian's Chromium as benchmarks/render.py draws one (first render, zoom).
No MLX work is timed here.

    PYTHONPATH=. python3 benchmarks/merge.py [--ranks 64] [--ops 10000] [--no-browser]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from render import ZOOM_JS, browser_page, open_timeline, serve  # the same harness

from unimem.analysis.merge import merge
from unimem.model.ranks import Exchange, RankInfo
from unimem.model.recording import Lane, Op, Recording
from unimem.views.timeline import Timeline


def rank(r: int, size: int, n_ops: int, rng: random.Random) -> Recording:
    rec = Recording(f"rank {r}", {}, "watch", "synthetic")
    rec.lanes.append(Lane(0, "cpu", "cpu", 0))
    skew = rng.randrange(-10**10, 10**10) if r else 0
    t = 0.0
    for i in range(n_ops):
        coll = i % 10 == 9
        d = 2e-4 if coll else rng.uniform(2e-5, 1e-4)
        name = "Sum AllReduce" if coll else "Multiply"
        rec.add_op(Op(i, 0, name, t, start=t, end=t + d, start_measured=True, nbytes=4096))
        t += d
    rec.rank = RankInfo(r, size, "host", "ring", 10**9 + skew, tuple(
        Exchange(r + 1, 100, 150, 160, 210, w) for w in ("start", "end") if r + 1 < size))
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=64)
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--no-browser", action="store_true")
    opts = parser.parse_args()
    rng = random.Random(0)
    recs = [rank(r, opts.ranks, opts.ops, rng) for r in range(opts.ranks)]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        m = merge(recs)
        times.append(time.perf_counter() - t)
    print(f"merge of {opts.ranks} ranks × {opts.ops:,} ops ({len(m.recording.ops):,} ops, "
          f"{len(m.collectives):,} collectives joined): median {statistics.median(times):.2f} s "
          f"of 3")
    t = time.perf_counter()
    m.recording.to_chrome_trace("/tmp/unimem-merged.json")
    print(f"Chrome trace of the merge: {time.perf_counter() - t:.2f} s")
    if opts.no_browser:
        return
    timeline = Timeline(m.recording)  # its default window: the last 5,000 ops
    with serve(timeline) as url, browser_page() as page:
        first = statistics.median(open_timeline(page, url) for _ in range(3))
        zooms = [page.evaluate(ZOOM_JS, -240) for _ in range(5)]
    print(f"timeline of the merge ({len(m.recording.lanes)} lanes, default window): first "
          f"render {first:.0f} ms, zoom step {statistics.median(z['ms'] for z in zooms):.1f} ms")


if __name__ == "__main__":
    main()

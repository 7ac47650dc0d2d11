"""Graph capture at scale: ``um.trace`` of functions with 10,000 to 100,000 primitives.

For each size this prints, measured side by side (interleaved runs, medians):
``um.trace`` by its native method (build the lazy graph, walk it in C++, make the
Graph), the time to build the lazy graph alone (what any method pays), and, for
the sizes MLX's export survives, the export method ``um.trace`` falls back to
(two ``mx.export_function`` passes and the Python reader of the file). Targets:
10,000 primitives under 100 ms, 100,000 under 1 s, on 2 cores.

    PYTHONPATH=. python3 benchmarks/capture.py [--sizes 10000,50000,100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
from time import perf_counter

import mlx.core as mx

import unimem as um
from unimem.capture import native
from unimem.capture.call import bind
from unimem.capture.trace import capture
from unimem.model.text import fmt_time


def make_chain(n: int):
    """n primitives alternating over two streams (n - 1 cross-stream edges)."""

    def chain(x, s1, s2):
        for i in range(n):
            x = mx.sin(x, stream=s1 if i % 2 == 0 else s2)
        return x

    return chain


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    x = mx.ones((8,))
    mx.eval(x)
    s2 = "gpu" if mx.is_available(mx.gpu) else "cpu:1"
    print(f"um.trace methods here: native {'built' if native.available() else 'absent'}; "
          f"placement s1=cpu, s2={s2}; medians of {args.repeat} interleaved runs")
    for n in (int(v) for v in args.sizes.split(",")):
        chain = make_chain(n)
        call = bind(chain, (x,), {"s1": "cpu", "s2": s2})
        graph = um.trace(chain, x, s1="cpu", s2=s2)
        jobs = {"um.trace": lambda chain=chain: um.trace(chain, x, s1="cpu", s2=s2),
                "build the lazy graph only": call.run}
        if n <= 20_000:  # MLX's export crashes the process on chains past ~40,000 ops
            jobs["export method (fallback)"] = lambda call=call: capture(call)
        times: dict[str, list[float]] = {k: [] for k in jobs}
        for _ in range(args.repeat):
            for label, job in jobs.items():
                t = perf_counter()
                job()
                times[label].append(perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{graph.count()} primitives ({graph.notes[0].split(':')[0]}):")
        for label, m in med.items():
            print(f"  {label:<28} {fmt_time(m):>10}  ({m / med['um.trace']:.2f}× um.trace)")
        target = 0.1 if n <= 10_000 else 1.0 if n <= 100_000 else None
        if target is not None:
            verdict = "meets" if med["um.trace"] <= target else "misses"
            print(f"  {verdict} the {fmt_time(target)} target")


if __name__ == "__main__":
    main()

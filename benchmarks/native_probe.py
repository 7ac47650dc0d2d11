"""Where native capture's cost goes, layer by layer, side by side with plain ``mx.eval``.

For each of ``overhead.py``'s workloads on CPU streams, three runs are interleaved, the order rotated every round (so drift
and noise hit every column alike), after warm-up rounds: ``plain`` (build the graph,
``mx.eval``), ``walked`` (build, walk the graph in C++ without wrapping anything, eval:
what looking alone costs) and ``captured`` (build, walk and wrap every CPU primitive in
one pass, eval: each primitive's start and end stamped on its stream's worker, as an
instrumented run does, without its eval-point hooks). It prints each one's median over
the plain median, the paired ratio (each round's run over its own plain run), and the
time of the capture pass and of reading the records afterwards. Then the walk alone on
10,000- and 100,000-primitive chains. ``--pin`` pins threads as ``overhead.py`` does.
Needs ``unimem_native`` (``pip install --no-build-isolation ./native``). From the repo root:

    PYTHONPATH=. python3 benchmarks/native_probe.py [--rounds N] [--pin]
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable
from time import perf_counter

import mlx.core as mx

from unimem.capture import native

Build = Callable[[], list[mx.array]]


def workloads() -> dict[str, Build]:
    """``overhead.py``'s workloads on CPU streams: (a) to (d), the same sizes."""
    import overhead  # benchmarks/ is this script's folder

    mx.set_default_device(mx.cpu)  # the MLP step, and every unplaced array
    return {name: (lambda call=call: call.outputs_of(call.run()))
            for name, call in overhead.workloads(False).items()}


VARIANTS = ("plain", "walked", "captured")


def compare(build: Build, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Per variant, the wall time of each measured round; plus the capture pass
    (``capture``) and the records read after the eval (``records``)."""
    out: dict[str, list[float]] = {k: [] for k in (*VARIANTS, "capture", "records")}
    for r in range(warmup + rounds):
        k = r % len(VARIANTS)
        for variant in VARIANTS[k:] + VARIANTS[:k]:
            native.clear()
            gc.collect()
            t0 = perf_counter()
            outs = build()
            t1 = perf_counter()
            if variant == "walked":
                native.walk(outs)
            elif variant == "captured":
                native.capture(outs)
            t2 = perf_counter()
            mx.eval(outs)
            t3 = perf_counter()
            if variant == "captured":
                while native.pending_count():  # ENDs still in the workers' queues
                    pass
                native.records(drain=True)
            if r >= warmup:
                out[variant].append(t3 - t0)
                if variant == "captured":
                    out["capture"].append(t2 - t1)
                    out["records"].append(perf_counter() - t3)
            del outs
    return out


def ratio(res: dict[str, list[float]], variant: str) -> str:
    """``variant``'s median over the plain median, and (paired) the median of each
    round's run over its own plain run."""
    paired = statistics.median(a / b for a, b in zip(res[variant], res["plain"]))
    return f"{statistics.median(res[variant]) / statistics.median(res['plain']):.3f}x ({paired:.3f})"


def walk_time(n: int, repeat: int = 5) -> tuple[float, float]:
    """Median seconds to walk an n-primitive chain, and to turn it into node objects."""
    y = mx.ones((4,))
    mx.eval(y)
    for _ in range(n):
        y = mx.sin(y)
    walks, objects = [], []
    for _ in range(repeat):
        t = perf_counter()
        graph = native.walk(y)
        walks.append(perf_counter() - t)
        t = perf_counter()
        graph.nodes()
        objects.append(perf_counter() - t)
    return statistics.median(walks), statistics.median(objects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="measured rounds (default 11)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up rounds (default 2)")
    parser.add_argument("--pin", action="store_true",
                        help="this thread on the first CPU, MLX's workers on the others")
    args = parser.parse_args()
    if not native.available():
        raise SystemExit(native.why_unavailable())
    ms = 1e3
    loads = workloads()
    if args.pin:
        from overhead import pin_threads

        for build in loads.values():  # every stream's worker thread exists from here
            mx.eval(build())
        print(pin_threads())
    print(f"MLX {mx.__version__}; {args.rounds} rounds after {args.warmup} warm-up, order "
          "rotated every round; ratio = median / plain median (paired: per round)")
    print(f"  {'workload':<40} {'prims':>6} {'plain':>9} {'walked':>14} {'captured':>14}   "
          f"{'capture':>8} {'records()':>9}")
    for label, build in loads.items():
        prims = len(native.walk(build()))
        res = compare(build, args.rounds, args.warmup)
        p = statistics.median(res["plain"])
        c, r = statistics.median(res["capture"]), statistics.median(res["records"])
        print(f"  {label:<40} {prims:>6} {p * ms:>7.2f}ms {ratio(res, 'walked'):>14} "
              f"{ratio(res, 'captured'):>14}   {c * ms:>6.2f}ms {r * ms:>7.2f}ms")
    for n in (10_000, 100_000):
        w, o = walk_time(n)
        print(f"  walk of {n:>7,} primitives: {w * ms:.1f} ms ({w / n * 1e9:.0f} ns each); "
              f"as node objects: {o * ms:.1f} ms more")


if __name__ == "__main__":
    main()

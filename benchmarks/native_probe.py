"""Native capture's cost, side by side: plain ``mx.eval`` vs walk + instrument + ``mx.eval``.

For each workload it builds the graph and evaluates it plainly, and builds it again and
walks, instruments and evaluates it, in interleaved rounds with the order swapped every
round (so drift and noise hit both columns alike), after warm-up rounds. It prints the
median of each, their ratio (1.00x: timing every primitive costs nothing), and the
instrumented run's parts. Then the walk alone on 10,000- and 100,000-primitive chains.
Needs ``unimem_native`` (``pip install --no-build-isolation ./native``). From the repo root:

    PYTHONPATH=. python3 benchmarks/native_probe.py [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable
from time import perf_counter

import mlx.core as mx
from mlx import nn

from unimem.capture import native
from unimem.capture.call import flatten_arrays

Build = Callable[[], list[mx.array]]


def workloads() -> dict[str, Build]:
    s0, s1, s2 = mx.default_stream(mx.cpu), mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
    mx.random.seed(0)
    a, b = mx.random.uniform(shape=(4096, 512)), mx.random.uniform(shape=(512, 4))
    x = mx.random.normal((4096,))
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    xs, ys = mx.random.normal((128, 256)), mx.random.randint(0, 10, (128,))
    mx.eval(a, b, x, model.parameters(), xs, ys)

    def docs_fun() -> list[mx.array]:  # MLX's unified-memory example
        y, c = mx.matmul(a, b, stream=s0), b
        for _ in range(500):
            c = mx.exp(c, stream=s1)
        return [y, c]

    def split(n: int) -> Build:  # two independent chains of n/2 ops, one per stream
        def build() -> list[mx.array]:
            y1 = y2 = x
            for _ in range(n // 2):
                y1, y2 = mx.sin(y1, stream=s1), mx.sin(y2, stream=s2)
            return [y1, y2]
        return build

    def alternating(n: int) -> Build:  # one chain, consecutive ops on alternate streams
        def build() -> list[mx.array]:
            y = x
            for i in range(n):
                y = mx.sin(y, stream=s1 if i % 2 else s2)
            return [y]
        return build

    def loss(m: nn.Module, x: mx.array, y: mx.array) -> mx.array:
        return nn.losses.cross_entropy(m(x), y, reduction="mean")

    step = nn.value_and_grad(model, loss)
    return {
        "docs fun, 2 CPU streams": docs_fun,
        "1,000 ops split": split(1000),
        "1,000 ops alternating": alternating(1000),
        "MLP value_and_grad step": lambda: flatten_arrays(step(model, xs, ys)),
        "20,000 ops alternating": alternating(20_000),
    }


def compare(build: Build, rounds: int, warmup: int) -> tuple[list[float], list[float], dict[str, list[float]]]:
    plain: list[float] = []
    timed: list[float] = []
    parts: dict[str, list[float]] = {"walk": [], "instrument": [], "records": []}
    for r in range(warmup + rounds):
        for instrumented in ((False, True) if r % 2 == 0 else (True, False)):
            native.clear()
            gc.collect()
            t0 = perf_counter()
            outs = build()
            if not instrumented:
                mx.eval(outs)
                if r >= warmup:
                    plain.append(perf_counter() - t0)
                continue
            t1 = perf_counter()
            native.walk(outs)
            t2 = perf_counter()
            native.instrument(outs)
            t3 = perf_counter()
            mx.eval(outs)
            t4 = perf_counter()
            native.records()
            t5 = perf_counter()
            if r >= warmup:
                timed.append(t4 - t0)
                for key, dt in zip(parts, (t2 - t1, t3 - t2, t5 - t4)):
                    parts[key].append(dt)
            del outs
    return plain, timed, parts


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
    args = parser.parse_args()
    if not native.available():
        raise SystemExit(native.why_unavailable())
    ms = 1e3
    print(f"MLX {mx.__version__}; {args.rounds} interleaved rounds after {args.warmup} warm-up, "
          "order swapped every round; instrumented = build + walk + instrument + eval")
    print(f"  {'workload':<26} {'prims':>6} {'plain':>9} {'instr.':>9} {'ratio':>6}   "
          f"{'walk':>7} {'instrument':>10} {'records()':>9}")
    for label, build in workloads().items():
        prims = len(native.walk(build()))
        plain, timed, parts = compare(build, args.rounds, args.warmup)
        p, t = statistics.median(plain), statistics.median(timed)
        w, i, r = (statistics.median(parts[k]) for k in ("walk", "instrument", "records"))
        print(f"  {label:<26} {prims:>6} {p * ms:>7.1f}ms {t * ms:>7.1f}ms {t / p:>5.3f}x   "
              f"{w * ms:>5.2f}ms {i * ms:>8.2f}ms {r * ms:>7.2f}ms")
    for n in (10_000, 100_000):
        w, o = walk_time(n)
        print(f"  walk of {n:>7,} primitives: {w * ms:.1f} ms ({w / n * 1e9:.0f} ns each); "
              f"as node objects: {o * ms:.1f} ms more")


if __name__ == "__main__":
    main()

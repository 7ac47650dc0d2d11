"""Plain timings against a raw MLX loop, side by side: does ``profile`` report what MLX costs?

For a small-output and a 64 MiB-output function this prints the plain median of
``um.profile`` (``repeat`` runs after warm-up, ``trace=False``) next to the
median of a raw loop (call + ``mx.eval``, timed the same way), interleaved
round by round, the order swapped every round (ABBA), so drift and noise hit both
columns alike; and their ratio: 1.00×
means the plain statistics cost exactly what a user's own loop does. It also
prints MLX's active memory before and after each profile with the collector
off: any growth is an output kept alive past its run. Run from the repo root:

    PYTHONPATH=. python3 benchmarks/plain_timing.py [--rounds N] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable
from itertools import product
from time import perf_counter

import mlx.core as mx

import unimem as um
from unimem.model.text import fmt_time


def double(x: mx.array, d: mx.Stream) -> mx.array:
    return mx.multiply(x, 2, stream=d)


def raw_median(fun: Callable[..., mx.array], x: mx.array, device: str, repeat: int,
               warmup: int) -> float:
    """The user's own loop: call, ``mx.eval``, nothing kept."""
    stream = mx.default_stream(mx.gpu if device == "gpu" else mx.cpu)
    for _ in range(warmup):
        mx.eval(fun(x, stream))
    samples = []
    for _ in range(repeat):
        t = perf_counter()
        mx.eval(fun(x, stream))
        samples.append(perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--repeat", type=int, default=15, help="plain runs per round (15)")
    args = parser.parse_args()
    inputs = {"small output (4 KiB)": mx.ones((1024,)),
              "large output (64 MiB)": mx.ones((16 * 2**20,))}
    mx.eval(list(inputs.values()))
    print(f"{um.platform().summary}; {args.rounds} rounds of {args.repeat} plain runs each, "
          "interleaved; the collector is off")
    print(f"  {'workload':<28} {'um.profile':>11} {'raw loop':>11} {'ratio':>7} "
          f"{'active memory after - before':>30}")
    devices = ["cpu", "gpu"] if mx.is_available(mx.gpu) else ["cpu"]
    for (size, x), device in product(inputs.items(), devices):
        label = f"{size} on {device}"
        ours, raw, grown = [], [], 0
        gc.disable()
        try:
            for i in range(args.rounds):
                if i % 2:
                    raw.append(raw_median(double, x, device, args.repeat, 2))
                before = mx.get_active_memory()
                rec = um.profile(double, x, d=device, repeat=args.repeat, warmup=2, trace=False)
                grown = max(grown, mx.get_active_memory() - before)
                assert rec.timing is not None
                ours.append(rec.timing.median)
                if i % 2 == 0:
                    raw.append(raw_median(double, x, device, args.repeat, 2))
        finally:
            gc.enable()
        o, r = statistics.median(ours), statistics.median(raw)
        print(f"  {label:<28} {fmt_time(o):>11} {fmt_time(r):>11} {o / r:>6.2f}× "
              f"{grown / 2**20:>26.1f} MiB")


if __name__ == "__main__":
    main()

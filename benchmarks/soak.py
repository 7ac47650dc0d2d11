"""Soak: many ``um.profile`` runs in one process leave nothing behind.

Prints, before and after N runs (repeat=1) of a small function: MLX active
memory, process RSS, live threads and open file descriptors.

    .venv/bin/python benchmarks/soak.py [runs]   (default 1000)
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from time import perf_counter

import mlx.core as mx

import unimem as um


def _f(x: mx.array) -> mx.array:
    return mx.exp(x) * 2 + x.sum()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def state() -> dict[str, int]:
    gc.collect()
    return {"mlx_active": mx.get_active_memory(), "rss": rss_bytes(),
            "threads": threading.active_count(), "fds": open_fds()}


def soak(runs: int, x: mx.array) -> tuple[dict[str, int], dict[str, int], float]:
    um.profile(_f, x, repeat=1)  # warm: caches built once per process
    before = state()
    t = perf_counter()
    for _ in range(runs):
        um.profile(_f, x, repeat=1)
    seconds = perf_counter() - t
    return before, state(), seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    x = mx.ones((64, 64))
    mx.eval(x)
    before, after, seconds = soak(runs, x)
    print(f"{runs} runs of um.profile(f, x, repeat=1) in {seconds:.1f} s "
          f"({1e3 * seconds / runs:.2f} ms/run)")
    for key in before:
        print(f"  {key:10s} before {before[key]:>12,}  after {after[key]:>12,}  "
              f"delta {after[key] - before[key]:+,}")


if __name__ == "__main__":
    main()

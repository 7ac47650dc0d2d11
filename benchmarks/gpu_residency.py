"""Residency and migration costs of MLX arrays on a CUDA GPU (H100), measured.

Steps, on arrays of ``--mb`` MiB (default 256, shrunk to fit a quarter of the
GPU's free memory):

1. A GPU-written array ``a``: residency right after the GPU write (taking its
   address moves it into managed memory: the observer effect, timed apart), after
   the CPU reads half of it (a NumPy view of the first half, summed), after a full
   CPU read, and after a GPU read.
2. A fresh GPU-written array ``b``: first and second full CPU read.
3. A CPU-made array ``c``: first and second GPU read (``mx.sum`` on the GPU).
4. The probe's speed (GB/s of mapped array).
5. The copy tax of a traced GPU→CPU edge (``exp`` on the GPU, ``sum`` on the
   CPU), its CUDA bound replaced by the pages the probe saw move while the CPU
   consumer ran.

Expected on an H100 (as measured there, docs/memory.md): all pages not on host after the GPU write, half
after the half read, all on node 0 after the full read. On a machine without a
GPU it says so and exits 0. Run from the repo root:

    PYTHONPATH=. python3 benchmarks/gpu_residency.py [--mb 256]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from time import perf_counter

import mlx.core as mx
import numpy as np

import unimem as um
from unimem.model.graph import DEVICE_SWITCH
from unimem.model.memory import NOT_ON_HOST
from unimem.model.text import fmt_bytes, fmt_time


def timed(fn: Callable[[], object]) -> float:
    t = perf_counter()
    fn()
    return perf_counter() - t


def show(step: str, arr: mx.array) -> None:
    r = um.residency(arr)
    if not r.probed:
        print(f"  {step:<28} residency not probed: {r.message}")
        return
    n = len(r.pages)
    host = int(np.count_nonzero(r.pages >= 0))
    absent = int(np.count_nonzero(r.pages == NOT_ON_HOST))
    speed = f" = {r.gb_per_s:.1f} GB/s" if r.gb_per_s else ""
    print(f"  {step:<28} {host:>7}/{n} pages on host ({100 * host / max(n, 1):5.1f}%), "
          f"{absent} not on host, {len(r.runs)} runs; probe {fmt_time(r.seconds)}{speed}")


def gpu_array(n: int) -> mx.array:
    """A fresh GPU output: the cache is cleared first, so its buffer is new device
    memory, not a recycled (perhaps managed) buffer of an earlier step."""
    mx.clear_cache()
    x = mx.random.uniform(shape=(n,), stream=mx.gpu)
    mx.eval(x)
    mx.synchronize(mx.gpu)
    return x


def size_for(mb: int) -> int:
    """Elements of float32 to use: ``mb`` MiB, at most a quarter of the free GPU memory."""
    info = mx.device_info(mx.gpu)
    free = int(info.get("free_memory") or info.get("total_memory") or 0)
    want = mb * 2**20
    if free and want > free // 4:
        want = free // 4
        print(f"shrinking arrays to {fmt_bytes(want)}: a quarter of the "
              f"{fmt_bytes(free)} free on the GPU (three arrays live at once)")
    return want // 4


def gpu_written_array(n: int) -> None:
    print(f"\n1. GPU-written array a, {fmt_bytes(4 * n)}")
    a = gpu_array(n)
    print(f"  address taken (np.asarray: MLX moves it to managed memory): "
          f"{fmt_time(timed(lambda: np.asarray(a)))}")
    show("after GPU write", a)
    view = np.asarray(a)
    half = view[: n // 2]
    print(f"  CPU reads first half: {fmt_time(timed(half.sum))}")
    show("after CPU read of half", a)
    print(f"  CPU reads all (first time for the second half): {fmt_time(timed(view.sum))}")
    show("after full CPU read", a)
    del view, half
    print(f"  GPU reads all: {fmt_time(timed(lambda: mx.eval(mx.sum(a, stream=mx.gpu))))}")
    show("after GPU read", a)


def cpu_reads_gpu_output(n: int) -> None:
    print(f"\n2. fresh GPU-written array b, {fmt_bytes(4 * n)}: CPU reads")
    b = gpu_array(n)
    first = timed(lambda: np.asarray(b).sum())
    second = timed(lambda: np.asarray(b).sum())
    print(f"  first CPU read {fmt_time(first)} (includes the move to managed memory), "
          f"second {fmt_time(second)}: {first / second:.2f}×")


def gpu_reads_cpu_array(n: int) -> None:
    """Steps 3 and 4: GPU reads of a CPU-made array, then the probe's speed on it."""
    print(f"\n3. CPU-made array c, {fmt_bytes(4 * n)}: GPU reads")
    mx.clear_cache()
    c = mx.random.uniform(shape=(n,), stream=mx.cpu)
    mx.eval(c)
    show("after CPU write", c)
    first = timed(lambda: mx.eval(mx.sum(c, stream=mx.gpu)))
    second = timed(lambda: mx.eval(mx.sum(c, stream=mx.gpu)))
    print(f"  first GPU read {fmt_time(first)}, second {fmt_time(second)}: "
          f"{first / second:.2f}×")
    show("after GPU reads", c)

    print("\n4. probe speed")
    r = um.residency(c)
    if r.probed:
        best = min(um.residency(c).seconds for _ in range(10))
        mapped = len(r.pages) * r.page_size
        print(f"  {len(r.pages)} pages ({fmt_bytes(mapped)}) in {fmt_time(best)} "
              f"(best of 10) = {mapped / best / 1e9:.1f} GB/s")
    else:
        print(f"  not probed: {r.message}")


def gpu_to_cpu(a: mx.array, d1: mx.Stream, d2: mx.Stream) -> mx.array:
    """One device switch: the GPU makes x, the CPU reads all of it."""
    x = mx.exp(a, stream=d1)
    return mx.sum(x, stream=d2)


def observed_copy_tax(n: int) -> None:
    mx.clear_cache()
    a = gpu_array(n)
    tax = um.copy_tax(um.trace(gpu_to_cpu, a, d1="gpu", d2="cpu"))
    edge = next(i for i, e in enumerate(tax.edges)
                if e.kind == DEVICE_SWITCH and e.src.startswith("Exp"))
    x = mx.exp(a, stream=mx.gpu)
    mx.eval(x)
    before = um.residency(x)  # observer effect: x is now managed memory, pages on the GPU
    t = perf_counter()
    mx.eval(mx.sum(x, stream=mx.cpu))
    seconds = perf_counter() - t
    tax.observe(edge, before, um.residency(x), seconds)
    print(tax)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256)
    args = ap.parse_args()
    p = um.platform()
    print(p.summary)
    if not mx.is_available(mx.gpu):
        print("no GPU here: this MLX build has none, so there is nothing to migrate. "
              "Run this on an NVIDIA machine with `pip install 'mlx[cuda13]'`; "
              "benchmarks/residency.py measures the probe on host memory.")
        return
    if p.backend == "metal":
        print("Apple silicon: one shared copy of every buffer, nothing migrates; "
              "the steps below show timings only.")
    n = size_for(args.mb)
    warm = gpu_array(n)  # compile the GPU kernels first, so first reads time memory only
    for _ in range(2):
        mx.eval(mx.sum(warm, stream=mx.gpu))
    del warm

    gpu_written_array(n)
    cpu_reads_gpu_output(n)
    gpu_reads_cpu_array(n)
    print("\n5. copy tax of a GPU→CPU edge, observed")
    observed_copy_tax(n)


if __name__ == "__main__":
    main()

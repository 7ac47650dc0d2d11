"""Residency probe throughput and the memory sampler's overhead, measured here.

1. Probe: ``um.residency`` on an evaluated array of ``--mb`` MiB, ``--repeat``
   times; prints GB/s of mapped array probed, for the move_pages calls alone and
   for the whole call (NumPy view, page addresses, result). Target: >= 10 GB/s.
2. Sampler: one computation (a chain of element-wise ops and a matmul, about
   ``--work-ms`` long) run with and without ``MemorySampler`` at ``--hz``,
   interleaved (A B B A ...) so drift hits both; prints the median of each and
   their ratio (target: <= 1.02× at 50 Hz), and the CPU cost of one sample, a
   figure that does not depend on how busy the machine is.
3. MemoryView.refresh (what um.watch calls live): median time with ``--arrays``
   registered 1 MiB arrays (all probed) and 10,000 memory samples.

Run from the repo root:  PYTHONPATH=. python3 benchmarks/residency.py [--mb 256]
"""

from __future__ import annotations

import argparse
import statistics
from time import perf_counter

import mlx.core as mx

import unimem as um
from unimem.capture.sampler import MemorySampler, sample_now
from unimem.model.recording import MemorySample, Recording
from unimem.model.text import fmt_bytes, fmt_time


def probe_throughput(mb: int, repeat: int) -> None:
    a = mx.random.uniform(shape=(mb * 2**20 // 4,))
    mx.eval(a)
    um.residency(a)  # warm-up: first-time costs (ctypes, page tables) out of the figures
    kernel, whole = [], []
    for _ in range(repeat):
        t = perf_counter()
        r = um.residency(a)
        whole.append(perf_counter() - t)
        kernel.append(r.seconds)
    if not r.probed:
        print(f"probe: not available here ({r.message})")
        return
    mapped = len(r.pages) * r.page_size
    print(f"probe: {fmt_bytes(mapped)} mapped, {len(r.pages)} pages, {repeat} runs")
    for label, xs in (("move_pages calls", kernel), ("whole um.residency", whole)):
        med = statistics.median(xs)
        print(f"  {label:<19} median {fmt_time(med)} = {mapped / med / 1e9:.1f} GB/s "
              f"(best {mapped / min(xs) / 1e9:.1f} GB/s)")
    print(f"  pages: {r.counts}  (>= 0: host node; -2: not on host)")


def _work(n: int, steps: int) -> None:
    x = mx.random.uniform(shape=(n, n))
    for _ in range(steps):
        x = mx.tanh(x @ x * (1.0 / n)) + mx.exp(-x * x)
    mx.eval(x)


def _calibrate(target: float) -> tuple[int, int]:
    n, steps = 256, 4
    while True:
        t = perf_counter()
        _work(n, steps)
        dt = perf_counter() - t
        if dt >= target / 2 or steps > 4096:
            return n, max(1, int(steps * target / dt))
        steps *= 2


def sampler_overhead(hz: float, work_ms: float, pairs: int) -> None:
    n, steps = _calibrate(work_ms / 1e3)
    _work(n, steps)
    plain, sampled, samples = [], [], 0
    for i in range(pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        for with_sampler in order:
            rec = Recording("bench", {}, "watch", "sampler benchmark")
            t = perf_counter()
            if with_sampler:
                with MemorySampler(rec, t, hz=hz):
                    _work(n, steps)
            else:
                _work(n, steps)
            dt = perf_counter() - t
            (sampled if with_sampler else plain).append(dt)
            samples += len(rec.memory)
    a, b = statistics.median(plain), statistics.median(sampled)
    t = perf_counter()
    for _ in range(10_000):
        sample_now(0.0)
    per_sample = (perf_counter() - t) / 10_000
    print(f"sampler at {hz:g} Hz on a {n}×{n} matmul/tanh/exp chain of {steps} steps, "
          f"{pairs} interleaved pairs")
    print(f"  without: median {fmt_time(a)}   with: median {fmt_time(b)}   "
          f"({samples // pairs} samples per sampled run)")
    print(f"  overhead ratio: {b / a:.3f}× (target <= 1.02×)")
    print(f"  one sample costs {fmt_time(per_sample)} of CPU: at {hz:g} Hz "
          f"{100 * per_sample * hz:.3f}% of one core (load-independent bound on the cost)")


def refresh_cost(arrays: int, repeat: int) -> None:
    rec = Recording("bench", {}, "watch", "refresh benchmark")
    rec.memory += [MemorySample(i * 0.02, i, i, i) for i in range(10_000)]
    xs = [mx.random.uniform(shape=(2**18,)) for _ in range(arrays)]
    mx.eval(xs)
    reg = um.track(*xs)
    view = um.MemoryView(rec, reg, probe=True, max_rows=arrays)
    times = []
    for _ in range(repeat):
        t = perf_counter()
        view.refresh()
        times.append(perf_counter() - t)
    print(f"MemoryView.refresh with {arrays} arrays of 1 MiB probed and 10,000 samples: "
          f"median {fmt_time(statistics.median(times))} over {repeat} refreshes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256, help="array size for the probe")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--hz", type=float, default=50.0)
    ap.add_argument("--work-ms", type=float, default=300.0)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--arrays", type=int, default=200)
    args = ap.parse_args()
    print(um.platform().summary)
    probe_throughput(args.mb, args.repeat)
    sampler_overhead(args.hz, args.work_ms, args.pairs)
    refresh_cost(args.arrays, args.repeat)


if __name__ == "__main__":
    main()

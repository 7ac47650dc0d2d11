"""What looking costs: instrumented / plain wall time per workload and mode.

For each workload and each measurement mode this prints the plain median
(call + ``mx.eval``), the instrumented run's median wall time, their ratio, and
the timeline's makespan over the plain median. Plain and instrumented runs are
interleaved round by round, so drift and noise hit every column alike.
Workloads: (a) the MLX docs' ``fun`` under each placement this machine offers,
(b) a 1,000-op chain over two streams (split: 500 then 500 after one
cross-stream edge; alternating: every op on the other stream), (c) a small
``mlx.nn`` MLP training step (value_and_grad + optimizer), (d) 20,000 ops, each on the
other stream. On MLX's CUDA build with cupti-python, the native method's GPU rows
are kernels timed by CUPTI: those rows say ``native+cupti``. ``--cpu`` keeps every
workload on CPU streams (and the MLP on the CPU), for a GPU machine's CPU-stream
figures. Run from the repo root:

    PYTHONPATH=. python3 benchmarks/overhead.py [--quick] [--cpu] [--pin] [--rounds N] [--modes op,segment]

Two ratios per row. ``ratio``: the instrumented median over the plain median.
``paired``: the median, over rounds, of each instrumented run over the plain run of
its own round (measured back to back), which cancels drifts slower than a round.
Where streams hand work to each other op by op (the alternating chains), a plain run
takes 16 ms or 44 ms on a 2-core box depending on whether Linux puts MLX's two
stream workers on one core or on two, and a run tends to stay in one mode for a
while; ``--pin`` holds that placement fixed (the evaluating thread on the first CPU,
every other thread of the process, MLX's stream workers, on the rest; Linux only), so
that the ratio measures the instrumentation rather than the scheduler's draw. The
script says when the plain runs of a workload spread more than 1.5x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
from dataclasses import dataclass, field
from time import perf_counter

import mlx.core as mx
import mlx.optimizers as optim
from mlx import nn

import unimem as um
from unimem.capture import native
from unimem.capture.call import Call, bind
from unimem.model.modes import MODES
from unimem.model.text import fmt_time
from unimem.profiler import instrumented_run


def fun(a, b, d1, d2):
    """The function from MLX's unified-memory page."""
    x = mx.matmul(a, b, stream=d1)
    for _ in range(500):
        b = mx.exp(b, stream=d2)
    return x, b


def chain_split(x, s1, s2, n: int = 1000):
    """n/2 dependent ops on s1, then n/2 on s2 reading s1's result."""
    for i in range(n):
        x = mx.sin(x, stream=s1 if i < n // 2 else s2)
    return x


def chain_alternating(x, s1, s2, n: int = 1000):
    """n dependent ops, each on the other stream: a cross-stream edge per op."""
    for i in range(n):
        x = mx.sin(x, stream=s1 if i % 2 == 0 else s2)
    return x


def mlp_step_call() -> Call:
    """One SGD step of a 3-layer MLP; each run is the next step."""
    width, batch = 256, 128
    model = nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 10))
    opt = optim.SGD(learning_rate=0.01)
    mx.eval(model.parameters())
    loss_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.cross_entropy(
        m(x), y).mean())

    def mlp_step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss, model.parameters()

    x, y = mx.random.normal((batch, 32)), mx.random.randint(0, 10, (batch,))
    mx.eval(x, y)
    return bind(mlp_step, (x, y), {})


def workloads(gpu: bool) -> dict[str, Call]:
    """The workloads, on the GPU and the CPU where ``gpu``, else on CPU streams only."""
    a = mx.random.uniform(shape=(4096, 512))  # the sizes of MLX's docs example
    b = mx.random.uniform(shape=(512, 4))
    x = mx.random.uniform(shape=(1024,))
    mx.eval(a, b, x)
    fun_placements = {"cpu, cpu:1": ("cpu", "cpu:1"), "cpu, cpu": ("cpu", "cpu")}
    if gpu:
        fun_placements = {"gpu, gpu": ("gpu", "gpu"), "gpu, cpu": ("gpu", "cpu"),
                          **fun_placements}
    chain_streams = ("gpu", "cpu") if gpu else ("cpu", "cpu:1")
    out = {f"(a) fun d1,d2={k}": bind(fun, (a, b), {"d1": d1, "d2": d2})
           for k, (d1, d2) in fun_placements.items()}
    s1, s2 = chain_streams
    out[f"(b) chain split {s1}->{s2}"] = bind(chain_split, (x,), {"s1": s1, "s2": s2})
    out[f"(b) chain alternating {s1}<->{s2}"] = bind(chain_alternating, (x,),
                                                     {"s1": s1, "s2": s2})
    if gpu:  # and the CPU-only chain, for numbers from a machine with free cores
        out["(b) chain split gpu->gpu"] = bind(chain_split, (x,), {"s1": "gpu", "s2": "gpu"})
        out["(b) chain split cpu->cpu:1"] = bind(chain_split, (x,), {"s1": "cpu", "s2": "cpu:1"})
    out["(c) mlp step"] = mlp_step_call()
    out[f"(d) 20,000 ops alternating {s1}<->{s2}"] = bind(
        chain_alternating, (x,), {"s1": s1, "s2": s2, "n": 20_000})
    return out


@dataclass
class Result:
    plain: list[float]
    wall: dict[str, list[float]]
    makespan: dict[str, list[float]]
    cupti: set[str] = field(default_factory=set)  # modes whose runs had CUPTI's kernels
    pinned: str = ""  # what --pin did


def _plain(call: Call) -> float:
    t = perf_counter()
    mx.eval(call.run())
    return perf_counter() - t


_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_threads() -> str:
    """Pin this thread to the first CPU the process may use and every other thread of
    the process (MLX's stream workers) to the remaining ones; say what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "--pin needs Linux (os.sched_setaffinity); threads left free"
    cpus = _CPUS
    if len(cpus) < 2:
        return "--pin needs 2 CPUs; threads left free"
    main = threading.get_native_id()
    workers = [int(t) for t in os.listdir("/proc/self/task") if int(t) != main]
    os.sched_setaffinity(main, {cpus[0]})
    for tid in workers:
        os.sched_setaffinity(tid, set(cpus[1:]))
    return (f"pinned: this thread on CPU {cpus[0]}, {len(workers)} other threads "
            f"(MLX's stream workers) on CPUs {cpus[1]}-{cpus[-1]}")


def measure(call: Call, modes: list[str], rounds: int, pin: bool = False) -> Result:
    """Interleave plain and instrumented runs; rotate the order each round. Where a run
    has GPU primitives and CUPTI cannot trace their kernels, the native method records
    with segment instead, so it is left out of that workload's rows."""
    for _ in range(2):
        _plain(call)
    for mode in list(modes):
        if instrumented_run(call, mode).mode != mode:
            modes = [m for m in modes if m != mode]
    res = Result([], {m: [] for m in modes}, {m: [] for m in modes})
    if pin:  # after the warm-up runs: every stream the workload uses has its thread
        res.pinned = pin_threads()
    jobs: list[str] = ["plain", *modes]
    for r in range(rounds):
        for job in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:
            if job == "plain":
                res.plain.append(_plain(call))
                continue
            rec = instrumented_run(call, job)
            if any(op.activity == "kernel" for op in rec.ops):
                res.cupti.add(job)
            res.wall[job].append(rec.wall or 0.0)
            res.makespan[job].append(rec.makespan or 0.0)
    return res


def report(name: str, res: Result) -> list[str]:
    """Medians (what a run costs) and minimums (the cost when nothing else ran)."""
    med, low = statistics.median(res.plain), min(res.plain)
    lines = [f"{name}: plain median {fmt_time(med)}, min {fmt_time(low)}"]
    if max(res.plain) > 1.5 * low:
        lines[0] += (f"; plain runs spread {max(res.plain) / low:.1f}x (thread placement? "
                     "see --pin)")
    for mode, walls in res.wall.items():
        w, m = statistics.median(walls), statistics.median(res.makespan[mode])
        paired = statistics.median(x / p for x, p in zip(walls, res.plain))
        label = f"{mode}+cupti" if mode in res.cupti else mode
        lines.append(f"  {label:<12} instrumented {fmt_time(w):>10}  ratio {w / med:5.2f}×  "
                     f"paired {paired:5.2f}×  makespan ratio {m / med:5.2f}×  |  "
                     f"min/min {min(walls) / low:5.2f}×  "
                     f"makespan min/min {min(res.makespan[mode]) / low:5.2f}×")
    return lines




def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI size: 5 rounds (same workloads: the ratios depend on their size)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--modes", default=",".join(
        m for m in MODES if m != "native" or native.available()))
    ap.add_argument("--only", default="", help="run workloads whose name contains this")
    ap.add_argument("--cpu", action="store_true",
                    help="CPU streams only, the MLP on the CPU too (a GPU machine's CPU figures)")
    ap.add_argument("--pin", action="store_true",
                    help="hold thread placement fixed: this thread on one CPU, MLX's stream "
                         "workers on the others (Linux)")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode {bad[0]!r}; modes: {', '.join(MODES)}")
    rounds = args.rounds or (5 if args.quick else 15)
    print(um.about(), end="\n\n")
    if not native.available():
        print(f"native method left out: {native.why_unavailable()}")
    print(f"{rounds} interleaved rounds per workload. ratio: median over the plain median; "
          "paired: median of each round's instrumented/plain; "
          "min/min: fastest instrumented run over the fastest plain run")
    gpu = mx.is_available(mx.gpu) and not args.cpu
    if not gpu:
        mx.set_default_device(mx.cpu)  # the MLP step, and every unplaced array
    said = ""
    for name, call in workloads(gpu).items():
        if args.only and args.only not in name:
            continue
        res = measure(call, modes, rounds, args.pin)
        if res.pinned != said:
            print(res.pinned)
            said = res.pinned
        print("\n".join(report(name, res)), flush=True)


if __name__ == "__main__":
    main()

"""Autoplace on a 2-layer transformer's train step, and what placing costs.

Prints, side by side in one run:

* every hand placement tried and every candidate autoplace weighed: predicted
  (simulated, derived) and measured (plain runs, interleaved) times, the chosen
  one, the prediction error (median |predicted/measured - 1|) and the rank
  correlation of predicted and measured;
* the primitives per stream of the chosen placement's traced train step;
* interception overhead: an op call inside a plan vs outside (graph building only,
  no evaluation), and the whole train step placed by module rules vs unplaced
  (interleaved plain runs).

Targets are ``cpu`` and ``gpu`` where MLX has a GPU, else two CPU streams. Run from
the repo root:

    PYTHONPATH=. python3 benchmarks/autoplace.py [--quick] [--dims 128] [--seq 64]
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from time import perf_counter

import mlx.core as mx
from mlx import nn

import unimem as um
from unimem.model.text import fmt_time


def build(dims: int, seq: int, batch: int = 4) -> tuple[nn.Module, mx.array]:
    mx.random.seed(0)
    model = nn.TransformerEncoder(2, dims, 4, mlp_dims=2 * dims)
    x = mx.random.normal((batch, seq, dims))
    mx.eval(model.parameters(), x)
    return model, x


def loss(model: nn.Module, x: mx.array) -> mx.array:
    return model(x, None).square().mean()


def step(model: nn.Module, x: mx.array):
    return nn.value_and_grad(model, loss)(model, x)


def per_call_overhead(calls: int = 20_000) -> list[tuple[str, float]]:
    """Seconds per ``mx.exp`` call (graph building only): unplaced, inside a plan whose
    rules are contexts only, and inside one with an op rule for it."""
    x = mx.ones((4,))
    mx.eval(x)

    def loop() -> float:
        t = perf_counter()
        for _ in range(calls):
            mx.exp(x)
        return (perf_counter() - t) / calls

    rows = []
    for label, plan in (("unplaced", None), ("plan, context rules only", um.place({"*": "cpu"})),
                        ("plan, op:exp rule", um.place({"*": "cpu", "op:exp": "cpu:1"}))):
        samples = []
        for _ in range(5):
            if plan is None:
                samples.append(loop())
            else:
                with plan:
                    samples.append(loop())
        rows.append((label, statistics.median(samples)))
    return rows


def step_overhead(model: nn.Module, x: mx.array, rounds: int) -> tuple[float, float]:
    """Median plain train step, unplaced and placed by module rules on the default stream
    (so only the interception differs), interleaved."""
    here = "gpu" if mx.default_device() == mx.gpu else "cpu"
    plan = um.place(model, {"*": here, "module:layers.*": here, "module:ln": here})
    plain, placed = [], []
    for _ in range(rounds + 2):
        t = perf_counter()
        mx.eval(step(model, x))
        plain.append(perf_counter() - t)
        t = perf_counter()
        with plan:
            mx.eval(step(model, x))
        placed.append(perf_counter() - t)
    return statistics.median(plain[2:]), statistics.median(placed[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--seq", type=int, default=64)
    opts = parser.parse_args()
    rounds = 6 if opts.quick else 15
    model, x = build(opts.dims, opts.seq)
    other = "gpu" if mx.is_available(mx.gpu) else "cpu:1"
    print(f"{um.platform().summary}; 2-layer TransformerEncoder, dims {opts.dims}, "
          f"sequence {opts.seq}; targets cpu and {other}")
    tried = {
        "hand: layer 0 apart": um.place(model, {"*": "cpu", "module:layers.0": other}),
        "hand: layers on the other": um.place(model, {"*": "cpu", "module:layers.*": other}),
    }
    t = perf_counter()
    ledger = um.autoplace(step, model, x, targets=("cpu", other), tried=tried, rounds=rounds)
    took = perf_counter() - t
    print(ledger)
    print(f"autoplace took {took:.1f} s")
    err, rho = ledger.prediction_error(), ledger.rank_correlation()
    print(f"prediction error (median |predicted/measured - 1|): "
          f"{'n/a' if err is None else f'{err:.1%}'}; rank correlation (Spearman): "
          f"{'n/a' if rho is None else f'{rho:+.2f}'}")
    g = um.trace(step, model, x, placement=um.place(model, ledger.rules))
    counts = Counter(n.lane for n in g.primitives)
    print("chosen placement's traced train step, primitives per stream: "
          + ", ".join(f"{lane} {k}" for lane, k in counts.items()))
    print("\ninterception, per mx.exp call (graph building only):")
    base = None
    for label, s in per_call_overhead():
        base = base or s
        print(f"  {label:<28} {s * 1e6:6.2f} µs  ({s / base:.2f}x)")
    plain, placed = step_overhead(model, x, rounds)
    print(f"train step, unplaced {fmt_time(plain)}, placed by module rules {fmt_time(placed)}: "
          f"{placed / plain:.3f}x")


if __name__ == "__main__":
    main()

"""The MLX docs' example under every placement this machine offers, side by side.

Prints the platform card, the compare() table, and per placement the profile's
lanes, the instrumented-run overhead (instrumented / plain median) and the
timeline makespan over the plain median, then writes a Chrome trace of the
split placement. Run from the repo root:

    python benchmarks/fun_placements.py [--repeat 20] [--trace fun.json]
"""

from __future__ import annotations

import argparse

import mlx.core as mx

import unimem as um


def fun(a, b, d1, d2):
    x = mx.matmul(a, b, stream=d1)
    for _ in range(500):
        b = mx.exp(b, stream=d2)
    return x, b


def placements() -> dict[str, dict[str, str]]:
    if mx.is_available(mx.gpu):
        return {"all gpu": {"d1": "gpu", "d2": "gpu"}, "split": {"d1": "gpu", "d2": "cpu"},
                "all cpu": {"d1": "cpu", "d2": "cpu"}}
    return {"one stream": {"d1": "cpu", "d2": "cpu"},
            "two streams": {"d1": "cpu", "d2": "cpu:1"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--trace", default="fun.json", help="Chrome trace of the second placement")
    args = ap.parse_args()
    print(um.about(), end="\n\n")
    a = mx.random.uniform(shape=(4096, 512))
    b = mx.random.uniform(shape=(512, 4))
    mx.eval(a, b)
    table = um.compare(fun, a, b, placements=placements(), repeat=args.repeat)
    print(table, end="\n\n")
    for row in table.rows:
        rec = row.recording
        print(f"[{row.label}]")
        print(rec, end="\n\n")
    second = table.rows[min(1, len(table.rows) - 1)]
    p = um.profile(fun, a, b, placement=second.recording.placement, repeat=args.repeat)
    print("trace of", second.label)
    print(p.graph)
    p.to_chrome_trace(args.trace)
    print(f"wrote {args.trace}")


if __name__ == "__main__":
    main()

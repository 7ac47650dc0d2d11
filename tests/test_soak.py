"""100 profiles in one process leave no MLX memory, threads or fds behind
(``benchmarks/soak.py`` runs 1,000 and prints the numbers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mlx.core as mx

_spec = importlib.util.spec_from_file_location(
    "soak", Path(__file__).parents[1] / "benchmarks" / "soak.py")
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)


def test_100_profiles_leave_nothing_behind() -> None:
    x = mx.ones((64, 64))
    mx.eval(x)  # the input is made beforehand: it is not the runs' memory
    before, after, _ = soak.soak(100, x)
    assert after["mlx_active"] == before["mlx_active"]
    assert after["threads"] == before["threads"]
    assert after["fds"] == before["fds"]

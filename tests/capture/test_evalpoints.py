"""Eval points: the hook sees every Python-level way user code makes MLX compute."""

from __future__ import annotations

import threading

import mlx.core as mx
import pytest

from unimem.capture.evalpoints import eval_points, patch_eval_points


def test_every_eval_point_calls_the_hook_first():
    seen: list[int] = []
    x = mx.ones((3,))
    with eval_points(lambda arrays: seen.append(len(arrays))):
        y = x * 2
        mx.eval(y, [x])  # two arrays, a tree
        mx.async_eval(y + 1)
        float(y.sum())
        y.tolist()
        bool(y.sum() > 0)
        repr(y * 3)
        f"{y.sum()}"
    assert seen == [2, 1, 1, 1, 1, 1, 1]


def test_everything_is_restored_and_other_threads_are_not_hooked():
    before = (mx.eval, mx.array.item, mx.array.__repr__)
    calls: list[str] = []
    with eval_points(lambda arrays: calls.append(threading.current_thread().name)):
        t = threading.Thread(target=lambda: mx.eval(mx.ones((2,)) + 1), name="other")
        t.start()
        t.join()
        mx.eval(mx.ones((2,)))
    assert calls == ["MainThread"]
    assert (mx.eval, mx.array.item, mx.array.__repr__) == before


def test_restored_after_the_hook_raises_and_undo_is_idempotent():
    before = mx.eval

    def fail(arrays: list[mx.array]) -> None:
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"), eval_points(fail):
        mx.eval(mx.ones((2,)))
    assert mx.eval is before
    undo = patch_eval_points(lambda arrays: None)
    undo()
    undo()
    assert mx.eval is before


def test_the_after_hook_runs_once_each_evaluation_returned_or_raised():
    events: list[str] = []
    x = mx.ones((3,))
    with eval_points(lambda arrays: events.append("before"), after=lambda: events.append("after")):
        mx.eval(x * 2)
        (x.sum()).item()
        with pytest.raises(ValueError):
            x.item()  # MLX refuses (three elements): after still runs
    assert events == ["before", "after"] * 3

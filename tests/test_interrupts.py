"""Ctrl-C anywhere in entering or leaving observation leaves nothing behind.

A tracer raises KeyboardInterrupt at the k-th line event of the set-up and
tear-down functions of one ``um.profile`` (segment and native) and one
``um.watch`` block (native and segment), for every line of those functions (the
first and last two times each line runs, and a sample of the ~1,400-iteration
patching loop). After each: every MLX attribute is the original, unimem is not
observing, no unimem thread runs, and a plain profile
gives the right counts.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict
from types import CodeType, FrameType
from typing import Any

import mlx.core as mx
import pytest

import unimem as um
from unimem import profiler, watcher
from unimem.capture import evalpoints, intercept, native, native_run

_MODULES = (mx, mx.random, mx.linalg, mx.fft, mx.fast, mx.array)


def _codes() -> set[CodeType]:
    funcs: list[Any] = [
        intercept.Interceptor.__enter__, intercept.Interceptor.__exit__,
        intercept.Interceptor.release, intercept.Interceptor._register,
        intercept.Interceptor._unregister, intercept._restore,
        intercept.observe.__wrapped__,  # type: ignore[attr-defined]
        evalpoints.EvalPoints.patch, evalpoints.EvalPoints.undo,
        evalpoints.EvalPoints.__enter__, evalpoints.EvalPoints.__exit__,
        evalpoints.eval_points.__wrapped__,  # type: ignore[attr-defined]
        profiler._handed_off_run, profiler._native_run, native_run.run,
        watcher.Watch.__enter__, watcher.Watch.__exit__, watcher.Watch._release,
        watcher.Watch._stop_ui_thread,
    ]
    return {f.__code__ for f in funcs}


CODES = _codes()
# The first line of Watch.__exit__ is the one place no Python code can guard: an
# interrupt there is one in the with statement's own machinery, before __exit__ runs.
_EXIT = watcher.Watch.__exit__.__code__



class Interrupter:
    """Counts line events in CODES; raises KeyboardInterrupt at event number ``at``."""

    def __init__(self, at: int | None = None) -> None:
        self.at, self.n = at, 0
        self.events: list[tuple[CodeType, int]] = []  # (code, line) per event
        self.fired = False
        self.frames: set[FrameType] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code not in CODES:
            return None
        return self.local

    def local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.n += 1
            first = frame not in self.frames
            self.frames.add(frame)
            if self.at is None:
                self.events.append((frame.f_code, frame.f_lineno))
            elif self.n == self.at:
                self.fired = True
                if frame.f_code is _EXIT and first:  # its first line
                    return self.local
                raise KeyboardInterrupt(f"injected at line event {self.at}")
        return self.local


def _f(x: mx.array) -> mx.array:
    return mx.exp(x) * 2 + 1


def _run_profile(mode: str) -> None:
    um.profile(_f, X, repeat=1, warmup=0, mode=mode, trace=False)


def _run_watch(mode: str) -> None:
    with um.watch(mode=mode, display=False, memory=True, memory_hz=1000):
        mx.eval(_f(X))


X = mx.ones((8, 8))
SCENARIOS = [("profile", "segment"), ("profile", "native"), ("watch", "native"),
             ("watch", "segment")]


def _snapshot() -> dict[tuple[int, str], Any]:
    return {(id(m), k): v for m in _MODULES for k, v in list(vars(m).items())}


def _samples(events: list[tuple[CodeType, int]], first: tuple[CodeType, int] | None) -> list[int]:
    """Event numbers (1-based) to interrupt at: the first and last two times each
    line runs, and every 250th event (the patching loop runs ~1,400 times)."""
    seen: dict[tuple[CodeType, int], list[int]] = defaultdict(list)
    for i, ev in enumerate(events, start=1):
        seen[ev].append(i)
    ks = {i for idx in seen.values() for i in idx[:2] + idx[-2:]}
    ks |= set(range(1, len(events) + 1, 250))
    return sorted(ks)


def _clean_counts(mode: str) -> tuple[int, int]:
    rec = um.profile(_f, X, repeat=1, warmup=0, mode=mode, trace=False)
    return len(rec.ops), sum(op.count for op in rec.ops)


def _assert_clean(originals: dict[tuple[int, str], Any], expected: dict[str, tuple[int, int]],
                  where: str) -> None:
    now = _snapshot()
    changed = [k for k, v in originals.items() if now.get(k) is not v]
    assert not changed, f"{where}: still patched: {changed[:5]}"
    assert mx.eval is originals[(id(mx), "eval")]
    assert mx.array.item is originals[(id(mx.array), "item")]
    assert not intercept.observing(), f"{where}: still observing"
    assert intercept._current is None, where
    left = [t.name for t in threading.enumerate() if t.name.startswith("unimem-")]
    assert not left, f"{where}: threads left: {left}"


@pytest.mark.skipif(not native.available(),
                    reason=f"needs the native probe: {native.why_unavailable()}")
@pytest.mark.parametrize(("what", "mode"), SCENARIOS)
def test_interrupt_at_every_line_of_set_up_and_tear_down(what: str, mode: str) -> None:
    run = _run_profile if what == "profile" else _run_watch
    mx.eval(X)
    run(mode)  # warm: caches (the patch table, MLX's docstring scan) are built once
    expected = {m: _clean_counts(m) for m in ("segment", "native")}
    originals = _snapshot()

    counter = Interrupter()
    sys.settrace(counter)
    try:
        run(mode)
    finally:
        sys.settrace(None)
    assert counter.n > 20, counter.n
    ks = _samples(counter.events, None)

    for k in ks:
        inject = Interrupter(k)
        sys.settrace(inject)
        try:
            run(mode)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        assert inject.fired, k
        where = f"{what}/{mode}: interrupt at line event {k} of {counter.n} " \
                f"({counter.events[k - 1][0].co_name}:{counter.events[k - 1][1]})"
        _assert_clean(originals, expected, where)
        for m, want in expected.items():  # a plain profile afterwards works, counts right
            assert _clean_counts(m) == want, where

"""Eval points: where user code makes MLX compute, and a hook that runs just before.

MLX evaluates a lazy graph when code calls ``mx.eval``/``mx.async_eval``, and
implicitly when it reads a value: ``.item()``, ``.tolist()``, ``float(a)``,
``bool(a)`` (an ``if``), ``print(a)`` (``repr``), an f-string. Whoever observes a run must act at those moments: the native
probe walks and instruments the graph (evaluating detaches it, so it must go
first), and the hand-off recorder flushes its pending segments (or MLX would run
them inside the user's eval and their ends would be stamped late).

Not seen: NumPy conversions (``np.asarray(a)``, ``np.array(a)``,
``memoryview(a)``) take MLX's buffer protocol, which evaluates inside C++ with no
Python call to hook; an ``mx.eval`` before them makes them visible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx

from .call import flatten_arrays

Hook = Callable[[list[mx.array]], None]  # called with the arrays about to be evaluated

# mx.eval(*trees), mx.async_eval(*trees); mx.synchronize waits for what was handed off
_FUNCTIONS = ("eval", "async_eval", "synchronize")
_METHODS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "__complex__",
            "__repr__", "__str__", "__format__", "__array__")


def patch_eval_points(hook: Hook) -> Callable[[], None]:
    """Run ``hook`` before every eval point on this thread; returns the undo function.

    The undo restores every attribute patched so far, so a failure half-way (or an
    interrupt) can always be undone; calling it twice is harmless.
    """
    owner = threading.get_ident()
    saved: list[tuple[Any, str, Any]] = []

    def undo() -> None:
        while saved:
            target, attr, original = saved.pop()
            setattr(target, attr, original)

    try:
        for name in _FUNCTIONS:
            original = getattr(mx, name)
            saved.append((mx, name, original))
            setattr(mx, name, _before_trees(original, hook, owner))
        for name in _METHODS:
            original = getattr(mx.array, name)
            saved.append((mx.array, name, original))
            setattr(mx.array, name, _before_self(original, hook, owner))
    except BaseException:
        undo()
        raise
    return undo


@contextmanager
def eval_points(hook: Hook) -> Iterator[None]:
    """``hook`` runs before every eval point on this thread, inside the block only."""
    undo = patch_eval_points(hook)
    try:
        yield
    finally:
        undo()


def _before_trees(original: Callable[..., Any], hook: Hook, owner: int) -> Callable[..., Any]:
    def evaluating(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == owner:
            hook(flatten_arrays(args))
        return original(*args, **kwargs)

    evaluating.__wrapped__ = original  # type: ignore[attr-defined]
    evaluating.__doc__ = original.__doc__
    return evaluating


def _before_self(original: Callable[..., Any], hook: Hook, owner: int) -> Callable[..., Any]:
    def evaluating(self: mx.array, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == owner:
            hook([self])
        return original(self, *args, **kwargs)

    evaluating.__wrapped__ = original  # type: ignore[attr-defined]
    evaluating.__doc__ = original.__doc__
    return evaluating

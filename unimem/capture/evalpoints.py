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
from typing import TYPE_CHECKING, Any

import mlx.core as mx

from .call import flatten_arrays

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

Hook = Callable[[list[mx.array]], None]  # called with the arrays about to be evaluated
After = Callable[[], None]  # called once the evaluation has returned (or raised)

# mx.eval(*trees), mx.async_eval(*trees); mx.synchronize waits for what was handed off
_FUNCTIONS = ("eval", "async_eval", "synchronize")
_METHODS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "__complex__",
            "__repr__", "__str__", "__format__", "__array__")


class EvalPoints:
    """The eval-point patches of one hook: made by :meth:`patch`, undone by :meth:`undo`.

    Made before patching, so its owner holds the undo before a single attribute
    changes: whatever point an interrupt lands at, ``undo`` knows every patch made
    so far. ``undo`` is idempotent and resumable (an attribute is forgotten only
    once restored): a second call finishes one an interrupt cut short.
    """

    def __init__(self, hook: Hook, after: After | None = None) -> None:
        self.hook, self.after = hook, after
        self._owner = threading.get_ident()
        self._saved: list[tuple[Any, str, Any]] = []

    def patch(self) -> None:
        """Run the hook before every eval point on this thread; all or nothing."""
        hook, after, owner, saved = self.hook, self.after, self._owner, self._saved
        try:
            for name in _FUNCTIONS:
                original = getattr(mx, name)
                saved.append((mx, name, original))  # saved first: undo sees every patch
                setattr(mx, name, _before_trees(original, hook, after, owner))
            for name in _METHODS:
                original = getattr(mx.array, name)
                saved.append((mx.array, name, original))
                setattr(mx.array, name, _before_self(original, hook, after, owner))
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        """Restore every attribute patched so far, last first; harmless to repeat."""
        saved = self._saved
        while saved:
            target, attr, original = saved[-1]
            setattr(target, attr, original)
            saved.pop()

    def __enter__(self) -> Self:
        self.patch()
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def patch_eval_points(hook: Hook) -> Callable[[], None]:
    """Run ``hook`` before every eval point on this thread; returns the undo function.

    The undo restores every attribute patched so far, so a failure half-way (or an
    interrupt) can always be undone; calling it twice is harmless. (A caller that
    must survive an interrupt between the patching and its own assignment makes an
    :class:`EvalPoints` first and calls ``patch``.)
    """
    points = EvalPoints(hook)
    points.patch()
    return points.undo


@contextmanager
def eval_points(hook: Hook, after: After | None = None) -> Iterator[EvalPoints]:
    """``hook`` runs before every eval point on this thread, inside the block only (and
    ``after``, if given, once each evaluation has returned)."""
    points = EvalPoints(hook, after)
    try:
        with points:
            yield points
    finally:
        points.undo()  # completes an undo an interrupt cut short; else a no-op


def _before_trees(original: Callable[..., Any], hook: Hook, after: After | None,
                  owner: int) -> Callable[..., Any]:
    def evaluating(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original(*args, **kwargs)
        hook(flatten_arrays(args))
        try:
            return original(*args, **kwargs)
        finally:
            if after is not None:
                after()

    evaluating.__wrapped__ = original  # type: ignore[attr-defined]
    evaluating.__doc__ = original.__doc__
    return evaluating


def _before_self(original: Callable[..., Any], hook: Hook, after: After | None,
                 owner: int) -> Callable[..., Any]:
    def evaluating(self: mx.array, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original(self, *args, **kwargs)
        hook([self])
        try:
            return original(self, *args, **kwargs)
        finally:
            if after is not None:
                after()

    evaluating.__wrapped__ = original  # type: ignore[attr-defined]
    evaluating.__doc__ = original.__doc__
    return evaluating

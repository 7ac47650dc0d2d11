"""See every MLX op call a Python program makes, with the stream it lands on.

MLX has no op callback, so for the length of a ``with`` block this patches the
Python entry points that create work: every function of ``mlx.core`` and its
``random``, ``linalg``, ``fft`` and ``fast`` modules that takes ``stream=``,
the ``mx.array`` methods that do, and the array operators (``*``, ``@``, ``[]``)
which always use the default stream. Each call reports its stream (resolved
exactly as MLX resolves ``stream=``), its input and output arrays, after the
original has built the lazy result. Only the thread that opened the block is
observed; calls from other threads, and calls made inside a reported call, pass
straight through.

What this cannot see: work made inside C++ (the backward pass of ``mx.grad``,
the body of an ``mx.compile``d function) and functions bound before the block
(``from mlx.core import exp``). Their arrays reach the timeline as untracked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import mlx.core as mx

from ..model.graph import StreamId
from .streams import stream_id

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

_OPERATORS = {
    "add": "add (+)", "sub": "subtract (-)", "mul": "multiply (*)", "truediv": "divide (/)",
    "div": "divide (/)", "floordiv": "floor_divide (//)", "mod": "remainder (%)",
    "pow": "power (**)", "matmul": "matmul (@)", "neg": "negative (-x)", "pos": "(+x)",
    "abs": "abs", "invert": "bitwise_invert (~)", "and": "bitwise_and (&)",
    "or": "bitwise_or (|)", "xor": "bitwise_xor (^)", "lshift": "left_shift (<<)",
    "rshift": "right_shift (>>)", "eq": "equal (==)", "ne": "not_equal (!=)",
    "lt": "less (<)", "le": "less_equal (<=)", "gt": "greater (>)", "ge": "greater_equal (>=)",
    "getitem": "index ([])", "setitem": "index update ([]=)",
}
_SKIP_METHODS = {"__dlpack__", "__copy__", "__deepcopy__"}


class OpCall(NamedTuple):
    """One observed call: what it was, where it runs, what it read and made.

    A named tuple: one is built per MLX call, and tuples are the cheapest to build."""

    name: str
    stream: StreamId
    inputs: tuple[mx.array, ...]
    outputs: tuple[mx.array, ...]
    handle: mx.Stream | None = None  # the MLX stream itself, to queue more work on it


Hook = Callable[[OpCall], None]


def _operator_name(dunder: str) -> str | None:
    core = dunder.strip("_")
    for prefix in ("", "r", "i"):
        if core.startswith(prefix) and core[len(prefix):] in _OPERATORS:
            return _OPERATORS[core[len(prefix):]]
    return None


def _takes_stream(fn: Any) -> bool:
    first = (getattr(fn, "__doc__", None) or "").split("\n", 1)[0]
    return "stream: StreamOrDevice" in first


@cache
def _targets() -> tuple[tuple[Any, str, str], ...]:
    """(owner, attribute, display name) for everything that creates MLX work.

    Cached: scanning MLX's docstrings costs milliseconds, paid once per process
    rather than per observed run."""
    out: list[tuple[Any, str, str]] = []
    modules: list[tuple[ModuleType, str]] = [
        (mx, ""), (mx.random, "random."), (mx.linalg, "linalg."), (mx.fft, "fft."),
        (mx.fast, "fast."),
    ]
    for module, prefix in modules:
        for name in dir(module):
            fn = getattr(module, name)
            if callable(fn) and not isinstance(fn, type) and _takes_stream(fn):
                out.append((module, name, prefix + name))
    for name in dir(mx.array):
        if name in _SKIP_METHODS:
            continue
        attr = getattr(mx.array, name)
        symbol = _operator_name(name) if name.startswith("__") else None
        if symbol is not None:
            out.append((mx.array, name, symbol))
        elif not name.startswith("_") and callable(attr) and _takes_stream(attr):
            out.append((mx.array, name, "." + name))
    out.append((mx.array, "T", ".T"))
    return tuple(out)


def _arrays_in(values: Any) -> tuple[mx.array, ...]:
    found = []
    for v in values:
        if isinstance(v, mx.array):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            found.extend(x for x in v if isinstance(x, mx.array))
    return tuple(found)


_active: list[Interceptor] = []
_current: Interceptor | None = None  # the one observing now, read by every wrapper


def _observed(original: Callable[..., Any], display: str) -> Callable[..., Any]:
    """The wrapper for one MLX entry point; it reports to whichever interceptor is on.

    Runs on every MLX call: locals and one global only, no thread-local lookups
    (only the owner thread ever changes ``_depth``; other threads leave at once).
    """
    get_ident = threading.get_ident
    array, sequence = mx.array, (list, tuple)
    rebinds = display == _OPERATORS["setitem"]  # __setitem__ rebinds the array itself

    def observed(*args: Any, **kwargs: Any) -> Any:
        me = _current
        if me is None or me._depth or get_ident() != me._owner:
            return original(*args, **kwargs)
        stream, handle = me._stream_of(kwargs.get("stream"))
        me._depth += 1
        try:
            result = original(*args, **kwargs)
            if rebinds:
                outputs: tuple[mx.array, ...] = (args[0],)
            elif isinstance(result, array):
                outputs = (result,)
            elif isinstance(result, sequence):
                outputs = tuple(x for x in result if isinstance(x, array))
            else:
                return result
            inputs = _arrays_in(args)
            if len(kwargs) > ("stream" in kwargs):  # array keyword arguments
                inputs += _arrays_in(kwargs.values())
            me.hook(OpCall(display, stream, inputs, outputs, handle))
        finally:
            me._depth -= 1
        return result

    observed.__wrapped__ = original  # type: ignore[attr-defined]
    observed.__doc__ = getattr(original, "__doc__", None)
    return observed


def _replacement(original: Any, display: str) -> Any:
    if isinstance(original, property):
        return property(_observed(original.fget, display))  # type: ignore[arg-type]
    return _observed(original, display)


@cache
def _patches() -> tuple[tuple[Any, str, Any, Any], ...]:
    """(owner, attribute, original, replacement) for every target, built once per
    process: making ~1,400 wrappers per observed run cost about a millisecond."""
    out = []
    for owner, attr, display in _targets():
        original = owner.__dict__[attr] if attr in owner.__dict__ else getattr(owner, attr)
        out.append((owner, attr, original, _replacement(original, display)))
    return tuple(out)


class Interceptor:
    """Patch MLX's entry points for one ``with`` block and report each call."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self._owner = threading.get_ident()
        self._saved: list[tuple[Any, str, Any]] = []
        self._depth = 0  # > 0 while inside an observed call or the hook
        self._streams: dict[Any, StreamId] = {}

    def _stream_of(self, spec: Any) -> tuple[StreamId, mx.Stream]:
        if spec is None:
            spec = mx.default_stream(mx.default_device())
        elif not isinstance(spec, mx.Stream):
            spec = mx.default_stream(spec)
        sid = self._streams.get(spec)
        if sid is None:
            sid = self._streams[spec] = stream_id(spec)
        return sid, spec

    def __enter__(self) -> Self:
        """Register, then patch; on any failure or interrupt part-way, undo both."""
        try:
            self._register()  # raises if a profile/watch is already observing
            targets = {(id(owner), attr): display for owner, attr, display in _targets()}
            for owner, attr, original, replacement in _patches():
                now = owner.__dict__[attr] if attr in owner.__dict__ else getattr(owner, attr)
                if now is not original:  # someone re-bound it since: wrap what is there now
                    replacement = _replacement(now, targets[(id(owner), attr)])
                self._saved.append((owner, attr, now))  # saved first: undo sees every patch
                setattr(owner, attr, replacement)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Restore every patched attribute and leave the registry.

        Idempotent and resumable: an attribute is forgotten only once restored, so
        a release an interrupt cut short is completed by the next call (callers
        call it again from a ``finally``), and calling it after a full release, or
        after a failed start, does nothing."""
        try:
            _restore(self._saved)
        finally:
            self._unregister()

    def _register(self) -> None:
        """Join the registry; first come, first served. Lock-free on purpose: an
        interrupt inside ``with lock:`` can leave the lock held (CPython 3.11 runs the
        body's first line event before the with's cleanup covers it), and every later
        profile then hangs. ``list.append``/``remove`` are atomic under the GIL, and
        an interrupt between them leaves an entry that ``release`` removes."""
        global _current
        _active.append(self)
        if _active[0] is not self:
            self._unregister()
            raise RuntimeError(
                "unimem is already observing MLX calls (a profile or watch is running); "
                "nest one inside the other is not supported"
            )
        _current = self

    def _unregister(self) -> None:
        global _current
        if _current is self:
            _current = None
        while any(a is self for a in _active):
            try:
                _active.remove(self)
            except ValueError:  # gone meanwhile
                break


def _restore(saved: list[tuple[Any, str, Any]]) -> None:
    """Put back each saved attribute, last patched first; an entry leaves the list only
    once restored, so an interrupted restore can be finished by calling it again."""
    while saved:
        owner, attr, original = saved[-1]
        setattr(owner, attr, original)
        saved.pop()


def observing() -> bool:
    """Whether a profile or watch is observing MLX calls now (the hand-off methods)."""
    return bool(_active)


@contextmanager
def observe(hook: Hook) -> Iterator[Interceptor]:
    """``with observe(hook):`` report every MLX op call of this thread to ``hook``."""
    interceptor = Interceptor(hook)
    try:
        with interceptor:
            yield interceptor
    finally:
        interceptor.release()  # completes a release an interrupt cut short; else a no-op

"""How a plan reaches running code: the open plans per thread, the default streams,
and the wrappers put on module classes and MLX's functions while a plan is open.

Wrappers are shared: the first plan that needs one patches it, the last to close
restores the original, so plans nested or open on several threads keep a single
wrapper, and each wrapper asks the innermost plan open on its own thread what to do
(a thread with no plan open gets MLX's function as it was). ``plan.py`` decides;
this module only switches streams and counts wrappers.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import mlx.core as mx

from ..capture.streams import gpu_available

if TYPE_CHECKING:
    from .plan import Plan

NAMESPACES = ("", "fast", "linalg", "random")  # mx, mx.fast, mx.linalg, mx.random
# a line of the user's code is the first frame outside these (site: rules)
SKIP_DIRS = (str(Path(mx.__file__).resolve().parent),  # .../site-packages/mlx
             str(Path(__file__).resolve().parents[1]))  # unimem itself


class Thread(threading.local):
    """What the plan sees on this thread: the open plans and the contexts around the op."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.modules: list[str] = []
        self.regions: list[str] = []


here = Thread()
_lock = threading.Lock()
_patched: dict[tuple[Any, str], tuple[Any, bool, int]] = {}  # (owner, name) -> (orig, own, uses)


@functools.cache
def cuda() -> bool:
    """Whether this MLX is the CUDA build (the GPU is NVIDIA's, through CUDA)."""
    from ..devices import platform

    return platform().backend == "cuda"


def active() -> Plan | None:
    """The innermost plan open on this thread."""
    return here.plans[-1] if here.plans else None


Defaults = tuple[Any, Any, Any]  # default device, CPU default stream, GPU default stream


# MLX's own stream functions, held here: a plan never patches them, and these
# references stay the originals whatever is patched while a plan is open
_default_stream, _set_default_stream = mx.default_stream, mx.set_default_stream
_default_device, _set_default_device = mx.default_device, mx.set_default_device


def defaults() -> Defaults:
    gpu = _default_stream(mx.gpu) if gpu_available() else None
    return _default_device(), _default_stream(mx.cpu), gpu


def set_defaults(saved: Defaults) -> None:
    device, cpu, gpu = saved
    _set_default_stream(cpu)
    if gpu is not None:
        _set_default_stream(gpu)
    _set_default_device(device)


def current() -> mx.Stream:
    """The stream an op given no ``stream=`` lands on, on this thread."""
    return _default_stream(_default_device())


def cpu_default() -> mx.Stream:
    return _default_stream(mx.cpu)


def use(stream: mx.Stream) -> None:
    _set_default_device(stream.device)
    _set_default_stream(stream)


def compile_enabled() -> bool:
    """Whether ``mx.compile`` compiles now. MLX has no query for it (only
    ``enable_compile``/``disable_compile`` and ``MLX_DISABLE_COMPILE``), so ask it:
    a compiled function traces its body once, an uncompiled one runs it every call."""
    calls = 0

    def body(x: mx.array) -> mx.array:
        nonlocal calls
        calls += 1
        return x

    probe = mx.compile(body)
    x = mx.array(0.0)
    probe(x)
    probe(x)
    return calls == 1


def module_call(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        plan = active()
        path = plan._paths.get(id(self)) if plan is not None else None
        if plan is None or path is None:
            return orig(self, *args, **kwargs)
        here.modules.append(path)
        token = plan._enter_context()
        try:
            return orig(self, *args, **kwargs)
        finally:
            here.modules.pop()
            if token is not None:
                plan._restore(token)
    return call


def op_call(name: str, *, method: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            plan = here.plans[-1] if here.plans else None
            if plan is None:
                return orig(*args, **kwargs)
            stream = plan._op_stream(name, kwargs.get("stream") is not None)
            if stream is None:
                return orig(*args, **kwargs)
            if not method:  # MLX's functions take stream=
                return orig(*args, stream=stream, **kwargs)
            saved = defaults()
            use(stream)  # operators and methods take no stream=: the default it is
            try:
                return orig(*args, **kwargs)
            finally:
                set_defaults(saved)
        functools.update_wrapper(call, orig, updated=())
        return call
    return wrap


def owners(name: str) -> list[Any]:
    owners = []
    for ns in NAMESPACES:
        mod = getattr(mx, ns) if ns else mx
        if callable(getattr(mod, name, None)) and not isinstance(getattr(mod, name), type):
            owners.append(mod)
    if name not in ("__init__", "__new__") and callable(getattr(mx.array, name, None)):
        owners.append(mx.array)
    return owners


def patch(owner: Any, name: str, make: Callable[[Any], Any], done: list[tuple[Any, str]]
           ) -> None:
    """Wrap ``owner.name`` (shared by every open plan: the first patches, the last
    restores, so plans on several threads or nested plans keep one wrapper)."""
    key = (owner, name)
    with _lock:
        if key in _patched:
            orig, own, uses = _patched[key]
            _patched[key] = (orig, own, uses + 1)
        else:
            orig = getattr(owner, name)
            own = name in vars(owner)
            setattr(owner, name, make(orig))
            _patched[key] = (orig, own, 1)
    done.append(key)


def unpatch(done: list[tuple[Any, str]]) -> None:
    with _lock:
        while done:
            key = done.pop()
            orig, own, uses = _patched[key]
            if uses > 1:
                _patched[key] = (orig, own, uses - 1)
                continue
            del _patched[key]
            owner, name = key
            if own:
                setattr(owner, name, orig)
            else:
                delattr(owner, name)


@functools.cache
def all_ops() -> frozenset[str]:
    """Every MLX function that takes ``stream=`` and every array operator and method:
    what ``site:`` rules must see (each is then one rule lookup per call)."""
    names = set()
    for ns in NAMESPACES:
        mod = getattr(mx, ns) if ns else mx
        for n in dir(mod):
            f = getattr(mod, n)
            if (callable(f) and not isinstance(f, type) and "stream" in (f.__doc__ or "")
                    and not any(word in n for word in _NOT_OPS)):
                names.add(n)
    for n in dir(mx.array):
        if n.startswith("__") and n not in _ARRAY_OPS:
            continue
        if callable(getattr(mx.array, n, None)) and "stream" in (
                getattr(mx.array, n).__doc__ or "") or n in _ARRAY_OPS:
            names.add(n)
    return frozenset(names)


# functions that take a stream but make no array of their own
_NOT_OPS = ("stream", "device", "eval", "synchronize", "compile", "export", "import", "save",
            "load", "metal", "cuda", "memory", "cache")
_ARRAY_OPS = frozenset(f"__{a}{op}__" for op in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift") for a in ("", "r", "i")) | {"__neg__", "__abs__", "__invert__",
                                                    "__getitem__", "__lt__", "__le__",
                                                    "__gt__", "__ge__", "__eq__", "__ne__"}


def user_site() -> tuple[str, int] | None:
    """The first frame outside MLX and unimem: the user's line that made this op."""
    frame: FrameType | None = sys._getframe(3)
    while frame is not None:
        file = frame.f_code.co_filename
        if not file.startswith(SKIP_DIRS):
            return file, frame.f_lineno
        frame = frame.f_back
    return None

"""A placement plan: rules applied to any MLX code while ``with plan:`` is open.

MLX gives every op a stream: the one passed as ``stream=``, else the calling
thread's default stream. Operators, methods, ``mlx.nn`` layers, the ``fast``
fallbacks and random ops all follow the default, C++-inserted ops (broadcasts,
casts) follow their op's stream, and backward ops follow their forward op's
stream (``mlx/transforms.cpp`` builds each VJP on ``primitive.stream()``). So
a plan needs two levers only:

* **contexts set the default stream.** Entering a module of the placed model (its
  class's ``__call__`` is wrapped while the plan is open; ``nn.Module`` itself has
  none) or a ``with um.region(name):`` block makes the rules' choice for that
  context the default stream, and leaving restores it. Everything made inside lands
  there, C++-made ops and the later backward pass included.
* **op rules pass ``stream=``.** Only when a rule names ops (``op:``) or lines of
  code (``site:``) are those MLX functions and array methods wrapped, and only the
  calls whose deciding rule is such a rule are redirected.

MLX's ``mx.stream`` context restores only the previous default device's stream
on exit, so the plan saves and restores both devices' default streams itself.
``mx.compile`` bakes streams in when it traces and caches per default stream, so
while a plan is open compilation is off (``compile="off"``, the default), and
compiled functions run op by op where the rules can see them. Everything is undone
on exit, on error and on interrupt. What the plan intended is counted here; what
MLX did is the traced graph (``um.trace(fun, ..., placement=plan)``).

Sources: stream resolution in ``mlx/utils.cpp`` (``to_stream``) and
``mlx/stream.cpp`` (thread-local defaults); https://github.com/ml-explore/mlx.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import mlx.core as mx
from mlx.utils import tree_flatten

from ..capture.streams import gpu_available, parse_name, resolve
from ..errors import ArgumentTypeError, ArgumentValueError
from ..model.placement import Rules, fmt_rules
from ..model.text import TextRepr, fmt_bytes, plural, prose, text_table
from .rules import ParsedRule, Where, decide, normalise, parse

CompileMode = Literal["off", "keep"]

# MLX's CPU-only linear algebra: "not yet supported on the GPU" (mlx/linalg.cpp)
CPU_ONLY = frozenset({"qr", "svd", "inv", "tri_inv", "cholesky", "cholesky_inv", "pinv",
                      "eigh", "eigvalsh", "eig", "eigvals", "lu", "lu_factor", "solve",
                      "solve_triangular"})
_NAMESPACES = ("", "fast", "linalg", "random")  # mx, mx.fast, mx.linalg, mx.random
_SKIP_DIRS = (str(Path(mx.__file__).resolve().parent),  # .../site-packages/mlx
              str(Path(__file__).resolve().parents[1]))  # unimem itself


class _Thread(threading.local):
    """What the plan sees on this thread: the open plans and the contexts around the op."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.modules: list[str] = []
        self.regions: list[str] = []


_here = _Thread()
_lock = threading.Lock()
_patched: dict[tuple[Any, str], tuple[Any, bool, int]] = {}  # (owner, name) -> (orig, own, uses)


@functools.cache
def _cuda() -> bool:
    """Whether this MLX is the CUDA build (the GPU is NVIDIA's, through CUDA)."""
    from ..devices import platform

    return platform().backend == "cuda"


def active() -> Plan | None:
    """The innermost plan open on this thread."""
    return _here.plans[-1] if _here.plans else None


@contextmanager
def region(name: str) -> Iterator[None]:
    """Mark a block of code as a region that ``region:NAME`` rules can place.

    Outside a plan it does nothing, so code can keep its regions for good.
    """
    if not isinstance(name, str) or not name:
        raise ArgumentTypeError(f"a region needs a non-empty name, got {name!r}")
    _here.regions.append(name)
    plan = active()
    token = plan._enter_context() if plan is not None else None
    try:
        yield
    finally:
        _here.regions.pop()
        if plan is not None and token is not None:
            plan._restore(token)


_Defaults = tuple[Any, Any, Any]  # default device, CPU default stream, GPU default stream


# MLX's own stream functions, held here: a plan never patches them, and these
# references stay the originals whatever is patched while a plan is open
_default_stream, _set_default_stream = mx.default_stream, mx.set_default_stream
_default_device, _set_default_device = mx.default_device, mx.set_default_device


def _defaults() -> _Defaults:
    gpu = _default_stream(mx.gpu) if gpu_available() else None
    return _default_device(), _default_stream(mx.cpu), gpu


def _set_defaults(saved: _Defaults) -> None:
    device, cpu, gpu = saved
    _set_default_stream(cpu)
    if gpu is not None:
        _set_default_stream(gpu)
    _set_default_device(device)


def _use(stream: mx.Stream) -> None:
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


class Plan(TextRepr):
    """Rules that place the ops of any MLX code, applied while ``with plan:`` is open.

    ``model`` (an ``mlx.nn.Module``) gives ``module:`` rules their paths, read when the
    plan is first opened (a module added to the model later is not placed: make a new
    plan); rules are ``{selector: target}`` in order, last match wins (see
    ``placing/rules.py``).
    """

    _html_class = "unimem-plan"

    def __init__(self, rules: Mapping[str, str] | Iterable[Sequence[str]], model: Any = None,
                 *, compile: CompileMode = "off", census: bool = False) -> None:
        self.rules: Rules = normalise(rules)
        self._parsed: tuple[ParsedRule, ...] = parse(self.rules)
        for sel, target in self.rules:
            try:
                parse_name(target)
            except ArgumentValueError as exc:
                raise ArgumentValueError(f"rule {sel!r}: {exc}") from None
        if compile not in ("off", "keep"):
            raise ArgumentValueError(f"compile must be 'off' or 'keep', got {compile!r}")
        if model is not None and not callable(getattr(model, "named_modules", None)):
            raise ArgumentTypeError("model must be an mlx.nn.Module (module: rules match its "
                                    f"named_modules() paths), got {type(model).__name__}")
        if model is None and any(a.kind == "module" for r in self._parsed
                                 for a in r.selector.atoms):
            raise ArgumentValueError("module: rules need the model: um.place(model, rules)")
        self.model = model
        self.compile = compile
        self._context_rules = [r if not r.selector.per_op else None for r in self._parsed]
        self._op_names = set().union(*(r.selector.op_names() for r in self._parsed))
        self._sites = census or any(a.kind == "site" for r in self._parsed
                                    for a in r.selector.atoms)
        # with ``census``, every op call is counted by where it was made (op, innermost
        # module, innermost region, line): what the explore widget offers as groups
        self.census: Counter[Where] | None = Counter() if census else None
        self._paths: dict[int, str] = {}  # id(module) -> its path, read at the first open
        self._classes: list[type] = []  # the module classes whose __call__ is wrapped
        self._decisions: dict[tuple[str, tuple[str, ...], tuple[str, ...]], int | None] = {}
        self._streams: dict[str, mx.Stream] = {}
        self._open: list[tuple[_Defaults, bool, list[tuple[Any, str]]]] = []
        self.placed: Counter[int] = Counter()  # rule index -> contexts and op calls it placed
        self._mixes_devices = len({parse_name(t).device for _, t in self.rules}) > 1
        self.managed = 0  # bytes moved to managed memory first (MLX's CUDA build only)
        self.overridden: Counter[str] = Counter()  # reason -> op calls

    # -- the rules as data ---------------------------------------------------------
    def as_dict(self) -> dict[str, str]:
        """The rules as ``{selector: target}`` (a later duplicate selector wins)."""
        return dict(self.rules)

    @property
    def label(self) -> str:
        return fmt_rules(self.rules)

    def target(self, where: Where) -> str | None:
        """The stream name the rules give an op made at ``where`` (None: MLX's default)."""
        i = decide(self._parsed, where)
        return None if i is None else self.rules[i][1]

    # -- open and close ------------------------------------------------------------
    def __enter__(self) -> Plan:  # noqa: PYI034 (Self needs Python 3.11)
        saved = _defaults()
        patched: list[tuple[Any, str]] = []
        compile_was = False
        try:
            self._streams = {t: resolve(t, what=f"rule target {t!r}") for _, t in self.rules}
            if self.model is not None:
                if not self._classes:  # read once: walking a model's modules costs ~50 µs
                    modules = self.model.named_modules()
                    self._paths = {id(m): p for p, m in modules if p}
                    self._classes = list(dict.fromkeys(type(m) for _, m in modules))
                for cls in self._classes:
                    _patch(cls, "__call__", _module_call, patched)
            for name in self._intercepted():
                for owner in _owners(name):
                    _patch(owner, name, _op_call(name, method=owner is mx.array), patched)
            if self.model is not None and self._mixes_devices and _cuda():
                self._to_managed(self.model.parameters())  # (walking them costs ~100 µs)
            if self.compile == "off":
                compile_was = compile_enabled()
                mx.disable_compile()
            self._open.append((saved, compile_was, patched))
            _here.plans.append(self)
            self._enter_context()
        except BaseException:
            _unpatch(patched)
            if compile_was:
                mx.enable_compile()
            _set_defaults(saved)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        saved, compile_was, patched = self._open.pop()
        try:
            _here.plans.remove(self)
        finally:
            _unpatch(patched)
            if compile_was:
                mx.enable_compile()
            _set_defaults(saved)

    def wrap(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """``fun`` run inside this plan: what ``um.profile(..., placement=plan)`` calls."""
        @functools.wraps(fun)
        def placed(*args: Any, **kwargs: Any) -> Any:
            self._to_managed((args, kwargs))
            with self:
                return fun(*args, **kwargs)
        placed.__unimem_plan__ = self  # type: ignore[attr-defined]
        return placed

    def _to_managed(self, tree: Any) -> None:
        """On MLX's CUDA build, when the rules mix CPU and GPU: put the arrays a CPU stream
        may read into managed memory first.

        MLX 0.32's CUDA backend fails when a CPU stream makes a view (a transpose, a
        reshape, a copy that shares the buffer) of an array in device memory and a GPU
        stream reads it: the fence's update looks the CPU stream up among the GPU's
        ("There is no Stream(gpu, N) in current thread", ``Fence::update`` in
        https://github.com/ml-explore/mlx/blob/v0.32.1/mlx/backend/cuda/fence.cpp). A
        model's weights are read that way by the backward pass. Taking an array's buffer
        from the host (its buffer protocol) makes MLX move it to managed memory, where
        the CPU may read it anyway; arrays made during the run are not covered.
        """
        if not self._mixes_devices or not _cuda():
            return
        moved = 0
        for leaf in tree_flatten(tree):
            array = leaf[1] if isinstance(leaf, tuple) else leaf
            if isinstance(array, mx.array):
                memoryview(array)  # type: ignore[arg-type]  # a buffer; the stubs omit it
                moved += array.nbytes
        if moved:
            self.managed += moved

    # -- contexts and ops ----------------------------------------------------------
    def _where(self, op: str = "") -> Where:
        site = _user_site() if (op and self._sites) else None
        return Where(op, tuple(_here.modules), tuple(_here.regions), site)

    def _enter_context(self) -> _Defaults | None:
        """Make the rules' choice for the current context the default stream; return what
        to restore (None when nothing changed)."""
        where = self._where()
        for i in range(len(self._context_rules) - 1, -1, -1):
            rule = self._context_rules[i]
            if rule is not None and rule.selector.matches(where):
                stream = self._streams[rule.target]
                self.placed[i] += 1
                saved = _defaults()
                if _default_stream(_default_device()) == stream:
                    return None
                _use(stream)
                return saved
        return None

    def _restore(self, token: _Defaults) -> None:
        _set_defaults(token)

    def _decide_op(self, op: str) -> int | None:
        """The deciding rule for an op call here (cached per op and context: an op call is
        the hot path, about a microsecond with the cache, four without)."""
        if self._sites:  # every call has its own line: no cache
            where = self._where(op)
            if self.census is not None:
                self.census[Where(op, where.modules[-1:], where.regions[-1:], where.site)] += 1
            return decide(self._parsed, where)
        key = (op, tuple(_here.modules), tuple(_here.regions))
        try:
            return self._decisions[key]
        except KeyError:
            i = self._decisions[key] = decide(self._parsed, self._where(op))
            return i

    def _op_stream(self, op: str, explicit: bool) -> mx.Stream | None:
        """The stream an op call must be given, when an op rule decides it."""
        i = self._decide_op(op)
        by_op = i is not None and self._parsed[i].selector.per_op
        if explicit:
            if by_op:
                self.overridden[f"{op}: the code passes stream= itself"] += 1
            return None
        if by_op:
            assert i is not None
            stream = self._streams[self.rules[i][1]]
        elif op in CPU_ONLY:
            stream = _default_stream(_default_device())  # where a context put it
        else:
            return None  # a context rule (already the default) or no rule at all
        if op in CPU_ONLY and stream.device == mx.gpu:
            self.overridden[f"{op}: no GPU kernel in MLX (mlx/linalg.cpp), ran on cpu"] += 1
            return _default_stream(mx.cpu)
        if by_op:
            assert i is not None
            self.placed[i] += 1
        return stream

    def _intercepted(self) -> set[str]:
        names = set(self._op_names)
        if self._sites:  # site rules and the census look at every op call
            names |= _all_ops()
        if any(t for _, t in self.rules if parse_name(t).device == "gpu"):
            names |= CPU_ONLY  # sent to the GPU by a context, they must come back
        return names

    # -- report --------------------------------------------------------------------
    def lines(self) -> list[str]:
        lines = [f"Placement plan: {plural(len(self.rules), 'rule')}, last match wins"
                 + ("" if self.model is None else f", over {type(self.model).__name__}")]
        rows = [["#", "selector", "target", "placed"]]
        for i, (sel, target) in enumerate(self.rules):
            rows.append([str(i + 1), sel, target, str(self.placed[i])])
        lines += text_table(rows)
        for reason, n in self.overridden.most_common():
            lines += prose(f"  overridden: {reason} ({plural(n, 'call')})")
        notes = [("'placed' counts module and region entries and redirected op calls while "
                  "the plan was open; the traced graph (um.trace(fun, ..., placement=plan)) "
                  "shows where MLX ran each primitive"),
                 "backward ops run on their forward op's stream (mlx/transforms.cpp)"]
        if self.compile == "off":
            notes.append("mx.compile is off while the plan is open: compiled functions run "
                         "op by op, so the rules reach their ops")
        if self.managed:
            notes.append(f"{fmt_bytes(self.managed)} of weights and arguments were moved to "
                         "managed memory first: MLX 0.32's CUDA build fails when a CPU stream's "
                         "view of a device buffer is read by a GPU stream")
        lines += [x for n in notes for x in prose(f"  note: {n}")]
        return lines


def place(model: Any = None, rules: Mapping[str, str] | Iterable[Sequence[str]] | None = None,
          *, compile: CompileMode = "off") -> Plan:
    """A placement plan for any MLX code: ``with um.place(model, rules):``.

    ``um.place({"*": "cpu", "region:io": "cpu:1"})`` works without a model (no
    ``module:`` rules then).
    """
    if rules is None and isinstance(model, (Mapping, list, tuple)):
        model, rules = None, model
    if rules is None:
        raise ArgumentValueError("place needs rules, e.g. um.place(model, {'*': 'cpu', "
                                 "'module:layers.0': 'cpu:1'})")
    return Plan(rules, model, compile=compile)


# -- patching ----------------------------------------------------------------------

def _module_call(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        plan = active()
        path = plan._paths.get(id(self)) if plan is not None else None
        if plan is None or path is None:
            return orig(self, *args, **kwargs)
        _here.modules.append(path)
        token = plan._enter_context()
        try:
            return orig(self, *args, **kwargs)
        finally:
            _here.modules.pop()
            if token is not None:
                plan._restore(token)
    return call


def _op_call(name: str, *, method: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            plan = _here.plans[-1] if _here.plans else None
            if plan is None:
                return orig(*args, **kwargs)
            stream = plan._op_stream(name, kwargs.get("stream") is not None)
            if stream is None:
                return orig(*args, **kwargs)
            if not method:  # MLX's functions take stream=
                return orig(*args, stream=stream, **kwargs)
            saved = _defaults()
            _use(stream)  # operators and methods take no stream=: the default it is
            try:
                return orig(*args, **kwargs)
            finally:
                _set_defaults(saved)
        functools.update_wrapper(call, orig, updated=())
        return call
    return wrap


def _owners(name: str) -> list[Any]:
    owners = []
    for ns in _NAMESPACES:
        mod = getattr(mx, ns) if ns else mx
        if callable(getattr(mod, name, None)) and not isinstance(getattr(mod, name), type):
            owners.append(mod)
    if name not in ("__init__", "__new__") and callable(getattr(mx.array, name, None)):
        owners.append(mx.array)
    return owners


def _patch(owner: Any, name: str, make: Callable[[Any], Any], done: list[tuple[Any, str]]
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


def _unpatch(done: list[tuple[Any, str]]) -> None:
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
def _all_ops() -> frozenset[str]:
    """Every MLX function that takes ``stream=`` and every array operator and method:
    what ``site:`` rules must see (each is then one rule lookup per call)."""
    names = set()
    for ns in _NAMESPACES:
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


def _user_site() -> tuple[str, int] | None:
    """The first frame outside MLX and unimem: the user's line that made this op."""
    frame: FrameType | None = sys._getframe(3)
    while frame is not None:
        file = frame.f_code.co_filename
        if not file.startswith(_SKIP_DIRS):
            return file, frame.f_lineno
        frame = frame.f_back
    return None

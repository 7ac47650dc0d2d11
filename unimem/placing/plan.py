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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import mlx.core as mx
from mlx.utils import tree_flatten

from ..capture.streams import parse_name, resolve
from ..errors import ArgumentTypeError, ArgumentValueError
from ..model.placement import Rules, fmt_rules
from ..model.text import TextRepr, fmt_bytes, plural, prose, text_table
from . import hooks
from .rules import ParsedRule, Where, decide, normalise, parse

CompileMode = Literal["off", "keep"]

# MLX's CPU-only linear algebra: "not yet supported on the GPU" (mlx/linalg.cpp)
CPU_ONLY = frozenset({"qr", "svd", "inv", "tri_inv", "cholesky", "cholesky_inv", "pinv",
                      "eigh", "eigvalsh", "eig", "eigvals", "lu", "lu_factor", "solve",
                      "solve_triangular"})


@contextmanager
def region(name: str) -> Iterator[None]:
    """Mark a block of code as a region that ``region:NAME`` rules can place.

    Outside a plan it does nothing, so code can keep its regions for good.
    """
    if not isinstance(name, str) or not name:
        raise ArgumentTypeError(f"a region needs a non-empty name, got {name!r}")
    hooks.here.regions.append(name)
    plan = hooks.active()
    token = plan._enter_context() if plan is not None else None
    try:
        yield
    finally:
        hooks.here.regions.pop()
        if plan is not None and token is not None:
            plan._restore(token)


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
        self._open: list[tuple[hooks.Defaults, bool, list[tuple[Any, str]]]] = []
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
        saved = hooks.defaults()
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
                    hooks.patch(cls, "__call__", hooks.module_call, patched)
            for name in self._intercepted():
                for owner in hooks.owners(name):
                    hooks.patch(owner, name, hooks.op_call(name, method=owner is mx.array), patched)
            if self.model is not None and self._mixes_devices and hooks.cuda():
                self._to_managed(self.model.parameters())  # (walking them costs ~100 µs)
            if self.compile == "off":
                compile_was = hooks.compile_enabled()
                mx.disable_compile()
            self._open.append((saved, compile_was, patched))
            hooks.here.plans.append(self)
            self._enter_context()
        except BaseException:
            hooks.unpatch(patched)
            if compile_was:
                mx.enable_compile()
            hooks.set_defaults(saved)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        saved, compile_was, patched = self._open.pop()
        try:
            hooks.here.plans.remove(self)
        finally:
            hooks.unpatch(patched)
            if compile_was:
                mx.enable_compile()
            hooks.set_defaults(saved)

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
        if not self._mixes_devices or not hooks.cuda():
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
        site = hooks.user_site() if (op and self._sites) else None
        return Where(op, tuple(hooks.here.modules), tuple(hooks.here.regions), site)

    def _enter_context(self) -> hooks.Defaults | None:
        """Make the rules' choice for the current context the default stream; return what
        to restore (None when nothing changed)."""
        where = self._where()
        for i in range(len(self._context_rules) - 1, -1, -1):
            rule = self._context_rules[i]
            if rule is not None and rule.selector.matches(where):
                stream = self._streams[rule.target]
                self.placed[i] += 1
                saved = hooks.defaults()
                if hooks.current() == stream:
                    return None
                hooks.use(stream)
                return saved
        return None

    def _restore(self, token: hooks.Defaults) -> None:
        hooks.set_defaults(token)

    def _decide_op(self, op: str) -> int | None:
        """The deciding rule for an op call here (cached per op and context: an op call is
        the hot path, about a microsecond with the cache, four without)."""
        if self._sites:  # every call has its own line: no cache
            where = self._where(op)
            if self.census is not None:
                self.census[Where(op, where.modules[-1:], where.regions[-1:], where.site)] += 1
            return decide(self._parsed, where)
        key = (op, tuple(hooks.here.modules), tuple(hooks.here.regions))
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
            stream = hooks.current()  # where a context put it
        else:
            return None  # a context rule (already the default) or no rule at all
        if op in CPU_ONLY and stream.device == mx.gpu:
            self.overridden[f"{op}: no GPU kernel in MLX (mlx/linalg.cpp), ran on cpu"] += 1
            return hooks.cpu_default()
        if by_op:
            assert i is not None
            self.placed[i] += 1
        return stream

    def _intercepted(self) -> set[str]:
        names = set(self._op_names)
        if self._sites:  # site rules and the census look at every op call
            names |= hooks.all_ops()
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



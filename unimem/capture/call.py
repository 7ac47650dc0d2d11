"""A user function bound to its arguments, with its stream parameters separated.

``um.profile(fun, a, b, d1=mx.gpu, d2="cpu:1")`` needs to know which arguments
place work (``d1``, ``d2``: any MLX device or stream, or a name like "cpu:1"),
which are arrays (the inputs MLX traces), and which are plain values. A
:class:`Call` keeps the three apart so the same call can be re-run under another
placement, traced by ``mx.export_function``, or run for real.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map

from ..checks import check_placement, given
from ..errors import ArgumentTypeError, ArgumentValueError, NoArraysError
from .params import ParamUse, param_use
from .streams import Placement, StreamLike, accepted_forms, is_stream_like, parse_name


def flatten_arrays(tree: Any) -> list[mx.array]:
    """Every mx.array in nested lists, tuples and dicts, in ``tree_flatten`` order.

    MLX's own tree walk, not a recursive closure: a closure that calls itself
    holds the list it fills in a reference cycle, and a timed run's outputs then
    stayed alive until the garbage collector ran (each run paying for fresh pages).
    """
    leaves = tree_flatten(tree)  # a list of (path, leaf) without a destination argument
    assert isinstance(leaves, list)
    return [x for _, x in leaves if isinstance(x, mx.array)]


def _replace_arrays(tree: Any, arrays: list[mx.array]) -> Any:
    """``tree`` with its arrays taken, in flatten order, from ``arrays``."""
    replacements = iter(arrays)
    return tree_map(lambda x: next(replacements) if isinstance(x, mx.array) else x, tree)


@dataclass(frozen=True)
class Call:
    """``fun(*args, **kwargs)`` with the stream parameters held as a placement."""

    fun: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    placement: Placement
    positions: Mapping[str, int]  # stream parameters passed positionally
    # a placement plan's rules ({selector: target}), where ``fun`` runs inside one
    rules: Mapping[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return getattr(self.fun, "__name__", type(self.fun).__name__)

    @property
    def placement_names(self) -> dict[str, str]:
        """The placement as recordings and graphs label it: stream parameters, then rules."""
        return {**self.placement.names, **self.rules}

    @property
    def stream_params(self) -> list[str]:
        return list(self.placement.names)

    def with_placement(self, mapping: Mapping[str, StreamLike]) -> Call:
        """The same call under another placement (only known stream parameters)."""
        unknown = set(mapping) - set(self.placement.names)
        if unknown:
            raise ValueError(
                f"{self.title} has no stream parameter {min(unknown)!r}; "
                f"its stream parameters are {self.stream_params}"
            )
        merged = {**dict(self.placement.specs), **mapping}
        return replace(self, placement=Placement.from_mapping(merged))

    @property
    def inputs(self) -> list[mx.array]:
        return flatten_arrays((self.args, dict(self.kwargs)))

    def bound(self, arrays: list[mx.array] | None = None) -> tuple[list[Any], dict[str, Any]]:
        """Arguments for one call on this thread's streams (``arrays`` replace the inputs)."""
        args, kwargs = list(self.args), dict(self.kwargs)
        if arrays is not None:
            args, kwargs = _replace_arrays((args, kwargs), list(arrays))
            args = list(args)
        for name, stream in self.placement.resolve().items():
            if name in self.positions:
                args[self.positions[name]] = stream
            else:
                kwargs[name] = stream
        return args, kwargs

    def outputs_of(self, result: Any) -> list[mx.array]:
        """The arrays in what the function returned; an error if there are none."""
        outputs = flatten_arrays(result)
        if not outputs:
            raise NoArraysError(
                f"{self.title} returned no MLX arrays; unimem evaluates and times what a "
                "function returns, so return the arrays it computes"
            )
        return outputs

    def run(self, arrays: list[mx.array] | None = None) -> list[mx.array]:
        """Call the function on this thread's streams; return its output arrays, lazy."""
        args, kwargs = self.bound(arrays)
        return self.outputs_of(self.fun(*args, **kwargs))

    def as_flat_function(self) -> Callable[..., list[mx.array]]:
        """A function of the flat array inputs only, as ``mx.export_function`` needs."""
        return lambda *arrays: self.run(list(arrays))


@runtime_checkable
class Placer(Protocol):
    """A placement of any code (``um.place``'s Plan): it runs a function inside its rules."""

    def wrap(self, fun: Callable[..., Any]) -> Callable[..., Any]: ...

    def as_dict(self) -> dict[str, str]: ...


def bind(
    fun: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    placement: Mapping[str, StreamLike] | Placer | None = None,
) -> Call:
    """Split a call into its placement and everything else, checking names early.

    ``placement`` is a mapping of stream parameters, or a plan of rules
    (``um.place``) that the function then runs inside, every time it runs.
    """
    if isinstance(placement, Placer) and not isinstance(placement, Mapping):
        call = bind(fun, args, kwargs, None)
        return replace(call, fun=placement.wrap(call.fun), rules=placement.as_dict())
    if not callable(fun):
        raise ArgumentTypeError(f"fun must be a function (or any callable), got {given(fun)}")
    if placement is not None:
        check_placement("placement", placement)
    try:
        sig: inspect.Signature | None = inspect.signature(fun)
    except (TypeError, ValueError):
        sig = None
    names: list[str] = []  # positional parameters, in order
    keyword: list[str] = []  # every parameter a keyword can name
    var_kw = False
    if sig is not None:
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                keyword.append(p.name)
            var_kw |= p.kind == p.VAR_KEYWORD
    use = param_use(fun)
    if sig is not None:  # a default of mx.cpu / mx.gpu / a stream marks a stream parameter
        use = replace(use, streams=use.streams | {
            p.name for p in sig.parameters.values()
            if isinstance(p.default, (mx.Stream, mx.Device, mx.DeviceType))})
    streams: dict[str, StreamLike] = {}
    positions: dict[str, int] = {}
    for i, value in enumerate(args):
        name = names[i] if i < len(names) else f"arg{i}"
        if _is_stream(name, value, use):
            streams[name] = value
            positions[name] = i
    rest = {}
    for k, v in kwargs.items():
        if _is_stream(k, v, use):
            streams[k] = v
        else:
            rest[k] = v
    for k, v in (placement or {}).items():
        streams[k] = v
    if sig is not None and not var_kw:
        extra = [k for k in streams if k not in keyword and k not in positions]
        if extra:
            raise ArgumentValueError(
                f"{getattr(fun, '__name__', 'the function')} has no parameter {extra[0]!r} "
                f"(its parameters: {', '.join(sig.parameters) or 'none'})"
            )
    return Call(fun, tuple(args), rest, Placement.from_mapping(streams), positions)


def _is_stream(param: str, value: Any, use: ParamUse) -> bool:
    """Whether ``value``, given for ``param``, places work (see ``capture/params.py``).

    A parameter the source passes as ``stream=`` must get a stream (or None, MLX's
    default): a misspelt name fails here, naming the accepted forms. A parameter
    the source only reads as a plain value keeps its string, even "cpu". Others go
    by value: devices, streams and well-formed names place work.
    """
    if isinstance(value, (mx.Stream, mx.Device, mx.DeviceType)):
        return True
    if param in use.streams:
        if value is None:
            return False
        if not isinstance(value, str):
            raise ArgumentTypeError(f"stream parameter {param!r}: expected {accepted_forms()}, "
                                    f"got {given(value)}")
        try:
            parse_name(value)
        except ValueError as exc:
            raise ArgumentValueError(f"stream parameter {param!r}: {exc}") from None
        return True
    if param in use.plain:
        return False
    return is_stream_like(value)

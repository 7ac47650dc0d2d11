"""Named streams and placements: turn "cpu", "gpu", "cpu:1" into MLX streams.

A *placement* maps a function's stream parameters to streams. Names keep
placements readable and serialisable: "cpu" and "gpu" are the device's default
stream (where MLX also puts ops given no ``stream=``), "cpu:1" is a second stream
on the CPU, and so on. MLX binds every stream to the thread that created it (its
command encoder is thread-local), so named streams are created lazily, on the
thread that evaluates, and cached per thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import mlx.core as mx

from ..errors import ArgumentTypeError, ArgumentValueError, GPUUnavailableError
from ..model.graph import StreamId
from ..model.text import fmt_placement

_NAME = re.compile(r"(cpu|gpu)(?::(\d+))?\Z")
_STREAM_REPR = re.compile(r"Stream\(Device\((cpu|gpu), (\d+)\), (\d+)\)")

StreamLike = Union[str, "mx.Stream", "mx.Device", "mx.DeviceType"]


@dataclass(frozen=True, order=True)
class StreamName:
    """A device plus an ordinal: 0 is the device's default stream, 1.. new ones."""

    device: str
    ordinal: int = 0

    def __str__(self) -> str:
        return self.device if self.ordinal == 0 else f"{self.device}:{self.ordinal}"


def is_stream_like(value: Any) -> bool:
    """True for values that place work: MLX devices and streams, or stream names."""
    if isinstance(value, (mx.Stream, mx.Device, mx.DeviceType)):
        return True
    return isinstance(value, str) and _NAME.match(value) is not None


def accepted_forms() -> str:
    """The stream values unimem takes, as errors list them (GPU forms where a GPU exists)."""
    names = "'cpu', 'cpu:N'" + (", 'gpu', 'gpu:N'" if gpu_available() else "")
    devices = "mx.cpu" + (" or mx.gpu" if gpu_available() else "")
    return (f"a stream name ({names}; N >= 1 is the N-th extra stream on that device), "
            f"{devices}, or an mx.Stream")


def parse_name(text: str) -> StreamName:
    """Parse "cpu", "gpu", "cpu:1" (exactly: no spaces, lower case); raise
    ArgumentValueError listing the accepted forms."""
    m = _NAME.match(text) if isinstance(text, str) else None
    if m is None:
        raise ArgumentValueError(f"{text!r} is not a stream name: use {accepted_forms()}")
    return StreamName(m.group(1), int(m.group(2) or 0))


def stream_id(stream: mx.Stream) -> StreamId:
    """MLX's stream identity; Python exposes the index only through ``repr``."""
    m = _STREAM_REPR.fullmatch(repr(stream))
    if m is None:  # pragma: no cover - would mean MLX changed its repr
        raise RuntimeError(f"cannot read the stream index from {stream!r}")
    return StreamId(m.group(1), int(m.group(3)))


def device_kind(device: Any) -> str:
    """'cpu' or 'gpu' for an mx.Device, mx.DeviceType or stream."""
    if isinstance(device, mx.Stream):
        device = device.device
    if isinstance(device, mx.Device):
        device = device.type
    return "gpu" if device == mx.gpu else "cpu"


def gpu_available() -> bool:
    return bool(mx.is_available(mx.gpu))


def require_gpu(what: str) -> None:
    """Raise a clear error naming this platform when no GPU exists."""
    if gpu_available():
        return
    from ..devices import platform

    p = platform()
    raise GPUUnavailableError(
        f"{what} asks for the GPU, but this MLX build has none ({p.summary}). "
        "Use 'cpu', or a second CPU stream such as 'cpu:1' to run work side by side. "
        "For a GPU: Apple silicon with `pip install mlx`, or Linux with an NVIDIA GPU "
        "and `pip install 'mlx[cuda13]'` (see the README)."
    )


class _ThreadStreams(threading.local):
    """Per-thread cache of the extra streams made for names like "cpu:1"."""

    def __init__(self) -> None:
        self.extra: dict[StreamName, mx.Stream] = {}
        self.names: dict[StreamId, StreamName] = {}


_local = _ThreadStreams()


def resolve(spec: StreamLike, *, what: str = "this placement") -> mx.Stream:
    """The MLX stream that ``spec`` denotes on the calling thread.

    Devices resolve the way MLX resolves ``stream=device``: to that device's
    default stream. Names with an ordinal get their own stream, made once per
    thread. A GPU where there is none raises :class:`GPUUnavailableError`.
    """
    if isinstance(spec, mx.Stream):
        if device_kind(spec) == "gpu":
            require_gpu(what)
        return spec
    if isinstance(spec, (mx.Device, mx.DeviceType)):
        spec = device_kind(spec)
    if not isinstance(spec, (str, StreamName)):
        raise ArgumentTypeError(f"{what}: expected {accepted_forms()}, "
                                f"got {type(spec).__name__}")
    name = spec if isinstance(spec, StreamName) else parse_name(spec)
    device = mx.gpu if name.device == "gpu" else mx.cpu
    if name.device == "gpu":
        require_gpu(what)
    if name.ordinal == 0:
        stream = mx.default_stream(device)
    elif name in _local.extra:
        stream = _local.extra[name]
    else:
        stream = _local.extra[name] = mx.new_stream(device)
    _local.names.setdefault(stream_id(stream), name)
    return stream


def name_of(sid: StreamId) -> str:
    """A readable lane name: the placement name if one was resolved to it."""
    known = _local.names.get(sid)
    if known is not None:
        return str(known)
    default: StreamId | None
    try:
        default = stream_id(mx.default_stream(mx.gpu if sid.device == "gpu" else mx.cpu))
    except ValueError:  # no GPU backend
        default = None
    if default == sid:
        return sid.device
    return f"{sid.device}#{sid.index}"


def current_default() -> mx.Stream:
    """The stream MLX uses for an op given no ``stream=`` on this thread."""
    return mx.default_stream(mx.default_device())


@dataclass(frozen=True)
class Placement:
    """Which stream each stream parameter of a function runs on.

    Values are kept as given (a name, device or stream); ``names`` holds their
    canonical text so placements compare, print and serialise the same way.
    """

    specs: tuple[tuple[str, StreamLike], ...]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, StreamLike]) -> Placement:
        for param, spec in mapping.items():  # validate early, naming the parameter
            try:
                _spec_name(spec)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"stream parameter {param!r}: {exc}") from None
        return cls(tuple(mapping.items()))

    def resolve(self) -> dict[str, mx.Stream]:
        """Streams for this thread, validating each (GPU present, names well formed)."""
        return {p: resolve(s, what=f"parameter {p!r}={_spec_name(s)!r}") for p, s in self.specs}

    @property
    def names(self) -> dict[str, str]:
        return {p: _spec_name(s) for p, s in self.specs}

    @property
    def label(self) -> str:
        return fmt_placement(self.names) or "(no stream parameters)"

    def __str__(self) -> str:
        return self.label

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Placement) and self.names == other.names

    def __hash__(self) -> int:
        return hash(tuple(self.names.items()))


def _spec_name(spec: StreamLike) -> str:
    """Canonical text for a placement value, so placements compare and serialise."""
    if isinstance(spec, mx.Stream):
        return name_of(stream_id(spec))
    if isinstance(spec, (mx.Device, mx.DeviceType)):
        return device_kind(spec)
    if isinstance(spec, StreamName):
        return str(spec)
    if isinstance(spec, str):
        return str(parse_name(spec))
    raise ArgumentTypeError(f"expected {accepted_forms()}, got {type(spec).__name__}")

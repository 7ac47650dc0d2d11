"""Read the one thing only MLX's export file stores: the stream of each primitive.

``mx.export_function(path, ...)`` writes, per tape entry, the array id, its input
ids, the primitive's stream and name, the primitive's state, and the output
shapes and dtypes (``mlx/export.cpp``, ``FunctionExporter::export_function``).
The state block depends on the primitive's C++ type and carries no length, so
this reader does not decode it: it uses the callback export of the same function,
which gives every primitive's output shapes and dtypes, and finds the first
position after the state where exactly those bytes follow and the next entry
parses. Little-endian layout::

    header   str version | i32 count | bool shapeless | str metadata
    function vec<str> kwargs | vec<u64> input_ids | vec<(Shape, Dtype)> inputs
             | vec<u64> output_ids | u64 ntape | entries
    entry    u64 id | bool has_primitive
             primitive: vec<u64> in_ids | i32 stream, i32 device_type, i32 device
                        | str name | <state> | u64 nsiblings
                        | (Shape | Dtype) or (vec<u64> ids | vec<Shape> | vec<Dtype>)
             array:     bool is_constant | first time: Shape | Dtype | raw bytes
    str/vec = u64 length + items; Shape = vec<i32>; Dtype = i32 value, u8 size
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

import mlx.core as mx

from ..errors import ExportFormatError
from ..model.graph import StreamId

#: MLX versions whose file layout this reader was checked against.
KNOWN_VERSIONS = ("0.32.",)

# mlx/dtype.h, Dtype::Val, in declaration order.
_DTYPE_ORDER = (
    "bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float16", "float32", "float64", "bfloat16", "complex64",
)
DTYPE_VALUE = {getattr(mx, n): i for i, n in enumerate(_DTYPE_ORDER)}
DTYPE_BY_VALUE = {i: getattr(mx, n) for i, n in enumerate(_DTYPE_ORDER)}


@dataclass(frozen=True)
class ExpectedPrimitive:
    """What the callback export says about one primitive, in tape order."""

    name: str
    outputs: tuple[tuple[tuple[int, ...], mx.Dtype], ...]


@dataclass(frozen=True)
class Entry:
    """One tape entry with a primitive: ids and the stream it was recorded on."""

    name: str
    stream: StreamId
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class ExportFile:
    version: str
    input_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    constant_ids: tuple[int, ...]
    entries: tuple[Entry, ...]


_LAYOUTS: dict[str, struct.Struct] = {}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        layout = _LAYOUTS.get(fmt)
        if layout is None:  # compiled once per format: a 10k-op file reads ~100k fields
            layout = _LAYOUTS[fmt] = struct.Struct(fmt)
        if self.pos + layout.size > len(self.data):
            raise ExportFormatError(f"file ends inside a field at byte {self.pos}")
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def u64(self) -> int:
        return self.take("<Q")[0]

    def i32(self) -> int:
        return self.take("<i")[0]

    def flag(self) -> bool:
        (b,) = self.take("<B")
        if b > 1:
            raise ExportFormatError(f"expected a bool at byte {self.pos - 1}, got {b}")
        return b == 1

    def length(self, item_size: int) -> int:
        n = self.u64()
        if n * item_size > len(self.data) - self.pos:
            raise ExportFormatError(f"implausible length {n} at byte {self.pos - 8}")
        return n

    def string(self) -> str:
        n = self.length(1)
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def ids(self) -> tuple[int, ...]:
        n = self.length(8)
        return self.take(f"<{n}Q")

    def shape(self) -> tuple[int, ...]:
        n = self.length(4)
        return self.take(f"<{n}i")

    def dtype(self) -> tuple[int, int]:
        val, size = self.take("<iB")
        if val not in DTYPE_BY_VALUE:
            raise ExportFormatError(f"unknown dtype value {val} at byte {self.pos - 5}")
        return val, size


def _single_tail(shape: tuple[int, ...], dtype: mx.Dtype) -> bytes:
    """The bytes that follow a single-output primitive's state."""
    return (
        struct.pack("<QQ", 0, len(shape))
        + struct.pack(f"<{len(shape)}i", *shape)
        + struct.pack("<iB", DTYPE_VALUE[dtype], dtype.size)
    )


def read_export(data: bytes, expected: Sequence[ExpectedPrimitive]) -> ExportFile:
    """Parse a one-function export file, guided by the callback's primitives."""
    r = _Reader(data)
    version = r.string()
    count = r.i32()
    r.flag()  # shapeless
    r.string()  # metadata
    if count != 1:
        raise ExportFormatError(f"expected one exported function, found {count}")
    for _ in range(r.length(8)):  # keyword names
        r.string()
    input_ids = r.ids()
    for _ in range(r.length(13)):  # input shapes and dtypes
        r.shape()
        r.dtype()
    output_ids = r.ids()
    ntape = r.length(9)

    known: set[int] = set(input_ids)
    constants: list[int] = []
    entries: list[Entry] = []
    for _ in range(ntape):
        arr_id = r.u64()
        if not r.flag():
            if r.flag() and arr_id not in known:  # a constant, stored the first time
                shape = r.shape()
                _, size = r.dtype()
                r.pos += prod(shape) * size
                constants.append(arr_id)
            known.add(arr_id)
            continue
        if len(entries) >= len(expected):
            raise ExportFormatError("the file has more primitives than the callback reported")
        want = expected[len(entries)]
        inputs = r.ids()
        index, device_type, _device_index = r.take("<iii")
        name = r.string()
        if name != want.name:
            raise ExportFormatError(
                f"primitive {len(entries)} is {name!r} in the file but {want.name!r} in the "
                "callback: did the function trace differently twice?"
            )
        nxt = expected[len(entries) + 1].name if len(entries) + 1 < len(expected) else None
        outputs = _skip_state_and_outputs(r, arr_id, want, known, nxt)
        known.update(outputs)
        device = "gpu" if device_type == 1 else "cpu"
        entries.append(Entry(name, StreamId(device, index), inputs, outputs))
    if len(entries) != len(expected):
        raise ExportFormatError(
            f"the file has {len(entries)} primitives, the callback {len(expected)}"
        )
    return ExportFile(version, input_ids, output_ids, tuple(constants), tuple(entries))


def _skip_state_and_outputs(
    r: _Reader,
    arr_id: int,
    want: ExpectedPrimitive,
    known: set[int],
    next_name: str | None,
) -> tuple[int, ...]:
    """Move past the undecoded state to the output block; return the output ids."""
    start = r.pos
    if len(want.outputs) == 1:
        tail = _single_tail(*want.outputs[0])
    else:
        tail = struct.pack("<QQ", len(want.outputs) - 1, len(want.outputs))
    at = r.data.find(tail, start)
    while at >= 0:
        r.pos = at + len(tail)
        try:
            outputs = (arr_id,) if len(want.outputs) == 1 else _multi_outputs(r, want)
            if _next_entry_fits(r, known, outputs, next_name):
                return outputs
        except ExportFormatError:
            pass
        at = r.data.find(tail, at + 1)
    raise ExportFormatError(
        f"could not find where the state of {want.name} ends (byte {start}); "
        "this MLX version may store primitives differently"
    )


def _multi_outputs(r: _Reader, want: ExpectedPrimitive) -> tuple[int, ...]:
    n = len(want.outputs)
    ids = r.take(f"<{n}Q")
    if r.u64() != n:
        raise ExportFormatError("sibling shapes")
    shapes = [r.shape() for _ in range(n)]
    if r.u64() != n:
        raise ExportFormatError("sibling dtypes")
    dtypes = [r.dtype() for _ in range(n)]
    for (shape, dtype), got_shape, (val, size) in zip(want.outputs, shapes, dtypes):
        if tuple(shape) != got_shape or DTYPE_VALUE[dtype] != val or dtype.size != size:
            raise ExportFormatError("sibling outputs differ from the callback")
    return ids


def _next_entry_fits(
    r: _Reader, known: set[int], outputs: tuple[int, ...], next_name: str | None
) -> bool:
    """Whether the bytes at r.pos start the entry the callback says comes next."""
    saved = r.pos
    try:
        if r.pos == len(r.data):
            return next_name is None
        r.u64()
        if not r.flag():
            return True  # an input or constant; its own checks follow when it is read
        if next_name is None:
            return False
        if not all(i in known or i in outputs for i in r.ids()):
            return False
        _, device_type, _ = r.take("<iii")
        return device_type in (0, 1) and r.string() == next_name
    except ExportFormatError:
        return False
    finally:
        r.pos = saved

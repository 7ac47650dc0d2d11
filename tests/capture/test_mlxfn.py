"""The export-file reader against what MLX's callback export says about the same function.

A few-hundred-byte file in pytest's tmp_path: two inputs, a constant, primitives on
two CPU streams, one with two outputs (Split's siblings).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import pytest

from unimem.capture.mlxfn import KNOWN_VERSIONS, ExpectedPrimitive, ExportFile, read_export
from unimem.capture.streams import stream_id
from unimem.errors import ExportFormatError, UnimemError


def export(tmp_path, side: mx.Stream) -> tuple[bytes, list[dict[str, Any]]]:
    """Both exports of a tiny function, with primitives on ``side`` and the default stream."""
    k = mx.array([1.0, 2.0, 3.0, 4.0])  # a constant: stored in the file with its bytes

    def tiny(a: mx.array, b: mx.array) -> tuple[mx.array, mx.array]:
        c = mx.add(a, b, stream=side)
        d, e = mx.split(mx.exp(c, stream=mx.cpu), 2, stream=side)
        return mx.multiply(d, k[:2], stream=mx.cpu), e

    records: list[dict[str, Any]] = []
    path = tmp_path / "tiny.mlxfn"
    with mx.stream(mx.cpu):  # k[:2] takes the default stream: the CPU's, even beside a GPU
        args = mx.ones((4,)), mx.zeros((4,))
        mx.export_function(records.append, tiny, *args)
        mx.export_function(str(path), tiny, *args)
    data = path.read_bytes()
    assert len(data) < 4096
    return data, records


def expected(records: list[dict[str, Any]]) -> list[ExpectedPrimitive]:
    return [ExpectedPrimitive(r["name"], tuple((tuple(s), d) for _, s, d in r["outputs"]))
            for r in records if r["type"] == "primitive"]


def first(records: list[dict[str, Any]], kind: str) -> list[Any]:
    return next(r[kind] for r in records if r["type"] == kind)


@pytest.fixture(scope="module")
def side() -> mx.Stream:
    return mx.new_stream(mx.cpu)


def test_entries_match_the_callback_export(tmp_path, side):
    data, records = export(tmp_path, side)
    f = read_export(data, expected(records))
    assert isinstance(f, ExportFile) and f.version.startswith(KNOWN_VERSIONS)
    prims = [r for r in records if r["type"] == "primitive"]
    assert [e.name for e in f.entries] == [r["name"] for r in prims] == [
        "Add", "Exp", "Split", "Slice", "Multiply"]
    other, default = stream_id(side), stream_id(mx.default_stream(mx.cpu))
    assert other != default
    assert [e.stream for e in f.entries] == [other, default, other, default, default]
    # ids: the callback's names map onto the file's ids consistently everywhere
    id_of = dict(zip((n for n, _, _ in first(records, "inputs")), f.input_ids))
    id_of |= dict(zip((n for n, _ in first(records, "constants")), f.constant_ids))
    assert len(id_of) == 3 and len(f.input_ids) == 2 and len(f.constant_ids) == 1
    for r, e in zip(prims, f.entries):
        assert e.inputs == tuple(id_of[n] for n, _, _ in r["inputs"])
        assert len(e.outputs) == len(r["outputs"])
        id_of |= dict(zip((n for n, _, _ in r["outputs"]), e.outputs))
    assert len(f.entries[2].outputs) == 2  # Split's siblings
    assert f.output_ids == tuple(id_of[n] for n, _, _ in first(records, "outputs"))


def test_a_truncated_file_raises_export_format_error(tmp_path, side):
    data, records = export(tmp_path, side)
    want = expected(records)
    for cut in (0, 8, len(data) // 3, len(data) // 2, len(data) - 1):
        with pytest.raises(ExportFormatError):
            read_export(data[:cut], want)


def test_a_corrupted_file_raises_export_format_error(tmp_path, side):
    data, records = export(tmp_path, side)
    want = expected(records)
    at = data.index(b"Add")
    with pytest.raises(ExportFormatError, match="'Bdd' in the file but 'Add'"):
        read_export(data[:at] + b"B" + data[at + 1:], want)
    at = data.index(b"Exp")  # the entry before it no longer finds its successor
    with pytest.raises(ExportFormatError, match="where the state of Add ends"):
        read_export(data[:at] + b"F" + data[at + 1:], want)
    for other in (want[:-1], [*want, want[-1]], want[::-1]):  # another function's callback
        with pytest.raises(ExportFormatError):
            read_export(data, other)
    with pytest.raises(ExportFormatError):  # a length field no file could hold
        read_export(data[:-len(data) // 2] + b"\xff" * (len(data) // 2), want)
    assert issubclass(ExportFormatError, UnimemError)

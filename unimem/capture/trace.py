"""A function's graph from ``mx.export_function``: the method where the native probe is absent.

Python's ``mx.array`` exposes no graph, so this uses the one door MLX offers:
``mx.export_function``. Exported to a callback it gives each primitive's name,
inputs, outputs, shapes, dtypes and state; exported to a file it also stores each
primitive's stream. The two exports walk the same tape, so they are joined by
position (``_mlxfn`` reads the file). Nothing is evaluated: export traces the
function with placeholder arrays.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from math import prod
from typing import Any

import mlx.core as mx

from ..devices import platform
from ..model.graph import ArrayInfo, Graph, Node, StreamId
from ..model.text import fmt_dtype
from .call import Call
from .mlxfn import KNOWN_VERSIONS, ExpectedPrimitive, read_export
from .streams import current_default, name_of, stream_id


@contextmanager
def _scratch_file() -> Iterator[str]:
    """A temporary path, in RAM where Linux offers it (constants are written too)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    fd, path = tempfile.mkstemp(suffix=".mlxfn", dir=base)
    os.close(fd)
    try:
        yield path
    finally:
        os.unlink(path)


def capture(call: Call) -> Graph:
    """The graph of ``call`` under its placement, on this thread's streams."""
    inputs = call.inputs
    flat = call.as_flat_function()
    records: list[dict[str, Any]] = []
    mx.export_function(records.append, flat, *inputs)
    with _scratch_file() as path:
        mx.export_function(path, flat, *inputs)
        with open(path, "rb") as f:
            data = f.read()

    prims = [r for r in records if r["type"] == "primitive"]
    expected = [
        ExpectedPrimitive(r["name"], tuple((tuple(s), d) for _, s, d in r["outputs"]))
        for r in prims
    ]
    export = read_export(data, expected)

    # Names (A, B, ...) come from the callback; ids from the file; join by position.
    id_of: dict[str, int] = {}
    for (name, _, _), aid in zip(_first(records, "inputs")["inputs"], export.input_ids):
        id_of[name] = aid
    for (name, _), aid in zip(_first(records, "constants")["constants"], export.constant_ids):
        id_of[name] = aid
    for rec, entry in zip(prims, export.entries):
        for (name, _, _), aid in zip(rec["outputs"], entry.outputs):
            id_of[name] = aid
    arrays: dict[int, ArrayInfo] = {}
    output_ids = set(export.output_ids)

    def add(name: str, shape: Any, dtype: mx.Dtype, role: str, producer: int | None) -> int:
        aid = id_of[name]
        if role == "intermediate" and aid in output_ids:
            role = "output"
        shape = tuple(int(x) for x in shape)
        nbytes = prod(shape) * dtype.size
        arrays.setdefault(aid, ArrayInfo(aid, name, shape, fmt_dtype(dtype), nbytes, role,
                                         producer))
        return aid

    for name, shape, dtype in _first(records, "inputs")["inputs"]:
        add(name, shape, dtype, "input", None)
    for name, arr in _first(records, "constants")["constants"]:
        add(name, arr.shape, arr.dtype, "constant", None)

    nodes: list[Node] = []
    lane_names: dict[StreamId, str] = {}  # name_of asks MLX for default streams: once per stream
    for rec, entry in zip(prims, export.entries):
        index = len(nodes)
        ins = tuple(add(n, s, d, "intermediate", None) for n, s, d in rec["inputs"])
        outs = tuple(add(n, s, d, "intermediate", index) for n, s, d in rec["outputs"])
        lane = lane_names.get(entry.stream)
        if lane is None:
            lane = lane_names[entry.stream] = name_of(entry.stream)
        nodes.append(Node(index, entry.name, entry.stream, lane, ins, outs,
                          tuple(rec["arguments"])))

    _add_synchronizer(nodes, arrays, export.output_ids)
    notes = []
    if not export.version.startswith(KNOWN_VERSIONS):
        notes.append(f"export file of MLX {export.version}, read with a reader checked "
                     f"against {', '.join(v + 'x' for v in KNOWN_VERSIONS)}")
    notes.append("traced with mx.export_function, which merges identical subgraphs (CSE) "
                 "the way mx.compile does")
    notes.append("Synchronizer: not in the export file; unimem adds it where mx.eval makes one "
                 "to wait for every output (eval_impl, https://github.com/ml-explore/mlx/blob/"
                 "v0.32.1/mlx/transforms.cpp). It runs no kernel, so a profile has no bar for it")
    return Graph(call.title, call.placement_names, nodes, arrays, export.output_ids,
                 platform().mlx_version, notes)


def _add_synchronizer(nodes: list[Node], arrays: dict[int, ArrayInfo],
                      outputs: tuple[int, ...]) -> None:
    """eval's Synchronizer: on the first computed output's stream, else the default."""
    producers = [arrays[a].producer for a in outputs if a in arrays]
    first = next((p for p in producers if p is not None), None)
    stream = nodes[first].stream if first is not None else stream_id(current_default())
    nodes.append(Node(len(nodes), "Synchronizer", stream, name_of(stream),
                      tuple(a for a in outputs if a in arrays), (), (), synthetic=True))


def _first(records: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(r for r in records if r["type"] == kind)

"""The traced graph: every primitive MLX records, its stream, and the edges.

Edges are classified the way ``eval_impl`` (``mlx/transforms.cpp``) decides
them: a consumer whose input comes from another stream needs a fence, flagged as
a device switch when the two streams are on different devices. ``eval`` also adds
a Synchronizer on the stream of the first output; outputs made on other streams
are fenced to it, so the graph carries that node too, marked ``synthetic``. The edge kinds are
defined here once (``EdgeKind``, ``EDGE_KINDS``) for the graph, the recorded flows
and their views alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, get_args

from .text import TextRepr, fmt_placement, plural, prose

# How an array gets from its producer to its consumer: the one spelling of each kind,
# shared by graph edges, recorded flows and every view of them.
EdgeKind = Literal["same stream", "cross stream", "device switch", "untracked", "collective",
                   "gpu wait"]
EDGE_KINDS: Final[tuple[EdgeKind, ...]] = get_args(EdgeKind)  # in this order everywhere
EDGE_MEANINGS: Final[dict[EdgeKind, str]] = {
    "same stream": "producer and consumer on one stream: its FIFO order, no fence",
    "cross stream": "a fence between two streams of one device",
    "device switch": "a fence between devices (CPU <-> GPU)",
    "untracked": "to or from work whose stream unimem cannot see (recordings only)",
    "collective": "the same collective on two ranks of a distributed job (merged recordings)",
    "gpu wait": "a wait CUDA was asked for: a stream waiting for an event, or the host "
                "synchronising (CUDA recordings)",
}
SAME_STREAM: Final[EdgeKind] = "same stream"
CROSS_STREAM: Final[EdgeKind] = "cross stream"
DEVICE_SWITCH: Final[EdgeKind] = "device switch"
UNTRACKED: Final[EdgeKind] = "untracked"
COLLECTIVE: Final[EdgeKind] = "collective"
GPU_WAIT: Final[EdgeKind] = "gpu wait"
# the kinds a recorded Flow can have: every kind but same stream, which needs no fence
FLOW_KINDS: Final[tuple[EdgeKind, ...]] = tuple(k for k in EDGE_KINDS if k != SAME_STREAM)


@dataclass(frozen=True, order=True)
class StreamId:
    """How MLX itself identifies a stream: device type and global stream index."""

    device: str
    index: int

    def __str__(self) -> str:
        return f"Stream({self.device}, {self.index})"


@dataclass(slots=True)
class ArrayInfo:
    """One array of the graph: a function input, a constant or a primitive's output.

    Slotted, not frozen, here and in :class:`Node`: a frozen dataclass's ``__init__``
    costs about five times more, which is most of tracing a 100,000-primitive graph.
    """

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    role: str  # "input", "constant", "intermediate" or "output"
    producer: int | None = None  # index of the producing node


@dataclass(slots=True)
class Node:
    """One primitive, on the stream MLX recorded for it."""

    index: int
    name: str
    stream: StreamId
    lane: str
    inputs: tuple[int, ...]  # array ids
    outputs: tuple[int, ...]
    arguments: tuple[Any, ...] = ()
    synthetic: bool = False  # True only for eval's Synchronizer


@dataclass(frozen=True)
class Edge:
    """An array flowing from its producer (None for inputs/constants) to a consumer."""

    src: int | None
    dst: int
    array: int
    nbytes: int
    kind: EdgeKind  # never UNTRACKED or COLLECTIVE: the graph sees every stream of one rank


def classify(producer: StreamId, consumer: StreamId) -> EdgeKind:
    if producer == consumer:
        return SAME_STREAM
    return DEVICE_SWITCH if producer.device != consumer.device else CROSS_STREAM


@dataclass(repr=False)
class Graph(TextRepr):
    """A function's primitives as MLX would evaluate them, before anything runs."""

    _html_class = "unimem-graph"

    title: str
    placement: dict[str, str]
    nodes: list[Node]
    arrays: dict[int, ArrayInfo]
    outputs: tuple[int, ...]
    mlx_version: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def primitives(self) -> list[Node]:
        return [n for n in self.nodes if not n.synthetic]

    @property
    def edges(self) -> list[Edge]:
        out = []
        for node in self.nodes:
            for aid in node.inputs:
                arr = self.arrays[aid]
                if arr.producer is None:
                    kind = SAME_STREAM
                else:
                    kind = classify(self.nodes[arr.producer].stream, node.stream)
                out.append(Edge(arr.producer, node.index, aid, arr.nbytes, kind))
        return out

    @property
    def cross_stream_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.kind != SAME_STREAM]

    @property
    def fences(self) -> dict[int, tuple[StreamId, bool]]:
        """Per fenced array: its producer's stream and whether any wait switches device.

        This is ``needs_fence`` in ``eval_impl``: one fence per producer array, its
        device-switch flag OR-ed over all consumers on other streams.
        """
        out: dict[int, tuple[StreamId, bool]] = {}
        for e in self.cross_stream_edges:
            assert e.src is not None
            stream = self.nodes[e.src].stream
            switch = e.kind == DEVICE_SWITCH or out.get(e.array, (stream, False))[1]
            out[e.array] = (stream, switch)
        return out

    def streams(self) -> dict[str, StreamId]:
        """Lane name -> stream, in order of first use."""
        out: dict[str, StreamId] = {}
        for n in self.primitives:
            out.setdefault(n.lane, n.stream)
        return out

    def count(self, name: str | None = None, lane: str | None = None) -> int:
        """How many primitives match a name and/or lane, e.g. ``count("Exp", "cpu")``."""
        return sum(
            1
            for n in self.primitives
            if (name is None or n.name == name) and (lane is None or n.lane == lane)
        )

    def by_lane(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for n in self.primitives:
            out.setdefault(n.lane, Counter())[n.name] += 1
        return out

    def on_default_stream(self, streams: Iterable[StreamId]) -> list[Node]:
        """Primitives on none of the given streams (e.g. made by ``*`` with no stream=)."""
        chosen = set(streams)
        return [n for n in self.primitives if n.stream not in chosen]

    def bytes_crossing(self) -> dict[str, int]:
        """Bytes carried by edges of each kind (an input counted once per consumer)."""
        out: Counter[str] = Counter()
        for e in self.edges:
            out[e.kind] += e.nbytes
        return dict(out)

    # -- views -----------------------------------------------------------------
    def lines(self) -> list[str]:
        lines = [f"Graph of {self.title} ({plural(len(self.primitives), 'primitive')})"]
        placement = fmt_placement(self.placement) or "(no stream parameters)"
        lines.append(f"  placement: {placement}")
        for lane, counts in self.by_lane().items():
            stream = self.streams()[lane]
            ops = ", ".join(f"{name} ×{k}" for name, k in counts.most_common())
            lines.append(f"  {lane:<8} {stream}: {ops}")
        cross = self.cross_stream_edges
        kinds = Counter(e.kind for e in cross)
        if cross:
            detail = ", ".join(f"{k} {kind}" for kind, k in sorted(kinds.items()))
            lines.append(f"  cross-stream edges: {len(cross)} ({detail})")
        else:
            lines.append("  cross-stream edges: none")
        lines += [x for n in self.notes for x in prose(f"  note: {n}")]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "placement": self.placement,
            "mlx_version": self.mlx_version,
            "notes": list(self.notes),
            "outputs": list(self.outputs),
            "arrays": [asdict(a) for a in self.arrays.values()],
            "nodes": [
                {**asdict(n), "stream": [n.stream.device, n.stream.index],
                 "arguments": [repr(a) for a in n.arguments]}
                for n in self.nodes
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Graph:
        arrays = {
            a["id"]: ArrayInfo(**{**a, "shape": tuple(a["shape"])}) for a in d["arrays"]
        }
        nodes = [
            Node(
                index=n["index"], name=n["name"], stream=StreamId(*n["stream"]), lane=n["lane"],
                inputs=tuple(n["inputs"]), outputs=tuple(n["outputs"]),
                arguments=tuple(n["arguments"]), synthetic=n["synthetic"],
            )
            for n in d["nodes"]
        ]
        return cls(d["title"], dict(d["placement"]), nodes, arrays, tuple(d["outputs"]),
                   d.get("mlx_version", ""), list(d.get("notes", [])))


"""Which MLX primitive launched each CUDA kernel: joining CUPTI's records to the graph walk.

MLX's CUDA backend does not launch kernels one by one: it adds each primitive's
kernels as nodes of a CUDA graph, on the thread that runs ``mx.eval``, and launches
the graph when it has enough nodes or the eval ends (``CommandEncoder`` in
`mlx/backend/cuda/device.cpp <https://github.com/ml-explore/mlx/blob/v0.32.4/mlx/backend/cuda/device.cpp>`_).
A library call (cuBLAS's GEMM) is captured into a graph of its own and added as a
*child* graph node, which CUDA copies in (CUPTI reports that as nodes *cloned*).

What each side tells (measured on an H200, MLX 0.32.4, CUPTI 13):

* the native probe's graph-node callback: for every node created, its CUPTI node
  id (graph id in the high 32 bits, the node's index in its graph in the low 32)
  and the serial of the primitive being encoded when it was created;
* a kernel record: ``graph_node_id`` with the *executable* graph's id in the high
  bits (MLX re-uses one executable per graph shape and updates it) and the node's
  index in the low bits; ``correlation_id``: that of the graph launch. In the
  executable, the top-level graph's nodes keep their indices ``0..N-1``; the nodes of
  child graphs follow, from ``N``, in the order the children were added.

So the k-th launch on a stream ran the k-th top-level graph built for that stream,
and a kernel's low index names the node, hence the primitive. Each launch is
checked (every index must fall in its graph); a launch that does not fit, or a
kernel launched outside a graph, stays unattributed and is shown under its own name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LOW = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A graph node created (or cloned into a parent graph) while MLX encoded a primitive."""

    node: int  # CUPTI node id: graph id << 32 | index in the graph
    primitive: int  # the native probe's serial of the primitive being encoded; 0: none
    original: int = 0  # for a cloned node: the node it was copied from
    cloned: bool = False

    @property
    def graph(self) -> int:
        return self.node >> 32

    @property
    def index(self) -> int:
        return self.node & LOW


@dataclass(frozen=True, slots=True)
class KernelLaunch:
    """The fields of a CUPTI kernel record that attribution reads."""

    correlation_id: int
    stream_id: int  # CUDA's stream id (one graph launch spreads over several)
    graph_node_id: int  # 0 when the kernel was not launched by a graph


@dataclass
class Attribution:
    """Per kernel (in the order given): the primitive serial, or 0 where none was found."""

    primitive: list[int]
    how: str  # the method, in words, for the recording's notes
    launches: int = 0  # graph launches seen
    launches_matched: int = 0
    unmatched_reasons: list[str] = field(default_factory=list)

    @property
    def attributed(self) -> int:
        return sum(1 for p in self.primitive if p)


@dataclass
class _Graph:
    """A graph MLX built: its nodes' primitives by index, and its child graphs."""

    id: int
    first_event: int
    nodes: dict[int, int] = field(default_factory=dict)  # index -> primitive serial
    children: list[_Graph] = field(default_factory=list)

    def size(self) -> int:
        return max(self.nodes, default=-1) + 1

    def primitive_at(self, index: int) -> int | None:
        """The primitive of executable node ``index``: top-level nodes first, then the
        child graphs' nodes in the order the children were added; None past the end."""
        n = self.size()
        if index < n:
            return self.nodes.get(index, 0)
        index -= n
        for child in self.children:
            if index < child.size():
                return child.nodes.get(index, 0)
            index -= child.size()
        return None


def _graphs(events: Sequence[NodeEvent], stream_of: Mapping[int, int]
            ) -> tuple[dict[int, list[_Graph]], dict[int, set[int]]]:
    """The top-level graphs per MLX stream, in the order they were built, with children;
    and, per top-level graph id, every graph id whose events belong to it.

    A library call shows as: nodes created in a capture graph, the capture graph cloned
    into a child graph (its nodes reported created, then cloned), then one node created
    in MLX's graph for the child. So a clone's graph is a child; the graph it was cloned
    from is a capture graph (never launched on its own); the child belongs to the graph
    of the next node created, by the same primitive, outside capture and child graphs.
    A child whose owner has not been built yet (events still to come) is left out.

    A graph in which no node was made while a primitive was encoded is left out too:
    CUDA copies a graph's nodes when MLX instantiates an executable from it (the first
    run of a graph's shape; measured on an H200, a watch's first eval), and those clones
    arrive outside any primitive. They are not a library call's child graph.
    """
    marked = {e.graph for e in events if e.primitive}
    events = [e for e in events if e.graph in marked]
    graphs: dict[int, _Graph] = {}
    child_ids: set[int] = set()
    captured_from: dict[int, set[int]] = defaultdict(set)  # child -> capture graphs
    last_event: dict[int, int] = {}
    for i, e in enumerate(events):
        g = graphs.get(e.graph)
        if g is None:
            g = graphs[e.graph] = _Graph(e.graph, i)
        g.nodes[e.index] = e.primitive
        last_event[e.graph] = i
        if e.cloned:
            child_ids.add(e.graph)
            captured_from[e.graph].add(e.original >> 32)
    captured_ids = set().union(*captured_from.values()) if captured_from else set()

    def is_top(graph_id: int) -> bool:
        return graph_id not in child_ids and graph_id not in captured_ids

    members: dict[int, set[int]] = {g: {g} for g in graphs if is_top(g)}
    for child_id in sorted(child_ids, key=lambda g: last_event[g]):
        child = graphs[child_id]
        owner = next((e for e in events[last_event[child_id] + 1:] if is_top(e.graph)), None)
        if owner is not None:
            graphs[owner.graph].children.append(child)
            members[owner.graph] |= {child_id} | captured_from[child_id]
    top: dict[int, list[_Graph]] = defaultdict(list)
    for g in sorted(graphs.values(), key=lambda g: g.first_event):
        if is_top(g.id):
            primitives = [p for p in g.nodes.values() if p]
            top[stream_of.get(primitives[0], -1) if primitives else -1].append(g)
    return top, members


class Attributor:
    """Attribution as records arrive: node events first, then the kernels they explain.

    For a live recording, whose kernels come in batches: the graphs built so far wait
    until a launch claims them; a launch's kernels may arrive over several batches (the
    graph a launch ran is remembered by its correlation id). A claimed graph's events
    are dropped, so memory holds only the graphs not launched yet.
    """

    def __init__(self) -> None:
        self._events: list[NodeEvent] = []
        self._stream_of: dict[int, int] = {}
        self._claimed: dict[int, _Graph | None] = {}  # correlation id -> its graph
        self.result = Attribution([], "graph-node callbacks: each kernel's node, created "
                                      "while its primitive was encoded")

    def add_events(self, events: Sequence[NodeEvent], stream_of: Mapping[int, int]) -> None:
        """Graph-node events of the run so far (in order), and the MLX stream of each
        primitive they name (from the walk)."""
        self._events.extend(events)
        self._stream_of.update(stream_of)

    def add_kernels(self, kernels: Sequence[KernelLaunch]) -> list[int]:
        """The primitive of each kernel (0 where none is found), in the order given."""
        out = self.result
        primitive = [0] * len(kernels)
        launches: dict[int, list[int]] = defaultdict(list)  # correlation id -> kernels
        for i, k in enumerate(kernels):
            if k.graph_node_id:
                launches[k.correlation_id].append(i)
        fresh = sorted(c for c in launches if c not in self._claimed)
        if fresh:
            top, members = _graphs(self._events, self._stream_of)
            pending = {stream: list(reversed(gs)) for stream, gs in top.items()}
            used: set[int] = set()
            # Graph launches in launch order (CUPTI's correlation ids grow). A launch's
            # kernels run on several CUDA streams, so they cannot name the MLX stream: each
            # launch runs the oldest built graph, among the streams', that holds all of
            # its node indices.
            for corr in fresh:
                indices = [kernels[i].graph_node_id & LOW for i in launches[corr]]
                out.launches += 1
                fits = [gs[-1] for gs in pending.values()
                        if gs and all(gs[-1].primitive_at(x) is not None for x in indices)]
                if not fits:
                    out.unmatched_reasons.append(f"launch {corr}: no graph built for it "
                                                 f"holds node indices up to {max(indices)}")
                    self._claimed[corr] = None
                    continue
                graph = min(fits, key=lambda g: g.first_event)
                for gs in pending.values():
                    if gs and gs[-1] is graph:
                        gs.pop()
                out.launches_matched += 1
                self._claimed[corr] = graph
                used |= members[graph.id]
            self._events = [e for e in self._events if e.graph not in used]
        for corr, run in launches.items():
            claimed = self._claimed[corr]
            for i in run:
                p = claimed.primitive_at(kernels[i].graph_node_id & LOW) if claimed else None
                primitive[i] = p or 0
        out.primitive.extend(primitive)
        return primitive


def attribute(kernels: Sequence[KernelLaunch], events: Sequence[NodeEvent],
              stream_of: Mapping[int, int]) -> Attribution:
    """Attribute ``kernels`` to primitives from the graph-node ``events`` of the same run.

    ``stream_of`` maps a primitive serial to its MLX stream index (from the walk): MLX
    builds one graph at a time per stream and launches them in the order it built them.
    """
    if not events:
        return Attribution([0] * len(kernels),
                           "not attributed: no graph-node callbacks were recorded")
    attributor = Attributor()
    attributor.add_events(events, stream_of)
    attributor.add_kernels(kernels)
    return attributor.result


_IDENT = re.compile(r"(\d+)")


def short_kernel_name(name: str) -> str:
    """A readable name for a kernel: ``mlx::core::cu::unary_v<Exp>`` for
    ``_ZN3mlx4core2cu7unary_vINS1_3ExpEffjLi4EEEvPKT0_PT1_T2_``.

    Not a demangler: it reads the nested name and the first identifier among the
    template arguments, which is what tells MLX's kernels apart. Names that are not
    Itanium-mangled (``sm80_xmma_gemm_...``) come back as they are.
    """
    if not name.startswith("_ZN"):
        return name
    parts: list[str] = []
    i = 3
    while i < len(name) and name[i].isdigit():
        m = _IDENT.match(name, i)
        assert m is not None
        n = int(m.group(1))
        start = m.end()
        parts.append(name[start:start + n])
        i = start + n
    base = "::".join(parts) or name
    if i < len(name) and name[i] == "I":  # template arguments: the first (nested) name
        # a length right after N, I, E or _ starts a name; after a type code (Li8E) a literal
        m = re.search(r"(?<=[NIE_])\d+[A-Za-z_]", name[i:])
        if m:
            j, words = i + m.start(), []
            while j < len(name) and name[j].isdigit():
                d = _IDENT.match(name, j)
                assert d is not None
                n, j = int(d.group(1)), d.end()
                words.append(name[j:j + n])
                j += n
            base += f"<{'::'.join(words)}>"
    return base

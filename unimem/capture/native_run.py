"""One run of a call captured natively: every primitive walked, every CPU one timed.

The native probe (``native.py``) sees the lazy graph MLX is about to evaluate,
including what C++ builds (backward passes, compiled functions, random keys),
and stamps each CPU primitive's start and end on its stream's worker thread.
A run here is the user's function as it is: each eval point inside it (an
``mx.eval``, an ``.item()``, see ``evalpoints``) first walks and instruments
what is about to run, then evaluates once, as it would have; the outputs get
the same treatment at the end. Nothing is split into extra hand-offs, so MLX's
batching and buffer donation stay as in a plain run.

This module turns what was captured into model data: a :class:`Graph` (every
primitive on its real stream) and the ops of a :class:`Recording` (one bar per
timed primitive, start and end measured).
"""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import dataclass, field
from time import perf_counter, sleep

import mlx.core as mx

from ..model.graph import ArrayInfo, Graph, Node, StreamId
from ..model.recording import Lane, Op, Recording
from . import cuda_kernels, native
from .attribution import short_kernel_name
from .call import Call
from .evalpoints import eval_points
from .gpu_kernels import COPIES_LANE, GpuKernels, not_the_calls
from .streams import name_of


@dataclass
class NativeRun:
    """What one natively captured run saw: the graph at each eval point, and the times."""

    graphs: list[native.PendingGraph] = field(default_factory=list)  # in eval order
    records: list[native.TimingRecord] = field(default_factory=list)
    clock: native.ClockOffset | None = None
    t0: float = 0.0  # perf_counter() when the run started: the recording's zero
    wall: float = 0.0
    eval_points: int = 0  # evaluations inside the function (mx.eval, .item(), ...)
    kernels: cuda_kernels.KernelCapture | None = None  # CUPTI's records, where traced


def run(call: Call, *, evaluate: bool = True) -> NativeRun:
    """Call the function once, walking (and, with ``evaluate``, timing) what MLX runs.

    Without ``evaluate`` (a trace) the function still runs its own evals, which it
    needs to go on, but its outputs are only walked, never evaluated. On MLX's CUDA
    build with cupti-python, GPU work is traced by CUPTI in the same run, and GPU
    primitives are wrapped only to mark which one is being encoded (see attribution).
    """
    captured = NativeRun(clock=native.clock_offset())
    native.clear()
    trace = cuda_kernels.KernelTrace() if evaluate and cuda_kernels.available() else None

    def before_eval(arrays: list[mx.array]) -> None:
        graph = (native.capture(arrays, gpu=trace is not None) if evaluate
                 else native.walk(arrays))
        if len(graph):
            captured.graphs.append(graph)

    def at_eval_point(arrays: list[mx.array]) -> None:
        captured.eval_points += 1
        before_eval(arrays)

    args, kwargs = call.bound()
    if trace is not None:
        trace.start()
    try:
        captured.t0 = perf_counter()
        with eval_points(at_eval_point):
            result = call.fun(*args, **kwargs)
        outputs = call.outputs_of(result)
        del result
        before_eval(outputs)
        if evaluate:
            mx.eval(outputs)
            captured.wall = perf_counter() - captured.t0
    finally:
        if trace is not None:
            captured.kernels = trace.stop()
    if evaluate:
        captured.records = native.records(drain=True)
    return captured


def to_graph(captured: NativeRun, title: str, placement: dict[str, str],
             mlx_version: str) -> Graph:
    """Every primitive walked, as a Graph (see :func:`_to_graph`).

    The collector is paused meanwhile: these objects form no cycles, and on a
    100,000-primitive graph its passes over them would take as long as making them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _to_graph(captured, title, placement, mlx_version)
    finally:
        if was_enabled:
            gc.enable()


def _to_graph(captured: NativeRun, title: str, placement: dict[str, str],
              mlx_version: str) -> Graph:
    """Every primitive walked, on the stream MLX gave it, with its arrays and edges.

    Arrays that were not pending (function inputs, constants, results of an earlier
    eval inside the function) appear once per consumer as ``input`` arrays: the walk
    sees that they are there, not where they came from.
    """
    nodes: list[Node] = []
    arrays: dict[int, ArrayInfo] = {}
    first_out: dict[int, int] = {}  # native node id -> id of its first output array
    streams: dict[tuple[str, int], tuple[StreamId, str]] = {}  # one StreamId and name each
    last_eval = 0  # index of the first node of the last walk: the function's outputs
    for graph in captured.graphs:  # read as columns: 100,000 nodes make no extra objects
        last_eval = len(nodes)
        c = graph.columns
        out_start, in_start, dim_start, dims = (c["out_start"], c["in_start"],
                                                c["dim_start"], c["dims"])
        dtype, nbytes, in_node, in_output = c["dtype"], c["nbytes"], c["in_node"], c["in_output"]
        for i, (nid, name, device, index) in enumerate(zip(c["id"], c["name"], c["device"],
                                                           c["stream"])):
            stream = streams.get((device, index))
            if stream is None:
                sid = StreamId(device, index)
                stream = streams[(device, index)] = (sid, name_of(sid))
            ins = []
            for j in range(in_start[i], in_start[i + 1]):
                first = first_out.get(in_node[j])
                if first is None:  # not pending here: an input of this eval
                    aid = len(arrays)
                    arrays[aid] = ArrayInfo(aid, f"in{aid}", (), "", 0, "input", None)
                    ins.append(aid)
                else:
                    ins.append(first + in_output[j])
            index_here, first = len(nodes), len(arrays)
            first_out[nid] = first
            lower = name.lower()
            for j in range(out_start[i], out_start[i + 1]):
                aid = len(arrays)
                arrays[aid] = ArrayInfo(aid, f"{lower}{aid}",
                                        tuple(dims[dim_start[j]:dim_start[j + 1]]), dtype[j],
                                        nbytes[j], "intermediate", index_here)
            nodes.append(Node(index_here, name, stream[0], stream[1], tuple(ins),
                              tuple(range(first, len(arrays)))))
    last = nodes[last_eval:]
    read = {a for n in last for a in n.inputs}
    outputs = [a for n in last for a in n.outputs if a not in read]  # its sinks
    for a in outputs:
        arrays[a].role = "output"
    notes = [("traced natively: every primitive MLX evaluates for the call, each on its "
              "stream, nothing merged")]
    if captured.eval_points:
        notes.append(f"the function evaluated {captured.eval_points} times inside itself; "
                     "arrays from an earlier evaluation appear as inputs")
    return Graph(title, placement, nodes, arrays, tuple(outputs), mlx_version, notes)


class NativeOps:
    """The ops of a Recording, made from walked graphs and timed as records arrive.

    One op per wrapped primitive, on its stream's lane, made when the primitive is
    walked (``end`` None: in flight) and given its measured start and end when its
    record comes in. Primitives left unwrapped (``Copy``, ``StopGradient``, GPU
    streams) get no op: they are counted for a note, and ops that read them depend
    on what they read.
    """

    def __init__(self, recording: Recording, t0: float, clock: native.ClockOffset,
                 kernels: GpuKernels | None = None) -> None:
        self.recording, self.t0, self.clock = recording, t0, clock
        self.kernels = kernels
        self._lanes: dict[StreamId, Lane] = {}
        self._op_of: dict[int, int] = {}  # native node id -> (its last) op id
        self._via: dict[int, tuple[int, ...]] = {}  # unwrapped node id -> ops it stands for
        self.untimed: Counter[str] = Counter()
        self.no_kernel: Counter[str] = Counter()  # traced GPU primitives that ran no kernel
        self._nodes = 0  # primitives walked so far: the next one's index in ``to_graph``

    def add(self, graph: native.PendingGraph, submit: float) -> None:
        """Ops for the wrapped primitives of ``graph`` (walked after instrumenting it):
        one per CPU primitive (timed when its record comes in) and, where CUPTI traced the
        run, one per kernel of each GPU primitive, measured on the device."""
        rec = self.recording
        for pn in graph.nodes():
            node = self._nodes
            self._nodes += 1
            producers: set[int] = set()
            for producer, _ in pn.inputs:
                if producer in self._op_of:
                    producers.add(self._op_of[producer])
                else:
                    producers.update(self._via.get(producer, ()))
            kernels = self.kernels if pn.device == "gpu" else None
            runs = kernels.of(pn.id) if kernels is not None else None
            if kernels is not None and not runs:
                self.no_kernel[pn.name] += 1  # e.g. a reshape: no work of its own
                self._via[pn.id] = tuple(sorted(producers))
                continue
            if not pn.wrapped:
                self.untimed[f"{pn.name} ({pn.device})" if pn.device != "cpu" else pn.name] += 1
                self._via[pn.id] = tuple(sorted(producers))
                continue
            lane = self._lane(StreamId(pn.device, pn.stream))
            shapes = tuple(o.shape for o in pn.outputs)
            dtypes = tuple(o.dtype for o in pn.outputs)
            nbytes = sum(o.nbytes for o in pn.outputs)
            if runs is None:
                op = Op(len(rec.ops), lane.id, ((pn.name, 1),), submit,
                        inputs=tuple(sorted(producers)), shapes=shapes, dtypes=dtypes,
                        nbytes=nbytes, node=node)
                rec.add_op(op)
                self._op_of[pn.id] = op.id
                continue
            assert kernels is not None
            for i, k in enumerate(runs):  # in the order they ran; each reads what it reads
                start, end = kernels.seconds(k.start) - self.t0, kernels.seconds(k.end) - self.t0
                part = f" ({i + 1} of {len(runs)} of this {pn.name})" if len(runs) > 1 else ""
                op = Op(len(rec.ops), lane.id, ((pn.name, 0 if i else 1),), start, start=start,
                        end=end, inputs=tuple(sorted(producers)), shapes=shapes, dtypes=dtypes,
                        nbytes=nbytes, start_measured=True, activity="kernel",
                        detail=f"kernel {short_kernel_name(k.name)}{part}", node=node)
                rec.add_op(op)
                self._op_of[pn.id] = op.id

    def add_unattributed(self) -> None:
        """Kernels no primitive claimed, and the copies: drawn, never dropped."""
        if self.kernels is None:
            return
        rec, t0, seconds = self.recording, self.t0, self.kernels.seconds
        gpu_lanes = [lane for sid, lane in self._lanes.items() if sid.device == "gpu"]
        for k in self.kernels.unattributed():
            lane = gpu_lanes[0] if gpu_lanes else self._unattributed_lane()
            name = short_kernel_name(k.name)
            rec.add_op(Op(len(rec.ops), lane.id, ((name.rsplit("::", 1)[-1], 1),),
                          seconds(k.start) - t0, start=seconds(k.start) - t0,
                          end=seconds(k.end) - t0, start_measured=True, activity="kernel",
                          detail=f"kernel {name}, not attributed to a primitive"))
        if self.kernels.capture.copies:
            lane = Lane(len(rec.lanes), COPIES_LANE, "gpu", -1)
            rec.lanes.append(lane)
            for c in self.kernels.capture.copies:
                where = f", {c.source} to {c.destination}" if c.kind == "memcpy" else ""
                rec.add_op(Op(len(rec.ops), lane.id, ((c.kind, 1),), seconds(c.start) - t0,
                              start=seconds(c.start) - t0, end=seconds(c.end) - t0,
                              nbytes=c.nbytes, start_measured=True, activity=c.kind,
                              detail=f"{c.kind} {c.direction}{where}"))

    def apply(self, records: list[native.TimingRecord]) -> None:
        """Measured times for the ops whose records came in. ``end`` is set last: a
        reader of a live recording takes an op with an end as finished."""
        ops, seconds, t0 = self.recording.ops, self.clock.to_perf_counter, self.t0
        for r in records:
            op_id = self._op_of.get(r.id)
            if op_id is None:
                continue
            op = ops[op_id]
            # submit: when MLX's eval thread took the primitive up (its host-side part)
            op.submit, op.dispatched = seconds(r.host_begin) - t0, seconds(r.host_end) - t0
            op.start = seconds(r.start) - t0
            op.start_measured = True
            op.end = seconds(r.end) - t0

    def note_untimed(self) -> None:
        if self.untimed:
            kinds = ", ".join(f"{name} ×{k}" for name, k in self.untimed.most_common())
            self.recording.notes.append(f"not timed (left unwrapped, so they run in the gaps "
                                        f"between the bars on their stream): {kinds}")
        if self.no_kernel:
            kinds = ", ".join(f"{name} ×{k}" for name, k in self.no_kernel.most_common())
            self.recording.notes.append(f"GPU primitives that ran no kernel of their own (no "
                                        f"bar; their readers depend on what they read): {kinds}")

    def _unattributed_lane(self) -> Lane:
        """A lane for kernels of no primitive, in a run with no GPU stream's lane."""
        sid = StreamId("gpu", -1)
        if sid not in self._lanes:
            self._lanes[sid] = Lane(len(self.recording.lanes), "gpu (no primitive)", "gpu", -1)
            self.recording.lanes.append(self._lanes[sid])
        return self._lanes[sid]

    def _lane(self, sid: StreamId) -> Lane:
        lane = self._lanes.get(sid)
        if lane is None:
            lane = self._lanes[sid] = Lane(len(self.recording.lanes), name_of(sid), sid.device,
                                           sid.index)
            self.recording.lanes.append(lane)
        return lane


def fill_recording(captured: NativeRun, recording: Recording) -> None:
    """One op per timed primitive of a finished run (one per kernel on a traced GPU),
    start and end measured."""
    assert captured.clock is not None
    kernels = None
    if captured.kernels is not None and gpu_primitives(captured):
        kernels = GpuKernels(captured.kernels, captured.graphs)
    elif captured.kernels is not None and (captured.kernels.kernels or captured.kernels.copies):
        recording.notes.append(not_the_calls(captured.kernels))
    ops = NativeOps(recording, captured.t0, captured.clock, kernels)
    for graph in captured.graphs:
        ops.add(graph, 0.0)
    ops.apply(captured.records)
    ops.add_unattributed()
    ops.note_untimed()
    if kernels is not None:
        recording.notes.append(kernels.note())


class NativeRecorder:
    """A live recording for ``um.watch``: at each eval point of the watched code,
    instrument and walk what is about to run; records are collected on refresh."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.t0 = perf_counter()
        self.untimed_calls = 0  # the hand-off recorder's counter; nothing is skipped here
        self._ops = NativeOps(recording, self.t0, native.clock_offset())
        native.clear()

    def at_eval_point(self, arrays: list[mx.array]) -> None:
        graph = native.capture(arrays)
        if len(graph):
            self._ops.add(graph, perf_counter() - self.t0)

    def flush(self) -> None:
        """Take in the records that have come in (never blocks)."""
        self._ops.apply(native.records(drain=True))

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` s) for wrapped work in flight, then take every record."""
        deadline = perf_counter() + timeout
        while native.pending_count() and perf_counter() < deadline:
            sleep(0.001)
        self.flush()
        self._ops.note_untimed()


def gpu_primitives(captured: NativeRun) -> int:
    """How many walked primitives ran on a GPU stream (the native probe times CPU ones)."""
    return sum(d == "gpu" for g in captured.graphs for d in g.columns["device"])

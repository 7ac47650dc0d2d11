"""One run of a call captured natively: every primitive walked, every CPU one timed.

The native probe (``native.py``) sees the lazy graph MLX is about to evaluate,
including what C++ builds (backward passes, compiled functions, random keys),
and stamps each CPU primitive's start and end on its stream's worker thread.
A run here is the user's function as it is: each eval point inside it (an
``mx.eval``, an ``.item()``, see ``evalpoints``) first walks and instruments
what is about to run, then evaluates once, as it would have; the outputs get
the same treatment at the end. Nothing is split into extra hand-offs, so MLX's
batching and buffer donation stay as in a plain run.

This module runs the call and turns what was captured into a :class:`Graph` (every
primitive on its real stream); ``native_ops`` makes the ops of a :class:`Recording`
from it (one bar per timed primitive, start and end measured).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from time import perf_counter

import mlx.core as mx

from ..model.graph import ArrayInfo, Graph, Node, StreamId
from ..model.recording import Recording
from . import cuda_kernels, cupti_records, native
from .call import Call
from .evalpoints import eval_points
from .gpu_kernels import GpuKernels, not_the_calls
from .native_ops import HostClock, HostPhase, NativeOps
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
    kernels: cupti_records.KernelCapture | None = None  # CUPTI's records, where traced
    host: list[HostPhase] = field(default_factory=list)  # the evaluating thread, in order


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
    host = HostClock(0.0)

    def after_eval() -> None:
        captured.host.append(host.close("eval"))

    def before_eval(arrays: list[mx.array]) -> None:
        captured.host.append(host.close("python"))
        graph = (native.capture(arrays, gpu=trace is not None) if evaluate
                 else native.walk(arrays))
        if len(graph):
            captured.graphs.append(graph)
        captured.host.append(host.close("walk"))

    def at_eval_point(arrays: list[mx.array]) -> None:
        captured.eval_points += 1
        before_eval(arrays)

    args, kwargs = call.bound()
    evaluate_outputs = mx.eval  # unpatched: the outputs' eval is not one of the function's
    if trace is not None:
        trace.start()
    try:
        # Set-up and tear-down (CUPTI's subscription, the eval-point patches) stay
        # outside the run's wall time: the run is the function and its evaluation.
        with eval_points(at_eval_point, after=after_eval):
            captured.t0 = host.since = perf_counter()
            result = call.fun(*args, **kwargs)
            outputs = call.outputs_of(result)
            del result
            before_eval(outputs)
            if evaluate:
                evaluate_outputs(outputs)
                after_eval()
                captured.wall = captured.host[-1].end - captured.t0
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
        ops.add_wait_flows()
        ops.add_host(captured.host)
        recording.notes.append(kernels.note())


def gpu_primitives(captured: NativeRun) -> int:
    """How many walked primitives ran on a GPU stream (the native probe times CPU ones)."""
    return sum(d == "gpu" for g in captured.graphs for d in g.columns["device"])

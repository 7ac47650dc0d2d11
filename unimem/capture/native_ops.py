"""The ops of a Recording from native captures: after a run, or live for ``um.watch``.

:class:`NativeOps` makes one bar per timed primitive from the walked graphs (CPU
primitives stamped on their stream's worker; on a CUPTI-traced GPU, one bar per kernel,
measured on the device), plus the copies, migrations and synchronisation calls CUPTI
saw. ``native_live`` uses it for ``um.watch``, as records arrive.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from ..model.graph import GPU_WAIT, StreamId
from ..model.recording import Flow, Lane, Op, Recording
from . import cupti_records, native
from .attribution import short_kernel_name
from .gpu_kernels import COPIES_LANE, SYNC_LANE, GpuKernels, sync_detail
from .streams import name_of

HOST_LANE = "host (evaluating thread)"  # what the thread that called the function did
_HOST_PHASES = {  # HostPhase.kind -> the bar's name and what it measured
    "python": ("your code", "Python running the function (building MLX's lazy graph)"),
    "walk": ("unimem walk", ("unimem walking and wrapping the primitives about to run: "
                             "the instrumentation's own cost")),
    "eval": ("mx.eval", ("MLX evaluating: encoding the work, launching it, and waiting for "
                         "what the host needs")),
}


@dataclass(frozen=True, slots=True)
class HostPhase:
    """What the evaluating thread was doing from ``start`` to ``end`` (perf_counter s):
    ``python`` (the user's own code, building the lazy graph), ``walk`` (unimem walking
    and wrapping what is about to run) or ``eval`` (inside MLX's evaluation)."""

    kind: str
    start: float
    end: float


@dataclass
class HostClock:
    """The evaluating thread's phases, back to back: each :meth:`close` ends the phase
    running since the previous one (or ``since``) and starts the next."""

    since: float

    def close(self, kind: str) -> HostPhase:
        now = perf_counter()
        phase = HostPhase(kind, self.since, now)
        self.since = now
        return phase


class NativeOps:
    """The ops of a Recording, made from walked graphs and timed as records arrive.

    One op per wrapped primitive, on its stream's lane, made when the primitive is
    walked (``end`` None: in flight) and given its measured start and end when its
    record comes in. Primitives left unwrapped (``Copy``, ``StopGradient``, GPU
    streams) get no op: they are counted for a note, and ops that read them depend
    on what they read.
    """

    def __init__(self, recording: Recording, t0: float, clock: native.ClockOffset,
                 kernels: GpuKernels | None = None, *, live_gpu: bool = False) -> None:
        self.recording, self.t0, self.clock = recording, t0, clock
        self.kernels = kernels
        # live (um.watch): GPU primitives wait here for kernels that arrive later
        self.live_gpu = live_gpu
        self._waiting: dict[int, tuple[native.PendingNode, int, tuple[int, ...]]] = {}
        self._kernel_count: Counter[int] = Counter()  # kernels drawn per GPU primitive
        self._lanes: dict[StreamId, Lane] = {}
        self._op_of: dict[int, int] = {}  # native node id -> (its last) op id
        self._via: dict[int, tuple[int, ...]] = {}  # unwrapped node id -> ops it stands for
        self.untimed: Counter[str] = Counter()
        self.no_kernel: Counter[str] = Counter()  # traced GPU primitives that ran no kernel
        self._cuda_lanes: dict[int, str] = {}  # CUDA stream id -> the lane its kernels are on
        # each kernel's bar, and each synchronisation call's: for the flows of CUDA's waits
        self._kernel_ops: list[tuple[cupti_records.KernelRecord, int]] = []
        self._sync_ops: list[tuple[cupti_records.SyncRecord, int]] = []
        self._events: list[cupti_records.EventRecord] = []
        self._nodes = 0  # primitives walked so far: the next one's index in ``to_graph``
        self._host_lane: Lane | None = None

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
            if self.live_gpu and pn.device == "gpu" and pn.wrapped:
                # its kernels come later (add_kernels); until then its readers depend on
                # what it read
                self._waiting[pn.id] = (pn, node, tuple(sorted(producers)))
                self._via[pn.id] = tuple(sorted(producers))
                continue
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
                part = f" ({i + 1} of {len(runs)} of this {pn.name})" if len(runs) > 1 else ""
                self._kernel_op(pn, node, lane, tuple(sorted(producers)), k, i, part,
                                kernels.seconds)

    def _kernel_op(self, pn: native.PendingNode, node: int, lane: Lane,
                   producers: tuple[int, ...], k: cupti_records.KernelRecord, i: int,
                   part: str, seconds: Callable[[int], float]) -> None:
        """The bar of the ``i``-th kernel a GPU primitive launched, measured by CUPTI."""
        self._cuda_lanes.setdefault(k.stream_id, lane.name)
        start, end = seconds(k.start) - self.t0, seconds(k.end) - self.t0
        op = Op(len(self.recording.ops), lane.id, ((pn.name, 0 if i else 1),), start,
                start=start, end=end, inputs=producers,
                shapes=tuple(o.shape for o in pn.outputs),
                dtypes=tuple(o.dtype for o in pn.outputs),
                nbytes=sum(o.nbytes for o in pn.outputs), start_measured=True,
                activity="kernel", detail=f"kernel {short_kernel_name(k.name)}{part}",
                node=node)
        self.recording.add_op(op)
        self._op_of[pn.id] = op.id
        self._kernel_ops.append((k, op.id))

    def add_kernels(self, capture: cupti_records.KernelCapture, primitives: list[int],
                    seconds: Callable[[int], float]) -> None:
        """Live: bars for kernels that arrived, each under the primitive it was
        attributed to (``primitives``, one per kernel, 0: none), and the copies,
        migrations and synchronisation calls that came with them."""
        for k, p in sorted(zip(capture.kernels, primitives), key=lambda kp: kp[0].start):
            waiting = self._waiting.get(p)
            if waiting is None:
                self._unattributed_op(k, seconds)
                continue
            pn, node, producers = waiting
            i = self._kernel_count[p]
            self._kernel_count[p] += 1
            part = f" (kernel {i + 1} of this {pn.name})" if i else ""
            self._kernel_op(pn, node, self._lane(StreamId(pn.device, pn.stream)), producers,
                            k, i, part, seconds)
        self._add_device_records(capture, seconds)

    def finish_live(self) -> None:
        """Live: GPU primitives that never got a kernel are counted for the note."""
        for pid, (pn, _, _) in list(self._waiting.items()):
            if not self._kernel_count[pid]:
                self.no_kernel[pn.name] += 1
        self._waiting.clear()

    def _unattributed_op(self, k: cupti_records.KernelRecord,
                         seconds: Callable[[int], float]) -> None:
        rec, t0 = self.recording, self.t0
        gpu_lanes = [lane for sid, lane in self._lanes.items() if sid.device == "gpu"]
        lane = gpu_lanes[0] if gpu_lanes else self._unattributed_lane()
        name = short_kernel_name(k.name)
        self._kernel_ops.append((k, len(rec.ops)))
        rec.add_op(Op(len(rec.ops), lane.id, ((name.rsplit("::", 1)[-1], 1),),
                      seconds(k.start) - t0, start=seconds(k.start) - t0,
                      end=seconds(k.end) - t0, start_measured=True, activity="kernel",
                      detail=f"kernel {name}, not attributed to a primitive"))

    def add_unattributed(self) -> None:
        """Kernels no primitive claimed, and the copies: drawn, never dropped."""
        if self.kernels is None:
            return
        for k in self.kernels.unattributed():
            self._unattributed_op(k, self.kernels.seconds)
        self._add_device_records(self.kernels.capture, self.kernels.seconds)

    def _add_device_records(self, capture: cupti_records.KernelCapture,
                            seconds: Callable[[int], float]) -> None:
        """Copies and migrations on the copies lane, synchronisation calls on theirs."""
        rec, t0 = self.recording, self.t0
        if capture.copies or capture.migrations:
            lane = self._named_lane(COPIES_LANE)
            for c in capture.copies:
                where = f", {c.source} to {c.destination}" if c.kind == "memcpy" else ""
                rec.add_op(Op(len(rec.ops), lane.id, ((c.kind, 1),), seconds(c.start) - t0,
                              start=seconds(c.start) - t0, end=seconds(c.end) - t0,
                              nbytes=c.nbytes, start_measured=True, activity=c.kind,
                              detail=f"{c.kind} {c.direction}{where}"))
            for m in capture.migrations:
                rec.add_op(Op(len(rec.ops), lane.id, ((f"migration {m.direction}", 1),),
                              seconds(m.start) - t0, start=seconds(m.start) - t0,
                              end=seconds(m.end) - t0, nbytes=m.nbytes, start_measured=True,
                              activity="migration",
                              detail="unified (managed) memory pages the driver moved on a "
                                     "page fault, on first touch"))
        self._events += capture.events
        if capture.syncs:
            lane = self._named_lane(SYNC_LANE)
            for w in capture.syncs:
                self._sync_ops.append((w, len(rec.ops)))
                rec.add_op(Op(len(rec.ops), lane.id, ((w.kind, 1),), seconds(w.start) - t0,
                              start=seconds(w.start) - t0, end=seconds(w.end) - t0,
                              start_measured=True, activity="sync",
                              detail=sync_detail(w, capture.events, self._cuda_lanes)))

    def add_wait_flows(self) -> None:
        """A flow per wait CUDA was asked for, from the GPU work waited for to what
        waited: a ``cudaStreamWaitEvent`` from the last kernel launched on the event's
        stream before the event was recorded to the first kernel launched on the waiting
        stream after it; a host synchronisation from that last kernel to the call's bar.
        Launch order is CUPTI's correlation ids (one per API call, increasing; a graph's
        kernels share their launch's). Waits whose ends ran no kernel get no flow."""
        # per CUDA stream, its kernels in launch order: (correlation id, start, end, op)
        by_stream: dict[int, list[tuple[int, int, int, int]]] = {}
        for k, op_id in self._kernel_ops:
            by_stream.setdefault(k.stream_id, []).append((k.correlation_id, k.start, k.end,
                                                          op_id))
        for launches in by_stream.values():
            launches.sort()
        order = {s: [x[0] for x in launches] for s, launches in by_stream.items()}
        event_of = {e.sync_id: e for e in self._events if e.sync_id >= 0}
        ops, flows = self.recording.ops, self.recording.flows

        def last_before(stream: int, correlation: int) -> int | None:
            """The op of the kernel that ended last in the last launch before the call."""
            ids = order.get(stream, [])
            i = bisect_left(ids, correlation)
            if not i:
                return None
            launch = by_stream[stream][bisect_left(ids, ids[i - 1]):i]
            return max(launch, key=lambda x: x[2])[3]

        def first_after(stream: int, correlation: int) -> int | None:
            """The op of the kernel that started first in the first launch after the call."""
            ids = order.get(stream, [])
            i = bisect_right(ids, correlation)
            if i == len(ids):
                return None
            launch = by_stream[stream][i:bisect_right(ids, ids[i])]
            return min(launch, key=lambda x: x[1])[3]

        added = False
        for w, sync_op in self._sync_ops:
            event = event_of.get(w.sync_id)
            if w.kind == "stream wait event":
                if event is None:
                    continue
                src = last_before(event.stream_id, event.correlation_id)
                after = w.correlation_id if w.correlation_id > 0 else event.correlation_id
                dst = first_after(w.stream_id, after)
            elif w.kind == "event synchronize" and event is not None:
                src, dst = last_before(event.stream_id, event.correlation_id), sync_op
            elif w.kind == "stream synchronize" and w.correlation_id > 0:
                src, dst = last_before(w.stream_id, w.correlation_id), sync_op
            else:
                continue
            if src is not None and dst is not None and src != dst:
                flows.append(Flow(src, dst, GPU_WAIT, ops[src].nbytes))
                added = True
        if added:  # flows are kept in the order of the ops they end at (views rely on it)
            self.recording.flows = sorted(flows, key=lambda f: f.dst)

    def add_host(self, phases: list[HostPhase]) -> None:
        """The evaluating thread's phases, as bars on the host lane (made on the first
        phase; a watch adds them as they close): on a GPU the run is often the host's
        (the kernels alone would not account for its time)."""
        if not phases:
            return
        rec, t0 = self.recording, self.t0
        lane = self._host_lane
        if lane is None:
            lane = self._host_lane = Lane(len(rec.lanes), HOST_LANE, "cpu", -1)
            rec.lanes.append(lane)
        for p in phases:
            name, what = _HOST_PHASES[p.kind]
            rec.add_op(Op(len(rec.ops), lane.id, ((name, 0),), p.start - t0,
                          start=p.start - t0, end=p.end - t0, start_measured=True,
                          activity="host", detail=f"{what}; measured on the host"))

    def _named_lane(self, name: str) -> Lane:
        """The lane of device records called ``name`` (copies, sync calls), made once."""
        for lane in self.recording.lanes:
            if lane.name == name:
                return lane
        lane = Lane(len(self.recording.lanes), name, "gpu", -1)
        self.recording.lanes.append(lane)
        return lane

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

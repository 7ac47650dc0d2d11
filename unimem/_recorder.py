"""Turn observed MLX calls into timed ops on a live Recording.

MLX offers no per-op timestamps, so each op (or run of ops) is handed to MLX
with ``mx.async_eval`` and a waiter thread per stream blocks in ``mx.eval`` and
stamps the moment the op completes: a measured end, late by the waiter's
wake-up. The waiter never touches the op's own outputs: waiting on an array
resets its completion event while the user's thread may be reading it for the
next op (a crash, seen here). It waits on a private marker instead, a
``stop_gradient`` of the last output on the same stream (no kernel, shares the
buffer), handed off in the same ``async_eval``. Start times are derived afterwards from stream order and
dependencies. Modes (the docs say what each distorts):

* ``op``: one ``async_eval`` per call; finest bars, no command-buffer batching.
* ``segment``: one ``async_eval`` per run of consecutive calls on one stream
  (at most ``segment_size``); closer to a plain run, coarser bars.
* ``exclusive``: ``mx.eval`` after every call; start and end both measured, but
  streams never overlap: each op's own cost, the input to placement models.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from time import perf_counter

import mlx.core as mx

from ._graph import classify
from ._intercept import OpCall
from ._recording import UNTRACKED_LANE, Flow, Lane, Op, Recording
from ._sampler import sample_now as _sample
from ._streams import StreamId, name_of

MODES = ("op", "segment", "exclusive")
_IN_TRANSFORM = "graph transformation"


def _nbytes(arrays: Sequence[mx.array]) -> int:
    return sum(a.nbytes for a in arrays)


class _Waiters:
    """One thread per lane: wait for each handed-off op in order, stamp its end."""

    def __init__(self, recording: Recording, t0: float, sample_memory: bool) -> None:
        self._recording, self._t0, self._sample = recording, t0, sample_memory
        self._queues: dict[int, queue.SimpleQueue[tuple[Op, mx.array] | None]] = {}
        self._threads: list[threading.Thread] = []

    def submit(self, op: Op, marker: mx.array) -> None:
        q = self._queues.get(op.lane)
        if q is None:
            q = self._queues[op.lane] = queue.SimpleQueue()
            t = threading.Thread(target=self._wait, args=(q,), daemon=True,
                                 name=f"unimem-waiter-{op.lane}")
            t.start()
            self._threads.append(t)
        q.put((op, marker))

    def _wait(self, q: queue.SimpleQueue[tuple[Op, mx.array] | None]) -> None:
        while (item := q.get()) is not None:
            op, marker = item
            try:
                mx.eval(marker)
            except Exception as exc:  # the main thread sees the same error; record it
                op.detail = f"failed: {exc}"
            op.end = perf_counter() - self._t0
            del marker, item
            if self._sample:
                self._recording.memory.append(_sample(op.end))

    def close(self) -> None:
        for q in self._queues.values():
            q.put(None)
        for t in self._threads:
            t.join()


class Recorder:
    """The hook given to the interceptor: builds ops, flows and memory samples."""

    def __init__(self, recording: Recording, mode: str = "op", *, segment_size: int = 50,
                 sample_memory: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if segment_size < 1:
            raise ValueError("segment_size must be at least 1")
        self.recording, self.mode, self.segment_size = recording, mode, segment_size
        self.t0 = perf_counter()
        self.untimed_calls = 0
        self._sample = sample_memory
        self._waiters = _Waiters(recording, self.t0, sample_memory)
        self._lanes: dict[StreamId | None, Lane] = {}
        self._made_by: dict[int, tuple[weakref.ref[mx.array], int]] = {}
        self._settled: dict[int, weakref.ref[mx.array]] = {}
        self._segment: list[OpCall] = []

    def now(self) -> float:
        return perf_counter() - self.t0

    # -- bookkeeping ---------------------------------------------------------
    def lane_for(self, sid: StreamId | None) -> Lane:
        lane = self._lanes.get(sid)
        if lane is None:
            lane_id = len(self._lanes)
            if sid is None:
                lane = Lane(lane_id, UNTRACKED_LANE, "?", -1)
            else:
                lane = Lane(lane_id, name_of(sid), sid.device, sid.index)
            self._lanes[sid] = lane
            self.recording.lanes.append(lane)
        return lane

    def settle(self, arrays: Sequence[mx.array]) -> None:
        """Mark arrays as already computed (function inputs): not untracked work."""
        for a in arrays:
            self._settled[id(a)] = weakref.ref(a)

    def _producer(self, a: mx.array) -> int | None:
        entry = self._made_by.get(id(a))
        if entry is not None and entry[0]() is a:
            return entry[1]
        return None

    def _is_settled(self, a: mx.array) -> bool:
        ref = self._settled.get(id(a))
        return ref is not None and ref() is a

    def _new_op(self, lane: Lane, name: str, submit: float, producers: set[int],
                outputs: Sequence[mx.array], count: int = 1) -> Op:
        rec = self.recording
        op = Op(len(rec.ops), lane.id, name, submit, inputs=tuple(sorted(producers)),
                shapes=tuple(tuple(a.shape) for a in outputs),
                dtypes=tuple(str(a.dtype).removeprefix("mlx.core.") for a in outputs),
                nbytes=_nbytes(outputs), count=count)
        for src in op.inputs:
            src_lane = rec.lanes[rec.ops[src].lane]
            if src_lane.id != lane.id:
                kind = ("untracked" if UNTRACKED_LANE in (src_lane.name, lane.name) else
                        classify(StreamId(src_lane.device, src_lane.stream_index),
                                 StreamId(lane.device, lane.stream_index)))
                rec.flows.append(Flow(src, op.id, kind, rec.ops[src].nbytes))
        rec.ops.append(op)
        for a in outputs:
            self._made_by[id(a)] = (weakref.ref(a), op.id)
        return op

    def _inputs_of(self, calls: Sequence[OpCall]) -> tuple[set[int], list[mx.array]]:
        producers: set[int] = set()
        unknown: list[mx.array] = []
        made_here = {id(o) for c in calls for o in c.outputs}
        for c in calls:
            for a in c.inputs:
                if id(a) in made_here:
                    continue
                src = self._producer(a)
                if src is not None:
                    producers.add(src)
                elif not self._is_settled(a) and all(a is not u for u in unknown):
                    unknown.append(a)
        return producers, unknown

    # -- the hook ------------------------------------------------------------
    def __call__(self, call: OpCall) -> None:
        if self.mode == "segment":
            if self._segment and (call.stream != self._segment[0].stream
                                  or len(self._segment) >= self.segment_size):
                self.flush()
            self._segment.append(call)
        else:
            self._run([call])

    def flush(self) -> None:
        """Hand the pending segment to MLX (segment mode; a no-op otherwise)."""
        if self._segment:
            calls, self._segment = self._segment, []
            self._run(calls)

    def _run(self, calls: list[OpCall]) -> None:
        producers, unknown = self._inputs_of(calls)
        outputs = [o for c in calls for o in c.outputs]
        if unknown:
            src = self.untracked(unknown)
            if src is None:
                self.untimed_calls += len(calls)
                return
            producers.add(src)
        lane = self.lane_for(calls[0].stream)
        name = _segment_name(calls)
        submit = self.now()
        marker = self._hand_off(outputs, calls[-1].handle)
        if marker is None:
            self.untimed_calls += len(calls)
            return
        op = self._new_op(lane, name, submit, producers, outputs, count=len(calls))
        if self.mode == "exclusive":
            mx.eval(outputs)
            op.start, op.end, op.start_measured = submit, self.now(), True
            if self._sample:
                self.recording.memory.append(_sample(op.end))
        else:
            op.dispatched = self.now()
            if self._sample:
                self.recording.memory.append(_sample(op.dispatched))
            self._waiters.submit(op, marker)

    def _hand_off(self, arrays: list[mx.array], stream: mx.Stream | None) -> mx.array | None:
        """async_eval the arrays plus a marker for the waiter to wait on.

        None when the arrays are tracers inside grad/vmap/compile.
        """
        marker = mx.stop_gradient(arrays[-1], stream=stream)
        try:
            mx.async_eval(*arrays, marker)
        except ValueError as exc:
            if _IN_TRANSFORM in str(exc):
                return None
            raise
        return marker

    def untracked(self, arrays: list[mx.array]) -> int | None:
        """Time arrays made where unimem cannot see (C++ transforms, bound names)."""
        submit = self.now()
        marker = self._hand_off(arrays, None)  # stream unknown: the marker uses the default
        if marker is None:
            return None
        lane = self.lane_for(None)
        op = self._new_op(lane, f"untracked ×{len(arrays)}", submit, set(), arrays,
                          count=len(arrays))
        op.detail = "arrays made outside the calls unimem observes"
        self.settle(arrays)
        if self.mode == "exclusive":
            mx.eval(arrays)
            op.start, op.end, op.start_measured = submit, self.now(), True
        else:
            self._waiters.submit(op, marker)
        return op.id

    def finish(self, outputs: Sequence[mx.array]) -> None:
        """Flush, account for outputs made unseen, wait for every waiter."""
        try:
            self.flush()
            _, unknown = self._inputs_of([OpCall("return", StreamId("cpu", -1),
                                                 tuple(outputs), ())])
            if unknown:
                self.untracked(unknown)
        finally:
            self.close()

    def close(self) -> None:
        self._segment.clear()
        self._waiters.close()
        derive_starts(self.recording)


def _segment_name(calls: Sequence[OpCall]) -> str:
    if len(calls) == 1:
        return calls[0].name
    counts = Counter(c.name for c in calls)
    return " + ".join(f"{n} ×{k}" for n, k in counts.items())


def derive_starts(rec: Recording) -> None:
    """start = latest of hand-off, previous end on the lane, producers' ends."""
    last_end: dict[int, float] = {}
    for op in rec.ops:  # ops are in hand-off order, which is each lane's FIFO order
        if op.start_measured:
            if op.end is not None:
                last_end[op.lane] = op.end
            continue
        bounds = [op.submit, last_end.get(op.lane, op.submit)]
        bounds += [e for src in op.inputs if (e := rec.ops[src].end) is not None]
        op.start = max(bounds)
        if op.end is not None:
            op.start = min(op.start, op.end)
            last_end[op.lane] = op.end

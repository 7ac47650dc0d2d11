"""Turn observed MLX calls into timed ops on a live Recording.

MLX offers no per-op timestamps, so each op (or run of ops) is handed to MLX
with ``mx.async_eval``, together with a private marker (a ``stop_gradient`` of
its last output on the same stream: no kernel, shares the buffer) that a waiter
thread per stream blocks on to stamp the op's end (capture/waiters.py says why
the marker). Start times are derived afterwards from stream order and
dependencies (model/timing.py). The modes (model/modes.py says what each distorts):

* ``op``: one ``async_eval`` per call; finest bars, no command-buffer batching.
* ``segment`` (the default): calls pile up per stream; all pending segments
  are handed off when one reaches ``segment_size`` calls, a stream's segment
  goes first when another stream reads it, all go at the end and (live, for
  ``watch``) when the oldest has waited ``segment_budget`` seconds. Close to a
  plain run; coarser bars.
* ``exclusive``: ``mx.eval`` after every call; start and end both measured, but
  streams never overlap: each op's own cost, the input to placement models.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import mlx.core as mx

from ..devices import platform
from ..model.graph import StreamId
from ..model.modes import MODES, Mode
from ..model.recording import UNTRACKED_LANE, Calls, Lane, Op, Recording
from ..model.text import fmt_dtype
from ..model.timing import derive_starts
from .intercept import OpCall
from .sampler import sample_now as _sample
from .streams import name_of
from .waiters import Waiters

_IN_TRANSFORM = "graph transformation"


def _nbytes(arrays: Sequence[mx.array]) -> int:
    return sum(a.nbytes for a in arrays)


class Recorder:
    """The hook given to the interceptor: builds ops, flows and memory samples."""

    def __init__(self, recording: Recording, mode: Mode = "segment", *, segment_size: int = 50,
                 segment_budget: float | None = None, sample_memory: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {tuple(MODES)}, got {mode!r}")
        if segment_size < 1:
            raise ValueError("segment_size must be at least 1")
        if segment_budget is not None and segment_budget <= 0:
            raise ValueError("segment_budget must be a positive number of seconds, or None")
        self.recording, self.mode, self.segment_size = recording, mode, segment_size
        self.segment_budget = segment_budget
        self.t0 = perf_counter()
        self.untimed_calls = 0
        self._sample = sample_memory
        self._waiters = Waiters(recording, self.t0, sample_memory)
        self._lanes: dict[StreamId | None, Lane] = {}
        # id(array) -> (weak ref, op id); entries leave when their array dies, so a
        # long watch keeps these maps as small as the arrays the program holds
        self._made_by: dict[int, tuple[weakref.ref[mx.array], int]] = {}
        self._settled: dict[int, weakref.ref[mx.array]] = {}
        self._traced: dict[int, weakref.ref[mx.array]] = {}  # outputs of skipped calls
        self._pending: dict[StreamId, list[OpCall]] = {}  # per stream, in call order
        self._pending_producers: dict[StreamId, set[int]] = {}  # ops those calls read
        self._pending_out: dict[int, StreamId] = {}  # id(output) -> its pending stream
        self._last_stream: StreamId | None = None  # the stream of the last pending call,
        self._last_calls: list[OpCall] = []  # and its pending list
        self._oldest: float | None = None  # perf_counter of the oldest pending call
        # called with each op handed off and its outputs (watch feeds a Registry)
        self.on_op: Callable[[Op, Sequence[mx.array]], None] | None = None
        # MLX's CUDA build (0.32.4) deadlocks when a GPU op is handed off with
        # async_eval while the CPU op it reads still waits on an earlier GPU op
        # (gpu -> cpu -> gpu, one async_eval each: hangs from 3 ops; measured on an
        # H100). Waiting on the host for such CPU inputs first avoids it, and costs
        # nothing MLX does not already pay: its CUDA fences for CPU -> GPU edges are
        # host waits in the evaluating thread (https://github.com/ml-explore/mlx/blob/v0.32.4/mlx/backend/cuda/fence.cpp).
        self._wait_cpu_inputs = platform().backend == "cuda"

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

    @property
    def tracked_arrays(self) -> int:
        """Arrays the recorder still maps to their producers (for leak checks)."""
        return len(self._made_by) + len(self._settled) + len(self._traced)

    def settle(self, arrays: Sequence[mx.array]) -> None:
        """Mark arrays as already computed (function inputs): not untracked work."""
        for a in arrays:
            self._settled[id(a)] = _weak(a, self._settled)

    def _producer(self, a: mx.array) -> int | None:
        entry = self._made_by.get(id(a))
        if entry is not None and entry[0]() is a:
            return entry[1]
        return None

    def _is_settled(self, a: mx.array) -> bool:
        ref = self._settled.get(id(a))
        return ref is not None and ref() is a

    def _new_op(self, lane: Lane, calls: Calls, submit: float, producers: set[int],
                outputs: Sequence[mx.array]) -> Op:
        rec = self.recording
        op = Op(len(rec.ops), lane.id, calls, submit, inputs=tuple(sorted(producers)),
                shapes=tuple(tuple(a.shape) for a in outputs),
                dtypes=tuple(fmt_dtype(a.dtype) for a in outputs),
                nbytes=_nbytes(outputs))
        rec.add_op(op)
        for a in outputs:
            self._made_by[id(a)] = (_weak(a, self._made_by), op.id)
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
        if self.mode != "segment":
            self._run([call])
            return
        pending_out, made_by, stream = self._pending_out, self._made_by, call.stream
        producers: set[int] = set()
        unknown: list[mx.array] = []
        for a in call.inputs:  # resolved now, once, rather than again at hand-off
            key = id(a)
            src = pending_out.get(key)
            if src is not None:
                if src is stream or src == stream:
                    continue  # made earlier in this segment
                self._flush_stream(src)  # a producer pending on another stream goes first
            entry = made_by.get(key)
            if entry is not None and entry[0]() is a:
                producers.add(entry[1])
            elif self._is_traced(a):
                self._skip(call)
                return
            elif not self._is_settled(a) and all(a is not u for u in unknown):
                unknown.append(a)
        if unknown:
            src_op = self.untracked(unknown)
            if src_op is None:  # the inputs are grad/vmap/compile tracers: remember them,
                for u in unknown:  # so the next call reading them skips without a try
                    self._traced[id(u)] = _weak(u, self._traced)
                self._skip(call)
                return
            producers.add(src_op)
        if producers:
            self._pending_producers.setdefault(stream, set()).update(producers)
        if stream is self._last_stream:  # the common case: skip hashing the stream id
            calls = self._last_calls
        else:
            calls = self._pending.setdefault(stream, [])
            self._last_stream, self._last_calls = stream, calls
        calls.append(call)
        for o in call.outputs:
            pending_out[id(o)] = stream
        if len(calls) >= self.segment_size:  # a full segment takes every pending one along,
            self.flush()  # so a lone call on a quiet stream is not held back to the end
        elif self.segment_budget is not None:
            now = perf_counter()
            if self._oldest is None:
                self._oldest = now
            elif now - self._oldest > self.segment_budget:
                self.flush()

    def _is_traced(self, a: mx.array) -> bool:
        ref = self._traced.get(id(a))
        return ref is not None and ref() is a

    def _skip(self, call: OpCall) -> None:
        """A call on tracers (inside grad/vmap/compile): nothing to time, note its outputs."""
        self.untimed_calls += 1
        for o in call.outputs:
            self._traced[id(o)] = _weak(o, self._traced)

    def _flush_stream(self, stream: StreamId) -> None:
        if stream == self._last_stream:
            self._last_stream = None
        calls = self._pending.pop(stream, None)
        producers = self._pending_producers.pop(stream, set())
        if not calls:
            return
        for c in calls:
            for o in c.outputs:
                self._pending_out.pop(id(o), None)
        if not self._pending:
            self._oldest = None
        self._run(calls, producers)

    def flush(self) -> None:
        """Hand every pending segment to MLX, in call order (a no-op outside segment)."""
        while self._pending:
            self._flush_stream(next(iter(self._pending)))
        self._oldest = None

    def _run(self, calls: list[OpCall], producers: set[int] | None = None) -> None:
        """Hand ``calls`` (one stream's, in order) to MLX as one op; empties ``calls``.

        ``producers``: the ops the calls read from, when already resolved (segments)."""
        unknown: list[mx.array] = []
        if producers is None:
            producers, unknown = self._inputs_of(calls)
        if unknown:
            src = self.untracked(unknown)
            if src is None:
                self.untimed_calls += len(calls)
                calls.clear()
                return
            producers.add(src)
        lane = self.lane_for(calls[0].stream)
        kinds, count, handle = _calls_of(calls), len(calls), calls[-1].handle
        outputs = [o for c in calls for o in c.outputs]
        read_here = {id(a) for c in calls for a in c.inputs}
        sinks = [o for o in outputs if id(o) not in read_here]  # the rest are their inputs
        if not sinks:  # in-place updates (b += 1, b[0] = v) give a later call the same
            sinks = list(calls[-1].outputs)  # Python object as input: the last call ends it
        submit = self.now()
        # shapes, dtypes and bytes describe what leaves the op: its sinks
        op = self._new_op(lane, kinds, submit, producers, sinks)
        made_by = self._made_by
        for a in outputs:  # the intermediates too, so later readers find this op
            if id(a) in read_here:
                made_by[id(a)] = (_weak(a, made_by), op.id)
        refs = [weakref.ref(o) for o in outputs] if self.on_op is not None else []
        # Drop every reference to the intermediates before MLX runs them: an array
        # only unimem holds could not donate its buffer (120 MiB instead of 4 MiB
        # for a 30-op chain on 4 MiB, measured here; MLX donates only an input whose
        # last reference is the op's: is_donatable in mlx/array.h).
        host_waits = self._cpu_inputs_in_flight(calls, producers, lane)
        calls.clear()
        del outputs
        if host_waits:
            _unobserved(mx.eval)(*host_waits)
            del host_waits
        marker = self._hand_off(sinks, handle)
        if marker is None:  # tracers inside grad/vmap/compile: nothing ran, nothing to time
            self._retract(op)
            self.untimed_calls += count
            return
        if self.mode == "exclusive":
            mx.eval(sinks)
            op.start, op.end, op.start_measured = submit, self.now(), True
            if self._sample:
                self.recording.memory.append(_sample(op.end))
        else:
            op.dispatched = self.now()
            if self._sample:
                self.recording.memory.append(_sample(op.dispatched))
            self._waiters.submit(op, marker)
        if self.on_op is not None:
            self.on_op(op, [arr for r in refs if (arr := r()) is not None])

    def _cpu_inputs_in_flight(self, calls: Sequence[OpCall], producers: set[int],
                              lane: Lane) -> list[mx.array]:
        """A GPU op's inputs made by CPU ops not yet seen to end (CUDA only: see __init__)."""
        if not self._wait_cpu_inputs or lane.device != "gpu":
            return []
        rec = self.recording
        flying = {p for p in producers
                  if rec.ops[p].end is None and rec.lanes[rec.ops[p].lane].device == "cpu"}
        if not flying:
            return []
        return [a for c in calls for a in c.inputs if self._producer(a) in flying]

    def _retract(self, op: Op) -> None:
        """Undo ``_new_op`` for an op MLX refused (the last op and its flows)."""
        rec = self.recording
        assert rec.ops[-1] is op
        rec.ops.pop()
        while rec.flows and rec.flows[-1].dst == op.id:
            rec.flows.pop()
        for key in [k for k, (_, i) in self._made_by.items() if i == op.id]:
            del self._made_by[key]

    def _hand_off(self, arrays: list[mx.array], stream: mx.Stream | None) -> mx.array | None:
        """async_eval the arrays plus a marker for the waiter to wait on.

        None when the arrays are tracers inside grad/vmap/compile.
        """
        marker: mx.array = _unobserved(mx.stop_gradient)(arrays[-1], stream=stream)
        try:
            _unobserved(mx.async_eval)(*arrays, marker)
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
        op = self._new_op(lane, ((UNTRACKED_LANE, len(arrays)),), submit, set(), arrays)
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
        self._last_stream = None
        self._pending.clear()
        self._pending_producers.clear()
        self._pending_out.clear()
        self._oldest = None
        self._waiters.close()
        derive_starts(self.recording)


def _unobserved(fn: Any) -> Any:
    """The MLX function itself, not the interceptor's wrapper: the recorder's own
    work (hand-off markers, flushes outside the hook) must not be recorded."""
    return getattr(fn, "__wrapped__", fn)


def _weak(a: mx.array, table: dict[int, Any]) -> weakref.ref[mx.array]:
    """A weak reference that removes ``table[id(a)]`` when ``a`` dies."""
    key = id(a)

    def forget(ref: weakref.ref[mx.array]) -> None:
        entry = table.get(key)
        if entry is ref or (isinstance(entry, tuple) and entry[0] is ref):
            table.pop(key, None)

    return weakref.ref(a, forget)


def _calls_of(calls: Sequence[OpCall]) -> Calls:
    """What an op covers: (kind, count) per kind, in order of first call."""
    return tuple(Counter(c.name for c in calls).items())

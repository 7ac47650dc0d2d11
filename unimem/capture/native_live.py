"""A live native recording for ``um.watch``: walked at each eval point, timed as records arrive.

The watched block's eval points are walked and instrumented as they come (on the
watched thread); each refresh of the UI timer takes in the timing records and, on a
CUPTI-traced GPU, the kernels, copies, migrations and synchronisation calls that have
arrived, and :class:`~.native_ops.NativeOps` draws them.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Lock
from time import perf_counter, sleep

import mlx.core as mx

from ..model.recording import Recording
from . import cuda_kernels, cupti_records, native
from .attribution import Attributor, KernelLaunch
from .native_ops import HostClock, NativeOps


class NativeRecorder:
    """A live recording for ``um.watch``: at each eval point of the watched code,
    instrument and walk what is about to run; records are collected on refresh.

    With ``gpu`` (MLX's CUDA build with cupti-python, see ``cuda_kernels``), CUPTI traces
    the block: each refresh flushes its buffers and draws the kernels that came in under
    the primitives they were attributed to, with the copies, migrations and
    synchronisation calls. ``at_eval_point`` runs on the watched thread and ``flush`` on
    the UI timer's: a lock keeps their ops in one order.

    With ``host`` (by default: with ``gpu``, as for a profiled run), the watched thread's
    phases are drawn on a host lane as they close: the block's own code, unimem's walk
    and each evaluation, from :meth:`enter` to :meth:`exit`.
    """

    def __init__(self, recording: Recording, *, gpu: bool = False,
                 host: bool | None = None) -> None:
        self.recording = recording
        self.t0 = perf_counter()
        self.untimed_calls = 0  # the hand-off recorder's counter; nothing is skipped here
        self._lock = Lock()
        self._gpu = gpu
        self._trace: cuda_kernels.KernelTrace | None = None
        self._attributor = Attributor() if gpu else None
        self._ops = NativeOps(recording, self.t0, native.clock_offset(), live_gpu=gpu)
        self._seconds: Callable[[int], float] = lambda t: t / 1e9
        self._host = HostClock(self.t0) if (gpu if host is None else host) else None

    def begin(self) -> None:
        """Start recording: forget earlier records and, with ``gpu``, start CUPTI (made
        apart from ``__init__`` so that making a recorder subscribes to nothing)."""
        native.clear()
        if self._gpu and self._trace is None:
            trace = cuda_kernels.KernelTrace()
            trace.start()
            self._trace = trace
            offset, _ = trace.clock_at_start
            self._seconds = lambda t: (t + offset) / 1e9

    def enter(self) -> None:
        """The watched block begins: its own code runs from here (host lane)."""
        if self._host is not None:
            self._host.since = perf_counter()

    def exit(self) -> None:
        """The watched block has ended: its code since the last eval closes (host lane)."""
        self._close_phase("python")

    def at_eval_point(self, arrays: list[mx.array]) -> None:
        self._close_phase("python")
        graph = native.capture(arrays, gpu=self._trace is not None)
        if len(graph):
            with self._lock:
                if self._attributor is not None:
                    self._attributor.add_events([], dict(zip(graph.ids,
                                                             graph.columns["stream"])))
                self._ops.add(graph, perf_counter() - self.t0)
        self._close_phase("walk")

    def after_eval(self) -> None:
        """An evaluation at an eval point has returned (or raised)."""
        self._close_phase("eval")

    def _close_phase(self, kind: str) -> None:
        if self._host is not None:
            phase = self._host.close(kind)
            with self._lock:
                self._ops.add_host([phase])

    def flush(self) -> None:
        """Take in the records that have come in (never blocks on MLX)."""
        with self._lock:
            self._ops.apply(native.records(drain=True))
            if self._trace is not None:
                self._take(self._trace.poll())

    def _take(self, piece: cupti_records.KernelCapture) -> None:
        assert self._attributor is not None
        self._attributor.add_events(piece.node_events, {})
        primitives = self._attributor.add_kernels(
            [KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id)
             for k in piece.kernels])
        self._ops.add_kernels(piece, primitives, self._seconds)

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` s) for wrapped work in flight, then take every record;
        with CUPTI, stop tracing (nothing stays subscribed) and note what was attributed."""
        deadline = perf_counter() + timeout
        while native.pending_count() and perf_counter() < deadline:
            sleep(0.001)
        self.flush()
        with self._lock:
            if self._trace is not None and self._attributor is not None:
                trace, self._trace = self._trace, None
                last = trace.stop()
                self._take(last)
                self._ops.finish_live()
                self._ops.add_wait_flows()
                result = self._attributor.result
                self.recording.notes.append(
                    f"GPU: {len(result.primitive)} kernels measured on the device by CUPTI, "
                    f"{result.attributed} attributed to their primitive by {result.how}")
                if last.migrations_why_not:
                    self.recording.notes.append(f"no migration counters: "
                                                f"{last.migrations_why_not}")
            self._ops.note_untimed()

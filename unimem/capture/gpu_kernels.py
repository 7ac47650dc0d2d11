"""A run's GPU kernels, as CUPTI measured them, grouped by the primitive that launched each.

``native_run`` makes a bar per kernel of each GPU primitive from this grouping;
kernels no primitive claimed are kept apart, to be drawn under their own names.
"""

from __future__ import annotations

from collections import Counter

from ..model.text import fmt_bytes
from . import cupti_records, native
from .attribution import Attribution, KernelLaunch, attribute, short_kernel_name

COPIES_LANE = "gpu copies"  # memcpy/memset/migration records: the copy engines, not a stream
SYNC_LANE = "gpu sync calls"  # host calls that wait for the GPU or order its streams
_CALLS = {"event synchronize": "cudaEventSynchronize", "stream wait event": "cudaStreamWaitEvent",
          "stream synchronize": "cudaStreamSynchronize",
          "context synchronize": "cudaCtxSynchronize"}


class GpuKernels:
    """CUPTI's kernels of a run, grouped by the primitive each was attributed to."""

    def __init__(self, capture: cupti_records.KernelCapture, graphs: list[native.PendingGraph]
                 ) -> None:
        self.capture = capture
        stream_of = {i: s for g in graphs for i, s in zip(g.ids, g.columns["stream"])}
        launches = [KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id)
                    for k in capture.kernels]
        self.attribution: Attribution = attribute(launches, capture.node_events, stream_of)
        if capture.node_events_why_not:
            self.attribution.how = f"not attributed: {capture.node_events_why_not}"
        self._by_primitive: dict[int, list[cupti_records.KernelRecord]] = {}
        order = sorted(range(len(capture.kernels)), key=lambda i: capture.kernels[i].start)
        for i in order:
            p = self.attribution.primitive[i]
            if p:
                self._by_primitive.setdefault(p, []).append(capture.kernels[i])
        self._unattributed = [capture.kernels[i] for i in order
                              if not self.attribution.primitive[i]]

    def of(self, primitive: int) -> list[cupti_records.KernelRecord]:
        return self._by_primitive.get(primitive, [])

    def unattributed(self) -> list[cupti_records.KernelRecord]:
        return self._unattributed

    def seconds(self, t_ns: int) -> float:
        return self.capture.to_perf_counter(t_ns)

    def note(self) -> str:
        a, c = self.attribution, self.capture
        text = (f"GPU: {len(c.kernels)} kernels measured on the device by CUPTI (start and "
                f"end; clock offset ±{c.error_ns / 1e3:.1f} µs), {a.attributed} attributed to "
                f"their primitive by {a.how}")
        if c.copies:
            text += f"; {len(c.copies)} copies and sets on the {COPIES_LANE!r} lane"
        if c.migrations:
            moved = sum(m.nbytes for m in c.migrations)
            text += (f"; {len(c.migrations)} unified-memory migrations "
                     f"({fmt_bytes(moved)}) on that lane too")
        if c.faults.cpu or c.faults.gpu:
            text += (f"; page faults on managed memory: {c.faults.cpu} on the CPU, "
                     f"{c.faults.gpu} on the GPU")
        if c.migrations_why_not:
            text += f"; no migration counters: {c.migrations_why_not}"
        if c.syncs:
            text += f"; {len(c.syncs)} synchronisation calls on the {SYNC_LANE!r} lane"
        if a.unmatched_reasons:
            text += f"; not matched: {'; '.join(a.unmatched_reasons[:3])}"
        if c.dropped:
            text += f"; CUPTI dropped {c.dropped} records"
        return text


def sync_detail(w: cupti_records.SyncRecord, events: list[cupti_records.EventRecord],
                lanes: dict[int, str]) -> str:
    """A synchronisation record in words: which call, which CUDA streams, for what."""
    def stream(i: int) -> str:
        return f"CUDA stream {i}" + (f" (lane {lanes[i]!r})" if i in lanes else "")

    call = _CALLS.get(w.kind, w.kind)
    recorded = next((e for e in events if e.sync_id == w.sync_id), None)
    source = f", recorded on {stream(recorded.stream_id)}" if recorded else ""
    if w.kind == "stream wait event":
        return (f"{call}: {stream(w.stream_id)} waits on the GPU for event {w.event_id}"
                f"{source} (a dependency between streams; the call itself returns at once)")
    if w.kind == "event synchronize":
        return f"{call}: the host waited for event {w.event_id}{source}"
    if w.kind == "stream synchronize":
        return f"{call}: the host waited for {stream(w.stream_id)} to finish its work"
    return f"{call}: the host waited for the GPU"


def not_the_calls(capture: cupti_records.KernelCapture) -> str:
    """A note for GPU work CUPTI saw in a run whose primitives all ran on CPU streams."""
    names = Counter(short_kernel_name(k.name).rsplit("::", 1)[-1] for k in capture.kernels)
    names.update(c.kind for c in capture.copies)
    kinds = ", ".join(f"{name} ×{n}" for name, n in names.most_common())
    return (f"GPU: no primitive of the call ran on a GPU stream, yet CUPTI saw {kinds} run "
            "on the GPU: work MLX did on its own, launched by no primitive; listed, not drawn")

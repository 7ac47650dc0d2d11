"""What the GPU ran, from NVIDIA's CUPTI: every kernel, copy and set, timed on the device.

On MLX's CUDA build, `cupti-python <https://docs.nvidia.com/cupti-python/>`_ (NVIDIA's
bindings of the CUPTI Activity API, the ``cuda13`` extra) lets this process ask the
driver for a record of each kernel, memcpy and memset it ran, with start and end
stamped on the GPU. Nothing in MLX changes: the run is one plain ``mx.eval``, with
MLX's own CUDA-graph batching. The records arrive in buffers that CUPTI hands back
on :meth:`KernelTrace.stop` (a flush); they are turned into plain data at once.

Which primitive launched each kernel is found by :mod:`.attribution`, from graph-node
callbacks that the native probe takes in C++ (``unimem_native.start_node_capture``).

Only one tool can hold CUPTI at a time on CUDA 13.0-13.2 drivers (Nsight Systems,
``torch.profiler``): where it is taken, :func:`why_unavailable` says so and unimem
keeps its hand-off method for GPU streams.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx

from . import native
from .attribution import NodeEvent

_KINDS = ("CONCURRENT_KERNEL", "MEMCPY", "MEMSET")  # not SYNCHRONIZATION/CUDA_EVENT: with
# them all-GPU `fun` ran 1.52-1.96x its plain time on an H200, against 1.24x without

# CUPTI's CUpti_ActivityMemcpyKind and CUpti_ActivityMemoryKind, as words
# (https://docs.nvidia.com/cupti/api/group__CUPTI__ACTIVITY__API.html)
COPY_KINDS = {0: "unknown", 1: "host to device", 2: "device to host", 3: "host to array",
              4: "array to host", 5: "array to array", 6: "array to device",
              7: "device to array", 8: "device to device", 9: "host to host",
              10: "peer to peer"}
MEMORY_KINDS = {0: "unknown", 1: "pageable", 2: "pinned", 3: "device", 4: "array",
                5: "managed", 6: "device static", 7: "managed static"}


@dataclass(frozen=True, slots=True)
class KernelRecord:
    """One kernel run, times in CUPTI's clock (ns)."""

    start: int
    end: int
    name: str  # as compiled (mangled C++ for MLX's own kernels)
    correlation_id: int  # the launch's: for a graph, the whole graph launch
    stream_id: int
    graph_node_id: int  # executable graph id << 32 | node index; 0 outside graphs


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """One memcpy or memset run, times in CUPTI's clock (ns)."""

    kind: str  # "memcpy" or "memset"
    start: int
    end: int
    nbytes: int
    direction: str  # "device to device", ..., or "set" for a memset
    source: str  # memory kinds, for a memcpy: "device", "managed", "pinned", ...
    destination: str
    stream_id: int


@dataclass
class KernelCapture:
    """What one traced run gave: records, graph-node events, and the clock mapping."""

    kernels: list[KernelRecord] = field(default_factory=list)
    copies: list[CopyRecord] = field(default_factory=list)
    node_events: list[NodeEvent] = field(default_factory=list)
    node_events_why_not: str = ""  # why no node events were taken ("" when they were)
    offset_ns: int = 0  # perf_counter_ns() - CUPTI timestamp
    error_ns: int = 0
    dropped: int = 0

    def to_perf_counter(self, t_ns: int) -> float:
        """A CUPTI timestamp as a ``time.perf_counter()`` value (seconds)."""
        return (t_ns + self.offset_ns) / 1e9


def record_of(fields: dict[str, Any]) -> KernelRecord | CopyRecord | None:
    """A plain record from one CUPTI activity record's fields (live or stored in a file)."""
    kind = fields.get("kind")
    if kind == "kernel":
        return KernelRecord(int(fields["start"]), int(fields["end"]), str(fields["name"]),
                            int(fields["correlation_id"]), int(fields["stream_id"]),
                            int(fields.get("graph_node_id", 0)))
    if kind in ("memcpy", "memset"):
        memcpy = kind == "memcpy"
        return CopyRecord(
            kind, int(fields["start"]), int(fields["end"]), int(fields["bytes"]),
            COPY_KINDS.get(int(fields.get("copy_kind", 0)), "unknown") if memcpy else "set",
            MEMORY_KINDS.get(int(fields.get("src_kind", 0)), "unknown") if memcpy else "",
            MEMORY_KINDS.get(int(fields.get("dst_kind", fields.get("memory_kind", 0))),
                             "unknown"),
            int(fields.get("stream_id", 0)))
    return None


_FIELDS = {"kernel": ("start", "end", "name", "correlation_id", "stream_id", "graph_node_id"),
           "memcpy": ("start", "end", "bytes", "copy_kind", "src_kind", "dst_kind",
                      "stream_id"),
           "memset": ("start", "end", "bytes", "memory_kind", "stream_id")}


class _Cupti:
    """cupti-python, loaded once; its buffer callbacks registered once per process."""

    def __init__(self) -> None:
        self.module: Any = None
        self.reason: str | None = None
        self.libcupti = ""
        self.sink: list[dict[str, Any]] | None = None
        self.lock = threading.Lock()
        self.registered = False

    def load(self) -> Any:
        if self.module is None and self.reason is None:
            self.reason = self._load()
        return self.module

    def _load(self) -> str | None:
        if not (mx.is_available(mx.gpu) and mx.cuda.is_available()):
            return "MLX has no CUDA GPU here"
        try:
            cupti = importlib.import_module("cupti.cupti")
        except ImportError as e:
            return (f"cupti-python is not installed ({e.name or e}): "
                    "pip install 'unimem[cuda13]'")
        try:
            cupti.get_timestamp()  # loads libcupti
        except Exception as e:  # noqa: BLE001 - any CUPTI failure means: not here
            return f"CUPTI cannot start: {e}"
        self.libcupti = _loaded_path("libcupti")
        self.module = cupti
        return None

    def _done(self, activities: list[Any]) -> None:
        kinds = self.module.ActivityKind
        names = {kinds.CONCURRENT_KERNEL: "kernel", kinds.KERNEL: "kernel",
                 kinds.MEMCPY: "memcpy", kinds.MEMSET: "memset"}
        out = []
        for a in activities:
            kind = names.get(a.kind)
            if kind is not None:
                rec = {f: getattr(a, f) for f in _FIELDS[kind] if hasattr(a, f)}
                rec["kind"] = kind
                out.append(rec)
        with self.lock:
            if self.sink is not None:
                self.sink.extend(out)


_cupti = _Cupti()


def _loaded_path(stem: str) -> str:
    """The file of a shared library this process has loaded (Linux), or ""."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if stem in path.rsplit("/", 1)[-1]:
                    return path
    except OSError:
        pass
    return ""


def available() -> bool:
    """Whether GPU kernels can be traced with CUPTI here."""
    return _cupti.load() is not None and native.available()


def why_unavailable() -> str | None:
    """One line: why CUPTI tracing cannot run here; None when it can."""
    _cupti.load()
    if _cupti.reason:
        return _cupti.reason
    if not native.available():
        return f"the native probe is needed for CUPTI tracing: {native.why_unavailable()}"
    return None


def _clock(cupti: Any, samples: int = 30) -> tuple[int, int]:
    """``perf_counter_ns() - cupti.get_timestamp()`` from the tightest of ``samples``
    bracketed reads, and its error bound (half the bracket)."""
    best = None
    for _ in range(samples):
        before = time.perf_counter_ns()
        t = cupti.get_timestamp()
        after = time.perf_counter_ns()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2 - t)
    assert best is not None
    return best[1], (best[0] + 1) // 2


def _warm_up(cupti: Any) -> int:
    """Run one tiny GPU op and wait for it; return CUPTI's clock afterwards.

    The first record after tracing is enabled makes CUPTI hand out a fresh activity
    buffer, which cost 0.5-0.8 ms of the traced run on an H200 (an MLP step of 0.9 ms
    ran 1.6x its plain time with activity tracing alone, about 1.1x once a buffer was
    in use). This takes that cost here, before the run starts; the warm-up's records
    are dropped by time.
    """
    mx.eval(mx.zeros((1,), stream=mx.gpu) + 1)
    mx.synchronize()
    return int(cupti.get_timestamp())


class KernelTrace:
    """CUPTI activity tracing (and graph-node callbacks) around one run.

    ``start`` before the run's first eval, ``stop`` after the last: it flushes CUPTI's
    buffers, disables every activity kind it enabled and unsubscribes, so no record
    leaks into the next recording and nothing stays subscribed.
    """

    def __init__(self) -> None:
        self._sink: list[dict[str, Any]] = []
        self._nodes_why_not = ""
        self._started = False
        self._since = 0  # CUPTI's clock when the warm-up had finished: earlier records go

    def start(self) -> None:
        cupti = _cupti.load()
        if cupti is None:
            raise RuntimeError(why_unavailable() or "CUPTI is not available")
        if not _cupti.registered:
            cupti.activity_register_callbacks(lambda: (8 << 20, 0), _cupti._done)
            _cupti.registered = True
        cupti.activity_flush_all(1)  # records of earlier work go nowhere
        with _cupti.lock:
            _cupti.sink = self._sink
        enabled = []
        try:
            for k in _KINDS:
                cupti.activity_enable(getattr(cupti.ActivityKind, k))
                enabled.append(k)
        except Exception:
            for k in enabled:
                cupti.activity_disable(getattr(cupti.ActivityKind, k))
            with _cupti.lock:
                _cupti.sink = None
            raise
        self._since = _warm_up(cupti)
        native.node_events(drain=True)
        self._nodes_why_not = native.start_node_capture(_cupti.libcupti)
        self._started = True

    def stop(self) -> KernelCapture:
        cupti = _cupti.module
        if not self._started:
            raise RuntimeError("KernelTrace.stop() without start()")
        self._started = False
        try:
            mx.synchronize()
            cupti.activity_flush_all(1)
        finally:
            native.stop_node_capture()
            for k in _KINDS:
                cupti.activity_disable(getattr(cupti.ActivityKind, k))
            with _cupti.lock:
                _cupti.sink = None
        offset, error = _clock(cupti)
        out = KernelCapture(offset_ns=offset, error_ns=error,
                            node_events_why_not=self._nodes_why_not)
        for fields in self._sink:
            if int(fields.get("start", 0)) < self._since:
                continue  # the warm-up's own work
            rec = record_of(fields)
            if isinstance(rec, KernelRecord):
                out.kernels.append(rec)
            elif isinstance(rec, CopyRecord):
                out.copies.append(rec)
        if not self._nodes_why_not:
            out.node_events = native.node_events(drain=True)
        try:
            out.dropped = int(cupti.activity_get_num_dropped_records(None, 0))
        except Exception:  # noqa: BLE001 - the count is informative only
            out.dropped = 0
        return out
